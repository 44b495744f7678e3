#pragma once

// The faults of rill-chaos, each a named nemesis (tests/fault/README.md). One cycle applies one
// fault, records it in the history (fault, led, leader, heal), heals it, and waits for the
// cluster to be whole again (every node serving, every partition with a leader and a full ISR).
// Every random choice comes from the run's seeded generator.

#include <atomic>
#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "chaos_cluster.h"
#include "history.h"
#include "network_partition.h"

namespace rill::fault {

enum class FaultKind {
  kKillLeader,       // kill -9 of a random partition's leader; restarted after failover
  kKillController,   // kill -9 of the active controller; restarted after failover
  kPause,            // SIGSTOP of a random partition's leader past the session timeout, SIGCONT
  kRestartAll,       // kill -9 of every broker at once, all started again
  kCorruptTail,      // kill -9 of a follower, its active segment's last batch damaged, restart
  kLostDisk,         // kill -9 of a broker, its partition directories removed, restart
  kLostDiskFast,     // the same, restarted at once (before it is fenced)
  kPartition,        // a leader cut off from the other brokers both ways, then healed
  kPartitionOneWay,  // a leader's packets to the other brokers dropped, then healed
  kSlowDisk,         // a follower's fsyncs delayed, then fast again
};

// Every kind (in the order of value), and the default set of a run without --faults.
const std::vector<FaultKind>& AllFaultKinds();
const std::vector<FaultKind>& DefaultFaultKinds();
const char* FaultName(FaultKind kind);
std::optional<FaultKind> ParseFault(const std::string& name);
// Whether the kind needs iptables and cgroups (NetworkPartition).
bool NeedsNetwork(FaultKind kind);

struct NemesisOptions {
  std::string topic;
  int partitions = 4;
  int session_timeout_ms = 3000;
  // How long a fault lasts beyond what it needs (failover, the session timeout): up to this,
  // chosen at random.
  int max_extra_hold_ms = 2000;
  // Bound on the wait for the cluster to be whole again after a heal.
  int recovery_timeout_ms = 90000;
  // Topics whose partition directories the lost-disk fault removes.
  std::vector<std::string> lost_disk_topics;
  // True once the run is asked to stop (SIGINT/SIGTERM): a fault's hold ends early, so the
  // heal and cleanup follow at once. Null: never.
  const std::atomic<bool>* interrupted = nullptr;
};

class Nemesis {
 public:
  // `network` may be null when no network fault is used.
  Nemesis(ChaosCluster* cluster, NetworkPartition* network, HistoryWriter* history,
          std::mt19937_64* rng, NemesisOptions options);

  // Applies, holds and heals one fault, then waits for recovery. False (with *error) when the
  // harness could not do its part or the cluster did not recover in time.
  bool RunCycle(FaultKind kind, std::string* error);
  // Undoes whatever is still in effect (paused or stopped brokers, rules, slow disks); for the
  // end of a run, also after a failure.
  void HealAll();
  // Every node serving, every partition of the topic led by a running node with a full ISR.
  bool WaitHealthy(std::chrono::milliseconds timeout, std::string* error);

 private:
  struct Target {
    int node = -1;
    std::vector<int> led;  // partitions it led
  };
  // The leader of a random partition (or a random node, or a random follower of it).
  std::optional<Target> RandomLeader();
  std::optional<Target> RandomFollower(int* partition);
  std::vector<int> PartitionsLedBy(int node);
  // Called once the fault is in effect: its time is where unavailability is measured from.
  void RecordFault(FaultKind kind, const Target& target);
  void RecordHeal(FaultKind kind, int node);
  // Polls metadata until every partition in `target.led` has a leader other than the target,
  // recording each new leader; false on timeout.
  bool WaitFailover(const Target& target, std::chrono::milliseconds timeout);
  bool WaitFenced(int node, std::chrono::milliseconds timeout);
  bool Restart(int node, std::string* error);
  void Hold(std::chrono::milliseconds at_least);
  void Note(const std::string& what, int node, int partition = -1);

  ChaosCluster* cluster_;
  NetworkPartition* network_;
  HistoryWriter* history_;
  std::mt19937_64* rng_;
  NemesisOptions options_;
  std::vector<int> slow_nodes_;
};

}  // namespace rill::fault
