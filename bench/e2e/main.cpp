// tracecast-bench-e2e: the whole pipeline, gateway threads to a tracecast-sink process on
// loopback, per configuration:
//
//   single-none / single-gzip / single-zstd   one destination, canonical request, at --rate
//   single-zstd-content                       one destination, content variant (~3.5 KB/span)
//   fanout                                    100 accounts, 1.5 destinations each on average,
//                                             one in five privacy mode, codecs zstd/none/gzip
//   fanout-dead                               the same plus one all-accounts destination whose
//                                             server accepts and never answers (a second sink
//                                             with --delay-ms 3600000): every request also
//                                             goes to it, so it sheds (backpressure) at once
//   fanout-dead-acct                          the same dead server as one more destination of
//                                             acct_0 only (~1% of requests)
//   single-countonly-flatout                  2 producers flat out, sink --count-only, no codec
//
// and the plain baseline beside them, `baseline-producers`: the same producer threads (same
// generator, clock reads, rate schedule and latency histogram) submitting nothing. Its CPU
// per request is the harness's own cost; `pipeline_cpu_ns_per_span` subtracts it.
//
// Each configuration: start sink(s) and pipeline, warm up (--warmup, default 1 s), measure
// for --seconds (default 5): delivered spans/s, process CPU (getrusage user+sys, the sink
// excluded: it is another process) per delivered span, operator-new allocations per
// delivered span, then stop, flush, shutdown; peak RSS is VmHWM (reset before each run).
// --repetitions K reports the median of each figure.
#include <unistd.h>

#include <algorithm>
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
  bool content = false;
  bool dead = false;
  bool count_only = false;
  bool flat_out = false;
  std::string dead_account;  // account of the dead destination ("" = every account)
};

const std::vector<Spec>& specs() {
  static const std::vector<Spec> all = {
      {"single-none", false, "none", false, false, false, false, ""},
      {"single-gzip", false, "gzip", false, false, false, false, ""},
      {"single-zstd", false, "zstd", false, false, false, false, ""},
      {"single-zstd-content", false, "zstd", true, false, false, false, ""},
      {"fanout", true, "zstd", false, false, false, false, ""},
      {"fanout-dead", true, "zstd", false, true, false, false, ""},
      {"fanout-dead-acct", true, "zstd", false, true, false, false, "acct_0"},
      {"single-countonly-flatout", false, "none", false, false, true, true, ""},
  };
  return all;
}

