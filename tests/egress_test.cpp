// tracecast/egress.h: the egress policy. Address classes of every refused range (and their
// public neighbours), the compiled gate's allow-lists, and enforcement at connect time in
// test_connection() and the Sender against listeners of our own on loopback addresses: a
// refused address is never connected to (the listener sees nothing), whatever form the URL
// writes it in.
#include "tracecast/egress.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "egress_gate.h"
#include "egress_util.h"
#include "raw_http_server.h"
#include "sender_util.h"
#include "tracecast/connection_test.h"
#include "tracecast/sender.h"

namespace tracecast {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using Category = ConnectionTestResult::Category;
using test::RawHttpServer;
using test::RawRequest;
using test::RawResponse;

// ---- address classes -----------------------------------------------------------------------

struct ClassCase {
  const char* ip;
  AddressClass expected;
};

TEST(EgressAddressClass, EveryRefusedRangeAndItsPublicNeighbours) {
  using C = AddressClass;
  const std::vector<ClassCase> cases = {
      {"0.0.0.0", C::unspecified},         {"0.1.2.3", C::unspecified},
      {"10.0.0.1", C::private_net},        {"10.255.255.255", C::private_net},
      {"11.0.0.1", C::public_unicast},     {"9.255.255.255", C::public_unicast},
      {"100.64.0.1", C::shared_cgnat},     {"100.127.255.255", C::shared_cgnat},
      {"100.63.255.255", C::public_unicast}, {"100.128.0.0", C::public_unicast},
      {"127.0.0.1", C::loopback},          {"127.0.0.2", C::loopback},
      {"127.255.255.254", C::loopback},    {"128.0.0.1", C::public_unicast},
      {"169.254.169.254", C::link_local},  {"169.253.255.255", C::public_unicast},
      {"172.16.0.1", C::private_net},      {"172.31.255.255", C::private_net},
      {"172.15.255.255", C::public_unicast}, {"172.32.0.0", C::public_unicast},
      {"192.0.0.8", C::reserved},          {"192.0.2.10", C::documentation},
      {"192.88.99.1", C::reserved},        {"192.168.1.1", C::private_net},
      {"192.169.0.1", C::public_unicast},  {"198.18.0.1", C::reserved},
      {"198.19.255.255", C::reserved},     {"198.20.0.0", C::public_unicast},
      {"198.51.100.7", C::documentation},  {"203.0.113.9", C::documentation},
      {"224.0.0.1", C::multicast},         {"239.255.255.250", C::multicast},
      {"240.0.0.1", C::reserved},          {"255.255.255.255", C::broadcast},
      {"8.8.8.8", C::public_unicast},      {"1.1.1.1", C::public_unicast},
      {"223.255.255.255", C::public_unicast},
      // IPv6
      {"::", C::unspecified},              {"::1", C::loopback},
      {"::ffff:127.0.0.1", C::loopback},   {"::ffff:10.1.2.3", C::private_net},
      {"::ffff:169.254.169.254", C::link_local}, {"::ffff:8.8.8.8", C::public_unicast},
      {"::127.0.0.1", C::reserved},        {"::8.8.8.8", C::reserved},  // IPv4-compatible
      {"64:ff9b::7f00:1", C::loopback},    {"64:ff9b::a9fe:a9fe", C::link_local},
      {"64:ff9b::808:808", C::public_unicast}, {"64:ff9b:1::1", C::reserved},
      {"2002:7f00:1::1", C::loopback},     {"2002:c0a8:101::", C::private_net},
      {"2002:808:808::1", C::public_unicast},
      {"fc00::1", C::unique_local},        {"fd12:3456::1", C::unique_local},
      {"fe80::1", C::link_local},          {"febf::1", C::link_local},
      {"fec0::1", C::reserved},            {"ff02::1", C::multicast},
      {"2001:db8::1", C::documentation},   {"3fff::1", C::documentation},
      {"2001::1", C::reserved},            {"2001:1ff::1", C::reserved},
      {"100::1", C::reserved},             {"4000::1", C::reserved},
      {"2606:4700:4700::1111", C::public_unicast}, {"2001:4860:4860::8888", C::public_unicast},
      {"2a00:1450::1", C::public_unicast},
      // not literals
      {"", C::invalid},                    {"localhost", C::invalid},
      {"127.1", C::invalid},               {"2130706433", C::invalid},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(classify_address(c.ip), c.expected) << c.ip << " -> " << to_string(classify_address(c.ip));
  }
}

// ---- policy validation and the compiled gate -----------------------------------------------

TEST(EgressPolicy, ValidateNamesTheBadEntry) {
  EgressPolicy p;
  EXPECT_EQ(p.validate(), "");
  p.allow_cidrs = {"10.0.0.0/8", "127.0.0.1", "fd00::/8", "::1/128"};
  EXPECT_EQ(p.validate(), "");
  p.allow_cidrs.push_back("10.0.0.0/33");
  EXPECT_THAT(p.validate(), HasSubstr("allow_cidrs[4]"));
  p.allow_cidrs.back() = "not-an-ip/8";
  EXPECT_THAT(p.validate(), HasSubstr("allow_cidrs[4]"));
  p.allow_cidrs.back() = "::/129";
  EXPECT_THAT(p.validate(), HasSubstr("allow_cidrs[4]"));
  p.allow_cidrs.pop_back();
  p.allow_hosts = {"otel.internal", "*.corp.example"};
  EXPECT_EQ(p.validate(), "");
  p.allow_hosts.push_back("bad host");
  EXPECT_THAT(p.validate(), HasSubstr("allow_hosts[2]"));
  p.allow_hosts.back() = std::string(300, 'a');
  EXPECT_THAT(p.validate(), HasSubstr("allow_hosts[2]"));
  p.allow_hosts.back() = "";
  EXPECT_THAT(p.validate(), HasSubstr("allow_hosts[2]"));
  p.allow_hosts.pop_back();
  p.allow_cidrs.assign(257, "10.0.0.1");
  EXPECT_THAT(p.validate(), HasSubstr("at most 256"));
  // A Sender refuses an invalid policy at construction, naming it.
  SenderConfig bad;
  bad.egress.allow_cidrs = {"300.1.1.1/8"};
  EXPECT_THROW(Sender s(bad), std::invalid_argument);
}

sockaddr_in v4(const char* ip) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  EXPECT_EQ(inet_pton(AF_INET, ip, &a.sin_addr), 1) << ip;
  return a;
}

