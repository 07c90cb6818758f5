// The preset catalog: one row per backend, and the rules that read the rows.
//
// Each row cites the backend's page for OTLP ingestion (checked November 2026). A row holds
// what the page says; where the page is silent the row keeps the OTLP defaults (JSON and
// protobuf, gzip) and says so in a comment.
#include "tracecast/presets.h"

#include <algorithm>
#include <array>

#include "preset_rules.h"

namespace tracecast {
namespace {

using F = PresetFieldCheck;
constexpr std::uint8_t k_none = static_cast<std::uint8_t>(CompressionBit::none);
constexpr std::uint8_t k_gzip = static_cast<std::uint8_t>(CompressionBit::gzip);
constexpr std::uint8_t k_zstd = static_cast<std::uint8_t>(CompressionBit::zstd);

// --- grafana_cloud, otel_collector, otlp_http: rules in destination.cpp (custom_rules) -----
// https://grafana.com/docs/grafana-cloud/send-data/otlp/send-data-otlp/
constexpr PresetField k_grafana_fields[] = {
    {.name = "instance_id", .required = true, .check = F::digits,
     .doc = "numeric instance (stack) ID, the Basic-auth user name"},
    {.name = "api_key", .required = true, .secret = true, .arg = "glc_",
     .doc = "access-policy token with the traces:write scope"},
};

// --- Langfuse ---------------------------------------------------------------------------------
// https://langfuse.com/integrations/native/opentelemetry : endpoint {host}/api/public/otel,
// Basic auth public:secret key, "x-langfuse-ingestion-version: 4" required of direct OTLP
// exporters; JSON or protobuf, gzip. Regions EU (cloud.langfuse.com), US, JP, HIPAA.
constexpr PresetRegion k_langfuse_regions[] = {
    {"eu", "https://cloud.langfuse.com"},
    {"us", "https://us.cloud.langfuse.com"},
    {"jp", "https://jp.cloud.langfuse.com"},
    {"hipaa", "https://hipaa.cloud.langfuse.com"},
};
constexpr PresetField k_langfuse_fields[] = {
    {.name = "public_key", .required = true, .arg = "pk-lf-", .doc = "the project's public key (pk-lf-...)"},
    {.name = "secret_key", .required = true, .secret = true, .arg = "sk-lf-",
     .doc = "the project's secret key (sk-lf-...)"},
    {.name = "region", .check = F::choice, .arg = "eu,us,jp,hipaa", .default_value = "eu",
     .doc = "Langfuse Cloud data region; ignored when endpoint names a self-hosted Langfuse"},
};
constexpr PresetTemplate k_langfuse_headers[] = {
    {"Authorization", "Basic {base64:public_key:secret_key}"},
    {"x-langfuse-ingestion-version", "4"},
};
constexpr PresetWrongHost k_langfuse_wrong[] = {
    {"langfuse.com", "langfuse.com is the website: use the cloud host of your region (region eu/us/jp/hipaa) "
                     "or your self-hosted Langfuse's URL"},
};

// --- LangSmith --------------------------------------------------------------------------------
// https://docs.langchain.com/langsmith/trace-with-opentelemetry : /otel/v1/traces on
// api.smith.langchain.com (eu., apac., aws. hosts); self-hosted under /api/v1; headers
// x-api-key and Langsmith-Project. Compression not documented: gzip (OTLP default).
constexpr PresetRegion k_langsmith_regions[] = {
    {"us", "https://api.smith.langchain.com"},
    {"eu", "https://eu.api.smith.langchain.com"},
    {"apac", "https://apac.api.smith.langchain.com"},
    {"aws", "https://aws.api.smith.langchain.com"},
};
constexpr PresetField k_langsmith_fields[] = {
    {.name = "api_key", .required = true, .secret = true, .arg = "lsv2_", .doc = "LangSmith API key (lsv2_...)"},
    {.name = "project", .check = F::name, .doc = "project the traces land in (default: the workspace's default)"},
    {.name = "region", .check = F::choice, .arg = "us,eu,apac,aws", .default_value = "us",
     .doc = "LangSmith SaaS region; self-hosted: endpoint https://<host>/api/v1"},
};
constexpr PresetTemplate k_langsmith_headers[] = {
    {"x-api-key", "{api_key}"},
    {"Langsmith-Project", "{project}"},
};
constexpr PresetWrongHost k_langsmith_wrong[] = {
    {"smith.langchain.com", "smith.langchain.com is the LangSmith web app: the API host is api.smith.langchain.com "
                            "(leave endpoint empty and pick the region)"},
    {"*.smith.langchain.com", "a regional LangSmith web app (e.g. eu.smith.langchain.com): the API host is "
                              "<region>.api.smith.langchain.com (leave endpoint empty and pick the region)"},
};

// --- Honeycomb --------------------------------------------------------------------------------
// https://docs.honeycomb.io/send-data/opentelemetry/ : OTLP over HTTP/protobuf and HTTP/JSON,
// api.honeycomb.io (US) or api.eu1.honeycomb.io (EU), x-honeycomb-team; Classic only:
// x-honeycomb-dataset.
constexpr PresetRegion k_honeycomb_regions[] = {
    {"us", "https://api.honeycomb.io"},
    {"eu", "https://api.eu1.honeycomb.io"},
};
constexpr PresetField k_honeycomb_fields[] = {
    {.name = "api_key", .required = true, .secret = true, .doc = "ingest API key of the environment"},
    {.name = "dataset", .check = F::name, .doc = "Honeycomb Classic only: the dataset"},
    {.name = "region", .check = F::choice, .arg = "us,eu", .default_value = "us", .doc = "US or EU instance"},
};
constexpr PresetTemplate k_honeycomb_headers[] = {
    {"x-honeycomb-team", "{api_key}"},
    {"x-honeycomb-dataset", "{dataset}"},
};
constexpr PresetWrongHost k_honeycomb_wrong[] = {
    {"ui.honeycomb.io", "ui.honeycomb.io is the web app: the OTLP host is api.honeycomb.io (region us) or "
                        "api.eu1.honeycomb.io (region eu)"},
    {"ui.eu1.honeycomb.io", "ui.eu1.honeycomb.io is the EU web app: the OTLP host is api.eu1.honeycomb.io "
                            "(leave endpoint empty and set region eu)"},
};

// --- New Relic --------------------------------------------------------------------------------
// https://docs.newrelic.com/docs/opentelemetry/best-practices/opentelemetry-otlp/ :
// otlp.nr-data.net (US), otlp.eu01.nr-data.net (EU), gov-otlp.nr-data.net (FedRAMP), port 4318
// for HTTP; api-key header = license key; HTTP/protobuf recommended; gzip or zstd; payloads at
// most 1 MB (10^6 bytes); attribute values at most 4,095 characters.
constexpr PresetRegion k_new_relic_regions[] = {
    {"us", "https://otlp.nr-data.net:4318"},
    {"eu", "https://otlp.eu01.nr-data.net:4318"},
    {"fedramp", "https://gov-otlp.nr-data.net:4318"},
};
constexpr PresetField k_new_relic_fields[] = {
    {.name = "api_key", .required = true, .secret = true, .doc = "license (Ingest - License) key of the account"},
    {.name = "region", .check = F::choice, .arg = "us,eu,fedramp", .default_value = "us",
     .doc = "the account's data center"},
};
constexpr PresetTemplate k_new_relic_headers[] = {{"api-key", "{api_key}"}};
constexpr PresetWrongHost k_new_relic_wrong[] = {
    {"one.newrelic.com", "one.newrelic.com is the web app: the OTLP host is otlp.nr-data.net (region us) or "
                         "otlp.eu01.nr-data.net (region eu)"},
    {"one.eu.newrelic.com", "one.eu.newrelic.com is the EU web app: the OTLP host is otlp.eu01.nr-data.net "
                            "(leave endpoint empty and set region eu)"},
};

// --- Datadog ----------------------------------------------------------------------------------
// https://docs.datadoghq.com/opentelemetry/setup/otlp_ingest/traces/ : otlp.<site>/v1/traces,
// dd-api-key; http/protobuf (and, since 2026, http/json).
// https://docs.datadoghq.com/llm_observability/instrumentation/otel_instrumentation :
// "dd-otlp-source=llmobs" sends the spans to LLM Observability (GenAI conventions >= 1.37).
constexpr PresetRegion k_datadog_regions[] = {
    {"datadoghq.com", "https://otlp.datadoghq.com"},       {"us3.datadoghq.com", "https://otlp.us3.datadoghq.com"},
    {"us5.datadoghq.com", "https://otlp.us5.datadoghq.com"}, {"datadoghq.eu", "https://otlp.datadoghq.eu"},
    {"ap1.datadoghq.com", "https://otlp.ap1.datadoghq.com"}, {"ap2.datadoghq.com", "https://otlp.ap2.datadoghq.com"},
};
constexpr PresetField k_datadog_fields[] = {
    {.name = "api_key", .required = true, .secret = true, .check = F::hex, .arg = "32", .doc = "Datadog API key (32 hex digits)"},
    {.name = "site", .check = F::choice,
     .arg = "datadoghq.com,us3.datadoghq.com,us5.datadoghq.com,datadoghq.eu,ap1.datadoghq.com,ap2.datadoghq.com",
     .default_value = "datadoghq.com", .doc = "the Datadog site of the organization"},
};
constexpr PresetTemplate k_datadog_headers[] = {
    {"dd-api-key", "{api_key}"},
    {"dd-otlp-source", "llmobs"},
};
constexpr PresetWrongHost k_datadog_wrong[] = {
    {"app.datadoghq.com", "app.datadoghq.com is the web app: the OTLP intake is otlp.<site> (leave endpoint empty "
                          "and set the site field)"},
    {"app.datadoghq.eu", "app.datadoghq.eu is the EU web app: the OTLP intake is otlp.datadoghq.eu (leave endpoint "
                         "empty and set site datadoghq.eu)"},
    {"us3.datadoghq.com", "us3.datadoghq.com is the US3 web app: the OTLP intake is otlp.us3.datadoghq.com (leave "
                          "endpoint empty and set site us3.datadoghq.com)"},
    {"us5.datadoghq.com", "us5.datadoghq.com is the US5 web app: the OTLP intake is otlp.us5.datadoghq.com (leave "
                          "endpoint empty and set site us5.datadoghq.com)"},
    {"ap1.datadoghq.com", "ap1.datadoghq.com is the AP1 web app: the OTLP intake is otlp.ap1.datadoghq.com (leave "
                          "endpoint empty and set site ap1.datadoghq.com)"},
};

// --- Braintrust -------------------------------------------------------------------------------
// https://www.braintrust.dev/docs/integrations/sdk-integrations/opentelemetry/send-traces-and-logs :
// https://api.braintrust.dev/otel/v1/traces, Authorization: Bearer <API key>,
// x-bt-parent: project_id:<id> (the project ID, not its name); self-hosted data plane URL.
constexpr PresetRegion k_braintrust_regions[] = {{"us", "https://api.braintrust.dev"}};
constexpr PresetField k_braintrust_fields[] = {
    {.name = "api_key", .required = true, .secret = true, .arg = "sk-", .doc = "Braintrust API key (sk-...)"},
    {.name = "project_id", .required = true, .check = F::name,
     .doc = "project ID (Project configuration > Copy Project ID; not the name)"},
};
constexpr PresetTemplate k_braintrust_headers[] = {
    {"Authorization", "Bearer {api_key}"},
    {"x-bt-parent", "project_id:{project_id}"},
};
constexpr PresetWrongHost k_braintrust_wrong[] = {
    {"www.braintrust.dev", "www.braintrust.dev is the web app: the API host is api.braintrust.dev"},
    {"braintrust.dev", "braintrust.dev is the web app: the API host is api.braintrust.dev"},
};

// --- Arize AX ---------------------------------------------------------------------------------
// https://arize.com/docs/ax/integrations/opentelemetry/opentelemetry-arize-otel : OTLP to
// otlp.arize.com/v1 with the space ID and API key as headers, the project as resource
// attribute openinference.project.name; OpenInference conventions. Posting to /v1 alone is
// accepted and discarded, so the path is always /v1/traces.
constexpr PresetRegion k_arize_regions[] = {{"us", "https://otlp.arize.com"}};
constexpr PresetField k_arize_fields[] = {
    {.name = "space_id", .required = true, .check = F::name, .doc = "space ID (Space Settings)"},
    {.name = "api_key", .required = true, .secret = true, .doc = "Arize API key (Space Settings)"},
    {.name = "project_name", .required = true, .check = F::name, .doc = "project the traces land in"},
};
constexpr PresetTemplate k_arize_headers[] = {
    {"space_id", "{space_id}"},
    {"api_key", "{api_key}"},
};
constexpr PresetTemplate k_openinference_project[] = {{"openinference.project.name", "{project_name}"}};
constexpr PresetWrongHost k_arize_wrong[] = {
    {"app.arize.com", "app.arize.com is the web app: the OTLP host is otlp.arize.com (leave endpoint empty)"},
};

// --- Arize Phoenix ----------------------------------------------------------------------------
// https://arize.com/docs/phoenix/resources/frequently-asked-questions/what-is-my-phoenix-endpoint :
// HTTP at <host>/v1/traces (default http://localhost:6006); Phoenix Cloud: the hostname of
// the Settings page; API key as Bearer token when auth is on. Protobuf only: a JSON body is
// answered 415 (opentelemetry issue trackers; Phoenix's REST reference).
constexpr PresetField k_phoenix_fields[] = {
    {.name = "api_key", .secret = true, .doc = "API key when authentication is enabled (Phoenix Cloud: always)"},
    {.name = "project_name", .check = F::name, .doc = "project the traces land in (default: \"default\")"},
};
constexpr PresetTemplate k_phoenix_headers[] = {{"Authorization", "Bearer {api_key}"}};

// --- W&B Weave --------------------------------------------------------------------------------
// https://docs.wandb.ai/weave/guides/tracking/otel : https://trace.wandb.ai/otel/v1/traces
// (dedicated: https://<sub>.wandb.io/traces/otel/v1/traces), Content-Type application/x-protobuf
// only, wandb-api-key header, resource attributes wandb.entity and wandb.project.
constexpr PresetRegion k_weave_regions[] = {{"cloud", "https://trace.wandb.ai"}};
constexpr PresetField k_weave_fields[] = {
    {.name = "api_key", .required = true, .secret = true, .doc = "W&B API key (User Settings)"},
    {.name = "entity", .required = true, .check = F::name, .doc = "team or user name"},
    {.name = "project", .required = true, .check = F::name, .doc = "project the traces land in"},
};
constexpr PresetTemplate k_weave_headers[] = {{"wandb-api-key", "{api_key}"}};
constexpr PresetTemplate k_weave_resource[] = {
    {"wandb.entity", "{entity}"},
    {"wandb.project", "{project}"},
};
constexpr PresetWrongHost k_weave_wrong[] = {
    {"wandb.ai", "wandb.ai is the web app: the trace host is trace.wandb.ai (leave endpoint empty), or "
                 "https://<subdomain>.wandb.io/traces for Dedicated Cloud"},
    {"api.wandb.ai", "api.wandb.ai is the W&B API: the trace host is trace.wandb.ai (leave endpoint empty)"},
};

// --- Comet Opik -------------------------------------------------------------------------------
// https://www.comet.com/docs/opik/integrations/opentelemetry : Opik Cloud
// https://www.comet.com/opik/api/v1/private/otel, self-hosted http://<host>/api/v1/private/otel;
// headers Authorization (the API key itself), Comet-Workspace (required), projectName
// (optional); HTTP transport only.
constexpr PresetRegion k_opik_regions[] = {{"cloud", "https://www.comet.com/opik"}};
constexpr PresetField k_opik_fields[] = {
    {.name = "api_key", .required_hosted = true, .secret = true, .doc = "Opik API key (not needed self-hosted)"},
    {.name = "workspace", .required_hosted = true, .check = F::name, .doc = "Comet workspace name"},
    {.name = "project", .check = F::name, .doc = "project the traces land in (default: \"Default Project\")"},
};
constexpr PresetTemplate k_opik_headers[] = {
    {"Authorization", "{api_key}"},
    {"Comet-Workspace", "{workspace}"},
    {"projectName", "{project}"},
};

// --- Sentry -----------------------------------------------------------------------------------
// https://docs.sentry.io/concepts/otlp/direct/traces/ : the project's OTLP traces URL
// https://o<org>.ingest.<region>.sentry.io/api/<project id>/integration/otlp/v1/traces and the
// header "x-sentry-auth: sentry sentry_key=<public key>", both under Project settings > Client
// Keys (DSN). Span events are dropped at ingest: attributes carry everything. The ingest host
// is built from the org ID and the data region (us, de), or given as the endpoint.
constexpr PresetRegion k_sentry_regions[] = {
    {"us", "https://o{org_id}.ingest.us.sentry.io"},
    {"de", "https://o{org_id}.ingest.de.sentry.io"},
};
constexpr PresetField k_sentry_fields[] = {
    {.name = "org_id", .required_hosted = true, .check = F::digits,
     .doc = "numeric organization ID (the DSN's o<org_id>; not needed when endpoint gives the ingest host)"},
    {.name = "region", .check = F::choice, .arg = "us,de", .default_value = "us", .doc = "the organization's data region"},
    {.name = "project_id", .required = true, .check = F::digits, .doc = "numeric project ID (the DSN's last part)"},
    {.name = "public_key", .required = true, .secret = true, .check = F::hex, .arg = "32",
     .doc = "the DSN's public key (32 hex digits before the @)"},
    {.name = "dsn", .secret = true,
     .doc = "the project's DSN as Sentry shows it (https://<public key>@o<org id>.ingest.<region>.sentry.io/<project "
            "id>, or a self-hosted one): gives org_id, region, project_id and public_key (or endpoint) at once"},
};
constexpr PresetTemplate k_sentry_headers[] = {{"x-sentry-auth", "sentry sentry_key={public_key}"}};
constexpr PresetWrongHost k_sentry_wrong[] = {
    {"sentry.io", "sentry.io is the web app: the endpoint is the DSN's ingest host, "
                  "https://o<org>.ingest.<region>.sentry.io (Project settings > Client Keys (DSN))"},
    {"www.sentry.io", "www.sentry.io is the web app: the endpoint is the DSN's ingest host, "
                      "https://o<org>.ingest.<region>.sentry.io (Project settings > Client Keys (DSN))"},
    {"*.sentry.io", "<org>.sentry.io is the organisation's web app: the endpoint is the DSN's ingest host, "
                    "https://o<org>.ingest.<region>.sentry.io (Project settings > Client Keys (DSN))"},
};

// --- PostHog ----------------------------------------------------------------------------------
// https://posthog.com/docs/llm-analytics/installation/opentelemetry and posthog-python's
// PostHogSpanProcessor: OTLP/HTTP at <host>/i/v0/ai/otel, Authorization: Bearer <project token>;
// hosts us.i.posthog.com / eu.i.posthog.com; gen_ai.* spans become $ai_generation events.
constexpr PresetRegion k_posthog_regions[] = {
    {"us", "https://us.i.posthog.com"},
    {"eu", "https://eu.i.posthog.com"},
};
constexpr PresetField k_posthog_fields[] = {
    {.name = "api_key", .required = true, .secret = true, .arg = "phc_", .doc = "project API key / token (phc_...)"},
    {.name = "region", .check = F::choice, .arg = "us,eu", .default_value = "us", .doc = "US or EU cloud"},
};
constexpr PresetTemplate k_posthog_headers[] = {{"Authorization", "Bearer {api_key}"}};
constexpr PresetWrongHost k_posthog_wrong[] = {
    {"app.posthog.com", "app.posthog.com is the web app: the ingestion host is us.i.posthog.com (region us) or "
                        "eu.i.posthog.com (region eu)"},
    {"us.posthog.com", "us.posthog.com is the web app: the ingestion host is us.i.posthog.com (region us)"},
    {"eu.posthog.com", "eu.posthog.com is the web app: the ingestion host is eu.i.posthog.com (region eu)"},
};

constexpr std::string_view k_json = "http/json";
constexpr std::string_view k_protobuf = "http/protobuf";

// One row per backend, in DestinationKind order (checked below).
constexpr PresetInfo k_presets[] = {
    {.kind = DestinationKind::grafana_cloud, .name = "grafana_cloud", .display_name = "Grafana Cloud",
     .doc_url = "https://grafana.com/docs/grafana-cloud/send-data/otlp/send-data-otlp/",
     .path = "/otlp/v1/traces", .fields = k_grafana_fields, .default_protocol = k_json,
     .compressions = k_none | k_gzip | k_zstd, .default_compression = "gzip", .default_convention = "openrouter",
     .hints = {.unauthorized = "Confirm the Instance ID is numeric and the API key has write permissions (an access "
                               "policy with the traces:write scope).",
               .not_found = "Verify the OTLP gateway URL (not the main Grafana URL): "
                            "https://otlp-gateway-prod-<region>.grafana.net.",
               .dns = "Verify the OTLP gateway URL (not the main Grafana URL): the host name does not resolve.",
               .connect = "Verify the OTLP gateway URL (not the main Grafana URL) and its port: nothing accepts "
                          "connections there."},
     .custom_rules = true},
    {.kind = DestinationKind::otel_collector, .name = "otel_collector", .display_name = "OpenTelemetry Collector",
     .doc_url = "https://github.com/open-telemetry/opentelemetry-collector/blob/main/receiver/otlpreceiver/README.md",
     .path = "/v1/traces", .default_protocol = k_json, .compressions = k_none | k_gzip | k_zstd,
     .default_compression = "zstd", .default_convention = "openrouter", .custom_rules = true},
    {.kind = DestinationKind::otlp_http, .name = "otlp_http", .display_name = "OTLP/HTTP endpoint",
     .doc_url = "https://opentelemetry.io/docs/specs/otlp/#otlphttp", .default_protocol = k_json,
     .compressions = k_none | k_gzip | k_zstd, .default_compression = "gzip", .default_convention = "openrouter",
     .custom_rules = true},
    {.kind = DestinationKind::langfuse, .name = "langfuse", .display_name = "Langfuse",
     .doc_url = "https://langfuse.com/integrations/native/opentelemetry", .regions = k_langfuse_regions,
     .region_field = "region", .default_region = "eu", .path = "/api/public/otel/v1/traces",
     .wrong_hosts = k_langfuse_wrong, .fields = k_langfuse_fields, .headers = k_langfuse_headers,
     .default_protocol = k_json, .compressions = k_none | k_gzip, .default_compression = "gzip",
     .default_convention = "langfuse",
     .hints = {.unauthorized = "Check the public and secret key of the Langfuse project (Project settings > API "
                               "keys): both must come from the same project, and the region (eu, us, jp, hipaa) "
                               "must be the one the project lives in.",
               .not_found = "Check the Langfuse host: traces go to <host>/api/public/otel/v1/traces (self-hosted "
                            "Langfuse needs v3.22 or later).",
               .dns = "Check the Langfuse host (cloud.langfuse.com, us.cloud.langfuse.com, or your self-hosted "
                      "URL): it does not resolve."}},
    {.kind = DestinationKind::langsmith, .name = "langsmith", .display_name = "LangSmith",
     .doc_url = "https://docs.langchain.com/langsmith/trace-with-opentelemetry", .regions = k_langsmith_regions,
     .region_field = "region", .default_region = "us", .path = "/otel/v1/traces", .wrong_hosts = k_langsmith_wrong,
     .fields = k_langsmith_fields, .headers = k_langsmith_headers, .default_protocol = k_json,
     .compressions = k_none | k_gzip, .default_compression = "gzip", .default_convention = "langsmith",
     .hints = {.unauthorized = "Check the LangSmith API key (Settings > API Keys) and that it belongs to the "
                               "workspace of the project, in the region you picked (us, eu, apac, aws).",
               .not_found = "Check the LangSmith endpoint: SaaS uses https://api.smith.langchain.com/otel/v1/"
                            "traces; a self-hosted LangSmith needs endpoint https://<host>/api/v1."}},
    {.kind = DestinationKind::honeycomb, .name = "honeycomb", .display_name = "Honeycomb",
     .doc_url = "https://docs.honeycomb.io/send-data/opentelemetry/", .regions = k_honeycomb_regions,
     .region_field = "region", .default_region = "us", .path = "/v1/traces", .wrong_hosts = k_honeycomb_wrong,
     .fields = k_honeycomb_fields, .headers = k_honeycomb_headers, .default_protocol = k_json,
     .compressions = k_none | k_gzip, .default_compression = "gzip", .default_convention = "genai",
     .hints = {.unauthorized = "Check the Honeycomb ingest API key (Environments > API Keys > Ingest) and that "
                               "the region matches the team (us: api.honeycomb.io, eu: api.eu1.honeycomb.io).",
               .not_found = "Check the Honeycomb endpoint: traces go to https://api.honeycomb.io/v1/traces (EU: "
                            "api.eu1.honeycomb.io).",
               .bad_request = "Honeycomb refused the request: a Classic environment also needs the dataset "
                              "field."}},
    {.kind = DestinationKind::new_relic, .name = "new_relic", .display_name = "New Relic",
     .doc_url = "https://docs.newrelic.com/docs/opentelemetry/best-practices/opentelemetry-otlp/",
     .regions = k_new_relic_regions, .region_field = "region", .default_region = "us", .path = "/v1/traces",
     .wrong_hosts = k_new_relic_wrong, .fields = k_new_relic_fields, .headers = k_new_relic_headers,
     .default_protocol = k_protobuf, .compressions = k_none | k_gzip | k_zstd, .default_compression = "gzip",
     .max_request_bytes = 1000000, .max_attribute_value_bytes = 4095, .default_convention = "genai",
     .hints = {.unauthorized = "Check the New Relic license key (Administration > API keys, type Ingest - "
                               "License) and that the region (us, eu) is the account's data center.",
               .not_found = "Check the New Relic OTLP endpoint: https://otlp.nr-data.net:4318/v1/traces (EU: "
                            "otlp.eu01.nr-data.net)."}},
    {.kind = DestinationKind::datadog, .name = "datadog", .display_name = "Datadog",
     .doc_url = "https://docs.datadoghq.com/opentelemetry/setup/otlp_ingest/traces/", .regions = k_datadog_regions,
     .region_field = "site", .default_region = "datadoghq.com", .path = "/v1/traces",
     .wrong_hosts = k_datadog_wrong, .fields = k_datadog_fields, .headers = k_datadog_headers,
     .default_protocol = k_protobuf, .compressions = k_none | k_gzip, .default_compression = "gzip",
     .default_convention = "genai",
     .hints = {.unauthorized = "Check the Datadog API key (Organization Settings > API Keys) and that the site "
                               "is your organization's (datadoghq.com, datadoghq.eu, us3.datadoghq.com, ...): "
                               "Datadog answers 403 to either.",
               .not_found = "Check the Datadog site: the OTLP traces intake is https://otlp.<site>/v1/traces."}},
    {.kind = DestinationKind::braintrust, .name = "braintrust", .display_name = "Braintrust",
     .doc_url = "https://www.braintrust.dev/docs/integrations/sdk-integrations/opentelemetry/send-traces-and-logs",
     .regions = k_braintrust_regions, .region_field = "region", .default_region = "us", .path = "/otel/v1/traces",
     .wrong_hosts = k_braintrust_wrong, .fields = k_braintrust_fields, .headers = k_braintrust_headers,
     .default_protocol = k_json, .compressions = k_none | k_gzip, .default_compression = "gzip",
     .default_convention = "genai",
     .hints = {.unauthorized = "Check the Braintrust API key (Settings > API keys) and that its organization "
                               "owns the project ID.",
               .not_found = "Check the Braintrust endpoint (https://api.braintrust.dev/otel/v1/traces, or your "
                            "data plane's URL) and the project ID (not the project name).",
               .bad_request = "Braintrust refused the request: check project_id (Project configuration > Copy "
                              "Project ID; not the name)."}},
    {.kind = DestinationKind::arize_ax, .name = "arize_ax", .display_name = "Arize AX",
     .doc_url = "https://arize.com/docs/ax/integrations/opentelemetry/opentelemetry-arize-otel",
     .regions = k_arize_regions, .region_field = "region", .default_region = "us", .path = "/v1/traces",
     .wrong_hosts = k_arize_wrong, .fields = k_arize_fields, .headers = k_arize_headers,
     .resource_attributes = k_openinference_project, .default_protocol = k_protobuf,
     .compressions = k_none | k_gzip, .default_compression = "gzip", .default_convention = "openinference",
     .hints = {.unauthorized = "Check the Arize space ID and API key (Space Settings): the key must belong to "
                               "that space.",
               .not_found = "Check the Arize endpoint: https://otlp.arize.com/v1/traces."}},
    {.kind = DestinationKind::arize_phoenix, .name = "arize_phoenix", .display_name = "Arize Phoenix",
     .doc_url = "https://arize.com/docs/phoenix/resources/frequently-asked-questions/what-is-my-phoenix-endpoint",
     .path = "/v1/traces", .fields = k_phoenix_fields, .headers = k_phoenix_headers,
     .resource_attributes = k_openinference_project, .default_protocol = k_protobuf, .protobuf_only = true,
     .compressions = k_none | k_gzip, .default_compression = "gzip", .default_convention = "openinference",
     .hints = {.unauthorized = "Check the Phoenix API key (Settings > API Keys): Phoenix Cloud and instances with "
                               "authentication enabled need one.",
               .not_found = "Check the Phoenix endpoint: the base URL of the instance (http://<host>:6006, or the "
                            "Hostname of Phoenix Cloud's Settings page); traces go to <base>/v1/traces.",
               .unsupported_media = "Phoenix takes OTLP protobuf only (JSON is answered 415): set protocol to "
                                    "http/protobuf.",
               .connect = "Check the Phoenix host and port: nothing accepts connections there (Phoenix serves "
                          "OTLP/HTTP on its app port, 6006 by default)."}},
    {.kind = DestinationKind::wandb_weave, .name = "wandb_weave", .display_name = "W&B Weave",
     .doc_url = "https://docs.wandb.ai/weave/guides/tracking/otel", .regions = k_weave_regions,
     .region_field = "region", .default_region = "cloud", .path = "/otel/v1/traces", .wrong_hosts = k_weave_wrong,
     .fields = k_weave_fields, .headers = k_weave_headers, .resource_attributes = k_weave_resource,
     .default_protocol = k_protobuf, .protobuf_only = true, .compressions = k_none | k_gzip,
     .default_compression = "gzip", .default_convention = "openinference",
     .hints = {.unauthorized = "Check the W&B API key (User Settings) and that it may write to the entity's "
                               "project.",
               .not_found = "Check the entity and project, and the endpoint: https://trace.wandb.ai/otel/v1/"
                            "traces (Dedicated Cloud: https://<subdomain>.wandb.io/traces).",
               .unsupported_media = "Weave takes OTLP protobuf only: set protocol to http/protobuf."}},
    {.kind = DestinationKind::comet_opik, .name = "comet_opik", .display_name = "Comet Opik",
     .doc_url = "https://www.comet.com/docs/opik/integrations/opentelemetry", .regions = k_opik_regions,
     .region_field = "region", .default_region = "cloud", .path = "/api/v1/private/otel/v1/traces",
     .fields = k_opik_fields, .headers = k_opik_headers, .default_protocol = k_json,
     .compressions = k_none | k_gzip, .default_compression = "gzip", .default_convention = "genai",
     .hints = {.unauthorized = "Check the Opik API key and the Comet workspace name (the workspace must be one "
                               "the key can write to).",
               .not_found = "Check the Opik endpoint: Opik Cloud is https://www.comet.com/opik; self-hosted Opik "
                            "is http://<host>:5173 (traces go to <base>/api/v1/private/otel/v1/traces)."}},
    {.kind = DestinationKind::sentry, .name = "sentry", .display_name = "Sentry",
     .doc_url = "https://docs.sentry.io/concepts/otlp/direct/traces/", .regions = k_sentry_regions,
     .region_field = "region", .default_region = "us",
     .path = "/api/{project_id}/integration/otlp/v1/traces", .wrong_hosts = k_sentry_wrong,
     .fields = k_sentry_fields, .headers = k_sentry_headers, .default_protocol = k_json,
     .compressions = k_none | k_gzip, .default_compression = "gzip", .default_convention = "genai",
     .hints = {.unauthorized = "Check the DSN's public key (Project settings > Client Keys (DSN)): it must be an "
                               "active key of that project.",
               .not_found = "Check the project ID and the ingest host: both are in the project's DSN, "
                            "https://<key>@o<org>.ingest.<region>.sentry.io/<project id>.",
               .dns = "Check the ingest host (o<org>.ingest.<region>.sentry.io, from the DSN): it does not "
                      "resolve."}},
    {.kind = DestinationKind::posthog, .name = "posthog", .display_name = "PostHog",
     .doc_url = "https://posthog.com/docs/llm-analytics/installation/opentelemetry", .regions = k_posthog_regions,
     .region_field = "region", .default_region = "us", .path = "/i/v0/ai/otel", .wrong_hosts = k_posthog_wrong,
     .fields = k_posthog_fields, .headers = k_posthog_headers, .default_protocol = k_json,
     .compressions = k_none | k_gzip, .default_compression = "gzip", .default_convention = "genai",
     .hints = {.unauthorized = "Check the PostHog project API key (Project settings, phc_...) and the region (us, "
                               "eu): a key of a US project is refused by the EU host.",
               .not_found = "Check the PostHog host: us.i.posthog.com or eu.i.posthog.com (not the app host), or "
                            "your self-hosted URL; traces go to <host>/i/v0/ai/otel."}},
};

constexpr bool rows_in_kind_order() {
  for (std::size_t i = 0; i < std::size(k_presets); ++i) {
    if (static_cast<std::size_t>(k_presets[i].kind) != i) return false;
  }
  return true;
}
static_assert(rows_in_kind_order(), "k_presets must list every DestinationKind in order");
static_assert(std::size(k_presets) == static_cast<std::size_t>(DestinationKind::posthog) + 1,
              "one preset row per DestinationKind");

bool is_digits(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}
bool is_hex(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}
bool is_name(std::string_view s) noexcept {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           std::string_view("-_.:/ @=+").find(c) != std::string_view::npos;
  });
}
bool in_list(std::string_view list, std::string_view value) noexcept {
  while (!list.empty()) {
    const auto comma = list.find(',');
    if (list.substr(0, comma) == value) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}
std::string listed(std::string_view list) {
  std::string out;
  while (!list.empty()) {
    const auto comma = list.find(',');
    if (!out.empty()) out += ", ";
    out += list.substr(0, comma);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

constexpr std::size_t k_max_field_bytes = 16384;
constexpr std::size_t k_max_fields = 32;

bool ends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Expands a PresetTemplate value. False when it references an empty field (the header or
// attribute is then left out).
bool expand(std::string_view templ, const DestinationConfig& config, std::string& out) {
  out.clear();
  while (!templ.empty()) {
    const auto open = templ.find('{');
    if (open == std::string_view::npos) {
      out += templ;
      break;
    }
    out += templ.substr(0, open);
    const auto close = templ.find('}', open);
    if (close == std::string_view::npos) {
      out += templ.substr(open);
      break;
    }
    std::string_view ref = templ.substr(open + 1, close - open - 1);
    templ.remove_prefix(close + 1);
    if (ref.rfind("base64:", 0) == 0) {
      ref.remove_prefix(7);
      const auto colon = ref.find(':');
      const std::string_view a = preset_field_value(config, ref.substr(0, colon));
      const std::string_view b =
          colon == std::string_view::npos ? std::string_view{} : preset_field_value(config, ref.substr(colon + 1));
      if (a.empty() || b.empty()) return false;
      std::string pair(a);
      pair += ':';
      pair += b;
      out += base64_encode(pair);
    } else {
      const std::string_view v = preset_field_value(config, ref);
      if (v.empty()) return false;
      out += v;
    }
  }
  return true;
}

// True when `templ` references a secret field of `row` ("{api_key}", "{base64:a:secret_key}").
bool references_secret(std::string_view templ, const PresetInfo& row) noexcept {
  for (const PresetField& f : row.fields) {
    if (!f.secret) continue;
    for (auto at = templ.find(f.name); at != std::string_view::npos; at = templ.find(f.name, at + 1)) {
      const char before = at == 0 ? '\0' : templ[at - 1];
      const char after = at + f.name.size() < templ.size() ? templ[at + f.name.size()] : '\0';
      if ((before == '{' || before == ':') && (after == '}' || after == ':')) return true;
    }
  }
  return false;
}

// A Sentry DSN (Project settings > Client Keys (DSN), https://docs.sentry.io/concepts/key-terms/dsn-explainer/):
// <scheme>://<public key>[:<secret>]@<host>/<project id>. Hosted (sentry.io) hosts are
// o<org id>.ingest.<region>.sentry.io, or o<org id>.ingest.sentry.io for the US region. Any
// other host is a self-hosted Sentry, which takes OTLP on its own host (`self_hosted`, the
// endpoint being "<scheme>://<host>"). Views into `dsn`; false when it does not have this shape.
struct SentryDsn {
  std::string_view scheme, public_key, host, org_id, region, project_id;
  bool self_hosted = false;
};
bool parse_sentry_dsn(std::string_view dsn, SentryDsn& out) noexcept {
  const auto scheme_end = dsn.find("://");
  if (scheme_end == std::string_view::npos) return false;
  const std::string_view scheme = dsn.substr(0, scheme_end);
  if (scheme != "https" && scheme != "http") return false;
  std::string_view rest = dsn.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find_first_of("?#"));  // a query ("?x=y") or fragment: not Sentry's to need
  const auto at = rest.find('@');
  const auto slash = rest.find('/');
  if (at == std::string_view::npos || slash == std::string_view::npos || at > slash) return false;
  out.public_key = rest.substr(0, std::min(at, rest.find(':')));
  const std::string_view host = rest.substr(at + 1, slash - at - 1);
  std::string_view project = rest.substr(slash + 1);
  if (!project.empty() && project.back() == '/') project.remove_suffix(1);
  if (out.public_key.empty() || host.empty() || !is_digits(project)) return false;
  out.project_id = project;
  out.scheme = scheme;
  out.host = host;
  out.org_id = {};
  out.region = {};
  out.self_hosted = false;
  if (host == "sentry.io" || ends_with(host, ".sentry.io")) {
    // o<digits>.ingest[.<region>].sentry.io, over https only.
    if (scheme != "https" || host.size() < 2 || host[0] != 'o') return false;
    const auto dot = host.find('.');
    const std::string_view org = host.substr(1, dot - 1);
    std::string_view tail = host.substr(dot + 1);  // ingest[.<region>].sentry.io
    if (!is_digits(org) || tail.rfind("ingest.", 0) != 0) return false;
    tail.remove_prefix(7);
    out.region = "us";  // o<org>.ingest.sentry.io: the US region's older host
    if (tail != "sentry.io") {
      const auto rdot = tail.find('.');
      if (tail.substr(rdot + 1) != "sentry.io") return false;
      out.region = tail.substr(0, rdot);
    }
    out.org_id = org;
  } else {
    out.self_hosted = true;
  }
  return true;
}

// The non-empty value `config.fields` gives `name` (not a default), or "".
std::string_view given_field(const DestinationConfig& config, std::string_view name) noexcept {
  for (const auto& [k, v] : config.fields)
    if (k == name && !v.empty()) return v;
  return {};
}

const PresetRegion* find_region(const PresetInfo& row, std::string_view name) noexcept {
  for (const PresetRegion& r : row.regions) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

}  // namespace

std::span<const PresetInfo> presets() noexcept { return k_presets; }

const PresetInfo* find_preset(std::string_view kind_name) noexcept {
  if (kind_name == "grafana") kind_name = "grafana_cloud";
  if (kind_name == "collector") kind_name = "otel_collector";
  if (kind_name == "otlp") kind_name = "otlp_http";
  for (const PresetInfo& row : k_presets) {
    if (row.name == kind_name) return &row;
  }
  return nullptr;
}

const PresetInfo& preset_info(DestinationKind kind) noexcept {
  const auto i = static_cast<std::size_t>(kind);
  return i < std::size(k_presets) ? k_presets[i] : k_presets[static_cast<std::size_t>(DestinationKind::otlp_http)];
}

std::string_view to_string(DestinationKind kind) noexcept { return preset_info(kind).name; }

std::string preset_names() {
  std::string out;
  for (const PresetInfo& row : k_presets) {
    if (!out.empty()) out += ", ";
    out += row.name;
  }
  return out;
}

const PresetField* find_field(const PresetInfo& info, std::string_view name) noexcept {
  for (const PresetField& f : info.fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string_view preset_field_value(const DestinationConfig& config, std::string_view name) noexcept {
  for (const auto& [key, value] : config.fields) {
    if (key == name && !value.empty()) return value;  // an empty value counts as not given
  }
  if (name == "api_key" && !config.api_key.empty()) return config.api_key;
  if (name == "instance_id" && !config.instance_id.empty()) return config.instance_id;
  const PresetInfo& row = preset_info(config.kind);
  if (const PresetField* f = find_field(row, name)) return f->default_value;
  if (name == row.region_field) return row.default_region;
  return {};
}

void apply_preset_defaults(DestinationConfig& config) {
  const PresetInfo& row = preset_info(config.kind);
  if (config.kind == DestinationKind::sentry) {
    // A DSN fills the fields (and a self-hosted one the endpoint) it holds that are not given;
    // validate() refuses a malformed DSN and a given field that differs from the DSN's.
    SentryDsn dsn;
    if (parse_sentry_dsn(given_field(config, "dsn"), dsn)) {
      std::vector<std::pair<std::string, std::string>> add;
      auto fill = [&](std::string_view name, std::string_view value) {
        if (!value.empty() && given_field(config, name).empty()) add.emplace_back(std::string(name), std::string(value));
      };
      fill("public_key", dsn.public_key);
      fill("project_id", dsn.project_id);
      fill("org_id", dsn.org_id);
      fill("region", dsn.region);
      for (auto& f : add) {
        // An entry given empty is replaced in place (one entry per name).
        auto it = std::find_if(config.fields.begin(), config.fields.end(), [&](const auto& e) { return e.first == f.first; });
        if (it != config.fields.end()) it->second = std::move(f.second);
        else config.fields.push_back(std::move(f));
      }
      if (dsn.self_hosted && config.endpoint.empty()) {
        config.endpoint.assign(dsn.scheme);
        config.endpoint.append("://");
        config.endpoint.append(dsn.host);
      }
    }
  }
  if (!row.custom_rules) {
    if (config.protocol.empty()) config.protocol = std::string(row.default_protocol);
    if (config.compression.empty()) config.compression = std::string(row.default_compression);
  } else {
    // Grafana's two fields live in their own members (the API predates `fields`).
    for (auto it = config.fields.begin(); it != config.fields.end();) {
      std::string* member = it->first == "instance_id" ? &config.instance_id
                            : it->first == "api_key"   ? &config.api_key
                                                       : nullptr;
      if (config.kind == DestinationKind::grafana_cloud && member != nullptr && member->empty()) {
        *member = std::move(it->second);
        it = config.fields.erase(it);
      } else {
        ++it;
      }
    }
  }
}

std::string redact_secrets(std::string text, const DestinationConfig& config) {
  auto hide = [&text](std::string_view secret) {
    if (secret.size() < 4) return;
    for (std::size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
      text.replace(at, secret.size(), "***");
    }
  };
  const PresetInfo& row = preset_info(config.kind);
  std::string expanded;
  for (const PresetTemplate& h : row.headers) {
    // A header built from a secret field (Basic credentials, "Bearer <key>") is secret whole.
    if (references_secret(h.value, row) && expand(h.value, config, expanded)) hide(expanded);
  }
  for (const auto& [name, value] : config.fields) {
    const PresetField* f = find_field(row, name);
    // A field the preset does not know may still be a credential given under a wrong name.
    if (f == nullptr || f->secret) hide(value);
  }
  hide(config.api_key);
  for (const auto& header : config.headers) hide(header.second);
  return text;
}

namespace detail {

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; });
  return out;
}

// `pattern` is a host, or "*." and a host: any ONE label before it ("*.sentry.io" is an
// organisation's web app myorg.sentry.io, never the ingest host o1.ingest.us.sentry.io).
bool wrong_host_matches(std::string_view pattern, std::string_view host) noexcept {
  if (pattern.substr(0, 2) != "*.") return host == pattern;
  const std::string_view suffix = pattern.substr(1);  // ".sentry.io"
  if (host.size() <= suffix.size() || host.substr(host.size() - suffix.size()) != suffix) return false;
  const std::string_view label = host.substr(0, host.size() - suffix.size());
  return label.find('.') == std::string_view::npos;
}

void validate_preset(const DestinationConfig& config, const PresetInfo& row, std::string_view endpoint_host,
                     std::vector<ValidationIssue>& issues) {
  auto error = [&](std::string field, std::string message, IssueCode code = IssueCode::invalid) {
    issues.push_back({std::move(field), std::move(message), false, code});
  };
  auto warn = [&](std::string field, std::string message) {
    issues.push_back({std::move(field), std::move(message), true, IssueCode::invalid});
  };
  const std::string display(row.display_name);
  const bool self_hosted = !config.endpoint.empty();

  if (config.fields.size() > k_max_fields) error("fields", "at most 32 fields, got " + std::to_string(config.fields.size()), IssueCode::too_long);
  for (std::size_t i = 0; i < config.fields.size() && i < k_max_fields; ++i) {
    const std::string& name = config.fields[i].first;
    const PresetField* f = find_field(row, name);
    const bool region = !row.region_field.empty() && name == row.region_field;
    if (f == nullptr && !region) {
      std::string known;
      for (const PresetField& k : row.fields) known += (known.empty() ? "" : ", ") + std::string(k.name);
      // The name is shown only when it is plain text (it is not a secret; a value is never shown).
      const std::string shown = is_name(name) && name.size() <= 64 ? "'" + name + "' " : std::string();
      error("fields", "field " + shown + "is not a field of the " + display + " preset (" + known + ")",
            IssueCode::unknown_field);
      continue;
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (config.fields[j].first == name) error("fields." + name, "given twice", IssueCode::duplicate);
    }
    // The API key has two homes (api_key, for every source of a secret, and fields.api_key):
    // both given, which one is sent would be a guess.
    if (name == "api_key" && !config.api_key.empty() && !config.fields[i].second.empty()) {
      error("fields.api_key", "the API key is given twice (api_key and fields.api_key): give it once",
            IssueCode::conflict);
    }
  }

  // A malformed Sentry DSN is the one error for the fields it would have given: "missing
  // public_key" beside it would send the user looking for a field they never meant to write.
  SentryDsn parsed_dsn;
  const bool dsn_refused = row.kind == DestinationKind::sentry && !given_field(config, "dsn").empty() &&
                           !parse_sentry_dsn(given_field(config, "dsn"), parsed_dsn);
  for (const PresetField& f : row.fields) {
    const std::string field = "fields." + std::string(f.name);
    const std::string_view value = preset_field_value(config, f.name);
    const std::string what = display + " " + std::string(f.name) + " (" + std::string(f.doc) + ")";
    if (value.empty()) {
      const bool from_dsn = f.name == "public_key" || f.name == "project_id" || f.name == "org_id" || f.name == "region";
      if (dsn_refused && from_dsn) continue;
      if (f.required || (f.required_hosted && !self_hosted)) error(field, "missing " + what, IssueCode::required);
      continue;
    }
    if (has_line_break(value)) {
      error(field, "the " + std::string(f.name) + " contains CR, LF or NUL");
      continue;
    }
    if (has_control_byte(value)) {
      error(field, "the " + std::string(f.name) + " contains a control byte");
      continue;
    }
    if (value.size() > k_max_field_bytes) {
      error(field, "the " + std::string(f.name) + " is longer than 16384 bytes", IssueCode::too_long);
      continue;
    }
    // Messages name the field and the rule, never the value of a secret field.
    const std::string quoted = f.secret ? std::string() : " ('" + std::string(value.substr(0, 64)) + "')";
    switch (f.check) {
      case F::any: break;
      case F::digits:
        if (!is_digits(value)) error(field, "the " + std::string(f.name) + " must be numeric" + quoted);
        break;
      case F::hex:
        // `arg`, when given, is the exact number of digits (Datadog API keys, Sentry DSN keys: 32).
        if (!is_hex(value) || (!f.arg.empty() && std::to_string(value.size()) != f.arg)) {
          error(field, "the " + std::string(f.name) + " must be " + (f.arg.empty() ? "" : std::string(f.arg) + " ") +
                           "hexadecimal digits" + quoted);
        }
        break;
      case F::name:
        if (!is_name(value)) {
          error(field, "the " + std::string(f.name) + " may hold letters, digits, space and -_.:/@=+ only");
        }
        break;
      case F::choice:
        if (!in_list(f.arg, value)) {
          error(field, "unknown " + std::string(f.name) + quoted + ": " + display + " has " + listed(f.arg));
        }
        break;
    }
    if (f.check != F::choice && f.check != F::hex && !f.arg.empty() && value.rfind(f.arg, 0) != 0) {
      warn(field, "the " + std::string(f.name) + " does not start with " + std::string(f.arg) + ": " + display +
                      "'s do; check that you copied the " + std::string(f.name) + ", not its name or ID");
    }
  }
  if (row.kind == DestinationKind::sentry) {
    if (const std::string_view text = given_field(config, "dsn"); !text.empty()) {
      SentryDsn dsn;
      if (!parse_sentry_dsn(text, dsn)) {
        error("fields.dsn", "the DSN does not have Sentry's shape, https://<public key>@o<org id>.ingest.<region>."
                            "sentry.io/<project id> (Project settings > Client Keys (DSN))");
      } else {
        // apply_preset_defaults() filled what the DSN holds; a field given as well must agree.
        const std::pair<std::string_view, std::string_view> parts[] = {
            {"public_key", dsn.public_key}, {"project_id", dsn.project_id}, {"org_id", dsn.org_id}, {"region", dsn.region}};
        for (const auto& [name, value] : parts) {
          const std::string_view other = given_field(config, name);
          if (!value.empty() && !other.empty() && other != value) {
            error("fields." + std::string(name), "differs from the DSN's " + std::string(name) + ": give one of them",
                IssueCode::conflict);
          }
        }
        if (dsn.self_hosted && config.endpoint.empty()) {
          error("fields.dsn",
                "a self-hosted DSN needs apply_preset_defaults() (or the endpoint given): it sets the endpoint from "
                "the DSN's host",
                IssueCode::required);
        }
      }
    }
  }
  // A region given by a field the row does not list among its fields (none today) is still checked.
  if (!row.regions.empty() && find_field(row, row.region_field) == nullptr) {
    const std::string_view r = preset_field_value(config, row.region_field);
    if (find_region(row, r) == nullptr) error("fields." + std::string(row.region_field), "unknown region");
  }

  if (config.endpoint.empty()) {
    if (row.regions.empty()) {
      error("endpoint",
            "missing endpoint: " + display + " has no hosted default; give the base URL of the service (" +
                std::string(row.hints.not_found.empty() ? row.doc_url : row.hints.not_found) + ")",
            IssueCode::required);
    }
  } else {
    if (!row.endpoint_allowed) error("endpoint", display + " takes no endpoint: pick the region instead", IssueCode::conflict);
    // Case and one trailing dot (the absolute form) do not make a web-app host right.
    std::string host(endpoint_host);
    if (!host.empty() && host.back() == '.') host.pop_back();
    for (char& c : host) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    for (const PresetWrongHost& w : row.wrong_hosts) {
      if (wrong_host_matches(w.host, host)) error("endpoint", std::string(w.message));
    }
  }

  if (row.protobuf_only && !is_protobuf_protocol(config.protocol)) {
    error("protocol",
          display + " accepts OTLP protobuf only (a JSON body is answered 415): set protocol to http/protobuf (the "
                    "config loader and the tools do when protocol is not given)",
          IssueCode::unsupported);
  }
  if (!config.compression.empty()) {
    const std::uint8_t bit = config.compression == "none"   ? k_none
                             : config.compression == "gzip" ? k_gzip
                             : config.compression == "zstd" ? k_zstd
                                                            : 0;
    if (bit != 0 && (row.compressions & bit) == 0) {
      std::string allowed;
      if (row.compressions & k_none) allowed += "none";
      if (row.compressions & k_gzip) allowed += allowed.empty() ? "gzip" : ", gzip";
      if (row.compressions & k_zstd) allowed += allowed.empty() ? "zstd" : ", zstd";
      error("compression", display + " accepts " + allowed + " only", IssueCode::unsupported);
    }
  }

  for (const auto& [name, value] : config.headers) {
    const std::string lname = ascii_lower(name);
    for (const PresetTemplate& h : row.headers) {
      if (ascii_lower(h.name) == lname) {
        error("headers",
              "header " + std::string(h.name) + " is set by the " + display + " preset from its fields; remove it "
              "from headers",
              IssueCode::conflict);
      }
    }
  }
}

void resolve_preset(const DestinationConfig& config, const PresetInfo& row, ResolvedDestination& out) {
  std::string base = config.endpoint;
  if (base.empty()) {
    if (const PresetRegion* r = find_region(row, preset_field_value(config, row.region_field))) {
      if (!expand(r->base_url, config, base)) base = std::string(r->base_url);  // "{field}": Sentry's org
    }
  }
  // The path part: a query or fragment ("?tok=...") stays after the path added.
  std::string_view head = url_before_query(base);
  while (!head.empty() && head.back() == '/') head.remove_suffix(1);
  std::string path;
  if (!expand(row.path, config, path)) path = std::string(row.path);
  // A URL that already ends in the traces path is kept; one that ends in the OTLP base
  // (".../api/public/otel", what the backends' pages give for OTEL_EXPORTER_OTLP_ENDPOINT)
  // gets "/v1/traces".
  constexpr std::string_view k_signal = "/v1/traces";
  if (ends_with(head, path)) {
    out.url = append_url_path(base, "");
  } else if (ends_with(path, k_signal) && path.size() > k_signal.size() &&
             ends_with(head, std::string_view(path).substr(0, path.size() - k_signal.size()))) {
    out.url = append_url_path(base, k_signal);
  } else {
    out.url = append_url_path(base, path);
  }

  std::string value;
  for (const PresetTemplate& h : row.headers) {
    if (!expand(h.value, config, value)) continue;
    if (has_line_break(value)) continue;  // never a split request, even on an unvalidated config
    out.header_lines.push_back(std::string(h.name) + ": " + value);
  }
  for (const PresetTemplate& a : row.resource_attributes) {
    if (expand(a.value, config, value)) out.resource_attributes.emplace_back(std::string(a.name), value);
  }
}

}  // namespace detail
}  // namespace tracecast
