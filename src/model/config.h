// Model hyperparameters, read from GGUF metadata or an HF config.json.
//
// Glossary (used for every shape comment in model/ and kernels/):
//   n_embd   hidden size            n_head     query heads       n_head_kv  key/value heads
//   head_dim per-head size          n_ff       SwiGLU inner size n_vocab    logits / embedding rows
//   n_layer  decoder blocks         n_ctx      positions held in a KV cache
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/gguf.h"
#include "formats/json_util.h"

namespace infera {

enum class RopeStyle {
  kNorm,  // pairs (x[2i], x[2i+1]): llama.cpp NORM, GGUF llama (rows permuted by the converter)
  kNeox,  // pairs (x[i], x[i + n_rot/2]): rotate-half, Qwen2 and every HF checkpoint
};

enum class WeightFormat { kGguf, kHf };

struct Llama3RopeScaling {
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int64_t original_context = 8192;
};

struct ModelConfig {
  std::string arch;  // GGUF general.architecture: "qwen2", "llama"
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  int64_t n_ff = 0;
  int64_t n_ctx_train = 0;
  int64_t n_rot = 0;          // rotary dims per head (<= head_dim)
  float rms_eps = 1e-6f;
  double rope_theta = 10000.0;
  double rope_freq_scale = 1.0;  // linear rope scaling: positions are multiplied by this
  RopeStyle rope_style = RopeStyle::kNeox;
  std::vector<float> rope_freq_divisors;  // [n_rot/2]; empty = all 1 (GGUF rope_freqs.weight)
  bool qkv_bias = false;
  int64_t bos_token_id = -1;  // from the checkpoint's tokenizer metadata, -1 if unknown
  int64_t eos_token_id = -1;

  int64_t q_dim() const { return n_head * head_dim; }      // rows of Wq
  int64_t kv_dim() const { return n_head_kv * head_dim; }  // rows of Wk, Wv
};

// Divisors that GGUF stores as rope_freqs.weight for Llama-3.1 "llama3" scaling: 1 for high
// frequencies, factor for low ones, interpolated between (see docs/formats.md).
std::vector<float> llama3_rope_divisors(const Llama3RopeScaling& s, int64_t n_rot, double theta);

// Reads the hyperparameters common to decoder-only architectures ({arch}.* keys). n_vocab is filled
// later from the embedding tensor's shape.
Result<ModelConfig> config_from_gguf(const GgufFile& f, const std::string& arch);
// Same from config.json (+ the llama3 rope_scaling block when present).
Result<ModelConfig> config_from_hf(const Json& j, const std::string& path, const std::string& arch);

// One-line summary for logs and `infera inspect`.
std::string describe(const ModelConfig& c);

}  // namespace infera
