#include "tracecast/ingest_ring.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <thread>

#include "tracecast/utf8.h"

namespace tracecast {
namespace {

constexpr std::size_t k_cache_line = 64;
// Bytes before the LlmRequest in a record: the 8-byte header word.
constexpr std::size_t k_header_bytes = 8;
constexpr std::size_t k_fixed_bytes = k_header_bytes + sizeof(LlmRequest);
static_assert(alignof(LlmRequest) <= k_header_bytes && alignof(MetadataEntry) <= 8 && sizeof(LlmRequest) % 8 == 0,
              "the record layout puts LlmRequest after the 8-byte header and the entries after it");

constexpr std::uint64_t round_up(std::uint64_t v, std::uint64_t to) noexcept { return (v + to - 1) & ~(to - 1); }
constexpr std::uint64_t min_u64(std::uint64_t a, std::uint64_t b) noexcept { return a < b ? a : b; }

// Process-unique ring ids: the thread-local cache's key. Never reused, so a new ring at a freed
// address is never mistaken for the old one.
std::atomic<std::uint64_t> g_next_ring_id{1};

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

// Bump allocator over one record's bytes. Copies are cut to the space left; every cut counts.
class RecordArena {
 public:
  RecordArena(char* base, std::size_t size) noexcept : p_(base), end_(base + size) {}

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
AttributeValue copy_value(const AttributeValue& v, std::size_t limit, RecordArena& arena,
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


// A lock-free LIFO stack of small indices (Treiber stack with a 32-bit ABA tag beside the
// 32-bit index in one 64-bit head): the free producer registrations. LIFO so a new thread
// gets the registration the last exiting thread released, still warm in cache.
//
//   head = [ tag:32 | index:32 ]     next[index] -> the index below it; k_empty ends the chain
class IndexStack {
 public:
  static constexpr std::uint32_t k_empty = ~0u;

  explicit IndexStack(std::uint32_t n) : next_(new std::atomic<std::uint32_t>[n]) {
    for (std::uint32_t i = 0; i < n; ++i) next_[i].store(i + 1 < n ? i + 1 : k_empty, std::memory_order_relaxed);
    head_.store(n == 0 ? k_empty : 0, std::memory_order_release);
  }

  // Any thread. acquire on success pairs with push()'s release: what the last holder of the
  // index wrote happens before the next holder's reads.
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

  // Any thread.
  void push(std::uint32_t index) noexcept {
    std::uint64_t h = head_.load(std::memory_order_relaxed);
    std::uint64_t tagged;
    do {
      next_[index].store(static_cast<std::uint32_t>(h), std::memory_order_relaxed);
      tagged = (((h >> 32) + 1) << 32) | index;
    } while (!head_.compare_exchange_weak(h, tagged, std::memory_order_release, std::memory_order_relaxed));
  }

 private:
  alignas(k_cache_line) std::atomic<std::uint64_t> head_{0};
  [[maybe_unused]] char pad_head_[k_cache_line - sizeof(std::atomic<std::uint64_t>)];
  std::unique_ptr<std::atomic<std::uint32_t>[]> next_;
};

}  // namespace

// One registration: a cache line written by its owner (or, for the shared one, by every
// overflow thread with read-modify-writes) and read by close() and stats().
class alignas(k_cache_line) IngestRing::Producer {
 public:
  // Set while inside try_submit, so close() can wait for submits in progress. The shared
  // registration counts the overflow threads inside instead of holding 0/1.
  std::atomic<std::uint32_t> busy{0};
  std::uint32_t index = 0;  // in the control block's array; the shared one's is max_producers
  bool shared = false;
  char pad_flags_[7] = {};  // the counters start on an 8-byte boundary
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> rejected_full{0};
  std::atomic<std::uint64_t> rejected_closed{0};
  std::atomic<std::uint64_t> truncated{0};
  std::atomic<std::uint64_t> dropped_metadata{0};
  char pad_end_[k_cache_line - 16 - 5 * sizeof(std::atomic<std::uint64_t>)];

