// One canonical text form of an ExportTraceServiceRequest, from OTLP/JSON (simdjson) or from
// protobuf (libprotobuf, tests/proto/otlp_test.proto), so tests and fuzzers can check that
// both encoders wrote the same thing field by field: two bodies are equivalent exactly when
// their renderings are equal. Absent fields render as their proto3 defaults. Doubles render as
// their bit pattern (every NaN as "nan"), strings as their bytes, ids as lowercase hex.
#pragma once

#include <simdjson.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "otlp_test.pb.h"

namespace tracecast::test {

inline std::string render_hex(std::string_view bytes) {
  static constexpr char d[] = "0123456789abcdef";
  std::string s;
  for (unsigned char c : bytes) {
    s += d[c >> 4];
    s += d[c & 0xf];
  }
  return s;
}

inline std::string render_double(double v) {
  if (std::isnan(v)) return "d:nan";
  std::uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  char buf[32];
  std::snprintf(buf, sizeof buf, "d:%016llx", static_cast<unsigned long long>(bits));
  return buf;
}

// --- protobuf -------------------------------------------------------------------------------
inline std::string render_value(const otlp::AnyValue& v) {
  switch (v.value_case()) {
    case otlp::AnyValue::kStringValue: return "s:\"" + v.string_value() + "\"";
    case otlp::AnyValue::kBoolValue: return v.bool_value() ? "b:true" : "b:false";
    case otlp::AnyValue::kIntValue: return "i:" + std::to_string(v.int_value());
    case otlp::AnyValue::kDoubleValue: return render_double(v.double_value());
    case otlp::AnyValue::kArrayValue: {
      std::string s = "a:[";
      for (const auto& e : v.array_value().values()) s += render_value(e) + ",";
      return s + "]";
    }
    case otlp::AnyValue::kKvlistValue: return "kvlist";
    case otlp::AnyValue::kBytesValue: return "bytes";
    case otlp::AnyValue::VALUE_NOT_SET: return "-";
  }
  return "?";
}

template <typename List>
std::string render_attributes(const List& attrs, std::uint32_t dropped, const std::string& indent) {
  std::string s;
  for (const auto& kv : attrs) s += indent + "attr \"" + kv.key() + "\" " + render_value(kv.value()) + "\n";
  if (dropped != 0) s += indent + "dropped " + std::to_string(dropped) + "\n";
  return s;
}

inline std::string render(const otlp::ExportTraceServiceRequest& req) {
  std::string s;
  for (const auto& rs : req.resource_spans()) {
    s += "resource_spans\n";
    s += render_attributes(rs.resource().attributes(), rs.resource().dropped_attributes_count(), " ");
    for (const auto& ss : rs.scope_spans()) {
      s += " scope \"" + ss.scope().name() + "\" \"" + ss.scope().version() + "\"\n";
      for (const auto& sp : ss.spans()) {
        s += "  span " + render_hex(sp.trace_id()) + " " + render_hex(sp.span_id()) + " parent=" +
             render_hex(sp.parent_span_id()) + " name=\"" + sp.name() + "\" kind=" + std::to_string(sp.kind()) +
             " start=" + std::to_string(sp.start_time_unix_nano()) + " end=" + std::to_string(sp.end_time_unix_nano()) +
             " status=" + std::to_string(sp.status().code()) + ":\"" + sp.status().message() + "\"\n";
        s += render_attributes(sp.attributes(), sp.dropped_attributes_count(), "   ");
      }
    }
  }
  return s;
}

// --- JSON -----------------------------------------------------------------------------------
// The JSON side returns "" with `error` set when the document is not the shape expected.
struct JsonRender {
  std::string error;

  std::string str(simdjson::dom::element e, std::string_view key) {
    std::string_view v;
    if (e[key].get(v) == simdjson::SUCCESS) return std::string(v);
    return {};
  }
  std::uint64_t u64_text(simdjson::dom::element e, std::string_view key) {
    std::string_view v;
    if (e[key].get(v) != simdjson::SUCCESS) return 0;
    std::uint64_t out = 0;
    if (std::from_chars(v.data(), v.data() + v.size(), out).ec != std::errc()) error = "bad uint64 " + std::string(v);
    return out;
  }
  std::int64_t num(simdjson::dom::element e, std::string_view key) {
    std::int64_t v = 0;
    if (e[key].get(v) != simdjson::SUCCESS) v = 0;
    return v;
  }
  std::string hexid(simdjson::dom::element e, std::string_view key) { return str(e, key); }

