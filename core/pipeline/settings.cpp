// PipelineConfig's settings rows, the composition of every struct's rows, and
// validate(PipelineConfig) (tracecast/pipeline.h).
#include "settings.h"

#include <iterator>
#include <utility>
#include <variant>

#include "tracecast/encoder_limits.h"
#include "tracecast/ingest_ring.h"
#include "tracecast/sender.h"
#include "tracecast/utf8.h"

namespace tracecast {
namespace {

using PC = PipelineConfig;
using MC = MappingConfig;
using BC = BatchConfig;

constexpr std::int64_t k_max_text_bytes = 1024;
constexpr std::int64_t k_max_linger_ms = 60'000;
constexpr std::int64_t k_max_batch_spans = 65536;
// Bytes of batch buffers: enough for any machine this runs on, small enough that the budget
// arithmetic (and the pool's free-list limit of budget / 8) never overflows or asks the
// allocator for an absurd size.
constexpr std::int64_t k_max_memory_budget_bytes = std::int64_t{1} << 40;  // 1 TiB
// Resource attribute values (mapping.extra_resource_attributes): no backend keeps more.
constexpr std::size_t k_max_resource_value_bytes = 4096;

// Resource and scope strings and the user agent: every span batch repeats them, and no
// backend keeps more (Tempo cuts attribute values at 2 KiB by default).
constexpr Setting k_mapping_rows[] = {
    text_setting("mapping.service_name", "service.name", true, k_max_text_bytes,
                 &setting_ref<&PC::mapping, &MC::service_name>, "resource `service.name`")
        .env_var("OTEL_SERVICE_NAME")
        .also_checked("UTF-8 without control characters"),
    text_setting("mapping.service_version", "service.version", false, k_max_text_bytes,
                 &setting_ref<&PC::mapping, &MC::service_version>, "resource `service.version`")
        .also_checked("UTF-8 without control characters"),
    described_setting("mapping.extra_resource_attributes", "service.resource_attributes", "pairs", "none",
                      "≤ 16; key 1..1024 B, value ≤ 4096 B; UTF-8 without control characters",
                      "more resource attributes, e.g. from `OTEL_RESOURCE_ATTRIBUTES`"),
    flag_setting("mapping.emit_current_genai_names", "service.emit_current_genai_names",
                 &setting_ref<&PC::mapping, &MC::emit_current_genai_names>,
                 "also `gen_ai.provider.name`, `gen_ai.response.finish_reasons`"),
    text_setting("mapping.scope_name", "service.scope_name", true, k_max_text_bytes,
                 &setting_ref<&PC::mapping, &MC::scope_name>, "instrumentation scope name")
        .also_checked("UTF-8 without control characters"),
    text_setting("mapping.scope_version", "service.scope_version", false, k_max_text_bytes,
                 &setting_ref<&PC::mapping, &MC::scope_version>, "instrumentation scope version")
        .also_checked("UTF-8 without control characters"),
};

constexpr Setting k_batch_rows[] = {
    number_setting("batch.max_spans", "batch.max_spans", "spans", 1, k_max_batch_spans,
                   &setting_ref<&PC::batch, &BC::max_spans>, "a batch is sealed at this many spans...")
        .env_var("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
    number_setting("batch.max_bytes", "batch.max_bytes", "bytes", 4 << 10, 16 << 20,
                   &setting_ref<&PC::batch, &BC::max_bytes>,
                   "...or before its OTLP body (JSON or protobuf) would pass this (receivers refuse > 20 MiB with "
                   "413)..."),
    number_setting("batch.linger", "batch.linger_ms", "ms", 1, k_max_linger_ms, &setting_ref<&PC::batch, &BC::linger>,
                   "...or when its first span has waited the destination's linger, which adapts between this "
                   "minimum and `max_linger`"),
    number_setting("batch.max_linger", "batch.max_linger_ms", "ms", 1, k_max_linger_ms,
                   &setting_ref<&PC::batch, &BC::max_linger>,
                   "the longest a span waits before its batch is handed to the sender (plus ≤ 4 ms worker tick): "
                   "the delivery-delay bound for a quiet destination; the variable also lowers `batch.linger` to it")
        .at_least("batch.linger")
        .env_var("OTEL_BSP_SCHEDULE_DELAY"),
    number_setting("batch.target_spans", "batch.target_spans", "spans", 1, k_max_batch_spans,
                   &setting_ref<&PC::batch, &BC::target_spans>,
                   "after each batch the destination's linger is rescaled so the next one would carry about this "
                   "many spans (at most max_spans) at the rate just seen; a new destination starts at `linger`"),
    number_setting("encoder_threads", "encoder_threads", "threads", 1, 1, &setting_ref<&PC::encoder_threads>,
                   "one worker (see Not done yet)")
        .noted(" (only 1 is implemented)"),
    number_setting("memory_budget_bytes", "memory.budget_bytes", "bytes", 0, k_max_memory_budget_bytes,
                   &setting_ref<&PC::memory_budget_bytes>,
                   "everything pending: requests waiting for their batches (pending store chunks) and sealed bodies "
                   "(compressed, in flight, waiting for retry), each charged about its size")
        .at_least("batch.max_bytes", 4),
    number_setting("destination_budget_bytes", "memory.destination_budget_bytes", "bytes", 0,
                   k_max_memory_budget_bytes, &setting_ref<&PC::destination_budget_bytes>,
                   "one destination's share: the bytes of the requests it still has to encode plus its sealed "
                   "bodies; at its budget it sheds its own new spans (`backpressure`)")
        .at_least("batch.max_bytes")
        .at_most("memory_budget_bytes"),
    number_setting("gzip_level", "compression.gzip_level", "level", 0, 12, &setting_ref<&PC::gzip_level>,
                   "gzip (libdeflate) level"),
    number_setting("zstd_level", "compression.zstd_level", "level", -7, 22, &setting_ref<&PC::zstd_level>,
                   "zstd level"),
};

constexpr Setting k_tail_rows[] = {
    number_setting("shutdown_timeout", "shutdown_timeout_ms", "ms", 0, 600'000, &setting_ref<&PC::shutdown_timeout>,
                   "the destructor's shutdown deadline")
        .noted(" (10 min)"),
    number_setting("stats.top_destinations", "stats.top_destinations", "destinations", 0, 1000,
                   &setting_ref<&PC::stats, &StatsConfig::top_destinations>,
                   "`stats()` / `prometheus()` list the busiest this many (spans submitted, among those with traffic "
                   "in the last 10..20 s); with no more destinations than this, every one"),
    number_setting("stats.max_unhealthy_destinations", "stats.max_unhealthy_destinations", "destinations", 0, 10000,
                   &setting_ref<&PC::stats, &StatsConfig::max_unhealthy_destinations>,
                   "...plus at most this many not healthy (lowest ids first); the others are counted in "
                   "`destinations_by_state` only"),
    flag_setting("disable.enabled", "disable.enabled", &setting_ref<&PC::disable, &DisablePolicy::enabled>,
                 "the disable policy (see [Destination health](#destination-health))"),
    number_setting("disable.after", "disable.after_ms", "ms", 0, 30LL * 24 * 3600 * 1000,
                   &setting_ref<&PC::disable, &DisablePolicy::after>,
                   "time of non-retryable failures (401, 403, 404, blocked) without a success before a destination "
                   "is disabled")
        .noted(" (30 days)"),
};

void* self(PipelineConfig& c) { return &c; }
void* ingest_of(PipelineConfig& c) { return &c.ingest; }
void* encoder_of(PipelineConfig& c) { return &c.encoder; }
void* sender_of(PipelineConfig& c) { return &c.sender; }

const SettingSection k_sections[] = {
    {"ingest.", "ingest.", ingest_settings(), &ingest_of},
    {"", "", k_mapping_rows, &self},
    {"encoder.", "encoder.", encoder_settings(), &encoder_of},
    {"", "", k_batch_rows, &self},
    {"sender.", "sender.", sender_settings(), &sender_of},
    {"", "", k_tail_rows, &self},
};

// The mapping's rules that are not a row's range: the extra resource attributes.
void check_extra_resource(const MappingConfig& m, std::vector<ValidationIssue>& out) {
  constexpr std::string_view k_field = "mapping.extra_resource_attributes";
  const auto& attrs = m.extra_resource_attributes;
  if (attrs.size() > MappingConfig::k_max_extra_resource) {
    out.push_back({std::string(k_field),
                   "at most " + std::to_string(MappingConfig::k_max_extra_resource) + " attributes, got " +
                       std::to_string(attrs.size()),
                   false, IssueCode::too_long});
    return;
  }
  for (std::size_t i = 0; i < attrs.size(); ++i) {
    const auto& [key, value] = attrs[i];
    std::string where = "attribute " + std::to_string(i);
    if (key.empty()) {
      out.push_back({std::string(k_field), where.append(" has an empty key"), false, IssueCode::required});
    } else if (key.size() > static_cast<std::size_t>(k_max_text_bytes)) {
      out.push_back({std::string(k_field), where.append(" has a key over 1024 bytes"), false, IssueCode::too_long});
    } else if (!is_clean_utf8_text(key)) {
      out.push_back({std::string(k_field), where.append("'s key must be valid UTF-8 without control characters"), false,
                     IssueCode::invalid});
    } else if (value.size() > k_max_resource_value_bytes) {
      // The key is the operator's own attribute name (not a secret); the value is not shown.
      out.push_back({std::string(k_field), where.append(" (").append(key).append(") has a value over 4096 bytes"),
                     false, IssueCode::too_long});
    } else if (!is_clean_utf8_text(value)) {
      out.push_back({std::string(k_field),
                     where.append(" (").append(key).append(")'s value must be valid UTF-8 without control characters"),
                     false, IssueCode::invalid});
    }
  }
  // The resource's own strings: the same rule (the scope's too, written beside them).
  const std::pair<std::string_view, const std::string*> texts[] = {
      {"mapping.service_name", &m.service_name},
      {"mapping.service_version", &m.service_version},
      {"mapping.scope_name", &m.scope_name},
      {"mapping.scope_version", &m.scope_version},
  };
  for (const auto& [field, text] : texts) {
    if (text->size() <= static_cast<std::size_t>(k_max_text_bytes) && !is_clean_utf8_text(*text))
      out.push_back({std::string(field), "must be valid UTF-8 without control characters", false, IssueCode::invalid});
  }
}

// The keys of a destinations entry that are no struct's field: read by the loader's own code.
constexpr Setting k_destination_file_rows[] = {
    described_setting("account", "account", "text", "none: required", "≤ `ingest.limits.max_field_bytes` (256 B)",
                      "the account whose requests it takes; `\"\"`: every account's, written out (an entry without "
                      "the key is refused: a forgotten key must not route every tenant's spans to it)"),
};
constexpr Setting k_destination_secret_rows[] = {
    described_setting("api_key_env", "api_key_env", "variable", "", "a set, non-empty variable",
                      "`api_key` from this environment variable (at most one of `api_key`, `api_key_env`, "
                      "`api_key_file`)"),
    described_setting("api_key_file", "api_key_file", "path", "", "≤ 64 KiB, not empty",
                      "`api_key` from this file (trimmed; relative to the config file)"),
    described_setting("headers_env", "headers_env", "pairs", "none", "≤ 64; not a header of `headers`",
                      "headers whose values come from environment variables: {header: VARIABLE}"),
    described_setting("fields_env", "fields_env", "pairs", "none", "≤ 32; not a field given elsewhere",
                      "preset fields from environment variables: {field: VARIABLE}"),
    described_setting("fields_file", "fields_file", "pairs", "none", "≤ 32; each ≤ 64 KiB; not a field given elsewhere",
                      "preset fields from files: {field: path} (trimmed; relative to the config file)"),
};

void* destination_self(PipelineDestination& d) { return &d; }
void* transport_of(PipelineDestination& d) { return &d.transport; }

const DestinationSection k_destination_sections[] = {
    {"", k_destination_file_rows, nullptr},
    {"transport.", destination_settings(), &transport_of},
    {"", k_destination_secret_rows, nullptr},
    {"", PipelineDestination::settings(), &destination_self},
};

void append_with_prefix(std::vector<ValidationIssue>& out, std::vector<ValidationIssue> more, std::string_view prefix) {
  const std::size_t from = out.size();
  out.insert(out.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  prefix_issues(out, prefix, from);
}

std::string markdown_cell(std::string_view text) {
  std::string out;
  for (const char ch : text) out.append(ch == '|' ? "\\|" : std::string(1, ch));
  return out;
}

}  // namespace

std::span<const SettingSection> pipeline_sections() noexcept { return k_sections; }

const std::vector<FlatSetting>& flat_settings() {
  static const std::vector<FlatSetting> rows = [] {
    std::vector<FlatSetting> out;
    for (const SettingSection& section : k_sections) {
      for (const Setting& row : section.rows) {
        FlatSetting flat;
        flat.path.assign(section.path).append(row.path);
        if (!row.json.empty()) flat.json.assign(section.json).append(row.json);
        flat.row = &row;
        flat.section = &section;
        out.push_back(std::move(flat));
      }
    }
    return out;
  }();
  return rows;
}

std::span<const DestinationSection> destination_sections() noexcept { return k_destination_sections; }

const std::vector<FlatDestinationSetting>& flat_destination_settings() {
  static const std::vector<FlatDestinationSetting> rows = [] {
    std::vector<FlatDestinationSetting> out;
    for (const DestinationSection& section : k_destination_sections) {
      for (const Setting& row : section.rows) {
        FlatDestinationSetting flat;
        flat.path.assign(section.path).append(row.path);
        flat.json = row.json;
        flat.row = &row;
        flat.section = &section;
        out.push_back(std::move(flat));
      }
    }
    return out;
  }();
  return rows;
}

std::vector<ValidationIssue> validate(const PipelineConfig& config) {
  std::vector<ValidationIssue> issues;
  append_with_prefix(issues, validate(config.ingest), "ingest.");
  check_settings(k_mapping_rows, &config, issues);
  check_extra_resource(config.mapping, issues);
  append_with_prefix(issues, validate(config.encoder), "encoder.");
  check_settings(k_batch_rows, &config, issues);
  append_with_prefix(issues, validate(config.sender), "sender.");
  check_settings(k_tail_rows, &config, issues);
  return issues;
}

std::string PipelineConfig::validate() const { return first_error_text(tracecast::validate(*this)); }

namespace {

// `s` in Markdown backquotes. Appended, not "`" + s + "`": GCC 12 at -O3 warns falsely
// (-Wrestrict, PR 105329) on a literal + std::string, and a user's plain Release build shows it.
std::string backquoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out.append(1, '`').append(s).append(1, '`');
  return out;
}

// README's default of a row: its doc_default, else the value in `object` (a default-built
// struct), text in backquotes, bytes also in KiB/MiB.
std::string default_text(const Setting& row, void* object) {
  if (row.ref == nullptr || object == nullptr || !row.doc_default.empty()) return std::string(row.doc_default);
  std::string def = setting_text(row, object);
  const SettingRef ref = row.ref(object);
  if (std::holds_alternative<std::vector<std::string>*>(ref) || std::holds_alternative<SettingPairs*>(ref)) {
    return def.empty() ? std::string("none") : def;
  }
  if (std::holds_alternative<std::string*>(ref)) def = def.empty() ? std::string("`\"\"`") : backquoted(def);
  // "33554432 (32 MiB)": the bytes as a file gives them, and as a reader counts them.
  const std::int64_t n = setting_integer(row, object);
  if (row.unit == "bytes" && n >= 1024 && n % 1024 == 0) {
    def.append(" (").append(setting_range_text(number_setting("", "", "bytes", n, n, row.ref, ""))).append(")");
  }
  return def;
}

}  // namespace

std::string settings_markdown_table() {
  PipelineConfig defaults;
  std::string out = "| field | JSON key / variable | unit | default | range | what |\n|---|---|---|---|---|---|\n";
  for (const FlatSetting& flat : flat_settings()) {
    const Setting& row = *flat.row;
    std::string keys = flat.json.empty() ? std::string("(not in the file)") : backquoted(flat.json);
    if (!row.env.empty()) keys.append(", `").append(row.env).append("`");
    const std::string def = default_text(row, flat.section->object(defaults));
    out.append("| `").append(flat.path).append("` | ").append(keys).append(" | ");
    out.append(row.unit).append(" | ").append(markdown_cell(def)).append(" | ");
    out.append(markdown_cell(setting_range_text(row))).append(" | ").append(markdown_cell(row.doc)).append(" |\n");
  }
  return out;
}

std::string destination_markdown_table() {
  PipelineDestination defaults;
  std::string out =
      "| JSON key / variable | field | unit | default | range | what |\n|---|---|---|---|---|---|\n";
  for (const FlatDestinationSetting& flat : flat_destination_settings()) {
    const Setting& row = *flat.row;
    const std::string field = flat.section->object == nullptr ? std::string("(the file's)") : backquoted(flat.path);
    const std::string def = default_text(row, flat.section->object == nullptr ? nullptr : flat.section->object(defaults));
    std::string keys = backquoted(flat.json);
    if (!row.env.empty()) keys.append(", `").append(row.env).append("`");
    out.append("| ").append(keys).append(" | ").append(field).append(" | ");
    out.append(row.unit).append(" | ").append(markdown_cell(def)).append(" | ");
    out.append(markdown_cell(setting_range_text(row))).append(" | ").append(markdown_cell(row.doc)).append(" |\n");
  }
  return out;
}

}  // namespace tracecast
