// Matrix-vector and matrix-matrix kernel throughput per ISA level and weight type (Google Benchmark).
// "mem" cases stream a 50-100 MB matrix from memory for one token, as decode does; "memb8" for 8
// tokens at once, as a batched decode step does.
// "L2" cases use a weight matrix that stays in cache, so they show the kernel's compute speed (bytes
// of weights per second): decode is memory-bound only when this is well above the machine's memory
// bandwidth per core. "pp" cases multiply by 64 activation rows at once (prompt batches).
// Rows are 1,536 elements long (R1-1.5B's hidden size); KB_NIN=8960 runs every case with that
// length instead (its FFN down projection).
// "attn" cases: one layer's attention of a batched decode step (8 sequences of L keys each, R1-1.5B's
// 12 query and 2 KV heads of 128, blocks of 16 slots scattered by the block tables, 2 threads) per
// KV cache type, rotating over enough layers' caches that K and V come from memory, as in decode;
// "interleaved" lays a slot's two heads side by side instead of each head's rows together;
// KB_ATTN_LAYERS=1 keeps one layer's cache (L3-resident at L <= 1,024) to show the compute speed.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>
#include <span>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/packed.h"
#include "tensor/quant.h"

namespace infera {
namespace {

struct Matrix {
  std::vector<uint8_t> bytes;
  TensorView view;
};

Matrix make(DType t, int64_t n_in, int64_t n_out) {
  std::mt19937 g(1);
  std::normal_distribution<float> d(0, 0.02f);
  std::vector<float> row(static_cast<size_t>(n_in));
  Matrix m;
  const int64_t rb = row_bytes(t, n_in);
  m.bytes.resize(static_cast<size_t>(rb * n_out));
  for (int64_t r = 0; r < n_out; ++r) {
    for (float& x : row) x = d(g);
    quantize_row(t, row.data(), m.bytes.data() + r * rb, n_in);
  }
  m.view.type = t;
  m.view.n_dims = 2;
  m.view.ne = {n_in, n_out, 1, 1};
  m.view.data = m.bytes.data();
  m.view.nbytes = m.bytes.size();
  return m;
}

void BM_Matmul(benchmark::State& st, DType t, cpu::Isa isa, int64_t n_out, int64_t n_tok, bool packed, int threads) {
  if (!cpu::isa_supported(isa)) {
    st.SkipWithError("ISA not supported");
    return;
  }
  const int64_t n_in = std::getenv("KB_NIN") ? std::atoll(std::getenv("KB_NIN")) : 1536;
  Matrix m = make(t, n_in, n_out);
  std::vector<float> x(static_cast<size_t>(n_in * n_tok), 0.5f), y(static_cast<size_t>(n_out * n_tok));
  auto be = make_cpu_backend(threads, isa);
  std::shared_ptr<const uint8_t> p;
  if (packed) {
    p = be->pack(m.view);
    if (!p) {
      st.SkipWithError("no packed form");
      return;
    }
    m.view.packed = p.get();
  }
  for (auto _ : st) {
    be->matmul(m.view, x.data(), n_tok, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * static_cast<int64_t>(m.bytes.size()));
  st.counters["tok/s-equiv"] = benchmark::Counter(static_cast<double>(st.iterations() * n_tok * n_out * n_in) /
                                                      1.777e9, benchmark::Counter::kIsRate);
}

void BM_AttentionDecode(benchmark::State& st, DType t, cpu::Isa isa, int64_t n_keys, bool heads_together) {
  if (!cpu::isa_supported(isa)) {
    st.SkipWithError("ISA not supported");
    return;
  }
  constexpr int64_t kSeqs = 8, kHead = 12, kHeadKv = 2, kHd = 128, kBs = 16;
  const int64_t kv_dim = kHeadKv * kHd, rb = row_bytes(t, kv_dim), blocks_per_seq = (n_keys + kBs - 1) / kBs;
  const int64_t n_blocks = kSeqs * blocks_per_seq, layer_bytes = n_blocks * kBs * rb;
  const int64_t layers = std::getenv("KB_ATTN_LAYERS") ? std::atoll(std::getenv("KB_ATTN_LAYERS"))
                                                       : std::max<int64_t>(2, (256 << 20) / (2 * layer_bytes) + 1);  // K + V over 256 MiB
  std::mt19937 g(7);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> row(static_cast<size_t>(kv_dim));
  std::vector<uint8_t> k(static_cast<size_t>(layers * layer_bytes)), v(k.size());
  for (int64_t s = 0; s < layers * n_blocks * kBs; ++s) {
    for (float& x : row) x = d(g);
    quantize_row(t, row.data(), k.data() + s * rb, kv_dim);
    quantize_row(t, row.data(), v.data() + s * rb, kv_dim);
  }
  std::vector<int32_t> perm(static_cast<size_t>(n_blocks));
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), g);
  std::vector<std::span<const int32_t>> tables;
  for (int64_t s = 0; s < kSeqs; ++s) tables.emplace_back(perm.data() + s * blocks_per_seq, blocks_per_seq);
  std::vector<int32_t> pos(kSeqs, static_cast<int32_t>(n_keys - 1)), seq(kSeqs);
  std::iota(seq.begin(), seq.end(), 0);
  std::vector<float> q(static_cast<size_t>(kSeqs * kHead * kHd)), out(q.size());
  for (float& x : q) x = d(g) * 0.1f;
  auto be = make_cpu_backend(2, isa);
  AttentionArgs a;
  a.q = q.data();
  a.n = kSeqs;
  a.n_head = kHead;
  a.n_head_kv = kHeadKv;
  a.head_dim = kHd;
  a.scale = 0.088f;
  a.positions = pos.data();
  a.seq = seq.data();
  a.tables = tables.data();
  a.block_size = kBs;
  if (heads_together) {  // the KV store's layout: each head's rows together
    a.row_bytes = row_bytes(t, kHd);
    a.head_stride = n_blocks * kBs * a.row_bytes;
  } else {  // a slot's heads side by side
    a.row_bytes = rb;
    a.head_stride = row_bytes(t, kHd);
  }
  a.type = t;
  a.out = out.data();
  int64_t layer = 0;
  for (auto _ : st) {
    a.k = k.data() + layer * layer_bytes;
    a.v = v.data() + layer * layer_bytes;
    layer = (layer + 1) % layers;
    be->attention(a);
    benchmark::DoNotOptimize(out.data());
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations()) * 2 * kSeqs * n_keys * row_bytes(t, kv_dim));
  st.counters["keys/s"] = benchmark::Counter(static_cast<double>(st.iterations() * kSeqs * n_keys), benchmark::Counter::kIsRate);
}

