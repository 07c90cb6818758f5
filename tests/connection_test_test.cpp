// tracecast/connection_test.h and the tracecast-check CLI against servers on 127.0.0.1:
// every category with its hint, the test trace is valid OTLP/JSON, secrets never shown.
#include "egress_util.h"
#include "tracecast/connection_test.h"
#include "tracecast/pipeline.h"
#include "tracecast/presets.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "otlp_test.pb.h"
#include "raw_http_server.h"
#include "fake_env.h"

namespace tracecast {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;
using test::RawHttpServer;
using test::RawRequest;
using test::RawResponse;
using Category = ConnectionTestResult::Category;

RawHttpServer::Handler answer(int status) {
  return [status](const RawRequest&) {
    RawResponse r;
    r.status = status;
    return r;
  };
}

DestinationConfig generic(const RawHttpServer& server) {
  DestinationConfig d;
  d.endpoint = server.url();
  return d;
}

TEST(ConnectionTest, SendsOneValidOtlpJsonTraceAndReportsOk) {
  RawHttpServer server(answer(200));
  const ConnectionTestResult r = test_connection(generic(server), 5000ms, tracecast::test::loopback_egress());
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.http_status, 200);
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1U);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].header("content-type"), "application/json");
  EXPECT_EQ(requests[0].header("content-encoding"), "");
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(requests[0].body).get(doc), simdjson::SUCCESS);
  simdjson::dom::element span = doc["resourceSpans"].at(0)["scopeSpans"].at(0)["spans"].at(0);
  std::string_view trace_id, span_id, start;
  ASSERT_EQ(span["traceId"].get(trace_id), simdjson::SUCCESS);
  ASSERT_EQ(span["spanId"].get(span_id), simdjson::SUCCESS);
  ASSERT_EQ(span["startTimeUnixNano"].get(start), simdjson::SUCCESS);  // int64 as a string
  EXPECT_EQ(trace_id.size(), 32U);
  EXPECT_EQ(span_id.size(), 16U);
  EXPECT_EQ(trace_id.find_first_not_of("0123456789abcdef"), std::string_view::npos);
  std::int64_t kind = 0;
  ASSERT_EQ(span["kind"].get(kind), simdjson::SUCCESS);  // enums as integers
  EXPECT_EQ(kind, 3);
}

TEST(ConnectionTest, SendsTheSameTraceAsProtobufToAnHttpProtobufDestination) {
  RawHttpServer server(answer(200));
  DestinationConfig d = generic(server);
  d.protocol = "http/protobuf";
  const ConnectionTestResult r = test_connection(d, 5000ms, tracecast::test::loopback_egress());
  EXPECT_TRUE(r.ok()) << r.message;
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1U);
  EXPECT_EQ(requests[0].header("content-type"), "application/x-protobuf");
  otlp::ExportTraceServiceRequest req;
  ASSERT_TRUE(req.ParseFromString(requests[0].body));
  ASSERT_EQ(req.resource_spans_size(), 1);
  const auto& rs = req.resource_spans(0);
  EXPECT_EQ(rs.resource().attributes(0).key(), "service.name");
  EXPECT_EQ(rs.resource().attributes(0).value().string_value(), "tracecast-connection-test");
  EXPECT_EQ(rs.scope_spans(0).scope().name(), "tracecast");
  const auto& span = rs.scope_spans(0).spans(0);
  EXPECT_EQ(span.trace_id().size(), 16U);
  EXPECT_EQ(span.span_id().size(), 8U);
  EXPECT_EQ(span.name(), "tracecast connection test");
  EXPECT_EQ(span.kind(), 3);
  EXPECT_GT(span.end_time_unix_nano(), span.start_time_unix_nano());
  EXPECT_TRUE(span.attributes(0).value().bool_value());
}

TEST(ConnectionTest, CountsARejectedProtobufTestSpanAsAFailure) {
  RawHttpServer server([](const RawRequest&) {
    RawResponse r;
    otlp::ExportTraceServiceResponse resp;
    resp.mutable_partial_success()->set_rejected_spans(1);
    resp.mutable_partial_success()->set_error_message("bad");
    r.body = resp.SerializeAsString();
    return r;
  });
  DestinationConfig d = generic(server);
  d.protocol = "http/protobuf";
  const ConnectionTestResult r = test_connection(d, 5000ms, tracecast::test::loopback_egress());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.category, Category::client_error);
  EXPECT_THAT(r.message, HasSubstr("rejectedSpans=1"));
  EXPECT_THAT(r.message, HasSubstr(": \"bad\""));  // the receiver's own reason is shown
}

TEST(ConnectionTest, MakesAFreshTraceIdEachTime) {
  EXPECT_NE(connection_test_body(), connection_test_body());
}

struct StatusCase {
  int status;
  Category category;
};

class ConnectionTestStatus : public ::testing::TestWithParam<StatusCase> {};

