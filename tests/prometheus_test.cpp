// format_prometheus(): the output parses as the Prometheus text exposition format (checked
// line by line by a small parser here) and its values are the PipelineStats it was given.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <simdjson.h>

#include "pipeline_internal_prometheus.h"

namespace tracecast {
namespace {

using Labels = std::map<std::string, std::string>;

struct Sample {
  std::string name;
  Labels labels;
  double value = 0;
};

struct Family {
  std::string type;
  std::string help;
  int help_lines = 0;
  int type_lines = 0;
};

struct Exposition {
  std::map<std::string, Family> families;
  std::vector<Sample> samples;
  std::vector<std::string> problems;  // empty: the text is well formed
};

bool valid_metric_name(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool valid_label_name(std::string_view s) { return valid_metric_name(s) && s.find(':') == std::string_view::npos; }

// The family a sample belongs to: itself, or for a histogram's _bucket/_sum/_count series the
// name without the suffix.
std::string family_of(const std::string& name, const std::map<std::string, Family>& families) {
  if (families.count(name) != 0) return name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string_view s(suffix);
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      const std::string base = name.substr(0, name.size() - s.size());
      const auto it = families.find(base);
      if (it != families.end() && it->second.type == "histogram") return base;
    }
  }
  return {};
}

// Parses `{a="x",b="y\"z"}` starting at text[pos] == '{'; pos ends after '}'.
bool parse_labels(std::string_view text, std::size_t& pos, Labels& out, std::string& problem) {
  auto bad = [&problem](std::string why) {
    problem = std::move(why);
    return false;
  };
  ++pos;  // '{'
  while (pos < text.size() && text[pos] != '}') {
    const std::size_t eq = text.find('=', pos);
    if (eq == std::string_view::npos) return bad("label without '='");
    const std::string name(text.substr(pos, eq - pos));
    if (!valid_label_name(name)) return bad("bad label name '" + name + "'");
    pos = eq + 1;
    if (pos >= text.size() || text[pos] != '"') return bad("label value not quoted");
    ++pos;
    std::string value;
    while (true) {
      if (pos >= text.size()) return bad("unterminated label value");
      const char c = text[pos++];
      if (c == '"') break;
      if (c == '\n') return bad("raw newline in a label value");
      if (c == '\\') {
        if (pos >= text.size()) return bad("dangling backslash");
        const char e = text[pos++];
        if (e == 'n') {
          value.push_back('\n');
        } else if (e == '\\' || e == '"') {
          value.push_back(e);
        } else {
          return bad("bad escape in a label value");
        }
        continue;
      }
      value.push_back(c);
    }
    if (out.count(name) != 0) return bad("duplicate label " + name);
    out[name] = value;
    if (pos < text.size() && text[pos] == ',') ++pos;
  }
  if (pos >= text.size()) return bad("unterminated label set");
  ++pos;  // '}'
  return true;
}

Exposition parse(const std::string& text) {
  Exposition ex;
  auto problem = [&ex](std::size_t line_no, const std::string& what) {
    ex.problems.push_back("line " + std::to_string(line_no) + ": " + what);
  };
  if (text.empty() || text.back() != '\n') ex.problems.push_back("does not end in a newline");
  std::istringstream in(text);
  std::string line;
  std::size_t line_no = 0;
  std::string current;            // family whose samples are being read
  std::set<std::string> closed;  // families whose samples are over (must not reappear)
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty()) {
      problem(line_no, "empty line");
      continue;
    }
    if (line[0] == '#') {
      std::istringstream words(line);
      std::string hash, kind, name;
      words >> hash >> kind >> name;
      if (kind != "HELP" && kind != "TYPE") continue;  // other comments are allowed
      if (!valid_metric_name(name)) problem(line_no, "bad metric name in " + kind);
      if (name != current && !current.empty()) closed.insert(current);
      if (closed.count(name) != 0) problem(line_no, name + ": " + kind + " after its samples ended");
      current = name;
      Family& f = ex.families[name];
      std::string rest;
      std::getline(words, rest);
      if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
      if (kind == "HELP") {
        ++f.help_lines;
        f.help = rest;
      } else {
        ++f.type_lines;
        f.type = rest;
        if (rest != "counter" && rest != "gauge" && rest != "histogram" && rest != "summary" && rest != "untyped")
          problem(line_no, "unknown type '" + rest + "'");
      }
      continue;
    }
    Sample s;
    std::size_t pos = 0;
    while (pos < line.size() && line[pos] != '{' && line[pos] != ' ') ++pos;
    s.name = line.substr(0, pos);
    if (!valid_metric_name(s.name)) {
      problem(line_no, "bad metric name '" + s.name + "'");
      continue;
    }
    std::string why;
    if (pos < line.size() && line[pos] == '{' && !parse_labels(line, pos, s.labels, why)) {
      problem(line_no, why);
      continue;
    }
    if (pos >= line.size() || line[pos] != ' ') {
      problem(line_no, "no space before the value");
      continue;
    }
    const std::string value_text = line.substr(pos + 1);
    if (value_text == "+Inf") {
      s.value = INFINITY;
    } else {
      char* end = nullptr;
      s.value = std::strtod(value_text.c_str(), &end);
      if (value_text.empty() || end != value_text.c_str() + value_text.size())
        problem(line_no, "value '" + value_text + "' is not a number (or has a timestamp)");
    }
    const std::string family = family_of(s.name, ex.families);
    if (family.empty()) {
      problem(line_no, s.name + ": sample without # TYPE");
    } else if (family != current) {
      problem(line_no, s.name + ": sample outside its family's block");
    } else if (ex.families[family].help_lines == 0 || ex.families[family].type_lines == 0) {
      problem(line_no, s.name + ": sample before HELP and TYPE");
    }
    ex.samples.push_back(std::move(s));
  }
  for (const auto& [name, f] : ex.families) {
    if (f.help_lines != 1) ex.problems.push_back(name + ": " + std::to_string(f.help_lines) + " HELP lines");
    if (f.type_lines != 1) ex.problems.push_back(name + ": " + std::to_string(f.type_lines) + " TYPE lines");
  }
  // Histograms: per label set (le aside), buckets in increasing le, cumulative, ending with
  // +Inf equal to _count; _sum present.
  for (const auto& [name, f] : ex.families) {
    if (f.type != "histogram") continue;
    std::map<Labels, std::vector<std::pair<double, double>>> buckets;
    std::map<Labels, double> counts, sums;
    for (const Sample& s : ex.samples) {
      if (s.name == name + "_bucket") {
        Labels l = s.labels;
        const auto le = l.find("le");
        if (le == l.end()) {
          ex.problems.push_back(name + ": bucket without le");
          continue;
        }
        const double bound = le->second == "+Inf" ? INFINITY : std::strtod(le->second.c_str(), nullptr);
        l.erase(le);
        buckets[l].emplace_back(bound, s.value);
      } else if (s.name == name + "_count") {
        counts[s.labels] = s.value;
      } else if (s.name == name + "_sum") {
        sums[s.labels] = s.value;
      }
    }
    for (const auto& [labels, series] : buckets) {
      for (std::size_t i = 1; i < series.size(); ++i) {
        if (!(series[i].first > series[i - 1].first)) ex.problems.push_back(name + ": le not increasing");
        if (series[i].second < series[i - 1].second) ex.problems.push_back(name + ": buckets not cumulative");
      }
      if (series.empty() || !std::isinf(series.back().first)) ex.problems.push_back(name + ": no +Inf bucket last");
      if (counts.count(labels) == 0 || sums.count(labels) == 0) {
        ex.problems.push_back(name + ": _count or _sum missing");
      } else if (!series.empty() && series.back().second != counts[labels]) {
        ex.problems.push_back(name + ": +Inf bucket != _count");
      }
    }
  }
  return ex;
}

