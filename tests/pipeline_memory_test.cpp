// What a configured destination costs while it is quiet, and once it has sent (issue 9:
// 100,000 accounts, 150,000 destinations, in at most 512 MiB of RSS; at 20,000 requests/s
// every one of them sends every few seconds). Memory must grow with pending data, not with
// the number of destinations: a destination holds its routing entry, its counters and its
// resolved config. Counted with the test allocator (operator new; bytes as
// malloc_usable_size reports them, so the allocator's rounding is included; curl allocates
// nothing for an idle destination). Measured (November 2026, GCC 12, RelWithDebInfo): 1,015
// bytes per idle destination, 497 of them in the sender; 1,114-1,153 once it has sent (a
// destination whose body the sender's full queue refused keeps an unsent list; before the
// compact counters: 1,399 and 1,683; before issue 9's first slimming: 1,822 idle, 929 of them
// in the sender, plus ~300 bytes of curl header lists per destination that had sent).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "alloc_counter.h"
#include "canonical_request.h"
#include "egress_util.h"
#include "sink_process.h"
#include "tracecast/pipeline.h"
#include "tracecast/sender.h"

namespace tracecast {
namespace {

// Destinations as a gateway configures them: a name, an https endpoint on a shared backend
// host, an API key header, a codec. Nothing is submitted, so nothing is ever sent.
std::vector<std::pair<std::string, PipelineDestination>> make_destinations(std::size_t first, std::size_t n) {
  static constexpr const char* k_codecs[] = {"none", "gzip", "zstd"};
  std::vector<std::pair<std::string, PipelineDestination>> out;
  out.reserve(n);
  for (std::size_t i = first; i < first + n; ++i) {
    PipelineDestination d;
    d.transport.kind = DestinationKind::otlp_http;
    d.transport.name = "account-" + std::to_string(i / 2) + "-dest-" + std::to_string(i % 2);
    d.transport.endpoint = "https://otlp.backend.example.com/v1/traces";
    d.transport.headers.emplace_back("authorization", "Bearer k-" + std::to_string(1000000 + i));
    d.transport.compression = k_codecs[i % 3];
    d.privacy_mode = i % 5 == 0;
    out.emplace_back("account-" + std::to_string(i / 2), std::move(d));
  }
  return out;
}

// Bytes held per destination added to a running pipeline (worker and sender state), idle.
double bytes_per_idle_destination(std::size_t n) {
  Pipeline pipeline{PipelineConfig{}};
  // Warm-up: the first destinations size the tables; what is measured is the increment.
  for (const AddDestinationOutcome& o : pipeline.add_destinations(make_destinations(0, 1000))) {
    EXPECT_TRUE(o.ok());
  }
  auto batch = make_destinations(1000, n);
  const std::int64_t before = test::live_bytes();
  for (const AddDestinationOutcome& o : pipeline.add_destinations(batch)) EXPECT_TRUE(o.ok());
  // The sender takes new destinations on its own thread: a snapshot of the totals waits for
  // the worker, and the sender's per-destination entry is created at add time.
  (void)pipeline.totals();
  const std::int64_t after = test::live_bytes();
  (void)pipeline.shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(10));
  return static_cast<double>(after - before) / static_cast<double>(n);
}

// The sender's share of it: its entry per destination (counters, resolved config).
double sender_bytes_per_idle_destination(std::size_t n) {
  Sender sender{SenderConfig{}};
  for (const auto& entry : make_destinations(0, 1000)) EXPECT_NE(sender.add_destination(entry.second.transport).id, 0u);
  const auto batch = make_destinations(1000, n);
  const std::int64_t before = test::live_bytes();
  for (const auto& entry : batch) EXPECT_NE(sender.add_destination(entry.second.transport).id, 0u);
  const std::int64_t after = test::live_bytes();
  return static_cast<double>(after - before) / static_cast<double>(n);
}

// Bytes held per destination once each has sent (a request delivered to a sink and the
// books settled): what 150,000 destinations that all send every few seconds cost. The first
// round (as many destinations, as many requests) warms the buffer pool's free lists, the
// sender's transfers and curl's connections, so the second round's increment is the
// destinations' own state.
double bytes_per_sending_destination(std::size_t n) {
  test::SinkProcess sink;
  PipelineConfig config;
  config.sender.egress = test::loopback_egress();
  Pipeline pipeline{config};
  auto round = [&](std::size_t first) {
    auto batch = make_destinations(first, n);
    for (auto& [account, d] : batch) d.transport.endpoint = sink.url();
    for (const AddDestinationOutcome& o : pipeline.add_destinations(batch)) EXPECT_TRUE(o.ok());
    batch.clear();
    batch.shrink_to_fit();
    test::CanonicalRequest c;
    for (std::size_t i = first; i < first + n; i += 2) {  // one request per account: both its destinations
      const std::string account = std::string("account-").append(std::to_string(i / 2));
      c.r.account = account;
      EXPECT_EQ(pipeline.submit(c.r), submit_result::ok);
    }
    EXPECT_TRUE(pipeline.flush(std::chrono::steady_clock::now() + std::chrono::seconds(60)).complete);
  };
  round(0);
  const std::int64_t before = test::live_bytes();
  round(n);
  const std::int64_t after = test::live_bytes();
  const PipelineStats s = pipeline.totals();
  EXPECT_EQ(s.total.delivered, 2 * n);
  EXPECT_EQ(s.total.dropped_total(), 0u);
  (void)pipeline.shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(10));
  return static_cast<double>(after - before) / static_cast<double>(n);
}

TEST(SenderMemory, AnIdleDestinationCostsUnder600Bytes) {
  const double per_destination = sender_bytes_per_idle_destination(20000);
  RecordProperty("sender_bytes_per_idle_destination", static_cast<int>(per_destination));
  EXPECT_LE(per_destination, 600.0) << "counters are created at the first request, strings and header lists "
                                       "share one block (transport/src/sender.cpp DestSnapshot)";
}

TEST(PipelineMemory, AnIdleDestinationCostsUnder1088Bytes) {
  const double per_destination = bytes_per_idle_destination(20000);
  RecordProperty("bytes_per_idle_destination", static_cast<int>(per_destination));
  EXPECT_LE(per_destination, 1088.0) << "worker + sender state per destination (the worker's Destination keeps "
                                        "compact counters: core/pipeline/compact_counters.h)";
}

TEST(PipelineMemory, ADestinationThatHasSentCostsUnder1280Bytes) {
  const double per_destination = bytes_per_sending_destination(4000);
  RecordProperty("bytes_per_sending_destination", static_cast<int>(per_destination));
  EXPECT_LE(per_destination, 1280.0) << "worker + sender state per destination, counters included: only a "
                                        "drop, failure or retry adds the rare counter blocks";
}

}  // namespace
}  // namespace tracecast
