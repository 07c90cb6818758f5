#include "tracecast/connection_test.h"

#include <curl/curl.h>

#include <algorithm>
#include <array>
#include <memory>
#include <random>

#include "curl_global.h"
#include "egress_gate.h"
#include "retry_policy.h"
#include "tracecast/presets.h"

namespace tracecast {

std::string_view to_string(ConnectionTestResult::Category category) noexcept {
  using C = ConnectionTestResult::Category;
  switch (category) {
    case C::ok: return "ok";
    case C::invalid_config: return "invalid_config";
    case C::dns: return "dns";
    case C::connect_refused: return "connect_refused";
    case C::tls: return "tls";
    case C::timeout: return "timeout";
    case C::unauthorized: return "unauthorized";
    case C::not_found: return "not_found";
    case C::payload_too_large: return "payload_too_large";
    case C::client_error: return "client_error";
    case C::server_error: return "server_error";
    case C::other: return "other";
    case C::blocked: return "blocked";
    case C::rate_limited: return "rate_limited";
  }
  return "other";
}

namespace {

std::string random_hex(std::mt19937_64& rng, std::size_t digits) {
  static constexpr std::string_view k_hex = "0123456789abcdef";
  std::string out;
  out.reserve(digits);
  while (out.size() < digits) {
    std::uint64_t v = rng();
    for (int i = 0; i < 16 && out.size() < digits; ++i, v >>= 4) out += k_hex[v & 15];
  }
  return out;
}

struct EasyDeleter {
  void operator()(CURL* e) const noexcept { curl_easy_cleanup(e); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};

constexpr std::size_t k_max_test_response = 4096;

// Keeps the first 4 KiB of the answer and then stops reading (an endless or 1 GB body would
// otherwise be read to the end of the timeout): curl ends with CURLE_WRITE_ERROR and the
// status decides.
std::size_t collect(char* data, std::size_t size, std::size_t count, void* user) noexcept {
  auto* out = static_cast<std::string*>(user);
  const std::size_t bytes = size * count;
  const std::size_t room = k_max_test_response - std::min(out->size(), k_max_test_response);
  try {
    out->append(data, std::min(bytes, room));
  } catch (...) {
  }
  return bytes > room ? 0 : bytes;
}

// Removes every secret of `config` from `text` (curl's messages quote hosts and ports only,
// but a user may have pasted a token into the URL).
std::string scrub(std::string text, const DestinationConfig& config) { return redact_secrets(std::move(text), config); }

// The receiver's partialSuccess errorMessage, as `: "text"`: untrusted bytes, so printable
// ASCII only (anything else, escapes included, shown as '?'), at most 200 bytes, then the
// destination's secrets scrubbed like every other message.
void append_partial_message(std::string& message, std::string_view response,
                            const detail::PartialSuccess& partial, const DestinationConfig& config) {
  if (partial.message_size == 0 || partial.message_offset > response.size()) return;
  constexpr std::size_t k_shown = 200;
  const std::string_view raw =
      response.substr(partial.message_offset, std::min(partial.message_size, k_shown));
  std::string text;
  text.reserve(raw.size() + 3);
  for (const char c : raw) text.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  if (partial.message_size > k_shown) text.append("...");
  message.append(": \"").append(scrub(std::move(text), config)).append("\"");
}

}  // namespace

std::string connection_hint(ConnectionTestResult::Category category, DestinationKind kind, int status, bool protobuf) {
  using C = ConnectionTestResult::Category;
  const PresetHints& own = preset_info(kind).hints;
  auto either = [](std::string_view preset, std::string_view generic) {
    return std::string(preset.empty() ? generic : preset);
  };
  switch (category) {
    case C::ok: return "Connection works: make a request and look for the trace (allow 1-2 minutes for propagation).";
    case C::invalid_config: return "Fix the settings named above, then test the connection again.";
    case C::dns: return either(own.dns, "Check the endpoint's host name: it does not resolve.");
    case C::connect_refused:
      return either(own.connect, "Check the endpoint's host and port: nothing accepts connections there (OTLP/HTTP "
                                 "listens on 4318 by default).");
    case C::tls:
      return "The server's TLS certificate was not accepted: check the URL's host name, or give the CA that signed it (ca_file / ca_path).";
    case C::timeout:
      return "No answer in time: check the URL, any firewall or proxy in between, that the receiver is up; or raise the timeout.";
    case C::unauthorized:
      return either(own.unauthorized,
                    "Check the credentials in the headers (e.g. Authorization): the endpoint refused them.");
    case C::not_found: return either(own.not_found, "Check the endpoint's path: OTLP/HTTP receives traces at /v1/traces.");
    case C::payload_too_large:
      return "The endpoint refused the request as too large (413): check its request size limit (a test trace is a "
             "few hundred bytes; batches are at most batch.max_bytes).";
    case C::client_error:
      if (status == 415 && !own.unsupported_media.empty()) return std::string(own.unsupported_media);
      if (status != 415 && !own.bad_request.empty()) return std::string(own.bad_request);
      return "The endpoint refused the request (HTTP " + std::to_string(status) +
             "): check that it is an OTLP/HTTP traces endpoint accepting " + (protobuf ? "protobuf" : "JSON") +
             " (the destination's protocol, " + (protobuf ? "http/protobuf" : "http/json") + ").";
    case C::rate_limited:
      return "The endpoint is rate-limiting (HTTP " + std::to_string(status) +
             ", too many requests): the gateway's sender retries with backoff; lower the traffic sent to it or "
             "raise its limit (for the account or the API key).";
    case C::server_error:
      if (status == 502 || status == 503 || status == 504) {
        // A gateway or load balancer in front of the receiver, or the receiver overloaded:
        // retried by the sender, usually temporary.
        return "The endpoint is temporarily unavailable (HTTP " + std::to_string(status) +
               "): the gateway's sender retries with backoff; if it persists, check that the receiver (or the "
               "proxy in front of it) is up and not overloaded.";
      }
      return "The endpoint failed (HTTP " + std::to_string(status) +
             "): a server-side problem; try again later or check the receiver's logs.";
    case C::other:
      return "Check that the endpoint is an OTLP/HTTP traces receiver.";
    case C::blocked:
      return std::string(egress_policy_hint());
  }
  return {};
}

namespace {

std::string hint_for(ConnectionTestResult::Category category, const DestinationConfig& config, int status) {
  return connection_hint(category, config.kind, status, is_protobuf_protocol(config.protocol));
}

ConnectionTestResult::Category category_for_network(NetworkError error) noexcept {
  using C = ConnectionTestResult::Category;
  switch (error) {
    case NetworkError::dns: return C::dns;
    case NetworkError::connect: return C::connect_refused;
    case NetworkError::tls: return C::tls;
    case NetworkError::timeout: return C::timeout;
    default: return C::other;
  }
}

ConnectionTestResult::Category category_for_curl(CURLcode code) noexcept {
  return category_for_network(detail::classify_curl_code(static_cast<int>(code)).error);
}

ConnectionTestResult::Category category_for_status(long status) noexcept {
  using C = ConnectionTestResult::Category;
  if (status >= 200 && status < 300) return C::ok;
  if (status == 401 || status == 403) return C::unauthorized;
  if (status == 404) return C::not_found;
  if (status == 413) return C::payload_too_large;
  if (status == 429) return C::rate_limited;
  if (status >= 400 && status < 500) return C::client_error;
  if (status >= 500 && status < 600) return C::server_error;
  return C::other;
}

}  // namespace

ConnectionTestResult::Category classify_send_outcome(int http_status, NetworkError network_error) noexcept {
  // An error after the status line (a body cut short, a trickle past the timeout) is what
  // failed, not the status: "200" must not read as "connection works".
  return http_status != 0 && network_error == NetworkError::none ? category_for_status(http_status)
                                                                 : category_for_network(network_error);
}

namespace {

// The protobuf form of the JSON test span above, written field by field (transport does not
// link the encoder). Field numbers: opentelemetry-proto trace/v1, common/v1, resource/v1.
void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void put_bytes(std::string& out, int field, std::string_view bytes) {
  put_varint(out, static_cast<std::uint64_t>(field) << 3 | 2);
  put_varint(out, bytes.size());
  out += bytes;
}
void put_fixed64(std::string& out, int field, std::uint64_t v) {
  put_varint(out, static_cast<std::uint64_t>(field) << 3 | 1);
  for (int i = 0; i < 8; ++i, v >>= 8) out += static_cast<char>(v & 0xFF);
}
std::string random_bytes(std::mt19937_64& rng, std::size_t n) {
  std::string s;
  while (s.size() < n) {
    const std::uint64_t v = rng();
    for (int i = 0; i < 8 && s.size() < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xFF);
  }
  if (s.find_first_not_of('\0') == std::string::npos) s[0] = 1;  // never all zero
  return s;
}

using Attributes = std::vector<std::pair<std::string, std::string>>;

std::string protobuf_test_body(std::mt19937_64& rng, std::uint64_t start, std::uint64_t end, const Attributes& extra) {
  std::string any_string, kv, resource, scope, any_bool, attr, span, scope_spans, resource_spans, body;
  put_bytes(any_string, 1, "tracecast-connection-test");         // AnyValue.string_value
  put_bytes(kv, 1, "service.name");                              // KeyValue.key
  put_bytes(kv, 2, any_string);                                  // KeyValue.value
  put_bytes(resource, 1, kv);                                    // Resource.attributes
  for (const auto& [key, value] : extra) {                       // the preset's attributes
    std::string v, k;
    put_bytes(v, 1, value);
    put_bytes(k, 1, key);
    put_bytes(k, 2, v);
    put_bytes(resource, 1, k);
  }
  put_bytes(scope, 1, "tracecast");                              // InstrumentationScope.name
  put_bytes(scope, 2, "0.1.0");                                  // .version
  any_bool = std::string("\x10\x01", 2);                         // AnyValue.bool_value = true
  put_bytes(attr, 1, "tracecast.connection_test");
  put_bytes(attr, 2, any_bool);
  put_bytes(span, 1, random_bytes(rng, 16));                     // Span.trace_id
  put_bytes(span, 2, random_bytes(rng, 8));                      // Span.span_id
  put_bytes(span, 5, "tracecast connection test");               // Span.name
  span += std::string("\x30\x03", 2);                            // Span.kind = CLIENT
  put_fixed64(span, 7, start);                                   // Span.start_time_unix_nano
  put_fixed64(span, 8, end);                                     // Span.end_time_unix_nano
  put_bytes(span, 9, attr);                                      // Span.attributes
  put_bytes(scope_spans, 1, scope);                              // ScopeSpans.scope
  put_bytes(scope_spans, 2, span);                               // ScopeSpans.spans
  put_bytes(resource_spans, 1, resource);                        // ResourceSpans.resource
  put_bytes(resource_spans, 2, scope_spans);                     // ResourceSpans.scope_spans
  put_bytes(body, 1, resource_spans);                            // ExportTraceServiceRequest
  return body;
}

// RFC 8259 string escaping (the preset's resource attribute values are user text).
void append_json_string(std::string& out, std::string_view s) {
  static constexpr std::string_view k_hex = "0123456789abcdef";
  out += '"';
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += "\\u00";
      out += k_hex[u >> 4];
      out += k_hex[u & 15];
    } else {
      out += c;
    }
  }
  out += '"';
}

}  // namespace

