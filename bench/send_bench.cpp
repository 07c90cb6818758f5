// BM_Send_*: requests/s and MB/s from the Sender to tracecast-sink (--count-only) over
// loopback, with 1, 8 and 64 requests in flight, beside the plain baseline in the same
// binary: a blocking loop on one reused curl easy handle (keep-alive, one request at a time).
// The *Rtt5ms variants run against a sink that answers after 5 ms, as a remote endpoint would.
// BM_Send_Multi_ManyDestinations/N spreads ~13 KB requests round-robin over N destinations on
// one host and reports cpu_ns_per_req (this process: sender thread, curl, the producer).
//
// Each iteration hands over k_batch requests and waits for their completions, so the figure
// includes the whole round trip: queue -> sender thread -> curl -> sink -> completion queue.
// Real time is measured (the work happens on other threads and in the sink process).
#include <benchmark/benchmark.h>
#include <curl/curl.h>

#include <sys/resource.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "sink_process.h"
#include "tracecast/sender.h"

namespace {

using namespace std::chrono_literals;

constexpr std::size_t k_batch = 256;
constexpr std::size_t k_body_bytes = 16 * 1024;  // about one gzip'd batch of ~100 spans

// User + system CPU of this process (the sender thread and curl included; the sink is another
// process), in nanoseconds.
double process_cpu_ns() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto ns = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_usec) * 1e3; };
  return ns(u.ru_utime) + ns(u.ru_stime);
}

const std::string& body() {
  static const std::string b = [] {
    std::string s(k_body_bytes, 'x');
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>('a' + (i * 7919) % 26);
    return s;
  }();
  return b;
}

tracecast::test::SinkProcess& fast_sink() {
  static tracecast::test::SinkProcess s({"--count-only"});
  return s;
}

// A sink that answers after 5 ms: a stand-in for a real endpoint's round trip, where requests
// in flight are what throughput comes from.
tracecast::test::SinkProcess& slow_sink() {
  static tracecast::test::SinkProcess s({"--count-only", "--delay-ms", "5"});
  return s;
}

tracecast::test::SinkProcess& sink(bool slow) { return slow ? slow_sink() : fast_sink(); }

// Hands k_batch requests to the sender (`each` adjusts each one first, e.g. its destination)
// and waits for their completions, counting the ones not delivered.
template <class Each>
void send_batch_and_wait(tracecast::Sender& sender, tracecast::SendRequest& request, std::uint64_t& failed,
                         Each&& each) {
  for (std::size_t i = 0; i < k_batch; ++i) {
    request.tag = i;
    each(request);
    while (!sender.try_send(request)) std::this_thread::yield();
  }
  std::size_t done = 0;
  while (done < k_batch) {
    const std::size_t n = sender.poll_completions(
        [&failed](const tracecast::Completion& c) {
          if (c.outcome != tracecast::SendOutcome::delivered) ++failed;
        },
        k_batch);
    // Sleep, not spin: on a small machine a spinning consumer steals the sender's core.
    if (n == 0) std::this_thread::sleep_for(200us);
    done += n;
  }
}

void send_multi(benchmark::State& state, bool slow) {
  const auto in_flight = static_cast<std::uint32_t>(state.range(0));
  tracecast::SenderConfig config;
  config.egress.allow_cidrs = {"127.0.0.1/32"};  // the sink on loopback, explicitly
  config.max_in_flight_total = in_flight;
  config.max_connections_per_host = in_flight;
  tracecast::Sender sender(config);
  tracecast::DestinationConfig d;
  d.name = "sink";
  d.endpoint = sink(slow).url();
  d.max_in_flight = in_flight;
  const auto id = sender.add_destination(d).id;
  tracecast::SendRequest request;
  request.destination = id;
  request.body = body().data();
  request.size = body().size();
  request.items = 1;
  std::uint64_t failed = 0;
  const double cpu_start = process_cpu_ns();
  for (auto _ : state) send_batch_and_wait(sender, request, failed, [](tracecast::SendRequest&) {});
  const double cpu_ns = process_cpu_ns() - cpu_start;
  sender.shutdown(std::chrono::steady_clock::now() + 5s);
  const auto stats = sender.stats();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * k_batch));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * k_batch * body().size()));
  state.counters["failed"] = static_cast<double>(failed);
  state.counters["connections"] = static_cast<double>(stats.total.connections_opened);
  state.counters["cpu_ns_per_req"] = cpu_ns / static_cast<double>(state.iterations() * k_batch);
}
void BM_Send_Multi(benchmark::State& state) { send_multi(state, false); }
void BM_Send_MultiRtt5ms(benchmark::State& state) { send_multi(state, true); }
BENCHMARK(BM_Send_Multi)->Arg(1)->Arg(8)->Arg(64)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Send_MultiRtt5ms)->Arg(1)->Arg(8)->Arg(64)->UseRealTime()->Unit(benchmark::kMillisecond);

