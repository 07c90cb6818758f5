#include "tracecast/destination.h"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <memory>

#include "egress_gate.h"
#include "preset_rules.h"
#include "tracecast/presets.h"

namespace tracecast {
namespace {

struct UrlParts {
  bool ok = false;
  std::string scheme, host, path, error;
};

struct CurlUrlDeleter {
  void operator()(CURLU* u) const noexcept { curl_url_cleanup(u); }
};
struct CurlFree {
  void operator()(char* p) const noexcept { curl_free(p); }
};

std::string get_part(CURLU* url, CURLUPart part) {
  char* raw = nullptr;
  if (curl_url_get(url, part, &raw, 0) != CURLUE_OK || raw == nullptr) return {};
  std::unique_ptr<char, CurlFree> owned(raw);
  return std::string(owned.get());
}

UrlParts parse_url(const std::string& text) {
  UrlParts parts;
  std::unique_ptr<CURLU, CurlUrlDeleter> url(curl_url());
  if (!url) {
    parts.error = "out of memory";
    return parts;
  }
  const CURLUcode rc = curl_url_set(url.get(), CURLUPART_URL, text.c_str(), 0);
  if (rc != CURLUE_OK) {
    parts.error = curl_url_strerror(rc);
    return parts;
  }
  parts.scheme = get_part(url.get(), CURLUPART_SCHEME);
  parts.host = get_part(url.get(), CURLUPART_HOST);
  parts.path = get_part(url.get(), CURLUPART_PATH);
  parts.ok = true;
  return parts;
}

bool ends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; });
  return out;
}

bool is_grafana_host(std::string_view host) noexcept {
  return host == "grafana.net" || ends_with(host, ".grafana.net") || host == "grafana.com" ||
         ends_with(host, ".grafana.com");
}

// RFC 9110 token characters (header field names).
bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  constexpr std::string_view k_extra = "!#$%&'*+-.^_`|~";
  return k_extra.find(c) != std::string_view::npos;
}

// The authority of "scheme://authority/path" as written, empty when there is none. curl's
// parser reads "http:///v1/traces" as host "v1", so an empty authority is caught here.
std::string_view written_host(std::string_view url) noexcept {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return url;  // not ours to judge: curl's parser is
  std::string_view rest = url.substr(scheme_end + 3);
  rest = rest.substr(0, rest.find_first_of("/?#"));
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) rest.remove_prefix(at + 1);
  if (!rest.empty() && rest.front() == '[') return rest;  // IPv6 literal
  return rest.substr(0, rest.find(':'));
}

// Bounds on what a destination's text fields may hold (no receiver needs more; a
// customer-supplied config cannot make the sender copy megabytes per request). The rows below
// state them; the code of validate() keeps only the header count it loops over.
constexpr std::size_t k_max_endpoint_bytes = 8192;
constexpr std::size_t k_max_headers = 64;
constexpr std::size_t k_max_header_name_bytes = 256;
constexpr std::size_t k_max_header_value_bytes = 16384;
constexpr std::size_t k_max_secret_bytes = 16384;
constexpr std::size_t k_max_path_bytes = 4096;
constexpr std::size_t k_max_fields = 32;  // presets.cpp refuses more too

using DC = DestinationConfig;

