// The ingest ring: where gateway threads hand requests to the pipeline.
//
// A byte-addressed many-to-one ring of variable-length records (the shape of Aeron's
// ManyToOneRingBuffer): one power-of-two buffer of `ring_bytes`, allocated and touched once.
//
//   producers (gateway threads)                          consumer (one encoder worker)
//   try_submit: size the record, CAS tail += size,       drain: read records in order from head,
//   copy the request in, publish its header     ---->    hand each to the handler, zero their
//                                                        header words, head += size
//
//   record: [ header:8 | LlmRequest | MetadataEntry[n] | string bytes ... | pad to 64 ]
//   header: 0 = claimed, not yet written; else (record bytes << 32) | type (request or padding)
//
// A record takes what its request needs (the canonical request ~0.5 KiB, a 100 KB prompt
// ~100 KB), so small requests pack densely and large ones stay whole. Records start on a cache
// line, so two producers never write the same line. A record that would cross the end of the
// buffer is preceded by a padding record that fills the rest of it. Not enough free bytes:
// `full`, counted. Submit never blocks and never allocates. Values are cut to the configured
// limits at a UTF-8 boundary while copying, and every cut is counted.
//
// Producers: the calling thread's registration (one cache line: its counters and a busy flag)
// is found in a thread-local cache, taken from a fixed pool of `max_producers` on the thread's
// first submit, and given back when the thread exits. Records live in the shared buffer, not
// in the registration, so a thread that exits with requests still queued loses nothing.
// Threads beyond the pool share one overflow registration instead of being refused (see
// `overflow_submits` in IngestStats).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tracecast/llm_request.h"
#include "tracecast/settings.h"

namespace tracecast {

// Per-value byte limits applied while copying a request into the ring.
struct ValueLimits {
  // account, request id, operation, provider, models, response id, finish reason, user,
  // session id. Bytes; default 256; 16..65536. (The router allows 128-character user and
  // session ids.)
  std::uint32_t max_field_bytes = 256;
  // `trace` metadata entries kept per request; extra ones dropped, counted. Default 64; 0..64.
  std::uint32_t max_metadata_entries = 64;
  // Metadata key bytes. Default 128; 1..128.
  std::uint32_t max_metadata_key_bytes = 128;
  // Metadata value bytes (string, or total of an array). Default 4096; 16..1 MiB.
  std::uint32_t max_metadata_value_bytes = 4096;
  // Error message bytes. Default 4096; 16..1 MiB.
  std::uint32_t max_error_message_bytes = 4096;
  // Prompt and completion bytes each. Default 1 MiB; 0..64 MiB. A whole record is also bounded
  // by IngestConfig::max_record_bytes() (ring_bytes / 8): content is copied last, so identity,
  // metadata and outcome always fit first and only the content is cut (counted).
  std::uint32_t max_content_bytes = 1u << 20;
};

struct IngestConfig {
  // Bytes of the ring: requests waiting between submit and the encoder, each taking what its
  // copy needs (header + LlmRequest + its strings, rounded up to 64). Power of two,
  // 64 KiB..1 GiB. Default 32 MiB (the memory of the former 8192 slots x 4 KiB): ~60,000
  // canonical requests, or ~300 requests with a 100 KB prompt.
  std::uint32_t ring_bytes = 32u << 20;
  // Threads that may hold their own registration at once (each: one cache line, 64 B). A
  // thread's registration is released when it exits and reused by the next thread; threads
  // beyond this share one overflow registration (correct, slower under contention: atomic
  // read-modify-write counters on one shared line), counted in IngestStats::overflow_submits.
  // Default 64; 1..1024.
  std::uint32_t max_producers = 64;
  ValueLimits limits;

  // The largest record, in bytes: ring_bytes / 8 (Aeron's rule, so one record never holds
  // more than an eighth of the ring). Default 4 MiB.
  [[nodiscard]] std::uint32_t max_record_bytes() const noexcept { return ring_bytes / 8; }

