// Every CPU kernel path against its scalar twin (same integers, different f32 summation order) and
// the integer-activation path against exact f32 math on the dequantized weights (bounded by the
// activation quantization error). Each ISA level the CPU supports is forced in turn.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "backend/backend.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/packed.h"
#include "tensor/quant.h"

namespace infera::cpu {
namespace {

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

const DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0,
                        DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K};
const Isa kIsas[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAmx};

struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<float> deq;  // the exact values the bytes hold
  TensorView view;
};

Weights make_weights(DType t, int64_t n_in, int64_t n_out, uint32_t seed) {
  Weights w;
  const auto src = randn(static_cast<size_t>(n_in * n_out), seed, 0.05f);
  const int64_t rb = row_bytes(t, n_in);
  w.bytes.resize(static_cast<size_t>(rb * n_out));
  w.deq.resize(src.size());
  for (int64_t r = 0; r < n_out; ++r) {
    quantize_row(t, src.data() + r * n_in, w.bytes.data() + r * rb, n_in);
    dequantize_row(t, w.bytes.data() + r * rb, w.deq.data() + r * n_in, n_in);
  }
  w.view.type = t;
  w.view.n_dims = 2;
  w.view.ne = {n_in, n_out, 1, 1};
  w.view.data = w.bytes.data();
  w.view.nbytes = w.bytes.size();
  return w;
}

// y = W x through a backend.
std::vector<float> run(Backend& be, const Weights& w, const std::vector<float>& x, int64_t n_tok) {
  std::vector<float> y(static_cast<size_t>(n_tok * w.view.ne[1]));
  be.matmul(w.view, x.data(), n_tok, y.data());
  return y;
}

TEST(CpuKernels, QuantizeQ8AIsBitIdenticalOnEveryPath) {
  const int64_t n = 32 * 40;
  auto x = randn(static_cast<size_t>(n), 7);
  x[5] = 0;
  std::fill(x.begin() + 64, x.begin() + 96, 0.0f);  // an all-zero block
  const size_t bytes = static_cast<size_t>(q8a_row_bytes(n));
  std::vector<uint8_t> want(bytes), got(bytes);
  kernels_for(Isa::kScalar).quantize_q8a(x.data(), want.data(), n);
  for (Isa isa : kIsas) {
    if (!isa_supported(isa)) continue;
    kernels_for(isa).quantize_q8a(x.data(), got.data(), n);
    ASSERT_EQ(want, got) << isa_name(isa);
  }
  const Q8ARow r = q8a_row(want.data(), n);
  EXPECT_EQ(r.d[2], 0.0f);
  int lo = 0, hi = 0;
  for (int i = 0; i < 16; ++i) lo += r.qs[i], hi += r.qs[16 + i];
  EXPECT_FLOAT_EQ(r.s16[0], r.d[0] * static_cast<float>(lo));
  EXPECT_FLOAT_EQ(r.s16[1], r.d[0] * static_cast<float>(hi));
  EXPECT_FLOAT_EQ(r.s32[0], r.d[0] * static_cast<float>(lo + hi));
  for (int i = 0; i < 32; ++i) EXPECT_NEAR(r.d[1] * r.qs[32 + i], x[32 + i], r.d[1] / 2 * 1.0001f) << i;
}

