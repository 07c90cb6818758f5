#include "tracecast/ingest_ring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <memory>
#include <vector>

#include "alloc_counter.h"
#include "canonical_request.h"

namespace tracecast {
namespace {

IngestConfig small_config(std::uint32_t ring_bytes = 64u << 10) {
  IngestConfig c;
  c.ring_bytes = ring_bytes;
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
  c.ring_bytes = 1000u << 10;
  EXPECT_NE(c.validate().find("ring_bytes: must be a power of two"), std::string::npos);
  c = IngestConfig{};
  c.ring_bytes = 32u << 10;
  EXPECT_NE(c.validate().find("ring_bytes"), std::string::npos);
  c = IngestConfig{};
  c.max_producers = 0;
  EXPECT_NE(c.validate().find("max_producers"), std::string::npos);
  c = IngestConfig{};
  c.limits.max_metadata_key_bytes = 0;
  EXPECT_NE(c.validate().find("limits.max_metadata_key_bytes"), std::string::npos);
}

TEST(IngestRing, RejectsNonPowerOfTwoRingBytesAtConstruction) {
  IngestConfig c = small_config();
  c.ring_bytes = 100u << 10;
  EXPECT_THROW(IngestRing ring(c), std::invalid_argument);
}

TEST(IngestRing, CopiesEveryFieldIntoItsRecord) {
  IngestRing ring(small_config());
  std::string model = "openai/gpt-4o";
  LlmRequest r = canonical(k_meta);
  r.requested_model = model;
  r.prompt = "hello";
  r.completion = "world";
  r.error = true;
  r.error_message = "boom";
  r.http_status = 502;
  ASSERT_EQ(ring.try_submit(r), submit_result::ok);  // the calling thread's own registration
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

TEST(IngestRing, RejectsSubmitWhenTheBytesRunOutAndCountsIt) {
  IngestRing ring(small_config(64u << 10));
  auto& p = ring.make_producer();
  const LlmRequest r = canonical(k_meta);
  std::size_t n = 0;
  while (ring.try_submit(p, r) == submit_result::ok) ++n;
  // Records are sized by their content: the canonical request takes well under 1 KiB, so a
  // 64 KiB ring holds far more of them than 4 KiB slots would (16).
  EXPECT_GT(n, 64u);
  EXPECT_LE(ring.bytes_queued_guess(), ring.ring_bytes());
  EXPECT_GT(ring.bytes_queued_guess(), ring.ring_bytes() - ring.ring_bytes() / 64);
  EXPECT_EQ(ring.try_submit(p, r), submit_result::full);
  IngestStats s = ring.stats();
  EXPECT_EQ(s.accepted, n);
  EXPECT_EQ(s.rejected_full, 2u);
  EXPECT_EQ(ring.size_guess(), n);
  // Draining frees the bytes again.
  EXPECT_EQ(ring.drain([](const LlmRequest&) {}, 100000), n);
  EXPECT_EQ(ring.bytes_queued_guess(), 0u);
  EXPECT_EQ(ring.try_submit(p, r), submit_result::ok);
  s = ring.stats();
  EXPECT_EQ(s.drained, n);
  EXPECT_EQ(s.submitted(), n + 3);
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
  IngestRing ring(small_config(1u << 20));
  auto& p = ring.make_producer();
  const LlmRequest r = canonical(k_meta);
  for (int i = 0; i < 300; ++i) ASSERT_EQ(ring.try_submit(p, r), submit_result::ok);
  EXPECT_EQ(ring.drain([](const LlmRequest&) {}, 7), 7u);
  EXPECT_EQ(ring.drain([](const LlmRequest&) {}, 1000), 293u);
  EXPECT_EQ(ring.drain([](const LlmRequest&) {}, 1000), 0u);
}

std::string key_of(std::size_t n) {
  std::string key(1, 'k');  // appended: GCC 12 -O3 warns falsely on "k" + std::to_string(n)
  key.append(std::to_string(n));
  return key;
}

// The pipeline routes a group's requests after looking at all of them: every request of a
// group must still be whole when the handler reads it last, in ring order, across wraps.
TEST(IngestRing, DrainGroupsHandsWholeGroupsInOrderAcrossWraps) {
  IngestRing ring(small_config());  // 64 KiB: ~40 canonical records, so it wraps every few rounds
  auto& p = ring.make_producer();
  LlmRequest r = canonical(k_meta);
  std::size_t next_in = 0;
  std::size_t next_out = 0;
  std::size_t groups = 0;
  for (int round = 0; round < 200; ++round) {
    const std::size_t want = 1 + static_cast<std::size_t>(round % 23);
    for (std::size_t i = 0; i < want; ++i) {
      const std::string key = key_of(next_in);
      r.api_key_id = key;
      if (ring.try_submit(p, r) != submit_result::ok) break;
      ++next_in;
    }
    const std::size_t max_items = 1 + static_cast<std::size_t>(round % 11);
    std::size_t handed = 0;
    const std::size_t drained = ring.drain_groups(
        [&](std::span<const LlmRequest* const> group) {
          ++groups;
          ASSERT_GE(group.size(), 1U);
          ASSERT_LE(group.size(), IngestRing::k_drain_group);
          // Read back to front: the first ones must not have been freed meanwhile.
          for (std::size_t k = group.size(); k-- > 0;) {
            EXPECT_EQ(group[k]->api_key_id, key_of(next_out + k));
            EXPECT_EQ(group[k]->account, "acct_1");
          }
          next_out += group.size();
          handed += group.size();
        },
        max_items);
    EXPECT_EQ(drained, handed);
    EXPECT_LE(drained, max_items);
  }
  ring.drain_groups([&](std::span<const LlmRequest* const> group) { next_out += group.size(); }, 1U << 20);
  EXPECT_EQ(next_out, next_in);
  EXPECT_GT(groups, 200U);
  EXPECT_EQ(ring.stats().drained, next_in);
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
        // The span will say so (tracecast.truncated), not only the global counter.
        EXPECT_NE(got.submit_flags & k_submit_value_cut, 0u);
      },
      4);
  EXPECT_EQ(ring.stats().truncated_values, 2u);
}

// The API key id routes a request (PipelineDestination::api_key_ids): copied whole on both
// copy paths, and one over k_max_api_key_id_bytes is not kept at all (a cut id could equal
// another key's), counted.
TEST(IngestRing, CopiesTheApiKeyIdWholeOrNotAtAll) {
  IngestConfig c = small_config();
  c.limits.max_field_bytes = 16;  // shorter than the key ids: they have their own bound
  IngestRing ring(c);
  auto& p = ring.make_producer();
  std::string id(64, 'k');  // a SHA-256 in hex
  const std::string too_long(k_max_api_key_id_bytes + 1, 'x');
  const std::string long_user(40, 'u');  // forces the careful copy path
  LlmRequest fast;
  fast.api_key_id = id;
  LlmRequest careful;
  careful.api_key_id = id;
  careful.user = long_user;
  LlmRequest dropped;
  dropped.api_key_id = too_long;
  ASSERT_EQ(ring.try_submit(p, fast), submit_result::ok);
  ASSERT_EQ(ring.try_submit(p, careful), submit_result::ok);
  ASSERT_EQ(ring.try_submit(p, dropped), submit_result::ok);
  id.assign(64, 'X');  // the ring holds its own copies
  std::vector<std::string> got;
  ring.drain([&](const LlmRequest& q) { got.emplace_back(q.api_key_id); }, 8);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], std::string(64, 'k'));
  EXPECT_EQ(got[1], std::string(64, 'k'));
  EXPECT_EQ(got[2], "");
  EXPECT_EQ(ring.stats().truncated_values, 2u);  // careful's user, dropped's key id
}

