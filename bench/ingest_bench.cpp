// BM_Ingest_*: submit of the canonical request while one consumer thread drains, with 1 and 2
// producers; beside a std::mutex + std::deque queue doing the same slot copy (the baseline).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
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
  IngestConfig c;
  c.capacity = 16384;
  c.slot_bytes = 4096;
  c.max_producers = 64;
  return c;
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
  IngestRing::Producer* producer = nullptr;
  std::uint64_t full = 0;
  // Each iteration is one accepted submit: on `full` the producer yields and retries, so the
  // rate is what producers and consumer move together, and full% says how often it waited.
  for (auto _ : state) {
    if (producer == nullptr) producer = &g_ring->ring.make_producer();
    while (g_ring->ring.try_submit(*producer, req) != submit_result::ok) {
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
  MutexQueue queue{16384, 4096};
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

// The submit call alone on an uncontended ring: one thread submits and, every 256 submits,
// drains inline (as the worker does, in chunks of 256; the figure includes that drain).
void BM_Ingest_SubmitUncontended(benchmark::State& state) {
  IngestRing ring(bench_config());
  auto& producer = ring.make_producer();
  tracecast::workload::Generator gen({state.range(0) != 0, 0.01, 1});
  const LlmRequest& req = gen.next();
  std::uint64_t n = 0;
  for (auto _ : state) {
    if (ring.try_submit(producer, req) != submit_result::ok) state.SkipWithError("unexpected full");
    if ((++n & 255) == 0) ring.drain([](const LlmRequest& r) { benchmark::DoNotOptimize(r.input_tokens); }, 256);
  }
  state.counters["submits/s"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Ingest_SubmitUncontended)->ArgName("content")->Arg(0)->Arg(1);

BENCHMARK(BM_Ingest_Submit)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_Ingest_MutexDequeBaseline)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
