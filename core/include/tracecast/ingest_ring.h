// The ingest ring: where gateway threads hand requests to the pipeline.
//
//   producers (gateway threads)                         consumer (one encoder worker)
//   try_submit: free.try_pop(slot) --copy--> slot[i] --ready.try_enqueue(i)--> drain
//                       ^                                                        |
//                       +--------------- free.push(i...) (one CAS) <-------------+
//
// `capacity` slots of `slot_bytes` each are allocated (and touched) once, at construction.
// Slot indices travel to the consumer on a lock-free MPSC queue (moodycamel ConcurrentQueue,
// preallocated, explicit producer tokens, `try_` calls only) and come back on a lock-free
// LIFO stack, so producers reuse the slots the consumer just released, still warm in cache.
// Submit never blocks and never allocates. No free slot: `full`, counted. Values are cut to
// the configured limits at a UTF-8 boundary while copying, and every cut is counted.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "tracecast/llm_request.h"

namespace tracecast {

// Per-value byte limits applied while copying a request into its slot.
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
  // Prompt and completion bytes each; also bounded by what is left of the slot (the content
  // is copied last, so identity, metadata and outcome always fit first). Default 1 MiB.
  std::uint32_t max_content_bytes = 1u << 20;
};

struct IngestConfig {
  // Number of slots: requests that can wait between submit and the encoder. Power of two,
  // 64..2^22. Default 8192.
  std::uint32_t capacity = 8192;
  // Bytes per slot, holding the request and copies of its strings. Multiple of 64,
  // 1024..16 MiB. Default 4096 (the canonical request needs ~700 B, the content variant
  // ~2.8 KiB); memory = capacity * slot_bytes.
  std::uint32_t slot_bytes = 4096;
  // Threads that may call make_producer(), in all. Default 64; 1..1024. The ready queue
  // preallocates room for every producer to hold every slot (moodycamel's sizing rule), so
  // memory grows with capacity * max_producers / 8 bytes.
  std::uint32_t max_producers = 64;
  ValueLimits limits;

  // Empty when valid, else "<field>: <reason>" for the first invalid field.
  [[nodiscard]] std::string validate() const;
};

enum class submit_result : std::uint8_t { ok, full, closed };

struct IngestStats {
  std::uint64_t accepted = 0;          // try_submit returned ok
  std::uint64_t rejected_full = 0;     // returned full
  std::uint64_t rejected_closed = 0;   // returned closed
  std::uint64_t drained = 0;           // handed to the consumer
  std::uint64_t truncated_values = 0;  // values cut to a limit
  std::uint64_t dropped_metadata = 0;  // metadata entries past max_metadata_entries
  [[nodiscard]] std::uint64_t submitted() const noexcept {
    return accepted + rejected_full + rejected_closed;
  }
};

class IngestRing {
 public:
  class Producer;

  // Allocates and touches capacity * slot_bytes. Throws std::invalid_argument with
  // config.validate()'s message on a bad config.
  explicit IngestRing(const IngestConfig& config);
  ~IngestRing();
  IngestRing(const IngestRing&) = delete;
  IngestRing& operator=(const IngestRing&) = delete;

  // A handle for one submitting thread (it holds that thread's queue tokens). Keep it for
  // the thread's life and use it from that thread only; it lives as long as the ring.
  // Thread-safe. Allocates. Throws std::length_error past config.max_producers.
  Producer& make_producer();

  // Copies `request` into a free slot and publishes it. Never blocks, never allocates.
  // ok: queued. full: no free slot (counted). closed: close() was called (counted).
  // Thread-safe with other producers; `producer` must be the calling thread's own.
  [[nodiscard]] submit_result try_submit(Producer& producer, const LlmRequest& request) noexcept;

  // Hands up to `max_items` queued requests to `handler(const LlmRequest&)`, then returns
  // their slots. The views passed to the handler are valid only during the call. Returns
  // how many were handled. Single consumer: call from one thread only. No allocation.
  template <class Handler>
  std::size_t drain(Handler&& handler, std::size_t max_items) noexcept {
    std::uint32_t idx[k_drain_chunk];
    std::size_t total = 0;
    while (total < max_items) {
      const std::size_t want = max_items - total < k_drain_chunk ? max_items - total : k_drain_chunk;
      const std::size_t got = dequeue_ready(idx, want);
      if (got == 0) break;
      // The slots were written on other cores: ask for the next ones' lines while this one
      // is handled (the copy is ~700 B for the canonical request; the first KiB covers it).
      for (std::size_t i = 0; i < got && i < k_prefetch_ahead; ++i) prefetch(idx[i]);
      for (std::size_t i = 0; i < got; ++i) {
        if (i + k_prefetch_ahead < got) prefetch(idx[i + k_prefetch_ahead]);
        handler(record(idx[i]));
      }
      release(idx, got);
      total += got;
      if (got < want) break;
    }
    return total;
  }

  // Stops accepting: every later try_submit returns closed. Waits (briefly spinning) for
  // submits already inside try_submit to finish, so after close() returns a drain until
  // empty sees every accepted request. Thread-safe.
  void close() noexcept;
  [[nodiscard]] bool closed() const noexcept { return closed_.load(std::memory_order_seq_cst); }

  // Sums the per-producer counters; a snapshot that may be stale by the time it returns.
  // Thread-safe. No allocation.
  [[nodiscard]] IngestStats stats() const noexcept;
  // Requests queued and not yet drained; stale as soon as read.
  [[nodiscard]] std::size_t size_guess() const noexcept;
  [[nodiscard]] std::uint32_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] const IngestConfig& config() const noexcept { return config_; }

 private:
  static constexpr std::size_t k_drain_chunk = 256;
  static constexpr std::size_t k_prefetch_ahead = 2;
  static constexpr std::size_t k_prefetch_bytes = 1024;
  struct Impl;

  bool copy_fast(const LlmRequest& r, char* slot) noexcept;
  void copy_limited(const LlmRequest& r, char* slot, std::uint64_t& truncated, std::uint64_t& dropped) noexcept;
  std::size_t dequeue_ready(std::uint32_t* out, std::size_t max) noexcept;
  const LlmRequest& record(std::uint32_t index) const noexcept;
  void prefetch(std::uint32_t index) const noexcept {
    const char* p = reinterpret_cast<const char*>(&record(index));
    for (std::size_t off = 0; off < k_prefetch_bytes && off < config_.slot_bytes; off += 64)
      __builtin_prefetch(p + off, 0, 3);
  }
  void release(const std::uint32_t* indices, std::size_t n) noexcept;

  IngestConfig config_;
  std::uint32_t capacity_;
  std::unique_ptr<Impl> impl_;
  std::uint64_t drained_ = 0;  // consumer-only; published through drained_published_
  alignas(64) std::atomic<std::uint64_t> drained_published_{0};
  alignas(64) std::atomic<bool> closed_{false};
};

}  // namespace tracecast
