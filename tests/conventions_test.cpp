// Attribute conventions per destination (issue 11): names, several at once, privacy, the text
// the conventions build, zero allocation, and golden OTLP/JSON files per convention.
//
// Golden files (tests/golden/conventions/<convention>_{reference,content}.json): the OTLP/JSON
// body of the reference example (shared/reference/grafana-cloud-broadcast.md, through the
// gateway parser) and of a content request (system + multi-part user message, cache and
// reasoning tokens, parameters, typed metadata), one per convention and one for all at once.
// TRACECAST_UPDATE_GOLDEN=1 rewrites them; review with `jq . <file>`. Reviewed by hand
// (November 2026) against each convention's published list:
//  - genai: gen-ai-spans (opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans) names,
//    gen_ai.input.messages / output.messages against gen-ai-input/output-messages.json
//    (role, parts[{type:"text",content}], finish_reason on output messages), finish_reasons
//    a string array, no gen_ai.system, no gen_ai.prompt;
//  - openinference: semantic-conventions.html + llm_spans.html + messages.html (span kind LLM,
//    CHAIN on the wrappers, llm.token_count.*, input/output value + mime type,
//    llm.input_messages.<i>.message.role/content zero-based, `metadata` a JSON object text);
//  - langfuse: LangfuseOtelSpanAttributes names (observation type "generation", model.name,
//    model.parameters / usage_details / cost_details as JSON text, trace.name,
//    trace.metadata.<key>, observation input/output), user.id / session.id;
//  - langsmith: the attribute table of "Trace with OpenTelemetry" (span kind llm / chain,
//    trace.session_id, metadata.<key>, gen_ai.* it maps, gen_ai.prompt / completion).
#include "golden_util.h"
#include "reference_example.h"
#include "tracecast/conventions.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "alloc_counter.h"
#include "canonical_request.h"
#include "tracecast/gateway.h"
#include "tracecast/mapping.h"
#include "tracecast/otlp_json.h"

