// The DeepSeek-R1 distill shapes: every preset's tensor list has the published parameter count and
// the names and shapes of the real checkpoints.
#include <gtest/gtest.h>

#include "model/model.h"
#include "modelgen/make_model.h"

namespace infera {
namespace {

struct Want {
  std::string arch, preset;
  size_t n_tensors;     // GGUF tensors (llama: + rope_freqs.weight)
  double params_b;      // published size, billions
};

TEST(Presets, DistillShapesMatchPublishedModels) {
  for (const Want& w : {Want{"qwen2", "r1-1.5b", 339, 1.777}, Want{"qwen2", "r1-7b", 339, 7.616},
                        Want{"qwen2", "r1-14b", 579, 14.770}, Want{"qwen2", "r1-32b", 771, 32.764},
                        Want{"llama", "r1-8b", 292, 8.030}, Want{"llama", "r1-70b", 724, 70.554}}) {
    auto p = find_preset(w.arch, w.preset);
    ASSERT_TRUE(p.ok()) << p.error();
    const Architecture* a = find_architecture(w.arch);
    ASSERT_NE(a, nullptr);
    const std::vector<TensorSpec> specs = a->tensors(p->config);
    EXPECT_EQ(specs.size(), w.n_tensors) << w.preset;
    double n = 0;
    for (const TensorSpec& s : specs) {
      if (s.init == TensorInit::kRopeFreqs) continue;
      double e = 1;
      for (int64_t d : s.ne) e *= static_cast<double>(d);
      n += e;
    }
    EXPECT_NEAR(n / 1e9, w.params_b, 0.002) << w.preset;
  }
}

TEST(Presets, R1QwenNamesAndShapes) {
  auto p = find_preset("qwen2", "r1-1.5b");
  ASSERT_TRUE(p.ok());
  const std::vector<TensorSpec> specs = qwen2_architecture().tensors(p->config);
  auto find = [&](const std::string& name) -> const TensorSpec* {
    for (const TensorSpec& s : specs)
      if (s.name == name) return &s;
    return nullptr;
  };
  ASSERT_NE(find("blk.27.attn_k.weight"), nullptr);
  EXPECT_EQ(find("blk.27.attn_k.weight")->ne, (std::vector<int64_t>{1536, 256}));
  EXPECT_EQ(find("blk.27.attn_k.weight")->hf_name, "model.layers.27.self_attn.k_proj.weight");
  EXPECT_EQ(find("blk.0.ffn_down.weight")->ne, (std::vector<int64_t>{8960, 1536}));
  EXPECT_EQ(find("token_embd.weight")->ne, (std::vector<int64_t>{1536, 151936}));
  EXPECT_EQ(find("output.weight")->hf_name, "lm_head.weight");
  EXPECT_EQ(find("blk.3.attn_v.bias")->ne, (std::vector<int64_t>{256}));
}

TEST(Presets, UnknownPresetListsValidOnes) {
  auto p = find_preset("llama", "r1-9b");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().find("llama/r1-8b"), std::string::npos) << p.error();
}

}  // namespace
}  // namespace infera
