// Tests for tracecast/gateway.h: the kinds of input the November 2026 user review found
// failing, each as a kind (the review's example and more members of it).
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <cstdlib>
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

using test::stream;

class GatewayReview : public ::testing::Test {
 protected:
  GatewayParser parser_;
  std::unique_ptr<GatewayRecord> rec_ = std::make_unique<GatewayRecord>();
  LlmRequest& req() { return rec_->request(); }
};

// --- kind 1: numbers of more than 19 significant digits ----------------------------------------

const std::vector<std::string>& long_numbers() {
  static const std::vector<std::string> v = {
      "0.7000000000000000000001", "0.1234567890123456789012345678901234567890",
      "0.99999999999999999999999999", "1.00000000000000000000001e-1", "0.000000000000000000000012345678901234567890123",
      "3.14159265358979323846264338327950288", "250.00000000000000000000000000001", "7000000000000000000001e-22",
  };
  return v;
}

TEST_F(GatewayReview, LongNumbersInRequestFieldsReadAsTheNearestDouble) {
  for (const std::string& n : long_numbers()) {
    const double want = std::strtod(n.c_str(), nullptr);
    const bool top_p_valid = want <= 1;  // top_p is 0..1 (above: out of range, flagged)
    const std::string body = R"({"model":"m","temperature":)" + n + R"(,"top_p":)" + (top_p_valid ? n : "0.5") + R"(,"trace":{"f":)" + n +
                             R"(,"g":-)" + n + R"(,"after":"x"}})";
    const auto res = parser_.parse_request(body, {}, *rec_);
    EXPECT_TRUE(res.ok()) << n << ": " << res.detail;
    EXPECT_EQ(req().temperature, want) << n;
    EXPECT_EQ(req().top_p, top_p_valid ? want : 0.5) << n;
    const MetadataEntry* f = find_meta(req(), "f");
    const MetadataEntry* g = find_meta(req(), "g");
    ASSERT_NE(f, nullptr) << n;
    ASSERT_NE(g, nullptr) << n;
    EXPECT_EQ(f->value.as_double(), want) << n;
    EXPECT_EQ(g->value.as_double(), -want) << n;
    EXPECT_EQ(meta_string(req(), "after"), "x");
  }
}

TEST_F(GatewayReview, LongNumbersInUsageCostReadAsTheNearestDoubleInBodiesAndStreams) {
  for (const std::string& n : long_numbers()) {
    const double want = std::strtod(n.c_str(), nullptr);
    const std::string body = R"({"id":"g1","model":"m","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":2,"cost":)" +
                             n + "}}";
    const auto res = parser_.parse_response(body, *rec_);
    EXPECT_TRUE(res.ok()) << n << ": " << res.detail;
    EXPECT_EQ(req().cost, want) << n;
    const std::string sse =
        R"(data: {"id":"g1","model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]})"
        "\n\n"
        R"(data: {"id":"g1","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"cost":)" +
        n + "}}\n\ndata: [DONE]\n\n";
    for (const std::size_t step : {sse.size(), std::size_t{1}, std::size_t{7}, std::size_t{64}}) {
      std::uint32_t bits = 0;
      const auto rec = stream(parser_, sse, step, &bits);
      EXPECT_EQ(bits, 0u) << n;
      EXPECT_EQ(rec->request().cost, want) << n << " step " << step;
      EXPECT_EQ(rec->request().completion, "hi");
    }
  }
}

TEST_F(GatewayReview, ShortNumbersStillReadAsBefore) {
  ASSERT_TRUE(parser_.parse_request(R"({"model":"m","temperature":0.7,"top_p":1,"trace":{"f":1.5e3}})", {}, *rec_).ok());
  EXPECT_EQ(req().temperature, 0.7);
  EXPECT_EQ(req().top_p, 1.0);
  EXPECT_EQ(find_meta(req(), "f")->value.as_double(), 1500.0);
}