TEST(IngestRing, ZeroTimesAreFilledFromTheSubmitClockAndFlagged) {
  IngestRing ring(small_config());
  auto& p = ring.make_producer();
  const auto now = [] {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  };
  LlmRequest zero;  // the struct's defaults
  LlmRequest only_start;
  only_start.start_unix_nano = now() - 1'000'000'000;
  LlmRequest only_end;
  only_end.end_unix_nano = 1'000;  // a clock far behind: start is never after end
  LlmRequest whole = k_canonical.r;
  const std::uint64_t before = now();
  for (const LlmRequest* r : {&zero, &only_start, &only_end, &whole}) ASSERT_EQ(ring.try_submit(p, *r), submit_result::ok);
  const std::uint64_t after = now();
  std::vector<LlmRequest> got;
  ring.drain([&](const LlmRequest& q) { got.push_back(q); }, 8);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_GE(got[0].start_unix_nano, before);
  EXPECT_LE(got[0].end_unix_nano, after);
  EXPECT_EQ(got[0].start_unix_nano, got[0].end_unix_nano);
  EXPECT_EQ(got[0].submit_flags, k_submit_start_filled | k_submit_end_filled);
  EXPECT_EQ(got[1].start_unix_nano, only_start.start_unix_nano);
  EXPECT_GE(got[1].end_unix_nano, before);
  EXPECT_EQ(got[1].submit_flags, k_submit_end_filled);
  EXPECT_EQ(got[2].end_unix_nano, 1'000u);
  EXPECT_EQ(got[2].start_unix_nano, 1'000u);
  EXPECT_EQ(got[2].submit_flags, k_submit_start_filled);
  EXPECT_EQ(got[3].start_unix_nano, k_canonical.r.start_unix_nano);
  EXPECT_EQ(got[3].submit_flags, 0u);
}

TEST(IngestRing, ContentOverTheLargestRecordIsCutAndCounted) {
  IngestRing ring(small_config(64u << 10));  // the largest record: 8 KiB
  ASSERT_EQ(ring.config().max_record_bytes(), 8192u);
  auto& p = ring.make_producer();
  const std::string big(20000, 'p');
  LlmRequest r = canonical(k_meta);
  r.prompt = big;
  r.completion = "done";
  ASSERT_EQ(ring.try_submit(p, r), submit_result::ok);
  ring.drain(
      [&](const LlmRequest& got) {
        EXPECT_EQ(got.completion, "done");
        EXPECT_GT(got.prompt.size(), 6000u);
        EXPECT_LT(got.prompt.size(), 8192u);
        EXPECT_EQ(got.prompt, std::string_view(big).substr(0, got.prompt.size()));
        EXPECT_EQ(got.user, "user_12345");  // identity always fits before content
        EXPECT_EQ(got.metadata.size(), 2u);
      },
      4);
  EXPECT_EQ(ring.stats().truncated_values, 1u);
}

// The default configuration keeps a 100 KB prompt whole, in no more memory than the former
// default (8192 slots x 4 KiB = 32 MiB).
TEST(IngestRing, DefaultConfigKeepsA100KbPromptWhole) {
  const IngestConfig c;
  EXPECT_EQ(c.ring_bytes, 32u << 20);
  EXPECT_GE(c.limits.max_content_bytes, 1u << 20);
  IngestRing ring(c);
  std::string prompt(100 * 1000, 'x');
  for (std::size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<char>('a' + (i * 7) % 26);
  LlmRequest r = canonical(k_meta);
  r.prompt = prompt;
  ASSERT_EQ(ring.try_submit(r), submit_result::ok);
  std::size_t seen = 0;
  ring.drain(
      [&](const LlmRequest& got) {
        ++seen;
        EXPECT_TRUE(got.prompt == prompt);
        EXPECT_NE(got.prompt.data(), prompt.data());
      },
      4);
  EXPECT_EQ(seen, 1u);
  EXPECT_EQ(ring.stats().truncated_values, 0u);
}

// Large records fill the ring by bytes: a 1 MiB ring holds ten 100 KB prompts (the 11th
// does not fit before the end, and the bytes after the wrap are still queued).
TEST(IngestRing, LargePromptsFillTheRingByBytes) {
  IngestRing ring(small_config(1u << 20));
  const std::string prompt(100 * 1024, 'q');
  LlmRequest r = canonical(k_meta);
  r.prompt = prompt;
  std::size_t n = 0;
  while (ring.try_submit(r) == submit_result::ok) ++n;
  EXPECT_EQ(n, 10u);
  EXPECT_LE(ring.bytes_queued_guess(), ring.ring_bytes());
  std::size_t whole = 0;
  EXPECT_EQ(ring.drain([&](const LlmRequest& got) { whole += got.prompt == prompt; }, 100), n);
  EXPECT_EQ(whole, n);
  // After the wrap: the next ones go to the start of the buffer behind a padding record.
  for (int round = 0; round < 30; ++round) {
    ASSERT_EQ(ring.try_submit(r), submit_result::ok) << round;
    ASSERT_EQ(ring.drain([&](const LlmRequest& got) { EXPECT_TRUE(got.prompt == prompt); }, 100), 1u);
  }
  EXPECT_EQ(ring.stats().truncated_values, 0u);
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

TEST(IngestRing, SubmitAndDrainDoNotAllocateOnceTheThreadIsRegistered) {
  IngestRing ring(small_config(1u << 20));
  const LlmRequest r = canonical(k_meta);
  const std::string prompt(100 * 1024, 'p');
  LlmRequest large = canonical(k_meta);
  large.prompt = prompt;
  ASSERT_EQ(ring.try_submit(r), submit_result::ok);  // registers this thread (may allocate)
  ring.drain([](const LlmRequest&) {}, 16);
  test::AllocationScope scope;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(ring.try_submit(r), submit_result::ok);
    ASSERT_EQ(ring.try_submit(large), submit_result::ok);
    ring.drain([](const LlmRequest&) {}, 2048);
  }
  EXPECT_EQ(scope.count(), 0u);
}

// Multi-producer stress (run under ThreadSanitizer too): every accepted record is drained
// exactly once and intact, and submitted == drained + rejected exactly.
TEST(IngestRing, EveryAcceptedRecordIsDrainedExactlyOnceAndIntact) {
  IngestConfig c = small_config(64u << 10);
  c.max_producers = 8;
  IngestRing ring(c);
  constexpr int k_producers = 4;
  constexpr std::uint64_t k_per_producer = 20000;
  std::atomic<int> done{0};

  std::vector<std::thread> producers;
  std::vector<std::uint64_t> accepted(k_producers, 0);
  for (int t = 0; t < k_producers; ++t) {
    producers.emplace_back([&, t] {
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
        const submit_result res = ring.try_submit(r);
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
  IngestConfig c = small_config(1u << 20);
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

// --- threads that come and go -------------------------------------------------------------

// A request that carries its id (in input_tokens and in the user string), so the consumer can
// check identity and integrity.
struct IdRequest {
  explicit IdRequest(std::uint64_t id) {
    const int n = std::snprintf(user, sizeof user, "user_%llu", static_cast<unsigned long long>(id));
    r.user = std::string_view(user, static_cast<std::size_t>(n));
    r.input_tokens = static_cast<std::int64_t>(id);
    r.account = "acct_1";
  }
  char user[32];
  LlmRequest r;
};

// Counts every id seen and every record whose strings do not match its id.
struct IdChecker {
  std::unordered_map<std::uint64_t, int> seen;
  std::uint64_t corrupt = 0;
  void operator()(const LlmRequest& r) {
    const auto id = static_cast<std::uint64_t>(r.input_tokens);
    const IdRequest expect(id);
    if (r.user != expect.r.user || r.account != "acct_1") ++corrupt;
    ++seen[id];
  }
  [[nodiscard]] bool each_once(std::uint64_t n) const {
    if (seen.size() != n) return false;
    for (std::uint64_t id = 0; id < n; ++id) {
      const auto it = seen.find(id);
      if (it == seen.end() || it->second != 1) return false;
    }
    return true;
  }
};

// The first report: 100 threads one after another, each submitting once. With two
// registrations every one of them gets its own (the previous thread gave it back on exit).
TEST(IngestRing, AnExitingThreadGivesItsRegistrationToTheNextThread) {
  IngestConfig c = small_config(1u << 20);
  c.max_producers = 2;
  IngestRing ring(c);
  for (std::uint64_t i = 0; i < 100; ++i) {
    std::thread([&, i] {
      const IdRequest q(i);
      EXPECT_EQ(ring.try_submit(q.r), submit_result::ok);
    }).join();
  }
  // Both registrations are free again: two explicit ones can be taken.
  ring.make_producer();
  ring.make_producer();
  EXPECT_THROW(ring.make_producer(), std::length_error);
  IdChecker check;
  EXPECT_EQ(ring.drain(std::ref(check), 1000), 100u);
  EXPECT_TRUE(check.each_once(100));
  const IngestStats s = ring.stats();
  EXPECT_EQ(s.accepted, 100u);
  EXPECT_EQ(s.overflow_submits, 0u);
}

// 10,000 short-lived threads, each submitting one request while the consumer drains: every
// request accepted (with its own registration: at most 16 threads are alive at once) and
// drained exactly once.
TEST(IngestRing, TenThousandShortLivedThreadsAreAllAcceptedAndDrainedOnce) {
  IngestConfig c = small_config(8u << 20);  // holds all 10,000 even if the consumer stalls
  c.max_producers = 64;
  IngestRing ring(c);
  constexpr std::uint64_t k_threads = 10000;
  constexpr std::uint64_t k_wave = 16;
  std::atomic<bool> done{false};
  IdChecker check;
  std::thread consumer([&] {
    while (!done.load(std::memory_order_acquire))
      if (ring.drain(std::ref(check), 256) == 0) std::this_thread::yield();
  });
  std::atomic<std::uint64_t> not_ok{0};
  for (std::uint64_t base = 0; base < k_threads; base += k_wave) {
    std::thread wave[k_wave];
    for (std::uint64_t i = 0; i < k_wave; ++i) {
      wave[i] = std::thread([&, id = base + i] {
        const IdRequest q(id);
        if (ring.try_submit(q.r) != submit_result::ok) not_ok.fetch_add(1, std::memory_order_relaxed);
      });
    }
    for (auto& t : wave) t.join();
  }
  done.store(true, std::memory_order_release);
  consumer.join();
  while (ring.drain(std::ref(check), 4096) != 0) {
  }
  EXPECT_EQ(not_ok.load(std::memory_order_relaxed), 0u);
  EXPECT_EQ(check.corrupt, 0u);
  EXPECT_TRUE(check.each_once(k_threads));
  const IngestStats s = ring.stats();
  EXPECT_EQ(s.accepted, k_threads);
  EXPECT_EQ(s.drained, k_threads);
  EXPECT_EQ(s.overflow_submits, 0u);
  EXPECT_EQ(s.submitted(), s.drained + s.rejected_full + s.rejected_closed);
}

// 256 threads alive at once with 64 registrations: the 64 that register first use their own,
// the other 192 share the overflow registration; every request is accepted and drained once,
// and the overflow count is exact.
TEST(IngestRing, ThreadsBeyondMaxProducersShareTheOverflowRegistration) {
  IngestConfig c = small_config(8u << 20);
  c.max_producers = 64;
  IngestRing ring(c);
  constexpr std::uint64_t k_threads = 256;
  constexpr std::uint64_t k_each = 20;
  std::atomic<std::uint64_t> submitted_all{0};
  std::atomic<std::uint64_t> not_ok{0};
  std::vector<std::thread> threads;
  for (std::uint64_t t = 0; t < k_threads; ++t) {
    threads.emplace_back([&, t] {
      for (std::uint64_t i = 0; i < k_each; ++i) {
        const IdRequest q(t * k_each + i);
        if (ring.try_submit(q.r) != submit_result::ok) not_ok.fetch_add(1, std::memory_order_relaxed);
      }
      // Stay alive (holding any registration) until every thread has submitted.
      submitted_all.fetch_add(1, std::memory_order_acq_rel);
      while (submitted_all.load(std::memory_order_acquire) < k_threads) std::this_thread::yield();
    });
  }
  IdChecker check;
  while (submitted_all.load(std::memory_order_acquire) < k_threads)
    if (ring.drain(std::ref(check), 256) == 0) std::this_thread::yield();
  for (auto& t : threads) t.join();
  while (ring.drain(std::ref(check), 4096) != 0) {
  }
  EXPECT_EQ(not_ok.load(std::memory_order_relaxed), 0u);
  EXPECT_EQ(check.corrupt, 0u);
  EXPECT_TRUE(check.each_once(k_threads * k_each));
  const IngestStats s = ring.stats();
  EXPECT_EQ(s.accepted, k_threads * k_each);
  EXPECT_EQ(s.drained, k_threads * k_each);
  EXPECT_EQ(s.overflow_submits, (k_threads - 64) * k_each);
  EXPECT_EQ(s.submitted(), s.drained + s.rejected_full + s.rejected_closed);
}

// A thread that exits with its requests still queued: they stay in the ring and are drained,
// in order, after it is gone; the next thread reuses its registration and nothing is doubled.
TEST(IngestRing, RequestsOfAThreadThatExitedAreDrained) {
  IngestConfig c = small_config(1u << 20);
  c.max_producers = 1;
  IngestRing ring(c);
  std::thread([&] {
    for (std::uint64_t i = 0; i < 50; ++i) ASSERT_EQ(ring.try_submit(IdRequest(i).r), submit_result::ok);
  }).join();
  std::thread([&] {
    for (std::uint64_t i = 50; i < 80; ++i) ASSERT_EQ(ring.try_submit(IdRequest(i).r), submit_result::ok);
  }).join();
  std::vector<std::int64_t> order;
  IdChecker check;
  EXPECT_EQ(ring.drain(
                [&](const LlmRequest& r) {
                  order.push_back(r.input_tokens);
                  check(r);
                },
                1000),
            80u);
  EXPECT_TRUE(check.each_once(80));
  for (std::size_t i = 0; i < order.size(); ++i) EXPECT_EQ(order[i], static_cast<std::int64_t>(i));
  EXPECT_EQ(ring.stats().overflow_submits, 0u);
}

// A thread still holding a registration when its ring is destroyed gives it back to the
// ring's control block (kept alive by the thread's reference), not to freed memory; a new ring
// (maybe at the same address) gets a new registration.
TEST(IngestRing, AThreadThatOutlivesItsRingExitsCleanly) {
  std::atomic<int> step{0};
  auto ring = std::make_unique<IngestRing>(small_config());
  IngestRing* current = ring.get();
  std::atomic<IngestRing*> shared_ring{current};
  std::thread t([&] {
    EXPECT_EQ(shared_ring.load(std::memory_order_acquire)->try_submit(IdRequest(1).r), submit_result::ok);
    step.store(1, std::memory_order_release);
    while (step.load(std::memory_order_acquire) != 2) std::this_thread::yield();
    // The first ring is gone; this is a new one.
    EXPECT_EQ(shared_ring.load(std::memory_order_acquire)->try_submit(IdRequest(2).r), submit_result::ok);
  });
  while (step.load(std::memory_order_acquire) != 1) std::this_thread::yield();
  ring.reset();
  auto second = std::make_unique<IngestRing>(small_config());
  shared_ring.store(second.get(), std::memory_order_release);
  step.store(2, std::memory_order_release);
  t.join();
  IdChecker check;
  EXPECT_EQ(second->drain(std::ref(check), 10), 1u);
  EXPECT_EQ(check.seen.count(2), 1u);
  EXPECT_EQ(second->stats().overflow_submits, 0u);
}

// A submit from a thread_local destructor that runs after the ring's thread-exit hook (an
// object constructed before the thread's first submit is destroyed after it): accepted
// through the overflow registration, not a crash.
struct SubmitOnThreadExit {
  IngestRing* ring = nullptr;
  submit_result* result = nullptr;
  ~SubmitOnThreadExit() {
    if (ring != nullptr) *result = ring->try_submit(IdRequest(7).r);
  }
};
thread_local SubmitOnThreadExit t_submit_on_exit;

TEST(IngestRing, SubmitFromAThreadExitDestructorUsesTheOverflowRegistration) {
  IngestRing ring(small_config());
  submit_result late = submit_result::closed;
  std::thread([&] {
    t_submit_on_exit.ring = &ring;  // constructed first, so destroyed after the exit hook
    t_submit_on_exit.result = &late;
    EXPECT_EQ(ring.try_submit(IdRequest(6).r), submit_result::ok);
  }).join();
  EXPECT_EQ(late, submit_result::ok);
  IdChecker check;
  EXPECT_EQ(ring.drain(std::ref(check), 10), 2u);
  EXPECT_TRUE(check.seen.count(6) == 1 && check.seen.count(7) == 1);
  const IngestStats s = ring.stats();
  EXPECT_EQ(s.accepted, 2u);
  EXPECT_EQ(s.overflow_submits, 1u);
}

// Static destruction: the main thread's thread_local destructors have run by then; a submit
// from a static destructor still returns a result (in a child process, which must exit 0).
TEST(IngestRingDeathTest, SubmitDuringStaticDestructionReturnsAResult) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        static IngestRing ring(small_config());
        static IngestRing fresh(small_config());  // first submitted to from a static destructor
        struct AtExit {
          ~AtExit() {
            const submit_result r = ring.try_submit(IdRequest(1).r);
            const submit_result f = fresh.try_submit(IdRequest(2).r);
            std::fprintf(stderr, "static-destructor submit: %s %s accepted=%llu overflow=%llu\n",
                         r == submit_result::ok ? "ok" : "not ok", f == submit_result::ok ? "ok" : "not ok",
                         static_cast<unsigned long long>(ring.stats().accepted),
                         static_cast<unsigned long long>(ring.stats().overflow_submits));
          }
        };
        (void)ring.try_submit(IdRequest(0).r);  // registers the main thread
        static AtExit at_exit;                  // destroyed before the rings, after thread_locals
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "static-destructor submit: ok ok accepted=2 overflow=1");
}

// After close(), from any thread, registered or not: closed, counted.
TEST(IngestRing, SubmitAfterCloseFromANewThreadReturnsClosed) {
  IngestRing ring(small_config());
  ring.close();
  submit_result got = submit_result::ok;
  std::thread([&] { got = ring.try_submit(IdRequest(1).r); }).join();
  EXPECT_EQ(got, submit_result::closed);
  EXPECT_EQ(ring.try_submit(IdRequest(2).r), submit_result::closed);
  EXPECT_EQ(ring.stats().rejected_closed, 2u);
  EXPECT_EQ(ring.drain([](const LlmRequest&) {}, 10), 0u);
}

// --- large records ---------------------------------------------------------------------------

// Canonical requests and 100 KB prompts from several threads through a 4 MiB ring (it wraps
// several times and fills up: producers retry on full): every prompt arrives whole and
// byte-exact, and the queued bytes never exceed the ring.
TEST(IngestRing, MixedCanonicalAndLargePromptsArriveWholeAndByteExact) {
  IngestConfig c = small_config(4u << 20);
  IngestRing ring(c);
  constexpr int k_threads = 4;
  constexpr std::uint64_t k_each = 120;
  auto prompt_byte = [](std::uint64_t id, std::size_t i) { return static_cast<char>('!' + (id * 31 + i * 7) % 90); };
  auto prompt_size = [](std::uint64_t id) -> std::size_t { return id % 2 == 0 ? 0 : 100 * 1000 + id % 977; };
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < k_threads; ++t) {
    threads.emplace_back([&, t] {
      std::string prompt;
      for (std::uint64_t i = 0; i < k_each; ++i) {
        const std::uint64_t id = static_cast<std::uint64_t>(t) * k_each + i;
        IdRequest q(id);
        q.r.metadata = k_meta;
        prompt.resize(prompt_size(id));
        for (std::size_t b = 0; b < prompt.size(); ++b) prompt[b] = prompt_byte(id, b);
        q.r.prompt = prompt;
        while (ring.try_submit(q.r) == submit_result::full) std::this_thread::yield();
      }
      done.fetch_add(1, std::memory_order_acq_rel);
    });
  }
  IdChecker check;
  std::uint64_t bad_prompts = 0;
  std::uint64_t large = 0;
  std::size_t max_queued = 0;
  auto handle = [&](const LlmRequest& r) {
    check(r);
    const auto id = static_cast<std::uint64_t>(r.input_tokens);
    bool ok = r.prompt.size() == prompt_size(id) && r.metadata.size() == 2 &&
              r.metadata[1].value.as_string() == "Analysis Pipeline";
    for (std::size_t b = 0; ok && b < r.prompt.size(); ++b) ok = r.prompt[b] == prompt_byte(id, b);
    bad_prompts += !ok;
    large += !r.prompt.empty();
  };
  while (done.load(std::memory_order_acquire) < k_threads) {
    max_queued = std::max(max_queued, ring.bytes_queued_guess());
    if (ring.drain(handle, 8) == 0) std::this_thread::yield();
  }
  for (auto& t : threads) t.join();
  while (ring.drain(handle, 1024) != 0) {
  }
  EXPECT_EQ(bad_prompts, 0u);
  EXPECT_EQ(check.corrupt, 0u);
  EXPECT_TRUE(check.each_once(k_threads * k_each));
  EXPECT_EQ(large, k_threads * k_each / 2);
  EXPECT_LE(max_queued, ring.ring_bytes());
  const IngestStats s = ring.stats();
  EXPECT_EQ(s.accepted, k_threads * k_each);
  EXPECT_EQ(s.truncated_values, 0u);
  EXPECT_EQ(s.submitted(), s.drained + s.rejected_full + s.rejected_closed);
}

}  // namespace
}  // namespace tracecast
