// GGUF v2/v3 reader over mmap, with split-file support (name-00001-of-00003.gguf).
//
//   auto f = GgufFile::open("model.gguf");      // validates every offset and size
//   if (!f) die(f.error());                     // "model.gguf: tensor 'x': ..."
//   auto arch = f->get_string("general.architecture");
//   const GgufTensor* t = f->find_tensor("token_embd.weight");
//
// File layout (little-endian):
//
//   "GGUF" u32 version | i64 n_tensors | i64 n_kv
//   n_kv x   { string key | u32 value_type | value }
//   n_tensors x { string name | u32 n_dims | n_dims x i64 ne | u32 ggml_type | u64 offset }
//   padding to general.alignment (default 32)
//   data section: tensor bytes at their offsets (each aligned)
//
// A string is u64 length + bytes; an array is u32 element type + u64 count + elements.
// Every count, length and offset is checked against the bytes that remain before use, so a
// truncated or hostile file yields one error line naming the file and the key or tensor at fault.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/mapped_file.h"
#include "base/status.h"
#include "tensor/tensor_view.h"

namespace infera {

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
std::string_view gguf_type_name(GgufType t);

struct GgufValue;
struct GgufArray {
  GgufType elem_type = GgufType::U8;
  std::vector<GgufValue> items;
};

// One metadata value. Integers keep their sign class; accessors convert where lossless.
struct GgufValue {
  GgufType type = GgufType::U8;
  std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray> v;

  std::optional<int64_t> as_int() const;  // any integer type (u64 above INT64_MAX: nullopt)
  std::optional<double> as_float() const;  // f32/f64 or any integer
  const std::string* as_string() const;
  const GgufArray* as_array() const;
  std::optional<bool> as_bool() const;
  std::string to_display(size_t max_items = 8) const;  // for `infera inspect`

  static GgufValue of_u32(uint32_t x) { return {GgufType::U32, uint64_t{x}}; }
  static GgufValue of_i32(int32_t x) { return {GgufType::I32, int64_t{x}}; }
  static GgufValue of_u64(uint64_t x) { return {GgufType::U64, x}; }
  static GgufValue of_f32(float x) { return {GgufType::F32, double{x}}; }
  static GgufValue of_bool(bool x) { return {GgufType::BOOL, x}; }
  static GgufValue of_string(std::string s) { return {GgufType::STRING, std::move(s)}; }
  static GgufValue of_array(GgufType elem, std::vector<GgufValue> items) {
    return {GgufType::ARRAY, GgufArray{elem, std::move(items)}};
  }
};

struct GgufTensor {
  std::string name;
  uint32_t ggml_type = 0;
  TensorView view;      // data points into the mapped file
  uint64_t offset = 0;  // relative to the data section of its file
  int file_index = 0;   // which split file holds it
};

class GgufFile {
 public:
  // Opens a GGUF file; if it is the first of a split set, opens and validates all parts.
  static Result<GgufFile> open(const std::string& path);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  const std::string& path() const { return path_; }
  int n_files() const { return static_cast<int>(files_.size()); }
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }

  const GgufValue* find(const std::string& key) const;
  const GgufTensor* find_tensor(const std::string& name) const;

  // Typed lookups; a missing key or a wrong type is an error naming the file and key.
  Result<std::string> get_string(const std::string& key) const;
  Result<int64_t> get_int(const std::string& key) const;
  Result<double> get_float(const std::string& key) const;
  Result<bool> get_bool(const std::string& key) const;
  // Same, with a default when the key is absent (a present key of the wrong type is still an error).
  Result<int64_t> get_int_or(const std::string& key, int64_t dflt) const;
  Result<double> get_float_or(const std::string& key, double dflt) const;
  Result<bool> get_bool_or(const std::string& key, bool dflt) const;
  Result<std::vector<std::string>> get_string_array(const std::string& key) const;
  Result<std::vector<int64_t>> get_int_array(const std::string& key) const;

 private:
  Status parse_part(int file_index, bool is_first);

  std::string path_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::map<std::string, size_t> kv_index_;
  std::vector<GgufTensor> tensors_;
  std::map<std::string, size_t> tensor_index_;
  int64_t part_split_no_ = -1, part_split_count_ = -1;  // of the part parse_part read last
};

// "model-00001-of-00003.gguf" -> {"model", 1, 3}; nullopt for a name without that suffix.
struct SplitName {
  std::string prefix;
  int index = 0;
  int count = 0;
};
std::optional<SplitName> parse_split_name(const std::string& path);
std::string make_split_name(const std::string& prefix, int index, int count);

}  // namespace infera
