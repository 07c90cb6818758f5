// PipelineDestination::validate(): the pipeline-side fields of a destination (sampling,
// routing, limits, resource). The transport has its own validate(DestinationConfig).
#include <set>
#include <string>
#include <string_view>

#include "destination_routing.h"
#include "tracecast/pipeline.h"
#include "tracecast/utf8.h"

namespace tracecast {
namespace {

bool printable_ascii(std::string_view s) noexcept {
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x21 || b > 0x7E) return false;
  }
  return true;
}

std::string indexed(std::string_view field, std::size_t i) {
  return std::string(field) + "[" + std::to_string(i) + "]";
}

using PD = PipelineDestination;

constexpr Setting k_rows[] = {
    flag_setting("enabled", "enabled", &setting_ref<&PD::enabled>,
                 "false: no request is routed to it (what it had batched is still sent; counted in its `filtered`)"),
    flag_setting("privacy_mode", "privacy_mode", &setting_ref<&PD::privacy_mode>,
                 "leave prompt and completion content out, in every convention (tokens, cost, timing, model and "
                 "metadata stay)"),
    fraction_setting("sampling_rate", "sampling_rate", PD::k_min_sampling_rate, 1.0, &setting_ref<&PD::sampling_rate>,
                     "fraction of traces kept, decided from the trace id: a trace is kept or dropped whole, "
                     "consistently in every process"),
    described_setting("conventions", "conventions", "names", "the preset's (`openrouter` for the three original kinds)",
                      "one or more of `openrouter`, `genai`, `openinference`, `langfuse`, `langsmith`",
                      "the attribute vocabularies its spans speak (see [Attribute conventions]"
                      "(#attribute-conventions-per-destination-tracecastconventionsh))"),
    list_setting("api_key_ids", "api_key_ids", "ids", PD::k_max_api_key_ids, 1, k_max_api_key_id_bytes,
                 &setting_ref<&PD::api_key_ids>,
                 "the gateway API key ids (`LlmRequest::api_key_id`: the key's id or hash, never the key; the product "
                 "filters on hashed keys) whose requests it takes; a request with another key id or none is not "
                 "routed to it (counted in `filtered`). One hash of the request's id per request, then a binary "
                 "search per destination that has a list, exact (ids compared on a hash match)")
        .default_doc("none (every key)")
        .also_checked("printable ASCII without spaces, no duplicates; not `[]` in a file (leave it out for every key)"),
    number_setting("max_request_bytes", "max_request_bytes", "bytes", PD::k_min_request_bytes, PD::k_max_request_bytes,
                   &setting_ref<&PD::max_request_bytes>,
                   "the largest request body (OTLP bytes before compression) sent to it: its batches seal before it, "
                   "a request larger alone is dropped `too_large`. New Relic refuses bodies over 1 MB: `1000000`")
        .or_zero("batch.max_bytes")
        .default_doc("0 (= `batch.max_bytes`)")
        .also_checked("capped at `batch.max_bytes`"),
    number_setting("max_attribute_value_bytes", "max_attribute_value_bytes", "bytes", PD::k_min_attribute_value_bytes,
                   PD::k_max_attribute_value_bytes, &setting_ref<&PD::max_attribute_value_bytes>,
                   "strings written for it (attribute keys and values, span names, status messages) longer than this "
                   "are cut at a code point boundary, counted (its `values_truncated`, and "
                   "`encoder.values_truncated`) and the span marked `tracecast.truncated`; other destinations get the "
                   "whole value. Below 256 it would cut attribute keys and names, not only values. Tempo cuts at 2048 "
                   "by default; New Relic at 4,095 characters (`4095`: never more characters than bytes)")
        .or_zero("encoder.max_value_bytes")
        .default_doc("0 (= `encoder.max_value_bytes`)")
        .also_checked("capped at `encoder.max_value_bytes`"),
    pairs_setting("resource_attributes", "resource_attributes", PD::k_max_resource_attributes, 1,
                  PD::k_max_resource_key_bytes, PD::k_max_resource_value_bytes, &setting_ref<&PD::resource_attributes>,
                  "added to the resource of every span encoded for it, before the mapping's (its key wins over "
                  "`service.name` or `mapping.extra_resource_attributes`): W&B Weave's `wandb.entity` and "
                  "`wandb.project`. Equal resources still share one `ResourceSpans`")
        .default_doc("none")
        .also_checked("UTF-8 without control characters, no duplicate keys"),
};

}  // namespace

namespace detail {

std::string account_error(std::string_view account, const PipelineConfig& config) {
  const std::size_t limit = config.ingest.limits.max_field_bytes;
  if (account.size() <= limit) return {};
  return "at most " + std::to_string(limit) + " bytes (ingest.limits.max_field_bytes: a request's account is cut to "
         "it, so a longer one never matches), got " + std::to_string(account.size());
}

}  // namespace detail

std::span<const Setting> PipelineDestination::settings() noexcept { return k_rows; }

std::vector<ValidationIssue> PipelineDestination::validate() const {
  std::vector<ValidationIssue> issues;
  // Ranges and sizes: the rows'. The rest below skips what they refused.
  check_settings(k_rows, this, issues);
  auto error = [&issues](std::string field, std::string message, IssueCode code) {
    issues.push_back({std::move(field), std::move(message), false, code});
  };
  if (api_key_ids.size() <= k_max_api_key_ids) {
    std::set<std::string_view> seen;
    for (std::size_t i = 0; i < api_key_ids.size(); ++i) {
      const std::string& id = api_key_ids[i];
      if (id.empty() || id.size() > k_max_api_key_id_bytes) continue;
      if (!printable_ascii(id)) {
        error(indexed("api_key_ids", i), "only printable ASCII without spaces (a key id or hash)", IssueCode::invalid);
      } else if (!seen.insert(id).second) {
        error(indexed("api_key_ids", i), "repeats an earlier entry", IssueCode::duplicate);
      }
    }
  }
  if (resource_attributes.size() <= k_max_resource_attributes) {
    std::set<std::string_view> keys;
    for (std::size_t i = 0; i < resource_attributes.size(); ++i) {
      const auto& [key, value] = resource_attributes[i];
      const std::string at = indexed("resource_attributes", i);
      if (!key.empty() && key.size() <= k_max_resource_key_bytes) {
        if (!is_clean_utf8_text(key)) {
          error(at + ".key", "must be valid UTF-8 without control characters", IssueCode::invalid);
        } else if (!keys.insert(key).second) {
          // The key is the operator's attribute name (not a secret); the value is never shown.
          error(at + ".key", "repeats an earlier key (" + key + ")", IssueCode::duplicate);
        }
      }
      if (value.size() <= k_max_resource_value_bytes && !is_clean_utf8_text(value)) {
        error(at + ".value", "must be valid UTF-8 without control characters", IssueCode::invalid);
      }
    }
  }
  return issues;
}

}  // namespace tracecast
