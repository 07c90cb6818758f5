// Tests for tracecast/gateway.h: the kinds of input issue 13 found failing, each as a kind (the
// issue's example and more members of it): JSON escapes that are not valid UTF-16, values a
// strict receiver rejects, several streamed choices, streamed tool calls.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "alloc_counter.h"
#include "gateway_test_util.h"
#include "tracecast/gateway.h"
#include "tracecast/mapping.h"

namespace tracecast {
namespace {

using test::find_attr;
using test::meta_string;

constexpr std::string_view k_fffd = "\xEF\xBF\xBD";

std::string r(std::string_view a, std::string_view b = {}, std::string_view c = {}) {
  std::string s(a);
  s += b;
  s += c;
  return s;
}

using test::stream;

class GatewayKinds : public ::testing::Test {
 protected:
  GatewayParser parser_;
  std::unique_ptr<GatewayRecord> rec_ = std::make_unique<GatewayRecord>();
  LlmRequest& req() { return rec_->request(); }
};

// --- kind 1: escapes that are not valid UTF-16 ------------------------------------------------

TEST_F(GatewayKinds, IssueExampleLoneSurrogateKeepsTheTraceKeysAndTheTree) {
  const std::string body =
      R"({"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}],"trace":{"note":"caf\ud800","trace_id":"grp_1","trace_name":"Pipeline","generation_name":"Gen"}})";
  const auto res = parser_.parse_request(body, {}, *rec_);
  EXPECT_EQ(res.issues, issue_bit(ParseIssue::invalid_escape)) << res.detail;
  EXPECT_EQ(meta_string(req(), "note"), r("caf", k_fffd));
  EXPECT_EQ(meta_string(req(), "trace_id"), "grp_1");
  EXPECT_EQ(meta_string(req(), "trace_name"), "Pipeline");
  EXPECT_EQ(meta_string(req(), "generation_name"), "Gen");
  EXPECT_EQ(meta_string(req(), "tracecast.parse_issues"), "invalid_escape");
  EXPECT_EQ(parser_.stats().count(ParseIssue::invalid_escape), 1u);

  req().account = "acct_1";
  MappingConfig config;
  IdGenerator ids(7);
  auto mapped = std::make_unique<MappedRequest>();
  map_request(req(), config, ids, *mapped);
  ASSERT_EQ(mapped->spans().size(), 2u);
  EXPECT_EQ(mapped->spans()[0].name, "Pipeline");
  EXPECT_EQ(mapped->spans()[1].name, "Gen");
  EXPECT_EQ(mapped->trace_id(), derive_trace_id("acct_1", "grp_1"));
}

TEST_F(GatewayKinds, EveryBadEscapeShapeBecomesTheReplacementCharacterInPlace) {
  struct Case {
    const char* escaped;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {R"(a\udc00b)", r("a", k_fffd, "b")},                                  // lone low
      {R"(\ude00\ud83d)", r(k_fffd, k_fffd)},                               // reversed pair
      {R"(x\ud83d)", r("x", k_fffd)},                                        // high at the end
      {R"(\ud800\u0041)", r(k_fffd, "A")},                                   // high + not a low
      {R"(\ud800\ud800\udc00)", r(k_fffd, "\xF0\x90\x80\x80")},              // high, then a pair
      {R"(s\u12x)", r("s", k_fffd, "x")},                                    // short \u
      {R"(s\u1)", r("s", k_fffd)},                                           // short \u at the end
      {R"(s\uZ)", r("s", k_fffd, "Z")},                                      // \u, no digits
      {R"(s\qz)", r("s", k_fffd, "z")},                                      // unknown letter
      {"s\\\xC3\xA9z", r("s", k_fffd, "z")},                                 // unknown, multi-byte
      {"s\\\xF0\x9F\x98\x80", r("s", k_fffd)},                               // unknown, 4 bytes, at the end
      {R"(ok \ud83d\ude80 \u00e9 \n)", "ok \xF0\x9F\x9A\x80 \xC3\xA9 \n"},   // valid: untouched
  };
  for (const Case& c : cases) {
    const std::string body = std::string(R"({"model":"m/x","user":")") + c.escaped +
                             R"(","session_id":"s1","trace":{"k":"v"}})";
    auto rec = std::make_unique<GatewayRecord>();
    const auto res = parser_.parse_request(body, {}, *rec);
    EXPECT_EQ(rec->request().user, c.expected) << c.escaped;
    EXPECT_EQ(rec->request().session_id, "s1") << c.escaped;  // the rest read as usual
    EXPECT_EQ(meta_string(rec->request(), "k"), "v") << c.escaped;
    const bool valid = c.expected.find(k_fffd) == std::string::npos;
    EXPECT_EQ(res.issues, valid ? 0u : issue_bit(ParseIssue::invalid_escape)) << c.escaped;
  }
}

