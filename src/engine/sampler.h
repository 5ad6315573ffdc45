// Token sampling from one row of logits. Deterministic for a seed.
//
// Order (as vLLM and llama.cpp apply them): temperature 0 -> greedy (lowest id on ties);
// otherwise top-k, softmax(logits / temperature), top-p (smallest set with mass >= p), then a draw.
#pragma once

#include <cstdint>
#include <random>
#include <span>

namespace infera {

struct SamplingParams {
  float temperature = 0.0f;  // 0: greedy
  int32_t top_k = 0;         // 0 or <0: all
  float top_p = 1.0f;        // 1: all
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& p) : p_(p), rng_(p.seed) {}
  int32_t sample(std::span<const float> logits);

 private:
  SamplingParams p_;
  std::mt19937_64 rng_;
};

// Index of the largest value; the lowest index on ties.
int32_t argmax(std::span<const float> v);

}  // namespace infera
