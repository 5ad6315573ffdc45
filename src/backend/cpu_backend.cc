#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "backend/backend.h"
#include "base/check.h"
#include "base/thread_pool.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/packed.h"
#include "kernels/reference/ops.h"
#include "tensor/quant.h"

namespace infera {

namespace {

void get_rows_dequant(const TensorView& w, std::span<const int32_t> ids, float* out) {
  const int64_t n = w.ne[0];
  for (size_t t = 0; t < ids.size(); ++t) {
    CHECK(ids[t] >= 0 && ids[t] < w.n_rows());
    dequantize_row(w.type, w.row(ids[t]), out + static_cast<int64_t>(t) * n, n);
  }
}

// Scratch of one attending thread.
struct AttendScratch {
  std::vector<float> scores, kbuf, vbuf;
};

// Position j's K (or V) head row as f32: in place for an f32 cache, else dequantized into buf.
inline const float* kv_head(const AttentionArgs& a, const uint8_t* base, int64_t j, int64_t head_off,
                            const std::span<const int32_t>& table, float* buf) {
  const int64_t slot = table[static_cast<size_t>(j / a.block_size)] * a.block_size + j % a.block_size;
  const uint8_t* p = base + slot * a.row_bytes + head_off;
  if (a.type == DType::F32) return reinterpret_cast<const float*>(p);
  dequantize_row(a.type, p, buf, a.head_dim);
  return buf;
}

// Query token t against KV head kvh, for the n_head / n_head_kv query heads sharing it: each key
// and value row is read (and converted) once for the whole group.
template <typename Dot, typename Axpy>
void attend_group(const AttentionArgs& a, int64_t t, int64_t kvh, AttendScratch& s, Dot dot, Axpy axpy) {
  const int64_t hd = a.head_dim, q_dim = a.n_head * hd, group = a.n_head / a.n_head_kv;
  const int64_t n_keys = static_cast<int64_t>(a.positions[t]) + 1;
  const std::span<const int32_t>& table = a.tables[a.seq[t]];
  const int64_t head_off = kvh * a.head_stride;
  s.scores.resize(static_cast<size_t>(group * n_keys));
  s.kbuf.resize(static_cast<size_t>(hd));
  s.vbuf.resize(static_cast<size_t>(hd));
  const float* q0 = a.q + t * q_dim + kvh * group * hd;
  for (int64_t j = 0; j < n_keys; ++j) {
    const float* kr = kv_head(a, a.k, j, head_off, table, s.kbuf.data());
    for (int64_t g = 0; g < group; ++g) s.scores[static_cast<size_t>(g * n_keys + j)] = dot(q0 + g * hd, kr, hd) * a.scale;
  }
  for (int64_t g = 0; g < group; ++g) ref::softmax(s.scores.data() + g * n_keys, n_keys);
  float* o0 = a.out + t * q_dim + kvh * group * hd;
  std::fill_n(o0, group * hd, 0.0f);
  for (int64_t j = 0; j < n_keys; ++j) {
    const float* vr = kv_head(a, a.v, j, head_off, table, s.vbuf.data());
    for (int64_t g = 0; g < group; ++g) axpy(s.scores[static_cast<size_t>(g * n_keys + j)], vr, o0 + g * hd, hd);
  }
}

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
    get_rows_dequant(w, ids, out);
  }

  void attention(const AttentionArgs& a) override {
    AttendScratch s;
    auto axpy = [](float w, const float* x, float* y, int64_t n) {
      for (int64_t d = 0; d < n; ++d) y[d] += w * x[d];
    };
    for (int64_t t = 0; t < a.n; ++t)
      for (int64_t h = 0; h < a.n_head_kv; ++h) attend_group(a, t, h, s, ref::dot, axpy);
  }

  void swiglu(const float* gate, const float* up, float* out, int64_t n) override { ref::swiglu(gate, up, out, n); }
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) override { pool_.parallel_for(n, fn); }

 private:
  ThreadPool pool_;
};

