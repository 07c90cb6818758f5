// tracecast-bench-e2e: the whole pipeline, gateway threads to a tracecast-sink process on
// loopback, per configuration:
//
//   single-none / single-gzip / single-zstd   one destination, canonical request, at --rate
//   single-zstd-content                       one destination, content variant (~3.5 KB/span)
//   single-protobuf / single-protobuf-zstd    one destination, http/protobuf, no codec / zstd
//   single-conventions-all                    single-none with all five attribute conventions
//   fanout                                    100 accounts, 1.5 destinations each on average,
//                                             one in five privacy mode, codecs zstd/none/gzip
//   fanout-dead                               the same plus one all-accounts destination whose
//                                             server accepts and never answers (a second sink
//                                             with --delay-ms 3600000): every request also
//                                             goes to it, so it sheds (backpressure) at once
//   fanout-dead-acct                          the same dead server as one more destination of
//                                             acct_0 only (~1% of requests)
//   single-countonly-flatout                  2 producers flat out, sink --count-only, no codec
//   scale-100 / scale-1k / scale-10k / scale-100k
//                                             WORKLOAD.md "Gateway scale": 100 .. 100,000
//                                             accounts, 1.5 destinations each (the fan-out
//                                             plan), 20,000 requests/s in all, uniform over
//                                             accounts, healthy sink, default config
//   scale-100-zipf ... scale-100k-zipf        the same with accounts drawn Zipf(1.1)
//   (groups: --config scale = the four uniform sizes, --config scale-zipf = the four Zipf
//   ones; a scale configuration alone also runs its shape's 100-account row, for the ratio)
//
// and the plain baseline beside them, `baseline-producers`: the same producer threads (same
// generator, clock reads, rate schedule and latency histogram) submitting nothing. Its CPU
// per request is the harness's own cost; `pipeline_cpu_ns_per_span` subtracts it.
//
// Each configuration: start sink(s) and pipeline, warm up (--warmup, default 1 s), measure
// for --seconds (default 5): delivered spans/s, process CPU (getrusage user+sys, the sink
// excluded: it is another process) per delivered span, operator-new allocations per
// delivered span, then stop, flush, shutdown; peak RSS is VmHWM (reset before each run, after
// the previous runs' freed memory is returned to the kernel: malloc_trim, glibc).
// --repetitions K reports the median of each figure. Every configuration adds its destinations
// with one add_destinations call, timed. A scale configuration warms up for at least the
// default max linger plus a second (6 s), and until it is steady (steady_warm_up: delivered
// >= 97% of what it was handed in each of the last two 2 s spans; at most 60 s), so that the
// window measures the steady state, not the fill of quiet destinations' batches. Its row adds
// spans per HTTP request, the batch memory peak, the add time, the warm-up taken, drops by
// reason, and process CPU per span as a ratio to the same shape's 100-account row of the same
// invocation.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "alloc_counter.h"
#include "latency_histogram.h"
#include "llm_workload.h"
#include "producers.h"
#include "resource_usage.h"
#include "sink_runner.h"
#include "topology.h"
#include "tracecast/pipeline.h"

