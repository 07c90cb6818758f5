# Fuzzes the gateway body parsers; seeded with the real-looking bodies of the unit tests.
tracecast_add_fuzzer(fuzz_gateway SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_gateway.cpp LIBS tracecast_core simdjson::simdjson
  CORPUS ${PROJECT_SOURCE_DIR}/tests/data/gateway)
# core/src: the internal test hook that turns the stream's fast path off (gateway_testing.h).
target_include_directories(fuzz_gateway PRIVATE ${PROJECT_SOURCE_DIR}/core/src)
