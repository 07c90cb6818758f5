// Destination health and stats at scale: each failure category drives a destination's state
// (scripted tracecast-sink answers, a closed port), the health callback fires once per change
// from its own thread, the disable policy drops spans as `disabled` with exact accounting,
// messages carry no secret, and stats()/prometheus() stay bounded at 150,000 destinations.
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "canonical_request.h"
#include "egress_util.h"
#include "raw_http_server.h"
#include "sink_process.h"
#include "tracecast/pipeline.h"

namespace tracecast {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Category = ConnectionTestResult::Category;

constexpr std::string_view k_secret = "s3cr3t-T0KEN-never-shown";

PipelineConfig fast_config() {
  PipelineConfig c;
  c.ingest.ring_bytes = 1u << 20;
  c.batch.linger = 1ms;
  c.batch.max_linger = 1ms;
  c.sender.retry.initial_interval = 20ms;
  c.sender.retry.max_interval = 40ms;
  c.sender.retry.max_elapsed = 150ms;
  c.memory_budget_bytes = 64u << 20;
  c.destination_budget_bytes = 16u << 20;
  c.sender.egress = test::loopback_egress();  // the scripted sinks listen on 127.0.0.1
  return c;
}

PipelineDestination destination(const std::string& endpoint, const std::string& auth = {}) {
  PipelineDestination d;
  d.transport.kind = DestinationKind::otlp_http;
  d.transport.name = "acct_1-collector";
  d.transport.endpoint = endpoint;
  d.transport.compression = "none";
  d.transport.timeout = 5000ms;
  if (!auth.empty()) d.transport.headers = {{"authorization", auth}};
  return d;
}

std::string basic(std::string_view user_pass) {
  static constexpr char k_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < user_pass.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(user_pass[i]) << 16) |
                       (static_cast<unsigned char>(user_pass[i + 1]) << 8) | static_cast<unsigned char>(user_pass[i + 2]);
    out += {k_b64[(v >> 18) & 63], k_b64[(v >> 12) & 63], k_b64[(v >> 6) & 63], k_b64[v & 63]};
  }
  if (i + 1 == user_pass.size()) {
    const unsigned v = static_cast<unsigned char>(user_pass[i]) << 16;
    out += {k_b64[(v >> 18) & 63], k_b64[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == user_pass.size()) {
    const unsigned v = (static_cast<unsigned char>(user_pass[i]) << 16) | (static_cast<unsigned char>(user_pass[i + 1]) << 8);
    out += {k_b64[(v >> 18) & 63], k_b64[(v >> 12) & 63], k_b64[(v >> 6) & 63], '='};
  }
  return "Basic " + out;
}

// One request for acct_1, then a flush: its batch has finished (delivered or failed).
void send_one(Pipeline& p) {
  test::CanonicalRequest c;
  ASSERT_EQ(p.submit(c.r), submit_result::ok);
  ASSERT_TRUE(p.flush(Clock::now() + 60s).complete);
}

DestinationHealth health_of(const Pipeline& p, std::uint32_t id) {
  const auto d = p.destination_stats(id);
  EXPECT_TRUE(d.has_value());
  return d ? d->health : DestinationHealth{};
}

// A port nothing listens on: bound, then closed.
std::uint16_t closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

void expect_safe(const DestinationHealth& h, const std::string& endpoint) {
  EXPECT_EQ(h.message.find(k_secret), std::string::npos) << h.message;
  EXPECT_EQ(h.message.find(endpoint), std::string::npos) << h.message;
  EXPECT_EQ(h.message.find("127.0.0.1"), std::string::npos) << h.message;
  EXPECT_EQ(h.message.find('\n'), std::string::npos) << h.message;
}

struct Case {
  const char* what;
  std::vector<std::string> sink_args;
  DestinationState state;
  Category category;
  int status;
  const char* words;  // from the connection test's hint
};

TEST(DestinationHealth, EachFailureCategoryDrivesTheStateMachineAndRecovers) {
  const Case cases[] = {
      {"401", {"--basic-auth", "user:pass"}, DestinationState::failing, Category::unauthorized, 401, "credentials"},
      {"403", {"--fail-5xx-first", "1", "--fail-status", "403"}, DestinationState::failing, Category::unauthorized, 403,
       "credentials"},
      {"404", {"--fail-5xx-first", "1", "--fail-status", "404"}, DestinationState::failing, Category::not_found, 404,
       "/v1/traces"},
      {"400", {"--fail-5xx-first", "1", "--fail-status", "400"}, DestinationState::failing, Category::client_error, 400,
       "OTLP/HTTP"},
      {"413", {"--fail-5xx-first", "1", "--fail-status", "413"}, DestinationState::failing, Category::payload_too_large,
       413, "size limit"},
      {"503 until the retries ran out", {"--fail-5xx-first", "1000", "--fail-status", "503"},
       DestinationState::retrying, Category::server_error, 503, "temporarily unavailable"},
      {"429 until the retries ran out", {"--fail-429", "1000"}, DestinationState::retrying, Category::rate_limited,
       429, "rate-limiting"},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.what);
    test::SinkProcess sink(k.sink_args);
    Pipeline p(fast_config());
    const std::string endpoint = sink.url();
    const AddDestinationOutcome added = p.add_destination("acct_1", destination(endpoint, std::string(k_secret)));
    ASSERT_TRUE(added.ok());
    EXPECT_EQ(health_of(p, added.id).state, DestinationState::healthy);
    const std::int64_t before = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count();
    send_one(p);
    const DestinationHealth h = health_of(p, added.id);
    EXPECT_EQ(h.state, k.state);
    EXPECT_EQ(h.last_error, k.category) << to_string(h.last_error);
    EXPECT_EQ(h.last_http_status, k.status);
    EXPECT_GE(h.last_error_unix_ns, before);
    EXPECT_EQ(h.last_success_unix_ns, 0);
    EXPECT_EQ(h.consecutive_failures, 1u);
    EXPECT_NE(h.message.find(k.words), std::string::npos) << h.message;
    expect_safe(h, endpoint);
    // The state is in every snapshot's listing too (not healthy: always listed).
    const PipelineStats s = p.stats();
    ASSERT_EQ(s.destinations.size(), 1u);
    EXPECT_EQ(s.destinations[0].health.state, k.state);
    EXPECT_EQ(s.destinations_by_state[static_cast<std::size_t>(k.state)], 1u);

    if (k.status == 401) {
      // Fixed credentials: update resets the state, the next request is delivered.
      ASSERT_TRUE(p.update_destination(added.id, destination(endpoint, basic("user:pass"))).empty());
      EXPECT_EQ(health_of(p, added.id).state, DestinationState::healthy);
    } else if (k.state == DestinationState::failing) {
      // The sink answers its scripted status once: the next request goes through.
    } else {
      continue;  // the sink keeps failing
    }
    send_one(p);
    const DestinationHealth ok = health_of(p, added.id);
    EXPECT_EQ(ok.state, DestinationState::healthy);
    EXPECT_EQ(ok.consecutive_failures, 0u);
    EXPECT_GE(ok.last_success_unix_ns, h.last_error_unix_ns);
    EXPECT_EQ(ok.last_http_status, k.status);  // the last failure is still on record
  }
}

