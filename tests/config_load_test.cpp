// PipelineConfig::validate(), config_from_env() and config_from_json[_file](): every field's
// range, every environment variable, every error class, and no secret in any error.
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tracecast/pipeline.h"
#include "tracecast/presets.h"
#include "fake_env.h"

namespace tracecast {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// ---- validate() ---------------------------------------------------------------------------

TEST(PipelineConfigValidate, AcceptsTheDefaults) { EXPECT_EQ(PipelineConfig{}.validate(), ""); }

struct FieldCase {
  const char* expected_prefix;  // "<field>: " the error must start with
  std::function<void(PipelineConfig&)> break_it;
  std::function<void(PipelineConfig&)> edge_ok;  // a value at the edge of the range: valid
};

std::vector<FieldCase> field_cases() {
  using C = PipelineConfig;
  return {
      {"ingest.ring_bytes: ", [](C& c) { c.ingest.ring_bytes = 100000; }, [](C& c) { c.ingest.ring_bytes = 65536; }},
      {"ingest.max_producers: ", [](C& c) { c.ingest.max_producers = 0; },
       [](C& c) { c.ingest.max_producers = 1024; }},
      {"ingest.limits.max_field_bytes: ", [](C& c) { c.ingest.limits.max_field_bytes = 15; },
       [](C& c) { c.ingest.limits.max_field_bytes = 16; }},
      {"ingest.limits.max_metadata_entries: ", [](C& c) { c.ingest.limits.max_metadata_entries = 65; },
       [](C& c) { c.ingest.limits.max_metadata_entries = 0; }},
      {"mapping.service_name: ", [](C& c) { c.mapping.service_name.clear(); },
       [](C& c) { c.mapping.service_name = std::string(1, 'x'); }},  // not = "x": GCC 12 -O3 -Wrestrict false positive
      {"mapping.extra_resource_attributes: ",
       [](C& c) {
         for (int i = 0; i < 17; ++i) c.mapping.extra_resource_attributes.emplace_back(std::string("k").append(std::to_string(i)), "v");
       },
       [](C& c) {
         for (int i = 0; i < 16; ++i) c.mapping.extra_resource_attributes.emplace_back(std::string("k").append(std::to_string(i)), "v");
       }},
      {"mapping.extra_resource_attributes: ", [](C& c) { c.mapping.extra_resource_attributes.emplace_back("", "v"); },
       [](C& c) { c.mapping.extra_resource_attributes.emplace_back("k", ""); }},
      {"encoder.max_value_bytes: ", [](C& c) { c.encoder.max_value_bytes = 3; },
       [](C& c) { c.encoder.max_value_bytes = 4; }},
      {"encoder.max_attributes_per_span: ", [](C& c) { c.encoder.max_attributes_per_span = 65537; },
       [](C& c) { c.encoder.max_attributes_per_span = 65536; }},
      {"batch.max_spans: ", [](C& c) { c.batch.max_spans = 0; }, [](C& c) { c.batch.max_spans = 1; }},
      {"batch.max_spans: ", [](C& c) { c.batch.max_spans = 65537; }, [](C& c) { c.batch.max_spans = 65536; }},
      {"batch.max_bytes: ", [](C& c) { c.batch.max_bytes = 4095; }, [](C& c) { c.batch.max_bytes = 4096; }},
      {"batch.max_bytes: ", [](C& c) { c.batch.max_bytes = (16u << 20) + 1; },
       [](C& c) {
         c.batch.max_bytes = 16u << 20;
         c.memory_budget_bytes = 64u << 20;
       }},
      {"batch.linger: ", [](C& c) { c.batch.linger = milliseconds(0); }, [](C& c) { c.batch.linger = milliseconds(1); }},
      {"batch.linger: ", [](C& c) { c.batch.linger = milliseconds(60001); },
       [](C& c) {
         c.batch.linger = milliseconds(60000);
         c.batch.max_linger = milliseconds(60000);
       }},
      {"batch.max_linger: ", [](C& c) { c.batch.max_linger = c.batch.linger - milliseconds(1); },
       [](C& c) { c.batch.max_linger = c.batch.linger; }},
      {"batch.max_linger: ", [](C& c) { c.batch.max_linger = milliseconds(60001); },
       [](C& c) { c.batch.max_linger = milliseconds(60000); }},
      {"batch.target_spans: ", [](C& c) { c.batch.target_spans = 0; }, [](C& c) { c.batch.target_spans = 1; }},
      {"batch.target_spans: ", [](C& c) { c.batch.target_spans = 65537; },
       [](C& c) { c.batch.target_spans = 65536; }},
      {"encoder_threads: ", [](C& c) { c.encoder_threads = 2; }, [](C& c) { c.encoder_threads = 1; }},
      {"encoder_threads: ", [](C& c) { c.encoder_threads = 0; }, [](C& c) { c.encoder_threads = 1; }},
      {"memory_budget_bytes: ", [](C& c) { c.memory_budget_bytes = 4 * c.batch.max_bytes - 1; },
       [](C& c) {
         c.memory_budget_bytes = 4 * c.batch.max_bytes;
         c.destination_budget_bytes = c.batch.max_bytes;
       }},
      {"destination_budget_bytes: ", [](C& c) { c.destination_budget_bytes = c.batch.max_bytes - 1; },
       [](C& c) { c.destination_budget_bytes = c.batch.max_bytes; }},
      {"destination_budget_bytes: ", [](C& c) { c.destination_budget_bytes = c.memory_budget_bytes + 1; },
       [](C& c) { c.destination_budget_bytes = c.memory_budget_bytes; }},
      {"gzip_level: ", [](C& c) { c.gzip_level = 13; }, [](C& c) { c.gzip_level = 12; }},
      {"gzip_level: ", [](C& c) { c.gzip_level = -1; }, [](C& c) { c.gzip_level = 0; }},
      {"zstd_level: ", [](C& c) { c.zstd_level = 23; }, [](C& c) { c.zstd_level = 22; }},
      {"zstd_level: ", [](C& c) { c.zstd_level = -8; }, [](C& c) { c.zstd_level = -7; }},
      {"sender.max_in_flight_total: ", [](C& c) { c.sender.max_in_flight_total = 0; },
       [](C& c) { c.sender.max_in_flight_total = 65536; }},
      {"sender.connect_timeout: ", [](C& c) { c.sender.connect_timeout = milliseconds(0); },
       [](C& c) { c.sender.connect_timeout = milliseconds(600000); }},
      {"sender.retry.initial_interval: ", [](C& c) { c.sender.retry.initial_interval = milliseconds(0); },
       [](C& c) { c.sender.retry.initial_interval = milliseconds(1); }},
      {"sender.retry.multiplier: ", [](C& c) { c.sender.retry.multiplier = 0.99; },
       [](C& c) { c.sender.retry.multiplier = 1.0; }},
      {"sender.retry.max_interval: ", [](C& c) { c.sender.retry.max_interval = c.sender.retry.initial_interval - milliseconds(1); },
       [](C& c) { c.sender.retry.max_interval = c.sender.retry.initial_interval; }},
      {"sender.retry.max_elapsed: ", [](C& c) { c.sender.retry.max_elapsed = milliseconds(-1); },
       [](C& c) { c.sender.retry.max_elapsed = milliseconds(0); }},
      {"sender.queue_capacity: ", [](C& c) { c.sender.queue_capacity = 48; }, [](C& c) { c.sender.queue_capacity = 32; }},
      {"sender.max_producers: ", [](C& c) { c.sender.max_producers = 257; }, [](C& c) { c.sender.max_producers = 256; }},
      {"sender.user_agent: ", [](C& c) { c.sender.user_agent = "a\r\nX-Evil: 1"; },
       [](C& c) { c.sender.user_agent = "a b"; }},
      {"sender.max_connections_per_host: ", [](C& c) { c.sender.max_connections_per_host = 1025; },
       [](C& c) { c.sender.max_connections_per_host = 0; }},
      {"sender.max_response_bytes: ", [](C& c) { c.sender.max_response_bytes = (16u << 20) + 1; },
       [](C& c) { c.sender.max_response_bytes = 16u << 20; }},
      {"shutdown_timeout: ", [](C& c) { c.shutdown_timeout = milliseconds(600001); },
       [](C& c) { c.shutdown_timeout = milliseconds(0); }},
  };
}

TEST(PipelineConfigValidate, NamesTheFieldOutOfRangeAndAcceptsItsEdge) {
  for (const FieldCase& fc : field_cases()) {
    SCOPED_TRACE(fc.expected_prefix);
    PipelineConfig bad;
    fc.break_it(bad);
    EXPECT_THAT(bad.validate(), StartsWith(fc.expected_prefix));
    PipelineConfig edge;
    fc.edge_ok(edge);
    EXPECT_EQ(edge.validate(), "");
  }
}

TEST(PipelineConfigValidate, SaysWhyAndWhatWasGiven) {
  PipelineConfig c;
  c.encoder_threads = 4;
  EXPECT_EQ(c.validate(), "encoder_threads: must be 1 (only 1 is implemented), got 4");
  c = {};
  c.batch.linger = milliseconds(0);
  EXPECT_EQ(c.validate(), "batch.linger: must be 1..60000 ms, got 0 ms");
  c = {};
  c.memory_budget_bytes = 1000;
  EXPECT_EQ(c.validate(), "memory_budget_bytes: must be 4 * batch.max_bytes (16777216)..1099511627776 (1 TiB), got 1000");
  c = {};
  c.encoder.max_value_bytes = 2;
  EXPECT_EQ(c.validate(), "encoder.max_value_bytes: must be 4..16777216, got 2");
  c = {};
  c.sender.retry.multiplier = 0.5;
  EXPECT_EQ(c.validate(), "sender.retry.multiplier: must be 1..100, got 0.5");
}

// ---- config_from_env() ---------------------------------------------------------------------

using test::fake_env;
using test::fake_getenv;

class ConfigFromEnv : public ::testing::Test {
 protected:
  void SetUp() override { fake_env().clear(); }
  void TearDown() override { fake_env().clear(); }
  static void set(const std::string& name, const std::string& value) { fake_env()[name] = value; }
  static ConfigLoadResult load(PipelineConfig base = {}) { return config_from_env(std::move(base), &fake_getenv); }
};

TEST_F(ConfigFromEnv, LeavesTheBaseAsIsWhenNothingIsSet) {
  PipelineConfig base;
  base.batch.max_spans = 77;
  const ConfigLoadResult r = load(base);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.config.batch.max_spans, 77u);
  EXPECT_EQ(r.config.mapping.service_name, "openrouter");
  EXPECT_TRUE(r.destinations.empty());
}

