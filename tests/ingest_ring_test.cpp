#include "tracecast/ingest_ring.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "alloc_counter.h"
#include "canonical_request.h"

namespace tracecast {
namespace {

IngestConfig small_config(std::uint32_t capacity = 64) {
  IngestConfig c;
  c.capacity = capacity;
  c.slot_bytes = 2048;
  c.max_producers = 8;
  return c;
}

// The canonical request (tests/support/canonical_request.h).
const test::CanonicalRequest k_canonical;
const MetadataEntry (&k_meta)[2] = k_canonical.meta;
LlmRequest canonical(const MetadataEntry (&)[2]) { return k_canonical.r; }

TEST(IngestConfig, ValidateNamesTheFieldAndReason) {
  IngestConfig c;
  EXPECT_EQ(c.validate(), "");
  c.capacity = 1000;
  EXPECT_NE(c.validate().find("capacity: must be a power of two"), std::string::npos);
  c = IngestConfig{};
  c.slot_bytes = 1000;
  EXPECT_NE(c.validate().find("slot_bytes"), std::string::npos);
  c = IngestConfig{};
  c.limits.max_metadata_key_bytes = 0;
  EXPECT_NE(c.validate().find("limits.max_metadata_key_bytes"), std::string::npos);
}

TEST(IngestRing, RejectsNonPowerOfTwoCapacityAtConstruction) {
  IngestConfig c = small_config();
  c.capacity = 100;
  EXPECT_THROW(IngestRing ring(c), std::invalid_argument);
}

TEST(IngestRing, CopiesEveryFieldIntoItsSlot) {
  IngestRing ring(small_config());
  auto& p = ring.make_producer();
  std::string model = "openai/gpt-4o";
  LlmRequest r = canonical(k_meta);
  r.requested_model = model;
  r.prompt = "hello";
  r.completion = "world";
  r.error = true;
  r.error_message = "boom";
  r.http_status = 502;
  ASSERT_EQ(ring.try_submit(p, r), submit_result::ok);
  model.assign("XXXXXXXXXXXXX");  // the ring must hold its own copy
  std::size_t seen = 0;
  ring.drain(
      [&](const LlmRequest& got) {
        ++seen;
        EXPECT_EQ(got.requested_model, "openai/gpt-4o");
        EXPECT_EQ(got.account, "acct_1");
        EXPECT_EQ(got.response_model, "openai/gpt-4o-2024-08-06");
        EXPECT_EQ(got.input_tokens, 1200);
        EXPECT_DOUBLE_EQ(got.cost, 0.0042);
        EXPECT_EQ(got.user, "user_12345");
        EXPECT_EQ(got.prompt, "hello");
        EXPECT_EQ(got.completion, "world");
        EXPECT_TRUE(got.error);
        EXPECT_EQ(got.error_message, "boom");
        EXPECT_EQ(got.http_status, 502);
        ASSERT_EQ(got.metadata.size(), 2u);
        EXPECT_EQ(got.metadata[0].key, "environment");
        EXPECT_EQ(got.metadata[0].value.as_string(), "production");
        EXPECT_NE(got.metadata[0].key.data(), k_meta[0].key.data());
      },
      16);
  EXPECT_EQ(seen, 1u);
}

TEST(IngestRing, CopiesArrayMetadataValues) {
  IngestRing ring(small_config());
  auto& p = ring.make_producer();
  const std::string_view tags[] = {"x", "yy"};
  const std::int64_t nums[] = {1, 2, 3};
  const MetadataEntry meta[] = {{"tags", AttributeValue::strings(tags)}, {"n", AttributeValue::int64s(nums)}};
  LlmRequest r;
  r.metadata = meta;
  ASSERT_EQ(ring.try_submit(p, r), submit_result::ok);
  ring.drain(
      [&](const LlmRequest& got) {
        ASSERT_EQ(got.metadata.size(), 2u);
        const auto s = got.metadata[0].value.as_strings();
        ASSERT_EQ(s.size(), 2u);
        EXPECT_EQ(s[1], "yy");
        EXPECT_NE(s.data(), tags);
        const auto n = got.metadata[1].value.as_int64s();
        ASSERT_EQ(n.size(), 3u);
        EXPECT_EQ(n[2], 3);
      },
      4);
}

TEST(IngestRing, RejectsSubmitWhenFullAndCountsIt) {
  IngestRing ring(small_config(64));
  auto& p = ring.make_producer();
  const LlmRequest r = canonical(k_meta);
  for (int i = 0; i < 64; ++i) ASSERT_EQ(ring.try_submit(p, r), submit_result::ok) << i;
  EXPECT_EQ(ring.try_submit(p, r), submit_result::full);
  EXPECT_EQ(ring.try_submit(p, r), submit_result::full);
  IngestStats s = ring.stats();
  EXPECT_EQ(s.accepted, 64u);
  EXPECT_EQ(s.rejected_full, 2u);
  // Draining frees the slots again.
  EXPECT_EQ(ring.drain([](const LlmRequest&) {}, 1000), 64u);
  EXPECT_EQ(ring.try_submit(p, r), submit_result::ok);
  s = ring.stats();
  EXPECT_EQ(s.drained, 64u);
  EXPECT_EQ(s.submitted(), 67u);
}

TEST(IngestRing, RejectsSubmitAfterCloseAndCountsIt) {
  IngestRing ring(small_config());
  auto& p = ring.make_producer();
  const LlmRequest r = canonical(k_meta);
  ASSERT_EQ(ring.try_submit(p, r), submit_result::ok);
  ring.close();
  EXPECT_TRUE(ring.closed());
  EXPECT_EQ(ring.try_submit(p, r), submit_result::closed);
  EXPECT_EQ(ring.stats().rejected_closed, 1u);
  EXPECT_EQ(ring.drain([](const LlmRequest&) {}, 10), 1u);  // accepted before close: kept
}

TEST(IngestRing, DrainIsBoundedByMaxItems) {
  IngestRing ring(small_config(512));
  auto& p = ring.make_producer();
  const LlmRequest r = canonical(k_meta);
  for (int i = 0; i < 300; ++i) ASSERT_EQ(ring.try_submit(p, r), submit_result::ok);
  EXPECT_EQ(ring.drain([](const LlmRequest&) {}, 7), 7u);
  EXPECT_EQ(ring.drain([](const LlmRequest&) {}, 1000), 293u);
  EXPECT_EQ(ring.drain([](const LlmRequest&) {}, 1000), 0u);
}

TEST(IngestRing, CutsOverLongValuesAtAUtf8BoundaryAndCountsEachCut) {
  IngestConfig c = small_config();
  c.limits.max_field_bytes = 16;
  c.limits.max_metadata_value_bytes = 16;
  IngestRing ring(c);
  auto& p = ring.make_producer();
  std::string user(15, 'u');
  user += "\xE2\x82\xAC";  // € straddles byte 16
  const std::string long_value(100, 'v');
  const MetadataEntry meta[] = {{"k", AttributeValue::string(long_value)}};
  LlmRequest r;
  r.user = user;
  r.metadata = meta;
  r.requested_model = "short";
  ASSERT_EQ(ring.try_submit(p, r), submit_result::ok);
  ring.drain(
      [&](const LlmRequest& got) {
        EXPECT_EQ(got.user, std::string(15, 'u'));
        EXPECT_EQ(got.metadata[0].value.as_string(), std::string(16, 'v'));
        EXPECT_EQ(got.requested_model, "short");
      },
      4);
  EXPECT_EQ(ring.stats().truncated_values, 2u);
}

TEST(IngestRing, ContentGetsWhatIsLeftOfTheSlotAndTheCutIsCounted) {
  IngestConfig c = small_config();
  c.slot_bytes = 1024;
  IngestRing ring(c);
  auto& p = ring.make_producer();
  const std::string big(4000, 'p');
  LlmRequest r = canonical(k_meta);
  r.prompt = big;
  r.completion = "done";
  ASSERT_EQ(ring.try_submit(p, r), submit_result::ok);
  ring.drain(
      [&](const LlmRequest& got) {
        EXPECT_EQ(got.completion, "done");
        EXPECT_GT(got.prompt.size(), 0u);
        EXPECT_LT(got.prompt.size(), 1024u);
        EXPECT_EQ(got.user, "user_12345");  // identity always fits before content
        EXPECT_EQ(got.metadata.size(), 2u);
      },
      4);
  EXPECT_EQ(ring.stats().truncated_values, 1u);
}

TEST(IngestRing, DropsMetadataPastTheLimitAndCountsIt) {
  IngestConfig c = small_config();
  c.limits.max_metadata_entries = 1;
  IngestRing ring(c);
  auto& p = ring.make_producer();
  LlmRequest r = canonical(k_meta);
  ASSERT_EQ(ring.try_submit(p, r), submit_result::ok);
  ring.drain([&](const LlmRequest& got) { EXPECT_EQ(got.metadata.size(), 1u); }, 4);
  EXPECT_EQ(ring.stats().dropped_metadata, 1u);
}

TEST(IngestRing, MakeProducerRefusesPastTheLimit) {
  IngestConfig c = small_config();
  c.max_producers = 2;
  IngestRing ring(c);
  ring.make_producer();
  ring.make_producer();
  EXPECT_THROW(ring.make_producer(), std::length_error);
}

TEST(IngestRing, SubmitAndDrainDoNotAllocateAfterWarmUp) {
  IngestRing ring(small_config(1024));
  auto& p = ring.make_producer();
  const LlmRequest r = canonical(k_meta);
  // Warm up: every block of both queues used once.
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 1024; ++i) ASSERT_EQ(ring.try_submit(p, r), submit_result::ok);
    ring.drain([](const LlmRequest&) {}, 2048);
  }
  test::AllocationScope scope;
  for (int round = 0; round < 10; ++round) {
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(ring.try_submit(p, r), submit_result::ok);
    ring.drain([](const LlmRequest&) {}, 2048);
  }
  EXPECT_EQ(scope.count(), 0u);
}