TEST(DestinationHealth, ConnectionRefusedIsRetryingWithTheConnectionTestsHint) {
  Pipeline p(fast_config());
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(closed_port()) + "/v1/traces";
  const AddDestinationOutcome added = p.add_destination("acct_1", destination(endpoint, std::string(k_secret)));
  ASSERT_TRUE(added.ok());
  send_one(p);
  const DestinationHealth h = health_of(p, added.id);
  EXPECT_EQ(h.state, DestinationState::retrying);
  EXPECT_EQ(h.last_error, Category::connect_refused);
  EXPECT_EQ(h.last_http_status, 0);
  EXPECT_NE(h.message.find("did not accept connections"), std::string::npos) << h.message;
  EXPECT_NE(h.message.find("4318"), std::string::npos) << h.message;  // the hint's default port
  expect_safe(h, endpoint);
}

// A destination whose endpoint keeps answering 503 is `retrying` as soon as the first attempt
// failed, while its request is still being retried (not only once retry.max_elapsed ran out),
// and the callback says so once; nothing is dropped meanwhile.
TEST(DestinationHealth, IsRetryingWhileItsRetriesRunNotOnlyWhenTheyRunOut) {
  test::SinkProcess sink({"--fail-5xx-first", "1000000", "--fail-status", "503"});
  PipelineConfig c = fast_config();
  c.sender.retry.max_elapsed = 120000ms;  // far longer than the test
  Pipeline p(c);
  std::mutex mu;
  std::vector<HealthChange> seen;
  p.set_health_callback([&](const HealthChange& change) {
    std::lock_guard lock(mu);
    seen.push_back(change);
  });
  const AddDestinationOutcome added = p.add_destination("acct_1", destination(sink.url(), std::string(k_secret)));
  ASSERT_TRUE(added.ok());
  test::CanonicalRequest req;
  ASSERT_EQ(p.submit(req.r), submit_result::ok);
  DestinationHealth h;
  const auto deadline = Clock::now() + 30s;
  do {
    std::this_thread::sleep_for(10ms);
    h = health_of(p, added.id);
  } while (h.state != DestinationState::retrying && Clock::now() < deadline);
  ASSERT_EQ(h.state, DestinationState::retrying);
  EXPECT_EQ(h.last_http_status, 503);
  EXPECT_EQ(h.last_error, Category::server_error);
  EXPECT_NE(h.message.find("retrying"), std::string::npos) << h.message;
  expect_safe(h, sink.url());
  const auto d = p.destination_stats(added.id);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->in_flight, d->submitted) << "still being retried, nothing dropped";
  EXPECT_EQ(d->dropped_total(), 0u);
  EXPECT_EQ(h.consecutive_failures, 0u) << "counts finished requests only";
  // More failed attempts do not fire the callback again: one change, healthy -> retrying.
  std::this_thread::sleep_for(300ms);
  const auto until = Clock::now() + 10s;
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (!seen.empty() || Clock::now() > until) break;
    }
    std::this_thread::sleep_for(10ms);
  }
  {
    std::lock_guard lock(mu);
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].from, DestinationState::healthy);
    EXPECT_EQ(seen[0].to, DestinationState::retrying);
  }
  (void)p.shutdown(Clock::now() + 1s);  // aborts the retry: not the endpoint's fault, no change
  std::lock_guard lock(mu);
  EXPECT_EQ(seen.size(), 1u);
}