// Activations of one prompt tile are kept under this many bytes so that every weight row of the
// tile finds them in L2.
constexpr int64_t kTileBytes = 512 * 1024;
// Output rows are handed to threads in multiples of this (keeps each thread's writes apart).
constexpr int64_t kRowQuantum = 16;
// Weights one matmul_many call takes in one pass.
constexpr size_t kMaxMany = 4;

class CpuBackend final : public Backend {
 public:
  CpuBackend(int n_threads, const cpu::Kernels& k, std::string name) : pool_(n_threads), k_(k), name_(std::move(name)) {}
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) override { pool_.parallel_for(n, fn); }
  std::string_view name() const override { return name_; }

  void matmul(const TensorView& w, const float* x, int64_t n_tok, float* y) override {
    const TensorView* ws[1] = {&w};
    float* ys[1] = {y};
    matmul_many(ws, x, n_tok, ys);
  }

  // The activations are converted once for all the weights (they share x, hence n_in and, for
  // the types in one model, the activation form), and each prompt tile's rows of all the weights
  // are split over the threads in one parallel loop.
  void matmul_many(std::span<const TensorView* const> ws, const float* x, int64_t n_tok,
                   std::span<float* const> ys) override {
    CHECK(ws.size() == ys.size() && !ws.empty());
    if (ws.size() > kMaxMany) {
      for (size_t j = 0; j < ws.size(); ++j) matmul(*ws[j], x, n_tok, ys[j]);
      return;
    }
    struct Part {
      cpu::RowsFn fn;
      const uint8_t* w;
      int64_t n_out, q0, q1;  // its row quanta in the joint numbering
      float* y;
    };
    Part parts[kMaxMany];
    const int64_t n_in = ws[0]->ne[0];
    const cpu::ActForm form = k_.act[cpu::dtype_index(ws[0]->type)];
    int64_t quanta = 0;
    for (size_t i = 0; i < ws.size(); ++i) {
      const TensorView& w = *ws[i];
      const int ti = cpu::dtype_index(w.type);
      CHECK(ti < cpu::kMaxDType);
      const bool packed = w.packed && k_.packed_rows[ti];
      const cpu::RowsFn fn = packed ? k_.packed_rows[ti] : k_.rows[ti];
      if (!fn || w.ne[0] != n_in || k_.act[ti] != form) {  // not one pass: each on its own
        if (ws.size() == 1) return matmul_dequant(w, x, n_tok, ys[0]);  // alone, only !fn gets here
        for (size_t j = 0; j < ws.size(); ++j) matmul(*ws[j], x, n_tok, ys[j]);
        return;
      }
      const int64_t n_out = w.n_rows(), nq = (n_out + kRowQuantum - 1) / kRowQuantum;
      parts[i] = {fn, packed ? w.packed : w.data, n_out, quanta, quanta + nq, ys[i]};
      quanta += nq;
    }
    const void* xa = x;
    int64_t x_row_bytes = n_in * static_cast<int64_t>(sizeof(float));
    if (form == cpu::ActForm::kQ8A) {
      CHECK(n_in % 32 == 0);
      x_row_bytes = cpu::q8a_row_bytes(n_in);
      act_.resize(static_cast<size_t>(n_tok * x_row_bytes));
      const auto quantize = [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) k_.quantize_q8a(x + t * n_in, act_.data() + t * x_row_bytes, n_in);
      };
      if (n_tok >= 8) pool_.parallel_for(n_tok, quantize);
      else quantize(0, n_tok);
      xa = act_.data();
    }
    // Token tiles of activations that stay in L2, in whole groups of 16 (the AMX tile; two of the
    // VNNI kernels' groups of 8) where they hold as many. The AMX kernels convert each row group
    // of weights once per call (Q4_0 / K-type widening, F16 / BF16 splitting), so they get at
    // least two tiles of 16 (f32 rows of 8,960 values: 1.1 MiB; AMX CPUs have 2 MiB of L2); the
    // int8 tiles take 64 tokens whatever the row length (pp512 on a Sapphire Rapids-class CPU,
    // Q4_0, alternating: 256-269 t/s with 64, 252-264 with 128, 236-238 with 256, 231 with the
    // L2 rule, whose 32-token tiles of 8,960-long rows widen each row group for only two tiles).
    // At the amx level a last tile below the tiles' minimum joins the one before (95 tokens: one
    // call of 95, 80 of them on tiles, instead of 64 + 31 with the 31 on AVX-512).
    const bool amx = k_.isa == cpu::Isa::kAmx;
    const int64_t fit = kTileBytes / x_row_bytes;
    int64_t tile = fit >= 16 ? fit / 16 * 16 : std::max<int64_t>(4, fit / 4 * 4);
    if (amx) tile = form == cpu::ActForm::kQ8A && cpu::amx_kernels_verified() ? 64 : std::max<int64_t>(32, tile / 16 * 16);
    const size_t n_parts = ws.size();
    for (int64_t t0 = 0, nt = 0; t0 < n_tok; t0 += nt) {
      nt = std::min(tile, n_tok - t0);
      if (amx && n_tok - t0 - nt < cpu::kAmxMinTokens) nt = n_tok - t0;
      const void* xt = static_cast<const uint8_t*>(xa) + t0 * x_row_bytes;
      pool_.parallel_for(quanta, [&](int64_t q0, int64_t q1) {
        for (size_t i = 0; i < n_parts; ++i) {
          const Part& p = parts[i];
          const int64_t a = std::max(q0, p.q0), b = std::min(q1, p.q1);
          if (a >= b) continue;
          p.fn(p.w, n_in, (a - p.q0) * kRowQuantum, std::min(p.n_out, (b - p.q0) * kRowQuantum), xt, x_row_bytes, nt,
               p.y + t0 * p.n_out, p.n_out);
        }
      });
    }
  }

  std::shared_ptr<const uint8_t> pack(const TensorView& w) override {
    const int64_t n_in = w.ne[0], n_out = w.n_rows();
    const int ti = cpu::dtype_index(w.type);
    if (ti >= cpu::kMaxDType || !k_.packed_rows[ti] || !cpu::packable(w.type, n_in, n_out)) return nullptr;
    const auto bytes = static_cast<size_t>(cpu::packed_bytes(w.type, n_in, n_out));
    auto* p = static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64));
    CHECK(p != nullptr);
    // Row groups packed in parallel: the whole model's weights pass through here at load time.
    const int64_t groups = n_out / cpu::kPackRows, gb = cpu::packed_group_bytes(w.type, n_in);
    pool_.parallel_for(groups, [&](int64_t g0, int64_t g1) {
      cpu::pack_weights(w.type, w.row(g0 * cpu::kPackRows), n_in, (g1 - g0) * cpu::kPackRows, p + g0 * gb);
    });
    return std::shared_ptr<const uint8_t>(p, [](const uint8_t* q) { std::free(const_cast<uint8_t*>(q)); });
  }

  void get_rows(const TensorView& w, std::span<const int32_t> ids, float* out) override {
    get_rows_dequant(w, ids, out);
  }

  void attention(const AttentionArgs& a) override {
    const int64_t pairs = a.n * a.n_head_kv;
    if (k_.attend_group) {  // one kernel call per group (f32, f16 and q8_0 rows)
      // Runs of up to kMaxAttnTokens tokens at consecutive positions of one sequence (prompt
      // chunks) share one kernel call per KV head, which reads each K and V row once for all.
      std::vector<std::pair<int64_t, int64_t>> runs;  // first token, count
      for (int64_t t = 0; t < a.n; ++t) {
        if (!runs.empty()) {
          auto& [t0, cnt] = runs.back();
          if (cnt < cpu::kMaxAttnTokens && a.seq[t] == a.seq[t0] && a.positions[t] == a.positions[t0] + cnt) {
            ++cnt;
            continue;
          }
        }
        runs.emplace_back(t, 1);
      }
      const int64_t jobs = static_cast<int64_t>(runs.size()) * a.n_head_kv;
      pool_.parallel_for(jobs, [&](int64_t p0, int64_t p1) {
        thread_local std::vector<const void*> kr, vr;
        thread_local std::vector<float> scores;
        const int64_t hd = a.head_dim, group = a.n_head / a.n_head_kv, q_dim = a.n_head * hd;
        for (int64_t p = p0; p < p1; ++p) {
          const auto [t0, cnt] = runs[static_cast<size_t>(p / a.n_head_kv)];
          const int64_t kvh = p % a.n_head_kv, last = t0 + cnt - 1, n_keys = int64_t{a.positions[last]} + 1;
          const std::span<const int32_t>& table = a.tables[a.seq[t0]];
          kr.resize(static_cast<size_t>(n_keys));
          vr.resize(static_cast<size_t>(n_keys));
          scores.resize(static_cast<size_t>(cnt * group * n_keys));
          const int64_t off = kvh * a.head_stride;
          for (int64_t j = 0; j < n_keys; ++j) {
            const int64_t slot = table[static_cast<size_t>(j / a.block_size)] * a.block_size + j % a.block_size;
            kr[static_cast<size_t>(j)] = a.k + slot * a.row_bytes + off;
            vr[static_cast<size_t>(j)] = a.v + slot * a.row_bytes + off;
          }
          cpu::AttnGroup g;
          g.type = a.type;
          g.q = a.q + t0 * q_dim + kvh * group * hd;
          g.group = group;
          g.hd = hd;
          g.scale = a.scale;
          g.k = kr.data();
          g.v = vr.data();
          g.n_keys = n_keys;
          g.tokens = cnt;
          g.q_stride = q_dim;
          g.out_stride = q_dim;
          g.scores = scores.data();
          g.out = a.out + t0 * q_dim + kvh * group * hd;
          k_.attend_group(g);
        }
      });
      return;
    }
    pool_.parallel_for(pairs, [&](int64_t p0, int64_t p1) {
      thread_local AttendScratch s;  // kept by each pool thread: no allocation per layer and step
      for (int64_t p = p0; p < p1; ++p) attend_group(a, p / a.n_head_kv, p % a.n_head_kv, s, k_.dot_f32, k_.axpy_f32);
    });
  }

  void swiglu(const float* gate, const float* up, float* out, int64_t n) override {
    // Chunks of 4096 elements (a multiple of every vector width) over the threads.
    constexpr int64_t kChunk = 4096;
    pool_.parallel_for((n + kChunk - 1) / kChunk, [&](int64_t c0, int64_t c1) {
      const int64_t i0 = c0 * kChunk, i1 = std::min(n, c1 * kChunk);
      k_.swiglu_f32(gate + i0, up + i0, out + i0, i1 - i0);
    });
  }

 private:
  // Types without a kernel of their own (none of the weight types today; kept for a table that
  // lacks one): each row dequantized to f32, then the f32 kernel.
  void matmul_dequant(const TensorView& w, const float* x, int64_t n_tok, float* y) {
    const int64_t n_in = w.ne[0], n_out = w.n_rows();
    const cpu::RowsFn f32 = k_.rows[cpu::dtype_index(DType::F32)];
    pool_.parallel_for(n_out, [&](int64_t r0, int64_t r1) {
      std::vector<float> row(static_cast<size_t>(n_in));
      for (int64_t r = r0; r < r1; ++r) {
        dequantize_row(w.type, w.row(r), row.data(), n_in);
        // The dequantized row is row 0 of a one-row f32 matrix whose output column starts at y + r.
        f32(reinterpret_cast<const uint8_t*>(row.data()), n_in, 0, 1, x, n_in * static_cast<int64_t>(sizeof(float)),
            n_tok, y + r, n_out);
      }
    });
  }

  ThreadPool pool_;
  const cpu::Kernels& k_;
  std::string name_;
  std::vector<uint8_t> act_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_reference_backend(int n_threads) {
  return std::make_unique<CpuReferenceBackend>(n_threads);
}

std::unique_ptr<Backend> make_cpu_backend(int n_threads, cpu::Isa isa) {
  return std::make_unique<CpuBackend>(n_threads, cpu::kernels_for(isa), "cpu-" + std::string(cpu::isa_name(isa)));
}

std::unique_ptr<Backend> make_cpu_backend(int n_threads, const cpu::Kernels& kernels, std::string name) {
  return std::make_unique<CpuBackend>(n_threads, kernels, std::move(name));
}

}  // namespace infera
