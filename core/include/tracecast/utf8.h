// UTF-8 rules shared by every module: cutting text to a byte limit without splitting a
// sequence, and telling a well-formed sequence from an ill-formed one.
#pragma once

#include <cstddef>
#include <string_view>

namespace tracecast {

// The longest prefix of `s` of at most `max_bytes` bytes that does not end inside a UTF-8
// multi-byte sequence: a cut backs up over at most three continuation bytes (10xxxxxx) and
// the lead byte they follow. Bytes that are not valid UTF-8 are left for the encoder to
// replace. Pure; no allocation.
[[nodiscard]] constexpr std::string_view utf8_prefix(std::string_view s, std::size_t max_bytes) noexcept {
  if (s.size() <= max_bytes) return s;
  // s[max_bytes] is the first byte left out. Back up over the continuation bytes (10xxxxxx)
  // before it to the lead byte of the sequence that may straddle the cut.
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  std::size_t n = max_bytes;
  if ((byte(n) & 0xC0) != 0x80) return s.substr(0, n);  // the cut is at a boundary
  std::size_t kept = 0;  // bytes of the straddling sequence before the cut
  while (n > 0 && kept < 3 && (byte(n - 1) & 0xC0) == 0x80) {
    --n;
    ++kept;
  }
  if (n == 0) return s.substr(0, max_bytes);  // no lead byte: invalid input, cut by length
  const unsigned char lead = byte(n - 1);
  const std::size_t len = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  // The lead's sequence is longer than what precedes the cut: leave it out whole.
  if (len > kept + 1) return s.substr(0, n - 1);
  return s.substr(0, max_bytes);
}

// Length of the well-formed UTF-8 sequence at s (n >= 1 bytes available, s[0] >= 0x80), or 0
// with `bad` set to the length of the maximal ill-formed subpart (>= 1), the bytes one U+FFFD
// replaces (Unicode 3.9, Table 3-7: no overlong forms, no surrogates, nothing above
// U+10FFFF). The one definition: both encoders, the metrics writer and the sink use it.
// Pure; no allocation.
[[nodiscard]] constexpr std::size_t utf8_sequence(const unsigned char* s, std::size_t n, std::size_t& bad) noexcept {
  const unsigned c = s[0];
  bad = 1;
  if (c < 0xC2 || c > 0xF4) return 0;
  const std::size_t need = c < 0xE0 ? 2 : (c < 0xF0 ? 3 : 4);
  unsigned lo = 0x80, hi = 0xBF;
  if (c == 0xE0) lo = 0xA0;
  else if (c == 0xED) hi = 0x9F;  // no surrogates
  else if (c == 0xF0) lo = 0x90;  // no overlong 4-byte forms
  else if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  if (n < 2 || s[1] < lo || s[1] > hi) return 0;
  for (std::size_t k = 2; k < need; ++k) {
    if (k >= n || s[k] < 0x80 || s[k] > 0xBF) {
      bad = k;
      return 0;
    }
  }
  return need;
}

// True when `s` is well-formed UTF-8 without a control character (C0, DEL, C1): the one rule
// for every resource string a configuration gives (service.name, service.version, the extra
// resource attributes, a destination's resource_attributes). Pure; no allocation.
[[nodiscard]] inline bool is_clean_utf8_text(std::string_view s) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  for (std::size_t i = 0; i < s.size();) {
    const unsigned c = p[i];
    if (c < 0x20 || c == 0x7F) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t bad = 0;
    const std::size_t len = utf8_sequence(p + i, s.size() - i, bad);
    if (len == 0 || (c == 0xC2 && p[i + 1] < 0xA0)) return false;  // ill-formed, or U+0080..U+009F
    i += len;
  }
  return true;
}

}  // namespace tracecast
