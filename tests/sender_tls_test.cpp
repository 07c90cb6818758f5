// The sender and the connection test against nginx (Debian nginx-light) with a self-signed
// certificate: verification on (rejected without the CA, accepted with it), HTTP/2 over ALPN
// with many requests multiplexed on one connection, keep-alive over HTTP/1.1 + TLS.
#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <thread>

#include "egress_util.h"
#include "nginx_process.h"
#include "tracecast/connection_test.h"
#include "tracecast/sender.h"

namespace tracecast {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

const std::string k_body = R"({"resourceSpans":[]})";

SendRequest request(std::uint32_t dest, std::uint64_t tag) {
  SendRequest r;
  r.destination = dest;
  r.tag = tag;
  r.body = k_body.data();
  r.size = k_body.size();
  r.items = 1;
  return r;
}

std::vector<Completion> wait_for(Sender& sender, std::size_t n) {
  std::vector<Completion> out;
  const auto deadline = Clock::now() + 30s;
  while (out.size() < n && Clock::now() < deadline) {
    if (sender.poll_completions([&out](const Completion& c) { out.push_back(c); }, 1024) == 0) {
      std::this_thread::sleep_for(1ms);
    }
  }
  return out;
}

struct LogLine {
  std::string connection, protocol, status, method;
};

std::vector<LogLine> parse_log(const test::NginxProcess& nginx, std::size_t expected) {
  std::vector<LogLine> out;
  for (int i = 0; i < 500; ++i) {  // nginx writes the line as the request ends
    const auto lines = nginx.access_log();
    if (lines.size() >= expected) {
      for (const auto& line : lines) {
        std::istringstream in(line);
        LogLine l;
        in >> l.connection >> l.protocol >> l.status >> l.method;
        out.push_back(l);
      }
      return out;
    }
    std::this_thread::sleep_for(10ms);
  }
  return out;
}

class SenderTls : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!test::NginxProcess::available()) GTEST_SKIP() << "nginx/openssl not installed (tools/setup.sh)";
  }
};

TEST_F(SenderTls, RejectsASelfSignedServerWithoutItsCa) {
  test::NginxProcess nginx;
  SenderConfig config = tracecast::test::loopback_sender_config();
  config.retry.max_elapsed = 0ms;
  Sender sender(config);
  DestinationConfig d;
  d.endpoint = nginx.url();
  const auto id = sender.add_destination(d).id;
  ASSERT_NE(id, 0U);
  ASSERT_TRUE(sender.try_send(request(id, 1)));
  const auto done = wait_for(sender, 1);
  ASSERT_EQ(done.size(), 1U);
  EXPECT_EQ(done[0].outcome, SendOutcome::network_error_final);
  EXPECT_EQ(done[0].network_error, NetworkError::tls);
  EXPECT_EQ(done[0].attempts, 1U);  // a certificate problem is not retried
  EXPECT_TRUE(nginx.access_log().empty());
}

TEST_F(SenderTls, DeliversOverHttp2WithTheCaAndMultiplexesOnOneConnection) {
  test::NginxProcess nginx;
  Sender sender(tracecast::test::loopback_sender_config());
  DestinationConfig d;
  d.endpoint = nginx.url();
  d.ca_file = nginx.ca_file();
  d.max_in_flight = 16;
  const auto id = sender.add_destination(d).id;
  ASSERT_NE(id, 0U);
  for (std::uint64_t tag = 0; tag < 100; ++tag) ASSERT_TRUE(sender.try_send(request(id, tag)));
  const auto done = wait_for(sender, 100);
  ASSERT_EQ(done.size(), 100U);
  for (const auto& c : done) EXPECT_EQ(c.outcome, SendOutcome::delivered);
  const auto log = parse_log(nginx, 100);
  ASSERT_EQ(log.size(), 100U);
  std::set<std::string> connections;
  for (const auto& l : log) {
    EXPECT_EQ(l.protocol, "HTTP/2.0");
    EXPECT_EQ(l.method, "POST");
    connections.insert(l.connection);
  }
  EXPECT_EQ(connections.size(), 1U);
  EXPECT_EQ(sender.stats().destinations[0].connections_opened, 1U);
}

TEST_F(SenderTls, ReusesKeepAliveConnectionsOverHttp11) {
  test::NginxProcess nginx(test::NginxProcess::Options{true, false, 200, "{}"});
  SenderConfig config = tracecast::test::loopback_sender_config();
  config.http2 = false;
  Sender sender(config);
  DestinationConfig d;
  d.endpoint = nginx.url();
  d.ca_file = nginx.ca_file();
  d.max_in_flight = 3;
  const auto id = sender.add_destination(d).id;
  for (std::uint64_t tag = 0; tag < 60; ++tag) ASSERT_TRUE(sender.try_send(request(id, tag)));
  ASSERT_EQ(wait_for(sender, 60).size(), 60U);
  const auto log = parse_log(nginx, 60);
  ASSERT_EQ(log.size(), 60U);
  std::set<std::string> connections;
  for (const auto& l : log) {
    EXPECT_EQ(l.protocol, "HTTP/1.1");
    connections.insert(l.connection);
  }
  EXPECT_LE(connections.size(), 3U);
  EXPECT_EQ(sender.stats().destinations[0].connections_opened, connections.size());
}

TEST_F(SenderTls, ConnectionTestReportsTlsWithoutTheCaAndOkWithIt) {
  test::NginxProcess nginx;
  DestinationConfig d;
  d.endpoint = nginx.url();
  const ConnectionTestResult without = test_connection(d, 5000ms, tracecast::test::loopback_egress());
  EXPECT_EQ(without.category, ConnectionTestResult::Category::tls) << without.message;
  EXPECT_FALSE(without.hint.empty());
  d.ca_file = nginx.ca_file();
  const ConnectionTestResult with = test_connection(d, 5000ms, tracecast::test::loopback_egress());
  EXPECT_TRUE(with.ok()) << with.message;
  EXPECT_EQ(with.http_status, 200);
}

}  // namespace
}  // namespace tracecast
