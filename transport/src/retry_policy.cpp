#include "retry_policy.h"

#include <curl/curl.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <string>

#include "tracecast/json_number.h"

namespace tracecast::detail {

std::chrono::nanoseconds backoff_bound(const RetryPolicy& policy, std::uint32_t retry) noexcept {
  const double initial = static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(policy.initial_interval).count());
  const double cap = static_cast<double>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(policy.max_interval).count());
  const double exponent = retry == 0 ? 0.0 : static_cast<double>(retry - 1);
  double bound = initial * std::pow(std::max(1.0, policy.multiplier), exponent);
  if (!(bound <= cap)) bound = cap;  // also catches inf/nan
  return std::chrono::nanoseconds(static_cast<std::int64_t>(std::max(0.0, bound)));
}

std::chrono::nanoseconds jittered_backoff(const RetryPolicy& policy, std::uint32_t retry,
                                          std::mt19937_64& rng) noexcept {
  const auto bound = backoff_bound(policy, retry).count();
  if (bound <= 0) return std::chrono::nanoseconds(0);
  std::uniform_int_distribution<std::int64_t> dist(0, bound);
  return std::chrono::nanoseconds(dist(rng));
}

NetworkFailure classify_curl_code(int curl_code) noexcept {
  switch (static_cast<CURLcode>(curl_code)) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return {NetworkError::dns, true};
    case CURLE_COULDNT_CONNECT:
      return {NetworkError::connect, true};
    case CURLE_OPERATION_TIMEDOUT:
      return {NetworkError::timeout, true};
    case CURLE_SSL_CONNECT_ERROR:
      return {NetworkError::tls, true};  // a handshake cut short can be transient
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
      return {NetworkError::tls, false};
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
      return {NetworkError::send_recv, true};
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_NOT_BUILT_IN:
      return {NetworkError::other, false};
    default:
      return {NetworkError::other, true};
  }
}

namespace {

// A rejected-span count read as a non-negative integer: more than the batch holds is
// clamped to it and malformed.
void take_rejected_count(std::uint64_t n, std::uint64_t items, PartialSuccess& out) noexcept {
  if (n > items) {
    out.malformed = true;
    n = items;
  }
  out.rejected = n;
}

// rejectedSpans given as a JSON number: an integer in 0..items is taken; beyond it clamped,
// fractional rounded up (then clamped), negative or not finite ignored; all but the first
// are malformed.
void take_rejected_number(double v, std::uint64_t items, PartialSuccess& out) noexcept {
  if (!std::isfinite(v) || v < 0) {
    out.malformed = true;
    return;
  }
  const double up = std::ceil(v);
  if (up != v) out.malformed = true;
  if (up > static_cast<double>(items)) {
    out.malformed = true;
    out.rejected = items;
    return;
  }
  out.rejected = static_cast<std::uint64_t>(up);
}

void take_rejected_text(std::string_view text, std::uint64_t items, PartialSuccess& out) noexcept {
  std::uint64_t n = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ptr == text.data() + text.size() && !text.empty() && ec == std::errc::result_out_of_range) {
    out.malformed = true;  // all digits, beyond 2^64
    out.rejected = items;
    return;
  }
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    out.malformed = true;  // "-3", "3.7", "x", "": not an int64 in proto3 JSON
    return;
  }
  take_rejected_count(n, items, out);
}

}  // namespace

PartialSuccess parse_partial_success(std::string_view body, std::uint64_t items) noexcept {
  PartialSuccess out;
  // Cheap precheck: most answers are "{}" or empty.
  if (body.find("partialSuccess") == std::string_view::npos) return out;
  try {
    simdjson::ondemand::parser parser;
    simdjson::padded_string padded(body);
    simdjson::ondemand::document doc;
    out.malformed = true;  // until the partialSuccess object has been read whole
    if (parser.iterate(padded).get(doc) != simdjson::SUCCESS) return out;
    simdjson::ondemand::object root;
    if (doc.get_object().get(root) != simdjson::SUCCESS) return out;
    simdjson::ondemand::object partial;
    if (root.find_field_unordered("partialSuccess").get_object().get(partial) != simdjson::SUCCESS) {
      return out;
    }
    PartialSuccess read;
    for (auto field : partial) {
      std::string_view key;
      if (field.unescaped_key().get(key) != simdjson::SUCCESS) return out;
      simdjson::ondemand::value value;
      if (field.value().get(value) != simdjson::SUCCESS) return out;
      if (key == "rejectedSpans" || key == "rejected_spans") {
        simdjson::ondemand::json_type type;
        if (value.type().get(type) != simdjson::SUCCESS) return out;
        if (type == simdjson::ondemand::json_type::number) {
          std::uint64_t n = 0;
          double d = 0;
          if (value.get_uint64().get(n) == simdjson::SUCCESS) {
            take_rejected_count(n, items, read);
          } else if (value.get_double().get(d) == simdjson::SUCCESS) {
            // simdjson 3.0.1's get_double() misreads long numbers (tracecast/json_number.h).
            take_rejected_number(json_number_exact(value.raw_json_token(), d), items, read);
          } else {
            read.malformed = true;
            read.rejected = items;  // a number too large even for a double
          }
        } else if (type == simdjson::ondemand::json_type::string) {
          std::string_view text;
          if (value.get_string().get(text) != simdjson::SUCCESS) return out;
          take_rejected_text(text, items, read);
        } else {
          read.malformed = true;
        }
      } else if (key == "errorMessage" || key == "error_message") {
        std::string_view text;
        if (value.get_string().get(text) == simdjson::SUCCESS) {
          read.has_message = !text.empty();
          read.message_offset = 0;  // a later errorMessage replaces an earlier one
          read.message_size = 0;
          // The raw token is a view into `padded`, which mirrors `body` byte for byte.
          const std::string_view raw = value.raw_json_token();
          if (read.has_message && raw.size() >= 2 && raw.front() == '"') {
            const std::size_t start = static_cast<std::size_t>(raw.data() - padded.data()) + 1;
            std::size_t end = start;
            while (end < body.size() && body[end] != '"') end += body[end] == '\\' ? 2 : 1;
            read.message_offset = start;
            read.message_size = std::min(end, body.size()) - start;
          }
        }
      }
    }
    out = read;
  } catch (...) {
    // padded_string allocation failure: treat as plain success (malformed stays set).
  }
  return out;
}

