#include "otlp_reader.h"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <utility>

namespace tracecast::sink {

const std::size_t OtlpTraceReader::k_padding = simdjson::SIMDJSON_PADDING;

namespace {

using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

constexpr int k_max_path_depth = 16;
constexpr int k_max_value_depth = 24;  // nested arrayValue/kvlistValue levels we accept

constexpr std::array<std::string_view, 6> k_span_kind_names = {
    "SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",      "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER"};
constexpr std::array<std::string_view, 3> k_status_code_names = {
    "STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"};

struct PathSegment {
  std::string_view name;
  std::int64_t index;  // -1: not an array element
};

template <typename T>
void append_number(std::string& out, T value) {
  std::array<char, 32> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value);
  (void)ec;  // 32 chars hold any int64/uint64/double in shortest form
  out.append(buf.data(), static_cast<std::size_t>(end - buf.data()));
}

void append_double(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "\"NaN\"";
  } else if (std::isinf(value)) {
    out += value > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    // Shortest form; an integral value that prints as 19 or more digits is written in
    // scientific form instead ("3.0718805076407726e+21"), so every JSON reader takes it as a
    // double (simdjson refuses an integer literal past 64 bits: found by fuzz_sink_protobuf).
    const std::size_t at = out.size();
    append_number(out, value);
    if (std::fabs(value) >= 1e18 && out.find_first_of(".e", at) == std::string::npos) {
      out.resize(at);
      std::array<char, 32> buf{};
      auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value, std::chars_format::scientific);
      (void)ec;
      out.append(buf.data(), static_cast<std::size_t>(end - buf.data()));
    }
  }
}

[[nodiscard]] bool is_hex(char c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

[[nodiscard]] char lower_hex(char c) noexcept {
  return (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char k_hex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run_start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.data() + run_start, i - run_start);
    run_start = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        out += "\\u00";
        out.push_back(k_hex[c >> 4U]);
        out.push_back(k_hex[c & 0xfU]);
    }
  }
  out.append(s.data() + run_start, s.size() - run_start);
  out.push_back('"');
}

struct OtlpTraceReader::impl {
  simdjson::dom::parser parser;
  std::string resource_json;  // "resource":{...}
  std::string scope_json;     // "scope":{...}
  std::string scratch;
  std::vector<std::uint8_t> found;  // per count-by key: seen on the current span
};

// The walk over one parsed document. Every function returns false after setting the error.
struct reader_walk {
  OtlpTraceReader& r;
  OtlpTraceReader::impl& m;
  std::array<PathSegment, k_max_path_depth> path{};
  int depth = 0;
  element resource_attributes;
  bool has_resource_attributes = false;

  struct Scoped {  // pushes a path segment for the lifetime of the object
    reader_walk& w;
    Scoped(reader_walk& walk, std::string_view name, std::int64_t index = -1) : w(walk) {
      if (w.depth < k_max_path_depth) w.path[static_cast<std::size_t>(w.depth)] = {name, index};
      ++w.depth;
    }
    ~Scoped() { --w.depth; }
    Scoped(const Scoped&) = delete;
    Scoped& operator=(const Scoped&) = delete;
  };

  bool fail(std::string_view reason) {
    std::string& e = r.error_;
    e.clear();
    const int shown = depth < k_max_path_depth ? depth : k_max_path_depth;
    for (int i = 0; i < shown; ++i) {
      const PathSegment& seg = path[static_cast<std::size_t>(i)];
      if (!e.empty() && !seg.name.empty()) e += '.';
      e += seg.name;
      if (seg.index >= 0) {
        e += '[';
        append_number(e, seg.index);
        e += ']';
      }
    }
    if (!e.empty()) e += ": ";
    e += reason;
    return false;
  }

  // --- scalars ----------------------------------------------------------------------------
  bool get_string(element v, std::string_view& out) {
    if (v.get_string().get(out) != simdjson::SUCCESS) return fail("expected a string");
    return true;
  }

