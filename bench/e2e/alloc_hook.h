// Heap allocations through the global operator new, counted by the replacement in
// alloc_hook.cpp (linked into tracecast-bench-e2e only).
#pragma once

#include <cstdint>

namespace tracecast::bench {

// Allocations by every thread since the process started. Thread-safe. No allocation.
[[nodiscard]] std::uint64_t heap_allocations() noexcept;

}  // namespace tracecast::bench
