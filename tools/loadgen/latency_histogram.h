// Submit-latency measurement for the load simulator: a cheap tick clock and a per-thread
// log-linear histogram that a reporting thread merges once per second.
//
//   value v (ticks) -> bucket:  v < 16: bucket v
//                               else: msb = floor(log2 v); 16 buckets per power of two,
//                                     (msb - 3) * 16 + next 4 bits below the msb
//   relative bucket width <= 1/16 (6.25%); 64 octaves cover any uint64.
//
// Part of the load-generation library (tools/loadgen, target tracecast_loadgen) that
// tracecast-load and the end-to-end benchmark share.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif

namespace tracecast::load {

// rdtsc where available (a few ns, no syscall), steady_clock ns elsewhere. Ticks convert to
// ns with ns_per_tick(), calibrated once against steady_clock.
class TickClock {
 public:
  // Current tick count. Thread-safe. No allocation.
  [[nodiscard]] static std::uint64_t now() noexcept;
  // Calibrates (about 20 ms, first call only; thread-safe) and returns ns per tick.
  [[nodiscard]] static double ns_per_tick() noexcept;
};

inline constexpr std::size_t k_histogram_sub_bits = 4;
inline constexpr std::size_t k_histogram_sub = std::size_t{1} << k_histogram_sub_bits;
inline constexpr std::size_t k_histogram_buckets = (64 - k_histogram_sub_bits + 1) * k_histogram_sub;

// Bucket of a value, and the value a bucket stands for (its midpoint). No allocation.
[[nodiscard]] constexpr std::size_t histogram_bucket(std::uint64_t v) noexcept {
  if (v < k_histogram_sub) return static_cast<std::size_t>(v);
  const std::size_t msb = 63 - static_cast<std::size_t>(std::countl_zero(v));
  const std::size_t shift = msb - k_histogram_sub_bits;
  return (msb - k_histogram_sub_bits + 1) * k_histogram_sub +
         static_cast<std::size_t>((v >> shift) & (k_histogram_sub - 1));
}
[[nodiscard]] constexpr double histogram_value(std::size_t bucket) noexcept {
  if (bucket < k_histogram_sub) return static_cast<double>(bucket);
  const std::size_t octave = bucket / k_histogram_sub;  // >= 1
  const std::size_t sub = bucket % k_histogram_sub;
  const std::size_t msb = octave + k_histogram_sub_bits - 1;
  const double base = static_cast<double>(std::uint64_t{1} << msb);
  const double width = base / static_cast<double>(k_histogram_sub);
  return base + (static_cast<double>(sub) + 0.5) * width;
}

// Counts of a merged histogram (plain values: owned by one thread).
struct HistogramCounts {
  std::array<std::uint64_t, k_histogram_buckets> buckets{};
  std::uint64_t total = 0;

  // The value (in ticks, bucket midpoint) at quantile q in [0, 1]; 0 when empty.
  [[nodiscard]] double quantile(double q) const noexcept;
  // this - older, bucket by bucket (older must be an earlier snapshot of the same source).
  [[nodiscard]] HistogramCounts minus(const HistogramCounts& older) const noexcept;
};

// One writer thread records, any thread snapshots. Each bucket is an atomic updated with a
// relaxed load + store by its single writer (no read-modify-write on the hot path); a
// snapshot may be a few records stale.
class alignas(64) LatencyHistogram {
 public:
  // Single writer. No allocation. Wait-free.
  void record(std::uint64_t ticks) noexcept {
    std::atomic<std::uint64_t>& b = buckets_[histogram_bucket(ticks)];
    b.store(b.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  // Adds this histogram's counts to `into`. Thread-safe. No allocation.
  void add_to(HistogramCounts& into) const noexcept {
    for (std::size_t i = 0; i < k_histogram_buckets; ++i) {
      const std::uint64_t n = buckets_[i].load(std::memory_order_relaxed);
      into.buckets[i] += n;
      into.total += n;
    }
  }

 private:
  std::array<std::atomic<std::uint64_t>, k_histogram_buckets> buckets_{};
};

}  // namespace tracecast::load
