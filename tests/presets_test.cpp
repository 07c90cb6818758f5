// The destination preset catalog (tracecast/presets.h): per preset, the exact URL, headers and
// resource attributes produced from a user's fields; validation errors (never quoting a
// secret); the request a local server receives; the connection test's hints in the backend's
// words; the empty test payload; config-file loading; the CLI flags.
#include "tracecast/presets.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <map>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "egress_util.h"
#include "otlp_test.pb.h"
#include "raw_http_server.h"
#include "tracecast/connection_test.h"
#include "tracecast/destination.h"
#include "tracecast/pipeline.h"
#include "fake_env.h"

namespace tracecast {
namespace {

using namespace std::chrono_literals;
using ::testing::Contains;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using test::RawHttpServer;
using test::RawRequest;
using test::RawResponse;
using Fields = std::vector<std::pair<std::string, std::string>>;

// ---- the catalog ------------------------------------------------------------------------------

TEST(PresetCatalog, HasOneRowPerKindFoundByItsName) {
  ASSERT_EQ(presets().size(), static_cast<std::size_t>(DestinationKind::posthog) + 1);
  for (const PresetInfo& row : presets()) {
    EXPECT_EQ(&preset_info(row.kind), &row);
    EXPECT_EQ(find_preset(row.name), &row);
    EXPECT_EQ(to_string(row.kind), row.name);
    EXPECT_FALSE(row.display_name.empty()) << row.name;
    EXPECT_THAT(std::string(row.doc_url), ::testing::StartsWith("https://")) << row.name;
    EXPECT_TRUE(row.default_protocol == "http/json" || row.default_protocol == "http/protobuf") << row.name;
    EXPECT_FALSE(row.default_convention.empty()) << row.name;
    if (!row.regions.empty()) {
      bool found = false;
      for (const PresetRegion& r : row.regions) found = found || r.name == row.default_region;
      EXPECT_TRUE(found) << row.name << ": default region not among its regions";
    }
  }
  EXPECT_EQ(find_preset("grafana"), &preset_info(DestinationKind::grafana_cloud));
  EXPECT_EQ(find_preset("tempo"), nullptr);
}

TEST(PresetCatalog, CarriesTheBackendsLimitsProtocolsAndConventions) {
  const PresetInfo& nr = preset_info(DestinationKind::new_relic);
  EXPECT_EQ(nr.max_request_bytes, 1000000u);
  EXPECT_EQ(nr.max_attribute_value_bytes, 4095u);
  EXPECT_EQ(nr.default_protocol, "http/protobuf");
  EXPECT_TRUE(preset_info(DestinationKind::arize_phoenix).protobuf_only);
  EXPECT_TRUE(preset_info(DestinationKind::wandb_weave).protobuf_only);
  EXPECT_FALSE(preset_info(DestinationKind::langfuse).protobuf_only);
  EXPECT_EQ(preset_info(DestinationKind::langfuse).default_convention, "langfuse");
  EXPECT_EQ(preset_info(DestinationKind::langsmith).default_convention, "langsmith");
  EXPECT_EQ(preset_info(DestinationKind::arize_phoenix).default_convention, "openinference");
  EXPECT_EQ(preset_info(DestinationKind::grafana_cloud).default_convention, "openrouter");
}

// ---- resolve(): URL, headers, resource attributes per preset -----------------------------------

struct ResolveCase {
  DestinationKind kind;
  std::string endpoint;
  Fields fields;
  std::string url;
  std::vector<std::string> headers;  // after Content-Type
  Fields resource;
};

DestinationConfig preset_config(DestinationKind kind, const std::string& endpoint, const Fields& fields) {
  DestinationConfig d;
  d.kind = kind;
  d.name = std::string(to_string(kind));
  d.endpoint = endpoint;
  d.fields = fields;
  apply_preset_defaults(d);
  return d;
}

bool has_issue_named(const std::vector<ValidationIssue>& issues, const std::string& field) {
  for (const auto& i : issues) {
    if (!i.warning && i.path == field) return true;
  }
  return false;
}

const std::vector<ResolveCase>& resolve_cases() {
  static const std::vector<ResolveCase> cases = {
      {DestinationKind::langfuse, "", {{"public_key", "pk-lf-abc"}, {"secret_key", "sk-lf-def"}, {"region", "us"}},
       "https://us.cloud.langfuse.com/api/public/otel/v1/traces",
       {"Authorization: Basic cGstbGYtYWJjOnNrLWxmLWRlZg==", "x-langfuse-ingestion-version: 4"}, {}},
      {DestinationKind::langsmith, "", {{"api_key", "lsv2_pt_k"}, {"project", "proj-1"}, {"region", "eu"}},
       "https://eu.api.smith.langchain.com/otel/v1/traces", {"x-api-key: lsv2_pt_k", "Langsmith-Project: proj-1"}, {}},
      {DestinationKind::honeycomb, "", {{"api_key", "hcik_1"}, {"region", "eu"}}, "https://api.eu1.honeycomb.io/v1/traces",
       {"x-honeycomb-team: hcik_1"}, {}},
      {DestinationKind::new_relic, "", {{"api_key", "NRAK-1"}}, "https://otlp.nr-data.net:4318/v1/traces",
       {"api-key: NRAK-1"}, {}},
      {DestinationKind::datadog, "", {{"api_key", "0123456789abcdef0123456789abcdef"}, {"site", "datadoghq.eu"}},
       "https://otlp.datadoghq.eu/v1/traces",
       {"dd-api-key: 0123456789abcdef0123456789abcdef", "dd-otlp-source: llmobs"}, {}},
      {DestinationKind::braintrust, "", {{"api_key", "sk-bt1"}, {"project_id", "p-123"}},
       "https://api.braintrust.dev/otel/v1/traces", {"Authorization: Bearer sk-bt1", "x-bt-parent: project_id:p-123"}, {}},
      {DestinationKind::arize_ax, "", {{"space_id", "U3BhY2U6MQ=="}, {"api_key", "ak-1"}, {"project_name", "gateway"}},
       "https://otlp.arize.com/v1/traces", {"space_id: U3BhY2U6MQ==", "api_key: ak-1"},
       {{"openinference.project.name", "gateway"}}},
      {DestinationKind::arize_phoenix, "https://phoenix.example.com/", {{"api_key", "phx_1"}, {"project_name", "gw"}},
       "https://phoenix.example.com/v1/traces", {"Authorization: Bearer phx_1"}, {{"openinference.project.name", "gw"}}},
      {DestinationKind::wandb_weave, "", {{"api_key", "wk1"}, {"entity", "team"}, {"project", "proj"}},
       "https://trace.wandb.ai/otel/v1/traces", {"wandb-api-key: wk1"},
       {{"wandb.entity", "team"}, {"wandb.project", "proj"}}},
      {DestinationKind::comet_opik, "", {{"api_key", "ok1"}, {"workspace", "ws"}, {"project", "p"}},
       "https://www.comet.com/opik/api/v1/private/otel/v1/traces",
       {"Authorization: ok1", "Comet-Workspace: ws", "projectName: p"}, {}},
      {DestinationKind::sentry, "https://o123.ingest.us.sentry.io",
       {{"project_id", "456"}, {"public_key", "0123456789abcdef0123456789abcdef"}},
       "https://o123.ingest.us.sentry.io/api/456/integration/otlp/v1/traces",
       {"x-sentry-auth: sentry sentry_key=0123456789abcdef0123456789abcdef"}, {}},
      {DestinationKind::posthog, "", {{"api_key", "phc_1"}, {"region", "eu"}}, "https://eu.i.posthog.com/i/v0/ai/otel",
       {"Authorization: Bearer phc_1"}, {}},
  };
  return cases;
}

TEST(PresetResolve, GivesEachBackendsUrlHeadersAndResourceAttributes) {
  for (const ResolveCase& c : resolve_cases()) {
    SCOPED_TRACE(std::string(to_string(c.kind)));
    const DestinationConfig d = preset_config(c.kind, c.endpoint, c.fields);
    const auto issues = validate(d);
    for (const auto& i : issues) ADD_FAILURE() << i.path << ": " << i.message;
    const ResolvedDestination r = resolve(d);
    EXPECT_EQ(r.url, c.url);
    ASSERT_FALSE(r.header_lines.empty());
    const PresetInfo& row = preset_info(c.kind);
    EXPECT_EQ(r.header_lines.front(), row.default_protocol == "http/protobuf" ? "Content-Type: application/x-protobuf"
                                                                             : "Content-Type: application/json");
    EXPECT_THAT(std::vector<std::string>(r.header_lines.begin() + 1, r.header_lines.end()), ElementsAreArray(c.headers));
    EXPECT_THAT(r.resource_attributes, ElementsAreArray(c.resource));
    EXPECT_EQ(r.max_request_bytes, row.max_request_bytes);
    EXPECT_EQ(r.max_attribute_value_bytes, row.max_attribute_value_bytes);
    EXPECT_EQ(r.convention, row.default_convention);
    EXPECT_EQ(r.compression, "gzip");
  }
}

// Every preset puts its path before a query the endpoint carries ("?tok=..."), which stays.
TEST(PresetResolve, InsertsThePathBeforeTheQueryForEveryPreset) {
  for (const ResolveCase& c : resolve_cases()) {
    SCOPED_TRACE(std::string(to_string(c.kind)));
    const std::string want = c.url + "?tok=abc";
    // The full URL with a query: kept as it is.
    EXPECT_EQ(resolve(preset_config(c.kind, c.url + "?tok=abc", c.fields)).url, want);
    EXPECT_EQ(resolve(preset_config(c.kind, c.url + "/?tok=abc", c.fields)).url, want);
    // The origin with a query: the path goes before it (where the origin alone gives c.url).
    const std::string origin = c.url.substr(0, c.url.find('/', c.url.find("://") + 3));
    if (resolve(preset_config(c.kind, origin, c.fields)).url != c.url) continue;
    EXPECT_EQ(resolve(preset_config(c.kind, origin + "/?tok=abc", c.fields)).url, want);
    EXPECT_EQ(resolve(preset_config(c.kind, origin + "?tok=abc#f", c.fields)).url, c.url + "?tok=abc#f");
  }
  const Fields keys = {{"public_key", "pk-lf-a"}, {"secret_key", "sk-lf-b"}};
  EXPECT_EQ(resolve(preset_config(DestinationKind::langfuse, "http://lf.internal:3000/?tok=abc", keys)).url,
            "http://lf.internal:3000/api/public/otel/v1/traces?tok=abc");
  EXPECT_EQ(resolve(preset_config(DestinationKind::langfuse, "https://lf.example.com/api/public/otel?tok=abc", keys)).url,
            "https://lf.example.com/api/public/otel/v1/traces?tok=abc");
}

TEST(PresetResolve, UsesTheDefaultRegionAndASelfHostedBaseUrl) {
  const Fields keys = {{"public_key", "pk-lf-a"}, {"secret_key", "sk-lf-b"}};
  EXPECT_EQ(resolve(preset_config(DestinationKind::langfuse, "", keys)).url,
            "https://cloud.langfuse.com/api/public/otel/v1/traces");
  EXPECT_EQ(resolve(preset_config(DestinationKind::langfuse, "http://lf.internal:3000", keys)).url,
            "http://lf.internal:3000/api/public/otel/v1/traces");
  // The OTLP base the backend's page gives (OTEL_EXPORTER_OTLP_ENDPOINT) and the full URL both work.
  EXPECT_EQ(resolve(preset_config(DestinationKind::langfuse, "https://lf.example.com/api/public/otel", keys)).url,
            "https://lf.example.com/api/public/otel/v1/traces");
  EXPECT_EQ(resolve(preset_config(DestinationKind::langfuse, "https://lf.example.com/api/public/otel/v1/traces", keys)).url,
            "https://lf.example.com/api/public/otel/v1/traces");
  // LangSmith self-hosted lives under /api/v1.
  EXPECT_EQ(resolve(preset_config(DestinationKind::langsmith, "https://ls.example.com/api/v1", {{"api_key", "lsv2_x"}})).url,
            "https://ls.example.com/api/v1/otel/v1/traces");
}

TEST(PresetResolve, AnEmptyFieldValueCountsAsNotGiven) {
  const DestinationConfig d =
      preset_config(DestinationKind::posthog, "", {{"api_key", "phc_1"}, {"region", ""}});
  EXPECT_FALSE(has_errors(validate(d)));
  EXPECT_EQ(resolve(d).url, "https://us.i.posthog.com/i/v0/ai/otel");  // the default region
  EXPECT_TRUE(has_issue_named(validate(preset_config(DestinationKind::posthog, "", {{"api_key", ""}})), "fields.api_key"));
}

TEST(PresetResolve, LeavesOutHeadersOfOptionalFieldsNotGiven) {
  const ResolvedDestination r = resolve(preset_config(DestinationKind::arize_phoenix, "http://phoenix:6006", {}));
  EXPECT_EQ(r.url, "http://phoenix:6006/v1/traces");
  EXPECT_THAT(r.header_lines, ElementsAreArray({"Content-Type: application/x-protobuf"}));
  EXPECT_THAT(r.resource_attributes, IsEmpty());
}

TEST(PresetResolve, KeepsTheOriginalKindsAsBefore) {
  DestinationConfig g;
  g.kind = DestinationKind::grafana_cloud;
  g.endpoint = "https://otlp-gateway-prod-eu-west-2.grafana.net";
  g.fields = {{"instance_id", "123456"}, {"api_key", "glc_k"}};
  apply_preset_defaults(g);  // grafana's fields move into their members
  EXPECT_EQ(g.instance_id, "123456");
  EXPECT_EQ(g.api_key, "glc_k");
  EXPECT_TRUE(g.fields.empty());
  EXPECT_FALSE(has_errors(validate(g)));
  const ResolvedDestination r = resolve(g);
  EXPECT_EQ(r.url, "https://otlp-gateway-prod-eu-west-2.grafana.net/otlp/v1/traces");
  const std::vector<std::string> expected = {"Content-Type: application/json",
                                             "Authorization: Basic " + base64_encode("123456:glc_k")};
  EXPECT_EQ(r.header_lines, expected);
  EXPECT_EQ(r.compression, "gzip");
  DestinationConfig c;
  c.kind = DestinationKind::otel_collector;
  c.endpoint = "http://collector:4318";
  EXPECT_EQ(resolve(c).url, "http://collector:4318/v1/traces");
  EXPECT_EQ(resolve(c).compression, "zstd");
}

// ---- validate() -------------------------------------------------------------------------------

std::vector<ValidationIssue> errors_of(const DestinationConfig& d) {
  std::vector<ValidationIssue> out;
  for (const auto& i : validate(d)) {
    if (!i.warning) out.push_back(i);
  }
  return out;
}

bool has_issue(const std::vector<ValidationIssue>& issues, const std::string& field, const std::string& words) {
  for (const auto& i : issues) {
    if (i.path == field && i.message.find(words) != std::string::npos) return true;
  }
  return false;
}

TEST(PresetValidate, NamesAMissingRequiredField) {
  const auto issues = errors_of(preset_config(DestinationKind::langfuse, "", {{"public_key", "pk-lf-a"}}));
  EXPECT_TRUE(has_issue(issues, "fields.secret_key", "missing Langfuse secret_key")) << issues.size();
  EXPECT_TRUE(has_issue(errors_of(preset_config(DestinationKind::wandb_weave, "", {{"api_key", "k"}, {"entity", "e"}})),
                        "fields.project", "missing W&B Weave project"));
}

TEST(PresetValidate, RefusesMalformedValuesAndUnknownRegions) {
  EXPECT_TRUE(has_issue(errors_of(preset_config(DestinationKind::sentry, "https://o1.ingest.us.sentry.io",
                                                {{"project_id", "my-project"}, {"public_key", "abcdef01"}})),
                        "fields.project_id", "must be numeric"));
  EXPECT_TRUE(has_issue(errors_of(preset_config(DestinationKind::langfuse, "",
                                                {{"public_key", "pk-lf-a"}, {"secret_key", "sk-lf-b"}, {"region", "mars"}})),
                        "fields.region", "Langfuse has eu, us, jp, hipaa"));
  EXPECT_TRUE(has_issue(errors_of(preset_config(DestinationKind::datadog, "", {{"api_key", "0123abcd"}, {"site", "datadog.com"}})),
                        "fields.site", "unknown site"));
  EXPECT_TRUE(has_issue(errors_of(preset_config(DestinationKind::langfuse, "", {{"public_key", "pk-lf-a"}, {"secret_key", "b"},
                                                                               {"project", "x"}})),
                        "fields", "'project' is not a field of the Langfuse preset (public_key, secret_key, region)"));
}

TEST(PresetValidate, RefusesTheBackendsWebAppHost) {
  EXPECT_TRUE(has_issue(errors_of(preset_config(DestinationKind::sentry, "https://sentry.io",
                                                {{"project_id", "1"}, {"public_key", "abcdef01"}})),
                        "endpoint", "o<org>.ingest.<region>.sentry.io"));
  EXPECT_TRUE(has_issue(errors_of(preset_config(DestinationKind::posthog, "https://app.posthog.com", {{"api_key", "phc_x"}})),
                        "endpoint", "us.i.posthog.com"));
  EXPECT_TRUE(has_issue(errors_of(preset_config(DestinationKind::arize_phoenix, "", {})), "endpoint", "missing endpoint"));
  // Sentry's ingest host is built from the org ID and region, or given as the endpoint.
  EXPECT_TRUE(has_issue(errors_of(preset_config(DestinationKind::sentry, "", {{"project_id", "1"}, {"public_key", "ab"}})),
                        "fields.org_id", "missing Sentry org_id"));
  const DestinationConfig by_org = preset_config(
      DestinationKind::sentry, "", {{"org_id", "4509"}, {"region", "de"}, {"project_id", "77"}, {"public_key", "0123456789abcdef0123456789abcdef"}});
  EXPECT_FALSE(has_errors(validate(by_org)));
  EXPECT_EQ(resolve(by_org).url, "https://o4509.ingest.de.sentry.io/api/77/integration/otlp/v1/traces");
}

// Sentry shows one string, the DSN: it gives the ingest host (hosted: org and region; or a
// self-hosted host), the project and the key at once. Malformed or contradicted: a specific
// error that never quotes the DSN or its key.
TEST(PresetValidate, SentryTakesTheProjectsDsnWhole) {
  const std::string key = "0123456789abcdef0123456789abcdef";
  const std::string auth = "x-sentry-auth: sentry sentry_key=" + key;
  struct Case {
    std::string dsn, url;
  };
  const Case ok[] = {
      {"https://" + key + "@o4509.ingest.de.sentry.io/77", "https://o4509.ingest.de.sentry.io/api/77/integration/otlp/v1/traces"},
      {"https://" + key + "@o1.ingest.sentry.io/5/", "https://o1.ingest.us.sentry.io/api/5/integration/otlp/v1/traces"},
      {"https://" + key + ":legacysecret@o2.ingest.us.sentry.io/6", "https://o2.ingest.us.sentry.io/api/6/integration/otlp/v1/traces"},
      {"http://" + key + "@sentry.internal:9000/3", "http://sentry.internal:9000/api/3/integration/otlp/v1/traces"},
  };
  for (const Case& c : ok) {
    SCOPED_TRACE(c.url);
    const DestinationConfig d = preset_config(DestinationKind::sentry, "", {{"dsn", c.dsn}});
    for (const auto& i : validate(d)) ADD_FAILURE() << i.path << ": " << i.message;
    const ResolvedDestination r = resolve(d);
    EXPECT_EQ(r.url, c.url);
    EXPECT_THAT(r.header_lines, Contains(auth));
    EXPECT_THAT(redact_secrets("dsn " + c.dsn, d), Not(HasSubstr(key)));
  }
  const std::string bad[] = {"https://o1.ingest.us.sentry.io/5",           // no key
                             "https://" + key + "@o1.ingest.us.sentry.io",  // no project
                             "https://" + key + "@o1.ingest.us.sentry.io/my-project",
                             "https://" + key + "@myorg.sentry.io/5",        // the web app host
                             "http://" + key + "@o1.ingest.us.sentry.io/5",  // hosted is https
                             key};
  for (const std::string& dsn : bad) {
    SCOPED_TRACE(dsn);
    const auto issues = errors_of(preset_config(DestinationKind::sentry, "", {{"dsn", dsn}}));
    EXPECT_TRUE(has_issue(issues, "fields.dsn", "does not have Sentry's shape"));
    for (const auto& i : issues) EXPECT_THAT(i.message, Not(HasSubstr(key)));
  }
  // A malformed DSN is the one error for the fields it would give: no "missing public_key".
  for (const std::string& dsn : bad) {
    SCOPED_TRACE(dsn);
    const auto issues = errors_of(preset_config(DestinationKind::sentry, "", {{"dsn", dsn}}));
    for (const auto& i : issues) EXPECT_EQ(i.path, "fields.dsn") << i.message;
    EXPECT_EQ(issues.size(), 1u);
  }
  // A query string (what some SDK snippets append) is not part of the DSN's shape.
  {
    const DestinationConfig d =
        preset_config(DestinationKind::sentry, "", {{"dsn", "https://" + key + "@o4509.ingest.de.sentry.io/77?timeout=5"}});
    for (const auto& i : errors_of(d)) ADD_FAILURE() << i.path << ": " << i.message;
    EXPECT_EQ(resolve(d).url, "https://o4509.ingest.de.sentry.io/api/77/integration/otlp/v1/traces");
  }
  // A field given beside the DSN must agree with it.
  const auto issues = errors_of(preset_config(
      DestinationKind::sentry, "", {{"dsn", "https://" + key + "@o4509.ingest.de.sentry.io/77"}, {"project_id", "78"}}));
  EXPECT_TRUE(has_issue(issues, "fields.project_id", "differs from the DSN's project_id"));
  EXPECT_EQ(errors_of(preset_config(DestinationKind::sentry, "",
                                    {{"dsn", "https://" + key + "@o4509.ingest.de.sentry.io/77"}, {"project_id", "77"}}))
                .size(),
            0u);
}

// api_key given to a preset without an api_key field (Langfuse's are public_key and
// secret_key) would be dropped unseen: an error naming the preset's fields, never the key.
TEST(PresetValidate, RefusesAnApiKeyForAPresetWithoutAnApiKeyField) {
  DestinationConfig d = preset_config(DestinationKind::langfuse, "", {{"public_key", "pk-lf-a"}, {"secret_key", "sk-lf-b"}});
  d.api_key = "sk-lf-unused-secret";
  const auto issues = errors_of(d);
  EXPECT_TRUE(has_issue(issues, "api_key", "it takes the fields public_key, secret_key"));
  for (const auto& i : issues) EXPECT_THAT(i.message, Not(HasSubstr("unused-secret")));
}

// The web apps users paste by mistake, regional ones included, in any case and with the
// absolute form's trailing dot; never the real intake hosts next to them.
TEST(PresetValidate, RefusesRegionalWebAppHostsButNotTheIntakeHostsBesideThem) {
  const Fields dd = {{"api_key", "0123456789abcdef0123456789abcdef"}};
  const Fields sentry = {{"project_id", "1"}, {"public_key", "0123456789abcdef0123456789abcdef"}};
  const struct {
    DestinationKind kind;
    std::string endpoint;
    Fields fields;
    bool refused;
  } cases[] = {
      {DestinationKind::langsmith, "https://eu.smith.langchain.com", {{"api_key", "lsv2_k"}}, true},
      {DestinationKind::langsmith, "https://eu.api.smith.langchain.com", {{"api_key", "lsv2_k"}}, false},
      {DestinationKind::sentry, "https://myorg.sentry.io", sentry, true},
      {DestinationKind::sentry, "https://o1.ingest.us.sentry.io", sentry, false},
      {DestinationKind::honeycomb, "https://ui.eu1.honeycomb.io", {{"api_key", "hcaik_k"}}, true},
      {DestinationKind::honeycomb, "https://UI.Honeycomb.io.", {{"api_key", "hcaik_k"}}, true},
      {DestinationKind::honeycomb, "https://api.eu1.honeycomb.io", {{"api_key", "hcaik_k"}}, false},
      {DestinationKind::new_relic, "https://one.eu.newrelic.com", {{"api_key", "k"}}, true},
      {DestinationKind::datadog, "https://app.datadoghq.eu", dd, true},
      {DestinationKind::datadog, "https://us3.datadoghq.com", dd, true},
      {DestinationKind::datadog, "https://otlp.us3.datadoghq.com", dd, false},
  };
  for (const auto& c : cases) {
    const auto errors = errors_of(preset_config(c.kind, c.endpoint, c.fields));
    EXPECT_EQ(has_issue_named(errors, "endpoint"), c.refused) << c.endpoint;
  }
}

TEST(PresetValidate, ChecksKeyLengthsAndRefusesAnApiKeyGivenTwice) {
  EXPECT_TRUE(has_issue(errors_of(preset_config(DestinationKind::datadog, "", {{"api_key", "abc"}})), "fields.api_key",
                        "must be 32 hexadecimal digits"));
  EXPECT_FALSE(has_issue_named(errors_of(preset_config(DestinationKind::datadog, "", {{"api_key", "0123456789abcdef0123456789abcdef"}})),
                               "fields.api_key"));
  DestinationConfig twice = preset_config(DestinationKind::honeycomb, "", {{"api_key", "hcaik_FIELDS"}});
  twice.api_key = "hcaik_TOPLEVEL";
  const auto issues = errors_of(twice);
  EXPECT_TRUE(has_issue(issues, "fields.api_key", "given twice"));
  for (const auto& i : issues) EXPECT_EQ(i.message.find("hcaik_"), std::string::npos) << i.message;
}

TEST(PresetValidate, RefusesJsonToProtobufOnlyBackendsAndUnsupportedCompression) {
  DestinationConfig phoenix = preset_config(DestinationKind::arize_phoenix, "http://phoenix:6006", {});
  EXPECT_EQ(phoenix.protocol, "http/protobuf");  // the preset's default
  EXPECT_FALSE(has_errors(validate(phoenix)));
  phoenix.protocol = "http/json";
  EXPECT_TRUE(has_issue(errors_of(phoenix), "protocol", "protobuf only"));
  DestinationConfig lf = preset_config(DestinationKind::langfuse, "", {{"public_key", "pk-lf-a"}, {"secret_key", "sk-lf-b"}});
  lf.compression = "zstd";
  EXPECT_TRUE(has_issue(errors_of(lf), "compression", "Langfuse accepts none, gzip only"));
  lf.compression = "gzip";
  lf.headers = {{"authorization", "Bearer x"}};
  EXPECT_TRUE(has_issue(errors_of(lf), "headers", "set by the Langfuse preset"));
}

TEST(PresetValidate, WarnsAboutAKeyWithoutItsUsualPrefix) {
  const auto issues = validate(preset_config(DestinationKind::langfuse, "", {{"public_key", "sk-lf-a"}, {"secret_key", "sk-lf-b"}}));
  EXPECT_FALSE(has_errors(issues));
  bool warned = false;
  for (const auto& i : issues) warned = warned || (i.warning && i.path == "fields.public_key");
  EXPECT_TRUE(warned);
}

TEST(PresetValidate, NeverQuotesASecretField) {
  const std::string secret = "S3CRET-value-never-shown";
  for (const PresetInfo& row : presets()) {
    if (row.custom_rules) continue;
    SCOPED_TRACE(std::string(row.name));
    // Every secret field holds the marker, malformed (a control byte, or for hex fields any
    // non-hex text); every other field is malformed too, and the endpoint is a wrong host.
    Fields fields;
    for (const PresetField& f : row.fields) {
      if (f.secret) {
        fields.emplace_back(f.name, f.check == PresetFieldCheck::hex ? secret : secret + "\x01");
      } else {
        fields.emplace_back(f.name, f.check == PresetFieldCheck::any ? "" : "bad value!");
      }
    }
    fields.emplace_back("unknown_field", secret);
    DestinationConfig d = preset_config(row.kind, row.wrong_hosts.empty() ? "" : "https://" + std::string(row.wrong_hosts[0].host), fields);
    d.api_key = secret;
    d.headers = {{"x-extra", secret}};
    const auto issues = validate(d);
    EXPECT_TRUE(has_errors(issues));
    for (const auto& i : issues) {
      EXPECT_THAT(i.message, Not(HasSubstr("S3CRET"))) << i.path;
      EXPECT_THAT(i.path, Not(HasSubstr("S3CRET")));
    }
    // And redact_secrets() hides every one, also inside the derived Basic credentials.
    const ResolvedDestination r = resolve(d);
    std::string all;
    for (const auto& line : r.header_lines) all += line + "\n";
    EXPECT_THAT(redact_secrets(all, d), Not(HasSubstr("S3CRET")));
  }
  DestinationConfig lf = preset_config(DestinationKind::langfuse, "", {{"public_key", "pk-lf-a"}, {"secret_key", secret}});
  const std::string basic = base64_encode("pk-lf-a:" + secret);
  EXPECT_THAT(redact_secrets("Authorization: Basic " + basic, lf), Not(HasSubstr(basic)));
  // What is not secret stays readable.
  const DestinationConfig bt = preset_config(DestinationKind::braintrust, "", {{"api_key", "sk-key1"}, {"project_id", "p-123"}});
  EXPECT_EQ(redact_secrets("x-bt-parent: project_id:p-123, Authorization: Bearer sk-key1", bt),
            "x-bt-parent: project_id:p-123, Authorization: ***");
}

// ---- what a server receives ---------------------------------------------------------------------

RawResponse ok_for(const RawRequest& r) {
  RawResponse out;
  if (r.header("content-type") == "application/x-protobuf") {
    out.body.clear();  // an empty ExportTraceServiceResponse
    out.headers = {{"Content-Type", "application/x-protobuf"}};
  } else {
    out.headers = {{"Content-Type", "application/json"}};
  }
  return out;
}

std::string path_of(const std::string& url) {
  const auto scheme = url.find("://");
  return url.substr(url.find('/', scheme + 3));
}

TEST(PresetRequest, ALocalServerReceivesExactlyThePresetsPathAndHeaders) {
  for (const ResolveCase& c : resolve_cases()) {
    SCOPED_TRACE(std::string(to_string(c.kind)));
    RawHttpServer server(ok_for);
    const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
    DestinationConfig d = preset_config(c.kind, base, c.fields);
    const ConnectionTestResult result = test_connection(d, 5s, test::loopback_egress());
    EXPECT_TRUE(result.ok()) << result.message << " / " << result.hint;
    const auto requests = server.requests();
    ASSERT_EQ(requests.size(), 1u);
    const RawRequest& req = requests.front();
    EXPECT_EQ(req.method, "POST");
    // The self-hosted form of the URL: the base given plus the preset's path (Opik Cloud's
    // "/opik" prefix belongs to its hosted base URL).
    EXPECT_EQ(base + req.path, resolve(d).url);
    if (c.kind != DestinationKind::comet_opik) {
      EXPECT_EQ(req.path, path_of(c.url));
    }
    for (const std::string& line : c.headers) {
      const auto colon = line.find(": ");
      std::string name = line.substr(0, colon);
      for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      EXPECT_EQ(req.header(name), line.substr(colon + 2)) << name;
    }
    const bool protobuf = preset_info(c.kind).default_protocol == "http/protobuf";
    EXPECT_EQ(req.header("content-type"), protobuf ? "application/x-protobuf" : "application/json");
    EXPECT_EQ(req.header("x-test-connection"), "");
    // The preset's resource attributes ride on the test span's resource.
    if (protobuf) {
      otlp::ExportTraceServiceRequest parsed;
      ASSERT_TRUE(parsed.ParseFromString(req.body));
      ASSERT_EQ(parsed.resource_spans_size(), 1);
      Fields got;
      for (const auto& kv : parsed.resource_spans(0).resource().attributes()) {
        if (kv.key() != "service.name") got.emplace_back(kv.key(), kv.value().string_value());
      }
      EXPECT_THAT(got, ElementsAreArray(c.resource));
    } else {
      for (const auto& [key, value] : c.resource) {
        EXPECT_THAT(req.body, HasSubstr(R"({"key":")" + key + R"(","value":{"stringValue":")" + value + R"("}})"));
      }
    }
  }
}

TEST(PresetRequest, TheEmptyTestPayloadCarriesXTestConnection) {
  RawHttpServer server(ok_for);
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  DestinationConfig json = preset_config(DestinationKind::posthog, base, {{"api_key", "phc_1"}});
  EXPECT_TRUE(test_connection(json, 5s, test::loopback_egress(), ConnectionTestPayload::empty).ok());
  DestinationConfig proto = preset_config(DestinationKind::wandb_weave, base, {{"api_key", "w"}, {"entity", "e"}, {"project", "p"}});
  EXPECT_TRUE(test_connection(proto, 5s, test::loopback_egress(), ConnectionTestPayload::empty).ok());
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].header("x-test-connection"), "true");
  EXPECT_EQ(requests[0].body, R"({"resourceSpans":[]})");
  EXPECT_EQ(requests[0].header("authorization"), "Bearer phc_1");
  EXPECT_EQ(requests[1].header("x-test-connection"), "true");
  EXPECT_EQ(requests[1].header("content-type"), "application/x-protobuf");
  otlp::ExportTraceServiceRequest parsed;
  EXPECT_TRUE(parsed.ParseFromString(requests[1].body));
  EXPECT_EQ(parsed.resource_spans_size(), 0);
  EXPECT_TRUE(requests[1].body.empty());
}

