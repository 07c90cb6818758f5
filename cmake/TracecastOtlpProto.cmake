# tracecast_otlp_proto: C++ generated at build time (protoc) from tests/proto/otlp_test.proto,
# the project's own OTLP schema, for tests, fuzzers and benchmarks only. Defines nothing when
# libprotobuf or protoc is missing (callers check `if(TARGET tracecast_otlp_proto)`).
if(NOT TARGET tracecast_otlp_proto)
  find_package(Protobuf QUIET)
  if(Protobuf_FOUND AND Protobuf_PROTOC_EXECUTABLE)
    set(_tc_proto_src ${PROJECT_SOURCE_DIR}/tests/proto/otlp_test.proto)
    set(_tc_proto_out ${PROJECT_BINARY_DIR}/otlp_proto)
    file(MAKE_DIRECTORY ${_tc_proto_out})
    add_custom_command(
      OUTPUT ${_tc_proto_out}/otlp_test.pb.cc ${_tc_proto_out}/otlp_test.pb.h
      COMMAND ${Protobuf_PROTOC_EXECUTABLE} --cpp_out=${_tc_proto_out} -I ${PROJECT_SOURCE_DIR}/tests/proto ${_tc_proto_src}
      DEPENDS ${_tc_proto_src}
      COMMENT "protoc: tests/proto/otlp_test.proto"
      VERBATIM)
    add_library(tracecast_otlp_proto STATIC ${_tc_proto_out}/otlp_test.pb.cc)
    # Generated code: its own warnings are not ours (included as a system header).
    target_include_directories(tracecast_otlp_proto SYSTEM PUBLIC ${_tc_proto_out} ${Protobuf_INCLUDE_DIRS})
    target_link_libraries(tracecast_otlp_proto PUBLIC ${Protobuf_LIBRARIES})
    set_target_properties(tracecast_otlp_proto PROPERTIES POSITION_INDEPENDENT_CODE ON)
  endif()
endif()
