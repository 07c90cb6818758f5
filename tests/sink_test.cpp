// tracecast-sink: the OTLP/HTTP JSON receiver seen from a client on 127.0.0.1 (each endpoint,
// encoding and fault flag), and its OTLP reader in-process (validation reasons, the
// --spans-out line format, no allocation per span).
#include <gtest/gtest.h>
#include <simdjson.h>
#include <zlib.h>
#include <zstd.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "alloc_counter.h"
#include "otlp_protobuf.h"
#include "otlp_reader.h"
#include "sink_config.h"
#include "sink_process.h"
#include "tracecast/otlp_json.h"
#include "tracecast/otlp_protobuf.h"

namespace tracecast::test {
namespace {

using namespace std::chrono_literals;

std::string example_trace() {
  const char* src = std::getenv("TRACECAST_SOURCE_DIR");
  std::string text =
      read_file(std::string(src != nullptr ? src : ".") + "/../shared/reference/otlp-examples/trace.json");
  if (text.empty()) text = read_file("/work/shared/reference/otlp-examples/trace.json");
  return text;
}

// A canonical-workload-like request: `spans` spans of one resource (service openrouter),
// model i % 3.
std::string workload_body(int spans, std::string_view service = "openrouter") {
  static const char* k_models[] = {"openai/gpt-4o", "anthropic/claude-3.5-sonnet", "meta/llama-3"};
  std::string b = R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":")";
  b += service;
  b += R"("}},{"key":"service.version","value":{"stringValue":"1.0.0"}}]},"scopeSpans":[{"scope":{"name":"tracecast","version":"0.1.0"},"spans":[)";
  for (int i = 0; i < spans; ++i) {
    if (i > 0) b += ',';
    char ids[80];
    std::snprintf(ids, sizeof ids, R"("traceId":"%032x","spanId":"%016x")", i + 1, i + 1);
    b += '{';
    b += ids;
    b += R"(,"name":"chat","kind":3,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000001000000000","attributes":[)";
    b += R"({"key":"gen_ai.request.model","value":{"stringValue":")";
    b += k_models[i % 3];
    b += R"("}},{"key":"gen_ai.usage.input_tokens","value":{"intValue":")" + std::to_string(10 + i) +
         R"("}},{"key":"gen_ai.usage.cost","value":{"doubleValue":0.0042}}],"status":{}})";
  }
  b += "]}]}]}";
  return b;
}

std::string gzip(std::string_view in) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, in.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

std::string zstd(std::string_view in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  const std::size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
  EXPECT_EQ(ZSTD_isError(n), 0U);
  out.resize(n);
  return out;
}

std::string rpc_message(const HttpResponse& r) {
  simdjson::dom::parser p;
  std::string_view msg;
  simdjson::dom::element doc;
  if (p.parse(r.body).get(doc) != simdjson::SUCCESS) return "<not json: " + r.body + ">";
  std::int64_t code = 0;
  EXPECT_EQ(doc["code"].get_int64().get(code), simdjson::SUCCESS) << r.body;
  if (doc["message"].get_string().get(msg) != simdjson::SUCCESS) return "<no message>";
  return std::string(msg);
}

const std::vector<std::string> k_json = {"Content-Type: application/json"};

// --- endpoints and bodies ----------------------------------------------------------------

TEST(Sink, AcceptsOfficialExampleTraceOnBothPathsAndCountsByService) {
  SinkProcess sink;
  const std::string body = example_trace();
  ASSERT_FALSE(body.empty()) << "reference/otlp-examples/trace.json not found";
  EXPECT_EQ(post_json(sink.port(), body).status, 200);
  EXPECT_EQ(post_json(sink.port(), body, {}, "/otlp/v1/traces").status, 200);
  const HttpResponse r = http_request(sink.port(), "POST", "/v1/traces",
                                      {"Content-Type: application/json; charset=utf-8"}, body);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{}");
  EXPECT_EQ(r.header("content-type"), "application/json");
  const SinkStats s = sink.stats();
  EXPECT_EQ(s.requests, 3U);
  EXPECT_EQ(s.spans, 3U);
  EXPECT_EQ(s.by_service, (std::map<std::string, std::uint64_t>{{"my.service", 3}}));
  EXPECT_EQ(s.status(200), 3U);
  EXPECT_EQ(s.bytes, 3 * body.size());
  EXPECT_EQ(s.invalid, 0U);
}

TEST(Sink, DecodesGzipDeflateAndZstdBodies) {
  SinkProcess sink;
  const std::string body = workload_body(10);
  const HttpResponse g = post_json(sink.port(), gzip(body), {"Content-Encoding: gzip"});
  EXPECT_EQ(g.status, 200) << g.body;
  const HttpResponse z = post_json(sink.port(), zstd(body), {"Content-Encoding: zstd"});
  EXPECT_EQ(z.status, 200) << z.body;
  uLongf n = compressBound(body.size());
  std::string zl(n, '\0');
  ASSERT_EQ(compress2(reinterpret_cast<Bytef*>(zl.data()), &n,
                      reinterpret_cast<const Bytef*>(body.data()), body.size(), 6),
            Z_OK);
  zl.resize(n);
  const HttpResponse d = post_json(sink.port(), zl, {"Content-Encoding: deflate"});
  EXPECT_EQ(d.status, 200) << d.body;
  const SinkStats s = sink.stats();
  EXPECT_EQ(s.spans, 30U);
  EXPECT_EQ(s.bytes_decompressed, 3 * body.size());
  EXPECT_EQ(s.by_service.at("openrouter"), 30U);
}

