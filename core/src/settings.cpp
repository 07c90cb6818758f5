// The range checks every settings table shares (tracecast/settings.h).
#include "tracecast/settings.h"

#include <algorithm>
#include <charconv>
#include <type_traits>

namespace tracecast {
namespace {

static_assert(std::is_same_v<std::size_t, std::uint64_t>, "SettingRef holds std::size_t fields as std::uint64_t");

std::string number_text(std::int64_t v) { return std::to_string(v); }

std::string double_text(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

// A fraction's bound as written: "0.0001", not "1e-04".
std::string fixed_text(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  return std::string(buf, r.ptr);
}

const Setting* find_row(std::span<const Setting> rows, std::string_view path) noexcept {
  for (const Setting& row : rows) {
    if (row.path == path && row.ref != nullptr) return &row;
  }
  return nullptr;
}

bool is_pow2(std::uint64_t v) noexcept { return v != 0 && (v & (v - 1)) == 0; }

// "4 KiB", "16 MiB", "1 GiB" for an exact multiple, else the number.
std::string bytes_text(std::int64_t v) {
  if (v >= 1024) {
    constexpr std::string_view k_units[] = {"KiB", "MiB", "GiB", "TiB"};
    std::int64_t n = v;
    std::size_t unit = 0;
    while (n % 1024 == 0 && n >= 1024 && unit <= 3) {
      n /= 1024;
      ++unit;
    }
    if (unit > 0) return std::to_string(n).append(" ").append(k_units[unit - 1]);
  }
  return std::to_string(v);
}

}  // namespace

std::string_view to_string(IssueCode code) noexcept {
  switch (code) {
    case IssueCode::invalid: return "invalid";
    case IssueCode::out_of_range: return "out_of_range";
    case IssueCode::required: return "required";
    case IssueCode::too_long: return "too_long";
    case IssueCode::wrong_type: return "wrong_type";
    case IssueCode::unknown_field: return "unknown_field";
    case IssueCode::duplicate: return "duplicate";
    case IssueCode::conflict: return "conflict";
    case IssueCode::unsupported: return "unsupported";
    case IssueCode::unreadable: return "unreadable";
  }
  return "invalid";
}

void prefix_issues(std::vector<ValidationIssue>& issues, std::string_view prefix, std::size_t from) {
  for (std::size_t i = from; i < issues.size(); ++i) issues[i].path.insert(0, prefix);
}

const ValidationIssue* first_error(const std::vector<ValidationIssue>& issues) noexcept {
  for (const ValidationIssue& issue : issues) {
    if (!issue.warning) return &issue;
  }
  return nullptr;
}

std::string first_error_text(const std::vector<ValidationIssue>& issues) {
  const ValidationIssue* e = first_error(issues);
  if (e == nullptr) return {};
  std::string out = e->path;
  out.append(": ").append(e->message);
  return out;
}

std::int64_t setting_integer(const Setting& row, const void* object) noexcept {
  // The ref only forms a pointer; nothing is written through it here.
  const SettingRef ref = row.ref(const_cast<void*>(object));
  return std::visit(
      [](auto* p) -> std::int64_t {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, std::chrono::milliseconds>) {
          return static_cast<std::int64_t>(p->count());
        } else if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::vector<std::string>> ||
                             std::is_same_v<T, SettingPairs>) {
          return static_cast<std::int64_t>(p->size());
        } else if constexpr (std::is_same_v<T, std::uint64_t>) {
          // Above every bound a table states (<= 2^62): kept out of range when clamped.
          return *p > (std::uint64_t{1} << 62) ? std::int64_t{1} << 62 : static_cast<std::int64_t>(*p);
        } else if constexpr (std::is_same_v<T, double>) {
          return static_cast<std::int64_t>(*p);
        } else {
          return static_cast<std::int64_t>(*p);
        }
      },
      ref);
}

std::string setting_text(const Setting& row, const void* object) {
  const SettingRef ref = row.ref(const_cast<void*>(object));
  return std::visit(
      [](auto* p) -> std::string {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, std::chrono::milliseconds>) {
          return std::to_string(p->count());
        } else if constexpr (std::is_same_v<T, std::string>) {
          return *p;
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          std::string out;
          for (const std::string& item : *p) out.append(out.empty() ? "" : ", ").append(item);
          return out;
        } else if constexpr (std::is_same_v<T, SettingPairs>) {
          std::string out;
          for (const auto& kv : *p) out.append(out.empty() ? "" : ", ").append(kv.first).append("=").append(kv.second);
          return out;
        } else if constexpr (std::is_same_v<T, bool>) {
          return *p ? "true" : "false";
        } else if constexpr (std::is_same_v<T, double>) {
          return double_text(*p);
        } else {
          return std::to_string(*p);
        }
      },
      ref);
}

