// Tests for tracecast/gateway.h: raw request/response bodies -> LlmRequest.
#include "tracecast/gateway.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "alloc_counter.h"
#include "gateway_test_util.h"
#include "tracecast/ingest_ring.h"
#include "tracecast/mapping.h"

namespace tracecast {
namespace {

using test::find_attr;
using test::find_meta;
using test::meta_string;
using test::read_data;

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

class Gateway : public ::testing::Test {
 protected:
  GatewayParser parser_;
  std::unique_ptr<GatewayRecord> rec_ = std::make_unique<GatewayRecord>();
  LlmRequest& req() { return rec_->request(); }
};

// --- the reference's example ----------------------------------------------------------------

TEST_F(Gateway, ReferenceExampleRequestBecomesExactlyTheExpectedLlmRequest) {
  const std::string body = read_data("reference_example_request.json");
  const auto r = parser_.parse_request(body, {}, *rec_);
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(req().requested_model, "openai/gpt-4o");
  EXPECT_EQ(req().provider, "openai");
  EXPECT_EQ(req().operation, "chat");
  EXPECT_EQ(req().prompt, R"([{"role": "user", "content": "Analyze this..."}])");
  EXPECT_EQ(req().user, "user_12345");
  EXPECT_EQ(req().session_id, "session_abc");
  ASSERT_EQ(req().metadata.size(), 4u);
  EXPECT_EQ(req().metadata[0].key, "trace_id");
  EXPECT_EQ(req().metadata[0].value.as_string(), "monitoring_001");
  EXPECT_EQ(req().metadata[1].key, "trace_name");
  EXPECT_EQ(req().metadata[1].value.as_string(), "Analysis Pipeline");
  EXPECT_EQ(req().metadata[2].key, "generation_name");
  EXPECT_EQ(req().metadata[2].value.as_string(), "Detection");
  EXPECT_EQ(req().metadata[3].key, "environment");
  EXPECT_EQ(req().metadata[3].value.as_string(), "production");
  for (const auto& e : req().metadata) EXPECT_EQ(e.value.type(), ValueType::string);
  EXPECT_TRUE(std::isnan(req().temperature));
  EXPECT_TRUE(std::isnan(req().top_p));
  EXPECT_EQ(req().max_tokens, -1);
  EXPECT_FALSE(req().stream);
  EXPECT_FALSE(req().error);
  // Strings without escapes are views into the caller's body: no copy.
  EXPECT_GE(req().requested_model.data(), body.data());
  EXPECT_LT(req().requested_model.data(), body.data() + body.size());
  EXPECT_GE(req().prompt.data(), body.data());
}

TEST_F(Gateway, ReferenceExampleBecomesTheSpansTheReferenceTablesDescribe) {
  const std::string body = read_data("reference_example_request.json");
  ASSERT_TRUE(parser_.parse_request(body, {}, *rec_).ok());
  const std::string response = read_data("chat_response.json");
  ASSERT_TRUE(parser_.parse_response(response, *rec_).ok());
  req().account = "acct_1";
  req().request_id = "req_0123456789abcdefghij";
  req().start_unix_nano = 1'000'000'000;
  req().end_unix_nano = 7'000'000'000;
  ASSERT_TRUE(parser_.set_outcome(200, {}, *rec_).ok());

  IdGenerator ids(7);
  auto mapped = std::make_unique<MappedRequest>();
  map_request(req(), MappingConfig{}, ids, *mapped);
  const auto spans = mapped->spans();
  ASSERT_EQ(spans.size(), 2u);  // root (trace_name) + generation (generation_name)
  EXPECT_EQ(spans[0].name, "Analysis Pipeline");
  EXPECT_FALSE(spans[0].parent_span_id.valid());
  EXPECT_EQ(spans[1].name, "Detection");
  EXPECT_EQ(spans[1].parent_span_id, spans[0].span_id);
  EXPECT_EQ(spans[1].kind, SpanKind::client);
  EXPECT_EQ(spans[1].status_code, StatusCode::unset);
  const TraceId expected = derive_trace_id("acct_1", "monitoring_001");
  EXPECT_EQ(spans[0].trace_id, expected);
  EXPECT_EQ(spans[1].trace_id, expected);

  const SpanView& gen = spans[1];
  auto str = [&](std::string_view key) -> std::string_view {
    const Attribute* a = find_attr(gen, key);
    return a != nullptr && a->value.type() == ValueType::string ? a->value.as_string() : "<missing>";
  };
  EXPECT_EQ(str("gen_ai.operation.name"), "chat");
  EXPECT_EQ(str("gen_ai.request.model"), "openai/gpt-4o");
  EXPECT_EQ(str("gen_ai.response.model"), "anthropic/claude-3.5-sonnet-20241022");
  EXPECT_EQ(str("gen_ai.response.finish_reason"), "stop");
  EXPECT_EQ(str("user.id"), "user_12345");
  EXPECT_EQ(str("session.id"), "session_abc");
  EXPECT_EQ(str("trace.metadata.environment"), "production");
  EXPECT_EQ(str("trace.metadata.trace_name"), "Analysis Pipeline");
  const Attribute* in = find_attr(gen, "gen_ai.usage.input_tokens");
  ASSERT_NE(in, nullptr);
  EXPECT_EQ(in->value.as_int64(), 412);
  const Attribute* outp = find_attr(gen, "gen_ai.usage.output_tokens");
  ASSERT_NE(outp, nullptr);
  EXPECT_EQ(outp->value.as_int64(), 87);
  // The response body named its provider; it wins over the model slug.
  EXPECT_EQ(str("gen_ai.system"), "Anthropic");
  bool resource_ok = false;
  for (const auto& a : mapped->resource().attributes)
    if (a.key == "openrouter.trace.id") resource_ok = a.value.as_string() == "req_0123456789abcdefghij";
  EXPECT_TRUE(resource_ok);
}

// --- requests field by field -----------------------------------------------------------------

TEST_F(Gateway, ChatRequestFieldsAreReadFieldByField) {
  const std::string body = read_data("chat_request.json");
  const auto r = parser_.parse_request(body, {}, *rec_);
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(req().requested_model, "anthropic/claude-3.5-sonnet");
  EXPECT_EQ(req().provider, "anthropic");  // `provider` is a preferences object: slug used
  EXPECT_DOUBLE_EQ(req().temperature, 0.2);
  EXPECT_DOUBLE_EQ(req().top_p, 0.95);
  EXPECT_EQ(req().max_tokens, 1024);
  EXPECT_FALSE(req().stream);
  EXPECT_EQ(req().user, "user_7731");
  EXPECT_EQ(req().session_id, "sess-2024-11-27-a");
  // messages: the raw array text, escapes untouched.
  ASSERT_FALSE(req().prompt.empty());
  EXPECT_EQ(req().prompt.front(), '[');
  EXPECT_EQ(req().prompt.back(), ']');
  EXPECT_NE(req().prompt.find(R"(C:\\src\\main.cpp)"), std::string_view::npos);
  EXPECT_NE(req().prompt.find("東京"), std::string_view::npos);
  EXPECT_EQ(body.find(req().prompt), static_cast<std::size_t>(req().prompt.data() - body.data()));

  EXPECT_EQ(meta_string(req(), "trace_id"), "review_run_42");
  EXPECT_EQ(meta_string(req(), "span_name"), "Static Checks");
  EXPECT_EQ(meta_string(req(), "environment"), "staging");
  const MetadataEntry* attempt = find_meta(req(), "attempt");
  ASSERT_NE(attempt, nullptr);
  ASSERT_EQ(attempt->value.type(), ValueType::int64);
  EXPECT_EQ(attempt->value.as_int64(), 3);
  ASSERT_EQ(find_meta(req(), "priority")->value.type(), ValueType::int64);
  EXPECT_EQ(find_meta(req(), "priority")->value.as_int64(), -7);
  ASSERT_EQ(find_meta(req(), "sampled")->value.type(), ValueType::boolean);
  EXPECT_TRUE(find_meta(req(), "sampled")->value.as_bool());
  ASSERT_EQ(find_meta(req(), "score")->value.type(), ValueType::float64);
  EXPECT_DOUBLE_EQ(find_meta(req(), "score")->value.as_double(), 0.875);
  ASSERT_EQ(find_meta(req(), "big")->value.type(), ValueType::float64);  // above int64
  EXPECT_DOUBLE_EQ(find_meta(req(), "big")->value.as_double(), 18446744073709551615.0);
  // null is left out (a strict receiver refuses an attribute with no value), and counted.
  EXPECT_EQ(find_meta(req(), "nothing"), nullptr);
  EXPECT_EQ(parser_.stats().metadata_nulls_dropped, 1u);
  // Nested values: compact JSON text.
  EXPECT_EQ(meta_string(req(), "tags"), R"(["ci","nightly"])");
  EXPECT_EQ(meta_string(req(), "owner"), R"({"team":"platform","oncall":["ana","bo"]})");
  // Escaped keys and values are unescaped.
  EXPECT_EQ(meta_string(req(), "quote\"key"), "escaped \"value\" here");
  EXPECT_EQ(meta_string(req(), "café"), "unicode key");
  EXPECT_EQ(req().metadata.size(), 14u);  // 15 keys, the null one left out
}

TEST_F(Gateway, ToolsRequestReadsMaxCompletionTokensAndIntegerTemperature) {
  const std::string body = read_data("tools_request.json");
  const auto r = parser_.parse_request(body, {}, *rec_);
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(req().requested_model, "openai/gpt-4o-mini");
  EXPECT_EQ(req().provider, "openai");
  EXPECT_EQ(req().max_tokens, 256);
  EXPECT_DOUBLE_EQ(req().temperature, 0.0);
  EXPECT_EQ(req().user, "user_0042");
  EXPECT_TRUE(req().metadata.empty());
}

TEST_F(Gateway, SessionHeaderOverridesTheBodySessionId) {
  const std::string body = read_data("reference_example_request.json");
  ASSERT_TRUE(parser_.parse_request(body, "hdr-session-9", *rec_).ok());
  EXPECT_EQ(req().session_id, "hdr-session-9");
  ASSERT_TRUE(parser_.parse_request(R"({"model":"m"})", "only-header", *rec_).ok());
  EXPECT_EQ(req().session_id, "only-header");
  ASSERT_TRUE(parser_.parse_request(body, {}, *rec_).ok());
  EXPECT_EQ(req().session_id, "session_abc");
}

TEST_F(Gateway, UnicodeAndEscapesAreUnescapedIntoOwnedStorage) {
  const std::string body =
      R"({"model":"mistralai/mistral-large","user":"us\u00e9r_\ud83d\ude80_東京","session_id":"tab\tnew\nline",)"
      R"("messages":[{"role":"user","content":"emoji 😀 and \"quotes\""}],"trace":{"name":"Zürich 🚀"}})";
  const auto r = parser_.parse_request(body, {}, *rec_);
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(req().user, "usér_🚀_東京");
  EXPECT_EQ(req().session_id, "tab\tnew\nline");
  EXPECT_EQ(meta_string(req(), "name"), "Zürich 🚀");
  EXPECT_EQ(req().provider, "mistralai");
  // The escaped user is not a view into the body; the plain name is.
  EXPECT_TRUE(req().user.data() < body.data() || req().user.data() >= body.data() + body.size());
  const auto name = meta_string(req(), "name");
  EXPECT_TRUE(name.data() >= body.data() && name.data() < body.data() + body.size());
}

