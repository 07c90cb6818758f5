tracecast_add_bench(bench_ingest SOURCES ingest_bench.cpp LIBS tracecast_core)
tracecast_add_bench(bench_mapping SOURCES mapping_bench.cpp LIBS tracecast_core)
# BM_Mapping_* / BM_Encode_* / BM_MapEncode_* per attribute convention beside openrouter alone.
tracecast_add_bench(bench_conventions SOURCES conventions_bench.cpp LIBS tracecast_core tracecast_encode)