TEST(Sink, AnswersBadRequestWithTheFieldAndReasonForBodiesThatAreNotOtlp) {
  SinkProcess sink;
  struct Case {
    std::string body;
    std::string reason;  // expected substring of the message
  };
  const std::string span_prefix = R"({"resourceSpans":[{"scopeSpans":[{"spans":[)";
  const std::string span_suffix = "]}]}]}";
  const std::string ok_ids = R"("traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174",)"
                             R"("startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000000000001")";
  const std::string ok_ids_only = R"("traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174")";
  const std::vector<Case> cases = {
      {"this is not json", "body is not valid JSON"},
      {"[1,2,3]", "body is not a JSON object"},
      {R"({"resourceSpans":{}})", "resourceSpans: expected an array"},
      {R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"spanId":"eee19b7ec3c1b174"}]}]}]})",
       "resourceSpans[0].scopeSpans[0].spans[0].traceId: missing"},
      {span_prefix + R"({"traceId":"5b8efff798038103d269b633813fc60","spanId":"eee19b7ec3c1b174"})" + span_suffix,
       "spans[0].traceId: not 32 hex digits"},
      {span_prefix + "{" + ok_ids + "}," + R"({"traceId":"00000000000000000000000000000000","spanId":"eee19b7ec3c1b174"})" + span_suffix,
       "spans[1].traceId: all-zero traceId is invalid"},
      {span_prefix + R"({"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b17g"})" + span_suffix,
       "spans[0].spanId: not 16 hex digits"},
      {span_prefix + "{" + ok_ids + R"(,"name":7})" + span_suffix, "spans[0].name: expected a string"},
      {span_prefix + "{" + ok_ids_only + R"(,"startTimeUnixNano":"12x","endTimeUnixNano":"13"})" + span_suffix,
       "spans[0].startTimeUnixNano: expected a decimal uint64"},
      // What the strictest receivers refuse (and with it every other span of the request).
      {span_prefix + "{" + ok_ids_only + R"(,"endTimeUnixNano":"13"})" + span_suffix,
       "spans[0].startTimeUnixNano: missing (required, non-zero)"},
      {span_prefix + "{" + ok_ids_only + R"(,"startTimeUnixNano":"13"})" + span_suffix,
       "spans[0].endTimeUnixNano: missing (required, non-zero)"},
      {span_prefix + "{" + ok_ids_only + R"(,"startTimeUnixNano":"0","endTimeUnixNano":"13"})" + span_suffix,
       "spans[0].startTimeUnixNano: zero (required, non-zero)"},
      {span_prefix + "{" + ok_ids_only + R"(,"startTimeUnixNano":13,"endTimeUnixNano":0})" + span_suffix,
       "spans[0].endTimeUnixNano: zero (required, non-zero)"},
      {span_prefix + "{" + ok_ids_only + R"(,"startTimeUnixNano":"14","endTimeUnixNano":"13"})" + span_suffix,
       "spans[0].endTimeUnixNano: before startTimeUnixNano"},
      {span_prefix + "{" + ok_ids + R"(,"kind":6})" + span_suffix, "spans[0].kind: enum value not one of 0..5"},
      {span_prefix + "{" + ok_ids + R"(,"kind":-1})" + span_suffix, "spans[0].kind: enum value not one of 0..5"},
      {span_prefix + "{" + ok_ids + R"(,"status":{"code":3}})" + span_suffix,
       "spans[0].status.code: enum value not one of 0..2"},
      {span_prefix + "{" + ok_ids + R"(,"attributes":[{"key":"a","value":{}}]})" + span_suffix,
       "spans[0].attributes[0].value: empty AnyValue"},
      {span_prefix + "{" + ok_ids + R"(,"attributes":[{"key":"a","value":null}]})" + span_suffix,
       "spans[0].attributes[0].value: missing or null AnyValue"},
      {span_prefix + "{" + ok_ids + R"(,"attributes":[{"key":"a"}]})" + span_suffix,
       "spans[0].attributes[0]: missing value"},
      {span_prefix + "{" + ok_ids + R"(,"attributes":[{"key":"a","value":{"arrayValue":{"values":[{"intValue":"1"},{}]}}}]})" + span_suffix,
       "spans[0].attributes[0].value.arrayValue.values[1]: empty AnyValue"},
      {R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{}}]}}]})",
       "resourceSpans[0].resource.attributes[0].value: empty AnyValue"},
      {span_prefix + "{" + ok_ids + R"(,"parentSpanId":"0000000000000000"})" + span_suffix,
       "spans[0].parentSpanId: all-zero parentSpanId is invalid"},
      {span_prefix + "{" + ok_ids + R"(,"kind":"SPAN_KIND_BOGUS"})" + span_suffix, "spans[0].kind: unknown enum name"},
      {span_prefix + "{" + ok_ids + R"(,"attributes":[{"key":"a","value":{"stringValue":"x","intValue":"1"}}]})" + span_suffix,
       "spans[0].attributes[0].value: more than one of"},
      {span_prefix + "{" + ok_ids + R"(,"attributes":[{"key":"a","value":{"intValue":"one"}}]})" + span_suffix,
       "spans[0].attributes[0].value.intValue: expected a decimal int64"},
      {span_prefix + "{" + ok_ids + R"(,"attributes":[{"value":{"intValue":1}}]})" + span_suffix,
       "spans[0].attributes[0]: missing key"},
      {R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"boolValue":"yes"}}]}}]})",
       "resourceSpans[0].resource.attributes[0].value.boolValue: expected true or false"},
  };
  for (const Case& c : cases) {
    const HttpResponse r = post_json(sink.port(), c.body);
    EXPECT_EQ(r.status, 400) << c.body;
    EXPECT_NE(rpc_message(r).find(c.reason), std::string::npos)
        << "body: " << c.body << "\nmessage: " << rpc_message(r) << "\nexpected: " << c.reason;
  }
  const SinkStats s = sink.stats();
  EXPECT_EQ(s.invalid, cases.size());
  EXPECT_EQ(s.status(400), cases.size());
  EXPECT_EQ(s.spans, 0U) << "a rejected body counts no span, even its valid ones";
}

