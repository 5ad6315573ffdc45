// AVX-512 (F/BW/VL) + VNNI kernels. Compiled with those flags and entered only through the table
// after CPUID said yes. Quantized rows take two 32-element sub-blocks per 512-bit VPDPBUSD
// (q8a_rows_inl.h has the types, the prologue and the 256-bit form used for an odd last sub-block).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/simd512_inl.h"
#include "tensor/blocks.h"
#include "tensor/quant.h"

namespace infera::cpu {

namespace {

using x512::byte_sum16;
using x512::six_bit_codes;

inline __m256i high_bits32(const uint8_t* qh4) {  // bit i of 32 -> 0x10 in byte i
  uint32_t h;
  std::memcpy(&h, qh4, 4);
  return _mm256_and_si256(_mm256_movm_epi8(h), _mm256_set1_epi8(0x10));
}

inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }

constexpr bool kDpbusdExact = true;

// The block headers, read in order (plain loads the hardware prefetcher follows; a gather here was
// where decode waited on memory), converted 16 at a time.
void small_block_scales(const uint8_t* w, int64_t nb, int64_t block_bytes, float offset, bool has_min, float* ws,
                        float* cw) {
  const __m512 off = _mm512_set1_ps(-offset);
  alignas(32) uint16_t d16[16], m16[16];
  int64_t b = 0;
  for (; b + 16 <= nb; b += 16) {
    const uint8_t* p = w + b * block_bytes;
    for (int i = 0; i < 16; ++i) std::memcpy(&d16[i], p + i * block_bytes, 2);
    const __m512 d = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(d16)));
    __m512 c = _mm512_mul_ps(d, off);
    if (has_min) {
      for (int i = 0; i < 16; ++i) std::memcpy(&m16[i], p + i * block_bytes + 2, 2);
      c = _mm512_add_ps(c, _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(m16))));
    }
    _mm512_storeu_ps(ws + b, d);
    _mm512_storeu_ps(cw + b, c);
  }
  for (; b < nb; ++b) {
    const uint8_t* p = w + b * block_bytes;
    uint16_t d, m = 0;
    std::memcpy(&d, p, 2);
    if (has_min) std::memcpy(&m, p + 2, 2);
    ws[b] = _cvtsh_ss(d);
    cw[b] = (has_min ? _cvtsh_ss(m) : 0.0f) - offset * ws[b];
  }
}

#include "kernels/cpu/q8a_rows_inl.h"

// The 64 codes of sub-blocks 2p and 2p+1, per type.
inline __m512i nibbles64(const uint8_t* qs_a, const uint8_t* qs_b) {  // two 16-byte nibble blocks
  const __m256i ab = _mm256_set_m128i(_mm_loadu_si128(reinterpret_cast<const __m128i*>(qs_b)),
                                      _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs_a)));
  const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(ab), _mm256_srli_epi16(ab, 4), 1);
  // qwords: a, b, a>>4, b>>4 -> a, a>>4, b, b>>4 (each block's low nibbles, then its high nibbles)
  const __m512i order = _mm512_setr_epi64(0, 1, 4, 5, 2, 3, 6, 7);
  return _mm512_and_si512(_mm512_permutexvar_epi64(order, z), _mm512_set1_epi8(0x0F));
}
inline __m512i high_bits64(const uint8_t* qh_a, const uint8_t* qh_b) {
  uint32_t a, b;
  std::memcpy(&a, qh_a, 4);
  std::memcpy(&b, qh_b, 4);
  return _mm512_and_si512(_mm512_movm_epi8(a | (static_cast<uint64_t>(b) << 32)), _mm512_set1_epi8(0x10));
}
template <class T>
inline __m512i codes64(const uint8_t* w, int64_t p) {
  const int64_t kb = static_cast<int64_t>(T::kBytes);
  if constexpr (std::is_same_v<T, Q8_0T>) {
    const uint8_t* a = w + 2 * p * kb + 2;
    const __m512i q = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + kb)), 1);
    return _mm512_xor_si512(q, _mm512_set1_epi8(static_cast<char>(0x80)));
  } else if constexpr (std::is_same_v<T, Q4_0T>) {
    return nibbles64(w + 2 * p * kb + 2, w + (2 * p + 1) * kb + 2);
  } else if constexpr (std::is_same_v<T, Q4_1T>) {
    return nibbles64(w + 2 * p * kb + 4, w + (2 * p + 1) * kb + 4);
  } else if constexpr (std::is_same_v<T, Q5_0T>) {
    const uint8_t *a = w + 2 * p * kb, *b = a + kb;
    return _mm512_or_si512(nibbles64(a + 6, b + 6), high_bits64(a + 2, b + 2));
  } else if constexpr (std::is_same_v<T, Q5_1T>) {
    const uint8_t *a = w + 2 * p * kb, *b = a + kb;
    return _mm512_or_si512(nibbles64(a + 8, b + 8), high_bits64(a + 4, b + 4));
  } else if constexpr (std::is_same_v<T, QK45T<false>> || std::is_same_v<T, QK45T<true>>) {
    const uint8_t* blk = w + (2 * p / 8) * kb;
    const int k0 = static_cast<int>((2 * p) % 8);
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + T::kQsAt + 16 * k0));
    __m512i u = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1),
                                 _mm512_set1_epi8(0x0F));
    if constexpr (std::is_same_v<T, QK45T<true>>) {
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16));
      const __m256i lo = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(k0));
      const __m256i hi = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(k0 + 1));
      const __m512i h = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), _mm512_set1_epi8(1));
      u = _mm512_or_si512(u, _mm512_slli_epi16(h, 4));
    }
    return u;
  } else if constexpr (std::is_same_v<T, QK23T<false>> || std::is_same_v<T, QK23T<true>>) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(T::codes32(w, 2 * p)), T::codes32(w, 2 * p + 1), 1);
  } else {  // Q6_K
    const uint8_t* blk = w + (2 * p / 8) * kb;
    const int k0 = static_cast<int>((2 * p) % 8), n = k0 / 4, g = k0 % 4;  // g is 0 or 2
    const __m512i l = _mm512_loadu_si512(blk + 64 * n);
    const __m512i m = _mm512_set1_epi8(0x0F);
    const __m512i low = g == 0 ? _mm512_and_si512(l, m) : _mm512_and_si512(_mm512_srli_epi16(l, 4), m);
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + offsetof(BlockQ6_K, qh) + 32 * n));
    const __m512i hz = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_srl_epi16(h, _mm_cvtsi32_si128(2 * g))),
                                          _mm256_srl_epi16(h, _mm_cvtsi32_si128(2 * g + 2)), 1);
    return _mm512_or_si512(low, _mm512_slli_epi16(_mm512_and_si512(hz, _mm512_set1_epi8(3)), 4));
  }
}

