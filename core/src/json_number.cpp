#include "tracecast/json_number.h"

#include <charconv>
#include <cmath>
#include <system_error>

namespace tracecast {
namespace {

// The length of the JSON number at the start of `s` (sign, digits, fraction, exponent), by
// the characters it may hold; the caller's parser has checked the grammar.
std::size_t number_length(std::string_view s) noexcept {
  std::size_t n = 0;
  while (n < s.size()) {
    const char c = s[n];
    if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
      ++n;
    } else {
      break;
    }
  }
  return n;
}

// The number's decimal magnitude, roughly: the position of its first nonzero digit relative
// to the decimal point plus its exponent (saturated). Negative: |x| < 1. Only its sign is
// used, to tell underflow from overflow.
long decimal_magnitude(std::string_view num) noexcept {
  long mag = 0;
  bool seen_point = false;
  bool seen_nonzero = false;
  std::size_t i = 0;
  for (; i < num.size() && num[i] != 'e' && num[i] != 'E'; ++i) {
    const char c = num[i];
    if (c == '.') {
      seen_point = true;
    } else if (c >= '0' && c <= '9' && !seen_nonzero) {
      if (c != '0') {
        seen_nonzero = true;
        if (!seen_point) ++mag;
      } else if (seen_point) {
        --mag;
      }
    } else if (c >= '0' && c <= '9' && !seen_point) {
      if (mag < 100000) ++mag;
    }
  }
  if (!seen_nonzero) return -1;  // zero
  if (i + 1 < num.size()) {
    bool neg = false;
    std::size_t j = i + 1;
    if (num[j] == '-' || num[j] == '+') neg = num[j++] == '-';
    long e = 0;
    for (; j < num.size(); ++j) {
      if (e < 100000) e = e * 10 + (num[j] - '0');
    }
    mag += neg ? -e : e;
  }
  return mag;
}

}  // namespace

bool json_number_to_double(std::string_view token, double& out) noexcept {
  const std::string_view num = token.substr(0, number_length(token));
  if (num.empty()) return false;
  // JSON has no leading '+' and from_chars takes none; '-' it takes.
  if (num[0] == '+') return false;
  double x = 0;
  const auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), x, std::chars_format::general);
  if (ec == std::errc::result_out_of_range && decimal_magnitude(num) < 0) {
    // from_chars reports underflow as out of range too: a value that small is 0 (its sign
    // kept), not an error. Overflow (1e999) is.
    out = num[0] == '-' ? -0.0 : 0.0;
    return true;
  }
  if (ec != std::errc{} || end != num.data() + num.size()) return false;
  if (!std::isfinite(x)) return false;
  out = x;
  return true;
}

double json_number_exact(std::string_view token, double fast) noexcept {
  if (json_number_is_long(token)) (void)json_number_to_double(token, fast);
  return fast;
}

bool json_number_is_long(std::string_view token) noexcept {
  if (token.size() <= k_json_double_fast_digits) return false;
  std::size_t digits = 0;
  bool leading = true;  // zeros before the first nonzero digit are not significant
  for (const char c : token) {
    if (c >= '0' && c <= '9') {
      if (leading && c == '0') continue;
      leading = false;
      if (++digits > k_json_double_fast_digits) return true;
    } else if (c == '-' || c == '.') {
      continue;
    } else {
      break;  // exponent or end of the number
    }
  }
  return false;
}

}  // namespace tracecast