// DestinationConfig's fields (tracecast/settings.h). `kind` is read by code of its own (a
// preset name); the rules that are not a size or a choice (URL parsing, header names,
// injection, a preset's fields) are validate()'s below. A row's variable is the general
// OTEL_EXPORTER_OTLP_* one; destination_from_env() reads its OTEL_EXPORTER_OTLP_TRACES_* form
// first (the OTel spec), with the row's range or choices.
constexpr Setting k_destination_rows[] = {
    described_setting("kind", "kind", "preset", "`otlp_http`", "a preset name (see [Presets](#presets))",
                      "the backend: `grafana_cloud`, `otel_collector`, `otlp_http` or a preset of the catalog"),
    text_setting("name", "name", false, 256, &setting_ref<&DC::name>,
                 "label for stats and error messages, never a credential (empty: `destination`)")
        .also_checked("no CR, LF or NUL"),
    text_setting("endpoint", "endpoint", false, k_max_endpoint_bytes, &setting_ref<&DC::endpoint>,
                 "the traces URL (`otlp_http`), or the base URL the kind's path is appended to (`otel_collector`: "
                 "`/v1/traces`; `grafana_cloud`: `/otlp/v1/traces`; a preset: its path); optional for a preset "
                 "with hosted regions; never quoted in errors")
        .also_checked("an http(s) URL with a host; no control byte; the kind's own host rules"),
    text_setting("instance_id", "instance_id", false, 32, &setting_ref<&DC::instance_id>,
                 "`grafana_cloud`: the numeric stack id, the Basic-auth user (a JSON number is taken as its text)")
        .also_checked("digits; required for `grafana_cloud`"),
    text_setting("api_key", "api_key", false, k_max_secret_bytes, &setting_ref<&DC::api_key>,
                 "secret: Grafana Cloud's access-policy token (`glc_...`), or a preset's `api_key` field; "
                 "or `api_key_env` / `api_key_file`")
        .also_checked("no control byte; required for `grafana_cloud`; refused for a kind without an `api_key` field "
                      "(`otlp_http`, `otel_collector`: give headers)"),
    pairs_setting("fields", "fields", k_max_fields, 1, 64, k_max_secret_bytes, &setting_ref<&DC::fields>,
                  "a preset's fields by name (see [Presets](#presets)); secret ones never quoted; or `fields_env` / "
                  "`fields_file`")
        .unchecked()
        .range_doc("≤ 32; each the preset's rule (required, digits, hex, a region, ...)"),
    pairs_setting("headers", "headers", k_max_headers, 1, k_max_header_name_bytes, k_max_header_value_bytes,
                  &setting_ref<&DC::headers>, "extra request headers; values may be secret, never quoted; or "
                                              "`headers_env`")
        .unchecked()
        .range_doc("≤ 64; name 1..256 B of RFC 9110 token characters, each once ignoring case, value ≤ 16384 B "
                   "without control bytes; not one the sender (`Content-Type`, `Content-Length`, `Content-Encoding`, "
                   "`Host`, `Transfer-Encoding`) or the preset sets"),
    choice_setting("compression", "compression", "none, gzip, zstd", &setting_ref<&DC::compression>,
                   "the codec; empty: the kind's default (gzip for Grafana Cloud and generic OTLP, zstd for "
                   "Collectors, the preset's)")
        .default_doc("the kind's")
        .env_var("OTEL_EXPORTER_OTLP_COMPRESSION")
        .also_checked("one the preset takes"),
    text_setting("protocol", "protocol", false, 16, &setting_ref<&DC::protocol>,
                 "`http/json` (empty: the default, what the reference product sends) or `http/protobuf` "
                 "(about half the bytes; Arize Phoenix and W&B Weave take only it); `grpc` is refused. Not "
                 "switched on a live destination")
        .unchecked()
        .range_doc("`http/json`, `http/protobuf`; protobuf for a protobuf-only preset"),
    number_setting("timeout", "timeout_ms", "ms", 1, 600'000, &setting_ref<&DC::timeout>,
                   "whole-request timeout (connect + send + response), per attempt")
        .noted(" (10 min)")
        .env_var("OTEL_EXPORTER_OTLP_TIMEOUT"),
    number_setting("max_in_flight", "max_in_flight", "requests", 1, 1024, &setting_ref<&DC::max_in_flight>,
                   "requests in flight to it at once; more wait inside the sender"),
    text_setting("ca_file", "ca_file", false, k_max_path_bytes, &setting_ref<&DC::ca_file>,
                 "TLS trust: a PEM bundle (empty: the system store)")
        .also_checked("no CR, LF or NUL")
        .a_file()
        .env_var("OTEL_EXPORTER_OTLP_CERTIFICATE"),
    text_setting("ca_path", "ca_path", false, k_max_path_bytes, &setting_ref<&DC::ca_path>,
                 "TLS trust: a hashed certificate directory")
        .also_checked("no CR, LF or NUL")
        .a_file(),
    flag_setting("insecure_skip_verify", "insecure_skip_verify", &setting_ref<&DC::insecure_skip_verify>,
                 "no TLS peer or host verification: tests only (warned)"),
};

std::string resolved_compression(const DestinationConfig& config) {
  if (config.compression.empty()) return std::string(default_compression(config.kind));
  return config.compression;
}

}  // namespace

std::span<const Setting> destination_settings() noexcept { return k_destination_rows; }

std::string_view default_compression(DestinationKind kind) noexcept {
  return preset_info(kind).default_compression;
}