std::optional<double> find(const Exposition& ex, std::string_view name, const Labels& labels) {
  std::optional<double> found;
  for (const Sample& s : ex.samples) {
    if (s.name == name && s.labels == labels) {
      if (found) return std::nullopt;  // ambiguous: a duplicate series
      found = s.value;
    }
  }
  return found;
}

Labels dest(const std::string& name, const std::string& id, const std::string& account) {
  return {{"destination", name}, {"id", id}, {"account", account}};
}

Labels with(Labels l, const std::string& k, const std::string& v) {
  l[k] = v;
  return l;
}

DestinationCounters make_destination(std::uint32_t id, std::string name, std::string account, std::uint64_t seed) {
  DestinationCounters d;
  d.id = id;
  d.name = std::move(name);
  d.account = std::move(account);
  d.submitted = 1000 * seed;
  d.delivered = 700 * seed;
  d.in_flight = 100 * seed;
  for (std::size_t r = 0; r < k_drop_reasons; ++r) d.dropped[r] = (r + 1) * seed;  // sums to 45 * seed
  d.delivered = d.submitted - d.in_flight - d.dropped_total();
  d.requests_sent = 11 * seed;
  d.requests_delivered = 9 * seed;
  d.retries = 3 * seed;
  d.bytes_raw = 123456 * seed;
  d.bytes_compressed = 23456 * seed;
  d.buffer_bytes = 4096 * seed;
  for (std::size_t b = 0; b < d.latency_buckets.size(); ++b) d.latency_buckets[b] = (b % 3) * seed;
  d.latency_sum_ns = 1'500'000'000ull * seed;
  return d;
}

