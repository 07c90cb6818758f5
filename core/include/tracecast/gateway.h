// Gateway integration: an LlmRequest straight from the raw bodies of an OpenAI-style chat
// request and of the provider's response (whole, or streamed as server-sent events).
//
// Two objects split the work:
//   GatewayParser  one per gateway thread: the JSON parsers and a padded scratch buffer,
//                  reused for every call. Holds no per-request state.
//   GatewayRecord  one per request in flight (pool and reuse them): the LlmRequest being
//                  filled, the storage its views point at, the stream state and the issues
//                  found so far. Any thread's parser may work on it, one call at a time.
//
//   ```cpp
//   GatewayParser parser{config};                             // per thread
//   auto rec = std::make_unique<GatewayRecord>(config);       // per in-flight request, pooled
//   rec->reset();
//   parser.parse_request(request_body, x_session_id_header, *rec);
//   rec->request().account = "acct_42";                       // the gateway's own account, id, clock
//   rec->request().start_unix_nano = t0;
//   parser.parse_response(response_body, *rec);               // or begin_stream/feed_stream/finish_stream
//   parser.set_outcome(http_status, error_body_or_empty, *rec);
//   rec->request().end_unix_nano = t1;
//   Pipeline& pipeline = the_pipeline();                      // the gateway's one Pipeline
//   if (pipeline.submit(rec->request()) != submit_result::ok) { /* ring full: counted */ }
//   ```
//
// (Every ```cpp example in this header and in README files is compiled by the test suite:
// tests/docs.cmake.)
//
// Lifetimes: the views in rec.request() point into the caller's bodies (JSON strings without
// escapes, the `messages` array text) and into the record's own storage (unescaped strings,
// compact JSON of nested metadata values, streamed content, error messages). Keep the bodies
// and the record alive and untouched until the request has been submitted (submit copies).
//
// Response attempts: a gateway that retries or falls back to another provider parses each
// attempt's response into the same record. parse_response and begin_stream each start the
// response side afresh: response_id, response_model, finish_reason(s), completion, every token
// count, cost, first_token_unix_nano, error, error_message and http_status are cleared, a
// provider the previous response named gives way to the request's again, and the response
// and outcome storage is reused (views of the previous attempt are gone). The request side
// (parse_request's fields, metadata, the gateway's account, ids and start/end times) stays.
// So call set_outcome for an attempt after its parse_response / begin_stream. issues() stays
// cumulative: it tells what the request met, failed attempts included. A stream runs from
// begin_stream to finish_stream; feed_stream or finish_stream outside one (never begun, or
// finished) is refused with stream_not_begun and changes nothing.
//
// Failure: no call throws or crashes on any input. Malformed, truncated or non-UTF-8 bodies
// keep what could be read; each problem sets a bit in GatewayParseResult::issues (returned to
// the gateway), in GatewayRecord::issues() (cumulative for the request) and in the parser's
// GatewayStats; with GatewayConfig::issues_metadata_key set, the span carries them as a
// metadata entry (names joined by ',').
//
// Allocation: grow-only buffers, so allocation happens only while warming up (a body, line
// or content larger than any seen before); steady state allocates nothing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "tracecast/llm_request.h"

