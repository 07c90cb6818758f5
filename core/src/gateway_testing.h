// Test hooks of the gateway parsers (internal; tests and fuzzers only, never a gateway).
#pragma once

namespace tracecast::detail {

// Whether stream events of the fixed layouts the fast path knows (Anthropic block deltas,
// block starts of a text or thinking block, content_block_stop, message_stop, ping) are read
// by it (true, the default) or, like every other event, by the general simdjson walk (false).
// Both give the same record, issues and stats: the tests compare them. Process-wide (a relaxed
// atomic): set it before parsing, not while another thread parses. Does not allocate.
void set_stream_fast_path(bool on) noexcept;

}  // namespace tracecast::detail
