// PipelineConfig::validate(), and loading a PipelineConfig from the standard OTEL_*
// environment variables and from a JSON config file (README "Configuration file").
//
// Not a hot path: this code allocates freely. What matters is the error text: it names the
// source (environment variable or file), the field (a dotted JSON path) and the problem, and
// it never contains a secret (API keys, header values, the text of a secret file).
#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include <simdjson.h>

#include "destination_routing.h"
#include "settings.h"
#include "tracecast/pipeline.h"
#include "tracecast/utf8.h"
#include "tracecast/presets.h"

namespace tracecast {
namespace {

// Header names compare without case (RFC 9110).
bool ascii_iequal(std::string_view a, std::string_view b) noexcept {
  auto low = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [&](char x, char y) { return low(x) == low(y); });
}

using std::chrono::milliseconds;

// OTEL_BSP_MAX_QUEUE_SIZE counts requests; the ring is sized in bytes: n requests of up to
// 4 KiB each (the former slot size), rounded up to a power of two within ring_bytes' range.
constexpr std::uint64_t k_queue_request_bytes = 4096;
constexpr std::uint64_t k_min_ring_bytes = 64u << 10;
constexpr std::uint64_t k_max_ring_bytes = 1u << 30;
constexpr std::uint64_t k_max_queue_size = k_max_ring_bytes / k_queue_request_bytes;
constexpr std::size_t k_max_config_file_bytes = 16u << 20;
constexpr std::size_t k_max_secret_file_bytes = 64u << 10;
constexpr std::size_t k_max_egress_entries = 256;  // EgressPolicy: allow_cidrs, allow_hosts
constexpr std::size_t k_max_json_headers = 64;  // headers_env: as many as DestinationConfig::headers' row
constexpr std::size_t k_max_preset_fields = 32;  // fields, fields_env, fields_file: as DestinationConfig::fields' row

std::string_view trim(std::string_view s) noexcept {
  constexpr std::string_view k_space = " \t\r\n";
  const auto b = s.find_first_not_of(k_space);
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(k_space);
  return s.substr(b, e - b + 1);
}

}  // namespace

namespace {

// ---- environment variables ---------------------------------------------------------------

// Whole non-negative decimal number (surrounding blanks allowed), at most 2^63.
bool parse_whole(std::string_view text, std::uint64_t& out) noexcept {
  text = trim(text);
  if (text.empty() || text.size() > 19) return false;
  std::uint64_t v = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size()) return false;
  out = v;
  return true;
}

// Digits only (surrounding blanks allowed): what parse_whole() refused was too large, not
// "not a number".
bool all_digits(std::string_view text) noexcept {
  text = trim(text);
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}


struct EnvReader {
  const char* (*getenv_fn)(const char*);
  // nullptr when unset or empty (the OTel spec treats an empty value as unset).
  [[nodiscard]] const char* get(const char* name) const {
    const char* v = getenv_fn(name);
    return v != nullptr && v[0] != '\0' ? v : nullptr;
  }
};

const char* std_getenv(const char* name) { return std::getenv(name); }

// Reads a whole number of milliseconds from `var` into `out` within [min, max].
std::string env_millis(const EnvReader& env, const char* var, std::uint64_t min, std::uint64_t max,
                       milliseconds& out, bool& set) {
  set = false;
  const char* v = env.get(var);
  if (v == nullptr) return {};
  std::uint64_t n = 0;
  if (!parse_whole(v, n)) {
    if (all_digits(v))
      return std::string(var) + ": out of range: must be " + std::to_string(min) + ".." + std::to_string(max) + " ms";
    return std::string(var) + ": not a whole number of milliseconds: '" + std::string(trim(v)) + "'";
  }
  if (n < min || n > max)
    return std::string(var) + ": must be " + std::to_string(min) + ".." + std::to_string(max) + " ms, got " +
           std::to_string(n);
  out = milliseconds(static_cast<milliseconds::rep>(n));
  set = true;
  return {};
}

std::string env_count(const EnvReader& env, const char* var, std::uint64_t min, std::uint64_t max,
                      std::uint64_t& out, bool& set) {
  set = false;
  const char* v = env.get(var);
  if (v == nullptr) return {};
  std::uint64_t n = 0;
  if (!parse_whole(v, n)) {
    if (all_digits(v)) return std::string(var) + ": out of range: must be " + std::to_string(min) + ".." + std::to_string(max);
    return std::string(var) + ": not a whole number: '" + std::string(trim(v)) + "'";
  }
  if (n < min || n > max)
    return std::string(var) + ": must be " + std::to_string(min) + ".." + std::to_string(max) + ", got " +
           std::to_string(n);
  out = n;
  set = true;
  return {};
}

// Reads the variable of a settings row (row.env) into the row's field of `object` (an object
// of the row's struct), checked against the row's own range with the variable's words:
// "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: must be 1..65536, got 70000". Cross-field bounds are
// validate()'s. Numbers and milliseconds are whole decimals, bools true/1 or false/0, text as
// given.
// `variable`, when given, is read instead of row.env (OTEL_EXPORTER_OTLP_TRACES_TIMEOUT for the
// row of OTEL_EXPORTER_OTLP_TIMEOUT).
std::string env_setting(const EnvReader& env, const Setting& row, void* object, bool& set,
                        std::string_view variable = {}) {
  set = false;
  const std::string var(variable.empty() ? row.env : variable);
  const char* v = env.get(var.c_str());
  if (v == nullptr) return {};
  const SettingRef ref = row.ref(object);
  if (auto* text = std::get_if<std::string*>(&ref)) {
    **text = v;
  } else if (auto* flag = std::get_if<bool*>(&ref)) {
    const std::string_view value = trim(v);
    if (value == "true" || value == "1") {
      **flag = true;
    } else if (value == "false" || value == "0") {
      **flag = false;
    } else {
      return var + ": must be true or false, got '" + std::string(value) + "'";
    }
  } else if (auto* ms = std::get_if<milliseconds*>(&ref)) {
    milliseconds out{};
    const auto lo = static_cast<std::uint64_t>(std::max<std::int64_t>(row.min, 0));
    if (std::string e = env_millis(env, var.c_str(), lo, static_cast<std::uint64_t>(row.max), out, set); !e.empty())
      return e;
    **ms = out;
  } else {
    std::uint64_t n = 0;
    const auto lo = static_cast<std::uint64_t>(std::max<std::int64_t>(row.min, 0));
    if (std::string e = env_count(env, var.c_str(), lo, static_cast<std::uint64_t>(row.max), n, set); !e.empty())
      return e;
    if (auto* u32 = std::get_if<std::uint32_t*>(&ref)) {
      **u32 = static_cast<std::uint32_t>(n);
    } else if (auto* u64 = std::get_if<std::uint64_t*>(&ref)) {
      **u64 = n;
    } else {
      return var + ": not read from the environment";  // no row has an int or double variable
    }
  }
  set = true;
  return {};
}

