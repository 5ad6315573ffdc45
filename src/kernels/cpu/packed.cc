#include "kernels/cpu/packed.h"

#include <cstring>

#include "base/check.h"
#include "kernels/cpu/simd_common.h"
#include "tensor/blocks.h"

namespace infera::cpu {

namespace {
bool is_k(DType type) { return type == DType::Q4_K || type == DType::Q6_K; }
bool is_half(DType type) { return type == DType::F16 || type == DType::BF16; }
}  // namespace

bool packable(DType type, int64_t n_in, int64_t n_out) {
  if (is_half(type)) return n_in > 0 && n_out > 0 && n_out % kPackRows == 0;
  if (type != DType::Q4_0 && type != DType::Q8_0 && !is_k(type)) return false;
  return n_in > 0 && n_in % (is_k(type) ? 256 : 32) == 0 && n_out > 0 && n_out % kPackRows == 0;
}

int64_t packed_superblock_bytes(DType type) { return type == DType::Q4_K ? 2368 : kQ6kSuperBlock; }

int packed_offset(DType type) { return type == DType::Q4_0 ? 8 : 128; }
int64_t packed_code_bytes(DType type) { return type == DType::Q4_0 ? 256 : 512; }

int64_t packed_group_bytes(DType type, int64_t n_in) {
  if (is_k(type)) return n_in / 256 * packed_superblock_bytes(type);
  if (is_half(type)) return n_in * kPackRows * 2;
  return (n_in / 32 * (packed_code_bytes(type) + 32) + 63) / 64 * 64;
}

int64_t packed_bytes(DType type, int64_t n_in, int64_t n_out) {
  CHECK(packable(type, n_in, n_out));
  return n_out / kPackRows * packed_group_bytes(type, n_in);
}

namespace {

// The K types: per row group and super-block, the codes of each 32-element sub-block in chunk
// order, then the small scales and the f16 super-block scales, as packed.h describes.
void pack_k(DType type, const uint8_t* w, int64_t n_in, int64_t n_out, uint8_t* out) {
  const int64_t nsb = n_in / 256, groups = n_out / kPackRows, sbb = packed_superblock_bytes(type);
  const int64_t blk = type == DType::Q4_K ? int64_t{sizeof(BlockQ4_K)} : int64_t{sizeof(BlockQ6_K)};
  std::memset(out, 0, static_cast<size_t>(groups * nsb * sbb));
  for (int64_t g = 0; g < groups; ++g)
    for (int64_t s = 0; s < nsb; ++s) {
      uint8_t* o = out + (g * nsb + s) * sbb;
      for (int64_t r = 0; r < kPackRows; ++r) {
        const uint8_t* src = w + (g * kPackRows + r) * nsb * blk + s * blk;
        uint8_t u[256];  // the super-block's codes
        if (type == DType::Q4_K) {
          BlockQ4_K b;
          std::memcpy(&b, src, sizeof b);
          int sc[8], mn[8];
          k_scales_mins(b.scales, sc, mn);
          for (int j = 0; j < 8; ++j) {
            for (int i = 0; i < 32; ++i) {
              const uint8_t q = b.qs[32 * (j / 2) + i];
              u[32 * j + i] = static_cast<uint8_t>(j % 2 ? q >> 4 : q & 0xF);
            }
            o[2048 + 16 * j + r] = static_cast<uint8_t>(sc[j]);
            o[2176 + 16 * j + r] = static_cast<uint8_t>(mn[j]);
            for (int k = 0; k < 4; ++k)
              for (int m = 0; m < 4; ++m)
                o[256 * j + 64 * k + 4 * r + m] = static_cast<uint8_t>(u[32 * j + 4 * k + m] | u[32 * j + 16 + 4 * k + m] << 4);
          }
          std::memcpy(o + 2304 + 2 * r, &b.d, 2);
          std::memcpy(o + 2336 + 2 * r, &b.dmin, 2);
        } else {
          BlockQ6_K b;
          std::memcpy(&b, src, sizeof b);
          for (int j = 0; j < 8; ++j) {
            const int n = j / 4, q4 = j % 4;
            for (int i = 0; i < 32; ++i) {
              const uint8_t lb = b.ql[64 * n + i + 32 * (q4 & 1)];
              const int low = q4 < 2 ? (lb & 0xF) : (lb >> 4);
              const int high = (b.qh[32 * n + i] >> (2 * q4)) & 3;
              u[32 * j + i] = static_cast<uint8_t>(low | high << 4);
            }
            uint8_t* sub = o + kQ6kSubBlock * j;
            for (int k = 0; k < 4; ++k)
              for (int m = 0; m < 4; ++m) {
                const uint8_t a = u[32 * j + 4 * k + m], c = u[32 * j + 16 + 4 * k + m];
                sub[64 * k + 4 * r + m] = static_cast<uint8_t>((a & 0xF) | (c & 0xF) << 4);
                sub[256 + 4 * r + m] |= static_cast<uint8_t>((a >> 4) << (2 * k));
                sub[320 + 4 * r + m] |= static_cast<uint8_t>((c >> 4) << (2 * k));
              }
          }
          for (int h = 0; h < 16; ++h) o[kQ6kScales + 16 * h + r] = static_cast<uint8_t>(b.scales[h]);
          std::memcpy(o + kQ6kD + 2 * r, &b.d, 2);
        }
      }
    }
}

}  // namespace

void pack_weights(DType type, const uint8_t* w, int64_t n_in, int64_t n_out, uint8_t* out) {
  CHECK(packable(type, n_in, n_out));
  if (is_k(type)) return pack_k(type, w, n_in, n_out, out);
  if (is_half(type)) {  // a transpose of each 16-row group, 16-bit values copied
    for (int64_t g = 0; g < n_out / kPackRows; ++g)
      for (int64_t r = 0; r < kPackRows; ++r) {
        const uint8_t* src = w + (g * kPackRows + r) * n_in * 2;
        uint8_t* dst = out + g * n_in * kPackRows * 2 + 2 * r;
        for (int64_t i = 0; i < n_in; ++i) std::memcpy(dst + 32 * i, src + 2 * i, 2);
      }
    return;
  }
  const int64_t nb = n_in / 32, groups = n_out / kPackRows, cb = packed_code_bytes(type);
  const int64_t blk = type == DType::Q4_0 ? int64_t{sizeof(BlockQ4_0)} : int64_t{sizeof(BlockQ8_0)};
  const int64_t rb = nb * blk;
  const int64_t gb = packed_group_bytes(type, n_in);
  std::memset(out, 0, static_cast<size_t>(groups * gb));
  for (int64_t g = 0; g < groups; ++g) {
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* cell = out + g * gb + b * cb;
      uint8_t* sc = out + g * gb + nb * cb + b * 32;
      for (int64_t r = 0; r < kPackRows; ++r) {
        const uint8_t* src = w + (g * kPackRows + r) * rb + b * blk;
        std::memcpy(sc + 2 * r, src, 2);  // the block's f16 d
        if (type == DType::Q4_0) {
          for (int k = 0; k < 4; ++k) std::memcpy(cell + 64 * k + 4 * r, src + 2 + 4 * k, 4);
        } else {
          for (int k = 0; k < 8; ++k)
            for (int m = 0; m < 4; ++m)
              cell[64 * k + 4 * r + m] = static_cast<uint8_t>(static_cast<int8_t>(src[2 + 4 * k + m]) + 128);
        }
      }
    }
  }
}

}  // namespace infera::cpu
