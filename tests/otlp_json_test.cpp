// OtlpJsonEncoder: round trips through simdjson, exact encoding rules, UTF-8 repair, batch
// framing, grouping, golden files, and zero allocation in steady state.
#include "tracecast/otlp_json.h"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "alloc_counter.h"
#include "workload.h"

namespace tracecast {
namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

constexpr ScopeView k_scope{"tracecast", "0.1.0"};

std::string hex(const std::uint8_t* b, std::size_t n) {
  static constexpr char d[] = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    s += d[b[i] >> 4];
    s += d[b[i] & 0xf];
  }
  return s;
}

bool has_field(element e, std::string_view key) { return e[key].error() == simdjson::SUCCESS; }

// Encodes groups into a fresh batch and returns the document (empty when nothing was written).
struct Batch {
  explicit Batch(std::size_t capacity = 1 << 20, EncoderLimits limits = {})
      : buffer(capacity), encoder(limits) {
    encoder.begin(buffer, capacity);
  }
  append_result add(const ResourceView& r, const ScopeView& s, std::span<const SpanView> spans) {
    return encoder.append(r, s, spans);
  }
  std::string finish() { return std::string(encoder.finish()); }
  std::vector<char> buffer;
  OtlpJsonEncoder encoder;
};

element parse(simdjson::dom::parser& parser, const std::string& json) {
  EXPECT_TRUE(simdjson::validate_utf8(json.data(), json.size())) << json;
  element doc;
  const auto err = parser.parse(json).get(doc);
  EXPECT_EQ(err, simdjson::SUCCESS) << simdjson::error_message(err) << "\n" << json;
  return doc;
}

// Compares one parsed AnyValue with the value that went in (valid UTF-8 strings only).
void expect_value(element v, const AttributeValue& want) {
  switch (want.type()) {
    case ValueType::empty:
      EXPECT_EQ(object(v).size(), 0u);
      break;
    case ValueType::string:
      EXPECT_EQ(std::string_view(v["stringValue"]), want.as_string());
      break;
    case ValueType::boolean:
      EXPECT_EQ(bool(v["boolValue"]), want.as_bool());
      break;
    case ValueType::int64:
      // proto3 JSON: int64 is a decimal string.
      EXPECT_EQ(std::string_view(v["intValue"]), std::to_string(want.as_int64()));
      break;
    case ValueType::float64: {
      const double d = want.as_double();
      if (std::isnan(d)) {
        EXPECT_EQ(std::string_view(v["doubleValue"]), "NaN");
      } else if (std::isinf(d)) {
        EXPECT_EQ(std::string_view(v["doubleValue"]), d > 0 ? "Infinity" : "-Infinity");
      } else {
        const double got = v["doubleValue"].get_double();  // also accepts integers ("0")
        EXPECT_EQ(std::memcmp(&got, &d, sizeof d), 0) << got << " vs " << d;
      }
      break;
    }
    default: {
      std::vector<element> values;
      element arr_obj = v["arrayValue"];
      if (has_field(arr_obj, "values"))
        for (element e : array(arr_obj["values"])) values.push_back(e);
      std::size_t n = 0;
      switch (want.type()) {
        case ValueType::string_array: n = want.as_strings().size(); break;
        case ValueType::bool_array: n = want.as_bools().size(); break;
        case ValueType::int64_array: n = want.as_int64s().size(); break;
        case ValueType::float64_array: n = want.as_doubles().size(); break;
        default: break;
      }
      ASSERT_EQ(values.size(), n);
      for (std::size_t i = 0; i < n; ++i) {
        switch (want.type()) {
          case ValueType::string_array: expect_value(values[i], AttributeValue::string(want.as_strings()[i])); break;
          case ValueType::bool_array: expect_value(values[i], AttributeValue::boolean(want.as_bools()[i])); break;
          case ValueType::int64_array: expect_value(values[i], AttributeValue::int64(want.as_int64s()[i])); break;
          case ValueType::float64_array: expect_value(values[i], AttributeValue::float64(want.as_doubles()[i])); break;
          default: break;
        }
      }
    }
  }
}

void expect_attributes(element holder, std::span<const Attribute> want) {
  if (want.empty()) {
    EXPECT_FALSE(has_field(holder, "attributes"));
    return;
  }
  array got = holder["attributes"];
  ASSERT_EQ(got.size(), want.size());
  std::size_t i = 0;
  for (element a : got) {
    EXPECT_EQ(std::string_view(a["key"]), want[i].key);
    expect_value(a["value"], want[i].value);
    ++i;
  }
}

void expect_span(element s, const SpanView& want) {
  EXPECT_EQ(std::string_view(s["traceId"]), hex(want.trace_id.bytes.data(), 16));
  EXPECT_EQ(std::string_view(s["spanId"]), hex(want.span_id.bytes.data(), 8));
  if (want.parent_span_id.valid())
    EXPECT_EQ(std::string_view(s["parentSpanId"]), hex(want.parent_span_id.bytes.data(), 8));
  else
    EXPECT_FALSE(has_field(s, "parentSpanId"));
  if (want.name.empty())
    EXPECT_FALSE(has_field(s, "name"));
  else
    EXPECT_EQ(std::string_view(s["name"]), want.name);
  if (want.kind == SpanKind::unspecified)
    EXPECT_FALSE(has_field(s, "kind"));
  else
    EXPECT_EQ(std::int64_t(s["kind"]), static_cast<std::int64_t>(want.kind));
  EXPECT_EQ(std::string_view(s["startTimeUnixNano"]), std::to_string(want.start_unix_nano));
  EXPECT_EQ(std::string_view(s["endTimeUnixNano"]), std::to_string(want.end_unix_nano));
  expect_attributes(s, want.attributes);
  if (want.status_code == StatusCode::unset && want.status_message.empty()) {
    EXPECT_FALSE(has_field(s, "status"));
  } else {
    element st = s["status"];
    if (want.status_code == StatusCode::unset)
      EXPECT_FALSE(has_field(st, "code"));
    else
      EXPECT_EQ(std::int64_t(st["code"]), static_cast<std::int64_t>(want.status_code));
    if (want.status_message.empty())
      EXPECT_FALSE(has_field(st, "message"));
    else
      EXPECT_EQ(std::string_view(st["message"]), want.status_message);
  }
}