namespace {

std::string size_range(std::int64_t min, std::int64_t max) {
  return min > 0 ? std::to_string(min).append("..").append(std::to_string(max)).append(" B")
                 : std::string("≤ ").append(std::to_string(max)).append(" B");
}

std::string range_text_of(const Setting& row) {
  if (row.ref == nullptr) return std::string(row.doc_range);
  const bool bytes = row.unit == "bytes";
  auto bound = [bytes](std::int64_t v) { return bytes ? bytes_text(v) : number_text(v); };
  std::string out;
  switch (row.check) {
    case SettingCheck::none: return std::string(row.doc_range);
    case SettingCheck::text: return size_range(row.min, row.max).append(row.note);
    case SettingCheck::fraction: return fixed_text(row.fmin).append("..").append(fixed_text(row.fmax)).append(row.note);
    case SettingCheck::choice: return std::string("one of ").append(row.choices).append(row.note);
    case SettingCheck::list:
      return std::string("≤ ").append(std::to_string(row.max)).append(" entries, each ").append(size_range(row.item_min, row.item_max));
    case SettingCheck::pairs:
      return std::string("≤ ").append(std::to_string(row.max)).append("; key ").append(size_range(row.item_min, row.item_max))
          .append(", value ").append(size_range(0, row.value_max));
    case SettingCheck::pow2_range: out = "power of two, "; break;
    case SettingCheck::range: break;
  }
  if (row.zero_ok) out.insert(0, "0 or ");
  if (!row.min_of.empty()) {
    if (row.min_factor != 1) out.append(std::to_string(row.min_factor)).append(" × ");
    out.append(row.min_of);
  } else {
    out.append(bound(row.min));
  }
  if (row.max_of.empty() && row.max == row.min && row.min_of.empty()) return out.append(row.note);
  out.append("..");
  out.append(row.max_of.empty() ? bound(row.max) : std::string(row.max_of));
  return out.append(row.note);
}

// Whether `value` is one of `choices` ("none, gzip, zstd").
bool is_choice(std::string_view choices, std::string_view value) noexcept {
  while (!choices.empty()) {
    const auto comma = choices.find(',');
    std::string_view item = choices.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    if (item == value) return true;
    if (comma == std::string_view::npos) break;
    choices.remove_prefix(comma + 1);
  }
  return false;
}

// The checks of a row that are not a number's: a fraction, a choice, a list, pairs.
void check_other(const Setting& row, const SettingRef& ref, std::vector<ValidationIssue>& out) {
  const std::string path(row.path);
  auto size_issue = [&out](std::string where, std::size_t size, std::int64_t min, std::int64_t max) {
    if (size == 0 && min > 0) {
      out.push_back({std::move(where), "must not be empty", false, IssueCode::required});
    } else if (size > static_cast<std::size_t>(max)) {
      out.push_back({std::move(where), "at most " + std::to_string(max) + " bytes, got " + std::to_string(size), false,
                     IssueCode::too_long});
    }
  };
  auto count_issue = [&](std::size_t size) {
    if (size <= static_cast<std::size_t>(row.max)) return false;
    out.push_back({path, "at most " + std::to_string(row.max) + " entries, got " + std::to_string(size), false,
                   IssueCode::too_long});
    return true;
  };
  switch (row.check) {
    case SettingCheck::fraction: {
      const double v = *std::get<double*>(ref);
      if (!(v >= row.fmin && v <= row.fmax)) {  // NaN too
        out.push_back({path,
                       "must be in " + fixed_text(row.fmin) + ".." + fixed_text(row.fmax) + std::string(row.note) +
                           ", got " + double_text(v),
                       false, IssueCode::out_of_range});
      }
      return;
    }
    case SettingCheck::choice: {
      const std::string& v = *std::get<std::string*>(ref);
      if (v.empty() && row.min == 0) return;
      // The value is not quoted: a secret pasted into the wrong field stays out of the message.
      if (!is_choice(row.choices, v))
        out.push_back({path, "must be one of " + std::string(row.choices) + std::string(row.note), false,
                       v.empty() ? IssueCode::required : IssueCode::invalid});
      return;
    }
    case SettingCheck::list: {
      const auto& items = *std::get<std::vector<std::string>*>(ref);
      if (count_issue(items.size())) return;
      for (std::size_t i = 0; i < items.size(); ++i) {
        size_issue(path + "[" + std::to_string(i) + "]", items[i].size(), row.item_min, row.item_max);
      }
      return;
    }
    case SettingCheck::pairs: {
      const auto& items = *std::get<SettingPairs*>(ref);
      if (count_issue(items.size())) return;
      for (std::size_t i = 0; i < items.size(); ++i) {
        const std::string at = path + "[" + std::to_string(i) + "]";
        size_issue(at + ".key", items[i].first.size(), row.item_min, row.item_max);
        size_issue(at + ".value", items[i].second.size(), 0, row.value_max);
      }
      return;
    }
    default: return;
  }
}

}  // namespace

