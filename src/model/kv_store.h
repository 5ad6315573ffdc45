// The tensors of the paged KV cache: for each layer and KV head, K and V rows of head_dim values in
// `type` (F32, F16 or Q8_0), one row per slot; slot = block * block_size + offset. Each head's rows
// lie together ([layer][head][slot]), so attention, which reads one head of a sequence's slots,
// reads whole cache lines: with the heads of a slot side by side it read half of every line pair
// the prefetchers brought in (half the memory bandwidth). Which block belongs to which sequence is
// the business of kv/ (block tables); the model reads and writes slots.
// The arrays are left uninitialized: memory is committed only for the blocks actually used.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "base/status.h"
#include "model/config.h"
#include "tensor/dtype.h"

namespace infera {

struct KvStore {
  DType type = DType::F32;
  int64_t n_layer = 0, n_head_kv = 0, head_dim = 0, block_size = 16, n_blocks = 0;
  int64_t row_bytes = 0;  // bytes of one slot's K (or V) row of one head of one layer
  std::unique_ptr<uint8_t[]> k, v;

  // Fails on a type the cache cannot hold (F32, F16, Q8_0) or a head size the type cannot divide.
  static Status check_type(const ModelConfig& c, DType type);
  // Fails as check_type does, or on no blocks.
  static Result<KvStore> make(const ModelConfig& c, DType type, int64_t n_blocks, int64_t block_size);
  int64_t n_slots() const { return n_blocks * block_size; }
  // Bytes from one head's rows to the next head's.
  int64_t head_stride() const { return n_slots() * row_bytes; }
  uint8_t* k_row(int64_t layer, int64_t head, int64_t slot) { return k.get() + offset(layer, head, slot); }
  uint8_t* v_row(int64_t layer, int64_t head, int64_t slot) { return v.get() + offset(layer, head, slot); }
  const uint8_t* k_layer(int64_t layer) const { return k.get() + offset(layer, 0, 0); }
  const uint8_t* v_layer(int64_t layer) const { return v.get() + offset(layer, 0, 0); }
  // Bytes per token over all layers, K and V.
  static int64_t bytes_per_token(const ModelConfig& c, DType type);

 private:
  int64_t offset(int64_t layer, int64_t head, int64_t slot) const {
    return ((layer * n_head_kv + head) * n_slots() + slot) * row_bytes;
  }
};

// Parses "auto" (f32), "f32", "f16", "q8_0".
std::optional<DType> parse_kv_cache_dtype(std::string_view name);

}  // namespace infera
