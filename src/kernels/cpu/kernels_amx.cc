// AMX-INT8 kernels for packed Q8_0 and Q4_0 weights (packed.h), for prompts and batches of 16
// tokens or more; everything else, and the last n_tok % 16 tokens of a batch, runs the AVX-512
// kernels this level extends.
//
// One TDPBSUD multiplies a tile of 16 tokens x 32 activation bytes (signed; the Q8A rows read in
// place, stride = the row length) by a tile of 8 x 64 code bytes (unsigned): exactly one packed
// block cell, whose 64-byte chunks of "16 rows x 4 elements" are the B-tile layout TDPBSUD wants.
// The result is the 16 x 16 integer block sums; they are stored and scaled per token with the same
// AVX-512 instructions, in the same order, as the VNNI kernel (code offset added in the integer
// sum, then cvt, ws * d, fma), so a token's result is bit for bit the one the AVX-512 kernel gives,
// whatever its batch. Q4_0's nibble cells are widened once per row group into a Q8_0-shaped
// scratch cell (codes 0..15) that every token tile of the group reuses.
//
// The kernel is a template over its tile operations: HwTiles issues the AMX instructions;
// EmuTiles computes the same tile semantics in C++ (Intel's pseudo-code for TILELOADD, TILESTORED,
// TILEZERO, TDPBSUD). Tests run the kernel on EmuTiles on any AVX-512 VNNI machine and on
// HwTiles where the CPU has AMX; at start-up the hardware kernel is checked against the emulated
// one on a small problem and is used only if the two agree bit for bit.
#include <immintrin.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/cpu/packed.h"

