// Review of the sender's own HTTP/1.1 client (transport/src/http1_client.*) and its wiring into
// the sender: hostile and flaky endpoints on 127.0.0.1 only. The scripted server and driver
// below are copied from tests/http1_client_test.cpp (anonymous namespace there). The comments
// marked "Found in review, fixed" describe defects of the client as first landed (each test
// failed then); the rest probe cases that held up.
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
#include "egress_util.h"
#include "sender_util.h"
#include "tracecast/sender.h"
#include <dirent.h>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include "http1_scripted_server.h"
#include "tracecast/egress.h"

namespace tracecast {
namespace {



// ==========================================================================================
// Review helpers.

// Reads a request head (up to the blank line) straight from a socket, nothing of the body.
bool read_head_raw(int fd) {
  std::string in;
  char buf[4096];
  const auto until = Clock::now() + 3s;
  while (in.find("\r\n\r\n") == std::string::npos && Clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    in.append(buf, static_cast<std::size_t>(n));
  }
  return in.find("\r\n\r\n") != std::string::npos;
}

std::size_t open_fds() {
  std::size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

// CPU time (ns) of the thread named `name` in this process; -1 if not found.
std::int64_t thread_cpu_ns(const std::string& name) {
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return -1;
  std::int64_t out = -1;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string base = std::string("/proc/self/task/") + e->d_name;
    std::ifstream comm(base + "/comm");
    std::string c;
    std::getline(comm, c);
    if (c != name) continue;
    std::ifstream sched(base + "/schedstat");
    std::int64_t ns = -1;
    if (sched >> ns) {
      out = ns;
    } else {
      std::ifstream stat(base + "/stat");
      std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
      std::istringstream rest(all.substr(all.rfind(')') + 2));
      std::string field;
      long long utime = 0, stime = 0;
      for (int i = 3; i <= 15 && rest >> field; ++i) {
        if (i == 14) utime = std::stoll(field);
        if (i == 15) stime = std::stoll(field);
      }
      out = (utime + stime) * (1000000000LL / ::sysconf(_SC_CLK_TCK));
    }
  }
  ::closedir(d);
  return out;
}

// A listener on 127.0.0.1 whose accept queue is full (backlog 0, one connection queued and
// never accepted): further SYNs are dropped, so a connect() stays in progress.
struct SynDropper {
  int listener = -1;
  int filler = -1;
  std::uint16_t port = 0;
  SynDropper() {
    listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listener, 0) != 0) {
      throw std::runtime_error("SynDropper");
    }
    socklen_t len = sizeof a;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    filler = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    (void)::connect(filler, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  ~SynDropper() {
    ::close(filler);
    ::close(listener);
  }
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/v1/traces"; }
  // True when a fresh non-blocking connect() to it is still in progress after 200 ms.
  [[nodiscard]] bool drops() const {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    (void)::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    pollfd p{fd, POLLOUT, 0};
    const int r = ::poll(&p, 1, 200);
    ::close(fd);
    return r == 0;
  }
};

// ==========================================================================================
// R1. Stale bytes on an idle kept-alive connection.

// Found in review, fixed: the client reuses an idle connection without checking that it is still quiet. A
// server that writes something nobody asked for on an idle keep-alive connection (common: a
// "408 Request Timeout" + close when its idle timer fires) has it read as the answer to the
// next request sent on that connection, if that request starts before perform() saw the
// bytes. The sender starts requests (dispatch) before it calls perform() in a loop round, so
// this happens whenever a request is handed over in the round the bytes woke it for. 408 is
// final: the batch is dropped as rejected. curl checks an idle connection before reuse
// (readable = dead) and opens a new one. Expected: 200 on a new connection. Got: 408.
TEST(Http1Review, UnsolicitedAnswerOnAnIdleConnectionIsNotTheNextRequestsAnswer) {
  std::atomic<bool> stale_sent{false};
  Server server([&](Peer& p) {
    if (p.id() == 1) {
      if (!p.read_request() || !p.write(kOk)) return;
      std::this_thread::sleep_for(20ms);
      p.write("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      stale_sent = true;
      p.hang();
      return;
    }
    while (p.read_request()) {
      if (!p.write(kOk)) return;
    }
  });
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  ASSERT_TRUE(d.run(c.x));
  ASSERT_EQ(c.x.status, 200);
  for (int i = 0; i < 300 && !stale_sent; ++i) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(20ms);  // the 408 is in the client's receive buffer
  c.reset(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  EXPECT_EQ(c.x.status, 200) << "the idle connection's unsolicited bytes were taken as the answer";
  EXPECT_EQ(c.got.body, "ok");
}

// The same through the Sender, both paths: the request is handed over without a wake-up, then
// the server writes the 408 on the idle connection; the wake-up for the 408 drains the request
// and dispatches it before perform() sees the 408. curl: delivered. Built-in: rejected 408.
Completion stale_answer_through_sender(bool builtin, std::chrono::milliseconds idle = 100ms) {
  std::atomic<bool> go{false};
  Server server([&](Peer& p) {
    if (p.id() == 1) {
      if (!p.read_request() || !p.write(kOk)) return;
      for (int i = 0; i < 3000 && !go; ++i) std::this_thread::sleep_for(1ms);
      std::this_thread::sleep_for(5ms);
      p.write("HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      p.hang();
      return;
    }
    while (p.read_request()) {
      if (!p.write(kOk)) return;
    }
  });
  SenderConfig config = test::loopback_sender_config();
  config.builtin_http1 = builtin;
  Sender sender(config);
  DestinationConfig dc;
  dc.endpoint = server.url();
  dc.timeout = 2000ms;
  const std::uint32_t id = sender.add_destination(dc).id;
  static const std::string body = "{}";
  EXPECT_TRUE(sender.try_send(test::send_request(id, 1, body)));
  auto first = test::wait_for(sender, 1, 5000ms);
  EXPECT_EQ(first.size(), 1u);
  std::this_thread::sleep_for(idle);  // the loop sleeps
  EXPECT_TRUE(sender.try_send(test::send_request(id, 2, body), Sender::SendWake::later));
  go = true;
  auto second = test::wait_for(sender, 1, 5000ms);
  sender.shutdown(Clock::now());
  return second.empty() ? Completion{} : second[0];
}

// Failed on the built-in path before the peek. Note: curl 7.88 (the https:// path, and
// builtin_http1 = false) takes the stale 408 too, even after 1.2 s idle (IDLE_MS=1200 to
// try): printed here for comparison, not asserted.
TEST(Http1Review, SenderDeliversWhenAnIdleConnectionCarriesAStale408) {
  const auto idle_ms = std::chrono::milliseconds(std::getenv("IDLE_MS") ? std::atoi(std::getenv("IDLE_MS")) : 100);
  const Completion curl = stale_answer_through_sender(false, idle_ms);
  std::printf("curl path: outcome %d status %d (not asserted)\n", static_cast<int>(curl.outcome), curl.http_status);
  const Completion builtin = stale_answer_through_sender(true, idle_ms);
  EXPECT_EQ(builtin.outcome, SendOutcome::delivered) << "built-in path, status " << builtin.http_status;
  EXPECT_EQ(builtin.http_status, 200);
}

// Found in review, fixed: the 16 KiB bound on one head line applies only when the line arrives in pieces
// (parse() appends to c->line only then). The same 20 KiB header line is accepted when it
// comes in one recv() (loopback) and refused with code 23 when split across reads, which on a
// real network (1448-byte segments) is always. curl 7.88 accepts header lines up to 100 KiB
// (CURL_MAX_HTTP_HEADER) either way; the sender bounds the whole head at 64 KiB itself.
// Expected: 200 both ways. Got: code 23 (CURLE_WRITE_ERROR) when split.
TEST(Http1Review, A20KiBHeaderLineIsReadTheSameWhetherOrNotItArrivesInPieces) {
  const std::string answer = "HTTP/1.1 200 OK\r\nX-Big: " + std::string(20000, 'a') + "\r\nContent-Length: 2\r\n\r\nok";
  std::atomic<bool> split{false};
  Server server([&](Peer& p) {
    while (p.read_request()) {
      if (!split) {
        if (!p.write(answer)) return;
        continue;
      }
      for (std::size_t at = 0; at < answer.size(); at += 1448) {
        if (!p.write(std::string_view(answer).substr(at, 1448))) return;
        std::this_thread::sleep_for(1ms);
      }
    }
  });
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0) << "in one piece";
  EXPECT_EQ(c.x.status, 200);
  split = true;
  c.reset(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0) << "in 1448-byte pieces";
  EXPECT_EQ(c.x.status, 200);
  EXPECT_EQ(c.got.body, "ok");
}

// ==========================================================================================
// R2. The parser: every split point, line endings.

TEST(Http1Review, AnswersSplitAtEveryByteBoundary) {
  std::string many_continues;
  for (int i = 0; i < 3; ++i) many_continues += "HTTP/1.1 100 Continue\r\n\r\n";
  const std::vector<std::string> answers = {
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
      many_continues + "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;ext=v\r\no\r\n1\r\nk\r\n0\r\nX-T: 1\r\n\r\n",
      "HTTP/1.1 200\nContent-Length: 2\n\nok",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\nok\n0\n\n",
  };
  std::atomic<std::size_t> which{0};
  std::atomic<std::size_t> split{0};
  Server server([&](Peer& p) {
    while (p.read_request()) {
      const std::string& a = answers[which];
      const std::size_t k = split;
      if (!p.write(std::string_view(a).substr(0, k))) return;
      std::this_thread::sleep_for(1ms);
      if (!p.write(std::string_view(a).substr(k))) return;
    }
  });
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  for (std::size_t w = 0; w < answers.size(); ++w) {
    for (std::size_t k = 1; k < answers[w].size(); ++k) {
      which = w;
      split = k;
      c.reset(t);
      ASSERT_TRUE(d.run(c.x)) << w << "/" << k;
      EXPECT_EQ(c.x.code, 0) << w << "/" << k;
      EXPECT_EQ(c.x.status, 200) << w << "/" << k;
      EXPECT_EQ(c.got.body, "ok") << w << "/" << k;
    }
  }
  EXPECT_EQ(server.accepts(), 1u);  // every answer left the connection reusable
  EXPECT_TRUE(d.stray().empty());
}

// Bytes after a complete answer in the same segment never reach the next exchange.
TEST(Http1Review, PipelinedGarbageInTheSameSegmentClosesTheConnection) {
  Server server([](Peer& p) {
    while (p.read_request()) {
      if (!p.write(std::string(kOk) + "HTTP/1.1 500 Nope\r\nContent-Length: 0\r\n\r\n")) return;
    }
  });
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  for (int i = 0; i < 5; ++i) {
    c.reset(t);
    ASSERT_TRUE(d.run(c.x));
    EXPECT_EQ(c.x.status, 200);
    EXPECT_EQ(c.x.connects, 1);
  }
}

// ==========================================================================================
// R3. The server answers before the body is sent.

void early_answer(bool close_at_once) {
  Server server([close_at_once](Peer& p) {
    if (!read_head_raw(p.fd())) return;
    p.write("HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    if (close_at_once) return;  // unread body in our buffer: RST
    ::shutdown(p.fd(), SHUT_WR);
    p.hang();
  }, Server::Options{true, false, 64 * 1024});
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  c.body.assign(16u << 20, 'x');
  c.reset(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  EXPECT_EQ(c.x.status, 413);
  EXPECT_EQ(client.open_connections(), 0u);
}

TEST(Http1Review, EarlyAnswerThenResetReportsTheAnswer) { early_answer(true); }
TEST(Http1Review, EarlyAnswerThenHalfCloseReportsTheAnswer) { early_answer(false); }

// A server that accepts and never reads: the send buffer fills; the deadline still fires.
TEST(Http1Review, DeadlineFiresWhileTheSendBufferIsFull) {
  std::atomic<bool> stop{false};
  Server server([&](Peer&) {
    while (!stop) std::this_thread::sleep_for(5ms);
  }, Server::Options{true, false, 4096});
  Http1Client client(Http1Options{});
  Driver d(client);
  d.cap = 2000ms;
  const Dest t(client, server.url());
  Call c(t, 300ms);
  c.body.assign(8u << 20, 'x');
  c.reset(t, 300ms);
  const auto begin = Clock::now();
  ASSERT_TRUE(d.run(c.x));
  const auto took = Clock::now() - begin;
  EXPECT_EQ(c.x.code, 28);
  EXPECT_LT(took, 800ms);
  EXPECT_EQ(client.open_connections(), 0u);
  stop = true;
}

// ==========================================================================================
// R4. Connection lifecycle.

// The server closes (FIN or RST) at random after answers while requests flow with random gaps:
// every request is answered exactly once on the server and returned exactly once.
TEST(Http1Review, RandomServerClosesNeverLoseOrDuplicateARequest) {
  std::mutex mu;
  std::mt19937 server_rng(7);
  Server server([&](Peer& p) {
    while (p.read_request()) {
      if (!p.write(kOk)) return;
      int what;
      int delay_us;
      {
        std::lock_guard<std::mutex> lock(mu);  // one engine for every connection's thread
        what = static_cast<int>(server_rng() % 6);
        delay_us = static_cast<int>(server_rng() % 3000);
      }
      if (what == 0) return;  // FIN at once
      if (what == 1) {
        p.reset();  // RST at once
        return;
      }
      if (what == 2) {
        std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
        return;  // FIN a moment later
      }
    }
  });
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  std::mt19937 rng(11);
  constexpr int n = 300;
  int failed = 0;
  for (int i = 0; i < n; ++i) {
    c.body = "req-" + std::to_string(i);
    c.reset(t);
    ASSERT_TRUE(d.run(c.x)) << i;
    if (c.x.code != 0 || c.x.status != 200) {
      ++failed;
      ADD_FAILURE() << "request " << i << " code " << c.x.code << " status " << c.x.status;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
  }
  EXPECT_EQ(failed, 0);
  EXPECT_TRUE(d.stray().empty());
  std::map<std::string, int> seen;
  for (const auto& r : server.requests()) ++seen[r.body];
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(n));
  for (const auto& [body, count] : seen) EXPECT_EQ(count, 1) << body;
}

// The same with 32 exchanges in flight at once (several connections, some waiting for the cap).
TEST(Http1Review, RandomServerClosesWithManyInFlightNeverLoseOrDuplicateARequest) {
  std::mutex mu;
  std::mt19937 server_rng(5);
  Server server([&](Peer& p) {
    while (p.read_request()) {
      if (!p.write(kOk)) return;
      int what;
      {
        std::lock_guard<std::mutex> lock(mu);
        what = static_cast<int>(server_rng() % 5);
      }
      if (what == 0) return;
      if (what == 1) {
        p.reset();
        return;
      }
    }
  });
  Http1Options o;
  o.max_per_host = 6;
  Http1Client client(o);
  Driver d(client);
  const Dest t(client, server.url());
  constexpr int k = 32;
  std::vector<std::unique_ptr<Call>> calls;
  for (int i = 0; i < k; ++i) calls.push_back(std::make_unique<Call>(t));
  std::vector<Http1Exchange*> xs;
  int sent = 0;
  int failed = 0;
  for (int round = 0; round < 10; ++round) {
    xs.clear();
    for (int i = 0; i < k; ++i) {
      calls[i]->body = "req-" + std::to_string(sent++);
      calls[i]->reset(t);
      client.start(&calls[i]->x, Clock::now());
      xs.push_back(&calls[i]->x);
    }
    ASSERT_TRUE(d.wait(xs, 10s)) << round;
    for (int i = 0; i < k; ++i) {
      if (calls[i]->x.code != 0 || calls[i]->x.status != 200) {
        ++failed;
        ADD_FAILURE() << calls[i]->body << " code " << calls[i]->x.code << " status " << calls[i]->x.status;
      }
    }
  }
  EXPECT_EQ(failed, 0);
  EXPECT_TRUE(d.stray().empty());
  std::map<std::string, int> seen;
  for (const auto& r : server.requests()) ++seen[r.body];
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(sent));
  for (const auto& [body, count] : seen) EXPECT_EQ(count, 1) << body;
}

TEST(Http1Review, ThousandConnectionCloseExchangesLeakNoDescriptor) {
  Server server([](Peer& p) {
    if (p.read_request()) p.write("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
  });
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  c.reset(t);
  ASSERT_TRUE(d.run(c.x));
  ASSERT_TRUE(server.wait_all_closed());
  const std::size_t before = open_fds();
  for (int i = 0; i < 1000; ++i) {
    c.reset(t);
    ASSERT_TRUE(d.run(c.x));
    ASSERT_EQ(c.x.code, 0) << i;
  }
  ASSERT_TRUE(server.wait_all_closed());
  EXPECT_EQ(client.open_connections(), 0u);
  EXPECT_LE(open_fds(), before);
}

TEST(Http1Review, ConnectToAPortDroppingSynsTimesOutAtTheConnectTimeout) {
  SynDropper drop;
  if (!drop.drops()) GTEST_SKIP() << "SYNs are not dropped here";
  Http1Options o;
  o.connect_timeout = 300ms;
  Http1Client client(o);
  Driver d(client);
  d.cap = 2000ms;
  const Dest t(client, drop.url());
  Call c(t, 3000ms);
  const auto begin = Clock::now();
  ASSERT_TRUE(d.run(c.x));
  const auto took = Clock::now() - begin;
  EXPECT_EQ(c.x.code, 28);
  EXPECT_GE(took, 290ms);
  EXPECT_LT(took, 1000ms);
  EXPECT_EQ(client.open_connections(), 0u);
  // cancel() while connecting, then destroy the client with one connecting.
  Call c2(t, 3000ms);
  client.start(&c2.x, Clock::now());
  d.idle(20ms);
  client.cancel(&c2.x);
  EXPECT_EQ(client.open_connections(), 0u);
  Call c3(t, 3000ms);
  client.start(&c3.x, Clock::now());
}

// cancel() in each state, then the client is destroyed with exchanges in flight in each state.
TEST(Http1Review, CancelInEveryStateAndDestroyWithExchangesInFlight) {
  std::atomic<bool> stop{false};
  Server hang_server([&](Peer& p) {
    if (!p.read_request()) return;
    while (!stop) std::this_thread::sleep_for(2ms);
  });
  Server noread([&](Peer&) {
    while (!stop) std::this_thread::sleep_for(2ms);
  }, Server::Options{true, false, 4096});
  for (int round = 0; round < 2; ++round) {
    Http1Options o;
    o.max_per_host = 1;
    auto client = std::make_unique<Http1Client>(o);
    Driver d(*client);
    const Dest th(*client, hang_server.url());
    const Dest tn(*client, noread.url());
    Call receiving(th);
    Call waiting(th);
    Call sending(tn);
    sending.body.assign(4u << 20, 'x');
    sending.reset(tn);
    client->start(&receiving.x, Clock::now());
    client->start(&waiting.x, Clock::now());
    client->start(&sending.x, Clock::now());
    d.idle(50ms);
    ASSERT_TRUE(hang_server.wait_requests(1));
    EXPECT_TRUE(d.stray().empty());
    if (round == 0) {
      client->cancel(&waiting.x);
      client->cancel(&sending.x);
      client->cancel(&receiving.x);
      d.idle(20ms);
      EXPECT_EQ(client->open_connections(), 0u);
      EXPECT_TRUE(d.stray().empty());
    }
    client.reset();  // round 1: destroyed with all three in flight
  }
  stop = true;
}

TEST(Http1Review, DestroyWhileTheResolverThreadLooksUp) {
  Server server(answer_each(std::string(kOk)));
  for (int i = 0; i < 50; ++i) {
    Http1Client client(Http1Options{});
    const Dest t(client, "http://localhost:" + std::to_string(server.port()) + "/v1/traces");
    Call c(t);
    client.start(&c.x, Clock::now());
    if (i % 2 == 1) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  std::this_thread::sleep_for(100ms);  // detached resolver threads end
}

// Found in review, fixed: the age was only checked when the host was used again, so an idle
// connection to a host that gets no more requests (a destination removed, moved or quiet)
// stayed open until the server closed it or max_idle evicted it. (Measured in review: the
// curl path keeps such a connection past 118 s too.) Http1Options::max_idle_age is 118 s by
// default; 300 ms here runs the same code.
TEST(Http1Review, IdleConnectionIsClosedAfterItsMaxAgeWithoutReuse) {
  Server server(answer_each(std::string(kOk)));
  Http1Options options;
  options.max_idle_age = 300ms;  // 118 s by default: the same code path, quicker
  Http1Client client(options);
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  ASSERT_TRUE(d.run(c.x));
  ASSERT_EQ(client.open_connections(), 1u);
  EXPECT_LT(client.next_wake(), Clock::time_point::max()) << "a timer must close it";
  const auto until = Clock::now() + 2s;
  while (Clock::now() < until && client.open_connections() != 0) d.idle(50ms);
  EXPECT_EQ(client.open_connections(), 0u) << "an idle connection older than max_idle_age is still open";
  EXPECT_TRUE(server.wait_all_closed()) << "the server still sees it open";
  EXPECT_EQ(client.next_wake(), Clock::time_point::max());
}

// An exchange whose deadline passed before start(): returned promptly with 28 (informational:
// prints whether the request still went out).
TEST(Http1Review, DeadlineAlreadyPastAtStart) {
  Server server(answer_each(std::string(kOk)));
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  c.x.deadline = Clock::now() - 1s;
  const auto begin = Clock::now();
  ASSERT_TRUE(d.run(c.x));
  EXPECT_LT(Clock::now() - begin, 100ms);
  EXPECT_EQ(c.x.code, 28);
  std::this_thread::sleep_for(50ms);
  std::printf("requests the server got for an already-expired exchange: %zu\n", server.request_count());
}

// ==========================================================================================
// R5. Timers.

TEST(Http1Review, ManyDeadlinesFireInOrderAndOnTime) {
  std::atomic<bool> stop{false};
  Server server([&](Peer& p) {
    if (!p.read_request()) return;
    while (!stop) std::this_thread::sleep_for(2ms);
  });
  Http1Options o;
  o.max_per_host = 8;  // some wait for a connection
  Http1Client client(o);
  const Dest t(client, server.url());
  constexpr int n = 40;
  std::vector<std::unique_ptr<Call>> calls;
  std::vector<int> order(n);
  for (int i = 0; i < n; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(3));
  const auto base = Clock::now();
  for (int i = 0; i < n; ++i) {
    calls.push_back(std::make_unique<Call>(t));
    calls.back()->x.deadline = base + 100ms + order[i] * 10ms;
    client.start(&calls.back()->x, Clock::now());
  }
  std::vector<Clock::time_point> ended(n);
  int left = n;
  std::vector<Http1Exchange*> done;
  const auto until = Clock::now() + 5s;
  while (left > 0 && Clock::now() < until) {
    const auto now = Clock::now();
    // next_wake() is never later than the earliest deadline of an exchange still out.
    Clock::time_point earliest = Clock::time_point::max();
    for (int i = 0; i < n; ++i) {
      if (ended[i] == Clock::time_point{}) earliest = std::min(earliest, calls[i]->x.deadline);
    }
    EXPECT_LE(client.next_wake(), earliest);
    const auto wake = client.next_wake();
    int ms = wake <= now ? 0 : static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wake - now).count());
    pollfd p{client.fd(), POLLIN, 0};
    ::poll(&p, 1, std::min(ms, 1000));
    done.clear();
    client.perform(Clock::now(), done);
    for (Http1Exchange* x : done) {
      for (int i = 0; i < n; ++i) {
        if (&calls[i]->x == x) {
          EXPECT_EQ(ended[i], Clock::time_point{}) << "returned twice";
          ended[i] = Clock::now();
          --left;
        }
      }
    }
  }
  ASSERT_EQ(left, 0);
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(calls[i]->x.code, 28) << i;
    EXPECT_GE(ended[i], calls[i]->x.deadline) << i;
    EXPECT_LT(ended[i] - calls[i]->x.deadline, 100ms) << i;
  }
  stop = true;
}

// ==========================================================================================
// R6. Through the Sender: the built-in path and curl give the same outcomes.

struct Outcome {
  SendOutcome outcome = SendOutcome::aborted;
  int status = 0;
  NetworkError error = NetworkError::none;
  std::uint32_t attempts = 0;
  bool malformed = false;
  std::uint64_t connections = 0;
  std::array<std::uint64_t, 7> net{};
  std::vector<std::pair<int, std::uint64_t>> statuses;
  std::string str() const {
    std::string s = "outcome " + std::to_string(static_cast<int>(outcome)) + " status " + std::to_string(status) +
                    " error " + std::to_string(static_cast<int>(error)) + " attempts " + std::to_string(attempts) +
                    " malformed " + std::to_string(malformed) + " conns " + std::to_string(connections) + " net[";
    for (auto v : net) s += std::to_string(v) + ",";
    s += "] statuses[";
    for (auto& [k, v] : statuses) s += std::to_string(k) + ":" + std::to_string(v) + ",";
    return s + "]";
  }
};

// script(peer, index of the request over all connections) answers; false: close the connection.
using IndexedScript = std::function<bool(Peer&, int)>;

Outcome through_sender(bool builtin, const IndexedScript& script, std::chrono::milliseconds max_elapsed,
                       std::chrono::milliseconds timeout = 1000ms) {
  std::atomic<int> index{0};
  Server server([&](Peer& p) {
    while (p.read_request()) {
      if (!script(p, index.fetch_add(1))) return;
    }
  });
  SenderConfig config = test::loopback_sender_config();
  config.builtin_http1 = builtin;
  config.retry.initial_interval = 10ms;
  config.retry.max_interval = 20ms;
  config.retry.max_elapsed = max_elapsed;
  config.jitter_seed = 1;
  Sender sender(config);
  DestinationConfig dc;
  dc.endpoint = server.url();
  dc.timeout = timeout;
  const std::uint32_t id = sender.add_destination(dc).id;
  static const std::string body = "{}";
  EXPECT_TRUE(sender.try_send(test::send_request(id, 1, body)));
  const auto done = test::wait_for(sender, 1, 20000ms);
  Outcome o;
  if (done.size() == 1) {
    o.outcome = done[0].outcome;
    o.status = done[0].http_status;
    o.error = done[0].network_error;
    o.attempts = done[0].attempts;
    o.malformed = done[0].malformed_answer;
  }
  const DestinationStats s = sender.stats().destinations[0];
  o.connections = s.connections_opened;
  o.net = s.network_errors;
  o.statuses = s.responses_by_status;
  sender.shutdown(Clock::now());
  return o;
}

struct AnswerCase {
  std::string name;
  std::string answer;
};

std::vector<AnswerCase> answer_cases() {
  std::string continues300;
  for (int i = 0; i < 300; ++i) continues300 += "HTTP/1.1 100 Continue\r\n\r\n";
  std::string continues3000;
  for (int i = 0; i < 3000; ++i) continues3000 += "HTTP/1.1 100 Continue\r\n\r\n";
  const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  const std::string h = "HTTP/1.1 200 OK\r\n";
  return {
      {"plain", ok},
      {"no_reason", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"},
      {"lf_only", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok"},
      {"cr_only", "HTTP/1.1 200 OK\rContent-Length: 2\r\rok"},
      {"plus_length", h + "Content-Length: +2\r\n\r\nok"},
      {"length_spaces", h + "Content-Length:    2   \r\n\r\nok"},
      {"length_list", h + "Content-Length: 2, 2\r\n\r\nok"},
      {"two_lengths_differ", h + "Content-Length: 2\r\nContent-Length: 3\r\n\r\nok"},
      {"two_lengths_same", h + "Content-Length: 2\r\nContent-Length: 2\r\n\r\nok"},
      {"length_u64_max", h + "Content-Length: 18446744073709551615\r\n\r\nok"},
      {"length_overflow", h + "Content-Length: 99999999999999999999999\r\n\r\nok"},
      {"length_negative", h + "Content-Length: -1\r\n\r\nok"},
      {"length_longer_than_body", h + "Content-Length: 10\r\n\r\nok"},
      {"chunked_and_length", h + "Transfer-Encoding: chunked\r\nContent-Length: 100\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
      {"chunk_size_overflow", h + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nok"},
      {"chunk_size_u64_max", h + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nok"},
      {"chunk_missing_crlf", h + "Transfer-Encoding: chunked\r\n\r\n2\r\nokXX\r\n0\r\n\r\n"},
      {"chunk_ext_trailers", h + "Transfer-Encoding: chunked\r\n\r\n2;a=b\r\nok\r\n0\r\nX-T: v\r\n\r\n"},
      {"chunk_0x", h + "Transfer-Encoding: chunked\r\n\r\n0x2\r\nok\r\n0\r\n\r\n"},
      {"chunk_no_last", h + "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"},
      {"status_999", "HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n"},
      {"status_http2", "HTTP/2 200\r\nContent-Length: 0\r\n\r\n"},
      {"status_http09", "ok"},
      {"status_lowercase", "http/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
      {"status_101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"},
      {"continue_x300", continues300 + ok},
      {"continue_x3000", continues3000 + ok},
      {"no_content_with_body", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"},
      {"not_modified", "HTTP/1.1 304 Not Modified\r\n\r\n"},
      {"partial_status", "HTTP/1.1 2"},
      {"partial_head", "HTTP/1.1 200 OK\r\nContent-Le"},
      {"empty", ""},
      {"http10_eof_body", "HTTP/1.0 200 OK\r\n\r\nok"},
      {"header_20k", h + "X-Big: " + std::string(20000, 'a') + "\r\nContent-Length: 2\r\n\r\nok"},
      {"header_120k", h + "X-Big: " + std::string(120000, 'a') + "\r\nContent-Length: 2\r\n\r\nok"},
      {"header_no_colon", h + "Garbage line\r\nContent-Length: 2\r\n\r\nok"},
      {"obs_fold", h + "X-A: 1\r\n  folded\r\nContent-Length: 2\r\n\r\nok"},
      {"retry_after_503", "HTTP/1.1 503 Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n"},
      {"te_identity", h + "Transfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nok"},
      {"te_chunked_not_last", h + "Transfer-Encoding: chunked, gzip\r\n\r\n2\r\nok\r\n0\r\n\r\n"},
  };
}

// Runs the named answer cases (all when `names` is empty), each written and then the
// connection closed, through both paths with no retries; returns how many differ in outcome,
// status, network error, attempts or the malformed flag (each reported).
int compare_answer_cases(const std::vector<std::string>& names, const std::vector<std::string>& except = {}) {
  int differ = 0;
  for (const AnswerCase& ac : answer_cases()) {
    if (!names.empty() && std::find(names.begin(), names.end(), ac.name) == names.end()) continue;
    if (std::find(except.begin(), except.end(), ac.name) != except.end()) continue;
    const IndexedScript script = [&ac](Peer& p, int) {
      p.write(ac.answer);
      return false;
    };
    const Outcome curl = through_sender(false, script, 0ms);
    const Outcome own = through_sender(true, script, 0ms);
    const bool same = curl.outcome == own.outcome && curl.status == own.status && curl.error == own.error &&
                      curl.attempts == own.attempts && curl.malformed == own.malformed;
    if (!same) {
      ++differ;
      ADD_FAILURE() << ac.name << "\n  curl:     " << curl.str() << "\n  built-in: " << own.str();
    } else {
      std::printf("same %-24s %s\n", ac.name.c_str(), own.str().c_str());
    }
  }
  return differ;
}

// Found in review, fixed: status lines curl 7.88 takes as a 200 ("http/1.1 200" in lower case; "HTTP/2 200"
// on an HTTP/1.1 connection) are code 1 on the built-in path: network_error_final, the batch
// is dropped where curl delivers it. (The comment on k_not_http says both give the same.)
TEST(Http1ReviewAB, StatusLinesCurlAcceptsAreNotFinalErrors) {
  EXPECT_EQ(compare_answer_cases({"status_lowercase", "status_http2"}), 0);
}

// Found in review, fixed: a 200 whose Content-Length curl tolerates ("+2", "2, 2", a value over 2^63-1: read
// to close) or whose head is cut after the status line is a retryable failure on the built-in
// path: the batch the server accepted with a 200 is sent again (duplicates), and counted as
// retries_exhausted (lost) when max_elapsed runs out. curl: delivered.
TEST(Http1ReviewAB, A200WithFramingCurlToleratesIsNotRetried) {
  EXPECT_EQ(compare_answer_cases({"plus_length", "length_list", "length_overflow", "length_u64_max", "partial_head"}), 0);
}

// Every answer case: also lists the smaller differences (the NetworkError kind counted for a
// retryable failure, final vs retryable for broken chunk framing, an over-long header line,
// "Transfer-Encoding: chunked, gzip", a header line without a colon, HTTP/0.9).
// One known difference: a chunk size written "0x2" fails the attempt on both paths, final
// ("other") in curl 7.88, a retryable receive error (56) here like every other broken chunk
// framing (curl too gives 56 for those: chunk_size_overflow, chunk_missing_crlf).
TEST(Http1ReviewAB, EveryHostileAnswerGivesTheSameCompletionAsCurl) {
  EXPECT_EQ(compare_answer_cases({}, {"chunk_0x"}), 0);
}

void expect_same_scenario(const char* name, const IndexedScript& script, std::chrono::milliseconds max_elapsed) {
  const Outcome curl = through_sender(false, script, max_elapsed);
  const Outcome own = through_sender(true, script, max_elapsed);
  EXPECT_EQ(curl.str(), own.str()) << name;
  std::printf("%s\n  curl:     %s\n  built-in: %s\n", name, curl.str().c_str(), own.str().c_str());
}

// The 20 KiB header line in 1448-byte segments through both paths (see the defect above):
// curl delivers, the built-in path fails the attempt (code 23, retried until max_elapsed).
TEST(Http1ReviewAB, ALongHeaderLineInSegmentsGivesTheSameCompletionAsCurl) {
  expect_same_scenario("20 KiB header line in segments", [](Peer& p, int) {
    const std::string answer = "HTTP/1.1 200 OK\r\nX-Big: " + std::string(20000, 'a') + "\r\nContent-Length: 2\r\n\r\nok";
    for (std::size_t at = 0; at < answer.size(); at += 1448) {
      if (!p.write(std::string_view(answer).substr(at, 1448))) return false;
      std::this_thread::sleep_for(1ms);
    }
    return true;
  }, 300ms);
}

TEST(Http1ReviewAB, RetriesAfterNetworkErrorsAnd503GiveTheSameOutcomesAndCounters) {
  expect_same_scenario("close, 503 Retry-After 1, 200", [](Peer& p, int i) {
    if (i == 0) return false;
    if (i == 1) {
      p.write("HTTP/1.1 503 Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n");
      return true;
    }
    p.write(kOk);
    return true;
  }, 5000ms);
  expect_same_scenario("reset, reset, 200", [](Peer& p, int i) {
    if (i < 2) {
      p.reset();
      return false;
    }
    p.write(kOk);
    return true;
  }, 5000ms);
  expect_same_scenario("half a body then close, 200", [](Peer& p, int i) {
    if (i == 0) {
      p.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok");
      return false;
    }
    p.write(kOk);
    return true;
  }, 5000ms);
  expect_same_scenario("503 x3 on one kept-alive connection then 200", [](Peer& p, int i) {
    if (i < 3) {
      p.write("HTTP/1.1 503 Unavailable\r\nContent-Length: 0\r\n\r\n");
      return true;
    }
    p.write(kOk);
    return true;
  }, 5000ms);
  expect_same_scenario("503 Retry-After then connection close then 200", [](Peer& p, int i) {
    if (i == 0) {
      p.write("HTTP/1.1 503 Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return false;
    }
    p.write(kOk);
    return true;
  }, 5000ms);
}

// ==========================================================================================
// R7. The sender loop with the built-in client: CPU while a request hangs, shutdown, updates.

std::int64_t sender_cpu_over(std::chrono::milliseconds span) {
  const std::int64_t a = thread_cpu_ns("tracecast-send");
  std::this_thread::sleep_for(span);
  const std::int64_t b = thread_cpu_ns("tracecast-send");
  return (a < 0 || b < 0) ? -1 : b - a;
}

TEST(Http1Review, SenderThreadStaysIdleWithHungRequestsInFlight) {
  std::atomic<bool> stop{false};
  Server hang_server([&](Peer& p) {
    if (!p.read_request()) return;
    while (!stop) std::this_thread::sleep_for(2ms);
  });
  Server noread([&](Peer&) {
    while (!stop) std::this_thread::sleep_for(2ms);
  }, Server::Options{true, false, 4096});
  SynDropper drop;
  SenderConfig config = test::loopback_sender_config();
  config.connect_timeout = 30000ms;
  Sender sender(config);
  auto add = [&](const std::string& url) {
    DestinationConfig dc;
    dc.endpoint = url;
    dc.timeout = 30000ms;
    return sender.add_destination(dc).id;
  };
  static const std::string small = "{}";
  static const std::string big(8u << 20, 'x');
  // A burst of answered requests first (the loop goes into answer ticks), then the hung ones.
  Server ok_server(answer_each(std::string(kOk)));
  const std::uint32_t ok_id = add(ok_server.url());
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(sender.try_send(test::send_request(ok_id, 100 + i, small)));
  ASSERT_EQ(test::wait_for(sender, 50, 10000ms).size(), 50u);
  ASSERT_TRUE(sender.try_send(test::send_request(add(hang_server.url()), 1, small)));
  ASSERT_TRUE(sender.try_send(test::send_request(add(noread.url()), 2, big)));
  if (drop.drops()) {
    ASSERT_TRUE(sender.try_send(test::send_request(add(drop.url()), 3, small)));
  }
  std::this_thread::sleep_for(300ms);
  const std::int64_t ns = sender_cpu_over(2000ms);
  ASSERT_GE(ns, 0) << "no tracecast-send thread";
  std::printf("sender thread CPU over 2 s with hung requests: %.3f ms\n", static_cast<double>(ns) / 1e6);
  EXPECT_LT(ns, 40'000'000) << "the sender thread spins";
  const auto begin = Clock::now();
  sender.shutdown(Clock::now());
  EXPECT_LT(Clock::now() - begin, 200ms) << "shutdown delayed";
  stop = true;
}

// Shutdown with a deadline while answers arrive: returns soon after the last answer is written
// (answer ticks must not add more than a few ms), everything delivered.
TEST(Http1Review, ShutdownReturnsPromptlyAfterTheLastAnswer) {
  for (const bool builtin : {true, false}) {
    std::atomic<std::int64_t> last_write{0};
    Server server([&](Peer& p) {
      while (p.read_request()) {
        std::this_thread::sleep_for(50ms);
        if (!p.write(kOk)) return;
        last_write = Clock::now().time_since_epoch().count();
      }
    });
    SenderConfig config = test::loopback_sender_config();
    config.builtin_http1 = builtin;
    Sender sender(config);
    DestinationConfig dc;
    dc.endpoint = server.url();
    const std::uint32_t id = sender.add_destination(dc).id;
    static const std::string body = "{}";
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(sender.try_send(test::send_request(id, i, body)));
    std::this_thread::sleep_for(10ms);
    sender.shutdown(Clock::now() + 5s);
    const auto returned = Clock::now();
    const auto lag = returned - Clock::time_point(Clock::duration(last_write.load()));
    std::printf("%s: shutdown returned %.3f ms after the last answer was written\n", builtin ? "built-in" : "curl",
                std::chrono::duration<double, std::milli>(lag).count());
    EXPECT_LT(lag, 30ms) << (builtin ? "built-in" : "curl");
    const auto done = test::wait_for(sender, 20, 1000ms);
    ASSERT_EQ(done.size(), 20u);
    for (const auto& c : done) EXPECT_EQ(c.outcome, SendOutcome::delivered);
  }
}

TEST(Http1Review, UpdateAndRemoveDestinationWhileRequestsAreInFlight) {
  Server a([](Peer& p) {
    while (p.read_request()) {
      std::this_thread::sleep_for(50ms);
      if (!p.write(kOk)) return;
    }
  });
  Server b(answer_each(std::string(kOk)));
  SenderConfig config = test::loopback_sender_config();
  Sender sender(config);
  DestinationConfig dc;
  dc.endpoint = a.url();
  const std::uint32_t id = sender.add_destination(dc).id;
  const std::uint32_t id2 = sender.add_destination(dc).id;
  static const std::string body = "{}";
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(sender.try_send(test::send_request(id, i, body)));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(sender.try_send(test::send_request(id2, 100 + i, body)));
  std::this_thread::sleep_for(20ms);
  DestinationConfig moved = dc;
  moved.endpoint = b.url();
  EXPECT_TRUE(sender.update_destination(id, moved).empty());
  sender.remove_destination(id2);
  for (int i = 10; i < 20; ++i) ASSERT_TRUE(sender.try_send(test::send_request(id, i, body)));
  const auto done = test::wait_for(sender, 30, 10000ms);
  ASSERT_EQ(done.size(), 30u);
  int delivered = 0;
  for (const auto& c : done) {
    if (c.destination == id) {
      EXPECT_EQ(c.outcome, SendOutcome::delivered) << c.tag;
    } else {
      EXPECT_TRUE(c.outcome == SendOutcome::delivered || c.outcome == SendOutcome::destination_removed) << c.tag;
    }
    delivered += c.outcome == SendOutcome::delivered ? 1 : 0;
  }
  EXPECT_GE(delivered, 20);
  EXPECT_GE(b.request_count(), 10u);
}

}  // namespace
}  // namespace tracecast
