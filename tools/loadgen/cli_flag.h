// The one reading of a command-line argument shared by tracecast-check, tracecast-load and
// tracecast-sink: "--name" or "--name=value". Header-only (target tracecast_tool_files), so
// the sink, which links no tracecast library, uses it too.
//
// Why: each tool once compared whole arguments or dropped the "=value" of a boolean flag, so
// `--insecure-skip-verify=false` turned verification OFF. A boolean flag now takes no value,
// or exactly true/false/1/0, honoured; anything else is refused with the flag's name.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tracecast::tools {

struct CliArg {
  std::string_view name;                  // "--name" (the whole argument when it is no "--" flag)
  std::optional<std::string_view> value;  // the text after the first '=' of a "--name=value"
};

// Splits one argument. Only a "--" flag has an inline value; "-h" or a bare word is all name.
// Thread-safe; no allocation; views into `arg`.
inline CliArg split_cli_arg(std::string_view arg) noexcept {
  if (arg.substr(0, 2) != "--") return {arg, std::nullopt};
  const std::size_t eq = arg.find('=');
  if (eq == std::string_view::npos) return {arg, std::nullopt};
  return {arg.substr(0, eq), arg.substr(eq + 1)};
}

// A boolean flag: no value sets it; "=true"/"=1" sets it, "=false"/"=0" clears it. Returns ""
// and sets `out`, or the error (naming the flag, quoting at most 32 bytes of the value) and
// leaves `out` alone. Thread-safe; allocates only the error text.
inline std::string parse_bool_flag(const CliArg& arg, bool& out) {
  if (!arg.value) {
    out = true;
    return {};
  }
  const std::string_view v = *arg.value;
  if (v == "true" || v == "1") {
    out = true;
    return {};
  }
  if (v == "false" || v == "0") {
    out = false;
    return {};
  }
  return std::string(arg.name) + " takes no value, or exactly true, false, 1 or 0 (got '" +
         std::string(v.substr(0, 32)) + (v.size() > 32 ? "...'" : "'") + ")";
}

}  // namespace tracecast::tools
