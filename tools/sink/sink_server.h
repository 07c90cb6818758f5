// tracecast-sink's HTTP server: an OTLP/HTTP trace receiver (JSON and protobuf) on libmicrohttpd with
// counters and fault injection. Internal to the sink (tools/sink/main.cpp drives it).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "sink_config.h"

namespace tracecast::sink {

// Plain totals for the once-a-second progress line (a relaxed snapshot, may be torn).
struct SinkTotals {
  std::uint64_t requests = 0;
  std::uint64_t spans = 0;
  std::uint64_t bytes_wire = 0;
};

class SinkServer {
 public:
  explicit SinkServer(SinkConfig config);
  ~SinkServer();
  SinkServer(const SinkServer&) = delete;
  SinkServer& operator=(const SinkServer&) = delete;

  // Binds, starts the server threads and writes the port file. Returns false with `error`
  // set when the address does not bind or a file cannot be opened. Not thread-safe.
  [[nodiscard]] bool start(std::string& error);
  // The bound port (after start()). Thread-safe.
  [[nodiscard]] std::uint16_t port() const noexcept;
  // Drops delayed requests, stops the threads, closes every connection. Idempotent.
  void stop();

  // The counters as the JSON served at GET /stats. Thread-safe; allocates.
  [[nodiscard]] std::string stats_json() const;
  // The human summary printed on exit. Thread-safe; allocates.
  [[nodiscard]] std::string summary_text() const;
  [[nodiscard]] SinkTotals totals() const noexcept;
  // --spans-out writes that failed (0 without --spans-out). Thread-safe; no allocation.
  [[nodiscard]] std::uint64_t spans_out_errors() const noexcept;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

}  // namespace tracecast::sink
