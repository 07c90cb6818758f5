// tracecast-load: the gateway load simulator, the main job.
//
//   tracecast-load                                 # 10 s, 2 threads, 20k req/s, fan-out, bundled sink
//   tracecast-load --rate 0 --threads 4 --count 1M  # flat out
//   tracecast-load --grafana-url https://otlp-gateway-prod-eu-west-2.grafana.net
//                  --grafana-instance-id 123456 --grafana-key-file ~/.grafana-key --rate 10
//   OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 tracecast-load --rate 100
//
// N gateway threads submit the reference workload (shared/WORKLOAD.md) to a Pipeline, a
// progress line each second, then shutdown and a final report. Exit code:
//   0  the accounting identity held in every snapshot and exactly after shutdown (nothing
//      in flight), the bundled sink counted the spans the pipeline delivered (more only by
//      what retried requests may have repeated: at-least-once), and
//      nothing was lost with a healthy sink and default budgets (loss_check.h);
//   1  a check failed (which one is printed), including, with a real endpoint, any span
//      dropped before it reached the endpoint (loss_check.h check_delivered), and in any
//      run spans accepted but none delivered (check_reached);
//   2  bad usage or config;  3  set-up failed.
// Credentials (API keys, header values) are never printed.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bounded_file.h"
#include "cli_flag.h"
#include "latency_histogram.h"
#include "loss_check.h"
#include "producers.h"
#include "resource_usage.h"
#include "sink_runner.h"
#include "topology.h"
#include "tracecast/pipeline.h"
#include "tracecast/presets.h"

