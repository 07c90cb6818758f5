#include "egress_gate.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace tracecast {

std::string_view to_string(AddressClass c) noexcept {
  switch (c) {
    case AddressClass::public_unicast: return "public_unicast";
    case AddressClass::unspecified: return "unspecified";
    case AddressClass::loopback: return "loopback";
    case AddressClass::private_net: return "private_net";
    case AddressClass::shared_cgnat: return "shared_cgnat";
    case AddressClass::link_local: return "link_local";
    case AddressClass::multicast: return "multicast";
    case AddressClass::broadcast: return "broadcast";
    case AddressClass::documentation: return "documentation";
    case AddressClass::unique_local: return "unique_local";
    case AddressClass::reserved: return "reserved";
    case AddressClass::invalid: return "invalid";
  }
  return "invalid";
}

std::string_view egress_policy_hint() noexcept {
  return "The egress policy refused this destination's address: only public unicast addresses are "
         "allowed for customer destinations (not loopback, private, link-local or metadata, CGNAT, "
         "multicast, reserved or documentation ranges). An operator's own collector is allowed "
         "through the policy's allow_cidrs or allow_hosts.";
}

namespace {

constexpr std::size_t k_max_entries = 256;
constexpr std::size_t k_max_host_bytes = 253;

struct ParsedCidr {
  std::array<std::uint8_t, 16> bytes{};
  unsigned prefix = 0;
};

// "a.b.c.d[/n]" or "v6[/n]"; IPv4 stored IPv4-mapped with prefix + 96.
bool parse_cidr(std::string_view text, ParsedCidr& out) noexcept {
  const auto slash = text.find('/');
  const std::string_view address = text.substr(0, slash);
  if (address.empty() || address.size() > 45) return false;
  char buf[46];
  std::memcpy(buf, address.data(), address.size());
  buf[address.size()] = '\0';
  unsigned max_prefix = 0;
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, buf, &v4) == 1) {
    out.bytes = {};
    out.bytes[10] = out.bytes[11] = 0xff;
    std::memcpy(out.bytes.data() + 12, &v4, 4);
    max_prefix = 32;
  } else if (inet_pton(AF_INET6, buf, &v6) == 1) {
    std::memcpy(out.bytes.data(), &v6, 16);
    max_prefix = 128;
  } else {
    return false;
  }
  unsigned prefix = max_prefix;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return false;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (ec != std::errc() || ptr != digits.data() + digits.size() || prefix > max_prefix) return false;
  }
  out.prefix = max_prefix == 32 ? prefix + 96 : prefix;
  return true;
}

std::string_view host_pattern_error(std::string_view host) noexcept {
  if (host.starts_with("*.")) host.remove_prefix(2);
  return detail::host_name_error(host, /*numeric_ipv4_forms=*/false);
}

char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != b[i]) return false;  // b is lowercase
  }
  return true;
}

