// tracecast-sink: a local OTLP/HTTP trace receiver (JSON and protobuf) for tests, benchmarks and the load
// simulator. See --help (tools/sink/sink_config.cpp) for endpoints, flags and formats.
//
// Threads: libmicrohttpd's poll() thread pool serves requests; one timer thread resumes
// delayed (suspended) connections; the main thread waits for SIGINT/SIGTERM, prints
// progress and the summary.
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

#include "sink_config.h"
#include "sink_server.h"

int main(int argc, char** argv) {
  using tracecast::sink::SinkConfig;
  SinkConfig config;
  std::string error;
  bool help = false;
  if (!tracecast::sink::parse_args(argc, argv, config, error, help)) {
    if (help) {
      std::fputs(tracecast::sink::usage_text(), stdout);
      return 0;
    }
    std::fprintf(stderr, "tracecast-sink: %s\n", error.c_str());
    return 2;
  }
  if (config.basic_auth_on_argv) {
    std::fputs("tracecast-sink: warning: --basic-auth puts the password on the command line, visible to "
               "every local user (ps, /proc/<pid>/cmdline); use --basic-auth-file or --basic-auth-env\n",
               stderr);
  }

  if (config.parent_pid != 0) {
    // Dies with the process that started it (tracecast-load, the e2e benchmark), even when
    // that one is SIGKILLed: the kernel sends SIGTERM, taken below like a Ctrl-C. The parent
    // may have died before prctl ran (the race PR_SET_PDEATHSIG leaves): then getppid() is
    // no longer the pid we were given, and we leave at once.
    if (::prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) {
      std::perror("tracecast-sink: prctl(PR_SET_PDEATHSIG)");
      return 1;
    }
    if (static_cast<std::uint64_t>(::getppid()) != config.parent_pid) return 0;
  }

  // Block the stop signals in every thread (the server threads inherit the mask); the main
  // thread takes them with sigtimedwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const bool progress = config.progress;
  const bool quiet = config.quiet;
  const std::string host = config.listen_host;
  tracecast::sink::SinkServer server(std::move(config));
  if (!server.start(error)) {
    std::fprintf(stderr, "tracecast-sink: %s\n", error.c_str());
    return 1;
  }
  if (!quiet) {
    std::fprintf(stderr, "tracecast-sink: listening on %s:%u\n", host.c_str(),
                 static_cast<unsigned>(server.port()));
  }

  auto last = server.totals();
  auto last_time = std::chrono::steady_clock::now();
  for (;;) {
    timespec timeout{1, 0};
    const int sig = sigtimedwait(&stop_signals, nullptr, &timeout);
    if (sig == SIGINT || sig == SIGTERM) break;
    if (progress) {
      const auto now = std::chrono::steady_clock::now();
      const auto totals = server.totals();
      const double secs = std::chrono::duration<double>(now - last_time).count();
      if (secs > 0) {
        std::fprintf(stderr, "tracecast-sink: %.0f req/s  %.0f spans/s  %.1f MB/s  (total %llu requests, %llu spans)\n",
                     static_cast<double>(totals.requests - last.requests) / secs,
                     static_cast<double>(totals.spans - last.spans) / secs,
                     static_cast<double>(totals.bytes_wire - last.bytes_wire) / secs / 1e6,
                     static_cast<unsigned long long>(totals.requests),
                     static_cast<unsigned long long>(totals.spans));
      }
      last = totals;
      last_time = now;
    }
  }
  server.stop();
  std::fputs(server.summary_text().c_str(), stdout);
  std::fflush(stdout);
  // Span lines that never reached --spans-out are a failed run, not a quiet one.
  if (const std::uint64_t lost = server.spans_out_errors(); lost != 0) {
    std::fprintf(stderr, "tracecast-sink: error: %llu --spans-out write(s) failed\n", static_cast<unsigned long long>(lost));
    return 1;
  }
  return 0;
}
