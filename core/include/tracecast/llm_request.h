// LlmRequest: what a gateway knows about one API call, as views (no ownership). The gateway
// fills one per request (by hand, or from the raw bodies with tracecast/gateway.h) and hands
// it to Pipeline::submit / IngestRing::try_submit, which copy what they keep.
//
// How it becomes spans is in tracecast/mapping.h and in README ("Attribute mapping").
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>

#include "tracecast/span.h"

namespace tracecast {

// One key of the request's `trace` metadata object. Scalar JSON values keep their type
// (string, bool, int64, float64); nested objects and arrays are kept as compact JSON text in
// a string value. The special keys (trace_id, trace_name, span_name, generation_name,
// parent_span_id) steer the span tree; every key, special or not, is also emitted as the span
// attribute `trace.metadata.<key>`.
struct MetadataEntry {
  std::string_view key;
  AttributeValue value;
};

inline constexpr double k_unknown_double = std::numeric_limits<double>::quiet_NaN();

// The longest LlmRequest::api_key_id kept, in bytes (a SHA-256 in hex is 64).
inline constexpr std::size_t k_max_api_key_id_bytes = 128;

// What submit changed in its copy of a request (LlmRequest::submit_flags).
enum SubmitFlag : std::uint8_t {
  k_submit_start_filled = 1u << 0,  // start_unix_nano was 0: filled from the submit clock
  k_submit_end_filled = 1u << 1,    // end_unix_nano was 0: filled from the submit clock
  k_submit_value_cut = 1u << 2,     // a value was cut to a ValueLimits limit (span: tracecast.truncated)
};

struct LlmRequest {
  // Routing and identity.
  std::string_view account;     // the account the request belongs to; selects destinations
  std::string_view request_id;  // the gateway's request id -> resource `openrouter.trace.id`
  // The id of the gateway API key the request was made with: a short opaque id or a hash of
  // the key (the product filters on hashed keys), never the key itself. Matched against a
  // destination's PipelineDestination::api_key_ids allow-list; never written into a span.
  // At most k_max_api_key_id_bytes: a longer one is not kept (left empty, counted in
  // IngestStats::truncated_values), so it matches no allow-list. Empty: no key id.
  std::string_view api_key_id;

  // What was asked and what answered.
  std::string_view operation = "chat";  // gen_ai.operation.name
  std::string_view provider;            // gen_ai.system (and gen_ai.provider.name)
  std::string_view requested_model;     // gen_ai.request.model
  std::string_view response_model;      // gen_ai.response.model
  std::string_view response_id;         // gen_ai.response.id (empty: left out)
  std::int64_t input_tokens = -1;       // gen_ai.usage.input_tokens (negative: unknown)
  std::int64_t output_tokens = -1;      // gen_ai.usage.output_tokens (negative: unknown)
  std::string_view finish_reason;       // gen_ai.response.finish_reason (choice 0's)
  // Every choice's finish reason in choice index order, joined by ',' ("stop,length"); empty:
  // finish_reason alone. gen_ai.response.finish_reasons (string array, one per choice) with
  // MappingConfig::emit_current_genai_names. Finish reasons are identifiers, never holding ','.
  std::string_view finish_reasons;
  double cost = k_unknown_double;       // gen_ai.usage.cost, in USD (NaN: unknown)
  // Token details (negative: unknown): prompt tokens read from the provider's cache, prompt
  // tokens written to it, and output tokens spent on reasoning.
  std::int64_t cache_read_input_tokens = -1;      // gen_ai.usage.cache_read.input_tokens
  std::int64_t cache_creation_input_tokens = -1;  // gen_ai.usage.cache_creation.input_tokens
  std::int64_t reasoning_output_tokens = -1;      // gen_ai.usage.reasoning.output_tokens

  // Request parameters worth an attribute (NaN / negative: not given).
  double temperature = k_unknown_double;  // gen_ai.request.temperature
  double top_p = k_unknown_double;        // gen_ai.request.top_p
  std::int64_t max_tokens = -1;           // gen_ai.request.max_tokens
  bool stream = false;                    // gen_ai.request.stream (only written when true)

  // Who.
  std::string_view user;        // user.id
  std::string_view session_id;  // session.id

  // The request's `trace` object.
  std::span<const MetadataEntry> metadata;

  // Content: prompt (the request's messages, as JSON text) and completion. Left out for
  // destinations in privacy mode.
  std::string_view prompt;      // gen_ai.prompt
  std::string_view completion;  // gen_ai.completion

  // Timing, Unix nanoseconds from the gateway's own clock. first_token 0: unknown. A start or
  // end left 0 is filled at submit from the ring's clock (the submit time; a start never after
  // the end) and flagged in submit_flags, which the mapping reports as k_time_filled: strict
  // receivers refuse spans without times, and every other span of the batch with them.
  std::uint64_t start_unix_nano = 0;
  std::uint64_t first_token_unix_nano = 0;
  std::uint64_t end_unix_nano = 0;

  // Set by IngestRing::try_submit on its copy (callers leave it 0): bits of SubmitFlag. A
  // request built by GatewayParser has k_submit_value_cut already when the parser cut a value
  // to one of its limits (ParseIssue::completion_truncated), so that the span says so too.
  std::uint8_t submit_flags = 0;

  // Outcome. error = true gives status ERROR with error_message; http_status 0: unknown.
  bool error = false;
  std::string_view error_message;
  std::int32_t http_status = 0;  // http.response.status_code when non-zero
};

}  // namespace tracecast