namespace {

using namespace tracecast;
using namespace tracecast::load;
using steady = std::chrono::steady_clock;

constexpr int k_exit_ok = 0;
constexpr int k_exit_check_failed = 1;
constexpr int k_exit_usage = 2;
constexpr int k_exit_setup = 3;

constexpr std::chrono::milliseconds k_default_drain_timeout{30000};
// Limits of --duration and --drain-timeout (30 days) and of a non-zero --rate (the producers
// turn it into a nanosecond interval per thread).
constexpr std::chrono::milliseconds k_max_duration{720LL * 3600 * 1000};
constexpr double k_min_rate = 0.001;
constexpr double k_max_rate = 1e9;
// The final report lists at most this many destinations (the busiest, then any dead or
// losing ones) out of those shutdown() lists (Pipeline::stats() after shutdown).
constexpr std::size_t k_shown_busiest = 5;
constexpr std::size_t k_shown_max = 15;
// Progress snapshots use totals() (cheap at any destination count); the first and every this
// many snapshots, and the final one, a full stats_all() checks every destination's identity.
constexpr std::uint64_t k_full_check_every = 10;

volatile std::sig_atomic_t g_interrupted = 0;
volatile pid_t g_sink_pid = 0;
// First Ctrl-C/SIGTERM: stop submitting, drain, report. Second: stop the sink (it runs in
// its own process group, so the terminal's signal does not reach it) and leave at once.
extern "C" void on_signal(int) {
  if (g_interrupted != 0) {
    if (g_sink_pid > 0) ::kill(g_sink_pid, SIGTERM);
    ::_exit(130);
  }
  g_interrupted = 1;
}

const char* const k_usage =
    "usage: tracecast-load [options]\n"
    "Simulates an LLM gateway: N threads submit the reference workload (WORKLOAD.md) to a\n"
    "tracecast Pipeline, which broadcasts it over OTLP/HTTP (JSON by default, protobuf with\n"
    "--protocol http/protobuf). By default the bundled tracecast-sink is started on\n"
    "127.0.0.1 (ephemeral port): no set-up needed.\n"
    "\n"
    "load:\n"
    "  --threads N           gateway threads submitting (default 2)\n"
    "  --rate R              requests/s over all threads, 0.001..1e9; 0 = flat out (default 20000)\n"
    "  --duration D          run time: 20s, 1500ms, 2m, 1h, up to 720h (default 10s unless\n"
    "                        --count is given)\n"
    "  --count N             requests in all (1000, 50k, 2M); stops at --duration if also given\n"
    "  --accounts A          accounts the requests are spread over (default 100)\n"
    "  --account-skew K      uniform (default) or zipf:S, e.g. zipf:1.1: account acct_k gets a\n"
    "                        share proportional to 1/(k+1)^S (a few large accounts, a long tail)\n"
    "  --fanout              each account has 1..3 destinations (mean 1.5), one in five in\n"
    "                        privacy mode; codecs cycle none/gzip/zstd per account (default)\n"
    "  --single              one destination for every account\n"
    "  --content             the content variant (prompt + completion, ~1 KiB each)\n"
    "  --sampling R          sampling rate of every destination, 0.0001..1 (default 1)\n"
    "  --api-key-ids A,B     every destination takes only requests made with these API key\n"
    "                        ids (the generated requests use key_0..key_7; others: filtered)\n"
    "  --max-request-bytes N       request body limit of every destination (4096..16777216)\n"
    "  --max-attribute-value-bytes N  attribute value limit of every destination (256..16777216)\n"
    "  --conventions LIST    attribute conventions of every destination, comma-separated:\n"
    "                        openrouter (default), genai, openinference, langfuse, langsmith\n"
    "bundled sink:\n"
    "  --sink-args \"...\"     extra tracecast-sink flags, e.g. \"--fail-503-fraction 0.1\" or\n"
    "                        \"--delay-ms 50\" (see tracecast-sink --help); binary next to this\n"
    "                        one or $TRACECAST_SINK_BIN; refused when another destination is\n"
    "                        given (no bundled sink is started then)\n"
    "real endpoint (no bundled sink; one destination for every account):\n"
    "  --endpoint URL        any OTLP/HTTP traces URL (http://host:4318/v1/traces)\n"
    "  --grafana-url U       Grafana Cloud OTLP gateway (https://otlp-gateway-prod-<region>.grafana.net)\n"
    "  --grafana-instance-id ID   numeric instance (stack) id\n"
    "  --grafana-key-file F  file holding the glc_ access-policy token (or $TRACECAST_API_KEY)\n"
    "  --kind K              a backend preset (langfuse, honeycomb, new_relic, ...; tracecast-check\n"
    "                        --help lists them): one destination of that kind, --endpoint optional\n"
    "                        (self-hosted base URL); the API key of presets with one from\n"
    "                        $TRACECAST_API_KEY\n"
    "  --field NAME=VALUE    a preset field (region=eu, project=...), with --kind only; secret or\n"
    "                        secret-looking fields (api_key, *token*, ...) are refused here\n"
    "  --field-env NAME=VAR  a preset field from environment variable VAR (secrets)\n"
    "  --field-file NAME=PATH  a preset field from a file (secrets)\n"
    "  OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT / _HEADERS / _COMPRESSION / _TIMEOUT / _PROTOCOL,\n"
    "  OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_*, TRACECAST_EGRESS_ALLOW and\n"
    "  TRACECAST_EGRESS_ENFORCE (true/false) are read too (flags win over them)\n"
    "egress policy (customer destinations reach public unicast addresses only; the bundled\n"
    "sink on 127.0.0.1 is allowed explicitly):\n"
    "  --egress-allow LIST   comma-separated CIDRs, addresses or host names also allowed, e.g.\n"
    "                        10.0.0.0/8,otel.internal (also TRACECAST_EGRESS_ALLOW)\n"
    "pipeline:\n"
    "  --config FILE         JSON config file (README \"Configuration file\"); its destinations,\n"
    "                        if any, replace the bundled sink\n"
    "  --batch-spans N       spans per batch (default 512)\n"
    "  --batch-bytes N       batch body limit before compression, bytes (default 4 MiB)\n"
    "  --linger-ms N         minimum batch linger: a busy destination seals after this (default 200)\n"
    "  --max-linger-ms N     maximum linger: a quiet destination waits up to this for more spans\n"
    "                        (default 5000). --linger-ms alone above it raises it to\n"
    "                        --linger-ms; --max-linger-ms alone below the minimum lowers the\n"
    "                        minimum to it; both given with --max-linger-ms < --linger-ms: error\n"
    "  --target-spans N      spans a quiet destination's batch aims for (default 64)\n"
    "  --compression C       none | gzip | zstd (default gzip; fan-out: the first destination\n"
    "                        of each account, the others cycle)\n"
    "  --protocol P          http/json (default) | http/protobuf for every destination\n"
    "  --retry-initial-ms N  first retry backoff (default 5000, the Collector's)\n"
    "  --drain-timeout D     shutdown deadline after the run, up to 720h (default 30s; shorter disables the\n"
    "                        no-loss check)\n"
    "output:\n"
    "  --json                final report as one JSON object on stdout\n"
    "  --quiet               no progress lines\n"
    "\n"
    "A numeric value outside its range, or too large to represent, is refused (exit 2), never\n"
    "wrapped or clamped.\n"
    "\n"
    "Progress each second on stderr (overwritten in place on a terminal): requests submitted/s,\n"
    "spans delivered/s, dropped (total, biggest reason), spans in flight, submit latency p50/p99,\n"
    "batch memory held. The report adds drops by reason, spans per HTTP request, the time\n"
    "add_destinations took, CPU per span, and the busiest (at most 15) destinations.\n"
    "Exit code: 0 all checks passed; 1 a check failed: accounting identity, nothing left in\n"
    "flight, sink count == delivered (more only by what retried or shutdown-aborted requests\n"
    "may have repeated: OTLP retries are at-least-once), or no loss (any span dropped for a reason other than\n"
    "sampled_out, or at --rate > 0 any request refused by a full ring, while the bundled sink\n"
    "was healthy, i.e. no fault flag in --sink-args, and no budget or --drain-timeout was set\n"
    "below its default); with a real endpoint (--endpoint, --grafana-url, --config or\n"
    "OTEL_EXPORTER_OTLP_* destinations) any span dropped for a reason other than sampled_out\n"
    "(blocked by the egress policy, collector down: network/retries_exhausted/shutdown,\n"
    "rejected, ...), or at --rate > 0 any request refused by a full ring, fails the delivery\n"
    "check (the reasons are printed); every run: requests accepted but no span delivered (all\n"
    "unrouted, filtered, or failed, faults injected included) fails the reached check unless\n"
    "every span was sampled out; 2 bad usage/config; 3 set-up failed.\n"
    "A flag without a value also takes exactly =true, =false, =1 or =0.\n";

struct Options {
  unsigned threads = 2;
  double rate = 20000;
  std::optional<std::chrono::milliseconds> duration;
  std::uint64_t count = 0;
  std::size_t accounts = 100;
  AccountSkew skew;
  bool fanout = true;
  bool content = false;
  double sampling = 1.0;
  std::vector<std::string> api_key_ids;        // every destination's allow-list (empty: all)
  std::uint32_t max_request_bytes = 0;         // every destination's, 0: batch.max_bytes
  std::uint32_t max_attribute_value_bytes = 0; // every destination's, 0: encoder.max_value_bytes
  ConventionSet conventions;  // empty: each destination's own (a preset's, else openrouter)
  std::string sink_args;
  EgressPolicy egress_allow;  // --egress-allow entries (allow_cidrs, allow_hosts)
  std::string endpoint;
  std::string grafana_url, grafana_instance_id, grafana_key_file;
  std::string kind;                                         // --kind: a preset's name
  std::vector<std::pair<std::string, std::string>> fields;  // --field*, in order
  std::vector<std::string> argv_fields;                     // names given with --field (no secrets)
  std::string config_file;
  std::optional<std::uint64_t> batch_spans, batch_bytes, linger_ms, max_linger_ms, target_spans, retry_initial_ms;
  std::string compression;
  std::string protocol;  // "" = each destination's own (http/json unless configured)
  std::chrono::milliseconds drain_timeout = k_default_drain_timeout;
  bool json = false;
  bool quiet = false;
};

std::string trim(std::string s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

// Whether a --field name looks like a credential (api_key, secret_key, token, password, ...):
// refused on argv whatever the preset says.
bool looks_secret(std::string name) {
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (name.rfind("public_", 0) == 0) return false;  // public_key (Langfuse): an id, not a secret
  for (const char* word : {"key", "secret", "token", "password", "passwd", "credential", "auth"}) {
    if (name.find(word) != std::string::npos) return true;
  }
  return false;
}

// An endpoint's host (no user info, port kept), else the preset's name: what tells an
// unnamed destination apart in the report.
std::string host_or_kind(const DestinationConfig& t) {
  std::string_view url = t.endpoint;
  if (const std::size_t scheme = url.find("://"); scheme != std::string_view::npos) url.remove_prefix(scheme + 3);
  url = url.substr(0, url.find_first_of("/?#"));
  if (const std::size_t at = url.rfind('@'); at != std::string_view::npos) url.remove_prefix(at + 1);
  return url.empty() ? std::string(to_string(t.kind)) : std::string(url);
}

// Parses argv into `o`. Returns -1 to go on, else the exit code (help: 0, error: 2).
int parse_args(int argc, char** argv, Options& o) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const std::size_t eq = a.find('=');
    const std::string flag = a.rfind("--", 0) == 0 && eq != std::string::npos ? a.substr(0, eq) : a;
    auto bad = [&](const std::string& why) {
      std::cerr << "tracecast-load: " << flag << ": " << why << "\n(see --help)\n";
      return k_exit_usage;
    };
    if (flag == "--help" || flag == "-h") {
      std::cout << k_usage;
      return k_exit_ok;
    }
    if (flag == "--fanout" || flag == "--single" || flag == "--content" || flag == "--json" || flag == "--quiet") {
      // A boolean flag honours "=false" and refuses any other value than true/false/1/0.
      bool on = false;
      const tools::CliArg split = tools::split_cli_arg(a);
      if (std::string e = tools::parse_bool_flag(split, on); !e.empty()) {
        std::cerr << "tracecast-load: " << e << "\n(see --help)\n";
        return k_exit_usage;
      }
      if (flag == "--fanout") o.fanout = on;
      if (flag == "--single") o.fanout = !on;
      if (flag == "--content") o.content = on;
      if (flag == "--json") o.json = on;
      if (flag == "--quiet") o.quiet = on;
      continue;
    }
    if (flag == "--api-key" || flag == "--grafana-key") {
      return bad("keys are not accepted on the command line (ps, shell history): use --grafana-key-file or TRACECAST_API_KEY");
    }
    std::string v;
    if (eq != std::string::npos && flag != a) {
      v = a.substr(eq + 1);
    } else if (i + 1 < args.size() && (args[i + 1].rfind("--", 0) != 0 || flag == "--sink-args")) {
      // The next argument is the value unless it is an option itself: only --sink-args takes
      // options as its value ("--fail-429 5"); no other value (a name, kind, URL, path, number)
      // starts with "--", so "--kind --bogus" is a missing value, never the kind "--bogus".
      v = args[++i];
    } else if (i + 1 < args.size()) {
      return bad("needs a value (got the option " + args[i + 1].substr(0, args[i + 1].find('=')) + ")");
    } else {
      return bad("needs a value");
    }
    std::uint64_t n = 0;
    double d = 0;
    std::chrono::milliseconds ms{};
    // Every numeric flag is range-checked: a value that overflows or lies outside its
    // limits is refused (exit 2), never wrapped or clamped.
    std::string why;
    auto count_in = [&](std::uint64_t min, std::uint64_t max) {
      why = parse_count_in(v, min, max, n);
      return why.empty();
    };
    auto duration_in = [&](std::chrono::milliseconds max) {
      why = parse_duration_in(v, std::chrono::milliseconds(1), max, ms);
      return why.empty();
    };
    if (flag == "--threads") {
      if (!count_in(1, 1000)) return bad(why);
      o.threads = static_cast<unsigned>(n);
    } else if (flag == "--rate") {
      // A negative rate is a number, just out of range: say the range, not "not a number".
      if (!v.empty() && v[0] == '-') return bad("must be >= 0: 0 = flat out, or 0.001..1e+09 requests/s (got '" + v.substr(0, 32) + "')");
      why = parse_number_in(v, 0, k_max_rate, d);
      if (!why.empty()) return bad(why + "; requests/s, 0 = flat out");
      if (d > 0 && d < k_min_rate) return bad(v + " is out of range (expects 0 = flat out, or 0.001..1e+09 requests/s)");
      o.rate = d;
    } else if (flag == "--duration") {
      if (!duration_in(k_max_duration)) return bad(why);
      o.duration = ms;
    } else if (flag == "--count") {
      if (!count_in(1, UINT64_MAX)) return bad(why);
      o.count = n;
    } else if (flag == "--accounts") {
      if (!count_in(1, 1'000'000)) return bad(why);
      o.accounts = static_cast<std::size_t>(n);
    } else if (flag == "--account-skew") {
      if (!parse_account_skew(v, o.skew)) return bad("expects uniform or zipf:S with 0 < S <= 10 (e.g. zipf:1.1)");
    } else if (flag == "--sampling") {
      why = parse_number_in(v, 0.0001, 1, d);
      if (!why.empty()) return bad(why);
      o.sampling = d;
    } else if (flag == "--api-key-ids") {
      o.api_key_ids.clear();
      for (std::size_t at = 0; at <= v.size();) {
        const std::size_t comma = std::min(v.find(',', at), v.size());
        o.api_key_ids.push_back(v.substr(at, comma - at));
        at = comma + 1;
      }
    } else if (flag == "--max-request-bytes") {
      if (!count_in(PipelineDestination::k_min_request_bytes, PipelineDestination::k_max_request_bytes)) return bad(why);
      o.max_request_bytes = static_cast<std::uint32_t>(n);
    } else if (flag == "--max-attribute-value-bytes") {
      if (!count_in(PipelineDestination::k_min_attribute_value_bytes, PipelineDestination::k_max_attribute_value_bytes)) return bad(why);
      o.max_attribute_value_bytes = static_cast<std::uint32_t>(n);
    } else if (flag == "--conventions") {
      const ConventionListParse parsed = parse_convention_list(v);
      if (!parsed.ok())
        return bad("expects a comma-separated list of openrouter, genai, openinference, langfuse, langsmith; unknown: '" +
                   std::string(parsed.bad) + "'");
      o.conventions = parsed.set;
    } else if (flag == "--sink-args") {
      o.sink_args = v;
    } else if (flag == "--endpoint") {
      o.endpoint = v;
      if (display_url(v) != v) {
        std::cerr << "tracecast-load: warning: --endpoint carries user info or a query string, visible to every "
                     "local user (ps, /proc); pass such a URL in OTEL_EXPORTER_OTLP_TRACES_ENDPOINT instead\n";
      }
    } else if (flag == "--grafana-url") {
      o.grafana_url = v;
    } else if (flag == "--grafana-instance-id") {
      o.grafana_instance_id = v;
    } else if (flag == "--grafana-key-file") {
      o.grafana_key_file = v;
    } else if (flag == "--kind") {
      if (find_preset(v) == nullptr) return bad("unknown preset (" + preset_names() + ")");
      o.kind = v;
    } else if (flag == "--field" || flag == "--field-env" || flag == "--field-file") {
      const std::size_t at = v.find('=');
      if (at == std::string::npos || at == 0 || (flag != "--field" && at + 1 == v.size())) return bad("expects NAME=...");
      std::string field_value = v.substr(at + 1);
      if (flag == "--field-env") {
        const char* e = std::getenv(field_value.c_str());
        if (e == nullptr || e[0] == '\0') return bad("environment variable " + field_value + " is not set or empty");
        field_value = trim(e);
      } else if (flag == "--field-file") {
        std::string text;
        const std::string unread = tools::read_bounded_file(field_value, tools::k_max_secret_file_bytes, text);
        if (!unread.empty()) return bad(field_value + ": " + unread);
        field_value = trim(text);
      } else {
        o.argv_fields.push_back(v.substr(0, at));
      }
      o.fields.emplace_back(v.substr(0, at), std::move(field_value));
    } else if (flag == "--config") {
      o.config_file = v;
    } else if (flag == "--egress-allow") {
      // The library's parser, as for TRACECAST_EGRESS_ALLOW (repeatable: the lists add up).
      if (const std::string e = parse_egress_allow(v, o.egress_allow); !e.empty()) return bad(e);
    } else if (flag == "--batch-spans") {
      if (!count_in(1, 65536)) return bad(why);
      o.batch_spans = n;
    } else if (flag == "--batch-bytes") {
      if (!count_in(4096, 16u << 20)) return bad(why + "; bytes");
      o.batch_bytes = n;
    } else if (flag == "--linger-ms") {
      if (!count_in(1, 60000)) return bad(why);
      o.linger_ms = n;
    } else if (flag == "--max-linger-ms") {
      if (!count_in(1, 60000)) return bad(why);
      o.max_linger_ms = n;
    } else if (flag == "--target-spans") {
      if (!count_in(1, 65536)) return bad(why);
      o.target_spans = n;
    } else if (flag == "--retry-initial-ms") {
      if (!count_in(1, 600000)) return bad(why);
      o.retry_initial_ms = n;
    } else if (flag == "--compression") {
      if (v != "none" && v != "gzip" && v != "zstd") return bad("expects none, gzip or zstd");
      o.compression = v;
    } else if (flag == "--protocol") {
      if (v != "http/json" && v != "http/protobuf") return bad("expects http/json or http/protobuf");
      o.protocol = v;
    } else if (flag == "--drain-timeout") {
      if (!duration_in(k_max_duration)) return bad(why);
      o.drain_timeout = ms;
    } else {
      std::cerr << "tracecast-load: unknown option " << a << "\n(see --help)\n";
      return k_exit_usage;
    }
  }
  // A secret never comes from argv (ps, shell history), whatever the kind: a field whose name
  // looks like a credential is refused here even when the preset does not mark it secret or
  // --kind is missing. The value is never echoed.
  for (const std::string& name : o.argv_fields) {
    // A field the preset knows: its row says whether it is secret; any other name: its looks.
    const PresetField* known = o.kind.empty() ? nullptr : find_field(*find_preset(o.kind), name);
    if (known != nullptr ? known->secret : looks_secret(name)) {
      std::cerr << "tracecast-load: --field " << name << "=...: a secret-looking field is not accepted on the command "
                   "line (ps, shell history); use --field-env " << name << "=VAR or --field-file " << name
                << "=PATH\n(see --help)\n";
      return k_exit_usage;
    }
  }
  // Fields belong to a preset: without --kind they would be ignored without a word.
  if (!o.fields.empty() && o.kind.empty()) {
    std::cerr << "tracecast-load: --field, --field-env and --field-file are a preset's fields: give --kind too\n"
                 "(see --help)\n";
    return k_exit_usage;
  }
  if (!o.duration && o.count == 0) o.duration = std::chrono::milliseconds(10000);
  if (!o.grafana_url.empty() && !o.endpoint.empty()) {
    std::cerr << "tracecast-load: give --endpoint or --grafana-url, not both\n";
    return k_exit_usage;
  }
  return -1;
}