  // Owned: the owner thread is the only writer (load + store, no locked instruction).
  // Shared: any number of writers.
  void bump(std::atomic<std::uint64_t>& c, std::uint64_t by = 1) noexcept {
    if (shared) {
      c.fetch_add(by, std::memory_order_relaxed);
    } else {
      c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
    }
  }
  // The handshake with close(), without a fence of its own: busy is stored before the tail CAS
  // (acq_rel) that claims the record, and close() sets the closed bit with an RMW on the same
  // tail before reading busy. Either our CAS comes first in the tail's order, and then close()
  // synchronizes with it and sees busy != 0 (and waits for the record to be published), or
  // close()'s RMW comes first, and then our CAS sees the closed bit and claims nothing.
  void enter() noexcept {
    if (shared) {
      busy.fetch_add(1, std::memory_order_relaxed);
    } else {
      busy.store(1, std::memory_order_relaxed);
    }
  }
  void leave() noexcept {
    if (shared) {
      busy.fetch_sub(1, std::memory_order_release);
    } else {
      busy.store(0, std::memory_order_release);
    }
  }
};
static_assert(sizeof(IngestRing::Producer) == k_cache_line, "one registration, one cache line");

namespace detail {

// The registrations of one ring, shared between the ring and the threads holding one of them:
// each holds a reference, so a thread that exits after the ring was destroyed still returns
// its registration to live memory (and the last one out frees it).
struct IngestControl {
  explicit IngestControl(std::uint32_t max_producers)
      : producers(new IngestRing::Producer[max_producers]), count(max_producers), free(max_producers) {
    for (std::uint32_t i = 0; i < max_producers; ++i) producers[i].index = i;
    shared.index = max_producers;
    shared.shared = true;
  }

