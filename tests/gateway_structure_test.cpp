// Tests for tracecast/gateway.h: the structure of a body as a whole. A body cut anywhere is
// flagged truncated and keeps what was read before the cut; bytes after the first JSON value
// are flagged; a streamed response and its non-streamed body give the same record.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "alloc_counter.h"
#include "gateway_test_util.h"
#include "tracecast/gateway.h"

namespace tracecast {
namespace {

using test::read_data;

constexpr std::uint32_t k_request_bad = issue_bit(ParseIssue::request_not_json);
constexpr std::uint32_t k_request_cut = issue_bit(ParseIssue::request_truncated);
constexpr std::uint32_t k_response_bad = issue_bit(ParseIssue::response_not_json);
constexpr std::uint32_t k_response_cut = issue_bit(ParseIssue::response_truncated);

// True when text is one complete, valid JSON value.
bool is_json(std::string_view text) {
  static simdjson::dom::parser parser;
  const simdjson::padded_string copy(text);
  simdjson::dom::element e;
  return !parser.parse(copy).get(e);
}

std::string num(double d) {
  if (std::isnan(d)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

// The record's fields other than prompt and completion, one string each (name=value).
std::vector<std::string> request_fields(const LlmRequest& r) {
  std::string meta;
  for (const MetadataEntry& e : r.metadata) {
    if (e.key == "tracecast.parse_issues") continue;
    meta += std::string(e.key) + ":";
    switch (e.value.type()) {
      case ValueType::string: meta += std::string(e.value.as_string()); break;
      case ValueType::int64: meta += std::to_string(e.value.as_int64()); break;
      case ValueType::float64: meta += num(e.value.as_double()); break;
      case ValueType::boolean: meta += e.value.as_bool() ? "true" : "false"; break;
      default: meta += "?"; break;
    }
    meta += ";";
  }
  return {"model=" + std::string(r.requested_model), "provider=" + std::string(r.provider),
          "user=" + std::string(r.user), "session=" + std::string(r.session_id),
          "temperature=" + num(r.temperature), "top_p=" + num(r.top_p),
          "max_tokens=" + std::to_string(r.max_tokens), "stream=" + std::to_string(r.stream),
          "operation=" + std::string(r.operation), "metadata=" + meta};
}

std::vector<std::string> response_fields(const LlmRequest& r) {
  return {"id=" + std::string(r.response_id), "model=" + std::string(r.response_model),
          "finish=" + std::string(r.finish_reason), "finishes=" + std::string(r.finish_reasons),
          "in=" + std::to_string(r.input_tokens), "out=" + std::to_string(r.output_tokens),
          "cache_read=" + std::to_string(r.cache_read_input_tokens),
          "cache_write=" + std::to_string(r.cache_creation_input_tokens),
          "reasoning=" + std::to_string(r.reasoning_output_tokens), "cost=" + num(r.cost),
          "error=" + std::to_string(r.error) + ":" + std::string(r.error_message)};
}

// What a cut body's text value may be: empty, a prefix of the whole body's text, or, when the
// whole body's value is JSON (a conversation, tool calls), complete JSON.
void expect_text_kept(std::string_view cut, std::string_view whole, const std::string& where) {
  if (cut.empty()) return;
  if (!whole.empty() && (whole.front() == '[' || whole.front() == '{')) {
    EXPECT_TRUE(is_json(cut)) << where << ": not JSON: " << cut;
  } else {
    EXPECT_EQ(whole.substr(0, cut.size()), cut) << where << ": not a prefix of " << whole;
  }
}

// Fields, once read whole at some cut, stay read at every later cut (nothing before the cut
// is lost).
struct Monotonic {
  std::vector<std::string> whole;
  std::vector<bool> seen;
  void check(const std::vector<std::string>& now, const std::string& where) {
    if (seen.empty()) seen.assign(whole.size(), false);
    for (std::size_t i = 0; i < whole.size(); ++i) {
      if (now[i] == whole[i]) {
        seen[i] = true;
      } else {
        EXPECT_FALSE(seen[i]) << where << ": lost " << whole[i] << " (now " << now[i] << ")";
      }
    }
  }
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

struct Shape {
  std::string name;
  std::string request;
  std::string response;  // empty: request only
};

std::vector<Shape> shapes() {
  std::vector<Shape> v = {
      {"chat", read_data("chat_request.json"), read_data("chat_response.json")},
      {"chat usage details", read_data("chat_request.json"), read_data("chat_usage_details_response.json")},
      {"chat tools", read_data("tools_request.json"), read_data("tools_response.json")},
      {"anthropic", read_data("anthropic_request.json"), read_data("anthropic_response.json")},
      {"anthropic tool only", read_data("anthropic_request.json"), read_data("anthropic_tool_only_response.json")},
      {"responses", read_data("responses_request.json"), read_data("responses_response.json")},
      {"responses function call", read_data("responses_request.json"),
       read_data("responses_function_call_response.json")},
      {"embeddings", read_data("embeddings_request.json"), read_data("embeddings_response.json")},
      {"reference example", read_data("reference_example_request.json"), ""},
      // Nested lists right before the cut points of the review: system blocks, input items,
      // several tool calls, an output_text part followed by status and usage.
      {"anthropic system blocks",
       R"({"model":"claude","system":[{"type":"text","text":"Be brief."},{"type":"text","text":"Be kind."}],)"
       R"("max_tokens":64,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"metadata":{"user_id":"u7"}})",
       R"({"id":"msg_1","type":"message","model":"claude","content":[{"type":"thinking","thinking":"hm","signature":"s"},)"
       R"({"type":"text","text":"Hel\u00e9lo"},{"type":"tool_use","id":"tu_1","name":"f","input":{"q":[1,{"a":"b"}]}}],)"
       R"("stop_reason":"tool_use","usage":{"input_tokens":5,"output_tokens":7,"cache_read_input_tokens":1}})"},
      {"responses items",
       R"({"model":"gpt-4.1","instructions":"Terse.","input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]},)"
       R"({"type":"function_call_output","call_id":"c1","output":"{\"ok\":true}"}],"temperature":0.5,"user":"u"})",
       R"({"id":"resp_1","object":"response","status":"completed","model":"gpt-4.1","output":[{"type":"reasoning","id":"rs","summary":[]},)"
       R"({"type":"message","role":"assistant","content":[{"type":"output_text","text":"Hello","annotations":[]},)"
       R"({"type":"output_text","text":" you"}]}],"usage":{"input_tokens":3,"output_tokens":2,"output_tokens_details":{"reasoning_tokens":1}}})"},
      {"chat several tool calls", R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stream":false})",
       R"({"id":"c","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[)"
       R"({"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}},)"
       R"({"id":"call_2","type":"function","function":{"name":"g","arguments":"{\"x\":1}"}}]},"finish_reason":"tool_calls"}],)"
       R"("usage":{"prompt_tokens":1,"completion_tokens":2,"cost":0.5}})"},
  };
  return v;
}

