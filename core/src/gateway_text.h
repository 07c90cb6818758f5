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

// Makes JSON text that ends early valid JSON up to the cut: a string value cut short keeps what
// was read of it (a dangling escape or partial UTF-8 sequence dropped, then closed); a cut
// inside a key, after a key, ':' or ',', or inside a number or literal goes back to the last
// complete value (or opener); then the open arrays and objects are closed. buf holds size bytes
// and has room for size + k_repair_slack. `kept` never exceeds the text a repaired value reads.
[[nodiscard]] Repair repair_truncated_json(char* buf, std::size_t size) noexcept;

}  // namespace tracecast::detail

namespace tracecast::detail {

// U+FFFD REPLACEMENT CHARACTER in UTF-8.
inline constexpr char k_replacement_utf8[] = "\xEF\xBF\xBD";

// Unescapes the content of a JSON string (the bytes between its quotes, src) into dst, which
// has room for dst_room bytes. Escapes that do not form valid UTF-16 become U+FFFD, each
// counted in `bad`: a lone high or low surrogate, a reversed pair, a \u with fewer than four
// hex digits, an unknown escape letter, a backslash at the very end. Output never splits a
// UTF-8 sequence: when dst runs out the text is cut before the character that does not fit.
// Returns the bytes written. The output is at most 1.5x src (a 2-byte bad escape gives 3).
std::size_t unescape_json_string(std::string_view src, char* dst, std::size_t dst_room,
                                 std::size_t& bad) noexcept;
// The same, also setting `cut` when dst ran out before all of src was read (left as is
// otherwise): for callers that keep what fits and must say that text was cut.
std::size_t unescape_json_string(std::string_view src, char* dst, std::size_t dst_room,
                                 std::size_t& bad, bool& cut) noexcept;

// One character (a code point) as it is written inside a JSON string in the canonical form:
// '"' and '\\' escaped, \b \f \n \r \t for those, \u00xx for the other control characters,
// anything else as its UTF-8 bytes. out has room for 6 bytes; returns the bytes written.
std::size_t escape_json_char(std::uint32_t cp, char* out) noexcept;

// Valid JSON text src in its canonical form in dst: no whitespace outside strings, every string
// re-escaped as escape_json_char writes it (so `\u00e9` and `é`, `\u000a` and `\n`, `\/` and
// `/` come out the same); escapes that are not valid UTF-16 become U+FFFD, counted in `bad`.
// The form tool calls take in a record, body or stream alike. false when dst_room is too small
// (1.5x src always suffices for JSON text; `written` is then not set).
[[nodiscard]] bool canonical_json(std::string_view src, char* dst, std::size_t dst_room,
                                  std::size_t& written, std::size_t& bad) noexcept;

// True when the JSON text holds a \u escape that is not valid UTF-16 or an unknown escape
// (what fix_json_escapes rewrites). Only looks at backslashes, so it is cheap on escape-free text.
[[nodiscard]] bool has_bad_json_escape(std::string_view text) noexcept;

// Rewrites, in place, the escapes of JSON text that are not valid UTF-16 so the text decodes
// without lone surrogates: a lone or reversed surrogate \uD800 becomes \uFFFD (same length), a
// \u with fewer than four hex digits becomes U+FFFD's bytes (or '?' when only "\u" was there),
// an unknown escape letter loses its backslash to a '?'. Returns the new length (<= n) and
// counts the rewrites in `bad`.
std::size_t fix_json_escapes(char* text, std::size_t n, std::size_t& bad) noexcept;

inline constexpr std::size_t k_no_room = static_cast<std::size_t>(-1);

// The same rewrite into out (room bytes; not overlapping text), a bad surrogate by \ufffd and
// every other bad escape by U+FFFD's bytes whatever its length, so that the JSON text decodes to what
// unescape_json_string gives for the same string (a 2-byte `\q` grows to 3 bytes: out needs
// up to 1.5x text + 2). Returns the length written and counts the rewrites in `bad`, or
// k_no_room (bad untouched) when room is too small.
[[nodiscard]] std::size_t fix_json_escapes_to(std::string_view text, char* out, std::size_t room,
                                              std::size_t& bad) noexcept;

}  // namespace tracecast::detail
