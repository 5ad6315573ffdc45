// Hugging Face safetensors reader (single file or sharded with model.safetensors.index.json).
//
// File layout: u64 LE header length N | N bytes of JSON | data.
//   {"name": {"dtype": "BF16", "shape": [out, in], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"format": "pt"}}
// Offsets are relative to the first byte after the header. Every offset, size and dtype is
// validated before use; tensors are exposed as TensorViews in GGML dimension order (reversed
// shape), so an HF [out, in] weight has ne = {in, out}, like its GGUF twin.
#pragma once

#include <functional>
#include <map>
#include <span>
#include <memory>
#include <string>
#include <vector>

#include "base/mapped_file.h"
#include "base/status.h"
#include "tensor/tensor_view.h"

namespace infera {

struct SafetensorsTensor {
  std::string name;
  std::string dtype;           // as written: "BF16", "F16", "F32", ...
  std::vector<int64_t> shape;  // PyTorch order
  TensorView view;             // GGML order; data into the mapped file
  int file_index = 0;
};

class SafetensorsModel {
 public:
  // `path`: a .safetensors file, a model.safetensors.index.json, or a folder holding either.
  static Result<SafetensorsModel> open(const std::string& path);

  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* find(const std::string& name) const;
  const std::vector<std::string>& file_paths() const { return paths_; }

 private:
  Status add_file(const std::string& path, const std::vector<std::string>* expect_names);

  std::vector<std::unique_ptr<MappedFile>> files_;
  std::vector<std::string> paths_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, size_t> index_;
};

// Writes one safetensors file; tensors are sorted by name (as PyTorch does). Data is produced by
// `fill` per tensor, in the order of `tensors` as given.
struct SafetensorsSpec {
  std::string name;
  std::string dtype;  // "F32", "F16" or "BF16"
  std::vector<int64_t> shape;
};
Status write_safetensors(const std::string& path, const std::vector<SafetensorsSpec>& tensors,
                         const std::function<Status(size_t index, std::span<uint8_t> out)>& fill);

}  // namespace infera
