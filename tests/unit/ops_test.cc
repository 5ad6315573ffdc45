// Reference kernels against direct f64 formulas, and the sampler's contracts.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "engine/sampler.h"
#include "kernels/reference/ops.h"
#include "model/config.h"

namespace infera {
namespace {

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d;
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

TEST(RefOps, DotMatchesF64ForAllLengths) {
  for (int64_t n : {1, 7, 8, 9, 64, 257, 4096}) {
    auto a = randn(n, 1), b = randn(n, 2);
    double want = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) want += double(a[i]) * b[i], mag += std::fabs(double(a[i]) * b[i]);
    EXPECT_NEAR(ref::dot(a.data(), b.data(), n), want, 1e-6 * mag + 1e-7) << n;
  }
}

TEST(RefOps, RmsNorm) {
  auto x = randn(256, 3), w = randn(256, 4);
  std::vector<float> y(256);
  ref::rms_norm(x.data(), w.data(), 1e-6f, y.data(), 256);
  double ss = 0;
  for (float v : x) ss += double(v) * v;
  const double s = 1.0 / std::sqrt(ss / 256 + 1e-6);
  for (int i = 0; i < 256; ++i) EXPECT_NEAR(y[i], x[i] * s * w[i], 1e-5) << i;
}

TEST(RefOps, RopePairings) {
  // One pair rotated by 90 degrees: (a, b) -> (-b, a), in NEOX (i, i + n/2) and NORM (2i, 2i+1) order.
  std::vector<float> cs = {0.0f, 1.0f, 1.0f, 0.0f};  // pair 0: 90 degrees, pair 1: 0 degrees
  std::vector<float> neox = {1, 2, 3, 4};             // pairs (x0, x2), (x1, x3)
  ref::rope(neox.data(), cs.data(), 4, true);
  EXPECT_EQ(neox, (std::vector<float>{-3, 2, 1, 4}));
  std::vector<float> norm = {1, 2, 3, 4};  // pairs (x0, x1), (x2, x3)
  ref::rope(norm.data(), cs.data(), 4, false);
  EXPECT_EQ(norm, (std::vector<float>{-2, 1, 3, 4}));
}

TEST(RefOps, SoftmaxAndSwiglu) {
  std::vector<float> x = {1000.0f, 1000.0f, -1000.0f};
  ref::softmax(x.data(), 3);
  EXPECT_FLOAT_EQ(x[0], 0.5f);
  EXPECT_FLOAT_EQ(x[2], 0.0f);
  std::vector<float> g = {0.0f, 2.0f}, u = {3.0f, 0.5f}, o(2);
  ref::swiglu(g.data(), u.data(), o.data(), 2);
  EXPECT_FLOAT_EQ(o[0], 0.0f);
  EXPECT_NEAR(o[1], 2.0 / (1 + std::exp(-2.0)) * 0.5, 1e-6);
}

TEST(RopeScaling, Llama3DivisorsMatchConverter) {
  // Values the GGUF converter writes for Llama-3.1 (factor 8, 1, 4, 8192; theta 500000; 64 dims).
  const std::vector<float> d = llama3_rope_divisors({8.0, 1.0, 4.0, 8192}, 64, 500000.0);
  ASSERT_EQ(d.size(), 32u);
  for (int i = 0; i < 15; ++i) EXPECT_EQ(d[i], 1.0f) << i;
  EXPECT_NEAR(d[15], 1.5534146f, 1e-5);
  EXPECT_NEAR(d[16], 2.6945298f, 1e-5);
  EXPECT_NEAR(d[17], 5.2573266f, 1e-5);
  for (int i = 18; i < 32; ++i) EXPECT_EQ(d[i], 8.0f) << i;
}

TEST(Sampler, GreedyTakesLowestIdOnTies) {
  const std::vector<float> l = {1.0f, 3.0f, 3.0f, 2.0f};
  Sampler s({0.0f, 0, 1.0f, 0});
  EXPECT_EQ(s.sample(l), 1);
  EXPECT_EQ(argmax(l), 1);
}

TEST(Sampler, ArgmaxIsTheFirstLargestAtEverySizeAndPosition) {
  // The lane-split scan against the plain one: ties inside and across lanes, in the tail, at 0.
  std::mt19937 g(3);
  for (size_t n : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{33}, size_t{151936}}) {
    for (int trial = 0; trial < 40; ++trial) {
      std::vector<float> v(n);
      std::uniform_int_distribution<int> small(0, 6);  // few distinct values: many ties
      for (float& x : v) x = static_cast<float>(small(g));
      if (trial % 4 == 1) v[g() % n] = 9.0f;
      if (trial % 4 == 2) v[n - 1] = 9.0f, v[g() % n] = 9.0f;
      if (trial % 4 == 3) v[0] = 9.0f;
      size_t want = 0;
      for (size_t i = 1; i < n; ++i)
        if (v[i] > v[want]) want = i;
      ASSERT_EQ(argmax(v), static_cast<int32_t>(want)) << "n " << n << " trial " << trial;
    }
  }
}

TEST(Sampler, TopKOneIsGreedyAndSeedsRepeat) {
  const std::vector<float> l = randn(100, 5);
  Sampler k1({1.0f, 1, 1.0f, 9});
  EXPECT_EQ(k1.sample(l), argmax(l));
  Sampler a({1.0f, 0, 1.0f, 42}), b({1.0f, 0, 1.0f, 42});
  for (int i = 0; i < 50; ++i) EXPECT_EQ(a.sample(l), b.sample(l));
}

