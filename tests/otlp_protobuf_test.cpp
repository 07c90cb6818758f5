// OtlpProtobufEncoder: every field decoded by libprotobuf (a schema written from the OTLP
// field numbers, tests/proto/otlp_test.proto) and compared field by field with what the JSON
// encoder wrote for the same spans; budgets, all-or-nothing appends, grouping, UTF-8 repair,
// huge values, the golden reference example, zero allocation in steady state.
#include "golden_util.h"
#include "reference_example.h"
#include "tracecast/otlp_protobuf.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "alloc_counter.h"
#include "otlp_render.h"
#include "otlp_test.pb.h"
#include "tracecast/gateway.h"
#include "tracecast/mapping.h"
#include "tracecast/otlp_json.h"
#include "workload.h"

namespace tracecast {
namespace {

constexpr ScopeView k_scope{"tracecast", "0.1.0"};

struct Group {
  ResourceView resource;
  ScopeView scope;
  std::span<const SpanView> spans;
};

otlp::ExportTraceServiceRequest decode(std::string_view body) {
  otlp::ExportTraceServiceRequest req;
  EXPECT_TRUE(req.ParseFromArray(body.data(), static_cast<int>(body.size())))
      << "libprotobuf refused " << body.size() << " bytes";
  return req;
}

std::size_t count_spans(const otlp::ExportTraceServiceRequest& req) {
  std::size_t n = 0;
  for (const auto& rs : req.resource_spans())
    for (const auto& ss : rs.scope_spans()) n += static_cast<std::size_t>(ss.spans_size());
  return n;
}

// Encodes the groups with both encoders (one batch each, same limits), decodes both, and
// expects the same rendering; returns the protobuf body. Stats of both must agree too.
std::string expect_same_as_json(std::span<const Group> groups, EncoderLimits limits = {}) {
  std::vector<char> jbuf(16 << 20), pbuf(16 << 20);
  OtlpJsonEncoder json(limits);
  OtlpProtobufEncoder pb(limits);
  json.begin(jbuf, jbuf.size());
  pb.begin(pbuf, pbuf.size());
  for (const Group& g : groups) {
    EXPECT_EQ(json.append(g.resource, g.scope, g.spans), append_result::ok);
    EXPECT_EQ(pb.append(g.resource, g.scope, g.spans), append_result::ok);
  }
  EXPECT_EQ(pb.span_count(), json.span_count());
  const std::string_view jdoc = json.finish();
  const std::string body(pb.finish());
  EXPECT_EQ(body.size(), pb.size_bytes());
  test::JsonRender jr;
  const std::string from_json = jr.render(jdoc);
  EXPECT_EQ(jr.error, "");
  const std::string from_pb = test::render(decode(body));
  EXPECT_EQ(from_pb, from_json);
  const EncoderStats& a = json.stats();
  const EncoderStats& b = pb.stats();
  EXPECT_EQ(a.invalid_utf8_replaced, b.invalid_utf8_replaced);
  EXPECT_EQ(a.values_truncated, b.values_truncated);
  EXPECT_EQ(a.duplicate_keys_skipped, b.duplicate_keys_skipped);
  EXPECT_EQ(a.attributes_dropped, b.attributes_dropped);
  EXPECT_EQ(a.spans_invalid_id, b.spans_invalid_id);
  return body;
}

SpanView basic_span(std::span<const Attribute> attrs) {
  SpanView s;
  s.trace_id = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c");
  s.span_id = SpanId::from_hex("b7ad6b7169203331");
  s.name = "op";
  s.kind = SpanKind::client;
  s.start_unix_nano = 1;
  s.end_unix_nano = std::numeric_limits<std::uint64_t>::max();
  s.attributes = attrs;
  return s;
}

void workload_same_as_json(bool content) {
  workload::SpanGenerator gen(7, content);
  std::vector<std::unique_ptr<workload::SpanRequest>> reqs;
  std::vector<Group> groups;
  for (int i = 0; i < 200; ++i) {
    reqs.push_back(std::make_unique<workload::SpanRequest>());
    gen.next(*reqs.back());
    groups.push_back({reqs.back()->resource(), reqs.back()->scope(), reqs.back()->spans()});
  }
  const std::string body = expect_same_as_json(groups);
  const auto req = decode(body);
  EXPECT_EQ(req.resource_spans_size(), 200);
  EXPECT_EQ(count_spans(req), 200u);
  // The span fields decoded straight from protobuf, not only through the rendering.
  const SpanView& want = reqs[5]->span;
  const auto& got = req.resource_spans(5).scope_spans(0).spans(0);
  EXPECT_EQ(got.trace_id(), std::string(reinterpret_cast<const char*>(want.trace_id.bytes.data()), 16));
  EXPECT_EQ(got.span_id(), std::string(reinterpret_cast<const char*>(want.span_id.bytes.data()), 8));
  EXPECT_EQ(got.name(), want.name);
  EXPECT_EQ(got.start_time_unix_nano(), want.start_unix_nano);
  EXPECT_EQ(got.end_time_unix_nano(), want.end_unix_nano);
  EXPECT_EQ(static_cast<std::size_t>(got.attributes_size()), want.attributes.size());
}

TEST(OtlpProtobufEncoder, CanonicalRequestsDecodeToWhatTheJsonEncoderWrote) { workload_same_as_json(false); }

TEST(OtlpProtobufEncoder, ContentRequestsDecodeToWhatTheJsonEncoderWrote) { workload_same_as_json(true); }

TEST(OtlpProtobufEncoder, EveryValueTypeAndEdgeValueMatchesJson) {
  std::string controls;
  for (int c = 0; c < 0x20; ++c) controls += static_cast<char>(c);
  const std::string_view strs[] = {"", "a\"b", "ünïcödé 🚀", "bad \xC3("};
  const bool bools[] = {true, false};
  const std::int64_t ints[] = {std::numeric_limits<std::int64_t>::min(), 0, -1, std::numeric_limits<std::int64_t>::max()};
  const double dbls[] = {0.0, -0.0, 0.1, 1e21, 1e300, 5e-324, std::numeric_limits<double>::quiet_NaN(),
                         std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()};
  const Attribute attrs[] = {
      {"s", AttributeValue::string("plain")},       {"empty", AttributeValue::string("")},
      {"controls", AttributeValue::string(controls)}, {"t", AttributeValue::boolean(true)},
      {"f", AttributeValue::boolean(false)},        {"zero", AttributeValue::int64(0)},
      {"min", AttributeValue::int64(ints[0])},      {"max", AttributeValue::int64(ints[3])},
      {"neg", AttributeValue::int64(-1)},           {"nan", AttributeValue::float64(dbls[6])},
      {"negzero", AttributeValue::float64(-0.0)},   {"strs", AttributeValue::strings(strs)},
      {"bools", AttributeValue::bools(bools)},      {"ints", AttributeValue::int64s(ints)},
      {"dbls", AttributeValue::float64s(dbls)},     {"no_strs", AttributeValue::strings({})},
      {"unset", AttributeValue()},                  {"", AttributeValue::string("empty key")},
  };
  SpanView spans[4] = {basic_span(attrs), basic_span({}), basic_span({}), basic_span({})};
  spans[1].span_id = SpanId::from_u64(2);
  spans[1].parent_span_id = spans[0].span_id;
  spans[1].kind = SpanKind::unspecified;
  spans[1].name = {};
  spans[1].status_code = StatusCode::error;
  spans[1].status_message = "boom \xFF";
  spans[2].span_id = SpanId::from_u64(3);
  spans[2].status_message = "message only";
  spans[2].start_unix_nano = spans[2].end_unix_nano = 0;
  spans[3].span_id = SpanId::from_u64(4);
  spans[3].status_code = StatusCode::ok;
  const Attribute res[] = {{"service.name", AttributeValue::string("svc")}, {"n", AttributeValue::int64(3)}};
  const Group groups[] = {{ResourceView{res}, k_scope, spans}, {ResourceView{}, ScopeView{"", "1"}, {&spans[1], 1}},
                          {ResourceView{}, ScopeView{}, {&spans[2], 2}}};
  const std::string body = expect_same_as_json(groups);
  const auto req = decode(body);
  const auto& a = req.resource_spans(0).scope_spans(0).spans(0).attributes();
  EXPECT_EQ(a[6].value().int_value(), std::numeric_limits<std::int64_t>::min());
  EXPECT_TRUE(a[3].value().has_bool_value());
  EXPECT_TRUE(a[5].value().has_int_value());  // a oneof member holding its default is present
  // A valueless attribute ("unset") is left out, as strict receivers refuse an empty
  // AnyValue, and said in dropped_attributes_count.
  ASSERT_EQ(a.size(), 17);
  for (const auto& kv : a) EXPECT_NE(kv.key(), "unset");
  EXPECT_EQ(req.resource_spans(0).scope_spans(0).spans(0).dropped_attributes_count(), 1u);
  EXPECT_TRUE(a[15].value().has_array_value());
  EXPECT_EQ(a[16].key(), "");
  EXPECT_EQ(req.resource_spans(0).scope_spans(0).spans(1).status().code(), 2);
}

TEST(OtlpProtobufEncoder, InvalidUtf8IsReplacedPerMaximalSubpartAndCounted) {
  // Unicode 3.9 Table 3-8's example: 61 F1 80 80 E1 80 C2 62 80 63 80 BF 64 -> a???b??c??d
  const std::string_view bad = "\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64";
  const Attribute attrs[] = {{"k\xFF", AttributeValue::string(bad)}};
  SpanView s = basic_span(attrs);
  s.name = "\xED\xA0\x80";  // a surrogate: 3 maximal subparts
  const Group g{ResourceView{}, k_scope, {&s, 1}};
  const std::string body = expect_same_as_json({&g, 1});
  const auto req = decode(body);  // libprotobuf refuses invalid UTF-8 in proto3 strings
  const auto& span = req.resource_spans(0).scope_spans(0).spans(0);
  const std::string r = "\xEF\xBF\xBD";
  EXPECT_EQ(span.attributes(0).value().string_value(), "a" + r + r + r + "b" + r + "c" + r + r + "d");
  EXPECT_EQ(span.attributes(0).key(), "k" + r);
  EXPECT_EQ(span.name(), r + r + r);
}

TEST(OtlpProtobufEncoder, LongValuesAreCutAtACodePointBoundaryAndCounted) {
  EncoderLimits limits;
  limits.max_value_bytes = 8;
  const Attribute attrs[] = {{"k", AttributeValue::string("1234567\xC3\xA9xyz")},  // é straddles the cut
                             {"emoji", AttributeValue::string("12345\xF0\x9F\x9A\x80")}};
  SpanView s = basic_span(attrs);
  const Group g{ResourceView{}, k_scope, {&s, 1}};
  std::vector<char> buf(4096);
  OtlpProtobufEncoder enc(limits);
  enc.begin(buf, buf.size());
  ASSERT_EQ(enc.append(g.resource, g.scope, g.spans), append_result::ok);
  const auto req = decode(enc.finish());
  const auto& span = req.resource_spans(0).scope_spans(0).spans(0);
  EXPECT_EQ(span.attributes(0).value().string_value(), "1234567");
  EXPECT_EQ(span.attributes(1).value().string_value(), "12345");
  EXPECT_EQ(enc.stats().values_truncated, 3u);  // both values and "tracecast"
  expect_same_as_json({&g, 1}, limits);
}

TEST(OtlpProtobufEncoder, HugeValuesRoundTripWholeOrCutAtTheLimit) {
  std::string prompt(300 * 1024, 'p');
  for (std::size_t i = 0; i < prompt.size(); i += 97) prompt[i] = '"';
  std::string over(17 << 20, 'o');  // beyond the largest max_value_bytes
  const Attribute attrs[] = {{"gen_ai.prompt", AttributeValue::string(prompt)}, {"over", AttributeValue::string(over)}};
  SpanView s = basic_span(attrs);
  EncoderLimits limits;
  limits.max_value_bytes = 16 << 20;
  std::vector<char> buf(20 << 20);
  OtlpProtobufEncoder enc(limits);
  enc.begin(buf, buf.size());
  ASSERT_EQ(enc.append(ResourceView{}, k_scope, {&s, 1}), append_result::ok);
  const auto req = decode(enc.finish());
  const auto& span = req.resource_spans(0).scope_spans(0).spans(0);
  EXPECT_EQ(span.attributes(0).value().string_value(), prompt);
  EXPECT_EQ(span.attributes(1).value().string_value().size(), 16u << 20);
  EXPECT_EQ(enc.stats().values_truncated, 1u);
}

TEST(OtlpProtobufEncoder, ShortAttributesWithNonAsciiOrIllFormedBytesMatchJson) {
  // Short attributes are written supposing their strings well-formed and checked while copied:
  // valid UTF-8 stays as is, an ill-formed key or value is rewritten from the attribute's
  // start (repaired, counted), and duplicates are found among repaired keys as before.
  const Attribute attrs[] = {{"caf\xC3\xA9", AttributeValue::string("na\xC3\xAFve \xF0\x9F\x9A\x80")},
                             {"k", AttributeValue::string("ok\xFF")},
                             {"k\xFF", AttributeValue::int64(1)},
                             {"k\xFE", AttributeValue::int64(2)},  // repairs to the key above
                             {"caf\xC3\xA9", AttributeValue::boolean(true)},
                             {"k", AttributeValue::string("dup")},
                             {"x", AttributeValue::string("0123456789abcdef\x80")},
                             {"after", AttributeValue::float64(1.5)}};
  SpanView s = basic_span(attrs);
  const Group g{ResourceView{std::span<const Attribute>(attrs).first(4)}, k_scope, {&s, 1}};
  const auto req = decode(expect_same_as_json({&g, 1}));
  const auto& span = req.resource_spans(0).scope_spans(0).spans(0);
  const std::string r = "\xEF\xBF\xBD";
  ASSERT_EQ(span.attributes_size(), 5);
  EXPECT_EQ(span.attributes(0).key(), "caf\xC3\xA9");
  EXPECT_EQ(span.attributes(0).value().string_value(), "na\xC3\xAFve \xF0\x9F\x9A\x80");
  EXPECT_EQ(span.attributes(1).value().string_value(), "ok" + r);
  EXPECT_EQ(span.attributes(2).key(), "k" + r);
  EXPECT_EQ(span.attributes(2).value().int_value(), 1);
  EXPECT_EQ(span.attributes(3).value().string_value(), "0123456789abcdef" + r);
  EXPECT_EQ(span.attributes(4).value().double_value(), 1.5);
  EXPECT_EQ(req.resource_spans(0).resource().attributes_size(), 3);
}

TEST(OtlpProtobufEncoder, MessagesOf16KiBAndMoreGetAWiderPrefixAndStayWithinTheBudget) {
  // Span and Resource prefixes are reserved 2 bytes wide and widened (the content moved) when
  // the message reaches 2^14 bytes: every size around that edge decodes, equal large resources
  // still share an entry, and no budget yields a truncated or over-budget message.
  for (const std::size_t n : {16300u, 16330u, 16350u, 16360u, 16370u, 16380u, 16400u, 40000u}) {
    const std::string value(n, 'v');
    const Attribute attrs[] = {{"big", AttributeValue::string(value)}, {"after", AttributeValue::int64(7)}};
    const Attribute res[] = {{"service.name", AttributeValue::string(value)}};
    SpanView s = basic_span(attrs);
    const Group groups[] = {{ResourceView{res}, k_scope, {&s, 1}}, {ResourceView{res}, k_scope, {&s, 1}}};
    const auto req = decode(expect_same_as_json(groups));
    ASSERT_EQ(req.resource_spans_size(), 1) << n;
    ASSERT_EQ(req.resource_spans(0).scope_spans(0).spans_size(), 2) << n;
    EXPECT_EQ(req.resource_spans(0).scope_spans(0).spans(1).attributes(0).value().string_value(), value);
    EXPECT_EQ(req.resource_spans(0).scope_spans(0).spans(1).attributes(1).value().int_value(), 7);
    EXPECT_EQ(req.resource_spans(0).resource().attributes(0).value().string_value(), value);
  }
  const std::string value(16370, 'v');
  const Attribute attrs[] = {{"big", AttributeValue::string(value)}};
  SpanView s = basic_span(attrs);
  std::vector<char> buffer(20000, 'X');
  OtlpProtobufEncoder enc;
  enc.begin(buffer, buffer.size());
  ASSERT_EQ(enc.append(ResourceView{}, k_scope, {&s, 1}), append_result::ok);
  const std::size_t size = enc.finish().size();  // the span itself is over 2^14 bytes
  ASSERT_GT(decode(std::string_view(buffer.data(), size)).resource_spans(0).scope_spans(0).spans(0).ByteSizeLong(),
            std::size_t{1} << 14);
  std::fill(buffer.begin(), buffer.end(), 'X');
  std::size_t fits = 0;
  for (std::size_t budget = size - 8; budget <= size + 8; ++budget) {
    enc.begin(std::span<char>(buffer).first(budget), budget);
    const append_result r = enc.append(ResourceView{}, k_scope, {&s, 1});
    const std::string_view body = enc.finish();
    if (r != append_result::ok) {
      EXPECT_EQ(r, append_result::too_large);
      EXPECT_TRUE(body.empty());
      continue;
    }
    ++fits;
    ASSERT_EQ(body.size(), size);
    ASSERT_LE(body.size(), budget);
    EXPECT_EQ(count_spans(decode(body)), 1u);
    for (std::size_t i = budget; i < buffer.size(); ++i) ASSERT_EQ(buffer[i], 'X') << budget;
  }
  EXPECT_EQ(fits, 9u);  // from the exact size on
}

TEST(OtlpProtobufEncoder, DuplicateKeysAndAttributesOverTheLimitMatchJson) {
  std::vector<Attribute> many;
  std::vector<std::string> keys;
  for (int i = 0; i < 300; ++i) keys.push_back("key." + std::to_string(i % 120));
  for (const auto& k : keys) many.push_back({k, AttributeValue::int64(static_cast<std::int64_t>(many.size()))});
  SpanView s = basic_span(many);
  const Group g{ResourceView{std::span<const Attribute>(many).first(20)}, k_scope, {&s, 1}};
  for (const std::size_t max : {std::size_t{0}, std::size_t{1}, std::size_t{16}, std::size_t{100}, std::size_t{128}}) {
    EncoderLimits limits;
    limits.max_attributes_per_span = max;
    const auto req = decode(expect_same_as_json({&g, 1}, limits));
    const auto& span = req.resource_spans(0).scope_spans(0).spans(0);
    EXPECT_EQ(static_cast<std::size_t>(span.attributes_size()), std::min<std::size_t>(max, 120));
    // Beyond the limit everything is dropped; under it, repeats of a key are skipped instead.
    EXPECT_EQ(span.dropped_attributes_count(), max >= 120 ? 0u : 300u - max);
  }
}

TEST(OtlpProtobufEncoder, ConsecutiveEqualResourcesAndScopesShareEntries) {
  const Attribute res_a[] = {{"service.name", AttributeValue::string("a")}};
  const Attribute res_b[] = {{"service.name", AttributeValue::string("b")}};
  SpanView s = basic_span({});
  const ScopeView other{"other", "2"};
  const Group groups[] = {{ResourceView{res_a}, k_scope, {&s, 1}}, {ResourceView{res_a}, k_scope, {&s, 1}},
                          {ResourceView{res_a}, other, {&s, 1}},   {ResourceView{res_b}, other, {&s, 1}},
                          {ResourceView{res_a}, other, {&s, 1}},   {ResourceView{}, other, {&s, 1}}};
  const auto req = decode(expect_same_as_json(groups));
  ASSERT_EQ(req.resource_spans_size(), 4);
  // Lists that encode the same once a repeated key is left out are the same resource (found by
  // the fuzzer: the prefix width follows the list's size bound, so only content is compared).
  std::vector<Attribute> dup(40, res_a[0]);
  const Group same[] = {{ResourceView{res_a}, k_scope, {&s, 1}}, {ResourceView{dup}, k_scope, {&s, 1}}};
  EXPECT_EQ(decode(expect_same_as_json(same)).resource_spans_size(), 1);
  ASSERT_EQ(req.resource_spans(0).scope_spans_size(), 2);
  EXPECT_EQ(req.resource_spans(0).scope_spans(0).spans_size(), 2);
  EXPECT_EQ(req.resource_spans(0).scope_spans(1).scope().name(), "other");
  EXPECT_EQ(req.resource_spans(1).resource().attributes(0).value().string_value(), "b");
  EXPECT_FALSE(req.resource_spans(3).has_resource());
}

TEST(OtlpProtobufEncoder, CanonicalSpanIsAtMost55PercentOfItsJsonAndPaddingIsSmall) {
  workload::SpanGenerator gen(1);
  std::vector<char> jbuf(1 << 20), pbuf(1 << 20);
  OtlpJsonEncoder json;
  OtlpProtobufEncoder pb;
  json.begin(jbuf, jbuf.size());
  pb.begin(pbuf, pbuf.size());
  workload::SpanRequest req;
  for (int i = 0; i < 100; ++i) {
    gen.next(req);
    ASSERT_EQ(json.append(req.resource(), req.scope(), req.spans()), append_result::ok);
    ASSERT_EQ(pb.append(req.resource(), req.scope(), req.spans()), append_result::ok);
  }
  const std::size_t jn = json.finish().size();
  const std::string_view body = pb.finish();
  EXPECT_LE(body.size() * 100, jn * 55) << body.size() << " vs " << jn;
  // Against libprotobuf's own (minimal-prefix) serialization of the same message: the 4-byte
  // resource_spans / scope_spans prefixes cost at most 3 + 3 bytes per request here.
  const auto decoded = decode(body);
  EXPECT_LE(body.size(), decoded.ByteSizeLong() + 6 * 100);
  EXPECT_GE(body.size(), decoded.ByteSizeLong());
}

TEST(OtlpProtobufEncoder, AppendReportsBatchFullAndTheSealedBatchStaysValid) {
  workload::SpanGenerator gen(3);
  std::vector<std::unique_ptr<workload::SpanRequest>> reqs;
  for (int i = 0; i < 40; ++i) {
    reqs.push_back(std::make_unique<workload::SpanRequest>());
    gen.next(*reqs.back());
  }
  constexpr std::size_t k_budget = 4 * 1024;
  std::vector<char> buffer(k_budget + 64, 'X');
  OtlpProtobufEncoder enc;
  std::size_t next = 0, batches = 0, total = 0;
  while (next < reqs.size()) {
    enc.begin(std::span<char>(buffer).first(k_budget), k_budget);
    while (next < reqs.size()) {
      const std::size_t before = enc.size_bytes();
      const append_result r = enc.append(reqs[next]->resource(), reqs[next]->scope(), reqs[next]->spans());
      if (r == append_result::batch_full) {
        EXPECT_EQ(enc.size_bytes(), before);
        break;
      }
      ASSERT_EQ(r, append_result::ok);
      ++next;
    }
    ASSERT_GT(enc.span_count(), 0u);
    const std::string_view body = enc.finish();
    EXPECT_LE(body.size(), k_budget);
    total += count_spans(decode(body));
    ++batches;
    EXPECT_EQ(enc.append(reqs[0]->resource(), reqs[0]->scope(), reqs[0]->spans()), append_result::batch_full);
  }
  EXPECT_EQ(total, reqs.size());
  EXPECT_GE(batches, 5u);
  for (std::size_t i = k_budget; i < buffer.size(); ++i) ASSERT_EQ(buffer[i], 'X');
  EXPECT_EQ(enc.stats().spans_too_large, 0u);
}

TEST(OtlpProtobufEncoder, EveryBudgetYieldsAValidMessageWithinTheBudget) {
  std::string tricky = "q\"\\\n\x01\xC3\xA9\xF0\x9F\x9A\x80\xFFtail-of-the-value-0123456789";
  const Attribute attrs[] = {{"k", AttributeValue::string(tricky)}, {"n", AttributeValue::float64(0.25)}};
  const Attribute res[] = {{"service.name", AttributeValue::string("svc")}};
  SpanView s = basic_span(attrs);
  std::vector<char> buffer(2048);
  OtlpProtobufEncoder enc;
  std::size_t first_fit = 0;
  for (std::size_t budget = 0; budget < 700; ++budget) {
    enc.begin(buffer, budget);
    std::size_t n = 0;
    const EncoderStats before = enc.stats();
    while (n < 5 && enc.append(ResourceView{res}, k_scope, {&s, 1}) == append_result::ok) ++n;
    const std::string_view body = enc.finish();
    if (n == 0) {
      EXPECT_TRUE(body.empty());
      EXPECT_EQ(enc.stats().invalid_utf8_replaced, before.invalid_utf8_replaced);  // nothing counted
      EXPECT_EQ(enc.stats().spans_too_large, before.spans_too_large + 1);
      continue;
    }
    if (first_fit == 0) first_fit = budget;
    ASSERT_LE(body.size(), budget);
    const auto req = decode(body);
    ASSERT_EQ(count_spans(req), n) << budget;
    ASSERT_EQ(req.resource_spans_size(), 1);  // equal resources grouped
  }
  EXPECT_GT(first_fit, 0u);
}

TEST(OtlpProtobufEncoder, EverySpanIsAccountedForAcrossBatches) {
  const std::string big(3000, 'x');
  const Attribute big_attr[] = {{"big", AttributeValue::string(big)}};
  workload::SpanGenerator gen(21);
  workload::Rng rng(5);
  std::vector<char> buffer(2048);
  OtlpProtobufEncoder enc;
  std::uint64_t submitted = 0, sealed = 0;
  enc.begin(buffer, buffer.size());
  auto seal = [&] {
    const std::string_view body = enc.finish();
    if (body.empty()) return;
    sealed += count_spans(decode(body));
    enc.begin(buffer, buffer.size());
  };
  for (int i = 0; i < 300; ++i) {
    workload::SpanRequest req;
    gen.next(req);
    SpanView group[3] = {req.span, req.span, req.span};
    const std::size_t n = 1 + rng.next() % 3;
    if (rng.next() % 10 == 0) group[0].span_id = SpanId{};
    if (rng.next() % 15 == 0) group[n - 1].attributes = big_attr;
    submitted += n;
    const std::span<const SpanView> spans(group, n);
    append_result r = enc.append(req.resource(), req.scope(), spans);
    if (r == append_result::batch_full) {
      seal();
      r = enc.append(req.resource(), req.scope(), spans);
      EXPECT_NE(r, append_result::batch_full);
    }
  }
  seal();
  const EncoderStats& st = enc.stats();
  EXPECT_GT(st.spans_invalid_id, 0u);
  EXPECT_GT(st.spans_too_large, 0u);
  EXPECT_EQ(submitted, sealed + st.spans_invalid_id + st.spans_too_large);
}

TEST(OtlpProtobufEncoder, WithoutBeginOrWithoutSpansNothingIsWritten) {
  SpanView s = basic_span({});
  OtlpProtobufEncoder enc;
  EXPECT_EQ(enc.append(ResourceView{}, k_scope, {&s, 1}), append_result::too_large);
  EXPECT_EQ(enc.stats().spans_too_large, 1u);
  std::vector<char> buffer(1024);
  enc.begin(buffer, buffer.size());
  EXPECT_TRUE(enc.finish().empty());
  enc.begin(buffer, buffer.size());
  s.trace_id = TraceId{};
  EXPECT_EQ(enc.append(ResourceView{}, k_scope, {&s, 1}), append_result::ok);
  EXPECT_EQ(enc.stats().spans_invalid_id, 1u);
  EXPECT_TRUE(enc.finish().empty());
  EXPECT_THROW(OtlpProtobufEncoder(EncoderLimits{3, 128}), std::invalid_argument);
}

TEST(OtlpProtobufEncoder, SteadyStateAllocatesNothing) {
  for (const bool content : {false, true}) {
    workload::SpanGenerator gen(11, content);
    std::vector<std::unique_ptr<workload::SpanRequest>> reqs;
    for (int i = 0; i < 64; ++i) {
      reqs.push_back(std::make_unique<workload::SpanRequest>());
      gen.next(*reqs.back());
    }
    const Attribute odd[] = {{"x", AttributeValue::string("bad \xC3 byte \xED\xA0\x80 0123456789abcdef")},
                             {"x", AttributeValue::int64(1)}};
    SpanView odd_span = basic_span(odd);
    std::vector<char> buffer(64 * 1024);
    OtlpProtobufEncoder enc;
    auto run = [&] {
      for (int round = 0; round < 4; ++round) {
        enc.begin(buffer, buffer.size());
        for (const auto& r : reqs) {
          if (enc.append(r->resource(), r->scope(), r->spans()) != append_result::ok) {
            (void)enc.finish();
            enc.begin(buffer, buffer.size());
            (void)enc.append(r->resource(), r->scope(), r->spans());
          }
        }
        (void)enc.append(ResourceView{}, k_scope, {&odd_span, 1});
        (void)enc.finish();
      }
    };
    run();
    test::AllocationScope scope;
    run();
    EXPECT_EQ(scope.count(), 0u) << "content=" << content;
    EXPECT_GT(enc.stats().invalid_utf8_replaced, 0u);
  }
}

// --- golden: the reference example (shared/reference/grafana-cloud-broadcast.md) ----------------
// TRACECAST_UPDATE_GOLDEN=1 rewrites the golden files from the current output (then review
// them: `protoc --decode=tracecast.otlp.ExportTraceServiceRequest -I tests/proto
// tests/proto/otlp_test.proto < tests/golden/reference_example.pb`, and compare with
// reference_example.pb.txt).
using test::golden;
using test::read_file;
using test::source_path;

TEST(OtlpProtobufEncoder, ReferenceExampleMatchesGoldenFilesInBothEncodings) {
  const test::ReferenceExample example;
  IdGenerator ids(7);
  auto mapped = std::make_unique<MappedRequest>();
  const MappingConfig mapping;  // the resource's views point into it
  map_request(example.request(), mapping, ids, *mapped);
  ASSERT_EQ(mapped->spans().size(), 2u);
  const Group g{mapped->resource(), mapped->scope(), mapped->spans()};
  const std::string body = expect_same_as_json({&g, 1});
  EXPECT_EQ(body, golden("reference_example.pb", body));
  std::vector<char> jbuf(1 << 16);
  OtlpJsonEncoder json;
  json.begin(jbuf, jbuf.size());
  ASSERT_EQ(json.append(g.resource, g.scope, g.spans), append_result::ok);
  const std::string doc(json.finish());
  EXPECT_EQ(doc, golden("reference_example.json", doc));
  EXPECT_LE(body.size() * 100, doc.size() * 55) << body.size() << " vs " << doc.size();
}

// A destination's own value limit (begin()'s max_value_bytes): this batch only, cut at a code
// point boundary, counted, and the span marked tracecast.truncated; the same in both encodings.
TEST(OtlpProtobufEncoder, ABatchValueLimitCutsAtACodePointMarksTheSpanAndLastsOneBatch) {
  // 2047 ASCII bytes then a 2-byte é across the 2048 boundary, then more text.
  const std::string prompt = std::string(2047, 'a') + "\xC3\xA9" + std::string(3000, 'b');
  const Attribute attrs[] = {{"gen_ai.prompt", AttributeValue::string(prompt)},
                             {"short", AttributeValue::string("kept")}};
  SpanView s = basic_span(attrs);
  std::vector<char> jbuf(1 << 16), pbuf(1 << 16);
  OtlpJsonEncoder json;
  OtlpProtobufEncoder pb;
  json.begin(jbuf, jbuf.size(), 2048);
  pb.begin(pbuf, pbuf.size(), 2048);
  EXPECT_EQ(pb.batch_limits().max_value_bytes, 2048u);
  ASSERT_EQ(json.append(ResourceView{}, k_scope, {&s, 1}), append_result::ok);
  ASSERT_EQ(pb.append(ResourceView{}, k_scope, {&s, 1}), append_result::ok);
  const auto req = decode(pb.finish());
  const auto& span = req.resource_spans(0).scope_spans(0).spans(0);
  ASSERT_EQ(span.attributes_size(), 3);
  EXPECT_EQ(span.attributes(0).value().string_value(), std::string(2047, 'a'));  // é left out whole
  EXPECT_EQ(span.attributes(1).value().string_value(), "kept");
  EXPECT_EQ(span.attributes(2).key(), "tracecast.truncated");
  EXPECT_TRUE(span.attributes(2).value().bool_value());
  EXPECT_EQ(pb.stats().values_truncated, 1u);
  EXPECT_EQ(json.stats().values_truncated, 1u);
  test::JsonRender jr;
  EXPECT_EQ(test::render(req), jr.render(json.finish()));

  // The next batch without a limit: the encoder's own (1 MiB), nothing cut, no mark.
  pb.begin(pbuf, pbuf.size());
  ASSERT_EQ(pb.append(ResourceView{}, k_scope, {&s, 1}), append_result::ok);
  const auto whole = decode(pb.finish());
  ASSERT_EQ(whole.resource_spans(0).scope_spans(0).spans(0).attributes_size(), 2);
  EXPECT_EQ(whole.resource_spans(0).scope_spans(0).spans(0).attributes(0).value().string_value(), prompt);
  EXPECT_EQ(pb.stats().values_truncated, 1u);

  // A limit above the encoder's own never raises it.
  EncoderLimits small;
  small.max_value_bytes = 100;
  OtlpProtobufEncoder capped(small);
  capped.begin(pbuf, pbuf.size(), 4096);
  EXPECT_EQ(capped.batch_limits().max_value_bytes, 100u);
}

TEST(OtlpProtobufEncoder, ACutSpanIsMarkedOnceEvenWhenTheMappingMarkedItAndOnlyThatSpan) {
  const std::string long_value(5000, 'x');
  // Marked at submit already (the mapping's attribute): not written twice, not counted as a
  // duplicate. The second span has nothing cut: no mark. The third has only its name cut.
  const Attribute marked[] = {{"v", AttributeValue::string(long_value)},
                              {"tracecast.truncated", AttributeValue::boolean(true)}};
  const Attribute plain[] = {{"v", AttributeValue::string("short")}};
  SpanView spans[3] = {basic_span(marked), basic_span(plain), basic_span({})};
  spans[1].span_id = SpanId::from_u64(2);
  spans[2].span_id = SpanId::from_u64(3);
  spans[2].name = long_value;
  const Group g{ResourceView{}, k_scope, spans};
  EncoderLimits limits;
  limits.max_value_bytes = 1000;
  const std::string body = expect_same_as_json({&g, 1}, limits);
  const auto req = decode(body);
  const auto& out = req.resource_spans(0).scope_spans(0);
  ASSERT_EQ(out.spans_size(), 3);
  ASSERT_EQ(out.spans(0).attributes_size(), 2);
  EXPECT_EQ(out.spans(0).attributes(0).value().string_value().size(), 1000u);
  ASSERT_EQ(out.spans(1).attributes_size(), 1);
  ASSERT_EQ(out.spans(2).attributes_size(), 1);
  EXPECT_EQ(out.spans(2).attributes(0).key(), "tracecast.truncated");
  EXPECT_EQ(out.spans(2).name().size(), 1000u);
  OtlpProtobufEncoder pb(limits);
  std::vector<char> buf(1 << 16);
  pb.begin(buf, buf.size());
  ASSERT_EQ(pb.append(g.resource, g.scope, g.spans), append_result::ok);
  EXPECT_EQ(pb.stats().duplicate_keys_skipped, 0u);
  EXPECT_EQ(pb.stats().values_truncated, 2u);
}

// SpanView::keys_unique, both encoders (expect_same_as_json compares their renderings and
// stats on every call): a promised list is written byte for byte as the checked one, a cut list
// is marked once (the mark looked for in the list), and keys are checked anyway when the value
// limit could cut two of them to the same text.
TEST(OtlpProtobufEncoder, AListPromisedUniqueKeysIsWrittenAsTheCheckedOne) {
  std::vector<std::string> keys;
  for (int i = 0; i < 40; ++i) keys.push_back(std::string("k\xc3\xa9y.").append(std::to_string(i)));  // > 16: hashed
  std::vector<Attribute> attrs;
  for (const std::string& k : keys) attrs.push_back({k, AttributeValue::string("v")});
  auto encode = [](std::span<const Attribute> list, bool unique, EncoderLimits limits = {}) {
    SpanView sp = basic_span(list);
    sp.keys_unique = unique;
    const Group g{ResourceView{}, k_scope, {&sp, 1}};
    const std::string body = expect_same_as_json({&g, 1}, limits);
    OtlpProtobufEncoder pb(limits);
    std::vector<char> buf(1 << 16);
    pb.begin(buf, buf.size());
    EXPECT_EQ(pb.append(g.resource, g.scope, g.spans), append_result::ok);
    EXPECT_EQ(std::string(pb.finish()), body);
    return std::pair{body, pb.stats()};
  };
  EXPECT_EQ(encode(attrs, true).first, encode(attrs, false).first);

  EncoderLimits limits;
  limits.max_value_bytes = 300;
  const std::string long_value(1000, 'x');
  const Attribute cut[] = {{"a", AttributeValue::string(long_value)}, {"b", AttributeValue::int64(1)}};
  const Attribute cut_marked[] = {{"a", AttributeValue::string(long_value)}, {"tracecast.truncated", AttributeValue::boolean(true)}};
  for (const auto list : {std::span<const Attribute>(cut), std::span<const Attribute>(cut_marked)}) {
    const auto [body, stats] = encode(list, true, limits);
    EXPECT_EQ(encode(list, false, limits).first, body);
    const auto req = decode(body);
    int marks = 0;
    for (const auto& a : req.resource_spans(0).scope_spans(0).spans(0).attributes()) marks += a.key() == "tracecast.truncated";
    EXPECT_EQ(marks, 1);
    EXPECT_EQ(stats.duplicate_keys_skipped, 0u);
  }

  limits.max_value_bytes = 8;
  const Attribute near[] = {{"abcdefgh1", AttributeValue::int64(1)}, {"abcdefgh2", AttributeValue::int64(2)}};
  const auto [body, stats] = encode(near, true, limits);
  EXPECT_EQ(stats.duplicate_keys_skipped, 1u);
  EXPECT_EQ(decode(body).resource_spans(0).scope_spans(0).spans(0).attributes_size(), 1);
}

TEST(OtlpProtobufEncoder, ACutStatusMessageMarksItsSpanAndAFullListGetsNoMark) {
  const std::string b(300, 'b');
  const Attribute attrs[] = {{"a", AttributeValue::string("1")}, {"b", AttributeValue::string(b)}};
  SpanView s = basic_span(attrs);
  const std::string message(500, 'm');
  s.status_code = StatusCode::error;
  s.status_message = message;
  EncoderLimits limits;
  limits.max_value_bytes = 200;
  {
    const Group g{ResourceView{}, k_scope, {&s, 1}};
    const auto req = decode(expect_same_as_json({&g, 1}, limits));
    const auto& span = req.resource_spans(0).scope_spans(0).spans(0);
    ASSERT_EQ(span.attributes_size(), 3);
    EXPECT_EQ(span.attributes(2).key(), "tracecast.truncated");
    EXPECT_EQ(span.status().message().size(), 200u);
  }
  limits.max_attributes_per_span = 2;  // the list is full: the mark never passes the limit
  {
    const Group g{ResourceView{}, k_scope, {&s, 1}};
    const auto req = decode(expect_same_as_json({&g, 1}, limits));
    EXPECT_EQ(req.resource_spans(0).scope_spans(0).spans(0).attributes_size(), 2);
  }
}

}  // namespace
}  // namespace tracecast