// The same spans through both encoders: `n` spans of one resource, models cycling over three.
struct EncodedBodies {
  std::string json, protobuf;
};
EncodedBodies encoded_bodies(int n, std::string_view service) {
  static const char* k_models[] = {"openai/gpt-4o", "anthropic/claude-3.5-sonnet", "meta/llama-3"};
  const Attribute res[] = {{"service.name", AttributeValue::string(service)},
                           {"service.version", AttributeValue::string("1.0.0")}};
  std::vector<std::array<Attribute, 3>> attrs(static_cast<std::size_t>(n));
  std::vector<SpanView> spans(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto& a = attrs[static_cast<std::size_t>(i)];
    a = {Attribute{"gen_ai.request.model", AttributeValue::string(k_models[i % 3])},
         Attribute{"gen_ai.usage.input_tokens", AttributeValue::int64(100 + i)},
         Attribute{"text", AttributeValue::string("tab\there \"q\" \xC3\xA9")}};
    SpanView& s = spans[static_cast<std::size_t>(i)];
    s.trace_id = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c");
    s.span_id = SpanId::from_u64(static_cast<std::uint64_t>(i) + 1);
    s.name = "chat";
    s.kind = SpanKind::client;
    s.start_unix_nano = 1700000000000000000ull;
    s.end_unix_nano = 1700000001000000000ull;
    s.attributes = a;
  }
  std::vector<char> buf(1 << 20);
  EncodedBodies out;
  OtlpJsonEncoder json;
  json.begin(buf, buf.size());
  EXPECT_EQ(json.append(ResourceView{res}, ScopeView{"tracecast", "0.1.0"}, spans), append_result::ok);
  out.json = std::string(json.finish());
  OtlpProtobufEncoder pb;
  pb.begin(buf, buf.size());
  EXPECT_EQ(pb.append(ResourceView{res}, ScopeView{"tracecast", "0.1.0"}, spans), append_result::ok);
  out.protobuf = std::string(pb.finish());
  return out;
}

const std::vector<std::string> k_protobuf = {"Content-Type: application/x-protobuf"};

TEST(Sink, CountsProtobufBodiesExactlyLikeTheSameSpansInJsonAndAnswersInProtobuf) {
  SinkProcess sink({"--count-by", "gen_ai.request.model"});
  const EncodedBodies b = encoded_bodies(7, "openrouter");
  HttpResponse r = http_request(sink.port(), "POST", "/v1/traces", k_protobuf, b.protobuf);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "");  // an empty ExportTraceServiceResponse: full success
  EXPECT_EQ(r.header("content-type"), "application/x-protobuf");
  const SinkStats after_pb = sink.stats();
  EXPECT_EQ(after_pb.spans, 7U);
  std::vector<std::string> gz = k_protobuf;
  gz.push_back("Content-Encoding: gzip");
  EXPECT_EQ(http_request(sink.port(), "POST", "/v1/traces", gz, gzip(b.protobuf)).status, 200);
  EXPECT_EQ(post_json(sink.port(), b.json).status, 200);
  const SinkStats s = sink.stats();
  EXPECT_EQ(s.spans, 21U);
  EXPECT_EQ(s.invalid, 0U);
  EXPECT_EQ(s.by_service, (std::map<std::string, std::uint64_t>{{"openrouter", 21}}));
  // Each encoding counted the same 7 spans the same way: 3 x (3, 2, 2).
  EXPECT_EQ(s.by_attribute.at("gen_ai.request.model"),
            (std::map<std::string, std::uint64_t>{{"openai/gpt-4o", 9}, {"anthropic/claude-3.5-sonnet", 6},
                                                  {"meta/llama-3", 6}}));
  EXPECT_EQ(after_pb.by_attribute.at("gen_ai.request.model").at("openai/gpt-4o"), 3U);
}

TEST(OtlpProtobufSink, TranscodesToTheJsonTheReaderCountsAndRefusesBadWireData) {
  const EncodedBodies b = encoded_bodies(3, "svc");
  std::string json, error;
  ASSERT_TRUE(sink::protobuf_to_json(b.protobuf, json, error)) << error;
  sink::OtlpTraceReader reader({}, true);
  json.resize(json.size() + sink::OtlpTraceReader::k_padding);
  ASSERT_TRUE(reader.read(json.data(), json.size() - sink::OtlpTraceReader::k_padding)) << reader.error();
  EXPECT_EQ(reader.span_count(), 3U);
  // The --spans-out lines of the protobuf body equal those of the same spans sent as JSON.
  const std::string pb_lines(reader.lines());
  std::string j = b.json;
  j.resize(j.size() + sink::OtlpTraceReader::k_padding);
  ASSERT_TRUE(reader.read(j.data(), b.json.size()));
  EXPECT_EQ(pb_lines, std::string(reader.lines()));

  struct Bad {
    std::string body;
    std::string reason;
  };
  using namespace std::string_literals;
  const Bad cases[] = {
      {b.protobuf.substr(0, b.protobuf.size() - 3), "length beyond the end"},
      {"\x0b\x00"s, "groups are not used"},
      {"\x08\x01"s, "resourceSpans: wire type 0, expected 2"},
      {"\x0a\x07\x12\x05\x12\x03\x2a\x01\xff"s, "resourceSpans[0].scopeSpans[0].spans[0].name: invalid UTF-8"},
      {"\x0a"s, "truncated length"},
      {"\x0a\x05\x12\x03\x12\x01\x80"s, "truncated or overlong tag"},
  };
  for (const Bad& c : cases) {
    EXPECT_FALSE(sink::protobuf_to_json(c.body, json, error)) << c.reason;
    EXPECT_NE(error.find(c.reason), std::string::npos) << error << " / want " << c.reason;
  }
  // Well-formed wire data that is not a valid span (a 3-byte trace id) fails in the reader.
  ASSERT_TRUE(sink::protobuf_to_json("\x0a\x0b\x12\x09\x12\x07\x0a\x03\x01\x02\x03\x12\x00"s, json, error)) << error;
  json.resize(json.size() + sink::OtlpTraceReader::k_padding);
  EXPECT_FALSE(reader.read(json.data(), json.size() - sink::OtlpTraceReader::k_padding));
  EXPECT_NE(std::string(reader.error()).find("traceId"), std::string::npos) << reader.error();
}

