// The sender's own HTTP/1.1 client (transport/src/http1_client.h), driven the way the sender
// drives it (one thread: start(), poll() on fd() bounded by next_wake(), perform()), against
// scripted servers of our own on 127.0.0.1 (and ::1 where available) that read requests and
// write exact bytes: the request bytes the server receives, every answer framing, keep-alive
// and the re-send after a server closed an idle connection, failures as curl codes, the per-
// host connection cap, the egress gate, the resolver thread ("localhost" only), cancel(), and
// no allocation per request once warm. No other network traffic.
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
#include "http1_scripted_server.h"
#include "egress_gate.h"
#include "http1_client.h"
#include "raw_http_server.h"
#include "tracecast/egress.h"

namespace tracecast {
namespace {


std::string status_line(const std::string& head) { return head.substr(0, head.find("\r\n") + 2); }

// ==========================================================================================
// 1. The request bytes.

TEST(Http1Target, WritesTheDocumentedHeadForHttpUrls) {
  Http1Client client(Http1Options{});
  {
    const Dest d(client, "http://127.0.0.1:4318/v1/traces");
    ASSERT_NE(d.target, nullptr);
    EXPECT_FALSE(d.target->host_allowed);
    EXPECT_EQ(d.target->host, client.host("127.0.0.1", 4318));
    std::string out = "left over";
    d.write_head(out, "", 20);
    EXPECT_EQ(out,
              "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:4318\r\nUser-Agent: ua/1\r\n"
              "Content-Type: application/json\r\nX-Key: k\r\nContent-Length: 20\r\n\r\n");
    d.write_head(out, "Content-Encoding: gzip\r\n", 0);
    EXPECT_EQ(out,
              "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:4318\r\nUser-Agent: ua/1\r\n"
              "Content-Type: application/json\r\nX-Key: k\r\nContent-Encoding: gzip\r\n"
              "Content-Length: 0\r\n\r\n");
  }
  {
    // Host names are lowercased for the client's host table; port 80 is curl's default.
    const Dest d(client, "http://Collector.Example:80/a?b=1&c=%20", {}, /*host_allowed=*/true);
    ASSERT_NE(d.target, nullptr);
    EXPECT_TRUE(d.target->host_allowed);
    EXPECT_EQ(d.target->host, client.host("collector.example", 80));
    std::string out;
    d.write_head(out, "", 1);
    EXPECT_EQ(out.substr(0, out.find("\r\n")), "POST /a?b=1&c=%20 HTTP/1.1");
  }
  {
    const Dest d(client, "http://collector.example/a", {});
    ASSERT_NE(d.target, nullptr);
    std::string out;
    d.write_head(out, "", 1);
    EXPECT_EQ(out, "POST /a HTTP/1.1\r\nHost: collector.example\r\nUser-Agent: ua/1\r\nContent-Length: 1\r\n\r\n");
  }
  {
    const Dest d(client, "http://[::1]:9/x", {});
    ASSERT_NE(d.target, nullptr);
    EXPECT_EQ(d.target->host, client.host("::1", 9));
    std::string out;
    d.write_head(out, "", 1);
    EXPECT_NE(out.find("\r\nHost: [::1]:9\r\n"), std::string::npos) << out;
  }
  {
    // A URL without a path posts to "/".
    const Dest d(client, "http://127.0.0.1:4318", {});
    ASSERT_NE(d.target, nullptr);
    std::string out;
    d.write_head(out, "", 1);
    EXPECT_EQ(out.substr(0, out.find("\r\n")), "POST / HTTP/1.1");
  }
  EXPECT_EQ(client.open_connections(), 0u);
}

TEST(Http1Target, LeavesWhatItDoesNotServeToCurl) {
  Http1Client client(Http1Options{});
  const std::vector<std::string_view> none;
  for (const char* url : {"https://127.0.0.1:1/v1/traces", "http://u:p@127.0.0.1:1/", "http://u@127.0.0.1:1/",
                          "ftp://127.0.0.1:1/", "http://127.0.0.1:99999/", "not a url",
                          "http://[fe80::1%25eth0]:1/"}) {
    EXPECT_EQ(Http1Target::make(url, none, false, client), nullptr) << url;
  }
  // At most 32 header lines.
  std::vector<std::string> owned;
  for (int i = 0; i < 33; ++i) owned.push_back("X-H" + std::to_string(i) + ": v");
  std::vector<std::string_view> lines(owned.begin(), owned.end());
  EXPECT_EQ(Http1Target::make("http://127.0.0.1:1/", lines, false, client), nullptr);
  lines.pop_back();
  EXPECT_NE(Http1Target::make("http://127.0.0.1:1/", lines, false, client), nullptr);
  // A path byte curl would escape (non-ASCII): curl sends it escaped.
  EXPECT_EQ(Http1Target::make("http://127.0.0.1:1/p/\xc3\xbc/x", none, false, client), nullptr);
  // A framing or connection line with a value the caller wants sent (curl sends it; this client
  // frames the body itself), any case.
  for (const char* line : {"Content-Length: 99", "Transfer-Encoding: chunked", "Connection: close",
                           "Expect: 100-continue", "content-length: 98", "CONNECTION: close"}) {
    const std::vector<std::string_view> one{line};
    EXPECT_EQ(Http1Target::make("http://127.0.0.1:1/", one, false, client), nullptr) << line;
  }
}

TEST(Http1Client, SendsTheRequestHeadThenExactlyTheBody) {
  Server server(answer_each(std::string(kOk)));
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  EXPECT_EQ(c.x.status, 200);
  EXPECT_EQ(c.got.body, "ok");
  ASSERT_TRUE(server.wait_requests(1));
  const auto r = server.requests().at(0);
  const std::string p = std::to_string(server.port());
  EXPECT_EQ(r.head, "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:" + p +
                        "\r\nUser-Agent: ua/1\r\nContent-Type: application/json\r\nX-Key: k\r\n"
                        "Content-Length: " + std::to_string(c.body.size()) + "\r\n\r\n");
  EXPECT_EQ(r.body, c.body);

  // With a Content-Encoding line.
  Call z(t);
  z.encoding_line = "Content-Encoding: gzip\r\n";
  z.reset(t);
  ASSERT_TRUE(d.run(z.x));
  EXPECT_EQ(z.x.code, 0);
  ASSERT_TRUE(server.wait_requests(2));
  const auto r2 = server.requests().at(1);
  EXPECT_EQ(r2.values("content-encoding"), std::vector<std::string>{"gzip"});
  EXPECT_EQ(r2.values("content-length"), std::vector<std::string>{std::to_string(z.body.size())});
  EXPECT_EQ(r2.head, "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:" + p +
                         "\r\nUser-Agent: ua/1\r\nContent-Type: application/json\r\nX-Key: k\r\n"
                         "Content-Encoding: gzip\r\nContent-Length: " + std::to_string(z.body.size()) +
                         "\r\n\r\n");
  EXPECT_EQ(r2.body, z.body);

  // An empty body: Content-Length: 0 and nothing after the head.
  Call e(t);
  e.body.clear();
  e.reset(t);
  e.x.body = nullptr;
  ASSERT_EQ(e.x.size, 0u);
  ASSERT_TRUE(d.run(e.x));
  EXPECT_EQ(e.x.code, 0);
  ASSERT_TRUE(server.wait_requests(3));
  EXPECT_EQ(server.requests().at(2).values("content-length"), std::vector<std::string>{"0"});
  EXPECT_EQ(server.requests().at(2).body, "");
  EXPECT_EQ(server.accepts(), 1u);
}

// A large body, with a small server receive buffer and a server that waits before reading.
// Loopback send buffers grow to tcp_wmem's maximum (4 MiB by default), so 1 MiB may still go
// out in one sendmsg(); 16 MiB cannot: the rest must go out on EPOLLOUT.
void send_large_body(std::size_t size) {
  Server server(
      [](Peer& p) {
        std::this_thread::sleep_for(100ms);
        while (p.read_request()) {
          if (!p.write(kOk)) return;
        }
      },
      Server::Options{.v4 = true, .v6 = false, .rcvbuf = 4096});
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  c.body.resize(size);
  for (std::size_t i = 0; i < c.body.size(); ++i) c.body[i] = static_cast<char>('a' + (i * 7919) % 26);
  c.reset(t, 30s);  // 16 MiB through a 4 KiB receive buffer: seconds under ThreadSanitizer and load
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  EXPECT_EQ(c.x.status, 200);
  ASSERT_TRUE(server.wait_requests(1));
  const auto r = server.requests().at(0);
  EXPECT_EQ(r.values("content-length"), std::vector<std::string>{std::to_string(size)});
  EXPECT_TRUE(r.body == c.body) << "body differs (" << r.body.size() << " bytes received)";
  // And the connection is still good for the next one.
  Call again(t);
  ASSERT_TRUE(d.run(again.x));
  EXPECT_EQ(again.x.code, 0);
  EXPECT_EQ(again.x.connects, 0);
}

TEST(Http1Client, SendsAOneMegabyteBody) { send_large_body(1u << 20); }

TEST(Http1Client, SendsASixteenMegabyteBodyThroughPartialWrites) { send_large_body(16u << 20); }

TEST(Http1Client, HeaderLinesFollowCurlsRules) {
  Server server(answer_each(std::string(kOk)));
  const std::string p = std::to_string(server.port());
  Http1Client client(Http1Options{});
  Driver d(client);

  // An empty value is not sent.
  {
    const Dest t(client, server.url(), {"X-Empty:", "X-Key: k"});
    Call c(t);
    ASSERT_TRUE(d.run(c.x));
    EXPECT_EQ(c.x.code, 0);
  }
  // The caller's Host and User-Agent replace the client's own.
  {
    const Dest t(client, server.url(), {"Host: collector.example", "User-Agent: mine/2"});
    Call c(t);
    ASSERT_TRUE(d.run(c.x));
    EXPECT_EQ(c.x.code, 0);
  }
  // Framing and connection lines with an empty value are not sent (as curl: an empty value
  // removes the header; with a value, curl serves the destination: LeavesWhatItDoesNotServeToCurl).
  {
    const Dest t(client, server.url(),
                 {"Content-Length:", "Transfer-Encoding: ", "Connection:", "Expect:", "X-Key: k"});
    Call c(t);
    ASSERT_TRUE(d.run(c.x));
    EXPECT_EQ(c.x.code, 0);
  }
  ASSERT_TRUE(server.wait_requests(3));
  const auto rs = server.requests();

  EXPECT_TRUE(rs[0].values("x-empty").empty()) << rs[0].head;
  EXPECT_EQ(rs[0].values("x-key"), std::vector<std::string>{"k"});

  EXPECT_EQ(rs[1].values("host"), std::vector<std::string>{"collector.example"}) << rs[1].head;
  EXPECT_EQ(rs[1].values("user-agent"), std::vector<std::string>{"mine/2"}) << rs[1].head;

  EXPECT_EQ(rs[2].values("content-length"), std::vector<std::string>{std::to_string(kBody.size())})
      << rs[2].head;
  EXPECT_TRUE(rs[2].values("transfer-encoding").empty()) << rs[2].head;
  EXPECT_TRUE(rs[2].values("connection").empty()) << rs[2].head;
  EXPECT_TRUE(rs[2].values("expect").empty()) << rs[2].head;
  EXPECT_EQ(rs[2].values("x-key"), std::vector<std::string>{"k"});
  EXPECT_EQ(rs[2].values("host"), std::vector<std::string>{"127.0.0.1:" + p});
  // No Connection: close went out, so the connection was kept.
  EXPECT_EQ(server.accepts(), 1u);
}

TEST(Http1Client, KeepsTheQueryString) {
  Server server(answer_each(std::string(kOk)));
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url("/v1/traces?tenant=a&x=%2F"));
  Call c(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  ASSERT_TRUE(server.wait_requests(1));
  EXPECT_EQ(server.requests().at(0).request_line(), "POST /v1/traces?tenant=a&x=%2F HTTP/1.1");
}

TEST(Http1Client, IPv6LiteralHostHeaderHasBrackets) {
  std::unique_ptr<Server> server;
  try {
    server = std::make_unique<Server>(answer_each(std::string(kOk)),
                                      Server::Options{.v4 = false, .v6 = true, .rcvbuf = 0});
  } catch (const std::exception&) {
    GTEST_SKIP() << "::1 not available";
  }
  const std::string p = std::to_string(server->port());
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, "http://[::1]:" + p + "/v1/traces");
  EXPECT_EQ(t.target->host, client.host("::1", server->port()));
  Call c(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  EXPECT_EQ(c.x.status, 200);
  ASSERT_TRUE(server->wait_requests(1));
  EXPECT_EQ(server->requests().at(0).values("host"), std::vector<std::string>{"[::1]:" + p});
}

// ==========================================================================================
// 2. Answers.

// One answer script per connection: reads one request, writes `answer` (1-byte writes when
// `bytewise`), then keeps answering later requests with kOk.
Server::Script first_then_ok(std::string answer, bool bytewise = false) {
  return [answer = std::move(answer), bytewise](Peer& p) {
    if (!p.read_request()) return;
    if (!(bytewise ? p.write_bytewise(answer) : p.write(answer))) return;
    while (p.read_request()) {
      if (!p.write(kOk)) return;
    }
  };
}

TEST(Http1Client, ContentLengthBody) {
  Server server(first_then_ok("HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: b\r\n\r\nhello world"));
  One o(server.url());
  ASSERT_TRUE(o.finished);
  EXPECT_EQ(o.call.x.code, 0);
  EXPECT_EQ(o.call.x.status, 200);
  EXPECT_EQ(o.call.x.connects, 1);
  EXPECT_FALSE(o.call.x.blocked);
  EXPECT_EQ(o.call.got.body, "hello world");
  EXPECT_FALSE(o.call.got.bad_call);
}

TEST(Http1Client, HeaderLinesReachOnHeaderOneByOneWithCrlfStatusFirst) {
  Server server(first_then_ok(
      "HTTP/1.1 429 Too Many Requests\r\nContent-Length: 2\r\nRetry-After: 7\r\nX-A: b\r\n\r\nno"));
  One o(server.url());
  ASSERT_TRUE(o.finished);
  EXPECT_EQ(o.call.x.code, 0);
  EXPECT_EQ(o.call.x.status, 429);
  EXPECT_EQ(o.call.got.body, "no");
  const auto& calls = o.call.got.calls;
  ASSERT_GE(calls.size(), 4u) << o.call.got.head;
  EXPECT_EQ(calls[0], "HTTP/1.1 429 Too Many Requests\r\n");
  EXPECT_EQ(calls[1], "Content-Length: 2\r\n");
  EXPECT_EQ(calls[2], "Retry-After: 7\r\n");
  EXPECT_EQ(calls[3], "X-A: b\r\n");
  // Every call is one line with its CRLF (curl also passes the blank line; not required here).
  for (const auto& line : calls) {
    ASSERT_GE(line.size(), 2u);
    EXPECT_EQ(line.substr(line.size() - 2), "\r\n");
    EXPECT_EQ(line.find("\r\n"), line.size() - 2) << "more than one line in one call";
  }
  EXPECT_LE(calls.size(), 5u);
  if (calls.size() == 5) {
    EXPECT_EQ(calls[4], "\r\n");
  }
}

TEST(Http1Client, ChunkedBodyInOneByteWritesWithExtensionsAndTrailers) {
  Server server(first_then_ok(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: b\r\n\r\n"
      "5;ext=1;q=\"x\"\r\nhello\r\n6\r\n world\r\nA\r\n0123456789\r\n"
      "0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n",
      /*bytewise=*/true));
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  EXPECT_EQ(c.x.status, 200);
  EXPECT_EQ(c.got.body, "hello world0123456789");
  EXPECT_EQ(status_line(c.got.head), "HTTP/1.1 200 OK\r\n");
  ASSERT_GE(c.got.calls.size(), 3u);
  EXPECT_EQ(c.got.calls[1], "Transfer-Encoding: chunked\r\n");
  EXPECT_EQ(c.got.calls[2], "X-A: b\r\n");
  // The framing was consumed exactly: the next exchange reuses the connection.
  Call next(t);
  ASSERT_TRUE(d.run(next.x));
  EXPECT_EQ(next.x.code, 0);
  EXPECT_EQ(next.got.body, "ok");
  EXPECT_EQ(next.x.connects, 0);
  EXPECT_EQ(server.accepts(), 1u);
}

TEST(Http1Client, BodyDelimitedByConnectionClose) {
  Server server([](Peer& p) {
    if (!p.read_request()) return;
    p.write("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the ");
    std::this_thread::sleep_for(20ms);
    p.write("end");
  });
  One o(server.url());
  ASSERT_TRUE(o.finished);
  EXPECT_EQ(o.call.x.code, 0);
  EXPECT_EQ(o.call.x.status, 200);
  EXPECT_EQ(o.call.got.body, "until the end");
  EXPECT_EQ(o.client.open_connections(), 0u);
}

TEST(Http1Client, NoContentAnswerHasNoBodyAndKeepsTheConnection) {
  Server server(first_then_ok("HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n"));
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  ASSERT_TRUE(d.run(c.x, 2s));
  EXPECT_EQ(c.x.code, 0);
  EXPECT_EQ(c.x.status, 204);
  EXPECT_EQ(c.got.body, "");
  Call next(t);
  ASSERT_TRUE(d.run(next.x));
  EXPECT_EQ(next.x.code, 0);
  EXPECT_EQ(next.got.body, "ok");
  EXPECT_EQ(next.x.connects, 0);
}

TEST(Http1Client, ContinueBeforeTheFinalAnswer) {
  Server server(first_then_ok(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone"));
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  EXPECT_EQ(c.x.status, 200);
  EXPECT_EQ(c.got.body, "done");
  ASSERT_FALSE(c.got.calls.empty());
  EXPECT_EQ(c.got.calls[0], "HTTP/1.1 100 Continue\r\n");
  EXPECT_NE(std::find(c.got.calls.begin(), c.got.calls.end(), "HTTP/1.1 200 OK\r\n"), c.got.calls.end())
      << c.got.head;
  EXPECT_NE(std::find(c.got.calls.begin(), c.got.calls.end(), "Content-Length: 4\r\n"), c.got.calls.end());
  Call next(t);
  ASSERT_TRUE(d.run(next.x));
  EXPECT_EQ(next.x.code, 0);
  EXPECT_EQ(next.x.connects, 0);
}

TEST(Http1Client, ServiceUnavailableIsAnAnswer) {
  Server server(first_then_ok(
      "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\nContent-Length: 4\r\n\r\nbusy"));
  One o(server.url());
  ASSERT_TRUE(o.finished);
  EXPECT_EQ(o.call.x.code, 0);
  EXPECT_EQ(o.call.x.status, 503);
  EXPECT_EQ(o.call.got.body, "busy");
  EXPECT_NE(o.call.got.head.find("Retry-After: 3\r\n"), std::string::npos) << o.call.got.head;
}

// ==========================================================================================
// 3. Keep-alive.

TEST(Http1Client, SequentialExchangesReuseOneConnection) {
  Server server(answer_each(std::string(kOk)));
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  for (int i = 0; i < 20; ++i) {
    c.reset(t);
    ASSERT_TRUE(d.run(c.x)) << i;
    EXPECT_EQ(c.x.code, 0) << i;
    EXPECT_EQ(c.x.status, 200) << i;
    EXPECT_EQ(c.got.body, "ok") << i;
    EXPECT_EQ(c.x.connects, i == 0 ? 1 : 0) << i;
    EXPECT_EQ(client.open_connections(), 1u) << i;
  }
  EXPECT_EQ(server.accepts(), 1u);
  ASSERT_TRUE(server.wait_requests(20));
  for (const auto& r : server.requests()) EXPECT_EQ(r.conn, 1u);
  EXPECT_TRUE(d.stray().empty());
}

TEST(Http1Client, ConnectionCloseInTheAnswerOpensANewConnectionNext) {
  Server server([](Peer& p) {
    if (!p.read_request()) return;
    p.write("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok");
    p.hang();  // the client must close it
  });
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  EXPECT_EQ(c.got.body, "ok");
  EXPECT_EQ(client.open_connections(), 0u);
  c.reset(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  EXPECT_EQ(c.x.connects, 1);
  EXPECT_EQ(server.accepts(), 2u);
  EXPECT_TRUE(server.wait_all_closed());  // the client closed both
}

TEST(Http1Client, Http10AnswerWithoutKeepAliveOpensANewConnectionNext) {
  Server server([](Peer& p) {
    if (!p.read_request()) return;
    p.write("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
    p.hang();
  });
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  EXPECT_EQ(c.x.status, 200);
  EXPECT_EQ(c.got.body, "ok");
  EXPECT_EQ(client.open_connections(), 0u);
  c.reset(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  EXPECT_EQ(c.x.connects, 1);
  EXPECT_EQ(server.accepts(), 2u);
}

// ==========================================================================================
// 4. A kept-alive connection the server closed.

// Connection 1 answers one request and closes (no Connection: close); later ones answer all.
Server::Script answer_once_then_close_on_first() {
  return [](Peer& p) {
    if (p.id() == 1) {
      if (p.read_request()) p.write(kOk);
      return;  // closed after answering
    }
    while (p.read_request()) {
      if (!p.write(kOk)) return;
    }
  };
}

TEST(Http1Client, IdleConnectionClosedByTheServerIsDropped) {
  Server server(answer_once_then_close_on_first());
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  // The server closes; the idle connection becomes readable and is closed at once.
  ASSERT_TRUE(server.wait_all_closed());
  d.idle(50ms);
  EXPECT_EQ(client.open_connections(), 0u);
  c.reset(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  EXPECT_EQ(c.x.status, 200);
  EXPECT_EQ(c.x.connects, 1);
  ASSERT_TRUE(server.wait_requests(2));
  const auto rs = server.requests();
  EXPECT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[1].conn, 2u);
  EXPECT_EQ(server.accepts(), 2u);
}

TEST(Http1Client, RequestOnAConnectionTheServerJustClosedIsSentOnceMore) {
  // The second request starts right after the first answer, before any perform() could see
  // the close: either it is written to the closed connection and sent again on a new one, or
  // the close was already seen. Either way: answered, one complete request on connection 2.
  Server server(answer_once_then_close_on_first());
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  ASSERT_TRUE(server.wait_all_closed());  // closed on the server side, not yet seen by the client
  c.reset(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  EXPECT_EQ(c.x.status, 200);
  EXPECT_EQ(c.got.body, "ok");
  EXPECT_EQ(c.x.connects, 1);
  ASSERT_TRUE(server.wait_requests(2));
  const auto rs = server.requests();
  ASSERT_EQ(rs.size(), 2u);
  EXPECT_EQ(rs[1].conn, 2u);
  EXPECT_EQ(rs[1].body, c.body);
  EXPECT_EQ(server.accepts(), 2u);
}

TEST(Http1Client, ReusedConnectionGettingNothingIsResentOnceOnly) {
  // Connection 1 answers the first request, then reads the second and closes without an
  // answer (deterministic: the connection is open when the second request is written). Every
  // later connection reads a request and closes without answering.
  Server server([](Peer& p) {
    if (p.id() == 1) {
      if (!p.read_request() || !p.write(kOk)) return;
    }
    p.read_request();
  });
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  c.reset(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 52);
  EXPECT_EQ(c.x.status, 0);
  EXPECT_EQ(c.x.connects, 1);  // the one re-send
  d.idle(200ms);
  EXPECT_EQ(server.accepts(), 2u);
  EXPECT_EQ(server.request_count(), 3u);
  EXPECT_TRUE(d.stray().empty());
}

TEST(Http1Client, ServerClosingEveryNewConnectionWithoutAnswerGivesNothing) {
  Server server([](Peer& p) { p.read_request(); });
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 52);
  EXPECT_EQ(c.x.status, 0);
  d.idle(200ms);
  // A new connection that got nothing is not sent again.
  EXPECT_EQ(server.accepts(), 1u);
  EXPECT_EQ(server.request_count(), 1u);
  EXPECT_EQ(client.open_connections(), 0u);
  EXPECT_TRUE(d.stray().empty());
}

TEST(Http1Client, AfterAnyAnswerByteTheRequestIsNeverResent) {
  // Connection 1 answers the first request; for the second it writes part of a status line
  // and closes. The client must not send the request again (the server may have acted on it).
  Server server([](Peer& p) {
    if (!p.read_request() || !p.write(kOk)) return;
    if (p.read_request()) p.write("HTTP/1.1 20");
  });
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  c.reset(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_NE(c.x.code, 0);
  EXPECT_NE(c.x.code, 52) << "bytes arrived: not 'nothing'";
  EXPECT_EQ(c.x.connects, 0);
  d.idle(100ms);
  EXPECT_EQ(server.accepts(), 1u);
  EXPECT_EQ(server.request_count(), 2u);
  std::printf("[ info ] partial status line then close: code %d\n", c.x.code);
}

// ==========================================================================================
// 5. Failures.

TEST(Http1Client, ConnectRefused) {
  One o("http://127.0.0.1:" + std::to_string(test::unused_port()) + "/v1/traces");
  ASSERT_TRUE(o.finished);
  EXPECT_EQ(o.call.x.code, 7);
  EXPECT_EQ(o.call.x.status, 0);
  EXPECT_FALSE(o.call.x.blocked);
  EXPECT_LT(o.took, 1000ms) << "a refused connect did not wake the caller";
  EXPECT_EQ(o.client.open_connections(), 0u);
}

TEST(Http1Client, DeadlinePassesWhileTheServerNeverAnswers) {
  Server server([](Peer& p) {
    if (p.read_request()) p.hang();
  });
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t, 300ms);
  const auto begin = Clock::now();
  client.start(&c.x, begin);
  ASSERT_TRUE(d.wait1(c.x, 5s));
  const auto took = Clock::now() - begin;
  EXPECT_EQ(c.x.code, 28);
  EXPECT_EQ(c.x.status, 0);
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 3s);
  EXPECT_EQ(client.open_connections(), 0u);
  EXPECT_TRUE(server.wait_all_closed());
}

TEST(Http1Client, HalfABodyThenCloseIsAShortBody) {
  Server server([](Peer& p) {
    if (p.read_request()) p.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello");
  });
  One o(server.url());
  ASSERT_TRUE(o.finished);
  EXPECT_EQ(o.call.x.code, 18);
  EXPECT_EQ(o.call.got.body, "hello");
  EXPECT_EQ(o.client.open_connections(), 0u);
}

TEST(Http1Client, ChunkedBodyCutShortIsAShortBody) {
  Server server([](Peer& p) {
    if (p.read_request()) p.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
  });
  One o(server.url());
  ASSERT_TRUE(o.finished);
  EXPECT_EQ(o.call.x.code, 18);
  EXPECT_EQ(o.client.open_connections(), 0u);
}

TEST(Http1Client, ResetMidAnswer) {
  Server server([](Peer& p) {
    if (!p.read_request()) return;
    p.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhel");
    std::this_thread::sleep_for(30ms);
    p.reset();
  });
  One o(server.url());
  ASSERT_TRUE(o.finished);
  EXPECT_TRUE(o.call.x.code == 56 || o.call.x.code == 18) << o.call.x.code;
  EXPECT_EQ(o.client.open_connections(), 0u);
}

TEST(Http1Client, GarbageAnswerIsNotHttp) {
  Server server([](Peer& p) {
    if (p.read_request()) p.write("hello\r\n\r\n");
    p.hang();
  });
  One o(server.url());
  ASSERT_TRUE(o.finished);
  EXPECT_EQ(o.call.x.code, 1);  // CURLE_UNSUPPORTED_PROTOCOL, as curl 7.88 reports HTTP/0.9
  EXPECT_EQ(o.call.x.status, 0);
  EXPECT_EQ(o.client.open_connections(), 0u);
}

TEST(Http1Client, CallbacksTakingLessAbortWithWriteError) {
  Server server(answer_each("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"));
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());

  Call body(t);
  body.got.refuse_body = true;
  ASSERT_TRUE(d.run(body.x));
  EXPECT_EQ(body.x.code, 23);
  EXPECT_EQ(body.x.status, 200);

  Call head(t);
  head.got.refuse_header = true;
  ASSERT_TRUE(d.run(head.x));
  EXPECT_EQ(head.x.code, 23);
  EXPECT_EQ(head.got.body, "");

  // The client stays usable.
  Call ok(t);
  ASSERT_TRUE(d.run(ok.x));
  EXPECT_EQ(ok.x.code, 0);
  EXPECT_EQ(ok.got.body, "hello");
  EXPECT_LE(client.open_connections(), 1u);
  EXPECT_TRUE(d.stray().empty());
}

TEST(Http1Client, AReusedExchangeIgnoresTheTimerOfItsEarlierUse) {
  // Use 1 has a 100 ms deadline and is answered at once; use 2 of the same Http1Exchange has
  // 3 s and is answered after 300 ms: the timer of use 1 must not time out use 2.
  Server server([](Peer& p) {
    if (!p.read_request() || !p.write(kOk)) return;
    while (p.read_request()) {
      std::this_thread::sleep_for(300ms);
      if (!p.write(kOk)) return;
    }
  });
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t, 100ms);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  c.reset(t, 3000ms);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  EXPECT_EQ(c.x.status, 200);
  EXPECT_EQ(c.got.body, "ok");
}

TEST(Http1Client, DeadlinePassesWhileWaitingForAConnection) {
  // One connection per host, held by an exchange the server never answers: the next one
  // waits in the host's FIFO; its deadline passes there (28) and it is never sent.
  Server server([](Peer& p) {
    if (p.read_request()) p.hang();
  });
  Http1Options options;
  options.max_per_host = 1;
  Http1Client client(options);
  Driver d(client);
  const Dest t(client, server.url());
  Call first(t, 3000ms);
  Call queued(t, 200ms);
  client.start(&first.x, Clock::now());
  client.start(&queued.x, Clock::now());
  const auto begin = Clock::now();
  ASSERT_TRUE(d.wait1(queued.x, 3s));
  EXPECT_EQ(queued.x.code, 28);
  EXPECT_GE(Clock::now() - begin, 150ms);
  EXPECT_EQ(queued.x.connects, 0);
  EXPECT_EQ(server.request_count(), 1u);
  client.cancel(&first.x);
  EXPECT_EQ(client.open_connections(), 0u);
}

TEST(Http1Client, SocketEventsWakeTheEpollDescriptor) {
  // The sender sleeps on fd() until next_wake(): an answer arriving must make fd() readable
  // (the driver's poll cap is 2 s here, the answer comes after 50 ms).
  Server server([](Peer& p) {
    while (p.read_request()) {
      std::this_thread::sleep_for(50ms);
      if (!p.write(kOk)) return;
    }
  });
  Http1Client client(Http1Options{});
  Driver d(client);
  d.cap = 2000ms;
  const Dest t(client, server.url());
  Call c(t, 5000ms);
  const auto begin = Clock::now();
  ASSERT_TRUE(d.run(c.x, 5s));
  EXPECT_EQ(c.x.code, 0);
  EXPECT_LT(Clock::now() - begin, 1000ms) << "fd() did not wake the caller";
}

// ==========================================================================================
// 6. The per-host connection cap.

TEST(Http1Client, PerHostCapBoundsConnectionsAndQueuesTheRest) {
  Server server([](Peer& p) {
    while (p.read_request()) {
      std::this_thread::sleep_for(100ms);
      if (!p.write(kOk)) return;
    }
  });
  Http1Options options;
  options.max_per_host = 2;
  Http1Client client(options);
  Driver d(client);
  const Dest t(client, server.url());
  std::vector<std::unique_ptr<Call>> calls;
  std::vector<Http1Exchange*> xs;
  for (int i = 0; i < 6; ++i) {
    calls.push_back(std::make_unique<Call>(t));
    xs.push_back(&calls.back()->x);
  }
  const auto begin = Clock::now();
  for (auto* x : xs) client.start(x, Clock::now());
  EXPECT_LE(client.open_connections(), 2u);
  std::size_t most = 0;
  ASSERT_TRUE(d.wait(xs, 5s, [&] { most = std::max(most, client.open_connections()); }));
  EXPECT_GE(Clock::now() - begin, 250ms);  // three rounds of 100 ms on two connections
  EXPECT_LE(most, 2u);
  EXPECT_LE(server.max_concurrent(), 2);
  EXPECT_EQ(server.accepts(), 2u);
  long connects = 0;
  for (const auto& c : calls) {
    EXPECT_EQ(c->x.code, 0);
    EXPECT_EQ(c->x.status, 200);
    EXPECT_EQ(c->got.body, "ok");
    connects += c->x.connects;
  }
  EXPECT_EQ(connects, 2);
  EXPECT_EQ(server.request_count(), 6u);
}

// With a `timeout`, an exchange that waited for a connection gets its whole timeout again once
// it has one: behind a slow host at its cap, the last of three (each answered after 150 ms on
// one connection) is sent at ~300 ms and still has 250 ms, instead of being sent with its time
// nearly gone and abandoned while the server processes it (a duplicate after the retry).
TEST(Http1Client, AnExchangeThatWaitedForTheCapGetsItsWholeTimeoutOnceSent) {
  Server server([](Peer& p) {
    while (p.read_request()) {
      std::this_thread::sleep_for(150ms);
      if (!p.write(kOk)) return;
    }
  });
  Http1Options options;
  options.max_per_host = 1;
  Http1Client client(options);
  Driver d(client);
  const Dest t(client, server.url());
  std::vector<std::unique_ptr<Call>> calls;
  std::vector<Http1Exchange*> xs;
  const auto now = Clock::now();
  for (int i = 0; i < 3; ++i) {
    calls.push_back(std::make_unique<Call>(t));
    calls.back()->x.timeout = 250ms;
    calls.back()->x.deadline = now + 400ms;  // waiting is bounded by this
    xs.push_back(&calls.back()->x);
  }
  for (auto* x : xs) client.start(x, now);
  ASSERT_TRUE(d.wait(xs, 5s));
  for (const auto& c : calls) {
    EXPECT_EQ(c->x.code, 0) << "a request sent late was given up on";
    EXPECT_EQ(c->x.status, 200);
  }
  EXPECT_EQ(server.request_count(), 3u);
  // Waiting stays bounded: a fourth that cannot get the connection before its deadline times
  // out without being sent.
  Call late(t);
  late.x.timeout = 250ms;
  Call blocker(t);
  blocker.x.timeout = 1000ms;
  blocker.x.deadline = Clock::now() + 1000ms;
  client.start(&blocker.x, Clock::now());
  late.x.deadline = Clock::now() + 50ms;
  client.start(&late.x, Clock::now());
  std::vector<Http1Exchange*> both{&blocker.x, &late.x};
  ASSERT_TRUE(d.wait(both, 5s));
  EXPECT_EQ(late.x.code, 28);
  EXPECT_EQ(blocker.x.code, 0);
  EXPECT_EQ(server.request_count(), 4u) << "the late one must never have been sent";
}

// ==========================================================================================
// 7. Egress.

TEST(Http1Client, EgressGateRefusesLoopbackUnlessAllowed) {
  Server server(answer_each(std::string(kOk)));
  {
    const detail::EgressGate gate{EgressPolicy{}};
    ASSERT_TRUE(gate.enforcing());
    Http1Options o;
    o.gate = &gate;
    One one(server.url(), o);
    ASSERT_TRUE(one.finished);
    EXPECT_TRUE(one.call.x.blocked);
    EXPECT_EQ(one.call.x.code, 7);
    EXPECT_LT(one.took, 1000ms) << "a refused address did not wake the caller";
    EXPECT_EQ(one.call.x.status, 0);
    EXPECT_EQ(one.client.open_connections(), 0u);
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(server.accepts(), 0u);
  }
  {
    EgressPolicy policy;
    policy.allow_cidrs = {"127.0.0.1/32"};
    const detail::EgressGate gate{policy};
    Http1Options o;
    o.gate = &gate;
    One one(server.url(), o);
    ASSERT_TRUE(one.finished);
    EXPECT_FALSE(one.call.x.blocked);
    EXPECT_EQ(one.call.x.code, 0);
    EXPECT_EQ(one.call.x.status, 200);
  }
  {
    const detail::EgressGate gate{EgressPolicy{}};
    Http1Options o;
    o.gate = &gate;
    One one(server.url(), o, {"X-Key: k"}, /*host_allowed=*/true);
    ASSERT_TRUE(one.finished);
    EXPECT_FALSE(one.call.x.blocked);
    EXPECT_EQ(one.call.x.code, 0);
    EXPECT_EQ(one.call.x.status, 200);
  }
  EXPECT_EQ(server.accepts(), 2u);
}

// ==========================================================================================
// 8. Name resolution on the resolver thread ("localhost" only).

TEST(Http1Client, ResolvesLocalhost) {
  std::unique_ptr<Server> server;
  try {
    server = std::make_unique<Server>(answer_each(std::string(kOk)),
                                      Server::Options{.v4 = true, .v6 = true, .rcvbuf = 0});
  } catch (const std::exception&) {
    server = std::make_unique<Server>(answer_each(std::string(kOk)));  // 127.0.0.1 only
  }
  const std::string p = std::to_string(server->port());
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, "http://localhost:" + p + "/v1/traces");
  EXPECT_EQ(t.target->host, client.host("localhost", server->port()));
  d.cap = 2000ms;  // the resolver's answer must wake fd()
  Call c(t);
  const auto begin = Clock::now();
  ASSERT_TRUE(d.run(c.x));
  EXPECT_LT(Clock::now() - begin, 1000ms) << "the resolver's answer did not wake fd()";
  EXPECT_EQ(c.x.code, 0);
  EXPECT_EQ(c.x.status, 200);
  EXPECT_EQ(c.x.connects, 1);
  ASSERT_TRUE(server->wait_requests(1));
  EXPECT_EQ(server->requests().at(0).values("host"), std::vector<std::string>{"localhost:" + p});
  // Resolved once; the second exchange reuses the connection.
  c.reset(t);
  ASSERT_TRUE(d.run(c.x));
  EXPECT_EQ(c.x.code, 0);
  EXPECT_EQ(c.x.connects, 0);
  EXPECT_EQ(server->accepts(), 1u);
}

// ==========================================================================================
// 9. cancel().

TEST(Http1Client, CancelAbandonsAnInFlightExchange) {
  Server server([](Peer& p) {
    if (p.id() == 1) {
      if (p.read_request()) p.hang();
      return;
    }
    while (p.read_request()) {
      if (!p.write(kOk)) return;
    }
  });
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call hung(t);
  client.start(&hung.x, Clock::now());
  // Perform until the server has the request.
  for (int i = 0; i < 300 && server.request_count() == 0; ++i) d.idle(5ms);
  ASSERT_EQ(server.request_count(), 1u);
  EXPECT_EQ(client.open_connections(), 1u);
  client.cancel(&hung.x);
  EXPECT_EQ(client.open_connections(), 0u);
  EXPECT_TRUE(server.wait_all_closed());  // its connection was closed
  d.idle(100ms);
  Call ok(t);
  ASSERT_TRUE(d.run(ok.x));
  EXPECT_EQ(ok.x.code, 0);
  EXPECT_EQ(ok.x.connects, 1);
  d.idle(50ms);
  EXPECT_TRUE(d.stray().empty()) << "a cancelled exchange was returned";
}

TEST(Http1Client, CancelAnExchangeWaitingForAConnection) {
  Server server([](Peer& p) {
    if (p.id() == 1) {
      if (p.read_request()) p.hang();
      return;
    }
    while (p.read_request()) {
      if (!p.write(kOk)) return;
    }
  });
  Http1Options options;
  options.max_per_host = 1;
  Http1Client client(options);
  Driver d(client);
  const Dest t(client, server.url());
  Call first(t);
  Call queued(t);
  Call after(t);
  client.start(&first.x, Clock::now());
  client.start(&queued.x, Clock::now());
  client.start(&after.x, Clock::now());
  for (int i = 0; i < 300 && server.request_count() == 0; ++i) d.idle(5ms);
  ASSERT_EQ(server.request_count(), 1u);
  client.cancel(&queued.x);  // waiting in the host's FIFO
  client.cancel(&first.x);   // in flight: frees the host's one connection for `after`
  ASSERT_TRUE(d.wait1(after.x));
  EXPECT_EQ(after.x.code, 0);
  EXPECT_EQ(after.got.body, "ok");
  d.idle(50ms);
  EXPECT_TRUE(d.stray().empty()) << "a cancelled exchange was returned";
  EXPECT_EQ(server.request_count(), 2u);  // `queued` was never sent
  EXPECT_EQ(server.accepts(), 2u);
}

TEST(Http1Client, CancelBeforePerformReturnedIt) {
  // Finished at start() (connect refused at once, or soon after) but not yet returned: a
  // cancelled exchange is never returned.
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, "http://127.0.0.1:" + std::to_string(test::unused_port()) + "/v1/traces");
  Call c(t);
  client.start(&c.x, Clock::now());
  std::this_thread::sleep_for(20ms);
  client.cancel(&c.x);
  d.idle(100ms);
  EXPECT_TRUE(d.stray().empty());
  EXPECT_EQ(client.open_connections(), 0u);
  EXPECT_EQ(client.next_wake(), Clock::time_point::max())
      << "no exchange left, yet next_wake() is in "
      << std::chrono::duration_cast<std::chrono::milliseconds>(client.next_wake() - Clock::now()).count() << " ms";
}

TEST(Http1Client, CancelAfterTheDeadlineBeforePerformReturnsIt) {
  // A finished-but-not-returned exchange may be cancelled too: it is never returned after.
  Server server([](Peer& p) {
    if (p.read_request()) p.hang();
  });
  Http1Client client(Http1Options{});
  Driver d(client);
  const Dest t(client, server.url());
  Call c(t, 20ms);
  client.start(&c.x, Clock::now());
  std::this_thread::sleep_for(40ms);
  client.cancel(&c.x);
  d.idle(100ms);
  EXPECT_TRUE(d.stray().empty());
  EXPECT_EQ(client.open_connections(), 0u);
  EXPECT_EQ(client.next_wake(), Clock::time_point::max())
      << "no exchange left, yet next_wake() is in "
      << std::chrono::duration_cast<std::chrono::milliseconds>(client.next_wake() - Clock::now()).count() << " ms";
}

// ==========================================================================================
// 10. No allocation per request once warm.

struct WarmLoop {
  Http1Client client{Http1Options{}};
  Driver d{client};
  Dest dest;
  Call c;
  std::array<int, 64> codes{};
  std::array<long, 64> connects{};
  std::array<bool, 64> finished{};
  std::array<std::size_t, 64> body_sizes{};
  explicit WarmLoop(const std::string& url) : dest(client, url), c(dest) {
    c.got.fixed = true;
    c.got.head.reserve(1024);
    c.got.body.reserve(1024);
  }
  // n exchanges, one after the other; returns the calling thread's allocations.
  // Per exchange what the sender does: write the head into a reused buffer, set the fields.
  std::uint64_t run(int n, std::chrono::milliseconds deadline) {
    const test::AllocationScope scope;
    for (int i = 0; i < n; ++i) {
      c.reset(dest, deadline);
      c.x.code = -1;
      Http1Exchange* p = &c.x;
      client.start(p, Clock::now());
      finished[static_cast<std::size_t>(i)] = d.wait(std::span<Http1Exchange* const>(&p, 1), 5s, [] {});
      codes[static_cast<std::size_t>(i)] = c.x.code;
      connects[static_cast<std::size_t>(i)] = c.x.connects;
      body_sizes[static_cast<std::size_t>(i)] = c.got.body.size();
    }
    return scope.count();
  }
  void expect_all_ok(int n) {
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
      EXPECT_TRUE(finished[i]) << i;
      EXPECT_EQ(codes[i], 0) << i;
      EXPECT_EQ(connects[i], 0) << i;
      EXPECT_EQ(body_sizes[i], 2u) << i;
    }
  }
};

TEST(Http1Client, NoAllocationPerRequestOnceWarm) {
  Server server(answer_each(std::string(kOk)));
  WarmLoop w(server.url());
  // Warm-up: the connection, its buffers, and a timer heap that has held more entries than
  // the measured run will (stale entries may stay until their deadline passes).
  w.run(60, 200ms);
  std::this_thread::sleep_for(250ms);
  w.d.idle(10ms);
  const std::uint64_t allocations = w.run(50, 200ms);
  w.expect_all_ok(50);
  EXPECT_EQ(allocations, 0u) << "allocations in 50 warm exchanges";
  EXPECT_EQ(server.accepts(), 1u);
}

TEST(Http1Client, FewAllocationsAfterTenWarmUpExchanges) {
  // The header allows the timer heap to grow: after only 10 warm-up exchanges with long
  // deadlines, 50 more may grow it a few times (doubling), never once per request.
  Server server(answer_each(std::string(kOk)));
  WarmLoop w(server.url());
  w.run(10, 3000ms);
  const std::uint64_t allocations = w.run(50, 3000ms);
  w.expect_all_ok(50);
  EXPECT_LE(allocations, 4u) << "allocations in 50 exchanges after 10 warm-up ones";
  std::printf("[ info ] allocations in 50 exchanges after 10 warm-up ones: %llu\n",
              static_cast<unsigned long long>(allocations));
}

}  // namespace
}  // namespace tracecast
