#include "topology.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace tracecast::load {

namespace {

constexpr std::array<std::string_view, 3> k_codecs = {"none", "gzip", "zstd"};

std::size_t codec_index(std::string_view c) {
  for (std::size_t i = 0; i < k_codecs.size(); ++i) {
    if (k_codecs[i] == c) return i;
  }
  return 1;  // gzip: what every OTLP server must accept
}

}  // namespace

std::vector<PlannedDestination> plan_fanout(std::size_t accounts, std::string_view compression) {
  std::vector<PlannedDestination> out;
  out.reserve(accounts * 3 / 2 + 3);
  const std::size_t first = codec_index(compression);
  for (std::size_t a = 0; a < accounts; ++a) {
    const std::size_t r = a % 10;
    const std::size_t n = r < 6 ? 1 : (r < 9 ? 2 : 3);
    for (std::size_t k = 0; k < n; ++k) {
      PlannedDestination d;
      d.account = "acct_" + std::to_string(a);
      d.name = d.account + "#" + std::to_string(k + 1);
      d.privacy_mode = out.size() % 5 == 4;
      d.compression = std::string(k_codecs[(first + k) % k_codecs.size()]);
      out.push_back(std::move(d));
    }
  }
  return out;
}

std::vector<PlannedDestination> plan_single(std::string_view compression) {
  PlannedDestination d;
  d.name = "all-accounts";
  d.compression = std::string(k_codecs[codec_index(compression)]);
  return {d};
}

bool parse_account_skew(std::string_view text, AccountSkew& out) {
  if (text == "uniform") {
    out = AccountSkew{};
    return true;
  }
  constexpr std::string_view prefix = "zipf:";
  if (text.substr(0, prefix.size()) != prefix) return false;
  double s = 0;
  if (!parse_number(text.substr(prefix.size()), s) || !(s > 0) || s > 10) return false;
  out = AccountSkew{AccountSkew::Kind::zipf, s};
  return true;
}

std::string to_string(const AccountSkew& skew) {
  if (skew.kind == AccountSkew::Kind::uniform) return "uniform";
  char buf[48];
  std::snprintf(buf, sizeof buf, "zipf:%g", skew.exponent);
  return buf;
}

AccountSampler::AccountSampler(std::size_t accounts, AccountSkew skew)
    : accounts_(std::max<std::size_t>(accounts, 1)), skew_(skew) {
  if (skew_.kind != AccountSkew::Kind::zipf) return;
  cdf_.resize(accounts_);
  double sum = 0;
  for (std::size_t k = 0; k < accounts_; ++k) {
    sum += std::pow(static_cast<double>(k + 1), -skew_.exponent);
    cdf_[k] = sum;
  }
  for (double& c : cdf_) c /= sum;
  cdf_.back() = 1.0;  // rounding must not leave a gap above the last account
}

std::size_t AccountSampler::sample(std::uint64_t random_bits) const noexcept {
  if (cdf_.empty()) {
    // Lemire's multiply-shift: an index in [0, accounts) from all 64 bits, no modulo bias
    // worth measuring (< accounts / 2^64).
    __extension__ using u128 = unsigned __int128;  // -Wpedantic: a GCC/Clang extension, on purpose
    return static_cast<std::size_t>((static_cast<u128>(random_bits) * accounts_) >> 64);
  }
  // A uniform double in [0, 1) from the top 53 bits; the first account whose cumulative
  // probability exceeds it.
  const double u = static_cast<double>(random_bits >> 11) * 0x1.0p-53;
  const auto it = std::upper_bound(cdf_.begin(), cdf_.end(), u);
  return std::min(static_cast<std::size_t>(it - cdf_.begin()), accounts_ - 1);
}

double AccountSampler::probability(std::size_t index) const noexcept {
  if (index >= accounts_) return 0;
  if (cdf_.empty()) return 1.0 / static_cast<double>(accounts_);
  return index == 0 ? cdf_[0] : cdf_[index] - cdf_[index - 1];
}