namespace tracecast {

// What could not be read, one bit per reason (GatewayParseResult::issues is a bit set).
enum class ParseIssue : std::uint32_t {
  none = 0,
  request_not_json = 1u << 0,        // request body is not a JSON object: nothing read (or
                                     // bytes after the object: the object read, they are not)
  request_truncated = 1u << 1,       // request body ends early: the fields before the cut kept
                                     // (JSON text cut inside, closed where it was cut)
  request_invalid_utf8 = 1u << 2,    // bytes that are not UTF-8 replaced by '?', then read
  field_wrong_type = 1u << 3,        // a known field has the wrong JSON type: left unset (also:
                                     // a number out of its field's range, left unknown: a
                                     // negative token count, max_tokens, cost, temperature or
                                     // stream event index, a top_p outside 0..1; a choice/
                                     // tool-call index that is not a non-negative integer, a
                                     // trace number beyond float64 or the reserved issues key,
                                     // a tool_use input that is not JSON, an HTTP status
                                     // outside 100..599)
  response_not_json = 1u << 4,       // response body is not a JSON object: nothing read (or
                                     // bytes after the object: the object read, they are not)
  response_truncated = 1u << 5,      // response body ends early: the fields before the cut kept
  stream_chunk_invalid = 1u << 6,    // an SSE event's data is not a JSON object, or the event
                                     // comes after `data: [DONE]`: event skipped (cut: what was
                                     // read of it kept; bytes after the object: the object read)
  too_many_metadata_keys = 1u << 7,  // `trace` has more keys than max_metadata_keys: the new
                                     // ones past it dropped (later values of held keys read)
  response_invalid_utf8 = 1u << 8,   // bytes that are not UTF-8 replaced by '?', then read
  body_too_large = 1u << 9,          // a body over max_body_bytes: not parsed
  completion_truncated = 1u << 10,   // streamed content or tool calls over max_completion_bytes,
                                     // or a response id, model, provider, finish reason or error
                                     // message over its k_gateway_max_*_bytes limit: cut (UTF-8 safe)
  stream_line_too_long = 1u << 11,   // an SSE data line or event over max_stream_line_bytes:
                                     // the event dropped
  stream_incomplete = 1u << 12,      // stream ended without [DONE] or a finish reason, or mid-line
  error_body_unreadable = 1u << 13,  // error body is not JSON with a message: raw text kept
  invalid_escape = 1u << 14,         // a string escape that is not valid UTF-16 (lone or reversed
                                     // surrogate, short \u, unknown letter): U+FFFD in its place
  stream_not_begun = 1u << 15,       // feed_stream / finish_stream without begin_stream, or after
                                     // finish_stream: refused, nothing read or changed
  duplicate_key = 1u << 16,          // a `trace` key given twice: the last value kept, in the
                                     // first one's place (a last null removes it)
};
inline constexpr std::size_t k_parse_issue_count = 17;

[[nodiscard]] constexpr std::uint32_t issue_bit(ParseIssue i) noexcept {
  return static_cast<std::uint32_t>(i);
}
// Stable snake_case name of one issue ("request_truncated"); "unknown" for a value that is not
// a single known bit. Thread-safe, does not allocate.
[[nodiscard]] std::string_view parse_issue_name(ParseIssue issue) noexcept;

// The result of one parser call: the issues this call found, and a specific description of the
// first of them (a static string; empty when ok()).
struct GatewayParseResult {
  std::uint32_t issues = 0;
  std::string_view detail;

  [[nodiscard]] bool ok() const noexcept { return issues == 0; }
  [[nodiscard]] bool has(ParseIssue i) const noexcept { return (issues & issue_bit(i)) != 0; }
};

// Counters of one parser (one thread): plain integers, read them on the parser's thread or after
// joining it.
struct GatewayStats {
  std::uint64_t requests = 0;       // parse_request calls
  std::uint64_t responses = 0;      // parse_response calls
  std::uint64_t stream_chunks = 0;  // SSE data events parsed (including [DONE]; empty data is no event)
  std::uint64_t outcomes = 0;       // set_outcome calls
  std::uint64_t metadata_nulls_dropped = 0;  // `trace` values that were null: left out (a strict
                                             // receiver refuses an attribute with no value)
  // Records (requests) that met each issue, index: bit position. An issue is counted when it is
  // new to the record (once per record until reset(), whatever the number of calls or problems
  // that report it, so a stream counts the same fed whole or one byte at a time; a retry on the
  // same record that meets it again is not counted again).
  std::array<std::uint64_t, k_parse_issue_count> by_issue{};

