// Scalar reference dequantization, bit-exact with llama.cpp's dequantize_row_*.
// The formulas and their operation order follow docs/formats.md ("GGUF block layouts"). This file is
// compiled with -ffp-contract=off so that every product and sum is rounded separately, as there.
//
// Blocks inside a file are packed, so a block may sit at any byte offset. Each block is memcpy'd into
// a local struct before its fields are read.
#include <cstring>

#include "base/check.h"
#include "base/half.h"
#include "tensor/blocks.h"
#include "tensor/quant.h"

namespace infera {

namespace {

template <typename Block>
Block load_block(const uint8_t* src, int64_t i) {
  Block b;
  std::memcpy(&b, src + i * static_cast<int64_t>(sizeof(Block)), sizeof(Block));
  return b;
}

void dequant_f32(const uint8_t* src, float* y, int64_t n) {
  if (n > 0) std::memcpy(y, src, static_cast<size_t>(n) * sizeof(float));
}

void dequant_f16(const uint8_t* src, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    y[i] = fp16_to_f32(h);
  }
}

void dequant_bf16(const uint8_t* src, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    y[i] = bf16_to_f32(h);
  }
}

void dequant_q8_0(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const auto b = load_block<BlockQ8_0>(src, i);
    const float d = fp16_to_f32(b.d);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
  }
}

void dequant_q4_0(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const auto b = load_block<BlockQ4_0>(src, i);
    const float d = fp16_to_f32(b.d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>((b.qs[j] & 0x0F) - 8) * d;
      y[j + kQK / 2] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
    }
  }
}

void dequant_q4_1(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const auto b = load_block<BlockQ4_1>(src, i);
    const float d = fp16_to_f32(b.d);
    const float m = fp16_to_f32(b.m);
    for (int j = 0; j < kQK / 2; ++j) {
      y[j] = static_cast<float>(b.qs[j] & 0x0F) * d + m;
      y[j + kQK / 2] = static_cast<float>(b.qs[j] >> 4) * d + m;
    }
  }
}

// The 5-bit values of a Q5_0 / Q5_1 block, 0..31.
void q5_values(const uint8_t qh[4], const uint8_t qs[kQK / 2], int out[kQK]) {
  uint32_t h;
  std::memcpy(&h, qh, 4);
  for (int j = 0; j < kQK / 2; ++j) {
    out[j] = (qs[j] & 0x0F) | static_cast<int>(((h >> j) & 1u) << 4);
    out[j + kQK / 2] = (qs[j] >> 4) | static_cast<int>(((h >> (j + 16)) & 1u) << 4);
  }
}

void dequant_q5_0(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const auto b = load_block<BlockQ5_0>(src, i);
    const float d = fp16_to_f32(b.d);
    int q[kQK];
    q5_values(b.qh, b.qs, q);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(q[j] - 16) * d;
  }
}

void dequant_q5_1(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQK) {
    const auto b = load_block<BlockQ5_1>(src, i);
    const float d = fp16_to_f32(b.d);
    const float m = fp16_to_f32(b.m);
    int q[kQK];
    q5_values(b.qh, b.qs, q);
    for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(q[j]) * d + m;
  }
}

void dequant_q2_k(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQKK) {
    const auto b = load_block<BlockQ2_K>(src, i);
    const float d = fp16_to_f32(b.d);
    const float dmin = fp16_to_f32(b.dmin);
    for (int e = 0; e < kQKK; ++e) {
      const int n = e / 128, j = (e % 128) / 32, l = e % 32, s = e / 16;
      const float dl = d * static_cast<float>(b.scales[s] & 0xF);
      const float ml = dmin * static_cast<float>(b.scales[s] >> 4);
      const int q = (b.qs[32 * n + l] >> (2 * j)) & 3;
      y[e] = dl * static_cast<float>(q) - ml;
    }
  }
}