TEST(Sink, AnswersBadProtobufWith400InProtobufAndPartialSuccessInProtobuf) {
  SinkProcess sink({"--partial-success", "2", "--partial-message", "quota"});
  using namespace std::string_literals;
  HttpResponse r = http_request(sink.port(), "POST", "/v1/traces", k_protobuf, "\x0a\x09\x01"s);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.header("content-type"), "application/x-protobuf");
  // google.rpc.Status { code = 3 (INVALID_ARGUMENT), message = "protobuf: ..." }
  ASSERT_GE(r.body.size(), 4U);
  EXPECT_EQ(r.body.substr(0, 3), "\x08\x03\x12"s);
  EXPECT_NE(r.body.find("protobuf: length beyond the end"), std::string::npos) << r.body;
  const EncodedBodies b = encoded_bodies(5, "openrouter");
  r = http_request(sink.port(), "POST", "/v1/traces", k_protobuf, b.protobuf);
  ASSERT_EQ(r.status, 200);
  // ExportTraceServiceResponse { partial_success { rejected_spans: 2, error_message: "quota" } }
  EXPECT_EQ(r.body, "\x0a\x09\x08\x02\x12\x05quota"s);
  const SinkStats s = sink.stats();
  EXPECT_EQ(s.spans, 5U);
  EXPECT_EQ(s.rejected_spans, 2U);
  EXPECT_EQ(s.invalid, 1U);
}

TEST(Sink, AnswersUnsupportedMediaTypeForOtherTypesAndUnknownEncodings) {
  SinkProcess sink;
  const std::string body = example_trace();
  HttpResponse r = http_request(sink.port(), "POST", "/v1/traces",
                                {"Content-Type: application/xml"}, body);
  EXPECT_EQ(r.status, 415);
  EXPECT_NE(rpc_message(r).find("application/x-protobuf"), std::string::npos);
  r = post_json(sink.port(), body, {"Content-Encoding: br"});
  EXPECT_EQ(r.status, 415);
  EXPECT_NE(rpc_message(r).find("Content-Encoding"), std::string::npos);
  r = post_json(sink.port(), "garbage", {"Content-Encoding: gzip"});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(sink.stats().status(415), 2U);
}

TEST(Sink, AnswersNotFoundForOtherPathsAndMethodNotAllowedForGetOnTraces) {
  SinkProcess sink;
  EXPECT_EQ(post_json(sink.port(), example_trace(), {}, "/v1/logs").status, 404);
  const HttpResponse r = http_request(sink.port(), "GET", "/v1/traces");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("allow"), "POST");
  EXPECT_EQ(http_request(sink.port(), "GET", "/healthz").status, 200);
  const SinkStats s = sink.stats();
  EXPECT_EQ(s.status(404), 1U);
  EXPECT_EQ(s.status(405), 1U);
}

TEST(Sink, AnswersPayloadTooLargeAboveMaxBodyOnTheWireAndDecompressed) {
  SinkProcess sink({"--max-body", "4096"});
  const std::string big = workload_body(40);  // > 4 KiB as JSON
  ASSERT_GT(big.size(), 4096U);
  EXPECT_EQ(post_json(sink.port(), big).status, 413);
  // A small gzip body that inflates past the cap (decompression bomb guard).
  const std::string bomb = gzip(std::string(1 << 20, ' '));
  ASSERT_LT(bomb.size(), 4096U);
  EXPECT_EQ(post_json(sink.port(), bomb, {"Content-Encoding: gzip"}).status, 413);
  EXPECT_EQ(post_json(sink.port(), workload_body(2)).status, 200);
  EXPECT_EQ(sink.stats().status(413), 2U);
}

TEST(Sink, KeepAliveRequestsShareOneConnection) {
  SinkProcess sink;
  HttpConnection c(sink.port());
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(c.request("POST", "/v1/traces", k_json, workload_body(3)).status, 200);
  }
  HttpConnection other(sink.port());
  EXPECT_EQ(other.request("POST", "/v1/traces", k_json, workload_body(3)).status, 200);
  const SinkStats s = sink.stats();
  EXPECT_EQ(s.requests, 6U);
  EXPECT_EQ(s.trace_connections, 2U);
  EXPECT_GE(s.connections, 3U);  // the /stats connection counts too
}

// --- counting and spans-out ----------------------------------------------------------------

