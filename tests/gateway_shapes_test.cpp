// Tests for tracecast/gateway.h beyond chat completions: Anthropic Messages, the OpenAI
// Responses API, embeddings, and the token details of chat completions. Bodies and streams
// written from each API's public documentation (tests/data/gateway), read field by field,
// streams in one piece and one byte at a time.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <deque>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
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
using test::read_data;

class GatewayShapes : public ::testing::Test {
 protected:
  // A body kept alive for the test's duration (the record's views point into it).
  std::string_view keep(const std::string& name) { return bodies_.emplace_back(read_data(name)); }
  std::deque<std::string> bodies_;  // a deque never moves its elements
  GatewayParser parser_;
  std::unique_ptr<GatewayRecord> rec_ = std::make_unique<GatewayRecord>();
  LlmRequest& req() { return rec_->request(); }

  // Feeds sse to a fresh record `step` bytes at a time (after parsing `request` into it).
  std::unique_ptr<GatewayRecord> stream(std::string_view request, std::string_view sse, std::size_t step,
                                        std::uint32_t& issues, GatewayApi api = GatewayApi::detect) {
    auto rec = std::make_unique<GatewayRecord>();
    issues = parser_.parse_request(request, {}, *rec, api).issues;
    parser_.begin_stream(*rec);
    for (std::size_t i = 0; i < sse.size(); i += step)
      issues |= parser_.feed_stream(sse.substr(i, step), 1000 + i, *rec).issues;
    issues |= parser_.finish_stream(*rec).issues;
    return rec;
  }
};

const std::vector<std::size_t> k_steps = {0 /* whole */, 1, 2, 7, 64};
std::size_t step_of(std::size_t s, std::string_view all) { return s == 0 ? all.size() : s; }

// --- Anthropic Messages ---------------------------------------------------------------------

TEST_F(GatewayShapes, AnthropicRequestIsReadFieldByFieldWithTheSystemFirst) {
  const auto r = parser_.parse_request(keep("anthropic_request.json"), {}, *rec_);
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(rec_->api(), GatewayApi::anthropic_messages);
  EXPECT_EQ(req().operation, "chat");
  EXPECT_EQ(req().requested_model, "anthropic/claude-sonnet-4");
  EXPECT_EQ(req().provider, "anthropic");
  EXPECT_EQ(req().max_tokens, 1024);
  EXPECT_DOUBLE_EQ(req().temperature, 0.2);
  EXPECT_FALSE(req().stream);
  EXPECT_EQ(req().user, "user_anth_1");
  EXPECT_EQ(meta_string(req(), "trace_id"), "anthropic_flow");
  EXPECT_EQ(req().prompt,
            R"([{"role":"system","content":"You are a weather assistant. Answer in one sentence."},{"role": "user", "content": "What is the weather in Paris?"}
  ])");
  // Told explicitly, the same; a system given as blocks is kept as sent.
  auto rec = std::make_unique<GatewayRecord>();
  ASSERT_TRUE(parser_.parse_request(R"({"model":"claude","messages":[],"system":[{"type":"text","text":"S"}]})", {}, *rec,
                                    GatewayApi::anthropic_messages).ok());
  EXPECT_EQ(rec->request().prompt, R"([{"role":"system","content":[{"type":"text","text":"S"}]}])");
}

TEST_F(GatewayShapes, AnthropicResponseGivesTextStopReasonAndCacheTokens) {
  const auto r = parser_.parse_response(keep("anthropic_response.json"), *rec_);
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(req().response_id, "msg_01XFDUDYJgAACzvnptvVoYEL");
  EXPECT_EQ(req().response_model, "claude-sonnet-4-20250514");
  EXPECT_EQ(req().completion, "Let me check the weather in Paris.");  // thinking is not the answer
  EXPECT_EQ(req().finish_reason, "tool_use");
  EXPECT_EQ(req().input_tokens, 2095);
  EXPECT_EQ(req().output_tokens, 503);
  EXPECT_EQ(req().cache_creation_input_tokens, 1024);
  EXPECT_EQ(req().cache_read_input_tokens, 512);
  EXPECT_EQ(req().reasoning_output_tokens, -1);
  // Only a tool call: the completion is the content blocks' JSON, as for chat's tool_calls.
  ASSERT_TRUE(parser_.parse_response(keep("anthropic_tool_only_response.json"), *rec_).ok());
  EXPECT_EQ(req().completion, R"([{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Paris"}}])");
  EXPECT_EQ(req().cache_read_input_tokens, -1);
}

