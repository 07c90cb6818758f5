// Counts heap allocations made through the global operator new (replaced in
// alloc_counter.cpp). Link tracecast_alloc_counter into a test to use it.
#pragma once

#include <cstdint>

namespace tracecast::test {

// Allocations by the calling thread since it started. Thread-safe (thread-local).
std::uint64_t thread_allocations() noexcept;
// Allocations by every thread since the process started. Thread-safe.
std::uint64_t total_allocations() noexcept;

// Counts allocations made on the calling thread within its lifetime.
class AllocationScope {
 public:
  AllocationScope() noexcept : start_(thread_allocations()) {}
  std::uint64_t count() const noexcept { return thread_allocations() - start_; }

 private:
  std::uint64_t start_;
};

}  // namespace tracecast::test
