#include "otlp_protobuf.h"

#include <simdjson.h>

#include <array>
#include <charconv>
#include <cmath>
#include <cstring>
#include <span>
#include <vector>

#include "otlp_reader.h"

namespace tracecast::sink {
namespace pb {

// What a field holds, and so its wire type and its OTLP/JSON form.
enum class Kind : std::uint8_t {
  message,   // 2: a nested message -> object
  string,    // 2: UTF-8 text -> JSON string
  id,        // 2: trace / span id bytes -> lowercase hex
  bytes,     // 2: AnyValue.bytes_value -> base64
  uint32,    // 0 -> number
  enum32,    // 0: int32 enum -> number
  int64,     // 0: two's complement -> decimal string
  boolean,   // 0 -> true / false
  fixed64,   // 1 -> decimal string
  dbl,       // 1 -> number ("NaN", "Infinity", "-Infinity" as strings)
  fixed32,   // 5 -> number
};

struct MsgDesc;
struct FieldDesc {
  std::uint32_t number;
  std::string_view json;
  Kind kind;
  bool repeated;
  const MsgDesc* msg;
};
struct MsgDesc {
  std::span<const FieldDesc> fields;
  bool oneof;  // AnyValue: at most one member written (the last one given)
};

extern const MsgDesc any_value, key_value;

// The schema, from opentelemetry-proto's field numbers.
const FieldDesc array_value_f[] = {{1, "values", Kind::message, true, &any_value}};
const MsgDesc array_value{array_value_f, false};
const FieldDesc kv_list_f[] = {{1, "values", Kind::message, true, &key_value}};
const MsgDesc kv_list{kv_list_f, false};
const FieldDesc any_value_f[] = {{1, "stringValue", Kind::string, false, nullptr},
                                 {2, "boolValue", Kind::boolean, false, nullptr},
                                 {3, "intValue", Kind::int64, false, nullptr},
                                 {4, "doubleValue", Kind::dbl, false, nullptr},
                                 {5, "arrayValue", Kind::message, false, &array_value},
                                 {6, "kvlistValue", Kind::message, false, &kv_list},
                                 {7, "bytesValue", Kind::bytes, false, nullptr}};
const MsgDesc any_value{any_value_f, true};
const FieldDesc key_value_f[] = {{1, "key", Kind::string, false, nullptr}, {2, "value", Kind::message, false, &any_value}};
const MsgDesc key_value{key_value_f, false};
const FieldDesc scope_f[] = {{1, "name", Kind::string, false, nullptr},
                             {2, "version", Kind::string, false, nullptr},
                             {3, "attributes", Kind::message, true, &key_value},
                             {4, "droppedAttributesCount", Kind::uint32, false, nullptr}};
const MsgDesc scope{scope_f, false};
const FieldDesc resource_f[] = {{1, "attributes", Kind::message, true, &key_value},
                                {2, "droppedAttributesCount", Kind::uint32, false, nullptr}};
const MsgDesc resource{resource_f, false};
const FieldDesc status_f[] = {{2, "message", Kind::string, false, nullptr}, {3, "code", Kind::enum32, false, nullptr}};
const MsgDesc status{status_f, false};
const FieldDesc event_f[] = {{1, "timeUnixNano", Kind::fixed64, false, nullptr},
                             {2, "name", Kind::string, false, nullptr},
                             {3, "attributes", Kind::message, true, &key_value},
                             {4, "droppedAttributesCount", Kind::uint32, false, nullptr}};
const MsgDesc event{event_f, false};
const FieldDesc link_f[] = {{1, "traceId", Kind::id, false, nullptr},
                            {2, "spanId", Kind::id, false, nullptr},
                            {3, "traceState", Kind::string, false, nullptr},
                            {4, "attributes", Kind::message, true, &key_value},
                            {5, "droppedAttributesCount", Kind::uint32, false, nullptr},
                            {6, "flags", Kind::fixed32, false, nullptr}};
const MsgDesc link{link_f, false};
const FieldDesc span_f[] = {{1, "traceId", Kind::id, false, nullptr},
                            {2, "spanId", Kind::id, false, nullptr},
                            {3, "traceState", Kind::string, false, nullptr},
                            {4, "parentSpanId", Kind::id, false, nullptr},
                            {16, "flags", Kind::fixed32, false, nullptr},
                            {5, "name", Kind::string, false, nullptr},
                            {6, "kind", Kind::enum32, false, nullptr},
                            {7, "startTimeUnixNano", Kind::fixed64, false, nullptr},
                            {8, "endTimeUnixNano", Kind::fixed64, false, nullptr},
                            {9, "attributes", Kind::message, true, &key_value},
                            {10, "droppedAttributesCount", Kind::uint32, false, nullptr},
                            {11, "events", Kind::message, true, &event},
                            {12, "droppedEventsCount", Kind::uint32, false, nullptr},
                            {13, "links", Kind::message, true, &link},
                            {14, "droppedLinksCount", Kind::uint32, false, nullptr},
                            {15, "status", Kind::message, false, &status}};
const MsgDesc span{span_f, false};
const FieldDesc scope_spans_f[] = {{1, "scope", Kind::message, false, &scope},
                                   {2, "spans", Kind::message, true, &span},
                                   {3, "schemaUrl", Kind::string, false, nullptr}};
const MsgDesc scope_spans{scope_spans_f, false};
const FieldDesc resource_spans_f[] = {{1, "resource", Kind::message, false, &resource},
                                      {2, "scopeSpans", Kind::message, true, &scope_spans},
                                      {3, "schemaUrl", Kind::string, false, nullptr}};
const MsgDesc resource_spans{resource_spans_f, false};
const FieldDesc request_f[] = {{1, "resourceSpans", Kind::message, true, &resource_spans}};
const MsgDesc request{request_f, false};

}  // namespace pb

namespace {

constexpr int k_max_depth = 32;

int wire_type_of(pb::Kind k) noexcept {
  switch (k) {
    case pb::Kind::message:
    case pb::Kind::string:
    case pb::Kind::id:
    case pb::Kind::bytes: return 2;
    case pb::Kind::uint32:
    case pb::Kind::enum32:
    case pb::Kind::int64:
    case pb::Kind::boolean: return 0;
    case pb::Kind::fixed64:
    case pb::Kind::dbl: return 1;
    case pb::Kind::fixed32: return 5;
  }
  return -1;
}

struct Entry {
  std::uint32_t field;       // index into the message's fields
  std::uint64_t value;       // varint / fixed value
  const unsigned char* data; // length-delimited content
  std::size_t size;
};

class Transcoder {
 public:
  Transcoder(std::string& out, std::string& error) : out_(out), error_(error) {}

