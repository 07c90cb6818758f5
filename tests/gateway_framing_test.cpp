// Tests for tracecast/gateway.h: SSE framing as the WHATWG spec reads an event stream
// ("Interpreting an event stream") — CRLF, LF and lone-CR line ends, events whose data spans
// several `data:` lines, `data:` with or without its space, comments and the event/id/retry
// fields, data after `[DONE]`, the line limit applied to an event — each framing of each
// streaming API shape fed whole, in 64-byte pieces and one byte at a time; and the four small
// mapping choices of issue 13's last review (tool-call JSON within max_completion_bytes, the
// Responses final model, max_completion_tokens over max_tokens, set_outcome's status range).
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <cstdint>
#include <functional>
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
using test::stream;

// Every "\n" of sse becomes eol.
std::string with_eol(std::string_view sse, std::string_view eol) {
  std::string out;
  for (const char c : sse) {
    if (c == '\n') {
      out += eol;
    } else {
      out += c;
    }
  }
  return out;
}

// Applies `edit` to every line of an LF-framed stream (without its '\n'); the result replaces
// the line (it may hold several lines).
std::string per_line(std::string_view sse, const std::function<std::string(std::string_view)>& edit) {
  std::string out;
  while (!sse.empty()) {
    const std::size_t nl = sse.find('\n');
    const std::string_view line = sse.substr(0, nl);
    out += edit(line);
    if (nl == std::string_view::npos) break;
    out += '\n';
    sse.remove_prefix(nl + 1);
  }
  return out;
}

// Each `data: {...}` line as three data lines: "{", the members, "}" (a '\n' between JSON
// tokens is whitespace, so the joined data is the same object); no_space: `data:` without
// the space after the colon.
std::string multi_line_data(std::string_view sse, bool no_space = false) {
  return per_line(sse, [&](std::string_view line) {
    const std::string prefix = no_space ? "data:" : "data: ";
    if (line.substr(0, 7) != "data: {" || line.back() != '}') return std::string(line);
    const std::string_view json = line.substr(6);
    return prefix + "{\n" + prefix + std::string(json.substr(1, json.size() - 2)) + "\n" + prefix + "}";
  });
}

// `data:` without its space on every data line.
std::string no_space(std::string_view sse) {
  return per_line(sse, [](std::string_view line) {
    if (line.substr(0, 6) != "data: ") return std::string(line);
    return "data:" + std::string(line.substr(6));
  });
}

// After each data line, inside its event: an id, a retry, a comment and an unknown field (the
// event is then not known to end at its data line's end).
std::string with_fields(std::string_view sse) {
  return per_line(sse, [](std::string_view line) {
    if (line.substr(0, 5) != "data:") return std::string(line);
    return std::string(line) + "\nid: 42\nretry: 3000\n: keep-alive\nx-unknown: 1";
  });
}

struct Framing {
  std::string name;
  std::function<std::string(std::string_view)> make;
};

const std::vector<Framing>& framings() {
  static const std::vector<Framing> v = {
      {"crlf", [](std::string_view s) { return with_eol(s, "\r\n"); }},
      {"lone_cr", [](std::string_view s) { return with_eol(s, "\r"); }},
      {"multi_line_data", [](std::string_view s) { return multi_line_data(s); }},
      {"multi_line_data_no_space_crlf", [](std::string_view s) { return with_eol(multi_line_data(s, true), "\r\n"); }},
      {"no_space", [](std::string_view s) { return no_space(s); }},
      {"fields_and_comments", [](std::string_view s) { return with_fields(s); }},
      {"fields_multi_line_lone_cr", [](std::string_view s) { return with_eol(with_fields(multi_line_data(s)), "\r"); }},
  };
  return v;
}

// The span fields a stream gives.
void expect_same(const LlmRequest& got, const LlmRequest& want, const std::string& what) {
  EXPECT_EQ(got.completion, want.completion) << what;
  EXPECT_EQ(got.finish_reason, want.finish_reason) << what;
  EXPECT_EQ(got.finish_reasons, want.finish_reasons) << what;
  EXPECT_EQ(got.input_tokens, want.input_tokens) << what;
  EXPECT_EQ(got.output_tokens, want.output_tokens) << what;
  EXPECT_EQ(got.cache_read_input_tokens, want.cache_read_input_tokens) << what;
  EXPECT_EQ(got.cache_creation_input_tokens, want.cache_creation_input_tokens) << what;
  EXPECT_EQ(got.reasoning_output_tokens, want.reasoning_output_tokens) << what;
  EXPECT_EQ(got.response_id, want.response_id) << what;
  EXPECT_EQ(got.response_model, want.response_model) << what;
  EXPECT_EQ(got.provider, want.provider) << what;
  EXPECT_EQ(std::isnan(got.cost), std::isnan(want.cost)) << what;
  if (!std::isnan(want.cost)) {
    EXPECT_EQ(got.cost, want.cost) << what;
  }
  EXPECT_EQ(got.error, want.error) << what;
  EXPECT_EQ(got.error_message, want.error_message) << what;
}

