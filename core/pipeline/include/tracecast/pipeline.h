// The Pipeline a gateway embeds: submit() on the request path, and everything else on two
// threads of its own.
//
//   gateway threads --submit()--> IngestRing --> worker thread --------------------> Sender thread
//                     (copy into   (lock-free)   map once per request (mapping.h),    (curl multi,
//                      a slot, no                route to the account's destinations, retries,
//                      lock, no                  privacy view + sampling per dest,    backoff)
//                      allocation)               OTLP/JSON into the dest's batch,        |
//                                                seal (max_spans/max_bytes/linger),      |
//                                                compress, hand over; completions <------+
//                                                give buffers back and settle the books
//
// Every span handed to a destination is accounted for: per destination and in total,
//   submitted == delivered + dropped (by reason) + in_flight
// at every stats() snapshot, and with in_flight == 0 after shutdown().
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tracecast/compress.h"
#include "tracecast/connection_test.h"
#include "tracecast/destination.h"
#include "tracecast/ingest_ring.h"
#include "tracecast/llm_request.h"
#include "tracecast/mapping.h"
#include "tracecast/otlp_json.h"
#include "tracecast/sender.h"

namespace tracecast {

// How spans are grouped into requests, per destination.
struct BatchConfig {
  // A batch is sealed at this many spans. Default 512 (the OpenTelemetry SDK's batch size);
  // 1..65536.
  std::uint32_t max_spans = 512;
  // ... or when the next request's spans would push its OTLP/JSON body past this many bytes
  // (before compression). Default 4 MiB; 4 KiB..16 MiB (OTLP receivers commonly refuse
  // bodies over 20 MiB with 413, and a 413 is never retried).
  std::uint32_t max_bytes = 4u << 20;
  // ... or when its first span has waited the destination's linger, which adapts between
  // `linger` and `max_linger`: after every batch it is rescaled so that the next one would
  // carry about `target_spans` spans at the rate just seen. A busy destination seals by size
  // (or after `linger`); a quiet one waits up to `max_linger`, so its requests carry more
  // spans. flush() and shutdown() seal at once. Delivery delay bound: a span waits at most
  // max_linger (plus one worker tick, <= 4 ms) before its batch is handed to the sender,
  // unless the destination already has DestinationConfig::max_in_flight requests unfinished
  // (a slow or failing endpoint): then the batch keeps growing, up to max_spans, until one
  // completes, since a body sealed earlier would only wait in the sender's queue.
  // linger: default 200 ms; 1 ms..60 s.
  std::chrono::milliseconds linger{200};
  // Default 5 s (OTEL_BSP_SCHEDULE_DELAY's default); linger..60 s.
  std::chrono::milliseconds max_linger{5000};
  // Spans a batch of a quiet destination aims for (at most max_spans are used). Default 64;
  // 1..65536.
  std::uint32_t target_spans = 64;
};

// One destination as the pipeline sees it: where to send (transport) and what to send.
struct PipelineDestination {
  DestinationConfig transport;
  // Leave prompt and completion content out (tokens, cost, timing, model and metadata stay).
  bool privacy_mode = false;
  // Fraction of traces kept, decided by trace id so a trace is kept or dropped whole.
  // k_min_sampling_rate..1. Default 1.
  double sampling_rate = 1.0;
  // The attribute vocabularies its spans speak (tracecast/conventions.h): one or more of
  // openrouter, genai, openinference, langfuse, langsmith; a name two of them share is
  // written once. Empty (the default): the preset's convention (presets.h, e.g. langfuse for
  // the langfuse kind), openrouter for grafana_cloud, otel_collector and otlp_http. Privacy
  // mode removes the content attributes of every convention in the set.
  ConventionSet conventions;

  static constexpr double k_min_sampling_rate = 0.0001;
  [[nodiscard]] static constexpr bool valid_sampling_rate(double rate) noexcept {
    return rate >= k_min_sampling_rate && rate <= 1.0;  // false for NaN too
  }

  // --- routing (issue 11; both change live with update_destination()) --------------------
  // false: no request is routed to it (counted in DestinationCounters::filtered, outside
  // `submitted`); what it had batched is still sent. Default true.
  bool enabled = true;
  // The gateway API key ids (LlmRequest::api_key_id) whose requests it takes; empty: every
  // key's. A request whose key id is not on the list, or has none, is not routed to it
  // (counted in `filtered`). At most k_max_api_key_ids entries, each 1..k_max_api_key_id_bytes
  // bytes of printable ASCII (no space, no control byte), no duplicates. Matched exactly, in
  // O(log entries) per request after one hash of the request's key id.
  std::vector<std::string> api_key_ids;