std::string connection_test_body(bool protobuf) { return connection_test_body(protobuf, ConnectionTestPayload::one_span, {}); }

std::string connection_test_body(bool protobuf, ConnectionTestPayload payload, const Attributes& resource_attributes) {
  if (payload == ConnectionTestPayload::empty) return protobuf ? std::string() : std::string(R"({"resourceSpans":[]})");
  std::random_device seed;
  std::mt19937_64 rng((static_cast<std::uint64_t>(seed()) << 32) ^ seed());
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  if (protobuf) {
    return protobuf_test_body(rng, static_cast<std::uint64_t>(now - 1000000), static_cast<std::uint64_t>(now),
                              resource_attributes);
  }
  const std::string start = std::to_string(now - 1000000);
  const std::string end = std::to_string(now);
  std::string body;
  body.reserve(640);
  body += R"({"resourceSpans":[{"resource":{"attributes":[)";
  body += R"({"key":"service.name","value":{"stringValue":"tracecast-connection-test"}})";
  for (const auto& [key, value] : resource_attributes) {
    body += R"(,{"key":)";
    append_json_string(body, key);
    body += R"(,"value":{"stringValue":)";
    append_json_string(body, value);
    body += "}}";
  }
  body += R"(]},)";
  body += R"("scopeSpans":[{"scope":{"name":"tracecast","version":"0.1.0"},"spans":[{)";
  body += R"("traceId":")" + random_hex(rng, 32) + R"(","spanId":")" + random_hex(rng, 16) + R"(",)";
  body += R"("name":"tracecast connection test","kind":3,)";
  body += R"("startTimeUnixNano":")" + start + R"(","endTimeUnixNano":")" + end + R"(",)";
  body += R"("attributes":[{"key":"tracecast.connection_test","value":{"boolValue":true}}],)";
  body += R"("status":{}}]}]}]})";
  return body;
}

