// Tests of the load simulator's support library (tools/load): the fan-out plan follows
// WORKLOAD.md, histograms report quantiles within a bucket, argument parsing, the sink's
// /stats parser, and producers that submit exactly what they count.
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "latency_histogram.h"
#include "producers.h"
#include "sink_runner.h"
#include "topology.h"
#include "tracecast/pipeline.h"

namespace tracecast::load {
namespace {

TEST(PlanFanout, GivesOneToThreeDestinationsPerAccountWithMeanOnePointFive) {
  const auto plan = plan_fanout(100, "gzip");
  EXPECT_EQ(plan.size(), 150u);
  std::map<std::string, int> per_account;
  for (const auto& d : plan) ++per_account[d.account];
  EXPECT_EQ(per_account.size(), 100u);
  for (const auto& [account, n] : per_account) {
    EXPECT_GE(n, 1) << account;
    EXPECT_LE(n, 3) << account;
  }
}

TEST(PlanFanout, PutsOneDestinationInFiveInPrivacyMode) {
  const auto plan = plan_fanout(100, "zstd");
  std::size_t privacy = 0;
  for (const auto& d : plan) privacy += d.privacy_mode ? 1 : 0;
  EXPECT_EQ(privacy, plan.size() / 5);
}

TEST(PlanFanout, GivesAnAccountsDestinationsDistinctCodecsStartingWithTheChosenOne) {
  const auto plan = plan_fanout(10, "none");
  std::map<std::string, std::vector<std::string>> codecs;
  std::set<std::string> names;
  for (const auto& d : plan) {
    codecs[d.account].push_back(d.compression);
    EXPECT_TRUE(names.insert(d.name).second) << "duplicate name " << d.name;
  }
  for (const auto& [account, list] : codecs) {
    EXPECT_EQ(list.front(), "none") << account;
    EXPECT_EQ(std::set<std::string>(list.begin(), list.end()).size(), list.size()) << account;
  }
  EXPECT_EQ(codecs["acct_9"], (std::vector<std::string>{"none", "gzip", "zstd"}));
}

TEST(PlanSingle, IsOneDestinationForEveryAccount) {
  const auto plan = plan_single("zstd");
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].account, "");
  EXPECT_EQ(plan[0].compression, "zstd");
}

TEST(LatencyHistogram, QuantilesFallWithinOneBucketWidthOfTheExactValue) {
  std::mt19937_64 rng(7);
  std::vector<std::uint64_t> values;
  LatencyHistogram h;
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t v = 1 + rng() % 1'000'000;
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  HistogramCounts c;
  h.add_to(c);
  ASSERT_EQ(c.total, values.size());
  for (const double q : {0.5, 0.9, 0.99, 0.999}) {
    const double exact = static_cast<double>(values[static_cast<std::size_t>(q * static_cast<double>(values.size())) - 1]);
    EXPECT_NEAR(c.quantile(q), exact, exact / 16 + 1) << "q=" << q;
  }
}

TEST(LatencyHistogram, BucketsAreMonotonicAndCoverEveryValue) {
  std::size_t prev = 0;
  for (std::uint64_t v = 0; v < 100000; ++v) {
    const std::size_t b = histogram_bucket(v);
    ASSERT_GE(b, prev);
    ASSERT_LT(b, k_histogram_buckets);
    prev = b;
  }
  EXPECT_LT(histogram_bucket(~std::uint64_t{0}), k_histogram_buckets);
}

TEST(HistogramCounts, MinusGivesTheCountsRecordedBetweenSnapshots) {
  LatencyHistogram h;
  for (int i = 0; i < 10; ++i) h.record(100);
  HistogramCounts first;
  h.add_to(first);
  for (int i = 0; i < 5; ++i) h.record(5000);
  HistogramCounts second;
  h.add_to(second);
  const HistogramCounts diff = second.minus(first);
  EXPECT_EQ(diff.total, 5u);
  EXPECT_NEAR(diff.quantile(0.5), 5000, 5000.0 / 16);
}

TEST(ParseDuration, AcceptsSecondsMillisecondsAndMinutes) {
  std::chrono::milliseconds ms{};
  ASSERT_TRUE(parse_duration("20s", ms));
  EXPECT_EQ(ms.count(), 20000);
  ASSERT_TRUE(parse_duration("1500ms", ms));
  EXPECT_EQ(ms.count(), 1500);
  ASSERT_TRUE(parse_duration("2m", ms));
  EXPECT_EQ(ms.count(), 120000);
  ASSERT_TRUE(parse_duration("3", ms));
  EXPECT_EQ(ms.count(), 3000);
  EXPECT_FALSE(parse_duration("", ms));
  EXPECT_FALSE(parse_duration("-1s", ms));
  EXPECT_FALSE(parse_duration("5 parsecs", ms));
}