// Every stream of tests/data/gateway: chat completions, Responses (text, function call,
// error) and Anthropic Messages (text, tool use, error).
const std::vector<std::string>& stream_files() {
  static const std::vector<std::string> v = {
      "stream_response.sse",        "responses_stream.sse",   "responses_function_call_stream.sse",
      "responses_error_stream.sse", "anthropic_stream.sse",   "anthropic_tool_stream.sse",
      "anthropic_error_stream.sse",
  };
  return v;
}

class GatewayFraming : public ::testing::Test {
 protected:
  GatewayParser parser_;
};

TEST_F(GatewayFraming, EveryFramingOfEveryShapeGivesTheLfStreamsFieldsHoweverFed) {
  for (const std::string& file : stream_files()) {
    const std::string lf = read_data(file);
    std::uint32_t want_issues = 0;
    const auto want = stream(parser_, lf, lf.size(), &want_issues);
    ASSERT_FALSE(want->request().completion.empty() && !want->request().error) << file;
    for (const Framing& fr : framings()) {
      const std::string sse = fr.make(lf);
      ASSERT_NE(sse, lf) << file << " " << fr.name;  // the framing changed something
      for (const std::size_t step : {sse.size(), std::size_t{64}, std::size_t{1}}) {
        const std::string what = file + " " + fr.name + " step " + std::to_string(step);
        std::uint32_t issues = 0;
        const auto got = stream(parser_, sse, step, &issues);
        expect_same(got->request(), want->request(), what);
        EXPECT_EQ(issues, want_issues) << what;
        EXPECT_EQ(got->issues(), want->issues()) << what;
      }
    }
  }
}

// A multi-line event's data is one JSON object: it used to be read line by line, each line
// flagged as a broken chunk.
TEST_F(GatewayFraming, AnEventsDataLinesAreJoinedAndReadAsOneObject) {
  const std::string sse =
      "data: {\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\n"
      "data: \"delta\":{\"content\":\"Hi\"},\n"
      "data:\"finish_reason\":\"stop\"}]}\n"
      "\n"
      "data: [DONE]\n\n";
  for (const std::size_t step : {sse.size(), std::size_t{64}, std::size_t{7}, std::size_t{1}}) {
    std::uint32_t issues = 0;
    const auto rec = stream(parser_, sse, step, &issues);
    EXPECT_EQ(issues, 0u) << step;
    EXPECT_EQ(rec->request().completion, "Hi") << step;
    EXPECT_EQ(rec->request().finish_reason, "stop") << step;
    EXPECT_EQ(rec->request().response_id, "c1") << step;
  }
}

// Two JSON objects in one event (two data lines each a whole chunk) are not one object:
// flagged, not read as two chunks.
TEST_F(GatewayFraming, TwoObjectsInOneEventAreFlaggedNotReadTwice) {
  const std::string sse =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"}}]}\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"B\"}}]}\n"
      "\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"C\"},\"finish_reason\":\"stop\"}]}\n\n";
  for (const std::size_t step : {sse.size(), std::size_t{64}, std::size_t{1}}) {
    std::uint32_t issues = 0;
    const auto rec = stream(parser_, sse, step, &issues);
    EXPECT_NE(issues & issue_bit(ParseIssue::stream_chunk_invalid), 0u) << step;
    EXPECT_EQ(rec->request().completion.find('B'), std::string_view::npos) << step;
    EXPECT_NE(rec->request().completion.find('C'), std::string_view::npos) << step;
  }
}

