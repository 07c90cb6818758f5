// Benchmarks of tracecast-sink: the OTLP reader against a plain simdjson parse of the same
// body (baseline), and whole requests over loopback to an in-process server in parse mode
// against --count-only mode (baseline). Bodies follow shared/WORKLOAD.md: 500 canonical
// spans, each with its own resource block (~1.3 KB of JSON per span).
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "otlp_reader.h"
#include "sink_server.h"

namespace {

constexpr int k_spans = 500;

std::string canonical_body(int spans) {
  std::string b = R"({"resourceSpans":[)";
  for (int i = 0; i < spans; ++i) {
    if (i > 0) b += ',';
    char buf[2048];
    std::snprintf(
        buf, sizeof buf,
        R"({"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"openrouter"}},)"
        R"({"key":"service.version","value":{"stringValue":"1.0.0"}},)"
        R"({"key":"openrouter.trace.id","value":{"stringValue":"gen-%019d"}}]},)"
        R"("scopeSpans":[{"scope":{"name":"tracecast","version":"0.1.0"},"spans":[{)"
        R"("traceId":"%032x","spanId":"%016x","name":"chat openai/gpt-4o","kind":3,)"
        R"("startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000002500000000",)"
        R"("attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},)"
        R"({"key":"gen_ai.system","value":{"stringValue":"openai"}},)"
        R"({"key":"gen_ai.request.model","value":{"stringValue":"openai/gpt-4o-%d"}},)"
        R"({"key":"gen_ai.response.model","value":{"stringValue":"openai/gpt-4o-2024-08-06"}},)"
        R"({"key":"gen_ai.usage.input_tokens","value":{"intValue":"%d"}},)"
        R"({"key":"gen_ai.usage.output_tokens","value":{"intValue":"%d"}},)"
        R"({"key":"gen_ai.response.finish_reason","value":{"stringValue":"stop"}},)"
        R"({"key":"gen_ai.usage.cost","value":{"doubleValue":0.0042}},)"
        R"({"key":"user.id","value":{"stringValue":"user_%d"}},)"
        R"({"key":"session.id","value":{"stringValue":"session_abc"}},)"
        R"({"key":"trace.metadata.environment","value":{"stringValue":"production"}},)"
        R"({"key":"trace.metadata.trace_name","value":{"stringValue":"Analysis Pipeline"}}],)"
        R"("status":{}}]}]})",
        i, i + 1, i + 1, i % 50, 10 + i * 37 % 20000, 1 + i * 13 % 4000, i % 1000);
    b += buf;
  }
  b += "]}";
  return b;
}

const std::string& body() {
  static const std::string b = canonical_body(k_spans);
  return b;
}

std::string padded(const std::string& s) {
  std::string p = s;
  p.append(tracecast::sink::OtlpTraceReader::k_padding, '\0');
  return p;
}

void set_counters(benchmark::State& state, double spans_per_iter, double bytes_per_iter) {
  state.counters["spans/s"] = benchmark::Counter(spans_per_iter * static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
  state.counters["bytes/s"] = benchmark::Counter(bytes_per_iter * static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
}

// Baseline: simdjson DOM parse only, no validation or counting.
void BM_SinkRead_SimdjsonParseBaseline(benchmark::State& state) {
  const std::string p = padded(body());
  simdjson::dom::parser parser;
  for (auto _ : state) {
    simdjson::dom::element doc;
    if (parser.parse(p.data(), body().size(), false).get(doc) != simdjson::SUCCESS) {
      state.SkipWithError("parse failed");
    }
    benchmark::DoNotOptimize(doc);
  }
  set_counters(state, k_spans, static_cast<double>(body().size()));
}
BENCHMARK(BM_SinkRead_SimdjsonParseBaseline);

// Validate + count by service (the sink's default mode).
void BM_SinkRead_Validate(benchmark::State& state) {
  const std::string p = padded(body());
  tracecast::sink::OtlpTraceReader reader({}, false);
  for (auto _ : state) {
    if (!reader.read(p.data(), body().size())) state.SkipWithError("read failed");
    benchmark::DoNotOptimize(reader.span_count());
  }
  set_counters(state, k_spans, static_cast<double>(body().size()));
}
BENCHMARK(BM_SinkRead_Validate);

// Validate + --count-by gen_ai.request.model + --spans-out lines rendered.
void BM_SinkRead_CountByAndLines(benchmark::State& state) {
  const std::string p = padded(body());
  tracecast::sink::OtlpTraceReader reader({"gen_ai.request.model"}, true);
  for (auto _ : state) {
    if (!reader.read(p.data(), body().size())) state.SkipWithError("read failed");
    benchmark::DoNotOptimize(reader.lines().data());
  }
  set_counters(state, k_spans, static_cast<double>(body().size()));
}
BENCHMARK(BM_SinkRead_CountByAndLines);

// --- whole requests over loopback ------------------------------------------------------

tracecast::sink::SinkServer& server(bool count_only) {
  auto make = [](bool co) {
    tracecast::sink::SinkConfig c;
    c.listen_port = 0;
    c.quiet = true;
    c.count_only = co;
    auto s = std::make_unique<tracecast::sink::SinkServer>(c);
    std::string error;
    if (!s->start(error)) throw std::runtime_error(error);
    return s;
  };
  static auto parse_server = make(false);
  static auto count_server = make(true);
  return count_only ? *count_server : *parse_server;
}

// One keep-alive connection per benchmark thread; blocking request/response.
class Client {
 public:
  explicit Client(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) throw std::runtime_error("connect");
    const int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    request_ = "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               "Content-Length: " + std::to_string(body().size()) + "\r\n\r\n" + body();
  }
  ~Client() { ::close(fd_); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool post() {
    std::size_t off = 0;
    while (off < request_.size()) {
      const ssize_t n = ::send(fd_, request_.data() + off, request_.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    // Responses are small: read until the header end plus Content-Length.
    buf_.clear();
    for (;;) {
      char tmp[4096];
      const ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      buf_.append(tmp, static_cast<std::size_t>(n));
      const std::size_t end = buf_.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      const std::size_t cl = buf_.find("Content-Length: ");
      const std::size_t len = cl == std::string::npos ? 0 : std::strtoul(buf_.c_str() + cl + 16, nullptr, 10);
      if (buf_.size() >= end + 4 + len) return buf_.compare(9, 3, "200") == 0;
    }
  }

 private:
  int fd_ = -1;
  std::string request_;
  std::string buf_;
};

void run_http(benchmark::State& state, bool count_only) {
  Client client(server(count_only).port());
  for (auto _ : state) {
    if (!client.post()) {
      state.SkipWithError("request failed");
      break;
    }
  }
  set_counters(state, k_spans, static_cast<double>(body().size()));
  state.counters["req/s"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                               benchmark::Counter::kIsRate);
}

// Baseline: the sink in --count-only mode (HTTP and loopback costs only).
void BM_SinkHttp_CountOnlyBaseline(benchmark::State& state) { run_http(state, true); }
// The sink's default mode: decode, validate, count.
void BM_SinkHttp_Validate(benchmark::State& state) { run_http(state, false); }

BENCHMARK(BM_SinkHttp_CountOnlyBaseline)->Threads(1)->Threads(8)->UseRealTime();
BENCHMARK(BM_SinkHttp_Validate)->Threads(1)->Threads(8)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
