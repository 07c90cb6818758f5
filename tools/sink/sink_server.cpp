#include "sink_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <mutex>
#include <queue>
#include <string_view>
#include <thread>
#include <vector>

#include "decompress.h"
#include "otlp_protobuf.h"
#include "otlp_reader.h"

namespace tracecast::sink {

namespace {

using clock_type = std::chrono::steady_clock;

constexpr unsigned k_max_status = 600;
constexpr unsigned k_connection_timeout_s = 300;
constexpr std::size_t k_connection_memory = 256 * 1024;  // MHD read buffer per connection

enum class route { traces, stats, healthz, not_found };

// Per TCP connection (MHD socket context).
struct ConnState {
  bool carried_trace = false;
};

// Per HTTP request (MHD con_cls).
struct RequestCtx {
  route where = route::not_found;
  bool is_post = false;
  bool over_limit = false;
  bool suspended = false;
  bool reset = false;
  std::atomic<bool> drop{false};  // set by the delay thread at shutdown
  std::uint64_t wire_bytes = 0;
  std::string body;
  unsigned status = 0;
  std::string response;  // JSON body (protobuf when the request was protobuf)
  bool protobuf = false;  // the request's Content-Type is application/x-protobuf
  std::string retry_after;
  bool www_authenticate = false;
  bool allow_post = false;
};

struct DelayEntry {
  clock_type::time_point due;
  MHD_Connection* connection;
  RequestCtx* ctx;
  bool operator>(const DelayEntry& o) const noexcept { return due > o.due; }
};

std::string base64(std::string_view in) {
  static constexpr char k_chars[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16U) |
                       (static_cast<unsigned char>(in[i + 1]) << 8U) |
                       static_cast<unsigned char>(in[i + 2]);
    out += k_chars[(v >> 18U) & 63U];
    out += k_chars[(v >> 12U) & 63U];
    out += k_chars[(v >> 6U) & 63U];
    out += k_chars[v & 63U];
  }
  if (i + 1 == in.size()) {
    const unsigned v = static_cast<unsigned char>(in[i]) << 16U;
    out += k_chars[(v >> 18U) & 63U];
    out += k_chars[(v >> 12U) & 63U];
    out += "==";
  } else if (i + 2 == in.size()) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16U) |
                       (static_cast<unsigned char>(in[i + 1]) << 8U);
    out += k_chars[(v >> 18U) & 63U];
    out += k_chars[(v >> 12U) & 63U];
    out += k_chars[(v >> 6U) & 63U];
    out += '=';
  }
  return out;
}

// Constant-time comparison (the expected header holds a secret).
bool secret_equals(std::string_view a, std::string_view b) noexcept {
  unsigned diff = a.size() == b.size() ? 0U : 1U;
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    diff |= static_cast<unsigned>(static_cast<unsigned char>(a[i]) ^
                                  static_cast<unsigned char>(b[i]));
  }
  return diff == 0;
}

// Deterministic fraction: the k-th request (0-based) is hit when floor((k+1)F) > floor(kF),
// so exactly floor(n*F) of the first n requests are hit, evenly spread.
bool fraction_hit(std::uint64_t k, double fraction) noexcept {
  if (fraction <= 0) return false;
  if (fraction >= 1) return true;
  return std::floor(static_cast<double>(k + 1) * fraction) >
         std::floor(static_cast<double>(k) * fraction);
}

std::string http_date(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 64> buf{};
  const std::size_t n = std::strftime(buf.data(), buf.size(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return std::string(buf.data(), n);
}

std::string rpc_status(int code, std::string_view message) {
  std::string out = "{\"code\":";
  out += std::to_string(code);
  out += ",\"message\":";
  append_json_string(out, message);
  out += '}';
  return out;
}

bool media_type_is(std::string_view v, std::string_view want) {
  const std::size_t semi = v.find(';');
  std::string_view type = v.substr(0, semi);
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
  if (type.size() != want.size()) return false;
  for (std::size_t i = 0; i < type.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(type[i])) != want[i]) return false;
  }
  return true;
}
bool media_type_is_json(std::string_view v) { return media_type_is(v, "application/json"); }
// OTLP/HTTP's binary encoding (opentelemetry-proto docs/specification.md).
bool media_type_is_protobuf(std::string_view v) { return media_type_is(v, "application/x-protobuf"); }

void append_counter(std::string& out, std::string_view name, std::uint64_t v, bool comma = true) {
  if (comma) out += ',';
  out += '"';
  out += name;
  out += "\":";
  out += std::to_string(v);
}

}  // namespace