  bool message(const pb::MsgDesc& desc, const unsigned char* p, const unsigned char* end, int depth) {
    if (depth > k_max_depth) return fail("messages nested too deeply");
    if (static_cast<std::size_t>(depth) >= scratch_.size()) scratch_.resize(static_cast<std::size_t>(depth) + 1);
    std::vector<Entry>& entries = scratch_[static_cast<std::size_t>(depth)];
    entries.clear();
    while (p != end) {
      std::uint64_t tag = 0;
      if (!varint(p, end, tag)) return fail("truncated or overlong tag");
      const auto number = static_cast<std::uint32_t>(tag >> 3);
      const int wt = static_cast<int>(tag & 7);
      if (number == 0 || (tag >> 3) > 0x1FFFFFFF) return fail("field number 0 or out of range");
      Entry e{0, 0, nullptr, 0};
      switch (wt) {
        case 0:
          if (!varint(p, end, e.value)) return fail("truncated or overlong varint");
          break;
        case 1:
          if (end - p < 8) return fail("truncated fixed64");
          for (int i = 7; i >= 0; --i) e.value = e.value << 8 | p[i];
          p += 8;
          break;
        case 5:
          if (end - p < 4) return fail("truncated fixed32");
          for (int i = 3; i >= 0; --i) e.value = e.value << 8 | p[i];
          p += 4;
          break;
        case 2: {
          std::uint64_t n = 0;
          if (!varint(p, end, n)) return fail("truncated length");
          if (n > static_cast<std::uint64_t>(end - p)) return fail("length beyond the end of its message");
          e.data = p;
          e.size = static_cast<std::size_t>(n);
          p += n;
          break;
        }
        default:
          return fail("wire type " + std::to_string(wt) + " (groups are not used by OTLP)");
      }
      const pb::FieldDesc* f = nullptr;
      for (std::size_t i = 0; i < desc.fields.size(); ++i)
        if (desc.fields[i].number == number) {
          f = &desc.fields[i];
          e.field = static_cast<std::uint32_t>(i);
        }
      if (f == nullptr) continue;  // unknown field: skipped
      if (wt != wire_type_of(f->kind))
        return fail(std::string(f->json) + ": wire type " + std::to_string(wt) + ", expected " +
                    std::to_string(wire_type_of(f->kind)));
      entries.push_back(e);
    }
    // Copy out: nested messages reuse deeper scratch levels, not this one, but keep it simple.
    const std::vector<Entry> mine = entries;
    out_ += '{';
    bool first = true;
    if (desc.oneof) {
      if (!mine.empty()) {
        const Entry& e = mine.back();
        if (!field(desc.fields[e.field], e, -1, depth, first)) return false;
      }
      out_ += '}';
      return true;
    }
    for (std::size_t fi = 0; fi < desc.fields.size(); ++fi) {
      const pb::FieldDesc& f = desc.fields[fi];
      if (f.repeated) {
        std::int64_t index = 0;
        bool open = false;
        for (const Entry& e : mine) {
          if (e.field != fi) continue;
          if (!open) {
            if (!first) out_ += ',';
            first = false;
            out_ += '"';
            out_ += f.json;
            out_ += "\":[";
            open = true;
          } else {
            out_ += ',';
          }
          bool dummy = true;
          if (!field(f, e, index++, depth, dummy, false)) return false;
        }
        if (open) out_ += ']';
      } else {
        const Entry* last = nullptr;
        for (const Entry& e : mine)
          if (e.field == fi) last = &e;
        if (last != nullptr && !field(f, *last, -1, depth, first)) return false;
      }
    }
    out_ += '}';
    return true;
  }