PipelineStats make_stats() {
  PipelineStats s;
  s.ingest.accepted = 5000;
  s.ingest.rejected_full = 17;
  s.ingest.rejected_closed = 2;
  s.ingest.drained = 4990;
  s.ingest.truncated_values = 8;
  s.ingest.dropped_metadata = 4;
  s.ingest.overflow_submits = 11;
  s.requests_routed = 4900;
  s.requests_unrouted = 90;
  s.mapping_issues = 6;
  s.encoder.invalid_utf8_replaced = 1;
  s.encoder.values_truncated = 2;
  s.encoder.duplicate_keys_skipped = 3;
  s.encoder.attributes_dropped = 4;
  s.encoder.spans_too_large = 5;
  s.encoder.spans_invalid_id = 6;
  s.memory_bytes = 1u << 20;
  s.memory_peak_bytes = 3u << 20;
  s.destinations.push_back(make_destination(1, "grafana-prod", "acct_1", 1));
  s.destinations.push_back(make_destination(2, "collector", "", 2));
  s.destinations.push_back(make_destination(7, "we\"ird\\name\nx", "acct \"q\"", 3));
  s.destinations.back().removed = true;
  return s;
}

// The checker itself must catch what it is there to catch, or the tests below prove nothing.
TEST(PrometheusChecker, RejectsMalformedExpositions) {
  const char* header = "# HELP m_total h\n# TYPE m_total counter\n";
  const std::string bad[] = {
      std::string(header) + "m_total 1",                                  // no final newline
      "m_total 1\n",                                                      // no HELP/TYPE
      std::string(header) + "m_total{a=\"x} 1\n",                         // unterminated value
      std::string(header) + "m_total{a=\"x\\q\"} 1\n",                  // bad escape
      std::string(header) + "m_total one\n",                              // not a number
      std::string(header) + header + "m_total 1\n",                       // HELP/TYPE twice
      std::string(header) + "m_total 1\n# HELP n h\n# TYPE n gauge\nn 1\nm_total 2\n",  // interleaved
      "# HELP h_seconds h\n# TYPE h_seconds histogram\nh_seconds_bucket{le=\"1\"} 5\n"
      "h_seconds_bucket{le=\"+Inf\"} 4\nh_seconds_sum 1\nh_seconds_count 4\n",  // not cumulative
      "# HELP h_seconds h\n# TYPE h_seconds histogram\nh_seconds_bucket{le=\"1\"} 1\n"
      "h_seconds_bucket{le=\"+Inf\"} 2\nh_seconds_sum 1\nh_seconds_count 3\n",  // +Inf != count
  };
  for (const std::string& text : bad) EXPECT_THAT(parse(text).problems, ::testing::Not(::testing::IsEmpty())) << text;
  const std::string good = std::string(header) + "m_total{a=\"x\\\"y\"} 1\n";
  EXPECT_THAT(parse(good).problems, ::testing::IsEmpty());
  EXPECT_EQ(find(parse(good), "m_total", {{"a", "x\"y"}}), 1.0);
}

TEST(Prometheus, OutputParsesAsTheTextExpositionFormat) {
  const std::string text = detail::format_prometheus(make_stats());
  const Exposition ex = parse(text);
  EXPECT_THAT(ex.problems, ::testing::IsEmpty()) << text;
  EXPECT_GE(ex.families.size(), 20u);
  for (const auto& [name, f] : ex.families) {
    EXPECT_THAT(name, ::testing::StartsWith("tracecast_"));
    EXPECT_FALSE(f.help.empty()) << name;
    if (f.type == "counter") {
      EXPECT_THAT(name, ::testing::EndsWith("_total"));
    }
  }
}