sockaddr_in6 v6(const char* ip) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  EXPECT_EQ(inet_pton(AF_INET6, ip, &a.sin6_addr), 1) << ip;
  return a;
}

template <class A>
bool allowed(const detail::EgressGate& gate, const A& a) {
  return gate.address_allowed(reinterpret_cast<const sockaddr*>(&a), sizeof a);
}

TEST(EgressGate, RefusesInternalAddressesUnlessAllowListed) {
  const detail::EgressGate by_default{EgressPolicy{}};
  EXPECT_TRUE(by_default.enforcing());
  EXPECT_FALSE(allowed(by_default, v4("127.0.0.1")));
  EXPECT_FALSE(allowed(by_default, v4("169.254.169.254")));
  EXPECT_FALSE(allowed(by_default, v6("::1")));
  EXPECT_FALSE(allowed(by_default, v6("::ffff:127.0.0.1")));
  EXPECT_FALSE(allowed(by_default, v6("64:ff9b::a00:1")));
  EXPECT_TRUE(allowed(by_default, v4("8.8.8.8")));
  EXPECT_TRUE(allowed(by_default, v6("2606:4700:4700::1111")));
  // An unknown family (a unix socket) is never allowed.
  sockaddr unix_like{};
  unix_like.sa_family = AF_UNIX;
  EXPECT_FALSE(by_default.address_allowed(&unix_like, sizeof unix_like));

  EgressPolicy p;
  p.allow_cidrs = {"10.20.0.0/16", "127.0.0.1", "fd00:1::/32"};
  const detail::EgressGate gate{p};
  EXPECT_TRUE(allowed(gate, v4("10.20.3.4")));
  EXPECT_FALSE(allowed(gate, v4("10.21.0.1")));
  EXPECT_TRUE(allowed(gate, v4("127.0.0.1")));
  EXPECT_FALSE(allowed(gate, v4("127.0.0.2")));
  EXPECT_TRUE(allowed(gate, v6("::ffff:127.0.0.1")));  // an IPv4 entry covers its mapped form
  EXPECT_TRUE(allowed(gate, v6("fd00:1:2::3")));
  EXPECT_FALSE(allowed(gate, v6("fd00:2::3")));
  EXPECT_FALSE(allowed(gate, v6("::1")));

  EgressPolicy off;
  off.enforce = false;
  EXPECT_TRUE(allowed(detail::EgressGate{off}, v4("127.0.0.1")));
}