TEST_P(ConnectionTestStatus, MapsTheStatusToItsCategoryWithAHint) {
  RawHttpServer server(answer(GetParam().status));
  const ConnectionTestResult r = test_connection(generic(server), 5000ms, tracecast::test::loopback_egress());
  EXPECT_EQ(r.category, GetParam().category) << r.message;
  EXPECT_EQ(r.http_status, GetParam().status);
  EXPECT_FALSE(r.hint.empty());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(server.request_count(), 1U);  // never retried
}

INSTANTIATE_TEST_SUITE_P(Statuses, ConnectionTestStatus,
                         ::testing::Values(StatusCase{401, Category::unauthorized},
                                           StatusCase{403, Category::unauthorized},
                                           StatusCase{404, Category::not_found},
                                           StatusCase{413, Category::payload_too_large},
                                           StatusCase{400, Category::client_error},
                                           StatusCase{429, Category::rate_limited},
                                           StatusCase{500, Category::server_error},
                                           StatusCase{502, Category::server_error},
                                           StatusCase{503, Category::server_error},
                                           StatusCase{504, Category::server_error}));

// 429 is rate limiting (retried by the sender), never "check that it is an OTLP/HTTP traces
// endpoint", for every kind (a preset's bad-request words are for 400s); 502/503/504 are
// temporary, retried.
TEST(ConnectionHint, RateLimitingAndTemporaryUnavailabilityHaveTheirOwnWordsForEveryKind) {
  for (const PresetInfo& row : presets()) {
    const DestinationKind kind = row.kind;
    SCOPED_TRACE(std::string(to_string(kind)));
    const std::string limited = connection_hint(Category::rate_limited, kind, 429);
    EXPECT_NE(limited.find("rate-limiting"), std::string::npos) << limited;
    EXPECT_NE(limited.find("retries"), std::string::npos) << limited;
    EXPECT_EQ(limited.find("OTLP/HTTP traces endpoint"), std::string::npos) << limited;
    EXPECT_EQ(limited, connection_hint(classify_send_outcome(429, NetworkError::none), kind, 429));
    for (const int status : {502, 503, 504}) {
      const std::string busy = connection_hint(classify_send_outcome(status, NetworkError::none), kind, status);
      EXPECT_NE(busy.find("temporarily unavailable (HTTP " + std::to_string(status)), std::string::npos) << busy;
    }
    EXPECT_NE(connection_hint(Category::server_error, kind, 500).find("server-side"), std::string::npos);
  }
  EXPECT_EQ(to_string(Category::rate_limited), "rate_limited");
}

// A status line followed by a failure (a body cut short, a trickle past the timeout) is the
// failure's category, never `ok`: a failing destination must not read "Connection works".
TEST(ConnectionHint, AFailureAfterA200IsNotConnectionWorks) {
  EXPECT_EQ(classify_send_outcome(200, NetworkError::none), Category::ok);
  EXPECT_EQ(classify_send_outcome(200, NetworkError::timeout), Category::timeout);
  EXPECT_EQ(classify_send_outcome(200, NetworkError::send_recv), Category::other);
  EXPECT_EQ(classify_send_outcome(200, NetworkError::other), Category::other);
  EXPECT_EQ(classify_send_outcome(503, NetworkError::none), Category::server_error);
  for (const PresetInfo& row : presets()) {
    const std::string hint = connection_hint(classify_send_outcome(200, NetworkError::timeout), row.kind, 200);
    EXPECT_EQ(hint.find("Connection works"), std::string::npos) << hint;
  }
}

TEST(ConnectionTest, GrafanaCredentialsFailureHintsAtInstanceIdAndWritePermission) {
  RawHttpServer server(answer(401));
  DestinationConfig d;
  d.kind = DestinationKind::grafana_cloud;
  d.endpoint = "http://127.0.0.1:" + std::to_string(server.port());
  d.instance_id = "123";
  d.api_key = "glc_supersecretvalue";
  const ConnectionTestResult r = test_connection(d, 5000ms, tracecast::test::loopback_egress());
  EXPECT_EQ(r.category, Category::unauthorized);
  EXPECT_THAT(r.hint, HasSubstr("Instance ID is numeric"));
  EXPECT_THAT(r.hint, HasSubstr("write permissions"));
  EXPECT_THAT(r.message + r.hint, Not(HasSubstr("supersecret")));
  ASSERT_EQ(server.request_count(), 1U);
  EXPECT_EQ(server.requests()[0].path, "/otlp/v1/traces");
}

TEST(ConnectionTest, GrafanaNotFoundHintsAtTheOtlpGatewayUrl) {
  RawHttpServer server(answer(404));
  DestinationConfig d;
  d.kind = DestinationKind::grafana_cloud;
  d.endpoint = "http://127.0.0.1:" + std::to_string(server.port());
  d.instance_id = "123";
  d.api_key = "glc_x";
  const ConnectionTestResult r = test_connection(d, 5000ms, tracecast::test::loopback_egress());
  EXPECT_EQ(r.category, Category::not_found);
  EXPECT_THAT(r.hint, HasSubstr("OTLP gateway URL (not the main Grafana URL)"));
}

