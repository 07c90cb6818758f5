// A destination's counters as the worker keeps them, converted to the public
// DestinationCounters (456 bytes) only when a snapshot lists the destination.
//
// Issue 9 (150,000 destinations in 512 MiB): every destination of a gateway sends now and
// then, so its counters are all live, but most of them stay zero for its whole life (drops,
// retries, malformed answers, truncations, failure details). The block is split by that:
//
//   inline (120 B, written by every request) | cold (allocated at the first rare event)
//   -----------------------------------------+------------------------------------------
//   filtered, bytes raw/compressed, latency  | dropped[reason], retries, malformed answers,
//   sum, last success: 64-bit                | values truncated, the health details (last
//   delivered, requests sent/delivered,      | error, status, time, consecutive failures,
//   13 latency buckets: 32-bit + carry       | message), the 64-bit carries of the narrow
//   largest batch: 32-bit (<= 16 MiB body)   | counts
//
// A narrow count never overflows and never saturates: an increment that would pass
// 2^32 - 1 moves the count into its 64-bit carry in the cold block (value = narrow + carry).
// At 150,000 destinations sending every ~5 s that takes centuries; a busy destination gets
// its cold block after ~4 billion spans or requests. Single-threaded (the pipeline worker).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>

#include "tracecast/pipeline.h"

namespace tracecast::detail {

class CompactCounters {
 public:
  // The narrow counts, by index into their carries.
  enum class Count : std::uint8_t { delivered, requests_sent, requests_delivered, k_first_bucket };
  static constexpr std::size_t k_buckets = k_latency_bounds_ms.size() + 1;
  static constexpr std::size_t k_narrow = static_cast<std::size_t>(Count::k_first_bucket) + k_buckets;

  struct Cold {
    std::array<std::uint64_t, k_drop_reasons> dropped{};
    std::uint64_t retries = 0;
    std::uint64_t malformed_answers = 0;
    std::uint64_t values_truncated = 0;
    std::array<std::uint64_t, k_narrow> carry{};
    DestinationHealth health;  // state and last_success_unix_ns are kept inline
    // When the first failure retrying cannot fix (401/403/404/blocked) since the last
    // success happened (Unix ns; 0: none): the disable policy's clock.
    std::int64_t first_final_failure_unix_ns = 0;
  };

  // Inline, 64-bit: route() adds to it for every request a destination's own routing refuses.
  std::uint64_t filtered = 0;
  std::uint64_t bytes_raw = 0;
  std::uint64_t bytes_compressed = 0;
  std::uint64_t latency_sum_ns = 0;
  std::int64_t last_success_unix_ns = 0;
  DestinationState state = DestinationState::healthy;

  void add(Count c, std::uint64_t n = 1) { add_narrow(static_cast<std::size_t>(c), n); }
  void add_latency(std::size_t bucket, std::uint64_t ns) {
    add_narrow(static_cast<std::size_t>(Count::k_first_bucket) + bucket, 1);
    latency_sum_ns += ns;
  }
  // A sealed body's bytes: at most PipelineDestination::k_max_request_bytes (16 MiB).
  void note_batch(std::uint64_t raw) noexcept {
    if (raw > largest_batch_bytes_) largest_batch_bytes_ = static_cast<std::uint32_t>(std::min<std::uint64_t>(raw, k_narrow_max));
  }
  void drop(DropReason r, std::uint64_t n) {
    if (n != 0) cold().dropped[static_cast<std::size_t>(r)] += n;
  }

  // The cold block, allocated at the first call. Allocates once.
  Cold& cold() {
    if (!cold_) cold_ = std::make_unique<Cold>();
    return *cold_;
  }
  [[nodiscard]] const Cold* cold_if_any() const noexcept { return cold_.get(); }
  // The health details a failure writes (allocates the cold block once).
  DestinationHealth& health_details() { return cold().health; }
  // A success resets the failure count and the disable policy's clock (nothing to reset
  // without a cold block).
  void note_success(std::int64_t unix_ns) noexcept {
    last_success_unix_ns = unix_ns;
    if (cold_) {
      cold_->health.consecutive_failures = 0;
      cold_->first_final_failure_unix_ns = 0;
    }
  }
  [[nodiscard]] std::uint64_t value(Count c) const noexcept { return narrow_value(static_cast<std::size_t>(c)); }

  // The public health: state and last success from here, the rest from the cold block.
  [[nodiscard]] DestinationHealth health() const {
    DestinationHealth h = cold_ ? cold_->health : DestinationHealth{};
    h.state = state;
    h.last_success_unix_ns = last_success_unix_ns;
    return h;
  }

  // Everything but id, name, account, removed, submitted, in_flight and buffer_bytes (the
  // destination's own fields). Allocates the health message's copy only.
  void fill(DestinationCounters& out) const {
    out.delivered = value(Count::delivered);
    out.requests_sent = value(Count::requests_sent);
    out.requests_delivered = value(Count::requests_delivered);
    for (std::size_t b = 0; b < k_buckets; ++b)
      out.latency_buckets[b] = narrow_value(static_cast<std::size_t>(Count::k_first_bucket) + b);
    out.latency_sum_ns = latency_sum_ns;
    out.filtered = filtered;
    out.bytes_raw = bytes_raw;
    out.bytes_compressed = bytes_compressed;
    out.largest_batch_bytes = largest_batch_bytes_;
    if (cold_) {
      out.dropped = cold_->dropped;
      out.retries = cold_->retries;
      out.malformed_answers = cold_->malformed_answers;
      out.values_truncated = cold_->values_truncated;
    } else {
      out.dropped = {};
      out.retries = out.malformed_answers = out.values_truncated = 0;
    }
    out.health = health();
  }

 private:
  static constexpr std::uint64_t k_narrow_max = std::numeric_limits<std::uint32_t>::max();

  void add_narrow(std::size_t i, std::uint64_t n) {
    if (n <= k_narrow_max - narrow_[i]) {
      narrow_[i] = static_cast<std::uint32_t>(narrow_[i] + n);
      return;
    }
    cold().carry[i] += narrow_[i] + n;  // exact: the carry is 64-bit
    narrow_[i] = 0;
  }
  [[nodiscard]] std::uint64_t narrow_value(std::size_t i) const noexcept {
    return narrow_[i] + (cold_ ? cold_->carry[i] : 0);
  }

  std::array<std::uint32_t, k_narrow> narrow_{};
  std::uint32_t largest_batch_bytes_ = 0;
  std::unique_ptr<Cold> cold_;
};

}  // namespace tracecast::detail
