// Tests for tracecast/gateway.h: the second November 2026 user review's low-severity kinds
// (empty SSE events, error-message limits, cut trace values, refusals, array content, stats).
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gateway_test_util.h"
#include "tracecast/gateway.h"

namespace tracecast {
namespace {

using test::stream;

const std::vector<std::size_t>& steps() {
  static const std::vector<std::size_t> v = {std::size_t{1} << 30, 64, 1};
  return v;
}

std::string chat_chunk(std::string_view delta, std::string_view finish = "null") {
  return "data: {\"id\":\"c1\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":" + std::string(delta) +
         ",\"finish_reason\":" + std::string(finish) + "}]}\n\n";
}

class GatewayReview2 : public ::testing::Test {
 protected:
  GatewayParser parser_;
  std::unique_ptr<GatewayRecord> rec_ = std::make_unique<GatewayRecord>();
  LlmRequest& req() { return rec_->request(); }
};

// --- D9: an SSE event with empty data is not dispatched ----------------------------------------

TEST_F(GatewayReview2, AnEmptyDataEventIsNotDispatchedNorFlagged) {
  const std::string a = chat_chunk(R"({"content":"A"})");
  const std::string b = chat_chunk(R"({})", "\"stop\"");
  for (const std::string empty : {"data:\n\n", "data: \n\n", "data\n\n", "data:\r\n\r\n", "data\r\rdata: \r\r",
                                  ": comment\ndata:\n\n", "event: x\ndata\n\n"}) {
    for (const std::string& sse : {a + empty + b + "data: [DONE]\n\n", a + b + "data: [DONE]\n\n" + empty,
                                   a + b + empty}) {
      for (const std::size_t step : steps()) {
        GatewayParser parser;
        std::uint32_t issues = 0;
        const auto rec = stream(parser, sse, step, &issues);
        EXPECT_EQ(issues, 0u) << step << " " << sse;
        EXPECT_EQ(rec->issues(), 0u) << step << " " << sse;
        EXPECT_EQ(rec->request().completion, "A") << step;
        EXPECT_EQ(rec->request().finish_reason, "stop") << step;
        EXPECT_EQ(parser.stats().stream_chunks, sse.find("[DONE]") != std::string::npos ? 3u : 2u) << step << sse;
        EXPECT_EQ(parser.stats().count(ParseIssue::stream_chunk_invalid), 0u);
      }
    }
  }
}

TEST_F(GatewayReview2, AWhitespaceOrMultiLineEmptyEventIsStillFlagged) {
  // Data that is not empty but not JSON either ("\n" from two empty data lines, a tab) is a
  // chunk that could not be read: flagged, as before.
  const std::string a = chat_chunk(R"({"content":"A"})", "\"stop\"");
  for (const std::string odd : {"data:\ndata:\n\n", "data: \t\n\n"}) {
    for (const std::size_t step : steps()) {
      std::uint32_t issues = 0;
      const auto rec = stream(parser_, a + odd, step, &issues);
      EXPECT_EQ(issues, issue_bit(ParseIssue::stream_chunk_invalid)) << step;
      EXPECT_EQ(rec->request().completion, "A");
    }
  }
}

}  // namespace
}  // namespace tracecast
