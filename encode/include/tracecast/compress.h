// Payload compression for sealed batches: gzip (libdeflate or zlib) and zstd, into caller-owned
// buffers, with contexts reused across calls (no allocation per batch in steady state).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

namespace tracecast {

enum class Codec : std::uint8_t { none, gzip, zstd };

// The HTTP Content-Encoding value for a codec: "", "gzip", "zstd" (none: send no header).
// Thread-safe, does not allocate.
[[nodiscard]] std::string_view content_encoding(Codec codec) noexcept;

// "none" / "gzip" / "zstd", case-insensitive; anything else: nullopt. Thread-safe, does not
// allocate.
[[nodiscard]] std::optional<Codec> parse_codec(std::string_view name) noexcept;

// Which library writes gzip. Both produce standard gzip (RFC 1952) that any server inflates.
// libdeflate is the default: it compresses a whole sealed batch at once and measured faster
// at every level we use (encode/README.md, "Compression").
enum class GzipBackend : std::uint8_t { libdeflate, zlib };

// One per thread (not thread-safe); movable. Construction allocates the codec context once;
// compress() then reuses it and does not allocate in steady state.
//
// Small bodies (zstd): a zstd frame pays a fixed cost for its entropy tables whatever its
// size; for a quiet destination's body of a few spans that is most of the work (measured, 1.4 KB
// of OTLP/JSON at level 1: 4.7 us, of which ~2.4 us is the literals' Huffman table). Below
// `zstd_raw_literals_below` input bytes, at levels 1..3 (and 0, zstd's default 3), a frame is
// written with its literals stored raw (ZSTD_c_literalCompressionMode = disable): a standard
// frame any zstd decoder reads, ~20-25% larger for these bodies (encode/README.md, "Small
// bodies"). Larger inputs and higher levels are compressed as before.
class Compressor {
 public:
  // Default for `zstd_raw_literals_below`, in input bytes: 16 KiB (~12 canonical spans of JSON).
  static constexpr std::size_t k_zstd_raw_literals_below = 16 * 1024;

  // Levels: none: ignored. gzip/libdeflate: 0..12 (0 = stored, 1 fastest, 6 default, 12 best).
  // gzip/zlib: 0..9. zstd: ZSTD_minCLevel()..ZSTD_maxCLevel() (negative = faster modes,
  // 0 = zstd's default 3). Throws std::invalid_argument for a level out of range and
  // std::bad_alloc when a context cannot be allocated. `zstd_raw_literals_below` (bytes of input;
  // 0 = never) applies to zstd only, see above.
  Compressor(Codec codec, int level, GzipBackend gzip_backend = GzipBackend::libdeflate,
             std::size_t zstd_raw_literals_below = k_zstd_raw_literals_below);
  ~Compressor();
  Compressor(Compressor&&) noexcept;
  Compressor& operator=(Compressor&&) noexcept;
  Compressor(const Compressor&) = delete;
  Compressor& operator=(const Compressor&) = delete;

  // Compresses `in` (a whole payload, one gzip member / one zstd frame) into caller-owned
  // `out`. Returns the bytes written, or 0 when `out` is too small (size it with bound()) or
  // the library failed; never writes past out.size(). Codec::none copies (and returns 0 for
  // an empty input; the encoder never produces one). Not thread-safe;
  // does not allocate in steady state (zstd may resize its context when the input size
  // class changes a lot; see library_allocations()).
  [[nodiscard]] std::size_t compress(std::string_view in, std::span<char> out) noexcept;

  // Worst-case compressed size of `in_size` bytes for any level and gzip backend.
  // Thread-safe, does not allocate.
  [[nodiscard]] static std::size_t bound(Codec codec, std::size_t in_size) noexcept;

  [[nodiscard]] Codec codec() const noexcept { return codec_; }
  [[nodiscard]] int level() const noexcept { return level_; }
  [[nodiscard]] GzipBackend gzip_backend() const noexcept { return gzip_backend_; }

  // Heap allocations the codec library made for this compressor since construction, counted
  // through its custom allocator hooks (zstd, zlib); libdeflate allocates once, at
  // construction. For tests asserting steady state. Not thread-safe, does not allocate.
  [[nodiscard]] std::uint64_t library_allocations() const noexcept;

 private:
  struct Impl;
  Codec codec_;
  int level_;
  GzipBackend gzip_backend_;
  std::size_t zstd_raw_literals_below_;  // 0 when the level is not a fast one (see above)
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracecast
