#include "tracecast/mapping.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <random>

#include "convention_text.h"
#include "tracecast/utf8.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace tracecast {
namespace {

constexpr std::string_view k_metadata_prefix = "trace.metadata.";
// https://langfuse.com/integrations/native/opentelemetry (property mapping: trace metadata
// by key, "langfuse.trace.metadata.*"); LangSmith "Trace with OpenTelemetry"
// (https://docs.langchain.com/langsmith/trace-with-opentelemetry): "langsmith.metadata.{key}".
constexpr std::string_view k_langfuse_metadata_prefix = "langfuse.trace.metadata.";
constexpr std::string_view k_langsmith_metadata_prefix = "langsmith.metadata.";

// OpenInference flattens message lists with a zero-based index:
// llm.input_messages.<i>.message.role / .content
// (https://arize-ai.github.io/openinference/spec/content/messages.html). The keys are built
// once, at first use (thread-safe static initialisation, no allocation).
struct MessageKeys {
  static constexpr std::size_t k_n = MappedRequest::k_max_messages;
  char buf[k_n * 2 * 48 + 2 * 48];
  std::string_view role[k_n], content[k_n], out_role, out_content;
  MessageKeys() noexcept {
    char* p = buf;
    auto put = [&p](std::string_view a, std::size_t i, std::string_view b) {
      char* start = p;
      std::memcpy(p, a.data(), a.size());
      p += a.size();
      if (i >= 10) *p++ = static_cast<char>('0' + i / 10);
      *p++ = static_cast<char>('0' + i % 10);
      std::memcpy(p, b.data(), b.size());
      p += b.size();
      return std::string_view(start, static_cast<std::size_t>(p - start));
    };
    for (std::size_t i = 0; i < k_n; ++i) {
      role[i] = put("llm.input_messages.", i, ".message.role");
      content[i] = put("llm.input_messages.", i, ".message.content");
    }
    out_role = put("llm.output_messages.", 0, ".message.role");
    out_content = put("llm.output_messages.", 0, ".message.content");
  }
};
static_assert(MappedRequest::k_max_messages <= 100);

const MessageKeys& message_keys() noexcept {
  static const MessageKeys keys;
  return keys;
}

// input.mime_type / output.mime_type: JSON text when it looks like a JSON array or object.
std::string_view mime_type(std::string_view text) noexcept {
  const std::size_t i = text.find_first_not_of(" \t\r\n");
  return i != std::string_view::npos && (text[i] == '[' || text[i] == '{') ? std::string_view("application/json")
                                                                            : std::string_view("text/plain");
}

std::uint64_t splitmix64(std::uint64_t& x) noexcept {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }

void store_be64(std::uint8_t* out, std::uint64_t v) noexcept {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<std::uint8_t>(v & 0xff);
    v >>= 8;
  }
}

std::uint64_t load_be64(const std::uint8_t* in) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | in[i];
  return v;
}

// Derived span id for the wrapper spans of a caller-chosen trace: a hash of the trace id, the
// level and the name, so every request of the group names the same root/intermediate span.
SpanId derive_span_id(const TraceId& trace, std::string_view level, std::string_view name) noexcept {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  XXH3_64bits_update(&state, trace.bytes.data(), trace.bytes.size());
  XXH3_64bits_update(&state, level.data(), level.size());
  XXH3_64bits_update(&state, "\x1f", 1);
  XXH3_64bits_update(&state, name.data(), name.size());
  std::uint64_t h = XXH3_64bits_digest(&state);
  if (h == 0) h = 1;
  return SpanId::from_u64(h);
}

// A special key's value when it is a string; nullptr-like empty view otherwise. trace_id may
// also be an integer (a JSON `"trace_id":12345`): it groups as its decimal text would.
struct SpecialKeys {
  std::string_view trace_id, trace_name, span_name, generation_name, parent_span_id;
  std::int64_t trace_id_int = 0;
  bool trace_id_is_int = false;
};

// The trace_id as text: the string as given, or an integer's decimal digits written into buf.
std::string_view trace_id_text(const SpecialKeys& k, std::array<char, 24>& buf) noexcept {
  if (!k.trace_id_is_int) return k.trace_id;
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), k.trace_id_int);
  return {buf.data(), static_cast<std::size_t>(r.ptr - buf.data())};
}

SpecialKeys find_special_keys(std::span<const MetadataEntry> metadata, std::uint32_t& issues) noexcept {
  SpecialKeys k;
  for (const MetadataEntry& e : metadata) {
    std::string_view* slot = nullptr;
    if (e.key == "trace_id") slot = &k.trace_id;
    else if (e.key == "trace_name") slot = &k.trace_name;
    else if (e.key == "span_name") slot = &k.span_name;
    else if (e.key == "generation_name") slot = &k.generation_name;
    else if (e.key == "parent_span_id") slot = &k.parent_span_id;
    if (slot == nullptr) continue;
    if (slot == &k.trace_id && e.value.type() == ValueType::int64) {
      k.trace_id_int = e.value.as_int64();
      k.trace_id_is_int = true;
      k.trace_id = {};
      continue;
    }
    if (slot == &k.trace_id) k.trace_id_is_int = false;  // the last trace_id entry wins
    if (e.value.type() != ValueType::string) {
      issues |= k_non_string_special_key;
      continue;
    }
    *slot = e.value.as_string();
  }
  return k;
}

class AttrWriter {
 public:
  AttrWriter(Attribute* out, std::size_t cap) noexcept : out_(out), cap_(cap) {}
  void add(std::string_view key, AttributeValue v) noexcept {
    if (n_ < cap_) out_[n_++] = Attribute{key, v};
  }
  void add_string(std::string_view key, std::string_view v) noexcept {
    if (!v.empty()) add(key, AttributeValue::string(v));
  }
  void add_int(std::string_view key, std::int64_t v) noexcept {
    if (v >= 0) add(key, AttributeValue::int64(v));
  }
  void add_double(std::string_view key, double v) noexcept {
    if (!std::isnan(v)) add(key, AttributeValue::float64(v));
  }
  std::size_t size() const noexcept { return n_; }

 private:
  Attribute* out_;
  std::size_t cap_;
  std::size_t n_ = 0;
};

// `ns` (Unix nanoseconds) as the JSON text of an ISO 8601 UTC timestamp with milliseconds,
// quotes included ("\"2026-11-30T04:18:02.123Z\"", 26 bytes): what Langfuse's own SDKs write
// into langfuse.observation.completion_start_time (a serialised Date, which its OTel ingestion
// JSON.parse()s). `out` holds at least 32 bytes; years past 9999 are not representable and give "".
std::string_view iso8601_json(std::uint64_t ns, char* out) noexcept {
  using namespace std::chrono;
  const sys_time<milliseconds> t{milliseconds{static_cast<std::int64_t>(ns / 1'000'000)}};
  const sys_days day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> hms{t - day};
  const int y = static_cast<int>(ymd.year());
  if (y > 9999) return {};
  auto put = [](char* p, unsigned v, int digits) noexcept {
    for (int i = digits - 1; i >= 0; --i, v /= 10) p[i] = static_cast<char>('0' + v % 10);
  };
  char* p = out;
  *p++ = '"';
  put(p, static_cast<unsigned>(y), 4), p += 4, *p++ = '-';
  put(p, static_cast<unsigned>(ymd.month()), 2), p += 2, *p++ = '-';
  put(p, static_cast<unsigned>(ymd.day()), 2), p += 2, *p++ = 'T';
  put(p, static_cast<unsigned>(hms.hours().count()), 2), p += 2, *p++ = ':';
  put(p, static_cast<unsigned>(hms.minutes().count()), 2), p += 2, *p++ = ':';
  put(p, static_cast<unsigned>(hms.seconds().count()), 2), p += 2, *p++ = '.';
  put(p, static_cast<unsigned>(hms.subseconds().count()), 3), p += 3;
  *p++ = 'Z';
  *p++ = '"';
  return {out, static_cast<std::size_t>(p - out)};
}

// True when the metadata keys map_request writes (non-empty key and value, cut to
// k_max_metadata_key_bytes) are valid UTF-8 and pairwise distinct, checked for up to 16 of
// them (a request with more leaves the check to the encoder). Equal raw keys, keys equal
// after the cut, and ill-formed keys (two may repair to the same text) all give false.
bool metadata_keys_unique(std::span<const MetadataEntry> metadata) noexcept {
  constexpr std::size_t k_max_checked = 16;
  std::string_view seen[k_max_checked];
  std::size_t n = 0;
  for (const MetadataEntry& e : metadata) {
    if (e.key.empty() || e.value.type() == ValueType::empty) continue;  // not written
    if (n == k_max_checked) return false;
    const std::string_view key = utf8_prefix(e.key, MappedRequest::k_max_metadata_key_bytes);
    const auto* p = reinterpret_cast<const unsigned char*>(key.data());
    for (std::size_t i = 0; i < key.size();) {
      if (p[i] < 0x80) {
        ++i;
        continue;
      }
      std::size_t bad = 0;
      const std::size_t len = utf8_sequence(p + i, key.size() - i, bad);
      if (len == 0) return false;
      i += len;
    }
    for (std::size_t i = 0; i < n; ++i)
      if (seen[i] == key) return false;
    seen[n++] = key;
  }
  return true;
}
static_assert(k_langfuse_metadata_prefix.size() + MappedRequest::k_max_metadata_key_bytes <= k_unique_key_max_bytes &&
                  k_langsmith_metadata_prefix.size() <= k_langfuse_metadata_prefix.size() &&
                  k_metadata_prefix.size() <= k_langfuse_metadata_prefix.size(),
              "a prefixed metadata key must fit a keys_unique list");

