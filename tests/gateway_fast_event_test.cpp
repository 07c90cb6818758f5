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

// Allocations of the third round of sse through one parser and record, each round fed whole,
// in 64-byte pieces and one byte at a time.
std::uint64_t allocations_once_warm(const std::string& sse) {
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
  return scope.count();
}

// The fast path's reads (escapes unescaped into the chunk arena) allocate nothing once warm.
TEST(GatewayFastEvent, AllocatesNothingOnceWarm) {
  std::string sse;
  for (const std::string& event : cases()) sse += "data: " + event + "\n\n";
  EXPECT_EQ(allocations_once_warm(sse), 0u);
}

}  // namespace
}  // namespace tracecast

namespace tracecast {
namespace {

// ---------------------------------------------------------------------------------------
// Chat completion chunks (fast_chat_event): the common members in any order, and the chunk
// head a stream repeats, remembered per record and resumed from.

// A chunk of the stream below: its head (the same bytes as the stream's), then `choice`'s
// members, then `after` (more top-level members).
std::string chat_chunk(std::string_view choice, std::string_view after = "") {
  return std::string(R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o",)"
                     R"("system_fingerprint":"fp_1","choices":[{)")
      .append(choice)
      .append("}]")
      .append(after)
      .append("}");
}

std::string chat_content(std::string_view text, std::string_view index = "0") {
  return std::string(R"("index":)")
      .append(index)
      .append(R"(,"delta":{"content":")")
      .append(text)
      .append(R"("},"logprobs":null,"finish_reason":null)");
}

// A chat stream around one chunk: the role chunk, a content chunk, the chunk, a content chunk
// (the same head: read from the memo), the chunk again (read from the memo when it begins like
// the chunk before), the finish chunk, the usage chunk, [DONE].
std::string chat_around(std::string_view chunk) {
  std::string sse;
  auto add = [&sse](std::string_view data) { sse.append("data: ").append(data).append("\n\n"); };
  add(chat_chunk(R"("index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null)"));
  add(chat_chunk(chat_content("Hello")));
  add(chunk);
  add(chat_chunk(chat_content(" world")));
  add(chunk);
  add(chat_chunk(R"("index":0,"delta":{},"logprobs":null,"finish_reason":"stop")"));
  add(std::string(R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o",)")
          .append(R"("system_fingerprint":"fp_1","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,)")
          .append(R"("total_tokens":12,"prompt_tokens_details":{"cached_tokens":4}}})"));
  add("[DONE]");
  return sse;
}

std::vector<std::string> chat_cases() {
  const std::string long_text(300, 'a');
  std::vector<std::string> c = {
      // The common shapes (OpenAI, OpenRouter, with the usage option, with obfuscation).
      chat_chunk(chat_content("Hi")),
      chat_chunk(chat_content("")),
      chat_chunk(chat_content("Hi"), R"(,"usage":null)"),
      chat_chunk(chat_content("Hi"), R"(,"obfuscation":"a1B2c3")"),
      chat_chunk(chat_content("Hi"), R"(,"service_tier":"default","obfuscation":"")"),
      R"({"id":"gen-1","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null,"native_finish_reason":null}]})",
      R"({"id":"gen-1","provider":"OpenAI","model":"openai/gpt-4o","object":"chat.completion.chunk","created":1,"choices":[{"index":0,"delta":{},"finish_reason":"stop","native_finish_reason":"end_turn"}]})",
      R"({"id":"gen-1","provider":null,"model":null,"object":null,"created":1,"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]})",
      R"({"choices":[{"delta":{"content":"no index, no id"}}]})",
      R"({"id":"x","choices":[{"index":0,"delta":{"content":"short head"}}]})",
      // Strings: escapes (bad ones too), non-ASCII, long, at the head's values.
      chat_chunk(chat_content(R"(a\nb \"q\" \\ \u00e9 \ud83d\ude00 \/)")),
      chat_chunk(chat_content(R"(lone \ud800 high)")),
      chat_chunk(chat_content(R"(bad \x escape)")),
      chat_chunk(chat_content(R"(ends \)")),
      chat_chunk(chat_content("Z\xC3\xBCrich \xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\x9A\x80")),
      chat_chunk(chat_content(long_text)),
      chat_chunk(chat_content(long_text + R"(\"\\)" + long_text)),
      R"({"id":"chat\u0063mpl-1","model":"gpt\ud800","provider":"Op\"en","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"st\u006fp"}]})",
      R"({"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"a,b"}]})",
      // Bytes stage 1 refuses or sanitizes.
      chat_chunk(chat_content("bad \xFF byte")),
      chat_chunk(chat_content("cut \xC3")),
      chat_chunk(chat_content("ctl \x01 char")),
      chat_chunk(chat_content("tab \t raw")),
      R"({"id":"bad )" "\xFF" R"(","choices":[{"index":0,"delta":{"content":"x"}}]})",
      chat_chunk(chat_content("x"), ",\"obfuscation\":\"ctl \x02\""),
      // The delta: refusal, role only, null content, content parts, tool calls, other keys.
      chat_chunk(R"("index":0,"delta":{"refusal":"I can't help with that."},"finish_reason":null)"),
      chat_chunk(R"("index":0,"delta":{"content":null,"refusal":"no"},"finish_reason":null)"),
      chat_chunk(R"("index":0,"delta":{"content":"yes","refusal":"no"},"finish_reason":null)"),
      chat_chunk(R"("index":0,"delta":{"role":"assistant"},"finish_reason":null)"),
      chat_chunk(R"("index":0,"delta":{"content":null},"finish_reason":null)"),
      chat_chunk(R"("index":0,"delta":{"content":[{"type":"text","text":"part"}]},"finish_reason":null)"),
      chat_chunk(R"("index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null)"),
      chat_chunk(R"("index":0,"delta":{"content":"x","audio":null},"finish_reason":null)"),
      chat_chunk(R"("index":0,"delta":{"content":5},"finish_reason":null)"),
      chat_chunk(R"("index":0,"delta":null,"finish_reason":null)"),
      chat_chunk(R"("index":0,"delta":"x","finish_reason":null)"),
      // Several choices; the index.
      chat_chunk(chat_content("second", "1")),
      chat_chunk(chat_content("big", "15")),
      chat_chunk(chat_content("over", "16")),
      chat_chunk(chat_content("huge", "123456789012345678")),
      chat_chunk(chat_content("19 digits", "1234567890123456789")),
      chat_chunk(chat_content("19 nines", "9999999999999999999")),
      R"({"id":"c","created":99999999999999999999,"choices":[{"index":0,"delta":{"content":"x"}}]})",
      chat_chunk(chat_content("i", "-1")),
      chat_chunk(chat_content("i", "1.0")),
      chat_chunk(chat_content("i", "01")),
      chat_chunk(chat_content("i", "null")),
      chat_chunk(chat_content("i", "\"0\"")),
      chat_chunk(chat_content("a") + R"(},{)" + chat_content("b", "1")),
      chat_chunk(chat_content("b", "1") + R"(},{)" + chat_content("a")),
      chat_chunk(R"("index":0,"delta":{},"finish_reason":"stop"},{"index":1,"delta":{},"finish_reason":"length")"),
      chat_chunk(chat_content("1") + "},{" + chat_content("2", "1") + "},{" + chat_content("3", "2") + "},{" +
                 chat_content("4", "3")),
      chat_chunk(chat_content("1") + "},{" + chat_content("2", "1") + "},{" + chat_content("3", "2") + "},{" +
                 chat_content("4", "3") + "},{" + chat_content("5", "4")),
      chat_chunk(R"("index":0,"delta":{"content":"x"},"logprobs":{"content":[]},"finish_reason":null)"),
      chat_chunk(R"("index":0,"delta":{"content":"x"},"finish_reason":5)"),
      // Keys twice, unknown keys, escaped keys, another order, whitespace.
      chat_chunk(chat_content("x"), R"(,"id":"again")"),
      chat_chunk(R"("index":0,"index":1,"delta":{"content":"x"})"),
      chat_chunk(R"("index":0,"delta":{"content":"x","content":"y"})"),
      chat_chunk(R"("index":0,"delta":{"content":"x"},"delta":{"content":"y"})"),
      chat_chunk(chat_content("x"), R"(,"x_extra":1)"),
      chat_chunk(chat_content("x"), R"(,"type":"chunk")"),
      chat_chunk(R"("ind\u0065x":0,"delta":{"content":"x"})"),
      chat_chunk(R"("index":0,"delta":{"c\u006fntent":"x"})"),
      R"({"choices":[{"finish_reason":null,"delta":{"content":"reordered"},"index":0}],"model":"m","id":"i"})",
      R"({ "id" : "chatcmpl-1" , "choices" : [ { "index" : 0 , "delta" : { "content" : "spaced" } , "finish_reason" : null } ] })",
      "{\"id\":\"c\",\n\"choices\":[{\"index\":0,\"delta\":{\"content\":\"nl\"}}]}",
      R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[ {"index":0,"delta":{"content":"ws before the choice"}}]})",
      R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[]})",
      R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[ ]})",
      R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{}]})",
      R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":null})",
      R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"x"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}})",
      R"({"id":"c","created":-1,"choices":[{"index":0,"delta":{"content":"x"}}]})",
      R"({"id":"c","created":1.5,"choices":[{"index":0,"delta":{"content":"x"}}]})",
      R"({"id":"c","created":01,"choices":[{"index":0,"delta":{"content":"x"}}]})",
      R"({"id":"c","usage":nul,"choices":[{"index":0,"delta":{"content":"x"}}]})",
      R"({"id":"c","usage":nullx,"choices":[{"index":0,"delta":{"content":"x"}}]})",
      R"({"id":5,"choices":[{"index":0,"delta":{"content":"x"}}]})",
      // Bytes after the object; a cut chunk.
      chat_chunk(chat_content("x")) + "x",
      chat_chunk(chat_content("x")) + "}",
      chat_chunk(chat_content("x")) + " {}",
      chat_chunk(chat_content("x")) + "   ",
  };
  // Every prefix of a valid chunk (cut anywhere: inside the head the memo holds too).
  const std::string whole = chat_chunk(chat_content(R"(cut \u00e9 \" here)"), R"(,"usage":null)");
  for (std::size_t n = 0; n < whole.size(); ++n) c.push_back(whole.substr(0, n));
  return c;
}

