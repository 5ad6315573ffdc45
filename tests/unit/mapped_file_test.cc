// release_mapped_pages: the pages of a live mapping are dropped from RSS and read back unchanged;
// memory that is not a mapped file is never touched.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <vector>

#include "base/mapped_file.h"
#include "unit/test_util.h"

namespace infera {
namespace {

// The process's resident pages (/proc/self/statm, second field).
long resident_pages() {
  std::ifstream in("/proc/self/statm");
  long size = 0, resident = 0;
  in >> size >> resident;
  return resident;
}

TEST(MappedFile, ReleasedPagesLeaveRssAndReadBackTheSame) {
  test::TempDir dir;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE)), n = 4096 * page;
  std::vector<uint8_t> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(i * 131 + i / 7);
  test::write_bytes(dir.file("w.bin"), bytes);
  auto f = MappedFile::open(dir.file("w.bin"));
  ASSERT_TRUE(f.ok());
  const uint8_t* d = f->data();
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += d[i];  // touch every page
  EXPECT_GT(sum, 0u);
  const long before = resident_pages();
  EXPECT_TRUE(release_mapped_pages(d + 100, n - 200));  // partial first and last pages stay
  const long after = resident_pages();
  EXPECT_GT(before - after, 4000) << before << " -> " << after;
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(d[i], bytes[i]) << i;  // read back from the file
  // Not a mapped file: heap memory, a range running past the mapping's end.
  std::vector<uint8_t> heap(n, 7);
  EXPECT_FALSE(release_mapped_pages(heap.data(), n));
  EXPECT_EQ(heap[n / 2], 7);
  EXPECT_FALSE(release_mapped_pages(d + n - page, 2 * page));
}

}  // namespace
}  // namespace infera
