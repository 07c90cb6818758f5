// Lookups the gateway tests share: a request's metadata entry, a span's attribute, a stream
// fed in pieces, and the test bodies under tests/data/gateway.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "tracecast/gateway.h"
#include "tracecast/llm_request.h"
#include "tracecast/span.h"

namespace tracecast::test {

inline const MetadataEntry* find_meta(const LlmRequest& r, std::string_view key) {
  for (const auto& e : r.metadata)
    if (e.key == key) return &e;
  return nullptr;
}

// The string value of metadata `key`, or "<missing>" (absent or not a string).
inline std::string_view meta_string(const LlmRequest& r, std::string_view key) {
  const MetadataEntry* e = find_meta(r, key);
  if (e == nullptr || e->value.type() != ValueType::string) return "<missing>";
  return e->value.as_string();
}

// Begins a stream on rec, feeds sse one piece of `step` bytes at a time (the feed's time is its
// offset + 1 ns) and finishes it; returns the issues of every call. Allocates nothing itself.
inline std::uint32_t stream_into(GatewayParser& parser, GatewayRecord& rec, std::string_view sse, std::size_t step) {
  parser.begin_stream(rec);
  std::uint32_t bits = 0;
  for (std::size_t i = 0; i < sse.size(); i += step) bits |= parser.feed_stream(sse.substr(i, step), 1 + i, rec).issues;
  return bits | parser.finish_stream(rec).issues;
}

// The same into a fresh record; returns the record, and the issues in `issues` when given.
inline std::unique_ptr<GatewayRecord> stream(GatewayParser& parser, std::string_view sse, std::size_t step,
                                             std::uint32_t* issues = nullptr) {
  auto rec = std::make_unique<GatewayRecord>();
  const std::uint32_t bits = stream_into(parser, *rec, sse, step);
  if (issues != nullptr) *issues = bits;
  return rec;
}

inline const Attribute* find_attr(const SpanView& s, std::string_view key) {
  for (const auto& a : s.attributes)
    if (a.key == key) return &a;
  return nullptr;
}

#ifdef TRACECAST_TEST_SOURCE_DIR
// A file of tests/data/gateway (TRACECAST_SOURCE_DIR overrides the source tree's path).
inline std::string read_data(const std::string& name) {
  const char* root = std::getenv("TRACECAST_SOURCE_DIR");
  const std::string dir = std::string(root != nullptr ? root : TRACECAST_TEST_SOURCE_DIR) + "/tests/data/gateway/";
  std::ifstream in(dir + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << "missing test data " << dir + name;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
#endif

}  // namespace tracecast::test
