#include "formats/safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <span>

#include <nlohmann/json.hpp>

namespace infera {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct StDType {
  const char* name;
  int64_t bytes;
  std::optional<DType> dtype;  // nullopt: recognized but not usable as a weight
};

constexpr StDType kStTypes[] = {
    {"F32", 4, DType::F32}, {"F16", 2, DType::F16},   {"BF16", 2, DType::BF16}, {"F64", 8, {}},
    {"I64", 8, {}},         {"I32", 4, {}},           {"I16", 2, {}},           {"I8", 1, {}},
    {"U8", 1, {}},          {"BOOL", 1, {}},          {"F8_E4M3", 1, {}},       {"F8_E5M2", 1, {}},
};

const StDType* find_st_dtype(const std::string& s) {
  for (const StDType& t : kStTypes)
    if (s == t.name) return &t;
  return nullptr;
}

}  // namespace

Result<SafetensorsModel> SafetensorsModel::open(const std::string& path) {
  SafetensorsModel m;
  std::error_code ec;
  std::string p = path;
  if (fs::is_directory(p, ec)) {
    if (fs::exists(fs::path(p) / "model.safetensors.index.json"))
      p = (fs::path(p) / "model.safetensors.index.json").string();
    else if (fs::exists(fs::path(p) / "model.safetensors"))
      p = (fs::path(p) / "model.safetensors").string();
    else
      return error("{}: no model.safetensors or model.safetensors.index.json in this folder", path);
  }
  if (p.size() >= 5 && p.ends_with(".json")) {
    INFERA_ASSIGN_OR_RETURN(std::string text, read_text_file(p));
    json idx = json::parse(text, nullptr, false);
    if (idx.is_discarded() || !idx.is_object()) return error("{}: not valid JSON", p);
    auto wm = idx.find("weight_map");
    if (wm == idx.end() || !wm->is_object()) return error("{}: missing object 'weight_map'", p);
    std::map<std::string, std::vector<std::string>> by_file;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it.value().is_string()) return error("{}: weight_map['{}'] is not a file name", p, it.key());
      const std::string file = it.value().get<std::string>();
      if (file.find('/') != std::string::npos || file.find("..") != std::string::npos)
        return error("{}: weight_map['{}'] = '{}' is not a plain file name", p, it.key(), file);
      by_file[file].push_back(it.key());
    }
    if (by_file.empty()) return error("{}: weight_map is empty", p);
    const fs::path dir = fs::path(p).parent_path();
    for (auto& [file, names] : by_file) INFERA_RETURN_IF_ERROR(m.add_file((dir / file).string(), &names));
    return m;
  }
  INFERA_RETURN_IF_ERROR(m.add_file(p, nullptr));
  return m;
}

