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

// One stream event cut anywhere (a proxy that cut a line short) is flagged, whatever the shape.
TEST_F(GatewayStructure, EveryPrefixOfAStreamEventIsFlagged) {
  for (const char* file : {"stream_response.sse", "anthropic_stream.sse", "anthropic_tool_stream.sse",
                           "responses_stream.sse", "responses_function_call_stream.sse"}) {
    const std::string sse = read_data(file);
    std::size_t at = 0;
    while ((at = sse.find("data: {", at)) != std::string::npos) {
      const std::size_t end = sse.find('\n', at);
      const std::string_view event = trim(std::string_view(sse).substr(at + 6, end - at - 6));
      at = end;
      for (std::size_t k = 1; k < event.size(); ++k) {
        const std::string line = "data: " + std::string(event.substr(0, k)) + "\n";
        std::uint32_t issues = 0;
        const auto rec = test::stream(parser_, line, line.size(), &issues);
        EXPECT_NE(issues & issue_bit(ParseIssue::stream_chunk_invalid), 0u) << file << ": " << line;
      }
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

// --- a response streamed and whole --------------------------------------------------------------

// A response described once; the test writes it as a body the way an API pretty-prints it
// (indented, non-ASCII as \uXXXX) and as the API's stream (compact, UTF-8 as is, text and
// arguments in pieces), and expects the same record from both.
struct Call {
  std::string id;
  std::string name;
  std::string args;  // JSON text
};
struct Response {
  std::string name;
  std::string id;
  std::string model;
  std::string text;
  std::string thinking;
  std::vector<Call> calls;
  std::string reason;
  int input_tokens;
  int output_tokens;
};

// s (UTF-8) as a JSON string literal; ascii: every non-ASCII character as \uXXXX (surrogate
// pairs above U+FFFF) and control characters as \u00XX, as Python's json.dumps writes them.
std::string js(std::string_view s, bool ascii = false) {
  std::string out = "\"";
  char buf[16];
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c == '\n' && !ascii) {
      out += "\\n";
      ++i;
    } else if (c < 0x20) {
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
      ++i;
    } else if (c < 0x80 || !ascii) {
      out += static_cast<char>(c);
      ++i;
    } else {
      const int n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2;
      std::uint32_t cp = c & (0x7F >> n);
      for (int k = 1; k < n; ++k) cp = cp << 6 | (static_cast<unsigned char>(s[i + static_cast<std::size_t>(k)]) & 0x3F);
      i += static_cast<std::size_t>(n);
      if (cp >= 0x10000) {
        cp -= 0x10000;
        std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
      } else {
        std::snprintf(buf, sizeof buf, "\\u%04x", cp);
      }
      out += buf;
    }
  }
  return out + "\"";
}

// Compact JSON text as a pretty-printing API sends it: a newline and indent after '{', '[' and
// ',', a space after ':', non-ASCII in strings as \uXXXX.
std::string pretty(std::string_view json) {
  std::string out;
  int depth = 0;
  for (std::size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (c == '"') {  // a string: re-escaped as ASCII
      std::size_t j = i + 1;
      while (json[j] != '"') j += json[j] == '\\' ? 2 : 1;
      const std::string_view body = json.substr(i + 1, j - i - 1);
      // Its escapes stay as they are; its non-ASCII characters become \uXXXX.
      std::string piece = "\"";
      for (std::size_t k = 0; k < body.size();) {
        const auto u = static_cast<unsigned char>(body[k]);
        if (u < 0x80) {
          piece += body[k++];
          continue;
        }
        const std::size_t n = u >= 0xF0 ? 4 : u >= 0xE0 ? 3 : 2;
        const std::string q = js(body.substr(k, n), true);
        piece += q.substr(1, q.size() - 2);
        k += n;
      }
      out += piece + "\"";
      i = j;
      continue;
    }
    out += c;
    if (c == '{' || c == '[' || c == ',') {
      depth += c == ',' ? 0 : 1;
      out += "\n" + std::string(static_cast<std::size_t>(depth) * 2, ' ');
    } else if (c == ':') {
      out += ' ';
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return out;
}

// text in three pieces, never inside a UTF-8 sequence.
std::vector<std::string> pieces(const std::string& text) {
  std::vector<std::string> v;
  std::size_t at = 0;
  for (int k = 1; k <= 3; ++k) {
    std::size_t end = k == 3 ? text.size() : text.size() * static_cast<std::size_t>(k) / 3;
    while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
    if (end > at) v.push_back(text.substr(at, end - at));
    at = std::max(at, end);
  }
  return v;
}

std::string sse_of(const std::vector<std::string>& events) {
  std::string s;
  for (const std::string& e : events) s += "data: " + e + "\n\n";
  return s;
}

struct Forms {
  std::string body;
  std::string sse;
};

Forms chat_forms(const Response& r) {
  std::string calls;
  for (const Call& c : r.calls)
    calls += std::string(calls.empty() ? "" : ",") + R"({"id":)" + js(c.id) + R"(,"type":"function","function":{"name":)" +
             js(c.name) + R"(,"arguments":)" + js(c.args) + "}}";
  const std::string head = R"({"id":)" + js(r.id) + R"(,"object":"chat.completion","created":1,"model":)" + js(r.model);
  const std::string usage = R"("usage":{"prompt_tokens":)" + std::to_string(r.input_tokens) +
                            R"(,"completion_tokens":)" + std::to_string(r.output_tokens) + "}";
  Forms f;
  f.body = pretty(head + R"(,"choices":[{"index":0,"message":{"role":"assistant","content":)" +
                  (r.text.empty() ? std::string("null") : js(r.text)) + (calls.empty() ? "" : R"(,"tool_calls":[)" + calls + "]") +
                  R"(},"finish_reason":)" + js(r.reason) + "}]," + usage + "}");
  const std::string chunk = R"({"id":)" + js(r.id) + R"(,"object":"chat.completion.chunk","model":)" + js(r.model) +
                            R"(,"choices":[{"index":0,"delta":)";
  std::vector<std::string> ev = {chunk + R"({"role":"assistant","content":""},"finish_reason":null}]})"};
  for (const std::string& p : pieces(r.text)) ev.push_back(chunk + R"({"content":)" + js(p) + "}}]}");
  for (std::size_t k = 0; k < r.calls.size(); ++k) {
    const Call& c = r.calls[k];
    const std::string idx = R"({"tool_calls":[{"index":)" + std::to_string(k);
    ev.push_back(chunk + idx + R"(,"id":)" + js(c.id) + R"(,"type":"function","function":{"name":)" + js(c.name) +
                 R"(,"arguments":""}}]}}]})");
    for (const std::string& p : pieces(c.args)) ev.push_back(chunk + idx + R"(,"function":{"arguments":)" + js(p) + "}}]}}]}");
  }
  ev.push_back(chunk + R"({},"finish_reason":)" + js(r.reason) + "}]}");
  ev.push_back(R"({"id":)" + js(r.id) + R"(,"model":)" + js(r.model) + R"(,"choices":[],)" + usage + "}");
  f.sse = sse_of(ev) + "data: [DONE]\n\n";
  return f;
}

Forms anthropic_forms(const Response& r) {
  std::string blocks;
  std::vector<std::string> ev = {R"({"type":"message_start","message":{"id":)" + js(r.id) +
                                 R"(,"type":"message","role":"assistant","model":)" + js(r.model) +
                                 R"(,"content":[],"stop_reason":null,"usage":{"input_tokens":)" +
                                 std::to_string(r.input_tokens) + R"(,"output_tokens":1}}})"};
  int index = 0;
  auto block = [&](const std::string& whole, const std::string& start, const std::vector<std::string>& deltas) {
    blocks += (blocks.empty() ? "" : ",") + whole;
    const std::string i = std::to_string(index++);
    ev.push_back(R"({"type":"content_block_start","index":)" + i + R"(,"content_block":)" + start + "}");
    for (const std::string& d : deltas) ev.push_back(R"({"type":"content_block_delta","index":)" + i + R"(,"delta":)" + d + "}");
    ev.push_back(R"({"type":"content_block_stop","index":)" + i + "}");
  };
  if (!r.thinking.empty()) {
    std::vector<std::string> d;
    for (const std::string& p : pieces(r.thinking)) d.push_back(R"({"type":"thinking_delta","thinking":)" + js(p) + "}");
    d.push_back(R"({"type":"signature_delta","signature":"c2ln"})");
    block(R"({"type":"thinking","thinking":)" + js(r.thinking) + R"(,"signature":"c2ln"})", R"({"type":"thinking","thinking":""})", d);
  }
  if (!r.text.empty()) {
    std::vector<std::string> d;
    for (const std::string& p : pieces(r.text)) d.push_back(R"({"type":"text_delta","text":)" + js(p) + "}");
    block(R"({"type":"text","text":)" + js(r.text) + "}", R"({"type":"text","text":""})", d);
  }
  for (const Call& c : r.calls) {
    std::vector<std::string> d;
    for (const std::string& p : pieces(c.args)) d.push_back(R"({"type":"input_json_delta","partial_json":)" + js(p) + "}");
    const std::string head = R"({"type":"tool_use","id":)" + js(c.id) + R"(,"name":)" + js(c.name) + R"(,"input":)";
    block(head + c.args + "}", head + "{}}", d);
  }
  ev.push_back(R"({"type":"message_delta","delta":{"stop_reason":)" + js(r.reason) +
               R"(,"stop_sequence":null},"usage":{"output_tokens":)" + std::to_string(r.output_tokens) + "}}");
  ev.push_back(R"({"type":"message_stop"})");
  Forms f;
  f.body = pretty(R"({"id":)" + js(r.id) + R"(,"type":"message","role":"assistant","model":)" + js(r.model) +
                  R"(,"content":[)" + blocks + R"(],"stop_reason":)" + js(r.reason) +
                  R"(,"stop_sequence":null,"usage":{"input_tokens":)" + std::to_string(r.input_tokens) +
                  R"(,"output_tokens":)" + std::to_string(r.output_tokens) + "}}");
  f.sse = sse_of(ev);
  return f;
}

Forms responses_forms(const Response& r) {
  std::string items;
  std::vector<std::string> ev = {R"({"type":"response.created","response":{"id":)" + js(r.id) +
                                 R"(,"object":"response","status":"in_progress","model":)" + js(r.model) + R"(,"output":[]}})"};
  int index = 0;
  auto item = [&](const std::string& whole, const std::string& added, const std::vector<std::string>& between) {
    items += (items.empty() ? "" : ",") + whole;
    const std::string i = std::to_string(index++);
    ev.push_back(R"({"type":"response.output_item.added","output_index":)" + i + R"(,"item":)" + added + "}");
    for (const std::string& b : between) ev.push_back(R"({"type":)" + b.substr(0, b.find('|')) + R"(,"output_index":)" + i + b.substr(b.find('|') + 1) + "}");
    ev.push_back(R"({"type":"response.output_item.done","output_index":)" + i + R"(,"item":)" + whole + "}");
  };
  if (!r.thinking.empty())
    item(R"({"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":)" + js(r.thinking) + "}]}",
         R"({"type":"reasoning","id":"rs_1","summary":[]})", {});
  if (!r.text.empty()) {
    std::vector<std::string> b;
    for (const std::string& p : pieces(r.text))
      b.push_back(R"("response.output_text.delta"|,"item_id":"msg_1","content_index":0,"delta":)" + js(p));
    item(R"({"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":)" +
             js(r.text) + R"(,"annotations":[]}]})",
         R"({"type":"message","id":"msg_1","status":"in_progress","role":"assistant","content":[]})", b);
  }
  for (std::size_t k = 0; k < r.calls.size(); ++k) {
    const Call& c = r.calls[k];
    const std::string fc = "fc_" + std::to_string(k);
    std::vector<std::string> b;
    for (const std::string& p : pieces(c.args))
      b.push_back(R"("response.function_call_arguments.delta"|,"item_id":")" + fc + R"(","delta":)" + js(p));
    const std::string head = R"({"type":"function_call","id":")" + fc + R"(","call_id":)" + js(c.id) + R"(,"name":)" + js(c.name);
    item(head + R"(,"arguments":)" + js(c.args) + R"(,"status":"completed"})", head + R"(,"arguments":"","status":"in_progress"})", b);
  }
  const std::string whole = R"({"id":)" + js(r.id) + R"(,"object":"response","status":)" + js(r.reason) + R"(,"model":)" +
                            js(r.model) + R"(,"output":[)" + items + R"(],"usage":{"input_tokens":)" +
                            std::to_string(r.input_tokens) + R"(,"output_tokens":)" + std::to_string(r.output_tokens) + "}}";
  ev.push_back(R"({"type":"response.completed","response":)" + whole + "}");
  return {pretty(whole), sse_of(ev)};
}

std::vector<Response> responses() {
  const std::string long_id(300, 'i');
  const std::string long_reason = "a_finish_reason_longer_than_32_bytes";
  const std::string text = "H\xC3\xA9llo \"quoted\" \\ back\nslash \xE2\x98\x83 \xF0\x9F\x98\x80 \xE2\x80\xA8 tab\t.";
  const std::vector<Call> one = {{"call_1", "get_weather", R"({"city":"Z)" "\xC3\xBC" R"(rich","note":"a\"b\nc","n":[1,{"x":null}]})"}};
  const std::vector<Call> several = {{"call_1", "f", "{}"}, {"call_2", "g", R"({"q":"\u00e9 \ud83d\ude00"})"},
                                     {"call_3", "h", R"({"deep":{"a":[true,false,1.5e3]}})"}};
  return {
      {"text", "id_1", "m-1", text, "", {}, "stop", 3, 4},
      {"one call", "id_2", "m-1", "", "", one, "tool_calls", 5, 6},
      {"several calls", "id_3", "m-1", "", "", several, "tool_calls", 7, 8},
      {"text and calls", "id_4", "m-1", "Let me look.", "", several, "tool_calls", 1, 2},
      {"thinking and text", "id_5", "m-1", text, "Let me think \xE2\x80\x94 carefully.", {}, "stop", 1, 2},
      {"thinking and a call", "id_6", "m-1", "", "Hmm.", one, "tool_calls", 1, 2},
      {"long values", long_id, long_id, "x", "", {}, long_reason, 1, 2},
  };
}

TEST_F(GatewayStructure, StreamedAndWholeFormsOfAResponseGiveTheSameRecord) {
  constexpr std::uint32_t k_compared = issue_bit(ParseIssue::completion_truncated) |
                                       issue_bit(ParseIssue::invalid_escape) | issue_bit(ParseIssue::field_wrong_type);
  struct Api {
    const char* name;
    const char* request;
    Forms (*forms)(const Response&);
  };
  const Api apis[] = {
      {"chat", R"({"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true})", chat_forms},
      {"anthropic", R"({"model":"m","system":"s","messages":[{"role":"user","content":"hi"}],"stream":true})", anthropic_forms},
      {"responses", R"({"model":"m","input":"hi","stream":true})", responses_forms},
  };
  for (const Api& api : apis) {
    for (Response r : responses()) {
      if (std::string_view(api.name) == "responses") r.reason = r.name == "long values" ? "incomplete" : "completed";
      const Forms f = api.forms(r);
      const std::string where = std::string(api.name) + " " + r.name;
      ASSERT_TRUE(is_json(f.body)) << where << ": " << f.body;
      rec_->reset();
      ASSERT_TRUE(parser_.parse_request(api.request, {}, *rec_).ok()) << where;
      (void)parser_.parse_response(f.body, *rec_);
      const std::vector<std::string> whole = response_fields(req());
      const std::string whole_completion(req().completion);
      const std::uint32_t whole_issues = rec_->issues() & k_compared;
      EXPECT_FALSE(whole_completion.empty()) << where;
      if (!r.calls.empty() && r.text.empty()) {  // the calls, compact (the body was indented)
        EXPECT_TRUE(is_json(whole_completion)) << where << ": " << whole_completion;
        EXPECT_EQ(whole_completion.find('\n'), std::string::npos) << where << ": " << whole_completion;
      }
      for (std::size_t step : {f.sse.size(), std::size_t{1}, std::size_t{7}}) {
        std::uint32_t issues = 0;
        const auto streamed = test::stream(parser_, f.sse, step, &issues);
        EXPECT_EQ(response_fields(streamed->request()), whole) << where << " step " << step;
        EXPECT_EQ(streamed->request().completion, whole_completion) << where << " step " << step;
        EXPECT_EQ(issues & k_compared, whole_issues) << where << " step " << step;
        EXPECT_EQ(issues & issue_bit(ParseIssue::stream_incomplete), 0u) << where << " step " << step;
      }
    }
  }
}

// The review's examples of the kind, written by hand.
TEST_F(GatewayStructure, ABadSurrogateInAToolUseInputIsReplacedAlikeInBothForms) {
  const std::string body =
      R"({"id":"m","type":"message","model":"c","content":[{"type":"tool_use","id":"t","name":"f","input":{"q":"\ud800"}}],"stop_reason":"tool_use"})";
  const std::string sse =
      "data: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"content\":[]}}\n\n"
      "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}\n\n"
      "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"q\\\":\\\"\\\\ud800\\\"}\"}}\n\n"
      "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"}}\n\n"
      "data: {\"type\":\"message_stop\"}\n\n";
  const std::string want = "[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{\"q\":\"\xEF\xBF\xBD\"}}]";
  const auto res = parser_.parse_response(body, *rec_);
  EXPECT_EQ(res.issues, issue_bit(ParseIssue::invalid_escape));
  EXPECT_EQ(req().completion, want);
  std::uint32_t issues = 0;
  const auto streamed = test::stream(parser_, sse, 5, &issues);
  EXPECT_EQ(issues, issue_bit(ParseIssue::invalid_escape));
  EXPECT_EQ(streamed->request().completion, want);
}