namespace {

using namespace tracecast;
using namespace tracecast::load;
using steady = std::chrono::steady_clock;

struct Spec {
  std::string name;
  bool fanout = false;
  std::string compression = "none";
  std::string protocol;  // "" = http/json
  bool content = false;
  bool dead = false;
  bool count_only = false;
  bool flat_out = false;
  std::string dead_account;  // account of the dead destination ("" = every account)
  // Gateway scale (WORKLOAD.md): accounts of the fan-out plan and their traffic shape, at a
  // fixed rate instead of --rate; `scale_base` names the same shape's 100-account row.
  bool scale = false;
  std::size_t accounts = 100;
  AccountSkew skew{};
  double fixed_rate = 0;  // requests/s; 0 = --rate
  std::string scale_base;
  // Every destination with its own routing and limits (issue 11): an api_key_ids list of every
  // workload key id (nothing filtered: the same delivered work as without), max_request_bytes
  // 1,000,000 and max_attribute_value_bytes 2048 (canonical values are shorter: nothing cut).
  bool routed = false;
  // Every attribute convention at once (issue 11's target: at most 2x the worker CPU per span of
  // `openrouter` alone, i.e. `single-none` in the same run).
  bool all_conventions = false;
};

// WORKLOAD.md "Gateway scale": 20,000 requests/s in all, whatever the account count.
constexpr double k_scale_rate = 20000;
// A scale run warms up at least this long: the default max linger (5 s) plus a second; then
// until it is steady (steady_warm_up below), at most --max-warmup.
constexpr double k_scale_min_warmup_s = 6;
// Steady: in each of the last two spans of k_steady_span_s, spans delivered >=
// k_steady_fraction of the spans handed to destinations in it.
constexpr double k_steady_span_s = 2;
constexpr double k_steady_fraction = 0.97;

Spec plain(std::string name, bool fanout, std::string compression, bool content, bool dead, bool count_only,
           bool flat_out, std::string dead_account) {
  Spec s;
  s.name = std::move(name);
  s.fanout = fanout;
  s.compression = std::move(compression);
  s.content = content;
  s.dead = dead;
  s.count_only = count_only;
  s.flat_out = flat_out;
  s.dead_account = std::move(dead_account);
  return s;
}

Spec routed(Spec s) {
  s.name += "-routed";
  s.routed = true;
  return s;
}

Spec all_conventions(Spec s) {
  s.name = "single-conventions-all";
  s.all_conventions = true;
  return s;
}

Spec protobuf(Spec s) {
  s.protocol = "http/protobuf";
  return s;
}

Spec scale(std::string name, std::size_t accounts, bool zipf) {
  Spec s;
  s.name = std::move(name);
  s.fanout = true;
  s.compression = "zstd";
  s.scale = true;
  s.accounts = accounts;
  if (zipf) s.skew = AccountSkew{AccountSkew::Kind::zipf, 1.1};
  s.fixed_rate = k_scale_rate;
  s.scale_base = zipf ? "scale-100-zipf" : "scale-100";
  return s;
}

const std::vector<Spec>& specs() {
  static const std::vector<Spec> all = {
      plain("single-none", false, "none", false, false, false, false, ""),
      plain("single-gzip", false, "gzip", false, false, false, false, ""),
      plain("single-zstd", false, "zstd", false, false, false, false, ""),
      plain("single-zstd-content", false, "zstd", true, false, false, false, ""),
      all_conventions(plain("single-none", false, "none", false, false, false, false, "")),
      protobuf(plain("single-protobuf", false, "none", false, false, false, false, "")),
      protobuf(plain("single-protobuf-zstd", false, "zstd", false, false, false, false, "")),
      plain("fanout", true, "zstd", false, false, false, false, ""),
      routed(plain("fanout", true, "zstd", false, false, false, false, "")),
      plain("fanout-dead", true, "zstd", false, true, false, false, ""),
      plain("fanout-dead-acct", true, "zstd", false, true, false, false, "acct_0"),
      plain("single-countonly-flatout", false, "none", false, false, true, true, ""),
      scale("scale-100", 100, false),
      scale("scale-1k", 1000, false),
      scale("scale-10k", 10000, false),
      scale("scale-100k", 100000, false),
      scale("scale-100-zipf", 100, true),
      scale("scale-1k-zipf", 1000, true),
      scale("scale-10k-zipf", 10000, true),
      scale("scale-100k-zipf", 100000, true),
  };
  return all;
}

// --config groups: a name that selects several configurations.
const std::map<std::string, std::vector<std::string>>& groups() {
  static const std::map<std::string, std::vector<std::string>> all = {
      {"scale", {"scale-100", "scale-1k", "scale-10k", "scale-100k"}},
      {"scale-zipf", {"scale-100-zipf", "scale-1k-zipf", "scale-10k-zipf", "scale-100k-zipf"}},
  };
  return all;
}

double rate_of(const Spec& spec, double rate_option) {
  if (spec.flat_out) return 0;
  return spec.fixed_rate > 0 ? spec.fixed_rate : rate_option;
}

struct BenchOptions {
  double seconds = 5;
  double warmup = 1;
  double max_warmup = 60;  // scale-*: the steady warm-up's cap, s
  double rate = 100000;  // requests/s, rate-limited configurations
  unsigned threads = 2;
  unsigned repetitions = 1;
  bool json = false;
  bool phases = false;  // --phases: RSS and its high-water mark at each phase, on stderr
  bool builtin_http1 = true;  // --http1 curl: SenderConfig::builtin_http1 = false (the A/B baseline)
  std::uint32_t pipeline_depth = 0;  // --pipeline N: SenderConfig::http1_pipeline_depth (0: default)
  std::vector<std::string> only;
};

// One run's figures (medians across repetitions use the same struct).
struct Figures {
  double delivered_per_s = 0;
  double submitted_per_s = 0;           // requests the producers submitted per second
  double cpu_ns_per_span = 0;           // process CPU / delivered spans, window
  double harness_cpu_ns_per_request = 0;  // the baseline's CPU per request
  double pipeline_cpu_ns_per_span = 0;  // (CPU - harness share) / delivered spans
  double background_cpu_ns_per_span = 0;  // CPU of every thread but the producers / delivered
  double worker_cpu_ns_per_span = 0;    // the pipeline's worker thread (tracecast-work*)
  double sender_cpu_ns_per_span = 0;    // the sender thread (tracecast-send*)
  double submit_p50_ns = 0;             // submit() call latency, window
  double submit_p99_ns = 0;
  double allocs_per_span = 0;
  double peak_rss_mb = 0;
  double dropped = 0;                   // spans dropped + requests refused by a full ring, whole run
  double dropped_window = 0;            // the same within the measured window
  double healthy_delivered_per_s = 0;   // fanout-dead: delivered by the healthy destinations
  double dead_dropped = 0;              // fanout-dead: spans dropped by the dead destination
  double sink_spans = 0;                // spans the (healthy) sink accepted, whole run
  double delivered_total = 0;           // spans the pipeline delivered to that sink, whole run
  double spans_per_request = 0;         // delivered spans / HTTP requests delivered, window
  double memory_peak_mb = 0;            // PipelineStats::memory_peak_bytes, whole run, MiB
  double add_ms = 0;                    // the add_destinations call, wall ms
  double warmup_s = 0;                  // warm-up taken (scale: until steady)
  bool steady = true;                   // the warm-up ended steady (scale), not at its cap
  double destinations = 0;
  // Whole run: spans dropped per DropReason, and (last) requests refused by a full ring.
  std::array<double, k_drop_reasons + 1> dropped_by{};
  std::string main_reason = "-";
  bool sink_match = true;               // sink_spans == delivered_total (not in count-only)
  std::string error;
};

double secs_of(steady::duration d) { return std::chrono::duration<double>(d).count(); }

void sleep_s(double s) { std::this_thread::sleep_for(std::chrono::duration<double>(s)); }

std::string main_reason(const PipelineStats& before, const PipelineStats& after) {
  std::string name = "-";
  std::uint64_t best = 0;
  for (std::size_t r = 0; r < k_drop_reasons; ++r) {
    const std::uint64_t n = after.total.dropped[r] - before.total.dropped[r];
    if (n > best) {
      best = n;
      name = std::string(to_string(static_cast<DropReason>(r)));
    }
  }
  if (after.ingest.rejected_full - before.ingest.rejected_full > best) name = "ring_full";
  return name;
}

std::uint64_t all_dropped(const PipelineStats& s) { return s.total.dropped_total() + s.ingest.rejected_full; }

// The baseline: producer threads with no pipeline. CPU ns per request, cached per producer
// mode (rate, content, account count and skew: remapping accounts is harness work too).
struct Harness {
  double cpu_ns_per_request = 0;
  double requests_per_s = 0;
  double allocs_per_request = 0;
};
struct HarnessKey {
  double rate = 0;  // 0 = flat out
  bool content = false;
  std::size_t accounts = 100;
  std::string skew = "uniform";
  auto operator<=>(const HarnessKey&) const = default;
};
std::map<HarnessKey, Harness>& harness_cache() {
  static std::map<HarnessKey, Harness> cache;
  return cache;
}

HarnessKey harness_key(const Spec& spec, const BenchOptions& o) {
  return HarnessKey{rate_of(spec, o.rate), spec.content, spec.accounts, to_string(spec.skew)};
}

double harness_cost(const BenchOptions& o, const Spec& spec) {
  auto& cache = harness_cache();
  const HarnessKey key = harness_key(spec, o);
  if (const auto it = cache.find(key); it != cache.end()) return it->second.cpu_ns_per_request;
  ProducerOptions po;
  po.threads = o.threads;
  po.rate = key.rate;
  po.content = spec.content;
  po.accounts = spec.accounts;
  po.skew = spec.skew;
  ProducerGroup group(nullptr, po);
  group.start();
  sleep_s(std::min(o.warmup, 0.5));
  const std::uint64_t n0 = group.totals().attempted;
  const std::uint64_t a0 = test::total_allocations();
  const std::uint64_t c0 = process_cpu_ns();
  const auto t0 = steady::now();
  sleep_s(std::min(o.seconds, 2.0));
  const auto t1 = steady::now();
  const std::uint64_t c1 = process_cpu_ns();
  const std::uint64_t a1 = test::total_allocations();
  const std::uint64_t n1 = group.totals().attempted;
  group.request_stop();
  group.join();
  Harness h;
  const double n = static_cast<double>(n1 - n0);
  if (n > 0) {
    h.cpu_ns_per_request = static_cast<double>(c1 - c0) / n;
    h.allocs_per_request = static_cast<double>(a1 - a0) / n;
  }
  h.requests_per_s = n / secs_of(t1 - t0);
  cache[key] = h;
  return h.cpu_ns_per_request;
}

// A scale run's warm-up: at least `min_s`, and until the pipeline delivers what it is handed.
// At 100,000 accounts a destination sees a span every ~5 s: its first batch waits the minimum
// linger, its next ones up to max_linger (5 s), so pending spans keep piling up for ~15-25 s;
// a window inside that fill counts CPU spent on spans it does not see delivered (after 6 s,
// 24,200 of 29,500 spans/s delivered, CPU per span ~1.5x). Steady: in each of the last two
// spans of k_steady_span_s, delivered >= k_steady_fraction of the spans handed to
// destinations (both from totals(), polled every 0.5 s from the start, so a run can be steady
// at `min_s`; two spans, so that one lucky span of a still-filling pipeline does not pass).
// false: `max_s` passed first.
bool steady_warm_up(Pipeline& pipeline, double min_s, double max_s) {
  const auto start = steady::now();
  struct Point {
    steady::time_point at;
    std::uint64_t submitted, delivered;
  };
  std::vector<Point> points;
  // The newest point at least `age` s older than `from`, or nullptr.
  auto at_least = [&points](const Point& from, double age) -> const Point* {
    for (auto p = points.rbegin(); p != points.rend(); ++p) {
      if (secs_of(from.at - p->at) >= age - 0.01) return &*p;
    }
    return nullptr;
  };
  auto delivers = [](const Point& from, const Point& to) {
    const double handed = static_cast<double>(to.submitted - from.submitted);
    const double delivered = static_cast<double>(to.delivered - from.delivered);
    return handed > 0 && delivered >= k_steady_fraction * handed;
  };
  while (true) {
    const PipelineStats s = pipeline.totals();
    points.push_back({steady::now(), s.total.submitted, s.total.delivered});
    const Point now = points.back();
    const double elapsed = secs_of(now.at - start);
    if (elapsed >= min_s - 0.01) {
      const Point* mid = at_least(now, k_steady_span_s);
      const Point* first = mid != nullptr ? at_least(*mid, k_steady_span_s) : nullptr;
      if (first != nullptr && delivers(*first, *mid) && delivers(*mid, now)) return true;
      if (elapsed >= max_s) return false;
    }
    sleep_s(0.5);
  }
}

Figures run_once(const Spec& spec, const BenchOptions& o) {
  Figures f;
  const double harness = harness_cost(o, spec);
  // Each run's peak is its own: what earlier runs freed is handed back to the kernel before
  // the high-water mark is reset. Without it a repetition started with the previous one's
  // freed heap still resident (270-660 MB after a 100,000-account run), spread over arenas
  // its threads did not all get back. (Later runs still carry more free heap than a first
  // one: README, "Memory at gateway scale, third pass".)
#ifdef __GLIBC__
  (void)::malloc_trim(0);
#endif
  (void)reset_rss_high_water();
  // Where the peak happens: VmRSS and VmHWM (since the reset above) after each phase.
  auto phase = [&o, &spec](const char* what) {
    if (!o.phases) return;
    double in_use = 0;  // bytes handed out by malloc, every arena (glibc only)
#ifdef __GLIBC__
    const struct mallinfo2 mi = ::mallinfo2();
    in_use = static_cast<double>(mi.uordblks + mi.hblkhd);
#endif
    std::fprintf(stderr, "phase %-24s %-18s RSS %7.1f MB  high-water %7.1f MB  malloc in use %7.1f MB\n",
                 spec.name.c_str(), what, static_cast<double>(current_rss_bytes()) / 1048576.0,
                 static_cast<double>(rss_high_water_bytes()) / 1048576.0, in_use / 1048576.0);
  };
  phase("start");

  std::string error;
  SinkRunner::Options so;
  if (spec.count_only) so.extra_args.emplace_back("--count-only");
  std::unique_ptr<SinkRunner> sink = SinkRunner::start(so, error);
  if (!sink) {
    f.error = "sink: " + error;
    return f;
  }
  std::unique_ptr<SinkRunner> dead_sink;
  if (spec.dead) {
    SinkRunner::Options dso;
    dso.extra_args = {"--delay-ms", "3600000"};
    dead_sink = SinkRunner::start(dso, error);
    if (!dead_sink) {
      f.error = "dead sink: " + error;
      return f;
    }
  }

  PipelineConfig config;
  config.ingest.max_producers = std::max<std::uint32_t>(config.ingest.max_producers, o.threads + 2);
  config.sender.egress.allow_cidrs = {"127.0.0.1/32"};  // the sinks on loopback, explicitly
  config.sender.builtin_http1 = o.builtin_http1;
  if (o.pipeline_depth != 0) config.sender.http1_pipeline_depth = o.pipeline_depth;
  std::optional<Pipeline> pipeline;
  try {
    pipeline.emplace(config);
  } catch (const std::exception& e) {
    f.error = std::string("pipeline: ") + e.what();
    return f;
  }
  const auto plan = spec.fanout ? plan_fanout(spec.accounts, spec.compression) : plan_single(spec.compression);
  {
    std::vector<std::pair<std::string, PipelineDestination>> dests;
    dests.reserve(plan.size());
    for (const PlannedDestination& p : plan) {
      PipelineDestination d;
      d.transport.kind = DestinationKind::otlp_http;
      d.transport.name = p.name;
      d.transport.endpoint = sink->traces_url();
      d.transport.compression = p.compression;
      d.transport.protocol = spec.protocol;
      d.privacy_mode = p.privacy_mode;
      if (spec.all_conventions) d.conventions = ConventionSet::all();
      if (spec.routed) {
        for (std::size_t k = 0; k < tracecast::workload::k_api_keys; ++k) d.api_key_ids.push_back("key_" + std::to_string(k));
        d.max_request_bytes = 1'000'000;
        d.max_attribute_value_bytes = 2048;
      }
      dests.emplace_back(p.account, std::move(d));
    }
    const auto add_start = steady::now();
    const std::vector<AddDestinationOutcome> added = pipeline->add_destinations(dests);
    f.add_ms = std::chrono::duration<double, std::milli>(steady::now() - add_start).count();
    f.destinations = static_cast<double>(dests.size());
    phase("added");
    for (std::size_t i = 0; i < dests.size(); ++i) {
      if (i >= added.size() || !added[i].ok()) {
        f.error = "add_destinations refused " + dests[i].second.transport.name;
        return f;
      }
    }
  }
  std::uint32_t dead_id = 0;
  if (spec.dead) {
    PipelineDestination d;
    d.transport.kind = DestinationKind::otlp_http;
    d.transport.name = "dead";
    d.transport.endpoint = dead_sink->traces_url();
    d.transport.compression = spec.compression;
    const AddDestinationOutcome added = pipeline->add_destination(spec.dead_account, d);
    if (!added.ok()) {
      f.error = "add_destination dead refused";
      return f;
    }
    dead_id = added.id;
  }

  ProducerOptions po;
  po.threads = o.threads;
  po.rate = rate_of(spec, o.rate);
  po.content = spec.content;
  po.accounts = spec.accounts;
  po.skew = spec.skew;
  ProducerGroup producers(&*pipeline, po);
  producers.start();
  const auto warm_start = steady::now();
  if (spec.scale) {
    const double min_s = std::max(o.warmup, k_scale_min_warmup_s);
    f.steady = steady_warm_up(*pipeline, min_s, std::max(min_s, o.max_warmup));
  } else {
    sleep_s(o.warmup);
  }
  f.warmup_s = secs_of(steady::now() - warm_start);
  phase("warmed up");

  auto dead_counters = [dead_id](const PipelineStats& s) {
    for (const auto& d : s.destinations) {
      if (d.id == dead_id) return d;
    }
    return DestinationCounters{};
  };
  // Window edges: stats allocate, so they are taken outside the counted span. Only the dead
  // configurations need a destination's counters (the dead one's, by id); the others take
  // totals().
  const std::uint32_t dead_ids[] = {dead_id};
  auto snapshot = [&]() { return spec.dead ? pipeline->stats_of(dead_ids) : pipeline->totals(); };
  const PipelineStats s0 = snapshot();
  const ProducerTotals p0 = producers.totals();
  HistogramCounts l0, l1;
  producers.latency(l0);
  const std::uint64_t a0 = test::total_allocations();
  const std::uint64_t pc0 = producers.threads_cpu_ns();
  const std::uint64_t w0 = threads_cpu_ns_by_name("tracecast-work");
  const std::uint64_t x0 = threads_cpu_ns_by_name("tracecast-send");
  const std::uint64_t c0 = process_cpu_ns();
  const auto t0 = steady::now();
  sleep_s(o.seconds);
  const auto t1 = steady::now();
  const std::uint64_t c1 = process_cpu_ns();
  const std::uint64_t pc1 = producers.threads_cpu_ns();
  const std::uint64_t w1 = threads_cpu_ns_by_name("tracecast-work");
  const std::uint64_t x1 = threads_cpu_ns_by_name("tracecast-send");
  const std::uint64_t a1 = test::total_allocations();
  producers.latency(l1);
  const ProducerTotals p1 = producers.totals();
  const PipelineStats s1 = snapshot();
  phase("window end");

  producers.request_stop();
  producers.join();
  phase("producers stopped");
  (void)pipeline->flush(steady::now() + std::chrono::seconds(spec.dead ? 2 : 20));
  phase("flushed");
  const DrainResult done = pipeline->shutdown(steady::now() + std::chrono::seconds(spec.dead ? 2 : 10));
  phase("shut down");
  const PipelineStats& fin = done.stats;

  const double window = secs_of(t1 - t0);
  const double delivered = static_cast<double>(s1.total.delivered - s0.total.delivered);
  const double requests = static_cast<double>(p1.attempted - p0.attempted);
  const double cpu = static_cast<double>(c1 - c0);
  f.delivered_per_s = delivered / window;
  f.submitted_per_s = requests / window;
  f.cpu_ns_per_span = delivered > 0 ? cpu / delivered : 0;
  f.harness_cpu_ns_per_request = harness;
  f.pipeline_cpu_ns_per_span = delivered > 0 ? std::max(0.0, cpu - harness * requests) / delivered : 0;
  f.allocs_per_span = delivered > 0 ? static_cast<double>(a1 - a0) / delivered : 0;
  const double producers_cpu = static_cast<double>(pc1 - pc0);
  f.background_cpu_ns_per_span = delivered > 0 ? std::max(0.0, cpu - producers_cpu) / delivered : 0;
  f.worker_cpu_ns_per_span = delivered > 0 ? static_cast<double>(w1 - w0) / delivered : 0;
  f.sender_cpu_ns_per_span = delivered > 0 ? static_cast<double>(x1 - x0) / delivered : 0;
  const HistogramCounts lat = l1.minus(l0);
  f.submit_p50_ns = lat.quantile(0.5) * TickClock::ns_per_tick();
  f.submit_p99_ns = lat.quantile(0.99) * TickClock::ns_per_tick();
  f.dropped = static_cast<double>(all_dropped(fin));
  f.dropped_window = static_cast<double>(all_dropped(s1) - all_dropped(s0));
  f.main_reason = main_reason(PipelineStats{}, fin);
  // shutdown() lists the busiest and the troubled destinations only: the dead one by id.
  const DestinationCounters dead0 = dead_counters(s0), dead1 = dead_counters(s1),
                            dead_fin = spec.dead ? dead_counters(pipeline->stats_of(dead_ids)) : DestinationCounters{};
  f.healthy_delivered_per_s = static_cast<double>((s1.total.delivered - dead1.delivered) -
                                                  (s0.total.delivered - dead0.delivered)) / window;
  f.dead_dropped = static_cast<double>(dead_fin.dropped_total());
  f.delivered_total = static_cast<double>(fin.total.delivered - dead_fin.delivered);
  const double http_delivered = static_cast<double>(s1.total.requests_delivered - s0.total.requests_delivered);
  f.spans_per_request = http_delivered > 0 ? delivered / http_delivered : 0;
  f.memory_peak_mb = static_cast<double>(fin.memory_peak_bytes) / 1048576.0;
  for (std::size_t r = 0; r < k_drop_reasons; ++r) f.dropped_by[r] = static_cast<double>(fin.total.dropped[r]);
  f.dropped_by[k_drop_reasons] = static_cast<double>(fin.ingest.rejected_full);

  SinkCounters sc;
  if (sink->counters(sc, error)) {
    const std::uint64_t accepted = sc.spans - std::min(sc.spans, sc.rejected_spans);
    f.sink_spans = static_cast<double>(sc.count_only ? 0 : accepted);
    f.sink_match = sc.count_only || accepted == fin.total.delivered - dead_fin.delivered;
  } else {
    f.error = "sink /stats: " + error;
  }
  if (!fin.total.balanced() || fin.total.in_flight != 0) {
    f.error = "accounting identity broken after shutdown";
  }
  pipeline.reset();
  phase("destroyed");
  f.peak_rss_mb = static_cast<double>(rss_high_water_bytes()) / 1048576.0;
  if (dead_sink) dead_sink->stop(std::chrono::milliseconds(500));
  sink->stop();
  return f;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

Figures median_of(const std::vector<Figures>& runs) {
  Figures m;
  auto med = [&runs](double Figures::*field) {
    std::vector<double> v;
    for (const Figures& r : runs) v.push_back(r.*field);
    return median(std::move(v));
  };
  for (double Figures::*field :
       {&Figures::delivered_per_s, &Figures::submitted_per_s, &Figures::cpu_ns_per_span,
        &Figures::harness_cpu_ns_per_request, &Figures::pipeline_cpu_ns_per_span,
        &Figures::background_cpu_ns_per_span, &Figures::worker_cpu_ns_per_span, &Figures::sender_cpu_ns_per_span,
        &Figures::submit_p50_ns, &Figures::submit_p99_ns, &Figures::allocs_per_span,
        &Figures::peak_rss_mb, &Figures::dropped, &Figures::dropped_window, &Figures::healthy_delivered_per_s,
        &Figures::dead_dropped, &Figures::sink_spans, &Figures::delivered_total, &Figures::spans_per_request,
        &Figures::memory_peak_mb, &Figures::add_ms, &Figures::destinations, &Figures::warmup_s}) {
    m.*field = med(field);
  }
  for (std::size_t r = 0; r < m.dropped_by.size(); ++r) {
    std::vector<double> v;
    for (const Figures& run : runs) v.push_back(run.dropped_by[r]);
    m.dropped_by[r] = median(std::move(v));
  }
  std::map<std::string, int> reasons;
  for (const Figures& r : runs) {
    ++reasons[r.main_reason];
    m.sink_match = m.sink_match && r.sink_match;
    m.steady = m.steady && r.steady;
    if (!r.error.empty() && m.error.empty()) m.error = r.error;
  }
  int best = 0;
  for (const auto& [name, n] : reasons) {
    if (n > best) {
      best = n;
      m.main_reason = name;
    }
  }
  return m;
}

std::string fmt(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string reason_name(std::size_t r) {
  return r < k_drop_reasons ? std::string(to_string(static_cast<DropReason>(r))) : std::string("ring_full");
}

// "backpressure 1200, ring_full 3" (ring_full counts requests), or "0".
std::string drops_text(const Figures& m) {
  std::string out;
  for (std::size_t r = 0; r < m.dropped_by.size(); ++r) {
    if (m.dropped_by[r] <= 0) continue;
    out += (out.empty() ? "" : ", ") + reason_name(r) + " " + fmt(m.dropped_by[r], 0);
  }
  return out.empty() ? "0" : out;
}

// The baseline row's name for a producer mode: the historical names for 100 uniform accounts
// at --rate, suffixes for anything else.
std::string harness_name(const HarnessKey& key, double rate_option) {
  std::string name = "baseline-producers";
  if (key.rate == 0) name += "-flatout";
  if (key.content) name += "-content";
  if (key.accounts != 100) name += "-" + std::to_string(key.accounts) + "acct";
  if (key.skew != "uniform") name += "-" + key.skew;
  if (key.rate != 0 && key.rate != rate_option) name += "@" + fmt(key.rate, 0);
  return name;
}

int usage(std::ostream& out, int code) {
  out << "usage: tracecast-bench-e2e [--config NAME]... [--seconds S] [--warmup S] [--max-warmup S]\n"
         "                           [--rate R] [--threads N] [--repetitions K] [--json] [--phases]\n"
         "  --config NAME     run only NAME (repeatable): ";
  for (const Spec& s : specs()) out << s.name << " ";
  out << "\n"
         "                    or a group: scale (scale-100, -1k, -10k, -100k side by side),\n"
         "                    scale-zipf (the same, Zipf 1.1)\n"
         "                    (a fanout-dead* configuration also runs fanout, and a scale one its\n"
         "                    shape's 100-account row, for their ratios)\n"
         "  --seconds S       measured window per run (default 5)\n"
         "  --rate R          requests/s of the rate-limited configurations (default 100000;\n"
         "                    scale-* always run at 20000, WORKLOAD.md \"Gateway scale\")\n"
         "  --warmup S        before the window (default 1; scale-* at least 6 and until\n"
         "                    steady: delivered >= 97% of what was handed in each of the last\n"
         "                    two 2 s spans, at most --max-warmup S, default 60; a row that\n"
         "                    hit it says NOT STEADY)\n"
         "  --threads N       producer threads (default 2)\n"
         "  --repetitions K   runs per configuration; medians are reported (default 1)\n"
         "  --json            one JSON object per configuration per line\n"
         "  --http1 builtin|curl  which client sends to the sink (http://): the sender's own\n"
         "                    HTTP/1.1 client (default) or curl, for A/B runs in one binary\n"
         "  --pipeline N      sender.http1_pipeline_depth (1: no trains), for A/B runs\n"
         "  --phases          RSS and its high-water mark after each phase of a run (stderr)\n"
         "The sink runs as a separate process (tracecast-sink next to this binary, in ../tools, or\n"
         "$TRACECAST_SINK_BIN); its CPU is not counted.\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  BenchOptions o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    double v = 0;
    if (a == "--help" || a == "-h") return usage(std::cout, 0);
    if (a == "--json") {
      o.json = true;
      continue;
    }
    if (a == "--phases") {
      o.phases = true;
      continue;
    }
    const char* val = next();
    if (val == nullptr) return usage(std::cerr, 2);
    if (a == "--http1") {
      const std::string_view which = val;
      if (which != "builtin" && which != "curl") return usage(std::cerr, 2);
      o.builtin_http1 = which == "builtin";
      continue;
    }
    if (a == "--config") {
      const std::string name = val;
      if (const auto g = groups().find(name); g != groups().end()) {
        o.only.insert(o.only.end(), g->second.begin(), g->second.end());
        continue;
      }
      if (std::none_of(specs().begin(), specs().end(), [&](const Spec& s) { return s.name == name; })) {
        std::cerr << "tracecast-bench-e2e: unknown --config " << name << "\n";
        return usage(std::cerr, 2);
      }
      o.only.push_back(name);
      continue;
    }
    // Numeric flags: the value's limits, and whether it must be whole.
    struct NumberFlag {
      const char* name;
      double min, max;
      bool whole;
    };
    static constexpr NumberFlag k_numbers[] = {
        {"--seconds", 0.001, 3600, false}, {"--warmup", 0, 3600, false},  {"--max-warmup", 0.001, 3600, false},
        {"--rate", 0.001, 1e9, false},     {"--threads", 1, 64, true},    {"--repetitions", 1, 100, true},
        {"--pipeline", 1, 16, true},
    };
    const NumberFlag* flag = nullptr;
    for (const NumberFlag& f : k_numbers) {
      if (a == f.name) flag = &f;
    }
    if (flag == nullptr) return usage(std::cerr, 2);
    if (const std::string why = parse_number_in(val, flag->min, flag->max, v); !why.empty()) {
      std::cerr << "tracecast-bench-e2e: " << a << ": " << why << "\n";
      return 2;
    }
    if (flag->whole && v != static_cast<double>(static_cast<std::uint64_t>(v))) {
      std::cerr << "tracecast-bench-e2e: " << a << ": " << val << " is not a whole number\n";
      return 2;
    }
    if (a == "--seconds") {
      o.seconds = v;
    } else if (a == "--warmup") {
      o.warmup = v;
    } else if (a == "--max-warmup") {
      o.max_warmup = v;
    } else if (a == "--rate") {
      o.rate = v;
    } else if (a == "--threads") {
      o.threads = static_cast<unsigned>(v);
    } else if (a == "--repetitions") {
      o.repetitions = static_cast<unsigned>(v);
    } else {
      o.pipeline_depth = static_cast<std::uint32_t>(v);
    }
  }

  std::vector<std::pair<Spec, Figures>> results;
  std::optional<double> fanout_healthy;  // delivered/s of `fanout`, for fanout-dead's ratio
  bool failed = false;
  if (!o.json) {
    std::printf("tracecast-bench-e2e: %.1f s window after %.1f s warm-up, %u producer threads, %.0f req/s "
                "(flat-out configs: unlimited), %u repetition(s), medians\n",
                o.seconds, o.warmup, o.threads, o.rate, o.repetitions);
    std::fflush(stdout);
  }
  bool main_header = false;
  auto print_main_header = [&main_header](const char* first_column) {
    main_header = true;
    std::printf("%-34s %12s %12s %10s %10s %9s %9s %9s %9s %8s %8s %12s  %s\n", first_column, "delivered/s",
                "submitted/s", "cpu ns/sp", "pipe ns/sp", "bg ns/sp", "work ns", "send ns", "submit50", "allocs", "RSS MB",
                "dropped", "notes");
  };
  // A dead-destination configuration is judged against `fanout` of the same invocation.
  if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), "fanout") == o.only.end() &&
      std::any_of(o.only.begin(), o.only.end(), [](const std::string& n) { return n.rfind("fanout-dead", 0) == 0; })) {
    o.only.emplace_back("fanout");
  }
  // A scale configuration is judged against its shape's 100-account row of the same invocation.
  if (!o.only.empty()) {
    std::vector<std::string> bases;
    for (const Spec& spec : specs()) {
      if (spec.scale && std::find(o.only.begin(), o.only.end(), spec.name) != o.only.end()) bases.push_back(spec.scale_base);
    }
    for (const std::string& b : bases) {
      if (std::find(o.only.begin(), o.only.end(), b) == o.only.end()) o.only.push_back(b);
    }
  }
  std::map<std::string, Figures> scale_bases;  // scale_base name -> its figures
  bool scale_header = false;
  for (const Spec& spec : specs()) {
    if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), spec.name) == o.only.end()) continue;
    std::vector<Figures> runs;
    for (unsigned r = 0; r < o.repetitions; ++r) {
      std::fprintf(stderr, "tracecast-bench-e2e: %s run %u/%u\n", spec.name.c_str(), r + 1, o.repetitions);
      runs.push_back(run_once(spec, o));
    }
    const Figures m = median_of(runs);
    if (spec.name == "fanout") fanout_healthy = m.healthy_delivered_per_s;
    // Negative: no `fanout` run in this invocation to compare with.
    const double ratio =
        spec.dead && fanout_healthy && *fanout_healthy > 0 ? m.healthy_delivered_per_s / *fanout_healthy : -1.0;
    if (!m.error.empty() || !m.sink_match) failed = true;
    if (spec.scale && spec.name == spec.scale_base) scale_bases[spec.name] = m;
    // Process CPU per span (and worker + sender per span) over the 100-account row's; < 0: none.
    double cpu_ratio = -1, threads_ratio = -1;
    if (const auto b = scale_bases.find(spec.scale_base); spec.scale && b != scale_bases.end()) {
      if (b->second.cpu_ns_per_span > 0) cpu_ratio = m.cpu_ns_per_span / b->second.cpu_ns_per_span;
      const double base_threads = b->second.worker_cpu_ns_per_span + b->second.sender_cpu_ns_per_span;
      if (base_threads > 0) threads_ratio = (m.worker_cpu_ns_per_span + m.sender_cpu_ns_per_span) / base_threads;
    }
    if (o.json) {
      std::ostringstream j;
      j << "{\"config\":" << json_quote(spec.name) << ",\"delivered_per_s\":" << fmt(m.delivered_per_s, 1)
        << ",\"submitted_per_s\":" << fmt(m.submitted_per_s, 1) << ",\"cpu_ns_per_span\":" << fmt(m.cpu_ns_per_span, 1)
        << ",\"pipeline_cpu_ns_per_span\":" << fmt(m.pipeline_cpu_ns_per_span, 1)
        << ",\"harness_cpu_ns_per_request\":" << fmt(m.harness_cpu_ns_per_request, 1)
        << ",\"background_cpu_ns_per_span\":" << fmt(m.background_cpu_ns_per_span, 1)
        << ",\"worker_cpu_ns_per_span\":" << fmt(m.worker_cpu_ns_per_span, 1)
        << ",\"sender_cpu_ns_per_span\":" << fmt(m.sender_cpu_ns_per_span, 1)
        << ",\"submit_p50_ns\":" << fmt(m.submit_p50_ns, 1) << ",\"submit_p99_ns\":" << fmt(m.submit_p99_ns, 1)
        << ",\"allocs_per_span\":" << fmt(m.allocs_per_span, 4) << ",\"peak_rss_mb\":" << fmt(m.peak_rss_mb, 1)
        << ",\"dropped\":" << fmt(m.dropped, 0) << ",\"dropped_in_window\":" << fmt(m.dropped_window, 0)
        << ",\"main_drop_reason\":" << json_quote(m.main_reason) << ",\"sink_spans\":" << fmt(m.sink_spans, 0)
        << ",\"delivered_total\":" << fmt(m.delivered_total, 0) << ",\"sink_match\":" << (m.sink_match ? "true" : "false");
      j << ",\"spans_per_request\":" << fmt(m.spans_per_request, 2) << ",\"memory_peak_mb\":" << fmt(m.memory_peak_mb, 1)
        << ",\"add_destinations_ms\":" << fmt(m.add_ms, 1) << ",\"destinations\":" << fmt(m.destinations, 0)
        << ",\"warmup_s\":" << fmt(m.warmup_s, 1)
        << ",\"accounts\":" << (spec.fanout ? spec.accounts : 0) << ",\"account_skew\":" << json_quote(to_string(spec.skew))
        << ",\"dropped_by_reason\":{";
      for (std::size_t r = 0; r < m.dropped_by.size(); ++r) {
        j << (r ? "," : "") << json_quote(reason_name(r)) << ":" << fmt(m.dropped_by[r], 0);
      }
      j << "}";
      if (spec.scale) {
        j << ",\"scale_base\":" << json_quote(spec.scale_base)
          << ",\"cpu_ratio_vs_base\":" << (cpu_ratio >= 0 ? fmt(cpu_ratio, 3) : "null")
          << ",\"threads_cpu_ratio_vs_base\":" << (threads_ratio >= 0 ? fmt(threads_ratio, 3) : "null")
          << ",\"steady\":" << (m.steady ? "true" : "false");
      }
      if (spec.dead) {
        j << ",\"healthy_delivered_per_s\":" << fmt(m.healthy_delivered_per_s, 1) << ",\"dead_dropped\":"
          << fmt(m.dead_dropped, 0) << ",\"healthy_ratio_vs_fanout\":" << (ratio >= 0 ? fmt(ratio, 4) : "null");
      }
      j << ",\"threads\":" << o.threads << ",\"rate\":" << rate_of(spec, o.rate) << ",\"seconds\":" << o.seconds
        << ",\"repetitions\":" << o.repetitions << ",\"error\":" << (m.error.empty() ? "null" : json_quote(m.error))
        << "}\n";
      std::cout << j.str() << std::flush;
    } else if (spec.scale) {
      if (!scale_header) {
        scale_header = true;
        std::printf("\ngateway scale (WORKLOAD.md): %.0f req/s, fan-out 1.5 destinations per account, healthy sink, "
                    "default config; warm-up at least %.1f s and until steady (delivered >= %.0f%% of the spans "
                    "handed to destinations in each of the last two %.0f s spans), at most %.0f s\n",
                    k_scale_rate, std::max(o.warmup, k_scale_min_warmup_s), k_steady_fraction * 100, k_steady_span_s,
                    std::max(o.max_warmup, std::max(o.warmup, k_scale_min_warmup_s)));
        std::printf("%-16s %7s %7s %11s %7s %9s %6s %8s %8s %6s %8s %7s %9s %6s  %s\n", "config", "accts", "dests",
                    "delivered/s", "sp/req", "cpu ns/sp", "x100", "work ns", "send ns", "x100", "batch MB", "RSS MB",
                    "add ms", "warm s", "dropped");
      }
      std::string notes;
      if (!m.sink_match) notes += " SINK MISMATCH";
      if (!m.steady) notes += " NOT STEADY (warm-up cap)";
      if (!m.error.empty()) notes += " ERROR: " + m.error;
      std::printf("%-16s %7zu %7s %11s %7s %9s %6s %8s %8s %6s %8s %7s %9s %6s  %s%s\n", spec.name.c_str(), spec.accounts,
                  fmt(m.destinations, 0).c_str(), fmt(m.delivered_per_s, 0).c_str(), fmt(m.spans_per_request, 1).c_str(),
                  fmt(m.cpu_ns_per_span, 0).c_str(), cpu_ratio >= 0 ? fmt(cpu_ratio, 2).c_str() : "-",
                  fmt(m.worker_cpu_ns_per_span, 0).c_str(), fmt(m.sender_cpu_ns_per_span, 0).c_str(),
                  threads_ratio >= 0 ? fmt(threads_ratio, 2).c_str() : "-", fmt(m.memory_peak_mb, 1).c_str(),
                  fmt(m.peak_rss_mb, 1).c_str(), fmt(m.add_ms, 1).c_str(), fmt(m.warmup_s, 1).c_str(),
                  drops_text(m).c_str(), notes.c_str());
      std::fflush(stdout);
    } else {
      if (!main_header) print_main_header("config");
      std::string notes;
      if (spec.dead) {
        notes = "healthy " + human(m.healthy_delivered_per_s) + "/s" +
                (ratio >= 0 ? " = " + fmt(ratio * 100, 1) + "% of fanout" : " (run fanout too for the ratio)") +
                ", dead dropped " + fmt(m.dead_dropped, 0);
      }
      if (!m.sink_match) notes += " SINK MISMATCH";
      if (!m.error.empty()) notes += " ERROR: " + m.error;
      std::printf("%-34s %12s %12s %10s %10s %9s %9s %9s %9s %8s %8s %12s  %s%s\n", spec.name.c_str(),
                  fmt(m.delivered_per_s, 0).c_str(), fmt(m.submitted_per_s, 0).c_str(),
                  fmt(m.cpu_ns_per_span, 0).c_str(), fmt(m.pipeline_cpu_ns_per_span, 0).c_str(),
                  fmt(m.background_cpu_ns_per_span, 0).c_str(), fmt(m.worker_cpu_ns_per_span, 0).c_str(),
                  fmt(m.sender_cpu_ns_per_span, 0).c_str(), fmt(m.submit_p50_ns, 0).c_str(),
                  fmt(m.allocs_per_span, 2).c_str(), fmt(m.peak_rss_mb, 1).c_str(), fmt(m.dropped, 0).c_str(),
                  m.dropped > 0 ? ("(" + m.main_reason + ") ").c_str() : "", notes.c_str());
      std::fflush(stdout);
    }
    results.emplace_back(spec, m);
  }
  // The baselines measured along the way (one per producer mode), as rows of their own.
  if (!o.json && scale_header) {
    std::printf("\n");
    print_main_header("baselines");
  }
  for (const auto& [key, h] : harness_cache()) {
    const std::string name = harness_name(key, o.rate);
    if (o.json) {
      std::cout << "{\"config\":" << json_quote(name) << ",\"delivered_per_s\":0,\"submitted_per_s\":"
                << fmt(h.requests_per_s, 1) << ",\"cpu_ns_per_span\":" << fmt(h.cpu_ns_per_request, 1)
                << ",\"cpu_ns_per_request\":" << fmt(h.cpu_ns_per_request, 1) << ",\"allocs_per_span\":"
                << fmt(h.allocs_per_request, 4) << ",\"allocs_per_request\":" << fmt(h.allocs_per_request, 4)
                << ",\"peak_rss_mb\":null,\"dropped\":0,\"baseline\":true,\"rate\":" << key.rate
                << ",\"threads\":" << o.threads << "}\n";
    } else {
      std::printf("%-34s %12s %12s %10s %10s %9s %9s %9s %9s %8s %8s %12s  %s\n", name.c_str(), "-",
                  fmt(h.requests_per_s, 0).c_str(), fmt(h.cpu_ns_per_request, 0).c_str(), "-", "-", "-", "-", "-",
                  fmt(h.allocs_per_request, 2).c_str(), "-", "-", "per request: generator + clock + schedule, no submit");
    }
  }
  if (!o.json) {
    std::printf("cpu ns/sp: process user+sys CPU per delivered span (sink excluded); pipe ns/sp: the same minus\n"
                "the baseline-producers harness (generator + clock + rate schedule alone); bg ns/sp: CPU of the\n"
                "pipeline's own threads (all but the producers) per delivered span, of which work ns = the\n"
                "worker (map, encode, compress), send ns = the sender; submit50: submit() p50 ns;\n"
                "allocs: operator new calls per delivered span.\n");
    if (scale_header) {
      std::printf("gateway scale: sp/req = delivered spans per HTTP request; x100 = process CPU per span (then\n"
                  "worker + sender CPU per span) over the same shape's 100-account row of this run; batch MB =\n"
                  "memory_peak_bytes; add ms = the one add_destinations call; dropped by reason, whole run\n"
                  "(ring_full in requests).\n");
    }
  }
  return failed ? 1 : 0;
}
