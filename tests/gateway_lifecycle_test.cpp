// Tests for tracecast/gateway.h: a record's lifecycle and safety (the November 2026 review,
// group A): a parser and a record built from different configs, a second response or stream on
// one record (a retry, a fallback provider), stream calls out of order, the issues entry at the
// ingest limit, values out of their range, duplicate trace keys, a BOM before a body, an
// x-session-id header that is not UTF-8. Run them under ASan (the sanitizer build) too: the
// stale-view tests free the first body before reading the record.
#include <gtest/gtest.h>
#include <simdjson.h>

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

// --- a second response attempt on one record starts the response side afresh ------------------

constexpr std::string_view k_request = R"({"model":"openai/gpt-4o","user":"u1","messages":[{"role":"user","content":"q"}],"trace":{"t":"v"}})";

// A first attempt that sets every response-side field, the provider spelled with an escape
// (unescaped into the record's response storage, reused by the next attempt).
std::string rich_body() {
  return R"({"id":"r1","model":"m1","provider":"Prov\u00e9","choices":[)"
         R"({"index":0,"finish_reason":"length","message":{"content":"first \u00e9"}},)"
         R"({"index":1,"finish_reason":"stop","message":{"content":"x"}}],)"
         R"("usage":{"prompt_tokens":5,"completion_tokens":6,"cache_read_input_tokens":1,"cache_creation_input_tokens":2,)"
         R"("completion_tokens_details":{"reasoning_tokens":3},"cost":0.5},"error":{"message":"upstream \u00e9 502"}})";
}
std::string rich_stream() {
  return "data: " R"({"id":"s1","model":"m1","provider":"Prov\u00e9","choices":[{"index":0,"delta":{"content":"streamed \u00e9"},"finish_reason":null}]})" "\n\n"
         "data: " R"({"choices":[{"index":1,"delta":{"content":"y"},"finish_reason":"stop"}]})" "\n\n"
         "data: " R"({"choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":{"prompt_tokens":5,"completion_tokens":6,)"
         R"("cache_read_input_tokens":1,"cache_creation_input_tokens":2,"completion_tokens_details":{"reasoning_tokens":3},"cost":0.5}})" "\n\n"
         "data: " R"({"error":{"message":"upstream died"}})" "\n\n";
}

enum class Attempt { body, stream };

// Runs one attempt from a heap copy of its bytes; returns the copy (views may point into it).
std::unique_ptr<std::string> run_attempt(GatewayParser& p, GatewayRecord& rec, Attempt kind, const std::string& bytes,
                                         int status) {
  auto copy = std::make_unique<std::string>(bytes);
  if (kind == Attempt::body) {
    (void)p.parse_response(*copy, rec);
  } else {
    p.begin_stream(rec);
    for (std::size_t i = 0; i < copy->size(); i += 17) (void)p.feed_stream(copy->substr(i, 17), 1000 + i, rec);
    (void)p.finish_stream(rec);
  }
  (void)p.set_outcome(status, status >= 400 ? R"({"error":{"message":"bad gateway"}})" : "", rec);
  return copy;
}

// Frees an attempt's bytes, overwritten first: what a reused buffer would show through a
// stale view (and ASan reports a read of the freed one).
void free_body(std::unique_ptr<std::string>& body) {
  body->assign(body->size(), '#');
  body.reset();
}

void expect_first_attempt_set_everything(const LlmRequest& r, Attempt kind) {
  const bool body = kind == Attempt::body;
  EXPECT_EQ(r.response_id, body ? "r1" : "s1");
  EXPECT_EQ(r.response_model, "m1");
  EXPECT_EQ(r.provider, "Prov\xC3\xA9");
  EXPECT_EQ(r.finish_reason, "length");
  EXPECT_EQ(r.finish_reasons, "length,stop");
  EXPECT_EQ(r.completion, body ? "first \xC3\xA9" : "streamed \xC3\xA9");
  EXPECT_EQ(r.input_tokens, 5);
  EXPECT_EQ(r.output_tokens, 6);
  EXPECT_EQ(r.cache_read_input_tokens, 1);
  EXPECT_EQ(r.cache_creation_input_tokens, 2);
  EXPECT_EQ(r.reasoning_output_tokens, 3);
  EXPECT_EQ(r.cost, 0.5);
  EXPECT_TRUE(r.error);
  EXPECT_FALSE(r.error_message.empty());
  EXPECT_EQ(r.http_status, 502);
  if (!body) {
    EXPECT_NE(r.first_token_unix_nano, 0u);
  }
}

