// A destination's own routing, limits and resource (PipelineDestination's issue-11 fields) as
// the worker uses them (internal header). Built off the hot path (add/update), read by route()
// and seal() without allocating.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <span>
#include <utility>
#include <vector>

#include "tracecast/pipeline.h"
#include "tracecast/span.h"

namespace tracecast::detail {

// Why a destination cannot take `account` under `config`, empty when it can: a request's
// account is cut to ingest.limits.max_field_bytes at submit, so a longer one never matches.
// Thread-safe (pure). Allocates only for the message.
[[nodiscard]] std::string account_error(std::string_view account, const PipelineConfig& config);

// The hash a request's API key id is looked up by: computed once per request, whatever the
// number of destinations that filter on it.
[[nodiscard]] inline std::uint64_t api_key_hash(std::string_view id) noexcept {
  return std::hash<std::string_view>{}(id);
}

// An allow-list of API key ids: hashes sorted (a binary search per request and destination),
// each id kept beside its hash and compared on a hash match, so a collision never admits a
// key that is not on the list. Empty: every key (the caller skips it).
class KeyFilter {
 public:
  KeyFilter() = default;
  // Allocates. The ids are valid (PipelineDestination::validate()).
  explicit KeyFilter(const std::vector<std::string>& ids) {
    entries_.reserve(ids.size());
    for (const std::string& id : ids) {
      entries_.push_back({api_key_hash(id), id});
      mask_ |= mask_bit(entries_.back().hash);
    }
    std::sort(entries_.begin(), entries_.end(),
              [](const Entry& a, const Entry& b) { return a.hash != b.hash ? a.hash < b.hash : a.id < b.id; });
  }

  // One bit per entry's hash class (a 64-bit Bloom filter with one probe): a request whose
  // bit is clear is not on the list, known from a word the caller keeps beside its hot data,
  // without touching the list. Saturates (all ones) from ~64 entries on: no harm.
  [[nodiscard]] static constexpr std::uint64_t mask_bit(std::uint64_t hash) noexcept {
    return std::uint64_t{1} << (hash >> 58);
  }
  [[nodiscard]] std::uint64_t mask() const noexcept { return mask_; }

  [[nodiscard]] bool empty() const noexcept { return entries_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

  // True when `id` (whose api_key_hash() is `hash`) is on the list. An empty id never is.
  // O(log size). No allocation.
  [[nodiscard]] bool admits(std::uint64_t hash, std::string_view id) const noexcept {
    if (id.empty()) return false;
    auto it = std::lower_bound(entries_.begin(), entries_.end(), hash,
                               [](const Entry& e, std::uint64_t h) { return e.hash < h; });
    for (; it != entries_.end() && it->hash == hash; ++it)
      if (it->id == id) return true;
    return false;
  }

 private:
  struct Entry {
    std::uint64_t hash;
    std::string id;
  };
  std::vector<Entry> entries_;
  std::uint64_t mask_ = 0;
};

// A destination's extra resource attributes: owned strings and the Attribute views over them,
// put in front of each request's mapped resource attributes (the first of equal keys wins in
// both encoders, so the destination's override the mapping's).
class ExtraResource {
 public:
  ExtraResource() = default;
  explicit ExtraResource(const std::vector<std::pair<std::string, std::string>>& attrs) : owned_(attrs) {
    views_.reserve(owned_.size());
    for (const auto& [k, v] : owned_) views_.push_back({k, AttributeValue::string(v)});
  }
  ExtraResource(const ExtraResource&) = delete;  // views_ point into owned_
  ExtraResource& operator=(const ExtraResource&) = delete;
  ExtraResource(ExtraResource&&) = delete;
  ExtraResource& operator=(ExtraResource&&) = delete;

  [[nodiscard]] bool empty() const noexcept { return views_.empty(); }
  [[nodiscard]] std::span<const Attribute> attributes() const noexcept { return views_; }

  // `out` = these attributes, then `mapped`. `out` must have been reserved for
  // k_max_resource_attributes + the mapping's most (no allocation then).
  void compose(std::span<const Attribute> mapped, std::vector<Attribute>& out) const {
    out.clear();
    out.insert(out.end(), views_.begin(), views_.end());
    out.insert(out.end(), mapped.begin(), mapped.end());
  }

 private:
  std::vector<std::pair<std::string, std::string>> owned_;
  std::vector<Attribute> views_;
};

// The effective limits of a destination: its own when set, never above the pipeline's.
[[nodiscard]] inline std::uint32_t effective_request_bytes(const PipelineDestination& p, const PipelineConfig& c) noexcept {
  return p.max_request_bytes == 0 ? c.batch.max_bytes : std::min(p.max_request_bytes, c.batch.max_bytes);
}
// 0: the encoder's own limit (begin()'s default).
[[nodiscard]] inline std::size_t effective_value_bytes(const PipelineDestination& p, const PipelineConfig& c) noexcept {
  if (p.max_attribute_value_bytes == 0 || p.max_attribute_value_bytes >= c.encoder.max_value_bytes) return 0;
  return p.max_attribute_value_bytes;
}

}  // namespace tracecast::detail