  // Records that met issue i (0 for a value that is not a single known bit). Reads plain
  // counters: same thread as the parser, or after joining it. Does not allocate.
  [[nodiscard]] std::uint64_t count(ParseIssue i) const noexcept;
};

// Limits shared by GatewayParser and GatewayRecord. validate() before use; the constructors
// throw std::invalid_argument on an invalid config (misuse at construction).
// A parser and a record may be built from different configs: each size limit a call applies
// to a record is the smaller of the parser's and the record's (max_body_bytes,
// max_metadata_keys, max_completion_bytes, max_stream_line_bytes, max_error_text_bytes), so a
// record is never written past its own capacity; issues_metadata_key is the record's.
struct GatewayConfig {
  // Largest request or response body parsed, bytes. Default 64 MiB; 1 .. 1 GiB. A larger body
  // is not parsed (body_too_large); the request is still traced.
  std::size_t max_body_bytes = std::size_t{64} << 20;
  // Most `trace` keys kept per request. Default 64; 0 .. 4096. Extra keys: too_many_metadata_keys.
  std::size_t max_metadata_keys = 64;
  // Most streamed completion content kept, bytes. Default 256 KiB; 0 .. max_body_bytes.
  std::size_t max_completion_bytes = std::size_t{256} << 10;
  // Longest SSE data line, and longest event data (its `data:` lines joined), accepted, bytes.
  // Default 4 MiB; 64 .. max_body_bytes.
  std::size_t max_stream_line_bytes = std::size_t{4} << 20;
  // Longest error message kept from an error body that is not JSON, bytes. Default 1 KiB;
  // 16 .. 1 MiB.
  std::size_t max_error_text_bytes = 1024;
  // Metadata key under which a record's issues are added to the span (the mapping writes it
  // as `trace.metadata.<key>`). Empty: not added. Must outlive the parser and records.
  std::string_view issues_metadata_key = "tracecast.parse_issues";

  // Names the first invalid field and why ("max_metadata_keys: above 4096"); empty when valid.
  // Thread-safe, does not allocate.
  [[nodiscard]] std::string_view validate() const noexcept;
};

class GatewayParser;

// Which API a body belongs to. The gateway knows it from the route and should pass it; `detect`
// is a fallback guess from the request body (most Anthropic requests have no `system` and send
// anthropic-version as a header, so they read as chat completions): `messages` with a top-level `system` or `anthropic_version` is Anthropic
// Messages, other `messages` chat completions, `input` with `encoding_format` or `dimensions`
// or a model naming "embed" embeddings, other `input` the Responses API. Response bodies and
// streams are read by their own shape whatever the API (the members of the four do not clash).
enum class GatewayApi : std::uint8_t {
  detect,
  chat_completions,    // POST /v1/chat/completions (and legacy /v1/completions)
  anthropic_messages,  // POST /v1/messages
  responses,           // POST /v1/responses
  embeddings,          // POST /v1/embeddings
};
// Stable snake_case name ("anthropic_messages"). Thread-safe, does not allocate.
[[nodiscard]] std::string_view gateway_api_name(GatewayApi api) noexcept;

// Choices whose finish reasons a record keeps, by choice index (more: not named).
inline constexpr std::size_t k_gateway_max_choices = 16;
// Streamed tool calls a record assembles, by tool call index (more: dropped, completion_truncated).
inline constexpr std::size_t k_gateway_max_tool_calls = 32;
// Bytes a record keeps of a chat stream's repeated chunk head (internal: the parser reads a
// chunk that begins like the last one from its text on; a longer head is read whole).
inline constexpr std::size_t k_gateway_chat_memo_bytes = 640;
// Longest response values a record keeps, bytes, from a body and a stream alike (longer: cut at
// a UTF-8 boundary, completion_truncated): the response id and model, the provider, each
// finish reason, an error message.
inline constexpr std::size_t k_gateway_max_id_bytes = 256;
inline constexpr std::size_t k_gateway_max_provider_bytes = 128;
inline constexpr std::size_t k_gateway_max_reason_bytes = 32;
inline constexpr std::size_t k_gateway_max_error_bytes = 1024;

// The per-request state: the LlmRequest being filled and the storage behind its views.
// Not thread-safe: one call at a time (from any thread).
class GatewayRecord {
 public:
  // Allocates the metadata table (max_metadata_keys + 1 entries); throws
  // std::invalid_argument when config.validate() fails.
  explicit GatewayRecord(const GatewayConfig& config = {});
  GatewayRecord(const GatewayRecord&) = delete;
  GatewayRecord& operator=(const GatewayRecord&) = delete;
  // Not movable: request() holds views into the record itself. Pool records by pointer.
  GatewayRecord(GatewayRecord&&) = delete;
  GatewayRecord& operator=(GatewayRecord&&) = delete;
  ~GatewayRecord();

