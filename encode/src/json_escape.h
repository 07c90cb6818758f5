// JSON string escaping with UTF-8 repair: the encoder's hot loop (internal header).
//
// Fast path: 16 bytes at a time (SSE2, in the x86-64 baseline), copying runs of bytes that
// need nothing. The first byte >= 0x80 triggers one SIMD validation of the rest of the string
// (simdjson::validate_utf8); when valid, non-ASCII bytes then pass through the fast path too.
// Only strings that really hold ill-formed UTF-8 take the scalar decoding path, which writes
// U+FFFD per maximal ill-formed subpart (Unicode 3.9, Table 3-7 well-formed sequences).
#pragma once

#include <emmintrin.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "utf8_repair.h"

namespace tracecast::detail {

struct EscapeResult {
  char* out;               // end of written bytes; nullptr when the output did not fit
  std::uint64_t replaced;  // U+FFFD written for ill-formed input
};

// 0: copy as is; 1: ASCII that JSON requires escaped; 2: byte >= 0x80 (part of UTF-8).
inline constexpr std::array<std::uint8_t, 256> k_byte_class = [] {
  std::array<std::uint8_t, 256> t{};
  for (int i = 0; i < 0x20; ++i) t[static_cast<std::size_t>(i)] = 1;
  t['"'] = 1;
  t['\\'] = 1;
  for (int i = 0x80; i < 0x100; ++i) t[static_cast<std::size_t>(i)] = 2;
  return t;
}();

// What each ASCII byte becomes inside a JSON string (8 bytes written, `len` kept), so the hot
// loop writes an escape with one 8-byte store and no branch on the byte.
struct EscapeEntry {
  char bytes[8];
  std::uint8_t len;
};

// The letter of a two-byte escape (\" \\ \b \f \n \r \t), or 0 when the byte has none.
constexpr char short_escape(int c) noexcept {
  switch (c) {
    case '"': return '"';
    case '\\': return '\\';
    case '\b': return 'b';
    case '\f': return 'f';
    case '\n': return 'n';
    case '\r': return 'r';
    case '\t': return 't';
    default: return 0;
  }
}

inline constexpr std::array<EscapeEntry, 128> k_escape = [] {
  std::array<EscapeEntry, 128> t{};
  constexpr char digits[] = "0123456789abcdef";
  for (int c = 0; c < 128; ++c) {
    EscapeEntry& e = t[static_cast<std::size_t>(c)];
    const char short_form = short_escape(c);
    if (short_form != 0) {
      e.bytes[0] = '\\';
      e.bytes[1] = short_form;
      e.len = 2;
    } else if (c < 0x20) {
      e.bytes[0] = '\\';
      e.bytes[1] = 'u';
      e.bytes[2] = '0';
      e.bytes[3] = '0';
      e.bytes[4] = digits[c >> 4];
      e.bytes[5] = digits[c & 0xf];
      e.len = 6;
    } else {
      e.bytes[0] = static_cast<char>(c);
      e.len = 1;
    }
  }
  return t;
}();

// Writes the escape for an ASCII byte of class 1 (2 or 6 bytes).
inline char* write_escape(unsigned char c, char* out) noexcept {
  const char short_form = short_escape(c);
  if (short_form != 0) {
    out[0] = '\\';
    out[1] = short_form;
    return out + 2;
  }
  constexpr char digits[] = "0123456789abcdef";
  std::memcpy(out, "\\u00", 4);
  out[4] = digits[c >> 4];
  out[5] = digits[c & 0xf];
  return out + 6;
}

// Bytes in v that stop the fast copy: controls, '"', '\\' and (unless high_ok) bytes >= 0x80.
inline unsigned stop_mask(__m128i v, bool high_ok) noexcept {
  const __m128i ctrl = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1F)), v);
  const __m128i quote = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
  const __m128i bslash = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
  unsigned m = static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(ctrl, _mm_or_si128(quote, bslash))));
  if (!high_ok) m |= static_cast<unsigned>(_mm_movemask_epi8(v));
  return m;
}

// SWAR over 8 bytes: non-zero when any byte is a control, '"', '\\' or >= 0x80. May flag
// more bytes than those, but only when at least one really is one (borrow propagation), which
// is all an "anything to do here?" test needs.
inline std::uint64_t swar_stop(std::uint64_t x) noexcept {
  constexpr std::uint64_t ones = 0x0101010101010101ull;
  constexpr std::uint64_t high = 0x8080808080808080ull;
  const std::uint64_t q = x ^ (ones * '"');
  const std::uint64_t b = x ^ (ones * '\\');
  const std::uint64_t below_space = (x - ones * 0x20) & ~x;  // "hasless(x, 0x20)"
  const std::uint64_t quote = (q - ones) & ~q;               // "haszero"
  const std::uint64_t bslash = (b - ones) & ~b;
  return (below_space | quote | bslash | x) & high;
}

