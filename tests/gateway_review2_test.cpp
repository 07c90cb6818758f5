// Tests for tracecast/gateway.h: the second November 2026 user review's low-severity kinds
// (empty SSE events, error-message limits, cut trace values, refusals, array content, stats).
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway_test_util.h"
#include "tracecast/gateway.h"

namespace tracecast {
namespace {

using test::stream;

const std::vector<std::size_t>& steps() {
  static const std::vector<std::size_t> v = {std::size_t{1} << 30, 64, 1};
  return v;
}

std::string chat_chunk(std::string_view delta, std::string_view finish = "null") {
  return "data: {\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":" + std::string(delta) +
         ",\"finish_reason\":" + std::string(finish) + "}]}\n\n";
}

class GatewayReview2 : public ::testing::Test {
 protected:
  GatewayParser parser_;
  std::unique_ptr<GatewayRecord> rec_ = std::make_unique<GatewayRecord>();
  LlmRequest& req() { return rec_->request(); }
};

// --- D9: an SSE event with empty data is not dispatched ----------------------------------------

TEST_F(GatewayReview2, AnEmptyDataEventIsNotDispatchedNorFlagged) {
  const std::string a = chat_chunk(R"({"content":"A"})");
  const std::string b = chat_chunk(R"({})", "\"stop\"");
  for (const std::string empty : {"data:\n\n", "data: \n\n", "data\n\n", "data:\r\n\r\n", "data\r\rdata: \r\r",
                                  ": comment\ndata:\n\n", "event: x\ndata\n\n"}) {
    for (const std::string& sse : {a + empty + b + "data: [DONE]\n\n", a + b + "data: [DONE]\n\n" + empty,
                                   a + b + empty}) {
      for (const std::size_t step : steps()) {
        GatewayParser parser;
        std::uint32_t issues = 0;
        const auto rec = stream(parser, sse, step, &issues);
        EXPECT_EQ(issues, 0u) << step << " " << sse;
        EXPECT_EQ(rec->issues(), 0u) << step << " " << sse;
        EXPECT_EQ(rec->request().completion, "A") << step;
        EXPECT_EQ(rec->request().finish_reason, "stop") << step;
        EXPECT_EQ(parser.stats().stream_chunks, sse.find("[DONE]") != std::string::npos ? 3u : 2u) << step << sse;
        EXPECT_EQ(parser.stats().count(ParseIssue::stream_chunk_invalid), 0u);
      }
    }
  }
}

TEST_F(GatewayReview2, AWhitespaceOrMultiLineEmptyEventIsStillFlagged) {
  // Data that is not empty but not JSON either ("\n" from two empty data lines, a tab) is a
  // chunk that could not be read: flagged, as before.
  const std::string a = chat_chunk(R"({"content":"A"})", "\"stop\"");
  for (const std::string odd : {"data:\ndata:\n\n", "data: \t\n\n"}) {
    for (const std::size_t step : steps()) {
      std::uint32_t issues = 0;
      const auto rec = stream(parser_, a + odd, step, &issues);
      EXPECT_EQ(issues, issue_bit(ParseIssue::stream_chunk_invalid)) << step;
      EXPECT_EQ(rec->request().completion, "A");
    }
  }
}


// --- D8 / D13: set_outcome holds a JSON error message to the limit; whitespace is empty --------

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

TEST_F(GatewayReview2, AnOutcomeErrorMessageIsHeldToTheLimitAsInAResponse) {
  for (const std::string& text : {repeat("é", 1000), std::string("a").append(repeat("é", 1000)), repeat("\\u00e9", 1000),
                                  repeat("x", 5000), std::string("ab").append(repeat("🚀", 400))}) {
    for (const std::string& body : {R"({"error":{"message":")" + text + "\"}}", R"({"message":")" + text + "\"}",
                                    R"({"detail":")" + text + "\"}", R"({"error":")" + text + "\"}"}) {
      auto rec = std::make_unique<GatewayRecord>();
      const auto res = parser_.set_outcome(500, body, *rec);
      const std::string_view m = rec->request().error_message;
      EXPECT_LE(m.size(), k_gateway_max_error_bytes) << body;
      EXPECT_GT(m.size(), k_gateway_max_error_bytes - 4) << body;
      EXPECT_TRUE(simdjson::validate_utf8(m.data(), m.size())) << body;
      EXPECT_EQ(res.issues, issue_bit(ParseIssue::completion_truncated)) << body;
      EXPECT_TRUE(rec->request().error);
      // The same body as a response gives the same message, also flagged.
      if (body.rfind(R"({"error":{)", 0) == 0) {
        auto resp = std::make_unique<GatewayRecord>();
        const auto r2 = parser_.parse_response(body, *resp);
        EXPECT_EQ(resp->request().error_message, m);
        EXPECT_NE(r2.issues & issue_bit(ParseIssue::completion_truncated), 0u);
      }
    }
  }
  // At the limit exactly: kept whole, not flagged.
  const std::string exact = repeat("é", k_gateway_max_error_bytes / 2);
  const std::string exact_body = R"({"error":{"message":")" + exact + "\"}}";  // the record's views point into it
  const auto res = parser_.set_outcome(500, exact_body, *rec_);
  EXPECT_EQ(res.issues, 0u);
  EXPECT_EQ(req().error_message, exact);
}

