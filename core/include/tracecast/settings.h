// Settings described once. Each config struct (IngestConfig, EncoderLimits, SenderConfig,
// PipelineConfig, ...) has a table of rows, one per field, kept beside the struct: the member,
// its JSON key, unit, range, environment variable and one doc line (nginx's ngx_command_t:
// one row drives the parser, the checks and the messages). The struct's default member
// initializer stays the one source of its default; the row reads it from a default-built
// struct. From these rows:
//   - check_settings() checks every range, size, choice, list and pairs bound (the struct's
//     validate function, beside the rows, adds only the rules no row states: URLs, header
//     names, CIDRs, printable ids, duplicates, a preset's fields);
//   - the JSON config loader and the environment reader (core/pipeline/config_load.cpp) find
//     each key, its type and the variable;
//   - README's configuration and destination tables are generated (core/pipeline/settings.h;
//     a test compares).
//
// Validation results are structured: ValidationIssue {path (the dotted member path), code,
// message}. A struct's validator names fields relative to the struct ("retry.multiplier");
// the one that embeds it prefixes the path ("sender." -> "sender.retry.multiplier"), never
// rewriting the message.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace tracecast {

// What kind of problem an issue is; lets a program react without reading the message.
enum class IssueCode : std::uint8_t {
  invalid,        // a value the field does not take (a malformed URL, CIDR, header, ...)
  out_of_range,   // a number or duration outside its range (see the message for the range)
  required,       // missing or empty
  too_long,       // text or a list beyond its size bound
  wrong_type,     // the JSON value's type (a string where a number goes)
  unknown_field,  // a JSON key no row describes
  duplicate,      // a key or entry given twice
  conflict,       // two settings that cannot both hold (one key from two sources)
  unsupported,    // known but not implemented (grpc; encoder_threads above 1)
  unreadable,     // a file or an environment variable the value was to come from
};
// "out_of_range", ... Thread-safe, no allocation.
[[nodiscard]] std::string_view to_string(IssueCode code) noexcept;

// One problem found by a validator: {path, code, message}. `path` is the dotted path of the
// field within the struct validated ("max_in_flight", "retry.multiplier", "api_key_ids[3]",
// "fields.region"); `message` says what is wrong and how to fix it, never quoting a secret.
struct ValidationIssue {
  std::string path;
  std::string message;
  bool warning = false;  // true: accepted, but probably a mistake
  IssueCode code = IssueCode::invalid;
};

// Puts `prefix` ("sender.", "destinations[3].") before the path of issues[from..].
// Thread-safe (on distinct vectors). Allocates.
void prefix_issues(std::vector<ValidationIssue>& issues, std::string_view prefix, std::size_t from = 0);

// The first issue that is not a warning, or nullptr. Thread-safe, no allocation.
[[nodiscard]] const ValidationIssue* first_error(const std::vector<ValidationIssue>& issues) noexcept;

// "<path>: <message>" of first_error(), "" when there is none: what the string-returning
// validate() members return. Thread-safe. Allocates.
[[nodiscard]] std::string first_error_text(const std::vector<ValidationIssue>& issues);

// Text pairs: headers, resource attributes, a preset's fields.
using SettingPairs = std::vector<std::pair<std::string, std::string>>;

// A pointer to the field a row describes, typed. std::size_t is std::uint64_t on the LP64
// targets tracecast builds for (checked in settings.cpp).
using SettingRef = std::variant<std::uint32_t*, std::uint64_t*, int*, double*, bool*,
                                std::chrono::milliseconds*, std::string*, std::vector<std::string>*, SettingPairs*>;

// What check_settings() checks of a row's value.
enum class SettingCheck : std::uint8_t {
  range,       // min <= value <= max (numbers, milliseconds; double compared as such)
  pow2_range,  // a power of two in min..max
  text,        // at most max bytes; min 1: not empty
  fraction,    // a double in fmin..fmax (the sampling rate: 0.0001..1)
  choice,      // text that is one of `choices` ("none, gzip, zstd"), or empty when min is 0
  list,        // at most max entries, each item_min..item_max bytes
  pairs,       // at most max entries; keys item_min..item_max bytes, values at most value_max
  none,        // nothing here (bool; or checked by the struct's own code)
};

