// The egress policy: which addresses a destination may connect to.
//
// A gateway's customers type in their own destination URLs. Without a policy the gateway
// would POST their spans (with their credentials) to any address it can reach: its own
// loopback services, the cloud metadata address (169.254.169.254), the operator's private
// network. By default a destination may connect only to a public unicast address; the
// operator's own collectors are exempted by address (allow_cidrs) or by host name
// (allow_hosts).
//
// Where it is enforced: on the address curl actually connects to, after name resolution,
// for every new connection (CURLOPT_OPENSOCKETFUNCTION), in the Sender and in
// test_connection(). Unusual literals (http://2130706433/, http://0x7f.1/, http://127.1/,
// http://[::ffff:127.0.0.1]/), names that resolve to an internal address and DNS answers
// that change between a test and a later send are all refused the same way: the check sees
// the socket address, not the text of the URL. A pooled connection was checked when it was
// opened; requests on it are not checked again (the check costs per connection, not per
// request). Proxies: tracecast never uses one (http_proxy, https_proxy, all_proxy and
// no_proxy in the environment are ignored), so a proxy is no way around the policy.
//
// No curl in this header.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tracecast/settings.h"

namespace tracecast {

struct EgressPolicy {
  // true (default): only public unicast addresses, plus the allow-lists below. false: every
  // address is allowed; for a deployment where only the operator configures destinations
  // (never when customers type in URLs).
  bool enforce = true;
  // Addresses allowed besides public unicast ones, as CIDRs ("10.20.0.0/16", "127.0.0.1/32",
  // "fd00::/8") or single addresses ("10.20.0.5", "::1"). An IPv4 entry also matches the
  // IPv4-mapped IPv6 form of its addresses. At most 256 entries.
  std::vector<std::string> allow_cidrs;
  // Destination host names allowed whatever they resolve to: "otel-collector.internal", or
  // "*.corp.example" for every name below corp.example (not corp.example itself).
  // Compared case-insensitively with the URL's host, without a trailing dot. The DNS of
  // these names is trusted. At most 256 entries, each a DNS name: labels of 1..63 letters,
  // digits, '-' or '_' between dots, at most 253 bytes (digits and dots only must be an IPv4
  // address: "300.1.1.1" and "127.1" are refused), optionally after "*.".
  std::vector<std::string> allow_hosts;

  // Empty when valid, else "<field>: <reason>" (field "allow_cidrs[2]", "allow_hosts[0]"):
  // first_error_text() of validate(EgressPolicy). Thread-safe (pure). Allocates.
  [[nodiscard]] std::string validate() const;
};

// The issues of a policy: a list past 256 entries ("allow_cidrs", too_long), an entry that is
// not an address or CIDR ("allow_cidrs[2]", invalid) or not a host name pattern
// ("allow_hosts[0]"). Thread-safe (pure). Allocates.
[[nodiscard]] std::vector<ValidationIssue> validate(const EgressPolicy& policy);

// The one parser of an egress allow-list as users write it (TRACECAST_EGRESS_ALLOW and the
// tools' --egress-allow): comma-separated entries, blanks around each trimmed, empty ones
// skipped ("10.0.0.0/8, 127.0.0.1 ,otel.internal"). An entry with a '/' or that is an IP
// address goes to policy.allow_cidrs, any other to policy.allow_hosts (appended to what is
// there). Empty when every entry is valid, else "'<entry>': <reason>" naming the first bad
// entry as written (trimmed); on error `policy` is left unchanged. Thread-safe. Allocates.
[[nodiscard]] std::string parse_egress_allow(std::string_view list, EgressPolicy& policy);

// What kind of address an IP is (IANA special-purpose registries, RFC 6890 and successors).
// Everything but public_unicast is refused by an enforcing policy unless allow-listed.
enum class AddressClass : std::uint8_t {
  public_unicast,
  unspecified,    // 0.0.0.0/8, ::
  loopback,       // 127.0.0.0/8, ::1
  private_net,    // RFC 1918: 10/8, 172.16/12, 192.168/16
  shared_cgnat,   // 100.64.0.0/10 (RFC 6598)
  link_local,     // 169.254.0.0/16 (cloud metadata), fe80::/10
  multicast,      // 224.0.0.0/4, ff00::/8
  broadcast,      // 255.255.255.255
  documentation,  // 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20
  unique_local,   // fc00::/7
  reserved,       // 240/4, 192.0.0/24, 198.18/15, 192.88.99/24, 2001::/23, 64:ff9b:1::/48,
                  // 100::/64, fec0::/10, ::/96 (IPv4-compatible), anything outside 2000::/3
  invalid,        // not an IP address literal (classify_address only)
};
[[nodiscard]] std::string_view to_string(AddressClass c) noexcept;

// Classifies a numeric IP literal in the standard dotted-quad or IPv6 text form
// ("10.0.0.1", "::ffff:127.0.0.1"; not the shortened forms like "127.1" that URLs accept:
// curl resolves those to the dotted form before connecting, and the policy checks that).
// IPv4-mapped (::ffff:0:0/96), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) addresses are
// classified by the IPv4 address they embed. Thread-safe. No allocation.
[[nodiscard]] AddressClass classify_address(std::string_view ip) noexcept;

// One-line statement of the policy for error messages and the connection test's hint.
// Names the policy, never an address. Thread-safe. No allocation.
[[nodiscard]] std::string_view egress_policy_hint() noexcept;

}  // namespace tracecast