// Shapes: row lengths that exercise tails (F types: not a multiple of 16), every token-group size
// (1..4 and more than a tile), row counts that do not divide into the threads' quanta.
TEST(CpuKernels, EveryPathMatchesScalarTwinAndExactMath) {
  auto scalar = make_cpu_backend(1, Isa::kScalar);
  for (DType t : kTypes) {
    const int64_t blk = dtype_info(t).block_elems;
    for (int64_t n_in : {blk == 256 ? int64_t{256} : int64_t{32}, blk == 256 ? int64_t{512} : int64_t{96}, int64_t{1536}}) {
      for (int64_t n_out : {int64_t{1}, int64_t{37}, int64_t{130}}) {
        const Weights w = make_weights(t, n_in, n_out, static_cast<uint32_t>(n_in * 131 + n_out));
        for (int64_t n_tok : {int64_t{1}, int64_t{3}, int64_t{4}, int64_t{9}}) {
          const auto x = randn(static_cast<size_t>(n_in * n_tok), static_cast<uint32_t>(n_tok + 17));
          const auto want = run(*scalar, w, x, n_tok);
          // Exact math on the dequantized weights; the magnitude bounds the rounding tolerance.
          for (int64_t tk = 0; tk < n_tok; ++tk)
            for (int64_t r = 0; r < n_out; ++r) {
              double exact = 0, mag = 0;
              for (int64_t i = 0; i < n_in; ++i) {
                exact += double(w.deq[r * n_in + i]) * x[tk * n_in + i];
                mag += std::fabs(double(w.deq[r * n_in + i]) * x[tk * n_in + i]);
              }
              const bool quantized_act = kernels_for(Isa::kScalar).act[dtype_index(t)] == ActForm::kQ8A;
              const double tol = quantized_act ? 0.02 * mag + 1e-6 : 1e-5 * mag + 1e-7;
              ASSERT_NEAR(want[tk * n_out + r], exact, tol)
                  << dtype_name(t) << " n_in " << n_in << " row " << r << " tok " << tk;
            }
          for (Isa isa : kIsas) {
            if (!isa_supported(isa) || isa == Isa::kScalar) continue;
            auto be = make_cpu_backend(3, isa);
            const auto got = run(*be, w, x, n_tok);
            for (size_t i = 0; i < got.size(); ++i) {
              const int64_t tk = static_cast<int64_t>(i) / n_out, r = static_cast<int64_t>(i) % n_out;
              double mag = 0;
              for (int64_t k = 0; k < n_in; ++k) mag += std::fabs(double(w.deq[r * n_in + k]) * x[tk * n_in + k]);
              ASSERT_NEAR(got[i], want[i], 2e-6 * mag + 1e-7)
                  << isa_name(isa) << " " << dtype_name(t) << " n_in " << n_in << " n_out " << n_out << " n_tok "
                  << n_tok << " at " << i;
            }
          }
        }
      }
    }
  }
}

TEST(CpuKernels, BatchedRowsEqualOneTokenAtATimeExactly) {
  // Batch invariance: a token's outputs do not depend on the other tokens in the batch, bit for bit,
  // including batches larger than one activation tile.
  const int64_t n_tok = 70;
  const auto x = randn(static_cast<size_t>(8960 * n_tok), 9);
  for (DType type : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K, DType::F16}) {
    const Weights w = make_weights(type, 8960, 40, 5);
    for (Isa isa : kIsas) {
      if (!isa_supported(isa)) continue;
      auto be = make_cpu_backend(2, isa);
      const auto all = run(*be, w, x, n_tok);
      for (int64_t t = 0; t < n_tok; t += 3) {
        std::vector<float> one(x.begin() + t * 8960, x.begin() + (t + 1) * 8960);
        const auto y = run(*be, w, one, 1);
        for (int64_t r = 0; r < 40; ++r)
          ASSERT_EQ(all[t * 40 + r], y[r]) << dtype_name(type) << " " << isa_name(isa) << " token " << t;
      }
    }
  }
}

