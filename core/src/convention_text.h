// Text the attribute conventions build at mapping time, into fixed caller-owned buffers:
// JSON values (gen_ai.input.messages, OpenInference `metadata`, Langfuse usage_details, ...)
// and the messages of a prompt read from its JSON text. Nothing allocates; what does not fit
// is cut at a code point boundary with the JSON kept valid, and the writer says so (cut()).
#pragma once

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
    while (p < end) {
      // A run of bytes that need no escape, copied at once.
      const unsigned char* run = p;
      while (run < end && *run >= 0x20 && *run != '"' && *run != '\\' && *run < 0x80) ++run;
      if (run != p) {
        std::size_t len = static_cast<std::size_t>(run - p);
        if (len > limit - n_) {
          len = limit - n_;
          std::memcpy(buf_ + n_, p, len);
          n_ += len;
          cut_ = true;
          break;
        }
        std::memcpy(buf_ + n_, p, len);
        n_ += len;
        p = run;
        continue;
      }
      const unsigned char c = *p;
      if (c >= 0x80) {
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
      char esc[6] = {'\\', 0, 0, 0, 0, 0};
      std::size_t len = 2;
      switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default: {
          static constexpr char hex[] = "0123456789abcdef";
          esc[1] = 'u';
          esc[2] = '0';
          esc[3] = '0';
          esc[4] = hex[c >> 4];
          esc[5] = hex[c & 15];
          len = 6;
        }
      }
      if (len > limit - n_) {
        cut_ = true;
        break;
      }
      std::memcpy(buf_ + n_, esc, len);
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

// Appends the UTF-8 text of the JSON string body `raw` (between its quotes, escapes as
// written) to `out` (at most `room` bytes, cut at a code point); returns the bytes written
// and sets `cut` when not all fit. A malformed escape becomes U+FFFD.
std::size_t json_unescape(std::string_view raw, char* out, std::size_t room, bool& cut) noexcept;

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
