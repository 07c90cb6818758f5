#include "tracecast/otlp_json.h"

#include <emmintrin.h>  // SSE2: part of the x86-64 baseline

#include <charconv>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "append_checks.h"
#include "json_escape.h"
#include "key_index.h"

namespace tracecast {
namespace {

// `]` spans, `}` scopeSpans entry, `]` scopeSpans, `}` resourceSpans entry, `]` resourceSpans,
// `}` document: reserved from the budget so finish() always fits.
constexpr char k_close[] = "]}]}]}";
constexpr std::size_t k_close_len = sizeof(k_close) - 1;
constexpr char k_open[] = "{\"resourceSpans\":[";
constexpr std::size_t k_open_len = sizeof(k_open) - 1;
// Written before a new resourceSpans entry when one is open: closes spans, scopeSpans entry,
// scopeSpans, resourceSpans entry.
constexpr char k_next_resource[] = "]}]},";
constexpr std::size_t k_next_resource_len = sizeof(k_next_resource) - 1;


// Two lowercase hex digits per byte value.
struct HexTable {
  char pairs[256][2];
  constexpr HexTable() : pairs{} {
    constexpr char digits[] = "0123456789abcdef";
    for (int i = 0; i < 256; ++i) {
      pairs[i][0] = digits[i >> 4];
      pairs[i][1] = digits[i & 0xf];
    }
  }
};
constexpr HexTable k_hex{};

// A bounded cursor into the batch buffer. Every write checks the space left; the first write
// that does not fit sets `overflow` and pins `end` to the cursor, so every later non-empty
// write fails as well (a sticky error, checked once at the end of an append).
class Writer {
 public:
  Writer(char* p, char* end, const EncoderLimits& limits, EncoderStats& stats) noexcept
      : p_(p), end_(end), limits_(limits), stats_(stats) {}

  [[nodiscard]] bool overflow() const noexcept { return overflow_; }
  [[nodiscard]] char* pos() const noexcept { return p_; }
  void rewind(char* p) noexcept { p_ = p; }
  // Whether a string was cut to max_value_bytes since the last call (then cleared): the
  // span being written gets tracecast.truncated.
  [[nodiscard]] bool take_cut() noexcept {
    const bool c = cut_;
    cut_ = false;
    return c;
  }

  template <std::size_t N>
  void lit(const char (&s)[N]) noexcept {
    constexpr std::size_t n = N - 1;
    if (!reserve(n)) return;
    std::memcpy(p_, s, n);
    p_ += n;
  }
  void ch(char c) noexcept {
    if (!reserve(1)) return;
    *p_++ = c;
  }
  void raw(const char* s, std::size_t n) noexcept {
    if (!reserve(n)) return;
    std::memcpy(p_, s, n);
    p_ += n;
  }

  // A JSON string: quotes, escaping, UTF-8 repair, truncation to max_value_bytes.
  // Writes s quoted and escaped. True when the bytes between the quotes are exactly s (not
  // cut, nothing escaped or repaired: escapes only lengthen, only a repair could even out).
  bool str(std::string_view s) noexcept {
    std::size_t n = s.size();
    if (n > limits_.max_value_bytes) {
      n = detail::utf8_cut(s.data(), limits_.max_value_bytes);
      ++stats_.values_truncated;
      cut_ = true;
    }
    if (!reserve(2)) return false;
    *p_++ = '"';
    if (char* const e = detail::copy_plain_short(s.data(), n, p_, end_ - 1)) {
      p_ = e;
      *p_++ = '"';
      return n == s.size();
    }
    char* const start = p_;
    const detail::EscapeResult r = detail::escape_json(s.data(), n, p_, end_ - 1);
    if (r.out == nullptr) {
      fail();
      return false;
    }
    stats_.invalid_utf8_replaced += r.replaced;
    p_ = r.out;
    *p_++ = '"';  // the escape stopped one byte short of end_, so this fits
    return n == s.size() && r.replaced == 0 && static_cast<std::size_t>(r.out - start) == n;
  }

