// UTF-8 limits and repair shared by both OTLP encoders (internal header).
//
// Both encoders cut strings at EncoderLimits::max_value_bytes on a code point boundary
// (utf8_cut) and replace ill-formed input with U+FFFD, one per maximal ill-formed subpart
// (Unicode 3.9, Table 3-7 well-formed sequences; utf8_sequence decides). The JSON encoder
// repairs while escaping (json_escape.h); the protobuf encoder, whose strings need a length
// before their bytes, asks utf8_inspect for the output size first and copies with
// utf8_repair_copy only when the input is ill-formed.
#pragma once

#include <emmintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tracecast/utf8.h"

namespace tracecast::detail {

// Length of the well-formed UTF-8 sequence at s, or 0 with `bad` set (tracecast/utf8.h).
using tracecast::utf8_sequence;

// A cut position <= max (s holds more than max bytes) that does not split a code point:
// backs off over at most 3 continuation bytes.
inline std::size_t utf8_cut(const char* s, std::size_t max) noexcept {
  std::size_t cut = max;
  for (int back = 0; back < 3 && cut > 0; ++back) {
    if ((static_cast<unsigned char>(s[cut]) & 0xC0) != 0x80) return cut;
    --cut;
  }
  if ((static_cast<unsigned char>(s[cut]) & 0xC0) != 0x80) return cut;
  return max;  // not UTF-8 there anyway: repair replaces what is left
}

bool validate_utf8(const char* s, std::size_t n) noexcept;  // simdjson, in utf8_repair.cpp

// The replacement character's UTF-8 form.
inline constexpr char k_replacement[] = "\xEF\xBF\xBD";

// True when s[0, n) is all ASCII: 16 bytes at a time, short strings with two overlapping
// word loads (keys and values of a few bytes dominate OTLP attributes).
inline bool is_ascii(const char* s, std::size_t n) noexcept {
  if (n >= 16) {
    __m128i acc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + n - 16));
    for (std::size_t i = 0; i + 16 <= n; i += 16)
      acc = _mm_or_si128(acc, _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i)));
    return _mm_movemask_epi8(acc) == 0;
  }
  if (n >= 8) {
    std::uint64_t a, b;
    std::memcpy(&a, s, 8);
    std::memcpy(&b, s + n - 8, 8);
    return ((a | b) & 0x8080808080808080ull) == 0;
  }
  if (n >= 4) {
    std::uint32_t a, b;
    std::memcpy(&a, s, 4);
    std::memcpy(&b, s + n - 4, 4);
    return ((a | b) & 0x80808080u) == 0;
  }
  unsigned char acc = 0;
  for (std::size_t i = 0; i < n; ++i) acc |= static_cast<unsigned char>(s[i]);
  return acc < 0x80;
}

// Copies n bytes; short copies with two overlapping loads and stores instead of a call.
inline void copy_bytes(char* out, const char* s, std::size_t n) noexcept {
  if (n > 32) {
    std::memcpy(out, s, n);
  } else if (n >= 16) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + n - 16));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), a);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + n - 16), b);
  } else if (n >= 8) {
    std::uint64_t a, b;
    std::memcpy(&a, s, 8);
    std::memcpy(&b, s + n - 8, 8);
    std::memcpy(out, &a, 8);
    std::memcpy(out + n - 8, &b, 8);
  } else if (n >= 4) {
    std::uint32_t a, b;
    std::memcpy(&a, s, 4);
    std::memcpy(&b, s + n - 4, 4);
    std::memcpy(out, &a, 4);
    std::memcpy(out + n - 4, &b, 4);
  } else {
    for (std::size_t i = 0; i < n; ++i) out[i] = s[i];
  }
}

