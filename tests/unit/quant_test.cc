// Tests of dequantize_row (against hand-built blocks and the formulas of docs/formats.md),
// the f16/bf16 conversions, and quantize_row (round-trip error on seeded Gaussian data).
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/half.h"
#include "tensor/blocks.h"
#include "tensor/quant.h"

namespace infera {
namespace {

// f16 bit patterns of exactly representable values used below.
constexpr uint16_t kHalf = 0x3800;     // 0.5
constexpr uint16_t kQuarter = 0x3400;  // 0.25
constexpr uint16_t kOne = 0x3C00;      // 1.0
constexpr uint16_t kMinusOne = 0xBC00;
constexpr uint16_t kTenth = 0x2E66;    // 0.0999755859375, the f16 nearest 0.1
constexpr uint16_t kThird = 0x3555;    // 0.333251953125

// One rounding per operation, whatever the compiler flags of this file (no FMA contraction).
[[gnu::noinline]] float mul(float a, float b) { return a * b; }
[[gnu::noinline]] float sub(float a, float b) { return a - b; }
[[gnu::noinline]] float add(float a, float b) { return a + b; }

// Dequantizes one block, stored one byte past an aligned address to exercise unaligned reads.
template <typename Block>
std::vector<float> dequant_block(DType t, const Block& b) {
  const int64_t n = dtype_info(t).block_elems;
  std::vector<uint8_t> bytes(sizeof(Block) + 1);
  std::memcpy(bytes.data() + 1, &b, sizeof(Block));
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row(t, bytes.data() + 1, y.data(), n);
  return y;
}

// ---- Dequantization of hand-built blocks -----------------------------------------------------

TEST(Dequant, F32F16BF16) {
  const float f[3] = {1.5f, -0.0f, 3.25e-3f};
  std::vector<float> y(3);
  dequantize_row(DType::F32, f, y.data(), 3);
  EXPECT_EQ(std::memcmp(f, y.data(), sizeof f), 0);

  const uint16_t h[4] = {kOne, 0xC000, 0x0001, 0x7BFF};  // 1, -2, 2^-24, 65504
  y.resize(4);
  dequantize_row(DType::F16, h, y.data(), 4);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -2.0f);
  EXPECT_EQ(y[2], 0x1p-24f);
  EXPECT_EQ(y[3], 65504.0f);

  const uint16_t b[3] = {0x3F80, 0xC0A0, 0x3E20};  // 1, -5, 0.15625
  dequantize_row(DType::BF16, b, y.data(), 3);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -5.0f);
  EXPECT_EQ(y[2], 0.15625f);
}

TEST(Dequant, Q8_0) {
  BlockQ8_0 b{};
  b.d = kHalf;
  for (int j = 0; j < kQK; ++j) b.qs[j] = static_cast<int8_t>(4 * j - 64);
  b.qs[31] = 127;
  b.qs[30] = -128;
  const auto y = dequant_block(DType::Q8_0, b);
  EXPECT_EQ(y[0], -32.0f);  // -64 * 0.5
  EXPECT_EQ(y[1], -30.0f);  // -60 * 0.5
  EXPECT_EQ(y[16], 0.0f);
  EXPECT_EQ(y[17], 2.0f);
  EXPECT_EQ(y[30], -64.0f);
  EXPECT_EQ(y[31], 63.5f);

  b.d = kTenth;
  const auto z = dequant_block(DType::Q8_0, b);
  for (int j = 0; j < kQK; ++j) EXPECT_EQ(z[j], mul(static_cast<float>(b.qs[j]), 0.0999755859375f));
}

TEST(Dequant, Q4_0) {
  BlockQ4_0 b{};
  b.d = kHalf;
  for (int j = 0; j < 16; ++j) b.qs[j] = 0x88;  // q = 8 → 0
  b.qs[0] = 0x3A;   // low 10 → element 0, high 3 → element 16
  b.qs[15] = 0xF0;  // low 0 → element 15, high 15 → element 31
  const auto y = dequant_block(DType::Q4_0, b);
  EXPECT_EQ(y[0], 1.0f);    // (10 - 8) * 0.5
  EXPECT_EQ(y[16], -2.5f);  // (3 - 8) * 0.5
  EXPECT_EQ(y[15], -4.0f);  // (0 - 8) * 0.5
  EXPECT_EQ(y[31], 3.5f);   // (15 - 8) * 0.5
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_EQ(y[17], 0.0f);
}

