// Token sampling from one row of logits. Deterministic for a seed.
//
// Order (as vLLM and llama.cpp apply them): temperature 0 -> greedy (lowest id on ties);
// otherwise top-k, softmax(logits / temperature), top-p (smallest set with mass >= p, in the order
// of larger logit first and lower id on ties), then a draw over the kept ids in id order. No step
// sorts the vocabulary: top-k and top-p are found by selection.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

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
  // The ids a draw may pick (after top-k and top-p), in id order (for tests).
  std::vector<int32_t> kept_ids(std::span<const float> logits);

  struct Cand {
    float l;
    int32_t id;
  };

 private:
  void select(std::span<const float> logits);
  bool kept(std::span<const float> logits, size_t i) const;

  SamplingParams p_;
  std::mt19937_64 rng_;
  // Per draw, kept between draws to reuse the memory: every id's weight exp((l - max) / T), the
  // candidates for selection, and the last kept one (all_: every id with a weight is kept).
  std::vector<double> w_;
  std::vector<Cand> cand_;
  // top-k up to kHeapK: the kept ids with their weights, in id order (empty otherwise).
  static constexpr size_t kHeapK = 4096;
  struct Weighted {
    int32_t id;
    double w;
  };
  std::vector<Weighted> few_;
  std::vector<int32_t> ids_;
  Cand bound_{};
  bool all_ = true;
  int32_t forced_ = -1;  // >= 0: no finite logit to weigh by; this id is the draw
};

// Index of the largest value; the lowest index on ties.
int32_t argmax(std::span<const float> v);

}  // namespace infera
