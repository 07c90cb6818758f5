#include "tracecast/sender.h"

#include <concurrentqueue/concurrentqueue.h>
#include <curl/curl.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

#include "curl_global.h"
#include "egress_gate.h"
#include "http1_client.h"
#include "retry_policy.h"

namespace tracecast {

std::string_view to_string(SendOutcome outcome) noexcept {
  switch (outcome) {
    case SendOutcome::delivered: return "delivered";
    case SendOutcome::rejected: return "rejected";
    case SendOutcome::retries_exhausted: return "retries_exhausted";
    case SendOutcome::network_error_final: return "network_error_final";
    case SendOutcome::aborted: return "aborted";
    case SendOutcome::destination_removed: return "destination_removed";
    case SendOutcome::blocked: return "blocked";
  }
  return "unknown";
}

std::string_view to_string(NetworkError error) noexcept {
  switch (error) {
    case NetworkError::none: return "none";
    case NetworkError::dns: return "dns";
    case NetworkError::connect: return "connect";
    case NetworkError::tls: return "tls";
    case NetworkError::timeout: return "timeout";
    case NetworkError::send_recv: return "send_recv";
    case NetworkError::other: return "other";
  }
  return "unknown";
}

namespace {

using clock_type = std::chrono::steady_clock;
constexpr std::size_t k_cache_line = 64;
constexpr std::size_t k_network_error_slots = 7;
constexpr std::size_t k_drain_chunk = 256;

// Which Content-Encoding header a request carries: index into DestSnapshot::headers.
[[nodiscard]] std::size_t encoding_index(std::string_view encoding) noexcept {
  if (encoding == "gzip") return 1;
  if (encoding == "zstd") return 2;
  return 0;  // "" or "none": no Content-Encoding header
}

// Header lines every request carries, shared by every destination (curl only reads a header
// list's data; the arrays are not const because curl_slist::data is a char*).
char k_expect_line[] = "Expect:";  // no 100-continue round trip for large bodies
char k_gzip_line[] = "Content-Encoding: gzip";
char k_zstd_line[] = "Content-Encoding: zstd";
// The same, as the built-in HTTP/1.1 client writes them (by encoding_index()).
constexpr std::array<std::string_view, 3> k_http1_encoding_lines = {"", "Content-Encoding: gzip\r\n",
                                                                     "Content-Encoding: zstd\r\n"};

// A destination's header lines (headers[0] without its "Expect:" node) as string_views, for
// Http1Target::write_head(). No allocation.
struct HeaderLines {
  const curl_slist* list;
  struct iterator {
    const curl_slist* at;
    std::string_view operator*() const noexcept { return at->data; }
    iterator& operator++() noexcept {
      at = at->next;
      if (at != nullptr && at->data == k_expect_line) at = nullptr;
      return *this;
    }
    bool operator!=(const iterator& o) const noexcept { return at != o.at; }
  };
  [[nodiscard]] iterator begin() const noexcept {
    return {list != nullptr && list->data == k_expect_line ? nullptr : list};
  }
  [[nodiscard]] static iterator end() noexcept { return {nullptr}; }
};

// An immutable, resolved destination config. Transfers hold a shared_ptr for their attempt,
// so update_destination() never pulls headers out from under curl.
//
// With 150,000 destinations this is most of what the sender keeps per destination, so its
// strings and its curl header lists share one allocation, laid out once at add time:
//
//   block: [ curl_slist nodes: line 1 .. line n, Expect:, gzip head, zstd head ][ name\0 url\0
//            ca_file\0 ca_path\0 line 1\0 .. line n\0 ]
//
// headers[0] (no Content-Encoding) is line 1 -> .. -> line n -> "Expect:"; headers[1] and
// headers[2] are one node ("Content-Encoding: gzip" / "zstd") in front of that same list. The
// lists are built by hand rather than with curl_slist_append (curl reads a CURLOPT_HTTPHEADER
// list and never frees or changes it): three lists of one destination cost 16 bytes per
// line, instead of two mallocs per line per list used.
struct DestSnapshot {
  std::unique_ptr<char[]> block;
  const char* name = "";
  const char* url = "";
  const char* ca_file = "";  // "" when not set
  const char* ca_path = "";
  std::array<curl_slist*, 3> headers{};  // by encoding_index()
  long timeout_ms = 10000;
  std::uint32_t max_in_flight = 4;
  bool https = false;
  bool insecure = false;
  bool egress_host_allowed = false;  // the URL's host is in EgressPolicy::allow_hosts
  bool protobuf = false;             // http/protobuf: 2xx answers are protobuf
  // The built-in HTTP/1.1 client's view of it, made by the sender thread at the first request
  // (a quiet destination never has one); only that thread reads or writes these two.
  mutable std::unique_ptr<detail::Http1Target, void (*)(detail::Http1Target*)> http1{nullptr, nullptr};
  mutable bool http1_checked = false;  // make() was tried (http1 null: curl serves it)
};

std::shared_ptr<const DestSnapshot> make_snapshot(const DestinationConfig& config, const detail::EgressGate& gate) {
  ResolvedDestination resolved = resolve(config);
  const std::string_view name = config.name.empty() ? std::string_view("destination") : std::string_view(config.name);
  const std::vector<std::string>& lines = resolved.header_lines;
  const std::size_t nodes = lines.size() + 3;
  std::size_t text = name.size() + resolved.url.size() + config.ca_file.size() + config.ca_path.size() + 4;
  for (const std::string& line : lines) text += line.size() + 1;
  auto snap = std::make_shared<DestSnapshot>();
  snap->block = std::make_unique<char[]>(nodes * sizeof(curl_slist) + text);
  auto* node = reinterpret_cast<curl_slist*>(snap->block.get());
  char* out = snap->block.get() + nodes * sizeof(curl_slist);
  auto put = [&out](std::string_view v) {
    char* at = out;
    std::memcpy(at, v.data(), v.size());
    at[v.size()] = '\0';
    out += v.size() + 1;
    return at;
  };
  snap->name = put(name);
  snap->url = put(resolved.url);
  snap->ca_file = put(config.ca_file);
  snap->ca_path = put(config.ca_path);
  for (std::size_t i = 0; i < lines.size(); ++i) node[i] = curl_slist{put(lines[i]), &node[i + 1]};
  node[lines.size()] = curl_slist{k_expect_line, nullptr};
  node[lines.size() + 1] = curl_slist{k_gzip_line, &node[0]};
  node[lines.size() + 2] = curl_slist{k_zstd_line, &node[0]};
  snap->headers = {&node[0], &node[lines.size() + 1], &node[lines.size() + 2]};
  const std::string_view url = snap->url;
  snap->https = url.rfind("https://", 0) == 0 || url.rfind("HTTPS://", 0) == 0;
  snap->insecure = config.insecure_skip_verify;
  snap->egress_host_allowed = gate.enforcing() && gate.host_allowed(detail::url_host(resolved.url));
  snap->timeout_ms = static_cast<long>(config.timeout.count());
  snap->max_in_flight = config.max_in_flight;
  snap->protobuf = resolved.protobuf;
  return snap;
}

struct Counter {
  std::atomic<std::uint64_t> value{0};
  // Written by the sender thread only: a relaxed load + store is enough, readers see a
  // possibly stale value.
  void add(std::uint64_t n = 1) noexcept {
    value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void set(std::uint64_t n) noexcept { value.store(n, std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t get() const noexcept { return value.load(std::memory_order_relaxed); }
};

// Responses by HTTP status in N (status, count) slots, claimed in the order statuses are first
// seen (a destination rarely sees more than 200, one or two 4xx and a few retryable 5xx): 2
// slots beside the counters every sending destination has, 6 more in the rare block, then
// one count for the rest. Written by the sender thread only; stats() reads from any thread: a
// slot's status is published (release) before its count grows, so a reader never pairs a
// count with the wrong status.
template <std::size_t N>
struct StatusTable {
  std::array<std::atomic<std::uint16_t>, N> status{};  // 0: free
  std::array<Counter, N> count;

  // false: every slot is taken by another status (the caller counts it elsewhere).
  bool add(std::uint16_t wanted) noexcept {
    for (std::size_t i = 0; i < N; ++i) {
      const std::uint16_t s = status[i].load(std::memory_order_relaxed);
      if (s == 0) status[i].store(wanted, std::memory_order_release);
      if (s == 0 || s == wanted) {
        count[i].add();
        return true;
      }
    }
    return false;
  }
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < N; ++i) {
      const std::uint16_t s = status[i].load(std::memory_order_acquire);
      if (s == 0) break;
      const std::uint64_t n = count[i].get();
      if (n > 0) f(static_cast<int>(s), n);
    }
  }
};

// What a destination's requests rarely touch (failures, retries, partial successes, statuses
// beyond the first two): created by the sender thread at the first such event.
struct DestRareCounters {
  Counter retried, rejected, retries_exhausted, network_errors_final, aborted, removed, blocked, malformed_answers,
      rejected_items, partial_success_warnings;
  StatusTable<6> more_status;
  Counter other_status;
  std::array<Counter, k_network_error_slots> by_network_error;
};

// What every request of a sending destination touches: 88 bytes (with 150,000 destinations
// each sending every few seconds, all of them have these; the full set was 288 bytes).
struct DestCounters {
  Counter requests, attempts, delivered, bytes_sent, connections_opened;
  // Gauges, set by the sender thread (a destination's queue and in-flight counts are 32-bit).
  std::atomic<std::uint32_t> queued{0}, in_flight{0}, waiting_for_retry{0};
  StatusTable<2> by_status;
  std::atomic<DestRareCounters*> rare_ptr{nullptr};

