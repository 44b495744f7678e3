#pragma once

// The client's clocks, one definition each (the accumulator, the producer, the consumer and the
// admin client read them; grpc_util.h brings them along).

#include <chrono>
#include <cstdint>

namespace rill::client::internal {

// Monotonic microseconds (the producer's linger may be a fraction of a millisecond).
inline int64_t MonotonicUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
// Monotonic milliseconds.
inline int64_t MonotonicMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
// Wall-clock milliseconds since the epoch (record timestamps).
inline int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace rill::client::internal