struct SinkServer::impl {
  SinkConfig config;
  std::string expected_auth;  // "Basic <base64>"; empty when auth is off
  int listen_fd = -1;
  std::uint16_t bound_port = 0;
  MHD_Daemon* daemon = nullptr;
  int spans_fd = -1;
  std::mutex spans_mu;

  // Counters: monotonic, relaxed; a /stats snapshot is not atomic across fields.
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> spans{0};
  std::atomic<std::uint64_t> bytes_wire{0};
  std::atomic<std::uint64_t> bytes_decompressed{0};
  std::atomic<std::uint64_t> connections{0};
  std::atomic<std::uint64_t> trace_connections{0};
  std::atomic<std::uint64_t> invalid{0};
  std::atomic<std::uint64_t> resets{0};
  std::atomic<std::uint64_t> delayed{0};
  std::atomic<std::uint64_t> rejected_spans{0};
  // --spans-out writes that failed (a full disk, /dev/full, EIO): each batch of lines whose
  // write stopped short counts once; the first prints an error line, the exit code says it.
  std::atomic<std::uint64_t> spans_out_errors{0};
  std::array<std::atomic<std::uint64_t>, k_max_status> status_counts{};
  // Fault stage counters: how many requests reached each stage.
  std::atomic<std::uint64_t> reset_seen{0};
  std::atomic<std::uint64_t> fail_429_seen{0};
  std::atomic<std::uint64_t> fail_first_seen{0};
  std::atomic<std::uint64_t> fraction_seen{0};
  std::atomic<std::uint64_t> delay_seen{0};

  mutable std::mutex maps_mu;
  std::map<std::string, std::uint64_t, std::less<>> by_service;
  std::vector<std::map<std::string, std::uint64_t, std::less<>>> by_attribute;
  std::string last_invalid_reason;
  std::uint64_t invalid_logged = 0;

  // Delayed responses: suspended MHD connections resumed by one timer thread.
  std::mutex delay_mu;
  std::condition_variable delay_cv;
  std::priority_queue<DelayEntry, std::vector<DelayEntry>, std::greater<>> delay_queue;
  bool delay_stopping = false;
  std::thread delay_thread;
  std::atomic<std::int64_t> suspended{0};

  // Request body buffers, reused across requests: a fresh 700 KB buffer per request costs
  // an mmap, page faults and a munmap. Bounded: at most k_pool_max buffers are kept.
  static constexpr std::size_t k_pool_max = 64;
  std::mutex pool_mu;
  std::vector<std::string> pool;

  std::string take_buffer() {
    std::lock_guard lock(pool_mu);
    if (pool.empty()) return {};
    std::string b = std::move(pool.back());
    pool.pop_back();
    return b;
  }

  void give_buffer(std::string&& b) {
    if (b.capacity() == 0 || b.capacity() > config.max_body + OtlpTraceReader::k_padding) return;
    b.clear();
    std::lock_guard lock(pool_mu);
    if (pool.size() < k_pool_max) pool.push_back(std::move(b));
  }

  // Per MHD thread: parser, decoder, buffers (reused: no allocation per span).
  struct Worker {
    OtlpTraceReader reader;
    Decoder decoder;
    std::string decoded;
    std::string transcoded;  // a protobuf body as OTLP/JSON (otlp_protobuf.h)
    std::string transcode_error;
    Worker(const std::vector<std::string>& count_by, bool want_lines)
        : reader(count_by, want_lines) {}
  };

  Worker& worker() {
    thread_local std::unique_ptr<Worker> w;
    if (!w) w = std::make_unique<Worker>(config.count_by, !config.spans_out.empty());
    return *w;
  }

