// Test hooks of the gateway parsers (internal; tests and fuzzers only, never a gateway).
#pragma once

#include <cstdint>

namespace tracecast::detail {

// Whether stream events of the shapes the fast paths know (Anthropic block deltas, block
// starts of a text or thinking block, content_block_stop, message_stop, ping; OpenAI Responses
// text deltas; chat completion chunks of the common members, gateway.cpp fast_chat_event) are
// read by them (true, the
// default) or, like every other event, by the general simdjson walk (false).
// Both give the same record, issues and stats: the tests compare them. Process-wide (a relaxed
// atomic): set it before parsing, not while another thread parses. Does not allocate.
void set_stream_fast_path(bool on) noexcept;

// Stream events the calling thread has read by a fast path so far (the tests check that the
// shapes meant for it take it). Does not allocate.
[[nodiscard]] std::uint64_t stream_fast_events() noexcept;

}  // namespace tracecast::detail
