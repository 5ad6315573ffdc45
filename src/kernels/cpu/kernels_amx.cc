// AMX-INT8 kernels for packed Q8_0, Q4_0, Q4_K and Q6_K weights (packed.h), for the whole tiles of
// 16 tokens of a call of 32 tokens or more (prompts, large batches); the rest, and smaller calls (a
// decode step of up to 31 sequences), run the AVX-512 kernels this level extends.
//
// One TDPBSUD / TDPBSSD multiplies a tile of 16 tokens x 32 activation bytes (signed; copied per
// call into consecutive 512-byte tiles) by a tile of 8 x 64 code bytes: exactly one packed block
// cell, whose 64-byte chunks of "16 rows x 4 elements" are the B-tile layout the instruction
// wants. The result is the 16 x 16 integer block sums; they are stored and scaled per token with
// the same AVX-512 instructions, in the same order, as the VNNI kernel (cvt, ws * d, fma), so a
// token's result is bit for bit the one the AVX-512 kernel gives, whatever its batch. The codes
// are widened once per row group into Q8_0-shaped scratch cells that every token tile of the
// group reuses: Q8_0's and Q4_0's to signed bytes (code - 128, nibble - 8: the integer sums the
// VNNI kernel forms from unsigned codes and its offset correction, so no correction here), Q4_K's
// sub-blocks to bytes 0..15 and Q6_K's to signed bytes (code - 32); the K types keep their
// per-sub-block integer scales (Q6_K: one product per 16 elements, its scale granularity; Q4_K:
// the min term from the activation block sums, as the AVX-512 kernel).
//
// The kernel is a template over its tile operations: HwTiles issues the AMX instructions;
// EmuTiles computes the same tile semantics in C++ (Intel's pseudo-code for TILELOADD, TILESTORED,
// TILEZERO, TDPBSUD, TDPBSSD). Tests run the kernel on EmuTiles on any AVX-512 VNNI machine and on
// HwTiles where the CPU has AMX; at start-up the hardware kernel is checked against the emulated
// one on a small problem (a fault there counts as a disagreement) and is used only if the two agree
// bit for bit.
#include <immintrin.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/amx_tiles_inl.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/simd512_inl.h"
#include "tensor/quant.h"

