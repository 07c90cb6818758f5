# tracecast-check: tests a destination's settings (flags and OTEL_EXPORTER_OTLP_* variables)
# by sending one small trace; exit code 0 only on success.
add_executable(tracecast-check ${CMAKE_CURRENT_SOURCE_DIR}/check/main.cpp)
# tracecast::tracecast for destination_from_env() / egress_from_env(): the gateway's own readers
# of the environment variables.
target_link_libraries(tracecast-check PRIVATE tracecast::tracecast tracecast::transport tracecast_tool_files)
tracecast_target_options(tracecast-check)
install(TARGETS tracecast-check RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
