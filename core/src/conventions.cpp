#include "tracecast/conventions.h"

#include <array>

namespace tracecast {
namespace {

constexpr std::array<ConventionInfo, k_convention_count> k_conventions = {{
    {Convention::openrouter, "openrouter", "the reference product's vocabulary (Grafana Cloud Tempo, any OTLP backend)"},
    {Convention::genai, "genai", "OpenTelemetry GenAI semantic conventions (Datadog LLM Observability, Sentry, Honeycomb, ...)"},
    {Convention::openinference, "openinference", "Arize Phoenix, Arize AX"},
    {Convention::langfuse, "langfuse", "Langfuse"},
    {Convention::langsmith, "langsmith", "LangSmith"},
}};

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::span<const ConventionInfo> conventions() noexcept { return k_conventions; }

std::optional<Convention> parse_convention(std::string_view name) noexcept {
  for (const ConventionInfo& c : k_conventions)
    if (c.name == name) return c.convention;
  return std::nullopt;
}

std::string_view to_string(Convention c) noexcept {
  const auto i = static_cast<std::size_t>(c);
  return i < k_conventions.size() ? k_conventions[i].name : std::string_view("unknown");
}

ConventionListParse parse_convention_list(std::string_view list) noexcept {
  ConventionListParse out;
  while (true) {
    const std::size_t comma = list.find(',');
    const std::string_view name = trim(list.substr(0, comma));
    const std::optional<Convention> c = parse_convention(name);
    if (!c) {
      out.bad = name;
      out.set = {};
      return out;
    }
    out.set.insert(*c);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  out.valid = true;
  return out;
}

}  // namespace tracecast