  // --- limits (0: the pipeline's; a backend preset may supply its own) -------------------
  // The largest request body (OTLP bytes before compression) sent to it: its batches are
  // sealed before this, and one request's spans larger than it are dropped as too_large.
  // 0: batch.max_bytes; else 4 KiB..16 MiB, and batch.max_bytes when that is smaller
  // (New Relic refuses bodies over 1 MB: 1000000).
  std::uint32_t max_request_bytes = 0;
  // Strings written for it (attribute keys and values, span names, status messages) longer
  // than this many bytes are cut at a UTF-8 code point boundary, counted
  // (DestinationCounters::values_truncated and PipelineStats::encoder.values_truncated) and
  // the span marked `tracecast.truncated` = true. 0: encoder.max_value_bytes; else 4..16 MiB,
  // and encoder.max_value_bytes when that is smaller (Tempo cuts at 2048 bytes by default,
  // New Relic at 4095 characters: 4095 bytes is never more).
  std::uint32_t max_attribute_value_bytes = 0;

  // --- resource -------------------------------------------------------------------------
  // Added to the resource of every span encoded for it, before the mapping's (a key given
  // here wins over mapping.service_name, mapping.extra_resource_attributes, ...): e.g. W&B
  // Weave's `wandb.entity` and `wandb.project`. At most k_max_resource_attributes; keys
  // 1..k_max_resource_key_bytes bytes, values at most k_max_resource_value_bytes, both valid
  // UTF-8 without control bytes; no duplicate keys. Spans of requests with equal resources
  // still share one ResourceSpans.
  std::vector<std::pair<std::string, std::string>> resource_attributes;

  static constexpr std::size_t k_max_api_key_ids = 1024;
  static constexpr std::uint32_t k_min_request_bytes = 4096;
  static constexpr std::uint32_t k_max_request_bytes = 16u << 20;
  // Below 256 bytes the limit would cut attribute keys (metadata keys reach 143 bytes:
  // "trace.metadata." + 128) and names such as service.name, not only values.
  static constexpr std::uint32_t k_min_attribute_value_bytes = 256;
  static constexpr std::uint32_t k_max_attribute_value_bytes = 16u << 20;
  static constexpr std::size_t k_max_resource_attributes = 16;
  static constexpr std::size_t k_max_resource_key_bytes = 256;
  static constexpr std::size_t k_max_resource_value_bytes = 4096;

  // The issues of the routing, limit and resource fields above (sampling_rate too), each
  // named by its field ("api_key_ids[3]", "resource_attributes[1].key") with a code
  // (out_of_range, too_long, required, duplicate, invalid); empty: valid. The ranges and sizes
  // are settings()' rows; the printable-ASCII, UTF-8 and duplicate rules are code beside them.
  // The transport is checked by validate(DestinationConfig). add_destination() and
  // update_destination() refuse a destination with any. Never echoes a value (key ids and
  // resource values may be private). Thread-safe. Allocates.
  [[nodiscard]] std::vector<ValidationIssue> validate() const;