TEST(Dequant, Q4_1) {
  BlockQ4_1 b{};
  b.d = kHalf;
  b.m = kMinusOne;
  b.qs[0] = 0x3A;
  b.qs[15] = 0xF0;
  const auto y = dequant_block(DType::Q4_1, b);
  EXPECT_EQ(y[0], 4.0f);    // 10 * 0.5 - 1
  EXPECT_EQ(y[16], 0.5f);   // 3 * 0.5 - 1
  EXPECT_EQ(y[15], -1.0f);  // 0 * 0.5 - 1
  EXPECT_EQ(y[31], 6.5f);   // 15 * 0.5 - 1
  EXPECT_EQ(y[1], -1.0f);

  b.d = kTenth;
  b.m = kThird;
  const auto z = dequant_block(DType::Q4_1, b);
  EXPECT_EQ(z[0], add(mul(10.0f, 0.0999755859375f), 0.333251953125f));
  EXPECT_EQ(z[31], add(mul(15.0f, 0.0999755859375f), 0.333251953125f));
}

// qh = bytes {0x01, 0x00, 0x01, 0x80}: as a little-endian u32, bits 0, 16 and 31 are set.
constexpr uint8_t kQ5High[4] = {0x01, 0x00, 0x01, 0x80};

TEST(Dequant, Q5_0) {
  BlockQ5_0 b{};
  b.d = kQuarter;
  std::memcpy(b.qh, kQ5High, 4);
  b.qs[0] = 0x21;
  b.qs[15] = 0x0F;
  const auto y = dequant_block(DType::Q5_0, b);
  EXPECT_EQ(y[0], 0.25f);    // (1 | 16) - 16 = 1
  EXPECT_EQ(y[16], 0.5f);    // (2 | 16) - 16 = 2
  EXPECT_EQ(y[15], -0.25f);  // 15 - 16
  EXPECT_EQ(y[31], 0.0f);    // (0 | 16) - 16
  EXPECT_EQ(y[1], -4.0f);    // 0 - 16
  EXPECT_EQ(y[17], -4.0f);
}

TEST(Dequant, Q5_1) {
  BlockQ5_1 b{};
  b.d = kHalf;
  b.m = kOne;
  std::memcpy(b.qh, kQ5High, 4);
  b.qs[0] = 0x21;
  b.qs[15] = 0x0F;
  const auto y = dequant_block(DType::Q5_1, b);
  EXPECT_EQ(y[0], 9.5f);   // 17 * 0.5 + 1
  EXPECT_EQ(y[16], 10.0f);  // 18 * 0.5 + 1
  EXPECT_EQ(y[15], 8.5f);  // 15 * 0.5 + 1
  EXPECT_EQ(y[31], 9.0f);  // 16 * 0.5 + 1
  EXPECT_EQ(y[1], 1.0f);
}

TEST(Dequant, Q2_K) {
  BlockQ2_K b{};
  b.d = kHalf;
  b.dmin = kQuarter;
  b.scales[0] = 0x32;   // scale 2, min 3
  b.scales[2] = 0x11;   // scale 1, min 1
  b.scales[4] = 0x04;   // scale 4, min 0
  b.scales[6] = 0x21;   // scale 1, min 2
  b.scales[9] = 0x1F;   // scale 15, min 1
  b.scales[15] = 0xF1;  // scale 1, min 15
  b.qs[0] = 0xE4;       // 2-bit fields 0,1,2,3 → elements 0, 32, 64, 96
  b.qs[54] = 0x03;      // element 150: n=1, j=0, l=22
  b.qs[63] = 0xC0;      // element 255: n=1, j=3, l=31
  const auto y = dequant_block(DType::Q2_K, b);
  EXPECT_EQ(y[0], -0.75f);   // (0.5*2)*0 - 0.25*3
  EXPECT_EQ(y[32], 0.25f);   // (0.5*1)*1 - 0.25*1
  EXPECT_EQ(y[64], 4.0f);    // (0.5*4)*2 - 0
  EXPECT_EQ(y[96], 1.0f);    // (0.5*1)*3 - 0.25*2
  EXPECT_EQ(y[150], 22.25f);  // (0.5*15)*3 - 0.25*1
  EXPECT_EQ(y[255], -2.25f);  // (0.5*1)*3 - 0.25*15
  EXPECT_EQ(y[1], -0.75f);   // same sub-block as element 0, q = 0
  EXPECT_EQ(y[16], 0.0f);    // sub-block 1: scale 0, min 0

  b.d = kTenth;
  b.dmin = kThird;
  const auto z = dequant_block(DType::Q2_K, b);
  EXPECT_EQ(z[150], sub(mul(mul(0.0999755859375f, 15.0f), 3.0f), mul(0.333251953125f, 1.0f)));
  EXPECT_EQ(z[96], sub(mul(mul(0.0999755859375f, 1.0f), 3.0f), mul(0.333251953125f, 2.0f)));
}