TEST(Sink, CountsSpansByServiceAndByRequestedAttributes) {
  SinkProcess sink({"--count-by", "gen_ai.request.model", "--count-by", "service.version",
                    "--count-by", "absent.key"});
  EXPECT_EQ(post_json(sink.port(), workload_body(7)).status, 200);
  EXPECT_EQ(post_json(sink.port(), workload_body(2, "other")).status, 200);
  const SinkStats s = sink.stats();
  EXPECT_EQ(s.spans, 9U);
  EXPECT_EQ(s.by_service, (std::map<std::string, std::uint64_t>{{"openrouter", 7}, {"other", 2}}));
  // Models cycle through three names: 7 spans -> 3,2,2; 2 spans -> 1,1.
  EXPECT_EQ(s.by_attribute.at("gen_ai.request.model"),
            (std::map<std::string, std::uint64_t>{{"openai/gpt-4o", 4},
                                                  {"anthropic/claude-3.5-sonnet", 3},
                                                  {"meta/llama-3", 2}}));
  // A resource attribute counts when the span lacks the key.
  EXPECT_EQ(s.by_attribute.at("service.version"), (std::map<std::string, std::uint64_t>{{"1.0.0", 9}}));
  EXPECT_EQ(s.by_attribute.at("absent.key"), (std::map<std::string, std::uint64_t>{{"(none)", 9}}));
}

const char* const k_rich_request = R"({
  "resourceSpans": [
    {
      "resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "openrouter"}},
        {"key": "openrouter.trace.id", "value": {"stringValue": "req-\"1\"\n"}}]},
      "scopeSpans": [{
        "scope": {"name": "tracecast", "version": "0.1.0"},
        "spans": [
          {"traceId": "0AF7651916CD43DD8448EB211C80319C", "spanId": "B7AD6B7169203331",
           "parentSpanId": "", "name": "chat openai/gpt-4o", "kind": "SPAN_KIND_CLIENT",
           "startTimeUnixNano": 1700000000000000000, "endTimeUnixNano": "1700000002500000000",
           "status": {"code": "STATUS_CODE_ERROR", "message": "upstream 500"},
           "attributes": [
             {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1234"}},
             {"key": "n", "value": {"intValue": -7}},
             {"key": "ok", "value": {"boolValue": true}},
             {"key": "cost", "value": {"doubleValue": 0.0042}},
             {"key": "nan", "value": {"doubleValue": "NaN"}},
             {"key": "list", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "2"}]}}},
             {"key": "map", "value": {"kvlistValue": {"values": [{"key": "k", "value": {"boolValue": false}}]}}},
             {"key": "raw", "value": {"bytesValue": "aGVsbG8="}}],
           "unknownField": {"ignored": true}}
        ]}]
    },
    {
      "scopeSpans": [{"spans": [
        {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "00f067aa0ba902b7",
         "parentSpanId": "B7AD6B7169203331", "kind": 1,
         "startTimeUnixNano": "1700000000000000001", "endTimeUnixNano": "1700000000000000001"}]}]
    }
  ]
})";

TEST(Sink, WritesEverySpanAsOneExactJsonLine) {
  SinkProcess sink({"--spans-out", std::string(SinkProcess::k_temp_spans_out)});
  ASSERT_FALSE(sink.spans_out_path().empty());
  EXPECT_EQ(post_json(sink.port(), k_rich_request).status, 200);
  const SinkStats s = sink.stats();
  EXPECT_EQ(s.spans, 2U);
  EXPECT_EQ(s.by_service, (std::map<std::string, std::uint64_t>{{"openrouter", 1}, {"(none)", 1}}));
  const std::string expected =
      R"({"resource":{"service.name":"openrouter","openrouter.trace.id":"req-\"1\"\n"},)"
      R"("scope":{"name":"tracecast","version":"0.1.0"},)"
      R"("traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331",)"
      R"("name":"chat openai/gpt-4o","kind":3,"startTimeUnixNano":"1700000000000000000",)"
      R"("endTimeUnixNano":"1700000002500000000","status":{"code":2,"message":"upstream 500"},)"
      R"("attributes":{"gen_ai.usage.input_tokens":1234,"n":-7,"ok":true,"cost":0.0042,)"
      R"("nan":"NaN","list":["a",2],"map":{"k":false},"raw":"aGVsbG8="}})"
      "\n"
      R"({"resource":{},"scope":{"name":"","version":""},)"
      R"("traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"00f067aa0ba902b7",)"
      R"("parentSpanId":"b7ad6b7169203331","name":"","kind":1,"startTimeUnixNano":"1700000000000000001",)"
      R"("endTimeUnixNano":"1700000000000000001","status":{"code":0,"message":""},"attributes":{}})"
      "\n";
  EXPECT_EQ(read_file(sink.spans_out_path()), expected);
  // Every line is JSON on its own.
  std::istringstream lines(read_file(sink.spans_out_path()));
  std::string line;
  simdjson::dom::parser p;
  while (std::getline(lines, line)) {
    simdjson::dom::element e;
    EXPECT_EQ(p.parse(line).get(e), simdjson::SUCCESS) << line;
  }
}

TEST(Sink, CountOnlyModeAnswersOkWithoutParsing) {
  SinkProcess sink({"--count-only"});
  const HttpResponse r = post_json(sink.port(), "not json at all");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{}");
  const SinkStats s = sink.stats();
  EXPECT_EQ(s.requests, 1U);
  EXPECT_EQ(s.bytes, 15U);
  EXPECT_EQ(s.spans, 0U);
  EXPECT_EQ(s.invalid, 0U);
}

// --- fault injection ---------------------------------------------------------------------

TEST(SinkFaults, Answers429WithRetryAfterSecondsToTheNextNRequests) {
  SinkProcess sink({"--fail-429", "2", "--retry-after", "7"});
  const std::string body = workload_body(1);
  for (int i = 0; i < 2; ++i) {
    const HttpResponse r = post_json(sink.port(), body);
    EXPECT_EQ(r.status, 429);
    EXPECT_EQ(r.header("retry-after"), "7");
  }
  const HttpResponse ok = post_json(sink.port(), body);
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.header("retry-after"), "");
  const SinkStats s = sink.stats();
  EXPECT_EQ(s.status(429), 2U);
  EXPECT_EQ(s.status(200), 1U);
  EXPECT_EQ(s.spans, 1U) << "a 429'd body is not counted as received";
}

