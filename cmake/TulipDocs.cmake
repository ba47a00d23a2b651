# The API reference: `cmake --build <dir> --target tulip-docs` (or `docs` when
# tulip is the top-level project) runs Doxygen over the public headers and
# docs/guide.md into <dir>/docs/reference/html/. Any warning, an undocumented
# public declaration included, fails the target.
find_package(Doxygen QUIET)
if(NOT DOXYGEN_FOUND)
  message(STATUS "tulip: doxygen not found, no tulip-docs target (apt-get install doxygen)")
  return()
endif()
set(TULIP_DOCS_OUTPUT "${PROJECT_BINARY_DIR}/docs/reference")
configure_file("${CMAKE_CURRENT_LIST_DIR}/Doxyfile.in" "${PROJECT_BINARY_DIR}/docs/Doxyfile" @ONLY)
add_custom_target(tulip-docs
  COMMAND "${CMAKE_COMMAND}" -E make_directory "${TULIP_DOCS_OUTPUT}"
  COMMAND Doxygen::doxygen "${PROJECT_BINARY_DIR}/docs/Doxyfile"
  WORKING_DIRECTORY "${PROJECT_SOURCE_DIR}"
  COMMENT "Generating the API reference with Doxygen"
  VERBATIM)
if(PROJECT_IS_TOP_LEVEL)
  add_custom_target(docs DEPENDS tulip-docs)
endif()