TEST_F(GatewayShapes, AnthropicStreamIsReadWhateverTheChunking) {
  const std::string sse = read_data("anthropic_stream.sse");
  const std::string request = read_data("anthropic_request.json");
  for (std::size_t s : k_steps) {
    std::uint32_t issues = 0;
    auto rec = stream(request, sse, step_of(s, sse), issues);
    const LlmRequest& q = rec->request();
    EXPECT_EQ(issues, 0u) << s;
    EXPECT_EQ(q.response_id, "msg_01stream") << s;
    EXPECT_EQ(q.response_model, "claude-sonnet-4-20250514") << s;
    EXPECT_EQ(q.completion, "Let me check the weather in Zürich 🌦.") << s;
    EXPECT_EQ(q.finish_reason, "tool_use") << s;
    EXPECT_EQ(q.input_tokens, 472) << s;
    EXPECT_EQ(q.output_tokens, 89) << s;  // message_delta's final usage
    EXPECT_EQ(q.cache_read_input_tokens, 256) << s;
    EXPECT_EQ(q.cache_creation_input_tokens, 0) << s;
    EXPECT_FALSE(q.error) << s;
    EXPECT_NE(q.first_token_unix_nano, 0u) << s;
  }
}

TEST_F(GatewayShapes, AnthropicStreamedToolUseIsAssembledLikeTheNonStreamedBlocks) {
  ASSERT_TRUE(parser_.parse_response(keep("anthropic_tool_only_response.json"), *rec_).ok());
  const std::string whole(req().completion);
  const std::string sse = read_data("anthropic_tool_stream.sse");
  for (std::size_t s : k_steps) {
    std::uint32_t issues = 0;
    auto rec = stream(read_data("anthropic_request.json"), sse, step_of(s, sse), issues);
    EXPECT_EQ(issues, 0u) << s;
    EXPECT_EQ(rec->request().completion, whole) << s;
    EXPECT_EQ(rec->request().finish_reason, "tool_use") << s;
    EXPECT_EQ(rec->request().output_tokens, 20) << s;
  }
}

TEST_F(GatewayShapes, AnthropicErrorEventFailsTheRequestAndKeepsThePartialText) {
  const std::string sse = read_data("anthropic_error_stream.sse");
  for (std::size_t s : {std::size_t{0}, std::size_t{1}}) {
    std::uint32_t issues = 0;
    auto rec = stream("{}", sse, step_of(s, sse), issues);
    EXPECT_EQ(issues, 0u) << s;  // an error event ends a stream: not incomplete
    EXPECT_TRUE(rec->request().error);
    EXPECT_EQ(rec->request().error_message, "Overloaded");
    EXPECT_EQ(rec->request().completion, "Partial");
  }
  // The same error as a whole body (HTTP 529), through set_outcome.
  ASSERT_TRUE(parser_.set_outcome(529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})", *rec_).ok());
  EXPECT_TRUE(req().error);
  EXPECT_EQ(req().error_message, "Overloaded");
}

