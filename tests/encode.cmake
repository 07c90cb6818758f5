# tracecast::encode tests: the OTLP/JSON encoder and payload compression.
# They reuse the reference workload builder (bench/support/workload.h).
tracecast_add_test(otlp_json_test SOURCES otlp_json_test.cpp
  LIBS tracecast_encode tracecast_alloc_counter simdjson::simdjson)
target_include_directories(otlp_json_test PRIVATE ${PROJECT_SOURCE_DIR}/bench/support)
target_compile_definitions(otlp_json_test PRIVATE TRACECAST_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

tracecast_add_test(compress_test SOURCES compress_test.cpp
  LIBS tracecast_encode tracecast_alloc_counter zstd::libzstd_shared ZLIB::ZLIB PkgConfig::LIBDEFLATE)
target_include_directories(compress_test PRIVATE ${PROJECT_SOURCE_DIR}/bench/support)
