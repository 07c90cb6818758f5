#include "tracecast/mapping.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "alloc_counter.h"
#include "canonical_request.h"

namespace tracecast {
namespace {

const Attribute* find(std::span<const Attribute> attrs, std::string_view key) {
  const Attribute* hit = nullptr;
  for (const Attribute& a : attrs) {
    if (a.key == key) {
      EXPECT_EQ(hit, nullptr) << "duplicate key " << key;
      hit = &a;
    }
  }
  return hit;
}

std::optional<std::string> str_attr(std::span<const Attribute> attrs, std::string_view key) {
  const Attribute* a = find(attrs, key);
  if (a == nullptr) return std::nullopt;
  EXPECT_EQ(a->value.type(), ValueType::string) << key;
  return std::string(a->value.as_string());
}

std::optional<std::int64_t> int_attr(std::span<const Attribute> attrs, std::string_view key) {
  const Attribute* a = find(attrs, key);
  if (a == nullptr) return std::nullopt;
  EXPECT_EQ(a->value.type(), ValueType::int64) << key;
  return a->value.as_int64();
}

std::string hex(const TraceId& id) {
  char h[32];
  id.to_hex(h);
  return {h, 32};
}
std::string hex(const SpanId& id) {
  char h[16];
  id.to_hex(h);
  return {h, 16};
}

using Canonical = test::CanonicalRequest;  // WORKLOAD.md's canonical request, fixed values

class MappingTest : public ::testing::Test {
 protected:
  MappingConfig config;
  IdGenerator ids{42};
  std::unique_ptr<MappedRequest> out = std::make_unique<MappedRequest>();

