// Set-up and idle cost at gateway scale (issue 9, WORKLOAD.md "Gateway scale"):
//
//   BM_AddDestinations_Pipeline/N        one Pipeline::add_destinations call with N destinations
//                                        (the fan-out plan: 1..3 per account, mean 1.5), N = 1k,
//                                        10k, 100k, 150k; the Pipeline is built and shut down
//                                        outside the timed region
//   BM_AddDestinations_HashMapBaseline/N the plain floor beside it: the same N (account,
//                                        destination) pairs copied into a reserved
//                                        std::unordered_multimap, the least an O(n) bulk add does
//   BM_Idle_PipelineThreads/N            N destinations configured, no traffic: CPU of the
//                                        pipeline's own threads (tracecast-work*, tracecast-send*,
//                                        read by thread name as tracecast-bench-e2e does) over 5 s
//                                        of wall time after a 1 s settle, as % of one core;
//                                        N = 1k (the baseline) and 150k
//
//   BM_Stats_*/N                         stats(), prometheus(), totals() and stats_all() (the
//                                        baseline) with N = 150 and 150,000 destinations
//
//   build/bench/scale_bench --benchmark_filter=/1000/     the 1k rows (/150000/: the largest)
//
// The destinations point at the discard port on loopback (127.0.0.1:9): no span is submitted,
// so nothing is ever sent and the endpoint is never contacted.
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "resource_usage.h"
#include "topology.h"
#include "tracecast/pipeline.h"

namespace {

using namespace tracecast;
using steady = std::chrono::steady_clock;

constexpr double k_idle_seconds = 5;
constexpr double k_settle_seconds = 1;

// Exactly n destinations from the fan-out plan (accounts = ceil(n / 1.5), the plan cut to n).
std::vector<std::pair<std::string, PipelineDestination>> make_destinations(std::size_t n) {
  const auto plan = load::plan_fanout((n * 2 + 2) / 3 + 1, "zstd");
  std::vector<std::pair<std::string, PipelineDestination>> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n && i < plan.size(); ++i) {
    PipelineDestination d;
    d.transport.kind = DestinationKind::otlp_http;
    d.transport.name = plan[i].name;
    d.transport.endpoint = "http://127.0.0.1:9/v1/traces";
    d.transport.compression = plan[i].compression;
    d.privacy_mode = plan[i].privacy_mode;
    out.emplace_back(plan[i].account, std::move(d));
  }
  return out;
}

