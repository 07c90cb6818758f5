// tracecast-load as a user runs it: --count and --duration stop where they say, and the
// bundled sink it starts dies with it, even when tracecast-load is SIGKILLed, leaving no
// temporary directory behind. Runs the real binaries ($TRACECAST_LOAD_BIN,
// $TRACECAST_SINK_BIN).
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

using steady = std::chrono::steady_clock;

std::string env_or_skip(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

// A scratch directory used as the child's TMPDIR; removed (if empty) by the destructor.
struct ScratchDir {
  std::string path;
  ScratchDir() {
    std::string templ = "/tmp/tracecast-load-test-XXXXXX";
    if (::mkdtemp(templ.data()) != nullptr) path = templ;
  }
  ~ScratchDir() {
    if (!path.empty()) (void)::rmdir(path.c_str());
  }
  [[nodiscard]] std::vector<std::string> entries() const {
    std::vector<std::string> out;
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return out;
    while (const dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") out.push_back(name);
    }
    ::closedir(d);
    return out;
  }
};

// Spawns `args` with TMPDIR=tmpdir, stdout to `out_file` (or /dev/null), stderr to
// `err_file` (or /dev/null).
pid_t spawn(const std::vector<std::string>& args, const std::string& tmpdir, const std::string& out_file,
            const std::string& err_file = "") {
  std::vector<std::string> env_strings = {"TMPDIR=" + tmpdir};
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string(*e).rfind("TMPDIR=", 0) != 0) env_strings.emplace_back(*e);
  }
  std::vector<char*> envp;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_strings = args;
  std::vector<char*> argv;
  for (std::string& s : argv_strings) argv.push_back(s.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_file.empty() ? "/dev/null" : out_file.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_file.empty() ? "/dev/null" : err_file.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// Waits for `pid` up to `timeout`; its wait status, or -1 on timeout (the process is then
// killed and reaped, so no test leaves a process behind).
int wait_for(pid_t pid, std::chrono::seconds timeout) {
  const auto deadline = steady::now() + timeout;
  int status = 0;
  while (steady::now() < deadline) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return -2;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  (void)::waitpid(pid, &status, 0);
  return -1;
}

// The children of `parent`, from /proc/<pid>/stat (field 4 is the parent pid).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (const dirent* e = ::readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    std::ifstream in("/proc/" + std::string(e->d_name) + "/stat");
    std::string line;
    if (!std::getline(in, line)) continue;
    const std::size_t close = line.rfind(')');  // the command name may hold blanks
    if (close == std::string::npos) continue;
    char state = 0;
    long ppid = 0;
    if (std::sscanf(line.c_str() + close + 1, " %c %ld", &state, &ppid) == 2 && ppid == parent) {
      out.push_back(static_cast<pid_t>(pid));
    }
  }
  ::closedir(d);
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

struct LoadRun {
  int status = -1;
  std::string json;
  std::string err;  // stderr
};

LoadRun run_load(const std::vector<std::string>& flags) {
  LoadRun run;
  const std::string bin = env_or_skip("TRACECAST_LOAD_BIN");
  ScratchDir tmp;
  const std::string out = tmp.path + "/out.json";
  const std::string err = tmp.path + "/err.txt";
  std::vector<std::string> args = {bin, "--json", "--quiet", "--single", "--accounts", "10"};
  args.insert(args.end(), flags.begin(), flags.end());
  const pid_t pid = spawn(args, tmp.path, out, err);
  if (pid < 0) return run;
  run.status = wait_for(pid, std::chrono::seconds(120));
  run.json = read_file(out);
  run.err = read_file(err);
  (void)::unlink(out.c_str());
  (void)::unlink(err.c_str());
  return run;
}

// The first "key":<digits> in `json`; all ones when absent.
std::uint64_t json_u64(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  const std::size_t at = json.find(needle);
  if (at == std::string::npos) return ~std::uint64_t{0};
  const std::size_t from = at + needle.size();
  const std::size_t to = json.find_first_not_of("0123456789", from);
  if (to == from) return ~std::uint64_t{0};
  return std::stoull(json.substr(from, to - from));
}