TEST_F(GatewayReview2, AWhitespaceOnlyErrorBodyIsAnEmptyOne) {
  for (const std::string body : {"\n\n", " ", "\r\n", "\t \r\n ", "\xEF\xBB\xBF\n"}) {
    auto rec = std::make_unique<GatewayRecord>();
    const auto res = parser_.set_outcome(503, body, *rec);
    EXPECT_EQ(res.issues, 0u);
    EXPECT_EQ(rec->issues(), 0u);
    EXPECT_TRUE(rec->request().error);
    EXPECT_EQ(rec->request().error_message, "HTTP 503");
    EXPECT_EQ(rec->request().http_status, 503);
    // A success status with a whitespace body is a success; status 0 with one is not a failure.
    auto ok = std::make_unique<GatewayRecord>();
    EXPECT_EQ(parser_.set_outcome(200, body, *ok).issues, 0u);
    EXPECT_FALSE(ok->request().error);
    auto none = std::make_unique<GatewayRecord>();
    EXPECT_EQ(parser_.set_outcome(0, body, *none).issues, 0u);
    EXPECT_FALSE(none->request().error);
  }
}


// --- D5: a nested trace value cut by a truncated body is closed where it was cut ----------------

// Every prefix of body: each trace value that is an object or array in the whole body (`nested`)
// and is kept is valid JSON; a cut body is flagged request_truncated.
void expect_nested_trace_values_are_json(GatewayParser& parser, const std::string& body,
                                         const std::vector<std::string>& nested) {
  simdjson::dom::parser dom;
  std::size_t kept_cut = 0;
  for (std::size_t n = 1; n <= body.size(); ++n) {
    auto rec = std::make_unique<GatewayRecord>();
    const auto res = parser.parse_request(std::string_view(body).substr(0, n), {}, *rec);
    if (n < body.size() && body.find_first_not_of(" \n\r\t", n) != std::string::npos) {
      EXPECT_NE(res.issues & (issue_bit(ParseIssue::request_truncated) | issue_bit(ParseIssue::request_not_json)), 0u) << n;
    }
    for (const std::string& key : nested) {
      const MetadataEntry* e = test::find_meta(rec->request(), key);
      if (e == nullptr) continue;
      ASSERT_EQ(e->value.type(), ValueType::string) << key;
      const std::string text(e->value.as_string());
      simdjson::dom::element el;
      EXPECT_EQ(dom.parse(text).get(el), simdjson::SUCCESS) << "prefix " << n << " key " << key << ": " << text;
      EXPECT_TRUE(el.is_object() || el.is_array()) << text;
      if (n < body.size()) ++kept_cut;
    }
  }
  EXPECT_GT(kept_cut, 0u);  // some prefixes did cut inside a kept nested value
}

TEST_F(GatewayReview2, ANestedTraceValueCutByATruncatedBodyIsClosedWhereItWasCut) {
  const std::string tr = R"({"model":"m","messages":[],"trace":{"a":"xy","b":{"c":[1,2)";
  const auto res = parser_.parse_request(tr, {}, *rec_);
  EXPECT_NE(res.issues & issue_bit(ParseIssue::request_truncated), 0u);
  EXPECT_EQ(test::meta_string(req(), "a"), "xy");
  EXPECT_EQ(test::meta_string(req(), "b"), R"({"c":[1]})");

  const std::string body =
      R"({"model":"m","messages":[{"role":"user","content":"hi"}],"trace":{"a":"xy","b":{"c":{}},)"
      R"("o":{"x":[1,{"y":"z\"q]}"}],"e":{},"u":"caf\u00e9 \ud83d\ude80"},"arr":[[1,2],["a\u00e9"],{"k":true},[]],)"
      R"("s":"{not json","deep":{"a":{"b":{"c":[null,1.5e3,"x",-0.25,false]}}},"n":12345,"last":[ "sp" , { } ]}})";
  expect_nested_trace_values_are_json(parser_, body, {"b", "o", "arr", "deep", "last"});
  expect_nested_trace_values_are_json(parser_, test::read_data("chat_request.json"), {"tags", "owner"});
}


// --- D12: a chat refusal is the completion when there is no content -----------------------------

