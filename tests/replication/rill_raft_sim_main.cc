// rill_raft_sim: runs the deterministic Raft simulator over one seed or a range of seeds.
//
//   rill_raft_sim --seed 42                 one run (3 nodes unless --nodes)
//   rill_raft_sim --seeds 1000 --first-seed 1 [--nodes 0]
//                                           seeds [first, first+count); --nodes 0 alternates 3/5
//   --learners L: L learners (non-voting members) besides the voters (default 0)
//   --steps N (safety ticks), --trace (print every event)
//   --disk: nodes persist with DiskRaftStorage on an in-memory FaultyFileSystem each
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

#include "raft_sim.h"

namespace {

char g_replay[256];

void OnAbort(int) {
  const char prefix[] = "\nrill_raft_sim: aborted; replay with: ";
  (void)!write(2, prefix, sizeof(prefix) - 1);
  (void)!write(2, g_replay, std::strlen(g_replay));
  (void)!write(2, "\n", 1);
  std::signal(SIGABRT, SIG_DFL);
  std::abort();
}

[[noreturn]] void Usage() {
  std::fprintf(stderr,
               "usage: rill_raft_sim [--seed N | --seeds COUNT [--first-seed N]] [--nodes 3|5|0]"
               " [--learners L] [--steps N] [--disk] [--trace]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  using rill::raft::sim::SimOptions;
  uint64_t first_seed = 1;
  uint64_t count = 1;
  int nodes = -1;  // -1: default (3 for one seed, alternate for a range)
  SimOptions base;
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
    } else if (a == "--nodes") {
      nodes = std::atoi(next());
    } else if (a == "--learners") {
      base.learners = std::atoi(next());
      if (base.learners < 0) Usage();
    } else if (a == "--steps") {
      base.steps = std::atoi(next());
    } else if (a == "--disk") {
      base.disk = true;
    } else if (a == "--trace") {
      base.trace = true;
    } else {
      Usage();
    }
  }
  std::signal(SIGABRT, OnAbort);
  uint64_t committed = 0, elections = 0, crashes = 0, snapshots = 0, messages = 0;
  for (uint64_t seed = first_seed; seed < first_seed + count; ++seed) {
    SimOptions o = base;
    o.seed = seed;
    if (nodes > 0) {
      o.nodes = nodes;
    } else {
      o.nodes = (count > 1 || nodes == 0) ? (seed % 2 ? 3 : 5) : 3;
    }
    std::snprintf(g_replay, sizeof(g_replay), "%s", rill::raft::sim::ReplayCommand(o).c_str());
    auto r = rill::raft::sim::RunSimulation(o);
    if (!r.ok) {
      std::fprintf(stderr, "rill_raft_sim: seed %lu FAILED: %s\nreplay with: %s\n",
                   (unsigned long)seed, r.failure.c_str(), g_replay);
      return 1;
    }
    committed += r.committed;
    elections += r.elections;
    crashes += r.crashes;
    snapshots += r.snapshots_sent;
    messages += r.messages;
  }
  std::printf(
      "rill_raft_sim: %lu seeds from %lu passed: %lu entries committed, %lu leaders elected, "
      "%lu crashes, %lu snapshots sent, %lu messages\n",
      (unsigned long)count, (unsigned long)first_seed, (unsigned long)committed,
      (unsigned long)elections, (unsigned long)crashes, (unsigned long)snapshots,
      (unsigned long)messages);
  return 0;
}