struct BenchOptions {
  double seconds = 5;
  double warmup = 1;
  double rate = 100000;  // requests/s, rate-limited configurations
  unsigned threads = 2;
  unsigned repetitions = 1;
  bool json = false;
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

// The baseline: producer threads with no pipeline. CPU ns per request, cached per mode.
struct Harness {
  double cpu_ns_per_request = 0;
  double requests_per_s = 0;
  double allocs_per_request = 0;
};
std::map<std::pair<bool, bool>, Harness>& harness_cache() {
  static std::map<std::pair<bool, bool>, Harness> cache;
  return cache;
}

double harness_cost(const BenchOptions& o, bool flat_out, bool content) {
  auto& cache = harness_cache();
  const auto key = std::make_pair(flat_out, content);
  if (const auto it = cache.find(key); it != cache.end()) return it->second.cpu_ns_per_request;
  ProducerOptions po;
  po.threads = o.threads;
  po.rate = flat_out ? 0 : o.rate;
  po.content = content;
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

Figures run_once(const Spec& spec, const BenchOptions& o) {
  Figures f;
  const double harness = harness_cost(o, spec.flat_out, spec.content);
  (void)reset_rss_high_water();

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
  std::optional<Pipeline> pipeline;
  try {
    pipeline.emplace(config);
  } catch (const std::exception& e) {
    f.error = std::string("pipeline: ") + e.what();
    return f;
  }
  const auto plan = spec.fanout ? plan_fanout(100, spec.compression) : plan_single(spec.compression);
  for (const PlannedDestination& p : plan) {
    PipelineDestination d;
    d.transport.kind = DestinationKind::otlp_http;
    d.transport.name = p.name;
    d.transport.endpoint = sink->traces_url();
    d.transport.compression = p.compression;
    d.privacy_mode = p.privacy_mode;
    if (!pipeline->add_destination(p.account, d).ok()) {
      f.error = "add_destination " + p.name + " refused";
      return f;
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
  po.rate = spec.flat_out ? 0 : o.rate;
  po.content = spec.content;
  ProducerGroup producers(&*pipeline, po);
  producers.start();
  sleep_s(o.warmup);

  auto dead_counters = [dead_id](const PipelineStats& s) {
    for (const auto& d : s.destinations) {
      if (d.id == dead_id) return d;
    }
    return DestinationCounters{};
  };
  // Window edges: stats() allocates, so it is taken outside the counted span.
  const PipelineStats s0 = pipeline->stats();
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
  const PipelineStats s1 = pipeline->stats();

  producers.request_stop();
  producers.join();
  (void)pipeline->flush(steady::now() + std::chrono::seconds(spec.dead ? 2 : 20));
  const DrainResult done = pipeline->shutdown(steady::now() + std::chrono::seconds(spec.dead ? 2 : 10));
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
  const DestinationCounters dead0 = dead_counters(s0), dead1 = dead_counters(s1), dead_fin = dead_counters(fin);
  f.healthy_delivered_per_s = static_cast<double>((s1.total.delivered - dead1.delivered) -
                                                  (s0.total.delivered - dead0.delivered)) / window;
  f.dead_dropped = static_cast<double>(dead_fin.dropped_total());
  f.delivered_total = static_cast<double>(fin.total.delivered - dead_fin.delivered);

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
        &Figures::dead_dropped, &Figures::sink_spans, &Figures::delivered_total}) {
    m.*field = med(field);
  }
  std::map<std::string, int> reasons;
  for (const Figures& r : runs) {
    ++reasons[r.main_reason];
    m.sink_match = m.sink_match && r.sink_match;
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

int usage(std::ostream& out, int code) {
  out << "usage: tracecast-bench-e2e [--config NAME]... [--seconds S] [--warmup S] [--rate R]\n"
         "                           [--threads N] [--repetitions K] [--json]\n"
         "  --config NAME     run only NAME (repeatable): ";
  for (const Spec& s : specs()) out << s.name << " ";
  out << "\n"
         "                    (a fanout-dead* configuration also runs fanout, for its ratio)\n"
         "  --seconds S       measured window per run (default 5)\n"
         "  --warmup S        before the window (default 1)\n"
         "  --rate R          requests/s of the rate-limited configurations (default 100000)\n"
         "  --threads N       producer threads (default 2)\n"
         "  --repetitions K   runs per configuration; medians are reported (default 1)\n"
         "  --json            one JSON object per configuration per line\n"
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
    const char* val = next();
    if (val == nullptr) return usage(std::cerr, 2);
    if (a == "--config") {
      const std::string name = val;
      if (std::none_of(specs().begin(), specs().end(), [&](const Spec& s) { return s.name == name; })) {
        std::cerr << "tracecast-bench-e2e: unknown --config " << name << "\n";
        return usage(std::cerr, 2);
      }
      o.only.push_back(name);
    } else if (!parse_number(val, v)) {
      std::cerr << "tracecast-bench-e2e: " << a << " expects a number\n";
      return 2;
    } else if (a == "--seconds" && v > 0) {
      o.seconds = v;
    } else if (a == "--warmup") {
      o.warmup = v;
    } else if (a == "--rate" && v > 0) {
      o.rate = v;
    } else if (a == "--threads" && v >= 1 && v <= 64) {
      o.threads = static_cast<unsigned>(v);
    } else if (a == "--repetitions" && v >= 1 && v <= 100) {
      o.repetitions = static_cast<unsigned>(v);
    } else {
      return usage(std::cerr, 2);
    }
  }

  std::vector<std::pair<Spec, Figures>> results;
  std::optional<double> fanout_healthy;  // delivered/s of `fanout`, for fanout-dead's ratio
  bool failed = false;
  if (!o.json) {
    std::printf("tracecast-bench-e2e: %.1f s window after %.1f s warm-up, %u producer threads, %.0f req/s "
                "(flat-out configs: unlimited), %u repetition(s), medians\n",
                o.seconds, o.warmup, o.threads, o.rate, o.repetitions);
    std::printf("%-26s %12s %12s %10s %10s %9s %9s %9s %9s %8s %8s %12s  %s\n", "config", "delivered/s",
                "submitted/s", "cpu ns/sp", "pipe ns/sp", "bg ns/sp", "work ns", "send ns", "submit50", "allocs", "RSS MB", "dropped", "notes");
  }
  // A dead-destination configuration is judged against `fanout` of the same invocation.
  if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), "fanout") == o.only.end() &&
      std::any_of(o.only.begin(), o.only.end(), [](const std::string& n) { return n.rfind("fanout-dead", 0) == 0; })) {
    o.only.emplace_back("fanout");
  }
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
      if (spec.dead) {
        j << ",\"healthy_delivered_per_s\":" << fmt(m.healthy_delivered_per_s, 1) << ",\"dead_dropped\":"
          << fmt(m.dead_dropped, 0) << ",\"healthy_ratio_vs_fanout\":" << (ratio >= 0 ? fmt(ratio, 4) : "null");
      }
      j << ",\"threads\":" << o.threads << ",\"rate\":" << (spec.flat_out ? 0 : o.rate) << ",\"seconds\":" << o.seconds
        << ",\"repetitions\":" << o.repetitions << ",\"error\":" << (m.error.empty() ? "null" : json_quote(m.error))
        << "}\n";
      std::cout << j.str() << std::flush;
    } else {
      std::string notes;
      if (spec.dead) {
        notes = "healthy " + human(m.healthy_delivered_per_s) + "/s" +
                (ratio >= 0 ? " = " + fmt(ratio * 100, 1) + "% of fanout" : " (run fanout too for the ratio)") +
                ", dead dropped " + fmt(m.dead_dropped, 0);
      }
      if (!m.sink_match) notes += " SINK MISMATCH";
      if (!m.error.empty()) notes += " ERROR: " + m.error;
      std::printf("%-26s %12s %12s %10s %10s %9s %9s %9s %9s %8s %8s %12s  %s%s\n", spec.name.c_str(),
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
  for (const auto& [key, h] : harness_cache()) {
    const std::string name = std::string("baseline-producers") + (key.first ? "-flatout" : "") + (key.second ? "-content" : "");
    if (o.json) {
      std::cout << "{\"config\":" << json_quote(name) << ",\"delivered_per_s\":0,\"submitted_per_s\":"
                << fmt(h.requests_per_s, 1) << ",\"cpu_ns_per_span\":" << fmt(h.cpu_ns_per_request, 1)
                << ",\"cpu_ns_per_request\":" << fmt(h.cpu_ns_per_request, 1) << ",\"allocs_per_span\":"
                << fmt(h.allocs_per_request, 4) << ",\"allocs_per_request\":" << fmt(h.allocs_per_request, 4)
                << ",\"peak_rss_mb\":null,\"dropped\":0,\"baseline\":true,\"rate\":" << (key.first ? 0 : o.rate)
                << ",\"threads\":" << o.threads << "}\n";
    } else {
      std::printf("%-26s %12s %12s %10s %10s %9s %9s %9s %9s %8s %8s %12s  %s\n", name.c_str(), "-",
                  fmt(h.requests_per_s, 0).c_str(), fmt(h.cpu_ns_per_request, 0).c_str(), "-", "-", "-", "-", "-",
                  fmt(h.allocs_per_request, 2).c_str(), "-", "-", "per request: generator + clock + schedule, no submit");
    }
  }
  if (!o.json) {
    std::printf("cpu ns/sp: process user+sys CPU per delivered span (sink excluded); pipe ns/sp: the same minus\n"
                "the baseline-producers harness (generator + clock + rate schedule alone); bg ns/sp: CPU of the\n"
                "pipeline's own threads (all but the producers) per delivered span, of which work ns = the\n"
                "worker (map, encode, compress), send ns = the sender (curl); submit50: submit() p50 ns;\n"
                "allocs: operator new calls per delivered span.\n");
  }
  return failed ? 1 : 0;
}
