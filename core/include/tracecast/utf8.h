// Cutting text to a byte limit without splitting a UTF-8 sequence.
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

}  // namespace tracecast
