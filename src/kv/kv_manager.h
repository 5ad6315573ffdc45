// Per-request block tables over a BlockPool, with prefix caching by chained hashes of full blocks.
//
// A request's position p lives in block table[p / block_size] at offset p % block_size. A full
// block's hash chains its parent's hash, its tokens and the request's extra key (a cache salt, or
// anything else that changes the KV contents), so equal hashes mean equal KV contents up to and
// including that block. Only blocks whose KV has been computed are registered; a hit never covers
// the last token of a request (its logits must be computed).
//
//   KvManager kv(num_blocks, 16, /*prefix_caching=*/true);
//   SeqBlocks s;
//   KvManager::Hit hit = kv.find_cached_prefix(s, prompt);     // n tokens already in the cache
//   if (kv.allocate(s, prompt.size(), &hit)) { ... compute tokens hit.num_tokens.. ...
//     kv.cache_full_blocks(s, prompt, prompt.size()); }
//   kv.free(s);
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kv/block_pool.h"

namespace infera::kv {

struct SeqBlocks {
  std::vector<int32_t> table;      // block ids in position order
  std::vector<BlockHash> hashes;   // chained hashes of full blocks, computed lazily (kept across frees)
  int64_t num_cached_blocks = 0;   // table[0, n) are registered in the prefix cache
  uint64_t extra_key = 0;          // mixed into every block hash
};

// Chained hash of one full block.
BlockHash hash_block(BlockHash parent, std::span<const int32_t> tokens, uint64_t extra_key);

class KvManager {
 public:
  KvManager(int32_t num_blocks, int32_t block_size, bool prefix_caching);

  struct Hit {
    std::vector<int32_t> blocks;
    int64_t num_tokens = 0;  // blocks.size() * block_size
  };
  // The longest run of cached full blocks at the start of `tokens`, leaving at least the last
  // token uncached. Fills s.hashes as far as it looks.
  Hit find_cached_prefix(SeqBlocks& s, std::span<const int32_t> tokens);
  // Makes s.table cover positions [0, num_tokens): with s.table empty, `hit`'s blocks come first
  // (shared, one reference more); then new blocks. False, with nothing changed, when the pool
  // cannot supply them even by evicting cached free blocks.
  bool allocate(SeqBlocks& s, int64_t num_tokens, const Hit* hit = nullptr);
  // Registers the full blocks among the first num_computed positions of `tokens` (whose KV has
  // been written) in the prefix cache.
  void cache_full_blocks(SeqBlocks& s, std::span<const int32_t> tokens, int64_t num_computed);
  // Releases every block of s, tail first (its last blocks are evicted first); s.table empties.
  void free(SeqBlocks& s);

  // Prefix-cache statistics in tokens (vLLM's prefix_cache_queries / _hits).
  // Counted only with prefix caching on (vLLM records no prefix-cache statistics without it).
  void record_query(int64_t queried, int64_t hit) {
    if (pool_.prefix_caching()) queries_ += queried, hits_ += hit;
  }
  int64_t queries() const { return queries_; }
  int64_t hits() const { return hits_; }

  int64_t blocks_for(int64_t num_tokens) const { return (num_tokens + block_size_ - 1) / block_size_; }
  int32_t block_size() const { return block_size_; }
  const BlockPool& pool() const { return pool_; }
  BlockPool& pool() { return pool_; }
  double usage() const { return pool_.usage(); }

 private:
  BlockHash block_hash_at(SeqBlocks& s, std::span<const int32_t> tokens, int64_t i);

  BlockPool pool_;
  int32_t block_size_;
  int64_t queries_ = 0, hits_ = 0;
};

}  // namespace infera::kv