// A CR ending one feed and an LF starting the next are one line end, not a line end and a
// blank line; a CR ending one feed and a CR starting the next are a line end and a blank line.
TEST_F(GatewayFraming, ACrAndAnLfInTwoFeedsAreOneLineEnd) {
  const std::string a = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"}}]}";
  const std::string b = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"B\"},\"finish_reason\":\"stop\"}]}";
  {
    // CRLF split between feeds inside a multi-line event: were the LF a blank line, the
    // event would end after "{" and both halves be flagged.
    auto rec = std::make_unique<GatewayRecord>();
    parser_.begin_stream(*rec);
    std::uint32_t issues = 0;
    for (const std::string_view piece : {std::string_view{"data: {\r"}, std::string_view{"\ndata: \"choices\":[{\"index\":0,"},
                                         std::string_view{"\"delta\":{\"content\":\"A\"}}]}\r"}, std::string_view{"\n"},
                                         std::string_view{"\r"}, std::string_view{"\n"}})
      issues |= parser_.feed_stream(piece, 1, *rec).issues;
    issues |= parser_.feed_stream(b + "\r", 2, *rec).issues;
    issues |= parser_.feed_stream("\r", 3, *rec).issues;  // a lone CR: the blank line
    issues |= parser_.finish_stream(*rec).issues;
    EXPECT_EQ(issues, 0u);
    EXPECT_EQ(rec->request().completion, "AB");
    EXPECT_EQ(rec->request().finish_reason, "stop");
  }
  {
    // An empty feed between the CR and the LF changes nothing.
    auto rec = std::make_unique<GatewayRecord>();
    parser_.begin_stream(*rec);
    std::uint32_t issues = 0;
    issues |= parser_.feed_stream(a + "\r", 1, *rec).issues;
    issues |= parser_.feed_stream("", 1, *rec).issues;
    issues |= parser_.feed_stream("\n\r\n" + b + "\r\n\r\n", 1, *rec).issues;
    issues |= parser_.finish_stream(*rec).issues;
    EXPECT_EQ(issues, 0u);
    EXPECT_EQ(rec->request().completion, "AB");
  }
}

TEST_F(GatewayFraming, ABareDataFieldIsAnEmptyValue) {
  // "data" alone is the data field with an empty value: joined, the event is "\n{...}".
  const std::string sse = "data\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"X\"},\"finish_reason\":\"stop\"}]}\n\n";
  for (const std::size_t step : {sse.size(), std::size_t{3}, std::size_t{1}}) {
    std::uint32_t issues = 0;
    const auto rec = stream(parser_, sse, step, &issues);
    EXPECT_EQ(issues, 0u) << step;
    EXPECT_EQ(rec->request().completion, "X") << step;
  }
}

// Lines after `data: [DONE]` are not read: a data event there is flagged (stream_chunk_invalid)
// and changes nothing; comments and other fields there are not flagged.
TEST_F(GatewayFraming, DataAfterDoneIsFlaggedNotRead) {
  const std::string lf = read_data("stream_response.sse");
  std::uint32_t want_issues = 0;
  const auto want = stream(parser_, lf, lf.size(), &want_issues);
  ASSERT_EQ(want_issues, 0u);
  const std::string late =
      "data: {\"id\":\"late\",\"model\":\"late\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"LATE\"},"
      "\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\n";
  for (const std::string& tail : {late, with_eol(late, "\r"), multi_line_data(late), std::string("data: [DONE]\n\n")}) {
    for (const std::size_t step : {std::size_t{100000}, std::size_t{64}, std::size_t{1}}) {
      std::uint32_t issues = 0;
      const auto rec = stream(parser_, lf + tail, step, &issues);
      EXPECT_EQ(issues, issue_bit(ParseIssue::stream_chunk_invalid)) << step << tail;
      expect_same(rec->request(), want->request(), "after [DONE]");
    }
  }
  std::uint32_t issues = 0;
  const auto rec = stream(parser_, lf + ": comment\nevent: x\nid: 1\n\n", 64, &issues);
  EXPECT_EQ(issues, 0u);
  expect_same(rec->request(), want->request(), "comment after [DONE]");
}

// max_stream_line_bytes bounds a line and an event (its data lines joined) however fed; the
// dropped event is counted and the next one read.
TEST_F(GatewayFraming, TheLineLimitBoundsAnEventHoweverFed) {
  GatewayConfig c;
  c.max_stream_line_bytes = 64;
  GatewayParser parser(c);
  const std::string ok = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"}}]}\n\n";
  const std::string end = "data: {\"choices\":[{\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
  // Three data lines, each under the limit, together over it (25 + 1 + 25 + 1 + 25 > 64).
  const std::string big = "data: {\"a\":\"aaaaaaaaaaaaaaaaa\",\ndata: \"b\":\"bbbbbbbbbbbbbbbbbbb\",\n"
                          "data: \"c\":\"ccccccccccccccccccc\"}\n\n";
  // An event's data of exactly the limit (23 + 1 + 40 bytes) is read.
  const std::string fits = "data: {\"choices\":[{\"index\":0,\ndata: \"delta\":{\"content\":\"!!!!!!!!!!!!!!!\"}}]}\n\n";
  for (const std::string& eol : {std::string("\n"), std::string("\r\n"), std::string("\r")}) {
    const std::string sse = with_eol(ok + big + fits + end, eol);
    for (const std::size_t step : {sse.size(), std::size_t{64}, std::size_t{1}}) {
      GatewayRecord rec(c);
      parser.begin_stream(rec);
      std::uint32_t issues = 0;
      for (std::size_t i = 0; i < sse.size(); i += step) issues |= parser.feed_stream(std::string_view(sse).substr(i, step), 1, rec).issues;
      issues |= parser.finish_stream(rec).issues;
      EXPECT_EQ(issues, issue_bit(ParseIssue::stream_line_too_long)) << step;
      EXPECT_EQ(rec.request().completion, "ok!!!!!!!!!!!!!!!") << step;
      EXPECT_EQ(rec.request().finish_reason, "stop") << step;
    }
  }
}

