// Random-weight models in the real formats and shapes: the project's fixture and benchmark tool.
//
// The model is defined once, in HF layout (rotate-half Q/K rows), by (preset, seed): tensor values
// depend only on the seed, the tensor's name and the row, never on the output format, dtype or
// thread count. The GGUF writer applies the converters' Q/K row permutation for llama, so an HF
// folder and a GGUF file made with the same seed hold the same model.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "model/config.h"
#include "tensor/dtype.h"

namespace infera {

struct Preset {
  std::string name;  // "tiny", "r1-1.5b", ...
  ModelConfig config;  // n_vocab 0 = from the tokenizer, rounded up to a multiple of 64
  bool llama3_scaling = false;
  Llama3RopeScaling scaling;
  std::string model_name;  // general.name / HF repo-style name
};

// Preset for (arch, name); error lists the valid combinations.
Result<Preset> find_preset(const std::string& arch, const std::string& name);

struct MakeModelOptions {
  std::string arch = "qwen2";
  std::string preset = "tiny";
  std::string dtype = "f32";   // f32|f16|bf16|q8_0|q4_0|q4_1|q5_0|q5_1|q2_k|q3_k|q4_k|q5_k|q6_k|q4_k_m
  std::string format = "gguf";  // gguf|hf
  std::string tokenizer;        // tokenizer.json (or folder); empty: a byte-level vocabulary
  uint64_t seed = 42;
  std::string out;
  int n_threads = 0;  // 0: all cores
};

struct MakeModelReport {
  int64_t n_params = 0;
  int64_t n_tensors = 0;
  uint64_t bytes = 0;
};

Result<MakeModelReport> make_model(const MakeModelOptions& o);

}  // namespace infera
