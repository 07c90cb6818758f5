#include "tracecast/pipeline.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>

#include "pipeline_internal_prometheus.h"

namespace tracecast {
namespace {

using Clock = std::chrono::steady_clock;

// --- batch buffers ----------------------------------------------------------------------------
//
// Buffers come in size classes 64 KiB << k. A destination starts its batches in the class its
// last batch needed (a trickle stays in 64 KiB, a busy destination climbs to batch.max_bytes),
// so thousands of quiet destinations do not each pin a max-size buffer. Freed buffers go back
// to their class's free list: after warm-up, no allocation.
constexpr std::size_t k_min_class_bytes = 64u << 10;

struct Buffer {
  char* data = nullptr;
  std::size_t capacity = 0;
  std::uint8_t size_class = 0;
};

class BufferPool {
 public:
  BufferPool(std::size_t largest, std::size_t budget) : budget_(budget) {
    std::size_t size = k_min_class_bytes;
    while (true) {
      class_bytes_.push_back(size);
      if (size >= largest) break;
      size <<= 1;
    }
    free_.resize(class_bytes_.size());
    for (std::size_t c = 0; c < class_bytes_.size(); ++c) free_[c].reserve(budget / class_bytes_[c] + 1);
  }
  ~BufferPool() {
    for (auto& list : free_)
      for (Buffer* b : list) destroy(b);
  }
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // Smallest class holding `bytes`.
  [[nodiscard]] std::uint8_t class_for(std::size_t bytes) const noexcept {
    std::uint8_t c = 0;
    while (c + 1u < class_bytes_.size() && class_bytes_[c] < bytes) ++c;
    return c;
  }
  [[nodiscard]] std::size_t class_bytes(std::uint8_t c) const noexcept { return class_bytes_[c]; }
  [[nodiscard]] std::uint8_t largest_class() const noexcept {
    return static_cast<std::uint8_t>(class_bytes_.size() - 1);
  }

  // A buffer of class `c`, or nullptr when it would take the pool past its budget.
  Buffer* acquire(std::uint8_t c) {
    const std::size_t bytes = class_bytes_[c];
    if (held_ + bytes > budget_) return nullptr;
    Buffer* b;
    if (!free_[c].empty()) {
      b = free_[c].back();
      free_[c].pop_back();
    } else {
      b = new Buffer{new char[bytes], bytes, c};
    }
    held_ += bytes;
    peak_ = std::max(peak_, held_);
    return b;
  }
  void release(Buffer* b) noexcept {
    held_ -= b->capacity;
    free_[b->size_class].push_back(b);  // capacity reserved for every buffer the budget allows
  }
  [[nodiscard]] std::size_t held() const noexcept { return held_; }
  [[nodiscard]] std::size_t peak() const noexcept { return peak_; }

 private:
  static void destroy(Buffer* b) noexcept {
    delete[] b->data;
    delete b;
  }
  std::size_t budget_;
  std::size_t held_ = 0;
  std::size_t peak_ = 0;
  std::vector<std::size_t> class_bytes_;
  std::vector<std::vector<Buffer*>> free_;
};

// A growable FIFO that allocates only when it grows (power-of-two ring).
template <class T>
class Fifo {
 public:
  void push(const T& v) {
    if (size_ == items_.size()) grow();
    items_[(head_ + size_) & (items_.size() - 1)] = v;
    ++size_;
  }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  T& front() noexcept { return items_[head_]; }
  void pop() noexcept {
    head_ = (head_ + 1) & (items_.size() - 1);
    --size_;
  }