// An event the stream leaves open (its data line ends, no blank line follows) is read at
// finish_stream, in every framing.
TEST_F(GatewayFraming, AnEventLeftOpenAtTheEndIsRead) {
  const std::string body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"end\"},\"finish_reason\":\"stop\"}]}";
  for (const std::string& sse : {body, body + "\n", body + "\r", body + "\r\n", multi_line_data(body) + "\r"}) {
    for (const std::size_t step : {sse.size(), std::size_t{64}, std::size_t{1}}) {
      std::uint32_t issues = 0;
      const auto rec = stream(parser_, sse, step, &issues);
      EXPECT_EQ(issues, 0u) << step;
      EXPECT_EQ(rec->request().completion, "end") << step;
    }
  }
}

TEST_F(GatewayFraming, EveryFramingAllocatesNothingOnceWarm) {
  std::vector<std::string> streams;
  for (const std::string& file : stream_files()) {
    const std::string lf = read_data(file);
    streams.push_back(lf);
    for (const Framing& fr : framings()) streams.push_back(fr.make(lf));
  }
  auto rec = std::make_unique<GatewayRecord>();
  auto round = [&] {
    for (const std::string& sse : streams) {
      for (const std::size_t step : {sse.size(), std::size_t{64}, std::size_t{1}}) {
        rec->reset();
        (void)test::stream_into(parser_, *rec, sse, step);
      }
    }
  };
  round();
  round();
  test::AllocationScope scope;
  round();
  EXPECT_EQ(scope.count(), 0u);
}

// --- the four mapping choices ------------------------------------------------------------------

// (a) The tool-call JSON around the arguments counts against max_completion_bytes too.
TEST_F(GatewayFraming, ToolCallJsonIsBoundedByMaxCompletionBytes) {
  for (const std::string file : {"anthropic_tool_stream.sse", "responses_function_call_stream.sse"}) {
    const std::string sse = read_data(file);
    GatewayParser unbounded;
    const auto whole = stream(unbounded, sse, sse.size());
    const std::size_t full = whole->request().completion.size();
    ASSERT_GT(full, 40u) << file;
    ASSERT_EQ(whole->request().completion.front(), '[') << file;
    for (const std::size_t limit : {std::size_t{0}, std::size_t{10}, full - 30, full - 1, full}) {
      GatewayConfig c;
      c.max_completion_bytes = limit;
      GatewayParser parser(c);
      GatewayRecord rec(c);
      parser.begin_stream(rec);
      std::uint32_t issues = 0;
      for (std::size_t i = 0; i < sse.size(); i += 64) issues |= parser.feed_stream(std::string_view(sse).substr(i, 64), 1, rec).issues;
      issues |= parser.finish_stream(rec).issues;
      EXPECT_LE(rec.request().completion.size(), limit) << file << " " << limit;
      if (!rec.request().completion.empty()) {  // cut to fit, still valid JSON
        simdjson::dom::parser json;
        simdjson::dom::element doc;
        EXPECT_EQ(json.parse(simdjson::padded_string(rec.request().completion)).get(doc), simdjson::SUCCESS)
            << file << " " << limit << ": " << rec.request().completion;
      }
      const bool cut = limit < full;
      EXPECT_EQ((issues & issue_bit(ParseIssue::completion_truncated)) != 0, cut) << file << " " << limit;
      EXPECT_EQ((rec.issues() & issue_bit(ParseIssue::completion_truncated)) != 0, cut) << file << " " << limit;
      if (!cut) {
        EXPECT_EQ(rec.request().completion, whole->request().completion) << file;
      }
    }
  }
}