  // The rows describing the fields above (not `transport`: destination_settings() in
  // tracecast/destination.h): JSON key (a `destinations` entry's), unit, range, doc. They drive
  // validate()'s ranges, the config file's keys and README's destination table.
  // Thread-safe, no allocation.
  [[nodiscard]] static std::span<const Setting> settings() noexcept;
};

// What stats() and prometheus() list per destination (totals and aggregates always cover
// every destination). See README "Stats at scale" for the series this bounds.
struct StatsConfig {
  // The busiest destinations listed, by spans submitted, among those with traffic in the
  // last 10..20 s. Default 20; 0..1000.
  std::uint32_t top_destinations = 20;
  // Destinations not healthy listed besides them, lowest id first; the others are counted in
  // destinations_by_state only. Default 100; 0..10000.
  std::uint32_t max_unhealthy_destinations = 100;
};

// The optional disable policy: a destination whose requests have failed for a reason
// retrying cannot fix (401, 403, 404 or blocked by the egress policy) without a success
// in between for `after` is disabled: its spans are then dropped as DropReason::disabled,
// never encoded or sent, until update_destination() (or a remove and re-add).
struct DisablePolicy {
  bool enabled = false;
  // From the first such failure after the last success. Default 1 h; 0..30 days (0: at the
  // first such failure).
  std::chrono::milliseconds after{std::chrono::hours(1)};
};

struct PipelineConfig {
  IngestConfig ingest;      // ring capacity, slot size, value limits, max producer threads
  MappingConfig mapping;    // service name/version, extra resource attributes, GenAI names
  EncoderLimits encoder;    // attribute value and count limits in the OTLP/JSON writer
  BatchConfig batch;
  // Encoder worker threads. Default 1; 1..1 (one worker keeps up with ~1 M spans/s of
  // canonical requests on one core; more are not implemented yet, see README).
  std::uint32_t encoder_threads = 1;
  // Bytes of batch buffers (open, sealed, compressed, in flight, waiting for retry) all
  // destinations together may hold. Default 256 MiB; at least 4 * batch.max_bytes.
  std::size_t memory_budget_bytes = 256u << 20;
  // Bytes of batch buffers one destination may hold; a destination at its budget sheds its
  // own new spans (counted as backpressure) while the others keep their rate. Default
  // 32 MiB; batch.max_bytes..memory_budget_bytes.
  std::size_t destination_budget_bytes = 32u << 20;
  // Compression levels: gzip 0..12 (libdeflate; default 1), zstd -7..22 (default 1).
  int gzip_level = 1;
  int zstd_level = 1;
  SenderConfig sender;  // in-flight caps, connect timeout, retry policy, HTTP/2
  // Default deadline of the destructor's shutdown. Default 10 s; 0..10 min.
  std::chrono::milliseconds shutdown_timeout{10000};
  StatsConfig stats;
  DisablePolicy disable;

  // Empty when valid, else "<field>: <reason>" for the first invalid field (nested fields
  // dotted: "batch.max_bytes: ..."): first_error_text() of validate(PipelineConfig).
  [[nodiscard]] std::string validate() const;
};

// Every issue of a PipelineConfig, each named by its dotted member path ("batch.max_bytes",
// "sender.retry.multiplier", "ingest.limits.max_field_bytes"): the ranges of the settings
// rows (README "Configuration" is generated from them; validate(IngestConfig),
// validate(EncoderLimits) and validate(SenderConfig) prefixed) and the extra resource
// attributes. Thread-safe (pure). Allocates only for issues.
[[nodiscard]] std::vector<ValidationIssue> validate(const PipelineConfig& config);

// Why spans handed to a destination were not delivered.
enum class DropReason : std::uint8_t {
  sampled_out,        // not kept by the destination's sampling rate
  backpressure,       // destination (or total) buffer budget exhausted: shed at once
  too_large,          // one request's spans larger than batch.max_bytes (or its max_request_bytes)
  rejected,           // non-retryable HTTP status (400, 401, 403, 404, 413, ...)
  retries_exhausted,  // retryable failures until the retry policy's max elapsed time
  network,            // a failure retrying cannot fix (TLS verification, bad URL, ...)
  partial_rejected,   // 2xx with partialSuccess.rejectedSpans
  shutdown,           // not delivered by the shutdown deadline
  removed,            // destination removed before they were sent
  invalid,            // refused by the encoder (all-zero trace or span id; mapping never makes one)
  blocked,            // the egress policy refused the destination's address (sender.egress)
  disabled,           // the destination is disabled (DisablePolicy): not encoded, not sent
  k_count
};
inline constexpr std::size_t k_drop_reasons = static_cast<std::size_t>(DropReason::k_count);
[[nodiscard]] std::string_view to_string(DropReason reason) noexcept;

// Request latency histogram (try_send to completion, retries included): bucket i counts the
// requests with k_latency_bounds_ms[i-1] < latency <= k_latency_bounds_ms[i] (not cumulative;
// the Prometheus output accumulates); the last bucket is everything above the last bound.
inline constexpr std::array<double, 12> k_latency_bounds_ms = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 5000, 30000};

