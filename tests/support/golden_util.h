// Files the tests read from the source tree, and golden files (tests/golden/): one helper for
// every suite that compares output with a reviewed file.
#pragma once

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace tracecast::test {

// `rel` under the source tree: TRACECAST_SOURCE_DIR when ctest sets it, else the directory the
// test target was configured from (TRACECAST_TEST_SOURCE_DIR).
inline std::string source_path(const std::string& rel) {
  const char* src = std::getenv("TRACECAST_SOURCE_DIR");
  return std::string(src != nullptr ? src : TRACECAST_TEST_SOURCE_DIR) + "/" + rel;
}

// The bytes of `path`; a missing file fails the test (and yields "").
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The golden file tests/golden/<name>. TRACECAST_UPDATE_GOLDEN=1 first rewrites it from
// `actual` (then review the diff by hand before committing it).
inline std::string golden(const std::string& name, const std::string& actual) {
  const std::string path = source_path("tests/golden/" + name);
  if (std::getenv("TRACECAST_UPDATE_GOLDEN") != nullptr) std::ofstream(path, std::ios::binary) << actual;
  return read_file(path);
}

}  // namespace tracecast::test