namespace infera::cpu {

namespace {

using amx::EmuTiles;
using amx::HwTiles;
using amx::TileConfig;

// Tiles of these kernels: two sets of C (16 tokens x 16 rows' int32 sums), A (16 tokens x K
// activation bytes) and B (K / 4 x 64 code bytes: K elements of 16 rows), K = 32 (one block; Q4_K's
// sub-block) or 16 (Q6_K's scale granularity).
constexpr int kC0 = 0, kC1 = 1, kA0 = 2, kA1 = 3, kB0 = 4, kB1 = 5;
constexpr int kTileTok = 16;
TileConfig kernel_config(int k_bytes) {
  TileConfig c;
  for (int set = 0; set < 2; ++set) {
    c.set(set ? kC1 : kC0, kTileTok, 64);
    c.set(set ? kA1 : kA0, kTileTok, k_bytes);
    c.set(set ? kB1 : kB0, k_bytes / 4, 64);
  }
  return c;
}

// Calls of 32 tokens or more run their whole tiles of 16 on the tiles; the rest, and smaller calls
// (a batched decode step of up to 31 sequences), run the AVX-512 kernel. Measured on a Sapphire
// Rapids-class CPU (2 cores, R1-1.5B-shaped Q4_0): the tile products do not overlap the vector
// instructions that scale their sums, and a call widens each row group's codes once for all its
// tiles, so one tile of a decode step streaming its weights from memory loses to AVX-512 (decode
// phase at 8 sequences 93 t/s on 8-row tiles against 128; at 16, 128 against 147) while two win
// (32 sequences: 170 against 161) and prompts gain 1.2-1.4x.
int64_t tiled_tokens(int64_t n_tok) { return n_tok < kAmxMinTokens ? 0 : n_tok / kTileTok * kTileTok; }

// The AVX-512 packed kernels, for the tokens past the tiles.
RowsFn g_vnni[kMaxDType] = {};

// Runs group(g) for every row group of [r0, r1) with the tiles configured for K-byte steps.
template <class Tiles, class GroupFn>
void for_each_group(int64_t r0, int64_t r1, int k_bytes, GroupFn&& group) {
  Tiles::configure(kernel_config(k_bytes));
  for (int64_t g = r0 / kPackRows; g < r1 / kPackRows; ++g) group(g);
  Tiles::release();
}

// One tile product of the set P: the step's 16 x K activation bytes (rows a_stride apart) times its
// K x 16 codes (unsigned, or signed where kSigned), the int32 sums stored to out (16 rows of 64 bytes).
template <class Tiles, bool kSigned, int P>
void tile_product(const uint8_t* a, int64_t a_stride, const uint8_t* b, int32_t* out) {
  constexpr int C = P ? kC1 : kC0, A = P ? kA1 : kA0, B = P ? kB1 : kB0;
  Tiles::template zero<C>();
  Tiles::template load<A>(a, a_stride);
  Tiles::template load<B>(b, 64);
  if constexpr (kSigned) Tiles::template dpbssd<C, A, B>();
  else Tiles::template dpbsud<C, A, B>();
  Tiles::template store<C>(out, 64);
}

// The tile products of one row group and token tile go through steps s = 0, 1, ...: step s
// multiplies the activation bytes of its block (tile_activations) by the codes at b + 16 * kK * s,
// and the vector units then scale its 16 x 16 sums into the token rows' accumulators (the tile
// unit yields only integer sums, and every block has its own weight and activation scales). A
// step's product is issued kAhead steps before its scaling, into alternating tile sets and a
// ring of sum buffers. (Measured per 16 x 16 x 32 cell on a Sapphire Rapids-class CPU: TDPBSSD
// with its loads ~5.5 ns, the tile store ~5.5 ns, the scaling ~8-10 ns, and they add up whatever
// the distance: the tile instructions and the vector units do not overlap there.)
constexpr int kAhead = 2, kSumBufs = 4;

// Per-thread scratch of the tile kernels: the sum buffers, the row group's widened codes, and the
// call's per-block token scales laid out [tile][block][16 tokens] (one broadcast from memory each).
struct TileScratch {
  alignas(64) int32_t sums[kSumBufs][kTileTok * 16] = {};
  std::vector<uint8_t> wide_buf;
  std::vector<float> d, s;       // activation block scales; Q4_K: activation block sums (its min term)
  std::vector<uint8_t> a;        // the activation bytes, tile_activations' layout
  uint8_t* wide(size_t bytes) {
    if (wide_buf.size() < bytes + 64) wide_buf.resize(bytes + 64);
    return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(wide_buf.data()) + 63) & ~uintptr_t{63});
  }
};
TileScratch& scratch() {
  thread_local TileScratch s;
  return s;
}

template <class Tiles, int kK, bool kSigned>
inline void issue_step(const uint8_t* a, const uint8_t* b, int64_t s, int32_t (*sums)[kTileTok * 16]) {
  const uint8_t* as = a + kK * s / 32 * (32 * kTileTok) + kK * s % 32;
  if (s & 1) tile_product<Tiles, kSigned, 1>(as, 32, b + 16 * kK * s, sums[s % kSumBufs]);
  else tile_product<Tiles, kSigned, 0>(as, 32, b + 16 * kK * s, sums[s % kSumBufs]);
}

// The call's activation bytes re-laid out for the A tiles, [tile][block][16 tokens][32 bytes]: a
// step's tile load reads 512 consecutive bytes instead of 16 rows a Q8A row apart.
const uint8_t* tile_activations(std::vector<uint8_t>& buf, const uint8_t* xb, int64_t x_row_bytes, int64_t n_amx,
                                int64_t nb) {
  buf.resize(static_cast<size_t>(n_amx * nb * 32 + 64));
  auto* out = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t{63});
  for (int64_t t = 0; t < n_amx; ++t) {
    const uint8_t* src = xb + t * x_row_bytes;
    uint8_t* o = out + t / kTileTok * nb * 512 + t % kTileTok * 32;
    for (int64_t b = 0; b < nb; ++b)
      _mm256_store_si256(reinterpret_cast<__m256i*>(o + b * 512), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + 32 * b)));
  }
  return out;
}