// A destination's health, from the outcomes of its requests' attempts.
//   healthy   no failure since its last success (or nothing finished yet)
//   retrying  an attempt failed in a way retrying may fix (429, 5xx, connection, timeout):
//             set at the first such attempt while its retries run (the sender reports each
//             scheduled retry: SenderConfig::report_retries), and kept if they ran out
//   failing   its last request failed in a way retrying cannot fix (400, 401, 403, 404,
//             413, TLS verification, bad URL)
//   blocked   its last request was refused by the operator's egress policy
//   disabled  the DisablePolicy disabled it: its spans are dropped as `disabled`
enum class DestinationState : std::uint8_t { healthy, retrying, failing, blocked, disabled, k_count };
inline constexpr std::size_t k_destination_states = static_cast<std::size_t>(DestinationState::k_count);
[[nodiscard]] std::string_view to_string(DestinationState state) noexcept;

struct DestinationHealth {
  DestinationState state = DestinationState::healthy;
  // The last failure (ok: none yet): the connection test's categories
  // (classify_send_outcome()), `blocked` outcomes as blocked with status 0.
  ConnectionTestResult::Category last_error = ConnectionTestResult::Category::ok;
  int last_http_status = 0;                 // of the last failure; 0: no HTTP answer
  std::int64_t last_error_unix_ns = 0;      // ns since the Unix epoch; 0: never
  std::int64_t last_success_unix_ns = 0;    // ns since the Unix epoch; 0: never
  std::uint32_t consecutive_failures = 0;   // finished requests failed since the last success
  // One line safe to show the destination's owner: what happened and what to do, in the
  // connection test's words (connection_hint()). Never a credential, a URL or another
  // destination's data. Empty while healthy with no failure yet.
  std::string message;
};

struct DestinationCounters {
  std::uint32_t id = 0;        // 0 for the total
  std::string name;            // the destination's name (never a credential); "total"
  std::string account;         // "" for the total and for all-account destinations
  bool removed = false;
  // Spans.
  std::uint64_t submitted = 0;  // handed to this destination (after routing)
  std::uint64_t delivered = 0;
  std::uint64_t in_flight = 0;  // in an open batch, sealed, sending or waiting for retry
  std::array<std::uint64_t, k_drop_reasons> dropped{};
  // Requests and bytes.
  std::uint64_t requests_sent = 0;       // batches handed to the sender
  std::uint64_t requests_delivered = 0;
  std::uint64_t retries = 0;             // attempts beyond the first
  // Requests whose answer broke a rule and was handled conservatively (a body past
  // sender.max_response_bytes, headers over 64 KiB, a garbage or clamped Retry-After, a
  // rejectedSpans that is not an integer in 0..spans): see Completion::malformed_answer.
  std::uint64_t malformed_answers = 0;
  // Spans of requests not routed to this destination by its own routing: disabled
  // (PipelineDestination::enabled) or an API key id not on its api_key_ids. Not part of
  // `submitted` (never handed to it), so the identity below is unchanged.
  std::uint64_t filtered = 0;
  // Strings cut by the encoder for this destination (its max_attribute_value_bytes, or
  // encoder.max_value_bytes); also in PipelineStats::encoder.values_truncated.
  std::uint64_t values_truncated = 0;
  std::uint64_t bytes_raw = 0;           // OTLP bytes sealed (JSON or protobuf), before compression
  std::uint64_t bytes_compressed = 0;    // bytes handed to the sender
  std::uint64_t largest_batch_bytes = 0;  // largest OTLP body sealed (<= its max_request_bytes, batch.max_bytes)
  std::uint64_t buffer_bytes = 0;        // gauge: batch buffer bytes held now
  std::array<std::uint64_t, k_latency_bounds_ms.size() + 1> latency_buckets{};
  std::uint64_t latency_sum_ns = 0;
  DestinationHealth health;  // the total's: state healthy, the rest empty

  [[nodiscard]] std::uint64_t dropped_total() const noexcept;
  [[nodiscard]] std::uint64_t dropped_by(DropReason r) const noexcept {
    return dropped[static_cast<std::size_t>(r)];
  }
  // submitted == delivered + dropped_total() + in_flight.
  [[nodiscard]] bool balanced() const noexcept {
    return submitted == delivered + dropped_total() + in_flight;
  }
};