  // Empty when valid, else "<field>: <reason>" for the first invalid field
  // (first_error_text() of validate(IngestConfig)).
  [[nodiscard]] std::string validate() const;
};

// The rows describing IngestConfig's fields (tracecast/settings.h): paths "ring_bytes",
// "limits.max_field_bytes", ...; the ranges above. Thread-safe, no allocation.
[[nodiscard]] std::span<const Setting> ingest_settings() noexcept;

// Every field out of its range, named relative to IngestConfig ("limits.max_field_bytes").
// Thread-safe (pure). Allocates only for issues.
[[nodiscard]] std::vector<ValidationIssue> validate(const IngestConfig& config);

enum class submit_result : std::uint8_t { ok, full, closed };

struct IngestStats {
  std::uint64_t accepted = 0;          // try_submit returned ok
  std::uint64_t rejected_full = 0;     // returned full
  std::uint64_t rejected_closed = 0;   // returned closed
  std::uint64_t drained = 0;           // handed to the consumer
  std::uint64_t truncated_values = 0;  // values cut to a limit
  std::uint64_t dropped_metadata = 0;  // metadata entries past max_metadata_entries
  // Submits (any result, already counted above) made through the shared overflow registration:
  // more threads submitting at once than max_producers, a thread inside its exit (after its
  // thread-local state was destroyed, e.g. from static destructors), or a thread submitting to
  // more than 8 live rings. Non-zero in steady state means max_producers is too small.
  std::uint64_t overflow_submits = 0;
  [[nodiscard]] std::uint64_t submitted() const noexcept {
    return accepted + rejected_full + rejected_closed;
  }
};

namespace detail {
struct IngestControl;
}

class IngestRing {
 public:
  class Producer;

  // Allocates and touches ring_bytes, plus max_producers cache lines. Throws
  // std::invalid_argument with config.validate()'s message on a bad config.
  explicit IngestRing(const IngestConfig& config);
  // Threads that submitted keep no pointer into the ring: their registrations hold a reference
  // to a small shared control block, which the last of them frees when it exits.
  ~IngestRing();
  IngestRing(const IngestRing&) = delete;
  IngestRing& operator=(const IngestRing&) = delete;

  // Copies `request` into the ring and publishes it, using the calling thread's registration
  // (taken on the thread's first submit to this ring, released when the thread exits).
  // ok: queued. full: not enough free bytes in the ring (counted). closed: close() was called
  // (counted). Any thread, at any time the ring is alive: a pool thread, a detached thread, a
  // thread inside its exit or in static destructors (those use the overflow registration).
  // Thread-safe. Never blocks. Never allocates once the thread is registered (its first submit
  // may allocate the thread-exit hook's node in the C runtime).
  [[nodiscard]] submit_result try_submit(const LlmRequest& request) noexcept;

  // An explicit registration, not tied to a thread: it is never released and lives as long as
  // the ring. For callers that keep their own handle (benchmarks). Use it from one thread at a
  // time. Thread-safe. Throws std::length_error when all max_producers registrations are taken.
  Producer& make_producer();

  // As try_submit(request), with an explicit registration. Thread-safe with other producers;
  // `producer` must not be used by two threads at once. Never blocks, never allocates.
  [[nodiscard]] submit_result try_submit(Producer& producer, const LlmRequest& request) noexcept;

  // Hands up to `max_items` queued requests, in ring order, to `handler(const LlmRequest&)`,
  // then frees their bytes. The views passed to the handler are valid only during the call.
  // Returns how many were handled. Single consumer: call from one thread only. No allocation.
  template <class Handler>
  std::size_t drain(Handler&& handler, std::size_t max_items) noexcept {
    return drain_groups(
        [&handler](std::span<const LlmRequest* const> group) {
          for (const LlmRequest* r : group) handler(*r);
        },
        max_items);
  }

  // Requests handed to a drain_groups() handler at once, at most.
  static constexpr std::size_t k_drain_group = 8;

  // As drain(), in groups: `handler(std::span<const LlmRequest* const>)` gets up to
  // k_drain_group consecutive requests (fewer when fewer are queued), in ring order, all
  // readable until it returns; their bytes are freed after. A consumer whose work per request
  // starts with misses of its own (the pipeline's route lookups and destinations) asks for a
  // whole group's lines first, so the misses overlap. Single consumer. No allocation.
  template <class GroupHandler>
  std::size_t drain_groups(GroupHandler&& handler, std::size_t max_items) noexcept {
    std::size_t total = 0;
    std::array<const LlmRequest*, k_drain_group> group;
    std::array<std::uint64_t, k_drain_group> at;
    while (true) {
      const std::uint64_t start = head_.load(std::memory_order_relaxed);  // only we store it
      std::uint64_t pos = start;
      std::size_t n = 0;
      bool caught_up = false;
      // Give the space back at least every eighth of the ring, so producers are not held up
      // by one long drain.
      while (!caught_up && total + n < max_items && pos - start <= mask_ / 8) {
        std::size_t g = 0;
        while (g < k_drain_group && total + n + g < max_items && pos - start <= mask_ / 8) {
          const std::uint64_t h = load_header(pos);
          if (h == 0) {  // nothing queued, or the next record is claimed but not yet published
            caught_up = true;
            break;
          }
          const std::uint64_t bytes = h >> 32;
          if ((h & k_type_mask) == k_type_request) {
            prefetch(pos + bytes);  // the next record's first lines, while this one is handled
            group[g] = record(pos);
            at[g++] = pos;
          } else {
            clear(pos, bytes);  // padding: nothing to hand over
          }
          pos += bytes;
        }
        if (g == 0) break;
        handler(std::span<const LlmRequest* const>(group.data(), g));
        // Now, while the handler's lines are still in cache (each header is read again just
        // before: clear() zeroes it).
        for (std::size_t k = 0; k < g; ++k) clear(at[k], load_header(at[k]) >> 32);
        n += g;
      }
      if (pos != start) release(pos, n);
      total += n;
      if (caught_up || pos == start || total >= max_items) return total;
    }
  }