TEST(ConnectionTest, ReportsConnectRefused) {
  DestinationConfig d;
  d.endpoint = "http://127.0.0.1:" + std::to_string(test::unused_port()) + "/v1/traces";
  const ConnectionTestResult r = test_connection(d, 5000ms, tracecast::test::loopback_egress());
  EXPECT_EQ(r.category, Category::connect_refused) << r.message;
  EXPECT_EQ(r.http_status, 0);
  EXPECT_FALSE(r.hint.empty());
}

TEST(ConnectionTest, ReportsTimeoutWhenTheServerNeverAnswers) {
  RawHttpServer server([](const RawRequest&) {
    RawResponse r;
    r.action = RawResponse::Action::hang;
    return r;
  });
  const ConnectionTestResult r = test_connection(generic(server), 300ms, tracecast::test::loopback_egress());
  EXPECT_EQ(r.category, Category::timeout) << r.message;
}

TEST(ConnectionTest, RejectsAnInvalidConfigWithoutSendingAnything) {
  DestinationConfig d;
  d.kind = DestinationKind::grafana_cloud;
  d.endpoint = "https://mystack.grafana.net";
  d.instance_id = "123";
  d.api_key = "glc_secret-in-config";
  const ConnectionTestResult r = test_connection(d, 1000ms, tracecast::test::loopback_egress());
  EXPECT_EQ(r.category, Category::invalid_config);
  EXPECT_THAT(r.message, HasSubstr("main Grafana URL"));
  EXPECT_THAT(r.message, Not(HasSubstr("secret-in-config")));
}

TEST(ConnectionTest, CountsARejectedTestSpanAsAFailure) {
  RawHttpServer server([](const RawRequest&) {
    RawResponse r;
    r.body = R"({"partialSuccess":{"rejectedSpans":"1","errorMessage":"bad"}})";
    return r;
  });
  const ConnectionTestResult r = test_connection(generic(server), 5000ms, tracecast::test::loopback_egress());
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.category, Category::client_error);
  EXPECT_THAT(r.message, HasSubstr("rejectedSpans=1): \"bad\""));
}

// The partialSuccess errorMessage is what tells a user why the receiver refused the span; it
// is server text, so it is shown cut, printable-only and with the destination's key scrubbed.
TEST(ConnectionTest, ShowsThePartialSuccessMessageSanitized) {
  struct Case {
    std::string body;
    bool ok;
    std::string want;
  };
  const std::string long_text(300, 'x');
  const std::vector<Case> cases = {
      {R"({"partialSuccess":{"errorMessage":"span 1: attribute too long"}})", true,
       "HTTP 200 with a partialSuccess warning: \"span 1: attribute too long\""},
      {R"({"partialSuccess":{"errorMessage":"a\"b\u0007c","rejectedSpans":1}})", false,
       R"(rejectedSpans=1): "a\"b\u0007c")"},  // shown as sent: escapes not decoded
      {"{\"partialSuccess\":{\"errorMessage\":\"caf\xc3\xa9\\n\"}}", true, R"(: "caf??\n")"},
      {R"({"partialSuccess":{"errorMessage":")" + long_text + R"("}})", true,
       ": \"" + std::string(200, 'x') + "...\""},
      {R"({"partialSuccess":{"errorMessage":"bad key Bearer-s3cret-key"}})", true, "bad key "},
  };
  for (const Case& c : cases) {
    RawHttpServer server([&](const RawRequest&) {
      RawResponse r;
      r.body = c.body;
      return r;
    });
    DestinationConfig d = generic(server);
    d.headers = {{"authorization", "Bearer-s3cret-key"}};
    const ConnectionTestResult r = test_connection(d, 5000ms, tracecast::test::loopback_egress());
    EXPECT_EQ(r.ok(), c.ok) << c.body << " -> " << r.message;
    EXPECT_THAT(r.message, HasSubstr(c.want)) << c.body;
    EXPECT_THAT(r.message, Not(HasSubstr("s3cret"))) << c.body;
  }
}

TEST(ConnectionTest, AddsADestinationToTheSenderOnlyWhenItsTestPasses) {
  RawHttpServer good(answer(200));
  RawHttpServer bad(answer(403));
  Sender sender(tracecast::test::loopback_sender_config());
  const TestedDestination refused = add_destination_if_reachable(sender, generic(bad), 5000ms);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refused.added.id, 0U);
  EXPECT_EQ(refused.test.category, Category::unauthorized);
  EXPECT_TRUE(sender.stats().destinations.empty());
  const TestedDestination accepted = add_destination_if_reachable(sender, generic(good), 5000ms);
  EXPECT_TRUE(accepted.ok()) << accepted.test.message;
  EXPECT_EQ(accepted.added.id, 1U);
  EXPECT_EQ(sender.stats().destinations.size(), 1U);
}

// ---- tracecast-check ----------------------------------------------------------------------

struct CliResult {
  int exit_code = -1;
  std::string output;
};

std::string check_binary() {
  const char* dir = std::getenv("TRACECAST_BUILD_DIR");
  return std::string(dir != nullptr ? dir : ".") + "/tools/tracecast-check";
}

