// Text the attribute conventions build at mapping time, into fixed caller-owned buffers:
// JSON values (gen_ai.input.messages, OpenInference `metadata`, Langfuse usage_details, ...)
// and the messages of a prompt read from its JSON text. Nothing allocates; what does not fit
// is cut at a code point boundary with the JSON kept valid, and the writer says so (cut()).
#pragma once

#include <array>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "tracecast/llm_request.h"

namespace tracecast::detail {

// Appends JSON text to a fixed buffer. Every write either fits whole or is refused (string
// values may be cut instead, see string()); refused/cut writes set cut().
class JsonOut {
  // Per byte: 0 copied as is, else the letter after the backslash ('u': \u00XX).
  static constexpr auto k_escape = [] {
    std::array<char, 256> t{};
    for (int c = 0; c < 0x20; ++c) t[static_cast<std::size_t>(c)] = 'u';
    t['"'] = '"';
    t['\\'] = '\\';
    t['\n'] = 'n';
    t['\r'] = 'r';
    t['\t'] = 't';
    t['\b'] = 'b';
    t['\f'] = 'f';
    return t;
  }();
  struct Sequence {
    char bytes[8];
    std::uint8_t length;
  };
  // Per byte: what it is written as in a JSON string (itself, \x, or \u00XX) and its length.
  static constexpr auto k_sequence = [] {
    std::array<Sequence, 256> t{};
    constexpr char hex[] = "0123456789abcdef";
    for (std::size_t c = 0; c < 256; ++c) {
      const char e = k_escape[c];
      Sequence& q = t[c];
      if (e == 0) {
        q.bytes[0] = static_cast<char>(c);
        q.length = 1;
      } else if (e != 'u') {
        q.bytes[0] = '\\';
        q.bytes[1] = e;
        q.length = 2;
      } else {
        q.bytes[0] = '\\';
        q.bytes[1] = 'u';
        q.bytes[2] = '0';
        q.bytes[3] = '0';
        q.bytes[4] = hex[c >> 4];
        q.bytes[5] = hex[c & 15];
        q.length = 6;
      }
    }
    return t;
  }();

 public:
  JsonOut(char* buf, std::size_t cap) noexcept : buf_(buf), cap_(cap) {}

  [[nodiscard]] std::size_t room() const noexcept { return cap_ - n_; }
  [[nodiscard]] std::size_t size() const noexcept { return n_; }
  [[nodiscard]] bool cut() const noexcept { return cut_; }
  void mark_cut() noexcept { cut_ = true; }
  [[nodiscard]] std::string_view view() const noexcept { return {buf_, n_}; }
  void rewind(std::size_t n) noexcept { n_ = n; }

  bool raw(std::string_view s) noexcept {
    if (s.size() > room()) {
      cut_ = true;
      return false;
    }
    std::memcpy(buf_ + n_, s.data(), s.size());
    n_ += s.size();
    return true;
  }
  bool ch(char c) noexcept { return raw(std::string_view(&c, 1)); }

