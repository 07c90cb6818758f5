// libFuzzer target over the bundled sink's strict OTLP/JSON validation (tools/sink/otlp_reader.h).
// Checks: nothing crashes or reads out of bounds (ASan); a refused body gives a reason and no
// output; an accepted body gives one JSON line per counted span, and every line holds what a
// strict receiver requires (ids of the right length, lowercase hex, not all zero; non-zero
// times with end >= start; kind 0..5; status code 0..2; no attribute without a value).
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "otlp_reader.h"

namespace {

using tracecast::sink::OtlpTraceReader;

void require(bool ok) {
  if (!ok) std::abort();
}

bool hex_id(std::string_view s, std::size_t digits) {
  if (s.size() != digits) return false;
  bool nonzero = false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    nonzero = nonzero || c != '0';
  }
  return nonzero;
}

std::uint64_t decimal(std::string_view s) {
  require(!s.empty() && s.size() <= 20);
  std::uint64_t v = 0;
  for (char c : s) {
    require(c >= '0' && c <= '9');
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

void check_line(simdjson::dom::parser& parser, std::string_view line) {
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static OtlpTraceReader reader({"gen_ai.request.model"}, true);
  static simdjson::dom::parser parser;
  static std::vector<char> padded;
  padded.assign(reinterpret_cast<const char*>(data), reinterpret_cast<const char*>(data) + size);
  padded.resize(size + OtlpTraceReader::k_padding, '\0');
  if (!reader.read(padded.data(), size)) {
    require(!reader.error().empty());
    require(reader.lines().empty() && reader.span_count() == 0);
    return 0;
  }
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
  return 0;
}
