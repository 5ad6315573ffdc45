// Quantizers for the types make-model writes. Each writes valid GGUF blocks (see tensor/blocks.h) that
// dequantize_row reads back; they aim for a small round-trip error, not for bit-equality with any
// other tool.
//
// Method: a block's values are split into sub-blocks; each sub-block gets its own scale (and, for the
// affine types, a min) from a small grid search over the step size with a least-squares refit at each
// grid point. The sub-block scales are then quantized against a per-block f16 scale, and the values are
// quantized again with the scales as they will be read back, so rounding of the scales is accounted for.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "base/check.h"
#include "base/half.h"
#include "tensor/blocks.h"
#include "tensor/quant.h"

namespace infera {

namespace {

// The grid: kGridSteps points on each side of the plain step size (the one that maps the range onto
// the levels exactly), kGridStep levels apart. Larger level counts clip the outliers.
constexpr int kGridSteps = 4;
constexpr float kGridStep = 0.2f;
// Least-squares refits per grid point (each one re-assigns the integers first).
constexpr int kRefits = 1;

// Nearest integer to x (halves away from zero) clamped to lo..hi; NaN gives lo.
int round_clamp(float x, int lo, int hi) {
  if (!(x >= static_cast<float>(lo))) return lo;
  if (x >= static_cast<float>(hi)) return hi;
  return static_cast<int>(x >= 0.0f ? x + 0.5f : x - 0.5f);
}

// The element of x[0..n) with the largest magnitude, sign kept (the first one on ties).
float signed_absmax(const float* x, int n) {
  float v = 0.0f;
  for (int i = 0; i < n; ++i)
    if (std::fabs(x[i]) > std::fabs(v)) v = x[i];
  return v;
}

// ---- Sub-block fits --------------------------------------------------------------------------

// x ≈ scale·q − min with q in 0..nmax, scale ≥ 0 and min ≥ 0 (the K types store mins unsigned).
struct Affine {
  float scale = 0.0f;
  float min = 0.0f;
};

int affine_q(const Affine& a, float inv_scale, float x, int nmax) {
  return a.scale > 0.0f ? round_clamp((x + a.min) * inv_scale, 0, nmax) : 0;
}

float affine_error(const float* x, int n, int nmax, const Affine& a) {
  const float inv = a.scale > 0.0f ? 1.0f / a.scale : 0.0f;
  float err = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float diff = a.scale * static_cast<float>(affine_q(a, inv, x[i], nmax)) - a.min - x[i];
    err += diff * diff;
  }
  return err;
}

// One re-assignment of the integers followed by a least-squares solve for scale and min.
// Returns `a` unchanged when the system is degenerate.
Affine affine_refit(const float* x, int n, int nmax, const Affine& a) {
  const float inv = a.scale > 0.0f ? 1.0f / a.scale : 0.0f;
  double sq = 0, sqq = 0, sx = 0, sqx = 0;
  for (int i = 0; i < n; ++i) {
    const double q = affine_q(a, inv, x[i], nmax);
    sq += q;
    sqq += q * q;
    sx += x[i];
    sqx += q * x[i];
  }
  const double det = n * sqq - sq * sq;
  if (det <= 0.0) return a;
  double scale = (n * sqx - sq * sx) / det;
  double offset = (sx - scale * sq) / n;  // x ≈ scale·q + offset
  if (offset > 0.0) {                     // mins are stored unsigned: offset must be ≤ 0
    offset = 0.0;
    scale = sqx / sqq;
  }
  if (!(scale > 0.0)) return a;
  return {static_cast<float>(scale), static_cast<float>(-offset)};
}

Affine fit_affine(const float* x, int n, int nmax) {
  float lo = 0.0f, hi = x[0];
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (hi <= lo) return {0.0f, -lo};  // constant block (≤ 0), or all zero
  Affine best{(hi - lo) / static_cast<float>(nmax), -lo};
  float best_err = affine_error(x, n, nmax, best);
  for (int t = -kGridSteps; t <= kGridSteps; ++t) {
    Affine a{(hi - lo) / (static_cast<float>(nmax) + kGridStep * static_cast<float>(t)), -lo};
    for (int r = 0; r < kRefits; ++r) a = affine_refit(x, n, nmax, a);
    const float err = affine_error(x, n, nmax, a);
    if (err < best_err) {
      best_err = err;
      best = a;
    }
  }
  return best;
}

// x ≈ scale·q with q in qlo..qhi (qlo = −qhi − 1); scale may be negative.
int symmetric_q(float inv_scale, float x, int qlo, int qhi) {
  return round_clamp(x * inv_scale, qlo, qhi);
}

float symmetric_error(const float* x, int n, int qlo, int qhi, float scale) {
  const float inv = scale != 0.0f ? 1.0f / scale : 0.0f;
  float err = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float diff = scale * static_cast<float>(symmetric_q(inv, x[i], qlo, qhi)) - x[i];
    err += diff * diff;
  }
  return err;
}