TEST_F(GatewayStructure, AnInputPlaceholderWithWhitespaceIsNotTakenAsInput) {
  // (A data line holds no newline: spaces and tabs are the whitespace it can have.)
  for (const char* placeholder : {"{ }", "{\t}", "{  \t }", "{}"}) {
    const std::string sse =
        std::string("data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":") +
        placeholder +
        "}}\n\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"b\\\":2}\"}}\n\n"
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"}}\n\n";
    std::uint32_t issues = 0;
    const auto streamed = test::stream(parser_, sse, 3, &issues);
    EXPECT_EQ(issues, 0u) << placeholder;
    EXPECT_EQ(streamed->request().completion, R"([{"type":"tool_use","id":"t","name":"f","input":{"b":2}}])") << placeholder;
  }
  // A real input given whole in the start event is kept.
  const auto given = test::stream(
      parser_,
      "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{ \"a\" : 1 }}}\n\n"
      "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"}}\n\n",
      4096);
  EXPECT_EQ(given->request().completion, R"([{"type":"tool_use","id":"t","name":"f","input":{"a":1}}])");
}

TEST_F(GatewayStructure, AFunctionCallOnlyInTheFinalResponsesEventIsTheCompletion) {
  const std::string item =
      R"({"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":"{\"a\":1}","status":"completed"})";
  const std::string body = R"({"id":"r","object":"response","status":"completed","model":"m","output":[)" + item +
                           R"(],"usage":{"input_tokens":3,"output_tokens":4}})";
  ASSERT_TRUE(parser_.parse_response(body, *rec_).ok());
  const std::string whole_completion(req().completion);
  // The canonical form: the item's own id and status left out (as the deltas give it).
  EXPECT_EQ(whole_completion, R"([{"type":"function_call","call_id":"call_1","name":"f","arguments":"{\"a\":1}"}])");
  const std::string sse = "data: {\"type\":\"response.created\",\"response\":{\"id\":\"r\",\"model\":\"m\",\"status\":\"in_progress\",\"output\":[]}}\n\n"
                          "data: {\"type\":\"response.completed\",\"response\":" + body + "}\n\n";
  std::uint32_t issues = 0;
  const auto streamed = test::stream(parser_, sse, 9, &issues);
  EXPECT_EQ(issues, 0u);
  EXPECT_EQ(streamed->request().completion, whole_completion);
  EXPECT_EQ(streamed->request().output_tokens, 4);
  EXPECT_EQ(streamed->request().finish_reason, "completed");
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