// The row whose variable is `var` in `rows`, or nullptr.
const Setting* row_of_variable(std::span<const Setting> rows, std::string_view var) noexcept {
  for (const Setting& row : rows) {
    if (row.env == var && row.ref != nullptr) return &row;
  }
  return nullptr;
}

// TRACECAST_EGRESS_ALLOW="10.0.0.0/8, otel.internal": addresses and CIDRs go to allow_cidrs,
// names to allow_hosts (parse_egress_allow(), as the tools' --egress-allow).
std::string egress_allow_from_env(const EnvReader& env, EgressPolicy& policy) {
  if (const char* v = env.get("TRACECAST_EGRESS_ALLOW")) {
    EgressPolicy parsed = policy;
    parsed.allow_cidrs.clear();
    parsed.allow_hosts.clear();
    if (std::string e = parse_egress_allow(v, parsed); !e.empty()) return "TRACECAST_EGRESS_ALLOW: " + e;
    policy = std::move(parsed);
  }
  return {};
}

// The OTel spec: OTEL_EXPORTER_OTLP_ENDPOINT is a base URL; the signal path "v1/traces" is
// appended relative to it ("http://h:4318" and "http://h:4318/" -> "http://h:4318/v1/traces",
// "http://h/p" -> "http://h/p/v1/traces"), before a query or fragment, which stays at the end
// ("http://h/?token=X" -> "http://h/v1/traces?token=X").
std::string append_traces_path(std::string_view base) { return append_url_path(trim(base), "/v1/traces"); }

// Picks OTEL_EXPORTER_OTLP_TRACES_<suffix> if set, else OTEL_EXPORTER_OTLP_<suffix>.
const char* pick_var(const EnvReader& env, const char* traces_var, const char* general_var) {
  if (env.get(traces_var) != nullptr) return traces_var;
  if (env.get(general_var) != nullptr) return general_var;
  return nullptr;
}

// The row of DestinationConfig's member `path` (destination_settings()).
const Setting& destination_row(std::string_view path) noexcept {
  for (const Setting& row : destination_settings()) {
    if (row.path == path) return row;
  }
  std::abort();  // a path this file names and the table lost: a bug, caught by every test
}

}  // namespace

const char* EnvDestination::variable_for(std::string_view field) const noexcept {
  if (field == "headers" && headers != nullptr) return headers;
  if (field == "compression" && compression != nullptr) return compression;
  if (field == "timeout" && timeout != nullptr) return timeout;
  if (field == "protocol" && protocol != nullptr) return protocol;
  if (field == "ca_file" && certificate != nullptr) return certificate;
  if ((field == "fields" || field.rfind("fields.", 0) == 0) && fields != nullptr) return fields;
  if (endpoint == nullptr && kind != nullptr) return kind;
  return endpoint != nullptr ? endpoint : "OTEL_EXPORTER_OTLP_ENDPOINT";
}

