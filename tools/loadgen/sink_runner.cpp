#include "sink_runner.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <simdjson.h>

#include "bounded_file.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace tracecast::load {

namespace {

using steady = std::chrono::steady_clock;

// The sink's port file: a port number, so a few bytes; anything larger is not one.
std::string read_whole(const std::string& path) {
  std::string text;
  if (!tools::read_bounded_file(path, 64, text).empty()) return {};
  return text;
}

bool executable(const std::string& path) { return !path.empty() && ::access(path.c_str(), X_OK) == 0; }

std::string self_dir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  std::string path(buf, static_cast<std::size_t>(n));
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

// One GET on a fresh connection; the body, or false with `error`.
bool http_get(std::uint16_t port, const char* path, std::string& body, std::string& error,
              std::chrono::milliseconds timeout) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    error = "connect 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  const std::string req = std::string("GET ") + path +
                          " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  std::size_t off = 0;
  while (off < req.size()) {
    const ssize_t n = ::send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = std::string("send: ") + std::strerror(errno);
      ::close(fd);
      return false;
    }
    off += static_cast<std::size_t>(n);
  }
  std::string in;
  const auto deadline = steady::now() + timeout;
  std::size_t head_end = std::string::npos;
  std::size_t content_length = std::string::npos;
  for (;;) {
    if (head_end == std::string::npos && (head_end = in.find("\r\n\r\n")) != std::string::npos) {
      // Content-Length (case-insensitive search over the head).
      std::string head = in.substr(0, head_end);
      for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const std::size_t cl = head.find("content-length:");
      if (cl != std::string::npos) content_length = std::strtoull(head.c_str() + cl + 15, nullptr, 10);
    }
    if (head_end != std::string::npos && content_length != std::string::npos &&
        in.size() >= head_end + 4 + content_length) {
      break;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (left.count() <= 0) {
      error = "timeout reading the response";
      ::close(fd);
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) continue;  // the deadline check above ends the loop
    char buf[16384];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // closed: the body is what we have
    in.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (in.compare(0, 9, "HTTP/1.1 ") != 0 && in.compare(0, 9, "HTTP/1.0 ") != 0) {
    error = "no HTTP response";
    return false;
  }
  const int status = std::atoi(in.c_str() + 9);
  if (status != 200 || head_end == std::string::npos) {
    error = "HTTP status " + std::to_string(status);
    return false;
  }
  body = in.substr(head_end + 4, content_length == std::string::npos ? std::string::npos : content_length);
  return true;
}

}  // namespace

std::string find_sink_binary(std::string_view fallback) {
  if (const char* bin = std::getenv("TRACECAST_SINK_BIN"); bin != nullptr && *bin != '\0') return bin;
  const std::string dir = self_dir();
  if (!dir.empty()) {
    if (std::string p = dir + "/tracecast-sink"; executable(p)) return p;
    if (std::string p = dir + "/../tools/tracecast-sink"; executable(p)) return p;
  }
  return std::string(fallback);
}

std::vector<std::string> split_args(std::string_view text) {
  std::vector<std::string> out;
  std::string cur;
  bool have = false;
  char quote = 0;
  for (const char c : text) {
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        cur += c;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      have = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (have) out.push_back(std::move(cur));
      cur.clear();
      have = false;
    } else {
      cur += c;
      have = true;
    }
  }
  if (have) out.push_back(std::move(cur));
  return out;
}

bool parse_sink_counters(std::string_view json, SinkCounters& out, std::string& error) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) {
    error = "sink /stats is not JSON";
    return false;
  }
  SinkCounters s;
  const std::pair<const char*, std::uint64_t*> fields[] = {
      {"requests", &s.requests},  {"spans", &s.spans},     {"bytes_wire", &s.bytes_wire},
      {"invalid", &s.invalid},    {"resets", &s.resets},   {"delayed", &s.delayed},
      {"rejected_spans", &s.rejected_spans}};
  for (const auto& [key, dst] : fields) {
    if (doc[key].get_uint64().get(*dst) != simdjson::SUCCESS) {
      error = std::string("sink /stats lacks ") + key;
      return false;
    }
  }
  bool count_only = false;
  if (doc["count_only"].get_bool().get(count_only) == simdjson::SUCCESS) s.count_only = count_only;
  simdjson::dom::object codes;
  if (doc["status_counts"].get_object().get(codes) == simdjson::SUCCESS) {
    for (auto field : codes) {
      std::uint64_t n = 0;
      if (field.value.get_uint64().get(n) == simdjson::SUCCESS) {
        s.status_counts[std::atoi(std::string(field.key).c_str())] = n;
      }
    }
  }
  out = std::move(s);
  return true;
}

