// The reference workload (/work/shared/WORKLOAD.md) as span views and as an LlmRequest:
// deterministic (seeded splitmix64), header-only, and allocation-free to iterate (the
// SpanGenerator allocates its content texts once, at construction).
//
//   tracecast::workload::SpanGenerator gen(/*seed=*/42, /*content=*/true);
//   tracecast::workload::SpanRequest req;
//   gen.next(req);                       // no allocation
//   encoder.append(req.resource(), req.scope(), req.spans());
//   LlmRequest llm = req.llm_request();  // the same request for the gateway-facing API
//
// A SpanRequest holds the bytes its views point at: do not move or copy it while views are used
// (copying is deleted for that reason).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>

#include "tracecast/llm_request.h"
#include "tracecast/span.h"

namespace tracecast::workload {

inline constexpr std::string_view k_service_name = "openrouter";
inline constexpr std::string_view k_service_version = "1.0.0";
inline constexpr std::string_view k_scope_name = "tracecast";
inline constexpr std::string_view k_scope_version = "0.1.0";
inline constexpr std::uint64_t k_base_unix_nano = 1'760'000'000'000'000'000ull;  // Oct 2025

// 50 model names, as the gateway sees them.
inline constexpr std::array<std::string_view, 50> k_model_names = {
    "openai/gpt-4o", "openai/gpt-4o-mini", "openai/gpt-4-turbo", "openai/gpt-4.1",
    "openai/gpt-4.1-mini", "openai/o1", "openai/o1-mini", "openai/o3", "openai/o3-mini",
    "openai/o4-mini", "anthropic/claude-3.5-sonnet", "anthropic/claude-3.5-haiku",
    "anthropic/claude-3-opus", "anthropic/claude-3.7-sonnet", "anthropic/claude-sonnet-4",
    "anthropic/claude-opus-4", "google/gemini-2.0-flash", "google/gemini-2.5-pro",
    "google/gemini-2.5-flash", "google/gemini-1.5-pro", "google/gemma-3-27b-it",
    "meta-llama/llama-3.1-8b-instruct", "meta-llama/llama-3.1-70b-instruct",
    "meta-llama/llama-3.1-405b-instruct", "meta-llama/llama-3.3-70b-instruct",
    "meta-llama/llama-4-maverick", "meta-llama/llama-4-scout", "mistralai/mistral-large",
    "mistralai/mistral-small", "mistralai/mixtral-8x7b-instruct", "mistralai/codestral",
    "mistralai/ministral-8b", "deepseek/deepseek-chat", "deepseek/deepseek-r1",
    "deepseek/deepseek-v3", "qwen/qwen-2.5-72b-instruct", "qwen/qwen3-235b-a22b",
    "qwen/qwen-2.5-coder-32b", "x-ai/grok-2", "x-ai/grok-3", "x-ai/grok-3-mini",
    "cohere/command-r-plus", "cohere/command-r", "amazon/nova-pro", "amazon/nova-lite",
    "microsoft/phi-4", "nvidia/llama-3.1-nemotron-70b", "perplexity/sonar",
    "perplexity/sonar-pro", "moonshotai/kimi-k2"};

inline constexpr std::array<std::string_view, 3> k_finish_reasons = {"stop", "length",
                                                                     "tool_calls"};

// splitmix64: tiny, seeded, good enough for workload shapes.
class Rng {
 public:
  explicit constexpr Rng(std::uint64_t seed) noexcept : s_(seed) {}
  constexpr std::uint64_t next() noexcept {
    std::uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [lo, hi].
  constexpr std::uint64_t between(std::uint64_t lo, std::uint64_t hi) noexcept {
    return lo + next() % (hi - lo + 1);
  }

 private:
  std::uint64_t s_;
};

// One canonical gateway request: its resource, scope and one CLIENT span (plus the content
// attributes in the content variant), with the bytes the views point at.
struct SpanRequest {
  SpanRequest() = default;
  SpanRequest(const SpanRequest&) = delete;
  SpanRequest& operator=(const SpanRequest&) = delete;

  [[nodiscard]] ResourceView resource() const noexcept {
    return ResourceView{std::span<const Attribute>(resource_attrs)};
  }
  [[nodiscard]] ScopeView scope() const noexcept { return ScopeView{k_scope_name, k_scope_version}; }
  [[nodiscard]] std::span<const SpanView> spans() const noexcept { return {&span, 1}; }