TEST(Dequant, Q3_K) {
  BlockQ3_K b{};  // scales all zero: every sub-block scale is 0 - 32 = -32
  b.d = kHalf;
  b.scales[0] = 0x5A;   // low nibble of sub-block 0 = 0xA, of sub-block 8 = 5
  b.scales[8] = 0x93;   // high bits: sub-block 0 → 3, 4 → 0, 8 → 1, 12 → 2
  b.scales[7] = 0xF0;   // low nibble of sub-block 15 = 15
  b.scales[11] = 0xC0;  // high bits of sub-block 15 = 3
  // Scales: sb0 = (0xA | 3<<4) - 32 = 26, sb4 = -32, sb8 = (5 | 1<<4) - 32 = -11,
  // sb12 = (0 | 2<<4) - 32 = 0, sb15 = 63 - 32 = 31.
  b.qs[0] = 0x02;      // element 0: low 2; element 64 (j=2): low 0
  b.hmask[0] = 0x11;   // bit 0: element 0 high set; bit 4: element 128 high set
  b.qs[1] = 0x01;      // element 1: low 1, high clear
  b.qs[32] = 0x03;     // element 128: n=1, j=0, l=0
  b.qs[63] = 0x40;     // element 255: n=1, j=3, l=31 → low 1
  b.hmask[31] = 0x80;  // element 255 high set (bit 4*1+3)
  const auto y = dequant_block(DType::Q3_K, b);
  EXPECT_EQ(y[0], 26.0f);     // (0.5*26) * 2
  EXPECT_EQ(y[1], -39.0f);    // (0.5*26) * (1 - 4)
  EXPECT_EQ(y[64], 64.0f);    // (0.5*-32) * (0 - 4)
  EXPECT_EQ(y[128], -16.5f);  // (0.5*-11) * 3
  EXPECT_EQ(y[192], 0.0f);    // scale 0
  EXPECT_EQ(y[255], 15.5f);   // (0.5*31) * 1

  b.d = kTenth;
  const auto z = dequant_block(DType::Q3_K, b);
  EXPECT_EQ(z[1], mul(mul(0.0999755859375f, 26.0f), -3.0f));
  EXPECT_EQ(z[128], mul(mul(0.0999755859375f, -11.0f), 3.0f));
}

// Scales for Q4_K/Q5_K tests: sc0 = 5, mn0 = 3, sc3 = 63, mn3 = 0, sc4 = 50, mn4 = 23, sc7 = 15,
// mn7 = 33, all others 0.
void set_k_scales(uint8_t s[12]) {
  s[0] = 0xC5;   // sc0 = 5; top bits 3 → high bits of sc4
  s[4] = 0x43;   // mn0 = 3; top bits 1 → high bits of mn4
  s[8] = 0x72;   // sc4 = 2 | 3<<4 = 50, mn4 = 7 | 1<<4 = 23
  s[3] = 0x3F;   // sc3 = 63
  s[7] = 0x80;   // mn3 = 0; top bits 2 → high bits of mn7
  s[11] = 0x1F;  // sc7 = 15 | 0<<4, mn7 = 1 | 2<<4 = 33
}

