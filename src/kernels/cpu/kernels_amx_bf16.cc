// AMX-BF16 tile kernels for packed F16 and BF16 weights (packed.h) with f32 activations, for the
// whole tiles of 16 tokens of a call of 32 tokens or more (as the int8 tiles, kernels_amx.cc: the
// per-call weight conversion then serves two tiles or more); the rest, and smaller calls (a decode
// step of up to 31 sequences), run the AVX-512 kernels.
//
// One TDPBF16PS multiplies a tile of 16 tokens x 32 bf16 by a tile of 16 pair rows x 16 weight
// rows x 2 bf16 (32 elements of 16 rows) into the 16 x 16 f32 sums. bf16 keeps 8 significant bits,
// so values are split to keep the f32 kernels' precision:
//   - each activation a = a_hi + a_lo + e, a_hi = a rounded to bf16, a_lo = (a - a_hi) rounded to
//     bf16, |e| <= 2^-16 |a|;
//   - an F16 weight exactly, w = w_hi + w_lo (w_hi its leading 8 significant bits, w_lo the other
//     3); a BF16 weight is one bf16.
// Tile products per 32 elements: BF16 a_hi w + a_lo w (2); F16 a_hi w_hi + a_hi w_lo + a_lo w_hi
// (3; the dropped a_lo w_lo is below 2^-15 of the product). Each product is so within 2^-14 of the
// exact one (llama.cpp's F16 path rounds the activations to f16: 2^-11), and sums are f32. These
// are not the AVX-512 kernel's bits: at this level a token of an F16 or BF16 matrix gets the same
// bits wherever it falls in a whole tile of 16, and within that tolerance in the rest.
//
// Per row group of 16 weight rows the weights are converted once into B tiles in per-thread scratch
// (F16: hi and lo, 64 bytes per element of the group; BF16: 32), reused by every token tile of the
// call; the activations once per call into hi and lo rows padded to whole tiles of 16 tokens (4
// bytes per value, as the f32 rows). Token tiles go in pairs, two accumulators sharing each B load.
// Template over the tile operations as kernels_amx.cc: HwTiles on the CPU, EmuTiles in tests; the
// hardware kernel is used only if a start-up check finds it within 1e-5 of the emulation.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "kernels/cpu/amx_tiles_inl.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/packed.h"

namespace infera::cpu {

namespace {

using amx::EmuTiles;
using amx::HwTiles;
using amx::TileConfig;

constexpr int kTileTok = 16;
// Two accumulators (token tiles 2i and 2i + 1), their activation hi / lo tiles, the weights' hi / lo.
constexpr int kC0 = 0, kC1 = 1, kAh0 = 2, kAl0 = 3, kAh1 = 4, kAl1 = 5, kBh = 6, kBl = 7;
constexpr int64_t kCellBytes = 1024;  // one B tile: 16 pair rows x 64 bytes

TileConfig bf16_config() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) c.set(t, kTileTok, 64);
  return c;
}

// The AVX-512 packed kernels, for the tokens past the tiles.
RowsFn g_vnni[kMaxDType] = {};

uint8_t* align64(uint8_t* p) { return reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63}); }

// f32 bits -> bf16 bits rounded to nearest even, in the low half of each lane (finite values).
inline __m512i bf16_rne(__m512i u) {
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  return _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7FFF), odd)), 16);
}

// n_tok activation rows (f32) as hi and lo bf16 rows of nk * 32 values (zeros past n_in), then
// zero rows up to n_pad.
void split_activations(const uint8_t* xb, int64_t x_row_bytes, int64_t n_in, int64_t n_tok, int64_t n_pad, int64_t nk,
                       uint16_t* hi, uint16_t* lo) {
  const int64_t n = nk * 32;
  for (int64_t t = 0; t < n_pad; ++t) {
    uint16_t* h = hi + t * n;
    uint16_t* l = lo + t * n;
    if (t >= n_tok) {
      std::fill(h, h + n, uint16_t{0});
      std::fill(l, l + n, uint16_t{0});
      continue;
    }
    const auto* x = reinterpret_cast<const float*>(xb + t * x_row_bytes);
    for (int64_t i = 0; i < n; i += 16) {
      const int64_t left = n_in - i;
      const __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
      const __m512 f = _mm512_maskz_loadu_ps(m, x + i);
      const __m512i hb = bf16_rne(_mm512_castps_si512(f));
      const __m512 rest = _mm512_sub_ps(f, _mm512_castsi512_ps(_mm512_slli_epi32(hb, 16)));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(h + i), _mm512_cvtepi32_epi16(hb));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(l + i), _mm512_cvtepi32_epi16(bf16_rne(_mm512_castps_si512(rest))));
    }
  }
}

