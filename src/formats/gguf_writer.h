// Writes GGUF v3 files: metadata in insertion order, tensors aligned to general.alignment (32).
//
//   GgufWriter w;
//   w.add_kv("general.architecture", GgufValue::of_string("qwen2"));
//   w.add_tensor({"token_embd.weight", DType::Q8_0, {256, 1088}});
//   w.write("out.gguf", [&](size_t i, std::span<uint8_t> out) { ...fill out...; return Status::ok(); });
//
// Tensor data is produced one tensor at a time by the callback, so a multi-GB model never has to be
// held in memory at once.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "formats/gguf.h"

namespace infera {

struct GgufTensorSpec {
  std::string name;
  DType type = DType::F32;
  std::vector<int64_t> ne;  // GGML order, ne[0] fastest
  uint64_t nbytes() const;
};

class GgufWriter {
 public:
  explicit GgufWriter(uint32_t alignment = 32) : alignment_(alignment) {}
  void add_kv(std::string key, GgufValue value) { kv_.emplace_back(std::move(key), std::move(value)); }
  void add_tensor(GgufTensorSpec spec) { tensors_.push_back(std::move(spec)); }
  const std::vector<GgufTensorSpec>& tensors() const { return tensors_; }

  using FillFn = std::function<Status(size_t index, std::span<uint8_t> out)>;
  Status write(const std::string& path, const FillFn& fill) const;

 private:
  uint32_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<GgufTensorSpec> tensors_;
};

// Serializes one metadata value (type tag not included) onto `out`; exposed for tests that build
// hostile files byte by byte.
void gguf_append_value(std::vector<uint8_t>& out, const GgufValue& v);
void gguf_append_string(std::vector<uint8_t>& out, const std::string& s);

}  // namespace infera
