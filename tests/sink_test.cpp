// tracecast-sink: OTLP/HTTP JSON receiver behaviour seen from a client on 127.0.0.1, and
// its OTLP reader in-process.
#include <gtest/gtest.h>

#include <string>

#include "sink_process.h"

namespace tracecast::test {
namespace {

std::string example_trace() {
  const char* src = std::getenv("TRACECAST_SOURCE_DIR");
  std::string path = std::string(src != nullptr ? src : ".") + "/../shared/reference/otlp-examples/trace.json";
  std::string text = read_file(path);
  if (text.empty()) text = read_file("/work/shared/reference/otlp-examples/trace.json");
  return text;
}

TEST(SinkProcess, AcceptsOfficialExampleTraceAndCountsByService) {
  SinkProcess sink;
  const std::string body = example_trace();
  ASSERT_FALSE(body.empty());
  const HttpResponse r = post_json(sink.port(), body);
  EXPECT_EQ(r.status, 200) << r.body;
  const SinkStats s = sink.stats();
  EXPECT_EQ(s.requests, 1U);
  EXPECT_EQ(s.spans, 1U);
  EXPECT_EQ(s.by_service.at("my.service"), 1U);
  EXPECT_EQ(s.status(200), 1U);
}

}  // namespace
}  // namespace tracecast::test