// The test servers listen on 127.0.0.1, which the default egress policy refuses: the CLI is
// told to allow exactly that address (TRACECAST_EGRESS_ALLOW) unless `allow_loopback` is false.
CliResult run_check(const std::string& env_and_args, bool allow_loopback = true) {
  CliResult out;
  const std::string cmd = "env -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT "
                          "-u OTEL_EXPORTER_OTLP_HEADERS -u OTEL_EXPORTER_OTLP_TRACES_HEADERS "
                          "-u TRACECAST_API_KEY -u TRACECAST_EGRESS_ALLOW " +
                          std::string(allow_loopback ? "TRACECAST_EGRESS_ALLOW=127.0.0.1/32 " : "") + env_and_args +
                          " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.output.append(buf, n);
  const int status = ::pclose(pipe);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

class CheckCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(check_binary())) GTEST_SKIP() << "tracecast-check not built: " << check_binary();
  }
};

TEST_F(CheckCli, ExitsZeroWhenTheEndpointAcceptsTheTestTrace) {
  RawHttpServer server(answer(200));
  const CliResult r = run_check(check_binary() + " --endpoint " + server.url());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("result: ok"));
}

TEST_F(CheckCli, SendsProtobufWithTheProtocolFlagOrVariableAndRefusesGrpc) {
  RawHttpServer server(answer(200));
  CliResult r = run_check(check_binary() + " --protocol http/protobuf --endpoint " + server.url());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = run_check("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf " + check_binary() + " --endpoint " + server.url());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(server.request_count(), 2U);
  for (const RawRequest& req : server.requests()) EXPECT_EQ(req.header("content-type"), "application/x-protobuf");
  r = run_check("OTEL_EXPORTER_OTLP_PROTOCOL=grpc " + check_binary() + " --endpoint " + server.url());
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("grpc is not supported"));
  EXPECT_EQ(server.request_count(), 2U);
}

// A 400 from an http/protobuf destination: the hint names the encoding it was sent in.
TEST_F(CheckCli, ClientErrorHintNamesTheDestinationsProtocol) {
  RawHttpServer server(answer(400));
  const CliResult proto = run_check(check_binary() + " --protocol http/protobuf --endpoint " + server.url());
  EXPECT_EQ(proto.exit_code, 1) << proto.output;
  EXPECT_THAT(proto.output, HasSubstr("accepting protobuf"));
  EXPECT_THAT(proto.output, Not(HasSubstr("JSON")));
  const CliResult json = run_check(check_binary() + " --endpoint " + server.url());
  EXPECT_EQ(json.exit_code, 1) << json.output;
  EXPECT_THAT(json.output, HasSubstr("accepting JSON"));
}

// An unknown option is reported as unknown wherever it stands, also last (no "needs a value").
TEST_F(CheckCli, ReportsAnUnknownOptionEvenAsTheLastArgument) {
  for (const std::string args : {" --bogus", " --endpoint http://127.0.0.1:9/ --bogus", " --bogus=1"}) {
    const CliResult r = run_check(check_binary() + args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("unknown option --bogus")) << args;
    EXPECT_THAT(r.output, Not(HasSubstr("needs a value"))) << args;
  }
  const CliResult missing = run_check(check_binary() + " --endpoint");
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_THAT(missing.output, HasSubstr("--endpoint needs a value"));
}

// ---- one reader per setting: tracecast-check and config_from_env() agree ----------------