namespace tracecast {
namespace {

using test::read_file;
using test::source_path;
// tests/golden/conventions/<name> (test::golden).
std::string golden(const std::string& name, const std::string& actual) {
  return test::golden("conventions/" + name, actual);
}

std::string encode(const MappedRequest& m, bool privacy) {
  std::vector<char> buf(1 << 20);
  OtlpJsonEncoder enc;
  enc.begin(buf, buf.size());
  EXPECT_EQ(enc.append(m.resource(), m.scope(), privacy ? m.private_spans() : m.spans()), append_result::ok);
  return std::string(enc.finish());
}

std::map<std::string, std::string> keys_and_values(std::span<const Attribute> attrs) {
  std::map<std::string, std::string> out;
  for (const Attribute& a : attrs) {
    std::string v;
    switch (a.value.type()) {
      case ValueType::string: v = "s:" + std::string(a.value.as_string()); break;
      case ValueType::int64: v = "i:" + std::to_string(a.value.as_int64()); break;
      case ValueType::float64: v = "d:" + std::to_string(a.value.as_double()); break;
      case ValueType::boolean: v = a.value.as_bool() ? "b:1" : "b:0"; break;
      case ValueType::string_array:
        v = "sa:";
        for (auto s : a.value.as_strings()) v.append(s).append("|");
        break;
      default: v = "other";
    }
    EXPECT_TRUE(out.emplace(std::string(a.key), v).second) << "duplicate key " << a.key;
  }
  return out;
}

const Attribute* find(std::span<const Attribute> attrs, std::string_view key) {
  for (const Attribute& a : attrs)
    if (a.key == key) return &a;
  return nullptr;
}
std::string str(std::span<const Attribute> attrs, std::string_view key) {
  const Attribute* a = find(attrs, key);
  if (a == nullptr || a->value.type() != ValueType::string) return "<absent>";
  return std::string(a->value.as_string());
}

bool valid_json(std::string_view text) {
  simdjson::dom::parser parser;
  simdjson::padded_string p(text);
  return parser.parse(p).error() == simdjson::SUCCESS;
}

// The content request: several messages, a multi-part user message with a non-text part,
// escapes, non-ASCII text, every token detail, parameters and typed metadata.
struct ContentRequest {
  MetadataEntry meta[4] = {{"environment", AttributeValue::string("production")},
                           {"trace_name", AttributeValue::string("Support Bot")},
                           {"tier", AttributeValue::int64(3)},
                           {"beta", AttributeValue::boolean(true)}};
  LlmRequest r;
  ContentRequest() {
    r.account = "acct_1";
    r.request_id = "gen-1732650000-content";
    r.provider = "anthropic";
    r.requested_model = "anthropic/claude-3.5-sonnet";
    r.response_model = "anthropic/claude-3.5-sonnet-20241022";
    r.response_id = "msg_01";
    r.input_tokens = 2100;
    r.output_tokens = 95;
    r.cache_read_input_tokens = 2000;
    r.cache_creation_input_tokens = 0;
    r.reasoning_output_tokens = 40;
    r.finish_reason = "stop";
    r.finish_reasons = "stop,length";
    r.cost = 0.00125;
    r.temperature = 0.5;
    r.max_tokens = 256;
    r.stream = true;
    r.user = "user_9";
    r.session_id = "sess_9";
    r.prompt =
        R"([{"role":"system","content":"Be brief."},)"
        R"({"role":"user","content":[{"type":"text","text":"Caf\u00e9 \"menu\"?\nList it."},)"
        R"({"type":"image_url","image_url":{"url":"https://example.com/m.png"}},{"type":"text","text":"Thanks"}]}])";
    r.completion = "Espresso, cr\xc3\xa8me br\xc3\xbbl\xc3\xa9" "e \"today\".";
    r.metadata = meta;
    r.start_unix_nano = 1'700'000'000'000'000'000ULL;
    r.first_token_unix_nano = 1'700'000'000'250'000'000ULL;
    r.end_unix_nano = 1'700'000'001'000'000'000ULL;
  }
};

// --- names -------------------------------------------------------------------------------------

TEST(Conventions, NamesRoundTripAndUnknownNamesAreRefused) {
  ASSERT_EQ(conventions().size(), k_convention_count);
  for (const ConventionInfo& c : conventions()) {
    EXPECT_EQ(to_string(c.convention), c.name);
    EXPECT_EQ(parse_convention(c.name), c.convention);
  }
  EXPECT_FALSE(parse_convention("OpenInference").has_value());  // exact, lowercase
  EXPECT_FALSE(parse_convention("otel").has_value());
  EXPECT_FALSE(parse_convention("").has_value());
}

TEST(Conventions, ListParsesCommaSeparatedNamesAndNamesTheFirstUnknownOne) {
  const ConventionListParse ok = parse_convention_list(" openrouter, openinference ,langfuse");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.set, (ConventionSet{Convention::openrouter, Convention::openinference, Convention::langfuse}));
  EXPECT_EQ(ok.set.size(), 3u);
  const ConventionListParse bad = parse_convention_list("genai,phoenix,langsmith");
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.bad, "phoenix");
  EXPECT_FALSE(parse_convention_list("").ok());
  EXPECT_FALSE(parse_convention_list("genai,").ok());
  EXPECT_EQ(ConventionSet::all().size(), k_convention_count);
  EXPECT_TRUE(k_default_conventions.contains(Convention::openrouter));
  EXPECT_EQ(k_default_conventions.size(), 1u);
}

// --- mapping -----------------------------------------------------------------------------------

