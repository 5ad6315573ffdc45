// Quantized-row kernels over Q8A activation rows (kernels.h), written once with 256-bit AVX2
// intrinsics and included by each x86 kernel translation unit (kernels_avx2.cc, kernels_avx512.cc),
// which first defines, for its instruction set:
//   __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8);  // acc + lane sums of 4 u8*s8 products
//   __m256i high_bits32(const uint8_t* qh4);              // bit i of 32 -> 0x10 in byte i
//   constexpr bool kDpbusdExact;  // false when dpbusd saturates 16-bit pair sums (AVX2's VPMADDUBSW)
//   void small_block_scales(const uint8_t* w, int64_t nb, int64_t block_bytes, float offset,
//                           bool has_min, float* ws, float* cw);
//       // ws[b] = f16 at block b's byte 0; cw[b] = (has_min ? f16 at byte 2 : 0) - offset * ws[b]
// Include inside an anonymous namespace only.
//
// A weight row is handled in two passes. The prologue reads the block headers into per-group f32
// scales ws[] and correction coefficients cw[] (value = ws * (u - o) + min gives cw = min - o * ws;
// a group is 32 elements, 16 for Q6_K). The main pass decodes each 32-element sub-block into
// unsigned byte codes u and dots them with the activation bytes, one VPDPBUSD per sub-block and
// activation row; the corrections are one short dot product of cw with the activation group sums.
// Up to four activation rows share each decoded sub-block (prompt batches, batched decode).

inline float f16(uint16_t h) { return _cvtsh_ss(h); }
inline uint16_t rd16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// sum a[i] * b[i] in 8 lanes, then the tail; the same order for every caller.
inline float dot_lanes(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  float s = hsum256(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

inline __m256i nibbles(const uint8_t* qs16) {  // 16 bytes -> 32 codes: low nibbles, then high nibbles
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs16));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
}

// Per-type decoders. kPer16: scales per 16 elements (else per 32); kSubPerBlock: 32-element
// sub-blocks per block; scales(): the prologue over nb blocks; codes32(): sub-block j's codes.
template <class B, int kDAt, int kOffset, int kMinAt>
struct SmallBlockT {  // Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: one 32-element block, one f16 scale
  static constexpr bool kPer16 = false, kWideCodes = false;
  static constexpr int kSubPerBlock = 1;
  static constexpr size_t kBytes = sizeof(B);
  static_assert(kDAt == 0 && (kMinAt == -1 || kMinAt == 2));
  static void scales(const uint8_t* w, int64_t nb, float* ws, float* cw) {
    small_block_scales(w, nb, static_cast<int64_t>(kBytes), static_cast<float>(kOffset), kMinAt >= 0, ws, cw);
  }
};
struct Q8_0T : SmallBlockT<BlockQ8_0, 0, 128, -1> {
  static constexpr bool kWideCodes = true;  // codes up to 255
  static __m256i codes32(const uint8_t* w, int64_t j) {  // q + 128 as unsigned
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + j * static_cast<int64_t>(kBytes) + 2));
    return _mm256_xor_si256(q, _mm256_set1_epi8(static_cast<char>(0x80)));
  }
};
struct Q4_0T : SmallBlockT<BlockQ4_0, 0, 8, -1> {
  static __m256i codes32(const uint8_t* w, int64_t j) { return nibbles(w + j * static_cast<int64_t>(kBytes) + 2); }
};
struct Q4_1T : SmallBlockT<BlockQ4_1, 0, 0, 2> {
  static __m256i codes32(const uint8_t* w, int64_t j) { return nibbles(w + j * static_cast<int64_t>(kBytes) + 4); }
};
struct Q5_0T : SmallBlockT<BlockQ5_0, 0, 16, -1> {
  static __m256i codes32(const uint8_t* w, int64_t j) {
    const uint8_t* p = w + j * static_cast<int64_t>(kBytes);
    return _mm256_or_si256(nibbles(p + 6), high_bits32(p + 2));
  }
};
struct Q5_1T : SmallBlockT<BlockQ5_1, 0, 0, 2> {
  static __m256i codes32(const uint8_t* w, int64_t j) {
    const uint8_t* p = w + j * static_cast<int64_t>(kBytes);
    return _mm256_or_si256(nibbles(p + 8), high_bits32(p + 4));
  }
};

