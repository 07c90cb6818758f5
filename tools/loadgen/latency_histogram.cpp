#include "latency_histogram.h"

#include <chrono>
#include <thread>

namespace tracecast::load {

namespace {

double calibrate() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  using steady = std::chrono::steady_clock;
  const auto t0 = steady::now();
  const std::uint64_t c0 = __rdtsc();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto t1 = steady::now();
  const std::uint64_t c1 = __rdtsc();
  const double ns = static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  return c1 > c0 ? ns / static_cast<double>(c1 - c0) : 1.0;
#else
  return 1.0;
#endif
}

}  // namespace

std::uint64_t TickClock::now() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  return __rdtsc();
#else
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
#endif
}

double TickClock::ns_per_tick() noexcept {
  static const double value = calibrate();  // magic static: thread-safe
  return value;
}

double HistogramCounts::quantile(double q) const noexcept {
  if (total == 0) return 0;
  if (q < 0) q = 0;
  if (q > 1) q = 1;
  // The smallest bucket whose cumulative count reaches ceil(q * total) (at least 1).
  std::uint64_t rank = static_cast<std::uint64_t>(q * static_cast<double>(total) + 0.999999);
  if (rank == 0) rank = 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < k_histogram_buckets; ++i) {
    seen += buckets[i];
    if (seen >= rank) return histogram_value(i);
  }
  return histogram_value(k_histogram_buckets - 1);
}

HistogramCounts HistogramCounts::minus(const HistogramCounts& older) const noexcept {
  HistogramCounts out;
  for (std::size_t i = 0; i < k_histogram_buckets; ++i) {
    out.buckets[i] = buckets[i] >= older.buckets[i] ? buckets[i] - older.buckets[i] : 0;
    out.total += out.buckets[i];
  }
  return out;
}

}  // namespace tracecast::load