  // The same request as the gateway-facing LlmRequest (views into this SpanRequest).
  [[nodiscard]] LlmRequest llm_request() const noexcept {
    LlmRequest r;
    r.account = account;
    r.request_id = std::string_view(request_id, sizeof request_id);
    r.operation = "chat";
    r.provider = provider;
    r.requested_model = model;
    r.response_model = std::string_view(response_model, response_model_len);
    r.input_tokens = input_tokens;
    r.output_tokens = output_tokens;
    r.finish_reason = finish_reason;
    r.cost = cost;
    r.user = std::string_view(user_id, user_id_len);
    r.session_id = std::string_view(session_id, session_id_len);
    r.metadata = std::span<const MetadataEntry>(metadata);
    r.prompt = prompt;
    r.completion = completion;
    r.start_unix_nano = span.start_unix_nano;
    r.end_unix_nano = span.end_unix_nano;
    r.error = span.status_code == StatusCode::error;
    r.error_message = span.status_message;
    return r;
  }

  // Storage.
  char request_id[24]{};
  char response_model[96]{};
  std::size_t response_model_len = 0;
  char span_name[96]{};
  std::size_t span_name_len = 0;
  char user_id[16]{};
  std::size_t user_id_len = 0;
  char session_id[24]{};
  std::size_t session_id_len = 0;
  char account[16]{};
  std::string_view model, provider, finish_reason, prompt, completion;
  std::int64_t input_tokens = 0, output_tokens = 0;
  double cost = 0;
  std::array<Attribute, 3> resource_attrs{};
  std::array<Attribute, 14> span_attr_storage{};
  std::array<MetadataEntry, 2> metadata{};
  std::size_t span_attr_count = 0;
  SpanView span{};
};

class SpanGenerator {
 public:
  // content: add gen_ai.prompt / gen_ai.completion (~1 KiB each) to every span.
  explicit SpanGenerator(std::uint64_t seed, bool content = false) : rng_(seed), content_(content) {
    static constexpr std::string_view k_prompt_piece =
        "{\"role\":\"user\",\"content\":\"Résumé of the \\\"Q3\\\" naïve-Bayes run:\\n"
        "\\tpath C:\\\\data\\\\q3.csv — Grüße, ¿qué tal? 数据 ok 🚀\"},\n";
    static constexpr std::string_view k_completion_piece =
        "The model's answer: \"see C:\\temp\\out.json\"\n\tFaçade über-naïve "
        "estimate: 42 ± 3 (≈ 12%) 🙂 — done.\n";
    for (std::size_t v = 0; v < k_variants; ++v) {
      std::string& p = prompts_[v];
      std::string& c = completions_[v];
      // About 1 KiB each, slightly different per variant.
      while (p.size() < 1000 + 8 * v) p += k_prompt_piece;
      while (c.size() < 1000 + 8 * v) c += k_completion_piece;
    }
  }
  SpanGenerator(const SpanGenerator&) = delete;
  SpanGenerator& operator=(const SpanGenerator&) = delete;

