// The gateway body parsers: simdjson on-demand over a padded copy of each body, views mapped
// back into the caller's body, unescaped strings in the record's arenas.
//
//   caller body  [ {"model":"openai/gpt-4o","messages":[...],"trace":{...}} ]
//                      ^ views (no escapes)        ^ prompt view (raw array text)
//   scratch      [ same bytes | repair closers | SIMDJSON_PADDING ]   parsed here, per thread
//   record arena [ unescaped strings | compact nested metadata JSON ]  <= body size, reused
#include "tracecast/gateway.h"
#include "tracecast/json_number.h"

#include <emmintrin.h>  // SSE2: part of the x86-64 baseline
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>  // std::launder
#include <stdexcept>
#include <type_traits>
#include <utility>

#include "gateway_testing.h"
#include "gateway_text.h"

namespace tracecast {

namespace od = simdjson::ondemand;

namespace {

constexpr std::array<std::string_view, k_parse_issue_count> k_issue_names = {
    "request_not_json",      "request_truncated",      "request_invalid_utf8",
    "field_wrong_type",      "response_not_json",      "response_truncated",
    "stream_chunk_invalid",  "too_many_metadata_keys", "response_invalid_utf8",
    "body_too_large",        "completion_truncated",   "stream_line_too_long",
    "stream_incomplete",     "error_body_unreadable",  "invalid_escape",
    "stream_not_begun",      "duplicate_key",
};

constexpr std::size_t k_max_choices = k_gateway_max_choices;
constexpr std::size_t k_scratch_extra = detail::k_repair_slack + simdjson::SIMDJSON_PADDING;
constexpr std::size_t k_initial_parser_capacity = std::size_t{64} << 10;

// One 16-byte block's line-end candidates: its '\n' and '\r' bytes (SSE line ends are CRLF,
// LF or a lone CR; stream_bytes tells them apart), one compare each, one movemask.
[[nodiscard]] inline std::uint32_t line_end_bits(__m128i v) noexcept {
  const __m128i ends = _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\r')));
  return static_cast<std::uint32_t>(_mm_movemask_epi8(ends));
}

// The '\r' bytes of one 16-byte block.
[[nodiscard]] inline std::uint32_t cr_bits(__m128i v) noexcept {
  return static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\r'))));
}

// The '\n' and '\r' bytes of [p, p + n), n <= 64, as a bit mask (bit i: p[i]), and in `cr` the
// '\r' bytes alone (so that stream_bytes reads no byte to tell an LF, the usual line end, from
// a CR): 16 bytes at a time (SSE2, in the x86-64 baseline), the tail byte by byte (never read
// past the caller's bytes). A feed's line ends are found block by block in one pass, not line
// by line: a search per line cost a call and a rescan of the bytes the fast path of feed_stream
// had just searched.
[[nodiscard]] inline std::uint64_t newline_mask(const char* p, std::size_t n, std::uint64_t& cr) noexcept {
  std::uint64_t mask = 0;
  std::uint64_t crs = 0;
  auto block16 = [&](std::size_t at) noexcept {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + at));
    const auto lf = static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8('\n'))));
    const std::uint32_t c = cr_bits(v);
    mask |= std::uint64_t{lf | c} << at;
    crs |= std::uint64_t{c} << at;
  };
  std::size_t i = 0;
  if (n == 64) {  // every block but a feed's last: four independent compares, no loop
    block16(0);
    block16(16);
    block16(32);
    block16(48);
    i = 64;
  }
  for (; n - i >= 16; i += 16) block16(i);
  for (; i < n; ++i) {
    if (p[i] == '\n') mask |= std::uint64_t{1} << i;
    if (p[i] == '\r') {
      mask |= std::uint64_t{1} << i;
      crs |= std::uint64_t{1} << i;
    }
  }
  cr = crs;
  return mask;
}

// True when s, inside a parse buffer (SIMDJSON_PADDING readable bytes after the parsed text),
// holds a backslash: 16 bytes at a time, the last block masked to s, no byte loop (most
// strings read are short and have none; memchr's call was most of their cost).
[[nodiscard]] inline bool has_backslash_padded(std::string_view s) noexcept {
  static_assert(simdjson::SIMDJSON_PADDING >= 16);
  const char* p = s.data();
  std::size_t left = s.size();
  const __m128i bs = _mm_set1_epi8('\\');
  for (; left != 0; p += 16) {
    auto m = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), bs)));
    if (left < 16) {
      m &= (1u << left) - 1;
      left = 0;
    } else {
      left -= 16;
    }
    if (m != 0) return true;
  }
  return false;
}

// A body without a leading UTF-8 byte order mark (some clients and servers write one; it is not
// part of the JSON, as before a stream's first line). Skipped silently: the body is read whole.
[[nodiscard]] std::string_view skip_bom(std::string_view body) noexcept {
  if (body.size() >= 3 && body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);
  return body;
}

// True for `{}` written with any whitespace inside (`{ }`, `{\n}`).
[[nodiscard]] bool is_empty_object(std::string_view s) noexcept {
  if (s.size() < 2 || s.front() != '{' || s.back() != '}') return false;
  for (std::size_t i = 1; i + 1 < s.size(); ++i)
    if (s[i] != ' ' && s[i] != '\n' && s[i] != '\r' && s[i] != '\t') return false;
  return true;
}

[[nodiscard]] std::string_view trim_right(std::string_view s) noexcept {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// The escaped text of a key: raw() points just past its opening quote, and stage 1 has checked
// that every string is closed, so the scan ends inside the buffer.
[[nodiscard]] std::string_view raw_key(const od::raw_json_string& key, const char* end) noexcept {
  const char* begin = key.raw();
  const char* p = begin;
  for (;;) {
    p = static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
    if (p == nullptr) return {};  // cannot happen after stage 1; keeps the scan bounded
    std::size_t backslashes = 0;
    while (p - backslashes > begin && p[-1 - static_cast<std::ptrdiff_t>(backslashes)] == '\\') ++backslashes;
    if (backslashes % 2 == 0) break;
    ++p;  // an escaped quote
  }
  return {begin, static_cast<std::size_t>(p - begin)};
}

// A key compared in place against a literal: its raw (escaped) bytes, then the closing quote.
// Reading up to the literal's length past raw() stays inside the padded parse buffer. Keys
// spelled with escapes do not match (no client escapes these ASCII names).
struct Key {
  const char* raw;
  template <std::size_t N>
  [[nodiscard]] bool operator==(const char (&lit)[N]) const noexcept {
    return std::memcmp(raw, lit, N - 1) == 0 && raw[N - 1] == '"';
  }
};

// Visits the fields of obj in order: visit(key, value), or visit(field) where the caller needs
// the key's text. visit returns false to stop early. Returns the error that broke the object
// (nothing is recorded: each caller says what a broken object means to it), else SUCCESS.
// Allocates nothing.
template <typename Visit>
[[nodiscard]] simdjson::error_code for_each_field(od::object& obj, Visit&& visit) noexcept {
  for (auto field_result : obj) {
    if (const auto err = field_result.error()) return err;
    od::field& field = field_result.value_unsafe();
    bool more;
    if constexpr (std::is_invocable_v<Visit&, od::field&>) {
      more = visit(field);
    } else {
      more = visit(Key{field.key().raw()}, field.value());
    }
    if (!more) break;
  }
  return simdjson::SUCCESS;
}

// Issues found by one call, and the first one's description.
struct Issues {
  std::uint32_t bits = 0;
  std::string_view detail;
  void add(ParseIssue i, std::string_view what) noexcept {
    if (bits == 0) detail = what;
    bits |= issue_bit(i);
  }
};

// Grow-only byte arena inside a record. Sized before a parse to hold everything the parse can
// copy (never more than the body), so a copy never moves earlier views.
struct Arena {
  std::vector<char>& buf;
  std::size_t& used;

  // capacity: the body's size. Unescaping a bad 2-byte escape gives 3 bytes (U+FFFD), so
  // the arena holds 1.5x that.
  void prepare(std::size_t body_size) noexcept {
    used = 0;
    // + room for one list of tool calls in their canonical form (members a body may leave out
    // written: at most ~64 bytes more than a call's own text, README "canonical form").
    const std::size_t capacity = body_size + body_size / 2 + 256 + k_gateway_max_tool_calls * 80;
    if (buf.size() < capacity) {
      try {
        buf.resize(capacity);
      } catch (...) {  // out of memory: copies are cut short instead
      }
    }
  }
  [[nodiscard]] std::size_t room() const noexcept { return buf.size() - used; }
  [[nodiscard]] char* cursor() noexcept { return buf.data() + used; }
  std::string_view commit(std::size_t n) noexcept {
    std::string_view v{buf.data() + used, n};
    used += n;
    return v;
  }
  std::string_view copy(std::string_view s) noexcept {
    const std::size_t n = detail::utf8_cut(s, room());
    if (n != 0) std::memcpy(cursor(), s.data(), n);
    return commit(n);
  }
};

template <std::size_t N>
void set_fixed(std::array<char, N>& bytes, std::size_t& size, std::string_view s) noexcept {
  size = detail::utf8_cut(s, N);
  if (size != 0) std::memcpy(bytes.data(), s.data(), size);
}

// Grows v to at least n bytes; false when memory runs out. The check is inline (it runs for
// every piece of a stream), the growth is not.
[[gnu::noinline]] bool grow_to(std::vector<char>& v, std::size_t n) noexcept {
  try {
    v.resize(n);
    return true;
  } catch (...) {
    return false;
  }
}
[[nodiscard]] inline bool ensure_size(std::vector<char>& v, std::size_t n) noexcept {
  return v.size() >= n || grow_to(v, n);
}

// One element of a streamed `delta.tool_calls`: which call (index) and the pieces this chunk
// adds (id, type and name in the first, arguments in fragments).
// ToolCallDelta::index when the delta named an index that is not a non-negative integer.
inline constexpr std::int64_t k_bad_tool_index = -2;

struct ToolCallDelta {
  std::int64_t index = -1;  // -1: none given; k_bad_tool_index: not a non-negative integer
  std::string_view id;
  std::string_view type;
  std::string_view name;
  std::string_view arguments;
};
constexpr std::size_t k_max_tool_deltas = 8;  // per chunk (one is the norm; more: cut, counted)

// What a stream event's `type` names, classified once when it is read: what the walk reads of
// the event (event_reads) and what stream_event does with it are switches on this, not string
// compares repeated per line.
enum class Event : std::uint8_t {
  none,           // no `type` (a chat chunk) or an empty one
  other,          // a type not listed below (message_delta, error, ...): every key read
  nothing,        // ping, content_block_stop, response.*.done, content_part.*: nothing used
  block_start,    // content_block_start
  block_delta,    // content_block_delta
  message_start,  // its message without the content list
  message_stop,
  item_added,     // response.output_item.added
  text_delta,     // response.output_text.delta
  args_delta,     // response.function_call_arguments.delta
  lifecycle,      // response.created / in_progress: the response without its output
  final,          // response.completed / incomplete / failed: the same, and the end
};

// Everything a response body or one stream chunk can say. Content and tool calls are choice
// 0's (the span carries choice 0, as for a non-streamed response); finish reasons are kept per
// choice index.
struct ResponseFields {
  std::string_view id;
  std::string_view model;
  std::string_view provider;
  std::array<std::string_view, k_max_choices> reasons{};  // by choice index
  std::size_t choices = 0;                                // highest index with a reason + 1
  std::string_view first_reason;                          // first non-null, any choice
  std::string_view content;        // message.content, or delta.content in a chunk
  std::string_view tool_calls;     // raw JSON text of message.tool_calls
  bool saw_tool_calls = false;
  bool any_output = false;  // content or tool calls in any choice (a stream's first token)
  // delta.tool_calls, [0, n_deltas) set: k_max_tool_deltas entries owned by the parser (not
  // part of this struct, which is made per stream line: 600 bytes less to clear each time).
  ToolCallDelta* deltas;
  std::size_t n_deltas = 0;
  bool deltas_overflow = false;
  std::int64_t input_tokens = -1;
  std::int64_t output_tokens = -1;
  std::int64_t cache_read_tokens = -1;
  std::int64_t cache_creation_tokens = -1;
  std::int64_t reasoning_tokens = -1;
  double cost = k_unknown_double;
  bool error = false;
  std::string_view error_message;

  // Anthropic Messages and OpenAI Responses shapes (bodies and stream events).
  std::string_view type;           // top-level `type`: an event type, or "message"
  std::string_view top_message;    // top-level `message` as a string (a Responses error event)
  std::string_view status;         // Responses: completed / incomplete / failed
  std::string_view incomplete_reason;
  std::int64_t block_index = -1;   // Anthropic `index`, Responses `output_index`
  std::string_view delta_text;     // text_delta.text / thinking skipped / Responses string delta
  std::string_view delta_json;     // Anthropic input_json_delta.partial_json
  std::string_view block_type;     // content_block.type / item.type
  std::string_view block_id;       // tool_use id / function_call call_id
  std::string_view block_name;
  std::string_view block_text;     // a content_block_start's initial text
  std::string_view block_input;    // a content_block_start's raw `input`, item `arguments`
  bool tools_in_output = false;    // tool_use / function_call items in a body's content/output
  Event event = Event::none;       // `type` classified
  // Set when a key outside a block event's own (type, index, delta, content_block / item) was
  // read: only then can the members below `event`'s group hold something (id, usage, error,
  // ...), so only then are they merged into the record and cleared again.
  bool general = false;

  explicit ResponseFields(ToolCallDelta* delta_storage) noexcept : deltas(delta_storage) {}

  // Back to the state above, member by member: a stream line reuses the parser's instance.
  // Constructing one per line cost ~10 ns (GCC clears its 656 bytes with `rep stos`, whose
  // start-up is most of the time of a short line); set reasons are below `choices` only.
  void clear() noexcept {
    static_assert(sizeof(ResponseFields) == 656, "a member added: clear it here too");
    // One statement per member: a chained `a = b = {}` reloads what it just stored, in halves
    // (a store-forwarding stall per member, measured).
    const std::string_view none;
    // What a block event (EventReads::block / nothing) and stream_event's event switch write.
    for (std::size_t i = 0; i < choices; ++i) reasons[i] = none;
    choices = 0;
    first_reason = none;
    content = none;
    any_output = false;
    n_deltas = 0;
    type = none;
    event = Event::none;
    block_index = -1;
    delta_text = none;
    delta_json = none;
    block_type = none;
    block_id = none;
    block_name = none;
    block_text = none;
    block_input = none;
    if (!general) return;  // the rest is as cleared after the previous general line
    general = false;
    id = none;
    model = none;
    provider = none;
    tool_calls = none;
    saw_tool_calls = false;
    deltas_overflow = false;
    input_tokens = -1;
    output_tokens = -1;
    cache_read_tokens = -1;
    cache_creation_tokens = -1;
    reasoning_tokens = -1;
    cost = k_unknown_double;
    error = false;
    error_message = none;
    top_message = none;
    status = none;
    incomplete_reason = none;
    tools_in_output = false;
  }

  // Choice 0's (or Anthropic's stop_reason), else a Responses body's incomplete reason or
  // status; never another choice's (the span's finish reason is choice 0's, as its text is).
  [[nodiscard]] std::string_view finish_reason() const noexcept {
    if (!reasons[0].empty()) return reasons[0];
    return !incomplete_reason.empty() ? incomplete_reason : status;
  }
};

enum class Side : std::uint8_t { request, response };

struct SideIssues {
  ParseIssue not_json;
  ParseIssue truncated;
  ParseIssue invalid_utf8;
  std::string_view d_not_object;
  std::string_view d_malformed;
  std::string_view d_truncated;
  std::string_view d_trailing;
  std::string_view d_utf8;
  std::string_view d_too_large;
};
constexpr SideIssues k_request_side{
    ParseIssue::request_not_json,
    ParseIssue::request_truncated,
    ParseIssue::request_invalid_utf8,
    "request: body is not a JSON object",
    "request: malformed JSON inside the object (fields before it kept)",
    "request: body ends early (fields before the cut kept)",
    "request: bytes after the JSON object",
    "request: bytes that are not UTF-8 (replaced by '?')",
    "request: body larger than max_body_bytes (not parsed)",
};
constexpr SideIssues k_response_side{
    ParseIssue::response_not_json,
    ParseIssue::response_truncated,
    ParseIssue::response_invalid_utf8,
    "response: body is not a JSON object",
    "response: malformed JSON inside the object (fields before it kept)",
    "response: body ends early (fields before the cut kept)",
    "response: bytes after the JSON object",
    "response: bytes that are not UTF-8 (replaced by '?')",
    "response: body larger than max_body_bytes (not parsed)",
};

}  // namespace

// ---------------------------------------------------------------------------------------
std::string_view parse_issue_name(ParseIssue issue) noexcept {
  const auto v = static_cast<std::uint32_t>(issue);
  if (v == 0 || (v & (v - 1)) != 0) return "unknown";
  const auto index = static_cast<std::size_t>(__builtin_ctz(v));
  return index < k_issue_names.size() ? k_issue_names[index] : std::string_view{"unknown"};
}

std::string_view gateway_api_name(GatewayApi api) noexcept {
  switch (api) {
    case GatewayApi::detect: return "detect";
    case GatewayApi::chat_completions: return "chat_completions";
    case GatewayApi::anthropic_messages: return "anthropic_messages";
    case GatewayApi::responses: return "responses";
    case GatewayApi::embeddings: return "embeddings";
  }
  return "unknown";
}

std::uint64_t GatewayStats::count(ParseIssue i) const noexcept {
  const auto v = static_cast<std::uint32_t>(i);
  if (v == 0 || (v & (v - 1)) != 0) return 0;
  const auto index = static_cast<std::size_t>(__builtin_ctz(v));
  return index < by_issue.size() ? by_issue[index] : 0;
}

std::string_view GatewayConfig::validate() const noexcept {
  constexpr std::size_t k_gib = std::size_t{1} << 30;
  if (max_body_bytes < 1 || max_body_bytes > k_gib) return "max_body_bytes: must be 1 .. 1 GiB";
  if (max_metadata_keys > 4096) return "max_metadata_keys: above 4096";
  if (max_completion_bytes > max_body_bytes)
    return "max_completion_bytes: above max_body_bytes";
  if (max_stream_line_bytes < 64 || max_stream_line_bytes > max_body_bytes)
    return "max_stream_line_bytes: must be 64 .. max_body_bytes";
  if (max_error_text_bytes < 16 || max_error_text_bytes > (std::size_t{1} << 20))
    return "max_error_text_bytes: must be 16 .. 1 MiB";
  return {};
}

// ---------------------------------------------------------------------------------------
GatewayRecord::GatewayRecord(const GatewayConfig& config) : config_(config) {
  if (const auto why = config_.validate(); !why.empty())
    throw std::invalid_argument(std::string(why));
  // Fixed table: [0] the issues entry, [1, 1 + count) the `trace` keys.
  metadata_.resize(config_.max_metadata_keys + 1);
  stream_tool_calls_.resize(k_gateway_max_tool_calls);
}

GatewayRecord::~GatewayRecord() = default;

void GatewayRecord::reset() noexcept {
  request_ = LlmRequest{};
  issues_ = 0;
  api_ = GatewayApi::detect;
  request_arena_used_ = 0;
  response_arena_used_ = 0;
  outcome_arena_used_ = 0;
  user_metadata_count_ = 0;
  request_provider_ = {};
  provider_from_response_ = false;
  issues_text_.size = 0;
  finish_reasons_text_.size = 0;
  clear_stream();
  stream_active_ = false;
}

void GatewayRecord::clear_stream() noexcept {
  pending_size_ = 0;
  skipping_line_ = false;
  content_.clear();
  stream_id_.size = 0;
  stream_model_.size = 0;
  stream_finish_reason_.size = 0;
  for (std::size_t i = 0; i < stream_choices_; ++i) stream_reasons_[i].size = 0;
  stream_choices_ = 0;
  for (std::size_t i = 0; i < stream_tool_call_count_; ++i) {
    StreamToolCall& c = stream_tool_calls_[i];
    c.id.size = c.type.size = c.name.size = 0;
    c.arguments.clear();
  }
  stream_tool_call_count_ = 0;
  stream_tool_block_count_ = 0;
  stream_tool_bytes_ = 0;
  stream_final_tools_ = false;
  chat_memo_size_ = 0;
  stream_provider_.size = 0;
  stream_error_.size = 0;
  stream_input_tokens_ = -1;
  stream_output_tokens_ = -1;
  stream_cache_read_tokens_ = -1;
  stream_cache_creation_tokens_ = -1;
  stream_reasoning_tokens_ = -1;
  stream_cost_ = k_unknown_double;
  stream_done_ = false;
  stream_error_seen_ = false;
  discarding_line_ = false;
  event_begin_ = 0;
  event_size_ = 0;
  event_now_ = 0;
  event_open_ = false;
  discarding_event_ = false;
  after_cr_ = false;
  done_sentinel_ = false;
  bom_seen_ = 0;
}

// What a stream's data lines report.
constexpr std::string_view k_chunk_detail = "stream: a data line is not a JSON object";
constexpr SideIssues k_chunk_side{
    ParseIssue::stream_chunk_invalid,
    ParseIssue::stream_chunk_invalid,
    ParseIssue::response_invalid_utf8,
    k_chunk_detail,
    k_chunk_detail,
    "stream: a data line ends early",
    k_chunk_detail,
    "stream: bytes that are not UTF-8 (replaced by '?')",
    "stream: a data line larger than max_body_bytes",
};

// ---------------------------------------------------------------------------------------
// One body being parsed: where simdjson reads, where views point, where copies go.
struct BodyParse {
  const char* parse_base = nullptr;
  const char* parse_end = nullptr;  // end of the parsed bytes (before the padding)
  const char* view_base = nullptr;
  std::size_t view_len = 0;
  bool repaired = false;
  Arena arena;
  Issues& issues;
  const SideIssues& side;
  std::uint64_t nulls_dropped = 0;  // `trace` values that were null (left out)
  bool stream_event = false;        // a stream's data line: its `type` says what is read
  // A stream with no output yet: its final event's output (response.completed) is read, for a
  // stream that sends its text only there (no deltas).
  bool final_output_wanted = false;
  bool skip_id_model = false;       // a stream whose id and model are known (the first is kept)