namespace {

// Why a value did not parse: malformed (not the form at all) or out of range (the form,
// but too large to represent or outside the limits). Shared by the bool and the _in forms.
enum class Parsed : std::uint8_t { ok, malformed, out_of_range };

Parsed number_of(std::string_view text, double& out) {
  // strtod alone would take leading blanks, hex and "inf"/"nan": digits and '.' only (an
  // exponent is allowed after them).
  if (text.empty() || !(std::isdigit(static_cast<unsigned char>(text[0])) != 0 || text[0] == '.')) {
    return Parsed::malformed;
  }
  if (text.find_first_of("xXpP") != std::string_view::npos) return Parsed::malformed;
  const std::string s(text);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return Parsed::malformed;
  if (errno == ERANGE || !std::isfinite(v)) return Parsed::out_of_range;
  out = v;
  return Parsed::ok;
}

Parsed duration_of(std::string_view text, std::chrono::milliseconds& out) {
  // The number ends where strtod stops (digits, fraction, exponent); the unit follows.
  if (text.empty() || !(std::isdigit(static_cast<unsigned char>(text[0])) != 0 || text[0] == '.')) {
    return Parsed::malformed;
  }
  const std::string s(text);
  char* end = nullptr;
  (void)std::strtod(s.c_str(), &end);
  const auto unit_at = static_cast<std::size_t>(end - s.c_str());
  const std::string_view unit = text.substr(unit_at);
  double v = 0;
  const Parsed p = number_of(text.substr(0, unit_at), v);
  if (p != Parsed::ok) return p;
  double ms = 0;
  if (unit.empty() || unit == "s") {
    ms = v * 1000;
  } else if (unit == "ms") {
    ms = v;
  } else if (unit == "m" || unit == "min") {
    ms = v * 60000;
  } else if (unit == "h") {
    ms = v * 3600000;
  } else {
    return Parsed::malformed;
  }
  if (!(ms >= 1) || ms > 1e12) return Parsed::out_of_range;
  out = std::chrono::milliseconds(static_cast<long long>(ms));
  return Parsed::ok;
}

Parsed count_of(std::string_view text, std::uint64_t& out) {
  std::size_t digits = 0;
  std::uint64_t v = 0;
  bool overflow = false;
  for (; digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])) != 0; ++digits) {
    const auto d = static_cast<std::uint64_t>(text[digits] - '0');
    if (v > (UINT64_MAX - d) / 10) overflow = true;
    if (!overflow) v = v * 10 + d;
  }
  if (digits == 0) return Parsed::malformed;
  const std::string_view unit = text.substr(digits);
  std::uint64_t mult = 1;
  if (unit == "k" || unit == "K") {
    mult = 1000;
  } else if (unit == "M" || unit == "m") {
    mult = 1000000;
  } else if (!unit.empty()) {
    return Parsed::malformed;
  }
  if (overflow || v > UINT64_MAX / mult) return Parsed::out_of_range;
  out = v * mult;
  return Parsed::ok;
}

std::string out_of_range(std::string_view text, const std::string& limits) {
  return std::string(text) + " is out of range (" + limits + ")";
}

}  // namespace

bool parse_number(std::string_view text, double& out) {
  double v = 0;
  if (number_of(text, v) != Parsed::ok || !(v >= 0)) return false;
  out = v;
  return true;
}

bool parse_duration(std::string_view text, std::chrono::milliseconds& out) {
  return duration_of(text, out) == Parsed::ok;
}

bool parse_count(std::string_view text, std::uint64_t& out) { return count_of(text, out) == Parsed::ok; }

// 'text' (appended, not "'" + std::string(...): GCC 12 at -O3 flags that with a false
// -Wrestrict, GCC PR 105329, an error in developer mode).
namespace {
std::string quoted(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.append(1, '\'').append(text).append(1, '\'');
  return out;
}
}  // namespace

std::string parse_count_in(std::string_view text, std::uint64_t min, std::uint64_t max, std::uint64_t& out) {
  std::uint64_t v = 0;
  const Parsed p = count_of(text, v);
  const std::string limits = "expects " + std::to_string(min) + ".." + std::to_string(max);
  if (p == Parsed::malformed) return quoted(text) + " is not a count: " + limits + " (digits, optional k or M suffix)";
  if (p == Parsed::out_of_range || v < min || v > max) return out_of_range(text, limits);
  out = v;
  return {};
}

std::string parse_duration_in(std::string_view text, std::chrono::milliseconds min, std::chrono::milliseconds max,
                              std::chrono::milliseconds& out) {
  std::chrono::milliseconds v{};
  const Parsed p = duration_of(text, v);
  const std::string limits =
      "expects " + std::to_string(min.count()) + " ms.." + std::to_string(max.count() / 3600000) + " h";
  if (p == Parsed::malformed) return quoted(text) + " is not a duration like 20s, 1500ms, 2m, 1h: " + limits;
  if (p == Parsed::out_of_range || v < min || v > max) return out_of_range(text, limits);
  out = v;
  return {};
}

std::string parse_number_in(std::string_view text, double min, double max, double& out) {
  double v = 0;
  const Parsed p = number_of(text, v);
  char buf[96];
  std::snprintf(buf, sizeof buf, "expects %g..%g", min, max);
  const std::string limits = buf;
  if (p == Parsed::malformed) return quoted(text) + " is not a number: " + limits;
  if (p == Parsed::out_of_range || !(v >= min) || v > max) return out_of_range(text, limits);
  out = v;
  return {};
}

std::string human(double v) {
  char buf[32];
  if (v >= 1e9) {
    std::snprintf(buf, sizeof buf, "%.2f G", v / 1e9);
  } else if (v >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f M", v / 1e6);
  } else if (v >= 1e4) {
    std::snprintf(buf, sizeof buf, "%.1f k", v / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  }
  return buf;
}

std::string human_bytes(double bytes) {
  char buf[32];
  if (bytes >= 1024.0 * 1024 * 1024) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
  } else if (bytes >= 1024.0 * 1024) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / (1024.0 * 1024));
  } else if (bytes >= 1024.0) {
    std::snprintf(buf, sizeof buf, "%.1f KiB", bytes / 1024.0);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  }
  return buf;
}

std::string human_ns(double ns) {
  char buf[32];
  if (ns >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.1f ms", ns / 1e6);
  } else if (ns >= 1e3) {
    std::snprintf(buf, sizeof buf, "%.1f us", ns / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f ns", ns);
  }
  return buf;
}

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

}  // namespace tracecast::load
