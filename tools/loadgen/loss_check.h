// The "no loss" check of tracecast-load: with a healthy bundled sink and budgets at their
// defaults, every span handed to a destination must be delivered. Which drops count:
//
//   sampled_out                     never (the destination asked for it: --sampling < 1)
//   ring_full (requests refused     only in a rate-limited run (--rate R > 0): the pipeline
//   by a full ingest ring)          did not keep up with the rate asked for. Flat out
//                                   (--rate 0) a full ring is the designed overload valve.
//   every other reason              always: backpressure, too_large, rejected,
//   (backpressure, shutdown, ...)   retries_exhausted, network, partial_rejected, shutdown,
//                                   removed, invalid are losses a healthy sink never causes.
//
// The check does not apply when a fault was injected (sink flags that fail, delay, reset,
// reject, cap connections or bodies, or demand credentials; --threads, --count-only,
// --count-by, --spans-out and --progress are not faults), when the destinations are not the bundled sink (--endpoint,
// Grafana Cloud, --config or OTEL_EXPORTER_OTLP_* destinations: their health is unknown), or
// when a budget was deliberately set below its default (memory, per-destination budget, ring
// capacity, batch body limit, sender queue/in-flight/connection caps, drain timeout).
//
// Part of tools/loadgen (target tracecast_loadgen). Pure functions: thread-safe; they
// allocate their strings.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "tracecast/pipeline.h"

namespace tracecast::load {

// Whether a drop reason counts as a loss (the table above). Pure. No allocation.
[[nodiscard]] bool drop_counts_as_loss(DropReason reason) noexcept;

// The tracecast-sink flags in `sink_args` (already split) that inject a fault, as given
// ("--fail-503-fraction", "--delay-ms", ...). Empty when the sink is healthy.
[[nodiscard]] std::vector<std::string> fault_flags(const std::vector<std::string>& sink_args);

// Settings below their defaults that bound what the pipeline may hold or how long it may
// drain: "memory_budget_bytes 8388608 < default 268435456", ... Empty when none is.
[[nodiscard]] std::vector<std::string> shrunk_budgets(const PipelineConfig& config,
                                                      std::chrono::milliseconds drain_timeout,
                                                      std::chrono::milliseconds default_drain_timeout);

struct LossVerdict {
  bool applicable = false;
  std::string not_applicable_because;  // when !applicable
  std::uint64_t lost_spans = 0;         // spans dropped for reasons that count
  std::uint64_t lost_requests = 0;      // requests refused by a full ring, if they count
  std::string failure;                  // "" when the check passed or does not apply
};

// Judges the final stats. `why_not` non-empty: the check does not apply (the verdict says
// why). `rate_limited`: the run had a target rate (ring_full then counts).
[[nodiscard]] LossVerdict check_no_loss(const PipelineStats& final_stats, bool rate_limited, std::string why_not);

// The delivery check of a run against a real endpoint (--endpoint, Grafana Cloud, --config
// or OTEL_EXPORTER_OTLP_* destinations), where the no-loss check above does not apply: the
// tool reached nothing, or lost data, if any span was dropped for a reason that counts in
// the table above (blocked by the egress policy, network errors, shutdown at the drain
// deadline with the collector down, rejected, ...), or at a target rate any request was
// refused by a full ring. Always applicable; the failure names the drop reasons.
[[nodiscard]] LossVerdict check_delivered(const PipelineStats& final_stats, bool rate_limited);

// The "reached" check of every run, bundled sink or not (README: a run that reached nothing
// never exits 0). It fails when requests were accepted but no span was delivered:
//   - no span reached a destination: the requests were unrouted (no destination for their
//     account) or every span was filtered (destinations disabled, or api_key_ids allowing
//     none of the generated key ids); the failure names which, from the counts;
//   - spans were submitted but none delivered (every request failed, --sink-args faults,
//     a collector that refuses): the failure names the drop reasons.
// It passes, with a `note`, when every submitted span was sampled out (--sampling).
struct ReachVerdict {
  std::string failure;  // "" when it passed
  std::string note;     // what a pass means when nothing was delivered ("" otherwise)
};
[[nodiscard]] ReachVerdict check_reached(const PipelineStats& final_stats);

}  // namespace tracecast::load
