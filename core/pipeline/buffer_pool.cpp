#include "buffer_pool.h"

#include <algorithm>
#include <new>

namespace tracecast::detail {

BufferPool::BufferPool(std::size_t largest, std::size_t budget, std::size_t retain_bytes)
    : budget_(budget), retain_limit_(retain_bytes) {
  // 512, 768, 1024, 1536, ...: even steps are powers of two, odd ones 1.5x the one below.
  std::size_t pow = k_smallest;
  while (true) {
    class_bytes_.push_back(pow);
    if (pow >= largest) break;
    const std::size_t mid = pow + pow / 2;
    class_bytes_.push_back(mid);
    if (mid >= largest) break;
    pow <<= 1;
  }
  free_.assign(class_bytes_.size(), nullptr);
}

BufferPool::~BufferPool() {
  for (Buffer* head : free_) {
    while (head != nullptr) {
      Buffer* next = head->next_free;
      delete[] head->data;
      delete head;
      head = next;
    }
  }
}

int BufferPool::class_for(std::size_t bytes) const noexcept {
  const auto it = std::lower_bound(class_bytes_.begin(), class_bytes_.end(), bytes);
  return it == class_bytes_.end() ? -1 : static_cast<int>(it - class_bytes_.begin());
}

std::size_t BufferPool::charge_for(std::size_t bytes) const noexcept {
  const int c = class_for(bytes);
  return c < 0 ? 0 : class_bytes_[static_cast<std::size_t>(c)];
}

Buffer* BufferPool::acquire(std::size_t bytes) {
  const int c = class_for(bytes);
  if (c < 0) return nullptr;
  const std::size_t capacity = class_bytes_[static_cast<std::size_t>(c)];
  if (held_ + capacity > budget_) return nullptr;
  Buffer* b = free_[static_cast<std::size_t>(c)];
  if (b != nullptr) {
    free_[static_cast<std::size_t>(c)] = b->next_free;
    retained_ -= capacity;
  } else {
    b = new (std::nothrow) Buffer;
    if (b == nullptr) return nullptr;
    b->data = new (std::nothrow) char[capacity];
    if (b->data == nullptr) {
      delete b;
      return nullptr;
    }
    b->capacity = capacity;
    b->size_class = static_cast<std::uint8_t>(c);
  }
  b->next_free = nullptr;
  held_ += capacity;
  peak_ = std::max(peak_, held_);
  return b;
}

void BufferPool::release(Buffer* b) noexcept {
  held_ -= b->capacity;
  if (retained_ + b->capacity > retain_limit_) {
    delete[] b->data;
    delete b;
    return;
  }
  b->next_free = free_[b->size_class];
  free_[b->size_class] = b;
  retained_ += b->capacity;
}

}  // namespace tracecast::detail