bool prefix_matches(const std::uint8_t* a, const std::uint8_t* b, unsigned bits) noexcept {
  const unsigned whole = bits / 8;
  if (std::memcmp(a, b, whole) != 0) return false;
  const unsigned rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

std::uint32_t read_v4(const std::uint8_t* p) noexcept {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

}  // namespace

std::vector<ValidationIssue> validate(const EgressPolicy& policy) {
  std::vector<ValidationIssue> issues;
  const std::pair<const char*, const std::vector<std::string>*> lists[] = {{"allow_cidrs", &policy.allow_cidrs},
                                                                           {"allow_hosts", &policy.allow_hosts}};
  for (const auto& [name, list] : lists) {
    if (list->size() > k_max_entries) {
      issues.push_back({name,
                        "at most " + std::to_string(k_max_entries) + " entries, got " + std::to_string(list->size()),
                        false, IssueCode::too_long});
    }
  }
  if (!issues.empty()) return issues;
  for (std::size_t i = 0; i < policy.allow_cidrs.size(); ++i) {
    ParsedCidr parsed;
    if (!parse_cidr(policy.allow_cidrs[i], parsed)) {
      issues.push_back({"allow_cidrs[" + std::to_string(i) + "]",
                        "must be an IP address or CIDR (\"10.0.0.0/8\", \"127.0.0.1/32\", \"fd00::/8\")"});
    }
  }
  for (std::size_t i = 0; i < policy.allow_hosts.size(); ++i) {
    if (const std::string_view why = host_pattern_error(policy.allow_hosts[i]); !why.empty()) {
      issues.push_back({"allow_hosts[" + std::to_string(i) + "]", std::string(why).append(" (or \"*.\" + a domain)")});
    }
  }
  return issues;
}

std::string EgressPolicy::validate() const { return first_error_text(tracecast::validate(*this)); }

std::string parse_egress_allow(std::string_view list, EgressPolicy& policy) {
  constexpr std::string_view k_blanks = " \t\r\n";
  EgressPolicy out = policy;
  while (!list.empty()) {
    const std::size_t comma = list.find(',');
    std::string_view entry = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    const std::size_t first = entry.find_first_not_of(k_blanks);
    if (first == std::string_view::npos) continue;
    entry = entry.substr(first, entry.find_last_not_of(k_blanks) + 1 - first);
    const bool cidr = entry.find('/') != std::string_view::npos || classify_address(entry) != AddressClass::invalid;
    std::vector<std::string>& target = cidr ? out.allow_cidrs : out.allow_hosts;
    if (target.size() >= k_max_entries) {
      return "at most " + std::to_string(k_max_entries) +
             (cidr ? " addresses or CIDRs" : " host names") + ", got more";
    }
    // The entry alone through validate(): its reason (the message; the field is the list's).
    EgressPolicy one;
    (cidr ? one.allow_cidrs : one.allow_hosts).emplace_back(entry);
    if (const std::vector<ValidationIssue> issues = validate(one); !issues.empty()) {
      // Appended, not `"'" + std::string(...)`: GCC 12 at -O3 flags that with a false
      // -Wrestrict (GCC PR 105329), an error in developer mode.
      std::string message;
      message.append(1, '\'').append(entry).append("': ").append(issues.front().message);
      return message;
    }
    target.emplace_back(entry);
  }
  policy = std::move(out);
  return {};
}

AddressClass classify_address(std::string_view ip) noexcept {
  if (ip.empty() || ip.size() > 45) return AddressClass::invalid;
  char buf[46];
  std::memcpy(buf, ip.data(), ip.size());
  buf[ip.size()] = '\0';
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, buf, &v4) == 1) {
    return detail::classify_v4(read_v4(reinterpret_cast<const std::uint8_t*>(&v4)));
  }
  if (inet_pton(AF_INET6, buf, &v6) == 1) return detail::classify_v6(reinterpret_cast<const std::uint8_t*>(&v6));
  return AddressClass::invalid;
}