TEST(GatewayFastChatChunk, EveryChunkReadsAsTheGeneralPathReadsIt) {
  const GatewayConfig configs[] = {GatewayConfig{}, small()};
  for (const std::string& chunk : chat_cases()) {
    const std::string sse = chat_around(chunk);
    for (const GatewayConfig& config : configs) {
      for (const std::size_t step : {sse.size(), std::size_t{64}, std::size_t{1}}) {
        EXPECT_EQ(run(sse, step, true, config), run(sse, step, false, config))
            << "chunk: " << chunk << "\nstep " << step << " max_completion_bytes " << config.max_completion_bytes;
      }
    }
  }
}

TEST(GatewayFastChatChunk, AChunkAloneReadsAsTheGeneralPathReadsIt) {
  for (const std::string& chunk : chat_cases()) {
    const std::string sse = "data: " + chunk + "\n\n";
    EXPECT_EQ(run(sse, sse.size(), true, GatewayConfig{}), run(sse, sse.size(), false, GatewayConfig{})) << chunk;
  }
}

// Every byte of a chunk that begins like the stream's (the bytes the memo holds, then the
// rest) replaced, removed or doubled: the same record either way, wherever the change falls
// (before the memo's places, at them, after them).
TEST(GatewayFastChatChunk, AChunkChangedAtAnyByteReadsAsTheGeneralPathReadsIt) {
  const std::string base = chat_chunk(chat_content(R"(Hi \u00e9)"), R"(,"obfuscation":"ab")");
  const char replacements[] = {'"', '\\', ' ', '}', ']', '{', ',', ':', 'x', '0', '\x01', '\xFF'};
  std::size_t cases = 0;
  for (std::size_t i = 0; i < base.size(); ++i) {
    std::vector<std::string> changed;
    for (const char r : replacements) {
      if (base[i] == r) continue;
      std::string m = base;
      m[i] = r;
      changed.push_back(std::move(m));
    }
    changed.push_back(std::string(base).erase(i, 1));
    changed.push_back(std::string(base).insert(i, 1, base[i]));
    for (const std::string& chunk : changed) {
      const std::string sse = chat_around(chunk);
      for (const std::size_t step : {sse.size(), std::size_t{64}}) {
        ++cases;
        EXPECT_EQ(run(sse, step, true, GatewayConfig{}), run(sse, step, false, GatewayConfig{}))
            << "chunk: " << chunk << "\nstep " << step;
      }
    }
  }
  EXPECT_GT(cases, base.size() * 10);
}