// Trains (HTTP/1.1 pipelining) go only to addresses the operator vouches for: allow-listed
// ones, or any when the policy is off (the operator supplies every URL). A public address a
// customer gave is allowed but not listed: pipelining to an unknown server or proxy that drops
// a pipelined request shifts answers onto the wrong requests.
TEST(EgressGate, ListsOnlyAllowListedAddressesUnlessThePolicyIsOff) {
  EgressPolicy p;
  p.allow_cidrs = {"10.20.0.0/16", "127.0.0.1", "fd00:1::/32"};
  const detail::EgressGate gate{p};
  auto listed = [&gate](const auto& a) {
    return gate.address_listed(reinterpret_cast<const sockaddr*>(&a), sizeof a);
  };
  EXPECT_TRUE(listed(v4("10.20.3.4")));
  EXPECT_TRUE(listed(v4("127.0.0.1")));
  EXPECT_TRUE(listed(v6("::ffff:127.0.0.1")));
  EXPECT_TRUE(listed(v6("fd00:1:2::3")));
  EXPECT_FALSE(listed(v4("8.8.8.8")));  // allowed (public), not listed
  EXPECT_TRUE(allowed(gate, v4("8.8.8.8")));
  EXPECT_FALSE(listed(v6("2606:4700:4700::1111")));
  EXPECT_FALSE(listed(v4("127.0.0.2")));
  sockaddr unix_like{};
  unix_like.sa_family = AF_UNIX;
  EXPECT_FALSE(gate.address_listed(&unix_like, sizeof unix_like));
  EgressPolicy off;
  off.enforce = false;
  const detail::EgressGate open{off};
  const sockaddr_in public_v4 = v4("8.8.8.8");
  EXPECT_TRUE(open.address_listed(reinterpret_cast<const sockaddr*>(&public_v4), sizeof public_v4));
}

TEST(EgressGate, HostAllowListMatchesExactNamesAndSubdomainPatterns) {
  EgressPolicy p;
  p.allow_hosts = {"Otel.Internal", "*.corp.example"};
  const detail::EgressGate gate{p};
  EXPECT_TRUE(gate.host_allowed("otel.internal"));
  EXPECT_TRUE(gate.host_allowed("OTEL.internal."));
  EXPECT_FALSE(gate.host_allowed("otel.internal.evil.com"));
  EXPECT_FALSE(gate.host_allowed("xotel.internal"));
  EXPECT_TRUE(gate.host_allowed("a.corp.example"));
  EXPECT_TRUE(gate.host_allowed("b.a.corp.example"));
  EXPECT_FALSE(gate.host_allowed("corp.example"));
  EXPECT_FALSE(gate.host_allowed("evilcorp.example"));
  EXPECT_FALSE(gate.host_allowed(""));
}

TEST(EgressGate, UrlHostIsWhatCurlConnectsTo) {
  EXPECT_EQ(detail::url_host("http://Otel.Internal:4318/v1/traces"), "otel.internal");
  EXPECT_EQ(detail::url_host("http://[::1]:4318/v1/traces"), "::1");
  EXPECT_EQ(detail::url_host("http://user:pw@host.example/x"), "host.example");
  EXPECT_EQ(detail::url_host("not a url"), "");
}

// ---- enforcement at connect time -----------------------------------------------------------

// Counts TCP connections on one address:port; never answers (a connection that reaches it
// would show as a timeout, not as blocked).
class CountingListener {
 public:
  CountingListener(int family, const char* ip, std::uint16_t port) {
    fd_ = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return;
    const int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = -1;
    if (family == AF_INET) {
      sockaddr_in a = v4(ip);
      a.sin_port = htons(port);
      rc = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    } else {
      const int only = 1;
      ::setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof only);
      sockaddr_in6 a = v6(ip);
      a.sin6_port = htons(port);
      rc = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    if (rc != 0 || ::listen(fd_, 64) != 0) {
      ::close(fd_);
      fd_ = -1;
      return;
    }
    thread_ = std::thread([this] {
      while (!stop_.load(std::memory_order_acquire)) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c >= 0) {
          accepted_.fetch_add(1, std::memory_order_acq_rel);
          ::close(c);
        }
      }
    });
  }
  ~CountingListener() {
    stop_.store(true, std::memory_order_release);
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
  }
  CountingListener(const CountingListener&) = delete;
  CountingListener& operator=(const CountingListener&) = delete;
  [[nodiscard]] bool ok() const noexcept { return fd_ >= 0; }
  [[nodiscard]] int accepted() const noexcept { return accepted_.load(std::memory_order_acquire); }

 private:
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

