// PipelineConfig's settings rows and how the structs' tables compose into one (internal to
// the tracecast target; tests see it). See tracecast/settings.h for the row itself.
//
// Sections: PipelineConfig's own rows (service/mapping, batch, memory, compression, shutdown,
// stats, disable), and the tables kept beside the structs it embeds: ingest_settings()
// (IngestConfig, core), encoder_settings() (EncoderLimits, encode), sender_settings()
// (SenderConfig with its RetryPolicy and EgressPolicy, transport). A section's rows are
// relative to its struct; the section gives the prefixes of their member path and JSON key.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "tracecast/pipeline.h"
#include "tracecast/settings.h"

namespace tracecast {

struct SettingSection {
  std::string_view path;  // "sender." ("" for PipelineConfig's own rows)
  std::string_view json;  // "sender."
  std::span<const Setting> rows;
  void* (*object)(PipelineConfig& config);  // the struct the rows are relative to
};

// Every section, in README's order. Thread-safe, no allocation.
[[nodiscard]] std::span<const SettingSection> pipeline_sections() noexcept;

// One row with its full member path ("sender.retry.multiplier") and JSON key
// ("sender.retry.multiplier_ms"); json is empty for a field the file does not set.
struct FlatSetting {
  std::string path;
  std::string json;
  const Setting* row = nullptr;
  const SettingSection* section = nullptr;
};
// Every row of every section, in README's order. Built once; thread-safe.
[[nodiscard]] const std::vector<FlatSetting>& flat_settings();

// ---- a `destinations` entry ----------------------------------------------------------------
// Its keys are all at the entry's top level; its rows come from three tables: the file's own
// keys (account, and where a secret comes from: api_key_env, headers_env, fields_file, ...;
// read by the loader's code), DestinationConfig's (destination_settings(), member path under
// "transport.") and PipelineDestination's own (PipelineDestination::settings()).
struct DestinationSection {
  std::string_view path;  // "transport." or ""
  std::span<const Setting> rows;
  // The struct the rows are relative to; nullptr for the file's own keys (no struct field).
  void* (*object)(PipelineDestination& destination);
};
[[nodiscard]] std::span<const DestinationSection> destination_sections() noexcept;

// One row of a destinations entry, with its full member path ("transport.timeout") and JSON
// key ("timeout_ms"). Built once; thread-safe.
struct FlatDestinationSetting {
  std::string path;
  std::string_view json;
  const Setting* row = nullptr;
  const DestinationSection* section = nullptr;
};
[[nodiscard]] const std::vector<FlatDestinationSetting>& flat_destination_settings();

// README's destination table (header included), like settings_markdown_table(): one line per
// key of a destinations entry, defaults from a default PipelineDestination. Allocates.
[[nodiscard]] std::string destination_markdown_table();

// README's configuration table (header included), generated from the rows: one line per
// field, "| `path` | JSON key / variable | unit | default | range | what |", the default read
// from a default PipelineConfig. Allocates.
[[nodiscard]] std::string settings_markdown_table();

}  // namespace tracecast
