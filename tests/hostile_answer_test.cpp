// Hostile or broken endpoints cannot hurt the gateway (issue 12): scripted servers on
// 127.0.0.1 (allow-listed for the test) answer with an endless chunked body, a 1 GB body,
// headers trickling one byte at a time or never ending, garbage and enormous Retry-After
// values, and giant or malformed partialSuccess. The sender reads a bounded number of bytes,
// finishes each request within its retry policy, and accounts for each exactly.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "egress_util.h"
#include "sender_util.h"
#include "tracecast/connection_test.h"
#include "tracecast/sender.h"

namespace tracecast {
namespace {

using namespace std::chrono_literals;

// Writes everything or gives up when the peer has gone (or the server stops). Returns the
// bytes written. Never blocks for more than 100 ms at a time.
class Conn {
 public:
  Conn(int fd, const std::atomic<bool>& stop, std::atomic<std::uint64_t>& written)
      : fd_(fd), stop_(stop), written_(written) {}
  bool write(std::string_view data) {
    while (!data.empty()) {
      if (stop_.load(std::memory_order_acquire)) return false;
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      if ((p.revents & (POLLERR | POLLHUP)) != 0) return false;
      const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) continue;
        return false;
      }
      written_.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_acq_rel);
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  // Reads one request (headers, then Content-Length bytes of body). false if the peer left.
  bool read_request() {
    std::string in;
    std::size_t need = std::string::npos;
    char buf[65536];
    for (;;) {
      if (stop_.load(std::memory_order_acquire)) return false;
      const auto end = in.find("\r\n\r\n");
      if (end != std::string::npos && need == std::string::npos) {
        need = end + 4;
        const auto cl = in.find("Content-Length: ");
        if (cl != std::string::npos && cl < end) need += std::stoul(in.substr(cl + 16));
      }
      if (need != std::string::npos && in.size() >= need) return true;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      in.append(buf, static_cast<std::size_t>(n));
    }
  }
  bool stopping() const { return stop_.load(std::memory_order_acquire); }

 private:
  int fd_;
  const std::atomic<bool>& stop_;
  std::atomic<std::uint64_t>& written_;
};

// One scripted answer per request, on every connection. Counts the bytes it wrote.
class ScriptServer {
 public:
  using Script = std::function<void(Conn&)>;
  explicit ScriptServer(Script script) : script_(std::move(script)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 64) != 0) {
      throw std::runtime_error("ScriptServer: bind/listen failed");
    }
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] {
      while (!stop_.load(std::memory_order_acquire)) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        std::lock_guard<std::mutex> lock(mutex_);
        workers_.emplace_back([this, c] {
          Conn conn(c, stop_, written_);
          while (conn.read_request()) {
            requests_.fetch_add(1, std::memory_order_acq_rel);
            script_(conn);
            if (conn.stopping()) break;
          }
          ::close(c);
        });
      }
    });
  }
  ~ScriptServer() {
    stop_.store(true, std::memory_order_release);
    acceptor_.join();
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& w : workers_) w.join();
    ::close(fd_);
  }
  ScriptServer(const ScriptServer&) = delete;
  ScriptServer& operator=(const ScriptServer&) = delete;
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1/traces"; }
  [[nodiscard]] std::uint64_t written() const { return written_.load(std::memory_order_acquire); }
  [[nodiscard]] std::uint64_t requests() const { return requests_.load(std::memory_order_acquire); }

 private:
  Script script_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> requests_{0};
  std::mutex mutex_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

// Far more than the sender keeps (64 KiB) plus both sides' socket buffers (a few MiB on
// loopback): a transfer read to its end would pass it many times over.
constexpr std::uint64_t k_read_bound = 32u << 20;

SenderConfig hostile_config() {
  SenderConfig c = test::loopback_sender_config();
  c.retry.initial_interval = 10ms;
  c.retry.max_interval = 50ms;
  c.retry.max_elapsed = 2000ms;
  return c;
}

DestinationConfig to(const ScriptServer& server, std::chrono::milliseconds timeout = 60000ms) {
  DestinationConfig d;
  d.endpoint = server.url();
  d.timeout = timeout;  // long: an answer that is not cut short would show as a timeout
  return d;
}

