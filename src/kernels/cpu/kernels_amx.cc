// AMX-INT8 kernels for packed Q8_0, Q4_0, Q4_K and Q6_K weights (packed.h), for prompts and
// batches of 4 tokens or more, in tiles of 16 tokens and one tile of the rest (a batched decode step
// of 4-15 sequences is one such tile); fewer tokens, and a rest of 1-3, run the AVX-512 kernels
// this level extends.
//
// One TDPBSUD multiplies a tile of 16 tokens x 32 activation bytes (signed; the Q8A rows read in
// place, stride = the row length) by a tile of 8 x 64 code bytes (unsigned): exactly one packed
// block cell, whose 64-byte chunks of "16 rows x 4 elements" are the B-tile layout TDPBSUD wants.
// The result is the 16 x 16 integer block sums; they are stored and scaled per token with the same
// AVX-512 instructions, in the same order, as the VNNI kernel (code offset added in the integer
// sum, then cvt, ws * d, fma), so a token's result is bit for bit the one the AVX-512 kernel gives,
// whatever its batch. Q4_0's nibble cells, and the K types' sub-blocks, are widened once per row
// group into Q8_0-shaped scratch cells (byte codes) that every token tile of the group reuses; the
// K types keep their per-sub-block integer scales (Q6_K: one TDPBSUD per 16 elements, its scale
// granularity; Q4_K: the min term from the activation block sums, as the AVX-512 kernel).
//
// The kernel is a template over its tile operations: HwTiles issues the AMX instructions;
// EmuTiles computes the same tile semantics in C++ (Intel's pseudo-code for TILELOADD, TILESTORED,
// TILEZERO, TDPBSUD). Tests run the kernel on EmuTiles on any AVX-512 VNNI machine and on
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

// Tiles of these kernels: C (16 tokens x 16 rows' int32 sums); A (16 tokens x 32 activation
// bytes) and B (8 x 64 code bytes: 32 elements of 16 rows) for a 32-element block; A16 and B16
// the same for 16 elements (Q6_K's scales cover 16).
constexpr int kC = 0, kA = 1, kB = 2, kA16 = 3, kB16 = 4;
constexpr int kTileTok = 16;
// A tile of m tokens (1..16): the A and C tiles have m rows.
TileConfig kernel_config(int m) {
  TileConfig c;
  c.set(kC, m, 64);
  c.set(kA, m, 32);
  c.set(kB, 8, 64);
  c.set(kA16, m, 16);
  c.set(kB16, 4, 64);
  return c;
}

// Tokens go through tiles of 16, then one tile of the rest if it has at least kMinTileTok tokens
// (a batched decode step of 4-15 sequences is one such tile); fewer run the AVX-512 kernel.
constexpr int kMinTileTok = 4;
int64_t tiled_tokens(int64_t n_tok) {
  const int64_t rest = n_tok % kTileTok;
  return rest >= kMinTileTok ? n_tok : n_tok - rest;
}

// The AVX-512 packed kernels, for the tokens past the tiles.
RowsFn g_vnni[kMaxDType] = {};

// Runs group(g, t_begin, t_end, m) for every row group of [r0, r1): first over the whole tiles of
// 16 tokens, then over the one tile of m < 16 tokens up to n_amx, with the tiles configured for it.
template <class Tiles, class GroupFn>
void tile_passes(int64_t r0, int64_t r1, int64_t n_amx, GroupFn&& group) {
  const int64_t n_full = n_amx / kTileTok * kTileTok;
  for (int pass = 0; pass < 2; ++pass) {
    const int64_t t_begin = pass == 0 ? 0 : n_full, t_end = pass == 0 ? n_full : n_amx;
    if (t_begin >= t_end) continue;
    Tiles::configure(kernel_config(pass == 0 ? kTileTok : static_cast<int>(t_end - t_begin)));
    for (int64_t g = r0 / kPackRows; g < r1 / kPackRows; ++g)
      group(g, t_begin, t_end, pass == 0 ? kTileTok : static_cast<int>(t_end - t_begin));
  }
  Tiles::release();
}

// Q4_0's cell (4 chunks, low nibbles = elements 4k+m, high = 16+4k+m) as a Q8_0-shaped cell of
// 8 chunks (chunk k = elements 4k..4k+3 of the 16 rows), codes 0..15.
void widen_q4_0(const uint8_t* cell, uint8_t* out) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (int k = 0; k < 4; ++k) {
    const __m512i raw = _mm512_load_si512(cell + 64 * k);
    _mm512_store_si512(out + 64 * k, _mm512_and_si512(raw, low));
    _mm512_store_si512(out + 64 * (k + 4), _mm512_and_si512(_mm512_srli_epi16(raw, 4), low));
  }
}

