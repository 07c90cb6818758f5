// A tiny scripted HTTP/1.1 server on 127.0.0.1 for transport tests: every request is answered
// by a handler that chooses the status, headers, body, a delay, or to hang or reset the
// connection. Counts connections and records every request (with its arrival time).
// Thread per connection; all loops bounded by poll timeouts and a stop flag.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace tracecast::test {

struct RawRequest {
  std::string method;
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::uint64_t connection = 0;  // 1, 2, ... in accept order
  std::chrono::steady_clock::time_point arrived;
  // The first header named `name` (lower case), or "".
  [[nodiscard]] std::string header(const std::string& name) const;
};

struct RawResponse {
  enum class Action : std::uint8_t { respond, hang, reset };
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body = "{}";
  std::chrono::milliseconds delay{0};
  Action action = Action::respond;
};

class RawHttpServer {
 public:
  using Handler = std::function<RawResponse(const RawRequest&)>;
  // Binds 127.0.0.1 on an ephemeral port and starts accepting. Throws std::runtime_error.
  explicit RawHttpServer(Handler handler);
  ~RawHttpServer();
  RawHttpServer(const RawHttpServer&) = delete;
  RawHttpServer& operator=(const RawHttpServer&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  [[nodiscard]] std::string url(const std::string& path = "/v1/traces") const;
  [[nodiscard]] std::uint64_t connections() const noexcept {
    return connections_.load(std::memory_order_acquire);
  }
  [[nodiscard]] std::vector<RawRequest> requests() const;
  [[nodiscard]] std::size_t request_count() const;

 private:
  void accept_loop();
  void serve(int fd, std::uint64_t id);

  Handler handler_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> connections_{0};
  mutable std::mutex mutex_;
  std::vector<RawRequest> requests_;       // guarded by mutex_
  std::vector<std::thread> workers_;       // guarded by mutex_
  std::thread acceptor_;
};

// A 127.0.0.1 port with nothing listening (bound, then closed): connections are refused.
[[nodiscard]] std::uint16_t unused_port();

// A free 127.0.0.1 port for a server that binds it later (small race, fine for tests).
[[nodiscard]] std::uint16_t free_port();

}  // namespace tracecast::test