  const MappedRequest& map(const LlmRequest& r) {
    map_request(r, config, ids, *out);
    return *out;
  }
  std::span<const Attribute> gen_attrs() const { return out->spans().back().attributes; }
};

// --- Resource level (reference: "Trace Attributes / Resource Level") -----------------------

TEST_F(MappingTest, ResourceCarriesServiceNameVersionAndRequestId) {
  Canonical c;
  const auto& m = map(c.r);
  const auto res = m.resource().attributes;
  EXPECT_EQ(str_attr(res, "service.name"), "openrouter");
  EXPECT_EQ(str_attr(res, "service.version"), "1.0.0");
  EXPECT_EQ(str_attr(res, "openrouter.trace.id"), "gen-1732650000-abcdefghij");
  EXPECT_EQ(res.size(), 3u);
  EXPECT_EQ(m.scope().name, "tracecast");
}

TEST_F(MappingTest, ServiceNameVersionAndExtraResourceAttributesAreConfigurable) {
  config.service_name = "gateway-eu";
  config.service_version = "2.3.4";
  config.extra_resource_attributes = {{"deployment.environment", "prod"}};
  Canonical c;
  const auto res = map(c.r).resource().attributes;
  EXPECT_EQ(str_attr(res, "service.name"), "gateway-eu");
  EXPECT_EQ(str_attr(res, "service.version"), "2.3.4");
  EXPECT_EQ(str_attr(res, "deployment.environment"), "prod");
}

TEST_F(MappingTest, MissingRequestIdFallsBackToTheTraceIdHex) {
  Canonical c;
  c.r.request_id = "";
  const auto& m = map(c.r);
  EXPECT_EQ(str_attr(m.resource().attributes, "openrouter.trace.id"), hex(m.trace_id()));
}

// --- Span level (reference: "Trace Attributes / Span Level") -------------------------------

TEST_F(MappingTest, GenerationSpanCarriesEveryReferenceAttribute) {
  Canonical c;
  const auto& m = map(c.r);
  ASSERT_EQ(m.spans().size(), 1u);
  const auto a = gen_attrs();
  EXPECT_EQ(str_attr(a, "gen_ai.operation.name"), "chat");
  EXPECT_EQ(str_attr(a, "gen_ai.system"), "openai");
  EXPECT_EQ(str_attr(a, "gen_ai.request.model"), "openai/gpt-4o");
  EXPECT_EQ(str_attr(a, "gen_ai.response.model"), "openai/gpt-4o-2024-08-06");
  EXPECT_EQ(int_attr(a, "gen_ai.usage.input_tokens"), 1200);
  EXPECT_EQ(int_attr(a, "gen_ai.usage.output_tokens"), 350);
  EXPECT_EQ(str_attr(a, "gen_ai.response.finish_reason"), "stop");
  const Attribute* cost = find(a, "gen_ai.usage.cost");
  ASSERT_NE(cost, nullptr);
  EXPECT_EQ(cost->value.type(), ValueType::float64);
  EXPECT_DOUBLE_EQ(cost->value.as_double(), 0.0042);
  EXPECT_EQ(str_attr(a, "user.id"), "user_12345");
  EXPECT_EQ(str_attr(a, "session.id"), "session_abc");
  EXPECT_EQ(str_attr(a, "trace.metadata.environment"), "production");
  EXPECT_EQ(str_attr(a, "trace.metadata.trace_name"), "Analysis Pipeline");
  // The canonical request is exactly the workload's 12 attributes.
  EXPECT_EQ(a.size(), 12u);
  const SpanView& s = m.spans()[0];
  EXPECT_EQ(s.kind, SpanKind::client);
  EXPECT_EQ(s.status_code, StatusCode::unset);
  EXPECT_EQ(s.start_unix_nano, c.r.start_unix_nano);
  EXPECT_EQ(s.end_unix_nano, c.r.end_unix_nano);
  EXPECT_TRUE(s.trace_id.valid());
  EXPECT_TRUE(s.span_id.valid());
  EXPECT_FALSE(s.parent_span_id.valid());
}

TEST_F(MappingTest, UnknownAndEmptyValuesAreLeftOut) {
  LlmRequest r;
  r.account = "a";
  r.requested_model = "m";
  const auto& m = map(r);
  const auto a = gen_attrs();
  EXPECT_EQ(str_attr(a, "gen_ai.operation.name"), "chat");
  EXPECT_EQ(str_attr(a, "gen_ai.request.model"), "m");
  for (auto key : {"gen_ai.system", "gen_ai.response.model", "gen_ai.usage.input_tokens",
                   "gen_ai.usage.output_tokens", "gen_ai.response.finish_reason", "gen_ai.usage.cost",
                   "user.id", "session.id", "gen_ai.prompt", "gen_ai.completion",
                   "gen_ai.request.temperature", "http.response.status_code"}) {
    EXPECT_EQ(find(a, key), nullptr) << key;
  }
  EXPECT_EQ(m.spans()[0].name, "chat m");
}

TEST_F(MappingTest, ZeroTokensAndZeroCostAreKept) {
  Canonical c;
  c.r.input_tokens = 0;
  c.r.output_tokens = 0;
  c.r.cost = 0.0;
  map(c.r);
  EXPECT_EQ(int_attr(gen_attrs(), "gen_ai.usage.input_tokens"), 0);
  EXPECT_EQ(int_attr(gen_attrs(), "gen_ai.usage.output_tokens"), 0);
  ASSERT_NE(find(gen_attrs(), "gen_ai.usage.cost"), nullptr);
}

TEST_F(MappingTest, RequestParametersBecomeAttributes) {
  Canonical c;
  c.r.temperature = 0.7;
  c.r.top_p = 0.9;
  c.r.max_tokens = 512;
  c.r.stream = true;
  c.r.http_status = 200;
  c.r.response_id = "chatcmpl-1";
  c.r.first_token_unix_nano = c.r.start_unix_nano + 250'000'000;
  map(c.r);
  const auto a = gen_attrs();
  EXPECT_DOUBLE_EQ(find(a, "gen_ai.request.temperature")->value.as_double(), 0.7);
  EXPECT_DOUBLE_EQ(find(a, "gen_ai.request.top_p")->value.as_double(), 0.9);
  EXPECT_EQ(int_attr(a, "gen_ai.request.max_tokens"), 512);
  EXPECT_TRUE(find(a, "gen_ai.request.stream")->value.as_bool());
  EXPECT_EQ(int_attr(a, "http.response.status_code"), 200);
  EXPECT_EQ(str_attr(a, "gen_ai.response.id"), "chatcmpl-1");
  EXPECT_DOUBLE_EQ(find(a, "gen_ai.server.time_to_first_token")->value.as_double(), 0.25);
}

TEST_F(MappingTest, CurrentGenAiNamesOnlyBehindTheSwitch) {
  Canonical c;
  map(c.r);
  EXPECT_EQ(find(gen_attrs(), "gen_ai.provider.name"), nullptr);
  EXPECT_EQ(find(gen_attrs(), "gen_ai.response.finish_reasons"), nullptr);
  config.emit_current_genai_names = true;
  map(c.r);
  EXPECT_EQ(str_attr(gen_attrs(), "gen_ai.provider.name"), "openai");
  EXPECT_EQ(str_attr(gen_attrs(), "gen_ai.system"), "openai");
  const Attribute* reasons = find(gen_attrs(), "gen_ai.response.finish_reasons");
  ASSERT_NE(reasons, nullptr);
  ASSERT_EQ(reasons->value.type(), ValueType::string_array);
  ASSERT_EQ(reasons->value.as_strings().size(), 1u);
  EXPECT_EQ(reasons->value.as_strings()[0], "stop");
}

TEST_F(MappingTest, FailedRequestHasErrorStatusWithItsMessage) {
  Canonical c;
  c.r.error = true;
  c.r.error_message = "upstream 502: provider unavailable";
  const auto& m = map(c.r);
  EXPECT_EQ(m.spans().back().status_code, StatusCode::error);
  EXPECT_EQ(m.spans().back().status_message, "upstream 502: provider unavailable");
}

// --- Custom metadata (reference: "Custom Metadata") ----------------------------------------

TEST_F(MappingTest, EveryMetadataKeyBecomesTraceMetadataAttributeWithItsType) {
  const std::string_view tags[] = {"a", "b"};
  MetadataEntry meta[] = {{"environment", AttributeValue::string("staging")},
                          {"attempt", AttributeValue::int64(3)},
                          {"score", AttributeValue::float64(0.5)},
                          {"beta", AttributeValue::boolean(true)},
                          {"tags", AttributeValue::strings(tags)},
                          {"nested", AttributeValue::string(R"({"k":[1,2]})")},
                          {"empty", AttributeValue::string("")}};
  Canonical c;
  c.r.metadata = meta;
  map(c.r);
  const auto a = gen_attrs();
  EXPECT_EQ(str_attr(a, "trace.metadata.environment"), "staging");
  EXPECT_EQ(int_attr(a, "trace.metadata.attempt"), 3);
  EXPECT_DOUBLE_EQ(find(a, "trace.metadata.score")->value.as_double(), 0.5);
  EXPECT_TRUE(find(a, "trace.metadata.beta")->value.as_bool());
  EXPECT_EQ(find(a, "trace.metadata.tags")->value.as_strings().size(), 2u);
  EXPECT_EQ(str_attr(a, "trace.metadata.nested"), R"({"k":[1,2]})");
  EXPECT_EQ(str_attr(a, "trace.metadata.empty"), "");
}

TEST_F(MappingTest, EmptyKeysAreLeftOutAndFlagged) {
  MetadataEntry meta[] = {{"", AttributeValue::string("x")}, {"k", AttributeValue::string("v")}};
  Canonical c;
  c.r.metadata = meta;
  const auto& m = map(c.r);
  EXPECT_TRUE(m.issues() & k_empty_metadata_key);
  EXPECT_EQ(find(gen_attrs(), "trace.metadata."), nullptr);
  EXPECT_EQ(str_attr(gen_attrs(), "trace.metadata.k"), "v");
}

TEST_F(MappingTest, OverLongKeysAreCutAtACodePointBoundary) {
  std::string key(127, 'k');
  key += "\xC3\xA9";  // é straddles byte 128
  MetadataEntry meta[] = {{key, AttributeValue::string("v")}};
  Canonical c;
  c.r.metadata = meta;
  map(c.r);
  EXPECT_EQ(str_attr(gen_attrs(), "trace.metadata." + std::string(127, 'k')), "v");
}

TEST_F(MappingTest, NonUtf8ValuesPassThroughUnchangedForTheEncoderToRepair) {
  MetadataEntry meta[] = {{"raw", AttributeValue::string("ok\xFF\xFE")}};
  Canonical c;
  c.r.metadata = meta;
  c.r.user = "u\xC0\xAF";
  map(c.r);
  EXPECT_EQ(str_attr(gen_attrs(), "trace.metadata.raw"), "ok\xFF\xFE");
  EXPECT_EQ(str_attr(gen_attrs(), "user.id"), "u\xC0\xAF");
}

TEST_F(MappingTest, MoreThanTheMaximumMetadataEntriesIsFlagged) {
  std::vector<std::string> keys;
  std::vector<MetadataEntry> meta;
  for (std::size_t i = 0; i < MappedRequest::k_max_metadata + 5; ++i) keys.push_back(std::string("k").append(std::to_string(i)));  // not "k" + ...: GCC 12 -O3 -Wrestrict false positive (PR 105329)
  for (const auto& k : keys) meta.push_back({k, AttributeValue::int64(1)});
  Canonical c;
  c.r.metadata = meta;
  const auto& m = map(c.r);
  EXPECT_TRUE(m.issues() & k_too_many_metadata);
  EXPECT_NE(find(gen_attrs(), "trace.metadata.k63"), nullptr);
  EXPECT_EQ(find(gen_attrs(), "trace.metadata.k64"), nullptr);
}

// --- Special keys -------------------------------------------------------------------------

TEST_F(MappingTest, TraceIdGroupsRequestsOfOneAccount) {
  MetadataEntry meta[] = {{"trace_id", AttributeValue::string("monitoring_001")}};
  Canonical a, b, other;
  a.r.metadata = meta;
  b.r.metadata = meta;
  other.r.metadata = meta;
  other.r.account = "acct_2";
  const TraceId ta = map(a.r).trace_id();
  const SpanId sa = out->spans().back().span_id;
  const TraceId tb = map(b.r).trace_id();
  const SpanId sb = out->spans().back().span_id;
  const TraceId to = map(other.r).trace_id();
  EXPECT_EQ(ta, tb);
  EXPECT_NE(sa, sb);  // two generations in one trace
  EXPECT_NE(ta, to);  // another account's "monitoring_001" is another trace
  EXPECT_EQ(ta, derive_trace_id("acct_1", "monitoring_001"));
  EXPECT_EQ(str_attr(gen_attrs(), "trace.metadata.trace_id"), "monitoring_001");
}

TEST_F(MappingTest, IntegerTraceIdGroupsAsItsDecimalText) {
  MetadataEntry as_int[] = {{"trace_id", AttributeValue::int64(12345)}};
  MetadataEntry as_text[] = {{"trace_id", AttributeValue::string("12345")}};
  MetadataEntry negative[] = {{"trace_id", AttributeValue::int64(-7)}};
  Canonical a, b, n;
  a.r.metadata = as_int;
  b.r.metadata = as_text;
  n.r.metadata = negative;
  const auto& m = map(a.r);
  EXPECT_EQ(m.issues() & k_non_string_special_key, 0u);
  const TraceId ta = m.trace_id();
  EXPECT_EQ(ta, derive_trace_id("acct_1", "12345"));
  EXPECT_EQ(map(a.r).trace_id(), ta);  // every request with it: one trace
  EXPECT_EQ(map(b.r).trace_id(), ta);
  EXPECT_EQ(map(n.r).trace_id(), derive_trace_id("acct_1", "-7"));
  EXPECT_EQ(plan_request(a.r, 1).trace_id, ta);
  // A double is not an id: its own trace, flagged as before.
  MetadataEntry as_double[] = {{"trace_id", AttributeValue::float64(1.5)}};
  Canonical d;
  d.r.metadata = as_double;
  EXPECT_NE(map(d.r).issues() & k_non_string_special_key, 0u);
}

TEST_F(MappingTest, ThirtyTwoHexDigitTraceIdIsUsedAsIs) {
  MetadataEntry meta[] = {{"trace_id", AttributeValue::string("4BF92F3577B34DA6A3CE929D0E0E4736")}};
  Canonical c;
  c.r.metadata = meta;
  EXPECT_EQ(hex(map(c.r).trace_id()), "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST_F(MappingTest, AllZeroOrMalformedHexTraceIdIsHashedNotUsed) {
  const std::string zeros(32, '0');
  MetadataEntry meta[] = {{"trace_id", AttributeValue::string(zeros)}};
  Canonical c;
  c.r.metadata = meta;
  EXPECT_TRUE(map(c.r).trace_id().valid());
  EXPECT_EQ(map(c.r).trace_id(), derive_trace_id("acct_1", zeros));
}

TEST_F(MappingTest, WithoutTraceIdEveryRequestIsItsOwnTrace) {
  Canonical a;
  const TraceId t1 = map(a.r).trace_id();
  const TraceId t2 = map(a.r).trace_id();
  EXPECT_NE(t1, t2);
}

TEST_F(MappingTest, TraceNameAloneNamesTheOneSpan) {
  Canonical c;  // canonical metadata has trace_name only
  const auto& m = map(c.r);
  ASSERT_EQ(m.spans().size(), 1u);
  EXPECT_EQ(m.spans()[0].name, "Analysis Pipeline");
}

TEST_F(MappingTest, WithoutNamesTheSpanIsOperationAndModel) {
  Canonical c;
  c.r.metadata = {};
  EXPECT_EQ(map(c.r).spans()[0].name, "chat openai/gpt-4o");
}

TEST_F(MappingTest, ReferenceExampleBecomesRootAndGenerationSpans) {
  // The reference's example request: trace_id, trace_name, generation_name, environment.
  MetadataEntry meta[] = {{"trace_id", AttributeValue::string("monitoring_001")},
                          {"trace_name", AttributeValue::string("Analysis Pipeline")},
                          {"generation_name", AttributeValue::string("Detection")},
                          {"environment", AttributeValue::string("production")}};
  Canonical c;
  c.r.metadata = meta;
  const auto& m = map(c.r);
  ASSERT_EQ(m.spans().size(), 2u);
  const SpanView& root = m.spans()[0];
  const SpanView& gen = m.spans()[1];
  EXPECT_EQ(root.name, "Analysis Pipeline");
  EXPECT_EQ(root.kind, SpanKind::internal);
  EXPECT_FALSE(root.parent_span_id.valid());
  EXPECT_TRUE(root.attributes.empty());
  EXPECT_EQ(gen.name, "Detection");
  EXPECT_EQ(gen.parent_span_id, root.span_id);
  EXPECT_EQ(gen.trace_id, root.trace_id);
  EXPECT_EQ(root.trace_id, derive_trace_id("acct_1", "monitoring_001"));
  EXPECT_EQ(str_attr(gen.attributes, "trace.metadata.environment"), "production");
  EXPECT_EQ(str_attr(gen.attributes, "user.id"), "user_12345");
  EXPECT_EQ(root.start_unix_nano, gen.start_unix_nano);
  EXPECT_EQ(root.end_unix_nano, gen.end_unix_nano);
}

TEST_F(MappingTest, SpanNameAddsAnIntermediateSpan) {
  MetadataEntry meta[] = {{"trace_name", AttributeValue::string("Pipeline")},
                          {"span_name", AttributeValue::string("Retrieval")},
                          {"generation_name", AttributeValue::string("Rerank")}};
  Canonical c;
  c.r.metadata = meta;
  const auto& m = map(c.r);
  ASSERT_EQ(m.spans().size(), 3u);
  EXPECT_EQ(m.spans()[0].name, "Pipeline");
  EXPECT_EQ(m.spans()[1].name, "Retrieval");
  EXPECT_EQ(m.spans()[2].name, "Rerank");
  EXPECT_EQ(m.spans()[1].parent_span_id, m.spans()[0].span_id);
  EXPECT_EQ(m.spans()[2].parent_span_id, m.spans()[1].span_id);
}

TEST_F(MappingTest, SpanNameWithoutTraceNameIsTheTopSpan) {
  MetadataEntry meta[] = {{"span_name", AttributeValue::string("Retrieval")}};
  Canonical c;
  c.r.metadata = meta;
  const auto& m = map(c.r);
  ASSERT_EQ(m.spans().size(), 2u);
  EXPECT_EQ(m.spans()[0].name, "Retrieval");
  EXPECT_FALSE(m.spans()[0].parent_span_id.valid());
  EXPECT_EQ(m.spans()[1].name, "chat openai/gpt-4o");
}

TEST_F(MappingTest, GroupedRequestsShareTheirRootSpan) {
  MetadataEntry meta[] = {{"trace_id", AttributeValue::string("run-7")},
                          {"trace_name", AttributeValue::string("Agent")},
                          {"generation_name", AttributeValue::string("Step")}};
  Canonical a;
  a.r.metadata = meta;
  const SpanId root1 = map(a.r).spans()[0].span_id;
  const SpanId gen1 = out->spans()[1].span_id;
  const SpanId root2 = map(a.r).spans()[0].span_id;
  EXPECT_EQ(root1, root2);
  EXPECT_NE(gen1, out->spans()[1].span_id);
}

TEST_F(MappingTest, ParentSpanIdLinksTheTopSpanUnderAnExistingSpan) {
  MetadataEntry meta[] = {{"trace_id", AttributeValue::string("4bf92f3577b34da6a3ce929d0e0e4736")},
                          {"parent_span_id", AttributeValue::string("00F067AA0BA902B7")},
                          {"trace_name", AttributeValue::string("Outer")},
                          {"generation_name", AttributeValue::string("Inner")}};
  Canonical c;
  c.r.metadata = meta;
  const auto& m = map(c.r);
  ASSERT_EQ(m.spans().size(), 2u);
  EXPECT_EQ(hex(m.spans()[0].parent_span_id), "00f067aa0ba902b7");
  EXPECT_EQ(m.spans()[1].parent_span_id, m.spans()[0].span_id);
  EXPECT_EQ(m.issues(), 0u);
}

TEST_F(MappingTest, InvalidParentSpanIdIsIgnoredAndFlagged) {
  for (std::string bad : {"xyz", "", "00000000000000000", "0000000000000000"}) {
    MetadataEntry meta[] = {{"parent_span_id", AttributeValue::string(bad)}};
    Canonical c;
    c.r.metadata = meta;
    const auto& m = map(c.r);
    EXPECT_FALSE(m.spans()[0].parent_span_id.valid()) << bad;
    if (!bad.empty()) {
      EXPECT_TRUE(m.issues() & k_invalid_parent_span_id) << bad;
    }
    EXPECT_EQ(str_attr(gen_attrs(), "trace.metadata.parent_span_id"), bad);
  }
}

TEST_F(MappingTest, NonStringSpecialKeysAreFlaggedAndNotUsedAsNames) {
  MetadataEntry meta[] = {{"trace_name", AttributeValue::int64(5)}};
  Canonical c;
  c.r.metadata = meta;
  const auto& m = map(c.r);
  EXPECT_TRUE(m.issues() & k_non_string_special_key);
  EXPECT_EQ(m.spans()[0].name, "chat openai/gpt-4o");
  EXPECT_EQ(int_attr(gen_attrs(), "trace.metadata.trace_name"), 5);
}

TEST_F(MappingTest, EndBeforeStartIsClampedAndFlagged) {
  Canonical c;
  c.r.end_unix_nano = c.r.start_unix_nano - 1;
  const auto& m = map(c.r);
  EXPECT_TRUE(m.issues() & k_end_before_start);
  EXPECT_EQ(m.spans()[0].end_unix_nano, m.spans()[0].start_unix_nano);
}

TEST_F(MappingTest, OverLongModelNameIsCutInTheSpanName) {
  Canonical c;
  c.r.metadata = {};
  std::string model(400, 'm');
  c.r.requested_model = model;
  const auto& m = map(c.r);
  EXPECT_EQ(m.spans()[0].name.size(), 256u);
  EXPECT_EQ(m.spans()[0].name.substr(0, 5), "chat ");
}

// --- Privacy mode ---------------------------------------------------------------------------

TEST_F(MappingTest, PrivateSpansDropContentAndKeepEverythingElse) {
  Canonical c;
  c.r.prompt = R"([{"role":"user","content":"secret"}])";
  c.r.completion = "answer";
  const auto& m = map(c.r);
  const auto full = m.spans().back().attributes;
  const auto priv = m.private_spans().back().attributes;
  EXPECT_EQ(str_attr(full, "gen_ai.prompt"), c.r.prompt);
  EXPECT_EQ(str_attr(full, "gen_ai.completion"), "answer");
  EXPECT_EQ(find(priv, "gen_ai.prompt"), nullptr);
  EXPECT_EQ(find(priv, "gen_ai.completion"), nullptr);
  EXPECT_EQ(priv.size() + 2, full.size());
  for (auto key : {"gen_ai.usage.input_tokens", "gen_ai.usage.cost", "gen_ai.request.model",
                   "trace.metadata.environment", "user.id"}) {
    EXPECT_NE(find(priv, key), nullptr) << key;
  }
  EXPECT_EQ(m.private_spans().back().span_id, m.spans().back().span_id);
}

// --- Ids, sampling, allocation ---------------------------------------------------------------

TEST(IdGenerator, IsDeterministicPerSeedAndNeverZero) {
  IdGenerator a(7), b(7), c(8);
  for (int i = 0; i < 1000; ++i) {
    const SpanId x = a.next_span_id();
    EXPECT_EQ(x, b.next_span_id());
    EXPECT_TRUE(x.valid());
  }
  EXPECT_NE(a.next_trace_id(), c.next_trace_id());
}

TEST(SampleTrace, KeepsAllNoneOrTheRateAndIsStablePerTrace) {
  IdGenerator ids(1);
  int kept = 0;
  constexpr int n = 100000;
  for (int i = 0; i < n; ++i) {
    const TraceId t = ids.next_trace_id();
    EXPECT_TRUE(sample_trace(t, 1.0));
    EXPECT_FALSE(sample_trace(t, 0.0));
    const bool k = sample_trace(t, 0.25);
    EXPECT_EQ(k, sample_trace(t, 0.25));
    kept += k;
  }
  EXPECT_GT(kept, n / 4 - n / 50);
  EXPECT_LT(kept, n / 4 + n / 50);
  EXPECT_FALSE(sample_trace(ids.next_trace_id(), std::nan("")));
}

TEST_F(MappingTest, MappingDoesNotAllocate) {
  Canonical c;
  map(c.r);
  test::AllocationScope scope;
  for (int i = 0; i < 100; ++i) map(c.r);
  EXPECT_EQ(scope.count(), 0u);
}

}  // namespace
}  // namespace tracecast

namespace tracecast {
namespace {

// The router counts spans and samples by plan_request before any mapping: the plan must be
// exactly what map_request then produces with the same seed, for every tree shape.
TEST(MappingPlan, PlanMatchesWhatMapRequestProducesForEveryTreeShape) {
  const std::vector<std::vector<MetadataEntry>> shapes = {
      {},
      {{"trace_name", AttributeValue::string("Pipeline")}},
      {{"trace_name", AttributeValue::string("Pipeline")}, {"generation_name", AttributeValue::string("Gen")}},
      {{"trace_name", AttributeValue::string("Pipeline")}, {"span_name", AttributeValue::string("Step")}},
      {{"span_name", AttributeValue::string("Step")}},
      {{"trace_id", AttributeValue::string("grp_1")}, {"trace_name", AttributeValue::string("P")},
       {"span_name", AttributeValue::string("S")}, {"generation_name", AttributeValue::string("G")}},
      {{"trace_id", AttributeValue::string("4bf92f3577b34da6a3ce929d0e0e4736")}},
      {{"trace_name", AttributeValue::int64(7)}, {"generation_name", AttributeValue::string("G")}},
  };
  MappingConfig config;
  auto out = std::make_unique<MappedRequest>();
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    for (std::uint64_t seed : {1ull, 42ull, 0x9e3779b97f4a7c15ull}) {
      LlmRequest r;
      r.account = "acct_1";
      r.requested_model = "openai/gpt-4o";
      r.metadata = shapes[i];
      const RequestPlan plan = plan_request(r, seed);
      IdGenerator ids(seed);
      map_request(r, config, ids, *out);
      EXPECT_EQ(plan.span_count, out->spans().size()) << "shape " << i;
      EXPECT_EQ(plan.trace_id, out->trace_id()) << "shape " << i << " seed " << seed;
    }
  }
}

}  // namespace
}  // namespace tracecast

