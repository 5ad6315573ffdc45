#include "base/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace infera {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__)
  _mm_pause();
#endif
}

// How long an idle worker spins before it sleeps: long enough to bridge the gaps between the
// parallel loops of one forward pass, short enough not to burn a core between requests.
constexpr auto kSpinFor = std::chrono::microseconds(300);

void chunk_bounds(int64_t n, int parts, int index, int64_t* begin, int64_t* end) {
  const int64_t per = n / parts, rem = n % parts;
  *begin = index * per + std::min<int64_t>(index, rem);
  *end = *begin + per + (index < rem ? 1 : 0);
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run_chunk(int index) {
  int64_t b, e;
  chunk_bounds(job_n_, n_threads_, index, &b, &e);
  if (b < e) (*job_)(b, e);
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n == 1) {
    fn(0, n);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_seq_cst);  // publishes job_ / job_n_
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
  run_chunk(0);
  for (int spins = 0; pending_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < 4096) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
  job_ = nullptr;
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    const auto spin_until = std::chrono::steady_clock::now() + kSpinFor;
    uint64_t g = generation_.load(std::memory_order_acquire);
    for (int i = 0; g == seen && !stop_.load(std::memory_order_relaxed); ++i) {
      cpu_relax();
      if ((i & 255) == 255 && std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock<std::mutex> lock(mu_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        cv_.wait(lock, [&] { return stop_.load() || generation_.load(std::memory_order_seq_cst) != seen; });
        sleepers_.fetch_sub(1, std::memory_order_relaxed);
      }
      g = generation_.load(std::memory_order_acquire);
    }
    if (stop_.load()) return;
    seen = g;
    run_chunk(index);
    pending_.fetch_sub(1, std::memory_order_release);
  }
}

int default_thread_count() {
  // Physical cores: distinct (package, core) pairs in sysfs; SMT siblings would only contend.
  std::set<std::pair<std::string, std::string>> cores;
  for (int cpu = 0;; ++cpu) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream pkg(base + "physical_package_id"), core(base + "core_id");
    std::string p, c;
    if (!(pkg >> p) || !(core >> c)) break;
    cores.insert({p, c});
  }
  const unsigned hw = std::thread::hardware_concurrency();
  if (cores.empty()) return hw == 0 ? 1 : static_cast<int>(hw);
  // The affinity mask may allow fewer CPUs than exist (containers): never exceed it.
  return static_cast<int>(std::min<size_t>(cores.size(), hw == 0 ? cores.size() : hw));
}

}  // namespace infera