TEST_F(ConfigFromEnv, TakesTheServiceName) {
  set("OTEL_SERVICE_NAME", "my-gateway");
  const ConfigLoadResult r = load();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.config.mapping.service_name, "my-gateway");
}

TEST_F(ConfigFromEnv, PercentDecodesResourceAttributesAndKeepsServiceKeysOutOfTheExtras) {
  set("OTEL_RESOURCE_ATTRIBUTES",
      " deployment.environment = prod%2Ceu , team=a%3Db, service.name=from-attrs,service.version=4.5.6,note=caf%C3%A9 ");
  const ConfigLoadResult r = load();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.config.mapping.service_name, "from-attrs");
  EXPECT_EQ(r.config.mapping.service_version, "4.5.6");
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"deployment.environment", "prod,eu"}, {"team", "a=b"}, {"note", "caf\xC3\xA9"}};
  EXPECT_EQ(r.config.mapping.extra_resource_attributes, expected);
}

TEST_F(ConfigFromEnv, ServiceNameVariableWinsOverResourceAttributes) {
  set("OTEL_RESOURCE_ATTRIBUTES", "service.name=from-attrs");
  set("OTEL_SERVICE_NAME", "from-var");
  const ConfigLoadResult r = load();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.config.mapping.service_name, "from-var");
}

TEST_F(ConfigFromEnv, ResourceAttributesReplaceBaseKeysAndAppendNewOnes) {
  PipelineConfig base;
  base.mapping.extra_resource_attributes = {{"region", "us"}, {"tier", "gold"}};
  set("OTEL_RESOURCE_ATTRIBUTES", "region=eu,zone=b");
  const ConfigLoadResult r = load(base);
  ASSERT_TRUE(r.ok()) << r.error;
  const std::vector<std::pair<std::string, std::string>> expected = {{"region", "eu"}, {"tier", "gold"}, {"zone", "b"}};
  EXPECT_EQ(r.config.mapping.extra_resource_attributes, expected);
}

TEST_F(ConfigFromEnv, RejectsMalformedResourceAttributes) {
  set("OTEL_RESOURCE_ATTRIBUTES", "a=1,novalue");
  EXPECT_EQ(load().error, "OTEL_RESOURCE_ATTRIBUTES: entry 2 has no '=' (expected key=value)");
  set("OTEL_RESOURCE_ATTRIBUTES", "a=%zz");
  EXPECT_THAT(load().error, StartsWith("OTEL_RESOURCE_ATTRIBUTES: invalid percent-encoding in the value of 'a'"));
  set("OTEL_RESOURCE_ATTRIBUTES", "a=%2");
  EXPECT_THAT(load().error, StartsWith("OTEL_RESOURCE_ATTRIBUTES: invalid percent-encoding"));
  set("OTEL_RESOURCE_ATTRIBUTES", "=v");
  EXPECT_EQ(load().error, "OTEL_RESOURCE_ATTRIBUTES: entry 1 has an empty key");
  std::string many;
  for (int i = 0; i < 17; ++i) many.append("k").append(std::to_string(i)).append("=v,");
  set("OTEL_RESOURCE_ATTRIBUTES", many);
  EXPECT_EQ(load().error,
            "OTEL_RESOURCE_ATTRIBUTES: at most 16 attributes besides service.name and service.version, got more");
}

// The queue size counts requests of up to 4 KiB: ring_bytes = n x 4 KiB, rounded up to a power
// of two within 64 KiB..1 GiB.
TEST_F(ConfigFromEnv, MapsTheQueueSizeToRingBytesRoundedUpToAPowerOfTwo) {
  const std::pair<const char*, std::uint32_t> cases[] = {{"2048", 8u << 20},   {"1000", 4u << 20},
                                                         {"1", 64u << 10},     {"17", 128u << 10},
                                                         {"8192", 32u << 20},  {"262144", 1u << 30}};
  for (const auto& [text, bytes] : cases) {
    set("OTEL_BSP_MAX_QUEUE_SIZE", text);
    const ConfigLoadResult r = load();
    ASSERT_TRUE(r.ok()) << text << ": " << r.error;
    EXPECT_EQ(r.config.ingest.ring_bytes, bytes) << text;
  }
}

TEST_F(ConfigFromEnv, RejectsAQueueSizeOutOfRange) {
  set("OTEL_BSP_MAX_QUEUE_SIZE", "0");
  EXPECT_EQ(load().error, "OTEL_BSP_MAX_QUEUE_SIZE: must be 1..262144, got 0");
  set("OTEL_BSP_MAX_QUEUE_SIZE", "262145");
  EXPECT_EQ(load().error, "OTEL_BSP_MAX_QUEUE_SIZE: must be 1..262144, got 262145");
  set("OTEL_BSP_MAX_QUEUE_SIZE", "-5");
  EXPECT_EQ(load().error, "OTEL_BSP_MAX_QUEUE_SIZE: not a whole number: '-5'");
}

