#include "decompress.h"

#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cctype>
#include <new>

namespace tracecast::sink {

namespace {

[[nodiscard]] bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

[[nodiscard]] std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

constexpr std::size_t k_initial_out = 64 * 1024;

}  // namespace

content_encoding parse_content_encoding(std::string_view header) noexcept {
  header = trim(header);
  if (header.empty() || iequals(header, "identity")) return content_encoding::identity;
  if (iequals(header, "gzip") || iequals(header, "x-gzip")) return content_encoding::gzip;
  if (iequals(header, "deflate")) return content_encoding::deflate;
  if (iequals(header, "zstd")) return content_encoding::zstd;
  return content_encoding::unknown;
}

struct Decoder::impl {
  z_stream zs{};
  bool zs_ready = false;
  ZSTD_DCtx* zstd = nullptr;

  ~impl() {
    if (zs_ready) inflateEnd(&zs);
    ZSTD_freeDCtx(zstd);
  }
};

Decoder::Decoder() : impl_(std::make_unique<impl>()) {}
Decoder::~Decoder() = default;

decode_status Decoder::decode(content_encoding enc, std::string_view in, std::string& out,
                              std::size_t max_size, std::size_t padding) {
  error_.clear();
  if (enc == content_encoding::identity) {
    if (in.size() > max_size) return decode_status::too_large;
    out.resize(in.size() + padding);
    std::copy(in.begin(), in.end(), out.begin());
    return decode_status::ok;
  }
  // Grow geometrically; the spare `padding` bytes stay at the end.
  std::size_t produced = 0;
  auto ensure_room = [&]() -> bool {
    if (out.size() >= produced + padding + 1) return true;
    if (produced >= max_size) return false;
    std::size_t want = std::max<std::size_t>(k_initial_out, out.size() * 2);
    want = std::min(want, max_size + 1 + padding);
    out.resize(want);
    return true;
  };
  out.resize(std::max<std::size_t>(out.capacity(), k_initial_out));

  if (enc == content_encoding::gzip || enc == content_encoding::deflate) {
    z_stream& zs = impl_->zs;
    if (!impl_->zs_ready) {
      // 15 + 32: zlib or gzip header, detected automatically.
      if (inflateInit2(&zs, 15 + 32) != Z_OK) throw std::bad_alloc();
      impl_->zs_ready = true;
    } else {
      inflateReset(&zs);
    }
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    for (;;) {
      if (!ensure_room()) return decode_status::too_large;
      const std::size_t room = out.size() - padding - produced;
      zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
      zs.avail_out = static_cast<uInt>(std::min<std::size_t>(room, 1U << 30U));
      const uInt before = zs.avail_out;
      const int rc = inflate(&zs, Z_NO_FLUSH);
      produced += before - zs.avail_out;
      if (produced > max_size) return decode_status::too_large;
      if (rc == Z_STREAM_END) {
        if (zs.avail_in == 0) break;
        inflateReset(&zs);  // concatenated gzip members
        continue;
      }
      if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
        error_ = "truncated compressed body";
        return decode_status::corrupt;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        error_ = zs.msg != nullptr ? zs.msg : "inflate failed";
        return decode_status::corrupt;
      }
    }
  } else if (enc == content_encoding::zstd) {
    if (impl_->zstd == nullptr) {
      impl_->zstd = ZSTD_createDCtx();
      if (impl_->zstd == nullptr) throw std::bad_alloc();
    } else {
      ZSTD_DCtx_reset(impl_->zstd, ZSTD_reset_session_only);
    }
    ZSTD_inBuffer input{in.data(), in.size(), 0};
    std::size_t last = 1;
    while (input.pos < input.size || last != 0) {
      if (!ensure_room()) return decode_status::too_large;
      ZSTD_outBuffer output{out.data() + produced, out.size() - padding - produced, 0};
      last = ZSTD_decompressStream(impl_->zstd, &output, &input);
      if (ZSTD_isError(last) != 0U) {
        error_ = ZSTD_getErrorName(last);
        return decode_status::corrupt;
      }
      produced += output.pos;
      if (produced > max_size) return decode_status::too_large;
      if (input.pos == input.size && last != 0 && output.pos < output.size) {
        error_ = "truncated zstd frame";
        return decode_status::corrupt;
      }
    }
  } else {
    error_ = "unsupported Content-Encoding";
    return decode_status::corrupt;
  }
  out.resize(produced + padding);
  return decode_status::ok;
}

}  // namespace tracecast::sink
