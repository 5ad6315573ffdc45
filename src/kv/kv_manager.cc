#include "kv/kv_manager.h"

#include "base/check.h"

namespace infera::kv {

namespace {
uint64_t mix(uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}
}  // namespace

BlockHash hash_block(BlockHash parent, std::span<const int32_t> tokens, uint64_t extra_key) {
  uint64_t h = mix(parent + 0x9e3779b97f4a7c15ULL);
  h = mix(h ^ extra_key) + tokens.size();
  for (int32_t t : tokens) h = mix(h ^ (static_cast<uint64_t>(static_cast<uint32_t>(t)) + 0x9e3779b97f4a7c15ULL));
  return h;
}

KvManager::KvManager(int32_t num_blocks, int32_t block_size, bool prefix_caching)
    : pool_(num_blocks, prefix_caching), block_size_(block_size) {
  CHECK(block_size > 0);
}

BlockHash KvManager::block_hash_at(SeqBlocks& s, std::span<const int32_t> tokens, int64_t i) {
  while (static_cast<int64_t>(s.hashes.size()) <= i) {
    const int64_t b = static_cast<int64_t>(s.hashes.size());
    const BlockHash parent = b == 0 ? 0 : s.hashes.back();
    s.hashes.push_back(hash_block(parent, tokens.subspan(static_cast<size_t>(b * block_size_),
                                                         static_cast<size_t>(block_size_)), s.extra_key));
  }
  return s.hashes[static_cast<size_t>(i)];
}

KvManager::Hit KvManager::find_cached_prefix(SeqBlocks& s, std::span<const int32_t> tokens) {
  Hit hit;
  if (!pool_.prefix_caching() || tokens.empty()) return hit;
  const int64_t full = (static_cast<int64_t>(tokens.size()) - 1) / block_size_;
  for (int64_t i = 0; i < full; ++i) {
    auto id = pool_.lookup(block_hash_at(s, tokens, i));
    if (!id) break;
    hit.blocks.push_back(*id);
  }
  hit.num_tokens = static_cast<int64_t>(hit.blocks.size()) * block_size_;
  return hit;
}

bool KvManager::allocate(SeqBlocks& s, int64_t num_tokens, const Hit* hit) {
  const bool with_hit = hit && !hit->blocks.empty();
  CHECK(!with_hit || s.table.empty());
  const int64_t have = static_cast<int64_t>(s.table.size()) + (with_hit ? static_cast<int64_t>(hit->blocks.size()) : 0);
  const int64_t need = std::max<int64_t>(0, blocks_for(num_tokens) - have);
  int64_t available = pool_.num_free();
  if (with_hit)
    for (int32_t id : hit->blocks)
      if (pool_.block(id).ref_cnt == 0) --available;  // reusing it takes it off the free list
  if (need > available) return false;
  if (with_hit) {
    pool_.touch(hit->blocks);
    s.table = hit->blocks;
    s.num_cached_blocks = static_cast<int64_t>(hit->blocks.size());
  }
  for (int32_t id : pool_.allocate(static_cast<int32_t>(need))) s.table.push_back(id);
  return true;
}

void KvManager::cache_full_blocks(SeqBlocks& s, std::span<const int32_t> tokens, int64_t num_computed) {
  if (!pool_.prefix_caching()) return;
  const int64_t full = std::min<int64_t>(num_computed / block_size_, static_cast<int64_t>(s.table.size()));
  for (int64_t i = s.num_cached_blocks; i < full; ++i)
    pool_.cache(s.table[static_cast<size_t>(i)], block_hash_at(s, tokens, i));
  s.num_cached_blocks = std::max(s.num_cached_blocks, full);
}

void KvManager::free(SeqBlocks& s) {
  std::vector<int32_t> rev(s.table.rbegin(), s.table.rend());
  pool_.free(rev);
  s.table.clear();
  s.num_cached_blocks = 0;
}

}  // namespace infera::kv
