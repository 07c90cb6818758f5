// Helpers shared by the sender tests (sender_test, sender_sink_test).
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>
#include <thread>
#include <vector>

#include "tracecast/sender.h"

namespace tracecast::test {

// A SendRequest of one item carrying `body` (which must outlive the request's completion).
inline SendRequest send_request(std::uint32_t dest, std::uint64_t tag, std::string_view body,
                                std::string_view encoding = "") {
  SendRequest r;
  r.destination = dest;
  r.tag = tag;
  r.body = body.data();
  r.size = body.size();
  r.content_encoding = encoding;
  r.items = 1;
  return r;
}

// Pops completions until `n` arrived or `limit` passed (bounded: a test never hangs).
inline std::vector<Completion> wait_for(Sender& sender, std::size_t n,
                                        std::chrono::milliseconds limit = std::chrono::milliseconds(30000)) {
  std::vector<Completion> out;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    if (sender.poll_completions([&out](const Completion& c) { out.push_back(c); }, 1024) == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return out;
}

}  // namespace tracecast::test