// The 8 scales (times d) and corrections (mins times -dmin) of a Q4_K / Q5_K super-block, unpacked
// from their 12 bytes with four 32-bit operations and converted 8 at a time.
inline void k_scales_mins_f32(const uint8_t* b, float* sc, float* mn) {
  uint32_t u[3];
  std::memcpy(u, b + 4, 12);
  const uint64_t s = static_cast<uint64_t>(u[0] & 0x3f3f3f3f) |
                     static_cast<uint64_t>((u[2] & 0x0f0f0f0f) | ((u[0] & 0xc0c0c0c0) >> 2)) << 32;
  const uint64_t m = static_cast<uint64_t>(u[1] & 0x3f3f3f3f) |
                     static_cast<uint64_t>(((u[2] >> 4) & 0x0f0f0f0f) | ((u[1] & 0xc0c0c0c0) >> 2)) << 32;
  const __m256 sf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(s))));
  const __m256 mf = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(m))));
  _mm256_storeu_ps(sc, _mm256_mul_ps(sf, _mm256_set1_ps(f16(rd16(b)))));
  _mm256_storeu_ps(mn, _mm256_mul_ps(mf, _mm256_set1_ps(-f16(rd16(b + 2)))));
}

template <bool kFive>
struct QK45T {
  static constexpr bool kPer16 = false, kWideCodes = false;
  static constexpr int kSubPerBlock = 8;
  static constexpr size_t kBytes = kFive ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  static constexpr int kQsAt = kFive ? 48 : 16;
  static void scales(const uint8_t* w, int64_t nb, float* ws, float* cw) {
    for (int64_t b = 0; b < nb; ++b) k_scales_mins_f32(w + b * static_cast<int64_t>(kBytes), ws + 8 * b, cw + 8 * b);
  }
  static __m256i codes32(const uint8_t* w, int64_t j) {
    const uint8_t* p = w + (j / 8) * static_cast<int64_t>(kBytes);
    const int k = static_cast<int>(j % 8);
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kQsAt + 32 * (k / 2)));
    const __m256i m = _mm256_set1_epi8(0x0F);
    __m256i u = (k & 1) ? _mm256_and_si256(_mm256_srli_epi16(q, 4), m) : _mm256_and_si256(q, m);
    if constexpr (kFive) {
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16));
      const __m256i h = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(k)), _mm256_set1_epi8(1));
      u = _mm256_or_si256(u, _mm256_slli_epi16(h, 4));
    }
    return u;
  }
};

// Q2_K and Q3_K: element 32k + i of a block (k = 4n + g) has the 2 bits at 2g of qs[32n + i];
// Q3_K adds bit 4n + g of hmask[i] as the code's bit 2 (u = 0..7, value = d * sc * (u - 4)).
// Scales per 16 elements: Q2_K's low nibble times d with the high nibble times dmin as the min,
// Q3_K's signed 6-bit scales times d.
template <bool kThree>
struct QK23T {
  static constexpr bool kPer16 = true, kWideCodes = false;
  static constexpr int kSubPerBlock = 8;
  static constexpr size_t kBytes = kThree ? sizeof(BlockQ3_K) : sizeof(BlockQ2_K);
  static constexpr size_t kQsAt = kThree ? offsetof(BlockQ3_K, qs) : offsetof(BlockQ2_K, qs);
  static void scales(const uint8_t* w, int64_t nb, float* ws, float* cw) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* p = w + b * static_cast<int64_t>(kBytes);
      if constexpr (kThree) {
        const float d = f16(rd16(p + offsetof(BlockQ3_K, d)));
        const uint8_t* sc = p + offsetof(BlockQ3_K, scales);
        for (int i = 0; i < 16; ++i) {
          const int lo = (i < 8) ? (sc[i] & 0xF) : (sc[i - 8] >> 4), hi = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
          ws[16 * b + i] = d * static_cast<float>((lo | (hi << 4)) - 32);
          cw[16 * b + i] = -4.0f * ws[16 * b + i];
        }
      } else {
        const float d = f16(rd16(p + offsetof(BlockQ2_K, d))), dmin = f16(rd16(p + offsetof(BlockQ2_K, dmin)));
        for (int i = 0; i < 16; ++i) {
          ws[16 * b + i] = d * static_cast<float>(p[i] & 0xF);
          cw[16 * b + i] = -dmin * static_cast<float>(p[i] >> 4);
        }
      }
    }
  }
  static __m256i codes32(const uint8_t* w, int64_t j) {
    const uint8_t* p = w + (j / 8) * static_cast<int64_t>(kBytes);
    const int k = static_cast<int>(j % 8), n = k / 4, g = k % 4;
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kQsAt + 32 * n));
    __m256i u = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * g)), _mm256_set1_epi8(3));
    if constexpr (kThree) {
      const __m256i hm = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + offsetof(BlockQ3_K, hmask)));
      const __m256i h = _mm256_and_si256(_mm256_srl_epi16(hm, _mm_cvtsi32_si128(4 * n + g)), _mm256_set1_epi8(1));
      u = _mm256_or_si256(u, _mm256_slli_epi16(h, 2));
    }
    return u;
  }
};

