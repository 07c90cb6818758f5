#include "loss_check.h"

#include <array>
#include <sstream>

namespace tracecast::load {

namespace {

// tracecast-sink flags that make it answer anything but a prompt 200 for every valid body
// (see tracecast-sink --help). A flag is matched by its name up to any "=value".
constexpr std::array<std::string_view, 8> k_fault_flag_prefixes = {
    "--fail-",             // --fail-429, --fail-5xx-first, --fail-503-fraction, --fail-status
    "--retry-after",       // with --fail-429 / 5xx
    "--reset-",            // --reset-first, --reset-fraction
    "--delay-",            // --delay-ms, --delay-first
    "--partial-",          // --partial-success (rejectedSpans), --partial-message
    "--basic-auth",        // the load tool sends the sink no credentials: every request 401
    "--max-body",          // a smaller body limit answers 413
    "--max-connections",   // fewer connections than the sender opens: refused or queued
};

// A budget row: its name and how to read it from a config (as an integer).
struct BudgetRow {
  std::string_view name;
  std::uint64_t (*read)(const PipelineConfig&);
};
constexpr std::array<BudgetRow, 7> k_budgets = {{
    {"memory_budget_bytes", [](const PipelineConfig& c) -> std::uint64_t { return c.memory_budget_bytes; }},
    {"destination_budget_bytes", [](const PipelineConfig& c) -> std::uint64_t { return c.destination_budget_bytes; }},
    {"ingest.ring_bytes", [](const PipelineConfig& c) -> std::uint64_t { return c.ingest.ring_bytes; }},
    {"batch.max_bytes", [](const PipelineConfig& c) -> std::uint64_t { return c.batch.max_bytes; }},
    {"sender.max_in_flight_total", [](const PipelineConfig& c) -> std::uint64_t { return c.sender.max_in_flight_total; }},
    {"sender.queue_capacity", [](const PipelineConfig& c) -> std::uint64_t { return c.sender.queue_capacity; }},
    {"sender.max_connections_per_host",
     [](const PipelineConfig& c) -> std::uint64_t { return c.sender.max_connections_per_host; }},
}};

}  // namespace

bool drop_counts_as_loss(DropReason reason) noexcept {
  return reason != DropReason::sampled_out && reason != DropReason::k_count;
}

std::vector<std::string> fault_flags(const std::vector<std::string>& sink_args) {
  std::vector<std::string> out;
  for (const std::string& a : sink_args) {
    const std::string_view name = std::string_view(a).substr(0, a.find('='));
    for (const std::string_view prefix : k_fault_flag_prefixes) {
      if (name.substr(0, prefix.size()) == prefix) {
        out.emplace_back(name);
        break;
      }
    }
  }
  return out;
}

std::vector<std::string> shrunk_budgets(const PipelineConfig& config, std::chrono::milliseconds drain_timeout,
                                        std::chrono::milliseconds default_drain_timeout) {
  static const PipelineConfig defaults{};
  std::vector<std::string> out;
  for (const BudgetRow& row : k_budgets) {
    const std::uint64_t v = row.read(config), d = row.read(defaults);
    if (v < d) out.push_back(std::string(row.name) + " " + std::to_string(v) + " < default " + std::to_string(d));
  }
  if (drain_timeout < default_drain_timeout) {
    out.push_back("--drain-timeout " + std::to_string(drain_timeout.count()) + " ms < default " +
                  std::to_string(default_drain_timeout.count()) + " ms");
  }
  return out;
}

namespace {

// Counts the drops that are losses (and, when `rate_limited`, the ring-full requests) into
// `v`; their reasons as "blocked 200, shutdown 3".
std::string count_losses(const PipelineStats& final_stats, bool rate_limited, LossVerdict& v) {
  std::ostringstream reasons;
  for (std::size_t r = 0; r < k_drop_reasons; ++r) {
    const std::uint64_t n = final_stats.total.dropped[r];
    if (n == 0 || !drop_counts_as_loss(static_cast<DropReason>(r))) continue;
    reasons << (v.lost_spans == 0 ? "" : ", ") << to_string(static_cast<DropReason>(r)) << " " << n;
    v.lost_spans += n;
  }
  if (rate_limited) v.lost_requests = final_stats.ingest.rejected_full;
  return reasons.str();
}

}  // namespace

LossVerdict check_no_loss(const PipelineStats& final_stats, bool rate_limited, std::string why_not) {
  LossVerdict v;
  if (!why_not.empty()) {
    v.not_applicable_because = std::move(why_not);
    return v;
  }
  v.applicable = true;
  const std::string reasons = count_losses(final_stats, rate_limited, v);
  if (v.lost_spans == 0 && v.lost_requests == 0) return v;
  std::ostringstream f;
  f << "no loss: ";
  if (v.lost_spans != 0) f << v.lost_spans << " spans dropped (" << reasons << ")";
  if (v.lost_requests != 0) {
    f << (v.lost_spans != 0 ? " and " : "") << v.lost_requests
      << " requests refused by a full ingest ring at a target rate (the worker fell behind it)";
  }
  f << " with a healthy sink and default budgets";
  v.failure = f.str();
  return v;
}

LossVerdict check_delivered(const PipelineStats& final_stats, bool rate_limited) {
  LossVerdict v;
  v.applicable = true;
  const std::string reasons = count_losses(final_stats, rate_limited, v);
  if (v.lost_spans == 0 && v.lost_requests == 0) return v;
  std::ostringstream f;
  f << "delivery: ";
  if (v.lost_spans != 0) {
    f << v.lost_spans << " of " << final_stats.total.submitted << " spans never reached the endpoint (dropped: "
      << reasons << ")";
  }
  if (v.lost_requests != 0) {
    f << (v.lost_spans != 0 ? " and " : "") << v.lost_requests
      << " requests refused by a full ingest ring at a target rate";
  }
  if (final_stats.total.dropped_by(DropReason::blocked) != 0) {
    f << "; blocked: the egress policy refused the address (private, loopback, ...): allow it with "
         "--egress-allow or TRACECAST_EGRESS_ALLOW";
  }
  v.failure = f.str();
  return v;
}

ReachVerdict check_reached(const PipelineStats& final_stats) {
  ReachVerdict v;
  const DestinationCounters& t = final_stats.total;
  if (t.delivered > 0 || final_stats.ingest.accepted == 0) return v;
  std::ostringstream f;
  if (t.submitted == 0) {
    // Unrouted (no destination for the account) and filtered (a destination took the request
    // but not its spans) are different mistakes: name the one the counts show.
    const bool unrouted = final_stats.requests_unrouted > 0;
    f << "reached nothing: none of " << final_stats.ingest.accepted << " requests "
      << (unrouted && t.filtered == 0 ? "was routed to a destination" : "put a span on a destination") << " (";
    if (unrouted) {
      f << final_stats.requests_unrouted
        << " unrouted: the generated requests' accounts are acct_0..acct_N; a destination's account must be one "
           "of them or \"\" for all";
    }
    if (t.filtered > 0) {
      f << (unrouted ? "; " : "") << t.filtered
        << " spans filtered: every destination that took them is disabled (enabled false) or its api_key_ids "
           "allow none of the generated key ids key_0..key_7";
    }
    if (!unrouted && t.filtered == 0) f << "no destination took them";
    f << ")";
    v.failure = f.str();
    return v;
  }
  const std::uint64_t sampled = t.dropped_by(DropReason::sampled_out);
  if (sampled == t.submitted) {
    v.note = "every one of " + std::to_string(t.submitted) + " spans was sampled out (--sampling / sampling_rate): " +
             "nothing was meant to be sent";
    return v;
  }
  LossVerdict losses;
  const std::string reasons = count_losses(final_stats, false, losses);
  f << "nothing delivered: " << t.submitted << " spans submitted to destinations, 0 delivered";
  if (!reasons.empty()) f << " (dropped: " << reasons << ")";
  v.failure = f.str();
  return v;
}

}  // namespace tracecast::load
