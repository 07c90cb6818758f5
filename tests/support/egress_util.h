// Tests send to servers of their own on 127.0.0.1 (tracecast-sink, nginx, raw scripted
// servers). The default egress policy refuses loopback, so every test that sends allows its
// own loopback address explicitly, never by weakening the default.
#pragma once

#include "tracecast/egress.h"
#include "tracecast/sender.h"

namespace tracecast::test {

// Allows 127.0.0.1 only (the address every test server binds).
inline EgressPolicy loopback_egress() {
  EgressPolicy p;
  p.allow_cidrs = {"127.0.0.1/32"};
  return p;
}

inline SenderConfig loopback_sender_config() {
  SenderConfig c;
  c.egress = loopback_egress();
  return c;
}

}  // namespace tracecast::test
