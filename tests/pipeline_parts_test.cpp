// The pipeline worker's parts on their own: buffer pool, pending store, linger policy and
// timers, route table, a destination's compact counters (core/pipeline/*.h, internal).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "alloc_counter.h"
#include "buffer_pool.h"
#include "canonical_request.h"
#include "compact_counters.h"
#include "linger_timers.h"
#include "pending_store.h"
#include "route_table.h"

namespace tracecast::detail {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

TEST(BufferPool, ChargesTheClassCapacityWithinOneAndAHalfTimesTheAskedBytes) {
  BufferPool pool(4u << 20, 64u << 20, 0);
  for (std::size_t bytes : {1u, 511u, 512u, 513u, 700u, 1025u, 57'000u, 674'000u, 4u << 20}) {
    Buffer* b = pool.acquire(bytes);
    ASSERT_NE(b, nullptr) << bytes;
    EXPECT_GE(b->capacity, bytes);
    EXPECT_LE(b->capacity, std::max<std::size_t>(512, bytes + bytes / 2)) << bytes;
    EXPECT_EQ(pool.held(), b->capacity);
    pool.release(b);
    EXPECT_EQ(pool.held(), 0u);
  }
  EXPECT_EQ(pool.acquire((4u << 20) + 1), nullptr) << "larger than the largest class";
}

TEST(BufferPool, RefusesPastTheBudgetAndReusesFreedBuffersWithoutAllocating) {
  BufferPool pool(1u << 20, 256u << 10, 256u << 10);
  std::vector<Buffer*> held;
  while (Buffer* b = pool.acquire(64u << 10)) held.push_back(b);
  EXPECT_EQ(held.size(), 4u);
  EXPECT_EQ(pool.held(), 256u << 10);
  EXPECT_EQ(pool.peak(), 256u << 10);
  for (Buffer* b : held) pool.release(b);
  held.clear();
  const test::AllocationScope scope;
  for (int i = 0; i < 4; ++i) held.push_back(pool.acquire(64u << 10));
  EXPECT_EQ(scope.count(), 0u);
  for (Buffer* b : held) pool.release(b);
}

TEST(BufferPool, ReturnsBuffersBeyondTheRetainLimitToTheAllocator) {
  BufferPool pool(1u << 20, 16u << 20, 128u << 10);
  std::vector<Buffer*> held;
  for (int i = 0; i < 8; ++i) held.push_back(pool.acquire(64u << 10));
  for (Buffer* b : held) pool.release(b);
  EXPECT_EQ(pool.retained(), 128u << 10);
  EXPECT_EQ(pool.held(), 0u);
}

std::string str(std::string_view v) { return std::string(v); }

TEST(PendingStore, DecodesExactlyWhatWasStoredIncludingEveryMetadataType) {
  BufferPool pool(1u << 20, 64u << 20, 1u << 20);
  PendingStore store(pool);
  const std::string_view strs[] = {"a", "", "ccc"};
  const std::int64_t ints[] = {1, -2, 3};
  const double dbls[] = {0.5, -1.25};
  const bool bools[] = {true, false, true};
  const MetadataEntry meta[] = {
      {"s", AttributeValue::string("value")},      {"b", AttributeValue::boolean(true)},
      {"i", AttributeValue::int64(-7)},             {"d", AttributeValue::float64(2.5)},
      {"sa", AttributeValue::strings(strs)},        {"ia", AttributeValue::int64s(ints)},
      {"da", AttributeValue::float64s(dbls)},       {"ba", AttributeValue::bools(bools)},
      {"e", AttributeValue{}},                      {"tail", AttributeValue::string("after arrays")},
  };
  test::CanonicalRequest c;
  LlmRequest r = c.r;
  r.metadata = meta;
  r.prompt = "prompt \xF0\x9F\x98\x80";
  r.completion = "done";
  r.error = true;
  r.error_message = "boom";
  r.first_token_unix_nano = 5;
  r.temperature = 0.7;
  r.max_tokens = 99;
  r.stream = true;
  r.http_status = 429;
  PendingRecord* rec = store.store(r, 2, 1234);
  ASSERT_NE(rec, nullptr);
  EXPECT_EQ(rec->refs, 2u);
  EXPECT_EQ(rec->id_seed, 1234u);
  EXPECT_EQ(rec->bytes, PendingStore::bytes_for(r, 2));
  EXPECT_EQ(rec->ref_array()[1].record, rec);

  LlmRequest out;
  std::vector<MetadataEntry> scratch(PendingStore::k_max_metadata);
  PendingStore::decode(*rec, out, scratch.data());
  for (auto [a, b] : {std::pair{out.account, r.account}, {out.request_id, r.request_id}, {out.operation, r.operation},
                      {out.provider, r.provider}, {out.requested_model, r.requested_model},
                      {out.response_model, r.response_model}, {out.response_id, r.response_id},
                      {out.finish_reason, r.finish_reason}, {out.user, r.user}, {out.session_id, r.session_id},
                      {out.prompt, r.prompt}, {out.completion, r.completion}, {out.error_message, r.error_message}}) {
    EXPECT_EQ(str(a), str(b));
    if (!a.empty()) {
      EXPECT_NE(a.data(), b.data()) << "a copy, not the caller's bytes";
    }
  }
  EXPECT_EQ(out.input_tokens, r.input_tokens);
  EXPECT_EQ(out.output_tokens, r.output_tokens);
  EXPECT_EQ(out.cost, r.cost);
  EXPECT_EQ(out.temperature, r.temperature);
  EXPECT_TRUE(std::isnan(out.top_p));
  EXPECT_EQ(out.max_tokens, 99);
  EXPECT_TRUE(out.stream);
  EXPECT_TRUE(out.error);
  EXPECT_EQ(out.http_status, 429);
  EXPECT_EQ(out.start_unix_nano, r.start_unix_nano);
  EXPECT_EQ(out.first_token_unix_nano, 5u);
  EXPECT_EQ(out.end_unix_nano, r.end_unix_nano);
  ASSERT_EQ(out.metadata.size(), std::size(meta));
  for (std::size_t i = 0; i < std::size(meta); ++i) {
    const AttributeValue& a = out.metadata[i].value;
    const AttributeValue& b = meta[i].value;
    EXPECT_EQ(str(out.metadata[i].key), str(meta[i].key));
    ASSERT_EQ(a.type(), b.type()) << i;
    switch (a.type()) {
      case ValueType::string: EXPECT_EQ(str(a.as_string()), str(b.as_string())); break;
      case ValueType::boolean: EXPECT_EQ(a.as_bool(), b.as_bool()); break;
      case ValueType::int64: EXPECT_EQ(a.as_int64(), b.as_int64()); break;
      case ValueType::float64: EXPECT_EQ(a.as_double(), b.as_double()); break;
      case ValueType::string_array:
        ASSERT_EQ(a.as_strings().size(), 3u);
        for (std::size_t k = 0; k < 3; ++k) EXPECT_EQ(str(a.as_strings()[k]), str(strs[k]));
        break;
      case ValueType::int64_array:
        EXPECT_EQ(std::vector<std::int64_t>(a.as_int64s().begin(), a.as_int64s().end()),
                  std::vector<std::int64_t>(std::begin(ints), std::end(ints)));
        break;
      case ValueType::float64_array:
        EXPECT_EQ(std::vector<double>(a.as_doubles().begin(), a.as_doubles().end()),
                  std::vector<double>(std::begin(dbls), std::end(dbls)));
        break;
      case ValueType::bool_array:
        EXPECT_EQ(std::vector<bool>(a.as_bools().begin(), a.as_bools().end()),
                  std::vector<bool>(std::begin(bools), std::end(bools)));
        break;
      case ValueType::empty: break;
    }
  }
  store.release(rec);  // one destination done: the other still decodes the same request
  LlmRequest again;
  PendingStore::decode(*rec, again, scratch.data());
  EXPECT_EQ(str(again.prompt), str(r.prompt));
  EXPECT_EQ(again.http_status, 429);
  ASSERT_EQ(again.metadata.size(), std::size(meta));
  EXPECT_EQ(str(again.metadata.back().value.as_string()), "after arrays");
  store.release(rec);
  EXPECT_EQ(store.records_live(), 0u);
}

TEST(PendingStore, CanonicalRecordIsCompactAndStoringAllocatesNothingOnceWarm) {
  BufferPool pool(1u << 20, 64u << 20, 4u << 20);
  PendingStore store(pool);
  test::CanonicalRequest c;
  EXPECT_LE(PendingStore::bytes_for(c.r, 1), 448u) << "the canonical request's record should stay compact";
  std::vector<PendingRecord*> recs;
  recs.reserve(1000);
  for (int warm = 0; warm < 20; ++warm) {  // the bump position drifts: some rounds need one chunk more
    for (int i = 0; i < 1000; ++i) recs.push_back(store.store(c.r, 1, 1));
    for (PendingRecord* r : recs) store.release(r);
    recs.clear();
  }
  const test::AllocationScope scope;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 1000; ++i) recs.push_back(store.store(c.r, 1, 1));
    for (PendingRecord* r : recs) store.release(r);
    recs.clear();
  }
  EXPECT_EQ(scope.count(), 0u);
}