TEST(ParseCount, AcceptsThousandAndMillionSuffixes) {
  std::uint64_t n = 0;
  ASSERT_TRUE(parse_count("50k", n));
  EXPECT_EQ(n, 50000u);
  ASSERT_TRUE(parse_count("2M", n));
  EXPECT_EQ(n, 2000000u);
  EXPECT_FALSE(parse_count("-3", n));
  EXPECT_FALSE(parse_count("12x", n));
}

TEST(SplitArgs, SplitsOnBlanksAndKeepsQuotedTextTogether) {
  EXPECT_EQ(split_args("  --fail-503-fraction 0.1   --delay-ms 5 "),
            (std::vector<std::string>{"--fail-503-fraction", "0.1", "--delay-ms", "5"}));
  EXPECT_EQ(split_args("--basic-auth 'a b:c' \"x y\""), (std::vector<std::string>{"--basic-auth", "a b:c", "x y"}));
  EXPECT_TRUE(split_args("").empty());
}

TEST(DisplayUrl, LeavesOutUserInfoAndQuery) {
  EXPECT_EQ(display_url("https://user:secret@host:4318/v1/traces?token=abc"), "https://host:4318/v1/traces");
  EXPECT_EQ(display_url("http://127.0.0.1:4318/v1/traces"), "http://127.0.0.1:4318/v1/traces");
}

TEST(ParseSinkCounters, ReadsTheCountersTheChecksUse) {
  SinkCounters c;
  std::string error;
  ASSERT_TRUE(parse_sink_counters(
      R"({"requests":3,"spans":1500,"bytes_wire":10,"bytes_decompressed":20,"connections":1,"trace_connections":1,
          "invalid":0,"resets":2,"delayed":0,"rejected_spans":7,"status_counts":{"200":3,"503":1},"by_service":{},
          "by_attribute":{},"last_invalid_reason":"","count_only":false})",
      c, error))
      << error;
  EXPECT_EQ(c.requests, 3u);
  EXPECT_EQ(c.spans, 1500u);
  EXPECT_EQ(c.rejected_spans, 7u);
  EXPECT_EQ(c.resets, 2u);
  EXPECT_EQ(c.status_counts[503], 1u);
  EXPECT_FALSE(c.count_only);
}

TEST(ParseSinkCounters, RejectsADocumentWithoutSpans) {
  SinkCounters c;
  std::string error;
  EXPECT_FALSE(parse_sink_counters(R"({"requests":3})", c, error));
  EXPECT_NE(error.find("spans"), std::string::npos);
  EXPECT_FALSE(parse_sink_counters("not json", c, error));
}

TEST(ProducerGroup, MakesExactlyTheRequestedCountSplitOverThreads) {
  ProducerOptions o;
  o.threads = 3;
  o.rate = 0;
  o.count = 10001;
  ProducerGroup g(nullptr, o);
  g.start();
  g.join();
  EXPECT_TRUE(g.finished());
  const ProducerTotals t = g.totals();
  EXPECT_EQ(t.attempted, 10001u);
  EXPECT_EQ(t.ok, 10001u);
  HistogramCounts lat;
  g.latency(lat);
  EXPECT_EQ(lat.total, 10001u);
}

TEST(ProducerGroup, EveryRequestItSubmitsIsAccountedByThePipeline) {
  PipelineConfig config;
  config.ingest.ring_bytes = 32u << 20;  // 5000 requests of up to ~3 KiB fit: none refused for a full ring
  Pipeline pipeline(config);
  ProducerOptions o;
  o.threads = 2;
  o.rate = 0;
  o.count = 5000;
  o.accounts = 37;  // remapped account names
  ProducerGroup g(&pipeline, o);
  g.start();
  // Report concurrently, as tracecast-load does, while the threads run.
  while (!g.finished()) {
    (void)g.totals();
    HistogramCounts lat;
    g.latency(lat);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  g.join();
  const ProducerTotals t = g.totals();
  EXPECT_EQ(t.attempted, 5000u);
  const DrainResult done = pipeline.shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(10));
  EXPECT_EQ(done.stats.ingest.accepted, t.ok);
  EXPECT_EQ(done.stats.ingest.rejected_full, t.full);
  EXPECT_EQ(t.ok + t.full, 5000u);
  // No destination: every accepted request is drained and counted as unrouted.
  EXPECT_EQ(done.stats.requests_unrouted + done.stats.requests_routed, t.ok);
}

}  // namespace
}  // namespace tracecast::load