// Nothing of an earlier attempt: every response-side field unknown, the request's provider.
void expect_response_side_fresh(const LlmRequest& r, const std::string& what) {
  EXPECT_EQ(r.response_id, "") << what;
  EXPECT_EQ(r.response_model, "") << what;
  EXPECT_EQ(r.provider, "openai") << what;
  EXPECT_EQ(r.finish_reason, "") << what;
  EXPECT_EQ(r.finish_reasons, "") << what;
  EXPECT_EQ(r.completion, "") << what;
  EXPECT_EQ(r.input_tokens, -1) << what;
  EXPECT_EQ(r.output_tokens, -1) << what;
  EXPECT_EQ(r.cache_read_input_tokens, -1) << what;
  EXPECT_EQ(r.cache_creation_input_tokens, -1) << what;
  EXPECT_EQ(r.reasoning_output_tokens, -1) << what;
  EXPECT_TRUE(std::isnan(r.cost)) << what;
  EXPECT_EQ(r.first_token_unix_nano, 0u) << what;
  EXPECT_FALSE(r.error) << what;
  EXPECT_EQ(r.error_message, "") << what;
  EXPECT_EQ(r.http_status, 200) << what;
  // The request side stays.
  EXPECT_EQ(r.requested_model, "openai/gpt-4o") << what;
  EXPECT_EQ(r.user, "u1") << what;
  EXPECT_EQ(meta_string(r, "t"), "v") << what;
  EXPECT_EQ(r.account, "acct") << what;
  EXPECT_EQ(r.start_unix_nano, 7u) << what;
}

TEST(GatewayAttempts, ASecondAttemptKeepsNothingOfTheFirstForEveryKindPair) {
  GatewayParser p;
  for (const Attempt first : {Attempt::body, Attempt::stream}) {
    for (const Attempt second : {Attempt::body, Attempt::stream}) {
      const std::string what = std::string(first == Attempt::body ? "body" : "stream") + " -> " +
                               (second == Attempt::body ? "body" : "stream");
      auto rec = std::make_unique<GatewayRecord>();
      ASSERT_TRUE(p.parse_request(k_request, "", *rec).ok());
      rec->request().account = "acct";
      rec->request().start_unix_nano = 7;
      auto first_bytes = run_attempt(p, *rec, first, first == Attempt::body ? rich_body() : rich_stream(), 502);
      expect_first_attempt_set_everything(rec->request(), first);
      free_body(first_bytes);
      // The second attempt says nothing at all (an empty object, a stream of [DONE] only).
      auto second_bytes = run_attempt(p, *rec, second, second == Attempt::body ? "{}" : "data: [DONE]\n\n", 200);
      expect_response_side_fresh(rec->request(), what);
    }
  }
}