  // A view of bytes inside the parsed buffer, moved to view_base and clamped to the body (a
  // repair appends closers that must never be seen).
  [[nodiscard]] std::string_view map(std::string_view in_parse) const noexcept {
    const auto off = static_cast<std::size_t>(in_parse.data() - parse_base);
    if (off >= view_len) return {};
    return {view_base + off, std::min(in_parse.size(), view_len - off)};
  }

  // A whole JSON value (object, array or string token) read in the parse buffer: a view of the
  // body, or, when the body was cut inside it, a copy in the arena with the repair's closers,
  // so that a value kept as JSON text is complete JSON.
  [[nodiscard]] std::string_view whole(std::string_view in_parse) noexcept {
    const std::string_view v = map(in_parse);
    if (v.size() == in_parse.size() || !repaired) return v;
    if (in_parse.size() > arena.room()) return {};  // cannot happen: the arena holds 1.5x the body
    std::memcpy(arena.cursor(), in_parse.data(), in_parse.size());
    return arena.commit(in_parse.size());
  }

  // Tool-call JSON (a chat message's tool_calls, an Anthropic tool_use block, a Responses
  // function_call item) read in the parse buffer, in the canonical form a stream's assembled
  // calls are written in (detail::canonical_json: compact, strings re-escaped), in the arena:
  // the same call gives the same text whether it came whole or streamed. Bad escapes become
  // U+FFFD, counted. A body cut inside it: the repair's closers are part of it.
  [[nodiscard]] std::string_view canonical(std::string_view in_parse) noexcept {
    std::size_t n = 0;
    std::size_t bad = 0;
    if (!detail::canonical_json(in_parse, arena.cursor(), arena.room(), n, bad))
      return fix_raw(whole(in_parse));  // no room (cannot happen: the arena holds 1.5x the body)
    if (bad != 0) bad_escape();
    return arena.commit(n);
  }

  void broken(simdjson::error_code) noexcept {
    if (!repaired) issues.add(side.not_json, side.d_malformed);
  }

  void wrong_type(std::string_view what) noexcept { issues.add(ParseIssue::field_wrong_type, what); }

  // A JSON string as a view (into the body when it has no escapes, else unescaped into the
  // arena). null reads as empty. false: another type (or a broken value).
  bool read_string(od::value& v, std::string_view& out) noexcept {
    const std::string_view tok = v.raw_json_token();
    if (tok.empty()) return false;
    if (tok[0] != '"') {
      if (tok[0] == 'n') {
        bool is_null = false;
        if (!v.is_null().get(is_null) && is_null) {
          out = {};
          return true;
        }
      }
      return false;
    }
    // The token runs to the next structural byte: the closing quote, then any whitespace.
    std::size_t close = tok.size() - 1;
    if (tok[close] != '"') close = tok.find_last_of('"');
    if (close == 0) return false;
    const std::string_view content{tok.data() + 1, close - 1};
    if (!has_backslash_padded(content)) {
      out = map(content);
      return true;
    }
    out = unescape(content);
    return true;
  }

  // The escaped content of a string (in the parse buffer) unescaped into the arena; escapes
  // that are not valid UTF-16 become U+FFFD, counted.
  std::string_view unescape(std::string_view escaped) noexcept {
    std::size_t bad = 0;
    const std::size_t n = detail::unescape_json_string(escaped, arena.cursor(), arena.room(), bad);
    if (bad != 0) bad_escape();
    return arena.commit(n);
  }

  void bad_escape() noexcept {
    issues.add(ParseIssue::invalid_escape,
               "a string escape that is not valid UTF-16 (replaced by U+FFFD)");
  }

  // Raw JSON text kept as is (messages, tool calls, content parts): a view of the body, or,
  // when it holds escapes that are not valid UTF-16, a copy in the arena with each replaced by
  // U+FFFD (fix_json_escapes_to: what the same string read as a value gives), counted. Text in
  // the arena already (compact text) is rewritten after itself and moved back. Only when the
  // arena has no room for the (up to 1.5x longer) copy — a body made mostly of bad 2-byte
  // escapes — is it rewritten in place without growing (fix_json_escapes: `?` for those).
  std::string_view fix_raw(std::string_view text) noexcept {
    if (text.empty() || std::memchr(text.data(), '\\', text.size()) == nullptr ||
        !detail::has_bad_json_escape(text))
      return text;
    std::size_t bad = 0;
    const bool in_arena = text.data() >= arena.buf.data() && text.data() < arena.buf.data() + arena.buf.size();
    const bool at_end = in_arena && text.data() + text.size() == arena.cursor();
    if (!in_arena || at_end) {
      const std::size_t n = detail::fix_json_escapes_to(text, arena.cursor(), arena.room(), bad);
      if (n != detail::k_no_room) {
        bad_escape();
        if (!at_end) return arena.commit(n);
        // Moved back over the text it replaces (the copy starts right after it).
        char* const p = const_cast<char*>(text.data());
        std::memmove(p, arena.cursor(), n);
        arena.used -= text.size();
        (void)arena.commit(n);
        return {p, n};
      }
    }
    if (in_arena) {
      char* p = const_cast<char*>(text.data());
      const std::size_t n = detail::fix_json_escapes(p, text.size(), bad);
      if (text.data() + text.size() == arena.cursor()) arena.used -= text.size() - n;
      bad_escape();
      return {p, n};
    }
    if (text.size() > arena.room()) {
      bad_escape();  // no room for a fixed copy (cannot happen: the arena holds 1.5x the body)
      return {};
    }
    std::memcpy(arena.cursor(), text.data(), text.size());
    const std::size_t n = detail::fix_json_escapes(arena.cursor(), text.size(), bad);
    bad_escape();
    return arena.commit(n);
  }

  // An object or array as compact JSON text in the arena.
  bool read_compact(od::value& v, od::json_type t, std::string_view& out) noexcept {
    std::string_view raw;
    if (t == od::json_type::object) {
      od::object o;
      if (v.get_object().get(o) || o.raw_json().get(raw)) return false;
    } else {
      od::array a;
      if (v.get_array().get(a) || a.raw_json().get(raw)) return false;
    }
    // A body cut inside the value: its text in the parse buffer, with the repair's closers,
    // so that it is still JSON (as whole() keeps a conversation); else a view of the body.
    raw = trim_right(raw);
    if (const std::string_view body_view = map(raw); body_view.size() == raw.size() || !repaired) raw = body_view;
    if (raw.size() > arena.room()) return false;
    out = fix_raw(arena.commit(detail::minify_json(raw, arena.cursor())));
    return true;
  }

  // Stores got, the value v read as a scalar; null leaves out untouched. false: wrong type.
  template <typename T>
  static bool read_scalar(od::value& v, simdjson::simdjson_result<T> got, T& out) noexcept {
    T x{};
    if (!std::move(got).get(x)) {
      out = x;
      return true;
    }
    bool is_null = false;
    return !v.is_null().get(is_null) && is_null;
  }

  // An integer; null leaves out untouched. false: wrong type.
  // The common token, up to 18 digits without a sign or a leading zero followed by nothing but
  // whitespace up to the next structural byte, is read from its bytes (what get_int64 gives
  // for it: an event's `index`, usage counts; get_int64's checks were most of read_int's ~3%
  // of an Anthropic stream, perf); the value is then skipped by the iteration like a string
  // read as a token. Every other token goes to simdjson.
  bool read_int(od::value& v, std::int64_t& out) noexcept {
    const std::string_view tok = v.raw_json_token();
    std::size_t i = 0;
    std::uint64_t x = 0;
    for (; i < tok.size() && i < 19; ++i) {
      const auto d = static_cast<unsigned>(static_cast<unsigned char>(tok[i])) - unsigned{'0'};
      if (d > 9) break;
      x = x * 10 + d;
    }
    if (i != 0 && i <= 18 && (tok[0] != '0' || i == 1)) {
      // The byte after the digits: inside the token, or the next structural byte (inside the
      // padded buffer). simdjson takes the number when it is whitespace or a structural byte;
      // here only whitespace, ',', '}' and ']' are (anything else: simdjson decides).
      const char after = tok.data()[i];
      std::size_t j = i;
      while (j < tok.size() && (tok[j] == ' ' || tok[j] == '\n' || tok[j] == '\r' || tok[j] == '\t')) ++j;
      if (j == tok.size() && (after == ' ' || after == '\n' || after == '\r' || after == '\t' ||
                              after == ',' || after == '}' || after == ']')) {
        out = static_cast<std::int64_t>(x);
        return true;
      }
    }
    return read_scalar(v, v.get_int64(), out);
  }

  // A number (integer or not); null leaves out untouched. A number of more than 19
  // significant digits is read again from its text: simdjson 3.0.1's get_double() misreads
  // some (tracecast/json_number.h).
  bool read_double(od::value& v, double& out) noexcept {
    const std::string_view tok = v.raw_json_token();
    double x = 0;
    if (!read_scalar(v, v.get_double(), x)) return false;
    if (!tok.empty() && tok[0] != 'n') out = json_number_exact(tok, x);
    return true;
  }

  bool read_bool(od::value& v, bool& out) noexcept { return read_scalar(v, v.get_bool(), out); }

  // A number outside its field's range (a negative token count, max_tokens, cost or
  // temperature, a top_p outside 0..1, a negative index): flagged, the field left unknown.
  void out_of_range() noexcept {
    wrong_type("a number out of its field's range (negative count, cost or index, top_p outside 0..1): left unknown");
  }

  // A count (tokens, max_tokens): as read_int, and a negative one is out_of_range, out untouched.
  bool read_count(od::value& v, std::int64_t& out) noexcept {
    std::int64_t x = 0;
    if (is_null_token(v)) return read_int(v, out);
    if (!read_int(v, x)) return false;
    if (x < 0) out_of_range();
    else out = x;
    return true;
  }

  // A stream event's `index` / `output_index`: a negative one is out_of_range and merges
  // nowhere (k_bad_tool_index).
  void read_index(od::value& v, std::int64_t& out) noexcept {
    std::int64_t x = 0;
    if (is_null_token(v) || !read_int(v, x)) return;  // null or another type: no index, as before
    if (x < 0) {
      out_of_range();
      out = k_bad_tool_index;
    } else {
      out = x;
    }
  }

  // A number in [lo, hi]: as read_double, and one outside is out_of_range, out untouched.
  bool read_double_in(od::value& v, double& out, double lo, double hi) noexcept {
    double x = 0;
    if (is_null_token(v)) return read_double(v, out);
    if (!read_double(v, x)) return false;
    if (!(x >= lo && x <= hi)) out_of_range();
    else out = x;
    return true;
  }

  static bool is_null_token(od::value& v) noexcept {
    const std::string_view tok = v.raw_json_token();
    return !tok.empty() && tok[0] == 'n';
  }
};

// The `trace` keys of one request by hash, so that a key given twice is found in O(1): with a
// search per key, a body of repeated keys (`"k":1,"k":null,...`, max_body_bytes of them) cost
// seconds at max_metadata_keys 4096 and ~1 s at the default 64. Sized once for the parser's
// max_metadata_keys (the limit read_metadata applies is never larger); a generation per slot,
// so each request starts empty without clearing. Allocates only in the constructor.
class TraceKeyIndex {
 public:
  explicit TraceKeyIndex(std::size_t max_keys) : dead_(max_keys) {
    std::size_t n = 16;
    while (n < 2 * max_keys) n <<= 1;
    slots_.resize(n);
  }

  void begin() noexcept {
    if (++generation_ == 0) {  // wrapped: every slot's stamp could match again
      std::fill(slots_.begin(), slots_.end(), Slot{});
      generation_ = 1;
    }
    any_dead_ = false;
  }

  // Where key is among metadata[0, count) (npos: not there, and `slot` is where it goes).
  [[nodiscard]] std::size_t find(const MetadataEntry* metadata, std::string_view key, std::size_t& slot) const noexcept {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = std::hash<std::string_view>{}(key) & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.generation != generation_) {
        slot = i;
        return npos;
      }
      if (metadata[s.index].key == key) return s.index;
    }
  }
  // After find() said npos: the key is stored at metadata[index] (index < max_keys).
  void insert(std::size_t slot, std::size_t index) noexcept {
    slots_[slot] = {generation_, static_cast<std::uint32_t>(index)};
    dead_[index] = 0;
  }
  // A key whose last value is null: its entry is left out at compact(), its slot kept (a later
  // value revives it in place), so no entry moves while the index points at them.
  void kill(std::size_t index) noexcept {
    dead_[index] = 1;
    any_dead_ = true;
  }
  void revive(std::size_t index) noexcept { dead_[index] = 0; }
  [[nodiscard]] bool dead(std::size_t index) const noexcept { return dead_[index] != 0; }

  // The live entries moved to the front, in their order; returns their number.
  std::size_t compact(MetadataEntry* metadata, std::size_t count) const noexcept {
    if (!any_dead_) return count;
    std::size_t live = 0;
    for (std::size_t i = 0; i < count; ++i)
      if (dead_[i] == 0) metadata[live++] = metadata[i];
    return live;
  }

  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

 private:
  struct Slot {
    std::uint32_t generation = 0;
    std::uint32_t index = 0;
  };
  std::vector<Slot> slots_;
  std::vector<std::uint8_t> dead_;
  std::uint32_t generation_ = 0;
  bool any_dead_ = false;
};

struct GatewayParser::Impl {
  GatewayConfig config;
  od::parser json;
  std::vector<char> scratch;
  od::document doc;
  std::vector<char> chunk_arena;  // unescaped strings of one stream chunk
  std::size_t chunk_arena_used = 0;
  std::vector<char> chunk_copy;  // a stream chunk that was not UTF-8, sanitized
  std::array<ToolCallDelta, k_max_tool_deltas> deltas;  // ResponseFields::deltas
  TraceKeyIndex trace_keys{config.max_metadata_keys};  // read_metadata's duplicate lookup
  ResponseFields chunk_fields{deltas.data()};  // one stream line's fields, cleared per line
  // One stream line's parse state, kept and reset per line: constructing it per line cost a
  // `rep stos` of its 88 bytes (~3% of a stream fed in 64-byte pieces, perf).
  Issues chunk_issues;
  BodyParse chunk_bp{nullptr, nullptr, nullptr, 0, false, Arena{chunk_arena, chunk_arena_used},
                     chunk_issues, k_chunk_side, 0, true};
  // The newline mask of a feed's first 64 bytes when feed_stream has computed it already
  // (valid for the stream_bytes call it makes next), so that no byte is searched twice.
  std::uint64_t first_mask = 0;
  std::uint64_t first_cr = 0;  // its '\r' bytes
  bool first_mask_known = false;
  // Set by check_end for the next open_object: the body was cut, repair it before reading.
  bool force_repair = false;

  // A limit applied while writing into rec: the smaller of this parser's and the record's (the
  // record's tables and buffers are sized by its own config; a parser configured larger must
  // never write past them, one configured smaller keeps its own bound).
  template <typename T>
  [[nodiscard]] T limit(const GatewayRecord& rec, T GatewayConfig::*field) const noexcept {
    return std::min(config.*field, rec.config_.*field);
  }

  explicit Impl(const GatewayConfig& c) : config(c), json(c.max_body_bytes + detail::k_repair_slack) {
    if (json.allocate(std::min(k_initial_parser_capacity, config.max_body_bytes)))
      throw std::bad_alloc();
    scratch.resize(k_initial_parser_capacity + k_scratch_extra);
  }

  // True when text is one complete JSON object and nothing else (an Anthropic tool_use
  // block's assembled `input`): parsed in scratch by the parser's own buffers, every value
  // read, so that a cut, a `partial_json` that is not JSON or two objects pasted together
  // are told apart. No allocation once scratch and the parser hold the text's size.
  bool complete_json_object(std::string_view text) noexcept {
    const std::size_t cap = text.size() + k_scratch_extra;
    if (text.size() > config.max_body_bytes || !ensure_size(scratch, cap)) return false;
    std::memcpy(scratch.data(), text.data(), text.size());
    std::memset(scratch.data() + text.size(), ' ', simdjson::SIMDJSON_PADDING);
    if (json.iterate(simdjson::padded_string_view(scratch.data(), text.size(), cap)).get(doc)) return false;
    od::object o;
    if (doc.get_object().get(o) || !complete_fields(o, 0)) return false;
    const char* rest = nullptr;
    return doc.current_location().get(rest) != simdjson::SUCCESS;  // nothing after the object
  }

  static bool complete_fields(od::object& o, int depth) noexcept {
    for (auto field : o) {
      std::string_view key;
      if (field.error() || field.value_unsafe().unescaped_key().get(key)) return false;
      if (!complete_value(field.value_unsafe().value(), depth + 1)) return false;
    }
    return true;
  }

  static bool complete_value(od::value v, int depth) noexcept {
    od::json_type t;
    if (depth > 256 || v.type().get(t)) return false;
    switch (t) {
      case od::json_type::object: {
        od::object o;
        return !v.get_object().get(o) && complete_fields(o, depth);
      }
      case od::json_type::array: {
        od::array a;
        if (v.get_array().get(a)) return false;
        for (auto element : a)
          if (element.error() || !complete_value(element.value_unsafe(), depth + 1)) return false;
        return true;
      }
      case od::json_type::string: {
        std::string_view str;
        return !v.get_string().get(str);
      }
      case od::json_type::number: {
        double d = 0;
        return !v.get_double().get(d);
      }
      case od::json_type::boolean: {
        bool b = false;
        return !v.get_bool().get(b);
      }
      case od::json_type::null: {
        bool is_null = false;
        return !v.is_null().get(is_null) && is_null;
      }
    }
    return false;
  }

  // Opens body as a JSON object in `obj`, repairing what can be repaired. false: nothing to
  // read (the issue is recorded). bp receives the buffers to map views from.
  // in_place: body already sits in a writable buffer with k_scratch_extra bytes after it (a
  // stream line assembled in the record), parsed there instead of copied into scratch.
  // max_body: the record's max_body_bytes (a stream line is bounded by max_stream_line_bytes).
  bool open_object(std::string_view body, std::vector<char>& sanitized_copy, BodyParse& bp,
                   od::object& obj, bool in_place = false,
                   std::size_t max_body = std::numeric_limits<std::size_t>::max()) noexcept {
    Issues& issues = bp.issues;
    const SideIssues& side = bp.side;
    if (body.size() > std::min(config.max_body_bytes, max_body)) {
      issues.add(ParseIssue::body_too_large, side.d_too_large);
      return false;
    }
    const std::size_t cap = body.size() + k_scratch_extra;
    char* buf;
    if (in_place) {
      buf = const_cast<char*>(body.data());
    } else {
      if (!ensure_size(scratch, cap)) {
        issues.add(side.not_json, "out of memory for the body copy");
        return false;
      }
      buf = scratch.data();
      std::memcpy(buf, body.data(), body.size());
    }
    std::memset(buf + body.size(), ' ', simdjson::SIMDJSON_PADDING);
    std::size_t len = body.size();
    bp.parse_base = buf;
    bp.parse_end = buf + len;
    bp.view_base = body.data();
    bp.view_len = body.size();

    auto iterate = [&]() noexcept {
      return json.iterate(simdjson::padded_string_view(buf, len, cap)).get(doc);
    };
    simdjson::error_code err = iterate();
    if (err == simdjson::UTF8_ERROR) {
      // Keep the request traced: replace what is not UTF-8 and read the rest. Views then point
      // into the record's sanitized copy (the caller's bytes are not valid text).
      if (!ensure_size(sanitized_copy, cap)) {
        issues.add(side.not_json, "out of memory for the body copy");
        return false;
      }
      buf = sanitized_copy.data();
      detail::sanitize_utf8(body, buf);
      std::memset(buf + body.size(), ' ', simdjson::SIMDJSON_PADDING);
      bp.parse_base = buf;
      bp.parse_end = buf + len;
      bp.view_base = buf;
      issues.add(side.invalid_utf8, side.d_utf8);
      err = iterate();
    }
    bool need_repair = err == simdjson::UNCLOSED_STRING || force_repair;
    force_repair = false;
    if (!err && !need_repair) {
      err = doc.get_object().get(obj);
      need_repair = err == simdjson::INCOMPLETE_ARRAY_OR_OBJECT;
    }
    if (need_repair) {
      const detail::Repair r = detail::repair_truncated_json(buf, len);
      if (r.kind == detail::RepairKind::truncated || r.kind == detail::RepairKind::trailing) {
        if (r.kind == detail::RepairKind::truncated) {
          issues.add(side.truncated, side.d_truncated);
          bp.repaired = true;
        } else {
          issues.add(side.not_json, side.d_trailing);
        }
        len = r.new_size;
        bp.parse_end = buf + len;
        bp.view_len = std::min(bp.view_len, r.kept);
        std::memset(buf + len, ' ', simdjson::SIMDJSON_PADDING);
        err = iterate();
        if (!err) err = doc.get_object().get(obj);
      }
    }
    if (err) {
      issues.add(side.not_json, err == simdjson::INCOMPLETE_ARRAY_OR_OBJECT ? side.d_truncated
                                                                           : side.d_not_object);
      return false;
    }
    return true;
  }

  // After the walk of an object open_object gave: true when the body must be read again with
  // force_repair (it was cut). simdjson's start_root_object only checks that the last
  // structural byte is '}', so a body cut right after a nested '}' opens, and the walk then
  // runs out of closers and stops quietly (the iterator abandoned, no error returned to the
  // walk), the fields after the cut point lost; nor does it look past the root object for a
  // second value. Both show in the iterator's state (free to read); only then are the bytes
  // scanned to tell a cut (read again, repaired) from bytes after the object (flagged, the
  // object kept) or damage inside it (flagged).
  bool check_end(BodyParse& bp) noexcept {
    const char* at = nullptr;
    if (bp.repaired || (doc.is_alive() && doc.current_location().get(at) == simdjson::OUT_OF_BOUNDS)) [[likely]]
      return false;
    return classify_end(bp);
  }

  // check_end's scan, out of line: the walk of a body that is whole never comes here.
  [[gnu::noinline, gnu::cold]] bool classify_end(BodyParse& bp) noexcept {
    const auto len = static_cast<std::size_t>(bp.parse_end - bp.parse_base);
    // The scan writes closers: into scratch, never into a stream line parsed in place.
    char* buf = scratch.data();
    if (bp.parse_base != buf) {
      if (!ensure_size(scratch, len + k_scratch_extra)) {
        bp.broken(simdjson::TAPE_ERROR);
        return false;
      }
      buf = scratch.data();
      std::memcpy(buf, bp.parse_base, len);
    }
    switch (detail::repair_truncated_json(buf, len).kind) {
      case detail::RepairKind::truncated:
        force_repair = true;
        return true;
      case detail::RepairKind::trailing:
        bp.issues.add(bp.side.not_json, bp.side.d_trailing);
        return false;
      case detail::RepairKind::none:
      case detail::RepairKind::too_deep:
        break;
    }
    bp.broken(simdjson::TAPE_ERROR);
    return false;
  }
};

