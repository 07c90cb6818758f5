# Encoder fuzzer: arbitrary bytes as attribute keys, values, names and limits. The JSON output
# must always parse, be valid UTF-8, stay within the budget and hold no duplicate key; the
# protobuf output must parse with libprotobuf (our own schema, tests/proto) and decode to the
# same fields as the JSON.
include(${PROJECT_SOURCE_DIR}/cmake/TracecastOtlpProto.cmake)
if(NOT TARGET tracecast_otlp_proto)
  message(FATAL_ERROR "fuzz_encode needs libprotobuf-dev and protobuf-compiler (bash tools/setup.sh installs them)")
endif()
tracecast_add_fuzzer(fuzz_encode SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_encode.cpp
  LIBS tracecast_encode simdjson::simdjson tracecast_otlp_proto
  CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/corpus_encode)
target_include_directories(fuzz_encode PRIVATE ${PROJECT_SOURCE_DIR}/tests/support)
