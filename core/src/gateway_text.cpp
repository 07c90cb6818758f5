#include "gateway_text.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace tracecast::detail {
namespace {

[[nodiscard]] inline std::uint8_t byte_at(std::string_view s, std::size_t i) noexcept {
  return static_cast<std::uint8_t>(s[i]);
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 when s[i] does not start one.
[[nodiscard]] std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept {
  const std::uint8_t b0 = byte_at(s, i);
  if (b0 < 0x80) return 1;
  const std::size_t left = s.size() - i;
  auto cont = [&](std::size_t k) { return k < left && (byte_at(s, i + k) & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) return cont(1) ? 2 : 0;
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    const std::uint8_t b1 = byte_at(s, i + 1);
    if (b0 == 0xE0 && b1 < 0xA0) return 0;  // overlong
    if (b0 == 0xED && b1 > 0x9F) return 0;  // surrogate
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const std::uint8_t b1 = byte_at(s, i + 1);
    if (b0 == 0xF0 && b1 < 0x90) return 0;  // overlong
    if (b0 == 0xF4 && b1 > 0x8F) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

[[nodiscard]] constexpr bool is_json_space(char c) noexcept {
  return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

// Takes the next byte inside a JSON string (after its opening quote); false when the byte is the
// closing quote. escaped carries a pending backslash from one byte to the next.
[[nodiscard]] constexpr bool string_continues(char c, bool& escaped) noexcept {
  if (escaped) {
    escaped = false;
    return true;
  }
  if (c == '\\') {
    escaped = true;
    return true;
  }
  return c != '"';
}

}  // namespace

std::size_t utf8_cut(std::string_view s, std::size_t max_len) noexcept {
  if (s.size() <= max_len) return s.size();
  std::size_t n = max_len;
  // Back off over continuation bytes: s[n] must start a sequence (or be ASCII).
  while (n > 0 && (byte_at(s, n) & 0xC0) == 0x80) --n;
  return n;
}

std::size_t sanitize_utf8(std::string_view src, char* dst) noexcept {
  std::size_t replaced = 0;
  std::size_t i = 0;
  while (i < src.size()) {
    const std::size_t n = utf8_sequence(src, i);
    if (n == 0) {
      dst[i] = '?';
      ++replaced;
      ++i;
      continue;
    }
    std::memcpy(dst + i, src.data() + i, n);
    i += n;
  }
  return replaced;
}

std::size_t minify_json(std::string_view src, char* dst) noexcept {
  std::size_t out = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : src) {
    if (in_string) {
      dst[out++] = c;
      in_string = string_continues(c, escaped);
      continue;
    }
    if (is_json_space(c)) continue;
    if (c == '"') in_string = true;
    dst[out++] = c;
  }
  return out;
}

Repair repair_truncated_json(char* buf, std::size_t size) noexcept {
  std::array<char, k_repair_max_depth> closers{};
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  bool string_is_key = false;
  bool in_scalar = false;   // inside a number or literal
  bool expect_key = false;  // in an object, after '{' or ',': the next string is a key
  std::size_t string_start = 0;
  std::size_t root_end = 0;  // just past the first complete top-level container
  // Where the text can be cut and closed into valid JSON: just after an opener or a complete
  // value, never after a key, a ':' or a ',' (a cut there would leave `{"k":}` or `[1,]`).
  std::size_t safe_end = 0;
  std::size_t safe_depth = 0;
  for (std::size_t i = 0; i < size; ++i) {
    const char c = buf[i];
    if (in_string) {
      in_string = string_continues(c, escaped);
      if (!in_string && !string_is_key) {
        safe_end = i + 1;
        safe_depth = depth;
      }
      continue;
    }
    if (in_scalar) {
      if (!is_json_space(c) && c != ',' && c != '}' && c != ']' && c != ':') continue;
      in_scalar = false;  // followed by a delimiter: complete
      safe_end = i;
      safe_depth = depth;
    }
    switch (c) {
      case '"':
        in_string = true;
        string_is_key = expect_key;
        string_start = i;
        break;
      case '{':
      case '[':
        if (depth == closers.size()) return {RepairKind::too_deep, size, size};
        closers[depth++] = c == '{' ? '}' : ']';
        expect_key = c == '{';
        safe_end = i + 1;
        safe_depth = depth;
        break;
      case '}':
      case ']':
        if (depth == 0) return {RepairKind::none, size, size};  // unbalanced: not a truncation
        --depth;
        if (depth == 0 && root_end == 0) root_end = i + 1;
        expect_key = false;
        safe_end = i + 1;
        safe_depth = depth;
        break;
      case ',':
        expect_key = depth != 0 && closers[depth - 1] == '}';
        break;
      case ':':
        expect_key = false;
        break;
      default:
        if (!is_json_space(c)) in_scalar = true;
        break;
    }
    if (depth == 0 && root_end != 0 && !in_string) {
      // A complete root value; anything after it but whitespace is trailing junk.
      std::size_t j = root_end;
      while (j < size && is_json_space(buf[j])) ++j;
      if (j < size) return {RepairKind::trailing, root_end, root_end};
      return {RepairKind::none, size, size};
    }
  }
  if (!in_string && depth == 0) return {RepairKind::none, size, size};
  std::size_t n = size;
  std::size_t close_depth = depth;
  if (in_string && !string_is_key) {
    // A string value cut: what was read of it is kept. Drop a dangling escape ("\", "\u12")
    // and a partial UTF-8 sequence, then close it.
    std::size_t last_escape = 0;  // 0: none (string_start is never inside the content)
    std::size_t escape_len = 0;
    for (std::size_t i = string_start + 1; i < n; ++i) {
      if (buf[i] != '\\') continue;
      last_escape = i;
      escape_len = (i + 1 < n && buf[i + 1] == 'u') ? 6 : 2;
      i += 1;  // skip the escaped character
    }
    if (last_escape != 0 && last_escape + escape_len > n) n = last_escape;
    std::size_t lead = n;
    while (lead > string_start + 1 && n - lead < 3 &&
           (static_cast<std::uint8_t>(buf[lead - 1]) & 0xC0) == 0x80)
      --lead;
    if (lead > string_start + 1) {
      const auto b0 = static_cast<std::uint8_t>(buf[lead - 1]);
      const std::size_t want = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 1;
      if (lead - 1 + want > n) n = lead - 1;
    }
  } else {
    // Cut inside a key, after a key, ':' or ',', or inside a number or literal (which may be
    // the start of a longer one): back to the last complete value or opener.
    n = safe_end;
    close_depth = safe_depth;
    in_string = false;
  }
  const std::size_t kept = n;
  if (in_string) buf[n++] = '"';
  while (close_depth > 0) buf[n++] = closers[--close_depth];
  return {RepairKind::truncated, n, kept};
}

}  // namespace tracecast::detail

namespace tracecast::detail {
namespace {

[[nodiscard]] constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// One escape starting at s[i] == '\\'.
struct Escape {
  enum Kind : std::uint8_t { simple, code_point, bad_surrogate, bad_short_u, bad_letter };
  Kind kind = simple;
  std::uint32_t cp = 0;  // the character (simple, code_point)
  std::size_t len = 0;   // bytes of s it takes
};

// Reads up to four hex digits at s[i..]; returns how many were hex.
[[nodiscard]] std::size_t read_hex4(std::string_view s, std::size_t i, std::uint32_t& v) noexcept {
  v = 0;
  std::size_t k = 0;
  while (k < 4 && i + k < s.size()) {
    const int h = hex_value(s[i + k]);
    if (h < 0) break;
    v = (v << 4) | static_cast<std::uint32_t>(h);
    ++k;
  }
  return k;
}

[[nodiscard]] Escape decode_escape(std::string_view s, std::size_t i) noexcept {
  if (i + 1 >= s.size()) return {Escape::bad_letter, 0, 1};
  switch (s[i + 1]) {
    case '"': return {Escape::simple, '"', 2};
    case '\\': return {Escape::simple, '\\', 2};
    case '/': return {Escape::simple, '/', 2};
    case 'b': return {Escape::simple, '\b', 2};
    case 'f': return {Escape::simple, '\f', 2};
    case 'n': return {Escape::simple, '\n', 2};
    case 'r': return {Escape::simple, '\r', 2};
    case 't': return {Escape::simple, '\t', 2};
    case 'u': break;
    default: {
      // An unknown escape letter: the backslash and the whole character after it (a
      // multi-byte one too, or its continuation bytes would be left on their own).
      const auto b = static_cast<std::uint8_t>(s[i + 1]);
      const std::size_t n = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
      return {Escape::bad_letter, 0, 1 + std::min(n, s.size() - i - 1)};
    }
  }
  std::uint32_t hi = 0;
  const std::size_t k = read_hex4(s, i + 2, hi);
  if (k < 4) return {Escape::bad_short_u, 0, 2 + k};
  if (hi >= 0xDC00 && hi <= 0xDFFF) return {Escape::bad_surrogate, 0, 6};
  if (hi < 0xD800 || hi > 0xDBFF) return {Escape::code_point, hi, 6};
  // A high surrogate: valid only followed by an escaped low one.
  std::uint32_t lo = 0;
  if (i + 7 < s.size() && s[i + 6] == '\\' && s[i + 7] == 'u' && read_hex4(s, i + 8, lo) == 4 &&
      lo >= 0xDC00 && lo <= 0xDFFF)
    return {Escape::code_point, 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00), 12};
  return {Escape::bad_surrogate, 0, 6};
}

[[nodiscard]] std::size_t encode_utf8(std::uint32_t cp, char* out) noexcept {
  if (cp < 0x80) {
    out[0] = static_cast<char>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<char>(0xC0 | (cp >> 6));
    out[1] = static_cast<char>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<char>(0xE0 | (cp >> 12));
    out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out[2] = static_cast<char>(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = static_cast<char>(0xF0 | (cp >> 18));
  out[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
  out[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  out[3] = static_cast<char>(0x80 | (cp & 0x3F));
  return 4;
}

}  // namespace

std::size_t unescape_json_string(std::string_view src, char* dst, std::size_t dst_room,
                                 std::size_t& bad) noexcept {
  bool cut = false;
  return unescape_json_string(src, dst, dst_room, bad, cut);
}

std::size_t unescape_json_string(std::string_view src, char* dst, std::size_t dst_room,
                                 std::size_t& bad, bool& cut) noexcept {
  std::size_t out = 0;
  std::size_t i = 0;
  while (i < src.size()) {
    const void* bs = std::memchr(src.data() + i, '\\', src.size() - i);
    const std::size_t plain_end =
        bs == nullptr ? src.size() : static_cast<std::size_t>(static_cast<const char*>(bs) - src.data());
    if (plain_end > i) {
      const std::string_view plain = src.substr(i, plain_end - i);
      const std::size_t n = utf8_cut(plain, dst_room - out);
      std::memcpy(dst + out, plain.data(), n);
      out += n;
      if (n < plain.size()) {
        cut = true;
        return out;
      }
      i = plain_end;
      if (i == src.size()) break;
    }
    const Escape e = decode_escape(src, i);
    char buf[4];
    std::size_t n;
    if (e.kind == Escape::simple || e.kind == Escape::code_point) {
      n = encode_utf8(e.cp, buf);
    } else {
      ++bad;
      std::memcpy(buf, k_replacement_utf8, 3);
      n = 3;
    }
    if (dst_room - out < n) {
      cut = true;
      return out;
    }
    std::memcpy(dst + out, buf, n);
    out += n;
    i += e.len;
  }
  return out;
}

std::size_t escape_json_char(std::uint32_t cp, char* out) noexcept {
  static constexpr char k_hex[] = "0123456789abcdef";
  switch (cp) {
    case '"': out[0] = '\\'; out[1] = '"'; return 2;
    case '\\': out[0] = '\\'; out[1] = '\\'; return 2;
    case '\b': out[0] = '\\'; out[1] = 'b'; return 2;
    case '\f': out[0] = '\\'; out[1] = 'f'; return 2;
    case '\n': out[0] = '\\'; out[1] = 'n'; return 2;
    case '\r': out[0] = '\\'; out[1] = 'r'; return 2;
    case '\t': out[0] = '\\'; out[1] = 't'; return 2;
    default: break;
  }
  if (cp < 0x20) {
    const char esc[6] = {'\\', 'u', '0', '0', k_hex[cp >> 4], k_hex[cp & 15]};
    std::memcpy(out, esc, 6);
    return 6;
  }
  return encode_utf8(cp, out);
}

bool canonical_json(std::string_view src, char* dst, std::size_t dst_room, std::size_t& written,
                    std::size_t& bad) noexcept {
  std::size_t out = 0;
  std::size_t i = 0;
  // The most one step writes: a control byte as \u00xx.
  constexpr std::size_t k_step = 6;
  while (i < src.size()) {
    if (dst_room - out < k_step) return false;
    const char c = src[i];
    if (c != '"') {
      if (!is_json_space(c)) dst[out++] = c;
      ++i;
      continue;
    }
    dst[out++] = '"';
    ++i;
    while (i < src.size() && src[i] != '"') {
      if (dst_room - out < k_step) return false;
      const auto u = static_cast<std::uint8_t>(src[i]);
      if (u != '\\') {
        if (u < 0x20) {
          out += escape_json_char(u, dst + out);
        } else {
          dst[out++] = src[i];
        }
        ++i;
        continue;
      }
      const Escape e = decode_escape(src, i);
      if (e.kind == Escape::simple || e.kind == Escape::code_point) {
        out += escape_json_char(e.cp, dst + out);
      } else {
        ++bad;
        std::memcpy(dst + out, k_replacement_utf8, 3);
        out += 3;
      }
      i += e.len;
    }
    if (i < src.size()) {
      if (dst_room == out) return false;
      dst[out++] = '"';
      ++i;
    }
  }
  written = out;
  return true;
}

bool has_bad_json_escape(std::string_view text) noexcept {
  std::size_t i = 0;
  for (;;) {
    const void* bs = std::memchr(text.data() + i, '\\', text.size() - i);
    if (bs == nullptr) return false;
    i = static_cast<std::size_t>(static_cast<const char*>(bs) - text.data());
    const Escape e = decode_escape(text, i);
    if (e.kind != Escape::simple && e.kind != Escape::code_point) return true;
    i += e.len;
    if (i >= text.size()) return false;
  }
}

std::size_t fix_json_escapes(char* text, std::size_t n, std::size_t& bad) noexcept {
  std::size_t w = 0;
  std::size_t i = 0;
  while (i < n) {
    if (text[i] != '\\') {
      text[w++] = text[i++];
      continue;
    }
    const Escape e = decode_escape({text, n}, i);
    switch (e.kind) {
      case Escape::simple:
      case Escape::code_point:
        std::memmove(text + w, text + i, e.len);
        w += e.len;
        break;
      case Escape::bad_surrogate:
        ++bad;
        std::memcpy(text + w, "\\ufffd", 6);
        w += 6;
        break;
      case Escape::bad_short_u:
        ++bad;
        if (e.len >= 3) {
          std::memcpy(text + w, k_replacement_utf8, 3);
          w += 3;
        } else {
          text[w++] = '?';
        }
        break;
      case Escape::bad_letter:
        ++bad;
        text[w++] = '?';  // the letter after it stays, as plain text
        i += 1;
        continue;
    }
    i += e.len;
  }
  return w;
}

std::size_t fix_json_escapes_to(std::string_view text, char* out, std::size_t room, std::size_t& bad) noexcept {
  std::size_t w = 0;
  std::size_t i = 0;
  std::size_t found = 0;
  while (i < text.size()) {
    // The plain run up to the next backslash, in one copy.
    const void* bs = std::memchr(text.data() + i, '\\', text.size() - i);
    const std::size_t plain_end =
        bs == nullptr ? text.size() : static_cast<std::size_t>(static_cast<const char*>(bs) - text.data());
    if (plain_end - i > room - w) return k_no_room;
    std::memcpy(out + w, text.data() + i, plain_end - i);
    w += plain_end - i;
    i = plain_end;
    if (i == text.size()) break;
    const Escape e = decode_escape(text, i);
    if (e.kind == Escape::simple || e.kind == Escape::code_point) {  // valid: kept as written
      if (e.len > room - w) return k_no_room;
      std::memcpy(out + w, text.data() + i, e.len);
      w += e.len;
    } else if (e.kind == Escape::bad_surrogate) {  // \ufffd: the same length, as in place
      ++found;
      if (room - w < 6) return k_no_room;
      std::memcpy(out + w, "\\ufffd", 6);
      w += 6;
    } else {  // what unescape_json_string decodes it to: one U+FFFD for the whole escape
      ++found;
      if (room - w < 3) return k_no_room;
      std::memcpy(out + w, k_replacement_utf8, 3);
      w += 3;
    }
    i += e.len;
  }
  bad += found;
  return w;
}

}  // namespace tracecast::detail
