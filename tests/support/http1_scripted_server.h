// The scripted loopback servers and the driver the built-in HTTP/1.1 client's tests share
// (tests/http1_client_test.cpp, tests/http1_client_review_test.cpp): a server on 127.0.0.1
// (and ::1 where available) that reads requests and writes exact bytes, and a driver that polls
// the client the way the sender does. Test-only; one translation unit per test executable
// includes it (its definitions are in an unnamed namespace).
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "alloc_counter.h"
#include "egress_gate.h"
#include "http1_client.h"
#include "raw_http_server.h"
#include "tracecast/egress.h"

namespace tracecast {
namespace {

using namespace std::chrono_literals;
using detail::Http1Client;
using detail::Http1Exchange;
using detail::Http1Options;
using detail::Http1Target;
using Clock = std::chrono::steady_clock;

// ------------------------------------------------------------------------------------------
// A scripted server: listens on 127.0.0.1 (and/or ::1) on one port; every accepted connection
// runs `script` on its own thread with a Peer that reads whole requests (head + Content-Length
// body, recorded raw) and writes exact bytes. All loops bounded by poll timeouts and a stop flag.

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

struct Recorded {
  std::uint64_t conn = 0;  // 1, 2, ... in accept order
  std::string head;        // request line up to and including the blank line
  std::string body;
  // Header lines of the head (without CRLF), request line excluded.
  [[nodiscard]] std::vector<std::string> lines() const {
    std::vector<std::string> out;
    std::size_t pos = head.find("\r\n");
    if (pos == std::string::npos) return out;
    pos += 2;
    while (pos < head.size()) {
      const std::size_t eol = head.find("\r\n", pos);
      if (eol == std::string::npos || eol == pos) break;
      out.push_back(head.substr(pos, eol - pos));
      pos = eol + 2;
    }
    return out;
  }
  [[nodiscard]] std::string request_line() const { return head.substr(0, head.find("\r\n")); }
  // Values of every header named `name` (case-insensitive), in order.
  [[nodiscard]] std::vector<std::string> values(std::string_view name) const {
    std::vector<std::string> out;
    const std::string want = lower(name);
    for (const auto& l : lines()) {
      const std::size_t colon = l.find(':');
      if (colon == std::string::npos) continue;
      if (lower(std::string_view(l).substr(0, colon)) != want) continue;
      std::string v = l.substr(colon + 1);
      v.erase(0, v.find_first_not_of(' '));
      out.push_back(v);
    }
    return out;
  }
};

class Server;

class Peer {
 public:
  Peer(Server& server, int fd, std::uint64_t id) : server_(server), fd_(fd), id_(id) {}
  // Reads one whole request; false when the peer closed (or reset) or the server stops.
  bool read_request();
  // Writes everything; false when the peer has gone.
  bool write(std::string_view data);
  // Writes one byte per send(), with TCP_NODELAY, so the client sees every piece apart.
  bool write_bytewise(std::string_view data) {
    for (char c : data) {
      if (!write(std::string_view(&c, 1))) return false;
      std::this_thread::sleep_for(200us);
    }
    return true;
  }
  // Waits until the peer closes the connection (or the server stops).
  void hang();
  // Closes with RST now.
  void reset() {
    linger l{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close();
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  [[nodiscard]] std::uint64_t id() const { return id_; }
  [[nodiscard]] int fd() const { return fd_; }

 private:
  bool fill();
  Server& server_;
  int fd_;
  std::uint64_t id_;
  std::string buffer_;
};

class Server {
 public:
  using Script = std::function<void(Peer&)>;
  struct Options {
    bool v4 = true;
    bool v6 = false;       // also (or only) ::1, same port; throws when ::1 cannot be bound
    int rcvbuf = 0;        // SO_RCVBUF of accepted sockets (set on the listener)
  };
  explicit Server(Script script) : Server(std::move(script), Options{}) {}
  Server(Script script, Options options) : script_(std::move(script)) {
    for (int attempt = 0; attempt < 20 && listeners_.empty(); ++attempt) {
      try {
        std::uint16_t port = 0;
        if (options.v4) listeners_.push_back(listen_on(AF_INET, port, options.rcvbuf, &port));
        if (options.v6) listeners_.push_back(listen_on(AF_INET6, port, options.rcvbuf, &port));
        port_ = port;
      } catch (const std::exception&) {
        for (int fd : listeners_) ::close(fd);
        listeners_.clear();
        if (!options.v4) throw;  // ::1 alone: no port race to retry
      }
    }
    if (listeners_.empty()) throw std::runtime_error("Server: cannot listen");
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~Server() {
    stop_.store(true, std::memory_order_release);
    acceptor_.join();
    std::vector<std::thread> workers;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      workers.swap(workers_);
    }
    for (auto& w : workers) w.join();
    for (int fd : listeners_) ::close(fd);
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] std::string url(std::string_view path = "/v1/traces") const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }
  [[nodiscard]] std::uint64_t accepts() const { return accepts_.load(std::memory_order_acquire); }
  [[nodiscard]] int max_concurrent() const { return max_open_.load(std::memory_order_acquire); }
  [[nodiscard]] int open_now() const { return open_.load(std::memory_order_acquire); }
  [[nodiscard]] std::vector<Recorded> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }
  [[nodiscard]] std::size_t request_count() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_.size();
  }
  // The last request recorded on connection `conn` (1, 2, ... in accept order); empty when
  // none. A script calls it after read_request() for the request it just read.
  [[nodiscard]] Recorded last_on(std::uint64_t conn) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = requests_.rbegin(); it != requests_.rend(); ++it) {
      if (it->conn == conn) return *it;
    }
    return {};
  }
  [[nodiscard]] bool stopping() const { return stop_.load(std::memory_order_acquire); }
  void record(Recorded r) {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.push_back(std::move(r));
  }
  // Waits (bounded) until `n` requests were recorded.
  bool wait_requests(std::size_t n, std::chrono::milliseconds timeout = 3s) const {
    const auto until = Clock::now() + timeout;
    while (Clock::now() < until) {
      if (request_count() >= n) return true;
      std::this_thread::sleep_for(1ms);
    }
    return request_count() >= n;
  }
  // Waits (bounded) until no connection is open on the server side.
  bool wait_all_closed(std::chrono::milliseconds timeout = 3s) const {
    const auto until = Clock::now() + timeout;
    while (Clock::now() < until) {
      if (open_now() == 0) return true;
      std::this_thread::sleep_for(1ms);
    }
    return open_now() == 0;
  }

 private:
  static int listen_on(int family, std::uint16_t port, int rcvbuf, std::uint16_t* port_out) {
    const int fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("socket");
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    int rc;
    if (family == AF_INET) {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(port);
      rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    } else {
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_addr = in6addr_loopback;
      a.sin6_port = htons(port);
      rc = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    if (rc != 0 || ::listen(fd, 64) != 0) {
      ::close(fd);
      throw std::runtime_error("bind/listen");
    }
    sockaddr_storage s{};
    socklen_t len = sizeof s;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&s), &len);
    *port_out = family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&s)->sin_port)
                                  : ntohs(reinterpret_cast<sockaddr_in6*>(&s)->sin6_port);
    return fd;
  }

  void accept_loop() {
    std::vector<pollfd> fds;
    for (int fd : listeners_) fds.push_back(pollfd{fd, POLLIN, 0});
    while (!stop_.load(std::memory_order_acquire)) {
      for (auto& p : fds) p.revents = 0;
      if (::poll(fds.data(), fds.size(), 10) <= 0) continue;
      for (auto& p : fds) {
        if ((p.revents & POLLIN) == 0) continue;
        const int c = ::accept4(p.fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        const int one = 1;
        ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        const std::uint64_t id = accepts_.fetch_add(1, std::memory_order_acq_rel) + 1;
        const int now_open = open_.fetch_add(1, std::memory_order_acq_rel) + 1;
        int seen = max_open_.load(std::memory_order_acquire);
        while (now_open > seen && !max_open_.compare_exchange_weak(seen, now_open)) {
        }
        std::lock_guard<std::mutex> lock(mutex_);
        workers_.emplace_back([this, c, id] {
          Peer peer(*this, c, id);
          script_(peer);
          peer.close();
          open_.fetch_sub(1, std::memory_order_acq_rel);
        });
      }
    }
  }

  Script script_;
  std::vector<int> listeners_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> accepts_{0};
  std::atomic<int> open_{0};
  std::atomic<int> max_open_{0};
  mutable std::mutex mutex_;
  std::vector<Recorded> requests_;
  std::vector<std::thread> workers_;
  std::thread acceptor_;
};

