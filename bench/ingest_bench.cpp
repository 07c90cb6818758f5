// BM_Ingest_*: submit of the canonical request while one consumer thread drains, with 1 and 2
// producers, beside a std::mutex + std::deque queue doing the same copy (the baseline); the
// submit alone (uncontended), with thread churn (a new thread every N submits, beside the cost
// of creating and joining an empty thread), with a realistic size mix and with 100 KB prompts,
// each beside a memcpy of the same bytes.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "llm_workload.h"
#include "tracecast/ingest_ring.h"

namespace {

using tracecast::IngestConfig;
using tracecast::IngestRing;
using tracecast::LlmRequest;
using tracecast::submit_result;

// One consumer thread draining until stopped.
class Drainer {
 public:
  template <class DrainOnce>
  explicit Drainer(DrainOnce drain_once)
      : thread_([this, drain_once]() mutable {
          while (!stop_.load(std::memory_order_acquire)) {
            if (drain_once() == 0) std::this_thread::yield();
          }
          while (drain_once() != 0) {
          }
        }) {}
  ~Drainer() {
    stop_.store(true, std::memory_order_release);
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Accepted submits per second, and how often a producer found the queue full and retried.
void report(benchmark::State& state, std::uint64_t full) {
  const auto n = static_cast<double>(state.iterations() ? state.iterations() : 1);
  state.counters["submits/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["full%"] = benchmark::Counter(100.0 * static_cast<double>(full) / n, benchmark::Counter::kAvgThreads);
}

IngestConfig bench_config() {
  IngestConfig c;  // ring_bytes 32 MiB: the default, and the memory of the former 8192 x 4 KiB slots
  c.max_producers = 64;
  return c;
}

void drain_all(IngestRing& ring) {
  while (ring.drain([](const LlmRequest& r) { benchmark::DoNotOptimize(r.input_tokens); }, 4096) != 0) {
  }
}

struct RingFixture {
  IngestRing ring{bench_config()};
  std::unique_ptr<Drainer> drainer;
};
RingFixture* g_ring = nullptr;

void BM_Ingest_Submit(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_ring = new RingFixture;
    g_ring->drainer = std::make_unique<Drainer>([] {
      return g_ring->ring.drain([](const LlmRequest& r) { benchmark::DoNotOptimize(r.input_tokens); }, 256);
    });
  }
  // Google Benchmark starts every thread's loop together, after thread 0's setup above.
  tracecast::workload::Generator gen({});
  const LlmRequest& req = gen.next();
  std::uint64_t full = 0;
  // Each iteration is one accepted submit: on `full` the producer yields and retries, so the
  // rate is what producers and consumer move together, and full% says how often it waited.
  for (auto _ : state) {
    while (g_ring->ring.try_submit(req) != submit_result::ok) {
      ++full;
      std::this_thread::yield();
    }
  }
  report(state, full);
  // Every thread has left the timed loop (it ends with a barrier): tear down.
  if (state.thread_index() == 0) {
    delete g_ring;
    g_ring = nullptr;
  }
}

// The baseline: a std::mutex around two std::deque<std::uint32_t> (free and ready slot
// indices) with the same kind of slot copy.
struct MutexQueue {
  explicit MutexQueue(std::uint32_t capacity, std::uint32_t slot_bytes)
      : slot_bytes_(slot_bytes), slots_(static_cast<std::size_t>(capacity) * slot_bytes) {
    for (std::uint32_t i = 0; i < capacity; ++i) free_.push_back(i);
  }
  bool try_submit(const LlmRequest& r) {
    std::uint32_t slot;
    {
      std::lock_guard lock(mutex_);
      if (free_.empty()) return false;
      slot = free_.front();
      free_.pop_front();
    }
    char* base = slots_.data() + static_cast<std::size_t>(slot) * slot_bytes_;
    auto* rec = reinterpret_cast<LlmRequest*>(base);
    char* p = base + sizeof(LlmRequest);
    auto copy = [&p](std::string_view s) {
      std::memcpy(p, s.data(), s.size());
      std::string_view out(p, s.size());
      p += s.size();
      return out;
    };
    *rec = r;
    rec->account = copy(r.account);
    rec->request_id = copy(r.request_id);
    rec->operation = copy(r.operation);
    rec->provider = copy(r.provider);
    rec->requested_model = copy(r.requested_model);
    rec->response_model = copy(r.response_model);
    rec->finish_reason = copy(r.finish_reason);
    rec->user = copy(r.user);
    rec->session_id = copy(r.session_id);
    auto* meta = reinterpret_cast<tracecast::MetadataEntry*>(base + sizeof(LlmRequest) + 1024);
    for (std::size_t i = 0; i < r.metadata.size(); ++i) {
      meta[i].key = copy(r.metadata[i].key);
      meta[i].value = tracecast::AttributeValue::string(copy(r.metadata[i].value.as_string()));
    }
    rec->metadata = {meta, r.metadata.size()};
    std::lock_guard lock(mutex_);
    ready_.push_back(slot);
    return true;
  }
  std::size_t drain(std::size_t max) {
    std::uint32_t idx[256];
    std::size_t n = 0;
    {
      std::lock_guard lock(mutex_);
      while (n < max && n < 256 && !ready_.empty()) {
        idx[n++] = ready_.front();
        ready_.pop_front();
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      const auto* rec = reinterpret_cast<const LlmRequest*>(slots_.data() + static_cast<std::size_t>(idx[i]) * slot_bytes_);
      benchmark::DoNotOptimize(rec->input_tokens);
    }
    std::lock_guard lock(mutex_);
    for (std::size_t i = 0; i < n; ++i) free_.push_back(idx[i]);
    return n;
  }

  std::mutex mutex_;
  std::deque<std::uint32_t> free_, ready_;
  std::uint32_t slot_bytes_;
  std::vector<char> slots_;
};

struct MutexFixture {
  MutexQueue queue{8192, 4096};
  std::unique_ptr<Drainer> drainer;
};
MutexFixture* g_mutex = nullptr;

void BM_Ingest_MutexDequeBaseline(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_mutex = new MutexFixture;
    g_mutex->drainer = std::make_unique<Drainer>([] { return g_mutex->queue.drain(256); });
  }
  tracecast::workload::Generator gen({});
  const LlmRequest& req = gen.next();
  std::uint64_t full = 0;
  for (auto _ : state) {
    while (!g_mutex->queue.try_submit(req)) {
      ++full;
      std::this_thread::yield();
    }
  }
  report(state, full);
  if (state.thread_index() == 0) {
    delete g_mutex;
    g_mutex = nullptr;
  }
}

// The submit call alone on an uncontended ring, through the calling thread's registration (as
// Pipeline::submit does): one thread submits and, every 256 submits, drains inline (as the
// worker does, in chunks of 256; the figure includes that drain).
void BM_Ingest_SubmitUncontended(benchmark::State& state) {
  IngestConfig config = bench_config();
  config.ring_bytes = static_cast<std::uint32_t>(state.range(1)) << 20;
  IngestRing ring(config);
  tracecast::workload::Generator gen({state.range(0) != 0, 0.01, 1});
  const LlmRequest& req = gen.next();
  std::uint64_t n = 0;
  for (auto _ : state) {
    if (ring.try_submit(req) != submit_result::ok) state.SkipWithError("unexpected full");
    if ((++n & 255) == 0) ring.drain([](const LlmRequest& r) { benchmark::DoNotOptimize(r.input_tokens); }, 256);
  }
  state.counters["submits/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
// ring_mib: the default 32 MiB, and 1 MiB (the records' lines stay in cache: how much of the
// figure is writing lines last touched a whole ring ago).
BENCHMARK(BM_Ingest_SubmitUncontended)->ArgNames({"content", "ring_mib"})->ArgsProduct({{0, 1}, {32, 1}});

// The same with an explicit registration (make_producer): the thread-local lookup's share.
void BM_Ingest_SubmitExplicitProducer(benchmark::State& state) {
  IngestRing ring(bench_config());
  auto& producer = ring.make_producer();
  tracecast::workload::Generator gen({false, 0.01, 1});
  const LlmRequest& req = gen.next();
  std::uint64_t n = 0;
  for (auto _ : state) {
    if (ring.try_submit(producer, req) != submit_result::ok) state.SkipWithError("unexpected full");
    if ((++n & 255) == 0) ring.drain([](const LlmRequest& r) { benchmark::DoNotOptimize(r.input_tokens); }, 256);
  }
  state.counters["submits/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Ingest_SubmitExplicitProducer);

// Thread churn: each iteration is one thread that submits N canonical requests and exits
// (its registration goes back to the pool). Time per iteration includes creating and joining
// the thread: compare with BM_Ingest_ThreadCreateJoinBaseline. Counters: the thread's first
// submit (registration included) and its later submits, timed inside the thread; ns/submit
// over the whole iteration.
void BM_Ingest_ThreadChurn(benchmark::State& state) {
  IngestRing ring(bench_config());
  const auto per_thread = static_cast<std::uint64_t>(state.range(0));
  tracecast::workload::Generator gen({false, 0.01, 1});
  const LlmRequest& req = gen.next();
  using clock = std::chrono::steady_clock;
  std::uint64_t first_ns = 0;
  std::uint64_t rest_ns = 0;
  std::uint64_t not_ok = 0;
  for (auto _ : state) {
    std::thread([&] {
      const auto t0 = clock::now();
      not_ok += ring.try_submit(req) != submit_result::ok;
      const auto t1 = clock::now();
      for (std::uint64_t i = 1; i < per_thread; ++i) not_ok += ring.try_submit(req) != submit_result::ok;
      const auto t2 = clock::now();
      first_ns += static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
      rest_ns += static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(t2 - t1).count());
    }).join();
    if (ring.bytes_queued_guess() > ring.ring_bytes() / 2) {
      state.PauseTiming();
      drain_all(ring);
      state.ResumeTiming();
    }
  }
  if (not_ok != 0) state.SkipWithError("a submit was refused");
  const auto iters = static_cast<double>(state.iterations() ? state.iterations() : 1);
  state.counters["first_submit_ns"] = static_cast<double>(first_ns) / iters;
  if (per_thread > 1)
    state.counters["later_submit_ns"] = static_cast<double>(rest_ns) / (iters * static_cast<double>(per_thread - 1));
  state.counters["ns/submit"] = benchmark::Counter(static_cast<double>(state.iterations() * per_thread),
                                                   benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["overflow"] = static_cast<double>(ring.stats().overflow_submits);
}
BENCHMARK(BM_Ingest_ThreadChurn)->ArgName("submits_per_thread")->Arg(1)->Arg(16)->Arg(256)->UseRealTime();

void BM_Ingest_ThreadCreateJoinBaseline(benchmark::State& state) {
  std::uint64_t n = 0;
  for (auto _ : state) std::thread([&] { benchmark::DoNotOptimize(++n); }).join();
}
BENCHMARK(BM_Ingest_ThreadCreateJoinBaseline)->UseRealTime();

// A realistic size mix (deterministic): 90% ~1 KB of content, 8% 10-50 KB, 2% 100-200 KB.
struct SizeMix {
  explicit SizeMix(std::size_t n) {
    std::uint64_t x = 0x9e3779b97f4a7c15ULL;
    auto next = [&x] {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      return x;
    };
    const std::string text = tracecast::workload::content_text("user", 200 * 1000 + 4096);
    prompts.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint64_t r = next();
      const std::uint64_t pick = r % 100;
      std::size_t size = pick < 90 ? 800 + r % 400 : pick < 98 ? 10000 + r % 40000 : 100000 + r % 100000;
      // A UTF-8 boundary, as a real prompt has (content_text has multi-byte letters).
      while (size > 0 && (static_cast<unsigned char>(text[size]) & 0xC0) == 0x80) --size;
      prompts.emplace_back(text.substr(0, size));
    }
    requests.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      requests[i] = gen.next();
      requests[i].prompt = prompts[i];
      requests[i].completion = std::string_view(prompts[(i + 1) % n]).substr(0, 300);
      requests[i].metadata = meta;
      bytes.push_back(bytes_of(requests[i]));
    }
  }
  static std::size_t bytes_of(const LlmRequest& r) {
    std::size_t b = sizeof(LlmRequest) + r.account.size() + r.request_id.size() + r.operation.size() + r.provider.size() +
                    r.requested_model.size() + r.response_model.size() + r.response_id.size() + r.finish_reason.size() +
                    r.user.size() + r.session_id.size() + r.error_message.size() + r.prompt.size() + r.completion.size();
    for (const auto& e : r.metadata) b += sizeof(e) + e.key.size() + e.value.as_string().size();
    return b;
  }
  tracecast::workload::Generator gen{{false, 0.01, 7}};
  tracecast::MetadataEntry meta[2] = {{"environment", tracecast::AttributeValue::string("production")},
                                      {"trace_name", tracecast::AttributeValue::string("Analysis Pipeline")}};
  std::vector<std::string> prompts;
  std::vector<LlmRequest> requests;
  std::vector<std::size_t> bytes;
};

// One thread submits the size mix; the ring is drained inline whenever it is half full (not
// timed: the worker's share). Bytes/s counts the request's bytes (struct and strings).
void BM_Ingest_SizeMix(benchmark::State& state) {
  IngestRing ring(bench_config());
  const SizeMix mix(1024);
  std::size_t i = 0;
  std::uint64_t bytes = 0;
  for (auto _ : state) {
    const LlmRequest& r = mix.requests[i];
    if (ring.try_submit(r) != submit_result::ok) {
      state.SkipWithError("unexpected full");
      break;
    }
    bytes += mix.bytes[i];
    i = (i + 1) & 1023;
    if (ring.bytes_queued_guess() > ring.ring_bytes() / 2) {
      state.PauseTiming();
      drain_all(ring);
      state.ResumeTiming();
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.counters["truncated"] = static_cast<double>(ring.stats().truncated_values);
}
BENCHMARK(BM_Ingest_SizeMix);

// The same bytes memcpy'd, one request after the other, into a 32 MiB buffer (wrapping): what
// the copy alone costs, with the same cache behaviour as the ring.
void BM_Ingest_SizeMixMemcpyBaseline(benchmark::State& state) {
  const SizeMix mix(1024);
  std::vector<char> buffer(32u << 20);
  std::size_t at = 0;
  std::size_t i = 0;
  std::uint64_t bytes = 0;
  auto put = [&](std::string_view s) {
    std::memcpy(buffer.data() + at, s.data(), s.size());
    at += s.size();
  };
  for (auto _ : state) {
    const LlmRequest& r = mix.requests[i];
    if (at + mix.bytes[i] > buffer.size()) at = 0;
    std::memcpy(buffer.data() + at, &r, sizeof r);
    at += sizeof r;
    put(r.account), put(r.request_id), put(r.operation), put(r.provider), put(r.requested_model);
    put(r.response_model), put(r.response_id), put(r.finish_reason), put(r.user), put(r.session_id);
    put(r.error_message);
    for (const auto& e : r.metadata) {
      std::memcpy(buffer.data() + at, &e, sizeof e);
      at += sizeof e;
      put(e.key), put(e.value.as_string());
    }
    put(r.completion), put(r.prompt);
    benchmark::ClobberMemory();
    bytes += mix.bytes[i];
    i = (i + 1) & 1023;
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
}
BENCHMARK(BM_Ingest_SizeMixMemcpyBaseline);

// A canonical request with a prompt of N bytes, submitted alone (drained when half full, not
// timed), beside a memcpy of the same prompt into a 32 MiB buffer (wrapping, like the ring).
void BM_Ingest_LargePrompt(benchmark::State& state) {
  IngestRing ring(bench_config());
  const std::string prompt = tracecast::workload::content_text("user", static_cast<std::size_t>(state.range(0)))
                                 .substr(0, static_cast<std::size_t>(state.range(0)));
  tracecast::workload::Generator gen({false, 0.0, 3});
  LlmRequest req = gen.next();
  req.prompt = prompt;
  for (auto _ : state) {
    if (ring.try_submit(req) != submit_result::ok) {
      state.SkipWithError("unexpected full");
      break;
    }
    if (ring.bytes_queued_guess() > ring.ring_bytes() / 2) {
      state.PauseTiming();
      drain_all(ring);
      state.ResumeTiming();
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * prompt.size()));
  state.counters["truncated"] = static_cast<double>(ring.stats().truncated_values);
}
BENCHMARK(BM_Ingest_LargePrompt)->ArgName("prompt_bytes")->Arg(10000)->Arg(100000)->Arg(200000);

void BM_Ingest_LargePromptMemcpyBaseline(benchmark::State& state) {
  const std::string prompt(static_cast<std::size_t>(state.range(0)), 'p');
  std::vector<char> buffer(32u << 20);
  std::size_t at = 0;
  for (auto _ : state) {
    if (at + prompt.size() > buffer.size()) at = 0;
    std::memcpy(buffer.data() + at, prompt.data(), prompt.size());
    at += (prompt.size() + 63) & ~std::size_t{63};
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * prompt.size()));
}
BENCHMARK(BM_Ingest_LargePromptMemcpyBaseline)->ArgName("prompt_bytes")->Arg(10000)->Arg(100000)->Arg(200000);

BENCHMARK(BM_Ingest_Submit)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_Ingest_MutexDequeBaseline)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
