// Runs the bundled tracecast-sink as a child process on 127.0.0.1 (ephemeral port) for the
// load simulator and the end-to-end benchmark, reads its GET /stats counters, stops it.
//
// Part of the load-generation library (tools/loadgen, target tracecast_loadgen) that
// tracecast-load and the end-to-end benchmark share. The tests have their own
// helper (tests/support/sink_process.h); this one returns errors instead of throwing and
// finds the binary next to the running executable.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tracecast::load {

// GET /stats of a running sink. Counters are monotonic since it started.
struct SinkCounters {
  std::uint64_t requests = 0;        // trace requests (and unknown paths)
  std::uint64_t spans = 0;           // spans in accepted bodies (0 with --count-only)
  std::uint64_t bytes_wire = 0;      // request body bytes as received
  std::uint64_t invalid = 0;         // bodies answered 400
  std::uint64_t resets = 0;          // connections dropped by --reset-*
  std::uint64_t delayed = 0;         // responses held by --delay-ms
  std::uint64_t rejected_spans = 0;  // partialSuccess.rejectedSpans sent back
  bool count_only = false;
  std::map<int, std::uint64_t> status_counts;  // HTTP status -> responses
};

// The sink binary: $TRACECAST_SINK_BIN, else tracecast-sink next to /proc/self/exe, else
// ../tools/tracecast-sink from there (bench/ in a build tree), else `fallback` (may be "").
// Thread-safe. Allocates.
[[nodiscard]] std::string find_sink_binary(std::string_view fallback = {});

// Splits "--a 1 --b" on blanks (single and double quotes group). Allocates.
[[nodiscard]] std::vector<std::string> split_args(std::string_view text);

class SinkRunner {
 public:
  struct Options {
    std::string binary;                   // "" = find_sink_binary()
    std::vector<std::string> extra_args;  // after --listen/--port-file/--quiet
    std::chrono::milliseconds start_timeout{10000};
    // Run the sink in a process group of its own, so that a Ctrl-C at the terminal reaches
    // only the parent, which can then drain into the still-running sink and stop it.
    bool own_process_group = false;
    // The sink stops when this process dies, even by SIGKILL (the sink's --parent-pid:
    // Linux PR_SET_PDEATHSIG, which fires when the *thread* that called start() exits, so
    // call start() from a thread that outlives the run, e.g. main()).
    bool exit_with_parent = true;
  };

  // Starts the sink and waits for its port file. nullptr with `error` set (including the
  // sink's own output) when it does not come up. The temporary directory holding the port
  // file and the sink's log is removed as soon as the sink listens (the log stays readable
  // through an open descriptor), so a parent killed later leaves nothing behind. Not
  // thread-safe. Allocates.
  [[nodiscard]] static std::unique_ptr<SinkRunner> start(const Options& options, std::string& error);
  // stop(), then removes the temp directory if it is still there.
  ~SinkRunner();
  SinkRunner(const SinkRunner&) = delete;
  SinkRunner& operator=(const SinkRunner&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  // http://127.0.0.1:<port>/v1/traces
  [[nodiscard]] std::string traces_url() const;
  // GET /stats over a fresh loopback connection (5 s timeout). false with `error` set when
  // the sink does not answer or the JSON lacks a counter. Thread-safe. Allocates.
  [[nodiscard]] bool counters(SinkCounters& out, std::string& error) const;
  // The sink's stdout+stderr so far (last `max_bytes`).
  [[nodiscard]] std::string log_tail(std::size_t max_bytes = 2000) const;
  // SIGTERM, wait up to `grace`, then SIGKILL. Idempotent. Not thread-safe.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(5000)) noexcept;
  [[nodiscard]] pid_t pid() const noexcept { return pid_; }

 private:
  SinkRunner() = default;
  void remove_temp_dir() noexcept;

  std::string dir_;  // "" once removed
  int log_fd_ = -1;  // the sink's stdout+stderr (the file itself is unlinked)
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
};

// Parses a /stats document. false with `error` on malformed JSON or a missing counter.
[[nodiscard]] bool parse_sink_counters(std::string_view json, SinkCounters& out, std::string& error);

}  // namespace tracecast::load
