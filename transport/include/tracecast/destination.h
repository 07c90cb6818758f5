// Destinations of the sender: Grafana Cloud's OTLP gateway, an OpenTelemetry Collector, or any
// OTLP/HTTP endpoint. Configuration, validation and the resolved wire form (URL + headers).
//
// Knows bytes and endpoints, never spans. No curl in this header.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tracecast/settings.h"

namespace tracecast {

enum class DestinationKind : std::uint8_t {
  grafana_cloud,   // Grafana Cloud OTLP gateway: Basic auth from instance id + glc_ key, gzip
  otel_collector,  // an OpenTelemetry Collector's OTLP/HTTP receiver, zstd
  otlp_http,       // any OTLP/HTTP endpoint, gzip
  // LLM-observability backends over OTLP/HTTP: one row each in the preset catalog
  // (tracecast/presets.h), which says their URL, fields, headers and limits.
  langfuse,
  langsmith,
  honeycomb,
  new_relic,
  datadog,
  braintrust,
  arize_ax,
  arize_phoenix,
  wandb_weave,
  comet_opik,
  sentry,
  posthog,
};

// One destination's settings. Plain data: copy it freely. Fields that may hold a secret
// (`api_key`, header values) are never copied into an error message, a stat or a log.
struct DestinationConfig {
  DestinationKind kind = DestinationKind::otlp_http;
  // Label for stats and error messages. Never a credential. Empty: "destination".
  std::string name;
  // Preset kinds (tracecast/presets.h): optional when the preset has hosted regions (the
  //   region's base URL is used), else the base URL of the self-hosted / dedicated service; the
  //   preset's traces path is appended unless the URL already ends in it.
  // grafana_cloud: base URL of the OTLP gateway (https://otlp-gateway-prod-<region>.grafana.net,
  //   "/otlp/v1/traces" is appended; a URL already ending in /otlp or /otlp/v1/traces is kept).
  // otel_collector: base URL (":4318") gets "/v1/traces" appended when it has no path.
  // otlp_http: the full URL of the traces endpoint, used as is.
  std::string endpoint;
  // grafana_cloud only: the numeric instance (stack) id, the Basic-auth user name.
  std::string instance_id;
  // grafana_cloud: the access-policy token (secret; normally starts with "glc_"). Other
  // presets with an "api_key" field use it when `fields` does not give that field.
  std::string api_key;
  // The preset's fields by name (tracecast/presets.h lists each preset's), e.g.
  // {"public_key", "pk-lf-..."}, {"secret_key", "sk-lf-..."}, {"region", "us"} for langfuse.
  // Secret fields are never copied into an error message, a stat or a log.
  std::vector<std::pair<std::string, std::string>> fields;
  // Extra request headers, e.g. {"authorization", "Bearer ..."}. Values may be secret.
  std::vector<std::pair<std::string, std::string>> headers;
  // "", "none", "gzip" or "zstd". "" = the kind's default: grafana_cloud gzip (Grafana
  // documents gzip only), otel_collector zstd, otlp_http gzip (every OTLP server must take it).
  // The sender does not compress: this says which codec the pipeline must use, and the
  // Content-Encoding the sender puts on each request comes from SendRequest::content_encoding.
  std::string compression;
  // OTLP/HTTP encoding: "" or "http/json" (the default: what the reference product sends) or
  // "http/protobuf" (binary protobuf, Content-Type application/x-protobuf: about half the bytes,
  // and the only encoding some backends take, e.g. Arize Phoenix, W&B Weave). "grpc" is refused
  // (tracecast speaks OTLP over HTTP only). The names are OTEL_EXPORTER_OTLP_PROTOCOL's.
  // The pipeline encodes the destination's batches in this encoding; the sender sets the
  // Content-Type and reads a 2xx response's partial_success in the same encoding.
  std::string protocol;
  // Whole-request timeout (connect + send + response), per attempt. Range 1 ms .. 10 min.
  std::chrono::milliseconds timeout{10000};
  // Requests in flight to this destination at once. Range 1 .. 1024. Further requests wait
  // inside the sender (they keep their buffers, which the pipeline's budget bounds).
  std::uint32_t max_in_flight = 4;
  // TLS trust: a PEM bundle file and/or a hashed certificate directory. Empty: system store.
  std::string ca_file;
  std::string ca_path;
  // Disables TLS peer and host verification. For tests against throwaway certificates only:
  // never set it for a real destination (validate() warns when it is on).
  bool insecure_skip_verify = false;
};

// The rows describing DestinationConfig's fields (tracecast/settings.h): JSON key, unit,
// range, doc. They drive the size, choice and range checks of validate(), the config file's
// keys of a destination and README's destination table. Thread-safe, no allocation.
[[nodiscard]] std::span<const Setting> destination_settings() noexcept;

// Problems found by validate() are ValidationIssues (tracecast/settings.h). `path` names the
// DestinationConfig member ("endpoint", "instance_id", "api_key", "headers", "compression",
// "protocol", "timeout", "max_in_flight", "name", "fields"), or "fields.<name>" for one of a
// preset's fields; `code` says the kind of problem (required, invalid, out_of_range, too_long,
// conflict: two settings that cannot both hold, unknown_field: a field this kind does not
// take, unsupported: grpc, a codec or encoding the backend does not take); `message` says
// what is wrong and how to fix it, never quoting a secret.

// Checks a destination. Errors: endpoint that does not parse as an http(s) URL or has no host
// ("http:///v1/traces"), Grafana's main URL (grafana.net without otlp-gateway) given for a
// grafana_cloud endpoint, a non-numeric or empty instance id, a missing API key, an unknown protocol or grpc, CR, LF or NUL
// in a header name or value (header injection), any other control byte in a header value or
// the endpoint, an invalid header name, and the rows' checks (destination_settings()): an
// unknown compression, timeout outside 1 ms..10 min, max_in_flight outside 1..1024, sizes
// past their bounds: endpoint 8 KiB, name 256 B, instance id 32 B, API key 16 KiB, CA paths
// 4 KiB; 64 headers of at most 256 B name and 16 KiB value. Warnings: a Grafana key without the "glc_" prefix, http:// to a Grafana host,
// insecure_skip_verify, zstd to Grafana Cloud.
// Preset kinds (tracecast/presets.h) add, with `path` "fields.<name>": a missing required
// field, a field the preset does not have, a malformed value (not numeric, not hex, not one of
// the regions), an unknown region; and: the backend's web-app host given as the endpoint
// (e.g. sentry.io instead of o<org>.ingest.<region>.sentry.io), no endpoint for a preset
// without hosted regions, http/json to a protobuf-only backend, a compression it does not
// take, a header the preset sets itself. Warnings: a value without its usual prefix
// ("pk-lf-", "phc_"). No message quotes a secret field's value.
// Thread-safe (pure). Allocates. Never throws except std::bad_alloc.
[[nodiscard]] std::vector<ValidationIssue> validate(const DestinationConfig& config);

// True when `issues` holds no error (warnings allowed). Thread-safe, no allocation.
[[nodiscard]] bool has_errors(const std::vector<ValidationIssue>& issues) noexcept;

// The destination as it goes on the wire.
struct ResolvedDestination {
  std::string url;  // full URL of the traces endpoint
  // Every header except Content-Encoding (which the sender sets per request) and
  // Content-Length: Content-Type (application/json, or application/x-protobuf for
  // http/protobuf), Authorization for grafana_cloud, then the
  // configured extra headers. Each entry is a complete "Name: value" line.
  std::vector<std::string> header_lines;
  std::string compression;  // "none", "gzip" or "zstd" (the kind's default resolved)
  bool protobuf = false;    // protocol http/protobuf: bodies and 2xx answers are protobuf
  // Resource attributes the destination needs on every ResourceSpans it receives (W&B Weave
  // routes by wandb.entity / wandb.project; Arize by openinference.project.name), from the
  // preset's fields. The pipeline adds them to the destination's batches.
  std::vector<std::pair<std::string, std::string>> resource_attributes;
  // The preset's limits: bytes of one request body (New Relic: 1,000,000) and of one
  // attribute value (New Relic: 4,095); 0 = no preset limit.
  std::uint64_t max_request_bytes = 0;
  std::uint32_t max_attribute_value_bytes = 0;
  // Name of the attribute convention the backend reads best ("openrouter", "genai",
  // "openinference", "langfuse", "langsmith").
  std::string convention;
};

// True for "http/protobuf"; false for "" and "http/json" (validate() refuses anything else).
// Thread-safe, no allocation.
[[nodiscard]] bool is_protobuf_protocol(std::string_view protocol) noexcept;

// Checks an OTLP protocol name ("", "http/json", "http/protobuf"). Empty when valid, else
// the reason ("grpc" gets its own: tracecast sends OTLP/HTTP only). Thread-safe, no allocation.
[[nodiscard]] std::string_view protocol_error(std::string_view protocol) noexcept;

// Resolves a destination that validate() accepted: the URL with the kind's path, the
// Authorization: Basic base64("<instance id>:<api key>") header for grafana_cloud, the
// compression default. Precondition: !has_errors(validate(config)); on a config with errors
// the result is unspecified but safe (no injection: header lines with CR/LF are dropped).
// Thread-safe (pure). Allocates.
[[nodiscard]] ResolvedDestination resolve(const DestinationConfig& config);

// The kind's default compression name ("gzip" or "zstd"), from the preset catalog.
// Thread-safe, no allocation.
[[nodiscard]] std::string_view default_compression(DestinationKind kind) noexcept;

// Standard base64 (RFC 4648, with padding). Thread-safe. Allocates the result.
[[nodiscard]] std::string base64_encode(std::string_view bytes);

}  // namespace tracecast

