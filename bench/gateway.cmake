# BM_Gateway_*: raw bodies -> LlmRequest -> try_submit, beside simdjson's bare parse.
tracecast_add_bench(bench_gateway SOURCES gateway_bench.cpp LIBS tracecast_core simdjson::simdjson)
target_include_directories(bench_gateway PRIVATE ${PROJECT_SOURCE_DIR}/core/src)  # gateway_testing.h
target_compile_definitions(bench_gateway PRIVATE TRACECAST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
