// rill_replica_sim: runs the deterministic partition-replication simulator over one seed or a
// range of seeds.
//
//   rill_replica_sim --seed 42                  one run (RF 3 unless --replicas)
//   rill_replica_sim --seeds 1000 --first-seed 1 [--replicas 3|5]
//                                               seeds [first, first+count); without --replicas
//                                               every fourth seed runs RF 5, the others RF 3
//   --steps N (safety ticks), --trace (print every event)
//   --plant-bug NAME: hw-over-all-replicas, ack-before-follower-fsync,
//                     follower-skips-truncation, elect-outside-isr
//   --expect-failure: exit 0 only if some seed fails (for the planted-bug tests)
//
// Exit status 0 when every run passes. The first failure prints the violated property and the
// exact command that replays it, then exits 1. An assertion inside the core prints the replay
// command too (SIGABRT handler).

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "replica_sim.h"

namespace {

char g_replay[256];

void OnAbort(int) {
  const char prefix[] = "\nrill_replica_sim: aborted; replay with: ";
  (void)!write(2, prefix, sizeof(prefix) - 1);
  (void)!write(2, g_replay, std::strlen(g_replay));
  (void)!write(2, "\n", 1);
  std::signal(SIGABRT, SIG_DFL);
  std::abort();
}

[[noreturn]] void Usage() {
  std::fprintf(stderr,
               "usage: rill_replica_sim [--seed N | --seeds COUNT [--first-seed N]]"
               " [--replicas 3|5] [--steps N] [--plant-bug NAME] [--expect-failure]"
               " [--trace]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  namespace sim = rill::replication::sim;
  uint64_t first_seed = 1;
  uint64_t count = 1;
  int replicas = 0;  // 0: alternate
  bool expect_failure = false;
  sim::SimOptions base;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) Usage();
      return argv[++i];
    };
    if (a == "--seed") {
      first_seed = std::strtoull(next(), nullptr, 10);
      count = 1;
    } else if (a == "--seeds") {
      count = std::strtoull(next(), nullptr, 10);
    } else if (a == "--first-seed") {
      first_seed = std::strtoull(next(), nullptr, 10);
    } else if (a == "--replicas") {
      replicas = std::atoi(next());
      if (replicas < 1) Usage();
    } else if (a == "--steps") {
      base.steps = std::atoi(next());
    } else if (a == "--plant-bug") {
      if (!sim::ParsePlantedBug(next(), &base.bug)) Usage();
    } else if (a == "--expect-failure") {
      expect_failure = true;
    } else if (a == "--trace") {
      base.trace = true;
    } else {
      Usage();
    }
  }
  std::signal(SIGABRT, OnAbort);
  uint64_t acked = 0, consumed = 0, elections = 0, crashes = 0, isr_changes = 0, truncations = 0,
           messages = 0;
  for (uint64_t seed = first_seed; seed < first_seed + count; ++seed) {
    sim::SimOptions o = base;
    o.seed = seed;
    o.replicas = replicas > 0 ? replicas : (seed % 4 == 0 ? 5 : 3);
    std::snprintf(g_replay, sizeof(g_replay), "%s", sim::ReplayCommand(o).c_str());
    auto r = sim::RunSimulation(o);
    if (!r.ok) {
      std::fprintf(stderr, "rill_replica_sim: seed %lu FAILED: %s\nreplay with: %s\n",
                   (unsigned long)seed, r.failure.c_str(), g_replay);
      if (expect_failure) {
        std::printf("rill_replica_sim: failed as expected (planted bug %s)\n",
                    sim::PlantedBugName(o.bug));
        return 0;
      }
      return 1;
    }
    acked += r.acked;
    consumed += r.consumed;
    elections += r.elections;
    crashes += r.crashes;
    isr_changes += r.isr_changes;
    truncations += r.truncations;
    messages += r.messages;
  }
  std::printf(
      "rill_replica_sim: %lu seeds from %lu passed: %lu values acknowledged, %lu read, %lu "
      "leaders elected, %lu ISR changes, %lu truncations, %lu crashes, %lu messages\n",
      (unsigned long)count, (unsigned long)first_seed, (unsigned long)acked,
      (unsigned long)consumed, (unsigned long)elections, (unsigned long)isr_changes,
      (unsigned long)truncations, (unsigned long)crashes, (unsigned long)messages);
  if (expect_failure) {
    std::fprintf(stderr, "rill_replica_sim: expected a failure (planted bug %s), none found\n",
                 sim::PlantedBugName(base.bug));
    return 1;
  }
  return 0;
}
