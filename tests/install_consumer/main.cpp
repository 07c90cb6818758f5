// Embeds tracecast the way README shows: a pipeline, one destination, one request, stats.
#include <tracecast/pipeline.h>

#include <chrono>
#include <cstdio>

int main() {
  tracecast::PipelineConfig config;
  config.ingest.ring_bytes = 4u << 20;
  tracecast::Pipeline pipeline(config);
  tracecast::LlmRequest r;
  r.account = "acct";
  r.requested_model = "openai/gpt-4o";
  if (pipeline.submit(r) != tracecast::submit_result::ok) return 1;
  const auto done = pipeline.shutdown(std::chrono::steady_clock::now() + std::chrono::seconds(2));
  // No destination: the request is counted as unrouted, never lost.
  std::printf("accepted=%llu unrouted=%llu\n", static_cast<unsigned long long>(done.stats.ingest.accepted),
              static_cast<unsigned long long>(done.stats.requests_unrouted));
  return done.stats.requests_unrouted == 1 ? 0 : 2;
}