class ConventionMapping : public ::testing::Test {
 protected:
  const MappedRequest& map(const LlmRequest& r, ConventionSet set) {
    IdGenerator ids(7);
    map_request(r, config, set, ids, *out);
    return *out;
  }
  std::span<const Attribute> gen(const LlmRequest& r, ConventionSet set) { return map(r, set).spans().back().attributes; }
  MappingConfig config;
  std::unique_ptr<MappedRequest> out = std::make_unique<MappedRequest>();
};

TEST_F(ConventionMapping, OpenrouterIsTheDefaultAndUnchanged) {
  ContentRequest c;
  IdGenerator a(7), b(7);
  auto plain = std::make_unique<MappedRequest>();
  map_request(c.r, config, a, *plain);
  map_request(c.r, config, k_default_conventions, b, *out);
  EXPECT_EQ(encode(*plain, false), encode(*out, false));
  map_request(c.r, config, ConventionSet{}, b, *out);  // empty: openrouter
  EXPECT_EQ(str(out->spans().back().attributes, "gen_ai.system"), "anthropic");
}

TEST_F(ConventionMapping, EachConventionSpeaksItsOwnVocabulary) {
  ContentRequest c;
  using enum Convention;
  auto g = gen(c.r, {genai});
  EXPECT_EQ(str(g, "gen_ai.provider.name"), "anthropic");
  EXPECT_EQ(find(g, "gen_ai.system"), nullptr);
  EXPECT_EQ(find(g, "gen_ai.prompt"), nullptr);
  EXPECT_EQ(find(g, "trace.metadata.environment"), nullptr);
  EXPECT_EQ(str(g, "gen_ai.conversation.id"), "sess_9");
  EXPECT_EQ(find(g, "gen_ai.response.finish_reasons")->value.as_strings().size(), 2u);
  EXPECT_EQ(str(g, "gen_ai.input.messages"),
            R"([{"role":"system","parts":[{"type":"text","content":"Be brief."}]},)"
            R"({"role":"user","parts":[{"type":"text","content":"Café \"menu\"?\nList it.\nThanks"}]}])");
  EXPECT_EQ(str(g, "gen_ai.output.messages"),
            R"([{"role":"assistant","parts":[{"type":"text","content":"Espresso, crème brûlée \"today\"."}],"finish_reason":"stop"}])");

  g = gen(c.r, {openinference});
  EXPECT_EQ(str(g, "openinference.span.kind"), "LLM");
  EXPECT_EQ(str(g, "llm.model_name"), "anthropic/claude-3.5-sonnet-20241022");
  EXPECT_EQ(find(g, "llm.token_count.total")->value.as_int64(), 2195);
  EXPECT_EQ(find(g, "llm.token_count.prompt_details.cache_read")->value.as_int64(), 2000);
  EXPECT_EQ(str(g, "input.mime_type"), "application/json");
  EXPECT_EQ(str(g, "output.mime_type"), "text/plain");
  EXPECT_EQ(str(g, "llm.input_messages.0.message.role"), "system");
  EXPECT_EQ(str(g, "llm.input_messages.1.message.content"), "Café \"menu\"?\nList it.\nThanks");
  EXPECT_EQ(str(g, "llm.output_messages.0.message.role"), "assistant");
  EXPECT_EQ(str(g, "metadata"), R"({"environment":"production","trace_name":"Support Bot","tier":3,"beta":true})");
  EXPECT_EQ(str(g, "llm.invocation_parameters"), R"({"temperature":0.5,"max_tokens":256,"stream":true})");
  EXPECT_EQ(str(g, "user.id"), "user_9");
  EXPECT_EQ(find(g, "gen_ai.request.model"), nullptr);

  g = gen(c.r, {langfuse});
  EXPECT_EQ(str(g, "langfuse.observation.type"), "generation");
  EXPECT_EQ(str(g, "langfuse.observation.usage_details"), R"({"input":2100,"output":95,"total":2195})");
  EXPECT_EQ(str(g, "langfuse.observation.cost_details"), R"({"total":0.00125})");
  EXPECT_EQ(str(g, "langfuse.trace.name"), "Support Bot");
  EXPECT_EQ(str(g, "langfuse.trace.metadata.environment"), "production");
  EXPECT_EQ(str(g, "langfuse.observation.input"), c.r.prompt);
  EXPECT_EQ(str(g, "session.id"), "sess_9");

  g = gen(c.r, {langsmith});
  EXPECT_EQ(str(g, "langsmith.span.kind"), "llm");
  EXPECT_EQ(str(g, "langsmith.trace.session_id"), "sess_9");
  EXPECT_EQ(str(g, "langsmith.metadata.environment"), "production");
  EXPECT_EQ(str(g, "gen_ai.system"), "anthropic");
  EXPECT_EQ(str(g, "gen_ai.prompt"), c.r.prompt);
  EXPECT_EQ(find(g, "user.id"), nullptr);
}

