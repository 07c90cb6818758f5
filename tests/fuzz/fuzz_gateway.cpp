// libFuzzer target over the gateway parsers (tracecast/gateway.h), every API shape (chat
// completions, Anthropic Messages, Responses, embeddings; told or detected): the same bytes go
// through parse_request, parse_response, the SSE stream (chunked by a size derived from the
// input) and set_outcome. Seeded with tests/data/gateway, which holds bodies and streams of
// every shape. Checks: nothing crashes or reads out of bounds (ASan), every view handed out is
// valid UTF-8, and every issue reported is a known one with a description.
#include <simdjson.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

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

GatewayConfig small_config() {
  GatewayConfig c;
  c.max_body_bytes = 1 << 20;
  c.max_metadata_keys = 8;
  c.max_completion_bytes = 256;
  c.max_stream_line_bytes = 512;
  c.max_error_text_bytes = 64;
  return c;
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

  rec.reset();
  parser.begin_stream(rec);
  // Pieces of 1-22 bytes, or of 23-150 (across the 64-byte blocks newlines are found in).
  const std::size_t step = size % 2 == 0 ? 1 + size % 22 : 23 + size % 128;
  for (std::size_t i = 0; i < size; i += step)
    (void)parser.feed_stream(input.substr(i, step), i + 1, rec);
  (void)parser.finish_stream(rec);
  check(rec);

  // Any chunking gives the same result: the same stream fed in one piece. (A line over
  // max_stream_line_bytes is dropped only when it has to be buffered across feeds: such
  // inputs are left out of the comparison.)
  std::size_t longest = 0;
  for (std::size_t at = 0; at < size;) {
    const std::size_t nl = input.find('\n', at);
    const std::size_t end = nl == std::string_view::npos ? size : nl;
    longest = std::max(longest, end - at);
    at = end + 1;
  }
  if (longest > small_config().max_stream_line_bytes) return 0;
  static GatewayRecord whole(small_config());
  whole.reset();
  parser.begin_stream(whole);
  (void)parser.feed_stream(input, 1, whole);
  (void)parser.finish_stream(whole);
  check(whole);
  const LlmRequest& a = rec.request();
  const LlmRequest& b = whole.request();
  if (a.completion != b.completion || a.finish_reason != b.finish_reason ||
      a.finish_reasons != b.finish_reasons || a.input_tokens != b.input_tokens ||
      a.output_tokens != b.output_tokens || a.response_id != b.response_id ||
      a.response_model != b.response_model || a.error != b.error ||
      a.error_message != b.error_message || rec.issues() != whole.issues())
    std::abort();
  return 0;
}