TEST_F(Gateway, MissingFieldsLeaveDefaultsWithoutIssues) {
  const auto r = parser_.parse_request("{}", {}, *rec_);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(req().requested_model, "");
  EXPECT_EQ(req().provider, "");
  EXPECT_EQ(req().operation, "chat");
  EXPECT_EQ(req().prompt, "");
  EXPECT_TRUE(req().metadata.empty());
  EXPECT_EQ(req().max_tokens, -1);
  const auto r2 = parser_.parse_response("{}", *rec_);
  EXPECT_TRUE(r2.ok());
  EXPECT_EQ(req().input_tokens, -1);
  EXPECT_TRUE(std::isnan(req().cost));
  // null is "not given", not a wrong type.
  const auto r3 = parser_.parse_request(
      R"({"model":null,"user":null,"temperature":null,"max_tokens":null,"trace":null,"stream":null})", {}, *rec_);
  EXPECT_TRUE(r3.ok()) << r3.detail;
  EXPECT_EQ(req().requested_model, "");
}

TEST_F(Gateway, WrongTypesAreFlaggedAndTheOtherFieldsStillRead) {
  const std::string body =
      R"({"model":5,"user":"u1","temperature":"hot","max_tokens":1.5,"top_p":0.5,"stream":"yes",)"
      R"("session_id":["s"],"trace":[1,2],"messages":[{"role":"user","content":"hi"}]})";
  const auto r = parser_.parse_request(body, {}, *rec_);
  EXPECT_TRUE(r.has(ParseIssue::field_wrong_type));
  EXPECT_EQ(r.issues, issue_bit(ParseIssue::field_wrong_type));
  EXPECT_EQ(r.detail, "request: model is not a string");
  EXPECT_EQ(req().requested_model, "");
  EXPECT_EQ(req().user, "u1");
  EXPECT_TRUE(std::isnan(req().temperature));
  EXPECT_EQ(req().max_tokens, -1);
  EXPECT_DOUBLE_EQ(req().top_p, 0.5);
  EXPECT_FALSE(req().stream);
  EXPECT_EQ(req().session_id, "");
  EXPECT_EQ(req().prompt, R"([{"role":"user","content":"hi"}])");
  // The span says so: the issues entry is the only metadata.
  ASSERT_EQ(req().metadata.size(), 1u);
  EXPECT_EQ(req().metadata[0].key, "tracecast.parse_issues");
  EXPECT_EQ(req().metadata[0].value.as_string(), "field_wrong_type");
  EXPECT_EQ(parser_.stats().count(ParseIssue::field_wrong_type), 1u);
}

