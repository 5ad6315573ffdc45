// Conformance: our logits against an independent engine's (tests/fixtures/reference), with the
// tolerance rules of tests/fixtures/README.md section 8:
//   max |logit - ref| <= T * std(ref);  top-1 equal wherever the reference gap > 2 T std;
//   greedy ids equal up to the first step whose reference gap is <= 0.5 T std (practical rule),
//   and for the first greedy_robust_prefix steps (strict rule).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "backend/backend.h"
#include "engine/sampler.h"
#include "kernels/cpu/kernels.h"
#include "formats/json_util.h"
#include "model/loader.h"
#include "unit/test_util.h"

namespace infera {
namespace {

struct Reference {
  std::string model;  // path under fixtures/models
  Json json;
  std::vector<float> logits;
};

Reference load_reference(const std::string& model_file, const std::string& ref_name) {
  Reference r;
  r.model = test::fixture("models/" + model_file);
  auto j = read_json_file(test::fixture("reference/" + ref_name + ".json"));
  EXPECT_TRUE(j.ok()) << j.error();
  r.json = *j;
  r.logits = test::read_f32(test::fixture("reference/" + r.json["logits_file"].get<std::string>()));
  return r;
}

struct Case {
  std::string model_file, ref_name;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.model_file; }

// Which backend runs the case: the reference backend, or the CPU backend forced to one ISA level.
using Param = std::tuple<Case, std::string>;

std::unique_ptr<Backend> backend_for(const std::string& name) {
  if (name == "reference") return make_cpu_reference_backend(2);
  if (name == "amx-emulated") {  // the amx level's kernels, int8 and bf16, on C++ tiles
    if (!cpu::isa_supported(cpu::Isa::kAvx512)) return nullptr;
    static const cpu::Kernels emulated = [] {
      cpu::Kernels k;
      cpu::fill_amx_emulated_kernels(k);
      return k;
    }();
    return make_cpu_backend(2, emulated, "cpu-amx-emulated");
  }
  const auto isa = cpu::parse_isa(name);
  if (!isa || !cpu::isa_supported(*isa)) return nullptr;
  return make_cpu_backend(2, *isa);
}

std::string case_name(const testing::TestParamInfo<Param>& i) {
  std::string s = std::get<0>(i.param).model_file + "_" + std::get<1>(i.param);
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

class Conformance : public testing::TestWithParam<Param> {};

TEST_P(Conformance, LogitsWithinToleranceAndGreedyFollowsReference) {
  const Case& c = std::get<0>(GetParam());
  auto backend = backend_for(std::get<1>(GetParam()));
  if (!backend) GTEST_SKIP() << std::get<1>(GetParam()) << " is not supported by this CPU";
  const Reference ref = load_reference(c.model_file, c.ref_name);
  const std::vector<int32_t> prompt = ref.json["prompt_ids"].get<std::vector<int32_t>>();
  const int64_t n_vocab = ref.json["n_vocab"].get<int64_t>();
  const double std_dev = ref.json["stats"]["logits_std"].get<double>();
  const double T = ref.json["suggested_tolerance"]["max_abs_over_std"].get<double>();
  ASSERT_EQ(ref.logits.size(), prompt.size() * static_cast<size_t>(n_vocab));

  auto m = load_model(ref.model, *backend);
  ASSERT_TRUE(m.ok()) << m.error();
  Model& model = *m->model;
  ASSERT_EQ(model.config().n_vocab, n_vocab);

  // 1. Batch evaluation of the prompt, every position.
  KvCache kv = KvCache::make(model.config(), static_cast<int64_t>(prompt.size()) + 40);
  std::vector<float> logits;
  ASSERT_TRUE(model.forward(prompt, kv, true, logits).is_ok());
  ASSERT_EQ(logits.size(), ref.logits.size());
  double max_abs = 0;
  for (size_t i = 0; i < logits.size(); ++i) max_abs = std::max(max_abs, std::fabs(double(logits[i]) - ref.logits[i]));
  EXPECT_LE(max_abs, T * std_dev) << "max |diff| / std = " << max_abs / std_dev << " > " << T;

  // 2. Top-1 rule.
  for (size_t p = 0; p < prompt.size(); ++p) {
    std::span<const float> row(ref.logits.data() + p * n_vocab, static_cast<size_t>(n_vocab));
    std::vector<float> sorted(row.begin(), row.end());
    std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<>());
    if (sorted[0] - sorted[1] > 2 * T * std_dev) {
      EXPECT_EQ(argmax(std::span<const float>(logits.data() + p * n_vocab, static_cast<size_t>(n_vocab))), argmax(row))
          << "position " << p;
    }
  }

  // 3. Greedy continuation, one token per forward call (incremental decoding with the KV cache).
  const std::vector<int32_t> ref_greedy = ref.json["greedy_ids"].get<std::vector<int32_t>>();
  const std::vector<double> gaps = ref.json["greedy_top1_top2_gaps"].get<std::vector<double>>();
  std::vector<int32_t> ours;
  std::span<const float> last(logits.data() + (prompt.size() - 1) * n_vocab, static_cast<size_t>(n_vocab));
  std::vector<float> step;
  for (size_t j = 0; j < ref_greedy.size(); ++j) {
    const int32_t next = argmax(j == 0 ? last : std::span<const float>(step));
    ours.push_back(next);
    const int32_t tok[1] = {next};
    ASSERT_TRUE(model.forward(tok, kv, false, step).is_ok());
  }
  size_t first_diff = 0;
  while (first_diff < ours.size() && ours[first_diff] == ref_greedy[first_diff]) ++first_diff;
  const int64_t robust = ref.json["suggested_tolerance"]["greedy_robust_prefix"].get<int64_t>();
  EXPECT_GE(static_cast<int64_t>(first_diff), robust) << "strict greedy prefix";
  if (first_diff < ours.size()) {
    EXPECT_LE(gaps[first_diff], 0.5 * T * std_dev) << "greedy diverged at step " << first_diff
                                                   << " where the reference gap was " << gaps[first_diff];
  }
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, Conformance,
    testing::Combine(testing::Values(Case{"tiny-qwen2-f32.gguf", "tiny-qwen2-f32"}, Case{"tiny-qwen2-f16.gguf", "tiny-qwen2-f16"},
                    Case{"tiny-qwen2-bf16.gguf", "tiny-qwen2-bf16"}, Case{"tiny-qwen2-q8_0.gguf", "tiny-qwen2-q8_0"},
                    Case{"tiny-qwen2-q4_0.gguf", "tiny-qwen2-q4_0"}, Case{"tiny-qwen2-q4_1.gguf", "tiny-qwen2-q4_1"},
                    Case{"tiny-qwen2-q5_0.gguf", "tiny-qwen2-q5_0"}, Case{"tiny-qwen2-q5_1.gguf", "tiny-qwen2-q5_1"},
                    Case{"tiny-qwen2-q2_k.gguf", "tiny-qwen2-q2_k"}, Case{"tiny-qwen2-q3_k.gguf", "tiny-qwen2-q3_k"},
                    Case{"tiny-qwen2-q4_k.gguf", "tiny-qwen2-q4_k"}, Case{"tiny-qwen2-q5_k.gguf", "tiny-qwen2-q5_k"},
                    Case{"tiny-qwen2-q6_k.gguf", "tiny-qwen2-q6_k"},
                    Case{"tiny-qwen2-q4_k_m.gguf", "tiny-qwen2-q4_k_m"},
                    Case{"tiny-llama-f32.gguf", "tiny-llama-f32"}, Case{"tiny-llama-q8_0.gguf", "tiny-llama-q8_0"},
                    Case{"tiny-llama-q4_k_m.gguf", "tiny-llama-q4_k_m"},
                    // The HF twin (BF16 safetensors) against its BF16 GGUF twin's reference.
                    Case{"tiny-qwen2-hf", "tiny-qwen2-bf16"}),
                     testing::Values("reference", "scalar", "avx2", "avx512", "amx", "amx-emulated")),
    case_name);

// The HF folder and the BF16 GGUF hold the same values: our engine must give the same logits
// for both (up to f32 summation order, which is identical here).
TEST(ConformanceTwins, HfFolderMatchesBf16Gguf) {
  auto backend = make_cpu_reference_backend(2);
  auto hf = load_model(test::fixture("models/tiny-qwen2-hf"), *backend);
  auto gg = load_model(test::fixture("models/tiny-qwen2-bf16.gguf"), *backend);
  ASSERT_TRUE(hf.ok()) << hf.error();
  ASSERT_TRUE(gg.ok()) << gg.error();
  const std::vector<int32_t> prompt = {1027, 925, 627, 839, 16, 520, 192, 785};
  KvCache k1 = KvCache::make(hf->model->config(), 8), k2 = KvCache::make(gg->model->config(), 8);
  std::vector<float> a, b;
  ASSERT_TRUE(hf->model->forward(prompt, k1, true, a).is_ok());
  ASSERT_TRUE(gg->model->forward(prompt, k2, true, b).is_ok());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "logit " << i;
}

// The AMX level's kernels on emulated tiles (cpu::fill_amx_emulated_kernels) through whole models
// of every type they cover: a 32-token prompt (two tiles of 16 tokens) and greedy steps give logits
// identical, bit for bit, to the AVX-512 level's (the AMX kernels scale their tile sums with the
// AVX-512 kernel's own instructions in its order).
TEST(ConformanceAmx, EmulatedTilesGiveTheAvx512LevelsLogitsBitForBit) {
  if (!cpu::isa_supported(cpu::Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 VNNI";
  static const cpu::Kernels emulated = [] {
    cpu::Kernels k;
    cpu::fill_amx_emulated_kernels(k);
    return k;
  }();
  for (const std::string name : {"tiny-qwen2-q8_0", "tiny-qwen2-q4_0", "tiny-qwen2-q4_k", "tiny-qwen2-q6_k",
                                 "tiny-qwen2-q4_k_m", "tiny-llama-q8_0", "tiny-llama-q4_k_m"}) {
    const Reference ref = load_reference(name + ".gguf", name);
    const std::vector<int32_t> prompt = ref.json["prompt_ids"].get<std::vector<int32_t>>();
    ASSERT_GE(prompt.size(), 32u);
    std::vector<std::vector<float>> out[2];
    for (int b = 0; b < 2; ++b) {
      auto backend = b == 0 ? make_cpu_backend(2, cpu::Isa::kAvx512) : make_cpu_backend(2, emulated, "cpu-amx-emulated");
      auto m = load_model(ref.model, *backend);
      ASSERT_TRUE(m.ok()) << m.error();
      KvCache kv = KvCache::make(m->model->config(), static_cast<int64_t>(prompt.size()) + 8);
      std::vector<float> logits;
      ASSERT_TRUE(m->model->forward(prompt, kv, true, logits).is_ok());
      out[b].push_back(logits);
      for (int32_t tok : {prompt[3], prompt[5], prompt[7]}) {
        const int32_t one[1] = {tok};
        ASSERT_TRUE(m->model->forward(one, kv, false, logits).is_ok());
        out[b].push_back(logits);
      }
    }
    ASSERT_EQ(out[0].size(), out[1].size());
    for (size_t s = 0; s < out[0].size(); ++s) {
      ASSERT_EQ(out[0][s].size(), out[1][s].size());
      for (size_t i = 0; i < out[0][s].size(); ++i)
        ASSERT_EQ(std::memcmp(&out[0][s][i], &out[1][s][i], sizeof(float)), 0)
            << name << " step " << s << " logit " << i << ": " << out[1][s][i] << " vs " << out[0][s][i];
    }
  }
}

// Batch prefill and token-by-token decoding must agree (the KV cache path is exercised both ways).
TEST(ConformanceTwins, TokenByTokenMatchesBatch) {
  auto backend = make_cpu_reference_backend(1);
  auto m = load_model(test::fixture("models/tiny-llama-f32.gguf"), *backend);
  ASSERT_TRUE(m.ok()) << m.error();
  const std::vector<int32_t> prompt = {1024, 619, 389, 795, 365, 916, 765, 626, 398, 784};
  KvCache kb = KvCache::make(m->model->config(), 16), kt = KvCache::make(m->model->config(), 16);
  std::vector<float> batch, one;
  ASSERT_TRUE(m->model->forward(prompt, kb, true, batch).is_ok());
  const int64_t V = m->model->config().n_vocab;
  for (size_t t = 0; t < prompt.size(); ++t) {
    ASSERT_TRUE(m->model->forward(std::span<const int32_t>(&prompt[t], 1), kt, false, one).is_ok());
    for (int64_t v = 0; v < V; ++v) ASSERT_NEAR(one[v], batch[t * V + v], 1e-4) << "position " << t;
  }
}

}  // namespace
}  // namespace infera
