#pragma once

// Names the calling thread (as `top -H`, `perf` and /proc/<pid>/task/*/comm show it). Linux
// keeps at most 15 characters; longer names are cut.

#include <pthread.h>

#include <string>

namespace rill {

inline void SetCurrentThreadName(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace rill