namespace infera::cpu {

namespace {

// The 64-byte tile configuration (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64);

// Tiles of this kernel: 0 = C (16 tokens x 16 int32), 1 = A (16 tokens x 32 bytes), 2 = B (8 x 64 bytes).
constexpr int kC = 0, kA = 1, kB = 2;
TileConfig kernel_config() {
  TileConfig c;
  c.rows[kC] = 16;
  c.colsb[kC] = 64;
  c.rows[kA] = 16;
  c.colsb[kA] = 32;
  c.rows[kB] = 8;
  c.colsb[kB] = 64;
  return c;
}

// The tile number is an immediate of each instruction ("%c" prints it bare). Every access is a
// "memory" clobber: the compiler can't see what a tile load reads or a tile store writes.
struct HwTiles {
  static void configure(const TileConfig& c) { _tile_loadconfig(&c); }
  static void release() { _tile_release(); }
  template <int T>
  static void load(const void* p, int64_t stride) {
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm%c2" ::"r"(p), "r"(stride), "i"(T) : "memory");
  }
  template <int T>
  static void store(void* p, int64_t stride) {
    __asm__ volatile("tilestored %%tmm%c2, (%0,%1,1)" ::"r"(p), "r"(stride), "i"(T) : "memory");
  }
  template <int T>
  static void zero() {
    __asm__ volatile("tilezero %%tmm%c0" ::"i"(T));
  }
  // C += A (signed bytes) x B (unsigned bytes); AT&T order: B, A, C.
  template <int C, int A, int B>
  static void dpbsud() {
    __asm__ volatile("tdpbsud %%tmm%c2, %%tmm%c1, %%tmm%c0" ::"i"(C), "i"(A), "i"(B));
  }
};

// The same operations on 8 emulated tile registers of 16 rows x 64 bytes (per thread).
struct EmuTiles {
  struct State {
    TileConfig cfg;
    alignas(64) uint8_t t[8][16][64];
  };
  static State& s() {
    thread_local State st;
    return st;
  }
  static void configure(const TileConfig& c) {
    s().cfg = c;
    std::memset(s().t, 0, sizeof s().t);
  }
  static void release() { std::memset(s().t, 0, sizeof s().t); }
  template <int T>
  static void load(const void* p, int64_t stride) {
    State& st = s();
    std::memset(st.t[T], 0, sizeof st.t[T]);
    for (int r = 0; r < st.cfg.rows[T]; ++r)
      std::memcpy(st.t[T][r], static_cast<const uint8_t*>(p) + r * stride, st.cfg.colsb[T]);
  }
  template <int T>
  static void store(void* p, int64_t stride) {
    State& st = s();
    for (int r = 0; r < st.cfg.rows[T]; ++r) std::memcpy(static_cast<uint8_t*>(p) + r * stride, st.t[T][r], st.cfg.colsb[T]);
  }
  template <int T>
  static void zero() {
    std::memset(s().t[T], 0, sizeof s().t[T]);
  }
  // C[m].dword[n] += sum over k < A.colsb / 4, i < 4 of sext(A[m].byte[4k + i]) * zext(B[k].byte[4n + i]).
  template <int C, int A, int B>
  static void dpbsud() {
    State& st = s();
    for (int m = 0; m < st.cfg.rows[C]; ++m)
      for (int n = 0; n < st.cfg.colsb[C] / 4; ++n) {
        int32_t acc;
        std::memcpy(&acc, &st.t[C][m][4 * n], 4);
        for (int k = 0; k < st.cfg.colsb[A] / 4; ++k)
          for (int i = 0; i < 4; ++i)
            acc += static_cast<int32_t>(static_cast<int8_t>(st.t[A][m][4 * k + i])) *
                   static_cast<int32_t>(st.t[B][k][4 * n + i]);
        std::memcpy(&st.t[C][m][4 * n], &acc, 4);
      }
  }
};

constexpr int kTileTok = 16;

// The AVX-512 packed kernels, for the tokens past the last full tile of 16.
RowsFn g_vnni[kMaxDType] = {};

int32_t block_sum(const int8_t* q) {
  int32_t s = 0;
  for (int i = 0; i < 32; ++i) s += q[i];
  return s;
}

// Q4_0's cell (4 chunks, low nibbles = elements 4k+m, high = 16+4k+m) as a Q8_0-shaped cell of
// 8 chunks (chunk k = elements 4k..4k+3 of the 16 rows), codes 0..15.
void widen_q4_0(const uint8_t* cell, uint8_t* out) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (int k = 0; k < 4; ++k) {
    const __m512i raw = _mm512_load_si512(cell + 64 * k);
    _mm512_store_si512(out + 64 * k, _mm512_and_si512(raw, low));
    _mm512_store_si512(out + 64 * (k + 4), _mm512_and_si512(_mm512_srli_epi16(raw, 4), low));
  }
}

template <DType T, class Tiles>
void rows_packed_amx(const uint8_t* w, int64_t n_in, int64_t r0, int64_t r1, const void* x, int64_t x_row_bytes,
                     int64_t n_tok, float* y, int64_t ldy) {
  const int64_t n_full = n_tok / kTileTok * kTileTok;
  const auto* xb = static_cast<const uint8_t*>(x);
  if (n_full > 0) {
    const int64_t nb = n_in / 32, cb = packed_code_bytes(T), gb = packed_group_bytes(T, n_in);
    const int32_t offset = packed_offset(T);
    thread_local std::vector<int32_t> corr;  // [token][block]: the code offset's share of the sum
    thread_local std::vector<const float*> d;  // [token]: the Q8A block scales
    corr.resize(static_cast<size_t>(n_full * nb));
    d.resize(static_cast<size_t>(n_full));
    for (int64_t t = 0; t < n_full; ++t) {
      const Q8ARow xa = q8a_row(xb + t * x_row_bytes, n_in);
      d[static_cast<size_t>(t)] = xa.d;
      for (int64_t b = 0; b < nb; ++b) corr[static_cast<size_t>(t * nb + b)] = -offset * block_sum(xa.qs + 32 * b);
    }
    thread_local std::vector<uint8_t> wide_buf;  // Q4_0: the row group's cells widened, 64-byte aligned
    if (T == DType::Q4_0) wide_buf.resize(static_cast<size_t>(nb * 512 + 64));
    uint8_t* wide = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(wide_buf.data()) + 63) & ~uintptr_t{63});
    alignas(64) int32_t c[kTileTok * 16];
    const TileConfig cfg = kernel_config();
    Tiles::configure(cfg);
    for (int64_t g = r0 / kPackRows; g < r1 / kPackRows; ++g) {
      const uint8_t* cells = w + g * gb;
      const uint8_t* scales = cells + nb * cb;
      const uint8_t* codes = cells;
      if constexpr (T == DType::Q4_0) {
        for (int64_t b = 0; b < nb; ++b) widen_q4_0(cells + b * cb, wide + b * 512);
        codes = wide;
      }
      for (int64_t t0 = 0; t0 < n_full; t0 += kTileTok) {
        __m512 accf[kTileTok];
        for (auto& a : accf) a = _mm512_setzero_ps();
        const uint8_t* a_base = xb + t0 * x_row_bytes;
        const int32_t* cr = corr.data() + t0 * nb;
        const float* const* dt = d.data() + t0;
        for (int64_t b = 0; b < nb; ++b) {
          Tiles::template zero<kC>();
          Tiles::template load<kA>(a_base + 32 * b, x_row_bytes);
          Tiles::template load<kB>(codes + 512 * b, 64);
          Tiles::template dpbsud<kC, kA, kB>();
          Tiles::template store<kC>(c, 64);
          const __m512 ws = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(scales + 32 * b)));
          for (int i = 0; i < kTileTok; ++i) {
            const __m512i sum = _mm512_add_epi32(_mm512_set1_epi32(cr[i * nb + b]), _mm512_load_si512(c + 16 * i));
            accf[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum), _mm512_mul_ps(ws, _mm512_set1_ps(dt[i][b])), accf[i]);
          }
        }
        for (int i = 0; i < kTileTok; ++i) _mm512_storeu_ps(y + (t0 + i) * ldy + g * kPackRows, accf[i]);
      }
    }
    Tiles::release();
  }
  if (n_full < n_tok)
    g_vnni[dtype_index(T)](w, n_in, r0, r1, xb + n_full * x_row_bytes, x_row_bytes, n_tok - n_full, y + n_full * ldy,
                           ldy);
}