class GatewayStructure : public ::testing::Test {
 protected:
  GatewayParser parser_;
  std::unique_ptr<GatewayRecord> rec_ = std::make_unique<GatewayRecord>();
  LlmRequest& req() { return rec_->request(); }
};

// --- a body cut anywhere ------------------------------------------------------------------------

TEST_F(GatewayStructure, EveryPrefixOfARequestBodyIsFlaggedTruncatedAndKeepsWhatWasRead) {
  for (const Shape& s : shapes()) {
    rec_->reset();
    ASSERT_TRUE(parser_.parse_request(s.request, {}, *rec_).ok()) << s.name;
    const std::string whole_prompt(req().prompt);
    const GatewayApi api = rec_->api();
    Monotonic fields{request_fields(req()), {}};
    const std::string_view body = trim(s.request);
    for (std::size_t k = 1; k < body.size(); ++k) {
      const std::string where = s.name + " request cut at " + std::to_string(k);
      rec_->reset();
      const auto res = parser_.parse_request(body.substr(0, k), {}, *rec_, api);
      EXPECT_TRUE(res.has(ParseIssue::request_truncated)) << where << ": " << res.detail;
      EXPECT_FALSE(res.has(ParseIssue::request_not_json)) << where << ": " << res.detail;
      expect_text_kept(req().prompt, whole_prompt, where);
      fields.check(request_fields(req()), where);
    }
  }
}

