// AVX-512 helpers shared by the kernel translation units compiled with AVX-512 flags
// (kernels_avx512.cc, kernels_amx.cc); include from nowhere else.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace infera::cpu::x512 {

// The sum of 16 activation bytes (for the code offsets: the integer sums start at -offset * it).
inline int32_t byte_sum16(const int8_t* p) {
  const __m128i sums = _mm_dpbusd_epi32(_mm_setzero_si128(), _mm_set1_epi8(1), _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m128i s2 = _mm_add_epi32(sums, _mm_shuffle_epi32(sums, 0x4E));
  return _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xB1)));
}

// Packed Q6_K's codes of chunk k (packed.h): the nibble in bits 0-3 of `nib` joined with the top 2
// bits, bits 2k..2k+1 of `top`, moved to bits 4-5 (16-bit lane shifts leave those two bits right).
inline __m512i six_bit_codes(__m512i nib, __m512i top, int k) {
  const __m512i t = k == 0 ? _mm512_slli_epi16(top, 4) : k == 1 ? _mm512_slli_epi16(top, 2) : k == 2 ? top : _mm512_srli_epi16(top, 2);
  // (nib & 0x0F) | (t & 0x30): vpternlog's A | (B & C) on (nib & 0x0F, t, 0x30).
  return _mm512_ternarylogic_epi32(_mm512_and_si512(nib, _mm512_set1_epi8(0x0F)), t, _mm512_set1_epi8(0x30), 0xF8);
}

}  // namespace infera::cpu::x512
