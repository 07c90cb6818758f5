// Tests for the stream events gateway.cpp reads without simdjson (fast_event: the fixed
// layouts of Anthropic block deltas, block starts, content_block_stop, message_stop, ping):
// every event, valid or one byte off the layout, gives the same record, issues, per-call
// results and stats with the fast path on as with it off (the general path, test hook in
// gateway_testing.h), fed whole, in 64-byte pieces and one byte at a time.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "alloc_counter.h"
#include "gateway_test_util.h"
#include "gateway_testing.h"
#include "tracecast/gateway.h"

namespace tracecast {
namespace {

// Everything a stream leaves in a record and a parser, as text (doubles in hex: exact).
std::string describe(const GatewayParser& parser, const GatewayRecord& rec, const std::string& calls) {
  const LlmRequest& q = rec.request();
  char num[256];
  std::snprintf(num, sizeof num, "in=%lld out=%lld cr=%lld cc=%lld rs=%lld cost=%a first=%llu err=%d",
                static_cast<long long>(q.input_tokens), static_cast<long long>(q.output_tokens),
                static_cast<long long>(q.cache_read_input_tokens),
                static_cast<long long>(q.cache_creation_input_tokens),
                static_cast<long long>(q.reasoning_output_tokens), q.cost,
                static_cast<unsigned long long>(q.first_token_unix_nano), q.error ? 1 : 0);
  std::string out = num;
  out += "\ncompletion=[" + std::string(q.completion) + "]\nfinish=[" + std::string(q.finish_reason) + "|" +
         std::string(q.finish_reasons) + "]\nid=[" + std::string(q.response_id) + "] model=[" +
         std::string(q.response_model) + "] provider=[" + std::string(q.provider) + "]\nerror=[" +
         std::string(q.error_message) + "]\nissues=" + std::to_string(rec.issues()) + "\nmetadata=";
  for (const MetadataEntry& e : q.metadata) {
    out += std::string(e.key) + "=";
    if (e.value.type() == ValueType::string) out += std::string(e.value.as_string());
    out += ";";
  }
  const GatewayStats& s = parser.stats();
  out += "\nchunks=" + std::to_string(s.stream_chunks) + " by_issue=";
  for (const std::uint64_t n : s.by_issue) out += std::to_string(n) + ",";
  return out + "\ncalls=" + calls;
}

// sse through a fresh parser and record in pieces of `step` bytes (time: offset + 1).
std::string run(std::string_view sse, std::size_t step, bool fast, const GatewayConfig& config) {
  detail::set_stream_fast_path(fast);
  GatewayParser parser(config);
  auto rec = std::make_unique<GatewayRecord>(config);
  parser.begin_stream(*rec);
  std::string calls;
  for (std::size_t i = 0; i < sse.size(); i += step) {
    const GatewayParseResult r = parser.feed_stream(sse.substr(i, step), 1 + i, *rec);
    calls += std::to_string(r.issues) + ":" + std::string(r.detail) + ";";
  }
  const GatewayParseResult r = parser.finish_stream(*rec);
  calls += std::to_string(r.issues) + ":" + std::string(r.detail);
  std::string out = describe(parser, *rec, calls);
  detail::set_stream_fast_path(true);
  return out;
}

// An Anthropic stream around one event: a message, a text block at 0, a tool_use block at 1,
// the event, the end. The event is what differs between the cases.
std::string around(std::string_view event) {
  std::string sse =
      "event: message_start\n"
      R"(data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-x","usage":{"input_tokens":5,"output_tokens":1}}})"
      "\n\n"
      R"(data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})"
      "\n\n"
      R"(data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}})"
      "\n\n";
  sse += "event: e\ndata: ";
  sse += event;
  sse +=
      "\n\n"
      R"(data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":9}})"
      "\n\n"
      R"(data: {"type":"message_stop"})"
      "\n\n";
  return sse;
}

std::string delta(std::string_view index, std::string_view type, std::string_view key, std::string_view str) {
  return std::string(R"({"type":"content_block_delta","index":)") + std::string(index) + R"(,"delta":{"type":")" +
         std::string(type) + R"(",")" + std::string(key) + R"(":")" + std::string(str) + R"("}})";
}