// ---- connection-test hints in the backend's words ------------------------------------------------

TEST(PresetHints, ConnectionTestAnswersInTheBackendsWords) {
  struct HintCase {
    DestinationKind kind;
    Fields fields;
    int status;
    std::string words;
  };
  const std::vector<HintCase> cases = {
      {DestinationKind::langfuse, {{"public_key", "pk-lf-a"}, {"secret_key", "sk-lf-b"}}, 401,
       "public and secret key of the Langfuse project"},
      {DestinationKind::langfuse, {{"public_key", "pk-lf-a"}, {"secret_key", "sk-lf-b"}}, 404, "/api/public/otel/v1/traces"},
      {DestinationKind::datadog, {{"api_key", "0123456789abcdef0123456789abcdef"}}, 403, "Datadog answers 403"},
      {DestinationKind::honeycomb, {{"api_key", "k"}}, 401, "Honeycomb ingest API key"},
      {DestinationKind::new_relic, {{"api_key", "k"}}, 403, "license key"},
      {DestinationKind::arize_phoenix, {}, 415, "Phoenix takes OTLP protobuf only"},
      {DestinationKind::wandb_weave, {{"api_key", "w"}, {"entity", "e"}, {"project", "p"}}, 415, "protobuf only"},
      {DestinationKind::sentry, {{"project_id", "1"}, {"public_key", "0123456789abcdef0123456789abcdef"}}, 404, "DSN"},
      {DestinationKind::posthog, {{"api_key", "phc_1"}}, 401, "PostHog project API key"},
      {DestinationKind::braintrust, {{"api_key", "sk-1"}, {"project_id", "p"}}, 400, "project_id"},
      {DestinationKind::comet_opik, {{"api_key", "k"}, {"workspace", "w"}}, 403, "Comet workspace"},
      {DestinationKind::langsmith, {{"api_key", "lsv2_k"}}, 401, "LangSmith API key"},
      {DestinationKind::arize_ax, {{"space_id", "s"}, {"api_key", "k"}, {"project_name", "p"}}, 401, "space ID"},
  };
  for (const HintCase& c : cases) {
    SCOPED_TRACE(std::string(to_string(c.kind)) + " " + std::to_string(c.status));
    RawHttpServer server([&](const RawRequest&) {
      RawResponse r;
      r.status = c.status;
      return r;
    });
    const DestinationConfig d = preset_config(c.kind, "http://127.0.0.1:" + std::to_string(server.port()), c.fields);
    const ConnectionTestResult result = test_connection(d, 5s, test::loopback_egress());
    EXPECT_FALSE(result.ok());
    EXPECT_EQ(result.http_status, c.status);
    EXPECT_THAT(result.hint, HasSubstr(c.words));
  }
  // A kind without its own words keeps the generic hint.
  EXPECT_THAT(connection_hint(ConnectionTestResult::Category::unauthorized, DestinationKind::otlp_http, 401),
              HasSubstr("credentials in the headers"));
  EXPECT_THAT(connection_hint(ConnectionTestResult::Category::client_error, DestinationKind::langfuse, 415),
              HasSubstr("accepting JSON"));
}