// Many canonical requests, one group each: one resourceSpans per request, every field back.
void round_trip_workload(bool content) {
  workload::SpanGenerator gen(7, content);
  std::vector<std::unique_ptr<workload::SpanRequest>> reqs;
  Batch batch(4 << 20);
  for (int i = 0; i < 200; ++i) {
    reqs.push_back(std::make_unique<workload::SpanRequest>());
    gen.next(*reqs.back());
    ASSERT_EQ(batch.add(reqs.back()->resource(), reqs.back()->scope(), reqs.back()->spans()),
              append_result::ok);
  }
  EXPECT_EQ(batch.encoder.span_count(), reqs.size());
  const std::string json = batch.finish();
  EXPECT_EQ(json.size(), batch.encoder.size_bytes());
  simdjson::dom::parser parser;
  element doc = parse(parser, json);
  array rs = doc["resourceSpans"];
  ASSERT_EQ(rs.size(), reqs.size());
  std::size_t i = 0;
  for (element r : rs) {
    const workload::SpanRequest& req = *reqs[i++];
    expect_attributes(r["resource"], req.resource().attributes);
    array ss = r["scopeSpans"];
    ASSERT_EQ(ss.size(), 1u);
    element scope_spans = ss.at(0);
    EXPECT_EQ(std::string_view(scope_spans["scope"]["name"]), "tracecast");
    EXPECT_EQ(std::string_view(scope_spans["scope"]["version"]), "0.1.0");
    array spans = scope_spans["spans"];
    ASSERT_EQ(spans.size(), 1u);
    expect_span(spans.at(0), req.span);
  }
  const EncoderStats& st = batch.encoder.stats();
  EXPECT_EQ(st.invalid_utf8_replaced, 0u);
  EXPECT_EQ(st.values_truncated, 0u);
  EXPECT_EQ(st.duplicate_keys_skipped, 0u);
}

TEST(OtlpJsonEncoder, CanonicalRequestsRoundTripThroughAJsonParser) { round_trip_workload(false); }

TEST(OtlpJsonEncoder, ContentVariantRoundTripsWithEscapesAndNonAscii) { round_trip_workload(true); }

TEST(OtlpJsonEncoder, CanonicalSpanIsAbout1To2KilobytesOfJson) {
  workload::SpanGenerator gen(1);
  workload::SpanRequest req;
  gen.next(req);
  Batch batch;
  ASSERT_EQ(batch.add(req.resource(), req.scope(), req.spans()), append_result::ok);
  const std::string json = batch.finish();
  EXPECT_GT(json.size(), 1000u);
  EXPECT_LT(json.size(), 2000u);
}

