#include "model/kv_store.h"

#include <algorithm>
#include <cctype>
#include <string>

namespace infera {

int64_t KvStore::bytes_per_token(const ModelConfig& c, DType type) {
  return 2 * c.n_layer * ::infera::row_bytes(type, c.kv_dim());
}

Status KvStore::check_type(const ModelConfig& c, DType type) {
  if (type != DType::F32 && type != DType::F16 && type != DType::Q8_0)
    return error("KV cache type {} is not supported (f32, f16, q8_0)", dtype_name(type));
  const int64_t be = dtype_info(type).block_elems;
  if (c.head_dim % be != 0)
    return error("KV cache type {} needs a head size divisible by {} (the model's is {})", dtype_name(type), be,
                 c.head_dim);
  return Status::ok();
}

Result<KvStore> KvStore::make(const ModelConfig& c, DType type, int64_t n_blocks, int64_t block_size) {
  INFERA_RETURN_IF_ERROR(check_type(c, type));
  if (n_blocks < 1 || block_size < 1) return error("KV cache needs at least one block");
  KvStore s;
  s.type = type;
  s.n_layer = c.n_layer;
  s.n_head_kv = c.n_head_kv;
  s.head_dim = c.head_dim;
  s.block_size = block_size;
  s.n_blocks = n_blocks;
  s.row_bytes = ::infera::row_bytes(type, s.head_dim);
  const size_t n = static_cast<size_t>(s.n_layer * s.n_head_kv * s.n_slots() * s.row_bytes);
  s.k.reset(new uint8_t[n]);  // default-initialized: untouched pages cost nothing
  s.v.reset(new uint8_t[n]);
  return s;
}

std::optional<DType> parse_kv_cache_dtype(std::string_view name) {
  std::string n(name);
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (n == "auto" || n == "f32" || n == "float32") return DType::F32;
  if (n == "f16" || n == "fp16" || n == "float16") return DType::F16;
  if (n == "q8_0") return DType::Q8_0;
  return std::nullopt;
}

}  // namespace infera
