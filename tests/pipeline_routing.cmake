# Per-destination routing, limits and resource (issue 11): integration tests against the
# bundled sink and the scripted raw server on 127.0.0.1. Included from tests/pipeline.cmake.
tracecast_add_test(pipeline_routing_test
  SOURCES pipeline_routing_test.cpp
  LIBS tracecast tracecast_test_support tracecast_transport_test_support tracecast_otlp_proto simdjson::simdjson
  LABELS "integration;concurrency")