TEST_F(ConfigFromEnv, TakesTheBatchSize) {
  set("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "128");
  const ConfigLoadResult r = load();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.config.batch.max_spans, 128u);
  set("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "70000");
  EXPECT_EQ(load().error, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: must be 1..65536, got 70000");
  set("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1e3");
  EXPECT_EQ(load().error, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE: not a whole number: '1e3'");
}

TEST_F(ConfigFromEnv, TakesTheScheduleDelayInMilliseconds) {
  set("OTEL_BSP_SCHEDULE_DELAY", "5000");
  const ConfigLoadResult r = load();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.config.batch.max_linger, milliseconds(5000));
  EXPECT_EQ(r.config.batch.linger, BatchConfig{}.linger);
  set("OTEL_BSP_SCHEDULE_DELAY", "50");  // shorter than the default linger: both become 50 ms
  const ConfigLoadResult short_delay = load();
  ASSERT_TRUE(short_delay.ok()) << short_delay.error;
  EXPECT_EQ(short_delay.config.batch.max_linger, milliseconds(50));
  EXPECT_EQ(short_delay.config.batch.linger, milliseconds(50));
  set("OTEL_BSP_SCHEDULE_DELAY", "abc");
  EXPECT_EQ(load().error, "OTEL_BSP_SCHEDULE_DELAY: not a whole number of milliseconds: 'abc'");
  set("OTEL_BSP_SCHEDULE_DELAY", "0");
  EXPECT_EQ(load().error, "OTEL_BSP_SCHEDULE_DELAY: must be 1..60000 ms, got 0");
}

TEST_F(ConfigFromEnv, TreatsAnEmptyVariableAsUnset) {
  set("OTEL_BSP_SCHEDULE_DELAY", "");
  set("OTEL_EXPORTER_OTLP_ENDPOINT", "");
  set("OTEL_SERVICE_NAME", "");
  const ConfigLoadResult r = load();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.config.batch.linger, BatchConfig{}.linger);
  EXPECT_EQ(r.config.mapping.service_name, "openrouter");
  EXPECT_TRUE(r.destinations.empty());
}

TEST_F(ConfigFromEnv, AppendsTheTracesPathToTheGeneralEndpoint) {
  const std::pair<const char*, const char*> cases[] = {
      {"http://collector:4318", "http://collector:4318/v1/traces"},
      {"http://collector:4318/", "http://collector:4318/v1/traces"},
      {"https://proxy.example.com/otlp", "https://proxy.example.com/otlp/v1/traces"},
      // Before the query, which is kept (not "?token=Xv1/traces").
      {"http://collector:4318/?token=X", "http://collector:4318/v1/traces?token=X"},
      {"http://collector:4318?token=X", "http://collector:4318/v1/traces?token=X"},
  };
  for (const auto& [base, url] : cases) {
    set("OTEL_EXPORTER_OTLP_ENDPOINT", base);
    const ConfigLoadResult r = load();
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(r.destinations.size(), 1u);
    EXPECT_EQ(r.destinations[0].first, "");  // every account
    EXPECT_EQ(r.destinations[0].second.transport.kind, DestinationKind::otlp_http);
    EXPECT_EQ(r.destinations[0].second.transport.endpoint, url);
    EXPECT_FALSE(r.destinations[0].second.privacy_mode);
    EXPECT_EQ(r.destinations[0].second.sampling_rate, 1.0);
  }
}

TEST_F(ConfigFromEnv, UsesTheTracesEndpointAsIsAndPrefersIt) {
  set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://general:4318");
  set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4318/custom/path");
  const ConfigLoadResult r = load();
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.destinations.size(), 1u);
  EXPECT_EQ(r.destinations[0].second.transport.endpoint, "http://traces:4318/custom/path");
}

TEST_F(ConfigFromEnv, NamesTheEndpointVariableWhenTheUrlIsInvalid) {
  set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "ftp://collector/v1/traces");
  EXPECT_THAT(load().error, StartsWith("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "));
  fake_env().clear();
  set("OTEL_EXPORTER_OTLP_ENDPOINT", "not a url");
  EXPECT_THAT(load().error, StartsWith("OTEL_EXPORTER_OTLP_ENDPOINT: "));
}

TEST_F(ConfigFromEnv, PercentDecodesHeadersAndPrefersTheTracesVariable) {
  set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
  set("OTEL_EXPORTER_OTLP_HEADERS", "x-general=1");
  set("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "authorization=Basic%20dXNlcjpwYXNz, x-scope-orgid = tenant%2C1");
  const ConfigLoadResult r = load();
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.destinations.size(), 1u);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"authorization", "Basic dXNlcjpwYXNz"}, {"x-scope-orgid", "tenant,1"}};
  EXPECT_EQ(r.destinations[0].second.transport.headers, expected);

  fake_env().erase("OTEL_EXPORTER_OTLP_TRACES_HEADERS");
  const ConfigLoadResult general = load();
  ASSERT_TRUE(general.ok()) << general.error;
  const std::vector<std::pair<std::string, std::string>> expected_general = {{"x-general", "1"}};
  EXPECT_EQ(general.destinations[0].second.transport.headers, expected_general);
}

TEST_F(ConfigFromEnv, NeverQuotesAHeaderValueInAnError) {
  const std::string secret = "s3cr3t-token-9f8e7d";
  set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
  const std::string bad_values[] = {
      "authorization=Bearer%20" + secret + ",Bearer " + secret,  // entry without '='
      "authorization=" + secret + "%zz",                          // bad percent-encoding
      "authorization=" + secret + "%0D%0AX-Evil: 1",               // CR LF after decoding
      "bad name=" + secret,                                       // invalid header name
      // The secret in the name: a header written the HTTP way.
      "Authorization: Basic " + secret + "=",
      "Authorization: Basic " + secret + "=%zz",
      "Authorization: Basic " + secret + "=a%0Ab",
      "Bearer " + secret + "=x",
  };
  for (const std::string& value : bad_values) {
    set("OTEL_EXPORTER_OTLP_HEADERS", value);
    const ConfigLoadResult r = load();
    EXPECT_THAT(r.error, StartsWith("OTEL_EXPORTER_OTLP_HEADERS: ")) << value;
    EXPECT_THAT(r.error, Not(HasSubstr(secret))) << r.error;
    EXPECT_TRUE(r.destinations.empty());
  }
}