DestinationConfig to_url(const std::string& url) {
  DestinationConfig d;
  d.endpoint = url;
  d.headers = {{"authorization", "Bearer tenant-secret-123"}};
  return d;
}

// Every loopback spelling that reached the listener before the policy existed (issue 12).
std::vector<std::string> loopback_forms(std::uint16_t port) {
  const std::string p = ":" + std::to_string(port) + "/v1/traces";
  return {"http://127.0.0.1" + p,  "http://localhost" + p,  "http://127.1" + p,
          "http://2130706433" + p, "http://0x7f000001" + p, "http://0x7f.1" + p,
          "http://0177.0.0.1" + p, "http://[::ffff:127.0.0.1]" + p, "http://127.0.0.2" + p,
          "http://0.0.0.0" + p,    "http://[::1]" + p};
}

TEST(EgressEnforcement, TestConnectionRefusesEveryLoopbackFormWithoutConnecting) {
  const std::uint16_t port = test::free_port();
  CountingListener lo1(AF_INET, "127.0.0.1", port);
  CountingListener lo2(AF_INET, "127.0.0.2", port);
  CountingListener lo6(AF_INET6, "::1", port);  // may fail without IPv6: the others still count
  ASSERT_TRUE(lo1.ok());
  for (const std::string& url : loopback_forms(port)) {
    const ConnectionTestResult r = test_connection(to_url(url), 3000ms);
    EXPECT_EQ(r.category, Category::blocked) << url << ": " << to_string(r.category) << " " << r.message;
    EXPECT_THAT(r.hint, HasSubstr("egress policy")) << url;
    EXPECT_EQ(r.http_status, 0);
  }
  std::this_thread::sleep_for(100ms);  // a connection that slipped through would be accepted by now
  EXPECT_EQ(lo1.accepted(), 0);
  EXPECT_EQ(lo2.accepted(), 0);
  EXPECT_EQ(lo6.accepted(), 0);
}

TEST(EgressEnforcement, InternalHostsUpAndDownLookTheSame) {
  RawHttpServer up([](const RawRequest&) { return RawResponse{}; });
  const ConnectionTestResult a = test_connection(to_url(up.url()), 3000ms);
  const ConnectionTestResult b =
      test_connection(to_url("http://127.0.0.1:" + std::to_string(test::unused_port()) + "/v1/traces"), 3000ms);
  const ConnectionTestResult c = test_connection(to_url("http://169.254.169.254/latest/meta-data"), 3000ms);
  const ConnectionTestResult d = test_connection(to_url("http://10.255.255.1:4318/v1/traces"), 3000ms);
  for (const auto* r : {&a, &b, &c, &d}) {
    EXPECT_EQ(r->category, Category::blocked) << r->message;
    EXPECT_EQ(r->message, a.message);  // nothing in the text tells them apart either
    EXPECT_EQ(r->hint, a.hint);
    EXPECT_EQ(r->message.find("tenant-secret"), std::string::npos);
  }
  EXPECT_EQ(up.connections(), 0U);
  // The same server is reachable once the operator allow-lists it.
  EXPECT_TRUE(test_connection(to_url(up.url()), 3000ms, test::loopback_egress()).ok());
  EXPECT_EQ(up.request_count(), 1U);
}

