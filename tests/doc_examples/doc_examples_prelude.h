// The names the documentation's examples leave to the reader (the gateway's own variables and
// functions), declared so each example compiles as written. Nothing here is called.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tracecast/gateway.h"
#include "tracecast/otlp_json.h"
#include "tracecast/pipeline.h"
#include "tracecast/presets.h"

namespace tracecast::doc_examples {

// README "Embedding": the gateway's secrets, settings UI and request data.
inline std::string key_from_your_vault = "glc_example";
inline int reject_settings(std::string_view /*message*/, std::string_view /*hint*/) { return 1; }
inline std::uint64_t t0 = 1, t1 = 2;
inline std::string_view request_body, response_body, error_body, x_session_id_header;
inline int http_status = 200;

// gateway.h: the same, named as there.
inline GatewayConfig config;
inline std::string_view error_body_or_empty;
inline std::uint64_t now_unix_nano = 1;
inline Pipeline& the_pipeline() {  // never called: the examples are compiled, not run
  static Pipeline p{PipelineConfig{}};
  return p;
}

// encode/README.md: one request's mapped form and the caller's buffers.
inline ResourceView resource;
inline ScopeView scope;
inline std::span<const SpanView> spans;
inline std::vector<char> next_buffer(1 << 20);
inline std::size_t budget = 1 << 20;
inline void seal(std::string_view /*body*/) {}

}  // namespace tracecast::doc_examples
