// Per-destination routing, limits and resource (issue 11), end to end on 127.0.0.1: the
// API-key allow-list and `enabled` toggled live under traffic from two threads (exact
// per-destination accounting against the bundled sink), a 1 MB request limit beside the
// global one, a 2,048-byte attribute value limit in both encodings, a destination's own
// resource attributes, and the validation of every new field (API and config file).
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "alloc_counter.h"
#include "destination_routing.h"
#include "egress_util.h"
#include "pipeline_util.h"
#include "otlp_test.pb.h"
#include "raw_http_server.h"
#include "sink_process.h"
#include "tracecast/pipeline.h"

namespace tracecast {
namespace {

using namespace std::chrono_literals;
using test::RawHttpServer;
using test::RawRequest;
using test::RawResponse;
using test::SinkProcess;

// Longer retry and shutdown bounds than the shared config: two producers and live toggles
// load the machine, and every count here must be exact.
PipelineConfig test_config() {
  PipelineConfig c = test::quick_pipeline_config();
  c.sender.retry.max_elapsed = 5000ms;
  c.shutdown_timeout = 10000ms;
  return c;
}

PipelineDestination to(const std::string& url, std::string name, std::string protocol = "http/json") {
  PipelineDestination d;
  d.transport.kind = DestinationKind::otlp_http;
  d.transport.name = std::move(name);
  d.transport.endpoint = url;
  d.transport.compression = "none";  // bodies as encoded: their sizes are the limit's
  d.transport.protocol = std::move(protocol);
  d.transport.timeout = 5000ms;
  return d;
}

// One request that maps to one span (no `trace` metadata).
LlmRequest request(std::string_view key_id, std::string_view prompt = {}, std::string_view request_id = "gen-1") {
  LlmRequest r;
  r.account = "acct";
  r.api_key_id = key_id;
  r.request_id = request_id;
  r.provider = "openai";
  r.requested_model = "openai/gpt-4o";
  r.response_model = "openai/gpt-4o-2024-08-06";
  r.input_tokens = 10;
  r.output_tokens = 5;
  r.prompt = prompt;
  r.start_unix_nano = 1'700'000'000'000'000'000ULL;
  r.end_unix_nano = 1'700'000'001'000'000'000ULL;
  return r;
}

std::vector<RawRequest> bodies_at(const RawHttpServer& server, std::string_view path) {
  std::vector<RawRequest> out;
  for (RawRequest& r : server.requests())
    if (r.path == path) out.push_back(std::move(r));
  return out;
}

// Every attribute of every span and resource of a request body (JSON or protobuf), as text.
struct Decoded {
  struct Span {
    std::map<std::string, std::string> attrs;  // strings as is, bools "true"/"false"
  };
  struct Resource {
    std::map<std::string, std::string> attrs;
    std::vector<Span> spans;
  };
  std::vector<Resource> resources;
};

Decoded decode_json(const std::string& body) {
  Decoded out;
  simdjson::dom::parser parser;
  const simdjson::dom::element doc = parser.parse(body);
  auto read_attrs = [](simdjson::dom::element list, std::map<std::string, std::string>& to) {
    simdjson::dom::array attrs;
    if (list.get_array().get(attrs) != simdjson::SUCCESS) return;
    for (const simdjson::dom::element kv : attrs) {
      const std::string key{std::string_view(kv["key"])};
      std::string_view s;
      bool b = false;
      if (kv["value"]["stringValue"].get(s) == simdjson::SUCCESS) {
        to[key] = std::string(s);
      } else if (kv["value"]["boolValue"].get(b) == simdjson::SUCCESS) {
        to[key] = b ? "true" : "false";
      } else {
        to[key] = "?";
      }
    }
  };
  for (const simdjson::dom::element rs : doc["resourceSpans"].get_array()) {
    Decoded::Resource res;
    read_attrs(rs["resource"]["attributes"], res.attrs);
    for (const simdjson::dom::element ss : rs["scopeSpans"].get_array())
      for (const simdjson::dom::element sp : ss["spans"].get_array()) {
        Decoded::Span span;
        read_attrs(sp["attributes"], span.attrs);
        res.spans.push_back(std::move(span));
      }
    out.resources.push_back(std::move(res));
  }
  return out;
}

Decoded decode_protobuf(const std::string& body) {
  Decoded out;
  otlp::ExportTraceServiceRequest req;
  EXPECT_TRUE(req.ParseFromString(body));
  auto read_attrs = [](const auto& list, std::map<std::string, std::string>& to) {
    for (const auto& kv : list) {
      // Built, then moved in: assigning a literal to the map's string trips GCC 12's false
      // -Wrestrict at -O3 (PR 105329).
      std::string value = kv.value().value_case() == otlp::AnyValue::kStringValue ? kv.value().string_value()
                          : kv.value().value_case() == otlp::AnyValue::kBoolValue
                              ? std::string(kv.value().bool_value() ? "true" : "false")
                              : std::string(1, '?');
      to.insert_or_assign(kv.key(), std::move(value));
    }
  };
  for (const auto& rs : req.resource_spans()) {
    Decoded::Resource res;
    read_attrs(rs.resource().attributes(), res.attrs);
    for (const auto& ss : rs.scope_spans())
      for (const auto& sp : ss.spans()) {
        Decoded::Span span;
        read_attrs(sp.attributes(), span.attrs);
        res.spans.push_back(std::move(span));
      }
    out.resources.push_back(std::move(res));
  }
  return out;
}

Decoded decode(const RawRequest& r) {
  return r.header("content-type") == "application/x-protobuf" ? decode_protobuf(r.body) : decode_json(r.body);
}

const DestinationCounters& of(const PipelineStats& s, std::uint32_t id) {
  for (const DestinationCounters& d : s.destinations)
    if (d.id == id) return d;
  throw std::runtime_error("destination " + std::to_string(id) + " not listed");
}

// Exact accounting of what was routed under traffic: every span handed to the destination was
// delivered or dropped, and a drop can only be the budget's (a slow sanitizer build may shed).
void expect_accounted(const DestinationCounters& d, std::uint64_t spans) {
  EXPECT_TRUE(d.balanced()) << d.name;
  EXPECT_EQ(d.submitted, spans) << d.name;
  EXPECT_EQ(d.in_flight, 0u) << d.name;
  EXPECT_EQ(d.delivered + d.dropped_by(DropReason::backpressure), spans) << d.name;
}

void expect_all_delivered(const DestinationCounters& d, std::uint64_t spans) {
  EXPECT_TRUE(d.balanced()) << d.name;
  EXPECT_EQ(d.submitted, spans) << d.name;
  EXPECT_EQ(d.delivered, spans) << d.name;
  EXPECT_EQ(d.in_flight, 0u) << d.name;
  EXPECT_EQ(d.dropped_total(), 0u) << d.name;
}

// --- limits -----------------------------------------------------------------------------------

class RequestLimit : public ::testing::TestWithParam<const char*> {};

// New Relic refuses bodies over 1 MB: a destination with max_request_bytes = 1,000,000 never
// sends more, whatever the encoding, while a destination beside it batches up to the global
// batch.max_bytes (4 MiB) from the same traffic.
TEST_P(RequestLimit, ADestinationWithA1MbLimitNeverSendsALargerBodyWhileOthersUseTheGlobalOne) {
  RawHttpServer server([](const RawRequest&) { return RawResponse{}; });
  PipelineConfig config = test_config();
  config.batch.linger = 2000ms;  // bodies sealed by size, not by time
  config.batch.max_linger = 5000ms;
  config.batch.max_spans = 65536;
  ASSERT_EQ(config.batch.max_bytes, 4u << 20);
  Pipeline pipeline(config);
  PipelineDestination limited = to(server.url("/limited"), "new-relic-like", GetParam());
  limited.max_request_bytes = 1'000'000;
  const auto a = pipeline.add_destination("acct", limited);
  const auto b = pipeline.add_destination("acct", to(server.url("/global"), "global", GetParam()));
  ASSERT_TRUE(a.ok() && b.ok());

  const std::string prompt(2000, 'p');
  constexpr std::uint64_t k_requests = 3000;  // ~6 MB of prompts per destination
  for (std::uint64_t i = 0; i < k_requests; ++i) ASSERT_EQ(pipeline.submit(request("", prompt)), submit_result::ok);
  const DrainResult done = pipeline.flush(std::chrono::steady_clock::now() + 60s);
  ASSERT_TRUE(done.complete);
  const PipelineStats s = pipeline.stats_all();
  expect_all_delivered(of(s, a.id), k_requests);
  expect_all_delivered(of(s, b.id), k_requests);
  EXPECT_LE(of(s, a.id).largest_batch_bytes, 1'000'000u);
  EXPECT_GT(of(s, b.id).largest_batch_bytes, 1'000'000u);

  const std::vector<RawRequest> small = bodies_at(server, "/limited");
  const std::vector<RawRequest> large = bodies_at(server, "/global");
  ASSERT_GE(small.size(), 6u);  // ~6 MB cannot go in fewer 1 MB bodies
  std::size_t largest_small = 0, largest_large = 0;
  for (const RawRequest& r : small) largest_small = std::max(largest_small, r.body.size());
  for (const RawRequest& r : large) largest_large = std::max(largest_large, r.body.size());
  EXPECT_LE(largest_small, 1'000'000u);
  EXPECT_GT(largest_large, 1'000'000u);
  EXPECT_LE(largest_large, std::size_t{4} << 20);
}

INSTANTIATE_TEST_SUITE_P(Encodings, RequestLimit, ::testing::Values("http/json", "http/protobuf"),
                         [](const auto& p) { return std::string(p.param[5] == 'j' ? "json" : "protobuf"); });

// One request larger than a destination's limit alone: dropped as too_large there (counted,
// never sent), delivered whole where the global limit holds it.
TEST(OversizedRequest, IsDroppedTooLargeOnlyAtTheDestinationWhoseLimitItPasses) {
  RawHttpServer server([](const RawRequest&) { return RawResponse{}; });
  Pipeline pipeline(test_config());
  PipelineDestination limited = to(server.url("/limited"), "limited");
  limited.max_request_bytes = 1'000'000;
  const auto a = pipeline.add_destination("acct", limited);
  const auto b = pipeline.add_destination("acct", to(server.url("/global"), "global"));
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string prompt(1'000'000, 'p');  // kept whole at submit (ingest.limits: 1 MiB)
  ASSERT_EQ(pipeline.submit(request("", prompt)), submit_result::ok);
  ASSERT_EQ(pipeline.submit(request("", "small")), submit_result::ok);
  ASSERT_TRUE(pipeline.flush(std::chrono::steady_clock::now() + 30s).complete);
  const PipelineStats s = pipeline.stats_all();
  const DestinationCounters& lim = of(s, a.id);
  EXPECT_TRUE(lim.balanced());
  EXPECT_EQ(lim.submitted, 2u);
  EXPECT_EQ(lim.dropped_by(DropReason::too_large), 1u);
  EXPECT_EQ(lim.delivered, 1u);
  expect_all_delivered(of(s, b.id), 2);
  for (const RawRequest& r : bodies_at(server, "/limited")) EXPECT_LE(r.body.size(), 1'000'000u);
  std::size_t largest = 0;
  for (const RawRequest& r : bodies_at(server, "/global")) largest = std::max(largest, r.body.size());
  EXPECT_GT(largest, 1'000'000u);
}

// Tempo cuts attribute values at 2,048 bytes by default: a destination with that limit gets
// the prompt cut at a code point boundary (a 2-byte é straddling byte 2048 is left out
// whole), counted for it and in the encoder totals, and the span marked tracecast.truncated;
// a destination beside it gets the prompt whole and unmarked.
TEST(AttributeValueLimit, Cuts2048BytesAtACodePointBoundaryCountsAndMarksOnlyForItsDestination) {
  RawHttpServer server([](const RawRequest&) { return RawResponse{}; });
  Pipeline pipeline(test_config());
  PipelineDestination tempo = to(server.url("/tempo"), "tempo");
  tempo.max_attribute_value_bytes = 2048;
  PipelineDestination tempo_pb = to(server.url("/tempo-pb"), "tempo-pb", "http/protobuf");
  tempo_pb.max_attribute_value_bytes = 2048;
  const auto a = pipeline.add_destination("acct", tempo);
  const auto b = pipeline.add_destination("acct", tempo_pb);
  const auto c = pipeline.add_destination("acct", to(server.url("/whole"), "whole"));
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());

