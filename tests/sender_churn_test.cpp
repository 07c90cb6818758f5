// Destinations added, updated and removed by thousands while other threads send to them
// (run under ThreadSanitizer: label concurrency). Every request completes exactly once, as
// delivered or destination_removed, and nothing reaches a destination once
// remove_destination() has returned.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "egress_util.h"
#include "sender_util.h"
#include "sink_process.h"
#include "tracecast/sender.h"

namespace tracecast {
namespace {

using namespace std::chrono_literals;

TEST(SenderChurn, EveryRequestCompletesOnceWhileDestinationsComeAndGo) {
  constexpr std::uint32_t k_initial = 500;
  constexpr std::uint32_t k_added = 2500;
  constexpr std::uint32_t k_max_ids = k_initial + k_added;
  constexpr std::uint32_t k_producers = 3;
  constexpr std::uint32_t k_per_producer = 2500;
  test::SinkProcess sink({"--count-only"});
  SenderConfig config = tracecast::test::loopback_sender_config();
  config.queue_capacity = 1 << 14;
  config.max_producers = k_producers + 1;
  Sender sender(config);
  DestinationConfig d;
  d.endpoint = sink.url();

  // state[id]: 0 not added, 1 live, 2 removed (stored after remove_destination() returned).
  std::vector<std::atomic<int>> state(k_max_ids + 1);
  std::atomic<std::uint32_t> max_id{0};
  for (std::uint32_t i = 0; i < k_initial; ++i) {
    const auto id = sender.add_destination(d).id;
    ASSERT_EQ(id, i + 1);
    state[id].store(1, std::memory_order_release);
  }
  max_id.store(k_initial, std::memory_order_release);

  const std::string body = "{}";
  // Per request (tag = producer * k_per_producer + seq): destination, and whether its removal
  // had returned before try_send. Each producer writes its own slice; read after join.
  std::vector<std::uint32_t> sent_to(std::size_t{k_producers} * k_per_producer, 0);
  std::vector<std::uint8_t> after_removal(sent_to.size(), 0);
  std::atomic<bool> admin_done{false};

  std::thread admin([&] {
    std::mt19937 rng(7);
    for (std::uint32_t i = 0; i < k_added; ++i) {
      DestinationConfig c = d;
      c.name = "tenant-" + std::to_string(i);
      const auto id = sender.add_destination(c).id;
      if (id == 0) continue;
      state[id].store(1, std::memory_order_release);
      max_id.store(id, std::memory_order_release);
      const std::uint32_t victim = 1 + rng() % id;
      switch (rng() % 4) {
        case 0:  // remove
          if (state[victim].load(std::memory_order_acquire) == 1) {
            sender.remove_destination(victim);
            state[victim].store(2, std::memory_order_release);
          }
          break;
        case 1: {  // update
          DestinationConfig u = d;
          u.name = "updated-" + std::to_string(victim);
          u.max_in_flight = 1 + rng() % 8;
          const auto issues = sender.update_destination(victim, u);
          // Refused only when the victim was removed.
          if (!issues.empty()) {
            EXPECT_EQ(state[victim].load(std::memory_order_acquire), 2);
          }
          break;
        }
        default:
          break;
      }
    }
    admin_done.store(true, std::memory_order_release);
  });

  std::vector<std::thread> producers;
  for (std::uint32_t p = 0; p < k_producers; ++p) {
    producers.emplace_back([&, p] {
      std::mt19937 rng(100 + p);
      for (std::uint32_t seq = 0; seq < k_per_producer; ++seq) {
        const std::uint32_t top = max_id.load(std::memory_order_acquire);
        const std::uint32_t id = 1 + rng() % top;
        const std::size_t tag = std::size_t{p} * k_per_producer + seq;
        sent_to[tag] = id;
        after_removal[tag] = state[id].load(std::memory_order_acquire) == 2 ? 1 : 0;
        while (!sender.try_send(test::send_request(id, tag, body))) std::this_thread::sleep_for(100us);
      }
    });
  }

  // Consume concurrently: the queue capacity bounds requests not yet popped.
  std::vector<Completion> done;
  const std::size_t total = sent_to.size();
  const auto deadline = std::chrono::steady_clock::now() + 120s;
  while (done.size() < total && std::chrono::steady_clock::now() < deadline) {
    if (sender.poll_completions([&done](const Completion& c) { done.push_back(c); }, 1024) == 0) {
      std::this_thread::sleep_for(1ms);
    }
  }
  for (auto& t : producers) t.join();
  admin.join();
  ASSERT_EQ(done.size(), total);
  EXPECT_EQ(test::wait_for(sender, 1, 200ms).size(), 0U) << "a request completed twice";

  std::vector<std::uint32_t> seen(total, 0);
  std::vector<std::uint64_t> requests_per_dest(k_max_ids + 1, 0);
  std::size_t delivered = 0, removed = 0;
  for (const auto& c : done) {
    ASSERT_LT(c.tag, total);
    ++seen[c.tag];
    EXPECT_EQ(c.destination, sent_to[c.tag]);
    ++requests_per_dest[c.destination];
    if (c.outcome == SendOutcome::delivered) {
      ++delivered;
      EXPECT_EQ(after_removal[c.tag], 0) << "delivered to destination " << c.destination
                                         << " after its removal returned";
    } else {
      ASSERT_EQ(c.outcome, SendOutcome::destination_removed) << to_string(c.outcome);
      ++removed;
      if (after_removal[c.tag] != 0) {
        EXPECT_EQ(c.attempts, 0U);
      }
    }
  }
  for (std::size_t tag = 0; tag < total; ++tag) ASSERT_EQ(seen[tag], 1U) << "tag " << tag;
  std::printf("%zu requests: %zu delivered, %zu destination_removed\n", total, delivered, removed);
  EXPECT_GT(delivered, 0U);
  EXPECT_GT(removed, 0U);

  // Per destination the sender's counters agree with the completions, and the removed
  // destinations take no more attempts: a new request to each completes unsent.
  SenderStats stats = sender.stats();
  ASSERT_EQ(stats.destinations.size(), max_id.load());
  std::vector<std::uint32_t> removed_ids;
  for (const auto& s : stats.destinations) {
    EXPECT_EQ(s.requests, requests_per_dest[s.id]) << "destination " << s.id;
    EXPECT_EQ(s.delivered + s.removed, s.requests) << "destination " << s.id;
    if (state[s.id].load() == 2) removed_ids.push_back(s.id);
  }
  ASSERT_FALSE(removed_ids.empty());
  for (std::size_t i = 0; i < removed_ids.size(); ++i) {
    ASSERT_TRUE(sender.try_send(test::send_request(removed_ids[i], total + i, body)));
  }
  const auto late = test::wait_for(sender, removed_ids.size());
  ASSERT_EQ(late.size(), removed_ids.size());
  for (const auto& c : late) {
    EXPECT_EQ(c.outcome, SendOutcome::destination_removed);
    EXPECT_EQ(c.attempts, 0U);
  }
  const SenderStats after = sender.stats();
  for (const auto id : removed_ids) {
    EXPECT_EQ(after.destinations[id - 1].attempts, stats.destinations[id - 1].attempts) << "destination " << id;
  }
  // The sink got exactly the delivered requests.
  EXPECT_EQ(sink.stats().status(200), delivered);
}

}  // namespace
}  // namespace tracecast
