// Packed weights: a weight matrix re-laid out once at load time so that one 512-bit register holds
// the same four elements of 16 consecutive rows. A product then takes one VPDPBUSD per 4 elements x
// 16 rows x 1 token with the activation bytes broadcast from memory, and one scale step per block of
// 32 elements x 16 rows, instead of one per block and row. The values are exactly those of the
// original blocks (codes and f16 scales copied, not requantized), so results match the unpacked
// kernels up to f32 summation order.
//
// Layout ("x16") of a matrix of n_out rows (n_out % 16 == 0) and n_in columns (n_in % 32 == 0),
// nb = n_in / 32 blocks per row: row group g (rows 16g .. 16g+15) at g * packed_group_bytes, holding
//   codes:  nb cells of packed_code_bytes(type), cell b at b * code_bytes (64-byte aligned, read as
//           64-byte chunks);
//   scales: then nb cells of 16 f16 (32 bytes): block b's scale d of each of the 16 rows;
//   padding to a multiple of 64 bytes.
// Chunk c of a cell holds 16 rows x 4 bytes (row r at bytes 4r .. 4r+3), unsigned codes u with
// value = d * (u - offset):
//   Q4_0 (offset 8, 4 chunks): chunk k byte 4r+m = the original byte m+4k of row r's block, whose
//        low nibble is element 4k+m and high nibble element 16+4k+m;
//   Q8_0 (offset 128, 8 chunks): chunk k byte 4r+m = element 4k+m + 128.
//
// The K types (n_in % 256 == 0) keep their small integer scales: row group g at
// g * packed_group_bytes holds one region per 256-element super-block s, packed_superblock_bytes
// apart, of sub-blocks j = 0..7 (32 elements each; chunks as above, offsets in bytes):
//   Q4_K: codes 0 (sub-block j's 4 nibble chunks at 256j, the Q4_0 order, value = d * sc * u -
//         dmin * mn), sc 2048 (8 x 16 rows u8), mn 2176 (8 x 16 rows u8), d 2304 (16 f16),
//         dmin 2336 (16 f16); 2368 bytes;
//   Q6_K: 6 bits per code as in the original (u = 0..63, value = d * sc * (u - 32)): sub-block j
//         at 384j holds 4 nibble chunks (chunk k byte 4r+m: low 4 bits of element 4k+m in its
//         low nibble, of element 16+4k+m in its high nibble), then 2 chunks of the top 2 bits
//         (at 256: elements 4k+m, at 320: elements 16+4k+m, each in bits 2k..2k+1 of byte
//         4r+m); sc 3072 (16 groups of 16 elements x 16 rows i8), d 3328 (16 f16); padded to 3392
//         bytes (6.6 bits per weight; the file's Q6_K has 6.56).
//
// F16 and BF16 (any n_in, f32 activations): row group g at g * n_in * 32 holds, for each element
// i, the 16 rows' values at 32i (one 256-bit load, converted to 16 f32 lanes).
#pragma once

#include <cstdint>

#include "kernels/cpu/kernels.h"
#include "tensor/dtype.h"

namespace infera::cpu {

inline constexpr int64_t kPackRows = 16;

// Whether `type` has a packed form and the shape allows it.
bool packable(DType type, int64_t n_in, int64_t n_out);
// Bytes of the packed form (packable only).
int64_t packed_bytes(DType type, int64_t n_in, int64_t n_out);
// Writes the packed form of the n_out rows at w (row-major blocks) to out (64-byte aligned,
// packed_bytes long).
void pack_weights(DType type, const uint8_t* w, int64_t n_in, int64_t n_out, uint8_t* out);

// The nt activation rows from t0 of a packed kernel's token group: each Q8A row's bytes and block
// scales, and its per-block code-offset corrections (corr_buf holds nb per row).
inline void packed_token_group(const uint8_t* x, int64_t x_row_bytes, int64_t n_in, int64_t t0, int nt,
                               const int32_t* corr_buf, int64_t nb, const int8_t** qs, const float** d,
                               const int32_t** corr) {
  for (int i = 0; i < nt; ++i) {
    const Q8ARow xa = q8a_row(x + (t0 + i) * x_row_bytes, n_in);
    qs[i] = xa.qs;
    d[i] = xa.d;
    corr[i] = corr_buf + (t0 + i) * nb;
  }
}

// Where block b's 16 scales lie for a group whose scales start at `scales` (nb blocks, groups
// group_bytes apart); b >= nb lies in a later group (one- and two-token kernels look 64 blocks
// ahead, more than a 1,536-long row's 48). The scales follow a group's codes,
// so prefetching the codes ahead does not bring them: a kernel asks for them the same distance
// ahead (without it, each group's first scale lines come from memory while the kernel waits; Q4_0
// 8-token products of 1,536-long rows from memory ran ~7% slower, one token ~13%).
inline const char* packed_scales_ahead(const uint8_t* scales, int64_t nb, int64_t group_bytes, int64_t b) {
  for (; b >= nb; b -= nb) scales += group_bytes;  // at most a few steps: no division on the hot path
  return reinterpret_cast<const char*>(scales + 32 * b);
}

// Code offset, code bytes per cell (16 rows x 32 elements) and bytes per row group of a packable type.
int packed_offset(DType type);
int64_t packed_code_bytes(DType type);
int64_t packed_group_bytes(DType type, int64_t n_in);
// Offsets in a packed Q6_K super-block region (the layout above).
inline constexpr int64_t kQ6kSubBlock = 384, kQ6kScales = 3072, kQ6kD = 3328, kQ6kSuperBlock = 3392;

// Bytes per 256-element super-block region of a K type's row group.
int64_t packed_superblock_bytes(DType type);

}  // namespace infera::cpu