// Two floats into the low half of a vector (an unaligned 8-byte load: no double* alignment claim).
inline __m128 load2(const float* f) { return _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(f))); }

// Lane scales. Pair p's 16 int32 lanes: lanes 0-7 are sub-block 2p, 8-15 sub-block 2p+1 (for
// Q6_K each group of 4 lanes is one 16-element scale group). The activation side, d expanded to
// lanes, is built once per activation row and reused by every weight row.
inline __m512 expand_pair(const float* d, int64_t p) {
  const __m128 dp = load2(d + 2 * p);
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
                               _mm512_castps128_ps512(dp));
}
template <class T>
inline __m512 weight_lanes(const float* ws, int64_t p) {
  if constexpr (T::kPer16) {
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                                 _mm512_castps128_ps512(_mm_loadu_ps(ws + 4 * p)));
  } else {
    return expand_pair(ws, p);
  }
}

// The corrections of one weight row against NT activation rows: sum cw * (s32 or s16), added
// lane-wise into each row's accumulator (one horizontal sum per row at the end, not two).
template <class T, int NT>
inline void corrections_512(const float* cw, const Q8ARow* x, int64_t nsub, __m512* acc, int stride) {
  const int64_t n = T::kPer16 ? 2 * nsub : nsub;
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 c = _mm512_maskz_loadu_ps(m, cw + i);
    for (int t = 0; t < NT; ++t)
      acc[t * stride] = _mm512_fmadd_ps(c, _mm512_maskz_loadu_ps(m, (T::kPer16 ? x[t].s16 : x[t].s32) + i), acc[t * stride]);
  }
}

// NT activation rows (dexp: their expanded scales, 16 floats per pair) against one weight row.
template <class T, int NT>
void dot_row_512(const uint8_t* w, const Q8ARow* x, const float* const* dexp, int64_t nsub, const float* ws,
                 const float* cw, float* out) {
  __m512 acc[NT][2];
  for (int t = 0; t < NT; ++t) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
  const int64_t npair = nsub / 2;
  // Pair p feeds accumulator p % 2; written out twice so the accumulators stay in registers.
  const auto pair = [&](int64_t p, __m512* acc_t0, int stride) {
    const __m512i u = codes64<T>(w, p);
    const __m512 wl = weight_lanes<T>(ws, p);
    for (int t = 0; t < NT; ++t) {
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, _mm512_loadu_si512(x[t].qs + 64 * p));
      const __m512 scale = _mm512_mul_ps(wl, _mm512_loadu_ps(dexp[t] + 16 * p));
      acc_t0[t * stride] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc_t0[t * stride]);
    }
  };
  int64_t p = 0;
  for (; p + 2 <= npair; p += 2) {
    pair(p, &acc[0][0], 2);
    pair(p + 1, &acc[0][1], 2);
  }
  if (p < npair) pair(p, &acc[0][0], 2);
  float tail[NT];
  for (int t = 0; t < NT; ++t) tail[t] = 0;
  if (nsub % 2) {  // an odd last sub-block (only the 32-element block types have one)
    const int64_t j = nsub - 1;
    const __m256i u = T::codes32(w, j);
    for (int t = 0; t < NT; ++t) {
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t].qs + 32 * j));
      const __m256i dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, xq);
      tail[t] = hsum256(_mm256_mul_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(ws[j] * x[t].d[j])));
    }
  }
  corrections_512<T, NT>(cw, x, nsub, &acc[0][1], 2);
  for (int t = 0; t < NT; ++t) out[t] = _mm512_reduce_add_ps(_mm512_add_ps(acc[t][0], acc[t][1])) + tail[t];
}

// Rows are taken in blocks of kRowBlock: the block's scales are read once, then every group of four
// activation rows runs over the whole block, so the group's activations stay in L1 and the block's
// weights in L2 (a prompt tile is read once per block, not once per row). 8 rows measured best for
// decode (Q4_0 tg +10-20% over 32, whose scales and weights no longer fit L1 together).
constexpr int64_t kRowBlock = 8;
// Activation rows per pass over a weight row: each weight pair is decoded once for all of them
// (a batched decode step of 8 sequences decodes every weight once).
constexpr int kTokGroup = 8;

template <class T>
void rows_q8a_512(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                  int64_t n_tok, float* y, int64_t ldy) {
  const int64_t nsub = n_in / 32, npair = nsub / 2, nblk = nsub / T::kSubPerBlock;
  const int64_t rb = nblk * static_cast<int64_t>(T::kBytes);
  const int64_t ngroups = T::kPer16 ? 2 * nsub : nsub;
  RowScratch& s = row_scratch();
  s.reserve(static_cast<size_t>(ngroups * kRowBlock));
  thread_local std::vector<float> dexp_buf;
  if (dexp_buf.size() < static_cast<size_t>(n_tok * npair * 16)) dexp_buf.resize(static_cast<size_t>(n_tok * npair * 16));
  const auto* xb = static_cast<const uint8_t*>(x);
  for (int64_t t = 0; t < n_tok; ++t) {
    const Q8ARow xt = q8a_row(xb + t * x_row_bytes, n_in);
    for (int64_t p = 0; p < npair; ++p) _mm512_storeu_ps(dexp_buf.data() + (t * npair + p) * 16, expand_pair(xt.d, p));
  }
  for (int64_t b0 = r0; b0 < r1; b0 += kRowBlock) {
    const int64_t b1 = std::min(r1, b0 + kRowBlock);
    for (int64_t r = b0; r < b1; ++r) {
      T::scales(w + r * rb, nblk, s.ws.data() + (r - b0) * ngroups, s.cw.data() + (r - b0) * ngroups);
      // Ask for the next block's rows now: they arrive while this block computes (decode streams
      // the weights once, and waiting for them is what bounds it).
      if (r + kRowBlock < r1)
        for (int64_t off = 0; off < rb; off += 64) _mm_prefetch(reinterpret_cast<const char*>(w + (r + kRowBlock) * rb + off), _MM_HINT_T0);
    }
    for (int64_t t = 0; t < n_tok; t += kTokGroup) {
      Q8ARow xs[kTokGroup];
      const float* de[kTokGroup];
      const int nt = static_cast<int>(n_tok - t < kTokGroup ? n_tok - t : kTokGroup);
      for (int i = 0; i < nt; ++i) {
        xs[i] = q8a_row(xb + (t + i) * x_row_bytes, n_in);
        de[i] = dexp_buf.data() + (t + i) * npair * 16;
      }
      for (int64_t r = b0; r < b1; ++r) {
        const float* ws = s.ws.data() + (r - b0) * ngroups;
        const float* cw = s.cw.data() + (r - b0) * ngroups;
        float out[kTokGroup];
        switch (nt) {
          case 8: dot_row_512<T, 8>(w + r * rb, xs, de, nsub, ws, cw, out); break;
          case 7: dot_row_512<T, 7>(w + r * rb, xs, de, nsub, ws, cw, out); break;
          case 6: dot_row_512<T, 6>(w + r * rb, xs, de, nsub, ws, cw, out); break;
          case 5: dot_row_512<T, 5>(w + r * rb, xs, de, nsub, ws, cw, out); break;
          case 4: dot_row_512<T, 4>(w + r * rb, xs, de, nsub, ws, cw, out); break;
          case 3: dot_row_512<T, 3>(w + r * rb, xs, de, nsub, ws, cw, out); break;
          case 2: dot_row_512<T, 2>(w + r * rb, xs, de, nsub, ws, cw, out); break;
          default: dot_row_512<T, 1>(w + r * rb, xs, de, nsub, ws, cw, out); break;
        }
        for (int i = 0; i < nt; ++i) y[(t + i) * ldy + r] = out[i];
      }
    }
  }
}