TEST(PresetHints, EveryPresetHasItsOwnWordsFor401403404And415) {
  using C = ConnectionTestResult::Category;
  const std::string generic_401 = connection_hint(C::unauthorized, DestinationKind::otlp_http, 401);
  const std::string generic_404 = connection_hint(C::not_found, DestinationKind::otlp_http, 404);
  for (const PresetInfo& row : presets()) {
    if (row.kind == DestinationKind::otlp_http || row.kind == DestinationKind::otel_collector) continue;
    SCOPED_TRACE(std::string(row.name));
    const bool protobuf = row.default_protocol == "http/protobuf";
    for (const int status : {401, 403}) {
      const std::string hint = connection_hint(C::unauthorized, row.kind, status, protobuf);
      EXPECT_NE(hint, generic_401);
      EXPECT_EQ(hint, row.hints.unauthorized);
    }
    EXPECT_NE(connection_hint(C::not_found, row.kind, 404, protobuf), generic_404);
    const std::string unsupported = connection_hint(C::client_error, row.kind, 415, protobuf);
    if (!row.hints.unsupported_media.empty()) {
      EXPECT_THAT(unsupported, HasSubstr("protobuf only"));
    } else {
      EXPECT_THAT(unsupported, HasSubstr(protobuf ? "accepting protobuf" : "accepting JSON"));
    }
  }
}

