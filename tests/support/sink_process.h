// Test helper: runs tracecast-sink (tools/sink) as a child process on 127.0.0.1 with an
// ephemeral port, reads its counters from GET /stats, and stops it. Also a tiny blocking
// HTTP/1.1 client over a plain socket (no curl), usable by any test.
//
// Link target: tracecast_test_support (tests/sink.cmake). Building a test that links it also
// builds the sink binary.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tracecast::test {

// GET /stats, parsed. Counters are monotonic since the sink started; one snapshot is not
// atomic across fields (take it after the responses you wait for have arrived).
struct SinkStats {
  std::uint64_t requests = 0;            // requests to trace paths and unknown paths
  std::uint64_t spans = 0;               // spans in accepted (200) bodies
  std::uint64_t bytes = 0;               // request body bytes on the wire
  std::uint64_t bytes_decompressed = 0;  // decoded body bytes that reached the parser
  std::uint64_t connections = 0;         // TCP connections accepted (the /stats ones too)
  std::uint64_t trace_connections = 0;   // connections that carried >= 1 trace request
  std::uint64_t invalid = 0;             // bodies answered 400
  std::uint64_t resets = 0;              // connections dropped by --reset-*
  std::uint64_t delayed = 0;             // responses held by --delay-ms
  std::uint64_t rejected_spans = 0;      // sum of partialSuccess.rejectedSpans sent
  std::map<int, std::uint64_t> status_counts;  // HTTP status -> responses
  std::map<std::string, std::uint64_t> by_service;  // service.name -> spans
  // --count-by key -> value -> spans ("(none)" when the span lacks it)
  std::map<std::string, std::map<std::string, std::uint64_t>> by_attribute;
  std::string last_invalid_reason;

  // Responses with this status (0 when none).
  [[nodiscard]] std::uint64_t status(int code) const {
    const auto it = status_counts.find(code);
    return it == status_counts.end() ? 0 : it->second;
  }
};

struct HttpResponse {
  int status = 0;        // 0: connection closed/reset before a full response
  std::string error;     // why status is 0
  std::vector<std::pair<std::string, std::string>> headers;  // names lowercased
  std::string body;

  // First header with this lowercase name, or "".
  [[nodiscard]] std::string header(std::string_view lowercase_name) const;
};

// One keep-alive HTTP/1.1 connection to 127.0.0.1:port. Blocking, with a per-call timeout.
// Not thread-safe (one per thread). Throws std::runtime_error when it cannot connect.
class HttpConnection {
 public:
  explicit HttpConnection(std::uint16_t port);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Sends one request (Content-Length framing; `headers` are "Name: value" lines) and reads
  // the response. A reset or closed connection gives status 0 with `error` set.
  HttpResponse request(std::string_view method, std::string_view path,
                       const std::vector<std::string>& headers = {}, std::string_view body = {},
                       std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Sends the request without reading the answer (see read_response()).
  void send_request(std::string_view method, std::string_view path,
                    const std::vector<std::string>& headers, std::string_view body);
  HttpResponse read_response(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // True when response bytes (or a close) are waiting, without blocking.
  [[nodiscard]] bool readable_now() const;

 private:
  int fd_ = -1;
  std::string buffer_;
};

// One request on a fresh connection. Thread-safe (no shared state).
HttpResponse http_request(std::uint16_t port, std::string_view method, std::string_view path,
                          const std::vector<std::string>& headers = {},
                          std::string_view body = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(10));

// POST an OTLP JSON body (Content-Type: application/json, plus `headers`).
HttpResponse post_json(std::uint16_t port, std::string_view body,
                       const std::vector<std::string>& headers = {},
                       std::string_view path = "/v1/traces");

// A running tracecast-sink. The constructor starts it (binary: $TRACECAST_SINK_BIN, else
// $TRACECAST_BUILD_DIR/tools/tracecast-sink, else the path compiled in) with
// `--listen 127.0.0.1:0 --port-file <tmp> --quiet` plus `extra_args`, and waits up to 10 s for
// the port file. Pass `--spans-out` followed by k_temp_spans_out to get a file in the
// helper's temp directory (spans_out_path()). Throws std::runtime_error (with the sink's
// output) when the sink does not come up. Not thread-safe; stats() may be called from any
// thread.
class SinkProcess {
 public:
  static constexpr std::string_view k_temp_spans_out = "@tmp";

  explicit SinkProcess(std::vector<std::string> extra_args = {});
  ~SinkProcess();
  SinkProcess(const SinkProcess&) = delete;
  SinkProcess& operator=(const SinkProcess&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  // http://127.0.0.1:<port><path>
  [[nodiscard]] std::string url(std::string_view path = "/v1/traces") const;
  // GET /stats, parsed. Throws std::runtime_error when the sink does not answer.
  [[nodiscard]] SinkStats stats() const;
  // The --spans-out file ("" when not enabled).
  [[nodiscard]] std::string spans_out_path() const { return spans_out_; }
  // The sink's stdout+stderr (the summary appears there after stop()).
  [[nodiscard]] std::string log_path() const { return dir_ + "/sink.log"; }
  [[nodiscard]] std::string log() const;
  // SIGTERM, then waitpid (SIGKILL after 10 s). Idempotent.
  void stop();
  // Exit status after stop(): the code if it exited, 128+signal if killed, -1 if running.
  [[nodiscard]] int exit_status() const noexcept { return exit_status_; }

 private:
  void remove_dir();

  std::string dir_;
  std::string spans_out_;
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  int exit_status_ = -1;
};

// Parses a /stats JSON document. Throws std::runtime_error on a malformed document.
SinkStats parse_sink_stats(std::string_view json);

// Reads a whole file ("" when missing).
std::string read_file(const std::string& path);

}  // namespace tracecast::test