TEST_F(ConfigFromEnv, TakesCompressionAndTimeout) {
  set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
  const std::pair<const char*, const char*> cases[] = {{"gzip", "gzip"}, {"none", "none"}, {"ZSTD", "zstd"}};
  for (const auto& [text, compression] : cases) {
    set("OTEL_EXPORTER_OTLP_COMPRESSION", text);
    const ConfigLoadResult r = load();
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.destinations[0].second.transport.compression, compression);
  }
  set("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "brotli");
  EXPECT_EQ(load().error, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: must be one of none, gzip, zstd, got 'brotli'");
  fake_env().erase("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION");

  set("OTEL_EXPORTER_OTLP_TIMEOUT", "2500");
  ConfigLoadResult r = load();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.destinations[0].second.transport.timeout, milliseconds(2500));
  set("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "750");
  r = load();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.destinations[0].second.transport.timeout, milliseconds(750));
  set("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "10s");
  EXPECT_EQ(load().error, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: not a whole number of milliseconds: '10s'");
  // Digits too many for any integer: out of range, not "not a whole number".
  set("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "99999999999999999999");
  EXPECT_EQ(load().error, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: out of range: must be 1..600000 ms");
  set("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "0");
  EXPECT_EQ(load().error, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: must be 1..600000 ms, got 0");
}

TEST_F(ConfigFromEnv, TakesTheCertificateFile) {
  set("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318");
  set("OTEL_EXPORTER_OTLP_CERTIFICATE", "/etc/ssl/my-ca.pem");
  const ConfigLoadResult r = load();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.destinations[0].second.transport.ca_file, "/etc/ssl/my-ca.pem");
}

TEST_F(ConfigFromEnv, ChecksExporterVariablesEvenWithoutAnEndpoint) {
  set("OTEL_EXPORTER_OTLP_COMPRESSION", "lz4");
  EXPECT_EQ(load().error, "OTEL_EXPORTER_OTLP_COMPRESSION: must be one of none, gzip, zstd, got 'lz4'");
  fake_env().clear();
  set("OTEL_EXPORTER_OTLP_TIMEOUT", "1000");
  const ConfigLoadResult r = load();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_TRUE(r.destinations.empty());
}

TEST_F(ConfigFromEnv, AcceptsHttpJsonAndHttpProtobufAndRefusesGrpc) {
  set("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318");
  set("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json");
  ConfigLoadResult r = load();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.destinations.at(0).second.transport.protocol, "http/json");
  set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf");  // the traces variable wins
  r = load();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.destinations.at(0).second.transport.protocol, "http/protobuf");
  EXPECT_TRUE(resolve(r.destinations.at(0).second.transport).protobuf);
  set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc");
  EXPECT_EQ(load().error,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: grpc is not supported: tracecast sends OTLP over HTTP; use "
            "http/protobuf (the same protobuf messages, port 4318 and path /v1/traces instead of gRPC's 4317) or "
            "http/json, got 'grpc'");
  set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/xml");
  EXPECT_EQ(load().error,
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: unknown protocol (use http/json or http/protobuf), got 'http/xml'");
}

TEST_F(ConfigFromEnv, TakesTheEgressAllowListAndSwitch) {
  EXPECT_TRUE(load().config.sender.egress.enforce);  // default: enforced, nothing allowed
  EXPECT_TRUE(load().config.sender.egress.allow_cidrs.empty());
  set("TRACECAST_EGRESS_ALLOW", " 10.0.0.0/8, otel.internal ,127.0.0.1,,*.corp.example,fd00::/8");
  ConfigLoadResult r = load();
  ASSERT_TRUE(r.ok()) << r.error;
  const std::vector<std::string> cidrs = {"10.0.0.0/8", "127.0.0.1", "fd00::/8"};
  const std::vector<std::string> hosts = {"otel.internal", "*.corp.example"};
  EXPECT_EQ(r.config.sender.egress.allow_cidrs, cidrs);
  EXPECT_EQ(r.config.sender.egress.allow_hosts, hosts);
  set("TRACECAST_EGRESS_ALLOW", "10.0.0.0/40");
  r = load();
  EXPECT_THAT(r.error, HasSubstr("TRACECAST_EGRESS_ALLOW: '10.0.0.0/40': must be an IP address or CIDR"));
  fake_env().erase("TRACECAST_EGRESS_ALLOW");
  set("TRACECAST_EGRESS_ENFORCE", "false");
  r = load();
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_FALSE(r.config.sender.egress.enforce);
  set("TRACECAST_EGRESS_ENFORCE", "maybe");
  EXPECT_THAT(load().error, HasSubstr("TRACECAST_EGRESS_ENFORCE"));
}

TEST_F(ConfigFromEnv, ManyResourceAttributesFailAtTheCapInOnePass) {
  std::string attrs;
  for (int i = 0; i < 100000; ++i) attrs += (i == 0 ? "k" : ",k") + std::to_string(i) + "=v";
  set("OTEL_RESOURCE_ATTRIBUTES", attrs);
  EXPECT_THAT(load().error, StartsWith("OTEL_RESOURCE_ATTRIBUTES: at most 16 attributes"));
  set("OTEL_RESOURCE_ATTRIBUTES", "service.name=" + std::string(11u << 20, 'n'));
  EXPECT_THAT(load().error, HasSubstr("service_name: at most 1024 bytes"));
}

TEST_F(ConfigFromEnv, ValidatesTheResult) {
  PipelineConfig base;
  base.batch.max_spans = 0;  // invalid in the base, not fixed by the environment
  EXPECT_EQ(load(base).error, "batch.max_spans: must be 1..65536, got 0");
  set("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64");  // ... fixed by it
  EXPECT_TRUE(load(base).ok());

  fake_env().clear();
  set("OTEL_RESOURCE_ATTRIBUTES", "service.name=");
  EXPECT_EQ(load().error, "OTEL_RESOURCE_ATTRIBUTES: service.name must not be empty");
}

// ---- config_from_json() ------------------------------------------------------------------

std::filesystem::path data_dir() {
  const char* src = std::getenv("TRACECAST_SOURCE_DIR");
  return std::filesystem::path(src != nullptr ? src : ".") / "tests" / "data" / "config";
}

constexpr const char* k_collector_auth_env = "TRACECAST_TEST_COLLECTOR_AUTH";
constexpr const char* k_collector_auth = "Bearer collector-secret-1a2b";

TEST(ConfigFromJson, ReadsEveryFieldOfAFullFile) {
  ASSERT_EQ(::setenv(k_collector_auth_env, k_collector_auth, 1), 0);
  const std::string path = (data_dir() / "full.json").string();
  const ConfigLoadResult r = config_from_json_file(path);
  ::unsetenv(k_collector_auth_env);
  ASSERT_TRUE(r.ok()) << r.error;
  const PipelineConfig& c = r.config;

  EXPECT_EQ(c.mapping.service_name, "gateway-eu");
  EXPECT_EQ(c.mapping.service_version, "2.3.4");
  const std::vector<std::pair<std::string, std::string>> attrs = {{"deployment.environment", "prod"},
                                                                  {"cloud.region", "eu-west-2"}};
  EXPECT_EQ(c.mapping.extra_resource_attributes, attrs);
  EXPECT_TRUE(c.mapping.emit_current_genai_names);
  EXPECT_EQ(c.mapping.scope_name, "tracecast-test");
  EXPECT_EQ(c.mapping.scope_version, "9.9.9");

  EXPECT_EQ(c.ingest.ring_bytes, 128u << 20);
  EXPECT_EQ(c.ingest.max_producers, 32u);
  EXPECT_EQ(c.ingest.limits.max_field_bytes, 128u);
  EXPECT_EQ(c.ingest.limits.max_metadata_entries, 32u);
  EXPECT_EQ(c.ingest.limits.max_metadata_key_bytes, 64u);
  EXPECT_EQ(c.ingest.limits.max_metadata_value_bytes, 2048u);
  EXPECT_EQ(c.ingest.limits.max_error_message_bytes, 1024u);
  EXPECT_EQ(c.ingest.limits.max_content_bytes, 65536u);
  EXPECT_EQ(c.encoder.max_value_bytes, 32768u);
  EXPECT_EQ(c.encoder.max_attributes_per_span, 96u);
  EXPECT_EQ(c.batch.max_spans, 256u);
  EXPECT_EQ(c.batch.max_bytes, 1048576u);
  EXPECT_EQ(c.batch.linger, milliseconds(150));
  EXPECT_EQ(c.encoder_threads, 1u);
  EXPECT_EQ(c.memory_budget_bytes, 67108864u);
  EXPECT_EQ(c.destination_budget_bytes, 8388608u);
  EXPECT_EQ(c.gzip_level, 6);
  EXPECT_EQ(c.zstd_level, -3);
  EXPECT_EQ(c.sender.max_in_flight_total, 128u);
  EXPECT_EQ(c.sender.connect_timeout, milliseconds(2500));
  EXPECT_EQ(c.sender.queue_capacity, 2048u);
  EXPECT_EQ(c.sender.max_producers, 4u);
  EXPECT_FALSE(c.sender.http2);
  EXPECT_EQ(c.sender.user_agent, "tracecast-test/1");
  EXPECT_EQ(c.sender.max_connections_per_host, 2u);
  EXPECT_EQ(c.sender.max_response_bytes, 4096u);
  EXPECT_EQ(c.sender.retry.initial_interval, milliseconds(100));
  EXPECT_EQ(c.sender.retry.multiplier, 2.5);
  EXPECT_EQ(c.sender.retry.max_interval, milliseconds(5000));
  EXPECT_EQ(c.sender.retry.max_elapsed, milliseconds(60000));
  EXPECT_EQ(c.shutdown_timeout, milliseconds(3000));

  ASSERT_EQ(r.destinations.size(), 3u);
  const auto& [acct0, grafana] = r.destinations[0];
  EXPECT_EQ(acct0, "acct_1");
  EXPECT_EQ(grafana.transport.kind, DestinationKind::grafana_cloud);
  EXPECT_EQ(grafana.transport.name, "grafana-prod");
  EXPECT_EQ(grafana.transport.endpoint, "https://otlp-gateway-prod-eu-west-2.grafana.net");
  EXPECT_EQ(grafana.transport.instance_id, "123456");
  EXPECT_EQ(grafana.transport.api_key, "glc_test_secret_from_file_5e3a");  // trailing newline trimmed
  EXPECT_TRUE(grafana.privacy_mode);
  EXPECT_EQ(grafana.sampling_rate, 0.5);

  const auto& [acct1, collector] = r.destinations[1];
  EXPECT_EQ(acct1, "");
  EXPECT_EQ(collector.transport.kind, DestinationKind::otel_collector);
  const std::vector<std::pair<std::string, std::string>> headers = {{"x-team", "a"}, {"authorization", k_collector_auth}};
  EXPECT_EQ(collector.transport.headers, headers);
  EXPECT_EQ(collector.transport.compression, "zstd");
  EXPECT_EQ(collector.transport.protocol, "http/protobuf");
  EXPECT_EQ(grafana.transport.protocol, "");  // default: http/json
  EXPECT_EQ(collector.transport.timeout, milliseconds(2000));
  EXPECT_EQ(collector.transport.max_in_flight, 8u);
  EXPECT_EQ(collector.transport.ca_file, (data_dir() / "ca.pem").string());  // relative to the file
  EXPECT_FALSE(collector.privacy_mode);
  EXPECT_EQ(collector.sampling_rate, 1.0);

  const auto& [acct2, generic] = r.destinations[2];
  EXPECT_EQ(acct2, "acct_2");
  EXPECT_EQ(generic.transport.kind, DestinationKind::otlp_http);
  EXPECT_TRUE(generic.transport.insecure_skip_verify);
}

TEST(ConfigFromJson, AnEmptyObjectGivesTheDefaults) {
  const ConfigLoadResult r = config_from_json("{}", "config.json");
  ASSERT_TRUE(r.ok()) << r.error;
  const PipelineConfig d;
  EXPECT_EQ(r.config.batch.max_spans, d.batch.max_spans);
  EXPECT_EQ(r.config.ingest.ring_bytes, d.ingest.ring_bytes);
  EXPECT_EQ(r.config.mapping.service_name, d.mapping.service_name);
  EXPECT_EQ(r.config.memory_budget_bytes, d.memory_budget_bytes);
  EXPECT_TRUE(r.destinations.empty());
}

TEST(ConfigFromJson, TheExampleFromTheReadmeLoads) {
  // The shape documented in the README section "Configuration file".
  const char* json = R"({
    "service": {"name": "openrouter", "version": "1.0.0", "resource_attributes": {"deployment.environment": "prod"}},
    "batch": {"max_spans": 512, "max_bytes": 4194304, "linger_ms": 200},
    "memory": {"budget_bytes": 268435456, "destination_budget_bytes": 33554432},
    "destinations": [
      {"account": "acct_1", "kind": "grafana_cloud", "name": "grafana-prod",
       "endpoint": "https://otlp-gateway-prod-eu-west-2.grafana.net", "instance_id": "123456",
       "api_key": "glc_inline", "privacy_mode": true, "sampling_rate": 0.5},
      {"account": "", "kind": "otel_collector", "endpoint": "http://127.0.0.1:4318", "headers": {"x-team": "a"}}
    ]
  })";
  const ConfigLoadResult r = config_from_json(json, "config.json");
  ASSERT_TRUE(r.ok()) << r.error;
  ASSERT_EQ(r.destinations.size(), 2u);
  EXPECT_EQ(r.destinations[0].second.transport.api_key, "glc_inline");
  EXPECT_EQ(r.destinations[1].first, "");
}

std::string json_error(std::string_view json) { return config_from_json(json, "config.json").error; }

// A forgotten "account" would route every tenant's spans to the destination: it is an error,
// and "every account" is written as "account": "".
TEST(ConfigFromJson, RefusesADestinationWithoutAnAccountKey) {
  EXPECT_EQ(json_error(R"({"destinations": [{"kind": "otlp_http", "name": "team-a",
                                              "endpoint": "http://127.0.0.1:4318/v1/traces"}]})"),
            "config.json: destinations[0].account: missing account (team-a): give the account whose requests it "
            "takes, or write \"account\": \"\" for every account");
  const ConfigLoadResult every = config_from_json(
      R"({"destinations": [{"account": "", "kind": "otlp_http", "endpoint": "http://127.0.0.1:4318/v1/traces"}]})",
      "config.json");
  ASSERT_TRUE(every.ok()) << every.error;
  EXPECT_EQ(every.destinations[0].first, "");
}