Completion send_one(Sender& sender, std::uint32_t id, std::uint32_t items = 10) {
  static const std::string body = "{}";
  SendRequest r = test::send_request(id, 1, body);
  r.items = items;
  EXPECT_TRUE(sender.try_send(r));
  const std::vector<Completion> done = test::wait_for(sender, 1, 120000ms);
  EXPECT_EQ(done.size(), 1U);
  return done.empty() ? Completion{} : done[0];
}

TEST(HostileAnswer, AnEndlessChunkedBodyIsCutAtTheBoundAndClassifiedByItsStatus) {
  ScriptServer server([](Conn& c) {
    if (!c.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")) return;
    const std::string chunk = "4000\r\n" + std::string(0x4000, ' ') + "\r\n";
    while (c.write(chunk)) {
    }
  });
  Sender sender(hostile_config());
  const std::uint32_t id = sender.add_destination(to(server)).id;
  const Completion c = send_one(sender, id);
  EXPECT_EQ(c.outcome, SendOutcome::delivered) << to_string(c.outcome);
  EXPECT_EQ(c.http_status, 200);
  EXPECT_EQ(c.attempts, 1U);
  EXPECT_EQ(c.rejected_items, 0U);
  EXPECT_TRUE(c.malformed_answer);
  EXPECT_EQ(sender.stats().total.malformed_answers, 1U);
  sender.shutdown(std::chrono::steady_clock::now());
  EXPECT_LT(server.written(), k_read_bound);
}

TEST(HostileAnswer, AGigabyteBodyCostsOnlyTheBound) {
  ScriptServer server([](Conn& c) {
    if (!c.write("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 1073741824\r\n\r\n")) return;
    const std::string block(1 << 16, 'x');
    while (c.write(block)) {
    }
  });
  SenderConfig config = hostile_config();
  config.retry.max_elapsed = 0ms;  // one attempt: a 503 is retryable, no retry allowed
  Sender sender(config);
  const std::uint32_t id = sender.add_destination(to(server)).id;
  const Completion c = send_one(sender, id);
  EXPECT_EQ(c.outcome, SendOutcome::retries_exhausted) << to_string(c.outcome);
  EXPECT_EQ(c.http_status, 503);
  EXPECT_EQ(c.attempts, 1U);
  sender.shutdown(std::chrono::steady_clock::now());
  EXPECT_LT(server.written(), k_read_bound);
  // The connection test reads 4 KiB of it and stops too.
  const ConnectionTestResult t = test_connection(to(server), 60000ms, test::loopback_egress());
  EXPECT_EQ(t.category, ConnectionTestResult::Category::server_error);
  EXPECT_LT(server.written(), 2 * k_read_bound);
}

TEST(HostileAnswer, TricklingHeadersHitThePerAttemptDeadline) {
  ScriptServer server([](Conn& c) {
    if (!c.write("HTTP/1.1 200 OK\r\nX-Slow: ")) return;
    while (c.write("a")) std::this_thread::sleep_for(20ms);  // forever, 50 bytes/s
  });
  SenderConfig config = hostile_config();
  config.retry.max_elapsed = 0ms;
  Sender sender(config);
  const std::uint32_t id = sender.add_destination(to(server, 500ms)).id;
  const Completion c = send_one(sender, id);
  EXPECT_EQ(c.outcome, SendOutcome::retries_exhausted) << to_string(c.outcome);
  EXPECT_EQ(c.network_error, NetworkError::timeout);  // the status line came, the headers never ended
  EXPECT_EQ(c.attempts, 1U);
}

TEST(HostileAnswer, EndlessHeadersAreCutAt64KiB) {
  ScriptServer server([](Conn& c) {
    if (!c.write("HTTP/1.1 200 OK\r\n")) return;
    const std::string line = "X-Pad: " + std::string(1000, 'p') + "\r\n";
    while (c.write(line)) {
    }
  });
  SenderConfig config = hostile_config();
  config.retry.max_elapsed = 0ms;
  Sender sender(config);
  const std::uint32_t id = sender.add_destination(to(server)).id;
  const Completion c = send_one(sender, id);
  EXPECT_NE(c.outcome, SendOutcome::delivered);
  EXPECT_TRUE(c.malformed_answer);
  EXPECT_EQ(c.attempts, 1U);
  sender.shutdown(std::chrono::steady_clock::now());
  EXPECT_LT(server.written(), k_read_bound);
}

ScriptServer::Script answer_429(std::string retry_after) {
  return [retry_after](Conn& c) {
    (void)c.write("HTTP/1.1 429 Too Many Requests\r\nRetry-After: " + retry_after + "\r\nContent-Length: 0\r\n\r\n");
  };
}

TEST(HostileAnswer, EnormousRetryAfterEndsTheRequestWithinTheRetryPolicy) {
  for (const char* value : {"9223372036854775807", "99999999999999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"}) {
    ScriptServer server(answer_429(value));
    Sender sender(hostile_config());  // max_elapsed 2 s: a day-long wait exceeds it
    const std::uint32_t id = sender.add_destination(to(server)).id;
    const Completion c = send_one(sender, id);
    EXPECT_EQ(c.outcome, SendOutcome::retries_exhausted) << value;
    EXPECT_EQ(c.attempts, 1U) << value;  // no storm: one attempt, no negative delay
    EXPECT_TRUE(c.malformed_answer) << value;
    const SenderStats s = sender.stats();
    EXPECT_EQ(s.total.attempts, 1U) << value;
    EXPECT_EQ(s.total.malformed_answers, 1U) << value;
    // The destination is not held back beyond the policy: the next request is sent at once.
    const Completion next = send_one(sender, id);
    EXPECT_EQ(next.attempts, 1U);
    EXPECT_EQ(server.requests(), 2U) << value;
  }
}

TEST(HostileAnswer, GarbageOrNegativeRetryAfterIsIgnoredForTheBackoff) {
  for (const char* value : {"soon", "-5", "1.5", "Fri, 99 Foo 2025 25:61:61 GMT"}) {
    ScriptServer server(answer_429(value));
    SenderConfig config = hostile_config();
    config.retry.max_elapsed = 300ms;  // backoff 10..50 ms: several attempts, then exhausted
    Sender sender(config);
    const std::uint32_t id = sender.add_destination(to(server)).id;
    const Completion c = send_one(sender, id);
    EXPECT_EQ(c.outcome, SendOutcome::retries_exhausted) << value;
    EXPECT_GE(c.attempts, 2U) << value;
    EXPECT_EQ(c.http_status, 429);
    EXPECT_TRUE(c.malformed_answer) << value;
    EXPECT_EQ(server.requests(), c.attempts) << value;
  }
}

ScriptServer::Script answer_200(std::string body) {
  return [body](Conn& c) {
    (void)c.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                  std::to_string(body.size()) + "\r\n\r\n" + body);
  };
}

