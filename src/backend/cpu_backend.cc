#include <vector>

#include "backend/backend.h"
#include "base/check.h"
#include "base/thread_pool.h"
#include "kernels/reference/ops.h"
#include "tensor/quant.h"

namespace infera {

namespace {

class CpuReferenceBackend final : public Backend {
 public:
  explicit CpuReferenceBackend(int n_threads) : pool_(n_threads) {}
  std::string_view name() const override { return "cpu-reference"; }

  void matmul(const TensorView& w, const float* x, int64_t n_tok, float* y) override {
    const int64_t n_in = w.ne[0], n_out = w.n_rows();
    pool_.parallel_for(n_out, [&](int64_t r0, int64_t r1) {
      std::vector<float> row(static_cast<size_t>(n_in));
      for (int64_t r = r0; r < r1; ++r) {
        dequantize_row(w.type, w.row(r), row.data(), n_in);
        for (int64_t t = 0; t < n_tok; ++t) y[t * n_out + r] = ref::dot(row.data(), x + t * n_in, n_in);
      }
    });
  }

  void get_rows(const TensorView& w, std::span<const int32_t> ids, float* out) override {
    const int64_t n = w.ne[0];
    for (size_t t = 0; t < ids.size(); ++t) {
      CHECK(ids[t] >= 0 && ids[t] < w.n_rows());
      dequantize_row(w.type, w.row(ids[t]), out + static_cast<int64_t>(t) * n, n);
    }
  }

 private:
  ThreadPool pool_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_reference_backend(int n_threads) {
  return std::make_unique<CpuReferenceBackend>(n_threads);
}

}  // namespace infera
