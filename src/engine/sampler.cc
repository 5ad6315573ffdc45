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

namespace {

// The order of candidates: larger logit first, the lower id on ties (a strict total order).
bool before(const Sampler::Cand& a, const Sampler::Cand& b) { return a.l > b.l || (a.l == b.l && a.id < b.id); }

}  // namespace

// The kept set without sorting the vocabulary. top-k (up to kHeapK) takes the k best with a
// partial sort over ids and weighs only those; otherwise every id is weighed, and top-p finds the
// last kept candidate `bound_` by selection (nth_element on the order above), so the set is
// exactly the prefix a full sort would give: each round partitions the remaining range at its
// middle and keeps the half that holds the boundary (linear on average).
void Sampler::select(std::span<const float> logits) {
  const size_t n = logits.size();
  const int32_t best = argmax(logits);
  const double mx = logits[static_cast<size_t>(best)];
  all_ = true;
  few_.clear();
  w_.clear();
  // No finite maximum (+inf from an extreme penalty, NaN, every id masked): no distribution to
  // draw from; the best id is the answer (callers map NaN to -inf first).
  forced_ = std::isfinite(mx) ? -1 : best;
  if (forced_ >= 0) return;
  const bool top_k = p_.top_k > 0 && static_cast<size_t>(p_.top_k) < n;
  if (top_k && static_cast<size_t>(p_.top_k) <= kHeapK) {
    ids_.resize(n);
    std::iota(ids_.begin(), ids_.end(), 0);
    const auto k = static_cast<std::ptrdiff_t>(p_.top_k);
    auto val = [&](int32_t i) {  // NaN orders as -inf (a strict order for the sort)
      const float x = logits[static_cast<size_t>(i)];
      return std::isnan(x) ? -INFINITY : x;
    };
    std::partial_sort(ids_.begin(), ids_.begin() + k, ids_.end(),
                      [&](int32_t a, int32_t b) { return before(Cand{val(a), a}, Cand{val(b), b}); });
    double total = 0;
    std::vector<double> w(static_cast<size_t>(k));
    for (size_t j = 0; j < w.size(); ++j) total += w[j] = std::exp((logits[static_cast<size_t>(ids_[j])] - mx) / p_.temperature);
    size_t keep = w.size();
    if (p_.top_p < 1.0f) {
      double acc = 0;
      for (size_t j = 0; j < w.size(); ++j) {
        acc += w[j];
        if (acc >= p_.top_p * total) {
          keep = j + 1;
          break;
        }
      }
    }
    for (size_t j = 0; j < keep; ++j)
      if (w[j] > 0) few_.push_back({ids_[j], w[j]});
    std::sort(few_.begin(), few_.end(), [](const Weighted& a, const Weighted& b) { return a.id < b.id; });
    if (few_.empty()) forced_ = best;
    return;
  }
  w_.resize(n);
  for (size_t i = 0; i < n; ++i) w_[i] = std::exp((logits[i] - mx) / p_.temperature);
  if (!top_k && p_.top_p >= 1.0f) return;
  cand_.clear();
  for (size_t i = 0; i < n; ++i)
    if (w_[i] > 0) cand_.push_back({logits[i], static_cast<int32_t>(i)});
  if (cand_.empty()) return;
  size_t end = cand_.size();
  if (top_k && static_cast<size_t>(p_.top_k) < end) {
    end = static_cast<size_t>(p_.top_k);
    std::nth_element(cand_.begin(), cand_.begin() + static_cast<std::ptrdiff_t>(end - 1), cand_.end(), before);
    bound_ = cand_[end - 1];
    all_ = false;
  }
  if (p_.top_p >= 1.0f) return;
  double total = 0;
  for (size_t j = 0; j < end; ++j) total += w_[static_cast<size_t>(cand_[j].id)];
  const double target = p_.top_p * total;  // the smallest prefix with at least this mass
  size_t lo = 0, hi = end;
  double acc = 0;  // mass of cand_[0, lo), all before cand_[lo, hi)
  auto at = [&](size_t j) { return cand_.begin() + static_cast<std::ptrdiff_t>(j); };
  // A model's next-token distribution is usually peaked: try the best 256 first (one pass).
  for (bool first = hi > 1024; hi - lo > 64; first = false) {
    const size_t mid = first ? 256 : lo + (hi - lo) / 2;
    std::nth_element(at(lo), at(mid), at(hi), before);
    double m = 0;
    for (size_t j = lo; j < mid; ++j) m += w_[static_cast<size_t>(cand_[j].id)];
    if (acc + m >= target) {
      hi = mid;
    } else {
      acc += m;
      lo = mid;
    }
  }
  std::sort(at(lo), at(hi), before);
  size_t j = lo;
  for (; j + 1 < hi; ++j) {
    acc += w_[static_cast<size_t>(cand_[j].id)];
    if (acc >= target) break;
  }
  bound_ = cand_[j];
  all_ = false;
}

bool Sampler::kept(std::span<const float> logits, size_t i) const {
  return w_[i] > 0 && (all_ || !before(bound_, Cand{logits[i], static_cast<int32_t>(i)}));
}

std::vector<int32_t> Sampler::kept_ids(std::span<const float> logits) {
  std::vector<int32_t> ids;
  if (p_.temperature <= 0.0f) return {argmax(logits)};
  select(logits);
  if (forced_ >= 0) return {forced_};
  if (!few_.empty()) {
    for (const Weighted& x : few_) ids.push_back(x.id);
    return ids;
  }
  for (size_t i = 0; i < logits.size(); ++i)
    if (kept(logits, i)) ids.push_back(static_cast<int32_t>(i));
  return ids;
}

int32_t Sampler::sample(std::span<const float> logits) {
  if (p_.temperature <= 0.0f) return argmax(logits);
  select(logits);
  if (forced_ >= 0) return forced_;
  // A draw over the kept ids' weights, walked in id order.
  if (!few_.empty()) {
    double mass = 0;
    for (const Weighted& x : few_) mass += x.w;
    double r = std::uniform_real_distribution<double>(0.0, mass)(rng_);
    for (const Weighted& x : few_)
      if ((r -= x.w) < 0) return x.id;
    return few_.back().id;
  }
  double mass = 0;
  for (size_t i = 0; i < logits.size(); ++i)
    if (kept(logits, i)) mass += w_[i];
  double r = std::uniform_real_distribution<double>(0.0, mass)(rng_);
  int32_t last = argmax(logits);
  for (size_t i = 0; i < logits.size(); ++i) {
    if (!kept(logits, i)) continue;
    last = static_cast<int32_t>(i);
    r -= w_[i];
    if (r < 0) return last;
  }
  return last;
}

}  // namespace infera
