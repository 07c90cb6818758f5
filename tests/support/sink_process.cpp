#include "sink_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace tracecast::test {

namespace {

using steady = std::chrono::steady_clock;

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string sink_binary() {
  if (const char* bin = std::getenv("TRACECAST_SINK_BIN"); bin != nullptr && *bin != '\0') {
    return bin;
  }
  if (const char* dir = std::getenv("TRACECAST_BUILD_DIR"); dir != nullptr && *dir != '\0') {
    std::string path = std::string(dir) + "/tools/tracecast-sink";
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
#ifdef TRACECAST_SINK_PATH
  return TRACECAST_SINK_PATH;
#else
  throw std::runtime_error("tracecast-sink not found: set TRACECAST_BUILD_DIR or TRACECAST_SINK_BIN");
#endif
}

}  // namespace

std::string HttpResponse::header(std::string_view lowercase_name) const {
  for (const auto& [k, v] : headers) {
    if (k == lowercase_name) return v;
  }
  return {};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

HttpConnection::HttpConnection(std::uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const std::string err = std::strerror(errno);
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("connect 127.0.0.1:" + std::to_string(port) + ": " + err);
  }
  const int one = 1;
  (void)setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

HttpConnection::~HttpConnection() {
  if (fd_ >= 0) ::close(fd_);
}

void HttpConnection::send_request(std::string_view method, std::string_view path,
                                  const std::vector<std::string>& headers,
                                  std::string_view body) {
  std::string req;
  req.reserve(256 + body.size());
  req.append(method).append(" ").append(path).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  }
  for (const std::string& h : headers) req.append(h).append("\r\n");
  req.append("\r\n").append(body);
  std::size_t off = 0;
  while (off < req.size()) {
    const ssize_t n = ::send(fd_, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // the read side reports the failure
    }
    off += static_cast<std::size_t>(n);
  }
}

bool HttpConnection::readable_now() const {
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

HttpResponse HttpConnection::read_response(std::chrono::milliseconds timeout) {
  HttpResponse resp;
  const auto deadline = steady::now() + timeout;
  auto fill = [&]() -> bool {  // reads more into buffer_; false on close/timeout/error
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (left.count() <= 0) {
      resp.error = "timeout";
      return false;
    }
    pollfd p{fd_, POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc == 0) {
      resp.error = "timeout";
      return false;
    }
    if (rc < 0) {
      resp.error = std::string("poll: ") + std::strerror(errno);
      return false;
    }
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) {
      resp.error = "connection closed without a response";
      return false;
    }
    if (n < 0) {
      resp.error = errno == ECONNRESET ? "connection reset" : std::string("recv: ") + std::strerror(errno);
      return false;
    }
    buffer_.append(buf, static_cast<std::size_t>(n));
    return true;
  };
  std::size_t head_end = 0;
  while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) return resp;
  }
  const std::string head = buffer_.substr(0, head_end);
  buffer_.erase(0, head_end + 4);
  std::istringstream lines(head);
  std::string line;
  std::getline(lines, line);
  if (line.size() < 12 || line.compare(0, 5, "HTTP/") != 0) {
    resp.error = "bad status line: " + line;
    return resp;
  }
  const int status = std::atoi(line.c_str() + 9);
  std::size_t length = 0;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = lowercase(line.substr(0, colon));
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    if (name == "content-length") length = static_cast<std::size_t>(std::strtoull(value.c_str(), nullptr, 10));
    resp.headers.emplace_back(std::move(name), std::move(value));
  }
  while (buffer_.size() < length) {
    if (!fill()) return resp;
  }
  resp.body = buffer_.substr(0, length);
  buffer_.erase(0, length);
  resp.status = status;
  return resp;
}

HttpResponse HttpConnection::request(std::string_view method, std::string_view path,
                                     const std::vector<std::string>& headers,
                                     std::string_view body, std::chrono::milliseconds timeout) {
  send_request(method, path, headers, body);
  return read_response(timeout);
}

HttpResponse http_request(std::uint16_t port, std::string_view method, std::string_view path,
                          const std::vector<std::string>& headers, std::string_view body,
                          std::chrono::milliseconds timeout) {
  HttpConnection c(port);
  return c.request(method, path, headers, body, timeout);
}

HttpResponse post_json(std::uint16_t port, std::string_view body,
                       const std::vector<std::string>& headers, std::string_view path) {
  std::vector<std::string> h = headers;
  h.emplace_back("Content-Type: application/json");
  return http_request(port, "POST", path, h, body);
}

