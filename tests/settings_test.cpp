// The settings rows (tracecast/settings.h, core/pipeline/settings.h): every field is described
// once and that description is what validation, the JSON loader, the environment reader and
// README use; the sender and the loader apply one set of rules; results are structured.
#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fake_env.h"
#include "settings.h"
#include "tracecast/destination.h"
#include "tracecast/pipeline.h"
#include "tracecast/sender.h"

namespace tracecast {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string readme() {
  const char* dir = std::getenv("TRACECAST_SOURCE_DIR");
  std::ifstream in(std::string(dir != nullptr ? dir : "..") + "/README.md");
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// README's table between `begin` and `end` is `expected`; on a difference it is written to
// `file` (in the test's working directory) to paste between the markers.
void expect_readme_table(std::string_view begin_marker, std::string_view end_marker, const std::string& expected,
                         const std::string& file) {
  const std::string text = readme();
  const auto begin = text.find(begin_marker);
  ASSERT_NE(begin, std::string::npos) << "README.md has no marker " << begin_marker;
  const auto start = text.find('\n', begin) + 1;
  const auto end = text.find(end_marker, start);
  ASSERT_NE(end, std::string::npos);
  if (text.substr(start, end - start) != expected) {
    std::ofstream(file) << expected;
    ADD_FAILURE() << "README.md's table differs from the settings rows; the rows' table is in " << file << ":\n"
                  << expected;
  }
}

// README's configuration table is the rows, as settings_markdown_table() writes them: every
// field with its JSON key, variable, unit, default and range, and no field README lists that
// the code does not have.
TEST(SettingsReadme, TheConfigurationTableIsTheRows) {
  expect_readme_table("<!-- settings-table: generated from the settings rows", "<!-- settings-table end -->",
                      settings_markdown_table(), "settings_table.md");
}

// README's table of a destinations entry is the rows of DestinationConfig, PipelineDestination
// and the file's own keys, as destination_markdown_table() writes them.
TEST(SettingsReadme, TheDestinationTableIsTheRows) {
  expect_readme_table("<!-- destination-table: generated from the settings rows", "<!-- destination-table end -->",
                      destination_markdown_table(), "destination_table.md");
}

// Every row with a JSON key is read by the loader (its default value written back loads and
// keeps the default), and every row's default is inside its range.
TEST(SettingsRows, EveryKeyLoadsAndEveryDefaultIsValid) {
  EXPECT_TRUE(validate(PipelineConfig{}).empty());
  PipelineConfig defaults;
  std::vector<std::string> paths;
  for (const FlatSetting& flat : flat_settings()) {
    SCOPED_TRACE(flat.path);
    EXPECT_EQ(std::find(paths.begin(), paths.end(), flat.path), paths.end()) << "described twice";
    paths.push_back(flat.path);
    if (flat.json.empty() || flat.row->ref == nullptr) continue;
    std::string value = setting_text(*flat.row, flat.section->object(defaults));
    if (std::holds_alternative<std::string*>(flat.row->ref(flat.section->object(defaults)))) value = "\"" + value + "\"";
    // {"a": {"b": value}} from "a.b".
    std::string json;
    std::string_view key = flat.json;
    int depth = 0;
    for (auto dot = key.find('.'); dot != std::string_view::npos; dot = key.find('.')) {
      json.append("{\"").append(key.substr(0, dot)).append("\": ");
      key.remove_prefix(dot + 1);
      ++depth;
    }
    json.append("{\"").append(key).append("\": ").append(value).append("}");
    json.append(static_cast<std::size_t>(depth), '}');
    const ConfigLoadResult r = config_from_json(json, "rows.json");
    ASSERT_TRUE(r.ok()) << json << ": " << r.error;
    PipelineConfig loaded = r.config;
    EXPECT_EQ(setting_text(*flat.row, flat.section->object(loaded)), setting_text(*flat.row, flat.section->object(defaults)));
  }
}

// Every key of a destinations entry that has a field is read into that field (its default
// written back loads and keeps the default), and the defaults pass both validators.
TEST(SettingsRows, EveryDestinationKeyLoads) {
  PipelineDestination defaults;
  defaults.transport.endpoint = "http://127.0.0.1:4318";
  EXPECT_TRUE(defaults.validate().empty());
  EXPECT_FALSE(has_errors(validate(defaults.transport)));
  std::vector<std::string_view> keys;
  for (const FlatDestinationSetting& flat : flat_destination_settings()) {
    SCOPED_TRACE(std::string(flat.json));
    EXPECT_EQ(std::find(keys.begin(), keys.end(), flat.json), keys.end()) << "described twice";
    keys.push_back(flat.json);
    // api_key_ids' default (every key) is written by leaving it out: "[]" is refused in a file.
    if (flat.section->object == nullptr || flat.row->ref == nullptr || flat.json == "endpoint" ||
        flat.json == "api_key_ids")
      continue;
    const SettingRef ref = flat.row->ref(flat.section->object(defaults));
    std::string value = setting_text(*flat.row, flat.section->object(defaults));
    if (std::holds_alternative<std::string*>(ref)) value = "\"" + value + "\"";
    if (std::holds_alternative<std::vector<std::string>*>(ref)) value = "[]";
    if (std::holds_alternative<SettingPairs*>(ref)) value = "{}";
    const std::string json = R"({"destinations": [{"account": "", "endpoint": "http://127.0.0.1:4318", ")" + std::string(flat.json) +
                             "\": " + value + "}]}";
    const ConfigLoadResult r = config_from_json(json, "rows.json");
    ASSERT_TRUE(r.ok()) << json << ": " << r.error;
    ASSERT_EQ(r.destinations.size(), 1u);
    PipelineDestination loaded = r.destinations[0].second;
    EXPECT_EQ(setting_text(*flat.row, flat.section->object(loaded)), setting_text(*flat.row, flat.section->object(defaults)));
  }
  EXPECT_GE(keys.size(), 28u);
}

// A destination's range checks come from its rows, under the row's JSON key in the file.
TEST(SettingsRows, ADestinationRowsRangeIsTheLoadersToo) {
  auto error = [](std::string_view entry) {
    return config_from_json(R"({"destinations": [{"account": "", "endpoint": "http://127.0.0.1:4318", )" +
                                std::string(entry) + "}]}",
                            "c.json")
        .error;
  };
  EXPECT_EQ(error(R"("timeout_ms": 600001)"), "c.json: destinations[0].timeout_ms: must be 1..600000 ms (10 min), got 600001 ms");
  EXPECT_EQ(error(R"("max_in_flight": 0)"), "c.json: destinations[0].max_in_flight: must be 1..1024, got 0");
  EXPECT_EQ(error(R"("compression": "br")"), "c.json: destinations[0].compression: must be one of none, gzip, zstd");
  EXPECT_EQ(error(R"("max_attribute_value_bytes": 255)"),
            "c.json: destinations[0].max_attribute_value_bytes: must be 0 (encoder.max_value_bytes) or 256..16777216, "
            "got 255");
  EXPECT_EQ(error(R"("max_attribute_value_bytes": 0)"), "");
  EXPECT_EQ(error(R"("resource_attributes": {"": "v"})"), "c.json: destinations[0].resource_attributes: empty key");
  EXPECT_EQ(error(R"("name": ")" + std::string(257, 'n') + "\""), "c.json: destinations[0].name: at most 256 bytes, got 257");
}

// Every variable a row names is read with that row's range and named in the error.
using test::fake_env;
using test::fake_getenv;

TEST(SettingsRows, EveryVariableIsReadWithItsRowsRange) {
  int variables = 0;
  for (const FlatSetting& flat : flat_settings()) {
    const Setting& row = *flat.row;
    if (row.env.empty()) continue;
    SCOPED_TRACE(std::string(row.env));
    ++variables;
    fake_env().clear();
    PipelineConfig defaults;
    const SettingRef ref = row.ref(flat.section->object(defaults));
    if (std::holds_alternative<std::string*>(ref)) {
      fake_env()[std::string(row.env)] = "from-the-environment";
      const ConfigLoadResult r = config_from_env({}, &fake_getenv);
      ASSERT_TRUE(r.ok()) << r.error;
      PipelineConfig loaded = r.config;
      EXPECT_EQ(setting_text(row, flat.section->object(loaded)), "from-the-environment");
      continue;
    }
    fake_env()[std::string(row.env)] = std::holds_alternative<bool*>(ref) ? "maybe" : std::to_string(row.max + 1);
    EXPECT_THAT(config_from_env({}, &fake_getenv).error, StartsWith(std::string(row.env) + ": "));
    fake_env()[std::string(row.env)] = std::holds_alternative<bool*>(ref) ? "1" : std::to_string(row.max);
    const ConfigLoadResult r = config_from_env({}, &fake_getenv);
    ASSERT_TRUE(r.ok()) << r.error;
    PipelineConfig loaded = r.config;
    EXPECT_EQ(setting_integer(row, flat.section->object(loaded)), row.max);
  }
  fake_env().clear();
  EXPECT_GE(variables, 4);  // OTEL_SERVICE_NAME, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, _SCHEDULE_DELAY, TRACECAST_EGRESS_ENFORCE
}

// ---- one set of rules for SenderConfig ------------------------------------------------------

struct SenderCase {
  const char* field;     // validate(SenderConfig)'s field
  const char* json;      // the config file's "sender" object
  std::function<void(SenderConfig&)> change;
};

bool sender_accepts(const SenderConfig& c) {
  try {
    Sender sender(c);
    return true;
  } catch (const std::invalid_argument&) {
    return false;
  }
}

// Each config is refused by the Sender's constructor, by PipelineConfig's validation and by
// the file loader, under one field name; the last value inside each range is taken by all
// three. (The sender used to take a retry multiplier above 100 and intervals of any length.)
TEST(SenderSettings, TheSenderAndTheLoaderRefuseTheSameConfigs) {
  const std::vector<SenderCase> refused = {
      {"retry.multiplier", R"({"retry": {"multiplier": 101}})", [](SenderConfig& c) { c.retry.multiplier = 101; }},
      {"retry.initial_interval", R"({"retry": {"initial_interval_ms": 600001, "max_interval_ms": 600001}})",
       [](SenderConfig& c) { c.retry.initial_interval = c.retry.max_interval = milliseconds(600001); }},
      {"retry.max_interval", R"({"retry": {"max_interval_ms": 600001}})",
       [](SenderConfig& c) { c.retry.max_interval = milliseconds(600001); }},
      {"retry.max_interval", R"({"retry": {"max_interval_ms": 4999}})",
       [](SenderConfig& c) { c.retry.max_interval = milliseconds(4999); }},
      {"retry.max_elapsed", R"({"retry": {"max_elapsed_ms": 86400001}})",
       [](SenderConfig& c) { c.retry.max_elapsed = milliseconds(86400001); }},
      {"connect_timeout", R"({"connect_timeout_ms": 0})", [](SenderConfig& c) { c.connect_timeout = milliseconds(0); }},
      {"queue_capacity", R"({"queue_capacity": 48})", [](SenderConfig& c) { c.queue_capacity = 48; }},
      {"max_producers", R"({"max_producers": 257})", [](SenderConfig& c) { c.max_producers = 257; }},
      {"max_connections_per_host", R"({"max_connections_per_host": 1025})",
       [](SenderConfig& c) { c.max_connections_per_host = 1025; }},
      {"max_response_bytes", R"({"max_response_bytes": 16777217})",
       [](SenderConfig& c) { c.max_response_bytes = (16u << 20) + 1; }},
      {"user_agent", R"({"user_agent": "a\nb"})", [](SenderConfig& c) { c.user_agent = "a\nb"; }},
      {"egress.allow_cidrs[0]", R"({"egress": {"allow_cidrs": ["10.0.0.0/40"]}})",
       [](SenderConfig& c) { c.egress.allow_cidrs = {"10.0.0.0/40"}; }},
  };
  for (const SenderCase& sc : refused) {
    SCOPED_TRACE(sc.json);
    SenderConfig c;
    sc.change(c);
    const std::vector<ValidationIssue> issues = validate(c);
    ASSERT_FALSE(issues.empty());
    EXPECT_EQ(issues.front().path, sc.field);
    EXPECT_FALSE(sender_accepts(c));
    PipelineConfig p;
    p.sender = c;
    EXPECT_THAT(p.validate(), StartsWith(std::string("sender.") + sc.field + ": "));
    const std::string json = std::string(R"({"sender": )") + sc.json + "}";
    EXPECT_THAT(config_from_json(json, "c.json").error, StartsWith("c.json: sender."));
  }
  const std::vector<SenderCase> accepted = {
      {"retry.multiplier", R"({"retry": {"multiplier": 100}})", [](SenderConfig& c) { c.retry.multiplier = 100; }},
      {"retry.max_interval", R"({"retry": {"max_interval_ms": 600000}})",
       [](SenderConfig& c) { c.retry.max_interval = milliseconds(600000); }},
      {"retry.max_elapsed", R"({"retry": {"max_elapsed_ms": 86400000}})",
       [](SenderConfig& c) { c.retry.max_elapsed = milliseconds(86400000); }},
      {"connect_timeout", R"({"connect_timeout_ms": 600000})",
       [](SenderConfig& c) { c.connect_timeout = milliseconds(600000); }},
      {"queue_capacity", R"({"queue_capacity": 32})", [](SenderConfig& c) { c.queue_capacity = 32; }},
  };
  for (const SenderCase& sc : accepted) {
    SCOPED_TRACE(sc.json);
    SenderConfig c;
    sc.change(c);
    EXPECT_TRUE(validate(c).empty());
    EXPECT_TRUE(sender_accepts(c));
    const std::string json = std::string(R"({"sender": )") + sc.json + "}";
    EXPECT_TRUE(config_from_json(json, "c.json").ok());
  }
}

// ---- structured results ---------------------------------------------------------------------

// Every issue is named by its full member path, built by prefixing the embedded struct's own
// path, with a code a program can act on.
TEST(SettingsValidation, IssuesAreNamedByPrefixingAndCarryACode) {
  PipelineConfig c;
  c.sender.retry.multiplier = 0.5;
  c.ingest.limits.max_field_bytes = 1;
  c.encoder.max_value_bytes = 2;
  c.sender.egress.allow_hosts = {"ok.example", "bad host"};
  c.mapping.service_name.clear();
  const std::vector<ValidationIssue> issues = validate(c);
  std::map<std::string, IssueCode> by_field;
  for (const ValidationIssue& issue : issues) by_field[issue.path] = issue.code;
  EXPECT_EQ(by_field.at("sender.retry.multiplier"), IssueCode::out_of_range);
  EXPECT_EQ(by_field.at("ingest.limits.max_field_bytes"), IssueCode::out_of_range);
  EXPECT_EQ(by_field.at("encoder.max_value_bytes"), IssueCode::out_of_range);
  EXPECT_EQ(by_field.at("sender.egress.allow_hosts[1]"), IssueCode::invalid);
  EXPECT_EQ(by_field.at("mapping.service_name"), IssueCode::required);
  EXPECT_EQ(issues.size(), 5u);
  // The first one is what the string form says, field first.
  EXPECT_EQ(c.validate(), issues.front().path + ": " + issues.front().message);
}

// Destination and preset issues say what kind of problem they are, so a program (an admin UI,
// tracecast-check) can react without reading the message.
TEST(SettingsValidation, DestinationAndPresetIssuesCarryTheirCode) {
  auto code_of = [](const std::vector<ValidationIssue>& issues, std::string_view field) {
    for (const ValidationIssue& issue : issues) {
      if (issue.path == field && !issue.warning) return std::string(to_string(issue.code));
    }
    return std::string("(none)");
  };
  DestinationConfig grafana;
  grafana.kind = DestinationKind::grafana_cloud;
  grafana.endpoint = "https://otlp-gateway-prod-eu-west-2.grafana.net";
  grafana.instance_id = "12345";
  grafana.timeout = milliseconds(0);
  grafana.max_in_flight = 2000;
  grafana.compression = "brotli";
  grafana.protocol = "grpc";
  grafana.name = std::string(300, 'n');
  grafana.headers = {{"Content-Length", "1"}};
  grafana.fields = {{"api_key", "glc_x"}};
  const std::vector<ValidationIssue> g = validate(grafana);
  EXPECT_EQ(code_of(g, "api_key"), "required");
  EXPECT_EQ(code_of(g, "timeout"), "out_of_range");
  EXPECT_EQ(code_of(g, "max_in_flight"), "out_of_range");
  EXPECT_EQ(code_of(g, "compression"), "invalid");
  EXPECT_EQ(code_of(g, "protocol"), "unsupported");
  EXPECT_EQ(code_of(g, "name"), "too_long");
  EXPECT_EQ(code_of(g, "headers"), "conflict");
  EXPECT_EQ(code_of(g, "fields.api_key"), "conflict");

  DestinationConfig otlp;
  otlp.endpoint = "ftp://collector";
  otlp.fields = {{"region", "us"}};
  const std::vector<ValidationIssue> o = validate(otlp);
  EXPECT_EQ(code_of(o, "endpoint"), "unsupported");
  EXPECT_EQ(code_of(o, "fields"), "unknown_field");

  DestinationConfig langfuse;
  langfuse.kind = DestinationKind::langfuse;
  langfuse.fields = {{"public_key", "pk-lf-1"}, {"public_key", "pk-lf-2"}, {"region", "mars"}};
  langfuse.compression = "zstd";
  const std::vector<ValidationIssue> lf = validate(langfuse);
  EXPECT_EQ(code_of(lf, "fields.secret_key"), "required");
  EXPECT_EQ(code_of(lf, "fields.public_key"), "duplicate");
  EXPECT_EQ(code_of(lf, "fields.region"), "invalid");
  EXPECT_EQ(code_of(lf, "compression"), "unsupported");

  DestinationConfig phoenix;
  phoenix.kind = DestinationKind::arize_phoenix;
  phoenix.protocol = "http/json";
  EXPECT_EQ(code_of(validate(phoenix), "endpoint"), "required");
  EXPECT_EQ(code_of(validate(phoenix), "protocol"), "unsupported");

  PipelineDestination d;
  d.sampling_rate = 0;
  d.max_request_bytes = 100;
  d.api_key_ids = {"k", "", "k", std::string(129, 'h')};
  d.resource_attributes = {{"a", "1"}, {"a", "2"}, {"b", std::string(4097, 'v')}};
  const std::vector<ValidationIssue> p = d.validate();
  EXPECT_EQ(code_of(p, "sampling_rate"), "out_of_range");
  EXPECT_EQ(code_of(p, "max_request_bytes"), "out_of_range");
  EXPECT_EQ(code_of(p, "api_key_ids[1]"), "required");
  EXPECT_EQ(code_of(p, "api_key_ids[2]"), "duplicate");
  EXPECT_EQ(code_of(p, "api_key_ids[3]"), "too_long");
  EXPECT_EQ(code_of(p, "resource_attributes[1].key"), "duplicate");
  EXPECT_EQ(code_of(p, "resource_attributes[2].value"), "too_long");
  d = PipelineDestination{};
  d.api_key_ids.assign(PipelineDestination::k_max_api_key_ids + 1, "k");
  EXPECT_EQ(code_of(d.validate(), "api_key_ids"), "too_long");
}

// A bound taken from another field names that field and its value.
TEST(SettingsValidation, ABoundFromAnotherFieldNamesIt) {
  PipelineConfig c;
  c.destination_budget_bytes = c.memory_budget_bytes + 1;
  EXPECT_EQ(c.validate(), "destination_budget_bytes: must be batch.max_bytes (4194304)..memory_budget_bytes (268435456), "
                          "got 268435457");
  SenderConfig s;
  s.retry.max_interval = milliseconds(1000);
  ASSERT_FALSE(validate(s).empty());
  EXPECT_EQ(validate(s).front().message, "must be retry.initial_interval (5000 ms)..600000 ms (10 min), got 1000 ms");
}

}  // namespace
}  // namespace tracecast