TEST(Workload, SameSeedGivesTheSameRequestsWithoutAllocating) {
  auto encode_n = [](std::uint64_t seed, bool content) {
    workload::SpanGenerator gen(seed, content);
    workload::SpanRequest req;
    std::vector<char> buffer(1 << 20);
    OtlpJsonEncoder enc;
    enc.begin(buffer, buffer.size());
    test::AllocationScope scope;
    for (int i = 0; i < 100; ++i) {
      gen.next(req);
      EXPECT_EQ(enc.append(req.resource(), req.scope(), req.spans()), append_result::ok);
    }
    EXPECT_EQ(scope.count(), 0u);
    return std::string(enc.finish());
  };
  EXPECT_EQ(encode_n(1, false), encode_n(1, false));
  EXPECT_NE(encode_n(1, false), encode_n(2, false));
  const std::string content = encode_n(1, true);
  EXPECT_NE(content.find("gen_ai.prompt"), std::string::npos);
  EXPECT_NE(content.find("\\\""), std::string::npos);  // an escaped backslash then a quote
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

TEST(OtlpJsonEncoder, TrickyScalarValuesRoundTrip) {
  std::string controls;
  for (int c = 0; c < 0x20; ++c) controls += static_cast<char>(c);
  controls += "\"\\/\x7f end";
  const std::string_view strs[] = {"", "a\"b", "x\\y", "ünïcödé 🚀"};
  const bool bools[] = {true, false};
  const std::int64_t ints[] = {std::numeric_limits<std::int64_t>::min(), 0, -1,
                               std::numeric_limits<std::int64_t>::max()};
  const double dbls[] = {0.1, -0.0, 1e300, 5e-324, std::numeric_limits<double>::quiet_NaN(),
                         -std::numeric_limits<double>::infinity(), 123456789.0};
  const Attribute attrs[] = {
      {"empty.string", AttributeValue::string("")},
      {"controls", AttributeValue::string(controls)},
      {"", AttributeValue::string("empty key")},
      {"k\"ey\n", AttributeValue::boolean(false)},
      {"int.min", AttributeValue::int64(std::numeric_limits<std::int64_t>::min())},
      {"int.max", AttributeValue::int64(std::numeric_limits<std::int64_t>::max())},
      {"int.zero", AttributeValue::int64(0)},
      {"nan", AttributeValue::float64(std::numeric_limits<double>::quiet_NaN())},
      {"inf", AttributeValue::float64(std::numeric_limits<double>::infinity())},
      {"-inf", AttributeValue::float64(-std::numeric_limits<double>::infinity())},
      {"tenth", AttributeValue::float64(0.1)},
      {"denormal", AttributeValue::float64(5e-324)},
      {"big", AttributeValue::float64(1.7976931348623157e308)},
      {"negzero", AttributeValue::float64(-0.0)},
      {"huge.integral", AttributeValue::float64(-3.8073678280468062e19)},  // beyond int64
      {"big.integral", AttributeValue::float64(9007199254740993.0)},
      {"strs", AttributeValue::strings(strs)},
      {"bools", AttributeValue::bools(bools)},
      {"ints", AttributeValue::int64s(ints)},
      {"dbls", AttributeValue::float64s(dbls)},
      {"empty.arr", AttributeValue::strings({})},
  };
  const Attribute res[] = {{"service.name", AttributeValue::string("svc")}};
  SpanView span = basic_span(attrs);
  span.status_code = StatusCode::error;
  span.status_message = "bad \"thing\"\n";
  Batch batch;
  ASSERT_EQ(batch.add(ResourceView{res}, k_scope, {&span, 1}), append_result::ok);
  const std::string json = batch.finish();
  simdjson::dom::parser parser;
  element doc = parse(parser, json);
  element s = doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"].at(0);
  expect_span(s, span);
  // Spot-check the literal forms the proto3 JSON mapping requires.
  EXPECT_NE(json.find(R"({"key":"int.min","value":{"intValue":"-9223372036854775808"}})"), std::string::npos);
  EXPECT_NE(json.find(R"({"key":"nan","value":{"doubleValue":"NaN"}})"), std::string::npos);
  EXPECT_NE(json.find(R"({"key":"empty.arr","value":{"arrayValue":{}}})"), std::string::npos);
  EXPECT_NE(json.find(R"("endTimeUnixNano":"18446744073709551615")"), std::string::npos);
  EXPECT_NE(json.find(R"(\u0000\u0001)"), std::string::npos);
  EXPECT_NE(json.find(R"(\b\t\n\u000b\f\r)"), std::string::npos);
}

TEST(OtlpJsonEncoder, DefaultValuedFieldsAreLeftOut) {
  SpanView s;
  s.trace_id = TraceId::from_hex("00000000000000000000000000000001");
  s.span_id = SpanId::from_u64(1);
  s.kind = SpanKind::unspecified;
  Batch batch;
  ASSERT_EQ(batch.add(ResourceView{}, ScopeView{}, {&s, 1}), append_result::ok);
  EXPECT_EQ(batch.finish(),
            R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"00000000000000000000000000000001","spanId":"0000000000000001"}]}]}]})");
}

TEST(OtlpJsonEncoder, ParentStatusAndKindAreWrittenWhenSet) {
  SpanView s = basic_span({});
  s.parent_span_id = SpanId::from_hex("00f067aa0ba902b7");
  s.status_code = StatusCode::ok;
  Batch batch;
  ASSERT_EQ(batch.add(ResourceView{}, ScopeView{"n", ""}, {&s, 1}), append_result::ok);
  EXPECT_EQ(batch.finish(),
            R"({"resourceSpans":[{"scopeSpans":[{"scope":{"name":"n"},"spans":[{"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","parentSpanId":"00f067aa0ba902b7","name":"op","kind":3,"startTimeUnixNano":"1","endTimeUnixNano":"18446744073709551615","status":{"code":1}}]}]}]})");
}

struct Utf8Case {
  std::string in;
  std::string want;
  std::uint64_t replaced;
};

TEST(OtlpJsonEncoder, InvalidUtf8IsReplacedPerMaximalSubpartAndCounted) {
  const std::string fffd = "\xEF\xBF\xBD";
  const std::vector<Utf8Case> cases = {
      {"ok \xC3\xA9", "ok \xC3\xA9", 0},
      {"lone lead \xC3", "lone lead " + fffd, 1},
      {"\xC0\xAF overlong slash", fffd + fffd + " overlong slash", 2},
      {"\xE0\x80\xAF overlong3", fffd + fffd + fffd + " overlong3", 3},
      {"\xED\xA0\x80 lone high surrogate", fffd + fffd + fffd + " lone high surrogate", 3},
      {"\xED\xBF\xBF lone low surrogate", fffd + fffd + fffd + " lone low surrogate", 3},
      {"\xF4\x90\x80\x80 above max", fffd + fffd + fffd + fffd + " above max", 4},
      {"\xE2\x82 truncated euro", fffd + " truncated euro", 1},
      {"\xF0\x9F\x9A truncated rocket", fffd + " truncated rocket", 1},
      {"\xFF\xFE", fffd + fffd, 2},
      {"\x80", fffd, 1},
      // Long enough for the 16-byte path, invalid byte after valid non-ASCII.
      {"0123456789abcdef\xC3\xA9 then bad \xC3 x 0123456789abcdef",
       "0123456789abcdef\xC3\xA9 then bad " + fffd + " x 0123456789abcdef", 1},
  };
  for (const Utf8Case& c : cases) {
    const Attribute attrs[] = {{"v", AttributeValue::string(c.in)}};
    SpanView s = basic_span(attrs);
    Batch batch;
    ASSERT_EQ(batch.add(ResourceView{}, k_scope, {&s, 1}), append_result::ok);
    const std::string json = batch.finish();
    simdjson::dom::parser parser;
    element doc = parse(parser, json);
    element v = doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"].at(0)["attributes"].at(0)["value"];
    EXPECT_EQ(std::string_view(v["stringValue"]), c.want) << c.in;
    EXPECT_EQ(batch.encoder.stats().invalid_utf8_replaced, c.replaced) << c.in;
  }
}

