# BM_Encode_* (OTLP/JSON writer) and BM_Compress_* (gzip via libdeflate and zlib, zstd), each
# beside a memcpy baseline in the same binary.
tracecast_add_bench(encode_bench SOURCES encode_bench.cpp
  LIBS tracecast_encode zstd::libzstd_shared ZLIB::ZLIB PkgConfig::LIBDEFLATE)