TEST(SinkFaults, SendsRetryAfterAsAnHttpDateWhenAsked) {
  SinkProcess sink({"--fail-429", "1", "--retry-after", "30", "--retry-after-date"});
  const std::time_t before = std::time(nullptr);
  const HttpResponse r = post_json(sink.port(), workload_body(1));
  ASSERT_EQ(r.status, 429);
  const std::string date = r.header("retry-after");
  std::tm tm{};
  ASSERT_NE(strptime(date.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm), nullptr) << date;
  const std::time_t when = timegm(&tm);
  EXPECT_GE(when, before + 29) << date;
  EXPECT_LE(when, std::time(nullptr) + 31) << date;
}

TEST(SinkFaults, Answers429WithoutRetryAfterUnlessGiven) {
  SinkProcess sink({"--fail-429", "1"});
  const HttpResponse r = post_json(sink.port(), workload_body(1));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.header("retry-after"), "");
}

TEST(SinkFaults, AnswersTheChosenStatusToTheFirstNRequests) {
  SinkProcess sink({"--fail-5xx-first", "3", "--fail-status", "504"});
  std::vector<int> got;
  for (int i = 0; i < 5; ++i) got.push_back(post_json(sink.port(), workload_body(1)).status);
  EXPECT_EQ(got, (std::vector<int>{504, 504, 504, 200, 200}));
  EXPECT_EQ(sink.stats().status(504), 3U);
}

TEST(SinkFaults, Answers503ToAnExactEvenlySpreadFraction) {
  SinkProcess sink({"--fail-503-fraction", "0.25", "--retry-after", "2", "--retry-after-on-5xx"});
  std::vector<int> got;
  for (int i = 0; i < 8; ++i) {
    const HttpResponse r = post_json(sink.port(), workload_body(1));
    got.push_back(r.status);
    if (r.status == 503) {
      EXPECT_EQ(r.header("retry-after"), "2");
    }
  }
  EXPECT_EQ(got, (std::vector<int>{200, 200, 200, 503, 200, 200, 200, 503}));
  const SinkStats s = sink.stats();
  EXPECT_EQ(s.status(503), 2U);
  EXPECT_EQ(s.spans, 6U);
}

TEST(SinkFaults, ResetsTheFirstNConnectionsWithoutAResponse) {
  SinkProcess sink({"--reset-first", "2"});
  for (int i = 0; i < 2; ++i) {
    const HttpResponse r = post_json(sink.port(), workload_body(1));
    EXPECT_EQ(r.status, 0) << r.body;
    EXPECT_FALSE(r.error.empty());
  }
  EXPECT_EQ(post_json(sink.port(), workload_body(1)).status, 200);
  const SinkStats s = sink.stats();
  EXPECT_EQ(s.resets, 2U);
  EXPECT_EQ(s.requests, 3U);
  EXPECT_EQ(s.spans, 1U);
}

TEST(SinkFaults, ResetsAFractionOfRequests) {
  SinkProcess sink({"--reset-fraction", "0.5"});
  int resets = 0;
  for (int i = 0; i < 6; ++i) {
    if (post_json(sink.port(), workload_body(1)).status == 0) ++resets;
  }
  EXPECT_EQ(resets, 3);
  EXPECT_EQ(sink.stats().resets, 3U);
}

// The sink reads its basic-auth file bounded (64 KiB, as every tool's secret file): a larger
// or endless one (/dev/zero) is refused naming the flag, never read to the end.
TEST(SinkConfig, RefusesABasicAuthFileOverTheLimit) {
  const std::string big = ::testing::TempDir() + "/tracecast_sink_big_auth";
  {
    std::ofstream out(big);
    out << "user:" << std::string(70000, 'p');
  }
  for (const std::string& file : {big, std::string("/dev/zero")}) {
    std::string flag = "--basic-auth-file";
    std::string program = "tracecast-sink";
    char* argv[] = {program.data(), flag.data(), const_cast<char*>(file.c_str()), nullptr};
    sink::SinkConfig config;
    std::string error;
    bool help = false;
    EXPECT_FALSE(sink::parse_args(3, argv, config, error, help)) << file;
    EXPECT_NE(error.find("--basic-auth-file"), std::string::npos) << error;
    EXPECT_NE(error.find("larger than 65536 bytes"), std::string::npos) << error;
    EXPECT_EQ(error.find("ppp"), std::string::npos) << error;
  }
}

TEST(SinkFaults, TakesBasicAuthFromAFileOrTheEnvironmentAndWarnsAboutArgv) {
  const std::string secret = "glc_f1le-secret";
  const std::string file = ::testing::TempDir() + "/tracecast_sink_basic_auth";
  {
    std::ofstream out(file);
    out << "123456:" << secret << "\n";
  }
  const std::string body = workload_body(1);
  const std::string good = "Authorization: Basic MTIzNDU2OmdsY19mMWxlLXNlY3JldA==";  // base64("123456:glc_f1le-secret")
  {
    SinkProcess sink({"--basic-auth-file", file});
    EXPECT_EQ(post_json(sink.port(), body).status, 401);
    EXPECT_EQ(post_json(sink.port(), body, {good}).status, 200);
    sink.stop();
    EXPECT_EQ(sink.log().find("warning"), std::string::npos);
    EXPECT_EQ(sink.log().find(secret), std::string::npos);
  }
  {
    ::setenv("TRACECAST_TEST_SINK_AUTH", ("123456:" + secret).c_str(), 1);
    SinkProcess sink({"--basic-auth-env", "TRACECAST_TEST_SINK_AUTH"});
    ::unsetenv("TRACECAST_TEST_SINK_AUTH");
    EXPECT_EQ(post_json(sink.port(), body, {good}).status, 200);
  }
  {
    SinkProcess sink({"--basic-auth", "123456:" + secret});
    sink.stop();
    EXPECT_NE(sink.log().find("visible to every local user"), std::string::npos);
    EXPECT_EQ(sink.log().find(secret), std::string::npos);
  }
  std::filesystem::remove(file);
}