  void u64(std::uint64_t v) noexcept {
    if (!reserve(20)) return;
    p_ = std::to_chars(p_, p_ + 20, v).ptr;
  }
  void i64(std::int64_t v) noexcept {
    if (!reserve(20)) return;
    p_ = std::to_chars(p_, p_ + 20, v).ptr;
  }
  // A uint64 as a JSON string (proto3 JSON: 64-bit integers are strings).
  void u64_quoted(std::uint64_t v) noexcept {
    if (!reserve(22)) return;
    *p_++ = '"';
    p_ = std::to_chars(p_, p_ + 20, v).ptr;
    *p_++ = '"';
  }
  void i64_quoted(std::int64_t v) noexcept {
    if (!reserve(22)) return;
    *p_++ = '"';
    p_ = std::to_chars(p_, p_ + 20, v).ptr;
    *p_++ = '"';
  }
  // Shortest round-trip form; NaN and infinities as the proto3 JSON strings.
  void f64(double d) noexcept {
    if (std::isnan(d)) return lit("\"NaN\"");
    if (std::isinf(d)) return d > 0 ? lit("\"Infinity\"") : lit("\"-Infinity\"");
    // "-0" is an integer to many parsers, which drop its sign: keep it a float.
    if (d == 0 && std::signbit(d)) return lit("-0.0");
    // 24 characters hold every shortest double ("-2.2250738585072014e-308").
    if (!reserve(32)) return;
    // Shortest form picks plain digits for integral values up to ~1e21, and parsers that
    // read a number without '.' or 'e' as an integer fail beyond 64 bits (simdjson does):
    // keep those in scientific form, which every parser reads as a double.
    if (std::fabs(d) >= 9.2e18)
      p_ = std::to_chars(p_, p_ + 32, d, std::chars_format::scientific).ptr;
    else
      p_ = std::to_chars(p_, p_ + 32, d).ptr;
  }
  template <std::size_t N>
  void hex_quoted(const std::array<std::uint8_t, N>& bytes) noexcept {
    if (!reserve(2 * N + 2)) return;
    *p_++ = '"';
    for (std::size_t i = 0; i < N; ++i) {
      std::memcpy(p_, k_hex.pairs[bytes[i]], 2);
      p_ += 2;
    }
    *p_++ = '"';
  }

 private:
  [[nodiscard]] bool reserve(std::size_t n) noexcept {
    if (end_ - p_ >= static_cast<std::ptrdiff_t>(n)) [[likely]]
      return true;
    fail();
    return false;
  }
  void fail() noexcept {
    overflow_ = true;
    end_ = p_;
  }

