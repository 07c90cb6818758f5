// Tests of the load-generation library (tools/loadgen): the fan-out plan follows
// WORKLOAD.md, histograms report quantiles within a bucket, argument parsing, the sink's
// /stats parser, and producers that submit exactly what they count.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>

#include "latency_histogram.h"
#include "loss_check.h"
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

TEST(ParseAccountSkew, AcceptsUniformAndZipfWithAPositiveExponent) {
  AccountSkew s;
  ASSERT_TRUE(parse_account_skew("zipf:1.1", s));
  EXPECT_EQ(s.kind, AccountSkew::Kind::zipf);
  EXPECT_DOUBLE_EQ(s.exponent, 1.1);
  EXPECT_EQ(to_string(s), "zipf:1.1");
  ASSERT_TRUE(parse_account_skew("uniform", s));
  EXPECT_EQ(s.kind, AccountSkew::Kind::uniform);
  EXPECT_EQ(to_string(s), "uniform");
  EXPECT_FALSE(parse_account_skew("zipf:0", s));
  EXPECT_FALSE(parse_account_skew("zipf:", s));
  EXPECT_FALSE(parse_account_skew("zipf:-1", s));
  EXPECT_FALSE(parse_account_skew("zipf:1.1x", s));
  EXPECT_FALSE(parse_account_skew("pareto:2", s));
}

// Counts of `draws` samples per account, from a fixed seed.
std::vector<std::uint64_t> draw_counts(const AccountSampler& sampler, std::size_t draws, std::uint64_t seed) {
  std::vector<std::uint64_t> counts(sampler.accounts());
  SplitMix64 rng(seed);
  for (std::size_t i = 0; i < draws; ++i) {
    const std::size_t k = sampler.sample(rng.next());
    EXPECT_LT(k, counts.size());
    if (k < counts.size()) ++counts[k];
  }
  return counts;
}

TEST(AccountSampler, ZipfTopAccountShareMatchesTheAnalyticValue) {
  const AccountSampler sampler(1000, AccountSkew{AccountSkew::Kind::zipf, 1.1});
  // P(rank 1) = 1 / H(1000, 1.1), H the generalised harmonic number, computed independently
  // of the sampler's table.
  double h = 0;
  for (int k = 1; k <= 1000; ++k) h += 1.0 / std::pow(k, 1.1);
  const double expected_top = 1.0 / h;  // ~0.1795 (H(1000, 1.1) ~ 5.57)
  EXPECT_NEAR(sampler.probability(0), expected_top, 1e-12);
  constexpr std::size_t n = 1'000'000;
  const auto counts = draw_counts(sampler, n, 42);
  // Binomial standard deviation of the top share at 1M draws is ~0.00038: 5 sigma.
  EXPECT_NEAR(static_cast<double>(counts[0]) / n, expected_top, 0.002);
  // Ranks 2 and 10 follow k^-1.1 relative to rank 1.
  EXPECT_NEAR(static_cast<double>(counts[1]) / static_cast<double>(counts[0]), std::pow(2.0, -1.1), 0.02);
  EXPECT_NEAR(static_cast<double>(counts[9]) / static_cast<double>(counts[0]), std::pow(10.0, -1.1), 0.01);
  // A long tail: the bottom half of the accounts still gets a few percent of the traffic.
  double tail = 0;
  for (int k = 501; k <= 1000; ++k) tail += 1.0 / std::pow(k, 1.1) / h;
  std::uint64_t tail_count = 0;
  for (std::size_t k = 500; k < 1000; ++k) tail_count += counts[k];
  EXPECT_NEAR(static_cast<double>(tail_count) / n, tail, 0.002);
  EXPECT_GT(tail, 0.02);
}

TEST(AccountSampler, ProbabilitiesSumToOneAndDecreaseWithRank) {
  const AccountSampler sampler(100000, AccountSkew{AccountSkew::Kind::zipf, 1.1});
  double sum = 0;
  for (std::size_t k = 0; k < sampler.accounts(); ++k) {
    sum += sampler.probability(k);
    if (k > 0) {
      ASSERT_LE(sampler.probability(k), sampler.probability(k - 1)) << k;
    }
  }
  EXPECT_NEAR(sum, 1.0, 1e-9);
  EXPECT_EQ(sampler.probability(sampler.accounts()), 0.0);
}

