// libFuzzer target for OtlpJsonEncoder and OtlpProtobufEncoder: arbitrary bytes become
// attribute keys, values (every type), span names, status messages, scope fields, limits and
// the batch budget. Whatever the input, the JSON document must parse (simdjson, which also
// validates UTF-8), stay within the budget, and hold no attribute list with a repeated key;
// the protobuf body must parse with libprotobuf (which refuses invalid UTF-8 in proto3
// strings), stay within the budget and count every span; and with room for everything, both
// encoders' outputs must decode to the same fields (tests/support/otlp_render.h).
//
// Short run: ctest -L fuzz (TRACECAST_FUZZ_SECONDS each). Long run, see encode/README.md:
//   build-fuzz/tests/fuzz/fuzz_encode -max_total_time=3600 -jobs=2 corpus_dir tests/fuzz/corpus_encode
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string_view>
#include <vector>

#include "otlp_render.h"
#include "otlp_test.pb.h"
#include "tracecast/otlp_json.h"
#include "tracecast/otlp_protobuf.h"

namespace {

using namespace tracecast;

struct Input {
  const std::uint8_t* p;
  std::size_t n;
  std::uint8_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  std::string_view bytes() {  // length-prefixed
    std::size_t len = byte();
    if (len == 255) len = 255 + 16 * static_cast<std::size_t>(byte());  // up to ~4 KiB
    if (len > n) len = n;
    const std::string_view s(reinterpret_cast<const char*>(p), len);
    p += len;
    n -= len;
    return s;
  }
  std::int64_t i64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | byte();
    return static_cast<std::int64_t>(v);
  }
};

void check_at(bool ok, int line) {
  if (ok) return;
  std::fprintf(stderr, "fuzz_encode: check failed at line %d\n", line);
  std::abort();
}
#define check(cond) check_at((cond), __LINE__)

void check_unique_keys(simdjson::dom::element holder) {
  simdjson::dom::array attrs;
  if (holder["attributes"].get(attrs) != simdjson::SUCCESS) return;
  std::set<std::string_view> keys;
  for (simdjson::dom::element a : attrs) {
    std::string_view key;
    check(a["key"].get(key) == simdjson::SUCCESS);
    check(keys.insert(key).second);
  }
}

std::size_t count_spans(const tracecast::otlp::ExportTraceServiceRequest& req) {
  std::size_t n = 0;
  for (const auto& rs : req.resource_spans())
    for (const auto& ss : rs.scope_spans()) n += static_cast<std::size_t>(ss.spans_size());
  return n;
}

