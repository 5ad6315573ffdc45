// A non-owning view of a stored tensor (usually inside a memory-mapped model file).
//
// Dimensions follow GGML order: ne[0] is the fastest-varying (the row length), so a PyTorch
// weight of shape [out, in] has ne = {in, out}. Rows are contiguous: row r starts at
// data + r * row_bytes(type, ne[0]).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "tensor/dtype.h"

namespace infera {

struct TensorView {
  DType type = DType::F32;
  int n_dims = 0;
  std::array<int64_t, 4> ne = {1, 1, 1, 1};
  const uint8_t* data = nullptr;
  uint64_t nbytes = 0;
  // The same values in the layout of the backend that made it (Backend::pack), or null. Owned by
  // whoever owns the view's model; data stays the source of truth for every other use.
  const uint8_t* packed = nullptr;

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  int64_t row_size() const { return row_bytes(type, ne[0]); }
  const uint8_t* row(int64_t r) const { return data + r * row_size(); }
  bool valid() const { return data != nullptr; }
};

// "[256, 1088]" (GGML order).
std::string shape_string(const TensorView& t);

}  // namespace infera