bool has_errors(const std::vector<ValidationIssue>& issues) noexcept {
  return std::any_of(issues.begin(), issues.end(), [](const ValidationIssue& i) { return !i.warning; });
}

std::vector<ValidationIssue> validate(const DestinationConfig& config) {
  std::vector<ValidationIssue> issues;
  auto error = [&](std::string field, std::string message, IssueCode code = IssueCode::invalid) {
    issues.push_back({std::move(field), std::move(message), false, code});
  };
  auto warn = [&](std::string field, std::string message, IssueCode code = IssueCode::invalid) {
    issues.push_back({std::move(field), std::move(message), true, code});
  };
  const bool grafana = config.kind == DestinationKind::grafana_cloud;
  // Sizes, the compression's name, the timeout and max_in_flight: the rows'.
  check_settings(k_destination_rows, &config, issues);

  if (has_line_break(config.name)) error("name", "the name must not contain CR, LF or NUL");

  const PresetInfo& row = preset_info(config.kind);
  std::string endpoint_host;  // lowercased, for the preset's wrong-host rules

  // Endpoint. The URL itself is never quoted back: users paste tokens into query strings.
  if (config.endpoint.empty()) {
    // A catalog preset reports a missing endpoint itself (most have hosted regions).
    if (row.custom_rules) {
      error("endpoint",
            grafana ? "missing endpoint: give the OTLP gateway base URL "
                      "(https://otlp-gateway-prod-<region>.grafana.net)"
                    : "missing endpoint: give the OTLP/HTTP URL (http(s)://host:4318/v1/traces)",
            IssueCode::required);
    }
  } else if (has_line_break(config.endpoint)) {
    error("endpoint", "the endpoint must not contain CR, LF or NUL");
  } else if (has_control_byte(config.endpoint)) {
    error("endpoint", "the endpoint must not contain control bytes");
  } else if (config.endpoint.size() > k_max_endpoint_bytes) {
    // The row says it (too_long); a URL this long is not parsed.
  } else if (written_host(config.endpoint).empty()) {
    error("endpoint", "the endpoint has no host (http(s)://host[:port][/path]; \"http:///path\" has none)");
  } else {
    const UrlParts url = parse_url(config.endpoint);
    if (!url.ok) {
      error("endpoint", "the endpoint is not a valid URL (" + url.error +
                            "); expected http(s)://host[:port][/path]");
    } else if (url.scheme != "http" && url.scheme != "https") {
      error("endpoint", "the endpoint must be an http:// or https:// URL (scheme '" + url.scheme + "')",
            IssueCode::unsupported);
    } else if (url.host.empty()) {
      error("endpoint", "the endpoint has no host", IssueCode::required);
    } else if (const std::string_view why = detail::host_name_error(url.host, /*numeric_ipv4_forms=*/true);
               !why.empty()) {
      // Not quoted (the URL never is). curl would otherwise look up "%zz" as "%25zz".
      error("endpoint", "the endpoint's host is not a host name or an IP address: it " + std::string(why));
    } else {
      const std::string host = lower(url.host);
      endpoint_host = host;
      if (grafana && is_grafana_host(host) && host.find("otlp-gateway") == std::string::npos) {
        error("endpoint", "this is the main Grafana URL, not the OTLP gateway: use the OTLP "
                          "endpoint (https://otlp-gateway-prod-<region>.grafana.net) shown under "
                          "Connections > Add new connection > OpenTelemetry (OTLP)");
      } else if (grafana && !is_grafana_host(host)) {
        warn("endpoint", "the host is not a grafana.net OTLP gateway; fine for a proxy, "
                         "otherwise use https://otlp-gateway-prod-<region>.grafana.net");
      }
      if (grafana && url.scheme == "http" && is_grafana_host(host)) {
        warn("endpoint", "Grafana Cloud's OTLP gateway is served over https://");
      }
    }
  }

  if (grafana) {
    if (config.instance_id.empty()) {
      error("instance_id",
            "missing instance ID: the numeric ID of your Grafana Cloud stack "
            "(grafana.com/orgs/<org>/stacks, in the stack's URL or details)",
            IssueCode::required);
    } else if (!std::all_of(config.instance_id.begin(), config.instance_id.end(),
                            [](char c) { return c >= '0' && c <= '9'; })) {
      error("instance_id", "the instance ID must be numeric (the stack's number, not its name "
                           "or URL)");
    }
    if (config.api_key.empty()) {
      error("api_key",
            "missing API key: create a token with the traces:write scope under "
            "My Account > Access Policies",
            IssueCode::required);
    } else {
      if (has_line_break(config.api_key)) error("api_key", "the API key contains a line break");
      else if (has_control_byte(config.api_key)) error("api_key", "the API key contains a control byte");
      if (config.api_key.rfind("glc_", 0) != 0) {
        warn("api_key", "the API key does not start with glc_: Grafana Cloud access-policy "
                        "tokens do; check that you copied the token, not its name or ID");
      }
    }
    if (config.compression == "zstd") {
      warn("compression", "Grafana Cloud documents gzip only; zstd may be refused");
    }
  } else {
    if (!config.instance_id.empty()) warn("instance_id", "instance_id is used by grafana_cloud only", IssueCode::unknown_field);
    if (!config.api_key.empty() && find_field(row, "api_key") == nullptr) {
      // Nothing would send it: an error, not a warning, so a credential is never dropped unseen.
      // Named: what the kind takes instead; never the key.
      std::string takes;
      if (row.custom_rules) {
        takes = "it sends no auth header of its own: give credentials in headers (e.g. Authorization)";
      } else {
        for (const PresetField& f : row.fields) takes += (takes.empty() ? "" : ", ") + std::string(f.name);
        takes = "it takes the fields " + takes;
      }
      error("api_key", "api_key is not used by " + std::string(row.name) + " (" + takes + ")", IssueCode::unknown_field);
    }
    if (!config.api_key.empty() && (has_line_break(config.api_key) || has_control_byte(config.api_key))) {
      error("api_key", "the API key contains a line break or control byte");
    }
  }
  if (row.custom_rules && !config.fields.empty() && !grafana) {
    error("fields", "the " + std::string(row.name) + " kind takes no fields (give a preset kind, e.g. langfuse)",
          IssueCode::unknown_field);
  } else if (grafana) {
    for (const auto& field : config.fields) {
      if (field.first != "instance_id" && field.first != "api_key") {
        error("fields", "grafana_cloud takes the fields instance_id and api_key only", IssueCode::unknown_field);
      } else {
        error("fields." + field.first,
              "give grafana_cloud's " + field.first + " in its own member (the config loader and the tools move it "
              "there)",
              IssueCode::conflict);
      }
    }
  }
  if (!row.custom_rules) detail::validate_preset(config, row, endpoint_host, issues);

  if (config.headers.size() > k_max_headers) {
    error("headers", "at most 64 headers, got " + std::to_string(config.headers.size()), IssueCode::too_long);
  }
  for (std::size_t i = 0; i < std::min(config.headers.size(), k_max_headers); ++i) {
    const auto& [name, value] = config.headers[i];
    const std::string which = "header #" + std::to_string(i + 1);
    if (name.empty()) {
      error("headers", which + ": empty header name", IssueCode::required);
    } else if (has_line_break(name)) {
      error("headers", which + ": the name contains CR, LF or NUL (header injection)");
    } else if (name.size() > k_max_header_name_bytes) {
      error("headers", which + ": the name is longer than 256 bytes", IssueCode::too_long);
    } else if (!std::all_of(name.begin(), name.end(), is_tchar)) {
      // Never the whole name: "Authorization: Bearer <token>" given as a name holds the secret.
      const std::string shown = display_header_name(name);
      error("headers", which + (shown.empty() ? std::string() : " (" + shown + ")") +
                           ": the name has characters not allowed in a header name" +
                           std::string(header_line_hint(name)));
    }
    // The value may be a secret: name the header, never the value.
    const std::string label =
        which + (!name.empty() && name.size() <= k_max_header_name_bytes && std::all_of(name.begin(), name.end(), is_tchar)
                     ? " (" + name + ")"
                     : std::string());
    if (has_line_break(value)) {
      error("headers", label + ": the value contains CR, LF or NUL (header injection)");
    } else if (has_control_byte(value)) {
      error("headers", label + ": the value contains a control byte (0x01-0x1f other than tab, or 0x7f)");
    }
    if (value.size() > k_max_header_value_bytes) {
      error("headers", label + ": the value is longer than 16384 bytes", IssueCode::too_long);
    }
    // Every source of headers (the file's headers and headers_env, OTEL_EXPORTER_OTLP_HEADERS,
    // the tools' --header, the API) ends here: one rule for all. Names ignore case (RFC 9110).
    const std::string lname = lower(name);
    if (lname == "content-type" || lname == "content-length" || lname == "content-encoding" || lname == "host" ||
        lname == "transfer-encoding" || (grafana && lname == "authorization")) {
      error("headers", label + ": set by the sender, cannot be overridden", IssueCode::conflict);
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (!name.empty() && lower(config.headers[j].first) == lname) {
        error("headers", label + ": given twice (header #" + std::to_string(j + 1) + "; names ignore case)",
              IssueCode::duplicate);
        break;
      }
    }
  }

  if (const std::string_view why = protocol_error(config.protocol); !why.empty()) {
    error("protocol", std::string(why), config.protocol == "grpc" ? IssueCode::unsupported : IssueCode::invalid);
  }
  if (has_line_break(config.ca_file)) error("ca_file", "the path contains CR, LF or NUL");
  if (has_line_break(config.ca_path)) error("ca_path", "the path contains CR, LF or NUL");
  if (config.insecure_skip_verify) {
    warn("insecure_skip_verify", "TLS verification is off: for tests only, never for a real "
                                 "destination");
  }
  return issues;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr std::array<char, 64> k_alphabet = {
      'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', 'P',
      'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'a', 'b', 'c', 'd', 'e', 'f',
      'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v',
      'w', 'x', 'y', 'z', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '+', '/'};
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += k_alphabet[(v >> 18) & 63];
    out += k_alphabet[(v >> 12) & 63];
    out += k_alphabet[(v >> 6) & 63];
    out += k_alphabet[v & 63];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t v = byte(i) << 16;
    out += k_alphabet[(v >> 18) & 63];
    out += k_alphabet[(v >> 12) & 63];
    out += "==";
  } else if (rest == 2) {
    const std::uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
    out += k_alphabet[(v >> 18) & 63];
    out += k_alphabet[(v >> 12) & 63];
    out += k_alphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool is_protobuf_protocol(std::string_view protocol) noexcept { return protocol == "http/protobuf"; }

std::string_view protocol_error(std::string_view protocol) noexcept {
  if (protocol.empty() || protocol == "http/json" || protocol == "http/protobuf") return {};
  if (protocol == "grpc")
    return "grpc is not supported: tracecast sends OTLP over HTTP; use http/protobuf (the same "
           "protobuf messages, port 4318 and path /v1/traces instead of gRPC's 4317) or http/json";
  return "unknown protocol (use http/json or http/protobuf)";
}

ResolvedDestination resolve(const DestinationConfig& config) {
  ResolvedDestination out;
  out.compression = resolved_compression(config);
  if (out.compression.empty()) out.compression = "none";

  std::string url = config.endpoint;
  const UrlParts parts = parse_url(url);
  // The path is looked at and extended before the query or fragment, which stay at the end.
  std::string_view base = url_before_query(config.endpoint);
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  switch (config.kind) {
    case DestinationKind::grafana_cloud: {
      if (ends_with(base, "/otlp/v1/traces")) {
        url = append_url_path(config.endpoint, "");
      } else if (ends_with(base, "/otlp")) {
        url = append_url_path(config.endpoint, "/v1/traces");
      } else {
        url = append_url_path(config.endpoint, "/otlp/v1/traces");
      }
      break;
    }
    case DestinationKind::otel_collector:
      if (parts.ok && (parts.path.empty() || parts.path == "/")) url = append_url_path(config.endpoint, "/v1/traces");
      break;
    default:  // otlp_http: as given; catalog presets: below
      break;
  }
  out.url = std::move(url);

  const PresetInfo& row = preset_info(config.kind);
  out.protobuf = is_protobuf_protocol(config.protocol);
  out.header_lines.emplace_back(out.protobuf ? "Content-Type: application/x-protobuf" : "Content-Type: application/json");
  if (config.kind == DestinationKind::grafana_cloud) {
    out.header_lines.push_back("Authorization: Basic " +
                               base64_encode(config.instance_id + ":" + config.api_key));
  }
  if (!row.custom_rules) detail::resolve_preset(config, row, out);
  out.max_request_bytes = row.max_request_bytes;
  out.max_attribute_value_bytes = row.max_attribute_value_bytes;
  out.convention = std::string(row.default_convention);
  for (const auto& [name, value] : config.headers) {
    if (name.empty() || has_line_break(name) || has_line_break(value)) continue;
    if (!std::all_of(name.begin(), name.end(), is_tchar)) continue;
    out.header_lines.push_back(name + ": " + value);
  }
  return out;
}

}  // namespace tracecast