TEST_F(GatewayStructure, EveryPrefixOfAResponseBodyIsFlaggedTruncatedAndKeepsWhatWasRead) {
  for (const Shape& s : shapes()) {
    if (s.response.empty()) continue;
    rec_->reset();
    ASSERT_TRUE(parser_.parse_request(s.request, {}, *rec_).ok()) << s.name;
    ASSERT_TRUE(parser_.parse_response(s.response, *rec_).ok()) << s.name;
    const std::string whole_completion(req().completion);
    Monotonic fields{response_fields(req()), {}};
    const std::string_view body = trim(s.response);
    for (std::size_t k = 1; k < body.size(); ++k) {
      const std::string where = s.name + " response cut at " + std::to_string(k);
      const auto res = parser_.parse_response(body.substr(0, k), *rec_);
      EXPECT_TRUE(res.has(ParseIssue::response_truncated)) << where << ": " << res.detail;
      EXPECT_FALSE(res.has(ParseIssue::response_not_json)) << where << ": " << res.detail;
      expect_text_kept(req().completion, whole_completion, where);
      fields.check(response_fields(req()), where);
    }
  }
}

// The review's cases: cut right after a nested '}' (simdjson opens such a body, its walk then
// stops quietly), and the kind of a cut chat request (not "not JSON": its fields are read).
TEST_F(GatewayStructure, BodyCutRightAfterANestedObjectIsFlaggedAndItsFieldsKept) {
  auto request = [&](std::string_view body, GatewayApi api) {
    rec_->reset();
    return parser_.parse_request(body, {}, *rec_, api);
  };
  auto res = request(R"({"model":"claude","system":[{"type":"text","text":"Be brief."})", GatewayApi::anthropic_messages);
  EXPECT_EQ(res.issues, k_request_cut);
  EXPECT_EQ(req().prompt, R"([{"role":"system","content":[{"type":"text","text":"Be brief."}]}])");
  res = request(R"({"model":"gpt-4.1","input":[{"role":"user","content":"hi"})", GatewayApi::responses);
  EXPECT_EQ(res.issues, k_request_cut);
  EXPECT_EQ(req().prompt, R"([{"role":"user","content":"hi"}])");
  res = request(R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"})", GatewayApi::detect);
  EXPECT_EQ(res.issues, k_request_cut);
  EXPECT_EQ(req().prompt, R"([{"role":"user","content":"hi"}])");
  // Detected as Anthropic from `system` alone (the cut came before `messages`).
  res = request(R"({"model":"claude","system":"Be brief.","messages":[{"ro)", GatewayApi::detect);
  EXPECT_EQ(res.issues, k_request_cut);
  EXPECT_EQ(rec_->api(), GatewayApi::anthropic_messages);
  EXPECT_EQ(req().prompt, R"([{"role":"system","content":"Be brief."},{}])");

  rec_->reset();
  res = parser_.parse_response(
      R"({"id":"c","model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":null,)"
      R"("tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}})",
      *rec_);
  EXPECT_EQ(res.issues, k_response_cut);
  EXPECT_EQ(req().completion, R"([{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}])");
  res = parser_.parse_response(
      R"({"id":"r","status":"completed","model":"gpt-4.1","output":[{"type":"message","role":"assistant",)"
      R"("content":[{"type":"output_text","text":"Hello"})",
      *rec_);
  EXPECT_EQ(res.issues, k_response_cut);
  EXPECT_EQ(req().completion, "Hello");
  EXPECT_EQ(req().finish_reason, "completed");
  res = parser_.parse_response(R"({"id":"m","type":"message","model":"claude","content":[{"type":"text","text":"Hello"})", *rec_);
  EXPECT_EQ(res.issues, k_response_cut);
  EXPECT_EQ(req().completion, "Hello");
  EXPECT_EQ(req().response_id, "m");
  // A tool_use block cut inside its input: the list stays JSON (closed where it was cut).
  res = parser_.parse_response(
      R"({"id":"m","type":"message","model":"claude","content":[{"type":"tool_use","id":"t","name":"f","input":{"q":"ab)", *rec_);
  EXPECT_EQ(res.issues, k_response_cut);
  EXPECT_EQ(req().completion, R"([{"type":"tool_use","id":"t","name":"f","input":{"q":"ab"}}])");
}

