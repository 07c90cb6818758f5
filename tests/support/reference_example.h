// The reference example (shared/reference/grafana-cloud-broadcast.md) as an LlmRequest: its
// request body and a chat response parsed by the gateway parser, with the fixed account,
// request id and times every golden file of it was made with. One definition for every suite
// that compares the reference example with a golden file.
#pragma once

#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "golden_util.h"
#include "tracecast/gateway.h"

namespace tracecast::test {

class ReferenceExample {
 public:
  ReferenceExample()
      : request_body_(read_file(source_path("tests/data/gateway/reference_example_request.json"))),
        response_body_(read_file(source_path("tests/data/gateway/chat_response.json"))),
        rec_(std::make_unique<GatewayRecord>()) {
    EXPECT_TRUE(parser_.parse_request(request_body_, {}, *rec_).ok());
    EXPECT_TRUE(parser_.parse_response(response_body_, *rec_).ok());
    EXPECT_TRUE(parser_.set_outcome(200, {}, *rec_).ok());
    rec_->request().account = "acct_1";
    rec_->request().request_id = "gen-1732650000-abcdefghij";
    rec_->request().start_unix_nano = 1732650000000000000ull;
    rec_->request().end_unix_nano = 1732650001500000000ull;
  }
  ReferenceExample(const ReferenceExample&) = delete;
  ReferenceExample& operator=(const ReferenceExample&) = delete;

  // Views into this object's bodies and record: valid while it lives.
  [[nodiscard]] const LlmRequest& request() const { return rec_->request(); }

 private:
  std::string request_body_;
  std::string response_body_;
  GatewayParser parser_;
  std::unique_ptr<GatewayRecord> rec_;
};

}  // namespace tracecast::test