  // Stops accepting: every later try_submit returns closed. Waits (briefly spinning) for
  // submits already inside try_submit to finish, so after close() returns a drain until
  // empty sees every accepted request. Thread-safe.
  void close() noexcept;
  [[nodiscard]] bool closed() const noexcept { return closed_.load(std::memory_order_relaxed); }

  // Sums the registrations' counters; a snapshot that may be stale by the time it returns.
  // Thread-safe. No allocation.
  [[nodiscard]] IngestStats stats() const noexcept;
  // Requests queued and not yet drained; stale as soon as read.
  [[nodiscard]] std::size_t size_guess() const noexcept;
  // Bytes claimed by producers and not yet freed by drain (<= ring_bytes); stale as soon as read.
  [[nodiscard]] std::size_t bytes_queued_guess() const noexcept;
  [[nodiscard]] std::uint32_t ring_bytes() const noexcept { return static_cast<std::uint32_t>(mask_ + 1); }
  [[nodiscard]] const IngestConfig& config() const noexcept { return config_; }

 private:
  static constexpr std::size_t k_cache_line = 64;
  static constexpr std::uint64_t k_type_mask = 0xff;
  static constexpr std::uint64_t k_type_request = 1;
  static constexpr std::uint64_t k_type_padding = 2;
  static constexpr std::uint64_t k_closed_bit = std::uint64_t{1} << 63;  // in tail_, set by close()
  static constexpr std::size_t k_prefetch_bytes = 512;
  static constexpr std::size_t k_prefetch_write_bytes = 1024;  // lines a submit asks for ahead of its copy
  struct Plan;

  [[nodiscard]] std::uint64_t load_header(std::uint64_t pos) const noexcept;
  [[nodiscard]] const LlmRequest* record(std::uint64_t pos) const noexcept;
  void prefetch(std::uint64_t pos) const noexcept;
  void clear(std::uint64_t pos, std::uint64_t bytes) noexcept;
  void release(std::uint64_t to, std::size_t records) noexcept;
  Producer* thread_producer() noexcept;
  submit_result submit_with(Producer& p, const LlmRequest& request) noexcept;
  submit_result claim(std::uint64_t bytes, std::uint64_t& pos) noexcept;
  [[nodiscard]] Plan plan(const LlmRequest& r) const noexcept;
  void copy_fast(const LlmRequest& r, char* base) noexcept;
  void copy_limited(const LlmRequest& r, char* base, std::size_t room, std::uint64_t& truncated,
                    std::uint64_t& dropped) noexcept;

  IngestConfig config_;
  std::uint64_t mask_;  // ring_bytes - 1
  char* buffer_;        // ring_bytes, aligned to k_cache_line
  std::uint64_t id_;    // process-unique, never reused: the thread-local cache's key
  // The registrations and their free list; shared with the threads that hold one (reference
  // counted), so a thread that exits after the ring is gone touches live memory.
  detail::IngestControl* control_;
  std::uint64_t drained_ = 0;  // consumer-only; published through drained_published_

  // Producers CAS the tail (its top bit: closed); the consumer alone stores the head; producers
  // share a cached copy of the head so a submit reads the consumer's line only when the ring
  // looks full. closed_ mirrors the tail's bit for closed().
  alignas(k_cache_line) std::atomic<std::uint64_t> tail_{0};
  char pad_tail_[k_cache_line - sizeof(std::atomic<std::uint64_t>)];
  alignas(k_cache_line) std::atomic<std::uint64_t> head_cache_{0};
  char pad_head_cache_[k_cache_line - sizeof(std::atomic<std::uint64_t>)];
  alignas(k_cache_line) std::atomic<std::uint64_t> head_{0};
  std::atomic<std::uint64_t> drained_published_{0};
  alignas(k_cache_line) std::atomic<bool> closed_{false};
};

}  // namespace tracecast