TEST_F(GatewayReview2, AChatRefusalIsTheCompletionWhenThereIsNoContent) {
  for (const std::string msg : {R"({"role":"assistant","content":null,"refusal":"I cannot help with that."})",
                                R"({"role":"assistant","refusal":"I cannot help with that.","content":""})",
                                R"({"refusal":"I cannot help with that."})"}) {
    const std::string body = R"({"id":"c","model":"m","object":"chat.completion","choices":[{"index":0,"message":)" + msg +
                             R"(,"finish_reason":"stop"}]})";
    auto rec = std::make_unique<GatewayRecord>();
    EXPECT_TRUE(parser_.parse_response(body, *rec).ok()) << body;
    EXPECT_EQ(rec->request().completion, "I cannot help with that.") << body;
    EXPECT_EQ(rec->request().finish_reason, "stop");
  }
  // Content wins over a refusal given with it.
  EXPECT_TRUE(parser_.parse_response(R"({"choices":[{"message":{"content":"ok","refusal":"no"}}]})", *rec_).ok());
  EXPECT_EQ(req().completion, "ok");
  // Streamed: the refusal deltas are the text, as the body's refusal is.
  const std::string sse = chat_chunk(R"({"role":"assistant","content":null,"refusal":""})") +
                          chat_chunk(R"({"refusal":"I cannot "})") + chat_chunk(R"({"refusal":"help with that."})") +
                          chat_chunk("{}", "\"stop\"") + "data: [DONE]\n\n";
  for (const std::size_t step : steps()) {
    std::uint32_t issues = 0;
    const auto rec = stream(parser_, sse, step, &issues);
    EXPECT_EQ(issues, 0u);
    EXPECT_EQ(rec->request().completion, "I cannot help with that.") << step;
    EXPECT_NE(rec->request().first_token_unix_nano, 0u);
  }
}


// --- D11: array-valued chat content gives its text parts' text ---------------------------------

TEST_F(GatewayReview2, ArrayContentGivesTheTextOfItsTextParts) {
  const std::string thinking = R"({"type":"thinking","thinking":[{"type":"text","text":"hmm"}]})";
  const std::string sse =
      "data: {\"id\":\"c\",\"model\":\"magistral\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":[" +
      thinking + "]}}]}\n\n" + chat_chunk(R"({"content":"Answer"})") +
      chat_chunk(R"({"content":[{"type":"text","text":" more"},{"text":", é","type":"text"}]})") +
      chat_chunk(R"({"content":[]})", "\"stop\"") + "data: [DONE]\n\n";
  for (const std::size_t step : steps()) {
    std::uint32_t issues = 0;
    const auto rec = stream(parser_, sse, step, &issues);
    EXPECT_EQ(issues, 0u) << step;
    EXPECT_EQ(rec->request().completion, "Answer more, é") << step;
    EXPECT_EQ(rec->request().finish_reason, "stop");
  }
  const std::string body = R"({"id":"c","model":"magistral","choices":[{"index":0,"message":{"role":"assistant","content":[)" +
                           thinking + R"(,{"type":"text","text":"Answer"},{"type":"image_url","image_url":{"url":"x"}},)"
                           R"({"type":"text","text":" more \"q\""}]},"finish_reason":"stop"}]})";
  EXPECT_TRUE(parser_.parse_response(body, *rec_).ok());
  EXPECT_EQ(req().completion, "Answer more \"q\"");
  // Only thinking: no completion (as an Anthropic body of thinking alone).
  const std::string only_thinking = R"({"choices":[{"message":{"content":[)" + thinking + "]}}]}";
  EXPECT_TRUE(parser_.parse_response(only_thinking, *rec_).ok());
  EXPECT_EQ(req().completion, "");
}


// --- D10: GatewayStats::by_issue counts records, not calls ---------------------------------------

TEST_F(GatewayReview2, IssueStatsCountRecordsWhateverTheChunking) {
  const std::string bad = "data: {not json\n\n";
  const std::string sse = chat_chunk(R"({"content":"A"})") + bad + bad + bad + chat_chunk("{}", "\"stop\"") +
                          "data: [DONE]\n\n" + chat_chunk(R"({"content":"late"})");
  for (const std::size_t step : steps()) {
    GatewayParser parser;
    for (int i = 0; i < 3; ++i) {
      std::uint32_t issues = 0;
      const auto rec = stream(parser, sse, step, &issues);
      EXPECT_EQ(issues, issue_bit(ParseIssue::stream_chunk_invalid)) << step;
      EXPECT_EQ(rec->request().completion, "A");
    }
    EXPECT_EQ(parser.stats().count(ParseIssue::stream_chunk_invalid), 3u) << step;  // three records
  }
  // Two attempts on one record that both meet an issue: one request met it.
  GatewayParser parser;
  for (int attempt = 0; attempt < 2; ++attempt)
    EXPECT_FALSE(parser.parse_response(R"({"choices":[{"index":-1}]})", *rec_).ok());
  EXPECT_EQ(parser.stats().count(ParseIssue::field_wrong_type), 1u);
  // A reset record is a new request.
  rec_->reset();
  EXPECT_FALSE(parser.parse_response(R"({"choices":[{"index":-1}]})", *rec_).ok());
  EXPECT_EQ(parser.stats().count(ParseIssue::field_wrong_type), 2u);
}


