#include "model/model.h"

#include <algorithm>

#include "base/check.h"

namespace infera {

namespace {
constexpr int64_t kSingleBlock = 16;
}

KvCache KvCache::make(const ModelConfig& c, int64_t n_ctx, DType type) {
  KvCache kv;
  kv.n_ctx = n_ctx;
  const int64_t n_blocks = std::max<int64_t>(1, (n_ctx + kSingleBlock - 1) / kSingleBlock);
  Result<KvStore> s = KvStore::make(c, type, n_blocks, kSingleBlock);
  CHECK(s.ok());  // f32 always fits; other types are validated by the engine's options
  kv.store = std::move(*s);
  kv.table.resize(static_cast<size_t>(n_blocks));
  for (int64_t i = 0; i < n_blocks; ++i) kv.table[static_cast<size_t>(i)] = static_cast<int32_t>(i);
  return kv;
}

Status Model::forward(std::span<const int32_t> tokens, KvCache& kv, bool all_logits, std::vector<float>& logits) {
  if (tokens.empty()) return error("no tokens to evaluate");
  if (kv.n_past + static_cast<int64_t>(tokens.size()) > kv.n_ctx)
    return error("context is full: {} positions used + {} new tokens > context size {}", kv.n_past,
                 tokens.size(), kv.n_ctx);
  const size_t n = tokens.size();
  std::vector<int32_t> pos(n), seq(n, 0), rows;
  for (size_t i = 0; i < n; ++i) pos[i] = static_cast<int32_t>(kv.n_past + static_cast<int64_t>(i));
  for (size_t i = all_logits ? 0 : n - 1; i < n; ++i) rows.push_back(static_cast<int32_t>(i));
  const std::span<const int32_t> table[1] = {kv.table};
  ForwardBatch b{tokens, pos, seq, table, rows};
  INFERA_RETURN_IF_ERROR(forward_batch(b, kv.store, logits));
  kv.n_past += static_cast<int64_t>(n);
  return Status::ok();
}

Status Model::forward_batch(const ForwardBatch& b, KvStore& kv, std::vector<float>& logits) {
  const ModelConfig& c = config();
  const size_t n = b.tokens.size();
  if (n == 0) return error("no tokens to evaluate");
  if (b.positions.size() != n || b.seq.size() != n) return error("batch arrays differ in length");
  for (size_t i = 0; i < n; ++i) {
    if (b.tokens[i] < 0 || b.tokens[i] >= c.n_vocab)
      return error("token id {} at position {} is outside the vocabulary (0..{})", b.tokens[i], i, c.n_vocab - 1);
    if (b.seq[i] < 0 || static_cast<size_t>(b.seq[i]) >= b.tables.size())
      return error("token {} names sequence {} of {}", i, b.seq[i], b.tables.size());
    const std::span<const int32_t> table = b.tables[static_cast<size_t>(b.seq[i])];
    if (b.positions[i] < 0 || b.positions[i] / kv.block_size >= static_cast<int64_t>(table.size()))
      return error("position {} is outside its sequence's {} blocks", b.positions[i], table.size());
  }
  for (const auto& table : b.tables)
    for (int32_t id : table)
      if (id < 0 || id >= kv.n_blocks) return error("block id {} outside the cache's {} blocks", id, kv.n_blocks);
  for (int32_t r : b.logit_rows)
    if (r < 0 || static_cast<size_t>(r) >= n) return error("logit row {} outside the batch of {}", r, n);
  forward_batch_impl(b, kv, logits);
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
