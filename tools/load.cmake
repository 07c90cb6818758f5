# tracecast-load: the gateway load simulator (the main job), built on the load-generation
# library (tools/loadgen: producers, topology, sink runner, measurement) it shares with the
# end-to-end benchmark.

add_executable(tracecast-load load/main.cpp)
target_link_libraries(tracecast-load PRIVATE tracecast_loadgen)
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

  find_package(GTest REQUIRED)
  # tracecast-load as a user runs it: --count/--duration stop where they say; the sink dies
  # with it (SIGKILL included) and no temporary directory stays.
  add_executable(load_process_test load/load_process_test.cpp)
  target_link_libraries(load_process_test PRIVATE GTest::gtest GTest::gtest_main Threads::Threads)
  tracecast_target_options(load_process_test)
  add_test(NAME load_process_test COMMAND load_process_test)
  set_tests_properties(load_process_test PROPERTIES LABELS integration TIMEOUT 600
    ENVIRONMENT "TRACECAST_LOAD_BIN=$<TARGET_FILE:tracecast-load>;TRACECAST_SINK_BIN=$<TARGET_FILE:tracecast-sink>")
endif()