namespace tracecast {
namespace {

std::string_view trim_blanks(std::string_view s) noexcept {
  constexpr std::string_view k_space = " \t\r\n";
  const auto b = s.find_first_not_of(k_space);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(k_space);
  return s.substr(b, e - b + 1);
}

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes (%XX) `in`; false on a '%' not followed by two hex digits.
bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hex_digit(in[i + 1]);
    const int lo = hex_digit(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

}  // namespace

std::string parse_otel_key_values(std::string_view var, std::string_view text, bool secret_values,
                                  std::vector<std::pair<std::string, std::string>>& out) {
  out.clear();
  std::size_t index = 0;
  while (!text.empty()) {
    const auto comma = text.find(',');
    const std::string_view entry = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    ++index;
    if (trim_blanks(entry).empty()) continue;
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) {
      return std::string(var) + ": entry " + std::to_string(index) + " has no '=' (expected key=value" +
             (secret_values ? "; the entry is not shown, it may hold a credential)" : ")");
    }
    std::string key, value;
    if (!percent_decode(trim_blanks(entry.substr(0, eq)), key))
      return std::string(var) + ": entry " + std::to_string(index) + ": invalid percent-encoding in the key";
    if (key.empty()) return std::string(var) + ": entry " + std::to_string(index) + " has an empty key";
    if (!percent_decode(trim_blanks(entry.substr(eq + 1)), value)) {
      // The key is shown only as far as it cannot hold a credential ("Authorization: Bearer x").
      const std::string shown = display_header_name(key);
      return std::string(var) + ": invalid percent-encoding in the value of " +
             (shown.empty() ? "entry " + std::to_string(index) : "'" + shown + "'") +
             " (use %XX; ',' and '=' must be written %2C and %3D)";
    }
    out.emplace_back(std::move(key), std::move(value));
  }
  return {};
}

bool has_line_break(std::string_view s) noexcept {
  return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

bool has_control_byte(std::string_view s) noexcept {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && u != '\t') || u == 0x7f;
  });
}