// The fast path is taken for the chunks it is meant for (every chunk of a plain stream but
// the usage chunk and [DONE]), and not for others.
TEST(GatewayFastChatChunk, TakesTheCommonChunks) {
  const std::string sse = chat_around(chat_chunk(chat_content("mid")));
  detail::set_stream_fast_path(true);
  GatewayParser parser;
  auto rec = std::make_unique<GatewayRecord>();
  for (const std::size_t step : {sse.size(), std::size_t{64}, std::size_t{1}}) {
    rec->reset();
    const std::uint64_t before = detail::stream_fast_events();
    EXPECT_EQ(test::stream_into(parser, *rec, sse, step), 0u);
    EXPECT_EQ(detail::stream_fast_events() - before, 6u) << "step " << step;
    EXPECT_EQ(rec->request().completion, "Hellomid worldmid");
    EXPECT_EQ(rec->request().finish_reason, "stop");
    EXPECT_EQ(rec->request().response_model, "gpt-4o");
    EXPECT_EQ(rec->request().cache_read_input_tokens, 4);
  }
  rec->reset();
  const std::uint64_t before = detail::stream_fast_events();
  (void)test::stream_into(parser, *rec,
                          "data: {\"type\":\"response.output_text.delta\",\"delta\":\"x\"}\n\n"
                          "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[]}}]}\n\n",
                          64);
  EXPECT_EQ(detail::stream_fast_events() - before, 0u);
}

