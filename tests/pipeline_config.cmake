# PipelineConfig validation and loading (OTEL_* environment variables, JSON config file), and
# the Prometheus exposition of PipelineStats. Included from tests/pipeline.cmake.
tracecast_add_test(config_load_test SOURCES config_load_test.cpp LIBS tracecast)

# format_prometheus() is internal to the tracecast target: the test sees core/pipeline.
tracecast_add_test(prometheus_test SOURCES prometheus_test.cpp LIBS tracecast simdjson::simdjson)
target_include_directories(prometheus_test PRIVATE ${PROJECT_SOURCE_DIR}/core/pipeline)