TEST(EgressEnforcement, AllowListedHostNameAndCidrAreDelivered) {
  RawHttpServer server([](const RawRequest&) { return RawResponse{}; });
  EgressPolicy by_name;
  by_name.allow_hosts = {"localhost"};
  const std::string port = std::to_string(server.port());
  // localhost resolves to ::1 and 127.0.0.1; the server listens on the latter.
  EXPECT_TRUE(test_connection(to_url("http://localhost:" + port + "/v1/traces"), 5000ms, by_name).ok());
  // The name is allowed, not the address: the same server by its address stays refused.
  EXPECT_EQ(test_connection(to_url(server.url()), 5000ms, by_name).category, Category::blocked);
  EgressPolicy by_cidr;
  by_cidr.allow_cidrs = {"127.0.0.0/8"};
  EXPECT_TRUE(test_connection(to_url("http://2130706433:" + port + "/v1/traces"), 5000ms, by_cidr).ok());
  EgressPolicy off;
  off.enforce = false;
  EXPECT_TRUE(test_connection(to_url(server.url()), 5000ms, off).ok());
  EXPECT_EQ(server.request_count(), 3U);
  EgressPolicy invalid;
  invalid.allow_cidrs = {"nope"};
  EXPECT_EQ(test_connection(to_url(server.url()), 5000ms, invalid).category, Category::invalid_config);
}

TEST(EgressEnforcement, SenderBlocksARefusedDestinationOnceAndDeliversTheOthers) {
  const std::uint16_t port = test::free_port();
  CountingListener target(AF_INET, "127.0.0.1", port);
  ASSERT_TRUE(target.ok());
  RawHttpServer good([](const RawRequest&) { return RawResponse{}; });
  SenderConfig config;
  config.egress.allow_hosts = {"localhost"};  // the operator's own collector, by name
  config.retry.initial_interval = 10ms;
  config.retry.max_interval = 20ms;
  config.retry.max_elapsed = 5000ms;
  Sender sender(config);
  const std::vector<std::string> forms = loopback_forms(port);
  std::vector<std::uint32_t> blocked_ids;
  for (const std::string& url : forms) {
    if (url.find("localhost") != std::string::npos) continue;  // allowed by name in this test
    const AddDestinationResult added = sender.add_destination(to_url(url));
    ASSERT_TRUE(added.ok()) << url;
    blocked_ids.push_back(added.id);
  }
  const AddDestinationResult ok_dest =
      sender.add_destination(to_url("http://localhost:" + std::to_string(good.port()) + "/v1/traces"));
  ASSERT_TRUE(ok_dest.ok());
  const std::string body = "{}";
  std::uint64_t tag = 0;
  for (int round = 0; round < 3; ++round) {
    for (const std::uint32_t id : blocked_ids) ASSERT_TRUE(sender.try_send(test::send_request(id, ++tag, body)));
    ASSERT_TRUE(sender.try_send(test::send_request(ok_dest.id, ++tag, body)));
  }
  const std::size_t expected = 3 * (blocked_ids.size() + 1);
  const std::vector<Completion> done = test::wait_for(sender, expected);
  ASSERT_EQ(done.size(), expected);
  std::size_t delivered = 0, blocked = 0;
  for (const Completion& c : done) {
    if (c.destination == ok_dest.id) {
      EXPECT_EQ(c.outcome, SendOutcome::delivered);
      delivered += c.outcome == SendOutcome::delivered ? 1 : 0;
    } else {
      EXPECT_EQ(c.outcome, SendOutcome::blocked) << to_string(c.outcome);
      EXPECT_EQ(c.attempts, 1U);  // never retried
      EXPECT_EQ(c.http_status, 0);
      blocked += c.outcome == SendOutcome::blocked ? 1 : 0;
    }
  }
  EXPECT_EQ(delivered, 3U);
  EXPECT_EQ(blocked, 3 * blocked_ids.size());
  const SenderStats stats = sender.stats();
  EXPECT_EQ(stats.total.blocked, 3 * blocked_ids.size());
  EXPECT_EQ(stats.total.retried, 0U);
  EXPECT_EQ(stats.total.delivered, 3U);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(target.accepted(), 0);
  EXPECT_EQ(good.request_count(), 3U);
}

