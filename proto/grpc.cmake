# rill_proto_grpc: C++ code generated from proto/rill/**/*.proto (public API rill.v1 and the
# broker-to-broker rill.internal.v1), with gRPC service stubs.
file(GLOB_RECURSE RILL_PROTO_FILES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/rill/*.proto)
set(RILL_PROTO_OUT ${CMAKE_CURRENT_BINARY_DIR}/gen)
file(MAKE_DIRECTORY ${RILL_PROTO_OUT})
set(RILL_PROTO_SRCS)
set(RILL_PROTO_API_SRCS)  # rill/v1 only: what the client library needs
foreach(proto ${RILL_PROTO_FILES})
  file(RELATIVE_PATH rel ${CMAKE_CURRENT_SOURCE_DIR} ${proto})
  string(REGEX REPLACE "\\.proto$" "" base ${rel})
  set(outs ${RILL_PROTO_OUT}/${base}.pb.cc ${RILL_PROTO_OUT}/${base}.pb.h
           ${RILL_PROTO_OUT}/${base}.grpc.pb.cc ${RILL_PROTO_OUT}/${base}.grpc.pb.h)
  add_custom_command(
    OUTPUT ${outs}
    COMMAND protobuf::protoc
      --proto_path=${CMAKE_CURRENT_SOURCE_DIR}
      --cpp_out=${RILL_PROTO_OUT}
      --grpc_out=${RILL_PROTO_OUT}
      --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>
      ${rel}
    WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
    DEPENDS ${proto} protobuf::protoc gRPC::grpc_cpp_plugin
    COMMENT "protoc ${rel}")
  list(APPEND RILL_PROTO_SRCS ${RILL_PROTO_OUT}/${base}.pb.cc ${RILL_PROTO_OUT}/${base}.grpc.pb.cc)
  if(rel MATCHES "^rill/v1/")
    list(APPEND RILL_PROTO_API_SRCS ${RILL_PROTO_OUT}/${base}.pb.cc ${RILL_PROTO_OUT}/${base}.grpc.pb.cc)
  endif()
endforeach()

add_library(rill_proto_grpc ${RILL_PROTO_SRCS})
target_include_directories(rill_proto_grpc SYSTEM PUBLIC ${RILL_PROTO_OUT})
target_link_libraries(rill_proto_grpc PUBLIC gRPC::grpc++ protobuf::libprotobuf)
# Generated code is not ours to warn about.
target_compile_options(rill_proto_grpc PRIVATE -w)