// Packed (x16) weights, packed.h: one 64-byte chunk is 4 elements of 16 rows, dotted with the
// token's 4 activation bytes broadcast from memory. A block (32 elements) of 16 rows costs, per
// token, 8 VPDPBUSD and one scale step (convert, d_w * d_a, FMA); decoding the codes (Q4_0's two
// nibbles) is shared by all NT tokens. Each token's integer sum starts at -offset * (sum of its
// block's activation bytes), so the codes' offset costs nothing per element.
// Runs f.template operator()<NT>() for NT = nt, 1..8 (the token-group kernels are compiled per NT
// so their accumulators stay in registers).
template <class F>
inline void with_nt(int nt, F&& f) {
  switch (nt) {
    case 8: f.template operator()<8>(); break;
    case 7: f.template operator()<7>(); break;
    case 6: f.template operator()<6>(); break;
    case 5: f.template operator()<5>(); break;
    case 4: f.template operator()<4>(); break;
    case 3: f.template operator()<3>(); break;
    case 2: f.template operator()<2>(); break;
    default: f.template operator()<1>(); break;
  }
}

// acc + VPDPBUSD(u, the 4 signed bytes at s broadcast to every lane), the broadcast folded into
// the instruction as its {1to16} memory operand. GCC 12 has no embedded-broadcast form of VPDPBUSD
// and otherwise emits a separate VPBROADCASTD per product, one more vector op each (kernel bench,
// alternating runs: packed Q6_K ~10% faster at 8 and 64 tokens, Q4_K 1-2%, Q4_0 and Q8_0 the same;
// docs/performance.md, "Embedded broadcasts").
inline __m512i dpbusd_bcst(__m512i acc, __m512i u, const int8_t* s) {
  __asm__("vpdpbusd %1%{1to16%}, %2, %0" : "+v"(acc) : "m"(*reinterpret_cast<const int32_t*>(s)), "v"(u));
  return acc;
}

// One 64-byte chunk of codes (16 rows x 4 elements) into each token's integer sums. Nibbles: the
// low ones pair with activation bytes q[4k..], the high ones with q[16 + 4k..]; bytes with q[4k..].
// q points at each token's block, off = 4k.
template <int NT>
inline void dot_nibble_chunk(__m512i raw, const int8_t* const* q, int64_t off, __m512i* acc) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  const __m512i lo = _mm512_and_si512(raw, low), hi = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low);
  for (int t = 0; t < NT; ++t) {
    acc[t] = dpbusd_bcst(acc[t], lo, q[t] + off);
    acc[t] = dpbusd_bcst(acc[t], hi, q[t] + off + 16);
  }
}
template <int NT>
inline void dot_byte_chunk(__m512i codes, const int8_t* const* q, int64_t off, __m512i* acc) {
  for (int t = 0; t < NT; ++t) acc[t] = dpbusd_bcst(acc[t], codes, q[t] + off);
}
// accf[t] += f32(acc[t]) * (row scales ws * token t's block scale d[t][ab]).
template <int NT>
inline void scale_step(const __m512i* acc, __m512 ws, const float* const* d, int64_t ab, __m512* accf) {
  for (int t = 0; t < NT; ++t)
    accf[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[t]), _mm512_mul_ps(ws, _mm512_set1_ps(d[t][ab])), accf[t]);
}

template <DType T, int NT>
void packed_group(const uint8_t* cells, const uint8_t* scales, int64_t nb, int64_t group_bytes, const int8_t* const* qs,
                  const float* const* d, const int32_t* const* corr, float* y, int64_t ldy) {
  constexpr int kChunks = T == DType::Q4_0 ? 4 : 8;
  // Cells ahead to prefetch: 4 KiB for a batch; 16 KiB for one or two tokens, whose pass over a
  // cell is short next to the memory latency (single-stream Q4_0 decode 22.6 -> 26 t/s; 8 and
  // 32 KiB measured lower).
  constexpr int64_t kAhead = (T == DType::Q4_0 ? 16 : 8) * (NT <= 2 ? 4 : 1);
  __m512 accf[NT];
  for (int t = 0; t < NT; ++t) accf[t] = _mm512_setzero_ps();
  const int8_t* q[NT];
  for (int64_t b = 0; b < nb; ++b) {
    for (int t = 0; t < NT; ++t) q[t] = qs[t] + 32 * b;
    const uint8_t* cell = cells + b * 64 * kChunks;
    // The weights stream from memory once per step: ask for them a few cells ahead, past the end
    // of the group too (groups lie back to back; a prefetch never faults).
    for (int k = 0; k < kChunks; ++k) _mm_prefetch(reinterpret_cast<const char*>(cell + kAhead * 64 * kChunks + 64 * k), _MM_HINT_T1);
    if ((b & 1) == 0) _mm_prefetch(packed_scales_ahead(scales, nb, group_bytes, b + kAhead), _MM_HINT_T1);  // 2 cells per line
    const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(scales + 32 * b)));
    __m512i acc[NT];
    for (int t = 0; t < NT; ++t) acc[t] = _mm512_set1_epi32(corr[t][b]);
    for (int k = 0; k < kChunks; ++k) {
      const __m512i raw = _mm512_load_si512(cell + 64 * k);
      if constexpr (T == DType::Q4_0) dot_nibble_chunk<NT>(raw, q, 4 * k, acc);
      else dot_byte_chunk<NT>(raw, q, 4 * k, acc);
    }
    scale_step<NT>(acc, dw, d, b, accf);
  }
  for (int t = 0; t < NT; ++t) _mm512_storeu_ps(y + t * ldy, accf[t]);
}

