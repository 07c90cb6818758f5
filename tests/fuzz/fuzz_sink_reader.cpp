// libFuzzer target over the bundled sink's strict OTLP/JSON validation (tools/sink/otlp_reader.h).
// Checks: nothing crashes or reads out of bounds (ASan); a refused body gives a reason and no
// output; an accepted body gives one JSON line per counted span, and every line holds what a
// strict receiver requires (ids of the right length, lowercase hex, not all zero; non-zero
// times with end >= start; kind 0..5; status code 0..2; no attribute without a value).
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "otlp_reader.h"
#include "sink_span_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using sink_fuzz::require;
  using tracecast::sink::OtlpTraceReader;
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
  sink_fuzz::check_lines(parser, reader);
  return 0;
}
