// Destinations of the simulated gateway, per WORKLOAD.md "Fan-out": A accounts, each with
// 1 to 3 destinations (mean 1.5), one destination in five in privacy mode; or one
// destination for every account. Also the small parsing/formatting helpers both the load
// tool and the end-to-end bench use.
//
// Part of the load-generation library (tools/loadgen, target tracecast_loadgen) that
// tracecast-load and the end-to-end benchmark share.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tracecast::load {

struct PlannedDestination {
  std::string account;      // "" = every account
  std::string name;         // "acct_7#2": stats label, never a credential
  bool privacy_mode = false;
  std::string compression;  // "none", "gzip" or "zstd"
};

// Destinations per account i: 1 when i % 10 < 6, 2 when i % 10 is 6..8, 3 when it is 9
// (mean exactly 1.5 over every 10 accounts); the destination made fifth, tenth, ... is in
// privacy mode (one in five). An account's first destination uses `compression`, its
// second and third the next codecs in the cycle none -> gzip -> zstd, so all three paths
// run. Deterministic. Thread-safe (pure). Allocates.
[[nodiscard]] std::vector<PlannedDestination> plan_fanout(std::size_t accounts, std::string_view compression);

// One destination for every account.
[[nodiscard]] std::vector<PlannedDestination> plan_single(std::string_view compression);

// How requests are spread over accounts (WORKLOAD.md "Gateway scale"): uniformly, or Zipf
// with exponent s > 0 (account of rank k, 0-based, drawn with probability proportional to
// 1 / (k + 1)^s: a few large accounts and a long tail). Rank k is account acct_k.
struct AccountSkew {
  enum class Kind : std::uint8_t { uniform, zipf };
  Kind kind = Kind::uniform;
  double exponent = 0;  // zipf only: 0 < s <= 10
};
// "uniform" or "zipf:S" (e.g. "zipf:1.1"). false on anything else. Pure.
[[nodiscard]] bool parse_account_skew(std::string_view text, AccountSkew& out);
// The form parse_account_skew reads back: "uniform", "zipf:1.1". Allocates.
[[nodiscard]] std::string to_string(const AccountSkew& skew);

// Draws account indexes 0..accounts-1 per an AccountSkew. The Zipf table (one cumulative
// probability per account, 8 bytes each) is computed once at construction; sample() is a
// binary search over it (O(log accounts), ~17 steps at 100,000), uniform a multiply.
// Immutable after construction: share one among threads, each with its own random state.
class AccountSampler {
 public:
  // accounts >= 1 (0 is treated as 1). Allocates (the Zipf table).
  AccountSampler(std::size_t accounts, AccountSkew skew);

  // The account for 64 random bits (all bits used). Thread-safe. No allocation.
  [[nodiscard]] std::size_t sample(std::uint64_t random_bits) const noexcept;
  // The exact probability of account `index` (0 outside the range). Thread-safe. No allocation.
  [[nodiscard]] double probability(std::size_t index) const noexcept;
  [[nodiscard]] std::size_t accounts() const noexcept { return accounts_; }
  [[nodiscard]] const AccountSkew& skew() const noexcept { return skew_; }

 private:
  std::size_t accounts_;
  AccountSkew skew_;
  std::vector<double> cdf_;  // zipf: cdf_[k] = P(index <= k), cdf_.back() == 1; uniform: empty
};

// splitmix64: a stateful 64-bit generator for samplers (good bits in every position, unlike
// a bare xorshift's low bits). Deterministic per seed. Not thread-safe (one per thread).
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) noexcept : state_(seed) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  std::uint64_t state_;
};

// "20s", "1500ms", "2m", "1h", "3" (seconds): digits with an optional fraction, then a unit.
// false on anything else, below 1 ms or above 1e12 ms. Pure.
[[nodiscard]] bool parse_duration(std::string_view text, std::chrono::milliseconds& out);
// Unsigned decimal digits, optional k/M suffix (x1000 / x1e6). false on anything else and on
// a value (suffix applied) above UINT64_MAX: it never wraps. Pure.
[[nodiscard]] bool parse_count(std::string_view text, std::uint64_t& out);
// Non-negative decimal number (digits, optional fraction and exponent; no "inf", "nan", hex
// or leading blanks); false when it overflows a double. Pure.
[[nodiscard]] bool parse_number(std::string_view text, double& out);

// The same with limits, for command-line flags: "" when `text` parses and lies in
// [min, max] (then out is set), else why not, naming the value and the limits
// ("18446744073709552k is out of range (expects 1..1000)"), for the caller to prefix with
// the flag. Pure. Allocate.
[[nodiscard]] std::string parse_count_in(std::string_view text, std::uint64_t min, std::uint64_t max,
                                         std::uint64_t& out);
[[nodiscard]] std::string parse_duration_in(std::string_view text, std::chrono::milliseconds min,
                                            std::chrono::milliseconds max, std::chrono::milliseconds& out);
[[nodiscard]] std::string parse_number_in(std::string_view text, double min, double max, double& out);

// "1.23 M", "456.7 k", "12": for rates and counts in progress lines. Allocates.
[[nodiscard]] std::string human(double v);
// "12.3 MiB". Allocates.
[[nodiscard]] std::string human_bytes(double bytes);
// "95 ns", "1.2 us", "3.4 ms". Allocates.
[[nodiscard]] std::string human_ns(double ns);
// JSON string literal (quotes, backslashes, control characters escaped). Allocates.
[[nodiscard]] std::string json_quote(std::string_view s);

}  // namespace tracecast::load
