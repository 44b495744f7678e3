# Debian packages, built by CPack from the install components of cmake/RillInstall.cmake
# (`make package`, scripts/package.sh):
#
#   rill-broker         rill-broker, rillctl, rill-bench, /etc/rill/rill.toml (a conffile: the
#                       example config with data.dir = /var/lib/rill), the systemd unit
#                       rill-broker.service (runs as user rill), maintainer scripts that create
#                       the user and /var/lib/rill (packaging/deb/)
#   librill-client1     the shared library (SONAME librill-client.so.1)
#   librill-client-dev  headers, the static library, the CMake package and rill-client.pc
#
# Library dependencies come from dpkg-shlibdeps (dpkg-dev); the -dev package names the -dev
# packages an application's build needs.

# Files only the Debian package carries, at absolute paths: component `deb`, excluded from a
# plain `cmake --install`.
set(RILL_DEB_PREFIX /usr)
set(RILL_DEB_BINDIR ${RILL_DEB_PREFIX}/${CMAKE_INSTALL_BINDIR})
set(RILL_DEB_DIR ${PROJECT_BINARY_DIR}/packaging/deb)
configure_file(packaging/deb/rill-broker.service.in ${RILL_DEB_DIR}/rill-broker.service @ONLY)
file(READ config/rill.toml RILL_DEB_TOML)
string(REPLACE "dir = \"./data\"                   #" "dir = \"/var/lib/rill\"            #"
       RILL_DEB_TOML_VAR "${RILL_DEB_TOML}")
if(RILL_DEB_TOML_VAR STREQUAL RILL_DEB_TOML)
  message(FATAL_ERROR "cmake/RillPackage.cmake: no `dir = \"./data\"` line in config/rill.toml")
endif()
file(WRITE ${RILL_DEB_DIR}/rill.toml "${RILL_DEB_TOML_VAR}")
file(WRITE ${RILL_DEB_DIR}/conffiles "/etc/rill/rill.toml\n")
install(FILES ${RILL_DEB_DIR}/rill.toml DESTINATION /etc/rill COMPONENT deb EXCLUDE_FROM_ALL)
install(FILES ${RILL_DEB_DIR}/rill-broker.service DESTINATION /lib/systemd/system
  COMPONENT deb EXCLUDE_FROM_ALL)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME rill)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "Rill maintainers <rill@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX ${RILL_DEB_PREFIX})
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/packages)
set(CPACK_STRIP_FILES ON)
set(CPACK_STRIP_COMMAND ${CMAKE_STRIP})
set(CPACK_PRE_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/packaging/deb/strip-static-libs.cmake)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL broker deb client dev)
set(CPACK_COMPONENTS_GROUPING ONE_PER_GROUP)
# The broker's two install components make one package.
set(CPACK_COMPONENT_BROKER_GROUP broker)
set(CPACK_COMPONENT_DEB_GROUP broker)
set(CPACK_COMPONENT_CLIENT_GROUP client)
set(CPACK_COMPONENT_DEV_GROUP dev)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
# Each package's Description is its CPACK_DEBIAN_<PACKAGE>_DESCRIPTION below: first line the
# summary (no CPACK_PACKAGE_DESCRIPTION_SUMMARY, which CPack would put before it).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# librill-client1 gets a shlibs file, so packages built against it depend on
# librill-client1 (>= this version), and postinst/postrm scripts that run ldconfig.
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")

set(CPACK_DEBIAN_BROKER_PACKAGE_NAME rill-broker)
set(CPACK_DEBIAN_BROKER_PACKAGE_SECTION net)
set(CPACK_DEBIAN_BROKER_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_BROKER_DESCRIPTION
  "Rill commit-log broker, rillctl and rill-bench\n\
A distributed, partitioned commit-log broker (the job of Kafka) spoken over gRPC, with the\n\
rillctl admin tool and the rill-bench load generator. The rill-broker service runs as user\n\
rill with its data in /var/lib/rill; configuration in /etc/rill/rill.toml.")
set(CPACK_DEBIAN_BROKER_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/deb/postinst
  ${PROJECT_SOURCE_DIR}/packaging/deb/prerm
  ${PROJECT_SOURCE_DIR}/packaging/deb/postrm
  ${RILL_DEB_DIR}/conffiles)
set(CPACK_DEBIAN_BROKER_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_DEBIAN_CLIENT_PACKAGE_NAME librill-client${RILL_CLIENT_SOVERSION})
set(CPACK_DEBIAN_CLIENT_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_CLIENT_DESCRIPTION
  "Rill C++ client library\n\
Producer, Consumer (manual assignment or consumer groups) and Admin for the Rill broker.")

set(CPACK_DEBIAN_DEV_PACKAGE_NAME librill-client-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
# What compiling and linking against the client needs: the shared library of this very version,
# and what RillConfig.cmake and rill-client.pc find (protobuf-compiler-grpc: Debian's gRPC CMake
# files refuse to load without its plugins).
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "librill-client${RILL_CLIENT_SOVERSION} (= ${PROJECT_VERSION}), libgrpc++-dev, libprotobuf-dev, protobuf-compiler-grpc, zlib1g-dev, libsnappy-dev, liblz4-dev, libzstd-dev")
set(CPACK_DEBIAN_DEV_DESCRIPTION
  "Rill C++ client library: development files\n\
Headers, the static library, the CMake package (find_package(Rill), Rill::client) and the\n\
pkg-config file (rill-client) of the Rill C++ client library.")

include(CPack)
