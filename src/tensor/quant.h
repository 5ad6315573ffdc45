// Conversion of rows between f32 and the stored weight types.
//
// dequantize_row: bit-exact with the formulas in docs/formats.md (and llama.cpp's dequantize_row_*),
// compiled with -ffp-contract=off. This is the scalar reference every fast kernel is tested against.
// quantize_row: our own quantizers for the types make-model writes; the output is a valid block of
// that type (any engine dequantizes it the same way), chosen to keep the round-trip error small.
#pragma once

#include <cstdint>

#include "tensor/dtype.h"

namespace infera {

// dst[0..n) = values of the n elements at src. n must be a multiple of the type's block size.
// Supports every DType with weight_supported = true.
void dequantize_row(DType t, const void* src, float* dst, int64_t n);

// Writes row_bytes(t, n) bytes at dst. Supports F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,
// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
void quantize_row(DType t, const float* src, void* dst, int64_t n);

}  // namespace infera