TEST_F(GatewayKinds, BadEscapesInMetadataKeysNestedValuesAndMessagesAreRepaired) {
  const std::string body =
      R"({"model":"m/x","messages":[{"role":"user","content":"q\udfff?"}],)"
      R"("trace":{"k\ud800ey":"v","nested":{"a":"\udc01","b":[1,"\u12"]},"trace_id":"t1"}})";
  const auto res = parser_.parse_request(body, {}, *rec_);
  EXPECT_EQ(res.issues, issue_bit(ParseIssue::invalid_escape));
  EXPECT_EQ(meta_string(req(), r("k", k_fffd, "ey")), "v");
  // Nested values stay JSON text that decodes without lone surrogates.
  EXPECT_EQ(meta_string(req(), "nested"), r(R"({"a":"\ufffd","b":[1,")", k_fffd, "\"]}"));
  EXPECT_EQ(meta_string(req(), "trace_id"), "t1");
  EXPECT_EQ(req().prompt, R"([{"role":"user","content":"q\ufffd?"}])");
  // The caller's body is never written to.
  EXPECT_NE(body.find(R"(q\udfff?)"), std::string::npos);
}

TEST_F(GatewayKinds, BadEscapesInResponsesStreamsAndErrorBodiesAreRepaired) {
  const auto res = parser_.parse_response(
      R"({"id":"gen\ud800-1","model":"m","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"h\udc00i"}}],"usage":{"prompt_tokens":3,"completion_tokens":2}})",
      *rec_);
  EXPECT_EQ(res.issues, issue_bit(ParseIssue::invalid_escape));
  EXPECT_EQ(req().response_id, r("gen", k_fffd, "-1"));
  EXPECT_EQ(req().completion, r("h", k_fffd, "i"));
  EXPECT_EQ(req().finish_reason, "stop");
  EXPECT_EQ(req().output_tokens, 2);

  const std::string sse =
      "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\\ud83d\"}}]}\n\n"
      "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\ude80b\"}}]}\n\n"
      "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" \\ud83d\\ude80\"},\"finish_reason\":\"stop\"}]}\n\n"
      "data: [DONE]\n\n";
  for (std::size_t step : {sse.size(), std::size_t{1}, std::size_t{5}}) {
    std::uint32_t issues = 0;
    auto rec = stream(parser_, sse, step, &issues);
    // A surrogate pair split across two chunks is two lone surrogates: each chunk is its own JSON.
    EXPECT_EQ(rec->request().completion, r("a", k_fffd, r(k_fffd, "b \xF0\x9F\x9A\x80"))) << step;
    EXPECT_EQ(issues, issue_bit(ParseIssue::invalid_escape)) << step;
    EXPECT_EQ(rec->request().finish_reason, "stop");
  }

  const auto out = parser_.set_outcome(400, R"({"error":{"message":"bad \ud800 input","code":400}})", *rec_);
  EXPECT_EQ(out.issues, issue_bit(ParseIssue::invalid_escape));
  EXPECT_EQ(req().error_message, r("bad ", k_fffd, " input"));
}

// --- kind 3: several choices in one streamed response (n > 1) ---------------------------------

std::string chunk(std::string_view choices_json, std::string_view extra = {}) {
  return "data: {\"id\":\"chatcmpl-n2\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":" +
         std::string(choices_json) + std::string(extra) + "}\n\n";
}

