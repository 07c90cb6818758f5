#include "convention_text.h"

#include "gateway_text.h"

#include "tracecast/utf8.h"

namespace tracecast::detail {

bool JsonOut::value(const AttributeValue& v, std::size_t keep) noexcept {
  switch (v.type()) {
    case ValueType::empty: return raw("null");
    case ValueType::string: return string(v.as_string(), keep);
    case ValueType::boolean: return raw(v.as_bool() ? "true" : "false");
    case ValueType::int64: return int64(v.as_int64());
    case ValueType::float64: return float64(v.as_double());
    case ValueType::string_array: {
      if (!ch('[')) return false;
      bool first = true;
      for (std::string_view s : v.as_strings()) {
        if (!first && !ch(',')) return false;
        first = false;
        if (!string(s, keep + 1) || cut()) break;
      }
      return ch(']');
    }
    case ValueType::bool_array: {
      if (!ch('[')) return false;
      bool first = true;
      for (bool b : v.as_bools()) {
        if ((!first && !ch(',')) || !raw(b ? "true" : "false")) return false;
        first = false;
      }
      return ch(']');
    }
    case ValueType::int64_array: {
      if (!ch('[')) return false;
      bool first = true;
      for (std::int64_t i : v.as_int64s()) {
        if ((!first && !ch(',')) || !int64(i)) return false;
        first = false;
      }
      return ch(']');
    }
    case ValueType::float64_array: {
      if (!ch('[')) return false;
      bool first = true;
      for (double d : v.as_doubles()) {
        if ((!first && !ch(',')) || !float64(d)) return false;
        first = false;
      }
      return ch(']');
    }
  }
  return false;
}

namespace {

// A minimal reader of the prompt's JSON: enough to walk arrays and objects and find the
// string members a message has. Any surprise makes the caller fall back to the whole text.
struct Reader {
  std::string_view s;
  std::size_t i = 0;
  bool bad = false;

  void ws() noexcept {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i;
  }
  bool eat(char c) noexcept {
    ws();
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  [[nodiscard]] char peek() noexcept {
    ws();
    return i < s.size() ? s[i] : '\0';
  }
  // The body of the string at i (escapes as written); i moves past its closing quote.
  std::string_view string() noexcept {
    ws();
    if (i >= s.size() || s[i] != '"') {
      bad = true;
      return {};
    }
    const std::size_t start = ++i;
    while (i < s.size() && s[i] != '"') i += s[i] == '\\' ? 2 : 1;
    if (i >= s.size()) {
      bad = true;
      return {};
    }
    return s.substr(start, i++ - start);
  }
  void skip() noexcept {  // any value
    const char c = peek();
    if (c == '"') {
      (void)string();
      return;
    }
    if (c == '{' || c == '[') {
      int depth = 0;
      while (i < s.size()) {
        const char d = s[i];
        if (d == '"') {
          (void)string();
          if (bad) return;
          continue;
        }
        ++i;
        if (d == '{' || d == '[') ++depth;
        else if ((d == '}' || d == ']') && --depth == 0) return;
      }
      bad = true;
      return;
    }
    const std::size_t start = i;
    while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\n' &&
           s[i] != '\r' && s[i] != '\t')
      ++i;
    if (i == start) bad = true;
  }
};

}  // namespace

void read_prompt_messages(std::string_view prompt, PromptMessages& m) noexcept {
  m.count = 0;
  m.cut = false;
  const std::size_t cap = std::min(m.roles.size(), m.texts.size());
  if (cap == 0 || m.text_cap == 0) return;
  std::size_t used = 0;  // bytes of m.text_buf
  Reader r{prompt};
  auto add_text = [&](std::string_view raw, bool separate) -> std::string_view {
    if (separate && used < m.text_cap) m.text_buf[used++] = '\n';
    const std::size_t start = used;
    std::size_t bad_escapes = 0;  // become U+FFFD (the gateway's rule for every string)
    used += unescape_json_string(raw, m.text_buf + used, m.text_cap - used, bad_escapes, m.cut);
    return {m.text_buf + start, used - start};
  };
  bool ok = r.eat('[');
  bool first_element = true;
  while (ok && !r.bad) {
    if (r.eat(']')) break;
    if (!first_element && !r.eat(',')) {
      ok = false;
      break;
    }
    first_element = false;
    const char c = r.peek();
    std::string_view role;
    const std::size_t text_start = used;
    bool has_text = false;
    if (c == '"') {  // a bare string (embeddings input, a list of texts)
      role = "user";
      (void)add_text(r.string(), false);
      has_text = true;
    } else if (c == '{') {
      r.eat('{');
      bool first = true;
      while (!r.bad && !r.eat('}')) {
        if (!first && !r.eat(',')) {
          r.bad = true;
          break;
        }
        first = false;
        const std::string_view key = r.string();
        if (r.bad || !r.eat(':')) {
          r.bad = true;
          break;
        }
        if (key == "role" && r.peek() == '"') {
          role = r.string();
        } else if (key == "content" && r.peek() == '"') {
          (void)add_text(r.string(), has_text);
          has_text = true;
        } else if (key == "content" && r.peek() == '[') {
          // Parts: the "text" member of each part object ({"type":"text","text":...},
          // Responses input_text/output_text), joined by '\n'; other parts left out.
          r.eat('[');
          bool first_part = true;
          while (!r.bad && !r.eat(']')) {
            if (!first_part && !r.eat(',')) {
              r.bad = true;
              break;
            }
            first_part = false;
            if (r.peek() != '{') {
              r.skip();
              continue;
            }
            r.eat('{');
            bool first_member = true;
            while (!r.bad && !r.eat('}')) {
              if (!first_member && !r.eat(',')) {
                r.bad = true;
                break;
              }
              first_member = false;
              const std::string_view k = r.string();
              if (r.bad || !r.eat(':')) {
                r.bad = true;
                break;
              }
              if (k == "text" && r.peek() == '"') {
                (void)add_text(r.string(), has_text);
                has_text = true;
              } else {
                r.skip();
              }
            }
          }
        } else {
          r.skip();
        }
      }
    } else {
      r.skip();
    }
    if (r.bad) break;
    if (role.empty()) {
      used = text_start;  // an item without a role (a function call): not a message
      continue;
    }
    if (m.count == cap) {
      m.cut = true;
      used = text_start;
      break;
    }
    m.roles[m.count] = role;
    m.texts[m.count] = std::string_view(m.text_buf + text_start, used - text_start);
    ++m.count;
  }
  if ((!ok || r.bad) && !prompt.empty()) {
    // Not a message list: the whole prompt is one user message's text.
    const std::string_view fit = utf8_prefix(prompt, m.text_cap);
    std::memcpy(m.text_buf, fit.data(), fit.size());
    m.cut = fit.size() != prompt.size();
    m.roles[0] = "user";
    m.texts[0] = std::string_view(m.text_buf, fit.size());
    m.count = cap == 0 ? 0 : 1;
  }
}

}  // namespace tracecast::detail
