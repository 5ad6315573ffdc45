// Open-addressing hash table from a token pair (left id, right id) to its merge rank and result.
// BPE looks up every adjacent pair, so this is the tokenizer's hottest structure: one multiply
// for the hash, linear probing over a flat power-of-two array.
#pragma once

#include <cstdint>
#include <vector>

namespace infera::tok {

class MergeTable {
 public:
  struct Entry {
    uint64_t key = kEmpty;  // left << 32 | right
    int32_t rank = 0;
    int32_t result = 0;
  };

  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    slots_.assign(cap, Entry{});
    mask_ = cap - 1;
    shift_ = 64 - __builtin_ctzll(cap);
  }
  // Keeps the first insertion of a pair (the lowest rank, as merges are added in rank order).
  void insert(int32_t left, int32_t right, int32_t rank, int32_t result) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const uint64_t k = key(left, right);
    for (size_t i = slot(k);; i = (i + 1) & mask_) {
      if (slots_[i].key == k) return;
      if (slots_[i].key == kEmpty) {
        slots_[i] = {k, rank, result};
        ++size_;
        return;
      }
    }
  }
  const Entry* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t k = key(left, right);
    for (size_t i = slot(k);; i = (i + 1) & mask_) {
      if (slots_[i].key == k) return &slots_[i];
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static uint64_t key(int32_t l, int32_t r) {
    return static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32 | static_cast<uint32_t>(r);
  }
  size_t slot(uint64_t k) const { return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> shift_); }
  void grow() {
    std::vector<Entry> old = std::move(slots_);
    reserve(old.empty() ? 8 : old.size());
    size_ = 0;
    for (const Entry& e : old)
      if (e.key != kEmpty) insert(static_cast<int32_t>(e.key >> 32), static_cast<int32_t>(e.key & 0xFFFFFFFF), e.rank, e.result);
  }

  std::vector<Entry> slots_;
  size_t mask_ = 0;
  int shift_ = 64;
  size_t size_ = 0;
};

}  // namespace infera::tok