void register_all() {
  for (cpu::Isa isa : {cpu::Isa::kAvx2, cpu::Isa::kAvx512})
    for (DType t : {DType::F32, DType::F16, DType::Q8_0})
      for (int64_t n_keys : {256, 1024, 4096})
        for (bool together : {true, false})
          benchmark::RegisterBenchmark(("attn/L" + std::to_string(n_keys) + "/" + std::string(dtype_name(t)) + "/" +
                                        std::string(cpu::isa_name(isa)) + (together ? "" : "/interleaved"))
                                           .c_str(),
                                       BM_AttentionDecode, t, isa, n_keys, together);
  for (cpu::Isa isa : {cpu::Isa::kScalar, cpu::Isa::kAvx2, cpu::Isa::kAvx512, cpu::Isa::kAmx}) {
    for (DType t : {DType::F16, DType::Q8_0, DType::Q4_0, DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q6_K}) {
      const std::string base = std::string(dtype_name(t)) + "/" + std::string(cpu::isa_name(isa));
      for (bool packed : {false, true}) {
        if (packed && !cpu::packable(t, 1536, 256)) continue;
        const std::string b = base + (packed ? "/packed" : "");
        benchmark::RegisterBenchmark(("L2/" + b).c_str(), BM_Matmul, t, isa, 256, 1, packed, 1);
        benchmark::RegisterBenchmark(("b8/" + b).c_str(), BM_Matmul, t, isa, 256, 8, packed, 1);  // batched decode
        benchmark::RegisterBenchmark(("pp64/" + b).c_str(), BM_Matmul, t, isa, 256, 64, packed, 1);
        // From memory: a matrix far larger than the caches, one token, 1 and 2 threads (decode).
        for (int th : {1, 2})
          benchmark::RegisterBenchmark(("mem/t" + std::to_string(th) + "/" + b).c_str(), BM_Matmul, t, isa, 65536, 1,
                                       packed, th);
        // Batched decode from memory: 8 tokens, 2 threads (compute and the weight stream overlap).
        benchmark::RegisterBenchmark(("memb8/t2/" + b).c_str(), BM_Matmul, t, isa, 65536, 8, packed, 2);
      }
    }
  }
}

}  // namespace
}  // namespace infera

int main(int argc, char** argv) {
  infera::register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