// One packed row group (element e's 16 row values at 32e) as nk B-tile cells: pair row k of cell
// c holds, for each row r, the bf16 pair (element 32c + 2k, element 32c + 2k + 1) as dword r (the
// first in the low half). F16: hi cells at bh, lo cells at bl, w = hi + lo exactly.
template <DType T>
void weight_cells(const uint8_t* grp, int64_t n_in, int64_t nk, uint8_t* bh, uint8_t* bl) {
  const __m512i top = _mm512_set1_epi32(static_cast<int>(0xFFFF0000u));
  for (int64_t c = 0; c < nk; ++c)
    for (int k = 0; k < 16; ++k) {
      const int64_t e0 = 32 * c + 2 * k, valid = std::clamp<int64_t>(n_in - e0, 0, 2);
      const __mmask32 m = valid == 2 ? ~__mmask32{0} : valid == 1 ? __mmask32{0xFFFF} : __mmask32{0};
      const __m512i raw = _mm512_maskz_loadu_epi16(m, grp + 32 * e0);  // element e0's 16 rows, then e0 + 1's
      const __m256i w0 = _mm512_castsi512_si256(raw), w1 = _mm512_extracti64x4_epi64(raw, 1);
      const int64_t at = c * kCellBytes + 64 * k;
      if constexpr (T == DType::BF16) {
        const __m512i pair = _mm512_or_si512(_mm512_slli_epi32(_mm512_cvtepu16_epi32(w1), 16), _mm512_cvtepu16_epi32(w0));
        _mm512_store_si512(bh + at, pair);
      } else {
        const __m512 f0 = _mm512_cvtph_ps(w0), f1 = _mm512_cvtph_ps(w1);
        const __m512i h0 = _mm512_and_si512(_mm512_castps_si512(f0), top), h1 = _mm512_and_si512(_mm512_castps_si512(f1), top);
        // f - its leading 8 bits: exact, and at most 3 significant bits (a bf16 with zero low half).
        const __m512i l0 = _mm512_castps_si512(_mm512_sub_ps(f0, _mm512_castsi512_ps(h0)));
        const __m512i l1 = _mm512_castps_si512(_mm512_sub_ps(f1, _mm512_castsi512_ps(h1)));
        _mm512_store_si512(bh + at, _mm512_or_si512(h1, _mm512_srli_epi32(h0, 16)));
        _mm512_store_si512(bl + at, _mm512_or_si512(l1, _mm512_srli_epi32(l0, 16)));
      }
    }
}

template <DType T, class Tiles>
void rows_packed_half_amx(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                          int64_t n_tok, float* y, int64_t ldy) {
  constexpr bool kF16 = T == DType::F16;
  const int64_t n_amx = n_tok < kAmxMinTokens ? 0 : n_tok / kTileTok * kTileTok;
  const auto* xb = static_cast<const uint8_t*>(x);
  if (n_amx > 0) {
    const int64_t nk = (n_in + 31) / 32, n_tiles = (n_amx + kTileTok - 1) / kTileTok, rs = nk * 64;  // split row bytes
    const int64_t a_bytes = n_tiles * kTileTok * rs, b_bytes = nk * kCellBytes;
    thread_local std::vector<uint8_t> buf;
    buf.resize(static_cast<size_t>(2 * a_bytes + 2 * b_bytes + 64));
    uint8_t* ah = align64(buf.data());
    uint8_t* al = ah + a_bytes;
    uint8_t* bh = al + a_bytes;
    uint8_t* bl = bh + b_bytes;
    split_activations(xb, x_row_bytes, n_in, n_amx, n_tiles * kTileTok, nk, reinterpret_cast<uint16_t*>(ah),
                      reinterpret_cast<uint16_t*>(al));
    alignas(64) float c[kTileTok * 16];
    const auto put = [&](int64_t t0, int64_t g) {  // the stored tile's rows of real tokens to y
      for (int64_t i = 0; i < kTileTok && t0 + i < n_amx; ++i)
        std::memcpy(y + (t0 + i) * ldy + g * kPackRows, c + 16 * i, 16 * sizeof(float));
    };
    Tiles::configure(bf16_config());
    for (int64_t g = r0 / kPackRows; g < r1 / kPackRows; ++g) {
      weight_cells<T>(w + g * n_in * kPackRows * 2, n_in, nk, bh, bl);
      for (int64_t tt = 0; tt < n_tiles; tt += 2) {
        const bool two = tt + 1 < n_tiles;
        const uint8_t* a0h = ah + tt * kTileTok * rs;
        const uint8_t* a0l = al + tt * kTileTok * rs;
        const uint8_t* a1h = a0h + kTileTok * rs;
        const uint8_t* a1l = a0l + kTileTok * rs;
        Tiles::template zero<kC0>();
        if (two) Tiles::template zero<kC1>();
        for (int64_t cc = 0; cc < nk; ++cc) {
          Tiles::template load<kBh>(bh + cc * kCellBytes, 64);
          if constexpr (kF16) Tiles::template load<kBl>(bl + cc * kCellBytes, 64);
          Tiles::template load<kAh0>(a0h + cc * 64, rs);
          Tiles::template load<kAl0>(a0l + cc * 64, rs);
          if (two) {
            Tiles::template load<kAh1>(a1h + cc * 64, rs);
            Tiles::template load<kAl1>(a1l + cc * 64, rs);
          }
          Tiles::template dpbf16ps<kC0, kAh0, kBh>();
          if (two) Tiles::template dpbf16ps<kC1, kAh1, kBh>();
          if constexpr (kF16) {
            Tiles::template dpbf16ps<kC0, kAh0, kBl>();
            if (two) Tiles::template dpbf16ps<kC1, kAh1, kBl>();
          }
          Tiles::template dpbf16ps<kC0, kAl0, kBh>();
          if (two) Tiles::template dpbf16ps<kC1, kAl1, kBh>();
        }
        Tiles::template store<kC0>(c, 64);
        put(tt * kTileTok, g);
        if (two) {
          Tiles::template store<kC1>(c, 64);
          put((tt + 1) * kTileTok, g);
        }
      }
    }
    Tiles::release();
  }
  if (n_amx < n_tok)
    g_vnni[dtype_index(T)](w, n_in, r0, r1, xb + n_amx * x_row_bytes, x_row_bytes, n_tok - n_amx, y + n_amx * ldy, ldy);
}

