// Which destinations take an account's requests: a flat open-addressing table from account to
// its (few) destinations, plus the destinations that take every account's requests.
//
// Why flat: routing one request through a node-based map touched the bucket, the account's
// node, the vector's heap block and then each destination, three dependent cache misses before
// the first destination (16% of the worker at 10,000 accounts, README "CPU at gateway scale").
// Here an account is one 64-byte slot holding its hash, its key (inline up to 24 bytes) and up
// to three destination pointers; a lookup reads one byte of a control array (dense: 1 B per
// slot) and then that one slot line.
//
//   slot (64 B, one cache line)
//   +--------+-------+-------+--------------------------+-----------------------------+
//   | hash 8 | len 4 | cnt 4 | key: 24 B inline, or ptr | 3 targets inline, or        |
//   |        |       |       | to the heap copy         | {heap array, capacity}      |
//   +--------+-------+-------+--------------------------+-----------------------------+
//   control: one byte per slot, 0 = empty, else 0x80 | 7 bits of the hash
//
// Linear probing, at most 7/8 full, deletion by backward shift (no tombstones: a lookup that
// meets an empty control byte is done). Adding is O(1) amortised (a doubling rehash moves
// slots bitwise, no key is hashed again), removing O(destinations of that account); lookups
// allocate nothing. Single-threaded (the pipeline worker owns it).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <new>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace tracecast::detail {

struct RouteTableHash {
  std::uint64_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <class Target, class Hash = RouteTableHash>
class RouteTable {
 public:
  using List = std::span<Target* const>;
  static constexpr std::size_t k_inline_key = 24;
  static constexpr std::uint32_t k_inline_targets = 3;

  RouteTable() = default;
  explicit RouteTable(Hash hash) : hash_(std::move(hash)) {}
  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;
  ~RouteTable() { clear(); }

  void add(std::string_view account, Target* t) {
    if (account.empty()) {
      everyone_.push_back(t);
      return;
    }
    const std::uint64_t h = hash_(account);
    std::size_t i = 0;
    if (find_slot(account, h, i)) {
      push_target(slots_[i], t);
      return;
    }
    if ((size_ + 1) * 8 > capacity() * 7) {
      grow();
      i = free_slot_for(h);
    }
    // find_slot stopped at the first empty slot of the probe sequence: ours.
    Slot& s = slots_[i];
    s.hash = h;
    s.key_len = static_cast<std::uint32_t>(account.size());
    s.count = 0;
    if (account.size() <= k_inline_key) {
      std::memcpy(s.key.bytes, account.data(), account.size());
    } else {
      s.key.heap = new char[account.size()];
      std::memcpy(s.key.heap, account.data(), account.size());
    }
    ctrl_[i] = tag(h);
    ++size_;
    push_target(s, t);
  }

  // Removes t from the account's list (absent ones are ignored); an account left with none
  // gives its slot back.
  void remove(std::string_view account, Target* t) {
    if (account.empty()) {
      std::erase(everyone_, t);
      return;
    }
    std::size_t i = 0;
    if (!find_slot(account, hash_(account), i)) return;
    Slot& s = slots_[i];
    Target** list = targets_of(s);
    std::uint32_t kept = 0;
    for (std::uint32_t k = 0; k < s.count; ++k)
      if (list[k] != t) list[kept++] = list[k];
    if (kept == s.count) return;
    if (s.count > k_inline_targets && kept <= k_inline_targets) {
      // Back inline: the heap array goes.
      Target** heap = s.targets.heap.data;
      std::memcpy(s.targets.inline_, heap, kept * sizeof(Target*));
      delete[] heap;
    }
    s.count = kept;
    if (kept == 0) erase_slot(i);
  }

  // The account's own destinations (empty when none), and the every-account ones.
  [[nodiscard]] List own(std::string_view account) const noexcept {
    if (size_ == 0) return {};
    std::size_t i = 0;
    if (!find_slot(account, hash_(account), i)) return {};
    const Slot& s = slots_[i];
    return {s.count > k_inline_targets ? s.targets.heap.data : s.targets.inline_, s.count};
  }
  [[nodiscard]] std::span<Target* const> everyone() const noexcept { return everyone_; }

  // Room for `accounts` accounts without a rehash.
  void reserve(std::size_t accounts) {
    std::size_t want = k_min_capacity;
    while (want * 7 < accounts * 8) want *= 2;
    if (want > capacity()) rehash(want);
  }

  [[nodiscard]] std::size_t accounts() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return slots_ == nullptr ? 0 : mask_ + 1; }
  // The table's own heap bytes (slots, control bytes, long keys, long lists).
  [[nodiscard]] std::size_t heap_bytes() const noexcept {
    std::size_t n = capacity() * (sizeof(Slot) + 1);
    for (std::size_t i = 0; i < capacity(); ++i) {
      if (ctrl_[i] == 0) continue;
      if (slots_[i].key_len > k_inline_key) n += slots_[i].key_len;
      if (slots_[i].count > k_inline_targets) n += slots_[i].targets.heap.capacity * sizeof(Target*);
    }
    return n + everyone_.capacity() * sizeof(Target*);
  }
  // Probe distance of the account's slot from its home slot (tests); -1 when absent.
  [[nodiscard]] long probe_distance(std::string_view account) const noexcept {
    std::size_t i = 0;
    if (size_ == 0 || !find_slot(account, hash_(account), i)) return -1;
    return static_cast<long>((i - (slots_[i].hash & mask_)) & mask_);
  }