  DestCounters() = default;
  DestCounters(const DestCounters&) = delete;
  DestCounters& operator=(const DestCounters&) = delete;
  ~DestCounters() { delete rare_ptr.load(std::memory_order_acquire); }
  // Sender thread only. Allocates the first time.
  DestRareCounters& rare() {
    DestRareCounters* r = rare_ptr.load(std::memory_order_relaxed);
    if (r == nullptr) {
      r = new DestRareCounters;
      rare_ptr.store(r, std::memory_order_release);  // published with its zeroed counts
    }
    return *r;
  }
  // Sender thread only.
  void add_status(int code) {
    if (code > 0 && code <= 999) {
      const auto wanted = static_cast<std::uint16_t>(code);
      if (by_status.add(wanted) || rare().more_status.add(wanted)) return;
    }
    rare().other_status.add();
  }
  static void set(std::atomic<std::uint32_t>& gauge, std::uint32_t v) noexcept {
    gauge.store(v, std::memory_order_relaxed);
  }
};

struct Transfer;

// A FIFO of transfers linked through Transfer::next: no allocation, 24 bytes when empty
// (a std::deque allocates ~600 bytes at construction in libstdc++).
struct TransferFifo {
  Transfer* head = nullptr;
  Transfer* tail = nullptr;
  std::uint32_t size = 0;
  [[nodiscard]] bool empty() const noexcept { return head == nullptr; }
  void push(Transfer* t) noexcept;
  Transfer* pop() noexcept;
};

struct Dest {
  std::uint32_t id = 0;
  std::shared_ptr<const DestSnapshot> snapshot;  // guarded by Impl::dest_mutex_
  std::atomic<bool> removed{false};
  // Its counters, created by the sender thread at its first request: a destination that never
  // sends holds none (288 bytes less each; most of a gateway's destinations are quiet).
  // stats() reads them from any thread (nullptr: all zero).
  std::atomic<DestCounters*> counters_ptr{nullptr};

  Dest() = default;
  Dest(const Dest&) = delete;
  Dest& operator=(const Dest&) = delete;
  ~Dest() { delete counters_ptr.load(std::memory_order_acquire); }
  // Sender thread only. Allocates the first time.
  DestCounters& counters() {
    DestCounters* c = counters_ptr.load(std::memory_order_relaxed);
    if (c == nullptr) {
      c = new DestCounters;
      counters_ptr.store(c, std::memory_order_release);  // published with its zeroed counts
    }
    return *c;
  }
  // --- sender thread only ---
  std::shared_ptr<const DestSnapshot> loop_snapshot;
  TransferFifo queued;         // fresh requests
  TransferFifo ready_retries;  // retry time reached, waiting for a slot (go first)
  Transfer* waiting = nullptr;  // retry timer pending: list through Transfer::wait_prev/next
  std::uint32_t waiting_count = 0;
  std::uint32_t in_flight = 0;
  Dest* ready_next = nullptr;  // in Impl's ready list
  clock_type::time_point blocked_until{};  // Retry-After of a 429/503: nothing starts before
  bool in_ready = false;
  bool capped = false;  // had work while at max_in_flight (counted in Impl::capped_count_)
  bool block_timer_armed = false;  // an entry in Impl::block_timers_ (maybe stale)
  bool removal_handled = false;
  bool abort_mark = false;  // abort_everything(): collected once

