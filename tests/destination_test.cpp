// tracecast/destination.h: validation with specific errors, resolution to the wire form,
// credentials never in messages.
#include "tracecast/destination.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

namespace tracecast {
namespace {

using ::testing::HasSubstr;

DestinationConfig grafana() {
  DestinationConfig c;
  c.kind = DestinationKind::grafana_cloud;
  c.name = "grafana";
  c.endpoint = "https://otlp-gateway-prod-eu-west-2.grafana.net";
  c.instance_id = "123456";
  c.api_key = "glc_secretTOKENvalue0123456789";
  return c;
}

const ValidationIssue* find(const std::vector<ValidationIssue>& issues, const std::string& field, bool warning) {
  for (const auto& i : issues) {
    if (i.path == field && i.warning == warning) return &i;
  }
  return nullptr;
}

void expect_no_secret(const std::vector<ValidationIssue>& issues, const std::string& secret) {
  for (const auto& i : issues) EXPECT_THAT(i.message, ::testing::Not(HasSubstr(secret))) << i.path;
}

TEST(DestinationProtocol, HttpProtobufSetsTheProtobufContentTypeAndJsonIsTheDefault) {
  DestinationConfig c = grafana();
  auto has_line = [](const ResolvedDestination& r, const std::string& line) {
    return std::find(r.header_lines.begin(), r.header_lines.end(), line) != r.header_lines.end();
  };
  for (const char* json : {"", "http/json"}) {
    c.protocol = json;
    EXPECT_FALSE(has_errors(validate(c))) << json;
    const ResolvedDestination r = resolve(c);
    EXPECT_FALSE(r.protobuf);
    EXPECT_TRUE(has_line(r, "Content-Type: application/json")) << json;
  }
  c.protocol = "http/protobuf";
  EXPECT_FALSE(has_errors(validate(c)));
  const ResolvedDestination r = resolve(c);
  EXPECT_TRUE(r.protobuf);
  EXPECT_TRUE(has_line(r, "Content-Type: application/x-protobuf"));
  EXPECT_FALSE(has_line(r, "Content-Type: application/json"));
}

TEST(DestinationProtocol, GrpcAndUnknownProtocolsAreRefusedWithAReason) {
  DestinationConfig c = grafana();
  c.protocol = "grpc";
  const auto issues = validate(c);
  const ValidationIssue* i = find(issues, "protocol", false);
  ASSERT_NE(i, nullptr);
  EXPECT_THAT(i->message, HasSubstr("use http/protobuf"));
  c.protocol = "http/protobuf+gzip";
  const auto unknown = validate(c);
  i = find(unknown, "protocol", false);
  ASSERT_NE(i, nullptr);
  EXPECT_EQ(i->message, "unknown protocol (use http/json or http/protobuf)");
}

TEST(DestinationValidate, AcceptsAWellFormedGrafanaCloudDestination) {
  const auto issues = validate(grafana());
  EXPECT_FALSE(has_errors(issues));
  EXPECT_TRUE(issues.empty());
}

TEST(DestinationValidate, RejectsTheMainGrafanaUrlInsteadOfTheOtlpGateway) {
  auto c = grafana();
  c.endpoint = "https://mystack.grafana.net";
  const auto issues = validate(c);
  ASSERT_TRUE(has_errors(issues));
  const ValidationIssue* issue = find(issues, "endpoint", false);
  ASSERT_NE(issue, nullptr);
  EXPECT_THAT(issue->message, HasSubstr("main Grafana URL"));
  EXPECT_THAT(issue->message, HasSubstr("otlp-gateway"));
}

TEST(DestinationValidate, RejectsANonNumericInstanceId) {
  auto c = grafana();
  c.instance_id = "my-stack";
  const ValidationIssue* issue = nullptr;
  const auto issues = validate(c);
  issue = find(issues, "instance_id", false);
  ASSERT_NE(issue, nullptr);
  EXPECT_THAT(issue->message, HasSubstr("numeric"));
  c.instance_id.clear();
  EXPECT_NE(find(validate(c), "instance_id", false), nullptr);
}

TEST(DestinationValidate, RejectsAMissingApiKey) {
  auto c = grafana();
  c.api_key.clear();
  const auto issues = validate(c);
  const ValidationIssue* issue = find(issues, "api_key", false);
  ASSERT_NE(issue, nullptr);
  EXPECT_THAT(issue->message, HasSubstr("traces:write"));
}

TEST(DestinationValidate, WarnsButAcceptsAKeyWithoutTheGlcPrefix) {
  auto c = grafana();
  c.api_key = "eyJrIjoiSECRET-legacy-key-000";
  const auto issues = validate(c);
  EXPECT_FALSE(has_errors(issues));
  const ValidationIssue* issue = find(issues, "api_key", true);
  ASSERT_NE(issue, nullptr);
  EXPECT_THAT(issue->message, HasSubstr("glc_"));
  expect_no_secret(issues, c.api_key);
}

TEST(DestinationValidate, RejectsCrOrLfInAHeaderNameOrValueWithoutQuotingTheValue) {
  DestinationConfig c;
  c.endpoint = "http://127.0.0.1:4318/v1/traces";
  c.headers = {{"authorization", "Bearer s3cret-value\r\nX-Injected: 1"}};
  auto issues = validate(c);
  const ValidationIssue* issue = find(issues, "headers", false);
  ASSERT_NE(issue, nullptr);
  EXPECT_THAT(issue->message, HasSubstr("CR, LF"));
  expect_no_secret(issues, "s3cret-value");

  c.headers = {{"x-a\nb", "v"}};
  EXPECT_NE(find(validate(c), "headers", false), nullptr);
  c.headers = {{"x-ok", "line\nbreak"}};
  EXPECT_NE(find(validate(c), "headers", false), nullptr);
  c.headers = {{"x-ok", "fine value"}};
  EXPECT_FALSE(has_errors(validate(c)));
}

TEST(DestinationValidate, RejectsAUrlThatDoesNotParse) {
  DestinationConfig c;
  for (const char* bad : {"not a url", "ftp://example.com/v1/traces", "http://", "://x", ""}) {
    c.endpoint = bad;
    EXPECT_NE(find(validate(c), "endpoint", false), nullptr) << bad;
  }
  c.endpoint = "https://collector.example.com:4318/v1/traces";
  EXPECT_FALSE(has_errors(validate(c)));
}

// The host curl would look up must be a DNS name or an address: "%zz" (looked up as "%25zz"),
// "300.1.1.1", an empty label are refused; IPv4 in the forms curl reads as one stays valid
// (the egress policy classifies it by address), and the URL is not quoted.
TEST(DestinationValidate, RejectsAHostThatIsNeitherADnsNameNorAnAddress) {
  for (const char* url : {"http://%zz/", "http://%zz%zz/v1/traces", "http://300.1.1.1:4318/v1/traces",
                          "http://foo..bar/v1/traces", "https://.example.com/", "http://1.2.3.4.5/",
                          "http://a_b%20c.example/"}) {
    DestinationConfig d;
    d.endpoint = url;
    const std::vector<ValidationIssue> issues = validate(d);  // alive while `issue` points into it
    const ValidationIssue* issue = find(issues, "endpoint", false);
    ASSERT_NE(issue, nullptr) << url;
    EXPECT_THAT(issue->message, HasSubstr("host")) << url;
    EXPECT_EQ(issue->message.find(url), std::string::npos) << issue->message;
  }
  for (const char* url : {"http://127.1:4318/v1/traces", "http://2130706433:4318/", "http://0x7f.1/",
                          "http://0177.0.0.1/", "http://[::1]:4318/", "http://otel_collector:4318/",
                          "https://otlp-gateway-prod-eu-west-2.grafana.net./otlp", "http://a-b.example.com/"}) {
    DestinationConfig d;
    d.endpoint = url;
    EXPECT_EQ(find(validate(d), "endpoint", false), nullptr) << url << ": " << find(validate(d), "endpoint", false)->message;
  }
}

TEST(DestinationValidate, RejectsAUrlWithoutAHost) {
  for (const char* url : {"http:///v1/traces", "https:///", "http://user@/v1/traces", "http://:4318/v1/traces"}) {
    DestinationConfig d;
    d.endpoint = url;
    const auto issues = validate(d);
    ASSERT_TRUE(has_errors(issues)) << url;
    EXPECT_EQ(issues[0].path, "endpoint");
    EXPECT_NE(issues[0].message.find("no host"), std::string::npos) << url << ": " << issues[0].message;
  }
  DestinationConfig ok;
  ok.endpoint = "http://[::1]:4318/v1/traces";
  EXPECT_FALSE(has_errors(validate(ok)));
}

TEST(DestinationValidate, RejectsEveryControlByteInAHeaderValueAndBoundsSizes) {
  for (const char bad : {'\x01', '\x08', '\x0b', '\x1f', '\x7f'}) {
    DestinationConfig d;
    d.endpoint = "https://otel.example/v1/traces";
    d.headers = {{"authorization", std::string("Bearer se") + bad + "cret-token"}};
    const auto issues = validate(d);
    ASSERT_TRUE(has_errors(issues)) << static_cast<int>(bad);
    EXPECT_NE(issues[0].message.find("control byte"), std::string::npos);
    EXPECT_EQ(issues[0].message.find("cret-token"), std::string::npos);  // never quoted
  }
  DestinationConfig tab;
  tab.endpoint = "https://otel.example/v1/traces";
  tab.headers = {{"x-a", "with\ttab"}};
  EXPECT_FALSE(has_errors(validate(tab)));  // RFC 9110 allows HTAB in a field value
  DestinationConfig many = tab;
  many.headers.assign(65, {"x-a", "v"});
  EXPECT_TRUE(has_errors(validate(many)));
  DestinationConfig big = tab;
  big.headers = {{"x-a", std::string(16385, 'v')}};
  EXPECT_TRUE(has_errors(validate(big)));
  DestinationConfig long_url = tab;
  long_url.endpoint = "https://otel.example/" + std::string(9000, 'p');
  EXPECT_TRUE(has_errors(validate(long_url)));
  DestinationConfig ctl_url = tab;
  ctl_url.endpoint = "https://otel.example/v1/\x01traces";
  EXPECT_TRUE(has_errors(validate(ctl_url)));
}

// Every source of headers ends in validate(): the same refusals for all of them.
TEST(DestinationValidate, RefusesTheContentTypeAndAHeaderGivenTwiceInAnyCase) {
  DestinationConfig c;
  c.endpoint = "https://otel.example/v1/traces";
  for (const char* name : {"Content-Type", "content-type", "CONTENT-TYPE"}) {
    c.headers = {{name, "text/plain"}};
    const auto issues = validate(c);
    const ValidationIssue* i = find(issues, "headers", false);
    ASSERT_NE(i, nullptr) << name;
    EXPECT_THAT(i->message, HasSubstr("set by the sender"));
    EXPECT_EQ(i->code, IssueCode::conflict);
  }
  c.headers = {{"x-a", "secret-one"}, {"X-A", "secret-two"}};
  const auto issues = validate(c);
  const ValidationIssue* twice = find(issues, "headers", false);
  ASSERT_NE(twice, nullptr);
  EXPECT_EQ(twice->message, "header #2 (X-A): given twice (header #1; names ignore case)");
  EXPECT_EQ(twice->code, IssueCode::duplicate);
  expect_no_secret(issues, "secret-");
  c.headers = {{"x-a", "1"}, {"x-b", "2"}};
  EXPECT_FALSE(has_errors(validate(c)));
  // Grafana Cloud's Authorization is the sender's (Basic instance_id:api_key).
  DestinationConfig g = grafana();
  g.headers = {{"authorization", "Bearer x"}};
  EXPECT_NE(find(validate(g), "headers", false), nullptr);
}

// An api_key no header carries would be dropped unseen: an error naming what the kind takes,
// never the key.
TEST(DestinationValidate, RefusesAnApiKeyTheKindDoesNotSend) {
  for (const DestinationKind kind : {DestinationKind::otlp_http, DestinationKind::otel_collector}) {
    DestinationConfig c;
    c.kind = kind;
    c.endpoint = "https://otel.example/v1/traces";
    c.api_key = "sk-unused-secret-123";
    const auto issues = validate(c);
    const ValidationIssue* i = find(issues, "api_key", false);
    ASSERT_NE(i, nullptr);
    EXPECT_THAT(i->message, HasSubstr("give credentials in headers"));
    EXPECT_EQ(i->code, IssueCode::unknown_field);
    expect_no_secret(issues, "unused-secret");
  }
}

TEST(DestinationValidate, RejectsAnUnknownCompression) {
  DestinationConfig c;
  c.endpoint = "http://127.0.0.1:4318/v1/traces";
  c.compression = "brotli";
  EXPECT_NE(find(validate(c), "compression", false), nullptr);
  for (const char* ok : {"", "none", "gzip", "zstd"}) {
    c.compression = ok;
    EXPECT_FALSE(has_errors(validate(c))) << ok;
  }
}

TEST(DestinationValidate, RejectsZeroTimeoutAndZeroInFlight) {
  DestinationConfig c;
  c.endpoint = "http://127.0.0.1:4318/v1/traces";
  c.timeout = std::chrono::milliseconds(0);
  EXPECT_NE(find(validate(c), "timeout", false), nullptr);
  c.timeout = std::chrono::milliseconds(100);
  c.max_in_flight = 0;
  EXPECT_NE(find(validate(c), "max_in_flight", false), nullptr);
}

TEST(DestinationValidate, NeverQuotesTheApiKeyOrHeaderValuesInAnyMessage) {
  auto c = grafana();
  c.endpoint = "https://grafana.net/?token=glc_secretTOKENvalue0123456789";
  c.instance_id = "abc";
  c.api_key = "nope_secretTOKENvalue0123456789";
  c.headers = {{"x-token", "hdr-secret-42\n"}, {"bad name", "hdr-secret-43"}};
  c.compression = "lz5";
  const auto issues = validate(c);
  EXPECT_GE(issues.size(), 5U);
  expect_no_secret(issues, "secretTOKENvalue");
  expect_no_secret(issues, "hdr-secret");
}

TEST(DestinationResolve, BuildsGrafanaGatewayUrlBasicAuthAndGzip) {
  const auto r = resolve(grafana());
  EXPECT_EQ(r.url, "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp/v1/traces");
  EXPECT_EQ(r.compression, "gzip");
  // base64("123456:glc_secretTOKENvalue0123456789")
  EXPECT_NE(std::find(r.header_lines.begin(), r.header_lines.end(),
                      "Authorization: Basic " + base64_encode("123456:glc_secretTOKENvalue0123456789")),
            r.header_lines.end());
  EXPECT_NE(std::find(r.header_lines.begin(), r.header_lines.end(), "Content-Type: application/json"),
            r.header_lines.end());
}

TEST(DestinationResolve, KeepsAGrafanaUrlThatAlreadyEndsInTheOtlpPath) {
  auto c = grafana();
  c.endpoint = "https://otlp-gateway-prod-us-east-0.grafana.net/otlp/";
  EXPECT_EQ(resolve(c).url, "https://otlp-gateway-prod-us-east-0.grafana.net/otlp/v1/traces");
  c.endpoint = "https://otlp-gateway-prod-us-east-0.grafana.net/otlp/v1/traces";
  EXPECT_EQ(resolve(c).url, "https://otlp-gateway-prod-us-east-0.grafana.net/otlp/v1/traces");
}

TEST(DestinationResolve, AppendsV1TracesToACollectorBaseUrlAndDefaultsToZstd) {
  DestinationConfig c;
  c.kind = DestinationKind::otel_collector;
  c.endpoint = "http://collector:4318";
  auto r = resolve(c);
  EXPECT_EQ(r.url, "http://collector:4318/v1/traces");
  EXPECT_EQ(r.compression, "zstd");
  c.endpoint = "http://collector:4318/custom/traces";
  EXPECT_EQ(resolve(c).url, "http://collector:4318/custom/traces");
}

// The traces path goes before the query or fragment, which stay: never "?team=a/v1/traces".
TEST(DestinationResolve, InsertsTheTracesPathBeforeTheQueryForEveryKindThatAddsOne) {
  DestinationConfig c;
  c.kind = DestinationKind::otel_collector;
  c.endpoint = "http://127.0.0.1:4318/?team=a";
  EXPECT_EQ(resolve(c).url, "http://127.0.0.1:4318/v1/traces?team=a");
  c.endpoint = "http://127.0.0.1:4318?team=a#frag";
  EXPECT_EQ(resolve(c).url, "http://127.0.0.1:4318/v1/traces?team=a#frag");
  auto g = grafana();
  g.endpoint = "https://otlp-gateway-prod-eu-west-2.grafana.net/?tok=abc";
  EXPECT_EQ(resolve(g).url, "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp/v1/traces?tok=abc");
  g.endpoint = "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp?tok=abc";
  EXPECT_EQ(resolve(g).url, "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp/v1/traces?tok=abc");
  g.endpoint = "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp/v1/traces/?tok=abc";
  EXPECT_EQ(resolve(g).url, "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp/v1/traces?tok=abc");
}

TEST(AppendUrlPath, InsertsBeforeTheQueryOrFragmentAndKeepsThem) {
  EXPECT_EQ(append_url_path("http://h:1", "/v1/traces"), "http://h:1/v1/traces");
  EXPECT_EQ(append_url_path("http://h:1/", "/v1/traces"), "http://h:1/v1/traces");
  EXPECT_EQ(append_url_path("http://h/p/?a=1&b=/x", "/v1/traces"), "http://h/p/v1/traces?a=1&b=/x");
  EXPECT_EQ(append_url_path("http://h/p#x?y", "/v1/traces"), "http://h/p/v1/traces#x?y");
  EXPECT_EQ(url_before_query("http://h/p?q#f"), "http://h/p");
  EXPECT_EQ(url_before_query("http://h/p"), "http://h/p");
}

TEST(DestinationResolve, UsesAGenericUrlAsIsWithItsHeaders) {
  DestinationConfig c;
  c.endpoint = "https://example.com/ingest";
  c.headers = {{"x-api-key", "abc"}};
  c.compression = "none";
  const auto r = resolve(c);
  EXPECT_EQ(r.url, "https://example.com/ingest");
  EXPECT_EQ(r.compression, "none");
  EXPECT_NE(std::find(r.header_lines.begin(), r.header_lines.end(), "x-api-key: abc"), r.header_lines.end());
}

// What tools print of a destination's URL: never user info, a query or a fragment.
TEST(DisplayUrl, LeavesOutUserInfoQueryAndFragment) {
  EXPECT_EQ(display_url("https://user:secret@host:4318/v1/traces?token=abc"), "https://host:4318/v1/traces");
  EXPECT_EQ(display_url("https://host/v1/traces#key=abc"), "https://host/v1/traces");
  EXPECT_EQ(display_url("http://127.0.0.1:4318/v1/traces"), "http://127.0.0.1:4318/v1/traces");
  EXPECT_EQ(display_url("https://host/path@at"), "https://host/path@at");  // an '@' in the path is no user info
}

TEST(Base64, EncodesRfc4648TestVectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
}

}  // namespace
}  // namespace tracecast