  bool get_int64(element v, std::int64_t& out) {
    switch (v.type()) {
      case element_type::INT64:
        out = v.get_int64().value_unsafe();
        return true;
      case element_type::STRING: {
        const std::string_view s = v.get_string().value_unsafe();
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
          return fail("expected a decimal int64 (string or number)");
        }
        return true;
      }
      case element_type::UINT64:
        return fail("integer out of int64 range");
      default:
        return fail("expected a decimal int64 (string or number)");
    }
  }

  bool get_uint64(element v, std::uint64_t& out) {
    switch (v.type()) {
      case element_type::INT64: {
        const std::int64_t i = v.get_int64().value_unsafe();
        if (i < 0) return fail("expected an unsigned integer");
        out = static_cast<std::uint64_t>(i);
        return true;
      }
      case element_type::UINT64:
        out = v.get_uint64().value_unsafe();
        return true;
      case element_type::STRING: {
        const std::string_view s = v.get_string().value_unsafe();
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
          return fail("expected a decimal uint64 (string or number)");
        }
        return true;
      }
      default:
        return fail("expected a decimal uint64 (string or number)");
    }
  }

  bool get_uint32(element v, std::uint64_t& out) {
    if (!get_uint64(v, out)) return false;
    if (out > std::numeric_limits<std::uint32_t>::max()) return fail("integer out of uint32 range");
    return true;
  }

  template <std::size_t N>
  bool get_enum(element v, const std::array<std::string_view, N>& names, std::int64_t& out) {
    if (v.type() == element_type::STRING) {
      const std::string_view s = v.get_string().value_unsafe();
      for (std::size_t i = 0; i < N; ++i) {
        if (names[i] == s) {
          out = static_cast<std::int64_t>(i);
          return true;
        }
      }
      return fail("unknown enum name");
    }
    if (v.type() != element_type::INT64) return fail("expected an enum integer or name");
    out = v.get_int64().value_unsafe();
    if (out < 0 || out >= static_cast<std::int64_t>(N)) {
      m.scratch = "enum value not one of 0..";
      append_number(m.scratch, N - 1);
      return fail(m.scratch);
    }
    return true;
  }

  bool get_double(element v, double& out) {
    switch (v.type()) {
      case element_type::DOUBLE:
      case element_type::INT64:
      case element_type::UINT64:
        out = v.get_double().value_unsafe();
        return true;
      case element_type::STRING: {
        const std::string_view s = v.get_string().value_unsafe();
        if (s == "NaN") {
          out = std::numeric_limits<double>::quiet_NaN();
        } else if (s == "Infinity") {
          out = std::numeric_limits<double>::infinity();
        } else if (s == "-Infinity") {
          out = -std::numeric_limits<double>::infinity();
        } else {
          auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
          if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
            return fail("expected a number");
          }
        }
        return true;
      }
      default:
        return fail("expected a number");
    }
  }

  // Hex id of exactly `digits` hex digits, either case, not all zero; rendered lowercase.
  bool get_hex_id(element v, std::size_t digits, bool allow_empty, std::string_view what,
                  std::array<char, 32>& out, bool& present) {
    std::string_view s;
    if (!get_string(v, s)) return false;
    if (s.empty() && allow_empty) {
      present = false;
      return true;
    }
    if (s.size() != digits) {
      m.scratch = "not ";
      append_number(m.scratch, digits);
      m.scratch += " hex digits";
      return fail(m.scratch);
    }
    bool nonzero = false;
    for (std::size_t i = 0; i < digits; ++i) {
      if (!is_hex(s[i])) {
        m.scratch = "not ";
        append_number(m.scratch, digits);
        m.scratch += " hex digits";
        return fail(m.scratch);
      }
      out[i] = lower_hex(s[i]);
      nonzero = nonzero || s[i] != '0';
    }
    if (!nonzero) {
      m.scratch = "all-zero ";
      m.scratch += what;
      m.scratch += " is invalid";
      return fail(m.scratch);
    }
    present = true;
    return true;
  }

  // --- AnyValue / KeyValue ----------------------------------------------------------------
  // Validates an AnyValue object; renders it as plain JSON into `out` (when not null).
  // `as_text`: strings unquoted (used for counted values).
  bool any_value(element v, std::string* out, int level, bool as_text = false) {
    if (level > k_max_value_depth) return fail("values nested too deeply");
    // Strict, like the strictest receivers: an AnyValue with no value (null, missing or {})
    // makes some of them refuse the whole request, so it is refused here too.
    if (v.is_null()) return fail("missing or null AnyValue (no value set)");
    object obj;
    if (v.get_object().get(obj) != simdjson::SUCCESS) return fail("expected an AnyValue object");
    int kinds = 0;
    std::string_view which;
    element value;
    for (auto field : obj) {
      const std::string_view k = field.key;
      if (k == "stringValue" || k == "boolValue" || k == "intValue" || k == "doubleValue" ||
          k == "arrayValue" || k == "kvlistValue" || k == "bytesValue") {
        if (field.value.is_null()) continue;
        ++kinds;
        which = k;
        value = field.value;
      }
    }
    if (kinds > 1) {
      return fail(
          "more than one of stringValue/boolValue/intValue/doubleValue/arrayValue/kvlistValue/"
          "bytesValue");
    }
    if (kinds == 0) return fail("empty AnyValue (no value set)");
    Scoped seg(*this, which);
    if (which == "stringValue" || which == "bytesValue") {
      std::string_view s;
      if (!get_string(value, s)) return false;
      if (out != nullptr) {
        if (as_text) {
          *out += s;
        } else {
          append_json_string(*out, s);
        }
      }
      return true;
    }
    if (which == "boolValue") {
      bool b = false;
      if (value.get_bool().get(b) != simdjson::SUCCESS) return fail("expected true or false");
      if (out != nullptr) *out += b ? "true" : "false";
      return true;
    }
    if (which == "intValue") {
      std::int64_t i = 0;
      if (!get_int64(value, i)) return false;
      if (out != nullptr) append_number(*out, i);
      return true;
    }
    if (which == "doubleValue") {
      double d = 0;
      if (!get_double(value, d)) return false;
      if (out != nullptr) append_double(*out, d);
      return true;
    }
    // arrayValue {values:[AnyValue]} / kvlistValue {values:[KeyValue]}
    const bool is_array = which == "arrayValue";
    object inner;
    if (value.get_object().get(inner) != simdjson::SUCCESS) return fail("expected an object");
    element values;
    if (out != nullptr) *out += is_array ? '[' : '{';
    if (inner.at_key("values").get(values) == simdjson::SUCCESS && !values.is_null()) {
      Scoped vals(*this, "values");
      array arr;
      if (values.get_array().get(arr) != simdjson::SUCCESS) return fail("expected an array");
      std::int64_t i = 0;
      for (element item : arr) {
        Scoped idx(*this, "", i);
        if (out != nullptr && i > 0) *out += ',';
        if (is_array) {
          if (!any_value(item, out, level + 1)) return false;
        } else {
          std::string_view key;
          element kv_value;
          if (!key_value(item, key, kv_value)) return false;
          if (out != nullptr) {
            append_json_string(*out, key);
            *out += ':';
          }
          Scoped vseg(*this, "value");
          if (!any_value(kv_value, out, level + 1)) return false;
        }
        ++i;
      }
    }
    if (out != nullptr) *out += is_array ? ']' : '}';
    return true;
  }

  // Validates a KeyValue's shape; the value is validated by the caller (any_value).
  bool key_value(element kv, std::string_view& key, element& value) {
    object obj;
    if (kv.get_object().get(obj) != simdjson::SUCCESS) return fail("expected a KeyValue object");
    bool has_key = false;
    bool has_value = false;
    value = element();
    for (auto field : obj) {
      if (field.key == "key") {
        Scoped seg(*this, "key");
        if (!get_string(field.value, key)) return false;
        has_key = true;
      } else if (field.key == "value") {
        value = field.value;
        has_value = true;
      }
    }
    if (!has_key) return fail("missing key");
    if (key.empty()) return fail("empty attribute key");
    if (!has_value) return fail("missing value (an AnyValue is required)");
    return true;
  }

  // Validates attributes[]; renders {"k":v,...} into out (if not null). When `count` is set,
  // records the values of count-by keys (span attributes).
  bool attributes(element v, std::string* out, bool count) {
    Scoped seg(*this, "attributes");
    if (out != nullptr) *out += '{';
    if (!v.is_null()) {
      array arr;
      if (v.get_array().get(arr) != simdjson::SUCCESS) return fail("expected an array");
      std::int64_t i = 0;
      for (element kv : arr) {
        Scoped idx(*this, "", i);
        std::string_view key;
        element value;
        if (!key_value(kv, key, value)) return false;
        if (out != nullptr) {
          if (i > 0) *out += ',';
          append_json_string(*out, key);
          *out += ':';
        }
        Scoped vseg(*this, "value");
        if (!any_value(value, out, 0)) return false;
        if (count) {
          for (std::size_t j = 0; j < r.count_by_.size(); ++j) {
            if (m.found[j] == 0 && r.count_by_[j] == key) {
              m.found[j] = 1;
              record(static_cast<std::uint32_t>(j), value);
            }
          }
        }
        ++i;
      }
    }
    if (out != nullptr) *out += '}';
    return true;
  }

  void record(std::uint32_t key_index, element value) {
    const std::size_t start = r.tally_text_.size();
    (void)any_value(value, &r.tally_text_, 0, true);  // already validated
    r.tally_.push_back({key_index, static_cast<std::uint32_t>(start),
                        static_cast<std::uint32_t>(r.tally_text_.size() - start), 1});
  }

  void record_absent(std::uint32_t key_index, std::uint64_t count) {
    const std::size_t start = r.tally_text_.size();
    r.tally_text_ += k_absent_value;
    r.tally_.push_back({key_index, static_cast<std::uint32_t>(start),
                        static_cast<std::uint32_t>(k_absent_value.size()), count});
  }

  // Count-by keys the span did not carry: look in the resource attributes.
  void count_from_resource() {
    for (std::size_t j = 0; j < r.count_by_.size(); ++j) {
      if (m.found[j] != 0) continue;
      bool hit = false;
      array arr;
      if (has_resource_attributes && resource_attributes.get_array().get(arr) == simdjson::SUCCESS) {
        for (element kv : arr) {
          std::string_view key;
          element value;
          if (kv.at_key("key").get_string().get(key) == simdjson::SUCCESS && key == r.count_by_[j] &&
              kv.at_key("value").get(value) == simdjson::SUCCESS) {
            record(static_cast<std::uint32_t>(j), value);
            hit = true;
            break;
          }
        }
      }
      if (!hit) record_absent(static_cast<std::uint32_t>(j), 1);
    }
  }

  // --- the request tree -------------------------------------------------------------------
  bool request(element doc) {
    object root;
    if (doc.get_object().get(root) != simdjson::SUCCESS) {
      return fail("body is not a JSON object (expected an ExportTraceServiceRequest)");
    }
    for (auto field : root) {
      if (field.key != "resourceSpans" || field.value.is_null()) continue;
      Scoped seg(*this, "resourceSpans");
      array arr;
      if (field.value.get_array().get(arr) != simdjson::SUCCESS) return fail("expected an array");
      std::int64_t i = 0;
      for (element rs : arr) {
        Scoped idx(*this, "", i++);
        if (!resource_spans(rs)) return false;
      }
    }
    return true;
  }

  bool resource_spans(element rs) {
    object obj;
    if (rs.get_object().get(obj) != simdjson::SUCCESS) return fail("expected a ResourceSpans object");
    // Resource first, whatever the field order: every span line carries it.
    m.resource_json = "\"resource\":";
    has_resource_attributes = false;
    std::string_view service = k_absent_value;
    bool service_found = false;
    element resource;
    if (obj.at_key("resource").get(resource) == simdjson::SUCCESS && !resource.is_null()) {
      Scoped seg(*this, "resource");
      object robj;
      if (resource.get_object().get(robj) != simdjson::SUCCESS) return fail("expected an object");
      element attrs;
      if (robj.at_key("attributes").get(attrs) == simdjson::SUCCESS) {
        if (!attributes(attrs, r.want_lines_ ? &m.resource_json : nullptr, false)) return false;
        has_resource_attributes = !attrs.is_null();
        resource_attributes = attrs;
        array arr;
        if (has_resource_attributes && attrs.get_array().get(arr) == simdjson::SUCCESS) {
          for (element kv : arr) {
            std::string_view key;
            std::string_view name;
            if (!service_found && kv.at_key("key").get_string().get(key) == simdjson::SUCCESS &&
                key == "service.name" &&
                kv.at_key("value").at_key("stringValue").get_string().get(name) == simdjson::SUCCESS) {
              service = name;
              service_found = true;
            }
          }
        }
      } else {
        m.resource_json += "{}";
      }
    } else {
      m.resource_json += "{}";
    }
    const std::uint64_t spans_before = r.span_count_;
    element scope_spans;
    if (obj.at_key("scopeSpans").get(scope_spans) == simdjson::SUCCESS && !scope_spans.is_null()) {
      Scoped seg(*this, "scopeSpans");
      array arr;
      if (scope_spans.get_array().get(arr) != simdjson::SUCCESS) return fail("expected an array");
      std::int64_t i = 0;
      for (element ss : arr) {
        Scoped idx(*this, "", i++);
        if (!scope_spans_entry(ss)) return false;
      }
    }
    const std::uint64_t spans = r.span_count_ - spans_before;
    if (spans > 0) {
      const std::size_t start = r.tally_text_.size();
      r.tally_text_ += service;
      r.tally_.push_back({k_service_key, static_cast<std::uint32_t>(start),
                          static_cast<std::uint32_t>(service.size()), spans});
    }
    return true;
  }

  bool scope_spans_entry(element ss) {
    object obj;
    if (ss.get_object().get(obj) != simdjson::SUCCESS) return fail("expected a ScopeSpans object");
    std::string_view scope_name;
    std::string_view scope_version;
    element scope;
    if (obj.at_key("scope").get(scope) == simdjson::SUCCESS && !scope.is_null()) {
      Scoped seg(*this, "scope");
      object sobj;
      if (scope.get_object().get(sobj) != simdjson::SUCCESS) return fail("expected an object");
      for (auto field : sobj) {
        if (field.value.is_null()) continue;
        if (field.key == "name") {
          Scoped f(*this, "name");
          if (!get_string(field.value, scope_name)) return false;
        } else if (field.key == "version") {
          Scoped f(*this, "version");
          if (!get_string(field.value, scope_version)) return false;
        } else if (field.key == "attributes") {
          if (!attributes(field.value, nullptr, false)) return false;
        }
      }
    }
    if (r.want_lines_) {
      m.scope_json = "\"scope\":{\"name\":";
      append_json_string(m.scope_json, scope_name);
      m.scope_json += ",\"version\":";
      append_json_string(m.scope_json, scope_version);
      m.scope_json += '}';
    }
    element spans;
    if (obj.at_key("spans").get(spans) == simdjson::SUCCESS && !spans.is_null()) {
      Scoped seg(*this, "spans");
      array arr;
      if (spans.get_array().get(arr) != simdjson::SUCCESS) return fail("expected an array");
      std::int64_t i = 0;
      for (element sp : arr) {
        Scoped idx(*this, "", i++);
        if (!span(sp)) return false;
      }
    }
    return true;
  }

  bool events_or_links(element v, std::string_view name, bool links) {
    Scoped seg(*this, name);
    array arr;
    if (v.get_array().get(arr) != simdjson::SUCCESS) return fail("expected an array");
    std::int64_t i = 0;
    for (element item : arr) {
      Scoped idx(*this, "", i++);
      object obj;
      if (item.get_object().get(obj) != simdjson::SUCCESS) return fail("expected an object");
      for (auto field : obj) {
        if (field.value.is_null()) continue;
        if (field.key == "attributes") {
          if (!attributes(field.value, nullptr, false)) return false;
        } else if (!links && field.key == "timeUnixNano") {
          Scoped f(*this, "timeUnixNano");
          std::uint64_t t = 0;
          if (!get_uint64(field.value, t)) return false;
        } else if (!links && field.key == "name") {
          Scoped f(*this, "name");
          std::string_view s;
          if (!get_string(field.value, s)) return false;
        } else if (links && (field.key == "traceId" || field.key == "spanId")) {
          Scoped f(*this, field.key);
          std::array<char, 32> id{};
          bool present = false;
          if (!get_hex_id(field.value, field.key == "traceId" ? 32 : 16, false, field.key, id,
                          present)) {
            return false;
          }
        }
      }
    }
    return true;
  }

  bool span(element sp) {
    object obj;
    if (sp.get_object().get(obj) != simdjson::SUCCESS) return fail("expected a Span object");
    // Collect the fields (any order), then validate and render in the fixed line order.
    element trace_id, span_id, parent_id, name, kind, start, end, attrs, status;
    bool has_trace = false, has_span = false, has_parent = false, has_name = false,
         has_kind = false, has_start = false, has_end = false, has_attrs = false,
         has_status = false;
    for (auto field : obj) {
      const std::string_view k = field.key;
      element v = field.value;
      if (v.is_null()) continue;
      if (k == "traceId") {
        trace_id = v, has_trace = true;
      } else if (k == "spanId") {
        span_id = v, has_span = true;
      } else if (k == "parentSpanId") {
        parent_id = v, has_parent = true;
      } else if (k == "name") {
        name = v, has_name = true;
      } else if (k == "kind") {
        kind = v, has_kind = true;
      } else if (k == "startTimeUnixNano") {
        start = v, has_start = true;
      } else if (k == "endTimeUnixNano") {
        end = v, has_end = true;
      } else if (k == "attributes") {
        attrs = v, has_attrs = true;
      } else if (k == "status") {
        status = v, has_status = true;
      } else if (k == "traceState") {
        Scoped f(*this, k);
        std::string_view s;
        if (!get_string(v, s)) return false;
      } else if (k == "flags" || k == "droppedAttributesCount" || k == "droppedEventsCount" ||
                 k == "droppedLinksCount") {
        Scoped f(*this, k);
        std::uint64_t u = 0;
        if (!get_uint32(v, u)) return false;
      } else if (k == "events" || k == "links") {
        if (!events_or_links(v, k, k == "links")) return false;
      }
    }
    std::array<char, 32> tid{};
    std::array<char, 32> sid{};
    std::array<char, 32> pid{};
    bool present = false;
    bool parent_present = false;
    {
      Scoped f(*this, "traceId");
      if (!has_trace) return fail("missing (required, 32 hex digits)");
      if (!get_hex_id(trace_id, 32, false, "traceId", tid, present)) return false;
    }
    {
      Scoped f(*this, "spanId");
      if (!has_span) return fail("missing (required, 16 hex digits)");
      if (!get_hex_id(span_id, 16, false, "spanId", sid, present)) return false;
    }
    if (has_parent) {
      Scoped f(*this, "parentSpanId");
      if (!get_hex_id(parent_id, 16, true, "parentSpanId", pid, parent_present)) return false;
    }
    std::string_view name_text;
    if (has_name) {
      Scoped f(*this, "name");
      if (!get_string(name, name_text)) return false;
    }
    std::int64_t kind_value = 0;
    if (has_kind) {
      Scoped f(*this, "kind");
      if (!get_enum(kind, k_span_kind_names, kind_value)) return false;
    }
    // Times are required and ordered: receivers refuse (or drop) spans without them.
    std::uint64_t start_ns = 0;
    std::uint64_t end_ns = 0;
    {
      Scoped f(*this, "startTimeUnixNano");
      if (!has_start) return fail("missing (required, non-zero)");
      if (!get_uint64(start, start_ns)) return false;
      if (start_ns == 0) return fail("zero (required, non-zero)");
    }
    {
      Scoped f(*this, "endTimeUnixNano");
      if (!has_end) return fail("missing (required, non-zero)");
      if (!get_uint64(end, end_ns)) return false;
      if (end_ns == 0) return fail("zero (required, non-zero)");
      if (end_ns < start_ns) return fail("before startTimeUnixNano");
    }
    std::int64_t status_code = 0;
    std::string_view status_message;
    if (has_status) {
      Scoped f(*this, "status");
      object sobj;
      if (status.get_object().get(sobj) != simdjson::SUCCESS) return fail("expected an object");
      for (auto field : sobj) {
        if (field.value.is_null()) continue;
        if (field.key == "code") {
          Scoped c(*this, "code");
          if (!get_enum(field.value, k_status_code_names, status_code)) return false;
        } else if (field.key == "message") {
          Scoped c(*this, "message");
          if (!get_string(field.value, status_message)) return false;
        }
      }
    }

    std::string* line = r.want_lines_ ? &r.lines_ : nullptr;
    if (line != nullptr) {
      std::string& l = *line;
      l += '{';
      l += m.resource_json;
      l += ',';
      l += m.scope_json;
      l += ",\"traceId\":\"";
      l.append(tid.data(), 32);
      l += "\",\"spanId\":\"";
      l.append(sid.data(), 16);
      l += '"';
      if (parent_present) {
        l += ",\"parentSpanId\":\"";
        l.append(pid.data(), 16);
        l += '"';
      }
      l += ",\"name\":";
      append_json_string(l, name_text);
      l += ",\"kind\":";
      append_number(l, kind_value);
      l += ",\"startTimeUnixNano\":\"";
      append_number(l, start_ns);
      l += "\",\"endTimeUnixNano\":\"";
      append_number(l, end_ns);
      l += "\",\"status\":{\"code\":";
      append_number(l, status_code);
      l += ",\"message\":";
      append_json_string(l, status_message);
      l += "},\"attributes\":";
    }
    std::fill(m.found.begin(), m.found.end(), std::uint8_t{0});
    if (has_attrs) {
      if (!attributes(attrs, line, !r.count_by_.empty())) return false;
    } else if (line != nullptr) {
      *line += "{}";
    }
    if (line != nullptr) *line += "}\n";
    count_from_resource();
    ++r.span_count_;
    return true;
  }
};

OtlpTraceReader::OtlpTraceReader(std::vector<std::string> count_by, bool want_lines)
    : impl_(std::make_unique<impl>()), count_by_(std::move(count_by)), want_lines_(want_lines) {
  impl_->found.resize(count_by_.size());
}

OtlpTraceReader::~OtlpTraceReader() = default;

bool OtlpTraceReader::read(const char* data, std::size_t size) {
  error_.clear();
  span_count_ = 0;
  tally_.clear();
  tally_text_.clear();
  lines_.clear();
  element doc;
  const auto err = impl_->parser.parse(data, size, false).get(doc);
  if (err != simdjson::SUCCESS) {
    error_ = "body is not valid JSON: ";
    error_ += simdjson::error_message(err);
    return false;
  }
  reader_walk walk{*this, *impl_, {}, 0, element(), false};
  if (!walk.request(doc)) {
    span_count_ = 0;
    tally_.clear();
    tally_text_.clear();
    lines_.clear();
    return false;
  }
  return true;
}

}  // namespace tracecast::sink