struct Q6_KT {
  static constexpr bool kPer16 = true, kWideCodes = false;
  static constexpr int kSubPerBlock = 8;
  static constexpr size_t kBytes = sizeof(BlockQ6_K);
  static void scales(const uint8_t* w, int64_t nb, float* ws, float* cw) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* p = w + b * static_cast<int64_t>(kBytes);
      const __m256 d = _mm256_set1_ps(f16(rd16(p + offsetof(BlockQ6_K, d))));
      const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + offsetof(BlockQ6_K, scales)));
      const __m256 lo = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc)));
      const __m256 hi = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8))));
      const __m256 m32 = _mm256_set1_ps(-32.0f);
      _mm256_storeu_ps(ws + 16 * b, lo);
      _mm256_storeu_ps(ws + 16 * b + 8, hi);
      _mm256_storeu_ps(cw + 16 * b, _mm256_mul_ps(lo, m32));
      _mm256_storeu_ps(cw + 16 * b + 8, _mm256_mul_ps(hi, m32));
    }
  }
  static __m256i codes32(const uint8_t* w, int64_t j) {
    const uint8_t* p = w + (j / 8) * static_cast<int64_t>(kBytes);
    const int k = static_cast<int>(j % 8), n = k / 4, g = k % 4;
    const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 64 * n + 32 * (g & 1)));
    const __m256i m = _mm256_set1_epi8(0x0F);
    const __m256i low = g < 2 ? _mm256_and_si256(l, m) : _mm256_and_si256(_mm256_srli_epi16(l, 4), m);
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + offsetof(BlockQ6_K, qh) + 32 * n));
    const __m256i high = _mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(2 * g)), _mm256_set1_epi8(3));
    return _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
  }
};

// Per-thread prologue buffers, grown as needed.
struct RowScratch {
  std::vector<float> ws, cw;
  void reserve(size_t n) {
    if (ws.size() < n) ws.resize(n), cw.resize(n);
  }
};
inline RowScratch& row_scratch() {
  thread_local RowScratch s;
  return s;
}

// The corrections of one weight row against one activation row.
template <class T>
inline float corrections(const float* cw, const Q8ARow& x, int64_t nsub) {
  return T::kPer16 ? dot_lanes(cw, x.s16, 2 * nsub) : dot_lanes(cw, x.s32, nsub);
}