// A value cut inside a key, after ':' or ',', or inside a number or literal is left out (it is
// not known whole); a string value cut short keeps what was read of it.
TEST_F(GatewayStructure, CutInsideAKeyOrNumberLeavesThatFieldOutAndAStringValueKeepsItsStart) {
  struct Case {
    const char* body;
    const char* model;
    std::int64_t max_tokens;
    const char* prompt;
  };
  const Case cases[] = {
      {R"({"model":"gpt-4o","max_tokens":12)", "gpt-4o", -1, ""},
      {R"({"model":"gpt-4o","max_tokens":12 )", "gpt-4o", 12, ""},
      {R"({"model":"gpt-4o","max_tok)", "gpt-4o", -1, ""},
      {R"({"model":"gpt-4o","max_tokens":)", "gpt-4o", -1, ""},
      {R"({"model":"gpt-4o",)", "gpt-4o", -1, ""},
      {R"({"model":"gpt-4o","stream":tr)", "gpt-4o", -1, ""},
      {R"({"model":"gpt-4)", "gpt-4", -1, ""},
      {R"({"model":"gpt-4o","messages":[{"role":"user","content":"hel)", "gpt-4o", -1,
       R"([{"role":"user","content":"hel"}])"},
      {R"({"model":"gpt-4o","messages":[{"role":"user","content":"a\u00)", "gpt-4o", -1,
       R"([{"role":"user","content":"a"}])"},
      {R"({"model":"gpt-4o","messages":[{"role":"user","con)", "gpt-4o", -1, R"([{"role":"user"}])"},
      {R"({"model":"gpt-4o","messages":[{"role":"user"},)", "gpt-4o", -1, R"([{"role":"user"}])"},
  };
  for (const Case& c : cases) {
    rec_->reset();
    const auto res = parser_.parse_request(c.body, {}, *rec_);
    EXPECT_EQ(res.issues, k_request_cut) << c.body << ": " << res.detail;
    EXPECT_EQ(req().requested_model, c.model) << c.body;
    EXPECT_EQ(req().max_tokens, c.max_tokens) << c.body;
    EXPECT_EQ(req().prompt, c.prompt) << c.body;
  }
}

TEST_F(GatewayStructure, ReadingACutBodyAgainAllocatesNothing) {
  const std::string request = R"({"model":"claude","system":[{"type":"text","text":"Be brief."})";
  const std::string response =
      R"({"id":"m","type":"message","model":"claude","content":[{"type":"tool_use","id":"t","name":"f","input":{"q":"ab)";
  const std::string line = "data: {\"id\":\"a\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"}}]}\n";
  const std::string cut_line = line.substr(0, line.size() - 6) + "\n";
  const std::string two_values = line + line.substr(0, line.size() - 1) + "{}\n";
  for (int round = 0; round < 2; ++round) {
    const test::AllocationScope scope;
    rec_->reset();
    (void)parser_.parse_request(request, {}, *rec_);
    (void)parser_.parse_response(response, *rec_);
    parser_.begin_stream(*rec_);
    (void)parser_.feed_stream(cut_line, 1, *rec_);
    (void)parser_.feed_stream(two_values, 2, *rec_);
    (void)parser_.finish_stream(*rec_);
    const std::uint64_t allocations = scope.count();
    if (round == 1) {
      EXPECT_EQ(allocations, 0u);
      EXPECT_EQ(rec_->issues() & k_request_cut, k_request_cut);
      EXPECT_EQ(rec_->issues() & k_response_cut, k_response_cut);
      EXPECT_NE(rec_->issues() & issue_bit(ParseIssue::stream_chunk_invalid), 0u);
    }
  }
}