TEST_F(GatewayReview, LongNumbersAllocateNothingAfterWarmUp) {
  const std::string body = R"({"model":"m","temperature":0.7000000000000000000001,"trace":{"f":0.1234567890123456789012345678901234567890}})";
  ASSERT_TRUE(parser_.parse_request(body, {}, *rec_).ok());
  test::AllocationScope counter;
  ASSERT_TRUE(parser_.parse_request(body, {}, *rec_).ok());
  EXPECT_EQ(counter.count(), 0u);
}


// --- kind 2: max_stream_line_bytes holds however the stream is fed ------------------------------

// Feeds sse in pieces whose sizes come from a fixed pseudo-random sequence (1..97 bytes).
std::unique_ptr<GatewayRecord> stream_random(GatewayParser& parser, std::string_view sse, std::uint32_t seed,
                                             std::uint32_t* issues) {
  auto rec = std::make_unique<GatewayRecord>();
  parser.begin_stream(*rec);
  std::uint32_t bits = 0;
  for (std::size_t i = 0; i < sse.size();) {
    seed = seed * 1103515245u + 12345u;
    const std::size_t step = 1 + (seed >> 16) % 97;
    bits |= parser.feed_stream(sse.substr(i, step), 1 + i, *rec).issues;
    i += step;
  }
  bits |= parser.finish_stream(*rec).issues;
  *issues = bits;
  return rec;
}

TEST_F(GatewayReview, AStreamLineOverTheLimitIsDroppedAndCountedHoweverFed) {
  GatewayConfig c;
  c.max_stream_line_bytes = 64;
  GatewayParser parser(c);
  const std::string head = R"(data: {"choices":[{"index":0,"delta":{"content":")";
  const std::string tail = R"("}}]})";
  // Lines of limit - 1, limit and limit + 1 bytes, and the review's 60-byte content.
  for (const std::size_t line_len : {std::size_t{63}, std::size_t{64}, std::size_t{65}, head.size() + 60 + tail.size()}) {
    const std::size_t content = line_len - head.size() - tail.size();
    const std::string sse = head + std::string(content, 'x') + tail + "\n\n" +
                            R"(data: {"choices":[{"index":0,"delta":{"content":"y"}}]})" "\n\n" R"(data: {"choices":[{"index":0,"finish_reason":"stop"}]})" +
                            "\n\ndata: [DONE]\n\n";
    const bool fits = line_len <= 64;
    const std::string want = fits ? std::string(content, 'x') + "y" : "y";
    const std::uint32_t want_bits = fits ? 0u : issue_bit(ParseIssue::stream_line_too_long);
    for (const std::size_t step : {sse.size(), std::size_t{1}, std::size_t{63}, std::size_t{64}, std::size_t{65}}) {
      std::uint32_t bits = 0;
      const auto rec = stream(parser, sse, step, &bits);
      EXPECT_EQ(rec->request().completion, want) << line_len << " step " << step;
      EXPECT_EQ(bits, want_bits) << line_len << " step " << step;
      EXPECT_EQ(rec->request().finish_reason, "stop");
    }
    for (std::uint32_t seed = 1; seed <= 20; ++seed) {
      std::uint32_t bits = 0;
      const auto rec = stream_random(parser, sse, seed, &bits);
      EXPECT_EQ(rec->request().completion, want) << line_len << " seed " << seed;
      EXPECT_EQ(bits, want_bits) << line_len << " seed " << seed;
    }
  }
}

