// OTLP/protobuf encoder: writes an ExportTraceServiceRequest in the protobuf binary wire
// format (opentelemetry-proto collector/trace/v1/trace_service.proto, trace/v1/trace.proto,
// common/v1/common.proto, resource/v1/resource.proto) straight into a caller-owned,
// fixed-capacity, reusable buffer, for `Content-Type: application/x-protobuf`. Same contract
// as OtlpJsonEncoder (tracecast/otlp_json.h): byte budget, all-or-nothing appends, the same
// limits and counters (tracecast/encoder_limits.h), no heap allocation after construction.
//
// Wire shape written (field number: type; "len" = a length-delimited field):
//
//   ExportTraceServiceRequest
//     1 resource_spans: len (length prefix 4 bytes wide, see below)  -- one per resource group
//       1 resource: len { 1 attributes: len KeyValue..., 2 dropped_attributes_count: varint }
//       2 scope_spans: len (4 bytes wide)                             -- one per scope
//         1 scope: len { 1 name: string, 2 version: string }
//         2 spans: len Span...
//   Span  { 1 trace_id: 16 bytes, 2 span_id: 8 bytes, 4 parent_span_id: 8 bytes (when set),
//           5 name, 6 kind: varint, 7 start_time_unix_nano: fixed64, 8 end_time_unix_nano:
//           fixed64, 9 attributes: len KeyValue..., 10 dropped_attributes_count: varint,
//           15 status: len { 2 message: string, 3 code: varint } }
//   KeyValue { 1 key: string, 2 value: len AnyValue }
//   AnyValue { oneof: 1 string_value, 2 bool_value, 3 int_value (varint, two's complement),
//              4 double_value (fixed64), 5 array_value: len ArrayValue { 1 values: len AnyValue... } }
//
// Fields holding their proto3 default are left out (an AnyValue member is a oneof and always
// written, e.g. int_value 0; an unset value is an empty AnyValue).
//
// Length prefixes: strings, KeyValue, AnyValue, ArrayValue and Status have their exact size
// computed before they are written (a string's size after its cut and UTF-8 repair). A Span's
// and a Resource's prefix is reserved 2 bytes wide (1 when at most 128 bytes are left) and
// patched afterwards; one of 16 KiB or more is widened by moving its content (one memmove, only
// for prompt-sized spans); resource_spans and scope_spans, which grow as appends join them, get 4-byte
// prefixes patched after every append. A prefix wider than its value needs is a varint with
// redundant 0x80 continuation bytes, which the protobuf wire format accepts (every parser
// reads up to 10 varint bytes); see README "Design" for the measured choice.
//
// Strings: invalid UTF-8 replaced by U+FFFD (one per maximal ill-formed subpart), so every
// `string` field is valid UTF-8 as proto3 requires; longer than EncoderLimits::max_value_bytes:
// cut at a code point boundary, and the span gets `tracecast.truncated` = true (as in the JSON
// encoder). Duplicate keys in one attribute list: the first wins.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "tracecast/encoder_limits.h"
#include "tracecast/span.h"

namespace tracecast {

namespace detail {
class KeyIndex;
}  // namespace detail

// Not thread-safe: one encoder per thread (or external synchronisation). Reusable: begin()
// starts the next batch. All members but the constructor are noexcept and never allocate.
class OtlpProtobufEncoder {
 public:
  // The largest budget: a 4-byte varint length prefix holds at most 2^28 - 1.
  static constexpr std::size_t k_max_budget = (std::size_t{1} << 28) - 1;

  // Allocates the small key index used for duplicate detection, once. Throws
  // std::invalid_argument when limits.validate() reports an error.
  explicit OtlpProtobufEncoder(EncoderLimits limits = {});
  ~OtlpProtobufEncoder();
  OtlpProtobufEncoder(OtlpProtobufEncoder&&) noexcept;
  OtlpProtobufEncoder& operator=(OtlpProtobufEncoder&&) noexcept;

  // Starts a new ExportTraceServiceRequest in the caller-owned `buffer`; the message may use
  // at most `budget` bytes (clamped to buffer.size() and k_max_budget). The buffer must
  // outlive the batch and the view finish() returns. `max_value_bytes` (0:
  // limits().max_value_bytes) lowers the value limit for this batch only (e.g. a
  // destination's own limit; never raises it, at least 4). Does not allocate; cannot fail.
  void begin(std::span<char> buffer, std::size_t budget, std::size_t max_value_bytes = 0) noexcept;

  // Appends spans that share one resource and scope, all or nothing; same results as
  // OtlpJsonEncoder::append:
  //  ok:         written (spans with an all-zero trace or span id skipped, counted in
  //              stats().spans_invalid_id; an empty group writes nothing and returns ok).
  //  batch_full: would exceed the budget and the batch already has spans: nothing written
  //              (the buffer past size_bytes() may have been scribbled on). Also after finish().
  //  too_large:  cannot fit even in an empty batch: nothing written, spans.size() added to
  //              stats().spans_too_large. Also returned when begin() was never called.
  // Consecutive appends whose resource and scope encode to the same bytes share one
  // resource_spans / scope_spans entry. The views are read during the call only.
  [[nodiscard]] append_result append(const ResourceView& resource, const ScopeView& scope,
                                     std::span<const SpanView> spans) noexcept;

  // Returns the serialized request (a view into the buffer, valid until the next begin()).
  // Empty when span_count() == 0 (never an empty request). Calling it again returns the same.
  [[nodiscard]] std::string_view finish() noexcept;

  [[nodiscard]] std::size_t span_count() const noexcept { return span_count_; }
  // Bytes the message occupies now (what finish() would return).
  [[nodiscard]] std::size_t size_bytes() const noexcept { return span_count_ == 0 ? 0 : pos_; }
  [[nodiscard]] const EncoderStats& stats() const noexcept { return stats_; }
  [[nodiscard]] const EncoderLimits& limits() const noexcept { return limits_; }
  // The limits of the current batch: limits() with begin()'s max_value_bytes.
  [[nodiscard]] const EncoderLimits& batch_limits() const noexcept { return batch_limits_; }

 private:
  enum class state : std::uint8_t { idle, open, finished };

  EncoderLimits limits_;
  EncoderLimits batch_limits_;
  EncoderStats stats_{};
  std::unique_ptr<detail::KeyIndex> keys_;

  char* buf_ = nullptr;
  std::size_t budget_ = 0;
  std::size_t pos_ = 0;  // end of written bytes
  std::size_t span_count_ = 0;
  // The open resource_spans / scope_spans entries: where their 4-byte length prefixes are
  // (the entry's content starts right after), and their encoded resource / scope for grouping.
  std::size_t rs_len_off_ = 0, ss_len_off_ = 0;
  std::size_t resource_off_ = 0, resource_len_ = 0;
  std::size_t scope_off_ = 0, scope_len_ = 0;
  state state_ = state::idle;
};

}  // namespace tracecast
