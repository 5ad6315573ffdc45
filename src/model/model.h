// The model interface the engine drives, and the per-architecture description that drives loading,
// validation and fixture generation from one tensor list.
//
//   auto m = load_model("model.gguf", backend);           // model/loader.h
//   KvCache kv = KvCache::make(m->model->config(), 512);
//   std::vector<float> logits;                              // [n_rows, n_vocab]
//   m->model->forward(tokens, kv, /*all_logits=*/true, logits);
#pragma once

#include <array>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "base/status.h"
#include "model/config.h"
#include "tensor/tensor_view.h"

namespace infera {

// Contiguous f32 KV cache for one sequence (the paged cache of the batching engine replaces it).
//   k, v: [n_layer][n_ctx][kv_dim]
// The arrays are left uninitialized (positions are written before they are read), so memory is
// only committed for the positions a sequence reaches, not for the whole context.
struct KvCache {
  int64_t n_layer = 0, n_ctx = 0, kv_dim = 0;
  int64_t n_past = 0;  // positions already filled
  std::unique_ptr<float[]> k, v;

  static KvCache make(const ModelConfig& c, int64_t n_ctx);
  float* k_at(int64_t layer, int64_t pos) { return k.get() + (layer * n_ctx + pos) * kv_dim; }
  float* v_at(int64_t layer, int64_t pos) { return v.get() + (layer * n_ctx + pos) * kv_dim; }
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelConfig& config() const = 0;

  // Evaluates `tokens` at positions kv.n_past .. kv.n_past + n - 1 as one batch and appends their
  // keys and values to `kv`. logits: resized to [n, n_vocab] when all_logits, else [1, n_vocab] for
  // the last token. Errors (expected, user-caused): an id outside the vocabulary, a full cache.
  Status forward(std::span<const int32_t> tokens, KvCache& kv, bool all_logits, std::vector<float>& logits);

 protected:
  // Called after validation; tokens non-empty and in range, room in the cache.
  virtual void forward_impl(std::span<const int32_t> tokens, KvCache& kv, bool all_logits,
                            std::vector<float>& logits) = 0;
};

// How a tensor's values are drawn by make-model (random-weight fixtures).
enum class TensorInit { kEmbedding, kProjection, kOutput, kNorm, kBias, kRopeFreqs };

// One tensor of an architecture, named both ways. Shapes are GGML order (ne[0] = row length).
struct TensorSpec {
  std::string name;     // GGUF name, e.g. "blk.0.attn_q.weight"
  std::string hf_name;  // HF name, e.g. "model.layers.0.self_attn.q_proj.weight"; empty: GGUF-only
  std::vector<int64_t> ne;
  TensorInit init = TensorInit::kProjection;
  bool optional = false;  // absent is fine (e.g. rope_freqs.weight)
  // GGUF llama converters permute the rows of Wq/Wk per head so that NORM rope pairs (2i, 2i+1)
  // match HF's rotate-half pairs (i, i + d/2). >0: number of heads of this tensor to permute.
  int64_t permute_heads = 0;
  // When absent, bind this other tensor instead (tied lm_head: "token_embd.weight").
  std::string fallback;
  bool is_matrix() const { return ne.size() == 2; }
};

struct Architecture {
  std::string name;                          // GGUF general.architecture
  std::vector<std::string> hf_architectures;  // config.json "architectures" entries
  // Arch-specific settings on top of the generic config (biases, rope pairing for this format).
  void (*finish_config)(ModelConfig& c, WeightFormat format);
  // Every tensor, in file order; weights are bound by position in this list.
  std::vector<TensorSpec> (*tensors)(const ModelConfig& c);
  // Builds the model over bound weights (same order as tensors(); absent optional ones invalid).
  std::unique_ptr<Model> (*create)(const ModelConfig& c, std::vector<TensorView> weights, Backend& backend);
};

const Architecture* find_architecture(const std::string& gguf_name);
const Architecture* find_architecture_by_hf_class(const std::string& hf_class);
std::vector<std::string> architecture_names();

// Architecture definitions (one file each).
const Architecture& qwen2_architecture();
const Architecture& llama_architecture();

}  // namespace infera