TEST_F(GatewayShapes, AnthropicMetadataUserIdIsTheUserUnlessTheBodyNamesOne) {
  // Anthropic has no top-level `user`: metadata.user_id is the end user (user.id on the span).
  struct Case {
    const char* body;
    const char* user;
    std::uint32_t issues;
  };
  const Case cases[] = {
      {R"({"model":"claude","metadata":{"user_id":"u_meta"},"messages":[]})", "u_meta", 0},
      {R"({"messages":[],"metadata":{"other":1,"user_id":"u_\"q\" é"},"model":"claude"})", "u_\"q\" é", 0},
      {R"({"model":"claude","user":"u_top","metadata":{"user_id":"u_meta"},"messages":[]})", "u_top", 0},
      {R"({"model":"claude","metadata":{"user_id":"u_meta"},"user":"u_top","messages":[]})", "u_top", 0},
      {R"({"model":"claude","metadata":{"user_id":"caf\ud800"},"messages":[]})", "caf\xEF\xBF\xBD",
       issue_bit(ParseIssue::invalid_escape)},
      {R"({"model":"claude","metadata":{"user_id":7},"messages":[],"max_tokens":5})", "",
       issue_bit(ParseIssue::field_wrong_type)},
      {R"({"model":"claude","metadata":null,"messages":[]})", "", 0},
      {R"({"model":"claude","metadata":{},"messages":[]})", "", 0},
  };
  for (const Case& c : cases) {
    auto rec = std::make_unique<GatewayRecord>();
    const auto r = parser_.parse_request(c.body, {}, *rec, GatewayApi::anthropic_messages);
    EXPECT_EQ(r.issues, c.issues) << c.body;
    EXPECT_EQ(rec->request().user, c.user) << c.body;
    EXPECT_EQ(rec->request().requested_model, "claude") << c.body;  // read before and after it
  }
  // The rest of the body is still read after a wrong type inside metadata.
  auto rec = std::make_unique<GatewayRecord>();
  (void)parser_.parse_request(cases[5].body, {}, *rec);
  EXPECT_EQ(rec->request().max_tokens, 5);
  // And it reaches the span as user.id.
  ASSERT_TRUE(parser_.parse_request(keep("anthropic_request.json"), {}, *rec_).ok());
  MappingConfig config;
  IdGenerator ids(3);
  auto mapped = std::make_unique<MappedRequest>();
  map_request(req(), config, ids, *mapped);
  ASSERT_NE(find_attr(mapped->spans().back(), "user.id"), nullptr);
  EXPECT_EQ(find_attr(mapped->spans().back(), "user.id")->value.as_string(), "user_anth_1");
}

TEST_F(GatewayShapes, ThinkingAndReasoningTextAreNotPartOfTheCompletion) {
  // Anthropic: thinking (and redacted_thinking) blocks beside the text, or beside tool_use only.
  ASSERT_TRUE(parser_.parse_response(keep("anthropic_response.json"), *rec_).ok());
  EXPECT_EQ(req().completion.find("Paris weather"), std::string_view::npos);
  const char* tool_only =
      R"({"id":"msg_t","type":"message","content":[{"type":"thinking","thinking":"secret plan","signature":"c2ln"},)"
      R"({"type":"redacted_thinking","data":"ZW5j"},{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":"}"}},)"
      R"({"type":"thinking","thinking":"more"},{"type":"tool_use","id":"toolu_2","name":"g","input":{}}],"stop_reason":"tool_use"})";
  ASSERT_TRUE(parser_.parse_response(tool_only, *rec_).ok());
  EXPECT_EQ(req().completion,
            R"([{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":"}"}},{"type":"tool_use","id":"toolu_2","name":"g","input":{}}])");
  // Responses: a reasoning item with summary text beside a message, or beside a function call.
  const char* with_message =
      R"({"id":"r1","status":"completed","output":[{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"I thought"}]},)"
      R"({"type":"message","role":"assistant","content":[{"type":"output_text","text":"Answer."}]}]})";
  ASSERT_TRUE(parser_.parse_response(with_message, *rec_).ok());
  EXPECT_EQ(req().completion, "Answer.");
  const char* with_call =
      R"({"id":"r2","status":"completed","output":[{"type":"reasoning","id":"rs_2","summary":[{"type":"summary_text","text":"I thought"}]},)"
      R"({"type":"function_call","call_id":"call_1","name":"f","arguments":"{}"}]})";
  ASSERT_TRUE(parser_.parse_response(with_call, *rec_).ok());
  EXPECT_EQ(req().completion, R"([{"type":"function_call","call_id":"call_1","name":"f","arguments":"{}"}])");
  // Streams: thinking deltas and reasoning summary deltas are not appended, whatever the chunking.
  const std::string anthropic_sse = read_data("anthropic_stream.sse");
  const std::string responses_sse =
      "data: {\"type\":\"response.reasoning_summary_text.delta\",\"output_index\":0,\"delta\":\"I thought\"}\n\n"
      "data: {\"type\":\"response.output_text.delta\",\"output_index\":1,\"delta\":\"Answer.\"}\n\n"
      "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"r3\",\"status\":\"completed\",\"output\":[]}}\n\n";
  for (std::size_t s : k_steps) {
    std::uint32_t issues = 0;
    auto rec = stream("{}", anthropic_sse, step_of(s, anthropic_sse), issues, GatewayApi::anthropic_messages);
    EXPECT_EQ(rec->request().completion.find("Paris weather"), std::string_view::npos) << s;
    rec = stream("{}", responses_sse, step_of(s, responses_sse), issues, GatewayApi::responses);
    EXPECT_EQ(issues, 0u) << s;
    EXPECT_EQ(rec->request().completion, "Answer.") << s;
  }
}