// The call's tokens' per-block values get(t, b) as [tile][block][16 tokens]: a token's value for a
// block is one broadcast from memory at a constant offset.
template <class T, class Get>
void per_tile_table(std::vector<T>& out, int64_t n_amx, int64_t nb, Get&& get) {
  out.resize(static_cast<size_t>(n_amx * nb));
  for (int64_t t = 0; t < n_amx; ++t) {
    T* o = out.data() + t / kTileTok * nb * kTileTok + t % kTileTok;
    for (int64_t b = 0; b < nb; ++b) o[b * kTileTok] = get(t, b);
  }
}

// Q4_0's cell (4 chunks, low nibbles = elements 4k+m, high = 16+4k+m) as a Q8_0-shaped cell of
// 8 chunks (chunk k = elements 4k..4k+3 of the 16 rows), codes 0..15, or signed (nibble - 8).
template <bool kSigned>
void widen_q4(const uint8_t* cell, uint8_t* out) {
  const __m512i low = _mm512_set1_epi8(0x0F), off = _mm512_set1_epi8(kSigned ? 8 : 0);
  for (int k = 0; k < 4; ++k) {
    const __m512i raw = _mm512_load_si512(cell + 64 * k);
    _mm512_store_si512(out + 64 * k, _mm512_sub_epi8(_mm512_and_si512(raw, low), off));
    _mm512_store_si512(out + 64 * (k + 4), _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(raw, 4), low), off));
  }
}

// Q8_0's cell (8 chunks of codes + 128) as signed codes: code ^ 0x80 is the code - 128 in two's
// complement.
void widen_q8_0_signed(const uint8_t* cell, uint8_t* out) {
  const __m512i top = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int k = 0; k < 8; ++k)
    _mm512_store_si512(out + 64 * k, _mm512_xor_si512(_mm512_load_si512(cell + 64 * k), top));
}

// Q8_0 and Q4_0, one token tile of a row group, codes widened once per row group to signed bytes
// (the integer sums the VNNI kernel forms with its unsigned codes and offset correction): per
// block, for each token, sum -> f32, times ws * d, accumulated: the AVX-512 kernel's instructions
// in its order, so each result has its bits.
template <class Tiles>
void q_group_tile(const uint8_t* codes, const uint8_t* scales, const uint8_t* a, int64_t nb, const float* d, float* y,
                  int64_t ldy) {
  auto* sums = scratch().sums;
  __m512 acc[kTileTok];
  for (auto& v : acc) v = _mm512_setzero_ps();
  for (int64_t s = 0; s < kAhead && s < nb; ++s) issue_step<Tiles, 32, true>(a, codes, s, sums);
  for (int64_t b = 0; b < nb; ++b) {
    if (b + kAhead < nb) issue_step<Tiles, 32, true>(a, codes, b + kAhead, sums);
    const int32_t* c = sums[b % kSumBufs];
    const float* db = d + b * kTileTok;
    const __m512 ws = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(scales + 32 * b)));
#pragma GCC unroll 16
    for (int i = 0; i < kTileTok; ++i)
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * i)), _mm512_mul_ps(ws, _mm512_set1_ps(db[i])), acc[i]);
  }
  for (int i = 0; i < kTileTok; ++i) _mm512_storeu_ps(y + i * ldy, acc[i]);
}

template <DType T, class Tiles>
void rows_packed_amx(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                     int64_t n_tok, float* y, int64_t ldy) {
  const int64_t n_amx = tiled_tokens(n_tok);
  const auto* xb = static_cast<const uint8_t*>(x);
  if (n_amx > 0) {
    const int64_t nb = n_in / 32, cb = packed_code_bytes(T), gb = packed_group_bytes(T, n_in);
    TileScratch& sc = scratch();
    per_tile_table(sc.d, n_amx, nb, [&](int64_t t, int64_t b) { return q8a_row(xb + t * x_row_bytes, n_in).d[b]; });
    uint8_t* wide = sc.wide(static_cast<size_t>(nb * 512));
    const uint8_t* at = tile_activations(sc.a, xb, x_row_bytes, n_amx, nb);
    for_each_group<Tiles>(r0, r1, 32, [&](int64_t g) {
      const uint8_t* cells = w + g * gb;
      for (int64_t b = 0; b < nb; ++b) {
        if constexpr (T == DType::Q4_0) widen_q4<true>(cells + b * cb, wide + b * 512);
        else widen_q8_0_signed(cells + b * cb, wide + b * 512);
      }
      for (int64_t t0 = 0; t0 < n_amx; t0 += kTileTok) {
        const int64_t tab = t0 * nb;
        q_group_tile<Tiles>(wide, cells + nb * cb, at + tab * 32, nb, sc.d.data() + tab, y + t0 * ldy + g * kPackRows, ldy);
      }
    });
  }
  if (n_amx < n_tok)
    g_vnni[dtype_index(T)](w, n_in, r0, r1, xb + n_amx * x_row_bytes, x_row_bytes, n_tok - n_amx, y + n_amx * ldy, ldy);
}