TEST_F(Gateway, TooManyMetadataKeysKeepsTheFirstOnesAndFlags) {
  GatewayConfig config;
  config.max_metadata_keys = 2;
  GatewayParser parser(config);
  auto rec = std::make_unique<GatewayRecord>(config);
  const auto r = parser.parse_request(R"({"model":"a/b","trace":{"k1":"v1","k2":2,"k3":"v3","k4":4}})", {}, *rec);
  EXPECT_EQ(r.issues, issue_bit(ParseIssue::too_many_metadata_keys));
  ASSERT_EQ(rec->request().metadata.size(), 3u);  // the issues entry (first) + 2 kept
  EXPECT_EQ(rec->request().metadata[0].value.as_string(), "too_many_metadata_keys");
  EXPECT_EQ(rec->request().metadata[1].key, "k1");
  EXPECT_EQ(rec->request().metadata[2].key, "k2");
  EXPECT_EQ(rec->request().requested_model, "a/b");
}

TEST_F(Gateway, HugeMessagesAreKeptAsAViewWithoutCopy) {
  std::string content(4u << 20, 'x');
  for (std::size_t i = 0; i < content.size(); i += 97) content[i] = ' ';
  const std::string body = R"({"model":"google/gemini-pro-1.5","messages":[{"role":"user","content":")" +
                           content + R"("}],"user":"big_user"})";
  const auto r = parser_.parse_request(body, {}, *rec_);
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(req().prompt.size(), content.size() + 30);
  EXPECT_EQ(req().prompt.data(), body.data() + body.find('[', 10));
  EXPECT_EQ(req().user, "big_user");
  // The second time the buffers are warm: no allocation for a body of the same size.
  tracecast::test::AllocationScope scope;
  const auto r2 = parser_.parse_request(body, {}, *rec_);
  EXPECT_TRUE(r2.ok());
  EXPECT_EQ(scope.count(), 0u);
}

