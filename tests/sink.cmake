# tracecast-sink tests, and the support library other tests use to run the sink
# (tests/support/sink_process.h: SinkProcess, SinkStats, a plain-socket HTTP client).
add_library(tracecast_test_support STATIC support/sink_process.cpp)
target_include_directories(tracecast_test_support PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/support)
target_link_libraries(tracecast_test_support PRIVATE simdjson::simdjson PUBLIC Threads::Threads)
tracecast_target_options(tracecast_test_support)
if(TARGET tracecast-sink)
  # Tests that link the support library get the sink binary built (and its path compiled in
  # as the last fallback after $TRACECAST_SINK_BIN and $TRACECAST_BUILD_DIR/tools).
  add_dependencies(tracecast_test_support tracecast-sink)
  target_compile_definitions(tracecast_test_support PRIVATE
    TRACECAST_SINK_PATH="$<TARGET_FILE:tracecast-sink>")

  tracecast_add_test(sink_test
    SOURCES sink_test.cpp
    LIBS tracecast_test_support tracecast_sink_internal tracecast_encode simdjson::simdjson ZLIB::ZLIB
         zstd::libzstd_shared tracecast_alloc_counter
    LABELS integration)
endif()