TEST(Sampler, TopPKeepsOnlyTheNucleus) {
  // probs ~ 0.665, 0.245, 0.09: top_p 0.5 keeps only id 0; top_p 0.8 keeps ids 0 and 1.
  const std::vector<float> l = {2.0f, 1.0f, 0.0f};
  Sampler s1({1.0f, 0, 0.5f, 1});
  for (int i = 0; i < 200; ++i) EXPECT_EQ(s1.sample(l), 0);
  Sampler s2({1.0f, 0, 0.8f, 1});
  std::map<int, int> seen;
  for (int i = 0; i < 2000; ++i) seen[s2.sample(l)]++;
  EXPECT_EQ(seen.count(2), 0u);
  EXPECT_GT(seen[1], 400);  // 0.245 / 0.91 of draws, about 540
}

// The scalar twin of the kept set: sort every id (larger logit first, lower id on ties), top-k,
// then the smallest prefix whose softmax mass reaches top_p.
std::vector<int32_t> kept_by_full_sort(const std::vector<float>& l, const SamplingParams& p) {
  std::vector<int32_t> ids(l.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
  size_t k = ids.size();
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < k) k = static_cast<size_t>(p.top_k);
  while (k > 0 && l[ids[k - 1]] == -INFINITY) --k;
  ids.resize(k);
  if (p.top_p < 1.0f) {
    const double mx = l[ids[0]];
    std::vector<double> w(k);
    double total = 0;
    for (size_t i = 0; i < k; ++i) total += w[i] = std::exp((l[ids[i]] - mx) / p.temperature);
    double acc = 0;
    size_t keep = k;
    for (size_t i = 0; i < k; ++i) {
      acc += w[i];
      if (acc >= p.top_p * total) {
        keep = i + 1;
        break;
      }
    }
    ids.resize(keep);
  }
  std::sort(ids.begin(), ids.end());
  return ids;
}

TEST(Sampler, KeptSetEqualsTheFullSortAtEverySizeTopKAndTopP) {
  std::mt19937 g(11);
  int nontrivial = 0;
  for (size_t n : {size_t{1}, size_t{3}, size_t{65}, size_t{200}, size_t{5000}, size_t{151936}}) {
    for (int trial = 0; trial < (n > 10000 ? 6 : 60); ++trial) {
      std::vector<float> l(n);
      std::normal_distribution<float> nd(0.0f, trial % 3 == 0 ? 0.05f : 3.0f);  // flat or peaked
      std::uniform_int_distribution<int> few(0, 5);
      for (float& x : l) x = trial % 4 == 1 ? static_cast<float>(few(g)) : nd(g);  // ties on every 4th
      if (trial % 5 == 2) for (size_t i = 0; i < n; i += 3) l[i] = -INFINITY;       // masked ids
      const int32_t top_k = trial % 2 ? static_cast<int32_t>(g() % (n + 2)) : 0;
      const float top_p = trial % 3 == 2 ? 1.0f : std::uniform_real_distribution<float>(0.05f, 0.999f)(g);
      const SamplingParams p{0.3f + static_cast<float>(trial % 5) * 0.4f, top_k, top_p, 1};
      Sampler s(p);
      std::vector<int32_t> want = kept_by_full_sort(l, p);
      if (want.empty()) want = {argmax(l)};  // every id masked: no distribution, the best id
      ASSERT_EQ(s.kept_ids(l), want) << "n " << n << " trial " << trial << " top_k " << top_k << " top_p " << top_p;
      nontrivial += want.size() > 1 && want.size() < n / 2;
    }
  }
  EXPECT_GT(nontrivial, 50);  // the selection had real work to do
}

// Rows with no finite maximum (+inf from an extreme repetition penalty, NaN, all masked) have no
// distribution: the draw is the best id, on every path, never a crash or a stale draw.
TEST(Sampler, RowsWithoutAFiniteMaximumGiveTheBestId) {
  for (const SamplingParams& p : {SamplingParams{1.0f, 0, 1.0f, 1}, SamplingParams{1.0f, 20, 1.0f, 1},
                                  SamplingParams{0.6f, 0, 0.95f, 1}, SamplingParams{0.6f, 20, 0.9f, 1}}) {
    Sampler s(p);
    std::vector<float> l = randn(1000, 4);
    EXPECT_GE(s.sample(l), 0);  // a normal draw first (state to go stale)
    l[7] = INFINITY;
    EXPECT_EQ(s.sample(l), 7);
    l[7] = NAN;
    l[0] = NAN;
    EXPECT_EQ(s.sample(l), 0);  // argmax's answer for a NaN first
    std::vector<float> masked(1000, -INFINITY);
    EXPECT_EQ(s.sample(masked), 0);
    std::vector<float> nan_inside = randn(1000, 5);
    nan_inside[500] = NAN;
    const int32_t got = s.sample(nan_inside);
    EXPECT_TRUE(got >= 0 && got < 1000 && got != 500);
  }
}

TEST(Sampler, TemperatureMatchesSoftmaxFrequencies) {
  const std::vector<float> l = {0.0f, std::log(3.0f)};  // p = 1/4, 3/4 at T = 1
  Sampler s({1.0f, 0, 1.0f, 3});
  int ones = 0;
  for (int i = 0; i < 20000; ++i) ones += s.sample(l) == 1;
  EXPECT_NEAR(ones / 20000.0, 0.75, 0.015);
}

}  // namespace
}  // namespace infera
