// BM_Gateway_*: raw request (~2 KB) + response (~1 KB) bodies -> LlmRequest (-> try_submit),
// beside simdjson's own on-demand parse of the same two bodies touching the same fields.
//
//   ./build-gw/bench/bench_gateway --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <simdjson.h>

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway_testing.h"  // core/src: the fast paths forced off, the baseline beside them
#include "llm_workload.h"
#include "tracecast/gateway.h"
#include "tracecast/ingest_ring.h"

namespace {

using namespace tracecast;

// simdjson marks get() warn_unused_result; the baseline reads best-effort like the parser.
inline void ignore(simdjson::error_code) noexcept {}

// The canonical request as a raw body: the reference's example shape, ~1.5 KB of messages
// with quotes, backslashes, newlines, non-ASCII and an emoji.
std::string make_request_body() {
  std::string messages = "[";
  messages += R"({"role":"system","content":"You are a careful analyst. Reply in JSON: {\"risk\": \"low\" | \"high\"}."},)";
  while (messages.size() < 1650)
    messages += R"({"role":"user","content":"Analyse the \"quarterly\" report:\n\tpath C:\\data\\q3.csv — résumé für Zoë, naïve café 😀; line two\nend"},)";
  messages.back() = ']';
  std::string body = R"({"model":"openai/gpt-4o","messages":)" + messages +
                     R"(,"temperature":0.7,"max_tokens":1024,"top_p":1,"stream":false,)"
                     R"("user":"user_12345","session_id":"session_abc",)"
                     R"("trace":{"trace_id":"monitoring_001","trace_name":"Analysis Pipeline",)"
                     R"("generation_name":"Detection","environment":"production"}})";
  return body;
}

std::string make_response_body() {
  std::string content;
  while (content.size() < 600)
    content += R"(The \"quarterly\" report shows:\n\t- revenue up 4% in Zürich\n\t- café sales flat 😀\n)";
  return R"({"id":"gen-1732680000-AbCdEfGhIjKlMnOpQrSt","provider":"OpenAI","model":"openai/gpt-4o-2024-08-06",)"
         R"("object":"chat.completion","created":1732680000,"choices":[{"logprobs":null,"finish_reason":"stop",)"
         R"("index":0,"message":{"role":"assistant","content":")" +
         content +
         R"(","refusal":null}}],"usage":{"prompt_tokens":412,"completion_tokens":87,"total_tokens":499,)"
         R"("cost":0.002541}})";
}

struct Bodies {
  std::string request = make_request_body();
  std::string response = make_response_body();
  [[nodiscard]] std::size_t bytes() const { return request.size() + response.size(); }
};

void set_counters(benchmark::State& state, const Bodies& b) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * b.bytes()));
  state.counters["request_bytes"] = static_cast<double>(b.request.size());
  state.counters["response_bytes"] = static_cast<double>(b.response.size());
}