// An explicitly empty list would read as "no key" but means "every key": refused.
TEST(ConfigFromJson, RefusesAnExplicitlyEmptyApiKeyIdList) {
  EXPECT_EQ(json_error(R"({"destinations": [{"account": "", "kind": "otlp_http", "api_key_ids": [],
                                              "endpoint": "http://127.0.0.1:4318/v1/traces"}]})"),
            "config.json: destinations[0].api_key_ids: empty list: leave api_key_ids out for every key");
}

// A request's account is cut to ingest.limits.max_field_bytes: a longer destination account
// could never match. The limit may be set after the destinations.
TEST(ConfigFromJson, RefusesAnAccountLongerThanTheIngestFieldLimit) {
  const std::string long_account(257, 'a');
  const std::string dest = R"({"account": ")" + long_account +
                           R"(", "kind": "otlp_http", "endpoint": "http://127.0.0.1:4318/v1/traces"})";
  EXPECT_EQ(json_error(R"({"destinations": [)" + dest + "]}"),
            "config.json: destinations[0].account: at most 256 bytes (ingest.limits.max_field_bytes: a request's "
            "account is cut to it, so a longer one never matches), got 257");
  const ConfigLoadResult raised =
      config_from_json(R"({"destinations": [)" + dest + R"(], "ingest": {"limits": {"max_field_bytes": 512}}})",
                       "config.json");
  EXPECT_TRUE(raised.ok()) << raised.error;
  EXPECT_TRUE(config_from_json(R"({"destinations": [{"account": ")" + std::string(256, 'a') +
                                   R"(", "kind": "otlp_http", "endpoint": "http://127.0.0.1:4318/v1/traces"}]})",
                               "config.json")
                  .ok());
}

// Header names ignore case: the same header from headers and headers_env, in two cases, is one
// header given twice; Content-Type is the sender's.
TEST(ConfigFromJson, RefusesAHeaderGivenTwiceInAnyCaseAndTheContentType) {
  EXPECT_THAT(json_error(R"({"destinations": [{"account": "", "kind": "otlp_http",
      "endpoint": "http://127.0.0.1:4318/v1/traces", "headers": {"x-a": "1", "X-A": "2"}}]})"),
              HasSubstr("destinations[0].headers: header #2 (X-A): given twice"));
  EXPECT_THAT(json_error(R"({"destinations": [{"account": "", "kind": "otlp_http",
      "endpoint": "http://127.0.0.1:4318/v1/traces", "headers": {"x-home": "1"}, "headers_env": {"X-Home": "HOME"}}]})"),
              HasSubstr("destinations[0].headers_env.X-Home: header set in headers too"));
  EXPECT_THAT(json_error(R"({"destinations": [{"account": "", "kind": "otlp_http",
      "endpoint": "http://127.0.0.1:4318/v1/traces", "headers": {"content-type": "text/plain"}}]})"),
              HasSubstr("destinations[0].headers: header #1 (content-type): set by the sender"));
}

// One rule for every resource string: valid UTF-8, no control characters.
TEST(ConfigFromJson, RefusesControlCharactersInEveryResourceString) {
  EXPECT_EQ(json_error(R"({"service": {"name": "a\u0000b"}})"),
            "config.json: service.name: must be valid UTF-8 without control characters");
  EXPECT_EQ(json_error(R"({"service": {"name": "a\nb"}})"),
            "config.json: service.name: must be valid UTF-8 without control characters");
  EXPECT_EQ(json_error(R"({"service": {"version": "1\u007f"}})"),
            "config.json: service.version: must be valid UTF-8 without control characters");
  EXPECT_THAT(json_error(R"({"service": {"resource_attributes": {"k": "a\u0001"}}})"),
              HasSubstr("must be valid UTF-8 without control characters"));
  EXPECT_THAT(json_error(R"({"service": {"resource_attributes": {"k\u0085": "a"}}})"),
              HasSubstr("must be valid UTF-8 without control characters"));
  EXPECT_THAT(json_error(R"({"destinations": [{"account": "", "kind": "otlp_http",
      "endpoint": "http://127.0.0.1:4318/v1/traces", "resource_attributes": {"k": "a\u0001"}}]})"),
              HasSubstr("must be valid UTF-8 without control characters"));
  // A tab is a control character too (a header value may hold one; a resource string not).
  EXPECT_FALSE(config_from_json(R"({"service": {"resource_attributes": {"k": "\t"}}})", "config.json").ok());
  EXPECT_TRUE(config_from_json(R"({"service": {"name": "caf\u00e9 \u4e2d"}})", "config.json").ok());
}

