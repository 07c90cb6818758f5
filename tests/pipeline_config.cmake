# PipelineConfig validation and loading (OTEL_* environment variables, JSON config file), and
# the Prometheus exposition of PipelineStats. Included from tests/pipeline.cmake.
tracecast_add_test(config_load_test SOURCES config_load_test.cpp LIBS tracecast)

# format_prometheus() is internal to the tracecast target: the test sees core/pipeline.
tracecast_add_test(prometheus_test SOURCES prometheus_test.cpp LIBS tracecast simdjson::simdjson)
target_include_directories(prometheus_test PRIVATE ${PROJECT_SOURCE_DIR}/core/pipeline)

# The settings rows: README's configuration table, every JSON key and variable, one set of
# sender rules, structured issues. Sees core/pipeline/settings.h (internal).
tracecast_add_test(settings_test SOURCES settings_test.cpp LIBS tracecast)
target_include_directories(settings_test PRIVATE ${PROJECT_SOURCE_DIR}/core/pipeline)