TEST_F(GatewayKinds, IssueExampleTwoStreamedChoicesGiveChoiceZeroLikeTheNonStreamedResponse) {
  const std::string sse =
      chunk(R"([{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}])") +
      chunk(R"([{"index":1,"delta":{"role":"assistant","content":""},"finish_reason":null}])") +
      chunk(R"([{"index":0,"delta":{"content":"Hello"},"finish_reason":null}])") +
      chunk(R"([{"index":1,"delta":{"content":"Bonjour le monde"},"finish_reason":null}])") +
      chunk(R"([{"index":0,"delta":{"content":" world"},"finish_reason":null}])") +
      chunk(R"([{"index":0,"delta":{},"finish_reason":"stop"}])") +
      chunk(R"([{"index":1,"delta":{},"finish_reason":"length"}])") +
      chunk("[]", R"(,"usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21})") + "data: [DONE]\n\n";
  const std::string whole =
      R"({"id":"chatcmpl-n2","object":"chat.completion","model":"gpt-4o","choices":[)"
      R"({"index":0,"message":{"role":"assistant","content":"Hello world"},"finish_reason":"stop"},)"
      R"({"index":1,"message":{"role":"assistant","content":"Bonjour le monde"},"finish_reason":"length"}],)"
      R"("usage":{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}})";
  ASSERT_TRUE(parser_.parse_response(whole, *rec_).ok());
  EXPECT_EQ(req().completion, "Hello world");
  EXPECT_EQ(req().finish_reason, "stop");
  EXPECT_EQ(req().finish_reasons, "stop,length");
  for (std::size_t step : {sse.size(), std::size_t{1}, std::size_t{3}, std::size_t{64}}) {
    std::uint32_t issues = 0;
    auto rec = stream(parser_, sse, step, &issues);
    EXPECT_EQ(issues, 0u) << step;
    EXPECT_EQ(rec->request().completion, "Hello world") << step;
    EXPECT_EQ(rec->request().finish_reason, "stop") << step;
    EXPECT_EQ(rec->request().finish_reasons, "stop,length") << step;
    EXPECT_EQ(rec->request().output_tokens, 12) << step;
  }
  // The span: one finish reason per choice.
  auto rec = stream(parser_, sse, 7);
  MappingConfig config;
  config.emit_current_genai_names = true;
  IdGenerator ids(1);
  auto mapped = std::make_unique<MappedRequest>();
  map_request(rec->request(), config, ids, *mapped);
  const Attribute* reasons = find_attr(mapped->spans().back(), "gen_ai.response.finish_reasons");
  ASSERT_NE(reasons, nullptr);
  ASSERT_EQ(reasons->value.as_strings().size(), 2u);
  EXPECT_EQ(reasons->value.as_strings()[0], "stop");
  EXPECT_EQ(reasons->value.as_strings()[1], "length");
  EXPECT_EQ(find_attr(mapped->spans().back(), "gen_ai.completion")->value.as_string(), "Hello world");
}

TEST_F(GatewayKinds, ChoicesAreMergedByIndexWhateverTheirOrderAndPacking) {
  // Both choices in one chunk, choice 1 listed first, index after the delta, and three
  // choices where the last finishes first.
  const std::string sse =
      chunk(R"([{"delta":{"content":"B1"},"index":1},{"delta":{"content":"A1"},"index":0},{"index":2,"delta":{"content":"C1"},"finish_reason":"content_filter"}])") +
      chunk(R"([{"index":1,"delta":{"content":"B2"}},{"index":0,"delta":{"content":"A2"}}])") +
      chunk(R"([{"index":1,"delta":{},"finish_reason":"stop"}])") +
      chunk(R"([{"index":0,"delta":{"content":"A3"},"finish_reason":"length"}])") + "data: [DONE]\n";
  for (std::size_t step : {sse.size(), std::size_t{1}, std::size_t{10}}) {
    std::uint32_t issues = 0;
    auto rec = stream(parser_, sse, step, &issues);
    EXPECT_EQ(issues, 0u) << step;
    EXPECT_EQ(rec->request().completion, "A1A2A3") << step;
    EXPECT_EQ(rec->request().finish_reason, "length") << step;
    EXPECT_EQ(rec->request().finish_reasons, "length,stop,content_filter") << step;
  }
  // One choice: finish_reason alone, no list.
  auto one = stream(parser_, chunk(R"([{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}])"), 1);
  EXPECT_EQ(one->request().finish_reason, "stop");
  EXPECT_EQ(one->request().finish_reasons, "");
  EXPECT_EQ(one->request().completion, "x");
  // Only choice 1 ever finishes: the finish reason is choice 0's (none, as for a body), the
  // list names choice 0's as "unknown".
  auto late = stream(parser_, chunk(R"([{"index":0,"delta":{"content":"a"}}])") +
                                  chunk(R"([{"index":1,"delta":{"content":"b"},"finish_reason":"stop"}])"), 4);
  EXPECT_EQ(late->request().completion, "a");
  EXPECT_EQ(late->request().finish_reason, "");
  EXPECT_EQ(late->request().finish_reasons, "unknown,stop");
}

// --- kind 4: streamed tool calls --------------------------------------------------------------

const std::string k_tool_calls_json =
    R"([{"id":"call_Wx1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"unit\":\"c\"}"}},)"
    R"({"id":"call_Tz2","type":"function","function":{"name":"get_time","arguments":"{\"tz\":\"Europe/Paris\",\"note\":\"l\u00e9ger \\\"x\\\"\\n\"}"}}])";

