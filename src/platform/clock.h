// Time source of the control plane. Everything time-driven (tasks, timeouts, billing) reads a
// Clock, so tests run days of schedule in milliseconds with FakeClock.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace infera::platform {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t now_ms() const = 0;  // Unix milliseconds
  int64_t now_s() const { return now_ms() / 1000; }
};

class SystemClock final : public Clock {
 public:
  int64_t now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// Starts at `start_ms`; moves only when told. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'765'000'000'000) : ms_(start_ms) {}
  int64_t now_ms() const override { return ms_.load(); }
  void advance_ms(int64_t d) { ms_ += d; }
  void advance_s(int64_t s) { ms_ += s * 1000; }
  void set_ms(int64_t t) { ms_ = t; }

 private:
  std::atomic<int64_t> ms_;
};

}  // namespace infera::platform