class LoadProcess : public ::testing::Test {
 protected:
  void SetUp() override {
    if (env_or_skip("TRACECAST_LOAD_BIN").empty() || env_or_skip("TRACECAST_SINK_BIN").empty()) {
      GTEST_SKIP() << "TRACECAST_LOAD_BIN / TRACECAST_SINK_BIN not set (ctest sets them)";
    }
  }
};

TEST_F(LoadProcess, CountOneMakesExactlyOneRequest) {
  const LoadRun run = run_load({"--count", "1"});
  ASSERT_TRUE(WIFEXITED(run.status)) << run.status;
  EXPECT_EQ(WEXITSTATUS(run.status), 0) << run.json;
  EXPECT_EQ(json_u64(run.json, "attempted"), 1u) << run.json;
  EXPECT_EQ(json_u64(run.json, "accepted"), 1u) << run.json;
}

TEST_F(LoadProcess, ACountBelowTheThreadCountIsExactFlatOut) {
  const LoadRun run = run_load({"--count", "3", "--threads", "8", "--rate", "0"});
  ASSERT_TRUE(WIFEXITED(run.status)) << run.status;
  EXPECT_EQ(WEXITSTATUS(run.status), 0) << run.json;
  EXPECT_EQ(json_u64(run.json, "attempted"), 3u) << run.json;
}

TEST_F(LoadProcess, ACountReachedBeforeTheDurationStopsTheRun) {
  // 200 requests at 1000/s take ~0.2 s; the 60 s duration must not hold the run.
  const auto t0 = steady::now();
  const LoadRun run = run_load({"--count", "200", "--rate", "1000", "--duration", "60s"});
  ASSERT_TRUE(WIFEXITED(run.status)) << run.status;
  EXPECT_EQ(WEXITSTATUS(run.status), 0) << run.json;
  EXPECT_EQ(json_u64(run.json, "attempted"), 200u) << run.json;
  // Not a timing assertion: a run that waited for its duration would still be running.
  EXPECT_LT(steady::now() - t0, std::chrono::seconds(55));
}

TEST_F(LoadProcess, ADurationReachedBeforeTheCountStopsTheRun) {
  const LoadRun run = run_load({"--count", "100M", "--rate", "200", "--duration", "1s"});
  ASSERT_TRUE(WIFEXITED(run.status)) << run.status;
  EXPECT_EQ(WEXITSTATUS(run.status), 0) << run.json;
  const std::uint64_t attempted = json_u64(run.json, "attempted");
  EXPECT_GT(attempted, 0u) << run.json;
  EXPECT_LT(attempted, 100'000'000u) << run.json;
}

TEST_F(LoadProcess, NumericFlagsRefuseOverflowingValuesNamingTheFlag) {
  // 18446744073709552k wraps to 384 in 64 bits; it used to run 384 requests with exit 0.
  const std::vector<std::vector<std::string>> cases = {
      {"--count", "18446744073709552k"},
      {"--count", "99999999999999999999"},
      {"--threads", "18446744073709552k"},
      {"--batch-spans", "18446744073709552k"},
      {"--duration", "1e400s"},
      {"--rate", "1e400"},
  };
  for (const auto& flags : cases) {
    const LoadRun run = run_load(flags);
    ASSERT_TRUE(WIFEXITED(run.status)) << flags[0] << " " << flags[1] << ": " << run.status;
    EXPECT_EQ(WEXITSTATUS(run.status), 2) << flags[0] << " " << flags[1] << ": " << run.json << run.err;
    EXPECT_NE(run.err.find(flags[0] + ": " + flags[1] + " is out of range"), std::string::npos)
        << flags[0] << " " << flags[1] << ": " << run.err;
    EXPECT_EQ(json_u64(run.json, "attempted"), ~std::uint64_t{0}) << "it ran: " << run.json;
  }
}