// NT activation rows against one weight row of nsub sub-blocks, 256 bits at a time. Two
// accumulators per activation row break the FMA dependency chain; the same two for every NT, so a
// row's result does not depend on how many rows are batched with it.
template <class T, int NT>
void dot_row_256(const uint8_t* w, const Q8ARow* x, int64_t nsub, const float* ws, const float* cw, float* out) {
  __m256 acc[NT][2];
  for (int t = 0; t < NT; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
  // Sub-block j feeds accumulator j % 2; written out twice so the accumulators stay in registers.
  const auto sub = [&](int64_t j, __m256* acc_t0, int stride) {
    const __m256i u = T::codes32(w, j);
    const __m256 wscale = T::kPer16 ? _mm256_set_m128(_mm_set1_ps(ws[2 * j + 1]), _mm_set1_ps(ws[2 * j]))
                                    : _mm256_set1_ps(ws[j]);
    for (int t = 0; t < NT; ++t) {
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[t].qs + 32 * j));
      __m256i dot;
      if constexpr (T::kWideCodes && !kDpbusdExact) {  // keep each 16-bit pair sum below 2^15
        const __m256i hi = _mm256_and_si256(u, _mm256_set1_epi8(static_cast<char>(0x80)));
        dot = dpbusd(dpbusd(_mm256_setzero_si256(), _mm256_xor_si256(u, hi), xq), hi, xq);
      } else {
        dot = dpbusd(_mm256_setzero_si256(), u, xq);
      }
      acc_t0[t * stride] =
          _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(wscale, _mm256_set1_ps(x[t].d[j])), acc_t0[t * stride]);
    }
  };
  int64_t j = 0;
  for (; j + 2 <= nsub; j += 2) {
    sub(j, &acc[0][0], 2);
    sub(j + 1, &acc[0][1], 2);
  }
  if (j < nsub) sub(j, &acc[0][0], 2);
  for (int t = 0; t < NT; ++t) out[t] = hsum256(_mm256_add_ps(acc[t][0], acc[t][1])) + corrections<T>(cw, x[t], nsub);
}

// The row driver: prologue per weight row, then the activation rows four at a time.
template <class T>
void rows_q8a_256(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                   int64_t n_tok, float* y, int64_t ldy) {
  const int64_t nsub = n_in / 32, nblk = nsub / T::kSubPerBlock, rb = nblk * static_cast<int64_t>(T::kBytes);
  const int64_t ngroups = T::kPer16 ? 2 * nsub : nsub;
  RowScratch& s = row_scratch();
  s.reserve(static_cast<size_t>(ngroups));
  const auto* xb = static_cast<const uint8_t*>(x);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* wr = w + r * rb;
    T::scales(wr, nblk, s.ws.data(), s.cw.data());
    for (int64_t t = 0; t < n_tok; t += 4) {
      Q8ARow xs[4];
      const int nt = static_cast<int>(n_tok - t < 4 ? n_tok - t : 4);
      for (int i = 0; i < nt; ++i) xs[i] = q8a_row(xb + (t + i) * x_row_bytes, n_in);
      float out[4];
      switch (nt) {
        case 4: dot_row_256<T, 4>(wr, xs, nsub, s.ws.data(), s.cw.data(), out); break;
        case 3: dot_row_256<T, 3>(wr, xs, nsub, s.ws.data(), s.cw.data(), out); break;
        case 2: dot_row_256<T, 2>(wr, xs, nsub, s.ws.data(), s.cw.data(), out); break;
        default: dot_row_256<T, 1>(wr, xs, nsub, s.ws.data(), s.cw.data(), out); break;
      }
      for (int i = 0; i < nt; ++i) y[(t + i) * ldy + r] = out[i];
    }
  }
}

[[maybe_unused]] void set_q8a_rows_256(Kernels& k) {  // the AVX2 table; unused by the AVX-512 TU
  auto q = [&](DType t, RowsFn fn) {
    k.rows[dtype_index(t)] = fn;
    k.act[dtype_index(t)] = ActForm::kQ8A;
  };
  q(DType::Q8_0, rows_q8a_256<Q8_0T>);
  q(DType::Q4_0, rows_q8a_256<Q4_0T>);
  q(DType::Q4_1, rows_q8a_256<Q4_1T>);
  q(DType::Q5_0, rows_q8a_256<Q5_0T>);
  q(DType::Q5_1, rows_q8a_256<Q5_1T>);
  q(DType::Q4_K, rows_q8a_256<QK45T<false>>);
  q(DType::Q5_K, rows_q8a_256<QK45T<true>>);
  q(DType::Q6_K, rows_q8a_256<Q6_KT>);
  q(DType::Q2_K, rows_q8a_256<QK23T<false>>);
  q(DType::Q3_K, rows_q8a_256<QK23T<true>>);
}
