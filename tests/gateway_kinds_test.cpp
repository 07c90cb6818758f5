// Tests for tracecast/gateway.h: the kinds of input issue 13 found failing, each as a kind (the
// issue's example and more members of it): JSON escapes that are not valid UTF-16, values a
// strict receiver rejects, several streamed choices, streamed tool calls.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "tracecast/gateway.h"
#include "tracecast/mapping.h"

namespace tracecast {
namespace {

const MetadataEntry* find_meta(const LlmRequest& r, std::string_view key) {
  for (const auto& e : r.metadata)
    if (e.key == key) return &e;
  return nullptr;
}

std::string_view meta_string(const LlmRequest& r, std::string_view key) {
  const MetadataEntry* e = find_meta(r, key);
  if (e == nullptr || e->value.type() != ValueType::string) return "<missing>";
  return e->value.as_string();
}

[[maybe_unused]] const Attribute* find_attr(const SpanView& s, std::string_view key) {
  for (const auto& a : s.attributes)
    if (a.key == key) return &a;
  return nullptr;
}

constexpr std::string_view k_fffd = "\xEF\xBF\xBD";

std::string r(std::string_view a, std::string_view b = {}, std::string_view c = {}) {
  std::string s(a);
  s += b;
  s += c;
  return s;
}

// Feeds sse one piece of `step` bytes at a time into a fresh record; returns the record.
std::unique_ptr<GatewayRecord> stream(GatewayParser& parser, std::string_view sse, std::size_t step,
                                      std::uint32_t* issues = nullptr) {
  auto rec = std::make_unique<GatewayRecord>();
  parser.begin_stream(*rec);
  std::uint32_t bits = 0;
  for (std::size_t i = 0; i < sse.size(); i += step) bits |= parser.feed_stream(sse.substr(i, step), 1 + i, *rec).issues;
  bits |= parser.finish_stream(*rec).issues;
  if (issues != nullptr) *issues = bits;
  return rec;
}

class GatewayKinds : public ::testing::Test {
 protected:
  GatewayParser parser_;
  std::unique_ptr<GatewayRecord> rec_ = std::make_unique<GatewayRecord>();
  LlmRequest& req() { return rec_->request(); }
};

// --- kind 1: escapes that are not valid UTF-16 ------------------------------------------------

TEST_F(GatewayKinds, IssueExampleLoneSurrogateKeepsTheTraceKeysAndTheTree) {
  const std::string body =
      R"({"model":"openai/gpt-4o","messages":[{"role":"user","content":"hi"}],"trace":{"note":"caf\ud800","trace_id":"grp_1","trace_name":"Pipeline","generation_name":"Gen"}})";
  const auto res = parser_.parse_request(body, {}, *rec_);
  EXPECT_EQ(res.issues, issue_bit(ParseIssue::invalid_escape)) << res.detail;
  EXPECT_EQ(meta_string(req(), "note"), r("caf", k_fffd));
  EXPECT_EQ(meta_string(req(), "trace_id"), "grp_1");
  EXPECT_EQ(meta_string(req(), "trace_name"), "Pipeline");
  EXPECT_EQ(meta_string(req(), "generation_name"), "Gen");
  EXPECT_EQ(meta_string(req(), "tracecast.parse_issues"), "invalid_escape");
  EXPECT_EQ(parser_.stats().count(ParseIssue::invalid_escape), 1u);

  req().account = "acct_1";
  MappingConfig config;
  IdGenerator ids(7);
  auto mapped = std::make_unique<MappedRequest>();
  map_request(req(), config, ids, *mapped);
  ASSERT_EQ(mapped->spans().size(), 2u);
  EXPECT_EQ(mapped->spans()[0].name, "Pipeline");
  EXPECT_EQ(mapped->spans()[1].name, "Gen");
  EXPECT_EQ(mapped->trace_id(), derive_trace_id("acct_1", "grp_1"));
}

TEST_F(GatewayKinds, EveryBadEscapeShapeBecomesTheReplacementCharacterInPlace) {
  struct Case {
    const char* escaped;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {R"(a\udc00b)", r("a", k_fffd, "b")},                                  // lone low
      {R"(\ude00\ud83d)", r(k_fffd, k_fffd)},                               // reversed pair
      {R"(x\ud83d)", r("x", k_fffd)},                                        // high at the end
      {R"(\ud800\u0041)", r(k_fffd, "A")},                                   // high + not a low
      {R"(\ud800\ud800\udc00)", r(k_fffd, "\xF0\x90\x80\x80")},              // high, then a pair
      {R"(s\u12x)", r("s", k_fffd, "x")},                                    // short \u
      {R"(s\u1)", r("s", k_fffd)},                                           // short \u at the end
      {R"(s\uZ)", r("s", k_fffd, "Z")},                                      // \u, no digits
      {R"(s\qz)", r("s", k_fffd, "z")},                                      // unknown letter
      {R"(ok \ud83d\ude80 \u00e9 \n)", "ok \xF0\x9F\x9A\x80 \xC3\xA9 \n"},   // valid: untouched
  };
  for (const Case& c : cases) {
    const std::string body = std::string(R"({"model":"m/x","user":")") + c.escaped +
                             R"(","session_id":"s1","trace":{"k":"v"}})";
    auto rec = std::make_unique<GatewayRecord>();
    const auto res = parser_.parse_request(body, {}, *rec);
    EXPECT_EQ(rec->request().user, c.expected) << c.escaped;
    EXPECT_EQ(rec->request().session_id, "s1") << c.escaped;  // the rest read as usual
    EXPECT_EQ(meta_string(rec->request(), "k"), "v") << c.escaped;
    const bool valid = c.expected.find(k_fffd) == std::string::npos;
    EXPECT_EQ(res.issues, valid ? 0u : issue_bit(ParseIssue::invalid_escape)) << c.escaped;
  }
}