  // Clears everything for the next request, keeping the buffers' capacity. Does not allocate,
  // cannot fail.
  void reset() noexcept;

  // The request being filled. The gateway sets account, request_id and the timings here.
  [[nodiscard]] LlmRequest& request() noexcept { return request_; }
  [[nodiscard]] const LlmRequest& request() const noexcept { return request_; }
  // Every issue found since reset() (bit set of ParseIssue).
  [[nodiscard]] std::uint32_t issues() const noexcept { return issues_; }
  // The API of the request (as told, or detected by parse_request; `detect` before it).
  [[nodiscard]] GatewayApi api() const noexcept { return api_; }

 private:
  friend class GatewayParser;
  struct Detail;  // the implementation's access helpers (gateway.cpp)
  void clear_stream() noexcept;

  // Fixed-capacity text: copies are cut at a UTF-8 boundary, never allocate.
  template <std::size_t N>
  struct FixedText {
    std::array<char, N> bytes{};
    std::size_t size = 0;
    [[nodiscard]] std::string_view view() const noexcept { return {bytes.data(), size}; }
  };

  GatewayConfig config_;
  LlmRequest request_;
  std::uint32_t issues_ = 0;
  GatewayApi api_ = GatewayApi::detect;

  // Request storage: unescaped strings and compact nested JSON (<= request body size), and a
  // sanitized copy of a request body that was not UTF-8.
  std::vector<char> request_arena_;
  std::size_t request_arena_used_ = 0;
  std::vector<char> request_copy_;
  // Response storage, same scheme.
  std::vector<char> response_arena_;
  std::size_t response_arena_used_ = 0;
  std::vector<char> response_copy_;
  // Outcome storage: the provider's error message.
  std::vector<char> outcome_arena_;
  std::size_t outcome_arena_used_ = 0;
  std::vector<char> outcome_copy_;

  std::vector<MetadataEntry> metadata_;  // fixed max_metadata_keys + 1 entries: [0] the issues entry
  std::size_t user_metadata_count_ = 0;
  FixedText<512> issues_text_;  // every issue name joined by ',' fits
  // The provider before a response named one (the request's, or the gateway's own): given back
  // when the next response attempt starts.
  std::string_view request_provider_;
  bool provider_from_response_ = false;

  // Every choice's finish reason joined by ',' (LlmRequest::finish_reasons), either kind of response.
  FixedText<k_gateway_max_choices * 33> finish_reasons_text_;