// ---- the config file -----------------------------------------------------------------------------

TEST(PresetConfig, TheConfigFileLoadsAPresetWithItsFields) {
  ::setenv("TRACECAST_TEST_LANGFUSE_SECRET", "sk-lf-from-env", 1);
  const ConfigLoadResult r = config_from_json(R"({"destinations": [
      {"account": "a1", "kind": "langfuse", "name": "lf",
       "fields": {"public_key": "pk-lf-1", "region": "us"},
       "fields_env": {"secret_key": "TRACECAST_TEST_LANGFUSE_SECRET"}},
      {"account": "a1", "kind": "arize_phoenix", "endpoint": "http://phoenix.internal:6006",
       "fields": {"project_name": "gateway"}}]})",
                                              "config.json");
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.destinations.size(), 2u);
  const DestinationConfig& lf = r.destinations[0].second.transport;
  EXPECT_EQ(lf.kind, DestinationKind::langfuse);
  EXPECT_EQ(preset_field_value(lf, "secret_key"), "sk-lf-from-env");
  EXPECT_EQ(resolve(lf).url, "https://us.cloud.langfuse.com/api/public/otel/v1/traces");
  const DestinationConfig& phoenix = r.destinations[1].second.transport;
  EXPECT_EQ(phoenix.protocol, "http/protobuf");  // the preset's default, filled by the loader
  EXPECT_TRUE(resolve(phoenix).protobuf);
  ::unsetenv("TRACECAST_TEST_LANGFUSE_SECRET");
}