  char* p_;
  char* end_;
  const EncoderLimits& limits_;
  EncoderStats& stats_;
  bool overflow_ = false;
  bool cut_ = false;
};

void write_value(Writer& w, const AttributeValue& v) noexcept {
  switch (v.type()) {
    case ValueType::empty:
      w.lit("{}");
      return;
    case ValueType::string:
      w.lit("{\"stringValue\":");
      w.str(v.as_string());
      w.ch('}');
      return;
    case ValueType::boolean:
      if (v.as_bool())
        w.lit("{\"boolValue\":true}");
      else
        w.lit("{\"boolValue\":false}");
      return;
    case ValueType::int64:
      w.lit("{\"intValue\":");
      w.i64_quoted(v.as_int64());
      w.ch('}');
      return;
    case ValueType::float64:
      w.lit("{\"doubleValue\":");
      w.f64(v.as_double());
      w.ch('}');
      return;
    default:
      break;
  }
  // Arrays: {"arrayValue":{"values":[...]}}; an empty array holds no `values` (default).
  std::size_t n = 0;
  switch (v.type()) {
    case ValueType::string_array: n = v.as_strings().size(); break;
    case ValueType::bool_array: n = v.as_bools().size(); break;
    case ValueType::int64_array: n = v.as_int64s().size(); break;
    case ValueType::float64_array: n = v.as_doubles().size(); break;
    default: break;
  }
  if (n == 0) {
    w.lit("{\"arrayValue\":{}}");
    return;
  }
  w.lit("{\"arrayValue\":{\"values\":[");
  for (std::size_t i = 0; i < n; ++i) {
    if (i != 0) w.ch(',');
    switch (v.type()) {
      case ValueType::string_array:
        w.lit("{\"stringValue\":");
        w.str(v.as_strings()[i]);
        w.ch('}');
        break;
      case ValueType::bool_array:
        if (v.as_bools()[i])
          w.lit("{\"boolValue\":true}");
        else
          w.lit("{\"boolValue\":false}");
        break;
      case ValueType::int64_array:
        w.lit("{\"intValue\":");
        w.i64_quoted(v.as_int64s()[i]);
        w.ch('}');
        break;
      case ValueType::float64_array:
        w.lit("{\"doubleValue\":");
        w.f64(v.as_doubles()[i]);
        w.ch('}');
        break;
      default:
        break;
    }
  }
  w.lit("]}}");
}

}  // namespace

namespace {
const EncoderLimits& checked(const EncoderLimits& limits) {
  if (std::string err = limits.validate(); !err.empty()) throw std::invalid_argument("EncoderLimits." + err);
  return limits;
}
}  // namespace

OtlpJsonEncoder::OtlpJsonEncoder(EncoderLimits limits)
    : limits_(checked(limits)),
      batch_limits_(limits_),
      keys_(std::make_unique<detail::KeyIndex>(limits_.max_attributes_per_span)) {}
OtlpJsonEncoder::~OtlpJsonEncoder() = default;
OtlpJsonEncoder::OtlpJsonEncoder(OtlpJsonEncoder&&) noexcept = default;
OtlpJsonEncoder& OtlpJsonEncoder::operator=(OtlpJsonEncoder&&) noexcept = default;

void OtlpJsonEncoder::begin(std::span<char> buffer, std::size_t budget, std::size_t max_value_bytes) noexcept {
  batch_limits_ = detail::batch_limits(limits_, max_value_bytes);
  buf_ = buffer.data();
  budget_ = budget < buffer.size() ? budget : buffer.size();
  span_count_ = 0;
  resource_off_ = resource_len_ = scope_off_ = scope_len_ = 0;
  finished_size_ = 0;
  state_ = state::open;
  if (budget_ >= k_open_len + k_close_len) {
    std::memcpy(buf_, k_open, k_open_len);
    pos_ = k_open_len;
  } else {
    budget_ = 0;  // nothing fits: every append reports too_large
    pos_ = 0;
  }
}

std::size_t OtlpJsonEncoder::size_bytes() const noexcept {
  if (state_ == state::finished) return finished_size_;
  return span_count_ == 0 ? 0 : pos_ + k_close_len;
}

std::string_view OtlpJsonEncoder::finish() noexcept {
  if (state_ == state::finished) return {buf_, finished_size_};
  if (state_ != state::open || span_count_ == 0) return {};
  std::memcpy(buf_ + pos_, k_close, k_close_len);  // space reserved by append
  finished_size_ = pos_ + k_close_len;
  state_ = state::finished;
  return {buf_, finished_size_};
}

namespace {

// Writes `"attributes":[...]` (with `lead` before it) and `,"droppedAttributesCount":N`.
// Returns true when anything was written. Duplicate keys are found by comparing the escaped
// key bytes already in the buffer: escaping is canonical, so equal bytes <=> equal keys.
// A span's list (`span_list`) ends with detail::k_cut_mark when a value of the span was cut
// (its name before, `cut_after` its status message after, or one of these attributes).
// `unique`: the list keeps SpanView::keys_unique's promise and no key can be cut, so the
// duplicate-key index is skipped (the cut mark is still never written twice).
bool write_attributes(Writer& w, std::span<const Attribute> attrs, const char* lead,
                      std::size_t lead_len, detail::KeyIndex& keys,
                      const EncoderLimits& limits, EncoderStats& stats,
                      bool span_list = false, bool cut_after = false, bool unique = false) noexcept {
  const bool cut_before = span_list && w.take_cut();
  if (attrs.empty() && !cut_before && !cut_after) return false;
  const std::size_t max = limits.max_attributes_per_span;
  detail::AttributeAdmission admission(max, stats);
  const detail::KeyIndex::List list(keys, unique ? 0 : attrs.size());
  // false: the buffer is full (the append fails as a whole).
  auto write_one = [&](const Attribute& a) noexcept {
    if (!admission.admit(a)) return true;
    char* const attr_start = w.pos();
    if (admission.written() != 0) w.ch(',');
    w.lit("{\"key\":");
    const char* const key_start = w.pos();
    const bool verbatim = w.str(a.key);
    if (w.overflow()) return false;
    if (unique) {
      w.lit(",\"value\":");
      write_value(w, a.value);
      w.ch('}');
      admission.wrote();
      return true;
    }
    // The key between its quotes; fingerprinted from the input when it was copied as is
    // (reading back bytes just written by wider, overlapping stores stalls on
    // store-to-load forwarding: most of the index's time on a long list).
    const char* const inner = key_start + 1;
    const auto inner_size = static_cast<std::size_t>(w.pos() - key_start) - 2;
    if (keys.seen_or_add(inner, inner_size, verbatim ? a.key.data() : inner)) {
      w.rewind(attr_start);
      ++stats.duplicate_keys_skipped;
      return true;
    }
    w.lit(",\"value\":");
    write_value(w, a.value);
    w.ch('}');
    admission.wrote();
    return true;
  };
  if (max != 0) {
    w.raw(lead, lead_len);
    w.lit("\"attributes\":[");
    for (const Attribute& a : attrs)
      if (!write_one(a)) return true;
    if (span_list && (cut_before || w.take_cut() || cut_after) && admission.written() < max &&
        limits.max_value_bytes >= detail::k_cut_mark.key.size()) {
      // Not counted as a duplicate when the mapping already marked the span.
      char* const mark_start = w.pos();
      const std::uint64_t duplicates = stats.duplicate_keys_skipped;
      bool marked = false;
      if (unique)  // no index to ask: the list itself (a cut is rare; the scan is short)
        for (const Attribute& a : attrs) marked = marked || a.key == detail::k_cut_mark.key;
      if (!marked && !write_one(detail::k_cut_mark)) return true;
      if (stats.duplicate_keys_skipped != duplicates) {
        stats.duplicate_keys_skipped = duplicates;
        w.rewind(mark_start);
      }
    }
    w.ch(']');
  } else {
    for (const Attribute& a : attrs) (void)admission.admit(a);  // all left out, counted
  }
  const std::size_t dropped = admission.finish();
  if (max == 0) {
    // Nothing to say (no attribute, only a cut mark that may not be written either): no
    // lead, or the span gets an empty member (",," — found by fuzz_encode).
    if (dropped == 0) return false;
    w.raw(lead, lead_len);
  }
  if (dropped != 0) {
    if (max != 0) w.ch(',');
    w.lit("\"droppedAttributesCount\":");
    w.u64(dropped);
  }
  return true;
}

}  // namespace

append_result OtlpJsonEncoder::append(const ResourceView& resource, const ScopeView& scope,
                                      std::span<const SpanView> spans) noexcept {
  const std::size_t valid = detail::writable_spans(spans);
  if (const auto early = detail::append_early_result(state_ == state::idle, state_ == state::finished, spans, valid, stats_))
    return *early;

  const EncoderStats saved_stats = stats_;
  const std::size_t limit = budget_ - k_close_len;  // budget_ is 0 or >= open + close
  const std::size_t prefix = span_count_ == 0 ? 0 : k_next_resource_len;
  auto fail = [&]() noexcept {
    stats_ = saved_stats;
    if (span_count_ != 0) return append_result::batch_full;
    stats_.spans_too_large += spans.size();
    return append_result::too_large;
  };
  if (budget_ == 0 || pos_ + prefix > limit) return fail();

  // Encode the group's header where a new resourceSpans entry would start, then compare it
  // with the open entry's header: equal resource (and scope) -> continue the open entry.
  Writer w(buf_ + pos_ + prefix, buf_ + limit, batch_limits_, stats_);
  w.ch('{');
  char* const res_start = w.pos();
  if (write_attributes(w, resource.attributes, "\"resource\":{", 12, *keys_, batch_limits_, stats_))
    w.lit("},");
  char* const res_end = w.pos();
  w.lit("\"scopeSpans\":[{");
  char* scope_start = w.pos();
  auto write_scope = [&]() noexcept {
    if (scope.name.empty() && scope.version.empty()) return;
    w.lit("\"scope\":{");
    if (!scope.name.empty()) {
      w.lit("\"name\":");
      w.str(scope.name);
    }
    if (!scope.version.empty()) {
      if (!scope.name.empty()) w.ch(',');
      w.lit("\"version\":");
      w.str(scope.version);
    }
    w.lit("},");
  };
  write_scope();
  char* scope_end = w.pos();
  w.lit("\"spans\":[");
  if (w.overflow()) return fail();

  const std::size_t res_len = static_cast<std::size_t>(res_end - res_start);
  std::size_t scope_len = static_cast<std::size_t>(scope_end - scope_start);
  bool first_in_list = true;
  const bool same_resource = span_count_ != 0 && res_len == resource_len_ &&
                             std::memcmp(res_start, buf_ + resource_off_, res_len) == 0;
  if (same_resource) {
    // The header just written is discarded, and so are the stats it counted.
    stats_ = saved_stats;
    w.rewind(buf_ + pos_);
    if (scope_len == scope_len_ && std::memcmp(scope_start, buf_ + scope_off_, scope_len) == 0) {
      first_in_list = false;  // continue the open spans list
      scope_start = buf_ + scope_off_;
    } else {
      // Same resource, new scope: close spans and the scopeSpans entry, open another.
      w.lit("]},{");
      scope_start = w.pos();
      write_scope();
      scope_end = w.pos();
      scope_len = static_cast<std::size_t>(scope_end - scope_start);
      w.lit("\"spans\":[");
      if (w.overflow()) return fail();
    }
  } else if (prefix != 0) {
    std::memcpy(buf_ + pos_, k_next_resource, k_next_resource_len);
  }

  for (const SpanView& s : spans) {
    if (!(s.trace_id.valid() && s.span_id.valid())) continue;
    (void)w.take_cut();  // cuts of the resource, the scope or the span before: not this span's
    if (!first_in_list) w.ch(',');
    first_in_list = false;
    w.lit("{\"traceId\":");
    w.hex_quoted(s.trace_id.bytes);
    w.lit(",\"spanId\":");
    w.hex_quoted(s.span_id.bytes);
    if (s.parent_span_id.valid()) {
      w.lit(",\"parentSpanId\":");
      w.hex_quoted(s.parent_span_id.bytes);
    }
    if (!s.name.empty()) {
      w.lit(",\"name\":");
      w.str(s.name);
    }
    if (s.kind != SpanKind::unspecified) {
      w.lit(",\"kind\":");
      w.u64(static_cast<std::uint64_t>(s.kind));
    }
    if (s.start_unix_nano != 0) {
      w.lit(",\"startTimeUnixNano\":");
      w.u64_quoted(s.start_unix_nano);
    }
    if (s.end_unix_nano != 0) {
      w.lit(",\"endTimeUnixNano\":");
      w.u64_quoted(s.end_unix_nano);
    }
    write_attributes(w, s.attributes, ",", 1, *keys_, batch_limits_, stats_, /*span_list=*/true,
                     s.status_message.size() > batch_limits_.max_value_bytes,
                     s.keys_unique && batch_limits_.max_value_bytes >= k_unique_key_max_bytes);
    if (s.status_code != StatusCode::unset || !s.status_message.empty()) {
      w.lit(",\"status\":{");
      if (!s.status_message.empty()) {
        w.lit("\"message\":");
        w.str(s.status_message);
      }
      if (s.status_code != StatusCode::unset) {
        if (!s.status_message.empty()) w.ch(',');
        w.lit("\"code\":");
        w.u64(static_cast<std::uint64_t>(s.status_code));
      }
      w.ch('}');
    }
    w.ch('}');
  }
  if (w.overflow()) return fail();

  if (!same_resource) {
    resource_off_ = static_cast<std::size_t>(res_start - buf_);
    resource_len_ = res_len;
  }
  scope_off_ = static_cast<std::size_t>(scope_start - buf_);
  scope_len_ = scope_len;
  stats_.spans_invalid_id += spans.size() - valid;
  span_count_ += valid;
  pos_ = static_cast<std::size_t>(w.pos() - buf_);
  return append_result::ok;
}

}  // namespace tracecast
