// The engine thread: runs generation requests one at a time (the batching scheduler replaces the
// loop in run(), nothing else) and streams their tokens back through a callback.
//
//   Generator g(model, n_ctx);
//   auto job = g.submit(prompt_ids, params, [](const GenEvent& e) { ... });  // called on the engine thread
//   job->cancel();                                                             // from any thread
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/sampler.h"
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
  int32_t logprobs = -1;  // -1: none; k >= 0: the sampled token's log-prob and the top k alternatives
};

// Log-probabilities (natural log, of the model's raw distribution) of one generated token.
struct TokenLogprob {
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // the k most likely ids, most likely first
};

struct GenEvent {
  std::vector<int32_t> tokens;  // new tokens of this step (a stop token is included, flagged below)
  std::vector<TokenLogprob> logprobs;  // one per token when GenerationParams::logprobs >= 0
  bool finished = false;
  std::string finish_reason;  // "stop", "length", "abort" when finished
  int32_t stop_token = -1;    // the eos/stop token that ended it, else -1 (it is not text)
  bool stop_token_is_eos = false;
  std::string error;  // non-empty: the request failed
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
};

class Generator {
 public:
  Generator(Model& model, int64_t n_ctx);
  ~Generator();  // cancels the running job, ends queued ones with finish_reason "abort", joins
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  std::shared_ptr<GenerationJob> submit(std::vector<int32_t> prompt, GenerationParams params,
                                        std::function<void(const GenEvent&)> sink);
  int64_t n_ctx() const { return n_ctx_; }
  int64_t running() const { return running_.load(); }  // queued + in-flight jobs
  bool healthy() const { return healthy_.load(); }

 private:
  void run();
  void generate(GenerationJob& job);

  Model& model_;
  int64_t n_ctx_;
  KvCache kv_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<GenerationJob>> queue_;
  std::shared_ptr<GenerationJob> current_;  // the job being generated (cancelled by the destructor)
  bool stop_ = false;
  std::atomic<int64_t> running_{0};
  std::atomic<bool> healthy_{true};
  std::thread thread_;
};

// Log-prob of `token` under softmax(logits), floored at -9999, and the top k ids with theirs.
TokenLogprob token_logprob(std::span<const float> logits, int32_t token, int32_t k);

// Applies logit_bias, repetition / presence / frequency penalties (vLLM's definitions) in place.
void apply_penalties(const GenerationParams& p, const std::vector<int32_t>& prompt,
                     const std::vector<int32_t>& output, std::span<float> logits);

}  // namespace infera
