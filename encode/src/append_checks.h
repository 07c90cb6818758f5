// The checks both encoders' append() start with, so the two keep one contract
// (otlp_json.h / otlp_protobuf.h: too_large before begin(), batch_full after finish(), a
// group whose spans all have an all-zero id is skipped, counted, and returns ok).
#pragma once

#include <cstddef>
#include <optional>
#include <span>

#include "tracecast/encoder_limits.h"
#include "tracecast/span.h"

namespace tracecast::detail {

// Spans of a group that can be written: both ids non-zero. No allocation.
[[nodiscard]] inline std::size_t writable_spans(std::span<const SpanView> spans) noexcept {
  std::size_t valid = 0;
  for (const SpanView& s : spans) valid += (s.trace_id.valid() && s.span_id.valid()) ? 1 : 0;
  return valid;
}

// A result to return at once, or nullopt: go on and encode. `valid`: writable_spans(spans).
[[nodiscard]] inline std::optional<append_result> append_early_result(bool idle, bool finished,
                                                                      std::span<const SpanView> spans,
                                                                      std::size_t valid,
                                                                      EncoderStats& stats) noexcept {
  if (idle) {
    stats.spans_too_large += spans.size();
    return append_result::too_large;
  }
  if (finished) return append_result::batch_full;
  if (valid != 0) return std::nullopt;
  stats.spans_invalid_id += spans.size();
  return append_result::ok;
}

}  // namespace tracecast::detail
