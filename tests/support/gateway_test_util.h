// Lookups the gateway tests share: a request's metadata entry, a span's attribute, and the
// test bodies under tests/data/gateway.
#pragma once

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

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
