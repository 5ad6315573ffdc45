// The AMX tile operations shared by the AMX kernels (kernels_amx.cc: TDPBSUD on int8 codes;
// kernels_amx_bf16.cc: TDPBF16PS on bf16 pairs), in two interchangeable forms:
//   HwTiles  the instructions themselves (inline asm; the assembler knows them whatever -m flags);
//   EmuTiles the same semantics in C++ on 8 per-thread tile registers, after Intel's pseudo-code,
//            so the kernels run and are tested on any AVX-512 machine.
// A kernel is a template over one of them. Include only from a translation unit compiled for
// AVX-512; the hardware form runs only after a start-up check (without_faults) on a CPU that has
// the tiles.
#pragma once

#include <csetjmp>
#include <csignal>
#include <cstdint>
#include <cstring>

namespace infera::cpu::amx {

// The 64-byte tile configuration (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};

  void set(int tile, int n_rows, int n_colsb) {
    rows[tile] = static_cast<uint8_t>(n_rows);
    colsb[tile] = static_cast<uint16_t>(n_colsb);
  }
};
static_assert(sizeof(TileConfig) == 64);

// The tile number is an immediate of each instruction ("%c" prints it bare). Every access is a
// "memory" clobber: the compiler can't see what a tile load reads or a tile store writes.
struct HwTiles {
  static void configure(const TileConfig& c) { __asm__ volatile("ldtilecfg %0" ::"m"(c)); }  // all 64 bytes read
  static void release() { __asm__ volatile("tilerelease" ::); }
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
  // C += A (signed bytes) x B (signed bytes).
  template <int C, int A, int B>
  static void dpbssd() {
    __asm__ volatile("tdpbssd %%tmm%c2, %%tmm%c1, %%tmm%c0" ::"i"(C), "i"(A), "i"(B));
  }
  // C (f32) += A (bf16 pairs) x B (bf16 pairs); AT&T order: B, A, C.
  template <int C, int A, int B>
  static void dpbf16ps() {
    __asm__ volatile("tdpbf16ps %%tmm%c2, %%tmm%c1, %%tmm%c0" ::"i"(C), "i"(A), "i"(B));
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
  // C[m].dword[n] += sum over k < A.colsb / 4, i < 4 of sext(A[m].byte[4k + i]) * zext(B[k].byte[4n + i])
  // (TDPBSUD), or sext of both (TDPBSSD).
  template <int C, int A, int B, bool kSignedB = false>
  static void dpbsud() {
    State& st = s();
    for (int m = 0; m < st.cfg.rows[C]; ++m)
      for (int n = 0; n < st.cfg.colsb[C] / 4; ++n) {
        int32_t acc;
        std::memcpy(&acc, &st.t[C][m][4 * n], 4);
        for (int k = 0; k < st.cfg.colsb[A] / 4; ++k)
          for (int i = 0; i < 4; ++i) {
            const uint8_t bv = st.t[B][k][4 * n + i];
            acc += static_cast<int32_t>(static_cast<int8_t>(st.t[A][m][4 * k + i])) *
                   (kSignedB ? static_cast<int32_t>(static_cast<int8_t>(bv)) : static_cast<int32_t>(bv));
          }
        std::memcpy(&st.t[C][m][4 * n], &acc, 4);
      }
  }
  template <int C, int A, int B>
  static void dpbssd() {
    dpbsud<C, A, B, true>();
  }
  // bf16 bits as the f32 they widen to, denormals read as zero (DAZ).
  static float bf16_daz(const uint8_t* p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    uint32_t u = static_cast<uint32_t>(h) << 16;
    if ((u & 0x7F800000u) == 0) u &= 0x80000000u;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  static float ftz(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7F800000u) == 0) u &= 0x80000000u;
    std::memcpy(&f, &u, 4);
    return f;
  }
  // C[m].f32[n] += A[m].bf16[2k] * B[k].bf16[2n] + A[m].bf16[2k+1] * B[k].bf16[2n+1] over k <
  // A.colsb / 4, one rounding (to nearest even) per accumulation, denormals in and out as zero.
  // (A bf16 product is exact in f32. The hardware may order the additions inside one instruction
  // otherwise: its results are compared with these within a tolerance, not bit for bit.)
  template <int C, int A, int B>
  static void dpbf16ps() {
    State& st = s();
    for (int m = 0; m < st.cfg.rows[C]; ++m)
      for (int n = 0; n < st.cfg.colsb[C] / 4; ++n) {
        float acc;
        std::memcpy(&acc, &st.t[C][m][4 * n], 4);
        for (int k = 0; k < st.cfg.colsb[A] / 4; ++k)
          for (int i = 0; i < 2; ++i) {
            const float p = bf16_daz(&st.t[A][m][4 * k + 2 * i]) * bf16_daz(&st.t[B][k][4 * n + 2 * i]);
            acc = ftz(acc + p);
          }
        std::memcpy(&st.t[C][m][4 * n], &acc, 4);
      }
  }
};

// Runs check() with SIGILL, SIGSEGV and SIGBUS turned into a false result instead of a crash (a
// tile instruction the CPU or kernel refuses), the way CPU feature probes do; the previous
// handlers are restored after. Only the start-up checks run tile instructions at that point.
// Everything check() needs must be allocated before: a fault leaves it by a jump (no destructors).
inline sigjmp_buf g_probe_jump;
inline void probe_fault(int) { siglongjmp(g_probe_jump, 1); }

template <class F>
bool without_faults(F&& check) {
  struct sigaction sa = {}, old[3] = {};
  sa.sa_handler = probe_fault;
  sigemptyset(&sa.sa_mask);
  const int sigs[3] = {SIGILL, SIGSEGV, SIGBUS};
  for (int i = 0; i < 3; ++i) sigaction(sigs[i], &sa, &old[i]);
  bool ok = false;
  if (sigsetjmp(g_probe_jump, 1) == 0) ok = check();
  for (int i = 0; i < 3; ++i) sigaction(sigs[i], &old[i], nullptr);
  return ok;
}

}  // namespace infera::cpu::amx
