// Internal: the sender's own HTTP/1.1 client for cleartext (http://) destinations. Not
// installed.
//
// Why not curl for these: on a kept-alive loopback or in-cluster connection, curl 7.88 spends
// ~35 µs of CPU per request of ~10 spans (README "CPU at gateway scale": per-transfer setup,
// ~45 heap calls, two polls of its own, the body copied into its upload buffer). A POST of an
// OTLP body over a kept-alive HTTP/1.1 connection needs one sendmsg() (request head and body
// gathered, never copied), one epoll wake-up and one or two read()s. TLS destinations, URLs
// with user info and anything this client does not do stay on curl.
//
// Model (one thread: the sender's; only the resolver runs on its own):
//   - Hosts ("host:port") are created on first use and live as long as the client. Each holds
//     its resolved addresses (re-resolved after 60 s; literals never), its idle kept-alive
//     connections (LIFO, each looked at with one peek before reuse, closed after
//     Http1Options::max_idle_age idle, 118 s as curl's default), its open count (at most
//     max_per_host when set) and the exchanges waiting for a connection, FIFO.
//   - Every socket is registered in one epoll set, level-triggered, for its whole life; an idle
//     connection that becomes readable (the server closed it, or sent bytes nobody asked for)
//     is closed at once. The epoll descriptor is what the sender's curl_multi_poll() also
//     watches, so one sleep covers both.
//   - A request on a reused connection that gets nothing back (the server closed it while it
//     was idle) is sent once more on a new connection, as curl does; after any response byte
//     it never is.
//   - Trains (HTTP/1.1 pipelining, RFC 9112 section 9.3.2): start() only queues; perform()
//     gives each host's queue its connections, and an idle kept-alive connection takes up to
//     Http1Options::max_train queued exchanges at once: heads and bodies in one sendmsg(),
//     answers parsed in order from the same reads. Only on a connection to an address the
//     operator vouches for (EgressGate::address_listed: allow-listed, or any when the policy
//     is off; HTTP/1.1 answers carry nothing that ties them to their request, so a proxy that
//     drops one pipelined request but answers the next would shift answers onto the wrong
//     requests), only to a host whose answers come back within Http1Options::train_latency,
//     only exchanges with the same timeout (so the first one's deadline comes first) and of
//     different owners, never on a new connection (it has not answered yet) nor for an
//     exchange already sent once. When the train ends early (an answer with Connection:
//     close, a malformed answer), the exchanges behind got nothing and are sent once more on
//     new connections; when a server closes or times out with a train outstanding without
//     saying so, it does not keep pipelined requests: trains stop for that host for the
//     client's life. A timeout ends the whole train (each exchange in it times out, as it
//     would have on its own a moment later).
//   - Host names are resolved by getaddrinfo() on one resolver thread (started at the first
//     name that is not an address literal), never on the sender's.
//   - Egress: every address is checked with EgressGate::address_allowed() before connect()
//     (unless the host is allow-listed by name), as the curl path's socket callback does.
// Results are curl codes (CURLcode values) so the sender classifies both paths with one
// function (classify_curl_code).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tracecast::detail {

class EgressGate;
struct Http1Host;
struct Http1Conn;

// What every request of one destination's snapshot shares, built at its first request (a
// quiet destination never has one): its host in the client, the request line and Host header,
// and which of its header lines are sent. One allocation of ~80 bytes.
class Http1Target {
 public:
  // The target for `url` when the client can serve it: http:// (not https), no user info or
  // zone id, a host and port curl's URL parser accepts, no byte in the path that curl would
  // escape (controls, space, non-ASCII), at most 32 header lines, none of them a
  // Content-Length, Transfer-Encoding, Connection or Expect line with a value (the client
  // frames the body itself). nullptr: use curl. Header lines are "Name: value" (the
  // destination's resolved lines); as with curl, a line with an empty value is not sent and a
  // Host or User-Agent line replaces the client's own. Sender thread (it creates the host in
  // `client`).
  [[nodiscard]] static std::unique_ptr<Http1Target, void (*)(Http1Target*)> make(
      const std::string& url, const std::vector<std::string_view>& header_lines, bool host_allowed,
      class Http1Client& client);

