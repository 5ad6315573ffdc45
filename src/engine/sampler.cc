#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace infera {

int32_t argmax(std::span<const float> v) {
  // The first index of the largest value. 16 interleaved lanes (each keeps its first best: strict >)
  // so the compiler can vectorize the scan; ties between lanes go to the smaller index.
  constexpr size_t kLanes = 16;
  const size_t n = v.size();
  if (n < kLanes || std::isnan(v[0])) {
    int32_t best = 0;
    for (size_t i = 1; i < n; ++i)
      if (v[i] > v[static_cast<size_t>(best)]) best = static_cast<int32_t>(i);
    return best;
  }
  float bv[kLanes];
  int32_t bi[kLanes];
  for (size_t k = 0; k < kLanes; ++k) bv[k] = v[k], bi[k] = static_cast<int32_t>(k);
  size_t i = kLanes;
  for (; i + kLanes <= n; i += kLanes)
    for (size_t k = 0; k < kLanes; ++k) {
      const bool gt = v[i + k] > bv[k];
      bv[k] = gt ? v[i + k] : bv[k];
      bi[k] = gt ? static_cast<int32_t>(i + k) : bi[k];
    }
  int32_t best = 0;
  float best_v = v[0];
  for (size_t k = 0; k < kLanes; ++k)
    if (bv[k] > best_v || (bv[k] == best_v && bi[k] < best)) best_v = bv[k], best = bi[k];
  for (; i < n; ++i)
    if (v[i] > best_v) best_v = v[i], best = static_cast<int32_t>(i);
  return best;
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (p_.temperature <= 0.0f) return argmax(logits);
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) {
    return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
           (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
  };
  size_t k = ids.size();
  if (p_.top_k > 0 && static_cast<size_t>(p_.top_k) < k) {
    k = static_cast<size_t>(p_.top_k);
    std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(), by_logit);
  } else {
    std::sort(ids.begin(), ids.end(), by_logit);
  }
  ids.resize(k);
  std::vector<double> probs(k);
  const double mx = logits[static_cast<size_t>(ids[0])];
  double sum = 0;
  for (size_t i = 0; i < k; ++i) {
    probs[i] = std::exp((logits[static_cast<size_t>(ids[i])] - mx) / p_.temperature);
    sum += probs[i];
  }
  size_t keep = k;
  if (p_.top_p < 1.0f) {
    double cum = 0;
    for (size_t i = 0; i < k; ++i) {
      cum += probs[i] / sum;
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
  }
  double mass = 0;
  for (size_t i = 0; i < keep; ++i) mass += probs[i];
  std::uniform_real_distribution<double> u(0.0, mass);
  double r = u(rng_);
  for (size_t i = 0; i < keep; ++i) {
    r -= probs[i];
    if (r < 0) return ids[i];
  }
  return ids[keep - 1];
}

}  // namespace infera
