// The KV block pool and prefix cache (kv/): exact block ids, eviction order, reference counts and
// hit counts, in the spirit of vLLM's test_prefix_caching.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "kv/block_pool.h"
#include "kv/kv_manager.h"

namespace infera::kv {
namespace {

std::vector<int32_t> iota_tokens(int32_t n, int32_t first = 0) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), first);
  return t;
}

TEST(BlockPool, AllocatesFromTheHeadAndFreesToTheTail) {
  BlockPool pool(6, true);  // block 0 is the null block
  EXPECT_EQ(pool.num_free(), 5);
  EXPECT_EQ(pool.free_list(), (std::vector<int32_t>{1, 2, 3, 4, 5}));
  const auto a = pool.allocate(2);
  EXPECT_EQ(a, (std::vector<int32_t>{1, 2}));
  const auto b = pool.allocate(1);
  EXPECT_EQ(b, (std::vector<int32_t>{3}));
  EXPECT_EQ(pool.num_free(), 2);
  EXPECT_DOUBLE_EQ(pool.usage(), 3.0 / 5.0);
  pool.free(std::vector<int32_t>{2, 1});  // tail first
  EXPECT_EQ(pool.free_list(), (std::vector<int32_t>{4, 5, 2, 1}));
  EXPECT_EQ(pool.allocate(3), (std::vector<int32_t>{4, 5, 2}));
  pool.free(b);
  EXPECT_EQ(pool.free_list(), (std::vector<int32_t>{1, 3}));
}

TEST(BlockPool, ReferenceCountsKeepSharedBlocksInUse) {
  BlockPool pool(4, true);
  const auto a = pool.allocate(1);
  pool.touch(a);  // a second user
  EXPECT_EQ(pool.block(a[0]).ref_cnt, 2);
  pool.free(a);
  EXPECT_EQ(pool.num_free(), 2);  // still held once
  pool.free(a);
  EXPECT_EQ(pool.num_free(), 3);
  EXPECT_EQ(pool.free_list().back(), a[0]);
}

TEST(BlockPool, CachedFreeBlocksStayFindableUntilEvicted) {
  BlockPool pool(4, true);  // usable blocks 1, 2, 3
  const auto a = pool.allocate(2);
  pool.cache(a[0], 111);
  pool.cache(a[1], 222);
  pool.free(std::vector<int32_t>{a[1], a[0]});
  EXPECT_EQ(pool.lookup(111), a[0]);
  EXPECT_EQ(pool.lookup(222), a[1]);
  // Touching a cached free block takes it off the free list without losing its hash.
  pool.touch(std::vector<int32_t>{a[0]});
  EXPECT_EQ(pool.free_list(), (std::vector<int32_t>{3, 2}));
  EXPECT_EQ(pool.lookup(111), a[0]);
  // Allocation evicts the least recently freed block first (3 is uncached, then 2 = hash 222).
  EXPECT_EQ(pool.allocate(1), (std::vector<int32_t>{3}));
  EXPECT_EQ(pool.lookup(222), 2);
  EXPECT_EQ(pool.allocate(1), (std::vector<int32_t>{2}));
  EXPECT_FALSE(pool.lookup(222).has_value());
  EXPECT_EQ(pool.lookup(111), 1);
}

TEST(BlockPool, DuplicateContentKeepsTheFirstBlock) {
  BlockPool pool(4, true);
  const auto a = pool.allocate(2);
  pool.cache(a[0], 7);
  pool.cache(a[1], 7);
  EXPECT_EQ(pool.lookup(7), a[0]);
  EXPECT_FALSE(pool.block(a[1]).has_hash);
}

TEST(BlockPool, DisabledCachingNeverHits) {
  BlockPool pool(4, false);
  const auto a = pool.allocate(1);
  pool.cache(a[0], 5);
  EXPECT_FALSE(pool.lookup(5).has_value());
}

TEST(BlockHash, ChainsParentTokensAndExtraKey) {
  const auto t = iota_tokens(4);
  const BlockHash h = hash_block(0, t, 0);
  EXPECT_EQ(h, hash_block(0, t, 0));
  EXPECT_NE(h, hash_block(1, t, 0));
  EXPECT_NE(h, hash_block(0, t, 9));
  auto u = t;
  u[3] = 99;
  EXPECT_NE(h, hash_block(0, u, 0));
}