TEST(PendingStore, AChunkIsFreedOnlyWhenItsLastRecordIsReleased) {
  BufferPool pool(1u << 20, 64u << 20, 0);
  PendingStore store(pool);
  test::CanonicalRequest c;
  // Fill two chunks and a bit; keep one record of the first chunk.
  const std::size_t per_chunk = PendingStore::k_chunk_bytes / PendingStore::bytes_for(c.r, 1);
  std::vector<PendingRecord*> recs;
  for (std::size_t i = 0; i < 2 * per_chunk + 1; ++i) recs.push_back(store.store(c.r, 1, 1));
  const std::size_t held = store.held_bytes();
  EXPECT_GE(held, 3 * PendingStore::k_chunk_bytes);
  for (std::size_t i = 1; i < recs.size(); ++i) store.release(recs[i]);
  EXPECT_EQ(store.held_bytes(), 2 * PendingStore::k_chunk_bytes) << "the first (kept alive) and the current chunk";
  store.release(recs[0]);
  EXPECT_EQ(store.held_bytes(), PendingStore::k_chunk_bytes) << "only the current chunk";
}

TEST(PendingStore, ALargeRecordGetsABufferOfItsOwnAndRefusesPastTheBudget) {
  BufferPool pool(2u << 20, 1u << 20, 0);
  PendingStore store(pool);
  test::CanonicalRequest c;
  const std::string prompt(300'000, 'x');
  LlmRequest r = c.r;
  r.prompt = prompt;
  PendingRecord* a = store.store(r, 1, 1);
  ASSERT_NE(a, nullptr);
  LlmRequest out;
  std::vector<MetadataEntry> scratch(PendingStore::k_max_metadata);
  PendingStore::decode(*a, out, scratch.data());
  EXPECT_EQ(out.prompt, prompt);
  PendingRecord* b = store.store(r, 1, 1);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(store.store(r, 1, 1), nullptr) << "a third 300 KB record exceeds the 1 MiB budget";
  EXPECT_LE(pool.held(), 1u << 20);
  store.release(a);
  store.release(b);
  EXPECT_EQ(pool.held(), 0u);
}

TEST(LingerPolicy, AQuietDestinationWaitsLongerAndABusyOneShorter) {
  const milliseconds lo(200), hi(5000);
  EXPECT_EQ(next_linger(milliseconds(200), 1, 64, lo, hi), hi) << "one span per linger: straight to the maximum";
  EXPECT_EQ(next_linger(milliseconds(5000), 10, 64, lo, hi), hi);
  EXPECT_EQ(next_linger(milliseconds(1000), 64, 64, lo, hi), milliseconds(1000)) << "on target: unchanged";
  EXPECT_EQ(next_linger(milliseconds(1000), 128, 64, lo, hi), milliseconds(500));
  EXPECT_EQ(next_linger(milliseconds(3), 512, 64, lo, hi), lo) << "sealed by size at once: the minimum";
  EXPECT_EQ(next_linger(milliseconds(0), 0, 64, lo, hi), hi);
}

struct Target {
  std::uint64_t generation = 0;
  int fired = 0;
};

TEST(LingerTimers, FiresInDeadlineOrderAndSkipsSealedBatches) {
  LingerTimers<Target> timers;
  Target a, b, c;
  const auto t0 = Clock::now();
  timers.add(t0 + milliseconds(30), &a, 0);
  timers.add(t0 + milliseconds(10), &b, 0);
  timers.add(t0 + milliseconds(20), &c, 0);
  c.generation = 1;  // sealed since: its entry is stale
  std::vector<Target*> order;
  EXPECT_EQ(timers.pop_due(t0 + milliseconds(5), 10, [&](Target& t) { order.push_back(&t); }), 0u);
  EXPECT_TRUE(order.empty());
  EXPECT_EQ(timers.earliest(), t0 + milliseconds(10));
  EXPECT_EQ(timers.pop_due(t0 + milliseconds(40), 1, [&](Target& t) { order.push_back(&t); }), 1u);
  EXPECT_EQ(order, (std::vector<Target*>{&b})) << "at most `max` per call";
  EXPECT_EQ(timers.pop_due(t0 + milliseconds(40), 10, [&](Target& t) { order.push_back(&t); }), 1u);
  EXPECT_EQ(order, (std::vector<Target*>{&b, &a}));
  EXPECT_TRUE(timers.empty());
}

// The `ahead` step (the pipeline asks there for each due destination's first record): called
// once for every live entry of a group before that group's first due(), never for a stale
// one, and never for an entry past `max`.
TEST(LingerTimers, AheadSeesEachLiveEntryOfAGroupBeforeItIsDue) {
  LingerTimers<Target> timers;
  std::vector<Target> targets(20);
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < targets.size(); ++i) {
    timers.add(t0 + milliseconds(static_cast<std::int64_t>(i)), &targets[i], 0);
    if (i % 5 == 4) targets[i].generation = 1;  // sealed since: stale
  }
  std::vector<std::string> log;
  const auto name = [&](const Target& t) { return std::to_string(&t - targets.data()); };
  const std::size_t fired = timers.pop_due(
      t0 + milliseconds(100), 12, [&](Target& t) { log.push_back("due " + name(t)); },
      [&](const Target& t) { log.push_back("ahead " + name(t)); });
  EXPECT_EQ(fired, 12u);
  // A group takes up to 8 entries and no more than `max` still allows (stale ones count
  // there): 0..7 (4 stale, 7 due), then 8..12 (9 stale, 4 due), then 13 (the 12th).
  std::vector<std::string> want;
  for (const std::vector<int>& group : {std::vector<int>{0, 1, 2, 3, 5, 6, 7}, {8, 10, 11, 12}, {13}}) {
    for (int i : group) want.push_back("ahead " + std::to_string(i));
    for (int i : group) want.push_back("due " + std::to_string(i));
  }
  EXPECT_EQ(log, want);
  EXPECT_EQ(timers.size(), 6u) << "14..19 wait for the next call";
}