  [[nodiscard]] bool has_work() const noexcept { return !queued.empty() || !ready_retries.empty(); }
};

// Before a batch of requests or answers is handled, each one's destination and then its
// counters are asked for: at 100,000 destinations both are cold, and handled one by one each
// stalled on its own two misses (the two loads were 9% of the sender's samples at 100,000
// accounts); asked for together, the misses overlap. `dest_of(i)` gives item i's Dest or null.
template <class DestOf>
void prefetch_dests(std::size_t n, DestOf&& dest_of) noexcept {
  for (std::size_t i = 0; i < n; ++i) {
    if (const Dest* d = dest_of(i)) {
      __builtin_prefetch(d, 1, 3);
      __builtin_prefetch(reinterpret_cast<const char*>(d) + 64, 1, 3);
      __builtin_prefetch(reinterpret_cast<const char*>(d) + 128, 1, 3);
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (const Dest* d = dest_of(i)) __builtin_prefetch(d->counters_ptr.load(std::memory_order_relaxed), 1, 3);
  }
}

struct Transfer {
  SendRequest request{};
  std::uint64_t accepted_ns = 0;
  Dest* dest = nullptr;
  std::shared_ptr<const DestSnapshot> snapshot;
  struct EasyHandle* easy = nullptr;  // non-null while in flight
  Transfer* next = nullptr;            // TransferFifo link
  Transfer* wait_prev = nullptr;       // Dest::waiting links
  Transfer* wait_next = nullptr;
  std::uint32_t attempts = 0;
  clock_type::time_point first_attempt{};
  std::multimap<clock_type::time_point, Transfer*>::iterator timer;
  bool has_timer = false;
  std::string response;
  std::size_t max_response = 0;
  int last_status = 0;
  NetworkError last_error = NetworkError::none;
  std::uint64_t rejected_items = 0;
  bool partial_warning = false;
  detail::SocketGate socket_gate;  // CURLOPT_OPENSOCKETDATA of the attempt in flight
  // The built-in HTTP/1.1 client's exchange and request head (its capacity reused), and
  // whether the attempt in flight is its (`easy` is then null).
  detail::Http1Exchange http1;
  std::string http1_head;
  bool http1_in_flight = false;
  // Per attempt, from the header and body callbacks: the response is read only up to its
  // bounds, then the transfer is aborted and classified by its status.
  std::size_t header_bytes = 0;
  std::size_t body_bytes = 0;    // seen, kept or not
  bool header_overflow = false;  // headers passed k_max_header_bytes: aborted
  bool body_overflow = false;    // body passed max_response: aborted after the kept bytes
  bool malformed = false;        // counted once per completion in malformed_answers
  std::uint8_t retry_after_len = 0;
  std::array<char, 128> retry_after{};  // the last response's Retry-After value (cut at 128)
};

void TransferFifo::push(Transfer* t) noexcept {
  t->next = nullptr;
  if (tail != nullptr) {
    tail->next = t;
  } else {
    head = t;
  }
  tail = t;
  ++size;
}

Transfer* TransferFifo::pop() noexcept {
  Transfer* t = head;
  if (t == nullptr) return nullptr;
  head = t->next;
  if (head == nullptr) tail = nullptr;
  t->next = nullptr;
  --size;
  return t;
}

// A pooled curl easy handle and what it was last configured for: a handle that serves the
// same destination snapshot again only gets the per-request options (body, size, private
// pointers), not curl_easy_reset() and ~25 setopts.
struct EasyHandle {
  CURL* curl = nullptr;
  std::shared_ptr<const DestSnapshot> configured_for;  // kept alive so the pointer is not reused
  curl_slist* headers = nullptr;
  long upload_buffer = 0;
  bool base_set = false;  // options that never change (sender-wide) are set

  EasyHandle() = default;
  EasyHandle(const EasyHandle&) = delete;
  EasyHandle& operator=(const EasyHandle&) = delete;
  ~EasyHandle() {
    if (curl != nullptr) curl_easy_cleanup(curl);
  }
};

struct Queued {
  SendRequest request;
  std::uint64_t accepted_ns = 0;
};

std::uint64_t now_ns() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count());
}

// Keeps up to max_response bytes of the body; past that the transfer is aborted (returning
// less than given makes curl stop with CURLE_WRITE_ERROR) instead of reading an endless or
// 1 GB body to the end of the attempt's timeout. finish_attempt() then classifies the attempt
// by the status it already has.
// Bodies up to this size are read to their end even when max_response_bytes keeps less (0
// keeps nothing): cutting a transfer closes its connection, and a "{}" should not.
constexpr std::size_t k_min_body_read = 4096;

std::size_t write_body(char* data, std::size_t size, std::size_t count, void* user) noexcept {
  auto* transfer = static_cast<Transfer*>(user);
  const std::size_t bytes = size * count;
  const std::size_t room = transfer->max_response > transfer->response.size()
                               ? transfer->max_response - transfer->response.size()
                               : 0;
  try {
    transfer->response.append(data, std::min(room, bytes));
  } catch (...) {
    // Out of memory for the response text only: the status still decides.
  }
  transfer->body_bytes += bytes;
  if (transfer->body_bytes > std::max(transfer->max_response, k_min_body_read)) {
    transfer->body_overflow = true;
    return 0;
  }
  return bytes;
}

// Response headers in all (status line included) before the attempt is aborted as malformed.
constexpr std::size_t k_max_header_bytes = 64 * 1024;

bool starts_with_nocase(std::string_view text, std::string_view prefix) noexcept {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// One header line per call (curl's CURLOPT_HEADERFUNCTION). Keeps the Retry-After value and
// bounds the total header bytes (curl bounds one header line itself).
std::size_t read_header(char* data, std::size_t size, std::size_t count, void* user) noexcept {
  auto* t = static_cast<Transfer*>(user);
  const std::size_t bytes = size * count;
  t->header_bytes += bytes;
  if (t->header_bytes > k_max_header_bytes) {
    t->header_overflow = true;
    return 0;
  }
  const std::string_view line(data, bytes);
  if (starts_with_nocase(line, "http/")) {
    t->retry_after_len = 0;  // a new response (after a 1xx): its own Retry-After only
  } else if (starts_with_nocase(line, "retry-after:")) {
    const std::string_view value = line.substr(12);
    if (value.size() > t->retry_after.size()) {
      // Longer than any valid value: keep one parse_retry_after() refuses (counted invalid).
      t->retry_after[0] = '!';
      t->retry_after_len = 1;
    } else {
      std::memcpy(t->retry_after.data(), value.data(), value.size());
      t->retry_after_len = static_cast<std::uint8_t>(value.size());
    }
  }
  return bytes;
}

void check_config(const SenderConfig& c) {
  if (std::string e = first_error_text(validate(c)); !e.empty()) throw std::invalid_argument("SenderConfig." + e);
}

}  // namespace

// The sender thread's loop. Per iteration it does work proportional to what happened (requests
// drained, attempts started or finished, timers due, destinations changed), never to the number
// of destinations:
//   - destinations added since the last look are appended to loop_dests_ (O(new)); updates and
//     removals arrive as a list of ids (O(changed));
//   - a destination with sendable work and a free slot sits in the ready list (intrusive FIFO);
//     dispatch() starts one request per visit and puts it back at the tail, so one busy
//     destination cannot starve the quiet ones;
//   - retry timers (multimap, O(log n)) and Retry-After blocks (a min-heap of destinations)
//     bring destinations back to the ready list when due.
struct Sender::Impl {
  explicit Impl(SenderConfig config)
      : config_(std::move(config)),
        requests_(config_.queue_capacity, 0, config_.max_producers),
        completions_(config_.queue_capacity * 2, 0, 2),
        gate_(config_.egress),
        rng_(config_.jitter_seed != 0 ? config_.jitter_seed : std::random_device{}()) {
    if (config_.builtin_http1) {
      detail::Http1Options o;
      o.connect_timeout = config_.connect_timeout;
      o.max_per_host = config_.max_connections_per_host;
      o.max_idle = std::max<std::size_t>(config_.max_in_flight_total, 16);
      o.max_train = config_.http1_pipeline_depth;
      o.gate = &gate_;
      http1_ = std::make_unique<detail::Http1Client>(o);
    }
  }

  // ---- shared state -------------------------------------------------------------------
  SenderConfig config_;
  CURLM* multi_ = nullptr;
  std::thread thread_;
  moodycamel::ConcurrentQueue<Queued> requests_;
  // Produced by the sender thread, then (after it is joined) by the thread in shutdown():
  // two implicit producers. (An explicit ProducerToken shared by the two trips
  // ThreadSanitizer on moodycamel's block reuse, which it cannot see is fenced.)
  moodycamel::ConcurrentQueue<Completion> completions_;

  alignas(k_cache_line) std::atomic<std::uint64_t> outstanding_{0};  // accepted, completion not popped
  alignas(k_cache_line) std::atomic<std::uint64_t> unfinished_{0};   // accepted, not completed
  alignas(k_cache_line) std::atomic<bool> sleeping_{false};          // sender thread in curl_multi_poll
  std::atomic<bool> closed_{false};                                  // try_send refuses
  std::atomic<bool> stop_{false};                                    // loop aborts all and exits
  std::atomic<std::uint64_t> queue_full_{0};
  std::atomic<std::uint64_t> dest_version_{0};

  std::mutex done_mutex_;
  std::condition_variable done_cv_;
  std::mutex shutdown_mutex_;
  bool shut_down_ = false;  // guarded by shutdown_mutex_

  mutable std::mutex dest_mutex_;
  std::vector<std::unique_ptr<Dest>> dests_;  // index = id - 1; never shrinks; guarded
  std::vector<std::uint32_t> changed_ids_;    // updated or removed since the loop's last look; guarded

  // ---- sender thread only -------------------------------------------------------------
  std::vector<Dest*> loop_dests_;  // index = id - 1: the destinations the loop has seen
  std::vector<std::uint32_t> loop_changed_;
  std::uint64_t loop_version_ = ~std::uint64_t{0};
  Dest* ready_head_ = nullptr;  // destinations that may start a request, FIFO
  Dest* ready_tail_ = nullptr;
  std::vector<std::unique_ptr<EasyHandle>> easy_pool_;  // idle handles
  std::size_t idle_bytes_ = 0;                          // idle_cost() summed over easy_pool_
  std::vector<std::unique_ptr<Transfer>> transfers_;
  std::vector<Transfer*> free_transfers_;
  std::multimap<clock_type::time_point, Transfer*> timers_;  // retry timers
  // Min-heap of (blocked_until, destination) for destinations with work held back by a
  // Retry-After. Entries may be stale (blocked_until moved, destination removed): checked
  // when they come due.
  std::vector<std::pair<clock_type::time_point, Dest*>> block_timers_;
  const detail::EgressGate gate_;  // immutable: read by the socket callback on this thread
  std::mt19937_64 rng_;
  std::uint32_t in_flight_total_ = 0;
  // http:// destinations (config_.builtin_http1): the built-in HTTP/1.1 client, whose epoll
  // descriptor the loop's curl_multi_poll() also watches.
  std::unique_ptr<detail::Http1Client> http1_;
  std::vector<detail::Http1Exchange*> http1_done_;
  // Destinations with work waiting for one of their in-flight slots: while there are none, an
  // answer only frees a slot nobody needs yet, and the loop may take answers in ticks (run()).
  std::uint32_t capped_count_ = 0;

  void wake() noexcept {
    if (multi_ != nullptr) curl_multi_wakeup(multi_);
  }

