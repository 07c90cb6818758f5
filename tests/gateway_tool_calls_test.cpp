// Tests for tracecast/gateway.h: how streamed tool calls are assembled (the second user
// review's tool-call defects, each as a kind): index-less (Gemini) deltas, the tool-call limit
// counting calls rather than Anthropic / Responses block indexes, deltas of blocks that are not
// tool calls, and the one canonical tool-call form of bodies and streams.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "alloc_counter.h"
#include "gateway_test_util.h"
#include "tracecast/gateway.h"

namespace tracecast {
namespace {

constexpr std::uint32_t k_truncated = issue_bit(ParseIssue::completion_truncated);

struct Result {
  std::string completion;
  std::uint32_t issues = 0;
};

class GatewayToolCalls : public ::testing::Test {
 protected:
  GatewayParser parser_;

  // The stream fed whole, in 64-byte pieces and one byte at a time: the three must agree.
  Result stream(const std::string& sse) {
    Result first;
    for (const std::size_t step : {sse.size(), std::size_t{64}, std::size_t{1}}) {
      std::uint32_t issues = 0;
      const auto rec = test::stream(parser_, sse, step, &issues);
      const Result r{std::string(rec->request().completion), issues | rec->issues()};
      if (step == sse.size()) {
        first = r;
      } else {
        EXPECT_EQ(r.completion, first.completion) << "step " << step;
        EXPECT_EQ(r.issues & k_truncated, first.issues & k_truncated) << "step " << step;
      }
    }
    return first;
  }

  Result body(const std::string& json) {
    GatewayRecord rec;
    const auto res = parser_.parse_response(json, rec);
    return {std::string(rec.request().completion), res.issues | rec.issues()};
  }
};

std::string data(const std::string& json) { return "data: " + json + "\n\n"; }

std::string chat_chunk(const std::string& tool_calls, const std::string& finish = "null") {
  return data(R"({"id":"g","model":"gemini-2.5-flash","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":)" +
              tool_calls + R"(},"finish_reason":)" + finish + "}]}");
}

std::string chat_body(const std::string& tool_calls) {
  return R"({"id":"g","model":"gemini-2.5-flash","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":)" +
         tool_calls + R"(},"finish_reason":"tool_calls"}]})";
}

std::string call(const std::string& id, const std::string& city) {
  return R"({"id":")" + id + R"(","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\")" + city + R"(\"}"}})";
}

// --- D1: index-less (Gemini) tool-call deltas -----------------------------------------------------

TEST_F(GatewayToolCalls, IndexlessCallsInOneArrayAreSeparateCalls) {
  const std::string calls = "[" + call("call_1", "Paris") + "," + call("call_2", "Rome") + "]";
  const Result s = stream(chat_chunk(calls, "\"tool_calls\"") + "data: [DONE]\n\n");
  EXPECT_EQ(s.completion, calls);
  EXPECT_EQ(s.issues & k_truncated, 0u);
  EXPECT_EQ(body(chat_body(calls)).completion, s.completion);
  // Three in one array, none with an id: still three calls (a further element is a new call).
  const std::string no_ids = R"([{"type":"function","function":{"name":"a","arguments":"{}"}},)"
                             R"({"type":"function","function":{"name":"b","arguments":"{}"}},)"
                             R"({"type":"function","function":{"name":"c","arguments":"{}"}}])";
  EXPECT_EQ(stream(chat_chunk(no_ids)).completion,
            R"([{"id":"","type":"function","function":{"name":"a","arguments":"{}"}},)"
            R"({"id":"","type":"function","function":{"name":"b","arguments":"{}"}},)"
            R"({"id":"","type":"function","function":{"name":"c","arguments":"{}"}}])");
}

TEST_F(GatewayToolCalls, IndexlessCallWithANewIdInALaterChunkStartsANewCall) {
  const std::string sse = chat_chunk("[" + call("call_1", "Paris") + "]") +
                          chat_chunk("[" + call("call_2", "Rome") + "]", "\"tool_calls\"") +
                          chat_chunk("[" + call("call_3", "Oslo") + "]") + "data: [DONE]\n\n";
  const std::string want = "[" + call("call_1", "Paris") + "," + call("call_2", "Rome") + "," + call("call_3", "Oslo") + "]";
  const Result s = stream(sse);
  EXPECT_EQ(s.completion, want);
  EXPECT_EQ(s.issues & k_truncated, 0u);
  EXPECT_EQ(body(chat_body(want)).completion, want);
}

