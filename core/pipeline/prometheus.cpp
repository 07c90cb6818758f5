// PipelineStats -> Prometheus text exposition format (see pipeline_internal_prometheus.h).
#include "pipeline_internal_prometheus.h"
#include "tracecast/utf8.h"

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tracecast::detail {
namespace {

constexpr std::string_view k_result_label = "result";
constexpr std::string_view k_reason_label = "reason";
constexpr std::string_view k_state_label = "state";

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// Shortest text that reads back as the same double ("0.005", "30", "1.25e-07").
void append_double(std::string& out, double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// HELP text escaping: backslash and newline only (the exposition format).
void append_help_text(std::string& out, std::string_view text) {
  for (const char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
}

class Writer {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_.push_back(' ');
    append_help_text(out_, help);
    out_ += "\n# TYPE ";
    out_ += name;
    out_.push_back(' ');
    out_ += type;
    out_.push_back('\n');
  }

  // `labels` is the already-escaped inside of {...}, or empty; `extra` one more label.
  void sample(std::string_view name, std::string_view labels, std::uint64_t value,
              std::string_view extra_name = {}, std::string_view extra_value = {}) {
    begin_sample(name, labels, extra_name, extra_value);
    append_uint(out_, value);
    out_.push_back('\n');
  }

  void sample_double(std::string_view name, std::string_view labels, double value,
                     std::string_view extra_name = {}, std::string_view extra_value = {}) {
    begin_sample(name, labels, extra_name, extra_value);
    append_double(out_, value);
    out_.push_back('\n');
  }

  std::string take() { return std::move(out_); }

 private:
  void begin_sample(std::string_view name, std::string_view labels, std::string_view extra_name,
                    std::string_view extra_value) {
    out_ += name;
    if (!labels.empty() || !extra_name.empty()) {
      out_.push_back('{');
      out_ += labels;
      if (!extra_name.empty()) {
        if (!labels.empty()) out_.push_back(',');
        out_ += extra_name;
        out_ += "=\"";
        out_ += escape_label_value(extra_value);
        out_.push_back('"');
      }
      out_.push_back('}');
    }
    out_.push_back(' ');
  }

  std::string out_;
};

std::string destination_labels(const DestinationCounters& d) {
  std::string labels = "destination=\"";
  labels += escape_label_value(d.name);
  labels += "\",id=\"";
  append_uint(labels, d.id);
  labels += "\",account=\"";
  labels += escape_label_value(d.account);
  labels += '"';
  return labels;
}

std::string le_text(double bound_ms) {
  std::string s;
  append_double(s, bound_ms / 1000.0);
  return s;
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  const auto* in = reinterpret_cast<const unsigned char*>(value.data());
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (in[i] >= 0x80) {
      // The exposition format is UTF-8: one ill-formed name or account (the gateway's
      // customers type them) must not make the whole page unparsable, so what is not
      // well-formed becomes U+FFFD.
      std::size_t bad = 0;
      const std::size_t len = utf8_sequence(in + i, value.size() - i, bad);
      if (len != 0) {
        out.append(value.data() + i, len);
      } else {
        out += "\xEF\xBF\xBD";
      }
      i += (len != 0 ? len : bad) - 1;
      continue;
    }
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string format_prometheus(const PipelineStats& stats) {
  Writer w;

  // ---- pipeline-wide ----
  w.family("tracecast_ingest_requests_total", "counter",
           "Requests offered to submit(), by result: accepted, full (ring full, dropped) or closed "
           "(after shutdown, dropped).");
  w.sample("tracecast_ingest_requests_total", {}, stats.ingest.accepted, k_result_label, "accepted");
  w.sample("tracecast_ingest_requests_total", {}, stats.ingest.rejected_full, k_result_label, "full");
  w.sample("tracecast_ingest_requests_total", {}, stats.ingest.rejected_closed, k_result_label, "closed");

  struct Plain {
    std::string_view name;
    std::string_view type;
    std::string_view help;
    std::uint64_t value;
  };
  const Plain plain[] = {
      {"tracecast_ingest_drained_requests_total", "counter",
       "Requests taken from the ingest ring by the encoder worker.", stats.ingest.drained},
      {"tracecast_ingest_truncated_values_total", "counter",
       "Request values cut to the configured ingest limits while copying.", stats.ingest.truncated_values},
      {"tracecast_ingest_dropped_metadata_entries_total", "counter",
       "Trace metadata entries left out past ingest.limits.max_metadata_entries.", stats.ingest.dropped_metadata},
      {"tracecast_ingest_overflow_submits_total", "counter",
       "Submits through the shared overflow registration (more threads submitting at once than "
       "ingest.max_producers, or from thread-exit/static destructors); non-zero in steady state: raise "
       "ingest.max_producers.",
       stats.ingest.overflow_submits},
      {"tracecast_requests_routed_total", "counter",
       "Requests mapped and handed to at least one destination.", stats.requests_routed},
      {"tracecast_requests_unrouted_total", "counter",
       "Requests drained with no destination for their account.", stats.requests_unrouted},
      {"tracecast_mappings_total", "counter",
       "Mappings of a request into spans (one per request per destination that encodes it).", stats.mappings},
      {"tracecast_mapping_issues_total", "counter",
       "Requests with a value the mapping could not use as given (bad parent span id, ...).",
       stats.mapping_issues},
      {"tracecast_encoder_invalid_utf8_replaced_total", "counter",
       "U+FFFD written in place of ill-formed UTF-8 input.", stats.encoder.invalid_utf8_replaced},
      {"tracecast_encoder_values_truncated_total", "counter",
       "Strings cut to encoder.max_value_bytes.", stats.encoder.values_truncated},
      {"tracecast_encoder_duplicate_keys_skipped_total", "counter",
       "Attributes left out because their key appeared earlier in the list.", stats.encoder.duplicate_keys_skipped},
      {"tracecast_encoder_attributes_dropped_total", "counter",
       "Attributes left out past encoder.max_attributes_per_span.", stats.encoder.attributes_dropped},
      {"tracecast_encoder_spans_too_large_total", "counter",
       "Spans dropped because they cannot fit in an empty batch.", stats.encoder.spans_too_large},
      {"tracecast_encoder_spans_invalid_id_total", "counter",
       "Spans skipped because of an all-zero trace or span id.", stats.encoder.spans_invalid_id},
      {"tracecast_memory_bytes", "gauge",
       "Batch buffer bytes held now, all destinations together.", stats.memory_bytes},
      {"tracecast_memory_peak_bytes", "gauge",
       "Highest batch buffer bytes held at once since start.", stats.memory_peak_bytes},
  };
  for (const Plain& p : plain) {
    w.family(p.name, p.type, p.help);
    w.sample(p.name, {}, p.value);
  }

  // ---- totals over every destination (the per-destination series below list only some) ----
  const DestinationCounters& t = stats.total;
  const Plain totals[] = {
      {"tracecast_spans_submitted_total", "counter",
       "Spans handed to destinations after routing, all destinations (removed ones included).", t.submitted},
      {"tracecast_spans_delivered_total", "counter", "Spans in requests a destination accepted (2xx), all destinations.",
       t.delivered},
      {"tracecast_spans_filtered_total", "counter",
       "Spans a destination's own routing did not take (enabled false, API key id not allowed), all destinations.",
       t.filtered},
      {"tracecast_spans_in_flight", "gauge", "Spans in an open batch, sealed, sending or waiting for retry, all destinations.",
       t.in_flight},
      {"tracecast_requests_sent_total", "counter", "Batches handed to the sender, all destinations.", t.requests_sent},
      {"tracecast_requests_delivered_total", "counter", "Batches a destination accepted (2xx), all destinations.",
       t.requests_delivered},
      {"tracecast_retries_total", "counter", "HTTP attempts beyond the first of a request, all destinations.", t.retries},
      {"tracecast_malformed_answers_total", "counter",
       "Requests whose answer broke a rule and was bounded (oversized body or headers, bad Retry-After or partialSuccess).",
       t.malformed_answers},
      {"tracecast_bytes_raw_total", "counter", "OTLP/JSON bytes sealed into batches, before compression.", t.bytes_raw},
      {"tracecast_bytes_compressed_total", "counter", "Request body bytes handed to the sender, after compression.",
       t.bytes_compressed},
      {"tracecast_destinations_configured", "gauge", "Destinations configured now (removed ones not).",
       stats.destinations_configured},
      {"tracecast_destinations_listed", "gauge",
       "Destinations with per-destination series in this exposition (not healthy, then the busiest; see README).",
       stats.destinations.size()},
      {"tracecast_health_notices_dropped_total", "counter",
       "Destination health changes the callback never saw (its queue was full).", stats.health_notices_dropped},
  };
  for (const Plain& p : totals) {
    w.family(p.name, p.type, p.help);
    w.sample(p.name, {}, p.value);
  }
  constexpr std::string_view k_total_dropped = "tracecast_spans_dropped_total";
  w.family(k_total_dropped, "counter", "Spans handed to destinations and not delivered, by reason, all destinations.");
  for (std::size_t r = 0; r < k_drop_reasons; ++r) {
    w.sample(k_total_dropped, {}, t.dropped[r], k_reason_label, to_string(static_cast<DropReason>(r)));
  }
  constexpr std::string_view k_by_state = "tracecast_destinations";
  w.family(k_by_state, "gauge", "Destinations configured now, by health state.");
  for (std::size_t i = 0; i < k_destination_states; ++i) {
    w.sample(k_by_state, {}, stats.destinations_by_state[i], k_state_label, to_string(static_cast<DestinationState>(i)));
  }

  // ---- per destination ----
  std::vector<std::string> labels;
  labels.reserve(stats.destinations.size());
  for (const DestinationCounters& d : stats.destinations) labels.push_back(destination_labels(d));

  struct PerDestination {
    std::string_view name;
    std::string_view type;
    std::string_view help;
    std::uint64_t DestinationCounters::*field;
  };
  const PerDestination counters[] = {
      {"tracecast_destination_spans_submitted_total", "counter",
       "Spans handed to the destination after routing (delivered + dropped + in flight).",
       &DestinationCounters::submitted},
      {"tracecast_destination_spans_delivered_total", "counter",
       "Spans in requests the destination accepted (2xx).", &DestinationCounters::delivered},
      {"tracecast_destination_spans_filtered_total", "counter",
       "Spans its own routing did not take (enabled false, API key id not allowed); not in submitted.",
       &DestinationCounters::filtered},
      {"tracecast_destination_values_truncated_total", "counter",
       "Strings the encoder cut for the destination (its max_attribute_value_bytes or the global limit).",
       &DestinationCounters::values_truncated},
      {"tracecast_destination_spans_in_flight", "gauge",
       "Spans in an open batch, sealed, sending or waiting for retry.", &DestinationCounters::in_flight},
      {"tracecast_destination_requests_sent_total", "counter",
       "Batches handed to the sender.", &DestinationCounters::requests_sent},
      {"tracecast_destination_requests_delivered_total", "counter",
       "Batches the destination accepted (2xx).", &DestinationCounters::requests_delivered},
      {"tracecast_destination_retries_total", "counter",
       "HTTP attempts beyond the first of a request.", &DestinationCounters::retries},
      {"tracecast_destination_malformed_answers_total", "counter",
       "Requests whose answer broke a rule and was bounded (oversized body or headers, bad Retry-After or partialSuccess).",
       &DestinationCounters::malformed_answers},
      {"tracecast_destination_bytes_raw_total", "counter",
       "OTLP/JSON bytes sealed into batches, before compression.", &DestinationCounters::bytes_raw},
      {"tracecast_destination_bytes_compressed_total", "counter",
       "Request body bytes handed to the sender, after compression.", &DestinationCounters::bytes_compressed},
      {"tracecast_destination_buffer_bytes", "gauge",
       "Batch buffer bytes the destination holds now.", &DestinationCounters::buffer_bytes},
  };
  for (const PerDestination& f : counters) {
    w.family(f.name, f.type, f.help);
    for (std::size_t i = 0; i < stats.destinations.size(); ++i)
      w.sample(f.name, labels[i], stats.destinations[i].*f.field);
  }

  constexpr std::string_view k_dropped = "tracecast_destination_spans_dropped_total";
  w.family(k_dropped, "counter", "Spans handed to the destination and not delivered, by reason.");
  for (std::size_t i = 0; i < stats.destinations.size(); ++i) {
    for (std::size_t r = 0; r < k_drop_reasons; ++r) {
      w.sample(k_dropped, labels[i], stats.destinations[i].dropped[r], k_reason_label,
               to_string(static_cast<DropReason>(r)));
    }
  }

  constexpr std::string_view k_removed = "tracecast_destination_removed";
  w.family(k_removed, "gauge", "1 when the destination was removed (its counters are kept), else 0.");
  for (std::size_t i = 0; i < stats.destinations.size(); ++i)
    w.sample(k_removed, labels[i], stats.destinations[i].removed ? 1 : 0);

  constexpr std::string_view k_state = "tracecast_destination_state";
  w.family(k_state, "gauge", "1 for the destination's health state, 0 for the others.");
  for (std::size_t i = 0; i < stats.destinations.size(); ++i) {
    for (std::size_t st = 0; st < k_destination_states; ++st) {
      const auto state = static_cast<DestinationState>(st);
      w.sample(k_state, labels[i], stats.destinations[i].health.state == state ? 1 : 0, k_state_label, to_string(state));
    }
  }
  struct HealthGauge {
    std::string_view name;
    std::string_view help;
    double (*value)(const DestinationHealth&);
  };
  const HealthGauge health[] = {
      {"tracecast_destination_consecutive_failures", "Finished requests failed since the last success.",
       [](const DestinationHealth& h) { return static_cast<double>(h.consecutive_failures); }},
      {"tracecast_destination_last_success_timestamp_seconds",
       "Unix time of the last delivered request (0: never).",
       [](const DestinationHealth& h) { return static_cast<double>(h.last_success_unix_ns) / 1e9; }},
      {"tracecast_destination_last_error_timestamp_seconds", "Unix time of the last failed request (0: never).",
       [](const DestinationHealth& h) { return static_cast<double>(h.last_error_unix_ns) / 1e9; }},
      {"tracecast_destination_last_error_http_status", "HTTP status of the last failed request (0: no answer or none).",
       [](const DestinationHealth& h) { return static_cast<double>(h.last_http_status); }},
  };
  for (const HealthGauge& g : health) {
    w.family(g.name, "gauge", g.help);
    for (std::size_t i = 0; i < stats.destinations.size(); ++i)
      w.sample_double(g.name, labels[i], g.value(stats.destinations[i].health));
  }

  constexpr std::string_view k_latency = "tracecast_destination_request_duration_seconds";
  const std::string bucket_name = std::string(k_latency) + "_bucket";
  const std::string sum_name = std::string(k_latency) + "_sum";
  const std::string count_name = std::string(k_latency) + "_count";
  w.family(k_latency, "histogram",
           "Request latency from hand-over to the sender to completion, retries included.");
  for (std::size_t i = 0; i < stats.destinations.size(); ++i) {
    const DestinationCounters& d = stats.destinations[i];
    std::uint64_t cumulative = 0;
    for (std::size_t b = 0; b < k_latency_bounds_ms.size(); ++b) {
      cumulative += d.latency_buckets[b];
      w.sample(bucket_name, labels[i], cumulative, "le", le_text(k_latency_bounds_ms[b]));
    }
    cumulative += d.latency_buckets[k_latency_bounds_ms.size()];
    w.sample(bucket_name, labels[i], cumulative, "le", "+Inf");
    w.sample_double(sum_name, labels[i], static_cast<double>(d.latency_sum_ns) / 1e9);
    w.sample(count_name, labels[i], cumulative);
  }

  return w.take();
}

}  // namespace tracecast::detail