  // ---- completion ---------------------------------------------------------------------
  void complete(Transfer* t, SendOutcome outcome) {
    Completion c;
    c.tag = t->request.tag;
    c.destination = t->request.destination;
    c.outcome = outcome;
    c.network_error = t->last_error;
    c.http_status = t->last_status;
    c.attempts = t->attempts;
    c.items = t->request.items;
    c.rejected_items = t->rejected_items;
    c.partial_success_warning = t->partial_warning;
    c.malformed_answer = t->malformed;
    const std::uint64_t now = now_ns();
    c.latency_ns = now > t->accepted_ns ? now - t->accepted_ns : 0;
    if (t->dest != nullptr) {
      DestCounters& k = t->dest->counters();
      switch (outcome) {
        case SendOutcome::delivered: k.delivered.add(); break;
        case SendOutcome::rejected: k.rare().rejected.add(); break;
        case SendOutcome::retries_exhausted: k.rare().retries_exhausted.add(); break;
        case SendOutcome::network_error_final: k.rare().network_errors_final.add(); break;
        case SendOutcome::aborted: k.rare().aborted.add(); break;
        case SendOutcome::destination_removed: k.rare().removed.add(); break;
        case SendOutcome::blocked: k.rare().blocked.add(); break;
      }
      if (t->rejected_items != 0) k.rare().rejected_items.add(t->rejected_items);
      if (t->partial_warning) k.rare().partial_success_warnings.add();
      if (t->malformed) k.rare().malformed_answers.add();
    }
    // Preallocated for queue_capacity outstanding completions (try_send bounds them), so the
    // allocating enqueue() is a fallback that never runs.
    if (!completions_.try_enqueue(c)) completions_.enqueue(c);
    release(t);
    if (unfinished_.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
        closed_.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> lock(done_mutex_);
      done_cv_.notify_all();
    }
  }

  Transfer* acquire() {
    if (free_transfers_.empty()) {
      transfers_.push_back(std::make_unique<Transfer>());
      return transfers_.back().get();
    }
    Transfer* t = free_transfers_.back();
    free_transfers_.pop_back();
    return t;
  }

  void release(Transfer* t) {
    t->snapshot.reset();
    t->dest = nullptr;
    t->easy = nullptr;
    t->http1_in_flight = false;
    t->socket_gate.blocked = false;
    t->next = nullptr;
    t->wait_prev = t->wait_next = nullptr;
    t->attempts = 0;
    t->has_timer = false;
    t->response.clear();
    t->last_status = 0;
    t->last_error = NetworkError::none;
    t->rejected_items = 0;
    t->partial_warning = false;
    t->malformed = false;
    free_transfers_.push_back(t);
  }

  // ---- destinations -------------------------------------------------------------------
  // O(destinations added + ids changed since the last call).
  void refresh_destinations() {
    const std::uint64_t version = dest_version_.load(std::memory_order_acquire);
    if (version == loop_version_) return;
    {
      std::lock_guard<std::mutex> lock(dest_mutex_);
      for (std::size_t i = loop_dests_.size(); i < dests_.size(); ++i) {
        Dest* d = dests_[i].get();
        d->loop_snapshot = d->snapshot;
        loop_dests_.push_back(d);
      }
      loop_changed_.swap(changed_ids_);  // both keep their capacity
      for (const std::uint32_t id : loop_changed_) {
        Dest* d = loop_dests_[id - 1];
        d->loop_snapshot = d->snapshot;
      }
    }
    loop_version_ = version;
    for (const std::uint32_t id : loop_changed_) {
      Dest* d = loop_dests_[id - 1];
      if (d->removed.load(std::memory_order_acquire)) {
        if (!d->removal_handled) {
          d->removal_handled = true;
          drop_waiting(d, SendOutcome::destination_removed);
        }
      } else {
        mark_ready(d);  // max_in_flight may have grown
      }
    }
    loop_changed_.clear();
  }

  // Puts `d` at the tail of the ready list if it has work and a free slot. O(1).
  void mark_ready(Dest* d) noexcept {
    if (d->in_ready || !d->has_work() || !d->loop_snapshot) return;
    if (d->in_flight >= d->loop_snapshot->max_in_flight) {
      if (!d->capped) {
        d->capped = true;
        ++capped_count_;
      }
      return;
    }
    d->in_ready = true;
    d->ready_next = nullptr;
    if (ready_tail_ != nullptr) {
      ready_tail_->ready_next = d;
    } else {
      ready_head_ = d;
    }
    ready_tail_ = d;
  }

  Dest* pop_ready() noexcept {
    Dest* d = ready_head_;
    ready_head_ = d->ready_next;
    if (ready_head_ == nullptr) ready_tail_ = nullptr;
    d->ready_next = nullptr;
    d->in_ready = false;
    return d;
  }

  void arm_block_timer(Dest* d) {
    if (d->block_timer_armed) return;
    d->block_timer_armed = true;
    block_timers_.emplace_back(d->blocked_until, d);
    std::push_heap(block_timers_.begin(), block_timers_.end(), std::greater<>());
  }

  void link_waiting(Transfer* t) noexcept {
    Dest* d = t->dest;
    t->wait_prev = nullptr;
    t->wait_next = d->waiting;
    if (d->waiting != nullptr) d->waiting->wait_prev = t;
    d->waiting = t;
    ++d->waiting_count;
  }

  void unlink_waiting(Transfer* t) noexcept {
    Dest* d = t->dest;
    if (t->wait_prev != nullptr) {
      t->wait_prev->wait_next = t->wait_next;
    } else {
      d->waiting = t->wait_next;
    }
    if (t->wait_next != nullptr) t->wait_next->wait_prev = t->wait_prev;
    t->wait_prev = t->wait_next = nullptr;
    --d->waiting_count;
  }

  // Completes every queued, ready and timer-waiting request of `d` with `outcome`.
  // O(requests of d).
  void drop_waiting(Dest* d, SendOutcome outcome) {
    while (Transfer* t = d->queued.pop()) complete(t, outcome);
    while (Transfer* t = d->ready_retries.pop()) complete(t, outcome);
    while (Transfer* t = d->waiting) {
      unlink_waiting(t);
      timers_.erase(t->timer);
      t->has_timer = false;
      complete(t, outcome);
    }
    update_gauges(d);
  }

  static void update_gauges(Dest* d) noexcept {
    DestCounters& k = d->counters();
    DestCounters::set(k.queued, d->queued.size);
    DestCounters::set(k.in_flight, d->in_flight);
    DestCounters::set(k.waiting_for_retry, d->waiting_count + d->ready_retries.size);
  }

  // ---- intake -------------------------------------------------------------------------
  std::size_t drain_requests() {
    std::array<Queued, k_drain_chunk> chunk;
    std::size_t total = 0;
    for (;;) {
      const std::size_t n = requests_.try_dequeue_bulk(chunk.begin(), chunk.size());
      prefetch_dests(n, [&](std::size_t i) { return loop_dest(chunk[i].request.destination); });
      for (std::size_t i = 0; i < n; ++i) route(chunk[i]);
      total += n;
      if (n < chunk.size()) break;
    }
    return total;
  }

  [[nodiscard]] Dest* loop_dest(std::uint32_t id) const noexcept {
    return (id >= 1 && id <= loop_dests_.size()) ? loop_dests_[id - 1] : nullptr;
  }

  // Queues the request on its destination, or completes it (destination_removed). Returns the
  // destination it was queued on, or nullptr.
  Dest* route(const Queued& q) {
    Transfer* t = acquire();
    t->request = q.request;
    t->accepted_ns = q.accepted_ns;
    t->max_response = config_.max_response_bytes;
    const std::uint32_t id = q.request.destination;
    Dest* d = loop_dest(id);
    if (d == nullptr) {
      refresh_destinations();  // the destination may have been added after our last look
      d = loop_dest(id);
    }
    if (d != nullptr) {
      t->dest = d;
      d->counters().requests.add();
    }
    if (d == nullptr || d->removed.load(std::memory_order_acquire)) {
      complete(t, SendOutcome::destination_removed);
      return nullptr;
    }
    d->queued.push(t);
    update_gauges(d);
    mark_ready(d);
    return d;
  }