// Random deadlines (ties included), entries added while others are popped, a third of them
// stale: every live entry fires exactly once and no stale one does.
TEST(LingerTimers, FiresEveryLiveEntryOnceAtScale) {
  LingerTimers<Target> timers;
  std::vector<Target> targets(5000);
  const auto t0 = Clock::now();
  std::uint64_t x = 7;
  auto next = [&x] {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x >> 33;
  };
  std::size_t live = 0;
  auto add_some = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
      timers.add(t0 + milliseconds(1000 + static_cast<std::int64_t>(next() % 3000)), &targets[i], 0);
      if (next() % 3 == 0) {
        targets[i].generation = 1;  // sealed since: stale
      } else {
        ++live;
      }
    }
  };
  auto fire = [](Target& t) {
    EXPECT_EQ(t.generation, 0u);
    ++t.fired;
  };
  add_some(0, 2500);
  EXPECT_EQ(timers.pop_due(t0 + milliseconds(999), 100, fire), 0u);
  std::size_t fired = timers.pop_due(t0 + milliseconds(1500), 64, fire);
  add_some(2500, targets.size());
  for (std::size_t n = 1; n != 0;) {
    n = timers.pop_due(t0 + milliseconds(5000), 37, fire);
    EXPECT_LE(n, 37u);
    fired += n;
  }
  EXPECT_TRUE(timers.empty());
  EXPECT_EQ(fired, live);
  for (const Target& t : targets) EXPECT_EQ(t.fired, t.generation == 0 ? 1 : 0);
}