// ~13 KB OTLP/JSON body of 10 spans (uncompressed), a typical small batch of one account.
const std::string& ten_span_body() {
  static const std::string b = [] {
    std::string s = R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"gateway"}}]},"scopeSpans":[{"scope":{"name":"tracecast"},"spans":[)";
    for (int i = 0; i < 10; ++i) {
      if (i > 0) s += ',';
      s += R"({"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b17)" + std::to_string(i) +
           R"(","name":"chat","kind":3,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000500000000","attributes":[{"key":"gen_ai.prompt","value":{"stringValue":")";
      for (int j = 0; j < 1100; ++j) s += static_cast<char>('a' + (j * 7919 + i) % 26);
      s += R"("}}]})";
    }
    s += "]}]}]}";
    return s;
  }();
  return b;
}

// N destinations on one host (the sink), requests round-robin over them: the sender's CPU per
// HTTP request when most destinations are quiet. Setup (adding N destinations) is outside the
// timed loop; its wall time is reported as add_ms. Concurrency is the same for every N (64 in
// flight in total, each destination allowed 64), so the figures compare across N.
void BM_Send_Multi_ManyDestinations(benchmark::State& state) {
  const auto n_dest = static_cast<std::uint32_t>(state.range(0));
  constexpr std::uint32_t k_in_flight = 64;
  tracecast::SenderConfig config;
  config.egress.allow_cidrs = {"127.0.0.1/32"};  // the sink on loopback, explicitly
  config.max_in_flight_total = k_in_flight;
  config.max_connections_per_host = k_in_flight;
  tracecast::Sender sender(config);
  tracecast::DestinationConfig d;
  d.endpoint = fast_sink().url();
  d.max_in_flight = k_in_flight;
  std::vector<std::uint32_t> ids;
  ids.reserve(n_dest);
  const auto add_start = std::chrono::steady_clock::now();
  for (std::uint32_t i = 0; i < n_dest; ++i) {
    d.name = "tenant-" + std::to_string(i);
    ids.push_back(sender.add_destination(d).id);
  }
  const double add_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - add_start).count();
  tracecast::SendRequest request;
  request.body = ten_span_body().data();
  request.size = ten_span_body().size();
  request.items = 10;
  std::uint64_t failed = 0;
  std::size_t next = 0;
  const double cpu_start = process_cpu_ns();
  for (auto _ : state) {
    send_batch_and_wait(sender, request, failed, [&](tracecast::SendRequest& r) {
      r.destination = ids[next];
      next = next + 1 == ids.size() ? 0 : next + 1;
    });
  }
  const double cpu_ns = process_cpu_ns() - cpu_start;
  sender.shutdown(std::chrono::steady_clock::now() + 5s);
  const auto stats = sender.stats();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * k_batch));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * k_batch * request.size));
  state.counters["failed"] = static_cast<double>(failed);
  state.counters["connections"] = static_cast<double>(stats.total.connections_opened);
  state.counters["cpu_ns_per_req"] = cpu_ns / static_cast<double>(state.iterations() * k_batch);
  state.counters["add_ms"] = add_ms;
}
BENCHMARK(BM_Send_Multi_ManyDestinations)->Arg(1)->Arg(1000)->Arg(100000)->UseRealTime()->Unit(benchmark::kMillisecond);

std::size_t discard(char*, std::size_t size, std::size_t count, void*) { return size * count; }

// Baseline: what an exporter without a multi loop does.
void send_easy(benchmark::State& state, bool slow) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURL* easy = curl_easy_init();
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Expect:");
  const std::string url = sink(slow).url();
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_POST, 1L);
  curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body().data());
  curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body().size()));
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &discard);
  std::uint64_t failed = 0;
  const double cpu_start = process_cpu_ns();
  for (auto _ : state) {
    for (std::size_t i = 0; i < k_batch; ++i) {
      long status = 0;
      if (curl_easy_perform(easy) != CURLE_OK) ++failed;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      if (status != 200) ++failed;
    }
  }
  const double cpu_ns = process_cpu_ns() - cpu_start;
  curl_slist_free_all(headers);
  curl_easy_cleanup(easy);
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * k_batch));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * k_batch * body().size()));
  state.counters["failed"] = static_cast<double>(failed);
  state.counters["cpu_ns_per_req"] = cpu_ns / static_cast<double>(state.iterations() * k_batch);
}
void BM_Send_EasyBlocking(benchmark::State& state) { send_easy(state, false); }
void BM_Send_EasyBlockingRtt5ms(benchmark::State& state) { send_easy(state, true); }
BENCHMARK(BM_Send_EasyBlocking)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Send_EasyBlockingRtt5ms)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