TEST(Dequant, Q4_K) {
  BlockQ4_K b{};
  b.d = kHalf;
  b.dmin = kQuarter;
  set_k_scales(b.scales);
  b.qs[0] = 0x9C;    // element 0 (sub 0): 12; element 32 (sub 1): 9
  b.qs[33] = 0xF0;   // element 97 (sub 3): 15
  b.qs[64] = 0x07;   // element 128 (sub 4): 7
  b.qs[127] = 0xA0;  // element 255 (sub 7): 10
  const auto y = dequant_block(DType::Q4_K, b);
  EXPECT_EQ(y[0], 29.25f);    // (0.5*5)*12 - 0.25*3
  EXPECT_EQ(y[32], 0.0f);     // sub 1: scale 0, min 0
  EXPECT_EQ(y[97], 472.5f);   // (0.5*63)*15 - 0
  EXPECT_EQ(y[128], 169.25f);  // (0.5*50)*7 - 0.25*23
  EXPECT_EQ(y[255], 66.75f);  // (0.5*15)*10 - 0.25*33
  EXPECT_EQ(y[1], -0.75f);    // sub 0, q = 0

  b.d = kTenth;
  b.dmin = kThird;
  const auto z = dequant_block(DType::Q4_K, b);
  EXPECT_EQ(z[128], sub(mul(mul(0.0999755859375f, 50.0f), 7.0f), mul(0.333251953125f, 23.0f)));
}

TEST(Dequant, Q5_K) {
  BlockQ5_K b{};
  b.d = kHalf;
  b.dmin = kQuarter;
  set_k_scales(b.scales);
  b.qs[0] = 0x9C;
  b.qs[33] = 0xF0;
  b.qs[64] = 0x07;
  b.qs[127] = 0xA0;
  b.qh[0] = 0x01;   // element 0 (chunk 0, low half) +16; element 128 (bit 4) not set
  b.qh[1] = 0x08;   // element 97 (chunk 1, high half → bit 3) +16
  b.qh[31] = 0x80;  // element 255 (chunk 3, high half → bit 7) +16
  const auto y = dequant_block(DType::Q5_K, b);
  EXPECT_EQ(y[0], 69.25f);     // (0.5*5)*28 - 0.25*3
  EXPECT_EQ(y[97], 976.5f);    // (0.5*63)*31
  EXPECT_EQ(y[128], 169.25f);  // (0.5*50)*7 - 0.25*23
  EXPECT_EQ(y[255], 186.75f);  // (0.5*15)*26 - 0.25*33
  EXPECT_EQ(y[64], 0.0f);      // sub 2 all zero; qh[0] bit 2 clear

  b.qh[0] = 0x10;  // now element 128 gets +16 and element 0 loses it
  const auto z = dequant_block(DType::Q5_K, b);
  EXPECT_EQ(z[0], 29.25f);
  EXPECT_EQ(z[128], 569.25f);  // (0.5*50)*23 - 0.25*23
}

TEST(Dequant, Q6_K) {
  BlockQ6_K b{};
  b.d = kHalf;
  b.scales[0] = 3;
  b.scales[1] = -2;
  b.scales[2] = 1;
  b.scales[4] = 5;
  b.scales[6] = -1;
  b.scales[8] = -128;
  b.scales[15] = 127;
  b.ql[0] = 0x5A;    // element 0: low 0xA; element 64: low 5
  b.qh[0] = 0x93;    // 2-bit groups 3,0,1,2 → elements 0, 32, 64, 96
  b.ql[32] = 0x30;   // element 32: low 0; element 96: low 3
  b.ql[17] = 0x0F;   // element 17: low 15, high 0
  b.ql[64] = 0x01;   // element 128: low 1
  b.qh[32] = 0x02;   // element 128: high 2
  b.ql[127] = 0xF0;  // element 255: low 15
  b.qh[63] = 0xC0;   // element 255: high 3
  const auto y = dequant_block(DType::Q6_K, b);
  EXPECT_EQ(y[0], 39.0f);      // 0.5*3 * ((10 | 3<<4) - 32 = 26)
  EXPECT_EQ(y[32], -16.0f);    // 0.5*1 * (0 - 32)
  EXPECT_EQ(y[64], -27.5f);    // 0.5*5 * ((5 | 1<<4) - 32 = -11)
  EXPECT_EQ(y[96], -1.5f);     // 0.5*-1 * ((3 | 2<<4) - 32 = 3)
  EXPECT_EQ(y[17], 17.0f);     // 0.5*-2 * (15 - 32)
  EXPECT_EQ(y[128], -64.0f);   // 0.5*-128 * ((1 | 2<<4) - 32 = 1)
  EXPECT_EQ(y[255], 1968.5f);  // 0.5*127 * 31

  b.d = kTenth;
  const auto z = dequant_block(DType::Q6_K, b);
  EXPECT_EQ(z[255], mul(mul(0.0999755859375f, 127.0f), 31.0f));
  EXPECT_EQ(z[64], mul(mul(0.0999755859375f, 5.0f), -11.0f));
}

