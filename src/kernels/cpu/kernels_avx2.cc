// AVX2 + FMA + F16C kernels (x86 CPUs without AVX-512 VNNI). Compiled with those flags and entered
// only through the table after CPUID said yes. The byte dot product is VPMADDUBSW + VPMADDWD, whose
// 16-bit pair sums saturate: codes up to 127 against activations up to 127 stay below 2^15; wider
// codes (Q8_0's, up to 255) are split into two products (kDpbusdExact = false).
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/packed.h"
#include "tensor/blocks.h"

namespace infera::cpu {

namespace {

inline __m256i high_bits32(const uint8_t* qh4) {  // bit i of 32 -> 0x10 in byte i
  uint32_t h;
  std::memcpy(&h, qh4, 4);
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(h)),
                                             _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                               0x0101010101010101, 0x0000000000000000));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) {
  const __m256i pairs = _mm256_maddubs_epi16(u, s);
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

constexpr bool kDpbusdExact = false;

void small_block_scales(const uint8_t* w, int64_t nb, int64_t block_bytes, float offset, bool has_min, float* ws,
                        float* cw) {
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* p = w + b * block_bytes;
    uint16_t d, m = 0;
    std::memcpy(&d, p, 2);
    if (has_min) std::memcpy(&m, p + 2, 2);
    ws[b] = _cvtsh_ss(d);
    cw[b] = (has_min ? _cvtsh_ss(m) : 0.0f) - offset * ws[b];
  }
}

#include "kernels/cpu/q8a_rows_inl.h"

template <DType T>
inline __m256 load8(const uint8_t* w, int64_t i) {
  if constexpr (T == DType::F32) return _mm256_loadu_ps(reinterpret_cast<const float*>(w) + i);
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 2 * i));
  if constexpr (T == DType::F16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

template <DType T>
inline float load1(const uint8_t* w, int64_t i) {
  if constexpr (T == DType::F32) return reinterpret_cast<const float*>(w)[i];
  uint16_t h;
  std::memcpy(&h, w + 2 * i, 2);
  if constexpr (T == DType::F16) return _cvtsh_ss(h);
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <DType T, int NT>
void dot_row_float(const uint8_t* w, const float* const* x, int64_t n, float* out) {
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 wv = load8<T>(w, i);
    for (int t = 0; t < NT; ++t) acc[t] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x[t] + i), acc[t]);
  }
  for (int t = 0; t < NT; ++t) {
    float s = hsum256(acc[t]);
    for (int64_t j = i; j < n; ++j) s += load1<T>(w, j) * x[t][j];
    out[t] = s;
  }
}

template <DType T>
void rows_float(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                int64_t n_tok, float* y, int64_t ldy) {
  const int64_t rb = row_bytes(T, n_in);
  const auto* xb = static_cast<const uint8_t*>(x);
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t t = 0; t < n_tok; t += 4) {
      const float* xs[4];
      const int nt = static_cast<int>(n_tok - t < 4 ? n_tok - t : 4);
      for (int i = 0; i < nt; ++i) xs[i] = reinterpret_cast<const float*>(xb + (t + i) * x_row_bytes);
      float out[4];
      switch (nt) {
        case 4: dot_row_float<T, 4>(w + r * rb, xs, n_in, out); break;
        case 3: dot_row_float<T, 3>(w + r * rb, xs, n_in, out); break;
        case 2: dot_row_float<T, 2>(w + r * rb, xs, n_in, out); break;
        default: dot_row_float<T, 1>(w + r * rb, xs, n_in, out); break;
      }
      for (int i = 0; i < nt; ++i) y[(t + i) * ldy + r] = out[i];
    }
  }
}

