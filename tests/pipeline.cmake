# The Pipeline end to end against tracecast-sink processes on loopback.
tracecast_add_test(pipeline_test
  SOURCES pipeline_test.cpp
  LIBS tracecast tracecast_test_support simdjson::simdjson
  LABELS "integration;concurrency")
target_link_libraries(pipeline_test PRIVATE tracecast_workload)

if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/pipeline_config.cmake)
  include(${CMAKE_CURRENT_SOURCE_DIR}/pipeline_config.cmake)
endif()

# The worker's parts (internal headers of core/pipeline) on their own.
tracecast_add_test(pipeline_parts_test
  SOURCES pipeline_parts_test.cpp
  LIBS tracecast tracecast_alloc_counter)
target_include_directories(pipeline_parts_test PRIVATE ${PROJECT_SOURCE_DIR}/core/pipeline)