TEST(Dequant, MultipleBlocksInOrder) {
  BlockQ8_0 b[3]{};
  for (int i = 0; i < 3; ++i) {
    b[i].d = kOne;
    b[i].qs[0] = static_cast<int8_t>(i + 1);
  }
  std::vector<float> y(3 * kQK);
  dequantize_row(DType::Q8_0, b, y.data(), 3 * kQK);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[kQK], 2.0f);
  EXPECT_EQ(y[2 * kQK], 3.0f);
}

// ---- f16 / bf16 conversions --------------------------------------------------------------------

TEST(Half, SpecialValues) {
  EXPECT_EQ(fp16_to_f32(0x0000), 0.0f);
  EXPECT_TRUE(std::signbit(fp16_to_f32(0x8000)));
  EXPECT_EQ(fp16_to_f32(0x0001), 0x1p-24f);           // smallest subnormal
  EXPECT_EQ(fp16_to_f32(0x03FF), 1023.0f * 0x1p-24f);  // largest subnormal
  EXPECT_EQ(fp16_to_f32(0x8001), -0x1p-24f);
  EXPECT_EQ(fp16_to_f32(0x0400), 0x1p-14f);  // smallest normal
  EXPECT_EQ(fp16_to_f32(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_to_f32(0x7C00), INFINITY);
  EXPECT_EQ(fp16_to_f32(0xFC00), -INFINITY);
  EXPECT_TRUE(std::isnan(fp16_to_f32(0x7E00)));
  EXPECT_TRUE(std::isnan(fp16_to_f32(0x7C01)));

  EXPECT_EQ(f32_to_fp16(0x1p-24f), 0x0001);
  EXPECT_EQ(f32_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(f32_to_fp16(1e-8f), 0x0000);  // below half the smallest subnormal
  EXPECT_EQ(f32_to_fp16(INFINITY), 0x7C00);
  EXPECT_EQ(f32_to_fp16(-INFINITY), 0xFC00);
  EXPECT_EQ(f32_to_fp16(1e10f), 0x7C00);
  EXPECT_EQ(f32_to_fp16(65504.0f), 0x7BFF);
  const uint16_t nan = f32_to_fp16(NAN);
  EXPECT_EQ(nan & 0x7C00, 0x7C00);
  EXPECT_NE(nan & 0x03FF, 0);
}

TEST(Half, RoundsToNearestEven) {
  // Normal range: the f16 spacing at 1 is 2^-10.
  EXPECT_EQ(f32_to_fp16(1.0f + 0x1p-11f), 0x3C00);          // tie → even (1.0)
  EXPECT_EQ(f32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3C02);      // tie → even (1 + 2^-9)
  EXPECT_EQ(f32_to_fp16(1.0f + 0x1p-11f + 0x1p-20f), 0x3C01);  // above the tie
  EXPECT_EQ(f32_to_fp16(-(1.0f + 3 * 0x1p-11f)), 0xBC02);
  // Subnormal range: spacing 2^-24.
  EXPECT_EQ(f32_to_fp16(0x1p-25f), 0x0000);                // tie → 0
  EXPECT_EQ(f32_to_fp16(3 * 0x1p-25f), 0x0002);            // tie → 2
  EXPECT_EQ(f32_to_fp16(0x1p-25f * 1.0001f), 0x0001);
  EXPECT_EQ(f32_to_fp16(1023.5f * 0x1p-24f), 0x0400);      // tie → smallest normal
  // Overflow: 65520 is the tie between 65504 and 65536 (= inf).
  EXPECT_EQ(f32_to_fp16(65520.0f), 0x7C00);
  EXPECT_EQ(f32_to_fp16(65519.99f), 0x7BFF);
}

TEST(Half, ExhaustiveRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_f32(static_cast<uint16_t>(h));
    const uint16_t back = f32_to_fp16(f);
    if ((h & 0x7C00) == 0x7C00 && (h & 0x03FF) != 0) {
      ASSERT_TRUE(std::isnan(f)) << h;
      ASSERT_EQ(back & 0x7C00, 0x7C00) << h;
      ASSERT_NE(back & 0x03FF, 0) << h;
      ASSERT_EQ(back & 0x8000, h & 0x8000) << h;
    } else {
      ASSERT_EQ(back, h) << h;
    }
  }
}

TEST(BFloat16, RoundsToNearestEven) {
  auto from_bits = [](uint32_t u) { return std::bit_cast<float>(u); };
  EXPECT_EQ(bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F808000)), 0x3F80);  // tie → even
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F818000)), 0x3F82);  // tie → even
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F808001)), 0x3F81);  // above the tie
  EXPECT_EQ(f32_to_bf16(from_bits(0x3F807FFF)), 0x3F80);  // below the tie
  EXPECT_EQ(f32_to_bf16(from_bits(0xBF818000)), 0xBF82);
  EXPECT_EQ(f32_to_bf16(from_bits(0x00018000)), 0x0002);  // subnormal tie
  EXPECT_EQ(f32_to_bf16(from_bits(0x7F7FFFFF)), 0x7F80);  // FLT_MAX rounds to inf
  EXPECT_EQ(f32_to_bf16(INFINITY), 0x7F80);
  EXPECT_EQ(f32_to_bf16(-INFINITY), 0xFF80);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(from_bits(0x7F800001)))));  // low-bit NaN
}