// An answer that breaks the rules (here a rejectedSpans of 1e30 on a 2xx) is bounded by the
// sender (clamped to the batch: every span counted rejected, none twice) and counted where
// the operator looks: the destination's stats and the Prometheus text.
TEST(DestinationHealth, MalformedAnswersAreCountedPerDestinationAndInPrometheus) {
  test::RawHttpServer server([](const test::RawRequest&) {
    test::RawResponse r;
    r.body = R"({"partialSuccess":{"rejectedSpans":1e30,"errorMessage":"x"}})";
    return r;
  });
  Pipeline p(fast_config());
  const AddDestinationOutcome added = p.add_destination("acct_1", destination(server.url()));
  ASSERT_TRUE(added.ok());
  for (int i = 0; i < 3; ++i) send_one(p);
  const auto d = p.destination_stats(added.id);
  ASSERT_TRUE(d.has_value());
  EXPECT_TRUE(d->balanced());
  EXPECT_EQ(d->delivered, 0u);
  EXPECT_EQ(d->dropped_by(DropReason::partial_rejected), d->submitted);
  EXPECT_EQ(d->malformed_answers, d->requests_sent);
  EXPECT_EQ(d->requests_sent, 3u);
  EXPECT_EQ(p.totals().total.malformed_answers, 3u);
  const std::string prom = p.prometheus();
  EXPECT_NE(prom.find("tracecast_malformed_answers_total 3"), std::string::npos);
  EXPECT_NE(prom.find("tracecast_destination_malformed_answers_total{"), std::string::npos);
}

