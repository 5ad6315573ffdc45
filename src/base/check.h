// Bug tier of error handling: a broken invariant aborts with file:line and the condition.
// CHECK is always on; DCHECK only in debug builds (use it on hot paths).
#pragma once

#include <cstdio>
#include <cstdlib>

namespace infera::detail {
[[noreturn]] inline void check_failed(const char* file, int line, const char* cond) {
  std::fprintf(stderr, "infera: internal error: CHECK failed at %s:%d: %s\n", file, line, cond);
  std::abort();
}
}  // namespace infera::detail

#define CHECK(cond) \
  ((cond) ? (void)0 : ::infera::detail::check_failed(__FILE__, __LINE__, #cond))

#ifdef NDEBUG
#define DCHECK(cond) ((void)0)
#else
#define DCHECK(cond) CHECK(cond)
#endif
