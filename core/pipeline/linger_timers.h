// When each destination's batch is due, and how long the next one may wait.
//
// One entry per open batch in a binary min-heap ordered by deadline: O(log n) to add, O(1)
// to look at the earliest, and nothing at all for destinations without an open batch. An
// entry whose batch was sealed since (its generation moved on) is skipped when it surfaces,
// so sealing never has to find and erase its entry.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

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
    heap_.push_back({deadline, target, generation});
    std::push_heap(heap_.begin(), heap_.end(), later);
  }

  // Calls due(target) for up to `max` entries with deadline <= now whose generation is still
  // the target's (target->generation); stale entries are dropped on the way. Returns how
  // many were due. Bounded so that a herd of deadlines (thousands of destinations that
  // started together) is worked off between drains of the ingest ring, not in one stall.
  template <class Due>
  std::size_t pop_due(Clock::time_point now, std::size_t max, Due&& due) {
    std::size_t fired = 0;
    while (fired < max && !heap_.empty() && heap_.front().deadline <= now) {
      const Entry e = heap_.front();
      std::pop_heap(heap_.begin(), heap_.end(), later);
      heap_.pop_back();
      if (e.generation == e.target->generation) {
        due(*e.target);
        ++fired;
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
  static bool later(const Entry& a, const Entry& b) noexcept { return a.deadline > b.deadline; }
  std::vector<Entry> heap_;
};

}  // namespace tracecast::detail
