# transport/ tests: unit tests of validation and the retry rules, and integration tests of the
# sender and the connection test against real servers on 127.0.0.1 (a scripted raw HTTP
# server, nginx for TLS + HTTP/2, tracecast-sink when built).

add_library(tracecast_transport_test_support STATIC
  support/raw_http_server.cpp support/nginx_process.cpp)
target_include_directories(tracecast_transport_test_support PUBLIC support)
target_link_libraries(tracecast_transport_test_support PUBLIC Threads::Threads)
tracecast_target_options(tracecast_transport_test_support)

tracecast_add_test(destination_test SOURCES destination_test.cpp LIBS tracecast::transport)

# Internal retry rules: sees transport/src (not installed).
tracecast_add_test(sender_policy_test SOURCES sender_policy_test.cpp
  LIBS tracecast::transport CURL::libcurl)
target_include_directories(sender_policy_test PRIVATE ${PROJECT_SOURCE_DIR}/transport/src)

tracecast_add_test(sender_test SOURCES sender_test.cpp
  LIBS tracecast::transport tracecast_transport_test_support tracecast_alloc_counter
  LABELS "integration;concurrency")

tracecast_add_test(sender_tls_test SOURCES sender_tls_test.cpp
  LIBS tracecast::transport tracecast_transport_test_support
  LABELS integration)

include(${PROJECT_SOURCE_DIR}/cmake/TracecastOtlpProto.cmake)
tracecast_add_test(connection_test_test SOURCES connection_test_test.cpp
  LIBS tracecast::tracecast tracecast::transport tracecast_transport_test_support simdjson::simdjson
       tracecast_otlp_proto
  LABELS integration)
# The CLIs it runs: tracecast-check, and tracecast-load for the egress-allow agreement.
if(TARGET tracecast-check)
  add_dependencies(connection_test_test tracecast-check)
endif()
if(TARGET tracecast-load)
  add_dependencies(connection_test_test tracecast-load)
endif()

# Against tracecast-sink (tests/sink.cmake defines tracecast_test_support, the SinkProcess
# helper; it is included after this file, and CMake resolves the target at generate time).
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/sink.cmake AND TARGET tracecast-sink)
  tracecast_add_test(sender_sink_test SOURCES sender_sink_test.cpp
    LIBS tracecast::transport tracecast_test_support ZLIB::ZLIB zstd::libzstd_shared
    LABELS integration)
  # Thousands of destinations: exact per-destination counts, the per-host connection cap over
  # TLS + HTTP/2 (nginx), memory and allocations per idle destination.
  tracecast_add_test(sender_scale_test SOURCES sender_scale_test.cpp
    LIBS tracecast::transport tracecast_test_support tracecast_transport_test_support
         tracecast_alloc_counter
    LABELS integration)
  # Add/update/remove interleaved with traffic from other threads (also under TSan).
  tracecast_add_test(sender_churn_test SOURCES sender_churn_test.cpp
    LIBS tracecast::transport tracecast_test_support
    LABELS "integration;concurrency")
endif()

# The egress policy: address classes, the compiled gate (internal, sees transport/src), and
# enforcement at connect time against listeners of our own on loopback addresses.
tracecast_add_test(egress_test SOURCES egress_test.cpp
  LIBS tracecast::transport tracecast_transport_test_support CURL::libcurl
  LABELS integration)
target_include_directories(egress_test PRIVATE ${PROJECT_SOURCE_DIR}/transport/src)

# Hostile endpoints: scripted servers on 127.0.0.1 with endless, huge, trickling and malformed
# answers; bounded bytes read, exact outcomes.
tracecast_add_test(hostile_answer_test SOURCES hostile_answer_test.cpp
  LIBS tracecast::transport
  LABELS integration)

# The destination preset catalog: per preset URL, headers, resource attributes, validation,
# the request a scripted server on 127.0.0.1 receives, connection-test hints, config loading
# and the tracecast-check / tracecast-load flags.
tracecast_add_test(presets_test SOURCES presets_test.cpp
  LIBS tracecast::tracecast tracecast::transport tracecast_transport_test_support tracecast_otlp_proto
  LABELS integration)
if(TARGET tracecast-check)
  add_dependencies(presets_test tracecast-check)
endif()
if(TARGET tracecast-load)
  add_dependencies(presets_test tracecast-load)
endif()

# The sender's own HTTP/1.1 client for http:// destinations (internal, sees transport/src):
# request bytes, answer framings, keep-alive, failures as curl codes, the per-host cap, egress,
# the resolver thread (also under TSan), cancel and allocations once warm, against scripted
# servers on loopback.
tracecast_add_test(http1_client_test SOURCES http1_client_test.cpp
  LIBS tracecast::transport CURL::libcurl tracecast_transport_test_support tracecast_alloc_counter
  LABELS "integration;concurrency")
target_include_directories(http1_client_test PRIVATE ${PROJECT_SOURCE_DIR}/transport/src)

# Review of the built-in HTTP/1.1 client: hostile endpoints, lifecycle, timers, and the same
# scripted scenarios through the built-in path and curl (same outcomes, attempts, counters).
tracecast_add_test(http1_client_review_test SOURCES http1_client_review_test.cpp
  LIBS tracecast::transport CURL::libcurl tracecast_transport_test_support tracecast_alloc_counter
  LABELS integration)
target_include_directories(http1_client_review_test PRIVATE ${PROJECT_SOURCE_DIR}/transport/src)

# Trains (HTTP/1.1 pipelining) of the built-in HTTP/1.1 client: which exchanges go together
# on one kept-alive connection, every exchange getting exactly its own answer (any framing,
# any split of the server's writes), the ends of a train (Connection: close, a server that
# closes or goes silent, cancel) and when trains stop for a host, against scripted servers
# on loopback; and the sender with many destinations on one host against tracecast-sink. Also
# under TSan.
tracecast_add_test(http1_train_test SOURCES http1_train_test.cpp
  LIBS tracecast::transport CURL::libcurl tracecast_transport_test_support tracecast_alloc_counter
       tracecast_test_support
  LABELS "integration;concurrency")
target_include_directories(http1_train_test PRIVATE ${PROJECT_SOURCE_DIR}/transport/src)