// Signed 6-bit scale of sub-block i (0..15) of a Q3_K block, -32..31.
int q3_k_scale(const uint8_t scales[12], int i) {
  const int lo = (i < 8) ? (scales[i] & 0xF) : (scales[i - 8] >> 4);
  const int hi = (scales[8 + i % 4] >> (2 * (i / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}

void dequant_q3_k(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQKK) {
    const auto b = load_block<BlockQ3_K>(src, i);
    const float d = fp16_to_f32(b.d);
    for (int e = 0; e < kQKK; ++e) {
      const int n = e / 128, j = (e % 128) / 32, l = e % 32;
      const int low = (b.qs[32 * n + l] >> (2 * j)) & 3;
      const bool high = (b.hmask[l] >> (4 * n + j)) & 1;
      const int q = low - (high ? 0 : 4);
      const float dl = d * static_cast<float>(q3_k_scale(b.scales, e / 16));
      y[e] = dl * static_cast<float>(q);
    }
  }
}

// 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block.
void k_scale_min(const uint8_t scales[12], int j, int* sc, int* mn) {
  if (j < 4) {
    *sc = scales[j] & 63;
    *mn = scales[j + 4] & 63;
  } else {
    *sc = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
    *mn = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
  }
}

void dequant_q4_k(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQKK) {
    const auto b = load_block<BlockQ4_K>(src, i);
    const float d = fp16_to_f32(b.d);
    const float dmin = fp16_to_f32(b.dmin);
    for (int e = 0; e < kQKK; ++e) {
      const int c = e / 64, half = (e % 64) / 32, l = e % 32;
      int sc, mn;
      k_scale_min(b.scales, 2 * c + half, &sc, &mn);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(mn);
      const int q = half ? (b.qs[32 * c + l] >> 4) : (b.qs[32 * c + l] & 0xF);
      y[e] = d1 * static_cast<float>(q) - m1;
    }
  }
}

void dequant_q5_k(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQKK) {
    const auto b = load_block<BlockQ5_K>(src, i);
    const float d = fp16_to_f32(b.d);
    const float dmin = fp16_to_f32(b.dmin);
    for (int e = 0; e < kQKK; ++e) {
      const int c = e / 64, half = (e % 64) / 32, l = e % 32;
      int sc, mn;
      k_scale_min(b.scales, 2 * c + half, &sc, &mn);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(mn);
      const int low = half ? (b.qs[32 * c + l] >> 4) : (b.qs[32 * c + l] & 0xF);
      const int high = (b.qh[l] >> (2 * c + half)) & 1;
      y[e] = d1 * static_cast<float>(low + 16 * high) - m1;
    }
  }
}

void dequant_q6_k(const uint8_t* src, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i, y += kQKK) {
    const auto b = load_block<BlockQ6_K>(src, i);
    const float d = fp16_to_f32(b.d);
    for (int e = 0; e < kQKK; ++e) {
      const int n = e / 128, g = (e % 128) / 32, l = e % 32;
      const uint8_t lbyte = b.ql[64 * n + l + 32 * (g & 1)];
      const int low = (g < 2) ? (lbyte & 0xF) : (lbyte >> 4);
      const int high = (b.qh[32 * n + l] >> (2 * g)) & 3;
      const int q = (low | (high << 4)) - 32;
      y[e] = d * static_cast<float>(b.scales[e / 16]) * static_cast<float>(q);
    }
  }
}

}  // namespace

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  const int64_t nb = n / dtype_info(t).block_elems;
  CHECK(nb * dtype_info(t).block_elems == n);
  switch (t) {
    case DType::F32: return dequant_f32(s, dst, n);
    case DType::F16: return dequant_f16(s, dst, n);
    case DType::BF16: return dequant_bf16(s, dst, n);
    case DType::Q8_0: return dequant_q8_0(s, dst, nb);
    case DType::Q4_0: return dequant_q4_0(s, dst, nb);
    case DType::Q4_1: return dequant_q4_1(s, dst, nb);
    case DType::Q5_0: return dequant_q5_0(s, dst, nb);
    case DType::Q5_1: return dequant_q5_1(s, dst, nb);
    case DType::Q2_K: return dequant_q2_k(s, dst, nb);
    case DType::Q3_K: return dequant_q3_k(s, dst, nb);
    case DType::Q4_K: return dequant_q4_k(s, dst, nb);
    case DType::Q5_K: return dequant_q5_k(s, dst, nb);
    case DType::Q6_K: return dequant_q6_k(s, dst, nb);
    default: CHECK(false && "dequantize_row: unsupported type");
  }
}

}  // namespace infera