  // --- MHD callbacks ------------------------------------------------------------------
  static MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url,
                               const char* method, const char* /*version*/,
                               const char* upload_data, std::size_t* upload_data_size,
                               void** con_cls) {
    auto& self = *static_cast<impl*>(cls);
    auto* ctx = static_cast<RequestCtx*>(*con_cls);
    if (ctx == nullptr) {
      ctx = new RequestCtx();
      *con_cls = ctx;
      const std::string_view path(url);
      const std::string_view m(method);
      ctx->is_post = m == "POST";
      if (path == "/v1/traces" || path == "/otlp/v1/traces") {
        ctx->where = route::traces;
        const char* cl =
            MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (ctx->is_post && !self.config.count_only) {
          ctx->body = self.take_buffer();
          if (cl != nullptr) {
            const unsigned long long n = std::strtoull(cl, nullptr, 10);
            if (n > self.config.max_body) {
              ctx->over_limit = true;
            } else {
              ctx->body.reserve(static_cast<std::size_t>(n) + OtlpTraceReader::k_padding);
            }
          }
        }
      } else if (path == "/stats") {
        ctx->where = route::stats;
      } else if (path == "/healthz") {
        ctx->where = route::healthz;
      }
      return MHD_YES;
    }
    if (*upload_data_size != 0) {
      const std::size_t n = *upload_data_size;
      ctx->wire_bytes += n;
      if (ctx->where == route::traces && !self.config.count_only && !ctx->over_limit) {
        if (ctx->body.size() + n > self.config.max_body) {
          ctx->over_limit = true;
          std::string().swap(ctx->body);
        } else {
          ctx->body.append(upload_data, n);
        }
      }
      *upload_data_size = 0;
      return MHD_YES;
    }
    if (ctx->suspended) {  // resumed by the delay thread
      ctx->suspended = false;
      self.suspended.fetch_sub(1, std::memory_order_acq_rel);
      if (ctx->reset || ctx->drop.load(std::memory_order_acquire)) {
        return reset_connection(connection);
      }
      return send(connection, *ctx);
    }
    switch (ctx->where) {
      case route::stats:
        if (std::string_view(method) != "GET") return send_simple(connection, 405, rpc_status(12, "use GET"), "GET");
        return send_simple(connection, 200, self.stats_json(), nullptr);
      case route::healthz:
        if (std::string_view(method) != "GET") return send_simple(connection, 405, rpc_status(12, "use GET"), "GET");
        return send_simple(connection, 200, "{\"status\":\"ok\"}", nullptr);
      case route::not_found:
        self.requests.fetch_add(1, std::memory_order_relaxed);
        self.bytes_wire.fetch_add(ctx->wire_bytes, std::memory_order_relaxed);
        self.count_status(404);
        return send_simple(connection, 404,
                           rpc_status(5, "not found: POST OTLP traces to /v1/traces or /otlp/v1/traces"),
                           nullptr);
      case route::traces:
        break;
    }
    self.decide(connection, *ctx);
    if (self.should_delay()) {
      std::unique_lock lock(self.delay_mu);
      if (!self.delay_stopping) {
        ctx->suspended = true;
        self.suspended.fetch_add(1, std::memory_order_acq_rel);
        self.delayed.fetch_add(1, std::memory_order_relaxed);
        MHD_suspend_connection(connection);
        self.delay_queue.push({clock_type::now() + std::chrono::milliseconds(self.config.delay_ms),
                               connection, ctx});
        lock.unlock();
        self.delay_cv.notify_one();
        return MHD_YES;
      }
    }
    if (ctx->reset) return reset_connection(connection);
    return send(connection, *ctx);
  }

  static void on_completed(void* cls, MHD_Connection* /*connection*/, void** con_cls,
                           MHD_RequestTerminationCode /*toe*/) {
    auto* ctx = static_cast<RequestCtx*>(*con_cls);
    if (ctx != nullptr) static_cast<impl*>(cls)->give_buffer(std::move(ctx->body));
    delete ctx;
    *con_cls = nullptr;
  }

  static void on_connection(void* cls, MHD_Connection* /*connection*/, void** socket_context,
                            MHD_ConnectionNotificationCode toe) {
    auto& self = *static_cast<impl*>(cls);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
      self.connections.fetch_add(1, std::memory_order_relaxed);
      *socket_context = new ConnState();
    } else {
      delete static_cast<ConnState*>(*socket_context);
      *socket_context = nullptr;
    }
  }

  // Closes the socket with RST (SO_LINGER 0) and no response.
  static MHD_Result reset_connection(MHD_Connection* connection) {
    const MHD_ConnectionInfo* info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info != nullptr) {
      linger l{};
      l.l_onoff = 1;
      l.l_linger = 0;
      (void)setsockopt(info->connect_fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    return MHD_NO;
  }

  static MHD_Result send_simple(MHD_Connection* connection, unsigned status,
                                const std::string& body, const char* allow) {
    MHD_Response* r = MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()),
                                                      MHD_RESPMEM_MUST_COPY);
    if (r == nullptr) return MHD_NO;
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (allow != nullptr) (void)MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    const MHD_Result rc = MHD_queue_response(connection, status, r);
    MHD_destroy_response(r);
    return rc;
  }

  static MHD_Result send(MHD_Connection* connection, RequestCtx& ctx) {
    MHD_Response* r = MHD_create_response_from_buffer(
        ctx.response.size(), ctx.response.data(), MHD_RESPMEM_MUST_COPY);
    if (r == nullptr) return MHD_NO;
    (void)MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                  ctx.protobuf ? "application/x-protobuf" : "application/json");
    if (!ctx.retry_after.empty()) {
      (void)MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ctx.retry_after.c_str());
    }
    if (ctx.www_authenticate) {
      (void)MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                    "Basic realm=\"tracecast-sink\"");
    }
    if (ctx.allow_post) (void)MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST");
    const MHD_Result rc = MHD_queue_response(connection, ctx.status, r);
    MHD_destroy_response(r);
    return rc;
  }

  void count_status(unsigned status) {
    status_counts[std::min(status, k_max_status - 1)].fetch_add(1, std::memory_order_relaxed);
  }

  bool should_delay() {
    if (config.delay_ms == 0) return false;
    const std::uint64_t k = delay_seen.fetch_add(1, std::memory_order_relaxed);
    return config.delay_first == 0 || k < config.delay_first;
  }

  // The answer in the request's encoding: google.rpc.Status as JSON or protobuf.
  void set_response(RequestCtx& ctx, unsigned status, int rpc_code, std::string_view message) {
    ctx.status = status;
    ctx.response = ctx.protobuf ? protobuf_rpc_status(rpc_code, message) : rpc_status(rpc_code, message);
  }

  void note_invalid(std::string_view reason) {
    invalid.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(maps_mu);
    last_invalid_reason.assign(reason);
    if (!config.quiet && invalid_logged < 20) {
      ++invalid_logged;
      std::fprintf(stderr, "tracecast-sink: 400 %.*s\n", static_cast<int>(reason.size()),
                   reason.data());
    }
  }

  std::string retry_after_value() const {
    if (!config.retry_after) return {};
    if (config.retry_after_date) {
      return http_date(std::time(nullptr) + static_cast<std::time_t>(*config.retry_after));
    }
    return std::to_string(*config.retry_after);
  }

  // Decides the answer to one trace request and counts it.
  void decide(MHD_Connection* connection, RequestCtx& ctx) {
    requests.fetch_add(1, std::memory_order_relaxed);
    bytes_wire.fetch_add(ctx.wire_bytes, std::memory_order_relaxed);
    const MHD_ConnectionInfo* ci =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    if (ci != nullptr && ci->socket_context != nullptr) {
      auto* cs = static_cast<ConnState*>(ci->socket_context);
      if (!cs->carried_trace) {
        cs->carried_trace = true;
        trace_connections.fetch_add(1, std::memory_order_relaxed);
      }
    }
    decide_status(connection, ctx);
    if (ctx.reset) {
      resets.fetch_add(1, std::memory_order_relaxed);
    } else {
      count_status(ctx.status);
    }
  }

  void decide_status(MHD_Connection* connection, RequestCtx& ctx) {
    // Every answer, faults included, is in the encoding the request was sent in.
    const char* type =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    ctx.protobuf = type != nullptr && media_type_is_protobuf(type);
    if (!ctx.is_post) {
      ctx.allow_post = true;
      set_response(ctx, 405, 12, "method not allowed: use POST");
      return;
    }
    const SinkConfig& c = config;
    if (c.reset_first > 0 || c.reset_fraction > 0) {
      const std::uint64_t k = reset_seen.fetch_add(1, std::memory_order_relaxed);
      if (k < c.reset_first || fraction_hit(k - std::min(k, c.reset_first), c.reset_fraction)) {
        ctx.reset = true;
        return;
      }
    }
    if (c.fail_429 > 0 && fail_429_seen.fetch_add(1, std::memory_order_relaxed) < c.fail_429) {
      set_response(ctx, 429, 8, "injected 429 (--fail-429)");
      ctx.retry_after = retry_after_value();
      return;
    }
    if (c.fail_first > 0 &&
        fail_first_seen.fetch_add(1, std::memory_order_relaxed) < c.fail_first) {
      set_response(ctx, c.fail_status, 14, "injected failure (--fail-5xx-first)");
      if (c.retry_after_on_5xx) ctx.retry_after = retry_after_value();
      return;
    }
    if (c.fail_503_fraction > 0 &&
        fraction_hit(fraction_seen.fetch_add(1, std::memory_order_relaxed), c.fail_503_fraction)) {
      set_response(ctx, 503, 14, "injected 503 (--fail-503-fraction)");
      if (c.retry_after_on_5xx) ctx.retry_after = retry_after_value();
      return;
    }
    if (!expected_auth.empty()) {
      const char* auth = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
                                                     MHD_HTTP_HEADER_AUTHORIZATION);
      if (auth == nullptr || !secret_equals(auth, expected_auth)) {
        set_response(ctx, 401, 16,
                     auth == nullptr ? "missing Authorization header (Basic auth required)"
                                     : "Authorization does not match (Basic auth)");
        ctx.www_authenticate = true;
        return;
      }
    }
    if (type == nullptr || !(ctx.protobuf || media_type_is_json(type))) {
      std::string reason = "unsupported Content-Type '";
      reason += type == nullptr ? "" : type;
      reason += "': this sink accepts OTLP/HTTP JSON (application/json) and protobuf (application/x-protobuf)";
      set_response(ctx, 415, 3, reason);
      return;
    }
    const char* enc_header =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_ENCODING);
    const content_encoding enc = parse_content_encoding(enc_header == nullptr ? "" : enc_header);
    if (enc == content_encoding::unknown) {
      std::string reason = "unsupported Content-Encoding '";
      reason += enc_header;
      reason += "': use gzip, deflate, zstd or none";
      set_response(ctx, 415, 3, reason);
      return;
    }
    if (ctx.over_limit) {
      set_response(ctx, 413, 8, "body larger than --max-body");
      return;
    }
    if (c.count_only) {
      ctx.status = 200;
      ctx.response = ctx.protobuf ? std::string() : "{}";
      return;
    }
    Worker& w = worker();
    if (enc == content_encoding::identity) {  // parse in place: no copy
      const std::size_t size = ctx.body.size();
      ctx.body.resize(size + OtlpTraceReader::k_padding);
      read_body(ctx, w, ctx.body.data(), size);
      return;
    }
    const decode_status ds = w.decoder.decode(enc, ctx.body, w.decoded, c.max_body,
                                              OtlpTraceReader::k_padding);
    if (ds == decode_status::too_large) {
      set_response(ctx, 413, 8, "decompressed body larger than --max-body");
      return;
    }
    if (ds == decode_status::corrupt) {
      std::string reason = "body does not decode as Content-Encoding '";
      reason += enc_header == nullptr ? "identity" : enc_header;
      reason += "': ";
      reason += w.decoder.error();
      set_response(ctx, 400, 3, reason);
      note_invalid(reason);
      return;
    }
    read_body(ctx, w, w.decoded.data(), w.decoded.size() - OtlpTraceReader::k_padding);
  }

  // Parses, counts and answers a decoded body (`size + k_padding` bytes readable).
  void read_body(RequestCtx& ctx, Worker& w, const char* data, std::size_t size) {
    const SinkConfig& c = config;
    bytes_decompressed.fetch_add(size, std::memory_order_relaxed);
    if (ctx.protobuf) {
      // Checked on the wire, then rewritten as OTLP/JSON for the same validation and counting.
      if (!protobuf_to_json(std::string_view(data, size), w.transcoded, w.transcode_error)) {
        const std::string reason = "protobuf: " + w.transcode_error;
        set_response(ctx, 400, 3, reason);
        note_invalid(reason);
        return;
      }
      size = w.transcoded.size();
      w.transcoded.resize(size + OtlpTraceReader::k_padding);
      data = w.transcoded.data();
    }
    if (!w.reader.read(data, size)) {
      set_response(ctx, 400, 3, w.reader.error());
      note_invalid(w.reader.error());
      return;
    }
    absorb(w.reader);
    ctx.status = 200;
    const std::uint64_t n = w.reader.span_count();
    if (c.partial_success && n > 0) {
      const std::uint64_t rejected = std::min(*c.partial_success, n);
      rejected_spans.fetch_add(rejected, std::memory_order_relaxed);
      if (ctx.protobuf) {
        ctx.response = protobuf_export_response(rejected, c.partial_message);
        return;
      }
      // int64 is a decimal string in OTLP JSON (what the Collector sends); a number on request.
      const char* quote = c.partial_success_as_number ? "" : "\"";
      ctx.response = "{\"partialSuccess\":{\"rejectedSpans\":";
      ctx.response += quote;
      ctx.response += std::to_string(rejected);
      ctx.response += quote;
      ctx.response += ",\"errorMessage\":";
      append_json_string(ctx.response, c.partial_message);
      ctx.response += "}}";
    } else {
      ctx.response = ctx.protobuf ? std::string() : "{}";  // an empty ExportTraceServiceResponse
    }
  }

  void absorb(const OtlpTraceReader& reader) {
    spans.fetch_add(reader.span_count(), std::memory_order_relaxed);
    if (!reader.tally().empty()) {
      std::lock_guard lock(maps_mu);
      for (const TallyEntry& e : reader.tally()) {
        auto& m = e.key_index == k_service_key ? by_service : by_attribute[e.key_index];
        const std::string_view v = reader.tally_value(e);
        auto it = m.find(v);
        if (it == m.end()) {
          m.emplace(std::string(v), e.count);
        } else {
          it->second += e.count;
        }
      }
    }
    const std::string_view lines = reader.lines();
    if (spans_fd >= 0 && !lines.empty()) {
      std::lock_guard lock(spans_mu);
      std::size_t off = 0;
      while (off < lines.size()) {
        const ssize_t n = ::write(spans_fd, lines.data() + off, lines.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          note_spans_out_error(n < 0 ? errno : ENOSPC);
          break;
        }
        off += static_cast<std::size_t>(n);
      }
    }
  }

  // Counts a failed --spans-out write; the first one is said on stderr at once (the lines
  // are lost, and a quiet loss of test evidence is worse than a noisy one).
  void note_spans_out_error(int err) {
    if (spans_out_errors.fetch_add(1, std::memory_order_relaxed) == 0) {
      std::fprintf(stderr, "tracecast-sink: error: --spans-out %s: write failed: %s (span lines are being lost; "
                   "counted in the summary and /stats, exit code 1)\n",
                   config.spans_out.c_str(), std::strerror(err));
    }
  }

  void delay_loop() {
    std::unique_lock lock(delay_mu);
    for (;;) {
      if (delay_stopping) break;
      if (delay_queue.empty()) {
        delay_cv.wait(lock);
        continue;
      }
      const DelayEntry top = delay_queue.top();
      if (top.due <= clock_type::now()) {
        delay_queue.pop();
        MHD_resume_connection(top.connection);
        continue;
      }
      delay_cv.wait_until(lock, top.due);
    }
    // Shutdown: drop every delayed request (no response).
    while (!delay_queue.empty()) {
      const DelayEntry top = delay_queue.top();
      delay_queue.pop();
      top.ctx->drop.store(true, std::memory_order_release);
      MHD_resume_connection(top.connection);
    }
  }

  std::string stats_json() const {
    std::string out = "{";
    append_counter(out, "requests", requests.load(std::memory_order_relaxed), false);
    append_counter(out, "spans", spans.load(std::memory_order_relaxed));
    append_counter(out, "bytes_wire", bytes_wire.load(std::memory_order_relaxed));
    append_counter(out, "bytes_decompressed", bytes_decompressed.load(std::memory_order_relaxed));
    append_counter(out, "connections", connections.load(std::memory_order_relaxed));
    append_counter(out, "trace_connections", trace_connections.load(std::memory_order_relaxed));
    append_counter(out, "invalid", invalid.load(std::memory_order_relaxed));
    append_counter(out, "resets", resets.load(std::memory_order_relaxed));
    append_counter(out, "delayed", delayed.load(std::memory_order_relaxed));
    append_counter(out, "rejected_spans", rejected_spans.load(std::memory_order_relaxed));
    append_counter(out, "spans_out_errors", spans_out_errors.load(std::memory_order_relaxed));
    out += ",\"status_counts\":{";
    bool first = true;
    for (unsigned s = 0; s < k_max_status; ++s) {
      const std::uint64_t n = status_counts[s].load(std::memory_order_relaxed);
      if (n == 0) continue;
      if (!first) out += ',';
      first = false;
      out += '"';
      out += std::to_string(s);
      out += "\":";
      out += std::to_string(n);
    }
    out += '}';
    std::lock_guard lock(maps_mu);
    auto append_map = [&out](const std::map<std::string, std::uint64_t, std::less<>>& m) {
      out += '{';
      bool f = true;
      for (const auto& [k, v] : m) {
        if (!f) out += ',';
        f = false;
        append_json_string(out, k);
        out += ':';
        out += std::to_string(v);
      }
      out += '}';
    };
    out += ",\"by_service\":";
    append_map(by_service);
    out += ",\"by_attribute\":{";
    for (std::size_t i = 0; i < by_attribute.size(); ++i) {
      if (i > 0) out += ',';
      append_json_string(out, config.count_by[i]);
      out += ':';
      append_map(by_attribute[i]);
    }
    out += "},\"last_invalid_reason\":";
    append_json_string(out, last_invalid_reason);
    out += ",\"count_only\":";
    out += config.count_only ? "true" : "false";
    out += "}";
    return out;
  }
};