TEST_F(Gateway, BodyOverTheLimitIsNotParsedButStillTraced) {
  GatewayConfig config;
  config.max_body_bytes = 64;
  config.max_completion_bytes = 64;
  config.max_stream_line_bytes = 64;
  GatewayParser parser(config);
  auto rec = std::make_unique<GatewayRecord>(config);
  const std::string body = R"({"model":"openai/gpt-4o","messages":[{"role":"user","content":"0123456789012345678"}]})";
  const auto r = parser.parse_request(body, "sess", *rec);
  EXPECT_EQ(r.issues, issue_bit(ParseIssue::body_too_large));
  EXPECT_EQ(rec->request().prompt, "");
  EXPECT_EQ(rec->request().session_id, "sess");
  EXPECT_EQ(parser.stats().count(ParseIssue::body_too_large), 1u);
}

// --- malformed requests ----------------------------------------------------------------------

TEST_F(Gateway, TruncatedRequestKeepsTheFieldsBeforeTheCutAtEveryCutPoint) {
  const std::string full = read_data("chat_request.json");
  const std::size_t model_end = full.find("\"anthropic/claude-3.5-sonnet\"") + 29;
  const std::size_t user_end = full.find("\"user_7731\"") + 11;
  for (std::size_t cut = 1; cut < full.size() - 2; ++cut) {
    auto rec = std::make_unique<GatewayRecord>();
    const std::string body = full.substr(0, cut);  // exact size: ASan sees any overread
    const auto r = parser_.parse_request(body, {}, *rec);
    const LlmRequest& q = rec->request();
    ASSERT_FALSE(r.ok()) << "cut " << cut;
    EXPECT_TRUE(r.has(ParseIssue::request_truncated) || r.has(ParseIssue::request_not_json)) << cut;
    if (cut > model_end) {
      EXPECT_EQ(q.requested_model, "anthropic/claude-3.5-sonnet") << "cut " << cut;
    }
    if (cut > user_end) {
      EXPECT_EQ(q.user, "user_7731") << "cut " << cut;
    }
    // Every view stays inside the body (or the record) and is valid UTF-8.
    for (std::string_view v : {q.requested_model, q.user, q.session_id, q.prompt, q.provider}) {
      EXPECT_TRUE(valid_utf8(v)) << "cut " << cut;
      if (!v.empty() && v.data() >= body.data() && v.data() < body.data() + body.size()) {
        EXPECT_LE(v.data() + v.size(), body.data() + body.size()) << "cut " << cut;
      }
    }
    for (const auto& e : q.metadata) {
      EXPECT_TRUE(valid_utf8(e.key));
      if (e.value.type() == ValueType::string) {
        EXPECT_TRUE(valid_utf8(e.value.as_string()));
      }
    }
  }
}

TEST_F(Gateway, TruncatedRequestSaysSoInTheSpanMetadata) {
  const std::string full = read_data("reference_example_request.json");
  const std::string body = full.substr(0, full.find("\"environment\""));
  const auto r = parser_.parse_request(body, {}, *rec_);
  EXPECT_EQ(r.issues, issue_bit(ParseIssue::request_truncated));
  EXPECT_EQ(r.detail, "request: body ends early (fields before the cut kept)");
  EXPECT_EQ(req().requested_model, "openai/gpt-4o");
  EXPECT_EQ(meta_string(req(), "trace_id"), "monitoring_001");
  EXPECT_EQ(meta_string(req(), "generation_name"), "Detection");
  EXPECT_EQ(meta_string(req(), "tracecast.parse_issues"), "request_truncated");
  EXPECT_EQ(parser_.stats().count(ParseIssue::request_truncated), 1u);
}

TEST_F(Gateway, NonUtf8RequestIsReadWithTheBadBytesReplaced) {
  std::string body = R"({"model":"openai/gpt-4o","user":"bad_X_user","session_id":"s1"})";
  body[body.find('X')] = static_cast<char>(0xFF);
  const auto r = parser_.parse_request(body, {}, *rec_);
  EXPECT_EQ(r.issues, issue_bit(ParseIssue::request_invalid_utf8));
  EXPECT_EQ(req().requested_model, "openai/gpt-4o");
  EXPECT_EQ(req().user, "bad_?_user");
  EXPECT_EQ(req().session_id, "s1");
  EXPECT_TRUE(valid_utf8(req().user));
}

