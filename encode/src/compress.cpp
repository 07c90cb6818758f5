#include "tracecast/compress.h"

#include <libdeflate.h>
#include <zlib.h>
// ZSTD_createCCtx_advanced (custom allocator hooks) is in the experimental section; the
// Debian shared library exports it, and we build against that exact version.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace tracecast {

std::string_view content_encoding(Codec codec) noexcept {
  switch (codec) {
    case Codec::gzip: return "gzip";
    case Codec::zstd: return "zstd";
    case Codec::none: break;
  }
  return "";
}

std::optional<Codec> parse_codec(std::string_view name) noexcept {
  auto iequals = [&](std::string_view want) noexcept {
    if (name.size() != want.size()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
      char c = name[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != want[i]) return false;
    }
    return true;
  };
  if (iequals("none")) return Codec::none;
  if (iequals("gzip")) return Codec::gzip;
  if (iequals("zstd")) return Codec::zstd;
  return std::nullopt;
}

struct Compressor::Impl {
  std::uint64_t allocations = 0;  // made by zstd / zlib through the hooks below
  ZSTD_CCtx* zstd = nullptr;
  libdeflate_compressor* deflate = nullptr;
  z_stream zlib{};
  bool zlib_ready = false;
  bool zstd_raw_literals = false;  // the mode the context is set to now

  ~Impl() {
    if (zstd != nullptr) ZSTD_freeCCtx(zstd);
    if (deflate != nullptr) libdeflate_free_compressor(deflate);
    if (zlib_ready) deflateEnd(&zlib);
  }

  static void* zstd_alloc(void* self, std::size_t n) noexcept {
    ++static_cast<Impl*>(self)->allocations;
    return std::malloc(n);
  }
  static void zstd_free(void*, void* p) noexcept { std::free(p); }
  static voidpf zlib_alloc(voidpf self, uInt items, uInt size) noexcept {
    ++static_cast<Impl*>(self)->allocations;
    return std::calloc(items, size);
  }
  static void zlib_free(voidpf, voidpf p) noexcept { std::free(p); }
};

Compressor::Compressor(Codec codec, int level, GzipBackend gzip_backend, std::size_t zstd_raw_literals_below)
    : codec_(codec),
      level_(level),
      gzip_backend_(gzip_backend),
      // Fast levels only: at higher ones matching dominates and the caller asked for ratio;
      // negative levels store literals raw anyway.
      zstd_raw_literals_below_(codec == Codec::zstd && level >= 0 && level <= 3 ? zstd_raw_literals_below : 0),
      impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  switch (codec) {
    case Codec::none:
      break;
    case Codec::gzip:
      if (gzip_backend == GzipBackend::libdeflate) {
        if (level < 0 || level > 12)
          throw std::invalid_argument("Compressor: gzip (libdeflate) level must be in [0, 12], got " +
                                      std::to_string(level));
        im.deflate = libdeflate_alloc_compressor(level);
        if (im.deflate == nullptr) throw std::bad_alloc();
      } else {
        if (level < 0 || level > 9)
          throw std::invalid_argument("Compressor: gzip (zlib) level must be in [0, 9], got " +
                                      std::to_string(level));
        im.zlib.zalloc = &Impl::zlib_alloc;
        im.zlib.zfree = &Impl::zlib_free;
        im.zlib.opaque = &im;
        // windowBits 15 + 16: a gzip wrapper; memLevel 8 is zlib's default.
        const int rc = deflateInit2(&im.zlib, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
        if (rc == Z_MEM_ERROR) throw std::bad_alloc();
        if (rc != Z_OK) throw std::invalid_argument("Compressor: deflateInit2 failed");
        im.zlib_ready = true;
      }
      break;
    case Codec::zstd: {
      if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
        throw std::invalid_argument("Compressor: zstd level must be in [" +
                                    std::to_string(ZSTD_minCLevel()) + ", " +
                                    std::to_string(ZSTD_maxCLevel()) + "], got " +
                                    std::to_string(level));
      const ZSTD_customMem mem{&Impl::zstd_alloc, &Impl::zstd_free, &im};
      im.zstd = ZSTD_createCCtx_advanced(mem);
      if (im.zstd == nullptr) throw std::bad_alloc();
      if (ZSTD_isError(ZSTD_CCtx_setParameter(im.zstd, ZSTD_c_compressionLevel, level)))
        throw std::invalid_argument("Compressor: zstd rejected the level");
      // No checksum (HTTP has its own integrity), content size in the frame header (default).
      break;
    }
    default:
      throw std::invalid_argument("Compressor: unknown codec");
  }
}

Compressor::~Compressor() = default;
Compressor::Compressor(Compressor&&) noexcept = default;
Compressor& Compressor::operator=(Compressor&&) noexcept = default;

std::uint64_t Compressor::library_allocations() const noexcept {
  return impl_ ? impl_->allocations : 0;
}

std::size_t Compressor::compress(std::string_view in, std::span<char> out) noexcept {
  if (!impl_) return 0;  // moved-from
  Impl& im = *impl_;
  switch (codec_) {
    case Codec::none:
      if (in.size() > out.size() || in.empty()) return 0;
      std::memcpy(out.data(), in.data(), in.size());
      return in.size();
    case Codec::gzip:
      if (im.deflate != nullptr)
        return libdeflate_gzip_compress(im.deflate, in.data(), in.size(), out.data(), out.size());
      {
        // zlib counts in uInt (32 bits): payloads are capped far below that (20 MiB).
        if (in.size() > 0xffffffffu || out.size() == 0) return 0;
        if (deflateReset(&im.zlib) != Z_OK) return 0;
        im.zlib.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        im.zlib.avail_in = static_cast<uInt>(in.size());
        im.zlib.next_out = reinterpret_cast<Bytef*>(out.data());
        im.zlib.avail_out = static_cast<uInt>(std::min<std::size_t>(out.size(), 0xffffffffu));
        if (deflate(&im.zlib, Z_FINISH) != Z_STREAM_END) return 0;
        return static_cast<std::size_t>(im.zlib.total_out);
      }
    case Codec::zstd: {
      // Sticky parameter: set only when the body size class changes (a few ns; the frame's
      // parameters are resolved per frame by ZSTD_compress2 anyway).
      const bool raw = in.size() < zstd_raw_literals_below_;
      if (raw != im.zstd_raw_literals) {
        if (ZSTD_isError(ZSTD_CCtx_setParameter(im.zstd, ZSTD_c_literalCompressionMode,
                                                raw ? ZSTD_ps_disable : ZSTD_ps_auto)))
          return 0;
        im.zstd_raw_literals = raw;
      }
      const std::size_t n = ZSTD_compress2(im.zstd, out.data(), out.size(), in.data(), in.size());
      if (ZSTD_isError(n)) {
        ZSTD_CCtx_reset(im.zstd, ZSTD_reset_session_only);
        return 0;
      }
      return n;
    }
  }
  return 0;
}

std::size_t Compressor::bound(Codec codec, std::size_t in_size) noexcept {
  switch (codec) {
    case Codec::none: return in_size;
    case Codec::gzip: {
      // The larger of libdeflate's bound (any compressor) and zlib's, plus the gzip wrapper.
      const std::size_t a = libdeflate_gzip_compress_bound(nullptr, in_size);
      const std::size_t b = static_cast<std::size_t>(compressBound(static_cast<uLong>(in_size))) + 18;
      return std::max(a, b);
    }
    case Codec::zstd: return ZSTD_compressBound(in_size);
  }
  return in_size;
}

}  // namespace tracecast
