// Attribute conventions (issue 11): the worker's per-span cost of each convention set, mapping
// and OTLP/JSON encoding, beside openrouter alone in the same binary.
//
//   build/bench/bench_conventions --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// BM_Mapping_<set>: map_request of the reference workload (shared/WORKLOAD.md, 1,024 distinct
// requests cycled); BM_Encode_<set>: OtlpJsonEncoder::append of already mapped requests (16
// distinct, cycled) into 1 MiB batches; BM_MapEncode_<set>: both, as the worker does per
// request and destination at seal: the figure the target reads (all <= 2x openrouter).
// /content:0 is the canonical request, /content:1 its content variant (~1 KiB prompt and
// completion), whose text each convention writes again in its own names.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "llm_workload.h"
#include "tracecast/conventions.h"
#include "tracecast/mapping.h"
#include "tracecast/otlp_json.h"

namespace {

using namespace tracecast;

constexpr std::size_t k_requests = 1024;
constexpr std::size_t k_mapped = 16;           // MappedRequest is ~450 KiB: a few, cycled
constexpr std::size_t k_budget = 1024 * 1024;  // batch bytes

// The workload's requests, kept: the generator's views stay valid while it lives, except the
// request id (rewritten by each call), which is copied.
struct Requests {
  explicit Requests(bool content) : gen(workload::Generator::Options{content, 0.01, 7}) {
    ids.reserve(k_requests);
    for (std::size_t i = 0; i < k_requests; ++i) {
      reqs.push_back(gen.next(1'700'000'000'000'000'000ULL + i * 1000));
      ids.emplace_back(reqs.back().request_id);
    }
    for (std::size_t i = 0; i < k_requests; ++i) reqs[i].request_id = ids[i];
  }
  workload::Generator gen;
  std::vector<LlmRequest> reqs;
  std::vector<std::string> ids;
};

const Requests& requests(bool content) {
  static const Requests plain(false);
  static const Requests with_content(true);
  return content ? with_content : plain;
}

void counters(benchmark::State& state, std::size_t spans, std::size_t bytes) {
  state.SetItemsProcessed(static_cast<std::int64_t>(spans));
  state.counters["spans/s"] = benchmark::Counter(static_cast<double>(spans), benchmark::Counter::kIsRate);
  if (bytes != 0) state.counters["bytes_per_span"] = static_cast<double>(bytes) / static_cast<double>(spans);
}

void mapping(benchmark::State& state, ConventionSet set) {
  const Requests& rq = requests(state.range(0) != 0);
  const MappingConfig config;
  IdGenerator ids(1);
  auto out = std::make_unique<MappedRequest>();
  std::size_t i = 0, spans = 0;
  for (auto _ : state) {
    map_request(rq.reqs[i], config, set, ids, *out);
    benchmark::DoNotOptimize(out->spans().data());
    spans += out->spans().size();
    i = (i + 1) % k_requests;
  }
  counters(state, spans, 0);
}

void encode(benchmark::State& state, ConventionSet set) {
  const Requests& rq = requests(state.range(0) != 0);
  const MappingConfig config;
  IdGenerator ids(1);
  std::vector<std::unique_ptr<MappedRequest>> mapped;
  for (std::size_t i = 0; i < k_mapped; ++i) {
    mapped.push_back(std::make_unique<MappedRequest>());
    map_request(rq.reqs[i], config, set, ids, *mapped.back());
  }
  std::vector<char> buffer(k_budget);
  OtlpJsonEncoder enc;
  enc.begin(buffer, k_budget);
  std::size_t i = 0, spans = 0, bytes = 0;
  for (auto _ : state) {
    const MappedRequest& m = *mapped[i];
    if (enc.append(m.resource(), m.scope(), m.spans()) != append_result::ok) {
      bytes += enc.finish().size();
      enc.begin(buffer, k_budget);
      (void)enc.append(m.resource(), m.scope(), m.spans());
    }
    spans += m.spans().size();
    i = (i + 1) % k_mapped;
  }
  bytes += enc.finish().size();
  counters(state, spans, bytes);
}

void map_encode(benchmark::State& state, ConventionSet set) {
  const Requests& rq = requests(state.range(0) != 0);
  const MappingConfig config;
  IdGenerator ids(1);
  auto out = std::make_unique<MappedRequest>();
  std::vector<char> buffer(k_budget);
  OtlpJsonEncoder enc;
  enc.begin(buffer, k_budget);
  std::size_t i = 0, spans = 0, bytes = 0;
  for (auto _ : state) {
    map_request(rq.reqs[i], config, set, ids, *out);
    if (enc.append(out->resource(), out->scope(), out->spans()) != append_result::ok) {
      bytes += enc.finish().size();
      enc.begin(buffer, k_budget);
      (void)enc.append(out->resource(), out->scope(), out->spans());
    }
    spans += out->spans().size();
    i = (i + 1) % k_requests;
  }
  bytes += enc.finish().size();
  counters(state, spans, bytes);
}

using enum Convention;
#define TRACECAST_CONVENTION_BENCH(name, set)                                           \
  void BM_Mapping_##name(benchmark::State& s) { mapping(s, set); }                      \
  void BM_Encode_##name(benchmark::State& s) { encode(s, set); }                        \
  void BM_MapEncode_##name(benchmark::State& s) { map_encode(s, set); }                 \
  BENCHMARK(BM_Mapping_##name)->ArgName("content")->Arg(0)->Arg(1);                     \
  BENCHMARK(BM_Encode_##name)->ArgName("content")->Arg(0)->Arg(1);                      \
  BENCHMARK(BM_MapEncode_##name)->ArgName("content")->Arg(0)->Arg(1);

TRACECAST_CONVENTION_BENCH(openrouter, ConventionSet{openrouter})
TRACECAST_CONVENTION_BENCH(genai, ConventionSet{genai})
TRACECAST_CONVENTION_BENCH(openinference, ConventionSet{openinference})
TRACECAST_CONVENTION_BENCH(langfuse, ConventionSet{langfuse})
TRACECAST_CONVENTION_BENCH(langsmith, ConventionSet{langsmith})
TRACECAST_CONVENTION_BENCH(all, ConventionSet::all())

}  // namespace

BENCHMARK_MAIN();
