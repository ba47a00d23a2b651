# What the tulip library target needs beyond its sources: the generated version
# header, tulip::version(), symbol visibility, the shared library's version and
# SONAME, and the usage requirements an installed copy carries.
#
# Included from the top-level CMakeLists.txt right after add_library(tulip ...).

include(GNUInstallDirs)

# The version lives in one place, the project() line; everything else derives it.
set(TULIP_GENERATED_INCLUDE_DIR "${PROJECT_BINARY_DIR}/generated/include")
configure_file("${CMAKE_CURRENT_LIST_DIR}/version.hpp.in"
               "${TULIP_GENERATED_INCLUDE_DIR}/tulip/version.hpp" @ONLY)
target_sources(tulip PRIVATE "${PROJECT_SOURCE_DIR}/src/version.cpp")
# <tulip/config.hpp>: which optional parts this build has (TULIP_HAS_TLS).
if(TULIP_WITH_TLS)
  set(TULIP_HAS_TLS 1)
else()
  set(TULIP_HAS_TLS 0)
endif()
configure_file("${CMAKE_CURRENT_LIST_DIR}/config.hpp.in"
               "${TULIP_GENERATED_INCLUDE_DIR}/tulip/config.hpp" @ONLY)

target_include_directories(tulip PUBLIC
  $<BUILD_INTERFACE:${TULIP_GENERATED_INCLUDE_DIR}>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
# The headers use C++20: every consumer compiles with at least that.
target_compile_features(tulip PUBLIC cxx_std_20)

# Only what the public headers mark TULIP_API (include/tulip/export.hpp) is
# exported from a shared library; everything else stays internal.
set_target_properties(tulip PROPERTIES
  CXX_VISIBILITY_PRESET hidden
  VISIBILITY_INLINES_HIDDEN ON
  EXPORT_NAME tulip)

# Semantic versioning: while the major version is 0 every minor version may
# break the ABI, so the SONAME carries MAJOR.MINOR (libtulip.so.0.1); from 1.0
# on it carries MAJOR alone.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(TULIP_SOVERSION "${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}")
else()
  set(TULIP_SOVERSION "${PROJECT_VERSION_MAJOR}")
endif()
set_target_properties(tulip PROPERTIES VERSION "${PROJECT_VERSION}" SOVERSION "${TULIP_SOVERSION}")

get_target_property(tulip_library_type tulip TYPE)
if(tulip_library_type STREQUAL "SHARED_LIBRARY")
  # Hidden visibility still exports the standard library's templates that the
  # library instantiates (namespace std is marked visible); the version script
  # keeps the exported set to tulip's API.
  set(tulip_version_script "${CMAKE_CURRENT_LIST_DIR}/tulip.map")
  target_link_options(tulip PRIVATE "LINKER:--version-script=${tulip_version_script}")
  set_property(TARGET tulip APPEND PROPERTY LINK_DEPENDS "${tulip_version_script}")
endif()
if(tulip_library_type STREQUAL "SHARED_LIBRARY" AND TULIP_BUILD_TESTS)
  # The test suite reaches into src/ (the write buffer, the connector, the loop's
  # internals), which a shared libtulip keeps hidden.
  message(STATUS "tulip: shared build, so the test suite (which uses library internals) is not "
                 "built; configure a static build to run it")
  set(TULIP_BUILD_TESTS OFF)
endif()
