#include "curl_global.h"

#include <curl/curl.h>

#include <mutex>

namespace tracecast::detail {

bool ensure_curl_global_init() noexcept {
  static std::once_flag once;
  static bool ok = false;
  try {
    std::call_once(once, [] { ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; });
  } catch (...) {
    return false;
  }
  return ok;
}

}  // namespace tracecast::detail
