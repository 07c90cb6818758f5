# tracecast::encode tests: the OTLP/JSON encoder and payload compression.
# They reuse the reference workload builder (tools/loadgen/workload.h).
tracecast_add_test(otlp_json_test SOURCES otlp_json_test.cpp
  LIBS tracecast_encode tracecast_alloc_counter simdjson::simdjson)
target_link_libraries(otlp_json_test PRIVATE tracecast_workload)
target_compile_definitions(otlp_json_test PRIVATE TRACECAST_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

tracecast_add_test(compress_test SOURCES compress_test.cpp
  LIBS tracecast_encode tracecast_alloc_counter zstd::libzstd_shared ZLIB::ZLIB PkgConfig::LIBDEFLATE)
target_link_libraries(compress_test PRIVATE tracecast_workload)