bool Peer::fill() {
  char chunk[65536];
  while (!server_.stopping() && fd_ >= 0) {
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, 10);
    if (r < 0) return false;
    if (r == 0) continue;
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  return false;
}

bool Peer::read_request() {
  std::size_t end;
  while ((end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) return false;
  }
  Recorded r;
  r.conn = id_;
  r.head = buffer_.substr(0, end + 4);
  std::size_t length = 0;
  for (const auto& v : r.values("content-length")) length = std::stoul(v);
  while (buffer_.size() < end + 4 + length) {
    if (!fill()) return false;
  }
  r.body = buffer_.substr(end + 4, length);
  buffer_.erase(0, end + 4 + length);
  server_.record(std::move(r));
  return true;
}

bool Peer::write(std::string_view data) {
  while (!data.empty()) {
    if (server_.stopping() || fd_ < 0) return false;
    pollfd p{fd_, POLLOUT, 0};
    if (::poll(&p, 1, 10) <= 0) continue;
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void Peer::hang() {
  char chunk[4096];
  while (!server_.stopping() && fd_ >= 0) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 10) <= 0) continue;
    const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return;
  }
}

// Scripts.
constexpr std::string_view kOk = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

[[maybe_unused]] Server::Script answer_each(std::string answer) {
  return [answer = std::move(answer)](Peer& p) {
    while (p.read_request()) {
      if (!p.write(answer)) return;
    }
  };
}

