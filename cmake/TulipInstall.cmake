# Installing tulip and finding it again: `cmake --install` puts the headers, the
# library, the CMake package (tulipConfig.cmake, its version file and the
# exported tulip::tulip and tulip::testing targets), tulip.pc and
# tulip-testing.pc, the tools with their man pages and the docs under the
# prefix. Tests, benchmarks, fuzzers and examples are never
# installed.
#
# Install components (CPack packages them, see cmake/TulipPackaging.cmake):
#   Development  headers, static library or shared-library link, CMake and
#                pkg-config files, docs                       -> libtulip-dev
#   Runtime      the shared library itself (shared builds)    -> libtulip<soversion>
#   Tools        tulip-echo-client, tulip-echo-server, man pages -> tulip-tools
#
# Included from the top-level CMakeLists.txt after every target is defined.

include(CMakePackageConfigHelpers)

# Where tulipConfig.cmake and tulip.pc go, relative to the prefix; a -D on the
# command line overrides either.
if(NOT DEFINED TULIP_INSTALL_CMAKEDIR)
  set(TULIP_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/tulip")
endif()
if(NOT DEFINED TULIP_INSTALL_PKGCONFIGDIR)
  set(TULIP_INSTALL_PKGCONFIGDIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
endif()

# Optional parts a consumer can ask for with find_package(tulip COMPONENTS ...).
# TULIP_KNOWN_COMPONENTS names every part tulip may be built with (and what it
# needs); TULIP_BUILT_COMPONENTS the ones this build has. A part's build appends
# its name to TULIP_BUILT_COMPONENTS and its find_dependency() line to
# TULIP_COMPONENT_DEPENDENCIES.
set(TULIP_KNOWN_COMPONENTS "TLS=OpenSSL" "io_uring=liburing")
if(NOT DEFINED TULIP_BUILT_COMPONENTS)
  set(TULIP_BUILT_COMPONENTS "")
endif()
if(NOT DEFINED TULIP_COMPONENT_DEPENDENCIES)
  set(TULIP_COMPONENT_DEPENDENCIES "")
endif()
if(TULIP_WITH_TLS)
  list(APPEND TULIP_BUILT_COMPONENTS TLS)
  # A static libtulip links OpenSSL into its users' programs; a shared one
  # still names it in the exported target, so the package always finds it.
  string(APPEND TULIP_COMPONENT_DEPENDENCIES "find_dependency(OpenSSL)\n")
endif()
if(TULIP_WITH_URING)
  # liburing is linked by name (-luring): no CMake package to find.
  list(APPEND TULIP_BUILT_COMPONENTS io_uring)
endif()

# ---- The library, its headers and the exported target --------------------------

install(TARGETS tulip tulip-testing EXPORT tulipTargets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT Development
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT Runtime
          NAMELINK_COMPONENT Development
  RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT Runtime)
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/tulip"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT Development
  FILES_MATCHING PATTERN "*.hpp")
install(FILES "${TULIP_GENERATED_INCLUDE_DIR}/tulip/version.hpp"
              "${TULIP_GENERATED_INCLUDE_DIR}/tulip/config.hpp"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/tulip" COMPONENT Development)
install(EXPORT tulipTargets NAMESPACE tulip::
  DESTINATION "${TULIP_INSTALL_CMAKEDIR}" COMPONENT Development)

# The same target, for a project that builds tulip in its own tree and calls
# find_package(tulip) anyway (or uses export(PACKAGE)).
export(EXPORT tulipTargets NAMESPACE tulip:: FILE "${PROJECT_BINARY_DIR}/tulipTargets.cmake")

# ---- CMake package: tulipConfig.cmake and tulipConfigVersion.cmake --------------

# Semantic versioning: in 0.x a minor version may break compatibility, so a
# request for 0.1 accepts only 0.1.z; from 1.0 on any 1.y.z satisfies 1.0.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(tulip_compatibility SameMinorVersion)
else()
  set(tulip_compatibility SameMajorVersion)
endif()
configure_package_config_file("${CMAKE_CURRENT_LIST_DIR}/tulipConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/tulipConfig.cmake"
  INSTALL_DESTINATION "${TULIP_INSTALL_CMAKEDIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/tulipConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}" COMPATIBILITY ${tulip_compatibility})
install(FILES "${PROJECT_BINARY_DIR}/tulipConfig.cmake"
              "${PROJECT_BINARY_DIR}/tulipConfigVersion.cmake"
  DESTINATION "${TULIP_INSTALL_CMAKEDIR}" COMPONENT Development)

# ---- pkg-config: tulip.pc, from the same variables --------------------------------

# The .pc file finds the prefix relative to its own directory, so an installed
# tree can be moved (pkg-config's ${pcfiledir}).
cmake_path(APPEND CMAKE_INSTALL_PREFIX "${TULIP_INSTALL_PKGCONFIGDIR}"
           OUTPUT_VARIABLE tulip_pc_dir)
file(RELATIVE_PATH tulip_pc_to_prefix "${tulip_pc_dir}" "${CMAKE_INSTALL_PREFIX}")
string(REGEX REPLACE "/$" "" tulip_pc_to_prefix "${tulip_pc_to_prefix}")
set(TULIP_PC_PREFIX "\${pcfiledir}/${tulip_pc_to_prefix}")
foreach(dir LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${dir}}")
    set(TULIP_PC_${dir} "${CMAKE_INSTALL_${dir}}")
  else()
    set(TULIP_PC_${dir} "\${prefix}/${CMAKE_INSTALL_${dir}}")
  endif()
endforeach()
# A static libtulip needs its dependencies on the consumer's link line; a
# shared one carries them itself.
get_target_property(tulip_type tulip TYPE)
if(tulip_type STREQUAL "STATIC_LIBRARY")
  set(TULIP_PC_LIBS "-pthread")
  set(TULIP_PC_LIBS_PRIVATE "")
else()
  set(TULIP_PC_LIBS "")
  set(TULIP_PC_LIBS_PRIVATE "-pthread")
endif()
# OpenSSL's own openssl.pc (libssl-dev) gives -lssl -lcrypto: required for the
# link of a static libtulip, private to a shared one.
set(TULIP_PC_REQUIRES "")
set(TULIP_PC_REQUIRES_PRIVATE "")
if(TULIP_WITH_TLS)
  if(tulip_type STREQUAL "STATIC_LIBRARY")
    set(TULIP_PC_REQUIRES "openssl")
  else()
    set(TULIP_PC_REQUIRES_PRIVATE "openssl")
  endif()
endif()
# liburing's own liburing.pc (liburing-dev) gives -luring, likewise.
if(TULIP_WITH_URING)
  if(tulip_type STREQUAL "STATIC_LIBRARY")
    string(JOIN " " TULIP_PC_REQUIRES ${TULIP_PC_REQUIRES} "liburing")
  else()
    string(JOIN " " TULIP_PC_REQUIRES_PRIVATE ${TULIP_PC_REQUIRES_PRIVATE} "liburing")
  endif()
endif()
configure_file("${CMAKE_CURRENT_LIST_DIR}/tulip.pc.in" "${PROJECT_BINARY_DIR}/tulip.pc" @ONLY)
configure_file("${CMAKE_CURRENT_LIST_DIR}/tulip-testing.pc.in" "${PROJECT_BINARY_DIR}/tulip-testing.pc"
               @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/tulip.pc" "${PROJECT_BINARY_DIR}/tulip-testing.pc"
  DESTINATION "${TULIP_INSTALL_PKGCONFIGDIR}" COMPONENT Development)

# ---- The tools and their man pages ---------------------------------------------------

if(TARGET tulip-echo-client AND TARGET tulip-echo-server)
  install(TARGETS tulip-echo-client tulip-echo-server
    RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT Tools)

  # Man pages are generated from each tool's --help by help2man, with the
  # sections --help does not print (description, exit status, see also) from
  # packaging/man/<tool>.h2m.
  find_program(TULIP_HELP2MAN help2man)
  find_program(TULIP_GZIP gzip)
  if(TULIP_HELP2MAN AND TULIP_GZIP)
    set(tulip_man_pages "")
    foreach(tool tulip-echo-client tulip-echo-server)
      set(include_file "${PROJECT_SOURCE_DIR}/packaging/man/${tool}.h2m")
      set(page "${PROJECT_BINARY_DIR}/man/${tool}.1")
      add_custom_command(OUTPUT "${page}.gz"
        COMMAND "${CMAKE_COMMAND}" -E make_directory "${PROJECT_BINARY_DIR}/man"
        COMMAND "${TULIP_HELP2MAN}" --no-info --no-discard-stderr
                --version-string=${PROJECT_VERSION} --section=1
                --include=${include_file} --output=${page} $<TARGET_FILE:${tool}>
        # -n: no name or time stamp in the archive, so the page is reproducible.
        COMMAND "${TULIP_GZIP}" -9nf "${page}"
        DEPENDS ${tool} "${include_file}"
        COMMENT "Generating the man page of ${tool}"
        VERBATIM)
      list(APPEND tulip_man_pages "${page}.gz")
    endforeach()
    add_custom_target(tulip-man-pages ALL DEPENDS ${tulip_man_pages})
    install(FILES ${tulip_man_pages}
      DESTINATION "${CMAKE_INSTALL_MANDIR}/man1" COMPONENT Tools)
  else()
    message(STATUS "tulip: help2man or gzip not found, the tools' man pages are not built")
  endif()
endif()

# ---- Documentation ---------------------------------------------------------------------

install(FILES "${PROJECT_SOURCE_DIR}/README.md"
  DESTINATION "${CMAKE_INSTALL_DOCDIR}" COMPONENT Development)
install(DIRECTORY "${PROJECT_SOURCE_DIR}/docs/"
  DESTINATION "${CMAKE_INSTALL_DOCDIR}" COMPONENT Development
  FILES_MATCHING PATTERN "*.md")
# The API reference, if the `docs` target has built it (cmake/TulipDocs.cmake).
install(DIRECTORY "${PROJECT_BINARY_DIR}/docs/reference/html/"
  DESTINATION "${CMAKE_INSTALL_DOCDIR}/reference" COMPONENT Reference OPTIONAL)
include("${CMAKE_CURRENT_LIST_DIR}/TulipPackaging.cmake")
