// When each destination's batch is due, and how long the next one may wait.
//
// One entry per open batch in a 4-ary min-heap ordered by deadline: O(log n) to add, O(1)
// to look at the earliest, and nothing at all for destinations without an open batch. An
// entry whose batch was sealed since (its generation moved on) is skipped when it surfaces,
// so sealing never has to find and erase its entry.
//
// Why 4-ary: at 150,000 open batches the heap is 3.6 MB, beyond L2, and std::pop_heap's
// binary sift-down takes a cache miss on most of its 17 levels; four children span two
// cache lines and halve the depth. `perf` of the worker at 100,000 accounts: std::pop_heap
// 7.2% of its samples (most of it the comparison's loads) before, this pop 1.3% after;
// a replay of the pattern (150,000 entries, 5 s deadlines, 4 KB of other memory touched per
// pop) costs 309 -> 196 ns CPU per pop+push.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

#include "prefetch.h"

namespace tracecast::detail {

using Clock = std::chrono::steady_clock;

// Linger policy: after a batch of `spans` spans that took `elapsed` since its first span, the
// next batch waits for about `target` spans at the rate just seen, within [min, max]. A quiet
// destination (one span in its linger) climbs to max in one step; a busy one that seals by
// size comes back down. Pure.
[[nodiscard]] inline std::chrono::milliseconds next_linger(std::chrono::milliseconds elapsed, std::uint32_t spans,
                                                           std::uint32_t target, std::chrono::milliseconds min,
                                                           std::chrono::milliseconds max) noexcept {
  if (spans == 0) return max;
  const double want = static_cast<double>(std::max<std::int64_t>(elapsed.count(), 1)) * target / spans;
  if (want >= static_cast<double>(max.count())) return max;
  return std::max(min, std::chrono::milliseconds(static_cast<std::int64_t>(want)));
}

template <class Target>
class LingerTimers {
 public:
  struct Entry {
    Clock::time_point deadline;
    Target* target;
    std::uint64_t generation;
  };

  void add(Clock::time_point deadline, Target* target, std::uint64_t generation) {
    const Entry e{deadline, target, generation};
    std::size_t i = heap_.size();
    heap_.push_back(e);
    while (i > 0) {  // sift up: move parents down until e's place is found
      const std::size_t parent = (i - 1) / k_arity;
      if (!(e.deadline < heap_[parent].deadline)) break;
      heap_[i] = heap_[parent];
      i = parent;
    }
    heap_[i] = e;
  }

  // Calls due(target) for up to `max` entries with deadline <= now whose generation is still
  // the target's (target->generation); stale entries are dropped on the way. Returns how
  // many were due. Bounded so that a herd of deadlines (thousands of destinations that
  // started together) is worked off between drains of the ingest ring, not in one stall.
  //
  // Due entries come off the heap in groups of up to 8 whose targets are asked for (every line
  // of each) before the first is handled: at 100,000 destinations each is cold, and handled
  // one by one each stalled on its own misses. `ahead(target)` is then called for each live
  // one of the group before any due(): the second step of the same idea, for what the target
  // points at (the pipeline asks for its newest pending record, where its seal starts), its
  // loads again in parallel.
  template <class Due>
  std::size_t pop_due(Clock::time_point now, std::size_t max, Due&& due) {
    return pop_due(now, max, std::forward<Due>(due), [](const Target&) noexcept {});
  }

  template <class Due, class Ahead>
  std::size_t pop_due(Clock::time_point now, std::size_t max, Due&& due, Ahead&& ahead) {
    std::size_t fired = 0;
    std::array<Entry, 8> group;
    while (fired < max && !heap_.empty() && heap_.front().deadline <= now) {
      std::size_t n = 0;
      while (n < group.size() && n < max - fired && !heap_.empty() && heap_.front().deadline <= now) {
        group[n] = heap_.front();
        pop_front();
        prefetch_whole(group[n].target);
        ++n;
      }
      for (std::size_t i = 0; i < n; ++i) {
        if (group[i].generation == group[i].target->generation) ahead(*group[i].target);
      }
      for (std::size_t i = 0; i < n; ++i) {
        if (group[i].generation == group[i].target->generation) {
          due(*group[i].target);
          ++fired;
        }
      }
    }
    return fired;
  }

  [[nodiscard]] bool empty() const noexcept { return heap_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return heap_.size(); }
  [[nodiscard]] Clock::time_point earliest() const noexcept {
    return heap_.empty() ? Clock::time_point::max() : heap_.front().deadline;
  }

 private:
  static constexpr std::size_t k_arity = 4;

  // Removes the earliest entry: the last one takes the root's place and sinks to the smallest
  // child while that child is earlier.
  void pop_front() noexcept {
    const Entry last = heap_.back();
    heap_.pop_back();
    const std::size_t n = heap_.size();
    if (n == 0) return;
    std::size_t i = 0;
    for (;;) {
      const std::size_t first = k_arity * i + 1;
      if (first >= n) break;
      const std::size_t end = std::min(first + k_arity, n);
      std::size_t best = first;
      for (std::size_t c = first + 1; c < end; ++c) {
        if (heap_[c].deadline < heap_[best].deadline) best = c;
      }
      if (!(heap_[best].deadline < last.deadline)) break;
      heap_[i] = heap_[best];
      i = best;
    }
    heap_[i] = last;
  }

  std::vector<Entry> heap_;
};

}  // namespace tracecast::detail