TEST(KvManager, PrefixHitCoversFullBlocksButNeverTheLastToken) {
  KvManager kv(11, 4, true);  // 10 usable blocks of 4 tokens
  const auto prompt = iota_tokens(10);  // blocks [0..3] [4..7] + 2 tokens
  SeqBlocks a;
  auto hit = kv.find_cached_prefix(a, prompt);
  EXPECT_EQ(hit.num_tokens, 0);
  ASSERT_TRUE(kv.allocate(a, 10, &hit));
  EXPECT_EQ(a.table, (std::vector<int32_t>{1, 2, 3}));
  kv.cache_full_blocks(a, prompt, 10);
  EXPECT_EQ(a.num_cached_blocks, 2);

  // Same prompt: both full blocks hit; the 2 tail tokens are computed into a fresh block.
  SeqBlocks b;
  hit = kv.find_cached_prefix(b, prompt);
  EXPECT_EQ(hit.blocks, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(hit.num_tokens, 8);
  ASSERT_TRUE(kv.allocate(b, 10, &hit));
  EXPECT_EQ(b.table, (std::vector<int32_t>{1, 2, 4}));
  EXPECT_EQ(kv.pool().block(1).ref_cnt, 2);

  // A prompt of exactly 8 tokens hits only the first block (its last token must be computed).
  SeqBlocks c;
  const auto eight = iota_tokens(8);
  hit = kv.find_cached_prefix(c, eight);
  EXPECT_EQ(hit.blocks, (std::vector<int32_t>{1}));

  // A different salt sees nothing.
  SeqBlocks d;
  d.extra_key = 42;
  EXPECT_EQ(kv.find_cached_prefix(d, prompt).num_tokens, 0);

  // A different second block hits only the first.
  auto other = prompt;
  other[5] = 1000;
  SeqBlocks e;
  EXPECT_EQ(kv.find_cached_prefix(e, other).blocks, (std::vector<int32_t>{1}));
}

TEST(KvManager, FreedBlocksAreEvictedTailFirstAndStillHitUntilThen) {
  KvManager kv(5, 2, true);  // 4 usable blocks of 2
  const auto p = iota_tokens(7);
  SeqBlocks a;
  ASSERT_TRUE(kv.allocate(a, 7));
  EXPECT_EQ(a.table, (std::vector<int32_t>{1, 2, 3, 4}));
  kv.cache_full_blocks(a, p, 7);  // blocks 1, 2, 3 full
  kv.free(a);
  EXPECT_TRUE(a.table.empty());
  EXPECT_EQ(kv.pool().free_list(), (std::vector<int32_t>{4, 3, 2, 1}));
  EXPECT_DOUBLE_EQ(kv.usage(), 0.0);
  // One new block evicts block 4 (uncached), the next one block 3 (the prefix's tail).
  SeqBlocks x;
  ASSERT_TRUE(kv.allocate(x, 4));
  EXPECT_EQ(x.table, (std::vector<int32_t>{4, 3}));
  SeqBlocks b;
  const auto hit = kv.find_cached_prefix(b, p);
  EXPECT_EQ(hit.blocks, (std::vector<int32_t>{1, 2}));
}

TEST(KvManager, AllocationIsAllOrNothing) {
  KvManager kv(4, 4, true);  // 3 usable blocks
  SeqBlocks a, b;
  ASSERT_TRUE(kv.allocate(a, 8));
  EXPECT_FALSE(kv.allocate(b, 8));  // needs 2, 1 free
  EXPECT_TRUE(b.table.empty());
  EXPECT_EQ(kv.pool().num_free(), 1);
  ASSERT_TRUE(kv.allocate(a, 9));  // grows by one block
  EXPECT_EQ(a.table.size(), 3u);
  EXPECT_FALSE(kv.allocate(a, 13));
  EXPECT_EQ(a.table.size(), 3u);
}

TEST(KvManager, ReusingAFreeCachedBlockCountsAgainstTheFreeBlocks) {
  KvManager kv(4, 2, true);  // 3 usable blocks of 2
  const auto p = iota_tokens(5);
  SeqBlocks a;
  ASSERT_TRUE(kv.allocate(a, 5));
  kv.cache_full_blocks(a, p, 5);
  kv.free(a);  // 3 free, 2 of them cached
  SeqBlocks b;
  auto hit = kv.find_cached_prefix(b, p);
  ASSERT_EQ(hit.blocks.size(), 2u);
  // 5 tokens: 2 hit blocks + 1 new; the pool has exactly that.
  ASSERT_TRUE(kv.allocate(b, 5, &hit));
  EXPECT_EQ(kv.pool().num_free(), 0);
  kv.free(b);
  EXPECT_EQ(kv.pool().num_free(), 3);
}

}  // namespace
}  // namespace infera::kv