// What each backend reads for time to first token, the user and the model vendor
// (Langfuse completion_start_time, LangSmith run metadata, OpenInference llm.system).
TEST_F(ConventionMapping, FirstTokenTimeUserAndModelVendorReachTheBackendsThatReadThem) {
  ContentRequest c;
  using enum Convention;
  // Langfuse JSON.parse()s the value: a quoted ISO 8601 UTC time with milliseconds.
  auto g = gen(c.r, {langfuse});
  EXPECT_EQ(str(g, "langfuse.observation.completion_start_time"), "\"2023-11-14T22:13:20.250Z\"");
  c.r.first_token_unix_nano = 951'782'400'007'999'999ULL;  // 2000-02-29, a leap day; ms floor
  c.r.start_unix_nano = 951'782'400'000'000'000ULL;
  c.r.end_unix_nano = c.r.first_token_unix_nano + 1;
  g = gen(c.r, {langfuse});
  EXPECT_EQ(str(g, "langfuse.observation.completion_start_time"), "\"2000-02-29T00:00:00.007Z\"");
  c.r.first_token_unix_nano = 0;  // unknown: left out
  EXPECT_EQ(find(gen(c.r, {langfuse}), "langfuse.observation.completion_start_time"), nullptr);
  c.r.first_token_unix_nano = c.r.start_unix_nano - 1;  // before the start: not a first token
  EXPECT_EQ(find(gen(c.r, {langfuse}), "langfuse.observation.completion_start_time"), nullptr);

  // LangSmith: the user as run metadata; the request's own trace.user_id wins, written once.
  g = gen(c.r, {langsmith});
  EXPECT_EQ(str(g, "langsmith.metadata.user_id"), "user_9");
  MetadataEntry own[1] = {{"user_id", AttributeValue::string("from_trace")}};
  c.r.metadata = own;
  g = gen(c.r, {langsmith});
  std::size_t copies = 0;
  for (const Attribute& a : g) copies += a.key == "langsmith.metadata.user_id" ? 1 : 0;
  EXPECT_EQ(copies, 1u);
  EXPECT_EQ(str(g, "langsmith.metadata.user_id"), "from_trace");
  c.r.user = {};
  c.r.metadata = {};
  EXPECT_EQ(find(gen(c.r, {langsmith}), "langsmith.metadata.user_id"), nullptr);

  // OpenInference llm.system: the answering model's vendor when it is one of the spec's values.
  EXPECT_EQ(str(gen(c.r, {openinference}), "llm.system"), "anthropic");
  c.r.response_model = "meta-llama/llama-3.1-70b-instruct";
  EXPECT_EQ(str(gen(c.r, {openinference}), "llm.system"), "meta");
  c.r.response_model = "openai/gpt-4o";
  EXPECT_EQ(str(gen(c.r, {openinference}), "llm.system"), "openai");
  c.r.response_model = "deepseek/deepseek-chat";  // not an llm.system value: left out
  EXPECT_EQ(find(gen(c.r, {openinference}), "llm.system"), nullptr);
  c.r.response_model = "gpt-4o";  // no vendor
  EXPECT_EQ(find(gen(c.r, {openinference}), "llm.system"), nullptr);
}