// Row groups outermost: a group's codes (nb cells) stay in L1/L2 while every group of 8 tokens of
// the tile passes over them.
template <DType T>
void rows_packed_512(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                     int64_t n_tok, float* y, int64_t ldy) {
  const int64_t nb = n_in / 32, cb = packed_code_bytes(T), gb = packed_group_bytes(T, n_in);
  const int32_t offset = packed_offset(T);
  thread_local std::vector<int32_t> corr_buf;
  if (corr_buf.size() < static_cast<size_t>(n_tok * nb)) corr_buf.resize(static_cast<size_t>(n_tok * nb));
  const auto* xb = static_cast<const uint8_t*>(x);
  constexpr int kTok = 8;
  const int8_t* qs[kTok];
  const float* d[kTok];
  const int32_t* corr[kTok];
  for (int64_t t = 0; t < n_tok; ++t) {
    const Q8ARow xa = q8a_row(xb + t * x_row_bytes, n_in);
    int32_t* c = corr_buf.data() + t * nb;
    for (int64_t b = 0; b < nb; ++b) c[b] = -offset * (byte_sum16(xa.qs + 32 * b) + byte_sum16(xa.qs + 32 * b + 16));
  }
  for (int64_t g = r0 / kPackRows; g < r1 / kPackRows; ++g) {
    const uint8_t* cells = w + g * gb;
    const uint8_t* scales = cells + nb * cb;
    for (int64_t t0 = 0; t0 < n_tok; t0 += kTok) {
      const int nt = static_cast<int>(std::min<int64_t>(kTok, n_tok - t0));
      packed_token_group(xb, x_row_bytes, n_in, t0, nt, corr_buf.data(), nb, qs, d, corr);
      float* yg = y + t0 * ldy + g * kPackRows;
      with_nt(nt, [&]<int NT>() { packed_group<T, NT>(cells, scales, nb, gb, qs, d, corr, yg, ldy); });
    }
  }
}


// Packed K types (packed.h): per super-block the row scales of each sub-block (Q6_K: each 16
// elements) are built once from the small integer scales and the f16 d for all NT tokens; per token
// the sub-block is 8 VPDPBUSD and one scale step (Q6_K: two, its offset 32 in the integer sum's
// start; Q4_K: the min term as one more FMA with the activation block sum).
template <DType T, int NT>
void packed_group_k(const uint8_t* grp, int64_t nsb, const int8_t* const* qs, const float* const* d,
                    const float* const* s32, const int32_t* const* corr16, float* y, int64_t ldy) {
  constexpr bool kQ4 = T == DType::Q4_K;
  constexpr int64_t kSb = kQ4 ? 2368 : kQ6kSuperBlock;
  constexpr int64_t kAhead = NT <= 2 ? 16384 : 4096;  // bytes, as packed_group
  __m512 accf[NT];
  for (int t = 0; t < NT; ++t) accf[t] = _mm512_setzero_ps();
  const int8_t* q[NT];
  for (int64_t s = 0; s < nsb; ++s) {
    const uint8_t* sb = grp + s * kSb;
    const __m512 dv = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(sb + (kQ4 ? 2304 : kQ6kD))));
    const __m512 dmv = kQ4 ? _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(sb + 2336))) : dv;
    for (int j = 0; j < 8; ++j) {
      const int64_t ab = s * 8 + j;
      // An eighth of a super-block's bytes ahead per sub-block: the prefetches spread evenly
      // through the pass (and past the group's end, as packed_group).
      for (int64_t off = (j * kSb / 8) & ~int64_t{63}; off < (j + 1) * kSb / 8; off += 64)
        _mm_prefetch(reinterpret_cast<const char*>(sb + kAhead + off), _MM_HINT_T1);
      for (int t = 0; t < NT; ++t) q[t] = qs[t] + 32 * ab;
      if constexpr (kQ4) {
        const __m512 ws = _mm512_mul_ps(
            _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(sb + 2048 + 16 * j)))), dv);
        const __m512 wm = _mm512_mul_ps(
            _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(sb + 2176 + 16 * j)))), dmv);
        __m512i acc[NT];
        for (int t = 0; t < NT; ++t) acc[t] = _mm512_setzero_si512();
        for (int k = 0; k < 4; ++k) dot_nibble_chunk<NT>(_mm512_load_si512(sb + 256 * j + 64 * k), q, 4 * k, acc);
        scale_step<NT>(acc, ws, d, ab, accf);
        for (int t = 0; t < NT; ++t) accf[t] = _mm512_fnmadd_ps(wm, _mm512_set1_ps(s32[t][ab]), accf[t]);
      } else {
        const uint8_t* sub = sb + kQ6kSubBlock * j;
        for (int h = 0; h < 2; ++h) {
          const __m512 ws = _mm512_mul_ps(
              _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(sb + kQ6kScales + 16 * (2 * j + h))))),
              dv);
          __m512i acc[NT];
          for (int t = 0; t < NT; ++t) acc[t] = _mm512_set1_epi32(corr16[t][2 * ab + h]);
          const __m512i top = _mm512_load_si512(sub + 256 + 64 * h);
          for (int k = 0; k < 4; ++k) {
            const __m512i raw = _mm512_load_si512(sub + 64 * k);
            dot_byte_chunk<NT>(six_bit_codes(h ? _mm512_srli_epi16(raw, 4) : raw, top, k), q, 16 * h + 4 * k, acc);
          }
          scale_step<NT>(acc, ws, d, ab, accf);
        }
      }
    }
  }
  for (int t = 0; t < NT; ++t) _mm512_storeu_ps(y + t * ldy, accf[t]);
}