void BM_AddDestinations_Pipeline(benchmark::State& state) {
  const auto dests = make_destinations(static_cast<std::size_t>(state.range(0)));
  std::size_t refused = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto pipeline = std::make_unique<Pipeline>(PipelineConfig{});
    state.ResumeTiming();
    const std::vector<AddDestinationOutcome> outcomes = pipeline->add_destinations(dests);
    state.PauseTiming();
    for (const AddDestinationOutcome& o : outcomes) refused += o.ok() ? 0 : 1;
    if (outcomes.size() != dests.size()) refused += dests.size();
    (void)pipeline->shutdown(steady::now() + std::chrono::seconds(10));
    pipeline.reset();
    state.ResumeTiming();
  }
  if (refused != 0) state.SkipWithError("add_destinations refused destinations");
  state.counters["destinations/s"] =
      benchmark::Counter(static_cast<double>(dests.size()), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_AddDestinations_HashMapBaseline(benchmark::State& state) {
  const auto dests = make_destinations(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    std::unordered_multimap<std::string, PipelineDestination> routes;
    routes.reserve(dests.size());
    for (const auto& [account, d] : dests) routes.emplace(account, d);
    benchmark::DoNotOptimize(routes.size());
    state.PauseTiming();
    routes = {};  // the frees are not the add's cost
    state.ResumeTiming();
  }
  state.counters["destinations/s"] =
      benchmark::Counter(static_cast<double>(dests.size()), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Idle_PipelineThreads(benchmark::State& state) {
  const auto dests = make_destinations(static_cast<std::size_t>(state.range(0)));
  Pipeline pipeline{PipelineConfig{}};
  std::size_t refused = 0;
  for (const AddDestinationOutcome& o : pipeline.add_destinations(dests)) refused += o.ok() ? 0 : 1;
  if (refused != 0) {
    state.SkipWithError("add_destinations refused destinations");
    for (auto _ : state) {
    }
    return;
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(k_settle_seconds));
  double worker_ns = 0, sender_ns = 0, wall_ns = 0;
  for (auto _ : state) {
    const std::uint64_t w0 = load::threads_cpu_ns_by_name("tracecast-work");
    const std::uint64_t s0 = load::threads_cpu_ns_by_name("tracecast-send");
    const auto t0 = steady::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(k_idle_seconds));
    const auto t1 = steady::now();
    worker_ns += static_cast<double>(load::threads_cpu_ns_by_name("tracecast-work") - w0);
    sender_ns += static_cast<double>(load::threads_cpu_ns_by_name("tracecast-send") - s0);
    const double wall = std::chrono::duration<double, std::nano>(t1 - t0).count();
    wall_ns += wall;
    state.SetIterationTime(wall / 1e9);
  }
  if (wall_ns > 0) {
    state.counters["idle_core_%"] = 100.0 * (worker_ns + sender_ns) / wall_ns;
    state.counters["worker_core_%"] = 100.0 * worker_ns / wall_ns;
    state.counters["sender_core_%"] = 100.0 * sender_ns / wall_ns;
  }
  state.counters["destinations"] = static_cast<double>(dests.size());
}

// Stats at scale (issue 14): N destinations configured, 50 accounts with a few requests each
// (mostly idle). BM_Stats_Snapshot is stats() (totals + the not-healthy and top-N listing),
// BM_Stats_Prometheus is prometheus() (bytes_per_scrape counter), BM_Stats_Totals is
// totals(); BM_Stats_AllBaseline is stats_all(), every destination copied: what stats() did
// before, the baseline the others read against. Wall time per call, on the calling thread
// (the worker takes the snapshot; the caller waits for it).
enum class StatsCall { snapshot, prometheus, totals, all };

template <StatsCall Call>
void BM_Stats(benchmark::State& state) {
  const auto dests = make_destinations(static_cast<std::size_t>(state.range(0)));
  Pipeline pipeline{PipelineConfig{}};
  for (const AddDestinationOutcome& o : pipeline.add_destinations(dests)) {
    if (!o.ok()) {
      state.SkipWithError("add_destinations refused destinations");
      for (auto _ : state) {
      }
      return;
    }
  }
  LlmRequest r;
  for (int i = 0; i < 200; ++i) {
    const std::string account = dests[static_cast<std::size_t>(i % 50) * (dests.size() / 50)].first;
    r.account = account;
    r.request_id = "bench";
    (void)pipeline.submit(r);
  }
  (void)pipeline.totals();  // the worker has drained them: they are active, not idle
  std::size_t listed = 0, bytes = 0;
  for (auto _ : state) {
    if constexpr (Call == StatsCall::snapshot) {
      const PipelineStats s = pipeline.stats();
      listed = s.destinations.size();
    } else if constexpr (Call == StatsCall::prometheus) {
      const std::string text = pipeline.prometheus();
      bytes = text.size();
    } else if constexpr (Call == StatsCall::totals) {
      const PipelineStats s = pipeline.totals();
      benchmark::DoNotOptimize(s.total.submitted);
    } else {
      const PipelineStats s = pipeline.stats_all();
      listed = s.destinations.size();
    }
  }
  state.counters["destinations"] = static_cast<double>(dests.size());
  if (listed != 0) state.counters["listed"] = static_cast<double>(listed);
  if (bytes != 0) state.counters["bytes_per_scrape"] = static_cast<double>(bytes);
  pipeline.shutdown(steady::now());  // the spans to the discard port: not waited for
}

void BM_Stats_Snapshot(benchmark::State& state) { BM_Stats<StatsCall::snapshot>(state); }
void BM_Stats_Prometheus(benchmark::State& state) { BM_Stats<StatsCall::prometheus>(state); }
void BM_Stats_Totals(benchmark::State& state) { BM_Stats<StatsCall::totals>(state); }
void BM_Stats_AllBaseline(benchmark::State& state) { BM_Stats<StatsCall::all>(state); }

}  // namespace

BENCHMARK(BM_Stats_Snapshot)->Arg(150)->Arg(150000)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Stats_Prometheus)->Arg(150)->Arg(150000)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Stats_Totals)->Arg(150)->Arg(150000)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_Stats_AllBaseline)->Arg(150)->Arg(150000)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(BM_AddDestinations_Pipeline)
    ->Arg(1000)->Arg(10000)->Arg(100000)->Arg(150000)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_AddDestinations_HashMapBaseline)
    ->Arg(1000)->Arg(10000)->Arg(100000)->Arg(150000)
    ->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Idle_PipelineThreads)
    ->Arg(1000)->Arg(150000)
    ->Iterations(1)->UseManualTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