// SpanView::keys_unique lets the encoders skip their duplicate-key check: the mapping may
// promise it only when it holds. Every set, every span (private views too) of a request with
// every optional field set; then each way metadata can break it.
TEST_F(ConventionMapping, PromisesUniqueKeysOnlyWhenNoTwoAttributesShareOne) {
  ContentRequest c;
  MetadataEntry meta[6] = {{"trace_id", AttributeValue::string("grp")},     {"trace_name", AttributeValue::string("Root")},
                           {"span_name", AttributeValue::string("Mid")},   {"user_id", AttributeValue::string("u")},
                           {"caf\xc3\xa9", AttributeValue::int64(1)},      {"tracecast.truncated", AttributeValue::boolean(true)}};
  c.r.metadata = meta;
  c.r.error = true;
  c.r.error_message = "upstream 502";
  c.r.http_status = 502;
  c.r.submit_flags = k_submit_value_cut;
  auto check = [](std::span<const SpanView> spans, unsigned bits) {
    for (const SpanView& s : spans) {
      if (!s.keys_unique) continue;
      std::set<std::string_view> keys;
      for (const Attribute& a : s.attributes) {
        EXPECT_TRUE(keys.insert(a.key).second) << a.key << " twice, set bits " << bits;
        EXPECT_LE(a.key.size(), k_unique_key_max_bytes);
        EXPECT_TRUE(simdjson::validate_utf8(a.key.data(), a.key.size()));
      }
    }
  };
  for (unsigned bits = 1; bits < (1u << k_convention_count); ++bits) {
    const MappedRequest& m = map(c.r, ConventionSet::from_bits(static_cast<std::uint8_t>(bits)));
    ASSERT_EQ(m.spans().size(), 3u);
    for (const SpanView& s : m.spans()) EXPECT_TRUE(s.keys_unique) << "set bits " << bits;
    check(m.spans(), bits);
    check(m.private_spans(), bits);
  }
  // Metadata that repeats a key, repeats one after the 128-byte cut, holds an ill-formed key
  // (two may repair to the same text) or has more entries than the mapping checks: no promise.
  const std::string long_a = std::string(128, 'k') + "a", long_b = std::string(128, 'k') + "b";
  const MetadataEntry repeated[] = {{"env", AttributeValue::string("a")}, {"env", AttributeValue::string("b")}};
  const MetadataEntry cut_equal[] = {{long_a, AttributeValue::int64(1)}, {long_b, AttributeValue::int64(2)}};
  const MetadataEntry ill_formed[] = {{"k\xff", AttributeValue::int64(1)}};
  std::vector<std::string> names;
  for (int i = 0; i < 17; ++i) names.push_back(std::string("key_").append(std::to_string(i)));
  std::vector<MetadataEntry> many;
  for (const std::string& n : names) many.push_back({n, AttributeValue::int64(1)});
  const std::span<const MetadataEntry> breaking[] = {repeated, cut_equal, ill_formed, many};
  for (const auto& m : breaking) {
    c.r.metadata = m;
    EXPECT_FALSE(map(c.r, ConventionSet::all()).spans().back().keys_unique) << m.front().key;
  }
  // Empty keys and valueless entries are not written: they do not count as repeats.
  const MetadataEntry skipped[] = {{"", AttributeValue::int64(1)}, {"", AttributeValue::int64(2)},
                                   {"env", AttributeValue{}}, {"env", AttributeValue::string("x")}};
  c.r.metadata = skipped;
  EXPECT_TRUE(map(c.r, ConventionSet::all()).spans().back().keys_unique);
}