  void promote_due_timers(clock_type::time_point now) {
    while (!timers_.empty() && timers_.begin()->first <= now) {
      Transfer* t = timers_.begin()->second;
      timers_.erase(timers_.begin());
      t->has_timer = false;
      unlink_waiting(t);
      Dest* d = t->dest;
      d->ready_retries.push(t);
      update_gauges(d);
      mark_ready(d);
    }
    while (!block_timers_.empty() && block_timers_.front().first <= now) {
      Dest* d = block_timers_.front().second;
      std::pop_heap(block_timers_.begin(), block_timers_.end(), std::greater<>());
      block_timers_.pop_back();
      d->block_timer_armed = false;
      if (d->blocked_until > now) {
        arm_block_timer(d);  // extended by a later Retry-After
      } else {
        mark_ready(d);
      }
    }
  }

  // ---- dispatch -----------------------------------------------------------------------
  // Starts requests from the ready list, one per destination per turn, until the list is
  // empty or max_in_flight_total is reached (then the head stays: it goes first next time).
  // O(requests started + stale entries popped).
  std::size_t dispatch(clock_type::time_point now) {
    std::size_t started = 0;
    while (ready_head_ != nullptr && in_flight_total_ < config_.max_in_flight_total) {
      Dest* d = pop_ready();
      if (d->removed.load(std::memory_order_relaxed) || !d->has_work() || !d->loop_snapshot ||
          d->in_flight >= d->loop_snapshot->max_in_flight) {
        continue;  // a finishing attempt or new work puts it back
      }
      if (now < d->blocked_until) {
        arm_block_timer(d);
        continue;
      }
      Transfer* t = d->ready_retries.empty() ? d->queued.pop() : d->ready_retries.pop();
      start_attempt(t, now);
      ++started;
      update_gauges(d);
      mark_ready(d);
    }
    return started;
  }

  EasyHandle* take_easy() {
    if (!easy_pool_.empty()) {
      EasyHandle* e = easy_pool_.back().release();
      easy_pool_.pop_back();
      idle_bytes_ -= idle_cost(*e);
      return e;
    }
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return nullptr;
    auto* e = new (std::nothrow) EasyHandle;
    if (e == nullptr) {
      curl_easy_cleanup(curl);
      return nullptr;
    }
    e->curl = curl;
    return e;
  }

  static void destroy_easy(EasyHandle* e) noexcept { delete e; }

