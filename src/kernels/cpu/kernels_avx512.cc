// AVX-512 (F/BW/VL) + VNNI kernels. Compiled with those flags and entered only through the table
// after CPUID said yes. Quantized rows (q8a_rows_inl.h) use one VPDPBUSD per sub-block and row.
#include <immintrin.h>

#include <cstddef>
#include <cstring>

#include "kernels/cpu/kernels.h"
#include "tensor/blocks.h"

namespace infera::cpu {

namespace {

inline __m256i high_bits32(const uint8_t* qh4) {  // bit i of 32 -> 0x10 in byte i
  uint32_t h;
  std::memcpy(&h, qh4, 4);
  return _mm256_and_si256(_mm256_movm_epi8(h), _mm256_set1_epi8(0x10));
}

inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }

#include "kernels/cpu/q8a_rows_inl.h"

// Float weights: 16 elements at a time converted to f32, FMA with up to 4 activation rows.
template <DType T>
inline __m512 load16(const uint8_t* w, int64_t i, __mmask16 m) {
  if constexpr (T == DType::F32) return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(w) + i);
  if constexpr (T == DType::F16)
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(w) + i));
  const __m256i h = _mm256_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(w) + i);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

template <DType T, int NT>
void dot_row_float(const uint8_t* w, const float* const* x, int64_t n, float* out) {
  constexpr int kA = 2;  // independent FMA chains per row, the same for every NT (batch invariance)
  __m512 acc[NT][kA];
  for (int t = 0; t < NT; ++t)
    for (int a = 0; a < kA; ++a) acc[t][a] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 * kA <= n; i += 16 * kA) {
    for (int a = 0; a < kA; ++a) {
      const __m512 wv = load16<T>(w, i + 16 * a, 0xFFFF);
      for (int t = 0; t < NT; ++t) acc[t][a] = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x[t] + i + 16 * a), acc[t][a]);
    }
  }
  for (; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 wv = load16<T>(w, i, m);
    for (int t = 0; t < NT; ++t) acc[t][0] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x[t] + i), acc[t][0]);
  }
  for (int t = 0; t < NT; ++t) {
    __m512 sum = acc[t][0];
    for (int a = 1; a < kA; ++a) sum = _mm512_add_ps(sum, acc[t][a]);
    out[t] = _mm512_reduce_add_ps(sum);
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

void quantize_q8a(const float* x, BlockQ8A* out, int64_t n) {
  const __m256i ones = _mm256_set1_epi8(1);
  for (int64_t b = 0; b < n / 32; ++b, x += 32) {
    const __m512 a = _mm512_loadu_ps(x), c = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(c)));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i qa = _mm512_cvtps_epi32(_mm512_mul_ps(a, vid)), qc = _mm512_cvtps_epi32(_mm512_mul_ps(c, vid));
    BlockQ8A& o = out[b];
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o.qs), _mm512_cvtsepi32_epi8(qa));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o.qs + 16), _mm512_cvtsepi32_epi8(qc));
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(o.qs));
    const __m256i lanes = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, q);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.negc8), _mm256_sub_epi32(_mm256_setzero_si256(),
                                                                               _mm256_slli_epi32(lanes, 3)));
    o.d = d;
    o.s = d * static_cast<float>(_mm512_reduce_add_epi32(_mm512_add_epi32(qa, qc)));
  }
}

float dot_f32(const float* a, const float* b, int64_t n) {
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc);
  }
  return _mm512_reduce_add_ps(acc);
}

void axpy_f32(float a, const float* x, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
}

}  // namespace

void fill_avx512_kernels(Kernels& k) {
  k.isa = Isa::kAvx512;
  for (ActForm& a : k.act) a = ActForm::kF32;
  k.rows[dtype_index(DType::F32)] = rows_float<DType::F32>;
  k.rows[dtype_index(DType::F16)] = rows_float<DType::F16>;
  k.rows[dtype_index(DType::BF16)] = rows_float<DType::BF16>;
  set_q8a_rows(k);
  k.quantize_q8a = quantize_q8a;
  k.dot_f32 = dot_f32;
  k.axpy_f32 = axpy_f32;
}

}  // namespace infera::cpu
