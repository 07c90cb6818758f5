// Synchronous connection test of one destination: sends one small, valid OTLP trace in the
// destination's protocol (OTLP/JSON, or protobuf for http/protobuf; a single span of service
// "tracecast-connection-test") and classifies the answer, as the reference's "Test
// Connection" step does before a destination is saved.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tracecast/destination.h"
#include "tracecast/egress.h"
#include "tracecast/sender.h"

namespace tracecast {

struct ConnectionTestResult {
  enum class Category : std::uint8_t {
    ok,
    invalid_config,     // validate() found errors; nothing was sent
    dns,                // host name did not resolve
    connect_refused,    // nothing listens there (or it is unreachable)
    tls,                // TLS handshake or certificate verification failed
    timeout,            // no complete answer within the timeout
    unauthorized,       // 401 or 403
    not_found,          // 404
    payload_too_large,  // 413
    client_error,       // other 4xx
    server_error,       // 5xx
    other,              // anything else (protocol error, 1xx/3xx answer, ...)
    blocked,            // the egress policy refused the address: no connection attempted.
                        // The same whether anything listens there or not (no port scanner).
    rate_limited,       // 429: the endpoint limits the traffic (the sender retries it)
  };
  Category category = Category::other;
  int http_status = 0;  // 0 when no HTTP answer arrived
  // One line: what happened (curl's error text or the status), never a credential.
  std::string message;
  // One line: what to do about it, in the words of the reference's troubleshooting section.
  std::string hint;

  [[nodiscard]] bool ok() const noexcept { return category == Category::ok; }
};

[[nodiscard]] std::string_view to_string(ConnectionTestResult::Category category) noexcept;

// The connection test's classification, for any send's outcome (the pipeline's destination
// health uses it, so a failing destination is explained in the same words as its test):
// a 2xx is ok; 401/403 unauthorized, 404 not_found, 413 payload_too_large, 429 rate_limited,
// other 4xx client_error, 5xx server_error; with no HTTP answer (`http_status` 0), or when the
// attempt failed after its status line (`network_error` not none: a 200 whose body broke off or
// never finished), `network_error` decides (dns, connect -> connect_refused, tls, timeout;
// others: other). Thread-safe.
// No allocation.
[[nodiscard]] ConnectionTestResult::Category classify_send_outcome(int http_status, NetworkError network_error) noexcept;

// The one-line fix hint for `category` in the reference's troubleshooting words, in the
// backend's own words where the kind's preset row has them (tracecast/presets.h: Grafana
// Cloud's "verify the OTLP gateway URL", Langfuse's "check the public and secret key of the
// Langfuse project", ...; a 415 says which encoding the backend takes); `http_status` is
// quoted for client_error, rate_limited and server_error (502/503/504 as temporary, retried by
// the sender), and the generic client_error hint names the
// encoding the endpoint must accept: protobuf when `protobuf` (protocol http/protobuf), else
// JSON. Never contains a credential (none is given). Thread-safe. Allocates the result.
[[nodiscard]] std::string connection_hint(ConnectionTestResult::Category category, DestinationKind kind, int http_status,
                                          bool protobuf = false);

// What the test request carries.
enum class ConnectionTestPayload : std::uint8_t {
  // One span of service "tracecast-connection-test" (plus the preset's resource attributes,
  // e.g. W&B Weave's wandb.entity / wandb.project): the backend stores it, so a pass proves
  // the whole path, and the span shows up in the backend.
  one_span,
  // An ExportTraceServiceRequest with no resource_spans and the header
  // "X-Test-Connection: true" (what the reference product's webhook test sends): proves the
  // URL, TLS and credentials without storing anything. OTLP/JSON body {"resourceSpans":[]};
  // protobuf body empty (zero bytes: proto3 encodes a message with no fields set as nothing).
  // A backend that ignores empty exports may answer 2xx before checking everything a stored
  // span would.
  empty,
};

// Validates `config`, then POSTs the test payload (`payload`: one test span by default)
// uncompressed, in the destination's protocol (OTLP/JSON for http/json, protobuf for
// http/protobuf: what its sends will be), with every header of resolve(config), and waits at
// most `timeout` (the smaller of it and config.timeout) for the answer. Blocks the calling
// thread; never retries. Thread-safe (own curl handle per call). Allocates. Never throws except std::bad_alloc.
// `egress` is checked on the address curl is about to connect to, as the Sender does
// (tracecast/egress.h); a refused address answers Category::blocked with a hint naming the
// policy and nothing else (no connection attempted, so an internal host that is up and one
// that is down look the same). Pass the Sender's policy (Sender::egress_policy()) so that
// the test and the sends agree; the default is the default policy (public unicast only). An
// invalid policy answers invalid_config with field "egress".
[[nodiscard]] ConnectionTestResult test_connection(const DestinationConfig& config,
                                                   std::chrono::milliseconds timeout,
                                                   const EgressPolicy& egress = EgressPolicy{},
                                                   ConnectionTestPayload payload = ConnectionTestPayload::one_span);

// The test body test_connection() sends (a fresh trace id and timestamps each call): OTLP/JSON,
// or with `protobuf` the same span as an ExportTraceServiceRequest in the protobuf wire format
// (what an http/protobuf destination is tested with). Thread-safe. Allocates.
[[nodiscard]] std::string connection_test_body(bool protobuf = false);

// The same, with `payload` (empty: {"resourceSpans":[]} or zero bytes) and, for one_span,
// `resource_attributes` added to the test span's resource after service.name (JSON strings
// escaped per RFC 8259). Thread-safe. Allocates.
[[nodiscard]] std::string connection_test_body(bool protobuf, ConnectionTestPayload payload,
                                               const std::vector<std::pair<std::string, std::string>>& resource_attributes);

// The reference's rule, "configuration saves only upon successful verification": runs
// test_connection() and adds the destination to `sender` only if it passed.
struct TestedDestination {
  ConnectionTestResult test;
  AddDestinationResult added;  // id 0 when the test failed or validation found errors
  [[nodiscard]] bool ok() const noexcept { return test.ok() && added.ok() && added.id != 0; }
};
// Tests with sender.egress_policy(). Blocks for up to `timeout`. Thread-safe (as
// Sender::add_destination). Allocates.
[[nodiscard]] TestedDestination add_destination_if_reachable(Sender& sender, const DestinationConfig& config,
                                                             std::chrono::milliseconds timeout);

}  // namespace tracecast