TEST_F(GatewayToolCalls, IndexlessDeltaWithoutIdOrWithTheSameIdContinuesTheLastCall) {
  const std::string sse =
      chat_chunk(R"([{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\""}}])") +
      chat_chunk(R"([{"function":{"arguments":":1,"}}])") +
      chat_chunk(R"([{"id":"call_1","function":{"arguments":"\"b\":2}"}}])") +
      chat_chunk(R"([{"id":"call_2","type":"function","function":{"name":"g","arguments":"{}"}}])") +
      chat_chunk(R"([{"function":{"arguments":""}}])", "\"tool_calls\"") + "data: [DONE]\n\n";
  const Result s = stream(sse);
  EXPECT_EQ(s.completion, R"([{"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1,\"b\":2}"}},)"
                          R"({"id":"call_2","type":"function","function":{"name":"g","arguments":"{}"}}])");
  EXPECT_EQ(s.issues & k_truncated, 0u);
}

TEST_F(GatewayToolCalls, IndexlessDeltaRepeatingAnIdOverItsLimitContinuesTheCall) {
  // The id is kept cut to 128 bytes (flagged); repeating it whole is still the same call.
  const std::string id(200, 'x');
  const std::string sse =
      chat_chunk(R"([{"id":")" + id + R"(","type":"function","function":{"name":"f","arguments":"{\"a\""}}])") +
      chat_chunk(R"([{"id":")" + id + R"(","function":{"arguments":":1}"}}])") + "data: [DONE]\n\n";
  const Result s = stream(sse);
  EXPECT_EQ(s.completion, R"([{"id":")" + id.substr(0, 128) + R"(","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}])");
}

TEST_F(GatewayToolCalls, IndexedDeltasAreAssembledByIndexAsBefore) {
  const std::string sse =
      chat_chunk(R"([{"index":0,"id":"c0","type":"function","function":{"name":"f","arguments":""}},{"index":1,"id":"c1","type":"function","function":{"name":"g","arguments":""}}])") +
      chat_chunk(R"([{"index":1,"function":{"arguments":"{\"y\":2}"}}])") +
      chat_chunk(R"([{"index":0,"function":{"arguments":"{\"x\":1}"}}])") + "data: [DONE]\n\n";
  EXPECT_EQ(stream(sse).completion, R"([{"id":"c0","type":"function","function":{"name":"f","arguments":"{\"x\":1}"}},)"
                                    R"({"id":"c1","type":"function","function":{"name":"g","arguments":"{\"y\":2}"}}])");
}

TEST_F(GatewayToolCalls, IndexlessCallsOverTheLimitAreDroppedAndFlagged) {
  std::string sse;
  std::string want = "[";
  for (std::size_t i = 0; i <= k_gateway_max_tool_calls; ++i) {
    sse += chat_chunk(std::string("[").append(call(std::string("call_").append(std::to_string(i)), "C")).append("]"));
    if (i < k_gateway_max_tool_calls) want.append(i == 0 ? "" : ",").append(call(std::string("call_").append(std::to_string(i)), "C"));
  }
  want += "]";
  const Result s = stream(sse + "data: [DONE]\n\n");
  EXPECT_EQ(s.completion, want);
  EXPECT_NE(s.issues & k_truncated, 0u);
}

// --- D2: Anthropic / Responses tool calls counted by call, not by block index ---------------------