TEST_F(ConventionMapping, WrapperSpansAreChainsWhereTheConventionTypesEverySpan) {
  ContentRequest c;
  const MetadataEntry meta[] = {{"trace_name", AttributeValue::string("P")}, {"span_name", AttributeValue::string("S")}};
  c.r.metadata = meta;
  const MappedRequest& m = map(c.r, ConventionSet::all());
  ASSERT_EQ(m.spans().size(), 3u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(str(m.spans()[i].attributes, "openinference.span.kind"), "CHAIN");
    EXPECT_EQ(str(m.spans()[i].attributes, "langsmith.span.kind"), "chain");
  }
  EXPECT_TRUE(map(c.r, {Convention::openrouter}).spans()[0].attributes.empty());
}

// Several at once: exactly the union of each one's attributes, each name once, shared names
// with equal values.
TEST_F(ConventionMapping, SeveralConventionsAtOnceAreTheUnionWithSharedNamesOnce) {
  ContentRequest c;
  std::vector<std::map<std::string, std::string>> single;
  for (const ConventionInfo& info : conventions()) single.push_back(keys_and_values(gen(c.r, {info.convention})));
  for (unsigned bits = 1; bits < (1u << k_convention_count); ++bits) {
    const ConventionSet set = ConventionSet::from_bits(static_cast<std::uint8_t>(bits));
    std::map<std::string, std::string> expected;
    for (std::size_t i = 0; i < k_convention_count; ++i) {
      if (!set.contains(static_cast<Convention>(i))) continue;
      for (const auto& [k, v] : single[i]) {
        auto [it, inserted] = expected.emplace(k, v);
        EXPECT_EQ(it->second, v) << k << " differs between conventions";
      }
    }
    EXPECT_EQ(keys_and_values(gen(c.r, set)), expected) << "set bits " << bits;
  }
}

// Privacy mode: no content of any convention, whatever the set; the same spans otherwise.
TEST_F(ConventionMapping, PrivacyLeavesNoContentAttributeInAnyConvention) {
  ContentRequest c;
  c.r.prompt = R"([{"role":"user","content":"PROMPT-SECRET-1"},{"role":"user","content":[{"type":"text","text":"PROMPT-SECRET-2"}]}])";
  c.r.completion = "COMPLETION-SECRET-3";
  const std::set<std::string> content_names = {
      "gen_ai.prompt", "gen_ai.completion", "gen_ai.input.messages", "gen_ai.output.messages", "input.value",
      "output.value", "input.mime_type", "output.mime_type", "langfuse.observation.input", "langfuse.observation.output"};
  for (unsigned bits = 1; bits < (1u << k_convention_count); ++bits) {
    const ConventionSet set = ConventionSet::from_bits(static_cast<std::uint8_t>(bits));
    const MappedRequest& m = map(c.r, set);
    const std::string open = encode(m, false);
    const std::string priv = encode(m, true);
    for (const char* secret : {"PROMPT-SECRET-1", "PROMPT-SECRET-2", "COMPLETION-SECRET-3"}) {
      EXPECT_NE(open.find(secret), std::string::npos) << secret << " bits " << bits;
      EXPECT_EQ(priv.find(secret), std::string::npos) << secret << " bits " << bits;
    }
    for (const Attribute& a : m.private_spans().back().attributes) {
      EXPECT_EQ(content_names.count(std::string(a.key)), 0u) << a.key;
      EXPECT_EQ(a.key.find("_messages."), std::string_view::npos) << a.key;
    }
    // Only content goes: the private view is a prefix of the full one.
    const auto full = m.spans().back().attributes;
    const auto cut = m.private_spans().back().attributes;
    EXPECT_EQ(full.data(), cut.data());
    for (std::size_t i = cut.size(); i < full.size(); ++i) {
      const std::string key(full[i].key);
      EXPECT_TRUE(content_names.count(key) != 0 || key.find("_messages.") != std::string::npos) << key;
    }
  }
}

