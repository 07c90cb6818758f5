// Reading a JSON number as a double, correctly for every digit count. Shared by every module
// that reads numbers from outside input with simdjson's On-Demand API.
#pragma once

#include <string_view>

namespace tracecast {

// Why this exists: simdjson 3.0.1 (Debian bookworm's) On-Demand `get_double()` returns wrong
// values, with no error, for numbers of more than 19 significant digits that start "0." or
// "-0." (0.7000000000000000000001 reads as 0.00087, 0.99999999999999999999999999 as 1.6e-7).
// Its DOM API reads them right (it falls back to strtod).

// Significant digits above which simdjson's fast path gives way to the faulty one.
inline constexpr std::size_t k_json_double_fast_digits = 19;

// `token` is a JSON number's raw text (simdjson's raw_json_token(): trailing whitespace or
// a following ',' ']' '}' may be present and is ignored). Stores the nearest double to it
// in `out` (round to nearest even, via std::from_chars) and returns true; returns false,
// `out` untouched, when the token does not start with a number or the number is out of the
// double range (1e999). Underflow (1e-999) reads as 0 or a subnormal. No allocation;
// thread-safe.
[[nodiscard]] bool json_number_to_double(std::string_view token, double& out) noexcept;

// True when `token` (a JSON number's raw text) may be misread by simdjson's On-Demand
// get_double(): more than k_json_double_fast_digits significant digits. Cheap for short
// tokens (a length check). No allocation; thread-safe.
[[nodiscard]] bool json_number_is_long(std::string_view token) noexcept;

// `fast`, simdjson's On-Demand reading of the number token `token`, made exact: when the
// token is long (json_number_is_long) it is read again from its text (json_number_to_double;
// `fast` kept if that fails). The one place the two steps above are put together. No
// allocation; thread-safe.
[[nodiscard]] double json_number_exact(std::string_view token, double fast) noexcept;

}  // namespace tracecast
