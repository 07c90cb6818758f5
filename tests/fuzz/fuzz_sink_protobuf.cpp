// libFuzzer target over the bundled sink's strict OTLP/protobuf validation: the wire checker
// that rewrites an ExportTraceServiceRequest as OTLP/JSON (tools/sink/otlp_protobuf.h), then
// the same JSON reader the sink runs on it. Checks:
// - nothing crashes or reads out of bounds (ASan, UBSan);
// - a refused body gives a reason and no output;
// - an accepted body's JSON parses, and the reader either refuses it with a reason or gives
//   one line per counted span that a strict receiver takes (sink_span_check.h);
// - the protobuf rules the checker documents hold on every accepted body: an unknown field
//   appended is skipped (the same JSON), and the body twice in a row (one message merged from
//   two: `resourceSpans` is repeated) is accepted and counts twice the spans.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "otlp_protobuf.h"
#include "otlp_reader.h"
#include "sink_span_check.h"

namespace {

using sink_fuzz::require;
using tracecast::sink::OtlpTraceReader;
using tracecast::sink::protobuf_to_json;

// Reads json (padded in place) with the reader; returns the span count, or -1 when refused.
std::int64_t read_json(OtlpTraceReader& reader, simdjson::dom::parser& parser, std::string& json) {
  const std::size_t size = json.size();
  json.resize(size + OtlpTraceReader::k_padding, '\0');
  if (!reader.read(json.data(), size)) {
    require(!reader.error().empty());
    require(reader.lines().empty() && reader.span_count() == 0);
    json.resize(size);
    return -1;
  }
  sink_fuzz::check_lines(parser, reader);
  json.resize(size);
  return static_cast<std::int64_t>(reader.span_count());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static OtlpTraceReader reader({"gen_ai.request.model"}, true);
  static simdjson::dom::parser parser;
  static std::string json, again, error;
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  if (!protobuf_to_json(body, json, error)) {
    require(!error.empty() && json.empty());
    return 0;
  }
  require(error.empty());
  {
    const simdjson::padded_string padded(json);
    simdjson::dom::element e;
    require(parser.parse(padded).get(e) == simdjson::SUCCESS && e.is_object());
  }
  const std::int64_t spans = read_json(reader, parser, json);

  // An unknown top-level field (number 15, varint 1) is skipped: the same JSON.
  std::string more(body);
  more += "\x78\x01";
  require(protobuf_to_json(more, again, error));
  require(again == json);

  // Two copies merge into one request with the resource spans of both.
  if (size > (std::size_t{1} << 16)) return 0;  // keeps each run fast
  std::string twice(body);
  twice += body;
  require(protobuf_to_json(twice, again, error));
  const std::int64_t twice_spans = read_json(reader, parser, again);
  if (spans >= 0 && twice_spans >= 0) require(twice_spans == 2 * spans);
  return 0;
}
