// Internal: one-time curl_global_init (not thread-safe in curl 7.x, so done under call_once).
#pragma once

namespace tracecast::detail {
// Initialises libcurl once per process. Returns false if it failed. Thread-safe.
[[nodiscard]] bool ensure_curl_global_init() noexcept;
}  // namespace tracecast::detail