TEST(GatewayFastChatChunk, AllocatesNothingOnceWarm) {
  std::string sse;
  for (const std::string& chunk : chat_cases()) sse += chat_around(chunk);
  EXPECT_EQ(allocations_once_warm(sse), 0u);
}

}  // namespace
}  // namespace tracecast

namespace tracecast {
namespace {

// ---------------------------------------------------------------------------------------
// OpenAI Responses text deltas (fast_responses_delta): one layout, optional logprobs and
// obfuscation members.

std::string responses_delta(std::string_view text, std::string_view output_index = "0",
                            std::string_view after = "") {
  return std::string(R"({"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_1","output_index":)")
      .append(output_index)
      .append(R"(,"content_index":0,"delta":")")
      .append(text)
      .append("\"")
      .append(after)
      .append("}");
}

// A Responses stream around one event: created, an output message added, the event, the
// text done, completed.
std::string responses_around(std::string_view event) {
  std::string sse;
  auto add = [&sse](std::string_view type, std::string_view data) {
    sse.append("event: ").append(type).append("\ndata: ").append(data).append("\n\n");
  };
  add("response.created",
      R"({"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress","model":"gpt-4.1","output":[],"usage":null}})");
  add("response.output_item.added",
      R"({"type":"response.output_item.added","sequence_number":2,"output_index":0,"item":{"id":"msg_1","status":"in_progress","type":"message","role":"assistant","content":[]}})");
  add("response.output_text.delta", responses_delta("Hi "));
  add("response.output_text.delta", event);
  add("response.output_text.done",
      R"({"type":"response.output_text.done","sequence_number":6,"item_id":"msg_1","output_index":0,"content_index":0,"text":"Hi there"})");
  add("response.completed",
      R"({"type":"response.completed","sequence_number":8,"response":{"id":"resp_1","object":"response","status":"completed","model":"gpt-4.1","output":[{"id":"msg_1","type":"message","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Hi there","annotations":[]}]}],"usage":{"input_tokens":5,"output_tokens":2,"total_tokens":7}}})");
  return sse;
}

std::vector<std::string> responses_cases() {
  std::vector<std::string> c = {
      responses_delta("there"),
      responses_delta(""),
      responses_delta("x", "0", R"(,"logprobs":[])"),
      responses_delta("x", "0", R"(,"logprobs":[],"obfuscation":"k2Q")"),
      responses_delta("x", "0", R"(,"obfuscation":"")"),
      responses_delta(R"(a\nb \"q\" \u00e9 \ud83d\ude00)"),
      responses_delta(R"(lone \ud800)"),
      responses_delta(R"(bad \x)"),
      responses_delta("Zo\xC3\xAB \xF0\x9F\x91\x8B"),
      responses_delta("bad \xFF"),
      responses_delta("ctl \x01"),
      responses_delta(std::string(200, 'z')),
      responses_delta("i", "3"),
      responses_delta("i", "123456789012345678"),
      responses_delta("i", "1234567890123456789"),
      responses_delta("i", "9999999999999999999"),
      R"({"type":"response.output_text.delta","sequence_number":99999999999999999999,"item_id":"m","output_index":0,"content_index":0,"delta":"big seq"})",
      responses_delta("i", "-1"),
      responses_delta("i", "01"),
      responses_delta("i", "1.5"),
      responses_delta("i", "null"),
      responses_delta("x", "0", R"(,"logprobs":[{"token":"x"}])"),
      responses_delta("x", "0", R"(,"logprobs":null)"),
      responses_delta("x", "0", ",\"obfuscation\":\"bad \xFF\""),
      responses_delta("x", "0", R"(,"obfuscation":5)"),
      responses_delta("x", "0", R"(,"delta":"again")"),
      responses_delta("x", "0", R"(,"x":1)"),
      responses_delta("x", "0", " "),
      R"({"type":"response.output_text.delta","sequence_number":4,"item_id":"msg_\u0031","output_index":0,"content_index":0,"delta":"esc item"})",
      R"({"type":"response.output_text.delta","sequence_number":4,"item_id":"bad )" "\xFF" R"(","output_index":0,"content_index":0,"delta":"x"})",
      R"({"type":"response.output_text.delta","sequence_number":-4,"item_id":"m","output_index":0,"content_index":0,"delta":"neg seq"})",
      R"({"type":"response.output_text.delta","sequence_number":4,"item_id":"m","output_index":0,"content_index":0.0,"delta":"float ci"})",
      R"({"type":"response.output_text.delta","item_id":"m","sequence_number":4,"output_index":0,"content_index":0,"delta":"reordered"})",
      R"({"type":"response.output_text.delta","sequence_number":4,"item_id":"m","output_index":0,"content_index":0,"delta":5})",
      R"({"type":"response.output_text.delta", "sequence_number":4,"item_id":"m","output_index":0,"content_index":0,"delta":"ws"})",
      R"({"type":"response.output_text.deltas","sequence_number":4,"item_id":"m","output_index":0,"content_index":0,"delta":"other type"})",
      R"({"type":"response.function_call_arguments.delta","sequence_number":4,"item_id":"fc_1","output_index":0,"delta":"{\"a\""})",
      responses_delta("x") + "x",
      responses_delta("x") + "}",
  };
  const std::string whole = responses_delta(R"(cut \u00e9 here)", "0", R"(,"logprobs":[],"obfuscation":"ab")");
  for (std::size_t n = 0; n < whole.size(); ++n) c.push_back(whole.substr(0, n));
  return c;
}

TEST(GatewayFastResponsesDelta, EveryEventReadsAsTheGeneralPathReadsIt) {
  const GatewayConfig configs[] = {GatewayConfig{}, small()};
  for (const std::string& event : responses_cases()) {
    const std::string sse = responses_around(event);
    for (const GatewayConfig& config : configs) {
      for (const std::size_t step : {sse.size(), std::size_t{64}, std::size_t{1}}) {
        EXPECT_EQ(run(sse, step, true, config), run(sse, step, false, config))
            << "event: " << event << "\nstep " << step << " max_completion_bytes " << config.max_completion_bytes;
      }
    }
  }
}

TEST(GatewayFastResponsesDelta, AllocatesNothingOnceWarm) {
  std::string sse;
  for (const std::string& event : responses_cases()) sse += responses_around(event);
  EXPECT_EQ(allocations_once_warm(sse), 0u);
}

TEST(GatewayFastResponsesDelta, TakesTheTextDeltas) {
  const std::string sse = responses_around(responses_delta("there", "0", R"(,"logprobs":[],"obfuscation":"k")"));
  GatewayParser parser;
  auto rec = std::make_unique<GatewayRecord>();
  const std::uint64_t before = detail::stream_fast_events();
  EXPECT_EQ(test::stream_into(parser, *rec, sse, 64), 0u);
  EXPECT_EQ(detail::stream_fast_events() - before, 2u);
  EXPECT_EQ(rec->request().completion, "Hi there");
  EXPECT_EQ(rec->request().output_tokens, 2);
}

}  // namespace
}  // namespace tracecast
