// The sender: one thread driving one curl multi handle for every destination.
//
//   producers --try_send()--> [request queue, lock-free MPMC] --> sender thread
//                                                                  | per destination: queued,
//                                                                  | in flight (<= cap),
//                                                                  | waiting for retry
//   consumer <--poll_completions()-- [completion queue] <----------+
//
// Knows bytes and destinations, never spans. Bodies are not copied: the caller keeps a body
// alive until its Completion is popped. No curl, moodycamel or simdjson in this header.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tracecast/destination.h"
#include "tracecast/egress.h"

namespace tracecast {

// Exponential backoff with full jitter (OTLP spec: retry 429/502/503/504 and connection
// failures with exponential backoff and jitter). Retry n (n = 1, 2, ...) waits
//   uniform(0, min(max_interval, initial_interval * multiplier^(n-1)))
// unless the server sent Retry-After (seconds or an HTTP date), which is waited instead.
// A retry that would start after first_attempt + max_elapsed is not made: the request
// completes as retries_exhausted. Defaults are the OpenTelemetry Collector's
// (exporterhelper retry_on_failure); the Collector jitters +-50%, we use full jitter, which
// spreads a fleet's retries better after a shared outage (AWS "Exponential Backoff And Jitter").
// Ranges (validate(SenderConfig), the rows "retry.*" of sender_settings()):
struct RetryPolicy {
  std::chrono::milliseconds initial_interval{5000};  // 1 ms..10 min
  double multiplier = 1.5;                           // 1..100
  std::chrono::milliseconds max_interval{30000};     // initial_interval..10 min
  std::chrono::milliseconds max_elapsed{300000};     // 0..24 h; 0 = never retry
};

// One config struct for the sender. Checked by validate(SenderConfig) (below), which the
// constructor calls (std::invalid_argument) and PipelineConfig's validation uses too: one set
// of rules. Ranges are in sender_settings() (README "Configuration" is generated from them).
struct SenderConfig {
  // How many requests run at once, three caps, all enforced by the sender thread:
  //   - per destination: DestinationConfig::max_in_flight (default 4);
  //   - per host (scheme + host + port, shared by every destination on it, e.g. the tenants
  //     of one regional Grafana gateway): max_connections_per_host connections;
  //   - in total: max_in_flight_total requests.
  // Over HTTP/2 (TLS + ALPN, the normal case for a cloud endpoint) requests of all the
  // destinations on one host multiplex as streams over few connections (curl's default of
  // 100 concurrent streams per connection, CURLMOPT_MAX_CONCURRENT_STREAMS), so the host cap
  // limits connections, not requests. Over HTTP/1.1 each request needs its own connection
  // (the built-in client's trains, http1_pipeline_depth, put several on one connection only
  // while the host answers fast): the host cap is then the limit of requests in flight to
  // that host, and behind a slow
  // host (2 s per answer) 256 connections allow 128 requests/s where 8 allowed 4. A
  // request that finds its host at the cap waits inside curl, where its per-attempt
  // timeout already runs: behind a slow host that became timeouts, retries and duplicates
  // at the receiver, so by default the host cap is left to max_in_flight_total (nothing
  // ever waits inside curl) and an operator sets one only for a host that needs it.
  //
  // Requests in flight over all destinations. Range 1 .. 65536.
  std::uint32_t max_in_flight_total = 256;
  // TCP + TLS connect timeout per attempt. Range 1 ms .. 10 min.
  std::chrono::milliseconds connect_timeout{5000};
  RetryPolicy retry;
  // Requests accepted and not yet popped as completions (queued, in flight, waiting for retry
  // or completed-not-polled). try_send() returns false beyond it. Power of two, 32 .. 2^20.
  std::uint32_t queue_capacity = 4096;
  // Producer threads that call try_send() (sizes the preallocated lock-free queue so that
  // try_send never allocates). Range 1 .. 256.
  std::uint32_t max_producers = 16;
  // Offer HTTP/2 (ALPN over TLS; prior knowledge is never assumed for http://). HTTP/1.1
  // otherwise; requests multiplex over one connection per host on HTTP/2.
  bool http2 = true;
  // http:// destinations go through the sender's own HTTP/1.1 client (kept-alive connections,
  // one sendmsg() of head and body per request, no per-request setup: README "Design", "The
  // sender's HTTP/1.1 client") instead of curl; https:// always uses curl. false: curl for
  // every destination.
  bool builtin_http1 = true;
  // The built-in client's trains (HTTP/1.1 pipelining, RFC 9112 section 9.3.2): up to this
  // many requests of different destinations waiting for one host are written back to back on
  // one kept-alive connection in one sendmsg(), their answers read in order, while that host
  // answers within 50 ms; the host's other connections and the cap stay as they are. It cuts
  // the sender's system calls and the kernel's per-packet work when many tenants share one
  // collector (README "Design", "Trains"). Only to the operator's own collectors: addresses
  // in egress.allow_cidrs or hosts in egress.allow_hosts (any address when egress.enforce is
  // false), never to a public address a customer gave. Trains stop for good to a host that
  // closes or goes silent with a train outstanding, and never go to an HTTP/1.0 server. A
  // server or proxy that drops a pipelined request yet answers the ones after it shifts
  // answers onto the wrong requests until a timeout stops trains: set 1 for collectors behind
  // such a proxy. 1: one request per connection at a time. Range 1 .. 16. Default 16: at
  // 100,000 accounts (1.9 spans per request) the sender's CPU per span was 31% lower than at 8
  // (README Performance, eighth pass).
  std::uint32_t http1_pipeline_depth = 16;
  std::string user_agent = "tracecast/0.1";
  // Connections per host (CURLMOPT_MAX_HOST_CONNECTIONS for curl, the same cap per name:port in
  // the built-in HTTP/1.1 client), shared by every destination on that host;
  // max_in_flight_total bounds it as well. 0 = no cap of its own (bounded by
  // max_in_flight_total). Range 0 .. 1024. Default 0 (see the model above).
  std::size_t max_connections_per_host = 0;
  // Response body bytes kept to look for partialSuccess. A body longer than this (and than
  // 4 KiB, which is always read so that a small answer keeps its connection) is not read
  // further: the transfer is cut there (the connection closed), classified by its status and
  // counted as a malformed answer, so an endless or 1 GB answer costs at most this much.
  // Range 0 .. 16 MiB.
  std::size_t max_response_bytes = 64 * 1024;
  // When true, an attempt that failed and will be retried also yields a Completion with
  // `retrying` set (not final: the request's final Completion still follows), so a consumer
  // can show a destination as retrying while its retries run (up to retry.max_elapsed)
  // instead of only once they ran out. The Pipeline turns it on for destination health.
  // Default false: one Completion per request.
  bool report_retries = false;
  // Seed of the jitter generator (tests); 0 = from std::random_device.
  std::uint64_t jitter_seed = 0;
  // Which addresses destinations may connect to (tracecast/egress.h). Default: public
  // unicast only. Checked on every new connection; a refused one completes its request as
  // SendOutcome::blocked (never retried). Environment proxies are never used.
  EgressPolicy egress;
};

// The rows describing SenderConfig's fields, RetryPolicy's under "retry." and EgressPolicy's
// under "egress." (tracecast/settings.h). Thread-safe, no allocation.
[[nodiscard]] std::span<const Setting> sender_settings() noexcept;

// Every issue of a SenderConfig, named relative to it ("retry.multiplier",
// "egress.allow_cidrs[2]"): the ranges of sender_settings() (retry intervals 1 ms..10 min,
// max_interval >= initial_interval, multiplier 1..100, max_elapsed 0..24 h, ...), a user agent
// with a control byte, the egress policy's issues. Thread-safe (pure). Allocates only for
// issues.
[[nodiscard]] std::vector<ValidationIssue> validate(const SenderConfig& config);

enum class SendOutcome : std::uint8_t {
  delivered,            // 2xx (possibly with partialSuccess: see rejected_items)
  rejected,             // non-retryable HTTP status (400, 401, 403, 404, 413, ...)
  retries_exhausted,    // retryable failures until max_elapsed ran out
  network_error_final,  // a failure retrying cannot fix (TLS verification, bad URL, ...)
  aborted,              // shutdown deadline passed first
  destination_removed,  // destination removed (or never existed) before it was sent
  blocked,              // the egress policy refused every address of the destination: no
                        // connection was made; not retried (SenderConfig::egress)
};

// Why the last attempt failed at the transport level (none when a response arrived).
enum class NetworkError : std::uint8_t {
  none, dns, connect, tls, timeout, send_recv, other,
};

[[nodiscard]] std::string_view to_string(SendOutcome outcome) noexcept;
[[nodiscard]] std::string_view to_string(NetworkError error) noexcept;

struct Completion {
  std::uint64_t tag = 0;           // SendRequest::tag, unchanged
  std::uint32_t destination = 0;   // SendRequest::destination
  SendOutcome outcome = SendOutcome::aborted;
  NetworkError network_error = NetworkError::none;  // of the last attempt
  int http_status = 0;             // of the last attempt; 0: no response
  std::uint32_t attempts = 0;      // requests actually sent (0 if never sent)
  std::uint32_t items = 0;         // SendRequest::items, unchanged
  std::uint64_t rejected_items = 0;   // partialSuccess.rejectedSpans of a 2xx
  bool partial_success_warning = false;  // partialSuccess.errorMessage with 0 rejected
  // The answer broke a rule and was handled conservatively: a body past max_response_bytes
  // (read no further: the transfer is cut, the status decides, partialSuccess past the cut
  // is unknown and the batch counts as delivered), headers over 64 KiB, a Retry-After that
  // is garbage or negative (ignored) or over a day (clamped), a rejectedSpans that is not an
  // integer in 0..items (clamped to items, rounded up, or ignored: see retry_policy.h).
  bool malformed_answer = false;
  std::uint64_t latency_ns = 0;    // from try_send() to completion
  // Only with SenderConfig::report_retries: true = not final. The attempt failed (its
  // http_status / network_error above; attempts so far) and a retry is scheduled; the
  // request is still outstanding, its body still in use; `outcome` is meaningless. The
  // request's final Completion (retrying false) comes later, exactly once.
  bool retrying = false;
};

struct SendRequest {
  std::uint32_t destination = 0;  // id from add_destination()
  std::uint64_t tag = 0;          // caller's cookie, returned in the Completion
  const char* body = nullptr;     // not copied; alive until the Completion is popped
  std::size_t size = 0;
  std::string_view content_encoding;  // "", "none", "gzip" or "zstd" (static storage or alive as body)
  std::uint32_t items = 0;            // spans in the body (for the Completion and stats)
};

// Result of add_destination(): an id, or the validation errors (warnings come either way).
struct AddDestinationResult {
  std::uint32_t id = 0;
  std::vector<ValidationIssue> issues;
  [[nodiscard]] bool ok() const noexcept { return !has_errors(issues); }
};

// Counters of one destination (or the total). A snapshot of values each read atomically
// (relaxed): counters from one snapshot need not add up exactly while requests move.
struct DestinationStats {
  std::uint32_t id = 0;
  std::string name;                    // DestinationConfig::name, never a credential
  std::uint64_t requests = 0;          // accepted by try_send
  std::uint64_t attempts = 0;          // HTTP requests started (first tries + retries)
  std::uint64_t delivered = 0;
  std::uint64_t retried = 0;           // attempts that were retries
  std::uint64_t rejected = 0;          // completions with outcome rejected
  std::uint64_t retries_exhausted = 0;
  std::uint64_t network_errors_final = 0;
  std::uint64_t aborted = 0;
  std::uint64_t removed = 0;
  std::uint64_t blocked = 0;           // completions with outcome blocked (egress policy)
  std::uint64_t malformed_answers = 0;  // completions with Completion::malformed_answer
  std::uint64_t rejected_items = 0;    // partialSuccess.rejectedSpans summed
  std::uint64_t partial_success_warnings = 0;
  std::uint64_t bytes_sent = 0;        // request bodies of every attempt
  std::uint64_t connections_opened = 0;  // CURLINFO_NUM_CONNECTS summed
  std::uint64_t queued = 0;            // gauge: fresh requests waiting for an in-flight slot
  std::uint64_t in_flight = 0;         // gauge
  std::uint64_t waiting_for_retry = 0;  // gauge: failed once, holding its buffer until retried
  // Responses by HTTP status of every attempt that got one (retryable ones included),
  // ascending by status; and attempts that failed without a response, by NetworkError.
  // Each destination keeps the first 8 distinct statuses it sees; responses with any further
  // status are counted in responses_other_status instead (in the total: the sum over
  // destinations, while responses_by_status of the total merges the destinations' pairs).
  std::vector<std::pair<int, std::uint64_t>> responses_by_status;
  std::uint64_t responses_other_status = 0;
  std::array<std::uint64_t, 7> network_errors{};  // index: NetworkError
};

struct SenderStats {
  DestinationStats total;                     // id 0, name "total"
  std::vector<DestinationStats> destinations;  // ascending id; removed ones included
  std::uint64_t queue_full = 0;               // try_send() calls that returned false
};

class Sender {
 public:
  // Starts the sender thread. Throws std::invalid_argument on a bad config, std::runtime_error
  // if curl cannot be initialised. Allocates (queues are preallocated here).
  explicit Sender(SenderConfig config);
  // shutdown(now): whatever has not completed is aborted. Then joins the thread.
  ~Sender();
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  // Validates and adds a destination; ids start at 1 and are never reused. On errors, id 0
  // and nothing is added. Does not test the connection: call test_connection() first to
  // accept a user's config only when it works (the reference's "Test Connection" step).
  // Thread-safe. Allocates.
  [[nodiscard]] AddDestinationResult add_destination(const DestinationConfig& config);
  // The bulk form: one result per config, in order, as add_destination() would give each;
  // one lock and one wake-up of the sender thread for all (a wake-up per destination was
  // half the time of adding 150,000). Null pointers are not allowed. Thread-safe. Allocates.
  [[nodiscard]] std::vector<AddDestinationResult> add_destinations(std::span<const DestinationConfig* const> configs);
  // Replaces a destination's config; requests already in flight finish with the old one.
  // Returns the issues; nothing changes if there are errors or the id is unknown (then an
  // issue with path "id"). Thread-safe. Allocates.
  [[nodiscard]] std::vector<ValidationIssue> update_destination(std::uint32_t id,
                                                                const DestinationConfig& config);
  // Removes a destination: its queued and waiting requests complete as destination_removed,
  // those in flight finish normally (without retries). Later sends to it complete as
  // destination_removed. Unknown id: no-op. Thread-safe. Allocates.
  void remove_destination(std::uint32_t id);