TEST(ConfigFromJson, ReadsTheStatsListingAndTheDisablePolicy) {
  const ConfigLoadResult r = config_from_json(
      R"({"stats": {"top_destinations": 5, "max_unhealthy_destinations": 50},
          "disable": {"enabled": true, "after_ms": 600000}})",
      "config.json");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.config.stats.top_destinations, 5u);
  EXPECT_EQ(r.config.stats.max_unhealthy_destinations, 50u);
  EXPECT_TRUE(r.config.disable.enabled);
  EXPECT_EQ(r.config.disable.after, std::chrono::minutes(10));
  const PipelineConfig defaults;
  EXPECT_EQ(defaults.stats.top_destinations, 20u);
  EXPECT_EQ(defaults.stats.max_unhealthy_destinations, 100u);
  EXPECT_FALSE(defaults.disable.enabled);
}

TEST(ConfigFromJson, ReadsTheEgressPolicyAndNamesABadEntry) {
  const ConfigLoadResult r = config_from_json(
      R"({"sender": {"egress": {"enforce": true, "allow_cidrs": ["10.1.0.0/16", "::1"],
                                "allow_hosts": ["otel.internal"]}}})",
      "config.json");
  ASSERT_TRUE(r.ok()) << r.error;
  const std::vector<std::string> cidrs = {"10.1.0.0/16", "::1"};
  EXPECT_EQ(r.config.sender.egress.allow_cidrs, cidrs);
  EXPECT_EQ(r.config.sender.egress.allow_hosts, std::vector<std::string>{"otel.internal"});
  EXPECT_EQ(json_error(R"({"sender": {"egress": {"allow_cidrs": ["10.1.0.0/16", "300.0.0.0/8"]}}})"),
            "config.json: sender.egress.allow_cidrs[1]: must be an IP address or CIDR (\"10.0.0.0/8\", "
            "\"127.0.0.1/32\", \"fd00::/8\")");
  EXPECT_THAT(json_error(R"({"sender": {"egress": {"allow_hosts": "x"}}})"), HasSubstr("sender.egress.allow_hosts"));
  EXPECT_THAT(json_error(R"({"sender": {"egress": {"allow_hosts": [1]}}})"), HasSubstr("allow_hosts[0]"));
  EXPECT_THAT(json_error(R"({"sender": {"egress": {"enfroce": true}}})"), HasSubstr("did you mean enforce"));
  std::string many = R"({"sender": {"egress": {"allow_cidrs": [)";
  for (int i = 0; i < 257; ++i) many += std::string(i == 0 ? "" : ",") + "\"10.0.0.1\"";
  many += "]}}}";
  EXPECT_THAT(json_error(many), HasSubstr("at most 256 entries"));
}


TEST(ConfigFromJson, NamesTheFieldAndTheTypeOnATypeError) {
  EXPECT_EQ(json_error(R"({"batch": {"max_spans": "512"}})"),
            "config.json: batch.max_spans: expected an unsigned integer, got string");
  EXPECT_EQ(json_error(R"({"batch": {"max_spans": -1}})"),
            "config.json: batch.max_spans: expected an unsigned integer, got -1");
  EXPECT_EQ(json_error(R"({"batch": {"max_spans": 1.5}})"),
            "config.json: batch.max_spans: must be a whole number written without a fraction or exponent (512, not "
            "512.0 or 5e2)");
  // 512.0 is a whole number's value written with a fraction: the message says so, not "got 512".
  EXPECT_EQ(json_error(R"({"batch": {"max_spans": 512.0}})"),
            "config.json: batch.max_spans: must be a whole number written without a fraction or exponent (512, not "
            "512.0 or 5e2)");
  EXPECT_EQ(json_error(R"({"batch": {"max_spans": 4294967296}})"),
            "config.json: batch.max_spans: must be at most 4294967295, got 4294967296");
  EXPECT_EQ(json_error(R"({"sender": {"http2": "yes"}})"), "config.json: sender.http2: expected true or false, got string");
  EXPECT_EQ(json_error(R"({"sender": {"retry": {"multiplier": null}}})"),
            "config.json: sender.retry.multiplier: expected a number, got null");
  EXPECT_EQ(json_error(R"({"compression": {"zstd_level": 1.0}})"),
            "config.json: compression.zstd_level: must be a whole number written without a fraction or exponent (3, "
            "not 3.0 or 3e0)");
  EXPECT_EQ(json_error(R"({"service": {"name": 5}})"), "config.json: service.name: expected a string, got number");
  EXPECT_EQ(json_error(R"({"batch": []})"), "config.json: batch: expected an object, got array");
  EXPECT_EQ(json_error(R"({"destinations": {}})"), "config.json: destinations: expected an array, got object");
  EXPECT_EQ(json_error(R"([1, 2])"), "config.json: expected an object, got array");
  EXPECT_EQ(json_error(R"({"service": {"resource_attributes": {"a": 1}}})"),
            "config.json: service.resource_attributes.a: expected a string, got number");
}

