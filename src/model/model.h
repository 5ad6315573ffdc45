// The model interface the engine drives, and the per-architecture description that drives loading,
// validation and fixture generation from one tensor list.
//
//   auto m = load_model("model.gguf", backend);           // model/loader.h
//   KvCache kv = KvCache::make(m->model->config(), 512);    // one sequence; engine/ batches many
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
#include "model/kv_store.h"
#include "tensor/tensor_view.h"

namespace infera {

// One step's flattened batch: tokens of one or more sequences, each at its own position. Token t
// of sequence seq[t] at position positions[t] attends to positions 0..positions[t] of that
// sequence, found through its block table (position p is in block tables[s][p / block_size]);
// its own K/V and those of earlier tokens of the batch are written first.
struct ForwardBatch {
  std::span<const int32_t> tokens;                    // [n]
  std::span<const int32_t> positions;                 // [n]
  std::span<const int32_t> seq;                       // [n] index into tables
  std::span<const std::span<const int32_t>> tables;   // per sequence: block ids
  std::span<const int32_t> logit_rows;                // tokens whose logits are wanted, in output order
};

// A single sequence's KV cache (run, eval, bench, tests): a KvStore whose blocks are the
// sequence's block table in order.
struct KvCache {
  KvStore store;
  std::vector<int32_t> table;  // 0, 1, 2, ...
  int64_t n_ctx = 0;
  int64_t n_past = 0;  // positions already filled

  static KvCache make(const ModelConfig& c, int64_t n_ctx, DType type = DType::F32);
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelConfig& config() const = 0;

  // Evaluates `tokens` of one sequence at positions kv.n_past .. kv.n_past + n - 1 and appends
  // their keys and values to `kv`. logits: resized to [n, n_vocab] when all_logits, else [1, n_vocab]
  // for the last token. Errors (expected, user-caused): an id outside the vocabulary, a full cache.
  Status forward(std::span<const int32_t> tokens, KvCache& kv, bool all_logits, std::vector<float>& logits);

  // Evaluates a batch of several sequences over the paged cache `kv`, writing each token's keys
  // and values into its slot. logits: [b.logit_rows.size(), n_vocab]. Errors: ids outside the
  // vocabulary, positions outside a block table, block ids outside the store.
  Status forward_batch(const ForwardBatch& b, KvStore& kv, std::vector<float>& logits);

 protected:
  // Called after validation.
  virtual void forward_batch_impl(const ForwardBatch& b, KvStore& kv, std::vector<float>& logits) = 0;
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