TEST(DestinationHealth, GrafanaCloudFailuresUseGrafanasWords) {
  test::SinkProcess sink({"--fail-5xx-first", "1", "--fail-status", "401"});
  Pipeline p(fast_config());
  PipelineDestination d;
  d.transport.kind = DestinationKind::grafana_cloud;
  d.transport.name = "acct_1-grafana";
  // A plain-HTTP stand-in for the gateway (warned, allowed): the sink answers 401.
  d.transport.endpoint = "http://127.0.0.1:" + std::to_string(sink.port());
  d.transport.instance_id = "123456";
  d.transport.api_key = std::string("glc_") + std::string(k_secret);
  const AddDestinationOutcome added = p.add_destination("acct_1", d);
  ASSERT_TRUE(added.ok());
  send_one(p);
  const DestinationHealth h = health_of(p, added.id);
  EXPECT_EQ(h.state, DestinationState::failing);
  EXPECT_NE(h.message.find("Instance ID is numeric"), std::string::npos) << h.message;
  EXPECT_EQ(h.message.find("123456"), std::string::npos) << h.message;
  expect_safe(h, d.transport.endpoint);
  EXPECT_EQ(p.prometheus().find(k_secret), std::string::npos);
}

std::string thread_name() {
  char name[32] = {};
  pthread_getname_np(pthread_self(), name, sizeof name);
  return name;
}

TEST(DestinationHealth, CallbackFiresOncePerChangeFromTheNotifierThread) {
  // Three 401s in a row, then success: healthy -> failing once, failing -> healthy once.
  test::SinkProcess sink({"--fail-5xx-first", "3", "--fail-status", "401"});
  Pipeline p(fast_config());
  std::mutex mu;
  std::vector<HealthChange> seen;
  std::vector<std::string> threads;
  p.set_health_callback([&](const HealthChange& c) {
    std::lock_guard lock(mu);
    seen.push_back(c);
    threads.push_back(thread_name());
  });
  const AddDestinationOutcome added = p.add_destination("acct_1", destination(sink.url(), std::string(k_secret)));
  ASSERT_TRUE(added.ok());
  for (int i = 0; i < 4; ++i) send_one(p);
  EXPECT_EQ(health_of(p, added.id).state, DestinationState::healthy);
  (void)p.shutdown(Clock::now() + 10s);  // delivers every queued notice before it returns
  std::lock_guard lock(mu);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].id, added.id);
  EXPECT_EQ(seen[0].name, "acct_1-collector");
  EXPECT_EQ(seen[0].account, "acct_1");
  EXPECT_EQ(seen[0].from, DestinationState::healthy);
  EXPECT_EQ(seen[0].to, DestinationState::failing);
  EXPECT_EQ(seen[0].health.last_http_status, 401);
  EXPECT_EQ(seen[0].health.consecutive_failures, 1u);
  EXPECT_EQ(seen[0].health.message.find(k_secret), std::string::npos);
  EXPECT_EQ(seen[1].from, DestinationState::failing);
  EXPECT_EQ(seen[1].to, DestinationState::healthy);
  for (const std::string& t : threads) EXPECT_EQ(t, "tracecast-note");
}

// The egress policy's refusal is its own category in health, as in the connection test:
// not a client error, and no "HTTP 0" in the words.
TEST(DestinationHealth, BlockedDestinationReportsBlockedAsItsLastError) {
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(closed_port()) + "/v1/traces";
  for (const bool disable : {false, true}) {
    SCOPED_TRACE(disable ? "disable policy on" : "disable policy off");
    PipelineConfig config = fast_config();
    config.sender.egress = EgressPolicy{};  // the default refuses loopback
    config.disable.enabled = disable;
    config.disable.after = 0ms;
    Pipeline p(config);
    const AddDestinationOutcome added = p.add_destination("acct_1", destination(endpoint, std::string(k_secret)));
    ASSERT_TRUE(added.ok());
    send_one(p);
    const DestinationHealth h = health_of(p, added.id);
    EXPECT_EQ(h.state, disable ? DestinationState::disabled : DestinationState::blocked);
    EXPECT_EQ(h.last_error, Category::blocked);
    EXPECT_EQ(h.last_http_status, 0);
    EXPECT_EQ(h.message.find("client_error"), std::string::npos) << h.message;
    EXPECT_EQ(h.message.find("HTTP 0"), std::string::npos) << h.message;
    EXPECT_NE(h.message.find("egress policy"), std::string::npos) << h.message;
    if (disable) {
      EXPECT_NE(h.message.find("kept failing (blocked)"), std::string::npos) << h.message;
    }
    expect_safe(h, endpoint);
  }
}

