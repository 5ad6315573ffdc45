// The engine thread: continuous batching. Each step the Scheduler picks the running requests'
// decode tokens and chunks of waiting prompts; the model runs them as one flattened batch over the
// paged KV cache; every request whose chunk reached its last token samples its next token with its
// own parameters and seeded generator, and its tokens stream back through a callback.
//
//   Generator g(model, opts);   // opts.max_model_len, KV cache size and type, budgets
//   auto job = g.submit(prompt_ids, params, [](const GenEvent& e) { ... });  // called on the engine thread
//   job->cancel();                                                             // from any thread
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "engine/structured_output.h"
#include "model/model.h"

namespace infera {

struct GenerationParams {
  SamplingParams sampling;          // temperature, top_k, top_p, seed
  bool has_seed = false;            // false: a fresh random seed per request
  float min_p = 0.0f;
  float presence_penalty = 0.0f;    // output tokens
  float frequency_penalty = 0.0f;   // output tokens
  float repetition_penalty = 1.0f;  // prompt and output tokens
  std::map<int32_t, float> logit_bias;
  int64_t max_tokens = 16;
  int64_t min_tokens = 0;  // EOS and stop tokens are masked until this many were generated
  bool ignore_eos = false;
  std::vector<int32_t> eos_ids;         // stop unless ignore_eos
  std::vector<int32_t> stop_token_ids;  // always stop (stop_reason = the id)
  std::vector<int32_t> allowed_token_ids;  // non-empty: sample only among these
  // Banned token sequences: a sequence's last token is masked whenever the output ends with the
  // rest of it (a one-token sequence always), as vLLM's bad_words.
  std::vector<std::vector<int32_t>> bad_words_ids;
  OutputConstraintFactory constraint;  // structured output (json_object, choice); empty: free text
  int32_t logprobs = -1;  // -1: none; k >= 0: the sampled token's log-prob and the top k alternatives
  // -1: none; k >= 0: each prompt token's log-prob (from the position before it) and the top k
  // there. Such a request computes its whole prompt: it never reads the prefix cache (as vLLM).
  int32_t prompt_logprobs = -1;
  uint64_t cache_salt = 0;  // prefix-cache isolation: requests share cached blocks only with equal salts
};

// Log-probabilities (natural log, of the model's raw distribution) of one generated token.
struct TokenLogprob {
  float logprob = 0;
  int64_t rank = 0;  // 1 + the ids more likely than it (ties count as more likely, as vLLM)
  std::vector<std::pair<int32_t, float>> top;  // the k most likely ids, most likely first
};

// Where a finished request's time went (vLLM's request metrics), in seconds.
struct RequestTiming {
  double queue = 0;      // submitted -> first scheduled
  double prefill = 0;    // first scheduled -> first token
  double decode = 0;     // first token -> last token
  double inference = 0;  // first scheduled -> last token
};

struct GenEvent {
  std::vector<int32_t> tokens;  // new tokens of this step (a stop token is included, flagged below)
  std::vector<TokenLogprob> logprobs;  // one per token when GenerationParams::logprobs >= 0
  // With GenerationParams::prompt_logprobs >= 0, on the first event: prompt tokens 1..n-1.
  std::vector<TokenLogprob> prompt_logprobs;
  bool finished = false;
  std::string finish_reason;  // "stop", "length", "abort" when finished
  int32_t stop_token = -1;    // the eos/stop token that ended it, else -1 (it is not text)
  bool stop_token_is_eos = false;
  std::string error;  // non-empty: the request failed
  std::optional<RequestTiming> timing;  // on the finishing event of a request that was scheduled
};

class GenerationJob {
 public:
  void cancel() { cancelled_.store(true); }
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class Generator;
  std::vector<int32_t> prompt_;
  GenerationParams params_;
  std::function<void(const GenEvent&)> sink_;
  std::atomic<bool> cancelled_{false};
  // Engine-thread state.
  SeqState seq_;
  std::vector<int32_t> output_;
  std::vector<TokenLogprob> prompt_lp_;  // by prompt position - 1, until sent with the first token
  std::unique_ptr<Sampler> sampler_;
  std::unique_ptr<OutputConstraint> constraint_;
  float temperature_ = 0;
  int64_t limit_ = 0;  // most tokens to generate
  using Clock = std::chrono::steady_clock;
  Clock::time_point submitted_, scheduled_, first_token_, last_token_;  // scheduled_: zero until then
};

struct GeneratorOptions {
  int64_t max_model_len = 2048;
  // 0: min(4 GiB, 40% of available memory, 2 x max_num_seqs sequences of max_model_len), at least one
  int64_t kv_cache_bytes = 0;
  DType kv_type = DType::F32;
  int32_t block_size = 16;
  int64_t max_num_batched_tokens = 512;
  int64_t max_num_seqs = 16;
  bool prefix_caching = true;
  // Whose threads sample a step's sequences in parallel (the model's backend); null: one by one.
  Backend* backend = nullptr;
};

// The KV cache a GeneratorOptions gives for a model.
struct KvPlan {
  int64_t num_blocks = 0;  // including the null block
  int64_t tokens = 0;      // (num_blocks - 1) * block_size
  int64_t bytes = 0;
  double max_concurrency = 0;  // tokens / max_model_len
};
// Fails when the cache cannot hold one max_model_len sequence, or the type does not fit the model.
Result<KvPlan> plan_kv_cache(const ModelConfig& c, const GeneratorOptions& o);

// Engine counters for /metrics (vLLM names in the server). Read from any thread.
struct GeneratorStats {
  std::atomic<int64_t> running{0}, waiting{0}, preemptions{0}, prefix_queries{0}, prefix_hits{0}, steps{0},
      batched_tokens{0};
  std::atomic<double> kv_usage{0};
  // Tokens per engine step (vLLM's iteration_tokens_total): counts per bucket of kIterationBuckets, +Inf last.
  static constexpr std::array<int64_t, 13> kIterationBuckets = {1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384};
  std::array<std::atomic<int64_t>, 14> iteration_counts{};
  std::atomic<int64_t> iteration_tokens{0};  // their sum
};

class Generator {
 public:
  // o must have passed plan_kv_cache.
  Generator(Model& model, const GeneratorOptions& o);
  ~Generator();  // ends every queued and running job with finish_reason "abort", joins
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  std::shared_ptr<GenerationJob> submit(std::vector<int32_t> prompt, GenerationParams params,
                                        std::function<void(const GenEvent&)> sink);
  int64_t n_ctx() const { return opts_.max_model_len; }
  int64_t running() const { return running_.load(); }  // queued + in-flight jobs
  // Ends every queued and running job with finish_reason "abort" at the next step (a shutdown's
  // drain that ran out of time); the engine keeps serving new jobs. Any thread.
  void abort_all();
  bool healthy() const { return healthy_.load(); }
  const GeneratorStats& stats() const { return stats_; }
  const KvPlan& kv_plan() const { return plan_; }
  const GeneratorOptions& options() const { return opts_; }

