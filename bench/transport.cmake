# BM_Send_*: the Sender to tracecast-sink (--count-only) with 1/8/64 requests in flight,
# beside a blocking curl easy-handle loop. Needs the sink and its test helper (tests/sink.cmake),
# so it is built only with TRACECAST_BUILD_TESTS and TRACECAST_BUILD_TOOLS on.
if(TARGET tracecast_test_support AND TARGET tracecast-sink)
  tracecast_add_bench(send_bench SOURCES send_bench.cpp
    LIBS tracecast::transport tracecast_test_support CURL::libcurl)
endif()

# BM_Egress_*: the egress policy's connect-time check, alone and on a real new connection,
# beside the same without the policy. Uses the internal gate (transport/src).
tracecast_add_bench(egress_bench SOURCES egress_bench.cpp LIBS tracecast::transport CURL::libcurl)
target_include_directories(egress_bench PRIVATE ${PROJECT_SOURCE_DIR}/transport/src)
