#include "tracecast/ingest_ring.h"

#include <concurrentqueue/concurrentqueue.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <stdexcept>
#include <thread>

#include "tracecast/utf8.h"

namespace tracecast {
namespace {

constexpr std::size_t k_cache_line = 64;

bool is_pow2(std::uint32_t v) noexcept { return v != 0 && (v & (v - 1)) == 0; }

// memcpy for the short strings of a request (ids, models, names: mostly under 32 bytes),
// inlined as two overlapping fixed-size moves instead of a call into libc.
[[gnu::always_inline]] inline void copy_bytes(char* dst, const char* src, std::size_t n) noexcept {
  if (n >= 16) {
    if (n <= 32) {
      char a[16], b[16];
      std::memcpy(a, src, 16);
      std::memcpy(b, src + n - 16, 16);
      std::memcpy(dst, a, 16);
      std::memcpy(dst + n - 16, b, 16);
    } else {
      std::memcpy(dst, src, n);
    }
  } else if (n >= 8) {
    std::uint64_t a, b;
    std::memcpy(&a, src, 8);
    std::memcpy(&b, src + n - 8, 8);
    std::memcpy(dst, &a, 8);
    std::memcpy(dst + n - 8, &b, 8);
  } else if (n >= 4) {
    std::uint32_t a, b;
    std::memcpy(&a, src, 4);
    std::memcpy(&b, src + n - 4, 4);
    std::memcpy(dst, &a, 4);
    std::memcpy(dst + n - 4, &b, 4);
  } else {
    for (std::size_t i = 0; i < n; ++i) dst[i] = src[i];
  }
}

// Copies `v` to `p` and advances it; returns the copy's view.
[[gnu::always_inline]] inline std::string_view append(char*& p, std::string_view v) noexcept {
  if (v.empty()) return {};
  copy_bytes(p, v.data(), v.size());
  const std::string_view out(p, v.size());
  p += v.size();
  return out;
}

// Bump allocator over one slot's bytes. Copies are cut to the space left; every cut counts.
class SlotArena {
 public:
  SlotArena(char* base, std::size_t size) noexcept : p_(base), end_(base + size) {}

  template <class T>
  T* alloc_array(std::size_t n) noexcept {
    auto addr = reinterpret_cast<std::uintptr_t>(p_);
    addr = (addr + alignof(T) - 1) & ~(static_cast<std::uintptr_t>(alignof(T)) - 1);
    char* start = reinterpret_cast<char*>(addr);
    if (start > end_ || static_cast<std::size_t>(end_ - start) < n * sizeof(T)) return nullptr;
    p_ = start + n * sizeof(T);
    return reinterpret_cast<T*>(start);
  }

  // Copies at most `limit` bytes of `s` (cut at a UTF-8 boundary), or what still fits.
  std::string_view copy(std::string_view s, std::size_t limit, std::uint64_t& truncated) noexcept {
    const std::size_t room = static_cast<std::size_t>(end_ - p_);
    const std::size_t cap = limit < room ? limit : room;
    const std::string_view cut = utf8_prefix(s, cap);
    if (cut.size() != s.size()) ++truncated;
    if (cut.empty()) return {};
    std::memcpy(p_, cut.data(), cut.size());
    const std::string_view out(p_, cut.size());
    p_ += cut.size();
    return out;
  }

  [[nodiscard]] std::size_t room() const noexcept { return static_cast<std::size_t>(end_ - p_); }

