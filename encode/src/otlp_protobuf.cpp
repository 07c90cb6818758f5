#include "tracecast/otlp_protobuf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>
#include <string>

#include "append_checks.h"
#include "key_index.h"
#include "utf8_repair.h"

namespace tracecast {
namespace {

// Tags (field number << 3 | wire type) of the fields written. Wire types: 0 varint,
// 1 fixed64, 2 length-delimited.
constexpr char k_request_resource_spans = 0x0A;  // ExportTraceServiceRequest.resource_spans = 1
constexpr char k_rs_resource = 0x0A;             // ResourceSpans.resource = 1
constexpr char k_rs_scope_spans = 0x12;          // ResourceSpans.scope_spans = 2
constexpr char k_resource_attributes = 0x0A;     // Resource.attributes = 1
constexpr char k_resource_dropped = 0x10;        // Resource.dropped_attributes_count = 2
constexpr char k_ss_scope = 0x0A;                // ScopeSpans.scope = 1
constexpr char k_ss_spans = 0x12;                // ScopeSpans.spans = 2
constexpr char k_scope_name = 0x0A;              // InstrumentationScope.name = 1
constexpr char k_scope_version = 0x12;           // InstrumentationScope.version = 2
constexpr char k_span_trace_id = 0x0A;           // Span.trace_id = 1 (bytes)
constexpr char k_span_span_id = 0x12;            // Span.span_id = 2 (bytes)
constexpr char k_span_parent = 0x22;             // Span.parent_span_id = 4 (bytes)
constexpr char k_span_name = 0x2A;               // Span.name = 5
constexpr char k_span_kind = 0x30;               // Span.kind = 6 (enum)
constexpr char k_span_start = 0x39;              // Span.start_time_unix_nano = 7 (fixed64)
constexpr char k_span_end = 0x41;                // Span.end_time_unix_nano = 8 (fixed64)
constexpr char k_span_attributes = 0x4A;         // Span.attributes = 9
constexpr char k_span_dropped = 0x50;            // Span.dropped_attributes_count = 10
constexpr char k_span_status = 0x7A;             // Span.status = 15
constexpr char k_status_message = 0x12;          // Status.message = 2
constexpr char k_status_code = 0x18;             // Status.code = 3 (enum)
constexpr char k_kv_key = 0x0A;                  // KeyValue.key = 1
constexpr char k_kv_value = 0x12;                // KeyValue.value = 2
constexpr char k_any_string = 0x0A;              // AnyValue.string_value = 1
constexpr char k_any_bool = 0x10;                // AnyValue.bool_value = 2
constexpr char k_any_int = 0x18;                 // AnyValue.int_value = 3
constexpr char k_any_double = 0x21;              // AnyValue.double_value = 4 (fixed64)
constexpr char k_any_array = 0x2A;               // AnyValue.array_value = 5
constexpr char k_array_values = 0x0A;            // ArrayValue.values = 1

// Width of the growing resource_spans / scope_spans prefixes: 4 varint bytes, < 2^28.
constexpr std::size_t k_entry_width = 4;

// Bytes of the varint holding v (1-10), without a loop: from v's bit width w (at least 1),
// ceil(w / 7) == (9 * w + 64) / 64 for every w in [1, 64].
constexpr std::size_t varint_size(std::uint64_t v) noexcept {
  return (static_cast<std::size_t>(std::bit_width(v | 1)) * 9 + 64) >> 6;
}
static_assert(varint_size(0) == 1 && varint_size(0x7F) == 1 && varint_size(0x80) == 2 && varint_size(0x3FFF) == 2 &&
              varint_size(0x4000) == 3 && varint_size((std::uint64_t{1} << 63) - 1) == 9 &&
              varint_size(std::uint64_t{1} << 63) == 10 && varint_size(~std::uint64_t{0}) == 10);
// A length-delimited field with a one-byte tag holding n bytes.
constexpr std::size_t field_size(std::size_t n) noexcept { return 1 + varint_size(n) + n; }

// Writes v as a varint of exactly `width` bytes (redundant 0x80 continuation bytes when v
// needs fewer). v < 2^(7 * width).
inline void put_padded_varint(char* at, std::size_t width, std::uint64_t v) noexcept {
  for (std::size_t i = 0; i + 1 < width; ++i) {
    at[i] = static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  at[width - 1] = static_cast<char>(v & 0x7F);
}

// Plain stores through a local cursor. Code that writes many small pieces keeps its position
// in a register this way: through Writer (held by reference), every one-byte store may alias
// the Writer's own position (char aliases everything), so the compiler reloads and stores it
// around each byte -- a store-forwarding chain that was most of the attribute loop's time.
[[gnu::always_inline]] inline char* put_varint(char* p, std::uint64_t v) noexcept {
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}
[[gnu::always_inline]] inline char* put_fixed64(char* p, std::uint64_t v) noexcept {
  for (int i = 0; i < 8; ++i) {  // little-endian, whatever the host (folds to one store on x86)
    *p++ = static_cast<char>(v & 0xFF);
    v >>= 8;
  }
  return p;
}
// A string as utf8_inspect described it: copied, or repaired (counted); `cut` set when it was
// cut to the limit (counted).
[[gnu::always_inline]] inline char* put_text(char* p, const detail::Utf8Text& t, EncoderStats& stats,
                                             bool& cut) noexcept {
  if (t.clean) [[likely]] {
    detail::copy_bytes(p, t.data, t.size);
  } else {
    stats.invalid_utf8_replaced += detail::utf8_repair_copy(t.data, t.size, p);
  }
  if (t.truncated) [[unlikely]] {
    ++stats.values_truncated;
    cut = true;
  }
  return p + t.out_size;
}

// A bounded cursor into the batch buffer, like the JSON encoder's: every write checks the
// space left; the first that does not fit sets a sticky overflow (checked once per append).
class Writer {
 public:
  Writer(char* p, char* end, EncoderStats& stats) noexcept : p_(p), end_(end), stats_(stats) {}

  [[nodiscard]] bool overflow() const noexcept { return overflow_; }
  [[nodiscard]] char* pos() const noexcept { return p_; }
  [[nodiscard]] char* limit() const noexcept { return end_; }
  // The next write did not fit (for code writing through a local cursor, see write_attributes).
  void fail() noexcept {
    overflow_ = true;
    end_ = p_;
  }
  // A string was cut by code writing through a local cursor (take_cut() reports it).
  void mark_cut() noexcept { cut_ = true; }
  [[nodiscard]] std::size_t room() const noexcept { return static_cast<std::size_t>(end_ - p_); }
  void rewind(char* p) noexcept { p_ = p; }

  // One check for several writes: n bytes may then be written through pos() (rewind() after).
  [[nodiscard]] bool ensure(std::size_t n) noexcept { return reserve(n); }
  [[gnu::always_inline]] void put_text(const detail::Utf8Text& t) noexcept {
    if (t.clean) {
      detail::copy_bytes(p_, t.data, t.size);
    } else {
      stats_.invalid_utf8_replaced += detail::utf8_repair_copy(t.data, t.size, p_);
    }
    p_ += t.out_size;
    if (t.truncated) {
      ++stats_.values_truncated;
      cut_ = true;
    }
  }
  // Whether a string was cut to max_value_bytes since the last call (then cleared): the
  // span being written gets tracecast.truncated.
  [[nodiscard]] bool take_cut() noexcept {
    const bool c = cut_;
    cut_ = false;
    return c;
  }

  void byte(char c) noexcept {
    if (!reserve(1)) return;
    *p_++ = c;
  }
  void varint(std::uint64_t v) noexcept {
    if (!reserve(10)) return;
    while (v >= 0x80) {
      *p_++ = static_cast<char>((v & 0x7F) | 0x80);
      v >>= 7;
    }
    *p_++ = static_cast<char>(v);
  }
  void tag_varint(char tag, std::uint64_t v) noexcept {
    byte(tag);
    varint(v);
  }
  void fixed64(char tag, std::uint64_t v) noexcept {
    if (!reserve(9)) return;
    *p_++ = tag;
    p_ = put_fixed64(p_, v);
  }
  // Reserves a length prefix of `width` bytes; returns where it is (patch it with
  // put_padded_varint once the content is written).
  char* prefix(std::size_t width) noexcept {
    if (!reserve(width)) return nullptr;
    char* at = p_;
    p_ += width;
    return at;
  }
  // The bytes of a string as utf8_inspect described them: copied, or repaired.
  void text(const detail::Utf8Text& t) noexcept {
    if (!reserve(t.out_size)) return;
    put_text(t);
  }
  void string_field(char tag, const detail::Utf8Text& t) noexcept {
    byte(tag);
    varint(t.out_size);
    text(t);
  }

 private:
  [[nodiscard]] bool reserve(std::size_t n) noexcept {
    if (static_cast<std::size_t>(end_ - p_) >= n) [[likely]]
      return true;
    overflow_ = true;
    end_ = p_;
    return false;
  }

  char* p_;
  char* end_;
  EncoderStats& stats_;
  bool overflow_ = false;
  bool cut_ = false;
};

[[gnu::always_inline]] inline detail::Utf8Text inspect(std::string_view s, const EncoderLimits& limits) noexcept {
  return detail::utf8_inspect(s.data(), s.size(), limits.max_value_bytes);
}

// AnyValue content size of a scalar or string element (the string already inspected).
std::size_t scalar_size(ValueType type, const AttributeValue& v, const detail::Utf8Text* text) noexcept {
  switch (type) {
    case ValueType::string: return field_size(text->out_size);
    case ValueType::boolean: return 2;
    case ValueType::int64: return 1 + varint_size(static_cast<std::uint64_t>(v.as_int64()));
    case ValueType::float64: return 9;
    default: return 0;
  }
}

std::uint64_t double_bits(double d) noexcept {
  std::uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  return bits;
}

// Size of the ArrayValue message of an array value (each element an AnyValue field).
std::size_t array_size(const AttributeValue& v, const EncoderLimits& limits) noexcept {
  std::size_t n = 0;
  switch (v.type()) {
    case ValueType::string_array:
      for (std::string_view s : v.as_strings()) n += field_size(field_size(inspect(s, limits).out_size));
      break;
    case ValueType::bool_array: n = v.as_bools().size() * field_size(2); break;
    case ValueType::int64_array:
      for (std::int64_t i : v.as_int64s()) n += field_size(1 + varint_size(static_cast<std::uint64_t>(i)));
      break;
    case ValueType::float64_array: n = v.as_doubles().size() * field_size(9); break;
    default: break;
  }
  return n;
}

// Size of the AnyValue message of v (`text`: v's string, inspected, when v is a string).
std::size_t value_size(const AttributeValue& v, const detail::Utf8Text* text, const EncoderLimits& limits) noexcept {
  switch (v.type()) {
    case ValueType::empty: return 0;
    case ValueType::string:
    case ValueType::boolean:
    case ValueType::int64:
    case ValueType::float64: return scalar_size(v.type(), v, text);
    default: return field_size(array_size(v, limits));
  }
}

void write_value(Writer& w, const AttributeValue& v, const detail::Utf8Text* text, const EncoderLimits& limits) noexcept {
  switch (v.type()) {
    case ValueType::empty: return;
    case ValueType::string: w.string_field(k_any_string, *text); return;
    case ValueType::boolean: w.tag_varint(k_any_bool, v.as_bool() ? 1 : 0); return;
    case ValueType::int64: w.tag_varint(k_any_int, static_cast<std::uint64_t>(v.as_int64())); return;
    case ValueType::float64: w.fixed64(k_any_double, double_bits(v.as_double())); return;
    default: break;
  }
  w.byte(k_any_array);
  w.varint(array_size(v, limits));
  switch (v.type()) {
    case ValueType::string_array:
      for (std::string_view s : v.as_strings()) {
        const detail::Utf8Text t = inspect(s, limits);
        w.byte(k_array_values);
        w.varint(field_size(t.out_size));
        w.string_field(k_any_string, t);
      }
      break;
    case ValueType::bool_array:
      for (bool b : v.as_bools()) {
        w.byte(k_array_values);
        w.byte(2);
        w.tag_varint(k_any_bool, b ? 1 : 0);
      }
      break;
    case ValueType::int64_array:
      for (std::int64_t i : v.as_int64s()) {
        const auto u = static_cast<std::uint64_t>(i);
        w.byte(k_array_values);
        w.varint(1 + varint_size(u));
        w.tag_varint(k_any_int, u);
      }
      break;
    case ValueType::float64_array:
      for (double d : v.as_doubles()) {
        w.byte(k_array_values);
        w.byte(9);
        w.fixed64(k_any_double, double_bits(d));
      }
      break;
    default: break;
  }
}

// The AnyValue field of a bool, int64 or double at p (nothing for other types): both attribute
// writers' non-string values.
[[gnu::always_inline]] inline char* put_scalar_value(char* p, const AttributeValue& v) noexcept {
  switch (v.type()) {
    case ValueType::boolean:
      p[0] = k_any_bool;
      p[1] = v.as_bool() ? 1 : 0;
      return p + 2;
    case ValueType::int64:
      *p++ = k_any_int;
      return put_varint(p, static_cast<std::uint64_t>(v.as_int64()));
    case ValueType::float64:
      *p++ = k_any_double;
      return put_fixed64(p, double_bits(v.as_double()));
    default: return p;
  }
}

// What writing one attribute did.
enum class Put : std::uint8_t { written, duplicate, full };

// Where the cursor is after an attribute, and what writing it did.
struct PutAt {
  char* p;
  Put r;
};

// One attribute with a scalar or string value written at p (end: the writer's limit), any
// size, any bytes: key and string inspected first (cut to the limit, repaired when
// ill-formed), sized, one space check, then plain stores. Nothing is written when it does
// not fit (full) or its key is already in the list (duplicate, counted). Out of line: the
// short well-formed attributes that are nearly all of them take put_scalar_attribute.
[[gnu::noinline]] PutAt put_scalar_attribute_checked(char* p, char* end, const Attribute& a, char attr_tag,
                                                     detail::KeyIndex& keys, const EncoderLimits& limits,
                                                     EncoderStats& stats, bool& cut) noexcept {
  const detail::Utf8Text key = inspect(a.key, limits);
  const ValueType type = a.value.type();
  // Values held in registers (no address taken: a struct spilled to the stack and read back
  // costs a store-forwarding stall per attribute).
  const detail::Utf8Text text = type == ValueType::string ? inspect(a.value.as_string(), limits)
                                                           : detail::Utf8Text{nullptr, 0, 0, true, false};
  // Sizes first supposing every length fits one byte: then a KeyValue under 128 bytes (nearly
  // every one) is exact, since the key's, the AnyValue's and the string's lengths are each
  // smaller than it. Longer ones are sized again with varint_size (a chain of three bit-width
  // computations per attribute was ~10% of the canonical span's encoding).
  std::size_t vsize = 0;
  switch (type) {
    case ValueType::string: vsize = 2 + text.out_size; break;
    case ValueType::boolean: vsize = 2; break;
    case ValueType::int64: vsize = 1 + varint_size(static_cast<std::uint64_t>(a.value.as_int64())); break;
    case ValueType::float64: vsize = 9; break;
    default: break;
  }
  std::size_t kv = (key.out_size != 0 ? 2 + key.out_size : 0) + 2 + vsize;
  const bool short_kv = kv < 128;
  if (!short_kv) [[unlikely]] {
    if (type == ValueType::string) vsize = field_size(text.out_size);
    kv = (key.out_size != 0 ? field_size(key.out_size) : 0) + field_size(vsize);
  }
  if (static_cast<std::size_t>(end - p) < (short_kv ? 2 + kv : field_size(kv))) [[unlikely]]
    return {p, Put::full};
  char* const attr_start = p;
  if (short_kv && key.out_size != 0) [[likely]] {
    p[0] = attr_tag;
    p[1] = static_cast<char>(kv);
    p[2] = k_kv_key;
    p[3] = static_cast<char>(key.out_size);
    p += 4;
  } else {
    *p++ = attr_tag;
    p = put_varint(p, kv);
    if (key.out_size != 0) {
      *p++ = k_kv_key;
      p = put_varint(p, key.out_size);
    }
  }
  char* const key_at = p;
  p = put_text(p, key, stats, cut);
  if (keys.seen_or_add(key_at, key.out_size, key.clean ? key.data : key_at)) {
    ++stats.duplicate_keys_skipped;
    return {attr_start, Put::duplicate};
  }
  if (short_kv) [[likely]] {
    p[0] = k_kv_value;
    p[1] = static_cast<char>(vsize);
    p += 2;
  } else {
    *p++ = k_kv_value;
    p = put_varint(p, vsize);
  }
  switch (type) {
    case ValueType::string:
      if (short_kv) [[likely]] {
        p[0] = k_any_string;
        p[1] = static_cast<char>(text.out_size);
        p += 2;
      } else {
        *p++ = k_any_string;
        p = put_varint(p, text.out_size);
      }
      p = put_text(p, text, stats, cut);
      break;
    default: p = put_scalar_value(p, a.value); break;
  }
  return {p, Put::written};
}

// The same for a short attribute (KeyValue under 128 bytes, nothing to cut): lengths written
// supposing the strings well-formed, then each string checked for ASCII while it is copied
// (one pass), SIMD-validated only when it is not; ill-formed ones are rewritten by
// put_scalar_attribute_checked. Nearly every attribute of a canonical span goes this way.
[[gnu::always_inline]] inline Put put_scalar_attribute(char*& p, char* end, const Attribute& a, char attr_tag,
                                                       detail::KeyIndex& keys, const EncoderLimits& limits,
                                                       EncoderStats& stats, bool& cut) noexcept {
  const std::string_view key = a.key;
  const ValueType type = a.value.type();
  const std::string_view str = type == ValueType::string ? a.value.as_string() : std::string_view();
  std::size_t vsize = 0;
  switch (type) {
    case ValueType::string: vsize = 2 + str.size(); break;
    case ValueType::boolean: vsize = 2; break;
    case ValueType::int64: vsize = 1 + varint_size(static_cast<std::uint64_t>(a.value.as_int64())); break;
    case ValueType::float64: vsize = 9; break;
    default: break;
  }
  const std::size_t kv = 2 + key.size() + 2 + vsize;
  if (kv >= 128 || key.empty() || key.size() > limits.max_value_bytes || str.size() > limits.max_value_bytes)
      [[unlikely]] {
    const PutAt r = put_scalar_attribute_checked(p, end, a, attr_tag, keys, limits, stats, cut);
    p = r.p;
    return r.r;
  }
  if (static_cast<std::size_t>(end - p) < 2 + kv) [[unlikely]]
    return Put::full;
  char* const attr_start = p;
  p[0] = attr_tag;
  p[1] = static_cast<char>(kv);
  p[2] = k_kv_key;
  p[3] = static_cast<char>(key.size());
  char* const key_at = p + 4;
  bool ascii = detail::copy_ascii(key_at, key.data(), key.size());
  p = key_at + key.size();
  p[0] = k_kv_value;
  p[1] = static_cast<char>(vsize);
  p += 2;
  switch (type) {
    case ValueType::string:
      p[0] = k_any_string;
      p[1] = static_cast<char>(str.size());
      ascii &= detail::copy_ascii(p + 2, str.data(), str.size());
      p += 2 + str.size();
      break;
    default: p = put_scalar_value(p, a.value); break;
  }
  if (!ascii) [[unlikely]] {
    if (!detail::validate_utf8(key.data(), key.size()) ||
        (!str.empty() && !detail::validate_utf8(str.data(), str.size()))) {
      const PutAt r = put_scalar_attribute_checked(attr_start, end, a, attr_tag, keys, limits, stats, cut);
      p = r.p;
      return r.r;
    }
  }
  if (keys.seen_or_add(key_at, key.size(), key.data())) {
    p = attr_start;
    ++stats.duplicate_keys_skipped;
    return Put::duplicate;
  }
  return Put::written;
}

// One attribute with an array value, through the Writer (rare: not worth the local cursor).
[[gnu::noinline]] Put write_array_attribute(Writer& w, const Attribute& a, char attr_tag, detail::KeyIndex& keys,
                                            const EncoderLimits& limits, EncoderStats& stats) noexcept {
  char* const attr_start = w.pos();
  const detail::Utf8Text key = inspect(a.key, limits);
  const std::size_t vsize = value_size(a.value, nullptr, limits);
  const std::size_t kv = (key.out_size != 0 ? field_size(key.out_size) : 0) + field_size(vsize);
  w.byte(attr_tag);
  w.varint(kv);
  if (key.out_size != 0) {
    w.byte(k_kv_key);
    w.varint(key.out_size);
  }
  const char* const key_start = w.pos();
  w.text(key);
  if (w.overflow()) return Put::full;
  if (keys.seen_or_add(key_start, key.out_size)) {
    w.rewind(attr_start);
    ++stats.duplicate_keys_skipped;
    return Put::duplicate;
  }
  w.byte(k_kv_value);
  w.varint(vsize);
  write_value(w, a.value, nullptr, limits);
  return w.overflow() ? Put::full : Put::written;
}

// Writes a list's attributes (each a `attr_tag` field) and its dropped count (`dropped_tag`).
// Returns true when anything was written. Duplicate keys: compared as the repaired key bytes
// already in the buffer (detail::KeyIndex, shared with the JSON encoder).
// `unique`: the list keeps SpanView::keys_unique's promise and no key can be cut: the index
// trusts it (the cut mark is then looked for in the list).
bool write_attributes(Writer& w, std::span<const Attribute> attrs, char attr_tag, char dropped_tag,
                      detail::KeyIndex& keys, const EncoderLimits& limits, EncoderStats& stats,
                      bool span_list = false, bool cut_after = false, bool unique = false) noexcept {
  const bool cut_before = span_list && w.take_cut();
  if (attrs.empty() && !cut_before && !cut_after) return false;
  detail::AttributeAdmission admission(limits.max_attributes_per_span, stats);
  const detail::KeyIndex::List list(keys, attrs.size(), unique);
  char* p = w.pos();
  char* const end = w.limit();
  bool cut = false;
  for (const Attribute& a : attrs) {
    if (!admission.admit(a)) continue;
    Put r;
    if (a.value.type() < ValueType::string_array) [[likely]] {
      r = put_scalar_attribute(p, end, a, attr_tag, keys, limits, stats, cut);
    } else {
      w.rewind(p);
      r = write_array_attribute(w, a, attr_tag, keys, limits, stats);
      p = w.pos();
    }
    if (r == Put::full) [[unlikely]] {
      w.rewind(p);
      w.fail();  // the append fails as a whole
      return true;
    }
    if (r == Put::written) admission.wrote();
  }
  if (span_list && (cut_before || cut || w.take_cut() || cut_after) &&
      admission.written() < limits.max_attributes_per_span && limits.max_value_bytes >= detail::k_cut_mark.key.size()) {
    // Not counted as a duplicate when the mapping already marked the span.
    const std::uint64_t duplicates = stats.duplicate_keys_skipped;
    bool unused = false;
    const bool marked = unique && detail::KeyIndex::mark_in(attrs, detail::k_cut_mark.key);
    if (!marked && put_scalar_attribute(p, end, detail::k_cut_mark, attr_tag, keys, limits, stats, unused) == Put::full) {
      w.rewind(p);
      w.fail();
      return true;
    }
    stats.duplicate_keys_skipped = duplicates;
    cut = false;  // this list's cuts are marked
  }
  w.rewind(p);
  if (cut) w.mark_cut();
  if (const std::size_t dropped = admission.finish(); dropped != 0) w.tag_varint(dropped_tag, dropped);
  return true;
}

// A message whose size is known only once written (a Span, a Resource): its prefix is
// reserved 2 bytes wide (1 when less than 128 bytes are left) and patched when it ends. A
// message of 16 KiB or more (a span with prompt-sized values) is moved up by the 1-2 bytes its
// wider prefix needs: one memmove, against a per-attribute pass that computed an upper bound
// of every message's size beforehand (~8% of a canonical span's encoding).
class Delimited {
 public:
  static constexpr std::size_t k_width = 2;

  Delimited(Writer& w, char tag) noexcept : w_(w) {
    width_ = w.room() <= 128 ? 1 : k_width;  // what is left cannot hold a longer message
    w_.byte(tag);
    at_ = w_.prefix(width_);
    start_ = w_.pos();
  }
  // Where the content starts (moves when end() widens the prefix).
  [[nodiscard]] char* content() const noexcept { return start_; }
  void end() noexcept {
    if (w_.overflow()) return;
    const auto size = static_cast<std::size_t>(w_.pos() - start_);
    if (size >> (7 * width_) != 0) [[unlikely]] {
      const std::size_t width = varint_size(size);
      if (!w_.ensure(width - width_)) return;  // no room to widen: the append fails
      std::memmove(start_ + (width - width_), start_, size);
      w_.rewind(w_.pos() + (width - width_));
      start_ += width - width_;
      width_ = width;
    }
    put_padded_varint(at_, width_, size);
  }

 private:
  Writer& w_;
  std::size_t width_;
  char* at_;
  char* start_;
};

void write_span(Writer& w, const SpanView& s, detail::KeyIndex& keys, const EncoderLimits& limits,
                EncoderStats& stats) noexcept {
  Delimited span(w, k_ss_spans);
  (void)w.take_cut();  // cuts of the resource, the scope or the span before: not this span's
  const detail::Utf8Text name = inspect(s.name, limits);
  // Ids, name, kind and times: one space check, then plain stores through a local cursor.
  if (!w.ensure(18 + 10 + 10 + field_size(name.out_size) + 2 + 9 + 9)) return;
  char* p = w.pos();
  auto put_id = [&p](char tag, const auto& bytes) noexcept {
    p[0] = tag;
    p[1] = static_cast<char>(bytes.size());
    std::memcpy(p + 2, bytes.data(), bytes.size());
    p += 2 + bytes.size();
  };
  put_id(k_span_trace_id, s.trace_id.bytes);
  put_id(k_span_span_id, s.span_id.bytes);
  if (s.parent_span_id.valid()) put_id(k_span_parent, s.parent_span_id.bytes);
  if (!s.name.empty()) {
    *p++ = k_span_name;
    p = put_varint(p, name.out_size);
    bool cut = false;
    p = put_text(p, name, stats, cut);
    if (cut) w.mark_cut();
  }
  if (s.kind != SpanKind::unspecified) {
    p[0] = k_span_kind;
    p[1] = static_cast<char>(s.kind);
    p += 2;
  }
  if (s.start_unix_nano != 0) {
    *p++ = k_span_start;
    p = put_fixed64(p, s.start_unix_nano);
  }
  if (s.end_unix_nano != 0) {
    *p++ = k_span_end;
    p = put_fixed64(p, s.end_unix_nano);
  }
  w.rewind(p);
  write_attributes(w, s.attributes, k_span_attributes, k_span_dropped, keys, limits, stats, /*span_list=*/true,
                   s.status_message.size() > limits.max_value_bytes,
                   s.keys_unique && limits.max_value_bytes >= k_unique_key_max_bytes);
  if (s.status_code != StatusCode::unset || !s.status_message.empty()) {
    detail::Utf8Text msg{};
    std::size_t size = 0;
    if (!s.status_message.empty()) {
      msg = inspect(s.status_message, limits);
      size += field_size(msg.out_size);
    }
    if (s.status_code != StatusCode::unset) size += 2;
    w.byte(k_span_status);
    w.varint(size);
    if (!s.status_message.empty()) w.string_field(k_status_message, msg);
    if (s.status_code != StatusCode::unset) w.tag_varint(k_status_code, static_cast<std::uint64_t>(s.status_code));
  }
  span.end();
}

// The ScopeSpans.scope field (nothing when name and version are empty).
void write_scope(Writer& w, const ScopeView& scope, const EncoderLimits& limits) noexcept {
  if (scope.name.empty() && scope.version.empty()) return;
  detail::Utf8Text name{}, version{};
  std::size_t size = 0;
  if (!scope.name.empty()) {
    name = inspect(scope.name, limits);
    size += field_size(name.out_size);
  }
  if (!scope.version.empty()) {
    version = inspect(scope.version, limits);
    size += field_size(version.out_size);
  }
  w.byte(k_ss_scope);
  w.varint(size);
  if (!scope.name.empty()) w.string_field(k_scope_name, name);
  if (!scope.version.empty()) w.string_field(k_scope_version, version);
}

const EncoderLimits& checked(const EncoderLimits& limits) {
  if (std::string err = limits.validate(); !err.empty()) throw std::invalid_argument("EncoderLimits." + err);
  return limits;
}

}  // namespace

OtlpProtobufEncoder::OtlpProtobufEncoder(EncoderLimits limits)
    : limits_(checked(limits)),
      batch_limits_(limits_),
      keys_(std::make_unique<detail::KeyIndex>(limits_.max_attributes_per_span)) {}
OtlpProtobufEncoder::~OtlpProtobufEncoder() = default;
OtlpProtobufEncoder::OtlpProtobufEncoder(OtlpProtobufEncoder&&) noexcept = default;
OtlpProtobufEncoder& OtlpProtobufEncoder::operator=(OtlpProtobufEncoder&&) noexcept = default;

void OtlpProtobufEncoder::begin(std::span<char> buffer, std::size_t budget, std::size_t max_value_bytes) noexcept {
  batch_limits_ = detail::batch_limits(limits_, max_value_bytes);
  buf_ = buffer.data();
  budget_ = std::min({budget, buffer.size(), k_max_budget});
  pos_ = 0;
  span_count_ = 0;
  rs_len_off_ = ss_len_off_ = resource_off_ = resource_len_ = scope_off_ = scope_len_ = 0;
  state_ = state::open;
}

std::string_view OtlpProtobufEncoder::finish() noexcept {
  if (state_ == state::finished) return {buf_, pos_};
  if (state_ != state::open || span_count_ == 0) return {};
  state_ = state::finished;
  return {buf_, pos_};
}

append_result OtlpProtobufEncoder::append(const ResourceView& resource, const ScopeView& scope,
                                          std::span<const SpanView> spans) noexcept {
  const std::size_t valid = detail::writable_spans(spans);
  if (const auto early = detail::append_early_result(state_ == state::idle, state_ == state::finished, spans, valid, stats_))
    return *early;

  const EncoderStats saved_stats = stats_;
  auto fail = [&]() noexcept {
    stats_ = saved_stats;
    if (span_count_ != 0) return append_result::batch_full;
    stats_.spans_too_large += spans.size();
    return append_result::too_large;
  };

  // Write the group's header where a new resource_spans entry would start, then compare it
  // with the open entry's: equal resource (and scope) -> continue the open entry.
  Writer w(buf_ + pos_, buf_ + budget_, stats_);
  w.byte(k_request_resource_spans);
  char* rs_len = w.prefix(k_entry_width);
  // Resources are compared by their content, not their prefix, whose width follows an upper
  // bound (two lists that encode the same after duplicate keys are dropped are one resource).
  char* res_start = w.pos();
  if (!resource.attributes.empty()) {
    Delimited res(w, k_rs_resource);
    write_attributes(w, resource.attributes, k_resource_attributes, k_resource_dropped, *keys_, batch_limits_, stats_);
    res.end();
    res_start = res.content();
  }
  char* const res_end = w.pos();
  w.byte(k_rs_scope_spans);
  char* ss_len = w.prefix(k_entry_width);
  char* scope_start = w.pos();
  write_scope(w, scope, batch_limits_);
  char* scope_end = w.pos();
  if (w.overflow()) return fail();

  const auto res_len = static_cast<std::size_t>(res_end - res_start);
  auto scope_len = static_cast<std::size_t>(scope_end - scope_start);
  const bool same_resource = span_count_ != 0 && res_len == resource_len_ &&
                             std::memcmp(res_start, buf_ + resource_off_, res_len) == 0;
  if (same_resource) {
    stats_ = saved_stats;  // the header just written is discarded, and what it counted
    w.rewind(buf_ + pos_);
    rs_len = buf_ + rs_len_off_;
    if (scope_len == scope_len_ && std::memcmp(scope_start, buf_ + scope_off_, scope_len) == 0) {
      ss_len = buf_ + ss_len_off_;  // continue the open spans list
      scope_start = buf_ + scope_off_;
    } else {
      w.byte(k_rs_scope_spans);  // same resource, new scope: another scope_spans entry
      ss_len = w.prefix(k_entry_width);
      scope_start = w.pos();
      write_scope(w, scope, batch_limits_);
      scope_end = w.pos();
      scope_len = static_cast<std::size_t>(scope_end - scope_start);
      if (w.overflow()) return fail();
    }
  }

  for (const SpanView& s : spans) {
    if (!(s.trace_id.valid() && s.span_id.valid())) continue;
    write_span(w, s, *keys_, batch_limits_, stats_);
  }
  if (w.overflow()) return fail();

  // Patch the open entries' lengths (4-byte prefixes): the message is complete after every
  // successful append, so finish() has nothing left to do.
  char* const end = w.pos();
  put_padded_varint(rs_len, k_entry_width, static_cast<std::size_t>(end - (rs_len + k_entry_width)));
  put_padded_varint(ss_len, k_entry_width, static_cast<std::size_t>(end - (ss_len + k_entry_width)));
  if (!same_resource) {
    resource_off_ = static_cast<std::size_t>(res_start - buf_);
    resource_len_ = res_len;
  }
  rs_len_off_ = static_cast<std::size_t>(rs_len - buf_);
  ss_len_off_ = static_cast<std::size_t>(ss_len - buf_);
  scope_off_ = static_cast<std::size_t>(scope_start - buf_);
  scope_len_ = scope_len;
  stats_.spans_invalid_id += spans.size() - valid;
  span_count_ += valid;
  pos_ = static_cast<std::size_t>(end - buf_);
  return append_result::ok;
}

}  // namespace tracecast