// ------------------------------------------------------------------------------------------
// The caller's side: collects what the callbacks get; drives the client like the sender.

struct Collect {
  std::string head;                 // every on_header call appended
  std::vector<std::string> calls;   // each on_header call apart (unless `fixed`)
  std::string body;
  bool refuse_header = false;
  bool refuse_body = false;
  bool fixed = false;               // allocation-free: keep only `head`/`body` within capacity
  bool bad_call = false;            // a call with size != 1
};

std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto* c = static_cast<Collect*>(user);
  if (size != 1) c->bad_call = true;
  if (c->refuse_header) return 0;
  if (c->fixed) {
    if (c->head.size() + n <= c->head.capacity()) c->head.append(data, n);
    return n;
  }
  c->head.append(data, n);
  c->calls.emplace_back(data, n);
  return n;
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto* c = static_cast<Collect*>(user);
  if (size != 1) c->bad_call = true;
  if (c->refuse_body) return 0;
  if (c->fixed && c->body.size() + n > c->body.capacity()) return n;  // never grows
  c->body.append(data, n);
  return n;
}

// ---- The one place that knows how the sender builds a request (Http1Target::make, then
// write_head into a buffer of its own per exchange).

const std::vector<std::string> kLines = {"Content-Type: application/json", "X-Key: k"};

// A destination: its header lines (kept alive, as the sender's snapshot does) and its target.
struct Dest {
  std::vector<std::string> owned;
  std::vector<std::string_view> lines;
  std::unique_ptr<Http1Target, void (*)(Http1Target*)> target{nullptr, nullptr};
  std::string user_agent = "ua/1";
  Dest(Http1Client& client, const std::string& url, std::vector<std::string> header_lines = kLines,
       bool host_allowed = false)
      : owned(std::move(header_lines)) {
    for (const auto& l : owned) lines.emplace_back(l);
    target = Http1Target::make(url, lines, host_allowed, client);
    EXPECT_TRUE(target != nullptr) << url;
  }
  // The whole request head, as the sender will write it.
  void write_head(std::string& out, std::string_view encoding_line, std::size_t body_size) const {
    target->write_head(out, user_agent, lines, encoding_line, body_size);
  }
};

constexpr std::string_view kBody = R"({"resourceSpans":[]})";

// An exchange that owns its head, body and collector.
struct Call {
  Http1Exchange x;
  Collect got;
  std::string head;
  std::string body{kBody};
  std::string_view encoding_line;
  Call(const Dest& d, std::chrono::milliseconds deadline = 3000ms) {
    head.reserve(512);
    reset(d, deadline);
  }
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;
  // Sets the caller's fields and clears the results; the client's own fields are left as the
  // client left them (the exchange is reused, like the sender's).
  void reset(const Dest& d, std::chrono::milliseconds deadline = 3000ms) {
    x.code = 0;
    x.status = 0;
    x.connects = 0;
    x.blocked = false;
    if (d.target == nullptr) return;
    d.write_head(head, encoding_line, body.size());
    x.host = d.target->host;
    x.host_allowed = d.target->host_allowed;
    x.head = head;
    x.body = body.data();
    x.size = body.size();
    x.deadline = Clock::now() + deadline;
    x.on_header = on_header;
    x.on_body = on_body;
    x.user = &got;
    got.head.clear();
    got.calls.clear();
    got.body.clear();
  }
};