  // Stream state.
  // A line split across feed_stream calls: pending_size_ bytes, then room for the parser's
  // padding (it is parsed in place). Grow-only.
  std::vector<char> pending_line_;
  std::size_t pending_size_ = 0;
  std::vector<char> content_;       // choice 0's concatenated delta content, <= max_completion_bytes
  FixedText<k_gateway_max_id_bytes> stream_id_;
  FixedText<k_gateway_max_id_bytes> stream_model_;
  FixedText<k_gateway_max_reason_bytes> stream_finish_reason_;  // the first finish reason of any choice
  std::array<FixedText<k_gateway_max_reason_bytes>, k_gateway_max_choices> stream_reasons_;  // by choice index
  std::size_t stream_choices_ = 0;                                   // highest index + 1
  // Choice 0's tool calls, assembled by index from their deltas (id, type and name first,
  // arguments in fragments); written as the non-streamed `tool_calls` JSON at finish_stream.
  struct StreamToolCall {
    FixedText<128> id;
    FixedText<32> type;
    FixedText<128> name;
    std::vector<char> arguments;  // grow-only; cleared per request
  };
  std::vector<StreamToolCall> stream_tool_calls_;  // k_gateway_max_tool_calls, made at construction
  std::size_t stream_tool_call_count_ = 0;         // highest index + 1
  // Anthropic / Responses: which slot of stream_tool_calls_ each tool_use / function_call
  // block (by its event `index` / `output_index`) went to, slots given in order of first
  // appearance, so the limit counts tool calls, not blocks. [0, stream_tool_block_count_) set.
  struct StreamToolBlock {
    std::int64_t block = 0;
    std::size_t slot = 0;
  };
  std::array<StreamToolBlock, k_gateway_max_tool_calls> stream_tool_blocks_{};
  std::size_t stream_tool_block_count_ = 0;
  std::size_t stream_tool_bytes_ = 0;              // arguments kept, counted with content_
  std::vector<char> tool_calls_json_;              // grow-only
  bool stream_final_tools_ = false;  // tool_calls_json_ holds a final event's whole calls
  FixedText<k_gateway_max_provider_bytes> stream_provider_;
  FixedText<k_gateway_max_error_bytes> stream_error_;
  std::int64_t stream_input_tokens_ = -1;
  std::int64_t stream_output_tokens_ = -1;
  std::int64_t stream_cache_read_tokens_ = -1;
  std::int64_t stream_cache_creation_tokens_ = -1;
  std::int64_t stream_reasoning_tokens_ = -1;
  double stream_cost_ = k_unknown_double;
  bool stream_active_ = false;
  bool stream_done_ = false;
  bool stream_error_seen_ = false;
  bool discarding_line_ = false;  // inside an over-long line: drop until its line end
  bool skipping_line_ = false;    // inside a line that is not `data:`: nothing to read in it
  // The SSE event being assembled (data of an event with several `data:` lines, or of one
  // whose end was not yet seen): bytes [event_begin_, event_size_) of event_data_, the lines'
  // values joined by '\n', with room for the parser's padding after them (parsed in place).
  // Grow-only; swapped with pending_line_ when a line assembled there starts an event.
  std::vector<char> event_data_;
  std::size_t event_begin_ = 0;
  std::size_t event_size_ = 0;
  std::uint64_t event_now_ = 0;     // the feed's clock when the event's last data line ended
  bool event_open_ = false;         // a `data:` line is kept in event_data_ (dispatched at the blank line)
  bool discarding_event_ = false;   // an event over the limit: its data lines dropped up to the blank line
  bool after_cr_ = false;           // the last byte fed was a CR ending a line: an LF next is part of it
  bool done_sentinel_ = false;      // `data: [DONE]` seen: later data events are not read (flagged)
  std::uint8_t bom_seen_ = 0;     // bytes of a leading UTF-8 BOM skipped; 3: past the start
  // The last chat chunk read without simdjson, through its content's opening quote, and what
  // was read up to there (gateway.cpp, fast_chat_event): a chunk beginning with the same bytes
  // is read from its content on. chat_memo_size_ bytes used; 0: none.
  alignas(8) std::array<unsigned char, k_gateway_chat_memo_bytes> chat_memo_{};
  std::uint32_t chat_memo_size_ = 0;
};

// The parsers of one gateway thread. Not thread-safe: one per thread. Every parse call is
// noexcept, never throws, and allocates only to grow its buffers past sizes seen before.
class GatewayParser {
 public:
  // Allocates the JSON parser. Throws std::invalid_argument when config.validate() fails.
  explicit GatewayParser(const GatewayConfig& config = {});
  GatewayParser(const GatewayParser&) = delete;
  GatewayParser& operator=(const GatewayParser&) = delete;
  GatewayParser(GatewayParser&&) noexcept;
  GatewayParser& operator=(GatewayParser&&) noexcept;
  ~GatewayParser();