// --- Minor mapping points ---------------------------------------------------------------------

TEST_F(GatewayReview2, MaxOutputTokensWinsOverMaxTokensInEitherOrder) {
  for (const std::string body : {R"({"model":"m","input":"hi","max_output_tokens":100,"max_tokens":7})",
                                 R"({"model":"m","input":"hi","max_tokens":7,"max_output_tokens":100})"}) {
    auto rec = std::make_unique<GatewayRecord>();
    EXPECT_TRUE(parser_.parse_request(body, {}, *rec).ok());
    EXPECT_EQ(rec->request().max_tokens, 100) << body;
  }
  for (const std::string body : {R"({"model":"m","messages":[],"max_completion_tokens":100,"max_tokens":7})",
                                 R"({"model":"m","messages":[],"max_tokens":7,"max_completion_tokens":100})",
                                 R"({"model":"m","messages":[],"max_tokens":100})"}) {
    auto rec = std::make_unique<GatewayRecord>();
    EXPECT_TRUE(parser_.parse_request(body, {}, *rec).ok());
    EXPECT_EQ(rec->request().max_tokens, 100) << body;
  }
}

TEST_F(GatewayReview2, AnEmptyStringInputWithInstructionsIsTheSystemMessageAlone) {
  EXPECT_TRUE(parser_.parse_request(R"({"model":"m","input":"","instructions":"S"})", {}, *rec_, GatewayApi::responses).ok());
  EXPECT_EQ(req().prompt, R"([{"role":"system","content":"S"}])");
  auto rec = std::make_unique<GatewayRecord>();
  EXPECT_TRUE(parser_.parse_request(R"({"model":"m","instructions":"S","input":"hi"})", {}, *rec).ok());
  EXPECT_EQ(rec->request().prompt, R"([{"role":"system","content":"S"},{"role":"user","content":"hi"}])");
}

TEST_F(GatewayReview2, AnEmptyToolCallListIsNoCompletionInABodyAsInAStream) {
  EXPECT_TRUE(parser_.parse_response(
      R"({"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[]},"finish_reason":"stop"}]})", *rec_).ok());
  EXPECT_EQ(req().completion, "");
  const std::string sse = chat_chunk(R"({"role":"assistant","content":null,"tool_calls":[]})", "\"stop\"") + "data: [DONE]\n\n";
  for (const std::size_t step : steps()) {
    const auto rec = stream(parser_, sse, step);
    EXPECT_EQ(rec->request().completion, "") << step;
  }
}

TEST_F(GatewayReview2, ACommaInAFinishReasonBecomesASemicolonEverywhere) {
  const std::string body =
      R"({"choices":[{"index":0,"message":{"content":"a"},"finish_reason":"content_filter,x"},)"
      R"({"index":1,"message":{"content":"b"},"finish_reason":"stop"}]})";
  EXPECT_TRUE(parser_.parse_response(body, *rec_).ok());
  EXPECT_EQ(req().finish_reason, "content_filter;x");
  EXPECT_EQ(req().finish_reasons, "content_filter;x,stop");
  auto one = std::make_unique<GatewayRecord>();
  EXPECT_TRUE(parser_.parse_response(R"({"choices":[{"message":{"content":"a"},"finish_reason":"a,b,c"}]})", *one).ok());
  EXPECT_EQ(one->request().finish_reason, "a;b;c");
  const std::string sse =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},\"finish_reason\":\"content_filter,x\"}]}\n\n"
      "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"b\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
  for (const std::size_t step : steps()) {
    const auto rec = stream(parser_, sse, step);
    EXPECT_EQ(rec->request().finish_reason, "content_filter;x") << step;
    EXPECT_EQ(rec->request().finish_reasons, "content_filter;x,stop") << step;
  }
  const std::string anth =
      "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"content\":[]}}\n\n"
      "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end,turn\"}}\n\n"
      "data: {\"type\":\"message_stop\"}\n\n";
  for (const std::size_t step : steps()) {
    const auto rec = stream(parser_, anth, step);
    EXPECT_EQ(rec->request().finish_reason, "end;turn") << step;
  }
}

}  // namespace
}  // namespace tracecast