template <DType T>
void rows_packed_k_512(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                       int64_t n_tok, float* y, int64_t ldy) {
  const int64_t nsb = n_in / 256, gb = packed_group_bytes(T, n_in), n16 = n_in / 16;
  thread_local std::vector<int32_t> corr_buf;  // Q6_K: -32 * the sum of each 16 activation bytes
  const auto* xb = static_cast<const uint8_t*>(x);
  if constexpr (T == DType::Q6_K) {
    if (corr_buf.size() < static_cast<size_t>(n_tok * n16)) corr_buf.resize(static_cast<size_t>(n_tok * n16));
    for (int64_t t = 0; t < n_tok; ++t) {
      const Q8ARow xa = q8a_row(xb + t * x_row_bytes, n_in);
      int32_t* c = corr_buf.data() + t * n16;
      for (int64_t i = 0; i < n16; ++i) c[i] = -32 * byte_sum16(xa.qs + 16 * i);
    }
  }
  constexpr int kTok = 8;
  const int8_t* qs[kTok];
  const float* d[kTok];
  const float* s32[kTok];
  const int32_t* corr[kTok] = {};
  for (int64_t g = r0 / kPackRows; g < r1 / kPackRows; ++g) {
    for (int64_t t0 = 0; t0 < n_tok; t0 += kTok) {
      const int nt = static_cast<int>(std::min<int64_t>(kTok, n_tok - t0));
      for (int i = 0; i < nt; ++i) {
        const Q8ARow xa = q8a_row(xb + (t0 + i) * x_row_bytes, n_in);
        qs[i] = xa.qs;
        d[i] = xa.d;
        s32[i] = xa.s32;
        if constexpr (T == DType::Q6_K) corr[i] = corr_buf.data() + (t0 + i) * n16;
      }
      const uint8_t* grp = w + g * gb;
      float* yg = y + t0 * ldy + g * kPackRows;
      with_nt(nt, [&]<int NT>() { packed_group_k<T, NT>(grp, nsb, qs, d, s32, corr, yg, ldy); });
    }
  }
}


// Packed F16 / BF16 (packed.h): each element's 16 row values converted once to f32 and multiplied
// by every token's activation broadcast from memory. Two accumulators per token (even and odd
// elements) for every NT, so a token's result does not depend on its batch.
template <DType T>
inline __m512 half16(const uint8_t* p) {
  const __m256i h = _mm256_load_si256(reinterpret_cast<const __m256i*>(p));
  if constexpr (T == DType::F16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

template <DType T, int NT>
void packed_group_half(const uint8_t* grp, int64_t n_in, const float* const* x, float* y, int64_t ldy) {
  constexpr int64_t kAhead = NT <= 2 ? 8192 : 2048;  // bytes
  __m512 acc[NT][2];
  for (int t = 0; t < NT; ++t) acc[t][0] = acc[t][1] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= n_in; i += 2) {
    _mm_prefetch(reinterpret_cast<const char*>(grp + 32 * i + kAhead), _MM_HINT_T1);  // past the group too
    const __m512 w0 = half16<T>(grp + 32 * i), w1 = half16<T>(grp + 32 * i + 32);
    for (int t = 0; t < NT; ++t) {
      acc[t][0] = _mm512_fmadd_ps(w0, _mm512_set1_ps(x[t][i]), acc[t][0]);
      acc[t][1] = _mm512_fmadd_ps(w1, _mm512_set1_ps(x[t][i + 1]), acc[t][1]);
    }
  }
  if (i < n_in) {
    const __m512 w0 = half16<T>(grp + 32 * i);
    for (int t = 0; t < NT; ++t) acc[t][0] = _mm512_fmadd_ps(w0, _mm512_set1_ps(x[t][i]), acc[t][0]);
  }
  for (int t = 0; t < NT; ++t) _mm512_storeu_ps(y + t * ldy, _mm512_add_ps(acc[t][0], acc[t][1]));
}

template <DType T>
void rows_packed_half_512(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                          int64_t n_tok, float* y, int64_t ldy) {
  const auto* xb = static_cast<const uint8_t*>(x);
  constexpr int kTok = 8;
  const float* xs[kTok];
  for (int64_t g = r0 / kPackRows; g < r1 / kPackRows; ++g) {
    const uint8_t* grp = w + g * n_in * kPackRows * 2;
    for (int64_t t0 = 0; t0 < n_tok; t0 += kTok) {
      const int nt = static_cast<int>(std::min<int64_t>(kTok, n_tok - t0));
      for (int i = 0; i < nt; ++i) xs[i] = reinterpret_cast<const float*>(xb + (t0 + i) * x_row_bytes);
      float* yg = y + t0 * ldy + g * kPackRows;
      with_nt(nt, [&]<int NT>() { packed_group_half<T, NT>(grp, n_in, xs, yg, ldy); });
    }
  }
}

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
  // Blocks of rows, each group of four activation rows over the whole block (as rows_q8a_512).
  for (int64_t b0 = r0; b0 < r1; b0 += kRowBlock) {
    const int64_t b1 = std::min(r1, b0 + kRowBlock);
    for (int64_t t = 0; t < n_tok; t += 4) {
      const float* xs[4];
      const int nt = static_cast<int>(n_tok - t < 4 ? n_tok - t : 4);
      for (int i = 0; i < nt; ++i) xs[i] = reinterpret_cast<const float*>(xb + (t + i) * x_row_bytes);
      for (int64_t r = b0; r < b1; ++r) {
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
}

void quantize_q8a(const float* x, void* out, int64_t n) {
  auto* qs = static_cast<int8_t*>(out);
  auto* d = reinterpret_cast<float*>(qs + n);
  float* s16 = d + n / 32;
  float* s32 = s16 + n / 16;
  for (int64_t b = 0; b < n / 32; ++b, x += 32) {
    const __m512 lo = _mm512_loadu_ps(x), hi = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
    const float db = amax / 127.0f;
    const float id = db != 0 ? 1.0f / db : 0.0f;
    const __m512 vid = _mm512_set1_ps(id);
    const __m512i qlo = _mm512_cvtps_epi32(_mm512_mul_ps(lo, vid)), qhi = _mm512_cvtps_epi32(_mm512_mul_ps(hi, vid));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 32 * b), _mm512_cvtsepi32_epi8(qlo));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(qs + 32 * b + 16), _mm512_cvtsepi32_epi8(qhi));
    const int sum_lo = _mm512_reduce_add_epi32(qlo), sum_hi = _mm512_reduce_add_epi32(qhi);
    d[b] = db;
    s16[2 * b] = db * static_cast<float>(sum_lo);
    s16[2 * b + 1] = db * static_cast<float>(sum_hi);
    s32[b] = db * static_cast<float>(sum_lo + sum_hi);
  }
}

// exp(x) for f32 lanes: x = n ln2 + r, |r| <= ln2/2 (ln2 in two parts), a degree-6 polynomial
// for e^r (Cephes' expf coefficients, ~1 ulp), then y * 2^n by VSCALEFPS (overflow gives inf,
// underflow 0, as expf).
inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(100.0f)), _mm512_set1_ps(-110.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

void swiglu_f32(const float* gate, const float* up, float* out, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), g));
    const __m512 s = _mm512_div_ps(g, _mm512_add_ps(one, e));
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, up + i)));
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


