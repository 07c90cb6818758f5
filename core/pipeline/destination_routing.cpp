// PipelineDestination::validate(): the pipeline-side fields of a destination (sampling,
// routing, limits, resource). The transport has its own validate(DestinationConfig).
#include <simdjson.h>

#include <set>
#include <string>
#include <string_view>

#include "destination_routing.h"
#include "tracecast/pipeline.h"

namespace tracecast {
namespace {

bool printable_ascii(std::string_view s) noexcept {
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x21 || b > 0x7E) return false;
  }
  return true;
}

bool has_control(std::string_view s) noexcept {
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7F) return true;
  }
  return false;
}

bool valid_utf8(std::string_view s) noexcept { return simdjson::validate_utf8(s.data(), s.size()); }

std::string indexed(std::string_view field, std::size_t i) {
  return std::string(field) + "[" + std::to_string(i) + "]";
}

}  // namespace

std::vector<ValidationIssue> PipelineDestination::validate() const {
  std::vector<ValidationIssue> issues;
  auto error = [&issues](std::string field, std::string message) {
    issues.push_back({std::move(field), std::move(message), false});
  };
  if (!valid_sampling_rate(sampling_rate))
    error("sampling_rate", "must be in 0.0001..1, got " + std::to_string(sampling_rate));

  if (api_key_ids.size() > k_max_api_key_ids) {
    error("api_key_ids", "at most " + std::to_string(k_max_api_key_ids) + " key ids, got " +
                             std::to_string(api_key_ids.size()));
  } else {
    std::set<std::string_view> seen;
    for (std::size_t i = 0; i < api_key_ids.size(); ++i) {
      const std::string& id = api_key_ids[i];
      if (id.empty()) {
        error(indexed("api_key_ids", i), "must not be empty");
      } else if (id.size() > k_max_api_key_id_bytes) {
        error(indexed("api_key_ids", i), "at most " + std::to_string(k_max_api_key_id_bytes) + " bytes, got " +
                                             std::to_string(id.size()) + " (a key id or hash, not the key)");
      } else if (!printable_ascii(id)) {
        error(indexed("api_key_ids", i), "only printable ASCII without spaces (a key id or hash)");
      } else if (!seen.insert(id).second) {
        error(indexed("api_key_ids", i), "repeats an earlier entry");
      }
    }
  }

  if (max_request_bytes != 0 && (max_request_bytes < k_min_request_bytes || max_request_bytes > k_max_request_bytes))
    error("max_request_bytes", "must be 0 (batch.max_bytes) or " + std::to_string(k_min_request_bytes) + ".." +
                                   std::to_string(k_max_request_bytes) + ", got " + std::to_string(max_request_bytes));
  if (max_attribute_value_bytes != 0 &&
      (max_attribute_value_bytes < k_min_attribute_value_bytes || max_attribute_value_bytes > k_max_attribute_value_bytes))
    error("max_attribute_value_bytes", "must be 0 (encoder.max_value_bytes) or " + std::to_string(k_min_attribute_value_bytes) + ".." +
                                           std::to_string(k_max_attribute_value_bytes) + ", got " +
                                           std::to_string(max_attribute_value_bytes));

  if (resource_attributes.size() > k_max_resource_attributes) {
    error("resource_attributes", "at most " + std::to_string(k_max_resource_attributes) + " attributes, got " +
                                     std::to_string(resource_attributes.size()));
  } else {
    std::set<std::string_view> keys;
    for (std::size_t i = 0; i < resource_attributes.size(); ++i) {
      const auto& [key, value] = resource_attributes[i];
      const std::string at = indexed("resource_attributes", i);
      if (key.empty()) {
        error(at + ".key", "must not be empty");
      } else if (key.size() > k_max_resource_key_bytes) {
        error(at + ".key", "at most " + std::to_string(k_max_resource_key_bytes) + " bytes, got " +
                               std::to_string(key.size()));
      } else if (has_control(key) || !valid_utf8(key)) {
        error(at + ".key", "must be valid UTF-8 without control characters");
      } else if (!keys.insert(key).second) {
        error(at + ".key", "repeats an earlier key (" + key + ")");
      }
      if (value.size() > k_max_resource_value_bytes) {
        error(at + ".value", "at most " + std::to_string(k_max_resource_value_bytes) + " bytes, got " +
                                 std::to_string(value.size()));
      } else if (has_control(value) || !valid_utf8(value)) {
        error(at + ".value", "must be valid UTF-8 without control characters");
      }
    }
  }
  return issues;
}

}  // namespace tracecast
