// Portable kernels: the scalar twins. Each quantized type is read one 32-element sub-block at a time
// as unsigned integer codes u[i], an offset o, one or two scales (two when the type scales each 16
// elements) and a min: value = scale * (u - o) + min. Its dot with a Q8A activation block is
//   d * sum_groups(scale * sum(u * q))  +  sum_groups(c * s)     with c = min - o * scale,
// the first sum in exact integers, s the activation group sums (s16 or s32). The SIMD kernels
// compute the same integers and the same decomposition; only the order of the f32 sums differs, so
// tests compare them to these within a few ulps of the magnitude.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

#include "base/half.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/packed.h"
#include "kernels/cpu/simd_common.h"
#include "kernels/reference/ops.h"
#include "tensor/blocks.h"
#include "tensor/quant.h"

namespace infera::cpu {

namespace {

// One 32-element sub-block of a weight row, decoded to integers.
struct SubBlock {
  int u[32];
  int offset = 0;             // value = scale * (u - offset) + min
  float scale[2] = {0, 0};    // for elements 0..15 and 16..31
  float min = 0;              // added per element (Q4_1, Q5_1) or subtracted (K types: -dmin * m)
  bool per16 = false;         // scales differ per 16 (Q2_K, Q3_K, Q6_K): corrections use the 16-sums
  float min16[2] = {0, 0};    // per16: the min of elements 0..15 and 16..31 (Q2_K: -dmin * m)
};

// Signed 6-bit scale of 16-element group i (0..15) of a Q3_K block, -32..31.
int q3_k_scale(const uint8_t scales[12], int i) {
  const int lo = (i < 8) ? (scales[i] & 0xF) : (scales[i - 8] >> 4);
  const int hi = (scales[8 + i % 4] >> (2 * (i / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}

template <typename B>
B load(const uint8_t* p) {
  B b;
  std::memcpy(&b, p, sizeof(B));
  return b;
}

void q5_codes(const uint8_t qh[4], const uint8_t qs[16], int u[32]) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  for (int i = 0; i < 16; ++i) {
    u[i] = (qs[i] & 0xF) | static_cast<int>(((h >> i) & 1u) << 4);
    u[i + 16] = (qs[i] >> 4) | static_cast<int>(((h >> (i + 16)) & 1u) << 4);
  }
}

// Sub-block j of the row starting at w (j counts 32-element groups from the row start).
SubBlock decode(DType t, const uint8_t* w, int64_t j) {
  SubBlock s;
  switch (t) {
    case DType::Q8_0: {  // signed codes as unsigned: u = q + 128
      const auto b = load<BlockQ8_0>(w + j * sizeof(BlockQ8_0));
      for (int i = 0; i < 32; ++i) s.u[i] = b.qs[i] + 128;
      s.offset = 128;
      s.scale[0] = s.scale[1] = fp16_to_f32(b.d);
      break;
    }
    case DType::Q4_0: {
      const auto b = load<BlockQ4_0>(w + j * sizeof(BlockQ4_0));
      for (int i = 0; i < 16; ++i) s.u[i] = b.qs[i] & 0xF, s.u[i + 16] = b.qs[i] >> 4;
      s.offset = 8;
      s.scale[0] = s.scale[1] = fp16_to_f32(b.d);
      break;
    }
    case DType::Q4_1: {
      const auto b = load<BlockQ4_1>(w + j * sizeof(BlockQ4_1));
      for (int i = 0; i < 16; ++i) s.u[i] = b.qs[i] & 0xF, s.u[i + 16] = b.qs[i] >> 4;
      s.scale[0] = s.scale[1] = fp16_to_f32(b.d);
      s.min = fp16_to_f32(b.m);
      break;
    }
    case DType::Q5_0: {
      const auto b = load<BlockQ5_0>(w + j * sizeof(BlockQ5_0));
      q5_codes(b.qh, b.qs, s.u);
      s.offset = 16;
      s.scale[0] = s.scale[1] = fp16_to_f32(b.d);
      break;
    }
    case DType::Q5_1: {
      const auto b = load<BlockQ5_1>(w + j * sizeof(BlockQ5_1));
      q5_codes(b.qh, b.qs, s.u);
      s.scale[0] = s.scale[1] = fp16_to_f32(b.d);
      s.min = fp16_to_f32(b.m);
      break;
    }
    case DType::Q4_K:
    case DType::Q5_K: {
      const bool five = t == DType::Q5_K;
      const int64_t sb = j / 8, k = j % 8, c = k / 2, half = k % 2;
      const uint8_t* p = w + sb * (five ? sizeof(BlockQ5_K) : sizeof(BlockQ4_K));
      uint16_t d, dmin;
      std::memcpy(&d, p, 2);
      std::memcpy(&dmin, p + 2, 2);
      const uint8_t* scales = p + 4;
      const uint8_t* qh = p + 16;
      const uint8_t* qs = p + (five ? 48 : 16);
      int sc8[8], mn8[8];
      k_scales_mins(scales, sc8, mn8);
      const int sc = sc8[k], mn = mn8[k];
      for (int i = 0; i < 32; ++i) {
        const uint8_t q = qs[32 * c + i];
        s.u[i] = half ? (q >> 4) : (q & 0xF);
        if (five) s.u[i] |= ((qh[i] >> k) & 1) << 4;
      }
      s.scale[0] = s.scale[1] = fp16_to_f32(d) * static_cast<float>(sc);
      s.min = -fp16_to_f32(dmin) * static_cast<float>(mn);
      break;
    }
    case DType::Q2_K:    // element 32k + i: bits 2g of qs[32n + i] (k = 4n + g); scale and min per 16
    case DType::Q3_K: {  // the same 2 low bits, bit 4n + g of hmask[i] on top (u = 0..7, offset 4)
      const int64_t sb = j / 8, k = j % 8, n = k / 4, g = k % 4;
      const bool two = t == DType::Q2_K;
      const uint8_t* p = w + sb * (two ? sizeof(BlockQ2_K) : sizeof(BlockQ3_K));
      const uint8_t* qs = p + (two ? offsetof(BlockQ2_K, qs) : offsetof(BlockQ3_K, qs));
      for (int i = 0; i < 32; ++i) s.u[i] = (qs[32 * n + i] >> (2 * g)) & 3;
      s.per16 = true;
      if (two) {
        const auto b = load<BlockQ2_K>(p);
        for (int h = 0; h < 2; ++h) {
          s.scale[h] = fp16_to_f32(b.d) * static_cast<float>(b.scales[2 * k + h] & 0xF);
          s.min16[h] = -fp16_to_f32(b.dmin) * static_cast<float>(b.scales[2 * k + h] >> 4);
        }
      } else {
        const auto b = load<BlockQ3_K>(p);
        for (int i = 0; i < 32; ++i) s.u[i] |= ((b.hmask[i] >> (4 * n + g)) & 1) << 2;
        s.offset = 4;
        for (int h = 0; h < 2; ++h)
          s.scale[h] = fp16_to_f32(b.d) * static_cast<float>(q3_k_scale(b.scales, static_cast<int>(2 * k + h)));
      }
      break;
    }
    case DType::Q6_K: {
      const int64_t sb = j / 8, k = j % 8, n = k / 4, g = k % 4;
      const auto b = load<BlockQ6_K>(w + sb * sizeof(BlockQ6_K));
      for (int i = 0; i < 32; ++i) {
        const uint8_t lb = b.ql[64 * n + i + 32 * (g & 1)];
        const int low = g < 2 ? (lb & 0xF) : (lb >> 4);
        const int high = (b.qh[32 * n + i] >> (2 * g)) & 3;
        s.u[i] = low | (high << 4);
      }
      s.offset = 32;
      s.per16 = true;
      const float d = fp16_to_f32(b.d);
      s.scale[0] = d * static_cast<float>(b.scales[2 * k]);
      s.scale[1] = d * static_cast<float>(b.scales[2 * k + 1]);
      break;
    }
    default: break;
  }
  return s;
}

float dot_q8a(DType t, const uint8_t* w, const Q8ARow& x, int64_t nb) {
  float acc = 0, corr = 0;
  for (int64_t j = 0; j < nb; ++j) {
    const SubBlock s = decode(t, w, j);
    const int8_t* q = x.qs + 32 * j;
    int32_t lo = 0, hi = 0;
    for (int i = 0; i < 16; ++i) lo += s.u[i] * q[i];
    for (int i = 16; i < 32; ++i) hi += s.u[i] * q[i];
    acc += x.d[j] * (s.scale[0] * static_cast<float>(lo) + s.scale[1] * static_cast<float>(hi));
    const float off = static_cast<float>(s.offset);
    if (s.per16)
      corr += (s.min16[0] - off * s.scale[0]) * x.s16[2 * j] + (s.min16[1] - off * s.scale[1]) * x.s16[2 * j + 1];
    else
      corr += (s.min - off * s.scale[0]) * x.s32[j];
  }
  return acc + corr;
}

template <DType T>
void rows_q8a(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
              int64_t n_tok, float* y, int64_t ldy) {
  const int64_t rb = row_bytes(T, n_in), nb = n_in / 32;
  for (int64_t r = r0; r < r1; ++r)
    for (int64_t t = 0; t < n_tok; ++t) {
      const Q8ARow xt = q8a_row(static_cast<const uint8_t*>(x) + t * x_row_bytes, n_in);
      y[t * ldy + r] = dot_q8a(T, w + r * rb, xt, nb);
    }
}

float dot_f32(const float* a, const float* b, int64_t n) {
  float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) lane[l] += a[i + l] * b[i + l];
  for (; i < n; ++i) lane[i % 8] += a[i] * b[i];
  return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
}

// F32 / F16 / BF16 weights: dequantize the row (exact) and dot it with each f32 activation row.
template <DType T>
void rows_float(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                int64_t n_tok, float* y, int64_t ldy) {
  const int64_t rb = row_bytes(T, n_in);
  std::vector<float> row(static_cast<size_t>(n_in));
  for (int64_t r = r0; r < r1; ++r) {
    dequantize_row(T, w + r * rb, row.data(), n_in);
    for (int64_t t = 0; t < n_tok; ++t) {
      const auto* xt = reinterpret_cast<const float*>(static_cast<const uint8_t*>(x) + t * x_row_bytes);
      y[t * ldy + r] = dot_f32(row.data(), xt, n_in);
    }
  }
}

void quantize_q8a(const float* x, void* out, int64_t n) {
  auto* qs = static_cast<int8_t*>(out);
  auto* d = reinterpret_cast<float*>(qs + n);
  float* s16 = d + n / 32;
  float* s32 = s16 + n / 16;
  for (int64_t b = 0; b < n / 32; ++b, x += 32) {
    float amax = 0;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[i]));
    const float db = amax / 127.0f;
    const float id = db != 0 ? 1.0f / db : 0.0f;
    int sum[2] = {0, 0};
    for (int i = 0; i < 32; ++i) {
      const auto q = static_cast<int8_t>(std::nearbyint(x[i] * id));
      qs[32 * b + i] = q;
      sum[i / 16] += q;
    }
    d[b] = db;
    s16[2 * b] = db * static_cast<float>(sum[0]);
    s16[2 * b + 1] = db * static_cast<float>(sum[1]);
    s32[b] = db * static_cast<float>(sum[0] + sum[1]);
  }
}

void axpy_f32(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

}  // namespace

// The scalar twin of the packed kernels (packed.h): per row, block and token the same integers
// (sum of u * q over the block minus offset * sum of q) scaled by d_w * d_a and summed in f32.
template <DType T>
void rows_packed(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                 int64_t n_tok, float* y, int64_t ldy) {
  const int64_t nb = n_in / 32, cb = packed_code_bytes(T), chunks = cb / 64;
  const int offset = packed_offset(T);
  const int64_t gb = packed_group_bytes(T, n_in);
  const auto* xb = static_cast<const uint8_t*>(x);
  for (int64_t g = r0 / kPackRows; g < r1 / kPackRows; ++g) {
    for (int64_t t = 0; t < n_tok; ++t) {
      const Q8ARow xa = q8a_row(xb + t * x_row_bytes, n_in);
      float acc[kPackRows] = {};
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* cell = w + g * gb + b * cb;
        const uint8_t* sc = w + g * gb + nb * cb + b * 32;
        const int8_t* q = xa.qs + 32 * b;
        int qsum = 0;
        for (int i = 0; i < 32; ++i) qsum += q[i];
        for (int64_t r = 0; r < kPackRows; ++r) {
          int dot = -offset * qsum;
          for (int64_t c = 0; c < chunks; ++c)
            for (int m = 0; m < 4; ++m) {
              const uint8_t byte = cell[64 * c + 4 * r + m];
              if (T == DType::Q4_0) {  // chunk c: elements 4c+m (low nibble) and 16+4c+m (high)
                dot += (byte & 0xF) * q[4 * c + m] + (byte >> 4) * q[16 + 4 * c + m];
              } else {  // Q8_0: element 4c+m
                dot += byte * q[4 * c + m];
              }
            }
          uint16_t d;
          std::memcpy(&d, sc + 2 * r, 2);
          acc[r] += static_cast<float>(dot) * (fp16_to_f32(d) * xa.d[b]);
        }
      }
      for (int64_t r = 0; r < kPackRows; ++r) y[t * ldy + g * kPackRows + r] = acc[r];
    }
  }
}