template <DType T, class Tiles>
void rows_packed_amx(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                     int64_t n_tok, float* y, int64_t ldy) {
  const int64_t n_amx = tiled_tokens(n_tok);
  const auto* xb = static_cast<const uint8_t*>(x);
  if (n_amx > 0) {
    const int64_t nb = n_in / 32, cb = packed_code_bytes(T), gb = packed_group_bytes(T, n_in);
    const int32_t offset = packed_offset(T);
    thread_local std::vector<int32_t> corr;  // [token][block]: the code offset's share of the sum
    thread_local std::vector<const float*> d;  // [token]: the Q8A block scales
    corr.resize(static_cast<size_t>(n_amx * nb));
    d.resize(static_cast<size_t>(n_amx));
    for (int64_t t = 0; t < n_amx; ++t) {
      const Q8ARow xa = q8a_row(xb + t * x_row_bytes, n_in);
      d[static_cast<size_t>(t)] = xa.d;
      for (int64_t b = 0; b < nb; ++b) corr[static_cast<size_t>(t * nb + b)] =
            -offset * (x512::byte_sum16(xa.qs + 32 * b) + x512::byte_sum16(xa.qs + 32 * b + 16));
    }
    thread_local std::vector<uint8_t> wide_buf;  // Q4_0: the row group's cells widened, 64-byte aligned
    if (T == DType::Q4_0) wide_buf.resize(static_cast<size_t>(nb * 512 + 64));
    uint8_t* wide = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(wide_buf.data()) + 63) & ~uintptr_t{63});
    alignas(64) int32_t c[kTileTok * 16];
    tile_passes<Tiles>(r0, r1, n_amx, [&](int64_t g, int64_t t_begin, int64_t t_end, int m) {
      const uint8_t* cells = w + g * gb;
      const uint8_t* scales = cells + nb * cb;
      const uint8_t* codes = cells;
      if constexpr (T == DType::Q4_0) {
        for (int64_t b = 0; b < nb; ++b) widen_q4_0(cells + b * cb, wide + b * 512);
        codes = wide;
      }
      for (int64_t t0 = t_begin; t0 < t_end; t0 += kTileTok) {
        __m512 accf[kTileTok];
        for (auto& a : accf) a = _mm512_setzero_ps();
        const uint8_t* a_base = xb + t0 * x_row_bytes;
        const int32_t* cr = corr.data() + t0 * nb;
        const float* const* dt = d.data() + t0;
        for (int64_t b = 0; b < nb; ++b) {
          Tiles::template zero<kC>();
          Tiles::template load<kA>(a_base + 32 * b, x_row_bytes);
          Tiles::template load<kB>(codes + 512 * b, 64);
          Tiles::template dpbsud<kC, kA, kB>();
          Tiles::template store<kC>(c, 64);
          const __m512 ws = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(scales + 32 * b)));
          for (int i = 0; i < kTileTok; ++i) {
            if (i >= m) break;
            const __m512i sum = _mm512_add_epi32(_mm512_set1_epi32(cr[i * nb + b]), _mm512_load_si512(c + 16 * i));
            accf[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(ws, _mm512_set1_ps(dt[i][b])), accf[i]);
          }
        }
        for (int i = 0; i < m; ++i) _mm512_storeu_ps(y + (t0 + i) * ldy + g * kPackRows, accf[i]);
      }
    });
  }
  if (n_amx < n_tok)
    g_vnni[dtype_index(T)](w, n_in, r0, r1, xb + n_amx * x_row_bytes, x_row_bytes, n_tok - n_amx, y + n_amx * ldy, ldy);
}

// Packed Q6_K sub-block (4 nibble chunks, 2 chunks of top bits) as 8 chunks of 6-bit codes, chunk
// 4h + k = elements 16h + 4k .. 16h + 4k + 3 of the 16 rows.
void widen_q6_k(const uint8_t* sub, uint8_t* out) {
  for (int h = 0; h < 2; ++h) {
    const __m512i top = _mm512_load_si512(sub + 256 + 64 * h);
    for (int k = 0; k < 4; ++k) {
      const __m512i raw = _mm512_load_si512(sub + 64 * k);
      _mm512_store_si512(out + 64 * (4 * h + k), x512::six_bit_codes(h ? _mm512_srli_epi16(raw, 4) : raw, top, k));
    }
  }
}