TEST(BFloat16, ExhaustiveRoundTrip) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    const uint16_t back = f32_to_bf16(f);
    if (std::isnan(f))
      ASSERT_TRUE(std::isnan(bf16_to_f32(back))) << h;
    else
      ASSERT_EQ(back, h) << h;
  }
}

// ---- quantize_row round trips ------------------------------------------------------------------

struct RoundTripCase {
  DType type;
  double max_rms;  // bound on the RMS error for N(0, 1) data
  double max_abs;  // bound on the largest single error
};

std::string case_name(const testing::TestParamInfo<RoundTripCase>& info) {
  return std::string(dtype_name(info.param.type));
}

std::vector<float> round_trip(DType t, const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> buf(static_cast<size_t>(row_bytes(t, n)));
  quantize_row(t, x.data(), buf.data(), n);
  std::vector<float> y(x.size());
  dequantize_row(t, buf.data(), y.data(), n);
  return y;
}

std::vector<float> gaussian(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = dist(rng);
  return x;
}

class RoundTrip : public testing::TestWithParam<RoundTripCase> {};

TEST_P(RoundTrip, GaussianErrorIsSmall) {
  const RoundTripCase& c = GetParam();
  const std::vector<float> x = gaussian(4096, 1234);
  const std::vector<float> y = round_trip(c.type, x);
  double sum_sq = 0, max_err = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double e = static_cast<double>(y[i]) - x[i];
    sum_sq += e * e;
    max_err = std::max(max_err, std::fabs(e));
  }
  const double rms = std::sqrt(sum_sq / static_cast<double>(x.size()));
  RecordProperty("rms", std::to_string(rms));
  EXPECT_LT(rms, c.max_rms);
  EXPECT_LT(max_err, c.max_abs);
  std::printf("  %-5s rms %.5f max %.5f\n", std::string(dtype_name(c.type)).c_str(), rms, max_err);
}

TEST_P(RoundTrip, ZerosStayZero) {
  const std::vector<float> x(512, 0.0f);
  for (float v : round_trip(GetParam().type, x)) ASSERT_EQ(v, 0.0f);
}

TEST_P(RoundTrip, ConstantRow) {
  for (float c : {0.7f, -1.3f, 3.0f}) {
    const std::vector<float> x(512, c);
    for (float v : round_trip(GetParam().type, x)) ASSERT_NEAR(v, c, 4e-3 * std::fabs(c)) << c;
  }
}