using test::fake_env;
using test::fake_getenv;
std::string shell_quoted(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct EnvCase {
  const char* variable;
  const char* value;
  bool accepted;
};

// The same environment through the gateway's loader and through the CLI: both accept (the
// CLI's test then passes) or both refuse, the CLI printing config_from_env()'s message.
TEST_F(CheckCli, AcceptsAndRefusesTheSameEnvironmentAsConfigFromEnv) {
  RawHttpServer server(answer(200));
  const EnvCase cases[] = {
      {"OTEL_EXPORTER_OTLP_TIMEOUT", "5s", false},
      {"OTEL_EXPORTER_OTLP_TIMEOUT", "5000", true},
      {"OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0", false},
      {"OTEL_EXPORTER_OTLP_COMPRESSION", "GZIP", true},
      {"OTEL_EXPORTER_OTLP_COMPRESSION", "brotli", false},
      {"OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", false},
      {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf", true},
      {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http:///v1/traces", false},
      {"OTEL_EXPORTER_OTLP_HEADERS", "x-tenant", false},
      {"OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme", true},
      {"TRACECAST_EGRESS_ALLOW", "127.0.0.1, 10.0.0.1", true},
      {"TRACECAST_EGRESS_ALLOW", "127.0.0.1, bad host!", false},
      {"TRACECAST_EGRESS_ENFORCE", "maybe", false},
  };
  for (const EnvCase& c : cases) {
    SCOPED_TRACE(std::string(c.variable) + "=" + c.value);
    fake_env() = {{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", server.url()}, {"TRACECAST_EGRESS_ALLOW", "127.0.0.1/32"}};
    fake_env()[c.variable] = c.value;  // over the defaults above
    const ConfigLoadResult lib = config_from_env({}, &fake_getenv);
    std::string assignments;
    for (const auto& [name, value] : fake_env()) assignments += name + "=" + shell_quoted(value) + " ";
    const CliResult cli = run_check(assignments + check_binary());
    EXPECT_EQ(lib.ok(), c.accepted) << lib.error;
    if (c.accepted) {
      EXPECT_EQ(cli.exit_code, 0) << cli.output;
    } else {
      EXPECT_EQ(cli.exit_code, 2) << cli.output;
      EXPECT_THAT(cli.output, HasSubstr(lib.error));
      EXPECT_THAT(lib.error, HasSubstr(c.variable));
    }
  }
}

std::string load_binary() {
  const char* dir = std::getenv("TRACECAST_BUILD_DIR");
  return std::string(dir != nullptr ? dir : ".") + "/tools/tracecast-load";
}

// Every file the tools read is bounded (64 KiB, as the library's secret files): a key, header
// or field file over it, or an endless one (/dev/zero), is refused naming the flag.
TEST_F(CheckCli, RefusesKeyHeaderAndFieldFilesOverTheLimitNamingTheFlag) {
  const std::string big = ::testing::TempDir() + "/tracecast_big_key_file";
  {
    std::ofstream out(big);
    out << std::string(70000, 'k');
  }
  const bool have_load = std::filesystem::exists(load_binary());
  for (const std::string& file : {big, std::string("/dev/zero")}) {
    SCOPED_TRACE(file);
    const std::pair<std::string, std::string> runs[] = {
        {check_binary() + " --endpoint http://127.0.0.1:9/v1/traces --api-key-file " + file, "--api-key-file"},
        {check_binary() + " --endpoint http://127.0.0.1:9/v1/traces --header-file " + file, "--header-file"},
        {check_binary() + " --kind honeycomb --field-file api_key=" + file, "--field-file"},
        {load_binary() + " --grafana-url https://otlp-gateway-prod-eu-west-2.grafana.net --grafana-instance-id 1 "
                         "--grafana-key-file " + file, "--grafana-key-file"},
        {load_binary() + " --kind honeycomb --field-file api_key=" + file, "--field-file"},
    };
    for (const auto& [run, flag] : runs) {
      if (run.rfind(load_binary(), 0) == 0 && !have_load) continue;
      const CliResult r = run_check(run);
      EXPECT_EQ(r.exit_code, 2) << run << ": " << r.output;
      EXPECT_THAT(r.output, HasSubstr(flag)) << run;
      EXPECT_THAT(r.output, HasSubstr("larger than 65536 bytes")) << run;
      EXPECT_THAT(r.output, Not(HasSubstr("kkkk"))) << run;
    }
  }
}

// An option where a flag's value should be is a missing value, never the value: "--name
// --bogus" does not run with the name "--bogus" (tracecast-check and tracecast-load).
TEST_F(CheckCli, RefusesAnOptionWhereAFlagsValueShouldBe) {
  RawHttpServer server(answer(200));
  const std::vector<std::string> check_args = {" --endpoint " + server.url() + " --name --bogus",
                                               " --name --endpoint " + server.url(),
                                               " --kind --bogus --endpoint " + server.url(),
                                               " --endpoint --header-file=/nonexistent"};
  for (const std::string& args : check_args) {
    const CliResult r = run_check(check_binary() + args);
    EXPECT_EQ(r.exit_code, 2) << args << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("needs a value (got the option --")) << args;
    EXPECT_THAT(r.output, Not(HasSubstr("/nonexistent"))) << args;
  }
  EXPECT_EQ(server.request_count(), 0U);
  if (std::filesystem::exists(load_binary())) {
    for (const std::string args : {" --kind --bogus", " --endpoint --count 10", " --config --json"}) {
      const CliResult r = run_check(load_binary() + args);
      EXPECT_EQ(r.exit_code, 2) << args << ": " << r.output;
      EXPECT_THAT(r.output, HasSubstr("needs a value (got the option --")) << args;
    }
  }
}

// TRACECAST_EGRESS_ALLOW, tracecast-check --egress-allow and tracecast-load --egress-allow:
// one parser, so blanks after commas are fine everywhere and a bad entry is named as written.
TEST_F(CheckCli, EveryEgressAllowListAcceptsAndRefusesTheSameEntries) {
  RawHttpServer server(answer(200));
  const bool have_load = std::filesystem::exists(load_binary());
  // Accepted.
  fake_env() = {{"TRACECAST_EGRESS_ALLOW", "127.0.0.1, 10.0.0.1"}};
  const ConfigLoadResult lib = config_from_env({}, &fake_getenv);
  ASSERT_TRUE(lib.ok()) << lib.error;
  EXPECT_EQ(lib.config.sender.egress.allow_cidrs, (std::vector<std::string>{"127.0.0.1", "10.0.0.1"}));
  const CliResult check = run_check(check_binary() + " --egress-allow '127.0.0.1, 10.0.0.1' --endpoint " + server.url(),
                                    /*allow_loopback=*/false);
  EXPECT_EQ(check.exit_code, 0) << check.output;
  if (have_load) {
    // A later bad option stops tracecast-load after the list was parsed: its complaint is that
    // option, not the list.
    const CliResult load = run_check(load_binary() + " --egress-allow '127.0.0.1, 10.0.0.1' --batch-spans 0", false);
    EXPECT_EQ(load.exit_code, 2) << load.output;
    EXPECT_THAT(load.output, HasSubstr("--batch-spans"));
    EXPECT_THAT(load.output, Not(HasSubstr("egress")));
  }
  // Refused, naming the entry.
  fake_env() = {{"TRACECAST_EGRESS_ALLOW", "127.0.0.1,  bad host! "}};
  const ConfigLoadResult bad = config_from_env({}, &fake_getenv);
  EXPECT_EQ(bad.error, "TRACECAST_EGRESS_ALLOW: 'bad host!': must be a host name of 1..253 bytes: labels of 1..63 "
                       "letters, digits, '-' or '_' between dots (or \"*.\" + a domain)");
  const std::string reason = bad.error.substr(std::string("TRACECAST_EGRESS_ALLOW: ").size());
  const CliResult bad_check =
      run_check(check_binary() + " --egress-allow '127.0.0.1,  bad host! ' --endpoint " + server.url(), false);
  EXPECT_EQ(bad_check.exit_code, 2) << bad_check.output;
  EXPECT_THAT(bad_check.output, HasSubstr("--egress-allow: " + reason));
  if (have_load) {
    const CliResult bad_load = run_check(load_binary() + " --egress-allow '127.0.0.1,  bad host! '", false);
    EXPECT_EQ(bad_load.exit_code, 2) << bad_load.output;
    EXPECT_THAT(bad_load.output, HasSubstr("--egress-allow: " + reason));
  }
  // Not an IPv4 address, not a host name: refused by the tools too.
  const CliResult not_v4 = run_check(check_binary() + " --egress-allow 300.1.1.1 --endpoint " + server.url(), false);
  EXPECT_EQ(not_v4.exit_code, 2) << not_v4.output;
  EXPECT_THAT(not_v4.output, HasSubstr("--egress-allow: '300.1.1.1': is neither an IPv4 address"));
  EXPECT_EQ(server.request_count(), 1U);
}

TEST_F(CheckCli, ReadsTheEndpointAndHeadersFromOtelEnvironmentVariables) {
  RawHttpServer server(answer(200));
  const CliResult r = run_check("OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:" + std::to_string(server.port()) +
                                " OTEL_EXPORTER_OTLP_HEADERS='x-tenant=acme,authorization=Bearer%20tok-123456' " +
                                check_binary());
  EXPECT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(server.request_count(), 1U);
  const RawRequest req = server.requests()[0];
  EXPECT_EQ(req.path, "/v1/traces");
  EXPECT_EQ(req.header("x-tenant"), "acme");
  EXPECT_EQ(req.header("authorization"), "Bearer tok-123456");
  EXPECT_THAT(r.output, Not(HasSubstr("tok-123456")));
}

TEST_F(CheckCli, ExitsNonZeroWithCategoryAndHintAndNeverPrintsTheKey) {
  RawHttpServer server(answer(401));
  const std::string key_file = ::testing::TempDir() + "/tracecast_check_key";
  {
    std::ofstream out(key_file);
    out << "glc_topsecretkeyvalue\n";
  }
  const CliResult r = run_check(check_binary() + " --kind grafana_cloud --endpoint http://127.0.0.1:" +
                                std::to_string(server.port()) + " --instance-id 4242 --api-key-file " + key_file);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("unauthorized"));
  EXPECT_THAT(r.output, HasSubstr("write permissions"));
  EXPECT_THAT(r.output, Not(HasSubstr("topsecretkeyvalue")));
  ASSERT_EQ(server.request_count(), 1U);
  EXPECT_EQ(server.requests()[0].header("authorization"), "Basic " + base64_encode("4242:glc_topsecretkeyvalue"));
  std::filesystem::remove(key_file);
}

TEST_F(CheckCli, TakesTheKeyFromTheEnvironmentAndRefusesItOnTheCommandLine) {
  RawHttpServer server(answer(200));
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(server.port());
  const CliResult ok = run_check("TRACECAST_API_KEY=glc_envsecret " + check_binary() +
                                 " --kind grafana_cloud --instance-id 7 --endpoint " + endpoint);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_THAT(ok.output, Not(HasSubstr("glc_envsecret")));
  ASSERT_EQ(server.request_count(), 1U);
  EXPECT_EQ(server.requests()[0].header("authorization"), "Basic " + base64_encode("7:glc_envsecret"));
  const CliResult refused = run_check(check_binary() + " --kind grafana_cloud --instance-id 7 --endpoint " +
                                      endpoint + " --api-key glc_cmdline");
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_THAT(refused.output, Not(HasSubstr("glc_cmdline")));
}

TEST_F(CheckCli, RefusesEveryHeaderListTheLibraryRefusesAtStartUp) {
  // One parser for both (parse_otlp_headers): a malformed percent-escape, a bare token, an
  // empty key. The check must not pass with settings config_from_env would refuse, and never
  // print the value.
  RawHttpServer server(answer(200));
  const std::string endpoint = "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:" + std::to_string(server.port());
  for (const std::string list : {"authorization=Bearer%2secret77", "authorization=Bearer%zzsecret77",
                                 "x-a=1,secret77", "=secret77", "authorization=secret77%"}) {
    const CliResult r = run_check(endpoint + " OTEL_EXPORTER_OTLP_HEADERS='" + list + "' " + check_binary());
    EXPECT_EQ(r.exit_code, 2) << list << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("OTEL_EXPORTER_OTLP_HEADERS")) << list;
    EXPECT_THAT(r.output, Not(HasSubstr("secret77"))) << list;
    std::vector<std::pair<std::string, std::string>> parsed;
    EXPECT_FALSE(parse_otlp_headers("OTEL_EXPORTER_OTLP_HEADERS", list, parsed).empty()) << list;
  }
  EXPECT_EQ(server.request_count(), 0U);
}

// A header written the HTTP way ("Authorization: Basic <token>") where a name goes: no message
// quotes the name past its leading token, from the variable, --header-file, --header-env or
// --header; the message says how to write it.
TEST_F(CheckCli, NeverQuotesAHeaderWrittenAsNameColonValue) {
  RawHttpServer server(answer(200));
  const std::string endpoint = "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:" + std::to_string(server.port());
  const std::string file = ::testing::TempDir() + "/tracecast_check_header_line";
  {
    std::ofstream out(file);
    out << "Authorization: Basic dXNlcjpTRUNSRVRQQVNT=\n";
  }
  const std::string runs[] = {
      endpoint + " OTEL_EXPORTER_OTLP_HEADERS='Authorization: Basic dXNlcjpTRUNSRVRQQVNT=' " + check_binary(),
      endpoint + " OTEL_EXPORTER_OTLP_HEADERS='Authorization: Basic dXNlcjpTRUNSRVRQQVNT=%zz' " + check_binary(),
      endpoint + " OTEL_EXPORTER_OTLP_HEADERS='Bearer dXNlcjpTRUNSRVRQQVNT=x' " + check_binary(),
      endpoint + " " + check_binary() + " --header-file " + file,
      endpoint + " MY_VAR=v " + check_binary() + " --header-env 'Authorization: Basic dXNlcjpTRUNSRVRQQVNT=MY_VAR'",
      endpoint + " " + check_binary() + " --header-env 'Authorization: Basic dXNlcjpTRUNSRVRQQVNT=UNSET_VAR_X'",
  };
  for (const std::string& run : runs) {
    const CliResult r = run_check(run);
    EXPECT_EQ(r.exit_code, 2) << run << ": " << r.output;
    EXPECT_THAT(r.output, Not(HasSubstr("dXNlcjpTRUNSRVRQQVNT"))) << run;
    EXPECT_THAT(r.output, Not(HasSubstr("Basic"))) << run;
  }
  const CliResult r = run_check(runs[0]);
  EXPECT_THAT(r.output, HasSubstr("header #1 (Authorization: ...)"));
  EXPECT_THAT(r.output, HasSubstr("Name=value"));
  EXPECT_EQ(server.request_count(), 0U);
}

TEST(DisplayHeaderName, ShowsATokenOrTheTokenBeforeAColonAndNothingElse) {
  EXPECT_EQ(display_header_name("x-api-key"), "x-api-key");
  EXPECT_EQ(display_header_name("Authorization: Bearer s3cret"), "Authorization: ...");
  EXPECT_EQ(display_header_name(" Authorization :Bearer s3cret"), "Authorization: ...");
  EXPECT_EQ(display_header_name("Bearer s3cret"), "");
  EXPECT_EQ(display_header_name("s3cret token: x"), "");
  EXPECT_EQ(display_header_name(std::string(300, 'a')), "");
  EXPECT_EQ(display_header_name(""), "");
  EXPECT_EQ(header_line_hint("x-api-key"), "");
  EXPECT_NE(header_line_hint("Authorization: Bearer x").find("Name=value"), std::string_view::npos);
  std::vector<std::pair<std::string, std::string>> out;
  std::string e = parse_otlp_headers("V", "Authorization: Bearer s3cret=%zz", out);
  EXPECT_EQ(e.find("s3cret"), std::string::npos) << e;
  EXPECT_NE(e.find("'Authorization: ...'"), std::string::npos) << e;
  e = parse_otlp_headers("V", "Bearer s3cret=%0A", out);
  EXPECT_EQ(e.find("s3cret"), std::string::npos) << e;
  DestinationConfig d;
  d.endpoint = "https://example.com/v1/traces";
  d.headers = {{"Authorization: Basic s3cret", ""}, {"Bearer s3cret", "x"}};
  const auto issues = validate(d);
  ASSERT_EQ(issues.size(), 2u);
  for (const auto& i : issues) {
    EXPECT_EQ(i.message.find("s3cret"), std::string::npos) << i.message;
    EXPECT_NE(i.message.find("Name=value"), std::string::npos) << i.message;
  }
  EXPECT_NE(issues[0].message.find("header #1 (Authorization: ...)"), std::string::npos) << issues[0].message;
}

TEST(OtlpHeaders, ParsesTheSpecFormatAndNamesTheProblemWithoutTheValue) {
  std::vector<std::pair<std::string, std::string>> out;
  EXPECT_EQ(parse_otlp_headers("V", " x-tenant = acme ,, authorization=Bearer%20tok%3D%2C ,", out), "");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0], (std::pair<std::string, std::string>{"x-tenant", "acme"}));
  EXPECT_EQ(out[1], (std::pair<std::string, std::string>{"authorization", "Bearer tok=,"}));
  EXPECT_EQ(parse_otlp_headers("V", "a=%0D%0Aevil", out), "V: the value of header 'a' contains CR, LF or NUL");
  const std::string e = parse_otlp_headers("V", "k=%4", out);
  EXPECT_NE(e.find("invalid percent-encoding in the value of 'k'"), std::string::npos) << e;
  EXPECT_EQ(parse_otlp_headers("V", "tok-secret", out).find("tok-secret"), std::string::npos);
  EXPECT_EQ(parse_otel_key_values("R", "service.name=a%2Cb", false, out), "");
  EXPECT_EQ(out[0].second, "a,b");
}

