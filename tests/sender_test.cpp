// tracecast/sender.h against real HTTP servers on 127.0.0.1: delivery, keep-alive, every
// retry rule, Retry-After, backoff isolation, shutdown, queue bounds, no allocation per send.
#include "egress_util.h"
#include "tracecast/sender.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <ctime>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "alloc_counter.h"
#include "raw_http_server.h"
#include "sender_util.h"

namespace tracecast {
namespace {

using namespace std::chrono_literals;
using test::RawHttpServer;
using test::RawRequest;
using test::RawResponse;
using Clock = std::chrono::steady_clock;
using test::wait_for;

const std::string k_body = R"({"resourceSpans":[]})";

SenderConfig fast_config() {
  SenderConfig c = tracecast::test::loopback_sender_config();
  c.retry.initial_interval = 20ms;
  c.retry.multiplier = 2.0;
  c.retry.max_interval = 100ms;
  c.retry.max_elapsed = 5000ms;
  c.connect_timeout = 2000ms;
  c.jitter_seed = 7;
  return c;
}

DestinationConfig dest_for(const RawHttpServer& server, std::uint32_t in_flight = 4) {
  DestinationConfig d;
  d.name = "raw";
  d.endpoint = server.url();
  d.max_in_flight = in_flight;
  d.timeout = 5000ms;
  return d;
}

SendRequest request(std::uint32_t dest, std::uint64_t tag, std::string_view encoding = "") {
  return test::send_request(dest, tag, k_body, encoding);
}

std::uint32_t add(Sender& sender, const DestinationConfig& d) {
  const AddDestinationResult r = sender.add_destination(d);
  EXPECT_TRUE(r.ok());
  return r.id;
}

std::uint64_t status_count(const DestinationStats& s, int status) {
  for (const auto& [code, n] : s.responses_by_status) {
    if (code == status) return n;
  }
  return 0;
}

TEST(Sender, DeliversEveryRequestWithItsBodyHeadersAndTag) {
  RawHttpServer server([](const RawRequest&) { return RawResponse{}; });
  Sender sender(fast_config());
  const std::uint32_t id = add(sender, dest_for(server));
  for (std::uint64_t tag = 1; tag <= 50; ++tag) ASSERT_TRUE(sender.try_send(request(id, tag, "gzip")));
  const auto done = wait_for(sender, 50);
  ASSERT_EQ(done.size(), 50U);
  std::set<std::uint64_t> tags;
  for (const auto& c : done) {
    EXPECT_EQ(c.outcome, SendOutcome::delivered);
    EXPECT_EQ(c.http_status, 200);
    EXPECT_EQ(c.attempts, 1U);
    EXPECT_EQ(c.destination, id);
    tags.insert(c.tag);
  }
  EXPECT_EQ(tags.size(), 50U);
  const auto received = server.requests();
  ASSERT_EQ(received.size(), 50U);
  for (const auto& r : received) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.path, "/v1/traces");
    EXPECT_EQ(r.body, k_body);
    EXPECT_EQ(r.header("content-type"), "application/json");
    EXPECT_EQ(r.header("content-encoding"), "gzip");
  }
  const SenderStats stats = sender.stats();
  ASSERT_EQ(stats.destinations.size(), 1U);
  EXPECT_EQ(stats.destinations[0].delivered, 50U);
  EXPECT_EQ(stats.destinations[0].bytes_sent, 50 * k_body.size());
  EXPECT_EQ(stats.total.delivered, 50U);
  EXPECT_EQ(status_count(stats.destinations[0], 200), 50U);
}