TEST(SinkFaults, Answers401UnlessBasicAuthMatchesAndNeverPrintsTheSecret) {
  const std::string secret = "glc_s3cr3t-token";
  SinkProcess sink({"--basic-auth", "123456:" + secret});
  const std::string body = workload_body(1);
  HttpResponse r = post_json(sink.port(), body);
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.header("www-authenticate"), "");
  r = post_json(sink.port(), body, {"Authorization: Basic MTIzNDU2Ondyb25n"});  // 123456:wrong
  EXPECT_EQ(r.status, 401);
  EXPECT_EQ(r.body.find(secret), std::string::npos);
  // base64("123456:glc_s3cr3t-token")
  r = post_json(sink.port(), body, {"Authorization: Basic MTIzNDU2OmdsY19zM2NyM3QtdG9rZW4="});
  EXPECT_EQ(r.status, 200) << r.body;
  const SinkStats s = sink.stats();
  EXPECT_EQ(s.status(401), 2U);
  EXPECT_EQ(s.spans, 1U);
  const std::string stats_text = http_request(sink.port(), "GET", "/stats").body;
  EXPECT_EQ(stats_text.find(secret), std::string::npos);
  sink.stop();
  EXPECT_EQ(sink.log().find(secret), std::string::npos);
}

TEST(SinkFaults, AnswersPartialSuccessWithRejectedSpans) {
  SinkProcess sink({"--partial-success", "2", "--partial-message", "quota"});
  const HttpResponse r = post_json(sink.port(), workload_body(5));
  ASSERT_EQ(r.status, 200);
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  ASSERT_EQ(p.parse(r.body).get(doc), simdjson::SUCCESS) << r.body;
  std::string_view rejected;
  ASSERT_EQ(doc["partialSuccess"]["rejectedSpans"].get_string().get(rejected), simdjson::SUCCESS) << r.body;
  EXPECT_EQ(rejected, "2");
  std::string_view message;
  ASSERT_EQ(doc["partialSuccess"]["errorMessage"].get_string().get(message), simdjson::SUCCESS);
  EXPECT_EQ(message, "quota");
  // Never more rejected than sent.
  const HttpResponse one = post_json(sink.port(), workload_body(1));
  EXPECT_NE(one.body.find(R"("rejectedSpans":"1")"), std::string::npos) << one.body;
  EXPECT_EQ(sink.stats().rejected_spans, 3U);
}

TEST(SinkFaults, PartialSuccessCanCarryRejectedSpansAsANumber) {
  SinkProcess sink({"--partial-success", "1", "--partial-success-as-number"});
  const HttpResponse r = post_json(sink.port(), workload_body(3));
  EXPECT_NE(r.body.find(R"("rejectedSpans":1,)"), std::string::npos) << r.body;
}

TEST(SinkFaults, DelaysResponsesWithoutBlockingOtherConnections) {
  // One server thread: if the delay blocked it, /stats could not answer meanwhile.
  SinkProcess sink({"--threads", "1", "--delay-ms", "1500", "--delay-first", "1"});
  HttpConnection delayed(sink.port());
  const auto start = std::chrono::steady_clock::now();
  delayed.send_request("POST", "/v1/traces", k_json, workload_body(2));
  // Wait (bounded) until the sink has taken the request, then check it is held.
  SinkStats s;
  for (int i = 0; i < 500 && s.delayed == 0; ++i) {
    s = sink.stats();
    if (s.delayed == 0) std::this_thread::sleep_for(2ms);
  }
  EXPECT_EQ(s.delayed, 1U);
  EXPECT_FALSE(delayed.readable_now()) << "answered before the delay";
  // Another connection is served while the first is held.
  EXPECT_EQ(post_json(sink.port(), workload_body(1)).status, 200);
  EXPECT_FALSE(delayed.readable_now());
  const HttpResponse r = delayed.read_response(10s);
  EXPECT_EQ(r.status, 200);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 1500ms);
  EXPECT_EQ(sink.stats().spans, 3U);
}

TEST(SinkFaults, StopsPromptlyWithDelayedRequestsOutstanding) {
  SinkProcess sink({"--delay-ms", "600000"});
  HttpConnection held(sink.port());
  held.send_request("POST", "/v1/traces", k_json, workload_body(1));
  SinkStats s;
  for (int i = 0; i < 500 && s.delayed == 0; ++i) {
    s = sink.stats();
    if (s.delayed == 0) std::this_thread::sleep_for(2ms);
  }
  ASSERT_EQ(s.delayed, 1U);
  sink.stop();
  EXPECT_EQ(sink.exit_status(), 0) << sink.log();
  EXPECT_EQ(held.read_response(5s).status, 0) << "a held request is dropped at shutdown";
}

// --- process behaviour ---------------------------------------------------------------------

TEST(Sink, PrintsASummaryAndExitsZeroOnSigterm) {
  SinkProcess sink({"--count-by", "gen_ai.request.model"});
  EXPECT_EQ(post_json(sink.port(), workload_body(4)).status, 200);
  sink.stop();
  EXPECT_EQ(sink.exit_status(), 0);
  const std::string log = sink.log();
  EXPECT_NE(log.find("requests: 1\n"), std::string::npos) << log;
  EXPECT_NE(log.find("spans: 4\n"), std::string::npos) << log;
  EXPECT_NE(log.find("openrouter: 4\n"), std::string::npos) << log;
  EXPECT_NE(log.find("openai/gpt-4o: 2\n"), std::string::npos) << log;
  EXPECT_NE(log.find("200=1"), std::string::npos) << log;
}