class Driver {
 public:
  explicit Driver(Http1Client& client) : client_(client) {
    done_.reserve(256);
    stray_.reserve(256);
  }
  // perform() until every exchange of `xs` was returned, or `timeout`: false then. Exchanges
  // returned that are not in `xs` (or returned twice) are kept in stray(). `each` runs after
  // every perform(). Allocation-free when `each` is (after construction).
  template <class Each>
  bool wait(std::span<Http1Exchange* const> xs, std::chrono::milliseconds timeout, Each&& each) {
    std::array<bool, 64> returned{};
    std::size_t left = xs.size();
    const auto until = Clock::now() + timeout;
    while (left > 0) {
      const auto now = Clock::now();
      if (now >= until) return false;
      const auto wake = client_.next_wake();
      int ms = static_cast<int>(cap.count());
      if (wake <= now) {
        ms = 0;
      } else if (wake - now < cap) {
        ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wake - now).count());
      }
      pollfd p{client_.fd(), POLLIN, 0};
      ::poll(&p, 1, ms);
      done_.clear();
      client_.perform(Clock::now(), done_);
      each();
      for (Http1Exchange* d : done_) {
        bool found = false;
        for (std::size_t i = 0; i < xs.size(); ++i) {
          if (xs[i] == d && !returned[i]) {
            returned[i] = true;
            found = true;
            --left;
            break;
          }
        }
        if (!found && stray_.size() < stray_.capacity()) stray_.push_back(d);
      }
    }
    return true;
  }
  bool wait(std::span<Http1Exchange* const> xs, std::chrono::milliseconds timeout = 5s) {
    return wait(xs, timeout, [] {});
  }
  bool wait1(Http1Exchange& x, std::chrono::milliseconds timeout = 5s) {
    Http1Exchange* p = &x;
    return wait(std::span<Http1Exchange* const>(&p, 1), timeout, [] {});
  }
  // perform() for `d` whatever happens (for "nothing is returned" checks).
  void idle(std::chrono::milliseconds d) {
    const auto until = Clock::now() + d;
    while (Clock::now() < until) {
      pollfd p{client_.fd(), POLLIN, 0};
      ::poll(&p, 1, 5);
      done_.clear();
      client_.perform(Clock::now(), done_);
      for (Http1Exchange* x : done_) stray_.push_back(x);
    }
  }
  // Starts `x` now and waits for it.
  bool run(Http1Exchange& x, std::chrono::milliseconds timeout = 5s) {
    client_.start(&x, Clock::now());
    return wait1(x, timeout);
  }
  [[nodiscard]] const std::vector<Http1Exchange*>& stray() const { return stray_; }
  // The longest poll() between two perform() calls. The sender sleeps until fd() is readable
  // or next_wake(); a long cap checks that every event (socket, resolver) wakes fd().
  std::chrono::milliseconds cap{50};

 private:
  Http1Client& client_;
  std::vector<Http1Exchange*> done_;
  std::vector<Http1Exchange*> stray_;
};

// Runs one exchange to `url` on a fresh client; for the failure cases.
struct One {
  Http1Client client;
  Driver driver{client};
  Dest dest;
  Call call;
  bool finished = false;
  Clock::duration took{};
  explicit One(const std::string& url, Http1Options o = {}, std::vector<std::string> lines = kLines,
               bool host_allowed = false, std::chrono::milliseconds deadline = 3000ms)
      : client(o), dest(client, url, std::move(lines), host_allowed), call(dest, deadline) {
    // Polls as the sender does, only on fd() and next_wake() (no short cap): an exchange that
    // finished at start() must make next_wake() now, anything else must wake fd().
    driver.cap = 2000ms;
    const auto begin = Clock::now();
    if (dest.target != nullptr) finished = driver.run(call.x);
    took = Clock::now() - begin;
  }
};

}  // namespace
}  // namespace tracecast
