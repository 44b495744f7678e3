# Precompiled headers: most of a Rill translation unit's compile time is spent parsing the same
# third-party headers (the standard library, gRPC, protobuf and our generated protos, GoogleTest),
# so each large library precompiles them once, and every test binary reuses one precompiled
# header (rill_test_pch, tests/CMakeLists.txt). docs/ARCHITECTURE.md §14 has the figures.
#
# A precompiled header only changes how fast a file compiles, never what it means: every header
# in it is one the sources include anyway, and GCC falls back to parsing the header itself when
# the precompiled one does not fit a compile (-Winvalid-pch says so). -DRILL_PCH=OFF turns it off.
option(RILL_PCH "Precompile the third-party headers every source includes" ON)

set(RILL_PCH_STD
  <algorithm> <atomic> <chrono> <condition_variable> <cstdint> <cstring> <deque> <filesystem>
  <fstream> <functional> <map> <memory> <mutex> <optional> <set> <string> <string_view>
  <thread> <unordered_map> <utility> <vector>)

# gRPC and the generated code of the public API (rill/v1), what the client library sees.
set(RILL_PCH_API
  <grpcpp/grpcpp.h>
  <rill/v1/admin.grpc.pb.h> <rill/v1/consumer.grpc.pb.h> <rill/v1/groups.grpc.pb.h>
  <rill/v1/metadata.grpc.pb.h> <rill/v1/producer.grpc.pb.h>)

# The broker's too: the internal protocol (rill/internal/v1).
set(RILL_PCH_INTERNAL
  <rill/internal/v1/groups.pb.h> <rill/internal/v1/metadata.pb.h>
  <rill/internal/v1/raft.grpc.pb.h> <rill/internal/v1/replica.grpc.pb.h>)

# What protoc's and gRPC's generated sources include (rill_proto_grpc, rill_proto_api_pic).
set(RILL_PCH_GENERATED
  <grpcpp/grpcpp.h> <grpcpp/impl/codegen/server_callback_handlers.h>
  <grpcpp/support/method_handler.h> <grpcpp/generic/async_generic_service.h>
  <google/protobuf/descriptor.h> <google/protobuf/extension_set.h>
  <google/protobuf/generated_message_reflection.h> <google/protobuf/io/coded_stream.h>
  <google/protobuf/map_entry.h> <google/protobuf/map_field_inl.h>
  <google/protobuf/reflection_ops.h> <google/protobuf/wire_format.h>)

# rill_precompile(<target> <header>...): <target> precompiles the headers for its own sources.
function(rill_precompile target)
  if(RILL_PCH)
    target_precompile_headers(${target} PRIVATE ${ARGN})
    target_compile_options(${target} PRIVATE -Winvalid-pch)
  endif()
endfunction()

# rill_reuse_precompiled(<target> <host>): <target>'s sources use <host>'s precompiled header.
# They must be compiled with the same options as <host>'s, or GCC ignores it (and warns).
function(rill_reuse_precompiled target host)
  if(RILL_PCH)
    target_precompile_headers(${target} REUSE_FROM ${host})
    target_compile_options(${target} PRIVATE -Winvalid-pch)
  endif()
endfunction()