EnvDestination destination_from_env(const char* (*getenv_fn)(const char*)) {
  const EnvReader env{getenv_fn != nullptr ? getenv_fn : &std_getenv};
  EnvDestination out;
  DestinationConfig& dest = out.config;
  dest.kind = DestinationKind::otlp_http;
  dest.name = "otel-env";
  auto fail = [&out](std::string message) -> EnvDestination {
    out.error = std::move(message);
    return std::move(out);
  };
  if (const char* var = pick_var(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")) {
    out.protocol = var;
    dest.protocol = std::string(trim(env.get(var)));
    if (const std::string_view why = protocol_error(dest.protocol); !why.empty())
      return fail(std::string(var) + ": " + std::string(why) + ", got '" + dest.protocol + "'");
  }
  // A preset (tracecast/presets.h) and its fields: TRACECAST_DESTINATION_KIND=langfuse,
  // TRACECAST_DESTINATION_FIELDS="public_key=pk-lf-...,secret_key=sk-lf-...,region=us" (the
  // OTEL_EXPORTER_OTLP_HEADERS format; values never quoted in errors: they may be keys).
  if (const char* k = env.get("TRACECAST_DESTINATION_KIND")) {
    out.kind = "TRACECAST_DESTINATION_KIND";
    const std::string name(trim(k));
    const PresetInfo* row = find_preset(name);
    if (row == nullptr || row->name != name)
      return fail("TRACECAST_DESTINATION_KIND: must be one of " + preset_names() + ", got '" + name + "'");
    dest.kind = row->kind;
    dest.name = std::string(row->name);
  }
  if (const char* f = env.get("TRACECAST_DESTINATION_FIELDS")) {
    out.fields = "TRACECAST_DESTINATION_FIELDS";
    if (std::string e = parse_otel_key_values("TRACECAST_DESTINATION_FIELDS", f, true, dest.fields); !e.empty())
      return fail(std::move(e));
  }
  if (const char* t = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
    out.endpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
    dest.endpoint = std::string(trim(t));  // the spec: used as is
  } else if (const char* g = env.get("OTEL_EXPORTER_OTLP_ENDPOINT")) {
    out.endpoint = "OTEL_EXPORTER_OTLP_ENDPOINT";
    out.endpoint_base = std::string(trim(g));
    // A preset's base URL gets the preset's own path (resolve()), not "/v1/traces".
    dest.endpoint = preset_info(dest.kind).custom_rules ? append_traces_path(g) : out.endpoint_base;
  }
  if (const char* var = pick_var(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS")) {
    out.headers = var;
    if (std::string e = parse_otlp_headers(var, env.get(var), dest.headers); !e.empty()) return fail(std::move(e));
  }
  // Compression (any case), timeout and certificate: the rows' variables, ranges and choices.
  if (const char* var = pick_var(env, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION")) {
    out.compression = var;
    std::string value(trim(env.get(var)));
    std::transform(value.begin(), value.end(), value.begin(),
                   [](unsigned char ch) { return static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch); });
    const Setting& row = destination_row("compression");
    DestinationConfig probe;
    probe.compression = value;
    std::vector<ValidationIssue> issues;
    check_settings(std::span<const Setting>(&row, 1), &probe, issues);
    // Empty is the kind's default in a file, not a value a variable gives.
    if (!issues.empty() || value.empty()) {
      return fail(std::string(var) + ": must be one of " + std::string(row.choices) + ", got '" + value + "'");
    }
    dest.compression = value;
  }
  if (const char* var = pick_var(env, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")) {
    out.timeout = var;
    bool set = false;
    if (std::string e = env_setting(env, destination_row("timeout"), &dest, set, var); !e.empty())
      return fail(std::move(e));
  }
  if (const char* var = pick_var(env, "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE")) {
    out.certificate = var;
    dest.ca_file = std::string(trim(env.get(var)));
  }
  return out;
}

std::string egress_from_env(EgressPolicy& policy, const char* (*getenv_fn)(const char*)) {
  const EnvReader env{getenv_fn != nullptr ? getenv_fn : &std_getenv};
  if (std::string e = egress_allow_from_env(env, policy); !e.empty()) return e;
  // TRACECAST_EGRESS_ENFORCE: the row of sender.egress.enforce (sender_settings()).
  const Setting* enforce = row_of_variable(sender_settings(), "TRACECAST_EGRESS_ENFORCE");
  SenderConfig sender;
  sender.egress = policy;
  bool set = false;
  if (std::string e = env_setting(env, *enforce, &sender, set); !e.empty()) return e;
  if (set) policy.enforce = sender.egress.enforce;
  return {};
}

ConfigLoadResult config_from_env(PipelineConfig base, const char* (*getenv_fn)(const char*)) {
  ConfigLoadResult result;
  result.config = std::move(base);
  PipelineConfig& c = result.config;
  const EnvReader env{getenv_fn != nullptr ? getenv_fn : &std_getenv};
  auto fail = [&result](std::string message) -> ConfigLoadResult {
    result.error = std::move(message);
    result.destinations.clear();
    return std::move(result);
  };

  // Which variable set which config field (its member path), to name it when validate() objects.
  std::vector<std::pair<std::string, std::string_view>> set_by;

  // Resource: OTEL_RESOURCE_ATTRIBUTES first, OTEL_SERVICE_NAME over it.
  if (const char* v = env.get("OTEL_RESOURCE_ATTRIBUTES")) {
    std::vector<std::pair<std::string, std::string>> attrs;
    if (std::string e = parse_otel_key_values("OTEL_RESOURCE_ATTRIBUTES", v, false, attrs); !e.empty())
      return fail(std::move(e));
    for (auto& [key, value] : attrs) {
      if (key == "service.name") {
        if (value.empty()) return fail("OTEL_RESOURCE_ATTRIBUTES: service.name must not be empty");
        c.mapping.service_name = std::move(value);
        set_by.emplace_back("mapping.service_name", "OTEL_RESOURCE_ATTRIBUTES");
        continue;
      }
      if (key == "service.version") {
        c.mapping.service_version = std::move(value);
        continue;
      }
      auto& extra = c.mapping.extra_resource_attributes;
      const std::string& name = key;  // clang 14 cannot capture a structured binding
      // At most k_max_extra_resource entries are ever searched: linear in the variable.
      auto it = std::find_if(extra.begin(), extra.end(), [&name](const auto& kv) { return kv.first == name; });
      if (it != extra.end()) {
        it->second = std::move(value);
      } else if (extra.size() >= MappingConfig::k_max_extra_resource) {
        return fail("OTEL_RESOURCE_ATTRIBUTES: at most " + std::to_string(MappingConfig::k_max_extra_resource) +
                    " attributes besides service.name and service.version, got more");
      } else {
        extra.emplace_back(std::move(key), std::move(value));
      }
    }
    set_by.emplace_back("mapping.extra_resource_attributes", "OTEL_RESOURCE_ATTRIBUTES");
  }

  // OTEL_BSP_MAX_QUEUE_SIZE counts requests: it sets ingest.ring_bytes through a conversion.
  std::uint64_t n = 0;
  bool set = false;
  if (std::string e = env_count(env, "OTEL_BSP_MAX_QUEUE_SIZE", 1, k_max_queue_size, n, set); !e.empty())
    return fail(std::move(e));
  if (set) {
    // Round up (never down, so at least the asked-for number of 4 KiB requests can wait;
    // smaller requests take less, so more of them fit).
    std::uint64_t bytes = k_min_ring_bytes;
    while (bytes < n * k_queue_request_bytes) bytes <<= 1;
    c.ingest.ring_bytes = static_cast<std::uint32_t>(bytes);
    set_by.emplace_back("ingest.ring_bytes", "OTEL_BSP_MAX_QUEUE_SIZE");
  }

  // Every variable a settings row names (OTEL_SERVICE_NAME, OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
  // OTEL_BSP_SCHEDULE_DELAY, TRACECAST_EGRESS_ENFORCE, ...), in README's order.
  for (const FlatSetting& flat : flat_settings()) {
    if (flat.row->env.empty() || flat.row->ref == nullptr) continue;
    if (std::string e = env_setting(env, *flat.row, flat.section->object(c), set); !e.empty())
      return fail(std::move(e));
    if (set) set_by.emplace_back(flat.path, flat.row->env);
  }
  // The SDK's schedule delay is the longest a span waits for its export: our max_linger (a
  // busy destination still seals sooner, by size or after batch.linger).
  if (env.get("OTEL_BSP_SCHEDULE_DELAY") != nullptr) c.batch.linger = std::min(c.batch.linger, c.batch.max_linger);

  // Egress allow-list (not an OTel variable; TRACECAST_EGRESS_ENFORCE is a row above).
  if (std::string e = egress_allow_from_env(env, c.sender.egress); !e.empty()) return fail(std::move(e));

  // Exporter: OTLP/HTTP, JSON (the default here: what the reference product sends) or protobuf.
  // The other exporter variables are checked even without an endpoint (a typo should not
  // wait until someone sets one), but only a set endpoint yields a destination.
  EnvDestination vars = destination_from_env(env.getenv_fn);
  if (!vars.ok()) return fail(std::move(vars.error));
  DestinationConfig& dest = vars.config;
  // An endpoint, or a preset with hosted regions, yields a destination.
  if (vars.endpoint != nullptr || (vars.kind != nullptr && !preset_info(dest.kind).custom_rules)) {
    apply_preset_defaults(dest);
    for (const ValidationIssue& issue : validate(dest)) {
      if (!issue.warning) return fail(std::string(vars.variable_for(issue.path)) + ": " + issue.message);
    }
    PipelineDestination pd;
    pd.transport = std::move(dest);
    result.destinations.emplace_back(std::string(), std::move(pd));
  }

  const std::vector<ValidationIssue> issues = validate(c);
  if (const ValidationIssue* e = first_error(issues)) {
    std::string message = e->path;
    message.append(": ").append(e->message);
    for (auto it = set_by.rbegin(); it != set_by.rend(); ++it) {  // the last variable that set it
      if (it->first == e->path) return fail(std::string(it->second).append(": ").append(message));
    }
    return fail(std::move(message));
  }
  return result;
}

namespace {

// ---- JSON config file ----------------------------------------------------------------------

using simdjson::dom::element;
using simdjson::dom::element_type;

std::string_view type_name(element_type t) noexcept {
  switch (t) {
    case element_type::ARRAY: return "array";
    case element_type::OBJECT: return "object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE: return "number";
    case element_type::STRING: return "string";
    case element_type::BOOL: return "boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "value";
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// "unknown field" plus a suggestion: a known key within edit distance 2, or one that starts
// with the unknown key ("linger" -> "linger_ms").
std::string unknown_field_message(std::string_view key, std::span<const std::string_view> known) {
  std::string_view best;
  std::size_t best_distance = 3;
  for (const std::string_view k : known) {
    const std::size_t d = edit_distance(key, k);
    if (d < best_distance) {
      best_distance = d;
      best = k;
    }
  }
  if (best.empty() && key.size() >= 3) {
    for (const std::string_view k : known) {
      if (k.starts_with(key) || key.starts_with(k)) {
        best = k;
        break;
      }
    }
  }
  std::string out = "unknown field";
  if (!best.empty()) out += " (did you mean " + std::string(best) + "?)";
  return out;
}

// The JSON key of a validate() issue's field (a member path): the settings row's key, with
// what follows the row's path kept ("sender.egress.allow_cidrs[2]"). A lookup in the rows,
// never a reading of the message.
std::string json_path_of(const std::string& field) {
  for (const FlatSetting& f : flat_settings()) {
    if (f.json.empty() || !field.starts_with(f.path)) continue;
    if (field.size() == f.path.size()) return f.json;
    const char next = field[f.path.size()];
    if (next == '[' || next == '.') return f.json + field.substr(f.path.size());
  }
  return field;
}

// Reads a small file into `out`; "" or the reason it could not.
std::string read_file(const std::filesystem::path& path, std::size_t max_bytes, std::string& out) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return ec.message();
  if (size > max_bytes) return "larger than " + std::to_string(max_bytes) + " bytes";
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::error_code(errno, std::generic_category()).message();
  out.resize(static_cast<std::size_t>(size));
  if (size > 0 && !in.read(out.data(), static_cast<std::streamsize>(size))) return "read failed";
  return {};
}

// "line L, byte B (offset O)" of byte `offset` of `text` (lines and bytes from 1, the offset
// from 0), for the errors that say where the file went wrong.
std::string position_text(std::string_view text, std::size_t offset) {
  std::size_t line = 1;
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return "line " + std::to_string(line) + ", byte " + std::to_string(offset - line_start + 1) + " (offset " +
         std::to_string(offset) + ")";
}

// simdjson's DOM parser reports no position. Its On-Demand parser, walking the same text
// value by value (a bounded config file: microseconds), stops at the first value it cannot
// take and says where; `path` is the field being read then ("batch.max_spans",
// "destinations[2]"). False when the walk fails.
bool walk_json(simdjson::ondemand::value v, std::string& path) {
  simdjson::ondemand::json_type type{};
  if (v.type().get(type) != simdjson::SUCCESS) return false;
  switch (type) {
    case simdjson::ondemand::json_type::object: {
      simdjson::ondemand::object object;
      if (v.get_object().get(object) != simdjson::SUCCESS) return false;
      const std::size_t at = path.size();
      for (auto field : object) {
        path.resize(at);  // a malformed next field is reported in the object
        std::string_view key;
        if (field.unescaped_key().get(key) != simdjson::SUCCESS) return false;
        if (at != 0) path += '.';
        // Printable ASCII names as written; any other is not echoed (a control byte, a
        // megabyte-long key): "?".
        const bool printable = key.size() <= 64 && std::all_of(key.begin(), key.end(), [](char c) {
                                 return c >= 0x20 && c <= 0x7e;
                               });
        path += printable && !key.empty() ? key : std::string_view("?");
        simdjson::ondemand::value inner;
        if (field.value().get(inner) != simdjson::SUCCESS || !walk_json(inner, path)) return false;
      }
      path.resize(at);
      return true;
    }
    case simdjson::ondemand::json_type::array: {
      simdjson::ondemand::array array;
      if (v.get_array().get(array) != simdjson::SUCCESS) return false;
      const std::size_t at = path.size();
      std::size_t index = 0;
      for (auto element : array) {
        path.resize(at);
        path += '[' + std::to_string(index++) + ']';
        simdjson::ondemand::value inner;
        if (element.get(inner) != simdjson::SUCCESS || !walk_json(inner, path)) return false;
      }
      path.resize(at);
      return true;
    }
    case simdjson::ondemand::json_type::number: {
      simdjson::ondemand::number n;
      return v.get_number().get(n) == simdjson::SUCCESS;
    }
    case simdjson::ondemand::json_type::string: {
      std::string_view text;
      return v.get_string().get(text) == simdjson::SUCCESS;
    }
    case simdjson::ondemand::json_type::boolean: {
      bool b = false;
      return v.get_bool().get(b) == simdjson::SUCCESS;
    }
    case simdjson::ondemand::json_type::null: {
      bool null = false;
      return v.is_null().get(null) == simdjson::SUCCESS && null;
    }
  }
  return false;
}

// " at line L, byte B (offset O)[, in FIELD]" where the On-Demand walk stopped (or where content
// follows the root value), or "" when it cannot say (its position is past the end).
std::string json_error_location(std::string_view json) {
  const simdjson::padded_string padded(json);
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  if (parser.iterate(padded).get(doc) != simdjson::SUCCESS) return {};
  std::string path;
  simdjson::ondemand::value root;
  const bool ok = doc.get_value().get(root) == simdjson::SUCCESS && walk_json(root, path);
  // After a whole root value, a location still inside the text is content after it.
  const char* where = nullptr;
  if (doc.current_location().get(where) != simdjson::SUCCESS || where == nullptr) return {};
  if (ok) path.clear();
  const std::size_t offset = static_cast<std::size_t>(where - padded.data());
  if (offset >= json.size()) return {};
  std::string out = " at " + position_text(json, offset);
  if (!path.empty()) out += ", in " + path;
  return out;
}

// What is wrong with a file simdjson refused, specific where it can be: the line and byte
// of the first byte that is not UTF-8; a number that no 64-bit integer or double holds; for
// the rest, where the text stopped being JSON (json_error_location()).
std::string parse_error_message(std::string_view json, simdjson::error_code err) {
  if (err == simdjson::UTF8_ERROR) {
    const auto* in = reinterpret_cast<const unsigned char*>(json.data());
    for (std::size_t i = 0; i < json.size();) {
      if (in[i] < 0x80) {
        ++i;
        continue;
      }
      std::size_t bad = 0;
      const std::size_t len = utf8_sequence(in + i, json.size() - i, bad);
      if (len == 0) {
        return "not UTF-8: " + position_text(json, i) + " is not part of a valid UTF-8 sequence; JSON text is UTF-8";
      }
      i += len;
    }
  }
  const std::string where = json_error_location(json);
  if (err == simdjson::NUMBER_ERROR) {
    return "invalid JSON" + where +
           ": a number that is malformed or out of range (an integer beyond 64 bits, or a "
           "value beyond a double); every count and size here fits 64 bits";
  }
  return "invalid JSON" + where + ": " + std::string(simdjson::error_message(err));
}

class JsonLoader {
 public:
  JsonLoader(std::string_view source, std::filesystem::path base_dir)
      : source_(source), base_dir_(std::move(base_dir)) {}

  ConfigLoadResult load(std::string_view json) {
    simdjson::dom::parser parser;
    element root;
    if (const auto err = parser.parse(json.data(), json.size()).get(root); err != simdjson::SUCCESS) {
      fail("", parse_error_message(json, err));
      return finish();
    }
    if (read_settings(root, "")) {
      // linger_ms alone above the default max_linger (5 s) raises max_linger with it, rather
      // than failing on a field the file never set (tracecast-load's --linger-ms does the same).
      BatchConfig& b = result_.config.batch;
      if (given("batch.linger") && !given("batch.max_linger") && b.max_linger < b.linger) b.max_linger = b.linger;
      const std::vector<ValidationIssue> issues = validate(result_.config);
      if (const ValidationIssue* e = first_error(issues)) fail(json_path_of(e->path), e->message);
      // After the whole file: the limit may be set after the destinations.
      for (std::size_t i = 0; i < result_.destinations.size(); ++i) {
        const std::string why = detail::account_error(result_.destinations[i].first, result_.config);
        if (!why.empty()) fail("destinations[" + std::to_string(i) + "].account", why);
      }
    }
    return finish();
  }

 private:
  using Keys = std::span<const std::string_view>;

  ConfigLoadResult finish() {
    if (!result_.error.empty()) {
      result_.destinations.clear();
      result_.config = PipelineConfig{};
    }
    return std::move(result_);
  }

  bool fail(std::string_view path, std::string message) {
    if (result_.error.empty()) {
      result_.error = std::string(source_) + ": ";
      if (!path.empty()) result_.error += std::string(path) + ": ";
      result_.error += message;
    }
    return false;
  }

  static std::string join(std::string_view path, std::string_view key) {
    return path.empty() ? std::string(key) : std::string(path) + "." + std::string(key);
  }

  // The path of a user-named key (a header name, a field or attribute name): only as much of
  // the key as cannot be a credential ("headers.Authorization: ..." for a key written
  // "Authorization: Bearer <token>"; "headers[#2]" when nothing of it can be shown).
  static std::string join_named(std::string_view path, std::string_view key, std::size_t index) {
    const std::string shown = display_header_name(key);
    if (shown.empty()) return std::string(path) + "[#" + std::to_string(index + 1) + "]";
    return join(path, shown);
  }

  // Calls on_field(key, value, path_of_key) for each member of the object at `path`; unknown
  // and duplicate keys are errors. Stops at the first failure.
  template <class F>
  bool for_each_field(element value, std::string_view path, Keys known, F&& on_field) {
    simdjson::dom::object obj;
    if (value.get_object().get(obj) != simdjson::SUCCESS)
      return fail(path, "expected an object, got " + std::string(type_name(value.type())));
    std::vector<std::string_view> seen;
    for (const auto field : obj) {
      const std::string sub = join(path, field.key);
      if (std::find(known.begin(), known.end(), field.key) == known.end())
        return fail(sub, unknown_field_message(field.key, known));
      if (std::find(seen.begin(), seen.end(), field.key) != seen.end()) return fail(sub, "duplicate field");
      seen.push_back(field.key);
      if (!on_field(field.key, field.value, sub)) return false;
    }
    return true;
  }

  bool get_uint(element v, std::string_view path, std::uint64_t max, std::uint64_t& out) {
    switch (v.type()) {
      case element_type::INT64: {
        const std::int64_t i = v.get_int64().value_unsafe();
        if (i < 0) return fail(path, "expected an unsigned integer, got " + std::to_string(i));
        out = static_cast<std::uint64_t>(i);
        break;
      }
      case element_type::UINT64: out = v.get_uint64().value_unsafe(); break;
      case element_type::DOUBLE:
        // Not the value: 512.0 would print as "512", which looks right. The rule is the cause.
        return fail(path, "must be a whole number written without a fraction or exponent (512, not 512.0 or 5e2)");
      default: return fail(path, "expected an unsigned integer, got " + std::string(type_name(v.type())));
    }
    if (out > max) return fail(path, "must be at most " + std::to_string(max) + ", got " + std::to_string(out));
    return true;
  }

  template <class T>
  bool read_uint(element v, std::string_view path, T& out) {
    std::uint64_t n = 0;
    if (!get_uint(v, path, std::numeric_limits<T>::max(), n)) return false;
    out = static_cast<T>(n);
    return true;
  }

  bool read_int(element v, std::string_view path, int& out) {
    if (v.type() == element_type::INT64) {
      const std::int64_t i = v.get_int64().value_unsafe();
      if (i < std::numeric_limits<int>::min() || i > std::numeric_limits<int>::max())
        return fail(path, "out of range, got " + std::to_string(i));
      out = static_cast<int>(i);
      return true;
    }
    if (v.type() == element_type::UINT64) return fail(path, "out of range, got " + std::to_string(v.get_uint64().value_unsafe()));
    if (v.type() == element_type::DOUBLE)
      return fail(path, "must be a whole number written without a fraction or exponent (3, not 3.0 or 3e0)");
    return fail(path, "expected an integer, got " + std::string(type_name(v.type())));
  }

  bool read_millis(element v, std::string_view path, milliseconds& out) {
    std::uint64_t n = 0;
    if (!get_uint(v, path, std::numeric_limits<std::uint64_t>::max(), n)) return false;
    // Saturated (every field's range is far below 2^53 ms): validate() then names the
    // field's own range, not the integer type's.
    n = std::min(n, std::uint64_t{1} << 53);
    out = milliseconds(static_cast<milliseconds::rep>(n));
    return true;
  }

  bool read_double(element v, std::string_view path, double& out) {
    switch (v.type()) {
      case element_type::INT64: out = static_cast<double>(v.get_int64().value_unsafe()); return true;
      case element_type::UINT64: out = static_cast<double>(v.get_uint64().value_unsafe()); return true;
      case element_type::DOUBLE: out = v.get_double().value_unsafe(); return true;
      default: return fail(path, "expected a number, got " + std::string(type_name(v.type())));
    }
  }

  bool read_bool(element v, std::string_view path, bool& out) {
    if (v.type() != element_type::BOOL)
      return fail(path, "expected true or false, got " + std::string(type_name(v.type())));
    out = v.get_bool().value_unsafe();
    return true;
  }

  // String values are never quoted in errors (any of them may be a secret): a type error
  // names the type only.
  bool read_string(element v, std::string_view path, std::string& out) {
    if (v.type() != element_type::STRING)
      return fail(path, "expected a string, got " + std::string(type_name(v.type())));
    out = std::string(v.get_string().value_unsafe());
    return true;
  }

  // At most `max_items` members, counted before any is read, so the duplicate check below
  // (quadratic in the members) stays small: 100,000 resource attributes fail at once.
  bool read_string_map(element v, std::string_view path, std::vector<std::pair<std::string, std::string>>& out,
                       std::size_t max_items) {
    simdjson::dom::object obj;
    if (v.get_object().get(obj) != simdjson::SUCCESS)
      return fail(path, "expected an object of strings, got " + std::string(type_name(v.type())));
    if (obj.size() > max_items)
      return fail(path, "at most " + std::to_string(max_items) + " entries, got " + std::to_string(obj.size()));
    out.clear();
    for (const auto field : obj) {
      const std::string sub = join_named(path, field.key, out.size());
      if (field.key.empty()) return fail(path, "empty key");
      for (const auto& kv : out) {
        if (kv.first == field.key) return fail(sub, "duplicate field");
      }
      std::string value;
      if (!read_string(field.value, sub, value)) return false;
      out.emplace_back(std::string(field.key), std::move(value));
    }
    return true;
  }

  std::filesystem::path resolve_path(std::string_view p) const {
    std::filesystem::path path{std::string(p)};
    if (path.is_relative() && !base_dir_.empty()) path = base_dir_ / path;
    return path;
  }

  // A secret's value from the environment: error names the variable, never a value.
  bool secret_from_env(element v, std::string_view path, std::string& out) {
    std::string var;
    if (!read_string(v, path, var)) return false;
    if (var.empty()) return fail(path, "empty environment variable name");
    const char* value = std::getenv(var.c_str());
    if (value == nullptr || value[0] == '\0') return fail(path, "environment variable " + var + " is not set or empty");
    out = value;
    return true;
  }

  bool secret_from_file(element v, std::string_view path, std::string& out) {
    std::string file;
    if (!read_string(v, path, file)) return false;
    if (file.empty()) return fail(path, "empty file name");
    const std::filesystem::path resolved = resolve_path(file);
    std::string text;
    if (std::string e = read_file(resolved, k_max_secret_file_bytes, text); !e.empty())
      return fail(path, "cannot read " + resolved.string() + ": " + e);
    // Secret files commonly end in a newline; leading/trailing blanks are never part of a key.
    out = std::string(trim(text));
    if (out.empty()) return fail(path, resolved.string() + " is empty");
    return true;
  }

  bool given(std::string_view path) const {
    return std::find(given_.begin(), given_.end(), path) != given_.end();
  }

  // The object at JSON key `prefix` ("" for the root, "sender.retry." for a nested one): its
  // keys are the next part of the settings rows' keys under it (flat_settings()), plus
  // "destinations" at the root.
  bool read_settings(element v, const std::string& prefix) {
    const std::vector<FlatSetting>& flat = flat_settings();
    std::vector<std::string_view> known;
    for (const FlatSetting& f : flat) {
      if (f.json.empty() || !f.json.starts_with(prefix)) continue;
      std::string_view next = std::string_view(f.json).substr(prefix.size());
      next = next.substr(0, next.find('.'));
      if (std::find(known.begin(), known.end(), next) == known.end()) known.push_back(next);
    }
    if (prefix.empty()) known.push_back("destinations");
    const std::string_view path = std::string_view(prefix).substr(0, prefix.empty() ? 0 : prefix.size() - 1);
    return for_each_field(v, path, known, [&](std::string_view key, element f, const std::string& sub) {
      if (prefix.empty() && key == "destinations") return read_destinations(f, sub);
      for (const FlatSetting& row : flat) {
        if (row.json == sub) return read_setting(row, f, sub);
      }
      return read_settings(f, sub + ".");
    });
  }

  // One row's value, by the type of its field; a row without a field (a list, a map) by its
  // own code.
  bool read_setting(const FlatSetting& flat, element v, const std::string& path) {
    given_.push_back(flat.path);
    PipelineConfig& c = result_.config;
    if (flat.row->ref == nullptr) {
      if (flat.path == "mapping.extra_resource_attributes") {
        auto& attrs = c.mapping.extra_resource_attributes;
        if (!read_string_map(v, path, attrs, MappingConfig::k_max_extra_resource)) return false;
        for (const auto& kv : attrs) {
          if (kv.first == "service.name" || kv.first == "service.version")
            return fail(join(path, kv.first), "set service.name and service.version with service.name / service.version");
        }
        return true;
      }
      if (flat.path == "sender.egress.allow_cidrs") return read_string_list(v, path, k_max_egress_entries, c.sender.egress.allow_cidrs);
      if (flat.path == "sender.egress.allow_hosts") return read_string_list(v, path, k_max_egress_entries, c.sender.egress.allow_hosts);
      return fail(path, "not read from a file");
    }
    return read_value(*flat.row, flat.row->ref(flat.section->object(c)), v, path);
  }

  // A value into the field of a row, by the field's type: numbers, bools, milliseconds, text
  // (a file path relative to the config file), a list of strings, an object of strings (at
  // most the row's max entries, counted before any is read).
  bool read_value(const Setting& row, const SettingRef& ref, element v, std::string_view path) {
    if (auto* p = std::get_if<std::uint32_t*>(&ref)) return read_uint(v, path, **p);
    if (auto* p = std::get_if<std::uint64_t*>(&ref)) return read_uint(v, path, **p);
    if (auto* p = std::get_if<int*>(&ref)) return read_int(v, path, **p);
    if (auto* p = std::get_if<double*>(&ref)) return read_double(v, path, **p);
    if (auto* p = std::get_if<bool*>(&ref)) return read_bool(v, path, **p);
    if (auto* p = std::get_if<milliseconds*>(&ref)) return read_millis(v, path, **p);
    const auto max_items = static_cast<std::size_t>(row.max);
    if (auto* p = std::get_if<std::vector<std::string>*>(&ref)) return read_string_list(v, path, max_items, **p);
    if (auto* p = std::get_if<SettingPairs*>(&ref)) return read_string_map(v, path, **p, max_items);
    std::string& text = *std::get<std::string*>(ref);
    if (!read_string(v, path, text)) return false;
    if (row.file_path && !text.empty()) text = resolve_path(text).string();
    return true;
  }

  // An array of at most `max_items` strings (checked before reading any: linear).
  bool read_string_list(element v, std::string_view path, std::size_t max_items, std::vector<std::string>& out) {
    simdjson::dom::array arr;
    if (v.get_array().get(arr) != simdjson::SUCCESS)
      return fail(path, "expected an array of strings, got " + std::string(type_name(v.type())));
    if (arr.size() > max_items)
      return fail(path, "at most " + std::to_string(max_items) + " entries, got " + std::to_string(arr.size()));
    out.clear();
    std::size_t i = 0;
    for (const element item : arr) {
      std::string text;
      if (!read_string(item, std::string(path) + "[" + std::to_string(i) + "]", text)) return false;
      out.push_back(std::move(text));
      ++i;
    }
    return true;
  }

  // "conventions": ["openrouter", "openinference"]: a non-empty array of convention names
  // (tracecast/conventions.h); an unknown name is named with the list of known ones.
  bool read_conventions(element v, const std::string& path, ConventionSet& out) {
    std::vector<std::string> names;
    if (!read_string_list(v, path, 16, names)) return false;
    if (names.empty()) return fail(path, "must name at least one of " + convention_names());
    ConventionSet set;
    for (std::size_t i = 0; i < names.size(); ++i) {
      const std::optional<Convention> c = parse_convention(names[i]);
      if (!c) return fail(path + "[" + std::to_string(i) + "]", "unknown convention '" + names[i] + "': expected one of " + convention_names());
      set.insert(*c);
    }
    out = set;
    return true;
  }
  static std::string convention_names() {
    std::string out;
    for (const ConventionInfo& c : conventions()) out.append(out.empty() ? "" : ", ").append(c.name);
    return out;
  }

  bool read_destinations(element v, std::string_view path) {
    simdjson::dom::array arr;
    if (v.get_array().get(arr) != simdjson::SUCCESS)
      return fail(path, "expected an array, got " + std::string(type_name(v.type())));
    std::size_t i = 0;
    for (const element d : arr) {
      if (!read_destination(d, std::string(path) + "[" + std::to_string(i) + "]")) return false;
      ++i;
    }
    return true;
  }

  bool read_kind(element v, std::string_view path, DestinationKind& out) {
    std::string kind;
    if (!read_string(v, path, kind)) return false;
    // The preset catalog (tracecast/presets.h) is the one list of kinds.
    const PresetInfo* row = find_preset(kind);
    if (row == nullptr || row->name != kind) return fail(path, "must be one of " + preset_names() + ", got '" + kind + "'");
    out = row->kind;
    return true;
  }

  // One destinations entry. Its keys are the rows of destination_sections(): a row with a
  // field is read by read_value(); the file's own keys (account, the sources of secrets), the
  // kind, a numeric instance_id and the conventions by the code below.
  bool read_destination(element v, const std::string& path) {
    const std::vector<FlatDestinationSetting>& rows = flat_destination_settings();
    std::vector<std::string_view> keys;
    for (const FlatDestinationSetting& row : rows) keys.push_back(row.json);
    std::string account;
    bool account_given = false;
    PipelineDestination pd;
    DestinationConfig& d = pd.transport;
    std::string_view api_key_source;  // which of api_key / api_key_env / api_key_file set it
    std::vector<std::pair<std::string, std::string>> env_headers;
    // Preset fields: "fields" {name: value}, "fields_env" {name: VARIABLE}, "fields_file"
    // {name: path} (secrets kept out of the file); which key gave each, for error paths.
    std::vector<std::pair<std::string, std::string>> field_source;
    const bool ok = for_each_field(v, path, keys, [&](std::string_view key, element f, const std::string& sub) {
      if (key == "fields" || key == "fields_env" || key == "fields_file") {
        std::vector<std::pair<std::string, std::string>> given;
        if (!read_string_map(f, sub, given, k_max_preset_fields)) return false;
        for (std::size_t index = 0; index < given.size(); ++index) {
          auto& [name, text] = given[index];
          const std::string named = join_named(sub, name, index);
          for (const auto& seen : field_source) {
            if (seen.first == name) return fail(named, "field given in " + seen.second + " too");
          }
          std::string value = std::move(text);
          if (key == "fields_env") {
            const char* e = value.empty() ? nullptr : std::getenv(value.c_str());
            if (e == nullptr || e[0] == '\0')
              return fail(named, "environment variable " + (value.empty() ? "''" : value) + " is not set or empty");
            value = e;
          } else if (key == "fields_file") {
            if (value.empty()) return fail(named, "empty file name");
            const std::filesystem::path resolved = resolve_path(value);
            std::string file_text;
            if (std::string e = read_file(resolved, k_max_secret_file_bytes, file_text); !e.empty())
              return fail(named, "cannot read " + resolved.string() + ": " + e);
            value = std::string(trim(file_text));
            if (value.empty()) return fail(named, resolved.string() + " is empty");
          }
          field_source.emplace_back(name, std::string(key));
          d.fields.emplace_back(std::move(name), std::move(value));
        }
        return true;
      }
      if (key == "account") {
        account_given = true;
        return read_string(f, sub, account);
      }
      if (key == "api_key_ids" && f.type() == element_type::ARRAY) {
        simdjson::dom::array ids;
        if (f.get_array().get(ids) == simdjson::SUCCESS && ids.size() == 0)
          return fail(sub, "empty list: leave api_key_ids out for every key");
      }
      if (key == "kind") return read_kind(f, sub, d.kind);
      if (key == "instance_id" && (f.type() == element_type::INT64 || f.type() == element_type::UINT64)) {
        // A stack id is a number; written as a JSON number it is taken as its decimal text.
        std::uint64_t n = 0;
        if (!get_uint(f, sub, std::numeric_limits<std::uint64_t>::max(), n)) return false;
        d.instance_id = std::to_string(n);
        return true;
      }
      if (key == "api_key" || key == "api_key_env" || key == "api_key_file") {
        if (!api_key_source.empty())
          return fail(sub, "give only one of api_key, api_key_env and api_key_file (" + std::string(api_key_source) +
                               " is set too)");
        api_key_source = key;
        if (key == "api_key") return read_string(f, sub, d.api_key);
        if (key == "api_key_env") return secret_from_env(f, sub, d.api_key);
        return secret_from_file(f, sub, d.api_key);
      }
      if (key == "headers_env") {
        std::vector<std::pair<std::string, std::string>> names;
        if (!read_string_map(f, sub, names, k_max_json_headers)) return false;
        for (std::size_t index = 0; index < names.size(); ++index) {
          auto& [header, var] = names[index];
          std::string value;
          const char* e = var.empty() ? nullptr : std::getenv(var.c_str());
          if (e == nullptr || e[0] == '\0')
            return fail(join_named(sub, header, index), "environment variable " + (var.empty() ? "''" : var) + " is not set or empty");
          value = e;
          env_headers.emplace_back(header, std::move(value));
        }
        return true;
      }
      if (key == "conventions") return read_conventions(f, sub, pd.conventions);
      for (const FlatDestinationSetting& row : rows) {
        if (row.json == key && row.row->ref != nullptr && row.section->object != nullptr)
          return read_value(*row.row, row.row->ref(row.section->object(pd)), f, sub);
      }
      return fail(sub, "not read from a file");  // a row without a field and without code here
    });
    if (!ok) return false;
    for (std::size_t index = 0; index < env_headers.size(); ++index) {
      auto& [header, value] = env_headers[index];
      for (const auto& kv : d.headers) {
        if (ascii_iequal(kv.first, header))
          return fail(join_named(path + ".headers_env", header, index), "header set in headers too (names ignore case)");
      }
      d.headers.emplace_back(std::move(header), std::move(value));
    }
    apply_preset_defaults(d);  // the preset's protocol (e.g. http/protobuf for Phoenix) and compression
    // An issue's field is a member path relative to its struct; the key is its row's (what
    // follows the row's path kept: "api_key_ids[1]"), a secret's the key that gave it.
    for (const ValidationIssue& issue : validate(d)) {
      if (issue.warning) continue;
      std::string field = destination_json_path("transport." + issue.path);
      if (field == "api_key" && !api_key_source.empty()) field = std::string(api_key_source);
      if (field.rfind("fields.", 0) == 0) {
        const std::string name = field.substr(7);
        for (const auto& [given, source] : field_source) {
          if (given == name) field = source + "." + name;
        }
        // A preset's "api_key" field given by api_key / api_key_env / api_key_file.
        if (name == "api_key" && !api_key_source.empty() && field == "fields.api_key") field = std::string(api_key_source);
      }
      return fail(path + "." + field, issue.message);
    }
    for (const ValidationIssue& issue : pd.validate()) return fail(path + "." + destination_json_path(issue.path), issue.message);
    // A forgotten key must not route every tenant's spans here: "every account" is written.
    if (!account_given) {
      const std::string label = d.name.empty() ? std::string() : " (" + d.name + ")";
      return fail(path + ".account", "missing account" + label +
                                         ": give the account whose requests it takes, or write \"account\": \"\" "
                                         "for every account");
    }
    result_.destinations.emplace_back(std::move(account), std::move(pd));
    return true;
  }

  // The key in a destinations entry of a member path ("transport.timeout" -> "timeout_ms"),
  // what follows the row's path kept; the path without "transport." when no row has it.
  static std::string destination_json_path(const std::string& field) {
    for (const FlatDestinationSetting& f : flat_destination_settings()) {
      if (f.section->object == nullptr || !field.starts_with(f.path)) continue;
      if (field.size() == f.path.size()) return std::string(f.json);
      const char next = field[f.path.size()];
      if (next == '[' || next == '.') return std::string(f.json) + field.substr(f.path.size());
    }
    return field.rfind("transport.", 0) == 0 ? field.substr(10) : field;
  }

  std::string_view source_;
  std::filesystem::path base_dir_;
  ConfigLoadResult result_;
  std::vector<std::string_view> given_;  // member paths of the rows the file set
};

}  // namespace

ConfigLoadResult config_from_json(std::string_view json, std::string_view source) {
  return JsonLoader(source, {}).load(json);
}

ConfigLoadResult config_from_json_file(const std::string& path) {
  std::string text;
  if (std::string e = read_file(path, k_max_config_file_bytes, text); !e.empty()) {
    ConfigLoadResult result;
    result.error = path + ": cannot read: " + e;
    return result;
  }
  return JsonLoader(path, std::filesystem::path(path).parent_path()).load(text);
}

}  // namespace tracecast