// Deadline order, checked entry by entry through the heap's own earliest().
TEST(LingerTimers, PopsInNonDecreasingDeadlineOrder) {
  LingerTimers<Target> timers;
  std::vector<Target> targets(3000);
  const auto t0 = Clock::now();
  std::uint64_t x = 11;
  for (Target& t : targets) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    timers.add(t0 + microseconds(static_cast<std::int64_t>((x >> 33) % 100000)), &t, 0);
  }
  Clock::time_point prev = t0;
  std::size_t popped = 0;
  while (!timers.empty()) {
    const auto e = timers.earliest();
    ASSERT_GE(e, prev);
    prev = e;
    ASSERT_EQ(timers.pop_due(e, 1, [](Target&) {}), 1u);
    ++popped;
  }
  EXPECT_EQ(popped, targets.size());
}

TEST(RouteTable, AddsAndRemovesPerAccountAndForEveryone) {
  RouteTable<Target> routes;
  Target a1, a2, b1, all;
  routes.add("a", &a1);
  routes.add("a", &a2);
  routes.add("b", &b1);
  routes.add("", &all);
  const auto list = [](auto span) { return std::vector<Target*>(span.begin(), span.end()); };
  EXPECT_EQ(list(routes.own("a")), (std::vector<Target*>{&a1, &a2}));
  EXPECT_TRUE(routes.own("c").empty());
  EXPECT_EQ(list(routes.everyone()), (std::vector<Target*>{&all}));
  routes.remove("a", &a1);
  EXPECT_EQ(list(routes.own("a")), (std::vector<Target*>{&a2}));
  routes.remove("a", &a2);
  EXPECT_TRUE(routes.own("a").empty());
  routes.remove("", &all);
  EXPECT_TRUE(routes.everyone().empty());
}

