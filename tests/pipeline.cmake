# The Pipeline end to end against tracecast-sink processes on loopback.
tracecast_add_test(pipeline_test
  SOURCES pipeline_test.cpp
  LIBS tracecast tracecast_test_support simdjson::simdjson
  LABELS "integration;concurrency")
target_link_libraries(pipeline_test PRIVATE tracecast_workload)

if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/pipeline_config.cmake)
  include(${CMAKE_CURRENT_SOURCE_DIR}/pipeline_config.cmake)
endif()
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/pipeline_routing.cmake)
  include(${CMAKE_CURRENT_SOURCE_DIR}/pipeline_routing.cmake)
endif()

# The worker's parts (internal headers of core/pipeline) on their own.
tracecast_add_test(pipeline_parts_test
  SOURCES pipeline_parts_test.cpp
  LIBS tracecast tracecast_alloc_counter)
target_include_directories(pipeline_parts_test PRIVATE ${PROJECT_SOURCE_DIR}/core/pipeline)
tracecast_add_test(route_table_test
  SOURCES route_table_test.cpp
  LIBS tracecast_alloc_counter)
target_include_directories(route_table_test PRIVATE ${PROJECT_SOURCE_DIR}/core/pipeline)

# Destination health (each failure category, the callback's thread, the disable policy) and
# stats at 150,000 destinations. Two entries of one binary: the health part runs under TSan
# too; the 150,000-destination part is too large for it.
tracecast_add_test(pipeline_health_test
  SOURCES pipeline_health_test.cpp
  LIBS tracecast tracecast_test_support
  LABELS "integration;concurrency"
  ARGS --gtest_filter=-StatsAtScale.*)
target_link_libraries(pipeline_health_test PRIVATE tracecast_transport_test_support)
# RUN_SERIAL: alone, so that its sinks and the 150,000 destinations do not slow the other
# integration tests' sinks (under TSan a slowed sink makes pipeline_test's budgets overflow).
set_tests_properties(pipeline_health_test PROPERTIES TIMEOUT 600 RUN_SERIAL TRUE)
add_test(NAME pipeline_health_test_stats_scale COMMAND pipeline_health_test --gtest_filter=StatsAtScale.*)
set_tests_properties(pipeline_health_test_stats_scale PROPERTIES LABELS integration TIMEOUT 900 RUN_SERIAL TRUE
  ENVIRONMENT "TRACECAST_BUILD_DIR=${CMAKE_BINARY_DIR};TRACECAST_SOURCE_DIR=${CMAKE_SOURCE_DIR}")

# Attribute conventions per destination through the Pipeline and the config file (issue 11).
tracecast_add_test(pipeline_conventions_test
  SOURCES pipeline_conventions_test.cpp
  LIBS tracecast tracecast_test_support simdjson::simdjson
  LABELS "integration;concurrency")

# What an idle destination, and one that has sent, costs in memory (issue 9): a bound per
# destination, counted with the test allocator (the second part against a sink on loopback).
tracecast_add_test(pipeline_memory_test
  SOURCES pipeline_memory_test.cpp
  LIBS tracecast tracecast_alloc_counter tracecast_test_support
  LABELS integration)
