# tracecast-bench-e2e: the whole pipeline to a tracecast-sink process on loopback (spans/s,
# CPU ns and allocations per delivered span, peak RSS, drops), beside the baseline-producers
# harness measured in the same binary. Built on the load-generation library (tools/loadgen).
if(TARGET tracecast-sink)
  add_executable(tracecast-bench-e2e ${CMAKE_CURRENT_SOURCE_DIR}/e2e/main.cpp)
  target_link_libraries(tracecast-bench-e2e PRIVATE tracecast_loadgen tracecast_alloc_counter
    Threads::Threads)
  target_include_directories(tracecast-bench-e2e PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/e2e)
  tracecast_target_options(tracecast-bench-e2e)
  add_dependencies(tracecast-bench-e2e tracecast-sink)

  if(TRACECAST_BUILD_TESTS)
    # Smoke run: one short configuration must print one valid JSON object per configuration
    # with the documented keys (checked by a CMake script with string(JSON)).
    add_test(NAME tracecast_bench_e2e_smoke
      COMMAND ${CMAKE_COMMAND}
        -DBENCH=$<TARGET_FILE:tracecast-bench-e2e>
        "-DARGS=--seconds;1;--warmup;0.5;--rate;20000;--config;single-none;--json"
        -DCONFIGS=single-none
        -P ${CMAKE_CURRENT_SOURCE_DIR}/e2e/check_json.cmake)
    # The smallest gateway-scale row (its warm-up of at least 6 s covers the 5 s max linger;
    # capped at 15 s so that a sanitizer build, which may never be steady, fits the timeout).
    add_test(NAME tracecast_bench_e2e_scale_smoke
      COMMAND ${CMAKE_COMMAND}
        -DBENCH=$<TARGET_FILE:tracecast-bench-e2e>
        "-DARGS=--seconds;1;--max-warmup;15;--config;scale-100;--json"
        -DCONFIGS=scale-100
        "-DEXTRA_KEYS=cpu_ratio_vs_base;threads_cpu_ratio_vs_base;accounts;warmup_s;steady"
        -P ${CMAKE_CURRENT_SOURCE_DIR}/e2e/check_json.cmake)
    set_tests_properties(tracecast_bench_e2e_smoke tracecast_bench_e2e_scale_smoke PROPERTIES LABELS integration
      TIMEOUT 60 ENVIRONMENT "TRACECAST_SINK_BIN=$<TARGET_FILE:tracecast-sink>")
  endif()
endif()

# BM_Route_* (a destination's API-key allow-list beside the routing flag check alone) and
# BM_Encode_*_ValueLimit (a destination's own attribute value limit beside none), issue 11.
tracecast_add_bench(routing_bench SOURCES routing_bench.cpp LIBS tracecast)
target_include_directories(routing_bench PRIVATE ${PROJECT_SOURCE_DIR}/core/pipeline)
