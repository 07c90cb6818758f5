# Gateway body parsers (tracecast/gateway.h). Test data under tests/data/gateway.
tracecast_add_test(gateway_test SOURCES gateway_test.cpp
  LIBS tracecast_core tracecast_alloc_counter)
target_compile_definitions(gateway_test PRIVATE
  TRACECAST_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
tracecast_add_test(gateway_kinds_test SOURCES gateway_kinds_test.cpp
  LIBS tracecast_core tracecast_alloc_counter)
tracecast_add_test(gateway_shapes_test SOURCES gateway_shapes_test.cpp
  LIBS tracecast_core tracecast_alloc_counter)
target_compile_definitions(gateway_shapes_test PRIVATE
  TRACECAST_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
# The kinds of input the November 2026 user review found failing.
tracecast_add_test(gateway_review_test SOURCES gateway_review_test.cpp
  LIBS tracecast_core tracecast_alloc_counter simdjson::simdjson)
# A record's lifecycle and safety: mismatched configs, a second response on one record, stream
# calls out of order, the issues entry at the ingest limit (the review's group A).
tracecast_add_test(gateway_lifecycle_test SOURCES gateway_lifecycle_test.cpp
  LIBS tracecast_core tracecast_alloc_counter simdjson::simdjson)
# SSE framing (WHATWG: CR / CRLF / LF, multi-line data, fields, after [DONE]) and the last
# review's mapping choices.
tracecast_add_test(gateway_framing_test SOURCES gateway_framing_test.cpp
  LIBS tracecast_core tracecast_alloc_counter simdjson::simdjson)
target_compile_definitions(gateway_framing_test PRIVATE
  TRACECAST_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
# A body as a whole: cut anywhere, bytes after the first value, streamed form vs body form.
tracecast_add_test(gateway_structure_test SOURCES gateway_structure_test.cpp
  LIBS tracecast_core tracecast_alloc_counter simdjson::simdjson)
target_compile_definitions(gateway_structure_test PRIVATE
  TRACECAST_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
# Streamed tool calls: index-less (Gemini) deltas, the limit counting calls (not block
# indexes), blocks that are not tool calls, one canonical form for bodies and streams.
tracecast_add_test(gateway_tool_calls_test SOURCES gateway_tool_calls_test.cpp
  LIBS tracecast_core tracecast_alloc_counter)
# The second November 2026 review's low-severity kinds (empty SSE events, error-message limits,
# cut trace values, refusals, array content, per-record issue stats).
tracecast_add_test(gateway_review2_test SOURCES gateway_review2_test.cpp
  LIBS tracecast_core tracecast_alloc_counter simdjson::simdjson)
target_compile_definitions(gateway_review2_test PRIVATE
  TRACECAST_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
# The stream events read without simdjson (fast_event) against the general path, through the
# internal test hook (core/src/gateway_testing.h).
tracecast_add_test(gateway_fast_event_test SOURCES gateway_fast_event_test.cpp
  LIBS tracecast_core tracecast_alloc_counter)
target_include_directories(gateway_fast_event_test PRIVATE ${PROJECT_SOURCE_DIR}/core/src)