  // Hands a body to the sender thread. Never blocks, does not copy `body`. Never allocates
  // once the calling thread has sent before (its first call registers it with the lock-free
  // queue). false: at queue_capacity, shut down, queue full, or body null with size > 0
  // (counted in stats().queue_full); the caller keeps its buffer. A request to an unknown or
  // removed id is accepted and completes as destination_removed.
  // Thread-safe (up to max_producers concurrent producer threads).
  // wake = SendWake::now wakes the sender thread if it sleeps (a syscall, ~2-3 us);
  // SendWake::later leaves that to a later wake() (or to the sender's own timeout, <= 1 s):
  // a caller handing over many bodies in a row wakes it once.
  enum class SendWake : std::uint8_t { now, later };
  [[nodiscard]] bool try_send(const SendRequest& request, SendWake wake = SendWake::now) noexcept;
  // Wakes the sender thread if it sleeps, so requests handed over with SendWake::later
  // start. Never blocks or allocates. Thread-safe.
  void wake() noexcept;

  // Pops up to `max_items` completions into `out`. Returns how many. Never blocks, never
  // allocates. Single consumer: call from one thread at a time.
  std::size_t poll_completions(Completion* out, std::size_t max_items) noexcept;

  // Calls on_completion(const Completion&) for up to `max_items` completions. Returns how
  // many. Never blocks or allocates (beyond what the callback does). Single consumer.
  template <class F>
  std::size_t poll_completions(F&& on_completion, std::size_t max_items) {
    return poll_completion_chunks(
        [&on_completion](std::span<const Completion> chunk) {
          for (const Completion& c : chunk) on_completion(c);
        },
        max_items);
  }

