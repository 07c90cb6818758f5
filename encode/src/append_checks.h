// The rules both encoders apply, so the two keep one contract (otlp_json.h /
// otlp_protobuf.h): append()'s early results (too_large before begin(), batch_full after
// finish(), a group whose spans all have an all-zero id is skipped, counted, and returns ok)
// and which attributes of a list are written.
#pragma once

#include <cstddef>
#include <optional>
#include <span>

#include "tracecast/encoder_limits.h"
#include "tracecast/span.h"

namespace tracecast::detail {

// The attribute a span gets when the encoder cut one of its values (name, attribute key or
// value, status message) to max_value_bytes: the one the mapping writes for values cut at
// submit (mapping.cpp), so a query finds every cut span the same way. Left out when the span
// already has it, its list is at max_attributes_per_span, or max_value_bytes is under the
// key's 19 bytes (the key itself would be cut).
inline constexpr Attribute k_cut_mark{"tracecast.truncated", AttributeValue::boolean(true)};

// The limits of one batch: the encoder's, with max_value_bytes lowered to `max_value_bytes`
// when that is non-zero and smaller (a destination's own limit; at least 4, the smallest
// EncoderLimits allows).
[[nodiscard]] inline EncoderLimits batch_limits(const EncoderLimits& limits, std::size_t max_value_bytes) noexcept {
  EncoderLimits l = limits;
  if (max_value_bytes != 0 && max_value_bytes < l.max_value_bytes) l.max_value_bytes = max_value_bytes < 4 ? 4 : max_value_bytes;
  return l;
}

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

// Which attributes of one list (a span's or a resource's) are written, in order: a valueless
// attribute is left out (strict receivers refuse an empty AnyValue: the whole request with
// it), then at most limits.max_attributes_per_span are written. Both kinds are counted and
// said in the list's dropped attributes count. Duplicate keys are the encoder's business
// (detail::KeyIndex): a skipped duplicate is not wrote(). No allocation.
class AttributeAdmission {
 public:
  AttributeAdmission(std::size_t max, EncoderStats& stats) noexcept : max_(max), stats_(stats) {}

  // True: write `a`, then call wrote() if it was written. False: left out, counted.
  [[nodiscard]] bool admit(const Attribute& a) noexcept {
    if (a.value.type() == ValueType::empty) {
      ++stats_.empty_values_skipped;
      ++empty_;
      return false;
    }
    if (written_ == max_) {
      ++dropped_;
      return false;
    }
    return true;
  }
  void wrote() noexcept { ++written_; }
  [[nodiscard]] std::size_t written() const noexcept { return written_; }

  // The list's dropped attributes count (over the limit + valueless); adds the attributes
  // over the limit to stats.attributes_dropped. Call once, after the list.
  [[nodiscard]] std::size_t finish() noexcept {
    stats_.attributes_dropped += dropped_;
    return dropped_ + empty_;
  }

 private:
  std::size_t max_;
  EncoderStats& stats_;
  std::size_t written_ = 0;
  std::size_t dropped_ = 0;
  std::size_t empty_ = 0;
};

}  // namespace tracecast::detail
