// Encoder and compression throughput on the reference workload (WORKLOAD.md).
//
//   build-enc/bench/encode_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Read each figure against its baseline in the same run: BM_Encode_Memcpy_* copies exactly the
// bytes the encoder wrote (the physical ceiling); BM_Compress_Memcpy copies the sealed batch.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <ctime>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "tracecast/compress.h"
#include "tracecast/otlp_json.h"
#include "tracecast/otlp_protobuf.h"
#include "workload.h"
#ifdef TRACECAST_BENCH_LIBPROTOBUF
#include "otlp_test.pb.h"
#endif

namespace {

using namespace tracecast;

constexpr std::size_t k_requests = 1024;       // distinct requests cycled through
constexpr std::size_t k_budget = 1024 * 1024;  // batch budget (bytes)

struct Corpus {
  explicit Corpus(bool content) : gen(12345, content) {
    for (std::size_t i = 0; i < k_requests; ++i) {
      reqs.push_back(std::make_unique<workload::SpanRequest>());
      gen.next(*reqs.back());
    }
  }
  workload::SpanGenerator gen;
  std::vector<std::unique_ptr<workload::SpanRequest>> reqs;
};

const Corpus& corpus(bool content) {
  static const Corpus plain(false);
  static const Corpus with_content(true);
  return content ? with_content : plain;
}

// Encodes every request of the corpus once (into as many batches as needed); returns bytes.
// `batches`, when given, receives each finished body (outside timed loops only).
template <typename Encoder>
std::size_t encode_corpus(Encoder& enc, std::vector<char>& buffer, const Corpus& c,
                          std::vector<std::string>* batches = nullptr) {
  std::size_t bytes = 0;
  enc.begin(buffer, k_budget);
  for (const auto& r : c.reqs) {
    if (enc.append(r->resource(), r->scope(), r->spans()) != append_result::ok) {
      const std::string_view doc = enc.finish();
      if (batches != nullptr) batches->emplace_back(doc);
      bytes += doc.size();
      enc.begin(buffer, k_budget);
      (void)enc.append(r->resource(), r->scope(), r->spans());
    }
  }
  const std::string_view doc = enc.finish();
  benchmark::DoNotOptimize(doc.data());
  if (batches != nullptr) batches->emplace_back(doc);
  bytes += doc.size();
  return bytes;
}

// Bytes per span after compressing each batch of the corpus (as the pipeline does).
double compressed_per_span(const std::vector<std::string>& batches, Codec codec) {
  Compressor comp(codec, 1);
  std::size_t total = 0;
  for (const std::string& b : batches) {
    std::vector<char> out(Compressor::bound(codec, b.size()));
    total += comp.compress(b, out);
  }
  return static_cast<double>(total) / k_requests;
}

template <typename Encoder>
void encode(benchmark::State& state, bool content) {
  const Corpus& c = corpus(content);
  std::vector<char> buffer(k_budget);
  Encoder enc;
  std::size_t bytes = 0;
  for (auto _ : state) {
    bytes = encode_corpus(enc, buffer, c);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * k_requests));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
  state.counters["bytes_per_span"] = static_cast<double>(bytes) / k_requests;
  std::vector<std::string> batches;
  (void)encode_corpus(enc, buffer, c, &batches);
  state.counters["gzip1_bytes_per_span"] = compressed_per_span(batches, Codec::gzip);
  state.counters["zstd1_bytes_per_span"] = compressed_per_span(batches, Codec::zstd);
}

// The same number of output bytes, copied from a finished document: the ceiling.
void memcpy_baseline(benchmark::State& state, bool content) {
  const Corpus& c = corpus(content);
  std::vector<char> buffer(k_budget);
  OtlpJsonEncoder enc;
  const std::size_t bytes = encode_corpus(enc, buffer, c);
  std::vector<char> src(bytes, 'x');
  enc.begin(buffer, k_budget);
  std::vector<char> dst(bytes);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), bytes);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * k_requests));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}