TEST_F(Gateway, NotJsonRequestIsStillTracedWithItsModelWhenFindable) {
  auto r = parser_.parse_request("<html>nope</html>", {}, *rec_);
  EXPECT_EQ(r.issues, issue_bit(ParseIssue::request_not_json));
  EXPECT_EQ(req().requested_model, "");
  // A raw control character inside a string makes the whole body invalid JSON; the model is
  // still found by the tolerant scan.
  r = parser_.parse_request("{\"model\": \"openai/gpt-4o\", \"user\": \"a\x01b\"}", {}, *rec_);
  EXPECT_TRUE(r.has(ParseIssue::request_not_json));
  EXPECT_EQ(req().requested_model, "openai/gpt-4o");
  EXPECT_EQ(req().provider, "openai");
  r = parser_.parse_request("", {}, *rec_);
  EXPECT_TRUE(r.has(ParseIssue::request_not_json));
  r = parser_.parse_request("[1,2,3]", {}, *rec_);
  EXPECT_TRUE(r.has(ParseIssue::request_not_json));
  r = parser_.parse_request(R"({"model":"a/b"} trailing)", {}, *rec_);
  EXPECT_TRUE(r.has(ParseIssue::request_not_json));
  EXPECT_EQ(req().requested_model, "a/b");
}

// --- non-streamed responses ------------------------------------------------------------------

TEST_F(Gateway, ChatResponseFieldsAreReadFieldByField) {
  const std::string request = read_data("chat_request.json");
  ASSERT_TRUE(parser_.parse_request(request, {}, *rec_).ok());
  const std::string body = read_data("chat_response.json");
  const auto r = parser_.parse_response(body, *rec_);
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(req().response_id, "gen-1732680000-AbCdEfGhIjKlMnOpQrSt");
  EXPECT_EQ(req().response_model, "anthropic/claude-3.5-sonnet-20241022");
  EXPECT_EQ(req().provider, "Anthropic");
  EXPECT_EQ(req().finish_reason, "stop");
  EXPECT_EQ(req().input_tokens, 412);
  EXPECT_EQ(req().output_tokens, 87);
  EXPECT_DOUBLE_EQ(req().cost, 0.002541);
  EXPECT_EQ(req().completion,
            "Use a wider type:\n\n```c\nlong long add(int a, int b) { return (long long)a + b; }\n```\n\n"
            "\"__builtin_add_overflow\" is in GCC ≥ 5 and Clang ≥ 3.8. Zürich 東京 🚀");
  EXPECT_FALSE(req().error);
  // The request side is untouched by the response.
  EXPECT_EQ(req().requested_model, "anthropic/claude-3.5-sonnet");
  EXPECT_EQ(meta_string(req(), "environment"), "staging");
}

TEST_F(Gateway, ToolCallsResponseKeepsTheToolCallsAsTheCompletion) {
  const std::string body = read_data("tools_response.json");
  const auto r = parser_.parse_response(body, *rec_);
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(req().finish_reason, "tool_calls");
  EXPECT_EQ(req().response_model, "gpt-4o-mini-2024-07-18");
  EXPECT_EQ(req().response_id, "chatcmpl-AXyZ123toolcalls");
  EXPECT_EQ(req().input_tokens, 81);
  EXPECT_EQ(req().output_tokens, 52);
  EXPECT_TRUE(std::isnan(req().cost));  // OpenAI bodies carry no cost
  ASSERT_FALSE(req().completion.empty());
  EXPECT_EQ(req().completion.substr(0, 15), R"([{"id":"call_ab)");
  EXPECT_NE(req().completion.find(R"(\"city\":\"Berlin\")"), std::string_view::npos);
  EXPECT_EQ(req().completion.back(), ']');
}

TEST_F(Gateway, ResponseWithWrongTypesAndTruncationKeepsWhatItCan) {
  auto r = parser_.parse_response(
      R"({"id":7,"model":"m1","usage":{"prompt_tokens":"ten","completion_tokens":3,"cost":"free"},"choices":{}})",
      *rec_);
  EXPECT_EQ(r.issues, issue_bit(ParseIssue::field_wrong_type));
  EXPECT_EQ(req().response_id, "");
  EXPECT_EQ(req().response_model, "m1");
  EXPECT_EQ(req().input_tokens, -1);
  EXPECT_EQ(req().output_tokens, 3);
  const std::string full = read_data("chat_response.json");
  const std::string cut = full.substr(0, full.find("\"usage\""));
  r = parser_.parse_response(cut, *rec_);
  EXPECT_EQ(r.issues, issue_bit(ParseIssue::response_truncated));
  EXPECT_EQ(req().finish_reason, "stop");
  EXPECT_EQ(req().response_model, "anthropic/claude-3.5-sonnet-20241022");
  EXPECT_EQ(req().input_tokens, -1);
  r = parser_.parse_response("upstream timeout", *rec_);
  EXPECT_EQ(r.issues, issue_bit(ParseIssue::response_not_json));
}

TEST_F(Gateway, ErrorObjectInA200ResponseMarksTheRequestFailed) {
  const std::string body = read_data("error_429_openrouter.json");
  const auto r = parser_.parse_response(body, *rec_);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(req().error);
  EXPECT_EQ(req().error_message, "Rate limit exceeded: free-models-per-min. ");
}

// --- outcome ---------------------------------------------------------------------------------

