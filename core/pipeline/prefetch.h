// Asking for an object's cache lines ahead of the work on it.
#pragma once

#include <cstddef>

namespace tracecast::detail {

// Every line of *p, for writing. For per-destination state that is cold at 10,000+
// destinations: a loop that works on many of them asks for a group's lines first, so the
// misses overlap instead of stalling one after another (README "Design", "Cold state is asked
// for in groups").
template <class T>
inline void prefetch_whole(const T* p) noexcept {
  const char* bytes = reinterpret_cast<const char*>(p);
  for (std::size_t line = 0; line < sizeof(T); line += 64) __builtin_prefetch(bytes + line, 1, 3);
}

}  // namespace tracecast::detail
