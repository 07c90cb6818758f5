// Body decoding for tracecast-sink: Content-Encoding identity, gzip, deflate (zlib) and zstd,
// with a cap on the decoded size (decompression-bomb guard). Internal to the sink.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

namespace tracecast::sink {

enum class content_encoding { identity, gzip, deflate, zstd, unknown };

// Maps a Content-Encoding header value (case-insensitive; empty = identity).
// Thread-safe, no allocation.
[[nodiscard]] content_encoding parse_content_encoding(std::string_view header) noexcept;

enum class decode_status { ok, too_large, corrupt };

// One per thread (keeps its zlib/zstd contexts). Not thread-safe.
class Decoder {
 public:
  Decoder();
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Decodes `in` into `out` (resized to the decoded size plus `padding` spare bytes, so
  // out.size() - padding is the body length). Fails with too_large once the decoded size
  // would exceed `max_size`, and with corrupt for a stream that does not decode (error()
  // says why). Allocates only while `out` grows.
  [[nodiscard]] decode_status decode(content_encoding enc, std::string_view in, std::string& out,
                                     std::size_t max_size, std::size_t padding);
  [[nodiscard]] std::string_view error() const noexcept { return error_; }

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::string error_;
};

}  // namespace tracecast::sink