 private:
  void grow() {
    std::vector<T> bigger(items_.empty() ? 64 : items_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = items_[(head_ + i) & (items_.size() - 1)];
    items_.swap(bigger);
    head_ = 0;
  }
  std::vector<T> items_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

struct Destination;

// One sealed batch from sealing until its completion: the tag handed to the sender indexes it.
struct Outstanding {
  Destination* dest = nullptr;
  Buffer* buffer = nullptr;     // the body's buffer (compressed, or the raw batch)
  std::size_t size = 0;         // body bytes
  std::uint32_t spans = 0;
  std::uint64_t epoch = 0;      // flush epoch it was sealed in
  std::string_view encoding;    // Content-Encoding
};

struct Destination {
  std::uint32_t id = 0;
  std::string name;
  std::string account;
  PipelineDestination config;
  Codec codec = Codec::none;
  OtlpJsonEncoder encoder;
  Buffer* open = nullptr;        // the open batch's buffer
  std::uint32_t open_spans = 0;
  std::uint64_t open_generation = 0;  // bumps at every seal; stale linger entries skip
  std::uint8_t size_class = 0;   // class the next batch starts in
  std::size_t held_bytes = 0;    // buffers held: open + outstanding
  Fifo<std::uint32_t> unsent;    // sealed batches the sender could not take yet
  std::uint64_t outstanding = 0;  // sealed and not completed (sent or unsent)
  bool removing = false;
  bool removed = false;
  DestinationCounters counters;
  EncoderStats encoder_seen{};   // encoder stats already added to the totals

  explicit Destination(const EncoderLimits& limits) : encoder(limits) {}
  void drop(DropReason r, std::uint64_t n) noexcept { counters.dropped[static_cast<std::size_t>(r)] += n; }
};

struct LingerEntry {
  Destination* dest;
  std::uint64_t generation;
  Clock::time_point deadline;
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

std::atomic<std::uint64_t> g_next_pipeline_id{1};

// The calling thread's producer handle for each pipeline it submitted to (pipelines are told
// apart by a process-unique id, so a new pipeline at a freed address is not confused).
struct ThreadProducers {
  struct Entry {
    std::uint64_t pipeline;
    IngestRing::Producer* producer;
  };
  Entry recent[4] = {};
  std::vector<Entry> more;
};
thread_local ThreadProducers t_producers;

void add_encoder_stats(EncoderStats& into, const EncoderStats& now, EncoderStats& seen) noexcept {
  into.invalid_utf8_replaced += now.invalid_utf8_replaced - seen.invalid_utf8_replaced;
  into.values_truncated += now.values_truncated - seen.values_truncated;
  into.duplicate_keys_skipped += now.duplicate_keys_skipped - seen.duplicate_keys_skipped;
  into.attributes_dropped += now.attributes_dropped - seen.attributes_dropped;
  into.spans_too_large += now.spans_too_large - seen.spans_too_large;
  into.spans_invalid_id += now.spans_invalid_id - seen.spans_invalid_id;
  seen = now;
}

void add_counters(DestinationCounters& total, const DestinationCounters& d) noexcept {
  total.submitted += d.submitted;
  total.delivered += d.delivered;
  total.in_flight += d.in_flight;
  for (std::size_t i = 0; i < k_drop_reasons; ++i) total.dropped[i] += d.dropped[i];
  total.requests_sent += d.requests_sent;
  total.requests_delivered += d.requests_delivered;
  total.retries += d.retries;
  total.bytes_raw += d.bytes_raw;
  total.bytes_compressed += d.bytes_compressed;
  total.largest_batch_bytes = std::max(total.largest_batch_bytes, d.largest_batch_bytes);
  total.buffer_bytes += d.buffer_bytes;
  for (std::size_t i = 0; i < d.latency_buckets.size(); ++i) total.latency_buckets[i] += d.latency_buckets[i];
  total.latency_sum_ns += d.latency_sum_ns;
}

}  // namespace

// ------------------------------------------------------------------------------------------------

struct Pipeline::Impl {
  explicit Impl(PipelineConfig c)
      : config(std::move(c)),
        instance(g_next_pipeline_id.fetch_add(1, std::memory_order_relaxed)),
        ring(config.ingest),
        pool(std::max({std::size_t{config.batch.max_bytes},
                       Compressor::bound(Codec::gzip, config.batch.max_bytes),
                       Compressor::bound(Codec::zstd, config.batch.max_bytes)}),
             config.memory_budget_bytes),
        gzip(Codec::gzip, config.gzip_level),
        zstd(Codec::zstd, config.zstd_level),
        sender(config.sender),
        mapped(std::make_unique<MappedRequest>()) {
    outstanding.resize(64);
    for (std::uint32_t i = 64; i-- > 0;) free_outstanding.push_back(i);
    max_class = pool.class_for(config.batch.max_bytes);
    worker = std::thread([this] {
      pthread_setname_np(pthread_self(), "tracecast-work");  // shows in top, perf, gdb
      run();
    });
  }

  // --- commands from other threads (the worker owns every destination and counter) --------
  using Command = std::function<void()>;

  // Runs `cmd` on the worker between two steps and waits for it.
  void post(Command cmd) {
    std::promise<void> done;
    std::future<void> fut = done.get_future();
    {
      std::lock_guard lock(command_mutex);
      if (worker_exited) {
        cmd();  // the worker is gone: nothing races with us any more
        return;
      }
      commands.push_back([c = std::move(cmd), &done]() mutable {
        c();
        done.set_value();
      });
      commands_pending.store(true, std::memory_order_release);
    }
    wake.notify_one();
    fut.wait();
  }

  void run_commands() {
    std::vector<Command> batch;
    {
      std::lock_guard lock(command_mutex);
      batch.swap(commands);
      commands_pending.store(false, std::memory_order_relaxed);
    }
    for (auto& c : batch) c();
  }

  // --- the worker ---------------------------------------------------------------------------
  void run() {
    Clock::time_point last_linger_check = Clock::now();
    while (true) {
      if (commands_pending.load(std::memory_order_acquire)) run_commands();
      if (stop_worker) break;
      const std::size_t n = ring.drain([this](const LlmRequest& r) { route(r); }, 256);
      const std::size_t c = poll_completions();
      const Clock::time_point now = Clock::now();
      if (now - last_linger_check >= std::chrono::milliseconds(1)) {
        seal_lingering(now);
        send_unsent();
        last_linger_check = now;
      }
      if (n == 0 && c == 0) {
        idle(now);
      } else {
        idle_rounds = 0;
      }
    }
    // Final: take every completion the sender still reports.
    while (poll_completions() != 0) {
    }
    std::lock_guard lock(command_mutex);
    worker_exited = true;
    for (auto& cmd : commands) cmd();
    commands.clear();
  }

  void idle(Clock::time_point now) {
    // Sleep until a command or a timeout: 1 ms after work, doubling while idle up to 4 ms
    // (submitters never notify: the hot path stays a copy and an enqueue). A burst after a
    // quiet spell waits at most 4 ms in the ring (8192 slots hold 4 ms of 2 M requests/s);
    // linger deadlines are checked on every wake, so a batch seals at most 4 ms late.
    const auto nap = std::chrono::milliseconds(1) * (1 << std::min(idle_rounds, 2));
    ++idle_rounds;
    std::unique_lock lock(command_mutex);
    if (commands_pending.load(std::memory_order_relaxed)) return;
    wake.wait_until(lock, now + nap);
  }

  // --- routing and batching -------------------------------------------------------------------
  void route(const LlmRequest& r) {
    map_request(r, config.mapping, ids, *mapped);
    if (mapped->issues() != 0) ++mapping_issues;
    const std::vector<Destination*>* own = nullptr;
    if (auto it = routes.find(std::string_view(r.account)); it != routes.end()) own = &it->second;
    if ((own == nullptr || own->empty()) && everyone.empty()) {
      ++requests_unrouted;
      return;
    }
    ++requests_routed;
    if (own != nullptr)
      for (Destination* d : *own) deliver(*d);
    for (Destination* d : everyone) deliver(*d);
  }

  void deliver(Destination& d) {
    const std::span<const SpanView> spans = d.config.privacy_mode ? mapped->private_spans() : mapped->spans();
    const auto n = static_cast<std::uint32_t>(spans.size());
    d.counters.submitted += n;
    if (d.config.sampling_rate < 1.0 && !sample_trace(mapped->trace_id(), d.config.sampling_rate)) {
      d.drop(DropReason::sampled_out, n);
      return;
    }
    const ResourceView resource = mapped->resource();
    const ScopeView scope = mapped->scope();
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (d.open == nullptr && !open_batch(d, d.size_class)) {
        d.drop(DropReason::backpressure, n);
        return;
      }
      const std::size_t before = d.encoder.span_count();
      switch (d.encoder.append(resource, scope, spans)) {
        case append_result::ok: {
          // The encoder skips (and counts) a span with an all-zero id; it is not in flight.
          const auto written = static_cast<std::uint32_t>(d.encoder.span_count() - before);
          if (written != n) d.drop(DropReason::invalid, n - written);
          d.counters.in_flight += written;
          d.open_spans += written;
          if (d.open_spans >= config.batch.max_spans) seal(d, false);
          return;
        }
        case append_result::batch_full:
          // The batch is full before max_spans: the destination is busy; its next batch
          // starts one class larger.
          if (d.open->size_class < max_class) d.size_class = static_cast<std::uint8_t>(d.open->size_class + 1);
          seal(d, false);
          break;
        case append_result::too_large:
          // Larger than an empty batch of this class. Only the largest class is final.
          if (d.open->size_class >= max_class) {
            d.drop(DropReason::too_large, n);
            return;
          }
          if (d.open_spans == 0) {
            release_buffer(d, d.open);
            d.open = nullptr;
          } else {
            seal(d, false);
          }
          if (!open_batch(d, max_class)) {
            d.drop(DropReason::backpressure, n);
            return;
          }
          break;
      }
    }
    d.drop(DropReason::too_large, n);  // not reached: three classes of growth always settle
  }

  bool open_batch(Destination& d, std::uint8_t size_class) {
    const std::size_t bytes = pool.class_bytes(size_class);
    if (d.held_bytes + bytes > config.destination_budget_bytes) return false;
    Buffer* b = pool.acquire(size_class);
    if (b == nullptr) return false;
    d.held_bytes += b->capacity;
    d.open = b;
    d.open_spans = 0;
    d.encoder.begin(std::span<char>(b->data, b->capacity),
                    std::min<std::size_t>(b->capacity, config.batch.max_bytes));
    ++d.open_generation;
    linger.push({&d, d.open_generation, Clock::now() + config.batch.linger});
    return true;
  }

  void release_buffer(Destination& d, Buffer* b) noexcept {
    d.held_bytes -= b->capacity;
    pool.release(b);
  }

  // Seals d's open batch: finish the JSON, compress it into a second buffer when the
  // destination wants compression (and the budget has room; else it goes uncompressed, which
  // every OTLP server must accept), and hand it to the sender.
  void seal(Destination& d, bool by_linger) {
    Buffer* raw = d.open;
    if (raw == nullptr) return;
    d.open = nullptr;
    ++d.open_generation;
    const std::uint32_t spans = d.open_spans;
    d.open_spans = 0;
    const std::string_view body = d.encoder.finish();
    add_encoder_stats(encoder_totals, d.encoder.stats(), d.encoder_seen);
    if (spans == 0 || body.empty()) {
      release_buffer(d, raw);
      return;
    }
    if (by_linger && raw->size_class > 0 && body.size() < raw->capacity / 4)
      d.size_class = static_cast<std::uint8_t>(raw->size_class - 1);  // a quieter destination
    d.counters.bytes_raw += body.size();
    d.counters.largest_batch_bytes = std::max<std::uint64_t>(d.counters.largest_batch_bytes, body.size());

    Buffer* out = raw;
    std::size_t size = body.size();
    std::string_view encoding;
    if (d.codec != Codec::none) {
      Compressor& comp = d.codec == Codec::gzip ? gzip : zstd;
      const std::uint8_t c = pool.class_for(Compressor::bound(d.codec, body.size()));
      Buffer* z = d.held_bytes + pool.class_bytes(c) <= config.destination_budget_bytes ? pool.acquire(c) : nullptr;
      if (z != nullptr) {
        d.held_bytes += z->capacity;
        const std::size_t zn = comp.compress(body, std::span<char>(z->data, z->capacity));
        if (zn != 0) {
          release_buffer(d, raw);
          out = z;
          size = zn;
          encoding = content_encoding(d.codec);
        } else {
          release_buffer(d, z);
        }
      }
    }
    d.counters.bytes_compressed += size;

    const std::uint32_t tag = take_outstanding();
    Outstanding& o = outstanding[tag];
    o = Outstanding{&d, out, size, spans, epoch, encoding};
    ++d.outstanding;
    ++epoch_outstanding[epoch];
    if (!d.unsent.empty() || !try_send(tag)) d.unsent.push(tag);
  }

  bool try_send(std::uint32_t tag) {
    Outstanding& o = outstanding[tag];
    SendRequest req;
    req.destination = o.dest->id;
    req.tag = tag;
    req.body = o.buffer->data;
    req.size = o.size;
    req.content_encoding = o.encoding;
    req.items = o.spans;
    if (!sender.try_send(req)) return false;
    ++o.dest->counters.requests_sent;
    return true;
  }

  void send_unsent() {
    for (Destination* d : unsent_scan) {
      while (!d->unsent.empty() && try_send(d->unsent.front())) d->unsent.pop();
    }
  }

  std::uint32_t take_outstanding() {
    if (free_outstanding.empty()) {
      const auto old = static_cast<std::uint32_t>(outstanding.size());
      outstanding.resize(old * 2);
      for (std::uint32_t i = static_cast<std::uint32_t>(outstanding.size()); i-- > old;) free_outstanding.push_back(i);
    }
    const std::uint32_t t = free_outstanding.back();
    free_outstanding.pop_back();
    return t;
  }

  void seal_lingering(Clock::time_point now) {
    while (!linger.empty()) {
      LingerEntry& e = linger.front();
      if (e.generation != e.dest->open_generation || e.dest->open == nullptr) {
        linger.pop();  // sealed since
        continue;
      }
      if (e.deadline > now) break;
      Destination* d = e.dest;
      linger.pop();
      seal(*d, true);
    }
  }

  void seal_all() {
    for (auto& d : destinations)
      if (d->open != nullptr) seal(*d, false);
  }

  // --- completions ----------------------------------------------------------------------------
  std::size_t poll_completions() {
    return sender.poll_completions([this](const Completion& c) { complete(c); }, 1024);
  }

  void complete(const Completion& c) {
    Outstanding& o = outstanding[c.tag];
    Destination& d = *o.dest;
    const std::uint64_t n = o.spans;
    d.counters.in_flight -= n;
    switch (c.outcome) {
      case SendOutcome::delivered: {
        const std::uint64_t rejected = std::min<std::uint64_t>(c.rejected_items, n);
        d.counters.delivered += n - rejected;
        d.drop(DropReason::partial_rejected, rejected);
        ++d.counters.requests_delivered;
        break;
      }
      case SendOutcome::rejected: d.drop(DropReason::rejected, n); break;
      case SendOutcome::retries_exhausted: d.drop(DropReason::retries_exhausted, n); break;
      case SendOutcome::network_error_final: d.drop(DropReason::network, n); break;
      case SendOutcome::aborted: d.drop(DropReason::shutdown, n); break;
      case SendOutcome::destination_removed: d.drop(DropReason::removed, n); break;
    }
    if (c.attempts > 1) d.counters.retries += c.attempts - 1;
    const double ms = static_cast<double>(c.latency_ns) / 1e6;
    std::size_t b = 0;
    while (b < k_latency_bounds_ms.size() && ms > k_latency_bounds_ms[b]) ++b;
    ++d.counters.latency_buckets[b];
    d.counters.latency_sum_ns += c.latency_ns;
    finish_outstanding(c.tag);
  }

  void finish_outstanding(std::uint32_t tag) {
    Outstanding& o = outstanding[tag];
    Destination& d = *o.dest;
    release_buffer(d, o.buffer);
    --d.outstanding;
    if (auto it = epoch_outstanding.find(o.epoch); it != epoch_outstanding.end() && --it->second == 0) {
      epoch_outstanding.erase(it);
      settle_flushes();
    }
    free_outstanding.push_back(tag);
    if (d.removing && d.outstanding == 0 && d.open == nullptr && !d.removed) {
      d.removed = true;
      d.counters.removed = true;
      sender.remove_destination(d.id);
      unsent_scan.erase(std::remove(unsent_scan.begin(), unsent_scan.end(), &d), unsent_scan.end());
    }
  }

  // Drops what was never handed to the sender (shutdown deadline passed).
  void drop_unsent() {
    for (auto& d : destinations) {
      while (!d->unsent.empty()) {
        const std::uint32_t tag = d->unsent.front();
        d->unsent.pop();
        d->counters.in_flight -= outstanding[tag].spans;
        d->drop(DropReason::shutdown, outstanding[tag].spans);
        finish_outstanding(tag);
      }
    }
  }

  // --- flush ------------------------------------------------------------------------------------
  struct FlushWaiter {
    std::uint64_t epoch;
    std::promise<void> done;
  };

  // Worker: everything accepted so far is drained, sealed and belongs to epochs <= the
  // returned one; the waiter is settled when none of those is outstanding.
  void begin_flush(const std::shared_ptr<FlushWaiter>& w) {
    const std::uint64_t target = ring.stats().accepted;
    while (ring.stats().drained < target) {
      if (ring.drain([this](const LlmRequest& r) { route(r); }, 1024) == 0) std::this_thread::yield();
    }
    seal_all();
    send_unsent();
    w->epoch = epoch;
    ++epoch;
    flush_waiters.push_back(w);
    settle_flushes();
  }

  void settle_flushes() {
    const std::uint64_t oldest = epoch_outstanding.empty() ? epoch : epoch_outstanding.begin()->first;
    for (auto it = flush_waiters.begin(); it != flush_waiters.end();) {
      if ((*it)->epoch < oldest) {
        (*it)->done.set_value();
        it = flush_waiters.erase(it);
      } else {
        ++it;
      }
    }
  }

  // --- stats ------------------------------------------------------------------------------------
  void snapshot(PipelineStats& s) {
    s.ingest = ring.stats();
    s.ingest.rejected_full += unregistered_rejects.load(std::memory_order_relaxed);
    s.requests_routed = requests_routed;
    s.requests_unrouted = requests_unrouted;
    s.mapping_issues = mapping_issues;
    for (auto& d : destinations) add_encoder_stats(encoder_totals, d->encoder.stats(), d->encoder_seen);
    s.encoder = encoder_totals;
    s.memory_bytes = pool.held();
    s.memory_peak_bytes = pool.peak();
    s.total = DestinationCounters{};
    s.total.name = "total";
    s.destinations.clear();
    s.destinations.reserve(destinations.size());
    for (auto& d : destinations) {
      d->counters.buffer_bytes = d->held_bytes;
      s.destinations.push_back(d->counters);
      add_counters(s.total, d->counters);
    }
  }

  // --- destinations (worker side) ---------------------------------------------------------------
  void rebuild_routes() {
    routes.clear();
    everyone.clear();
    for (auto& d : destinations) {
      if (d->removing) continue;
      if (d->account.empty()) everyone.push_back(d.get());
      else routes[d->account].push_back(d.get());
    }
  }

  Codec codec_of(const PipelineDestination& p) const {
    const ResolvedDestination r = resolve(p.transport);
    return parse_codec(r.compression).value_or(Codec::gzip);
  }

  // --- state --------------------------------------------------------------------------------
  PipelineConfig config;
  std::uint64_t instance;
  IngestRing ring;
  BufferPool pool;
  Compressor gzip;
  Compressor zstd;
  Sender sender;
  IdGenerator ids;
  std::unique_ptr<MappedRequest> mapped;
  std::uint8_t max_class = 0;
  int idle_rounds = 0;  // consecutive idle wakes (worker only)

  std::vector<std::unique_ptr<Destination>> destinations;
  std::unordered_map<std::string, std::vector<Destination*>, StringHash, std::equal_to<>> routes;
  std::vector<Destination*> everyone;
  std::vector<Destination*> unsent_scan;  // every destination not removed
  std::vector<Outstanding> outstanding;
  std::vector<std::uint32_t> free_outstanding;
  Fifo<LingerEntry> linger;
  std::uint64_t epoch = 0;
  std::map<std::uint64_t, std::uint64_t> epoch_outstanding;
  std::vector<std::shared_ptr<FlushWaiter>> flush_waiters;

  std::uint64_t requests_routed = 0;
  std::uint64_t requests_unrouted = 0;
  std::uint64_t mapping_issues = 0;
  EncoderStats encoder_totals{};

  std::atomic<std::uint64_t> unregistered_rejects{0};
  std::mutex command_mutex;
  std::condition_variable wake;
  std::vector<Command> commands;
  std::atomic<bool> commands_pending{false};
  bool stop_worker = false;     // worker only
  bool worker_exited = false;   // under command_mutex
  std::thread worker;

  std::mutex shutdown_mutex;
  bool shut_down = false;
  PipelineStats final_stats;
};

// ------------------------------------------------------------------------------------------------

Pipeline::Pipeline(PipelineConfig config) {
  if (std::string err = config.validate(); !err.empty()) throw std::invalid_argument("PipelineConfig." + err);
  impl_ = std::make_unique<Impl>(std::move(config));
}

Pipeline::~Pipeline() {
  shutdown(Clock::now() + impl_->config.shutdown_timeout);
}

const PipelineConfig& Pipeline::config() const noexcept { return impl_->config; }

submit_result Pipeline::submit(const LlmRequest& request) noexcept {
  ThreadProducers& tp = t_producers;
  const std::uint64_t me = impl_->instance;
  IngestRing::Producer* p = nullptr;
  for (auto& e : tp.recent) {
    if (e.pipeline == me) {
      p = e.producer;
      break;
    }
  }
  if (p == nullptr) {
    for (auto& e : tp.more)
      if (e.pipeline == me) p = e.producer;
    if (p == nullptr) {
      try {
        p = &impl_->ring.make_producer();
      } catch (...) {
        // More threads than ingest.max_producers: refused, and counted as full.
        impl_->unregistered_rejects.fetch_add(1, std::memory_order_relaxed);
        return submit_result::full;
      }
      // Keep it: in a free recent slot if any, else in the overflow list (allocates once).
      bool placed = false;
      for (auto& e : tp.recent) {
        if (e.pipeline == 0) {
          e = {me, p};
          placed = true;
          break;
        }
      }
      if (!placed) {
        try {
          tp.more.push_back({me, p});
        } catch (...) {
        }
      }
    }
  }
  return impl_->ring.try_submit(*p, request);
}

namespace {
std::optional<ValidationIssue> sampling_issue(double rate) {
  if (PipelineDestination::valid_sampling_rate(rate)) return std::nullopt;
  return ValidationIssue{"sampling_rate", "must be in 0.0001..1, got " + std::to_string(rate), false};
}
}  // namespace

AddDestinationOutcome Pipeline::add_destination(std::string_view account, const PipelineDestination& destination) {
  AddDestinationOutcome out;
  if (auto issue = sampling_issue(destination.sampling_rate)) {
    out.issues.push_back(std::move(*issue));
    return out;
  }
  AddDestinationResult added = impl_->sender.add_destination(destination.transport);
  out.issues = std::move(added.issues);
  if (!added.ok()) return out;
  out.id = added.id;
  auto d = std::make_unique<Destination>(impl_->config.encoder);
  d->id = added.id;
  d->name = destination.transport.name.empty() ? "destination" : destination.transport.name;
  d->account = std::string(account);
  d->config = destination;
  d->codec = impl_->codec_of(destination);
  d->counters.id = d->id;
  d->counters.name = d->name;
  d->counters.account = d->account;
  Destination* raw = d.release();
  impl_->post([impl = impl_.get(), raw] {
    impl->destinations.emplace_back(raw);
    impl->unsent_scan.push_back(raw);
    impl->rebuild_routes();
  });
  return out;
}

std::vector<AddDestinationOutcome> Pipeline::add_destinations(
    std::span<const std::pair<std::string, PipelineDestination>> destinations) {
  std::vector<AddDestinationOutcome> out;
  out.reserve(destinations.size());
  for (const auto& [account, destination] : destinations) out.push_back(add_destination(account, destination));
  return out;
}

std::vector<ValidationIssue> Pipeline::update_destination(std::uint32_t id, const PipelineDestination& destination) {
  if (auto issue = sampling_issue(destination.sampling_rate)) return {std::move(*issue)};
  std::vector<ValidationIssue> issues = validate(destination.transport);
  if (has_errors(issues)) return issues;
  bool found = false;
  const Codec codec = impl_->codec_of(destination);
  impl_->post([impl = impl_.get(), id, &destination, codec, &found] {
    for (auto& d : impl->destinations) {
      if (d->id != id || d->removing) continue;
      found = true;
      impl->seal(*d, false);  // what was batched goes out with the old settings
      d->config = destination;
      d->codec = codec;
      if (!destination.transport.name.empty()) {
        d->name = destination.transport.name;
        d->counters.name = d->name;
      }
    }
  });
  if (!found) return {{"id", "no destination with id " + std::to_string(id), false}};
  std::vector<ValidationIssue> sender_issues = impl_->sender.update_destination(id, destination.transport);
  if (has_errors(sender_issues)) return sender_issues;
  return issues;
}

bool Pipeline::remove_destination(std::uint32_t id) {
  bool found = false;
  impl_->post([impl = impl_.get(), id, &found] {
    for (auto& d : impl->destinations) {
      if (d->id != id || d->removing) continue;
      found = true;
      impl->seal(*d, false);
      impl->send_unsent();
      d->removing = true;
      impl->rebuild_routes();
      if (d->outstanding == 0) {
        d->removed = true;
        d->counters.removed = true;
        impl->sender.remove_destination(d->id);
      }
    }
  });
  return found;
}

DrainResult Pipeline::flush(std::chrono::steady_clock::time_point deadline) {
  auto waiter = std::make_shared<Impl::FlushWaiter>();
  std::future<void> done = waiter->done.get_future();
  impl_->post([impl = impl_.get(), waiter] { impl->begin_flush(waiter); });
  DrainResult r;
  r.complete = done.wait_until(deadline) == std::future_status::ready;
  r.stats = stats();
  r.in_flight = r.stats.total.in_flight;
  return r;
}

DrainResult Pipeline::shutdown(std::chrono::steady_clock::time_point deadline) {
  std::lock_guard lock(impl_->shutdown_mutex);
  if (impl_->shut_down) {
    DrainResult r;
    r.complete = impl_->final_stats.total.in_flight == 0;
    r.stats = impl_->final_stats;
    return r;
  }
  Impl& im = *impl_;
  im.ring.close();  // waits for submits in progress; later ones return closed
  DrainResult r = flush(deadline);
  // Deadline passed: drop what the sender never took, abort what it holds.
  im.post([&im] { im.drop_unsent(); });
  im.sender.shutdown(Clock::now());
  // Every completion (delivered or aborted) is now in the sender's queue: let the worker take
  // them, then stop it.
  im.post([&im] {
    while (im.poll_completions() != 0) {
    }
    im.stop_worker = true;
  });
  im.worker.join();
  im.snapshot(im.final_stats);
  im.shut_down = true;
  r.complete = r.complete && im.final_stats.total.in_flight == 0;
  r.stats = im.final_stats;
  r.in_flight = im.final_stats.total.in_flight;
  return r;
}

PipelineStats Pipeline::stats() const {
  PipelineStats s;
  {
    std::lock_guard lock(impl_->command_mutex);
    if (impl_->worker_exited) return impl_->final_stats;
  }
  impl_->post([impl = impl_.get(), &s] { impl->snapshot(s); });
  return s;
}

PipelineStats Pipeline::totals() const {
  PipelineStats s = stats();
  s.destinations.clear();
  return s;
}

std::string Pipeline::prometheus() const { return detail::format_prometheus(stats()); }

}  // namespace tracecast