  // Writes the whole request head into `out` (cleared first; its capacity is reused, so no
  // allocation once it has grown): request line, Host, User-Agent, the header lines as given
  // to make() (the same sequence, in order: `const char*` or string_view items),
  // `encoding_line` ("" or "Content-Encoding: gzip\r\n"), Content-Length and the blank line.
  template <class Lines>
  void write_head(std::string& out, std::string_view user_agent, const Lines& lines, std::string_view encoding_line,
                       std::size_t body_size) const;

  Http1Host* host = nullptr;
  bool host_allowed = false;  // egress: the URL's host is allow-listed by name

 private:
  friend struct Http1TargetAccess;
  std::uint32_t skip_ = 0;  // bit i: header line i is not sent
  std::uint16_t first_size_ = 0;
  bool user_agent_ = true;  // the client's User-Agent line is sent
  [[nodiscard]] std::string_view first() const noexcept {
    return {reinterpret_cast<const char*>(this + 1), first_size_};
  }
  void head_start(std::string& out, std::string_view user_agent) const;
  [[nodiscard]] bool skips(std::size_t line) const noexcept { return line < 32 && ((skip_ >> line) & 1U) != 0; }
  static void head_end(std::string& out, std::string_view encoding_line, std::size_t body_size);
};

// Writes the head from any sequence of `const char*` or string_view lines (the sender's are
// curl_slist nodes walked by an adapter).
template <class Lines>
void Http1Target::write_head(std::string& out, std::string_view user_agent, const Lines& lines,
                                  std::string_view encoding_line, std::size_t body_size) const {
  head_start(out, user_agent);
  std::size_t i = 0;
  for (const std::string_view line : lines) {
    if (!skips(i++)) {
      out += line;
      out += "\r\n";
    }
  }
  head_end(out, encoding_line, body_size);
}

// curl's header and write callback signature: (data, 1, bytes, user) -> bytes taken. Fewer
// than given aborts the exchange with code 23 (CURLE_WRITE_ERROR), as in curl.
using Http1DataFn = std::size_t (*)(char*, std::size_t, std::size_t, void*);

// One request and its answer. The caller owns it and keeps it (and the target and body) alive
// until perform() hands it back or cancel() returns.
struct Http1Exchange {
  // ---- set by the caller before start() ----
  Http1Host* host = nullptr;  // Http1Target::host
  bool host_allowed = false;  // Http1Target::host_allowed
  std::string_view head;      // the whole request head (Http1Target::write_head)
  const char* body = nullptr;
  std::size_t size = 0;
  // Until when it may wait for a connection (a host at its cap, a name being resolved) and,
  // unless `timeout` is set, until when the whole exchange may take.
  std::chrono::steady_clock::time_point deadline{};
  // When set (> 0): an exchange that waited for a connection gets this long again from the
  // moment it has one, so a request is never sent with only a little of its time left (behind
  // a slow host at its cap that meant answers the server processed but the client had given up
  // on: retries and duplicates). A request that never got a connection in time was never sent.
  std::chrono::milliseconds timeout{0};
  // Whose request this is (the sender's destination), or nullptr. A train never holds two
  // exchanges of one owner: a destination's own requests in flight stay on separate
  // connections, answered in parallel as its max_in_flight intends (a train of one busy
  // destination's requests would be served one after another by the server).
  const void* owner = nullptr;
  Http1DataFn on_header = nullptr;  // every line of the head, status line first, CRLF included
  Http1DataFn on_body = nullptr;    // the body, decoded from chunked framing
  void* user = nullptr;
  // ---- results, valid when perform() returns it ----
  int code = 0;       // CURLcode: 0 answered; 6 resolve, 7 connect, 28 timeout, 55 send,
                      // 56 receive, 52 nothing, 18 short body, 1 not an HTTP/1.x answer (as curl),
                      // 8 a malformed one (bad length or chunk framing, an upgrade),
                      // 23 a callback took less
  long status = 0;    // HTTP status of the final answer (0: none)
  long connects = 0;  // connections opened for it
  bool blocked = false;  // the egress policy refused an address
  // ---- the client's ----
  Http1Conn* conn = nullptr;
  Http1Exchange* next = nullptr;  // a host's waiting FIFO, or the next of a connection's train
  std::uint64_t seq = 0;          // timer entries of an older use are stale
  std::uint32_t slot = 0;         // its entry in the client's table of live exchanges
  bool waiting = false;
  bool resent = false;            // sent again once on a new connection
  bool got_bytes = false;         // any byte of an answer arrived
};