struct Setting {
  std::string_view path;  // the member, dotted, relative to the struct: "retry.multiplier"
  std::string_view json;  // its key in the JSON config, relative to the struct's object
  std::string_view unit;  // "bytes", "ms", "spans", ...; "bool", "text" for those
  std::int64_t min = 0;   // inclusive range (text: bytes)
  std::int64_t max = 0;
  SettingCheck check = SettingCheck::range;
  std::string_view env;   // the environment variable that sets it directly, or ""
  // Said after the range in messages and README: " (30 days)", " (only 1 is implemented)".
  std::string_view note;
  // A bound given by another row of the same table (its path): the range is then
  // min_factor * <min_of>..max, or min..<max_of> (batch.max_linger >= batch.linger).
  std::string_view min_of;
  std::int64_t min_factor = 1;
  std::string_view max_of;
  std::string_view doc;  // one line for README
  // The field in an object of the table's struct; nullptr for a row only described here
  // (a list, a map: read and checked by code of its own), whose README default and range
  // are then doc_default and doc_range.
  SettingRef (*ref)(void* object) = nullptr;
  std::string_view doc_default;
  std::string_view doc_range;
  // range and pow2_range: 0 is taken too, meaning what zero_means says ("batch.max_bytes"):
  // "must be 0 (batch.max_bytes) or 4096..16777216".
  bool zero_ok = false;
  std::string_view zero_means;
  double fmin = 0;  // fraction: the inclusive range
  double fmax = 0;
  std::string_view choices;  // choice: the values, ", "-separated
  std::int64_t item_min = 0;  // list: bytes of an item; pairs: bytes of a key
  std::int64_t item_max = 0;
  std::int64_t value_max = 0;  // pairs: bytes of a value
  // What the struct's own code checks besides the row (said after the range in README, after
  // "; "): "printable ASCII without spaces, no duplicates". The check itself is that code's.
  std::string_view rules;
  // Text naming a file: a relative path in a config file is relative to that file.
  bool file_path = false;

  // A copy with one member changed (defined before the modifiers: clang 14 will not call a
  // member template defined later in the class from a constant expression).
  template <class T, class V>
  [[nodiscard]] constexpr Setting with(T Setting::*member, V value) const noexcept {
    Setting s = *this;
    s.*member = value;
    return s;
  }
  // Modifiers for writing a row (each returns a changed copy): pow2(), env_var("X"), ...
  [[nodiscard]] constexpr Setting pow2() const noexcept { return with(&Setting::check, SettingCheck::pow2_range); }
  [[nodiscard]] constexpr Setting env_var(std::string_view v) const noexcept { return with(&Setting::env, v); }
  [[nodiscard]] constexpr Setting noted(std::string_view v) const noexcept { return with(&Setting::note, v); }
  [[nodiscard]] constexpr Setting unchecked() const noexcept { return with(&Setting::check, SettingCheck::none); }
  [[nodiscard]] constexpr Setting at_least(std::string_view other, std::int64_t factor = 1) const noexcept {
    return with(&Setting::min_of, other).with(&Setting::min_factor, factor);
  }
  [[nodiscard]] constexpr Setting at_most(std::string_view other) const noexcept { return with(&Setting::max_of, other); }
  [[nodiscard]] constexpr Setting or_zero(std::string_view means) const noexcept {
    return with(&Setting::zero_ok, true).with(&Setting::zero_means, means);
  }
  [[nodiscard]] constexpr Setting also_checked(std::string_view v) const noexcept { return with(&Setting::rules, v); }
  [[nodiscard]] constexpr Setting a_file() const noexcept { return with(&Setting::file_path, true); }
  // README's range of a row without a check of its own (check none).
  [[nodiscard]] constexpr Setting range_doc(std::string_view v) const noexcept { return with(&Setting::doc_range, v); }
  [[nodiscard]] constexpr Setting default_doc(std::string_view v) const noexcept { return with(&Setting::doc_default, v); }
};