TEST(PresetConfig, ErrorsNameTheJsonPathAndNeverTheSecret) {
  const ConfigLoadResult missing = config_from_json(
      R"({"destinations": [{"kind": "langfuse", "fields": {"public_key": "pk-lf-1"}}]})", "config.json");
  EXPECT_EQ(missing.error.rfind("config.json: destinations[0].fields.secret_key: missing Langfuse secret_key", 0), 0u)
      << missing.error;
  const ConfigLoadResult bad = config_from_json(
      R"({"destinations": [{"kind": "sentry", "endpoint": "https://o1.ingest.us.sentry.io",
          "fields": {"project_id": "1", "public_key": "not-hex-SECRET"}}]})",
      "config.json");
  EXPECT_EQ(bad.error.rfind("config.json: destinations[0].fields.public_key: ", 0), 0u) << bad.error;
  EXPECT_THAT(bad.error, Not(HasSubstr("SECRET")));
  const ConfigLoadResult unset = config_from_json(
      R"({"destinations": [{"kind": "honeycomb", "fields_env": {"api_key": "TRACECAST_TEST_UNSET_HC_KEY"}}]})",
      "config.json");
  EXPECT_EQ(unset.error,
            "config.json: destinations[0].fields_env.api_key: environment variable TRACECAST_TEST_UNSET_HC_KEY is "
            "not set or empty");
  const ConfigLoadResult twice = config_from_json(
      R"({"destinations": [{"kind": "honeycomb", "fields": {"api_key": "a"}, "fields_env": {"api_key": "HOME"}}]})",
      "config.json");
  EXPECT_EQ(twice.error, "config.json: destinations[0].fields_env.api_key: field given in fields too");
}

