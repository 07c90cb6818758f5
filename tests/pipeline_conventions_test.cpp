// Attribute conventions through the Pipeline (issue 11): destinations with different
// convention sets receive their own vocabulary from one submit, privacy removes every
// convention's content, a request is mapped once per destination whatever the size of its
// set, and the config file's "conventions" key.
#include "egress_util.h"
#include "pipeline_util.h"
#include "tracecast/pipeline.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sink_process.h"

namespace tracecast {
namespace {

using namespace std::chrono_literals;
using test::SinkProcess;
using Clock = std::chrono::steady_clock;

PipelineConfig test_config() { return test::quick_pipeline_config(); }

PipelineDestination to_sink(const SinkProcess& sink, std::string name, ConventionSet conventions) {
  PipelineDestination d;
  d.transport.kind = DestinationKind::otlp_http;
  d.transport.name = std::move(name);
  d.transport.endpoint = sink.url();
  d.transport.compression = "none";
  d.transport.timeout = 2000ms;
  d.conventions = conventions;
  return d;
}

// The attribute keys of each distinct span the sink wrote (--spans-out), by span name. A
// retried batch may arrive twice: distinct lines only.
std::vector<std::pair<std::string, std::set<std::string>>> span_keys(const std::string& path) {
  std::set<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.insert(line);
  std::vector<std::pair<std::string, std::set<std::string>>> out;
  simdjson::dom::parser parser;
  for (const std::string& line : lines) {
    simdjson::dom::element e = parser.parse(line);
    std::set<std::string> keys;
    for (auto [k, v] : e["attributes"].get_object()) keys.insert(std::string(k));
    out.emplace_back(std::string(e["name"].get_string().value()), std::move(keys));
  }
  return out;
}

const DestinationCounters& dest(const PipelineStats& s, std::uint32_t id) {
  for (const auto& d : s.destinations)
    if (d.id == id) return d;
  ADD_FAILURE() << "no destination " << id;
  return s.total;
}

TEST(PipelineConventions, EachDestinationGetsItsOwnVocabularyFromOneSubmitMappedOncePerDestination) {
  SinkProcess plain({"--spans-out", std::string(SinkProcess::k_temp_spans_out)});
  SinkProcess phoenix({"--spans-out", std::string(SinkProcess::k_temp_spans_out)});
  SinkProcess every({"--spans-out", std::string(SinkProcess::k_temp_spans_out)});
  Pipeline p(test_config());
  const std::uint32_t plain_id = p.add_destination("acct_1", to_sink(plain, "plain", k_default_conventions)).id;
  const std::uint32_t phoenix_id =
      p.add_destination("acct_1", to_sink(phoenix, "phoenix", {Convention::openinference, Convention::langfuse})).id;
  PipelineDestination all = to_sink(every, "every", ConventionSet::all());
  all.privacy_mode = true;
  const std::uint32_t every_id = p.add_destination("acct_1", all).id;
  ASSERT_NE(plain_id, 0u);
  ASSERT_NE(phoenix_id, 0u);
  ASSERT_NE(every_id, 0u);

  const MetadataEntry meta[] = {{"environment", AttributeValue::string("production")}};
  constexpr int k_requests = 40;
  for (int i = 0; i < k_requests; ++i) {
    const std::string id = "gen-" + std::to_string(i);  // r holds a view of it
    LlmRequest r;
    r.account = "acct_1";
    r.request_id = id;
    r.provider = "openai";
    r.requested_model = "openai/gpt-4o";
    r.input_tokens = 10;
    r.output_tokens = 5;
    r.user = "u";
    r.session_id = "s";
    r.metadata = meta;
    r.prompt = R"([{"role":"user","content":"SECRET-PROMPT"}])";
    r.completion = "SECRET-COMPLETION";
    r.start_unix_nano = 1'700'000'000'000'000'000ULL + static_cast<std::uint64_t>(i);
    r.end_unix_nano = r.start_unix_nano + 1000;
    while (p.submit(r) != submit_result::ok) std::this_thread::sleep_for(1ms);
  }
  ASSERT_TRUE(p.flush(Clock::now() + 20s).complete);
  const DrainResult done = p.shutdown(Clock::now() + 5s);
  for (std::uint32_t id : {plain_id, phoenix_id, every_id}) {
    EXPECT_EQ(dest(done.stats, id).delivered, static_cast<std::uint64_t>(k_requests)) << id;
    EXPECT_TRUE(dest(done.stats, id).balanced()) << id;
  }
  // One mapping per request per destination, with its whole set: not once per convention
  // (the third destination has five).
  EXPECT_EQ(done.stats.mappings, 3u * k_requests);
  plain.stop();
  phoenix.stop();
  every.stop();

  const auto plain_spans = span_keys(plain.spans_out_path());
  const auto phoenix_spans = span_keys(phoenix.spans_out_path());
  const auto every_spans = span_keys(every.spans_out_path());
  ASSERT_EQ(plain_spans.size(), static_cast<std::size_t>(k_requests));
  ASSERT_EQ(phoenix_spans.size(), static_cast<std::size_t>(k_requests));
  ASSERT_EQ(every_spans.size(), static_cast<std::size_t>(k_requests));
  for (const auto& [name, keys] : plain_spans) {
    EXPECT_TRUE(keys.count("gen_ai.system") && keys.count("trace.metadata.environment") && keys.count("gen_ai.prompt"));
    EXPECT_FALSE(keys.count("openinference.span.kind") || keys.count("langfuse.observation.type"));
  }
  for (const auto& [name, keys] : phoenix_spans) {
    EXPECT_TRUE(keys.count("openinference.span.kind") && keys.count("llm.model_name") && keys.count("input.value") &&
                keys.count("llm.input_messages.0.message.content") && keys.count("langfuse.observation.type") &&
                keys.count("langfuse.observation.input") && keys.count("langfuse.trace.metadata.environment"));
    EXPECT_FALSE(keys.count("gen_ai.system") || keys.count("trace.metadata.environment") || keys.count("gen_ai.prompt"));
  }
  const std::set<std::string> content = {"gen_ai.prompt", "gen_ai.completion", "gen_ai.input.messages",
                                         "gen_ai.output.messages", "input.value", "output.value",
                                         "llm.input_messages.0.message.content", "llm.output_messages.0.message.content",
                                         "langfuse.observation.input", "langfuse.observation.output"};
  for (const auto& [name, keys] : every_spans) {
    EXPECT_TRUE(keys.count("gen_ai.system") && keys.count("gen_ai.provider.name") && keys.count("openinference.span.kind") &&
                keys.count("langfuse.observation.type") && keys.count("langsmith.span.kind"));
    for (const std::string& c : content) EXPECT_EQ(keys.count(c), 0u) << c;
  }
  const std::string every_text = test::read_file(every.spans_out_path());
  EXPECT_EQ(every_text.find("SECRET-"), std::string::npos);
  EXPECT_NE(test::read_file(phoenix.spans_out_path()).find("SECRET-PROMPT"), std::string::npos);
}

// A destination that names no convention speaks its preset's (the backend's own vocabulary);
// limits and resource attributes the backend needs are filled the same way, and whatever the
// destination sets itself wins.
TEST(PipelineConventions, WhatADestinationLeavesUnsetComesFromItsPreset) {
  PipelineDestination d;
  d.transport.kind = DestinationKind::otlp_http;
  d.transport.endpoint = "http://127.0.0.1:9/v1/traces";
  EXPECT_TRUE(d.conventions.empty());
  EXPECT_EQ(with_preset_defaults(d).conventions, k_default_conventions);  // openrouter

  PipelineDestination lf;
  lf.transport.kind = DestinationKind::langfuse;
  lf.transport.fields = {{"public_key", "pk-lf-1"}, {"secret_key", "sk-lf-2"}, {"region", "eu"}};
  ASSERT_FALSE(has_errors(validate(with_preset_defaults(lf).transport)));
  EXPECT_EQ(with_preset_defaults(lf).conventions, ConventionSet{Convention::langfuse});
  lf.conventions = {Convention::openrouter};  // chosen: kept
  EXPECT_EQ(with_preset_defaults(lf).conventions, ConventionSet{Convention::openrouter});

  PipelineDestination nr;
  nr.transport.kind = DestinationKind::new_relic;
  nr.transport.api_key = "0123456789abcdef0123456789abcdef0123NRAL";
  const PipelineDestination nr_effective = with_preset_defaults(nr);
  EXPECT_EQ(nr_effective.max_request_bytes, 1000000u);
  EXPECT_EQ(nr_effective.max_attribute_value_bytes, 4095u);
  EXPECT_TRUE(nr_effective.validate().empty());
  nr.max_attribute_value_bytes = 2048;  // the destination's own limit wins
  EXPECT_EQ(with_preset_defaults(nr).max_attribute_value_bytes, 2048u);

  PipelineDestination weave;
  weave.transport.kind = DestinationKind::wandb_weave;
  weave.transport.api_key = "wandb-key-0123456789";
  weave.transport.fields = {{"entity", "team-a"}, {"project", "gateway"}};
  weave.resource_attributes = {{"wandb.project", "mine"}};
  const PipelineDestination w = with_preset_defaults(weave);
  EXPECT_EQ(w.transport.protocol, "http/protobuf");  // Weave takes protobuf only
  ASSERT_EQ(w.resource_attributes.size(), 2u);
  EXPECT_EQ(w.resource_attributes[0], (std::pair<std::string, std::string>{"wandb.project", "mine"}));
  EXPECT_EQ(w.resource_attributes[1], (std::pair<std::string, std::string>{"wandb.entity", "team-a"}));

  // The pipeline applies the same: an added Langfuse destination is accepted as it is.
  Pipeline p(test_config());
  EXPECT_TRUE(p.add_destination("a", lf).ok());
}

TEST(ConfigFromJsonConventions, ReadsTheListAndNamesAnUnknownConvention) {
  const ConfigLoadResult r = config_from_json(
      R"({"destinations": [{"account": "", "kind": "otlp_http", "endpoint": "https://otel.example.com/v1/traces",
                             "conventions": ["openrouter", "openinference", "langfuse"]},
                            {"account": "", "kind": "otlp_http", "endpoint": "https://otel.example.com/v1/traces"}]})",
      "config.json");
  ASSERT_TRUE(r.error.empty()) << r.error;
  ASSERT_EQ(r.destinations.size(), 2u);
  EXPECT_EQ(r.destinations[0].second.conventions,
            (ConventionSet{Convention::openrouter, Convention::openinference, Convention::langfuse}));
  EXPECT_TRUE(r.destinations[1].second.conventions.empty());  // unset: the preset's (openrouter here)

  const auto error = [](std::string_view conventions) {
    return config_from_json(R"({"destinations": [{"kind": "otlp_http", "endpoint": "https://otel.example.com/v1/traces",
                                                   "conventions": )" + std::string(conventions) + "}]}",
                            "config.json")
        .error;
  };
  EXPECT_EQ(error(R"(["genai", "phoenix"])"),
            "config.json: destinations[0].conventions[1]: unknown convention 'phoenix': expected one of openrouter, "
            "genai, openinference, langfuse, langsmith");
  EXPECT_EQ(error("[]"),
            "config.json: destinations[0].conventions: must name at least one of openrouter, genai, openinference, "
            "langfuse, langsmith");
  EXPECT_NE(error(R"("genai")").find("destinations[0].conventions: expected an array of strings"), std::string::npos);
}

}  // namespace
}  // namespace tracecast