TEST(DestinationHealth, DisablePolicyDropsSpansAsDisabledWithExactAccounting) {
  test::SinkProcess sink({"--basic-auth", "user:pass"});
  PipelineConfig config = fast_config();
  config.disable.enabled = true;
  config.disable.after = 0ms;  // at the first 401
  Pipeline p(config);
  std::vector<HealthChange> seen;
  std::mutex mu;
  p.set_health_callback([&](const HealthChange& c) {
    std::lock_guard lock(mu);
    seen.push_back(c);
  });
  const std::string endpoint = sink.url();
  const AddDestinationOutcome added = p.add_destination("acct_1", destination(endpoint, std::string(k_secret)));
  ASSERT_TRUE(added.ok());

  // Traffic from two threads while the first 401s come back and disable it.
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<bool> stop{false};
  auto producer = [&] {
    test::CanonicalRequest c;
    while (!stop.load(std::memory_order_relaxed)) {
      if (p.submit(c.r) == submit_result::ok) accepted.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::sleep_for(100us);
    }
  };
  std::thread a(producer), b(producer);
  const auto deadline = Clock::now() + 60s;
  while (health_of(p, added.id).state != DestinationState::disabled && Clock::now() < deadline)
    std::this_thread::sleep_for(5ms);
  std::this_thread::sleep_for(100ms);  // more traffic while disabled
  stop = true;
  a.join();
  b.join();
  ASSERT_TRUE(p.flush(Clock::now() + 60s).complete);
  const DestinationHealth h = health_of(p, added.id);
  ASSERT_EQ(h.state, DestinationState::disabled);
  EXPECT_NE(h.message.find("Disabled"), std::string::npos) << h.message;
  expect_safe(h, endpoint);
  const auto d = p.destination_stats(added.id);
  ASSERT_TRUE(d.has_value());
  // One span per canonical request; every one accounted: refused (401) or disabled.
  EXPECT_EQ(d->submitted, accepted.load());
  EXPECT_EQ(d->delivered, 0u);
  EXPECT_EQ(d->in_flight, 0u);
  EXPECT_GT(d->dropped_by(DropReason::disabled), 0u);
  EXPECT_EQ(d->dropped_by(DropReason::rejected) + d->dropped_by(DropReason::disabled), d->submitted);
  EXPECT_TRUE(d->balanced());
  const std::uint64_t refused_requests = d->requests_sent;
  EXPECT_EQ(sink.stats().status(401), refused_requests);  // nothing sent once disabled (no retries of 401)

  // Updated with the right credentials: it resumes and delivers.
  ASSERT_TRUE(p.update_destination(added.id, destination(endpoint, basic("user:pass"))).empty());
  EXPECT_EQ(health_of(p, added.id).state, DestinationState::healthy);
  const std::uint64_t disabled_before = d->dropped_by(DropReason::disabled);
  for (int i = 0; i < 10; ++i) {
    test::CanonicalRequest c;
    ASSERT_EQ(p.submit(c.r), submit_result::ok);
  }
  const DrainResult done = p.shutdown(Clock::now() + 60s);
  const auto& fin = done.stats.destinations.at(0);
  EXPECT_EQ(fin.delivered, 10u);
  EXPECT_EQ(fin.dropped_by(DropReason::disabled), disabled_before);
  EXPECT_EQ(fin.submitted, accepted.load() + 10);
  EXPECT_TRUE(fin.balanced());
  EXPECT_EQ(sink.stats().spans, 10u);
  std::lock_guard lock(mu);
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen.back().to, DestinationState::healthy);
  EXPECT_EQ(seen[seen.size() - 2].to, DestinationState::disabled);
}

