// Compressor: round trips through the real decompressors (zlib, libdeflate, zstd), level
// validation, Content-Encoding names, bounds, and no allocation per call in steady state.
#include "tracecast/compress.h"

#include <gtest/gtest.h>
#include <libdeflate.h>
#include <zlib.h>
#include <zstd.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "alloc_counter.h"
#include "tracecast/otlp_json.h"
#include "workload.h"

namespace tracecast {
namespace {

// A sealed batch of canonical spans, as the pipeline compresses it.
std::string canonical_batch(std::size_t budget = 256 * 1024, bool content = false) {
  workload::SpanGenerator gen(5, content);
  workload::SpanRequest req;
  std::vector<char> buffer(budget);
  OtlpJsonEncoder enc;
  enc.begin(buffer, budget);
  for (;;) {
    gen.next(req);
    if (enc.append(req.resource(), req.scope(), req.spans()) != append_result::ok) break;
  }
  return std::string(enc.finish());
}

std::string gunzip_zlib(std::string_view in, std::size_t expected) {
  std::string out(expected + 16, '\0');
  z_stream s{};
  EXPECT_EQ(inflateInit2(&s, 15 + 16), Z_OK);  // gzip wrapper only
  s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  s.avail_in = static_cast<uInt>(in.size());
  s.next_out = reinterpret_cast<Bytef*>(out.data());
  s.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(inflate(&s, Z_FINISH), Z_STREAM_END);
  out.resize(s.total_out);
  EXPECT_EQ(s.avail_in, 0u);  // one member, nothing trailing
  inflateEnd(&s);
  return out;
}

std::string gunzip_libdeflate(std::string_view in, std::size_t expected) {
  std::string out(expected, '\0');
  libdeflate_decompressor* d = libdeflate_alloc_decompressor();
  std::size_t n = 0;
  EXPECT_EQ(libdeflate_gzip_decompress(d, in.data(), in.size(), out.data(), out.size(), &n),
            LIBDEFLATE_SUCCESS);
  libdeflate_free_decompressor(d);
  out.resize(n);
  return out;
}

std::string unzstd(std::string_view in) {
  const unsigned long long size = ZSTD_getFrameContentSize(in.data(), in.size());
  EXPECT_NE(size, ZSTD_CONTENTSIZE_UNKNOWN);
  EXPECT_NE(size, ZSTD_CONTENTSIZE_ERROR);
  std::string out(static_cast<std::size_t>(size), '\0');
  const std::size_t n = ZSTD_decompress(out.data(), out.size(), in.data(), in.size());
  EXPECT_FALSE(ZSTD_isError(n)) << ZSTD_getErrorName(n);
  out.resize(n);
  return out;
}

struct Case {
  Codec codec;
  int level;
  GzipBackend backend;
};

TEST(Compressor, RoundTripsThroughTheRealDecompressors) {
  const std::string batch = canonical_batch();
  const std::string content = canonical_batch(256 * 1024, true);
  const Case cases[] = {{Codec::gzip, 1, GzipBackend::libdeflate}, {Codec::gzip, 6, GzipBackend::libdeflate},
                        {Codec::gzip, 12, GzipBackend::libdeflate}, {Codec::gzip, 0, GzipBackend::libdeflate},
                        {Codec::gzip, 1, GzipBackend::zlib}, {Codec::gzip, 9, GzipBackend::zlib},
                        {Codec::zstd, 1, GzipBackend::libdeflate}, {Codec::zstd, 3, GzipBackend::libdeflate},
                        {Codec::zstd, -5, GzipBackend::libdeflate}, {Codec::zstd, 19, GzipBackend::libdeflate}};
  for (const Case& c : cases) {
    Compressor comp(c.codec, c.level, c.backend);
    for (const std::string* in : {&batch, &content}) {
      std::vector<char> out(Compressor::bound(c.codec, in->size()));
      const std::size_t n = comp.compress(*in, out);
      ASSERT_GT(n, 0u) << int(c.codec) << " level " << c.level;
      const std::string_view z(out.data(), n);
      if (c.codec == Codec::gzip) {
        EXPECT_EQ(gunzip_zlib(z, in->size()), *in);
        EXPECT_EQ(gunzip_libdeflate(z, in->size()), *in);
        if (c.level >= 1) {
          EXPECT_LT(n, in->size() / 3);  // JSON spans compress well
        }
      } else {
        EXPECT_EQ(unzstd(z), *in);
        EXPECT_LT(n, in->size() / 3);
      }
    }
  }
}

TEST(Compressor, IncompressibleInputFitsTheBound) {
  workload::Rng rng(9);
  std::string noise(100000, '\0');
  for (char& ch : noise) ch = static_cast<char>(rng.next());
  for (Codec codec : {Codec::none, Codec::gzip, Codec::zstd}) {
    for (GzipBackend backend : {GzipBackend::libdeflate, GzipBackend::zlib}) {
      Compressor comp(codec, codec == Codec::zstd ? 3 : 6, backend);
      std::vector<char> out(Compressor::bound(codec, noise.size()));
      const std::size_t n = comp.compress(noise, out);
      ASSERT_GT(n, 0u);
      if (codec == Codec::gzip) { EXPECT_EQ(gunzip_zlib({out.data(), n}, noise.size()), noise); }
      if (codec == Codec::zstd) { EXPECT_EQ(unzstd({out.data(), n}), noise); }
      if (codec == Codec::none) { EXPECT_EQ(std::string(out.data(), n), noise); }
    }
  }
}

TEST(Compressor, ReturnsZeroWhenTheOutputIsTooSmallAndNeverWritesPastIt) {
  const std::string batch = canonical_batch(64 * 1024);
  for (Codec codec : {Codec::none, Codec::gzip, Codec::zstd}) {
    for (GzipBackend backend : {GzipBackend::libdeflate, GzipBackend::zlib}) {
      Compressor comp(codec, 1, backend);
      std::vector<char> guard(200, 'G');
      EXPECT_EQ(comp.compress(batch, std::span<char>(guard).first(100)), 0u);
      for (std::size_t i = 100; i < guard.size(); ++i) ASSERT_EQ(guard[i], 'G');
      // Usable again after a failure.
      std::vector<char> out(Compressor::bound(codec, batch.size()));
      EXPECT_GT(comp.compress(batch, out), 0u);
    }
  }
}

TEST(Compressor, RejectsLevelsOutOfRange) {
  EXPECT_THROW(Compressor(Codec::gzip, 13), std::invalid_argument);
  EXPECT_THROW(Compressor(Codec::gzip, -1), std::invalid_argument);
  EXPECT_THROW(Compressor(Codec::gzip, 10, GzipBackend::zlib), std::invalid_argument);
  EXPECT_THROW(Compressor(Codec::zstd, ZSTD_maxCLevel() + 1), std::invalid_argument);
  EXPECT_NO_THROW(Compressor(Codec::none, 99));
  EXPECT_NO_THROW(Compressor(Codec::zstd, -1));
}

TEST(Compressor, NamesMatchContentEncoding) {
  EXPECT_EQ(content_encoding(Codec::none), "");
  EXPECT_EQ(content_encoding(Codec::gzip), "gzip");
  EXPECT_EQ(content_encoding(Codec::zstd), "zstd");
  EXPECT_EQ(parse_codec("GZip"), Codec::gzip);
  EXPECT_EQ(parse_codec("zstd"), Codec::zstd);
  EXPECT_EQ(parse_codec("NONE"), Codec::none);
  EXPECT_EQ(parse_codec("br"), std::nullopt);
  EXPECT_EQ(parse_codec(""), std::nullopt);
  EXPECT_EQ(parse_codec("gzip "), std::nullopt);
}

TEST(Compressor, SteadyStateAllocatesNothing) {
  const std::string batch = canonical_batch();
  const std::string smaller = canonical_batch(200 * 1024);
  const Case cases[] = {{Codec::gzip, 1, GzipBackend::libdeflate}, {Codec::gzip, 1, GzipBackend::zlib},
                        {Codec::zstd, 1, GzipBackend::libdeflate}, {Codec::zstd, 3, GzipBackend::libdeflate},
                        {Codec::none, 0, GzipBackend::libdeflate}};
  for (const Case& c : cases) {
    Compressor comp(c.codec, c.level, c.backend);
    std::vector<char> out(Compressor::bound(c.codec, batch.size()));
    ASSERT_GT(comp.compress(batch, out), 0u);  // warm-up
    ASSERT_GT(comp.compress(smaller, out), 0u);
    const std::uint64_t lib_before = comp.library_allocations();
    test::AllocationScope scope;
    for (int i = 0; i < 8; ++i) {
      ASSERT_GT(comp.compress(i % 2 ? batch : smaller, out), 0u);
    }
    EXPECT_EQ(scope.count(), 0u) << int(c.codec);
    EXPECT_EQ(comp.library_allocations(), lib_before) << int(c.codec);
  }
}

// A quiet destination's body (a few spans, under 16 KiB) is written with raw literals at the
// fast levels: a standard frame, larger than with Huffman-coded literals, and the context
// switches back for a large body without allocating.
TEST(Compressor, SmallZstdBodiesStoreLiteralsRawAndStayStandard) {
  const std::string small = canonical_batch(4 * 1024);
  const std::string large = canonical_batch();
  ASSERT_LT(small.size(), Compressor::k_zstd_raw_literals_below);
  ASSERT_GE(large.size(), Compressor::k_zstd_raw_literals_below);
  Compressor fast(Codec::zstd, 1);
  Compressor huffman(Codec::zstd, 1, GzipBackend::libdeflate, 0);
  std::vector<char> out(Compressor::bound(Codec::zstd, large.size()));
  std::vector<char> out_huffman(out.size());

  const std::size_t n_small = fast.compress(small, out);
  ASSERT_GT(n_small, 0u);
  EXPECT_EQ(unzstd({out.data(), n_small}), small);
  const std::size_t n_small_huffman = huffman.compress(small, out_huffman);
  ASSERT_GT(n_small_huffman, 0u);
  EXPECT_GT(n_small, n_small_huffman);       // literals raw: larger
  EXPECT_LT(n_small, small.size() * 2 / 3);  // still compressed (matches)

  // At or above the threshold, and at levels above 3, the output is the Huffman path's.
  const std::size_t n_large = fast.compress(large, out);
  ASSERT_GT(n_large, 0u);
  EXPECT_EQ(unzstd({out.data(), n_large}), large);
  EXPECT_EQ(huffman.compress(large, out_huffman), n_large);
  EXPECT_EQ(std::string_view(out.data(), n_large), std::string_view(out_huffman.data(), n_large));
  Compressor level9(Codec::zstd, 9);
  Compressor level9_huffman(Codec::zstd, 9, GzipBackend::libdeflate, 0);
  EXPECT_EQ(level9.compress(small, out), level9_huffman.compress(small, out_huffman));

  // Alternating sizes makes zstd allocate nothing once both have been seen.
  ASSERT_GT(fast.compress(small, out), 0u);
  const std::uint64_t lib_before = fast.library_allocations();
  for (int i = 0; i < 8; ++i) {
    const std::string& in = i % 2 ? large : small;
    const std::size_t n = fast.compress(in, out);
    ASSERT_GT(n, 0u);
    EXPECT_EQ(unzstd({out.data(), n}), in);
  }
  EXPECT_EQ(fast.library_allocations(), lib_before);
}

TEST(Compressor, MovedCompressorKeepsWorking) {
  const std::string batch = canonical_batch(32 * 1024);
  Compressor a(Codec::zstd, 1);
  Compressor b = std::move(a);
  std::vector<char> out(Compressor::bound(Codec::zstd, batch.size()));
  const std::size_t n = b.compress(batch, out);
  ASSERT_GT(n, 0u);
  EXPECT_EQ(unzstd({out.data(), n}), batch);
  EXPECT_EQ(b.codec(), Codec::zstd);
}

}  // namespace
}  // namespace tracecast
