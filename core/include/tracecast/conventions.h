// Attribute conventions: the vocabularies a destination's spans can speak. Each backend reads
// its own names (a span that Langfuse or Arize Phoenix cannot read shows there as an empty
// generation), so a destination chooses a set of conventions and gets every attribute of
// each, with an attribute two conventions share written once. README "What a request
// becomes" has one table per convention (attribute, source field, content or not).
//
//   openrouter     the reference product's names (gen_ai.system, gen_ai.prompt,
//                  trace.metadata.*, user.id, session.id); the default
//   genai          the current OpenTelemetry GenAI semantic conventions
//                  https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans
//   openinference  Arize Phoenix / Arize AX
//                  https://arize-ai.github.io/openinference/spec/attributes/semantic-conventions.html
//   langfuse       https://langfuse.com/integrations/native/opentelemetry (property mapping)
//   langsmith      https://docs.langchain.com/langsmith/trace-with-opentelemetry
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string_view>

namespace tracecast {

enum class Convention : std::uint8_t { openrouter = 0, genai = 1, openinference = 2, langfuse = 3, langsmith = 4 };
inline constexpr std::size_t k_convention_count = 5;

// One row per convention: its name in configuration and who reads it.
struct ConventionInfo {
  Convention convention;
  std::string_view name;     // as written in config files, flags and presets
  std::string_view readers;  // the backends that read it (for messages and docs)
};

// Every convention, in enum order. Pure; no allocation.
[[nodiscard]] std::span<const ConventionInfo> conventions() noexcept;

// The convention named `name` (exactly as in conventions(), lowercase), or nullopt. Usable by
// presets that carry a default convention name. Pure; thread-safe; no allocation.
[[nodiscard]] std::optional<Convention> parse_convention(std::string_view name) noexcept;

// The name of `c` ("openrouter", ...). Pure; no allocation.
[[nodiscard]] std::string_view to_string(Convention c) noexcept;

// A set of conventions (a bit each). Trivially copyable, 1 byte; equal sets compare equal.
// Every member is constexpr and noexcept, allocates nothing, and is safe to call from any
// thread on a set no other thread is changing.
class ConventionSet {
 public:
  constexpr ConventionSet() noexcept = default;  // empty
  constexpr ConventionSet(std::initializer_list<Convention> list) noexcept {
    for (Convention c : list) insert(c);
  }
  [[nodiscard]] static constexpr ConventionSet all() noexcept {
    ConventionSet s;
    s.bits_ = static_cast<std::uint8_t>((1u << k_convention_count) - 1);
    return s;
  }
  // The set whose bits are `bits` (bit i = Convention i); unknown bits are ignored.
  [[nodiscard]] static constexpr ConventionSet from_bits(std::uint8_t bits) noexcept {
    ConventionSet s;
    s.bits_ = static_cast<std::uint8_t>(bits & all().bits_);
    return s;
  }
  constexpr ConventionSet& insert(Convention c) noexcept {
    bits_ = static_cast<std::uint8_t>(bits_ | (1u << static_cast<unsigned>(c)));
    return *this;
  }
  [[nodiscard]] constexpr bool contains(Convention c) const noexcept {
    return (bits_ >> static_cast<unsigned>(c) & 1u) != 0;
  }
  [[nodiscard]] constexpr bool empty() const noexcept { return bits_ == 0; }
  [[nodiscard]] constexpr std::uint8_t bits() const noexcept { return bits_; }
  [[nodiscard]] constexpr std::size_t size() const noexcept {
    std::size_t n = 0;
    for (unsigned b = bits_; b != 0; b &= b - 1) ++n;
    return n;
  }
  friend constexpr bool operator==(ConventionSet, ConventionSet) = default;

 private:
  std::uint8_t bits_ = 0;
};

// The default of every destination: the reference product's vocabulary alone.
inline constexpr ConventionSet k_default_conventions{Convention::openrouter};

// Parses a comma-separated list of names ("openrouter,openinference"; blanks around a name
// ignored). ok() when every name is known and there is at least one; otherwise `bad` is the
// first unknown name as written (empty when the list is empty). Pure; no allocation.
struct ConventionListParse {
  ConventionSet set;
  std::string_view bad;
  bool valid = false;
  [[nodiscard]] bool ok() const noexcept { return valid; }
};
[[nodiscard]] ConventionListParse parse_convention_list(std::string_view list) noexcept;

}  // namespace tracecast