// ---- stats at scale --------------------------------------------------------------------------

// The documented bound (README "Stats at scale"): pipeline-wide series, plus per listed
// destination k_series_per_destination, for at most top + max_unhealthy destinations.
constexpr std::size_t k_pipeline_series = 49;
constexpr std::size_t k_series_per_destination = 49;

std::size_t count_series(const std::string& text) {
  std::size_t n = 0;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t end = text.find('\n', at);
    if (text[at] != '#') ++n;
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return n;
}

// 150,000 destinations, one per account `acct_<i>` named `dest-<i>`, added in one call: the
// first k_failing to a sink that answers 401, the rest to a healthy one. Traffic is the test's.
class StatsAtScale : public testing::Test {
 protected:
  static constexpr std::size_t k_destinations = 150'000;
  static constexpr std::size_t k_failing = 30;
  static constexpr std::size_t k_busy = 40;

  static PipelineConfig scale_config() {
    PipelineConfig c = fast_config();
    c.ingest.ring_bytes = 8u << 20;
    return c;
  }

  void SetUp() override {
    std::vector<std::pair<std::string, PipelineDestination>> all;
    all.reserve(k_destinations);
    for (std::size_t i = 0; i < k_destinations; ++i) {
      PipelineDestination d = destination(i < k_failing ? bad.url() : good.url(), std::string(k_secret));
      d.transport.name = std::string("dest-").append(std::to_string(i));
      all.emplace_back(account(i), std::move(d));
    }
    outcomes = p.add_destinations(all);
    for (const auto& o : outcomes) ASSERT_TRUE(o.ok());
  }

  static std::string account(std::size_t i) { return std::string("acct_").append(std::to_string(i)); }

  test::SinkProcess bad{{"--basic-auth", "user:pass"}};
  test::SinkProcess good;
  PipelineConfig config = scale_config();
  Pipeline p{config};
  std::vector<AddDestinationOutcome> outcomes;
};

TEST_F(StatsAtScale, PrometheusAt150000DestinationsStaysBoundedAndPromtoolAcceptsIt) {
  // Traffic for the first k_failing + k_busy accounts only; the rest stay idle.
  std::vector<std::string> accounts;
  for (std::size_t i = 0; i < k_failing + k_busy; ++i) accounts.push_back(account(i));
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < accounts.size(); ++i) {
      test::CanonicalRequest c;
      c.r.account = accounts[i];
      for (std::size_t k = 0; k <= i % 5; ++k) ASSERT_EQ(p.submit(c.r), submit_result::ok);
    }
  }
  ASSERT_TRUE(p.flush(Clock::now() + 120s).complete);

  const PipelineStats s = p.stats();
  EXPECT_EQ(s.destinations_configured, k_destinations);
  EXPECT_EQ(s.destinations_by_state[static_cast<std::size_t>(DestinationState::failing)], k_failing);
  EXPECT_EQ(s.destinations_by_state[static_cast<std::size_t>(DestinationState::healthy)], k_destinations - k_failing);
  // Every failing one, plus the 20 busiest (the failing ones are busy too: overlap allowed).
  EXPECT_GE(s.destinations.size(), k_failing);
  EXPECT_LE(s.destinations.size(), k_failing + config.stats.top_destinations);
  std::size_t failing_listed = 0;
  for (const auto& d : s.destinations) {
    EXPECT_TRUE(d.balanced()) << d.name;
    if (d.health.state == DestinationState::failing) ++failing_listed;
  }
  EXPECT_EQ(failing_listed, k_failing);
  EXPECT_TRUE(s.total.balanced());
  std::uint64_t sent = 0;
  for (std::size_t i = 0; i < accounts.size(); ++i) sent += 3 * (i % 5 + 1);
  EXPECT_EQ(s.total.submitted, sent);
  // An idle destination, on demand.
  const auto idle = p.destination_stats(outcomes[100'000].id);
  ASSERT_TRUE(idle.has_value());
  EXPECT_EQ(idle->name, "dest-100000");
  EXPECT_EQ(idle->submitted, 0u);
  EXPECT_FALSE(p.destination_stats(999'999'999).has_value());

  const std::string text = p.prometheus();
  const std::size_t bound =
      k_pipeline_series +
      (config.stats.top_destinations + config.stats.max_unhealthy_destinations) * k_series_per_destination;
  EXPECT_LE(count_series(text), bound);
  // Exactly the pipeline-wide series plus k_series_per_destination per listed destination.
  const std::size_t listed_at = text.find("\ntracecast_destinations_listed ");
  ASSERT_NE(listed_at, std::string::npos);
  const std::size_t listed = std::stoull(text.substr(listed_at + 31));
  EXPECT_EQ(count_series(text), k_pipeline_series + listed * k_series_per_destination);
  EXPECT_GE(listed, k_failing);
  EXPECT_LT(text.size(), 1u << 20);
  EXPECT_EQ(text.find(k_secret), std::string::npos);
  EXPECT_NE(text.find("tracecast_destinations{state=\"failing\"} 30\n"), std::string::npos);
  EXPECT_NE(text.find("tracecast_spans_submitted_total " + std::to_string(sent) + "\n"), std::string::npos);

  // promtool (Debian package prometheus) lints the exposition.
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool not installed (Debian package prometheus; tools/setup.sh installs it): "
                    "the `promtool check metrics` assertion is skipped";
  }
  const std::string path = testing::TempDir() + "tracecast_metrics_" + std::to_string(::getpid()) + ".prom";
  {
    std::ofstream out(path);
    out << text;
  }
  const std::string cmd = "promtool check metrics < " + path + " > " + path + ".out 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream in(path + ".out");
  const std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << report;
  std::remove(path.c_str());
  std::remove((path + ".out").c_str());
}

