#pragma once

// Deterministic simulator for the Raft core (TigerBeetle's VOPR is the model). One seeded PRNG
// drives everything: message loss, delay, duplication and reordering, symmetric and asymmetric
// partitions, crashes that lose unsynced writes (and restarts), log compaction, proposals and
// leadership transfers. A safety phase with faults is followed by a liveness phase that heals
// everything and requires a new proposal to commit everywhere within a bounded number of ticks.
// Checkers run after every step; the first violation ends the run with a message. Learners, when
// present, suffer the same faults; the checkers add that a learner never campaigns, votes or
// leads, and that it commits and applies exactly what the voters do.

#include <cstdint>
#include <string>

namespace rill::raft::sim {

struct SimOptions {
  uint64_t seed = 1;
  int nodes = 3;     // voters, ids 1..nodes
  int learners = 0;  // non-voting members, ids nodes+1..nodes+learners
  int steps = 800;           // ticks of the safety phase
  int liveness_ticks = 400;  // bound on the liveness phase
  bool trace = false;        // print every event to stderr
  bool disk = false;         // DiskRaftStorage on FaultyFileSystem instead of MemoryRaftStorage
};

struct SimResult {
  bool ok = true;
  std::string failure;  // what was violated, and when
  // Statistics, for the summary line.
  uint64_t committed = 0;
  uint64_t elections = 0;
  uint64_t crashes = 0;
  uint64_t snapshots_sent = 0;
  uint64_t messages = 0;
};

SimResult RunSimulation(const SimOptions& options);

// The command line that replays `options`.
std::string ReplayCommand(const SimOptions& options);

}  // namespace rill::raft::sim
