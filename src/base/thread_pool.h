// A fixed pool of worker threads for data-parallel loops.
//
//   ThreadPool pool(2);
//   pool.parallel_for(n_rows, [&](int64_t begin, int64_t end) { ... });
//
// parallel_for splits [0, n) into one contiguous chunk per thread (the caller runs one chunk) and
// returns when all chunks are done. Not reentrant: call it from one thread at a time.
#pragma once

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
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_work_;
  std::condition_variable cv_done_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  int64_t job_n_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
};

// Threads to use when the user gives none: the hardware concurrency, at least 1.
int default_thread_count();

}  // namespace infera