namespace tracecast {
namespace {

// --- What a strict receiver would refuse is never produced (issue 13, kind 2) ----------------

TEST_F(MappingTest, MetadataWithoutAValueIsLeftOutAndFlagged) {
  const MetadataEntry meta[] = {{"a", AttributeValue::string("x")},
                                {"ticket", AttributeValue{}},
                                {"b", AttributeValue::int64(2)}};
  Canonical c;
  c.r.metadata = meta;
  const auto& m = map(c.r);
  EXPECT_TRUE(m.issues() & k_empty_metadata_value);
  EXPECT_EQ(find(gen_attrs(), "trace.metadata.ticket"), nullptr);
  EXPECT_EQ(str_attr(gen_attrs(), "trace.metadata.a"), "x");
  EXPECT_EQ(int_attr(gen_attrs(), "trace.metadata.b"), 2);
  for (const Attribute& a : gen_attrs()) EXPECT_NE(a.value.type(), ValueType::empty) << a.key;
}

TEST_F(MappingTest, ZeroTimesAreFilledAndFlaggedNeverWrittenAsZero) {
  const auto now = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                  std::chrono::system_clock::now().time_since_epoch())
                                                  .count());
  LlmRequest both;  // the struct's defaults: start and end 0
  both.requested_model = "m";
  auto m = &map(both);
  EXPECT_TRUE(m->issues() & k_time_filled);
  EXPECT_GE(m->spans()[0].start_unix_nano, now);
  EXPECT_EQ(m->spans()[0].end_unix_nano, m->spans()[0].start_unix_nano);