// Packed Q4_0 (packed.h), the AVX2 form of the AVX-512 token-group kernel: each 64-byte chunk
// (16 rows x 4 elements) as two 256-bit halves of 8 rows. Per half and token the 8 VPMADDUBSW of a
// block (low and high nibbles of its 4 chunks) add up in 16 bits: codes <= 15 against activation
// bytes |q| <= 127 give at most 8 * 2 * 15 * 127 = 30,480 per lane, so nothing saturates and one
// VPMADDWD per block widens the sums; the code offset 8 is the 32-bit sum's starting value, as
// there. Up to 4 tokens per pass (two halves x 2 x 4 accumulators fit the 16 registers).
inline int32_t load_i32(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

template <int NT>
void packed_group_q4_0(const uint8_t* cells, const uint8_t* scales, int64_t nb, int64_t group_bytes, const int8_t* const* qs,
                       const float* const* d, const int32_t* const* corr, float* y, int64_t ldy) {
  constexpr int64_t kAhead = NT <= 2 ? 16384 : 4096;  // bytes, as the AVX-512 kernel
  const __m256i low = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  for (int h = 0; h < 2; ++h) {  // rows 8h .. 8h+7
    __m256 accf[NT];
    for (int t = 0; t < NT; ++t) accf[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* cell = cells + b * 256 + 32 * h;
      if (h == 0) {
        for (int k = 0; k < 4; ++k) _mm_prefetch(reinterpret_cast<const char*>(cell + kAhead + 64 * k), _MM_HINT_T1);
        if ((b & 1) == 0) _mm_prefetch(packed_scales_ahead(scales, nb, group_bytes, b + kAhead / 256), _MM_HINT_T1);
      }
      __m256i s16[NT];
      for (int t = 0; t < NT; ++t) s16[t] = _mm256_setzero_si256();
      for (int k = 0; k < 4; ++k) {
        const __m256i raw = _mm256_load_si256(reinterpret_cast<const __m256i*>(cell + 64 * k));
        const __m256i lo = _mm256_and_si256(raw, low), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low);
        for (int t = 0; t < NT; ++t) {
          const int8_t* q = qs[t] + 32 * b + 4 * k;
          s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(lo, _mm256_set1_epi32(load_i32(q))));
          s16[t] = _mm256_add_epi16(s16[t], _mm256_maddubs_epi16(hi, _mm256_set1_epi32(load_i32(q + 16))));
        }
      }
      const __m256 dw = _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(scales + 32 * b + 16 * h)));
      for (int t = 0; t < NT; ++t) {
        const __m256i acc = _mm256_add_epi32(_mm256_set1_epi32(corr[t][b]), _mm256_madd_epi16(s16[t], ones));
        accf[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), _mm256_mul_ps(dw, _mm256_set1_ps(d[t][b])), accf[t]);
      }
    }
    for (int t = 0; t < NT; ++t) _mm256_storeu_ps(y + t * ldy + 8 * h, accf[t]);
  }
}

void rows_packed_q4_0(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                      int64_t n_tok, float* y, int64_t ldy) {
  const int64_t nb = n_in / 32, gb = packed_group_bytes(DType::Q4_0, n_in);
  thread_local std::vector<int32_t> corr_buf;
  if (corr_buf.size() < static_cast<size_t>(n_tok * nb)) corr_buf.resize(static_cast<size_t>(n_tok * nb));
  const auto* xb = static_cast<const uint8_t*>(x);
  for (int64_t t = 0; t < n_tok; ++t) {
    const Q8ARow xa = q8a_row(xb + t * x_row_bytes, n_in);
    for (int64_t b = 0; b < nb; ++b) {
      int32_t sum = 0;
      for (int i = 0; i < 32; ++i) sum += xa.qs[32 * b + i];
      corr_buf[static_cast<size_t>(t * nb + b)] = -8 * sum;
    }
  }
  constexpr int kTok = 4;
  const int8_t* qs[kTok];
  const float* d[kTok];
  const int32_t* corr[kTok];
  for (int64_t g = r0 / kPackRows; g < r1 / kPackRows; ++g) {
    const uint8_t* cells = w + g * gb;
    const uint8_t* scales = cells + nb * packed_code_bytes(DType::Q4_0);
    for (int64_t t0 = 0; t0 < n_tok; t0 += kTok) {
      const int nt = static_cast<int>(std::min<int64_t>(kTok, n_tok - t0));
      packed_token_group(xb, x_row_bytes, n_in, t0, nt, corr_buf.data(), nb, qs, d, corr);
      float* yg = y + t0 * ldy + g * kPackRows;
      switch (nt) {
        case 4: packed_group_q4_0<4>(cells, scales, nb, gb, qs, d, corr, yg, ldy); break;
        case 3: packed_group_q4_0<3>(cells, scales, nb, gb, qs, d, corr, yg, ldy); break;
        case 2: packed_group_q4_0<2>(cells, scales, nb, gb, qs, d, corr, yg, ldy); break;
        default: packed_group_q4_0<1>(cells, scales, nb, gb, qs, d, corr, yg, ldy); break;
      }
    }
  }
}

float dot_f32(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  float s = hsum256(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy_f32(float a, const float* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] += a * x[i];
}

}  // namespace

void fill_avx2_kernels(Kernels& k) {
  fill_scalar_kernels(k);  // activation quantization stays scalar (it is bit-exact either way)
  k.isa = Isa::kAvx2;
  k.rows[dtype_index(DType::F32)] = rows_float<DType::F32>;
  k.rows[dtype_index(DType::F16)] = rows_float<DType::F16>;
  k.rows[dtype_index(DType::BF16)] = rows_float<DType::BF16>;
  set_q8a_rows_256(k);
  // Packed Q4_0 only; the other types keep the rows above (their scalar twins would be slower).
  for (RowsFn& f : k.packed_rows) f = nullptr;
  k.packed_rows[dtype_index(DType::Q4_0)] = rows_packed_q4_0;
  k.attend_group = nullptr;  // the backend's loop over this level's dot and axpy is faster than the twin
  k.dot_f32 = dot_f32;
  k.axpy_f32 = axpy_f32;
}

}  // namespace infera::cpu
