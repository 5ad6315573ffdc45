// Matrix-vector and matrix-matrix kernel throughput per ISA level and weight type (Google Benchmark).
// "mem" cases stream a 50-100 MB matrix from memory for one token, as decode does; "memb8" for 8
// tokens at once, as a batched decode step does.
// "L2" cases use a weight matrix that stays in cache, so they show the kernel's compute speed (bytes
// of weights per second): decode is memory-bound only when this is well above the machine's memory
// bandwidth per core. "pp" cases multiply by 64 activation rows at once (prompt batches).
// Rows are 1,536 elements long (R1-1.5B's hidden size); KB_NIN=8960 runs every case with that
// length instead (its FFN down projection).
#include <benchmark/benchmark.h>

#include <cstdlib>
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

void register_all() {
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
