# tracecast-sink: the local OTLP/HTTP JSON receiver (tools/sink/).
# libmicrohttpd (Debian libmicrohttpd-dev): epoll thread pool, keep-alive, suspend/resume.
pkg_check_modules(MICROHTTPD REQUIRED IMPORTED_TARGET libmicrohttpd)

# Everything but main(), so tests can exercise the OTLP reader and decoder in-process.
add_library(tracecast_sink_internal STATIC
  sink/otlp_reader.cpp sink/otlp_protobuf.cpp sink/decompress.cpp sink/sink_config.cpp sink/sink_server.cpp)
target_include_directories(tracecast_sink_internal PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/sink)
target_link_libraries(tracecast_sink_internal
  PUBLIC Threads::Threads tracecast_tool_files
  PRIVATE simdjson::simdjson ZLIB::ZLIB zstd::libzstd_shared PkgConfig::MICROHTTPD)
tracecast_target_options(tracecast_sink_internal)

add_executable(tracecast-sink sink/main.cpp)
target_link_libraries(tracecast-sink PRIVATE tracecast_sink_internal)
tracecast_target_options(tracecast-sink)
# Installed next to tracecast-load, whose default mode starts it (found next to its binary).
install(TARGETS tracecast-sink RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# Throughput of the reader and of whole requests (BM_SinkRead_*, BM_SinkHttp_*), with
# in-binary baselines. Defined here because bench/ has no sink part.
if(TRACECAST_BUILD_BENCH)
  find_package(benchmark QUIET)
  if(benchmark_FOUND)
    add_executable(sink_bench sink/sink_bench.cpp)
    target_link_libraries(sink_bench PRIVATE tracecast_sink_internal simdjson::simdjson
      benchmark::benchmark Threads::Threads)
    tracecast_target_options(sink_bench)
  endif()
endif()
