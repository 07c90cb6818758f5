// The span model: ids, typed attribute values, and non-owning views of a span, its resource
// and its instrumentation scope. Everything here is a view (no ownership, no allocation);
// whoever builds a view keeps the bytes it points at alive while the view is used.
//
// The encoder (tracecast::encode) writes these views as OTLP/JSON; the LLM request mapping
// (tracecast/mapping.h) produces them from an LlmRequest.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace tracecast {

// 128-bit trace id. All-zero is invalid (OTLP: "MUST NOT be all zeroes").
struct TraceId {
  std::array<std::uint8_t, 16> bytes{};

  [[nodiscard]] constexpr bool valid() const noexcept {
    for (auto b : bytes)
      if (b != 0) return true;
    return false;
  }
  // Parses exactly 32 hex digits (either case). Returns an invalid (all-zero) id otherwise,
  // including for a well-formed all-zero string. Does not allocate.
  [[nodiscard]] static TraceId from_hex(std::string_view hex) noexcept;
  // Writes 32 lowercase hex digits to out. Does not allocate.
  void to_hex(char (&out)[32]) const noexcept;
  friend constexpr bool operator==(const TraceId&, const TraceId&) = default;
};

// 64-bit span id. All-zero means "none" (no parent) and is never written as a span's own id.
struct SpanId {
  std::array<std::uint8_t, 8> bytes{};

  [[nodiscard]] constexpr bool valid() const noexcept {
    for (auto b : bytes)
      if (b != 0) return true;
    return false;
  }
  // Parses exactly 16 hex digits (either case); invalid (all-zero) id otherwise.
  [[nodiscard]] static SpanId from_hex(std::string_view hex) noexcept;
  void to_hex(char (&out)[16]) const noexcept;
  [[nodiscard]] static constexpr SpanId from_u64(std::uint64_t v) noexcept {
    SpanId id;
    for (int i = 7; i >= 0; --i) {
      id.bytes[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v & 0xff);
      v >>= 8;
    }
    return id;
  }
  friend constexpr bool operator==(const SpanId&, const SpanId&) = default;
};

// OTLP Span.SpanKind (written as its integer value).
enum class SpanKind : std::uint8_t {
  unspecified = 0,
  internal = 1,
  server = 2,
  client = 3,
  producer = 4,
  consumer = 5,
};

// OTLP Status.StatusCode (written as its integer value).
enum class StatusCode : std::uint8_t { unset = 0, ok = 1, error = 2 };

enum class ValueType : std::uint8_t {
  empty,  // no value: the encoder leaves such an attribute out (strict receivers refuse {})
  string,
  boolean,
  int64,
  float64,
  string_array,
  bool_array,
  int64_array,
  float64_array,
};

// A typed attribute value (OTLP AnyValue subset). A view: strings and arrays point at
// memory the caller keeps alive. Trivially copyable, 24 bytes.
class AttributeValue {
 public:
  constexpr AttributeValue() noexcept : type_(ValueType::empty), i_(0) {}

  static constexpr AttributeValue string(std::string_view s) noexcept {
    AttributeValue v;
    v.type_ = ValueType::string;
    v.arr_ = Array{s.data(), s.size()};
    return v;
  }
  static constexpr AttributeValue boolean(bool b) noexcept {
    AttributeValue v;
    v.type_ = ValueType::boolean;
    v.b_ = b;
    return v;
  }
  static constexpr AttributeValue int64(std::int64_t i) noexcept {
    AttributeValue v;
    v.type_ = ValueType::int64;
    v.i_ = i;
    return v;
  }
  static constexpr AttributeValue float64(double d) noexcept {
    AttributeValue v;
    v.type_ = ValueType::float64;
    v.d_ = d;
    return v;
  }
  static constexpr AttributeValue strings(std::span<const std::string_view> a) noexcept {
    return array(ValueType::string_array, a.data(), a.size());
  }
  static constexpr AttributeValue bools(std::span<const bool> a) noexcept {
    return array(ValueType::bool_array, a.data(), a.size());
  }
  static constexpr AttributeValue int64s(std::span<const std::int64_t> a) noexcept {
    return array(ValueType::int64_array, a.data(), a.size());
  }
  static constexpr AttributeValue float64s(std::span<const double> a) noexcept {
    return array(ValueType::float64_array, a.data(), a.size());
  }

  [[nodiscard]] constexpr ValueType type() const noexcept { return type_; }
  // Accessors: valid only for the matching type().
  [[nodiscard]] std::string_view as_string() const noexcept {
    return {static_cast<const char*>(arr_.ptr), arr_.size};
  }
  [[nodiscard]] constexpr bool as_bool() const noexcept { return b_; }
  [[nodiscard]] constexpr std::int64_t as_int64() const noexcept { return i_; }
  [[nodiscard]] constexpr double as_double() const noexcept { return d_; }
  [[nodiscard]] std::span<const std::string_view> as_strings() const noexcept {
    return {static_cast<const std::string_view*>(arr_.ptr), arr_.size};
  }
  [[nodiscard]] std::span<const bool> as_bools() const noexcept {
    return {static_cast<const bool*>(arr_.ptr), arr_.size};
  }
  [[nodiscard]] std::span<const std::int64_t> as_int64s() const noexcept {
    return {static_cast<const std::int64_t*>(arr_.ptr), arr_.size};
  }
  [[nodiscard]] std::span<const double> as_doubles() const noexcept {
    return {static_cast<const double*>(arr_.ptr), arr_.size};
  }

 private:
  static constexpr AttributeValue array(ValueType t, const void* p, std::size_t n) noexcept {
    AttributeValue v;
    v.type_ = t;
    v.arr_ = Array{p, n};
    return v;
  }

  ValueType type_;
  struct Array {
    const void* ptr;
    std::size_t size;
  };
  union {
    Array arr_;
    bool b_;
    std::int64_t i_;
    double d_;
  };
};

struct Attribute {
  std::string_view key;
  AttributeValue value;
};

// InstrumentationScope.
struct ScopeView {
  std::string_view name;
  std::string_view version;
};

// Resource: its attributes. Two resources are the same when their attribute lists are equal.
struct ResourceView {
  std::span<const Attribute> attributes;
};

struct SpanView {
  TraceId trace_id;
  SpanId span_id;
  SpanId parent_span_id;  // all-zero: a root span (field left out of the output)
  std::string_view name;
  SpanKind kind = SpanKind::internal;
  StatusCode status_code = StatusCode::unset;
  std::string_view status_message;
  std::uint64_t start_unix_nano = 0;
  std::uint64_t end_unix_nano = 0;
  std::span<const Attribute> attributes;
  // A promise of the producer (map_request() makes it when it can): no two attributes share
  // a key, and every key is valid UTF-8 of at most k_unique_key_max_bytes. The encoders then
  // skip their duplicate-key check (one hash and probe per attribute: ~11% of encoding the
  // canonical span, ~24% with every attribute convention), unless their value limit is below
  // k_unique_key_max_bytes (a key cut to the limit could equal another). Left false (the
  // default), keys are checked and the first of equal keys wins. A false promise gives a list
  // with a repeated key, which OTLP forbids.
  bool keys_unique = false;
};

// Longest key a SpanView::keys_unique list may hold, in bytes.
inline constexpr std::size_t k_unique_key_max_bytes = 255;

}  // namespace tracecast