  LlmRequest only_end;
  only_end.end_unix_nano = 1'700'000'000'000'000'000;
  m = &map(only_end);
  EXPECT_TRUE(m->issues() & k_time_filled);
  EXPECT_EQ(m->spans()[0].start_unix_nano, only_end.end_unix_nano);
  EXPECT_EQ(m->spans()[0].end_unix_nano, only_end.end_unix_nano);

  LlmRequest only_start;
  only_start.start_unix_nano = 1'700'000'000'000'000'000;
  m = &map(only_start);
  EXPECT_TRUE(m->issues() & k_time_filled);
  EXPECT_EQ(m->spans()[0].end_unix_nano, only_start.start_unix_nano);

  // Filled at submit by the ring: the mapping reports it.
  LlmRequest filled;
  filled.start_unix_nano = filled.end_unix_nano = 5;
  filled.submit_flags = k_submit_start_filled;
  EXPECT_TRUE(map(filled).issues() & k_time_filled);
  Canonical c;
  EXPECT_FALSE(map(c.r).issues() & k_time_filled);
}

TEST_F(MappingTest, FinishReasonsGiveOneEntryPerChoice) {
  config.emit_current_genai_names = true;
  Canonical c;
  c.r.finish_reason = "stop";
  c.r.finish_reasons = "stop,length,tool_calls";
  map(c.r);
  EXPECT_EQ(str_attr(gen_attrs(), "gen_ai.response.finish_reason"), "stop");
  const Attribute* a = find(gen_attrs(), "gen_ai.response.finish_reasons");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->value.type(), ValueType::string_array);
  ASSERT_EQ(a->value.as_strings().size(), 3u);
  EXPECT_EQ(a->value.as_strings()[0], "stop");
  EXPECT_EQ(a->value.as_strings()[1], "length");
  EXPECT_EQ(a->value.as_strings()[2], "tool_calls");
  c.r.finish_reasons = {};  // one choice: finish_reason alone
  map(c.r);
  a = find(gen_attrs(), "gen_ai.response.finish_reasons");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->value.as_strings().size(), 1u);
  EXPECT_EQ(a->value.as_strings()[0], "stop");
}