// --- OpenAI Responses API ------------------------------------------------------------------------

TEST_F(GatewayShapes, ResponsesRequestIsReadFieldByFieldWithInstructionsFirst) {
  const auto r = parser_.parse_request(keep("responses_request.json"), {}, *rec_);
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(rec_->api(), GatewayApi::responses);
  EXPECT_EQ(req().operation, "chat");
  EXPECT_EQ(req().requested_model, "openai/gpt-4.1");
  EXPECT_EQ(req().max_tokens, 800);
  EXPECT_DOUBLE_EQ(req().temperature, 0.4);
  EXPECT_DOUBLE_EQ(req().top_p, 0.9);
  EXPECT_TRUE(req().stream);
  EXPECT_EQ(req().user, "user_resp_7");
  EXPECT_EQ(meta_string(req(), "generation_name"), "Summary");
  EXPECT_EQ(req().prompt,
            R"([{"role":"system","content":"You are a concise assistant."},{"role": "user", "content": [{"type": "input_text", "text": "Summarise the \"Q3\" report."}]}
  ])");
  // A string input: the text itself; with instructions, a user message after the system one.
  auto rec = std::make_unique<GatewayRecord>();
  ASSERT_TRUE(parser_.parse_request(R"({"model":"gpt-4.1","input":"Tell me a \"joke\""})", {}, *rec).ok());
  EXPECT_EQ(rec->api(), GatewayApi::responses);
  EXPECT_EQ(rec->request().prompt, "Tell me a \"joke\"");
  ASSERT_TRUE(parser_.parse_request(R"({"model":"gpt-4.1","instructions":"Be brief.","input":"Hi"})", {}, *rec).ok());
  EXPECT_EQ(rec->request().prompt, R"([{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}])");
}

TEST_F(GatewayShapes, ResponsesBodyGivesOutputTextStatusAndTokenDetails) {
  const auto r = parser_.parse_response(keep("responses_response.json"), *rec_);
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(req().response_id, "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b");
  EXPECT_EQ(req().response_model, "gpt-4.1-2025-04-14");
  EXPECT_EQ(req().completion, "Revenue grew 12% in Q3.");
  EXPECT_EQ(req().finish_reason, "completed");
  EXPECT_EQ(req().input_tokens, 36);
  EXPECT_EQ(req().output_tokens, 87);
  EXPECT_EQ(req().cache_read_input_tokens, 20);
  EXPECT_EQ(req().reasoning_output_tokens, 64);
  ASSERT_TRUE(parser_.parse_response(keep("responses_function_call_response.json"), *rec_).ok());
  EXPECT_NE(req().completion.find(R"("call_id":"call_12345xyz","name":"get_weather")"), std::string_view::npos)
      << req().completion;
  EXPECT_EQ(req().completion.front(), '[');
  // Incomplete: the reason is the finish reason.
  ASSERT_TRUE(parser_.parse_response(
                         R"({"id":"resp_i","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},"output":[]})",
                         *rec_)
                  .ok());
  EXPECT_EQ(req().finish_reason, "max_output_tokens");
}