// Baseline: simdjson on-demand over the same two bodies (already padded: no copy), reading the
// fields the gateway parser reads, into string_views only (no unescape beyond get_string).
void BM_Gateway_SimdjsonBaseline(benchmark::State& state) {
  namespace od = simdjson::ondemand;
  const Bodies b;
  const simdjson::padded_string request(b.request);
  const simdjson::padded_string response(b.response);
  od::parser parser;
  const auto part = state.range(0);  // 0: both bodies, 1: request only, 2: response only
  for (auto _ : state) {
    std::string_view model, user, session, prompt, id, response_model, finish, content;
    double temperature = 0, top_p = 0, cost = 0;
    std::int64_t max_tokens = 0, in_tokens = 0, out_tokens = 0;
    std::size_t trace_keys = 0;
    bool stream = false;
    if (part != 2) {
      od::document doc = parser.iterate(request);
      for (auto field : doc.get_object()) {
        const auto key = field.key().value();
        od::value v = field.value();
        if (key == "model") ignore(v.get_string().get(model));
        else if (key == "messages") { od::array a; if (!v.get_array().get(a)) ignore(a.raw_json().get(prompt)); }
        else if (key == "user") ignore(v.get_string().get(user));
        else if (key == "session_id") ignore(v.get_string().get(session));
        else if (key == "temperature") ignore(v.get_double().get(temperature));
        else if (key == "top_p") ignore(v.get_double().get(top_p));
        else if (key == "max_tokens") ignore(v.get_int64().get(max_tokens));
        else if (key == "stream") ignore(v.get_bool().get(stream));
        else if (key == "trace") {
          for (auto t : v.get_object()) {
            std::string_view k, s;
            ignore(t.unescaped_key().get(k));
            ignore(t.value().get_string().get(s));
            benchmark::DoNotOptimize(s);
            ++trace_keys;
          }
        }
      }
    }
    const bool model_ok = model == "openai/gpt-4o";  // views into the parser: check before reuse
    benchmark::DoNotOptimize(model);
    benchmark::DoNotOptimize(user);
    benchmark::DoNotOptimize(session);
    benchmark::DoNotOptimize(prompt);
    if (part != 1) {
      od::document doc = parser.iterate(response);
      for (auto field : doc.get_object()) {
        const auto key = field.key().value();
        od::value v = field.value();
        if (key == "id") ignore(v.get_string().get(id));
        else if (key == "model") ignore(v.get_string().get(response_model));
        else if (key == "choices") {
          for (auto choice : v.get_array()) {
            for (auto cf : choice.get_object()) {
              const auto ck = cf.key().value();
              if (ck == "finish_reason") ignore(cf.value().get_string().get(finish));
              else if (ck == "message") {
                for (auto mf : cf.value().get_object())
                  if (mf.key().value() == "content") ignore(mf.value().get_string().get(content));
              }
            }
          }
        } else if (key == "usage") {
          for (auto uf : v.get_object()) {
            const auto uk = uf.key().value();
            if (uk == "prompt_tokens") ignore(uf.value().get_int64().get(in_tokens));
            else if (uk == "completion_tokens") ignore(uf.value().get_int64().get(out_tokens));
            else if (uk == "cost") ignore(uf.value().get_double().get(cost));
          }
        }
      }
    }
    benchmark::DoNotOptimize(id);
    benchmark::DoNotOptimize(response_model);
    benchmark::DoNotOptimize(finish);
    benchmark::DoNotOptimize(content);
    benchmark::DoNotOptimize(temperature + top_p + cost);
    benchmark::DoNotOptimize(max_tokens + in_tokens + out_tokens + static_cast<std::int64_t>(trace_keys));
    benchmark::DoNotOptimize(stream);
    const bool request_ok = model_ok && trace_keys == 4 && prompt.size() >= 1500 && max_tokens == 1024;
    const bool response_ok = in_tokens == 412 && finish == "stop" && content.size() >= 500;
    if ((part != 2 && !request_ok) || (part != 1 && !response_ok)) {
      state.SkipWithError("baseline did not read every field");
      break;
    }
  }
  set_counters(state, b);
}
BENCHMARK(BM_Gateway_SimdjsonBaseline)->ArgName("part")->Arg(0)->Arg(1)->Arg(2);

// The gateway parser: request + response bodies -> LlmRequest (copy into padded scratch
// included, views mapped back to the caller's bytes).
void BM_Gateway_Parse(benchmark::State& state) {
  const Bodies b;
  GatewayParser parser;
  auto rec = std::make_unique<GatewayRecord>();
  const auto part = state.range(0);  // 0: both bodies, 1: request only, 2: response only
  for (auto _ : state) {
    rec->reset();
    if (part != 2) {
      auto r1 = parser.parse_request(b.request, {}, *rec);
      benchmark::DoNotOptimize(r1);
    }
    if (part != 1) {
      auto r2 = parser.parse_response(b.response, *rec);
      benchmark::DoNotOptimize(r2);
    }
    benchmark::DoNotOptimize(rec->request());
  }
  const LlmRequest& q = rec->request();
  if ((part != 2 && (q.requested_model != "openai/gpt-4o" || q.metadata.size() != 4)) ||
      (part != 1 && (q.input_tokens != 412 || q.completion.size() < 500)))
    state.SkipWithError("wrong parse");
  set_counters(state, b);
}
BENCHMARK(BM_Gateway_Parse)->ArgName("part")->Arg(0)->Arg(1)->Arg(2);