TEST(Prometheus, IsWellFormedWithNoDestinations) {
  PipelineStats s;
  const Exposition ex = parse(detail::format_prometheus(s));
  EXPECT_THAT(ex.problems, ::testing::IsEmpty());
  EXPECT_EQ(find(ex, "tracecast_ingest_requests_total", {{"result", "accepted"}}), 0.0);
}

TEST(Prometheus, ReportsThePipelineWideValues) {
  const PipelineStats s = make_stats();
  const Exposition ex = parse(detail::format_prometheus(s));
  ASSERT_THAT(ex.problems, ::testing::IsEmpty());
  EXPECT_EQ(find(ex, "tracecast_ingest_requests_total", {{"result", "accepted"}}), 5000.0);
  EXPECT_EQ(find(ex, "tracecast_ingest_requests_total", {{"result", "full"}}), 17.0);
  EXPECT_EQ(find(ex, "tracecast_ingest_requests_total", {{"result", "closed"}}), 2.0);
  EXPECT_EQ(find(ex, "tracecast_ingest_drained_requests_total", {}), 4990.0);
  EXPECT_EQ(find(ex, "tracecast_ingest_truncated_values_total", {}), 8.0);
  EXPECT_EQ(find(ex, "tracecast_ingest_dropped_metadata_entries_total", {}), 4.0);
  EXPECT_EQ(find(ex, "tracecast_ingest_overflow_submits_total", {}), 11.0);
  EXPECT_EQ(find(ex, "tracecast_requests_routed_total", {}), 4900.0);
  EXPECT_EQ(find(ex, "tracecast_requests_unrouted_total", {}), 90.0);
  EXPECT_EQ(find(ex, "tracecast_mapping_issues_total", {}), 6.0);
  EXPECT_EQ(find(ex, "tracecast_encoder_invalid_utf8_replaced_total", {}), 1.0);
  EXPECT_EQ(find(ex, "tracecast_encoder_values_truncated_total", {}), 2.0);
  EXPECT_EQ(find(ex, "tracecast_encoder_duplicate_keys_skipped_total", {}), 3.0);
  EXPECT_EQ(find(ex, "tracecast_encoder_attributes_dropped_total", {}), 4.0);
  EXPECT_EQ(find(ex, "tracecast_encoder_spans_too_large_total", {}), 5.0);
  EXPECT_EQ(find(ex, "tracecast_encoder_spans_invalid_id_total", {}), 6.0);
  EXPECT_EQ(find(ex, "tracecast_memory_bytes", {}), static_cast<double>(1u << 20));
  EXPECT_EQ(find(ex, "tracecast_memory_peak_bytes", {}), static_cast<double>(3u << 20));
  EXPECT_EQ(ex.families.at("tracecast_memory_bytes").type, "gauge");
  EXPECT_EQ(ex.families.at("tracecast_ingest_requests_total").type, "counter");
}

TEST(Prometheus, ReportsEveryDestinationUnderItsLabels) {
  const PipelineStats s = make_stats();
  const Exposition ex = parse(detail::format_prometheus(s));
  ASSERT_THAT(ex.problems, ::testing::IsEmpty());
  for (const DestinationCounters& d : s.destinations) {
    SCOPED_TRACE(d.name);
    const Labels l = dest(d.name, std::to_string(d.id), d.account);  // unescaped by the parser
    EXPECT_EQ(find(ex, "tracecast_destination_spans_submitted_total", l), static_cast<double>(d.submitted));
    EXPECT_EQ(find(ex, "tracecast_destination_spans_delivered_total", l), static_cast<double>(d.delivered));
    EXPECT_EQ(find(ex, "tracecast_destination_spans_in_flight", l), static_cast<double>(d.in_flight));
    for (std::size_t r = 0; r < k_drop_reasons; ++r) {
      const std::string reason(to_string(static_cast<DropReason>(r)));
      EXPECT_EQ(find(ex, "tracecast_destination_spans_dropped_total", with(l, "reason", reason)),
                static_cast<double>(d.dropped[r]))
          << reason;
    }
    EXPECT_EQ(find(ex, "tracecast_destination_requests_sent_total", l), static_cast<double>(d.requests_sent));
    EXPECT_EQ(find(ex, "tracecast_destination_requests_delivered_total", l), static_cast<double>(d.requests_delivered));
    EXPECT_EQ(find(ex, "tracecast_destination_retries_total", l), static_cast<double>(d.retries));
    EXPECT_EQ(find(ex, "tracecast_destination_bytes_raw_total", l), static_cast<double>(d.bytes_raw));
    EXPECT_EQ(find(ex, "tracecast_destination_bytes_compressed_total", l), static_cast<double>(d.bytes_compressed));
    EXPECT_EQ(find(ex, "tracecast_destination_buffer_bytes", l), static_cast<double>(d.buffer_bytes));
    EXPECT_EQ(find(ex, "tracecast_destination_removed", l), d.removed ? 1.0 : 0.0);
  }
  EXPECT_EQ(ex.families.at("tracecast_destination_spans_in_flight").type, "gauge");
  EXPECT_EQ(ex.families.at("tracecast_destination_buffer_bytes").type, "gauge");
}

