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
// cut at a code point boundary. In one attribute list, an attribute whose key (after
// escaping) equals an earlier one is left out: the first occurrence wins.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "tracecast/span.h"

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
  // EncoderStats::attributes_dropped and written as the list's droppedAttributesCount.
  // Default 128; valid range [0, 65536].
  std::size_t max_attributes_per_span = 128;

  // Empty when every field is in range; otherwise names the field and the reason.
  // Thread-safe (const), does not allocate.
  [[nodiscard]] std::string_view validate() const noexcept;
};

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
};

enum class append_result : std::uint8_t { ok, batch_full, too_large };

// Not thread-safe: one encoder per thread (or external synchronisation). Reusable: begin()
// starts the next batch. All members but the constructor are noexcept and never allocate.
class OtlpJsonEncoder {
 public:
  // Allocates the small key index used for duplicate detection (max_attributes_per_span
  // entries), once. Throws std::invalid_argument when limits.validate() reports an error.
  explicit OtlpJsonEncoder(EncoderLimits limits = {});

  // Starts a new ExportTraceServiceRequest in the caller-owned `buffer`; the document may use
  // at most `budget` bytes (clamped to buffer.size()). The buffer must outlive the batch and
  // the view finish() returns. A budget below ~24 bytes cannot hold any span (every append
  // then returns too_large). Does not allocate; cannot fail.
  void begin(std::span<char> buffer, std::size_t budget) noexcept;

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

 private:
  struct KeyRef {
    const char* data;  // the escaped key in the buffer
    std::size_t size;
    std::size_t slot;  // its slot in key_slots_ (long lists only)
  };
  enum class state : std::uint8_t { idle, open, finished };

  EncoderLimits limits_;
  EncoderStats stats_{};
  std::vector<KeyRef> keys_;  // emitted keys of the list being written (capacity fixed)
  // Open-addressing index into keys_ (index + 1, 0 = free) for long lists, so duplicate
  // detection stays linear; all zero between lists. Sized at construction.
  std::vector<std::uint32_t> key_slots_;

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