 private:
  static bool varint(const unsigned char*& p, const unsigned char* end, std::uint64_t& v) {
    v = 0;
    for (int i = 0; i < 10; ++i) {
      if (p == end) return false;
      const unsigned char b = *p++;
      v |= static_cast<std::uint64_t>(b & 0x7F) << (7 * i);
      if ((b & 0x80) == 0) return i < 9 || b <= 1;
    }
    return false;
  }

  bool fail(std::string reason) {
    if (error_.empty()) {
      error_ = path_;
      if (!error_.empty()) error_ += ": ";
      error_ += reason;
    }
    return false;
  }

  // Writes one field ("name":value, or only the value inside an array when with_key is false).
  bool field(const pb::FieldDesc& f, const Entry& e, std::int64_t index, int depth, bool& first, bool with_key = true) {
    const std::size_t path_len = path_.size();
    if (!path_.empty()) path_ += '.';
    path_ += f.json;
    if (index >= 0) {
      path_ += '[';
      path_ += std::to_string(index);
      path_ += ']';
    }
    if (with_key) {
      if (!first) out_ += ',';
      first = false;
      out_ += '"';
      out_ += f.json;
      out_ += "\":";
    }
    bool ok = true;
    switch (f.kind) {
      case pb::Kind::message: ok = message(*f.msg, e.data, e.data + e.size, depth + 1); break;
      case pb::Kind::string: {
        const std::string_view s(reinterpret_cast<const char*>(e.data), e.size);
        if (!simdjson::validate_utf8(s.data(), s.size())) {
          ok = fail("invalid UTF-8 (proto3 string fields must be UTF-8)");
          break;
        }
        append_json_string(out_, s);
        break;
      }
      case pb::Kind::id: {
        static constexpr char k_hex[] = "0123456789abcdef";
        out_ += '"';
        for (std::size_t i = 0; i < e.size; ++i) {
          out_ += k_hex[e.data[i] >> 4];
          out_ += k_hex[e.data[i] & 0xF];
        }
        out_ += '"';
        break;
      }
      case pb::Kind::bytes: {
        static constexpr char k_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        out_ += '"';
        std::size_t i = 0;
        for (; i + 3 <= e.size; i += 3) {
          const std::uint32_t v = static_cast<std::uint32_t>(e.data[i]) << 16 | static_cast<std::uint32_t>(e.data[i + 1]) << 8 | e.data[i + 2];
          for (int s = 18; s >= 0; s -= 6) out_ += k_b64[(v >> s) & 63];
        }
        if (e.size - i == 1) {
          const std::uint32_t v = static_cast<std::uint32_t>(e.data[i]) << 16;
          out_ += k_b64[(v >> 18) & 63];
          out_ += k_b64[(v >> 12) & 63];
          out_ += "==";
        } else if (e.size - i == 2) {
          const std::uint32_t v = static_cast<std::uint32_t>(e.data[i]) << 16 | static_cast<std::uint32_t>(e.data[i + 1]) << 8;
          out_ += k_b64[(v >> 18) & 63];
          out_ += k_b64[(v >> 12) & 63];
          out_ += k_b64[(v >> 6) & 63];
          out_ += '=';
        }
        out_ += '"';
        break;
      }
      case pb::Kind::uint32:
        if (e.value > 0xFFFFFFFFu) {
          ok = fail("uint32 out of range");
          break;
        }
        out_ += std::to_string(e.value);
        break;
      case pb::Kind::enum32:
        // int32 on the wire: negative values are 10-byte varints (sign-extended).
        out_ += std::to_string(static_cast<std::int64_t>(static_cast<std::int32_t>(e.value & 0xFFFFFFFFu)));
        break;
      case pb::Kind::int64: out_ += '"' + std::to_string(static_cast<std::int64_t>(e.value)) + '"'; break;
      case pb::Kind::boolean: out_ += e.value != 0 ? "true" : "false"; break;
      case pb::Kind::fixed64: out_ += '"' + std::to_string(e.value) + '"'; break;
      case pb::Kind::fixed32: out_ += std::to_string(e.value); break;
      case pb::Kind::dbl: {
        double d;
        std::memcpy(&d, &e.value, sizeof d);
        if (std::isnan(d)) {
          out_ += "\"NaN\"";
        } else if (std::isinf(d)) {
          out_ += d > 0 ? "\"Infinity\"" : "\"-Infinity\"";
        } else {
          std::array<char, 40> buf{};
          // Scientific form: a JSON parser reads it as a double whatever its magnitude.
          const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), d, std::chars_format::scientific);
          out_.append(buf.data(), static_cast<std::size_t>(r.ptr - buf.data()));
        }
        break;
      }
    }
    path_.resize(path_len);
    return ok;
  }