RetryAfter parse_retry_after(std::string_view value, std::int64_t now_unix_s) noexcept {
  RetryAfter out;
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t' || value.back() == '\r' ||
                            value.back() == '\n')) {
    value.remove_suffix(1);
  }
  if (value.empty()) return out;
  out.kind = RetryAfter::Kind::invalid;
  if (value.size() > 128) return out;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    // Saturating: 9223372036854775807 or a thousand digits never overflow.
    std::int64_t s = 0;
    for (const char c : value) {
      s = s * 10 + (c - '0');
      if (s > k_max_retry_after_s) {
        out.clamped = true;
        s = k_max_retry_after_s;
        break;
      }
    }
    out.kind = RetryAfter::Kind::delay;
    out.seconds = s;
    return out;
  }
  // An HTTP date (IMF-fixdate, RFC 850 or asctime; curl_getdate takes all three).
  char buf[129];
  std::memcpy(buf, value.data(), value.size());
  buf[value.size()] = '\0';
  const time_t at = curl_getdate(buf, nullptr);
  if (at == static_cast<time_t>(-1)) return out;
  out.kind = RetryAfter::Kind::delay;
  now_unix_s = std::max<std::int64_t>(now_unix_s, 0);
  const std::int64_t when = static_cast<std::int64_t>(at);
  if (when <= now_unix_s) return out;  // in the past: no wait
  // Both sides are within time_t's range; the difference of two 64-bit values that are
  // not both extreme cannot overflow here (now is a current time).
  const std::int64_t delta = when - now_unix_s;
  out.seconds = std::min(delta, k_max_retry_after_s);
  out.clamped = delta > k_max_retry_after_s;
  return out;
}

namespace {

// A minimal protobuf wire reader: varints and length-delimited fields, skipping the rest.
struct WireReader {
  const unsigned char* p;
  const unsigned char* end;
  bool ok = true;

  std::uint64_t varint() noexcept {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p == end) break;
      const unsigned char b = *p++;
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    ok = false;
    return 0;
  }
  // Skips a field of the given wire type; false when it cannot (malformed or a group).
  bool skip(std::uint64_t wire_type) noexcept {
    switch (wire_type) {
      case 0: (void)varint(); return ok;
      case 1: if (end - p < 8) return ok = false; p += 8; return true;
      case 5: if (end - p < 4) return ok = false; p += 4; return true;
      case 2: {
        const std::uint64_t n = varint();
        if (!ok || n > static_cast<std::uint64_t>(end - p)) return ok = false;
        p += n;
        return true;
      }
      default: return ok = false;
    }
  }
};

}  // namespace

PartialSuccess parse_partial_success(std::string_view body, std::uint64_t items, bool protobuf) noexcept {
  std::size_t first = 0;
  while (first < body.size() && (body[first] == ' ' || body[first] == '\n' || body[first] == '\r' || body[first] == '\t')) ++first;
  if (!protobuf || (first < body.size() && body[first] == '{')) return parse_partial_success(body, items);
  PartialSuccess out;
  PartialSuccess malformed;  // a partial_success that cannot be read: 0 rejected, counted
  malformed.malformed = true;
  const auto* p = reinterpret_cast<const unsigned char*>(body.data());
  WireReader top{p, p + body.size()};
  while (top.ok && top.p != top.end) {
    const std::uint64_t tag = top.varint();
    if (!top.ok) return {};
    if (tag != ((1u << 3) | 2u)) {  // not partial_success: skip
      if (!top.skip(tag & 7)) return {};
      continue;
    }
    const std::uint64_t n = top.varint();
    if (!top.ok || n > static_cast<std::uint64_t>(top.end - top.p)) return malformed;
    WireReader ps{top.p, top.p + n};
    top.p += n;
    // Fields of a message merge: a later occurrence overrides an earlier one.
    while (ps.ok && ps.p != ps.end) {
      const std::uint64_t t = ps.varint();
      if (!ps.ok) return malformed;
      if (t == ((1u << 3) | 0u)) {  // rejected_spans, int64
        const auto v = static_cast<std::int64_t>(ps.varint());
        if (!ps.ok) return malformed;
        // As for JSON: negative is ignored, more than the batch is clamped; both counted. A
        // later occurrence replaces an earlier one whole (count and verdict).
        PartialSuccess count;
        if (v < 0) {
          count.malformed = true;
        } else {
          take_rejected_count(static_cast<std::uint64_t>(v), items, count);
        }
        out.rejected = count.rejected;
        out.malformed = count.malformed;
      } else if (t == ((2u << 3) | 2u)) {  // error_message
        const std::uint64_t len = ps.varint();
        if (!ps.ok || len > static_cast<std::uint64_t>(ps.end - ps.p)) return malformed;
        out.has_message = len != 0;
        out.message_offset = static_cast<std::size_t>(ps.p - reinterpret_cast<const unsigned char*>(body.data()));
        out.message_size = static_cast<std::size_t>(len);
        ps.p += len;
      } else if (!ps.skip(t & 7)) {
        return malformed;
      }
    }
  }
  return out;
}

}  // namespace tracecast::detail
