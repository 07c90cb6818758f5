#include "tracecast/encoder_limits.h"

namespace tracecast {
namespace {
using EL = EncoderLimits;
constexpr Setting k_encoder_settings[] = {
    number_setting("max_value_bytes", "max_value_bytes", "bytes", 4, 16 << 20, &setting_ref<&EL::max_value_bytes>,
                   "longer strings cut at a code point boundary, counted (1 MiB: a whole long prompt reaches the "
                   "backend)"),
    number_setting("max_attributes_per_span", "max_attributes_per_span", "attributes", 0, 65536,
                   &setting_ref<&EL::max_attributes_per_span>,
                   "more: left out, written as `droppedAttributesCount`"),
};
}  // namespace

std::span<const Setting> encoder_settings() noexcept { return k_encoder_settings; }

std::vector<ValidationIssue> validate(const EncoderLimits& limits) {
  std::vector<ValidationIssue> issues;
  check_settings(k_encoder_settings, &limits, issues);
  return issues;
}

std::string EncoderLimits::validate() const { return first_error_text(tracecast::validate(*this)); }

}  // namespace tracecast