// --- bytes after the first JSON value -----------------------------------------------------------

TEST_F(GatewayStructure, BytesAfterTheFirstJsonValueAreFlaggedInEveryShape) {
  const char* const tails[] = {R"({"model":"b"})", R"( {})", "[1]", R"("x")", "1", "null", "}", " x"};
  for (const Shape& s : shapes()) {
    for (const char* tail : tails) {
      const std::string where = s.name + " + " + tail;
      rec_->reset();
      auto res = parser_.parse_request(trim(s.request), {}, *rec_);
      ASSERT_TRUE(res.ok()) << where;
      const std::vector<std::string> whole_request = request_fields(req());
      const std::string whole_prompt(req().prompt);
      rec_->reset();
      const std::string request = std::string(trim(s.request)) + tail;  // the record's views point here
      res = parser_.parse_request(request, {}, *rec_);
      EXPECT_EQ(res.issues, k_request_bad) << where << ": " << res.detail;
      EXPECT_EQ(request_fields(req()), whole_request) << where;
      EXPECT_EQ(req().prompt, whole_prompt) << where;
      if (s.response.empty()) continue;
      res = parser_.parse_response(trim(s.response), *rec_);
      ASSERT_TRUE(res.ok()) << where;
      const std::vector<std::string> whole_response = response_fields(req());
      const std::string whole_completion(req().completion);
      const std::string response = std::string(trim(s.response)) + tail;
      res = parser_.parse_response(response, *rec_);
      EXPECT_EQ(res.issues, k_response_bad) << where << ": " << res.detail;
      EXPECT_EQ(response_fields(req()), whole_response) << where;
      EXPECT_EQ(req().completion, whole_completion) << where;
    }
  }
}

TEST_F(GatewayStructure, TwoObjectsInOneStreamEventAreFlagged) {
  const std::string a = R"({"id":"a","model":"m","choices":[{"index":0,"delta":{"content":"A"},"finish_reason":null}]})";
  const std::string b = R"({"id":"a","model":"m","choices":[{"index":0,"delta":{"content":"B"},"finish_reason":"stop"}]})";
  for (const char* sep : {"", " ", "\t"}) {
    for (std::size_t step : {std::size_t{1}, std::size_t{7}, std::size_t{4096}}) {
      const std::string sse = "data: " + a + sep + b + "\n\ndata: [DONE]\n\n";
      std::uint32_t issues = 0;
      auto rec = test::stream(parser_, sse, step, &issues);
      EXPECT_NE(issues & issue_bit(ParseIssue::stream_chunk_invalid), 0u) << sep << step;
      EXPECT_EQ(rec->request().completion, "A");
    }
  }
  // Anthropic and Responses events too.
  std::uint32_t issues = 0;
  auto rec = test::stream(parser_,
                          "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"A\"}}"
                          "{\"type\":\"message_stop\"}\n\n",
                          4096, &issues);
  EXPECT_NE(issues & issue_bit(ParseIssue::stream_chunk_invalid), 0u);
  rec = test::stream(parser_, "data: {\"type\":\"response.output_text.delta\",\"delta\":\"A\"} {}\n\n", 4096, &issues);
  EXPECT_NE(issues & issue_bit(ParseIssue::stream_chunk_invalid), 0u);
}

// --- small kinds --------------------------------------------------------------------------------

TEST_F(GatewayStructure, AnEmptyStringInputIsAnEmptyPrompt) {
  for (const char* body : {R"({"model":"gpt-4.1","input":""})", R"({"model":"text-embedding-3-small","input":""})",
                           R"({"model":"gpt-4.1","input":"","stream":true})"}) {
    rec_->reset();
    EXPECT_TRUE(parser_.parse_request(body, {}, *rec_).ok()) << body;
    EXPECT_EQ(req().prompt, "") << body;
  }
  rec_->reset();
  EXPECT_TRUE(parser_.parse_request(R"({"model":"gpt-4.1","input":"hi"})", {}, *rec_).ok());
  EXPECT_EQ(req().prompt, "hi");
}

}  // namespace
}  // namespace tracecast