std::string anth_start() {
  return data(R"({"type":"message_start","message":{"id":"msg_x","type":"message","role":"assistant","model":"claude-sonnet-4","content":[],"usage":{"input_tokens":1,"output_tokens":1}}})");
}
std::string anth_tool(std::size_t index, const std::string& id, const std::string& json, const std::string& type = "tool_use") {
  const std::string i = std::to_string(index);
  std::string escaped;
  for (const char c : json) {
    if (c == '"') escaped += '\\';
    escaped += c;
  }
  return data(R"({"type":"content_block_start","index":)" + i + R"(,"content_block":{"type":")" + type + R"(","id":")" + id +
              R"(","name":"f","input":{}}})") +
         data(R"({"type":"content_block_delta","index":)" + i + R"(,"delta":{"type":"input_json_delta","partial_json":")" + escaped + "\"}}") +
         data(R"({"type":"content_block_stop","index":)" + i + "}");
}
std::string anth_thinking(std::size_t index) {
  const std::string i = std::to_string(index);
  return data(R"({"type":"content_block_start","index":)" + i + R"(,"content_block":{"type":"thinking","thinking":""}})") +
         data(R"({"type":"content_block_delta","index":)" + i + R"(,"delta":{"type":"thinking_delta","thinking":"hm"}})") +
         data(R"({"type":"content_block_stop","index":)" + i + "}");
}
std::string anth_end() {
  return data(R"({"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}})") +
         data(R"({"type":"message_stop"})");
}
std::string anth_body(const std::string& content) {
  return R"({"id":"msg_x","type":"message","role":"assistant","model":"claude-sonnet-4","content":[)" + content +
         R"(],"stop_reason":"tool_use","usage":{"input_tokens":1,"output_tokens":9}})";
}
std::string anth_call(const std::string& id, const std::string& input) {
  return R"({"type":"tool_use","id":")" + id + R"(","name":"f","input":)" + input + "}";
}

TEST_F(GatewayToolCalls, AnthropicToolCallAtABlockIndexOverTheLimitIsKept) {
  for (const std::size_t index : {31u, 32u, 33u, 1000u}) {
    const Result s = stream(anth_start() + anth_tool(index, "toolu_1", R"({"k":1})") + anth_end());
    EXPECT_EQ(s.completion, std::string("[").append(anth_call("toolu_1", R"({"k":1})")).append("]")) << index;
    EXPECT_EQ(s.issues & k_truncated, 0u) << index;
  }
}

TEST_F(GatewayToolCalls, AnthropicToolCallAfterManyThinkingBlocksMatchesTheBody) {
  std::string sse = anth_start();
  std::string content;
  for (std::size_t i = 0; i < 40; ++i) {
    sse += anth_thinking(i);
    content += R"({"type":"thinking","thinking":"hm","signature":"s"},)";
  }
  sse += anth_tool(40, "toolu_9", R"({"q":"x"})") + anth_end();
  content += anth_call("toolu_9", R"({"q":"x"})");
  const Result s = stream(sse);
  const Result b = body(anth_body(content));
  EXPECT_EQ(s.completion, "[" + anth_call("toolu_9", R"({"q":"x"})") + "]");
  EXPECT_EQ(s.completion, b.completion);
  EXPECT_EQ(s.issues & k_truncated, 0u);
  EXPECT_EQ(b.issues & k_truncated, 0u);
}

TEST_F(GatewayToolCalls, AnthropicOnlyTheCallOverTheLimitIsDroppedAndFlagged) {
  // Text and tool_use blocks alternate, so the calls' block indexes run to 2 * 33.
  std::string sse = anth_start();
  std::string content;
  std::string want = "[";
  for (std::size_t i = 0; i <= k_gateway_max_tool_calls; ++i) {
    sse += data(R"({"type":"content_block_start","index":)" + std::to_string(2 * i) + R"(,"content_block":{"type":"thinking","thinking":""}})");
    const std::string id = "toolu_" + std::to_string(i);
    sse += anth_tool(2 * i + 1, id, R"({"n":)" + std::to_string(i) + "}");
    content.append(i == 0 ? "" : ",").append(anth_call(id, std::string(R"({"n":)").append(std::to_string(i)).append("}")));
    if (i < k_gateway_max_tool_calls)
      want.append(i == 0 ? "" : ",").append(anth_call(id, std::string(R"({"n":)").append(std::to_string(i)).append("}")));
  }
  want += "]";
  const Result s = stream(sse + anth_end());
  EXPECT_EQ(s.completion, want);
  EXPECT_NE(s.issues & k_truncated, 0u);
  const Result b = body(anth_body(content));
  EXPECT_EQ(b.completion, want);
  EXPECT_NE(b.issues & k_truncated, 0u);
}