TEST_F(GatewayReview, ALongNonDataLineIsSkippedUncountedHoweverFed) {
  GatewayConfig c;
  c.max_stream_line_bytes = 64;
  GatewayParser parser(c);
  const std::string sse = ": " + std::string(100, 'k') + "\nevent: " + std::string(100, 'e') +
                          "\n" R"(data: {"choices":[{"index":0,"delta":{"content":"y"}}]})" "\n\n" R"(data: {"choices":[{"index":0,"finish_reason":"stop"}]})"
                          "\n\ndata: [DONE]\n\n";
  // Also as the stream's last bytes, with no newline after them (found by fuzz_gateway: fed
  // whole, such a line was taken for a data line cut by the end of the stream).
  for (const std::string& s : {sse, sse + ": " + std::string(100, 'k'), sse + "event: " + std::string(100, 'e')}) {
    for (const std::size_t step : {s.size(), std::size_t{1}, std::size_t{3}, std::size_t{64}, std::size_t{150}}) {
      std::uint32_t bits = 0;
      const auto rec = stream(parser, s, step, &bits);
      EXPECT_EQ(rec->request().completion, "y") << step;
      EXPECT_EQ(bits, 0u) << step;
    }
  }
}

TEST_F(GatewayReview, AFiveMebibyteLineIsDroppedWithTheDefaultLimitWhenFedWhole) {
  const std::string sse = R"(data: {"choices":[{"index":0,"delta":{"content":")" + std::string(5u << 20, 'x') +
                          R"("}}]})" "\n\n" R"(data: {"choices":[{"index":0,"delta":{"content":"y"}}]})" "\n\n" R"(data: {"choices":[{"index":0,"finish_reason":"stop"}]})"
                          "\n\ndata: [DONE]\n\n";
  for (const std::size_t step : {sse.size(), std::size_t{65536}}) {
    std::uint32_t bits = 0;
    const auto rec = stream(parser_, sse, step, &bits);
    EXPECT_EQ(rec->request().completion, "y") << step;
    EXPECT_EQ(bits, issue_bit(ParseIssue::stream_line_too_long)) << step;
  }
}

// --- kind 3: a choice or tool call whose index is not a non-negative integer -------------------

std::string chat_chunk(std::string_view choices) {
  return "data: {\"id\":\"c1\",\"model\":\"m\",\"choices\":" + std::string(choices) + "}\n\n";
}

TEST_F(GatewayReview, AStreamedChoiceWithAnInvalidIndexIsMergedNowhereAndFlagged) {
  for (const char* bad : {R"("index":-1,)", R"("index":1.0,)", R"("index":99999999999999999999,)", R"("index":null,)"}) {
    const std::string bad_choice = std::string("{") + bad + R"("delta":{"content":"NEG"},"finish_reason":"length"})";
    const std::string good = R"({"index":0,"delta":{"content":"A"}})";
    const std::string done = chat_chunk(R"([{"index":0,"delta":{},"finish_reason":"stop"}])") + "data: [DONE]\n\n";
    // Alone in its chunk, after choice 0 in one chunk, before it.
    for (const std::string& sse : {chat_chunk("[" + good + "]") + chat_chunk("[" + bad_choice + "]") + done,
                                   chat_chunk("[" + good + "," + bad_choice + "]") + done,
                                   chat_chunk("[" + bad_choice + "," + good + "]") + done}) {
      for (const std::size_t step : {sse.size(), std::size_t{1}, std::size_t{64}}) {
        std::uint32_t bits = 0;
        const auto rec = stream(parser_, sse, step, &bits);
        EXPECT_EQ(rec->request().completion, "A") << bad << " | " << sse;
        EXPECT_EQ(rec->request().finish_reason, "stop") << bad;
        EXPECT_EQ(bits, issue_bit(ParseIssue::field_wrong_type)) << bad << " | " << sse;
      }
    }
  }
}