// The scalar twin for the packed K types: per row and sub-block the integer sum of u * q (minus
// 32 * the activation sum per 16 for Q6_K), scaled by the small scale times d and d_a; Q4_K then
// subtracts dmin * mn * (d_a * sum of q).
template <DType T>
void rows_packed_k(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                   int64_t n_tok, float* y, int64_t ldy) {
  const int64_t nsb = n_in / 256, sbb = packed_superblock_bytes(T), gb = packed_group_bytes(T, n_in);
  const auto* xb = static_cast<const uint8_t*>(x);
  const auto f16at = [](const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    return fp16_to_f32(h);
  };
  for (int64_t g = r0 / kPackRows; g < r1 / kPackRows; ++g) {
    for (int64_t t = 0; t < n_tok; ++t) {
      const Q8ARow xa = q8a_row(xb + t * x_row_bytes, n_in);
      float acc[kPackRows] = {};
      for (int64_t s = 0; s < nsb; ++s) {
        const uint8_t* sb = w + g * gb + s * sbb;
        for (int j = 0; j < 8; ++j) {
          const int64_t ab = s * 8 + j;
          const int8_t* q = xa.qs + 32 * ab;
          for (int64_t r = 0; r < kPackRows; ++r) {
            if (T == DType::Q4_K) {
              int dot = 0;
              for (int k = 0; k < 4; ++k)
                for (int m = 0; m < 4; ++m) {
                  const uint8_t byte = sb[256 * j + 64 * k + 4 * r + m];
                  dot += (byte & 0xF) * q[4 * k + m] + (byte >> 4) * q[16 + 4 * k + m];
                }
              const float ws = static_cast<float>(sb[2048 + 16 * j + r]) * f16at(sb + 2304 + 2 * r);
              const float wm = static_cast<float>(sb[2176 + 16 * j + r]) * f16at(sb + 2336 + 2 * r);
              acc[r] += static_cast<float>(dot) * (ws * xa.d[ab]);
              acc[r] -= wm * xa.s32[ab];
            } else {
              const uint8_t* sub = sb + kQ6kSubBlock * j;
              for (int h = 0; h < 2; ++h) {
                int dot = 0;
                for (int i = 0; i < 16; ++i) {
                  const int k = i / 4, m = i % 4;
                  const uint8_t nib = sub[64 * k + 4 * r + m], top = sub[256 + 64 * h + 4 * r + m];
                  const int u = (h ? nib >> 4 : nib & 0xF) | ((top >> (2 * k)) & 3) << 4;
                  dot += (u - 32) * q[16 * h + i];
                }
                const float ws =
                    static_cast<float>(static_cast<int8_t>(sb[kQ6kScales + 16 * (2 * j + h) + r])) * f16at(sb + kQ6kD + 2 * r);
                acc[r] += static_cast<float>(dot) * (ws * xa.d[ab]);
              }
            }
          }
        }
      }
      for (int64_t r = 0; r < kPackRows; ++r) y[t * ldy + g * kPackRows + r] = acc[r];
    }
  }
}

