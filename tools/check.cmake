# tracecast-check: tests a destination's settings (flags and OTEL_EXPORTER_OTLP_* variables)
# by sending one small trace; exit code 0 only on success.
add_executable(tracecast-check ${CMAKE_CURRENT_SOURCE_DIR}/check/main.cpp)
target_link_libraries(tracecast-check PRIVATE tracecast::transport)
tracecast_target_options(tracecast-check)
install(TARGETS tracecast-check RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