TEST(OtlpJsonEncoder, LongValuesAreCutAtACodePointBoundaryAndCounted) {
  EncoderLimits limits;
  limits.max_value_bytes = 100;
  // 99 ASCII bytes then a 4-byte emoji: the cut at 100 would split it, so it goes entirely.
  const std::string value = std::string(99, 'a') + "\xF0\x9F\x9A\x80" + std::string(1000, 'b');
  const std::string exact(100, 'c');  // exactly at the limit: kept whole
  const Attribute attrs[] = {{"long", AttributeValue::string(value)},
                             {"exact", AttributeValue::string(exact)}};
  SpanView s = basic_span(attrs);
  Batch batch(1 << 16, limits);
  ASSERT_EQ(batch.add(ResourceView{}, k_scope, {&s, 1}), append_result::ok);
  const std::string json = batch.finish();
  simdjson::dom::parser parser;
  element doc = parse(parser, json);
  array got = doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"].at(0)["attributes"];
  EXPECT_EQ(std::string_view(got.at(0)["value"]["stringValue"]), std::string(99, 'a'));
  EXPECT_EQ(std::string_view(got.at(1)["value"]["stringValue"]), exact);
  EXPECT_EQ(batch.encoder.stats().values_truncated, 1u);
  EXPECT_EQ(batch.encoder.stats().invalid_utf8_replaced, 0u);
}