TEST_F(LoadProcess, ConventionsFlagSetsEveryDestinationAndRefusesAnUnknownName) {
  const LoadRun ok = run_load({"--count", "20", "--rate", "0", "--content", "--conventions",
                               "openrouter,genai,openinference,langfuse,langsmith"});
  ASSERT_TRUE(WIFEXITED(ok.status)) << ok.status;
  EXPECT_EQ(WEXITSTATUS(ok.status), 0) << ok.json << ok.err;
  EXPECT_EQ(json_u64(ok.json, "attempted"), 20u) << ok.json;
  const LoadRun bad = run_load({"--count", "1", "--conventions", "genai,phoenix"});
  ASSERT_TRUE(WIFEXITED(bad.status)) << bad.status;
  EXPECT_EQ(WEXITSTATUS(bad.status), 2) << bad.err;
  EXPECT_NE(bad.err.find("--conventions"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("'phoenix'"), std::string::npos) << bad.err;
  EXPECT_EQ(json_u64(bad.json, "attempted"), ~std::uint64_t{0}) << "it ran: " << bad.json;
}

// A loopback port nobody listens on: bound (ephemeral), then closed.
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

TEST_F(LoadProcess, AnEndpointThatRefusesConnectionsFailsTheRunWithTheReason) {
  // Allowed by the egress policy, but nothing listens: every span is lost (network errors
  // retried until the drain deadline). That is a failed run, not exit 0.
  const int port = closed_port();
  ASSERT_GT(port, 0);
  const LoadRun run = run_load({"--count", "20", "--rate", "0", "--endpoint",
                                "http://127.0.0.1:" + std::to_string(port) + "/v1/traces", "--egress-allow",
                                "127.0.0.1", "--retry-initial-ms", "50", "--drain-timeout", "1s"});
  ASSERT_TRUE(WIFEXITED(run.status)) << run.status;
  EXPECT_EQ(WEXITSTATUS(run.status), 1) << run.json << run.err;
  EXPECT_EQ(json_u64(run.json, "delivered"), 0u) << run.json;
  EXPECT_NE(run.json.find("never reached the endpoint (dropped: "), std::string::npos) << run.json;
  EXPECT_NE(run.json.find("\"delivery_check\":\"FAILED\""), std::string::npos) << run.json;
}

TEST_F(LoadProcess, AnEndpointTheEgressPolicyBlocksFailsTheRunSayingSo) {
  // No --egress-allow: the default policy refuses loopback, so nothing is ever sent.
  const LoadRun run = run_load({"--count", "200", "--rate", "0", "--endpoint", "http://127.0.0.1:9/v1/traces"});
  ASSERT_TRUE(WIFEXITED(run.status)) << run.status;
  EXPECT_EQ(WEXITSTATUS(run.status), 1) << run.json << run.err;
  EXPECT_EQ(json_u64(run.json, "delivered"), 0u) << run.json;
  EXPECT_NE(run.json.find("spans never reached the endpoint (dropped: blocked "), std::string::npos) << run.json;
  EXPECT_NE(run.json.find("--egress-allow"), std::string::npos) << run.json;
}

TEST_F(LoadProcess, AConfigWhoseDestinationsNoRequestReachesFailsTheRun) {
  // A destination for an account the simulator never makes: every request is unrouted. A run
  // that reached nothing is a failed run, not "all checks passed".
  ScratchDir tmp;
  const std::string config = tmp.path + "/config.json";
  {
    std::ofstream out(config);
    out << R"({"destinations": [{"account": "customer-42", "kind": "otlp_http", "endpoint": "http://127.0.0.1:9/v1/traces"}]})";
  }
  const LoadRun run = run_load({"--count", "50", "--rate", "0", "--config", config, "--egress-allow", "127.0.0.1"});
  ASSERT_TRUE(WIFEXITED(run.status)) << run.status;
  EXPECT_EQ(WEXITSTATUS(run.status), 1) << run.json << run.err;
  EXPECT_NE(run.json.find("reached nothing: none of 50 requests was routed"), std::string::npos) << run.json;
  // A destination flag beside the config's destinations replaces them, and says so.
  const LoadRun flagged = run_load({"--count", "1", "--config", config, "--endpoint", "http://127.0.0.1:9/v1/traces"});
  EXPECT_NE(flagged.err.find("replaces the 1 destination(s) of --config"), std::string::npos) << flagged.err;
  (void)::unlink(config.c_str());
}

// What a --config destination says (its allow-list, its limits, its conventions) stays
// unless a flag says otherwise, and the report shows what routing filtered.
TEST_F(LoadProcess, ConfigDestinationsKeepTheirOwnRoutingWhenNoFlagOverridesIt) {
  ScratchDir tmp;
  const std::string config = tmp.path + "/config.json";
  {
    std::ofstream out(config);
    out << R"({"destinations": [{"account": "", "kind": "otlp_http", "endpoint": "http://127.0.0.1:9/v1/traces",
                                 "api_key_ids": ["key_0"], "enabled": true}]})";
  }
  // The generated requests carry key_0..key_7: 7 of 8 are filtered by the config's allow-list.
  const LoadRun run = run_load({"--count", "80", "--rate", "0", "--config", config, "--drain-timeout", "1s"});
  (void)::unlink(config.c_str());
  ASSERT_TRUE(WIFEXITED(run.status)) << run.status;
  const std::uint64_t filtered = json_u64(run.json, "filtered");
  ASSERT_NE(filtered, ~std::uint64_t{0}) << run.json;
  EXPECT_GT(filtered, 0u) << run.json;
  EXPECT_GT(json_u64(run.json, "submitted"), 0u) << run.json;
  EXPECT_LT(json_u64(run.json, "submitted"), filtered) << run.json;
}