// The same four appends through the protobuf encoder: first within the fuzzed budget (valid,
// within budget, every span counted), then with room for all of them after exactly the
// appends the JSON encoder took, whose decoded fields must equal the JSON document's.
void check_protobuf(const EncoderLimits& limits, std::size_t budget, const ResourceView& resource,
                    const ResourceView& other, const ScopeView& scope, const SpanView (&spans)[2],
                    std::string_view json_doc, std::size_t json_appended) {
  static std::vector<char> big(8u << 20);
  std::vector<char> buffer(budget);
  OtlpProtobufEncoder pb(limits);
  auto run = [&](std::span<char> into, std::size_t limit, std::size_t max_spans) {
    pb.begin(into, limit);
    std::size_t appended = 0;
    for (int round = 0; round < 4; ++round) {
      const std::size_t n = 1 + static_cast<std::size_t>(round & 1);
      if (appended + n > max_spans) break;
      const ResourceView& r = (round == 2) ? other : resource;
      if (pb.append(r, scope, std::span<const SpanView>(spans, n)) != append_result::ok) break;
      appended += n;
    }
    return appended;
  };
  const std::size_t appended = run(buffer, budget, 6);
  check(pb.span_count() == appended);
  const std::string_view body = pb.finish();
  check(body.size() <= budget);
  check((appended == 0) == body.empty());
  tracecast::otlp::ExportTraceServiceRequest req;
  check(req.ParseFromArray(body.data(), static_cast<int>(body.size())));
  check(count_spans(req) == appended);

  // Same appends as the JSON encoder, with room: identical fields and counters.
  if (json_appended == 0) return;
  const std::size_t taken = run(big, big.size(), json_appended);
  check(taken == json_appended);
  const std::string_view full = pb.finish();
  tracecast::otlp::ExportTraceServiceRequest full_req;
  check(full_req.ParseFromArray(full.data(), static_cast<int>(full.size())));
  tracecast::test::JsonRender jr;
  const std::string from_json = jr.render(json_doc);
  check(jr.error.empty());
  const std::string from_pb = tracecast::test::render(full_req);
  if (from_pb != from_json) {
    std::fprintf(stderr, "fuzz_encode: protobuf and JSON differ\n--- json\n");
    std::fwrite(from_json.data(), 1, from_json.size(), stderr);
    std::fprintf(stderr, "--- protobuf\n");
    std::fwrite(from_pb.data(), 1, from_pb.size(), stderr);
  }
  check(from_pb == from_json);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in{data, size};
  const std::uint8_t flags = in.byte();
  EncoderLimits limits;
  static constexpr std::size_t value_limits[] = {4, 7, 64, 64 * 1024};
  static constexpr std::size_t attr_limits[] = {0, 1, 3, 128};
  limits.max_value_bytes = value_limits[flags & 3];
  limits.max_attributes_per_span = attr_limits[(flags >> 2) & 3];
  const std::size_t budget = (static_cast<std::size_t>(in.byte()) << 8 | in.byte()) + 16;

  // Backing storage for arrays: views into fixed vectors (no reallocation while used).
  std::vector<std::string_view> strs;
  std::vector<std::int64_t> ints;
  std::vector<double> dbls;
  std::vector<bool> bool_storage;
  strs.reserve(256);
  ints.reserve(256);
  dbls.reserve(256);
  static const bool bool_values[] = {true, false, true};

  std::vector<Attribute> attrs;
  while (in.n > 0 && attrs.size() < 200) {
    const std::uint8_t kind = in.byte();
    const std::string_view key = in.bytes();
    AttributeValue v;
    switch (kind % 10) {
      case 0: v = AttributeValue::string(in.bytes()); break;
      case 1: v = AttributeValue::boolean(kind & 0x10); break;
      case 2: v = AttributeValue::int64(in.i64()); break;
      case 3: {
        const std::int64_t bits = in.i64();
        double d;
        static_assert(sizeof d == sizeof bits);
        __builtin_memcpy(&d, &bits, sizeof d);  // every bit pattern: NaNs, infinities, denormals
        v = AttributeValue::float64(d);
        break;
      }
      case 4: {
        const std::size_t first = strs.size();
        const std::size_t count = in.byte() % 4;
        for (std::size_t i = 0; i < count && strs.size() < strs.capacity(); ++i) strs.push_back(in.bytes());
        v = AttributeValue::strings(std::span<const std::string_view>(strs).subspan(first));
        break;
      }
      case 5: {
        const std::size_t first = ints.size();
        const std::size_t count = in.byte() % 4;
        for (std::size_t i = 0; i < count && ints.size() < ints.capacity(); ++i) ints.push_back(in.i64());
        v = AttributeValue::int64s(std::span<const std::int64_t>(ints).subspan(first));
        break;
      }
      case 6: {
        const std::size_t first = dbls.size();
        const std::size_t count = in.byte() % 4;
        for (std::size_t i = 0; i < count && dbls.size() < dbls.capacity(); ++i) {
          const std::int64_t bits = in.i64();
          double d;
          __builtin_memcpy(&d, &bits, sizeof d);
          dbls.push_back(d);
        }
        v = AttributeValue::float64s(std::span<const double>(dbls).subspan(first));
        break;
      }
      case 7: v = AttributeValue::bools(std::span<const bool>(bool_values, kind % 4)); break;
      case 8: v = AttributeValue(); break;
      default: v = AttributeValue::string(key); break;
    }
    attrs.push_back({key, v});
  }
  const std::size_t n_res = attrs.empty() ? 0 : (flags >> 4) % (attrs.size() + 1);
  const std::span<const Attribute> all(attrs);
  const ResourceView resource{all.first(n_res)};
  const ScopeView scope{n_res < attrs.size() ? attrs[n_res].key : "", (flags & 0x40) ? "v\xff" : ""};

  // SpanView::keys_unique's promise, made whenever it holds (distinct, valid UTF-8, at most
  // k_unique_key_max_bytes): the encoders' unchecked path is fuzzed too, and the output is
  // checked for repeated keys below either way.
  bool unique = true;
  {
    std::set<std::string_view> seen;
    for (const Attribute& a : all.subspan(n_res)) {
      unique = unique && a.key.size() <= k_unique_key_max_bytes && simdjson::validate_utf8(a.key.data(), a.key.size()) &&
               seen.insert(a.key).second;
    }
  }
  SpanView spans[2];
  for (int i = 0; i < 2; ++i) {
    SpanView& s = spans[i];
    s.trace_id = TraceId::from_hex("0123456789abcdef0123456789abcdef");
    s.span_id = SpanId::from_u64(static_cast<std::uint64_t>(i) + 1);
    s.parent_span_id = i == 1 ? spans[0].span_id : SpanId{};
    s.name = attrs.empty() ? std::string_view{} : attrs.back().key;
    s.kind = static_cast<SpanKind>(flags % 6);
    s.status_code = static_cast<StatusCode>(flags % 3);
    s.status_message = attrs.size() > 1 ? attrs[1].key : std::string_view{};
    s.start_unix_nano = static_cast<std::uint64_t>(size) * 1000;
    s.end_unix_nano = s.start_unix_nano + flags;
    s.attributes = all.subspan(n_res);
    s.keys_unique = unique;
  }
  const ResourceView other{all.first(n_res / 2)};

  std::vector<char> buffer(budget);
  OtlpJsonEncoder enc(limits);
  enc.begin(buffer, budget);
  std::size_t appended = 0;
  for (int round = 0; round < 4; ++round) {
    const ResourceView& r = (round == 2) ? other : resource;
    const append_result res = enc.append(r, scope, std::span<const SpanView>(spans, 1 + (round & 1)));
    if (res != append_result::ok) break;
    appended += 1 + static_cast<std::size_t>(round & 1);
  }
  check(enc.span_count() == appended);
  const std::string_view doc = enc.finish();
  check(doc.size() <= budget);
  check((appended == 0) == doc.empty());
  check_protobuf(limits, budget, resource, other, scope, spans, doc, appended);
  if (doc.empty()) return 0;

  simdjson::dom::parser parser;
  simdjson::dom::element root;
  const auto parse_error = parser.parse(doc.data(), doc.size()).get(root);
  if (parse_error != simdjson::SUCCESS)
    std::fprintf(stderr, "fuzz_encode: %s in\n%.*s\n", simdjson::error_message(parse_error),
                 static_cast<int>(doc.size()), doc.data());
  check(parse_error == simdjson::SUCCESS);
  simdjson::dom::array rs;
  check(root["resourceSpans"].get(rs) == simdjson::SUCCESS);
  std::size_t counted = 0;
  for (simdjson::dom::element r : rs) {
    simdjson::dom::element res_obj;
    if (r["resource"].get(res_obj) == simdjson::SUCCESS) check_unique_keys(res_obj);
    simdjson::dom::array ss;
    check(r["scopeSpans"].get(ss) == simdjson::SUCCESS);
    for (simdjson::dom::element sc : ss) {
      simdjson::dom::array sp;
      check(sc["spans"].get(sp) == simdjson::SUCCESS);
      for (simdjson::dom::element s : sp) {
        check_unique_keys(s);
        ++counted;
      }
    }
  }
  check(counted == appended);
  return 0;
}