TEST(AccountSampler, UniformIsRoughlyFlat) {
  const AccountSampler sampler(1000, AccountSkew{});
  EXPECT_DOUBLE_EQ(sampler.probability(999), 0.001);
  constexpr std::size_t n = 1'000'000;
  const auto counts = draw_counts(sampler, n, 7);
  // 1000 expected per account, sd ~31.6: every account within 6 sd, none empty.
  const auto [lo, hi] = std::minmax_element(counts.begin(), counts.end());
  EXPECT_GT(*lo, 1000u - 190u);
  EXPECT_LT(*hi, 1000u + 190u);
  // Chi-square over 999 degrees of freedom: mean 999, sd ~44.7; 6 sd.
  double chi2 = 0;
  for (const std::uint64_t c : counts) chi2 += (static_cast<double>(c) - 1000.0) * (static_cast<double>(c) - 1000.0) / 1000.0;
  EXPECT_LT(chi2, 999 + 6 * 44.7);
}

TEST(AccountSampler, ExtremeRandomBitsStayInRange) {
  for (const AccountSkew skew : {AccountSkew{}, AccountSkew{AccountSkew::Kind::zipf, 1.1}}) {
    const AccountSampler sampler(37, skew);
    EXPECT_EQ(sampler.sample(0), 0u);
    EXPECT_EQ(sampler.sample(~std::uint64_t{0}), 36u) << to_string(skew);
    const AccountSampler one(1, skew);
    EXPECT_EQ(one.sample(~std::uint64_t{0}), 0u);
  }
}

TEST(AccountSampler, IsDeterministicForASeed) {
  const AccountSampler sampler(1000, AccountSkew{AccountSkew::Kind::zipf, 1.1});
  EXPECT_EQ(draw_counts(sampler, 10000, 3), draw_counts(sampler, 10000, 3));
  EXPECT_NE(draw_counts(sampler, 10000, 3), draw_counts(sampler, 10000, 4));
}

TEST(FaultFlags, NamesTheSinkFlagsThatInjectFaultsAndNoOthers) {
  EXPECT_EQ(fault_flags(split_args("--fail-503-fraction 0.5 --threads 4 --delay-ms=20 --count-only")),
            (std::vector<std::string>{"--fail-503-fraction", "--delay-ms"}));
  EXPECT_EQ(fault_flags(split_args("--reset-first 3 --partial-success 2 --basic-auth u:p")),
            (std::vector<std::string>{"--reset-first", "--partial-success", "--basic-auth"}));
  EXPECT_TRUE(fault_flags(split_args("--count-by user.id --spans-out /tmp/x --threads 2")).empty());
  EXPECT_TRUE(fault_flags({}).empty());
}

TEST(ShrunkBudgets, ListsOnlySettingsBelowTheirDefaults) {
  const std::chrono::milliseconds drain{30000};
  PipelineConfig c;
  EXPECT_TRUE(shrunk_budgets(c, drain, drain).empty());
  c.memory_budget_bytes *= 2;  // larger is not shrinking
  c.ingest.ring_bytes = 1u << 20;
  c.destination_budget_bytes = 1u << 20;
  const auto shrunk = shrunk_budgets(c, std::chrono::milliseconds(1000), drain);
  ASSERT_EQ(shrunk.size(), 3u);
  EXPECT_EQ(shrunk[0], "destination_budget_bytes 1048576 < default 33554432");
  EXPECT_EQ(shrunk[1], "ingest.ring_bytes 1048576 < default 33554432");
  EXPECT_EQ(shrunk[2], "--drain-timeout 1000 ms < default 30000 ms");
}