// Packed Q6_K sub-block (4 nibble chunks, 2 chunks of top bits) as 8 chunks of signed codes
// (6-bit code - 32), chunk 4h + k = elements 16h + 4k .. 16h + 4k + 3 of the 16 rows.
void widen_q6_k_signed(const uint8_t* sub, uint8_t* out) {
  const __m512i off = _mm512_set1_epi8(32);
  for (int h = 0; h < 2; ++h) {
    const __m512i top = _mm512_load_si512(sub + 256 + 64 * h);
    for (int k = 0; k < 4; ++k) {
      const __m512i raw = _mm512_load_si512(sub + 64 * k);
      _mm512_store_si512(out + 64 * (4 * h + k),
                         _mm512_sub_epi8(x512::six_bit_codes(h ? _mm512_srli_epi16(raw, 4) : raw, top, k), off));
    }
  }
}

// Q4_K, one token tile of a row group: per sub-block, sum -> f32 times ws * d, then the min term
// (wm times the activation block sum) subtracted, as the AVX-512 kernel.
template <class Tiles>
void q4k_group_tile(const uint8_t* grp, const uint8_t* wide, const uint8_t* a, int64_t nb, const float* d,
                    const float* bsum, float* y, int64_t ldy) {
  const int64_t sbb = packed_superblock_bytes(DType::Q4_K);
  auto* sums = scratch().sums;
  __m512 acc[kTileTok];
  for (auto& v : acc) v = _mm512_setzero_ps();
  for (int64_t s = 0; s < kAhead && s < nb; ++s) issue_step<Tiles, 32, false>(a, wide, s, sums);
  for (int64_t ab = 0; ab < nb; ++ab) {
    if (ab + kAhead < nb) issue_step<Tiles, 32, false>(a, wide, ab + kAhead, sums);
    const int32_t* c = sums[ab % kSumBufs];
    const float* db = d + ab * kTileTok;
    const float* sbk = bsum + ab * kTileTok;
    const uint8_t* sb = grp + ab / 8 * sbb;
    const int64_t j = ab % 8;
    const __m512 dv = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(sb + 2304)));
    const __m512 dmv = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(sb + 2336)));
    const __m512 ws = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(sb + 2048 + 16 * j)))), dv);
    const __m512 wm = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(sb + 2176 + 16 * j)))), dmv);
#pragma GCC unroll 16
    for (int i = 0; i < kTileTok; ++i)
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * i)), _mm512_mul_ps(ws, _mm512_set1_ps(db[i])), acc[i]);
#pragma GCC unroll 16
    for (int i = 0; i < kTileTok; ++i) acc[i] = _mm512_fnmadd_ps(wm, _mm512_set1_ps(sbk[i]), acc[i]);
  }
  for (int i = 0; i < kTileTok; ++i) _mm512_storeu_ps(y + i * ldy, acc[i]);
}

// Q6_K, one token tile of a row group: a step per 16 elements (codes widened to signed bytes), sum
// -> f32 times ws * d.
template <class Tiles>
void q6k_group_tile(const uint8_t* grp, const uint8_t* wide, const uint8_t* a, int64_t nb, const float* d, float* y,
                    int64_t ldy) {
  const int64_t sbb = packed_superblock_bytes(DType::Q6_K), n_steps = 2 * nb;
  auto* sums = scratch().sums;
  __m512 acc[kTileTok];
  for (auto& v : acc) v = _mm512_setzero_ps();
  for (int64_t s = 0; s < kAhead && s < n_steps; ++s) issue_step<Tiles, 16, true>(a, wide, s, sums);
  for (int64_t s = 0; s < n_steps; ++s) {
    if (s + kAhead < n_steps) issue_step<Tiles, 16, true>(a, wide, s + kAhead, sums);
    const int32_t* c = sums[s % kSumBufs];
    const int64_t ab = s / 2, j = ab % 8, h = s % 2;
    const float* db = d + ab * kTileTok;
    const uint8_t* sb = grp + ab / 8 * sbb;
    const __m512 dv = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(sb + kQ6kD)));
    const __m512 ws = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(sb + kQ6kScales + 16 * (2 * j + h))))),
        dv);
