#pragma once

// Seeds for randomised tests: RILL_SEED=<n> replays a run; otherwise a fresh seed is drawn.
// Tests put the seed in a SCOPED_TRACE so every failure message prints it.

#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>

namespace rill::testing {

inline uint64_t TestSeed() {
  if (const char* s = std::getenv("RILL_SEED"); s != nullptr && *s != '\0') {
    return std::strtoull(s, nullptr, 10);
  }
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) | rd();
}

inline std::string SeedTrace(uint64_t seed) {
  return "seed " + std::to_string(seed) + " (replay with RILL_SEED=" + std::to_string(seed) + ")";
}

}  // namespace rill::testing
