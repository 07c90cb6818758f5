#include "tracecast/pipeline.h"
#include "tracecast/presets.h"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "buffer_pool.h"
#include "compact_counters.h"
#include "destination_routing.h"
#include "health_notifier.h"
#include "linger_timers.h"
#include "pending_store.h"
#include "prefetch.h"
#include "pipeline_internal_prometheus.h"
#include "route_table.h"
#include "tracecast/otlp_protobuf.h"

namespace tracecast {
namespace {

using detail::Buffer;
using detail::Clock;
using detail::PendingRecord;
using detail::PendingRef;

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
    std::vector<T> bigger(items_.empty() ? 4 : items_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i) bigger[i] = items_[(head_ + i) & (items_.size() - 1)];
    items_.swap(bigger);
    head_ = 0;
  }
  std::vector<T> items_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

constexpr std::size_t k_none = ~std::size_t{0};
constexpr std::uint32_t k_no_index = ~std::uint32_t{0};
// Destination::route_filter bits.
constexpr std::uint8_t k_route_off = 1;   // PipelineDestination::enabled is false
constexpr std::uint8_t k_route_keys = 2;  // PipelineDestination::api_key_ids is not empty
// stats() ranks the destinations with traffic in the current and the previous window.
constexpr std::chrono::seconds k_window{10};
// Linger seals per worker step, between drains of the ingest ring (a seal of a quiet
// destination costs ~10-50 us, mostly compression: 64 of them keep a step under ~3 ms).
constexpr std::size_t k_seals_per_step = 64;
// A flush sweep held back by memory goes on anyway after this long without room (bodies a
// dead endpoint holds for minutes must not stall the healthy destinations' flush).
constexpr std::chrono::milliseconds k_sweep_stall{5};

// A record is ~400 B with its refs 32 B after its start: the line before a ref and the six
// after it cover the canonical request's record.
inline void prefetch_record_around(const PendingRef* ref) noexcept {
  const char* p = reinterpret_cast<const char*>(ref);
  for (int line = -1; line <= 6; ++line) __builtin_prefetch(p + line * 64, 0, 3);
}

// One destination as the worker sees it. What waits for its next batch is a list of
// PendingRefs into the shared PendingStore (no bytes of its own until it seals); sealed
// bodies hold pool buffers about their (compressed) size until their completion.
struct alignas(64) Destination {
  // --- touched by every request routed to it: one cache line (at 10,000+ destinations each
  // routed request misses the cache on its destinations, so every extra line costs) --------
  double sampling_rate = 1.0;
  PendingRef* head = nullptr;             // the open batch's requests, newest first
  std::uint64_t submitted = 0;            // spans; folded into counters at a snapshot
  std::uint64_t in_flight = 0;            // spans; likewise
  std::size_t held_bytes = 0;             // pending record bytes + sealed bodies held
  std::size_t pending_bytes = 0;          // record bytes referenced (charged to held_bytes)
  std::uint32_t pending_spans = 0;
  bool privacy_mode = false;
  bool removing = false;
  bool protobuf = false;                  // protocol http/protobuf: bodies encoded as protobuf
  Codec codec = Codec::none;
  bool disabled = false;                  // state() == disabled: its spans are dropped at routing
  std::uint8_t route_filter = 0;          // k_route_* bits: its own routing may refuse a request
  std::uint64_t key_mask = 0;             // keys.mask(): most refused key ids never touch `keys`
  ConventionSet conventions = k_default_conventions;  // read at seal only
  // Every convention adds its own copy of the names and content: the body of a request grows
  // about linearly with the set (all five: ~4x openrouter's for a content request), so the
  // size-based seal and the direct buffer's estimate scale with it.
  std::uint8_t body_factor = 1;

  // --- the rest ------------------------------------------------------------------------
  std::uint32_t id = 0;
  Clock::time_point batch_started{};
  std::chrono::milliseconds linger{0};    // adapts between batch.linger and batch.max_linger
  std::uint64_t generation = 0;           // bumps at every seal; stale linger entries skip
  std::size_t open_index = k_none;        // position in Impl::open_, k_none when no open batch
  // Sealed bodies the sender could not take yet (its queue was full): created at the first.
  std::unique_ptr<Fifo<std::uint32_t>> unsent;
  bool in_unsent_list = false;
  bool removed = false;
  bool adapted = false;                   // its linger has been adapted once
  DestinationKind kind = DestinationKind::otlp_http;  // for the health message's wording
  std::uint32_t max_in_flight = 4;        // DestinationConfig::max_in_flight
  std::uint32_t max_bytes = 0;            // request body limit: its max_request_bytes or batch.max_bytes
  std::uint32_t max_value_bytes = 0;      // its max_attribute_value_bytes when lower (<= 16 MiB); 0: the encoder's
  detail::KeyFilter keys;                 // api_key_ids (route_filter & k_route_keys)
  std::unique_ptr<detail::ExtraResource> resource;  // resource_attributes; null when none
  std::uint64_t outstanding = 0;          // sealed and not completed (sent or unsent)
  // Its counters in compact form (~120 B inline, the rarely used ones in a block allocated
  // at the first drop, failure or retry); DestinationCounters only when a snapshot lists it
  // (view()). submitted / in_flight / buffer_bytes are the fields above.
  detail::CompactCounters counters;
  std::string name;                       // the public name (never a credential)
  std::string account;                    // "" for an all-account destination
  // Health: counters.health() is the public view; the disable policy's clock is in the
  // counters' cold block (first_final_failure_unix_ns).
  std::uint32_t active_window = 0;        // the stats window it last had traffic in (0: never)
  std::uint32_t unhealthy_index = k_no_index;  // position in Impl::unhealthy, k_no_index when healthy

  void drop(DropReason r, std::uint64_t n) { counters.drop(r, n); }
  [[nodiscard]] DestinationState state() const noexcept { return counters.state; }
  [[nodiscard]] bool has_unsent() const noexcept { return unsent != nullptr && !unsent->empty(); }
  Fifo<std::uint32_t>& unsent_fifo() {  // allocates the first time
    if (unsent == nullptr) unsent = std::make_unique<Fifo<std::uint32_t>>();
    return *unsent;
  }
  // Spans it lost for a reason a user can act on (anything but sampling).
  [[nodiscard]] bool lost_spans() const noexcept {
    const detail::CompactCounters::Cold* c = counters.cold_if_any();
    if (c == nullptr) return false;
    for (std::size_t r = 0; r < k_drop_reasons; ++r)
      if (r != static_cast<std::size_t>(DropReason::sampled_out) && c->dropped[r] != 0) return true;
    return false;
  }
};

// Six cache lines: at 150,000 destinations each 64 bytes more is ~10 MB.
static_assert(sizeof(Destination) == 384, "Destination grew past six cache lines");

// A due destination's first record (seal() starts at its head), asked for while the rest of
// its group of due destinations is looked at (LingerTimers::pop_due's `ahead`): at 100,000
// destinations the record was written seconds ago, and seal() stalled on it.
inline void ask_for_first_record(const Destination& d) noexcept {
  if (d.head != nullptr) prefetch_record_around(d.head);
}

// One sealed body from sealing until its completion: the tag handed to the sender indexes it.
struct Outstanding {
  Destination* dest = nullptr;
  Buffer* buffer = nullptr;
  std::size_t size = 0;         // body bytes
  std::uint32_t spans = 0;
  std::uint64_t epoch = 0;      // flush epoch it was sealed in
  std::string_view encoding;    // Content-Encoding
};


std::size_t largest_buffer(const PipelineConfig& c) {
  return std::max({std::size_t{c.batch.max_bytes}, Compressor::bound(Codec::gzip, c.batch.max_bytes),
                   Compressor::bound(Codec::zstd, c.batch.max_bytes), std::size_t{c.ingest.ring_bytes} / 8 + 4096,  // the largest ingest record, stored
                   detail::PendingStore::k_chunk_bytes});
}

}  // namespace

// ------------------------------------------------------------------------------------------------

// The worker's two encoders, one per OTLP/HTTP protocol: the destination being sealed picks
// one (select), the calls below go to it. Stats are the sum of both.
class BatchEncoder {
 public:
  explicit BatchEncoder(const EncoderLimits& limits) : json_(limits), protobuf_(limits) {}
  void select(bool protobuf) noexcept { use_protobuf_ = protobuf; }
  // max_value_bytes: the destination's lower value limit, 0 for the encoder's.
  void begin(std::span<char> buffer, std::size_t budget, std::size_t max_value_bytes) noexcept {
    if (use_protobuf_) protobuf_.begin(buffer, budget, max_value_bytes);
    else json_.begin(buffer, budget, max_value_bytes);
  }
  [[nodiscard]] append_result append(const ResourceView& r, const ScopeView& s, std::span<const SpanView> spans) noexcept {
    return use_protobuf_ ? protobuf_.append(r, s, spans) : json_.append(r, s, spans);
  }
  [[nodiscard]] std::string_view finish() noexcept { return use_protobuf_ ? protobuf_.finish() : json_.finish(); }
  [[nodiscard]] std::size_t span_count() const noexcept {
    return use_protobuf_ ? protobuf_.span_count() : json_.span_count();
  }
  [[nodiscard]] EncoderStats stats() const noexcept {
    EncoderStats s = json_.stats();
    s += protobuf_.stats();
    return s;
  }

