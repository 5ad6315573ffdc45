// The batching scheduler (vLLM v1 style): each step spends a token budget on the running requests
// first (one decode token each, or the next chunk of an unfinished prompt), then admits waiting
// requests FCFS with chunks of their prompts, up to max_num_seqs running. A running request that
// no longer finds KV blocks preempts the most recently admitted one (its blocks are freed; it goes
// back to the head of the waiting queue and is recomputed later, mostly from the prefix cache).
// Pure bookkeeping over kv/: no model, no threads, deterministic.
//
//   Scheduler sch(cfg);
//   sch.add(&seq);
//   SchedulerOutput out = sch.schedule();     // chunks: (seq, num_new tokens)
//   ... run the model on out ...
//   sch.step_done(out);                       // advances num_computed, caches full blocks
//   seq.tokens.push_back(sampled);            // for chunks with completes == true
//   sch.remove(&seq);                         // finished or aborted: blocks freed at once
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "kv/kv_manager.h"

namespace infera {

struct SeqState {
  std::vector<int32_t> tokens;  // prompt, then the generated tokens
  int64_t num_computed = 0;     // leading tokens whose K/V are in the cache
  kv::SeqBlocks blocks;
  enum class Phase { kNew, kWaiting, kRunning, kDone } phase = Phase::kNew;
  int64_t num_preemptions = 0;
  bool skip_prefix_cache = false;  // never reads cached blocks (it needs every prompt position's logits)
};

struct ScheduledChunk {
  SeqState* seq = nullptr;
  int64_t start = 0;    // first position of the chunk (== seq->num_computed when scheduled)
  int64_t num_new = 0;  // tokens [start, start + num_new) are computed this step
  bool completes = false;  // the chunk reaches the last token: its logits give the next token
};

struct SchedulerOutput {
  std::vector<ScheduledChunk> chunks;  // running requests first, then newly admitted ones
  int64_t num_tokens = 0;
  std::vector<SeqState*> preempted;
};

struct SchedulerConfig {
  int64_t max_num_batched_tokens = 512;
  int64_t max_num_seqs = 16;
  int32_t num_blocks = 0;  // including the null block
  int32_t block_size = 16;
  bool prefix_caching = true;
};

class Scheduler {
 public:
  explicit Scheduler(const SchedulerConfig& cfg);

  void add(SeqState* s);     // joins the waiting queue's tail
  void remove(SeqState* s);  // finished or aborted: leaves the queues, its blocks are freed
  SchedulerOutput schedule();
  void step_done(const SchedulerOutput& out);

  int64_t num_running() const { return static_cast<int64_t>(running_.size()); }
  int64_t num_waiting() const { return static_cast<int64_t>(waiting_.size()); }
  int64_t num_preemptions() const { return preemptions_; }
  // Tokens a request may hold at most (all blocks but the null one).
  int64_t capacity_tokens() const { return static_cast<int64_t>(cfg_.num_blocks - 1) * cfg_.block_size; }
  const kv::KvManager& kv() const { return kv_; }
  const SchedulerConfig& config() const { return cfg_; }

 private:
  void preempt(SeqState* s);

  SchedulerConfig cfg_;
  kv::KvManager kv_;
  std::vector<SeqState*> running_;  // admission order
  std::deque<SeqState*> waiting_;
  int64_t preemptions_ = 0;
};

}  // namespace infera
