// The worker's route table (core/pipeline/route_table.h): a flat open-addressing map from
// account to its destinations. Probing, growth and backward-shift deletion are checked against
// a std::map model, with collisions forced through an injected hash.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "alloc_counter.h"
#include "route_table.h"

namespace tracecast::detail {
namespace {

struct Target {
  int id = 0;
};

std::vector<Target*> list(std::span<Target* const> s) { return {s.begin(), s.end()}; }

// Every key lands in one of `buckets` home slots (0 .. buckets-1): long probe runs, wrap-around.
struct FewBuckets {
  std::uint64_t buckets = 1;
  std::uint64_t operator()(std::string_view s) const noexcept { return RouteTableHash{}(s) % buckets; }
};
// Home slot = the account's number modulo the capacity, tag bits chosen by the test.
struct NumberHash {
  std::uint64_t operator()(std::string_view s) const noexcept { return std::stoull(std::string(s)); }
};

TEST(RouteTable, EmptyTableFindsNothingAndIgnoresRemovals) {
  RouteTable<Target> routes;
  Target t;
  EXPECT_TRUE(routes.own("a").empty());
  routes.prefetch_bucket(routes.hash("a"));  // no buckets yet: nothing to read
  routes.prefetch_entry(routes.hash("a"));
  EXPECT_TRUE(routes.own("a", routes.hash("a")).empty());
  routes.remove("a", &t);
  routes.remove("", &t);
  EXPECT_EQ(routes.accounts(), 0u);
  EXPECT_EQ(routes.bucket_count(), 0u);
  EXPECT_EQ(routes.heap_bytes(), 0u);
}

TEST(RouteTable, RemovingAnAbsentDestinationOrAccountChangesNothing) {
  RouteTable<Target> routes;
  Target a, b, c;
  routes.add("acct", &a);
  routes.add("acct", &b);
  routes.remove("acct", &c);
  routes.remove("other", &a);
  EXPECT_EQ(list(routes.own("acct")), (std::vector<Target*>{&a, &b}));
  EXPECT_EQ(routes.accounts(), 1u);
}

TEST(RouteTable, KeepsLongKeysAndKeysThatShareAPrefix) {
  RouteTable<Target> routes;
  Target t[4];
  const std::string long_key(100, 'k');
  const std::string inline_key(RouteTable<Target>::k_inline_key, 'k');
  const std::string just_over(RouteTable<Target>::k_inline_key + 1, 'k');
  routes.add(long_key, &t[0]);
  routes.add(inline_key, &t[1]);
  routes.add(just_over, &t[2]);
  routes.add("k", &t[3]);
  EXPECT_EQ(list(routes.own(long_key)), (std::vector<Target*>{&t[0]}));
  EXPECT_EQ(list(routes.own(inline_key)), (std::vector<Target*>{&t[1]}));
  EXPECT_EQ(list(routes.own(just_over)), (std::vector<Target*>{&t[2]}));
  EXPECT_EQ(list(routes.own("k")), (std::vector<Target*>{&t[3]}));
  EXPECT_TRUE(routes.own(std::string(99, 'k')).empty());
  routes.remove(long_key, &t[0]);
  EXPECT_TRUE(routes.own(long_key).empty());
  EXPECT_EQ(list(routes.own(just_over)), (std::vector<Target*>{&t[2]}));
}

TEST(RouteTable, AnAccountWithManyDestinationsKeepsTheirOrderAndGoesBackInline) {
  RouteTable<Target> routes;
  std::vector<Target> t(40);
  std::vector<Target*> want;
  routes.add("other", &t[0]);
  std::size_t inline_bytes = 0;
  for (auto& x : t) {
    routes.add("big", &x);
    want.push_back(&x);
    ASSERT_EQ(list(routes.own("big")), want);
    if (want.size() == 1) inline_bytes = routes.heap_bytes();
  }
  EXPECT_GE(routes.heap_bytes(), inline_bytes + 40 * sizeof(Target*));
  // Remove from the middle, the front and the back; the list stays in insertion order.
  for (std::size_t i : {20u, 0u, 39u, 5u}) {
    routes.remove("big", &t[i]);
    std::erase(want, &t[i]);
    ASSERT_EQ(list(routes.own("big")), want);
  }
  while (want.size() > 1) {
    routes.remove("big", want.back());
    want.pop_back();
    ASSERT_EQ(list(routes.own("big")), want);
  }
  // Back to inline: the heap list is gone.
  EXPECT_EQ(routes.heap_bytes(), inline_bytes);
  routes.remove("big", want.front());
  EXPECT_TRUE(routes.own("big").empty());
  EXPECT_EQ(list(routes.own("other")), (std::vector<Target*>{&t[0]}));
  EXPECT_EQ(routes.accounts(), 1u);
}

TEST(RouteTable, GrowsPastSevenEighthsAndFindsEveryAccount) {
  RouteTable<Target> routes;
  std::vector<Target> t(20000);
  for (std::size_t i = 0; i < t.size(); ++i) {
    routes.add("acct_" + std::to_string(i), &t[i]);
    ASSERT_LE(routes.accounts() * 8, routes.bucket_count() * 7);
  }
  EXPECT_EQ(routes.accounts(), 20000u);
  EXPECT_EQ(routes.bucket_count(), 32768u);
  for (std::size_t i = 0; i < t.size(); ++i) ASSERT_EQ(list(routes.own("acct_" + std::to_string(i))), (std::vector<Target*>{&t[i]}));
  EXPECT_TRUE(routes.own("acct_20000").empty());
  // A 64-byte entry per account (in 8 KiB pages) and 4-byte buckets: ~71 B per account here,
  // where the node map held a node (~80 B), a bucket and a vector block (~32 B) per account.
  EXPECT_LE(routes.heap_bytes(), 20000u * 72);
  // The same accounts removed in another order than added (entries move, buckets shift).
  for (std::size_t i = 0; i < t.size(); i += 2) routes.remove("acct_" + std::to_string(i), &t[i]);
  for (std::size_t i = 0; i < t.size(); ++i)
    ASSERT_EQ(list(routes.own("acct_" + std::to_string(i))), i % 2 == 0 ? std::vector<Target*>{} : std::vector<Target*>{&t[i]});
  EXPECT_LE(routes.heap_bytes(), 10000u * 64 + 32768u * 4 + 2 * 8192 + 4096);
}

TEST(RouteTable, ReserveAvoidsRehashingAndLookupsAllocateNothing) {
  RouteTable<Target> routes;
  routes.reserve(1000);
  const std::size_t cap = routes.bucket_count();
  EXPECT_GE(cap * 7, 1000u * 8);
  std::vector<Target> t(1000);
  for (std::size_t i = 0; i < t.size(); ++i) routes.add(std::string("a").append(std::to_string(i)), &t[i]);
  EXPECT_EQ(routes.bucket_count(), cap);
  const std::string probe = "a500";
  const std::string missing = "zzz";
  const test::AllocationScope scope;
  std::size_t found = 0;
  for (int i = 0; i < 1000; ++i) found += routes.own(probe).size() + routes.own(missing).size() + routes.everyone().size();
  EXPECT_EQ(scope.count(), 0u);
  EXPECT_EQ(found, 1000u);
}

TEST(RouteTable, ForcedCollisionsWrapAroundAndSurviveBackwardShiftDeletion) {
  // All keys share home slot capacity-2, so runs wrap past the end of the array.
  RouteTable<Target, NumberHash> routes;
  routes.reserve(10);  // 16 slots
  ASSERT_EQ(routes.bucket_count(), 16u);
  std::vector<Target> t(8);
  std::vector<std::string> keys;
  for (int i = 0; i < 8; ++i) keys.push_back(std::to_string(14 + 16 * i));  // all home 14
  for (int i = 0; i < 8; ++i) routes.add(keys[i], &t[i]);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(routes.probe_distance(keys[i]), i);
  // Delete the head of the run and one from the middle: the rest move back, none is lost.
  routes.remove(keys[0], &t[0]);
  routes.remove(keys[4], &t[4]);
  for (int i = 0; i < 8; ++i) {
    if (i == 0 || i == 4) {
      EXPECT_TRUE(routes.own(keys[i]).empty()) << i;
      EXPECT_EQ(routes.probe_distance(keys[i]), -1);
    } else {
      EXPECT_EQ(list(routes.own(keys[i])), (std::vector<Target*>{&t[i]})) << i;
      EXPECT_EQ(routes.probe_distance(keys[i]), i < 4 ? i - 1 : i - 2) << i;
    }
  }
  // An entry sitting at its own home slot inside another run is not shifted before its home.
  // The run is slots 14..3 now; "4" takes its free home slot right after it.
  routes.add("4", &t[0]);
  ASSERT_EQ(routes.probe_distance("4"), 0);
  routes.remove(keys[1], &t[1]);
  EXPECT_EQ(routes.probe_distance("4"), 0);
  EXPECT_EQ(list(routes.own("4")), (std::vector<Target*>{&t[0]}));
  EXPECT_EQ(routes.probe_distance(keys[7]), 4);
}

TEST(RouteTable, DeletionMovesAnEntryPastOneThatSitsAtItsHome) {
  // Slots: 0 = "0" (home 0), 1 = "1" (home 1), 2 = "16" (home 0, displaced past "1").
  // Removing "0" must bring "16" back to slot 0 though "1" stays: stopping the shift at the
  // first entry at its home (right only for Robin Hood order) left "16" unreachable.
  RouteTable<Target, NumberHash> routes;
  routes.reserve(10);
  ASSERT_EQ(routes.bucket_count(), 16u);
  Target a, b, c;
  routes.add("0", &a);
  routes.add("1", &b);
  routes.add("16", &c);
  ASSERT_EQ(routes.probe_distance("16"), 2);
  routes.remove("0", &a);
  EXPECT_EQ(list(routes.own("16")), (std::vector<Target*>{&c}));
  EXPECT_EQ(routes.probe_distance("16"), 0);
  EXPECT_EQ(routes.probe_distance("1"), 0);
  routes.remove("16", &c);
  routes.remove("1", &b);
  EXPECT_EQ(routes.accounts(), 0u);
}

TEST(RouteTable, MatchesAMapModelUnderRandomAddsAndRemovesWithCollisions) {
  for (std::uint64_t buckets : {1ULL, 3ULL, 64ULL, 1ULL << 40}) {
    const std::int64_t live_before = test::live_bytes();
    {
    RouteTable<Target, FewBuckets> routes(FewBuckets{buckets});
    std::map<std::string, std::vector<Target*>> model;
    std::vector<Target> pool(16);
    std::mt19937_64 rng(buckets);
    const auto key = [&](std::uint64_t n) {
      // Short (inline) and long (heap) keys alike.
      return n % 5 == 0 ? std::string(30, 'x') + std::to_string(n) : "acct_" + std::to_string(n);
    };
    for (int step = 0; step < 6000; ++step) {
      const std::string k = key(rng() % 300);
      Target* t = &pool[rng() % pool.size()];
      if (rng() % 3 != 0) {
        routes.add(k, t);
        model[k].push_back(t);
      } else {
        routes.remove(k, t);
        auto it = model.find(k);
        if (it != model.end()) {
          std::erase(it->second, t);
          if (it->second.empty()) model.erase(it);
        }
      }
      if (step % 97 == 0) {
        ASSERT_EQ(routes.accounts(), model.size());
        for (std::uint64_t n = 0; n < 300; ++n) {
          const auto it = model.find(key(n));
          ASSERT_EQ(list(routes.own(key(n))), it == model.end() ? std::vector<Target*>{} : it->second)
              << "buckets " << buckets << " step " << step << " key " << key(n);
          // The worker's grouped form (hash, prefetches, own with the hash) finds the same.
          const std::uint64_t h = routes.hash(key(n));
          routes.prefetch_bucket(h);
          routes.prefetch_entry(h);
          ASSERT_EQ(list(routes.own(key(n), h)), list(routes.own(key(n))));
        }
      }
    }
    // Empty it completely: every slot comes back.
    for (auto& [k, targets] : model)
      for (Target* t : std::vector<Target*>(targets)) routes.remove(k, t);
    EXPECT_EQ(routes.accounts(), 0u);
    EXPECT_LE(routes.heap_bytes(), routes.bucket_count() * 4 + 64);  // every page, key and list freed
    }
    EXPECT_EQ(test::live_bytes(), live_before) << "buckets " << buckets;  // nothing leaked
  }
}

}  // namespace
}  // namespace tracecast::detail