  void unref() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  std::atomic<std::uint32_t> refs{1};        // the ring's, plus one per thread registration
  std::atomic<bool> ring_alive{true};         // false once ~IngestRing ran
  std::unique_ptr<IngestRing::Producer[]> producers;
  std::uint32_t count;
  IndexStack free;  // indices of producers[] nobody holds
  IngestRing::Producer shared;
};

}  // namespace detail

namespace {

// The calling thread's registrations, one per ring it submitted to (up to k_thread_rings live
// rings at once; more use the shared registration). Trivially destructible on purpose: it is
// never destroyed, so a submit from a later thread_local destructor or a static destructor
// still reads valid memory and, seeing `exiting`, takes the shared path.
struct ThreadEntry {
  std::uint64_t ring_id;  // 0: empty
  detail::IngestControl* control;
  IngestRing::Producer* producer;
};
constexpr std::size_t k_thread_rings = 8;
struct ThreadRegistrations {
  ThreadEntry entries[k_thread_rings];
  bool armed;    // the thread-exit hook is registered
  bool exiting;  // the hook ran: no new registrations on this thread
};
constinit thread_local ThreadRegistrations t_regs{};

void release_entry(ThreadEntry& e) noexcept {
  e.control->free.push(e.producer->index);
  e.control->unref();
  e = ThreadEntry{};
}

// Its destructor is the thread-exit hook: registered with the C runtime the first time a
// thread takes a registration, it gives every registration back.
struct ThreadExitHook {
  ThreadExitHook() noexcept = default;
  ThreadExitHook(const ThreadExitHook&) = delete;
  ThreadExitHook& operator=(const ThreadExitHook&) = delete;
  ~ThreadExitHook() {
    ThreadRegistrations& regs = t_regs;
    regs.exiting = true;
    for (ThreadEntry& e : regs.entries)
      if (e.ring_id != 0) release_entry(e);
  }
  void arm() noexcept { armed = true; }
  bool armed = false;
};
thread_local ThreadExitHook t_exit_hook;

}  // namespace

namespace {
using IC = IngestConfig;
using VL = ValueLimits;
// One row per field (tracecast/settings.h): the JSON loader, README's table and validate()
// all read these.
constexpr Setting k_ingest_settings[] = {
    number_setting("ring_bytes", "ring_bytes", "bytes", 64 << 10, 1 << 30, &setting_ref<&IC::ring_bytes>,
                   "the ring between `submit` and the worker; each request takes what its copy needs (canonical "
                   "~0.5 KiB, a 100 KB prompt ~100 KB, rounded up to 64 B); one request at most ring_bytes / 8 "
                   "(content beyond: cut, counted); not enough free bytes: `submit` returns `full`, counted")
        .pow2(),
    number_setting("max_producers", "max_producers", "threads", 1, 1024, &setting_ref<&IC::max_producers>,
                   "threads holding their own registration at once; a thread's registration is released when it "
                   "exits; threads beyond share one overflow registration (accepted, slower under contention; "
                   "counted in `overflow_submits`)"),
    number_setting("limits.max_field_bytes", "limits.max_field_bytes", "bytes", 16, 65536,
                   &setting_ref<&IC::limits, &VL::max_field_bytes>,
                   "account, ids, models, provider, finish reason, user, session"),
    number_setting("limits.max_metadata_entries", "limits.max_metadata_entries", "entries", 0, 64,
                   &setting_ref<&IC::limits, &VL::max_metadata_entries>,
                   "`trace` keys kept per request (more: dropped, counted)"),
    number_setting("limits.max_metadata_key_bytes", "limits.max_metadata_key_bytes", "bytes", 1, 128,
                   &setting_ref<&IC::limits, &VL::max_metadata_key_bytes>, "metadata key"),
    number_setting("limits.max_metadata_value_bytes", "limits.max_metadata_value_bytes", "bytes", 16, 1 << 20,
                   &setting_ref<&IC::limits, &VL::max_metadata_value_bytes>,
                   "metadata value: a string, or the total of an array"),
    number_setting("limits.max_error_message_bytes", "limits.max_error_message_bytes", "bytes", 16, 1 << 20,
                   &setting_ref<&IC::limits, &VL::max_error_message_bytes>, "error message"),
    number_setting("limits.max_content_bytes", "limits.max_content_bytes", "bytes", 0, 64 << 20,
                   &setting_ref<&IC::limits, &VL::max_content_bytes>,
                   "prompt and completion each, kept whole up to this (a 100 KB prompt fits the default ring "
                   "whole); also bounded by ring_bytes / 8 per request"),
};
}  // namespace

std::span<const Setting> ingest_settings() noexcept { return k_ingest_settings; }

std::vector<ValidationIssue> validate(const IngestConfig& config) {
  std::vector<ValidationIssue> issues;
  check_settings(k_ingest_settings, &config, issues);
  return issues;
}

std::string IngestConfig::validate() const { return first_error_text(tracecast::validate(*this)); }

IngestRing::IngestRing(const IngestConfig& config)
    : config_(config),
      mask_(config.ring_bytes - 1u),
      buffer_(nullptr),
      id_(g_next_ring_id.fetch_add(1, std::memory_order_relaxed)),
      control_(nullptr) {
  if (std::string err = config.validate(); !err.empty()) throw std::invalid_argument("IngestConfig." + err);
  buffer_ = static_cast<char*>(std::aligned_alloc(k_cache_line, config.ring_bytes));
  if (buffer_ == nullptr) throw std::bad_alloc();
  // Touch every page now, not on the hot path; and every header word starts "not published".
  std::memset(buffer_, 0, config.ring_bytes);
  try {
    control_ = new detail::IngestControl(config.max_producers);
  } catch (...) {
    std::free(buffer_);
    throw;
  }
}

IngestRing::~IngestRing() {
  control_->ring_alive.store(false, std::memory_order_release);
  control_->unref();
  std::free(buffer_);
}

IngestRing::Producer& IngestRing::make_producer() {
  std::uint32_t index;
  if (!control_->free.try_pop(index))
    throw std::length_error("IngestRing::make_producer: all max_producers (" + std::to_string(config_.max_producers) +
                            ") registrations are taken");
  return control_->producers[index];
}

// The calling thread's registration when its cache has none for this ring: prune the entries
// of destroyed rings, take a free registration and remember it. No free registration, a full
// cache or a thread already exiting: the shared one.
//
// Why a shared overflow registration rather than refusing (and counting) the extra threads: a
// registration is only counters and a busy flag (the records live in the shared byte ring), so
// sharing one costs atomic read-modify-writes on one contended line, tens of nanoseconds, and
// loses nothing; a refusal would drop spans for a sizing mistake the gateway cannot fix at run
// time. overflow_submits (and its Prometheus counter) tells the operator to raise max_producers.
// An overflow thread tries again for a registration of its own on each submit (one load of the
// free list's head when it is empty).
[[gnu::noinline]] IngestRing::Producer* IngestRing::thread_producer() noexcept {
  ThreadRegistrations& regs = t_regs;
  if (regs.exiting) return &control_->shared;
  ThreadEntry* slot = nullptr;
  for (ThreadEntry& e : regs.entries) {
    if (e.ring_id != 0 && !e.control->ring_alive.load(std::memory_order_acquire)) release_entry(e);
    if (e.ring_id == 0 && slot == nullptr) slot = &e;
  }
  std::uint32_t index;
  if (slot == nullptr || !control_->free.try_pop(index)) return &control_->shared;
  if (!regs.armed) {
    t_exit_hook.arm();  // first use constructs it, registering its destructor for thread exit
    regs.armed = true;
  }
  control_->refs.fetch_add(1, std::memory_order_relaxed);  // the ring holds one: never 0 here
  *slot = ThreadEntry{id_, control_, &control_->producers[index]};
  return slot->producer;
}

submit_result IngestRing::try_submit(const LlmRequest& request) noexcept {
  for (const ThreadEntry& e : t_regs.entries)
    if (e.ring_id == id_) return submit_with(*e.producer, request);
  return submit_with(*thread_producer(), request);
}

submit_result IngestRing::try_submit(Producer& producer, const LlmRequest& request) noexcept {
  return submit_with(producer, request);
}

struct IngestRing::Plan {
  std::uint64_t record_bytes;  // multiple of 64, <= max_record_bytes()
  bool fast;                   // every value within its limit, no arrays, no cut: copy_fast
};

// The record's size, before anything is claimed: the exact size of the copy when every value is
// within its limit (the common case), else an upper bound of what copy_limited writes (each
// value at most its limit, plus alignment of arrays). Records over max_record_bytes() are
// clamped, and copy_limited then cuts the content to what is left.
IngestRing::Plan IngestRing::plan(const LlmRequest& r) const noexcept {
  const ValueLimits& lim = config_.limits;
  bool fast = true;
  auto kept = [&fast](std::size_t size, std::size_t limit) noexcept -> std::uint64_t {
    if (size > limit) {
      fast = false;
      return limit;
    }
    return size;
  };
  const std::size_t f = lim.max_field_bytes;
  std::uint64_t bytes = kept(r.account.size(), f) + kept(r.api_key_id.size(), k_max_api_key_id_bytes) +
                        kept(r.request_id.size(), f) + kept(r.operation.size(), f) +
                        kept(r.provider.size(), f) + kept(r.requested_model.size(), f) +
                        kept(r.response_model.size(), f) + kept(r.response_id.size(), f) +
                        kept(r.finish_reason.size(), f) + kept(r.finish_reasons.size(), f) +
                        kept(r.user.size(), f) + kept(r.session_id.size(), f) +
                        kept(r.error_message.size(), lim.max_error_message_bytes) +
                        kept(r.prompt.size(), lim.max_content_bytes) + kept(r.completion.size(), lim.max_content_bytes);
  const std::size_t n_meta = kept(r.metadata.size(), lim.max_metadata_entries);
  bytes += n_meta * sizeof(MetadataEntry);
  for (std::size_t i = 0; i < n_meta; ++i) {
    const MetadataEntry& e = r.metadata[i];
    bytes += kept(e.key.size(), lim.max_metadata_key_bytes);
    const std::size_t v = lim.max_metadata_value_bytes;
    switch (e.value.type()) {
      case ValueType::string:
        bytes += kept(e.value.as_string().size(), v);
        break;
      case ValueType::string_array: {
        fast = false;
        std::uint64_t total = 0;
        for (std::string_view s : e.value.as_strings()) total += s.size();
        bytes += 8 + e.value.as_strings().size() * sizeof(std::string_view) + min_u64(total, v);
        break;
      }
      case ValueType::bool_array:
        fast = false;
        bytes += min_u64(e.value.as_bools().size(), v);
        break;
      case ValueType::int64_array:
        fast = false;
        bytes += 8 + 8 * min_u64(e.value.as_int64s().size(), v / 8);
        break;
      case ValueType::float64_array:
        fast = false;
        bytes += 8 + 8 * min_u64(e.value.as_doubles().size(), v / 8);
        break;
      default:
        break;  // scalars carry no bytes of their own
    }
  }
  std::uint64_t record = round_up(k_fixed_bytes + bytes, k_cache_line);
  if (record > config_.max_record_bytes()) {
    record = config_.max_record_bytes();
    fast = false;
  }
  return {record, fast};
}

// The common case (plan() said so): every value within its limit, no array metadata, and the
// record sized exactly for it. Then a straight sequence of copies with no per-value checks.
// `base` is where the LlmRequest sits, already a copy of `r` (scalars); every view is replaced.
void IngestRing::copy_fast(const LlmRequest& r, char* base) noexcept {
  auto* rec = reinterpret_cast<LlmRequest*>(base);
  auto* meta = reinterpret_cast<MetadataEntry*>(base + sizeof(LlmRequest));
  char* p = reinterpret_cast<char*>(meta + r.metadata.size());
  rec->account = append(p, r.account);
  rec->api_key_id = append(p, r.api_key_id);
  rec->request_id = append(p, r.request_id);
  rec->operation = append(p, r.operation);
  rec->provider = append(p, r.provider);
  rec->requested_model = append(p, r.requested_model);
  rec->response_model = append(p, r.response_model);
  rec->response_id = append(p, r.response_id);
  rec->finish_reason = append(p, r.finish_reason);
  rec->finish_reasons = append(p, r.finish_reasons);
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
}

// Everything else: each value cut to its limit at a UTF-8 boundary, arrays copied element by
// element, and (for a record clamped to max_record_bytes) the content cut to what is left of
// the record; every cut counted. `room`: the record's bytes after its LlmRequest.
void IngestRing::copy_limited(const LlmRequest& r, char* base, std::size_t room, std::uint64_t& truncated,
                              std::uint64_t& dropped) noexcept {
  auto* rec = reinterpret_cast<LlmRequest*>(base);
  RecordArena arena(base + sizeof(LlmRequest), room);
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
  // Kept whole or not at all: a cut id could equal another key's id on an allow-list.
  if (r.api_key_id.size() <= k_max_api_key_id_bytes && r.api_key_id.size() <= arena.room()) {
    rec->api_key_id = arena.copy(r.api_key_id, k_max_api_key_id_bytes, truncated);
  } else {
    rec->api_key_id = {};
    ++truncated;
  }
  rec->request_id = arena.copy(r.request_id, f, truncated);
  rec->operation = arena.copy(r.operation, f, truncated);
  rec->provider = arena.copy(r.provider, f, truncated);
  rec->requested_model = arena.copy(r.requested_model, f, truncated);
  rec->response_model = arena.copy(r.response_model, f, truncated);
  rec->response_id = arena.copy(r.response_id, f, truncated);
  rec->finish_reason = arena.copy(r.finish_reason, f, truncated);
  rec->finish_reasons = arena.copy(r.finish_reasons, f, truncated);
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

// Claims `bytes` (a multiple of 64) at the tail with one CAS; when the record would cross the
// end of the buffer, the claim also covers the rest of the buffer and a padding record is
// published there. Claims nothing and returns full when the free bytes are too few, closed once
// close() set the tail's closed bit.
submit_result IngestRing::claim(std::uint64_t bytes, std::uint64_t& pos) noexcept {
  const std::uint64_t capacity = mask_ + 1;
  // Head before tail: the tail read afterwards is never behind it (head <= tail always).
  std::uint64_t head = head_cache_.load(std::memory_order_acquire);
  std::uint64_t tail = tail_.load(std::memory_order_relaxed);
  std::uint64_t need;
  while (true) {
    if ((tail & k_closed_bit) != 0) return submit_result::closed;
    if (static_cast<std::int64_t>(tail - head) < 0) {  // a fresher head than our tail: reload
      tail = tail_.load(std::memory_order_relaxed);
      continue;
    }
    const std::uint64_t to_end = capacity - (tail & mask_);
    need = bytes <= to_end ? bytes : to_end + bytes;
    if (tail - head + need > capacity) {
      // Looks full against the cached head: read the consumer's line (acquire: its reads and
      // clearing of the freed bytes happen before we write them) and share what we saw.
      const std::uint64_t fresh = head_.load(std::memory_order_acquire);
      if (fresh == head) return submit_result::full;
      head = fresh;
      head_cache_.store(fresh, std::memory_order_release);
      continue;
    }
    // acq_rel: the closed handshake (see Producer::enter); the bytes are ours once it succeeds.
    if (tail_.compare_exchange_weak(tail, tail + need, std::memory_order_acq_rel, std::memory_order_relaxed)) break;
  }
  pos = tail;
  if (need != bytes) {
    const std::uint64_t pad = need - bytes;
    std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(buffer_ + (tail & mask_)))
        .store((pad << 32) | k_type_padding, std::memory_order_release);
    pos = tail + pad;  // starts the buffer
  }
  return submit_result::ok;
}

namespace {

// A start or end time left 0 (a strict receiver refuses such spans): the submit time, with a
// start never after the end. Off the common path: only for requests missing a time.
void fill_times(LlmRequest& rec) noexcept {
  const auto now = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  if (rec.end_unix_nano == 0) {
    rec.end_unix_nano = now;
    rec.submit_flags |= k_submit_end_filled;
  }
  if (rec.start_unix_nano == 0) {
    rec.start_unix_nano = std::min(now, rec.end_unix_nano);
    rec.submit_flags |= k_submit_start_filled;
  }
}

}  // namespace

submit_result IngestRing::submit_with(Producer& p, const LlmRequest& r) noexcept {
  p.enter();
  const Plan plan_ = plan(r);
  std::uint64_t pos = 0;
  if (const submit_result claimed = claim(plan_.record_bytes, pos); claimed != submit_result::ok) {
    p.bump(claimed == submit_result::full ? p.rejected_full : p.rejected_closed);
    p.leave();
    return claimed;
  }
  char* const start = buffer_ + (pos & mask_);
  char* const base = start + k_header_bytes;
  // The claimed lines were last written a whole ring ago (or zeroed by the consumer on the
  // other core): ask for all of them for writing at once, so their fetches overlap instead
  // of stalling the copy line by line (e2e single-none: most of the submit's time).
  for (std::size_t off = 0; off < plan_.record_bytes && off < k_prefetch_write_bytes; off += 64)
    __builtin_prefetch(start + off, 1, 3);
  ::new (base) LlmRequest(r);  // scalars; every view is replaced below
  std::uint64_t truncated = 0;
  std::uint64_t dropped = 0;
  if (plan_.fast) {
    copy_fast(r, base);
  } else {
    copy_limited(r, base, plan_.record_bytes - k_fixed_bytes, truncated, dropped);
  }
  auto* rec = reinterpret_cast<LlmRequest*>(base);
  if (truncated) {
    p.bump(p.truncated, truncated);
    rec->submit_flags |= k_submit_value_cut;
  }
  if (r.start_unix_nano == 0 || r.end_unix_nano == 0) fill_times(*rec);
  if (dropped) p.bump(p.dropped_metadata, dropped);
  p.bump(p.accepted);  // before publishing, so drained never runs ahead of accepted
  // Publish: release orders the copy before the header the consumer acquires.
  std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(start))
      .store((plan_.record_bytes << 32) | k_type_request, std::memory_order_release);
  p.leave();
  return submit_result::ok;
}

std::uint64_t IngestRing::load_header(std::uint64_t pos) const noexcept {
  return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(buffer_ + (pos & mask_)))
      .load(std::memory_order_acquire);
}

const LlmRequest* IngestRing::record(std::uint64_t pos) const noexcept {
  return reinterpret_cast<const LlmRequest*>(buffer_ + (pos & mask_) + k_header_bytes);
}

void IngestRing::prefetch(std::uint64_t pos) const noexcept {
  const std::uint64_t at = pos & mask_;
  const std::uint64_t end = min_u64(at + k_prefetch_bytes, mask_ + 1);
  for (std::uint64_t off = at; off < end; off += k_cache_line) __builtin_prefetch(buffer_ + off, 0, 3);
}

// Every word a later record could start at (each cache line's first) goes back to 0, "not
// published", before producers may claim the bytes again (Aeron zeroes the whole record; the
// other words are never read before they are written). Called right after the record was
// handled, while its lines are still in the consumer's cache.
void IngestRing::clear(std::uint64_t pos, std::uint64_t bytes) noexcept {
  char* const start = buffer_ + (pos & mask_);  // a record never crosses the end of the buffer
  for (std::uint64_t off = 0; off < bytes; off += k_cache_line)
    std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(start + off)).store(0, std::memory_order_relaxed);
}

