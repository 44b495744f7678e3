#pragma once

// RILL_ASSERT: invariants that must always hold, checked in every build type
// (docs/CONVENTIONS.md §5). A failure is a programmer error: it prints where and why, then
// aborts. Operating errors (bad input, disk errors) are never asserted; they are returned as
// Status values.

#include <cstdio>
#include <cstdlib>

namespace rill::internal {
[[noreturn]] void AssertFail(const char* file, int line, const char* cond, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
}  // namespace rill::internal

#define RILL_ASSERT(cond, ...)                                                   \
  do {                                                                           \
    if (__builtin_expect(!(cond), 0)) {                                          \
      ::rill::internal::AssertFail(__FILE__, __LINE__, #cond, __VA_ARGS__);      \
    }                                                                            \
  } while (0)