 private:
  char* p_;
  char* end_;
};

// Copies one metadata value; arrays are copied element by element within `limit` bytes.
AttributeValue copy_value(const AttributeValue& v, std::size_t limit, SlotArena& arena,
                          std::uint64_t& truncated) noexcept {
  switch (v.type()) {
    case ValueType::string:
      return AttributeValue::string(arena.copy(v.as_string(), limit, truncated));
    case ValueType::string_array: {
      const auto in = v.as_strings();
      std::size_t n = in.size();
      auto* views = arena.alloc_array<std::string_view>(n);
      if (views == nullptr) {
        if (n != 0) ++truncated;
        return AttributeValue::strings({});
      }
      std::size_t budget = limit;
      std::size_t kept = 0;
      bool cut = false;
      while (kept < n && !cut) {
        std::uint64_t c = 0;
        views[kept] = arena.copy(in[kept], budget, c);
        budget -= views[kept].size();
        cut = c != 0;
        ++kept;
      }
      if (cut || kept != n) ++truncated;
      return AttributeValue::strings({views, kept});
    }
    case ValueType::bool_array:
    case ValueType::int64_array:
    case ValueType::float64_array: {
      const std::size_t elem = v.type() == ValueType::bool_array ? sizeof(bool) : 8;
      const std::size_t count = v.type() == ValueType::bool_array    ? v.as_bools().size()
                                : v.type() == ValueType::int64_array ? v.as_int64s().size()
                                                                     : v.as_doubles().size();
      std::size_t n = count < limit / elem ? count : limit / elem;
      void* dst = nullptr;
      while (n > 0 && (dst = elem == 1 ? static_cast<void*>(arena.alloc_array<bool>(n))
                                       : static_cast<void*>(arena.alloc_array<std::int64_t>(n))) == nullptr)
        n /= 2;
      if (n != count) ++truncated;
      if (v.type() == ValueType::bool_array) {
        if (n) std::memcpy(dst, v.as_bools().data(), n);
        return AttributeValue::bools({static_cast<const bool*>(dst), n});
      }
      if (v.type() == ValueType::int64_array) {
        if (n) std::memcpy(dst, v.as_int64s().data(), n * 8);
        return AttributeValue::int64s({static_cast<const std::int64_t*>(dst), n});
      }
      if (n) std::memcpy(dst, v.as_doubles().data(), n * 8);
      return AttributeValue::float64s({static_cast<const double*>(dst), n});
    }
    default:
      return v;  // scalars carry no pointers
  }
}

}  // namespace

// The free slots: a lock-free LIFO stack of slot indices (Treiber stack with a 32-bit ABA
// tag beside the 32-bit index in one 64-bit head). LIFO, not FIFO, on purpose: the slot a
// producer takes is the one the consumer released last, still warm in cache, so the working
// set stays a few hundred slots instead of cycling through the whole ring (with FIFO reuse
// every submit wrote ~11 cold cache lines: measured ~2x slower per submit).
//
//   head = [ tag:32 | index:32 ]     next[index] -> the index below it; k_empty ends the chain
class FreeStack {
 public:
  static constexpr std::uint32_t k_empty = ~0u;

  explicit FreeStack(std::uint32_t capacity) : next_(new std::atomic<std::uint32_t>[capacity]) {
    for (std::uint32_t i = 0; i < capacity; ++i)
      next_[i].store(i + 1 < capacity ? i + 1 : k_empty, std::memory_order_relaxed);
    head_.store(capacity == 0 ? k_empty : 0, std::memory_order_release);
  }

  // Many threads. acquire on success pairs with push()'s release: the consumer's reads of a
  // slot happen before the producer that pops it writes the slot again.
  bool try_pop(std::uint32_t& out) noexcept {
    std::uint64_t h = head_.load(std::memory_order_acquire);
    while (true) {
      const auto index = static_cast<std::uint32_t>(h);
      if (index == k_empty) return false;
      const std::uint32_t below = next_[index].load(std::memory_order_relaxed);
      const std::uint64_t tagged = (((h >> 32) + 1) << 32) | below;
      if (head_.compare_exchange_weak(h, tagged, std::memory_order_acquire, std::memory_order_acquire)) {
        out = index;
        return true;
      }
    }
  }

  // Pushes ids[0..n) as one chain with a single CAS (ids[0] on top). Any thread.
  void push(const std::uint32_t* ids, std::size_t n) noexcept {
    if (n == 0) return;
    for (std::size_t i = 0; i + 1 < n; ++i) next_[ids[i]].store(ids[i + 1], std::memory_order_relaxed);
    std::uint64_t h = head_.load(std::memory_order_relaxed);
    std::uint64_t tagged;
    do {
      next_[ids[n - 1]].store(static_cast<std::uint32_t>(h), std::memory_order_relaxed);
      tagged = (((h >> 32) + 1) << 32) | ids[0];
    } while (!head_.compare_exchange_weak(h, tagged, std::memory_order_release, std::memory_order_relaxed));
  }

 private:
  alignas(64) std::atomic<std::uint64_t> head_{0};
  std::unique_ptr<std::atomic<std::uint32_t>[]> next_;
};

class IngestRing::Producer {
 public:
  explicit Producer(moodycamel::ConcurrentQueue<std::uint32_t>& ready) : ready_token(ready) {}

