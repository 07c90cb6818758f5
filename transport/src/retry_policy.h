// Internal: the retry rules (OTLP/HTTP spec), backoff with full jitter, and the response
// classification shared by the sender and the connection test. Not installed.
#pragma once

#include <chrono>
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
  std::uint64_t rejected = 0;
  bool has_message = false;  // errorMessage non-empty
};
// Parses with simdjson. An empty, non-JSON or malformed body counts as full success (the
// data was accepted: a 2xx is never retried). rejectedSpans may be a string or a number.
// Thread-safe. Allocates (a padded copy of the body).
[[nodiscard]] PartialSuccess parse_partial_success(std::string_view body) noexcept;
// The same from the answer to an http/protobuf request: an ExportTraceServiceResponse in the
// protobuf wire format (partial_success = 1 { int64 rejected_spans = 1; string error_message
// = 2 }). A body that starts with '{' is read as JSON (a server may answer JSON anyway); an
// empty or malformed body counts as full success. Thread-safe, no allocation for protobuf.
[[nodiscard]] PartialSuccess parse_partial_success(std::string_view body, bool protobuf) noexcept;

}  // namespace tracecast::detail
