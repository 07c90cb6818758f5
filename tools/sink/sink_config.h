// Command-line configuration of tracecast-sink. Internal to the sink.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tracecast::sink {

struct SinkConfig {
  // --listen HOST:PORT. IPv4 address or [IPv6]; PORT 0 = ephemeral. Loopback by default.
  std::string listen_host = "127.0.0.1";
  std::uint16_t listen_port = 4318;
  std::string port_file;        // --port-file: bound port written here once listening
  unsigned threads = 2;         // --threads: MHD poll() threads (1..64)
  bool quiet = false;           // --quiet: no banner, no per-request error lines
  bool progress = false;        // --progress: one line per second on stderr
  bool count_only = false;      // --count-only: no decoding, no parsing
  std::string spans_out;        // --spans-out FILE: one JSON line per span
  std::vector<std::string> count_by;  // --count-by KEY (repeatable)
  std::size_t max_body = 64U << 20U;  // --max-body BYTES: wire and decoded cap (413 above)
  unsigned connection_limit = 1000;   // --max-connections
  // --parent-pid PID: stop (as on SIGTERM) when the process that started the sink dies, even
  // by SIGKILL (Linux PR_SET_PDEATHSIG); exit at once if it is already gone. 0 = off.
  std::uint64_t parent_pid = 0;

  // Fault injection (evaluated in this order for every trace request; each "first N" counts
  // only the requests that reach its stage).
  std::uint64_t reset_first = 0;        // --reset-first N
  double reset_fraction = 0;            // --reset-fraction F
  std::uint64_t fail_429 = 0;           // --fail-429 N
  std::uint64_t fail_first = 0;         // --fail-5xx-first N
  unsigned fail_status = 503;           // --fail-status CODE (for --fail-5xx-first)
  double fail_503_fraction = 0;         // --fail-503-fraction F
  std::optional<std::uint64_t> retry_after;  // --retry-after SECS (header on 429)
  bool retry_after_date = false;        // --retry-after-date: HTTP-date instead of seconds
  bool retry_after_on_5xx = false;      // --retry-after-on-5xx: also on injected 5xx
  std::string basic_auth;               // --basic-auth-file / --basic-auth-env / --basic-auth (never printed)
  bool basic_auth_on_argv = false;      // --basic-auth: visible in ps, main() warns
  std::optional<std::uint64_t> partial_success;  // --partial-success N
  bool partial_success_as_number = false;  // --partial-success-as-number
  std::string partial_message = "rejected by tracecast-sink --partial-success";
  std::uint64_t delay_ms = 0;           // --delay-ms D
  std::uint64_t delay_first = 0;        // --delay-first N (0 = every request)
};

// Parses argv. On error returns false with `error` set; on --help returns false with
// `help` true. Allocates.
[[nodiscard]] bool parse_args(int argc, char** argv, SinkConfig& config, std::string& error,
                              bool& help);

// The --help text.
[[nodiscard]] const char* usage_text() noexcept;

}  // namespace tracecast::sink
