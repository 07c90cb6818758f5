// The canonical request of shared/WORKLOAD.md with fixed values, for tests that assert them.
// (tools/loadgen/llm_workload.h generates varied ones for benchmarks.)
#pragma once

#include "tracecast/llm_request.h"

namespace tracecast::test {

// Metadata: environment=production, trace_name="Analysis Pipeline". Views point at literals
// and at this object's own array: keep it alive while the request is used.
struct CanonicalRequest {
  MetadataEntry meta[2] = {{"environment", AttributeValue::string("production")},
                           {"trace_name", AttributeValue::string("Analysis Pipeline")}};
  LlmRequest r;

  CanonicalRequest() {
    r.account = "acct_1";
    r.request_id = "gen-1732650000-abcdefghij";
    r.operation = "chat";
    r.provider = "openai";
    r.requested_model = "openai/gpt-4o";
    r.response_model = "openai/gpt-4o-2024-08-06";
    r.input_tokens = 1200;
    r.output_tokens = 350;
    r.finish_reason = "stop";
    r.cost = 0.0042;
    r.user = "user_12345";
    r.session_id = "session_abc";
    r.metadata = meta;
    r.start_unix_nano = 1'700'000'000'000'000'000ULL;
    r.end_unix_nano = 1'700'000'001'500'000'000ULL;
  }
  CanonicalRequest(const CanonicalRequest&) = delete;
  CanonicalRequest& operator=(const CanonicalRequest&) = delete;
};

}  // namespace tracecast::test