  const std::string prompt = std::string(2047, 'a') + "\xC3\xA9" + std::string(3000, 'b');
  ASSERT_EQ(pipeline.submit(request("", prompt)), submit_result::ok);
  ASSERT_TRUE(pipeline.flush(std::chrono::steady_clock::now() + 30s).complete);
  const PipelineStats s = pipeline.stats_all();
  for (const auto id : {a.id, b.id, c.id}) expect_all_delivered(of(s, id), 1);
  EXPECT_EQ(of(s, a.id).values_truncated, 1u);
  EXPECT_EQ(of(s, b.id).values_truncated, 1u);
  EXPECT_EQ(of(s, c.id).values_truncated, 0u);
  EXPECT_EQ(s.encoder.values_truncated, 2u);
  EXPECT_EQ(s.total.values_truncated, 2u);

  for (const char* path : {"/tempo", "/tempo-pb"}) {
    const auto got = bodies_at(server, path);
    ASSERT_EQ(got.size(), 1u) << path;
    const Decoded d = decode(got[0]);
    ASSERT_EQ(d.resources.size(), 1u);
    ASSERT_EQ(d.resources[0].spans.size(), 1u);
    const auto& attrs = d.resources[0].spans[0].attrs;
    EXPECT_EQ(attrs.at("gen_ai.prompt"), std::string(2047, 'a')) << path;
    EXPECT_EQ(attrs.at("tracecast.truncated"), "true") << path;
  }
  const auto whole = bodies_at(server, "/whole");
  ASSERT_EQ(whole.size(), 1u);
  const Decoded got = decode(whole[0]);
  const auto& attrs = got.resources.at(0).spans.at(0).attrs;
  EXPECT_EQ(attrs.at("gen_ai.prompt"), prompt);
  EXPECT_EQ(attrs.count("tracecast.truncated"), 0u);
}

// --- resource ---------------------------------------------------------------------------------

// W&B Weave reads wandb.entity and wandb.project from the resource: a destination's own
// resource attributes reach only it (a key of its own wins over the mapping's), equal
// resources still share one ResourceSpans, and update_destination changes them live.
TEST(DestinationResource, ItsAttributesReachOnlyItsSpansGroupAndChangeLive) {
  RawHttpServer server([](const RawRequest&) { return RawResponse{}; });
  PipelineConfig config = test_config();
  config.batch.linger = 5000ms;  // one body per flush
  Pipeline pipeline(config);
  PipelineDestination weave = to(server.url("/weave"), "weave", "http/protobuf");
  weave.resource_attributes = {{"wandb.entity", "team-a"}, {"wandb.project", "router"}, {"service.name", "weave-svc"}};
  const auto a = pipeline.add_destination("acct", weave);
  const auto b = pipeline.add_destination("acct", to(server.url("/plain"), "plain"));
  ASSERT_TRUE(a.ok() && b.ok());

  for (int i = 0; i < 3; ++i) ASSERT_EQ(pipeline.submit(request("", "hi", "gen-same")), submit_result::ok);
  ASSERT_TRUE(pipeline.flush(std::chrono::steady_clock::now() + 30s).complete);
  {
    const auto w = bodies_at(server, "/weave");
    ASSERT_EQ(w.size(), 1u);
    const Decoded d = decode(w[0]);
    ASSERT_EQ(d.resources.size(), 1u);  // three requests, one resource
    EXPECT_EQ(d.resources[0].spans.size(), 3u);
    const auto& r = d.resources[0].attrs;
    EXPECT_EQ(r.at("wandb.entity"), "team-a");
    EXPECT_EQ(r.at("wandb.project"), "router");
    EXPECT_EQ(r.at("service.name"), "weave-svc");
    EXPECT_EQ(r.at("openrouter.trace.id"), "gen-same");
    const auto p = bodies_at(server, "/plain");
    ASSERT_EQ(p.size(), 1u);
    const Decoded q = decode(p[0]);
    ASSERT_EQ(q.resources.size(), 1u);
    EXPECT_EQ(q.resources[0].spans.size(), 3u);
    EXPECT_EQ(q.resources[0].attrs.count("wandb.entity"), 0u);
    EXPECT_EQ(q.resources[0].attrs.at("service.name"), "openrouter");
  }

  weave.resource_attributes = {{"wandb.entity", "team-b"}, {"wandb.project", "router"}};
  ASSERT_TRUE(pipeline.update_destination(a.id, weave).empty());
  ASSERT_EQ(pipeline.submit(request("", "hi", "gen-later")), submit_result::ok);
  ASSERT_TRUE(pipeline.flush(std::chrono::steady_clock::now() + 30s).complete);
  const auto w = bodies_at(server, "/weave");
  ASSERT_EQ(w.size(), 2u);
  const Decoded later = decode(w[1]);
  const auto& r = later.resources.at(0).attrs;
  EXPECT_EQ(r.at("wandb.entity"), "team-b");
  EXPECT_EQ(r.at("service.name"), "openrouter");
}

// --- routing ----------------------------------------------------------------------------------

// Two threads submit requests made with four key ids ("k1", "k2", "k3", none) while a third
// toggles one destination's `enabled` and another's allow-list live. Every request is either
// handed to a destination (submitted, then delivered: the sink is healthy) or filtered, never
// both, never lost: exact per-destination counts against the accepted submits; the sink saw at
// least what was delivered (OTLP/HTTP is at-least-once).
TEST(ApiKeyFilter, FilterAndEnabledToggledLiveUnderTrafficKeepExactPerDestinationCounts) {
  SinkProcess sink;
  PipelineConfig config = test_config();
  Pipeline pipeline(config);
  PipelineDestination k1 = to(sink.url(), "k1-only");
  k1.api_key_ids = {"k1"};
  PipelineDestination k23 = to(sink.url(), "k2-k3");
  k23.api_key_ids = {"k3", "k2"};
  PipelineDestination toggled_keys = to(sink.url(), "toggled-keys");
  toggled_keys.api_key_ids = {"k1"};
  PipelineDestination toggled_on = to(sink.url(), "toggled-enabled");
  const auto d_k1 = pipeline.add_destination("acct", k1);
  const auto d_k23 = pipeline.add_destination("acct", k23);
  const auto d_all = pipeline.add_destination("", to(sink.url(), "every-key"));  // every account too
  const auto d_keys = pipeline.add_destination("acct", toggled_keys);
  const auto d_on = pipeline.add_destination("acct", toggled_on);
  for (const auto* o : {&d_k1, &d_k23, &d_all, &d_keys, &d_on}) ASSERT_TRUE(o->ok());

  constexpr const char* k_keys[4] = {"k1", "k2", "k3", ""};
  constexpr int k_per_thread = 4000;
  constexpr std::uint64_t k_min_toggles = 20;
  std::array<std::atomic<std::uint64_t>, 4> accepted{};
  std::atomic<int> producers_left{2};
  std::atomic<std::uint64_t> toggles{0};
  // At least k_per_thread each, and on until the toggler has changed both destinations
  // k_min_toggles times under their traffic.
  auto produce = [&](int seed) {
    for (int i = 0; i < k_per_thread || toggles.load(std::memory_order_relaxed) < k_min_toggles; ++i) {
      const int key = (i + seed) % 4;
      if (pipeline.submit(request(k_keys[key])) == submit_result::ok)
        accepted[static_cast<std::size_t>(key)].fetch_add(1, std::memory_order_relaxed);
      if (i % 64 == 63) std::this_thread::sleep_for(1ms);  // a gateway's pace, not a flood
    }
    producers_left.fetch_sub(1, std::memory_order_release);
  };
  std::thread toggler([&] {
    bool on = true;
    while (producers_left.load(std::memory_order_acquire) != 0) {
      on = !on;
      toggled_on.enabled = on;
      toggled_keys.api_key_ids = on ? std::vector<std::string>{"k1"} : std::vector<std::string>{"k2", "k1"};
      EXPECT_TRUE(pipeline.update_destination(d_on.id, toggled_on).empty());
      EXPECT_TRUE(pipeline.update_destination(d_keys.id, toggled_keys).empty());
      toggles.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::sleep_for(1ms);
    }
  });
  std::thread p1(produce, 0);
  std::thread p2(produce, 1);
  p1.join();
  p2.join();
  toggler.join();
  EXPECT_GE(toggles.load(), k_min_toggles);
  ASSERT_TRUE(pipeline.flush(std::chrono::steady_clock::now() + 60s).complete);

  std::uint64_t total = 0;
  for (const auto& a : accepted) total += a.load();
  ASSERT_GT(total, 0u);
  const std::uint64_t n_k1 = accepted[0], n_k2 = accepted[1], n_k3 = accepted[2];
  PipelineStats s = pipeline.stats_all();
  EXPECT_EQ(s.requests_routed, total);
  expect_accounted(of(s, d_k1.id), n_k1);
  EXPECT_EQ(of(s, d_k1.id).filtered, total - n_k1);
  expect_accounted(of(s, d_k23.id), n_k2 + n_k3);
  EXPECT_EQ(of(s, d_k23.id).filtered, total - n_k2 - n_k3);
  expect_accounted(of(s, d_all.id), total);
  EXPECT_EQ(of(s, d_all.id).filtered, 0u);
  for (const auto id : {d_keys.id, d_on.id}) {
    const DestinationCounters& d = of(s, id);
    expect_accounted(d, d.submitted);  // whatever was routed to it
    EXPECT_EQ(d.submitted + d.filtered, total) << d.name;
  }
  // The key-toggled destination never takes k3 or keyless requests.
  EXPECT_LE(of(s, d_keys.id).submitted, n_k1 + n_k2);
  EXPECT_GE(of(s, d_keys.id).filtered, n_k3 + accepted[3]);
  EXPECT_EQ(s.total.filtered, of(s, d_k1.id).filtered + of(s, d_k23.id).filtered + of(s, d_keys.id).filtered +
                                  of(s, d_on.id).filtered);
  EXPECT_TRUE(s.total.balanced());
  EXPECT_GE(sink.stats().spans, s.total.delivered);

  // Disabled now: what comes next is filtered, none of it handed to it.
  const std::uint64_t before = of(s, d_on.id).submitted;
  const std::uint64_t filtered_before = of(s, d_on.id).filtered;
  toggled_on.enabled = false;
  ASSERT_TRUE(pipeline.update_destination(d_on.id, toggled_on).empty());
  for (int i = 0; i < 100; ++i) ASSERT_EQ(pipeline.submit(request("k1")), submit_result::ok);
  ASSERT_TRUE(pipeline.flush(std::chrono::steady_clock::now() + 30s).complete);
  s = pipeline.stats_all();
  EXPECT_EQ(of(s, d_on.id).submitted, before);
  EXPECT_EQ(of(s, d_on.id).filtered, filtered_before + 100);
  EXPECT_EQ(of(s, d_k1.id).submitted, n_k1 + 100);
  const DrainResult end = pipeline.shutdown(std::chrono::steady_clock::now() + 10s);
  EXPECT_TRUE(end.complete);
  EXPECT_EQ(end.stats.total.in_flight, 0u);
  EXPECT_GE(sink.stats().spans, end.stats.total.delivered);
}

// --- the worker's parts -------------------------------------------------------------------------

TEST(KeyFilter, AdmitsExactlyTheListedIdsWithoutAllocating) {
  const std::vector<std::string> ids = {"key_b", "key_a", std::string(k_max_api_key_id_bytes, 'z')};
  const detail::KeyFilter f(ids);
  EXPECT_EQ(f.size(), 3u);
  for (const std::string& id : ids) {
    const std::uint64_t h = detail::api_key_hash(id);
    EXPECT_NE(f.mask() & detail::KeyFilter::mask_bit(h), 0u) << id;
  }
  const std::string other = "key_c";
  const std::uint64_t other_hash = detail::api_key_hash(other);
  test::AllocationScope scope;
  bool all = true;
  for (const std::string& id : ids) all = all && f.admits(detail::api_key_hash(id), id);
  EXPECT_TRUE(all);
  EXPECT_FALSE(f.admits(other_hash, other));
  EXPECT_FALSE(f.admits(detail::api_key_hash(""), ""));  // no key id: never on a list
  // A colliding hash is not enough: the id itself is compared.
  EXPECT_FALSE(f.admits(detail::api_key_hash("key_a"), "key_x"));
  EXPECT_EQ(scope.count(), 0u);
}

TEST(ExtraResource, PutsTheDestinationsAttributesFirstWithoutAllocatingOnceReserved) {
  const detail::ExtraResource extra({{"wandb.entity", "team"}, {"service.name", "weave"}});
  const Attribute mapped[] = {{"service.name", AttributeValue::string("openrouter")},
                              {"openrouter.trace.id", AttributeValue::string("gen-1")}};
  std::vector<Attribute> out;
  out.reserve(8);
  test::AllocationScope scope;
  extra.compose(mapped, out);
  EXPECT_EQ(scope.count(), 0u);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].key, "wandb.entity");
  EXPECT_EQ(out[1].value.as_string(), "weave");  // the first service.name: the encoders keep it
  EXPECT_EQ(out[3].key, "openrouter.trace.id");
}

