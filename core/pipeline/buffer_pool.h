// Byte buffers for the pipeline's pending records and request bodies, charged to one budget.
//
// Size classes are spaced by sqrt(2) from 512 B (512, 768, 1 KiB, 1.5 KiB, 2 KiB, ...) up to
// the largest size asked for at construction, so a buffer holds at most ~1.5x the bytes it
// was asked for, and the budget is charged by the class's capacity: what a batch waiting for
// retry holds is about its compressed size, not a fixed maximum. Freed buffers go back to
// their class's free list (intrusive: no vector to grow) up to `retain_bytes` in all; beyond
// that they are returned to the allocator, so a past burst does not pin memory forever.
//
// Single-threaded (the pipeline worker owns it). acquire() allocates only when its class has
// no free buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tracecast::detail {

struct Buffer {
  char* data = nullptr;
  std::size_t capacity = 0;
  Buffer* next_free = nullptr;
  std::uint8_t size_class = 0;
};

class BufferPool {
 public:
  static constexpr std::size_t k_smallest = 512;

  // Classes up to the first one >= `largest`; at most `budget` bytes held at once; at most
  // `retain_bytes` kept on free lists.
  BufferPool(std::size_t largest, std::size_t budget, std::size_t retain_bytes);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of at least `bytes` (its class's capacity), or nullptr when `bytes` is larger
  // than the largest class or the budget has no room.
  [[nodiscard]] Buffer* acquire(std::size_t bytes);
  void release(Buffer* b) noexcept;

  // Capacity acquire(bytes) would charge (0 when no class holds `bytes`).
  [[nodiscard]] std::size_t charge_for(std::size_t bytes) const noexcept;
  [[nodiscard]] std::size_t held() const noexcept { return held_; }
  [[nodiscard]] std::size_t peak() const noexcept { return peak_; }
  [[nodiscard]] std::size_t retained() const noexcept { return retained_; }
  [[nodiscard]] std::size_t budget() const noexcept { return budget_; }
  [[nodiscard]] std::size_t largest() const noexcept { return class_bytes_.back(); }

 private:
  [[nodiscard]] int class_for(std::size_t bytes) const noexcept;

  std::size_t budget_;
  std::size_t retain_limit_;
  std::size_t held_ = 0;
  std::size_t peak_ = 0;
  std::size_t retained_ = 0;
  std::vector<std::size_t> class_bytes_;
  std::vector<Buffer*> free_;  // one intrusive list head per class
};

}  // namespace tracecast::detail