TEST_P(RoundTrip, Deterministic) {
  const DType t = GetParam().type;
  const std::vector<float> x = gaussian(1024, 99);
  std::vector<uint8_t> a(static_cast<size_t>(row_bytes(t, 1024))), b(a.size());
  quantize_row(t, x.data(), a.data(), 1024);
  quantize_row(t, x.data(), b.data(), 1024);
  EXPECT_EQ(a, b);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, RoundTrip,
                         testing::Values(RoundTripCase{DType::F32, 1e-9, 1e-9},
                                         RoundTripCase{DType::F16, 1e-3, 4e-3},
                                         RoundTripCase{DType::BF16, 5e-3, 2e-2},
                                         RoundTripCase{DType::Q8_0, 0.01, 0.03},
                                         RoundTripCase{DType::Q6_K, 0.03, 0.12},
                                         RoundTripCase{DType::Q5_0, 0.06, 0.2},
                                         RoundTripCase{DType::Q5_1, 0.06, 0.2},
                                         RoundTripCase{DType::Q5_K, 0.06, 0.25},
                                         RoundTripCase{DType::Q4_0, 0.12, 0.4},
                                         RoundTripCase{DType::Q4_1, 0.12, 0.4},
                                         RoundTripCase{DType::Q4_K, 0.12, 0.4},
                                         RoundTripCase{DType::Q3_K, 0.25, 0.9},
                                         RoundTripCase{DType::Q2_K, 0.45, 2.0}),
                         case_name);

// ---- Corrupting a scale changes the output -----------------------------------------------------

struct ScaleFlipCase {
  DType type;
  size_t offset;    // byte of block 0 to flip (XOR 0x01)
  int first, last;  // elements of block 0 that may change: [first, last)
};

class ScaleFlip : public testing::TestWithParam<ScaleFlipCase> {};

TEST_P(ScaleFlip, ChangesOnlyTheScaledElements) {
  const ScaleFlipCase& c = GetParam();
  const int64_t n = 2 * dtype_info(c.type).block_elems;
  const std::vector<float> x = gaussian(static_cast<int>(n), 7);
  std::vector<uint8_t> buf(static_cast<size_t>(row_bytes(c.type, n)));
  quantize_row(c.type, x.data(), buf.data(), n);
  std::vector<float> before(static_cast<size_t>(n)), after(static_cast<size_t>(n));
  dequantize_row(c.type, buf.data(), before.data(), n);
  buf[c.offset] ^= 0x01;
  dequantize_row(c.type, buf.data(), after.data(), n);
  int changed = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (before[i] == after[i]) continue;
    ++changed;
    EXPECT_TRUE(i >= c.first && i < c.last) << "element " << i << " changed";
  }
  EXPECT_GT(changed, 0);
}

INSTANTIATE_TEST_SUITE_P(
    AllQuantTypes, ScaleFlip,
    testing::Values(ScaleFlipCase{DType::Q8_0, offsetof(BlockQ8_0, d), 0, 32},
                    ScaleFlipCase{DType::Q4_0, offsetof(BlockQ4_0, d), 0, 32},
                    ScaleFlipCase{DType::Q4_1, offsetof(BlockQ4_1, d), 0, 32},
                    ScaleFlipCase{DType::Q5_0, offsetof(BlockQ5_0, d), 0, 32},
                    ScaleFlipCase{DType::Q5_1, offsetof(BlockQ5_1, d), 0, 32},
                    ScaleFlipCase{DType::Q2_K, offsetof(BlockQ2_K, scales), 0, 16},
                    ScaleFlipCase{DType::Q3_K, offsetof(BlockQ3_K, scales), 0, 16},
                    ScaleFlipCase{DType::Q4_K, offsetof(BlockQ4_K, scales), 0, 32},
                    ScaleFlipCase{DType::Q5_K, offsetof(BlockQ5_K, scales), 0, 32},
                    ScaleFlipCase{DType::Q6_K, offsetof(BlockQ6_K, scales), 0, 16},
                    ScaleFlipCase{DType::Q6_K, offsetof(BlockQ6_K, d), 0, 256}),
    [](const testing::TestParamInfo<ScaleFlipCase>& info) {
      return std::string(dtype_name(info.param.type)) + "_at_" + std::to_string(info.param.offset);
    });

}  // namespace
}  // namespace infera