// Per-interval view for the progress line.
struct Snapshot {
  steady::time_point at;
  ProducerTotals producers;
  PipelineStats stats;
  HistogramCounts latency;
};

std::uint64_t ring_full(const PipelineStats& s) { return s.ingest.rejected_full; }

// Biggest drop reason ("ring_full" counts requests the ingest ring refused).
std::string biggest_reason(const PipelineStats& s) {
  std::string name = "-";
  std::uint64_t best = 0;
  for (std::size_t r = 0; r < k_drop_reasons; ++r) {
    if (s.total.dropped[r] > best) {
      best = s.total.dropped[r];
      name = std::string(to_string(static_cast<DropReason>(r)));
    }
  }
  if (ring_full(s) > best) name = "ring_full";
  return name;
}

// First destination (or the total) whose books do not balance: "" when all do.
std::string unbalanced(const PipelineStats& s) {
  auto describe = [](const DestinationCounters& c) {
    std::ostringstream out;
    out << c.name << ": submitted " << c.submitted << " != delivered " << c.delivered << " + dropped "
        << c.dropped_total() << " + in flight " << c.in_flight;
    return out.str();
  };
  if (!s.total.balanced()) return describe(s.total);
  for (const auto& d : s.destinations) {
    if (!d.balanced()) return describe(d);
  }
  return {};
}