TEST_F(Gateway, ErrorStatusTakesTheProviderMessage) {
  const std::string e429 = read_data("error_429_openrouter.json");
  const std::string e400 = read_data("error_400_openai.json");
  const std::string e422 = read_data("error_422_detail.json");
  auto r = parser_.set_outcome(429, e429, *rec_);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(req().error);
  EXPECT_EQ(req().http_status, 429);
  EXPECT_EQ(req().error_message, "Rate limit exceeded: free-models-per-min. ");

  rec_->reset();
  r = parser_.set_outcome(400, e400, *rec_);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(req().error_message.substr(0, 47), "This model's maximum context length is 128000 t");
  EXPECT_EQ(req().http_status, 400);

  rec_->reset();
  r = parser_.set_outcome(422, e422, *rec_);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(req().error_message, "Input should be a valid dictionary or object to extract fields from");

  rec_->reset();
  r = parser_.set_outcome(500, R"({"error":"upstream \"exploded\""})", *rec_);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(req().error_message, "upstream \"exploded\"");
}

TEST_F(Gateway, ErrorBodyThatIsNotJsonKeepsItsTextAndFlags) {
  const std::string html = read_data("error_502_html.txt");
  const auto r = parser_.set_outcome(502, html, *rec_);
  EXPECT_EQ(r.issues, issue_bit(ParseIssue::error_body_unreadable));
  EXPECT_TRUE(req().error);
  EXPECT_EQ(req().error_message.substr(0, 6), "<html>");
  EXPECT_NE(req().error_message.find("502 Bad Gateway"), std::string_view::npos);

  GatewayConfig config;
  config.max_error_text_bytes = 16;
  GatewayParser parser(config);
  auto rec = std::make_unique<GatewayRecord>(config);
  std::string text = "ééééééééé\xFF tail";  // 18 bytes of é then a bad byte
  (void)parser.set_outcome(503, text, *rec);
  EXPECT_EQ(rec->request().error_message, "éééééééé");  // cut at 16 bytes, on a boundary
}

TEST_F(Gateway, OutcomeStatusDecidesTheError) {
  auto r = parser_.set_outcome(503, {}, *rec_);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(req().error);
  EXPECT_EQ(req().error_message, "HTTP 503");
  rec_->reset();
  r = parser_.set_outcome(200, {}, *rec_);
  EXPECT_FALSE(req().error);
  EXPECT_EQ(req().http_status, 200);
  rec_->reset();
  (void)parser_.set_outcome(0, "connection reset by peer", *rec_);
  EXPECT_TRUE(req().error);
  EXPECT_EQ(req().error_message, "connection reset by peer");
}

// --- streamed responses ----------------------------------------------------------------------

void expect_stream_result(const LlmRequest& q) {
  EXPECT_EQ(q.response_id, "gen-1732680200-stream");
  EXPECT_EQ(q.response_model, "openai/gpt-4o-2024-08-06");
  EXPECT_EQ(q.provider, "OpenAI");
  EXPECT_EQ(q.finish_reason, "stop");
  EXPECT_EQ(q.completion, "Hello, \"world\"\nZürich 東京 🚀");
  EXPECT_EQ(q.input_tokens, 25);
  EXPECT_EQ(q.output_tokens, 9);
  EXPECT_DOUBLE_EQ(q.cost, 0.0001525);
  EXPECT_FALSE(q.error);
}

TEST_F(Gateway, StreamedResponseWithUsageIsReadWhateverTheChunking) {
  const std::string sse = read_data("stream_response.sse");
  // Whole, byte by byte (splitting every line and every UTF-8 sequence), and odd sizes.
  for (std::size_t step : {sse.size(), std::size_t{1}, std::size_t{2}, std::size_t{7}, std::size_t{61},
                           std::size_t{300}}) {
    auto rec = std::make_unique<GatewayRecord>();
    parser_.begin_stream(*rec);
    std::uint64_t now = 100;
    for (std::size_t i = 0; i < sse.size(); i += step) {
      const auto r = parser_.feed_stream(std::string_view(sse).substr(i, step), now++, *rec);
      ASSERT_TRUE(r.ok()) << "step " << step << ": " << r.detail;
    }
    const auto r = parser_.finish_stream(*rec);
    ASSERT_TRUE(r.ok()) << "step " << step << ": " << r.detail;
    expect_stream_result(rec->request());
    // First token: the feed that completed the "Hello" line (the empty first delta is not one).
    const std::size_t hello_end = sse.find('\n', sse.find("Hello"));
    EXPECT_EQ(rec->request().first_token_unix_nano, 100 + hello_end / step) << "step " << step;
  }
}

TEST_F(Gateway, StreamWithCrLfLinesAndNoFinalNewlineIsRead) {
  std::string sse = read_data("stream_response.sse");
  std::string crlf;
  for (char c : sse) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  crlf.resize(crlf.size() - 4);  // "[DONE]" without its line ends
  parser_.begin_stream(*rec_);
  EXPECT_TRUE(parser_.feed_stream(crlf, 1, *rec_).ok());
  EXPECT_TRUE(parser_.finish_stream(*rec_).ok());
  expect_stream_result(req());
}

TEST_F(Gateway, StreamCutBeforeTheEndIsFlaggedIncomplete) {
  const std::string sse = read_data("stream_response.sse");
  parser_.begin_stream(*rec_);
  (void)parser_.feed_stream(sse.substr(0, sse.find("\"finish_reason\":\"stop\"") - 40), 5, *rec_);
  const auto r = parser_.finish_stream(*rec_);
  EXPECT_TRUE(r.has(ParseIssue::stream_incomplete));
  EXPECT_TRUE(r.has(ParseIssue::stream_chunk_invalid));  // the half line at the end
  EXPECT_EQ(req().completion, "Hello, \"world\"\nZürich 東京 🚀");
  EXPECT_EQ(req().finish_reason, "");
  EXPECT_EQ(req().input_tokens, -1);
  EXPECT_NE(rec_->issues() & issue_bit(ParseIssue::stream_incomplete), 0u);
}

