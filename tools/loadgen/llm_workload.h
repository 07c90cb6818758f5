// The reference workload (shared/WORKLOAD.md) as LlmRequests: the canonical request, its
// content variant, and the fan-out accounts. Deterministic per seed; iterating allocates
// nothing (every string lives in the generator). Used by the benchmarks, the end-to-end
// bench and the load simulator, so their figures compare.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "tracecast/llm_request.h"

namespace tracecast::workload {

inline constexpr std::size_t k_models = 50;
inline constexpr std::size_t k_users = 1000;
inline constexpr std::size_t k_accounts = 100;
// API key ids (LlmRequest::api_key_id) the requests are made with: key_0..key_7.
inline constexpr std::size_t k_api_keys = 8;

// ~1 KiB of JSON-like text with quotes, backslashes, newlines, a tab, non-ASCII letters and
// an emoji, so escaping and UTF-8 handling are on the measured path.
inline std::string content_text(std::string_view role, std::size_t target = 1024) {
  std::string out;
  const std::string_view piece =
      "{\"role\":\"ROLE\",\"content\":\"Analyse the \\\"quarterly\\\" report:\\n\\tpath C:\\\\data\\\\q3.csv "
      "— résumé für Zoë, naïve café 😀; line two\\nend\"}";
  while (out.size() < target) {
    std::string p(piece);
    p.replace(p.find("ROLE"), 4, role);
    out += p;
    out += '\n';
  }
  return out;
}

class Generator {
 public:
  struct Options {
    bool content = false;        // the content variant (prompt + completion ~1 KiB each)
    double error_rate = 0.01;    // 1 request in 100 fails
    std::uint64_t seed = 1;
  };

  explicit Generator(Options options) : opt_(options), rng_(options.seed * 0x9e3779b97f4a7c15ULL + 1) {
    static constexpr std::array<std::string_view, 10> vendors = {
        "openai", "anthropic", "google", "meta-llama", "mistralai",
        "qwen", "deepseek", "cohere", "x-ai", "amazon"};
    static constexpr std::array<std::string_view, 5> families = {"gpt-4o", "gpt-4-turbo", "large", "mini", "pro"};
    for (std::size_t i = 0; i < k_models; ++i) {
      const std::string vendor(vendors[i % vendors.size()]);
      models_[i] = vendor + "/" + std::string(families[(i / vendors.size()) % families.size()]) +
                   (i < vendors.size() ? "" : "-v" + std::to_string(i / vendors.size()));
      response_models_[i] = models_[i] + "-2024-08-06";
      providers_[i] = vendor;
    }
    for (std::size_t i = 0; i < k_users; ++i) users_[i] = "user_" + std::to_string(10000 + i);
    for (std::size_t i = 0; i < k_accounts; ++i) accounts_[i] = "acct_" + std::to_string(i);
    for (std::size_t i = 0; i < k_api_keys; ++i) api_keys_[i] = "key_" + std::to_string(i);
    prompt_ = content_text("user");
    completion_ = content_text("assistant");
    meta_[0] = {"environment", AttributeValue::string("production")};
    meta_[1] = {"trace_name", AttributeValue::string("Analysis Pipeline")};
  }

  // The next request. Views point into the generator and stay valid until the next call.
  const LlmRequest& next(std::uint64_t now_unix_nano = 1'700'000'000'000'000'000ULL) {
    const std::uint64_t x = step();
    const std::size_t model = x % k_models;
    static constexpr std::array<std::string_view, 3> reasons = {"stop", "length", "tool_calls"};
    std::snprintf(request_id_, sizeof request_id_, "gen-%010llu-%09llu",
                  static_cast<unsigned long long>(counter_ / 1000000000ULL % 10000000000ULL),
                  static_cast<unsigned long long>(counter_ % 1000000000ULL));
    ++counter_;
    LlmRequest& r = req_;
    r = LlmRequest{};
    r.account = accounts_[(x >> 8) % k_accounts];
    r.request_id = std::string_view(request_id_, 24);
    r.api_key_id = api_keys_[(x >> 52) % k_api_keys];
    r.operation = "chat";
    r.provider = providers_[model];
    r.requested_model = models_[model];
    r.response_model = response_models_[model];
    r.input_tokens = static_cast<std::int64_t>(10 + (x >> 16) % 19991);
    r.output_tokens = static_cast<std::int64_t>(1 + (x >> 32) % 4000);
    r.finish_reason = reasons[(x >> 40) % reasons.size()];
    r.cost = static_cast<double>(r.input_tokens) * 2.5e-6 + static_cast<double>(r.output_tokens) * 1e-5;
    r.user = users_[(x >> 20) % k_users];
    r.session_id = "session_abc";
    r.metadata = meta_;
    // Duration 200 ms .. 8 s (about 1 in 3.5 over 5 s, for the slow-request query).
    const std::uint64_t duration = 200'000'000ULL + (x >> 24) % 7'800'000'000ULL;
    r.end_unix_nano = now_unix_nano;
    r.start_unix_nano = now_unix_nano - duration;
    if (static_cast<double>((x >> 44) % 10000) < opt_.error_rate * 10000.0) {
      r.error = true;
      r.error_message = "upstream provider returned 502: Bad Gateway";
      r.http_status = 502;
    }
    if (opt_.content) {
      r.prompt = prompt_;
      r.completion = completion_;
    }
    return r;
  }

  [[nodiscard]] std::string_view account(std::size_t i) const { return accounts_[i % k_accounts]; }
  [[nodiscard]] std::string_view model(std::size_t i) const { return models_[i % k_models]; }
  [[nodiscard]] std::string_view api_key(std::size_t i) const { return api_keys_[i % k_api_keys]; }

 private:
  std::uint64_t step() {
    rng_ ^= rng_ << 13;
    rng_ ^= rng_ >> 7;
    rng_ ^= rng_ << 17;
    return rng_;
  }

  Options opt_;
  std::uint64_t rng_;
  std::uint64_t counter_ = 0;
  std::array<std::string, k_models> models_;
  std::array<std::string, k_models> response_models_;
  std::array<std::string, k_models> providers_;
  std::array<std::string, k_users> users_;
  std::array<std::string, k_accounts> accounts_;
  std::array<std::string, k_api_keys> api_keys_;
  std::string prompt_, completion_;
  MetadataEntry meta_[2];
  char request_id_[32] = {};
  LlmRequest req_;
};

}  // namespace tracecast::workload
