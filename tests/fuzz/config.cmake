# Fuzzes the JSON config loader; seeded with the config files of the unit tests.
tracecast_add_fuzzer(fuzz_config SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_config.cpp LIBS tracecast
  CORPUS ${PROJECT_SOURCE_DIR}/tests/data/config)
