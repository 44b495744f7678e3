#pragma once

// Waiting in tests. A test never sleeps to let something happen; it states the condition it
// needs and polls it with a deadline, then asserts on the outcome. Polling (rather than a
// condition variable) is for conditions nothing notifies about: another process, a file, an
// HTTP endpoint, a background thread's visible effect.
//
//   ASSERT_TRUE(rill::test::PollUntil([&] { return log.durable_offset() >= 10; }));

#include <chrono>
#include <thread>

namespace rill::test {

// Calls `cond` until it returns true or `timeout` has passed, pausing `interval` between calls;
// returns the last result (true as soon as the condition holds).
template <typename F>
bool PollUntil(F&& cond, std::chrono::milliseconds timeout = std::chrono::seconds(20),
               std::chrono::milliseconds interval = std::chrono::milliseconds(2)) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!cond()) {
    if (std::chrono::steady_clock::now() >= end) return cond();
    std::this_thread::sleep_for(interval);
  }
  return true;
}

}  // namespace rill::test