TEST_F(GatewayShapes, ResponsesStreamIsReadWhateverTheChunkingAndNotDoubledByCompleted) {
  const std::string sse = read_data("responses_stream.sse");
  const std::string request = read_data("responses_request.json");
  for (std::size_t s : k_steps) {
    std::uint32_t issues = 0;
    auto rec = stream(request, sse, step_of(s, sse), issues);
    const LlmRequest& q = rec->request();
    EXPECT_EQ(issues, 0u) << s;
    EXPECT_EQ(q.response_id, "resp_stream_1") << s;
    EXPECT_EQ(q.response_model, "gpt-4.1-2025-04-14") << s;
    EXPECT_EQ(q.completion, "Hi there, \"Zoë\" 👋") << s;
    EXPECT_EQ(q.finish_reason, "completed") << s;
    EXPECT_EQ(q.input_tokens, 37) << s;
    EXPECT_EQ(q.output_tokens, 11) << s;
    EXPECT_EQ(q.cache_read_input_tokens, 0) << s;
    EXPECT_EQ(q.reasoning_output_tokens, 0) << s;
    EXPECT_NE(q.first_token_unix_nano, 0u) << s;
  }
}

TEST_F(GatewayShapes, ResponsesStreamedFunctionCallIsAssembled) {
  const std::string sse = read_data("responses_function_call_stream.sse");
  for (std::size_t s : k_steps) {
    std::uint32_t issues = 0;
    auto rec = stream(R"({"model":"gpt-4.1","input":"weather?"})", sse, step_of(s, sse), issues);
    EXPECT_EQ(issues, 0u) << s;
    // As response.completed repeats it, in the canonical form (the item's id and status left
    // out, as a body gives it and as the deltas give it).
    EXPECT_EQ(rec->request().completion,
              R"([{"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"location\":\"Paris, France\"}"}])")
        << s;
    EXPECT_EQ(rec->request().output_tokens, 23) << s;
  }
}

TEST_F(GatewayShapes, ResponsesErrorEventFailsTheRequest) {
  const std::string sse = read_data("responses_error_stream.sse");
  for (std::size_t s : {std::size_t{0}, std::size_t{1}}) {
    std::uint32_t issues = 0;
    auto rec = stream("{}", sse, step_of(s, sse), issues);
    EXPECT_EQ(issues, 0u) << s;
    EXPECT_TRUE(rec->request().error) << s;
    EXPECT_EQ(rec->request().error_message, "The server had an error while processing your request.") << s;
  }
}

// --- embeddings ----------------------------------------------------------------------------------

TEST_F(GatewayShapes, EmbeddingsRequestAndResponseGiveTheOperationInputAndInputTokens) {
  ASSERT_TRUE(parser_.parse_request(keep("embeddings_request.json"), {}, *rec_).ok());
  EXPECT_EQ(rec_->api(), GatewayApi::embeddings);
  EXPECT_EQ(req().operation, "embeddings");
  EXPECT_EQ(req().requested_model, "openai/text-embedding-3-small");
  EXPECT_EQ(req().prompt, R"(["The food was delicious", "and the waiter was kind"])");
  EXPECT_EQ(req().user, "user_emb");
  ASSERT_TRUE(parser_.parse_response(keep("embeddings_response.json"), *rec_).ok());
  EXPECT_EQ(req().input_tokens, 9);
  EXPECT_EQ(req().output_tokens, -1);
  EXPECT_EQ(req().completion, "");  // no content beyond the input
  EXPECT_EQ(req().response_model, "text-embedding-3-small");
  // Told by the route, a string input, a model name without "embed".
  auto rec = std::make_unique<GatewayRecord>();
  ASSERT_TRUE(parser_.parse_request(R"({"model":"acme/vectors-1","input":"hello"})", {}, *rec, GatewayApi::embeddings).ok());
  EXPECT_EQ(rec->request().operation, "embeddings");
  EXPECT_EQ(rec->request().prompt, "hello");
  // The span: operation and name follow the GenAI conventions.
  MappingConfig config;
  IdGenerator ids(3);
  auto mapped = std::make_unique<MappedRequest>();
  map_request(req(), config, ids, *mapped);
  EXPECT_EQ(mapped->spans().back().name, "embeddings openai/text-embedding-3-small");
  EXPECT_EQ(find_attr(mapped->spans().back(), "gen_ai.usage.input_tokens")->value.as_int64(), 9);
}

// --- chat completions token details ----------------------------------------------------------------