TEST_F(GatewayKinds, BadEscapesInMetadataKeysNestedValuesAndMessagesAreRepaired) {
  const std::string body =
      R"({"model":"m/x","messages":[{"role":"user","content":"q\udfff?"}],)"
      R"("trace":{"k\ud800ey":"v","nested":{"a":"\udc01","b":[1,"\u12"]},"trace_id":"t1"}})";
  const auto res = parser_.parse_request(body, {}, *rec_);
  EXPECT_EQ(res.issues, issue_bit(ParseIssue::invalid_escape));
  EXPECT_EQ(meta_string(req(), r("k", k_fffd, "ey")), "v");
  // Nested values stay JSON text that decodes without lone surrogates.
  EXPECT_EQ(meta_string(req(), "nested"), r(R"({"a":"\ufffd","b":[1,")", k_fffd, "\"]}"));
  EXPECT_EQ(meta_string(req(), "trace_id"), "t1");
  EXPECT_EQ(req().prompt, R"([{"role":"user","content":"q\ufffd?"}])");
  // The caller's body is never written to.
  EXPECT_NE(body.find(R"(q\udfff?)"), std::string::npos);
}

TEST_F(GatewayKinds, BadEscapesInResponsesStreamsAndErrorBodiesAreRepaired) {
  const auto res = parser_.parse_response(
      R"({"id":"gen\ud800-1","model":"m","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"h\udc00i"}}],"usage":{"prompt_tokens":3,"completion_tokens":2}})",
      *rec_);
  EXPECT_EQ(res.issues, issue_bit(ParseIssue::invalid_escape));
  EXPECT_EQ(req().response_id, r("gen", k_fffd, "-1"));
  EXPECT_EQ(req().completion, r("h", k_fffd, "i"));
  EXPECT_EQ(req().finish_reason, "stop");
  EXPECT_EQ(req().output_tokens, 2);

  const std::string sse =
      "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\\ud83d\"}}]}\n\n"
      "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\ude80b\"}}]}\n\n"
      "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" \\ud83d\\ude80\"},\"finish_reason\":\"stop\"}]}\n\n"
      "data: [DONE]\n\n";
  for (std::size_t step : {sse.size(), std::size_t{1}, std::size_t{5}}) {
    std::uint32_t issues = 0;
    auto rec = stream(parser_, sse, step, &issues);
    // A surrogate pair split across two chunks is two lone surrogates: each chunk is its own JSON.
    EXPECT_EQ(rec->request().completion, r("a", k_fffd, r(k_fffd, "b \xF0\x9F\x9A\x80"))) << step;
    EXPECT_EQ(issues, issue_bit(ParseIssue::invalid_escape)) << step;
    EXPECT_EQ(rec->request().finish_reason, "stop");
  }

  const auto out = parser_.set_outcome(400, R"({"error":{"message":"bad \ud800 input","code":400}})", *rec_);
  EXPECT_EQ(out.issues, issue_bit(ParseIssue::invalid_escape));
  EXPECT_EQ(req().error_message, r("bad ", k_fffd, " input"));
}

}  // namespace
}  // namespace tracecast
