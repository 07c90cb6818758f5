// The checks both sink fuzz targets make on an accepted body's --spans-out lines: every line
// holds what a strict receiver requires (ids of the right length, lowercase hex, not all zero;
// non-zero times with end >= start; kind 0..5; status code 0..2; no attribute without a value).
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "otlp_reader.h"

namespace sink_fuzz {

inline void require(bool ok) {
  if (!ok) std::abort();
}

inline bool hex_id(std::string_view s, std::size_t digits) {
  if (s.size() != digits) return false;
  bool nonzero = false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    nonzero = nonzero || c != '0';
  }
  return nonzero;
}

inline std::uint64_t decimal(std::string_view s) {
  require(!s.empty() && s.size() <= 20);
  std::uint64_t v = 0;
  for (char c : s) {
    require(c >= '0' && c <= '9');
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

inline void check_line(simdjson::dom::parser& parser, std::string_view line) {
  simdjson::dom::element e;
  require(parser.parse(line.data(), line.size()).get(e) == simdjson::SUCCESS);
  std::string_view s;
  require(e["traceId"].get_string().get(s) == simdjson::SUCCESS && hex_id(s, 32));
  require(e["spanId"].get_string().get(s) == simdjson::SUCCESS && hex_id(s, 16));
  if (e["parentSpanId"].get_string().get(s) == simdjson::SUCCESS) require(hex_id(s, 16));
  std::int64_t kind = -1;
  require(e["kind"].get_int64().get(kind) == simdjson::SUCCESS && kind >= 0 && kind <= 5);
  std::int64_t code = -1;
  require(e["status"]["code"].get_int64().get(code) == simdjson::SUCCESS && code >= 0 && code <= 2);
  std::string_view start, end;
  require(e["startTimeUnixNano"].get_string().get(start) == simdjson::SUCCESS);
  require(e["endTimeUnixNano"].get_string().get(end) == simdjson::SUCCESS);
  const std::uint64_t a = decimal(start);
  const std::uint64_t b = decimal(end);
  require(a != 0 && b >= a);
  simdjson::dom::object attrs;
  require(e["attributes"].get_object().get(attrs) == simdjson::SUCCESS);
  for (auto field : attrs) require(!field.key.empty() && !field.value.is_null());
}

// Checks every line of an accepted read: one line per counted span, each as above.
inline void check_lines(simdjson::dom::parser& parser, const tracecast::sink::OtlpTraceReader& reader) {
  std::string_view lines = reader.lines();
  std::uint64_t n = 0;
  while (!lines.empty()) {
    const std::size_t nl = lines.find('\n');
    require(nl != std::string_view::npos);
    check_line(parser, lines.substr(0, nl));
    lines.remove_prefix(nl + 1);
    ++n;
  }
  require(n == reader.span_count());
}

}  // namespace sink_fuzz
