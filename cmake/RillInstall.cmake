# install() rules: what `cmake --install build/rel --prefix P` puts under P, by component.
#
#   broker   bin/rill-broker, bin/rillctl, bin/rill-bench, share/doc/rill/examples/rill.toml
#   client   lib/librill-client.so.<version> and its SONAME link librill-client.so.1
#   dev      the public headers (include/rill/client, include/rill/proto), lib/librill-client.so
#            (the link-time name), lib/librill-client.a, lib/cmake/Rill (RillConfig.cmake,
#            RillConfigVersion.cmake, RillTargets*.cmake) and lib/pkgconfig/rill-client.pc
#   deb      only in the Debian package rill-broker (cmake/RillPackage.cmake), never in a plain
#            install: /etc/rill/rill.toml and the systemd unit
#
# An application writes find_package(Rill CONFIG REQUIRED) and links Rill::client (the shared
# library) or Rill::client_static; or uses `pkg-config rill-client`. tests/packaging/ builds
# both kinds against an install and against the .deb packages.

install(TARGETS rill-broker rillctl rill-bench
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT broker)
install(FILES config/rill.toml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples COMPONENT broker)

install(TARGETS rill_client_shared EXPORT RillTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT client NAMELINK_COMPONENT dev)
install(TARGETS rill_client_static EXPORT RillTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)

# The public headers, listed one by one: rill/client/*.h and exactly the rill/proto headers they
# include. None includes generated protobuf/gRPC code or a private header (tests/packaging
# compiles each one alone against the installed tree).
install(FILES
    client/include/rill/client/admin.h
    client/include/rill/client/config.h
    client/include/rill/client/consumer.h
    client/include/rill/client/errors.h
    client/include/rill/client/partitioner.h
    client/include/rill/client/producer.h
    client/include/rill/client/types.h
    ${RILL_CLIENT_GENERATED_INCLUDE}/rill/client/version.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rill/client COMPONENT dev)
install(FILES
    proto/include/rill/proto/assert.h
    proto/include/rill/proto/batch_header.h
    proto/include/rill/proto/compression.h
    proto/include/rill/proto/record_batch.h
    proto/include/rill/proto/status.h
    proto/include/rill/proto/types.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/rill/proto COMPONENT dev)

# The CMake package. Paths inside are relative to the files, so an install can be moved (the
# .deb installs to /usr what was configured for /usr/local).
set(RILL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/Rill)
install(EXPORT RillTargets NAMESPACE Rill:: DESTINATION ${RILL_CMAKE_DIR} COMPONENT dev)
include(CMakePackageConfigHelpers)
configure_package_config_file(cmake/RillConfig.cmake.in
  ${PROJECT_BINARY_DIR}/packaging/RillConfig.cmake
  INSTALL_DESTINATION ${RILL_CMAKE_DIR})
# 0.x: a new minor version may change the API, so only the same major.minor is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/packaging/RillConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES
    ${PROJECT_BINARY_DIR}/packaging/RillConfig.cmake
    ${PROJECT_BINARY_DIR}/packaging/RillConfigVersion.cmake
  DESTINATION ${RILL_CMAKE_DIR} COMPONENT dev)

# rill-client.pc, relocatable too: its prefix is found from the file's own directory.
file(RELATIVE_PATH RILL_PC_PREFIX_FROM_PCFILEDIR
  /root/${CMAKE_INSTALL_LIBDIR}/pkgconfig /root)  # "../.." for lib/pkgconfig
string(REGEX REPLACE "/$" "" RILL_PC_PREFIX_FROM_PCFILEDIR "${RILL_PC_PREFIX_FROM_PCFILEDIR}")
configure_file(cmake/rill-client.pc.in ${PROJECT_BINARY_DIR}/packaging/rill-client.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/packaging/rill-client.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# What a plain install needs built (scripts/package.sh builds only these, not the tests).
add_custom_target(rill_installables)
add_dependencies(rill_installables
  rill-broker rillctl rill-bench rill_client_shared rill_client_static)