// The scalar twin for packed F16 / BF16: two partial sums per output (even and odd elements).
template <DType T>
void rows_packed_half(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                      int64_t n_tok, float* y, int64_t ldy) {
  const auto* xb = static_cast<const uint8_t*>(x);
  for (int64_t g = r0 / kPackRows; g < r1 / kPackRows; ++g) {
    const uint8_t* grp = w + g * n_in * kPackRows * 2;
    for (int64_t t = 0; t < n_tok; ++t) {
      const auto* xt = reinterpret_cast<const float*>(xb + t * x_row_bytes);
      for (int64_t r = 0; r < kPackRows; ++r) {
        float acc[2] = {0, 0};
        for (int64_t i = 0; i < n_in; ++i) {
          uint16_t h;
          std::memcpy(&h, grp + 32 * i + 2 * r, 2);
          const float v = T == DType::F16 ? fp16_to_f32(h) : bf16_to_f32(h);
          acc[i % 2] += v * xt[i];
        }
        y[t * ldy + g * kPackRows + r] = acc[0] + acc[1];
      }
    }
  }
}

// The scalar twin of attention over f32 rows: the reference dot, softmax and accumulation.
void attend_one(const AttnGroup& a) {
  std::vector<float> row(static_cast<size_t>(a.hd));
  const auto as_f32 = [&](const void* p) {  // an f32 row in place, an f16 row converted
    if (a.type == DType::F32) return static_cast<const float*>(p);
    dequantize_row(a.type, static_cast<const uint8_t*>(p), row.data(), a.hd);
    return static_cast<const float*>(row.data());
  };
  for (int64_t g = 0; g < a.group; ++g) {
    float* sc = a.scores + g * a.n_keys;
    for (int64_t j = 0; j < a.n_keys; ++j) sc[j] = ref::dot(a.q + g * a.hd, as_f32(a.k[j]), a.hd) * a.scale;
    ref::softmax(sc, a.n_keys);
    float* o = a.out + g * a.hd;
    std::fill_n(o, a.hd, 0.0f);
    for (int64_t j = 0; j < a.n_keys; ++j) {
      const float* v = as_f32(a.v[j]);
      for (int64_t d = 0; d < a.hd; ++d) o[d] += sc[j] * v[d];
    }
  }
}