  std::string value(simdjson::dom::element v) {
    simdjson::dom::element x;
    if (v["stringValue"].get(x) == simdjson::SUCCESS) return "s:\"" + std::string(std::string_view(x)) + "\"";
    if (v["boolValue"].get(x) == simdjson::SUCCESS) return bool(x) ? "b:true" : "b:false";
    if (v["intValue"].get(x) == simdjson::SUCCESS) {
      std::string_view t = x;
      std::int64_t i = 0;
      if (std::from_chars(t.data(), t.data() + t.size(), i).ec != std::errc()) error = "bad int " + std::string(t);
      return "i:" + std::to_string(i);
    }
    if (v["doubleValue"].get(x) == simdjson::SUCCESS) {
      std::string_view t;
      if (x.get(t) == simdjson::SUCCESS) {
        if (t == "NaN") return "d:nan";
        if (t == "Infinity") return render_double(HUGE_VAL);
        if (t == "-Infinity") return render_double(-HUGE_VAL);
        error = "bad double string";
        return {};
      }
      return render_double(x.get_double());
    }
    if (v["arrayValue"].get(x) == simdjson::SUCCESS) {
      std::string s = "a:[";
      simdjson::dom::array values;
      if (x["values"].get(values) == simdjson::SUCCESS)
        for (simdjson::dom::element e : values) s += value(e) + ",";
      return s + "]";
    }
    return "-";
  }
  std::string attributes(simdjson::dom::element holder, const std::string& indent) {
    std::string s;
    simdjson::dom::array attrs;
    if (holder["attributes"].get(attrs) == simdjson::SUCCESS)
      for (simdjson::dom::element a : attrs) {
        simdjson::dom::element v;
        s += indent + "attr \"" + str(a, "key") + "\" " + (a["value"].get(v) == simdjson::SUCCESS ? value(v) : "-") + "\n";
      }
    if (const std::int64_t d = num(holder, "droppedAttributesCount"); d != 0)
      s += indent + "dropped " + std::to_string(d) + "\n";
    return s;
  }
  std::string render(std::string_view json) {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) {
      error = "JSON does not parse";
      return {};
    }
    std::string s;
    simdjson::dom::array rss;
    if (doc["resourceSpans"].get(rss) != simdjson::SUCCESS) return s;
    for (simdjson::dom::element rs : rss) {
      s += "resource_spans\n";
      simdjson::dom::element res;
      if (rs["resource"].get(res) == simdjson::SUCCESS) s += attributes(res, " ");
      simdjson::dom::array sss;
      if (rs["scopeSpans"].get(sss) != simdjson::SUCCESS) continue;
      for (simdjson::dom::element ss : sss) {
        simdjson::dom::element scope;
        std::string name, version;
        if (ss["scope"].get(scope) == simdjson::SUCCESS) {
          name = str(scope, "name");
          version = str(scope, "version");
        }
        s += " scope \"" + name + "\" \"" + version + "\"\n";
        simdjson::dom::array spans;
        if (ss["spans"].get(spans) != simdjson::SUCCESS) continue;
        for (simdjson::dom::element sp : spans) {
          simdjson::dom::element st;
          std::int64_t code = 0;
          std::string msg;
          if (sp["status"].get(st) == simdjson::SUCCESS) {
            code = num(st, "code");
            msg = str(st, "message");
          }
          s += "  span " + hexid(sp, "traceId") + " " + hexid(sp, "spanId") + " parent=" + hexid(sp, "parentSpanId") +
               " name=\"" + str(sp, "name") + "\" kind=" + std::to_string(num(sp, "kind")) +
               " start=" + std::to_string(u64_text(sp, "startTimeUnixNano")) +
               " end=" + std::to_string(u64_text(sp, "endTimeUnixNano")) + " status=" + std::to_string(code) + ":\"" +
               msg + "\"\n";
          s += attributes(sp, "   ");
        }
      }
    }
    return s;
  }
};

}  // namespace tracecast::test
