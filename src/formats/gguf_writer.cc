#include "formats/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "base/check.h"

namespace infera {

namespace {

template <typename T>
void append_pod(std::vector<uint8_t>& out, T x) {
  const auto* p = reinterpret_cast<const uint8_t*>(&x);
  out.insert(out.end(), p, p + sizeof(T));
}

}  // namespace

uint64_t GgufTensorSpec::nbytes() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  const DTypeInfo& i = dtype_info(type);
  return static_cast<uint64_t>(n / i.block_elems * i.block_bytes);
}

void gguf_append_string(std::vector<uint8_t>& out, const std::string& s) {
  append_pod<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

void gguf_append_value(std::vector<uint8_t>& out, const GgufValue& v) {
  switch (v.type) {
    case GgufType::U8: append_pod<uint8_t>(out, static_cast<uint8_t>(std::get<uint64_t>(v.v))); break;
    case GgufType::I8: append_pod<int8_t>(out, static_cast<int8_t>(std::get<int64_t>(v.v))); break;
    case GgufType::U16: append_pod<uint16_t>(out, static_cast<uint16_t>(std::get<uint64_t>(v.v))); break;
    case GgufType::I16: append_pod<int16_t>(out, static_cast<int16_t>(std::get<int64_t>(v.v))); break;
    case GgufType::U32: append_pod<uint32_t>(out, static_cast<uint32_t>(std::get<uint64_t>(v.v))); break;
    case GgufType::I32: append_pod<int32_t>(out, static_cast<int32_t>(std::get<int64_t>(v.v))); break;
    case GgufType::U64: append_pod<uint64_t>(out, std::get<uint64_t>(v.v)); break;
    case GgufType::I64: append_pod<int64_t>(out, std::get<int64_t>(v.v)); break;
    case GgufType::F32: append_pod<float>(out, static_cast<float>(std::get<double>(v.v))); break;
    case GgufType::F64: append_pod<double>(out, std::get<double>(v.v)); break;
    case GgufType::BOOL: append_pod<uint8_t>(out, std::get<bool>(v.v) ? 1 : 0); break;
    case GgufType::STRING: gguf_append_string(out, std::get<std::string>(v.v)); break;
    case GgufType::ARRAY: {
      const GgufArray& a = std::get<GgufArray>(v.v);
      append_pod<uint32_t>(out, static_cast<uint32_t>(a.elem_type));
      append_pod<uint64_t>(out, a.items.size());
      for (const GgufValue& item : a.items) {
        CHECK(item.type == a.elem_type);
        gguf_append_value(out, item);
      }
      break;
    }
  }
}

Status GgufWriter::write(const std::string& path, const FillFn& fill) const {
  std::vector<uint8_t> head;
  head.insert(head.end(), {'G', 'G', 'U', 'F'});
  append_pod<uint32_t>(head, 3);
  append_pod<int64_t>(head, static_cast<int64_t>(tensors_.size()));
  append_pod<int64_t>(head, static_cast<int64_t>(kv_.size()));
  for (const auto& [key, value] : kv_) {
    gguf_append_string(head, key);
    append_pod<uint32_t>(head, static_cast<uint32_t>(value.type));
    gguf_append_value(head, value);
  }
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const GgufTensorSpec& t : tensors_) {
    gguf_append_string(head, t.name);
    append_pod<uint32_t>(head, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) append_pod<int64_t>(head, d);
    append_pod<uint32_t>(head, static_cast<uint32_t>(t.type));
    append_pod<uint64_t>(head, offset);
    offsets.push_back(offset);
    offset = (offset + t.nbytes() + alignment_ - 1) / alignment_ * alignment_;
  }
  head.resize((head.size() + alignment_ - 1) / alignment_ * alignment_, 0);

  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  if (!f) return error("{}: cannot create: {}", path, std::strerror(errno));
  if (std::fwrite(head.data(), 1, head.size(), f.get()) != head.size())
    return error("{}: write failed: {}", path, std::strerror(errno));
  std::vector<uint8_t> buf;
  uint64_t written = 0;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    if (written < offsets[i]) {
      std::vector<uint8_t> pad(offsets[i] - written, 0);
      if (std::fwrite(pad.data(), 1, pad.size(), f.get()) != pad.size())
        return error("{}: write failed: {}", path, std::strerror(errno));
      written = offsets[i];
    }
    buf.assign(tensors_[i].nbytes(), 0);
    INFERA_RETURN_IF_ERROR(fill(i, buf));
    if (std::fwrite(buf.data(), 1, buf.size(), f.get()) != buf.size())
      return error("{}: write failed: {}", path, std::strerror(errno));
    written += buf.size();
  }
  // Pad the last tensor too, as llama.cpp's writers do.
  if (const uint64_t end = (written + alignment_ - 1) / alignment_ * alignment_; end > written) {
    std::vector<uint8_t> pad(end - written, 0);
    if (std::fwrite(pad.data(), 1, pad.size(), f.get()) != pad.size())
      return error("{}: write failed: {}", path, std::strerror(errno));
  }
  if (std::fflush(f.get()) != 0) return error("{}: write failed: {}", path, std::strerror(errno));
  return Status::ok();
}

}  // namespace infera