void attend_group(const AttnGroup& a) {
  for (int64_t i = 0; i < a.tokens; ++i) attend_one(attn_token(a, i));
}

void fill_scalar_kernels(Kernels& k) {
  k.isa = Isa::kScalar;
  for (ActForm& a : k.act) a = ActForm::kF32;
  k.rows[dtype_index(DType::F32)] = rows_float<DType::F32>;
  k.rows[dtype_index(DType::F16)] = rows_float<DType::F16>;
  k.rows[dtype_index(DType::BF16)] = rows_float<DType::BF16>;
  auto q = [&](DType t, RowsFn fn) {
    k.rows[dtype_index(t)] = fn;
    k.act[dtype_index(t)] = ActForm::kQ8A;
  };
  q(DType::Q8_0, rows_q8a<DType::Q8_0>);
  q(DType::Q4_0, rows_q8a<DType::Q4_0>);
  q(DType::Q4_1, rows_q8a<DType::Q4_1>);
  q(DType::Q5_0, rows_q8a<DType::Q5_0>);
  q(DType::Q5_1, rows_q8a<DType::Q5_1>);
  q(DType::Q4_K, rows_q8a<DType::Q4_K>);
  q(DType::Q5_K, rows_q8a<DType::Q5_K>);
  q(DType::Q6_K, rows_q8a<DType::Q6_K>);
  q(DType::Q2_K, rows_q8a<DType::Q2_K>);
  q(DType::Q3_K, rows_q8a<DType::Q3_K>);
  k.packed_rows[dtype_index(DType::Q4_0)] = rows_packed<DType::Q4_0>;
  k.packed_rows[dtype_index(DType::Q8_0)] = rows_packed<DType::Q8_0>;
  k.packed_rows[dtype_index(DType::Q4_K)] = rows_packed_k<DType::Q4_K>;
  k.packed_rows[dtype_index(DType::Q6_K)] = rows_packed_k<DType::Q6_K>;
  k.packed_rows[dtype_index(DType::F16)] = rows_packed_half<DType::F16>;
  k.packed_rows[dtype_index(DType::BF16)] = rows_packed_half<DType::BF16>;
  k.quantize_q8a = quantize_q8a;
  k.dot_f32 = dot_f32;
  k.swiglu_f32 = ref::swiglu;
  k.attend_group = attend_group;
  k.axpy_f32 = axpy_f32;
}

}  // namespace infera::cpu
