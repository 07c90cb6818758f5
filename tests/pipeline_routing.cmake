# Per-destination routing, limits and resource (issue 11): integration tests against the
# bundled sink and the scripted raw server on 127.0.0.1. Included from tests/pipeline.cmake.
tracecast_add_test(pipeline_routing_test
  SOURCES pipeline_routing_test.cpp
  LIBS tracecast tracecast_test_support tracecast_transport_test_support tracecast_otlp_proto simdjson::simdjson
       tracecast_alloc_counter
  LABELS "integration;concurrency")
# KeyFilter and ExtraResource are internal to the tracecast target: the test sees core/pipeline.
target_include_directories(pipeline_routing_test PRIVATE ${PROJECT_SOURCE_DIR}/core/pipeline)