// Rows are written with these (not designated initializers, which GCC's
// -Wmissing-field-initializers flags for every member left out), then the modifiers above:
//   number_setting("max_producers", "max_producers", "threads", 1, 256,
//                  &setting_ref<&SenderConfig::max_producers>, "threads that hand requests ...")
//
// A number or a duration (a std::chrono::milliseconds member: unit "ms") in min..max.
[[nodiscard]] constexpr Setting number_setting(std::string_view path, std::string_view json, std::string_view unit,
                                               std::int64_t min, std::int64_t max, SettingRef (*ref)(void*),
                                               std::string_view doc) noexcept {
  Setting s;
  s.path = path;
  s.json = json;
  s.unit = unit;
  s.min = min;
  s.max = max;
  s.ref = ref;
  s.doc = doc;
  return s;
}
// Text of at most max_bytes bytes; not empty when `required`.
[[nodiscard]] constexpr Setting text_setting(std::string_view path, std::string_view json, bool required,
                                             std::int64_t max_bytes, SettingRef (*ref)(void*),
                                             std::string_view doc) noexcept {
  Setting s = number_setting(path, json, "text", required ? 1 : 0, max_bytes, ref, doc);
  s.check = SettingCheck::text;
  return s;
}
// A bool.
[[nodiscard]] constexpr Setting flag_setting(std::string_view path, std::string_view json, SettingRef (*ref)(void*),
                                             std::string_view doc) noexcept {
  Setting s = number_setting(path, json, "bool", 0, 1, ref, doc);
  s.check = SettingCheck::none;
  return s;
}
// A double in min..max (both inclusive).
[[nodiscard]] constexpr Setting fraction_setting(std::string_view path, std::string_view json, double min, double max,
                                                 SettingRef (*ref)(void*), std::string_view doc) noexcept {
  Setting s = number_setting(path, json, "fraction", 0, 0, ref, doc);
  s.check = SettingCheck::fraction;
  s.fmin = min;
  s.fmax = max;
  return s;
}
// Text that is one of `choices` (", "-separated), or empty (the struct's default).
[[nodiscard]] constexpr Setting choice_setting(std::string_view path, std::string_view json, std::string_view choices,
                                               SettingRef (*ref)(void*), std::string_view doc) noexcept {
  Setting s = number_setting(path, json, "text", 0, 0, ref, doc);
  s.check = SettingCheck::choice;
  s.choices = choices;
  return s;
}
// A list of at most max_items texts, each item_min..item_max bytes.
[[nodiscard]] constexpr Setting list_setting(std::string_view path, std::string_view json, std::string_view unit,
                                             std::int64_t max_items, std::int64_t item_min, std::int64_t item_max,
                                             SettingRef (*ref)(void*), std::string_view doc) noexcept {
  Setting s = number_setting(path, json, unit, 0, max_items, ref, doc);
  s.check = SettingCheck::list;
  s.item_min = item_min;
  s.item_max = item_max;
  return s;
}
// At most max_items text pairs (a JSON object of strings): keys key_min..key_max bytes, values
// at most value_max.
[[nodiscard]] constexpr Setting pairs_setting(std::string_view path, std::string_view json, std::int64_t max_items,
                                              std::int64_t key_min, std::int64_t key_max, std::int64_t value_max,
                                              SettingRef (*ref)(void*), std::string_view doc) noexcept {
  Setting s = number_setting(path, json, "pairs", 0, max_items, ref, doc);
  s.check = SettingCheck::pairs;
  s.item_min = key_min;
  s.item_max = key_max;
  s.value_max = value_max;
  return s;
}
// A field read and checked by code of its own (a list, a map), described for README and
// for the JSON loader's list of keys.
[[nodiscard]] constexpr Setting described_setting(std::string_view path, std::string_view json, std::string_view unit,
                                                  std::string_view doc_default, std::string_view doc_range,
                                                  std::string_view doc) noexcept {
  Setting s = number_setting(path, json, unit, 0, 0, nullptr, doc);
  s.check = SettingCheck::none;
  s.doc_default = doc_default;
  s.doc_range = doc_range;
  return s;
}

namespace detail {
template <class C, class M>
C class_of(M C::*);
template <auto First, auto... Rest, class T>
constexpr auto& member_of(T& object) noexcept {
  if constexpr (sizeof...(Rest) == 0) {
    return object.*First;
  } else {
    return member_of<Rest...>(object.*First);
  }
}
}  // namespace detail

// The `ref` of a row: setting_ref<&SenderConfig::retry, &RetryPolicy::multiplier>.
template <auto First, auto... Rest>
SettingRef setting_ref(void* object) {
  using S = decltype(detail::class_of(First));
  return SettingRef(&detail::member_of<First, Rest...>(*static_cast<S*>(object)));
}

// Checks every row of `rows` that has a ref and a check against `object` (an object of the
// rows' struct), appending one issue per field out of range, named by the row's path:
//   "must be 1..65536, got 0", "must be 1..60000 ms, got 0 ms",
//   "must be batch.linger (200 ms)..60000 ms, got 100 ms",
//   "must be a power of two from 32 to 1048576, got 48", "at most 1024 bytes, got 2000",
//   "must not be empty", "must be 0 (batch.max_bytes) or 4096..16777216, got 100",
//   "must be in 0.0001..1, got 0", "must be one of none, gzip, zstd";
// a list names the entry ("api_key_ids[2]: at most 128 bytes, got 129") and pairs the key or
// value ("resource_attributes[1].key: must not be empty"). No message quotes a text value.
// Thread-safe (the object is only read). Allocates only for issues.
void check_settings(std::span<const Setting> rows, const void* object, std::vector<ValidationIssue>& out);

// The value of a row's field as an integer (bool 0/1; double truncated; text, a list, pairs:
// the size).
// Precondition: row.ref. Thread-safe, no allocation.
[[nodiscard]] std::int64_t setting_integer(const Setting& row, const void* object) noexcept;

// The row's field as text: "512", "200", "1.5", "true", "tracecast/0.1"; a list "a, b"; pairs
// "k=v, k2=v2". Allocates.
[[nodiscard]] std::string setting_text(const Setting& row, const void* object);

// The range as README says it: "1..65536", "power of two, 64 KiB..1 GiB",
// "batch.linger..60000", "0..2592000000 (30 days)", "≤ 1024 B", "1..1024 B",
// "0 or 4 KiB..16 MiB", "0.0001..1", "one of none, gzip, zstd", "≤ 1024 entries, each
// 1..128 B", "≤ 16; key 1..256 B, value ≤ 4096 B", then "; " and the row's `rules`; the row's
// doc_range when it has no ref or no check. Allocates.
[[nodiscard]] std::string setting_range_text(const Setting& row);

}  // namespace tracecast
