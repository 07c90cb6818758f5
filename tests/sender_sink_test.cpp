// The sender against tracecast-sink (tools/sink) with its fault injection: exact counts on
// both sides (sender stats vs the sink's /stats) for every retry rule, compressed bodies,
// Basic auth, partialSuccess, keep-alive, and a slow destination beside a healthy one.
#include <gtest/gtest.h>
#include <zlib.h>
#include <zstd.h>

#include <thread>

#include "egress_util.h"
#include "sender_util.h"
#include "sink_process.h"
#include "tracecast/connection_test.h"
#include "tracecast/sender.h"

namespace tracecast {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using test::wait_for;
using test::SinkProcess;

// One valid OTLP/JSON trace with one span (the connection test's body).
const std::string& body() {
  static const std::string b = connection_test_body();
  return b;
}

std::string gzip(const std::string& in) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, in.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string zstd(const std::string& in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3));
  return out;
}

SendRequest request(std::uint32_t dest, std::uint64_t tag, const std::string& b = body(),
                    std::string_view encoding = "") {
  return test::send_request(dest, tag, b, encoding);
}

SenderConfig fast_config() {
  SenderConfig c = tracecast::test::loopback_sender_config();
  c.retry.initial_interval = 10ms;
  c.retry.max_interval = 50ms;
  c.retry.max_elapsed = 10000ms;
  return c;
}

std::uint32_t add(Sender& sender, const SinkProcess& sink, std::uint32_t in_flight = 4) {
  DestinationConfig d;
  d.name = "sink";
  d.endpoint = sink.url();
  d.max_in_flight = in_flight;
  const auto r = sender.add_destination(d);
  EXPECT_TRUE(r.ok());
  return r.id;
}

TEST(SenderSink, DeliversPlainGzipAndZstdBodiesTheSinkAccepts) {
  SinkProcess sink;
  Sender sender(fast_config());
  const std::uint32_t id = add(sender, sink);
  const std::string gz = gzip(body());
  const std::string zs = zstd(body());
  for (std::uint64_t i = 0; i < 10; ++i) {
    ASSERT_TRUE(sender.try_send(request(id, 3 * i, body(), "")));
    ASSERT_TRUE(sender.try_send(request(id, 3 * i + 1, gz, "gzip")));
    ASSERT_TRUE(sender.try_send(request(id, 3 * i + 2, zs, "zstd")));
  }
  const auto done = wait_for(sender, 30);
  ASSERT_EQ(done.size(), 30U);
  for (const auto& c : done) EXPECT_EQ(c.outcome, SendOutcome::delivered) << c.http_status;
  const auto stats = sink.stats();
  EXPECT_EQ(stats.status(200), 30U);
  EXPECT_EQ(stats.spans, 30U);
  EXPECT_EQ(stats.invalid, 0U);
  EXPECT_EQ(stats.by_service.at("tracecast-connection-test"), 30U);
  EXPECT_LE(stats.trace_connections, 4U);  // keep-alive: no more than one per in-flight slot
  EXPECT_EQ(sender.stats().destinations[0].connections_opened, stats.trace_connections);
}