// Request latency quantile from the pipeline's histogram: the bucket's upper bound, ms.
std::string latency_quantile(const DestinationCounters& c, double q) {
  std::uint64_t total = 0;
  for (auto n : c.latency_buckets) total += n;
  if (total == 0) return "-";
  const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total) + 0.999999);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < c.latency_buckets.size(); ++i) {
    seen += c.latency_buckets[i];
    if (seen >= rank) {
      if (i >= k_latency_bounds_ms.size()) return "> " + std::to_string(static_cast<int>(k_latency_bounds_ms.back())) + " ms";
      char buf[32];
      std::snprintf(buf, sizeof buf, "<= %g ms", k_latency_bounds_ms[i]);
      return buf;
    }
  }
  return "-";
}

struct Run {
  std::string target;        // what the destinations point at (display form)
  std::size_t destinations = 0;
  std::size_t privacy = 0;
  bool bundled_sink = false;
  std::string no_loss_not_applicable;  // why the no-loss check does not apply ("" = it does)
  double add_ms = 0;                   // wall time of the add_destinations call
};

std::string fmt_fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (const int rc = parse_args(argc, argv, opt); rc >= 0) return rc;

  // --- configuration: defaults <- config file <- OTEL_* environment <- flags ----------
  PipelineConfig config;
  std::vector<std::pair<std::string, PipelineDestination>> configured;  // file/env destinations
  if (!opt.config_file.empty()) {
    ConfigLoadResult file = config_from_json_file(opt.config_file);
    if (!file.ok()) {
      std::cerr << "tracecast-load: " << file.error << "\n";
      return k_exit_usage;
    }
    config = std::move(file.config);
    configured = std::move(file.destinations);
  }
  {
    ConfigLoadResult env = config_from_env(config);
    if (!env.ok()) {
      std::cerr << "tracecast-load: " << env.error << "\n";
      return k_exit_usage;
    }
    config = std::move(env.config);
    if (!env.destinations.empty()) configured = std::move(env.destinations);
  }
  if (opt.batch_spans) config.batch.max_spans = static_cast<std::uint32_t>(*opt.batch_spans);
  if (opt.batch_bytes) config.batch.max_bytes = static_cast<std::uint32_t>(*opt.batch_bytes);
  // The linger pair: one flag alone moves the other bound out of its way (as
  // OTEL_BSP_SCHEDULE_DELAY does); both given, they must be ordered.
  if (opt.linger_ms && opt.max_linger_ms && *opt.max_linger_ms < *opt.linger_ms) {
    std::cerr << "tracecast-load: --max-linger-ms " << *opt.max_linger_ms << " is below --linger-ms "
              << *opt.linger_ms << ": the maximum linger must be >= the minimum\n(see --help)\n";
    return k_exit_usage;
  }
  if (opt.linger_ms) config.batch.linger = std::chrono::milliseconds(*opt.linger_ms);
  if (opt.max_linger_ms) {
    config.batch.max_linger = std::chrono::milliseconds(*opt.max_linger_ms);
    if (!opt.linger_ms) config.batch.linger = std::min(config.batch.linger, config.batch.max_linger);
  } else if (opt.linger_ms) {
    config.batch.max_linger = std::max(config.batch.max_linger, config.batch.linger);
  }
  if (opt.target_spans) config.batch.target_spans = static_cast<std::uint32_t>(*opt.target_spans);
  if (opt.retry_initial_ms) {
    config.sender.retry.initial_interval = std::chrono::milliseconds(*opt.retry_initial_ms);
    config.sender.retry.max_interval = std::max(config.sender.retry.max_interval, config.sender.retry.initial_interval);
  }
  for (const std::string& entry : opt.egress_allow.allow_cidrs) config.sender.egress.allow_cidrs.push_back(entry);
  for (const std::string& entry : opt.egress_allow.allow_hosts) config.sender.egress.allow_hosts.push_back(entry);
  // Producers, plus the reporting thread, must fit the ring's producer table.
  config.ingest.max_producers = std::max<std::uint32_t>(config.ingest.max_producers, opt.threads + 2);
  if (const std::string why = config.validate(); !why.empty()) {
    std::cerr << "tracecast-load: invalid pipeline config: " << why << "\n";
    return k_exit_usage;
  }

  // --- destinations ------------------------------------------------------------------
  std::vector<std::pair<std::string, PipelineDestination>> destinations;
  std::unique_ptr<SinkRunner> sink;
  Run run;
  const std::string compression = opt.compression.empty() ? "gzip" : opt.compression;
  const bool destination_flag = !opt.kind.empty() || !opt.grafana_url.empty() || !opt.grafana_instance_id.empty() ||
                                !opt.grafana_key_file.empty() || !opt.endpoint.empty();
  // --sink-args shapes the bundled sink only; with any other destination it is not started
  // and the faults would be ignored without a word.
  if (!opt.sink_args.empty() && (destination_flag || !configured.empty())) {
    std::cerr << "tracecast-load: --sink-args: the faults only apply to the bundled sink, which is not started when "
              << (destination_flag ? "a destination flag (--endpoint, --kind, --grafana-*) is given"
                                   : "--config or OTEL_EXPORTER_OTLP_* give destinations")
              << "\n(see --help)\n";
    return k_exit_usage;
  }
  if (destination_flag && !configured.empty()) {
    std::cerr << "tracecast-load: note: the destination given by flags replaces the " << configured.size()
              << " destination(s) of --config / OTEL_EXPORTER_OTLP_*\n";
  }
  if (!opt.kind.empty()) {
    // One destination of a preset kind (the catalog's row gives URL, headers and defaults).
    PipelineDestination d;
    d.transport.kind = find_preset(opt.kind)->kind;
    const PresetInfo& row = preset_info(d.transport.kind);
    for (const std::string& name : opt.argv_fields) {
      if (const PresetField* f = find_field(row, name); f != nullptr && f->secret) {
        std::cerr << "tracecast-load: --field " << name << "=...: a secret of the " << row.display_name
                  << " preset is not accepted on the command line (ps, shell history); use --field-env or --field-file\n";
        return k_exit_usage;
      }
    }
    d.transport.name = std::string(row.name);
    d.transport.endpoint = opt.endpoint;
    d.transport.fields = opt.fields;
    if (const char* key = std::getenv("TRACECAST_API_KEY"); key != nullptr && find_field(row, "api_key") != nullptr) {
      d.transport.api_key = trim(key);
    }
    d.transport.compression = opt.compression;
    apply_preset_defaults(d.transport);
    destinations.emplace_back("", std::move(d));
    run.no_loss_not_applicable = "the destination is a " + std::string(row.display_name) + " preset, not the bundled sink";
  } else if (!opt.grafana_url.empty() || !opt.grafana_instance_id.empty() || !opt.grafana_key_file.empty()) {
    PipelineDestination d;
    d.transport.kind = DestinationKind::grafana_cloud;
    d.transport.name = "grafana-cloud";
    d.transport.endpoint = opt.grafana_url;
    d.transport.instance_id = opt.grafana_instance_id;
    if (!opt.grafana_key_file.empty()) {
      std::string text;
      const std::string why =
          tracecast::tools::read_bounded_file(opt.grafana_key_file, tracecast::tools::k_max_secret_file_bytes, text);
      if (!why.empty()) {
        std::cerr << "tracecast-load: --grafana-key-file " << opt.grafana_key_file << ": " << why << "\n";
        return k_exit_usage;
      }
      d.transport.api_key = trim(text);
    } else if (const char* key = std::getenv("TRACECAST_API_KEY"); key != nullptr) {
      d.transport.api_key = trim(key);
    }
    d.transport.compression = opt.compression;
    destinations.emplace_back("", std::move(d));
    run.no_loss_not_applicable = "the destination is Grafana Cloud, not the bundled sink";
  } else if (!opt.endpoint.empty()) {
    PipelineDestination d;
    d.transport.kind = DestinationKind::otlp_http;
    d.transport.name = "endpoint";
    d.transport.endpoint = opt.endpoint;
    d.transport.compression = opt.compression;
    destinations.emplace_back("", std::move(d));
    run.no_loss_not_applicable = "the destination is --endpoint, not the bundled sink";
  } else if (!configured.empty()) {
    destinations = std::move(configured);
    run.no_loss_not_applicable = "the destinations come from --config or OTEL_EXPORTER_OTLP_*, not the bundled sink";
    // Unnamed destinations all showed as "destination [acct_N]" in the report: name them by
    // their place in the config and their endpoint's host (or kind) so they can be told apart.
    for (std::size_t i = 0; i < destinations.size(); ++i) {
      DestinationConfig& t = destinations[i].second.transport;
      if (t.name.empty()) t.name = "destination #" + std::to_string(i + 1) + " (" + host_or_kind(t) + ")";
    }
    if (!opt.compression.empty()) {
      for (auto& [account, d] : destinations) d.transport.compression = opt.compression;
    }
  } else {
    SinkRunner::Options so;
    so.extra_args = split_args(opt.sink_args);
    so.own_process_group = true;
    std::string error;
    sink = SinkRunner::start(so, error);
    if (!sink) {
      std::cerr << "tracecast-load: could not start the bundled sink: " << error << "\n";
      return k_exit_setup;
    }
    run.bundled_sink = true;
    g_sink_pid = sink->pid();
    // The bundled sink listens on 127.0.0.1: allow exactly that address (the default policy
    // refuses loopback, as it must for customer destinations).
    config.sender.egress.allow_cidrs.emplace_back("127.0.0.1/32");
    if (const auto faults = fault_flags(so.extra_args); !faults.empty()) {
      run.no_loss_not_applicable = "faults injected (" + joined(faults) + ")";
    } else if (const auto shrunk = shrunk_budgets(config, opt.drain_timeout, k_default_drain_timeout);
               !shrunk.empty()) {
      run.no_loss_not_applicable = "budgets below their defaults (" + joined(shrunk) + ")";
    }
    const std::string url = sink->traces_url();
    const auto plan = opt.fanout ? plan_fanout(opt.accounts, compression) : plan_single(compression);
    destinations.reserve(plan.size());
    for (const PlannedDestination& p : plan) {
      PipelineDestination d;
      d.transport.kind = DestinationKind::otlp_http;
      d.transport.name = p.name;
      d.transport.endpoint = url;
      d.transport.compression = p.compression;
      d.privacy_mode = p.privacy_mode;
      destinations.emplace_back(p.account, std::move(d));
    }
  }
  for (auto& [account, d] : destinations) {
    if (opt.sampling < 1.0) d.sampling_rate = opt.sampling;
    // Flags override what a --config destination or a preset says only when given.
    if (!opt.api_key_ids.empty()) d.api_key_ids = opt.api_key_ids;  // validated by add_destinations
    if (opt.max_request_bytes != 0) d.max_request_bytes = opt.max_request_bytes;
    if (opt.max_attribute_value_bytes != 0) d.max_attribute_value_bytes = opt.max_attribute_value_bytes;
    if (!opt.conventions.empty()) d.conventions = opt.conventions;
    if (!opt.protocol.empty()) d.transport.protocol = opt.protocol;
    run.privacy += d.privacy_mode ? 1 : 0;
  }
  run.destinations = destinations.size();
  run.target = run.bundled_sink ? "bundled tracecast-sink at " + sink->traces_url()
                                : display_url(resolve(destinations.front().second.transport).url) +
                                      (destinations.size() > 1 ? " (+" + std::to_string(destinations.size() - 1) + " more)" : "");

  std::optional<Pipeline> pipeline;
  try {
    pipeline.emplace(config);
  } catch (const std::exception& e) {
    std::cerr << "tracecast-load: pipeline: " << e.what() << "\n";
    return k_exit_usage;
  }
  {
    // One bulk call, as a gateway loading its accounts at start-up would make.
    const auto add_start = steady::now();
    const std::vector<AddDestinationOutcome> outcomes = pipeline->add_destinations(destinations);
    run.add_ms = std::chrono::duration<double, std::milli>(steady::now() - add_start).count();
    if (outcomes.size() != destinations.size()) {
      std::cerr << "tracecast-load: add_destinations returned " << outcomes.size() << " outcomes for "
                << destinations.size() << " destinations\n";
      return k_exit_setup;
    }
    bool all_ok = true;
    std::size_t shown_issues = 0;
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
      all_ok = all_ok && outcomes[i].ok();
      const PipelineDestination& d = destinations[i].second;
      for (const ValidationIssue& issue : outcomes[i].issues) {
        // Bounded: 100,000 destinations with the same warning must not flood the terminal.
        if (++shown_issues > 20) continue;
        std::cerr << "tracecast-load: destination " << (d.transport.name.empty() ? "destination" : d.transport.name)
                  << ": " << (issue.warning ? "warning: " : "error: ") << issue.path << ": " << issue.message << "\n";
      }
    }
    if (shown_issues > 20) std::cerr << "tracecast-load: ... and " << shown_issues - 20 << " more issues\n";
    if (!all_ok) return k_exit_usage;
  }

  const bool tty = ::isatty(STDERR_FILENO) == 1;
  {
    std::ostringstream head;
    head << "tracecast-load: " << opt.threads << " threads, ";
    if (opt.rate > 0) {
      head << human(opt.rate) << " req/s";
    } else {
      head << "flat out";
    }
    if (opt.duration) head << ", " << static_cast<double>(opt.duration->count()) / 1000.0 << " s";
    if (opt.count != 0) head << ", " << opt.count << " requests";
    head << ", " << opt.accounts << " accounts (" << to_string(opt.skew) << "), " << run.destinations
         << " destinations ("
         << (run.bundled_sink ? (opt.fanout ? "fan-out, " : "single, ") : "") << run.privacy << " privacy), "
         << (opt.content ? "content variant" : "canonical request") << ", batch " << config.batch.max_spans
         << " spans / " << human_bytes(config.batch.max_bytes) << " / linger " << config.batch.linger.count() << ".."
         << config.batch.max_linger.count() << " ms (target " << config.batch.target_spans << " spans)\n"
         << "  -> " << run.target << "; destinations added in " << fmt_fixed(run.add_ms, 1)
         << " ms (one add_destinations call)\n";
    std::cerr << head.str();
  }

  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  // --- run ---------------------------------------------------------------------------
  ProducerOptions po;
  po.threads = opt.threads;
  po.rate = opt.rate;
  po.count = opt.count;
  po.content = opt.content;
  po.accounts = opt.accounts;
  po.skew = opt.skew;
  if (opt.duration) po.duration = *opt.duration;  // the threads stop on time themselves
  ProducerGroup producers(&*pipeline, po);
  const double ns_per_tick = TickClock::ns_per_tick();
  const std::uint64_t cpu_start = process_cpu_ns();
  const auto start = steady::now();
  producers.start();

  std::uint64_t snapshots = 0;
  std::uint64_t full_snapshots = 0;  // of which also checked every destination (stats_all())
  std::string identity_failure;  // first failing snapshot
  Snapshot prev{start, {}, {}, {}};
  const auto end_at = opt.duration ? start + *opt.duration : steady::time_point::max();
  auto next_tick = start + std::chrono::seconds(1);
  for (;;) {
    const bool done = producers.finished() || g_interrupted != 0 || steady::now() >= end_at;
    if (!done && steady::now() < next_tick) {
      std::this_thread::sleep_for(std::min<steady::duration>(std::chrono::milliseconds(50), next_tick - steady::now()));
      continue;
    }
    Snapshot cur;
    cur.at = steady::now();
    cur.producers = producers.totals();
    // totals(): the progress line and the total's identity need no per-destination list.
    cur.stats = pipeline->totals();
    producers.latency(cur.latency);
    ++snapshots;
    if (const std::string why = unbalanced(cur.stats); !why.empty() && identity_failure.empty()) {
      identity_failure = "snapshot " + std::to_string(snapshots) + ": " + why;
    }
    if ((snapshots == 1 || snapshots % k_full_check_every == 0) && identity_failure.empty()) {
      ++full_snapshots;
      if (const std::string why = unbalanced(pipeline->stats_all()); !why.empty()) {
        identity_failure = "full snapshot at " + std::to_string(snapshots) + ": " + why;
      }
    }
    if (!opt.quiet) {
      const double secs = std::chrono::duration<double>(cur.at - prev.at).count();
      const double per_s = secs > 0 ? 1.0 / secs : 0;
      const HistogramCounts lat = cur.latency.minus(prev.latency);
      const std::uint64_t dropped = cur.stats.total.dropped_total() + ring_full(cur.stats);
      char line[512];
      std::snprintf(line, sizeof line,
                    "[%5.1fs] submitted %9s/s  delivered %9s spans/s  dropped %s (%s)  in flight %s  "
                    "submit p50 %s p99 %s  mem %s",
                    std::chrono::duration<double>(cur.at - start).count(),
                    human(static_cast<double>(cur.producers.attempted - prev.producers.attempted) * per_s).c_str(),
                    human(static_cast<double>(cur.stats.total.delivered - prev.stats.total.delivered) * per_s).c_str(),
                    human(static_cast<double>(dropped)).c_str(), dropped == 0 ? "-" : biggest_reason(cur.stats).c_str(),
                    human(static_cast<double>(cur.stats.total.in_flight)).c_str(),
                    human_ns(lat.quantile(0.5) * ns_per_tick).c_str(),
                    human_ns(lat.quantile(0.99) * ns_per_tick).c_str(),
                    human_bytes(static_cast<double>(cur.stats.memory_bytes)).c_str());
      if (tty) {
        std::fprintf(stderr, "\r%s\x1b[K", line);
      } else {
        std::fprintf(stderr, "%s\n", line);
      }
      std::fflush(stderr);
    }
    prev = std::move(cur);
    if (done) break;
    next_tick += std::chrono::seconds(1);
    if (next_tick < steady::now()) next_tick = steady::now() + std::chrono::seconds(1);
  }
  if (!opt.quiet && tty) std::fprintf(stderr, "\n");
  producers.request_stop();
  producers.join();
  const auto producers_done = steady::now();
  // The pipeline's own threads (named by the library), read before shutdown joins them.
  const std::uint64_t worker_ns = threads_cpu_ns_by_name("tracecast-work");
  const std::uint64_t sender_ns = threads_cpu_ns_by_name("tracecast-send");
  const ProducerTotals ptotals = producers.totals();
  HistogramCounts latency;
  producers.latency(latency);

  // --- shutdown and checks -----------------------------------------------------------
  const DrainResult drained = pipeline->shutdown(steady::now() + opt.drain_timeout);
  const auto drained_at = steady::now();
  const PipelineStats& fin = drained.stats;
  const std::uint64_t cpu_ns = process_cpu_ns() - cpu_start;
  const std::uint64_t peak_rss = peak_rss_bytes();

  std::vector<std::string> failures;
  if (!identity_failure.empty()) failures.push_back("identity during the run: " + identity_failure);
  if (const std::string why = unbalanced(fin); !why.empty()) failures.push_back("identity after shutdown: " + why);
  // shutdown() listed the busiest and the troubled destinations; every one is checked here,
  // after the peak RSS was read (a full listing is ~500 bytes per destination).
  if (const std::string why = unbalanced(pipeline->stats_all()); !why.empty()) {
    failures.push_back(std::string("identity after shutdown (every destination): ").append(why));
  }
  if (fin.total.in_flight != 0) {
    failures.push_back("in flight after shutdown: " + std::to_string(fin.total.in_flight) + " spans");
  }
  SinkCounters sc;
  bool have_sink = false;
  std::string sink_check = "not applicable (external endpoint)";
  if (sink) {
    std::string error;
    if (!sink->counters(sc, error)) {
      failures.push_back("sink: " + error);
      sink_check = "failed: " + error;
    } else {
      have_sink = true;
      if (sc.count_only) {
        sink_check = "not applicable (sink in --count-only mode counts no spans)";
      } else {
        const std::uint64_t accepted = sc.spans - std::min(sc.spans, sc.rejected_spans);
        // OTLP retries are at-least-once: a request whose answer was lost (a timeout, a reset
        // after sending) and that was sent again arrives twice; one aborted in flight at the
        // shutdown deadline may have arrived too. The sink may count more than was delivered
        // by at most those, never less.
        const std::uint64_t may_repeat =
            fin.total.retries * config.batch.max_spans + fin.total.dropped_by(DropReason::shutdown);
        if (accepted == fin.total.delivered) {
          sink_check = "ok (sink accepted " + std::to_string(accepted) + " spans == delivered)";
        } else if (accepted > fin.total.delivered && accepted - fin.total.delivered <= may_repeat) {
          sink_check = "ok (sink accepted " + std::to_string(accepted) + " spans = delivered + " +
                       std::to_string(accepted - fin.total.delivered) +
                       " more: requests whose answer was lost or came too late (retried, timed out or aborted) "
                       "had arrived; OTLP delivery is at-least-once)";
        } else {
          sink_check = "FAILED: sink accepted " + std::to_string(accepted) + " spans (" + std::to_string(sc.spans) +
                       " received - " + std::to_string(sc.rejected_spans) + " rejected), pipeline delivered " +
                       std::to_string(fin.total.delivered);
          failures.push_back("sink count: " + sink_check.substr(8));
        }
      }
    }
    g_sink_pid = 0;
    sink->stop();
  }
  const LossVerdict loss = check_no_loss(fin, opt.rate > 0, run.no_loss_not_applicable);
  if (!loss.failure.empty()) failures.push_back(loss.failure);
  const std::string loss_check =
      !loss.applicable ? "not applicable (" + loss.not_applicable_because + ")"
                       : (loss.failure.empty() ? std::string("ok") : "FAILED");
  // A real endpoint: the run succeeded only if what was submitted reached it (a blocked
  // address or a collector that is down must not end in exit 0).
  std::string delivery_check = "not applicable (bundled sink: see the no-loss check)";
  if (!run.bundled_sink) {
    const LossVerdict delivered = check_delivered(fin, opt.rate > 0);
    if (delivered.failure.empty()) {
      delivery_check = "ok (nothing dropped)";
    } else {
      delivery_check = "FAILED";
      failures.push_back(delivered.failure);
    }
  }
  // README: a run that reached nothing never exits 0 (every request unrouted or filtered,
  // or every request failed: injected faults, a collector that refuses), unless every span
  // was sampled out, which the report says.
  const ReachVerdict reached = check_reached(fin);
  if (!reached.failure.empty()) failures.push_back(reached.failure);
  const std::string reached_check =
      !reached.failure.empty() ? "FAILED" : reached.note.empty() ? "ok" : "ok (" + reached.note + ")";
  const double spans_per_request = fin.total.requests_delivered > 0
                                       ? static_cast<double>(fin.total.delivered) /
                                             static_cast<double>(fin.total.requests_delivered)
                                       : 0;

  // The load's own end: the producers stop on time themselves, maybe while a snapshot of
  // every destination still held the monitoring loop.
  const double run_s = std::chrono::duration<double>(std::min(producers.finished_at(), producers_done) - start).count();
  const double cpu_per_span = fin.total.delivered > 0 ? static_cast<double>(cpu_ns) / static_cast<double>(fin.total.delivered) : 0;
  // At most k_shown_max destinations: the k_shown_busiest by delivered spans, then the first
  // dead or losing ones among the rest (in id order); a partial sort, so 100,000 cost little.
  std::vector<const DestinationCounters*> shown;
  {
    std::vector<const DestinationCounters*> all;
    all.reserve(fin.destinations.size());
    for (const auto& d : fin.destinations) all.push_back(&d);
    const std::size_t busiest = std::min(all.size(), k_shown_busiest);
    std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(busiest), all.end(),
                      [](auto* a, auto* b) { return a->delivered > b->delivered; });
    shown.assign(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(busiest));
    std::sort(all.begin() + static_cast<std::ptrdiff_t>(busiest), all.end(), [](auto* a, auto* b) { return a->id < b->id; });
    for (std::size_t i = busiest; i < all.size() && shown.size() < k_shown_max; ++i) {
      const DestinationCounters& d = *all[i];
      const bool dead = d.submitted > 0 && d.delivered == 0;
      const bool lossy = d.dropped_total() > d.dropped_by(DropReason::sampled_out);
      if (dead || lossy) shown.push_back(all[i]);
    }
  }

  if (opt.json) {
    std::ostringstream j;
    j << "{\"threads\":" << opt.threads << ",\"rate\":" << opt.rate << ",\"run_seconds\":" << run_s
      << ",\"drain_seconds\":" << std::chrono::duration<double>(drained_at - producers_done).count()
      << ",\"drain_complete\":" << (drained.complete ? "true" : "false")
      << ",\"accounts\":" << opt.accounts << ",\"account_skew\":" << json_quote(to_string(opt.skew))
      << ",\"destinations\":" << run.destinations << ",\"add_destinations_ms\":" << run.add_ms
      << ",\"privacy_destinations\":" << run.privacy << ",\"fanout\":" << (opt.fanout ? "true" : "false")
      << ",\"content\":" << (opt.content ? "true" : "false") << ",\"target\":" << json_quote(run.target)
      << ",\"requests\":{\"attempted\":" << ptotals.attempted << ",\"accepted\":" << fin.ingest.accepted
      << ",\"ring_full\":" << fin.ingest.rejected_full << ",\"closed\":" << fin.ingest.rejected_closed
      << ",\"routed\":" << fin.requests_routed << ",\"unrouted\":" << fin.requests_unrouted << "}"
      << ",\"spans\":{\"submitted\":" << fin.total.submitted << ",\"delivered\":" << fin.total.delivered
      << ",\"dropped\":" << fin.total.dropped_total() << ",\"in_flight\":" << fin.total.in_flight
      << ",\"filtered\":" << fin.total.filtered << ",\"values_truncated\":" << fin.total.values_truncated << "}"
      << ",\"dropped_by_reason\":{";
    for (std::size_t r = 0; r < k_drop_reasons; ++r) {
      j << (r ? "," : "") << json_quote(to_string(static_cast<DropReason>(r))) << ":" << fin.total.dropped[r];
    }
    j << "},\"requests_sent\":" << fin.total.requests_sent << ",\"requests_delivered\":" << fin.total.requests_delivered
      << ",\"spans_per_request\":" << spans_per_request << ",\"retries\":" << fin.total.retries
      << ",\"bytes_raw\":" << fin.total.bytes_raw << ",\"bytes_compressed\":" << fin.total.bytes_compressed
      << ",\"submit_latency_ns\":{\"p50\":" << latency.quantile(0.5) * ns_per_tick
      << ",\"p99\":" << latency.quantile(0.99) * ns_per_tick << ",\"p999\":" << latency.quantile(0.999) * ns_per_tick << "}"
      << ",\"cpu_ns_per_delivered_span\":" << cpu_per_span << ",\"peak_rss_mb\":" << static_cast<double>(peak_rss) / 1048576.0
      << ",\"worker_cpu_ns\":" << worker_ns << ",\"sender_cpu_ns\":" << sender_ns
      << ",\"memory_peak_bytes\":" << fin.memory_peak_bytes << ",\"batch\":{\"max_spans\":" << config.batch.max_spans
      << ",\"max_bytes\":" << config.batch.max_bytes << ",\"linger_ms\":" << config.batch.linger.count()
      << ",\"max_linger_ms\":" << config.batch.max_linger.count() << ",\"target_spans\":" << config.batch.target_spans
      << "},\"destinations_shown\":[";
    for (std::size_t i = 0; i < shown.size(); ++i) {
      const auto& d = *shown[i];
      j << (i ? "," : "") << "{\"name\":" << json_quote(d.name) << ",\"account\":" << json_quote(d.account)
        << ",\"submitted\":" << d.submitted << ",\"delivered\":" << d.delivered << ",\"dropped\":" << d.dropped_total()
        << ",\"in_flight\":" << d.in_flight << ",\"retries\":" << d.retries << "}";
    }
    j << "],\"sink\":";
    if (have_sink) {
      j << "{\"requests\":" << sc.requests << ",\"spans\":" << sc.spans << ",\"rejected_spans\":" << sc.rejected_spans
        << ",\"invalid\":" << sc.invalid << ",\"resets\":" << sc.resets << "}";
    } else {
      j << "null";
    }
    j << ",\"no_loss_check\":";
    if (loss.applicable) {
      j << "{\"applicable\":true,\"lost_spans\":" << loss.lost_spans << ",\"lost_requests\":" << loss.lost_requests << "}";
    } else {
      j << "{\"applicable\":false,\"because\":" << json_quote(loss.not_applicable_because) << "}";
    }
    j << ",\"delivery_check\":" << json_quote(delivery_check) << ",\"reached_check\":" << json_quote(reached_check);
    j << ",\"snapshots\":" << snapshots << ",\"full_snapshots\":" << full_snapshots << ",\"checks_passed\":" << (failures.empty() ? "true" : "false")
      << ",\"failures\":[";
    for (std::size_t i = 0; i < failures.size(); ++i) j << (i ? "," : "") << json_quote(failures[i]);
    j << "]}\n";
    std::cout << j.str();
  } else {
    std::ostringstream o;
    o << "\n== tracecast-load report ==\n";
    o << "run:        " << fmt_fixed(run_s, 2) << " s of load, drained in "
      << fmt_fixed(std::chrono::duration<double>(drained_at - producers_done).count(), 2) << " s"
      << (drained.complete ? "" : " (--drain-timeout ran out: what was still in flight is dropped as shutdown)")
      << (g_interrupted != 0 ? " (interrupted)" : "") << "\n";
    o << "requests:   " << ptotals.attempted << " submitted (" << human(static_cast<double>(ptotals.attempted) / std::max(run_s, 1e-9))
      << "/s), " << fin.ingest.accepted << " accepted, " << fin.ingest.rejected_full << " ring full, "
      << fin.requests_unrouted << " unrouted\n";
    o << "spans:      " << fin.total.submitted << " to destinations, " << fin.total.delivered << " delivered ("
      << human(static_cast<double>(fin.total.delivered) / std::max(run_s, 1e-9)) << "/s), "
      << fin.total.dropped_total() << " dropped, " << fin.total.in_flight << " in flight\n";
    if (fin.total.filtered != 0 || fin.total.values_truncated != 0) {
      o << "routing:    " << fin.total.filtered << " spans filtered (enabled false or API key id not allowed; "
        << "not in the spans above), " << fin.total.values_truncated << " values cut to a destination's limit\n";
    }
    o << "drops:      ";
    bool any = false;
    for (std::size_t r = 0; r < k_drop_reasons; ++r) {
      if (fin.total.dropped[r] == 0) continue;
      o << (any ? ", " : "") << to_string(static_cast<DropReason>(r)) << " " << fin.total.dropped[r];
      any = true;
    }
    if (fin.ingest.rejected_full != 0) o << (any ? ", " : "") << "ring_full " << fin.ingest.rejected_full << " requests";
    if (!any && fin.ingest.rejected_full == 0) o << "none";
    o << "\n";
    o << "http:       " << fin.total.requests_sent << " requests sent, " << fin.total.requests_delivered << " delivered, "
      << fin.total.retries << " retries; " << (fin.total.requests_delivered > 0 ? fmt_fixed(spans_per_request, 1) : "n/a")
      << " spans per request; latency p50 " << latency_quantile(fin.total, 0.5) << ", p99 "
      << latency_quantile(fin.total, 0.99) << "\n";
    o << "bytes:      " << human_bytes(static_cast<double>(fin.total.bytes_raw)) << " encoded -> "
      << human_bytes(static_cast<double>(fin.total.bytes_compressed)) << " sent";
    if (fin.total.bytes_compressed > 0) {
      o << " (x" << fmt_fixed(static_cast<double>(fin.total.bytes_raw) / static_cast<double>(fin.total.bytes_compressed), 1) << ")";
    }
    o << "; batch memory peak " << human_bytes(static_cast<double>(fin.memory_peak_bytes)) << "\n";
    o << "submit:     p50 " << human_ns(latency.quantile(0.5) * ns_per_tick) << ", p99 "
      << human_ns(latency.quantile(0.99) * ns_per_tick) << ", p99.9 " << human_ns(latency.quantile(0.999) * ns_per_tick)
      << " per call\n";
    o << "process:    " << (fin.total.delivered > 0 ? human_ns(cpu_per_span) : std::string("n/a")) << " CPU per delivered span (user+sys "
      << fmt_fixed(static_cast<double>(cpu_ns) / 1e9, 2) << " s, load generation included), peak RSS "
      << human_bytes(static_cast<double>(peak_rss)) << "\n";
    if (fin.total.delivered > 0 && (worker_ns | sender_ns) != 0) {
      const double d = static_cast<double>(fin.total.delivered);
      o << "threads:    worker " << human_ns(static_cast<double>(worker_ns) / d) << ", sender "
        << human_ns(static_cast<double>(sender_ns) / d) << " CPU per delivered span (until the load stopped)\n";
    }
    o << "setup:      " << run.destinations << " destinations added in " << fmt_fixed(run.add_ms, 1)
      << " ms (one add_destinations call)\n";
    o << "destinations (" << shown.size() << " shown of " << fin.destinations_configured << ": the "
      << k_shown_busiest << " busiest by delivered, then up to " << k_shown_max - k_shown_busiest
      << " dead or losing spans):\n";
    for (const auto* d : shown) {
      o << "  " << d->name << (d->account.empty() ? "" : " [" + d->account + "]") << ": submitted " << d->submitted
        << ", delivered " << d->delivered << ", dropped " << d->dropped_total() << ", retries " << d->retries
        << (d->submitted > 0 && d->delivered == 0 ? "  DEAD" : "") << "\n";
    }
    std::size_t silent = 0;
    for (const auto& d : fin.destinations) silent += d.submitted > 0 && d.delivered == 0 ? 1 : 0;
    if (silent > 0) o << "note:       " << silent << " destination(s) delivered nothing (see drops above)\n";
    if (have_sink) {
      o << "sink:       " << sc.requests << " requests, " << sc.spans << " spans, " << sc.rejected_spans
        << " rejected by partialSuccess, " << sc.invalid << " invalid, " << sc.resets << " resets; statuses";
      for (const auto& [code, n] : sc.status_counts) o << " " << code << ":" << n;
      o << "\n";
    }
    o << "checks:     identity in " << snapshots << " snapshots (" << full_snapshots << " of them of every destination): "
      << (identity_failure.empty() ? "ok" : "FAILED")
      << "; after shutdown: " << (unbalanced(fin).empty() && fin.total.in_flight == 0 ? "ok" : "FAILED")
      << "; sink count: " << sink_check << "; no loss: " << loss_check << "; delivery: " << delivery_check << "; reached: " << reached_check << "\n";
    for (const std::string& f : failures) o << "FAILED: " << f << "\n";
    std::cout << o.str();
  }
  return failures.empty() ? k_exit_ok : k_exit_check_failed;
}