// --- validation -------------------------------------------------------------------------------

std::vector<std::string> fields(const std::vector<ValidationIssue>& issues) {
  std::vector<std::string> out;
  for (const ValidationIssue& i : issues) out.push_back(i.path);
  return out;
}

TEST(DestinationRoutingValidation, NamesEachBadFieldWithoutEchoingKeyIdsOrValues) {
  PipelineDestination ok;
  EXPECT_TRUE(ok.validate().empty());
  ok.api_key_ids = {"k_1", std::string(k_max_api_key_id_bytes, 'h')};
  ok.max_request_bytes = 1'000'000;
  ok.max_attribute_value_bytes = 2048;
  ok.resource_attributes = {{"wandb.entity", "é-team"}};
  EXPECT_TRUE(ok.validate().empty());

  PipelineDestination d;
  d.api_key_ids.assign(PipelineDestination::k_max_api_key_ids + 1, "k");
  EXPECT_EQ(fields(d.validate()), std::vector<std::string>{"api_key_ids"});
  const std::string secretish = "secret-hash-0123456789";
  d.api_key_ids = {secretish, "", std::string(k_max_api_key_id_bytes + 1, 'h'), "has space", "tab\there", secretish};
  const auto issues = d.validate();
  EXPECT_EQ(fields(issues), (std::vector<std::string>{"api_key_ids[1]", "api_key_ids[2]", "api_key_ids[3]",
                                                      "api_key_ids[4]", "api_key_ids[5]"}));
  for (const ValidationIssue& i : issues) {
    EXPECT_FALSE(i.warning);
    EXPECT_EQ(i.message.find("secret-hash"), std::string::npos) << i.message;
    EXPECT_EQ(i.message.find("has space"), std::string::npos) << i.message;
  }

  d = {};
  d.max_request_bytes = 4095;
  d.max_attribute_value_bytes = 255;  // would cut keys (service.name, metadata keys) too
  EXPECT_EQ(fields(d.validate()), (std::vector<std::string>{"max_request_bytes", "max_attribute_value_bytes"}));
  d.max_request_bytes = 4096;
  d.max_attribute_value_bytes = 256;
  EXPECT_TRUE(d.validate().empty());
  d.max_request_bytes = (16u << 20) + 1;
  d.max_attribute_value_bytes = (16u << 20) + 1;
  EXPECT_EQ(d.validate().size(), 2u);

  d = {};
  d.resource_attributes.assign(PipelineDestination::k_max_resource_attributes + 1, {"k", "v"});
  EXPECT_EQ(fields(d.validate()), std::vector<std::string>{"resource_attributes"});
  d.resource_attributes = {{"", "v"},
                           {"wandb.entity", std::string(PipelineDestination::k_max_resource_value_bytes + 1, 'v')},
                           {"ok", "bad\xFF utf8"},
                           {"ok", "v"},
                           {"line\nbreak", "v"}};
  EXPECT_EQ(fields(d.validate()),
            (std::vector<std::string>{"resource_attributes[0].key", "resource_attributes[1].value",
                                      "resource_attributes[2].value", "resource_attributes[3].key",
                                      "resource_attributes[4].key"}));
  for (const ValidationIssue& i : d.validate()) EXPECT_EQ(i.message.find("vvvv"), std::string::npos);
}