#pragma GCC unroll 16
    for (int i = 0; i < kTileTok; ++i)
      acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * i)), _mm512_mul_ps(ws, _mm512_set1_ps(db[i])), acc[i]);
  }
  for (int i = 0; i < kTileTok; ++i) _mm512_storeu_ps(y + i * ldy, acc[i]);
}

// The K types (packed.h): every sub-block widened once per row group to a Q8_0-shaped cell (Q4_K:
// codes 0..15; Q6_K: signed, code - 32); per tile of tokens one TDPBSUD per sub-block (Q6_K: one
// TDPBSSD per 16 elements), scaled as the AVX-512 kernel does.
template <DType T, class Tiles>
void rows_packed_k_amx(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                       int64_t n_tok, float* y, int64_t ldy) {
  constexpr bool kQ4 = T == DType::Q4_K;
  const int64_t n_amx = tiled_tokens(n_tok);
  const auto* xb = static_cast<const uint8_t*>(x);
  if (n_amx > 0) {
    const int64_t nsb = n_in / 256, nb = n_in / 32, gb = packed_group_bytes(T, n_in);
    const int64_t sbb = packed_superblock_bytes(T);
    TileScratch& sc = scratch();
    per_tile_table(sc.d, n_amx, nb, [&](int64_t t, int64_t b) { return q8a_row(xb + t * x_row_bytes, n_in).d[b]; });
    if (kQ4)
      per_tile_table(sc.s, n_amx, nb, [&](int64_t t, int64_t b) { return q8a_row(xb + t * x_row_bytes, n_in).s32[b]; });
    uint8_t* wide = sc.wide(static_cast<size_t>(nb * 512));
    const uint8_t* at = tile_activations(sc.a, xb, x_row_bytes, n_amx, nb);
    for_each_group<Tiles>(r0, r1, kQ4 ? 32 : 16, [&](int64_t g) {
      const uint8_t* grp = w + g * gb;
      for (int64_t s = 0; s < nsb; ++s)
        for (int j = 0; j < 8; ++j) {
          uint8_t* o = wide + (8 * s + j) * 512;
          if constexpr (kQ4) widen_q4<false>(grp + s * sbb + 256 * j, o);
          else widen_q6_k_signed(grp + s * sbb + kQ6kSubBlock * j, o);
        }
      for (int64_t t0 = 0; t0 < n_amx; t0 += kTileTok) {
        const int64_t tab = t0 * nb;
        float* yt = y + t0 * ldy + g * kPackRows;
        if constexpr (kQ4) q4k_group_tile<Tiles>(grp, wide, at + tab * 32, nb, sc.d.data() + tab, sc.s.data() + tab, yt, ldy);
        else q6k_group_tile<Tiles>(grp, wide, at + tab * 32, nb, sc.d.data() + tab, yt, ldy);
      }
    });
  }
  if (n_amx < n_tok)
    g_vnni[dtype_index(T)](w, n_in, r0, r1, xb + n_amx * x_row_bytes, x_row_bytes, n_tok - n_amx, y + n_amx * ldy, ldy);
}

constexpr DType kAmxTypes[] = {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K};

template <class Tiles>
void set_amx_rows(Kernels& k) {
  k.packed_rows[dtype_index(DType::Q8_0)] = rows_packed_amx<DType::Q8_0, Tiles>;
  k.packed_rows[dtype_index(DType::Q4_0)] = rows_packed_amx<DType::Q4_0, Tiles>;
  k.packed_rows[dtype_index(DType::Q4_K)] = rows_packed_k_amx<DType::Q4_K, Tiles>;
  k.packed_rows[dtype_index(DType::Q6_K)] = rows_packed_k_amx<DType::Q6_K, Tiles>;
}

bool g_amx_verified = false, g_amx_bf16_verified = false;

}  // namespace

void fill_amx_emulated_kernels(Kernels& k) {
  fill_avx512_kernels(k);
  for (DType t : kAmxTypes) g_vnni[dtype_index(t)] = k.packed_rows[dtype_index(t)];
  set_amx_rows<EmuTiles>(k);
  set_amx_bf16_rows(k, true);
  k.isa = Isa::kAmx;  // so that a backend tiles tokens as for the real tiles
}

