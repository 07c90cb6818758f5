// Text helpers of the gateway parsers (internal): UTF-8 checks and repair, JSON minifying,
// truncated-JSON repair, SSE line handling. All noexcept, none allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tracecast::detail {

// Length of the longest prefix of s no longer than max_len that does not split a UTF-8
// sequence (assumes s is UTF-8).
[[nodiscard]] std::size_t utf8_cut(std::string_view s, std::size_t max_len) noexcept;

// Copies src to dst (same length), replacing every byte that is not part of a valid UTF-8
// sequence (RFC 3629: no overlongs, surrogates or code points above U+10FFFF) with '?'.
// Returns the number of bytes replaced.
std::size_t sanitize_utf8(std::string_view src, char* dst) noexcept;

// Removes the whitespace outside strings of valid JSON text. dst holds at least src.size()
// bytes; returns the bytes written.
std::size_t minify_json(std::string_view src, char* dst) noexcept;

// Outcome of repair_truncated_json.
enum class RepairKind : std::uint8_t {
  none,       // nothing to repair (balanced, no open string): the damage is elsewhere
  truncated,  // closed an open string and/or open containers
  trailing,   // a complete value followed by other bytes: cut after the value
  too_deep,   // nesting deeper than the repair can track
};
struct Repair {
  RepairKind kind = RepairKind::none;
  std::size_t new_size = 0;  // valid bytes in buf after the repair
  std::size_t kept = 0;      // bytes of the original text kept (before any appended closer)
};
// The closers a repair may append at most (an open string's quote plus one per container).
inline constexpr std::size_t k_repair_max_depth = 1024;
inline constexpr std::size_t k_repair_slack = k_repair_max_depth + 2;

// Makes JSON text that ends early parseable up to the cut: drops a dangling escape or partial
// UTF-8 sequence, closes an open string, then closes the open arrays and objects. buf holds
// size bytes and has room for size + k_repair_slack.
[[nodiscard]] Repair repair_truncated_json(char* buf, std::size_t size) noexcept;

}  // namespace tracecast::detail