// Parse + outcome + try_submit into the ingest ring (the whole hot-path cost to the gateway).
// The ring is drained (timer paused) only when full (256 MiB of records).
void BM_Gateway_ParseSubmit(benchmark::State& state) {
  const Bodies b;
  GatewayParser parser;
  auto rec = std::make_unique<GatewayRecord>();
  IngestConfig config;
  config.ring_bytes = 256u << 20;  // the memory of the former 65536 slots x 4 KiB
  config.max_producers = 2;
  IngestRing ring(config);
  auto& producer = ring.make_producer();
  std::uint64_t full = 0;
  for (auto _ : state) {
    rec->reset();
    (void)parser.parse_request(b.request, {}, *rec);
    (void)parser.parse_response(b.response, *rec);
    (void)parser.set_outcome(200, {}, *rec);
    rec->request().account = "acct_7";
    rec->request().request_id = "req_0123456789abcdefghij";
    if (ring.try_submit(producer, rec->request()) != submit_result::ok) {
      state.PauseTiming();
      ++full;
      while (ring.drain([](const LlmRequest&) {}, 1u << 16) != 0) {
      }
      state.ResumeTiming();
      (void)ring.try_submit(producer, rec->request());
    }
  }
  state.counters["ring_full_drains"] = static_cast<double>(full);
  set_counters(state, b);
}
BENCHMARK(BM_Gateway_ParseSubmit);

// The submit step alone, for the same LlmRequest (prompt ~1.5 KB, completion ~0.6 KB copied).
void BM_Gateway_SubmitOnly(benchmark::State& state) {
  const Bodies b;
  GatewayParser parser;
  auto rec = std::make_unique<GatewayRecord>();
  (void)parser.parse_request(b.request, {}, *rec);
  (void)parser.parse_response(b.response, *rec);
  IngestConfig config;
  config.ring_bytes = 256u << 20;  // the memory of the former 65536 slots x 4 KiB
  config.max_producers = 2;
  IngestRing ring(config);
  auto& producer = ring.make_producer();
  for (auto _ : state) {
    if (ring.try_submit(producer, rec->request()) != submit_result::ok) {
      state.PauseTiming();
      while (ring.drain([](const LlmRequest&) {}, 1u << 16) != 0) {
      }
      state.ResumeTiming();
    }
  }
  set_counters(state, b);
}
BENCHMARK(BM_Gateway_SubmitOnly);

// A streamed response of the same content size, fed in 64-byte pieces.
void BM_Gateway_Stream(benchmark::State& state) {
  std::string sse;
  for (int i = 0; i < 12; ++i)
    sse += R"(data: {"id":"gen-1732680200-stream","model":"openai/gpt-4o-2024-08-06","choices":[{"index":0,"delta":{"content":"revenue up 4% in Zürich \"q3\"\n"},"finish_reason":null}]})"
           "\n\n";
  sse += R"(data: {"id":"gen-1732680200-stream","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":412,"completion_tokens":87,"cost":0.002541}})"
         "\n\ndata: [DONE]\n\n";
  GatewayParser parser;
  auto rec = std::make_unique<GatewayRecord>();
  for (auto _ : state) {
    rec->reset();
    parser.begin_stream(*rec);
    for (std::size_t i = 0; i < sse.size(); i += 64) (void)parser.feed_stream(std::string_view(sse).substr(i, 64), 1, *rec);
    auto r = parser.finish_stream(*rec);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * sse.size()));
}
BENCHMARK(BM_Gateway_Stream);