  // The same in chunks of up to 64: on_chunk(std::span<const Completion>) sees a whole chunk at
  // once (a caller whose work per completion starts with cache misses of its own asks for a
  // chunk's lines first). Returns how many. Never blocks or allocates (beyond the callback).
  // Single consumer.
  template <class F>
  std::size_t poll_completion_chunks(F&& on_chunk, std::size_t max_items) {
    std::array<Completion, 64> chunk;
    std::size_t done = 0;
    while (done < max_items) {
      const std::size_t want = std::min(chunk.size(), max_items - done);
      const std::size_t got = poll_completions(chunk.data(), want);
      if (got > 0) on_chunk(std::span<const Completion>(chunk.data(), got));
      done += got;
      if (got < want) break;
    }
    return done;
  }

  // Stops accepting requests and waits (sleeping on a condition variable, no spin) until
  // every accepted request has completed or `deadline` passes; then aborts what remains
  // (outcome aborted) and stops the thread. Completions stay poppable afterwards.
  // Idempotent. Thread-safe. Never throws.
  void shutdown(std::chrono::steady_clock::time_point deadline) noexcept;

  // Requests accepted and not yet completed (queued, in flight, waiting). May be stale.
  // Thread-safe, no allocation.
  [[nodiscard]] std::uint64_t pending_guess() const noexcept;

  // A snapshot of the counters. Thread-safe. Allocates.
  [[nodiscard]] SenderStats stats() const;

  // The egress policy this sender enforces (SenderConfig::egress), e.g. for
  // test_connection(). Thread-safe (immutable). No allocation.
  [[nodiscard]] const EgressPolicy& egress_policy() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracecast
