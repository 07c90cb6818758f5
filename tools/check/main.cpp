// tracecast-check: the connection test as a command line tool.
//
//   tracecast-check --kind grafana_cloud --endpoint https://otlp-gateway-prod-<region>.grafana.net
//                   --instance-id 123456 --api-key-file ~/.grafana-key
//   OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318 tracecast-check
//   tracecast-check --kind langfuse --field public_key=pk-lf-... --field-env secret_key=LANGFUSE_SECRET_KEY
//
// --kind takes every preset of the catalog (tracecast/presets.h); its fields come from
// --field NAME=VALUE (refused for secret fields), --field-env NAME=VAR or --field-file NAME=PATH.
//
// The API key comes from --api-key-file or $TRACECAST_API_KEY, never from the command line
// (it would show in `ps` and shell history); header values from --header-env NAME=VAR,
// --header-file PATH or OTEL_EXPORTER_OTLP_HEADERS (--header NAME=VALUE still works but warns
// that the value is visible to every local user). Nothing secret is ever printed.
// The egress policy is the library's default (public unicast addresses only); the operator's
// own collectors are allowed with --egress-allow or TRACECAST_EGRESS_ALLOW.
// Exit code: 0 the test passed; 1 it failed; 2 bad usage or invalid settings.
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "bounded_file.h"
#include "cli_flag.h"
#include "tracecast/connection_test.h"
#include "tracecast/destination.h"
#include "tracecast/egress.h"
#include "tracecast/pipeline.h"
#include "tracecast/presets.h"

namespace {

using tracecast::ConnectionTestResult;
using tracecast::DestinationConfig;
using tracecast::display_url;
using tracecast::DestinationKind;

constexpr int k_exit_ok = 0;
constexpr int k_exit_failed = 1;
constexpr int k_exit_usage = 2;

void usage(std::ostream& out) {
  out << "usage: tracecast-check [options]\n"
         "  --kind K              a preset: " << tracecast::preset_names() << "\n"
         "                        (default: otlp_http, or grafana_cloud when --instance-id is given)\n"
         "  --field NAME=VALUE    a field of the preset (e.g. region=eu, project=my-project; repeatable);\n"
         "                        secret fields (keys) are refused here: use --field-env or --field-file\n"
         "  --field-env NAME=VAR  a field from environment variable VAR (the way to pass a secret field)\n"
         "  --field-file NAME=PATH  a field from a file (trailing newline trimmed; keep it private)\n"
         "  --list-presets        print every preset with its fields, regions and defaults, then exit\n"
         "  --empty-test          send an empty OTLP payload with X-Test-Connection: true instead of one\n"
         "                        test span (nothing is stored)\n"
         "  --endpoint URL        grafana_cloud: OTLP gateway base URL; otel_collector: base URL;\n"
         "                        otlp_http: full traces URL; other presets: optional self-hosted base URL\n"
         "  --instance-id N       Grafana Cloud instance (stack) ID, numeric\n"
         "  --api-key-file PATH   file holding the API key (Grafana Cloud, or any preset with an api_key\n"
         "                        field; or set TRACECAST_API_KEY)\n"
         "  --header-env K=VAR    extra request header K with the value of environment variable VAR\n"
         "                        (repeatable; the way to pass a secret header)\n"
         "  --header-file PATH    extra request headers, one K=V per line (keep the file private)\n"
         "  --header K=V          extra request header (repeatable; the value shows in ps: warned)\n"
         "  --egress-allow LIST   comma-separated CIDRs, addresses or host names the egress policy\n"
         "                        allows besides public unicast addresses (also TRACECAST_EGRESS_ALLOW)\n"
         "  --compression C       none | gzip | zstd\n"
         "  --protocol P          http/json (default) | http/protobuf: the test trace's encoding\n"
         "  --timeout T           e.g. 5000, 5000ms, 5s, 2m: 1 ms to 10 minutes (default 10s)\n"
         "  --ca-file PATH        PEM bundle to trust; --ca-path DIR: hashed CA directory\n"
         "  --name NAME           label shown in messages\n"
         "  --insecure-skip-verify  TLS verification off (tests only)\n"
         "environment: OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, OTEL_EXPORTER_OTLP_[TRACES_]HEADERS,\n"
         "  OTEL_EXPORTER_OTLP_[TRACES_]COMPRESSION, OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT (whole ms),\n"
         "  OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL,\n"
         "  OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE, TRACECAST_API_KEY, TRACECAST_EGRESS_ALLOW,\n"
         "  TRACECAST_DESTINATION_KIND, TRACECAST_DESTINATION_FIELDS (name=value,...),\n"
         "  TRACECAST_EGRESS_ENFORCE, read as a gateway's config_from_env reads them (a value it\n"
         "  would refuse is refused here, even under a flag). Flags win.\n"
         "exit code: 0 success, 1 the test failed, 2 bad usage or invalid settings\n";
}

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

std::string trim(std::string s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return s.substr(first, last - first + 1);
}

// --timeout: "" and `out` set, or the one message every bad value gets (0, 11m and 700s
// alike: the library's own limit, destination.cpp's timeout row, 1 ms..10 minutes).
constexpr long long k_max_timeout_ms = 600'000;
std::string parse_timeout(const std::string& text, std::chrono::milliseconds& out) {
  const std::string range = "--timeout must be between 1 ms and 10 minutes, like 5000, 500ms, 5s or 2m (got '" +
                            text.substr(0, 32) + "')";
  if (text.empty() || !(std::isdigit(static_cast<unsigned char>(text[0])) != 0 || text[0] == '.')) return range;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str()) return range;
  const std::string unit(end);
  double ms = 0;
  if (unit.empty() || unit == "ms") {
    ms = v;
  } else if (unit == "s") {
    ms = v * 1000;
  } else if (unit == "m" || unit == "min") {
    ms = v * 60000;
  } else {
    return range;
  }
  if (!(ms >= 1) || ms > static_cast<double>(k_max_timeout_ms)) return range;
  out = std::chrono::milliseconds(static_cast<long long>(ms));
  return {};
}

// The kind from the preset catalog (historic aliases grafana, collector, otlp kept).
bool parse_kind(const std::string& text, DestinationKind& out) {
  const tracecast::PresetInfo* row = tracecast::find_preset(text);
  if (row == nullptr) return false;
  out = row->kind;
  return true;
}

// Everything printed goes through here: no secret of `config` survives.
std::string redact(std::string text, const DestinationConfig& config) {
  return tracecast::redact_secrets(std::move(text), config);
}

// A file given by `flag` (a key, header or field file), bounded: "" or the error to print,
// naming the flag and the path, never the content.
std::string read_flag_file(std::string_view flag, const std::string& path, std::string& out) {
  const std::string why = tracecast::tools::read_bounded_file(path, tracecast::tools::k_max_secret_file_bytes, out);
  if (why.empty()) return {};
  return "tracecast-check: " + std::string(flag) + " " + path + ": " + why;
}


// --list-presets: the catalog as the user reads it (every line comes from the rows).
void list_presets(std::ostream& out) {
  for (const tracecast::PresetInfo& row : tracecast::presets()) {
    out << row.name << " - " << row.display_name << " (" << row.doc_url << ")\n";
    if (!row.regions.empty()) {
      out << "  --field " << row.region_field << "= one of";
      for (const tracecast::PresetRegion& r : row.regions) {
        out << " " << r.name << (r.name == row.default_region ? " (default)" : "");
      }
      out << "\n";
    } else if (!row.path.empty() || row.custom_rules) {
      out << "  --endpoint required\n";
    }
    for (const tracecast::PresetField& f : row.fields) {
      if (f.name == row.region_field) continue;
      out << "  --field" << (f.secret ? "-env " : " ") << f.name << (f.secret ? "=VAR" : "=...")
          << (f.required ? "  (required)" : f.required_hosted ? "  (required without --endpoint)" : "") << "  "
          << f.doc << "\n";
    }
    out << "  protocol " << row.default_protocol << (row.protobuf_only ? " only" : "") << ", compression "
        << row.default_compression << ", convention " << row.default_convention;
    if (row.max_request_bytes != 0) out << ", at most " << row.max_request_bytes << " bytes per request";
    if (row.max_attribute_value_bytes != 0) out << ", attribute values at most " << row.max_attribute_value_bytes << " bytes";
    out << "\n";
  }
}