SinkStats parse_sink_stats(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) {
    throw std::runtime_error("sink /stats is not JSON: " + std::string(json));
  }
  SinkStats s;
  auto u64 = [&](const char* key, std::uint64_t& out) {
    std::uint64_t v = 0;
    if (doc[key].get_uint64().get(v) != simdjson::SUCCESS) {
      throw std::runtime_error(std::string("sink /stats lacks ") + key);
    }
    out = v;
  };
  u64("requests", s.requests);
  u64("spans", s.spans);
  u64("bytes_wire", s.bytes);
  u64("bytes_decompressed", s.bytes_decompressed);
  u64("connections", s.connections);
  u64("trace_connections", s.trace_connections);
  u64("invalid", s.invalid);
  u64("resets", s.resets);
  u64("delayed", s.delayed);
  u64("rejected_spans", s.rejected_spans);
  simdjson::dom::object obj;
  if (doc["status_counts"].get_object().get(obj) == simdjson::SUCCESS) {
    for (auto f : obj) {
      s.status_counts[std::atoi(std::string(f.key).c_str())] = f.value.get_uint64().value_unsafe();
    }
  }
  if (doc["by_service"].get_object().get(obj) == simdjson::SUCCESS) {
    for (auto f : obj) s.by_service[std::string(f.key)] = f.value.get_uint64().value_unsafe();
  }
  if (doc["by_attribute"].get_object().get(obj) == simdjson::SUCCESS) {
    for (auto f : obj) {
      auto& m = s.by_attribute[std::string(f.key)];
      simdjson::dom::object inner;
      if (f.value.get_object().get(inner) == simdjson::SUCCESS) {
        for (auto g : inner) m[std::string(g.key)] = g.value.get_uint64().value_unsafe();
      }
    }
  }
  std::string_view reason;
  if (doc["last_invalid_reason"].get_string().get(reason) == simdjson::SUCCESS) {
    s.last_invalid_reason = std::string(reason);
  }
  return s;
}

SinkProcess::SinkProcess(std::vector<std::string> extra_args) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/tracecast-sink-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  }
  dir_ = templ;
  const std::string port_file = dir_ + "/port";
  for (std::size_t i = 0; i + 1 < extra_args.size(); ++i) {
    if (extra_args[i] == "--spans-out") {
      if (extra_args[i + 1] == k_temp_spans_out) extra_args[i + 1] = dir_ + "/spans.jsonl";
      spans_out_ = extra_args[i + 1];
    }
  }
  std::vector<std::string> args = {sink_binary(), "--listen", "127.0.0.1:0", "--port-file",
                                   port_file, "--quiet",
                                   // dies with the test binary, even when a sanitizer or a
                                   // timeout kills it (PR_SET_PDEATHSIG: the spawning thread
                                   // must outlive the sink; tests construct it on theirs)
                                   "--parent-pid", std::to_string(::getpid())};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string log = log_path();
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  const int rc = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error("posix_spawn " + args[0] + ": " + std::strerror(rc));
  }
  const auto deadline = steady::now() + std::chrono::seconds(10);
  while (steady::now() < deadline) {
    const std::string text = read_file(port_file);
    if (!text.empty()) {
      port_ = static_cast<std::uint16_t>(std::strtoul(text.c_str(), nullptr, 10));
      if (port_ != 0) return;
    }
    int wstatus = 0;
    if (::waitpid(pid_, &wstatus, WNOHANG) == pid_) {
      pid_ = -1;
      exit_status_ = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
      const std::string message = "tracecast-sink exited (" + std::to_string(exit_status_) +
                                  ") before listening: " + this->log();
      remove_dir();
      throw std::runtime_error(message);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  stop();
  const std::string message =
      "tracecast-sink did not write its port file within 10 s: " + this->log();
  remove_dir();
  throw std::runtime_error(message);
}

SinkProcess::~SinkProcess() {
  stop();
  remove_dir();
}

void SinkProcess::remove_dir() {
  if (!dir_.empty()) {
    // Remove our temp files (the spans-out file only when it lives here).
    for (const char* name : {"/port", "/port.tmp", "/sink.log", "/spans.jsonl"}) {
      (void)::unlink((dir_ + name).c_str());
    }
    (void)::rmdir(dir_.c_str());
    dir_.clear();
  }
}

std::string SinkProcess::url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

SinkStats SinkProcess::stats() const {
  const HttpResponse r = http_request(port_, "GET", "/stats");
  if (r.status != 200) {
    throw std::runtime_error("tracecast-sink GET /stats failed: status " +
                             std::to_string(r.status) + " " + r.error);
  }
  return parse_sink_stats(r.body);
}

std::string SinkProcess::log() const { return read_file(log_path()); }

void SinkProcess::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const auto deadline = steady::now() + std::chrono::seconds(10);
  int wstatus = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) {
      pid_ = -1;
      return;
    }
    if (steady::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      (void)::waitpid(pid_, &wstatus, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  exit_status_ = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
  pid_ = -1;
}

}  // namespace tracecast::test