Status SafetensorsModel::add_file(const std::string& path, const std::vector<std::string>* expect_names) {
  INFERA_ASSIGN_OR_RETURN(MappedFile mf, MappedFile::open(path));
  if (mf.size() < 8) return error("{}: file is {} bytes, too short for a safetensors header", path, mf.size());
  uint64_t n;
  std::memcpy(&n, mf.data(), 8);
  if (n > mf.size() - 8 || n > (uint64_t{100} << 20))
    return error("{}: header length {} exceeds the file size {} (truncated or not safetensors)", path, n,
                 mf.size());
  const std::string_view header(reinterpret_cast<const char*>(mf.data() + 8), n);
  json h = json::parse(header, nullptr, false);
  if (h.is_discarded() || !h.is_object()) return error("{}: header is not a JSON object", path);
  const uint64_t data_start = 8 + n;
  const uint64_t data_size = mf.size() - data_start;
  const int file_index = static_cast<int>(files_.size());
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const std::string& name = it.key();
    const json& e = it.value();
    if (!e.is_object()) return error("{}: tensor '{}': entry is not an object", path, name);
    auto dt = e.find("dtype");
    auto sh = e.find("shape");
    auto off = e.find("data_offsets");
    if (dt == e.end() || !dt->is_string()) return error("{}: tensor '{}': missing string 'dtype'", path, name);
    if (sh == e.end() || !sh->is_array()) return error("{}: tensor '{}': missing array 'shape'", path, name);
    if (off == e.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
        !(*off)[1].is_number_unsigned())
      return error("{}: tensor '{}': 'data_offsets' must be two non-negative integers", path, name);
    SafetensorsTensor t;
    t.name = name;
    t.dtype = dt->get<std::string>();
    t.file_index = file_index;
    const StDType* st = find_st_dtype(t.dtype);
    if (!st) return error("{}: tensor '{}': unknown dtype '{}'", path, name, t.dtype);
    if (sh->size() > 4) return error("{}: tensor '{}': {} dimensions (at most 4 supported)", path, name, sh->size());
    int64_t n_elems = 1;
    for (const json& d : *sh) {
      if (!d.is_number_unsigned()) return error("{}: tensor '{}': shape entries must be non-negative integers", path, name);
      const int64_t v = d.get<int64_t>();
      if (v < 0 || __builtin_mul_overflow(n_elems, v, &n_elems) || n_elems > (int64_t{1} << 50))
        return error("{}: tensor '{}': impossible shape", path, name);
      t.shape.push_back(v);
    }
    const uint64_t b = (*off)[0].get<uint64_t>(), en = (*off)[1].get<uint64_t>();
    const uint64_t expect = static_cast<uint64_t>(n_elems * st->bytes);
    if (b > en || en > data_size)
      return error("{}: tensor '{}': data_offsets [{}, {}] outside the {} data bytes (truncated file?)", path,
                   name, b, en, data_size);
    if (en - b != expect)
      return error("{}: tensor '{}': {} bytes stored but shape {} of {} needs {}", path, name, en - b,
                   sh->dump(), t.dtype, expect);
    if (st->dtype) {
      t.view.type = *st->dtype;
      t.view.n_dims = static_cast<int>(t.shape.size());
      for (size_t d = 0; d < t.shape.size(); ++d) t.view.ne[d] = t.shape[t.shape.size() - 1 - d];
      if (t.shape.empty()) t.view.n_dims = 1;
      t.view.data = mf.data() + data_start + b;
      t.view.nbytes = expect;
    }
    if (index_.count(name)) return error("{}: tensor '{}' appears in more than one file", path, name);
    index_[name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  if (expect_names) {
    for (const std::string& nm : *expect_names) {
      auto it = index_.find(nm);
      if (it == index_.end() || tensors_[it->second].file_index != file_index)
        return error("{}: index lists tensor '{}' in this file, but it is not there", path, nm);
    }
  }
  files_.push_back(std::make_unique<MappedFile>(std::move(mf)));
  paths_.push_back(path);
  return Status::ok();
}

const SafetensorsTensor* SafetensorsModel::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Status write_safetensors(const std::string& path, const std::vector<SafetensorsSpec>& tensors,
                         const std::function<Status(size_t index, std::span<uint8_t> out)>& fill) {
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors[a].name < tensors[b].name; });
  json h = json::object();
  h["__metadata__"] = {{"format", "pt"}};
  std::vector<uint64_t> sizes(tensors.size());
  uint64_t off = 0;
  for (size_t i : order) {
    const StDType* st = find_st_dtype(tensors[i].dtype);
    if (!st || !st->dtype) return error("{}: cannot write dtype '{}'", path, tensors[i].dtype);
    int64_t n = 1;
    for (int64_t d : tensors[i].shape) n *= d;
    sizes[i] = static_cast<uint64_t>(n * st->bytes);
    h[tensors[i].name] = {{"dtype", tensors[i].dtype}, {"shape", tensors[i].shape}, {"data_offsets", {off, off + sizes[i]}}};
    off += sizes[i];
  }
  std::string header = h.dump();
  header.resize((header.size() + 7) / 8 * 8, ' ');  // align the data section to 8 bytes
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) return error("{}: cannot create: {}", path, std::strerror(errno));
  const uint64_t hl = header.size();
  bool ok = std::fwrite(&hl, 8, 1, f.get()) == 1 && std::fwrite(header.data(), 1, hl, f.get()) == hl;
  std::vector<uint8_t> buf;
  for (size_t i : order) {
    if (!ok) break;
    buf.assign(sizes[i], 0);
    INFERA_RETURN_IF_ERROR(fill(i, buf));
    ok = std::fwrite(buf.data(), 1, buf.size(), f.get()) == buf.size();
  }
  if (!ok || std::fflush(f.get()) != 0) return error("{}: write failed: {}", path, std::strerror(errno));
  return Status::ok();
}

}  // namespace infera
