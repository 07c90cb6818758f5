#include "http1_client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <queue>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "egress_gate.h"

namespace tracecast::detail {

namespace {

using clock_type = std::chrono::steady_clock;

// curl codes the client reports (the sender classifies them with classify_curl_code()).
constexpr int k_ok = CURLE_OK;
constexpr int k_resolve = CURLE_COULDNT_RESOLVE_HOST;
constexpr int k_connect = CURLE_COULDNT_CONNECT;
constexpr int k_weird = CURLE_WEIRD_SERVER_REPLY;
// Not an HTTP/1.x status line: what curl 7.88 reports for it ("Received HTTP/0.9 when not
// allowed"), so both clients give the same outcome (final, not retried).
constexpr int k_not_http = CURLE_UNSUPPORTED_PROTOCOL;
constexpr int k_short_body = CURLE_PARTIAL_FILE;
constexpr int k_write = CURLE_WRITE_ERROR;
constexpr int k_timeout = CURLE_OPERATION_TIMEDOUT;
constexpr int k_nothing = CURLE_GOT_NOTHING;
constexpr int k_send = CURLE_SEND_ERROR;
constexpr int k_recv = CURLE_RECV_ERROR;

constexpr auto k_resolve_ttl = std::chrono::seconds(60);    // curl's DNS cache timeout default
// One head line or chunk-size line, however it arrives: curl's CURL_MAX_HTTP_HEADER. Longer:
// k_line_too_long, final as in curl (the sender's header callback also bounds a head's total).
constexpr std::size_t k_max_line = 100 * 1024;
constexpr int k_line_too_long = CURLE_OUT_OF_MEMORY;

constexpr std::size_t k_read_buffer = 64 * 1024;

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals_prefix(std::string_view text, std::string_view prefix) noexcept {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (lower(text[i]) != prefix[i]) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// "name" of a "Name: value" line, lowercased into `out`.
std::string header_name(std::string_view line) {
  const std::size_t colon = line.find(':');
  std::string name(trim(line.substr(0, colon == std::string_view::npos ? line.size() : colon)));
  for (char& c : name) c = lower(c);
  return name;
}

// `text` is `word` (lowercase), case-insensitively.
bool iequals(std::string_view text, std::string_view word) noexcept {
  return text.size() == word.size() && iequals_prefix(text, word);
}

// The next item of a comma-separated header value, trimmed; `rest` moves past it (empty after
// the last one).
std::string_view next_item(std::string_view& rest) noexcept {
  const std::size_t comma = rest.find(',');
  const std::string_view item = trim(rest.substr(0, comma));
  rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  return item;
}

// Does a comma-separated header value contain `token` (lowercase), case-insensitively?
bool has_token(std::string_view value, std::string_view token) noexcept {
  while (!value.empty()) {
    if (iequals(next_item(value), token)) return true;
  }
  return false;
}

struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

}  // namespace

// ---- hosts and connections ---------------------------------------------------------------

struct Http1Host {
  std::string name;
  std::uint16_t port = 0;
  std::vector<Address> addresses;
  clock_type::time_point resolved_at{};
  bool literal = false;   // an address literal: resolved once, inline
  bool resolved = false;  // addresses is current
  bool resolving = false;
  bool pumping = false;  // pump() is running for it
  bool repump = false;   // ... and should go round once more
  bool queued = false;   // in the client's list of hosts to pump at the next perform()
  bool train_ok = true;  // false: a server here dropped pipelined requests (no trains again)
  std::int64_t latency_us = -1;  // moving average of answer times (-1: none yet)
  std::size_t open = 0;                  // connections open (connecting, busy or idle)
  Http1Conn* idle = nullptr;             // LIFO through Http1Conn::idle_next
  Http1Exchange* waiting_head = nullptr;  // FIFO through Http1Exchange::next
  Http1Exchange* waiting_tail = nullptr;
};

enum class ConnState : std::uint8_t { connecting, sending, receiving, idle };

// Where the answer's parser is.
enum class Part : std::uint8_t { head, body_length, body_eof, chunk_size, chunk_data, chunk_crlf, trailers, done };

struct Http1Conn {
  int fd = -1;
  Http1Host* host = nullptr;
  Http1Exchange* x = nullptr;
  ConnState state = ConnState::connecting;
  bool want_out = false;  // EPOLLOUT registered
  bool reused = false;    // this exchange did not open it
  bool listed = true;     // the operator vouches for its address (trains may use it)
  std::size_t address = 0;  // connecting: index into host->addresses
  std::uint64_t seq = 0;    // connect timer entries of an older connect are stale
  clock_type::time_point idle_since{};
  Http1Conn* idle_next = nullptr;  // host's idle LIFO
  Http1Conn* lru_prev = nullptr;   // client's idle list, oldest first
  Http1Conn* lru_next = nullptr;
  // The train: x is its first exchange still unanswered, x->next the ones behind it.
  std::size_t sent = 0;         // bytes written, counted from x's head
  std::size_t train_bytes = 0;  // bytes of heads + bodies from x's head to the train's end
  std::uint32_t answered = 0;   // exchanges of this train answered before x
  std::uint64_t train = 0;      // which train (a new one on every begin_send)
  clock_type::time_point train_started{};
  // Parsing.
  Part part = Part::head;
  std::string line;  // a head or chunk-size line that arrived in pieces
  std::uint64_t left = 0;  // body_length / chunk_data: bytes still to come
  long status = 0;
  bool first_line = true;
  bool keep_alive = true;
  bool chunked = false;
  bool has_length = false;
  bool http10 = false;
  bool saw_keep_alive = false;
  bool length_unknown = false;  // a Content-Length past 2^63 - 1: read to the close
};

namespace {

enum class TimerKind : std::uint8_t { exchange, connect };

// Entries are never removed early: each names its object by something that stays valid (a
// slot of the live-exchange table, a connection looked up in the client's map) plus the seq
// it was armed with, and is skipped when they no longer match.
struct Timer {
  clock_type::time_point at;
  std::uint64_t seq;
  Http1Conn* conn;     // connect: looked up before use (never dereferenced when gone)
  std::uint32_t slot;  // exchange: index into Impl::live
  TimerKind kind;
  bool operator>(const Timer& o) const noexcept { return at > o.at; }
};

// Resolves host names with getaddrinfo() on its own thread; results wake the client through
// an eventfd registered in its epoll set. The state is shared with the thread, which is
// detached when the client goes: a lookup that hangs (an unreachable DNS server) never holds
// up the sender's shutdown; the thread ends when its lookup returns and closes the eventfd.
class Resolver {
 public:
  struct Result {
    Http1Host* host = nullptr;
    std::vector<Address> addresses;  // empty: failed
  };

