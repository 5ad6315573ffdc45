#include "base/membw.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <vector>

namespace infera {

double measure_read_bandwidth(ThreadPool& pool, size_t bytes, int reps) {
  const size_t words = bytes / sizeof(uint64_t);
  void* mem = mmap(nullptr, words * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return 0;
  madvise(mem, words * sizeof(uint64_t), MADV_HUGEPAGE);
  auto* w = static_cast<uint64_t*>(mem);
  const int n = pool.size();
  pool.parallel_for(n, [&](int64_t t0, int64_t t1) {  // touch from the threads that will read
    for (int64_t t = t0; t < t1; ++t) std::memset(w + words / n * t, 1, words / n * sizeof(uint64_t));
  });
  std::atomic<uint64_t> sink{0};
  double best = 0;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(n, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const uint64_t* p = w + words / n * t;
        uint64_t a = 0, b = 0, c = 0, d = 0;
        for (size_t i = 0; i + 4 <= words / n; i += 4) a += p[i], b += p[i + 1], c += p[i + 2], d += p[i + 3];
        sink += a + b + c + d;
      }
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, static_cast<double>(words / n * n * sizeof(uint64_t)) / s);
  }
  munmap(mem, words * sizeof(uint64_t));
  return best;
}

}  // namespace infera
