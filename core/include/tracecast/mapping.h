// The gateway's attribute mapping: one LlmRequest -> its resource, scope and 1 to 3 spans,
// following the Grafana Cloud broadcast reference (README "Attribute mapping").
//
//   resource   service.name, service.version, openrouter.trace.id (+ configured extras)
//   root       trace_name                (only with trace_name and a generation/span name)
//    └ span    span_name                 (only with span_name)
//       └ gen  generation_name, else trace_name when it is the only name, else
//              "<operation> <requested model>"; kind CLIENT; all gen_ai.*, user.id,
//              session.id, trace.metadata.* attributes; status ERROR on failure
//
// Those are the `openrouter` convention's names, the default. map_request takes a set of
// conventions (tracecast/conventions.h: genai, openinference, langfuse, langsmith too) and
// writes each one's names; README "Attribute conventions per destination" has their tables.
//
// Trace id: the `trace_id` metadata value when it is 32 hex digits (not all zero), else a
// 128-bit hash of (account, trace_id) so requests sharing it land in one trace, else random.
// With a caller-chosen trace_id the root and intermediate span ids are derived from it and
// their names too, so every request of the group hangs under the same root span (Tempo
// merges spans with one id); otherwise all ids are random. `parent_span_id` (16 hex digits)
// becomes the parent of the topmost span.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tracecast/conventions.h"
#include "tracecast/llm_request.h"
#include "tracecast/span.h"

namespace tracecast {

inline constexpr std::string_view k_tracecast_version = "0.1.0";

struct MappingConfig {
  // Resource service.name. Default "openrouter" (the reference's value); any non-empty text.
  std::string service_name = "openrouter";
  // Resource service.version. Default "1.0.0".
  std::string service_version = "1.0.0";
  // Extra resource attributes (OTEL_RESOURCE_ATTRIBUTES), at most k_max_extra_resource.
  std::vector<std::pair<std::string, std::string>> extra_resource_attributes;
  // Also emit the current OpenTelemetry GenAI names: gen_ai.provider.name beside
  // gen_ai.system, gen_ai.response.finish_reasons (string array) beside
  // gen_ai.response.finish_reason. Default off (the reference page uses the older names).
  bool emit_current_genai_names = false;
  // Instrumentation scope.
  std::string scope_name = "tracecast";
  std::string scope_version = std::string(k_tracecast_version);

  static constexpr std::size_t k_max_extra_resource = 16;
};

// Bits describing what the mapping could not use as given; counted by the pipeline.
enum MappingIssue : std::uint32_t {
  k_mapping_ok = 0,
  k_invalid_parent_span_id = 1u << 0,  // parent_span_id not 16 hex digits: ignored
  k_non_string_special_key = 1u << 1,  // e.g. trace_name given as a number: not used as a name
  k_end_before_start = 1u << 2,        // end < start: end clamped to start
  k_empty_metadata_key = 1u << 3,      // a metadata entry with an empty key: left out
  k_too_many_metadata = 1u << 4,       // more than k_max_metadata entries: the rest left out
  k_empty_metadata_value = 1u << 5,    // a metadata entry with no value (e.g. JSON null): left out
  k_time_filled = 1u << 6,             // start or end time was 0: filled (at submit from the ring's
                                       // clock, else from the other time or the mapping's clock)
  k_convention_text_cut = 1u << 7,     // a JSON text or message list a convention builds (genai
                                       // messages, openinference messages or metadata) did not fit
                                       // MappedRequest's fixed buffers: cut at a code point, still valid
};

// Deterministic-per-seed source of random ids (xoshiro256**). Never yields an all-zero id.
// Not thread-safe: one per thread.
class IdGenerator {
 public:
  explicit IdGenerator(std::uint64_t seed) noexcept;
  // Seeded from std::random_device. May allocate inside the standard library.
  IdGenerator();
  [[nodiscard]] TraceId next_trace_id() noexcept;
  [[nodiscard]] SpanId next_span_id() noexcept;
  [[nodiscard]] std::uint64_t next() noexcept;