  // A quoted, escaped JSON string of `s`, leaving at least `keep` bytes of room after it (for
  // the closing text of the value it is inside). When the whole of `s` does not fit, as much
  // as fits is written, cut before a whole UTF-8 sequence or escape, and cut() is set; the
  // string is still closed. Returns false only when not even the two quotes fit.
  bool string(std::string_view s, std::size_t keep = 0) noexcept {
    if (room() < keep + 2) {
      cut_ = true;
      return false;
    }
    const std::size_t limit = cap_ - keep - 1;  // the closing quote's position at most
    buf_[n_++] = '"';
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* end = p + s.size();
    if (s.size() <= (limit - n_) / 8) {
      // Room for the worst case (8 bytes written a byte): one unchecked pass.
      char* out = buf_ + n_;
      while (p < end) {
        if (end - p >= 8) {  // 8 bytes none of which needs an escape: copied at once (SWAR)
          std::uint64_t v;
          std::memcpy(&v, p, 8);
          constexpr std::uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
          const std::uint64_t quote = v ^ (ones * '"'), slash = v ^ (ones * '\\');
          const std::uint64_t special = ((v - ones * 0x20) & ~v) | ((quote - ones) & ~quote) | ((slash - ones) & ~slash);
          if ((special & high) == 0) {
            std::memcpy(out, p, 8);
            out += 8;
            p += 8;
            continue;
          }
          for (int k = 0; k < 8; ++k) {  // some byte of the 8 does: all 8 through the table
            const unsigned char c = *p++;
            std::memcpy(out, k_sequence[c].bytes, 8);
            out += k_sequence[c].length;
          }
          continue;
        }
        // Branch-free: every byte writes its 8-byte table entry and advances by its length
        // (the worst-case room check is 8 bytes a byte). Prompts holding JSON text have a quote
        // or backslash every few bytes: a branch per escape mispredicts.
        const unsigned char c = *p++;
        std::memcpy(out, k_sequence[c].bytes, 8);
        out += k_sequence[c].length;
      }
      n_ = static_cast<std::size_t>(out - buf_);
      buf_[n_++] = '"';
      return true;
    }
    // Not room for the worst case: byte by byte, checking the room, so a cut falls before a
    // whole UTF-8 sequence or escape.
    while (p < end) {
      const unsigned char c = *p;
      const char e = k_escape[c];
      if (e == 0 && c < 0x80) {
        if (n_ >= limit) {
          cut_ = true;
          break;
        }
        buf_[n_++] = static_cast<char>(c);
        ++p;
        continue;
      }
      if (e == 0) {
        // A UTF-8 sequence moves whole (a lone or broken one byte by byte: the encoder
        // repairs invalid UTF-8 later, what matters here is not splitting a valid one).
        std::size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (len > static_cast<std::size_t>(end - p)) len = 1;
        if (len > limit - n_) {
          cut_ = true;
          break;
        }
        std::memcpy(buf_ + n_, p, len);
        n_ += len;
        p += len;
        continue;
      }
      const std::size_t len = e == 'u' ? 6 : 2;
      if (len > limit - n_) {
        cut_ = true;
        break;
      }
      if (e == 'u') {
        static constexpr char hex[] = "0123456789abcdef";
        std::memcpy(buf_ + n_, "\\u00", 4);
        buf_[n_ + 4] = hex[c >> 4];
        buf_[n_ + 5] = hex[c & 15];
      } else {
        buf_[n_] = '\\';
        buf_[n_ + 1] = e;
      }
      n_ += len;
      ++p;
    }
    buf_[n_++] = '"';
    return true;
  }

  bool int64(std::int64_t v) noexcept {
    char tmp[24];
    const auto r = std::to_chars(tmp, tmp + sizeof tmp, v);
    return raw(std::string_view(tmp, static_cast<std::size_t>(r.ptr - tmp)));
  }
  // Shortest round-trip form; JSON has no NaN or infinity: null.
  bool float64(double v) noexcept {
    if (!std::isfinite(v)) return raw("null");
    char tmp[32];
    const auto r = std::to_chars(tmp, tmp + sizeof tmp, v);
    return raw(std::string_view(tmp, static_cast<std::size_t>(r.ptr - tmp)));
  }
  // Any attribute value as JSON (arrays as arrays; empty as null).
  bool value(const AttributeValue& v, std::size_t keep) noexcept;

 private:
  char* buf_;
  std::size_t cap_;
  std::size_t n_ = 0;
  bool cut_ = false;
};

// The messages of a prompt: role and text views (text in the caller's buffer).
struct PromptMessages {
  std::span<std::string_view> roles;  // capacity: as many as texts
  std::span<std::string_view> texts;
  char* text_buf = nullptr;
  std::size_t text_cap = 0;
  std::size_t count = 0;
  bool cut = false;  // messages or text left out for lack of room
};

// Reads `prompt`: a JSON array of messages ({"role", "content"} with content a string or an
// array of parts whose "text" members are joined by '\n'; Responses items alike; a bare
// string element is a user message), or anything else as one user message holding the whole
// prompt. Objects without a role are skipped. Pure apart from `m`; no allocation.
void read_prompt_messages(std::string_view prompt, PromptMessages& m) noexcept;

}  // namespace tracecast::detail
