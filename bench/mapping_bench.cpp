// BM_Map_*: LlmRequest -> resource + spans (the encoder worker's per-request mapping step).
#include <benchmark/benchmark.h>

#include <memory>

#include "llm_workload.h"
#include "tracecast/mapping.h"

namespace {

void BM_Map_Canonical(benchmark::State& state) {
  tracecast::workload::Generator gen({});
  tracecast::MappingConfig config;
  tracecast::IdGenerator ids(1);
  auto out = std::make_unique<tracecast::MappedRequest>();
  const tracecast::LlmRequest& req = gen.next();
  for (auto _ : state) {
    tracecast::map_request(req, config, ids, *out);
    benchmark::DoNotOptimize(out->spans().data());
  }
  state.counters["requests/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Map_Canonical);

void BM_Map_ReferenceExampleWithTraceId(benchmark::State& state) {
  const tracecast::MetadataEntry meta[] = {
      {"trace_id", tracecast::AttributeValue::string("monitoring_001")},
      {"trace_name", tracecast::AttributeValue::string("Analysis Pipeline")},
      {"generation_name", tracecast::AttributeValue::string("Detection")},
      {"environment", tracecast::AttributeValue::string("production")}};
  tracecast::workload::Generator gen({});
  tracecast::LlmRequest req = gen.next();
  req.metadata = meta;
  tracecast::MappingConfig config;
  tracecast::IdGenerator ids(1);
  auto out = std::make_unique<tracecast::MappedRequest>();
  for (auto _ : state) {
    tracecast::map_request(req, config, ids, *out);
    benchmark::DoNotOptimize(out->spans().data());
  }
  state.counters["requests/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Map_ReferenceExampleWithTraceId);

}  // namespace

BENCHMARK_MAIN();