namespace detail {

AddressClass classify_v4(std::uint32_t a) noexcept {
  using C = AddressClass;
  const auto in = [a](std::uint32_t net, unsigned bits) {
    const std::uint32_t mask = bits == 0 ? 0 : ~std::uint32_t{0} << (32 - bits);
    return (a & mask) == net;
  };
  if (in(0x00000000, 8)) return C::unspecified;     // 0.0.0.0/8 "this network"
  if (in(0x0A000000, 8)) return C::private_net;     // 10/8
  if (in(0x64400000, 10)) return C::shared_cgnat;   // 100.64/10
  if (in(0x7F000000, 8)) return C::loopback;        // 127/8
  if (in(0xA9FE0000, 16)) return C::link_local;     // 169.254/16 (metadata)
  if (in(0xAC100000, 12)) return C::private_net;    // 172.16/12
  if (in(0xC0000000, 24)) return C::reserved;       // 192.0.0/24 IETF protocol assignments
  if (in(0xC0000200, 24)) return C::documentation;  // 192.0.2/24 TEST-NET-1
  if (in(0xC0586300, 24)) return C::reserved;       // 192.88.99/24 6to4 relay anycast
  if (in(0xC0A80000, 16)) return C::private_net;    // 192.168/16
  if (in(0xC6120000, 15)) return C::reserved;       // 198.18/15 benchmarking
  if (in(0xC6336400, 24)) return C::documentation;  // 198.51.100/24 TEST-NET-2
  if (in(0xCB007100, 24)) return C::documentation;  // 203.0.113/24 TEST-NET-3
  if (in(0xE0000000, 4)) return C::multicast;       // 224/4
  if (a == 0xFFFFFFFF) return C::broadcast;
  if (in(0xF0000000, 4)) return C::reserved;        // 240/4
  return C::public_unicast;
}

AddressClass classify_v6(const std::uint8_t* b) noexcept {
  using C = AddressClass;
  static constexpr std::uint8_t k_zero[16] = {};
  static constexpr std::uint8_t k_nat64[12] = {0x00, 0x64, 0xff, 0x9b};
  static constexpr std::uint8_t k_nat64_local[6] = {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01};
  if (std::memcmp(b, k_zero, 15) == 0 && (b[15] == 0 || b[15] == 1)) {
    return b[15] == 0 ? C::unspecified : C::loopback;
  }
  if (std::memcmp(b, k_zero, 10) == 0 && b[10] == 0xff && b[11] == 0xff) return classify_v4(read_v4(b + 12));
  if (std::memcmp(b, k_zero, 12) == 0) return C::reserved;  // IPv4-compatible (deprecated)
  if (std::memcmp(b, k_nat64, 12) == 0) return classify_v4(read_v4(b + 12));
  if (std::memcmp(b, k_nat64_local, 6) == 0) return C::reserved;  // RFC 8215 local-use NAT64
  if (b[0] == 0xff) return C::multicast;
  if ((b[0] & 0xfe) == 0xfc) return C::unique_local;
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return C::link_local;
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return C::reserved;  // site-local (deprecated)
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return C::documentation;
  if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xf0) == 0) return C::documentation;  // 3fff::/20
  if (b[0] == 0x20 && b[1] == 0x02) return classify_v4(read_v4(b + 2));              // 6to4
  if (b[0] == 0x20 && b[1] == 0x01 && (b[2] & 0xfe) == 0) return C::reserved;        // 2001::/23
  if ((b[0] & 0xe0) != 0x20) return C::reserved;  // outside 2000::/3 global unicast
  return C::public_unicast;
}

EgressGate::EgressGate(const EgressPolicy& policy) : enforce_(policy.enforce) {
  if (std::string error = policy.validate(); !error.empty()) throw std::invalid_argument("egress." + error);
  for (const auto& text : policy.allow_cidrs) {
    ParsedCidr parsed;
    (void)parse_cidr(text, parsed);
    cidrs_.push_back(Cidr{parsed.bytes, parsed.prefix});
  }
  for (const auto& host : policy.allow_hosts) {
    std::string h;
    std::string_view rest = host;
    if (rest.starts_with("*.")) rest.remove_prefix(1);  // keep the dot: ".corp.example"
    while (rest.size() > 1 && rest.back() == '.') rest.remove_suffix(1);
    h.reserve(rest.size());
    for (char c : rest) h += lower(c);
    hosts_.push_back(std::move(h));
  }
}

bool EgressGate::host_allowed(std::string_view host) const noexcept {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  while (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty()) return false;
  for (const auto& entry : hosts_) {
    if (entry.front() == '.') {
      if (host.size() > entry.size() && iequals(host.substr(host.size() - entry.size()), entry)) return true;
    } else if (iequals(host, entry)) {
      return true;
    }
  }
  return false;
}

bool EgressGate::in_allow_list(const std::uint8_t* v6) const noexcept {
  return std::any_of(cidrs_.begin(), cidrs_.end(),
                     [v6](const Cidr& c) { return prefix_matches(v6, c.bytes.data(), c.prefix); });
}