struct PipelineStats {
  IngestStats ingest;                          // requests: accepted / rejected full / closed
  std::uint64_t requests_routed = 0;           // drained, mapped and handed to destinations
  std::uint64_t requests_unrouted = 0;         // drained with no destination for their account
  std::uint64_t mapping_issues = 0;            // requests with a MappingIssue flag set
  // map_request calls by the worker: one per request per destination that encodes it (at
  // its seal), whatever the number of conventions in the destination's set. In stats(), not
  // (yet) in prometheus().
  std::uint64_t mappings = 0;
  // Linger expiries at which the destination already had max_in_flight requests unfinished,
  // so its batch was left to grow (up to batch.max_spans) instead of queueing another body.
  std::uint64_t batches_deferred = 0;
  // Batches sealed before their linger because the batch memory passed 3/4 of
  // memory_budget_bytes (their compressed bodies take less room than the pending requests).
  std::uint64_t batches_sealed_early = 0;
  EncoderStats encoder;                        // summed over destinations
  std::uint64_t memory_bytes = 0;              // gauge: batch buffer bytes held now
  std::uint64_t memory_peak_bytes = 0;
  std::uint64_t health_notices_dropped = 0;    // health changes the callback never saw (queue full)
  DestinationCounters total;                   // sum over every destination (removed ones too)
  // Destinations configured (removed ones not), by health state.
  std::array<std::uint64_t, k_destination_states> destinations_by_state{};
  std::uint64_t destinations_configured = 0;   // the sum of destinations_by_state
  // The destinations listed, ascending id: which ones depends on the call (stats(),
  // stats_of(), stats_all(); totals() lists none).
  std::vector<DestinationCounters> destinations;
};

// Called once per destination health change (DestinationHealth::state), from the pipeline's
// notifier thread "tracecast-note" (never from submit(), the worker or the sender): `id`,
// the destination's name and account, the old and new states, and the health at the
// change (message included). Changes are delivered in order; a slow callback delays later
// ones only (they queue, at most 65,536: beyond, the oldest are dropped and counted in
// PipelineStats::health_notices_dropped). Must not call back into the Pipeline's
// set_health_callback() (it may call anything else).
struct HealthChange {
  std::uint32_t id = 0;
  std::string name;
  std::string account;
  DestinationState from = DestinationState::healthy;
  DestinationState to = DestinationState::healthy;
  DestinationHealth health;
};
using HealthCallback = std::function<void(const HealthChange&)>;

struct AddDestinationOutcome {
  std::uint32_t id = 0;  // 0 on error
  std::vector<ValidationIssue> issues;
  [[nodiscard]] bool ok() const noexcept { return id != 0; }
};

struct DrainResult {
  bool complete = false;           // everything was delivered or dropped before the deadline
  std::uint64_t in_flight = 0;     // spans still in flight at the deadline
  // The snapshot at return, listing what stats() lists at that moment: for flush(), stats()'s
  // bounded list; for shutdown(), the final report's (see stats(): the busiest, and those not
  // healthy or that lost spans). Totals always cover every destination. Every destination's
  // counters after shutdown: stats_all().
  PipelineStats stats;
};

class Pipeline {
 public:
  // Validates the config (std::invalid_argument with validate()'s message), allocates every
  // fixed structure, starts the worker and sender threads.
  explicit Pipeline(PipelineConfig config);
  // shutdown(now + config.shutdown_timeout) if not already shut down.
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // Adds a destination for `account` ("" = every account's requests). Validates the
  // transport and the pipeline fields; takes effect for requests the worker drains after
  // this returns. Submitters are never paused. Does not test the connection (see
  // test_connection()). Thread-safe. Allocates.
  AddDestinationOutcome add_destination(std::string_view account, const PipelineDestination& destination);
  // The same for many destinations in one step (e.g. 100,000 loaded at start-up): one
  // outcome per input, in order; a refused one (its issues name the field) gets id 0 and is
  // not added, and the others' ids stay consecutive. Cost O(n) in all (each add is O(1)
  // amortised; the sender takes them in chunks of 1,024, one wake-up of its thread each), and
  // the worker takes them in one command: ~1.1-1.6 s for 150,000 on a 2-core VM (README
  // Performance). Thread-safe. Allocates.
  std::vector<AddDestinationOutcome> add_destinations(
      std::span<const std::pair<std::string, PipelineDestination>> destinations);
  // Changes a destination: its open batch is sealed and sent with the old settings first.
  // Its routing (enabled, api_key_ids), limits and resource attributes apply to the requests
  // the worker drains after this returns. Returns the issues (PipelineDestination::validate(),
  // validate(DestinationConfig); nothing changes on errors or an unknown id). Thread-safe.
  // Allocates.
  std::vector<ValidationIssue> update_destination(std::uint32_t id, const PipelineDestination& destination);
  // Stops routing to a destination. What it already batched is still sent; it is removed
  // from the sender when nothing of it is in flight. Unknown id: false. Thread-safe.
  bool remove_destination(std::uint32_t id);