// Packed weights (packed.h; Q4_0, Q8_0, Q4_K, Q6_K, F16, BF16; AVX2: Q4_0): every ISA's packed kernel against the unpacked scalar twin, on row
// lengths with odd block counts (padding between row groups) and token counts around the group
// of 8 and the AMX level's 32-token threshold (33: two whole tiles and a rest); a token's result
// does not depend on the batch, bit for bit (the AMX-BF16 tiles: within their bound).
TEST(CpuKernels, PackedWeightsMatchScalarTwinAndAreBatchInvariant) {
  auto scalar = make_cpu_backend(1, Isa::kScalar);
  for (DType t : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K, DType::F16, DType::BF16}) {
    const bool k_type = t == DType::Q4_K || t == DType::Q6_K, half = t == DType::F16 || t == DType::BF16;
    for (int64_t n_in : k_type ? std::vector<int64_t>{256, 768, 1536}
                        : half ? std::vector<int64_t>{1, 37, 1536}
                               : std::vector<int64_t>{32, 96, 1536}) {
      for (int64_t n_out : {int64_t{16}, int64_t{48}, int64_t{160}}) {
        Weights w = make_weights(t, n_in, n_out, static_cast<uint32_t>(n_in * 7 + n_out));
        for (Isa isa : kIsas) {
          if (!isa_supported(isa)) continue;
          auto be = make_cpu_backend(3, isa);
          const std::shared_ptr<const uint8_t> p = be->pack(w.view);
          if (isa == Isa::kAvx2 && t != DType::Q4_0) {  // the AVX2 level packs Q4_0 only
            EXPECT_EQ(p, nullptr);
            continue;
          }
          ASSERT_NE(p, nullptr) << isa_name(isa) << " " << dtype_name(t);
          Weights pw = w;
          pw.view.data = pw.bytes.data();
          pw.view.packed = p.get();
          // The AMX-BF16 tiles (F16 / BF16 at the amx level, where verified) split values into two
          // bf16: within 2^-14 of the magnitude (their bound; a one-element row, n_in 1, has no
          // averaging: 1.5e-5 was seen on real tiles), and a token's bits depend on whether it
          // falls in a whole tile of 16 of a call of >= 32 tokens or not (the AVX-512 kernel).
          const bool bf16_tiles = isa == Isa::kAmx && half && amx_bf16_kernels_verified();
          const double rel = bf16_tiles ? 0x1p-14 : 2e-6;
          for (int64_t n_tok : {int64_t{1}, int64_t{3}, int64_t{8}, int64_t{9}, int64_t{17}, int64_t{33}}) {
            const auto x = randn(static_cast<size_t>(n_in * n_tok), static_cast<uint32_t>(n_tok + 3));
            const auto want = run(*scalar, w, x, n_tok);
            const auto got = run(*be, pw, x, n_tok);
            std::vector<double> mags(got.size());
            for (size_t i = 0; i < got.size(); ++i) {
              const int64_t tk = static_cast<int64_t>(i) / n_out, r = static_cast<int64_t>(i) % n_out;
              double mag = 0;
              for (int64_t k = 0; k < n_in; ++k) mag += std::fabs(double(w.deq[r * n_in + k]) * x[tk * n_in + k]);
              mags[i] = mag;
              ASSERT_NEAR(got[i], want[i], rel * mag + 1e-7) << isa_name(isa) << " " << dtype_name(t) << " n_in "
                                                              << n_in << " n_out " << n_out << " n_tok " << n_tok
                                                              << " at " << i;
            }
            for (int64_t tk = 0; tk < n_tok; tk += 4) {
              const std::vector<float> one(x.begin() + tk * n_in, x.begin() + (tk + 1) * n_in);
              const auto y = run(*be, pw, one, 1);
              for (int64_t r = 0; r < n_out; ++r) {
                if (bf16_tiles && n_tok >= 32)
                  ASSERT_NEAR(got[tk * n_out + r], y[r], 2 * rel * mags[tk * n_out + r] + 1e-7) << dtype_name(t);
                else
                  ASSERT_EQ(got[tk * n_out + r], y[r]) << isa_name(isa) << " " << dtype_name(t) << " token " << tk;
              }
            }
          }
        }
      }
    }
  }
  // Types and shapes without a packed form get none.
  auto be = make_cpu_backend(1, default_isa());
  EXPECT_EQ(be->pack(make_weights(DType::Q4_0, 64, 37, 1).view), nullptr);
  EXPECT_EQ(be->pack(make_weights(DType::Q4_1, 256, 32, 1).view), nullptr);
  EXPECT_EQ(be->pack(make_weights(DType::F32, 64, 32, 1).view), nullptr);
  EXPECT_EQ(be->pack(make_weights(DType::F16, 64, 40, 1).view), nullptr);
  EXPECT_EQ(make_cpu_reference_backend(1)->pack(make_weights(DType::Q4_0, 64, 32, 1).view), nullptr);
}

// The scale-prefetch address: block b of the group, or of a later group when the lookahead (up to 64
// blocks for one- and two-token kernels) runs past the group's nb blocks, on the packed layout.
TEST(CpuKernels, PackedScalesAheadFollowsTheGroupLayout) {
  for (DType t : {DType::Q4_0, DType::Q8_0}) {
    const int64_t n_in = 1536, nb = n_in / 32, gb = packed_group_bytes(t, n_in), codes = nb * packed_code_bytes(t);
    const std::vector<uint8_t> buf(static_cast<size_t>(3 * gb));
    const uint8_t* base = buf.data();
    const uint8_t* scales0 = base + codes;  // group 0's scales; group g's at g * gb + codes
    for (int64_t b : {int64_t{0}, int64_t{5}, nb - 1, nb, nb + 7, 2 * nb - 1, 2 * nb, 2 * nb + 16}) {
      const int64_t g = b / nb;
      EXPECT_EQ(packed_scales_ahead(scales0, nb, gb, b),
                reinterpret_cast<const char*>(base + g * gb + codes + 32 * (b - g * nb)))
          << dtype_name(t) << " b=" << b;
    }
  }
}