// The hardware kernels against the emulated ones on 48 rows x 256 columns x 37 tokens (two whole
// tiles and a rest of 5 on AVX-512) of every type: the outputs must be identical bits. Everything is allocated
// before the guarded part, which a fault leaves by a jump (no destructors run there).
bool amx_tiles_check() {
  Kernels hw, emu;
  fill_amx_emulated_kernels(emu);
  fill_avx512_kernels(hw);
  set_amx_rows<HwTiles>(hw);
  const int64_t n_in = 256, n_out = 48, n_tok = 37, xrb = q8a_row_bytes(n_in);
  std::mt19937 gen(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> xf(static_cast<size_t>(n_in * n_tok)), wf(static_cast<size_t>(n_in * n_out));
  for (float& v : xf) v = nd(gen);
  for (float& v : wf) v = nd(gen);
  std::vector<uint8_t> xq(static_cast<size_t>(xrb * n_tok));
  for (int64_t t = 0; t < n_tok; ++t) hw.quantize_q8a(xf.data() + t * n_in, xq.data() + t * xrb, n_in);
  struct Case {
    DType type;
    std::vector<uint8_t> buf;
    const uint8_t* packed;
    std::vector<float> y_hw, y_emu;
  };
  std::vector<Case> cases;
  for (DType t : kAmxTypes) {
    const int64_t rb = row_bytes(t, n_in);
    std::vector<uint8_t> raw(static_cast<size_t>(rb * n_out));
    for (int64_t r = 0; r < n_out; ++r) quantize_row(t, wf.data() + r * n_in, raw.data() + r * rb, n_in);
    Case c{t, std::vector<uint8_t>(static_cast<size_t>(packed_bytes(t, n_in, n_out) + 64)), nullptr,
           std::vector<float>(static_cast<size_t>(n_out * n_tok)), std::vector<float>(static_cast<size_t>(n_out * n_tok))};
    auto* packed = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(c.buf.data()) + 63) & ~uintptr_t{63});
    pack_weights(t, raw.data(), n_in, n_out, packed);
    c.packed = packed;
    emu.packed_rows[dtype_index(t)](packed, n_in, 0, n_out, xq.data(), xrb, n_tok, c.y_emu.data(), n_out);
    cases.push_back(std::move(c));
  }
  const bool ran = amx::without_faults([&] {
    for (Case& c : cases)
      hw.packed_rows[dtype_index(c.type)](c.packed, n_in, 0, n_out, xq.data(), xrb, n_tok, c.y_hw.data(), n_out);
    return true;
  });
  if (!ran) return false;
  for (const Case& c : cases)
    if (std::memcmp(c.y_hw.data(), c.y_emu.data(), c.y_hw.size() * sizeof(float)) != 0) return false;
  return true;
}

void fill_amx_kernels(Kernels& k) {
  fill_avx512_kernels(k);
  for (DType t : kAmxTypes) g_vnni[dtype_index(t)] = k.packed_rows[dtype_index(t)];
  k.isa = Isa::kAmx;
  g_amx_verified = amx_tiles_check();
  if (g_amx_verified) {
    set_amx_rows<HwTiles>(k);
  } else {
    std::fprintf(stderr,
                 "warning: the AMX tile kernels faulted or disagreed with their emulation on this CPU; using the "
                 "AVX-512 kernels\n");
  }
  if (cpu_features().amx_bf16) {
    g_amx_bf16_verified = amx_bf16_tiles_check();
    if (g_amx_bf16_verified) {
      set_amx_bf16_rows(k, false);
    } else {
      std::fprintf(stderr,
                   "warning: the AMX-BF16 tile kernels faulted or strayed from their emulation on this CPU; F16 and "
                   "BF16 weights use the AVX-512 kernels\n");
    }
  }
}

// The start-up checks run when the amx table is first built: build it first (a process whose
// first question is this one, e.g. a test run on its own, would otherwise read "not verified").
bool amx_kernels_verified() {
  if (isa_supported(Isa::kAmx)) kernels_for(Isa::kAmx);
  return g_amx_verified;
}
bool amx_bf16_kernels_verified() {
  if (isa_supported(Isa::kAmx)) kernels_for(Isa::kAmx);
  return g_amx_bf16_verified;
}

}  // namespace infera::cpu