std::string text_delta(std::string_view str, std::string_view index = "0") {
  return delta(index, "text_delta", "text", str);
}

std::vector<std::string> cases() {
  const std::string long_text(150, 'a');
  std::vector<std::string> c = {
      // Valid layouts, the strings plain, escaped, long, non-ASCII.
      text_delta("Hello"),
      text_delta(""),
      text_delta(R"(a\nb \"q\" back\\slash \u00e9 \ud83d\ude00 \/ \b\f\r\t)"),
      text_delta(R"(lone \ud800 high)"),
      text_delta(R"(lone \udc00 low)"),
      text_delta(R"(\ud800)"),
      text_delta(R"(bad \x escape)"),
      text_delta(R"(bad \u12 short)"),
      text_delta(R"(bad \u12g4 hex)"),
      text_delta(R"(ends \)"),
      text_delta("Z\xC3\xBCrich \xF0\x9F\x8C\xA6."),
      text_delta(long_text),
      text_delta(long_text + R"(\"\\\n)" + long_text + "\xC3\xA9" + long_text),
      text_delta(std::string(15, 'b') + R"(\")" + std::string(15, 'c')),
      text_delta(std::string(14, 'b') + R"(\\)" + std::string(17, 'c')),
      text_delta(std::string(15, 'b') + "\\\xC3\xA9" + std::string(16, 'c')),
      // Bytes stage 1 refuses or sanitizes: invalid UTF-8, control characters.
      text_delta("bad \xFF byte"),
      text_delta("cut \xC3"),
      text_delta("overlong \xC0\xAF"),
      text_delta("surrogate \xED\xA0\x80"),
      text_delta(std::string(20, 'x') + "\xFF" + std::string(20, 'y')),
      text_delta("ctl \x01 char"),
      text_delta("tab \t raw"),
      text_delta("esc ctl \\\x01"),
      text_delta(std::string(20, 'x') + "\x1F" + std::string(20, 'y')),
      text_delta("del \x7F ok"),
      // The index.
      text_delta("i", "1"),
      text_delta("i", "123456789"),
      text_delta("i", "1234567890"),
      text_delta("i", "99999999999999999999"),
      text_delta("i", "-1"),
      text_delta("i", "1.0"),
      text_delta("i", "1e0"),
      text_delta("i", "01"),
      text_delta("i", "00"),
      text_delta("i", "null"),
      text_delta("i", "\"1\""),
      text_delta("i", ""),
      text_delta("i", " 1"),
      text_delta("i", "1 "),
      // The other layouts.
      delta("1", "input_json_delta", "partial_json", R"({\"city\": \"Z\u00fc)"),
      delta("1", "input_json_delta", "partial_json", ""),
      delta("1", "input_json_delta", "partial_json", R"(bad \ud800)"),
      delta("40", "input_json_delta", "partial_json", "x"),
      delta("0", "thinking_delta", "thinking", "Paris: use the tool."),
      delta("0", "thinking_delta", "thinking", R"(bad \x \ud800 escapes)"),
      delta("0", "thinking_delta", "thinking", "bad \xFF utf8"),
      delta("0", "thinking_delta", "thinking", "ctl \x02"),
      delta("0", "signature_delta", "signature", "EqQBCgIYAhIM"),
      delta("0", "thinking_delta", "text", "text key on a thinking delta"),
      delta("0", "text_delta", "thinking", "thinking key on a text delta"),
      delta("0", "other_delta", "text", "unknown delta type"),
      R"({"type":"content_block_start","index":2,"content_block":{"type":"text","text":""}})",
      R"({"type":"content_block_start","index":2,"content_block":{"type":"text","text":"Hi \u00e9"}})",
      R"({"type":"content_block_start","index":2,"content_block":{"type":"thinking","thinking":""}})",
      R"({"type":"content_block_start","index":2,"content_block":{"type":"thinking","thinking":"","signature":""}})",
      R"({"type":"content_block_stop","index":0})",
      R"({"type":"content_block_stop","index":-1})",
      R"({"type":"content_block_stop","index":1.5})",
      R"({"type":"content_block_stop","index":"x"})",
      R"({"type":"content_block_stop","index":0,"x":1})",
      R"({"type":"message_stop"})",
      R"({"type": "ping"})",
      R"({"type":"ping"})",
      R"({"type":"ping" })",
      R"({"type":"pong"})",
      R"({"type":"message_stopx"})",
      // Off the layout: keys in another order, extra keys, whitespace, other types.
      R"({"index":0,"type":"content_block_delta","delta":{"type":"text_delta","text":"reordered"}})",
      R"({"type":"content_block_delta","delta":{"type":"text_delta","text":"no index"},"index":0})",
      R"({"type":"content_block_delta","index":0,"delta":{"text":"inner reordered","type":"text_delta"}})",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"extra"},"x":1})",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"extra","x":1}})",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"dup"},"index":1})",
      R"({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "spaced"}})",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"sp" }})",
      R"( {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lead"}})",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":5}})",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":null}})",
      R"({"type":"content_block_delta","index":0,"delta":"string delta"})",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"trailing ws"}}   )",
      "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"tab\"}}\t",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"after"}}x)",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"after"}} {})",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"after"}}})",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"short"})",
      R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"q"q"}})",
      R"({"type":"content_block_delta\u0020","index":0,"delta":{"type":"text_delta","text":"esc type"}})",
  };
  // Every prefix of a valid event of each layout (cut anywhere), and each with a byte after it.
  const std::string valid[] = {
      text_delta(R"(cut \u00e9 \" here)"),
      delta("1", "input_json_delta", "partial_json", R"({\"a\":1})"),
      delta("0", "thinking_delta", "thinking", "hmm"),
      R"({"type":"content_block_start","index":2,"content_block":{"type":"text","text":"x"}})",
      R"({"type":"content_block_stop","index":10})",
      R"({"type":"message_stop"})",
      R"({"type": "ping"})",
  };
  for (const std::string& whole : valid) {
    for (std::size_t n = 0; n < whole.size(); ++n) c.push_back(whole.substr(0, n));
    for (const char* after : {"x", "}", "]", ",", "\"\"", "0"}) c.push_back(whole + after);
  }
  return c;
}