 private:
  void run();
  void admit(const std::shared_ptr<GenerationJob>& job);
  void step();
  // The next token of `job` from its logits row: masks, penalties, the draw and its log-probs.
  // Touches only the job and the row, so a step's sequences pick in parallel.
  struct Pick {
    bool ruled_out = false;  // no id is allowed: the request ends
    int32_t next = -1;
    std::vector<TokenLogprob> logprobs;
  };
  Pick pick_next(GenerationJob& job, std::span<float> logits);
  // Records the pick and tells the client (in step order); false when the job finished.
  bool commit_next(GenerationJob& job, Pick pick);
  void finish(GenerationJob& job, const GenEvent& e);

  Model& model_;
  GeneratorOptions opts_;
  KvPlan plan_;
  KvStore kv_;
  Scheduler sched_;
  std::vector<std::shared_ptr<GenerationJob>> active_;  // admitted to the scheduler
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<GenerationJob>> incoming_;
  bool stop_ = false;
  bool abort_all_ = false;  // under mu_
  std::atomic<int64_t> running_{0};
  std::atomic<bool> healthy_{true};
  GeneratorStats stats_;
  std::thread thread_;
};

// Log-prob of `token` under softmax(logits), floored at -9999, and the top k ids with theirs.
TokenLogprob token_logprob(std::span<const float> logits, int32_t token, int32_t k);

// Applies logit_bias, repetition / presence / frequency penalties (vLLM's definitions) in place.
void apply_penalties(const GenerationParams& p, const std::vector<int32_t>& prompt,
                     const std::vector<int32_t>& output, std::span<float> logits);

}  // namespace infera