namespace tracecast {

// Parses the W3C-baggage-like list the OpenTelemetry spec uses for OTEL_EXPORTER_OTLP_HEADERS
// and OTEL_RESOURCE_ATTRIBUTES: "k1=v1,k2=v2"; blanks around keys and values ignored, empty
// entries ("a=1,,b=2", a trailing comma) tolerated, keys and values percent-decoded (%XX; a '%'
// not followed by two hex digits is an error, so "%2" or "%zz" never reaches a server).
// `var` names the variable in errors. With `secret_values`, no error quotes a value or an entry
// without '=' (it may be a bare token). Returns "" and fills `out` (cleared first) on success,
// else "<var>: <reason>". The one parser of these lists: the library (config_from_env) and
// tracecast-check both use it, so a setting the check accepts is one the gateway can start with.
// Thread-safe; allocates.
[[nodiscard]] std::string parse_otel_key_values(std::string_view var, std::string_view text, bool secret_values,
                                                std::vector<std::pair<std::string, std::string>>& out);

// OTEL_EXPORTER_OTLP_[TRACES_]HEADERS: parse_otel_key_values with secret values, and no value
// holding CR, LF or NUL (they would split the HTTP request). Same contract.
[[nodiscard]] std::string parse_otlp_headers(std::string_view var, std::string_view text,
                                             std::vector<std::pair<std::string, std::string>>& out);

// True when `s` holds CR, LF or NUL: in a header (or a value sent as one) they would end the
// field or the request early (header injection). Checked before has_control_byte() for the
// more specific error. Thread-safe (pure), no allocation.
[[nodiscard]] bool has_line_break(std::string_view s) noexcept;

// True when `s` holds a control byte other than HTAB (0x00-0x1F, 0x7F). RFC 9110 5.5: a field
// value is HTAB, SP and visible octets; every header value, the user agent and the endpoint
// are refused with one, so nothing a receiver or a proxy on the way may treat specially is
// sent. Thread-safe (pure), no allocation.
[[nodiscard]] bool has_control_byte(std::string_view s) noexcept;

// scheme://host[:port]/path of `url` without user info, query or fragment (any of which may
// carry a token): what tools and logs may print of a destination's URL. Thread-safe (pure).
// Allocates.
[[nodiscard]] std::string display_url(std::string_view url);

// What a message may show of a header name a user gave (or of a key in a key=value list,
// which may be a header name): the name when it is a valid header name (an RFC 9110 token of
// at most 256 bytes); for a header written the HTTP way ("Authorization: Bearer <token>" as
// the name) only the part before the ':' when that is a token of at most 64 bytes, as
// "Authorization: ..."; else "" (show nothing: the rest may be a credential). Thread-safe
// (pure). Allocates.
[[nodiscard]] std::string display_header_name(std::string_view name);

// What to add to an error about the header name `name`: when it holds ':' or a blank (a line
// "Name: value" written where a name goes), "; it looks like 'Name: value': write the name and
// the value apart (Name=value)", else "". Thread-safe (pure), no allocation.
[[nodiscard]] std::string_view header_line_hint(std::string_view name) noexcept;

// `url` with `path` appended to its path: inserted before the query or fragment ("?team=a",
// "#x"), which are kept, so "http://h/?team=a" + "/v1/traces" is "http://h/v1/traces?team=a".
// Trailing '/' of the path part are dropped first (`path` starts with '/', or is empty to
// drop them only).
// Every place that adds a traces path to a base URL (resolve(), the presets, the
// OTEL_EXPORTER_OTLP_ENDPOINT mapping) goes through it. Thread-safe (pure). Allocates.
[[nodiscard]] std::string append_url_path(std::string_view url, std::string_view path);

// The part of `url` before its query or fragment (the first '?' or '#'); the whole of `url`
// when it has neither. Thread-safe (pure), no allocation.
[[nodiscard]] std::string_view url_before_query(std::string_view url) noexcept;

}  // namespace tracecast