float fit_symmetric(const float* x, int n, int qlo, int qhi) {
  const float vmax = signed_absmax(x, n);
  if (vmax == 0.0f) return 0.0f;
  float best = vmax / static_cast<float>(qlo);  // the largest magnitude maps to qlo exactly
  float best_err = symmetric_error(x, n, qlo, qhi, best);
  for (int t = -kGridSteps; t <= kGridSteps; ++t) {
    float scale = vmax / (static_cast<float>(qlo) + kGridStep * static_cast<float>(t));
    for (int r = 0; r < kRefits; ++r) {
      const float inv = 1.0f / scale;
      double sqq = 0, sqx = 0;
      for (int i = 0; i < n; ++i) {
        const double q = symmetric_q(inv, x[i], qlo, qhi);
        sqq += q * q;
        sqx += q * x[i];
      }
      if (sqq == 0.0 || sqx == 0.0) break;
      scale = static_cast<float>(sqx / sqq);
    }
    const float err = symmetric_error(x, n, qlo, qhi, scale);
    if (err < best_err) {
      best_err = err;
      best = scale;
    }
  }
  return best;
}

// ---- K super-blocks --------------------------------------------------------------------------

// A K block with affine sub-blocks (Q2_K, Q4_K, Q5_K), before bit packing.
struct AffineSuper {
  uint16_t d = 0, dmin = 0;  // f16
  int sc[16] = {}, mn[16] = {};
  int q[kQKK] = {};
};

// Fits nsub sub-blocks of sub_len values with q in 0..nmax, sub-block scales and mins in 0..smax.
AffineSuper quantize_affine_super(const float* x, int nsub, int sub_len, int nmax, int smax) {
  Affine sub[16];
  float max_scale = 0.0f, max_min = 0.0f;
  for (int s = 0; s < nsub; ++s) {
    sub[s] = fit_affine(x + s * sub_len, sub_len, nmax);
    max_scale = std::max(max_scale, sub[s].scale);
    max_min = std::max(max_min, sub[s].min);
  }
  AffineSuper out;
  out.d = f32_to_fp16(max_scale / static_cast<float>(smax));
  out.dmin = f32_to_fp16(max_min / static_cast<float>(smax));
  const float d = fp16_to_f32(out.d), dmin = fp16_to_f32(out.dmin);
  for (int s = 0; s < nsub; ++s) {
    out.sc[s] = d > 0.0f ? round_clamp(sub[s].scale / d, 0, smax) : 0;
    out.mn[s] = dmin > 0.0f ? round_clamp(sub[s].min / dmin, 0, smax) : 0;
    // Re-quantize with the scale and min exactly as the reader computes them.
    const Affine eff{d * static_cast<float>(out.sc[s]), dmin * static_cast<float>(out.mn[s])};
    const float inv = eff.scale > 0.0f ? 1.0f / eff.scale : 0.0f;
    for (int i = 0; i < sub_len; ++i)
      out.q[s * sub_len + i] = affine_q(eff, inv, x[s * sub_len + i], nmax);
  }
  return out;
}

