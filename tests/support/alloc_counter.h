// Counts heap allocations made through the global operator new (replaced in
// alloc_counter.cpp): the tests' zero-allocation checks and tracecast-bench-e2e's allocations
// per span. Link tracecast_alloc_counter to use it. curl and other C code allocate with malloc,
// which this does not see.
#pragma once

#include <cstdint>

namespace tracecast::test {

// Allocations by the calling thread since it started. Thread-safe (thread-local). No allocation.
[[nodiscard]] std::uint64_t thread_allocations() noexcept;
// Allocations by every thread since the process started. Thread-safe. No allocation.
[[nodiscard]] std::uint64_t total_allocations() noexcept;
// Bytes held now by operator new allocations of every thread (malloc_usable_size of each
// block, so allocator rounding is included; malloc'ed memory such as curl's is not). For
// memory bounds: take the difference around what is measured. Thread-safe. No allocation.
[[nodiscard]] std::int64_t live_bytes() noexcept;

// Counts allocations made on the calling thread within its lifetime.
class AllocationScope {
 public:
  AllocationScope() noexcept : start_(thread_allocations()) {}
  [[nodiscard]] std::uint64_t count() const noexcept { return thread_allocations() - start_; }

 private:
  std::uint64_t start_;
};

}  // namespace tracecast::test