TEST_F(Gateway, StreamChunkThatIsNotJsonIsSkippedAndCounted) {
  const std::string sse =
      "data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
      "data: {not json\n\n"
      "data: {\"choices\":[{\"delta\":{\"content\":\"b\"},\"finish_reason\":\"length\"}]}\n\n"
      "data: [DONE]\n\n";
  parser_.begin_stream(*rec_);
  const auto r = parser_.feed_stream(sse, 0, *rec_);
  EXPECT_EQ(r.issues, issue_bit(ParseIssue::stream_chunk_invalid));
  EXPECT_TRUE(parser_.finish_stream(*rec_).ok());
  EXPECT_EQ(req().completion, "ab");
  EXPECT_EQ(req().finish_reason, "length");
  EXPECT_EQ(req().first_token_unix_nano, 0u);  // clock 0: unknown
  EXPECT_EQ(parser_.stats().count(ParseIssue::stream_chunk_invalid), 1u);
}

TEST_F(Gateway, StreamContentOverTheLimitIsCutAtAUtf8Boundary) {
  GatewayConfig config;
  config.max_completion_bytes = 10;
  GatewayParser parser(config);
  auto rec = std::make_unique<GatewayRecord>(config);
  parser.begin_stream(*rec);
  auto r = parser.feed_stream("data: {\"choices\":[{\"delta\":{\"content\":\"abcdefgh\"}}]}\n\n", 1, *rec);
  EXPECT_TRUE(r.ok());
  r = parser.feed_stream("data: {\"choices\":[{\"delta\":{\"content\":\"ü🚀\"},\"finish_reason\":\"length\"}]}\n\n", 2, *rec);
  EXPECT_EQ(r.issues, issue_bit(ParseIssue::completion_truncated));
  r = parser.feed_stream("data: {\"choices\":[{\"delta\":{\"content\":\"more\"}}]}\n\ndata: [DONE]\n\n", 3, *rec);
  EXPECT_TRUE(r.ok());  // flagged once per request
  (void)parser.finish_stream(*rec);
  EXPECT_EQ(rec->request().completion, "abcdefghü");
  EXPECT_EQ(rec->issues(), issue_bit(ParseIssue::completion_truncated));
}

TEST_F(Gateway, StreamLineOverTheLimitIsDroppedAndLaterLinesRead) {
  GatewayConfig config;
  config.max_stream_line_bytes = 64;
  GatewayParser parser(config);
  auto rec = std::make_unique<GatewayRecord>(config);
  parser.begin_stream(*rec);
  const std::string big = "data: {\"choices\":[{\"delta\":{\"content\":\"" + std::string(200, 'z') + "\"}}]}\n\n";
  auto r = parser.feed_stream(big.substr(0, 100), 1, *rec);
  EXPECT_EQ(r.issues, issue_bit(ParseIssue::stream_line_too_long));
  r = parser.feed_stream(big.substr(100), 1, *rec);
  EXPECT_TRUE(r.ok());
  // Later lines within the limit (64 bytes, whole or not) are read.
  r = parser.feed_stream("data: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\n", 2, *rec);
  EXPECT_TRUE(r.ok());
  r = parser.feed_stream("data: {\"choices\":[{\"finish_reason\":\"stop\"}]}\n\n", 2, *rec);
  EXPECT_TRUE(r.ok());
  EXPECT_TRUE(parser.finish_stream(*rec).ok());
  EXPECT_EQ(rec->request().completion, "ok");
  EXPECT_EQ(rec->request().finish_reason, "stop");
}

TEST_F(Gateway, StreamErrorChunkMarksTheRequestFailed) {
  const std::string sse =
      "data: {\"choices\":[{\"delta\":{\"content\":\"par\"}}]}\n\n"
      "data: {\"error\":{\"message\":\"Provider disconnected\",\"code\":502}}\n\n";
  parser_.begin_stream(*rec_);
  EXPECT_TRUE(parser_.feed_stream(sse, 9, *rec_).ok());
  EXPECT_TRUE(parser_.finish_stream(*rec_).ok());
  EXPECT_TRUE(req().error);
  EXPECT_EQ(req().error_message, "Provider disconnected");
  EXPECT_EQ(req().completion, "par");
  EXPECT_EQ(req().first_token_unix_nano, 9u);
}

TEST_F(Gateway, InterleavedStreamsOnOneParserStayApart) {
  const std::string sse = read_data("stream_response.sse");
  auto a = std::make_unique<GatewayRecord>();
  auto b = std::make_unique<GatewayRecord>();
  parser_.begin_stream(*a);
  parser_.begin_stream(*b);
  const std::string other = "data: {\"id\":\"other\",\"choices\":[{\"delta\":{\"content\":\"B\"}}]}\n";
  for (std::size_t i = 0; i < sse.size(); i += 13) {
    EXPECT_TRUE(parser_.feed_stream(std::string_view(sse).substr(i, 13), 1, *a).ok());
    EXPECT_TRUE(parser_.feed_stream(std::string_view(other).substr(i % other.size(), 13), 1, *b).ok());
  }
  EXPECT_TRUE(parser_.finish_stream(*a).ok());
  expect_stream_result(a->request());
}