// --- every API shape beside simdjson's bare parse of the same bodies --------------------------
// Bodies from tests/data/gateway (written from each API's public documentation). The baseline
// is a plain simdjson DOM parse of the same bytes (already padded, no copy), every value
// visited by the parser but nothing read out: what "parsing the bodies" costs before any work.
struct Shape {
  const char* name;
  const char* request;
  const char* response;
  const char* stream;  // "" when the API does not stream
};
constexpr Shape k_shapes[] = {
    {"anthropic", "anthropic_request.json", "anthropic_response.json", "anthropic_stream.sse"},
    {"responses", "responses_request.json", "responses_response.json", "responses_stream.sse"},
    {"embeddings", "embeddings_request.json", "embeddings_response.json", ""},
    {"chat_details", "chat_request.json", "chat_usage_details_response.json", "stream_response.sse"},
};

std::string read_data(const char* name) {
  const std::string path = std::string(TRACECAST_SOURCE_DIR) + "/tests/data/gateway/" + name;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  std::string out;
  if (f == nullptr) return out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

// The JSON of each `data:` line of an SSE stream (not [DONE]).
std::vector<std::string> data_lines(const std::string& sse) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  while (pos < sse.size()) {
    std::size_t nl = sse.find('\n', pos);
    if (nl == std::string::npos) nl = sse.size();
    std::string_view line(sse.data() + pos, nl - pos);
    pos = nl + 1;
    if (line.substr(0, 6) == "data: " && line.substr(6) != "[DONE]") out.emplace_back(line.substr(6));
  }
  return out;
}

void BM_Gateway_ShapeBareParse(benchmark::State& state) {
  const Shape& shape = k_shapes[state.range(0)];
  const simdjson::padded_string request(read_data(shape.request));
  const simdjson::padded_string response(read_data(shape.response));
  simdjson::dom::parser parser;
  for (auto _ : state) {
    simdjson::dom::element a, b;
    if (parser.parse(request).get(a) != simdjson::SUCCESS) state.SkipWithError("request");
    benchmark::DoNotOptimize(a);
    if (parser.parse(response).get(b) != simdjson::SUCCESS) state.SkipWithError("response");
    benchmark::DoNotOptimize(b);
  }
  state.SetLabel(shape.name);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * (request.size() + response.size())));
}
BENCHMARK(BM_Gateway_ShapeBareParse)->ArgName("shape")->DenseRange(0, 3);

void BM_Gateway_ShapeParse(benchmark::State& state) {
  const Shape& shape = k_shapes[state.range(0)];
  const std::string request = read_data(shape.request);
  const std::string response = read_data(shape.response);
  GatewayParser parser;
  auto rec = std::make_unique<GatewayRecord>();
  for (auto _ : state) {
    rec->reset();
    auto r1 = parser.parse_request(request, {}, *rec);
    auto r2 = parser.parse_response(response, *rec);
    benchmark::DoNotOptimize(r1);
    benchmark::DoNotOptimize(r2);
    benchmark::DoNotOptimize(rec->request());
  }
  if (rec->request().input_tokens < 0 || rec->issues() != 0) state.SkipWithError("wrong parse");
  state.SetLabel(shape.name);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * (request.size() + response.size())));
}
BENCHMARK(BM_Gateway_ShapeParse)->ArgName("shape")->DenseRange(0, 3);

void BM_Gateway_ShapeStreamBareParse(benchmark::State& state) {
  const Shape& shape = k_shapes[state.range(0)];
  std::vector<simdjson::padded_string> lines;
  for (const auto& l : data_lines(read_data(shape.stream))) lines.emplace_back(l);
  simdjson::dom::parser parser;
  std::size_t bytes = 0;
  for (const auto& l : lines) bytes += l.size();
  for (auto _ : state) {
    for (const auto& l : lines) {
      simdjson::dom::element e;
      if (parser.parse(l).get(e) != simdjson::SUCCESS) state.SkipWithError("line");
      benchmark::DoNotOptimize(e);
    }
  }
  state.SetLabel(shape.name);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_Gateway_ShapeStreamBareParse)->ArgName("shape")->Arg(0)->Arg(1)->Arg(3);

