// An environment of the test's own for config_from_env() and the other readers that take a
// getenv function: fake_env() holds the variables, fake_getenv looks them up. One per test
// binary; a suite clears it where it needs an empty environment.
#pragma once

#include <map>
#include <string>

namespace tracecast::test {

inline std::map<std::string, std::string>& fake_env() {
  static std::map<std::string, std::string> env;
  return env;
}

inline const char* fake_getenv(const char* name) {
  const auto it = fake_env().find(name);
  return it == fake_env().end() ? nullptr : it->second.c_str();
}

}  // namespace tracecast::test