TEST_F(GatewayShapes, ChatUsageDetailsBecomeCacheReadAndReasoningTokens) {
  ASSERT_TRUE(parser_.parse_response(keep("chat_usage_details_response.json"), *rec_).ok());
  EXPECT_EQ(req().input_tokens, 1117);
  EXPECT_EQ(req().output_tokens, 246);
  EXPECT_EQ(req().cache_read_input_tokens, 1024);
  EXPECT_EQ(req().reasoning_output_tokens, 192);
  MappingConfig config;
  IdGenerator ids(3);
  auto mapped = std::make_unique<MappedRequest>();
  map_request(req(), config, ids, *mapped);
  EXPECT_EQ(find_attr(mapped->spans().back(), "gen_ai.usage.cache_read.input_tokens")->value.as_int64(), 1024);
  EXPECT_EQ(find_attr(mapped->spans().back(), "gen_ai.usage.reasoning.output_tokens")->value.as_int64(), 192);
  // Streamed: the final usage-only chunk.
  std::uint32_t issues = 0;
  auto rec = stream(R"({"model":"o4-mini","messages":[]})",
                    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"42\"},\"finish_reason\":\"stop\"}]}\n\n"
                    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,"
                    "\"prompt_tokens_details\":{\"cached_tokens\":8},\"completion_tokens_details\":{\"reasoning_tokens\":3}}}\n\n"
                    "data: [DONE]\n\n",
                    1, issues);
  EXPECT_EQ(issues, 0u);
  EXPECT_EQ(rec->request().cache_read_input_tokens, 8);
  EXPECT_EQ(rec->request().reasoning_output_tokens, 3);
  // A details member of the wrong type is flagged, the rest read.
  ASSERT_FALSE(parser_.parse_response(R"({"usage":{"prompt_tokens":3,"prompt_tokens_details":{"cached_tokens":"x"}}})", *rec_).ok());
  EXPECT_EQ(req().input_tokens, 3);
  EXPECT_EQ(req().cache_read_input_tokens, -1);
}

TEST_F(GatewayShapes, EveryShapeAllocatesNothingOnceWarm) {
  struct Pair {
    std::string request, response, sse;
  };
  const std::vector<Pair> pairs = {
      {read_data("anthropic_request.json"), read_data("anthropic_response.json"), read_data("anthropic_stream.sse")},
      {read_data("anthropic_request.json"), read_data("anthropic_tool_only_response.json"), read_data("anthropic_tool_stream.sse")},
      {read_data("responses_request.json"), read_data("responses_response.json"), read_data("responses_stream.sse")},
      {read_data("responses_request.json"), read_data("responses_function_call_response.json"),
       read_data("responses_function_call_stream.sse")},
      {read_data("embeddings_request.json"), read_data("embeddings_response.json"), ""},
      {read_data("chat_request.json"), read_data("chat_usage_details_response.json"), read_data("stream_response.sse")},
  };
  auto round = [&] {
    for (const Pair& p : pairs) {
      rec_->reset();
      (void)parser_.parse_request(p.request, {}, *rec_);
      (void)parser_.parse_response(p.response, *rec_);
      parser_.begin_stream(*rec_);
      for (std::size_t i = 0; i < p.sse.size(); i += 5) (void)parser_.feed_stream(std::string_view(p.sse).substr(i, 5), 1, *rec_);
      (void)parser_.finish_stream(*rec_);
    }
  };
  round();
  round();
  test::AllocationScope scope;
  for (int i = 0; i < 10; ++i) round();
  EXPECT_EQ(scope.count(), 0u);
}

// --- the third review: Responses refusals, Groq's streamed usage ----------------------------