// (b) In a Responses stream the final response's model wins over the first one seen.
TEST_F(GatewayFraming, TheResponsesFinalModelWins) {
  const std::string sse =
      "data: {\"type\":\"response.created\",\"response\":{\"id\":\"r1\",\"model\":\"gpt-4.1\",\"status\":\"in_progress\",\"output\":[]}}\n\n"
      "data: {\"type\":\"response.output_text.delta\",\"output_index\":0,\"delta\":\"Hi\"}\n\n"
      "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"r1\",\"model\":\"gpt-4.1-2025-04-14\",\"status\":\"completed\","
      "\"output\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n";
  for (const std::size_t step : {sse.size(), std::size_t{64}, std::size_t{1}}) {
    std::uint32_t issues = 0;
    const auto rec = stream(parser_, sse, step, &issues);
    EXPECT_EQ(issues, 0u);
    EXPECT_EQ(rec->request().response_model, "gpt-4.1-2025-04-14") << step;
    EXPECT_EQ(rec->request().response_id, "r1") << step;
    EXPECT_EQ(rec->request().completion, "Hi") << step;
  }
  // A final response without a model keeps the one seen before.
  const std::string no_model =
      "data: {\"type\":\"response.created\",\"response\":{\"id\":\"r1\",\"model\":\"gpt-4.1\",\"output\":[]}}\n\n"
      "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"r1\",\"status\":\"completed\",\"output\":[]}}\n\n";
  EXPECT_EQ(stream(parser_, no_model, 64)->request().response_model, "gpt-4.1");
  // The data file: created and completed name the same model.
  const std::string file = read_data("responses_stream.sse");
  EXPECT_EQ(stream(parser_, file, 64)->request().response_model, "gpt-4.1-2025-04-14");
}

// (c) max_completion_tokens wins over the deprecated max_tokens, in either order.
TEST_F(GatewayFraming, MaxCompletionTokensWinsOverMaxTokens) {
  GatewayRecord rec;
  for (const std::string body : {R"({"model":"m","messages":[],"max_tokens":10,"max_completion_tokens":20})",
                                 R"({"model":"m","messages":[],"max_completion_tokens":20,"max_tokens":10})",
                                 R"({"model":"m","messages":[],"max_completion_tokens":20,"max_tokens":null})"}) {
    rec.reset();
    EXPECT_TRUE(parser_.parse_request(body, {}, rec).ok()) << body;
    EXPECT_EQ(rec.request().max_tokens, 20) << body;
  }
  // Either alone, or the other null, is read.
  for (const std::string body : {R"({"model":"m","messages":[],"max_tokens":10})",
                                 R"({"model":"m","messages":[],"max_completion_tokens":null,"max_tokens":10})",
                                 R"({"model":"m","messages":[],"max_tokens":10,"max_completion_tokens":null})"}) {
    rec.reset();
    EXPECT_TRUE(parser_.parse_request(body, {}, rec).ok()) << body;
    EXPECT_EQ(rec.request().max_tokens, 10) << body;
  }
  // A wrong type is flagged and does not override.
  rec.reset();
  const auto r = parser_.parse_request(R"({"model":"m","messages":[],"max_tokens":10,"max_completion_tokens":"x"})", {}, rec);
  EXPECT_TRUE(r.has(ParseIssue::field_wrong_type));
  EXPECT_EQ(rec.request().max_tokens, 10);
}

// (d) set_outcome takes an HTTP status (100..599) only; anything else is left unknown (0) and
// flagged, and an error body with it still makes an error.
TEST_F(GatewayFraming, AnOutcomeStatusOutsideHttpsRangeIsFlaggedNotWritten) {
  GatewayRecord rec;
  for (const int status : {-1, 1, 99, 600, 1000, 40400, -500}) {
    rec.reset();
    const auto r = parser_.set_outcome(status, {}, rec);
    EXPECT_TRUE(r.has(ParseIssue::field_wrong_type)) << status;
    EXPECT_EQ(rec.request().http_status, 0) << status;
    EXPECT_FALSE(rec.request().error) << status;
    rec.reset();
    const auto e = parser_.set_outcome(status, R"({"error":{"message":"boom"}})", rec);
    EXPECT_TRUE(e.has(ParseIssue::field_wrong_type)) << status;
    EXPECT_EQ(rec.request().http_status, 0) << status;
    EXPECT_TRUE(rec.request().error) << status;
    EXPECT_EQ(rec.request().error_message, "boom") << status;
  }
  for (const int status : {0, 100, 200, 399, 400, 599}) {
    rec.reset();
    const auto r = parser_.set_outcome(status, {}, rec);
    EXPECT_TRUE(r.ok()) << status;
    EXPECT_EQ(rec.request().http_status, status) << status;
    EXPECT_EQ(rec.request().error, status >= 400) << status;
  }
}

}  // namespace
}  // namespace tracecast