TEST(CheckNoLoss, FailsOnBackpressureAndNamesEveryCountedReason) {
  PipelineStats s;
  s.total.dropped[static_cast<std::size_t>(DropReason::backpressure)] = 1200;
  s.total.dropped[static_cast<std::size_t>(DropReason::shutdown)] = 34;
  s.total.dropped[static_cast<std::size_t>(DropReason::sampled_out)] = 999;
  const LossVerdict v = check_no_loss(s, true, "");
  EXPECT_TRUE(v.applicable);
  EXPECT_EQ(v.lost_spans, 1234u);
  EXPECT_EQ(v.failure, "no loss: 1234 spans dropped (backpressure 1200, shutdown 34) with a healthy sink and default budgets");
}

TEST(CheckNoLoss, NeverCountsSampledOut) {
  PipelineStats s;
  s.total.dropped[static_cast<std::size_t>(DropReason::sampled_out)] = 5000;
  const LossVerdict v = check_no_loss(s, true, "");
  EXPECT_TRUE(v.applicable);
  EXPECT_TRUE(v.failure.empty());
  EXPECT_FALSE(drop_counts_as_loss(DropReason::sampled_out));
  for (std::size_t r = 0; r < k_drop_reasons; ++r) {
    const auto reason = static_cast<DropReason>(r);
    if (reason != DropReason::sampled_out) {
      EXPECT_TRUE(drop_counts_as_loss(reason)) << to_string(reason);
    }
  }
}

TEST(CheckNoLoss, CountsARingFullOnlyAtATargetRate) {
  PipelineStats s;
  s.ingest.rejected_full = 50;
  EXPECT_TRUE(check_no_loss(s, false, "").failure.empty());
  const LossVerdict v = check_no_loss(s, true, "");
  EXPECT_EQ(v.lost_requests, 50u);
  EXPECT_NE(v.failure.find("50 requests refused by a full ingest ring"), std::string::npos) << v.failure;
}

TEST(CheckNoLoss, DoesNotApplyWithAReason) {
  PipelineStats s;
  s.total.dropped[static_cast<std::size_t>(DropReason::retries_exhausted)] = 10;
  const LossVerdict v = check_no_loss(s, true, "faults injected (--fail-503-fraction)");
  EXPECT_FALSE(v.applicable);
  EXPECT_TRUE(v.failure.empty());
  EXPECT_EQ(v.not_applicable_because, "faults injected (--fail-503-fraction)");
}

TEST(CheckDelivered, FailsWhenARealEndpointGotNothingAndNamesTheReason) {
  PipelineStats s;
  s.total.submitted = 200;
  s.total.dropped[static_cast<std::size_t>(DropReason::blocked)] = 200;
  const LossVerdict v = check_delivered(s, false);
  EXPECT_TRUE(v.applicable);
  EXPECT_EQ(v.lost_spans, 200u);
  EXPECT_EQ(v.failure.rfind("delivery: 200 of 200 spans never reached the endpoint (dropped: blocked 200); ", 0), 0u)
      << v.failure;
  EXPECT_NE(v.failure.find("--egress-allow"), std::string::npos) << v.failure;
}

TEST(CheckDelivered, PassesWhenOnlySampledOutSpansWereDropped) {
  PipelineStats s;
  s.total.submitted = 100;
  s.total.delivered = 60;
  s.total.dropped[static_cast<std::size_t>(DropReason::sampled_out)] = 40;
  EXPECT_TRUE(check_delivered(s, true).failure.empty());
  s.total.dropped[static_cast<std::size_t>(DropReason::shutdown)] = 1;
  EXPECT_EQ(check_delivered(s, true).failure, "delivery: 1 of 100 spans never reached the endpoint (dropped: shutdown 1)");
}

// A run that delivered nothing never passes: injected faults (every request 400) once left
// every check "not applicable" and exit 0.
TEST(CheckReached, FailsWhenSpansWereSubmittedButNoneDeliveredAndNamesTheReasons) {
  PipelineStats s;
  s.ingest.accepted = 50;
  s.total.submitted = 100;
  s.total.dropped[static_cast<std::size_t>(DropReason::rejected)] = 90;
  s.total.dropped[static_cast<std::size_t>(DropReason::sampled_out)] = 10;
  EXPECT_EQ(check_reached(s).failure, "nothing delivered: 100 spans submitted to destinations, 0 delivered (dropped: rejected 90)");
  s.total.delivered = 1;
  EXPECT_TRUE(check_reached(s).failure.empty());
  EXPECT_TRUE(check_reached(s).note.empty());
}