 private:
  std::uint64_t s_[4];
};

// 128-bit trace id for a caller-chosen trace_id string within an account: the value itself
// when it is 32 hex digits and not all zero (lowercased), else XXH3-128 of
// (account, 0x1f, trace_id) with all-zero mapped away. Pure; thread-safe; no allocation.
[[nodiscard]] TraceId derive_trace_id(std::string_view account, std::string_view trace_id) noexcept;

// True when the trace is kept at `rate` (0..1): the trace id's low 8 bytes compared with
// rate * 2^64, so every span of a trace, in every process, gets the same answer.
[[nodiscard]] bool sample_trace(const TraceId& id, double rate) noexcept;

// The mapped form of one request: fixed storage for the resource, the scope, up to three
// spans and the text the conventions build (JSON messages, metadata); reusable. Views point
// into this object and into the LlmRequest it was mapped from, so both must outlive their
// use. ~450 KiB: keep one per thread (std::make_unique), never on a stack.
class MappedRequest {
 public:
  static constexpr std::size_t k_max_spans = 3;
  static constexpr std::size_t k_max_metadata = 64;
  static constexpr std::size_t k_max_metadata_key_bytes = 128;
  // Messages a convention lists one by one (llm.input_messages.N.*, gen_ai.input.messages);
  // more are left out and flagged k_convention_text_cut.
  static constexpr std::size_t k_max_messages = 32;
  // Every convention at once: openrouter's 32 + trace.metadata.*, langfuse and langsmith
  // metadata copies, ~50 other names, and role + content per listed message.
  static constexpr std::size_t k_max_span_attributes = 32 + 3 * k_max_metadata + 56 + 2 * (k_max_messages + 1);
  static constexpr std::size_t k_max_finish_reasons = 16;  // choices named in finish_reasons
  // Byte caps of the built text (cut at a code point boundary, the JSON kept valid, flagged):
  static constexpr std::size_t k_message_text_bytes = 128 * 1024;  // unescaped message texts
  static constexpr std::size_t k_message_json_bytes = 128 * 1024;  // gen_ai.input/output.messages each
  static constexpr std::size_t k_metadata_json_bytes = 16 * 1024;  // openinference `metadata`

  [[nodiscard]] ResourceView resource() const noexcept { return {{resource_attrs_, resource_count_}}; }
  [[nodiscard]] ScopeView scope() const noexcept { return scope_; }
  // Every span; the generation span is the last one.
  [[nodiscard]] std::span<const SpanView> spans() const noexcept { return {spans_, span_count_}; }
  // The same spans without any content-bearing attribute of any convention (privacy mode).
  [[nodiscard]] std::span<const SpanView> private_spans() const noexcept {
    return {private_spans_, span_count_};
  }
  [[nodiscard]] const TraceId& trace_id() const noexcept { return spans_[0].trace_id; }
  [[nodiscard]] std::uint32_t issues() const noexcept { return issues_; }
  // The conventions it was mapped with.
  [[nodiscard]] ConventionSet conventions() const noexcept { return conventions_; }

 private:
  friend void map_request(const LlmRequest&, const MappingConfig&, ConventionSet, IdGenerator&,
                          MappedRequest&) noexcept;

  Attribute resource_attrs_[3 + MappingConfig::k_max_extra_resource];
  std::size_t resource_count_ = 0;
  ScopeView scope_;
  SpanView spans_[k_max_spans];
  SpanView private_spans_[k_max_spans];
  std::size_t span_count_ = 0;
  Attribute attrs_[k_max_span_attributes];
  Attribute wrapper_attrs_[k_max_spans][2];  // span kinds of the INTERNAL wrapper spans
  std::string_view finish_reasons_[k_max_finish_reasons];
  std::uint32_t issues_ = 0;
  ConventionSet conventions_;
  char name_buf_[256];
  char trace_hex_[32];
  char error_type_[16];
  char iso_time_[32];  // langfuse.observation.completion_start_time
  // trace.metadata.*, langfuse.trace.metadata.*, langsmith.metadata.* keys
  char metadata_keys_[k_max_metadata * (3 * k_max_metadata_key_bytes + 64)];
  std::string_view message_role_[k_max_messages];
  std::string_view message_text_[k_max_messages];
  char message_text_buf_[k_message_text_bytes];
  char input_json_[k_message_json_bytes];
  char output_json_[k_message_json_bytes];
  char metadata_json_[k_metadata_json_bytes];
  char params_json_[256];
  char usage_json_[192];
  char cost_json_[64];
};

// What map_request(request, any config, IdGenerator(id_seed), out) produces, without mapping:
// the number of spans (1..3) and the trace id. Lets a router count spans and decide sampling
// before (or without) mapping. Pure; thread-safe; no allocation.
struct RequestPlan {
  std::uint32_t span_count = 1;
  TraceId trace_id;
};
[[nodiscard]] RequestPlan plan_request(const LlmRequest& request, std::uint64_t id_seed) noexcept;

// Maps `request` into `out` (overwriting it) with the attributes of every convention in
// `conventions` (an empty set means openrouter alone); an attribute two of them share (same
// name, same value) is written once. Content-bearing attributes of every convention come last
// on the generation span, so out.private_spans() has none of them. Never fails: what cannot
// be used is left out and flagged in out.issues(). Not thread-safe for one `out`/`ids`; no
// allocation. Attribute names: README "What a request becomes", one table per convention.
void map_request(const LlmRequest& request, const MappingConfig& config, ConventionSet conventions,
                 IdGenerator& ids, MappedRequest& out) noexcept;

// map_request with k_default_conventions (openrouter alone).
void map_request(const LlmRequest& request, const MappingConfig& config, IdGenerator& ids,
                 MappedRequest& out) noexcept;

}  // namespace tracecast
