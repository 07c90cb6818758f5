// What a destination's own routing and limits (issue 11) cost the worker, each beside its
// baseline in the same binary:
//
//   build/bench/routing_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// BM_Route_*: the per-request routing decision over an account's destinations, as route()
// makes it: NoFilter checks the one route_filter byte of each destination (the cost every
// destination pays), KeyFilter/<ids> hashes the request's key id once and searches each
// destination's allow-list of <ids> entries.
// BM_Encode_*_ValueLimit/<bytes>: the content workload (~1 KiB prompt and completion per span)
// encoded with a destination's value limit (begin()'s max_value_bytes): 2048 cuts nothing (the
// cost of the limit alone), 512 cuts both values of every span and marks it; beside the same
// encoder with no batch limit.
// BM_RouteTable_Lookup/<accounts>: the account's lookup in the worker's route table
// (route_table.h) for requests of random accounts, 1.5 destinations each, reading the first
// destination's first byte as routing does (so a table that leaves the destination's miss to
// overlap with its own shows it); BM_RouteTable_NodeMapBaseline: the same through
// std::unordered_map<std::string, std::vector<T*>>, the table before.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <unordered_map>
#include <memory>
#include <string>
#include <vector>

#include "destination_routing.h"
#include "route_table.h"
#include "tracecast/otlp_json.h"
#include "tracecast/otlp_protobuf.h"
#include "workload.h"

namespace {

using namespace tracecast;

// --- routing --------------------------------------------------------------------------------

constexpr std::size_t k_destinations = 8;  // an account's destinations
constexpr std::size_t k_key_ids = 1024;    // distinct key ids cycled through by the requests

struct RouteDest {
  std::uint8_t route_filter = 0;
  std::uint64_t key_mask = 0;
  detail::KeyFilter keys;
};

std::vector<std::string> key_ids() {
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < k_key_ids; ++i) ids.push_back("key_" + std::to_string(i * 7919) + "_sha256hex");
  return ids;
}

// Each destination allows `per_list` of the ids (a different slice each).
std::vector<RouteDest> destinations(std::size_t per_list, const std::vector<std::string>& ids) {
  std::vector<RouteDest> out(k_destinations);
  for (std::size_t d = 0; d < k_destinations; ++d) {
    if (per_list == 0) continue;
    std::vector<std::string> list;
    for (std::size_t i = 0; i < per_list; ++i) list.push_back(ids[(d * 97 + i * 3) % ids.size()]);
    out[d].keys = detail::KeyFilter(list);
    out[d].key_mask = out[d].keys.mask();
    out[d].route_filter = 2;
  }
  return out;
}

void route(benchmark::State& state, std::size_t per_list) {
  const std::vector<std::string> ids = key_ids();
  const std::vector<RouteDest> dests = destinations(per_list, ids);
  std::size_t i = 0;
  std::uint64_t taken = 0;
  for (auto _ : state) {
    const std::string_view id = ids[i++ & (k_key_ids - 1)];
    std::uint64_t hash = 0;
    bool hashed = false;
    for (const RouteDest& d : dests) {
      bool take = true;
      if (d.route_filter != 0) {
        if (!hashed) {
          hash = detail::api_key_hash(id);
          hashed = true;
        }
        take = (d.key_mask & detail::KeyFilter::mask_bit(hash)) != 0 && d.keys.admits(hash, id);
      }
      taken += take ? 1 : 0;
    }
    benchmark::DoNotOptimize(taken);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.counters["destinations"] = k_destinations;
  state.counters["taken_per_request"] = static_cast<double>(taken) / static_cast<double>(state.iterations());
}

void BM_Route_NoFilter(benchmark::State& s) { route(s, 0); }
void BM_Route_KeyFilter(benchmark::State& s) { route(s, static_cast<std::size_t>(s.range(0))); }
BENCHMARK(BM_Route_NoFilter);
BENCHMARK(BM_Route_KeyFilter)->Arg(1)->Arg(16)->Arg(1024);

// --- encoder value limit --------------------------------------------------------------------

constexpr std::size_t k_requests = 1024;
constexpr std::size_t k_budget = 1024 * 1024;

struct Corpus {
  Corpus() : gen(12345, /*content=*/true) {
    for (std::size_t i = 0; i < k_requests; ++i) {
      reqs.push_back(std::make_unique<workload::SpanRequest>());
      gen.next(*reqs.back());
    }
  }
  workload::SpanGenerator gen;
  std::vector<std::unique_ptr<workload::SpanRequest>> reqs;
};

template <typename Encoder>
void encode(benchmark::State& state, std::size_t max_value_bytes) {
  static const Corpus c;
  std::vector<char> buffer(k_budget);
  Encoder enc;
  std::size_t bytes = 0;
  for (auto _ : state) {
    bytes = 0;
    enc.begin(buffer, k_budget, max_value_bytes);
    for (const auto& r : c.reqs) {
      if (enc.append(r->resource(), r->scope(), r->spans()) != append_result::ok) {
        bytes += enc.finish().size();
        enc.begin(buffer, k_budget, max_value_bytes);
        (void)enc.append(r->resource(), r->scope(), r->spans());
      }
    }
    bytes += enc.finish().size();
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * k_requests));
  state.counters["bytes_per_span"] = static_cast<double>(bytes) / k_requests;
  state.counters["cuts_per_request"] =
      static_cast<double>(enc.stats().values_truncated) / static_cast<double>(state.iterations() * k_requests);
}