// Multi-producer stress (run under ThreadSanitizer too): every accepted record is drained
// exactly once and intact, and submitted == drained + rejected exactly.
TEST(IngestRing, EveryAcceptedRecordIsDrainedExactlyOnceAndIntact) {
  IngestConfig c = small_config(256);
  c.max_producers = 8;
  IngestRing ring(c);
  constexpr int k_producers = 4;
  constexpr std::uint64_t k_per_producer = 20000;
  std::atomic<int> done{0};

  std::vector<std::thread> producers;
  std::vector<std::uint64_t> accepted(k_producers, 0);
  for (int t = 0; t < k_producers; ++t) {
    producers.emplace_back([&, t] {
      auto& p = ring.make_producer();
      char user[32];
      char session[32];
      for (std::uint64_t i = 0; i < k_per_producer; ++i) {
        const std::uint64_t id = (static_cast<std::uint64_t>(t) << 32) | i;
        const int un = std::snprintf(user, sizeof user, "user_%llu", static_cast<unsigned long long>(id));
        const int sn = std::snprintf(session, sizeof session, "s%llx", static_cast<unsigned long long>(id * 7));
        LlmRequest r;
        r.user = std::string_view(user, static_cast<std::size_t>(un));
        r.session_id = std::string_view(session, static_cast<std::size_t>(sn));
        r.input_tokens = static_cast<std::int64_t>(id);
        r.output_tokens = static_cast<std::int64_t>(id ^ 0x5555);
        const submit_result res = ring.try_submit(p, r);
        if (res == submit_result::ok) ++accepted[static_cast<std::size_t>(t)];
        if ((i & 1023) == 0) std::this_thread::yield();
      }
      done.fetch_add(1, std::memory_order_release);
    });
  }

  std::unordered_map<std::uint64_t, int> seen;
  std::uint64_t corrupt = 0;
  auto check = [&](const LlmRequest& r) {
    const auto id = static_cast<std::uint64_t>(r.input_tokens);
    char user[32];
    char session[32];
    const int un = std::snprintf(user, sizeof user, "user_%llu", static_cast<unsigned long long>(id));
    const int sn = std::snprintf(session, sizeof session, "s%llx", static_cast<unsigned long long>(id * 7));
    if (r.user != std::string_view(user, static_cast<std::size_t>(un)) ||
        r.session_id != std::string_view(session, static_cast<std::size_t>(sn)) ||
        r.output_tokens != static_cast<std::int64_t>(id ^ 0x5555))
      ++corrupt;
    ++seen[id];
  };
  while (done.load(std::memory_order_acquire) < k_producers) {
    if (ring.drain(check, 64) == 0) std::this_thread::yield();
  }
  for (auto& t : producers) t.join();
  ring.close();
  while (ring.drain(check, 1024) != 0) {
  }

  std::uint64_t total_accepted = 0;
  for (auto a : accepted) total_accepted += a;
  const IngestStats s = ring.stats();
  EXPECT_EQ(corrupt, 0u);
  EXPECT_EQ(seen.size(), total_accepted);
  for (const auto& [id, n] : seen) ASSERT_EQ(n, 1) << id;
  EXPECT_EQ(s.accepted, total_accepted);
  EXPECT_EQ(s.drained, total_accepted);
  EXPECT_EQ(s.submitted(), k_producers * k_per_producer);
  EXPECT_EQ(s.submitted(), s.drained + s.rejected_full + s.rejected_closed);
  EXPECT_GT(s.accepted, 0u);
}

// close() racing with producers: nothing accepted is lost, nothing is accepted after close.
TEST(IngestRing, CloseRacingWithProducersLosesNothing) {
  IngestConfig c = small_config(1024);
  IngestRing ring(c);
  std::atomic<bool> go{false};
  std::vector<std::thread> producers;
  for (int t = 0; t < 3; ++t) {
    producers.emplace_back([&] {
      auto& p = ring.make_producer();
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      LlmRequest r;
      r.user = "u";
      while (ring.try_submit(p, r) != submit_result::closed) {
      }
    });
  }
  go.store(true, std::memory_order_release);
  std::uint64_t drained = 0;
  for (int i = 0; i < 200; ++i) drained += ring.drain([](const LlmRequest&) {}, 64);
  ring.close();
  for (auto& t : producers) t.join();
  while (std::size_t n = ring.drain([](const LlmRequest&) {}, 1024)) drained += n;
  const IngestStats s = ring.stats();
  EXPECT_EQ(drained, s.accepted);
  EXPECT_EQ(s.drained, s.accepted);
  EXPECT_EQ(s.rejected_closed, 3u);
}

}  // namespace
}  // namespace tracecast