  // The hot path. Copies `request` into the ingest ring and returns at once: never blocks,
  // never allocates after the calling thread's first submit (which registers the thread).
  // ok, full (ring full: the request is dropped and counted), closed (shut down).
  // Thread-safe, from any number of threads: a thread holds one of
  // config.ingest.max_producers registrations while it lives (returned when it exits);
  // threads beyond that share an overflow registration (slower, still non-blocking and
  // allocation-free; counted in stats().ingest.overflow_submits).
  [[nodiscard]] submit_result submit(const LlmRequest& request) noexcept;

  // Seals every open batch, hands everything to the sender, and waits until all that was
  // submitted before the call is delivered or dropped, or `deadline` passes. Thread-safe.
  DrainResult flush(std::chrono::steady_clock::time_point deadline);
  // Stops accepting, then flushes until `deadline`; what is left is aborted and counted as
  // dropped(shutdown). Idempotent; later calls return the final stats. The result lists what
  // stats() lists after shutdown (not every destination: at 150,000 destinations that listing
  // was ~70 MB at the moment of peak memory). Thread-safe. Allocates (the listing).
  DrainResult shutdown(std::chrono::steady_clock::time_point deadline);

  // A consistent snapshot: the identity holds in it for every listed destination and the
  // total. Totals and destinations_by_state cover every destination; `destinations` lists
  // the ones not healthy (at most config.stats.max_unhealthy_destinations, lowest ids) and
  // the config.stats.top_destinations busiest (spans submitted, among those with traffic in
  // the last 10..20 s); with no more destinations configured than top_destinations, every
  // one. Cost: O(not healthy + recently active), not O(configured): idle destinations cost
  // nothing. After shutdown() it lists, from the final state, the top_destinations busiest
  // by spans submitted over the whole run and, lowest ids first and at most
  // max_unhealthy_destinations of them, the ones not healthy or that lost spans (dropped for a
  // reason other than sampled_out; removed ones left out); every destination when there are
  // no more than top_destinations. O(destinations) pointer work then, but only the listed
  // ones are copied. Thread-safe. Allocates.
  [[nodiscard]] PipelineStats stats() const;
  // The same snapshot listing exactly the destinations in `ids` that exist (removed ones
  // included; unknown ids left out), ascending id. O(ids). Thread-safe. Allocates.
  [[nodiscard]] PipelineStats stats_of(std::span<const std::uint32_t> ids) const;
  // The same snapshot listing every destination ever added. O(destinations) and ~500 bytes
  // per destination listed (~70 MB at 150,000): for tests and tools, not for a scrape or a
  // routine final report. Thread-safe. Allocates.
  [[nodiscard]] PipelineStats stats_all() const;
  // One destination's counters and health (as listed in stats()), or nullopt for an id
  // never added. Thread-safe. Allocates (the name and account).
  [[nodiscard]] std::optional<DestinationCounters> destination_stats(std::uint32_t id) const;
  // The snapshot without the per-destination list (`destinations` empty): what a progress
  // line or a health check needs. Thread-safe.
  [[nodiscard]] PipelineStats totals() const;
  // stats() in Prometheus text exposition format (tracecast_* metrics): pipeline-wide and
  // total series always, per-destination series for the destinations stats() lists (see
  // README "Stats at scale" for the series count). Thread-safe. Allocates.
  [[nodiscard]] std::string prometheus() const;
  // The same for the destinations in `ids` (stats_of()). Thread-safe. Allocates.
  [[nodiscard]] std::string prometheus_of(std::span<const std::uint32_t> ids) const;

