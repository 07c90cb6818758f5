#include "sink_config.h"

#include "bounded_file.h"
#include "cli_flag.h"

#include <charconv>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string_view>

namespace tracecast::sink {

constexpr std::uint64_t k_max_delay_ms = 24ull * 3600 * 1000;

namespace {

bool parse_u64(std::string_view s, std::uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

bool parse_fraction(std::string_view s, double& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && out >= 0 && out <= 1;
}

}  // namespace

const char* usage_text() noexcept {
  return R"usage(tracecast-sink: a local OTLP/HTTP trace receiver (JSON and protobuf) with counters and fault injection.

Usage: tracecast-sink [options]

Endpoints
  POST /v1/traces, POST /otlp/v1/traces   OTLP ExportTraceServiceRequest as JSON
        (Content-Type application/json[; charset=utf-8]) or protobuf (application/x-protobuf),
        Content-Encoding none, gzip, deflate or zstd; both validated as strictly as the
        strictest receivers and counted alike. 200 with an empty ExportTraceServiceResponse
        on success; 400 (code 3, "<field>: <reason>") for a body that is not valid OTLP; 413
        above --max-body (wire or decompressed); 415 for another Content-Type or an unknown
        Content-Encoding; 405 for other methods. Answers are in the request's encoding.
  GET /stats     counters as JSON (requests, spans, bytes_wire, bytes_decompressed,
                 connections, trace_connections, invalid, resets, delayed, rejected_spans,
                 status_counts, by_service, by_attribute, last_invalid_reason)
  GET /healthz   {"status":"ok"}
  Any other path: 404 (counted as a request).

Options (a value as "--flag VALUE" or "--flag=VALUE"; a flag without a value also takes
=true/=false/=1/=0)
  --listen HOST:PORT     address to bind (default 127.0.0.1:4318; PORT 0 = ephemeral;
                         IPv6 as [::1]:PORT). Only loopback unless you say otherwise.
  --port-file PATH       write the bound port to PATH once listening (atomic rename)
  --threads N            server threads (libmicrohttpd poll() thread pool, default 2)
  --max-connections N    concurrent connection limit (default 1000)
  --max-body BYTES       cap on the body, on the wire and decompressed (default 67108864);
                         above it: 413
  --count-only           do not decode or parse: count requests and wire bytes, answer 200 {}
  --count-by KEY         count spans by the value of attribute KEY (span attribute, else
                         resource attribute; "(none)" when absent). Repeatable.
  --spans-out FILE       write every span as one JSON line:
                         {"resource":{<resource attributes>},"scope":{"name":"..","version":".."},
                          "traceId":"<32 lowercase hex>","spanId":"<16 lowercase hex>",
                          "parentSpanId":"<16 lowercase hex>" (omitted when empty),
                          "name":"..","kind":<int>,"startTimeUnixNano":"<decimal>",
                          "endTimeUnixNano":"<decimal>","status":{"code":<int>,"message":".."},
                          "attributes":{<span attributes>}}
                         Attribute values: string -> string, bool -> bool, int -> JSON number,
                         double -> shortest JSON number ("NaN"/"Infinity" as strings),
                         bytes -> the base64 string, array -> [..], kvlist -> {..},
                         empty -> null. Keys in the order received. Enum names are
                         converted to their integers.
  --parent-pid PID       stop (as on SIGTERM) when the process PID that started the sink
                         dies, even by SIGKILL; exit at once if PID is no longer the parent
                         (Linux: PR_SET_PDEATHSIG, which follows the starting thread)
  --progress             one line per second on stderr (req/s, spans/s, MB/s)
  --quiet                no banner and no per-request error lines
  -h, --help             this text

Fault injection (checked in this order for each POST to a trace path; "the next N" counts
only requests that reach that check)
  --reset-first N        drop the connection (TCP RST, no response) for the next N requests
  --reset-fraction F     ... and for a fraction F (0..1) of the rest, evenly spread
  --fail-429 N           answer 429 to the next N requests
  --retry-after SECS     send Retry-After: SECS with 429 (no header unless given)
  --retry-after-date     send Retry-After as an HTTP date (now + SECS) instead
  --retry-after-on-5xx   also send Retry-After with injected 5xx answers
  --fail-5xx-first N     answer --fail-status to the next N requests
  --fail-status CODE     status for --fail-5xx-first (default 503; any 400..599 code)
  --fail-503-fraction F  answer 503 to a fraction F of requests, deterministic: request k
                         (0-based) fails when floor((k+1)F) > floor(kF)
  --basic-auth-file PATH answer 401 unless Authorization: Basic base64(USER:PASS) matches,
                         USER:PASS read from PATH (the secret is never printed)
  --basic-auth-env VAR   the same, USER:PASS from environment variable VAR
  --basic-auth USER:PASS the same from the command line: visible to every local user in ps
                         (warned; prefer the two above)
  --partial-success N    answer 200 {"partialSuccess":{"rejectedSpans":"<min(N, spans)>",
                         "errorMessage":".."}} to valid requests (int64 as a string, as in
                         OTLP JSON)
  --partial-success-as-number   rejectedSpans as a JSON number instead
  --partial-message TEXT errorMessage for --partial-success
  --delay-ms D           delay every response by D ms, at most 86400000 (the connection is suspended; other
                         connections are served meanwhile)
  --delay-first N        delay only the next N requests

On SIGINT or SIGTERM: prints a summary (requests, spans, by service, by attribute, by
status) to stdout and exits 0, or 1 when a --spans-out write failed (the first failure
is also said on stderr at once).
)usage";
}

bool parse_args(int argc, char** argv, SinkConfig& config, std::string& error, bool& help) {
  help = false;
  for (int i = 1; i < argc; ++i) {
    // "--flag value" or "--flag=value", as tracecast-check and tracecast-load read them.
    const tracecast::tools::CliArg split = tracecast::tools::split_cli_arg(argv[i]);
    const std::string_view arg = split.name;
    auto value = [&](std::string_view& out) -> bool {
      if (split.value) {
        out = *split.value;
        return true;
      }
      if (i + 1 >= argc) {
        error = std::string(arg) + " needs a value";
        return false;
      }
      out = argv[++i];
      return true;
    };
    // A boolean flag: no value, or exactly true/false/1/0 (honoured).
    auto flag = [&](bool& out) -> bool {
      error = tracecast::tools::parse_bool_flag(split, out);
      return error.empty();
    };
    auto u64 = [&](std::uint64_t& out) -> bool {
      std::string_view v;
      if (!value(v)) return false;
      if (!parse_u64(v, out)) {
        error = std::string(arg) + ": '" + std::string(v) + "' is not a non-negative integer";
        return false;
      }
      return true;
    };
    auto fraction = [&](double& out) -> bool {
      std::string_view v;
      if (!value(v)) return false;
      if (!parse_fraction(v, out)) {
        error = std::string(arg) + ": '" + std::string(v) + "' is not a fraction in 0..1";
        return false;
      }
      return true;
    };
    std::string_view v;
    std::uint64_t n = 0;
    if (arg == "-h" || arg == "--help") {
      help = true;
      return false;
    } else if (arg == "--listen") {
      if (!value(v)) return false;
      const std::size_t colon = v.rfind(':');
      if (colon == std::string_view::npos || !parse_u64(v.substr(colon + 1), n) || n > 65535) {
        error = "--listen: expected HOST:PORT, got '" + std::string(v) + "'";
        return false;
      }
      config.listen_host = std::string(v.substr(0, colon));
      config.listen_port = static_cast<std::uint16_t>(n);
    } else if (arg == "--port-file") {
      if (!value(v)) return false;
      config.port_file = std::string(v);
    } else if (arg == "--threads") {
      if (!u64(n)) return false;
      if (n < 1 || n > 64) {
        error = "--threads: must be 1..64";
        return false;
      }
      config.threads = static_cast<unsigned>(n);
    } else if (arg == "--max-connections") {
      if (!u64(n)) return false;
      if (n < 1 || n > 100000) {
        error = "--max-connections: must be 1..100000";
        return false;
      }
      config.connection_limit = static_cast<unsigned>(n);
    } else if (arg == "--max-body") {
      if (!u64(n)) return false;
      if (n < 1) {
        error = "--max-body: must be at least 1";
        return false;
      }
      config.max_body = static_cast<std::size_t>(n);
    } else if (arg == "--count-only") {
      if (!flag(config.count_only)) return false;
    } else if (arg == "--count-by") {
      if (!value(v)) return false;
      if (v.empty()) {
        error = "--count-by: empty key";
        return false;
      }
      config.count_by.emplace_back(v);
    } else if (arg == "--spans-out") {
      if (!value(v)) return false;
      config.spans_out = std::string(v);
    } else if (arg == "--parent-pid") {
      if (!u64(n)) return false;
      if (n < 1 || n > 0x7fffffff) {
        error = "--parent-pid: must be a process id, 1..2147483647";
        return false;
      }
      config.parent_pid = n;
    } else if (arg == "--progress") {
      if (!flag(config.progress)) return false;
    } else if (arg == "--quiet") {
      if (!flag(config.quiet)) return false;
    } else if (arg == "--reset-first") {
      if (!u64(config.reset_first)) return false;
    } else if (arg == "--reset-fraction") {
      if (!fraction(config.reset_fraction)) return false;
    } else if (arg == "--fail-429") {
      if (!u64(config.fail_429)) return false;
    } else if (arg == "--retry-after") {
      if (!u64(n)) return false;
      config.retry_after = n;
    } else if (arg == "--retry-after-date") {
      if (!flag(config.retry_after_date)) return false;
    } else if (arg == "--retry-after-on-5xx") {
      if (!flag(config.retry_after_on_5xx)) return false;
    } else if (arg == "--fail-5xx-first") {
      if (!u64(config.fail_first)) return false;
    } else if (arg == "--fail-status") {
      if (!u64(n)) return false;
      if (n < 400 || n > 599) {
        error = "--fail-status: must be 400..599";
        return false;
      }
      config.fail_status = static_cast<unsigned>(n);
    } else if (arg == "--fail-503-fraction") {
      if (!fraction(config.fail_503_fraction)) return false;
    } else if (arg == "--basic-auth" || arg == "--basic-auth-file" || arg == "--basic-auth-env") {
      if (!value(v)) return false;
      std::string pair;
      if (arg == "--basic-auth") {
        pair = std::string(v);
        config.basic_auth_on_argv = true;
      } else if (arg == "--basic-auth-env") {
        const char* e = std::getenv(std::string(v).c_str());
        if (e == nullptr || e[0] == '\0') {
          error = "--basic-auth-env: environment variable " + std::string(v) + " is not set or empty";
          return false;
        }
        pair = e;
      } else {
        if (const std::string why = tracecast::tools::read_bounded_file(std::string(v), tracecast::tools::k_max_secret_file_bytes, pair);
            !why.empty()) {
          error = "--basic-auth-file " + std::string(v) + ": " + why;
          return false;
        }
        while (!pair.empty() && (pair.back() == '\n' || pair.back() == '\r' || pair.back() == ' ')) pair.pop_back();
      }
      if (pair.find(':') == std::string::npos) {
        error = std::string(arg) + ": expected USER:PASS";  // never echo the value
        return false;
      }
      config.basic_auth = std::move(pair);
    } else if (arg == "--partial-success") {
      if (!u64(n)) return false;
      config.partial_success = n;
    } else if (arg == "--partial-success-as-number") {
      if (!flag(config.partial_success_as_number)) return false;
    } else if (arg == "--partial-message") {
      if (!value(v)) return false;
      config.partial_message = std::string(v);
    } else if (arg == "--delay-ms") {
      if (!u64(config.delay_ms)) return false;
      if (config.delay_ms > k_max_delay_ms) {  // now + D must not overflow the clock
        error = "--delay-ms: at most " + std::to_string(k_max_delay_ms) + " (24 h), got " + std::to_string(config.delay_ms);
        return false;
      }
    } else if (arg == "--delay-first") {
      if (!u64(config.delay_first)) return false;
    } else {
      error = "unknown option '" + std::string(argv[i]).substr(0, std::string(argv[i]).find('=')) + "' (see --help)";
      return false;
    }
  }
  if (config.retry_after_date && !config.retry_after) {
    error = "--retry-after-date needs --retry-after SECS";
    return false;
  }
  if (config.retry_after_date) {
    // An HTTP date has a four-digit year: now + SECS must stay within 9999-12-31.
    const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count();
    constexpr std::int64_t k_last_http_date = 253402300799;  // 9999-12-31T23:59:59Z
    const std::uint64_t room = static_cast<std::uint64_t>(k_last_http_date - now_s);
    if (*config.retry_after > room) {
      error = "--retry-after with --retry-after-date: at most " + std::to_string(room) +
              " s (the date must be in year 9999 or before), got " + std::to_string(*config.retry_after);
      return false;
    }
  }
  return true;
}

}  // namespace tracecast::sink