TEST(Prometheus, TheAccountingIdentityReadsBackFromTheText) {
  const PipelineStats s = make_stats();
  const Exposition ex = parse(detail::format_prometheus(s));
  ASSERT_THAT(ex.problems, ::testing::IsEmpty());
  for (const DestinationCounters& d : s.destinations) {
    const Labels l = dest(d.name, std::to_string(d.id), d.account);
    double dropped = 0;
    for (std::size_t r = 0; r < k_drop_reasons; ++r)
      dropped += *find(ex, "tracecast_destination_spans_dropped_total",
                       with(l, "reason", std::string(to_string(static_cast<DropReason>(r)))));
    EXPECT_EQ(*find(ex, "tracecast_destination_spans_submitted_total", l),
              *find(ex, "tracecast_destination_spans_delivered_total", l) + dropped +
                  *find(ex, "tracecast_destination_spans_in_flight", l));
  }
}

TEST(Prometheus, WritesTheLatencyHistogramCumulativelyInSeconds) {
  const PipelineStats s = make_stats();
  const Exposition ex = parse(detail::format_prometheus(s));
  ASSERT_THAT(ex.problems, ::testing::IsEmpty());
  EXPECT_EQ(ex.families.at("tracecast_destination_request_duration_seconds").type, "histogram");
  const DestinationCounters& d = s.destinations[1];
  const Labels l = dest(d.name, std::to_string(d.id), d.account);
  const char* les[] = {"0.001", "0.002", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "5", "30"};
  static_assert(std::size(les) == k_latency_bounds_ms.size());
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b < k_latency_bounds_ms.size(); ++b) {
    cumulative += d.latency_buckets[b];
    EXPECT_EQ(find(ex, "tracecast_destination_request_duration_seconds_bucket", with(l, "le", les[b])),
              static_cast<double>(cumulative))
        << les[b];
  }
  cumulative += d.latency_buckets.back();
  EXPECT_EQ(find(ex, "tracecast_destination_request_duration_seconds_bucket", with(l, "le", "+Inf")),
            static_cast<double>(cumulative));
  EXPECT_EQ(find(ex, "tracecast_destination_request_duration_seconds_count", l), static_cast<double>(cumulative));
  EXPECT_DOUBLE_EQ(*find(ex, "tracecast_destination_request_duration_seconds_sum", l), 3.0);
}