constexpr DType kBf16Types[] = {DType::F16, DType::BF16};

template <class Tiles>
void set_rows(Kernels& k) {
  Kernels avx512;
  fill_avx512_kernels(avx512);
  for (DType t : kBf16Types) g_vnni[dtype_index(t)] = avx512.packed_rows[dtype_index(t)];
  k.packed_rows[dtype_index(DType::F16)] = rows_packed_half_amx<DType::F16, Tiles>;
  k.packed_rows[dtype_index(DType::BF16)] = rows_packed_half_amx<DType::BF16, Tiles>;
}

}  // namespace

void set_amx_bf16_rows(Kernels& k, bool emulated) {
  if (emulated) set_rows<EmuTiles>(k);
  else set_rows<HwTiles>(k);
}

// The hardware kernels against the emulated ones on 48 rows x 100 columns (a partial last cell) x
// 37 tokens (two whole tiles and a rest of 5 on AVX-512) of both types: every output within 1e-5 of the
// sum of its products' magnitudes (the hardware may order the additions inside one instruction
// otherwise; a wrong layout is off by the order of the values themselves).
bool amx_bf16_tiles_check() {
  Kernels hw, emu;
  fill_avx512_kernels(hw);
  fill_avx512_kernels(emu);
  set_amx_bf16_rows(emu, true);
  set_amx_bf16_rows(hw, false);
  const int64_t n_in = 100, n_out = 48, n_tok = 37;
  std::mt19937 gen(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> xf(static_cast<size_t>(n_in * n_tok));
  for (float& v : xf) v = nd(gen);
  struct Case {
    DType type;
    std::vector<uint8_t> buf;
    const uint8_t* packed;
    std::vector<float> mag, y_hw, y_emu;
  };
  std::vector<Case> cases;
  for (DType t : kBf16Types) {
    std::vector<uint16_t> raw(static_cast<size_t>(n_in * n_out));
    std::vector<float> wf(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
      const float v = nd(gen);
      if (t == DType::F16) {
        raw[i] = _cvtss_sh(v, 0);
        wf[i] = _cvtsh_ss(raw[i]);
      } else {
        uint32_t u;
        std::memcpy(&u, &v, 4);
        raw[i] = static_cast<uint16_t>(u >> 16);
        u = static_cast<uint32_t>(raw[i]) << 16;
        std::memcpy(&wf[i], &u, 4);
      }
    }
    const size_t outs = static_cast<size_t>(n_out * n_tok);
    Case c{t, std::vector<uint8_t>(static_cast<size_t>(packed_bytes(t, n_in, n_out) + 64)), nullptr,
           std::vector<float>(outs), std::vector<float>(outs), std::vector<float>(outs)};
    uint8_t* packed = align64(c.buf.data());
    pack_weights(t, reinterpret_cast<const uint8_t*>(raw.data()), n_in, n_out, packed);
    c.packed = packed;
    for (int64_t tk = 0; tk < n_tok; ++tk)
      for (int64_t r = 0; r < n_out; ++r) {
        double m = 0;
        for (int64_t i = 0; i < n_in; ++i) m += std::fabs(double(wf[r * n_in + i]) * xf[tk * n_in + i]);
        c.mag[static_cast<size_t>(tk * n_out + r)] = static_cast<float>(m);
      }
    emu.packed_rows[dtype_index(t)](packed, n_in, 0, n_out, xf.data(), n_in * 4, n_tok, c.y_emu.data(), n_out);
    cases.push_back(std::move(c));
  }
  const bool ran = amx::without_faults([&] {
    for (Case& c : cases)
      hw.packed_rows[dtype_index(c.type)](c.packed, n_in, 0, n_out, xf.data(), n_in * 4, n_tok, c.y_hw.data(), n_out);
    return true;
  });
  if (!ran) return false;
  for (const Case& c : cases)
    for (size_t i = 0; i < c.y_hw.size(); ++i)
      if (!(std::fabs(c.y_hw[i] - c.y_emu[i]) <= 1e-5f * c.mag[i] + 1e-30f)) return false;
  return true;
}

}  // namespace infera::cpu