// ---- the environment ------------------------------------------------------------------------------

using test::fake_env;
using test::fake_getenv;

TEST(PresetEnv, KindAndFieldsVariablesYieldAPresetDestination) {
  fake_env() = {{"TRACECAST_DESTINATION_KIND", "posthog"},
                {"TRACECAST_DESTINATION_FIELDS", "api_key=phc_env1, region=eu"}};
  ConfigLoadResult r = config_from_env({}, &fake_getenv);
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.destinations.size(), 1u);
  EXPECT_EQ(resolve(r.destinations[0].second.transport).url, "https://eu.i.posthog.com/i/v0/ai/otel");

  // The generic endpoint variable is the preset's base URL (self-hosted Langfuse).
  fake_env() = {{"TRACECAST_DESTINATION_KIND", "langfuse"},
                {"TRACECAST_DESTINATION_FIELDS", "public_key=pk-lf-1,secret_key=sk-lf-2"},
                {"OTEL_EXPORTER_OTLP_ENDPOINT", "http://langfuse.internal:3000"}};
  r = config_from_env({}, &fake_getenv);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(resolve(r.destinations[0].second.transport).url, "http://langfuse.internal:3000/api/public/otel/v1/traces");

  fake_env() = {{"TRACECAST_DESTINATION_KIND", "langfuse"}, {"TRACECAST_DESTINATION_FIELDS", "public_key=pk-lf-1"}};
  r = config_from_env({}, &fake_getenv);
  EXPECT_EQ(r.error.rfind("TRACECAST_DESTINATION_FIELDS: missing Langfuse secret_key", 0), 0u) << r.error;
  fake_env() = {{"TRACECAST_DESTINATION_KIND", "tempo"}};
  r = config_from_env({}, &fake_getenv);
  EXPECT_EQ(r.error.rfind("TRACECAST_DESTINATION_KIND: must be one of grafana_cloud, ", 0), 0u) << r.error;
  fake_env() = {{"TRACECAST_DESTINATION_KIND", "honeycomb"}, {"TRACECAST_DESTINATION_FIELDS", "api_key"}};
  r = config_from_env({}, &fake_getenv);
  EXPECT_THAT(r.error, HasSubstr("TRACECAST_DESTINATION_FIELDS: entry 1 has no '='"));
  fake_env().clear();
}

