// What both OTLP encoders (tracecast/otlp_json.h, tracecast/otlp_protobuf.h) share: the
// limits they apply to a span's strings and attribute lists, the counters they keep, and the
// result of an append. One definition, one validation, used by both.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tracecast/settings.h"

namespace tracecast {

struct EncoderLimits {
  // Bytes (of input, before escaping). A string longer than this (attribute value, array
  // element, key, span name, status message, scope name/version) is cut to at most this many
  // bytes at a UTF-8 code point boundary; counted in EncoderStats::values_truncated.
  // Default 1 MiB (a whole 100-200 KB prompt reaches a generic OTLP backend; presets of
  // backends with smaller limits set theirs); valid range [4, 16 MiB].
  std::size_t max_value_bytes = 1024 * 1024;
  // Attributes written per list (span or resource). Once this many are written, the rest
  // are left out (whether or not they repeat an earlier key), counted in
  // EncoderStats::attributes_dropped and written as the list's droppedAttributesCount (JSON) /
  // dropped_attributes_count (protobuf).
  // Default 128; valid range [0, 65536].
  std::size_t max_attributes_per_span = 128;

  // Empty when every field is in range; otherwise "<field>: <reason>" for the first field out
  // of range (first_error_text() of validate(EncoderLimits)). Thread-safe (const). Allocates
  // only for an error.
  [[nodiscard]] std::string validate() const;
};

// The rows describing EncoderLimits' fields (tracecast/settings.h). Thread-safe, no allocation.
[[nodiscard]] std::span<const Setting> encoder_settings() noexcept;

// Every field out of its range ("max_value_bytes: must be 4..16777216, got 2"). Thread-safe
// (pure). Allocates only for issues.
[[nodiscard]] std::vector<ValidationIssue> validate(const EncoderLimits& limits);

// Running totals since the encoder was constructed (never reset by begin()). Only work that
// ended up in the buffer is counted: an append that returned batch_full counts nothing, one
// that returned too_large counts only spans_too_large. Every span passed to append() lands in
// exactly one of: the batch (span_count()), spans_invalid_id, spans_too_large, or a
// batch_full return (the caller retries it).
struct EncoderStats {
  std::uint64_t invalid_utf8_replaced = 0;   // U+FFFD written in place of ill-formed input
  std::uint64_t values_truncated = 0;        // strings cut to max_value_bytes
  std::uint64_t duplicate_keys_skipped = 0;  // attributes left out: key seen earlier in the list
  std::uint64_t attributes_dropped = 0;      // attributes left out: over max_attributes_per_span
  std::uint64_t spans_too_large = 0;         // spans dropped: append returned too_large
  std::uint64_t spans_invalid_id = 0;        // spans skipped: all-zero trace id or span id
  std::uint64_t empty_values_skipped = 0;    // attributes left out: no value (ValueType::empty),
                                             // which strict receivers refuse; in droppedAttributesCount

  // Adds another encoder's totals (a pipeline with both encoders reports one sum).
  EncoderStats& operator+=(const EncoderStats& o) noexcept {
    invalid_utf8_replaced += o.invalid_utf8_replaced;
    values_truncated += o.values_truncated;
    duplicate_keys_skipped += o.duplicate_keys_skipped;
    attributes_dropped += o.attributes_dropped;
    spans_too_large += o.spans_too_large;
    spans_invalid_id += o.spans_invalid_id;
    empty_values_skipped += o.empty_values_skipped;
    return *this;
  }
};

enum class append_result : std::uint8_t { ok, batch_full, too_large };

}  // namespace tracecast
