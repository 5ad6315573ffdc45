// The CPU kernel table: one set of function pointers per ISA level (cpu_features.h), filled by one
// translation unit per instruction set (kernels_scalar.cc, kernels_avx2.cc, kernels_avx512.cc) and
// chosen once at start-up. Model code never sees an intrinsic; the backend calls through the table.
//
// Weight products run on one of two activation forms, by weight type:
//  - f32 activations for F32, F16 and BF16 weights (exact products, f32 accumulation);
//  - Q8A activations (below) for the block-quantized types: the activation row is quantized to 8 bits
//    per 32 elements on the fly and the products are integer dot products (VNNI where present), scaled
//    per block. This is what llama.cpp does too; its error is inside the fixtures' tolerances.
// Types with no integer kernel (Q2_K, Q3_K) dequantize each weight row to f32 and use the f32 path.
#pragma once

#include <cstdint>

#include "kernels/cpu/cpu_features.h"
#include "tensor/dtype.h"

namespace infera::cpu {

// One block of 32 activations quantized to int8: x[i] ~ d * qs[i], d = max|x| / 127, and
// qs rounded to nearest even. negc8[l] = -8 * (qs[4l] + .. + qs[4l+3]), the per-lane correction that
// turns a dot with unsigned weight codes u into a dot with (u - 8); s = d * sum(qs).
struct BlockQ8A {
  float d;
  float s;
  int8_t qs[32];
  int32_t negc8[8];
};
static_assert(sizeof(BlockQ8A) == 72);

enum class ActForm { kF32, kQ8A };

// y[t * ldy + r] = dot(W row r, activation row t) for r in [r0, r1), t in [0, n_tok).
// w: the weight tensor's data, rows of row_bytes(type, n_in) bytes; x: n_tok activation rows in the
// type's ActForm (f32 rows of n_in floats, or n_in / 32 BlockQ8A), x_row_bytes apart.
using RowsFn = void (*)(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                        int64_t n_tok, float* y, int64_t ldy);

inline constexpr int kMaxDType = 32;

struct Kernels {
  Isa isa = Isa::kScalar;
  RowsFn rows[kMaxDType] = {};       // null: dequantize rows to f32 and use rows[F32]
  ActForm act[kMaxDType] = {};       // activation form for each weight type
  void (*quantize_q8a)(const float* x, BlockQ8A* out, int64_t n) = nullptr;  // n % 32 == 0
  float (*dot_f32)(const float* a, const float* b, int64_t n) = nullptr;
  void (*axpy_f32)(float a, const float* x, float* y, int64_t n) = nullptr;  // y += a * x
};

// The table for a level; the level must be supported by this CPU (isa_supported).
const Kernels& kernels_for(Isa isa);

// Tables filled by the per-ISA translation units.
void fill_scalar_kernels(Kernels& k);
void fill_avx2_kernels(Kernels& k);
void fill_avx512_kernels(Kernels& k);

inline int dtype_index(DType t) { return static_cast<int>(t); }

}  // namespace infera::cpu