TEST_F(ConventionMapping, AFailedRequestIsAnErrorInEveryVocabulary) {
  ContentRequest c;
  c.r.error = true;
  c.r.error_message = "upstream timed out";
  c.r.http_status = 504;
  auto g = gen(c.r, ConventionSet::all());
  EXPECT_EQ(str(g, "error.type"), "504");
  EXPECT_EQ(str(g, "langfuse.observation.level"), "ERROR");
  EXPECT_EQ(str(g, "langfuse.observation.status_message"), "upstream timed out");
  c.r.http_status = 0;
  EXPECT_EQ(str(gen(c.r, {Convention::genai}), "error.type"), "_OTHER");
}

TEST_F(ConventionMapping, APromptThatIsNotAMessageListIsOneUserMessage) {
  ContentRequest c;
  c.r.prompt = "Translate \"hello\"";
  auto g = gen(c.r, {Convention::genai, Convention::openinference});
  EXPECT_EQ(str(g, "gen_ai.input.messages"),
            R"([{"role":"user","parts":[{"type":"text","content":"Translate \"hello\""}]}])");
  EXPECT_EQ(str(g, "llm.input_messages.0.message.content"), "Translate \"hello\"");
  EXPECT_EQ(str(g, "input.mime_type"), "text/plain");
  c.r.prompt = R"([{"role":"user","content":"unterminated)";  // malformed JSON: the text as is
  g = gen(c.r, {Convention::openinference});
  EXPECT_EQ(str(g, "llm.input_messages.0.message.content"), c.r.prompt);
  EXPECT_EQ(find(g, "llm.input_messages.1.message.content"), nullptr);
  c.r.prompt = R"([{"type":"function_call","name":"f"},{"role":"tool","content":"42"}])";  // items without a role skipped
  g = gen(c.r, {Convention::openinference});
  EXPECT_EQ(str(g, "llm.input_messages.0.message.role"), "tool");
  EXPECT_EQ(str(g, "llm.input_messages.0.message.content"), "42");
}

// The JSON text a convention builds reads back as exactly the text it holds, whatever bytes
// that text has (every ASCII control character, quotes, backslashes, multi-byte UTF-8), on the
// fast path and on the byte-by-byte one (a text too long for the worst-case check).
TEST_F(ConventionMapping, BuiltJsonReadsBackAsTheTextItHolds) {
  ContentRequest c;
  std::string text;
  for (int round = 0; round < 3; ++round) {
    for (int b = 1; b < 0x80; ++b) text += static_cast<char>(b);
    text += "\xc3\xa9 \xf0\x9f\x98\x80 plain run of ascii text 0123456789 \\\"";
  }
  for (const std::size_t repeat : {std::size_t{1}, MappedRequest::k_message_json_bytes / 6 / text.size() + 2}) {
    std::string prompt;
    for (std::size_t i = 0; i < repeat; ++i) prompt += text;
    c.r.prompt = prompt;  // not a message list: one user message holding it
    const std::string json = str(gen(c.r, {Convention::genai}), "gen_ai.input.messages");
    simdjson::dom::parser parser;
    simdjson::padded_string padded(json);
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(padded).get(doc), simdjson::SUCCESS) << repeat;
    std::string_view content;
    ASSERT_EQ(doc.at(0)["parts"].at(0)["content"].get(content), simdjson::SUCCESS);
    EXPECT_EQ(content, prompt) << repeat;
  }
}

