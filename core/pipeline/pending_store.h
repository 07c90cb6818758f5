// Where a request waits between routing and its destinations' batches: one copy per request,
// shared by every destination it goes to, sized by its content.
//
//   chunk (64 KiB, from the BufferPool)
//   +--------+-----------------------------+-----------------------------+---- ...
//   | header | record: header, PendingRef  | record ...                  |
//   | live=k | [refs], scalars, lengths,   |                             |
//   |        | metadata, arrays, strings   |                             |
//   +--------+-----------------------------+-----------------------------+---- ...
//
// Records are bump-allocated in the current chunk; a chunk goes back to the pool when the
// last of its records is released (every destination that took the request has encoded
// it). A record larger than a chunk gets a buffer of its own. Memory is therefore about
// (requests/s) x (longest linger) x (record bytes): it grows with pending data, never with
// the number of destinations. The PendingRefs of a record (one per destination) are the
// nodes of the destinations' pending lists, so queueing a request costs no allocation.
//
// Single-threaded: the pipeline worker owns it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "buffer_pool.h"
#include "tracecast/llm_request.h"

namespace tracecast::detail {

struct PendingChunk;
struct PendingRecord;

// One destination's claim on a record: a node of that destination's pending list.
struct PendingRef {
  PendingRecord* record = nullptr;
  PendingRef* next = nullptr;
};

// A stored request in compact form (lengths and offsets instead of views: about 60% of an
// LlmRequest copy for the canonical request); decode() gives the LlmRequest back.
struct PendingRecord {
  std::uint64_t id_seed = 0;    // IdGenerator seed: every destination maps the same ids
  PendingChunk* chunk = nullptr;
  std::uint32_t bytes = 0;      // bytes this record occupies (charged per destination)
  std::uint32_t refs = 0;       // destinations that have not encoded it yet
  std::uint32_t ref_slots = 0;  // PendingRefs laid out after the header (refs at store time)
  std::uint16_t metadata = 0;   // metadata entries stored
  std::uint8_t span_count = 0;  // spans it maps to (1..3)
  bool issues_counted = false;  // mapping issues counted once, at its first encoding
  PendingRef* ref_array() noexcept { return reinterpret_cast<PendingRef*>(this + 1); }
  const PendingRef* ref_array() const noexcept { return reinterpret_cast<const PendingRef*>(this + 1); }
};

class PendingStore {
 public:
  static constexpr std::size_t k_chunk_bytes = 64 * 1024;

  explicit PendingStore(BufferPool& pool) noexcept : pool_(pool) {}
  ~PendingStore();
  PendingStore(const PendingStore&) = delete;
  PendingStore& operator=(const PendingStore&) = delete;

  // Bytes store() would take for `request` with `refs` references.
  [[nodiscard]] static std::size_t bytes_for(const LlmRequest& request, std::uint32_t refs) noexcept;

  // Copies `request` (every view, metadata arrays included) with room for `refs` (>= 1)
  // PendingRefs (ref_array(), each pointing at the record, next = nullptr). nullptr when the
  // pool's budget has no room: nothing is stored. No allocation once the pool is warm.
  [[nodiscard]] PendingRecord* store(const LlmRequest& request, std::uint32_t refs, std::uint64_t id_seed);

  // Metadata entries a record keeps (more are left out; the mapping reads at most 64).
  static constexpr std::size_t k_max_metadata = 256;

  // Rebuilds the request: views into the record's bytes, metadata entries written to
  // `metadata` (room for k_max_metadata). Valid while the record is. No allocation.
  static void decode(const PendingRecord& record, LlmRequest& out, MetadataEntry* metadata) noexcept;

  // One destination is done with `record` (refs must be > 0). Its chunk returns to the pool
  // when its last record is released.
  void release(PendingRecord* record) noexcept;

  // Bytes of chunks held now (also in the pool's held()).
  [[nodiscard]] std::size_t held_bytes() const noexcept { return held_; }
  [[nodiscard]] std::uint64_t records_live() const noexcept { return live_; }

 private:
  PendingChunk* new_chunk(std::size_t bytes);
  void retire_current() noexcept;
  void free_chunk(PendingChunk* c) noexcept;

  BufferPool& pool_;
  PendingChunk* current_ = nullptr;
  char* bump_ = nullptr;
  char* end_ = nullptr;
  std::size_t held_ = 0;
  std::uint64_t live_ = 0;
};

}  // namespace tracecast::detail