struct Http1Options {
  std::chrono::milliseconds connect_timeout{5000};
  std::size_t max_per_host = 0;  // connections per host; 0: no cap
  std::size_t max_idle = 256;    // idle kept-alive connections over all hosts (oldest closed)
  // An idle connection is closed this long after its last answer, whether or not its host is
  // used again (curl's CURLOPT_MAXAGE_CONN default).
  std::chrono::milliseconds max_idle_age{118000};
  const EgressGate* gate = nullptr;  // nullptr or not enforcing: every address
  // Trains (HTTP/1.1 pipelining, RFC 9112 section 9.3.2): up to this many exchanges waiting
  // for one host go on one kept-alive connection in one sendmsg(), their answers read in
  // order. 1: one exchange per connection at a time. At most k_max_train. The sender always
  // sets it from sender.http1_pipeline_depth (default 16); this default serves the client on
  // its own (its tests).
  std::size_t max_train = 8;
  // Trains only while the host answers the first exchange of a train or a single one within
  // this time (a moving average): behind a slow host an exchange would wait for the answers
  // of those before it.
  std::chrono::milliseconds train_latency{50};
  static constexpr std::size_t k_max_train = 16;
};

// Sender thread only (the resolver's thread is internal). Allocation: per host, per connection
// (a 16 KiB-bounded header line buffer when a head arrives in pieces), and for the timer heap;
// none per request once warm.
class Http1Client {
 public:
  // Throws std::runtime_error when epoll or eventfd cannot be created.
  explicit Http1Client(Http1Options options);
  ~Http1Client();
  Http1Client(const Http1Client&) = delete;
  Http1Client& operator=(const Http1Client&) = delete;

  // The epoll descriptor: readable when perform() has socket work.
  [[nodiscard]] int fd() const noexcept;
  // The host "name:port" (name lowercased, IPv6 without brackets), created on first use and
  // kept for the client's life. An address literal is parsed here; a name is resolved when a
  // connection is first needed.
  [[nodiscard]] Http1Host* host(std::string_view name, std::uint16_t port);
  // Begins `x` (its target, body, deadline and callbacks set): it is queued on its host and
  // sent by the next perform() (next_wake() says now), together with the others started
  // before it. It may finish at once (its deadline passed): perform() returns it then.
  void start(Http1Exchange* x, std::chrono::steady_clock::time_point now);
  // Reads ready sockets and expired timers; appends finished exchanges to `done`.
  void perform(std::chrono::steady_clock::time_point now, std::vector<Http1Exchange*>& done);
  // Abandons `x` (not yet returned by perform()): its connection, if any, is closed.
  void cancel(Http1Exchange* x);
  // The earliest deadline to wake up for (an exchange's or a connect's); max() when none.
  // Finished exchanges not yet returned make it `now`.
  [[nodiscard]] std::chrono::steady_clock::time_point next_wake() const noexcept;
  // Open connections (connecting, busy or idle), for tests and stats.
  [[nodiscard]] std::size_t open_connections() const noexcept;
  // Exchanges sent behind another one on the same connection (in a train), and the
  // sendmsg() calls that carried more than one exchange, since the client was made.
  [[nodiscard]] std::uint64_t pipelined() const noexcept;
  [[nodiscard]] std::uint64_t train_writes() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracecast::detail
