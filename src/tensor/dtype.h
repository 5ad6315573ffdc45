// Tensor element types. The numeric values are the GGML type ids written in GGUF files.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace infera {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct DTypeInfo {
  std::string_view name;  // "Q4_K", as llama.cpp prints it
  int64_t block_elems;    // elements per block (1 for plain types)
  int64_t block_bytes;    // bytes per block
  bool weight_supported;  // can be used as a model weight by infera
};

// Info for a GGML type id, or nullopt if the id is unknown to infera (IQ*, TQ*, MXFP4, ...).
std::optional<DTypeInfo> dtype_info(uint32_t ggml_type);
const DTypeInfo& dtype_info(DType t);
std::string_view dtype_name(DType t);
// Name of any GGML type id, including ones infera does not support ("IQ2_XXS", "type 99").
std::string ggml_type_name(uint32_t ggml_type);
// Parses "q4_k", "Q8_0", "bf16", ... (case-insensitive).
std::optional<DType> parse_dtype(std::string_view name);

// Bytes of a row of n elements; n must be a multiple of the block size (checked by callers).
inline int64_t row_bytes(DType t, int64_t n) {
  const DTypeInfo& i = dtype_info(t);
  return n / i.block_elems * i.block_bytes;
}

}  // namespace infera
