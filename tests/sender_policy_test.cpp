// The retry rules (transport/src/retry_policy.h): which statuses and curl errors are retried,
// backoff bounds with full jitter, partialSuccess parsing.
#include <curl/curl.h>
#include <gtest/gtest.h>

#include "retry_policy.h"

namespace tracecast::detail {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(RetryPolicy, RetriesOnly429And502And503And504) {
  for (int s : {429, 502, 503, 504}) EXPECT_TRUE(is_retryable_status(s)) << s;
  for (int s : {200, 400, 401, 403, 404, 408, 413, 500, 501, 505}) EXPECT_FALSE(is_retryable_status(s)) << s;
}

TEST(RetryPolicy, Only429OrA503WithRetryAfterHoldsBackTheWholeDestination) {
  EXPECT_TRUE(throttles_destination(429, false));
  EXPECT_TRUE(throttles_destination(429, true));
  EXPECT_TRUE(throttles_destination(503, true));
  EXPECT_FALSE(throttles_destination(503, false)) << "a bare 503 backs off that request only";
  for (int s : {502, 504}) {
    EXPECT_FALSE(throttles_destination(s, false)) << s;
    EXPECT_FALSE(throttles_destination(s, true)) << s;
  }
}

TEST(RetryPolicy, BackoffBoundGrowsByTheMultiplierUpToMaxInterval) {
  RetryPolicy p;
  p.initial_interval = milliseconds(100);
  p.multiplier = 2.0;
  p.max_interval = milliseconds(500);
  EXPECT_EQ(backoff_bound(p, 1), milliseconds(100));
  EXPECT_EQ(backoff_bound(p, 2), milliseconds(200));
  EXPECT_EQ(backoff_bound(p, 3), milliseconds(400));
  EXPECT_EQ(backoff_bound(p, 4), milliseconds(500));
  EXPECT_EQ(backoff_bound(p, 400), milliseconds(500));  // no overflow
}

TEST(RetryPolicy, DefaultsAreTheCollectorsRetryOnFailure) {
  const RetryPolicy p;
  EXPECT_EQ(p.initial_interval, milliseconds(5000));
  EXPECT_DOUBLE_EQ(p.multiplier, 1.5);
  EXPECT_EQ(p.max_interval, milliseconds(30000));
  EXPECT_EQ(p.max_elapsed, milliseconds(300000));
  EXPECT_EQ(backoff_bound(p, 2), milliseconds(7500));
}

TEST(RetryPolicy, FullJitterStaysWithinZeroAndTheBoundAndSpreadsOverIt) {
  RetryPolicy p;
  p.initial_interval = milliseconds(1000);
  std::mt19937_64 rng(42);
  nanoseconds lo = milliseconds(1000), hi{0};
  for (int i = 0; i < 2000; ++i) {
    const nanoseconds d = jittered_backoff(p, 1, rng);
    ASSERT_GE(d.count(), 0);
    ASSERT_LE(d, milliseconds(1000));
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_LT(lo, milliseconds(100));   // full jitter reaches near zero
  EXPECT_GT(hi, milliseconds(900));   // and near the bound
}

TEST(RetryPolicy, ClassifiesCurlErrors) {
  EXPECT_EQ(classify_curl_code(CURLE_COULDNT_CONNECT).error, NetworkError::connect);
  EXPECT_TRUE(classify_curl_code(CURLE_COULDNT_CONNECT).retryable);
  EXPECT_EQ(classify_curl_code(CURLE_OPERATION_TIMEDOUT).error, NetworkError::timeout);
  EXPECT_TRUE(classify_curl_code(CURLE_OPERATION_TIMEDOUT).retryable);
  EXPECT_EQ(classify_curl_code(CURLE_COULDNT_RESOLVE_HOST).error, NetworkError::dns);
  EXPECT_TRUE(classify_curl_code(CURLE_GOT_NOTHING).retryable);
  EXPECT_TRUE(classify_curl_code(CURLE_RECV_ERROR).retryable);
  EXPECT_EQ(classify_curl_code(CURLE_PEER_FAILED_VERIFICATION).error, NetworkError::tls);
  EXPECT_FALSE(classify_curl_code(CURLE_PEER_FAILED_VERIFICATION).retryable);
  EXPECT_FALSE(classify_curl_code(CURLE_URL_MALFORMAT).retryable);
}

TEST(PartialSuccess, CountsRejectedSpansGivenAsStringOrNumber) {
  EXPECT_EQ(parse_partial_success(R"({"partialSuccess":{"rejectedSpans":"7","errorMessage":"bad"}})", 100).rejected, 7U);
  EXPECT_EQ(parse_partial_success(R"({"partialSuccess":{"rejectedSpans":12}})", 100).rejected, 12U);
  EXPECT_TRUE(parse_partial_success(R"({"partialSuccess":{"rejectedSpans":"7","errorMessage":"bad"}})", 100).has_message);
}

TEST(PartialSuccess, ALongRejectedSpansNumberReadsAsItsNearestDouble) {
  // simdjson 3.0.1's On-Demand get_double() read 0.999...9 (26 nines) as 1.6e-7.
  EXPECT_EQ(parse_partial_success(R"({"partialSuccess":{"rejectedSpans":0.99999999999999999999999999}})", 100).rejected, 1U);
  EXPECT_EQ(parse_partial_success(R"({"partialSuccess":{"rejectedSpans":7.0000000000000000000000001}})", 100).rejected, 7U);
  EXPECT_EQ(parse_partial_success(R"({"partialSuccess":{"rejectedSpans":0.30000000000000000000000001e2}})", 100).rejected, 30U);
}

TEST(PartialSuccess, AnErrorMessageWithZeroRejectedIsAWarningOnly) {
  const auto p = parse_partial_success(R"({"partialSuccess":{"errorMessage":"dropped attribute"}})", 100);
  EXPECT_EQ(p.rejected, 0U);
  EXPECT_TRUE(p.has_message);
  // Where the message is, for Test Connection to show it: the raw text between the quotes.
  const std::string body = R"({"partialSuccess":{"errorMessage":"a\"b","rejectedSpans":"1"}})";
  const auto q = parse_partial_success(body, 100);
  EXPECT_EQ(std::string_view(body).substr(q.message_offset, q.message_size), R"(a\"b)");
  EXPECT_EQ(q.rejected, 1U);
}