// A Responses message that refuses: its refusal part is the completion (as a chat message's
// `refusal`), in a body and in a stream (refusal deltas, or only the final response).
TEST_F(GatewayShapes, ResponsesRefusalIsTheCompletionInABodyAndAStream) {
  const std::string body =
      R"({"id":"resp_1","object":"response","status":"completed","model":"gpt-4.1","output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"refusal","refusal":"I can't help with that."}]}],"usage":{"input_tokens":5,"output_tokens":6,"total_tokens":11}})";
  ASSERT_EQ(parser_.parse_response(body, *rec_).issues, 0u);
  EXPECT_EQ(req().completion, "I can't help with that.");
  EXPECT_EQ(req().output_tokens, 6);

  const std::string completed = std::string(R"({"type":"response.completed","sequence_number":9,"response":)") + body + "}";
  const std::string with_deltas =
      "event: response.created\n"
      R"(data: {"type":"response.created","sequence_number":0,"response":{"id":"resp_1","status":"in_progress","model":"gpt-4.1","output":[]}})"
      "\n\n"
      R"(data: {"type":"response.refusal.delta","sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"I can't "})"
      "\n\n"
      R"(data: {"type":"response.refusal.delta","sequence_number":5,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"help with that."})"
      "\n\n"
      R"(data: {"type":"response.refusal.done","sequence_number":6,"item_id":"msg_1","output_index":0,"content_index":0,"refusal":"I can't help with that."})"
      "\n\n"
      "data: " + completed + "\n\n";
  const std::string final_only = "data: " + completed + "\n\n";
  for (const std::string* sse : {&with_deltas, &final_only}) {
    for (const std::size_t s : k_steps) {
      std::uint32_t issues = 0;
      auto rec = stream("{}", *sse, step_of(s, *sse), issues, GatewayApi::responses);
      EXPECT_EQ(issues, 0u);
      EXPECT_EQ(rec->request().completion, "I can't help with that.") << *sse << "\nstep " << s;
      EXPECT_EQ(rec->request().output_tokens, 6);
    }
  }
  // Text wins over a refusal in the same message (either order).
  const std::string both =
      R"({"status":"completed","output":[{"type":"message","content":[{"type":"refusal","refusal":"no"},{"type":"output_text","text":"yes"}]}]})";
  ASSERT_TRUE(parser_.parse_response(both, *rec_).ok());
  EXPECT_EQ(req().completion, "yes");
}

// Groq's streams carry their usage in `x_groq.usage` (last chunk): read as a top-level `usage`,
// so that the stream's tokens equal its body's.
TEST_F(GatewayShapes, GroqStreamUsageInXGroqIsRead) {
  const std::string sse =
      R"(data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"llama-3.3-70b-versatile","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"x_groq":{"id":"req_1","seed":7}})"
      "\n\n"
      R"(data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"llama-3.3-70b-versatile","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}]})"
      "\n\n"
      R"(data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"llama-3.3-70b-versatile","system_fingerprint":"fp_1","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"x_groq":{"id":"req_1","usage":{"queue_time":0.09,"prompt_tokens":12,"prompt_time":0.01,"completion_tokens":3,"completion_time":0.02,"total_tokens":15,"total_time":0.03}}})"
      "\n\ndata: [DONE]\n\n";
  for (const std::size_t s : k_steps) {
    std::uint32_t issues = 0;
    auto rec = stream("{}", sse, step_of(s, sse), issues);
    EXPECT_EQ(issues, 0u);
    EXPECT_EQ(rec->request().input_tokens, 12) << "step " << s;
    EXPECT_EQ(rec->request().output_tokens, 3);
    EXPECT_EQ(rec->request().completion, "Hello");
    EXPECT_EQ(rec->request().finish_reason, "stop");
  }
  // A malformed x_groq is no usage, and no crash.
  ASSERT_TRUE(parser_.parse_response(R"({"choices":[],"x_groq":{"usage":"x"}})", *rec_).issues != 0);
  EXPECT_EQ(req().input_tokens, -1);
}

