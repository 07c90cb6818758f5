// Runs a private nginx (Debian's nginx-light) on 127.0.0.1 for TLS and HTTP/2 tests: a
// self-signed certificate generated with openssl into a temp dir, `listen ... ssl http2`,
// `return 200 '{}'` for any request. The access log records one line per request:
// "<connection serial> <protocol> <status> <method>", so tests can count connections and see
// HTTP/2. Stopped (and its directory removed) by the destructor.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tracecast::test {

class NginxProcess {
 public:
  struct Options {
    bool tls = true;
    bool http2 = true;
    int status = 200;            // what `return` answers
    std::string body = "{}";
  };
  // Throws std::runtime_error when nginx or openssl is missing or nginx does not come up.
  explicit NginxProcess(Options options);
  NginxProcess() : NginxProcess(Options{}) {}
  ~NginxProcess();
  NginxProcess(const NginxProcess&) = delete;
  NginxProcess& operator=(const NginxProcess&) = delete;

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  // https://127.0.0.1:<port><path> (http:// when tls is off).
  [[nodiscard]] std::string url(const std::string& path = "/v1/traces") const;
  // The PEM certificate (self-signed, SAN IP:127.0.0.1 and DNS:localhost): the CA to trust.
  [[nodiscard]] std::string ca_file() const { return dir_ + "/cert.pem"; }
  // Access log lines so far (nginx writes them as each request ends).
  [[nodiscard]] std::vector<std::string> access_log() const;

  // True if nginx and openssl can be run here (tests skip otherwise).
  [[nodiscard]] static bool available();

 private:
  std::string dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
  bool tls_ = true;
};

}  // namespace tracecast::test