  // Throws std::runtime_error when the eventfd cannot be created.
  Resolver() : state_(std::make_shared<State>()) {
    state_->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (state_->wake_fd < 0) throw std::runtime_error("eventfd failed");
  }
  ~Resolver() {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->stop = true;
    }
    state_->cv.notify_all();
    if (thread_.joinable()) thread_.detach();
  }
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  [[nodiscard]] int fd() const noexcept { return state_->wake_fd; }

  void ask(Http1Host* host) {
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      state_->asks.push_back({host, host->name, host->port});
    }
    if (!thread_.joinable()) thread_ = std::thread([state = state_] { run(*state); });
    state_->cv.notify_one();
  }

  void take(std::vector<Result>& out) {
    std::uint64_t count = 0;
    [[maybe_unused]] const ssize_t n = ::read(state_->wake_fd, &count, sizeof count);
    std::lock_guard<std::mutex> lock(state_->mutex);
    for (Result& r : state_->results) out.push_back(std::move(r));
    state_->results.clear();
  }

  static std::vector<Address> lookup(const std::string& name, std::uint16_t port, bool numeric_only) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV | (numeric_only ? AI_NUMERICHOST : 0);
    addrinfo* list = nullptr;
    const std::string service = std::to_string(port);
    std::vector<Address> out;
    if (getaddrinfo(name.c_str(), service.c_str(), &hints, &list) != 0) return out;
    for (const addrinfo* a = list; a != nullptr; a = a->ai_next) {
      if (a->ai_addrlen > sizeof(sockaddr_storage)) continue;
      Address address;
      std::memcpy(&address.storage, a->ai_addr, a->ai_addrlen);
      address.length = a->ai_addrlen;
      out.push_back(address);
    }
    freeaddrinfo(list);
    return out;
  }

 private:
  struct Ask {
    Http1Host* host;
    std::string name;
    std::uint16_t port;
  };
  struct State {
    std::mutex mutex;
    std::condition_variable cv;
    std::deque<Ask> asks;
    std::vector<Result> results;
    bool stop = false;
    int wake_fd = -1;
    State() = default;
    State(const State&) = delete;
    State& operator=(const State&) = delete;
    ~State() {
      if (wake_fd >= 0) ::close(wake_fd);
    }
  };

  static void run(State& s) {
    std::unique_lock<std::mutex> lock(s.mutex);
    for (;;) {
      s.cv.wait(lock, [&s] { return s.stop || !s.asks.empty(); });
      if (s.stop) return;
      Ask ask = std::move(s.asks.front());
      s.asks.pop_front();
      lock.unlock();
      std::vector<Address> found = lookup(ask.name, ask.port, false);
      lock.lock();
      if (s.stop) return;
      s.results.push_back({ask.host, std::move(found)});
      const std::uint64_t one = 1;
      [[maybe_unused]] const ssize_t n = ::write(s.wake_fd, &one, sizeof one);
    }
  }

  std::shared_ptr<State> state_;
  std::thread thread_;
};

}  // namespace

// ---- targets ------------------------------------------------------------------------------

std::unique_ptr<Http1Target, void (*)(Http1Target*)> Http1Target::make(
    const std::string& url, const std::vector<std::string_view>& header_lines, bool host_allowed,
    Http1Client& client) {
  auto destroy = [](Http1Target* t) {
    t->~Http1Target();
    ::operator delete(t);
  };
  std::unique_ptr<Http1Target, void (*)(Http1Target*)> none(nullptr, destroy);
  if (header_lines.size() > 32) return none;
  struct UrlDeleter {
    void operator()(CURLU* u) const noexcept { curl_url_cleanup(u); }
  };
  std::unique_ptr<CURLU, UrlDeleter> u(curl_url());
  if (!u || curl_url_set(u.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return none;
  auto part = [&u](CURLUPart which, unsigned flags, std::string& value) {
    char* text = nullptr;
    const CURLUcode rc = curl_url_get(u.get(), which, &text, flags);
    if (rc != CURLUE_OK || text == nullptr) return false;
    value = text;
    curl_free(text);
    return true;
  };
  std::string scheme, host, port, path, query, ignored;
  if (!part(CURLUPART_SCHEME, 0, scheme) || scheme != "http") return none;
  if (part(CURLUPART_USER, 0, ignored) || part(CURLUPART_PASSWORD, 0, ignored) ||
      part(CURLUPART_ZONEID, 0, ignored)) {
    return none;
  }
  if (!part(CURLUPART_HOST, 0, host) || !part(CURLUPART_PORT, CURLU_DEFAULT_PORT, port)) return none;
  if (!part(CURLUPART_PATH, 0, path) || path.empty()) path.assign(1, '/');  // (= "/" warns falsely, GCC 12 -O3)
  const bool has_query = part(CURLUPART_QUERY, 0, query);
  unsigned port_number = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), port_number);
  if (ec != std::errc() || end != port.data() + port.size() || port_number == 0 || port_number > 65535) return none;
  // Bytes curl escapes in a request target (controls, space, DEL, and non-ASCII in the path):
  // curl serves such a URL.
  for (const char c : path) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) return none;
  }
  for (const char c : query) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return none;
  }

  std::uint32_t skip = 0;
  bool own_host = false;
  bool own_agent = false;
  for (std::size_t i = 0; i < header_lines.size(); ++i) {
    const std::string_view line = header_lines[i];
    const std::size_t colon = line.find(':');
    const std::string name = header_name(line);
    const bool empty = colon == std::string_view::npos || trim(line.substr(colon + 1)).empty();
    const bool framing = name == "content-length" || name == "transfer-encoding" || name == "connection" ||
                         name == "expect";
    if (framing && !empty) return none;  // the client frames the body itself: curl sends these
    if (empty || framing) {
      skip |= 1U << i;  // not sent (curl: an empty value removes the header)
      continue;
    }
    if (name == "host") own_host = true;
    if (name == "user-agent") own_agent = true;
  }
  // Appended piece by piece (GCC 12 at -O3 warns falsely on "literal" + std::string).
  std::string first;
  first.reserve(32 + path.size() + query.size() + host.size());
  first.append("POST ").append(path);
  if (has_query) first.append("?").append(query);
  first.append(" HTTP/1.1\r\n");
  if (!own_host) {
    first.append("Host: ").append(host);  // brackets kept for IPv6
    if (port_number != 80) first.append(":").append(port);
    first.append("\r\n");
  }
  if (first.size() > 0xffff) return none;

  const bool bracketed = host.size() >= 2 && host.front() == '[' && host.back() == ']';
  std::string bare = bracketed ? host.substr(1, host.size() - 2) : host;
  for (char& c : bare) c = lower(c);
  void* memory = ::operator new(sizeof(Http1Target) + first.size());
  auto* t = new (memory) Http1Target();
  std::unique_ptr<Http1Target, void (*)(Http1Target*)> out(t, destroy);
  std::memcpy(t + 1, first.data(), first.size());
  t->first_size_ = static_cast<std::uint16_t>(first.size());
  t->skip_ = skip;
  t->user_agent_ = !own_agent;
  t->host_allowed = host_allowed;
  t->host = client.host(bare, static_cast<std::uint16_t>(port_number));
  return out;
}