TEST(Sender, AddsInBulkInOrderWithEachConfigsOwnIssues) {
  RawHttpServer server([](const RawRequest&) { return RawResponse{}; });
  Sender sender(fast_config());
  const std::uint32_t before = add(sender, dest_for(server));
  DestinationConfig good_a = dest_for(server);
  good_a.name = "a";
  DestinationConfig bad = dest_for(server);
  bad.endpoint = "ftp://127.0.0.1/v1/traces";  // not http(s): refused, nothing added
  DestinationConfig good_b = dest_for(server);
  good_b.name = "b";
  const std::vector<const DestinationConfig*> configs{&good_a, &bad, &good_b};
  const std::vector<AddDestinationResult> results = sender.add_destinations(configs);
  ASSERT_EQ(results.size(), 3U);
  EXPECT_TRUE(results[0].ok());
  EXPECT_EQ(results[0].id, before + 1);
  EXPECT_FALSE(results[1].ok());
  EXPECT_EQ(results[1].id, 0U);
  ASSERT_FALSE(results[1].issues.empty());
  EXPECT_EQ(results[1].issues[0].path, "endpoint");
  EXPECT_TRUE(results[2].ok());
  EXPECT_EQ(results[2].id, before + 2);  // ids stay dense: the refused one took none
  EXPECT_TRUE(sender.add_destinations({}).empty());
  // Each added one sends, as its own destination.
  ASSERT_TRUE(sender.try_send(request(results[0].id, 1)));
  ASSERT_TRUE(sender.try_send(request(results[2].id, 2)));
  const auto done = wait_for(sender, 2);
  ASSERT_EQ(done.size(), 2U);
  for (const auto& c : done) {
    EXPECT_EQ(c.outcome, SendOutcome::delivered);
    EXPECT_EQ(c.destination, c.tag == 1 ? results[0].id : results[2].id);
  }
  std::set<std::string> names;
  for (const auto& d : sender.stats().destinations) names.insert(d.name);
  EXPECT_EQ(names, (std::set<std::string>{"raw", "a", "b"}));
}

TEST(Sender, SendsGrafanaCloudBasicAuthToTheOtlpPath) {
  RawHttpServer server([](const RawRequest&) { return RawResponse{}; });
  Sender sender(fast_config());
  DestinationConfig d;
  d.kind = DestinationKind::grafana_cloud;
  d.name = "grafana";
  d.endpoint = "http://127.0.0.1:" + std::to_string(server.port());
  d.instance_id = "424242";
  d.api_key = "glc_abcdef";
  const auto r = sender.add_destination(d);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(sender.try_send(request(r.id, 1, "gzip")));
  ASSERT_EQ(wait_for(sender, 1).size(), 1U);
  const auto received = server.requests();
  ASSERT_EQ(received.size(), 1U);
  EXPECT_EQ(received[0].path, "/otlp/v1/traces");
  EXPECT_EQ(received[0].header("authorization"), "Basic " + base64_encode("424242:glc_abcdef"));
  for (const auto& s : sender.stats().destinations) EXPECT_EQ(s.name, "grafana");
}

TEST(Sender, ReusesKeepAliveConnections) {
  RawHttpServer server([](const RawRequest&) { return RawResponse{}; });
  Sender sender(fast_config());
  const std::uint32_t id = add(sender, dest_for(server, 2));
  for (std::uint64_t tag = 0; tag < 200; ++tag) ASSERT_TRUE(sender.try_send(request(id, tag)));
  ASSERT_EQ(wait_for(sender, 200).size(), 200U);
  EXPECT_EQ(server.request_count(), 200U);
  EXPECT_LE(server.connections(), 2U);  // at most one connection per in-flight slot
  EXPECT_GE(server.connections(), 1U);
  EXPECT_EQ(sender.stats().destinations[0].connections_opened, server.connections());
}

class SenderRetryableStatus : public ::testing::TestWithParam<int> {};

TEST_P(SenderRetryableStatus, IsRetriedUntilDelivered) {
  const int status = GetParam();
  std::atomic<int> seen{0};
  RawHttpServer server([&](const RawRequest&) {
    RawResponse r;
    if (seen.fetch_add(1) < 2) r.status = status;
    return r;
  });
  Sender sender(fast_config());
  const std::uint32_t id = add(sender, dest_for(server));
  ASSERT_TRUE(sender.try_send(request(id, 9)));
  const auto done = wait_for(sender, 1);
  ASSERT_EQ(done.size(), 1U);
  EXPECT_EQ(done[0].outcome, SendOutcome::delivered);
  EXPECT_EQ(done[0].attempts, 3U);
  EXPECT_EQ(server.request_count(), 3U);
  const DestinationStats s = sender.stats().destinations[0];
  EXPECT_EQ(s.retried, 2U);
  EXPECT_EQ(s.attempts, 3U);
  EXPECT_EQ(s.delivered, 1U);
  EXPECT_EQ(status_count(s, status), 2U);
  EXPECT_EQ(status_count(s, 200), 1U);
}