std::string resp_call(std::size_t output_index, const std::string& n, bool completed_item = true) {
  const std::string i = std::to_string(output_index);
  std::string s = data(R"({"type":"response.output_item.added","output_index":)" + i + R"(,"item":{"type":"function_call","id":"fc_)" + n +
                       R"(","call_id":"call_)" + n + R"(","name":"f","arguments":""}})") +
                  data(R"({"type":"response.function_call_arguments.delta","item_id":"fc_)" + n + R"(","output_index":)" + i +
                       R"(,"delta":"{\"k\":)" + n + R"(}"})");
  if (completed_item)
    s += data(R"({"type":"response.output_item.done","output_index":)" + i + R"(,"item":{"type":"function_call","id":"fc_)" + n +
              R"(","call_id":"call_)" + n + R"(","name":"f","arguments":"{\"k\":)" + n + R"(}"}})");
  return s;
}
std::string resp_item(const std::string& n) {
  return R"({"type":"function_call","call_id":"call_)" + n + R"(","name":"f","arguments":"{\"k\":)" + n + R"(}"})";
}

TEST_F(GatewayToolCalls, ResponsesToolCallAtAnOutputIndexOverTheLimitIsKept) {
  const std::string want = "[" + resp_item("1") + "]";
  const std::string response =
      R"({"id":"r","object":"response","model":"gpt-5","status":"completed","output":[)" +
      std::string(R"({"type":"function_call","id":"fc_1","call_id":"call_1","name":"f","arguments":"{\"k\":1}"})") +
      R"(],"usage":{"input_tokens":1,"output_tokens":2}})";
  const std::string completed = data(R"({"type":"response.completed","response":)" + response + "}");
  const Result b = body(response);
  EXPECT_EQ(b.issues & k_truncated, 0u);
  for (const std::size_t index : {31u, 32u, 500u}) {
    const Result with_final = stream(resp_call(index, "1") + completed);
    EXPECT_EQ(with_final.completion, b.completion) << index;
    EXPECT_EQ(with_final.completion, want) << index;
    EXPECT_EQ(with_final.issues & k_truncated, 0u) << index;
    const Result without = stream(resp_call(index, "1", false));
    EXPECT_EQ(without.completion, want) << index;
    EXPECT_EQ(without.issues & k_truncated, 0u) << index;
  }
}

TEST_F(GatewayToolCalls, ResponsesOnlyTheCallOverTheLimitIsDroppedAndFlagged) {
  std::string sse;
  std::string want = "[";
  for (std::size_t i = 0; i <= k_gateway_max_tool_calls; ++i) {
    sse += resp_call(10 + 2 * i, std::to_string(i), false);
    if (i < k_gateway_max_tool_calls) want.append(i == 0 ? "" : ",").append(resp_item(std::to_string(i)));
  }
  want += "]";
  const Result s = stream(sse);
  EXPECT_EQ(s.completion, want);
  EXPECT_NE(s.issues & k_truncated, 0u);
}

// --- D3: deltas of Anthropic blocks that are not tool_use -----------------------------------------

TEST_F(GatewayToolCalls, AnthropicServerAndMcpToolUseBlocksAreNotToolCallsInAStreamAsInABody) {
  for (const std::string type : {"server_tool_use", "mcp_tool_use", "some_future_tool_use"}) {
    const std::string other = R"({"type":")" + type + R"(","id":"srvtoolu_1","name":"web_search","input":{"query":"x"}})";
    // A tool_use and the other block.
    const Result s = stream(anth_start() + anth_tool(0, "toolu_1", R"({"a":1})") +
                            anth_tool(1, "srvtoolu_1", R"({"query":"x"})", type) + anth_end());
    const Result b = body(anth_body(anth_call("toolu_1", R"({"a":1})") + "," + other));
    EXPECT_EQ(s.completion, "[" + anth_call("toolu_1", R"({"a":1})") + "]") << type;
    EXPECT_EQ(s.completion, b.completion) << type;
    // The other block first, then a tool_use.
    const Result s2 = stream(anth_start() + anth_tool(0, "srvtoolu_1", R"({"query":"x"})", type) +
                             anth_tool(1, "toolu_1", R"({"a":1})") + anth_end());
    EXPECT_EQ(s2.completion, "[" + anth_call("toolu_1", R"({"a":1})") + "]") << type;
    // The other block alone: no completion, in both forms.
    const Result s3 = stream(anth_start() + anth_tool(0, "srvtoolu_1", R"({"query":"x"})", type) + anth_end());
    const Result b3 = body(anth_body(other));
    EXPECT_EQ(s3.completion, "") << type;
    EXPECT_EQ(s3.completion, b3.completion) << type;
  }
}

