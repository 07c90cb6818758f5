// SenderConfig's rows (tracecast/settings.h) and its one validator: the Sender's constructor
// and PipelineConfig's validation (and through it the JSON and environment loaders) apply the
// same rules.
#include <string>
#include <vector>

#include "tracecast/destination.h"
#include "tracecast/sender.h"

namespace tracecast {
namespace {

using SC = SenderConfig;
using RP = RetryPolicy;
using EP = EgressPolicy;

constexpr std::int64_t k_max_timeout_ms = 600'000;  // 10 min: connect timeout, backoff intervals
constexpr std::int64_t k_max_elapsed_ms = 24LL * 3600 * 1000;

constexpr Setting k_sender_settings[] = {
    number_setting("max_in_flight_total", "max_in_flight_total", "requests", 1, 65536,
                   &setting_ref<&SC::max_in_flight_total>, "HTTP requests in flight, all destinations"),
    number_setting("connect_timeout", "connect_timeout_ms", "ms", 1, k_max_timeout_ms,
                   &setting_ref<&SC::connect_timeout>, "TCP + TLS connect timeout, per attempt")
        .noted(" (10 min)"),
    number_setting("retry.initial_interval", "retry.initial_interval_ms", "ms", 1, k_max_timeout_ms,
                   &setting_ref<&SC::retry, &RP::initial_interval>, "first backoff (the Collector's default)")
        .noted(" (10 min)"),
    number_setting("retry.multiplier", "retry.multiplier", "factor", 1, 100, &setting_ref<&SC::retry, &RP::multiplier>,
                   "each backoff cap is the previous one times this"),
    number_setting("retry.max_interval", "retry.max_interval_ms", "ms", 1, k_max_timeout_ms,
                   &setting_ref<&SC::retry, &RP::max_interval>,
                   "backoff cap; each wait is uniform(0, cap) (full jitter)")
        .at_least("retry.initial_interval")
        .noted(" (10 min)"),
    number_setting("retry.max_elapsed", "retry.max_elapsed_ms", "ms", 0, k_max_elapsed_ms,
                   &setting_ref<&SC::retry, &RP::max_elapsed>,
                   "then the batch is dropped (`retries_exhausted`); 0 = never retry")
        .noted(" (24 h)"),
    number_setting("queue_capacity", "queue_capacity", "requests", 32, 1 << 20, &setting_ref<&SC::queue_capacity>,
                   "accepted and not yet completed")
        .pow2(),
    number_setting("max_producers", "max_producers", "threads", 1, 256, &setting_ref<&SC::max_producers>,
                   "threads that hand requests to the sender"),
    flag_setting("http2", "http2", &setting_ref<&SC::http2>, "offered over TLS (ALPN)"),
    flag_setting("builtin_http1", "builtin_http1", &setting_ref<&SC::builtin_http1>,
                 "`http://` destinations use the sender's own HTTP/1.1 client (kept-alive connections, no "
                 "per-request setup); false: curl, as `https://` always does"),
    number_setting("http1_pipeline_depth", "http1_pipeline_depth", "requests", 1, 16,
                   &setting_ref<&SC::http1_pipeline_depth>,
                   "the built-in client writes up to this many requests of different destinations for one host back "
                   "to back on one kept-alive connection (HTTP/1.1 pipelining), only to allow-listed addresses (any "
                   "when `egress.enforce` is false) and while the host answers within 50 ms; stops for a host that "
                   "drops pipelined requests; 1: off (collectors behind a proxy that drops them)"),
    text_setting("user_agent", "user_agent", false, 1024, &setting_ref<&SC::user_agent>,
                 "no CR, LF or other control byte"),
    number_setting("max_connections_per_host", "max_connections_per_host", "connections", 0, 1024,
                   &setting_ref<&SC::max_connections_per_host>,
                   "shared by every destination on one host (0: only `max_in_flight_total` bounds it); HTTP/2 "
                   "multiplexes many requests per connection, HTTP/1.1 needs one per request in flight (trains, "
                   "`http1_pipeline_depth`, put several on one). A request over the cap waits inside curl with its "
                   "timeout running, so the default sets none"),
    number_setting("max_response_bytes", "max_response_bytes", "bytes", 0, 16 << 20,
                   &setting_ref<&SC::max_response_bytes>,
                   "response body kept to read `partialSuccess`; a longer body (and longer than 4 KiB) is not read "
                   "further (the transfer is cut, the status decides, counted as a malformed answer)"),
    flag_setting("egress.enforce", "egress.enforce", &setting_ref<&SC::egress, &EP::enforce>,
                 "destinations may connect only to public unicast addresses (see [Security](#security)); false: no "
                 "check (only for deployments where customers never supply URLs)")
        .env_var("TRACECAST_EGRESS_ENFORCE"),
    described_setting("egress.allow_cidrs", "egress.allow_cidrs", "CIDRs", "none", "≤ 256",
                      "addresses allowed besides public unicast ones: the operator's own collectors "
                      "(`10.20.0.0/16`, `127.0.0.1/32`, `fd00::/8`); `TRACECAST_EGRESS_ALLOW` sets both lists"),
    described_setting("egress.allow_hosts", "egress.allow_hosts", "host names", "none", "≤ 256, each ≤ 253 B",
                      "destination hosts allowed whatever they resolve to (`otel.internal`, `*.corp.example`)"),
    number_setting("jitter_seed", "", "seed", 0, 0, &setting_ref<&SC::jitter_seed>,
                   "seed of the backoff jitter, for tests (0: random); not in the file")
        .unchecked(),
};

}  // namespace

std::span<const Setting> sender_settings() noexcept { return k_sender_settings; }

std::vector<ValidationIssue> validate(const SenderConfig& config) {
  std::vector<ValidationIssue> issues;
  check_settings(k_sender_settings, &config, issues);
  // The user agent goes out as a header: no byte that would end it or that a proxy may treat
  // specially (the same rules as a destination's header values).
  if (has_line_break(config.user_agent)) {
    issues.push_back({"user_agent", "must not contain CR, LF or NUL", false, IssueCode::invalid});
  } else if (has_control_byte(config.user_agent)) {
    issues.push_back({"user_agent", "must not contain control bytes", false, IssueCode::invalid});
  }
  const std::size_t egress_from = issues.size();
  std::vector<ValidationIssue> egress = validate(config.egress);
  issues.insert(issues.end(), std::make_move_iterator(egress.begin()), std::make_move_iterator(egress.end()));
  prefix_issues(issues, "egress.", egress_from);
  return issues;
}

}  // namespace tracecast