TEST(SenderSink, Retries429HonouringRetryAfterSeconds) {
  SinkProcess sink({"--fail-429", "1", "--retry-after", "1"});
  Sender sender(fast_config());
  const std::uint32_t id = add(sender, sink);
  ASSERT_TRUE(sender.try_send(request(id, 1)));
  const auto done = wait_for(sender, 1);
  ASSERT_EQ(done.size(), 1U);
  EXPECT_EQ(done[0].outcome, SendOutcome::delivered);
  EXPECT_EQ(done[0].attempts, 2U);
  EXPECT_GE(done[0].latency_ns, 1'000'000'000U);  // the Retry-After wait was honoured
  const auto stats = sink.stats();
  EXPECT_EQ(stats.status(429), 1U);
  EXPECT_EQ(stats.status(200), 1U);
  EXPECT_EQ(sender.stats().destinations[0].retried, 1U);
}

TEST(SenderSink, Retries503HonouringRetryAfterAsAnHttpDate) {
  SinkProcess sink({"--fail-5xx-first", "1", "--fail-status", "503", "--retry-after", "2",
                    "--retry-after-date", "--retry-after-on-5xx"});
  Sender sender(fast_config());
  const std::uint32_t id = add(sender, sink);
  ASSERT_TRUE(sender.try_send(request(id, 1)));
  const auto done = wait_for(sender, 1);
  ASSERT_EQ(done.size(), 1U);
  EXPECT_EQ(done[0].outcome, SendOutcome::delivered);
  EXPECT_GE(done[0].latency_ns, 900'000'000U);  // date resolution is one second
  EXPECT_EQ(sink.stats().status(503), 1U);
}

TEST(SenderSink, RetriesAFractionOf503sAndCountsExactlyOnBothSides) {
  SinkProcess sink({"--fail-503-fraction", "0.2"});
  Sender sender(fast_config());
  const std::uint32_t id = add(sender, sink, 8);
  for (std::uint64_t i = 0; i < 200; ++i) ASSERT_TRUE(sender.try_send(request(id, i)));
  const auto done = wait_for(sender, 200);
  ASSERT_EQ(done.size(), 200U);
  for (const auto& c : done) EXPECT_EQ(c.outcome, SendOutcome::delivered);
  const auto sink_stats = sink.stats();
  const auto s = sender.stats().destinations[0];
  EXPECT_EQ(sink_stats.status(200), 200U);
  EXPECT_GT(sink_stats.status(503), 0U);
  EXPECT_EQ(s.retried, sink_stats.status(503));
  EXPECT_EQ(s.attempts, sink_stats.requests);
  EXPECT_EQ(sink_stats.spans, 200U);
}

TEST(SenderSink, RetriesConnectionResetsAndDeliversEverything) {
  SinkProcess sink({"--reset-first", "3"});
  Sender sender(fast_config());
  const std::uint32_t id = add(sender, sink, 1);
  for (std::uint64_t i = 0; i < 5; ++i) ASSERT_TRUE(sender.try_send(request(id, i)));
  const auto done = wait_for(sender, 5);
  ASSERT_EQ(done.size(), 5U);
  for (const auto& c : done) EXPECT_EQ(c.outcome, SendOutcome::delivered);
  const auto s = sender.stats().destinations[0];
  EXPECT_EQ(sink.stats().resets, 3U);
  EXPECT_EQ(s.retried, 3U);
  EXPECT_EQ(s.network_errors[static_cast<std::size_t>(NetworkError::send_recv)], 3U);
  EXPECT_EQ(sink.stats().spans, 5U);
}

TEST(SenderSink, GrafanaBasicAuthIsAcceptedAndAWrongKeyIsRejectedWithoutRetry) {
  SinkProcess sink({"--basic-auth", "4242:glc_right"});
  Sender sender(fast_config());
  DestinationConfig d;
  d.kind = DestinationKind::grafana_cloud;
  d.endpoint = "http://127.0.0.1:" + std::to_string(sink.port());
  d.instance_id = "4242";
  d.api_key = "glc_right";
  const std::uint32_t good = sender.add_destination(d).id;
  d.api_key = "glc_wrong";
  const std::uint32_t bad = sender.add_destination(d).id;
  ASSERT_TRUE(sender.try_send(request(good, 1)));
  ASSERT_TRUE(sender.try_send(request(bad, 2)));
  const auto done = wait_for(sender, 2);
  ASSERT_EQ(done.size(), 2U);
  for (const auto& c : done) {
    if (c.tag == 1) {
      EXPECT_EQ(c.outcome, SendOutcome::delivered);
    } else {
      EXPECT_EQ(c.outcome, SendOutcome::rejected);
      EXPECT_EQ(c.http_status, 401);
      EXPECT_EQ(c.attempts, 1U);
    }
  }
  EXPECT_EQ(sink.stats().status(401), 1U);
  // The connection test agrees.
  EXPECT_EQ(test_connection(d, 5000ms, tracecast::test::loopback_egress()).category, ConnectionTestResult::Category::unauthorized);
  d.api_key = "glc_right";
  EXPECT_TRUE(test_connection(d, 5000ms, tracecast::test::loopback_egress()).ok());
}

TEST(SenderSink, CountsPartialSuccessRejectedSpans) {
  SinkProcess sink({"--partial-success", "1"});
  Sender sender(fast_config());
  const std::uint32_t id = add(sender, sink);
  for (std::uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(sender.try_send(request(id, i)));
  const auto done = wait_for(sender, 4);
  ASSERT_EQ(done.size(), 4U);
  for (const auto& c : done) {
    EXPECT_EQ(c.outcome, SendOutcome::delivered);
    EXPECT_EQ(c.rejected_items, 1U);
  }
  EXPECT_EQ(sender.stats().destinations[0].rejected_items, sink.stats().rejected_spans);
  EXPECT_EQ(sender.stats().destinations[0].retried, 0U);
}

TEST(SenderSink, ASlowDestinationDoesNotHoldBackAFastOne) {
  SinkProcess slow({"--delay-ms", "3000"});
  SinkProcess fast;
  Sender sender(fast_config());
  const std::uint32_t slow_id = add(sender, slow, 2);
  const std::uint32_t fast_id = add(sender, fast, 4);
  for (std::uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(sender.try_send(request(slow_id, 1000 + i)));
  for (std::uint64_t i = 0; i < 100; ++i) ASSERT_TRUE(sender.try_send(request(fast_id, i)));
  const auto done = wait_for(sender, 100);
  ASSERT_EQ(done.size(), 100U);
  for (const auto& c : done) EXPECT_EQ(c.destination, fast_id);  // all fast ones first
  EXPECT_EQ(fast.stats().spans, 100U);
  sender.shutdown(Clock::now());
}

}  // namespace
}  // namespace tracecast
