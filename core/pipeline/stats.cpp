#include "tracecast/pipeline.h"

namespace tracecast {

std::string_view to_string(DropReason reason) noexcept {
  switch (reason) {
    case DropReason::sampled_out: return "sampled_out";
    case DropReason::backpressure: return "backpressure";
    case DropReason::too_large: return "too_large";
    case DropReason::rejected: return "rejected";
    case DropReason::retries_exhausted: return "retries_exhausted";
    case DropReason::network: return "network";
    case DropReason::partial_rejected: return "partial_rejected";
    case DropReason::shutdown: return "shutdown";
    case DropReason::removed: return "removed";
    case DropReason::invalid: return "invalid";
    case DropReason::blocked: return "blocked";
    case DropReason::k_count: break;
  }
  return "unknown";
}

std::uint64_t DestinationCounters::dropped_total() const noexcept {
  std::uint64_t n = 0;
  for (auto d : dropped) n += d;
  return n;
}

}  // namespace tracecast
