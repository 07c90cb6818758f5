# tracecast-load: the gateway load simulator (the main job), and the support library it
# shares with the end-to-end benchmark (bench/pipeline.cmake): sink process management,
# CPU/RSS measurement, producers with a rate schedule and submit-latency histograms,
# the fan-out plan, formatting.

add_library(tracecast_load_support STATIC
  load/sink_runner.cpp load/resource_usage.cpp load/latency_histogram.cpp
  load/producers.cpp load/topology.cpp load/loss_check.cpp)
target_include_directories(tracecast_load_support
  PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/load ${PROJECT_SOURCE_DIR}/bench/support)
target_link_libraries(tracecast_load_support
  PUBLIC tracecast::tracecast Threads::Threads
  PRIVATE simdjson::simdjson)
tracecast_target_options(tracecast_load_support)

add_executable(tracecast-load load/main.cpp)
target_link_libraries(tracecast-load PRIVATE tracecast_load_support)
tracecast_target_options(tracecast-load)
# The bundled sink is found next to this binary: build it with it.
if(TARGET tracecast-sink)
  add_dependencies(tracecast-load tracecast-sink)
endif()
install(TARGETS tracecast-load RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Smoke runs (label integration): the accounting identity must hold and the sink must count
# exactly what the pipeline says it delivered (exit code 0).
if(TRACECAST_BUILD_TESTS)
  add_test(NAME tracecast_load_smoke
    COMMAND tracecast-load --duration 3s --rate 2000)
  add_test(NAME tracecast_load_smoke_content_single
    COMMAND tracecast-load --count 3000 --rate 0 --threads 2 --single --content --compression zstd)
  add_test(NAME tracecast_load_smoke_retries
    COMMAND tracecast-load --duration 2s --rate 1000 --sink-args "--fail-503-fraction 0.2" --retry-initial-ms 100 --json)
  # Skewed accounts, the adaptive-linger flags and the no-loss check (applies: healthy sink).
  add_test(NAME tracecast_load_smoke_zipf
    COMMAND tracecast-load --duration 3s --rate 2000 --accounts 1000 --account-skew zipf:1.1
      --linger-ms 100 --max-linger-ms 1000 --target-spans 32 --json)
  set_tests_properties(tracecast_load_smoke tracecast_load_smoke_content_single tracecast_load_smoke_retries
    tracecast_load_smoke_zipf
    PROPERTIES LABELS integration TIMEOUT 60
    ENVIRONMENT "TRACECAST_SINK_BIN=$<TARGET_FILE:tracecast-sink>")
endif()

# Unit tests of the support library (label concurrency: the producer test also runs under TSan).
if(TRACECAST_BUILD_TESTS)
  find_package(GTest REQUIRED)
  add_executable(load_support_test load/load_support_test.cpp)
  target_link_libraries(load_support_test PRIVATE tracecast_load_support GTest::gtest GTest::gtest_main Threads::Threads)
  tracecast_target_options(load_support_test)
  add_test(NAME load_support_test COMMAND load_support_test)
  set_tests_properties(load_support_test PROPERTIES LABELS concurrency TIMEOUT 120)

  # tracecast-load as a user runs it: --count/--duration stop where they say; the sink dies
  # with it (SIGKILL included) and no temporary directory stays.
  add_executable(load_process_test load/load_process_test.cpp)
  target_link_libraries(load_process_test PRIVATE GTest::gtest GTest::gtest_main Threads::Threads)
  tracecast_target_options(load_process_test)
  add_test(NAME load_process_test COMMAND load_process_test)
  set_tests_properties(load_process_test PROPERTIES LABELS integration TIMEOUT 600
    ENVIRONMENT "TRACECAST_LOAD_BIN=$<TARGET_FILE:tracecast-load>;TRACECAST_SINK_BIN=$<TARGET_FILE:tracecast-sink>")
endif()