  // Reads the request body into rec.request(): model (and provider from its `provider/` slug),
  // user (else Anthropic's `metadata.user_id`), session_id, the `trace` object as metadata, messages (raw JSON text, as the prompt),
  // stream, temperature, top_p, max_tokens (max_completion_tokens wins over it, as OpenAI
  // deprecated max_tokens for it; Responses' max_output_tokens), operation "chat" ("text_completion" for a legacy `prompt`,
  // "embeddings" for embeddings). A non-empty session_header (the x-session-id header value)
  // overrides the body's session_id (kept as given; one that is not UTF-8 is flagged
  // request_invalid_utf8 and made valid at submit). A UTF-8 byte order mark before a body
  // (request, response, error body) is skipped, not flagged, as before a stream. `api` says which API the body belongs to (see
  // GatewayApi); rec.api() tells what was used.
  // The prompt by API: chat: `messages` as sent; Anthropic: `messages`, with a top-level
  // `system` put first as {"role":"system","content":<system as sent>}; Responses: `input`
  // (a string as text; items as sent, with `instructions` put first as a system message);
  // embeddings: `input` (a string as text, an array as sent).
  // `trace`: one MetadataEntry per key in body order, typed (string, boolean, int64, float64
  // for non-integers and integers above int64), objects and arrays as compact JSON text; a null
  // value is left out (counted in GatewayStats::metadata_nulls_dropped); a key given twice
  // keeps its last value in its first place (duplicate_key), as every other field keeps its
  // last; an empty string is kept as sent (the client's value). `messages` is skipped, not validated, by the on-demand parser: the
  // prompt is the client's array text as sent.
  // Clears the request-side fields first; does not touch account, request_id or timings.
  // Failure: issues in the result (the rest of the body is still read where possible).
  // Not thread-safe (this parser and rec); allocates only to grow buffers.
  GatewayParseResult parse_request(std::string_view body, std::string_view session_header,
                                   GatewayRecord& rec, GatewayApi api = GatewayApi::detect) noexcept;

  // Reads a non-streamed response body: id, model, provider (when the body names one),
  // choice 0's finish_reason (finish_reasons: every choice's, "unknown" for a choice without
  // one, streams alike), choices[0].message.content (or its
  // tool_calls as JSON text when content is null; tool calls in a canonical form, the form a
  // stream's are written in: the members a stream's call has, in its order, others left out,
  // compact with strings re-escaped; the first k_gateway_max_tool_calls) as the completion, usage.prompt_tokens,
  // usage.completion_tokens, usage.cost, and a top-level {"error":{"message":...}} (error,
  // error_message). Anthropic `content` blocks and Responses `output` items: the text blocks
  // (output_text parts) are the completion, else the tool_use / function_call list as JSON;
  // `thinking` / `redacted_thinking` blocks and `reasoning` items are not kept (their tokens
  // are: reasoning_output_tokens; README "Raw bodies" says why). Starts the response side
  // afresh (header comment, "Response attempts") and ends a stream left unfinished. Failure
  // and allocation as parse_request.
  GatewayParseResult parse_response(std::string_view body, GatewayRecord& rec) noexcept;