// Frees everything before `to`, already cleared: release orders the consumer's reads and clearing before
// any producer's writes to those bytes (producers acquire the head).
void IngestRing::release(std::uint64_t to, std::size_t records) noexcept {
  head_.store(to, std::memory_order_release);
  drained_ += records;
  drained_published_.store(drained_, std::memory_order_release);
}

void IngestRing::close() noexcept {
  closed_.store(true, std::memory_order_relaxed);
  tail_.fetch_or(k_closed_bit, std::memory_order_acq_rel);  // see Producer::enter
  auto wait_idle = [](const Producer& p) noexcept {
    while (p.busy.load(std::memory_order_acquire) != 0) std::this_thread::yield();
  };
  for (std::uint32_t i = 0; i < control_->count; ++i) wait_idle(control_->producers[i]);
  wait_idle(control_->shared);
}

IngestStats IngestRing::stats() const noexcept {
  IngestStats s;
  auto add = [&s](const Producer& p) noexcept {
    s.accepted += p.accepted.load(std::memory_order_relaxed);
    s.rejected_full += p.rejected_full.load(std::memory_order_relaxed);
    s.rejected_closed += p.rejected_closed.load(std::memory_order_relaxed);
    s.truncated_values += p.truncated.load(std::memory_order_relaxed);
    s.dropped_metadata += p.dropped_metadata.load(std::memory_order_relaxed);
  };
  // drained first: every record it counts was counted as accepted before it was published.
  s.drained = drained_published_.load(std::memory_order_acquire);
  for (std::uint32_t i = 0; i < control_->count; ++i) add(control_->producers[i]);
  const IngestStats before_shared = s;
  add(control_->shared);
  s.overflow_submits = s.submitted() - before_shared.submitted();
  return s;
}

std::size_t IngestRing::size_guess() const noexcept {
  const IngestStats s = stats();
  return s.accepted > s.drained ? static_cast<std::size_t>(s.accepted - s.drained) : 0;
}

std::size_t IngestRing::bytes_queued_guess() const noexcept {
  const std::uint64_t head = head_.load(std::memory_order_acquire);
  const std::uint64_t tail = tail_.load(std::memory_order_acquire) & ~k_closed_bit;
  return static_cast<std::size_t>(tail - head);
}

}  // namespace tracecast