// The per-destination series list only some destinations (stats()): the totals and the
// per-state counts are their own series, and each listed destination carries its health.
TEST(Prometheus, WritesTotalsStatesAndEachListedDestinationsHealth) {
  PipelineStats s = make_stats();
  s.total = make_destination(0, "total", "", 10);
  s.destinations_by_state = {149'970, 5, 20, 3, 2};
  s.destinations_configured = 150'000;
  s.health_notices_dropped = 4;
  DestinationHealth& h = s.destinations[0].health;
  h.state = DestinationState::failing;
  h.last_http_status = 401;
  h.consecutive_failures = 12;
  h.last_error_unix_ns = 1'700'000'000'500'000'000;
  h.last_success_unix_ns = 1'699'999'000'000'000'000;
  const Exposition ex = parse(detail::format_prometheus(s));
  ASSERT_THAT(ex.problems, ::testing::IsEmpty());
  EXPECT_EQ(find(ex, "tracecast_spans_submitted_total", {}), static_cast<double>(s.total.submitted));
  EXPECT_EQ(find(ex, "tracecast_spans_delivered_total", {}), static_cast<double>(s.total.delivered));
  EXPECT_EQ(find(ex, "tracecast_spans_in_flight", {}), static_cast<double>(s.total.in_flight));
  for (std::size_t r = 0; r < k_drop_reasons; ++r) {
    const std::string reason(to_string(static_cast<DropReason>(r)));
    EXPECT_EQ(find(ex, "tracecast_spans_dropped_total", {{"reason", reason}}), static_cast<double>(s.total.dropped[r]))
        << reason;
  }
  EXPECT_EQ(find(ex, "tracecast_requests_sent_total", {}), static_cast<double>(s.total.requests_sent));
  EXPECT_EQ(find(ex, "tracecast_retries_total", {}), static_cast<double>(s.total.retries));
  EXPECT_EQ(find(ex, "tracecast_destinations_configured", {}), 150'000.0);
  EXPECT_EQ(find(ex, "tracecast_destinations_listed", {}), 3.0);
  EXPECT_EQ(find(ex, "tracecast_health_notices_dropped_total", {}), 4.0);
  const char* states[] = {"healthy", "retrying", "failing", "blocked", "disabled"};
  static_assert(std::size(states) == k_destination_states);
  for (std::size_t i = 0; i < k_destination_states; ++i) {
    EXPECT_EQ(find(ex, "tracecast_destinations", {{"state", states[i]}}),
              static_cast<double>(s.destinations_by_state[i]))
        << states[i];
  }
  const DestinationCounters& d = s.destinations[0];
  const Labels l = dest(d.name, std::to_string(d.id), d.account);
  for (const char* st : states) {
    EXPECT_EQ(find(ex, "tracecast_destination_state", with(l, "state", st)), std::string(st) == "failing" ? 1.0 : 0.0)
        << st;
  }
  EXPECT_EQ(find(ex, "tracecast_destination_consecutive_failures", l), 12.0);
  EXPECT_EQ(find(ex, "tracecast_destination_last_error_http_status", l), 401.0);
  EXPECT_DOUBLE_EQ(*find(ex, "tracecast_destination_last_error_timestamp_seconds", l), 1'700'000'000.5);
  EXPECT_DOUBLE_EQ(*find(ex, "tracecast_destination_last_success_timestamp_seconds", l), 1'699'999'000.0);
  const Labels other = dest(s.destinations[1].name, "2", s.destinations[1].account);
  EXPECT_EQ(find(ex, "tracecast_destination_state", with(other, "state", "healthy")), 1.0);
  EXPECT_EQ(find(ex, "tracecast_destination_last_success_timestamp_seconds", other), 0.0);
}

TEST(Prometheus, EscapesLabelValues) {
  EXPECT_EQ(detail::escape_label_value("plain"), "plain");
  EXPECT_EQ(detail::escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  const std::string text = detail::format_prometheus(make_stats());
  EXPECT_THAT(text, ::testing::HasSubstr(R"(destination="we\"ird\\name\nx",id="7",account="acct \"q\"")"));
}

// The exposition format is UTF-8 (a scraper refuses the whole page on one bad label value):
// a customer's ill-formed destination name or account comes out with U+FFFD, each maximal
// ill-formed subpart replaced once, and well-formed text (é, 東, 🚀) kept as is.
TEST(Prometheus, LabelValuesAreAlwaysUtf8) {
  EXPECT_EQ(detail::escape_label_value("na\"me\\\xc3("), "na\\\"me\\\\\xEF\xBF\xBD(");
  EXPECT_EQ(detail::escape_label_value("ac\xff\xfe"), "ac\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(detail::escape_label_value("\xed\xa0\x80x"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDx");  // a surrogate
  EXPECT_EQ(detail::escape_label_value("\xe6\x9d"), "\xEF\xBF\xBD");  // cut sequence: one
  EXPECT_EQ(detail::escape_label_value("caf\xc3\xa9 \xe6\x9d\xb1 \xf0\x9f\x9a\x80"), "caf\xc3\xa9 \xe6\x9d\xb1 \xf0\x9f\x9a\x80");
  PipelineStats s = make_stats();
  s.destinations[0].name = "bad\xc3(name";
  s.destinations[0].account = "acct\xff";
  const std::string text = detail::format_prometheus(s);
  EXPECT_THAT(text, ::testing::HasSubstr("destination=\"bad\xEF\xBF\xBD(name\""));
  EXPECT_THAT(text, ::testing::HasSubstr("account=\"acct\xEF\xBF\xBD\""));
  EXPECT_TRUE(simdjson::validate_utf8(text.data(), text.size()));
}

}  // namespace
}  // namespace tracecast
