// Internal: how destination.cpp applies a preset row (presets.cpp) in validate() and resolve().
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tracecast/destination.h"
#include "tracecast/presets.h"

namespace tracecast::detail {

// The checks of a catalog (non-custom) preset: fields, regions, the endpoint's host against
// the backend's web-app hosts, protocol and compression. `endpoint_host` is the lowercased
// host of config.endpoint ("" when there is none or it does not parse: validate() reports
// that itself).
void validate_preset(const DestinationConfig& config, const PresetInfo& row, std::string_view endpoint_host,
                     std::vector<ValidationIssue>& issues);

// URL, preset headers and resource attributes of a catalog preset. Appends to `out`'s
// header_lines (after Content-Type, before the configured extra headers).
void resolve_preset(const DestinationConfig& config, const PresetInfo& row, ResolvedDestination& out);

// Lowercase ASCII copy. Allocates.
[[nodiscard]] std::string ascii_lower(std::string_view s);

}  // namespace tracecast::detail
