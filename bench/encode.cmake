# BM_Encode_* (OTLP/JSON writer) and BM_Compress_* (gzip via libdeflate and zlib, zstd), each
# beside a memcpy baseline in the same binary.
tracecast_add_bench(encode_bench SOURCES encode_bench.cpp
  LIBS tracecast_encode zstd::libzstd_shared ZLIB::ZLIB PkgConfig::LIBDEFLATE)
# libprotobuf's serializer as the "compute sizes first" baseline, when available.
include(${PROJECT_SOURCE_DIR}/cmake/TracecastOtlpProto.cmake)
if(TARGET tracecast_otlp_proto)
  target_link_libraries(encode_bench PRIVATE tracecast_otlp_proto)
  target_compile_definitions(encode_bench PRIVATE TRACECAST_BENCH_LIBPROTOBUF)
endif()
