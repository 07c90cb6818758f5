// libFuzzer target over the response side of the sender: what a remote server controls.
// Input: 2 bytes of status, 4 bytes of batch item count, then a header block and a body
// separated by the first "\r\n\r\n". Each header line goes through the Retry-After parser
// (with the current time and with extreme times), the body through the partialSuccess
// parser. Checks: nothing crashes or overflows (ASan + UBSan); a rejected count never exceeds
// the batch; a Retry-After delay stays within 0..k_max_retry_after_s; status classification
// is consistent (only 429/502/503/504 retryable; only 429 or a 503 with Retry-After throttle).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string_view>

#include "retry_policy.h"

namespace {

void check_retry_after(std::string_view value, std::int64_t now) {
  const tracecast::detail::RetryAfter r = tracecast::detail::parse_retry_after(value, now);
  using K = tracecast::detail::RetryAfter::Kind;
  if (r.kind == K::delay) {
    if (r.seconds < 0 || r.seconds > tracecast::detail::k_max_retry_after_s) std::abort();
  } else if (r.seconds != 0 || r.clamped) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 6) return 0;
  const int status = (data[0] << 8 | data[1]) % 1000;
  const std::uint64_t items = static_cast<std::uint64_t>(data[2]) << 24 | static_cast<std::uint64_t>(data[3]) << 16 |
                              static_cast<std::uint64_t>(data[4]) << 8 | data[5];
  const std::string_view rest(reinterpret_cast<const char*>(data) + 6, size - 6);
  const std::size_t split = rest.find("\r\n\r\n");
  const std::string_view headers = rest.substr(0, split);
  const std::string_view body = split == std::string_view::npos ? std::string_view{} : rest.substr(split + 4);

  using tracecast::detail::is_retryable_status;
  using tracecast::detail::throttles_destination;
  if (is_retryable_status(status) != (status == 429 || status == 502 || status == 503 || status == 504)) std::abort();
  if (throttles_destination(status, true) && !is_retryable_status(status)) std::abort();

  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::size_t pos = 0;
  while (pos <= headers.size()) {
    std::size_t end = headers.find('\n', pos);
    if (end == std::string_view::npos) end = headers.size();
    std::string_view line = headers.substr(pos, end - pos);
    const std::size_t colon = line.find(':');
    const std::string_view value = colon == std::string_view::npos ? line : line.substr(colon + 1);
    check_retry_after(value, now);
    check_retry_after(value, 0);
    check_retry_after(value, std::numeric_limits<std::int64_t>::min());
    check_retry_after(value, std::numeric_limits<std::int64_t>::max());
    pos = end + 1;
  }

  const tracecast::detail::PartialSuccess p = tracecast::detail::parse_partial_success(body, items);
  if (p.rejected > items) std::abort();
  // The answer to an http/protobuf request: the same bound, whatever the bytes.
  const tracecast::detail::PartialSuccess pb = tracecast::detail::parse_partial_success(body, items, true);
  if (pb.rejected > items) std::abort();
  // The errorMessage's place (shown by Test Connection) lies inside the body, and only a
  // message that is there has one.
  for (const tracecast::detail::PartialSuccess& q : {p, pb}) {
    if (q.message_offset > body.size() || q.message_size > body.size() - q.message_offset) std::abort();
    if (q.message_size != 0 && !q.has_message) std::abort();
  }
  return 0;
}