TEST(ConfigFromJson, RejectsUnknownFieldsWithASuggestion) {
  // linger_ms alone above the default max_linger raises it; both given and inverted: an error
  // naming the file's own key.
  const ConfigLoadResult long_linger = config_from_json(R"({"batch": {"linger_ms": 6000}})", "config.json");
  ASSERT_TRUE(long_linger.ok()) << long_linger.error;
  EXPECT_EQ(long_linger.config.batch.max_linger, milliseconds(6000));
  EXPECT_EQ(json_error(R"({"batch": {"linger_ms": 6000, "max_linger_ms": 5000}})"),
            "config.json: batch.max_linger_ms: must be batch.linger (6000 ms)..60000 ms, got 5000 ms");
  EXPECT_EQ(json_error(R"({"batch": {"linger": 200}})"),
            "config.json: batch.linger: unknown field (did you mean linger_ms?)");
  EXPECT_EQ(json_error(R"({"batch": {"max_span": 200}})"),
            "config.json: batch.max_span: unknown field (did you mean max_spans?)");
  EXPECT_EQ(json_error(R"({"destinations": [{"endpoint": "http://a:4318", "sampling": 1}]})"),
            "config.json: destinations[0].sampling: unknown field (did you mean sampling_rate?)");
  EXPECT_EQ(json_error(R"({"zzzzzz": 1})"), "config.json: zzzzzz: unknown field");
}

TEST(ConfigFromJson, RejectsDuplicateFields) {
  EXPECT_EQ(json_error(R"({"batch": {"max_spans": 1, "max_spans": 2}})"), "config.json: batch.max_spans: duplicate field");
}

TEST(ConfigFromJson, ReportsMalformedJsonWithTheSourceName) {
  EXPECT_THAT(json_error(""), StartsWith("config.json: invalid JSON: "));
  const std::string path = (data_dir() / "malformed.json").string();
  EXPECT_THAT(config_from_json_file(path).error, StartsWith(path + ": invalid JSON at line 1, byte 29 (offset 28), in batch: "));
}

// Malformed JSON is located (line, byte, and the field being read); the DOM parser says only
// what is wrong, the On-Demand walk where.
TEST(ConfigFromJson, SaysWhereTheJsonIsMalformed) {
  EXPECT_THAT(json_error("{\"batch\":\n  {\"max_spans\": 512,\n  }\n}"),
              StartsWith("config.json: invalid JSON at line 3, byte 3 (offset 33), in batch: The JSON document has an "
                         "improper structure"));
  EXPECT_THAT(json_error(R"({"destinations": [{"endpoint": "http://a:4318"}, {"endpoint": tru}]})"),
              StartsWith("config.json: invalid JSON at line 1, byte 63 (offset 62), in destinations[1].endpoint: "));
  EXPECT_THAT(json_error(R"({"batch": {"max_spans": 1}} x)"), StartsWith("config.json: invalid JSON at line 1, byte 29 (offset 28): "));
  // A key that is not printable ASCII is not echoed.
  EXPECT_THAT(json_error("{\"a\\nb\": {\"c\": tru}}"), StartsWith("config.json: invalid JSON at line 1, byte 16 (offset 15), in ?.c: "));
}

// Bytes that are not UTF-8 are located (line, byte); a number nothing 64-bit holds is said to
// be one, and where; a duration past 2^53 ms gets its field's own range, not the integer type's.
TEST(ConfigFromJson, SaysWhereTheFileIsNotUtf8AndWhatIsWrongWithANumber) {
  EXPECT_EQ(json_error("{\n  \"service\": {\"name\": \"caf\xc3(\"}}"),
            "config.json: not UTF-8: line 2, byte 27 (offset 28) is not part of a valid UTF-8 sequence; JSON text is UTF-8");
  EXPECT_THAT(json_error(R"({"batch": {"max_spans": 99999999999999999999}})"),
              StartsWith("config.json: invalid JSON at line 1, byte 25 (offset 24), in batch.max_spans: a number that is "
                         "malformed or out of range"));
  const std::string over = json_error(R"({"disable": {"after_ms": 9007199254740993}})");
  EXPECT_THAT(over, StartsWith("config.json: disable.after_ms: "));
  EXPECT_THAT(over, ::testing::HasSubstr("30"));  // the 30-day range, not 2^53
  EXPECT_THAT(over, ::testing::Not(::testing::HasSubstr("at most 9007199254740992")));
}

TEST(ConfigFromJson, NamesTheFileInErrors) {
  const std::string path = (data_dir() / "bad_field.json").string();
  EXPECT_EQ(config_from_json_file(path).error, path + ": batch.linger: unknown field (did you mean linger_ms?)");
  const std::string missing = (data_dir() / "does_not_exist.json").string();
  EXPECT_THAT(config_from_json_file(missing).error, StartsWith(missing + ": cannot read: "));
}

// Numbers and sizes from a config are bounded before use: a field error, never bad_alloc or
// seconds of CPU.
TEST(ConfigFromJson, EveryNumberAndSizeHasAnUpperBound) {
  EXPECT_EQ(json_error(R"({"memory": {"budget_bytes": 1125899906842624}})"),
            "config.json: memory.budget_bytes: must be 4 * batch.max_bytes (16777216)..1099511627776 (1 TiB), got "
            "1125899906842624");
  EXPECT_THAT(json_error(R"({"memory": {"budget_bytes": 18446744073709551615}})"),
              StartsWith("config.json: memory.budget_bytes: "));
  const std::string huge_name = R"({"service": {"name": ")" + std::string(11u << 20, 'n') + R"("}})";
  EXPECT_EQ(json_error(huge_name), "config.json: service.name: at most 1024 bytes, got 11534336");
  EXPECT_THAT(json_error(R"({"service": {"version": ")" + std::string(2000, 'v') + R"("}})"),
              StartsWith("config.json: service.version: at most 1024 bytes"));
  EXPECT_THAT(json_error(R"({"service": {"resource_attributes": {"k": ")" + std::string(5000, 'v') + R"("}}})"),
              HasSubstr("value over 4096 bytes"));
  EXPECT_THAT(json_error(R"({"sender": {"user_agent": "a\u0001b"}})"),
              StartsWith("config.json: sender.user_agent: must not contain control bytes"));
  // 100,000 resource attributes: refused by count before any is compared with another.
  std::string many = R"({"service": {"resource_attributes": {)";
  for (int i = 0; i < 100000; ++i) many += (i == 0 ? "\"k" : ",\"k") + std::to_string(i) + "\":\"v\"";
  many += "}}}";
  EXPECT_EQ(json_error(many), "config.json: service.resource_attributes: at most 16 entries, got 100000");
  std::string headers = R"({"destinations": [{"endpoint": "https://otel.example/v1/traces", "headers": {)";
  for (int i = 0; i < 65; ++i) headers += (i == 0 ? "\"h" : ",\"h") + std::to_string(i) + "\":\"v\"";
  headers += "}}]}";
  EXPECT_EQ(json_error(headers), "config.json: destinations[0].headers: at most 64 entries, got 65");
  EXPECT_THAT(json_error(R"({"destinations": [{"endpoint": "http:///v1/traces"}]})"),
              StartsWith("config.json: destinations[0].endpoint: the endpoint has no host"));
  EXPECT_THAT(json_error(R"({"destinations": [{"endpoint": "https://h.example/v1/traces", "headers": {"x": "a\u0001b"}}]})"),
              HasSubstr("control byte"));
}

TEST(ConfigFromJson, ReportsRangeErrorsUnderTheJsonPath) {
  EXPECT_EQ(json_error(R"({"batch": {"linger_ms": 0}})"), "config.json: batch.linger_ms: must be 1..60000 ms, got 0 ms");
  EXPECT_EQ(json_error(R"({"batch": {"max_spans": 0}})"), "config.json: batch.max_spans: must be 1..65536, got 0");
  EXPECT_THAT(json_error(R"({"memory": {"budget_bytes": 1000}})"),
              StartsWith("config.json: memory.budget_bytes: must be 4 * batch.max_bytes"));
  EXPECT_THAT(json_error(R"({"memory": {"destination_budget_bytes": 1}})"),
              StartsWith("config.json: memory.destination_budget_bytes: "));
  EXPECT_THAT(json_error(R"({"ingest": {"ring_bytes": 1000000}})"),
              StartsWith("config.json: ingest.ring_bytes: must be a power of two"));
  EXPECT_THAT(json_error(R"({"ingest": {"limits": {"max_field_bytes": 1}}})"),
              StartsWith("config.json: ingest.limits.max_field_bytes: "));
  EXPECT_THAT(json_error(R"({"encoder": {"max_value_bytes": 1}})"), StartsWith("config.json: encoder.max_value_bytes: "));
  EXPECT_EQ(json_error(R"({"encoder_threads": 2})"),
            "config.json: encoder_threads: must be 1 (only 1 is implemented), got 2");
  EXPECT_THAT(json_error(R"({"compression": {"gzip_level": 13}})"), StartsWith("config.json: compression.gzip_level: "));
  EXPECT_THAT(json_error(R"({"compression": {"zstd_level": -8}})"), StartsWith("config.json: compression.zstd_level: "));
  EXPECT_THAT(json_error(R"({"sender": {"connect_timeout_ms": 0}})"),
              StartsWith("config.json: sender.connect_timeout_ms: "));
  EXPECT_THAT(json_error(R"({"sender": {"retry": {"max_interval_ms": 1}}})"),
              StartsWith("config.json: sender.retry.max_interval_ms: "));
  EXPECT_THAT(json_error(R"({"sender": {"queue_capacity": 33}})"), StartsWith("config.json: sender.queue_capacity: "));
  EXPECT_THAT(json_error(R"({"shutdown_timeout_ms": 600001})"), StartsWith("config.json: shutdown_timeout_ms: "));
  EXPECT_EQ(json_error(R"({"stats": {"top_destinations": 1001}})"),
            "config.json: stats.top_destinations: must be 0..1000, got 1001");
  EXPECT_THAT(json_error(R"({"stats": {"max_unhealthy_destinations": 10001}})"),
              StartsWith("config.json: stats.max_unhealthy_destinations: "));
  EXPECT_THAT(json_error(R"({"disable": {"after_ms": 2592000001}})"), StartsWith("config.json: disable.after_ms: "));
  EXPECT_THAT(json_error(R"({"service": {"name": ""}})"), StartsWith("config.json: service.name: must not be empty"));
  EXPECT_THAT(json_error(R"({"service": {"resource_attributes": {"service.name": "x"}}})"),
              StartsWith("config.json: service.resource_attributes.service.name: "));
}

TEST(ConfigFromJson, ChecksEachDestination) {
  EXPECT_EQ(json_error(R"({"destinations": [{"account": "", "endpoint": "http://a:4318"}, {"endpoint": "http://b:4318", "sampling_rate": 0}]})"),
            "config.json: destinations[1].sampling_rate: must be in 0.0001..1, got 0");
  EXPECT_EQ(json_error(R"({"destinations": [{"endpoint": "http://a:4318", "sampling_rate": 1.5}]})"),
            "config.json: destinations[0].sampling_rate: must be in 0.0001..1, got 1.5");
  EXPECT_EQ(json_error(R"({"destinations": [{"kind": "tempo", "endpoint": "http://a:4318"}]})"),
            "config.json: destinations[0].kind: must be one of " + preset_names() + ", got 'tempo'");
  EXPECT_THAT(json_error(R"({"destinations": [{"kind": "grafana_cloud", "endpoint": "https://otlp-gateway-prod-eu-west-2.grafana.net", "instance_id": "stack-abc", "api_key": "glc_x"}]})"),
              StartsWith("config.json: destinations[0].instance_id: "));
  EXPECT_THAT(json_error(R"({"destinations": [{"endpoint": "gopher://a"}]})"),
              StartsWith("config.json: destinations[0].endpoint: "));
  EXPECT_THAT(json_error(R"({"destinations": [{"endpoint": "http://a:4318", "timeout_ms": 0}]})"),
              StartsWith("config.json: destinations[0].timeout_ms: "));
  EXPECT_THAT(json_error(R"({"destinations": [{"endpoint": "http://a:4318", "compression": "br"}]})"),
              StartsWith("config.json: destinations[0].compression: "));
  EXPECT_THAT(json_error(R"({"destinations": [{"endpoint": "http://a:4318", "protocol": "grpc"}]})"),
              StartsWith("config.json: destinations[0].protocol: grpc is not supported"));
  EXPECT_THAT(json_error(R"({"destinations": [{"kind": "grafana_cloud", "endpoint": "https://otlp-gateway-prod-eu-west-2.grafana.net", "instance_id": "1"}]})"),
              StartsWith("config.json: destinations[0].api_key: "));
}

TEST(ConfigFromJson, TakesOneApiKeySourceOnly) {
  EXPECT_EQ(json_error(R"({"destinations": [{"endpoint": "http://a:4318", "api_key": "k", "api_key_env": "X"}]})"),
            "config.json: destinations[0].api_key_env: give only one of api_key, api_key_env and api_key_file "
            "(api_key is set too)");
}

TEST(ConfigFromJson, ReadsTheApiKeyFromTheEnvironment) {
  ASSERT_EQ(::setenv("TRACECAST_TEST_GRAFANA_KEY", "glc_from_env_77", 1), 0);
  const ConfigLoadResult r = config_from_json(
      R"({"destinations": [{"account": "", "kind": "grafana_cloud", "endpoint": "https://otlp-gateway-prod-eu-west-2.grafana.net",
          "instance_id": "42", "api_key_env": "TRACECAST_TEST_GRAFANA_KEY"}]})",
      "config.json");
  ::unsetenv("TRACECAST_TEST_GRAFANA_KEY");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.destinations[0].second.transport.api_key, "glc_from_env_77");
  EXPECT_EQ(json_error(R"({"destinations": [{"endpoint": "http://a:4318", "api_key_env": "TRACECAST_TEST_UNSET_VAR_XYZ"}]})"),
            "config.json: destinations[0].api_key_env: environment variable TRACECAST_TEST_UNSET_VAR_XYZ is not set or "
            "empty");
  EXPECT_EQ(json_error(R"({"destinations": [{"endpoint": "http://a:4318", "headers_env": {"authorization": "TRACECAST_TEST_UNSET_VAR_XYZ"}}]})"),
            "config.json: destinations[0].headers_env.authorization: environment variable TRACECAST_TEST_UNSET_VAR_XYZ "
            "is not set or empty");
}

// A header name holding a credential ("Authorization: Bearer <token>" as the name) is shown
// only up to its leading token, in every error about it.
TEST(ConfigFromJson, NeverQuotesAHeaderNameThatHoldsACredential) {
  const std::string secret = "s3cr3t-token-9f8e7d";
  const std::string start = R"({"destinations": [{"endpoint": "http://a:4318", )";
  const std::string cases[] = {
      start + R"("headers": {"Authorization: Bearer )" + secret + R"(": ""}}]})",
      start + R"("headers": {"Bearer )" + secret + R"(": "x"}}]})",
      start + R"("headers": {"Authorization: Bearer )" + secret + R"(": 7}}]})",
      start + R"("headers_env": {"Authorization: Bearer )" + secret + R"(": "TRACECAST_TEST_UNSET_VAR_XYZ"}}]})",
  };
  for (const std::string& json : cases) {
    const std::string e = json_error(json);
    EXPECT_THAT(e, StartsWith("config.json: destinations[0].headers")) << json;
    EXPECT_THAT(e, Not(HasSubstr(secret))) << e;
  }
  EXPECT_THAT(json_error(cases[0]), HasSubstr("Name=value"));
  EXPECT_THAT(json_error(cases[3]), StartsWith("config.json: destinations[0].headers_env.Authorization: ...: "));
  EXPECT_THAT(json_error(cases[2]), StartsWith("config.json: destinations[0].headers.Authorization: ...: "));
}

TEST(ConfigFromJson, ReportsAnUnreadableKeyFile) {
  const ConfigLoadResult r = config_from_json(
      R"({"destinations": [{"endpoint": "http://a:4318", "api_key_file": "/nonexistent/tracecast.key"}]})", "config.json");
  EXPECT_THAT(r.error, StartsWith("config.json: destinations[0].api_key_file: cannot read /nonexistent/tracecast.key: "));
}

TEST(ConfigFromJson, NeverQuotesASecretInAnError) {
  const std::string secret = "glc_never_print_me_0c9b";
  ASSERT_EQ(::setenv("TRACECAST_TEST_SECRET", secret.c_str(), 1), 0);
  const std::string header_secret = "Bearer hdr_secret_4d4d";
  const std::string cases[] = {
      // Bad instance id beside an inline key.
      R"({"destinations": [{"kind": "grafana_cloud", "endpoint": "https://otlp-gateway-prod-eu-west-2.grafana.net", "instance_id": "x", "api_key": ")" +
          secret + R"("}]})",
      // A key with a line break (header injection), inline and from the environment.
      R"({"destinations": [{"kind": "grafana_cloud", "endpoint": "https://otlp-gateway-prod-eu-west-2.grafana.net", "instance_id": "1", "api_key": ")" +
          secret + R"(\r\nX: y"}]})",
      // A header value with CR LF, and a bad header name.
      R"({"destinations": [{"endpoint": "http://a:4318", "headers": {"authorization": ")" + header_secret +
          R"(\r\nX-Evil: 1"}}]})",
      R"({"destinations": [{"endpoint": "http://a:4318", "headers": {"bad name": ")" + header_secret + R"("}}]})",
      // Wrong type where a secret was expected: the error gives the type, not the value.
      R"({"destinations": [{"endpoint": "http://a:4318", "api_key": [")" + secret + R"("]}]})",
      // A secret later in a file that fails validation elsewhere.
      R"({"batch": {"max_spans": 0}, "destinations": [{"endpoint": "http://a:4318", "headers_env": {"authorization": "TRACECAST_TEST_SECRET"}}]})",
  };
  for (const std::string& json : cases) {
    const std::string err = json_error(json);
    EXPECT_THAT(err, StartsWith("config.json: ")) << json;
    EXPECT_THAT(err, Not(HasSubstr(secret))) << err;
    EXPECT_THAT(err, Not(HasSubstr("hdr_secret"))) << err;
  }
  ::unsetenv("TRACECAST_TEST_SECRET");
}

TEST(ConfigFromJson, GivesNoDestinationsOnError) {
  const ConfigLoadResult r = config_from_json(
      R"({"destinations": [{"endpoint": "http://a:4318"}, {"endpoint": "http://b:4318", "sampling_rate": 7}]})",
      "config.json");
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(r.destinations.empty());
}

TEST(ConfigFromJson, TakesANumericInstanceIdAsItsDecimalText) {
  const ConfigLoadResult r = config_from_json(
      R"({"destinations": [{"account": "", "kind": "grafana_cloud", "endpoint": "https://otlp-gateway-prod-eu-west-2.grafana.net", "instance_id": 987654321, "api_key": "glc_k"}]})",
      "config.json");
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.destinations[0].second.transport.instance_id, "987654321");
}

}  // namespace
}  // namespace tracecast