// A shape's stream through feed_stream in pieces of `piece` bytes (the whole stream in one
// call when `piece` is its size or more): line splitting, event dispatch, content and
// tool-call assembly included.
void shape_stream(benchmark::State& state, std::size_t piece, bool fast = true) {
  const Shape& shape = k_shapes[state.range(0)];
  const std::string sse = read_data(shape.stream);
  GatewayParser parser;
  auto rec = std::make_unique<GatewayRecord>();
  detail::set_stream_fast_path(fast);
  const std::uint64_t fast_before = detail::stream_fast_events();
  for (auto _ : state) {
    rec->reset();
    parser.begin_stream(*rec);
    for (std::size_t i = 0; i < sse.size(); i += piece) (void)parser.feed_stream(std::string_view(sse).substr(i, piece), 1, *rec);
    auto r = parser.finish_stream(*rec);
    benchmark::DoNotOptimize(r);
  }
  // Events the fast paths read, per stream (0 with them off).
  state.counters["fast_events"] = benchmark::Counter(static_cast<double>(detail::stream_fast_events() - fast_before),
                                                     benchmark::Counter::kAvgIterations);
  detail::set_stream_fast_path(true);
  if (rec->request().completion.empty() || rec->issues() != 0) state.SkipWithError("wrong stream");
  state.SetLabel(shape.name);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * sse.size()));
}

// The streams in 64-byte pieces.
void BM_Gateway_ShapeStream(benchmark::State& state) { shape_stream(state, 64); }
BENCHMARK(BM_Gateway_ShapeStream)->ArgName("shape")->Arg(0)->Arg(1)->Arg(3);

// The same in 64-byte pieces with the fast paths off (every event through stage 1 and the
// on-demand walk): what the fast paths save, in the same binary.
void BM_Gateway_ShapeStreamGeneral(benchmark::State& state) { shape_stream(state, 64, false); }
BENCHMARK(BM_Gateway_ShapeStreamGeneral)->ArgName("shape")->Arg(0)->Arg(1)->Arg(3);

// The same streams fed whole (one feed_stream call): what the line splitting of the 64-byte
// pieces above costs.
void BM_Gateway_ShapeStreamWhole(benchmark::State& state) { shape_stream(state, std::string::npos); }
BENCHMARK(BM_Gateway_ShapeStreamWhole)->ArgName("shape")->Arg(0)->Arg(1)->Arg(3);

// A hostile `trace`: max_metadata_keys (4096) distinct keys, then `dups` values for keys already
// given (every third one null). Duplicates are looked up by hash: the cost follows the body's
// length, not the body's length times the keys held.
void BM_Gateway_TraceDuplicateKeys(benchmark::State& state) {
  const auto dups = static_cast<std::size_t>(state.range(0));
  std::string body = R"({"model":"m","trace":{)";
  for (std::size_t k = 0; k < 4096; ++k) body += (k ? ",\"k" : "\"k") + std::to_string(k) + "\":1";
  for (std::size_t i = 0; i < dups; ++i)
    body += ",\"k" + std::to_string(i * 7919 % 4096) + "\":" + (i % 3 == 0 ? "null" : "2");
  body += "}}";
  GatewayConfig config;
  config.max_metadata_keys = 4096;
  GatewayParser parser(config);
  auto rec = std::make_unique<GatewayRecord>(config);
  for (auto _ : state) {
    auto r = parser.parse_request(body, {}, *rec);
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_Gateway_TraceDuplicateKeys)->ArgName("dups")->Arg(0)->Arg(100'000);

}  // namespace

BENCHMARK_MAIN();