// A K block with symmetric sub-blocks of 16 (Q3_K, Q6_K), before bit packing.
struct SymmetricSuper {
  uint16_t d = 0;  // f16
  int sc[16] = {};
  int q[kQKK] = {};
};

// Sub-block scales are signed integers in slo..(−slo − 1); q in qlo..(−qlo − 1).
SymmetricSuper quantize_symmetric_super(const float* x, int qlo, int slo) {
  const int qhi = -qlo - 1, shi = -slo - 1;
  float sub[16];
  for (int s = 0; s < 16; ++s) sub[s] = fit_symmetric(x + 16 * s, 16, qlo, qhi);
  SymmetricSuper out;
  const float smax = signed_absmax(sub, 16);
  out.d = f32_to_fp16(smax / static_cast<float>(slo));  // the largest scale maps to slo
  const float d = fp16_to_f32(out.d);
  for (int s = 0; s < 16; ++s) {
    out.sc[s] = d != 0.0f ? round_clamp(sub[s] / d, slo, shi) : 0;
    const float eff = d * static_cast<float>(out.sc[s]);
    const float inv = eff != 0.0f ? 1.0f / eff : 0.0f;
    for (int i = 0; i < 16; ++i) out.q[16 * s + i] = symmetric_q(inv, x[16 * s + i], qlo, qhi);
  }
  return out;
}

// ---- Per-type encoders (one block each) -------------------------------------------------------

void quant_q8_0(const float* x, BlockQ8_0* b) {
  b->d = f32_to_fp16(std::fabs(signed_absmax(x, kQK)) / 127.0f);
  const float d = fp16_to_f32(b->d);
  const float inv = d > 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < kQK; ++j) b->qs[j] = static_cast<int8_t>(round_clamp(x[j] * inv, -127, 127));
}

// Symmetric 4/5-bit block: the value of largest magnitude maps to q = 0 (level −half).
float symmetric_0_scale(const float* x, int half, uint16_t* d16) {
  *d16 = f32_to_fp16(signed_absmax(x, kQK) / static_cast<float>(-half));
  const float d = fp16_to_f32(*d16);
  return d != 0.0f ? 1.0f / d : 0.0f;
}

void quant_q4_0(const float* x, BlockQ4_0* b) {
  const float inv = symmetric_0_scale(x, 8, &b->d);
  for (int j = 0; j < kQK / 2; ++j) {
    const int lo = round_clamp(x[j] * inv + 8.0f, 0, 15);
    const int hi = round_clamp(x[j + kQK / 2] * inv + 8.0f, 0, 15);
    b->qs[j] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

// Packs 32 five-bit values into the Q5_0 / Q5_1 qs and qh fields.
void pack_q5(const int q[kQK], uint8_t qs[kQK / 2], uint8_t qh[4]) {
  uint32_t h = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0xF) | ((q[j + kQK / 2] & 0xF) << 4));
    h |= static_cast<uint32_t>(q[j] >> 4) << j;
    h |= static_cast<uint32_t>(q[j + kQK / 2] >> 4) << (j + 16);
  }
  std::memcpy(qh, &h, 4);
}

void quant_q5_0(const float* x, BlockQ5_0* b) {
  const float inv = symmetric_0_scale(x, 16, &b->d);
  int q[kQK];
  for (int j = 0; j < kQK; ++j) q[j] = round_clamp(x[j] * inv + 16.0f, 0, 31);
  pack_q5(q, b->qs, b->qh);
}

