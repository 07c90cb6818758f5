// OTLP/JSON encoder: writes an ExportTraceServiceRequest (opentelemetry-proto, "JSON Protobuf
// Encoding") straight into a caller-owned, fixed-capacity, reusable buffer. No heap allocation
// after construction.
//
// Wire shape written (one batch; spans of consecutive appends with an equal resource and scope
// share one entry):
//
//   {"resourceSpans":[
//     {"resource":{"attributes":[{"key":"k","value":{"stringValue":"v"}},...]},
//      "scopeSpans":[
//        {"scope":{"name":"tracecast","version":"0.1.0"},
//         "spans":[{"traceId":"<32 hex>","spanId":"<16 hex>","parentSpanId":"<16 hex>",
//                   "name":"chat gpt","kind":3,"startTimeUnixNano":"17..","endTimeUnixNano":"17..",
//                   "attributes":[...],"droppedAttributesCount":1,
//                   "status":{"message":"boom","code":2}}, ...]}]}, ...]}
//
// Rules (proto3 JSON mapping with the OTLP exceptions): keys lowerCamelCase; ids lowercase hex;
// 64-bit integers as decimal strings; enums as integers; doubles in shortest round-trip form,
// NaN / Infinity / -Infinity as those strings; fields holding their default value left out
// (an AnyValue member is a oneof and is always written, e.g. {"intValue":"0"}).
//
// Strings: '"', '\\' and every control character escaped; invalid UTF-8 replaced by U+FFFD
// (one per maximal ill-formed subpart, Unicode 3.9 "U+FFFD substitution of maximal subparts"),
// so the output is always valid UTF-8; a string longer than EncoderLimits::max_value_bytes is
// cut at a code point boundary, and the span it belongs to gets the attribute
// `tracecast.truncated` = true (the mark submit-time cuts get; not added twice, nor past
// max_attributes_per_span, nor under a max_value_bytes of 19; resource and scope strings cut
// mark no span). In one attribute list, an attribute whose key (after
// escaping) equals an earlier one is left out: the first occurrence wins.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <memory>

#include "tracecast/encoder_limits.h"
#include "tracecast/span.h"

namespace tracecast::detail {
class KeyIndex;
}  // namespace tracecast::detail

namespace tracecast {


// Not thread-safe: one encoder per thread (or external synchronisation). Reusable: begin()
// starts the next batch. All members but the constructor are noexcept and never allocate.
class OtlpJsonEncoder {
 public:
  // Allocates the small key index used for duplicate detection (max_attributes_per_span
  // entries), once. Throws std::invalid_argument when limits.validate() reports an error.
  explicit OtlpJsonEncoder(EncoderLimits limits = {});
  ~OtlpJsonEncoder();
  OtlpJsonEncoder(OtlpJsonEncoder&&) noexcept;
  OtlpJsonEncoder& operator=(OtlpJsonEncoder&&) noexcept;

  // Starts a new ExportTraceServiceRequest in the caller-owned `buffer`; the document may use
  // at most `budget` bytes (clamped to buffer.size()). The buffer must outlive the batch and
  // the view finish() returns. A budget below ~24 bytes cannot hold any span (every append
  // then returns too_large). `max_value_bytes` (0: limits().max_value_bytes) lowers the
  // value limit for this batch only (e.g. a destination's own limit; never raises it, at
  // least 4). Does not allocate; cannot fail.
  void begin(std::span<char> buffer, std::size_t budget, std::size_t max_value_bytes = 0) noexcept;

  // Appends spans that share one resource and scope (typically one gateway request: 1..3
  // spans), all or nothing. The views are read during the call only.
  //  ok:         written (spans with an all-zero trace or span id are skipped and counted in
  //              stats().spans_invalid_id; an empty group writes nothing and returns ok).
  //  batch_full: would exceed the budget and the batch already has spans: nothing written;
  //              finish() this batch and retry in a new one. Also returned after finish().
  //  too_large:  cannot fit even in an empty batch: nothing written, spans.size() added to
  //              stats().spans_too_large. Also returned when begin() was never called.
  // Consecutive appends whose resource and scope encode to the same bytes share one
  // resourceSpans / scopeSpans entry (equal non-consecutive resources get separate entries,
  // which OTLP allows). Does not allocate.
  [[nodiscard]] append_result append(const ResourceView& resource, const ScopeView& scope,
                                     std::span<const SpanView> spans) noexcept;

  // Closes the JSON document and returns it (a view into the buffer, valid until the next
  // begin() or until the buffer goes away). Never returns an empty request: with
  // span_count() == 0 it returns an empty view. Calling it again returns the same view.
  // Does not allocate.
  [[nodiscard]] std::string_view finish() noexcept;

  // Spans written into the current batch. Does not allocate.
  [[nodiscard]] std::size_t span_count() const noexcept { return span_count_; }
  // Bytes the document occupies now, including the closing brackets finish() will add.
  [[nodiscard]] std::size_t size_bytes() const noexcept;
  [[nodiscard]] const EncoderStats& stats() const noexcept { return stats_; }
  [[nodiscard]] const EncoderLimits& limits() const noexcept { return limits_; }
  // The limits of the current batch: limits() with begin()'s max_value_bytes.
  [[nodiscard]] const EncoderLimits& batch_limits() const noexcept { return batch_limits_; }

 private:
  enum class state : std::uint8_t { idle, open, finished };

  EncoderLimits limits_;
  EncoderLimits batch_limits_;
  EncoderStats stats_{};
  // Duplicate keys of the list being written (encode/src/key_index.h), sized at construction.
  std::unique_ptr<detail::KeyIndex> keys_;

  char* buf_ = nullptr;
  std::size_t budget_ = 0;
  std::size_t pos_ = 0;  // end of written bytes (without the pending closing brackets)
  std::size_t span_count_ = 0;
  // The current resourceSpans entry's encoded resource and scope, for grouping.
  std::size_t resource_off_ = 0, resource_len_ = 0;
  std::size_t scope_off_ = 0, scope_len_ = 0;
  std::size_t finished_size_ = 0;
  state state_ = state::idle;
};

}  // namespace tracecast
