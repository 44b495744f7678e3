#pragma once

// Deterministic simulator for the partition leader/follower (ISR) protocol
// (rill/replication/partition_replica.h). One partition, RF replicas (ids 1..RF) and a model
// controller (id 0). One seeded PRNG drives message loss, delay and reordering, one-replica
// partitions (from the controller, from the peers, or both), crashes that lose whatever was not
// yet durable, and restarts. Leaders run LeaderReplica and followers FollowerReplica exactly as
// the broker does; a producer appends unique values with acks=all and consumers read below the
// high watermark. Checkers run after every step (see replica_sim.cc); a safety phase with faults
// is followed by a liveness phase that heals everything and requires convergence.

#include <cstdint>
#include <string>
#include <string_view>

namespace rill::replication::sim {

// Bugs the checkers must catch (--plant-bug NAME); each is planted in the driver or the
// controller model, never in the core.
enum class PlantedBug {
  kNone,
  kHwOverAllReplicas,        // the leader's HW is the max durable end over all replicas
  kAckBeforeFollowerFsync,   // followers report their log end as their durable end
  kFollowerSkipsTruncation,  // a follower told kDiverging keeps its log (and claims the epoch)
  kElectOutsideIsr,          // the controller elects any live replica
};
bool ParsePlantedBug(std::string_view name, PlantedBug* bug);
const char* PlantedBugName(PlantedBug bug);

struct SimOptions {
  uint64_t seed = 1;
  int replicas = 3;           // RF; min.insync.replicas is RF/2 + 1 (2 of 3, 3 of 5)
  int steps = 600;            // ticks of the safety phase
  int liveness_ticks = 1500;  // bound on the liveness phase
  bool trace = false;         // print every event to stderr
  PlantedBug bug = PlantedBug::kNone;
};

struct SimResult {
  bool ok = true;
  std::string failure;  // what was violated, and when
  // Statistics, for the summary line.
  uint64_t acked = 0;
  uint64_t consumed = 0;
  uint64_t elections = 0;
  uint64_t crashes = 0;
  uint64_t isr_changes = 0;
  uint64_t truncations = 0;
  uint64_t messages = 0;
};

SimResult RunSimulation(const SimOptions& options);

// The command line that replays `options`.
std::string ReplayCommand(const SimOptions& options);

}  // namespace rill::replication::sim