 private:
  OtlpJsonEncoder json_;
  OtlpProtobufEncoder protobuf_;
  bool use_protobuf_ = false;
};

struct Pipeline::Impl {
  explicit Impl(PipelineConfig c)
      : config(std::move(c)),
        ring(config.ingest),
        pool(largest_buffer(config), config.memory_budget_bytes, config.memory_budget_bytes / 8),
        store(pool),
        encoder(config.encoder),
        gzip(Codec::gzip, config.gzip_level),
        zstd(Codec::zstd, config.zstd_level),
        sender(with_retry_reports(config.sender)),
        mapped(std::make_unique<MappedRequest>()),
        raw_scratch(config.batch.max_bytes),
        zip_scratch(std::max(Compressor::bound(Codec::gzip, config.batch.max_bytes),
                             Compressor::bound(Codec::zstd, config.batch.max_bytes))) {
    outstanding.resize(64);
    for (std::uint32_t i = 64; i-- > 0;) free_outstanding.push_back(i);
    targets.reserve(64);
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
    wake_sender();
  }

  // --- the worker ---------------------------------------------------------------------------
  // Each step: commands, up to 256 requests routed, completions settled, due batches sealed,
  // bodies the sender refused offered again. Nothing here visits idle destinations: due
  // batches come off a heap, unsent bodies off a list of the destinations that have some.
  void run() {
    while (true) {
      if (commands_pending.load(std::memory_order_acquire)) run_commands();
      if (stop_worker) break;
      const std::size_t n = drain_ring(256);
      const std::size_t c = poll_completions();
      const Clock::time_point now = Clock::now();
      rotate_window(now);
      std::size_t sealed = lingers.pop_due(
          now, k_seals_per_step, [this, now](Destination& d) { on_linger(d, now); }, ask_for_first_record);
      // Memory pressure: pending records (a content request is ~2.5 KB) take more room than
      // the compressed bodies they become, so above 3/4 of the budget the batches due
      // soonest are sealed now instead of shedding new requests at the budget.
      if (pool.held() > pressure_bytes) {
        sealed += lingers.pop_due(
            Clock::time_point::max(), k_seals_per_step,
            [this, now](Destination& d) {
              ++batches_sealed_early;
              seal(d, now, SealCause::forced);
            },
            ask_for_first_record);
      }
      if (!sweep.empty() || sweep_open) sealed += sweep_step(now);
      if (!unsent_dests.empty()) send_unsent();
      wake_sender();
      if (n == 0 && c == 0 && sealed == 0) idle(now);
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
    // Sleep until a command or a timeout: 4 ms (submitters never notify: the hot path stays a
    // copy and an enqueue). A burst after a quiet spell waits at most 4 ms in the ring; a batch
    // seals at most 4 ms after its deadline. Each nap is a trip through the scheduler (and a
    // wake-up of the sender when the step sealed something): 1 ms after work meant ~1,000 a
    // second at 20,000 requests/s; 1 -> 2 ms took the worker from 3.9 to 3.6 µs per span at
    // 10,000 accounts, 2 -> 4 ms (with the sender's answer tick) worker + sender from 5.3 to
    // 4.9 µs (README "Answer ticks and naps"). Flat-out rates never nap.
    const auto nap = std::chrono::milliseconds(4);
    std::unique_lock lock(command_mutex);
    if (commands_pending.load(std::memory_order_relaxed)) return;
    wake.wait_until(lock, now + nap);
  }

  // --- routing ----------------------------------------------------------------------------
  // Every destination of the account (and every all-account one) gets the request's spans
  // counted as submitted; those that keep it (sampling, budget) share one copy of it in the
  // PendingStore and are charged its bytes until they encode it.
  using RouteList = detail::RouteTable<Destination>::List;

  // A group of requests from the ring: their route entries and then their destinations' first
  // lines are asked for before any of them is routed. At 100,000 accounts each request's
  // bucket, entry and destinations are cold; routed one by one, each stalled on three misses
  // in a row (the lookup and the first touch of a destination were 14% of the worker).
  void route_group(std::span<const LlmRequest* const> group) {
    std::array<std::uint64_t, IngestRing::k_drain_group> hashes;
    std::array<RouteList, IngestRing::k_drain_group> lists;
    const std::size_t n = std::min(group.size(), hashes.size());
    for (std::size_t i = 0; i < n; ++i) {
      hashes[i] = routes.hash(group[i]->account);
      routes.prefetch_bucket(hashes[i]);
    }
    for (std::size_t i = 0; i < n; ++i) routes.prefetch_entry(hashes[i]);
    for (std::size_t i = 0; i < n; ++i) {
      lists[i] = routes.own(group[i]->account, hashes[i]);
      for (const Destination* d : lists[i]) __builtin_prefetch(d, 1, 3);
    }
    for (std::size_t i = 0; i < n; ++i) route(*group[i], lists[i]);
  }

  // Routes up to `max` requests from the ring, a group at a time; returns how many.
  std::size_t drain_ring(std::size_t max) {
    return ring.drain_groups([this](std::span<const LlmRequest* const> g) { route_group(g); }, max);
  }

  // `own`: the account's destinations (routes.own(r.account)).
  void route(const LlmRequest& r, RouteList own) {
    const auto all = routes.everyone();
    if (own.empty() && all.empty()) {
      ++requests_unrouted;
      return;
    }
    ++requests_routed;
    const std::uint64_t seed = ids.next();
    const RequestPlan plan = plan_request(r, seed);
    const std::uint32_t n = plan.span_count;
    targets.clear();
    // The key id's hash: computed at the first destination that filters on keys, once.
    std::uint64_t key_hash = 0;
    bool key_hashed = false;
    auto consider = [&](Destination* d) {
      if (d->route_filter != 0) {
        // Its own routing (enabled, api_key_ids): not handed to it, so outside `submitted`.
        bool take = (d->route_filter & k_route_off) == 0;
        if (take && (d->route_filter & k_route_keys) != 0) {
          if (!key_hashed) {
            key_hash = detail::api_key_hash(r.api_key_id);
            key_hashed = true;
          }
          take = (d->key_mask & detail::KeyFilter::mask_bit(key_hash)) != 0 && d->keys.admits(key_hash, r.api_key_id);
        }
        if (!take) {
          d->counters.filtered += n;
          tot.filtered += n;
          return;
        }
      }
      d->submitted += n;
      tot.submitted += n;
      if (d->disabled) [[unlikely]] {
        drop(*d, DropReason::disabled, n);
        return;
      }
      if (d->sampling_rate < 1.0 && !sample_trace(plan.trace_id, d->sampling_rate)) {
        drop(*d, DropReason::sampled_out, n);
        return;
      }
      targets.push_back(d);
    };
    for (Destination* d : own) consider(d);
    for (Destination* d : all) consider(d);
    if (targets.empty()) return;

    // A destination at its budget sheds this request; the others take it.
    const std::size_t bytes = detail::PendingStore::bytes_for(r, static_cast<std::uint32_t>(targets.size()));
    std::size_t kept = 0;
    for (Destination* d : targets) {
      if (d->held_bytes + bytes > config.destination_budget_bytes) {
        drop(*d, DropReason::backpressure, n);
      } else {
        targets[kept++] = d;
      }
    }
    targets.resize(kept);
    if (targets.empty()) return;

    PendingRecord* rec = store.store(r, static_cast<std::uint32_t>(targets.size()), seed);
    if (rec == nullptr) {
      const DropReason why = pool.charge_for(bytes) == 0 ? DropReason::too_large : DropReason::backpressure;
      for (Destination* d : targets) drop(*d, why, n);
      return;
    }
    rec->span_count = static_cast<std::uint8_t>(n);
    const Clock::time_point now = Clock::now();
    PendingRef* refs = rec->ref_array();
    for (std::size_t i = 0; i < targets.size(); ++i) enqueue(*targets[i], &refs[i], now);
  }

  void enqueue(Destination& d, PendingRef* ref, Clock::time_point now) {
    const PendingRecord& rec = *ref->record;
    // Pushed at the head: the link goes into this request's own record, which is in cache.
    // Appending at a tail wrote into the previous request's record instead, seconds old at a
    // quiet destination: a cold line, a third of route()'s samples at 10,000 accounts. So a
    // body holds its requests newest first (OTLP gives no meaning to the order of spans);
    // seal() walks the list and prefetches ahead.
    if (d.head == nullptr) {
      mark_active(d);  // once per batch: the first line of d stays the only one routing touches
      d.batch_started = now;
      d.open_index = open.size();
      open.push_back(&d);
      lingers.add(now + d.linger, &d, d.generation);
    }
    ref->next = d.head;
    d.head = ref;
    d.pending_spans += rec.span_count;
    d.pending_bytes += rec.bytes;
    d.held_bytes += rec.bytes;
    tot.buffer_bytes += rec.bytes;
    d.in_flight += rec.span_count;
    tot.in_flight += rec.span_count;
    // JSON is about twice the record's bytes: seal before the body would pass max_bytes.
    if (d.pending_spans >= config.batch.max_spans || d.pending_bytes * 2 * d.body_factor >= d.max_bytes)
      seal(d, now, SealCause::size);
  }

  // --- sealing ----------------------------------------------------------------------------
  // Encodes d's pending requests into one or more bodies (each within max_spans and
  // max_bytes), compresses each, and hands them to the sender. The records' bytes stop being
  // charged to d; each body is charged its buffer's capacity until its completion.
  enum class SealCause : std::uint8_t { linger, size, forced };  // forced: flush, update, removal

  // A batch's linger is up. If the destination already has as many requests unfinished as
  // it may have in flight (a slow or failing endpoint), a new body would only wait in the
  // sender's queue: the batch keeps growing instead (until max_spans / max_bytes seal it, or
  // a request completes), so a slow endpoint gets fewer, fuller requests rather than a
  // backlog of small ones. Checked again every batch.linger.
  void on_linger(Destination& d, Clock::time_point now) {
    if (d.outstanding >= d.max_in_flight) {
      lingers.add(now + config.batch.linger, &d, d.generation);
      ++batches_deferred;
      return;
    }
    seal(d, now, SealCause::linger);
  }

  void seal(Destination& d, Clock::time_point now, SealCause cause) {
    if (d.head == nullptr) return;
    ++d.generation;
    const std::uint32_t spans_seen = d.pending_spans;
    // A request that did not fit the body being closed is encoded first into the next one:
    // its mapping is kept rather than made again.
    const PendingRecord* mapped_rec = nullptr;
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(now - d.batch_started);
    const std::uint64_t cut_before = encoder.stats().values_truncated;
    while (d.head != nullptr) {
      // Uncompressed bodies are encoded straight into a pool buffer sized from the records'
      // bytes (OTLP/JSON is ~3.4x the compact record), saving a copy of every byte; the
      // encoder's budget makes an underestimate start another body, never a truncated one.
      Buffer* direct = nullptr;
      std::span<char> into(raw_scratch.data(), raw_scratch.size());
      if (d.codec == Codec::none) {
        const std::size_t want = std::min<std::size_t>(d.max_bytes, d.pending_bytes * 4 * d.body_factor + 256);
        if (d.held_bytes + pool.charge_for(want) <= config.destination_budget_bytes) direct = pool.acquire(want);
        if (direct != nullptr) {
          d.held_bytes += direct->capacity;
          tot.buffer_bytes += direct->capacity;
          into = std::span<char>(direct->data, direct->capacity);
        }
      }
      encoder.select(d.protobuf);
      encoder.begin(into, std::min<std::size_t>(into.size(), d.max_bytes), d.max_value_bytes);
      std::uint32_t spans = 0;
      while (d.head != nullptr && spans < config.batch.max_spans) {
        PendingRef* ref = d.head;
        // The records were written seconds ago, on cold lines: start loading the next one
        // (its ref lies inside it, after the header) while this one is encoded.
        if (ref->next != nullptr) prefetch_record_around(ref->next);
        PendingRecord& rec = *ref->record;
        if (mapped_rec != &rec) {
          detail::PendingStore::decode(rec, decoded, decoded_metadata.data());
          IdGenerator rec_ids(rec.id_seed);
          // Mapped once per destination that encodes it (at its own seal), with its whole
          // convention set at once, not once per convention.
          map_request(decoded, config.mapping, d.conventions, rec_ids, *mapped);
          mapped_rec = &rec;
          ++mappings;
        }
        if (!rec.issues_counted) {
          rec.issues_counted = true;
          if (mapped->issues() != 0) ++mapping_issues;
        }
        const std::span<const SpanView> view = d.privacy_mode ? mapped->private_spans() : mapped->spans();
        const auto n = static_cast<std::uint32_t>(view.size());
        const std::size_t before = encoder.span_count();
        ResourceView resource = mapped->resource();
        if (d.resource != nullptr) {
          d.resource->compose(resource.attributes, resource_scratch);
          resource.attributes = resource_scratch;
        }
        append_result result = encoder.append(resource, mapped->scope(), view);
        if (result == append_result::too_large && direct != nullptr && encoder.span_count() == 0) {
          // The estimate was short for this request (heavy escaping): encode this body in the
          // max_bytes scratch after all.
          d.held_bytes -= direct->capacity;
          tot.buffer_bytes -= direct->capacity;
          pool.release(direct);
          direct = nullptr;
          encoder.begin(std::span<char>(raw_scratch.data(), raw_scratch.size()), d.max_bytes, d.max_value_bytes);
          result = encoder.append(resource, mapped->scope(), view);
        }
        if (result == append_result::batch_full) break;  // next body
        if (result == append_result::too_large) {
          d.in_flight -= n;
          tot.in_flight -= n;
          drop(d, DropReason::too_large, n);
        } else {
          // The encoder skips (and counts) a span with an all-zero id; it is not in flight.
          const auto written = static_cast<std::uint32_t>(encoder.span_count() - before);
          if (written != n) {
            d.in_flight -= n - written;
            tot.in_flight -= n - written;
            drop(d, DropReason::invalid, n - written);
          }
          spans += written;
        }
        d.head = ref->next;
        d.pending_spans -= rec.span_count;
        d.pending_bytes -= rec.bytes;
        d.held_bytes -= rec.bytes;
        tot.buffer_bytes -= rec.bytes;
        store.release(&rec);
      }
      const std::string_view body = encoder.finish();
      if (direct != nullptr) {
        if (spans != 0 && !body.empty()) {
          note_body(d, body.size(), body.size());
          hand_over(d, direct, body.size(), spans, {});
        } else {
          d.held_bytes -= direct->capacity;
          tot.buffer_bytes -= direct->capacity;
          pool.release(direct);
        }
      } else if (spans != 0 && !body.empty()) {
        emit(d, body, spans);
      }
    }
    if (const std::uint64_t cut = encoder.stats().values_truncated - cut_before; cut != 0) {
      d.counters.cold().values_truncated += cut;
      tot.values_truncated += cut;
    }
    close_open(d);
    if (cause != SealCause::forced) {
      d.linger = detail::next_linger(elapsed, spans_seen, std::min(config.batch.target_spans, config.batch.max_spans),
                                     config.batch.linger, config.batch.max_linger);
      // Destinations added together (a bulk add, a restart) would otherwise seal as one herd
      // every max_linger: the first adapted linger is drawn anywhere in [linger, next], which
      // spreads their phases at once; later ones are up to 1/8 shorter at random.
      const std::int64_t spread = d.adapted ? d.linger.count() / 8 : d.linger.count() - config.batch.linger.count();
      d.linger -= std::chrono::milliseconds(static_cast<std::int64_t>(ids.next() % static_cast<std::uint64_t>(spread + 1)));
      d.linger = std::max(d.linger, config.batch.linger);
      d.adapted = true;
    }
  }

  void close_open(Destination& d) noexcept {
    if (d.open_index == k_none) return;
    Destination* last = open.back();
    open[d.open_index] = last;
    last->open_index = d.open_index;
    open.pop_back();
    d.open_index = k_none;
  }

  // One finished body: compressed (when the destination wants it) into the scratch buffer,
  // then copied into a pool buffer of about its size, and handed to the sender.
  void note_body(Destination& d, std::size_t raw, std::size_t sent) noexcept {
    d.counters.bytes_raw += raw;
    d.counters.note_batch(raw);
    d.counters.bytes_compressed += sent;
    tot.bytes_raw += raw;
    tot.largest_batch_bytes = std::max<std::uint64_t>(tot.largest_batch_bytes, raw);
    tot.bytes_compressed += sent;
  }

  void emit(Destination& d, std::string_view body, std::uint32_t spans) {
    std::string_view out = body;
    std::string_view encoding;
    if (d.codec != Codec::none) {
      Compressor& comp = d.codec == Codec::gzip ? gzip : zstd;
      const std::size_t zn = comp.compress(body, std::span<char>(zip_scratch.data(), zip_scratch.size()));
      if (zn != 0) {
        out = std::string_view(zip_scratch.data(), zn);
        encoding = content_encoding(d.codec);
      }
    }
    // The body is charged its buffer's capacity; the destination's budget holds for bodies
    // too (its pending records were charged on admission and are released by now).
    Buffer* b = d.held_bytes + pool.charge_for(out.size()) <= config.destination_budget_bytes
                    ? pool.acquire(out.size())
                    : nullptr;
    if (b == nullptr) {
      d.in_flight -= spans;
      tot.in_flight -= spans;
      drop(d, DropReason::backpressure, spans);
      return;
    }
    std::memcpy(b->data, out.data(), out.size());
    d.held_bytes += b->capacity;
    tot.buffer_bytes += b->capacity;
    note_body(d, body.size(), out.size());
    hand_over(d, b, out.size(), spans, encoding);
  }

  // A sealed body (charged to d already) becomes outstanding and goes to the sender, or
  // waits on d's unsent list when the sender's queue is full.
  void hand_over(Destination& d, Buffer* b, std::size_t size, std::uint32_t spans, std::string_view encoding) {
    const std::uint32_t tag = take_outstanding();
    outstanding[tag] = Outstanding{&d, b, size, spans, epoch, encoding};
    ++d.outstanding;
    ++epoch_outstanding[epoch];
    if (d.has_unsent() || !try_send(tag)) {
      d.unsent_fifo().push(tag);
      if (!d.in_unsent_list) {
        d.in_unsent_list = true;
        unsent_dests.push_back(&d);
      }
    }
  }

  // Bodies are handed over without waking the sender; one wake per worker step (or command)
  // starts them all (a wake is a syscall: per body it cost ~10% of the worker at 10,000
  // destinations).
  void wake_sender() noexcept {
    if (!handed_over) return;
    handed_over = false;
    sender.wake();
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
    if (!sender.try_send(req, Sender::SendWake::later)) return false;
    o.dest->counters.add(detail::CompactCounters::Count::requests_sent);
    ++tot.requests_sent;
    handed_over = true;
    return true;
  }

  // Offers the bodies the sender refused (its queue was full) again, oldest destination
  // first; stops at the first refusal.
  void send_unsent() {
    std::size_t done = 0;
    for (; done < unsent_dests.size(); ++done) {
      Destination* d = unsent_dests[done];
      while (d->has_unsent() && try_send(d->unsent->front())) d->unsent->pop();
      if (d->has_unsent()) break;
      d->in_unsent_list = false;
    }
    unsent_dests.erase(unsent_dests.begin(), unsent_dests.begin() + static_cast<std::ptrdiff_t>(done));
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

  // --- flush sweep --------------------------------------------------------------------------
  // A flush seals every batch open when it began, but not all at once: with 15,000 quiet
  // destinations that is 15,000 bodies in one go while the records they came from are still
  // held (a 64 KiB chunk returns only when its last record is encoded), which doubled the
  // batch memory at 10,000 accounts (41 MB held before the final flush, 88 MB peak during
  // it). The sweep seals the oldest batches first (their records fill the oldest chunks, so
  // chunks return as it goes), up to k_seals_per_step per worker step, while the memory held
  // stays within sweep_slack() of what was held when the flush began or the sender has fewer
  // than two bodies per in-flight slot to work on: bodies go out as fast as the sender
  // completes them, and memory stays about flat. So that bodies held by a dead endpoint
  // (retrying for minutes) cannot stall it, a wave goes anyway after k_sweep_stall without
  // room. Every body sealed while a sweep runs belongs to the flush's epoch; the epoch moves
  // on (and waiters can settle) when the sweep is done.
  struct SweepEntry {
    Destination* dest;
    std::uint64_t generation;  // the open batch's: a batch sealed since is skipped
    Clock::time_point started;
  };

  [[nodiscard]] std::size_t sweep_slack() const noexcept {
    return std::max<std::size_t>(config.memory_budget_bytes / 16, std::size_t{4} << 20);
  }

  // Adds every open batch to the sweep (oldest sealed first).
  void begin_sweep() {
    sweep.reserve(sweep.size() + open.size());
    for (Destination* d : open) sweep.push_back({d, d->generation, d->batch_started});
    // Popped from the back: oldest last in the vector.
    std::sort(sweep.begin(), sweep.end(),
              [](const SweepEntry& a, const SweepEntry& b) { return a.started > b.started; });
    sweep_limit = pool.held() + sweep_slack();
    sweep_stalled_since = Clock::time_point::max();
    sweep_open = true;
  }

  // One wave of the sweep; when it is done, the flush epoch ends. Returns the batches sealed.
  // No wave while the sender's queue is full (bodies wait on unsent lists): a body sealed then
  // only waits too, holding its buffer, an outstanding slot and its destination's unsent list
  // (at 150,000 destinations the final flush sealed every batch at once that way and grew
  // the process by ~40-100 MB above the steady state); the sender's queue_capacity bodies
  // already keep it busy.
  std::size_t sweep_step(Clock::time_point now) {
    std::size_t sealed = 0;
    const std::size_t bodies = outstanding.size() - free_outstanding.size();
    const bool room = pool.held() <= sweep_limit || bodies < 2 * std::size_t{config.sender.max_in_flight_total};
    if (!room && sweep_stalled_since == Clock::time_point::max()) sweep_stalled_since = now;
    if (unsent_dests.empty() && (room || now - sweep_stalled_since >= k_sweep_stall)) {
      sweep_stalled_since = Clock::time_point::max();
      while (!sweep.empty() && sealed < k_seals_per_step) {
        const SweepEntry e = sweep.back();
        sweep.pop_back();
        if (e.dest->generation != e.generation || e.dest->head == nullptr) continue;  // sealed since
        seal(*e.dest, now, SealCause::forced);
        ++sealed;
        if (!unsent_dests.empty()) break;  // the sender's queue filled up
        if (pool.held() > sweep_limit &&
            outstanding.size() - free_outstanding.size() >= 2 * std::size_t{config.sender.max_in_flight_total}) {
          break;
        }
      }
    }
    if (sweep.empty() && sweep_open) end_sweep();
    return sealed;
  }

  void end_sweep() {
    sweep_open = false;
    send_unsent();
    ++epoch;
    settle_flushes();
  }

  // Shutdown's deadline passed with batches still open: what they hold is dropped as
  // `shutdown`, and the sweep ends.
  void drop_open() {
    while (!open.empty()) {
      Destination& d = *open.back();
      discard_pending(d, DropReason::shutdown);
    }
    sweep.clear();
    if (sweep_open) end_sweep();
  }

  // Releases d's open batch without encoding it, its spans counted as dropped for `reason`.
  void discard_pending(Destination& d, DropReason reason) {
    while (d.head != nullptr) {
      PendingRef* ref = d.head;
      PendingRecord& rec = *ref->record;
      d.head = ref->next;
      d.pending_spans -= rec.span_count;
      d.pending_bytes -= rec.bytes;
      d.held_bytes -= rec.bytes;
      tot.buffer_bytes -= rec.bytes;
      d.in_flight -= rec.span_count;
      tot.in_flight -= rec.span_count;
      drop(d, reason, rec.span_count);
      store.release(&rec);
    }
    ++d.generation;  // its linger entry is stale now
    close_open(d);
  }

  // Every drop is counted for its destination and in the running total.
  void drop(Destination& d, DropReason r, std::uint64_t n) {
    d.drop(r, n);
    tot.dropped[static_cast<std::size_t>(r)] += n;
  }

  // --- completions ----------------------------------------------------------------------------
  // Up to 1,024 completions, in the sender's chunks: each chunk's destinations are asked for
  // first.
  std::size_t poll_completions() {
    return sender.poll_completion_chunks(
        [this](std::span<const Completion> chunk) {
          for (const Completion& c : chunk) detail::prefetch_whole(outstanding[c.tag].dest);
          for (const Completion& c : chunk) complete(c);
        },
        1024);
  }

  // Destination health wants to know about a failing attempt when it happens, not once
  // retry.max_elapsed (5 minutes by default) has run out.
  static SenderConfig with_retry_reports(SenderConfig c) {
    c.report_retries = true;
    return c;
  }

  void complete(const Completion& c) {
    if (c.retrying) {  // not final: the request is still outstanding
      note_retry(*outstanding[c.tag].dest, c);
      return;
    }
    Outstanding& o = outstanding[c.tag];
    Destination& d = *o.dest;
    const std::uint64_t n = o.spans;
    d.in_flight -= n;
    tot.in_flight -= n;
    switch (c.outcome) {
      case SendOutcome::delivered: {
        const std::uint64_t rejected = std::min<std::uint64_t>(c.rejected_items, n);
        d.counters.add(detail::CompactCounters::Count::delivered, n - rejected);
        tot.delivered += n - rejected;
        if (rejected != 0) drop(d, DropReason::partial_rejected, rejected);
        d.counters.add(detail::CompactCounters::Count::requests_delivered);
        ++tot.requests_delivered;
        break;
      }
      case SendOutcome::rejected: drop(d, DropReason::rejected, n); break;
      case SendOutcome::retries_exhausted: drop(d, DropReason::retries_exhausted, n); break;
      case SendOutcome::network_error_final: drop(d, DropReason::network, n); break;
      case SendOutcome::aborted: drop(d, DropReason::shutdown, n); break;
      case SendOutcome::destination_removed: drop(d, DropReason::removed, n); break;
      case SendOutcome::blocked: drop(d, DropReason::blocked, n); break;
    }
    if (c.attempts > 1) {
      d.counters.cold().retries += c.attempts - 1;
      tot.retries += c.attempts - 1;
    }
    if (c.malformed_answer) {
      ++d.counters.cold().malformed_answers;
      ++tot.malformed_answers;
    }
    const double ms = static_cast<double>(c.latency_ns) / 1e6;
    std::size_t b = 0;
    while (b < k_latency_bounds_ms.size() && ms > k_latency_bounds_ms[b]) ++b;
    d.counters.add_latency(b, c.latency_ns);
    ++tot.latency_buckets[b];
    tot.latency_sum_ns += c.latency_ns;
    mark_active(d);
    update_health(d, c);
    finish_outstanding(c.tag);
  }

  // --- health -------------------------------------------------------------------------------
  // A finished request moves its destination's state (DestinationState in pipeline.h):
  // delivered -> healthy; 429/5xx/connection/timeout after the retries ran out -> retrying;
  // any other failure (400/401/403/404/413, TLS, bad URL) -> failing; the egress policy ->
  // blocked. Shutdown aborts and removals are no fault of the endpoint: no change. A disabled
  // destination stays disabled (its last requests finish meanwhile) until it is updated.
  void update_health(Destination& d, const Completion& c) {
    if (c.outcome == SendOutcome::aborted || c.outcome == SendOutcome::destination_removed) return;
    const std::int64_t now = unix_now_ns();
    if (c.outcome == SendOutcome::delivered) {
      d.counters.note_success(now);  // also stops the disable policy's clock
      if (d.state() != DestinationState::disabled) set_state(d, DestinationState::healthy);
      return;
    }
    DestinationHealth& h = d.counters.health_details();
    const ConnectionTestResult::Category category = record_error(h, c, now);
    ++h.consecutive_failures;
    std::string message = health_message(d.kind, d.protobuf, c.outcome, category, h.last_http_status);
    // Failures the disable policy counts: the endpoint will not take these requests as
    // configured, however often they are sent.
    const bool final_failure = c.outcome == SendOutcome::blocked ||
                               (c.outcome == SendOutcome::rejected &&
                                (c.http_status == 401 || c.http_status == 403 || c.http_status == 404));
    std::int64_t& first_final_failure = d.counters.cold().first_final_failure_unix_ns;
    if (final_failure && first_final_failure == 0) first_final_failure = now;
    if (d.state() == DestinationState::disabled) {
      // Requests sealed before it was disabled still finish: the message keeps saying why.
      h.message = disabled_message(d, now, message);
      return;
    }
    h.message = std::move(message);
    DestinationState next = DestinationState::failing;
    if (c.outcome == SendOutcome::blocked) {
      next = DestinationState::blocked;
    } else if (c.outcome == SendOutcome::retries_exhausted) {
      next = DestinationState::retrying;
    }
    if (final_failure && config.disable.enabled &&
        now - first_final_failure >=
            std::chrono::duration_cast<std::chrono::nanoseconds>(config.disable.after).count()) {
      disable(d, now);
      return;
    }
    set_state(d, next);
  }

  // The last error of a failed attempt (final or about to be retried): its category (the
  // connection test's; the egress policy's refusal is `blocked`, as the connection test says
  // it), HTTP status and time.
  static ConnectionTestResult::Category record_error(DestinationHealth& h, const Completion& c, std::int64_t now) {
    const bool blocked = c.outcome == SendOutcome::blocked && !c.retrying;
    h.last_error = blocked ? ConnectionTestResult::Category::blocked
                           : classify_send_outcome(c.http_status, c.network_error);
    h.last_http_status = blocked ? 0 : c.http_status;
    h.last_error_unix_ns = now;
    return h.last_error;
  }

  // An attempt failed with a retryable error and its retry is scheduled: the destination is
  // `retrying` now (unless disabled or blocked). Its spans are not lost yet; consecutive
  // failures count finished requests only, so they are not touched.
  void note_retry(Destination& d, const Completion& c) {
    const DestinationState s = d.state();
    if (s == DestinationState::disabled || s == DestinationState::blocked) return;
    DestinationHealth& h = d.counters.health_details();
    const ConnectionTestResult::Category category = record_error(h, c, unix_now_ns());
    // Worded as a failure still being retried: the outcome passed only selects the wording.
    h.message = health_message(d.kind, d.protobuf, SendOutcome::retries_exhausted, category, c.http_status, /*retrying_now=*/true);
    set_state(d, DestinationState::retrying);
  }

  // The disable policy fired: what d has pending is dropped as `disabled` (it would only be
  // refused again), and so is every span routed to it until update_destination().
  static std::string disabled_message(Destination& d, std::int64_t now, const std::string& last) {
    const DestinationHealth& h = d.counters.health_details();
    // No HTTP status when no answer arrived (blocked, DNS, connect, TLS, timeout).
    const std::string status = h.last_http_status != 0 ? ", HTTP " + std::to_string(h.last_http_status) : "";
    return "Disabled: requests kept failing (" + std::string(to_string(h.last_error)) + status + ") for " +
           std::to_string((now - d.counters.cold().first_final_failure_unix_ns) / 1'000'000'000) + " s. " + last +
           " Then update the destination to resume.";
  }

  void disable(Destination& d, std::int64_t now) {
    d.counters.health_details().message = disabled_message(d, now, d.counters.health_details().message);
    discard_pending(d, DropReason::disabled);
    set_state(d, DestinationState::disabled);
  }

  static std::string health_message(DestinationKind kind, bool protobuf, SendOutcome outcome, ConnectionTestResult::Category category,
                                    int status, bool retrying_now = false) {
    using C = ConnectionTestResult::Category;
    std::string what;
    if (outcome == SendOutcome::blocked) {
      return "Not sent: the gateway's egress policy does not allow this endpoint. Choose another endpoint "
             "or ask the operator to allow it.";
    }
    if (status != 0) {
      what = "The endpoint answered HTTP " + std::to_string(status);
      // A failure after the status line: the category is the network error's.
      if (category == C::timeout) {
        what += ", then did not finish its answer in time";
      } else if (status >= 200 && status < 300 && category != C::ok) {
        what += ", then its answer could not be read";
      }
    } else {
      switch (category) {
        case C::dns: what = "The endpoint's host name did not resolve"; break;
        case C::connect_refused: what = "The endpoint did not accept connections"; break;
        case C::tls: what = "The TLS connection to the endpoint failed"; break;
        case C::timeout: what = "The endpoint did not answer in time"; break;
        default: what = "The request to the endpoint failed"; break;
      }
    }
    if (retrying_now) {
      what += "; retrying";
    } else if (outcome == SendOutcome::retries_exhausted) {
      what += " until the retries ran out";
    }
    return what + ". " + connection_hint(category, kind, status, protobuf);
  }

  static std::int64_t unix_now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  // Moves d to `next`, keeping the not-healthy list and the per-state counts, and queues one
  // notice for the callback when the state changed.
  void set_state(Destination& d, DestinationState next) {
    const DestinationState prev = d.counters.state;
    if (prev == next) return;
    d.counters.state = next;
    d.disabled = next == DestinationState::disabled;
    if (!d.removing) {
      --by_state[static_cast<std::size_t>(prev)];
      ++by_state[static_cast<std::size_t>(next)];
    }
    if (next == DestinationState::healthy) {
      unhealthy_remove(d);
    } else if (d.unhealthy_index == k_no_index && !d.removing) {
      d.unhealthy_index = static_cast<std::uint32_t>(unhealthy.size());  // ids, and so destinations, are 32-bit
      unhealthy.push_back(&d);
    }
    if (notifier.active()) notifier.push(HealthChange{d.id, d.name, d.account, prev, next, d.counters.health()});
  }

  void unhealthy_remove(Destination& d) noexcept {
    if (d.unhealthy_index == k_no_index) return;
    Destination* last = unhealthy.back();
    unhealthy[d.unhealthy_index] = last;
    last->unhealthy_index = d.unhealthy_index;
    unhealthy.pop_back();
    d.unhealthy_index = k_no_index;
  }

  // Traffic marks a destination active for the current stats window; stats() ranks the
  // destinations active in this window and the previous one (10..20 s) for its top N.
  void mark_active(Destination& d) {
    if (d.active_window == window) return;
    d.active_window = window;
    active_now.push_back(&d);
  }

  void rotate_window(Clock::time_point now) {
    if (now - window_started < k_window) return;
    window_started = now;
    ++window;
    active_prev.swap(active_now);
    active_now.clear();
  }

  void finish_outstanding(std::uint32_t tag) {
    Outstanding& o = outstanding[tag];
    Destination& d = *o.dest;
    d.held_bytes -= o.buffer->capacity;
    tot.buffer_bytes -= o.buffer->capacity;
    pool.release(o.buffer);
    o.buffer = nullptr;
    --d.outstanding;
    if (auto it = epoch_outstanding.find(o.epoch); it != epoch_outstanding.end() && --it->second == 0) {
      epoch_outstanding.erase(it);
      settle_flushes();
    }
    free_outstanding.push_back(tag);
    maybe_finish_removal(d);
  }

  void maybe_finish_removal(Destination& d) {
    if (!d.removing || d.removed || d.outstanding != 0 || d.head != nullptr) return;
    d.removed = true;
    sender.remove_destination(d.id);
  }

  // Drops what was never handed to the sender (shutdown deadline passed).
  void drop_unsent() {
    for (Destination* d : unsent_dests) {
      while (d->has_unsent()) {
        const std::uint32_t tag = d->unsent->front();
        d->unsent->pop();
        d->in_flight -= outstanding[tag].spans;
        tot.in_flight -= outstanding[tag].spans;
        drop(*d, DropReason::shutdown, outstanding[tag].spans);
        finish_outstanding(tag);
      }
      d->in_unsent_list = false;
    }
    unsent_dests.clear();
  }

  // --- flush ------------------------------------------------------------------------------------
  struct FlushWaiter {
    std::uint64_t epoch;
    std::promise<void> done;
  };

  // Worker: everything accepted so far is drained and its batches join the sweep; what the
  // sweep seals belongs to epochs <= the waiter's, which is settled when the sweep is done
  // and none of those is outstanding.
  void begin_flush(const std::shared_ptr<FlushWaiter>& w) {
    const std::uint64_t target = ring.stats().accepted;
    while (ring.stats().drained < target) {
      if (drain_ring(1024) == 0) std::this_thread::yield();
    }
    w->epoch = epoch;
    flush_waiters.push_back(w);
    begin_sweep();
    (void)sweep_step(Clock::now());  // ends the epoch at once when nothing is open
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
  // The totals are kept as counts move (tot), so a snapshot costs O(destinations listed),
  // not O(configured): idle destinations cost nothing.
  // final: stats()'s list after shutdown (select_final()).
  enum class Listing : std::uint8_t { none, bounded, given, all, final };

  void snapshot(PipelineStats& s, Listing listing, std::span<const std::uint32_t> wanted = {}) {
    s.ingest = ring.stats();
    s.requests_routed = requests_routed;
    s.requests_unrouted = requests_unrouted;
    s.mapping_issues = mapping_issues;
    s.mappings = mappings;
    s.batches_deferred = batches_deferred;
    s.batches_sealed_early = batches_sealed_early;
    s.encoder = encoder.stats();
    s.memory_bytes = pool.held();
    s.memory_peak_bytes = pool.peak();
    s.health_notices_dropped = notifier.dropped();
    s.total = tot;
    s.total.id = 0;
    s.total.name = "total";
    s.destinations_by_state = by_state;
    s.destinations_configured = 0;
    for (const std::uint64_t n : by_state) s.destinations_configured += n;
    s.destinations.clear();
    switch (listing) {
      case Listing::none: return;
      case Listing::all:
        selected.assign(destinations.size(), nullptr);
        for (std::size_t i = 0; i < destinations.size(); ++i) selected[i] = destinations[i].get();
        break;
      case Listing::given:
        selected.clear();
        for (const std::uint32_t id : wanted) {
          if (id < by_id.size() && by_id[id] != nullptr) selected.push_back(by_id[id]);
        }
        break;
      case Listing::bounded: select_bounded(); break;
      case Listing::final: select_final(); break;
    }
    std::sort(selected.begin(), selected.end(), [](const Destination* a, const Destination* b) { return a->id < b->id; });
    selected.erase(std::unique(selected.begin(), selected.end()), selected.end());
    s.destinations.reserve(selected.size());
    for (Destination* d : selected) s.destinations.push_back(view(*d));
  }

  // The public counters of d, built from its compact ones (~450 B each: built only for the
  // destinations a snapshot lists).
  static DestinationCounters view(const Destination& d) {
    DestinationCounters c;
    c.id = d.id;
    c.name = d.name;
    c.account = d.account;
    c.removed = d.removed;
    c.submitted = d.submitted;
    c.in_flight = d.in_flight;
    c.buffer_bytes = d.held_bytes;
    d.counters.fill(c);
    return c;
  }

  // stats()'s list: every destination when there are no more than top_destinations; else
  // the not-healthy ones (lowest ids, at most max_unhealthy_destinations) and the
  // top_destinations with the most spans submitted among those active in the last two
  // windows. O(not healthy + active).
  void select_bounded() {
    selected.clear();
    const StatsConfig& sc = config.stats;
    if (destinations.size() <= sc.top_destinations) {
      for (const auto& d : destinations) selected.push_back(d.get());
      return;
    }
    const auto by_id_order = [](const Destination* a, const Destination* b) { return a->id < b->id; };
    const std::size_t u = std::min<std::size_t>(unhealthy.size(), sc.max_unhealthy_destinations);
    selected.assign(unhealthy.begin(), unhealthy.end());
    std::partial_sort(selected.begin(), selected.begin() + static_cast<std::ptrdiff_t>(u), selected.end(), by_id_order);
    selected.resize(u);
    candidates.clear();
    for (Destination* d : active_now) {
      if (!d->removed) candidates.push_back(d);
    }
    for (Destination* d : active_prev) {
      if (d->active_window != window && !d->removed) candidates.push_back(d);
    }
    const std::size_t top = std::min<std::size_t>(candidates.size(), sc.top_destinations);
    std::nth_element(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(top), candidates.end(),
                     [](const Destination* a, const Destination* b) {
                       return a->submitted != b->submitted ? a->submitted > b->submitted : a->id < b->id;
                     });
    selected.insert(selected.end(), candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(top));
  }

  // After shutdown (the worker is gone, nothing moves any more), what a final report needs:
  // the top_destinations busiest by spans submitted over the whole run, and, lowest ids first
  // and at most max_unhealthy_destinations of them, the ones not healthy or that lost spans
  // (dropped for a reason other than sampling; removed ones left out). Every destination when
  // there are no more than top_destinations. O(destinations) over pointers: only the listed
  // ones become DestinationCounters (all 150,000 of them were ~70 MB).
  void select_final() {
    selected.clear();
    const StatsConfig& sc = config.stats;
    if (destinations.size() <= sc.top_destinations) {
      for (const auto& d : destinations) selected.push_back(d.get());
      return;
    }
    candidates.clear();
    candidates.reserve(destinations.size());
    for (const auto& d : destinations) candidates.push_back(d.get());
    const std::size_t top = std::min<std::size_t>(candidates.size(), sc.top_destinations);
    std::nth_element(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(top), candidates.end(),
                     [](const Destination* a, const Destination* b) {
                       return a->submitted != b->submitted ? a->submitted > b->submitted : a->id < b->id;
                     });
    selected.assign(candidates.begin(), candidates.begin() + static_cast<std::ptrdiff_t>(top));
    candidates.clear();
    candidates.shrink_to_fit();
    std::size_t troubled = 0;
    for (const auto& d : destinations) {  // ascending id: ids count up in the order added
      if (troubled == sc.max_unhealthy_destinations) break;
      if (!d->removed && (d->state() != DestinationState::healthy || d->lost_spans())) {
        selected.push_back(d.get());
        ++troubled;
      }
    }
  }

  // --- destinations (worker side) ---------------------------------------------------------------
  static Codec codec_of(const PipelineDestination& p) {
    const ResolvedDestination r = resolve(p.transport);
    return parse_codec(r.compression).value_or(Codec::gzip);
  }

  std::unique_ptr<Destination> make_destination(std::uint32_t id, std::string_view account,
                                                const PipelineDestination& p) const {
    auto d = std::make_unique<Destination>();
    d->id = id;
    d->privacy_mode = p.privacy_mode;
    d->sampling_rate = p.sampling_rate;
    d->conventions = p.conventions;
    d->body_factor = static_cast<std::uint8_t>(std::max<std::size_t>(1, p.conventions.size()));
    d->codec = codec_of(p);
    d->protobuf = is_protobuf_protocol(p.transport.protocol);
    d->max_in_flight = std::max<std::uint32_t>(1, p.transport.max_in_flight);
    apply_routing(*d, p, detail::KeyFilter(p.api_key_ids), make_resource(p));
    // A new destination's first batch waits the minimum; one quiet batch later it is at
    // max_linger. (Starting at the maximum would make every destination's first batch hold
    // max_linger of data, all sealed at once by a flush.)
    d->linger = config.batch.linger;
    d->kind = p.transport.kind;
    d->name = p.transport.name.empty() ? "destination" : p.transport.name;
    d->account = std::string(account);
    return d;
  }

  // The issue-11 fields of a destination (routing, limits, resource); the filter and the
  // resource are built by the caller (they allocate), off the worker.
  void apply_routing(Destination& d, const PipelineDestination& p, detail::KeyFilter keys,
                     std::unique_ptr<detail::ExtraResource> resource) const noexcept {
    d.route_filter = static_cast<std::uint8_t>((p.enabled ? 0 : k_route_off) | (keys.empty() ? 0 : k_route_keys));
    d.key_mask = keys.mask();
    d.keys = std::move(keys);
    d.resource = std::move(resource);
    d.max_bytes = detail::effective_request_bytes(p, config);
    d.max_value_bytes = static_cast<std::uint32_t>(detail::effective_value_bytes(p, config));  // <= 16 MiB
  }
  static std::unique_ptr<detail::ExtraResource> make_resource(const PipelineDestination& p) {
    if (p.resource_attributes.empty()) return nullptr;
    return std::make_unique<detail::ExtraResource>(p.resource_attributes);
  }

  // Worker: takes ownership and starts routing to them.
  void install(std::vector<std::unique_ptr<Destination>>& added) {
    destinations.reserve(destinations.size() + added.size());
    for (auto& d : added) {
      routes.add(d->account, d.get());
      if (d->id >= by_id.size()) by_id.resize(std::max<std::size_t>(d->id + 1, by_id.size() * 2), nullptr);
      by_id[d->id] = d.get();
      ++by_state[static_cast<std::size_t>(DestinationState::healthy)];
      destinations.push_back(std::move(d));
    }
  }

  Destination* find(std::uint32_t id) const noexcept {
    Destination* d = id < by_id.size() ? by_id[id] : nullptr;
    return d == nullptr || d->removing ? nullptr : d;
  }

  // --- state --------------------------------------------------------------------------------
  PipelineConfig config;
  IngestRing ring;
  detail::BufferPool pool;
  detail::PendingStore store;
  BatchEncoder encoder;
  Compressor gzip;
  Compressor zstd;
  Sender sender;
  IdGenerator ids;
  std::unique_ptr<MappedRequest> mapped;
  LlmRequest decoded;              // the record being encoded, as a request
  std::vector<MetadataEntry> decoded_metadata = std::vector<MetadataEntry>(detail::PendingStore::k_max_metadata);
  std::vector<char> raw_scratch;   // the body being encoded (batch.max_bytes)
  std::vector<char> zip_scratch;   // its compressed form (bound of batch.max_bytes)
  bool handed_over = false;        // bodies given to the sender since its last wake

  std::vector<std::unique_ptr<Destination>> destinations;  // every one ever added, in order
  std::vector<Destination*> by_id;  // index: id (the sender's ids count up from 1, never reused)
  detail::RouteTable<Destination> routes;
  std::vector<Destination*> targets;       // route()'s scratch
  // seal()'s scratch: a destination's resource_attributes + the mapped resource's
  std::vector<Attribute> resource_scratch = [] {
    std::vector<Attribute> v;
    v.reserve(PipelineDestination::k_max_resource_attributes + MappingConfig::k_max_extra_resource + 16);
    return v;
  }();
  std::vector<Destination*> open;          // destinations with an open batch
  detail::LingerTimers<Destination> lingers;
  std::vector<Destination*> unsent_dests;  // destinations with bodies the sender refused
  std::vector<Outstanding> outstanding;
  std::vector<std::uint32_t> free_outstanding;
  std::uint64_t epoch = 0;
  std::map<std::uint64_t, std::uint64_t> epoch_outstanding;
  std::vector<SweepEntry> sweep;   // batches a flush still has to seal, oldest at the back
  bool sweep_open = false;         // a flush's epoch is open until its sweep is done
  std::size_t sweep_limit = 0;     // pool.held() the sweep stays within (see sweep_step)
  Clock::time_point sweep_stalled_since = Clock::time_point::max();
  std::vector<std::shared_ptr<FlushWaiter>> flush_waiters;

  DestinationCounters tot;          // every destination's counters summed, kept as they move
  std::array<std::uint64_t, k_destination_states> by_state{};  // configured (not removed) ones
  std::vector<Destination*> unhealthy;     // state != healthy, not removed (unordered)
  std::vector<Destination*> active_now;    // traffic in the current stats window
  std::vector<Destination*> active_prev;   // ... in the previous one
  std::uint32_t window = 1;
  Clock::time_point window_started = Clock::now();
  std::vector<Destination*> selected;      // snapshot scratch
  std::vector<Destination*> candidates;    // snapshot scratch
  detail::HealthNotifier notifier;

  std::uint64_t requests_routed = 0;
  std::uint64_t requests_unrouted = 0;
  std::uint64_t mapping_issues = 0;
  std::uint64_t mappings = 0;
  std::uint64_t batches_deferred = 0;  // linger expiries that let a backlogged batch grow
  std::uint64_t batches_sealed_early = 0;  // sealed before their linger: memory pressure
  std::size_t pressure_bytes = config.memory_budget_bytes / 4 * 3;

  std::mutex command_mutex;
  std::condition_variable wake;
  std::vector<Command> commands;
  std::atomic<bool> commands_pending{false};
  bool stop_worker = false;     // worker only
  bool worker_exited = false;   // under command_mutex
  std::thread worker;

  std::mutex shutdown_mutex;
  bool shut_down = false;
  bool destructing = false;    // guarded by shutdown_mutex: ~Pipeline() is shutting down
  PipelineStats final_stats;  // totals only (no listing) at shutdown
  // After shutdown: a snapshot read from the destinations' final state (the worker is gone,
  // nothing changes any more) rather than kept as a copy, listing what the call asks for
  // (with 150,000 destinations every DestinationCounters is ~70 MB). The ring's counters are
  // read now: submits after shutdown still return closed, and each is counted there
  // (rejected_closed). Caller holds command_mutex.
  PipelineStats final_stats_now(Listing listing, std::span<const std::uint32_t> wanted = {}) {
    PipelineStats s;
    snapshot(s, listing, wanted);
    return s;
  }
};

// ------------------------------------------------------------------------------------------------

Pipeline::Pipeline(PipelineConfig config) {
  if (std::string err = config.validate(); !err.empty()) throw std::invalid_argument("PipelineConfig." + err);
  impl_ = std::make_unique<Impl>(std::move(config));
}

Pipeline::~Pipeline() {
  {
    std::lock_guard lock(impl_->shutdown_mutex);
    if (impl_->shut_down) return;
    // Nobody reads the result: shutdown() lists no destination (at 150,000 destinations the
    // listing is ~70 MB).
    impl_->destructing = true;
  }
  shutdown(Clock::now() + impl_->config.shutdown_timeout);
}

const PipelineConfig& Pipeline::config() const noexcept { return impl_->config; }

submit_result Pipeline::submit(const LlmRequest& request) noexcept { return impl_->ring.try_submit(request); }

PipelineDestination with_preset_defaults(const PipelineDestination& given) {
  PipelineDestination p = given;
  apply_preset_defaults(p.transport);
  const PresetInfo& row = preset_info(p.transport.kind);
  const bool extras = row.max_request_bytes != 0 || row.max_attribute_value_bytes != 0 ||
                      !row.resource_attributes.empty();
  if (!extras) {  // the three original kinds and most presets: no resolve() per destination
    if (p.conventions.empty()) {
      const std::optional<Convention> c = parse_convention(row.default_convention);
      p.conventions = c ? ConventionSet{*c} : k_default_conventions;
    }
    return p;
  }
  if (has_errors(validate(p.transport))) return p;
  const ResolvedDestination r = resolve(p.transport);
  if (p.max_request_bytes == 0 && r.max_request_bytes != 0)
    p.max_request_bytes = static_cast<std::uint32_t>(std::min<std::uint64_t>(r.max_request_bytes, PipelineDestination::k_max_request_bytes));
  if (p.max_attribute_value_bytes == 0) p.max_attribute_value_bytes = r.max_attribute_value_bytes;
  for (const auto& kv : r.resource_attributes) {  // no structured binding: clang 14 cannot capture one
    const bool given_key = std::any_of(p.resource_attributes.begin(), p.resource_attributes.end(),
                                       [&kv](const auto& own) { return own.first == kv.first; });
    if (!given_key) p.resource_attributes.push_back(kv);
  }
  if (p.conventions.empty()) {
    const std::optional<Convention> c = parse_convention(r.convention);
    p.conventions = c ? ConventionSet{*c} : k_default_conventions;
  }
  return p;
}

AddDestinationOutcome Pipeline::add_destination(std::string_view account, const PipelineDestination& destination) {
  std::pair<std::string, PipelineDestination> one{std::string(account), destination};
  return std::move(add_destinations(std::span(&one, 1)).front());
}

std::vector<AddDestinationOutcome> Pipeline::add_destinations(
    std::span<const std::pair<std::string, PipelineDestination>> destinations) {
  std::vector<AddDestinationOutcome> out(destinations.size());
  std::vector<std::unique_ptr<Destination>> added;
  added.reserve(destinations.size());
  // In chunks: checked and completed by their presets, handed to the sender in one call (one
  // lock, one wake-up of its thread per chunk: one per destination was a third of the time of
  // adding 150,000), made; the chunk bounds the copies held at once (a chunk of the whole
  // input held ~60 MB more at 150,000). All installed in one worker command at the end.
  constexpr std::size_t k_chunk = 1024;
  std::vector<PipelineDestination> checked;
  std::vector<std::size_t> index;  // checked[k] is destinations[index[k]]
  std::vector<const DestinationConfig*> transports;
  for (std::size_t first = 0; first < destinations.size(); first += k_chunk) {
    const std::size_t last = std::min(destinations.size(), first + k_chunk);
    checked.clear();
    index.clear();
    for (std::size_t i = first; i < last; ++i) {
      PipelineDestination destination = with_preset_defaults(destinations[i].second);
      if (std::vector<ValidationIssue> own = destination.validate(); !own.empty()) {
        out[i].issues = std::move(own);
        continue;
      }
      if (std::string why = detail::account_error(destinations[i].first, impl_->config); !why.empty()) {
        out[i].issues.push_back({"account", std::move(why), false, IssueCode::too_long});
        continue;
      }
      checked.push_back(std::move(destination));
      index.push_back(i);
    }
    transports.clear();
    for (const PipelineDestination& d : checked) transports.push_back(&d.transport);
    std::vector<AddDestinationResult> results = impl_->sender.add_destinations(transports);
    for (std::size_t k = 0; k < checked.size(); ++k) {
      AddDestinationOutcome& o = out[index[k]];
      const bool refused = !results[k].ok();  // before the issues move out (ok() reads them)
      o.issues = std::move(results[k].issues);
      if (refused) continue;
      o.id = results[k].id;
      added.push_back(impl_->make_destination(results[k].id, destinations[index[k]].first, checked[k]));
    }
  }
  if (!added.empty()) impl_->post([impl = impl_.get(), &added] { impl->install(added); });
  return out;
}

std::vector<ValidationIssue> Pipeline::update_destination(std::uint32_t id, const PipelineDestination& given) {
  const PipelineDestination destination = with_preset_defaults(given);
  if (std::vector<ValidationIssue> own = destination.validate(); !own.empty()) return own;
  std::vector<ValidationIssue> issues = validate(destination.transport);
  if (has_errors(issues)) return issues;
  bool found = false;
  bool protocol_changed = false;
  const Codec codec = Impl::codec_of(destination);
  const bool protobuf = is_protobuf_protocol(destination.transport.protocol);
  detail::KeyFilter keys(destination.api_key_ids);  // built here: the worker never allocates them
  std::unique_ptr<detail::ExtraResource> resource = Impl::make_resource(destination);
  impl_->post([impl = impl_.get(), id, &destination, codec, protobuf, &found, &protocol_changed, &keys, &resource] {
    Destination* d = impl->find(id);
    if (d == nullptr) return;
    found = true;
    // Bodies already handed to the sender keep their encoding: a live switch would send them
    // with the other Content-Type.
    if (d->protobuf != protobuf) {
      protocol_changed = true;
      return;
    }
    impl->seal(*d, Clock::now(), Impl::SealCause::forced);  // what was batched goes out with the old settings
    d->privacy_mode = destination.privacy_mode;
    d->sampling_rate = destination.sampling_rate;
    d->conventions = destination.conventions;
    d->body_factor = static_cast<std::uint8_t>(std::max<std::size_t>(1, destination.conventions.size()));
    d->codec = codec;
    d->max_in_flight = std::max<std::uint32_t>(1, destination.transport.max_in_flight);
    d->kind = destination.transport.kind;
    impl->apply_routing(*d, destination, std::move(keys), std::move(resource));  // the old ones are freed here
    if (!destination.transport.name.empty()) d->name = destination.transport.name;
    // New settings: whatever failed before may work now (a disabled destination resumes).
    if (d->counters.cold_if_any() != nullptr) {
      d->counters.health_details().consecutive_failures = 0;
      d->counters.cold().first_final_failure_unix_ns = 0;
    }
    impl->set_state(*d, DestinationState::healthy);
  });
  if (!found) return {{"id", "no destination with id " + std::to_string(id), false}};
  if (protocol_changed)
    return {{"protocol", "the protocol of a destination cannot change while it runs: remove it and add it again", false}};
  std::vector<ValidationIssue> sender_issues = impl_->sender.update_destination(id, destination.transport);
  if (has_errors(sender_issues)) return sender_issues;
  return issues;
}

bool Pipeline::remove_destination(std::uint32_t id) {
  bool found = false;
  impl_->post([impl = impl_.get(), id, &found] {
    Destination* d = impl->find(id);
    if (d == nullptr) return;
    found = true;
    impl->seal(*d, Clock::now(), Impl::SealCause::forced);
    impl->send_unsent();
    --impl->by_state[static_cast<std::size_t>(d->state())];
    impl->unhealthy_remove(*d);
    d->removing = true;
    impl->routes.remove(d->account, d);
    impl->maybe_finish_removal(*d);
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
    r.in_flight = impl_->final_stats.total.in_flight;
    std::lock_guard stats_lock(impl_->command_mutex);
    r.stats = impl_->final_stats_now(Impl::Listing::final);
    return r;
  }
  Impl& im = *impl_;
  im.ring.close();  // waits for submits in progress; later ones return closed
  DrainResult r = flush(deadline);
  // Deadline passed: drop what the sender never took, abort what it holds.
  im.post([&im] {
    im.drop_open();
    im.drop_unsent();
  });
  im.sender.shutdown(Clock::now());
  // Every completion (delivered or aborted) is now in the sender's queue: let the worker take
  // them, then stop it.
  im.post([&im] {
    while (im.poll_completions() != 0) {
    }
    im.stop_worker = true;
  });
  im.worker.join();
  im.notifier.stop();  // every change so far delivered to the callback
  {
    std::lock_guard stats_lock(im.command_mutex);  // stats() callers read the same state
    im.snapshot(im.final_stats, Impl::Listing::none);
    r.stats = im.destructing ? im.final_stats : im.final_stats_now(Impl::Listing::final);
  }
  im.shut_down = true;
  r.complete = r.complete && im.final_stats.total.in_flight == 0;
  r.in_flight = im.final_stats.total.in_flight;
  return r;
}

PipelineStats Pipeline::stats() const {
  PipelineStats s;
  {
    std::lock_guard lock(impl_->command_mutex);
    if (impl_->worker_exited) return impl_->final_stats_now(Impl::Listing::final);  // select_final()
  }
  impl_->post([impl = impl_.get(), &s] { impl->snapshot(s, Impl::Listing::bounded); });
  return s;
}

PipelineStats Pipeline::stats_of(std::span<const std::uint32_t> ids) const {
  PipelineStats s;
  {
    std::lock_guard lock(impl_->command_mutex);
    if (impl_->worker_exited) return impl_->final_stats_now(Impl::Listing::given, ids);
  }
  impl_->post([impl = impl_.get(), &s, ids] { impl->snapshot(s, Impl::Listing::given, ids); });
  return s;
}

PipelineStats Pipeline::stats_all() const {
  PipelineStats s;
  {
    std::lock_guard lock(impl_->command_mutex);
    if (impl_->worker_exited) return impl_->final_stats_now(Impl::Listing::all);
  }
  impl_->post([impl = impl_.get(), &s] { impl->snapshot(s, Impl::Listing::all); });
  return s;
}

std::optional<DestinationCounters> Pipeline::destination_stats(std::uint32_t id) const {
  const std::uint32_t one[] = {id};
  PipelineStats s = stats_of(one);
  if (s.destinations.empty()) return std::nullopt;
  return std::move(s.destinations.front());
}

PipelineStats Pipeline::totals() const {
  PipelineStats s;
  {
    std::lock_guard lock(impl_->command_mutex);
    if (impl_->worker_exited) return impl_->final_stats_now(Impl::Listing::none);
  }
  impl_->post([impl = impl_.get(), &s] { impl->snapshot(s, Impl::Listing::none); });
  return s;
}

void Pipeline::set_health_callback(HealthCallback callback) { impl_->notifier.set_callback(std::move(callback)); }

std::string Pipeline::prometheus() const { return detail::format_prometheus(stats()); }

std::string Pipeline::prometheus_of(std::span<const std::uint32_t> ids) const {
  return detail::format_prometheus(stats_of(ids));
}

}  // namespace tracecast
