#include "kernels/cpu/packed.h"

#include <cstring>

#include "base/check.h"
#include "tensor/blocks.h"

namespace infera::cpu {

bool packable(DType type, int64_t n_in, int64_t n_out) {
  if (type != DType::Q4_0 && type != DType::Q8_0) return false;
  return n_in > 0 && n_in % 32 == 0 && n_out > 0 && n_out % kPackRows == 0;
}

int packed_offset(DType type) { return type == DType::Q4_0 ? 8 : 128; }
int64_t packed_code_bytes(DType type) { return type == DType::Q4_0 ? 256 : 512; }

int64_t packed_group_bytes(DType type, int64_t n_in) {
  return (n_in / 32 * (packed_code_bytes(type) + 32) + 63) / 64 * 64;
}

int64_t packed_bytes(DType type, int64_t n_in, int64_t n_out) {
  CHECK(packable(type, n_in, n_out));
  return n_out / kPackRows * packed_group_bytes(type, n_in);
}

void pack_weights(DType type, const uint8_t* w, int64_t n_in, int64_t n_out, uint8_t* out) {
  CHECK(packable(type, n_in, n_out));
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