// Attention over f32, f16 or q8_0 rows (kernels.h AttnGroup) for a group of query heads sharing
// one KV head. Each block of keys (8 for the scores, 32 for the values) is read from memory once
// and used by every head of the group while it sits in L1 (with GQA a head-at-a-time loop read the
// whole K and V once per query head: 6x the bytes for R1-1.5B, which at a few thousand tokens of
// context is more than the weights). The rows ahead are prefetched: blocks are scattered by the
// block tables, and at 1,000 tokens of context a decode step of 8 streams spent most of its
// attention time waiting for them. Per head: scores 8 keys at a time with one transposing
// reduction of the 8 sums, a vectorized softmax, the values accumulated into its output (stored
// between key blocks: exact, so the order of operations per head and the results are those of one
// pass over all keys). Head sizes that are not a multiple of 16 up to 256 (of 32 for q8_0) take
// the plain loops.
inline __m256 hi256(__m512 v) { return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)); }

// Values 16c .. 16c+15 of a K or V head row as f32 (q8_0: half of block c / 2, d * q as
// dequantize_row).
template <DType T>
inline __m512 kv16(const void* row, int c) {
  if constexpr (T == DType::F32) return _mm512_loadu_ps(static_cast<const float*>(row) + 16 * c);
  if constexpr (T == DType::F16)
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(row) + 16 * c)));
  const auto* b = static_cast<const uint8_t*>(row) + (c / 2) * sizeof(BlockQ8_0);
  uint16_t d;
  std::memcpy(&d, b, sizeof d);
  const __m512i q = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + sizeof d + 16 * (c % 2))));
  return _mm512_mul_ps(_mm512_cvtepi32_ps(q), _mm512_set1_ps(_cvtsh_ss(d)));
}

// Bytes of one head row (16 * NV values).
template <DType T, int NV>
constexpr int64_t kv_row_bytes() {
  return T == DType::F32 ? 64 * NV : T == DType::F16 ? 32 * NV : static_cast<int64_t>(sizeof(BlockQ8_0)) * NV / 2;
}

// Rows j0 .. j1-1 (keys of the group: the caller clamps to n_keys) into the cache level `Hint`.
template <DType T, int NV, int Hint>
inline void prefetch_rows(const void* const* rows, int64_t j0, int64_t j1) {
  constexpr int64_t kBytes = kv_row_bytes<T, NV>();
  for (int64_t j = j0; j < j1; ++j) {
    const char* p = static_cast<const char*>(rows[j]);
    for (int64_t off = 0; off < kBytes; off += 64) _mm_prefetch(p + off, static_cast<_mm_hint>(Hint));
    _mm_prefetch(p + kBytes - 1, static_cast<_mm_hint>(Hint));  // a row that straddles one more line
  }
}

// The form the tiles read a cache's rows in: f32 and f16 rows in place (an f16 chunk converted as
// it is loaded: cheaper than a store and reloads), q8_0 rows converted to f32 once per block.
template <DType T>
inline constexpr DType kTileRows = T == DType::Q8_0 ? DType::F32 : T;

// Rows j0 .. j1-1 in their tile form: q8_0 converted into buf (16 * NV floats each), else in place.
template <DType T, int NV>
inline void tile_rows(const void* const* rows, int64_t j0, int64_t j1, float* buf, const void** out) {
  for (int64_t j = j0; j < j1; ++j) {
    if constexpr (T == DType::Q8_0) {
      float* d = buf + (j - j0) * 16 * NV;
      for (int c = 0; c < NV; ++c) _mm512_store_ps(d + 16 * c, kv16<T>(rows[j], c));
      out[j - j0] = d;
    } else {
      out[j - j0] = rows[j];
    }
  }
}

// 8 keys' products (16 lanes each) reduced to 8 sums by one transposing tree.
inline __m256 reduce8(const __m512* acc) {
  __m256 s[8];
  for (int kk = 0; kk < 8; ++kk) s[kk] = _mm256_add_ps(_mm512_castps512_ps256(acc[kk]), hi256(acc[kk]));
  const __m256 t0 = _mm256_hadd_ps(s[0], s[1]), t1 = _mm256_hadd_ps(s[2], s[3]);
  const __m256 t2 = _mm256_hadd_ps(s[4], s[5]), t3 = _mm256_hadd_ps(s[6], s[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// The scores of R query rows q[r] against 8 keys k (rows of 16 * NV values of type T, f32 or f16):
// each key chunk is loaded once for the R rows (24 accumulators for R = 3). Per (row, key) the NV
// chunk products in order, the first a multiply, then reduce8: a row's scores do not depend on its
// tile.
template <DType T, int NV, int R>
void scores8_rows(const float* const* q, const void* const* k, __m256* out) {
  __m512 acc[R][8];
  {
    __m512 q0[R];
    for (int r = 0; r < R; ++r) q0[r] = _mm512_loadu_ps(q[r]);
    for (int kk = 0; kk < 8; ++kk) {
      __m512 kv = kv16<T>(k[kk], 0);
      __asm__("" : "+v"(kv));
      for (int r = 0; r < R; ++r) acc[r][kk] = _mm512_mul_ps(q0[r], kv);
    }
  }
  for (int c = 1; c < NV; ++c) {
    __m512 qc[R];
    for (int r = 0; r < R; ++r) qc[r] = _mm512_loadu_ps(q[r] + 16 * c);
    for (int kk = 0; kk < 8; ++kk) {
      __m512 kv = kv16<T>(k[kk], c);
      __asm__("" : "+v"(kv));  // one load for the R rows (GCC otherwise folds it into each FMA)
      for (int r = 0; r < R; ++r) acc[r][kk] = _mm512_fmadd_ps(qc[r], kv, acc[r][kk]);
    }
  }
  for (int r = 0; r < R; ++r) out[r] = reduce8(acc[r]);
}

// Output chunks c0 .. c0+W-1 of R rows over the value rows v[0 .. j1-j0) (keys j0 .. j1-1): per
// row and lane one FMA per key in key order, p[r][jj] * v, into the row's sums (zero at the first
// key, else the stored partial sums: exact); each V chunk is loaded once for the R rows (R = 6,
// W = 4: 24 accumulators; rows of type T, f32 or f16). inv: each row's 1 / sum(e) once its last key
// is in, else null.
template <DType T, int R, int W>
void values_tile(const float* const* p, const void* const* v, int64_t j0, int64_t j1, int c0, float* const* o,
                 const float* inv) {
  __m512 acc[R][W];
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < W; ++w) acc[r][w] = j0 == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(o[r] + 16 * (c0 + w));
  for (int64_t jj = j0; jj < j1; ++jj) {
    __m512 vv[W];
    for (int w = 0; w < W; ++w) vv[w] = kv16<T>(v[jj - j0], c0 + w);
    for (int r = 0; r < R; ++r) {
      const __m512 pb = _mm512_set1_ps(p[r][jj]);
      for (int w = 0; w < W; ++w) acc[r][w] = _mm512_fmadd_ps(pb, vv[w], acc[r][w]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < W; ++w)
      _mm512_storeu_ps(o[r] + 16 * (c0 + w), inv ? _mm512_mul_ps(acc[r][w], _mm512_set1_ps(inv[r])) : acc[r][w]);
}

template <DType T, int W>
void values_tile_w(int rows, const float* const* p, const void* const* v, int64_t j0, int64_t j1, int c0,
                   float* const* o, const float* inv) {
  switch (rows) {
    case 6: values_tile<T, 6, W>(p, v, j0, j1, c0, o, inv); break;
    case 5: values_tile<T, 5, W>(p, v, j0, j1, c0, o, inv); break;
    case 4: values_tile<T, 4, W>(p, v, j0, j1, c0, o, inv); break;
    case 3: values_tile<T, 3, W>(p, v, j0, j1, c0, o, inv); break;
    case 2: values_tile<T, 2, W>(p, v, j0, j1, c0, o, inv); break;
    default: values_tile<T, 1, W>(p, v, j0, j1, c0, o, inv); break;
  }
}

// Softmax of one head's scores in place (e = exp(s - max)); returns 1 / sum(e).
float softmax_in_place(float* sc, int64_t nk) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < nk; i += 16) {
    const __mmask16 m = nk - i >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (nk - i)) - 1);
    mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), m, sc + i));
  }
  const __m512 mxv = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < nk; i += 16) {
    const __mmask16 m = nk - i >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << (nk - i)) - 1);
    const __m512 e = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, sc + i), mxv)));
    _mm512_mask_storeu_ps(sc + i, m, e);
    sum = _mm512_add_ps(sum, e);
  }
  return 1.0f / _mm512_reduce_add_ps(sum);
}

