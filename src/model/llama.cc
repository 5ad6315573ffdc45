// Llama (DeepSeek-R1-Distill-Llama-8B/70B, Llama-3.x): pre-norm decoder, GQA without biases, SwiGLU
// FFN, untied lm_head, Llama-3.1 "llama3" rope scaling (GGUF: rope_freqs.weight divisors).
// GGUF converters permute Wq/Wk rows per head for NORM rope; HF files keep rotate-half (NEOX)
// order. Rather than un-permuting at load, the rope pairing follows the file format.
#include <string>

#include "model/layers.h"
#include "model/model.h"

namespace infera {

namespace {

std::vector<TensorSpec> llama_tensors(const ModelConfig& c) {
  const int64_t E = c.n_embd, Q = c.q_dim(), KV = c.kv_dim(), F = c.n_ff, V = c.n_vocab;
  std::vector<TensorSpec> t;
  t.push_back({"token_embd.weight", "model.embed_tokens.weight", {E, V}, TensorInit::kEmbedding});
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string b = "blk." + std::to_string(i) + ".", h = "model.layers." + std::to_string(i) + ".";
    t.push_back({b + "attn_norm.weight", h + "input_layernorm.weight", {E}, TensorInit::kNorm});
    t.push_back({b + "attn_q.weight", h + "self_attn.q_proj.weight", {E, Q}, TensorInit::kProjection, false, c.n_head});
    t.push_back({b + "attn_k.weight", h + "self_attn.k_proj.weight", {E, KV}, TensorInit::kProjection, false, c.n_head_kv});
    t.push_back({b + "attn_v.weight", h + "self_attn.v_proj.weight", {E, KV}, TensorInit::kProjection});
    t.push_back({b + "attn_output.weight", h + "self_attn.o_proj.weight", {Q, E}, TensorInit::kProjection});
    t.push_back({b + "ffn_norm.weight", h + "post_attention_layernorm.weight", {E}, TensorInit::kNorm});
    t.push_back({b + "ffn_gate.weight", h + "mlp.gate_proj.weight", {E, F}, TensorInit::kProjection});
    t.push_back({b + "ffn_up.weight", h + "mlp.up_proj.weight", {E, F}, TensorInit::kProjection});
    t.push_back({b + "ffn_down.weight", h + "mlp.down_proj.weight", {F, E}, TensorInit::kProjection});
  }
  t.push_back({"output_norm.weight", "model.norm.weight", {E}, TensorInit::kNorm});
  t.push_back({"output.weight", "lm_head.weight", {E, V}, TensorInit::kOutput, false, 0, "token_embd.weight"});
  // GGUF-only: HF files carry the same information as config.json rope_scaling.
  t.push_back({"rope_freqs.weight", "", {c.n_rot / 2}, TensorInit::kRopeFreqs, true});
  return t;
}

// Binds the tensors of llama_tensors() (same order) into the shared decoder; rope_freqs.weight,
// when present, becomes the config's rope frequency divisors.
std::unique_ptr<Model> create_llama(const ModelConfig& config, std::vector<TensorView> t, Backend& be) {
  ModelConfig c = config;
  layers::DecoderWeights w;
  size_t k = 0;
  w.tok_embd = t[k++];
  for (int64_t i = 0; i < c.n_layer; ++i) {
    layers::DecoderLayer L;
    L.attn_norm = layers::to_f32(t[k++]);
    L.attn.wq = t[k++];
    L.attn.wk = t[k++];
    L.attn.wv = t[k++];
    L.attn.wo = t[k++];
    L.ffn_norm = layers::to_f32(t[k++]);
    L.ffn.gate = t[k++];
    L.ffn.up = t[k++];
    L.ffn.down = t[k++];
    w.layers.push_back(std::move(L));
  }
  w.output_norm = layers::to_f32(t[k++]);
  w.output = t[k++];
  if (const TensorView& rf = t[k++]; rf.valid()) c.rope_freq_divisors = layers::to_f32(rf);
  return layers::make_decoder_model(c, std::move(w), be);
}

void llama_finish_config(ModelConfig& c, WeightFormat format) {
  c.qkv_bias = false;
  c.rope_style = format == WeightFormat::kGguf ? RopeStyle::kNorm : RopeStyle::kNeox;
}

}  // namespace

const Architecture& llama_architecture() {
  static const Architecture a{"llama", {"LlamaForCausalLM"}, &llama_finish_config, &llama_tensors, &create_llama};
  return a;
}

}  // namespace infera