// The options that take a value; any other flag (but the valueless ones) is unknown.
bool is_value_option(std::string_view flag) {
  static constexpr std::string_view k_options[] = {
      "--kind",         "--endpoint",    "--instance-id", "--api-key-file", "--header",   "--header-env",
      "--header-file",  "--egress-allow", "--compression", "--protocol",     "--timeout",  "--ca-file",
      "--ca-path",      "--name",         "--field",       "--field-env",    "--field-file"};
  for (const std::string_view o : k_options) {
    if (flag == o) return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  DestinationConfig config;
  config.name = "destination";
  bool kind_given = false;
  std::string api_key_file;
  std::chrono::milliseconds timeout{10000};
  std::vector<std::pair<std::string, std::string>> flag_headers;
  tracecast::EgressPolicy egress;
  tracecast::EgressPolicy flag_egress;  // --egress-allow: replaces TRACECAST_EGRESS_ALLOW's lists
  bool egress_given = false;
  bool endpoint_given = false, compression_given = false, timeout_given = false, ca_given = false;
  bool protocol_given = false;
  bool empty_test = false;
  std::vector<std::string> argv_fields;  // fields given with --field (not allowed for secrets)

  const std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    // The next argument is the value, unless it is an option itself: no value of these flags
    // (names, kinds, URLs, paths, NAME=VALUE pairs, numbers) starts with "--", so
    // "--name --bogus" is a missing value, never the name "--bogus". "--name=--x" is explicit.
    auto value = [&](std::string& out) -> bool {
      const std::size_t eq = a.find('=');
      if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
        out = a.substr(eq + 1);
        return true;
      }
      if (i + 1 >= args.size() || args[i + 1].rfind("--", 0) == 0) return false;
      out = args[++i];
      return true;
    };
    const std::string flag = a.substr(0, a.find('='));
    std::string v;
    if (flag == "--help" || flag == "-h") {
      usage(std::cout);
      return k_exit_ok;
    } else if (flag == "--insecure-skip-verify" || flag == "--list-presets" || flag == "--empty-test") {
      // A boolean flag honours "=false" (it once turned verification OFF) and refuses any
      // other value than true/false/1/0.
      bool on = false;
      if (const std::string e = tracecast::tools::parse_bool_flag(tracecast::tools::split_cli_arg(a), on); !e.empty()) {
        std::cerr << "tracecast-check: " << e << "\n";
        return k_exit_usage;
      }
      if (flag == "--insecure-skip-verify") {
        config.insecure_skip_verify = on;
      } else if (flag == "--empty-test") {
        empty_test = on;
      } else if (on) {
        list_presets(std::cout);
        return k_exit_ok;
      }
    } else if (flag == "--api-key") {
      std::cerr << "tracecast-check: --api-key is not accepted (it would show in ps and shell history); "
                   "use --api-key-file PATH or TRACECAST_API_KEY\n";
      return k_exit_usage;
    } else if (!is_value_option(flag)) {
      std::cerr << "tracecast-check: unknown option " << flag << "\n";
      usage(std::cerr);
      return k_exit_usage;
    } else if (!value(v)) {
      std::cerr << "tracecast-check: " << flag << " needs a value";
      // The option that stands where the value should (its name only, never an "=value").
      if (i + 1 < args.size()) std::cerr << " (got the option " << args[i + 1].substr(0, args[i + 1].find('=')) << ")";
      std::cerr << "\n";
      usage(std::cerr);
      return k_exit_usage;
    } else if (flag == "--kind") {
      if (!parse_kind(v, config.kind)) {
        // The name is quoted when it is plain text (a kind is never a secret; control bytes are
        // not echoed to a terminal).
        const bool plain = v.size() <= 64 && std::all_of(v.begin(), v.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
        });
        std::cerr << "tracecast-check: unknown --kind" << (plain ? " '" + std::string(v) + "'" : std::string())
                  << " (known: " << tracecast::preset_names() << ")\n";
        return k_exit_usage;
      }
      kind_given = true;
    } else if (flag == "--endpoint") {
      config.endpoint = v;
      endpoint_given = true;
      if (display_url(v) != v.substr(0, v.find('#'))) {
        std::cerr << "tracecast-check: warning: --endpoint carries user info or a query string, visible to every "
                     "local user (ps, /proc); pass such a URL in OTEL_EXPORTER_OTLP_TRACES_ENDPOINT instead\n";
      }
    } else if (flag == "--instance-id") {
      config.instance_id = v;
    } else if (flag == "--field" || flag == "--field-env" || flag == "--field-file") {
      const std::size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0 || (flag != "--field" && eq + 1 == v.size())) {
        std::cerr << "tracecast-check: " << flag << " needs NAME="
                  << (flag == "--field" ? "VALUE" : flag == "--field-env" ? "ENVIRONMENT_VARIABLE" : "PATH") << "\n";
        return k_exit_usage;
      }
      const std::string name = v.substr(0, eq);
      std::string field_value = v.substr(eq + 1);
      if (flag == "--field-env") {
        field_value = trim(env(field_value.c_str()));
        if (field_value.empty()) {
          std::cerr << "tracecast-check: --field-env " << name << ": environment variable " << v.substr(eq + 1)
                    << " is not set or empty\n";
          return k_exit_usage;
        }
      } else if (flag == "--field-file") {
        std::string text;
        if (const std::string e = read_flag_file(flag, v.substr(eq + 1), text); !e.empty()) {
          std::cerr << e << "\n";
          return k_exit_usage;
        }
        field_value = trim(text);
      } else {
        argv_fields.push_back(name);
      }
      config.fields.emplace_back(name, std::move(field_value));
    } else if (flag == "--api-key-file") {
      api_key_file = v;
    } else if (flag == "--header") {
      const std::size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::cerr << "tracecast-check: --header needs NAME=VALUE\n";
        return k_exit_usage;
      }
      std::cerr << "tracecast-check: warning: --header " << tracecast::display_header_name(v.substr(0, eq))
                << "=...: the value is visible to every local user (ps, /proc) and in shell history; "
                   "pass secrets with --header-env or --header-file\n";
      flag_headers.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else if (flag == "--header-env") {
      const std::size_t eq = v.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == v.size()) {
        std::cerr << "tracecast-check: --header-env needs NAME=ENVIRONMENT_VARIABLE\n";
        return k_exit_usage;
      }
      const std::string env_value = env(v.substr(eq + 1).c_str());
      if (env_value.empty()) {
        std::cerr << "tracecast-check: --header-env " << tracecast::display_header_name(v.substr(0, eq))
                  << ": environment variable "
                  << v.substr(eq + 1) << " is not set or empty\n";
        return k_exit_usage;
      }
      flag_headers.emplace_back(v.substr(0, eq), env_value);
    } else if (flag == "--header-file") {
      std::string text;
      if (const std::string e = read_flag_file(flag, v, text); !e.empty()) {
        std::cerr << e << "\n";
        return k_exit_usage;
      }
      std::istringstream in(text);
      std::string line;
      std::size_t number = 0;
      while (std::getline(in, line)) {
        ++number;
        line = trim(line);
        if (line.empty() || line[0] == '#') continue;
        const std::size_t eq = line.find('=');
        if (eq == std::string::npos || eq == 0) {
          // The line is not shown: it may hold a credential.
          std::cerr << "tracecast-check: --header-file " << v << ": line " << number << " is not NAME=VALUE\n";
          return k_exit_usage;
        }
        flag_headers.emplace_back(trim(line.substr(0, eq)), trim(line.substr(eq + 1)));
      }
    } else if (flag == "--egress-allow") {
      // The library's parser, as for TRACECAST_EGRESS_ALLOW (repeatable: the lists add up).
      if (const std::string e = tracecast::parse_egress_allow(v, flag_egress); !e.empty()) {
        std::cerr << "tracecast-check: --egress-allow: " << e << "\n";
        return k_exit_usage;
      }
      egress_given = true;
    } else if (flag == "--compression") {
      config.compression = v;
      compression_given = true;
    } else if (flag == "--protocol") {
      config.protocol = v;
      protocol_given = true;
    } else if (flag == "--timeout") {
      if (const std::string e = parse_timeout(v, timeout); !e.empty()) {
        std::cerr << "tracecast-check: " << e << "\n";
        return k_exit_usage;
      }
      timeout_given = true;
    } else if (flag == "--ca-file") {
      config.ca_file = v;
      ca_given = true;
    } else if (flag == "--ca-path") {
      config.ca_path = v;
    } else if (flag == "--name") {
      config.name = v;
    } else {
      std::cerr << "tracecast-check: unknown option " << flag << "\n";
      usage(std::cerr);
      return k_exit_usage;
    }
  }
  if (!kind_given && !config.instance_id.empty()) config.kind = DestinationKind::grafana_cloud;

  // Environment (flags win), read by the library's own readers: a value is accepted or refused
  // here exactly as config_from_env() does at a gateway's start-up, with the same message.
  const tracecast::EnvDestination from_env = tracecast::destination_from_env();
  if (!from_env.ok()) {
    std::cerr << "tracecast-check: " << from_env.error << "\n";  // never quotes a header value
    return k_exit_usage;
  }
  if (!kind_given && from_env.kind != nullptr) config.kind = from_env.config.kind;
  if (from_env.fields != nullptr) {
    // TRACECAST_DESTINATION_FIELDS first: a --field* flag of the same name wins.
    std::vector<std::pair<std::string, std::string>> merged;
    for (const auto& f : from_env.config.fields) {
      bool overridden = false;
      for (const auto& g : config.fields) overridden = overridden || g.first == f.first;
      if (!overridden) merged.push_back(f);
    }
    for (auto& f : config.fields) merged.push_back(std::move(f));
    config.fields = std::move(merged);
  }
  const tracecast::PresetInfo& preset = tracecast::preset_info(config.kind);
  for (const std::string& name : argv_fields) {
    const tracecast::PresetField* f = tracecast::find_field(preset, name);
    if (f != nullptr && f->secret) {
      // The value is not shown: it is a credential.
      std::cerr << "tracecast-check: --field " << name << "=...: " << name << " is a secret of the "
                << preset.display_name << " preset and is not accepted on the command line (ps, shell history); "
                   "use --field-env " << name << "=VAR or --field-file " << name << "=PATH\n";
      return k_exit_usage;
    }
  }

  if (const std::string e = tracecast::egress_from_env(egress); !e.empty()) {
    std::cerr << "tracecast-check: " << e << "\n";
    return k_exit_usage;
  }
  if (egress_given) {
    egress.allow_cidrs = std::move(flag_egress.allow_cidrs);
    egress.allow_hosts = std::move(flag_egress.allow_hosts);
  }
  // Fields set from the environment, to name the variable when validate() objects.
  std::vector<std::string_view> env_fields;
  if (!endpoint_given && from_env.endpoint != nullptr) {
    // The generic variable is a base URL: a grafana_cloud gateway URL as is (resolve() adds
    // its path), otherwise plus /v1/traces (OTel exporter spec).
    config.endpoint = (config.kind == DestinationKind::grafana_cloud || !preset.custom_rules) &&
                              !from_env.endpoint_base.empty()
                          ? from_env.endpoint_base
                          : from_env.config.endpoint;
    env_fields.emplace_back("endpoint");
  }
  if (from_env.headers != nullptr) {
    for (const auto& h : from_env.config.headers) config.headers.push_back(h);
    env_fields.emplace_back("headers");
  }
  for (auto& h : flag_headers) config.headers.push_back(std::move(h));
  if (!compression_given && from_env.compression != nullptr) {
    config.compression = from_env.config.compression;
    env_fields.emplace_back("compression");
  }
  if (!protocol_given && from_env.protocol != nullptr) {
    config.protocol = from_env.config.protocol;
    env_fields.emplace_back("protocol");
  }
  if (!timeout_given && from_env.timeout != nullptr) {
    timeout = from_env.config.timeout;
    env_fields.emplace_back("timeout");
  }
  if (!ca_given && from_env.certificate != nullptr) {
    config.ca_file = from_env.config.ca_file;
    env_fields.emplace_back("ca_file");
  }
  config.timeout = timeout;

  if (!api_key_file.empty()) {
    std::string text;
    if (const std::string e = read_flag_file("--api-key-file", api_key_file, text); !e.empty()) {
      std::cerr << e << "\n";
      return k_exit_usage;
    }
    config.api_key = trim(text);
  } else {
    config.api_key = trim(env("TRACECAST_API_KEY"));
  }
  // The key is for presets with an API key (Grafana Cloud, Honeycomb, ...), never sent elsewhere.
  if (tracecast::find_field(preset, "api_key") == nullptr) config.api_key.clear();
  tracecast::apply_preset_defaults(config);  // e.g. http/protobuf for Arize Phoenix

  const std::string kind_text(tracecast::to_string(config.kind));
  const auto issues = tracecast::validate(config);
  for (const auto& issue : issues) {
    // A field set from the environment is named by its variable, as config_from_env() does.
    std::string field = issue.path;
    for (const std::string_view f : env_fields) {
      if (f == issue.path) field = from_env.variable_for(f);
    }
    std::cout << redact((issue.warning ? "warning: " : "error: ") + field + ": " + issue.message, config) << "\n";
  }
  if (tracecast::has_errors(issues)) {
    std::cout << "result: invalid_config\nhint: fix the settings above, then run tracecast-check again\n";
    return k_exit_usage;
  }
  const std::string url = tracecast::resolve(config).url;
  std::cout << redact("testing " + kind_text + " destination " + display_url(url), config) << "\n";

  const ConnectionTestResult result = tracecast::test_connection(
      config, timeout, egress,
      empty_test ? tracecast::ConnectionTestPayload::empty : tracecast::ConnectionTestPayload::one_span);
  std::cout << redact("result: " + std::string(tracecast::to_string(result.category)) +
                          (result.http_status != 0 ? " (HTTP " + std::to_string(result.http_status) + ")" : ""),
                      config)
            << "\n";
  std::cout << redact("message: " + result.message, config) << "\n";
  std::cout << redact("hint: " + result.hint, config) << "\n";
  return result.ok() ? k_exit_ok : k_exit_failed;
}
