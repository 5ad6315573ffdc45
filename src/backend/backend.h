// The compute interface architecture files call for their heavy operations. The CPU reference
// backend is here now; optimized CPU kernels and CUDA slot in behind the same interface without
// touching model code.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "kernels/cpu/cpu_features.h"
#include "tensor/tensor_view.h"

namespace infera::cpu {
struct Kernels;
}

namespace infera {

// Causal attention of n query tokens over a paged KV cache. Token t (of sequence seq[t], at
// position positions[t]) attends to positions 0..positions[t] of its sequence; position p's K/V
// row is slot tables[seq[t]][p / block_size] * block_size + p % block_size of the layer's arrays.
struct AttentionArgs {
  const float* q = nullptr;  // [n, n_head * head_dim], rotated
  int64_t n = 0, n_head = 0, n_head_kv = 0, head_dim = 0;
  float scale = 1;
  const int32_t* positions = nullptr;            // [n]
  const int32_t* seq = nullptr;                  // [n]
  const std::span<const int32_t>* tables = nullptr;  // per sequence
  int64_t block_size = 16;
  // Slot s's key row of KV head h ([head_dim] of `type`) at k + h * head_stride + s * row_bytes
  // (the KV store keeps each head's rows together: head_stride = its slots * row_bytes).
  const uint8_t* k = nullptr;
  const uint8_t* v = nullptr;  // likewise for values
  int64_t row_bytes = 0, head_stride = 0;
  DType type = DType::F32;  // F32, F16 or Q8_0
  float* out = nullptr;     // [n, n_head * head_dim]
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string_view name() const = 0;

  // y[t, r] = sum_i W[r, i] * x[t, i].
  // w: ne = {n_in, n_out} (any weight dtype); x: [n_tok, n_in] f32; y: [n_tok, n_out] f32.
  // A view whose `packed` this backend made (pack) is read from there.
  virtual void matmul(const TensorView& w, const float* x, int64_t n_tok, float* y) = 0;

  // matmul of several weights over the same input x (e.g. Wq, Wk, Wv): ys[i] = ws[i] x. A backend
  // may prepare x once and split all the rows over its threads in one pass.
  virtual void matmul_many(std::span<const TensorView* const> ws, const float* x, int64_t n_tok,
                           std::span<float* const> ys) {
    for (size_t i = 0; i < ws.size(); ++i) matmul(*ws[i], x, n_tok, ys[i]);
  }

  // A copy of matmul weight w in this backend's faster layout, made once at load time; null when
  // the backend has none for w's type and shape. The caller keeps it alive and sets w.packed to
  // its bytes for every matmul through this backend.
  virtual std::shared_ptr<const uint8_t> pack(const TensorView& w) {
    (void)w;
    return nullptr;
  }

  // out[t, :] = row ids[t] of w, dequantized. w: ne = {n_embd, n_rows}; out: [ids.size(), n_embd].
  // Ids must be in range (callers validate user input).
  virtual void get_rows(const TensorView& w, std::span<const int32_t> ids, float* out) = 0;

  // Causal grouped-query attention over the paged cache (see AttentionArgs).
  virtual void attention(const AttentionArgs& a) = 0;

  // out[i] = silu(gate[i]) * up[i] for i < n (out may alias gate).
  virtual void swiglu(const float* gate, const float* up, float* out, int64_t n) = 0;

  // fn over [0, n) split across this backend's threads (the engine samples a step's sequences
  // this way); fn must write disjoint outputs. Default: one call on the caller's thread.
  virtual void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) { fn(0, n); }
};


// Reference CPU backend: dequantizes each weight row once and dots it with every token, splitting
// rows over n_threads threads. Results do not depend on the thread count.
std::unique_ptr<Backend> make_cpu_reference_backend(int n_threads);

// The CPU backend: the kernel set of `isa` (cpu/kernels.h), rows split over n_threads threads, prompt
// batches tiled so each tile's activations stay in cache. Results do not depend on the thread count.
std::unique_ptr<Backend> make_cpu_backend(int n_threads, cpu::Isa isa = cpu::default_isa());
// The same over a given kernel table, which must outlive the backend (tests: the AMX level's
// kernels on emulated tiles, cpu::fill_amx_emulated_kernels).
std::unique_ptr<Backend> make_cpu_backend(int n_threads, const cpu::Kernels& kernels, std::string name);

}  // namespace infera