TEST(GatewayAttempts, ARetriedStreamReportsItsOwnOutcomeAndTimeToFirstToken) {
  // The review's retry: the first attempt dies mid-stream, the second succeeds elsewhere.
  GatewayParser p;
  auto rec = std::make_unique<GatewayRecord>();
  ASSERT_TRUE(p.parse_request(R"({"model":"openai/gpt-4o","messages":[],"stream":true})", "", *rec).ok());
  p.begin_stream(*rec);
  (void)p.feed_stream("data: {\"id\":\"a1\",\"provider\":\"ProvA\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"par\"}}]}\n\n", 111, *rec);
  (void)p.feed_stream("data: {\"error\":{\"message\":\"upstream died\"}}\n\n", 222, *rec);
  (void)p.finish_stream(*rec);
  ASSERT_TRUE(rec->request().error);
  p.begin_stream(*rec);
  (void)p.feed_stream("data: {\"id\":\"b2\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"full answer\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n", 999, *rec);
  EXPECT_TRUE(p.finish_stream(*rec).ok());
  (void)p.set_outcome(200, "", *rec);
  const LlmRequest& r = rec->request();
  EXPECT_FALSE(r.error);
  EXPECT_EQ(r.error_message, "");
  EXPECT_EQ(r.first_token_unix_nano, 999u);
  EXPECT_EQ(r.provider, "openai");
  EXPECT_EQ(r.response_id, "b2");
  EXPECT_EQ(r.completion, "full answer");
  EXPECT_EQ(r.finish_reason, "stop");
}

TEST(GatewayAttempts, AnErrorBodyThenAGoodBodyIsNoLongerAnError) {
  GatewayParser p;
  auto rec = std::make_unique<GatewayRecord>();
  ASSERT_TRUE(p.parse_request(k_request, "", *rec).ok());
  (void)p.parse_response(R"({"error":{"message":"upstream 502"}})", *rec);
  (void)p.set_outcome(502, "", *rec);
  ASSERT_TRUE(rec->request().error);
  (void)p.parse_response(R"({"id":"ok","choices":[{"index":0,"finish_reason":"stop","message":{"content":"fine"}}]})", *rec);
  (void)p.set_outcome(200, "", *rec);
  EXPECT_FALSE(rec->request().error);
  EXPECT_EQ(rec->request().error_message, "");
  EXPECT_EQ(rec->request().http_status, 200);
  EXPECT_EQ(rec->request().completion, "fine");
}

TEST(GatewayAttempts, AProviderTheGatewaySetItselfComesBackAfterAResponseNamedAnother) {
  GatewayParser p;
  auto rec = std::make_unique<GatewayRecord>();
  ASSERT_TRUE(p.parse_request(R"({"model":"gpt-4o","messages":[]})", "", *rec).ok());
  rec->request().provider = "gateway-chosen";
  (void)p.parse_response(R"({"id":"a","provider":"Other"})", *rec);
  EXPECT_EQ(rec->request().provider, "Other");
  (void)p.parse_response(R"({"id":"b"})", *rec);
  EXPECT_EQ(rec->request().provider, "gateway-chosen");
  // A new request on the record: its own provider, nothing given back later.
  ASSERT_TRUE(p.parse_request(R"({"model":"anthropic/claude","messages":[]})", "", *rec).ok());
  (void)p.parse_response(R"({"id":"c"})", *rec);
  EXPECT_EQ(rec->request().provider, "anthropic");
}

TEST(GatewayAttempts, SecondAttemptsAllocateNothingAfterWarmUp) {
  GatewayParser p;
  auto rec = std::make_unique<GatewayRecord>();
  const std::string body = rich_body();
  const std::string sse = rich_stream();
  auto round = [&] {
    rec->reset();
    (void)p.parse_request(k_request, "", *rec);
    (void)p.parse_response(body, *rec);
    p.begin_stream(*rec);
    (void)p.feed_stream(sse, 1, *rec);
    (void)p.finish_stream(*rec);
    (void)p.parse_response(body, *rec);
  };
  round();
  test::AllocationScope counter;
  round();
  EXPECT_EQ(counter.count(), 0u);
}

// --- stream calls outside begin_stream .. finish_stream are refused ------------------------------

TEST(GatewayStreamOrder, FeedAfterFinishIsRefusedAndLeavesTheCompletionAlone) {
  GatewayParser p;
  auto rec = std::make_unique<GatewayRecord>();
  p.begin_stream(*rec);
  (void)p.feed_stream("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"streamed text\"},\"finish_reason\":\"stop\"}]}\n\n", 1, *rec);
  ASSERT_TRUE(p.finish_stream(*rec).ok());
  ASSERT_EQ(rec->request().completion, "streamed text");
  const auto late = p.feed_stream("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"LATE\"}}]}\n\n", 2, *rec);
  EXPECT_EQ(late.issues, issue_bit(ParseIssue::stream_not_begun));
  EXPECT_FALSE(late.detail.empty());
  EXPECT_EQ(rec->request().completion, "streamed text");
  const auto again = p.finish_stream(*rec);
  EXPECT_EQ(again.issues, issue_bit(ParseIssue::stream_not_begun));
  EXPECT_EQ(rec->request().completion, "streamed text");
  EXPECT_EQ(rec->request().finish_reason, "stop");
  EXPECT_EQ(meta_string(rec->request(), "tracecast.parse_issues"), "stream_not_begun");
  EXPECT_EQ(p.stats().count(ParseIssue::stream_not_begun), 1u);  // one record met it (counted per record)
}

TEST(GatewayStreamOrder, FeedOrFinishWithoutBeginIsRefused) {
  GatewayParser p;
  auto rec = std::make_unique<GatewayRecord>();
  EXPECT_EQ(p.feed_stream("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n", 1, *rec).issues,
            issue_bit(ParseIssue::stream_not_begun));
  EXPECT_EQ(p.finish_stream(*rec).issues, issue_bit(ParseIssue::stream_not_begun));
  EXPECT_EQ(rec->request().completion, "");
  // A body response ends a stream left open: feeding it afterwards is refused too.
  p.begin_stream(*rec);
  (void)p.feed_stream("data: {\"choices\":[{\"delta\":{\"content\":\"abandoned\"}}]}\n\n", 1, *rec);
  (void)p.parse_response(R"({"choices":[{"index":0,"message":{"content":"body"}}]})", *rec);
  EXPECT_EQ(p.feed_stream("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n", 1, *rec).issues,
            issue_bit(ParseIssue::stream_not_begun));
  EXPECT_EQ(p.finish_stream(*rec).issues, issue_bit(ParseIssue::stream_not_begun));
  EXPECT_EQ(rec->request().completion, "body");
}

// --- numbers outside their field's range: flagged, left unknown --------------------------------

TEST(GatewayRanges, NegativeUsageAndCostAreFlaggedAndLeftUnknownInBodiesAndStreams) {
  GatewayParser p;
  const std::vector<std::string> fields = {
      R"("prompt_tokens":-3)", R"("completion_tokens":-1)", R"("input_tokens":-2)", R"("output_tokens":-9)",
      R"("cache_read_input_tokens":-1)", R"("cache_creation_input_tokens":-4)",
      R"("prompt_tokens_details":{"cached_tokens":-5})", R"("completion_tokens_details":{"reasoning_tokens":-6})",
      R"("cost":-0.5)", R"("cost":-1e-9)"};
  for (const std::string& field : fields) {
    const std::string body = R"({"id":"r","choices":[{"index":0,"finish_reason":"stop","message":{"content":"hi"}}],"usage":{)" + field + "}}";
    auto rec = std::make_unique<GatewayRecord>();
    const auto res = p.parse_response(body, *rec);
    EXPECT_EQ(res.issues, issue_bit(ParseIssue::field_wrong_type)) << field;
    const LlmRequest& r = rec->request();
    for (const std::int64_t n : {r.input_tokens, r.output_tokens, r.cache_read_input_tokens, r.cache_creation_input_tokens,
                                 r.reasoning_output_tokens})
      EXPECT_EQ(n, -1) << field;
    EXPECT_TRUE(std::isnan(r.cost)) << field;
    EXPECT_EQ(r.completion, "hi");
    const std::string sse = R"(data: {"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}],"usage":{)" + field +
                            "}}\n\ndata: [DONE]\n\n";
    std::uint32_t bits = 0;
    const auto srec = test::stream(p, sse, 5, &bits);
    EXPECT_EQ(bits, issue_bit(ParseIssue::field_wrong_type)) << field;
    EXPECT_EQ(srec->request().input_tokens, -1) << field;
    EXPECT_EQ(srec->request().output_tokens, -1) << field;
    EXPECT_TRUE(std::isnan(srec->request().cost)) << field;
  }
  // In range (0, a positive cost, null): read, nothing flagged.
  auto rec = std::make_unique<GatewayRecord>();
  EXPECT_TRUE(p.parse_response(R"({"usage":{"prompt_tokens":0,"completion_tokens":null,"cost":0}})", *rec).ok());
  EXPECT_EQ(rec->request().input_tokens, 0);
  EXPECT_EQ(rec->request().output_tokens, -1);
  EXPECT_EQ(rec->request().cost, 0.0);
}

