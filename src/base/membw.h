// Memory read bandwidth, measured the way a decode step reads weights: each thread streams its own
// contiguous part of a buffer far larger than the caches. Used by `infera bench` for the decode bound.
#pragma once

#include <cstddef>

#include "base/thread_pool.h"

namespace infera {

// Bytes per second reading `bytes` of fresh anonymous memory with every thread of `pool`; the best
// of `reps` passes (the others are disturbed by whatever else the machine runs).
double measure_read_bandwidth(ThreadPool& pool, size_t bytes = size_t{1} << 30, int reps = 5);

}  // namespace infera
