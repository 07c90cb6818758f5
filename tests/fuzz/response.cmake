# Fuzzes the sender's response side (status classification, Retry-After, partialSuccess):
# internal parsers, so it sees transport/src.
tracecast_add_fuzzer(fuzz_response SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_response.cpp
  LIBS tracecast::transport CURL::libcurl simdjson::simdjson)
target_include_directories(fuzz_response PRIVATE ${PROJECT_SOURCE_DIR}/transport/src)
