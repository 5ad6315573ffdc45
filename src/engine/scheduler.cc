#include "engine/scheduler.h"

#include <algorithm>

#include "base/check.h"

namespace infera {

Scheduler::Scheduler(const SchedulerConfig& cfg)
    : cfg_(cfg), kv_(cfg.num_blocks, cfg.block_size, cfg.prefix_caching) {
  CHECK(cfg.max_num_batched_tokens > 0 && cfg.max_num_seqs > 0);
}

void Scheduler::add(SeqState* s) {
  CHECK(s->phase == SeqState::Phase::kNew && !s->tokens.empty());
  s->phase = SeqState::Phase::kWaiting;
  waiting_.push_back(s);
}

void Scheduler::remove(SeqState* s) {
  if (auto it = std::find(running_.begin(), running_.end(), s); it != running_.end()) running_.erase(it);
  if (auto it = std::find(waiting_.begin(), waiting_.end(), s); it != waiting_.end()) waiting_.erase(it);
  kv_.free(s->blocks);
  s->phase = SeqState::Phase::kDone;
}

void Scheduler::preempt(SeqState* s) {
  kv_.free(s->blocks);
  s->num_computed = 0;
  s->phase = SeqState::Phase::kWaiting;
  ++s->num_preemptions;
  ++preemptions_;
  waiting_.push_front(s);
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  int64_t budget = cfg_.max_num_batched_tokens;
  // Running requests, oldest first; the newest are preempted when blocks run out.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    SeqState* s = running_[i];
    const int64_t remaining = static_cast<int64_t>(s->tokens.size()) - s->num_computed;
    const int64_t num_new = std::min(remaining, budget);
    CHECK(num_new > 0);
    bool scheduled = false;
    for (;;) {
      if (kv_.allocate(s->blocks, s->num_computed + num_new)) {
        scheduled = true;
        break;
      }
      SeqState* victim = running_.back();
      running_.pop_back();
      preempt(victim);
      out.preempted.push_back(victim);
      if (victim == s) break;
    }
    if (!scheduled) break;  // s itself was the newest: nothing after it is left
    out.chunks.push_back({s, s->num_computed, num_new, num_new == remaining});
    budget -= num_new;
    ++i;
  }
  // Waiting requests, FCFS; none are admitted in a step that had to preempt.
  while (out.preempted.empty() && budget > 0 && !waiting_.empty() &&
         static_cast<int64_t>(running_.size()) < cfg_.max_num_seqs) {
    SeqState* s = waiting_.front();
    CHECK(s->num_computed == 0 && s->blocks.table.empty());
    kv::KvManager::Hit hit;
    if (!s->skip_prefix_cache) hit = kv_.find_cached_prefix(s->blocks, s->tokens);
    const int64_t total = static_cast<int64_t>(s->tokens.size());
    const int64_t num_new = std::min(total - hit.num_tokens, budget);
    if (!kv_.allocate(s->blocks, hit.num_tokens + num_new, &hit)) break;
    if (!s->skip_prefix_cache) kv_.record_query(total, hit.num_tokens);
    waiting_.pop_front();
    s->phase = SeqState::Phase::kRunning;
    s->num_computed = hit.num_tokens;
    running_.push_back(s);
    out.chunks.push_back({s, s->num_computed, num_new, hit.num_tokens + num_new == total});
    budget -= num_new;
  }
  out.num_tokens = cfg_.max_num_batched_tokens - budget;
  return out;
}

void Scheduler::step_done(const SchedulerOutput& out) {
  for (const ScheduledChunk& c : out.chunks) {
    SeqState* s = c.seq;
    if (s->phase != SeqState::Phase::kRunning) continue;  // removed meanwhile
    s->num_computed = c.start + c.num_new;
    kv_.cache_full_blocks(s->blocks, s->tokens, s->num_computed);
  }
}

}  // namespace infera
