// Validates an OTLP/HTTP JSON ExportTraceServiceRequest (parsed with simdjson), counts its
// spans by service and by chosen attributes, and optionally renders every span as one JSON
// line (the `--spans-out` format, see tools/sink/README section in the sink's --help).
//
// Internal to tracecast-sink (and its tests); not a public tracecast header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tracecast::sink {

// One counted value: `text_` of the reader holds the bytes.
struct TallyEntry {
  std::uint32_t key_index;  // index into the count-by keys; k_service_key for service.name
  std::uint32_t offset;     // into OtlpTraceReader::tally_text()
  std::uint32_t length;
  std::uint64_t count;
};

inline constexpr std::uint32_t k_service_key = 0xffffffffU;

// Value counted when a span has no service.name / no attribute of a count-by key.
inline constexpr std::string_view k_absent_value = "(none)";

// Reusable reader: one per thread. Not thread-safe. Keeps its buffers between calls, so a
// steady stream of similar requests reads with no heap allocation per span.
class OtlpTraceReader {
 public:
  // count_by: attribute keys whose values are counted (span attribute first, then resource
  // attribute). want_lines: render each span as a JSON line into lines().
  // Allocates; throws std::bad_alloc only.
  OtlpTraceReader(std::vector<std::string> count_by, bool want_lines);
  ~OtlpTraceReader();
  OtlpTraceReader(const OtlpTraceReader&) = delete;
  OtlpTraceReader& operator=(const OtlpTraceReader&) = delete;

  // Reads one request body. `data` must stay readable for `size + k_padding` bytes (simdjson
  // reads past the end). Returns false for a body that is not a valid OTLP JSON trace request;
  // error() then names the field and the reason, and every output below is empty.
  // Not thread-safe; may allocate while buffers grow.
  [[nodiscard]] bool read(const char* data, std::size_t size);

  // Bytes of padding read() needs after the body.
  static const std::size_t k_padding;

  [[nodiscard]] std::string_view error() const noexcept { return error_; }
  [[nodiscard]] std::uint64_t span_count() const noexcept { return span_count_; }
  // Spans by service (key_index == k_service_key) and by count-by key; several entries may
  // share a value (the caller sums them).
  [[nodiscard]] const std::vector<TallyEntry>& tally() const noexcept { return tally_; }
  [[nodiscard]] std::string_view tally_text() const noexcept { return tally_text_; }
  [[nodiscard]] std::string_view tally_value(const TallyEntry& e) const noexcept {
    return std::string_view(tally_text_).substr(e.offset, e.length);
  }
  // One JSON object per span, each ending in '\n' (empty unless want_lines).
  [[nodiscard]] std::string_view lines() const noexcept { return lines_; }
  [[nodiscard]] const std::vector<std::string>& count_by() const noexcept { return count_by_; }

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::vector<std::string> count_by_;
  bool want_lines_;
  std::string error_;
  std::uint64_t span_count_ = 0;
  std::vector<TallyEntry> tally_;
  std::string tally_text_;
  std::string lines_;
  friend struct reader_walk;
};

// Appends `s` as a JSON string literal (quotes included, control characters escaped).
void append_json_string(std::string& out, std::string_view s);

}  // namespace tracecast::sink