// ExportTraceServiceResponse { partial_success = 1 { rejected_spans = 1; error_message = 2 } }
TEST(PartialSuccess, ReadsTheProtobufAnswerToAProtobufRequest) {
  using namespace std::string_literals;
  // rejected_spans 7, error_message "bad"
  const std::string body = "\x0a\x07\x08\x07\x12\x03" "bad"s;
  EXPECT_EQ(parse_partial_success(body, 1000, true).rejected, 7U);
  EXPECT_TRUE(parse_partial_success(body, 1000, true).has_message);
  // rejected_spans 300 (a two-byte varint), after an unknown field 3 of the response
  const std::string big = "\x1a\x01z\x0a\x03\x08\xac\x02"s;
  EXPECT_EQ(parse_partial_success(big, 1000, true).rejected, 300U);
  EXPECT_FALSE(parse_partial_success(big, 1000, true).has_message);
  // a message only: a warning
  const auto warn = parse_partial_success("\x0a\x04\x12\x02hi"s, 1000, true);
  EXPECT_EQ(warn.rejected, 0U);
  EXPECT_TRUE(warn.has_message);
  EXPECT_EQ(warn.message_offset, 4U);
  EXPECT_EQ(warn.message_size, 2U);
  // a JSON answer to a protobuf request is read as JSON
  EXPECT_EQ(parse_partial_success(R"( {"partialSuccess":{"rejectedSpans":"4"}})", 1000, true).rejected, 4U);
  // the same protobuf bytes are not JSON
  EXPECT_EQ(parse_partial_success(body, 1000, false).rejected, 0U);
}

TEST(PartialSuccess, TreatsEmptyOrMalformedProtobufAsFullSuccess) {
  using namespace std::string_literals;
  for (const std::string& body : {""s, "\x0a"s, "\x0a\x05\x08\x07"s, "\x0a\x02\x08\xff"s, "\x0b\x0c"s,
                                  "\x0a\x02\x08\x80"s, "\x0a\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"s}) {
    const auto p = parse_partial_success(body, 1000, true);
    EXPECT_EQ(p.rejected, 0U) << body.size();
    EXPECT_FALSE(p.has_message);
  }
}

