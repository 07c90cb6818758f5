#include "tracecast/encoder_limits.h"

namespace tracecast {
namespace {
constexpr std::size_t k_max_value_bytes_limit = 16u << 20;
constexpr std::size_t k_max_attributes_limit = 65536;
}  // namespace

std::string_view EncoderLimits::validate() const noexcept {
  if (max_value_bytes < 4 || max_value_bytes > k_max_value_bytes_limit)
    return "EncoderLimits::max_value_bytes must be in [4, 16777216]";
  if (max_attributes_per_span > k_max_attributes_limit)
    return "EncoderLimits::max_attributes_per_span must be in [0, 65536]";
  return {};
}

}  // namespace tracecast
