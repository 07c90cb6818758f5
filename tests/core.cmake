tracecast_add_test(span_test SOURCES span_test.cpp LIBS tracecast_core)
tracecast_add_test(utf8_test SOURCES utf8_test.cpp LIBS tracecast_core)
tracecast_add_test(json_number_test SOURCES json_number_test.cpp LIBS tracecast_core)
tracecast_add_test(mapping_test SOURCES mapping_test.cpp LIBS tracecast_core tracecast_alloc_counter)
tracecast_add_test(ingest_ring_test SOURCES ingest_ring_test.cpp LIBS tracecast_core tracecast_alloc_counter
  LABELS concurrency)
# Attribute conventions per destination (issue 11); golden files under tests/golden/conventions.
tracecast_add_test(conventions_test SOURCES conventions_test.cpp
  LIBS tracecast_core tracecast_encode tracecast_alloc_counter simdjson::simdjson)
target_compile_definitions(conventions_test PRIVATE TRACECAST_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
