#include "base/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

namespace infera {

namespace {
// The live mappings, for release_mapped_pages.
std::mutex g_maps_mu;
std::map<uintptr_t, size_t>& live_maps() {
  static std::map<uintptr_t, size_t> m;
  return m;
}
void register_map(const uint8_t* p, size_t n) {
  std::lock_guard<std::mutex> lock(g_maps_mu);
  live_maps()[reinterpret_cast<uintptr_t>(p)] = n;
}
void unregister_map(const uint8_t* p) {
  std::lock_guard<std::mutex> lock(g_maps_mu);
  live_maps().erase(reinterpret_cast<uintptr_t>(p));
}
}  // namespace

bool release_mapped_pages(const void* p, size_t n) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(g_maps_mu);
  auto& m = live_maps();
  auto it = m.upper_bound(a);
  if (it == m.begin()) return false;
  --it;
  if (a < it->first || a + n > it->first + it->second) return false;
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t lo = (a + page - 1) / page * page, hi = (a + n) / page * page;  // whole pages only
  if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
  return true;
}

Result<MappedFile> MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return error("{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return error("{}: cannot stat: {}", path, std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return error("{}: not a regular file", path);
  }
  MappedFile f;
  f.path_ = path;
  f.size_ = static_cast<size_t>(st.st_size);
  if (f.size_ > 0) {
    void* p = ::mmap(nullptr, f.size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      return error("{}: mmap failed: {}", path, std::strerror(e));
    }
    f.data_ = static_cast<const uint8_t*>(p);
    register_map(f.data_, f.size_);
  }
  ::close(fd);
  return f;
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : data_(o.data_), size_(o.size_), path_(std::move(o.path_)) {
  o.data_ = nullptr;
  o.size_ = 0;
}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (data_) {
      unregister_map(data_);
      ::munmap(const_cast<uint8_t*>(data_), size_);
    }
    data_ = o.data_;
    size_ = o.size_;
    path_ = std::move(o.path_);
    o.data_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (data_) {
    unregister_map(data_);
    ::munmap(const_cast<uint8_t*>(data_), size_);
  }
}

Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return error("{}: cannot open: {}", path, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return error("{}: read error", path);
  return ss.str();
}

}  // namespace infera