TEST_F(GatewayToolCalls, ADeltaOfABlockNoToolCallStartedIsNotAToolCall) {
  // input_json_delta for a block never started, and a Responses argument delta for an output
  // item that is not a function call.
  const Result a = stream(anth_start() +
                          data(R"({"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"q\":1}"}})") +
                          anth_end());
  EXPECT_EQ(a.completion, "");
  const Result r = stream(data(R"({"type":"response.function_call_arguments.delta","item_id":"x","output_index":2,"delta":"{}"})"));
  EXPECT_EQ(r.completion, "");
}

// --- D4: one canonical tool-call form, body and stream --------------------------------------------

TEST_F(GatewayToolCalls, ChatBodyCallsTakeTheStreamsMembersInItsOrder) {
  const std::string want = R"([{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}])";
  const std::string sse =
      chat_chunk(R"([{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}])") +
      chat_chunk(R"([{"index":0,"function":{"arguments":"{\"city\":\"Paris\"}"}}])", "\"tool_calls\"") + "data: [DONE]\n\n";
  EXPECT_EQ(stream(sse).completion, want);
  // Members in another order, extra members (an index, Gemini's extra_content, unknown ones),
  // whitespace and escapes: the same completion.
  for (const std::string& calls : {
           std::string(R"([{"type":"function","function":{"arguments":"{\"city\":\"Paris\"}","name":"get_weather"},"id":"call_1"}])"),
           std::string(R"([{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"},)"
                       R"("extra_content":{"google":{"thought_signature":"c2ln"}}}])"),
           std::string(R"([ { "id" : "call\u005f1", "x" : [1, {"y": 2}], "function" : { "extra": true, "name" : "get_weather", )"
                       R"("arguments" : "{\"city\":\"Paris\"}" } , "type" : "function" } ])"),
       }) {
    const Result b = body(chat_body(calls));
    EXPECT_EQ(b.completion, want) << calls;
    EXPECT_EQ(b.issues & k_truncated, 0u) << calls;
  }
  // The same extra members in the stream's deltas are left out too.
  const std::string extra_sse =
      chat_chunk(R"([{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"},)"
                 R"("extra_content":{"google":{"thought_signature":"c2ln"}}}])", "\"tool_calls\"") + "data: [DONE]\n\n";
  EXPECT_EQ(stream(extra_sse).completion, want);
  // Absent members as the stream writes them: id "", type "function", arguments "".
  EXPECT_EQ(body(chat_body(R"([{"function":{"name":"f"}}])")).completion,
            R"([{"id":"","type":"function","function":{"name":"f","arguments":""}}])");
  EXPECT_EQ(stream(chat_chunk(R"([{"index":0,"function":{"name":"f"}}])")).completion,
            R"([{"id":"","type":"function","function":{"name":"f","arguments":""}}])");
}

TEST_F(GatewayToolCalls, AnthropicAndResponsesBodyCallsTakeTheStreamsForm) {
  // Anthropic: members in another order and an extra one (cache_control), the stream's form.
  const std::string a_want = "[" + anth_call("toolu_1", R"({"a":[1,2]})") + "]";
  EXPECT_EQ(body(anth_body(R"({"input":{ "a" : [1, 2] },"name":"f","cache_control":{"type":"ephemeral"},"id":"toolu_1","type":"tool_use"})")).completion,
            a_want);
  EXPECT_EQ(stream(anth_start() + anth_tool(0, "toolu_1", R"({"a":[1,2]})") + anth_end()).completion, a_want);
  // Responses: the item's own id and status left out, call_id kept, arguments a string.
  const std::string r_body =
      R"({"id":"r","object":"response","model":"gpt-5","status":"completed","output":[)"
      R"({"status":"completed","arguments":"{\"k\":1}","name":"f","call_id":"call_1","id":"fc_1","type":"function_call"}],)"
      R"("usage":{"input_tokens":1,"output_tokens":2}})";
  const std::string r_want = "[" + resp_item("1") + "]";
  EXPECT_EQ(body(r_body).completion, r_want);
  EXPECT_EQ(stream(resp_call(3, "1", false)).completion, r_want);
  EXPECT_EQ(stream(resp_call(3, "1") + data(R"({"type":"response.completed","response":)" + r_body + "}")).completion, r_want);
}