TEST(OtlpJsonEncoder, VeryLongValuesRoundTripWhole) {
  std::string value;
  for (int i = 0; i < 6000; ++i) value += (i % 7 == 0) ? "\xC3\xA9\"\n" : "abcdefgh";
  const Attribute attrs[] = {{"long", AttributeValue::string(value)}};
  SpanView s = basic_span(attrs);
  Batch batch;
  ASSERT_EQ(batch.add(ResourceView{}, k_scope, {&s, 1}), append_result::ok);
  simdjson::dom::parser parser;
  element doc = parse(parser, batch.finish());
  expect_span(doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"].at(0), s);
}

TEST(OtlpJsonEncoder, RandomWellFormedStringsRoundTripAtEveryLengthAndAlignment) {
  // Exercises the 32-, 16-byte and tail paths of the escaper with stops at every position.
  static constexpr std::string_view pieces[] = {"a", "bcdefgh", "\"", "\\", "\n", "\t", "\x01",
                                                "\x1f", "\x7f", "\xC3\xA9", "\xE2\x82\xAC",
                                                "\xF0\x9F\x9A\x80", "0123456789abcdef", "/"};
  workload::Rng rng(99);
  std::vector<std::string> values;
  for (int i = 0; i < 400; ++i) {
    std::string v;
    const std::size_t target = rng.next() % 300;
    const std::uint64_t ascii_only = rng.next() % 3;  // a third without non-ASCII pieces
    while (v.size() < target) {
      std::string_view piece = pieces[rng.next() % std::size(pieces)];
      if (ascii_only == 0 && static_cast<unsigned char>(piece[0]) >= 0x80) continue;
      v += piece;
    }
    values.push_back(std::move(v));
  }
  std::vector<Attribute> attrs;
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < values.size(); ++i) keys.push_back("k" + std::to_string(i));
  for (std::size_t i = 0; i < values.size(); ++i) attrs.push_back({keys[i], AttributeValue::string(values[i])});
  EncoderLimits limits;
  limits.max_attributes_per_span = 1000;
  for (std::size_t start = 0; start < attrs.size(); start += 100) {
    SpanView s = basic_span(std::span<const Attribute>(attrs).subspan(start, 100));
    Batch batch(1 << 20, limits);
    ASSERT_EQ(batch.add(ResourceView{}, k_scope, {&s, 1}), append_result::ok);
    simdjson::dom::parser parser;
    element doc = parse(parser, batch.finish());
    expect_span(doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"].at(0), s);
    EXPECT_EQ(batch.encoder.stats().invalid_utf8_replaced, 0u);
  }
}

TEST(OtlpJsonEncoder, EveryStopByteIsEscapedAtEveryPositionOfShortAndMidStrings) {
  static constexpr std::string_view stops[] = {"\"", "\\", "\x01", "\x1f", "\n", "\xC3\xA9", " ", "\x7f"};
  std::vector<std::string> values, keys;
  for (std::size_t n = 1; n <= 48; ++n)
    for (std::size_t pos = 0; pos < n; ++pos)
      for (std::string_view stop : stops) {
        std::string v(n, 'a');
        v.replace(pos, 1, stop);
        values.push_back(std::move(v));
      }
  for (std::size_t i = 0; i < values.size(); ++i) keys.push_back(values[i] + "#" + std::to_string(i));
  std::vector<Attribute> attrs;
  for (std::size_t i = 0; i < values.size(); ++i) attrs.push_back({keys[i], AttributeValue::string(values[i])});
  EncoderLimits limits;
  limits.max_attributes_per_span = 65536;
  SpanView s = basic_span(attrs);
  Batch batch(8 << 20, limits);
  ASSERT_EQ(batch.add(ResourceView{}, k_scope, {&s, 1}), append_result::ok);
  simdjson::dom::parser parser;
  element doc = parse(parser, batch.finish());
  expect_span(doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"].at(0), s);
}

TEST(OtlpJsonEncoder, DuplicateKeysAreWrittenOnceFirstWins) {
  const Attribute attrs[] = {{"a", AttributeValue::int64(1)},
                             {"b", AttributeValue::int64(2)},
                             {"a", AttributeValue::int64(3)},
                             {"b", AttributeValue::string("x")},
                             {"c", AttributeValue::int64(5)}};
  // Two different ill-formed keys repair to the same text: still one key in the output.
  const Attribute res[] = {{"k\xFF", AttributeValue::int64(1)}, {"k\xFE", AttributeValue::int64(2)}};
  SpanView s = basic_span(attrs);
  Batch batch;
  ASSERT_EQ(batch.add(ResourceView{res}, k_scope, {&s, 1}), append_result::ok);
  const std::string json = batch.finish();
  simdjson::dom::parser parser;
  element doc = parse(parser, json);
  const Attribute want[] = {attrs[0], attrs[1], attrs[4]};
  expect_attributes(doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"].at(0), want);
  EXPECT_EQ(array(doc["resourceSpans"].at(0)["resource"]["attributes"]).size(), 1u);
  EXPECT_EQ(batch.encoder.stats().duplicate_keys_skipped, 3u);
}

TEST(OtlpJsonEncoder, DuplicatesInLongListsAreFoundAndTheIndexIsReusable) {
  std::vector<std::string> keys;
  for (int i = 0; i < 300; ++i) keys.push_back("key." + std::to_string(i % 100));
  std::vector<Attribute> attrs;
  for (int i = 0; i < 300; ++i) attrs.push_back({keys[static_cast<std::size_t>(i)], AttributeValue::int64(i)});
  EncoderLimits limits;
  limits.max_attributes_per_span = 1000;
  SpanView s = basic_span(attrs);
  Batch batch(1 << 20, limits);
  for (int round = 0; round < 3; ++round)  // resource and span lists share the index
    ASSERT_EQ(batch.add(ResourceView{attrs}, k_scope, {&s, 1}), append_result::ok);
  simdjson::dom::parser parser;
  element doc = parse(parser, batch.finish());
  element span = doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"].at(2);
  expect_attributes(span, std::span<const Attribute>(attrs).first(100));
  EXPECT_EQ(array(doc["resourceSpans"].at(0)["resource"]["attributes"]).size(), 100u);
  // 200 per list; the resource of rounds 2 and 3 was encoded and discarded (same resource).
  EXPECT_EQ(batch.encoder.stats().duplicate_keys_skipped, 4u * 200u);
}

TEST(OtlpJsonEncoder, AttributesOverTheLimitAreDroppedAndCounted) {
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) keys.push_back("attr." + std::to_string(i));
  std::vector<Attribute> attrs;
  for (int i = 0; i < 200; ++i) attrs.push_back({keys[static_cast<std::size_t>(i)], AttributeValue::int64(i)});
  SpanView s = basic_span(attrs);
  Batch batch;
  ASSERT_EQ(batch.add(ResourceView{}, k_scope, {&s, 1}), append_result::ok);
  simdjson::dom::parser parser;
  element doc = parse(parser, batch.finish());
  element span = doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"].at(0);
  expect_attributes(span, std::span<const Attribute>(attrs).first(128));
  EXPECT_EQ(std::int64_t(span["droppedAttributesCount"]), 72);
  EXPECT_EQ(batch.encoder.stats().attributes_dropped, 72u);
}

TEST(OtlpJsonEncoder, ValuelessAttributesAreLeftOutCountedAndSaidInTheDroppedCount) {
  // A strict receiver refuses a request holding an AnyValue with no value ({}), and with it
  // every other span of the batch: such attributes are never written.
  const Attribute attrs[] = {{"a", AttributeValue::int64(1)},
                             {"none", AttributeValue()},
                             {"b", AttributeValue::string("x")},
                             {"also.none", AttributeValue()}};
  const Attribute res[] = {{"service.name", AttributeValue::string("svc")}, {"r", AttributeValue()}};
  SpanView s = basic_span(attrs);
  Batch batch;
  ASSERT_EQ(batch.add(ResourceView{res}, k_scope, {&s, 1}), append_result::ok);
  const std::string json = batch.finish();
  EXPECT_EQ(json.find(R"("value":{})"), std::string::npos) << json;
  simdjson::dom::parser parser;
  element doc = parse(parser, json);
  element span = doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"].at(0);
  const Attribute kept[] = {attrs[0], attrs[2]};
  expect_attributes(span, kept);
  EXPECT_EQ(std::int64_t(span["droppedAttributesCount"]), 2);
  EXPECT_EQ(std::int64_t(doc["resourceSpans"].at(0)["resource"]["droppedAttributesCount"]), 1);
  EXPECT_EQ(batch.encoder.stats().empty_values_skipped, 3u);
  EXPECT_EQ(batch.encoder.stats().attributes_dropped, 0u);
}

TEST(OtlpJsonEncoder, ZeroAttributeLimitWritesOnlyTheDroppedCount) {
  EncoderLimits limits;
  limits.max_attributes_per_span = 0;
  const Attribute attrs[] = {{"a", AttributeValue::int64(1)}};
  SpanView s = basic_span(attrs);
  Batch batch(1 << 16, limits);
  ASSERT_EQ(batch.add(ResourceView{attrs}, k_scope, {&s, 1}), append_result::ok);
  simdjson::dom::parser parser;
  element doc = parse(parser, batch.finish());
  EXPECT_EQ(std::int64_t(doc["resourceSpans"].at(0)["resource"]["droppedAttributesCount"]), 1);
  element span = doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"].at(0);
  EXPECT_FALSE(has_field(span, "attributes"));
  EXPECT_EQ(std::int64_t(span["droppedAttributesCount"]), 1);
}

// fuzz_encode found it: no attribute may be written (limit 0) and the span's name was cut, so
// only the cut mark was due, and it may not be written either: the span must stay valid JSON
// (it got an empty member, ",,").
TEST(OtlpJsonEncoder, ZeroAttributeLimitWithACutNameAndNoAttributesIsValidJson) {
  EncoderLimits limits;
  limits.max_attributes_per_span = 0;
  limits.max_value_bytes = 4;
  SpanView s = basic_span({});
  s.name = "a name longer than four bytes";
  Batch batch(1 << 16, limits);
  ASSERT_EQ(batch.add(ResourceView{}, k_scope, {&s, 1}), append_result::ok);
  const std::string json = batch.finish();
  EXPECT_EQ(json.find(",,"), std::string::npos) << json;
  simdjson::dom::parser parser;
  element doc = parse(parser, json);
  element span = doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"].at(0);
  EXPECT_EQ(std::string_view(span["name"]), "a na");
  EXPECT_FALSE(has_field(span, "attributes"));
}

TEST(OtlpJsonEncoder, ConsecutiveEqualResourcesAndScopesShareEntries) {
  const Attribute r1[] = {{"service.name", AttributeValue::string("a")}};
  const Attribute r1_copy[] = {{"service.name", AttributeValue::string("a")}};  // other memory
  const Attribute r2[] = {{"service.name", AttributeValue::string("b")}};
  SpanView s = basic_span({});
  Batch batch;
  ASSERT_EQ(batch.add(ResourceView{r1}, k_scope, {&s, 1}), append_result::ok);
  ASSERT_EQ(batch.add(ResourceView{r1_copy}, k_scope, {&s, 1}), append_result::ok);
  ASSERT_EQ(batch.add(ResourceView{r1}, ScopeView{"other", ""}, {&s, 1}), append_result::ok);
  ASSERT_EQ(batch.add(ResourceView{r2}, ScopeView{"other", ""}, {&s, 1}), append_result::ok);
  ASSERT_EQ(batch.add(ResourceView{r1}, k_scope, {&s, 1}), append_result::ok);
  EXPECT_EQ(batch.encoder.span_count(), 5u);
  simdjson::dom::parser parser;
  element doc = parse(parser, batch.finish());
  array rs = doc["resourceSpans"];
  ASSERT_EQ(rs.size(), 3u);
  array ss0 = rs.at(0)["scopeSpans"];
  ASSERT_EQ(ss0.size(), 2u);
  EXPECT_EQ(array(ss0.at(0)["spans"]).size(), 2u);
  EXPECT_EQ(std::string_view(ss0.at(1)["scope"]["name"]), "other");
  EXPECT_EQ(array(ss0.at(1)["spans"]).size(), 1u);
  EXPECT_EQ(std::string_view(rs.at(1)["resource"]["attributes"].at(0)["value"]["stringValue"]), "b");
  EXPECT_EQ(array(rs.at(2)["scopeSpans"]).size(), 1u);
}

TEST(OtlpJsonEncoder, SpansWithAllZeroIdsAreSkippedAndCounted) {
  SpanView spans[3] = {basic_span({}), basic_span({}), basic_span({})};
  spans[0].trace_id = TraceId{};
  spans[2].span_id = SpanId{};
  Batch batch;
  ASSERT_EQ(batch.add(ResourceView{}, k_scope, spans), append_result::ok);
  EXPECT_EQ(batch.encoder.span_count(), 1u);
  EXPECT_EQ(batch.encoder.stats().spans_invalid_id, 2u);
  simdjson::dom::parser parser;
  element doc = parse(parser, batch.finish());
  EXPECT_EQ(array(doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"]).size(), 1u);
}

TEST(OtlpJsonEncoder, FinishWithoutSpansReturnsNothing) {
  Batch batch;
  EXPECT_TRUE(batch.encoder.finish().empty());
  EXPECT_EQ(batch.encoder.size_bytes(), 0u);
  OtlpJsonEncoder never_begun;
  SpanView s = basic_span({});
  EXPECT_EQ(never_begun.append(ResourceView{}, k_scope, {&s, 1}), append_result::too_large);
  EXPECT_TRUE(never_begun.finish().empty());
}

TEST(OtlpJsonEncoder, AppendReportsBatchFullAndTheSealedBatchStaysValid) {
  workload::SpanGenerator gen(3);
  std::vector<std::unique_ptr<workload::SpanRequest>> reqs;
  for (int i = 0; i < 40; ++i) {
    reqs.push_back(std::make_unique<workload::SpanRequest>());
    gen.next(*reqs.back());
  }
  constexpr std::size_t k_budget = 8 * 1024;
  std::vector<char> buffer(k_budget + 64, 'X');
  OtlpJsonEncoder enc;
  simdjson::dom::parser parser;
  std::size_t next = 0, batches = 0, total = 0;
  while (next < reqs.size()) {
    enc.begin(std::span<char>(buffer).first(k_budget), k_budget);
    while (next < reqs.size()) {
      const std::size_t before = enc.size_bytes();
      const append_result r = enc.append(reqs[next]->resource(), reqs[next]->scope(), reqs[next]->spans());
      if (r == append_result::batch_full) {
        EXPECT_EQ(enc.size_bytes(), before);  // nothing written
        break;
      }
      ASSERT_EQ(r, append_result::ok);
      ++next;
    }
    ASSERT_GT(enc.span_count(), 0u);
    const std::string json(enc.finish());
    EXPECT_LE(json.size(), k_budget);
    element doc = parse(parser, json);
    total += array(doc["resourceSpans"]).size();
    ++batches;
  }
  EXPECT_EQ(total, reqs.size());
  EXPECT_GE(batches, 5u);  // ~1.3 KB per span: about 6 spans per 8 KiB batch
  for (std::size_t i = k_budget; i < buffer.size(); ++i) ASSERT_EQ(buffer[i], 'X');  // never past budget
  EXPECT_EQ(enc.stats().spans_too_large, 0u);
}

TEST(OtlpJsonEncoder, SpanLargerThanTheBudgetIsDroppedAsTooLarge) {
  const std::string big(5000, 'z');
  const Attribute attrs[] = {{"big", AttributeValue::string(big)}};
  SpanView spans[2] = {basic_span({}), basic_span(attrs)};
  std::vector<char> buffer(4096);
  OtlpJsonEncoder enc;
  enc.begin(buffer, buffer.size());
  ASSERT_EQ(enc.append(ResourceView{}, k_scope, {&spans[0], 1}), append_result::ok);
  EXPECT_EQ(enc.append(ResourceView{}, k_scope, {&spans[1], 1}), append_result::batch_full);
  EXPECT_EQ(enc.stats().spans_too_large, 0u);
  enc.begin(buffer, buffer.size());
  EXPECT_EQ(enc.append(ResourceView{}, k_scope, {&spans[1], 1}), append_result::too_large);
  EXPECT_EQ(enc.stats().spans_too_large, 1u);
  EXPECT_EQ(enc.span_count(), 0u);
  EXPECT_TRUE(enc.finish().empty());
}

TEST(OtlpJsonEncoder, EveryBudgetYieldsValidJsonWithinTheBudget) {
  // Exhaustive over small budgets: the cut is never inside a string or escape.
  std::string tricky = "q\"\\\n\x01\xC3\xA9\xF0\x9F\x9A\x80\xFFtail-of-the-value-0123456789";
  const Attribute attrs[] = {{"k", AttributeValue::string(tricky)}, {"n", AttributeValue::float64(0.25)}};
  const Attribute res[] = {{"service.name", AttributeValue::string("svc")}};
  SpanView s = basic_span(attrs);
  std::vector<char> buffer(2048);
  OtlpJsonEncoder enc;
  simdjson::dom::parser parser;
  std::size_t first_fit = 0;
  for (std::size_t budget = 0; budget < 1200; ++budget) {
    enc.begin(buffer, budget);
    std::size_t n = 0;
    while (n < 5 && enc.append(ResourceView{res}, k_scope, {&s, 1}) == append_result::ok) ++n;
    const std::string json(enc.finish());
    if (n == 0) {
      EXPECT_TRUE(json.empty());
      continue;
    }
    if (first_fit == 0) first_fit = budget;
    ASSERT_LE(json.size(), budget);
    element doc = parse(parser, json);
    ASSERT_EQ(array(doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"]).size(), n);
  }
  EXPECT_GT(first_fit, 0u);
}

TEST(OtlpJsonEncoder, EverySpanIsAccountedForAcrossBatches) {
  // submitted = written in sealed batches + invalid ids + too large, with seal-and-retry.
  const std::string big(3000, 'x');
  const Attribute big_attr[] = {{"big", AttributeValue::string(big)}};
  workload::SpanGenerator gen(21);
  workload::Rng rng(5);
  std::vector<char> buffer(2048);
  OtlpJsonEncoder enc;
  simdjson::dom::parser parser;
  std::uint64_t submitted = 0, sealed = 0;
  enc.begin(buffer, buffer.size());
  auto seal = [&] {
    const std::string json(enc.finish());
    if (json.empty()) return;
    element doc = parse(parser, json);
    for (element r : array(doc["resourceSpans"]))
      for (element sc : array(r["scopeSpans"])) sealed += array(sc["spans"]).size();
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

TEST(OtlpJsonEncoder, FailedAppendDoesNotChangeStats) {
  const Attribute attrs[] = {{"bad", AttributeValue::string("\xFF\xFF")}, {"bad", AttributeValue::int64(1)}};
  SpanView s = basic_span(attrs);
  std::vector<char> buffer(150);
  OtlpJsonEncoder enc;
  enc.begin(buffer, buffer.size());
  EXPECT_EQ(enc.append(ResourceView{}, k_scope, {&s, 1}), append_result::too_large);
  EXPECT_EQ(enc.stats().invalid_utf8_replaced, 0u);
  EXPECT_EQ(enc.stats().duplicate_keys_skipped, 0u);
  EXPECT_EQ(enc.stats().spans_too_large, 1u);
}

TEST(OtlpJsonEncoder, InvalidLimitsAreRejectedAtConstruction) {
  EncoderLimits l;
  l.max_value_bytes = 2;
  EXPECT_FALSE(l.validate().empty());
  EXPECT_THROW(OtlpJsonEncoder{l}, std::invalid_argument);
  l = {};
  l.max_attributes_per_span = 1'000'000;
  EXPECT_THROW(OtlpJsonEncoder{l}, std::invalid_argument);
  EXPECT_TRUE(EncoderLimits{}.validate().empty());
}

TEST(OtlpJsonEncoder, SteadyStateAllocatesNothing) {
  for (const bool content : {false, true}) {
    workload::SpanGenerator gen(11, content);
    std::vector<std::unique_ptr<workload::SpanRequest>> reqs;
    for (int i = 0; i < 64; ++i) {
      reqs.push_back(std::make_unique<workload::SpanRequest>());
      gen.next(*reqs.back());
    }
    // A value with ill-formed UTF-8 and a duplicate key take the slow paths too.
    const Attribute odd[] = {{"x", AttributeValue::string("bad \xC3 byte \xED\xA0\x80 0123456789abcdef")},
                             {"x", AttributeValue::int64(1)}};
    SpanView odd_span = basic_span(odd);
    std::vector<char> buffer(64 * 1024);
    OtlpJsonEncoder enc;
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
    run();  // warm-up
    test::AllocationScope scope;
    run();
    EXPECT_EQ(scope.count(), 0u) << "content=" << content;
    EXPECT_GT(enc.stats().invalid_utf8_replaced, 0u);
  }
}

// Golden files: small batches written byte for byte, reviewed by hand against the OTLP spec.
// TRACECAST_UPDATE_GOLDEN=1 rewrites them from the current output (review the diff by hand).
std::string golden(const std::string& name, const std::string& actual) {
  const char* src = std::getenv("TRACECAST_SOURCE_DIR");
  const std::string path = std::string(src != nullptr ? src : TRACECAST_TEST_SOURCE_DIR) + "/tests/golden/" + name;
  if (std::getenv("TRACECAST_UPDATE_GOLDEN") != nullptr) {
    std::ofstream out(path, std::ios::binary);
    out << actual << "\n";
  }
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

TEST(OtlpJsonEncoder, MatchesGoldenFileForTwoRequestsAndAChildSpan) {
  const Attribute res_a[] = {{"service.name", AttributeValue::string("openrouter")},
                             {"service.version", AttributeValue::string("1.0.0")},
                             {"openrouter.trace.id", AttributeValue::string("gen-1700000000-abcdefgh")}};
  const Attribute res_b[] = {{"service.name", AttributeValue::string("openrouter")},
                             {"service.version", AttributeValue::string("1.0.0")},
                             {"openrouter.trace.id", AttributeValue::string("gen-1700000001-ijklmnop")}};
  const Attribute attrs_a[] = {{"gen_ai.operation.name", AttributeValue::string("chat")},
                               {"gen_ai.usage.input_tokens", AttributeValue::int64(1200)},
                               {"gen_ai.usage.cost", AttributeValue::float64(0.0042)},
                               {"gen_ai.request.stream", AttributeValue::boolean(true)}};
  const std::string_view reasons[] = {"stop", "length"};
  const Attribute attrs_child[] = {{"gen_ai.response.finish_reasons", AttributeValue::strings(reasons)},
                                   {"note", AttributeValue::string("tab\there \"q\" \xC3\xA9")}};
  SpanView a[2];
  a[0].trace_id = TraceId::from_hex("5b8efff798038103d269b633813fc60c");
  a[0].span_id = SpanId::from_hex("eee19b7ec3c1b174");
  a[0].name = "chat openai/gpt-4o";
  a[0].kind = SpanKind::client;
  a[0].start_unix_nano = 1700000000000000000ull;
  a[0].end_unix_nano = 1700000001500000000ull;
  a[0].attributes = attrs_a;
  a[1].trace_id = a[0].trace_id;
  a[1].span_id = SpanId::from_hex("eee19b7ec3c1b175");
  a[1].parent_span_id = a[0].span_id;
  a[1].name = "provider attempt";
  a[1].kind = SpanKind::internal;
  a[1].start_unix_nano = 1700000000100000000ull;
  a[1].end_unix_nano = 1700000001400000000ull;
  a[1].attributes = attrs_child;
  SpanView b;
  b.trace_id = TraceId::from_hex("5b8efff798038103d269b633813fc60d");
  b.span_id = SpanId::from_hex("0000000000000001");
  b.name = "chat anthropic/claude-3.5-sonnet";
  b.kind = SpanKind::client;
  b.status_code = StatusCode::error;
  b.status_message = "upstream provider returned 502";
  b.start_unix_nano = 1700000002000000000ull;
  b.end_unix_nano = 1700000009000000000ull;
  Batch batch;
  ASSERT_EQ(batch.add(ResourceView{res_a}, k_scope, a), append_result::ok);
  ASSERT_EQ(batch.add(ResourceView{res_b}, k_scope, {&b, 1}), append_result::ok);
  const std::string json = batch.finish();
  EXPECT_EQ(json, golden("two_requests.json", json));
}

TEST(OtlpJsonEncoder, MatchesGoldenFileForSpecialValues) {
  const std::int64_t ints[] = {std::numeric_limits<std::int64_t>::min(), 0};
  const double dbls[] = {std::numeric_limits<double>::quiet_NaN(),
                         std::numeric_limits<double>::infinity(),
                         -std::numeric_limits<double>::infinity(), 1e21, 0.1};
  const Attribute attrs[] = {{"ints", AttributeValue::int64s(ints)},
                             {"dbls", AttributeValue::float64s(dbls)},
                             {"ctl", AttributeValue::string(std::string_view("\x00\x1f\x7f", 3))},
                             {"bad", AttributeValue::string("\xC3(")},
                             {"ints", AttributeValue::int64(7)},
                             {"none", AttributeValue()}};
  SpanView s;
  s.trace_id = TraceId::from_hex("ffffffffffffffffffffffffffffffff");
  s.span_id = SpanId::from_hex("ffffffffffffffff");
  s.kind = SpanKind::server;
  s.status_message = "message without code";
  s.attributes = attrs;
  Batch batch;
  ASSERT_EQ(batch.add(ResourceView{}, ScopeView{"", "1"}, {&s, 1}), append_result::ok);
  const std::string json = batch.finish();
  EXPECT_EQ(json, golden("special_values.json", json));
}

}  // namespace
}  // namespace tracecast