void BM_Encode_Canonical(benchmark::State& s) { encode<OtlpJsonEncoder>(s, false); }
void BM_Encode_Content(benchmark::State& s) { encode<OtlpJsonEncoder>(s, true); }
void BM_Encode_Protobuf_Canonical(benchmark::State& s) { encode<OtlpProtobufEncoder>(s, false); }
void BM_Encode_Protobuf_Content(benchmark::State& s) { encode<OtlpProtobufEncoder>(s, true); }
void BM_Encode_Memcpy_Canonical(benchmark::State& s) { memcpy_baseline(s, false); }
void BM_Encode_Memcpy_Content(benchmark::State& s) { memcpy_baseline(s, true); }
BENCHMARK(BM_Encode_Canonical);
BENCHMARK(BM_Encode_Protobuf_Canonical);
BENCHMARK(BM_Encode_Memcpy_Canonical);
BENCHMARK(BM_Encode_Content);
BENCHMARK(BM_Encode_Protobuf_Content);
BENCHMARK(BM_Encode_Memcpy_Content);

#ifdef TRACECAST_BENCH_LIBPROTOBUF
// The other length-prefix strategy, "compute sizes first", as libprotobuf does it: the same
// batches decoded into messages beforehand, then SerializeToArray (ByteSizeLong over the tree,
// then one pass writing minimal prefixes). Building the message tree is not timed, so this is
// a lower bound for that strategy, not a like-for-like encoder.
void libprotobuf_serialize(benchmark::State& state, bool content) {
  const Corpus& c = corpus(content);
  std::vector<char> buffer(k_budget);
  OtlpProtobufEncoder enc;
  std::vector<std::string> batches;
  (void)encode_corpus(enc, buffer, c, &batches);
  std::vector<otlp::ExportTraceServiceRequest> msgs(batches.size());
  for (std::size_t i = 0; i < batches.size(); ++i)
    if (!msgs[i].ParseFromString(batches[i])) state.SkipWithError("libprotobuf refused a batch");
  std::size_t bytes = 0;
  for (auto _ : state) {
    bytes = 0;
    for (const auto& m : msgs) {
      const std::size_t n = m.ByteSizeLong();
      m.SerializeWithCachedSizesToArray(reinterpret_cast<std::uint8_t*>(buffer.data()));
      bytes += n;
    }
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * k_requests));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
  state.counters["bytes_per_span"] = static_cast<double>(bytes) / k_requests;
}
void BM_Encode_LibprotobufSerialize_Canonical(benchmark::State& s) { libprotobuf_serialize(s, false); }
void BM_Encode_LibprotobufSerialize_Content(benchmark::State& s) { libprotobuf_serialize(s, true); }
BENCHMARK(BM_Encode_LibprotobufSerialize_Canonical);
BENCHMARK(BM_Encode_LibprotobufSerialize_Content);
#endif

// A sealed batch of canonical spans, as the pipeline compresses it.
const std::string& sealed_batch() {
  static const std::string batch = [] {
    const Corpus& c = corpus(false);
    std::vector<char> buffer(k_budget);
    OtlpJsonEncoder enc;
    enc.begin(buffer, k_budget);
    for (std::size_t i = 0;; ++i) {
      const auto& r = c.reqs[i % k_requests];
      if (enc.append(r->resource(), r->scope(), r->spans()) != append_result::ok) break;
    }
    return std::string(enc.finish());
  }();
  return batch;
}

void compress(benchmark::State& state, Codec codec, GzipBackend backend) {
  const std::string& in = sealed_batch();
  Compressor comp(codec, static_cast<int>(state.range(0)), backend);
  std::vector<char> out(Compressor::bound(codec, in.size()));
  std::size_t n = 0;
  for (auto _ : state) {
    n = comp.compress(in, out);
    benchmark::DoNotOptimize(n);
  }
  if (n == 0) state.SkipWithError("compress failed");
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
  state.counters["ratio"] = static_cast<double>(in.size()) / static_cast<double>(n);
  state.counters["batch_bytes"] = static_cast<double>(in.size());
}