TEST(EgressEnforcement, EnvironmentProxiesAreIgnored) {
  // A proxy from the environment would carry the request to an allowed address (the proxy's)
  // whatever the destination: tracecast never uses one.
  RawHttpServer proxy([](const RawRequest&) { return RawResponse{}; });
  ::setenv("http_proxy", proxy.url("").c_str(), 1);
  ::setenv("HTTP_PROXY", proxy.url("").c_str(), 1);
  const ConnectionTestResult r = test_connection(to_url("http://10.1.2.3:4318/v1/traces"), 3000ms,
                                                 test::loopback_egress());
  ::unsetenv("http_proxy");
  ::unsetenv("HTTP_PROXY");
  EXPECT_EQ(r.category, Category::blocked) << r.message;
  EXPECT_EQ(proxy.connections(), 0U);
}

}  // namespace
// ---- parse_egress_allow(): the one parser of TRACECAST_EGRESS_ALLOW and --egress-allow ----

TEST(ParseEgressAllow, TrimsBlanksSkipsEmptyEntriesAndSortsAddressesFromNames) {
  EgressPolicy p;
  EXPECT_EQ(parse_egress_allow(" 127.0.0.1, 10.0.0.0/8 ,, otel.internal ,\t*.corp.example ,::1", p), "");
  EXPECT_EQ(p.allow_cidrs, (std::vector<std::string>{"127.0.0.1", "10.0.0.0/8", "::1"}));
  EXPECT_EQ(p.allow_hosts, (std::vector<std::string>{"otel.internal", "*.corp.example"}));
  EXPECT_EQ(p.validate(), "");
  // Appends to what is there.
  EXPECT_EQ(parse_egress_allow("10.1.0.0/16", p), "");
  EXPECT_EQ(p.allow_cidrs.back(), "10.1.0.0/16");
}

// Host names are DNS names: labels of 1..63 letters, digits, '-' (and '_') between dots, at
// most 253 bytes; digits and dots only must be an IPv4 address.
TEST(ParseEgressAllow, RefusesWhatIsNeitherADnsNameNorAnAddress) {
  for (const std::string bad : {"300.1.1.1", "127.1", "1..2", "foo..bar", ".foo", "foo..", "%zz", "a%2eb", "*.",
                                "*..corp", "::zz", "x:1"}) {
    EgressPolicy p;
    const std::string e = parse_egress_allow("127.0.0.1, " + bad, p);
    EXPECT_THAT(e, HasSubstr(std::string(1, '\'').append(bad).append("': "))) << bad;  // not "'" + (GCC PR 105329)
    EXPECT_TRUE(p.allow_hosts.empty() && p.allow_cidrs.empty()) << bad;
    p.allow_hosts = {bad};
    EXPECT_THAT(p.validate(), HasSubstr("allow_hosts[0]")) << bad;
  }
  EgressPolicy p;
  p.allow_hosts = {std::string(63, 'a') + ".internal"};
  EXPECT_EQ(p.validate(), "");
  p.allow_hosts = {std::string(64, 'a') + ".internal"};
  EXPECT_THAT(p.validate(), HasSubstr("allow_hosts[0]"));
  std::string long_name;
  while (long_name.size() < 250) long_name += "abcdefghi.";
  p.allow_hosts = {long_name + "com"};  // 253 bytes: the longest name
  EXPECT_EQ(p.validate(), "");
  p.allow_hosts = {long_name + "comx"};  // 254
  EXPECT_THAT(p.validate(), HasSubstr("allow_hosts[0]"));
  p.allow_hosts = {"otel-collector.internal", "otel_collector", "*.corp.example", "OTEL.Internal", "127.0.0.1", "::1",
                   "otel.internal."};
  EXPECT_EQ(p.validate(), "");
}

TEST(ParseEgressAllow, NamesTheBadEntryAsWrittenAndLeavesThePolicyUnchanged) {
  EgressPolicy p;
  p.allow_hosts = {"keep.internal"};
  const std::string e = parse_egress_allow("10.0.0.1,  bad host! ,otel.internal", p);
  EXPECT_THAT(e, HasSubstr("'bad host!': must be a host name"));
  EXPECT_EQ(p.allow_hosts, (std::vector<std::string>{"keep.internal"}));
  EXPECT_TRUE(p.allow_cidrs.empty());
  EXPECT_THAT(parse_egress_allow("10.0.0.0/33", p), HasSubstr("'10.0.0.0/33': must be an IP address or CIDR"));
  std::string many;
  for (int i = 0; i < 257; ++i) many.append("h").append(std::to_string(i)).append(".internal,");
  EXPECT_THAT(parse_egress_allow(many, p), HasSubstr("at most 256 host names"));
}

}  // namespace tracecast
