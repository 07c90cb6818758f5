#include "nginx_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "raw_http_server.h"

extern char** environ;

namespace tracecast::test {
namespace {

int run(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  posix_spawn_file_actions_t quiet;  // openssl's progress dots and prompts: not test output
  posix_spawn_file_actions_init(&quiet);
  posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
  const int rc = posix_spawnp(&pid, argv[0], &quiet, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&quiet);
  if (rc != 0) return -1;
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool can_connect(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

std::string find_program(const char* name, const std::vector<std::string>& dirs) {
  for (const auto& d : dirs) {
    const std::string p = d + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return {};
}

std::string nginx_binary() { return find_program("nginx", {"/usr/sbin", "/usr/bin", "/usr/local/sbin"}); }

}  // namespace

bool NginxProcess::available() {
  return !nginx_binary().empty() &&
         !find_program("openssl", {"/usr/bin", "/usr/local/bin"}).empty();
}

NginxProcess::NginxProcess(Options options) {
  tls_ = options.tls;
  const std::string nginx = nginx_binary();
  if (nginx.empty()) throw std::runtime_error("nginx not installed (tools/setup.sh)");
  char tmpl[] = "/tmp/tracecast-nginx-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  if (options.tls) {
    const int rc = run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", dir_ + "/key.pem", "-out", dir_ + "/cert.pem", "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-batch"});
    if (rc != 0) throw std::runtime_error("openssl req failed");
  }
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = free_port();
    std::ofstream conf(dir_ + "/nginx.conf");
    conf << "daemon off;\nmaster_process off;\nworker_processes 1;\n"
         << "error_log " << dir_ << "/error.log warn;\npid " << dir_ << "/nginx.pid;\n"
         << "events { worker_connections 1024; }\n"
         << "http {\n"
         << "  log_format tc '$connection $server_protocol $status $request_method';\n"
         << "  access_log " << dir_ << "/access.log tc;\n"
         << "  client_body_temp_path " << dir_ << "/body;\n"
         << "  proxy_temp_path " << dir_ << "/proxy;\n"
         << "  fastcgi_temp_path " << dir_ << "/fastcgi;\n"
         << "  uwsgi_temp_path " << dir_ << "/uwsgi;\n"
         << "  scgi_temp_path " << dir_ << "/scgi;\n"
         << "  keepalive_requests 100000;\n"
         << "  client_max_body_size 32m;\n"
         << "  server {\n"
         << "    listen 127.0.0.1:" << port_ << (options.tls ? " ssl" : "") << (options.http2 ? " http2" : "")
         << ";\n";
    if (options.tls) {
      conf << "    ssl_certificate " << dir_ << "/cert.pem;\n"
           << "    ssl_certificate_key " << dir_ << "/key.pem;\n";
    }
    conf << "    location / { default_type application/json; return " << options.status << " '"
         << options.body << "'; }\n"
         << "  }\n}\n";
    conf.close();
    std::vector<std::string> args = {nginx, "-p", dir_, "-c", dir_ + "/nginx.conf"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (posix_spawn(&pid_, nginx.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      throw std::runtime_error("cannot start nginx");
    }
    for (int i = 0; i < 250; ++i) {  // up to 5 s
      if (can_connect(port_)) return;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;  // exited (port taken?): try another port
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  std::ifstream log(dir_ + "/error.log");
  std::stringstream text;
  text << log.rdbuf();
  throw std::runtime_error("nginx did not start: " + text.str());
}

NginxProcess::~NginxProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    int status = 0;
    bool exited = false;
    for (int i = 0; i < 250 && !exited; ++i) {
      exited = ::waitpid(pid_, &status, WNOHANG) == pid_;
      if (!exited) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!exited) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string NginxProcess::url(const std::string& path) const {
  return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
}

std::vector<std::string> NginxProcess::access_log() const {
  std::vector<std::string> lines;
  std::ifstream in(dir_ + "/access.log");
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace tracecast::test