  moodycamel::ProducerToken ready_token;
  // A slot this producer took but could not publish (the ready queue had no preallocated
  // block left): kept for its next submit instead of being lost. ~0u: none.
  std::uint32_t spare = ~0u;
  // Set while inside try_submit, so close() can wait for submits in progress.
  alignas(k_cache_line) std::atomic<std::uint32_t> busy{0};
  // Written by the owning thread only (load + store, no read-modify-write); read by stats().
  alignas(k_cache_line) std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected_full{0};
  std::atomic<std::uint64_t> rejected_closed{0};
  std::atomic<std::uint64_t> truncated{0};
  std::atomic<std::uint64_t> dropped_metadata{0};
};

namespace {
void bump(std::atomic<std::uint64_t>& c, std::uint64_t by = 1) noexcept {
  c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}
}  // namespace

struct IngestRing::Impl {
  Impl(const IngestConfig& c)
      : ready(c.capacity, c.max_producers, 0),
        free(c.capacity),
        ready_consumer(ready) {}

  moodycamel::ConcurrentQueue<std::uint32_t> ready;  // MPSC: producers -> consumer
  FreeStack free;                                    // consumer -> producers (LIFO)
  moodycamel::ConsumerToken ready_consumer;          // the consumer's
  char* slots = nullptr;
  std::size_t slot_bytes = 0;

  std::mutex producers_mutex;
  std::deque<Producer> producers;
  std::atomic<std::size_t> producer_count{0};

