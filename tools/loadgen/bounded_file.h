// The one reader of the files the tools are given (key, header, field and basic-auth files,
// the sink's port file): every read is bounded, so `--api-key-file /dev/zero` or a FIFO that
// never ends stops at the limit with an error instead of growing without end. Header-only
// (target tracecast_tool_files), so the sink, which links no tracecast library, uses it too.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <string>

namespace tracecast::tools {

// A secret file (a key, a USER:PASS pair, a header or field list): the library's config loader
// stops its secret files at the same size.
inline constexpr std::size_t k_max_secret_file_bytes = 64u << 10;

// Reads `path` into `out` (cleared first), reading at most `max_bytes` + 1 bytes whatever the
// file is (a regular file, a device, a FIFO). Returns "" on success, else the reason, never the
// content: "cannot read: <strerror>" or "larger than <max_bytes> bytes". The caller names the
// flag. Not thread-safe on `out`; allocates at most max_bytes + 1 bytes.
[[nodiscard]] inline std::string read_bounded_file(const std::string& path, std::size_t max_bytes, std::string& out) {
  out.clear();
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::string("cannot read: ") + std::strerror(errno);
  char chunk[4096];
  while (in) {
    in.read(chunk, static_cast<std::streamsize>(sizeof chunk));
    const auto got = static_cast<std::size_t>(in.gcount());
    if (got > max_bytes - out.size()) {
      out.clear();
      return "larger than " + std::to_string(max_bytes) + " bytes";
    }
    out.append(chunk, got);
  }
  if (in.bad()) {
    out.clear();
    return "cannot read: read failed";
  }
  return {};
}

}  // namespace tracecast::tools