TEST_F(LoadProcess, ARunThatDeliveredNothingFailsUnlessEverySpanWasSampledOut) {
  // Every request answered 400 by the bundled sink: the no-loss check does not apply (faults
  // injected), but a run that delivered nothing is still a failed run.
  const LoadRun faulted =
      run_load({"--count", "50", "--rate", "0", "--sink-args", "--fail-status 400 --fail-5xx-first 100000"});
  ASSERT_TRUE(WIFEXITED(faulted.status)) << faulted.status;
  EXPECT_EQ(WEXITSTATUS(faulted.status), 1) << faulted.json << faulted.err;
  EXPECT_NE(faulted.json.find("nothing delivered: "), std::string::npos) << faulted.json;
  // Sampled out to the last span: nothing was meant to be sent, and the report says so.
  const LoadRun sampled = run_load({"--count", "20", "--rate", "0", "--sampling", "0.0001"});
  ASSERT_TRUE(WIFEXITED(sampled.status)) << sampled.status;
  if (json_u64(sampled.json, "delivered") == 0) {
    EXPECT_EQ(WEXITSTATUS(sampled.status), 0) << sampled.json << sampled.err;
    EXPECT_NE(sampled.json.find("was sampled out"), std::string::npos) << sampled.json;
  }
}

TEST_F(LoadProcess, DisabledConfigDestinationsAreNamedAsTheReasonNothingWasReached) {
  ScratchDir tmp;
  const std::string config = tmp.path + "/config.json";
  {
    std::ofstream out(config);
    out << R"({"destinations": [{"account": "", "kind": "otlp_http", "endpoint": "http://127.0.0.1:9/v1/traces",
                                 "enabled": false}]})";
  }
  const LoadRun run = run_load({"--count", "20", "--rate", "0", "--config", config, "--egress-allow", "127.0.0.1"});
  (void)::unlink(config.c_str());
  ASSERT_TRUE(WIFEXITED(run.status)) << run.status;
  EXPECT_EQ(WEXITSTATUS(run.status), 1) << run.json << run.err;
  EXPECT_NE(run.json.find("spans filtered: every destination that took them is disabled"), std::string::npos) << run.json;
  EXPECT_EQ(run.json.find("account must be"), std::string::npos) << run.json;
}

