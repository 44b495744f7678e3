# Finds the Debian-packaged dependencies (scripts/install-deps.sh installs them).
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(ZLIB REQUIRED)

pkg_check_modules(LZ4 REQUIRED IMPORTED_TARGET liblz4)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
find_package(Snappy CONFIG REQUIRED)        # Snappy::snappy

find_package(GTest REQUIRED)
find_package(benchmark REQUIRED)
find_package(spdlog REQUIRED)               # spdlog::spdlog
find_package(CLI11 CONFIG REQUIRED)         # CLI11::CLI11
find_package(RocksDB CONFIG REQUIRED)       # RocksDB::rocksdb
find_package(Protobuf REQUIRED)             # protobuf::libprotobuf, protobuf::protoc
find_package(gRPC CONFIG REQUIRED)          # gRPC::grpc++, gRPC::grpc++_reflection, gRPC::grpc_cpp_plugin

# libFuzzer targets need clang; built only when it is present.
find_program(RILL_CLANGXX clang++)
