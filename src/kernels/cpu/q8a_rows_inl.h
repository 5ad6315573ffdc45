// Quantized-row kernels over Q8A activations, written once with 256-bit AVX2 intrinsics and
// included by each x86 kernel translation unit (kernels_avx2.cc, kernels_avx512.cc), which first
// define, for their instruction set:
//   __m256i dpbusd(__m256i acc, __m256i u8, __m256i s8);  // acc + lane sums of 4 u8*s8 products
//   __m256i high_bits32(const uint8_t* qh4);              // bit i of 32 -> 0x10 in byte i
// Include inside an anonymous namespace only.
//
// Each 32-element sub-block is decoded into 32 unsigned byte codes and dotted with the activation
// bytes; the code offset (Q4_0's 8, ...) is folded in by starting the accumulator at the activation
// block's precomputed lane correction. Up to four activation rows share each decoded sub-block.
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

inline __m256i nibbles(const uint8_t* qs16) {  // 16 bytes -> 32 codes: low nibbles, then high nibbles
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs16));
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
}

// A decoded sub-block: codes, per-lane f32 scale (lanes 0-3 cover elements 0-15, 4-7 cover 16-31),
// and the min term's weight (multiplies the activation block's s).
struct Sub {
  __m256i u;
  __m256 ws;
  float min;
};

// Per-type decoders. kSub: sub-blocks per block; kShift: code offset as 8 << kShift (-1: none);
// kSigned: the codes are signed bytes (Q8_0).
struct Q8_0T {
  static constexpr int kSub = 1, kShift = -1;
  static constexpr bool kSigned = true, kMin = false;
  static constexpr size_t kBytes = sizeof(BlockQ8_0);
  struct Ctx {
    const uint8_t* b;
  };
  static Ctx prepare(const uint8_t* b) { return {b}; }
  static Sub sub(const Ctx& c, int) {
    return {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.b + 2)), _mm256_set1_ps(f16(rd16(c.b))), 0};
  }
};
struct Q4_0T {
  static constexpr int kSub = 1, kShift = 0;
  static constexpr bool kSigned = false, kMin = false;
  static constexpr size_t kBytes = sizeof(BlockQ4_0);
  struct Ctx {
    const uint8_t* b;
  };
  static Ctx prepare(const uint8_t* b) { return {b}; }
  static Sub sub(const Ctx& c, int) { return {nibbles(c.b + 2), _mm256_set1_ps(f16(rd16(c.b))), 0}; }
};
struct Q4_1T {
  static constexpr int kSub = 1, kShift = -1;
  static constexpr bool kSigned = false, kMin = true;
  static constexpr size_t kBytes = sizeof(BlockQ4_1);
  struct Ctx {
    const uint8_t* b;
  };
  static Ctx prepare(const uint8_t* b) { return {b}; }
  static Sub sub(const Ctx& c, int) {
    return {nibbles(c.b + 4), _mm256_set1_ps(f16(rd16(c.b))), f16(rd16(c.b + 2))};
  }
};
struct Q5_0T {
  static constexpr int kSub = 1, kShift = 1;
  static constexpr bool kSigned = false, kMin = false;
  static constexpr size_t kBytes = sizeof(BlockQ5_0);
  struct Ctx {
    const uint8_t* b;
  };
  static Ctx prepare(const uint8_t* b) { return {b}; }
  static Sub sub(const Ctx& c, int) {
    return {_mm256_or_si256(nibbles(c.b + 6), high_bits32(c.b + 2)), _mm256_set1_ps(f16(rd16(c.b))), 0};
  }
};
struct Q5_1T {
  static constexpr int kSub = 1, kShift = -1;
  static constexpr bool kSigned = false, kMin = true;
  static constexpr size_t kBytes = sizeof(BlockQ5_1);
  struct Ctx {
    const uint8_t* b;
  };
  static Ctx prepare(const uint8_t* b) { return {b}; }
  static Sub sub(const Ctx& c, int) {
    return {_mm256_or_si256(nibbles(c.b + 8), high_bits32(c.b + 4)), _mm256_set1_ps(f16(rd16(c.b))),
            f16(rd16(c.b + 2))};
  }
};
// The 8 scales (times d) and mins (times -dmin) of a Q4_K / Q5_K super-block, unpacked from their
// 12 bytes with four 32-bit operations and converted 8 at a time.
inline void k_scales_mins_f32(const uint8_t* b, float sc[8], float mn[8]) {
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
  static constexpr int kSub = 8, kShift = -1;
  static constexpr bool kSigned = false, kMin = true;
  static constexpr size_t kBytes = kFive ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K);
  struct Ctx {
    const uint8_t* qs;
    __m256i qh;
    alignas(32) float sc[8];
    alignas(32) float mn[8];
  };
  static Ctx prepare(const uint8_t* b) {
    Ctx c;
    k_scales_mins_f32(b, c.sc, c.mn);
    c.qs = b + (kFive ? 48 : 16);
    c.qh = kFive ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16)) : _mm256_setzero_si256();
    return c;
  }
  static Sub sub(const Ctx& c, int k) {
    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.qs + 32 * (k / 2)));
    const __m256i m = _mm256_set1_epi8(0x0F);
    __m256i u = (k & 1) ? _mm256_and_si256(_mm256_srli_epi16(q, 4), m) : _mm256_and_si256(q, m);
    if constexpr (kFive) {
      const __m256i h = _mm256_and_si256(_mm256_srl_epi16(c.qh, _mm_cvtsi32_si128(k)), _mm256_set1_epi8(1));
      u = _mm256_or_si256(u, _mm256_slli_epi16(h, 4));
    }
    return {u, _mm256_set1_ps(c.sc[k]), c.mn[k]};
  }
};
struct Q6_KT {
  static constexpr int kSub = 8, kShift = 2;
  static constexpr bool kSigned = false, kMin = false;
  static constexpr size_t kBytes = sizeof(BlockQ6_K);
  struct Ctx {
    const uint8_t* b;
    __m256 lo, hi;  // d * scale of the 16 groups of 16: groups 0-7, 8-15
  };
  static Ctx prepare(const uint8_t* b) {
    Ctx c;
    c.b = b;
    const __m256 d = _mm256_set1_ps(f16(rd16(b + offsetof(BlockQ6_K, d))));
    const __m128i sc = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + offsetof(BlockQ6_K, scales)));
    c.lo = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc)));
    c.hi = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8))));
    return c;
  }
  static Sub sub(const Ctx& c, int k) {
    const int n = k / 4, g = k % 4;
    const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.b + 64 * n + 32 * (g & 1)));
    const __m256i m = _mm256_set1_epi8(0x0F);
    const __m256i low = g < 2 ? _mm256_and_si256(l, m) : _mm256_and_si256(_mm256_srli_epi16(l, 4), m);
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.b + offsetof(BlockQ6_K, qh) + 32 * n));
    const __m256i high = _mm256_and_si256(_mm256_srl_epi16(h, _mm_cvtsi32_si128(2 * g)), _mm256_set1_epi8(3));
    const __m256i u = _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
    // Lanes 0-3 take group 2k's scale, lanes 4-7 group 2k+1's.
    const __m256 src = k < 4 ? c.lo : c.hi;
    const int g0 = (2 * k) % 8;
    const __m256i idx = _mm256_setr_epi32(g0, g0, g0, g0, g0 + 1, g0 + 1, g0 + 1, g0 + 1);
    return {u, _mm256_permutevar8x32_ps(src, idx), 0};
  }
};