std::unique_ptr<SinkRunner> SinkRunner::start(const Options& options, std::string& error) {
  std::unique_ptr<SinkRunner> self(new SinkRunner());
  const std::string binary = options.binary.empty() ? find_sink_binary() : options.binary;
  if (!executable(binary)) {
    // Names the path tried only when there was one (an empty one means nothing was found).
    error = binary.empty() ? std::string("tracecast-sink not found (looked next to this binary; set TRACECAST_SINK_BIN)")
                           : "tracecast-sink not found at '" + binary + "' (not an executable file)";
    return nullptr;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/tracecast-load-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    error = std::string("mkdtemp: ") + std::strerror(errno);
    return nullptr;
  }
  self->dir_ = templ;
  const std::string port_file = self->dir_ + "/port";
  const std::string log = self->dir_ + "/sink.log";
  self->log_fd_ = ::open(log.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (self->log_fd_ < 0) {
    error = "open " + log + ": " + std::strerror(errno);
    return nullptr;  // the destructor removes the directory
  }
  std::vector<std::string> args = {binary, "--listen", "127.0.0.1:0", "--port-file", port_file, "--quiet"};
  if (options.exit_with_parent) {
    args.push_back("--parent-pid");
    args.push_back(std::to_string(::getpid()));
  }
  args.insert(args.end(), options.extra_args.begin(), options.extra_args.end());
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  // The child writes through its own dup of our descriptor (dup2 clears O_CLOEXEC on it).
  posix_spawn_file_actions_adddup2(&actions, self->log_fd_, 1);
  posix_spawn_file_actions_adddup2(&actions, self->log_fd_, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  if (options.own_process_group) {
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
  }
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    error = "posix_spawn " + binary + ": " + std::strerror(rc);
    return nullptr;
  }
  self->pid_ = pid;
  const auto deadline = steady::now() + options.start_timeout;
  while (steady::now() < deadline) {
    // The sink writes the port file atomically (rename), so a non-empty read is complete.
    const std::string text = read_whole(port_file);
    const unsigned long port = text.empty() ? 0 : std::strtoul(text.c_str(), nullptr, 10);
    if (port != 0 && port < 65536) {
      self->port_ = static_cast<std::uint16_t>(port);
      self->remove_temp_dir();
      return self;
    }
    int wstatus = 0;
    if (::waitpid(pid, &wstatus, WNOHANG) == pid) {
      self->pid_ = -1;
      error = "tracecast-sink exited before listening: " + self->log_tail();
      return nullptr;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  error = "tracecast-sink did not write its port file in time: " + self->log_tail();
  return nullptr;  // the destructor stops it
}

SinkRunner::~SinkRunner() {
  stop();
  remove_temp_dir();
  if (log_fd_ >= 0) ::close(log_fd_);
}

void SinkRunner::remove_temp_dir() noexcept {
  if (dir_.empty()) return;
  for (const char* name : {"/port", "/port.tmp", "/sink.log"}) (void)::unlink((dir_ + name).c_str());
  (void)::rmdir(dir_.c_str());
  dir_.clear();
}

std::string SinkRunner::traces_url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/v1/traces";
}

bool SinkRunner::counters(SinkCounters& out, std::string& error) const {
  std::string body;
  if (!http_get(port_, "/stats", body, error, std::chrono::milliseconds(5000))) {
    error = "tracecast-sink GET /stats: " + error;
    return false;
  }
  return parse_sink_counters(body, out, error);
}

std::string SinkRunner::log_tail(std::size_t max_bytes) const {
  std::string text;
  if (log_fd_ < 0) return text;
  const off_t end = ::lseek(log_fd_, 0, SEEK_END);
  if (end <= 0) return text;
  const off_t from = end > static_cast<off_t>(max_bytes) ? end - static_cast<off_t>(max_bytes) : 0;
  text.resize(static_cast<std::size_t>(end - from));
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::pread(log_fd_, text.data() + got, text.size() - got, from + static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  return text;
}

void SinkRunner::stop(std::chrono::milliseconds grace) noexcept {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = steady::now() + grace;
  int wstatus = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) break;
    if (steady::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      (void)::waitpid(pid_, &wstatus, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pid_ = -1;
}

}  // namespace tracecast::load
