# Fuzzes the bundled sink's strict OTLP/JSON validation (the reader alone: no HTTP server, so
# the fuzz build needs no libmicrohttpd); seeded with the encoder's golden bodies.
tracecast_add_fuzzer(fuzz_sink_reader
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_sink_reader.cpp ${PROJECT_SOURCE_DIR}/tools/sink/otlp_reader.cpp
  LIBS simdjson::simdjson
  CORPUS ${PROJECT_SOURCE_DIR}/tests/golden)
target_include_directories(fuzz_sink_reader PRIVATE ${PROJECT_SOURCE_DIR}/tools/sink)

# Fuzzes the sink's protobuf wire checker (protobuf -> OTLP/JSON) and the JSON reader behind it,
# seeded with small protobuf bodies (tests/data/sink_protobuf) and the encoder's golden one.
tracecast_add_fuzzer(fuzz_sink_protobuf
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_sink_protobuf.cpp ${PROJECT_SOURCE_DIR}/tools/sink/otlp_protobuf.cpp
          ${PROJECT_SOURCE_DIR}/tools/sink/otlp_reader.cpp
  LIBS simdjson::simdjson
  CORPUS ${PROJECT_SOURCE_DIR}/tests/data/sink_protobuf)
target_include_directories(fuzz_sink_protobuf PRIVATE ${PROJECT_SOURCE_DIR}/tools/sink)