std::string display_url(std::string_view url) {
  std::string out(url.substr(0, url.find_first_of("?#")));
  const std::size_t scheme = out.find("://");
  const std::size_t start = scheme == std::string::npos ? 0 : scheme + 3;
  const std::size_t slash = out.find('/', start);
  const std::size_t at = out.rfind('@', slash == std::string::npos ? out.size() : slash);
  if (at != std::string::npos && at >= start) out.erase(start, at + 1 - start);
  return out;
}

std::string display_header_name(std::string_view name) {
  constexpr std::size_t k_max_prefix_bytes = 64;
  auto token = [](std::string_view t) { return !t.empty() && std::all_of(t.begin(), t.end(), is_tchar); };
  if (name.size() <= k_max_header_name_bytes && token(name)) return std::string(name);
  const std::size_t colon = name.find(':');
  if (colon == std::string_view::npos) return {};
  const std::string_view prefix = trim_blanks(name.substr(0, colon));
  if (prefix.size() > k_max_prefix_bytes || !token(prefix)) return {};
  return std::string(prefix) + ": ...";
}

std::string_view header_line_hint(std::string_view name) noexcept {
  if (name.find_first_of(": \t") == std::string_view::npos) return {};
  return "; it looks like 'Name: value': write the name and the value apart (Name=value)";
}

std::string_view url_before_query(std::string_view url) noexcept {
  return url.substr(0, std::min(url.find_first_of("?#"), url.size()));
}

std::string append_url_path(std::string_view url, std::string_view path) {
  std::string_view base = url_before_query(url);
  const std::string_view rest = url.substr(base.size());
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);  // "h/" + "/v1/traces": one slash
  std::string out;
  out.reserve(base.size() + path.size() + rest.size());
  out.append(base).append(path).append(rest);
  return out;
}

std::string parse_otlp_headers(std::string_view var, std::string_view text,
                               std::vector<std::pair<std::string, std::string>>& out) {
  if (std::string e = parse_otel_key_values(var, text, true, out); !e.empty()) return e;
  for (const auto& [key, value] : out) {
    if (has_line_break(value)) {
      const std::string shown = display_header_name(key);
      return std::string(var) + ": the value of header " + (shown.empty() ? std::string("entry") : "'" + shown + "'") +
             " contains CR, LF or NUL";
    }
  }
  return {};
}

}  // namespace tracecast
