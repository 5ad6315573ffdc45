// make-model: real shapes and keys, determinism, and format twins that hold the same model.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "formats/gguf.h"
#include "model/loader.h"
#include "modelgen/make_model.h"
#include "unit/test_util.h"

namespace infera {
namespace {

using testing::HasSubstr;

MakeModelOptions tiny(const std::string& arch, const std::string& dtype, const std::string& format, const std::string& out) {
  MakeModelOptions o;
  o.arch = arch;
  o.preset = "tiny";
  o.dtype = dtype;
  o.format = format;
  o.seed = 7;
  o.out = out;
  o.n_threads = 2;
  return o;
}

std::vector<float> logits_of(const std::string& path, const std::vector<int32_t>& ids) {
  auto be = make_cpu_reference_backend(2);
  auto m = load_model(path, *be);
  EXPECT_TRUE(m.ok()) << m.error();
  if (!m.ok()) return {};
  KvCache kv = KvCache::make(m->model->config(), static_cast<int64_t>(ids.size()));
  std::vector<float> out;
  EXPECT_TRUE(m->model->forward(ids, kv, true, out).is_ok());
  return out;
}

// Same seed, GGUF vs HF folder: identical model, so identical logits (f32: exact up to the
// rope pairing, which for llama differs between the formats along with the Q/K row order).
TEST(MakeModel, GgufAndHfTwinsGiveTheSameLogits) {
  for (const std::string arch : {"qwen2", "llama"}) {
    test::TempDir d;
    ASSERT_TRUE(make_model(tiny(arch, "f32", "gguf", d.file("m.gguf"))).ok());
    ASSERT_TRUE(make_model(tiny(arch, "f32", "hf", d.file("hf"))).ok());
    const std::vector<int32_t> ids = {259, 10, 200, 33, 47, 120, 5, 99, 250, 3};
    const std::vector<float> a = logits_of(d.file("m.gguf"), ids), b = logits_of(d.file("hf"), ids);
    ASSERT_EQ(a.size(), b.size());
    ASSERT_FALSE(a.empty());
    double max_diff = 0;
    for (size_t i = 0; i < a.size(); ++i) max_diff = std::max(max_diff, std::fabs(double(a[i]) - b[i]));
    EXPECT_LT(max_diff, 1e-4) << arch;
  }
}

TEST(MakeModel, DeterministicForASeedAndThreadCount) {
  test::TempDir d;
  MakeModelOptions o = tiny("qwen2", "q4_k", "gguf", d.file("a.gguf"));
  ASSERT_TRUE(make_model(o).ok());
  o.out = d.file("b.gguf");
  o.n_threads = 1;
  ASSERT_TRUE(make_model(o).ok());
  EXPECT_EQ(test::read_bytes(d.file("a.gguf")), test::read_bytes(d.file("b.gguf")));
  o.out = d.file("c.gguf");
  o.seed = 8;
  ASSERT_TRUE(make_model(o).ok());
  EXPECT_NE(test::read_bytes(d.file("a.gguf")), test::read_bytes(d.file("c.gguf")));
}

// Files from the wild (the fixtures were written by llama.cpp's converter and quantizer) and ours
// must have the same keys, tensor names, types and shapes.
TEST(MakeModel, GgufMatchesConverterLayout) {
  struct C { std::string arch, dtype, fixture; };
  for (const C& c : {C{"qwen2", "q4_k_m", "tiny-qwen2-q4_k_m.gguf"}, C{"llama", "q8_0", "tiny-llama-q8_0.gguf"},
                     C{"qwen2", "bf16", "tiny-qwen2-bf16.gguf"}}) {
    test::TempDir d;
    MakeModelOptions o = tiny(c.arch, c.dtype, "gguf", d.file("m.gguf"));
    // The fixtures' reduced vocabularies: qwen2 from the HF twin; llama's tokens from its GGUF.
    if (c.arch == "qwen2") o.tokenizer = test::fixture("models/tiny-qwen2-hf/tokenizer.json");
    auto r = make_model(o);
    ASSERT_TRUE(r.ok()) << r.error();
    auto ours = GgufFile::open(d.file("m.gguf"));
    auto theirs = GgufFile::open(test::fixture("models/" + c.fixture));
    ASSERT_TRUE(ours.ok()) << ours.error();
    ASSERT_TRUE(theirs.ok()) << theirs.error();
    std::set<std::string> keys_ours, keys_theirs;
    for (const auto& [k, v] : ours->metadata()) keys_ours.insert(k);
    for (const auto& [k, v] : theirs->metadata()) keys_theirs.insert(k);
    for (const std::string& k : keys_theirs) {
      if (k == "general.basename" || k == "general.size_label") continue;  // informational
      EXPECT_TRUE(keys_ours.count(k)) << c.fixture << ": we do not write key " << k;
      if (!keys_ours.count(k)) continue;
      EXPECT_EQ(ours->find(k)->type, theirs->find(k)->type) << k;
    }
    ASSERT_EQ(ours->tensors().size(), theirs->tensors().size()) << c.fixture;
    for (const GgufTensor& t : theirs->tensors()) {
      const GgufTensor* o2 = ours->find_tensor(t.name);
      ASSERT_NE(o2, nullptr) << t.name;
      EXPECT_EQ(o2->ggml_type, t.ggml_type) << t.name;
      // Our llama twin has the built-in byte-level vocabulary (320 rows), not the fixture's 1280.
      const bool vocab_sized = c.arch == "llama" && (t.name == "token_embd.weight" || t.name == "output.weight");
      if (!vocab_sized) EXPECT_EQ(shape_string(o2->view), shape_string(t.view)) << t.name;
    }
    if (c.arch == "qwen2") {
      EXPECT_EQ(*ours->get_string_array("tokenizer.ggml.tokens"), *theirs->get_string_array("tokenizer.ggml.tokens"));
      EXPECT_EQ(*ours->get_int_array("tokenizer.ggml.token_type"), *theirs->get_int_array("tokenizer.ggml.token_type"));
      EXPECT_EQ(*ours->get_string_array("tokenizer.ggml.merges"), *theirs->get_string_array("tokenizer.ggml.merges"));
      EXPECT_EQ(*ours->get_string("tokenizer.chat_template"), *theirs->get_string("tokenizer.chat_template"));
      EXPECT_EQ(*ours->get_int("tokenizer.ggml.bos_token_id"), *theirs->get_int("tokenizer.ggml.bos_token_id"));
      EXPECT_EQ(*ours->get_int("tokenizer.ggml.eos_token_id"), *theirs->get_int("tokenizer.ggml.eos_token_id"));
    }
  }
}

// llama-quantize's default mix (the baseline's files): the output matrix is Q6_K for every
// quantized type but Q8_0; F16 and Q8_0 files keep their own type there.
TEST(MakeModel, OutputMatrixTypeFollowsLlamaQuantize) {
  struct C { std::string dtype; uint32_t output, ffn_up; };
  for (const C& c : {C{"q4_0", 14, 2}, C{"q5_1", 14, 7}, C{"q4_k_m", 14, 12}, C{"q8_0", 8, 8}, C{"f16", 1, 1}}) {
    test::TempDir d;
    auto r = make_model(tiny("qwen2", c.dtype, "gguf", d.file("m.gguf")));
    ASSERT_TRUE(r.ok()) << r.error();
    auto f = GgufFile::open(d.file("m.gguf"));
    ASSERT_TRUE(f.ok()) << f.error();
    ASSERT_NE(f->find_tensor("output.weight"), nullptr);
    EXPECT_EQ(f->find_tensor("output.weight")->ggml_type, c.output) << c.dtype;
    EXPECT_EQ(f->find_tensor("blk.0.ffn_up.weight")->ggml_type, c.ffn_up) << c.dtype;
  }
}

TEST(MakeModel, EveryDtypeLoadsAndRuns) {
  for (const std::string dt : {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k", "q3_k",
                               "q4_k", "q5_k", "q6_k", "q4_k_m"}) {
    test::TempDir d;
    auto r = make_model(tiny("llama", dt, "gguf", d.file("m.gguf")));
    ASSERT_TRUE(r.ok()) << dt << ": " << r.error();
    const std::vector<float> l = logits_of(d.file("m.gguf"), {259, 1, 2, 3});
    ASSERT_EQ(l.size(), 4u * 320u) << dt;  // 262 tokens rounded up to 64
    for (float x : l) ASSERT_TRUE(std::isfinite(x)) << dt;
  }
}

TEST(MakeModel, QuantizedTwinStaysCloseToF32) {
  test::TempDir d;
  ASSERT_TRUE(make_model(tiny("qwen2", "f32", "gguf", d.file("f32.gguf"))).ok());
  ASSERT_TRUE(make_model(tiny("qwen2", "q8_0", "gguf", d.file("q8.gguf"))).ok());
  const std::vector<int32_t> ids = {259, 40, 41, 42, 43, 44, 45, 46};
  const std::vector<float> a = logits_of(d.file("f32.gguf"), ids), b = logits_of(d.file("q8.gguf"), ids);
  ASSERT_EQ(a.size(), b.size());
  double max_diff = 0, ss = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_diff = std::max(max_diff, std::fabs(double(a[i]) - b[i]));
    ss += double(a[i]) * a[i];
  }
  const double std_dev = std::sqrt(ss / a.size());
  EXPECT_GT(max_diff, 0.0);                // it is quantized
  EXPECT_LT(max_diff / std_dev, 0.15);     // and Q8_0-close (the fixtures measured 0.08)
}

TEST(MakeModel, BadOptionsAreClearErrors) {
  test::TempDir d;
  MakeModelOptions o = tiny("qwen2", "q4_k_m", "hf", d.file("x"));
  EXPECT_THAT(make_model(o).error(), HasSubstr("--format hf stores f32, f16 or bf16"));
  o = tiny("qwen2", "q7_0", "gguf", d.file("x.gguf"));
  EXPECT_THAT(make_model(o).error(), HasSubstr("--dtype 'q7_0'"));
  o = tiny("qwen2", "f32", "gguf", d.file("x.gguf"));
  o.preset = "r1-8b";
  EXPECT_THAT(make_model(o).error(), HasSubstr("no preset 'r1-8b' for architecture 'qwen2'"));
  o = tiny("qwen2", "f32", "gguf", d.file("x.gguf"));
  o.tokenizer = d.file("missing.json");
  EXPECT_THAT(make_model(o).error(), HasSubstr("missing.json"));
}

}  // namespace
}  // namespace infera
