// Open-addressing index from token text to id over a token list it does not own (the list must
// outlive it and not change). Built once at load; looked up per merge at load and per piece for
// ignore_merges. A flat array of (hash tag, id) keeps lookups to about one cache miss.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace infera::tok {

class VocabIndex {
 public:
  void build(const std::vector<std::string>& tokens) {
    tokens_ = &tokens;
    size_t cap = 16;
    while (cap < 2 * tokens.size()) cap *= 2;
    slots_.assign(cap, Slot{0, -1});
    mask_ = cap - 1;
    for (size_t i = 0; i < tokens.size(); ++i) {
      const uint64_t h = hash(tokens[i]);
      for (size_t s = h & mask_;; s = (s + 1) & mask_) {
        if (slots_[s].id < 0) {
          slots_[s] = {static_cast<uint32_t>(h >> 32), static_cast<int32_t>(i)};
          break;
        }
        if (slots_[s].tag == static_cast<uint32_t>(h >> 32) && (*tokens_)[static_cast<size_t>(slots_[s].id)] == tokens[i])
          break;  // duplicate text: keep the lowest id
      }
    }
  }
  // Id of `text`, or -1.
  int32_t find(std::string_view text) const {
    if (slots_.empty()) return -1;
    const uint64_t h = hash(text);
    const uint32_t tag = static_cast<uint32_t>(h >> 32);
    for (size_t s = h & mask_;; s = (s + 1) & mask_) {
      const Slot& e = slots_[s];
      if (e.id < 0) return -1;
      if (e.tag == tag && (*tokens_)[static_cast<size_t>(e.id)] == text) return e.id;
    }
  }

 private:
  struct Slot {
    uint32_t tag;
    int32_t id;
  };
  static uint64_t hash(std::string_view s) {
    uint64_t h = 0xCBF29CE484222325ull ^ s.size();
    for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
    return h * 0x9E3779B97F4A7C15ull;
  }

  const std::vector<std::string>* tokens_ = nullptr;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace infera::tok
