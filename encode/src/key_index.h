// Duplicate attribute keys, shared by both OTLP encoders (internal header).
//
// OTLP: "Attribute keys MUST be unique". Within one attribute list the first occurrence of a
// key wins; later ones are left out and counted. Keys are compared as the bytes the encoder
// already wrote into the batch buffer (escaped JSON text, or repaired UTF-8 for protobuf);
// both forms are canonical, so equal bytes <=> equal keys. Short lists are scanned linearly,
// long ones through an open-addressing index sized once at construction: no allocation per
// list, linear time. A list whose keys the producer promises distinct (SpanView::keys_unique)
// is trusted and not checked at all.
//
// The cut mark (detail::k_cut_mark) an encoder appends to a list with a cut value is asked
// for through the index too; in a trusted list the encoder looks for it in the list instead
// (mark_in()), so it is never written twice.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace tracecast::detail {

class KeyIndex {
 public:
  // True when `attrs` already holds an attribute named `key` (a trusted list's cut mark).
  template <class Attrs, class Key>
  [[nodiscard]] static bool mark_in(const Attrs& attrs, const Key& key) noexcept {
    for (const auto& a : attrs)
      if (a.key == key) return true;
    return false;
  }

  // Lists up to this long are scanned linearly.
  static constexpr std::size_t k_linear_max = 16;

  // Allocates room for max_keys keys (and the hash slots when lists can be long), once.
  explicit KeyIndex(std::size_t max_keys) {
    keys_.reserve(max_keys);
    if (max_keys > k_linear_max) {
      std::size_t slots = 64;
      while (slots < 2 * max_keys) slots *= 2;
      slots_.assign(slots, 0);
    }
  }

  // Starts a list of `count` attributes. Ends (and clears the index) when the returned guard
  // goes out of scope, whatever way the writer leaves.
  class List {
   public:
    // `trusted`: the caller knows the keys are distinct as written (SpanView::keys_unique and
    // no key cut): seen_or_add() answers false at once and records nothing.
    List(KeyIndex& index, std::size_t count, bool trusted = false) noexcept : index_(index) {
      index_.keys_.clear();
      index_.seen_bits_ = 0;
      index_.trusted_ = trusted;
      index_.hashed_ = !trusted && count > k_linear_max && !index_.slots_.empty();
    }
    ~List() {
      if (index_.hashed_)
        for (const auto& k : index_.keys_) index_.slots_[k.slot] = 0;
      index_.keys_.clear();
      index_.trusted_ = false;
    }
    List(const List&) = delete;
    List& operator=(const List&) = delete;

   private:
    KeyIndex& index_;
  };

  // True when an equal key is already in the list; otherwise records this one (its bytes
  // must stay where they are until the list ends). At most max_keys keys per list.
  [[nodiscard]] bool seen_or_add(const char* key, std::size_t n) noexcept { return seen_or_add(key, n, key); }
  // The same, with the fingerprint read from `same_bytes`: n bytes equal to the key's, e.g.
  // the input it was copied from (still in cache, and no store-forwarding stall from reading
  // back bytes just written in overlapping pieces).
  [[nodiscard]] bool seen_or_add(const char* key, std::size_t n, const char* same_bytes) noexcept {
    if (trusted_) return false;
    std::size_t slot = 0;
    const std::uint64_t fp = fingerprint(same_bytes, n);
    if (!hashed_) {
      // One bit per fingerprint class: a key whose bit is clear is new without a scan (with
      // the ~20 keys of a span, three lookups in four).
      const std::uint64_t bit = std::uint64_t{1} << ((fp * 0x9E3779B97F4A7C15ull) >> 58);
      if ((seen_bits_ & bit) != 0) {
        for (const auto& k : keys_)
          if (k.fp == fp && k.size == n && std::memcmp(k.data, key, n) == 0) return true;
      }
      seen_bits_ |= bit;
    } else {
      const std::size_t mask = slots_.size() - 1;
      slot = hash(same_bytes, n) & mask;
      while (slots_[slot] != 0) {
        const auto& k = keys_[slots_[slot] - 1];
        if (k.size == n && std::memcmp(k.data, key, n) == 0) return true;
        slot = (slot + 1) & mask;
      }
    }
    keys_.push_back({key, n, slot, fp});  // capacity reserved at construction
    if (hashed_) slots_[slot] = static_cast<std::uint32_t>(keys_.size());
    return false;
  }

 private:
  struct KeyRef {
    const char* data;
    std::size_t size;
    std::size_t slot;  // its slot in slots_ (long lists only)
    std::uint64_t fp;  // fingerprint(): most unequal keys differ here, without a memcmp
  };
  // The key's first and last 8 bytes (overlapping loads) and its length, mixed: keys sharing
  // a long prefix ("gen_ai.usage.") still differ in it.
  static std::uint64_t fingerprint(const char* p, std::size_t n) noexcept {
    std::uint64_t a = 0, b = 0;
    if (n >= 8) {
      std::memcpy(&a, p, 8);
      std::memcpy(&b, p + n - 8, 8);
    } else if (n >= 4) {
      std::uint32_t x, y;
      std::memcpy(&x, p, 4);
      std::memcpy(&y, p + n - 4, 4);
      a = x;
      b = y;
    } else {
      for (std::size_t i = 0; i < n; ++i) a = a << 8 | static_cast<unsigned char>(p[i]);
    }
    return a ^ (b * 0x9E3779B97F4A7C15ull) ^ (static_cast<std::uint64_t>(n) << 56);
  }
  // Every byte of the key, 8 at a time (the last word overlapping): long lists of long keys
  // (a span with several attribute conventions: ~60 keys of ~30 bytes) made a byte-at-a-time
  // FNV-1a half of the encoder's time. Keys differing anywhere land apart.
  static std::uint64_t hash(const char* p, std::size_t n) noexcept {
    constexpr std::uint64_t k = 0x9E3779B97F4A7C15ull;
    std::uint64_t h = static_cast<std::uint64_t>(n) * k;
    auto mix = [&h](std::uint64_t w) {
      h = (h ^ w) * k;
      h ^= h >> 32;
    };
    if (n < 8) {
      std::uint64_t w = 0;
      for (std::size_t i = 0; i < n; ++i) w = w << 8 | static_cast<unsigned char>(p[i]);
      mix(w);
      return h;
    }
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      std::uint64_t w;
      std::memcpy(&w, p + i, 8);
      mix(w);
    }
    if (i != n) {
      std::uint64_t w;
      std::memcpy(&w, p + n - 8, 8);
      mix(w);
    }
    return h;
  }

  std::vector<KeyRef> keys_;
  std::vector<std::uint32_t> slots_;  // index into keys_ + 1; 0 = free; all zero between lists
  std::uint64_t seen_bits_ = 0;       // linear lists: fingerprint classes present
  bool hashed_ = false;
  bool trusted_ = false;  // this list's keys are known distinct: nothing to check
};

}  // namespace tracecast::detail