TEST(HostileAnswer, GiantOrMalformedPartialSuccessNeverCountsMoreThanTheBatch) {
  struct Case {
    std::string body;
    std::uint64_t rejected;
    bool malformed;
  };
  const std::vector<Case> cases = {
      {R"({"partialSuccess":{"rejectedSpans":"3"}})", 3, false},
      {R"({"partialSuccess":{"rejectedSpans":1e30}})", 10, true},
      {R"({"partialSuccess":{"rejectedSpans":"18446744073709551616"}})", 10, true},
      {R"({"partialSuccess":{"rejectedSpans":3.7}})", 4, true},
      {R"({"partialSuccess":{"rejectedSpans":-2}})", 0, true},
      // partialSuccess after 70 KiB: past the kept bytes, not read; delivered, flagged.
      {std::string(70 * 1024, ' ') + R"({"partialSuccess":{"rejectedSpans":"5"}})", 0, true},
  };
  for (const Case& k : cases) {
    ScriptServer server(answer_200(k.body));
    Sender sender(hostile_config());
    const std::uint32_t id = sender.add_destination(to(server)).id;
    const Completion c = send_one(sender, id, 10);
    EXPECT_EQ(c.outcome, SendOutcome::delivered) << k.body.substr(0, 80);
    EXPECT_EQ(c.rejected_items, k.rejected) << k.body.substr(k.body.size() > 80 ? k.body.size() - 80 : 0);
    EXPECT_EQ(c.malformed_answer, k.malformed) << k.body.substr(k.body.size() > 80 ? k.body.size() - 80 : 0);
    EXPECT_EQ(c.attempts, 1U);
    const SenderStats s = sender.stats();
    EXPECT_EQ(s.total.rejected_items, k.rejected);
    EXPECT_EQ(s.total.malformed_answers, k.malformed ? 1U : 0U);
  }
}

}  // namespace
}  // namespace tracecast