  LlmRequest* header(std::uint32_t i) const noexcept {
    return reinterpret_cast<LlmRequest*>(slots + static_cast<std::size_t>(i) * slot_bytes);
  }
};

std::string IngestConfig::validate() const {
  if (!is_pow2(capacity) || capacity < 64 || capacity > (1u << 22))
    return "capacity: must be a power of two from 64 to 4194304, got " + std::to_string(capacity);
  if (slot_bytes % 64 != 0 || slot_bytes < 1024 || slot_bytes > (16u << 20))
    return "slot_bytes: must be a multiple of 64 from 1024 to 16777216, got " + std::to_string(slot_bytes);
  if (max_producers < 1 || max_producers > 1024)
    return "max_producers: must be 1..1024, got " + std::to_string(max_producers);
  if (limits.max_field_bytes < 16 || limits.max_field_bytes > 65536)
    return "limits.max_field_bytes: must be 16..65536, got " + std::to_string(limits.max_field_bytes);
  if (limits.max_metadata_entries > 64)
    return "limits.max_metadata_entries: must be 0..64, got " + std::to_string(limits.max_metadata_entries);
  if (limits.max_metadata_key_bytes < 1 || limits.max_metadata_key_bytes > 128)
    return "limits.max_metadata_key_bytes: must be 1..128, got " + std::to_string(limits.max_metadata_key_bytes);
  if (limits.max_metadata_value_bytes < 16 || limits.max_metadata_value_bytes > (1u << 20))
    return "limits.max_metadata_value_bytes: must be 16..1048576, got " +
           std::to_string(limits.max_metadata_value_bytes);
  if (limits.max_error_message_bytes < 16 || limits.max_error_message_bytes > (1u << 20))
    return "limits.max_error_message_bytes: must be 16..1048576, got " +
           std::to_string(limits.max_error_message_bytes);
  if (limits.max_content_bytes > (64u << 20))
    return "limits.max_content_bytes: must be 0..67108864, got " + std::to_string(limits.max_content_bytes);
  return {};
}

IngestRing::IngestRing(const IngestConfig& config) : config_(config), capacity_(config.capacity) {
  if (std::string err = config.validate(); !err.empty()) throw std::invalid_argument("IngestConfig." + err);
  static_assert(sizeof(LlmRequest) <= 1024 - 256, "slot header must leave room for strings");
  impl_ = std::make_unique<Impl>(config);
  impl_->slot_bytes = config.slot_bytes;
  const std::size_t total = static_cast<std::size_t>(config.capacity) * config.slot_bytes;
  impl_->slots = static_cast<char*>(std::aligned_alloc(k_cache_line, total));
  if (impl_->slots == nullptr) throw std::bad_alloc();
  std::memset(impl_->slots, 0, total);  // touch every page now, not on the hot path
}

IngestRing::~IngestRing() {
  if (impl_) std::free(impl_->slots);
}

IngestRing::Producer& IngestRing::make_producer() {
  std::lock_guard lock(impl_->producers_mutex);
  if (impl_->producers.size() >= config_.max_producers)
    throw std::length_error("IngestRing::make_producer: more than max_producers (" +
                            std::to_string(config_.max_producers) + ") producers");
  Producer& p = impl_->producers.emplace_back(impl_->ready);
  impl_->producer_count.store(impl_->producers.size(), std::memory_order_release);
  return p;
}

// The common case: every value within its limit, no array metadata, and everything fits the
// slot. Then a straight sequence of memcpy with no per-value checks. Returns false (having
// written nothing that matters) when the careful path is needed.
bool IngestRing::copy_fast(const LlmRequest& r, char* base) noexcept {
  const ValueLimits& lim = config_.limits;
  const std::size_t f = lim.max_field_bytes;
  if (r.account.size() > f || r.request_id.size() > f || r.operation.size() > f ||
      r.provider.size() > f || r.requested_model.size() > f || r.response_model.size() > f ||
      r.response_id.size() > f || r.finish_reason.size() > f || r.user.size() > f ||
      r.session_id.size() > f || r.error_message.size() > lim.max_error_message_bytes ||
      r.prompt.size() > lim.max_content_bytes || r.completion.size() > lim.max_content_bytes ||
      r.metadata.size() > lim.max_metadata_entries)
    return false;
  std::size_t bytes = r.account.size() + r.request_id.size() + r.operation.size() +
                      r.provider.size() + r.requested_model.size() + r.response_model.size() +
                      r.response_id.size() + r.finish_reason.size() + r.user.size() +
                      r.session_id.size() + r.error_message.size() + r.prompt.size() +
                      r.completion.size() + r.metadata.size() * sizeof(MetadataEntry);
  for (const MetadataEntry& e : r.metadata) {
    if (e.value.type() >= ValueType::string_array || e.key.size() > lim.max_metadata_key_bytes)
      return false;
    if (e.value.type() == ValueType::string) {
      if (e.value.as_string().size() > lim.max_metadata_value_bytes) return false;
      bytes += e.value.as_string().size();
    }
    bytes += e.key.size();
  }
  if (bytes > impl_->slot_bytes - sizeof(LlmRequest)) return false;

  auto* rec = reinterpret_cast<LlmRequest*>(base);
  auto* meta = reinterpret_cast<MetadataEntry*>(base + sizeof(LlmRequest));
  char* p = reinterpret_cast<char*>(meta + r.metadata.size());
  rec->account = append(p, r.account);
  rec->request_id = append(p, r.request_id);
  rec->operation = append(p, r.operation);
  rec->provider = append(p, r.provider);
  rec->requested_model = append(p, r.requested_model);
  rec->response_model = append(p, r.response_model);
  rec->response_id = append(p, r.response_id);
  rec->finish_reason = append(p, r.finish_reason);
  rec->user = append(p, r.user);
  rec->session_id = append(p, r.session_id);
  for (std::size_t i = 0; i < r.metadata.size(); ++i) {
    const MetadataEntry& e = r.metadata[i];
    // Built in place (no temporary): a temporary's 16-byte reload of two 8-byte stores
    // stalled store forwarding on every entry (perf: the hottest instruction of the copy).
    const std::string_view key = append(p, e.key);
    if (e.value.type() == ValueType::string) {
      ::new (&meta[i]) MetadataEntry{key, AttributeValue::string(append(p, e.value.as_string()))};
    } else {
      ::new (&meta[i]) MetadataEntry{key, e.value};
    }
  }
  rec->metadata = std::span<const MetadataEntry>(meta, r.metadata.size());
  rec->error_message = append(p, r.error_message);
  rec->completion = append(p, r.completion);
  rec->prompt = append(p, r.prompt);
  return true;
}

// Everything else: each value cut to its limit at a UTF-8 boundary, arrays copied element by
// element, and the content cut to what is left of the slot; every cut counted.
void IngestRing::copy_limited(const LlmRequest& r, char* base, std::uint64_t& truncated,
                              std::uint64_t& dropped) noexcept {
  auto* rec = reinterpret_cast<LlmRequest*>(base);
  SlotArena arena(base + sizeof(LlmRequest), impl_->slot_bytes - sizeof(LlmRequest));
  const ValueLimits& lim = config_.limits;
  std::size_t n_meta = r.metadata.size();
  if (n_meta > lim.max_metadata_entries) {
    dropped = n_meta - lim.max_metadata_entries;
    n_meta = lim.max_metadata_entries;
  }
  MetadataEntry* meta = arena.alloc_array<MetadataEntry>(n_meta);
  if (meta == nullptr && n_meta != 0) {
    dropped += n_meta;
    n_meta = 0;
  }
  const std::size_t f = lim.max_field_bytes;
  rec->account = arena.copy(r.account, f, truncated);
  rec->request_id = arena.copy(r.request_id, f, truncated);
  rec->operation = arena.copy(r.operation, f, truncated);
  rec->provider = arena.copy(r.provider, f, truncated);
  rec->requested_model = arena.copy(r.requested_model, f, truncated);
  rec->response_model = arena.copy(r.response_model, f, truncated);
  rec->response_id = arena.copy(r.response_id, f, truncated);
  rec->finish_reason = arena.copy(r.finish_reason, f, truncated);
  rec->user = arena.copy(r.user, f, truncated);
  rec->session_id = arena.copy(r.session_id, f, truncated);
  for (std::size_t i = 0; i < n_meta; ++i) {
    meta[i].key = arena.copy(r.metadata[i].key, lim.max_metadata_key_bytes, truncated);
    meta[i].value = copy_value(r.metadata[i].value, lim.max_metadata_value_bytes, arena, truncated);
  }
  rec->metadata = std::span<const MetadataEntry>(meta, n_meta);
  rec->error_message = arena.copy(r.error_message, lim.max_error_message_bytes, truncated);
  // Content last: it gets what is left, the completion before the prompt (it is the smaller
  // and the more useful of the two in a trace).
  rec->completion = arena.copy(r.completion, lim.max_content_bytes, truncated);
  rec->prompt = arena.copy(r.prompt, lim.max_content_bytes, truncated);
}

submit_result IngestRing::try_submit(Producer& p, const LlmRequest& r) noexcept {
  // Dekker handshake with close(): either close() sees busy == 1 and waits for us, or we
  // see closed_ == true. Both sides use seq_cst for the store->load order.
  p.busy.store(1, std::memory_order_seq_cst);
  if (closed_.load(std::memory_order_seq_cst)) {
    bump(p.rejected_closed);
    p.busy.store(0, std::memory_order_release);
    return submit_result::closed;
  }
  std::uint32_t slot = p.spare;
  if (slot != ~0u) {
    p.spare = ~0u;
  } else if (!impl_->free.try_pop(slot)) {
    bump(p.rejected_full);
    p.busy.store(0, std::memory_order_release);
    return submit_result::full;
  }

  // Lay the slot out as [LlmRequest][metadata entries][string bytes], copying every view.
  char* base = impl_->slots + static_cast<std::size_t>(slot) * impl_->slot_bytes;
  auto* rec = reinterpret_cast<LlmRequest*>(base);
  *rec = r;  // scalars; every view is replaced below
  std::uint64_t truncated = 0;
  std::uint64_t dropped = 0;
  if (!copy_fast(r, base)) copy_limited(r, base, truncated, dropped);
  if (!impl_->ready.try_enqueue(p.ready_token, slot)) {
    // No preallocated block left for this producer: keep the slot, report full.
    p.spare = slot;
    bump(p.rejected_full);
    p.busy.store(0, std::memory_order_release);
    return submit_result::full;
  }
  if (truncated) bump(p.truncated, truncated);
  if (dropped) bump(p.dropped_metadata, dropped);
  bump(p.accepted);
  p.busy.store(0, std::memory_order_release);
  return submit_result::ok;
}

std::size_t IngestRing::dequeue_ready(std::uint32_t* out, std::size_t max) noexcept {
  return impl_->ready.try_dequeue_bulk(impl_->ready_consumer, out, max);
}

const LlmRequest& IngestRing::record(std::uint32_t index) const noexcept { return *impl_->header(index); }

void IngestRing::release(const std::uint32_t* indices, std::size_t n) noexcept {
  impl_->free.push(indices, n);
  drained_ += n;
  drained_published_.store(drained_, std::memory_order_release);
}

void IngestRing::close() noexcept {
  closed_.store(true, std::memory_order_seq_cst);
  const std::size_t n = impl_->producer_count.load(std::memory_order_acquire);
  std::lock_guard lock(impl_->producers_mutex);
  for (std::size_t i = 0; i < n; ++i) {
    while (impl_->producers[i].busy.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  }
}

IngestStats IngestRing::stats() const noexcept {
  IngestStats s;
  const std::size_t n = impl_->producer_count.load(std::memory_order_acquire);
  std::lock_guard lock(impl_->producers_mutex);
  for (std::size_t i = 0; i < n; ++i) {
    const Producer& p = impl_->producers[i];
    s.accepted += p.accepted.load(std::memory_order_relaxed);
    s.rejected_full += p.rejected_full.load(std::memory_order_relaxed);
    s.rejected_closed += p.rejected_closed.load(std::memory_order_relaxed);
    s.truncated_values += p.truncated.load(std::memory_order_relaxed);
    s.dropped_metadata += p.dropped_metadata.load(std::memory_order_relaxed);
  }
  s.drained = drained_published_.load(std::memory_order_acquire);
  return s;
}

std::size_t IngestRing::size_guess() const noexcept { return impl_->ready.size_approx(); }

}  // namespace tracecast