// The AMX tile kernels (packed Q8_0 / Q4_0 / Q4_K / Q6_K; calls of >= 32 tokens in whole tiles of
// 16, the rest and smaller calls on AVX-512) give bit for bit what the AVX-512 kernels give: on
// emulated tiles on every AVX-512 VNNI machine, and on the real tiles where the CPU has AMX (32, 35
// and 48 tokens reach the tiles). Row ranges start mid-matrix and outputs are strided, as the
// backend's row split and matmul_many call them.
TEST(CpuKernels, AmxTileKernelsEqualAvx512KernelsBitForBit) {
  if (!isa_supported(Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 VNNI";
  const Kernels& vnni = kernels_for(Isa::kAvx512);
  Kernels emu;
  fill_amx_emulated_kernels(emu);
  std::vector<std::pair<const Kernels*, const char*>> tables = {{&emu, "emulated tiles"}};
  if (isa_supported(Isa::kAmx)) {
    if (!amx_kernels_verified()) GTEST_SKIP() << "AMX present, but its tile kernels failed the start-up check";
    tables.emplace_back(&kernels_for(Isa::kAmx), "AMX tiles");
  }
  for (DType t : {DType::Q8_0, DType::Q4_0, DType::Q4_K, DType::Q6_K}) {
    const bool k_type = t == DType::Q4_K || t == DType::Q6_K;
    for (int64_t n_in : k_type ? std::vector<int64_t>{256, 768} : std::vector<int64_t>{32, 96, 1536}) {
      const int64_t n_out = 48;
      Weights w = make_weights(t, n_in, n_out, static_cast<uint32_t>(n_in + 11));
      std::vector<uint8_t> buf(static_cast<size_t>(packed_bytes(t, n_in, n_out) + 64));
      auto* packed = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t{63});
      pack_weights(t, w.bytes.data(), n_in, n_out, packed);
      for (int64_t n_tok : {int64_t{1}, int64_t{3}, int64_t{4}, int64_t{8}, int64_t{15}, int64_t{16}, int64_t{17},
                            int64_t{20}, int64_t{32}, int64_t{35}, int64_t{48}}) {
        const auto x = randn(static_cast<size_t>(n_in * n_tok), static_cast<uint32_t>(n_tok));
        const int64_t xrb = q8a_row_bytes(n_in), ldy = n_out + 5;
        std::vector<uint8_t> xq(static_cast<size_t>(xrb * n_tok));
        for (int64_t k = 0; k < n_tok; ++k) vnni.quantize_q8a(x.data() + k * n_in, xq.data() + k * xrb, n_in);
        for (int64_t r0 : {int64_t{0}, int64_t{16}}) {
          std::vector<float> want(static_cast<size_t>(ldy * n_tok), -1.0f);
          vnni.packed_rows[dtype_index(t)](packed, n_in, r0, n_out, xq.data(), xrb, n_tok, want.data(), ldy);
          for (const auto& [k, name] : tables) {
            std::vector<float> got(want.size(), -1.0f);
            k->packed_rows[dtype_index(t)](packed, n_in, r0, n_out, xq.data(), xrb, n_tok, got.data(), ldy);
            for (size_t i = 0; i < got.size(); ++i)
              ASSERT_EQ(std::memcmp(&got[i], &want[i], sizeof(float)), 0)
                  << name << " " << dtype_name(t) << " n_in " << n_in << " n_tok " << n_tok << " r0 " << r0 << " at "
                  << i << ": " << got[i] << " vs " << want[i];
          }
        }
      }
    }
  }
}

// The AMX-BF16 tile kernels (packed F16 / BF16; activations split into two bf16, F16 weights into
// two exactly) against exact products in double precision: each output within 2^-14 of its sum of
// product magnitudes (plus f32 summation: 1e-4 in all), and over the 1,536-element rows within
// 4e-6 on average, which bf16 activations alone (2^-9 per product, ~4e-5 on average there) or an
// F16 weight's high part alone would miss; a token's bits are the same in every batch of >= 4. On emulated
// tiles everywhere with AVX-512, on the real ones where the CPU has AMX-BF16 and they passed the
// start-up check. Row ranges start mid-matrix, outputs are strided, n_in leaves a partial cell.
TEST(CpuKernels, AmxBf16TileKernelsStayWithinTheSplitsBound) {
  if (!isa_supported(Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 VNNI";
  Kernels emu;
  fill_amx_emulated_kernels(emu);
  std::vector<std::pair<const Kernels*, const char*>> tables = {{&emu, "emulated tiles"}};
  if (isa_supported(Isa::kAmx) && cpu_features().amx_bf16) {
    if (!amx_bf16_kernels_verified()) GTEST_SKIP() << "AMX-BF16 present, but its tile kernels failed the start-up check";
    tables.emplace_back(&kernels_for(Isa::kAmx), "AMX tiles");
  }
  for (DType t : {DType::F16, DType::BF16}) {
    for (int64_t n_in : {int64_t{1}, int64_t{37}, int64_t{64}, int64_t{1536}}) {
      const int64_t n_out = 48, ldy = n_out + 5;
      Weights w = make_weights(t, n_in, n_out, static_cast<uint32_t>(n_in + 5));
      std::vector<uint8_t> buf(static_cast<size_t>(packed_bytes(t, n_in, n_out) + 64));
      auto* packed = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(buf.data()) + 63) & ~uintptr_t{63});
      pack_weights(t, w.bytes.data(), n_in, n_out, packed);
      const int64_t max_tok = 48;
      const auto x = randn(static_cast<size_t>(n_in * max_tok), static_cast<uint32_t>(n_in));
      for (const auto& [k, name] : tables) {
        const RowsFn fn = k->packed_rows[dtype_index(t)];
        std::vector<float> full(static_cast<size_t>(ldy * max_tok), -1.0f);
        fn(packed, n_in, 16, n_out, x.data(), n_in * 4, max_tok, full.data(), ldy);
        double rel_sum = 0;
        int64_t rel_n = 0;
        for (int64_t n_tok : {int64_t{1}, int64_t{3}, int64_t{4}, int64_t{15}, int64_t{16}, int64_t{17}, int64_t{33},
                              int64_t{48}}) {
          std::vector<float> got(static_cast<size_t>(ldy * n_tok), -1.0f);
          fn(packed, n_in, 16, n_out, x.data(), n_in * 4, n_tok, got.data(), ldy);
          for (int64_t tk = 0; tk < n_tok; ++tk) {
            for (int64_t c = 0; c < ldy; ++c) {
              const float v = got[static_cast<size_t>(tk * ldy + c)];
              if (c < 16 || c >= n_out) {  // rows outside [r0, r1): untouched
                ASSERT_EQ(v, -1.0f) << name << " wrote column " << c;
                continue;
              }
              double exact = 0, mag = 0;
              for (int64_t i = 0; i < n_in; ++i) {
                const double p = double(w.deq[c * n_in + i]) * x[tk * n_in + i];
                exact += p;
                mag += std::fabs(p);
              }
              ASSERT_NEAR(v, exact, 1e-4 * mag + 1e-30)
                  << name << " " << dtype_name(t) << " n_in " << n_in << " n_tok " << n_tok << " token " << tk << " row " << c;
              const int64_t n_tiled = n_tok < 32 ? 0 : n_tok / 16 * 16;  // the rest, and small calls: AVX-512
              if (tk < n_tiled && mag > 0) {
                rel_sum += std::fabs(v - exact) / mag;
                ++rel_n;
              }
              if (tk < n_tiled) {  // a tile's token: the same bits in any tile
                ASSERT_EQ(std::memcmp(&v, &full[static_cast<size_t>(tk * ldy + c)], sizeof v), 0)
                    << name << " " << dtype_name(t) << " n_tok " << n_tok << " token " << tk;
              }
            }
          }
        }
        if (n_in == 1536) {
          EXPECT_LT(rel_sum / static_cast<double>(rel_n), 4e-6) << name << " " << dtype_name(t);
          if (std::getenv("INFERA_TEST_VERBOSE"))
            std::printf("%s %s: mean |error| / magnitude %.3g\n", name, std::string(dtype_name(t)).c_str(),
                        rel_sum / static_cast<double>(rel_n));
        }
      }
    }
  }
}

// The start-up check of the real tiles survives a CPU that refuses them: without AMX the first
// tile instruction raises SIGILL, which the check turns into "not verified"; with AMX it agrees
// with what start-up decided.
TEST(CpuKernels, AmxStartupCheckSurvivesAFault) {
  if (!isa_supported(Isa::kAvx512)) GTEST_SKIP() << "no AVX-512 VNNI";
  if (isa_supported(Isa::kAmx)) {
    EXPECT_EQ(amx_tiles_check(), amx_kernels_verified());
    if (cpu_features().amx_bf16) {
      EXPECT_EQ(amx_bf16_tiles_check(), amx_bf16_kernels_verified());
    }
  } else {
    EXPECT_FALSE(amx_tiles_check());
    EXPECT_FALSE(amx_tiles_check());  // and again: the handlers were put back and re-armed
    EXPECT_FALSE(amx_bf16_tiles_check());
  }
}

// matmul_many (one activation conversion, one parallel pass over the rows of all the weights) gives
// exactly what separate matmuls give: packed and unpacked, mixed types of one activation form, and
// mixed forms (F16 with Q8_0: each on its own), odd row counts.
TEST(CpuKernels, MatmulManyEqualsSeparateMatmuls) {
  const int64_t n_in = 512;
  for (Isa isa : kIsas) {
    if (!isa_supported(isa)) continue;
    auto be = make_cpu_backend(2, isa);
    for (const std::vector<DType>& types : {std::vector<DType>{DType::Q4_K, DType::Q6_K, DType::Q4_K},
                                            std::vector<DType>{DType::Q4_0, DType::Q8_0},
                                            std::vector<DType>{DType::F16, DType::Q8_0, DType::Q5_0},
                                            std::vector<DType>{DType::Q2_K, DType::Q4_0}}) {
      std::vector<Weights> w;
      std::vector<std::shared_ptr<const uint8_t>> keep;
      const int64_t n_outs[3] = {48, 37, 160};
      for (size_t i = 0; i < types.size(); ++i) {
        w.push_back(make_weights(types[i], n_in, n_outs[i], static_cast<uint32_t>(i + 1)));
        if (auto p = be->pack(w.back().view)) {
          w.back().view.packed = p.get();
          keep.push_back(p);
        }
      }
      for (int64_t n_tok : {int64_t{1}, int64_t{8}, int64_t{13}}) {
        const auto x = randn(static_cast<size_t>(n_in * n_tok), 11);
        std::vector<const TensorView*> ws;
        std::vector<std::vector<float>> ys(types.size());
        std::vector<float*> yp;
        for (size_t i = 0; i < types.size(); ++i) {
          ws.push_back(&w[i].view);
          ys[i].assign(static_cast<size_t>(n_tok * w[i].view.ne[1]), -1.0f);
          yp.push_back(ys[i].data());
        }
        be->matmul_many(ws, x.data(), n_tok, yp);
        for (size_t i = 0; i < types.size(); ++i)
          ASSERT_EQ(ys[i], run(*be, w[i], x, n_tok)) << isa_name(isa) << " " << dtype_name(types[i]) << " n_tok " << n_tok;
      }
    }
  }
}

// SwiGLU's vectorized exp against the scalar one: values from -120 to 120 (overflow and underflow of
// exp on both sides), a tail that is not a multiple of the vector width, and in place.
TEST(CpuKernels, SwigluMatchesScalarTwinOnEveryPath) {
  const int64_t n = 4099;
  std::vector<float> g(static_cast<size_t>(n)), u = randn(static_cast<size_t>(n), 4);
  for (int64_t i = 0; i < n; ++i) g[static_cast<size_t>(i)] = -120.0f + 240.0f * static_cast<float>(i) / static_cast<float>(n);
  for (int i = 0; i < 200; ++i) g[static_cast<size_t>(i * 20)] = randn(1, static_cast<uint32_t>(i))[0] * 3;
  std::vector<float> want(g.size());
  kernels_for(Isa::kScalar).swiglu_f32(g.data(), u.data(), want.data(), n);
  for (Isa isa : kIsas) {
    if (!isa_supported(isa)) continue;
    std::vector<float> got = g;
    kernels_for(isa).swiglu_f32(got.data(), u.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_NEAR(got[static_cast<size_t>(i)], want[static_cast<size_t>(i)], 4e-7f * std::fabs(want[static_cast<size_t>(i)]) + 1e-30f)
          << isa_name(isa) << " at g = " << g[static_cast<size_t>(i)];
  }
  // Through a backend (split over threads) the result is the kernel's.
  auto be = make_cpu_backend(3, default_isa());
  std::vector<float> out(g.size()), direct(g.size());
  be->swiglu(g.data(), u.data(), out.data(), n);
  kernels_for(default_isa()).swiglu_f32(g.data(), u.data(), direct.data(), n);
  EXPECT_EQ(out, direct);
}

// Two sequences in one batch over a paged cache with scrambled block tables: sequence 0 has 5
// query tokens at positions 11..15, sequence 1 has 2 at positions 3..4; blocks of 4 slots.
// Also with blocks of 8 slots, head size 128 and 28-32 keys (several 8-key score blocks and a tail),
// blocks of 32 slots with 65-71 keys (values in several 32-key blocks, each used by the 3 query
// heads of its group in turn), and head size 32 (no vector kernel for it: the plain loops). Groups
// of 3 query heads per KV head, and of 7, 8 and 1 (the kernel's row tiles: 3 + 3 + 1 and 6 + 1,
// 3 + 3 + 2 and 6 + 2, 1 and 1); head sizes of 4, 5, 6 and 8 vectors (value chunks 4, 4 + 1, 4 + 2,
// 4 + 4; q8_0 only where the head holds whole blocks).
TEST(CpuKernels, PagedAttentionMatchesReferenceOnEveryPath) {
  struct Shape {
    int64_t hd, bs;
    std::vector<int32_t> pos;
    int64_t n_head = 6;
  };
  for (const Shape& shape : {Shape{64, 4, {11, 12, 13, 14, 15, 3, 4}}, Shape{128, 8, {27, 28, 29, 30, 31, 3, 4}},
                             Shape{128, 32, {64, 65, 66, 69, 70, 3, 4}}, Shape{32, 4, {11, 12, 13, 14, 15, 3, 4}},
                             Shape{128, 16, {40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 3, 4}},
                             Shape{128, 8, {27, 28, 29, 30, 31, 3, 4}, 14}, Shape{64, 16, {33, 34, 35, 3, 4}, 16},
                             Shape{96, 8, {19, 20, 21, 22, 3, 4}, 2}, Shape{80, 8, {25, 26, 27, 3, 4}, 10}}) {
  const int64_t n_head = shape.n_head, n_head_kv = 2, group = n_head / n_head_kv, hd = shape.hd;
  const int64_t kv_dim = n_head_kv * hd, bs = shape.bs, n_blocks = 8;
  const std::vector<int32_t> table0 = {5, 2, 7, 1}, table1 = {3, 6};
  const std::span<const int32_t> tables[2] = {table0, table1};
  const std::vector<int32_t>& pos = shape.pos;
  const int64_t n = static_cast<int64_t>(pos.size());
  std::vector<int32_t> seq(static_cast<size_t>(n), 0);  // the last two tokens are sequence 1's
  seq[static_cast<size_t>(n - 2)] = seq[static_cast<size_t>(n - 1)] = 1;
  const auto q = randn(static_cast<size_t>(n * n_head * hd), 1);
  const auto kf = randn(static_cast<size_t>(n_blocks * bs * kv_dim), 2);
  const auto vf = randn(static_cast<size_t>(n_blocks * bs * kv_dim), 3);
  for (DType type : {DType::F32, DType::F16, DType::Q8_0}) {
    if (hd % dtype_info(type).block_elems != 0) continue;
    const int64_t rb = row_bytes(type, kv_dim);
    std::vector<uint8_t> k(static_cast<size_t>(n_blocks * bs * rb)), v(k.size());
    std::vector<float> kd(kf.size()), vd(vf.size());  // the cache's values, as stored
    for (int64_t slot = 0; slot < n_blocks * bs; ++slot) {
      quantize_row(type, kf.data() + slot * kv_dim, k.data() + slot * rb, kv_dim);
      quantize_row(type, vf.data() + slot * kv_dim, v.data() + slot * rb, kv_dim);
      dequantize_row(type, k.data() + slot * rb, kd.data() + slot * kv_dim, kv_dim);
      dequantize_row(type, v.data() + slot * rb, vd.data() + slot * kv_dim, kv_dim);
    }
    AttentionArgs a;
    a.q = q.data();
    a.n = n;
    a.n_head = n_head;
    a.n_head_kv = n_head_kv;
    a.head_dim = hd;
    a.scale = 0.2f;
    a.positions = pos.data();
    a.seq = seq.data();
    a.tables = tables;
    a.block_size = bs;
    a.k = k.data();
    a.v = v.data();
    a.row_bytes = rb;
    a.head_stride = row_bytes(type, hd);  // heads side by side in a slot's row
    a.type = type;
    // The same cache with each head's rows together (the KV store's layout): rows of hd values,
    // head h's slots from h * head_stride.
    const int64_t hrb = row_bytes(type, hd), n_slots = n_blocks * bs;
    std::vector<uint8_t> kh(k.size()), vh(v.size());
    for (int64_t h = 0; h < n_head_kv; ++h)
      for (int64_t slot = 0; slot < n_slots; ++slot) {
        std::memcpy(kh.data() + (h * n_slots + slot) * hrb, k.data() + slot * rb + h * hrb, static_cast<size_t>(hrb));
        std::memcpy(vh.data() + (h * n_slots + slot) * hrb, v.data() + slot * rb + h * hrb, static_cast<size_t>(hrb));
      }
    AttentionArgs ah = a;
    ah.k = kh.data();
    ah.v = vh.data();
    ah.row_bytes = hrb;
    ah.head_stride = n_slots * hrb;
    std::vector<float> want(static_cast<size_t>(n * n_head * hd)), got(want.size()), got_h(want.size());
    a.out = want.data();
    make_cpu_reference_backend(1)->attention(a);
    // Every output against the formula in f64, following the block tables.
    for (int64_t t = 0; t < n; ++t)
      for (int64_t h = 0; h < n_head; ++h) {
        const int64_t kvh = h / group, n_keys = pos[t] + 1;
        const auto& table = tables[seq[t]];
        std::vector<double> sc(static_cast<size_t>(n_keys));
        double mx = -1e30, z = 0;
        for (int64_t j = 0; j < n_keys; ++j) {
          const int64_t slot = table[j / bs] * bs + j % bs;
          double d = 0;
          for (int64_t i = 0; i < hd; ++i) d += double(q[(t * n_head + h) * hd + i]) * kd[slot * kv_dim + kvh * hd + i];
          sc[j] = d * 0.2;
          mx = std::max(mx, sc[j]);
        }
        for (double& e : sc) z += (e = std::exp(e - mx));
        for (int64_t i = 0; i < hd; i += 7) {
          double o = 0;
          for (int64_t j = 0; j < n_keys; ++j)
            o += sc[j] / z * vd[(table[j / bs] * bs + j % bs) * kv_dim + kvh * hd + i];
          ASSERT_NEAR(want[(t * n_head + h) * hd + i], o, 1e-5) << dtype_name(type) << " t" << t << " h" << h;
        }
      }
    for (Isa isa : kIsas) {
      if (!isa_supported(isa)) continue;
      // Every output starts as NaN: a lane the kernel leaves unwritten fails (not the last run's).
      std::fill(got.begin(), got.end(), std::nanf(""));
      std::fill(got_h.begin(), got_h.end(), std::nanf(""));
      a.out = got.data();
      auto be = make_cpu_backend(2, isa);
      be->attention(a);
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], 1e-5) << isa_name(isa) << " hd " << hd << " " << dtype_name(type) << " " << i;
      ah.out = got_h.data();
      be->attention(ah);
      ASSERT_EQ(std::memcmp(got_h.data(), got.data(), got.size() * sizeof(float)), 0)
          << isa_name(isa) << " hd " << hd << " " << dtype_name(type) << ": heads-together layout";
      // Consecutive positions of one sequence go through the kernel together (runs of up to 8);
      // each token's result is bit for bit what it gets alone.
      std::vector<float> one(static_cast<size_t>(n_head * hd));
      for (int64_t t = 0; t < n; ++t) {
        AttentionArgs a1 = a;
        a1.q = q.data() + t * n_head * hd;
        a1.n = 1;
        a1.positions = pos.data() + t;
        a1.seq = seq.data() + t;
        a1.out = one.data();
        be->attention(a1);
        for (int64_t i = 0; i < n_head * hd; ++i)
          ASSERT_EQ(std::memcmp(&one[i], &got[t * n_head * hd + i], sizeof(float)), 0)
              << isa_name(isa) << " hd " << hd << " " << dtype_name(type) << " token " << t << " at " << i;
      }
    }
  }
  }
}

TEST(CpuFeatures, ParseAndNames) {
  for (Isa isa : kIsas) EXPECT_EQ(parse_isa(isa_name(isa)), isa);
  EXPECT_FALSE(parse_isa("sse9").has_value());
  EXPECT_TRUE(isa_supported(Isa::kScalar));
  EXPECT_TRUE(isa_supported(best_isa()));
}

}  // namespace
}  // namespace infera::cpu
