// Internal: PipelineStats in the Prometheus text exposition format (version 0.0.4), for
// Pipeline::prometheus(). Not installed.
//
//   # HELP tracecast_destination_spans_delivered_total Spans delivered (2xx) to the destination.
//   # TYPE tracecast_destination_spans_delivered_total counter
//   tracecast_destination_spans_delivered_total{destination="grafana",id="1",account="acct_1"} 1024
//
// Pipeline-wide families carry no labels (or one: result / reason / state), the totals over
// every destination among them (tracecast_spans_*_total, ...); per-destination families carry
// destination="<name>",id="<id>",account="<account>" (values escaped: \\ \" \n) and are
// written for the destinations the snapshot lists only (stats(): not healthy + busiest), so
// sum() over them is not the total: the tracecast_spans_* families are.
//
// Latency histogram: DestinationCounters::latency_buckets[i] is read as the number of requests
// whose latency fell in bucket i only (the first bound it is <= to; the last bucket is +Inf),
// and is written cumulatively as Prometheus requires (_bucket{le="..."} non-decreasing, the +Inf
// bucket equal to _count). _sum is in seconds.
#pragma once

#include <string>
#include <string_view>

#include "tracecast/pipeline.h"

namespace tracecast::detail {

// The whole exposition for one snapshot, every family preceded by its # HELP and # TYPE
// lines, ending in a newline. Thread-safe (pure). Allocates the result.
[[nodiscard]] std::string format_prometheus(const PipelineStats& stats);

// `value` escaped for a label value: backslash, double quote and newline as \\, \" and \n.
// Thread-safe (pure). Allocates.
[[nodiscard]] std::string escape_label_value(std::string_view value);

}  // namespace tracecast::detail