// ---- the CLIs ------------------------------------------------------------------------------------

struct CliResult {
  int exit_code = -1;
  std::string output;
};

std::string tool(const char* name) {
  const char* dir = std::getenv("TRACECAST_BUILD_DIR");
  return std::string(dir != nullptr ? dir : ".") + "/tools/" + name;
}

CliResult run(const std::string& env_and_args) {
  CliResult out;
  const std::string cmd = "env -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT "
                          "-u OTEL_EXPORTER_OTLP_HEADERS -u OTEL_EXPORTER_OTLP_TRACES_HEADERS -u TRACECAST_API_KEY "
                          "TRACECAST_EGRESS_ALLOW=127.0.0.1/32 " +
                          env_and_args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.output.append(buf, n);
  const int status = ::pclose(pipe);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

TEST(PresetCli, CheckTakesKindAndFieldsAndKeepsSecretsOffArgvAndOutput) {
  if (!std::filesystem::exists(tool("tracecast-check"))) GTEST_SKIP() << "tracecast-check not built";
  RawHttpServer server(ok_for);
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  const CliResult ok = run("LF_SECRET=sk-lf-SECRET42 " + tool("tracecast-check") + " --kind langfuse --endpoint " + base +
                           " --field public_key=pk-lf-1 --field-env secret_key=LF_SECRET");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_THAT(ok.output, HasSubstr("testing langfuse destination " + base + "/api/public/otel/v1/traces"));
  EXPECT_THAT(ok.output, Not(HasSubstr("SECRET42")));
  ASSERT_EQ(server.request_count(), 1u);
  EXPECT_EQ(server.requests()[0].header("authorization"), "Basic " + base64_encode("pk-lf-1:sk-lf-SECRET42"));

  const CliResult on_argv = run(tool("tracecast-check") + " --kind langfuse --field public_key=pk-lf-1 "
                                "--field secret_key=sk-lf-ARGV77");
  EXPECT_EQ(on_argv.exit_code, 2);
  EXPECT_THAT(on_argv.output, HasSubstr("--field-env secret_key=VAR"));
  EXPECT_THAT(on_argv.output, Not(HasSubstr("ARGV77")));

  // TRACECAST_API_KEY is the api_key field of presets that have one; --empty-test sends the
  // empty payload.
  const CliResult honeycomb = run("TRACECAST_API_KEY=hcik_SECRET9 " + tool("tracecast-check") +
                                  " --kind honeycomb --empty-test --endpoint " + base);
  EXPECT_EQ(honeycomb.exit_code, 0) << honeycomb.output;
  EXPECT_THAT(honeycomb.output, Not(HasSubstr("SECRET9")));
  ASSERT_EQ(server.request_count(), 2u);
  EXPECT_EQ(server.requests()[1].header("x-honeycomb-team"), "hcik_SECRET9");
  EXPECT_EQ(server.requests()[1].header("x-test-connection"), "true");

  const CliResult invalid = run(tool("tracecast-check") + " --kind sentry --endpoint https://sentry.io --field project_id=x");
  EXPECT_EQ(invalid.exit_code, 2);
  EXPECT_THAT(invalid.output, HasSubstr("error: fields.project_id: the project_id must be numeric"));
  EXPECT_THAT(invalid.output, HasSubstr("error: fields.public_key: missing Sentry public_key"));
  EXPECT_THAT(invalid.output, HasSubstr("error: endpoint: sentry.io is the web app"));
}

TEST(PresetCli, CheckListsEveryPresetFromTheCatalog) {
  if (!std::filesystem::exists(tool("tracecast-check"))) GTEST_SKIP() << "tracecast-check not built";
  const CliResult r = run(tool("tracecast-check") + " --list-presets");
  EXPECT_EQ(r.exit_code, 0);
  for (const PresetInfo& row : presets()) {
    EXPECT_THAT(r.output, HasSubstr(std::string(row.name) + " - " + std::string(row.display_name))) << row.name;
  }
  EXPECT_THAT(r.output, HasSubstr("--field-env secret_key=VAR  (required)"));
  EXPECT_THAT(r.output, HasSubstr("--field site= one of datadoghq.com (default)"));
  EXPECT_THAT(r.output, HasSubstr("at most 1000000 bytes per request"));
}

TEST(PresetCli, LoadSendsToAPresetDestination) {
  if (!std::filesystem::exists(tool("tracecast-load"))) GTEST_SKIP() << "tracecast-load not built";
  RawHttpServer server(ok_for);
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  const CliResult r = run("PH_KEY=phc_SECRET5 " + tool("tracecast-load") + " --kind posthog --endpoint " + base +
                          " --field-env api_key=PH_KEY --count 200 --rate 0 --threads 1 --quiet --linger-ms 5 "
                          "--egress-allow 127.0.0.1/32");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, Not(HasSubstr("SECRET5")));
  const auto requests = server.requests();
  ASSERT_FALSE(requests.empty());
  for (const RawRequest& req : requests) {
    EXPECT_EQ(req.path, "/i/v0/ai/otel");
    EXPECT_EQ(req.header("authorization"), "Bearer phc_SECRET5");
  }
  const CliResult argv = run(tool("tracecast-load") + " --kind posthog --field api_key=phc_ARGV3 --count 1");
  EXPECT_EQ(argv.exit_code, 2);
  EXPECT_THAT(argv.output, Not(HasSubstr("ARGV3")));
}

