// The tensors of the paged KV cache: for each layer, K and V rows of kv_dim values in `type`
// (F32, F16 or Q8_0), one row per slot; slot = block * block_size + offset. Which block belongs to
// which sequence is the business of kv/ (block tables); the model reads and writes slots.
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
  int64_t n_layer = 0, kv_dim = 0, block_size = 16, n_blocks = 0;
  int64_t row_bytes = 0;  // bytes of one slot's K (or V) row of one layer
  std::unique_ptr<uint8_t[]> k, v;

  // Fails on a type the cache cannot hold (F32, F16, Q8_0) or a head size the type cannot divide.
  static Status check_type(const ModelConfig& c, DType type);
  // Fails as check_type does, or on no blocks.
  static Result<KvStore> make(const ModelConfig& c, DType type, int64_t n_blocks, int64_t block_size);
  int64_t n_slots() const { return n_blocks * block_size; }
  uint8_t* k_row(int64_t layer, int64_t slot) { return k.get() + (layer * n_slots() + slot) * row_bytes; }
  uint8_t* v_row(int64_t layer, int64_t slot) { return v.get() + (layer * n_slots() + slot) * row_bytes; }
  const uint8_t* k_layer(int64_t layer) const { return k.get() + layer * n_slots() * row_bytes; }
  const uint8_t* v_layer(int64_t layer) const { return v.get() + layer * n_slots() * row_bytes; }
  // Bytes per token over all layers, K and V.
  static int64_t bytes_per_token(const ModelConfig& c, DType type);
};

// Parses "auto" (f32), "f32", "f16", "q8_0".
std::optional<DType> parse_kv_cache_dtype(std::string_view name);

}  // namespace infera
