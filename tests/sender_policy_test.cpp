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
  EXPECT_EQ(parse_partial_success(R"({"partialSuccess":{"rejectedSpans":"7","errorMessage":"bad"}})").rejected, 7U);
  EXPECT_EQ(parse_partial_success(R"({"partialSuccess":{"rejectedSpans":12}})").rejected, 12U);
  EXPECT_TRUE(parse_partial_success(R"({"partialSuccess":{"rejectedSpans":"7","errorMessage":"bad"}})").has_message);
}

TEST(PartialSuccess, AnErrorMessageWithZeroRejectedIsAWarningOnly) {
  const auto p = parse_partial_success(R"({"partialSuccess":{"errorMessage":"dropped attribute"}})");
  EXPECT_EQ(p.rejected, 0U);
  EXPECT_TRUE(p.has_message);
}

// ExportTraceServiceResponse { partial_success = 1 { rejected_spans = 1; error_message = 2 } }
TEST(PartialSuccess, ReadsTheProtobufAnswerToAProtobufRequest) {
  using namespace std::string_literals;
  // rejected_spans 7, error_message "bad"
  const std::string body = "\x0a\x07\x08\x07\x12\x03" "bad"s;
  EXPECT_EQ(parse_partial_success(body, true).rejected, 7U);
  EXPECT_TRUE(parse_partial_success(body, true).has_message);
  // rejected_spans 300 (a two-byte varint), after an unknown field 3 of the response
  const std::string big = "\x1a\x01z\x0a\x03\x08\xac\x02"s;
  EXPECT_EQ(parse_partial_success(big, true).rejected, 300U);
  EXPECT_FALSE(parse_partial_success(big, true).has_message);
  // a message only: a warning
  const auto warn = parse_partial_success("\x0a\x04\x12\x02hi"s, true);
  EXPECT_EQ(warn.rejected, 0U);
  EXPECT_TRUE(warn.has_message);
  // a JSON answer to a protobuf request is read as JSON
  EXPECT_EQ(parse_partial_success(R"( {"partialSuccess":{"rejectedSpans":"4"}})", true).rejected, 4U);
  // the same protobuf bytes are not JSON
  EXPECT_EQ(parse_partial_success(body, false).rejected, 0U);
}

TEST(PartialSuccess, TreatsEmptyOrMalformedProtobufAsFullSuccess) {
  using namespace std::string_literals;
  for (const std::string& body : {""s, "\x0a"s, "\x0a\x05\x08\x07"s, "\x0a\x02\x08\xff"s, "\x0b\x0c"s,
                                  "\x0a\x02\x08\x80"s, "\x0a\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"s}) {
    const auto p = parse_partial_success(body, true);
    EXPECT_EQ(p.rejected, 0U) << body.size();
    EXPECT_FALSE(p.has_message);
  }
}

TEST(PartialSuccess, TreatsEmptyOrMalformedBodiesAsFullSuccess) {
  for (const char* body : {"", "{}", "not json", R"({"partialSuccess":)", R"({"partialSuccess":{}})",
                           R"({"partialSuccess":{"rejectedSpans":"x"}})", "[1,2]"}) {
    const auto p = parse_partial_success(body);
    EXPECT_EQ(p.rejected, 0U) << body;
    EXPECT_FALSE(p.has_message) << body;
  }
}

}  // namespace
}  // namespace tracecast::detail
