#include "formats/gguf.h"

#include <cstring>
#include <limits>
#include <regex>

#include "base/check.h"

namespace infera {

namespace {

constexpr int kMaxArrayDepth = 4;
// Arrays are held as one GgufValue (48 bytes) per element; real files hold at most ~10^6 (the
// vocabulary), so a larger count is refused instead of allocating 48x the file size.
constexpr uint64_t kMaxArrayItems = uint64_t{1} << 24;
constexpr int kMaxDims = 4;

// Bounds-checked little-endian reader over one mapped file. Every read either succeeds or
// leaves a message in `err` describing what was cut short.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size) : data_(data), size_(size) {}
  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  template <typename T>
  bool read(T* out) {
    if (remaining() < sizeof(T)) return false;
    std::memcpy(out, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool read_string(std::string* out, std::string* err) {
    uint64_t len;
    if (!read(&len)) {
      *err = "string length cut short by end of file";
      return false;
    }
    if (len > remaining()) {
      *err = fmt::format("string length {} exceeds the {} bytes left in the file", len, remaining());
      return false;
    }
    out->assign(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return true;
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

// Smallest encoded size of one value of type t (used to bound array counts before allocating).
uint64_t min_encoded_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::BOOL: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: case GgufType::STRING: return 8;
    case GgufType::ARRAY: return 12;
  }
  return 1;
}

bool valid_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::F64); }

bool read_value(Cursor& c, GgufType type, int depth, GgufValue* out, std::string* err) {
  out->type = type;
  auto cut = [&](const char* what) {
    *err = fmt::format("{} value cut short by end of file", what);
    return false;
  };
  switch (type) {
    case GgufType::U8: { uint8_t x; if (!c.read(&x)) return cut("u8"); out->v = uint64_t{x}; return true; }
    case GgufType::I8: { int8_t x; if (!c.read(&x)) return cut("i8"); out->v = int64_t{x}; return true; }
    case GgufType::U16: { uint16_t x; if (!c.read(&x)) return cut("u16"); out->v = uint64_t{x}; return true; }
    case GgufType::I16: { int16_t x; if (!c.read(&x)) return cut("i16"); out->v = int64_t{x}; return true; }
    case GgufType::U32: { uint32_t x; if (!c.read(&x)) return cut("u32"); out->v = uint64_t{x}; return true; }
    case GgufType::I32: { int32_t x; if (!c.read(&x)) return cut("i32"); out->v = int64_t{x}; return true; }
    case GgufType::U64: { uint64_t x; if (!c.read(&x)) return cut("u64"); out->v = x; return true; }
    case GgufType::I64: { int64_t x; if (!c.read(&x)) return cut("i64"); out->v = x; return true; }
    case GgufType::F32: { float x; if (!c.read(&x)) return cut("f32"); out->v = double{x}; return true; }
    case GgufType::F64: { double x; if (!c.read(&x)) return cut("f64"); out->v = x; return true; }
    case GgufType::BOOL: {
      uint8_t x;
      if (!c.read(&x)) return cut("bool");
      if (x > 1) {
        *err = fmt::format("bool value is {} (must be 0 or 1)", x);
        return false;
      }
      out->v = x == 1;
      return true;
    }
    case GgufType::STRING: {
      std::string s;
      if (!c.read_string(&s, err)) return false;
      out->v = std::move(s);
      return true;
    }
    case GgufType::ARRAY: {
      if (depth >= kMaxArrayDepth) {
        *err = fmt::format("arrays nested deeper than {} levels", kMaxArrayDepth);
        return false;
      }
      uint32_t et;
      uint64_t n;
      if (!c.read(&et) || !c.read(&n)) return cut("array header");
      if (!valid_type(et)) {
        *err = fmt::format("array element type {} is not a GGUF value type (0..12)", et);
        return false;
      }
      const GgufType elem = static_cast<GgufType>(et);
      if (n > kMaxArrayItems) {
        *err = fmt::format("array count {} exceeds infera's limit of {} elements", n, kMaxArrayItems);
        return false;
      }
      if (n > c.remaining() / min_encoded_size(elem)) {
        *err = fmt::format("array count {} cannot fit in the {} bytes left in the file", n, c.remaining());
        return false;
      }
      GgufArray arr;
      arr.elem_type = elem;
      arr.items.resize(n);
      for (uint64_t i = 0; i < n; ++i) {
        if (!read_value(c, elem, depth + 1, &arr.items[i], err)) {
          *err = fmt::format("element {}: {}", i, *err);
          return false;
        }
      }
      out->v = std::move(arr);
      return true;
    }
  }
  *err = "unknown value type";
  return false;
}

bool mul_overflows(int64_t a, int64_t b, int64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  static constexpr std::string_view kNames[] = {"u8",  "i8",   "u16",    "i16",   "u32", "i32", "f32",
                                                "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < std::size(kNames) ? kNames[i] : "invalid";
}

std::optional<int64_t> GgufValue::as_int() const {
  if (auto* u = std::get_if<uint64_t>(&v)) {
    if (*u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<int64_t>(*u);
  }
  if (auto* i = std::get_if<int64_t>(&v)) return *i;
  return std::nullopt;
}

std::optional<double> GgufValue::as_float() const {
  if (auto* d = std::get_if<double>(&v)) return *d;
  if (auto i = as_int()) return static_cast<double>(*i);
  return std::nullopt;
}

const std::string* GgufValue::as_string() const { return std::get_if<std::string>(&v); }
const GgufArray* GgufValue::as_array() const { return std::get_if<GgufArray>(&v); }
std::optional<bool> GgufValue::as_bool() const {
  if (auto* b = std::get_if<bool>(&v)) return *b;
  return std::nullopt;
}

std::string GgufValue::to_display(size_t max_items) const {
  switch (type) {
    case GgufType::STRING: {
      const std::string& s = *as_string();
      std::string shown = s.size() > 80 ? s.substr(0, 77) + "..." : s;
      for (char& ch : shown)
        if (ch == '\n') ch = ' ';
      return fmt::format("\"{}\"", shown);
    }
    case GgufType::BOOL: return *as_bool() ? "true" : "false";
    case GgufType::F32: case GgufType::F64: return fmt::format("{}", *as_float());
    case GgufType::ARRAY: {
      const GgufArray& a = *as_array();
      std::string s = fmt::format("{}[{}] [", gguf_type_name(a.elem_type), a.items.size());
      for (size_t i = 0; i < a.items.size() && i < max_items; ++i)
        s += (i ? ", " : "") + a.items[i].to_display(max_items);
      if (a.items.size() > max_items) s += ", ...";
      return s + "]";
    }
    default:
      if (auto i = as_int()) return std::to_string(*i);
      return std::to_string(std::get<uint64_t>(v));
  }
}

std::optional<SplitName> parse_split_name(const std::string& path) {
  static const std::regex re(R"((.*)-(\d{5})-of-(\d{5})\.gguf)");
  std::smatch m;
  if (!std::regex_match(path, m, re)) return std::nullopt;
  return SplitName{m[1].str(), std::stoi(m[2].str()), std::stoi(m[3].str())};
}

std::string make_split_name(const std::string& prefix, int index, int count) {
  return fmt::format("{}-{:05d}-of-{:05d}.gguf", prefix, index, count);
}

Result<GgufFile> GgufFile::open(const std::string& path) {
  GgufFile f;
  f.path_ = path;
  INFERA_ASSIGN_OR_RETURN(MappedFile first, MappedFile::open(path));
  f.files_.push_back(std::make_unique<MappedFile>(std::move(first)));
  INFERA_RETURN_IF_ERROR(f.parse_part(0, true));

  INFERA_ASSIGN_OR_RETURN(int64_t n_split, f.get_int_or("split.count", 1));
  if (n_split < 1 || n_split > 9999) return error("{}: split.count is {} (must be 1..9999)", path, n_split);
  if (n_split > 1) {
    INFERA_ASSIGN_OR_RETURN(int64_t no, f.get_int_or("split.no", 0));
    auto name = parse_split_name(path);
    if (no < 0 || no >= n_split)
      return error("{}: split.no is {} but split.count is {}", path, no, n_split);
    if (no != 0)
      return error("{}: part {} of a {}-part split model; open the first part (…-00001-of-{:05d}.gguf)",
                   path, no + 1, n_split, n_split);
    if (!name || name->index != 1)
      return error("{}: first part of a {}-part split model, but its name does not end in -00001-of-{:05d}.gguf "
                   "(the other parts are found by that name)", path, n_split, n_split);
    if (name->count != n_split)
      return error("{}: file name says {} parts but split.count is {}", path, name->count, n_split);
    for (int i = 1; i < n_split; ++i) {
      const std::string part = make_split_name(name->prefix, i + 1, static_cast<int>(n_split));
      auto mf = MappedFile::open(part);
      if (!mf) return error("{}: split part {} of {} is missing: {}", path, i + 1, n_split, mf.error());
      f.files_.push_back(std::make_unique<MappedFile>(std::move(*mf)));
      INFERA_RETURN_IF_ERROR(f.parse_part(i, false));
      if (f.part_split_no_ != i || f.part_split_count_ != n_split)
        return error("{}: split part {} says it is part {} of {} (split.no {}, split.count {})", part, i + 1,
                     f.part_split_no_ + 1, f.part_split_count_, f.part_split_no_, f.part_split_count_);
    }
    if (auto total = f.find("split.tensors.count")) {
      auto n = total->as_int();
      if (!n || *n != static_cast<int64_t>(f.tensors_.size()))
        return error("{}: split.tensors.count says {} tensors but the parts hold {}", path,
                     total->to_display(), f.tensors_.size());
    }
  }
  return f;
}

Status GgufFile::parse_part(int file_index, bool is_first) {
  const MappedFile& mf = *files_[file_index];
  const std::string& p = mf.path();
  Cursor c(mf.data(), mf.size());
  uint32_t magic, version;
  if (!c.read(&magic)) return error("{}: file is {} bytes, too short for a GGUF header", p, mf.size());
  if (std::memcmp(&magic, "GGUF", 4) != 0) return error("{}: bad magic (not a GGUF file)", p);
  if (!c.read(&version)) return error("{}: header cut short (version)", p);
  if (version != 2 && version != 3)
    return error("{}: GGUF version {} is not supported (supported: 2, 3)", p, version);
  if (is_first) version_ = version;
  part_split_no_ = part_split_count_ = -1;
  int64_t n_tensors, n_kv;
  if (!c.read(&n_tensors) || !c.read(&n_kv)) return error("{}: header cut short (counts)", p);
  // Each KV needs at least 12 bytes (key length + type) and each tensor info at least 24.
  if (n_kv < 0 || static_cast<uint64_t>(n_kv) > c.remaining() / 12)
    return error("{}: metadata count {} is impossible for a file of {} bytes", p, n_kv, mf.size());
  if (n_tensors < 0 || static_cast<uint64_t>(n_tensors) > c.remaining() / 24)
    return error("{}: tensor count {} is impossible for a file of {} bytes", p, n_tensors, mf.size());

  std::string err;
  for (int64_t i = 0; i < n_kv; ++i) {
    std::string key;
    if (!c.read_string(&key, &err)) return error("{}: metadata entry {}: key: {}", p, i, err);
    uint32_t t;
    if (!c.read(&t)) return error("{}: key '{}': value type cut short by end of file", p, key);
    if (!valid_type(t)) return error("{}: key '{}': value type {} is not a GGUF value type (0..12)", p, key, t);
    GgufValue v;
    if (!read_value(c, static_cast<GgufType>(t), 0, &v, &err)) return error("{}: key '{}': {}", p, key, err);
    if (!is_first) {  // later parts repeat the split.* keys only; they must agree
      if (key == "split.no") part_split_no_ = v.as_int().value_or(-1);
      if (key == "split.count") part_split_count_ = v.as_int().value_or(-1);
      continue;
    }
    if (kv_index_.count(key)) return error("{}: key '{}' appears twice", p, key);
    kv_index_[key] = kv_.size();
    kv_.emplace_back(std::move(key), std::move(v));
  }
  if (is_first) {
    if (const GgufValue* a = find("general.alignment")) {
      auto al = a->as_int();
      if (!al || *al <= 0 || *al > (1 << 20) || (*al & (*al - 1)) != 0)
        return error("{}: key 'general.alignment' is {} (must be a power of two up to 1048576)", p, a->to_display());
      alignment_ = static_cast<uint32_t>(*al);
    }
  }

  if (!is_first && (part_split_no_ < 0 || part_split_count_ < 0))
    return error("{}: split part without 'split.no' and 'split.count' keys", p);
  const size_t first_new = tensors_.size();
  for (int64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.file_index = file_index;
    if (!c.read_string(&t.name, &err)) return error("{}: tensor info {}: name: {}", p, i, err);
    uint32_t n_dims;
    if (!c.read(&n_dims)) return error("{}: tensor '{}': info cut short by end of file", p, t.name);
    if (n_dims < 1 || n_dims > kMaxDims)
      return error("{}: tensor '{}': {} dimensions (must be 1..{})", p, t.name, n_dims, kMaxDims);
    t.view.n_dims = static_cast<int>(n_dims);
    int64_t n_elems = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      int64_t ne;
      if (!c.read(&ne)) return error("{}: tensor '{}': info cut short by end of file", p, t.name);
      if (ne < 0 || mul_overflows(n_elems, ne, &n_elems) || n_elems > (int64_t{1} << 50))
        return error("{}: tensor '{}': dimension {} is {} (impossible size)", p, t.name, d, ne);
      t.view.ne[d] = ne;
    }
    if (!c.read(&t.ggml_type) || !c.read(&t.offset))
      return error("{}: tensor '{}': info cut short by end of file", p, t.name);
    auto info = dtype_info(t.ggml_type);
    if (!info)
      return ggml_type_name(t.ggml_type).starts_with("type ")
                 ? error("{}: tensor '{}' has unknown GGML type {}", p, t.name, t.ggml_type)
                 : error("{}: tensor '{}' has type {} (GGML type {}), which infera does not support", p, t.name,
                         ggml_type_name(t.ggml_type), t.ggml_type);
    t.view.type = static_cast<DType>(t.ggml_type);
    if (t.view.ne[0] % info->block_elems != 0)
      return error("{}: tensor '{}': row length {} is not a multiple of the {} block size {}", p, t.name,
                   t.view.ne[0], info->name, info->block_elems);
    t.view.nbytes = static_cast<uint64_t>(n_elems / info->block_elems * info->block_bytes);
    if (tensor_index_.count(t.name)) return error("{}: tensor '{}' appears twice", p, t.name);
    tensor_index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }

  const uint64_t data_start = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  for (size_t i = first_new; i < tensors_.size(); ++i) {
    GgufTensor& t = tensors_[i];
    if (t.offset % alignment_ != 0)
      return error("{}: tensor '{}': offset {} is not a multiple of the alignment {}", p, t.name, t.offset,
                   alignment_);
    const uint64_t avail = mf.size() > data_start ? mf.size() - data_start : 0;
    if (t.offset > avail || t.view.nbytes > avail - t.offset)
      return error("{}: tensor '{}': data [offset {}, size {}] extends past the end of the file "
                   "(data section holds {} bytes; file truncated?)",
                   p, t.name, t.offset, t.view.nbytes, avail);
    t.view.data = mf.data() + data_start + t.offset;
  }
  return Status::ok();
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensor* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

Result<std::string> GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return error("{}: required key '{}' is missing", path_, key);
  if (!v->as_string()) return error("{}: key '{}' is {}, expected string", path_, key, gguf_type_name(v->type));
  return *v->as_string();
}

Result<int64_t> GgufFile::get_int(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return error("{}: required key '{}' is missing", path_, key);
  auto i = v->as_int();
  if (!i) return error("{}: key '{}' is {}, expected an integer", path_, key, gguf_type_name(v->type));
  return *i;
}

Result<double> GgufFile::get_float(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return error("{}: required key '{}' is missing", path_, key);
  auto d = v->as_float();
  if (!d) return error("{}: key '{}' is {}, expected a number", path_, key, gguf_type_name(v->type));
  return *d;
}

Result<bool> GgufFile::get_bool(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return error("{}: required key '{}' is missing", path_, key);
  if (auto b = v->as_bool()) return *b;
  if (auto i = v->as_int(); i && (*i == 0 || *i == 1)) return *i == 1;
  return error("{}: key '{}' is {}, expected bool", path_, key, gguf_type_name(v->type));
}

Result<int64_t> GgufFile::get_int_or(const std::string& key, int64_t dflt) const {
  return find(key) ? get_int(key) : Result<int64_t>(dflt);
}
Result<double> GgufFile::get_float_or(const std::string& key, double dflt) const {
  return find(key) ? get_float(key) : Result<double>(dflt);
}
Result<bool> GgufFile::get_bool_or(const std::string& key, bool dflt) const {
  return find(key) ? get_bool(key) : Result<bool>(dflt);
}

Result<std::vector<std::string>> GgufFile::get_string_array(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return error("{}: required key '{}' is missing", path_, key);
  const GgufArray* a = v->as_array();
  if (!a || a->elem_type != GgufType::STRING)
    return error("{}: key '{}' is {}, expected array of string", path_, key, gguf_type_name(v->type));
  std::vector<std::string> out;
  out.reserve(a->items.size());
  for (const GgufValue& it : a->items) out.push_back(*it.as_string());
  return out;
}

Result<std::vector<int64_t>> GgufFile::get_int_array(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return error("{}: required key '{}' is missing", path_, key);
  const GgufArray* a = v->as_array();
  if (!a) return error("{}: key '{}' is {}, expected an array of integers", path_, key, gguf_type_name(v->type));
  std::vector<int64_t> out;
  out.reserve(a->items.size());
  for (size_t i = 0; i < a->items.size(); ++i) {
    auto x = a->items[i].as_int();
    if (!x) return error("{}: key '{}': element {} is not an integer", path_, key, i);
    out.push_back(*x);
  }
  return out;
}

}  // namespace infera
