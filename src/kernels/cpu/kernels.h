// The CPU kernel table: one set of function pointers per ISA level (cpu_features.h), filled by one
// translation unit per instruction set (kernels_scalar.cc, kernels_avx2.cc, kernels_avx512.cc;
// kernels_amx.cc and kernels_amx_bf16.cc for the tiles) and chosen once at start-up. Model code
// never sees an intrinsic; the backend calls through the table.
//
// Weight products run on one of two activation forms, by weight type:
//  - f32 activations for F32, F16 and BF16 weights (exact products, f32 accumulation);
//  - Q8A activations (below) for the block-quantized types: the activation row is quantized to 8 bits
//    per 32 elements on the fly and the products are integer dot products (VNNI where present), scaled
//    per block. This is what llama.cpp does too; its error is inside the fixtures' tolerances.
// Every type, Q2_K..Q6_K included, has an integer kernel on the scalar, AVX2 and AVX-512 levels; a
// type without one in a table (rows[] null) is dequantized row by row to f32 by the backend.
// Packed forms (packed.h) and the AMX tiles (kernels_amx*.cc) cover the common types on top.
#pragma once

#include <cstdint>

#include "kernels/cpu/cpu_features.h"
#include "tensor/dtype.h"

namespace infera::cpu {

// A Q8A activation row: n values (n % 32 == 0) quantized to int8 per block of 32,
// x[i] ~ d[i / 32] * qs[i], d = max|x| / 127 over the block, qs rounded to nearest even. Laid out
// planar so SIMD loads of 64 consecutive values are one load:
//   int8  qs[n] | f32 d[n/32] | f32 s16[n/16] (d * sum of each 16 qs) | f32 s32[n/32] (d * sum of 32)
// The sums let a kernel dot the activations with unsigned weight codes u and apply the code offset
// (value = scale * (u - o)) or the block minimum afterwards, once per group instead of per element.
struct Q8ARow {
  const int8_t* qs;
  const float* d;
  const float* s16;
  const float* s32;
};
inline int64_t q8a_row_bytes(int64_t n) { return n / 32 * 48; }
inline Q8ARow q8a_row(const void* p, int64_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  const auto* f = reinterpret_cast<const float*>(b + n);
  return {reinterpret_cast<const int8_t*>(b), f, f + n / 32, f + n / 32 + n / 16};
}

enum class ActForm { kF32, kQ8A };

// y[t * ldy + r] = dot(W row r, activation row t) for r in [r0, r1), t in [0, n_tok).
// w: the weight tensor's data, rows of row_bytes(type, n_in) bytes; x: n_tok activation rows in the
// type's ActForm (f32 rows of n_in floats, or Q8A rows), x_row_bytes apart (a multiple of 4).
using RowsFn = void (*)(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                        int64_t n_tok, float* y, int64_t ldy);

inline constexpr int kMaxDType = 32;

// Attention of the `group` query heads that share one KV head, over n_keys positions whose K and
// V rows (hd values each, f32 or f16 as `type` says) are given by pointer, in position order:
//   out[g] = sum_j softmax_j(scale * q[g] . k[j]) * v[j].
// `tokens` > 1 takes that many query tokens at consecutive positions of one sequence at once (a
// prompt chunk), so each K and V row is read once for all of them: token i (its q at q + i *
// q_stride, its out at out + i * out_stride) sees the first n_keys - (tokens - 1 - i) keys. Each
// token's result is bit for bit what it gets alone.
struct AttnGroup {
  const float* q = nullptr;  // [tokens][group][hd], rotated; tokens q_stride floats apart
  int64_t group = 0, hd = 0;
  float scale = 1;
  DType type = DType::F32;         // of the K and V rows: F32, F16 or Q8_0
  const void* const* k = nullptr;  // [n_keys]
  const void* const* v = nullptr;  // [n_keys]
  int64_t n_keys = 0;              // of the last token
  int64_t tokens = 1;
  int64_t q_stride = 0, out_stride = 0;
  float* scores = nullptr;  // scratch, [tokens][group][n_keys]
  float* out = nullptr;     // [tokens][group][hd]; tokens out_stride floats apart
};
inline constexpr int64_t kMaxAttnTokens = 8;  // tokens per AttnGroup

// Token i of a multi-token group as a group of its own.
inline AttnGroup attn_token(const AttnGroup& a, int64_t i) {
  AttnGroup t = a;
  t.q = a.q + i * a.q_stride;
  t.out = a.out + i * a.out_stride;
  t.n_keys = a.n_keys - (a.tokens - 1 - i);
  t.tokens = 1;
  t.scores = a.scores + i * a.group * a.n_keys;
  return t;
}

struct Kernels {
  Isa isa = Isa::kScalar;
  RowsFn rows[kMaxDType] = {};       // null: dequantize rows to f32 and use rows[F32]
  // The same products over the packed form (packed.h; w = pack_weights' output, r0 and r1
  // multiples of kPackRows, Q8A activations); null where the type has no packed kernel.
  RowsFn packed_rows[kMaxDType] = {};
  ActForm act[kMaxDType] = {};       // activation form for each weight type
  void (*quantize_q8a)(const float* x, void* out, int64_t n) = nullptr;  // one Q8A row; n % 32 == 0
  float (*dot_f32)(const float* a, const float* b, int64_t n) = nullptr;
  // out[i] = silu(gate[i]) * up[i] (out may alias gate); within a few ulps of ref::swiglu.
  void (*swiglu_f32)(const float* gate, const float* up, float* out, int64_t n) = nullptr;
  void (*axpy_f32)(float a, const float* x, float* y, int64_t n) = nullptr;  // y += a * x
  void (*attend_group)(const AttnGroup& a) = nullptr;
};

// The table for a level; the level must be supported by this CPU (isa_supported).
const Kernels& kernels_for(Isa isa);

// Tables filled by the per-ISA translation units.
void fill_scalar_kernels(Kernels& k);
void fill_avx2_kernels(Kernels& k);
void fill_avx512_kernels(Kernels& k);
// The AMX levels' tile kernels take calls of at least this many tokens (two tiles of 16); smaller
// calls run the AVX-512 kernels (kernels_amx.cc says why).
inline constexpr int64_t kAmxMinTokens = 32;
// AVX-512 plus AMX-INT8 tile kernels for the whole tiles of 16 tokens of packed Q8_0 / Q4_0 / Q4_K /
// Q6_K products; the tile kernels are used only if they agree bit for bit with their emulation
// (amx_kernels_verified, which builds the amx table first).
void fill_amx_kernels(Kernels& k);
bool amx_kernels_verified();
// That start-up check: the tile kernels on the real tiles against their emulation, with SIGILL /
// SIGSEGV / SIGBUS caught (a CPU without AMX faults on the first tile instruction: false).
bool amx_tiles_check();
// Where the CPU also has AMX-BF16: tile kernels for the whole tiles of 16 tokens of packed F16 / BF16
// products (kernels_amx_bf16.cc; activations split into two bf16, each product within 2^-14 of the exact
// one, not the AVX-512 kernel's bits), used only if a start-up check finds them within 1e-5 of
// their emulation. set_amx_bf16_rows installs them (emulated: the C++ tiles) over an AVX-512 table.
void set_amx_bf16_rows(Kernels& k, bool emulated);
bool amx_bf16_tiles_check();
bool amx_bf16_kernels_verified();
// The same table with the tile instructions emulated in C++, int8 and bf16 (tests; needs AVX-512
// VNNI only).
void fill_amx_emulated_kernels(Kernels& k);

inline int dtype_index(DType t) { return static_cast<int>(t); }

}  // namespace infera::cpu