SinkServer::SinkServer(SinkConfig config) : impl_(std::make_unique<impl>()) {
  impl_->config = std::move(config);
  impl_->by_attribute.resize(impl_->config.count_by.size());
  if (!impl_->config.basic_auth.empty()) {
    impl_->expected_auth = "Basic " + base64(impl_->config.basic_auth);
  }
}

SinkServer::~SinkServer() { stop(); }

bool SinkServer::start(std::string& error) {
  impl& m = *impl_;
  const SinkConfig& c = m.config;
  // Bind ourselves (loopback unless --listen says otherwise) so the port is known at once.
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  int family = AF_INET;
  std::string host = c.listen_host;
  if (host == "localhost") host = "127.0.0.1";
  if (!host.empty() && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(c.listen_port);
      addr_len = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
      family = AF_INET6;
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(c.listen_port);
      addr_len = sizeof(sockaddr_in6);
    } else {
      error = "--listen: '" + c.listen_host + "' is not an IP address";
      return false;
    }
  }
  m.listen_fd = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (m.listen_fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  const int one = 1;
  (void)setsockopt(m.listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(m.listen_fd, reinterpret_cast<sockaddr*>(&addr), addr_len) != 0) {
    error = "bind " + c.listen_host + ":" + std::to_string(c.listen_port) + ": " +
            std::strerror(errno);
    return false;
  }
  if (::listen(m.listen_fd, 1024) != 0) {
    error = std::string("listen: ") + std::strerror(errno);
    return false;
  }
  sockaddr_storage bound{};
  socklen_t bound_len = sizeof bound;
  (void)getsockname(m.listen_fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  m.bound_port = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                         : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);

  if (!c.spans_out.empty()) {
    m.spans_fd = ::open(c.spans_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
                        0644);
    if (m.spans_fd < 0) {
      error = "--spans-out " + c.spans_out + ": " + std::strerror(errno);
      return false;
    }
  }

  m.delay_thread = std::thread([&m] { m.delay_loop(); });

  std::vector<MHD_OptionItem> opts;
  opts.push_back({MHD_OPTION_LISTEN_SOCKET, m.listen_fd, nullptr});
  opts.push_back({MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&impl::on_completed), &m});
  opts.push_back({MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(&impl::on_connection), &m});
  opts.push_back({MHD_OPTION_CONNECTION_LIMIT, static_cast<intptr_t>(c.connection_limit), nullptr});
  opts.push_back({MHD_OPTION_CONNECTION_TIMEOUT, k_connection_timeout_s, nullptr});
  opts.push_back({MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<intptr_t>(k_connection_memory), nullptr});
  if (c.threads > 1) {
    opts.push_back({MHD_OPTION_THREAD_POOL_SIZE, static_cast<intptr_t>(c.threads), nullptr});
  }
  opts.push_back({MHD_OPTION_END, 0, nullptr});
  // poll(), level-triggered, not epoll: libmicrohttpd 0.9.75 (Debian 12) in epoll thread-pool
  // mode now and then loses the edge of connections accepted in a burst, and their requests
  // sit unread in the socket until the client gives up (seen as 10 s timeouts and retries:
  // 5,000 destinations opening 256 connections at once, one run in ~40; the stuck worker was
  // in epoll_wait with 225 connections holding a whole unread request). poll() re-reports
  // ready sockets on every call, so nothing can be missed; a few hundred descriptors per
  // thread cost little next to parsing the bodies.
  unsigned flags = MHD_USE_POLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
  if (!c.quiet) flags |= MHD_USE_ERROR_LOG;
  m.daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, &impl::on_request, &m,
                              MHD_OPTION_ARRAY, opts.data(), MHD_OPTION_END);
  if (m.daemon == nullptr) {
    error = "libmicrohttpd failed to start";
    return false;
  }

  if (!c.port_file.empty()) {
    const std::string tmp = c.port_file + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "w");
    if (f == nullptr) {
      error = "--port-file " + c.port_file + ": " + std::strerror(errno);
      return false;
    }
    std::fprintf(f, "%u\n", static_cast<unsigned>(m.bound_port));
    const bool ok = std::fclose(f) == 0;
    if (!ok || std::rename(tmp.c_str(), c.port_file.c_str()) != 0) {
      error = "--port-file " + c.port_file + ": " + std::strerror(errno);
      return false;
    }
  }
  return true;
}

