#include "utf8_repair.h"

#include <simdjson.h>

namespace tracecast::detail {

// Kept out of line so that only this file sees simdjson's (large) header.
bool validate_utf8(const char* s, std::size_t n) noexcept { return simdjson::validate_utf8(s, n); }

}  // namespace tracecast::detail