// Copies n bytes like copy_bytes and says whether they were all ASCII: one pass over a
// string instead of is_ascii then copy_bytes (the protobuf encoder writes a short string's
// length first, supposing it well-formed, and checks it while copying).
inline bool copy_ascii(char* out, const char* s, std::size_t n) noexcept {
  if (n >= 16) {
    __m128i acc = _mm_setzero_si128();
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), v);
      acc = _mm_or_si128(acc, v);
    }
    if (i != n) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + n - 16));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + n - 16), v);
      acc = _mm_or_si128(acc, v);
    }
    return _mm_movemask_epi8(acc) == 0;
  }
  if (n >= 8) {
    std::uint64_t a, b;
    std::memcpy(&a, s, 8);
    std::memcpy(&b, s + n - 8, 8);
    std::memcpy(out, &a, 8);
    std::memcpy(out + n - 8, &b, 8);
    return ((a | b) & 0x8080808080808080ull) == 0;
  }
  if (n >= 4) {
    std::uint32_t a, b;
    std::memcpy(&a, s, 4);
    std::memcpy(&b, s + n - 4, 4);
    std::memcpy(out, &a, 4);
    std::memcpy(out + n - 4, &b, 4);
    return ((a | b) & 0x80808080u) == 0;
  }
  unsigned char acc = 0;
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = s[i];
    acc |= static_cast<unsigned char>(s[i]);
  }
  return acc < 0x80;
}

// Bytes s[0, n) occupies once every maximal ill-formed subpart is replaced by U+FFFD.
inline std::size_t utf8_repaired_size(const char* s, std::size_t n) noexcept {
  const auto* in = reinterpret_cast<const unsigned char*>(s);
  std::size_t out = 0;
  for (std::size_t i = 0; i < n;) {
    if (in[i] < 0x80) {
      ++out;
      ++i;
      continue;
    }
    std::size_t bad = 0;
    const std::size_t len = utf8_sequence(in + i, n - i, bad);
    out += len != 0 ? len : 3;
    i += len != 0 ? len : bad;
  }
  return out;
}

// Copies s[0, n) to out with every maximal ill-formed subpart replaced by U+FFFD; out has
// room for utf8_repaired_size(s, n) bytes. Returns the number of replacements.
inline std::uint64_t utf8_repair_copy(const char* s, std::size_t n, char* out) noexcept {
  const auto* in = reinterpret_cast<const unsigned char*>(s);
  std::uint64_t replaced = 0;
  for (std::size_t i = 0; i < n;) {
    if (in[i] < 0x80) {
      *out++ = static_cast<char>(in[i++]);
      continue;
    }
    std::size_t bad = 0;
    const std::size_t len = utf8_sequence(in + i, n - i, bad);
    if (len != 0) {
      std::memcpy(out, in + i, len);
      out += len;
      i += len;
    } else {
      std::memcpy(out, k_replacement, 3);
      out += 3;
      i += bad;
      ++replaced;
    }
  }
  return replaced;
}

// One string as an encoder will write it: the input cut to the limit, whether it is
// well-formed (then copied as is), and the size of its output (repaired when not).
struct Utf8Text {
  const char* data;
  std::size_t size;      // input bytes kept (after the cut)
  std::size_t out_size;  // bytes written
  bool clean;            // well-formed: out_size == size, plain copy
  bool truncated;        // cut to the limit
};

// Non-ASCII text: SIMD validation, and the repaired size when ill-formed (out of line: rare).
[[gnu::noinline]] inline void utf8_inspect_slow(Utf8Text& t) noexcept {
  if (!validate_utf8(t.data, t.size)) {
    t.clean = false;
    t.out_size = utf8_repaired_size(t.data, t.size);
  }
}

[[gnu::always_inline]] inline Utf8Text utf8_inspect(const char* s, std::size_t n, std::size_t max_bytes) noexcept {
  Utf8Text t{s, n, n, true, false};
  if (n > max_bytes) [[unlikely]] {
    t.size = utf8_cut(s, max_bytes);
    t.out_size = t.size;
    t.truncated = true;
  }
  if (!is_ascii(s, t.size)) [[unlikely]]
    utf8_inspect_slow(t);
  return t;
}

}  // namespace tracecast::detail