constexpr int64_t kMaxAttnGroup = 64;  // query heads per KV head the blocked kernel takes (more: plain loops)

// One KV head's query rows r = (token i, head g) of AttnGroup a, each with its own key count (the
// tokens are consecutive positions). Every K block of 8 keys and V block of 32 is read (q8_0: converted) once
// and used by all rows while it is in L1, the rows of one token in tiles (3 for the scores, 6 for
// the values) that load each K or V chunk once per tile; each row's arithmetic is exactly that of
// the row alone (8-key score blocks up to its own key count, then single keys; value blocks of 32
// from its first key). K rows are prefetched 32 keys ahead into L2, V rows one value block ahead
// (kernel bench, attn/L1024/F16 from memory: 0.96 ms per layer without prefetches and with heads
// interleaved in the store, 0.5 ms so; prefetches into L1, or 16 keys ahead, measured slower; V
// fetched during the scores pass instead, ~5% slower for f32 at 4,096 keys, whose K and V of one
// head overflow L2).
template <DType T, int NV>
void attend_group_nv(const AttnGroup& a) {
  constexpr int64_t kKeyBlock = 8, kValueBlock = 32, kKeysAhead = 4 * kKeyBlock;
  constexpr int kScoreRows = 3, kValueRows = 6, kValueChunks = 4;
  const int64_t nk = a.n_keys, hd = a.hd, groups = a.group, rows = a.tokens * groups;
  const __m256 scale8 = _mm256_set1_ps(a.scale);
  const auto nk_tok = [&](int64_t i) { return nk - (a.tokens - 1 - i); };
  constexpr DType TR = kTileRows<T>;
  alignas(64) float kbuf[T == DType::Q8_0 ? kKeyBlock * 16 * NV : 1];  // a q8_0 block's rows as f32
  const void* kf[kKeyBlock];
  prefetch_rows<T, NV, _MM_HINT_T1>(a.k, 0, std::min(nk, kKeysAhead));
  for (int64_t j = 0; j < nk; j += kKeyBlock) {
    const int64_t jn = std::min(nk, j + kKeyBlock);
    prefetch_rows<T, NV, _MM_HINT_T1>(a.k, std::min(nk, j + kKeysAhead), std::min(nk, j + kKeysAhead + kKeyBlock));
    tile_rows<T, NV>(a.k, j, jn, kbuf, kf);
    for (int64_t i = 0; i < a.tokens; ++i) {
      const int64_t nr = nk_tok(i);
      const float* q = a.q + i * a.q_stride;
      float* sc = a.scores + i * groups * nk;
      if (j + kKeyBlock <= nr) {
        for (int64_t g = 0; g < groups; g += kScoreRows) {
          const int n = static_cast<int>(std::min<int64_t>(kScoreRows, groups - g));
          const float* qs[kScoreRows];
          __m256 s8[kScoreRows];
          for (int r = 0; r < n; ++r) qs[r] = q + (g + r) * hd;
          if (n == 3) scores8_rows<TR, NV, 3>(qs, kf, s8);
          else if (n == 2) scores8_rows<TR, NV, 2>(qs, kf, s8);
          else scores8_rows<TR, NV, 1>(qs, kf, s8);
          for (int r = 0; r < n; ++r) _mm256_storeu_ps(sc + (g + r) * nk + j, _mm256_mul_ps(s8[r], scale8));
        }
        continue;
      }
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t jj = j; jj < nr; ++jj) {
          const float* qr = q + g * hd;
          const void* kr = kf[jj - j];
          __m512 acc = _mm512_mul_ps(_mm512_loadu_ps(qr), kv16<TR>(kr, 0));
          for (int c = 1; c < NV; ++c) acc = _mm512_fmadd_ps(_mm512_loadu_ps(qr + 16 * c), kv16<TR>(kr, c), acc);
          sc[g * nk + jj] = _mm512_reduce_add_ps(acc) * a.scale;
        }
    }
  }
  prefetch_rows<T, NV, _MM_HINT_T1>(a.v, 0, std::min(nk, kValueBlock));
  float inv[kMaxAttnGroup * kMaxAttnTokens];
  for (int64_t r = 0; r < rows; ++r) inv[r] = softmax_in_place(a.scores + r * nk, nk_tok(r / groups));
  alignas(64) float vbuf[T == DType::Q8_0 ? kValueBlock * 16 * NV : 1];
  const void* vf[kValueBlock];
  for (int64_t j0 = 0; j0 < nk; j0 += kValueBlock) {
    const int64_t jn = std::min(nk, j0 + kValueBlock);
    prefetch_rows<T, NV, _MM_HINT_T1>(a.v, jn, std::min(nk, jn + kValueBlock));
    tile_rows<T, NV>(a.v, j0, jn, vbuf, vf);
    for (int64_t i = 0; i < a.tokens; ++i) {
      const int64_t nr = nk_tok(i);
      if (j0 >= nr) continue;
      const int64_t j1 = std::min(nr, j0 + kValueBlock);
      for (int64_t g = 0; g < groups; g += kValueRows) {
        const int n = static_cast<int>(std::min<int64_t>(kValueRows, groups - g));
        const float* p[kValueRows];
        float* o[kValueRows];
        for (int r = 0; r < n; ++r) {
          p[r] = a.scores + (i * groups + g + r) * nk;
          o[r] = a.out + i * a.out_stride + (g + r) * hd;
        }
        const float* iv = j1 == nr ? inv + i * groups + g : nullptr;
        for (int c0 = 0; c0 < NV; c0 += kValueChunks) {
          const int w = std::min(kValueChunks, NV - c0);
          if (w == 4) values_tile_w<TR, 4>(n, p, vf, j0, j1, c0, o, iv);
          else if (w == 2) values_tile_w<TR, 2>(n, p, vf, j0, j1, c0, o, iv);
          else if (w == 1) values_tile_w<TR, 1>(n, p, vf, j0, j1, c0, o, iv);
          else values_tile_w<TR, 1>(n, p, vf, j0, j1, c0, o, iv), values_tile_w<TR, 2>(n, p, vf, j0, j1, c0 + 1, o, iv);
        }
      }
    }
  }
}