void BM_Encode_Content_NoValueLimit(benchmark::State& s) { encode<OtlpJsonEncoder>(s, 0); }
void BM_Encode_Content_ValueLimit(benchmark::State& s) { encode<OtlpJsonEncoder>(s, static_cast<std::size_t>(s.range(0))); }
void BM_Encode_Protobuf_Content_NoValueLimit(benchmark::State& s) { encode<OtlpProtobufEncoder>(s, 0); }
void BM_Encode_Protobuf_Content_ValueLimit(benchmark::State& s) {
  encode<OtlpProtobufEncoder>(s, static_cast<std::size_t>(s.range(0)));
}
BENCHMARK(BM_Encode_Content_NoValueLimit);
BENCHMARK(BM_Encode_Content_ValueLimit)->Arg(2048)->Arg(512);
BENCHMARK(BM_Encode_Protobuf_Content_NoValueLimit);
BENCHMARK(BM_Encode_Protobuf_Content_ValueLimit)->Arg(2048)->Arg(512);

struct alignas(64) FakeDestination {
  unsigned char route_filter = 0;
  char rest[383] = {};
};

struct Accounts {
  std::vector<std::string> names;
  std::vector<std::unique_ptr<FakeDestination>> destinations;
  std::vector<std::pair<std::size_t, FakeDestination*>> routes;  // (account, destination)
  std::vector<std::uint32_t> order;                               // random requests
  explicit Accounts(std::size_t n) {
    std::mt19937_64 rng(7);
    for (std::size_t a = 0; a < n; ++a) {
      names.push_back("acct_" + std::to_string(a));
      const std::size_t dests = 1 + (a % 2 == 0 ? 0 : 1);  // 1.5 on average
      for (std::size_t k = 0; k < dests; ++k) {
        destinations.push_back(std::make_unique<FakeDestination>());
        routes.emplace_back(a, destinations.back().get());
      }
    }
    order.resize(1 << 16);
    for (auto& o : order) o = static_cast<std::uint32_t>(rng() % n);
  }
};

void BM_RouteTable_Lookup(benchmark::State& state) {
  const Accounts acc(static_cast<std::size_t>(state.range(0)));
  detail::RouteTable<FakeDestination> table;
  for (const auto& [a, d] : acc.routes) table.add(acc.names[a], d);
  std::size_t i = 0;
  std::uint64_t sum = 0;
  for (auto _ : state) {
    const auto own = table.own(acc.names[acc.order[i++ & (acc.order.size() - 1)]]);
    sum += own.size() + own[0]->route_filter;
  }
  benchmark::DoNotOptimize(sum);
  state.counters["table_bytes_per_account"] =
      static_cast<double>(table.heap_bytes()) / static_cast<double>(acc.names.size());
}
void BM_RouteTable_NodeMapBaseline(benchmark::State& state) {
  const Accounts acc(static_cast<std::size_t>(state.range(0)));
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::vector<FakeDestination*>, Hash, std::equal_to<>> map;
  for (const auto& [a, d] : acc.routes) map[acc.names[a]].push_back(d);
  std::size_t i = 0;
  std::uint64_t sum = 0;
  for (auto _ : state) {
    const auto it = map.find(std::string_view(acc.names[acc.order[i++ & (acc.order.size() - 1)]]));
    sum += it->second.size() + it->second[0]->route_filter;
  }
  benchmark::DoNotOptimize(sum);
}
BENCHMARK(BM_RouteTable_Lookup)->Arg(100)->Arg(10000)->Arg(100000);
BENCHMARK(BM_RouteTable_NodeMapBaseline)->Arg(100)->Arg(10000)->Arg(100000);

}  // namespace

BENCHMARK_MAIN();
