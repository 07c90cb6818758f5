#include "pending_store.h"

#include <cstring>
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

template <class F>
void for_each_string(const LlmRequest& r, F&& f) noexcept {
  f(r.account);
  f(r.request_id);
  f(r.operation);
  f(r.provider);
  f(r.requested_model);
  f(r.response_model);
  f(r.response_id);
  f(r.finish_reason);
  f(r.user);
  f(r.session_id);
  f(r.prompt);
  f(r.completion);
  f(r.error_message);
}

// Layout after the PendingRecord: [PendingRef x refs][MetadataEntry x n][8-aligned arrays]
// [bool arrays and string bytes]. Returns the total.
struct Sizes {
  std::size_t aligned = 0;  // record + refs + entries + 8-byte-element arrays
  std::size_t bytes = 0;    // unaligned tail
};

Sizes sizes_of(const LlmRequest& r, std::uint32_t refs) noexcept {
  Sizes s;
  s.aligned = sizeof(PendingRecord) + refs * sizeof(PendingRef) + r.metadata.size() * sizeof(MetadataEntry);
  for_each_string(r, [&](std::string_view v) { s.bytes += v.size(); });
  for (const MetadataEntry& e : r.metadata) {
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

// Copies `v` to `p` and advances it.
std::string_view put(char*& p, std::string_view v) noexcept {
  if (v.empty()) return {};
  std::memcpy(p, v.data(), v.size());
  const std::string_view out(p, v.size());
  p += v.size();
  return out;
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
  rec->request = r;  // scalars; every view is replaced below
  rec->id_seed = id_seed;
  rec->chunk = chunk;
  rec->bytes = static_cast<std::uint32_t>(total);
  rec->refs = refs;
  PendingRef* ref = rec->ref_array();
  for (std::uint32_t i = 0; i < refs; ++i) ::new (&ref[i]) PendingRef{rec, nullptr};
  auto* meta = reinterpret_cast<MetadataEntry*>(ref + refs);
  char* aligned = reinterpret_cast<char*>(meta + r.metadata.size());
  char* p = at + s.aligned;  // unaligned tail: bool arrays and string bytes

  LlmRequest& out = rec->request;
  out.account = put(p, r.account);
  out.request_id = put(p, r.request_id);
  out.operation = put(p, r.operation);
  out.provider = put(p, r.provider);
  out.requested_model = put(p, r.requested_model);
  out.response_model = put(p, r.response_model);
  out.response_id = put(p, r.response_id);
  out.finish_reason = put(p, r.finish_reason);
  out.user = put(p, r.user);
  out.session_id = put(p, r.session_id);
  out.prompt = put(p, r.prompt);
  out.completion = put(p, r.completion);
  out.error_message = put(p, r.error_message);
  for (std::size_t i = 0; i < r.metadata.size(); ++i) {
    const MetadataEntry& e = r.metadata[i];
    const std::string_view key = put(p, e.key);
    const AttributeValue& v = e.value;
    AttributeValue copy = v;
    switch (v.type()) {
      case ValueType::string: copy = AttributeValue::string(put(p, v.as_string())); break;
      case ValueType::string_array: {
        auto* views = reinterpret_cast<std::string_view*>(aligned);
        const auto in = v.as_strings();
        for (std::size_t k = 0; k < in.size(); ++k) ::new (&views[k]) std::string_view(put(p, in[k]));
        aligned += in.size() * sizeof(std::string_view);
        copy = AttributeValue::strings({views, in.size()});
        break;
      }
      case ValueType::int64_array: {
        const auto in = v.as_int64s();
        if (!in.empty()) std::memcpy(aligned, in.data(), in.size() * 8);
        copy = AttributeValue::int64s({reinterpret_cast<const std::int64_t*>(aligned), in.size()});
        aligned += in.size() * 8;
        break;
      }
      case ValueType::float64_array: {
        const auto in = v.as_doubles();
        if (!in.empty()) std::memcpy(aligned, in.data(), in.size() * 8);
        copy = AttributeValue::float64s({reinterpret_cast<const double*>(aligned), in.size()});
        aligned += in.size() * 8;
        break;
      }
      case ValueType::bool_array: {
        const auto in = v.as_bools();
        if (!in.empty()) std::memcpy(p, in.data(), in.size());
        copy = AttributeValue::bools({reinterpret_cast<const bool*>(p), in.size()});
        p += in.size();
        break;
      }
      default: break;  // scalars carry no pointers
    }
    ::new (&meta[i]) MetadataEntry{key, copy};
  }
  out.metadata = std::span<const MetadataEntry>(meta, r.metadata.size());
  ++chunk->live;
  ++live_;
  return rec;
}

void PendingStore::release(PendingRecord* record) noexcept {
  if (--record->refs != 0) return;
  PendingChunk* c = record->chunk;
  --live_;
  if (--c->live == 0 && c->retired) free_chunk(c);
}

}  // namespace tracecast::detail