TEST_F(GatewayKinds, StreamedToolCallsAreAssembledByIndexLikeTheNonStreamedResponse) {
  const std::string whole = R"({"id":"chatcmpl-t","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":)" +
                            k_tool_calls_json + R"(},"finish_reason":"tool_calls"}]})";
  ASSERT_TRUE(parser_.parse_response(whole, *rec_).ok());
  // Both forms give the canonical text: compact, strings re-escaped (\u00e9 as its character).
  std::string want = k_tool_calls_json;
  want.replace(want.find(R"(l\u00e9ger)"), 10, "léger");
  EXPECT_EQ(req().completion, want);

  // The same calls streamed: id, type and name first, arguments in fragments, the two calls'
  // fragments interleaved, one fragment splitting an escape sequence's JSON text.
  const std::string sse =
      chunk(R"([{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_Wx1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}])") +
      chunk(R"([{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]}}])") +
      chunk(R"([{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_Tz2","type":"function","function":{"name":"get_time","arguments":"{\"tz\":"}}]}}])") +
      chunk(R"([{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\":\"Paris\","}}]}}])") +
      chunk(R"([{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\"Europe/Paris\",\"note\":\"léger \\\"x"}}]}}])") +
      chunk(R"([{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"\\\"\\n\"}"}}]}}])") +
      chunk(R"([{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"unit\":\"c\"}"}}]}}])") +
      chunk(R"([{"index":0,"delta":{},"finish_reason":"tool_calls"}])") + "data: [DONE]\n\n";
  for (std::size_t step : {sse.size(), std::size_t{1}, std::size_t{2}, std::size_t{33}}) {
    std::uint32_t issues = 0;
    auto rec = stream(parser_, sse, step, &issues);
    EXPECT_EQ(issues, 0u) << step;
    EXPECT_EQ(rec->request().finish_reason, "tool_calls") << step;
    EXPECT_EQ(rec->request().completion, want) << step;
    EXPECT_NE(rec->request().first_token_unix_nano, 0u) << step;
  }
}

TEST_F(GatewayKinds, StreamedToolCallsFollowContentRulesAndLimits) {
  // Content and tool calls: the content is the completion (as for a non-streamed response).
  auto both = stream(parser_,
                     chunk(R"([{"index":0,"delta":{"content":"Let me check."}}])") +
                         chunk(R"([{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}])"),
                     5);
  EXPECT_EQ(both->request().completion, "Let me check.");
  // Another choice's tool calls are not choice 0's completion.
  auto other = stream(parser_,
                      chunk(R"([{"index":1,"delta":{"tool_calls":[{"index":0,"id":"c9","function":{"name":"g","arguments":"{}"}}]}}])") +
                          chunk(R"([{"index":0,"delta":{"content":"zero"},"finish_reason":"stop"}])"),
                      3);
  EXPECT_EQ(other->request().completion, "zero");
  // A call index past the limit and arguments over max_completion_bytes: cut and counted. The
  // tool-call JSON around the arguments counts too (the list is 90 bytes with all 20 argument
  // bytes): the arguments are cut by the 10 bytes over, to fit the 80 exactly.
  GatewayConfig small;
  small.max_completion_bytes = 80;
  GatewayParser parser(small);
  auto rec = std::make_unique<GatewayRecord>(small);
  parser.begin_stream(*rec);
  std::uint32_t bits = 0;
  bits |= parser.feed_stream(chunk(R"([{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":"0123456789"}}]}}])"), 1, *rec).issues;
  bits |= parser.feed_stream(chunk(R"([{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"abcdefghij"}}]}}])"), 2, *rec).issues;
  bits |= parser.feed_stream(chunk(R"([{"index":0,"delta":{"tool_calls":[{"index":99,"id":"c99","function":{"name":"h","arguments":"{}"}}]},"finish_reason":"tool_calls"}])"), 3, *rec).issues;
  bits |= parser.finish_stream(*rec).issues;
  EXPECT_EQ(bits, issue_bit(ParseIssue::completion_truncated));
  EXPECT_EQ(rec->request().completion,
            R"([{"id":"c1","type":"function","function":{"name":"f","arguments":"0123456789"}}])");
}

TEST_F(GatewayKinds, ChoicesAndToolCallStreamsAllocateNothingOnceWarm) {
  const std::string sse =
      chunk(R"([{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}},{"index":1,"delta":{"content":"x\ud800"}}])") +
      chunk(R"([{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"1}"}}]},"finish_reason":"tool_calls"},{"index":1,"delta":{},"finish_reason":"stop"}])") +
      "data: [DONE]\n\n";
  const std::string request = R"({"model":"m/x","trace":{"k\ud800":"v\udc00","n":null,"trace_id":"t"}})";
  auto round = [&] {
    rec_->reset();
    (void)parser_.parse_request(request, {}, *rec_);
    parser_.begin_stream(*rec_);
    for (std::size_t i = 0; i < sse.size(); i += 3) (void)parser_.feed_stream(std::string_view(sse).substr(i, 3), 1, *rec_);
    (void)parser_.finish_stream(*rec_);
  };
  round();
  round();
  test::AllocationScope scope;
  for (int i = 0; i < 20; ++i) round();
  EXPECT_EQ(scope.count(), 0u);
  EXPECT_EQ(req().completion, R"([{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}])");
  EXPECT_EQ(req().finish_reasons, "tool_calls,stop");
}

}  // namespace
}  // namespace tracecast
