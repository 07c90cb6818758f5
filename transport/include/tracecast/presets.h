// The destination preset catalog: one row of data per backend (Grafana Cloud, an OpenTelemetry
// Collector, any OTLP/HTTP endpoint, Langfuse, LangSmith, Honeycomb, New Relic, Datadog,
// Braintrust, Arize AX, Arize Phoenix, W&B Weave, Comet Opik, Sentry, PostHog). A row says where
// the backend's traces endpoint is (regions or a self-hosted base URL, plus a path), which
// fields a user supplies, how they become request headers and resource attributes, the
// protocol and compression the backend takes, its size limits, the attribute convention it
// reads, and the connection-test hints in the backend's own words. Adding a backend is adding
// a row (transport/src/presets.cpp); validate(), resolve(), the connection test, the config
// loader, tracecast-check and tracecast-load all read the rows, never a copy.
//
// Knows bytes and endpoints, never spans. No curl in this header.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tracecast/destination.h"

namespace tracecast {

// How a preset field's value is checked by validate() (beyond "required" and the shared
// checks every field gets: no CR/LF/NUL or other control byte, at most 16 KiB).
enum class PresetFieldCheck : std::uint8_t {
  any,      // any text
  digits,   // decimal digits only (Grafana instance id, Sentry project id)
  hex,      // hexadecimal digits only (Sentry public key, Datadog API key)
  choice,   // one of the comma-separated names in `arg` (a region / site field)
  name,     // an identifier: letters, digits and "-_.:/ @=+" (project, workspace, entity names)
};

// One field a user supplies for a preset. `name` is its spelling in
// DestinationConfig::fields, in the config file's "fields" object and in --field NAME=VALUE.
struct PresetField {
  std::string_view name{};
  bool required = false;
  // Required only for the hosted service: optional when DestinationConfig::endpoint names a
  // self-hosted one (e.g. Comet Opik's API key and workspace).
  bool required_hosted = false;
  bool secret = false;  // never printed, never on argv; redact_secrets() hides it
  PresetFieldCheck check = PresetFieldCheck::any;
  // choice: the allowed values, comma-separated. hex: the exact number of digits ("32"), or
  // empty for any. Otherwise a prefix the value normally has ("pk-lf-"): a value without it
  // draws a warning (not an error: formats change).
  std::string_view arg{};
  std::string_view default_value{};  // used when the field is not given ("" = none)
  std::string_view doc{};            // one line for README and --help
};

// A region (or site) of a hosted backend: the value of the preset's region field and the
// base URL the traces path is appended to (it may hold "{field}": Sentry's
// https://o{org_id}.ingest.us.sentry.io).
struct PresetRegion {
  std::string_view name{};
  std::string_view base_url{};
};

// A request header or resource attribute a preset derives from its fields. `value` is a
// template: literal text with "{field}" replaced by the field's value, and
// "{base64:a:b}" replaced by base64("<a>:<b>") (HTTP Basic credentials). When a referenced
// field is optional and empty the whole header / attribute is left out.
struct PresetTemplate {
  std::string_view name{};
  std::string_view value{};
};

// A host that belongs to the backend but is not its ingest endpoint (its web app), with the
// error validate() gives when it is used as the endpoint.
struct PresetWrongHost {
  std::string_view host{};
  std::string_view message{};
};

// Connection-test hints in the backend's own words, by outcome. Empty: the generic hint.
struct PresetHints {
  std::string_view unauthorized{};       // 401 / 403
  std::string_view not_found{};          // 404
  std::string_view unsupported_media{};  // 415 (wrong encoding)
  std::string_view bad_request{};        // 400 and other 4xx but 413 / 415 / 429 (rate_limited)
  std::string_view dns{};                // the host does not resolve
  std::string_view connect{};            // nothing listens there
};

// Compression codecs, as a bit set for PresetInfo::compressions.
enum class CompressionBit : std::uint8_t { none = 1, gzip = 2, zstd = 4 };

// One backend. Plain constant data with static storage duration: pointers to it stay valid
// for the life of the program.
struct PresetInfo {
  DestinationKind kind = DestinationKind::otlp_http;
  std::string_view name{};          // JSON / CLI spelling: "langfuse"
  std::string_view display_name{};  // "Langfuse"
  std::string_view doc_url{};       // the backend's page for OTLP ingestion
  // Hosted regions (empty: `endpoint` is required). `region_field` names the field that
  // picks one ("region", "site"); `default_region` is used when it is not given.
  std::span<const PresetRegion> regions{};
  std::string_view region_field{};
  std::string_view default_region{};
  // True: DestinationConfig::endpoint may replace the region's base URL (self-hosted,
  // dedicated or proxy). The traces path is appended unless the endpoint already ends in it.
  bool endpoint_allowed = true;
  std::string_view path{};  // appended to the base URL; may hold "{field}" (Sentry's project id)
  std::span<const PresetWrongHost> wrong_hosts{};
  std::span<const PresetField> fields{};
  std::span<const PresetTemplate> headers{};
  std::span<const PresetTemplate> resource_attributes{};
  // "http/json" or "http/protobuf": what apply_preset_defaults() fills in when the config
  // leaves protocol empty. `protobuf_only`: validate() refuses http/json (the backend
  // answers 415).
  std::string_view default_protocol{};
  bool protobuf_only = false;
  std::uint8_t compressions = 0;  // CompressionBit set the backend accepts
  std::string_view default_compression{};
  // Bytes of one request body the backend takes at most (0 = no documented limit), and of
  // one attribute value (0 = none). A limit documented in characters (New Relic: 4,095) is
  // applied as bytes: never longer, sometimes shorter (multi-byte UTF-8).
  std::uint64_t max_request_bytes = 0;
  std::uint32_t max_attribute_value_bytes = 0;
  // The attribute convention the backend reads best, by name ("openrouter", "genai",
  // "openinference", "langfuse", "langsmith"); the pipeline resolves the name.
  std::string_view default_convention{};
  PresetHints hints{};
  // True for the three original kinds, whose URL and Authorization rules predate the
  // catalog and stay in destination.cpp (their rows carry names, defaults and hints).
  bool custom_rules = false;
};

// Every preset, in DestinationKind order. Thread-safe, no allocation.
[[nodiscard]] std::span<const PresetInfo> presets() noexcept;

// The row of `kind_name` ("langfuse"; the historic aliases "grafana", "collector" and "otlp"
// too), or nullptr when there is none. Thread-safe, no allocation.
[[nodiscard]] const PresetInfo* find_preset(std::string_view kind_name) noexcept;

// The row of `kind` (never null for a valid enumerator). Thread-safe, no allocation.
[[nodiscard]] const PresetInfo& preset_info(DestinationKind kind) noexcept;

// The kind's JSON / CLI spelling ("grafana_cloud", "langfuse"). Thread-safe, no allocation.
[[nodiscard]] std::string_view to_string(DestinationKind kind) noexcept;

// Every kind name, comma-separated ("grafana_cloud, otel_collector, ..."): for error messages
// and --help. Thread-safe. Allocates.
[[nodiscard]] std::string preset_names();

// The field `name` of `info`, or nullptr. Thread-safe, no allocation.
[[nodiscard]] const PresetField* find_field(const PresetInfo& info, std::string_view name) noexcept;

// The value `config` gives the preset field `name`: its non-empty entry in config.fields, else
// config.api_key for a field named "api_key" (so --api-key-file and TRACECAST_API_KEY work
// for every preset with an API key), else the field's default; "" when none. Thread-safe, no
// allocation (a view into `config` or the catalog).
[[nodiscard]] std::string_view preset_field_value(const DestinationConfig& config, std::string_view name) noexcept;

// Fills what `config` leaves empty from its kind's row: protocol (the preset's default
// protocol, e.g. http/protobuf for Arize Phoenix and W&B Weave) and compression; for the
// original kinds (empty already means their default) it only moves grafana_cloud's
// "instance_id" / "api_key" entries of `fields` into their members. The config
// loader and the tools call it before validate(); a program building a DestinationConfig
// itself should too (resolve() and the pipeline read `protocol` as given). Thread-safe
// (touches only `config`). Allocates.
void apply_preset_defaults(DestinationConfig& config);

// `text` with every secret of `config` replaced by "***": api_key, header values, secret
// preset fields and the header values a preset derives from them (e.g. Langfuse's Basic
// credentials). Values shorter than 4 bytes are left (they would blank ordinary words). What
// tools and the connection test pass every printed line through. Thread-safe. Allocates.
[[nodiscard]] std::string redact_secrets(std::string text, const DestinationConfig& config);

}  // namespace tracecast
