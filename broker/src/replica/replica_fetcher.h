#pragma once

// The follower side of partition replication (docs/ARCHITECTURE.md §7a). One fetcher thread per
// broker this node follows partitions of ("rill-fetch-<leader>"; at most one per other broker,
// never one per partition), each with one long-lived ReplicaFetch stream that names every
// partition the two share. A round: build the request from each partition's follower state
// machine (Partition::NextReplicaFetch), send it, apply each partition's answer (append the
// leader's batches as they are, truncate a divergent suffix, take the high watermark), then
// wait until what was appended is durable under this node's flush policy, so the next request
// reports a durable end the leader can count for the high watermark.
//
// The ISR keeper, on the same manager, asks the controller for the ISR changes the partitions
// this node leads want (followers too slow for replica.lag.time.max.ms leave; caught-up ones
// return), one at a time per partition.

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "controller/controller.h"
#include "partition/partition_manager.h"

namespace rill::broker {

struct ReplicaFetcherConfig {
  NodeId self{-1};
  int32_t max_wait_ms = 500;
  int32_t max_bytes = 16 << 20;
  int32_t partition_max_bytes = 1 << 20;
  int32_t backoff_ms = 100;         // after a failed round (connection, leader not ready)
  int32_t durable_wait_ms = 10000;  // bound on waiting for appended data to become durable
  int32_t isr_check_interval_ms = 100;
};

class ReplicaFetcherManager {
 public:
  ReplicaFetcherManager(ReplicaFetcherConfig config, PartitionManager* partitions,
                        Controller* controller);
  ~ReplicaFetcherManager();

  // Starts the ISR keeper; fetchers start as follower partitions appear (Refresh).
  void Start();
  // Stops every thread (cancelling streams); idempotent.
  void Stop();
  // Re-reads which local partitions follow which leader (call after each applied image).
  void Refresh();

  // Followers and their leaders, for /metrics.
  size_t fetcher_count() const;

 private:
  class Fetcher;

  void RunIsrKeeper();

  const ReplicaFetcherConfig config_;
  PartitionManager* const partitions_;
  Controller* const controller_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::map<NodeId, std::unique_ptr<Fetcher>> fetchers_;  // by leader
  std::thread isr_keeper_;
};

}  // namespace rill::broker