// add_destination and update_destination refuse what validate() refuses; a refused update
// changes nothing (the destination keeps routing as before).
TEST(DestinationRoutingValidation, AddAndUpdateRefuseInvalidFieldsAndARefusedUpdateChangesNothing) {
  SinkProcess sink;
  Pipeline pipeline(test_config());
  PipelineDestination bad = to(sink.url(), "bad");
  bad.api_key_ids = {"has space"};
  const auto refused = pipeline.add_destination("acct", bad);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(fields(refused.issues), std::vector<std::string>{"api_key_ids[0]"});
  // A request's account is cut to ingest.limits.max_field_bytes (256): a longer one never matches.
  const auto too_long = pipeline.add_destination(std::string(257, 'a'), to(sink.url(), "long-account"));
  EXPECT_FALSE(too_long.ok());
  EXPECT_EQ(fields(too_long.issues), std::vector<std::string>{"account"});

  PipelineDestination good = to(sink.url(), "good");
  good.api_key_ids = {"k1"};
  const auto added = pipeline.add_destination("acct", good);
  ASSERT_TRUE(added.ok());
  good.api_key_ids = {"k2", "k2"};
  EXPECT_EQ(fields(pipeline.update_destination(added.id, good)), std::vector<std::string>{"api_key_ids[1]"});
  ASSERT_EQ(pipeline.submit(request("k1")), submit_result::ok);
  ASSERT_EQ(pipeline.submit(request("k2")), submit_result::ok);
  ASSERT_TRUE(pipeline.flush(std::chrono::steady_clock::now() + 30s).complete);
  const auto d = pipeline.destination_stats(added.id);
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->submitted, 1u);  // k1 still allowed, k2 still not
  EXPECT_EQ(d->filtered, 1u);
  EXPECT_EQ(d->delivered, 1u);
}