// Min/max affine block (Q4_1, Q5_1): q[j] in 0..nmax with x ≈ q·d + m.
void affine_1(const float* x, int nmax, uint16_t* d16, uint16_t* m16, int q[kQK]) {
  const float lo = *std::min_element(x, x + kQK), hi = *std::max_element(x, x + kQK);
  *d16 = f32_to_fp16((hi - lo) / static_cast<float>(nmax));
  *m16 = f32_to_fp16(lo);
  const float d = fp16_to_f32(*d16), m = fp16_to_f32(*m16);
  const float inv = d > 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < kQK; ++j) q[j] = round_clamp((x[j] - m) * inv, 0, nmax);
}

void quant_q4_1(const float* x, BlockQ4_1* b) {
  int q[kQK];
  affine_1(x, 15, &b->d, &b->m, q);
  for (int j = 0; j < kQK / 2; ++j) b->qs[j] = static_cast<uint8_t>(q[j] | (q[j + kQK / 2] << 4));
}

void quant_q5_1(const float* x, BlockQ5_1* b) {
  int q[kQK];
  affine_1(x, 31, &b->d, &b->m, q);
  pack_q5(q, b->qs, b->qh);
}

void quant_q2_k(const float* x, BlockQ2_K* b) {
  const AffineSuper s = quantize_affine_super(x, 16, 16, 3, 15);
  b->d = s.d;
  b->dmin = s.dmin;
  for (int i = 0; i < 16; ++i) b->scales[i] = static_cast<uint8_t>(s.sc[i] | (s.mn[i] << 4));
  std::memset(b->qs, 0, sizeof b->qs);
  for (int e = 0; e < kQKK; ++e) {
    const int n = e / 128, j = (e % 128) / 32, l = e % 32;
    b->qs[32 * n + l] |= static_cast<uint8_t>(s.q[e] << (2 * j));
  }
}

void quant_q3_k(const float* x, BlockQ3_K* b) {
  const SymmetricSuper s = quantize_symmetric_super(x, -4, -32);
  b->d = s.d;
  std::memset(b->scales, 0, sizeof b->scales);
  for (int i = 0; i < 16; ++i) {
    const int u = s.sc[i] + 32;  // 0..63
    b->scales[i % 8] |= static_cast<uint8_t>((u & 0xF) << (i < 8 ? 0 : 4));
    b->scales[8 + i % 4] |= static_cast<uint8_t>((u >> 4) << (2 * (i / 4)));
  }
  std::memset(b->qs, 0, sizeof b->qs);
  std::memset(b->hmask, 0, sizeof b->hmask);
  for (int e = 0; e < kQKK; ++e) {
    const int n = e / 128, j = (e % 128) / 32, l = e % 32;
    const int u = s.q[e] + 4;  // 0..7: low two bits in qs, bit 2 in hmask
    b->qs[32 * n + l] |= static_cast<uint8_t>((u & 3) << (2 * j));
    b->hmask[l] |= static_cast<uint8_t>((u >> 2) << (4 * n + j));
  }
}

// The 12-byte packing of eight 6-bit scales and mins used by Q4_K and Q5_K.
void pack_k_scales(const int sc[8], const int mn[8], uint8_t out[12]) {
  for (int j = 0; j < 4; ++j) {
    out[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    out[j + 4] = static_cast<uint8_t>(mn[j] | ((mn[j + 4] >> 4) << 6));
    out[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
  }
}

void quant_q4_k(const float* x, BlockQ4_K* b) {
  const AffineSuper s = quantize_affine_super(x, 8, 32, 15, 63);
  b->d = s.d;
  b->dmin = s.dmin;
  pack_k_scales(s.sc, s.mn, b->scales);
  for (int c = 0; c < 4; ++c)
    for (int l = 0; l < 32; ++l)
      b->qs[32 * c + l] = static_cast<uint8_t>(s.q[64 * c + l] | (s.q[64 * c + 32 + l] << 4));
}

void quant_q5_k(const float* x, BlockQ5_K* b) {
  const AffineSuper s = quantize_affine_super(x, 8, 32, 31, 63);
  b->d = s.d;
  b->dmin = s.dmin;
  pack_k_scales(s.sc, s.mn, b->scales);
  std::memset(b->qh, 0, sizeof b->qh);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      const int q0 = s.q[64 * c + l], q1 = s.q[64 * c + 32 + l];
      b->qs[32 * c + l] = static_cast<uint8_t>((q0 & 0xF) | ((q1 & 0xF) << 4));
      b->qh[l] |= static_cast<uint8_t>(((q0 >> 4) << (2 * c)) | ((q1 >> 4) << (2 * c + 1)));
    }
  }
}