 private:
  static constexpr std::size_t k_min_capacity = 16;

  struct alignas(64) Slot {
    std::uint64_t hash;
    std::uint32_t key_len;
    std::uint32_t count;
    union {
      char bytes[k_inline_key];
      char* heap;
    } key;
    union {
      Target* inline_[k_inline_targets];
      struct {
        Target** data;
        std::uint32_t capacity;
      } heap;
    } targets;
  };
  static_assert(sizeof(Slot) == 64);

  static std::uint8_t tag(std::uint64_t h) noexcept { return static_cast<std::uint8_t>(0x80U | (h >> 57)); }
  static const char* key_of(const Slot& s) noexcept { return s.key_len <= k_inline_key ? s.key.bytes : s.key.heap; }
  static Target** targets_of(Slot& s) noexcept {
    return s.count > k_inline_targets ? s.targets.heap.data : s.targets.inline_;
  }

  // True with i = the account's slot; false with i = the first empty slot of its probe
  // sequence (where it would go). The table must have a slot (capacity > 0).
  bool find_slot(std::string_view account, std::uint64_t h, std::size_t& i) const noexcept {
    if (slots_ == nullptr) {
      i = 0;
      return false;
    }
    const std::uint8_t t = tag(h);
    for (std::size_t j = h & mask_;; j = (j + 1) & mask_) {
      const std::uint8_t c = ctrl_[j];
      if (c == 0) {
        i = j;
        return false;
      }
      if (c == t) {
        const Slot& s = slots_[j];
        if (s.hash == h && s.key_len == account.size() && std::memcmp(key_of(s), account.data(), account.size()) == 0) {
          i = j;
          return true;
        }
      }
    }
  }

  std::size_t free_slot_for(std::uint64_t h) const noexcept {
    std::size_t j = h & mask_;
    while (ctrl_[j] != 0) j = (j + 1) & mask_;
    return j;
  }

  static void push_target(Slot& s, Target* t) {
    if (s.count < k_inline_targets) {
      s.targets.inline_[s.count++] = t;
      return;
    }
    if (s.count == k_inline_targets) {
      auto* heap = new Target*[2 * k_inline_targets];
      std::memcpy(heap, s.targets.inline_, k_inline_targets * sizeof(Target*));
      s.targets.heap.data = heap;
      s.targets.heap.capacity = 2 * k_inline_targets;
    } else if (s.count == s.targets.heap.capacity) {
      auto* heap = new Target*[std::size_t{s.count} * 2];
      std::memcpy(heap, s.targets.heap.data, s.count * sizeof(Target*));
      delete[] s.targets.heap.data;
      s.targets.heap.data = heap;
      s.targets.heap.capacity = s.count * 2;
    }
    s.targets.heap.data[s.count++] = t;
  }

  static void free_slot(Slot& s) noexcept {
    if (s.key_len > k_inline_key) delete[] s.key.heap;
    if (s.count > k_inline_targets) delete[] s.targets.heap.data;
  }

  // Backward shift (Knuth's Algorithm R): each entry after the hole, up to the next empty
  // slot, whose home is not between the hole and itself moves into the hole, which then moves
  // to where it was; so no probe sequence crosses an empty slot that was not there when its
  // entry went in. (Stopping at the first entry that sits at its home is right only for Robin
  // Hood order; here a later entry of the same run may still have its home before the hole.)
  void erase_slot(std::size_t i) noexcept {
    free_slot(slots_[i]);
    std::size_t hole = i;
    for (std::size_t k = (hole + 1) & mask_; ctrl_[k] != 0; k = (k + 1) & mask_) {
      const std::size_t home = slots_[k].hash & mask_;
      if (((k - home) & mask_) < ((k - hole) & mask_)) continue;  // home in (hole, k]: stays
      std::memcpy(static_cast<void*>(&slots_[hole]), &slots_[k], sizeof(Slot));
      ctrl_[hole] = ctrl_[k];
      hole = k;
    }
    ctrl_[hole] = 0;
    --size_;
  }

  void grow() { rehash(capacity() == 0 ? k_min_capacity : capacity() * 2); }

  void rehash(std::size_t cap) {
    auto slots = std::unique_ptr<Slot[]>(new Slot[cap]);
    auto ctrl = std::make_unique<std::uint8_t[]>(cap);  // zeroed: all empty
    const std::size_t mask = cap - 1;
    for (std::size_t i = 0; i < capacity(); ++i) {
      if (ctrl_[i] == 0) continue;
      std::size_t j = slots_[i].hash & mask;
      while (ctrl[j] != 0) j = (j + 1) & mask;
      std::memcpy(static_cast<void*>(&slots[j]), &slots_[i], sizeof(Slot));  // owned pointers move with it
      ctrl[j] = ctrl_[i];
    }
    slots_ = std::move(slots);
    ctrl_ = std::move(ctrl);
    mask_ = mask;
  }

  void clear() noexcept {
    for (std::size_t i = 0; i < capacity(); ++i)
      if (ctrl_[i] != 0) free_slot(slots_[i]);
  }

  [[no_unique_address]] Hash hash_{};
  std::unique_ptr<Slot[]> slots_;
  std::unique_ptr<std::uint8_t[]> ctrl_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
  std::vector<Target*> everyone_;
};

}  // namespace tracecast::detail