TEST(GatewayRanges, RequestNumbersOutOfRangeAreFlaggedAndLeftUnknown) {
  GatewayParser p;
  struct Case {
    const char* field;
    bool valid;
  };
  for (const Case& c : {Case{R"("temperature":-0.1)", false}, Case{R"("temperature":0)", true}, Case{R"("temperature":1.5)", true},
                        Case{R"("top_p":-0.01)", false}, Case{R"("top_p":1.01)", false}, Case{R"("top_p":1)", true},
                        Case{R"("max_tokens":-1)", false}, Case{R"("max_completion_tokens":-100)", false},
                        Case{R"("max_output_tokens":-7)", false}, Case{R"("max_tokens":0)", true}}) {
    auto rec = std::make_unique<GatewayRecord>();
    const auto res = p.parse_request(std::string(R"({"model":"m","messages":[],)") + c.field + "}", "", *rec);
    EXPECT_EQ(res.issues, c.valid ? 0u : issue_bit(ParseIssue::field_wrong_type)) << c.field;
    const LlmRequest& r = rec->request();
    if (!c.valid) {
      EXPECT_TRUE(std::isnan(r.temperature)) << c.field;
      EXPECT_TRUE(std::isnan(r.top_p)) << c.field;
      EXPECT_EQ(r.max_tokens, -1) << c.field;
      EXPECT_EQ(meta_string(r, "tracecast.parse_issues"), "field_wrong_type") << c.field;
    }
  }
}