GatewayConfig small() {
  GatewayConfig c;
  c.max_completion_bytes = 12;
  return c;
}

TEST(GatewayFastEvent, EveryEventReadsAsTheGeneralPathReadsIt) {
  const GatewayConfig configs[] = {GatewayConfig{}, small()};
  for (const std::string& event : cases()) {
    const std::string sse = around(event);
    for (const GatewayConfig& config : configs) {
      for (const std::size_t step : {sse.size(), std::size_t{64}, std::size_t{1}}) {
        const std::string slow = run(sse, step, false, config);
        const std::string fast = run(sse, step, true, config);
        EXPECT_EQ(fast, slow) << "event: " << event << "\nstep " << step << " max_completion_bytes "
                              << config.max_completion_bytes;
      }
    }
  }
}

// The event alone, with nothing before it (no block started, no message), the same.
TEST(GatewayFastEvent, AnEventAloneReadsAsTheGeneralPathReadsIt) {
  for (const std::string& event : cases()) {
    const std::string sse = "data: " + event + "\n\n";
    for (const std::size_t step : {sse.size(), std::size_t{7}}) {
      EXPECT_EQ(run(sse, step, true, GatewayConfig{}), run(sse, step, false, GatewayConfig{})) << event;
    }
  }
}

// The fast path's reads (escapes unescaped into the chunk arena) allocate nothing once warm.
TEST(GatewayFastEvent, AllocatesNothingOnceWarm) {
  std::string sse;
  for (const std::string& event : cases()) sse += "data: " + event + "\n\n";
  GatewayParser parser;
  auto rec = std::make_unique<GatewayRecord>();
  auto round = [&] {
    for (const std::size_t step : {sse.size(), std::size_t{64}, std::size_t{1}}) {
      rec->reset();
      (void)test::stream_into(parser, *rec, sse, step);
    }
  };
  round();
  round();
  test::AllocationScope scope;
  round();
  EXPECT_EQ(scope.count(), 0u);
}

}  // namespace
}  // namespace tracecast