// ---------------------------------------------------------------------------------------
GatewayParser::GatewayParser(const GatewayConfig& config) {
  if (const auto why = config.validate(); !why.empty())
    throw std::invalid_argument(std::string(why));
  impl_ = std::make_unique<Impl>(config);
}
GatewayParser::GatewayParser(GatewayParser&&) noexcept = default;
GatewayParser& GatewayParser::operator=(GatewayParser&&) noexcept = default;
GatewayParser::~GatewayParser() = default;

struct GatewayRecord::Detail {
  // A response attempt starts (parse_response, begin_stream): every response-side field and
  // view of the previous attempt goes (a retry or a fallback provider on the same request must
  // not report the first attempt's error, id, time to first token or provider, nor keep views
  // into its body or the arenas reused now); the request side stays. Issues stay: they are
  // the request's (gateway.h).
  static void start_response(GatewayRecord& rec) noexcept {
    LlmRequest& out = rec.request_;
    if (rec.provider_from_response_) {
      out.provider = rec.request_provider_;
      rec.provider_from_response_ = false;
    }
    out.response_id = {};
    out.response_model = {};
    out.finish_reason = {};
    out.finish_reasons = {};
    out.completion = {};
    out.input_tokens = -1;
    out.output_tokens = -1;
    out.cache_read_input_tokens = -1;
    out.cache_creation_input_tokens = -1;
    out.reasoning_output_tokens = -1;
    out.cost = k_unknown_double;
    out.first_token_unix_nano = 0;
    out.error = false;
    out.error_message = {};
    out.http_status = 0;
    rec.finish_reasons_text_.size = 0;
    rec.response_arena_used_ = 0;
    rec.outcome_arena_used_ = 0;
    rec.stream_active_ = false;
  }

  // A provider named by the response: kept until the next attempt starts, which gives the
  // request's back (its view may point into the request body; the response's does not last).
  static void set_response_provider(GatewayRecord& rec, std::string_view provider) noexcept {
    if (!rec.provider_from_response_) {
      rec.request_provider_ = rec.request_.provider;
      rec.provider_from_response_ = true;
    }
    rec.request_.provider = provider;
  }

  // The issues entry comes first, before the `trace` keys: the ingest keeps the first
  // ingest.limits.max_metadata_entries entries (64 at most, as many as max_metadata_keys by
  // default), so an entry after 64 keys would be dropped there; first, it always travels and a
  // key past the limit is dropped instead (counted as dropped metadata entries).
  // The view is current when non-null (parse_request and reset() empty it).
  static void refresh_issues(GatewayRecord& rec) noexcept {
    if (rec.config_.issues_metadata_key.empty() || rec.issues_ == 0) {
      rec.request_.metadata = {rec.metadata_.data() + 1, rec.user_metadata_count_};
    } else {
      auto& text = rec.issues_text_;
      text.size = 0;
      for (std::size_t i = 0; i < k_parse_issue_count; ++i) {
        if ((rec.issues_ & (1u << i)) == 0) continue;
        const std::string_view name = k_issue_names[i];
        if (text.size + name.size() + 1 > text.bytes.size()) break;
        if (text.size != 0) text.bytes[text.size++] = ',';
        std::memcpy(text.bytes.data() + text.size, name.data(), name.size());
        text.size += name.size();
      }
      rec.metadata_[0] = {rec.config_.issues_metadata_key, AttributeValue::string(text.view())};
      rec.request_.metadata = {rec.metadata_.data(), rec.user_metadata_count_ + 1};
    }
  }
};

GatewayParseResult GatewayParser::finish_call(GatewayRecord& rec, std::uint32_t issues,
                                              std::string_view detail) noexcept {
  // Counted once per record (the issues new to it): the requests that met each issue, the same
  // however a stream is cut into feeds or how many calls reported it.
  for (std::uint32_t bits = issues & ~rec.issues_; bits != 0; bits &= bits - 1)
    ++stats_.by_issue[static_cast<std::size_t>(__builtin_ctz(bits))];
  if ((rec.issues_ | issues) != rec.issues_ || rec.request_.metadata.data() == nullptr) {
    rec.issues_ |= issues;
    GatewayRecord::Detail::refresh_issues(rec);
  }
  // A value cut to a limit says so on the span (tracecast.truncated), as ingest's cuts do, not
  // only in the parse issues entry (which a gateway may switch off).
  if ((rec.issues_ & issue_bit(ParseIssue::completion_truncated)) != 0) rec.request_.submit_flags |= k_submit_value_cut;
  return {issues, detail};
}