  // Sets the options that are the same for every request of this sender.
  void set_base_options(CURL* e) const noexcept {
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, config_.user_agent.c_str());
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(config_.connect_timeout.count()));
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                     config_.http2 ? static_cast<long>(CURL_HTTP_VERSION_2TLS)
                                   : static_cast<long>(CURL_HTTP_VERSION_1_1));
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &write_body);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &read_header);
    // Never a proxy: "" overrides http_proxy/https_proxy/all_proxy from the environment, which
    // would otherwise carry every destination's traffic past the egress policy.
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    if (gate_.enforcing()) curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &detail::egress_open_socket);
  }

  // Configures a pooled handle for `s` and `headers`, touching only what differs from the
  // handle's last use.
  void configure(EasyHandle& h, const std::shared_ptr<const DestSnapshot>& snap, curl_slist* headers) {
    const DestSnapshot& s = *snap;
    if (h.configured_for != snap) {
      const DestSnapshot* old = h.configured_for.get();
      // CAINFO/CAPATH cannot be unset to curl's built-in defaults one by one: start afresh.
      if (old != nullptr && (std::strcmp(old->ca_file, s.ca_file) != 0 || std::strcmp(old->ca_path, s.ca_path) != 0)) {
        curl_easy_reset(h.curl);
        h.base_set = false;
        h.headers = nullptr;
        h.upload_buffer = 0;
      }
      if (!h.base_set) {
        set_base_options(h.curl);
        h.base_set = true;
      }
      curl_easy_setopt(h.curl, CURLOPT_URL, s.url);
      curl_easy_setopt(h.curl, CURLOPT_TIMEOUT_MS, s.timeout_ms);
      // Over TLS, ALPN tells at handshake whether the connection multiplexes: wait for it
      // rather than open one connection per request. Over cleartext HTTP/1.1 curl would only
      // learn it from the first response, so new transfers would stall behind it.
      curl_easy_setopt(h.curl, CURLOPT_PIPEWAIT, (s.https && config_.http2) ? 1L : 0L);
      curl_easy_setopt(h.curl, CURLOPT_SSL_VERIFYPEER, s.insecure ? 0L : 1L);
      curl_easy_setopt(h.curl, CURLOPT_SSL_VERIFYHOST, s.insecure ? 0L : 2L);
      if (*s.ca_file != '\0') curl_easy_setopt(h.curl, CURLOPT_CAINFO, s.ca_file);
      if (*s.ca_path != '\0') curl_easy_setopt(h.curl, CURLOPT_CAPATH, s.ca_path);
      h.configured_for = snap;
    }
    if (h.headers != headers) {
      curl_easy_setopt(h.curl, CURLOPT_HTTPHEADER, headers);
      h.headers = headers;
    }
  }

  // The header list for `encoding` (built with the snapshot).
  static curl_slist* headers_for(const DestSnapshot& s, std::string_view encoding) noexcept {
    return s.headers[encoding_index(encoding)];
  }

  void start_attempt(Transfer* t, clock_type::time_point now) {
    Dest* d = t->dest;
    t->snapshot = d->loop_snapshot;
    const DestSnapshot& s = *t->snapshot;
    if (t->attempts == 0) t->first_attempt = now;
    ++t->attempts;
    t->response.clear();
    d->counters().attempts.add();
    if (t->attempts > 1) d->counters().rare().retried.add();

    if (const detail::Http1Target* target = http1_target(s)) {
      start_http1(t, *target, now);
      return;
    }
    curl_slist* headers = headers_for(s, t->request.content_encoding);
    EasyHandle* h = take_easy();
    if (h == nullptr) {
      t->last_error = NetworkError::other;
      complete(t, SendOutcome::network_error_final);
      return;
    }
    configure(*h, t->snapshot, headers);
    CURL* e = h->curl;
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->request.body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->request.size));
    // Batches are hundreds of KiB: move them in writes as large as the body (up to curl's
    // 2 MiB maximum) instead of 64 KiB: a tenth of the send() calls, and on loopback 2.5x less
    // sender CPU per span (tracecast-bench-e2e single-none: 1,380 -> 540 ns). The buffer lives
    // with its easy handle; park() bounds how many idle handles keep one.
    const long upload = upload_buffer_size(t->request.size);
    if (h->upload_buffer != upload) {
      curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, upload);
      h->upload_buffer = upload;
    }
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    reset_answer(t);
    if (gate_.enforcing()) {
      // Consulted only when this attempt opens a new connection (a reused one was checked
      // when it was opened).
      t->socket_gate = detail::SocketGate{&gate_, s.egress_host_allowed, false};
      curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &t->socket_gate);
    }
    t->easy = h;
    if (curl_multi_add_handle(multi_, e) != CURLM_OK) {
      park(h);
      t->easy = nullptr;
      t->last_error = NetworkError::other;
      complete(t, SendOutcome::network_error_final);
      return;
    }
    note_started(d, t);
  }

  // What the header and body callbacks gather per attempt starts afresh (either client).
  static void reset_answer(Transfer* t) noexcept {
    t->header_bytes = 0;
    t->body_bytes = 0;
    t->header_overflow = false;
    t->body_overflow = false;
    t->retry_after_len = 0;
  }

  // An attempt is in flight (either client): its slots and bytes are counted.
  void note_started(Dest* d, const Transfer* t) {
    ++d->in_flight;
    ++in_flight_total_;
    d->counters().bytes_sent.add(t->request.size);
  }

  // The built-in client's target for `s`, made at its first request; nullptr: curl serves it
  // (https://, the client off, or a URL or header set it does not take).
  const detail::Http1Target* http1_target(const DestSnapshot& s) {
    if (!http1_ || s.https) return nullptr;
    if (!s.http1_checked) {
      s.http1_checked = true;
      std::vector<std::string_view> lines;
      for (const std::string_view line : HeaderLines{s.headers[0]}) lines.push_back(line);
      s.http1 = detail::Http1Target::make(s.url, lines, s.egress_host_allowed, *http1_);
    }
    return s.http1.get();
  }

  void start_http1(Transfer* t, const detail::Http1Target& target, clock_type::time_point now) {
    Dest* d = t->dest;
    const DestSnapshot& s = *t->snapshot;
    target.write_head(t->http1_head, config_.user_agent, HeaderLines{s.headers[0]},
                      k_http1_encoding_lines[encoding_index(t->request.content_encoding)], t->request.size);
    detail::Http1Exchange& x = t->http1;
    x.host = target.host;
    x.host_allowed = target.host_allowed;
    x.head = t->http1_head;
    x.body = t->request.body;
    x.size = t->request.size;
    x.timeout = std::chrono::milliseconds(s.timeout_ms);
    x.deadline = now + x.timeout;
    x.owner = d;
    x.on_header = &read_header;
    x.on_body = &write_body;
    x.user = t;
    reset_answer(t);
    t->socket_gate.blocked = false;
    t->http1_in_flight = true;
    note_started(d, t);
    http1_->start(&x, now);
  }

  static long upload_buffer_size(std::size_t body) noexcept {
    constexpr std::size_t k_min = 64 * 1024;        // curl's default
    constexpr std::size_t k_max = 2 * 1024 * 1024;  // curl's maximum
    return static_cast<long>(std::clamp(body, k_min, k_max));
  }

  // What an idle handle holds: curl's upload buffer (64 KiB .. 2 MiB, see above), its 16 KiB
  // receive buffer and a few KiB of state.
  static std::size_t idle_cost(const EasyHandle& e) noexcept {
    return static_cast<std::size_t>(e.upload_buffer) + 24 * 1024;
  }

  // Back to the idle pool. It keeps k_idle_handles whatever their size, and more while the
  // idle handles hold under k_idle_bytes (with 64 KiB buffers: ~90 handles): a handle
  // destroyed here is created again (curl_easy_init, buffers, every option) as soon as the
  // next requests start, which was half of all attempts on loopback with 64 in flight and
  // cost ~3 us each. Connections live in the multi handle's cache, not in the easy handle,
  // so cleaning a handle up loses none.
  void park(EasyHandle* e) {
    constexpr std::size_t k_idle_handles = 16;
    constexpr std::size_t k_idle_bytes = 8U << 20;
    const std::size_t cost = idle_cost(*e);
    if (easy_pool_.size() >= k_idle_handles && idle_bytes_ + cost > k_idle_bytes) {
      destroy_easy(e);
      return;
    }
    easy_pool_.emplace_back(e);
    idle_bytes_ += cost;
  }

  // ---- results ------------------------------------------------------------------------
  void finish_attempt(CURL* e, CURLcode code, clock_type::time_point now) {
    Transfer* t = nullptr;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
    long status = 0;
    long connects = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &connects);
    curl_multi_remove_handle(multi_, e);
    if (t == nullptr) {
      curl_easy_cleanup(e);  // not ours to pool: never happens
      return;
    }
    park(t->easy);
    t->easy = nullptr;
    finish_transfer(t, code, status, connects, now);
  }

  // An attempt of the built-in client ended.
  void finish_http1(detail::Http1Exchange* x, clock_type::time_point now) {
    auto* t = static_cast<Transfer*>(x->user);
    t->http1_in_flight = false;
    t->socket_gate.blocked = x->blocked;
    finish_transfer(t, static_cast<CURLcode>(x->code), x->status, x->connects, now);
  }

  // Classifies an attempt that ended (by curl or the built-in client: the same codes) and
  // completes, retries or requeues its request.
  void finish_transfer(Transfer* t, CURLcode code, long status, long connects, clock_type::time_point now) {
    Dest* d = t->dest;
    if (d->capped) {  // a slot frees: mark_ready() below decides again
      d->capped = false;
      --capped_count_;
    }
    --d->in_flight;
    --in_flight_total_;
    DestCounters& k = d->counters();
    k.connections_opened.add(static_cast<std::uint64_t>(std::max(0L, connects)));

    // A body cut past max_response bytes (we aborted it) still has its status: classify by it.
    if (code == CURLE_WRITE_ERROR && t->body_overflow && status > 0) {
      code = CURLE_OK;
      t->malformed = true;
    }
    if (t->header_overflow) t->malformed = true;

    const bool removed = d->removed.load(std::memory_order_acquire);
    if (code == CURLE_OK) {
      t->last_status = static_cast<int>(status);
      t->last_error = NetworkError::none;
      if (status > 0) k.add_status(static_cast<int>(status));
      if (status >= 200 && status < 300) {
        // A body over the bound is not parsed: partialSuccess past the kept bytes is unknown
        // and the batch counts as delivered (the server accepted it; a retry would duplicate).
        if (!t->body_overflow) {
          const detail::PartialSuccess partial = detail::parse_partial_success(
              t->response, t->request.items, t->snapshot != nullptr && t->snapshot->protobuf);
          t->rejected_items = partial.rejected;
          t->partial_warning = partial.rejected == 0 && partial.has_message;
          if (partial.malformed) t->malformed = true;
        }
        complete(t, SendOutcome::delivered);
      } else if (detail::is_retryable_status(static_cast<int>(status))) {
        const std::int64_t now_unix = std::chrono::duration_cast<std::chrono::seconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count();
        const detail::RetryAfter after = detail::parse_retry_after(
            std::string_view(t->retry_after.data(), t->retry_after_len), now_unix);
        if (after.kind == detail::RetryAfter::Kind::invalid || after.clamped) t->malformed = true;
        const std::int64_t wait_s = after.kind == detail::RetryAfter::Kind::delay ? after.seconds : 0;
        schedule_retry(t, now, wait_s, detail::throttles_destination(static_cast<int>(status), wait_s > 0),
                       removed);
      } else {
        complete(t, SendOutcome::rejected);
      }
    } else if (t->socket_gate.blocked) {
      // The policy refused the address(es): no connection was made, and retrying would
      // resolve to the same kind of address. Final, counted as blocked.
      t->last_status = 0;
      t->last_error = NetworkError::connect;
      complete(t, SendOutcome::blocked);
    } else {
      const detail::NetworkFailure failure = detail::classify_curl_code(static_cast<int>(code));
      t->last_status = status > 0 ? static_cast<int>(status) : 0;
      t->last_error = failure.error;
      k.rare().by_network_error[static_cast<std::size_t>(failure.error)].add();
      if (failure.retryable) {
        schedule_retry(t, now, 0, false, removed);
      } else {
        complete(t, SendOutcome::network_error_final);
      }
    }
    update_gauges(d);
    mark_ready(d);  // a slot is free
  }

  // retry_after_s: 0..detail::k_max_retry_after_s (parse_retry_after() bounds it), so the
  // time arithmetic below cannot overflow.
  void schedule_retry(Transfer* t, clock_type::time_point now, std::int64_t retry_after_s, bool throttle,
                      bool removed) {
    if (removed) {
      complete(t, SendOutcome::destination_removed);
      return;
    }
    if (stop_.load(std::memory_order_acquire)) {
      complete(t, SendOutcome::aborted);
      return;
    }
    const auto delay = retry_after_s > 0
                           ? std::chrono::duration_cast<clock_type::duration>(std::chrono::seconds(retry_after_s))
                           : std::chrono::duration_cast<clock_type::duration>(
                                 detail::jittered_backoff(config_.retry, t->attempts, rng_));
    const clock_type::time_point at = now + delay;
    if (at > t->first_attempt + config_.retry.max_elapsed) {
      complete(t, SendOutcome::retries_exhausted);
      return;
    }
    Dest* d = t->dest;
    if (throttle && at > d->blocked_until) d->blocked_until = at;
    t->timer = timers_.emplace(at, t);
    t->has_timer = true;
    link_waiting(t);
    if (config_.report_retries) {
      // Not final: the consumer learns that the destination is failing now, not only once
      // max_elapsed has run out. outstanding_ is not touched (poll_completions skips these).
      Completion c;
      c.tag = t->request.tag;
      c.destination = t->request.destination;
      c.network_error = t->last_error;
      c.http_status = t->last_status;
      c.attempts = t->attempts;
      c.items = t->request.items;
      c.malformed_answer = t->malformed;
      c.retrying = true;
      // At most one per waiting request between two polls in practice; enqueue() (which may
      // allocate) only if the preallocated room is used up by a slow consumer.
      if (!completions_.try_enqueue(c)) completions_.enqueue(c);
    }
  }

  std::size_t read_results(clock_type::time_point now) {
    std::size_t finished = 0;
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      finish_attempt(msg->easy_handle, msg->data.result, now);
      ++finished;
    }
    if (http1_) {
      http1_done_.clear();
      http1_->perform(now, http1_done_);
      prefetch_dests(http1_done_.size(), [this](std::size_t i) { return static_cast<const Transfer*>(http1_done_[i]->user)->dest; });
      for (detail::Http1Exchange* x : http1_done_) finish_http1(x, now);
      finished += http1_done_.size();
    }
    return finished;
  }

  // Milliseconds curl_multi_poll may sleep: 0 when a destination can start a request, else
  // until the next retry timer or Retry-After block ends (curl shortens it for its own
  // timers). O(1).
  [[nodiscard]] int poll_timeout_ms(clock_type::time_point now) const noexcept {
    if (ready_head_ != nullptr && in_flight_total_ < config_.max_in_flight_total) return 0;
    clock_type::time_point next = now + std::chrono::seconds(1);
    if (!timers_.empty()) next = std::min(next, timers_.begin()->first);
    if (!block_timers_.empty()) next = std::min(next, block_timers_.front().first);
    if (http1_) next = std::min(next, http1_->next_wake());
    if (next <= now) return 0;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
    return static_cast<int>(std::min<std::int64_t>(ms, 1000));
  }

  // Aborts everything: O(transfers), which queue_capacity bounds, never O(destinations).
  void abort_everything() {
    // In flight: remove from curl and abort.
    std::vector<Transfer*> in_flight;
    std::vector<Dest*> holding;
    for (auto& owned : transfers_) {
      Transfer* t = owned.get();
      if (t->easy != nullptr || t->http1_in_flight) {
        in_flight.push_back(t);
      } else if (t->dest != nullptr && !t->dest->abort_mark) {
        t->dest->abort_mark = true;  // queued, ready or waiting for a retry
        holding.push_back(t->dest);
      }
    }
    for (Transfer* t : in_flight) {
      if (t->http1_in_flight) {
        http1_->cancel(&t->http1);
        t->http1_in_flight = false;
      } else {
        EasyHandle* h = t->easy;
        curl_multi_remove_handle(multi_, h->curl);
        park(h);
        t->easy = nullptr;
      }
      --t->dest->in_flight;
      --in_flight_total_;
      complete(t, SendOutcome::aborted);
    }
    for (Dest* d : holding) {
      d->abort_mark = false;
      drop_waiting(d, SendOutcome::aborted);
    }
    // Requests still in the queue (routed, then aborted).
    std::array<Queued, k_drain_chunk> chunk;
    for (;;) {
      const std::size_t n = requests_.try_dequeue_bulk(chunk.begin(), chunk.size());
      for (std::size_t i = 0; i < n; ++i) {
        if (Dest* d = route(chunk[i])) drop_waiting(d, SendOutcome::aborted);
      }
      if (n == 0) break;
    }
  }

  // Answer ticks: while the loop is busy and no destination waits for a slot, it sleeps this
  // long without watching the built-in client's sockets and without being woken for new
  // requests, then takes everything that arrived at once. At 3,000 requests a second over
  // 15,000 destinations a wake-up per answer and per hand-over was half the sender's CPU
  // (the scheduler's switch in and out; README "The sender's HTTP/1.1 client"). Costs at
  // most this much latency per request, never throughput: a destination with work waiting
  // for a slot (a busy one) makes the loop watch its answers again. 4 ms (was 2, with the
  // worker's nap): half the wake-ups, and the requests of a tick leave together, in longer
  // trains (README "Answer ticks and naps").
  static constexpr int k_answer_tick_ms = 4;

  void run() {
    bool busy = false;  // the last round did something (drained, started or finished)
    for (;;) {
      refresh_destinations();
      std::size_t work = drain_requests();
      if (stop_.load(std::memory_order_acquire)) {
        abort_everything();
        return;
      }
      clock_type::time_point now = clock_type::now();
      promote_due_timers(now);
      work += dispatch(now);
      int running = 0;
      curl_multi_perform(multi_, &running);
      // A transfer that finished inside this perform frees a slot: its destination goes back
      // to the ready list if it has work, and poll_timeout_ms() then says 0 (go round without
      // sleeping). Nothing to send: sleep, even right after completions.
      now = clock_type::now();
      work += read_results(now);
      int timeout = poll_timeout_ms(now);
      const bool tick = busy && work > 0 && http1_ && in_flight_total_ > 0 && capped_count_ == 0 &&
                        (ready_head_ == nullptr || in_flight_total_ < config_.max_in_flight_total);
      busy = work > 0;
      if (tick) {
        // Not announced as sleeping: producers do not wake it; it looks again within the tick.
        if (requests_.size_approx() > 0 || stop_.load(std::memory_order_acquire)) timeout = 0;
        timeout = std::min(timeout, k_answer_tick_ms);
        if (timeout > 0) curl_multi_poll(multi_, nullptr, 0, timeout, nullptr);
        continue;
      }
      // Dekker-style handshake with try_send(): announce the sleep, then look at the queue
      // once more; a producer that enqueued after our look sees sleeping_ and wakes us.
      sleeping_.store(true, std::memory_order_seq_cst);
      std::atomic_thread_fence(std::memory_order_seq_cst);  // store sleeping_ before reading the queue
      if (requests_.size_approx() > 0 || stop_.load(std::memory_order_seq_cst) ||
          dest_version_.load(std::memory_order_seq_cst) != loop_version_) {
        timeout = 0;
      }
      if (timeout > 0) {
        curl_waitfd extra{};
        extra.fd = http1_ ? http1_->fd() : -1;
        extra.events = CURL_WAIT_POLLIN;
        curl_multi_poll(multi_, http1_ ? &extra : nullptr, http1_ ? 1 : 0, timeout, nullptr);
      }
      sleeping_.store(false, std::memory_order_seq_cst);
    }
  }
};

