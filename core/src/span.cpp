#include "tracecast/span.h"

namespace tracecast {
namespace {

constexpr char k_hex_digits[] = "0123456789abcdef";

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

template <std::size_t N>
bool parse_hex(std::string_view hex, std::array<std::uint8_t, N>& out) noexcept {
  if (hex.size() != 2 * N) return false;
  for (std::size_t i = 0; i < N; ++i) {
    const int hi = hex_value(hex[2 * i]);
    const int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return true;
}

template <std::size_t N>
void write_hex(const std::array<std::uint8_t, N>& in, char* out) noexcept {
  for (std::size_t i = 0; i < N; ++i) {
    out[2 * i] = k_hex_digits[in[i] >> 4];
    out[2 * i + 1] = k_hex_digits[in[i] & 0xf];
  }
}

}  // namespace

TraceId TraceId::from_hex(std::string_view hex) noexcept {
  TraceId id;
  if (!parse_hex(hex, id.bytes)) id.bytes = {};
  return id;
}

void TraceId::to_hex(char (&out)[32]) const noexcept { write_hex(bytes, out); }

SpanId SpanId::from_hex(std::string_view hex) noexcept {
  SpanId id;
  if (!parse_hex(hex, id.bytes)) id.bytes = {};
  return id;
}

void SpanId::to_hex(char (&out)[16]) const noexcept { write_hex(bytes, out); }

}  // namespace tracecast