void Http1Target::head_start(std::string& out, std::string_view user_agent) const {
  out.clear();
  out += first();
  if (user_agent_ && !user_agent.empty()) {
    out += "User-Agent: ";
    out += user_agent;
    out += "\r\n";
  }
}

void Http1Target::head_end(std::string& out, std::string_view encoding_line, std::size_t body_size) {
  out += encoding_line;
  out += "Content-Length: ";
  std::array<char, 24> digits{};
  const auto r = std::to_chars(digits.data(), digits.data() + digits.size(), body_size);
  out.append(digits.data(), static_cast<std::size_t>(r.ptr - digits.data()));
  out += "\r\n\r\n";
}

// ---- the client -----------------------------------------------------------------------------

struct Http1Client::Impl {
  explicit Impl(Http1Options o) : options(o), buffer(std::make_unique<char[]>(k_read_buffer)) {
    epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) throw std::runtime_error("epoll_create1 failed");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the resolver's wake-up
    ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, resolver.fd(), &ev);
  }

  ~Impl() {
    for (auto& [key, conn] : conns) {
      (void)key;
      if (conn->fd >= 0) ::close(conn->fd);
    }
    ::close(epoll_fd);
  }

  Http1Options options;
  int epoll_fd = -1;
  std::unique_ptr<char[]> buffer;
  std::unordered_map<std::string, std::unique_ptr<Http1Host>> hosts;
  std::unordered_map<Http1Conn*, std::unique_ptr<Http1Conn>> conns;
  std::vector<std::unique_ptr<Http1Conn>> spare;  // closed connections, reused
  Http1Conn* lru_head = nullptr;  // idle connections, oldest first
  Http1Conn* lru_tail = nullptr;
  std::size_t idle_count = 0;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<>> timers;
  std::vector<Http1Exchange*> finished;  // finished outside perform(): returned by it
  std::vector<Http1Exchange*>* out = nullptr;  // perform()'s `done` while it runs
  Resolver resolver;
  std::vector<Resolver::Result> results;
  std::uint64_t next_seq = 1;
  // Live exchanges by slot (what exchange timers name); free slots are reused.
  struct Live {
    Http1Exchange* x = nullptr;
    std::uint64_t seq = 0;
  };
  std::vector<Live> live;
  std::vector<std::uint32_t> free_slots;
  std::vector<Http1Host*> to_pump;  // hosts with exchanges started since the last perform()
  std::uint64_t next_train = 1;
  std::uint64_t pipelined = 0;     // exchanges sent behind another on one connection
  std::uint64_t train_writes = 0;  // sendmsg() calls that carried more than one exchange
  // Connections closed while perform() walks one epoll_wait()'s events: kept until the walk
  // ends, so a later event of the same batch still points at a (closed) connection.
  std::vector<std::unique_ptr<Http1Conn>> graveyard;

  // ---- bookkeeping --------------------------------------------------------------------
  Http1Host* host(std::string_view name, std::uint16_t port) {
    std::string key(name);
    key += '|';
    key += std::to_string(port);
    auto [it, fresh] = hosts.try_emplace(std::move(key));
    if (fresh) {
      it->second = std::make_unique<Http1Host>();
      Http1Host& h = *it->second;
      h.name = std::string(name);
      h.port = port;
      h.addresses = Resolver::lookup(h.name, h.port, true);
      h.literal = !h.addresses.empty();
      h.resolved = h.literal;
    }
    return it->second.get();
  }

  void finish(Http1Exchange* x, int code) {
    x->code = code;
    x->conn = nullptr;
    release_slot(x);
    if (out != nullptr) {
      out->push_back(x);
    } else {
      finished.push_back(x);
    }
  }

  void take_slot(Http1Exchange* x) {
    x->seq = next_seq++;
    if (free_slots.empty()) {
      x->slot = static_cast<std::uint32_t>(live.size());
      live.push_back({x, x->seq});
    } else {
      x->slot = free_slots.back();
      free_slots.pop_back();
      live[x->slot] = {x, x->seq};
    }
    timers.push(Timer{x->deadline, x->seq, nullptr, x->slot, TimerKind::exchange});
  }

  void release_slot(Http1Exchange* x) {
    if (x->slot < live.size() && live[x->slot].x == x && live[x->slot].seq == x->seq) {
      live[x->slot] = {};
      free_slots.push_back(x->slot);
    }
  }

  // Moves connections closed before this point to the spare list (perform() calls it between
  // event batches; outside perform() no event can name them any more).
  void bury() {
    for (auto& c : graveyard) {
      if (spare.size() < 64) spare.push_back(std::move(c));
    }
    graveyard.clear();
  }

  void set_events(Http1Conn* c, bool want_out) {
    if (c->want_out == want_out) return;
    c->want_out = want_out;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (want_out ? EPOLLOUT : 0U);
    ev.data.ptr = c;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
  }

  void lru_unlink(Http1Conn* c) noexcept {
    if (c->lru_prev != nullptr) {
      c->lru_prev->lru_next = c->lru_next;
    } else {
      lru_head = c->lru_next;
    }
    if (c->lru_next != nullptr) {
      c->lru_next->lru_prev = c->lru_prev;
    } else {
      lru_tail = c->lru_prev;
    }
    c->lru_prev = c->lru_next = nullptr;
    --idle_count;
  }

  void idle_unlink(Http1Conn* c) noexcept {
    Http1Conn** at = &c->host->idle;
    while (*at != nullptr && *at != c) at = &(*at)->idle_next;
    if (*at == c) *at = c->idle_next;
    c->idle_next = nullptr;
    lru_unlink(c);
  }

  // Closes `c` (its exchange, if any, is the caller's to finish) and lets a waiting exchange
  // of its host open a new one.
  void close_conn(Http1Conn* c) {
    if (c->state == ConnState::idle) idle_unlink(c);
    if (c->fd >= 0) {
      ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, nullptr);
      ::close(c->fd);
      c->fd = -1;
    }
    Http1Host* h = c->host;
    --h->open;
    auto it = conns.find(c);
    graveyard.push_back(std::move(it->second));
    conns.erase(it);
    pump(*h);
  }

  Http1Conn* new_conn(Http1Host& h) {
    std::unique_ptr<Http1Conn> c;
    if (!spare.empty()) {
      c = std::move(spare.back());
      spare.pop_back();
      std::string line = std::move(c->line);
      line.clear();
      *c = Http1Conn{};
      c->line = std::move(line);
    } else {
      c = std::make_unique<Http1Conn>();
    }
    c->host = &h;
    Http1Conn* raw = c.get();
    conns.emplace(raw, std::move(c));
    ++h.open;
    return raw;
  }

  // ---- starting -----------------------------------------------------------------------
  void start(Http1Exchange* x, clock_type::time_point now) {
    x->code = 0;
    x->status = 0;
    x->connects = 0;
    x->blocked = false;
    x->conn = nullptr;
    x->next = nullptr;
    x->waiting = false;
    x->resent = false;
    x->got_bytes = false;
    take_slot(x);
    if (x->deadline <= now) {  // its time is up before it is sent: never sent
      finish(x, k_timeout);
      return;
    }
    // Queued; perform() gives it a connection, so that exchanges started together for one
    // host can go as a train.
    Http1Host& h = *x->host;
    enqueue(h, x);
    if (!h.queued) {
      h.queued = true;
      to_pump.push_back(&h);
    }
  }

  // Gives the exchanges started since the last call their connections.
  void pump_started() {
    for (std::size_t i = 0; i < to_pump.size(); ++i) {  // (pump() never adds to it)
      Http1Host* h = to_pump[i];
      h->queued = false;
      pump(*h);
    }
    to_pump.clear();
  }

  // Trains to `h` now: allowed, proven to work (no dropped pipelined request seen) and the
  // host answers quickly.
  [[nodiscard]] bool trains_to(const Http1Host& h) const noexcept {
    return options.max_train > 1 && h.train_ok && h.latency_us >= 0 &&
           h.latency_us <= std::chrono::duration_cast<std::chrono::microseconds>(options.train_latency).count();
  }

  // Sends `x` on an idle connection of `h`, if one is alive. Closes stale ones on the way.
  bool try_idle(Http1Host& h, Http1Exchange* x, clock_type::time_point now) {
    while (Http1Conn* c = h.idle) {
      h.idle = c->idle_next;
      c->idle_next = nullptr;
      lru_unlink(c);
      // Looked at (one peek) before reuse: a server that closes idle connections may first
      // write an answer nobody asked for (a 408 when its idle timer fires), which must not be
      // read as this request's; closed or readable, the connection goes.
      if (now - c->idle_since > options.max_idle_age || !quiet(c)) {
        c->state = ConnState::receiving;  // not idle: already unlinked
        close_conn(c);
        continue;
      }
      c->reused = true;
      begin_send(c, x);
      return true;
    }
    return false;
  }

  // Nothing to read on an idle connection (no bytes, no EOF, no error): it may carry a request.
  static bool quiet(const Http1Conn* c) noexcept {
    char b = 0;
    const ssize_t n = ::recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  void enqueue(Http1Host& h, Http1Exchange* x) noexcept {
    x->waiting = true;
    x->next = nullptr;
    if (h.waiting_tail != nullptr) {
      h.waiting_tail->next = x;
    } else {
      h.waiting_head = x;
    }
    h.waiting_tail = x;
  }

  // Takes the first waiting exchange of `h` (it is about to get a connection, or to fail): its
  // time runs afresh from now when it has a `timeout`.
  Http1Exchange* dequeue(Http1Host& h) {
    Http1Exchange* x = h.waiting_head;
    if (x == nullptr) return nullptr;
    h.waiting_head = x->next;
    if (h.waiting_tail == x) h.waiting_tail = nullptr;
    x->next = nullptr;
    x->waiting = false;
    if (x->timeout.count() > 0) {
      x->deadline = clock_type::now() + x->timeout;
      x->seq = next_seq++;  // the entry armed at start() goes stale
      live[x->slot].seq = x->seq;
      timers.push(Timer{x->deadline, x->seq, nullptr, x->slot, TimerKind::exchange});
    }
    return x;
  }

  void unqueue(Http1Host& h, Http1Exchange* x) noexcept {
    Http1Exchange* prev = nullptr;
    for (Http1Exchange* at = h.waiting_head; at != nullptr; prev = at, at = at->next) {
      if (at != x) continue;
      if (prev != nullptr) {
        prev->next = x->next;
      } else {
        h.waiting_head = x->next;
      }
      if (h.waiting_tail == x) h.waiting_tail = prev;
      break;
    }
    x->next = nullptr;
    x->waiting = false;
  }

  void enqueue_front(Http1Host& h, Http1Exchange* x) noexcept {
    x->waiting = true;
    x->next = h.waiting_head;
    h.waiting_head = x;
    if (h.waiting_tail == nullptr) h.waiting_tail = x;
  }

  // Gives waiting exchanges of `h` a connection: an idle one, else a new one while the host
  // cap allows, resolving the host first when its addresses are missing or old. Not
  // reentrant: a connection closed inside (a connect refused at once) asks for another round.
  void pump(Http1Host& h) {
    if (h.pumping) {
      h.repump = true;
      return;
    }
    h.pumping = true;
    do {
      h.repump = false;
      const clock_type::time_point now = clock_type::now();
      while (h.waiting_head != nullptr) {
        const bool resent = h.waiting_head->resent;  // never again on a kept-alive connection
        if (h.idle != nullptr && !resent) {
          Http1Exchange* x = dequeue(h);
          if (!try_idle(h, x, now)) enqueue_front(h, x);  // every idle one was stale (closed)
          continue;
        }
        if (options.max_per_host != 0 && h.open >= options.max_per_host) {
          if (resent && h.idle != nullptr) {
            close_conn(h.idle);  // make room: it was likely closed by the server too
            continue;
          }
          break;
        }
        if (!h.literal && (!h.resolved || now - h.resolved_at > k_resolve_ttl)) {
          if (!h.resolving) {
            h.resolving = true;
            resolver.ask(&h);
          }
          break;
        }
        connect_new(h, dequeue(h), 0);
      }
    } while (h.repump);
    h.pumping = false;
  }

  // Opens a connection for `x`, trying addresses from `from` on.
  void connect_new(Http1Host& h, Http1Exchange* x, std::size_t from) {
    x->connects += 1;
    Http1Conn* c = new_conn(h);
    c->x = x;
    x->conn = c;
    try_connect(c, from);
  }

  // Tries addresses of c's host from `from`; finishes c's exchange when none connects.
  void try_connect(Http1Conn* c, std::size_t from) {
    Http1Host& h = *c->host;
    Http1Exchange* x = c->x;
    const EgressGate* gate = options.gate;
    for (std::size_t i = from; i < h.addresses.size(); ++i) {
      const Address& a = h.addresses[i];
      if (gate != nullptr && gate->enforcing() && !x->host_allowed &&
          !gate->address_allowed(reinterpret_cast<const sockaddr*>(&a.storage), a.length)) {
        x->blocked = true;
        continue;
      }
      const int fd = ::socket(a.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
      if (fd < 0) continue;
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
      const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&a.storage), a.length);
      if (rc != 0 && errno != EINPROGRESS) {
        ::close(fd);
        continue;
      }
      c->fd = fd;
      c->address = i;
      c->want_out = true;
      c->listed = gate == nullptr || x->host_allowed ||
                  gate->address_listed(reinterpret_cast<const sockaddr*>(&a.storage), a.length);
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP | EPOLLOUT;
      ev.data.ptr = c;
      if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ::close(fd);
        c->fd = -1;
        continue;
      }
      c->state = ConnState::connecting;
      c->seq = next_seq++;
      timers.push(Timer{clock_type::now() + options.connect_timeout, c->seq, c, 0, TimerKind::connect});
      return;
    }
    c->x = nullptr;
    c->state = ConnState::receiving;
    close_conn(c);
    finish(x, k_connect);
  }

  // ---- sending ------------------------------------------------------------------------
  // Sends `x` on `c` and, on a kept-alive connection to a host that takes trains, the
  // exchanges waiting behind it (same timeout, none sent before), up to max_train.
  void begin_send(Http1Conn* c, Http1Exchange* x) {
    c->x = x;
    x->conn = c;
    x->next = nullptr;
    c->state = ConnState::sending;
    c->sent = 0;
    c->train_bytes = x->head.size() + x->size;
    c->answered = 0;
    c->train = next_train++;
    c->train_started = clock_type::now();
    Http1Host& h = *c->host;
    if (c->reused && c->listed && trains_to(h)) {
      const std::size_t most = std::min(options.max_train, Http1Options::k_max_train);
      Http1Exchange* last = x;
      for (std::size_t n = 1; n < most; ++n) {
        const Http1Exchange* w = h.waiting_head;
        if (w == nullptr || w->resent || w->timeout != x->timeout || x->timeout.count() <= 0) break;
        if (w->owner != nullptr) {
          bool mine = false;  // an owner already in this train
          for (const Http1Exchange* m = x; m != nullptr && !mine; m = m->next) mine = m->owner == w->owner;
          if (mine) break;
        }
        Http1Exchange* m = dequeue(h);
        m->conn = c;
        last->next = m;
        last = m;
        c->train_bytes += m->head.size() + m->size;
        ++pipelined;
      }
    }
    start_answer(c);
    send_more(c);
  }

  // The parser at the start of c->x's answer.
  static void start_answer(Http1Conn* c) noexcept {
    c->part = Part::head;
    c->line.clear();
    c->status = 0;
    c->first_line = true;
    c->http10 = false;
    reset_framing(c);
  }

  // What one answer's head says about its framing and connection (an interim 1xx answer's
  // head is followed by the final one's, read afresh).
  static void reset_framing(Http1Conn* c) noexcept {
    c->left = 0;
    c->keep_alive = true;
    c->chunked = false;
    c->has_length = false;
    c->length_unknown = false;
    c->saw_keep_alive = false;
  }

  // Writes the train's heads and bodies with one sendmsg() where the socket takes them (bodies
  // are never copied); the rest when the socket is writable again.
  void send_more(Http1Conn* c) {
    while (c->sent < c->train_bytes) {
      std::array<iovec, 2 * Http1Options::k_max_train> iov{};
      std::size_t count = 0;
      std::size_t skip = c->sent;
      for (const Http1Exchange* m = c->x; m != nullptr; m = m->next) {
        const std::string_view parts[2] = {m->head, std::string_view(m->body, m->size)};
        for (const std::string_view part : parts) {
          if (skip >= part.size()) {
            skip -= part.size();
            continue;
          }
          iov[count++] = iovec{const_cast<char*>(part.data() + skip), part.size() - skip};
          skip = 0;
        }
      }
      msghdr msg{};
      msg.msg_iov = iov.data();
      msg.msg_iovlen = count;
      const ssize_t n = ::sendmsg(c->fd, &msg, MSG_NOSIGNAL);
      if (n > 0) {
        if (c->x->next != nullptr) ++train_writes;
        c->sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        set_events(c, true);
        return;
      }
      // The peer went away. An answer may already be there (a 413 before the body ended).
      const std::uint64_t train = c->train;
      read_ready(c);
      if (c->fd >= 0 && c->train == train && c->x != nullptr && c->state == ConnState::sending) {
        fail_or_resend(c, k_send);
      }
      return;
    }
    c->state = ConnState::receiving;
    set_events(c, false);
  }

  // ---- receiving ------------------------------------------------------------------------
  // Reads what is there and parses it; finishes (or fails) c's exchange when the answer is
  // complete, the peer is gone or a read fails. Returns with c->x unchanged when more is
  // awaited.
  void read_ready(Http1Conn* c) {
    char* buf = buffer.get();
    for (;;) {
      const ssize_t n = ::recv(c->fd, buf, k_read_buffer, 0);
      if (n > 0) {
        char* data = buf;
        std::size_t size = static_cast<std::size_t>(n);
        while (size > 0) {
          c->x->got_bytes = true;
          std::size_t rest = 0;
          const int rc = parse(c, data, size, rest);
          if (rc < 0) break;  // all taken: more is awaited
          // The answer is complete (0), or cannot be read: on to the next of the train with
          // what is left of this read, or done with this connection for now.
          if (!complete(c, rc)) return;
          data += size - rest;
          size = rest;
        }
        if (static_cast<std::size_t>(n) < k_read_buffer) return;  // drained: wait for more
        continue;
      }
      if (n == 0) {
        on_eof(c);
        return;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (c->x->got_bytes) {
        fail(c, k_recv);
      } else {
        fail_or_resend(c, k_recv);
      }
      return;
    }
  }

  void on_eof(Http1Conn* c) {
    Http1Exchange* x = c->x;
    if (c->part == Part::body_eof) {
      c->keep_alive = false;
      complete(c, k_ok);
      return;
    }
    if (!x->got_bytes) {
      fail_or_resend(c, k_nothing);
      return;
    }
    if (c->part == Part::head) {
      if (!c->first_line) {
        // The head was cut after its status line: curl takes the answer as it is (the status
        // decides), and so does this client.
        c->keep_alive = false;
        c->part = Part::done;
        complete(c, k_ok);
        return;
      }
      // An unfinished first line: an HTTP/0.9-style answer unless it starts like a status line.
      const std::string_view partial = c->line;
      constexpr std::string_view k_want = "http/";
      bool like_http = true;
      for (std::size_t i = 0; i < std::min(partial.size(), k_want.size()); ++i) {
        if (lower(partial[i]) != k_want[i]) like_http = false;
      }
      fail(c, like_http ? k_recv : k_not_http);
      return;
    }
    fail(c, k_short_body);
  }

  // A request that got nothing back on a reused connection goes once more on a new one
  // (the server closed the idle connection as we sent); otherwise the exchange fails.
  void fail_or_resend(Http1Conn* c, int code) {
    // Gone with a train outstanding, without a Connection: close: this server does not keep
    // pipelined requests.
    stop_trains_if_outstanding(c);
    requeue_behind(c, code);
    if (c->reused && !c->x->resent && !c->x->got_bytes) {
      resend_first(c);
      return;
    }
    fail(c, code);
  }

  // c closed or went silent with a train outstanding (after answering part of it or none):
  // no trains to its host again.
  static void stop_trains_if_outstanding(Http1Conn* c) noexcept {
    if (c->answered > 0 || c->x->next != nullptr) c->host->train_ok = false;
  }

  // c's first exchange (nothing of its answer read, never re-sent, those behind it already
  // requeued) goes once more, first in its host's line, on a new connection; c closes.
  void resend_first(Http1Conn* c) {
    Http1Exchange* x = c->x;
    x->resent = true;
    x->conn = nullptr;
    c->x = nullptr;
    c->state = ConnState::receiving;
    enqueue_front(*c->host, x);
    close_conn(c);  // pumps the host
  }

  // c's first exchange fails with `code`; those behind it are sent again (requeue_behind).
  void fail(Http1Conn* c, int code) {
    requeue_behind(c, code);
    Http1Exchange* x = c->x;
    x->status = c->status;
    c->x = nullptr;
    c->state = ConnState::receiving;
    close_conn(c);
    finish(x, code);
  }

  // Takes the exchanges behind c's first one off the connection (nothing of their answers
  // came): back to the front of their host's queue in their order, to be sent once more on a
  // new connection; one that was sent once more already finishes with `code`.
  void requeue_behind(Http1Conn* c, int code) {
    Http1Exchange* m = c->x->next;
    c->x->next = nullptr;
    Http1Exchange* reversed = nullptr;
    while (m != nullptr) {
      Http1Exchange* after = m->next;
      m->conn = nullptr;
      m->next = nullptr;
      if (m->resent) {
        finish(m, code);
      } else {
        m->resent = true;
        m->next = reversed;
        reversed = m;
      }
      m = after;
    }
    while (reversed != nullptr) {
      Http1Exchange* after = reversed->next;
      enqueue_front(*c->host, reversed);
      reversed = after;
    }
  }

  // A deadline passed for an exchange on c: the whole train times out (those behind the first
  // would a moment later: same timeout, later start).
  void time_out(Http1Conn* c) {
    stop_trains_if_outstanding(c);
    Http1Exchange* m = c->x->next;
    c->x->next = nullptr;
    fail(c, k_timeout);
    while (m != nullptr) {
      Http1Exchange* after = m->next;
      m->next = nullptr;
      finish(m, k_timeout);
      m = after;
    }
  }

  // Ends c's first exchange with `code`. A clean answer on a reusable connection moves on to
  // the next exchange of the train (returns true: its answer is read next) or keeps the
  // connection idle; otherwise the connection closes and those behind are sent again.
  bool complete(Http1Conn* c, int code) {
    Http1Exchange* x = c->x;
    x->status = c->status;
    const std::size_t own = x->head.size() + x->size;
    if (c->http10) c->host->train_ok = false;  // no trains to HTTP/1.0 servers
    if (code == k_ok && c->answered == 0) {
      Http1Host& h = *c->host;
      const std::int64_t us =
          std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - c->train_started).count();
      h.latency_us = h.latency_us < 0 ? us : h.latency_us + (us - h.latency_us) / 8;
    }
    const bool reusable = code == k_ok && c->keep_alive && c->part == Part::done && c->sent >= own;
    if (reusable && x->next != nullptr) {
      c->x = x->next;
      x->next = nullptr;
      c->sent -= own;
      c->train_bytes -= own;
      ++c->answered;
      start_answer(c);
      finish(x, code);
      return true;
    }
    if (!reusable) {
      requeue_behind(c, k_nothing);  // Connection: close, or an answer that ends the connection
      c->x = nullptr;
      c->state = ConnState::receiving;
      close_conn(c);
      finish(x, code);
      return false;
    }
    c->x = nullptr;
    finish(x, code);
    park(c);
    return false;
  }

  void park(Http1Conn* c) {
    Http1Host& h = *c->host;
    if (h.waiting_head != nullptr && !h.waiting_head->resent) {
      c->reused = true;
      begin_send(c, dequeue(h));
      return;
    }
    c->state = ConnState::idle;
    c->idle_since = clock_type::now();
    c->idle_next = h.idle;
    h.idle = c;
    c->lru_prev = lru_tail;
    c->lru_next = nullptr;
    if (lru_tail != nullptr) {
      lru_tail->lru_next = c;
    } else {
      lru_head = c;
    }
    lru_tail = c;
    ++idle_count;
    while (idle_count > options.max_idle && lru_head != nullptr) close_conn(lru_head);
    // An exchange to send once more waits first in line: it needs a new connection, which
    // pump() opens (at the host cap, in place of an idle one such as this).
    if (h.waiting_head != nullptr) pump(h);
  }

  // Feeds `data` to c's parser. Returns -1 when more is needed (all of it taken), else the
  // exchange's code (0: the answer is complete) with `rest` = the bytes after its end (the
  // next answer of a train; nobody asked for them otherwise, and the connection is not kept).
  int parse(Http1Conn* c, char* data, std::size_t size, std::size_t& rest) {
    Http1Exchange* x = c->x;
    while (size > 0) {
      switch (c->part) {
        case Part::head:
        case Part::chunk_size:
        case Part::chunk_crlf:
        case Part::trailers: {
          char* nl = static_cast<char*>(std::memchr(data, '\n', size));
          const std::size_t take = nl != nullptr ? static_cast<std::size_t>(nl - data) + 1 : size;
          if (c->line.size() + take > k_max_line) return k_line_too_long;
          if (nl == nullptr || !c->line.empty()) c->line.append(data, take);
          data += take;
          size -= take;
          if (nl == nullptr) break;
          std::string_view line = c->line.empty() ? std::string_view(nl + 1 - take, take) : std::string_view(c->line);
          const int rc = on_line(c, x, line);
          c->line.clear();
          if (rc >= 0) {
            rest = size;
            if (rc == k_ok && c->part == Part::done && size > 0 && x->next == nullptr) c->keep_alive = false;
            return rc;
          }
          break;
        }
        case Part::body_length:
        case Part::chunk_data: {
          const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(c->left, size));
          if (x->on_body(data, 1, take, x->user) != take) return k_write;
          data += take;
          size -= take;
          c->left -= take;
          if (c->left == 0) {
            if (c->part == Part::body_length) {
              c->part = Part::done;
              rest = size;
              if (size > 0 && x->next == nullptr) c->keep_alive = false;
              return k_ok;
            }
            c->part = Part::chunk_crlf;
          }
          break;
        }
        case Part::body_eof:
          if (x->on_body(data, 1, size, x->user) != size) return k_write;
          size = 0;
          break;
        case Part::done:
          c->keep_alive = false;
          rest = size;
          return k_ok;
      }
    }
    return -1;
  }

  // One complete line (LF included) in the head, a chunk-size line, a chunk's CRLF or a
  // trailer. Returns -1 to go on, else the exchange's code.
  int on_line(Http1Conn* c, Http1Exchange* x, std::string_view line) {
    switch (c->part) {
      case Part::head: {
        if (c->first_line) {
          // "HTTP/1.x NNN reason", the prefix in any case; "HTTP/2 NNN" is taken too (curl 7.88
          // does), read as HTTP/1.1.
          std::size_t at = 0;
          bool http10 = false;
          if (iequals_prefix(line, "http/1.") && line.size() > 8 && line[7] >= '0' && line[7] <= '9' && line[8] == ' ') {
            http10 = line[7] == '0';
            at = 9;
          } else if (iequals_prefix(line, "http/2 ")) {
            at = 7;
          } else {
            return k_not_http;
          }
          if (line.size() < at + 3 || line[at] < '1' || line[at] > '9' || line[at + 1] < '0' || line[at + 1] > '9' ||
              line[at + 2] < '0' || line[at + 2] > '9' ||
              (line.size() > at + 3 && line[at + 3] != ' ' && line[at + 3] != '\r' && line[at + 3] != '\n')) {
            return k_not_http;
          }
          c->status = (line[at] - '0') * 100 + (line[at + 1] - '0') * 10 + (line[at + 2] - '0');
          c->http10 = http10;
          c->first_line = false;
          reset_framing(c);
          x->status = c->status;
          if (x->on_header(const_cast<char*>(line.data()), 1, line.size(), x->user) != line.size()) return k_write;
          return -1;
        }
        if (x->on_header(const_cast<char*>(line.data()), 1, line.size(), x->user) != line.size()) return k_write;
        const std::string_view content = trim(line);
        if (!content.empty() && (line.front() == ' ' || line.front() == '\t')) return -1;  // obs-fold: as curl
        if (!content.empty()) {
          const std::size_t colon = content.find(':');
          if (colon == std::string_view::npos) return k_weird;  // as curl: not a header
          const std::string_view name = content.substr(0, colon);
          const std::string_view value = trim(content.substr(colon + 1));
          auto named = [&name](std::string_view want) {
            return iequals(name, want);
          };
          if (named("content-length")) {
            // As curl reads it: an optional '+', a list of equal values ("2, 2"); a value past
            // 2^63 - 1 leaves the length unknown (read to the close). Different values: 56.
            std::string_view rest = value;
            bool any = false;
            bool unknown = false;
            std::uint64_t length = 0;
            while (!rest.empty()) {
              std::string_view item = next_item(rest);
              if (!item.empty() && item.front() == '+') item.remove_prefix(1);
              std::uint64_t v = 0;
              const auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
              if (item.empty() || (ec != std::errc() && ec != std::errc::result_out_of_range) ||
                  end != item.data() + item.size()) {
                return k_weird;
              }
              if (ec == std::errc::result_out_of_range || v > 0x7fffffffffffffffULL) {
                unknown = true;
                continue;
              }
              if (any && v != length) return k_recv;
              length = v;
              any = true;
            }
            if (unknown) {
              c->has_length = false;
              c->length_unknown = true;
            } else if (any) {
              if (c->has_length && length != c->left) return k_recv;
              c->has_length = true;
              c->left = length;
            }
          } else if (named("transfer-encoding")) {
            // Only chunked is decoded; another coding (gzip, ...) cannot be read: as curl, 8.
            std::string_view rest = value;
            while (!rest.empty()) {
              const std::string_view item = next_item(rest);
              if (iequals(item, "chunked")) {
                c->chunked = true;
              } else if (!item.empty() && !iequals(item, "identity")) {
                return k_weird;
              }
            }
          } else if (named("connection")) {
            if (has_token(value, "close")) c->keep_alive = false;
            if (has_token(value, "keep-alive")) c->saw_keep_alive = true;
          }
          return -1;
        }
        // The blank line: the head is complete.
        if (c->status >= 100 && c->status < 200) {
          if (c->status == 101) return k_recv;  // no upgrade was asked for (curl: 56)
          c->first_line = true;  // an interim answer: the final one follows
          return -1;
        }
        if (c->http10 && !c->saw_keep_alive) c->keep_alive = false;
        if (c->chunked && (c->has_length || c->length_unknown)) {
          c->has_length = false;  // RFC 9112 6.3: chunked wins, and the connection is not reused
          c->keep_alive = false;
        }
        if (c->status == 204 || c->status == 304) {
          c->part = Part::done;
          return k_ok;
        }
        if (c->chunked) {
          c->part = Part::chunk_size;
          return -1;
        }
        if (c->has_length) {
          if (c->left == 0) {
            c->part = Part::done;
            return k_ok;
          }
          c->part = Part::body_length;
          return -1;
        }
        c->part = Part::body_eof;
        c->keep_alive = false;
        return -1;
      }
      case Part::chunk_size: {
        std::string_view hex = trim(line);
        const std::size_t semi = hex.find(';');
        if (semi != std::string_view::npos) hex = trim(hex.substr(0, semi));
        std::uint64_t size = 0;
        const auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
        if (hex.empty() || ec != std::errc() || end != hex.data() + hex.size()) return k_recv;  // as curl
        if (size == 0) {
          c->part = Part::trailers;
          return -1;
        }
        c->left = size;
        c->part = Part::chunk_data;
        return -1;
      }
      case Part::chunk_crlf:
        if (!trim(line).empty()) return k_recv;  // as curl
        c->part = Part::chunk_size;
        return -1;
      case Part::trailers:
        if (!trim(line).empty()) return -1;
        c->part = Part::done;
        return k_ok;
      default:
        return k_weird;
    }
  }

  // ---- events ---------------------------------------------------------------------------
  void on_event(Http1Conn* c, std::uint32_t events) {
    switch (c->state) {
      case ConnState::idle:
        // The server closed it, or sent what nobody asked for: either way it is not reusable.
        close_conn(c);
        return;
      case ConnState::connecting: {
        int error = 0;
        socklen_t length = sizeof error;
        if (::getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
        if (error == 0 && (events & (EPOLLERR | EPOLLHUP)) == 0) {
          ++c->seq;  // its connect timer is stale
          begin_send(c, c->x);
          return;
        }
        if (error == 0 && (events & EPOLLOUT) == 0) return;
        ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c->fd, nullptr);
        ::close(c->fd);
        c->fd = -1;
        try_connect(c, c->address + 1);
        return;
      }
      case ConnState::sending: {
        const std::uint64_t train = c->train;
        if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP)) != 0) {
          read_ready(c);  // an early answer (a 413 before the body ended), or the peer gone
          if (c->fd < 0 || c->train != train || c->state != ConnState::sending) return;
        }
        if ((events & EPOLLOUT) != 0) send_more(c);
        return;
      }
      case ConnState::receiving:
        read_ready(c);
        return;
    }
  }

  void on_resolved() {
    results.clear();
    resolver.take(results);
    const clock_type::time_point now = clock_type::now();
    for (Resolver::Result& r : results) {
      Http1Host& h = *r.host;
      h.resolving = false;
      if (r.addresses.empty()) {
        // Keep old addresses (if any) out: a failed lookup fails its waiters, the next
        // exchange asks again.
        h.resolved = false;
        while (Http1Exchange* x = dequeue(h)) finish(x, k_resolve);
        continue;
      }
      h.addresses = std::move(r.addresses);
      h.resolved = true;
      h.resolved_at = now;
      pump(h);
    }
  }

  void expire(clock_type::time_point now) {
    while (!timers.empty() && timers.top().at <= now) {
      const Timer t = timers.top();
      timers.pop();
      if (t.kind == TimerKind::exchange) {
        if (t.slot >= live.size() || live[t.slot].seq != t.seq) continue;
        Http1Exchange* x = live[t.slot].x;
        if (x->waiting) {
          unqueue(*x->host, x);
          finish(x, k_timeout);
        } else if (x->conn != nullptr) {
          time_out(x->conn);
        }
      } else {
        Http1Conn* c = t.conn;
        // The connection may be gone: looked up first, never dereferenced when it is. One
        // at the same address since has another seq.
        if (conns.find(c) == conns.end()) continue;
        if (c->seq != t.seq || c->state != ConnState::connecting || c->x == nullptr) continue;
        // Connect timed out on this address: the exchange fails with timeout as curl does.
        fail(c, k_timeout);
      }
    }
  }

  // Drops entries at the top of the timer heap that name finished exchanges or closed
  // connections, so next_wake() names real work.
  void prune() {
    while (!timers.empty()) {
      const Timer& t = timers.top();
      const bool live_entry =
          t.kind == TimerKind::exchange
              ? (t.slot < live.size() && live[t.slot].seq == t.seq)
              : (conns.find(t.conn) != conns.end() && t.conn->seq == t.seq && t.conn->state == ConnState::connecting);
      if (live_entry) return;
      timers.pop();
    }
  }

  void perform(clock_type::time_point now, std::vector<Http1Exchange*>& done) {
    out = &done;
    for (Http1Exchange* x : finished) done.push_back(x);
    finished.clear();
    pump_started();
    std::array<epoll_event, 64> events{};
    for (;;) {
      bury();
      const int n = ::epoll_wait(epoll_fd, events.data(), static_cast<int>(events.size()), 0);
      if (n <= 0) break;
      for (int i = 0; i < n; ++i) {
        auto* c = static_cast<Http1Conn*>(events[static_cast<std::size_t>(i)].data.ptr);
        if (c == nullptr) {
          on_resolved();
          continue;
        }
        if (c->fd < 0) continue;  // closed by an earlier event of this batch (in the graveyard)
        on_event(c, events[static_cast<std::size_t>(i)].events);
      }
      if (n < static_cast<int>(events.size())) break;
    }
    expire(now);
    prune();
    // Idle connections past curl's maximum age are closed even when their host is not used
    // again (oldest first: the list is in the order they went idle).
    while (lru_head != nullptr && now - lru_head->idle_since > options.max_idle_age) close_conn(lru_head);
    bury();
    out = nullptr;
  }

  void cancel(Http1Exchange* x) {
    if (x->waiting) {
      unqueue(*x->host, x);
    } else if (Http1Conn* c = x->conn) {
      // Out of its train; the others lose the connection with it: sent again (a first one
      // with part of its answer read cannot be, and fails).
      Http1Exchange** at = &c->x;
      while (*at != nullptr && *at != x) at = &(*at)->next;
      if (*at == x) *at = x->next;
      x->next = nullptr;
      if (c->x == nullptr) {
        c->state = ConnState::receiving;
        close_conn(c);
      } else {
        requeue_behind(c, k_recv);
        if (c->x->got_bytes || c->x->resent) {
          fail(c, k_recv);
        } else {
          resend_first(c);
        }
      }
    } else {
      std::erase(finished, x);
    }
    x->conn = nullptr;
    release_slot(x);
    prune();
  }

  [[nodiscard]] clock_type::time_point next_wake() const noexcept {
    if (!finished.empty() || !to_pump.empty()) return clock_type::time_point::min();
    clock_type::time_point next = timers.empty() ? clock_type::time_point::max() : timers.top().at;
    if (lru_head != nullptr) next = std::min(next, lru_head->idle_since + options.max_idle_age + std::chrono::milliseconds(1));
    return next;
  }
};

Http1Client::Http1Client(Http1Options options) : impl_(std::make_unique<Impl>(options)) {}
Http1Client::~Http1Client() = default;
int Http1Client::fd() const noexcept { return impl_->epoll_fd; }
Http1Host* Http1Client::host(std::string_view name, std::uint16_t port) { return impl_->host(name, port); }
void Http1Client::start(Http1Exchange* x, std::chrono::steady_clock::time_point now) { impl_->start(x, now); }
void Http1Client::perform(std::chrono::steady_clock::time_point now, std::vector<Http1Exchange*>& done) {
  impl_->perform(now, done);
}
void Http1Client::cancel(Http1Exchange* x) { impl_->cancel(x); }
std::chrono::steady_clock::time_point Http1Client::next_wake() const noexcept { return impl_->next_wake(); }
std::size_t Http1Client::open_connections() const noexcept { return impl_->conns.size(); }
std::uint64_t Http1Client::pipelined() const noexcept { return impl_->pipelined; }
std::uint64_t Http1Client::train_writes() const noexcept { return impl_->train_writes; }

}  // namespace tracecast::detail
