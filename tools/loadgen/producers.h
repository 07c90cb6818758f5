// Simulated gateway threads: each submits the reference workload (WORKLOAD.md) from its own
// deterministic Generator (seed = thread index), stamped with the current time, at a share
// of a target rate (sleeping when ahead, never spinning) or flat out, and records every
// submit call's latency in its own histogram.
//
// Part of the load-generation library (tools/loadgen, target tracecast_loadgen) that
// tracecast-load and the end-to-end benchmark share.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "latency_histogram.h"
#include "topology.h"

namespace tracecast {
class Pipeline;
}

namespace tracecast::load {

struct ProducerOptions {
  // Gateway threads. 1..1024 (the pipeline's ingest.max_producers bounds it too).
  unsigned threads = 2;
  // Requests per second over all threads; 0 = flat out.
  double rate = 20000;
  // Requests in all, split over the threads by thread_quota() (a thread whose share is 0
  // submits nothing); 0 = until request_stop().
  std::uint64_t count = 0;
  // Each thread starts no request once this long has passed since start(); 0 = no limit.
  // The threads keep the time themselves, so a caller busy elsewhere (a snapshot of 150,000
  // destinations takes a few hundred ms) cannot stretch a --duration run.
  std::chrono::nanoseconds duration{0};
  // The content variant (prompt + completion, ~1 KiB each).
  bool content = false;
  // Accounts the requests are spread over, acct_0..acct_<accounts-1>. The generator draws
  // uniformly over acct_0..acct_99 itself; any other number, or a Zipf skew, replaces each
  // request's account with one drawn by an AccountSampler (rank k = acct_k), from a
  // per-thread generator seeded by the thread index (deterministic draws per thread).
  std::size_t accounts = 100;
  AccountSkew skew;
};

// Sums over the threads; a snapshot that may be stale.
struct ProducerTotals {
  std::uint64_t attempted = 0;  // submit calls made
  std::uint64_t ok = 0;
  std::uint64_t full = 0;       // the ring was full: dropped, counted by the pipeline too
  std::uint64_t closed = 0;
};

// A thread's share of `count` requests: count / threads, plus one for the first
// count % threads threads, so the shares add up to `count` exactly (0 for a thread when
// count < threads); k_unlimited when count is 0 (run until request_stop()). threads >= 1.
inline constexpr std::uint64_t k_unlimited = ~std::uint64_t{0};
[[nodiscard]] constexpr std::uint64_t thread_quota(std::uint64_t count, unsigned threads, unsigned index) noexcept {
  if (count == 0) return k_unlimited;
  return count / threads + (index < count % threads ? 1 : 0);
}

class ProducerGroup {
 public:
  // `pipeline` nullptr: the baseline, which generates and times requests exactly the same
  // way but submits nothing (its cost is the harness's own). Does not start threads.
  // Allocates (generators, names).
  ProducerGroup(Pipeline* pipeline, ProducerOptions options);
  // request_stop() + join().
  ~ProducerGroup();
  ProducerGroup(const ProducerGroup&) = delete;
  ProducerGroup& operator=(const ProducerGroup&) = delete;

  // Starts the threads. Call once. Not thread-safe. Allocates.
  void start();
  // Asks every thread to stop after its current request. Thread-safe. No allocation.
  void request_stop() noexcept { stop_.store(true, std::memory_order_relaxed); }
  // True once every thread has finished (count reached or stopped). Thread-safe.
  [[nodiscard]] bool finished() const noexcept {
    return running_.load(std::memory_order_acquire) == 0;
  }
  // Waits for the threads. Not thread-safe (call from the thread that called start()).
  void join();
  // When the last thread stopped (steady clock); valid once finished() is true. A caller
  // that joins later (after a snapshot) still gets the load's own end. No allocation.
  [[nodiscard]] std::chrono::steady_clock::time_point finished_at() const noexcept {
    return std::chrono::steady_clock::time_point(
        std::chrono::nanoseconds(finished_at_ns_.load(std::memory_order_acquire)));
  }

  // Thread-safe (relaxed reads of per-thread counters). No allocation.
  [[nodiscard]] ProducerTotals totals() const noexcept;
  // Merged submit-latency histogram, in TickClock ticks, cumulative since start.
  // Thread-safe. No heap allocation.
  void latency(HistogramCounts& out) const noexcept;
  // CPU time (user + sys) the producer threads have used so far, ns, from their thread CPU
  // clocks: what the gateway threads spent (generating, submitting, sleeping). Call between
  // start() and join(). Thread-safe with the producers. No allocation.
  [[nodiscard]] std::uint64_t threads_cpu_ns() const noexcept;
  [[nodiscard]] const ProducerOptions& options() const noexcept { return options_; }

 private:
  struct alignas(64) ThreadState {
    LatencyHistogram histogram;
    std::atomic<std::uint64_t> attempted{0};
    std::atomic<std::uint64_t> ok{0};
    std::atomic<std::uint64_t> full{0};
    std::atomic<std::uint64_t> closed{0};
  };

  void run(unsigned index);

  Pipeline* pipeline_;
  ProducerOptions options_;
  std::vector<std::string> account_names_;  // empty when the generator's own accounts serve
  std::unique_ptr<AccountSampler> sampler_;  // set with account_names_
  std::vector<std::unique_ptr<ThreadState>> states_;
  std::vector<std::thread> threads_;
  alignas(64) std::atomic<bool> stop_{false};
  std::int64_t stop_at_ns_ = 0;  // steady clock; set by start() when options_.duration > 0
  std::atomic<std::int64_t> finished_at_ns_{0};  // steady clock, by the last thread to stop
  alignas(64) std::atomic<unsigned> running_{0};
};

}  // namespace tracecast::load