template <class Tiles>
void set_amx_rows(Kernels& k) {
  k.packed_rows[dtype_index(DType::Q8_0)] = rows_packed_amx<DType::Q8_0, Tiles>;
  k.packed_rows[dtype_index(DType::Q4_0)] = rows_packed_amx<DType::Q4_0, Tiles>;
}

// The hardware kernel against the emulated one on 48 rows x 96 columns x 37 tokens (two full
// tiles and a rest), every packed type: the outputs must be identical bits.
bool hardware_matches_emulation(const Kernels& hw, const Kernels& emu) {
  const int64_t n_in = 96, n_out = 48, n_tok = 37;
  std::mt19937 gen(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> xf(static_cast<size_t>(n_in * n_tok));
  for (float& v : xf) v = nd(gen);
  const int64_t xrb = q8a_row_bytes(n_in);
  std::vector<uint8_t> xq(static_cast<size_t>(xrb * n_tok));
  for (int64_t t = 0; t < n_tok; ++t) hw.quantize_q8a(xf.data() + t * n_in, xq.data() + t * xrb, n_in);
  for (DType t : {DType::Q8_0, DType::Q4_0}) {
    std::vector<uint8_t> raw(static_cast<size_t>(n_out * n_in));  // valid blocks for both: random codes, f16 scale 1/64
    for (int64_t r = 0; r < n_out; ++r)
      for (int64_t b = 0; b < n_in / 32; ++b) {
        const int64_t bb = t == DType::Q8_0 ? 34 : 18;
        uint8_t* blk = raw.data() + (r * (n_in / 32) + b) * bb;
        blk[0] = 0x00;
        blk[1] = 0x24;  // f16 2^-6
        for (int64_t i = 2; i < bb; ++i) blk[i] = static_cast<uint8_t>(gen());
      }
    std::vector<uint8_t> packed_buf(static_cast<size_t>(packed_bytes(t, n_in, n_out) + 64));
    uint8_t* packed = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(packed_buf.data()) + 63) & ~uintptr_t{63});
    pack_weights(t, raw.data(), n_in, n_out, packed);
    std::vector<float> y_hw(static_cast<size_t>(n_out * n_tok)), y_emu(y_hw.size());
    hw.packed_rows[dtype_index(t)](packed, n_in, 0, n_out, xq.data(), xrb, n_tok, y_hw.data(), n_out);
    emu.packed_rows[dtype_index(t)](packed, n_in, 0, n_out, xq.data(), xrb, n_tok, y_emu.data(), n_out);
    if (std::memcmp(y_hw.data(), y_emu.data(), y_hw.size() * sizeof(float)) != 0) return false;
  }
  return true;
}

bool g_amx_verified = false;

}  // namespace

void fill_amx_emulated_kernels(Kernels& k) {
  fill_avx512_kernels(k);
  for (DType t : {DType::Q8_0, DType::Q4_0}) g_vnni[dtype_index(t)] = k.packed_rows[dtype_index(t)];
  set_amx_rows<EmuTiles>(k);
}

void fill_amx_kernels(Kernels& k) {
  fill_avx512_kernels(k);
  for (DType t : {DType::Q8_0, DType::Q4_0}) g_vnni[dtype_index(t)] = k.packed_rows[dtype_index(t)];
  k.isa = Isa::kAmx;
  Kernels hw = k, emu;
  set_amx_rows<HwTiles>(hw);
  fill_amx_emulated_kernels(emu);
  g_amx_verified = hardware_matches_emulation(hw, emu);
  if (g_amx_verified) {
    set_amx_rows<HwTiles>(k);
  } else {
    std::fprintf(stderr, "warning: the AMX tile kernels disagree with their emulation on this CPU; using the AVX-512 kernels\n");
  }
}

bool amx_kernels_verified() { return g_amx_verified; }

}  // namespace infera::cpu