std::uint16_t SinkServer::port() const noexcept { return impl_->bound_port; }

void SinkServer::stop() {
  impl& m = *impl_;
  if (m.delay_thread.joinable()) {
    {
      std::lock_guard lock(m.delay_mu);
      m.delay_stopping = true;
    }
    m.delay_cv.notify_one();
    m.delay_thread.join();
  }
  if (m.daemon != nullptr) {
    // MHD must not be stopped with suspended connections: wait (bounded) until every
    // resumed one went through the handler.
    const auto deadline = clock_type::now() + std::chrono::seconds(5);
    while (m.suspended.load(std::memory_order_acquire) > 0 && clock_type::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    MHD_stop_daemon(m.daemon);
    m.daemon = nullptr;
  }
  if (m.listen_fd >= 0) {
    ::close(m.listen_fd);
    m.listen_fd = -1;
  }
  if (m.spans_fd >= 0) {
    if (::close(m.spans_fd) != 0 && errno != EINTR) m.note_spans_out_error(errno);  // a deferred write error
    m.spans_fd = -1;
  }
}

std::uint64_t SinkServer::spans_out_errors() const noexcept {
  return impl_->spans_out_errors.load(std::memory_order_relaxed);
}

std::string SinkServer::stats_json() const { return impl_->stats_json(); }

SinkTotals SinkServer::totals() const noexcept {
  return {impl_->requests.load(std::memory_order_relaxed),
          impl_->spans.load(std::memory_order_relaxed),
          impl_->bytes_wire.load(std::memory_order_relaxed)};
}

std::string SinkServer::summary_text() const {
  const impl& m = *impl_;
  std::string out = "tracecast-sink summary\n";
  auto line = [&out](std::string_view name, std::uint64_t v) {
    out += "  ";
    out += name;
    out += ": ";
    out += std::to_string(v);
    out += '\n';
  };
  line("requests", m.requests.load(std::memory_order_relaxed));
  line("spans", m.spans.load(std::memory_order_relaxed));
  line("bytes (wire)", m.bytes_wire.load(std::memory_order_relaxed));
  line("bytes (decompressed)", m.bytes_decompressed.load(std::memory_order_relaxed));
  line("connections", m.connections.load(std::memory_order_relaxed));
  line("invalid bodies", m.invalid.load(std::memory_order_relaxed));
  line("connection resets", m.resets.load(std::memory_order_relaxed));
  line("delayed responses", m.delayed.load(std::memory_order_relaxed));
  line("rejected spans (partial success)", m.rejected_spans.load(std::memory_order_relaxed));
  if (!m.config.spans_out.empty()) line("spans-out write errors", m.spans_out_errors.load(std::memory_order_relaxed));
  out += "  by status:";
  for (unsigned s = 0; s < k_max_status; ++s) {
    const std::uint64_t n = m.status_counts[s].load(std::memory_order_relaxed);
    if (n == 0) continue;
    // Appended piece by piece: `" " + std::to_string(s)` (operator+(const char*, string&&))
    // inserts at the front, which GCC 12 at -O2/-O3 flags as a -Wrestrict overlap (a known
    // false positive, GCC PR 105329); appends build the same text with no insert.
    out += ' ';
    out += std::to_string(s);
    out += '=';
    out += std::to_string(n);
  }
  out += '\n';
  std::lock_guard lock(m.maps_mu);
  out += "  by service:\n";
  auto entry = [&out](const std::string& key, std::uint64_t v) {
    out += "    ";
    out += key;
    out += ": ";
    out += std::to_string(v);
    out += '\n';
  };
  for (const auto& [k, v] : m.by_service) entry(k, v);
  for (std::size_t i = 0; i < m.by_attribute.size(); ++i) {
    out += "  by ";
    out += m.config.count_by[i];
    out += ":\n";
    for (const auto& [k, v] : m.by_attribute[i]) entry(k, v);
  }
  return out;
}

}  // namespace tracecast::sink