TEST_F(GatewayReview, AStreamedChoiceWithNoIndexIsChoiceZeroWhereverItStands) {
  const std::string done = chat_chunk(R"([{"index":0,"delta":{},"finish_reason":"stop"}])") + "data: [DONE]\n\n";
  // (A second choice 0 in the same chunk replaces the first's piece, as a repeated index 0
  // always has; two index-less choices in one chunk are not a shape any provider sends.)
  for (const std::string& sse : {chat_chunk(R"([{"delta":{"content":"A"}}])") + chat_chunk(R"([{"delta":{"content":"B"}}])") + done,
                                 chat_chunk(R"([{"index":0,"delta":{"content":"A"}}])") + chat_chunk(R"([{"delta":{"content":"B"}}])") + done}) {
    std::uint32_t bits = 0;
    const auto rec = stream(parser_, sse, 5, &bits);
    EXPECT_EQ(rec->request().completion, "AB") << sse;
    EXPECT_EQ(bits, 0u);
  }
}

TEST_F(GatewayReview, ABodyChoiceWithAnInvalidIndexIsMergedNowhereAndFlagged) {
  for (const char* bad : {R"("index":-1,)", R"("index":1.0,)", R"("index":99999999999999999999,)"}) {
    const std::string body = std::string(R"({"id":"c1","model":"m","choices":[{)") + bad +
                             R"("finish_reason":"length","message":{"role":"assistant","content":"NEG"}},{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"A"}}]})";
    const auto res = parser_.parse_response(body, *rec_);
    EXPECT_EQ(res.issues, issue_bit(ParseIssue::field_wrong_type)) << bad;
    EXPECT_EQ(req().completion, "A") << bad;
    EXPECT_EQ(req().finish_reason, "stop") << bad;
  }
  // No index: a body's array order is the index (as before).
  ASSERT_TRUE(parser_.parse_response(
      R"({"id":"c1","model":"m","choices":[{"finish_reason":"stop","message":{"role":"assistant","content":"A"}}]})", *rec_).ok());
  EXPECT_EQ(req().completion, "A");
}

TEST_F(GatewayReview, AStreamedToolCallWithAnInvalidIndexIsMergedNowhereAndFlagged) {
  const std::string first =
      chat_chunk(R"([{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\""}}]}}])");
  const std::string more = chat_chunk(R"([{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}])");
  const std::string done = chat_chunk(R"([{"index":0,"delta":{},"finish_reason":"tool_calls"}])") + "data: [DONE]\n\n";
  const std::string want = R"([{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}])";
  {
    std::uint32_t bits = 0;
    const auto rec = stream(parser_, first + more + done, 1, &bits);
    ASSERT_EQ(rec->request().completion, want);
    ASSERT_EQ(bits, 0u);
  }
  for (const char* bad : {R"("index":-1,)", R"("index":1.5,)", R"("index":99999999999999999999,)", R"("index":null,)"}) {
    const std::string junk = chat_chunk(std::string(R"([{"index":0,"delta":{"tool_calls":[{)") + bad +
                                        R"("id":"X","function":{"name":"bad","arguments":"JUNK"}}]}}])");
    for (const std::string& sse : {first + junk + more + done, junk + first + more + done}) {
      for (const std::size_t step : {sse.size(), std::size_t{1}, std::size_t{64}}) {
        std::uint32_t bits = 0;
        const auto rec = stream(parser_, sse, step, &bits);
        EXPECT_EQ(rec->request().completion, want) << bad;
        EXPECT_EQ(bits, issue_bit(ParseIssue::field_wrong_type)) << bad;
      }
    }
  }
  // No index (Gemini's OpenAI-compatible endpoint): continues the call it follows, call 0 first.
  const std::string gemini =
      chat_chunk(R"([{"index":0,"delta":{"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\""}}]}}])") +
      chat_chunk(R"([{"index":0,"delta":{"tool_calls":[{"function":{"arguments":":1}"}}]}}])") + done;
  std::uint32_t bits = 0;
  const auto rec = stream(parser_, gemini, 7, &bits);
  EXPECT_EQ(rec->request().completion, want);
  EXPECT_EQ(bits, 0u);
}

// --- kind 4: an Anthropic tool_use block's input is always valid JSON -----------------------------