void BM_Compress_Memcpy(benchmark::State& state) {
  const std::string& in = sealed_batch();
  std::vector<char> out(in.size());
  for (auto _ : state) {
    std::memcpy(out.data(), in.data(), in.size());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
}
void BM_Compress_Zstd(benchmark::State& s) { compress(s, Codec::zstd, GzipBackend::libdeflate); }
void BM_Compress_GzipLibdeflate(benchmark::State& s) { compress(s, Codec::gzip, GzipBackend::libdeflate); }
void BM_Compress_GzipZlib(benchmark::State& s) { compress(s, Codec::gzip, GzipBackend::zlib); }
BENCHMARK(BM_Compress_Memcpy);
BENCHMARK(BM_Compress_Zstd)->Arg(1)->Arg(3)->Arg(-1);
BENCHMARK(BM_Compress_GzipLibdeflate)->Arg(1)->Arg(3)->Arg(6);
BENCHMARK(BM_Compress_GzipZlib)->Arg(1)->Arg(3)->Arg(6);

// Small bodies: a quiet destination's batch of 1..15 canonical spans (gateway scale, README
// Performance "Gateway scale": 1.4 spans per request at 100,000 accounts, ~10 at 10,000), as
// the pipeline compresses them (level 1). 64 distinct bodies per size, cycled, so neither the
// input nor the output stays in L1. Per-call costs (entropy tables, hash-table setup) dominate
// here, not bytes: read the CPU time per body beside the same size's other rows.
//   BM_Compress_Small_Zstd            the default: literals stored raw below 16 KiB (new path)
//   BM_Compress_Small_ZstdHuffman     the same with Huffman-coded literals (the path before)
//   BM_Compress_Small_GzipLibdeflate  libdeflate level 1 (clears a 128 KiB hash table per call)
//   BM_Compress_Small_GzipZlib        zlib level 1 (memLevel 8)
//   BM_Compress_Small_Memcpy          copy of the body (the floor)
const std::vector<std::string>& small_bodies(std::size_t spans) {
  static std::vector<std::vector<std::string>> by_spans(64);
  std::vector<std::string>& bodies = by_spans.at(spans);
  if (!bodies.empty()) return bodies;
  const Corpus& c = corpus(false);
  std::vector<char> buffer(k_budget);
  OtlpJsonEncoder enc;
  std::size_t next = 0;
  for (int b = 0; b < 64; ++b) {
    enc.begin(buffer, k_budget);
    for (std::size_t i = 0; i < spans; ++i) {
      const auto& r = c.reqs[next++ % k_requests];
      (void)enc.append(r->resource(), r->scope(), r->spans());
    }
    bodies.emplace_back(enc.finish());
  }
  return bodies;
}

void compress_small(benchmark::State& state, Compressor comp) {
  const auto spans = static_cast<std::size_t>(state.range(0));
  const std::vector<std::string>& bodies = small_bodies(spans);
  std::vector<char> out(Compressor::bound(comp.codec(), 1 << 20));
  std::size_t i = 0;
  std::size_t in_bytes = 0;
  std::size_t out_bytes = 0;
  for (auto _ : state) {
    const std::string& in = bodies[i++ % bodies.size()];
    const std::size_t n = comp.compress(in, out);
    if (n == 0) {
      state.SkipWithError("compress failed");
      break;
    }
    benchmark::DoNotOptimize(out.data());
    in_bytes += in.size();
    out_bytes += n;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(in_bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * spans));  // spans
  if (out_bytes > 0) state.counters["ratio"] = static_cast<double>(in_bytes) / static_cast<double>(out_bytes);
  state.counters["body_bytes"] = static_cast<double>(in_bytes) / static_cast<double>(std::max<std::int64_t>(state.iterations(), 1));
}

void BM_Compress_Small_Zstd(benchmark::State& s) { compress_small(s, Compressor(Codec::zstd, 1)); }
void BM_Compress_Small_ZstdHuffman(benchmark::State& s) {
  compress_small(s, Compressor(Codec::zstd, 1, GzipBackend::libdeflate, 0));
}
void BM_Compress_Small_GzipLibdeflate(benchmark::State& s) { compress_small(s, Compressor(Codec::gzip, 1)); }
void BM_Compress_Small_GzipZlib(benchmark::State& s) {
  compress_small(s, Compressor(Codec::gzip, 1, GzipBackend::zlib));
}
void BM_Compress_Small_Memcpy(benchmark::State& s) { compress_small(s, Compressor(Codec::none, 0)); }
BENCHMARK(BM_Compress_Small_Zstd)->Arg(1)->Arg(2)->Arg(5)->Arg(10)->Arg(15);
BENCHMARK(BM_Compress_Small_ZstdHuffman)->Arg(1)->Arg(2)->Arg(5)->Arg(10)->Arg(15);
BENCHMARK(BM_Compress_Small_GzipLibdeflate)->Arg(1)->Arg(2)->Arg(5)->Arg(10)->Arg(15);
BENCHMARK(BM_Compress_Small_GzipZlib)->Arg(1)->Arg(2)->Arg(5)->Arg(10)->Arg(15);
BENCHMARK(BM_Compress_Small_Memcpy)->Arg(1)->Arg(2)->Arg(5)->Arg(10)->Arg(15);
// A 2-span body (100,000 accounts: 1.9 spans per request) at zstd level 1 (the default),
// -1 and -4: what a faster level would save per body, and what it costs in ratio.
void BM_Compress_Small_ZstdLevel(benchmark::State& s) {
  compress_small(s, Compressor(Codec::zstd, static_cast<int>(s.range(1))));
}
BENCHMARK(BM_Compress_Small_ZstdLevel)->ArgNames({"spans", "level"})->Args({2, 1})->Args({2, -1})->Args({2, -4});

// Does a zstd call on a small body pay for what ran since the last one? (README, "CPU at
// gateway scale": the worker's zstd costs ~1.8x BM_Compress_Small_Zstd per body at 10,000
// accounts.) Between two timed zstd calls on 10-span bodies, the untimed gap does what the
// worker does between two zstd seals: `gap_kib` KiB of other memory touched line by line at
// random (records read back, encoding, routing) and, with `deflate` 1, a libdeflate call on
// another body (a gzip destination sealed in between: it clears its 128 KiB hash table).
// Only the zstd calls are timed, in thread CPU time (CLOCK_THREAD_CPUTIME_ID around each: a
// shared machine preempts; the two reads add the same few hundred ns to every row): `zstd_ns`
// per call against gap 0 (back to back, warm tables) says what compressing the due bodies back
// to back could save.
void BM_Compress_Small_ZstdAfterGap(benchmark::State& state) {
  const auto gap_kib = static_cast<std::size_t>(state.range(0));
  const bool deflate = state.range(1) != 0;
  const std::vector<std::string>& bodies = small_bodies(10);
  Compressor zstd(Codec::zstd, 1);
  Compressor gzip(Codec::gzip, 1);
  std::vector<char> out(Compressor::bound(Codec::zstd, 1 << 20));
  std::vector<char> gz_out(Compressor::bound(Codec::gzip, 1 << 20));
  constexpr std::size_t k_other_bytes = 256u << 20;  // far past L2 and this VM's share of L3
  std::vector<char> other(k_other_bytes, 1);
  std::uint64_t rng = 0x9E3779B97F4A7C15ULL;
  std::size_t i = 0;
  std::int64_t zstd_ns = 0;
  std::uint64_t sink = 0;
  for (auto _ : state) {
    for (std::size_t line = 0; line < gap_kib * 16; ++line) {
      rng ^= rng << 13;
      rng ^= rng >> 7;
      rng ^= rng << 17;
      sink += static_cast<unsigned char>(other[(rng % (k_other_bytes / 64)) * 64]);
    }
    if (deflate) benchmark::DoNotOptimize(gzip.compress(bodies[(i + 32) % bodies.size()], gz_out));
    const std::string& in = bodies[i++ % bodies.size()];
    timespec t0{};
    timespec t1{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
    const std::size_t n = zstd.compress(in, out);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
    benchmark::DoNotOptimize(n);
    zstd_ns += (t1.tv_sec - t0.tv_sec) * 1'000'000'000LL + (t1.tv_nsec - t0.tv_nsec);
  }
  benchmark::DoNotOptimize(sink);
  state.counters["zstd_ns"] = static_cast<double>(zstd_ns) / static_cast<double>(std::max<std::int64_t>(state.iterations(), 1));
}
BENCHMARK(BM_Compress_Small_ZstdAfterGap)
    ->ArgNames({"gap_kib", "deflate"})
    ->Args({0, 0})
    ->Args({0, 1})
    ->Args({64, 0})
    ->Args({64, 1})
    ->Args({256, 1})
    ->Args({2048, 1});

}  // namespace

BENCHMARK_MAIN();