INSTANTIATE_TEST_SUITE_P(OtlpRetryable, SenderRetryableStatus, ::testing::Values(429, 502, 503, 504));

class SenderFinalStatus : public ::testing::TestWithParam<int> {};

TEST_P(SenderFinalStatus, IsNeverRetriedAndCountedByCode) {
  const int status = GetParam();
  RawHttpServer server([&](const RawRequest&) {
    RawResponse r;
    r.status = status;
    r.body = R"({"code":3,"message":"nope"})";
    return r;
  });
  Sender sender(fast_config());
  const std::uint32_t id = add(sender, dest_for(server));
  for (std::uint64_t tag = 0; tag < 3; ++tag) ASSERT_TRUE(sender.try_send(request(id, tag)));
  const auto done = wait_for(sender, 3);
  ASSERT_EQ(done.size(), 3U);
  for (const auto& c : done) {
    EXPECT_EQ(c.outcome, SendOutcome::rejected);
    EXPECT_EQ(c.http_status, status);
    EXPECT_EQ(c.attempts, 1U);
  }
  EXPECT_EQ(server.request_count(), 3U);
  const DestinationStats s = sender.stats().destinations[0];
  EXPECT_EQ(s.rejected, 3U);
  EXPECT_EQ(s.retried, 0U);
  EXPECT_EQ(status_count(s, status), 3U);
}

INSTANTIATE_TEST_SUITE_P(OtlpFinal, SenderFinalStatus, ::testing::Values(400, 401, 403, 404, 413, 500, 501));