TEST_F(CheckCli, ExitsTwoOnInvalidSettings) {
  const CliResult r = run_check(check_binary() + " --kind grafana_cloud --endpoint https://mystack.grafana.net "
                                "--instance-id abc");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("main Grafana URL"));
  EXPECT_THAT(r.output, HasSubstr("numeric"));
  EXPECT_THAT(r.output, HasSubstr("missing API key"));
}

TEST_F(CheckCli, ReportsConnectRefusedWithExitOne) {
  const CliResult r = run_check(check_binary() + " --endpoint http://127.0.0.1:" +
                                std::to_string(test::unused_port()) + "/v1/traces --timeout 2s");
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("connect_refused"));
}

TEST_F(CheckCli, RefusesAnInternalAddressByDefaultWithoutConnecting) {
  RawHttpServer server(answer(200));
  const CliResult r = run_check(check_binary() + " --endpoint http://2130706433:" + std::to_string(server.port()) +
                                    "/v1/traces",
                                /*allow_loopback=*/false);
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_THAT(r.output, HasSubstr("result: blocked"));
  EXPECT_THAT(r.output, HasSubstr("egress policy"));
  EXPECT_EQ(server.connections(), 0U);
  // --egress-allow lets the operator's own collector through.
  const CliResult allowed = run_check(check_binary() + " --egress-allow 127.0.0.0/8 --endpoint " + server.url(),
                                      /*allow_loopback=*/false);
  EXPECT_EQ(allowed.exit_code, 0) << allowed.output;
}