TEST_F(ConventionMapping, TextBeyondTheBuffersIsCutValidAndFlagged) {
  ContentRequest c;
  // One message longer than the buffers, with 2-byte characters so a cut could split one.
  std::string big = R"([{"role":"user","content":")";
  for (std::size_t i = 0; i < MappedRequest::k_message_json_bytes; ++i) big += "\xc3\xa9";
  big += R"("}])";
  c.r.prompt = big;
  auto g = gen(c.r, {Convention::genai, Convention::openinference});
  EXPECT_NE(out->issues() & k_convention_text_cut, 0u);
  const std::string input = str(g, "gen_ai.input.messages");
  EXPECT_LE(input.size(), MappedRequest::k_message_json_bytes);
  EXPECT_GT(input.size(), MappedRequest::k_message_json_bytes - 64);
  EXPECT_TRUE(valid_json(input));
  const std::string text = str(g, "llm.input_messages.0.message.content");
  EXPECT_EQ(text.size() % 2, 0u);  // whole code points only
  // More messages than listed one by one: the first k_max_messages, flagged.
  std::string many = "[";
  for (std::size_t i = 0; i < MappedRequest::k_max_messages + 3; ++i) {
    if (i != 0) many += ",";
    many += R"({"role":"user","content":"m"})";
  }
  many += "]";
  c.r.prompt = many;
  g = gen(c.r, {Convention::genai, Convention::openinference});
  EXPECT_NE(out->issues() & k_convention_text_cut, 0u);
  EXPECT_NE(find(g, "llm.input_messages.31.message.content"), nullptr);
  EXPECT_EQ(find(g, "llm.input_messages.32.message.content"), nullptr);
  EXPECT_TRUE(valid_json(str(g, "gen_ai.input.messages")));
  // Metadata JSON beyond its buffer: whole entries only, valid, flagged.
  std::vector<std::string> values(20, std::string(1000, 'v'));
  std::vector<MetadataEntry> meta;
  std::vector<std::string> keys;
  for (int i = 0; i < 20; ++i) keys.push_back(std::string("k").append(std::to_string(i)));  // GCC 12 -Wrestrict false positive on "k" + ...
  for (int i = 0; i < 20; ++i) meta.push_back({keys[static_cast<std::size_t>(i)], AttributeValue::string(values[static_cast<std::size_t>(i)])});
  c.r.metadata = meta;
  c.r.prompt = "p";
  g = gen(c.r, {Convention::openinference});
  EXPECT_NE(out->issues() & k_convention_text_cut, 0u);
  EXPECT_TRUE(valid_json(str(g, "metadata")));
}

TEST_F(ConventionMapping, MapsWithoutAllocatingForEverySet) {
  ContentRequest c;
  for (unsigned bits = 1; bits < (1u << k_convention_count); ++bits) (void)map(c.r, ConventionSet::from_bits(static_cast<std::uint8_t>(bits)));
  test::AllocationScope scope;
  for (int round = 0; round < 3; ++round)
    for (unsigned bits = 1; bits < (1u << k_convention_count); ++bits) (void)map(c.r, ConventionSet::from_bits(static_cast<std::uint8_t>(bits)));
  EXPECT_EQ(scope.count(), 0u);
}

// --- golden files ------------------------------------------------------------------------------

struct Case {
  const char* file;
  ConventionSet set;
};
const Case k_cases[] = {{"openrouter", {Convention::openrouter}},
                        {"genai", {Convention::genai}},
                        {"openinference", {Convention::openinference}},
                        {"langfuse", {Convention::langfuse}},
                        {"langsmith", {Convention::langsmith}},
                        {"all", ConventionSet::all()}};

TEST_F(ConventionMapping, ReferenceExampleMatchesGoldenFilePerConvention) {
  const test::ReferenceExample example;
  for (const Case& k : k_cases) {
    const std::string body = encode(map(example.request(), k.set), false);
    EXPECT_TRUE(valid_json(body));
    EXPECT_EQ(body, golden(std::string(k.file) + "_reference.json", body)) << k.file;
  }
}

TEST_F(ConventionMapping, ContentRequestMatchesGoldenFilePerConvention) {
  ContentRequest c;
  for (const Case& k : k_cases) {
    const std::string body = encode(map(c.r, k.set), false);
    EXPECT_TRUE(valid_json(body));
    EXPECT_EQ(body, golden(std::string(k.file) + "_content.json", body)) << k.file;
  }
}

}  // namespace
}  // namespace tracecast