TEST(GatewayRanges, ANegativeStreamEventIndexIsFlaggedAndMergedNowhere) {
  GatewayParser p;
  const std::string sse =
      "data: " R"({"type":"content_block_start","index":-3,"content_block":{"type":"tool_use","id":"t1","name":"f","input":{}}})" "\n\n"
      "data: " R"({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t0","name":"g","input":{}}})" "\n\n"
      "data: " R"({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\":1}"}})" "\n\n"
      "data: " R"({"type":"message_delta","delta":{"stop_reason":"tool_use"}})" "\n\n"
      "data: " R"({"type":"message_stop"})" "\n\n";
  for (const std::size_t step : {sse.size(), std::size_t{1}, std::size_t{9}}) {
    std::uint32_t bits = 0;
    const auto rec = test::stream(p, sse, step, &bits);
    EXPECT_EQ(bits, issue_bit(ParseIssue::field_wrong_type)) << step;
    EXPECT_EQ(rec->request().completion, R"([{"type":"tool_use","id":"t0","name":"g","input":{"a":1}}])") << step;
  }
}

// --- a trace key given twice: the last value, in the first one's place, flagged ----------------

TEST(GatewayDuplicates, ATraceKeyGivenTwiceKeepsItsLastValueInOneSlot) {
  GatewayParser p;
  auto rec = std::make_unique<GatewayRecord>();
  const auto res = p.parse_request(R"({"model":"m","trace":{"k":1,"a":"x","k":2,"b":true,"a":"y"}})", "", *rec);
  EXPECT_EQ(res.issues, issue_bit(ParseIssue::duplicate_key));
  const LlmRequest& r = rec->request();
  ASSERT_EQ(r.metadata.size(), 4u);  // the issues entry, k, a, b
  EXPECT_EQ(r.metadata[0].value.as_string(), "duplicate_key");
  EXPECT_EQ(r.metadata[1].key, "k");
  EXPECT_EQ(r.metadata[1].value.as_int64(), 2);
  EXPECT_EQ(r.metadata[2].key, "a");
  EXPECT_EQ(r.metadata[2].value.as_string(), "y");
  EXPECT_EQ(r.metadata[3].key, "b");
  // A last null removes the key; a key spelled with an escape is the same key.
  ASSERT_FALSE(p.parse_request(R"({"model":"m","trace":{"k":1,"j":2,"k":null,"\u006a":3}})", "", *rec).ok());
  EXPECT_EQ(rec->issues(), issue_bit(ParseIssue::duplicate_key));
  ASSERT_EQ(r.metadata.size(), 2u);
  EXPECT_EQ(find_meta(r, "k"), nullptr);
  EXPECT_EQ(find_meta(r, "j")->value.as_int64(), 3);
}

