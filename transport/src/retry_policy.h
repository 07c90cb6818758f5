// Internal: the retry rules (OTLP/HTTP spec), backoff with full jitter, and the response
// classification shared by the sender and the connection test. Not installed.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <random>
#include <string_view>

#include "tracecast/sender.h"

namespace tracecast::detail {

// OTLP/HTTP: only 429, 502, 503, 504 are retryable; every other non-2xx is final.
[[nodiscard]] constexpr bool is_retryable_status(int status) noexcept {
  return status == 429 || status == 502 || status == 503 || status == 504;
}

// Whether a retryable answer holds back the whole destination (nothing is sent to it until
// this request's retry time) or only the request that got it. 429 always throttles (the
// server says this client sends too much); 503 only with Retry-After (the server asks for a
// pause). A bare 503 is often one bad backend behind a load balancer: blocking every request
// for it starved a destination answering half its requests 503 (19% delivered, issue 9).
[[nodiscard]] constexpr bool throttles_destination(int status, bool has_retry_after) noexcept {
  return status == 429 || (status == 503 && has_retry_after);
}

// The upper bound of retry `n` (1-based): min(max_interval, initial * multiplier^(n-1)).
[[nodiscard]] std::chrono::nanoseconds backoff_bound(const RetryPolicy& policy,
                                                     std::uint32_t retry) noexcept;

// Full jitter: uniform in [0, backoff_bound(policy, retry)].
[[nodiscard]] std::chrono::nanoseconds jittered_backoff(const RetryPolicy& policy, std::uint32_t retry,
                                                        std::mt19937_64& rng) noexcept;

// Maps a curl result code (as int, to keep curl out of this header) to a NetworkError, and
// says whether retrying may help (connection refused/reset, timeouts, DNS: yes; certificate
// verification, malformed URL, unsupported protocol: no).
struct NetworkFailure {
  NetworkError error = NetworkError::other;
  bool retryable = true;
};
[[nodiscard]] NetworkFailure classify_curl_code(int curl_code) noexcept;

// OTLP ExportTraceServiceResponse.partialSuccess of a 2xx JSON body.
struct PartialSuccess {
  std::uint64_t rejected = 0;  // always <= the batch's item count
  bool has_message = false;    // errorMessage non-empty
  // Where that errorMessage is in the parsed body: bytes [message_offset, message_offset +
  // message_size) of `body` as received (JSON: the text between the quotes, escapes not
  // decoded; protobuf: the string field's bytes). 0/0 when there is none. For display only
  // (tracecast-check, Test Connection): untrusted server text, sanitize before printing.
  std::size_t message_offset = 0;
  std::size_t message_size = 0;
  bool malformed = false;      // a partialSuccess was there but not readable as the spec says
};
// Parses with simdjson. A body without "partialSuccess" (empty, "{}", not JSON) is full
// success: the data was accepted and a 2xx is never retried. rejectedSpans may be a string
// or a number (proto3 JSON writes int64 as a string). Conservative handling of what a
// broken or hostile server may send (each counted as malformed):
//   - larger than `items` (the batch's span count), however large ("1e30",
//     "99999999999999999999"): clamped to `items`;
//   - fractional (3.7): rounded up, then clamped to `items`;
//   - negative, not a number, or partialSuccess not parsable: ignored (0 rejected).
// Linear in the body. Thread-safe. Allocates (a padded copy of the body).
[[nodiscard]] PartialSuccess parse_partial_success(std::string_view body, std::uint64_t items) noexcept;
// The same from the answer to an http/protobuf request: an ExportTraceServiceResponse in the
// protobuf wire format (partial_success = 1 { int64 rejected_spans = 1; string error_message
// = 2 }), with the same clamping as above. A body that starts with '{' is read as JSON (a
// server may answer JSON anyway); a body that is not a message is full success; a
// partial_success that cannot be read counts 0 rejected and malformed. Thread-safe, no
// allocation for protobuf.
[[nodiscard]] PartialSuccess parse_partial_success(std::string_view body, std::uint64_t items, bool protobuf) noexcept;
// A bool where the item count belongs would read as 1 item: refused at compile time.
template <class B>
  requires std::same_as<B, bool>
PartialSuccess parse_partial_success(std::string_view body, B protobuf) = delete;

// Retry-After (RFC 9110 10.2.3): delay-seconds (1*DIGIT) or an HTTP date.
struct RetryAfter {
  enum class Kind : std::uint8_t { absent, delay, invalid };
  Kind kind = Kind::absent;
  std::int64_t seconds = 0;  // kind == delay: 0..k_max_retry_after_s
  bool clamped = false;      // the value asked for more than k_max_retry_after_s
};
// Longest wait a Retry-After can ask for: a day, the largest retry.max_elapsed. Anything
// longer is clamped (and then usually ends the request as retries_exhausted: it would wait
// past max_elapsed), so no remote value reaches time arithmetic unbounded.
inline constexpr std::int64_t k_max_retry_after_s = 86400;
// `value` is the header's value (blanks around it allowed); empty = absent. A date in the
// past is a delay of 0. Negative numbers, garbage, a value over 128 bytes: invalid (ignored:
// the backoff applies). `now_unix_s`: the current time for dates. Thread-safe, no allocation.
[[nodiscard]] RetryAfter parse_retry_after(std::string_view value, std::int64_t now_unix_s) noexcept;

}  // namespace tracecast::detail
