// Building blocks shared by the decoder-only architectures (RMSNorm, RoPE, GQA attention with a
// KV cache, SwiGLU). Architecture files compose them; heavy matmuls go through the Backend.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "model/config.h"
#include "model/model.h"
#include "tensor/tensor_view.h"

namespace infera::layers {

// Dequantizes a (small, 1-D) tensor to f32; an invalid view gives an empty vector.
std::vector<float> to_f32(const TensorView& t);

struct AttentionWeights {
  TensorView wq;  // ne {n_embd, q_dim}
  TensorView wk;  // ne {n_embd, kv_dim}
  TensorView wv;  // ne {n_embd, kv_dim}
  TensorView wo;  // ne {q_dim, n_embd}
  std::vector<float> bq, bk, bv;  // [q_dim], [kv_dim], [kv_dim]; empty when the arch has none
};

struct FfnWeights {
  TensorView gate;  // ne {n_embd, n_ff}
  TensorView up;    // ne {n_embd, n_ff}
  TensorView down;  // ne {n_ff, n_embd}
};

// One pre-norm decoder block: x += attn(norm(x)); x += ffn(norm(x)).
struct DecoderLayer {
  std::vector<float> attn_norm;  // [n_embd]
  AttentionWeights attn;
  std::vector<float> ffn_norm;  // [n_embd]
  FfnWeights ffn;
};

// The weights of a Llama-family decoder-only transformer (Qwen2, Llama, ...).
struct DecoderWeights {
  TensorView tok_embd;  // ne {n_embd, n_vocab}
  std::vector<DecoderLayer> layers;
  std::vector<float> output_norm;  // [n_embd]
  TensorView output;               // ne {n_embd, n_vocab}
  // The backend's packed copies of the matmul weights (Backend::pack), kept alive here.
  std::vector<std::shared_ptr<const uint8_t>> packed;
};

// The forward pass of such a decoder over a batch (model.h): embedding rows, the blocks, final
// norm, lm_head for the rows b.logit_rows. logits: [b.logit_rows.size(), n_vocab].
void decoder_forward(Backend& be, const ModelConfig& c, const DecoderWeights& w, const ForwardBatch& b, KvStore& kv,
                     std::vector<float>& logits);

// A Model over DecoderWeights; architectures differ in their tensors, config and weight binding.
// Every matmul weight is offered to be.pack first.
std::unique_ptr<Model> make_decoder_model(const ModelConfig& c, DecoderWeights w, Backend& be);

// cos/sin of every rotary pair at each of `positions`: [n][n_rot/2][2], computed in f64.
std::vector<float> rope_table(const ModelConfig& c, std::span<const int32_t> positions);

// y[t] = rms_norm(x[t]) * w for each of n rows of width c.n_embd.
void rms_norm_rows(const ModelConfig& c, const float* x, const std::vector<float>& w, int64_t n, float* y);

// Self-attention of the batch's tokens: their K/V are written to their slots (slot of token t:
// slots[t]), then each attends over its sequence through the block tables.
// h: [n, n_embd] normalized input; out: [n, n_embd] (the attention output after Wo).
void attention(Backend& be, const ModelConfig& c, const AttentionWeights& w, int64_t layer, const float* h,
               const ForwardBatch& b, std::span<const int64_t> slots, const std::vector<float>& rope, KvStore& kv,
               float* out);

// out = (silu(h Wgate^T) * (h Wup^T)) Wdown^T.  h: [n, n_embd]; out: [n, n_embd].
void swiglu_ffn(Backend& be, const ModelConfig& c, const FfnWeights& w, const float* h, int64_t n, float* out);

}  // namespace infera::layers
