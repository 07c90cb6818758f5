// A pipeline configuration for tests against servers of their own on 127.0.0.1: loopback
// allowed, short linger and retry intervals so a test finishes in well under a second, and
// a shutdown timeout long enough for a loaded CI machine. Suites adjust what they test.
#pragma once

#include <chrono>

#include "egress_util.h"
#include "tracecast/pipeline.h"

namespace tracecast::test {

inline PipelineConfig quick_pipeline_config() {
  using namespace std::chrono_literals;
  PipelineConfig c;
  c.sender.egress = loopback_egress();
  c.batch.linger = 20ms;
  c.sender.retry.initial_interval = 20ms;
  c.sender.retry.max_interval = 200ms;
  c.sender.retry.max_elapsed = 3000ms;
  c.shutdown_timeout = 5000ms;
  return c;
}

}  // namespace tracecast::test
