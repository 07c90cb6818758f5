// Tests for tracecast/gateway.h: a record's lifecycle and safety (the November 2026 review,
// group A): a parser and a record built from different configs, a second response or stream on
// one record (a retry, a fallback provider), stream calls out of order, the issues entry at the
// ingest limit, values out of their range, duplicate trace keys, a BOM before a body, an
// x-session-id header that is not UTF-8. Run them under ASan (the sanitizer build) too: the
// stale-view tests free the first body before reading the record.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "alloc_counter.h"
#include "gateway_test_util.h"
#include "tracecast/gateway.h"

namespace tracecast {
namespace {

using test::find_meta;
using test::meta_string;

std::string trace_body(std::size_t keys) {
  std::string body = R"({"model":"m","messages":[],"trace":{)";
  for (std::size_t i = 0; i < keys; ++i) body += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  return body + "}}";
}

std::size_t user_keys(const LlmRequest& r) {
  std::size_t n = 0;
  for (const auto& e : r.metadata) n += e.key.substr(0, 1) == "k" ? 1 : 0;
  return n;
}

// --- a parser and a record of different configs: the smaller limit of the two applies ----------



TEST(GatewayConfigMismatch, MetadataKeysStayWithinTheRecordsTableEitherWay) {
  GatewayConfig big;
  big.max_metadata_keys = 128;
  GatewayConfig little;  // 64 (the review's case: parser 128, record 64)
  GatewayConfig tiny;
  tiny.max_metadata_keys = 8;
  const std::string body = trace_body(100);
  struct Case {
    const GatewayConfig& parser;
    const GatewayConfig& record;
    std::size_t kept;
  };
  for (const Case& c : {Case{big, little, 64}, Case{little, big, 64}, Case{big, tiny, 8}, Case{tiny, big, 8}}) {
    GatewayParser p(c.parser);
    auto rec = std::make_unique<GatewayRecord>(c.record);
    const auto res = p.parse_request(body, "", *rec);
    EXPECT_TRUE(res.has(ParseIssue::too_many_metadata_keys)) << c.kept;
    EXPECT_EQ(user_keys(rec->request()), c.kept);
    EXPECT_EQ(meta_string(rec->request(), "tracecast.parse_issues"), "too_many_metadata_keys");
  }
}

TEST(GatewayConfigMismatch, BodyLimitIsTheSmallerOfTheTwo) {
  GatewayConfig small;
  small.max_body_bytes = 1024;
  small.max_completion_bytes = 1024;
  small.max_stream_line_bytes = 1024;
  const GatewayConfig large;
  const std::string big_request = R"({"model":"m","user":")" + std::string(2000, 'u') + "\"}";
  const std::string big_response = R"({"id":"r","choices":[{"index":0,"message":{"content":")" + std::string(2000, 'c') + "\"}}]}";
  for (const bool parser_small : {true, false}) {
    GatewayParser p(parser_small ? small : large);
    auto rec = std::make_unique<GatewayRecord>(parser_small ? large : small);
    EXPECT_TRUE(p.parse_request(big_request, "", *rec).has(ParseIssue::body_too_large)) << parser_small;
    EXPECT_TRUE(rec->request().user.empty());
    EXPECT_TRUE(p.parse_response(big_response, *rec).has(ParseIssue::body_too_large)) << parser_small;
    EXPECT_TRUE(rec->request().completion.empty());
    // Under both limits: read.
    EXPECT_TRUE(p.parse_request(R"({"model":"m","user":"u"})", "", *rec).ok());
    EXPECT_EQ(rec->request().user, "u");
  }
}

TEST(GatewayConfigMismatch, CompletionLimitIsTheSmallerOfTheTwo) {
  GatewayConfig small;
  small.max_completion_bytes = 16;
  const GatewayConfig large;
  const std::string sse = R"(data: {"choices":[{"index":0,"delta":{"content":")" + std::string(100, 'x') +
                          R"("},"finish_reason":"stop"}]})" "\n\ndata: [DONE]\n\n";
  for (const bool parser_small : {true, false}) {
    GatewayParser p(parser_small ? small : large);
    auto rec = std::make_unique<GatewayRecord>(parser_small ? large : small);
    p.begin_stream(*rec);
    std::uint32_t bits = p.feed_stream(sse, 1, *rec).issues;
    bits |= p.finish_stream(*rec).issues;
    EXPECT_EQ(rec->request().completion, std::string(16, 'x')) << parser_small;
    EXPECT_EQ(bits, issue_bit(ParseIssue::completion_truncated)) << parser_small;
  }
}

TEST(GatewayConfigMismatch, StreamLineLimitIsTheSmallerOfTheTwoHoweverFed) {
  GatewayConfig small;
  small.max_stream_line_bytes = 64;
  const GatewayConfig large;
  const std::string sse = R"(data: {"choices":[{"index":0,"delta":{"content":")" + std::string(100, 'x') +
                          R"("}}]})" "\n\n" R"(data: {"choices":[{"delta":{"content":"y"}}]})"  // 46 bytes: under both
                          "\n\ndata: [DONE]\n\n";
  for (const bool parser_small : {true, false}) {
    GatewayParser p(parser_small ? small : large);
    for (const std::size_t step : {sse.size(), std::size_t{1}, std::size_t{7}, std::size_t{64}}) {
      auto rec = std::make_unique<GatewayRecord>(parser_small ? large : small);
      p.begin_stream(*rec);
      std::uint32_t bits = 0;
      for (std::size_t i = 0; i < sse.size(); i += step) bits |= p.feed_stream(sse.substr(i, step), 1, *rec).issues;
      bits |= p.finish_stream(*rec).issues;
      EXPECT_EQ(rec->request().completion, "y") << parser_small << " step " << step;
      EXPECT_EQ(bits, issue_bit(ParseIssue::stream_line_too_long)) << parser_small << " step " << step;
    }
  }
}

TEST(GatewayConfigMismatch, ErrorTextLimitIsTheSmallerOfTheTwo) {
  GatewayConfig small;
  small.max_error_text_bytes = 16;
  const GatewayConfig large;
  for (const bool parser_small : {true, false}) {
    GatewayParser p(parser_small ? small : large);
    auto rec = std::make_unique<GatewayRecord>(parser_small ? large : small);
    const auto res = p.set_outcome(502, std::string(100, 'e'), *rec);
    EXPECT_TRUE(res.has(ParseIssue::error_body_unreadable));
    EXPECT_EQ(rec->request().error_message, std::string(16, 'e')) << parser_small;
  }
}

TEST(GatewayConfigMismatch, TheRecordsIssuesKeyIsTheReservedOne) {
  GatewayConfig pc;
  pc.issues_metadata_key = "parser.issues";
  GatewayConfig rc;
  rc.issues_metadata_key = "record.issues";
  GatewayParser p(pc);
  auto rec = std::make_unique<GatewayRecord>(rc);
  const auto res = p.parse_request(R"({"model":"m","trace":{"record.issues":"fake","parser.issues":"mine"}})", "", *rec);
  EXPECT_EQ(res.issues, issue_bit(ParseIssue::field_wrong_type));
  EXPECT_EQ(meta_string(rec->request(), "record.issues"), "field_wrong_type");  // the record's entry, not the client's
  EXPECT_EQ(meta_string(rec->request(), "parser.issues"), "mine");              // an ordinary key for this record
  std::size_t named = 0;
  for (const auto& e : rec->request().metadata) named += e.key == "record.issues" ? 1 : 0;
  EXPECT_EQ(named, 1u);
}

}  // namespace
}  // namespace tracecast
