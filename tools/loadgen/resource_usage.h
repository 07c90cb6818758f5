// Process CPU time and resident memory, for "CPU ns per delivered span" and "peak RSS".
// Part of the load-generation library (tools/loadgen, target tracecast_loadgen) that
// tracecast-load and the end-to-end benchmark share.
#pragma once

#include <cstdint>

namespace tracecast::load {

// User + system CPU time of the whole process (every thread), getrusage(RUSAGE_SELF), in ns.
// Thread-safe. No allocation. 0 if getrusage fails.
[[nodiscard]] std::uint64_t process_cpu_ns() noexcept;

// Peak resident set size over the process's life, getrusage ru_maxrss, in bytes.
// Thread-safe. No allocation.
[[nodiscard]] std::uint64_t peak_rss_bytes() noexcept;

// The kernel's resident high-water mark (VmHWM in /proc/self/status), in bytes; unlike
// ru_maxrss it can be reset (reset_rss_high_water). Falls back to peak_rss_bytes().
// Thread-safe. No heap allocation.
[[nodiscard]] std::uint64_t rss_high_water_bytes() noexcept;

// Current resident set size (VmRSS), bytes; 0 if unreadable. Thread-safe. No heap allocation.
[[nodiscard]] std::uint64_t current_rss_bytes() noexcept;

// CPU time (ns) of this process's threads whose name (/proc/self/task/*/comm) starts with
// `prefix`, e.g. "tracecast-work" (the pipeline's worker) or "tracecast-send" (the sender),
// from /proc/self/task/*/schedstat (ns resolution). 0 when none matches. Thread-safe. No
// operator-new allocation (opendir mallocs).
[[nodiscard]] std::uint64_t threads_cpu_ns_by_name(const char* prefix) noexcept;

// Resets VmHWM to the current RSS (writes "5" to /proc/self/clear_refs, Linux >= 4.0), so
// that one process can measure the peak of several runs one after the other. false when the
// kernel refuses. Thread-safe. No heap allocation.
bool reset_rss_high_water() noexcept;

}  // namespace tracecast::load
