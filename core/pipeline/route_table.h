// Which destinations take an account's requests: a flat open-addressing table from account to
// its (few) destinations, plus the destinations that take every account's requests.
//
// Why flat: routing one request through a node-based map touched the bucket, the account's
// node, the vector's heap block and then each destination, three dependent cache misses before
// the first destination (16% of the worker at 10,000 accounts, README "CPU at gateway scale").
// Here an account is one 64-byte entry holding its hash, its key (inline up to 24 bytes) and up
// to three destination pointers; a lookup reads a 4-byte bucket (16 to a line; the array is
// 4-9 B per account, so it mostly stays in cache) and then that one entry line.
//
//   bucket (4 B): tag (8 high bits of the hash) | entry index + 1 (24 bits); 0 = empty
//   entry (64 B, one cache line), in pages of 128 that never move:
//   +--------+-------+-------+--------------------------+-----------------------------+
//   | hash 8 | len 4 | cnt 4 | key: 24 B inline, or ptr | 3 targets inline, or        |
//   |        |       |       | to the heap copy         | {heap array, capacity}      |
//   +--------+-------+-------+--------------------------+-----------------------------+
//
// Entries are dense (entry i lives in page i / 128), so memory is ~64 B per account plus the
// buckets, whatever the load factor; growth rebuilds only the buckets (from the stored
// hashes), never moves an entry. Buckets use linear probing, at most 7/8 full, and deletion by
// backward shift (no tombstones: a lookup that meets an empty bucket is done); a removed
// entry's place is taken by the last entry. Adding is O(1) amortised, removing O(destinations
// of that account) plus the shift; lookups allocate nothing. At most 2^24 - 1 accounts.
// Single-threaded (the pipeline worker owns it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
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
  static constexpr std::size_t k_max_accounts = (std::size_t{1} << 24) - 1;

  RouteTable() = default;
  explicit RouteTable(Hash hash) : hash_(std::move(hash)) {}
  RouteTable(const RouteTable&) = delete;
  RouteTable& operator=(const RouteTable&) = delete;
  ~RouteTable() {
    for (std::size_t e = 0; e < size_; ++e) free_entry(entry(e));
  }

  // Throws std::length_error past k_max_accounts (and std::bad_alloc).
  void add(std::string_view account, Target* t) {
    if (account.empty()) {
      everyone_.push_back(t);
      return;
    }
    const std::uint64_t h = hash_(account);
    std::size_t b = 0;
    if (find(account, h, b)) {
      push_target(entry(index_of(buckets_[b])), t);
      return;
    }
    if (size_ == k_max_accounts) throw std::length_error("tracecast: more than 2^24 - 1 accounts in the route table");
    if (size_ == pages_.size() * k_page) pages_.push_back(std::make_unique<Entry[]>(k_page));
    if ((size_ + 1) * 8 > bucket_count() * 7) {
      rehash(bucket_count() == 0 ? k_min_buckets : bucket_count() * 2);
      b = free_bucket_for(h);
    }
    // find() stopped at the first empty bucket of the probe sequence: ours.
    Entry& s = entry(size_);
    s.hash = h;
    s.key_len = static_cast<std::uint32_t>(account.size());
    s.count = 0;
    if (account.size() <= k_inline_key) {
      std::memcpy(s.key.bytes, account.data(), account.size());
    } else {
      s.key.heap = new char[account.size()];
      std::memcpy(s.key.heap, account.data(), account.size());
    }
    buckets_[b] = bucket(h, size_);
    ++size_;
    push_target(s, t);
  }

  // Removes t from the account's list (absent ones are ignored); an account left with none
  // gives its entry and bucket back.
  void remove(std::string_view account, Target* t) {
    if (account.empty()) {
      std::erase(everyone_, t);
      return;
    }
    std::size_t b = 0;
    if (size_ == 0 || !find(account, hash_(account), b)) return;
    Entry& s = entry(index_of(buckets_[b]));
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
    if (kept == 0) erase(b);
  }

  // The account's own destinations (empty when none), and the every-account ones.
  [[nodiscard]] List own(std::string_view account) const noexcept { return own(account, hash_(account)); }
  [[nodiscard]] std::span<Target* const> everyone() const noexcept { return everyone_; }

  // Many lookups at once (the worker's groups of requests), their misses overlapped: hash()
  // each account, prefetch_bucket() each hash, then prefetch_entry() each (reads the home
  // bucket, by then in cache, and asks for the entry it names when its tag matches: the
  // account's, unless it probed further), then own(account, hash), which hits the cache.
  [[nodiscard]] std::uint64_t hash(std::string_view account) const noexcept { return hash_(account); }
  void prefetch_bucket(std::uint64_t h) const noexcept {
    if (buckets_ != nullptr) __builtin_prefetch(&buckets_[h & mask_], 0, 3);
  }
  void prefetch_entry(std::uint64_t h) const noexcept {
    if (buckets_ == nullptr) return;
    const std::uint32_t v = buckets_[h & mask_];
    if (v != 0 && (v & 0xFF000000U) == tag_bits(h)) __builtin_prefetch(&entry(index_of(v)), 0, 3);
  }
  // own(account) with the account's hash() already computed.
  [[nodiscard]] List own(std::string_view account, std::uint64_t h) const noexcept {
    std::size_t b = 0;
    if (size_ == 0 || !find(account, h, b)) return {};
    const Entry& s = entry(index_of(buckets_[b]));
    return {s.count > k_inline_targets ? s.targets.heap.data : s.targets.inline_, s.count};
  }

  // Buckets for `accounts` accounts without a rehash.
  void reserve(std::size_t accounts) {
    std::size_t want = k_min_buckets;
    while (want * 7 < accounts * 8) want *= 2;
    if (want > bucket_count()) rehash(want);
  }

  [[nodiscard]] std::size_t accounts() const noexcept { return size_; }
  [[nodiscard]] std::size_t bucket_count() const noexcept { return buckets_ == nullptr ? 0 : mask_ + 1; }
  // The table's own heap bytes (buckets, entry pages, long keys, long lists, everyone's list).
  [[nodiscard]] std::size_t heap_bytes() const noexcept {
    std::size_t n = bucket_count() * sizeof(std::uint32_t) + pages_.capacity() * sizeof(pages_[0]) +
                    pages_.size() * k_page * sizeof(Entry) + everyone_.capacity() * sizeof(Target*);
    for (std::size_t e = 0; e < size_; ++e) {
      const Entry& s = entry(e);
      if (s.key_len > k_inline_key) n += s.key_len;
      if (s.count > k_inline_targets) n += s.targets.heap.capacity * sizeof(Target*);
    }
    return n;
  }
  // Probe distance of the account's bucket from its home bucket (tests); -1 when absent.
  [[nodiscard]] long probe_distance(std::string_view account) const noexcept {
    std::size_t b = 0;
    const std::uint64_t h = hash_(account);
    if (size_ == 0 || !find(account, h, b)) return -1;
    return static_cast<long>((b - (h & mask_)) & mask_);
  }

 private:
  static constexpr std::size_t k_min_buckets = 16;
  static constexpr std::size_t k_page = 128;  // entries per page: 8 KiB

  struct alignas(64) Entry {
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
  static_assert(sizeof(Entry) == 64);

  static std::uint32_t tag_bits(std::uint64_t h) noexcept { return static_cast<std::uint32_t>(h >> 56) << 24; }
  static std::uint32_t bucket(std::uint64_t h, std::size_t index) noexcept {
    return tag_bits(h) | static_cast<std::uint32_t>(index + 1);
  }
  static std::size_t index_of(std::uint32_t b) noexcept { return (b & 0xFFFFFFU) - 1; }
  static const char* key_of(const Entry& s) noexcept { return s.key_len <= k_inline_key ? s.key.bytes : s.key.heap; }
  static Target** targets_of(Entry& s) noexcept {
    return s.count > k_inline_targets ? s.targets.heap.data : s.targets.inline_;
  }
  Entry& entry(std::size_t i) noexcept { return pages_[i / k_page][i % k_page]; }
  const Entry& entry(std::size_t i) const noexcept { return pages_[i / k_page][i % k_page]; }

  // True with b = the account's bucket; false with b = the first empty bucket of its probe
  // sequence (where it would go; 0 when there are no buckets yet).
  bool find(std::string_view account, std::uint64_t h, std::size_t& b) const noexcept {
    if (buckets_ == nullptr) {
      b = 0;
      return false;
    }
    const std::uint32_t tag = tag_bits(h);
    for (std::size_t j = h & mask_;; j = (j + 1) & mask_) {
      const std::uint32_t v = buckets_[j];
      if (v == 0) {
        b = j;
        return false;
      }
      if ((v & 0xFF000000U) == tag) {
        const Entry& s = entry(index_of(v));
        if (s.hash == h && s.key_len == account.size() && std::memcmp(key_of(s), account.data(), account.size()) == 0) {
          b = j;
          return true;
        }
      }
    }
  }

  std::size_t free_bucket_for(std::uint64_t h) const noexcept {
    std::size_t j = h & mask_;
    while (buckets_[j] != 0) j = (j + 1) & mask_;
    return j;
  }

  static void push_target(Entry& s, Target* t) {
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

  static void free_entry(Entry& s) noexcept {
    if (s.key_len > k_inline_key) delete[] s.key.heap;
    if (s.count > k_inline_targets) delete[] s.targets.heap.data;
  }

  // Bucket b's account goes: its entry is freed and the last entry moves into its place (its
  // bucket is found by its hash and repointed), then the bucket is emptied by backward shift
  // (Knuth's Algorithm R): each bucket after the hole, up to the next empty one, whose home is
  // not between the hole and itself moves into the hole, which then moves to where it was; so
  // no probe sequence crosses an empty bucket that was not there when its entry went in.
  // (Stopping at the first bucket that sits at its home is right only for Robin Hood order.)
  void erase(std::size_t b) noexcept {
    const std::size_t gone = index_of(buckets_[b]);
    free_entry(entry(gone));
    const std::size_t last = size_ - 1;
    if (gone != last) {
      std::memcpy(static_cast<void*>(&entry(gone)), &entry(last), sizeof(Entry));  // owned pointers move with it
      const std::uint64_t h = entry(gone).hash;
      std::size_t j = h & mask_;
      while (buckets_[j] == 0 || index_of(buckets_[j]) != last) j = (j + 1) & mask_;
      buckets_[j] = bucket(h, gone);
    }
    --size_;
    if (size_ + k_page <= pages_.size() * k_page) pages_.pop_back();  // the last page is empty

    std::size_t hole = b;
    for (std::size_t k = (hole + 1) & mask_; buckets_[k] != 0; k = (k + 1) & mask_) {
      const std::size_t home = entry(index_of(buckets_[k])).hash & mask_;
      if (((k - home) & mask_) < ((k - hole) & mask_)) continue;  // home in (hole, k]: stays
      buckets_[hole] = buckets_[k];
      hole = k;
    }
    buckets_[hole] = 0;
  }

  // New buckets from the entries' stored hashes; the entries stay where they are.
  void rehash(std::size_t count) {
    auto buckets = std::make_unique<std::uint32_t[]>(count);  // zeroed: all empty
    const std::size_t mask = count - 1;
    for (std::size_t e = 0; e < size_; ++e) {
      const std::uint64_t h = entry(e).hash;
      std::size_t j = h & mask;
      while (buckets[j] != 0) j = (j + 1) & mask;
      buckets[j] = bucket(h, e);
    }
    buckets_ = std::move(buckets);
    mask_ = mask;
  }

  [[no_unique_address]] Hash hash_{};
  std::unique_ptr<std::uint32_t[]> buckets_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
  std::vector<std::unique_ptr<Entry[]>> pages_;
  std::vector<Target*> everyone_;
};

}  // namespace tracecast::detail