  // A streamed response. begin_stream starts the response side afresh (header comment,
  // "Response attempts") and clears the stream state; feed_stream takes the SSE bytes
  // as they pass, split anywhere (even inside a line or a UTF-8 sequence); now_unix_nano (the
  // gateway's clock, 0: unknown) stamps first_token_unix_nano at the first content delta;
  // finish_stream copies id, model, finish reason, usage, cost and the concatenated content
  // into rec.request(). Framing as the WHATWG SSE spec ("Interpreting an event stream"): lines
  // end with CRLF, LF or a lone CR (a CR ending one feed and an LF starting the next: one line
  // end); an event's `data:` lines (one space after the colon optional) are joined with '\n'
  // and read as one JSON object at the blank line; comments (`:`), `event:`, `id:`, `retry:`
  // and unknown fields carry nothing read. A one-line event (every LLM API's) is read at its
  // line end when the next byte already shows the blank line, else at the blank line; an event
  // left open when the stream ends is read at finish_stream. Data events after `data: [DONE]`
  // are not read (stream_chunk_invalid). Only the current line and event are buffered, never
  // the whole stream; a chunk's
  // `error.message` sets error. Streamed tool calls are assembled by index (the completion when
  // there is no text, as for the non-streamed body). feed_stream and finish_stream need a
  // begin_stream before them: without one, or after finish_stream, they are refused
  // (stream_not_begun) and change nothing, so the finished stream's views stay valid.
  // Failure: issues per call (a bad event is skipped, the next ones still read); finish_stream
  // reports stream_incomplete. Allocation as parse_request (content grows up to
  // max_completion_bytes, a split line and an event up to max_stream_line_bytes).
  void begin_stream(GatewayRecord& rec) noexcept;
  GatewayParseResult feed_stream(std::string_view bytes, std::uint64_t now_unix_nano,
                                 GatewayRecord& rec) noexcept;
  GatewayParseResult finish_stream(GatewayRecord& rec) noexcept;

  // The outcome from the gateway: http_status (0: unknown) and, for a failed call, the error
  // body. A status outside 100..599 is not an HTTP status: left 0 (unknown) and flagged
  // field_wrong_type. Status >= 400, or a non-empty error_body with status 0, makes error = true with the
  // provider's message ({"error":{"message":..}}, {"error":".."}, {"message":..} or
  // {"detail":..}; cut to k_gateway_max_error_bytes, UTF-8 safe, completion_truncated, as in
  // parse_response); a body without one gives its text (cut to max_error_text_bytes), an empty
  // or whitespace-only body gives "HTTP <status>". A status below 400 leaves error as the response set it.
  // Belongs to the attempt whose response was parsed last: parse_response and begin_stream
  // clear it.
  // Failure: error_body_unreadable (the text is kept). Allocation as parse_request.
  GatewayParseResult set_outcome(int http_status, std::string_view error_body,
                                 GatewayRecord& rec) noexcept;

  // This parser's counters. Same thread as the parser. Does not allocate.
  [[nodiscard]] const GatewayStats& stats() const noexcept { return stats_; }

 private:
  struct Impl;
  GatewayParseResult finish_call(GatewayRecord& rec, std::uint32_t issues,
                                 std::string_view detail) noexcept;
  GatewayParseResult feed_lines(std::string_view bytes, std::uint64_t now_unix_nano,
                                GatewayRecord& rec) noexcept;
  void stream_bytes(std::string_view bytes, std::uint64_t now_unix_nano, GatewayRecord& rec,
                    std::uint32_t& issues, std::string_view& detail) noexcept;
  void data_line(std::string_view line, bool blank_next, bool in_place, GatewayRecord& rec,
                 std::uint32_t& issues, std::string_view& detail, std::uint64_t now_unix_nano) noexcept;
  void dispatch_event(std::uint64_t now_unix_nano, GatewayRecord& rec, std::uint32_t& issues,
                      std::string_view& detail) noexcept;
  void stream_event(std::string_view data, std::uint64_t now_unix_nano, GatewayRecord& rec,
                    std::uint32_t& issues, std::string_view& detail, bool in_place) noexcept;

  // bad_input: set when an Anthropic tool_use input was not a complete JSON object.
  // bad_escapes: escapes in an input that are not valid UTF-16 (made U+FFFD).
  std::string_view tool_calls_json(GatewayRecord& rec, bool& bad_input, std::size_t& bad_escapes) noexcept;

  std::unique_ptr<Impl> impl_;
  GatewayStats stats_;
};

}  // namespace tracecast
