#include "resource_usage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tracecast::load {

namespace {

// "<key>:   1234 kB" from /proc/self/status, in bytes; 0 when absent.
std::uint64_t status_kb_field(const char* key) noexcept {
  const int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[8192];
  std::size_t len = 0;
  for (;;) {
    const ssize_t n = ::read(fd, buf + len, sizeof buf - 1 - len);
    if (n <= 0) break;
    len += static_cast<std::size_t>(n);
    if (len >= sizeof buf - 1) break;
  }
  ::close(fd);
  buf[len] = '\0';
  const std::size_t key_len = std::strlen(key);
  for (const char* line = buf; line != nullptr && *line != '\0';) {
    if (std::strncmp(line, key, key_len) == 0 && line[key_len] == ':') {
      return std::strtoull(line + key_len + 1, nullptr, 10) * 1024;
    }
    line = std::strchr(line, '\n');
    if (line != nullptr) ++line;
  }
  return 0;
}

}  // namespace

std::uint64_t process_cpu_ns() noexcept {
  rusage ru{};
  if (::getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  auto ns = [](const timeval& tv) {
    return static_cast<std::uint64_t>(tv.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(tv.tv_usec) * 1000ULL;
  };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

std::uint64_t peak_rss_bytes() noexcept {
  rusage ru{};
  if (::getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return static_cast<std::uint64_t>(ru.ru_maxrss) * 1024;  // Linux: kilobytes
}

std::uint64_t rss_high_water_bytes() noexcept {
  const std::uint64_t hwm = status_kb_field("VmHWM");
  return hwm != 0 ? hwm : peak_rss_bytes();
}

std::uint64_t current_rss_bytes() noexcept { return status_kb_field("VmRSS"); }

std::uint64_t threads_cpu_ns_by_name(const char* prefix) noexcept {
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return 0;
  const std::size_t prefix_len = std::strlen(prefix);
  std::uint64_t total = 0;
  auto read_small = [](const char* path, char* buf, std::size_t cap) -> std::size_t {
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    const ssize_t n = ::read(fd, buf, cap - 1);
    ::close(fd);
    const std::size_t len = n > 0 ? static_cast<std::size_t>(n) : 0;
    buf[len] = '\0';
    return len;
  };
  while (const dirent* e = ::readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[300];
    char buf[128];
    std::snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    if (read_small(path, buf, sizeof buf) < prefix_len || std::strncmp(buf, prefix, prefix_len) != 0) continue;
    std::snprintf(path, sizeof path, "/proc/self/task/%s/schedstat", e->d_name);
    if (read_small(path, buf, sizeof buf) > 0) total += std::strtoull(buf, nullptr, 10);
  }
  ::closedir(dir);
  return total;
}

bool reset_rss_high_water() noexcept {
  const int fd = ::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, "5", 1) == 1;
  ::close(fd);
  return ok;
}

}  // namespace tracecast::load
