// A read-only memory map of a whole file. Move-only; unmaps on destruction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "base/status.h"

namespace infera {

class MappedFile {
 public:
  static Result<MappedFile> open(const std::string& path);

  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
};

// Lets the kernel drop this process's pages of [p, p + n) when the range lies inside a live
// MappedFile (file pages: read back from the file if touched again); anything else is left alone.
// Used once a weight has been copied into another layout, so its file pages stop counting in RSS.
// Returns whether the range was a mapped file's.
bool release_mapped_pages(const void* p, size_t n);

// Reads a whole (small) file into a string, e.g. a JSON config.
Result<std::string> read_text_file(const std::string& path);

}  // namespace infera