ConnectionTestResult test_connection(const DestinationConfig& config, std::chrono::milliseconds timeout,
                                     const EgressPolicy& egress, ConnectionTestPayload payload) {
  using C = ConnectionTestResult::Category;
  ConnectionTestResult result;
  if (std::string error = egress.validate(); !error.empty()) {
    result.category = C::invalid_config;
    result.message = "egress." + error;
    result.hint = hint_for(C::invalid_config, config, 0);
    return result;
  }
  const std::vector<ValidationIssue> issues = validate(config);
  for (const auto& issue : issues) {
    if (issue.warning) continue;
    result.category = C::invalid_config;
    result.message = issue.path + ": " + issue.message;
    result.hint = hint_for(C::invalid_config, config, 0);
    return result;
  }
  if (!detail::ensure_curl_global_init()) {
    result.category = C::other;
    result.message = "curl could not be initialised";
    result.hint = hint_for(C::other, config, 0);
    return result;
  }
  const ResolvedDestination resolved = resolve(config);
  std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
  if (!easy) {
    result.message = "curl could not be initialised";
    result.hint = hint_for(C::other, config, 0);
    return result;
  }
  curl_slist* raw_headers = nullptr;
  for (const auto& line : resolved.header_lines) {
    curl_slist* next = curl_slist_append(raw_headers, line.c_str());
    if (next == nullptr) break;
    raw_headers = next;
  }
  if (curl_slist* next = curl_slist_append(raw_headers, "Expect:")) raw_headers = next;
  if (payload == ConnectionTestPayload::empty) {
    if (curl_slist* next = curl_slist_append(raw_headers, "X-Test-Connection: true")) raw_headers = next;
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers(raw_headers);

  const std::string body = connection_test_body(resolved.protobuf, payload, resolved.resource_attributes);
  std::string response;
  std::array<char, CURL_ERROR_SIZE> error{};
  const auto limit = std::max<std::chrono::milliseconds>(
      std::chrono::milliseconds(1), std::min(timeout, config.timeout));
  CURL* e = easy.get();
  curl_easy_setopt(e, CURLOPT_URL, resolved.url.c_str());
  curl_easy_setopt(e, CURLOPT_POST, 1L);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(e, CURLOPT_USERAGENT, "tracecast/0.1 (connection test)");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(limit.count()));
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(limit.count()));
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &collect);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, error.data());
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, config.insecure_skip_verify ? 0L : 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, config.insecure_skip_verify ? 0L : 2L);
  if (!config.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, config.ca_file.c_str());
  if (!config.ca_path.empty()) curl_easy_setopt(e, CURLOPT_CAPATH, config.ca_path.c_str());
  curl_easy_setopt(e, CURLOPT_PROXY, "");  // never an environment proxy (egress policy)
  const detail::EgressGate gate(egress);
  detail::SocketGate socket_gate{&gate, gate.host_allowed(detail::url_host(resolved.url)), false};
  if (gate.enforcing()) {
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &detail::egress_open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &socket_gate);
  }

  CURLcode code = curl_easy_perform(e);
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  const bool body_cut = code == CURLE_WRITE_ERROR && status > 0 && response.size() >= k_max_test_response;
  if (body_cut) code = CURLE_OK;
  if (code != CURLE_OK && socket_gate.blocked) {
    result.category = C::blocked;
    result.message = "refused by the egress policy: no connection was attempted";
    result.hint = hint_for(C::blocked, config, 0);
    return result;
  }
  if (code != CURLE_OK) {
    result.category = category_for_curl(code);
    result.http_status = 0;
    result.message = scrub(error[0] != '\0' ? std::string(error.data()) : std::string(curl_easy_strerror(code)), config);
    result.hint = hint_for(result.category, config, 0);
    return result;
  }
  result.http_status = static_cast<int>(status);
  result.category = category_for_status(status);
  result.message = "HTTP " + std::to_string(status);
  if (result.category == C::ok) {
    const detail::PartialSuccess partial =
        body_cut ? detail::PartialSuccess{} : detail::parse_partial_success(response, 1, resolved.protobuf);
    if (body_cut) {
      result.message += " with an answer over 4 KiB (not read further)";
    } else if (partial.rejected > 0) {
      result.category = C::client_error;
      result.message += ": the test span was rejected (partialSuccess.rejectedSpans=" +
                        std::to_string(partial.rejected) + ")";
      append_partial_message(result.message, response, partial, config);
    } else if (partial.has_message) {
      result.message += " with a partialSuccess warning";
      append_partial_message(result.message, response, partial, config);
    }
  }
  result.hint = hint_for(result.category, config, result.http_status);
  return result;
}

TestedDestination add_destination_if_reachable(Sender& sender, const DestinationConfig& config,
                                               std::chrono::milliseconds timeout) {
  TestedDestination out;
  out.test = test_connection(config, timeout, sender.egress_policy());
  if (!out.test.ok()) {
    out.added.issues = validate(config);
    return out;
  }
  out.added = sender.add_destination(config);
  return out;
}

}  // namespace tracecast
