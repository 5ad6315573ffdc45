// The batching scheduler without a model: token budgets, chunked prefill, max_num_seqs, FCFS,
// preemption when blocks run out, prefix-cache admission, and blocks returning on removal.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "engine/scheduler.h"

namespace infera {
namespace {

SeqState make_seq(int32_t n, int32_t first = 0) {
  SeqState s;
  s.tokens.resize(static_cast<size_t>(n));
  std::iota(s.tokens.begin(), s.tokens.end(), first);
  return s;
}

SchedulerConfig config(int64_t budget, int64_t seqs, int32_t blocks, int32_t bs = 4) {
  SchedulerConfig c;
  c.max_num_batched_tokens = budget;
  c.max_num_seqs = seqs;
  c.num_blocks = blocks;
  c.block_size = bs;
  return c;
}

// Runs one step as the engine does: the chunks are "computed", completing ones get a token.
SchedulerOutput step(Scheduler& sch, int32_t next_token = 7) {
  SchedulerOutput out = sch.schedule();
  sch.step_done(out);
  for (const auto& c : out.chunks)
    if (c.completes) c.seq->tokens.push_back(next_token);
  return out;
}

TEST(Scheduler, ChunksLongPromptsWithinTheTokenBudget) {
  Scheduler sch(config(8, 4, 64));
  SeqState a = make_seq(20);
  sch.add(&a);
  auto o = step(sch);
  ASSERT_EQ(o.chunks.size(), 1u);
  EXPECT_EQ(o.chunks[0].start, 0);
  EXPECT_EQ(o.chunks[0].num_new, 8);
  EXPECT_FALSE(o.chunks[0].completes);
  EXPECT_EQ(a.num_computed, 8);
  o = step(sch);
  EXPECT_EQ(o.chunks[0].start, 8);
  EXPECT_EQ(o.chunks[0].num_new, 8);
  o = step(sch);
  EXPECT_EQ(o.chunks[0].num_new, 4);
  EXPECT_TRUE(o.chunks[0].completes);
  EXPECT_EQ(a.tokens.size(), 21u);
  o = step(sch);  // decode
  EXPECT_EQ(o.chunks[0].start, 20);
  EXPECT_EQ(o.chunks[0].num_new, 1);
  EXPECT_TRUE(o.chunks[0].completes);
}

TEST(Scheduler, RunningDecodesComeFirstThenWaitingPromptsShareTheBudget) {
  Scheduler sch(config(10, 8, 64));
  SeqState a = make_seq(3), b = make_seq(12, 100), c = make_seq(5, 200);
  sch.add(&a);
  step(sch);  // a prefilled and sampled
  sch.add(&b);
  sch.add(&c);
  auto o = step(sch);
  ASSERT_EQ(o.chunks.size(), 2u);
  EXPECT_EQ(o.chunks[0].seq, &a);
  EXPECT_EQ(o.chunks[0].num_new, 1);
  EXPECT_EQ(o.chunks[1].seq, &b);
  EXPECT_EQ(o.chunks[1].num_new, 9);  // the rest of the budget
  EXPECT_EQ(o.num_tokens, 10);
  o = step(sch);
  ASSERT_EQ(o.chunks.size(), 3u);  // a decode, b's last 3 tokens, then c's 5 within 10 - 4
  EXPECT_EQ(o.chunks[1].num_new, 3);
  EXPECT_TRUE(o.chunks[1].completes);
  EXPECT_EQ(o.chunks[2].seq, &c);
  EXPECT_EQ(o.chunks[2].num_new, 5);
  EXPECT_EQ(sch.num_running(), 3);
  EXPECT_EQ(sch.num_waiting(), 0);
}

TEST(Scheduler, MaxNumSeqsBoundsTheRunningSet) {
  Scheduler sch(config(100, 2, 64));
  SeqState s[3] = {make_seq(2), make_seq(2, 10), make_seq(2, 20)};
  for (auto& x : s) sch.add(&x);
  auto o = step(sch);
  EXPECT_EQ(o.chunks.size(), 2u);
  EXPECT_EQ(sch.num_waiting(), 1);
  sch.remove(&s[0]);
  o = step(sch);
  ASSERT_EQ(o.chunks.size(), 2u);
  EXPECT_EQ(o.chunks[1].seq, &s[2]);
}

TEST(Scheduler, PreemptsTheNewestRequestWhenBlocksRunOut) {
  // 4 usable blocks of 4 tokens. a and b take 2 blocks each; a's growth preempts b.
  Scheduler sch(config(64, 8, 5));
  SeqState a = make_seq(7), b = make_seq(8, 100);
  sch.add(&a);
  sch.add(&b);
  auto o = step(sch);
  ASSERT_EQ(o.chunks.size(), 2u);
  EXPECT_EQ(sch.kv().pool().num_free(), 0);
  // a: 8 tokens fit its 2 blocks; b (8 computed, 9 tokens) needs a third block: b preempts itself.
  o = step(sch);
  ASSERT_EQ(o.chunks.size(), 1u);
  EXPECT_EQ(o.chunks[0].seq, &a);
  ASSERT_EQ(o.preempted.size(), 1u);
  EXPECT_EQ(o.preempted[0], &b);
  EXPECT_EQ(b.num_computed, 0);
  EXPECT_EQ(b.num_preemptions, 1);
  EXPECT_EQ(sch.num_waiting(), 1);
  // a takes a third block; b (one prefix block still cached) would need two more: not admitted.
  o = step(sch);
  ASSERT_EQ(o.chunks.size(), 1u);
  EXPECT_EQ(o.chunks[0].seq, &a);
  sch.remove(&a);
  o = step(sch);  // b is recomputed: its first block from the prefix cache, 5 tokens computed
  ASSERT_EQ(o.chunks.size(), 1u);
  EXPECT_EQ(o.chunks[0].seq, &b);
  EXPECT_TRUE(o.chunks[0].completes);
  EXPECT_EQ(o.chunks[0].start, 4);
  EXPECT_EQ(o.chunks[0].num_new, 5);
  EXPECT_EQ(sch.num_preemptions(), 1);
}

TEST(Scheduler, AdmitsFromThePrefixCacheAndCountsHits) {
  Scheduler sch(config(64, 8, 32));
  SeqState a = make_seq(10);
  sch.add(&a);
  step(sch);
  sch.remove(&a);
  EXPECT_EQ(sch.kv().pool().num_free(), 31);
  SeqState b = make_seq(10);
  sch.add(&b);
  auto o = step(sch);
  ASSERT_EQ(o.chunks.size(), 1u);
  EXPECT_EQ(o.chunks[0].start, 8);  // two full blocks of 4 from the cache
  EXPECT_EQ(o.chunks[0].num_new, 2);
  EXPECT_EQ(sch.kv().queries(), 20);
  EXPECT_EQ(sch.kv().hits(), 8);
}

TEST(Scheduler, RemovingEveryRequestReturnsEveryBlock) {
  Scheduler sch(config(16, 4, 40));
  std::vector<SeqState> s;
  for (int i = 0; i < 6; ++i) s.push_back(make_seq(5 + 3 * i, 50 * i));
  for (auto& x : s) sch.add(&x);
  for (int k = 0; k < 5; ++k) step(sch);
  for (auto& x : s) sch.remove(&x);
  EXPECT_EQ(sch.kv().pool().num_free(), 39);
  EXPECT_DOUBLE_EQ(sch.kv().usage(), 0.0);
  EXPECT_EQ(sch.num_running() + sch.num_waiting(), 0);
}

}  // namespace
}  // namespace infera
