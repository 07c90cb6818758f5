// Which destinations take an account's requests: a hash map from account to its (few)
// destinations, plus the destinations that take every account's requests. Adding is O(1)
// amortised, removing O(destinations of that account); lookups allocate nothing.
// Single-threaded (the pipeline worker owns it).
#pragma once

#include <algorithm>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tracecast::detail {

template <class Target>
class RouteTable {
 public:
  using List = std::vector<Target*>;

  void add(std::string_view account, Target* t) {
    if (account.empty()) {
      everyone_.push_back(t);
      return;
    }
    auto it = by_account_.find(account);
    if (it == by_account_.end()) it = by_account_.emplace(std::string(account), List{}).first;
    it->second.push_back(t);
  }

  void remove(std::string_view account, Target* t) {
    if (account.empty()) {
      erase(everyone_, t);
      return;
    }
    auto it = by_account_.find(account);
    if (it == by_account_.end()) return;
    erase(it->second, t);
    if (it->second.empty()) by_account_.erase(it);
  }

  // The account's own destinations (nullptr when none), and the every-account ones.
  [[nodiscard]] const List* own(std::string_view account) const noexcept {
    if (by_account_.empty()) return nullptr;
    const auto it = by_account_.find(account);
    return it == by_account_.end() ? nullptr : &it->second;
  }
  [[nodiscard]] const List& everyone() const noexcept { return everyone_; }

  void reserve(std::size_t accounts) { by_account_.reserve(accounts); }

 private:
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  static void erase(List& list, Target* t) { list.erase(std::remove(list.begin(), list.end(), t), list.end()); }

  std::unordered_map<std::string, List, Hash, std::equal_to<>> by_account_;
  List everyone_;
};

}  // namespace tracecast::detail
