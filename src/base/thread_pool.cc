#include "base/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#include "base/check.h"

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
constexpr auto kSpinFor = std::chrono::microseconds(200);

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { worker(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

// The ticket: generation (32 bits) | number of chunks (16) | next chunk index (16). Carrying the
// chunk count in the same word as the generation makes "is there a chunk left in job gen" and
// "take it" one atomic step: a worker still holding a finished job's ticket can never claim a
// chunk past that job's end because the next job, published meanwhile, has more chunks.
namespace {
constexpr uint64_t ticket_of(uint32_t gen, int64_t n_chunks) {
  return static_cast<uint64_t>(gen) << 32 | static_cast<uint64_t>(n_chunks) << 16;
}
}  // namespace

void ThreadPool::take_chunks(uint32_t gen) {
  for (;;) {
    uint64_t t = ticket_.load(std::memory_order_acquire);
    int64_t index;
    do {
      index = static_cast<int64_t>(t & 0xFFFFu);
      const int64_t n_chunks = static_cast<int64_t>((t >> 16) & 0xFFFFu);
      if ((t >> 32) != gen || index >= n_chunks) return;
    } while (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel));
    const int64_t b = index * chunk_, e = std::min(job_n_, b + chunk_);
    (*job_)(b, e);
    completed_.fetch_add(1, std::memory_order_release);
  }
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n == 1) {
    fn(0, n);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  chunk_ = std::max<int64_t>(1, n / (4 * n_threads_));
  const int64_t n_chunks = (n + chunk_ - 1) / chunk_;
  CHECK(n_chunks < 0xFFFF);
  completed_.store(0, std::memory_order_relaxed);
  const uint64_t gen = generation_.load(std::memory_order_relaxed) + 1;
  ticket_.store(ticket_of(static_cast<uint32_t>(gen), n_chunks), std::memory_order_release);
  generation_.store(gen, std::memory_order_seq_cst);  // publishes the job
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    std::lock_guard<std::mutex> lock(mu_);
    cv_.notify_all();
  }
  take_chunks(static_cast<uint32_t>(gen));
  for (int spins = 0; completed_.load(std::memory_order_acquire) < n_chunks; ++spins) {
    if (spins < 1024) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
  job_ = nullptr;
}

void ThreadPool::worker() {
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
    take_chunks(static_cast<uint32_t>(g));
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
