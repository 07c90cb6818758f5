// Destinations of the simulated gateway, per WORKLOAD.md "Fan-out": A accounts, each with
// 1 to 3 destinations (mean 1.5), one destination in five in privacy mode; or one
// destination for every account. Also the small parsing/formatting helpers both the load
// tool and the end-to-end bench use.
//
// Internal to tools/ and bench/ (target tracecast_load_support).
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

// "20s", "1500ms", "2m", "3" (seconds). false on anything else or <= 0. Pure.
[[nodiscard]] bool parse_duration(std::string_view text, std::chrono::milliseconds& out);
// Unsigned decimal, optional k/M suffix (x1000 / x1e6). Pure.
[[nodiscard]] bool parse_count(std::string_view text, std::uint64_t& out);
// Non-negative decimal number. Pure.
[[nodiscard]] bool parse_number(std::string_view text, double& out);

// "1.23 M", "456.7 k", "12": for rates and counts in progress lines. Allocates.
[[nodiscard]] std::string human(double v);
// "12.3 MiB". Allocates.
[[nodiscard]] std::string human_bytes(double bytes);
// "95 ns", "1.2 us", "3.4 ms". Allocates.
[[nodiscard]] std::string human_ns(double ns);
// JSON string literal (quotes, backslashes, control characters escaped). Allocates.
[[nodiscard]] std::string json_quote(std::string_view s);
// scheme://host[:port]/path of a URL without user info, query or fragment (which may carry
// a token). Allocates.
[[nodiscard]] std::string display_url(std::string_view url);

}  // namespace tracecast::load