// ---------------------------------------------------------------------------------------
namespace {

// Reads `"model": "..."` from bytes that are not a JSON object simdjson could open, so that a
// broken request still names its model. Takes the first occurrence with a plain string value.
std::string_view scan_model(std::string_view body) noexcept {
  constexpr std::string_view k_key = "\"model\"";
  std::size_t pos = 0;
  while ((pos = body.find(k_key, pos)) != std::string_view::npos) {
    std::size_t i = pos + k_key.size();
    while (i < body.size() && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r')) ++i;
    if (i < body.size() && body[i] == ':') {
      ++i;
      while (i < body.size() && (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r')) ++i;
      if (i < body.size() && body[i] == '"') {
        const std::size_t start = i + 1;
        std::size_t end = start;
        while (end < body.size() && end - start < 256 && body[end] != '"' && body[end] != '\\' &&
               static_cast<unsigned char>(body[end]) >= 0x20 && static_cast<unsigned char>(body[end]) < 0x80)
          ++end;
        if (end < body.size() && body[end] == '"' && end > start) return body.substr(start, end - start);
      }
    }
    pos += k_key.size();
  }
  return {};
}

void read_metadata(BodyParse& bp, od::value& v, MetadataEntry* metadata, std::size_t max_keys,
                   std::size_t& user_count, std::string_view reserved_key, TraceKeyIndex& index) noexcept;

}  // namespace

GatewayParseResult GatewayParser::parse_request(std::string_view body,
                                                std::string_view session_header,
                                                GatewayRecord& rec, GatewayApi api) noexcept {
  ++stats_.requests;
  body = skip_bom(body);
  LlmRequest& out = rec.request_;
  out.operation = "chat";
  out.provider = {};
  rec.provider_from_response_ = false;
  out.requested_model = {};
  out.user = {};
  out.session_id = {};
  out.prompt = {};
  out.temperature = k_unknown_double;
  out.top_p = k_unknown_double;
  out.max_tokens = -1;
  out.stream = false;
  rec.user_metadata_count_ = 0;
  impl_->trace_keys.begin();
  out.metadata = {};

  Issues issues;
  Arena arena{rec.request_arena_, rec.request_arena_used_};
  arena.prepare(std::min(body.size(), impl_->limit(rec, &GatewayConfig::max_body_bytes)));
  BodyParse bp{nullptr, nullptr, nullptr, 0, false, arena, issues, k_request_side};
  od::object obj;
  bool provider_given = false;
  // The other APIs' prompt parts, composed once the body is read (their order is free).
  std::string_view messages_raw;  // `messages` as sent
  std::string_view system_raw;    // Anthropic `system` / Responses `instructions`, as sent
  std::string_view input_raw;     // Responses / embeddings `input`, as sent
  std::string_view input_text;    // the same when it is a string, unescaped
  bool input_is_string = false;   // then input_text is the prompt text, even when empty
  bool anthropic_keys = false;    // `system`, `anthropic_version`
  bool embedding_keys = false;    // `encoding_format`, `dimensions`
  std::string_view metadata_user;  // Anthropic `metadata.user_id` (a top-level `user` wins)
  bool max_completion_seen = false;  // `max_completion_tokens` read: `max_tokens` does not override it
  auto raw_value = [&](od::value& v) noexcept -> std::string_view {
    const std::string_view tok = v.raw_json_token();
    if (tok.empty()) return {};
    std::string_view raw;
    if (tok[0] == '[') {
      od::array a;
      if (v.get_array().get(a) || a.raw_json().get(raw)) return {};
    } else if (tok[0] == '{') {
      od::object o;
      if (v.get_object().get(o) || o.raw_json().get(raw)) return {};
    } else {
      raw = tok;
    }
    return bp.fix_raw(bp.whole(trim_right(raw)));
  };
  if (impl_->open_object(body, rec.request_copy_, bp, obj, false, rec.config_.max_body_bytes)) {
    const auto err = for_each_field(obj, [&](Key key, od::value& v) noexcept {
      if (key == "model") {
        if (!bp.read_string(v, out.requested_model)) bp.wrong_type("request: model is not a string");
      } else if (key == "messages") {
        const std::string_view tok = v.raw_json_token();
        od::array a;
        std::string_view raw;
        if (!tok.empty() && tok[0] == '[') {
          if (!v.get_array().get(a) && !a.raw_json().get(raw)) {
            out.prompt = messages_raw = bp.fix_raw(bp.whole(trim_right(raw)));
          } else {
            // Broken inside the array: keep what there is of it.
            const std::string_view start = bp.map(tok);
            if (!start.empty())
              out.prompt = bp.fix_raw({start.data(),
                            static_cast<std::size_t>(bp.view_base + bp.view_len - start.data())});
            bp.broken(simdjson::TAPE_ERROR);
            return false;
          }
        } else if (!bp.read_string(v, out.prompt)) {
          bp.wrong_type("request: messages is not an array");
        }
      } else if (key == "prompt" && out.prompt.empty()) {
        // Legacy completions: a string prompt (or an array of them, kept as JSON text).
        const std::string_view tok = v.raw_json_token();
        od::array a;
        std::string_view raw;
        if (!tok.empty() && tok[0] == '[') {
          if (!v.get_array().get(a) && !a.raw_json().get(raw)) out.prompt = bp.fix_raw(bp.whole(trim_right(raw)));
        } else if (!bp.read_string(v, out.prompt)) {
          bp.wrong_type("request: prompt is not a string");
        }
        out.operation = "text_completion";
      } else if (key == "user") {
        if (!bp.read_string(v, out.user)) bp.wrong_type("request: user is not a string");
      } else if (key == "session_id") {
        if (!bp.read_string(v, out.session_id)) bp.wrong_type("request: session_id is not a string");
      } else if (key == "trace") {
        const std::string_view tok = v.raw_json_token();
        if (!tok.empty() && tok[0] == '{') {
          read_metadata(bp, v, rec.metadata_.data() + 1, impl_->limit(rec, &GatewayConfig::max_metadata_keys),
                        rec.user_metadata_count_, rec.config_.issues_metadata_key, impl_->trace_keys);
        } else if (!tok.empty() && tok[0] != 'n') {
          bp.wrong_type("request: trace is not an object");
        }
      } else if (key == "stream") {
        if (!bp.read_bool(v, out.stream)) bp.wrong_type("request: stream is not a boolean");
      } else if (key == "temperature") {
        if (!bp.read_double_in(v, out.temperature, 0, HUGE_VAL)) bp.wrong_type("request: temperature is not a number");
      } else if (key == "top_p") {
        if (!bp.read_double_in(v, out.top_p, 0, 1)) bp.wrong_type("request: top_p is not a number");
      } else if (key == "max_completion_tokens" || key == "max_output_tokens") {
        // OpenAI's current names (chat; Responses): win over max_tokens (deprecated for
        // chat, not the Responses name) in either order. A negative count is out of range
        // (flagged by read_count, not kept).
        std::int64_t n = -1;
        if (!bp.read_count(v, n)) {
          bp.wrong_type(key == "max_output_tokens" ? "request: max_output_tokens is not an integer"
                                                   : "request: max_completion_tokens is not an integer");
        } else if (n != -1) {
          out.max_tokens = n;
          max_completion_seen = true;
        }
      } else if (key == "max_tokens") {
        std::int64_t n = -1;
        if (!bp.read_count(v, n)) {
          bp.wrong_type("request: max_tokens is not an integer");
        } else if (n != -1 && !max_completion_seen) {
          out.max_tokens = n;
        }
      } else if (key == "system" || key == "instructions") {
        if (key == "system") anthropic_keys = true;
        const std::string_view tok = v.raw_json_token();
        if (!tok.empty() && tok[0] != 'n') system_raw = raw_value(v);
      } else if (key == "anthropic_version") {
        anthropic_keys = true;
      } else if (key == "input") {
        const std::string_view tok = v.raw_json_token();
        if (!tok.empty() && tok[0] == '"') {
          input_raw = bp.fix_raw(bp.whole(trim_right(tok)));
          input_is_string = true;
          if (!bp.read_string(v, input_text)) bp.wrong_type("request: input is not a string");
        } else if (!tok.empty() && tok[0] != 'n') {
          input_raw = raw_value(v);
        }
      } else if (key == "encoding_format" || key == "dimensions") {
        embedding_keys = true;
      } else if (key == "metadata") {
        // Anthropic names the end user in `metadata.user_id` (it has no top-level `user`).
        const std::string_view tok = v.raw_json_token();
        od::object m;
        if (!tok.empty() && tok[0] == '{' && !v.get_object().get(m)) {
          const auto m_err = for_each_field(m, [&](Key mkey, od::value& mv) noexcept {
            if (!(mkey == "user_id")) return true;
            if (!bp.read_string(mv, metadata_user)) bp.wrong_type("request: metadata.user_id is not a string");
            return false;
          });
          if (m_err) {
            bp.broken(m_err);
            return false;
          }
        }
      } else if (key == "provider") {
        // OpenRouter's `provider` is a routing preferences object; a plain string names it.
        const std::string_view tok = v.raw_json_token();
        if (!tok.empty() && tok[0] == '"') provider_given = bp.read_string(v, out.provider);
      }
      return true;
    });
    if (err) bp.broken(err);
    // trace keys whose last value was null left out (no entry moved before: the index points at them)
    rec.user_metadata_count_ = impl_->trace_keys.compact(rec.metadata_.data() + 1, rec.user_metadata_count_);
    if (impl_->check_end(bp)) [[unlikely]] {  // cut: read again, repaired (once: a repaired body passes)
      --stats_.requests;
      return parse_request(body, session_header, rec, api);
    }
    stats_.metadata_nulls_dropped += bp.nulls_dropped;
  } else if ((issues.bits & issue_bit(ParseIssue::body_too_large)) == 0) {
    out.requested_model = scan_model(body);
  }
  if (api == GatewayApi::detect) {
    if (!messages_raw.empty()) {
      api = anthropic_keys ? GatewayApi::anthropic_messages : GatewayApi::chat_completions;
    } else if (!input_raw.empty()) {
      api = embedding_keys || out.requested_model.find("embed") != std::string_view::npos ? GatewayApi::embeddings
                                                                                        : GatewayApi::responses;
    } else if (anthropic_keys) {  // a body cut before its `messages` still keeps its `system`
      api = GatewayApi::anthropic_messages;
    } else {
      api = GatewayApi::chat_completions;
    }
  }
  rec.api_ = api;
  if (api == GatewayApi::embeddings) {
    out.operation = "embeddings";
    out.prompt = input_is_string || input_raw.empty() ? input_text : input_raw;
  } else if (api == GatewayApi::responses || api == GatewayApi::anthropic_messages) {
    // The conversation as one JSON array, the system text first (OpenAI's message shape).
    const std::string_view conversation = !messages_raw.empty() ? messages_raw : input_raw;
    if (system_raw.empty()) {
      // A string input is the prompt's text: "" is an empty prompt (left out), not `""`.
      if (messages_raw.empty() && input_is_string) out.prompt = input_text;
      else if (!conversation.empty()) out.prompt = conversation;
    } else {
      constexpr std::string_view k_head = R"([{"role":"system","content":)";
      constexpr std::string_view k_user = R"({"role":"user","content":)";
      const bool list = !conversation.empty() && conversation.front() == '[';
      std::string_view rest = list ? conversation.substr(1) : conversation;  // after '['
      while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\n' || rest.front() == '\r' || rest.front() == '\t'))
        rest.remove_prefix(1);
      const bool more = !rest.empty() && rest.front() != ']';
      const std::size_t need = k_head.size() + system_raw.size() + 2 + k_user.size() + conversation.size() + 2;
      if (need <= arena.room()) {
        char* const start = arena.cursor();
        char* p = start;
        auto put = [&p](std::string_view piece) noexcept {
          std::memcpy(p, piece.data(), piece.size());
          p += piece.size();
        };
        put(k_head);
        put(system_raw);
        put("}");
        if (list && more) {
          put(",");
          put(rest);  // the items and the closing ']'
        } else if (!list && !conversation.empty() && !(messages_raw.empty() && input_is_string && input_text.empty())) {
          // (an empty string input is no user message: the system message alone)
          put(",");
          put(k_user);
          put(conversation);
          put("}]");
        } else {
          put("]");
        }
        out.prompt = arena.commit(static_cast<std::size_t>(p - start));
      } else {
        out.prompt = conversation;  // no room (cannot happen: the arena holds 1.5x the body)
      }
    }
  }
  if (out.user.empty()) out.user = metadata_user;
  if (!session_header.empty()) {
    out.session_id = session_header;
    // Kept as given (submit makes every string valid UTF-8), flagged so that the span says so.
    if (!simdjson::validate_utf8(session_header.data(), session_header.size()))
      issues.add(ParseIssue::request_invalid_utf8, "request: the x-session-id header is not UTF-8 (made valid at submit)");
  }
  if (!provider_given || out.provider.empty()) {
    const std::size_t slash = out.requested_model.find('/');
    out.provider = slash == std::string_view::npos || slash == 0
                       ? std::string_view{}
                       : out.requested_model.substr(0, slash);
  }
  rec.request_.metadata = {};  // refreshed below
  return finish_call(rec, issues.bits, issues.detail);
}

namespace {

// A `trace` key given twice: RFC 8259 says names SHOULD be unique and leaves the reading to
// the parser; most (JavaScript's JSON.parse, Python's json) keep the last value, and so does
// every other field of a body here (the last assignment stands). Flagged.
void duplicate(BodyParse& bp) noexcept {
  bp.issues.add(ParseIssue::duplicate_key, "request: a trace key given twice (the last value kept)");
}

void read_metadata(BodyParse& bp, od::value& v, MetadataEntry* metadata, std::size_t max_keys,
                   std::size_t& user_count, std::string_view reserved_key, TraceKeyIndex& index) noexcept {
  od::object trace;
  if (v.get_object().get(trace)) {
    bp.wrong_type("request: trace is not an object");
    return;
  }
  const auto err = for_each_field(trace, [&](od::field& field) noexcept {
    std::string_view key = raw_key(field.key(), bp.parse_end);
    if (std::memchr(key.data(), '\\', key.size()) != nullptr) {
      key = bp.unescape(key);
    } else {
      key = bp.map(key);
    }
    // The parser's own issues key is reserved: a client's would shadow it (the encoder keeps
    // the first of two equal keys), so it is dropped, and counted.
    if (!reserved_key.empty() && key == reserved_key) {
      bp.wrong_type("request: trace uses the reserved issues metadata key (dropped)");
      return true;
    }
    std::size_t slot = 0;
    const std::size_t at = index.find(metadata, key, slot);
    if (at == TraceKeyIndex::npos && user_count >= max_keys) {
      // A new key past the limit: dropped. Later values of keys already held still count (the
      // last value wins), so the rest of the object is still read.
      bp.issues.add(ParseIssue::too_many_metadata_keys,
                    "request: trace has more keys than max_metadata_keys (the others dropped)");
      return true;
    }
    od::value& value = field.value();
    od::json_type type;
    if (value.type().get(type)) {
      bp.broken(simdjson::TAPE_ERROR);
      return false;
    }
    AttributeValue attr;
    bool ok = true;
    switch (type) {
      case od::json_type::string: {
        std::string_view s;
        ok = bp.read_string(value, s);
        attr = AttributeValue::string(s);
        break;
      }
      case od::json_type::boolean: {
        bool b = false;
        ok = !value.get_bool().get(b);
        attr = AttributeValue::boolean(b);
        break;
      }
      case od::json_type::number: {
        od::number_type nt;
        if (value.get_number_type().get(nt)) {
          ok = false;
        } else if (std::int64_t i = 0; nt == od::number_type::signed_integer && !value.get_int64().get(i)) {
          attr = AttributeValue::int64(i);
        } else if (std::uint64_t u = 0; nt == od::number_type::unsigned_integer && !value.get_uint64().get(u)) {
          // Above INT64_MAX: OTLP has no unsigned integer, so a double, converted from the
          // uint64 (the value get_double() would give, rounded to nearest) instead of parsed
          // again: 20 digits send simdjson's float parser down its slow decimal path.
          attr = AttributeValue::float64(static_cast<double>(u));
        } else {
          // Not an integer, or one beyond 64 bits (simdjson calls -9223372036854775809 signed
          // and 18446744073709551616 unsigned, then cannot read them as such): a double. Out
          // of the double range (1e999): this key alone is left out, counted.
          const std::string_view tok = value.raw_json_token();
          double d = 0;
          if (value.get_double().get(d)) {
            bp.wrong_type("request: a trace number is out of the float64 range (key left out)");
            return true;
          }
          attr = AttributeValue::float64(json_number_exact(tok, d));
        }
        break;
      }
      case od::json_type::null: {
        // Left out: an AnyValue with no value makes strict receivers refuse the whole batch.
        ++bp.nulls_dropped;
        if (at != TraceKeyIndex::npos) {
          // The last value wins, and it is none: the earlier entry goes too (at compact()).
          duplicate(bp);
          index.kill(at);
        } else {
          // Held as removed, so that a later value of the key is a duplicate, in this place.
          metadata[user_count] = {key, AttributeValue{}};
          index.insert(slot, user_count);
          index.kill(user_count);
          ++user_count;
        }
        return true;
      }
      case od::json_type::object:
      case od::json_type::array: {
        std::string_view s;
        ok = bp.read_compact(value, type, s);
        attr = AttributeValue::string(s);
        break;
      }
    }
    if (!ok) {
      bp.broken(simdjson::TAPE_ERROR);
      return false;
    }
    if (at != TraceKeyIndex::npos) {
      duplicate(bp);
      metadata[at].value = attr;  // the last value wins, in the first one's place (one slot)
      index.revive(at);
      return true;
    }
    metadata[user_count] = {key, attr};
    index.insert(slot, user_count);
    ++user_count;
    return true;
  });
  if (err) bp.broken(err);
}

}  // namespace

// ---------------------------------------------------------------------------------------
namespace {

// Reads `error`: {"message": ...} or a string. Returns true when it named an error.
bool read_error(BodyParse& bp, od::value& v, std::string_view& message) noexcept {
  const std::string_view tok = v.raw_json_token();
  if (tok.empty() || tok[0] == 'n') return false;
  if (tok[0] == '"') return bp.read_string(v, message);
  od::object err;
  if (v.get_object().get(err)) return true;
  // Damage inside the error object is not recorded here: it still names an error.
  (void)for_each_field(err, [&](Key key, od::value& m) noexcept {
    if (key != "message") return true;
    if (!bp.read_string(m, message)) bp.wrong_type("error.message is not a string");
    return false;
  });
  return true;
}




// acc += piece: a view while there is one piece, else a concatenation in the arena (which
// holds 1.5x the body, more than every text of it together).
void append_piece(BodyParse& bp, std::string_view& acc, std::string_view piece) noexcept {
  if (piece.empty()) return;
  if (acc.empty()) {
    acc = piece;
    return;
  }
  Arena& a = bp.arena;
  const bool at_end = acc.data() + acc.size() == a.cursor() && acc.data() >= a.buf.data() &&
                      acc.data() < a.buf.data() + a.buf.size();
  if (!at_end) {
    if (acc.size() > a.room()) return;
    std::memcpy(a.cursor(), acc.data(), acc.size());
    acc = a.commit(acc.size());
  }
  const std::string_view more = a.copy(piece);
  acc = {acc.data(), acc.size() + more.size()};
}

// A chat message's (or delta's) content given as parts (`[{"type":"text","text":..},..]`;
// Mistral's Magistral sends `{"type":"thinking","thinking":[..]}` parts before them): the text
// of its `text` parts, joined; thinking and other parts are left out, as Anthropic thinking
// blocks are. false: broken.
bool read_content_parts(BodyParse& bp, od::value& v, std::string_view& content) noexcept {
  od::array parts;
  if (v.get_array().get(parts)) return false;
  for (auto element : parts) {
    od::value part;
    if (element.get(part)) return false;
    od::object obj;
    if (part.get_object().get(obj)) continue;  // not a part object: nothing to take
    bool is_text = false;
    std::string_view text;
    const auto err = for_each_field(obj, [&](Key key, od::value& pv) noexcept {
      if (key == "type") {
        std::string_view type;
        is_text = bp.read_string(pv, type) && type == "text";
      } else if (key == "text") {
        if (!bp.read_string(pv, text)) text = {};
      }
      return true;
    });
    if (err) return false;
    if (is_text) append_piece(bp, content, text);
  }
  return true;
}

// Reads one element of a streamed `tool_calls` delta.
void read_tool_call_delta(BodyParse& bp, od::value& v, ToolCallDelta& d) noexcept {
  od::object call;
  if (v.get_object().get(call)) {
    bp.wrong_type("response: a tool_calls delta is not an object");
    return;
  }
  const auto err = for_each_field(call, [&](Key key, od::value& cv) noexcept {
    if (key == "index") {
      // Not a non-negative integer (-1, 1.0, 1e20, null): the delta is merged nowhere.
      if (!bp.read_int(cv, d.index) || d.index < 0) {
        d.index = k_bad_tool_index;
        bp.wrong_type("response: tool_calls[].index is not a non-negative integer");
      }
    } else if (key == "id") {
      if (!bp.read_string(cv, d.id)) bp.wrong_type("response: tool_calls[].id is not a string");
    } else if (key == "type") {
      if (!bp.read_string(cv, d.type)) bp.wrong_type("response: tool_calls[].type is not a string");
    } else if (key == "function") {
      od::object fn;
      if (cv.get_object().get(fn)) {
        bp.wrong_type("response: tool_calls[].function is not an object");
        return true;
      }
      const auto fn_err = for_each_field(fn, [&](Key fkey, od::value& fv) noexcept {
        if (fkey == "name") {
          if (!bp.read_string(fv, d.name)) bp.wrong_type("response: function.name is not a string");
        } else if (fkey == "arguments") {
          if (!bp.read_string(fv, d.arguments)) bp.wrong_type("response: function.arguments is not a string");
        }
        return true;
      });
      if (fn_err) {
        bp.broken(fn_err);
        return false;
      }
    }
    return true;
  });
  if (err) bp.broken(err);
}

std::string_view raw_container(const char* open, const char* end) noexcept;

// One tool call's members, as the raw JSON text of their values (empty: absent), for writing
// it in the one canonical form a body's and a stream's calls take (GatewayParser::tool_calls_json
// writes a stream's): the members a stream's call has, in its order, the rest (an `index`, a
// Responses item's `id` and `status`, Gemini's `extra_content`, …) left out.
struct ToolCallText {
  enum class Kind : std::uint8_t { chat, tool_use, function_call };
  Kind kind = Kind::chat;
  std::string_view id;    // chat / tool_use `id`, function_call `call_id`
  std::string_view type;  // chat only
  std::string_view name;
  std::string_view args;  // chat / function_call `arguments`, tool_use `input`
};

// The raw JSON text of v (a whole object or array; a scalar's token), not consuming it.
[[nodiscard]] std::string_view value_text(const BodyParse& bp, od::value& v) noexcept {
  const std::string_view tok = v.raw_json_token();
  if (tok.empty()) return {};
  if (tok[0] == '{' || tok[0] == '[') return raw_container(tok.data(), bp.parse_end);
  return trim_right(tok);
}

// Writes c in the canonical form at out (room bytes): chat
// {"id":..,"type":..,"function":{"name":..,"arguments":..}}, Anthropic
// {"type":"tool_use","id":..,"name":..,"input":..}, Responses
// {"type":"function_call","call_id":..,"name":..,"arguments":..}. A string member that is
// absent or not a string is ""; a chat type, "function"; an input, {}; arguments that are not a
// string are kept as their JSON value. false when it does not fit (n not set).
[[nodiscard]] bool write_tool_call(const ToolCallText& c, char* out, std::size_t room, std::size_t& n,
                                   std::size_t& bad) noexcept {
  std::size_t o = 0;
  bool ok = true;
  auto lit = [&](std::string_view t) noexcept {
    if (!ok || room - o < t.size()) {
      ok = false;
      return;
    }
    std::memcpy(out + o, t.data(), t.size());
    o += t.size();
  };
  auto value = [&](std::string_view raw, std::string_view fallback) noexcept {
    std::size_t w = 0;
    if (!ok) return;
    if (raw.empty() || raw[0] == 'n' || !detail::canonical_json(raw, out + o, room - o, w, bad)) {
      lit(fallback);  // absent, null, or no room (then the fallback fails too, or is what fits)
      return;
    }
    o += w;
  };
  auto str = [&](std::string_view raw, std::string_view fallback) noexcept {
    value(!raw.empty() && raw[0] == '"' ? raw : std::string_view{}, fallback);
  };
  switch (c.kind) {
    case ToolCallText::Kind::chat:
      lit("{\"id\":");
      str(c.id, "\"\"");
      lit(",\"type\":");
      str(c.type.size() > 2 ? c.type : std::string_view{}, "\"function\"");
      lit(",\"function\":{\"name\":");
      str(c.name, "\"\"");
      lit(",\"arguments\":");
      value(c.args, "\"\"");
      lit("}}");
      break;
    case ToolCallText::Kind::tool_use:
      lit("{\"type\":\"tool_use\",\"id\":");
      str(c.id, "\"\"");
      lit(",\"name\":");
      str(c.name, "\"\"");
      lit(",\"input\":");
      value(c.args, "{}");
      lit("}");
      break;
    case ToolCallText::Kind::function_call:
      lit("{\"type\":\"function_call\",\"call_id\":");
      str(c.id, "\"\"");
      lit(",\"name\":");
      str(c.name, "\"\"");
      lit(",\"arguments\":");
      value(c.args, "\"\"");
      lit("}");
      break;
  }
  if (ok) n = o;
  return ok;
}

// The tool calls a body's list gives (a chat message's tool_calls, Anthropic tool_use blocks,
// Responses function_call items), as streams keep them: the first k_gateway_max_tool_calls.
using ToolCallTexts = std::array<ToolCallText, k_gateway_max_tool_calls>;

// A chat message's tool_calls into calls[0, n) (only raw tokens are read: nothing is written to
// the arena). Calls that are not objects are left out; over: more calls than calls holds.
void read_chat_tool_calls(BodyParse& bp, od::array& list, ToolCallTexts& calls, std::size_t& n, bool& over) noexcept {
  for (auto element : list) {
    if (const auto e = element.error()) {
      bp.broken(e);
      return;
    }
    od::object call;
    if (element.value_unsafe().get_object().get(call)) continue;
    ToolCallText c;
    const auto err = for_each_field(call, [&](Key key, od::value& cv) noexcept {
      if (key == "id") {
        c.id = value_text(bp, cv);
      } else if (key == "type") {
        c.type = value_text(bp, cv);
      } else if (key == "function") {
        od::object fn;
        if (cv.get_object().get(fn)) return true;
        const auto fn_err = for_each_field(fn, [&](Key fkey, od::value& fv) noexcept {
          if (fkey == "name") c.name = value_text(bp, fv);
          else if (fkey == "arguments") c.args = value_text(bp, fv);
          return true;
        });
        return !fn_err;
      }
      return true;
    });
    if (err) {
      bp.broken(err);
      return;
    }
    if (n == calls.size()) over = true;
    else calls[n++] = c;
  }
}

// calls[0, n) in the canonical form (write_tool_call) as a JSON array in the arena (sized for
// it: Arena::prepare); a list over its room is cut after the last call that fits, flagged.
[[nodiscard]] std::string_view write_tool_calls(BodyParse& bp, const ToolCallTexts& calls, std::size_t n_calls) noexcept {
  char* const out = bp.arena.cursor();
  const std::size_t room = bp.arena.room();
  if (n_calls == 0 || room < 2) return {};
  std::size_t o = 0;
  std::size_t bad = 0;
  for (std::size_t i = 0; i < n_calls; ++i) {
    std::size_t n = 0;
    if (room - o < 2 || !write_tool_call(calls[i], out + o + 1, room - o - 2, n, bad)) {
      bp.issues.add(ParseIssue::completion_truncated, "response: tool calls over the room for their canonical form (cut)");
      break;
    }
    out[o] = o == 0 ? '[' : ',';
    o += 1 + n;
  }
  if (o == 0) return {};
  out[o++] = ']';
  if (bad != 0) bp.bad_escape();
  return bp.arena.commit(o);
}

// One element of `choices` (position: its place in the array, the index when it names none):
// finish_reason by index, and for choice 0 the message (or delta) content and tool calls.
void read_choice(BodyParse& bp, od::value& choice_value, std::size_t position, ResponseFields& f) noexcept {
  od::object choice;
  if (choice_value.get_object().get(choice)) {
    bp.wrong_type("response: a choice is not an object");
    return;
  }
  // Fields may come in any order (index after delta): collect, then commit by index.
  std::int64_t index = -1;
  bool saw_index = false;
  bool bad_index = false;
  std::string_view reason;
  std::string_view content;
  std::string_view refusal;  // the model's refusal (message.refusal / delta.refusal)
  std::string_view tool_calls;
  bool saw_tool_calls = false;
  ToolCallTexts calls_text;  // a message's tool_calls, written once the choice is known to be 0
  std::size_t n_calls = 0;
  bool calls_over = false;
  // Tool-call pieces go straight into f (no copy per chunk) and are dropped again below when
  // the choice is not choice 0.
  const std::size_t deltas_before = f.n_deltas;
  bool overflow = false;
  const auto err = for_each_field(choice, [&](Key key, od::value& v) noexcept {
    if (key == "index") {
      saw_index = true;
      if (!bp.read_int(v, index) || index < 0) {
        bad_index = true;
        bp.wrong_type("response: choices[].index is not a non-negative integer");
      }
    } else if (key == "finish_reason") {
      if (!bp.read_string(v, reason)) bp.wrong_type("response: finish_reason is not a string");
    } else if (key == "message" || key == "delta") {
      od::object message;
      if (v.get_object().get(message)) {
        bp.wrong_type("response: choices[].message is not an object");
        return true;
      }
      const auto message_err = for_each_field(message, [&](Key mkey, od::value& mv) noexcept {
        if (mkey == "content") {
          const std::string_view tok = mv.raw_json_token();
          if (!tok.empty() && tok[0] == '[') {
            if (!read_content_parts(bp, mv, content)) {
              bp.broken(simdjson::TAPE_ERROR);
              return false;
            }
          } else if (!bp.read_string(mv, content)) {
            bp.wrong_type("response: message.content is not a string");
          }
        } else if (mkey == "refusal") {
          if (!bp.read_string(mv, refusal)) bp.wrong_type("response: message.refusal is not a string");
        } else if (mkey == "tool_calls") {
          const std::string_view tok = mv.raw_json_token();
          od::array calls;
          if (tok.empty() || tok[0] != '[') return true;
          saw_tool_calls = true;
          if (mv.get_array().get(calls)) return true;
          if (key == "message") {
            n_calls = 0;
            calls_over = false;
            read_chat_tool_calls(bp, calls, calls_text, n_calls, calls_over);
            return true;
          }
          // A stream's delta: pieces of calls, assembled by index across chunks.
          for (auto element : calls) {
            if (const auto element_err = element.error()) {
              bp.broken(element_err);
              return false;
            }
            if (f.n_deltas == k_max_tool_deltas) {
              overflow = true;
              continue;
            }
            f.deltas[f.n_deltas] = ToolCallDelta{};
            read_tool_call_delta(bp, element.value_unsafe(), f.deltas[f.n_deltas++]);
          }
        }
        return true;
      });
      if (message_err) {
        bp.broken(message_err);
        return false;
      }
    } else if (key == "text") {
      if (!bp.read_string(v, content)) bp.wrong_type("response: choices[].text is not a string");
    }
    return true;
  });
  if (err) bp.broken(err);
  // A choice whose index is not a non-negative integer (-1, 1.0, 1e20, null) is merged into
  // no choice, in a body as in a stream. With no index at all, a body's array order is its
  // index; a stream chunk's is not (a chunk may carry any one choice, so its place in the
  // chunk says nothing): there it is choice 0, wherever it stands, as a single-choice stream
  // that leaves the index out means.
  if (!saw_index && bp.stream_event) index = 0;
  if (bad_index) {
    f.n_deltas = deltas_before;
    return;
  }
  // A refusal is what the model answered: the completion when there is no content (a stream's
  // refusal deltas are appended as text deltas are).
  if (content.empty()) content = refusal;
  const std::size_t at = index >= 0 ? static_cast<std::size_t>(index) : position;
  if (!content.empty() || saw_tool_calls) f.any_output = true;
  // Every choice seen counts, with a reason or not: finish_reasons has one entry per choice.
  if (at < f.reasons.size()) f.choices = std::max(f.choices, at + 1);
  if (!reason.empty()) {
    if (f.first_reason.empty()) f.first_reason = reason;
    if (at < f.reasons.size()) f.reasons[at] = reason;
  }
  if (at != 0) {
    f.n_deltas = deltas_before;
    return;
  }
  if (n_calls != 0) tool_calls = write_tool_calls(bp, calls_text, n_calls);
  if (calls_over) bp.issues.add(ParseIssue::completion_truncated, "response: more than 32 tool calls (the rest left out)");
  f.content = content;
  f.tool_calls = tool_calls;
  f.saw_tool_calls = saw_tool_calls;
  f.deltas_overflow = f.deltas_overflow || overflow;
}

// Reads an OpenAI-style `usage` object: prompt/completion (or input/output) tokens, cost, and
// the token details (prompt_tokens_details.cached_tokens, completion_tokens_details.reasoning_tokens).
void read_usage(BodyParse& bp, od::value& v, ResponseFields& f) noexcept {
  od::object usage;
  if (v.get_object().get(usage)) {
    bool is_null = false;
    if (v.is_null().get(is_null) || !is_null) bp.wrong_type("response: usage is not an object");
    return;
  }
  // A details object: reads the one integer member named by `want` into out.
  auto details = [&](od::value& dv, auto&& visit) noexcept {
    od::object d;
    if (dv.get_object().get(d)) {
      bool is_null = false;
      if (dv.is_null().get(is_null) || !is_null) bp.wrong_type("response: usage details are not an object");
      return;
    }
    const auto derr = for_each_field(d, visit);
    if (derr) bp.broken(derr);
  };
  const auto err = for_each_field(usage, [&](Key key, od::value& u) noexcept {
    if (key == "prompt_tokens" || key == "input_tokens") {
      if (!bp.read_count(u, f.input_tokens)) bp.wrong_type("response: usage.prompt_tokens is not an integer");
    } else if (key == "completion_tokens" || key == "output_tokens") {
      if (!bp.read_count(u, f.output_tokens)) bp.wrong_type("response: usage.completion_tokens is not an integer");
    } else if (key == "cost") {
      if (!bp.read_double_in(u, f.cost, 0, HUGE_VAL)) bp.wrong_type("response: usage.cost is not a number");
    } else if (key == "cache_read_input_tokens") {
      if (!bp.read_count(u, f.cache_read_tokens)) bp.wrong_type("response: usage.cache_read_input_tokens is not an integer");
    } else if (key == "cache_creation_input_tokens") {
      if (!bp.read_count(u, f.cache_creation_tokens))
        bp.wrong_type("response: usage.cache_creation_input_tokens is not an integer");
    } else if (key == "prompt_tokens_details" || key == "input_tokens_details") {
      details(u, [&](Key dkey, od::value& dv) noexcept {
        if (dkey == "cached_tokens" && !bp.read_count(dv, f.cache_read_tokens))
          bp.wrong_type("response: usage cached_tokens is not an integer");
        return true;
      });
    } else if (key == "completion_tokens_details" || key == "output_tokens_details") {
      details(u, [&](Key dkey, od::value& dv) noexcept {
        if (dkey == "reasoning_tokens" && !bp.read_count(dv, f.reasoning_tokens))
          bp.wrong_type("response: usage reasoning_tokens is not an integer");
        return true;
      });
    }
    return true;
  });
  if (err) bp.broken(err);
}

// An object's members as the block fields of f: Anthropic content_block / delta, Responses
// output item (type, id or call_id, name, text, input or arguments, partial_json).
void read_block(BodyParse& bp, od::value& v, ResponseFields& f) noexcept {
  od::object block;
  if (v.get_object().get(block)) return;  // a string delta is read by the caller
  // By the key's first byte, as in read_response_object (a delta's `text` is one compare away).
  const auto err = for_each_field(block, [&](Key key, od::value& bv) noexcept {
    switch (key.raw[0]) {
      case 't':
        if (key == "type") {
          (void)bp.read_string(bv, f.block_type);
        } else if (key == "text") {
          if (!bp.read_string(bv, f.block_text)) bp.wrong_type("response: text is not a string");
        }
        break;
      case 'i':
        if (key == "id") {
          if (f.block_id.empty()) (void)bp.read_string(bv, f.block_id);
        } else if (key == "input") {
          std::string_view raw = bv.raw_json_token();
          od::object o;
          if (!raw.empty() && raw[0] == '{' && !bv.get_object().get(o) && !o.raw_json().get(raw))
            f.block_input = bp.fix_raw(bp.whole(trim_right(raw)));
        }
        break;
      case 'c':
        if (key == "call_id") (void)bp.read_string(bv, f.block_id);  // Responses: the id a tool result refers to
        break;
      case 'n':
        if (key == "name") (void)bp.read_string(bv, f.block_name);
        break;
      case 'p':
        if (key == "partial_json" && !bp.read_string(bv, f.delta_json))
          bp.wrong_type("response: partial_json is not a string");
        break;
      case 'a':
        if (key == "arguments") (void)bp.read_string(bv, f.block_input);
        break;
      case 's':
        if (key == "stop_reason") {
          std::string_view reason;
          if (bp.read_string(bv, reason) && !reason.empty()) {
            f.reasons[0] = reason;
            f.choices = std::max<std::size_t>(f.choices, 1);
            if (f.first_reason.empty()) f.first_reason = reason;
          }
        }
        break;
      default:
        break;
    }
    return true;
  });
  if (err) bp.broken(err);
}

// The text of the object or array opening at `open`, to its matching closer (stage 1 checked
// the structure; strings are skipped with their escapes); empty when it does not close before end.
std::string_view raw_container(const char* open, const char* end) noexcept {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char* p = open; p < end; ++p) {
    const char c = *p;
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') ++depth;
    else if ((c == ']' || c == '}') && --depth == 0) return {open, static_cast<std::size_t>(p + 1 - open)};
  }
  return {};
}

// A body's list of blocks (Anthropic `content`) or items (Responses `output`): the text of
// text blocks (or of a message item's output_text parts) in order, and, when there is no text,
// in list_raw the tool_use / function_call blocks as a JSON array in the canonical form (the
// completion then). Thinking blocks and reasoning items are not read (README says why).
void read_blocks(BodyParse& bp, od::value& v, ResponseFields& f, std::string_view& list_raw) noexcept {
  od::array blocks;
  const std::string_view tok = v.raw_json_token();
  if (tok.empty() || tok[0] != '[') {
    if (!tok.empty() && tok[0] == '"') {  // Anthropic allows a string content in requests only
      std::string_view text;
      if (bp.read_string(v, text)) append_piece(bp, f.content, text);
    }
    return;
  }
  if (v.get_array().get(blocks)) return;
  // The tool_use / function_call blocks, for a completion made of tool calls (the other
  // blocks, thinking and reasoning included, are not part of it).
  ToolCallTexts tools;  // their members' JSON text
  std::size_t n_tools = 0;
  // A Responses message's refusal parts: the completion when there is no text (as a chat
  // message's `refusal`).
  std::string_view refusal;
  for (auto element : blocks) {
    if (const auto e = element.error()) {
      bp.broken(e);
      return;
    }
    od::object block;
    if (element.value_unsafe().get_object().get(block)) continue;
    std::string_view type;
    std::string_view text;
    ToolCallText call;  // a tool_use / function_call block's members
    std::string_view call_id;
    const auto err = for_each_field(block, [&](Key key, od::value& bv) noexcept {
      if (key == "type") {
        (void)bp.read_string(bv, type);
      } else if (key == "id") {
        call.id = value_text(bp, bv);
      } else if (key == "call_id") {
        call_id = value_text(bp, bv);
      } else if (key == "name") {
        call.name = value_text(bp, bv);
      } else if (key == "input" || key == "arguments") {
        call.args = value_text(bp, bv);
      } else if (key == "text") {
        (void)bp.read_string(bv, text);
      } else if (key == "content") {
        // A Responses message item: its output_text parts.
        od::array parts;
        if (bv.get_array().get(parts)) return true;
        for (auto part : parts) {
          if (part.error()) return false;
          od::object po;
          if (part.value_unsafe().get_object().get(po)) continue;
          std::string_view ptype, ptext, prefusal;
          (void)for_each_field(po, [&](Key pk, od::value& pv) noexcept {
            if (pk == "type") (void)bp.read_string(pv, ptype);
            else if (pk == "text") (void)bp.read_string(pv, ptext);
            else if (pk == "refusal") (void)bp.read_string(pv, prefusal);
            return true;
          });
          if (ptype == "output_text") append_piece(bp, f.content, ptext);
          else if (ptype == "refusal") append_piece(bp, refusal, prefusal);
        }
      }
      return true;
    });
    if (err) {
      bp.broken(err);
      return;
    }
    if (type == "text") {
      append_piece(bp, f.content, text);
    } else if (type == "tool_use" || type == "function_call") {
      f.tools_in_output = true;
      if (n_tools == tools.size())
        bp.issues.add(ParseIssue::completion_truncated, "response: more than 32 tool calls (the rest left out)");
      else {
        if (type == "function_call") {
          call.kind = ToolCallText::Kind::function_call;
          call.id = call_id;  // the id a tool result refers to (the item's own id left out)
        } else {
          call.kind = ToolCallText::Kind::tool_use;
        }
        tools[n_tools++] = call;
      }
    }
  }
  if (f.content.empty()) f.content = refusal;
  // The calls are the completion only when there is no text: written only then, each in the
  // canonical form (write_tool_call; its members' text taken from the block's tokens, never by
  // rewinding the on-demand object: asking raw_json() of one read through a null parser pointer
  // on a hostile body, found by fuzz_gateway in a clean-clone CI run), joined as a JSON array.
  if (n_tools == 0 || !f.content.empty()) return;
  list_raw = write_tool_calls(bp, tools, n_tools);
}

// What a stream event's type says is read of it (types are sent first; before one is known,
// or for a type not listed, every key is read).
enum class EventReads : std::uint8_t {
  all,
  nothing,    // nothing stream_event uses: ping, *_stop, *.done, content_part.* (keys skipped)
  no_output,  // lifecycle events: the response or message but not its output list (repeated
              // whole by response.completed, never appended to a stream's completion)
  block,      // a block's or item's start or delta: index, delta, content_block / item only
};

[[nodiscard]] Event classify_event(std::string_view type) noexcept {
  if (type.empty()) return Event::none;
  if (type.size() < 4) return Event::other;
  switch (type[0]) {
    case 'p':
      return type == "ping" ? Event::nothing : Event::other;
    case 'c':
      if (type == "content_block_delta") return Event::block_delta;
      if (type == "content_block_start") return Event::block_start;
      return type == "content_block_stop" ? Event::nothing : Event::other;
    case 'm':
      if (type == "message_start") return Event::message_start;
      return type == "message_stop" ? Event::message_stop : Event::other;
    case 'r':
      break;
    default:
      return Event::other;
  }
  // A refusal's deltas are its text, as a chat stream's refusal deltas are (read_choice).
  if (type == "response.output_text.delta" || type == "response.refusal.delta") return Event::text_delta;
  if (type == "response.function_call_arguments.delta") return Event::args_delta;
  if (type == "response.output_item.added") return Event::item_added;
  if (type == "response.output_text.done" || type == "response.refusal.done" || type == "response.content_part.added" ||
      type == "response.content_part.done" || type == "response.output_item.done" ||
      type == "response.function_call_arguments.done")
    return Event::nothing;
  if (type == "response.created" || type == "response.in_progress") return Event::lifecycle;
  if (type == "response.completed" || type == "response.incomplete" || type == "response.failed")
    return Event::final;
  return Event::other;
}

[[nodiscard]] EventReads event_reads(Event e) noexcept {
  switch (e) {
    case Event::nothing:
      return EventReads::nothing;
    case Event::block_start:
    case Event::block_delta:
    case Event::item_added:
    case Event::text_delta:
    case Event::args_delta:
      return EventReads::block;
    case Event::message_start:
    case Event::lifecycle:
    case Event::final:
      return EventReads::no_output;
    case Event::none:
    case Event::other:
    case Event::message_stop:
      break;
  }
  return EventReads::all;
}

void read_response_object(BodyParse& bp, od::object& obj, ResponseFields& f, bool nested = false,
                          EventReads reads = EventReads::all) noexcept {
  auto read_delta = [&](od::value& v) noexcept {
    const std::string_view tok = v.raw_json_token();
    if (!tok.empty() && tok[0] == '"') {
      (void)bp.read_string(v, f.delta_text);  // Responses: the text (or arguments) piece
    } else {
      read_block(bp, v, f);  // Anthropic: text_delta / input_json_delta / message_delta
      f.delta_text = f.block_text;
      f.block_text = {};
    }
  };
  // Anthropic content blocks / Responses output items.
  auto read_list = [&](od::value& v) noexcept {
    if (reads == EventReads::no_output) return;
    std::string_view list;
    read_blocks(bp, v, f, list);
    if (f.tools_in_output) f.tool_calls = list;
  };
  // Anthropic message_start's message, a Responses event's response: the same fields.
  auto read_inner = [&](od::value& v) noexcept {
    od::object inner;
    const std::string_view tok = v.raw_json_token();
    if (!tok.empty() && tok[0] == '"') {
      (void)bp.read_string(v, f.top_message);
    } else if (!v.get_object().get(inner)) {
      read_response_object(bp, inner, f, true, reads);
    }
  };
  const auto err = for_each_field(obj, [&](Key key, od::value& v) noexcept {
    if (reads == EventReads::nothing) return true;  // skipped by the iteration (still checked)
    if (reads == EventReads::block) {
      // The keys of the most frequent events, matched without the chain below.
      if (key == "delta") {
        read_delta(v);
      } else if (key == "index" || key == "output_index") {
        bp.read_index(v, f.block_index);
      } else if (key == "content_block" || key == "item") {
        read_block(bp, v, f);
      }
      return true;
    }
    if (key == "type") {  // first in an event: decides what is read of the rest
      if (!nested) {
        (void)bp.read_string(v, f.type);
        f.event = classify_event(f.type);
        if (bp.stream_event) reads = event_reads(f.event);
        if (f.event == Event::final && bp.final_output_wanted) reads = EventReads::all;
        // The final response object is the authoritative one: its model is read whatever the
        // stream's earlier events said.
        if (f.event == Event::final) bp.skip_id_model = false;
      }
      return true;
    }
    f.general = true;
    // By the key's first byte: an unknown key (`object`, `created`, `sequence_number`, ...)
    // costs a compare or two, not the whole chain.
    switch (key.raw[0]) {
      case 'i':
        if (key == "id") {
          if (bp.skip_id_model) return true;
          if (!bp.read_string(v, f.id)) bp.wrong_type("response: id is not a string");
        } else if (key == "index") {
          bp.read_index(v, f.block_index);
        } else if (key == "item") {
          read_block(bp, v, f);
        } else if (key == "incomplete_details") {
          od::object d;
          if (!v.get_object().get(d))
            (void)for_each_field(d, [&](Key dk, od::value& dv) noexcept {
              if (dk == "reason") (void)bp.read_string(dv, f.incomplete_reason);
              return true;
            });
        }
        break;
      case 'm':
        if (key == "model") {
          if (bp.skip_id_model) return true;
          if (!bp.read_string(v, f.model)) bp.wrong_type("response: model is not a string");
        } else if (key == "message") {
          read_inner(v);
        }
        break;
      case 'p':
        if (key == "provider") {
          const std::string_view tok = v.raw_json_token();
          if (!tok.empty() && tok[0] == '"') (void)bp.read_string(v, f.provider);
        }
        break;
      case 'c':
        if (key == "choices") {
          od::array choices;
          if (v.get_array().get(choices)) {
            bool is_null = false;
            if (v.is_null().get(is_null) || !is_null) bp.wrong_type("response: choices is not an array");
            return true;
          }
          std::size_t position = 0;
          for (auto element : choices) {
            if (const auto element_err = element.error()) {
              bp.broken(element_err);
              return false;
            }
            od::value& cv = element.value_unsafe();
            read_choice(bp, cv, position++, f);
          }
        } else if (key == "content") {
          read_list(v);
        } else if (key == "content_block") {
          read_block(bp, v, f);
        }
        break;
      case 'u':
        if (key == "usage") read_usage(bp, v, f);
        break;
      case 'x':
        // Groq's streams give their usage only in `x_groq.usage` (the last chunk; a body has a
        // top-level `usage`, and a chunk may carry both, with the same counts).
        if (key == "x_groq") {
          od::object groq;
          if (!v.get_object().get(groq)) {
            const auto gerr = for_each_field(groq, [&](Key gk, od::value& gv) noexcept {
              if (gk == "usage") read_usage(bp, gv, f);
              return true;
            });
            if (gerr) bp.broken(gerr);
          }
        }
        break;
      case 'e':
        if (key == "error") f.error = read_error(bp, v, f.error_message) || f.error;
        break;
      case 'o':
        if (key == "output") {
          read_list(v);
        } else if (key == "output_index") {
          bp.read_index(v, f.block_index);
        }
        break;
      case 's':
        if (key == "stop_reason") {
          std::string_view reason;
          if (!bp.read_string(v, reason)) {
            bp.wrong_type("response: stop_reason is not a string");
          } else if (!reason.empty()) {
            f.reasons[0] = reason;
            f.choices = std::max<std::size_t>(f.choices, 1);
            if (f.first_reason.empty()) f.first_reason = reason;
          }
        } else if (key == "status") {
          (void)bp.read_string(v, f.status);
        }
        break;
      case 'r':
        if (key == "response") read_inner(v);
        break;
      case 'd':
        if (key == "delta") read_delta(v);
        break;
      default:
        break;
    }
    return true;
  });
  if (err) bp.broken(err);
  // A Responses error event: {"type":"error","code":..,"message":".."}.
  if (!nested && f.type == "error" && !f.error) {
    f.general = true;
    f.error = true;
    f.error_message = f.top_message;
  }
}

}  // namespace

namespace {

// Every choice's finish reason joined by ',' into text (several choices only: one choice is
// finish_reason alone). Reasons are identifiers; one holding ',' or over 32 bytes is cut. A
// choice without one (null, or a stream that ended before it) is "unknown", so that entry i
// stays choice i's.
template <typename Text, typename Reason>
std::string_view join_reasons(Text& text, const Reason* reasons, std::size_t n) noexcept {
  text.size = 0;
  if (n < 2) return {};
  for (std::size_t i = 0; i < n; ++i) {
    std::string_view r{reasons[i]};
    r = r.substr(0, r.find(','));
    r = r.substr(0, detail::utf8_cut(r, 32));  // never inside a UTF-8 sequence
    if (r.empty()) r = "unknown";
    if (text.size + r.size() + 1 > text.bytes.size()) break;
    if (i != 0) text.bytes[text.size++] = ',';
    if (!r.empty()) std::memcpy(text.bytes.data() + text.size, r.data(), r.size());
    text.size += r.size();
  }
  return text.view();
}

}  // namespace

GatewayParseResult GatewayParser::parse_response(std::string_view body, GatewayRecord& rec) noexcept {
  ++stats_.responses;
  body = skip_bom(body);
  LlmRequest& out = rec.request_;
  GatewayRecord::Detail::start_response(rec);

  Issues issues;
  Arena arena{rec.response_arena_, rec.response_arena_used_};
  arena.prepare(std::min(body.size(), impl_->limit(rec, &GatewayConfig::max_body_bytes)));
  BodyParse bp{nullptr, nullptr, nullptr, 0, false, arena, issues, k_response_side};
  od::object obj;
  if (impl_->open_object(body, rec.response_copy_, bp, obj, false, rec.config_.max_body_bytes)) {
    ResponseFields f(impl_->deltas.data());
    read_response_object(bp, obj, f);
    if (impl_->check_end(bp)) [[unlikely]] {  // cut: read again, repaired (once: a repaired body passes)
      --stats_.responses;
      return parse_response(body, rec);
    }
    // The limits a stream's fixed fields hold, so that both forms give the same record.
    bool value_cut = false;
    auto fit = [&value_cut](std::string_view v, std::size_t max) noexcept {
      if (v.size() <= max) return v;
      value_cut = true;
      return v.substr(0, detail::utf8_cut(v, max));
    };
    out.response_id = fit(f.id, k_gateway_max_id_bytes);
    out.response_model = fit(f.model, k_gateway_max_id_bytes);
    if (!f.provider.empty())
      GatewayRecord::Detail::set_response_provider(rec, fit(f.provider, k_gateway_max_provider_bytes));
    // A ',' in a finish reason becomes ';' (finish_reasons is a ','-joined list; the one
    // reason reads the same), as in a stream. Rare: copied into the arena then.
    auto no_comma = [&arena](std::string_view r) noexcept {
      if (r.find(',') == std::string_view::npos || r.size() > arena.room()) return r;
      char* const p = arena.cursor();
      std::memcpy(p, r.data(), r.size());
      std::replace(p, p + r.size(), ',', ';');
      return arena.commit(r.size());
    };
    const std::string_view reason0 = fit(f.finish_reason(), k_gateway_max_reason_bytes);
    for (std::size_t i = 0; i < f.choices; ++i) f.reasons[i] = no_comma(fit(f.reasons[i], k_gateway_max_reason_bytes));
    out.finish_reason = no_comma(reason0);
    out.finish_reasons = join_reasons(rec.finish_reasons_text_, f.reasons.data(), f.choices);
    // No content and an empty `tool_calls` list: no completion (as its stream gives), not `[]`.
    out.completion = !f.content.empty() ? f.content : f.tool_calls == "[]" ? std::string_view{} : f.tool_calls;
    out.input_tokens = f.input_tokens;
    out.output_tokens = f.output_tokens;
    out.cache_read_input_tokens = f.cache_read_tokens;
    out.cache_creation_input_tokens = f.cache_creation_tokens;
    out.reasoning_output_tokens = f.reasoning_tokens;
    out.cost = f.cost;
    if (f.error) {
      out.error = true;
      out.error_message = fit(f.error_message, k_gateway_max_error_bytes);
    }
    if (value_cut)
      issues.add(ParseIssue::completion_truncated,
                 "response: an id, model, provider, finish reason or error message over its limit (cut, UTF-8 safe)");
  }
  return finish_call(rec, issues.bits, issues.detail);
}

// ---------------------------------------------------------------------------------------
namespace {

void merge(std::uint32_t& bits, std::string_view& detail, std::uint32_t more,
           std::string_view more_detail) noexcept {
  if (more == 0) return;
  if (bits == 0) detail = more_detail;
  bits |= more;
}

// ---------------------------------------------------------------------------------------
// Stream events of a fixed layout, read in one pass over their bytes instead of by stage 1 and
// the on-demand walk. Most events of an Anthropic stream are block deltas, block stops and
// pings sent byte for byte in one layout; stage 1, open_object and the walk were ~60% of such a
// stream fed in 64-byte pieces (perf), for events whose only variable parts are an index and
// one string:
//
//   {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi \u00e9"}}
//   '---------- head -----------''- k_fast_rows[0] -'^ index            ^ string    ^ "}} + ws
//
// An event is taken only when it is exactly such a layout: the literal bytes, an index of 1 to
// 9 digits without a leading zero (what read_int reads from the same token), a string with no
// control character and valid UTF-8 (stage 1 rejects or sanitizes the others), then the
// closers and nothing but whitespace. Anything else (keys in another order, an extra key,
// whitespace inside, another number, bytes after the object, a line over max_body_bytes) goes
// to the general path. What is taken fills ResponseFields with what the walk reads of it
// (the same members; a string the walk reads is unescaped by the same BodyParse::unescape, so
// a bad escape is U+FFFD and flagged the same; one it skips is only checked), and
// stream_event merges it with the same code. OpenAI Responses text deltas have one layout too
// (fast_responses_delta); chat chunks vary more and have a scanner of their own (below).

// Test hook (gateway_testing.h): off sends every event through the general path.
std::atomic<bool> g_stream_fast_path{true};
// Events read by the fast paths on this thread (test hook: the tests check that they are taken).
thread_local std::uint64_t g_fast_events = 0;

// What a row's string is to the walk.
enum class FastUse : std::uint8_t {
  delta_text,  // a delta's `text` (read_delta: delta_text)
  delta_json,  // a delta's `partial_json` (delta_json)
  block_text,  // a block start's `text` (block_text)
  skip,        // a key read_block does not read (`thinking`, `signature`): checked, not read
};

// One layout: from the index's end to the string's opening quote, and what it reads as.
struct FastRow {
  std::string_view after_index;
  Event event;
  std::string_view block_type;
  FastUse use;
};

constexpr FastRow k_fast_rows[] = {
    {R"(,"delta":{"type":"text_delta","text":")", Event::block_delta, "text_delta", FastUse::delta_text},
    {R"(,"delta":{"type":"input_json_delta","partial_json":")", Event::block_delta, "input_json_delta",
     FastUse::delta_json},
    {R"(,"delta":{"type":"thinking_delta","thinking":")", Event::block_delta, "thinking_delta", FastUse::skip},
    {R"(,"delta":{"type":"signature_delta","signature":")", Event::block_delta, "signature_delta", FastUse::skip},
    {R"(,"content_block":{"type":"text","text":")", Event::block_start, "text", FastUse::block_text},
    {R"(,"content_block":{"type":"thinking","thinking":")", Event::block_start, "thinking", FastUse::skip},
};

// A JSON string's escaped content from p (after its opening quote) to end (no padding after
// it: the bytes may be the caller's): its closing quote, or nullptr when none comes before end
// or a control character (below 0x20, escaped or not) does. escaped: a backslash was seen;
// high: a byte >= 0x80 may be in it (the caller validates the UTF-8 then). 16 bytes at a time.
[[nodiscard]] const char* scan_string(const char* p, const char* end, bool& escaped, bool& high) noexcept {
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i space = _mm_set1_epi8(0x20);
  while (end - p >= 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const auto hi = static_cast<unsigned>(_mm_movemask_epi8(v));
    // cmplt is signed: bytes >= 0x80 compare below 0x20 too, and are taken out by ~hi.
    const __m128i special = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                         _mm_cmplt_epi8(v, space));
    const unsigned m = static_cast<unsigned>(_mm_movemask_epi8(special)) & ~hi;
    high = high || hi != 0;
    if (m == 0) {
      p += 16;
      continue;
    }
    p += __builtin_ctz(m);
    if (*p == '"') return p;
    if (*p != '\\') return nullptr;  // a control character
    escaped = true;
    if (end - p < 2 || static_cast<unsigned char>(p[1]) < 0x20) return nullptr;
    high = high || static_cast<unsigned char>(p[1]) >= 0x80;
    p += 2;
  }
  for (; p < end; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"') return p;
    if (c < 0x20) return nullptr;
    if (c >= 0x80) high = true;
    if (c == '\\') {
      escaped = true;
      if (end - p < 2 || static_cast<unsigned char>(p[1]) < 0x20) return nullptr;
      high = high || static_cast<unsigned char>(p[1]) >= 0x80;
      ++p;
    }
  }
  return nullptr;
}

// True when s may be one of the layouts above (`{"type":"c...`, `m`, `p`, `r`, or
// `{"type": "ping"}`): one 8-byte compare and two bytes, so that a chat chunk pays no more.
[[nodiscard]] inline bool fast_candidate(std::string_view s) noexcept {
  if (s.size() < 15 || std::memcmp(s.data(), R"({"type":)", 8) != 0) return false;
  const char c = s[9];
  return s[8] == ' ' || (s[8] == '"' && (c == 'c' || c == 'm' || c == 'p' || c == 'r'));
}

// The bytes of lit at p (nothing skipped before them): p moved past them. false: p untouched.
[[nodiscard]] inline bool take_lit(const char*& p, const char* end, std::string_view lit) noexcept {
  if (static_cast<std::size_t>(end - p) < lit.size() || std::memcmp(p, lit.data(), lit.size()) != 0) return false;
  p += lit.size();
  return true;
}

// A plain integer at p: 1 to 18 digits without a leading zero (what read_int reads from its
// bytes), p moved past it. false: another form (the general path decides).
[[nodiscard]] inline bool fast_digits(const char*& p, const char* end, std::int64_t& out) noexcept {
  const char* const digits = p;
  const char* q = p;
  std::uint64_t x = 0;  // unsigned: a 19th digit may wrap it (then refused below), never UB
  while (q < end && q - digits < 19 && static_cast<unsigned>(*q - '0') <= 9)
    x = x * 10 + static_cast<unsigned>(*q++ - '0');
  const std::ptrdiff_t n = q - digits;
  if (n == 0 || n > 18 || (*digits == '0' && n > 1)) return false;
  p = q;
  out = static_cast<std::int64_t>(x);
  return true;
}

// A string at p (after its opening quote) up to its closing quote, checked as stage 1 checks
// it (no control character, valid UTF-8); p moved past the quote. false: off the layout.
[[nodiscard]] inline bool fast_string(const char*& p, const char* end, std::string_view& content,
                                      bool& escaped) noexcept {
  bool high = false;
  escaped = false;
  const char* const close = scan_string(p, end, escaped, high);
  if (close == nullptr) return false;
  content = {p, static_cast<std::size_t>(close - p)};
  if (high && !simdjson::validate_utf8(content.data(), content.size())) return false;
  p = close + 1;
  return true;
}

// The OpenAI Responses text delta, past `{"type":"response.output_text.delta",`:
//
//   "sequence_number":4,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi"
//   then `,"logprobs":[]` and `,"obfuscation":"…"` or not, then `}`
//
// what the walk reads of it (EventReads::block): the type, `output_index` (read_index) and the
// `delta` string; `sequence_number`, `item_id`, `content_index`, `logprobs` and `obfuscation` it
// skips (checked here as stage 1 would). Anything else: false, nothing touched.
[[nodiscard]] bool fast_responses_delta(const char* type_begin, const char* p, const char* end, BodyParse& bp,
                                        ResponseFields& f) noexcept {
  auto take = [&](std::string_view lit) noexcept { return take_lit(p, end, lit); };
  std::int64_t ignored = 0;
  std::int64_t index = 0;
  std::string_view item_id;
  std::string_view delta;
  bool escaped = false;
  bool skipped_escaped = false;
  if (!take(R"("sequence_number":)") || !fast_digits(p, end, ignored) || !take(R"(,"item_id":")") ||
      !fast_string(p, end, item_id, skipped_escaped) || !take(R"(,"output_index":)") ||
      !fast_digits(p, end, index) || !take(R"(,"content_index":)") || !fast_digits(p, end, ignored) ||
      !take(R"(,"delta":")") || !fast_string(p, end, delta, escaped))
    return false;
  (void)take(R"(,"logprobs":[])");
  if (take(R"(,"obfuscation":")")) {
    std::string_view padding;
    if (!fast_string(p, end, padding, skipped_escaped)) return false;
  }
  if (end - p != 1 || *p != '}') return false;
  f.type = {type_begin, std::string_view("response.output_text.delta").size()};
  f.event = Event::text_delta;
  f.block_index = index;
  f.delta_text = escaped ? bp.unescape(delta) : delta;
  return true;
}

// True when the event (one stream line's data) is one of the layouts above; f (cleared) then
// holds what the general walk reads of it, and a bad escape is in bp's issues. false: nothing
// was touched.
[[nodiscard]] bool fast_event(std::string_view line, BodyParse& bp, ResponseFields& f) noexcept {
  const std::string_view s = trim_right(line);
  const char* p = s.data();
  const char* const end = p + s.size();
  auto take = [&](std::string_view lit) noexcept { return take_lit(p, end, lit); };
  auto rest_is = [&](std::string_view lit) noexcept {
    return static_cast<std::size_t>(end - p) == lit.size() && std::memcmp(p, lit.data(), lit.size()) == 0;
  };
  if (!take(R"({"type":")")) {
    if (s != R"({"type": "ping"})") return false;
    f.type = s.substr(10, 4);
    f.event = Event::nothing;
    return true;
  }
  const char* const type_begin = p;
  if (!take("content_block_")) {
    if (rest_is(R"(message_stop"})")) {
      f.type = {type_begin, 12};
      f.event = Event::message_stop;
      return true;
    }
    if (rest_is(R"(ping"})")) {
      f.type = {type_begin, 4};
      f.event = Event::nothing;
      return true;
    }
    if (take(R"(response.output_text.delta",)")) return fast_responses_delta(type_begin, p, end, bp, f);
    return false;
  }
  Event event;
  if (take(R"(delta","index":)")) {
    event = Event::block_delta;
  } else if (take(R"(start","index":)")) {
    event = Event::block_start;
  } else if (take(R"(stop","index":)")) {
    event = Event::nothing;
  } else {
    return false;
  }
  constexpr std::size_t k_index_key = std::string_view(R"(","index":)").size();
  const std::string_view type{type_begin, static_cast<std::size_t>(p - type_begin) - k_index_key};
  const char* const digits = p;
  std::int64_t index = 0;
  while (p < end && p - digits < 10 && static_cast<unsigned>(*p - '0') <= 9) index = index * 10 + (*p++ - '0');
  if (p == digits || p - digits > 9 || (*digits == '0' && p - digits > 1)) return false;
  if (event == Event::nothing) {  // content_block_stop: the walk reads nothing of it
    if (!rest_is("}")) return false;
    f.type = type;
    f.event = event;
    return true;
  }
  const FastRow* row = nullptr;
  for (const FastRow& r : k_fast_rows) {
    if (r.event == event && take(r.after_index)) {
      row = &r;
      break;
    }
  }
  if (row == nullptr) return false;
  bool escaped = false;
  bool high = false;
  const char* const close = scan_string(p, end, escaped, high);
  if (close == nullptr) return false;
  const std::string_view content{p, static_cast<std::size_t>(close - p)};
  p = close + 1;
  if (!rest_is("}}")) return false;
  if (high && !simdjson::validate_utf8(content.data(), content.size())) return false;
  f.type = type;
  f.event = event;
  f.block_index = index;
  f.block_type = row->block_type;
  if (row->use == FastUse::skip) return true;
  const std::string_view text = escaped ? bp.unescape(content) : content;
  switch (row->use) {
    case FastUse::delta_text:
      f.delta_text = text;
      break;
    case FastUse::delta_json:
      f.delta_json = text;
      break;
    case FastUse::block_text:
      f.block_text = text;
      break;
    case FastUse::skip:
      break;
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// Chat completion chunks of the common shape, read without simdjson. A chat stream is a chunk
// per token, each a flat object around one choice:
//
//   {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1732680200,"model":"gpt-4o",
//    "system_fingerprint":"fp_1","choices":[{"index":0,"delta":{"content":"Hi"},
//    "logprobs":null,"finish_reason":null}]}
//
// Stage 1, open_object and the walk were most of such a stream fed in 64-byte pieces (perf).
// A chunk's members vary by provider (OpenRouter adds `provider` and `native_finish_reason`,
// OpenAI `system_fingerprint`, `service_tier`, `obfuscation` (random padding, after
// `choices`), `"usage":null`), so this is a small scanner over a closed grammar: members in
// any order, whitespace between tokens, each member one of
//   top level: id, model, provider, object, system_fingerprint, service_tier, obfuscation
//              (string or null), created (a plain integer), usage (null only), choices (an
//              array of 1 to 4 choice objects);
//   a choice:  index (a plain integer), finish_reason, native_finish_reason (string or null),
//              logprobs (null only), delta (an object of role, content, refusal: string or
//              null);
// a key at most once per object, written without escapes, strings without control characters
// and in valid UTF-8 (stage 1 refuses the others), integers of 1 to 18 digits without a
// leading zero (what read_int reads from its bytes), nothing but whitespace after the object.
// Anything else (a usage object, tool calls, content parts, a `type`, an unknown key, a
// number of another form) goes to the general path, so that what is taken fills
// ResponseFields with exactly what read_response_object and read_choice read of it: the same
// members, strings unescaped by the same BodyParse::unescape, the choices committed by the
// same rules (no index: choice 0; a refusal is the completion when there is no content). A
// chunk is scanned whole before anything is written, so that one off the grammar leaves f,
// the arena and the issues as they were.
//
// Every chunk of a stream repeats the bytes before its text (id, object, created, model,
// `"choices":[{"index":0,"delta":{"content":"`: ~150-200 bytes) and only the text differs. So
// the record keeps the last chunk's bytes through its content's opening quote, with what the
// scanner had read up to there (offsets from the line's start, so they hold for any line with
// those bytes): a chunk that begins with the same bytes is read from its content on, after one
// memcmp. The scanner is deterministic and reads nothing past the quote before it gets there,
// so resuming gives what scanning the whole chunk would.

struct ChatScan {
  const char* base;  // the line's first byte (offsets are from here)
  const char* p;
  const char* end;

  // (The loops below work on a local pointer: p itself is stored back once, not per byte, as a
  // char store could alias it.)
  void ws() noexcept {
    const char* q = p;
    while (q < end && (*q == ' ' || *q == '\n' || *q == '\r' || *q == '\t')) ++q;
    p = q;
  }
  [[nodiscard]] bool byte(char c) noexcept {
    ws();
    if (p == end || *p != c) return false;
    ++p;
    return true;
  }
  // The bytes of lit next (no whitespace before them), consumed.
  [[nodiscard]] bool lit(std::string_view s) noexcept { return take_lit(p, end, s); }
  // After a key's opening quote: which of names (each followed by its closing quote) it is,
  // then past the `:`; -1 when none (another key, an escaped one: off the grammar). names are
  // few: tried by first byte, then compared whole.
  template <std::size_t N>
  [[nodiscard]] int key(const std::array<std::string_view, N>& names) noexcept {
    if (p == end) return -1;
    for (std::size_t i = 0; i < N; ++i) {
      if (names[i][0] == *p && lit(names[i])) return byte(':') ? static_cast<int>(i) : -1;
    }
    return -1;
  }
  [[nodiscard]] bool null() noexcept {
    ws();
    if (end - p < 4 || std::memcmp(p, "null", 4) != 0) return false;
    p += 4;  // what follows is checked as the next token (`nullx` is off the grammar)
    return true;
  }
  [[nodiscard]] bool integer(std::int64_t& out) noexcept {
    ws();
    return fast_digits(p, end, out);
  }
  // After a member's value: true at `}` (consumed: the object is over), else past a `,`
  // (false; off the grammar sets bad).
  [[nodiscard]] bool object_end(bool& bad) noexcept {
    if (byte('}')) return true;
    bad = !byte(',');
    return false;
  }
};

// A string member as scanned, by offset from the line's start: its escaped bytes, not yet
// unescaped. (No member initializers: set as used; arrays of them are not cleared per chunk,
// which cost ~30 ns a chunk with `rep stos`.)
struct ChatString {
  std::uint32_t off;
  std::uint32_t len;
  bool escaped;
  bool present;  // a string (not null, not absent): only then are the others read
};

struct ChatChoice {
  std::int64_t index;  // none: choice 0 (a stream chunk's choice, read_choice)
  ChatString reason;
  ChatString content;
  ChatString refusal;

  void clear() noexcept {
    index = 0;
    reason = {};
    content = {};
    refusal = {};
  }
};

// What is read up to choice 0's content: what the record's memo keeps (trivially copyable).
struct ChatHead {
  std::uint32_t top_seen;     // keys seen, one bit each (a key twice is off the grammar)
  std::uint32_t choice_seen;  // in the choice being read
  std::uint32_t delta_seen;   // in its delta
  ChatString id;
  ChatString model;
  ChatString provider;
  ChatChoice first;  // choice 0 of the array (by position)
};

// Choices in one chunk the fast path takes (a stream sends one; more go the general path).
constexpr std::size_t k_fast_chat_choices = 4;

struct ChatRead {
  ChatHead head;
  std::array<ChatChoice, k_fast_chat_choices - 1> more;  // choices after the first, [0, n_choices - 1)
  std::size_t n_choices;
  // The two places a later chunk may resume at, and head there (0: not reached): past the
  // `{` of choice 0 (choice_at), and at its content's opening quote (content_at).
  std::size_t choice_at;
  ChatHead choice_head;
  std::size_t content_at;
  ChatHead content_head;

  [[nodiscard]] ChatChoice& choice(std::size_t i) noexcept { return i == 0 ? head.first : more[i - 1]; }
};

// The memo in the record's opaque bytes: a ChatMemo, then the last chunk's bytes through the
// later of its two places.
struct ChatMemo {
  ChatHead choice_head;
  ChatHead content_head;
  std::uint32_t choice_at;
  std::uint32_t content_at;  // 0: that chunk had no content string in choice 0
};
static_assert(std::is_trivially_copyable_v<ChatMemo>);
constexpr std::size_t k_chat_memo_prefix_max = k_gateway_chat_memo_bytes - sizeof(ChatMemo);
static_assert(k_chat_memo_prefix_max >= 256);

// Set bit `bit` of seen; false when it was set (a key twice: the general path decides).
[[nodiscard]] inline bool first_time(std::uint32_t& seen, std::uint32_t bit) noexcept {
  if ((seen & bit) != 0) return false;
  seen |= bit;
  return true;
}

// A string or null value into s. false: off the grammar.
[[nodiscard]] bool scan_chat_string(ChatScan& in, ChatString& s) noexcept {
  in.ws();
  if (in.p < in.end && *in.p == 'n') {
    s.present = false;
    return in.null();
  }
  if (in.p == in.end || *in.p != '"') return false;
  const char* q = in.p + 1;
  std::string_view content;
  bool escaped = false;
  if (!fast_string(q, in.end, content, escaped)) return false;
  s.off = static_cast<std::uint32_t>(content.data() - in.base);
  s.len = static_cast<std::uint32_t>(content.size());
  s.escaped = escaped;
  s.present = true;
  in.p = q;
  return true;
}

// The keys of each object, with their closing quote; a key's bit in the object's `seen` is 1 <<
// its place here.
using namespace std::string_view_literals;
constexpr std::array k_delta_keys{"content\""sv, "refusal\""sv, "role\""sv};
constexpr std::array k_choice_keys{"index\""sv, "delta\""sv, "finish_reason\""sv, "native_finish_reason\""sv,
                                   "logprobs\""sv};
constexpr std::array k_top_keys{"id\""sv,           "object\""sv,      "created\""sv,
                                "model\""sv,        "provider\""sv,    "system_fingerprint\""sv,
                                "service_tier\""sv, "obfuscation\""sv, "choices\""sv,
                                "usage\""sv};

// A member's key: its place in names, or -1 when it is none of them or was seen before.
template <std::size_t N>
[[nodiscard]] int chat_key(ChatScan& in, const std::array<std::string_view, N>& names, std::uint32_t& seen) noexcept {
  if (!in.byte('"')) return -1;
  const int k = in.key(names);
  return k >= 0 && first_time(seen, 1u << k) ? k : -1;
}

// The three member loops below are written out, not one template taking a lambda per object:
// that version read the chat fixture's stream 8-10% slower (1,046-1,079 -> 1,155-1,168 ns,
// bench_gateway ShapeStream/shape:3, alternated runs; the loops were not inlined into each other).

// A delta's members from after its `{` (resume: from after a member's value).
[[nodiscard]] bool scan_chat_delta(ChatScan& in, ChatRead& r, ChatChoice& c, bool first, bool resume) noexcept {
  if (!resume && in.byte('}')) return true;  // `{}`
  for (bool bad = false;;) {
    if (!resume) {
      ChatString skipped;
      switch (chat_key(in, k_delta_keys, r.head.delta_seen)) {
        case 0:  // content
          if (first && r.content_at == 0) {  // where a later chunk may resume (a string opens here)
            in.ws();
            if (in.p < in.end && *in.p == '"') {
              r.content_at = static_cast<std::size_t>(in.p - in.base);
              r.content_head = r.head;
            }
          }
          if (!scan_chat_string(in, c.content)) return false;
          break;
        case 1:  // refusal
          if (!scan_chat_string(in, c.refusal)) return false;
          break;
        case 2:  // role
          if (!scan_chat_string(in, skipped)) return false;
          break;
        default:
          return false;
      }
    }
    resume = false;
    if (in.object_end(bad)) return true;
    if (bad) return false;
  }
}

// A choice's members from after its `{` (resume: from after a member's value).
[[nodiscard]] bool scan_chat_choice(ChatScan& in, ChatRead& r, ChatChoice& c, bool first, bool resume) noexcept {
  if (!resume && in.byte('}')) return false;  // an empty choice: rare, the general path
  for (bool bad = false;;) {
    if (!resume) {
      ChatString skipped;
      switch (chat_key(in, k_choice_keys, r.head.choice_seen)) {
        case 0:  // index
          if (!in.integer(c.index)) return false;
          break;
        case 1:  // delta
          if (!in.byte('{')) return false;
          r.head.delta_seen = 0;
          if (!scan_chat_delta(in, r, c, first, false)) return false;
          break;
        case 2:  // finish_reason
          if (!scan_chat_string(in, c.reason)) return false;
          break;
        case 3:  // native_finish_reason
          if (!scan_chat_string(in, skipped)) return false;
          break;
        case 4:  // logprobs
          if (!in.null()) return false;
          break;
        default:
          return false;
      }
    }
    resume = false;
    if (in.object_end(bad)) return true;
    if (bad) return false;
  }
}

// After a choice's `}`: further choices up to the array's `]`.
[[nodiscard]] bool scan_chat_more_choices(ChatScan& in, ChatRead& r) noexcept {
  for (;;) {
    if (in.byte(']')) return true;
    if (!in.byte(',') || r.n_choices == k_fast_chat_choices || !in.byte('{')) return false;
    ChatChoice& c = r.choice(r.n_choices++);
    c.clear();
    r.head.choice_seen = 0;
    if (!scan_chat_choice(in, r, c, false, false)) return false;
  }
}

// The chunk's members from after its `{` (resume: from after a member's value), then the end.
[[nodiscard]] bool scan_chat_top(ChatScan& in, ChatRead& r, bool resume) noexcept {
  for (bool bad = false;;) {
    if (!resume) {
      ChatString skipped;
      std::int64_t ignored = 0;
      switch (chat_key(in, k_top_keys, r.head.top_seen)) {
        case 0:  // id
          if (!scan_chat_string(in, r.head.id)) return false;
          break;
        case 1:  // object
        case 5:  // system_fingerprint
        case 6:  // service_tier
        case 7:  // obfuscation
          if (!scan_chat_string(in, skipped)) return false;
          break;
        case 2:  // created
          if (!in.integer(ignored)) return false;
          break;
        case 3:  // model
          if (!scan_chat_string(in, r.head.model)) return false;
          break;
        case 4:  // provider
          if (!scan_chat_string(in, r.head.provider)) return false;
          break;
        case 8:  // choices
          if (!in.byte('[') || !in.byte('{')) return false;
          r.n_choices = 1;
          r.head.first.clear();
          r.head.choice_seen = 0;
          r.choice_at = static_cast<std::size_t>(in.p - in.base);  // where a later chunk may resume
          r.choice_head = r.head;
          if (!scan_chat_choice(in, r, r.head.first, true, false) || !scan_chat_more_choices(in, r)) return false;
          break;
        case 9:  // usage
          if (!in.null()) return false;
          break;
        default:
          return false;
      }
    }
    resume = false;
    if (in.object_end(bad)) break;
    if (bad) return false;
  }
  in.ws();
  // No choices (rare: the general path), or bytes after the object (flagged there).
  return (r.head.top_seen & (1u << 8)) != 0 && in.p == in.end;
}

// True when s may be a chat chunk: `{`, a key, and not `"type"` (Anthropic and Responses events
// lead with it), so that their events pay one compare.
[[nodiscard]] inline bool chat_candidate(std::string_view s) noexcept {
  return s.size() >= 16 && s[0] == '{' && s[1] == '"' && std::memcmp(s.data() + 1, R"("type")", 6) != 0;
}

// True when the event is a chat chunk of the grammar above; f (cleared) then holds what the
// general walk reads of it, a bad escape is in bp's issues, and memo (memo_size bytes used, 0:
// none; the record's) may now hold this chunk's head. false: nothing was touched.
[[nodiscard]] bool fast_chat_event(std::string_view line, BodyParse& bp, ResponseFields& f,
                                   unsigned char* memo_bytes, std::uint32_t& memo_size) noexcept {
  const std::string_view s = trim_right(line);
  ChatScan in{s.data(), s.data(), s.data() + s.size()};
  ChatRead r;  // (not cleared whole: see ChatString)
  r.choice_at = 0;
  r.content_at = 0;
  auto start = [&r]() noexcept {  // a scan from the chunk's start
    r.head.top_seen = r.head.choice_seen = r.head.delta_seen = 0;
    r.head.id = r.head.model = r.head.provider = {};
    r.head.first.clear();
  };
  // The record's bytes as a ChatMemo in place (an implicit-lifetime type in unsigned char
  // storage; read and written member by member: copying it whole per chunk was ~6% of a
  // stream, `rep movsq`).
  ChatMemo& memo = *std::launder(reinterpret_cast<ChatMemo*>(memo_bytes));
  if (memo_size == 0) memo.choice_at = memo.content_at = 0;
  const char* const prefix = reinterpret_cast<const char*>(memo_bytes) + sizeof(ChatMemo);
  const std::size_t prefix_len = memo_size == 0 ? 0 : memo_size - sizeof(ChatMemo);
  bool resumed_at_choice = false;
  // Resuming at content_at reads the chunk from its text on; at choice_at from choice 0's
  // members on (a chunk of the same stream with another delta: the role chunk, the last one).
  if (memo.content_at != 0 && s.size() > prefix_len && std::memcmp(s.data(), prefix, prefix_len) == 0) {
    r.head = memo.content_head;
    r.n_choices = 1;
    in.p = s.data() + memo.content_at;  // the content's opening quote
    if (!scan_chat_string(in, r.head.first.content) || !scan_chat_delta(in, r, r.head.first, true, true) ||
        !scan_chat_choice(in, r, r.head.first, true, true) || !scan_chat_more_choices(in, r) ||
        !scan_chat_top(in, r, true))
      return false;  // off the grammar after the same bytes: the whole scan would fail too
  } else if (memo_size != 0 && s.size() >= memo.choice_at && std::memcmp(s.data(), prefix, memo.choice_at - 1) == 0) {
    // The same bytes through `"choices":[`: what comes next decides.
    if (s[memo.choice_at - 1] != prefix[memo.choice_at - 1]) {
      // Not the `{` of a choice: an empty array (the usage chunk) or whitespace. The first is
      // off the grammar: the general path at once, without scanning the chunk again.
      const char c = s[memo.choice_at - 1];
      if (c != ' ' && c != '\n' && c != '\r' && c != '\t') return false;
      start();
      if (!in.byte('{') || !scan_chat_top(in, r, false)) return false;
    } else {
      r.head = memo.choice_head;
      r.n_choices = 1;
      in.p = s.data() + memo.choice_at;
      if (!scan_chat_choice(in, r, r.head.first, true, false) || !scan_chat_more_choices(in, r) ||
          !scan_chat_top(in, r, true))
        return false;
      r.choice_at = memo.choice_at;
      resumed_at_choice = true;
    }
  } else {
    start();
    if (!in.byte('{') || !scan_chat_top(in, r, false)) return false;
  }
  // Read whole or from choice_at: keep this chunk's places for the next one.
  if (r.choice_at != 0) {
    const std::size_t keep = r.content_at != 0 ? r.content_at + 1 : r.choice_at;
    if (keep <= k_chat_memo_prefix_max) {
      // Resumed at choice_at: the bytes before it and its head are the memo's already.
      const std::size_t from = resumed_at_choice ? r.choice_at : 0;
      if (!resumed_at_choice) memo.choice_head = r.choice_head;
      std::memcpy(memo_bytes + sizeof(ChatMemo) + from, s.data() + from, keep - from);
      memo.choice_at = static_cast<std::uint32_t>(r.choice_at);
      if (r.content_at != 0) memo.content_head = r.content_head;
      memo.content_at = static_cast<std::uint32_t>(r.content_at);
      memo_size = static_cast<std::uint32_t>(sizeof(ChatMemo) + keep);
    }
  }

  // On the grammar: what the walk reads (read_string: a view, or unescaped into the arena).
  auto text = [&bp, base = s.data()](const ChatString& str) noexcept {
    if (!str.present) return std::string_view{};
    const std::string_view raw{base + str.off, str.len};
    return str.escaped ? bp.unescape(raw) : raw;
  };
  f.general = true;
  if (!bp.skip_id_model) {
    f.id = text(r.head.id);
    f.model = text(r.head.model);
  }
  if (r.head.provider.present) f.provider = text(r.head.provider);
  for (std::size_t i = 0; i < r.n_choices; ++i) {
    const ChatChoice& c = r.choice(i);
    const std::string_view reason = text(c.reason);
    std::string_view content = text(c.content);
    const std::string_view refusal = text(c.refusal);
    // read_choice's commit, for a choice with a valid index and no tool calls.
    if (content.empty()) content = refusal;
    const auto at = static_cast<std::size_t>(c.index);
    if (!content.empty()) f.any_output = true;
    if (at < f.reasons.size()) f.choices = std::max(f.choices, at + 1);
    if (!reason.empty()) {
      if (f.first_reason.empty()) f.first_reason = reason;
      if (at < f.reasons.size()) f.reasons[at] = reason;
    }
    if (at == 0) {
      f.content = content;
      f.tool_calls = {};
      f.saw_tool_calls = false;
    }
  }
  return true;
}

}  // namespace

// feed_stream / finish_stream with no stream begun: refused, so that nothing touches the
// buffers a finished stream's views point into (content, tool calls, fixed fields).
constexpr std::string_view k_stream_not_begun =
    "stream: feed_stream or finish_stream without begin_stream, or after finish_stream (refused)";

void GatewayParser::begin_stream(GatewayRecord& rec) noexcept {
  GatewayRecord::Detail::start_response(rec);
  rec.clear_stream();
  rec.stream_active_ = true;
}

// SSE framing (WHATWG HTML, "Interpreting an event stream"): stream_bytes cuts lines at CRLF,
// LF or a lone CR; data_line takes each `data:` line, dispatch_event each blank line, and
// stream_event reads one event's data (its `data:` lines joined by '\n') as one JSON object.
// Every LLM API sends one `data:` line per event followed by a blank line, so the one-line
// event is read at its line end, without being copied, whenever that is unambiguous: no data
// is kept for the event yet and the next byte in the feed already starts the blank line.
// Otherwise (another `data:` line may follow, or the feed ends at the line end) the data is
// kept in the record's event buffer and read at the blank line; a line assembled across feeds
// is moved there by swapping buffers, not copied. (Reading every event at the blank line
// instead would copy each line fed whole once more.)

// One `data:` line (or a bare `data`), without its line end. blank_next: the bytes after its
// line end in this feed start a blank line (the event ends there). in_place: the line sits in
// the record's pending line buffer, with padding room after it.
void GatewayParser::data_line(std::string_view line, bool blank_next, bool in_place, GatewayRecord& rec,
                              std::uint32_t& bits, std::string_view& detail, std::uint64_t now_unix_nano) noexcept {
  if (rec.discarding_event_) return;  // the rest of an event over the limit
  // Its data is complete when its last data line is: a first token in it is stamped then, as
  // when the event is read at the line end (not at the blank line, one feed later maybe).
  rec.event_now_ = now_unix_nano;
  std::string_view value = line.substr(line.size() > 4 ? 5 : 4);  // (bare `data`: empty, at its end)
  if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  if (!rec.event_open_) {
    if (blank_next) {  // the one-line event: read now
      stream_event(value, now_unix_nano, rec, bits, detail, in_place);
      return;
    }
    if (in_place) {  // the line's buffer becomes the event's (the caller empties pending)
      rec.event_begin_ = static_cast<std::size_t>(value.data() - rec.pending_line_.data());
      rec.event_size_ = rec.event_begin_ + value.size();
      rec.pending_line_.swap(rec.event_data_);
    } else {
      if (!ensure_size(rec.event_data_, value.size() + k_scratch_extra)) {
        rec.discarding_event_ = true;  // out of memory: this event is lost
        return;
      }
      if (!value.empty()) std::memcpy(rec.event_data_.data(), value.data(), value.size());
      rec.event_begin_ = 0;
      rec.event_size_ = value.size();
    }
    rec.event_open_ = true;
    return;
  }
  // A further data line of the event: joined with '\n', the event bounded as a line is.
  if (rec.event_size_ - rec.event_begin_ + 1 + value.size() > impl_->limit(rec, &GatewayConfig::max_stream_line_bytes)) {
    rec.event_open_ = false;
    rec.discarding_event_ = true;
    merge(bits, detail, issue_bit(ParseIssue::stream_line_too_long),
          "stream: an event's data over max_stream_line_bytes (dropped)");
    return;
  }
  if (!ensure_size(rec.event_data_, rec.event_size_ + 1 + value.size() + k_scratch_extra)) {
    rec.event_open_ = false;
    rec.discarding_event_ = true;  // out of memory: this event is lost
    return;
  }
  rec.event_data_[rec.event_size_] = '\n';
  if (!value.empty()) std::memcpy(rec.event_data_.data() + rec.event_size_ + 1, value.data(), value.size());
  rec.event_size_ += 1 + value.size();
}

// A blank line: the event kept so far (if any) is read.
void GatewayParser::dispatch_event(std::uint64_t now_unix_nano, GatewayRecord& rec, std::uint32_t& bits,
                                   std::string_view& detail) noexcept {
  rec.discarding_event_ = false;
  if (!rec.event_open_) return;
  rec.event_open_ = false;
  (void)now_unix_nano;
  stream_event({rec.event_data_.data() + rec.event_begin_, rec.event_size_ - rec.event_begin_}, rec.event_now_,
               rec, bits, detail, true);
}

// One event's data; in_place: it sits in a record buffer with padding room after it
// (Impl::open_object).
void GatewayParser::stream_event(std::string_view line, std::uint64_t now_unix_nano,
                                 GatewayRecord& rec, std::uint32_t& bits,
                                 std::string_view& detail, bool in_place) noexcept {
  // An event whose data is empty (`data:`, `data: ` or a bare `data`, then a blank line) is
  // not dispatched (WHATWG: an empty data buffer dispatches nothing): not read, not flagged.
  if (line.empty()) return;
  if (rec.done_sentinel_) {
    // The stream said it was over: what comes after is not read, but not dropped unseen.
    merge(bits, detail, issue_bit(ParseIssue::stream_chunk_invalid), "stream: a data event after [DONE] (not read)");
    return;
  }
  ++stats_.stream_chunks;
  if (!line.empty() && line.front() == '[' && trim_right(line) == "[DONE]") {
    rec.stream_done_ = true;
    rec.done_sentinel_ = true;
    return;
  }
  // A chunk's strings are copied into the record's fixed fields and content below, so the
  // per-thread chunk arena is reused for every chunk.
  BodyParse& bp = impl_->chunk_bp;
  bp.arena.prepare(line.size());
  bp.repaired = false;
  bp.nulls_dropped = 0;
  // Every chunk of a chat stream repeats id and model; the stream keeps the first of each.
  bp.skip_id_model = rec.stream_id_.size != 0 && rec.stream_model_.size != 0;
  // (Also after streamed function calls: the final event repeats them whole, with the item's
  // id and status the argument deltas do not carry.)
  bp.final_output_wanted = rec.content_.empty();
  Issues& chunk_issues = impl_->chunk_issues;
  chunk_issues.bits = 0;
  chunk_issues.detail = {};
  od::object obj;
  ResponseFields& f = impl_->chunk_fields;
  f.clear();
  const bool fast = line.size() <= impl_->config.max_body_bytes && g_stream_fast_path.load(std::memory_order_relaxed);
  if (fast && ((fast_candidate(line) && fast_event(line, bp, f)) ||
               (chat_candidate(line) && fast_chat_event(line, bp, f, rec.chat_memo_.data(), rec.chat_memo_size_)))) {
    // Read without simdjson (fast_event, fast_chat_event): what the walk below would have read.
    ++g_fast_events;
  } else if (impl_->open_object(line, impl_->chunk_copy, bp, obj, in_place)) {
    read_response_object(bp, obj, f);
    if (impl_->check_end(bp)) [[unlikely]] {  // cut: read again, repaired
      chunk_issues.bits = 0;
      chunk_issues.detail = {};
      f.clear();
      bp.arena.prepare(line.size());
      if (impl_->open_object(line, impl_->chunk_copy, bp, obj, in_place)) read_response_object(bp, obj, f);
    }
  }
  merge(bits, detail, chunk_issues.bits, chunk_issues.detail);

  // A value over its fixed field's room (k_gateway_max_*_bytes) is cut, and said (as in a body).
  bool value_cut = false;
  if (f.general) {  // else none of these was read (a block event's line)
    if (rec.stream_id_.size == 0 && !f.id.empty()) {
      set_fixed(rec.stream_id_.bytes, rec.stream_id_.size, f.id);
      value_cut = f.id.size() > rec.stream_id_.size;
    }
    // The first model seen, except that a Responses stream's final response
    // (response.completed / incomplete / failed) wins: it is the authoritative object.
    if ((rec.stream_model_.size == 0 || f.event == Event::final) && !f.model.empty()) {
      set_fixed(rec.stream_model_.bytes, rec.stream_model_.size, f.model);
      value_cut = value_cut || f.model.size() > rec.stream_model_.size;
    }
    if (!f.provider.empty()) {
      set_fixed(rec.stream_provider_.bytes, rec.stream_provider_.size, f.provider);
      value_cut = value_cut || f.provider.size() > rec.stream_provider_.size;
    }
    if (f.input_tokens >= 0) rec.stream_input_tokens_ = f.input_tokens;
    if (f.output_tokens >= 0) rec.stream_output_tokens_ = f.output_tokens;
    if (f.cache_read_tokens >= 0) rec.stream_cache_read_tokens_ = f.cache_read_tokens;
    if (f.cache_creation_tokens >= 0) rec.stream_cache_creation_tokens_ = f.cache_creation_tokens;
    if (f.reasoning_tokens >= 0) rec.stream_reasoning_tokens_ = f.reasoning_tokens;
    if (!std::isnan(f.cost)) rec.stream_cost_ = f.cost;
    if (f.error) {
      rec.stream_error_seen_ = true;
      set_fixed(rec.stream_error_.bytes, rec.stream_error_.size, f.error_message);
      value_cut = value_cut || f.error_message.size() > rec.stream_error_.size;
    }
  }
  if (rec.stream_finish_reason_.size == 0 && !f.first_reason.empty()) {
    set_fixed(rec.stream_finish_reason_.bytes, rec.stream_finish_reason_.size, f.first_reason);
    value_cut = value_cut || f.first_reason.size() > rec.stream_finish_reason_.size;
  }
  for (std::size_t i = 0; i < f.choices; ++i) {
    if (f.reasons[i].empty()) continue;
    set_fixed(rec.stream_reasons_[i].bytes, rec.stream_reasons_[i].size, f.reasons[i]);
    value_cut = value_cut || f.reasons[i].size() > rec.stream_reasons_[i].size;
  }
  // Entries below the highest index are cleared already (reset, begin_stream).
  rec.stream_choices_ = std::max(rec.stream_choices_, f.choices);
  // Anthropic Messages and OpenAI Responses events carry a `type` (chat chunks none): their
  // text and tool-call pieces come as events, and a final event repeats the whole output
  // (response.completed), which must not be appended again.
  if (!f.type.empty()) {
    // A final event's text, read only when the stream had none before (see above).
    const std::string_view final_text = f.event == Event::final && bp.final_output_wanted ? f.content : std::string_view{};
    f.content = {};
    f.n_deltas = 0;
    std::string_view text;
    ToolCallDelta piece;
    // The stream_tool_calls_ slot of a tool_use / function_call block (its event `index` /
    // `output_index`): the one its start took, a start of a new block taking the next free one
    // (none left: k_gateway_max_tool_calls, dropped and flagged below), so the limit counts tool
    // calls, not blocks. -1 for a delta of a block no tool call started (a server_tool_use or
    // mcp_tool_use block, whose input the body leaves out too): not a tool call.
    auto tool_slot = [&rec](std::int64_t block, bool start) noexcept -> std::int64_t {
      if (block == k_bad_tool_index) return k_bad_tool_index;  // flagged when read
      for (std::size_t i = 0; i < rec.stream_tool_block_count_; ++i)
        if (rec.stream_tool_blocks_[i].block == block) return static_cast<std::int64_t>(rec.stream_tool_blocks_[i].slot);
      if (!start) return -1;
      if (rec.stream_tool_call_count_ >= rec.stream_tool_calls_.size() ||
          rec.stream_tool_block_count_ == rec.stream_tool_blocks_.size())
        return static_cast<std::int64_t>(k_gateway_max_tool_calls);
      const std::size_t slot = rec.stream_tool_call_count_;
      rec.stream_tool_blocks_[rec.stream_tool_block_count_++] = {block, slot};
      return static_cast<std::int64_t>(slot);
    };
    switch (f.event) {
      case Event::block_start:
        if (f.block_type == "text") text = f.block_text;
        if (f.block_type == "tool_use") {
          piece.index = tool_slot(f.block_index, true);
          piece.id = f.block_id;
          piece.name = f.block_name;
          piece.type = "tool_use";
          // An input given whole here (no input_json_delta follows) is kept; the usual empty
          // placeholder (`{}`, with any whitespace inside) is not, or the deltas' text would be
          // appended after it.
          if (!is_empty_object(f.block_input)) piece.arguments = f.block_input;
          f.n_deltas = 1;
        }
        break;
      case Event::block_delta:
        if (f.block_type == "text_delta") text = f.delta_text;
        if (f.block_type == "input_json_delta") {
          piece.index = tool_slot(f.block_index, false);
          piece.arguments = f.delta_json;
          f.n_deltas = piece.index == -1 ? 0 : 1;
        }
        break;
      case Event::text_delta:
        text = f.delta_text;
        break;
      case Event::item_added:
        if (f.block_type == "function_call") {
          piece.index = tool_slot(f.block_index, true);
          piece.id = f.block_id;
          piece.name = f.block_name;
          piece.type = "function_call";
          piece.arguments = f.block_input;
          f.n_deltas = 1;
        }
        break;
      case Event::args_delta:
        piece.index = tool_slot(f.block_index, false);
        piece.arguments = f.delta_text;
        f.n_deltas = piece.index == -1 ? 0 : 1;
        break;
      case Event::message_stop:
        rec.stream_done_ = true;
        break;
      case Event::final: {
        rec.stream_done_ = true;
        text = final_text;
        if (bp.final_output_wanted && f.tools_in_output && !f.tool_calls.empty()) {
          try {
            rec.tool_calls_json_.assign(f.tool_calls.begin(), f.tool_calls.end());
            rec.stream_final_tools_ = true;
          } catch (...) {  // out of memory: the calls assembled from the deltas, if any
          }
        }
        const std::string_view reason = !f.incomplete_reason.empty() ? f.incomplete_reason : f.status;
        if (!reason.empty()) {
          set_fixed(rec.stream_reasons_[0].bytes, rec.stream_reasons_[0].size, reason);
          value_cut = value_cut || reason.size() > rec.stream_reasons_[0].size;
          rec.stream_choices_ = std::max<std::size_t>(rec.stream_choices_, 1);
          if (rec.stream_finish_reason_.size == 0)
            set_fixed(rec.stream_finish_reason_.bytes, rec.stream_finish_reason_.size, reason);
        }
        break;
      }
      case Event::none:
      case Event::other:
      case Event::nothing:
      case Event::message_start:
      case Event::lifecycle:
        break;
    }
    if (f.n_deltas == 1) f.deltas[0] = piece;
    f.content = text;
    // A final event's text came with the end, not as a first token: no first-token time.
    f.any_output = (!text.empty() && f.event != Event::final) ||
                   (f.n_deltas == 1 && (!piece.arguments.empty() || !piece.name.empty()));
  }
  if (f.any_output && now_unix_nano != 0 && rec.request_.first_token_unix_nano == 0)
    rec.request_.first_token_unix_nano = now_unix_nano;

  // Choice 0's content and tool-call pieces, within max_completion_bytes together.
  const std::size_t limit = impl_->limit(rec, &GatewayConfig::max_completion_bytes);
  bool cut = f.deltas_overflow;
  auto room = [&]() noexcept {
    const std::size_t have = rec.content_.size() + rec.stream_tool_bytes_;
    return have < limit ? limit - have : 0;
  };
  auto append = [&](std::vector<char>& to, std::string_view piece) noexcept -> std::size_t {
    const std::size_t n = detail::utf8_cut(piece, room());
    if (n < piece.size()) cut = true;
    if (n == 0) return 0;
    try {
      to.insert(to.end(), piece.data(), piece.data() + n);
      return n;
    } catch (...) {  // out of memory: stays as it was
      cut = true;
      return 0;
    }
  };
  if (!f.content.empty()) (void)append(rec.content_, f.content);
  for (std::size_t k = 0; k < f.n_deltas; ++k) {
    const ToolCallDelta& d = f.deltas[k];
    if (d.index == k_bad_tool_index) continue;  // flagged when read
    // A delta without an index (Gemini's OpenAI-compatible endpoint, and proxies in front of
    // it, leave it out) starts a new call when it is a further element of this chunk's
    // tool_calls array or brings an id other than the last call's, else continues the last
    // call (or starts call 0). Anthropic / Responses pieces carry their slot (tool_slot).
    std::size_t at = 0;
    if (d.index >= 0) {
      at = static_cast<std::size_t>(d.index);
    } else if (const std::size_t n = rec.stream_tool_call_count_; n != 0) {
      const auto& last = rec.stream_tool_calls_[n - 1];
      const bool other_id = !d.id.empty() && last.id.size != 0 &&
                            last.id.view() != d.id.substr(0, detail::utf8_cut(d.id, last.id.bytes.size()));
      at = k != 0 || other_id ? n : n - 1;
    }
    if (at >= rec.stream_tool_calls_.size()) {
      cut = true;
      continue;
    }
    auto& call = rec.stream_tool_calls_[at];
    rec.stream_tool_call_count_ = std::max(rec.stream_tool_call_count_, at + 1);
    if (!d.id.empty()) set_fixed(call.id.bytes, call.id.size, d.id);
    if (!d.type.empty()) set_fixed(call.type.bytes, call.type.size, d.type);
    if (!d.name.empty()) set_fixed(call.name.bytes, call.name.size, d.name);
    if (!d.arguments.empty()) rec.stream_tool_bytes_ += append(call.arguments, d.arguments);
  }
  if (value_cut)
    merge(bits, detail, issue_bit(ParseIssue::completion_truncated),
          "stream: an id, model, provider, finish reason or error message over its limit (cut, UTF-8 safe)");
  if (cut && (rec.issues_ & issue_bit(ParseIssue::completion_truncated)) == 0)
    merge(bits, detail, issue_bit(ParseIssue::completion_truncated),
          "stream: content or tool calls over max_completion_bytes or their count limit (cut)");
}

void GatewayParser::stream_bytes(std::string_view bytes, std::uint64_t now_unix_nano,
                                 GatewayRecord& rec, std::uint32_t& bits,
                                 std::string_view& detail) noexcept {
  static constexpr std::string_view k_too_long =
      "stream: a line over max_stream_line_bytes (dropped)";
  const std::size_t max_line = impl_->limit(rec, &GatewayConfig::max_stream_line_bytes);
  // One piece of a line: [p, p + size), ended by a line end when `ends_line` (the line's end is
  // in this feed), else the feed's last bytes. blank_next: the next line, in this feed, is blank.
  // Inlined by force: once the over-limit branch grew, GCC 12 stopped inlining it into the
  // newline loop below, +5-7% on a stream fed in 64-byte pieces (perf: the lambda's call).
  // (Not declared noexcept: GCC and clang disagree on where the attribute goes beside it;
  // stream_bytes is noexcept and nothing in here throws.)
  // A `data:` line: the one-line event (the next line blank, nothing kept for the event) read
  // here, every other case through data_line (its call was ~1.5% of a stream fed whole, perf).
  auto data = [&](std::string_view l, bool blank_next, bool in_place) __attribute__((always_inline)) {
    if (blank_next && !rec.event_open_ && !rec.discarding_event_) {
      std::string_view value = l.substr(5);
      if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      stream_event(value, now_unix_nano, rec, bits, detail, in_place);
    } else {
      data_line(l, blank_next, in_place, rec, bits, detail, now_unix_nano);
    }
  };
  auto piece_of_line = [&](const char* p, std::size_t size, bool ends_line, bool blank_next) __attribute__((always_inline)) {
    const std::string_view piece(p, size);
    if (rec.discarding_line_ || rec.skipping_line_) {
      if (ends_line) rec.discarding_line_ = rec.skipping_line_ = false;
      return;
    }
    if (ends_line && rec.pending_size_ == 0) {
      // A whole line in this feed; only data lines and blank lines (an event's end) are read
      // (event:, id:, retry:, comments and unknown fields carry nothing read).
      if (piece.size() >= 5 && std::memcmp(piece.data(), "data:", 5) == 0) {
        // The limit holds however the stream is fed: a data line over it is dropped here too,
        // with the rest of its event.
        if (piece.size() > max_line) {
          rec.event_open_ = false;
          rec.discarding_event_ = true;
          merge(bits, detail, issue_bit(ParseIssue::stream_line_too_long), k_too_long);
          return;
        }
        data(piece, blank_next, false);
      } else if (piece.empty()) {
        if (rec.event_open_ || rec.discarding_event_) dispatch_event(now_unix_nano, rec, bits, detail);
      } else if (piece == "data") {  // the field with no colon: an empty value
        data_line(piece, blank_next, false, rec, bits, detail, now_unix_nano);
      }
      return;
    }
    // A line split across feeds is assembled in the record's buffer (bounded), which keeps
    // k_scratch_extra bytes after it so that the line is parsed there, not copied again.
    if (rec.pending_size_ + piece.size() > max_line) {
      // Counted for a data line only, as a whole line is: other lines are never read. The
      // line's first 5 bytes are known (max_line >= 64), partly pending, partly the piece.
      bool is_data = true;
      for (std::size_t i = 0; i < 5; ++i) {
        const char c = i < rec.pending_size_ ? rec.pending_line_[i] : piece[i - rec.pending_size_];
        is_data = is_data && c == "data:"[i];
      }
      rec.pending_size_ = 0;
      if (is_data) {
        rec.discarding_line_ = !ends_line;
        rec.event_open_ = false;
        rec.discarding_event_ = true;
        merge(bits, detail, issue_bit(ParseIssue::stream_line_too_long), k_too_long);
      } else {
        rec.skipping_line_ = !ends_line;  // as when its first 5 bytes came in a small piece
      }
      return;
    }
    if (!ensure_size(rec.pending_line_, rec.pending_size_ + piece.size() + k_scratch_extra)) {
      rec.pending_size_ = 0;  // out of memory: this line is lost
      rec.discarding_line_ = !ends_line;
      return;
    }
    const std::size_t before = rec.pending_size_;
    if (!piece.empty()) std::memcpy(rec.pending_line_.data() + before, piece.data(), piece.size());
    rec.pending_size_ += piece.size();
    if (!ends_line) {
      // Not a data line (event:, id:, a comment): nothing in it is read, so it is not kept.
      // Checked once, when its first 5 bytes are known; from the piece when it holds them (not
      // from the bytes just copied: reading those back stalled on store forwarding).
      if (before < 5 && rec.pending_size_ >= 5 &&
          std::memcmp(before == 0 ? piece.data() : rec.pending_line_.data(), "data:", 5) != 0) {
        rec.pending_size_ = 0;
        rec.skipping_line_ = true;
      }
      return;
    }
    const std::string_view whole{rec.pending_line_.data(), rec.pending_size_};
    // (A line shorter than 5 bytes was not checked above: "id:1", "data", a comment.)
    if (whole.size() >= 5 && std::memcmp(whole.data(), "data:", 5) == 0)
      data(whole, blank_next, true);
    else if (whole == "data")
      data_line(whole, blank_next, true, rec, bits, detail, now_unix_nano);
    rec.pending_size_ = 0;
  };
  const char* const base = bytes.data();
  const std::size_t n = bytes.size();
  const char* const end = base + n;
  const char* line = base;  // where the current piece starts
  for (std::size_t block = 0; block < n; block += 64) {
    const std::size_t len = std::min<std::size_t>(64, n - block);
    std::uint64_t mask;
    std::uint64_t cr;
    if (block == 0 && impl_->first_mask_known) {
      mask = impl_->first_mask;
      cr = impl_->first_cr;
    } else {
      mask = newline_mask(base + block, len, cr);
    }
    for (; mask != 0; mask &= mask - 1) {
      const auto pos = static_cast<unsigned>(__builtin_ctzll(mask));
      const char* const at = base + block + pos;
      if (at < line) continue;  // the LF of a CRLF, taken with its CR
      const char* next = at + 1;
      bool blank_next;
      if (((cr >> pos) & 1) == 0) [[likely]] {
        // An LF: the next line is blank when the next byte is a line end too, which this
        // block's mask tells (past the feed's end its bits are 0); at the block's last byte,
        // the next block's first byte is read.
        blank_next = pos != 63 ? ((mask >> (pos + 1)) & 1) != 0 : next != end && (*next == '\n' || *next == '\r');
      } else {
        if (next != end && *next == '\n') ++next;  // CRLF
        blank_next = next != end && (*next == '\n' || *next == '\r');
      }
      piece_of_line(line, static_cast<std::size_t>(at - line), true, blank_next);
      line = next;
    }
  }
  impl_->first_mask_known = false;
  if (line != end) piece_of_line(line, static_cast<std::size_t>(end - line), false, false);
  // A CR ending the feed ended its line; an LF starting the next feed belongs to it.
  if (n != 0) rec.after_cr_ = end[-1] == '\r';
}

GatewayParseResult GatewayParser::feed_stream(std::string_view bytes, std::uint64_t now_unix_nano,
                                              GatewayRecord& rec) noexcept {
  if (!rec.stream_active_) return finish_call(rec, issue_bit(ParseIssue::stream_not_begun), k_stream_not_begun);
  if (rec.after_cr_ && !bytes.empty()) [[unlikely]] {
    // The previous feed ended with a CR: an LF here completes that CRLF, not a blank line.
    rec.after_cr_ = false;
    if (bytes[0] == '\n') bytes.remove_prefix(1);
    if (bytes.empty()) return finish_call(rec, 0, {});
  }
  // A UTF-8 byte order mark before the first line (some servers write one) is not part of
  // it, else the first `data:` line would not be seen; it may arrive split across feeds.
  if (rec.bom_seen_ < 3 && !bytes.empty()) {
    static constexpr std::string_view k_bom = "\xEF\xBB\xBF";
    while (rec.bom_seen_ < 3 && !bytes.empty() && bytes[0] == k_bom[rec.bom_seen_]) {
      ++rec.bom_seen_;
      bytes.remove_prefix(1);
    }
    if (rec.bom_seen_ < 3 && !bytes.empty()) {
      // Not a BOM after all: the bytes taken for one are the stream's own.
      const std::uint8_t taken = rec.bom_seen_;
      rec.bom_seen_ = 3;
      if (taken != 0) {
        std::uint32_t bits = 0;
        std::string_view detail;
        stream_bytes(k_bom.substr(0, taken), now_unix_nano, rec, bits, detail);
        stream_bytes(bytes, now_unix_nano, rec, bits, detail);
        return finish_call(rec, bits, detail);
      }
    }
    if (bytes.empty()) return finish_call(rec, 0, {});
  }
  Impl& im = *impl_;
  // The common piece: the middle of a data line (no CR or LF in it), appended and done. Feeds
  // split anywhere make this most calls (a 64-byte piece of a 200-byte line). Its line-end
  // mask is kept for stream_bytes when there is a line end.
  const std::size_t n = bytes.size();
  auto appendable = [&]() noexcept {
    return rec.pending_size_ >= 5 && !rec.discarding_line_ && !rec.skipping_line_ &&
           rec.pending_size_ + n <= im.limit(rec, &GatewayConfig::max_stream_line_bytes) &&
           rec.pending_size_ + n + k_scratch_extra <= rec.pending_line_.size() &&
           rec.request_.metadata.data() != nullptr;
  };
  if (n == 64) {
    // Loaded once: the four registers give the line-end mask and, when there is no line end,
    // are stored as they are after the pending line (no second read, no memcpy call).
    const auto* in = reinterpret_cast<const __m128i*>(bytes.data());
    const __m128i v0 = _mm_loadu_si128(in);
    const __m128i v1 = _mm_loadu_si128(in + 1);
    const __m128i v2 = _mm_loadu_si128(in + 2);
    const __m128i v3 = _mm_loadu_si128(in + 3);
    const std::uint32_t m0 = line_end_bits(v0);
    const std::uint32_t m1 = line_end_bits(v1);
    const std::uint32_t m2 = line_end_bits(v2);
    const std::uint32_t m3 = line_end_bits(v3);
    const std::uint64_t mask = (std::uint64_t{m0} | std::uint64_t{m1} << 16) |
                               (std::uint64_t{m2} << 32 | std::uint64_t{m3} << 48);
    if (mask == 0 && appendable()) {
      auto* out = reinterpret_cast<__m128i*>(rec.pending_line_.data() + rec.pending_size_);
      _mm_storeu_si128(out, v0);
      _mm_storeu_si128(out + 1, v1);
      _mm_storeu_si128(out + 2, v2);
      _mm_storeu_si128(out + 3, v3);
      rec.pending_size_ += 64;
      return {};
    }
    im.first_mask = mask;
    // Which line ends are CRs: from the registers, only for a piece with a line end.
    im.first_cr = mask == 0 ? 0
                            : (std::uint64_t{cr_bits(v0)} | std::uint64_t{cr_bits(v1)} << 16) |
                                  (std::uint64_t{cr_bits(v2)} << 32 | std::uint64_t{cr_bits(v3)} << 48);
    im.first_mask_known = true;
  } else if (n < 64 && n != 0) {
    im.first_mask = newline_mask(bytes.data(), n, im.first_cr);
    im.first_mask_known = true;
    if (im.first_mask == 0 && appendable()) {
      im.first_mask_known = false;
      std::memcpy(rec.pending_line_.data() + rec.pending_size_, bytes.data(), n);
      rec.pending_size_ += n;
      return {};
    }
  }
  return feed_lines(bytes, now_unix_nano, rec);
}

// feed_stream's bytes with a newline (or not appendable as they are): out of line, so that
// the piece appended above pays no frame for it.
[[gnu::noinline]] GatewayParseResult GatewayParser::feed_lines(std::string_view bytes, std::uint64_t now_unix_nano,
                                                              GatewayRecord& rec) noexcept {
  std::uint32_t bits = 0;
  std::string_view detail;
  stream_bytes(bytes, now_unix_nano, rec, bits, detail);
  // finish_call's own test, inline: nothing found and the metadata view current (most feeds).
  if (bits == 0 && rec.request_.metadata.data() != nullptr) return {};
  return finish_call(rec, bits, detail);
}

namespace {

// Appends s as a JSON string literal in the canonical form (detail::escape_json_char: quotes,
// backslashes and control characters escaped, the rest as is), as a body's tool calls are
// written. s is valid UTF-8 (every string stored in a record is).
void append_json_string(std::vector<char>& out, std::string_view s) {
  out.push_back('"');
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\' || u < 0x20) {
      char esc[6];
      const std::size_t n = detail::escape_json_char(u, esc);
      out.insert(out.end(), esc, esc + n);
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
}

void append_lit(std::vector<char>& out, std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }

}  // namespace

// Choice 0's streamed tool calls, written as the non-streamed message.tool_calls array:
// [{"id":..,"type":"function","function":{"name":..,"arguments":".."}}, ...] in index order.
std::string_view GatewayParser::tool_calls_json(GatewayRecord& rec, bool& bad_input,
                                                std::size_t& bad_escapes) noexcept {
  std::vector<char>& out = rec.tool_calls_json_;
  out.clear();
  try {
    out.push_back('[');
    bool first = true;
    for (std::size_t i = 0; i < rec.stream_tool_call_count_; ++i) {
      const auto& call = rec.stream_tool_calls_[i];
      const std::string_view args{call.arguments.data(), call.arguments.size()};
      if (call.id.size == 0 && call.name.size == 0 && args.empty()) continue;  // a text block's index
      if (!first) out.push_back(',');
      first = false;
      if (call.type.view() == "tool_use") {  // Anthropic: the content block, input as JSON
        append_lit(out, "{\"type\":\"tool_use\",\"id\":");
        append_json_string(out, call.id.view());
        append_lit(out, ",\"name\":");
        append_json_string(out, call.name.view());
        append_lit(out, ",\"input\":");
        // The input as pasted from its partial_json pieces: a cut stream, an error mid-block,
        // a piece that is not JSON or a max_completion_bytes cut leave it incomplete. Then it
        // goes as a JSON string (the completion stays valid JSON), flagged by the caller.
        // A complete input is written in the canonical form (as a body's tool_use block is,
        // a bad \uD800 as U+FFFD), written in place after the text so far, then checked.
        const std::size_t at = out.size();
        const std::size_t room = args.size() + args.size() / 2 + 8;
        std::size_t n = 0;
        std::size_t bad = 0;
        if (args.empty()) {
          append_lit(out, "{}");
        } else if (out.resize(at + room);
                   detail::canonical_json(args, out.data() + at, room, n, bad) &&
                   impl_->complete_json_object({out.data() + at, n})) {
          out.resize(at + n);
          bad_escapes += bad;
        } else {
          out.resize(at);
          bad_input = true;
          append_json_string(out, args);
        }
        append_lit(out, "}");
      } else if (call.type.view() == "function_call") {  // Responses: the output item
        append_lit(out, "{\"type\":\"function_call\",\"call_id\":");
        append_json_string(out, call.id.view());
        append_lit(out, ",\"name\":");
        append_json_string(out, call.name.view());
        append_lit(out, ",\"arguments\":");
        append_json_string(out, args);
        append_lit(out, "}");
      } else {  // chat completions: message.tool_calls
        append_lit(out, "{\"id\":");
        append_json_string(out, call.id.view());
        append_lit(out, ",\"type\":");
        append_json_string(out, call.type.size != 0 ? call.type.view() : std::string_view{"function"});
        append_lit(out, ",\"function\":{\"name\":");
        append_json_string(out, call.name.view());
        append_lit(out, ",\"arguments\":");
        append_json_string(out, args);
        append_lit(out, "}}");
      }
    }
    out.push_back(']');
  } catch (...) {  // out of memory: no tool calls rather than half of them
    out.clear();
  }
  return {out.data(), out.size()};
}

GatewayParseResult GatewayParser::finish_stream(GatewayRecord& rec) noexcept {
  if (!rec.stream_active_) return finish_call(rec, issue_bit(ParseIssue::stream_not_begun), k_stream_not_begun);
  std::uint32_t bits = 0;
  std::string_view detail;
  if (rec.pending_size_ != 0 && !rec.discarding_line_) {
    // The stream ended without a line end after its last line: read it as a line.
    stream_bytes("\n", 0, rec, bits, detail);
  }
  // An event the stream left open (no blank line after it) is read, not lost: the stream's
  // last event often ends with a single line end.
  if (rec.event_open_) dispatch_event(0, rec, bits, detail);
  rec.discarding_event_ = false;
  rec.after_cr_ = false;
  if (rec.discarding_line_ ||
      (!rec.stream_done_ && rec.stream_finish_reason_.size == 0 && !rec.stream_error_seen_))
    merge(bits, detail, issue_bit(ParseIssue::stream_incomplete),
          "stream: ended without [DONE] or a finish reason");
  rec.discarding_line_ = false;
  rec.skipping_line_ = false;
  rec.pending_size_ = 0;
  LlmRequest& out = rec.request_;
  out.response_id = rec.stream_id_.view();
  out.response_model = rec.stream_model_.view();
  // As a non-streamed response: choice 0's reason (entries at and past stream_choices_ are
  // empty), one entry per choice, choice 0's content, else its tool calls as the `tool_calls`
  // JSON text.
  // A ',' in a finish reason becomes ';', as in a body.
  for (std::size_t i = 0; i < std::max<std::size_t>(1, rec.stream_choices_); ++i)
    std::replace(rec.stream_reasons_[i].bytes.data(), rec.stream_reasons_[i].bytes.data() + rec.stream_reasons_[i].size, ',', ';');
  out.finish_reason = rec.stream_reasons_[0].view();
  std::array<std::string_view, k_max_choices> reasons{};
  for (std::size_t i = 0; i < rec.stream_choices_; ++i) reasons[i] = rec.stream_reasons_[i].view();
  out.finish_reasons = join_reasons(rec.finish_reasons_text_, reasons.data(), rec.stream_choices_);
  if (rec.stream_provider_.size != 0) GatewayRecord::Detail::set_response_provider(rec, rec.stream_provider_.view());
  out.completion = {rec.content_.data(), rec.content_.size()};
  const std::size_t max_completion = impl_->limit(rec, &GatewayConfig::max_completion_bytes);
  const bool final_tools_fit = rec.stream_final_tools_ && rec.tool_calls_json_.size() <= max_completion;
  if (out.completion.empty() && final_tools_fit) {
    // A Responses stream's final event repeated its function calls whole: as the body has them.
    out.completion = {rec.tool_calls_json_.data(), rec.tool_calls_json_.size()};
  } else if (out.completion.empty() && rec.stream_final_tools_ && rec.stream_tool_call_count_ == 0) {
    // Only the final event had them, over max_completion_bytes: none kept (a cut list would
    // not be JSON), said.
    merge(bits, detail, issue_bit(ParseIssue::completion_truncated),
          "stream: the final response's function calls over max_completion_bytes (not kept)");
  } else if (out.completion.empty() && rec.stream_tool_call_count_ != 0) {
    // (Also when the final event's whole calls are over the bound: the deltas' calls, cut.)
    bool bad_input = false;
    std::size_t bad_escapes = 0;
    out.completion = tool_calls_json(rec, bad_input, bad_escapes);
    // The arguments were kept within max_completion_bytes; the JSON around them (ids, names,
    // quoting) counts too. Over the bound, the last call's arguments are cut further (UTF-8
    // safe) by the excess, and the list written again, until it fits: the completion stays
    // valid JSON (a cut Anthropic input goes as a JSON string, flagged as above). Each round
    // cuts at least one byte, and only a stream over the bound pays for it. When the ids and
    // names alone are over it, no tool calls are kept. Flagged either way.
    const std::size_t limit = max_completion;
    bool cut = rec.stream_final_tools_;  // the final event's whole calls did not fit: less kept
    while (out.completion.size() > limit) {
      cut = true;
      std::size_t i = rec.stream_tool_call_count_;
      while (i > 0 && rec.stream_tool_calls_[i - 1].arguments.empty()) --i;
      if (i == 0) {
        out.completion = {};
        break;
      }
      std::vector<char>& args = rec.stream_tool_calls_[i - 1].arguments;
      const std::size_t excess = out.completion.size() - limit;
      args.resize(args.size() > excess ? detail::utf8_cut({args.data(), args.size()}, args.size() - excess) : 0);
      bad_input = false;
      bad_escapes = 0;
      out.completion = tool_calls_json(rec, bad_input, bad_escapes);
    }
    if (bad_input)
      merge(bits, detail, issue_bit(ParseIssue::field_wrong_type),
            "stream: a tool_use input that is not a complete JSON object (kept as a JSON string)");
    if (bad_escapes != 0)
      merge(bits, detail, issue_bit(ParseIssue::invalid_escape),
            "stream: a string escape that is not valid UTF-16 (replaced by U+FFFD)");
    if (cut)
      merge(bits, detail, issue_bit(ParseIssue::completion_truncated),
            "stream: tool calls' JSON over max_completion_bytes (arguments cut to fit)");
  }
  out.input_tokens = rec.stream_input_tokens_;
  out.output_tokens = rec.stream_output_tokens_;
  out.cache_read_input_tokens = rec.stream_cache_read_tokens_;
  out.cache_creation_input_tokens = rec.stream_cache_creation_tokens_;
  out.reasoning_output_tokens = rec.stream_reasoning_tokens_;
  out.cost = rec.stream_cost_;
  if (rec.stream_error_seen_) {
    out.error = true;
    out.error_message = rec.stream_error_.view();
  }
  rec.stream_active_ = false;
  return finish_call(rec, bits, detail);
}

// ---------------------------------------------------------------------------------------
GatewayParseResult GatewayParser::set_outcome(int http_status, std::string_view error_body,
                                              GatewayRecord& rec) noexcept {
  ++stats_.outcomes;
  error_body = skip_bom(error_body);
  // A body of JSON whitespace only says no more than an empty one ("HTTP <status>").
  if (trim_right(error_body).empty()) error_body = {};
  LlmRequest& out = rec.request_;
  Issues issues;
  // Not an HTTP status (a gateway's own code, -1 for "no answer", a byte-order slip): the span
  // would carry it as http.response.status_code. It is left unknown (0) and flagged.
  if (http_status != 0 && (http_status < 100 || http_status > 599)) {
    issues.add(ParseIssue::field_wrong_type, "outcome: an HTTP status outside 100..599 (left unknown)");
    http_status = 0;
  }
  out.http_status = http_status;
  const bool failed = http_status >= 400 || (http_status == 0 && !error_body.empty());
  if (!failed) return finish_call(rec, issues.bits, issues.detail);
  out.error = true;

  Arena arena{rec.outcome_arena_, rec.outcome_arena_used_};
  arena.prepare(std::max<std::size_t>(std::min(error_body.size(), impl_->limit(rec, &GatewayConfig::max_body_bytes)), 32));
  if (error_body.empty()) {
    char* p = arena.cursor();
    std::memcpy(p, "HTTP ", 5);
    const auto r = std::to_chars(p + 5, p + arena.room(), http_status);
    out.error_message = arena.commit(static_cast<std::size_t>(r.ptr - p));
    return finish_call(rec, issues.bits, issues.detail);
  }

  Issues parse_issues;
  SideIssues side = k_response_side;
  side.not_json = ParseIssue::error_body_unreadable;
  side.truncated = ParseIssue::error_body_unreadable;
  side.invalid_utf8 = ParseIssue::error_body_unreadable;
  BodyParse bp{nullptr, nullptr, nullptr, 0, false, arena, parse_issues, side};
  od::object obj;
  std::string_view message;
  bool found = false;
  if (impl_->open_object(error_body, rec.outcome_copy_, bp, obj, false, rec.config_.max_body_bytes)) {
    std::string_view top_message;
    std::string_view detail_message;
    // A body broken after its message still gives that message; a broken one without a
    // message is reported below (no message found).
    (void)for_each_field(obj, [&](Key key, od::value& v) noexcept {
      if (key == "error") {
        std::string_view m;
        if (read_error(bp, v, m) && !m.empty()) {
          message = m;
          found = true;
          return false;
        }
      } else if (key == "message") {
        (void)bp.read_string(v, top_message);
      } else if (key == "detail") {
        (void)bp.read_string(v, detail_message);
      }
      return true;
    });
    if (!found && !top_message.empty()) {
      message = top_message;
      found = true;
    } else if (!found && !detail_message.empty()) {
      message = detail_message;
      found = true;
    }
  }
  // A bad escape in the message is its own issue: the message is still the provider's.
  if ((parse_issues.bits & issue_bit(ParseIssue::invalid_escape)) != 0) {
    parse_issues.bits &= ~issue_bit(ParseIssue::invalid_escape);
    issues.add(ParseIssue::invalid_escape, "error body: a string escape that is not valid UTF-16 (replaced by U+FFFD)");
  }
  // A message over k_gateway_max_error_bytes is cut (UTF-8 safe) and counted, as in a response
  // body or a stream.
  if (found && message.size() > k_gateway_max_error_bytes) {
    message = message.substr(0, detail::utf8_cut(message, k_gateway_max_error_bytes));
    issues.add(ParseIssue::completion_truncated, "error body: a message over its limit (cut, UTF-8 safe)");
  }
  if (found && parse_issues.bits == 0) {
    out.error_message = message;
  } else {
    if (found) {
      out.error_message = message;
    } else {
      // No message to be found: keep the body's text itself, cut and made UTF-8 safe.
      const std::size_t n = detail::utf8_cut(
          error_body, std::min(impl_->limit(rec, &GatewayConfig::max_error_text_bytes), arena.room()));
      detail::sanitize_utf8(error_body.substr(0, n), arena.cursor());
      out.error_message = trim_right(arena.commit(n));
    }
    issues.add(ParseIssue::error_body_unreadable,
               found ? "error body: malformed (message kept)" : "error body: no JSON message (its text kept)");
  }
  return finish_call(rec, issues.bits, issues.detail);
}

namespace detail {
void set_stream_fast_path(bool on) noexcept { g_stream_fast_path.store(on, std::memory_order_relaxed); }
std::uint64_t stream_fast_events() noexcept { return g_fast_events; }
}  // namespace detail

}  // namespace tracecast