// A value the parser cuts to a limit marks the span tracecast.truncated (as ingest's cuts do),
// with the parse issues entry switched off too; an uncut response does not.
TEST_F(GatewayShapes, AValueTheParserCutsMarksTheSpanTruncated) {
  GatewayConfig quiet;
  quiet.issues_metadata_key = "";
  GatewayParser parser(quiet);
  MappingConfig config;
  IdGenerator ids(5);
  auto span_truncated = [&](const GatewayRecord& rec) {
    auto mapped = std::make_unique<MappedRequest>();
    map_request(rec.request(), config, ids, *mapped);
    const Attribute* a = find_attr(mapped->spans().back(), "tracecast.truncated");
    return a != nullptr && a->value.as_bool();
  };
  const std::string long_model = std::string(R"({"model":")") + std::string(300, 'm') + R"(","choices":[]})";
  const std::string plain = R"({"model":"gpt-4o","choices":[{"index":0,"message":{"content":"ok"},"finish_reason":"stop"}]})";
  GatewayConfig small_completion = quiet;
  small_completion.max_completion_bytes = 4;
  GatewayParser small_parser(small_completion);
  const std::string sse = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"0123456789\"}}]}\n\ndata: [DONE]\n\n";
  auto rec = std::make_unique<GatewayRecord>(quiet);
  (void)parser.parse_request(R"({"model":"m"})", {}, *rec);
  (void)parser.parse_response(plain, *rec);
  EXPECT_FALSE(span_truncated(*rec));
  (void)parser.parse_response(long_model, *rec);
  EXPECT_EQ(rec->request().response_model.size(), k_gateway_max_id_bytes);
  EXPECT_TRUE(span_truncated(*rec));
  auto streamed = std::make_unique<GatewayRecord>(small_completion);
  (void)test::stream_into(small_parser, *streamed, sse, 7);
  EXPECT_EQ(streamed->request().completion, "0123");
  EXPECT_TRUE(span_truncated(*streamed));
  streamed->reset();
  (void)test::stream_into(small_parser, *streamed, "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\n", 7);
  EXPECT_FALSE(span_truncated(*streamed));
}

// A bad escape of any length inside text kept as JSON (messages, nested trace values, tool
// calls) becomes U+FFFD as the same string read as a value does: the prompt's content, a
// nested value's element and a plain metadata value all decode to the same text.
TEST_F(GatewayShapes, BadEscapesInJsonTextDecodeAsTheSameStringReadAsAValue) {
  const std::string body =
      R"({"model":"m","messages":[{"role":"user","content":"it\'s \uZZZZ \u12x \ud800 \q\é end"}],)"
      R"("trace":{"s":"it\'s \uZZZZ \u12x \ud800 \q\é end","o":["it\'s \uZZZZ \u12x \ud800 \q\é end"]}})";
  const GatewayParseResult r = parser_.parse_request(body, {}, *rec_);
  EXPECT_NE(r.issues & issue_bit(ParseIssue::invalid_escape), 0u);
  const std::string expected = "it\xEF\xBF\xBDs \xEF\xBF\xBDZZZZ \xEF\xBF\xBDx \xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD end";
  EXPECT_EQ(meta_string(req(), "s"), expected);
  simdjson::dom::parser json;
  simdjson::dom::element prompt;
  ASSERT_EQ(json.parse(std::string(req().prompt)).get(prompt), simdjson::SUCCESS) << req().prompt;
  std::string_view content;
  ASSERT_EQ(prompt.at(0)["content"].get(content), simdjson::SUCCESS);
  EXPECT_EQ(content, expected);
  simdjson::dom::element nested;
  ASSERT_EQ(json.parse(std::string(meta_string(req(), "o"))).get(nested), simdjson::SUCCESS) << meta_string(req(), "o");
  std::string_view element;
  ASSERT_EQ(nested.at(0).get(element), simdjson::SUCCESS);
  EXPECT_EQ(element, expected);
  // A body made of nothing but bad 2-byte escapes still gives valid JSON text (every prefix too).
  std::string hostile = R"({"model":"m","messages":[{"role":"user","content":")";
  for (int i = 0; i < 2000; ++i) hostile += "\\q";
  hostile += R"("}],"trace":{"o":[")";
  for (int i = 0; i < 500; ++i) hostile += "\\'";
  hostile += R"("]}})";
  for (std::size_t n = hostile.size() - 40; n <= hostile.size(); ++n) {
    auto rec = std::make_unique<GatewayRecord>();
    const std::string cut = hostile.substr(0, n);
    (void)parser_.parse_request(cut, {}, *rec);
    simdjson::dom::element e;
    EXPECT_EQ(json.parse(std::string(rec->request().prompt)).get(e), simdjson::SUCCESS) << n;
    const std::string_view o = meta_string(rec->request(), "o");
    if (o != "<missing>") {
      EXPECT_EQ(json.parse(std::string(o)).get(e), simdjson::SUCCESS) << n;
    }
  }
}

}  // namespace
}  // namespace tracecast