// A boolean flag honours "=false" and refuses another value: --insecure-skip-verify=false
// once turned TLS verification OFF, --empty-test=no sent the empty payload.
TEST(PresetCli, BooleanFlagsHonourFalseAndRefuseOtherValues) {
  if (!std::filesystem::exists(tool("tracecast-check"))) GTEST_SKIP() << "tracecast-check not built";
  RawHttpServer server(ok_for);
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  const std::string check = "TRACECAST_API_KEY=hcik_KEY1 " + tool("tracecast-check") + " --kind honeycomb --endpoint " + base;
  const CliResult off = run(check + " --insecure-skip-verify=false --empty-test=false");
  EXPECT_EQ(off.exit_code, 0) << off.output;
  EXPECT_THAT(off.output, Not(HasSubstr("TLS verification is off")));
  ASSERT_EQ(server.request_count(), 1u);
  EXPECT_EQ(server.requests()[0].header("x-test-connection"), "");
  const CliResult on = run(check + " --insecure-skip-verify=1 --empty-test=true");
  EXPECT_EQ(on.exit_code, 0) << on.output;
  EXPECT_THAT(on.output, HasSubstr("TLS verification is off"));
  ASSERT_EQ(server.request_count(), 2u);
  EXPECT_EQ(server.requests()[1].header("x-test-connection"), "true");
  for (const char* bad : {"--insecure-skip-verify=no", "--empty-test=no", "--list-presets=no"}) {
    const CliResult r = run(check + " " + bad);
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.output;
    EXPECT_THAT(r.output, HasSubstr("takes no value, or exactly true, false, 1 or 0 (got 'no')")) << bad;
  }
  EXPECT_EQ(server.request_count(), 2u);
  if (!std::filesystem::exists(tool("tracecast-load"))) GTEST_SKIP() << "tracecast-load not built";
  const CliResult load = run(tool("tracecast-load") + " --count 1 --json=yes");
  EXPECT_EQ(load.exit_code, 2) << load.output;
  EXPECT_THAT(load.output, HasSubstr("--json takes no value, or exactly true, false, 1 or 0 (got 'yes')"));
}


// ---- README ---------------------------------------------------------------------------------------

std::string readme() {
  const char* dir = std::getenv("TRACECAST_SOURCE_DIR");
  std::ifstream in(std::string(dir != nullptr ? dir : "..") + "/README.md");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return text;
}

TEST(PresetReadme, TheConfigExampleLoadsOneDestinationPerPreset) {
  const std::string text = readme();
  const auto marker = text.find("<!-- presets-config-example");
  ASSERT_NE(marker, std::string::npos);
  const auto start = text.find("```json\n", marker) + 8;
  const auto end = text.find("```", start);
  const std::vector<std::string> vars = {"LANGFUSE_SECRET_KEY", "LANGSMITH_API_KEY", "HONEYCOMB_API_KEY",
                                         "NEW_RELIC_LICENSE_KEY", "BRAINTRUST_API_KEY", "ARIZE_API_KEY",
                                         "WANDB_API_KEY", "OPIK_API_KEY", "POSTHOG_PROJECT_TOKEN"};
  for (const std::string& v : vars) ::setenv(v.c_str(), "readme-example-key", 1);
  ::setenv("DD_API_KEY", "0123456789abcdef0123456789abcdef", 1);
  ::setenv("SENTRY_PUBLIC_KEY", "0123456789abcdef0123456789abcdef", 1);
  const ConfigLoadResult r = config_from_json(text.substr(start, end - start), "README.md");
  for (const std::string& v : vars) ::unsetenv(v.c_str());
  ::unsetenv("DD_API_KEY");
  ::unsetenv("SENTRY_PUBLIC_KEY");
  ASSERT_TRUE(r.ok()) << r.error;
  std::vector<DestinationKind> kinds;
  for (const auto& [account, d] : r.destinations) kinds.push_back(d.transport.kind);
  for (const PresetInfo& row : presets()) {
    if (row.custom_rules) continue;
    EXPECT_NE(std::find(kinds.begin(), kinds.end(), row.kind), kinds.end()) << row.name << " has no README example";
  }
}

TEST(PresetReadme, TheTableHasEveryPresetWithItsProtocolAndConvention) {
  const std::string text = readme();
  const auto section = text.find("### Presets");  // the conventions' table names backends too
  ASSERT_NE(section, std::string::npos);
  for (const PresetInfo& row : presets()) {
    const auto at = text.find("| `" + std::string(row.name) + "` | " + std::string(row.display_name) + " |", section);
    ASSERT_NE(at, std::string::npos) << row.name;
    const std::string line = text.substr(at, text.find('\n', at) - at);
    EXPECT_THAT(line, HasSubstr(std::string(row.default_protocol))) << row.name;
    EXPECT_THAT(line, HasSubstr("| `" + std::string(row.default_convention) + "` |")) << row.name;
  }
}

}  // namespace
}  // namespace tracecast