  std::string& out_;
  std::string& error_;
  std::string path_;
  std::vector<std::vector<Entry>> scratch_;
};

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

}  // namespace

bool protobuf_to_json(std::string_view body, std::string& out, std::string& error) {
  out.clear();
  error.clear();
  Transcoder t(out, error);
  const auto* p = reinterpret_cast<const unsigned char*>(body.data());
  if (!t.message(pb::request, p, p + body.size(), 0)) {
    out.clear();
    return false;
  }
  return true;
}

std::string protobuf_export_response(std::uint64_t rejected, std::string_view message) {
  std::string out;
  if (rejected == 0 && message.empty()) return out;
  std::string inner;
  if (rejected != 0) {
    inner += '\x08';
    put_varint(inner, rejected);
  }
  if (!message.empty()) {
    inner += '\x12';
    put_varint(inner, message.size());
    inner += message;
  }
  out += '\x0a';
  put_varint(out, inner.size());
  out += inner;
  return out;
}

std::string protobuf_rpc_status(int code, std::string_view message) {
  std::string out;
  if (code != 0) {
    out += '\x08';
    put_varint(out, static_cast<std::uint64_t>(static_cast<std::int64_t>(code)));
  }
  if (!message.empty()) {
    out += '\x12';
    put_varint(out, message.size());
    out += message;
  }
  return out;
}

}  // namespace tracecast::sink