void quant_q6_k(const float* x, BlockQ6_K* b) {
  const SymmetricSuper s = quantize_symmetric_super(x, -32, -128);
  b->d = s.d;
  for (int i = 0; i < 16; ++i) b->scales[i] = static_cast<int8_t>(s.sc[i]);
  std::memset(b->ql, 0, sizeof b->ql);
  std::memset(b->qh, 0, sizeof b->qh);
  for (int e = 0; e < kQKK; ++e) {
    const int n = e / 128, g = (e % 128) / 32, l = e % 32;
    const int u = s.q[e] + 32;  // 0..63: low nibble in ql, top two bits in qh
    b->ql[64 * n + l + 32 * (g & 1)] |= static_cast<uint8_t>((u & 0xF) << (g < 2 ? 0 : 4));
    b->qh[32 * n + l] |= static_cast<uint8_t>((u >> 4) << (2 * g));
  }
}

// Runs `encode` over each block of the row, writing blocks byte-packed at dst.
template <typename Block, int kElems, typename Encode>
void quantize_blocks(const float* x, uint8_t* dst, int64_t n, Encode encode) {
  CHECK(n % kElems == 0);
  for (int64_t i = 0; i < n / kElems; ++i) {
    Block b;
    encode(x + i * kElems, &b);
    std::memcpy(dst + i * static_cast<int64_t>(sizeof(Block)), &b, sizeof(Block));
  }
}

template <typename Convert>
void quantize_16bit(const float* x, uint8_t* dst, int64_t n, Convert convert) {
  for (int64_t i = 0; i < n; ++i) {
    const uint16_t h = convert(x[i]);
    std::memcpy(dst + 2 * i, &h, 2);
  }
}

}  // namespace

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  switch (t) {
    case DType::F32:
      if (n > 0) std::memcpy(d, src, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16: return quantize_16bit(src, d, n, f32_to_fp16);
    case DType::BF16: return quantize_16bit(src, d, n, f32_to_bf16);
    case DType::Q8_0: return quantize_blocks<BlockQ8_0, kQK>(src, d, n, quant_q8_0);
    case DType::Q4_0: return quantize_blocks<BlockQ4_0, kQK>(src, d, n, quant_q4_0);
    case DType::Q4_1: return quantize_blocks<BlockQ4_1, kQK>(src, d, n, quant_q4_1);
    case DType::Q5_0: return quantize_blocks<BlockQ5_0, kQK>(src, d, n, quant_q5_0);
    case DType::Q5_1: return quantize_blocks<BlockQ5_1, kQK>(src, d, n, quant_q5_1);
    case DType::Q2_K: return quantize_blocks<BlockQ2_K, kQKK>(src, d, n, quant_q2_k);
    case DType::Q3_K: return quantize_blocks<BlockQ3_K, kQKK>(src, d, n, quant_q3_k);
    case DType::Q4_K: return quantize_blocks<BlockQ4_K, kQKK>(src, d, n, quant_q4_k);
    case DType::Q5_K: return quantize_blocks<BlockQ5_K, kQKK>(src, d, n, quant_q5_k);
    case DType::Q6_K: return quantize_blocks<BlockQ6_K, kQKK>(src, d, n, quant_q6_k);
    default: CHECK(false && "quantize_row: unsupported type");
  }
}

}  // namespace infera
