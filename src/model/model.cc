#include "model/model.h"

namespace infera {

KvCache KvCache::make(const ModelConfig& c, int64_t n_ctx) {
  KvCache kv;
  kv.n_layer = c.n_layer;
  kv.n_ctx = n_ctx;
  kv.kv_dim = c.kv_dim();
  const size_t n = static_cast<size_t>(c.n_layer * n_ctx * kv.kv_dim);
  kv.k.reset(new float[n]);  // default-initialized: untouched pages cost nothing
  kv.v.reset(new float[n]);
  return kv;
}

Status Model::forward(std::span<const int32_t> tokens, KvCache& kv, bool all_logits, std::vector<float>& logits) {
  const ModelConfig& c = config();
  if (tokens.empty()) return error("no tokens to evaluate");
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] < 0 || tokens[i] >= c.n_vocab)
      return error("token id {} at position {} is outside the vocabulary (0..{})", tokens[i], i, c.n_vocab - 1);
  if (kv.n_past + static_cast<int64_t>(tokens.size()) > kv.n_ctx)
    return error("context is full: {} positions used + {} new tokens > context size {}", kv.n_past,
                 tokens.size(), kv.n_ctx);
  forward_impl(tokens, kv, all_logits, logits);
  return Status::ok();
}

const Architecture* find_architecture(const std::string& gguf_name) {
  for (const Architecture* a : {&qwen2_architecture(), &llama_architecture()})
    if (a->name == gguf_name) return a;
  return nullptr;
}

const Architecture* find_architecture_by_hf_class(const std::string& hf_class) {
  for (const Architecture* a : {&qwen2_architecture(), &llama_architecture()})
    for (const std::string& h : a->hf_architectures)
      if (h == hf_class) return a;
  return nullptr;
}

std::vector<std::string> architecture_names() {
  return {qwen2_architecture().name, llama_architecture().name};
}

}  // namespace infera
