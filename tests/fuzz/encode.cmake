# Encoder fuzzer: arbitrary bytes as attribute keys, values, names and limits; the output must
# always parse as JSON, be valid UTF-8, stay within the budget and hold no duplicate key.
tracecast_add_fuzzer(fuzz_encode SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_encode.cpp
  LIBS tracecast_encode simdjson::simdjson
  CORPUS ${CMAKE_CURRENT_SOURCE_DIR}/corpus_encode)