Sender::Sender(SenderConfig config) {
  check_config(config);
  if (!detail::ensure_curl_global_init()) throw std::runtime_error("curl_global_init failed");
  impl_ = std::make_unique<Impl>(std::move(config));
  impl_->multi_ = curl_multi_init();
  if (impl_->multi_ == nullptr) throw std::runtime_error("curl_multi_init failed");
  curl_multi_setopt(impl_->multi_, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  // Keep an idle connection for every in-flight slot: curl's default cache (4 x handles
  // currently added) is too small when handles come and go, and closes warm connections.
  curl_multi_setopt(impl_->multi_, CURLMOPT_MAXCONNECTS,
                    static_cast<long>(std::max<std::uint32_t>(impl_->config_.max_in_flight_total, 16)));
  curl_multi_setopt(impl_->multi_, CURLMOPT_MAX_HOST_CONNECTIONS,
                    static_cast<long>(impl_->config_.max_connections_per_host));
  impl_->thread_ = std::thread([impl = impl_.get()] {
    pthread_setname_np(pthread_self(), "tracecast-send");  // shows in top, perf, gdb
    impl->run();
  });
}

Sender::~Sender() {
  shutdown(std::chrono::steady_clock::now());
  impl_->easy_pool_.clear();
  curl_multi_cleanup(impl_->multi_);
}

AddDestinationResult Sender::add_destination(const DestinationConfig& config) {
  const DestinationConfig* one = &config;
  return std::move(add_destinations(std::span(&one, 1)).front());
}

std::vector<AddDestinationResult> Sender::add_destinations(std::span<const DestinationConfig* const> configs) {
  std::vector<AddDestinationResult> results(configs.size());
  std::vector<std::unique_ptr<Dest>> made(configs.size());
  std::size_t valid = 0;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    results[i].issues = validate(*configs[i]);
    if (has_errors(results[i].issues)) continue;
    made[i] = std::make_unique<Dest>();
    made[i]->snapshot = make_snapshot(*configs[i], impl_->gate_);
    ++valid;
  }
  if (valid == 0) return results;
  {
    std::lock_guard<std::mutex> lock(impl_->dest_mutex_);
    impl_->dests_.reserve(impl_->dests_.size() + valid);
    for (std::size_t i = 0; i < configs.size(); ++i) {
      if (!made[i]) continue;
      made[i]->id = static_cast<std::uint32_t>(impl_->dests_.size() + 1);
      results[i].id = made[i]->id;
      impl_->dests_.push_back(std::move(made[i]));
    }
  }
  impl_->dest_version_.fetch_add(1, std::memory_order_acq_rel);
  impl_->wake();
  return results;
}

