// libFuzzer target over the gateway parsers (tracecast/gateway.h), every API shape (chat
// completions, Anthropic Messages, Responses, embeddings; told or detected): the same bytes go
// through parse_request, parse_response, the SSE stream (chunked by a size derived from the
// input) and set_outcome. The stream goes through a parser whose max_stream_line_bytes the
// input picks (64, 65, 100 or 512) and is fed whole too: both must give the same result; an
// input without a CR is also fed re-framed (its LFs as CRLF or lone CRs, its short `data: {`
// lines split into two data lines of one event), which must give the LF stream's result too.
// Seeded with tests/data/gateway, which holds bodies and streams of every shape. Checks:
// nothing crashes or reads out of bounds (ASan), every view handed out is valid UTF-8, and
// every issue reported is a known one with a description; the stream read with the fast path
// for fixed-layout events off (gateway_testing.h) gives the same record, field for field. When
// the input is one valid JSON object: a prefix of it (cut where the input picks) is always
// flagged truncated, never "not JSON", as request and as response; with bytes after it, it is
// always flagged.
#include <simdjson.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "gateway_testing.h"
#include "tracecast/gateway.h"

namespace {

using namespace tracecast;

void check_utf8(std::string_view s) {
  if (!simdjson::validate_utf8(s.data(), s.size())) std::abort();
  volatile char sink = 0;
  for (char c : s) sink = static_cast<char>(sink ^ c);  // touch every byte: ASan sees overreads
}

void check(const GatewayRecord& rec) {
  const LlmRequest& q = rec.request();
  for (std::string_view v : {q.operation, q.provider, q.requested_model, q.response_model, q.response_id,
                             q.finish_reason, q.finish_reasons, q.user, q.session_id, q.prompt, q.completion,
                             q.error_message})
    check_utf8(v);
  // Finish reasons: one per choice, never more than the record keeps.
  std::size_t commas = 0;
  for (char c : q.finish_reasons) commas += c == ',' ? 1 : 0;
  if (!q.finish_reasons.empty() && commas + 1 > k_gateway_max_choices) std::abort();
  for (const auto& e : q.metadata) {
    check_utf8(e.key);
    if (e.value.type() == ValueType::string) check_utf8(e.value.as_string());
  }
}

// Stream line limits the runs use, one picked by the input: the smallest allowed and a few
// more, so that lines across the limit (limit - 1, limit, limit + 1) are common inputs.
constexpr std::size_t k_line_limits[] = {512, 64, 65, 100};
constexpr std::size_t k_line_limit_count = sizeof(k_line_limits) / sizeof(k_line_limits[0]);

GatewayConfig small_config(std::size_t line_limit = k_line_limits[0]) {
  GatewayConfig c;
  c.max_body_bytes = 1 << 20;
  c.max_metadata_keys = 8;
  c.max_completion_bytes = 256;
  c.max_stream_line_bytes = line_limit;
  c.max_error_text_bytes = 64;
  return c;
}

// Every field a stream sets, equal in a and b (NaN costs equal).
bool same_stream(const GatewayRecord& x, const GatewayRecord& y) {
  const LlmRequest& a = x.request();
  const LlmRequest& b = y.request();
  const bool cost_same = a.cost == b.cost || (a.cost != a.cost && b.cost != b.cost);
  return a.completion == b.completion && a.finish_reason == b.finish_reason && a.finish_reasons == b.finish_reasons &&
         a.input_tokens == b.input_tokens && a.output_tokens == b.output_tokens &&
         a.cache_read_input_tokens == b.cache_read_input_tokens &&
         a.cache_creation_input_tokens == b.cache_creation_input_tokens &&
         a.reasoning_output_tokens == b.reasoning_output_tokens && cost_same && a.response_id == b.response_id &&
         a.response_model == b.response_model && a.provider == b.provider && a.error == b.error &&
         a.error_message == b.error_message && a.first_token_unix_nano == b.first_token_unix_nano &&
         x.issues() == y.issues();
}

// One parser and three records per line limit, built once (a parser allocates at construction).
struct Lane {
  explicit Lane(std::size_t limit)
      : parser(small_config(limit)), rec(small_config(limit)), whole(small_config(limit)), slow(small_config(limit)) {}
  GatewayParser parser;
  GatewayRecord rec;
  GatewayRecord whole;
  GatewayRecord slow;  // the stream read with the fixed-layout fast path off
};

Lane& lane_for(std::size_t pick) {
  static Lane lanes[k_line_limit_count] = {Lane(k_line_limits[0]), Lane(k_line_limits[1]), Lane(k_line_limits[2]),
                                           Lane(k_line_limits[3])};
  return lanes[pick % k_line_limit_count];
}

// The input's SSE framing redrawn, by `how`: 0 each LF as CRLF, 1 as a lone CR, 2 each `data: {`
// line of at most line_limit bytes that is its event's only data line (none before it since
// the last blank line, a blank line or the end after it) as two data lines ("data: {" and
// "data: " + the rest: the joined data is the same JSON, a '\n' after the '{' opening it being
// whitespace, one byte longer, so still within the limit), 3 both 2 and 1. Every variant reads as the input does: same lines, same
// events, the same bytes within the limit.
std::string reframe(std::string_view in, unsigned how, std::size_t line_limit) {
  std::string lf;
  if (how >= 2) {
    bool event_open = false;  // a data line seen since the last blank line
    while (!in.empty()) {
      const std::size_t nl = in.find('\n');
      const std::string_view line = in.substr(0, nl);
      const bool last_data = nl == std::string_view::npos || nl + 1 == in.size() || in[nl + 1] == '\n';
      if (!event_open && last_data && line.size() <= line_limit && line.size() > 7 && line.substr(0, 7) == "data: {") {
        lf += "data: {\ndata: ";
        lf += line.substr(7);
      } else {
        lf += line;
      }
      // (A UTF-8 BOM before the first line is not part of it.)
      const std::string_view field =
          lf.size() == line.size() && line.substr(0, 3) == "\xEF\xBB\xBF" ? line.substr(3) : line;
      if (line.empty()) {
        event_open = false;
      } else if (field.substr(0, 5) == "data:" || field == "data") {
        event_open = true;
      }
      if (nl == std::string_view::npos) break;
      lf += '\n';
      in.remove_prefix(nl + 1);
    }
    if (how == 2) return lf;
    in = lf;
  }
  std::string out;
  for (const char c : in) {
    if (c == '\n') {
      out += how == 0 ? "\r\n" : "\r";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static GatewayParser parser(small_config());
  static GatewayRecord rec(small_config());
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  rec.reset();
  // Every API shape: told (each GatewayApi in turn) or detected.
  const auto api = static_cast<GatewayApi>(size % 5);
  const GatewayParseResult r = parser.parse_request(input, size % 3 == 0 ? "hdr" : "", rec, api);
  if (api != GatewayApi::detect && rec.api() != api) std::abort();
  if (api == GatewayApi::detect && rec.api() == GatewayApi::detect) std::abort();
  // On-demand parsing skips `messages` without validating inside it, so the prompt is the
  // client's text as sent (emitted as a string attribute), not necessarily valid JSON: only
  // its bounds and UTF-8 are checked. Issue bits must be known ones.
  if ((r.issues >> k_parse_issue_count) != 0 || (r.ok() != r.detail.empty())) std::abort();
  check(rec);
  (void)parser.parse_response(input, rec);
  check(rec);
  (void)parser.set_outcome(400 + static_cast<int>(size % 200), input, rec);
  check(rec);

  // The stream: through a parser whose line limit the input picks (its last byte).
  Lane& lane = lane_for(size == 0 ? 0 : data[size - 1]);
  lane.rec.reset();
  lane.parser.begin_stream(lane.rec);
  // Pieces of 1-22 bytes, or of 23-150 (across the 64-byte blocks newlines are found in).
  const std::size_t step = size % 2 == 0 ? 1 + size % 22 : 23 + size % 128;
  for (std::size_t i = 0; i < size; i += step)
    (void)lane.parser.feed_stream(input.substr(i, step), i + 1, lane.rec);
  (void)lane.parser.finish_stream(lane.rec);
  check(lane.rec);

  // Any chunking gives the same result: the same stream fed in one piece (lines over
  // max_stream_line_bytes included: dropped and counted alike).
  GatewayRecord& whole = lane.whole;
  whole.reset();
  lane.parser.begin_stream(whole);
  (void)lane.parser.feed_stream(input, 1, whole);
  (void)lane.parser.finish_stream(whole);
  check(whole);
  const LlmRequest& a = lane.rec.request();
  const LlmRequest& b = whole.request();
  if (a.completion != b.completion || a.finish_reason != b.finish_reason ||
      a.finish_reasons != b.finish_reasons || a.input_tokens != b.input_tokens ||
      a.output_tokens != b.output_tokens || a.response_id != b.response_id ||
      a.response_model != b.response_model || a.error != b.error ||
      a.error_message != b.error_message || lane.rec.issues() != whole.issues())
    std::abort();

  // The same pieces with the fast path for fixed-layout events off (every event through the
  // general simdjson walk, gateway_testing.h): the same record, field for field.
  GatewayRecord& slow = lane.slow;
  slow.reset();
  detail::set_stream_fast_path(false);
  lane.parser.begin_stream(slow);
  for (std::size_t i = 0; i < size; i += step) (void)lane.parser.feed_stream(input.substr(i, step), i + 1, slow);
  (void)lane.parser.finish_stream(slow);
  detail::set_stream_fast_path(true);
  if (!same_stream(lane.rec, slow)) std::abort();

  // Re-framed (CRLF, lone CR, multi-line data; drawn from the input), in the same pieces: the
  // LF stream's result. Only for an input with no CR of its own (a CR already in it would
  // change the lines the rewrite makes).
  if (input.find('\r') == std::string_view::npos) {
    const std::size_t limit = k_line_limits[(size == 0 ? 0 : data[size - 1]) % k_line_limit_count];
    const std::string framed = reframe(input, static_cast<unsigned>(size / 3 % 4), limit);
    lane.rec.reset();
    lane.parser.begin_stream(lane.rec);
    for (std::size_t i = 0; i < framed.size(); i += step)
      (void)lane.parser.feed_stream(std::string_view(framed).substr(i, step), i + 1, lane.rec);
    (void)lane.parser.finish_stream(lane.rec);
    check(lane.rec);
    const LlmRequest& f = lane.rec.request();
    if (f.completion != b.completion || f.finish_reason != b.finish_reason ||
        f.finish_reasons != b.finish_reasons || f.input_tokens != b.input_tokens ||
        f.output_tokens != b.output_tokens || f.response_id != b.response_id ||
        f.response_model != b.response_model || f.error != b.error ||
        f.error_message != b.error_message || lane.rec.issues() != whole.issues())
      std::abort();
  }

  // A valid JSON object: cut anywhere it is flagged truncated (never not_json: something was
  // read, at least `{`), and with bytes pasted after it it is flagged.
  static simdjson::dom::parser dom;
  simdjson::dom::element root;
  std::string_view trimmed = input;
  while (!trimmed.empty() && (trimmed.back() == ' ' || trimmed.back() == '\n' || trimmed.back() == '\r' ||
                              trimmed.back() == '\t'))
    trimmed.remove_suffix(1);
  // (Nesting near the repair's 1,024 levels aside: deeper is not repaired, by design.)
  if (trimmed.size() > 1 && trimmed.front() == '{' && size <= (1u << 16) &&
      std::count(trimmed.begin(), trimmed.end(), '{') + std::count(trimmed.begin(), trimmed.end(), '[') < 1000 &&
      !dom.parse(simdjson::padded_string(input)).get(root) && root.is_object()) {
    const std::size_t cut = 1 + (size * 7919u + (size != 0 ? data[0] : 0u)) % (trimmed.size() - 1);
    const std::string_view prefix = trimmed.substr(0, cut);
    rec.reset();
    const GatewayParseResult req_cut = parser.parse_request(prefix, "", rec);
    if (!req_cut.has(ParseIssue::request_truncated) || req_cut.has(ParseIssue::request_not_json)) std::abort();
    check(rec);
    const GatewayParseResult resp_cut = parser.parse_response(prefix, rec);
    if (!resp_cut.has(ParseIssue::response_truncated) || resp_cut.has(ParseIssue::response_not_json)) std::abort();
    check(rec);
    static std::string pasted;
    pasted.assign(trimmed);
    pasted += size % 2 == 0 ? "{}" : " [1]";
    rec.reset();
    if (!parser.parse_request(pasted, "", rec).has(ParseIssue::request_not_json)) std::abort();
    if (!parser.parse_response(pasted, rec).has(ParseIssue::response_not_json)) std::abort();
  }
  return 0;
}
