// The pool of KV-cache blocks: pure bookkeeping (no tensors), deterministic.
//
// Block 0 is the null block (never handed out). Every other block is either in use (ref_cnt > 0)
// or on the free list. The free list is ordered for eviction (least recently freed at the head):
// allocation pops from the head, freeing appends to the tail. A free block may still hold the
// contents of a cached prefix (it has a hash); it stays findable by that hash until allocation
// evicts it, and `touch` takes it back off the free list when a new request reuses it.
//
//   BlockPool pool(/*num_blocks=*/1024, /*prefix_caching=*/true);
//   std::vector<int32_t> ids = pool.allocate(4);   // ref_cnt 1 each
//   pool.cache(ids[0], hash);                       // a full block's chained hash
//   pool.free(ids);                                 // back on the free list, still cached
//   if (auto id = pool.lookup(hash)) pool.touch({&*id, 1});
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace infera::kv {

using BlockHash = uint64_t;

struct Block {
  int32_t ref_cnt = 0;
  bool has_hash = false;
  BlockHash hash = 0;
  int32_t prev = -1, next = -1;  // free-list links (block ids), -1 at the ends or when not free
  bool in_free_list = false;
};

class BlockPool {
 public:
  BlockPool(int32_t num_blocks, bool prefix_caching);

  int32_t num_blocks() const { return static_cast<int32_t>(blocks_.size()); }  // including the null block
  static constexpr int32_t kNullBlock = 0;
  int32_t num_free() const { return num_free_; }  // allocatable now (free, cached or not)
  // Fraction of the usable blocks in use (0..1).
  double usage() const;
  bool prefix_caching() const { return prefix_caching_; }

  // n blocks from the head of the free list, each with ref_cnt 1; a cached one loses its hash.
  // Requires n <= num_free().
  std::vector<int32_t> allocate(int32_t n);
  // One reference more on each block; a free one leaves the free list.
  void touch(std::span<const int32_t> ids);
  // One reference less on each, in the order given; a block reaching 0 goes to the free-list tail
  // (callers pass a request's blocks tail first, so its last blocks are evicted first).
  void free(std::span<const int32_t> ids);
  // Marks a full, computed block as holding the content of `hash`. A hash that another block
  // already holds keeps pointing there (this block stays uncached).
  void cache(int32_t id, BlockHash hash);
  // The block holding `hash`, if any (in use or free).
  std::optional<int32_t> lookup(BlockHash hash) const;
  // Drops every cached hash of the free blocks (e.g. after the weights changed). False when some
  // cached block is still in use.
  bool reset_prefix_cache();

  const Block& block(int32_t id) const { return blocks_[static_cast<size_t>(id)]; }
  // Free-list order, head first (tests and debugging).
  std::vector<int32_t> free_list() const;

 private:
  void push_tail(int32_t id);
  void unlink(int32_t id);
  void evict(int32_t id);

  std::vector<Block> blocks_;
  int32_t head_ = -1, tail_ = -1, num_free_ = 0;
  bool prefix_caching_;
  std::unordered_map<BlockHash, int32_t> cached_;
};

}  // namespace infera::kv