// Flags that would be ignored without a word are refused: fields without --kind (a secret on
// argv among them), and --sink-args when no bundled sink is started.
TEST_F(LoadProcess, RefusesFieldsWithoutAKindSecretsOnArgvAndSinkArgsWithoutTheBundledSink) {
  const LoadRun secret = run_load({"--count", "1", "--field", "api_key=SECRET_X1"});
  ASSERT_TRUE(WIFEXITED(secret.status)) << secret.status;
  EXPECT_EQ(WEXITSTATUS(secret.status), 2) << secret.err;
  EXPECT_NE(secret.err.find("--field api_key=...: a secret-looking field is not accepted"), std::string::npos) << secret.err;
  EXPECT_EQ(secret.err.find("SECRET_X1"), std::string::npos) << secret.err;
  const LoadRun secret_kind = run_load({"--count", "1", "--kind", "otel_collector", "--field", "auth_token=SECRET_X2"});
  EXPECT_EQ(WEXITSTATUS(secret_kind.status), 2) << secret_kind.err;
  EXPECT_EQ(secret_kind.err.find("SECRET_X2"), std::string::npos) << secret_kind.err;
  const LoadRun no_kind = run_load({"--count", "1", "--field", "region=eu"});
  EXPECT_EQ(WEXITSTATUS(no_kind.status), 2) << no_kind.err;
  EXPECT_NE(no_kind.err.find("give --kind too"), std::string::npos) << no_kind.err;
  const LoadRun sink_args =
      run_load({"--count", "1", "--endpoint", "http://127.0.0.1:9/v1/traces", "--sink-args", "--fail-429 5"});
  EXPECT_EQ(WEXITSTATUS(sink_args.status), 2) << sink_args.err;
  EXPECT_NE(sink_args.err.find("--sink-args: the faults only apply to the bundled sink"), std::string::npos)
      << sink_args.err;
}

// Unnamed --config destinations are told apart in the report by their place and host.
TEST_F(LoadProcess, UnnamedConfigDestinationsAreShownByIndexAndHost) {
  ScratchDir tmp;
  const std::string config = tmp.path + "/config.json";
  {
    std::ofstream out(config);
    out << R"({"destinations": [{"account": "", "kind": "otlp_http", "endpoint": "http://127.0.0.1:9/v1/traces"},
                                {"account": "", "kind": "otlp_http", "endpoint": "http://127.0.0.1:7/v1/traces"}]})";
  }
  const LoadRun run = run_load({"--count", "10", "--rate", "0", "--config", config, "--egress-allow", "127.0.0.1",
                                "--drain-timeout", "1s"});
  (void)::unlink(config.c_str());
  ASSERT_TRUE(WIFEXITED(run.status)) << run.status;
  EXPECT_NE(run.json.find("\"name\":\"destination #1 (127.0.0.1:9)\""), std::string::npos) << run.json;
  EXPECT_NE(run.json.find("\"name\":\"destination #2 (127.0.0.1:7)\""), std::string::npos) << run.json;
}

TEST_F(LoadProcess, TheBundledSinkRunStillPassesWithItsOwnChecks) {
  const LoadRun run = run_load({"--count", "200", "--rate", "0"});
  ASSERT_TRUE(WIFEXITED(run.status)) << run.status;
  EXPECT_EQ(WEXITSTATUS(run.status), 0) << run.json << run.err;
  EXPECT_NE(run.json.find("\"delivery_check\":\"not applicable"), std::string::npos) << run.json;
}

TEST_F(LoadProcess, TheLingerFlagsBehaveAsTheHelpSays) {
  {
    // Both given, out of order: an error naming both flags.
    const LoadRun run = run_load({"--count", "1", "--linger-ms", "300", "--max-linger-ms", "100"});
    ASSERT_TRUE(WIFEXITED(run.status)) << run.status;
    EXPECT_EQ(WEXITSTATUS(run.status), 2) << run.json << run.err;
    EXPECT_NE(run.err.find("--max-linger-ms 100 is below --linger-ms 300"), std::string::npos) << run.err;
  }
  {
    // --linger-ms alone above the default maximum (5000): the maximum is raised to it.
    const LoadRun run = run_load({"--count", "1", "--linger-ms", "6000"});
    ASSERT_TRUE(WIFEXITED(run.status)) << run.status;
    EXPECT_EQ(WEXITSTATUS(run.status), 0) << run.json << run.err;
    EXPECT_EQ(json_u64(run.json, "linger_ms"), 6000u) << run.json;
    EXPECT_EQ(json_u64(run.json, "max_linger_ms"), 6000u) << run.json;
  }
  {
    // --max-linger-ms alone below the default minimum (200): the minimum is lowered to it.
    const LoadRun run = run_load({"--count", "1", "--max-linger-ms", "100"});
    ASSERT_TRUE(WIFEXITED(run.status)) << run.status;
    EXPECT_EQ(WEXITSTATUS(run.status), 0) << run.json << run.err;
    EXPECT_EQ(json_u64(run.json, "linger_ms"), 100u) << run.json;
    EXPECT_EQ(json_u64(run.json, "max_linger_ms"), 100u) << run.json;
  }
}