TEST(Sender, HonoursRetryAfterSecondsAndSendsNothingToTheDestinationMeanwhile) {
  std::atomic<int> seen{0};
  RawHttpServer server([&](const RawRequest&) {
    RawResponse r;
    if (seen.fetch_add(1) == 0) {
      r.status = 429;
      r.headers = {{"Retry-After", "1"}};
    }
    return r;
  });
  Sender sender(fast_config());
  const std::uint32_t id = add(sender, dest_for(server));
  ASSERT_TRUE(sender.try_send(request(id, 0)));
  // Wait until the 429 has been answered, then hand over more while the destination backs off.
  for (int i = 0; i < 2000 && sender.stats().destinations[0].waiting_for_retry == 0; ++i) {
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_EQ(sender.stats().destinations[0].waiting_for_retry, 1U);
  for (std::uint64_t tag = 1; tag <= 5; ++tag) ASSERT_TRUE(sender.try_send(request(id, tag)));
  const auto done = wait_for(sender, 6);
  ASSERT_EQ(done.size(), 6U);
  for (const auto& c : done) EXPECT_EQ(c.outcome, SendOutcome::delivered);
  const auto received = server.requests();
  ASSERT_EQ(received.size(), 7U);  // the 429, its retry, five fresh ones
  const auto first = received[0].arrived;
  for (std::size_t i = 1; i < received.size(); ++i) {
    EXPECT_GE(received[i].arrived - first, 1000ms) << "request " << i << " sent during the backoff";
  }
}

std::string http_date(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

// A 503 without Retry-After backs off the request that got it, not the whole destination: a
// destination behind a load balancer with one bad backend keeps its throughput.
TEST(Sender, ABare503BacksOffOnlyThatRequest) {
  std::atomic<int> seen{0};
  RawHttpServer server([&](const RawRequest&) {
    RawResponse r;
    if (seen.fetch_add(1) % 2 == 0) r.status = 503;
    return r;
  });
  SenderConfig c = fast_config();
  c.retry.initial_interval = 3000ms;
  c.retry.max_interval = 3000ms;
  c.retry.max_elapsed = 60000ms;
  Sender sender(c);
  const std::uint32_t id = add(sender, dest_for(server, 1));  // one at a time: strictly in turn
  for (std::uint64_t i = 0; i < 10; ++i) ASSERT_TRUE(sender.try_send(request(id, i)));
  // Every first attempt is made before the first retry is due (0..3 s): a 503 holds back
  // only its own request.
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (server.request_count() < 10 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(5ms);
  EXPECT_GE(server.request_count(), 10U);
  const auto done = wait_for(sender, 10);
  ASSERT_EQ(done.size(), 10U);
  for (const auto& d : done) EXPECT_EQ(d.outcome, SendOutcome::delivered);
}

TEST(Sender, HonoursRetryAfterGivenAsAnHttpDate) {
  std::atomic<int> seen{0};
  RawHttpServer server([&](const RawRequest&) {
    RawResponse r;
    if (seen.fetch_add(1) == 0) {
      r.status = 503;
      r.headers = {{"Retry-After", http_date(std::chrono::system_clock::now() + 3s)}};
    }
    return r;
  });
  Sender sender(fast_config());
  const std::uint32_t id = add(sender, dest_for(server));
  ASSERT_TRUE(sender.try_send(request(id, 0)));
  const auto done = wait_for(sender, 1);
  ASSERT_EQ(done.size(), 1U);
  EXPECT_EQ(done[0].outcome, SendOutcome::delivered);
  const auto received = server.requests();
  ASSERT_EQ(received.size(), 2U);
  // The date has one-second resolution: at least 2 of the 3 seconds are waited, far more
  // than the 20 ms backoff that would apply without the header.
  EXPECT_GE(received[1].arrived - received[0].arrived, 1900ms);
}

TEST(Sender, GivesUpWhenRetryAfterExceedsMaxElapsed) {
  RawHttpServer server([&](const RawRequest&) {
    RawResponse r;
    r.status = 429;
    r.headers = {{"Retry-After", "30"}};
    return r;
  });
  SenderConfig config = fast_config();
  config.retry.max_elapsed = 2000ms;
  Sender sender(config);
  const std::uint32_t id = add(sender, dest_for(server));
  ASSERT_TRUE(sender.try_send(request(id, 0)));
  const auto done = wait_for(sender, 1, 10000ms);
  ASSERT_EQ(done.size(), 1U);
  EXPECT_EQ(done[0].outcome, SendOutcome::retries_exhausted);
  EXPECT_EQ(done[0].attempts, 1U);
  EXPECT_EQ(done[0].http_status, 429);
}

TEST(Sender, StopsRetryingAtMaxElapsedAndCountsTheDrop) {
  RawHttpServer server([&](const RawRequest&) {
    RawResponse r;
    r.status = 502;
    return r;
  });
  SenderConfig config = fast_config();
  config.retry.max_elapsed = 300ms;
  Sender sender(config);
  const std::uint32_t id = add(sender, dest_for(server));
  ASSERT_TRUE(sender.try_send(request(id, 0)));
  const auto done = wait_for(sender, 1);
  ASSERT_EQ(done.size(), 1U);
  EXPECT_EQ(done[0].outcome, SendOutcome::retries_exhausted);
  EXPECT_GE(done[0].attempts, 2U);
  EXPECT_EQ(server.request_count(), done[0].attempts);
  const DestinationStats s = sender.stats().destinations[0];
  EXPECT_EQ(s.retries_exhausted, 1U);
  EXPECT_EQ(s.retried, done[0].attempts - 1);
  EXPECT_EQ(status_count(s, 502), done[0].attempts);
}

TEST(Sender, NeverRetriesWhenMaxElapsedIsZero) {
  RawHttpServer server([&](const RawRequest&) {
    RawResponse r;
    r.status = 503;
    return r;
  });
  SenderConfig config = fast_config();
  config.retry.max_elapsed = 0ms;
  Sender sender(config);
  const std::uint32_t id = add(sender, dest_for(server));
  ASSERT_TRUE(sender.try_send(request(id, 0)));
  const auto done = wait_for(sender, 1);
  ASSERT_EQ(done.size(), 1U);
  EXPECT_EQ(done[0].outcome, SendOutcome::retries_exhausted);
  EXPECT_EQ(done[0].attempts, 1U);
}

TEST(Sender, RetriesAConnectionResetThenDelivers) {
  std::atomic<int> seen{0};
  RawHttpServer server([&](const RawRequest&) {
    RawResponse r;
    if (seen.fetch_add(1) == 0) r.action = RawResponse::Action::reset;
    return r;
  });
  Sender sender(fast_config());
  const std::uint32_t id = add(sender, dest_for(server));
  ASSERT_TRUE(sender.try_send(request(id, 0)));
  const auto done = wait_for(sender, 1);
  ASSERT_EQ(done.size(), 1U);
  EXPECT_EQ(done[0].outcome, SendOutcome::delivered);
  EXPECT_EQ(done[0].attempts, 2U);
  const DestinationStats s = sender.stats().destinations[0];
  EXPECT_EQ(s.network_errors[static_cast<std::size_t>(NetworkError::send_recv)], 1U);
  EXPECT_EQ(s.connections_opened, 2U);
}

TEST(Sender, RetriesATimeoutThenDelivers) {
  std::atomic<int> seen{0};
  RawHttpServer server([&](const RawRequest&) {
    RawResponse r;
    if (seen.fetch_add(1) == 0) r.action = RawResponse::Action::hang;
    return r;
  });
  Sender sender(fast_config());
  DestinationConfig d = dest_for(server);
  // Long enough that the second attempt's answer arrives in time on a loaded 2-core machine
  // under ASan (200 ms timed it out too: 3 attempts, 2 timeouts).
  d.timeout = 1000ms;
  const std::uint32_t id = add(sender, d);
  ASSERT_TRUE(sender.try_send(request(id, 0)));
  const auto done = wait_for(sender, 1);
  ASSERT_EQ(done.size(), 1U);
  EXPECT_EQ(done[0].outcome, SendOutcome::delivered);
  EXPECT_EQ(done[0].attempts, 2U);
  EXPECT_EQ(sender.stats().destinations[0].network_errors[static_cast<std::size_t>(NetworkError::timeout)], 1U);
}

TEST(Sender, RetriesRefusedConnectionsUntilMaxElapsed) {
  SenderConfig config = fast_config();
  config.retry.max_elapsed = 300ms;
  Sender sender(config);
  DestinationConfig d;
  d.name = "nobody-home";
  d.endpoint = "http://127.0.0.1:" + std::to_string(test::unused_port()) + "/v1/traces";
  const std::uint32_t id = add(sender, d);
  ASSERT_TRUE(sender.try_send(request(id, 0)));
  const auto done = wait_for(sender, 1);
  ASSERT_EQ(done.size(), 1U);
  EXPECT_EQ(done[0].outcome, SendOutcome::retries_exhausted);
  EXPECT_EQ(done[0].network_error, NetworkError::connect);
  EXPECT_GE(done[0].attempts, 2U);
  EXPECT_EQ(sender.stats().destinations[0].network_errors[static_cast<std::size_t>(NetworkError::connect)],
            done[0].attempts);
}

TEST(Sender, CountsPartialSuccessRejectedSpansAndWarnings) {
  std::atomic<int> seen{0};
  RawHttpServer server([&](const RawRequest&) {
    RawResponse r;
    r.body = seen.fetch_add(1) == 0 ? R"({"partialSuccess":{"rejectedSpans":"3","errorMessage":"too old"}})"
                                    : R"({"partialSuccess":{"errorMessage":"attribute truncated"}})";
    return r;
  });
  Sender sender(fast_config());
  const std::uint32_t id = add(sender, dest_for(server, 1));
  SendRequest first = request(id, 1);
  first.items = 5;  // a count is believed up to the batch's span count (beyond: clamped)
  ASSERT_TRUE(sender.try_send(first));
  ASSERT_TRUE(sender.try_send(request(id, 2)));
  const auto done = wait_for(sender, 2);
  ASSERT_EQ(done.size(), 2U);
  std::map<std::uint64_t, Completion> by_tag;
  for (const auto& c : done) by_tag[c.tag] = c;
  EXPECT_EQ(by_tag[1].outcome, SendOutcome::delivered);
  EXPECT_EQ(by_tag[1].rejected_items, 3U);
  EXPECT_FALSE(by_tag[1].malformed_answer);
  EXPECT_FALSE(by_tag[1].partial_success_warning);
  EXPECT_EQ(by_tag[2].rejected_items, 0U);
  EXPECT_TRUE(by_tag[2].partial_success_warning);
  const DestinationStats s = sender.stats().destinations[0];
  EXPECT_EQ(s.rejected_items, 3U);
  EXPECT_EQ(s.partial_success_warnings, 1U);
  EXPECT_EQ(s.retried, 0U);
}

TEST(Sender, ADestinationThatNeverAnswersDoesNotDelayTheOthers) {
  RawHttpServer dead([](const RawRequest&) {
    RawResponse r;
    r.action = RawResponse::Action::hang;
    return r;
  });
  RawHttpServer alive([](const RawRequest&) { return RawResponse{}; });
  Sender sender(fast_config());
  DestinationConfig dead_config = dest_for(dead, 2);
  dead_config.timeout = 60000ms;
  const std::uint32_t dead_id = add(sender, dead_config);
  const std::uint32_t alive_id = add(sender, dest_for(alive, 4));
  for (std::uint64_t tag = 0; tag < 20; ++tag) ASSERT_TRUE(sender.try_send(request(dead_id, 1000 + tag)));
  for (std::uint64_t tag = 0; tag < 100; ++tag) ASSERT_TRUE(sender.try_send(request(alive_id, tag)));
  const auto done = wait_for(sender, 100);
  ASSERT_EQ(done.size(), 100U);
  for (const auto& c : done) {
    EXPECT_EQ(c.destination, alive_id);
    EXPECT_EQ(c.outcome, SendOutcome::delivered);
  }
  const SenderStats stats = sender.stats();
  EXPECT_EQ(stats.destinations[0].in_flight, 2U);  // capped
  EXPECT_EQ(stats.destinations[0].queued, 18U);    // held inside the sender
  // The sender can finish the 100 before the dead server's threads have read its two
  // requests: wait for them (bounded), then check that no third one arrives.
  for (int i = 0; i < 2000 && dead.request_count() < 2; ++i) std::this_thread::sleep_for(1ms);
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(dead.request_count(), 2U);
  sender.shutdown(Clock::now());
  const auto aborted = wait_for(sender, 20);
  ASSERT_EQ(aborted.size(), 20U);
  for (const auto& c : aborted) EXPECT_EQ(c.outcome, SendOutcome::aborted);
}

TEST(Sender, RefusesRequestsBeyondQueueCapacityWithoutBlocking) {
  RawHttpServer server([](const RawRequest&) {
    RawResponse r;
    r.action = RawResponse::Action::hang;
    return r;
  });
  SenderConfig config = fast_config();
  config.queue_capacity = 32;
  Sender sender(config);
  const std::uint32_t id = add(sender, dest_for(server, 1));
  for (std::uint64_t tag = 0; tag < 32; ++tag) ASSERT_TRUE(sender.try_send(request(id, tag)));
  EXPECT_FALSE(sender.try_send(request(id, 32)));
  EXPECT_FALSE(sender.try_send(request(id, 33)));
  EXPECT_EQ(sender.stats().queue_full, 2U);
  EXPECT_EQ(sender.pending_guess(), 32U);
  sender.shutdown(Clock::now() + 50ms);
  EXPECT_EQ(wait_for(sender, 32).size(), 32U);
  EXPECT_FALSE(sender.try_send(request(id, 34)));  // closed
}

TEST(Sender, ShutdownWaitsForRequestsInFlightToFinish) {
  RawHttpServer server([](const RawRequest&) {
    RawResponse r;
    r.delay = 50ms;
    return r;
  });
  Sender sender(fast_config());
  const std::uint32_t id = add(sender, dest_for(server, 4));
  for (std::uint64_t tag = 0; tag < 12; ++tag) ASSERT_TRUE(sender.try_send(request(id, tag)));
  sender.shutdown(Clock::now() + 20s);
  const auto done = wait_for(sender, 12, 1000ms);
  ASSERT_EQ(done.size(), 12U);
  for (const auto& c : done) EXPECT_EQ(c.outcome, SendOutcome::delivered);
  EXPECT_EQ(sender.pending_guess(), 0U);
}

TEST(Sender, ShutdownAbortsRequestsWaitingForRetryAtTheDeadline) {
  RawHttpServer server([](const RawRequest&) {
    RawResponse r;
    r.status = 429;
    r.headers = {{"Retry-After", "60"}};
    return r;
  });
  SenderConfig config = fast_config();
  config.retry.max_elapsed = 120000ms;
  Sender sender(config);
  const std::uint32_t id = add(sender, dest_for(server, 1));
  for (std::uint64_t tag = 0; tag < 4; ++tag) ASSERT_TRUE(sender.try_send(request(id, tag)));
  for (int i = 0; i < 2000 && sender.stats().destinations[0].waiting_for_retry == 0; ++i) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(server.request_count(), 1U);  // the others wait behind the throttle
  sender.shutdown(Clock::now() + 100ms);
  const auto done = wait_for(sender, 4, 1000ms);
  ASSERT_EQ(done.size(), 4U);
  for (const auto& c : done) EXPECT_EQ(c.outcome, SendOutcome::aborted);
  EXPECT_EQ(sender.stats().destinations[0].aborted, 4U);
}

TEST(Sender, RemovedDestinationCompletesItsRequestsAsRemoved) {
  RawHttpServer server([](const RawRequest&) {
    RawResponse r;
    r.action = RawResponse::Action::hang;
    return r;
  });
  Sender sender(fast_config());
  DestinationConfig d = dest_for(server, 1);
  d.timeout = 500ms;
  const std::uint32_t id = add(sender, d);
  for (std::uint64_t tag = 0; tag < 5; ++tag) ASSERT_TRUE(sender.try_send(request(id, tag)));
  for (int i = 0; i < 2000 && sender.stats().destinations[0].in_flight == 0; ++i) std::this_thread::sleep_for(1ms);
  sender.remove_destination(id);
  const auto done = wait_for(sender, 5);
  ASSERT_EQ(done.size(), 5U);
  for (const auto& c : done) EXPECT_EQ(c.outcome, SendOutcome::destination_removed);
  ASSERT_TRUE(sender.try_send(request(id, 99)));
  const auto late = wait_for(sender, 1);
  ASSERT_EQ(late.size(), 1U);
  EXPECT_EQ(late[0].outcome, SendOutcome::destination_removed);
  EXPECT_EQ(server.request_count(), 1U);  // the one in flight at removal; no retry
}

TEST(Sender, UpdateDestinationRedirectsLaterRequests) {
  RawHttpServer first([](const RawRequest&) { return RawResponse{}; });
  RawHttpServer second([](const RawRequest&) { return RawResponse{}; });
  Sender sender(fast_config());
  const std::uint32_t id = add(sender, dest_for(first));
  ASSERT_TRUE(sender.try_send(request(id, 1)));
  ASSERT_EQ(wait_for(sender, 1).size(), 1U);
  DestinationConfig bad = dest_for(second);
  bad.endpoint = "nonsense";
  EXPECT_TRUE(has_errors(sender.update_destination(id, bad)));
  EXPECT_FALSE(has_errors(sender.update_destination(id, dest_for(second))));
  ASSERT_TRUE(sender.try_send(request(id, 2)));
  ASSERT_EQ(wait_for(sender, 1).size(), 1U);
  EXPECT_EQ(first.request_count(), 1U);
  EXPECT_EQ(second.request_count(), 1U);
  EXPECT_TRUE(has_errors(sender.update_destination(77, dest_for(second))));
}

TEST(Sender, RejectsAnInvalidDestinationWithItsErrors) {
  Sender sender(fast_config());
  DestinationConfig d;
  d.kind = DestinationKind::grafana_cloud;
  d.endpoint = "https://mystack.grafana.net";
  d.instance_id = "x";
  const AddDestinationResult r = sender.add_destination(d);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.id, 0U);
  EXPECT_GE(r.issues.size(), 3U);
  EXPECT_TRUE(sender.stats().destinations.empty());
}

TEST(Sender, RejectsAnInvalidConfigAtConstruction) {
  SenderConfig c = fast_config();
  c.queue_capacity = 100;  // not a power of two
  EXPECT_THROW(Sender{c}, std::invalid_argument);
  c = fast_config();
  c.retry.multiplier = 0.5;
  EXPECT_THROW(Sender{c}, std::invalid_argument);
  c = fast_config();
  c.max_in_flight_total = 0;
  EXPECT_THROW(Sender{c}, std::invalid_argument);
}

TEST(Sender, RefusesANullBodyAndCompletesRequestsToUnknownIdsAsRemoved) {
  Sender sender(fast_config());
  SendRequest r = request(1, 5);
  r.body = nullptr;
  EXPECT_FALSE(sender.try_send(r));
  ASSERT_TRUE(sender.try_send(request(42, 6)));
  const auto done = wait_for(sender, 1);
  ASSERT_EQ(done.size(), 1U);
  EXPECT_EQ(done[0].tag, 6U);
  EXPECT_EQ(done[0].outcome, SendOutcome::destination_removed);
  EXPECT_EQ(done[0].attempts, 0U);
}

TEST(Sender, TrySendDoesNotAllocateInSteadyState) {
  RawHttpServer server([](const RawRequest&) { return RawResponse{}; });
  Sender sender(fast_config());
  const std::uint32_t id = add(sender, dest_for(server, 8));
  ASSERT_TRUE(sender.try_send(request(id, 0)));  // registers this producer thread
  ASSERT_EQ(wait_for(sender, 1).size(), 1U);
  std::uint64_t allocations = 0;
  {
    test::AllocationScope scope;
    for (std::uint64_t tag = 1; tag <= 200; ++tag) {
      if (!sender.try_send(request(id, tag))) break;
    }
    allocations = scope.count();
  }
  EXPECT_EQ(allocations, 0U);
  std::array<Completion, 256> out;
  std::size_t got = 0;
  const auto deadline = Clock::now() + 30s;
  std::uint64_t poll_allocations = 0;
  while (got < 200 && Clock::now() < deadline) {
    test::AllocationScope scope;
    got += sender.poll_completions(out.data(), out.size());
    poll_allocations += scope.count();
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(got, 200U);
  EXPECT_EQ(poll_allocations, 0U);
}

TEST(SenderConcurrency, ManyProducersOneConsumerAccountForEveryRequest) {
  RawHttpServer server([](const RawRequest&) { return RawResponse{}; });
  SenderConfig config = fast_config();
  config.max_producers = 4;
  Sender sender(config);
  const std::uint32_t id = add(sender, dest_for(server, 8));
  constexpr std::uint64_t k_per_thread = 300;
  std::atomic<std::uint64_t> refused{0};
  std::vector<std::thread> producers;
  for (std::uint64_t p = 0; p < 4; ++p) {
    producers.emplace_back([&, p] {
      for (std::uint64_t i = 0; i < k_per_thread; ++i) {
        while (!sender.try_send(request(id, p * k_per_thread + i))) {
          refused.fetch_add(1, std::memory_order_relaxed);
          std::this_thread::yield();
        }
      }
    });
  }
  std::set<std::uint64_t> tags;
  const auto deadline = Clock::now() + 60s;
  while (tags.size() < 4 * k_per_thread && Clock::now() < deadline) {
    if (sender.poll_completions([&](const Completion& c) {
          EXPECT_EQ(c.outcome, SendOutcome::delivered);
          tags.insert(c.tag);
        }, 128) == 0) {
      std::this_thread::sleep_for(1ms);
    }
  }
  for (auto& t : producers) t.join();
  EXPECT_EQ(tags.size(), 4 * k_per_thread);
  const SenderStats stats = sender.stats();
  EXPECT_EQ(stats.total.delivered, 4 * k_per_thread);
  EXPECT_EQ(stats.queue_full, refused.load());
  EXPECT_EQ(server.request_count(), 4 * k_per_thread);
}

}  // namespace
}  // namespace tracecast