TEST_F(CheckCli, TakesHeaderValuesFromTheEnvironmentOrAFileAndWarnsAboutArgv) {
  RawHttpServer server(answer(200));
  const std::string file = ::testing::TempDir() + "/tracecast_check_headers";
  {
    std::ofstream out(file);
    out << "# comment\nx-from-file = file-secret-42\n";
  }
  const CliResult r = run_check("MY_TOKEN='Bearer env-secret-77' " + check_binary() + " --endpoint " + server.url() +
                                " --header-env authorization=MY_TOKEN --header-file " + file);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  ASSERT_EQ(server.request_count(), 1U);
  EXPECT_EQ(server.requests()[0].header("authorization"), "Bearer env-secret-77");
  EXPECT_EQ(server.requests()[0].header("x-from-file"), "file-secret-42");
  EXPECT_THAT(r.output, Not(HasSubstr("env-secret-77")));
  EXPECT_THAT(r.output, Not(HasSubstr("file-secret-42")));
  EXPECT_THAT(r.output, Not(HasSubstr("warning: --header")));
  const CliResult argv = run_check(check_binary() + " --endpoint " + server.url() + " --header x-key=argv-secret-99");
  EXPECT_EQ(argv.exit_code, 0) << argv.output;
  EXPECT_THAT(argv.output, HasSubstr("visible to every local user"));
  EXPECT_THAT(argv.output, Not(HasSubstr("argv-secret-99")));
  const CliResult query = run_check(check_binary() + " --endpoint '" + server.url() + "?token=query-secret-55'");
  EXPECT_THAT(query.output, HasSubstr("user info or a query string"));
  EXPECT_THAT(query.output, Not(HasSubstr("query-secret-55")));
  const CliResult unset = run_check(check_binary() + " --endpoint " + server.url() + " --header-env x=NOT_SET_ANYWHERE");
  EXPECT_EQ(unset.exit_code, 2) << unset.output;
  std::filesystem::remove(file);
}

}  // namespace
}  // namespace tracecast