TEST(GatewayDuplicates, DuplicatesUseNoKeySlot) {
  GatewayConfig c;
  c.max_metadata_keys = 2;
  GatewayParser p(c);
  auto rec = std::make_unique<GatewayRecord>(c);
  const auto res = p.parse_request(R"({"model":"m","trace":{"k":1,"k":2,"k":3,"k":4,"z":5}})", "", *rec);
  EXPECT_EQ(res.issues, issue_bit(ParseIssue::duplicate_key));
  EXPECT_EQ(find_meta(rec->request(), "k")->value.as_int64(), 4);
  EXPECT_EQ(find_meta(rec->request(), "z")->value.as_int64(), 5);
}

// The second review: a duplicate once the key table is full is still a duplicate (not "too
// many"), a last null still removes the key, and a key whose first value was null is a
// duplicate when given again, in its first place.
TEST(GatewayDuplicates, DuplicatesCountWhenTheTableIsFullAndAfterAFirstNull) {
  GatewayParser p;  // max_metadata_keys 64
  auto rec = std::make_unique<GatewayRecord>();
  std::string full = R"({"model":"m","trace":{)";
  for (int k = 0; k < 64; ++k) full += (k ? ",\"k" : "\"k") + std::to_string(k) + "\":" + std::to_string(k);
  std::string body;  // alive while the record's views point into it
  auto parse = [&](const std::string& tail) {
    body = full + tail + "}}";
    return p.parse_request(body, "", *rec);
  };
  auto res = parse(R"(,"k0":"last")");
  EXPECT_EQ(res.issues, issue_bit(ParseIssue::duplicate_key));
  ASSERT_NE(find_meta(rec->request(), "k0"), nullptr);
  EXPECT_EQ(find_meta(rec->request(), "k0")->value.as_string(), "last");
  EXPECT_EQ(user_keys(rec->request()), 64u);  // all 64 held (the ingest's limit drops one later)
  res = parse(R"(,"k0":null)");
  EXPECT_EQ(res.issues, issue_bit(ParseIssue::duplicate_key));
  EXPECT_EQ(find_meta(rec->request(), "k0"), nullptr);
  // A new key past the limit is dropped and flagged; a later duplicate is still read.
  res = parse(R"(,"z":1,"k1":"again")");
  EXPECT_EQ(res.issues, issue_bit(ParseIssue::too_many_metadata_keys) | issue_bit(ParseIssue::duplicate_key));
  EXPECT_EQ(find_meta(rec->request(), "z"), nullptr);
  ASSERT_NE(find_meta(rec->request(), "k1"), nullptr);
  EXPECT_EQ(find_meta(rec->request(), "k1")->value.as_string(), "again");

  rec->reset();
  res = p.parse_request(R"({"model":"m","trace":{"a":null,"b":2,"a":3}})", "", *rec);
  EXPECT_EQ(res.issues, issue_bit(ParseIssue::duplicate_key));
  const LlmRequest& r = rec->request();
  ASSERT_EQ(r.metadata.size(), 3u);  // the issues entry, a (its first place), b
  EXPECT_EQ(r.metadata[1].key, "a");
  EXPECT_EQ(r.metadata[1].value.as_int64(), 3);
  EXPECT_EQ(r.metadata[2].key, "b");
  // A null alone is left out, unflagged (counted as a dropped null).
  rec->reset();  // a new request (the record's issues are the request's)
  res = p.parse_request(R"({"model":"m","trace":{"a":null,"b":2}})", "", *rec);
  EXPECT_TRUE(res.ok());
  ASSERT_EQ(rec->request().metadata.size(), 1u);
  EXPECT_EQ(rec->request().metadata[0].key, "b");
}