// NT activation rows against one weight row of n_blocks blocks. One accumulator per row would be a
// single dependent chain (an FMA's latency per sub-block); two break it. The same two for every NT,
// so a row's result does not depend on how many rows are batched with it.
template <class T, int NT>
void dot_row(const uint8_t* w, const BlockQ8A* const* x, int64_t n_blocks, float* out) {
  constexpr int kA = 2;
  __m256 acc[NT][kA];
  float macc[NT][kA];
  for (int t = 0; t < NT; ++t)
    for (int a = 0; a < kA; ++a) acc[t][a] = _mm256_setzero_ps(), macc[t][a] = 0;
  for (int64_t b = 0; b < n_blocks; ++b) {
    const typename T::Ctx c = T::prepare(w + b * T::kBytes);
    for (int k = 0; k < T::kSub; ++k) {
      const Sub s = T::sub(c, k);
      const int64_t j = b * T::kSub + k;
      const int a = static_cast<int>(j % kA);
      __m256i ua = s.u;
      if constexpr (T::kSigned) ua = _mm256_abs_epi8(s.u);
      for (int t = 0; t < NT; ++t) {
        const BlockQ8A& xb = x[t][j];
        __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs));
        __m256i init = _mm256_setzero_si256();
        if constexpr (T::kSigned) xq = _mm256_sign_epi8(xq, s.u);
        if constexpr (T::kShift >= 0)
          init = _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.negc8)), T::kShift);
        const __m256i dot = dpbusd(init, ua, xq);
        acc[t][a] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_mul_ps(s.ws, _mm256_set1_ps(xb.d)), acc[t][a]);
        if constexpr (T::kMin) macc[t][a] += s.min * xb.s;
      }
    }
  }
  for (int t = 0; t < NT; ++t) {
    __m256 sum = acc[t][0];
    float msum = macc[t][0];
    for (int a = 1; a < kA; ++a) sum = _mm256_add_ps(sum, acc[t][a]), msum += macc[t][a];
    out[t] = hsum256(sum) + msum;
  }
}

template <class T>
void rows_q8a(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
              int64_t n_tok, float* y, int64_t ldy) {
  const int64_t nblk = n_in / (32 * T::kSub), rb = nblk * static_cast<int64_t>(T::kBytes);
  const auto* xb = static_cast<const uint8_t*>(x);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* wr = w + r * rb;
    int64_t t = 0;
    for (; t < n_tok; t += 4) {
      const BlockQ8A* xs[4];
      const int nt = static_cast<int>(n_tok - t < 4 ? n_tok - t : 4);
      for (int i = 0; i < nt; ++i) xs[i] = reinterpret_cast<const BlockQ8A*>(xb + (t + i) * x_row_bytes);
      float out[4];
      switch (nt) {
        case 4: dot_row<T, 4>(wr, xs, nblk, out); break;
        case 3: dot_row<T, 3>(wr, xs, nblk, out); break;
        case 2: dot_row<T, 2>(wr, xs, nblk, out); break;
        default: dot_row<T, 1>(wr, xs, nblk, out); break;
      }
      for (int i = 0; i < nt; ++i) y[(t + i) * ldy + r] = out[i];
    }
  }
}


void set_q8a_rows(Kernels& k) {
  auto q = [&](DType t, RowsFn fn) {
    k.rows[dtype_index(t)] = fn;
    k.act[dtype_index(t)] = ActForm::kQ8A;
  };
  q(DType::Q8_0, rows_q8a<Q8_0T>);
  q(DType::Q4_0, rows_q8a<Q4_0T>);
  q(DType::Q4_1, rows_q8a<Q4_1T>);
  q(DType::Q5_0, rows_q8a<Q5_0T>);
  q(DType::Q5_1, rows_q8a<Q5_1T>);
  q(DType::Q4_K, rows_q8a<QK45T<false>>);
  q(DType::Q5_K, rows_q8a<QK45T<true>>);
  q(DType::Q6_K, rows_q8a<Q6_KT>);
}