  // Registers the health-change callback (replacing any earlier one; an empty function
  // unregisters). Takes effect for changes after it returns. See HealthChange for the thread
  // and the ordering. Thread-safe. Allocates.
  void set_health_callback(HealthCallback callback);
  [[nodiscard]] const PipelineConfig& config() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The destination as add_destination() and update_destination() apply it: what it leaves
// unset filled from its kind's preset (tracecast/presets.h) — protocol and compression
// (apply_preset_defaults()), max_request_bytes and max_attribute_value_bytes when 0 (New
// Relic: 1 MB and 4,095), the resource attributes the backend needs after the destination's
// own (the first of equal keys wins; W&B Weave: wandb.entity, wandb.project) and, when
// `conventions` is empty, the preset's convention (openrouter for grafana_cloud,
// otel_collector and otlp_http). A transport with errors is returned as given (validation
// reports them). Thread-safe (pure). Allocates.
[[nodiscard]] PipelineDestination with_preset_defaults(const PipelineDestination& destination);

// Loading a PipelineConfig. Errors name the source, the field and the problem.
struct ConfigLoadResult {
  PipelineConfig config;
  // Destinations found (OTEL_EXPORTER_OTLP_* or the file's "destinations"), each with its
  // account ("" = all).
  std::vector<std::pair<std::string, PipelineDestination>> destinations;
  std::string error;  // empty: ok
  [[nodiscard]] bool ok() const noexcept { return error.empty(); }
};

// Applies the standard environment variables over `base`: OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE,
// OTEL_BSP_SCHEDULE_DELAY, OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT / _HEADERS / _COMPRESSION /
// _TIMEOUT / _PROTOCOL / _CERTIFICATE (destination_from_env(); an endpoint yields one
// all-account otlp_http destination; TRACECAST_DESTINATION_KIND / _FIELDS make it a preset,
// which needs no endpoint when it has hosted regions), TRACECAST_EGRESS_ALLOW / _ENFORCE (egress_from_env()). `getenv` is injectable
// for tests. Thread-safe if getenv is. Allocates.
ConfigLoadResult config_from_env(PipelineConfig base = {},
                                 const char* (*getenv_fn)(const char*) = nullptr);
// The one reader of the exporter variables OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT / _HEADERS /
// _COMPRESSION / _TIMEOUT / _PROTOCOL / _CERTIFICATE (the TRACES_ one wins; an empty value
// is unset), used by config_from_env() and by tracecast-check so that both accept and refuse
// the same values with the same messages. Each variable is checked for itself (a whole number
// of milliseconds, gzip/zstd/none in any case, http/json or http/protobuf, the headers'
// spec format); the destination as a whole is not validated here.
struct EnvDestination {
  // Fields the variables set over a default DestinationConfig (kind otlp_http, name
  // "otel-env"). The generic OTEL_EXPORTER_OTLP_ENDPOINT is a base URL: endpoint is it plus
  // "/v1/traces" (OTel spec), endpoint_base the base URL as given (trimmed).
  DestinationConfig config;
  std::string endpoint_base;
  // The variable that set each field, or nullptr when unset.
  const char* endpoint = nullptr;
  const char* headers = nullptr;
  const char* compression = nullptr;
  const char* timeout = nullptr;
  const char* protocol = nullptr;
  const char* certificate = nullptr;
  // TRACECAST_DESTINATION_KIND (a preset name, tracecast/presets.h) and
  // TRACECAST_DESTINATION_FIELDS ("name=value,..." as OTEL_EXPORTER_OTLP_HEADERS; values may
  // be secrets and are never quoted): a preset with hosted regions needs no endpoint.
  const char* kind = nullptr;
  const char* fields = nullptr;
  std::string error;  // "<VARIABLE>: <reason>" (a header value is never quoted); empty: ok
  [[nodiscard]] bool ok() const noexcept { return error.empty(); }
  // The variable to name for a validate() issue's path ("timeout" -> the timeout variable;
  // fields no variable sets -> the endpoint's).
  [[nodiscard]] const char* variable_for(std::string_view field) const noexcept;
};
[[nodiscard]] EnvDestination destination_from_env(const char* (*getenv_fn)(const char*) = nullptr);

// The one reader of TRACECAST_EGRESS_ALLOW (parse_egress_allow(): replaces the allow-lists
// of `policy` when set) and TRACECAST_EGRESS_ENFORCE (true/1 or false/0), used by
// config_from_env() and tracecast-check. Empty when ok, else "<VARIABLE>: <reason>".
[[nodiscard]] std::string egress_from_env(EgressPolicy& policy, const char* (*getenv_fn)(const char*) = nullptr);

// Reads a JSON config file (see README "Configuration file"). Allocates.
ConfigLoadResult config_from_json_file(const std::string& path);
// The same from a JSON text; `source` names it in errors.
ConfigLoadResult config_from_json(std::string_view json, std::string_view source = "config");

}  // namespace tracecast
