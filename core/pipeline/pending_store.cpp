#include "pending_store.h"

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <new>

namespace tracecast::detail {

struct PendingChunk {
  Buffer* buffer = nullptr;
  std::uint32_t live = 0;  // records not yet released
  bool retired = false;    // no more records will be bump-allocated here
};

namespace {

constexpr std::size_t k_align = alignof(std::max_align_t) < 8 ? 8 : alignof(std::max_align_t);

constexpr std::size_t round_up(std::size_t n, std::size_t a) noexcept { return (n + a - 1) & ~(a - 1); }

constexpr std::size_t k_header_bytes = round_up(sizeof(PendingChunk), k_align);

// The fixed part of a stored request: its scalars and the byte length of each string.
struct Scalars {
  std::uint64_t start_unix_nano, first_token_unix_nano, end_unix_nano;
  std::int64_t input_tokens, output_tokens, max_tokens;
  double cost, temperature, top_p;
  std::int64_t cache_read_input_tokens, cache_creation_input_tokens, reasoning_output_tokens;
  std::int32_t http_status;
  std::uint32_t len[14];  // in for_each_string order
  bool stream, error;
  std::uint8_t submit_flags;
};

// One metadata entry: key and string bytes live in the tail; arrays in the aligned area.
struct StoredEntry {
  std::uint32_t key_len;
  std::uint32_t size;  // string bytes or array elements
  ValueType type;
  union {
    bool b;
    std::int64_t i;
    double d;
    const void* array;  // into this record (records never move)
  };
};

// Scalars between an LlmRequest and a stored record, either way (same member names).
template <class To, class From>
void copy_scalars(To& to, const From& from) noexcept {
  to.start_unix_nano = from.start_unix_nano;
  to.first_token_unix_nano = from.first_token_unix_nano;
  to.end_unix_nano = from.end_unix_nano;
  to.input_tokens = from.input_tokens;
  to.output_tokens = from.output_tokens;
  to.max_tokens = from.max_tokens;
  to.cost = from.cost;
  to.temperature = from.temperature;
  to.top_p = from.top_p;
  to.http_status = from.http_status;
  to.stream = from.stream;
  to.error = from.error;
  to.cache_read_input_tokens = from.cache_read_input_tokens;
  to.cache_creation_input_tokens = from.cache_creation_input_tokens;
  to.reasoning_output_tokens = from.reasoning_output_tokens;
  to.submit_flags = from.submit_flags;
}

template <class R, class F>
void for_each_string(R& r, F&& f) noexcept {
  f(r.account);
  f(r.request_id);
  f(r.operation);
  f(r.provider);
  f(r.requested_model);
  f(r.response_model);
  f(r.response_id);
  f(r.finish_reason);
  f(r.finish_reasons);
  f(r.user);
  f(r.session_id);
  f(r.prompt);
  f(r.completion);
  f(r.error_message);
}

// Layout after the PendingRecord: [PendingRef x refs][Scalars][StoredEntry x n][8-aligned
// arrays][bool arrays, then string bytes: the 14 fields, then per entry key + string value].
struct Sizes {
  std::size_t aligned = 0;  // header + refs + scalars + entries + 8-byte-element arrays
  std::size_t bytes = 0;    // unaligned tail
};

std::size_t kept_metadata(const LlmRequest& r) noexcept {
  return std::min(r.metadata.size(), PendingStore::k_max_metadata);
}

Sizes sizes_of(const LlmRequest& r, std::uint32_t refs) noexcept {
  Sizes s;
  const std::size_t n = kept_metadata(r);
  s.aligned = sizeof(PendingRecord) + refs * sizeof(PendingRef) + round_up(sizeof(Scalars), k_align) +
              n * sizeof(StoredEntry);
  for_each_string(r, [&](std::string_view v) { s.bytes += v.size(); });
  for (std::size_t i = 0; i < n; ++i) {
    const MetadataEntry& e = r.metadata[i];
    s.bytes += e.key.size();
    const AttributeValue& v = e.value;
    switch (v.type()) {
      case ValueType::string: s.bytes += v.as_string().size(); break;
      case ValueType::string_array:
        s.aligned += v.as_strings().size() * sizeof(std::string_view);
        for (std::string_view x : v.as_strings()) s.bytes += x.size();
        break;
      case ValueType::int64_array: s.aligned += v.as_int64s().size() * 8; break;
      case ValueType::float64_array: s.aligned += v.as_doubles().size() * 8; break;
      case ValueType::bool_array: s.bytes += v.as_bools().size(); break;
      default: break;
    }
  }
  return s;
}

void put(char*& p, std::string_view v) noexcept {
  if (v.empty()) return;
  std::memcpy(p, v.data(), v.size());
  p += v.size();
}

std::string_view take(const char*& p, std::size_t n) noexcept {
  if (n == 0) return {};
  const std::string_view v(p, n);
  p += n;
  return v;
}

Scalars* scalars_of(PendingRecord* rec) noexcept {
  return reinterpret_cast<Scalars*>(reinterpret_cast<char*>(rec->ref_array() + rec->ref_slots));
}
const Scalars* scalars_of(const PendingRecord* rec) noexcept {
  return reinterpret_cast<const Scalars*>(reinterpret_cast<const char*>(rec->ref_array() + rec->ref_slots));
}
template <class S>
auto entries_of(S* scalars) noexcept {
  using E = std::conditional_t<std::is_const_v<S>, const StoredEntry, StoredEntry>;
  using C = std::conditional_t<std::is_const_v<S>, const char, char>;
  return reinterpret_cast<E*>(reinterpret_cast<C*>(scalars) + round_up(sizeof(Scalars), k_align));
}

}  // namespace

std::size_t PendingStore::bytes_for(const LlmRequest& request, std::uint32_t refs) noexcept {
  const Sizes s = sizes_of(request, refs);
  return round_up(s.aligned + s.bytes, k_align);
}

PendingStore::~PendingStore() {
  // The pipeline releases every record before it goes; a current chunk may remain.
  if (current_ != nullptr && current_->live == 0) free_chunk(current_);
}

PendingChunk* PendingStore::new_chunk(std::size_t bytes) {
  Buffer* b = pool_.acquire(bytes);
  if (b == nullptr) return nullptr;
  auto* c = ::new (b->data) PendingChunk{b, 0, false};
  held_ += b->capacity;
  return c;
}

void PendingStore::free_chunk(PendingChunk* c) noexcept {
  Buffer* b = c->buffer;
  held_ -= b->capacity;
  c->~PendingChunk();
  pool_.release(b);
}

void PendingStore::retire_current() noexcept {
  if (current_ == nullptr) return;
  current_->retired = true;
  if (current_->live == 0) free_chunk(current_);
  current_ = nullptr;
  bump_ = end_ = nullptr;
}

PendingRecord* PendingStore::store(const LlmRequest& r, std::uint32_t refs, std::uint64_t id_seed) {
  const Sizes s = sizes_of(r, refs);
  const std::size_t total = round_up(s.aligned + s.bytes, k_align);
  char* at = nullptr;
  PendingChunk* chunk = nullptr;
  if (total > k_chunk_bytes - k_header_bytes) {
    // A large record (a long prompt): a buffer of its own, freed with the record.
    chunk = new_chunk(k_header_bytes + total);
    if (chunk == nullptr) return nullptr;
    chunk->retired = true;
    at = chunk->buffer->data + k_header_bytes;
  } else {
    if (current_ == nullptr || static_cast<std::size_t>(end_ - bump_) < total) {
      if (current_ != nullptr && current_->live == 0) {
        bump_ = current_->buffer->data + k_header_bytes;  // empty: start it over
      } else {
        retire_current();
        current_ = new_chunk(k_chunk_bytes);
        if (current_ == nullptr) return nullptr;
        bump_ = current_->buffer->data + k_header_bytes;
        end_ = current_->buffer->data + current_->buffer->capacity;
      }
    }
    chunk = current_;
    at = bump_;
    bump_ += total;
  }

  auto* rec = ::new (at) PendingRecord{};
  rec->id_seed = id_seed;
  rec->chunk = chunk;
  rec->bytes = static_cast<std::uint32_t>(total);
  rec->refs = refs;
  rec->ref_slots = refs;
  const std::size_t n_meta = kept_metadata(r);
  rec->metadata = static_cast<std::uint16_t>(n_meta);
  PendingRef* ref = rec->ref_array();
  for (std::uint32_t i = 0; i < refs; ++i) ::new (&ref[i]) PendingRef{rec, nullptr};
  Scalars* sc = ::new (scalars_of(rec)) Scalars{};
  copy_scalars(*sc, r);
  StoredEntry* entries = entries_of(sc);
  char* aligned = reinterpret_cast<char*>(entries + n_meta);
  char* p = at + s.aligned;  // unaligned tail: bool arrays and string bytes
  std::size_t k = 0;
  for_each_string(r, [&](std::string_view v) {
    sc->len[k++] = static_cast<std::uint32_t>(v.size());
    put(p, v);
  });
  for (std::size_t i = 0; i < n_meta; ++i) {
    const MetadataEntry& e = r.metadata[i];
    const AttributeValue& v = e.value;
    StoredEntry& out = *::new (&entries[i]) StoredEntry{};
    out.key_len = static_cast<std::uint32_t>(e.key.size());
    out.type = v.type();
    put(p, e.key);
    switch (v.type()) {
      case ValueType::string:
        out.size = static_cast<std::uint32_t>(v.as_string().size());
        put(p, v.as_string());
        break;
      case ValueType::boolean: out.b = v.as_bool(); break;
      case ValueType::int64: out.i = v.as_int64(); break;
      case ValueType::float64: out.d = v.as_double(); break;
      case ValueType::string_array: {
        auto* views = reinterpret_cast<std::string_view*>(aligned);
        const auto in = v.as_strings();
        for (std::size_t x = 0; x < in.size(); ++x) {
          ::new (&views[x]) std::string_view(in[x].empty() ? std::string_view() : std::string_view(p, in[x].size()));
          put(p, in[x]);
        }
        aligned += in.size() * sizeof(std::string_view);
        out.size = static_cast<std::uint32_t>(in.size());
        out.array = views;
        break;
      }
      case ValueType::int64_array:
      case ValueType::float64_array: {
        const std::size_t count = v.type() == ValueType::int64_array ? v.as_int64s().size() : v.as_doubles().size();
        const void* src = v.type() == ValueType::int64_array ? static_cast<const void*>(v.as_int64s().data())
                                                             : static_cast<const void*>(v.as_doubles().data());
        if (count != 0) std::memcpy(aligned, src, count * 8);
        out.size = static_cast<std::uint32_t>(count);
        out.array = aligned;
        aligned += count * 8;
        break;
      }
      case ValueType::bool_array: {
        const auto in = v.as_bools();
        if (!in.empty()) std::memcpy(p, in.data(), in.size());
        out.size = static_cast<std::uint32_t>(in.size());
        out.array = p;
        p += in.size();
        break;
      }
      case ValueType::empty: break;
    }
  }
  ++chunk->live;
  ++live_;
  return rec;
}

void PendingStore::decode(const PendingRecord& rec, LlmRequest& out, MetadataEntry* metadata) noexcept {
  const Scalars* sc = scalars_of(&rec);
  out = LlmRequest{};
  copy_scalars(out, *sc);
  const StoredEntry* entries = entries_of(sc);
  // The tail starts after the aligned area, whose size the entries tell.
  std::size_t aligned = 0;
  for (std::size_t i = 0; i < rec.metadata; ++i) {
    const StoredEntry& e = entries[i];
    if (e.type == ValueType::string_array) aligned += e.size * sizeof(std::string_view);
    if (e.type == ValueType::int64_array || e.type == ValueType::float64_array) aligned += e.size * 8u;
  }
  const char* p = reinterpret_cast<const char*>(entries + rec.metadata) + aligned;
  std::size_t k = 0;
  for_each_string(out, [&](std::string_view& v) { v = take(p, sc->len[k++]); });
  for (std::size_t i = 0; i < rec.metadata; ++i) {
    const StoredEntry& e = entries[i];
    const std::string_view key = take(p, e.key_len);
    AttributeValue v;
    switch (e.type) {
      case ValueType::string: v = AttributeValue::string(take(p, e.size)); break;
      case ValueType::boolean: v = AttributeValue::boolean(e.b); break;
      case ValueType::int64: v = AttributeValue::int64(e.i); break;
      case ValueType::float64: v = AttributeValue::float64(e.d); break;
      case ValueType::string_array: {
        const auto* views = static_cast<const std::string_view*>(e.array);
        for (std::size_t x = 0; x < e.size; ++x) p += views[x].size();
        v = AttributeValue::strings({views, e.size});
        break;
      }
      case ValueType::int64_array: v = AttributeValue::int64s({static_cast<const std::int64_t*>(e.array), e.size}); break;
      case ValueType::float64_array: v = AttributeValue::float64s({static_cast<const double*>(e.array), e.size}); break;
      case ValueType::bool_array:
        v = AttributeValue::bools({static_cast<const bool*>(e.array), e.size});
        p += e.size;
        break;
      case ValueType::empty: break;
    }
    ::new (&metadata[i]) MetadataEntry{key, v};
  }
  out.metadata = std::span<const MetadataEntry>(metadata, rec.metadata);
}

void PendingStore::release(PendingRecord* record) noexcept {
  if (--record->refs != 0) return;
  PendingChunk* c = record->chunk;
  --live_;
  if (--c->live == 0 && c->retired) free_chunk(c);
}

}  // namespace tracecast::detail
