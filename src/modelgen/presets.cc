#include <vector>

#include "modelgen/make_model.h"

namespace infera {

namespace {

ModelConfig shape(const char* arch, int64_t layers, int64_t embd, int64_t heads, int64_t kv_heads, int64_t ff,
                  int64_t vocab, int64_t ctx, double theta, float eps) {
  ModelConfig c;
  c.arch = arch;
  c.n_layer = layers;
  c.n_embd = embd;
  c.n_head = heads;
  c.n_head_kv = kv_heads;
  c.head_dim = embd / heads;
  c.n_rot = c.head_dim;
  c.n_ff = ff;
  c.n_vocab = vocab;
  c.n_ctx_train = ctx;
  c.rope_theta = theta;
  c.rms_eps = eps;
  return c;
}

// Shapes of the DeepSeek-R1 distills (docs/models.md); tiny = the conformance fixtures' shape.
std::vector<Preset> all_presets() {
  std::vector<Preset> p;
  p.push_back({"tiny", shape("qwen2", 2, 256, 4, 2, 512, 0, 512, 10000, 1e-6f), false, {}, "tiny-qwen2"});
  p.push_back({"tiny", shape("llama", 2, 256, 4, 2, 512, 0, 512, 500000, 1e-5f), true, {}, "tiny-llama"});
  p.push_back({"r1-1.5b", shape("qwen2", 28, 1536, 12, 2, 8960, 151936, 131072, 10000, 1e-6f), false, {},
               "DeepSeek-R1-Distill-Qwen-1.5B"});
  p.push_back({"r1-7b", shape("qwen2", 28, 3584, 28, 4, 18944, 152064, 131072, 10000, 1e-6f), false, {},
               "DeepSeek-R1-Distill-Qwen-7B"});
  p.push_back({"r1-14b", shape("qwen2", 48, 5120, 40, 8, 13824, 152064, 131072, 1e6, 1e-5f), false, {},
               "DeepSeek-R1-Distill-Qwen-14B"});
  p.push_back({"r1-32b", shape("qwen2", 64, 5120, 40, 8, 27648, 152064, 131072, 1e6, 1e-5f), false, {},
               "DeepSeek-R1-Distill-Qwen-32B"});
  p.push_back({"r1-8b", shape("llama", 32, 4096, 32, 8, 14336, 128256, 131072, 500000, 1e-5f), true, {},
               "DeepSeek-R1-Distill-Llama-8B"});
  p.push_back({"r1-70b", shape("llama", 80, 8192, 64, 8, 28672, 128256, 131072, 500000, 1e-5f), true, {},
               "DeepSeek-R1-Distill-Llama-70B"});
  return p;
}

}  // namespace

Result<Preset> find_preset(const std::string& arch, const std::string& name) {
  std::string valid;
  for (const Preset& p : all_presets()) {
    if (p.name == name && p.config.arch == arch) return p;
    valid += fmt::format("{}{}/{}", valid.empty() ? "" : ", ", p.config.arch, p.name);
  }
  return error("no preset '{}' for architecture '{}' (valid arch/preset pairs: {})", name, arch, valid);
}

}  // namespace infera