// shutdown()'s result at 150,000 destinations lists the final report's destinations (the
// busiest, and those not healthy or that lost spans), not every one (~70 MB of counters at
// the moment of peak memory); stats_all() still lists every one.
TEST_F(StatsAtScale, ShutdownListsTheBusiestAndTheTroubledNotEveryDestination) {
  for (std::size_t i = 0; i < k_failing + k_busy; ++i) {
    test::CanonicalRequest c;
    const std::string name = account(i);
    c.r.account = name;
    ASSERT_EQ(p.submit(c.r), submit_result::ok);
  }
  const DrainResult done = p.shutdown(Clock::now() + 60s);
  EXPECT_TRUE(done.complete);
  EXPECT_EQ(done.stats.destinations_configured, k_destinations);
  EXPECT_TRUE(done.stats.total.balanced());
  EXPECT_EQ(done.stats.total.submitted, k_failing + k_busy);
  EXPECT_EQ(done.stats.total.dropped_by(DropReason::rejected), k_failing);
  // The failing ones lost their spans (rejected, 401): every one is listed, with the busiest.
  EXPECT_LE(done.stats.destinations.size(), config.stats.top_destinations + config.stats.max_unhealthy_destinations);
  std::size_t failing_listed = 0;
  for (const auto& d : done.stats.destinations) {
    EXPECT_TRUE(d.balanced()) << d.name;
    EXPECT_EQ(d.submitted, 1u) << d.name << ": an idle destination listed";
    if (d.health.state == DestinationState::failing && d.dropped_by(DropReason::rejected) == 1) ++failing_listed;
  }
  EXPECT_EQ(failing_listed, k_failing);
  // Later calls list the same; stats_all() every destination; totals() none.
  EXPECT_EQ(p.shutdown(Clock::now()).stats.destinations.size(), done.stats.destinations.size());
  EXPECT_EQ(p.stats().destinations.size(), done.stats.destinations.size());
  EXPECT_TRUE(p.totals().destinations.empty());
  const PipelineStats every = p.stats_all();
  ASSERT_EQ(every.destinations.size(), k_destinations);
  EXPECT_EQ(every.destinations[100'000].name, "dest-100000");
  EXPECT_EQ(every.destinations[100'000].submitted, 0u);
}

}  // namespace
}  // namespace tracecast
