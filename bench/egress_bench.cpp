// BM_Egress_*: what the egress policy costs.
//   - BM_Egress_CheckAddress: the connect-time check alone (the gate's verdict on one socket
//     address), default policy and with 16 allow-listed CIDRs, beside the same call on a gate
//     that does not enforce (BM_Egress_CheckAddressOff, the baseline).
//   - BM_Egress_NewConnection/policy:{0,1}: one POST on a new TCP connection each iteration
//     (CURLOPT_FORBID_REUSE) to a tiny listener on 127.0.0.1, with the open-socket callback
//     and a policy that allows 127.0.0.1/32 (1) or without the callback (0): the check's
//     share of a real connection.
// The check runs once per new connection, never per request on a pooled connection.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "egress_gate.h"

namespace {

using tracecast::EgressPolicy;
using tracecast::detail::EgressGate;

sockaddr_in v4(const char* ip) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

void check_loop(benchmark::State& state, const EgressGate& gate) {
  const sockaddr_in targets[] = {v4("142.250.74.46"), v4("10.1.2.3"), v4("93.184.215.14"), v4("127.0.0.1")};
  std::size_t i = 0;
  std::size_t allowed = 0;
  for (auto _ : state) {
    const sockaddr_in& a = targets[i++ & 3];
    allowed += gate.address_allowed(reinterpret_cast<const sockaddr*>(&a), sizeof a) ? 1 : 0;
  }
  benchmark::DoNotOptimize(allowed);
  state.counters["checks/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void BM_Egress_CheckAddress(benchmark::State& state) {
  EgressPolicy p;
  for (int i = 0; i < state.range(0); ++i) p.allow_cidrs.push_back("10.200." + std::to_string(i) + ".0/24");
  const EgressGate gate(p);
  check_loop(state, gate);
}
BENCHMARK(BM_Egress_CheckAddress)->ArgName("allow_cidrs")->Arg(0)->Arg(16);

void BM_Egress_CheckAddressOff(benchmark::State& state) {
  EgressPolicy p;
  p.enforce = false;
  const EgressGate gate(p);
  check_loop(state, gate);
}
BENCHMARK(BM_Egress_CheckAddressOff);

// Answers every connection's first request with 200 {} and closes it.
class TinyServer {
 public:
  TinyServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a = v4("127.0.0.1");
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 128);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      char buf[8192];
      constexpr std::string_view k_answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
      while (!stop_.load(std::memory_order_acquire)) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0) continue;
        const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) continue;
        std::string in;
        while (in.find("\r\n\r\n") == std::string::npos || in.size() < in.find("\r\n\r\n") + 4 + 2) {
          const ssize_t n = ::recv(c, buf, sizeof buf, 0);
          if (n <= 0) break;
          in.append(buf, static_cast<std::size_t>(n));
        }
        (void)!::send(c, k_answer.data(), k_answer.size(), MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~TinyServer() {
    stop_.store(true, std::memory_order_release);
    thread_.join();
    ::close(fd_);
  }
  TinyServer(const TinyServer&) = delete;
  TinyServer& operator=(const TinyServer&) = delete;
  [[nodiscard]] std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1/traces"; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::size_t discard(char*, std::size_t size, std::size_t count, void*) { return size * count; }

void BM_Egress_NewConnection(benchmark::State& state) {
  const bool policy = state.range(0) != 0;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  TinyServer server;
  EgressPolicy p;
  p.allow_cidrs = {"127.0.0.1/32"};
  const EgressGate gate(p);
  tracecast::detail::SocketGate socket_gate{&gate, false, false};
  CURL* e = curl_easy_init();
  const std::string url = server.url();
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, "{}");
  curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
  curl_easy_setopt(e, CURLOPT_PROXY, "");
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &discard);
  if (policy) {
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &tracecast::detail::egress_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &socket_gate);
  }
  std::size_t failed = 0;
  for (auto _ : state) {
    long status = 0;
    if (curl_easy_perform(e) != CURLE_OK) ++failed;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) ++failed;
  }
  curl_easy_cleanup(e);
  if (failed != 0 || socket_gate.blocked) state.SkipWithError("a request failed or was blocked");
  state.counters["connections/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Egress_NewConnection)->ArgName("policy")->Arg(0)->Arg(1)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