template <DType T>
bool attend_group_fixed(const AttnGroup& a) {
  if (a.group > kMaxAttnGroup || a.tokens > kMaxAttnTokens) return false;
  if constexpr (T == DType::Q8_0) {  // whole blocks of 32 per head row only
    switch (a.hd) {
      case 64: attend_group_nv<T, 4>(a); return true;
      case 96: attend_group_nv<T, 6>(a); return true;
      case 128: attend_group_nv<T, 8>(a); return true;
      case 256: attend_group_nv<T, 16>(a); return true;
      default: return false;
    }
  }
  switch (a.hd) {
    case 64: attend_group_nv<T, 4>(a); return true;
    case 80: attend_group_nv<T, 5>(a); return true;
    case 96: attend_group_nv<T, 6>(a); return true;
    case 128: attend_group_nv<T, 8>(a); return true;
    case 256: attend_group_nv<T, 16>(a); return true;
    default: return false;
  }
}

void attend_one(const AttnGroup& a) {
  std::vector<float> kf, vf;
  const auto as_f32 = [&](const void* p, std::vector<float>& buf) {
    if (a.type == DType::F32) return static_cast<const float*>(p);
    buf.resize(static_cast<size_t>(a.hd));
    dequantize_row(a.type, static_cast<const uint8_t*>(p), buf.data(), a.hd);
    return static_cast<const float*>(buf.data());
  };
  for (int64_t g = 0; g < a.group; ++g) {
    const float* q = a.q + g * a.hd;
    float* sc = a.scores + g * a.n_keys;
    float* o = a.out + g * a.hd;
    for (int64_t j = 0; j < a.n_keys; ++j) sc[j] = dot_f32(q, as_f32(a.k[j], kf), a.hd) * a.scale;
    float mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < a.n_keys; ++j) mx = std::max(mx, sc[j]);
    for (int64_t j = 0; j < a.n_keys; ++j) sum += (sc[j] = std::exp(sc[j] - mx));
    std::fill_n(o, a.hd, 0.0f);
    for (int64_t j = 0; j < a.n_keys; ++j) axpy_f32(sc[j] / sum, as_f32(a.v[j], vf), o, a.hd);
  }
}

void attend_group(const AttnGroup& a) {
  bool done = false;
  switch (a.type) {
    case DType::F32: done = attend_group_fixed<DType::F32>(a); break;
    case DType::F16: done = attend_group_fixed<DType::F16>(a); break;
    case DType::Q8_0: done = attend_group_fixed<DType::Q8_0>(a); break;
    default: break;
  }
  if (done) return;
  for (int64_t i = 0; i < a.tokens; ++i) attend_one(attn_token(a, i));
}

}  // namespace

void fill_avx512_kernels(Kernels& k) {
  k.isa = Isa::kAvx512;
  for (ActForm& a : k.act) a = ActForm::kF32;
  k.rows[dtype_index(DType::F32)] = rows_float<DType::F32>;
  k.rows[dtype_index(DType::F16)] = rows_float<DType::F16>;
  k.rows[dtype_index(DType::BF16)] = rows_float<DType::BF16>;
  auto q = [&](DType t, RowsFn fn) {
    k.rows[dtype_index(t)] = fn;
    k.act[dtype_index(t)] = ActForm::kQ8A;
  };
  q(DType::Q8_0, rows_q8a_512<Q8_0T>);
  q(DType::Q4_0, rows_q8a_512<Q4_0T>);
  q(DType::Q4_1, rows_q8a_512<Q4_1T>);
  q(DType::Q5_0, rows_q8a_512<Q5_0T>);
  q(DType::Q5_1, rows_q8a_512<Q5_1T>);
  q(DType::Q4_K, rows_q8a_512<QK45T<false>>);
  q(DType::Q5_K, rows_q8a_512<QK45T<true>>);
  q(DType::Q6_K, rows_q8a_512<Q6_KT>);
  q(DType::Q2_K, rows_q8a_512<QK23T<false>>);
  q(DType::Q3_K, rows_q8a_512<QK23T<true>>);
  k.packed_rows[dtype_index(DType::Q4_0)] = rows_packed_512<DType::Q4_0>;
  k.packed_rows[dtype_index(DType::Q8_0)] = rows_packed_512<DType::Q8_0>;
  k.packed_rows[dtype_index(DType::Q4_K)] = rows_packed_k_512<DType::Q4_K>;
  k.packed_rows[dtype_index(DType::Q6_K)] = rows_packed_k_512<DType::Q6_K>;
  k.packed_rows[dtype_index(DType::F16)] = rows_packed_half_512<DType::F16>;
  k.packed_rows[dtype_index(DType::BF16)] = rows_packed_half_512<DType::BF16>;
  k.quantize_q8a = quantize_q8a;
  k.dot_f32 = dot_f32;
  k.swiglu_f32 = swiglu_f32;
  k.attend_group = attend_group;
  k.axpy_f32 = axpy_f32;
}

}  // namespace infera::cpu