TEST_F(GatewayToolCalls, BodyCallsOverTheLimitAreDroppedAndFlaggedAsInAStream) {
  std::string calls = "[";
  std::string want = "[";
  std::string sse;
  for (std::size_t i = 0; i <= k_gateway_max_tool_calls; ++i) {
    const std::string c = call("call_" + std::to_string(i), "C");
    calls += (i == 0 ? "" : ",") + c;
    if (i < k_gateway_max_tool_calls) want += (i == 0 ? "" : ",") + c;
    sse += chat_chunk(R"([{"index":)" + std::to_string(i) + "," + c.substr(1) + "]");
  }
  calls += "]";
  want += "]";
  const Result b = body(chat_body(calls));
  EXPECT_EQ(b.completion, want);
  EXPECT_NE(b.issues & k_truncated, 0u);
  const Result s = stream(sse + "data: [DONE]\n\n");
  EXPECT_EQ(s.completion, want);
  EXPECT_NE(s.issues & k_truncated, 0u);
}

TEST_F(GatewayToolCalls, MinimalBodyCallsFitTheirLongerCanonicalForm) {
  // 32 empty calls in a tiny body: each written with every member (several times its text).
  std::string calls = "[{}";
  std::string want = R"([{"id":"","type":"function","function":{"name":"","arguments":""}})";
  std::string blocks = R"({"type":"tool_use"})";
  std::string a_want = R"([{"type":"tool_use","id":"","name":"","input":{}})";
  for (std::size_t i = 1; i < k_gateway_max_tool_calls; ++i) {
    calls += ",{}";
    want += R"(,{"id":"","type":"function","function":{"name":"","arguments":""}})";
    blocks += R"(,{"type":"tool_use"})";
    a_want += R"(,{"type":"tool_use","id":"","name":"","input":{}})";
  }
  const Result b = body(R"({"choices":[{"message":{"tool_calls":)" + calls + "]}}]}");
  EXPECT_EQ(b.completion, want + "]");
  EXPECT_EQ(b.issues & k_truncated, 0u);
  const Result a = body(R"({"type":"message","content":[)" + blocks + "]}");
  EXPECT_EQ(a.completion, a_want + "]");
  EXPECT_EQ(a.issues & k_truncated, 0u);
}

// --- no allocation once warm ------------------------------------------------------------------------

TEST_F(GatewayToolCalls, NoAllocationOnceWarm) {
  std::string anth = anth_start();
  for (std::size_t i = 0; i < 40; ++i) anth += anth_thinking(i);
  anth += anth_tool(40, "toolu_1", R"({"a":1})") + anth_tool(41, "srv", R"({"q":1})", "server_tool_use") + anth_end();
  std::string resp;
  for (std::size_t i = 0; i < 5; ++i) resp += resp_call(40 + i, std::to_string(i), false);
  const std::string gem = chat_chunk("[" + call("call_1", "Paris") + "," + call("call_2", "Rome") + "]") +
                          chat_chunk("[" + call("call_3", "Oslo") + "]") + "data: [DONE]\n\n";
  const std::vector<std::string> streams = {anth, resp, gem};
  const std::vector<std::string> bodies = {
      chat_body(R"([{"type":"function","function":{"arguments":"{}","name":"f"},"id":"c","extra_content":{"g":1}},)" + call("d", "Rome") + "]"),
      anth_body(R"({"input":{"a":1},"name":"f","id":"t","type":"tool_use"},{"type":"server_tool_use","id":"s","name":"w","input":{}})"),
      R"({"id":"r","object":"response","model":"gpt-5","status":"completed","output":[{"status":"completed","arguments":"{}","name":"f","call_id":"c","id":"fc","type":"function_call"}]})"};
  auto rec = std::make_unique<GatewayRecord>();
  for (int round = 0; round < 2; ++round) {
    const test::AllocationScope scope;
    for (const std::string& b : bodies) {
      rec->reset();
      (void)parser_.parse_response(b, *rec);
      EXPECT_FALSE(rec->request().completion.empty()) << b;
    }
    for (const std::string& sse : streams) {
      for (const std::size_t step : {sse.size(), std::size_t{64}, std::size_t{1}}) {
        rec->reset();
        (void)test::stream_into(parser_, *rec, sse, step);
        EXPECT_FALSE(rec->request().completion.empty());
      }
    }
    if (round == 1) {
      EXPECT_EQ(scope.count(), 0u);
    }
  }
}

}  // namespace
}  // namespace tracecast