TEST(CompactCounters, AHealthyDestinationAllocatesNothingAndConvertsExactly) {
  CompactCounters c;
  const std::int64_t before = test::live_bytes();
  for (int i = 0; i < 1000; ++i) {
    c.add(CompactCounters::Count::requests_sent);
    c.add(CompactCounters::Count::delivered, 3);
    c.add(CompactCounters::Count::requests_delivered);
    c.add_latency(static_cast<std::size_t>(i % 13), 1'000'000);
    c.bytes_raw += 2000;
    c.bytes_compressed += 700;
    c.note_batch(2000);
  }
  c.drop(DropReason::partial_rejected, 0);  // nothing dropped: still nothing allocated
  c.note_success(42);
  EXPECT_EQ(test::live_bytes(), before) << "only a drop, a failure or a carry allocates the cold block";
  EXPECT_EQ(c.cold_if_any(), nullptr);
  DestinationCounters out;
  c.fill(out);
  EXPECT_EQ(out.requests_sent, 1000u);
  EXPECT_EQ(out.delivered, 3000u);
  EXPECT_EQ(out.requests_delivered, 1000u);
  EXPECT_EQ(out.latency_buckets[0], 77u);  // i % 13 == 0 for 77 of 0..999
  EXPECT_EQ(out.latency_buckets[12], 76u);
  EXPECT_EQ(out.latency_sum_ns, 1'000'000'000u);
  EXPECT_EQ(out.bytes_raw, 2'000'000u);
  EXPECT_EQ(out.bytes_compressed, 700'000u);
  EXPECT_EQ(out.largest_batch_bytes, 2000u);
  EXPECT_EQ(out.dropped_total(), 0u);
  EXPECT_EQ(out.health.state, DestinationState::healthy);
  EXPECT_EQ(out.health.last_success_unix_ns, 42);
  EXPECT_TRUE(out.health.message.empty());
}

TEST(CompactCounters, ANarrowCountCarriesPast32BitsExactly) {
  CompactCounters c;
  constexpr std::uint64_t k_u32_max = 0xFFFF'FFFFu;
  c.add(CompactCounters::Count::delivered, k_u32_max - 1);
  EXPECT_EQ(c.cold_if_any(), nullptr);
  c.add(CompactCounters::Count::delivered, 1);  // exactly 2^32 - 1: still narrow
  EXPECT_EQ(c.value(CompactCounters::Count::delivered), k_u32_max);
  EXPECT_EQ(c.cold_if_any(), nullptr);
  c.add(CompactCounters::Count::delivered, 5);  // passes it: carried, never wrapped or saturated
  ASSERT_NE(c.cold_if_any(), nullptr);
  EXPECT_EQ(c.value(CompactCounters::Count::delivered), k_u32_max + 5);
  for (int i = 0; i < 3; ++i) c.add(CompactCounters::Count::delivered, k_u32_max);
  EXPECT_EQ(c.value(CompactCounters::Count::delivered), 4 * k_u32_max + 5);
  EXPECT_EQ(c.value(CompactCounters::Count::requests_sent), 0u) << "a carry is per count";
}

TEST(CompactCounters, DropsAndFailureDetailsLiveInTheColdBlock) {
  CompactCounters c;
  c.drop(DropReason::backpressure, 7);
  c.drop(DropReason::backpressure, 3);
  c.cold().retries += 2;
  DestinationHealth& h = c.health_details();
  h.last_http_status = 503;
  h.consecutive_failures = 4;
  h.message = "The endpoint answered HTTP 503";
  c.state = DestinationState::retrying;
  DestinationCounters out;
  c.fill(out);
  EXPECT_EQ(out.dropped_by(DropReason::backpressure), 10u);
  EXPECT_EQ(out.dropped_total(), 10u);
  EXPECT_EQ(out.retries, 2u);
  EXPECT_EQ(out.health.state, DestinationState::retrying);
  EXPECT_EQ(out.health.last_http_status, 503);
  EXPECT_EQ(out.health.message, "The endpoint answered HTTP 503");
  c.note_success(99);  // a success resets the failure count, keeps the last error
  c.state = DestinationState::healthy;
  c.fill(out);
  EXPECT_EQ(out.health.consecutive_failures, 0u);
  EXPECT_EQ(out.health.last_http_status, 503);
  EXPECT_EQ(out.health.last_success_unix_ns, 99);
}

}  // namespace
}  // namespace tracecast::detail