// Span lines that cannot be written are not a quiet loss: the first failure is said on
// stderr, the summary counts them, the exit code is 1 (it was 0 with nothing said).
TEST(Sink, CountsAndReportsSpansOutWriteErrors) {
  if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no /dev/full";
  SinkProcess sink({"--spans-out", "/dev/full"});
  EXPECT_EQ(post_json(sink.port(), workload_body(2)).status, 200);
  EXPECT_EQ(post_json(sink.port(), workload_body(3)).status, 200);
  sink.stop();
  EXPECT_EQ(sink.exit_status(), 1);
  const std::string log = sink.log();
  EXPECT_NE(log.find("--spans-out /dev/full: write failed: "), std::string::npos) << log;
  EXPECT_NE(log.find("spans-out write errors: 2\n"), std::string::npos) << log;
}

TEST(Sink, RejectsUnknownFlagsWithExitCodeTwo) {
  try {
    SinkProcess sink({"--no-such-flag"});
    ADD_FAILURE() << "the sink started with an unknown flag";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("exited (2)"), std::string::npos) << what;
    EXPECT_NE(what.find("unknown option '--no-such-flag'"), std::string::npos) << what;
  }
}

// --- the reader in-process -----------------------------------------------------------------

TEST(OtlpTraceReader, ReadsARepeatedRequestWithoutHeapAllocation) {
  sink::OtlpTraceReader reader({"gen_ai.request.model"}, true);
  std::string body = workload_body(500);
  const std::size_t size = body.size();
  body.append(sink::OtlpTraceReader::k_padding, '\0');
  ASSERT_TRUE(reader.read(body.data(), size)) << reader.error();  // warm-up grows buffers
  const std::string first_lines(reader.lines());
  AllocationScope scope;
  ASSERT_TRUE(reader.read(body.data(), size)) << reader.error();
  EXPECT_EQ(scope.count(), 0U);
  EXPECT_EQ(reader.span_count(), 500U);
  EXPECT_EQ(reader.lines(), first_lines);
}

TEST(OtlpTraceReader, AcceptsAnEmptyRequestAndIgnoresUnknownFields) {
  sink::OtlpTraceReader reader({}, false);
  for (std::string body : {std::string("{}"), std::string(R"({"resourceSpans":[]})"),
                           std::string(R"({"future":[1,{"x":2}],"resourceSpans":null})")}) {
    const std::size_t size = body.size();
    body.append(sink::OtlpTraceReader::k_padding, '\0');
    EXPECT_TRUE(reader.read(body.data(), size)) << reader.error();
    EXPECT_EQ(reader.span_count(), 0U);
  }
}

// The sink's fault flags are bounded where a value would overflow: a delay of 2^64-1 ms wrapped
// the clock and answered at once; a Retry-After date past year 9999 came out as garbage.
TEST(SinkFlags, RefuseDelaysAndRetryAfterDatesTheClockCannotHold) {
  auto parse = [](std::vector<std::string> args, std::string& error) {
    args.insert(args.begin(), "tracecast-sink");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    sink::SinkConfig config;
    bool help = false;
    return sink::parse_args(static_cast<int>(argv.size()), argv.data(), config, error, help);
  };
  std::string error;
  EXPECT_TRUE(parse({"--delay-ms", "86400000"}, error)) << error;
  EXPECT_FALSE(parse({"--delay-ms", "18446744073709551615"}, error));
  EXPECT_EQ(error, "--delay-ms: at most 86400000 (24 h), got 18446744073709551615");
  EXPECT_TRUE(parse({"--retry-after", "9223372036854775807"}, error)) << error;  // seconds: a hostile answer on purpose
  EXPECT_TRUE(parse({"--retry-after", "86400", "--retry-after-date"}, error)) << error;
  EXPECT_FALSE(parse({"--retry-after", "9223372036854775807", "--retry-after-date"}, error));
  EXPECT_NE(error.find("the date must be in year 9999 or before"), std::string::npos) << error;
}

// The sink reads "--flag=value" as tracecast-check does, and a boolean flag honours
// "=false" and refuses another value instead of taking any "=..." as set.
TEST(SinkFlags, AcceptTheEqualsFormAndHonourOrRefuseABooleanValue) {
  auto parse = [](std::vector<std::string> args, sink::SinkConfig& config, std::string& error) {
    args.insert(args.begin(), "tracecast-sink");
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    bool help = false;
    return sink::parse_args(static_cast<int>(argv.size()), argv.data(), config, error, help);
  };
  std::string error;
  sink::SinkConfig config;
  ASSERT_TRUE(parse({"--fail-status=418", "--delay-ms=5", "--listen=127.0.0.1:0", "--quiet=false", "--count-only=1"},
                    config, error))
      << error;
  EXPECT_EQ(config.fail_status, 418u);
  EXPECT_EQ(config.delay_ms, 5u);
  EXPECT_FALSE(config.quiet);
  EXPECT_TRUE(config.count_only);
  sink::SinkConfig other;
  EXPECT_FALSE(parse({"--quiet=no"}, other, error));
  EXPECT_EQ(error, "--quiet takes no value, or exactly true, false, 1 or 0 (got 'no')");
  EXPECT_FALSE(parse({"--fail-status=99"}, other, error));
  EXPECT_EQ(error, "--fail-status: must be 400..599");
}

}  // namespace
}  // namespace tracecast::test