// OpenInference llm.system ("the AI product as identified by the client or server
// instrumentation"; well-known values ai21, amazon, anthropic, cohere, meta, mistralai, openai,
// vertexai: https://arize-ai.github.io/openinference/spec/semantic_conventions.html) from the
// vendor part of a model slug ("anthropic/claude-3.5-sonnet"). OpenRouter's vendor names are
// these values except Meta's ("meta-llama"); any other vendor gives "" (left out: the values
// are an enumeration, and a guess would mislabel the span in Phoenix).
std::string_view openinference_system(std::string_view model) noexcept {
  const std::size_t slash = model.find('/');
  if (slash == std::string_view::npos) return {};
  const std::string_view vendor = model.substr(0, slash);
  constexpr std::string_view k_same[] = {"ai21", "amazon", "anthropic", "cohere", "mistralai", "openai"};
  for (const std::string_view v : k_same)
    if (vendor == v) return v;
  if (vendor == "meta-llama") return "meta";
  return {};
}

}  // namespace

IdGenerator::IdGenerator(std::uint64_t seed) noexcept {
  for (auto& s : s_) s = splitmix64(seed);
}

IdGenerator::IdGenerator() : IdGenerator([] {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}()) {}

std::uint64_t IdGenerator::next() noexcept {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

TraceId IdGenerator::next_trace_id() noexcept {
  TraceId id;
  do {
    store_be64(id.bytes.data(), next());
    store_be64(id.bytes.data() + 8, next());
  } while (!id.valid());
  return id;
}

SpanId IdGenerator::next_span_id() noexcept {
  std::uint64_t v;
  do {
    v = next();
  } while (v == 0);
  return SpanId::from_u64(v);
}

TraceId derive_trace_id(std::string_view account, std::string_view trace_id) noexcept {
  if (trace_id.size() == 32) {
    const TraceId direct = TraceId::from_hex(trace_id);
    if (direct.valid()) return direct;
  }
  XXH3_state_t state;
  XXH3_128bits_reset(&state);
  XXH3_128bits_update(&state, account.data(), account.size());
  XXH3_128bits_update(&state, "\x1f", 1);
  XXH3_128bits_update(&state, trace_id.data(), trace_id.size());
  const XXH128_hash_t h = XXH3_128bits_digest(&state);
  TraceId id;
  store_be64(id.bytes.data(), h.high64);
  store_be64(id.bytes.data() + 8, h.low64 == 0 && h.high64 == 0 ? 1 : h.low64);
  return id;
}

bool sample_trace(const TraceId& id, double rate) noexcept {
  if (!(rate > 0.0)) return false;  // also NaN
  if (rate >= 1.0) return true;
  const std::uint64_t low = load_be64(id.bytes.data() + 8);
  // 2^64 * rate, computed in long double to keep small rates exact enough.
  const auto threshold = static_cast<std::uint64_t>(static_cast<long double>(rate) * 18446744073709551616.0L);
  return low < threshold;
}

RequestPlan plan_request(const LlmRequest& r, std::uint64_t id_seed) noexcept {
  // Mirrors map_request's first steps: the same metadata cut, special keys, tree shape, and
  // (without a caller-chosen trace_id) the generator's first draw.
  std::span<const MetadataEntry> metadata = r.metadata;
  if (metadata.size() > MappedRequest::k_max_metadata) metadata = metadata.first(MappedRequest::k_max_metadata);
  std::uint32_t issues = 0;
  const SpecialKeys special = find_special_keys(metadata, issues);
  std::array<char, 24> digits;
  const std::string_view trace_id_given = trace_id_text(special, digits);
  RequestPlan plan;
  if (!trace_id_given.empty()) {
    plan.trace_id = derive_trace_id(r.account, trace_id_given);
  } else {
    IdGenerator ids(id_seed);
    plan.trace_id = ids.next_trace_id();
  }
  const bool root_span = !special.trace_name.empty() &&
                         (!special.generation_name.empty() || !special.span_name.empty());
  plan.span_count = 1u + (root_span ? 1u : 0u) + (special.span_name.empty() ? 0u : 1u);
  return plan;
}

void map_request(const LlmRequest& r, const MappingConfig& config, IdGenerator& ids,
                 MappedRequest& out) noexcept {
  map_request(r, config, k_default_conventions, ids, out);
}

void map_request(const LlmRequest& r, const MappingConfig& config, ConventionSet conv, IdGenerator& ids,
                 MappedRequest& out) noexcept {
  if (conv.empty()) conv = k_default_conventions;
  out.conventions_ = conv;
  out.issues_ = k_mapping_ok;
  std::span<const MetadataEntry> metadata = r.metadata;
  if (metadata.size() > MappedRequest::k_max_metadata) {
    metadata = metadata.first(MappedRequest::k_max_metadata);
    out.issues_ |= k_too_many_metadata;
  }
  const SpecialKeys special = find_special_keys(metadata, out.issues_);

  // --- ids -------------------------------------------------------------------------------
  std::array<char, 24> digits;
  const std::string_view trace_id_given = trace_id_text(special, digits);
  const bool grouped = !trace_id_given.empty();
  const TraceId trace_id = grouped ? derive_trace_id(r.account, trace_id_given) : ids.next_trace_id();
  SpanId parent;
  if (!special.parent_span_id.empty()) {
    parent = SpanId::from_hex(special.parent_span_id);
    if (!parent.valid()) out.issues_ |= k_invalid_parent_span_id;
  }

  // --- resource ---------------------------------------------------------------------------
  std::size_t rc = 0;
  out.resource_attrs_[rc++] = {"service.name", AttributeValue::string(config.service_name)};
  if (!config.service_version.empty())
    out.resource_attrs_[rc++] = {"service.version", AttributeValue::string(config.service_version)};
  std::string_view request_id = r.request_id;
  if (request_id.empty()) {
    trace_id.to_hex(out.trace_hex_);
    request_id = std::string_view(out.trace_hex_, sizeof out.trace_hex_);
  }
  out.resource_attrs_[rc++] = {"openrouter.trace.id", AttributeValue::string(request_id)};
  for (std::size_t i = 0;
       i < config.extra_resource_attributes.size() && i < MappingConfig::k_max_extra_resource; ++i) {
    const auto& [k, v] = config.extra_resource_attributes[i];
    out.resource_attrs_[rc++] = {k, AttributeValue::string(v)};
  }
  out.resource_count_ = rc;
  out.scope_ = {config.scope_name, config.scope_version};

  // --- timing and status ------------------------------------------------------------------
  std::uint64_t start = r.start_unix_nano;
  std::uint64_t end = r.end_unix_nano;
  if ((r.submit_flags & (k_submit_start_filled | k_submit_end_filled)) != 0) out.issues_ |= k_time_filled;
  if (start == 0 || end == 0) {
    // Not through a ring (which fills them at submit): a strict receiver refuses a span
    // without times, so use the other one, else now.
    out.issues_ |= k_time_filled;
    if (start == 0 && end == 0) {
      start = end = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                   std::chrono::system_clock::now().time_since_epoch())
                                                   .count());
    } else if (start == 0) {
      start = end;
    } else {
      end = start;
    }
  }
  if (end < start) {
    end = start;
    out.issues_ |= k_end_before_start;
  }

  // --- span tree --------------------------------------------------------------------------
  // trace_name alone names the one span; with a span or generation name it is a root above.
  const bool root_span = !special.trace_name.empty() &&
                         (!special.generation_name.empty() || !special.span_name.empty());
  const bool mid_span = !special.span_name.empty();
  std::size_t sc = 0;
  SpanId up = parent;
  auto wrapper = [&](std::string_view level, std::string_view name) {
    SpanView& s = out.spans_[sc++];
    s = SpanView{};
    s.trace_id = trace_id;
    s.span_id = grouped ? derive_span_id(trace_id, level, name) : ids.next_span_id();
    if (grouped && s.span_id == up) s.span_id = ids.next_span_id();
    s.parent_span_id = up;
    s.name = name;
    s.kind = SpanKind::internal;
    s.start_unix_nano = start;
    s.end_unix_nano = end;
    // The wrappers are chains in the conventions that type every span (a span without a kind
    // shows as "unknown" in Phoenix): openinference.span.kind CHAIN, langsmith.span.kind chain.
    Attribute* wa = out.wrapper_attrs_[sc - 1];
    std::size_t wn = 0;
    if (conv.contains(Convention::openinference))
      wa[wn++] = {"openinference.span.kind", AttributeValue::string("CHAIN")};
    if (conv.contains(Convention::langsmith)) wa[wn++] = {"langsmith.span.kind", AttributeValue::string("chain")};
    s.attributes = std::span<const Attribute>(wa, wn);
    s.keys_unique = true;  // at most the two kinds above
    up = s.span_id;
  };
  if (root_span) wrapper("root", special.trace_name);
  if (mid_span) wrapper("span", special.span_name);

  SpanView& g = out.spans_[sc++];
  g = SpanView{};
  g.trace_id = trace_id;
  g.span_id = ids.next_span_id();
  g.parent_span_id = up;
  g.kind = SpanKind::client;
  g.start_unix_nano = start;
  g.end_unix_nano = end;
  if (r.error) {
    g.status_code = StatusCode::error;
    g.status_message = r.error_message;
  }
  if (!special.generation_name.empty()) {
    g.name = special.generation_name;
  } else if (!special.trace_name.empty() && !root_span) {
    g.name = special.trace_name;
  } else {
    // "{gen_ai.operation.name} {gen_ai.request.model}" (GenAI semantic conventions).
    const std::string_view op = r.operation.empty() ? std::string_view("chat") : r.operation;
    const std::string_view model = r.requested_model.empty() ? r.response_model : r.requested_model;
    std::size_t n = std::min(op.size(), sizeof out.name_buf_);
    std::memcpy(out.name_buf_, op.data(), n);
    if (!model.empty() && n < sizeof out.name_buf_) {
      out.name_buf_[n++] = ' ';
      const std::string_view m = utf8_prefix(model, sizeof out.name_buf_ - n);
      std::memcpy(out.name_buf_ + n, m.data(), m.size());
      n += m.size();
    }
    g.name = std::string_view(out.name_buf_, n);
  }

  // --- generation span attributes (content last, so privacy mode is a shorter view) ------
  // One block per attribute name, emitted when any convention of the set uses that name, so
  // two conventions that share a name (gen_ai.request.model: openrouter, genai, langsmith;
  // user.id / session.id: openrouter, openinference, langfuse) write it once. Sources of each
  // name are cited per convention below.
  using enum Convention;
  const bool o = conv.contains(openrouter), ge = conv.contains(genai), oi = conv.contains(openinference),
             lf = conv.contains(langfuse), ls = conv.contains(langsmith);
  const bool current_genai = ge || (o && config.emit_current_genai_names);
  const std::string_view model = r.response_model.empty() ? r.requested_model : r.response_model;
  AttrWriter a(out.attrs_, MappedRequest::k_max_span_attributes);
  // gen_ai.*: openrouter's older names, the current GenAI names
  // (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans), and what LangSmith
  // reads (gen_ai.system -> ls_provider, gen_ai.request.model, gen_ai.usage.*,
  // https://docs.langchain.com/langsmith/trace-with-opentelemetry).
  if (o || ge || ls) a.add_string("gen_ai.operation.name", r.operation);
  if (o || ls) a.add_string("gen_ai.system", r.provider);
  if (current_genai) a.add_string("gen_ai.provider.name", r.provider);
  if (o || ge || ls) {
    a.add_string("gen_ai.request.model", r.requested_model);
    a.add_string("gen_ai.response.model", r.response_model);
    a.add_string("gen_ai.response.id", r.response_id);
    a.add_int("gen_ai.usage.input_tokens", r.input_tokens);
    a.add_int("gen_ai.usage.output_tokens", r.output_tokens);
  }
  if (o || ge) {
    a.add_int("gen_ai.usage.cache_read.input_tokens", r.cache_read_input_tokens);
    a.add_int("gen_ai.usage.cache_creation.input_tokens", r.cache_creation_input_tokens);
    a.add_int("gen_ai.usage.reasoning.output_tokens", r.reasoning_output_tokens);
  }
  if (o) a.add_string("gen_ai.response.finish_reason", r.finish_reason);
  if (current_genai) {
    // One entry per choice (finish_reasons, split at ','), else the one finish_reason.
    std::size_t n = 0;
    if (!r.finish_reasons.empty()) {
      std::string_view rest = r.finish_reasons;
      while (n < MappedRequest::k_max_finish_reasons) {
        const std::size_t comma = rest.find(',');
        out.finish_reasons_[n++] = rest.substr(0, comma);
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    } else if (!r.finish_reason.empty()) {
      out.finish_reasons_[n++] = r.finish_reason;
    }
    if (n != 0)
      a.add("gen_ai.response.finish_reasons",
            AttributeValue::strings(std::span<const std::string_view>(out.finish_reasons_, n)));
  }
  if (o) a.add_double("gen_ai.usage.cost", r.cost);
  if (o || ge || ls) {
    a.add_double("gen_ai.request.temperature", r.temperature);
    a.add_double("gen_ai.request.top_p", r.top_p);
    a.add_int("gen_ai.request.max_tokens", r.max_tokens);
  }
  if (o) {
    if (r.stream) a.add("gen_ai.request.stream", AttributeValue::boolean(true));
    if (r.first_token_unix_nano != 0 && r.first_token_unix_nano >= start) {
      a.add("gen_ai.server.time_to_first_token",
            AttributeValue::float64(static_cast<double>(r.first_token_unix_nano - start) / 1e9));
    }
    if (r.http_status != 0) a.add("http.response.status_code", AttributeValue::int64(r.http_status));
  }
  if (ge) {
    // gen_ai.conversation.id: "the unique identifier for a conversation (session, thread)".
    a.add_string("gen_ai.conversation.id", r.session_id);
    // error.type: conditionally required when the operation ended in an error; the HTTP
    // status when known (low cardinality), else "_OTHER" (the semconv's fallback value).
    if (r.error) {
      std::string_view type = "_OTHER";
      if (r.http_status > 0) {
        const auto res = std::to_chars(out.error_type_, out.error_type_ + sizeof out.error_type_, r.http_status);
        type = std::string_view(out.error_type_, static_cast<std::size_t>(res.ptr - out.error_type_));
      }
      a.add("error.type", AttributeValue::string(type));
    }
  }
  // user.id / session.id: openrouter; OpenInference context attributes
  // (https://arize-ai.github.io/openinference/spec/llm_spans.html); Langfuse reads both as the
  // trace's userId / sessionId.
  if (o || oi || lf) {
    a.add_string("user.id", r.user);
    a.add_string("session.id", r.session_id);
  }
  // A value cut to a limit on the way in: the span says so (a prompt cut to 1 MiB looks whole).
  if ((r.submit_flags & k_submit_value_cut) != 0) a.add("tracecast.truncated", AttributeValue::boolean(true));

  // Model parameters as JSON: OpenInference llm.invocation_parameters, Langfuse
  // langfuse.observation.model.parameters.
  std::string_view params_json;
  if (oi || lf) {
    detail::JsonOut j(out.params_json_, sizeof out.params_json_);
    j.ch('{');
    auto key = [&j](std::string_view k) {
      if (j.size() > 1) j.ch(',');
      j.string(k);
      j.ch(':');
    };
    if (!std::isnan(r.temperature)) key("temperature"), j.float64(r.temperature);
    if (!std::isnan(r.top_p)) key("top_p"), j.float64(r.top_p);
    if (r.max_tokens >= 0) key("max_tokens"), j.int64(r.max_tokens);
    if (r.stream) key("stream"), j.raw("true");
    j.ch('}');
    if (j.size() > 2 && !j.cut()) params_json = j.view();
  }

  if (oi) {
    // https://arize-ai.github.io/openinference/spec/attributes/semantic-conventions.html
    a.add("openinference.span.kind", AttributeValue::string("LLM"));
    a.add_string("llm.model_name", model);
    a.add_string("llm.system", openinference_system(model));
    a.add_string("llm.provider", r.provider);
    a.add_int("llm.token_count.prompt", r.input_tokens);
    a.add_int("llm.token_count.completion", r.output_tokens);
    if (r.input_tokens >= 0 && r.output_tokens >= 0) a.add_int("llm.token_count.total", r.input_tokens + r.output_tokens);
    a.add_int("llm.token_count.prompt_details.cache_read", r.cache_read_input_tokens);
    a.add_int("llm.token_count.prompt_details.cache_write", r.cache_creation_input_tokens);
    a.add_int("llm.token_count.completion_details.reasoning", r.reasoning_output_tokens);
    a.add_double("llm.cost.total", r.cost);
    a.add_string("llm.invocation_parameters", params_json);
    // `metadata`: "JSON string of key-value metadata associated with the trace".
    bool any = false;
    for (const MetadataEntry& e : metadata) any = any || (!e.key.empty() && e.value.type() != ValueType::empty);
    if (any) {
      detail::JsonOut j(out.metadata_json_, sizeof out.metadata_json_);
      j.ch('{');
      for (const MetadataEntry& e : metadata) {
        if (e.key.empty() || e.value.type() == ValueType::empty) continue;
        const std::size_t before = j.size();
        if (before > 1) j.ch(',');
        j.string(utf8_prefix(e.key, MappedRequest::k_max_metadata_key_bytes));
        j.ch(':');
        j.value(e.value, 1);
        if (j.cut() || j.room() == 0) {  // the entry does not fit whole: it and the rest left out
          j.rewind(before);
          j.mark_cut();
          break;
        }
      }
      if (j.cut()) out.issues_ |= k_convention_text_cut;
      j.ch('}');  // fits: an entry always leaves a byte
      a.add_string("metadata", j.view());
    }
  }
  if (lf) {
    // Langfuse attribute names: langfuse.observation.* / langfuse.trace.* as its SDKs set them
    // (LangfuseOtelSpanAttributes; property mapping on
    // https://langfuse.com/integrations/native/opentelemetry).
    a.add("langfuse.observation.type", AttributeValue::string("generation"));
    a.add_string("langfuse.observation.model.name", model);
    a.add_string("langfuse.observation.model.parameters", params_json);
    {
      // usage_details: {"input", "output", "total"} (usage types are free-form; Langfuse
      // sums those containing "input" / "output", https://langfuse.com/docs/token-usage).
      detail::JsonOut j(out.usage_json_, sizeof out.usage_json_);
      j.ch('{');
      if (r.input_tokens >= 0) j.raw("\"input\":"), j.int64(r.input_tokens);
      if (r.output_tokens >= 0) j.raw(j.size() > 1 ? ",\"output\":" : "\"output\":"), j.int64(r.output_tokens);
      if (r.input_tokens >= 0 && r.output_tokens >= 0) j.raw(",\"total\":"), j.int64(r.input_tokens + r.output_tokens);
      j.ch('}');
      if (j.size() > 2) a.add_string("langfuse.observation.usage_details", j.view());
    }
    if (!std::isnan(r.cost)) {
      detail::JsonOut j(out.cost_json_, sizeof out.cost_json_);
      j.raw("{\"total\":");
      j.float64(r.cost);
      j.ch('}');
      a.add_string("langfuse.observation.cost_details", j.view());
    }
    if (r.error) {
      a.add("langfuse.observation.level", AttributeValue::string("ERROR"));
      a.add_string("langfuse.observation.status_message", r.error_message);
    }
    a.add_string("langfuse.trace.name", special.trace_name);
    // Time to first token as Langfuse's generations show it: completion_start_time, the
    // moment the first token arrived (LangfuseOtelSpanAttributes.OBSERVATION_COMPLETION_START_TIME).
    if (r.first_token_unix_nano != 0 && r.first_token_unix_nano >= start)
      a.add_string("langfuse.observation.completion_start_time", iso8601_json(r.first_token_unix_nano, out.iso_time_));
  }
  if (ls) {
    // https://docs.langchain.com/langsmith/trace-with-opentelemetry: run type, session.
    a.add("langsmith.span.kind", AttributeValue::string("llm"));
    a.add_string("langsmith.trace.session_id", r.session_id);
    // LangSmith has no user attribute: the user goes into the run's metadata (the attribute
    // table maps langsmith.metadata.{key} to metadata.{key}) as user_id, unless the request's
    // own `trace` object has a user_id, which is written below and wins (one key, no duplicate).
    if (!r.user.empty()) {
      bool own = false;
      for (const MetadataEntry& e : metadata) own = own || (e.key == "user_id" && e.value.type() != ValueType::empty);
      if (!own) a.add_string("langsmith.metadata.user_id", r.user);
    }
  }

  // Metadata, once per prefix in use (openrouter trace.metadata.*, Langfuse trace metadata,
  // LangSmith metadata); keys are copied into out.metadata_keys_.
  char* key_out = out.metadata_keys_;
  for (const MetadataEntry& e : metadata) {
    if (e.key.empty()) {
      out.issues_ |= k_empty_metadata_key;
      continue;
    }
    if (e.value.type() == ValueType::empty) {
      out.issues_ |= k_empty_metadata_value;  // strict receivers refuse an AnyValue with no value
      continue;
    }
    const std::string_view key = utf8_prefix(e.key, MappedRequest::k_max_metadata_key_bytes);
    auto prefixed = [&](std::string_view prefix) {
      std::memcpy(key_out, prefix.data(), prefix.size());
      std::memcpy(key_out + prefix.size(), key.data(), key.size());
      const std::size_t len = prefix.size() + key.size();
      a.add(std::string_view(key_out, len), e.value);
      key_out += len;
    };
    if (o) prefixed(k_metadata_prefix);
    if (lf) prefixed(k_langfuse_metadata_prefix);
    if (ls) prefixed(k_langsmith_metadata_prefix);
  }

  // --- content: every content-bearing attribute of every convention, last -----------------
  const std::size_t without_content = a.size();
  // gen_ai.prompt / gen_ai.completion: openrouter's, and LangSmith's inputs / outputs.
  if (o || ls) {
    a.add_string("gen_ai.prompt", r.prompt);
    a.add_string("gen_ai.completion", r.completion);
  }
  const bool want_messages = (ge || oi) && !r.prompt.empty();
  detail::PromptMessages msgs{{out.message_role_, MappedRequest::k_max_messages},
                              {out.message_text_, MappedRequest::k_max_messages},
                              out.message_text_buf_,
                              sizeof out.message_text_buf_};
  if (want_messages) {
    detail::read_prompt_messages(r.prompt, msgs);
    if (msgs.cut) out.issues_ |= k_convention_text_cut;
  }
  if (ge) {
    // gen_ai.input.messages / gen_ai.output.messages: JSON text in the role/parts schema,
    // [{"role":"user","parts":[{"type":"text","content":"..."}]}], output messages with
    // their "finish_reason" (gen-ai-input-messages.json / gen-ai-output-messages.json of the
    // GenAI semantic conventions).
    constexpr std::string_view k_parts = ",\"parts\":[{\"type\":\"text\",\"content\":";
    if (msgs.count != 0) {
      detail::JsonOut j(out.input_json_, sizeof out.input_json_);
      j.ch('[');
      for (std::size_t i = 0; i < msgs.count; ++i) {
        const std::size_t before = j.size();
        if (i != 0) j.ch(',');
        j.raw("{\"role\":");
        j.string(msgs.roles[i], k_parts.size() + 2 + 4);
        j.raw(k_parts);
        if (j.cut()) {  // not even the message's frame fits: end the list before it
          j.rewind(before);
          break;
        }
        j.string(msgs.texts[i], 4);
        j.raw("}]}");
        if (j.cut()) break;
      }
      j.ch(']');
      if (j.cut()) out.issues_ |= k_convention_text_cut;
      a.add_string("gen_ai.input.messages", j.view());
    }
    if (!r.completion.empty()) {
      detail::JsonOut j(out.output_json_, sizeof out.output_json_);
      const std::size_t tail = 32 + r.finish_reason.size() * 6;
      j.raw("[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":");
      j.string(r.completion, tail);
      j.raw("}]");
      if (!r.finish_reason.empty()) {
        j.raw(",\"finish_reason\":");
        j.string(r.finish_reason);
      }
      j.raw("}]");
      if (j.cut()) out.issues_ |= k_convention_text_cut;
      a.add_string("gen_ai.output.messages", j.view());
    }
  }
  if (oi) {
    // input.value / output.value with their mime types, and the flattened message lists.
    if (!r.prompt.empty()) {
      a.add_string("input.value", r.prompt);
      a.add("input.mime_type", AttributeValue::string(mime_type(r.prompt)));
    }
    if (!r.completion.empty()) {
      a.add_string("output.value", r.completion);
      a.add("output.mime_type", AttributeValue::string(mime_type(r.completion)));
    }
    const MessageKeys& keys = message_keys();
    for (std::size_t i = 0; i < msgs.count; ++i) {
      a.add_string(keys.role[i], msgs.roles[i]);
      a.add_string(keys.content[i], msgs.texts[i]);
    }
    if (!r.completion.empty()) {
      a.add(keys.out_role, AttributeValue::string("assistant"));
      a.add_string(keys.out_content, r.completion);
    }
  }
  if (lf) {
    a.add_string("langfuse.observation.input", r.prompt);
    a.add_string("langfuse.observation.output", r.completion);
  }

  g.attributes = std::span<const Attribute>(out.attrs_, a.size());
  // Every name above is written by one block (a name two conventions share is one block), the
  // metadata names carry a prefix no other name has (langsmith.metadata.user_id is left to a
  // trace key user_id), so the list repeats a key only when the metadata does.
  g.keys_unique = metadata_keys_unique(metadata);
  out.span_count_ = sc;
  for (std::size_t i = 0; i < sc; ++i) out.private_spans_[i] = out.spans_[i];
  out.private_spans_[sc - 1].attributes = std::span<const Attribute>(out.attrs_, without_content);
}

}  // namespace tracecast
