// Internal: the compiled egress policy and the curl socket callback that enforces it.
// Not installed. See tracecast/egress.h for the rules.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <curl/curl.h>

#include "tracecast/egress.h"

namespace tracecast::detail {

// IPv4 in host byte order.
[[nodiscard]] AddressClass classify_v4(std::uint32_t v4) noexcept;
// 16 bytes, network order.
[[nodiscard]] AddressClass classify_v6(const std::uint8_t* v6) noexcept;

// An EgressPolicy parsed once: CIDRs as bytes, host names lowercased. Immutable after
// construction, so any thread may read it.
class EgressGate {
 public:
  // A gate that allows everything (enforce = false).
  EgressGate() = default;
  // Throws std::invalid_argument with policy.validate()'s text when the policy is invalid.
  explicit EgressGate(const EgressPolicy& policy);

  [[nodiscard]] bool enforcing() const noexcept { return enforce_; }
  // The URL host (as written in the URL, brackets of an IPv6 literal removed or not) is
  // allow-listed by name. Allocation-free.
  [[nodiscard]] bool host_allowed(std::string_view host) const noexcept;
  // The socket address may be connected to (public unicast, or in allow_cidrs). Unknown
  // families are refused. No allocation: ~tens of ns.
  [[nodiscard]] bool address_allowed(const sockaddr* address, std::size_t length) const noexcept;
  // The operator vouches for the address: it is in allow_cidrs, or the policy is not enforced
  // (a deployment whose destinations the operator supplies). A public address a customer
  // gave is not. The built-in HTTP/1.1 client sends trains (pipelining) only to these.
  [[nodiscard]] bool address_listed(const sockaddr* address, std::size_t length) const noexcept;

 private:
  struct Cidr {
    std::array<std::uint8_t, 16> bytes{};  // IPv4 entries as IPv4-mapped IPv6
    unsigned prefix = 0;                   // over the 128 bits
  };
  [[nodiscard]] bool in_allow_list(const std::uint8_t* v6) const noexcept;
  bool enforce_ = false;
  std::vector<Cidr> cidrs_;
  std::vector<std::string> hosts_;  // lowercased; "*.x" kept as ".x"
};

// What the socket callback needs; one per transfer (sender) or per call (connection test).
struct SocketGate {
  const EgressGate* gate = nullptr;
  bool host_allowed = false;  // the destination's host is allow-listed by name
  bool blocked = false;       // set when an address was refused during this attempt
};

// CURLOPT_OPENSOCKETFUNCTION: clientp is a SocketGate*. Refused address: sets blocked and
// returns CURL_SOCKET_BAD (curl then tries the next address, or fails the transfer with
// CURLE_COULDNT_CONNECT without any connect() having been made).
curl_socket_t egress_open_socket(void* clientp, curlsocktype purpose, curl_sockaddr* address) noexcept;

// Why `host` is not a host name, "" when it is one: dot-separated labels of 1..63 letters,
// digits, '-' or '_' (no empty label: no leading or double dot; one trailing dot, the
// absolute form, is allowed), at most 253
// bytes; a name of digits and dots only must be an IPv4 address ("300.1.1.1", "1..2" are
// refused), dotted-quad only, or with `numeric_ipv4_forms` any form inet_aton() and curl read
// as one ("127.1", "0177.0.0.1": an endpoint's host, which the egress policy then classifies
// by the address). An IPv6 literal (with ':', brackets removed) passes when it parses. The
// one check of host names in allow-lists (EgressPolicy::validate) and endpoints (validate()).
// Thread-safe (pure), no allocation.
[[nodiscard]] std::string_view host_name_error(std::string_view host, bool numeric_ipv4_forms) noexcept;

// Host of an http(s) URL as curl will see it (lowercased, IPv6 brackets removed); empty
// when it does not parse. Allocates.
[[nodiscard]] std::string url_host(const std::string& url);

}  // namespace tracecast::detail