// Fast path for the short strings that dominate OTLP (keys, ids, model names): 4..32 bytes
// that need nothing are copied with two overlapping loads and stores. Returns nullptr when
// the string needs the general path (escapes, non-ASCII, shorter than 4, or little room left).
inline char* copy_plain_short(const char* s, std::size_t n, char* out, char* out_end) noexcept {
  if (n > 32 || n < 4 || out_end - out < 32) return nullptr;
  if (n >= 16) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + n - 16));
    if ((stop_mask(a, false) | stop_mask(b, false)) != 0) return nullptr;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), a);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + n - 16), b);
    return out + n;
  }
  if (n < 8) {  // 4..7 bytes: two overlapping 4-byte words, tested together
    std::uint32_t a, b;
    std::memcpy(&a, s, 4);
    std::memcpy(&b, s + n - 4, 4);
    if (swar_stop(static_cast<std::uint64_t>(a) | static_cast<std::uint64_t>(b) << 32) != 0)
      return nullptr;
    std::memcpy(out, &a, 4);
    std::memcpy(out + n - 4, &b, 4);
    return out + n;
  }
  std::uint64_t a, b;
  std::memcpy(&a, s, 8);
  std::memcpy(&b, s + n - 8, 8);
  if ((swar_stop(a) | swar_stop(b)) != 0) return nullptr;
  std::memcpy(out, &a, 8);
  std::memcpy(out + n - 8, &b, 8);
  return out + n;
}

// Escapes s[0, n) into [out, out_end). Never writes at or past out_end.
inline EscapeResult escape_json(const char* s, std::size_t n, char* out, char* out_end) noexcept {
  const auto* in = reinterpret_cast<const unsigned char*>(s);
  std::size_t i = 0;
  std::uint64_t replaced = 0;
  bool validated = false;  // the rest of the string was checked once
  bool high_ok = false;    // ... and found well-formed: non-ASCII bytes copy as is
  while (i < n) {
    // Hot loop, 16 input bytes per step. A chunk with stop bytes is handled bit by bit from
    // its mask, without reloading: runs between stops are copied with 16-byte stores read
    // from the input (in bounds: 32 input bytes remain), ASCII stops are escaped with one
    // 8-byte table store. Dense escapes (JSON inside JSON) stay cheap this way. Room: 16 stops
    // of 6 bytes each plus a 16-byte store overshoot.
    while (n - i >= 32 && out_end - out >= 16 * 6 + 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
      unsigned m = stop_mask(v, high_ok);
      if (m == 0) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), v);
        out += 16;
        i += 16;
        continue;
      }
      std::size_t p = 0;  // next chunk byte to copy
      bool high = false;
      do {
        const auto k = static_cast<std::size_t>(__builtin_ctz(m));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out),
                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i + p)));
        out += k - p;
        const unsigned char c = in[i + k];
        if (c >= 0x80) {  // UTF-8 to check: below
          p = k;
          high = true;
          break;
        }
        std::memcpy(out, k_escape[c].bytes, 8);  // only len bytes are kept
        out += k_escape[c].len;
        p = k + 1;
        m &= m - 1;
      } while (m != 0);
      if (high) {
        i += p;
        break;
      }
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out),
                       _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i + p)));
      out += 16 - p;
      i += 16;
    }
    if (i < n && in[i] >= 0x80 && !high_ok) goto unit;
    while (n - i >= 16 && out_end - out >= 24) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + i));
      const unsigned m = stop_mask(v, high_ok);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), v);
      if (m == 0) {
        out += 16;
        i += 16;
        continue;
      }
      const auto k = static_cast<std::size_t>(__builtin_ctz(m));
      out += k;
      i += k;
      const unsigned char c = in[i];
      if (c >= 0x80) break;  // UTF-8 to check: below
      const EscapeEntry& e = k_escape[c];
      std::memcpy(out, e.bytes, 8);  // only e.len bytes are kept
      out += e.len;
      ++i;
    }
    if (i >= n) break;
    if (n - i < 16 && n >= 16 && out_end - out >= 16) {
      // Tail shorter than 16: look at the last 16 bytes of the string, skip what is done.
      const std::size_t rem = n - i;
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + n - 16));
      const unsigned m = stop_mask(v, high_ok) >> (16 - rem);
      if (m == 0) {
        std::memcpy(out, in + i, rem);
        out += rem;
        break;
      }
      const auto k = static_cast<std::size_t>(__builtin_ctz(m));
      std::memcpy(out, in + i, k);
      out += k;
      i += k;
    }
  unit:
    // One unit at i (a stop byte, or any byte of a short string / near the end of output).
    const unsigned char c = in[i];
    const std::uint8_t cls = k_byte_class[c];
    if (cls == 0 || (cls == 2 && high_ok)) {
      if (out == out_end) return {nullptr, replaced};
      *out++ = static_cast<char>(c);
      ++i;
      continue;
    }
    if (cls == 1) {
      if (out_end - out < 6) return {nullptr, replaced};
      out = write_escape(c, out);
      ++i;
      continue;
    }
    if (!validated) {
      validated = true;
      if (validate_utf8(s + i, n - i)) {
        high_ok = true;
        continue;
      }
    }
    std::size_t bad = 0;
    const std::size_t len = utf8_sequence(in + i, n - i, bad);
    if (len != 0) {
      if (out_end - out < static_cast<std::ptrdiff_t>(len)) return {nullptr, replaced};
      std::memcpy(out, in + i, len);
      out += len;
      i += len;
    } else {
      if (out_end - out < 3) return {nullptr, replaced};
      std::memcpy(out, "\xEF\xBF\xBD", 3);
      out += 3;
      i += bad;
      ++replaced;
    }
  }
  return {out, replaced};
}

}  // namespace tracecast::detail
