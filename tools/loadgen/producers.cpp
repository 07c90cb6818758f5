#include "producers.h"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <chrono>

#include "llm_workload.h"
#include "tracecast/pipeline.h"

namespace tracecast::load {

namespace {

using steady = std::chrono::steady_clock;

// In rate mode a thread runs at most this far ahead of its schedule before it sleeps: it
// sends short bursts and sleeps about once per k_lead instead of once per request (a sleep
// costs a syscall and a wake-up, which would otherwise dominate the measured CPU).
constexpr std::int64_t k_lead_ns = 1'000'000;
// A thread more than this behind its schedule (stalled) restarts the schedule from now
// instead of bursting to catch up.
constexpr std::int64_t k_max_lag_ns = 1'000'000'000;
// A sleep until the next request is cut into slices of at most this, each followed by a look
// at stop_: at a low rate (--rate 1 over 2 threads: 2 s between one thread's requests) one
// long sleep overran --duration by up to a whole interval.
constexpr std::int64_t k_max_sleep_ns = 20'000'000;

std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch()).count();
}

}  // namespace

ProducerGroup::ProducerGroup(Pipeline* pipeline, ProducerOptions options)
    : pipeline_(pipeline), options_(options) {
  if (options_.threads == 0) options_.threads = 1;
  if (options_.accounts == 0) options_.accounts = 1;
  if (options_.accounts != workload::k_accounts || options_.skew.kind != AccountSkew::Kind::uniform) {
    sampler_ = std::make_unique<AccountSampler>(options_.accounts, options_.skew);
    account_names_.reserve(options_.accounts);
    for (std::size_t i = 0; i < options_.accounts; ++i) account_names_.push_back("acct_" + std::to_string(i));
  }
  for (unsigned i = 0; i < options_.threads; ++i) states_.push_back(std::make_unique<ThreadState>());
}

ProducerGroup::~ProducerGroup() {
  request_stop();
  join();
}

void ProducerGroup::start() {
  (void)TickClock::ns_per_tick();  // calibrate before the clock matters
  stop_at_ns_ = options_.duration.count() > 0 ? steady_ns() + options_.duration.count() : 0;
  running_.store(options_.threads, std::memory_order_release);
  for (unsigned i = 0; i < options_.threads; ++i) threads_.emplace_back([this, i] { run(i); });
}

void ProducerGroup::join() {
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

ProducerTotals ProducerGroup::totals() const noexcept {
  ProducerTotals t;
  for (const auto& s : states_) {
    t.attempted += s->attempted.load(std::memory_order_relaxed);
    t.ok += s->ok.load(std::memory_order_relaxed);
    t.full += s->full.load(std::memory_order_relaxed);
    t.closed += s->closed.load(std::memory_order_relaxed);
  }
  return t;
}

std::uint64_t ProducerGroup::threads_cpu_ns() const noexcept {
  std::uint64_t total = 0;
  for (const std::thread& t : threads_) {
    clockid_t clock{};
    timespec ts{};
    // const_cast: native_handle() is not const, and reading the handle changes nothing.
    if (pthread_getcpuclockid(const_cast<std::thread&>(t).native_handle(), &clock) == 0 &&
        clock_gettime(clock, &ts) == 0) {
      total += static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
    }
  }
  return total;
}

void ProducerGroup::latency(HistogramCounts& out) const noexcept {
  out = HistogramCounts{};
  for (const auto& s : states_) s->histogram.add_to(out);
}

void ProducerGroup::run(unsigned index) {
  ThreadState& st = *states_[index];
  workload::Generator gen(workload::Generator::Options{.content = options_.content, .error_rate = 0.01, .seed = index});
  const unsigned n = options_.threads;
  // A share of 0 (count < threads) means this thread submits nothing, never "unlimited".
  const std::uint64_t quota = thread_quota(options_.count, n, index);
  const bool limited = options_.rate > 0;
  const std::int64_t interval_ns =
      limited ? static_cast<std::int64_t>(1e9 * static_cast<double>(n) / options_.rate) : 0;
  // Unix time from the steady clock plus an offset taken once: one clock read per request.
  const std::int64_t unix_offset =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count() -
      steady_ns();
  // The threads' schedules are staggered so that together they are evenly spaced: thread i
  // starts i / rate seconds in (all starting at once sent `--rate 0.5 --count 2` as a burst).
  std::int64_t next_due = steady_ns() + (limited ? static_cast<std::int64_t>(1e9 * index / options_.rate) : 0);
  std::uint64_t done = 0, ok = 0, full = 0, closed = 0;
  const bool remap = !account_names_.empty();
  LlmRequest copy;
  SplitMix64 remap_rng(0x5eed0000ULL + index);

  const std::int64_t stop_at = stop_at_ns_;  // written before the threads started
  while (!stop_.load(std::memory_order_relaxed) && done < quota) {
    std::int64_t now = steady_ns();
    if (stop_at != 0 && now >= stop_at) break;
    if (limited) {
      if (next_due - now > k_lead_ns) {
        std::this_thread::sleep_for(std::chrono::nanoseconds(std::min(next_due - now, k_max_sleep_ns)));
        continue;  // re-check stop_ after a sleep
      }
      if (now - next_due > k_max_lag_ns) next_due = now;
      next_due += interval_ns;
    }
    const LlmRequest* req = &gen.next(static_cast<std::uint64_t>(now + unix_offset));
    if (remap) {
      // LlmRequest holds views: the copy is a flat struct copy, no allocation.
      copy = *req;
      copy.account = account_names_[sampler_->sample(remap_rng.next())];
      req = &copy;
    }
    submit_result r = submit_result::ok;
    const std::uint64_t t0 = TickClock::now();
    if (pipeline_ != nullptr) r = pipeline_->submit(*req);
    const std::uint64_t t1 = TickClock::now();
    st.histogram.record(t1 - t0);
    ++done;
    switch (r) {
      case submit_result::ok: ++ok; break;
      case submit_result::full: ++full; break;
      case submit_result::closed: ++closed; break;
    }
    // Published on every request: relaxed stores to this thread's own cache line (the
    // reporting thread reads them once a second).
    st.attempted.store(done, std::memory_order_relaxed);
    st.ok.store(ok, std::memory_order_relaxed);
    st.full.store(full, std::memory_order_relaxed);
    st.closed.store(closed, std::memory_order_relaxed);
    if (r == submit_result::closed) break;
  }
  // finished_at(): the latest stop, noted before this thread counts itself out.
  const std::int64_t end = steady_ns();
  std::int64_t seen = finished_at_ns_.load(std::memory_order_relaxed);
  while (seen < end && !finished_at_ns_.compare_exchange_weak(seen, end, std::memory_order_release,
                                                                std::memory_order_relaxed)) {
  }
  running_.fetch_sub(1, std::memory_order_acq_rel);
}

}  // namespace tracecast::load