std::string setting_range_text(const Setting& row) {
  std::string out = range_text_of(row);
  if (!row.rules.empty()) out.append(out.empty() ? "" : "; ").append(row.rules);
  return out;
}

void check_settings(std::span<const Setting> rows, const void* object, std::vector<ValidationIssue>& out) {
  for (const Setting& row : rows) {
    if (row.ref == nullptr || row.check == SettingCheck::none) continue;
    const SettingRef ref = row.ref(const_cast<void*>(object));
    if (row.check != SettingCheck::text && row.check != SettingCheck::range && row.check != SettingCheck::pow2_range) {
      check_other(row, ref, out);
      continue;
    }
    const bool millis = std::holds_alternative<std::chrono::milliseconds*>(ref);
    const std::string_view unit = millis ? " ms" : "";
    if (row.check == SettingCheck::text) {
      const std::int64_t size = setting_integer(row, object);
      if (size == 0 && row.min > 0) {
        out.push_back({std::string(row.path), "must not be empty", false, IssueCode::required});
      } else if (size > row.max) {
        out.push_back({std::string(row.path),
                       "at most " + std::to_string(row.max) + " bytes, got " + std::to_string(size), false,
                       IssueCode::too_long});
      }
      continue;
    }
    // The bounds, and how a message states them.
    std::int64_t lo = row.min;
    std::int64_t hi = row.max;
    std::string lo_text = std::to_string(row.min);
    std::string hi_text = std::to_string(row.max);
    if (!row.min_of.empty()) {
      if (const Setting* other = find_row(rows, row.min_of)) {
        lo = std::max(lo, row.min_factor * setting_integer(*other, object));
        lo_text.clear();
        if (row.min_factor != 1) lo_text.append(std::to_string(row.min_factor)).append(" * ");
        lo_text.append(row.min_of).append(" (").append(std::to_string(lo)).append(unit).append(")");
      }
    }
    if (!row.max_of.empty()) {
      if (const Setting* other = find_row(rows, row.max_of)) {
        hi = std::min(hi, setting_integer(*other, object));
        hi_text.assign(row.max_of).append(" (").append(std::to_string(hi)).append(unit).append(")");
      }
    } else if (row.unit == "bytes" && hi >= (std::int64_t{1} << 30)) {
      hi_text.append(" (").append(bytes_text(hi)).append(")");  // "1099511627776 (1 TiB)"
    }
    bool ok = true;
    std::string got;
    if (const auto* d = std::get_if<double*>(&ref)) {
      const double v = **d;
      ok = v >= static_cast<double>(lo) && v <= static_cast<double>(hi);  // false for NaN
      got = double_text(v);
    } else if (const auto* u = std::get_if<std::uint64_t*>(&ref)) {
      const std::uint64_t v = **u;
      ok = lo >= 0 && v >= static_cast<std::uint64_t>(lo) && hi >= 0 && v <= static_cast<std::uint64_t>(hi);
      got = std::to_string(v);
    } else {
      const std::int64_t v = setting_integer(row, object);
      ok = v >= lo && v <= hi;
      got = std::to_string(v);
    }
    if (ok && row.check == SettingCheck::pow2_range) ok = is_pow2(static_cast<std::uint64_t>(setting_integer(row, object)));
    if (!ok && row.zero_ok && got == "0") ok = true;
    if (ok) continue;
    std::string message = "must be ";
    if (row.zero_ok) message.append("0 (").append(row.zero_means).append(") or ");
    if (row.check == SettingCheck::pow2_range) {
      message.append("a power of two from ").append(lo_text).append(" to ").append(hi_text);
    } else if (lo == hi && row.min_of.empty() && row.max_of.empty()) {
      message.append(lo_text);
    } else {
      message.append(lo_text);
      message.append("..").append(hi_text);
      // "1..60000 ms": the unit once, after the upper bound (a bound from another row says its own).
      if (row.max_of.empty()) message.append(unit);
    }
    message.append(row.note).append(", got ").append(got).append(unit);
    out.push_back({std::string(row.path), std::move(message), false, IssueCode::out_of_range});
  }
}

}  // namespace tracecast
