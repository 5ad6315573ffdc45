// Qwen2 (DeepSeek-R1-Distill-Qwen-1.5B/7B/14B/32B): pre-norm decoder, GQA with q/k/v biases,
// NEOX (rotate-half) rope in both HF and GGUF files, SwiGLU FFN, untied lm_head.
#include <string>

#include "model/layers.h"
#include "model/model.h"

namespace infera {

namespace {

std::vector<TensorSpec> qwen2_tensors(const ModelConfig& c) {
  const int64_t E = c.n_embd, Q = c.q_dim(), KV = c.kv_dim(), F = c.n_ff, V = c.n_vocab;
  std::vector<TensorSpec> t;
  t.push_back({"token_embd.weight", "model.embed_tokens.weight", {E, V}, TensorInit::kEmbedding});
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".", h = "model.layers." + std::to_string(i) + ".";
    t.push_back({b + "attn_norm.weight", h + "input_layernorm.weight", {E}, TensorInit::kNorm});
    t.push_back({b + "attn_q.weight", h + "self_attn.q_proj.weight", {E, Q}, TensorInit::kProjection});
    t.push_back({b + "attn_q.bias", h + "self_attn.q_proj.bias", {Q}, TensorInit::kBias});
    t.push_back({b + "attn_k.weight", h + "self_attn.k_proj.weight", {E, KV}, TensorInit::kProjection});
    t.push_back({b + "attn_k.bias", h + "self_attn.k_proj.bias", {KV}, TensorInit::kBias});
    t.push_back({b + "attn_v.weight", h + "self_attn.v_proj.weight", {E, KV}, TensorInit::kProjection});
    t.push_back({b + "attn_v.bias", h + "self_attn.v_proj.bias", {KV}, TensorInit::kBias});
    t.push_back({b + "attn_output.weight", h + "self_attn.o_proj.weight", {Q, E}, TensorInit::kProjection});
    t.push_back({b + "ffn_norm.weight", h + "post_attention_layernorm.weight", {E}, TensorInit::kNorm});
    t.push_back({b + "ffn_gate.weight", h + "mlp.gate_proj.weight", {E, F}, TensorInit::kProjection});
    t.push_back({b + "ffn_up.weight", h + "mlp.up_proj.weight", {E, F}, TensorInit::kProjection});
    t.push_back({b + "ffn_down.weight", h + "mlp.down_proj.weight", {F, E}, TensorInit::kProjection});
  }
  t.push_back({"output_norm.weight", "model.norm.weight", {E}, TensorInit::kNorm});
  t.push_back({"output.weight", "lm_head.weight", {E, V}, TensorInit::kOutput, false, 0, "token_embd.weight"});
  return t;
}

// Binds the tensors of qwen2_tensors() (same order) into the shared decoder, with q/k/v biases.
std::unique_ptr<Model> create_qwen2(const ModelConfig& c, std::vector<TensorView> t, Backend& be) {
  layers::DecoderWeights w;
  size_t k = 0;
  w.tok_embd = t[k++];
  for (int64_t i = 0; i < c.n_layer; ++i) {
    layers::DecoderLayer L;
    L.attn_norm = layers::to_f32(t[k++]);
    L.attn.wq = t[k++];
    L.attn.bq = layers::to_f32(t[k++]);
    L.attn.wk = t[k++];
    L.attn.bk = layers::to_f32(t[k++]);
    L.attn.wv = t[k++];
    L.attn.bv = layers::to_f32(t[k++]);
    L.attn.wo = t[k++];
    L.ffn_norm = layers::to_f32(t[k++]);
    L.ffn.gate = t[k++];
    L.ffn.up = t[k++];
    L.ffn.down = t[k++];
    w.layers.push_back(std::move(L));
  }
  w.output_norm = layers::to_f32(t[k++]);
  w.output = t[k++];
  return layers::make_decoder_model(c, std::move(w), be);
}

void qwen2_finish_config(ModelConfig& c, WeightFormat) {
  c.qkv_bias = true;
  c.rope_style = RopeStyle::kNeox;
}

}  // namespace

const Architecture& qwen2_architecture() {
  static const Architecture a{"qwen2", {"Qwen2ForCausalLM"}, &qwen2_finish_config, &qwen2_tensors, &create_qwen2};
  return a;
}

}  // namespace infera