namespace {
// The socket address as 16 bytes (IPv4 as IPv4-mapped IPv6); its family, or 0 for unix
// sockets, short lengths and anything else (never for a destination).
int address_bytes(const sockaddr* address, std::size_t length, std::uint8_t (&v6)[16]) noexcept {
  if (address->sa_family == AF_INET && length >= sizeof(sockaddr_in)) {
    sockaddr_in in{};
    std::memcpy(&in, address, sizeof in);
    v6[10] = v6[11] = 0xff;
    std::memcpy(v6 + 12, &in.sin_addr, 4);
    return AF_INET;
  }
  if (address->sa_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    sockaddr_in6 in6{};
    std::memcpy(&in6, address, sizeof in6);
    std::memcpy(v6, &in6.sin6_addr, 16);
    return AF_INET6;
  }
  return 0;
}
}  // namespace

bool EgressGate::address_allowed(const sockaddr* address, std::size_t length) const noexcept {
  if (!enforce_) return true;
  std::uint8_t v6[16] = {};
  const int family = address_bytes(address, length, v6);
  if (family == 0) return false;
  const AddressClass cls = family == AF_INET ? classify_v4(read_v4(v6 + 12)) : classify_v6(v6);
  return cls == AddressClass::public_unicast || in_allow_list(v6);
}

bool EgressGate::address_listed(const sockaddr* address, std::size_t length) const noexcept {
  if (!enforce_) return true;
  std::uint8_t v6[16] = {};
  return address_bytes(address, length, v6) != 0 && in_allow_list(v6);
}

curl_socket_t egress_open_socket(void* clientp, curlsocktype purpose, curl_sockaddr* address) noexcept {
  auto* gate = static_cast<SocketGate*>(clientp);
  if (purpose != CURLSOCKTYPE_IPCXN || address == nullptr) return CURL_SOCKET_BAD;
  if (gate != nullptr && gate->gate != nullptr && !gate->host_allowed &&
      !gate->gate->address_allowed(&address->addr, address->addrlen)) {
    gate->blocked = true;
    return CURL_SOCKET_BAD;
  }
  return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

std::string_view host_name_error(std::string_view host, bool numeric_ipv4_forms) noexcept {
  constexpr std::string_view k_rule =
      "must be a host name of 1..253 bytes: labels of 1..63 letters, digits, '-' or '_' between dots";
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.size() > 1 && host.back() == '.') host.remove_suffix(1);  // the absolute form "host.example."
  if (host.empty() || host.size() > k_max_host_bytes) return k_rule;
  char buf[k_max_host_bytes + 1];
  std::memcpy(buf, host.data(), host.size());
  buf[host.size()] = '\0';
  if (host.find(':') != std::string_view::npos) {
    in6_addr v6{};
    return inet_pton(AF_INET6, buf, &v6) == 1 ? std::string_view{} : std::string_view("is not a valid IPv6 address");
  }
  // Digits and dots only: an address or nothing (a name like this would be read as one).
  if (host.find_first_not_of("0123456789.") == std::string_view::npos) {
    in_addr v4{};
    const bool ok = numeric_ipv4_forms ? inet_aton(buf, &v4) != 0 : inet_pton(AF_INET, buf, &v4) == 1;
    return ok ? std::string_view{} : std::string_view("is neither an IPv4 address (four numbers 0..255) nor a host name");
  }
  std::size_t label = 0;
  for (const char c : host) {
    if (c == '.') {
      if (label == 0) return k_rule;  // empty label: leading or double dot
      label = 0;
      continue;
    }
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
    if (!ok || ++label > 63) return k_rule;
  }
  return label == 0 ? k_rule : std::string_view{};  // "host.." leaves an empty label
}

std::string url_host(const std::string& url) {
  struct UrlDeleter {
    void operator()(CURLU* u) const noexcept { curl_url_cleanup(u); }
  };
  std::unique_ptr<CURLU, UrlDeleter> handle(curl_url());
  if (!handle) return {};
  if (curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) return {};
  char* host = nullptr;
  if (curl_url_get(handle.get(), CURLUPART_HOST, &host, 0) != CURLUE_OK || host == nullptr) return {};
  std::string out(host);
  curl_free(host);
  if (out.size() >= 2 && out.front() == '[' && out.back() == ']') out = out.substr(1, out.size() - 2);
  for (char& c : out) c = lower(c);
  return out;
}

}  // namespace detail
}  // namespace tracecast