// --- records, allocation, submit -------------------------------------------------------------

TEST_F(Gateway, RecordReuseLeavesNothingFromThePreviousRequest) {
  const std::string request = read_data("chat_request.json");
  const std::string response = read_data("chat_response.json");
  ASSERT_TRUE(parser_.parse_request(request, {}, *rec_).ok());
  ASSERT_TRUE(parser_.parse_response(response, *rec_).ok());
  (void)parser_.set_outcome(500, "{}", *rec_);
  rec_->reset();
  EXPECT_EQ(rec_->issues(), 0u);
  ASSERT_TRUE(parser_.parse_request(R"({"model":"x/y"})", {}, *rec_).ok());
  EXPECT_EQ(req().requested_model, "x/y");
  EXPECT_EQ(req().user, "");
  EXPECT_TRUE(req().metadata.empty());
  EXPECT_EQ(req().completion, "");
  EXPECT_FALSE(req().error);
  EXPECT_EQ(req().http_status, 0);
}

TEST_F(Gateway, SteadyStateAllocatesNothing) {
  const std::string request = read_data("chat_request.json");
  const std::string response = read_data("chat_response.json");
  const std::string sse = read_data("stream_response.sse");
  const std::string error = read_data("error_400_openai.json");
  std::string truncated = request.substr(0, request.size() / 2);
  std::string bad_utf8 = request;
  bad_utf8[bad_utf8.find("user_7731")] = static_cast<char>(0xC3);
  auto round = [&] {
    rec_->reset();
    (void)parser_.parse_request(request, "hdr", *rec_);
    (void)parser_.parse_response(response, *rec_);
    (void)parser_.set_outcome(400, error, *rec_);
    rec_->reset();
    (void)parser_.parse_request(truncated, {}, *rec_);
    (void)parser_.parse_request(bad_utf8, {}, *rec_);
    parser_.begin_stream(*rec_);
    for (std::size_t i = 0; i < sse.size(); i += 50) (void)parser_.feed_stream(std::string_view(sse).substr(i, 50), 1, *rec_);
    (void)parser_.finish_stream(*rec_);
    (void)parser_.set_outcome(502, "<html>bad gateway</html>", *rec_);
  };
  round();
  round();
  tracecast::test::AllocationScope scope;
  for (int i = 0; i < 20; ++i) round();
  EXPECT_EQ(scope.count(), 0u);
  EXPECT_EQ(parser_.stats().requests, 22u * 3);
}

TEST_F(Gateway, ParsedRequestSubmitsIntoTheIngestRing) {
  const std::string request = read_data("chat_request.json");
  const std::string response = read_data("chat_response.json");
  ASSERT_TRUE(parser_.parse_request(request, {}, *rec_).ok());
  ASSERT_TRUE(parser_.parse_response(response, *rec_).ok());
  req().account = "acct_9";
  IngestConfig config;
  config.ring_bytes = 64u << 10;
  IngestRing ring(config);
  auto& producer = ring.make_producer();
  ASSERT_EQ(ring.try_submit(producer, req()), submit_result::ok);
  rec_->reset();  // the ring copied what it keeps
  std::size_t seen = 0;
  ring.drain(
      [&](const LlmRequest& q) {
        ++seen;
        EXPECT_EQ(q.requested_model, "anthropic/claude-3.5-sonnet");
        EXPECT_EQ(q.user, "user_7731");
        EXPECT_EQ(q.input_tokens, 412);
        EXPECT_EQ(q.finish_reason, "stop");
        EXPECT_EQ(q.account, "acct_9");
        bool found = false;
        for (const auto& e : q.metadata)
          if (e.key == "quote\"key") found = e.value.as_string() == "escaped \"value\" here";
        EXPECT_TRUE(found);
      },
      16);
  EXPECT_EQ(seen, 1u);
}

TEST(GatewayConfigTest, ValidateNamesTheFieldAndConstructorsReject) {
  GatewayConfig c;
  EXPECT_TRUE(c.validate().empty());
  c.max_metadata_keys = 5000;
  EXPECT_EQ(c.validate(), "max_metadata_keys: above 4096");
  EXPECT_THROW(GatewayParser{c}, std::invalid_argument);
  EXPECT_THROW(GatewayRecord{c}, std::invalid_argument);
  c = GatewayConfig{};
  c.max_stream_line_bytes = 10;
  EXPECT_EQ(c.validate().substr(0, 22), "max_stream_line_bytes:");
}

TEST(GatewayIssueNames, EveryIssueHasAStableName) {
  EXPECT_EQ(parse_issue_name(ParseIssue::request_truncated), "request_truncated");
  EXPECT_EQ(parse_issue_name(ParseIssue::error_body_unreadable), "error_body_unreadable");
  EXPECT_EQ(parse_issue_name(ParseIssue::none), "unknown");
  for (std::size_t i = 0; i < k_parse_issue_count; ++i)
    EXPECT_NE(parse_issue_name(static_cast<ParseIssue>(1u << i)), "unknown") << i;
}

}  // namespace
}  // namespace tracecast
