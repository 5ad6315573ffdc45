// Scalar reference kernels: plain, obviously-correct loops in f32. Every optimized kernel is tested
// against these (see tests/unit/ops_test.cc). Nothing here knows what a model is.
#pragma once

#include <cstdint>

namespace infera::ref {

// sum_i a[i] * b[i], accumulated in 8 interleaved f32 lanes (lane i % 8), then summed pairwise.
float dot(const float* a, const float* b, int64_t n);

// y = x / sqrt(mean(x^2) + eps) * w; the mean is accumulated in f64. x, y, w: [n]. y may alias x.
void rms_norm(const float* x, const float* w, float eps, float* y, int64_t n);

// Rotates the first n_rot dims of one head vector x[head_dim] in place by per-pair cos/sin.
// neox: pair i = (x[i], x[i + n_rot/2]); otherwise pair i = (x[2i], x[2i+1]).
// cs: [n_rot/2][2] = {cos, sin} of each pair's angle.
void rope(float* x, const float* cs, int64_t n_rot, bool neox);

// In place: x = softmax(x) over n entries (max-subtracted, sum in f32).
void softmax(float* x, int64_t n);

// out[i] = silu(gate[i]) * up[i], silu(z) = z / (1 + exp(-z)).
void swiglu(const float* gate, const float* up, float* out, int64_t n);

}  // namespace infera::ref