  // Fills `r` with the next request of the sequence. Does not allocate.
  void next(SpanRequest& r) noexcept {
    const std::uint64_t n = counter_++;
    static constexpr char k_alnum[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (char& ch : r.request_id) ch = k_alnum[rng_.next() % 62];
    r.request_id[0] = 'g';
    r.request_id[1] = 'e';
    r.request_id[2] = 'n';
    r.request_id[3] = '-';

    r.model = k_model_names[rng_.next() % k_model_names.size()];
    r.provider = r.model.substr(0, r.model.find('/'));
    r.response_model_len = static_cast<std::size_t>(std::snprintf(
        r.response_model, sizeof r.response_model, "%.*s-2024-08-06",
        static_cast<int>(r.model.size()), r.model.data()));
    r.span_name_len = static_cast<std::size_t>(std::snprintf(
        r.span_name, sizeof r.span_name, "chat %.*s", static_cast<int>(r.model.size()),
        r.model.data()));
    const std::uint64_t user = rng_.next() % 1000;
    r.user_id_len = static_cast<std::size_t>(
        std::snprintf(r.user_id, sizeof r.user_id, "user_%llu", static_cast<unsigned long long>(user)));
    r.session_id_len = static_cast<std::size_t>(std::snprintf(
        r.session_id, sizeof r.session_id, "session_%llx",
        static_cast<unsigned long long>(user * 2654435761u % 0xfffff)));
    std::snprintf(r.account, sizeof r.account, "acct_%02llu",
                  static_cast<unsigned long long>(rng_.next() % 100));
    r.input_tokens = static_cast<std::int64_t>(rng_.between(10, 20000));
    r.output_tokens = static_cast<std::int64_t>(rng_.between(1, 4000));
    r.finish_reason = k_finish_reasons[rng_.next() % k_finish_reasons.size()];
    r.cost = static_cast<double>(r.input_tokens) * 2.5e-6 + static_cast<double>(r.output_tokens) * 1e-5;

    r.resource_attrs = {
        Attribute{"service.name", AttributeValue::string(k_service_name)},
        Attribute{"service.version", AttributeValue::string(k_service_version)},
        Attribute{"openrouter.trace.id",
                  AttributeValue::string(std::string_view(r.request_id, sizeof r.request_id))}};

    r.metadata = {MetadataEntry{"environment", AttributeValue::string("production")},
                  MetadataEntry{"trace_name", AttributeValue::string("Analysis Pipeline")}};
    auto& a = r.span_attr_storage;
    std::size_t k = 0;
    a[k++] = {"gen_ai.operation.name", AttributeValue::string("chat")};
    a[k++] = {"gen_ai.system", AttributeValue::string(r.provider)};
    a[k++] = {"gen_ai.request.model", AttributeValue::string(r.model)};
    a[k++] = {"gen_ai.response.model",
              AttributeValue::string(std::string_view(r.response_model, r.response_model_len))};
    a[k++] = {"gen_ai.usage.input_tokens", AttributeValue::int64(r.input_tokens)};
    a[k++] = {"gen_ai.usage.output_tokens", AttributeValue::int64(r.output_tokens)};
    a[k++] = {"gen_ai.response.finish_reason", AttributeValue::string(r.finish_reason)};
    a[k++] = {"gen_ai.usage.cost", AttributeValue::float64(r.cost)};
    a[k++] = {"user.id", AttributeValue::string(std::string_view(r.user_id, r.user_id_len))};
    a[k++] = {"session.id",
              AttributeValue::string(std::string_view(r.session_id, r.session_id_len))};
    a[k++] = {"trace.metadata.environment", AttributeValue::string("production")};
    a[k++] = {"trace.metadata.trace_name", AttributeValue::string("Analysis Pipeline")};
    if (content_) {
      const std::size_t v = n % k_variants;
      r.prompt = prompts_[v];
      r.completion = completions_[v];
      a[k++] = {"gen_ai.prompt", AttributeValue::string(r.prompt)};
      a[k++] = {"gen_ai.completion", AttributeValue::string(r.completion)};
    } else {
      r.prompt = {};
      r.completion = {};
    }
    r.span_attr_count = k;

    SpanView& s = r.span;
    for (std::size_t i = 0; i < 16; i += 8) {
      std::uint64_t x = rng_.next() | 1;  // never all zero
      for (std::size_t b = 0; b < 8; ++b) s.trace_id.bytes[i + b] = static_cast<std::uint8_t>(x >> (8 * b));
    }
    s.span_id = SpanId::from_u64(rng_.next() | 1);
    s.parent_span_id = SpanId{};
    s.name = std::string_view(r.span_name, r.span_name_len);
    s.kind = SpanKind::client;
    const bool error = rng_.next() % 100 == 0;
    s.status_code = error ? StatusCode::error : StatusCode::unset;
    s.status_message = error ? std::string_view("upstream provider returned 502") : std::string_view{};
    s.start_unix_nano = k_base_unix_nano + n * 1'000'000ull + rng_.next() % 1'000'000ull;
    s.end_unix_nano = s.start_unix_nano + rng_.between(200'000'000ull, 8'000'000'000ull);
    s.attributes = std::span<const Attribute>(a.data(), k);
  }

  [[nodiscard]] bool content() const noexcept { return content_; }

 private:
  static constexpr std::size_t k_variants = 4;
  Rng rng_;
  bool content_;
  std::uint64_t counter_ = 0;
  std::array<std::string, k_variants> prompts_;
  std::array<std::string, k_variants> completions_;
};

}  // namespace tracecast::workload