TEST(CheckReached, PassesWithANoteWhenEverySpanWasSampledOut) {
  PipelineStats s;
  s.ingest.accepted = 5;
  s.total.submitted = 5;
  s.total.dropped[static_cast<std::size_t>(DropReason::sampled_out)] = 5;
  const ReachVerdict v = check_reached(s);
  EXPECT_TRUE(v.failure.empty());
  EXPECT_EQ(v.note.rfind("every one of 5 spans was sampled out", 0), 0u) << v.note;
}

// Disabled destinations or api_key_ids that match nothing are named as such, not blamed on
// the accounts (the requests were routed; their spans were filtered).
TEST(CheckReached, NamesFilteringOrUnroutedAccountsAsTheReasonNothingWasSubmitted) {
  PipelineStats s;
  s.ingest.accepted = 40;
  s.total.filtered = 80;
  std::string f = check_reached(s).failure;
  EXPECT_EQ(f.rfind("reached nothing: none of 40 requests put a span on a destination (80 spans filtered: ", 0), 0u) << f;
  EXPECT_NE(f.find("api_key_ids"), std::string::npos) << f;
  EXPECT_EQ(f.find("account must"), std::string::npos) << f;
  s.total.filtered = 0;
  s.requests_unrouted = 40;
  f = check_reached(s).failure;
  EXPECT_EQ(f.rfind("reached nothing: none of 40 requests was routed to a destination (40 unrouted: ", 0), 0u) << f;
  EXPECT_EQ(f.find("filtered"), std::string::npos) << f;
  EXPECT_TRUE(check_reached(PipelineStats{}).failure.empty());  // nothing accepted: nothing to judge
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

TEST(ParseCount, RefusesValuesThatOverflowInsteadOfWrapping) {
  std::uint64_t n = 7;
  // 18446744073709552 * 1000 wraps to 384 in 64 bits: it must be refused, not read as 384.
  EXPECT_FALSE(parse_count("18446744073709552k", n));
  EXPECT_FALSE(parse_count("18446744073709552M", n));
  // Twenty digits: above UINT64_MAX, not clamped to it.
  EXPECT_FALSE(parse_count("99999999999999999999", n));
  EXPECT_EQ(n, 7u) << "a refused value must not be stored";
  ASSERT_TRUE(parse_count("18446744073709551615", n));
  EXPECT_EQ(n, UINT64_MAX);
  ASSERT_TRUE(parse_count("18446744073709551k", n));
  EXPECT_EQ(n, 18446744073709551000u);
  // strtoull would negate " -5" into a huge value; blanks and signs are not counts.
  EXPECT_FALSE(parse_count(" -5", n));
  EXPECT_FALSE(parse_count("+5", n));
  EXPECT_FALSE(parse_count(" 5", n));
  EXPECT_FALSE(parse_count("k", n));
}

TEST(ParseCountIn, NamesTheValueAndTheLimitsWhenOutOfRange) {
  std::uint64_t n = 7;
  EXPECT_EQ(parse_count_in("18446744073709552k", 1, 1000, n), "18446744073709552k is out of range (expects 1..1000)");
  EXPECT_EQ(parse_count_in("99999999999999999999", 1, UINT64_MAX, n),
            "99999999999999999999 is out of range (expects 1..18446744073709551615)");
  EXPECT_EQ(parse_count_in("1001", 1, 1000, n), "1001 is out of range (expects 1..1000)");
  EXPECT_EQ(parse_count_in("0", 1, 1000, n), "0 is out of range (expects 1..1000)");
  EXPECT_EQ(n, 7u);
  EXPECT_NE(parse_count_in("ten", 1, 1000, n).find("is not a count"), std::string::npos);
  EXPECT_EQ(parse_count_in("1k", 1, 1000, n), "");
  EXPECT_EQ(n, 1000u);
}

TEST(ParseDuration, RefusesOverflowingAndOutOfRangeValues) {
  std::chrono::milliseconds ms{7};
  EXPECT_FALSE(parse_duration("1e400s", ms));
  EXPECT_FALSE(parse_duration("99999999999999999999999h", ms));
  EXPECT_FALSE(parse_duration("0.5ms", ms));
  EXPECT_FALSE(parse_duration("0s", ms));
  EXPECT_FALSE(parse_duration("infs", ms));
  EXPECT_FALSE(parse_duration(" 5s", ms));
  EXPECT_EQ(ms.count(), 7);
  ASSERT_TRUE(parse_duration("1h", ms));
  EXPECT_EQ(ms.count(), 3600000);
  const std::chrono::milliseconds max{720LL * 3600 * 1000};
  EXPECT_EQ(parse_duration_in("721h", std::chrono::milliseconds(1), max, ms), "721h is out of range (expects 1 ms..720 h)");
  EXPECT_EQ(parse_duration_in("1e400s", std::chrono::milliseconds(1), max, ms),
            "1e400s is out of range (expects 1 ms..720 h)");
  EXPECT_NE(parse_duration_in("5 parsecs", std::chrono::milliseconds(1), max, ms).find("is not a duration"),
            std::string::npos);
  EXPECT_EQ(parse_duration_in("720h", std::chrono::milliseconds(1), max, ms), "");
  EXPECT_EQ(ms, max);
}

TEST(ParseNumberIn, RefusesOverflowAndValuesOutsideTheLimits) {
  double d = 7;
  EXPECT_EQ(parse_number_in("1e400", 0, 1e9, d), "1e400 is out of range (expects 0..1e+09)");
  EXPECT_EQ(parse_number_in("2", 0.0001, 1, d), "2 is out of range (expects 0.0001..1)");
  EXPECT_NE(parse_number_in("inf", 0, 1e9, d), "");
  EXPECT_NE(parse_number_in("nan", 0, 1e9, d), "");
  EXPECT_NE(parse_number_in("-1", 0, 1e9, d), "");
  EXPECT_EQ(d, 7);
  EXPECT_EQ(parse_number_in("0.5", 0.0001, 1, d), "");
  EXPECT_EQ(d, 0.5);
}

TEST(SplitArgs, SplitsOnBlanksAndKeepsQuotedTextTogether) {
  EXPECT_EQ(split_args("  --fail-503-fraction 0.1   --delay-ms 5 "),
            (std::vector<std::string>{"--fail-503-fraction", "0.1", "--delay-ms", "5"}));
  EXPECT_EQ(split_args("--basic-auth 'a b:c' \"x y\""), (std::vector<std::string>{"--basic-auth", "a b:c", "x y"}));
  EXPECT_TRUE(split_args("").empty());
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

TEST(ThreadQuota, SharesAddUpToTheCountAndZeroMeansUnlimited) {
  EXPECT_EQ(thread_quota(0, 4, 0), k_unlimited);
  EXPECT_EQ(thread_quota(0, 1, 0), k_unlimited);
  // count < threads: one request each for the first `count` threads, none for the others
  // (a share of 0 used to mean "unlimited": --count 1 never stopped).
  EXPECT_EQ(thread_quota(1, 4, 0), 1u);
  for (unsigned i = 1; i < 4; ++i) EXPECT_EQ(thread_quota(1, 4, i), 0u) << i;
  for (const std::uint64_t count : {1ull, 2ull, 3ull, 7ull, 10001ull, 1000000ull}) {
    for (const unsigned threads : {1u, 2u, 3u, 8u, 1000u}) {
      std::uint64_t sum = 0, lo = k_unlimited, hi = 0;
      for (unsigned i = 0; i < threads; ++i) {
        const std::uint64_t q = thread_quota(count, threads, i);
        sum += q;
        lo = std::min(lo, q);
        hi = std::max(hi, q);
      }
      EXPECT_EQ(sum, count) << count << " over " << threads;
      EXPECT_LE(hi - lo, 1u) << count << " over " << threads;
    }
  }
}

// Every count that is smaller than the thread count, flat out and at a rate: exactly `count`
// requests, and the group finishes on its own (no request_stop()).
TEST(ProducerGroup, ACountBelowTheThreadCountStopsAtTheCount) {
  for (const double rate : {0.0, 1000.0}) {
    for (const std::uint64_t count : {1ull, 2ull, 3ull}) {
      ProducerOptions o;
      o.threads = 4;
      o.rate = rate;
      o.count = count;
      ProducerGroup g(nullptr, o);
      g.start();
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
      while (!g.finished() && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      EXPECT_TRUE(g.finished()) << "count " << count << " rate " << rate;
      g.join();
      EXPECT_EQ(g.totals().attempted, count) << "rate " << rate;
    }
  }
}

// A duration: every thread stops on its own once it has passed, with no request_stop()
// (tracecast-load's monitoring loop may be busy with a long snapshot when it ends). No
// timing assertion: a thread that ignored it would run until the 10 s wait gives up.
TEST(ProducerGroup, ADurationStopsTheThreadsWithoutRequestStop) {
  ProducerOptions o;
  o.threads = 3;
  o.rate = 3000;
  o.duration = std::chrono::milliseconds(200);
  ProducerGroup g(nullptr, o);
  const auto before = std::chrono::steady_clock::now();
  g.start();
  for (int i = 0; i < 1000 && !g.finished(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_TRUE(g.finished()) << "still running 10 s after a 200 ms duration";
  EXPECT_GT(g.totals().attempted, 0u);
  // The load's end as tracecast-load reports it: not before the duration ran out.
  EXPECT_GE(g.finished_at() - before, std::chrono::milliseconds(200));
  EXPECT_LE(g.finished_at(), std::chrono::steady_clock::now());
  g.join();
}

// A duration without a count: the threads run until request_stop() (what tracecast-load
// calls at the end of --duration), then every one stops.
TEST(ProducerGroup, WithoutACountRunsUntilStopped) {
  ProducerOptions o;
  o.threads = 3;
  o.rate = 3000;
  o.count = 0;
  ProducerGroup g(nullptr, o);
  g.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(g.finished());
  g.request_stop();
  g.join();
  EXPECT_TRUE(g.finished());
  EXPECT_GT(g.totals().attempted, 0u);
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

TEST(ProducerGroup, ZipfSkewSendsTheTopAccountItsAnalyticShare) {
  PipelineConfig config;
  config.ingest.ring_bytes = 256u << 20;  // room for more than o.count: no request refused for a full ring
  Pipeline pipeline(config);
  // Routing counts a span as submitted to the destination whatever becomes of it: the
  // endpoint (discard port, nothing listens) need not answer.
  PipelineDestination d;
  d.transport.kind = DestinationKind::otlp_http;
  d.transport.endpoint = "http://127.0.0.1:9/v1/traces";
  d.transport.name = "top";
  const std::vector<std::pair<std::string, PipelineDestination>> dests = {{"acct_0", d}};
  ASSERT_TRUE(pipeline.add_destinations(dests).at(0).ok());
  ProducerOptions o;
  o.threads = 2;
  o.rate = 0;
  o.count = 20000;
  o.accounts = 1000;
  o.skew = AccountSkew{AccountSkew::Kind::zipf, 1.1};
  ProducerGroup g(&pipeline, o);
  g.start();
  g.join();
  ASSERT_EQ(g.totals().ok, 20000u);
  const DrainResult done = pipeline.shutdown(std::chrono::steady_clock::now() + std::chrono::milliseconds(200));
  EXPECT_EQ(done.stats.requests_routed + done.stats.requests_unrouted, 20000u);
  // P(acct_0) = 1 / H(1000, 1.1) ~ 0.1795: ~3590 of 20000, sd ~54; 5 sd. Uniform would give 20.
  const AccountSampler sampler(1000, o.skew);
  EXPECT_NEAR(static_cast<double>(done.stats.requests_routed), 20000 * sampler.probability(0), 260);
  EXPECT_EQ(done.stats.total.submitted, done.stats.requests_routed);
}

}  // namespace
}  // namespace tracecast::load