// Duplicates are found by hash, not by a search per key: a body of repeated keys, at the
// largest max_metadata_keys, against a model of the rule (last value wins in the first one's
// place; a last null removes the key; a removed key given again comes back in its old place;
// the keys of a second `trace` object join the first's). No allocation once warm.
TEST(GatewayDuplicates, ManyRepeatedKeysFollowTheLastValueRuleWithoutAllocating) {
  GatewayConfig c;
  c.max_metadata_keys = 4096;
  GatewayParser p(c);
  auto rec = std::make_unique<GatewayRecord>(c);
  std::vector<std::string> order;           // keys in first-seen order
  std::vector<long long> value;             // their last value, -1: removed (null)
  std::string body = R"({"model":"m","trace":{)";
  bool first = true;
  auto put = [&](std::size_t k, long long v) {
    body += first ? "" : ",";
    first = false;
    body += "\"k" + std::to_string(k) + "\":" + (v < 0 ? std::string("null") : std::to_string(v));
    if (k >= order.size()) {
      if (v < 0) return;  // a null for a key never given: nothing
      order.push_back(std::string("k").append(std::to_string(k)));
      value.push_back(v);
    } else {
      value[k] = v;
    }
  };
  std::uint64_t x = 42;
  auto next = [&x] { return x = x * 6364136223846793005ULL + 1442695040888963407ULL, x >> 33; };
  for (std::size_t k = 0; k < 4000; ++k) put(k, static_cast<long long>(k));
  for (int i = 0; i < 50'000; ++i) {
    const std::size_t k = next() % 4000;
    put(k, next() % 3 == 0 ? -1 : static_cast<long long>(next() % 1000));
    if (i == 25'000) {  // a second trace object in the same body
      body += R"(},"trace":{)";
      first = true;
    }
  }
  body += "}}";
  for (int round = 0; round < 2; ++round) {
    test::AllocationScope counter;
    const auto res = p.parse_request(body, "", *rec);
    EXPECT_EQ(res.issues, issue_bit(ParseIssue::duplicate_key));
    if (round == 1) {
      EXPECT_EQ(counter.count(), 0u);
    }
  }
  const LlmRequest& r = rec->request();
  std::vector<std::pair<std::string, long long>> want;
  for (std::size_t i = 0; i < order.size(); ++i)
    if (value[i] >= 0) want.emplace_back(order[i], value[i]);
  ASSERT_EQ(r.metadata.size(), want.size() + 1);  // + the issues entry
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(r.metadata[i + 1].key, want[i].first) << i;
    EXPECT_EQ(r.metadata[i + 1].value.as_int64(), want[i].second) << want[i].first;
  }
}

// --- a byte order mark before a body; an x-session-id header that is not UTF-8 ----------------