TEST(DestinationRoutingConfig, TheConfigFileSetsEveryFieldAndNamesBadOnes) {
  const ConfigLoadResult r = config_from_json(R"({"destinations": [
      {"account": "acct", "kind": "otlp_http", "endpoint": "http://127.0.0.1:4318/v1/traces",
       "enabled": false, "api_key_ids": ["k1", "k2"], "max_request_bytes": 1000000,
       "max_attribute_value_bytes": 2048,
       "resource_attributes": {"wandb.entity": "team", "wandb.project": "router"}}]})",
                                              "config.json");
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.destinations.size(), 1u);
  const PipelineDestination& d = r.destinations[0].second;
  EXPECT_FALSE(d.enabled);
  EXPECT_EQ(d.api_key_ids, (std::vector<std::string>{"k1", "k2"}));
  EXPECT_EQ(d.max_request_bytes, 1'000'000u);
  EXPECT_EQ(d.max_attribute_value_bytes, 2048u);
  EXPECT_EQ(d.resource_attributes,
            (std::vector<std::pair<std::string, std::string>>{{"wandb.entity", "team"}, {"wandb.project", "router"}}));

  auto error = [](std::string_view destination) {
    return config_from_json(std::string(R"({"destinations": [{"account": "", "kind": "otlp_http", "endpoint": "http://127.0.0.1:4318", )") +
                                std::string(destination) + "}]}",
                            "config.json")
        .error;
  };
  EXPECT_EQ(error(R"("api_key_ids": ["ok", "not ok"])"),
            "config.json: destinations[0].api_key_ids[1]: only printable ASCII without spaces (a key id or hash)");
  EXPECT_EQ(error(R"("max_request_bytes": 100)"),
            "config.json: destinations[0].max_request_bytes: must be 0 (batch.max_bytes) or 4096..16777216, got 100");
  EXPECT_EQ(error(R"("enabled": "yes")"), "config.json: destinations[0].enabled: expected true or false, got string");
  EXPECT_EQ(error(R"("resource_attributes": {"k": 1})"),
            "config.json: destinations[0].resource_attributes.k: expected a string, got number");
  EXPECT_EQ(error(R"("max_attribute_value_bytes": -1)").find("config.json: destinations[0].max_attribute_value_bytes: "), 0u);
}

}  // namespace
}  // namespace tracecast