// The K types (packed.h): every sub-block widened once per row group to a Q8_0-shaped cell; per
// tile of 16 tokens one TDPBSUD per sub-block (Q6_K: per 16 elements), scaled as the AVX-512
// kernel does (Q4_K: then the min term from the activation block sums).
template <DType T, class Tiles>
void rows_packed_k_amx(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                       int64_t n_tok, float* y, int64_t ldy) {
  constexpr bool kQ4 = T == DType::Q4_K;
  const int64_t n_amx = tiled_tokens(n_tok);
  const auto* xb = static_cast<const uint8_t*>(x);
  if (n_amx > 0) {
    const int64_t nsb = n_in / 256, nb = n_in / 32, n16 = n_in / 16, gb = packed_group_bytes(T, n_in);
    const int64_t sbb = packed_superblock_bytes(T);
    thread_local std::vector<int32_t> corr;  // Q6_K, [token][16 elements]: -32 * the activation sum
    thread_local std::vector<Q8ARow> xa;     // [token]
    xa.resize(static_cast<size_t>(n_amx));
    if (!kQ4) corr.resize(static_cast<size_t>(n_amx * n16));
    for (int64_t t = 0; t < n_amx; ++t) {
      const Q8ARow r = q8a_row(xb + t * x_row_bytes, n_in);
      xa[static_cast<size_t>(t)] = r;
      if (!kQ4)
        for (int64_t i = 0; i < n16; ++i) corr[static_cast<size_t>(t * n16 + i)] = -32 * x512::byte_sum16(r.qs + 16 * i);
    }
    thread_local std::vector<uint8_t> wide_buf;
    wide_buf.resize(static_cast<size_t>(nb * 512 + 64));
    uint8_t* wide = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(wide_buf.data()) + 63) & ~uintptr_t{63});
    alignas(64) int32_t c[kTileTok * 16];
    tile_passes<Tiles>(r0, r1, n_amx, [&](int64_t g, int64_t t_begin, int64_t t_end, int m) {
      const uint8_t* grp = w + g * gb;
      for (int64_t s = 0; s < nsb; ++s)
        for (int j = 0; j < 8; ++j) {
          uint8_t* o = wide + (8 * s + j) * 512;
          if constexpr (kQ4) widen_q4_0(grp + s * sbb + 256 * j, o);
          else widen_q6_k(grp + s * sbb + kQ6kSubBlock * j, o);
        }
      for (int64_t t0 = t_begin; t0 < t_end; t0 += kTileTok) {
        __m512 accf[kTileTok];
        for (auto& a : accf) a = _mm512_setzero_ps();
        const uint8_t* a_base = xb + t0 * x_row_bytes;
        const Q8ARow* xt = xa.data() + t0;
        for (int64_t s = 0; s < nsb; ++s) {
          const uint8_t* sb = grp + s * sbb;
          const __m512 dv = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(sb + (kQ4 ? 2304 : kQ6kD))));
          const __m512 dmv = kQ4 ? _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(sb + 2336))) : dv;
          for (int j = 0; j < 8; ++j) {
            const int64_t ab = 8 * s + j;
            if constexpr (kQ4) {
              const __m512 ws = _mm512_mul_ps(
                  _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(sb + 2048 + 16 * j)))), dv);
              const __m512 wm = _mm512_mul_ps(
                  _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(sb + 2176 + 16 * j)))), dmv);
              Tiles::template zero<kC>();
              Tiles::template load<kA>(a_base + 32 * ab, x_row_bytes);
              Tiles::template load<kB>(wide + 512 * ab, 64);
              Tiles::template dpbsud<kC, kA, kB>();
              Tiles::template store<kC>(c, 64);
              for (int i = 0; i < kTileTok; ++i) {
                if (i >= m) break;
                accf[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * i)),
                                          _mm512_mul_ps(ws, _mm512_set1_ps(xt[i].d[ab])), accf[i]);
              }
              for (int i = 0; i < kTileTok; ++i) {
                if (i >= m) break;
                accf[i] = _mm512_fnmadd_ps(wm, _mm512_set1_ps(xt[i].s32[ab]), accf[i]);
              }
            } else {
              for (int h = 0; h < 2; ++h) {
                const __m512 ws = _mm512_mul_ps(
                    _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                        _mm_load_si128(reinterpret_cast<const __m128i*>(sb + kQ6kScales + 16 * (2 * j + h))))),
                    dv);
                Tiles::template zero<kC>();
                Tiles::template load<kA16>(a_base + 32 * ab + 16 * h, x_row_bytes);
                Tiles::template load<kB16>(wide + 512 * ab + 256 * h, 64);
                Tiles::template dpbsud<kC, kA16, kB16>();
                Tiles::template store<kC>(c, 64);
                const int32_t* cr = corr.data() + t0 * n16 + 2 * ab + h;
                for (int i = 0; i < kTileTok; ++i) {
                  if (i >= m) break;
                  const __m512i sum = _mm512_add_epi32(_mm512_set1_epi32(cr[i * n16]), _mm512_load_si512(c + 16 * i));
                  accf[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(ws, _mm512_set1_ps(xt[i].d[ab])), accf[i]);
                }
              }
            }
          }
        }
        for (int i = 0; i < m; ++i) _mm512_storeu_ps(y + (t0 + i) * ldy + g * kPackRows, accf[i]);
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
// tiles and a tile of 5) of every type: the outputs must be identical bits. Everything is allocated
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

bool amx_kernels_verified() { return g_amx_verified; }
bool amx_bf16_kernels_verified() { return g_amx_bf16_verified; }

}  // namespace infera::cpu
