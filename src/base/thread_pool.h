// A fixed pool of worker threads for data-parallel loops, cheap enough to synchronize for steps of
// a few microseconds (a decode step runs ~200 of them).
//
//   ThreadPool pool(2);
//   pool.parallel_for(n_rows, [&](int64_t begin, int64_t end) { ... });
//
// parallel_for splits [0, n) into contiguous chunks (about four per thread) that the caller and the
// workers take from an atomic counter, and returns when all are done. Which thread runs a chunk is
// up to timing, so fn must compute each index the same way wherever it runs (ours write disjoint
// outputs). Taking chunks instead of being handed one keeps a step going at full speed when the
// machine is oversubscribed: a worker the OS has not scheduled leaves its chunks to the others.
// Idle workers spin briefly on an atomic generation counter, then sleep on a condition variable,
// so a pool between requests costs no CPU. Not reentrant: call it from one thread at a time.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace infera {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

 private:
  void worker();
  // Runs chunks of job `gen` until none is left or the pool has moved on to another job.
  void take_chunks(uint32_t gen);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0, chunk_ = 1;
  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> ticket_{0};  // generation << 32 | chunk count << 16 | next chunk index
  std::atomic<int64_t> completed_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

// Threads to use when the user gives none: the physical cores (hardware threads / SMT siblings
// where Linux tells), at least 1.
int default_thread_count();

}  // namespace infera