std::vector<ValidationIssue> Sender::update_destination(std::uint32_t id, const DestinationConfig& config) {
  std::vector<ValidationIssue> issues = validate(config);
  if (has_errors(issues)) return issues;
  auto snapshot = make_snapshot(config, impl_->gate_);
  {
    std::lock_guard<std::mutex> lock(impl_->dest_mutex_);
    if (id == 0 || id > impl_->dests_.size() || impl_->dests_[id - 1]->removed.load(std::memory_order_acquire)) {
      issues.push_back({"id", "unknown or removed destination id", false});
      return issues;
    }
    impl_->dests_[id - 1]->snapshot = std::move(snapshot);
    impl_->changed_ids_.push_back(id);
  }
  impl_->dest_version_.fetch_add(1, std::memory_order_acq_rel);
  impl_->wake();
  return issues;
}

void Sender::remove_destination(std::uint32_t id) {
  {
    std::lock_guard<std::mutex> lock(impl_->dest_mutex_);
    if (id == 0 || id > impl_->dests_.size()) return;
    Dest& d = *impl_->dests_[id - 1];
    if (d.removed.exchange(true, std::memory_order_acq_rel)) return;  // removed before
    impl_->changed_ids_.push_back(id);
  }
  impl_->dest_version_.fetch_add(1, std::memory_order_acq_rel);
  impl_->wake();
}

bool Sender::try_send(const SendRequest& request, SendWake wake_when) noexcept {
  Impl& s = *impl_;
  if (request.body == nullptr && request.size > 0) {
    s.queue_full_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  // Count first, then look at closed_: shutdown() sets closed_ and then waits for
  // unfinished_ to reach zero, so a request counted here is always completed.
  s.unfinished_.fetch_add(1, std::memory_order_seq_cst);
  if (s.closed_.load(std::memory_order_seq_cst)) {
    s.unfinished_.fetch_sub(1, std::memory_order_acq_rel);
    s.queue_full_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (s.outstanding_.fetch_add(1, std::memory_order_acq_rel) >= s.config_.queue_capacity ||
      !s.requests_.try_enqueue(Queued{request, now_ns()})) {
    s.outstanding_.fetch_sub(1, std::memory_order_acq_rel);
    if (s.unfinished_.fetch_sub(1, std::memory_order_acq_rel) == 1 && s.closed_.load(std::memory_order_acquire)) {
      std::lock_guard<std::mutex> lock(s.done_mutex_);
      s.done_cv_.notify_all();
    }
    s.queue_full_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (wake_when == SendWake::now) wake();
  return true;
}

void Sender::wake() noexcept {
  Impl& s = *impl_;
  // Pairs with the fence in run(): the caller's enqueues are ordered before reading sleeping_.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (s.sleeping_.load(std::memory_order_relaxed) && s.sleeping_.exchange(false, std::memory_order_acq_rel)) {
    curl_multi_wakeup(s.multi_);
  }
}

std::size_t Sender::poll_completions(Completion* out, std::size_t max_items) noexcept {
  const std::size_t n = impl_->completions_.try_dequeue_bulk(out, max_items);
  std::size_t final_ones = n;
  for (std::size_t i = 0; i < n; ++i) final_ones -= out[i].retrying ? 1 : 0;
  if (final_ones > 0) impl_->outstanding_.fetch_sub(final_ones, std::memory_order_acq_rel);
  return n;
}

void Sender::shutdown(std::chrono::steady_clock::time_point deadline) noexcept {
  Impl& s = *impl_;
  std::lock_guard<std::mutex> once(s.shutdown_mutex_);
  if (s.shut_down_) return;
  s.shut_down_ = true;
  s.closed_.store(true, std::memory_order_seq_cst);
  s.wake();
  {
    std::unique_lock<std::mutex> lock(s.done_mutex_);
    s.done_cv_.wait_until(lock, deadline,
                          [&s] { return s.unfinished_.load(std::memory_order_acquire) == 0; });
  }
  s.stop_.store(true, std::memory_order_seq_cst);
  s.wake();
  if (s.thread_.joinable()) s.thread_.join();
  // A try_send() that counted itself just before closed_ was set may enqueue after the
  // thread's last drain: abort it here. The window is a few instructions long.
  while (s.unfinished_.load(std::memory_order_acquire) > 0) {
    try {
      s.abort_everything();
    } catch (...) {
      break;
    }
    if (s.unfinished_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
  }
}

const EgressPolicy& Sender::egress_policy() const noexcept { return impl_->config_.egress; }

std::uint64_t Sender::pending_guess() const noexcept {
  return impl_->unfinished_.load(std::memory_order_relaxed);
}

SenderStats Sender::stats() const {
  SenderStats out;
  out.total.name = "total";
  out.queue_full = impl_->queue_full_.load(std::memory_order_relaxed);
  std::map<int, std::uint64_t> total_status;
  std::lock_guard<std::mutex> lock(impl_->dest_mutex_);
  out.destinations.reserve(impl_->dests_.size());
  for (const auto& d : impl_->dests_) {
    DestinationStats s;
    s.id = d->id;
    s.name = d->snapshot ? std::string(d->snapshot->name) : std::string();
    const DestCounters* k = d->counters_ptr.load(std::memory_order_acquire);  // nullptr: never sent
    const DestRareCounters* r = k != nullptr ? k->rare_ptr.load(std::memory_order_acquire) : nullptr;
    if (k != nullptr) {
      s.requests = k->requests.get();
      s.attempts = k->attempts.get();
      s.delivered = k->delivered.get();
      s.bytes_sent = k->bytes_sent.get();
      s.connections_opened = k->connections_opened.get();
      s.queued = k->queued.load(std::memory_order_relaxed);
      s.in_flight = k->in_flight.load(std::memory_order_relaxed);
      s.waiting_for_retry = k->waiting_for_retry.load(std::memory_order_relaxed);
      auto add_status = [&s, &total_status](int code, std::uint64_t n) {
        s.responses_by_status.emplace_back(code, n);
        total_status[code] += n;
      };
      k->by_status.for_each(add_status);
      if (r != nullptr) r->more_status.for_each(add_status);
      std::sort(s.responses_by_status.begin(), s.responses_by_status.end());
    }
    if (r != nullptr) {
      s.retried = r->retried.get();
      s.rejected = r->rejected.get();
      s.retries_exhausted = r->retries_exhausted.get();
      s.network_errors_final = r->network_errors_final.get();
      s.aborted = r->aborted.get();
      s.removed = r->removed.get();
      s.blocked = r->blocked.get();
      s.malformed_answers = r->malformed_answers.get();
      s.rejected_items = r->rejected_items.get();
      s.partial_success_warnings = r->partial_success_warnings.get();
      s.responses_other_status = r->other_status.get();
      for (std::size_t i = 0; i < k_network_error_slots; ++i) {
        s.network_errors[i] = r->by_network_error[i].get();
        out.total.network_errors[i] += s.network_errors[i];
      }
    }
    DestinationStats& t = out.total;
    t.requests += s.requests;
    t.attempts += s.attempts;
    t.delivered += s.delivered;
    t.retried += s.retried;
    t.rejected += s.rejected;
    t.retries_exhausted += s.retries_exhausted;
    t.network_errors_final += s.network_errors_final;
    t.aborted += s.aborted;
    t.removed += s.removed;
    t.blocked += s.blocked;
    t.malformed_answers += s.malformed_answers;
    t.rejected_items += s.rejected_items;
    t.partial_success_warnings += s.partial_success_warnings;
    t.bytes_sent += s.bytes_sent;
    t.connections_opened += s.connections_opened;
    t.queued += s.queued;
    t.in_flight += s.in_flight;
    t.waiting_for_retry += s.waiting_for_retry;
    t.responses_other_status += s.responses_other_status;
    out.destinations.push_back(std::move(s));
  }
  out.total.responses_by_status.assign(total_status.begin(), total_status.end());
  return out;
}

}  // namespace tracecast