TEST(GatewayBom, ABomBeforeAnyBodyIsSkippedAsBeforeAStream) {
  const std::string bom = "\xEF\xBB\xBF";
  GatewayParser p;
  auto rec = std::make_unique<GatewayRecord>();
  const std::string request = bom + R"({"model":"m","user":"u","messages":[]})";
  const std::string response = bom + R"({"id":"r","choices":[{"index":0,"message":{"content":"hi"}}]})";
  const std::string error = bom + R"({"error":{"message":"boom"}})";
  EXPECT_TRUE(p.parse_request(request, "", *rec).ok());
  EXPECT_EQ(rec->request().requested_model, "m");
  EXPECT_EQ(rec->request().user, "u");
  EXPECT_TRUE(p.parse_response(response, *rec).ok());
  EXPECT_EQ(rec->request().response_id, "r");
  EXPECT_EQ(rec->request().completion, "hi");
  EXPECT_TRUE(p.set_outcome(500, error, *rec).ok());
  EXPECT_EQ(rec->request().error_message, "boom");
  // A BOM alone is an empty body; half a BOM is not one (not JSON, flagged as before).
  EXPECT_TRUE(p.parse_request(bom, "", *rec).has(ParseIssue::request_not_json));
  EXPECT_TRUE(p.parse_request("\xEF\xBB{}", "", *rec).has(ParseIssue::request_invalid_utf8));
}

TEST(GatewaySessionHeader, AHeaderThatIsNotUtf8IsFlagged) {
  GatewayParser p;
  auto rec = std::make_unique<GatewayRecord>();
  for (const std::string& bad : {std::string("sess\xFF"), std::string("\xC3"), std::string("a\xED\xA0\x80")}) {
    const auto res = p.parse_request(R"({"model":"m","messages":[]})", bad, *rec);
    EXPECT_EQ(res.issues, issue_bit(ParseIssue::request_invalid_utf8));
    EXPECT_FALSE(res.detail.empty());
    EXPECT_EQ(rec->request().session_id, bad);  // as given; submit makes it valid
  }
  EXPECT_TRUE(p.parse_request(R"({"model":"m","messages":[]})", "sess-\xC3\xA9", *rec).ok());
}

// --- finish reasons: choice 0's, one list entry per choice, bodies and streams alike ----------

TEST(GatewayFinishReasons, TheFinishReasonIsChoiceZerosAndTheListHasNoEmptyEntries) {
  GatewayParser p;
  struct Case {
    const char* choices;  // the `choices` of a body; each element streamed as its own chunk too
    const char* reason;
    const char* reasons;
  };
  const Case cases[] = {
      {R"([{"index":0,"finish_reason":null},{"index":1,"finish_reason":"stop"}])", "", "unknown,stop"},
      {R"([{"index":0,"finish_reason":"stop"},{"index":1,"finish_reason":null},{"index":2,"finish_reason":"length"}])", "stop",
       "stop,unknown,length"},
      {R"([{"index":0,"finish_reason":"stop"},{"index":1,"finish_reason":null}])", "stop", "stop,unknown"},
      {R"([{"index":1,"finish_reason":"length"},{"index":0,"finish_reason":"stop"}])", "stop", "stop,length"},
      {R"([{"index":0,"finish_reason":"stop"}])", "stop", ""},
  };
  for (const Case& c : cases) {
    auto rec = std::make_unique<GatewayRecord>();
    const std::string body = std::string(R"({"id":"r","choices":)") + c.choices + "}";
    EXPECT_TRUE(p.parse_response(body, *rec).ok()) << c.choices;
    EXPECT_EQ(rec->request().finish_reason, c.reason) << c.choices;
    EXPECT_EQ(rec->request().finish_reasons, c.reasons) << c.choices;
    // The same choices streamed, one chunk per choice (with an empty delta each).
    simdjson::dom::parser json;
    std::string sse;
    for (auto choice : json.parse(std::string(c.choices)).get_array()) {
      std::string one = simdjson::minify(choice);
      one.insert(one.size() - 1, R"(,"delta":{})");
      sse += "data: {\"choices\":[" + one + "]}\n\n";
    }
    sse += "data: [DONE]\n\n";
    const auto srec = test::stream(p, sse, 7);
    EXPECT_EQ(srec->request().finish_reason, c.reason) << c.choices;
    EXPECT_EQ(srec->request().finish_reasons, c.reasons) << c.choices;
  }
}

}  // namespace
}  // namespace tracecast
