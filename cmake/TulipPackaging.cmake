# Debian packages with CPack: `cpack -G DEB` in a build directory (after the
# build) makes
#   libtulip-dev  headers, static library, CMake package, pkg-config file, docs
#   tulip-tools   tulip-echo-client and tulip-echo-server with their man pages
# (and, from a BUILD_SHARED_LIBS=ON build, libtulip<soversion> with the shared
# library). scripts/check-deb.sh builds them, lists them and runs lintian.
#
# Included from cmake/TulipInstall.cmake, after the install rules.

set(TULIP_PACKAGE_MAINTAINER "tulip maintainers <maintainers@tulip.example.org>"
    CACHE STRING "Maintainer field of the Debian packages: Name <address>")
set(TULIP_DEB_RELEASE 1 CACHE STRING "Debian revision of the packages (the -N of VERSION-N)")
set(TULIP_DEB_VERSION "${PROJECT_VERSION}-${TULIP_DEB_RELEASE}")

set(CPACK_PACKAGE_NAME tulip)
set(CPACK_PACKAGE_VENDOR "the tulip authors")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "${TULIP_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DIRECTORY "${PROJECT_BINARY_DIR}/packages")
set(CPACK_DEB_COMPONENT_INSTALL ON)

get_target_property(tulip_package_type tulip TYPE)
set(CPACK_COMPONENTS_ALL Development Tools)
if(tulip_package_type STREQUAL "SHARED_LIBRARY")
  list(APPEND CPACK_COMPONENTS_ALL Runtime)
endif()
if(NOT TARGET tulip-echo-client)
  list(REMOVE_ITEM CPACK_COMPONENTS_ALL Tools)
endif()

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_RELEASE "${TULIP_DEB_RELEASE}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${TULIP_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SOURCE tulip)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# Each package's description: the first line is the synopsis, the rest the long
# description (CPACK_PACKAGE_DESCRIPTION_SUMMARY is left unset, or CPack would
# put it in front as every package's synopsis).
set(tulip_about
    "tulip reproduces Python asyncio's low-level model natively: the event loop,\n"
    "futures, transports and protocols, under asyncio's names and semantics.")
string(CONCAT CPACK_DEBIAN_DEVELOPMENT_DESCRIPTION
       "asyncio's event loop, transports and protocols for C++20 (development)\n"
       ${tulip_about} "\n"
       "This package holds the headers, the static library, the CMake package\n"
       "(find_package(tulip)) and the pkg-config file (tulip.pc).")
string(CONCAT CPACK_DEBIAN_TOOLS_DESCRIPTION
       "TCP echo client and server built on tulip\n" ${tulip_about} "\n"
       "This package holds tulip-echo-client and tulip-echo-server, the asyncio\n"
       "documentation's echo client and server as native programs.")
string(CONCAT CPACK_DEBIAN_RUNTIME_DESCRIPTION
       "asyncio's event loop, transports and protocols for C++20 (shared library)\n"
       ${tulip_about} "\n" "This package holds the shared library.")

set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_NAME libtulip-dev)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME tulip-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION net)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME "libtulip${TULIP_SOVERSION}")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SHLIBDEPS ON)
set(tulip_dev_depends "")
if(tulip_package_type STREQUAL "SHARED_LIBRARY")
  list(APPEND tulip_dev_depends "libtulip${TULIP_SOVERSION} (= ${TULIP_DEB_VERSION})")
  set(CPACK_DEBIAN_TOOLS_PACKAGE_DEPENDS "libtulip${TULIP_SOVERSION} (= ${TULIP_DEB_VERSION})")
endif()
# With TLS, a program linked against libtulip links OpenSSL too: the headers
# and link files of libssl-dev (the tools' and the shared library's own
# dependency on libssl3 is found by dpkg-shlibdeps).
if(TULIP_WITH_TLS)
  list(APPEND tulip_dev_depends "libssl-dev")
endif()
# Likewise liburing-dev with the io_uring backend.
if(TULIP_WITH_URING)
  list(APPEND tulip_dev_depends "liburing-dev")
endif()
list(JOIN tulip_dev_depends ", " CPACK_DEBIAN_DEVELOPMENT_PACKAGE_DEPENDS)

# Debian wants a copyright file and a changelog in /usr/share/doc/<package>/ of
# every package. They are part of the packages only, not of `cmake --install`.
configure_file("${PROJECT_SOURCE_DIR}/packaging/debian/changelog.in"
               "${PROJECT_BINARY_DIR}/debian/changelog.Debian" @ONLY)
find_program(TULIP_GZIP gzip REQUIRED)
execute_process(
  COMMAND "${TULIP_GZIP}" -9nf "${PROJECT_BINARY_DIR}/debian/changelog.Debian"
  COMMAND_ERROR_IS_FATAL ANY)
foreach(component IN LISTS CPACK_COMPONENTS_ALL)
  string(TOUPPER "${component}" component_upper)
  set(package "${CPACK_DEBIAN_${component_upper}_PACKAGE_NAME}")
  install(FILES "${PROJECT_SOURCE_DIR}/packaging/debian/copyright"
                "${PROJECT_BINARY_DIR}/debian/changelog.Debian.gz"
    DESTINATION "${CMAKE_INSTALL_DATAROOTDIR}/doc/${package}"
    COMPONENT ${component} EXCLUDE_FROM_ALL)
endforeach()

include(CPack)