std::string anthropic_event(std::string_view json) { return "data: " + std::string(json) + "\n\n"; }

std::string tool_use_stream(const std::vector<std::string>& partials, bool finish = true, std::string_view start_input = "{}") {
  std::string sse = anthropic_event(R"({"type":"message_start","message":{"id":"msg_1","model":"claude-x","usage":{"input_tokens":3,"output_tokens":1}}})") +
                    anthropic_event(R"({"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"tu_1","name":"get","input":)" +
                                    std::string(start_input) + "}}");
  for (const std::string& p : partials)
    sse += anthropic_event(R"({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":)" + p + "}}");
  if (finish)
    sse += anthropic_event(R"({"type":"content_block_stop","index":0})") +
           anthropic_event(R"({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":5}})") +
           anthropic_event(R"({"type":"message_stop"})");
  return sse;
}

bool valid_json(std::string_view s) {
  simdjson::dom::parser p;
  simdjson::dom::element e;
  return p.parse(simdjson::padded_string(s)).get(e) == simdjson::SUCCESS;
}

TEST_F(GatewayReview, AToolUseInputThatIsCompleteJsonIsKeptAsJson) {
  const std::string sse = tool_use_stream({R"("{\"a\":")", R"("[1,{\"b\":\"c\\u00e9\"}],\"n\":null}")"});
  for (const std::size_t step : {sse.size(), std::size_t{1}, std::size_t{64}}) {
    std::uint32_t bits = 0;
    const auto rec = stream(parser_, sse, step, &bits);
    EXPECT_EQ(rec->request().completion,
              R"([{"type":"tool_use","id":"tu_1","name":"get","input":{"a":[1,{"b":"cé"}],"n":null}}])");
    EXPECT_EQ(bits, 0u);
  }
}

TEST_F(GatewayReview, AToolUseInputGivenWholeInContentBlockStartIsKept) {
  const std::string sse = tool_use_stream({}, true, R"({"q":"x","k":[1,2]})");
  std::uint32_t bits = 0;
  const auto rec = stream(parser_, sse, 7, &bits);
  EXPECT_EQ(rec->request().completion, R"([{"type":"tool_use","id":"tu_1","name":"get","input":{"q":"x","k":[1,2]}}])");
  EXPECT_EQ(bits, 0u);
}

TEST_F(GatewayReview, AToolUseInputThatIsNotCompleteJsonGoesAsAStringFlagged) {
  struct Case {
    std::string sse;
    std::string input;  // as written in the completion
    std::uint32_t bits;
  };
  const std::uint32_t wrong = issue_bit(ParseIssue::field_wrong_type);
  const std::uint32_t incomplete = issue_bit(ParseIssue::stream_incomplete);
  const std::vector<Case> cases = {
      // The stream cut mid-input.
      {tool_use_stream({R"("{\"a\":")"}, false), R"("{\"a\":")", wrong | incomplete},
      // An error event mid-block.
      {tool_use_stream({R"("{\"a\":")"}, false) +
           anthropic_event(R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"),
       R"("{\"a\":")", wrong},
      // partial_json that is not JSON, whole or after an object.
      {tool_use_stream({R"("not json at all}")"}), R"("not json at all}")", wrong},
      {tool_use_stream({R"("{\"a\":1}")", R"("{\"b\":2}")"}), R"("{\"a\":1}{\"b\":2}")", wrong},
      {tool_use_stream({R"("{\"a\":1} x")"}), R"("{\"a\":1} x")", wrong},
      {tool_use_stream({R"("[1,2]")"}), R"("[1,2]")", wrong},
      {tool_use_stream({R"("{\"a\":tru}")"}), R"("{\"a\":tru}")", wrong},
  };
  for (const Case& c : cases) {
    for (const std::size_t step : {c.sse.size(), std::size_t{1}, std::size_t{64}}) {
      std::uint32_t bits = 0;
      const auto rec = stream(parser_, c.sse, step, &bits);
      const std::string_view completion = rec->request().completion;
      EXPECT_TRUE(valid_json(completion)) << completion;
      EXPECT_EQ(completion, R"([{"type":"tool_use","id":"tu_1","name":"get","input":)" + c.input + "}]") << c.input;
      EXPECT_EQ(bits & (wrong | incomplete), c.bits) << c.input << " step " << step;
    }
  }
}

TEST_F(GatewayReview, AToolUseInputCutAtMaxCompletionBytesStaysValidJson) {
  // The bound holds for the whole list (ids, names and JSON around the input included): the
  // input is cut until it fits, and goes as a JSON string.
  GatewayConfig c;
  c.max_completion_bytes = 80;
  GatewayParser parser(c);
  const std::string sse = tool_use_stream({R"("{\"city\":\"Paris\",")", R"("\"units\":\"celsius\",\"days\":[1,2,3,4,5,6,7]}")"});
  for (const std::size_t step : {sse.size(), std::size_t{1}, std::size_t{64}}) {
    std::uint32_t bits = 0;
    const auto rec = stream(parser, sse, step, &bits);
    EXPECT_TRUE(valid_json(rec->request().completion)) << rec->request().completion;
    EXPECT_LE(rec->request().completion.size(), 80u);
    EXPECT_NE(rec->request().completion.find(R"(\"city)"), std::string_view::npos) << rec->request().completion;
    EXPECT_EQ(bits & issue_bit(ParseIssue::completion_truncated), issue_bit(ParseIssue::completion_truncated));
    EXPECT_EQ(bits & issue_bit(ParseIssue::field_wrong_type), issue_bit(ParseIssue::field_wrong_type));
  }
}

TEST_F(GatewayReview, ToolUseInputChecksAllocateNothingAfterWarmUp) {
  const std::string good = tool_use_stream({R"("{\"a\":")", R"("[1,{\"b\":\"c\"}]}")"});
  const std::string bad = tool_use_stream({R"("not json at all}")"});
  GatewayRecord rec;
  for (const std::string* sse : {&good, &bad, &good, &bad}) {
    parser_.begin_stream(rec);
    (void)parser_.feed_stream(*sse, 1, rec);
    (void)parser_.finish_stream(rec);
  }
  for (const std::string* sse : {&good, &bad}) {
    test::AllocationScope counter;
    parser_.begin_stream(rec);
    (void)parser_.feed_stream(*sse, 1, rec);
    (void)parser_.finish_stream(rec);
    EXPECT_EQ(counter.count(), 0u);
  }
}

// --- kind 5: integers beyond 64 bits in `trace` ---------------------------------------------------

TEST_F(GatewayReview, TraceIntegersBeyondSixtyFourBitsBecomeFloat64AndTheOtherKeysStay) {
  const std::string body =
      R"({"model":"m","trace":{"big":18446744073709551616,"neg":-9223372036854775809,"huge":123456789012345678901234567890,"max":18446744073709551615,"min":-9223372036854775808,"after":"x"},"user":"u"})";
  const auto res = parser_.parse_request(body, {}, *rec_);
  EXPECT_TRUE(res.ok()) << res.detail;
  EXPECT_EQ(find_meta(req(), "big")->value.as_double(), 18446744073709551616.0);
  EXPECT_EQ(find_meta(req(), "neg")->value.as_double(), -9223372036854775809.0);
  EXPECT_EQ(find_meta(req(), "huge")->value.as_double(), 123456789012345678901234567890.0);
  EXPECT_EQ(find_meta(req(), "max")->value.as_double(), 18446744073709551615.0);
  EXPECT_EQ(find_meta(req(), "min")->value.as_int64(), INT64_MIN);
  EXPECT_EQ(meta_string(req(), "after"), "x");
  EXPECT_EQ(req().user, "u");
}

TEST_F(GatewayReview, ATraceNumberOutOfTheDoubleRangeLeavesOutThatKeyOnly) {
  for (const char* n : {"1e999", "-1e999", "1.5e400"}) {
    const std::string body = std::string(R"({"model":"m","trace":{"a":1,"inf":)") + n + R"(,"after":"x"},"user":"u"})";
    const auto res = parser_.parse_request(body, {}, *rec_);
    EXPECT_EQ(res.issues, issue_bit(ParseIssue::field_wrong_type)) << n << ": " << res.detail;
    EXPECT_EQ(find_meta(req(), "inf"), nullptr) << n;
    EXPECT_EQ(find_meta(req(), "a")->value.as_int64(), 1);
    EXPECT_EQ(meta_string(req(), "after"), "x");
    EXPECT_EQ(req().user, "u");
    EXPECT_EQ(meta_string(req(), "tracecast.parse_issues"), "field_wrong_type");
  }
}

// --- kind 6: the parse-issues metadata key is the parser's ---------------------------------------

TEST_F(GatewayReview, AClientTraceKeyNamedLikeTheIssuesKeyIsDroppedAndFlagged) {
  const auto res = parser_.parse_request(
      R"({"model":"m","trace":{"tracecast.parse_issues":"none","x":"\ud800","y":"z"}})", {}, *rec_);
  EXPECT_EQ(res.issues, issue_bit(ParseIssue::field_wrong_type) | issue_bit(ParseIssue::invalid_escape)) << res.detail;
  std::size_t n = 0;
  for (const auto& e : req().metadata) n += e.key == "tracecast.parse_issues" ? 1 : 0;
  EXPECT_EQ(n, 1u);
  EXPECT_NE(meta_string(req(), "tracecast.parse_issues"), "none");
  EXPECT_NE(meta_string(req(), "tracecast.parse_issues").find("field_wrong_type"), std::string_view::npos);
  EXPECT_EQ(meta_string(req(), "y"), "z");
  // Alone (no other issue): still dropped, and the parser's key says why.
  rec_ = std::make_unique<GatewayRecord>();
  const auto res2 = parser_.parse_request(R"({"model":"m","trace":{"tracecast.parse_issues":"none"}})", {}, *rec_);
  EXPECT_EQ(res2.issues, issue_bit(ParseIssue::field_wrong_type));
  EXPECT_EQ(meta_string(req(), "tracecast.parse_issues"), "field_wrong_type");
  // A parser configured with another key reserves that one.
  GatewayConfig c;
  c.issues_metadata_key = "gw.issues";
  GatewayParser parser(c);
  auto rec = std::make_unique<GatewayRecord>(c);
  EXPECT_TRUE(parser.parse_request(R"({"model":"m","trace":{"tracecast.parse_issues":"mine"}})", {}, *rec).ok());
  EXPECT_EQ(meta_string(rec->request(), "tracecast.parse_issues"), "mine");
  EXPECT_EQ(parser.parse_request(R"({"model":"m","trace":{"gw.issues":"none"}})", {}, *rec).issues,
            issue_bit(ParseIssue::field_wrong_type));
  EXPECT_EQ(meta_string(rec->request(), "gw.issues"), "field_wrong_type");
}

// --- also: a streamed error message over the record's 1,024 bytes is cut and counted ----------

TEST_F(GatewayReview, AStreamedErrorMessageOverTheLimitIsCutAndCounted) {
  for (const std::size_t len : {std::size_t{1024}, std::size_t{1025}, std::size_t{3000}}) {
    std::string msg;
    while (msg.size() < len) msg += "\xC3\xA9";  // 2-byte sequences: a cut must not split one
    msg.resize(len - (len % 2));
    if (msg.size() < len) msg += "x";
    const std::string sse = "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"" + msg + "\"}}\n\n";
    for (const std::size_t step : {sse.size(), std::size_t{1}, std::size_t{64}}) {
      std::uint32_t bits = 0;
      const auto rec = stream(parser_, sse, step, &bits);
      EXPECT_TRUE(rec->request().error);
      EXPECT_LE(rec->request().error_message.size(), 1024u);
      EXPECT_EQ(rec->request().error_message, std::string_view(msg).substr(0, rec->request().error_message.size()));
      EXPECT_EQ((bits & issue_bit(ParseIssue::completion_truncated)) != 0, len > 1024) << len << " step " << step;
    }
  }
}

// --- also: a UTF-8 byte order mark before the first line ----------------------------------------

TEST_F(GatewayReview, ALeadingByteOrderMarkIsSkippedHoweverFed) {
  const std::string body = std::string(R"(data: {"choices":[{"index":0,"delta":{"content":"A"}}]})") + "\n\n" +
                           R"(data: {"choices":[{"index":0,"delta":{"content":"B"},"finish_reason":"stop"}]})" +
                           "\n\ndata: [DONE]\n\n";
  for (const std::string& sse : {"\xEF\xBB\xBF" + body, body}) {
    for (const std::size_t step : {sse.size(), std::size_t{1}, std::size_t{2}, std::size_t{4}, std::size_t{64}}) {
      std::uint32_t bits = 0;
      const auto rec = stream(parser_, sse, step, &bits);
      EXPECT_EQ(rec->request().completion, "AB") << step;
      EXPECT_EQ(bits, 0u) << step;
    }
  }
  // Only at the start, and only a whole BOM: a partial one is the stream's own bytes.
  for (const std::string& sse : {"\xEF\xBB" + body, "\xEF" + body}) {
    for (const std::size_t step : {sse.size(), std::size_t{1}, std::size_t{64}}) {
      std::uint32_t bits = 0;
      const auto rec = stream(parser_, sse, step, &bits);
      EXPECT_EQ(rec->request().completion, "B") << step;  // the first line is not a data line
    }
  }
}

// --- also: a Responses stream whose text comes only in its final event --------------------------

std::string responses_stream(bool with_deltas) {
  std::string sse =
      "data: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"model\":\"gpt-5\",\"status\":\"in_progress\",\"output\":[]}}\n\n";
  if (with_deltas) {
    sse += "data: {\"type\":\"response.output_text.delta\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hello\"}\n\n";
    sse += "data: {\"type\":\"response.output_text.delta\",\"output_index\":0,\"content_index\":0,\"delta\":\" world\"}\n\n";
  }
  sse += "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"model\":\"gpt-5\",\"status\":\"completed\","
         "\"output\":[{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Hello world\"}]}],"
         "\"usage\":{\"input_tokens\":5,\"output_tokens\":2,\"total_tokens\":7}}}\n\n";
  return sse;
}

TEST_F(GatewayReview, AResponsesStreamWithItsTextOnlyInTheFinalEventKeepsIt) {
  const std::string sse = responses_stream(false);
  for (const std::size_t step : {sse.size(), std::size_t{1}, std::size_t{64}}) {
    std::uint32_t bits = 0;
    const auto rec = stream(parser_, sse, step, &bits);
    EXPECT_EQ(rec->request().completion, "Hello world") << step;
    EXPECT_EQ(rec->request().output_tokens, 2) << step;
    EXPECT_EQ(rec->request().first_token_unix_nano, 0u) << step;  // no token came before the end
    EXPECT_EQ(bits, 0u) << step;
  }
  // With deltas, the final event's repeat of the text is not appended again.
  const std::string with = responses_stream(true);
  for (const std::size_t step : {with.size(), std::size_t{1}, std::size_t{64}}) {
    const auto rec = stream(parser_, with, step);
    EXPECT_EQ(rec->request().completion, "Hello world") << step;
    EXPECT_NE(rec->request().first_token_unix_nano, 0u) << step;
  }
}

}  // namespace
}  // namespace tracecast