TEST_F(LoadProcess, HelpNamesBothProtocolsAndTheEgressVariables) {
  const LoadRun run = run_load({"--help"});
  ASSERT_TRUE(WIFEXITED(run.status)) << run.status;
  EXPECT_EQ(WEXITSTATUS(run.status), 0);
  for (const char* s : {"http/protobuf", "_PROTOCOL", "TRACECAST_EGRESS_ALLOW", "TRACECAST_EGRESS_ENFORCE"}) {
    EXPECT_NE(run.json.find(s), std::string::npos) << s;
  }
  EXPECT_EQ(run.json.find("over OTLP/HTTP JSON"), std::string::npos);
}

TEST_F(LoadProcess, TheSinkDiesWithTracecastLoadEvenOnSigkillAndLeavesNoTempDir) {
  // Orphans are re-parented to us rather than to init, so the sink can be waited for.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  ScratchDir tmp;
  ASSERT_FALSE(tmp.path.empty());
  const pid_t load = spawn({env_or_skip("TRACECAST_LOAD_BIN"), "--duration", "120s", "--rate", "50", "--single",
                            "--accounts", "1", "--quiet"},
                           tmp.path, "");
  ASSERT_GT(load, 0);
  // Wait for the sink to run and listen: tracecast-load removes the sink's temp dir from
  // TMPDIR once the sink has written its port.
  pid_t sink = -1;
  const auto deadline = steady::now() + std::chrono::seconds(60);
  while (steady::now() < deadline) {
    const std::vector<pid_t> kids = children_of(load);
    if (kids.size() == 1 && tmp.entries().empty()) {
      sink = kids[0];
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GT(sink, 0) << "tracecast-load never started its sink";
  // Running now: the load must keep going for its 120 s, so it is still there.
  ASSERT_EQ(::kill(load, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(load, &status, 0), load);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  // The kernel sends the sink SIGTERM (PR_SET_PDEATHSIG): it stops as on Ctrl-C, exit 0.
  const int sink_status = wait_for(sink, std::chrono::seconds(60));
  ASSERT_GE(sink_status, 0) << "the sink outlived tracecast-load by 60 s";
  EXPECT_TRUE(WIFEXITED(sink_status)) << sink_status;
  EXPECT_EQ(WEXITSTATUS(sink_status), 0);
  EXPECT_TRUE(tmp.entries().empty()) << "left in TMPDIR: " << tmp.entries().front();
  (void)::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST_F(LoadProcess, TheSinkLeavesAtOnceWhenItsParentIsAlreadyGone) {
  // --parent-pid names a process that is not its parent (as when the parent died before
  // the sink could ask for PR_SET_PDEATHSIG): it exits 0 without listening.
  ScratchDir tmp;
  const pid_t sink = spawn({env_or_skip("TRACECAST_SINK_BIN"), "--listen", "127.0.0.1:0", "--port-file",
                            tmp.path + "/port", "--parent-pid", "1"},
                           tmp.path, "");
  ASSERT_GT(sink, 0);
  const int status = wait_for(sink, std::chrono::seconds(60));
  ASSERT_GE(status, 0) << "the sink kept running";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(tmp.entries().empty()) << "it wrote a port file: it listened";
}

}  // namespace