TEST(PartialSuccess, TreatsEmptyOrMalformedBodiesAsFullSuccess) {
  for (const char* body : {"", "{}", "not json", R"({"partialSuccess":)", R"({"partialSuccess":{}})",
                           R"({"partialSuccess":{"rejectedSpans":"x"}})", "[1,2]"}) {
    const auto p = parse_partial_success(body, 100);
    EXPECT_EQ(p.rejected, 0U) << body;
    EXPECT_FALSE(p.has_message) << body;
  }
  // Without the word there is nothing to read; with it, a broken object is malformed.
  EXPECT_FALSE(parse_partial_success("not json", 100).malformed);
  EXPECT_FALSE(parse_partial_success(R"({"partialSuccess":{}})", 100).malformed);
  EXPECT_TRUE(parse_partial_success(R"({"partialSuccess":)", 100).malformed);
  EXPECT_TRUE(parse_partial_success(R"({"partialSuccess":{"rejectedSpans":"x"}})", 100).malformed);
}

// A hostile or broken server's rejectedSpans never counts more spans than the batch had, and
// is flagged: clamped when too large, rounded up when fractional, ignored when negative.
TEST(PartialSuccess, HugeFractionalAndNegativeCountsAreHandledConservatively) {
  struct Case {
    const char* value;
    std::uint64_t rejected;
    bool malformed;
  };
  const Case cases[] = {
      {"7", 7, false},          {"\"7\"", 7, false},       {"100", 100, false},
      {"101", 100, true},       {"1e30", 100, true},        {"\"1e30\"", 0, true},
      {"3.7", 4, true},         {"\"3.7\"", 0, true},       {"-3", 0, true},
      {"\"-3\"", 0, true},      {"18446744073709551615", 100, true},
      {"\"99999999999999999999999\"", 100, true},          {"1e400", 100, true},
      {"true", 0, true},        {"null", 0, true},          {"[]", 0, true},
  };
  for (const Case& c : cases) {
    const std::string body = std::string(R"({"partialSuccess":{"rejectedSpans":)") + c.value + "}}";
    const PartialSuccess p = parse_partial_success(body, 100);
    EXPECT_EQ(p.rejected, c.rejected) << c.value;
    EXPECT_EQ(p.malformed, c.malformed) << c.value;
  }
  // Linear in the body: a 4 MiB errorMessage is read once.
  const std::string big = R"({"partialSuccess":{"rejectedSpans":2,"errorMessage":")" + std::string(4u << 20, 'x') + "\"}}";
  EXPECT_EQ(parse_partial_success(big, 10).rejected, 2U);
}

TEST(RetryAfter, DelaySecondsAndDatesAreBoundedAndGarbageIsIgnored) {
  const std::int64_t now = 1'764'400'000;  // 2025-11-29
  using K = RetryAfter::Kind;
  EXPECT_EQ(parse_retry_after("", now).kind, K::absent);
  EXPECT_EQ(parse_retry_after("  ", now).kind, K::absent);
  RetryAfter r = parse_retry_after(" 120\r\n", now);
  EXPECT_EQ(r.kind, K::delay);
  EXPECT_EQ(r.seconds, 120);
  EXPECT_FALSE(r.clamped);
  for (const char* huge : {"9223372036854775807", "99999999999999999999999999999", "86401"}) {
    r = parse_retry_after(huge, now);
    EXPECT_EQ(r.kind, K::delay) << huge;
    EXPECT_EQ(r.seconds, k_max_retry_after_s) << huge;
    EXPECT_TRUE(r.clamped) << huge;
  }
  EXPECT_EQ(parse_retry_after(std::string(5000, '9'), now).kind, K::invalid);  // over 128 bytes
  for (const char* bad : {"-5", "1.5", "soon", "0x10", "12 34", "Fri, 99 Foo 2025 00:00:00 GMT"}) {
    EXPECT_EQ(parse_retry_after(bad, now).kind, K::invalid) << bad;
  }
  r = parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now);
  EXPECT_EQ(r.kind, K::delay);
  EXPECT_EQ(r.seconds, k_max_retry_after_s);
  EXPECT_TRUE(r.clamped);
  r = parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now);  // in the past
  EXPECT_EQ(r.kind, K::delay);
  EXPECT_EQ(r.seconds, 0);
  r = parse_retry_after("Sat, 29 Nov 2025 07:06:40 GMT", now - 60);  // now + 60 s
  EXPECT_EQ(r.kind, K::delay);
  EXPECT_EQ(r.seconds, 60);
}

}  // namespace
}  // namespace tracecast::detail