TEST_F(MappingTest, TokenDetailsAndTheCutMarkerBecomeAttributes) {
  Canonical c;
  c.r.cache_read_input_tokens = 1024;
  c.r.cache_creation_input_tokens = 0;
  c.r.reasoning_output_tokens = 192;
  map(c.r);
  EXPECT_EQ(int_attr(gen_attrs(), "gen_ai.usage.cache_read.input_tokens"), 1024);
  EXPECT_EQ(int_attr(gen_attrs(), "gen_ai.usage.cache_creation.input_tokens"), 0);
  EXPECT_EQ(int_attr(gen_attrs(), "gen_ai.usage.reasoning.output_tokens"), 192);
  EXPECT_EQ(find(gen_attrs(), "tracecast.truncated"), nullptr);
  c.r.submit_flags = k_submit_value_cut;
  map(c.r);
  const Attribute* cut = find(gen_attrs(), "tracecast.truncated");
  ASSERT_NE(cut, nullptr);
  EXPECT_EQ(cut->value.type(), ValueType::boolean);
  EXPECT_TRUE(cut->value.as_bool());
  Canonical plain;  // unknown details are left out
  map(plain.r);
  EXPECT_EQ(find(gen_attrs(), "gen_ai.usage.cache_read.input_tokens"), nullptr);
  EXPECT_EQ(find(gen_attrs(), "gen_ai.usage.reasoning.output_tokens"), nullptr);
}

}  // namespace
}  // namespace tracecast
