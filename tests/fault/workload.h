#pragma once

// The load a fault-injection run puts on the cluster, every operation recorded in the history
// (history.h): acks=all producers writing unique values ("w<producer>-<n>") to every partition,
// a plain consumer reading every partition from the start, and the members of one consumer
// group reading and committing (their rebalance callbacks recorded as assign/revoke/lost).
// Consumers never reset a position on their own (auto_offset_reset = error): an out-of-range
// answer is recorded and the same offset fetched again. The group must have a committed offset
// for every partition before Start (see CommitInitialOffsets).
//
// Thread-safety: Start and Stop from one thread; the counters from any.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "history.h"
#include "rill/client/admin.h"

namespace rill::fault {

struct WorkloadOptions {
  std::string bootstrap;
  std::string topic;
  std::string group;
  int partitions = 4;
  int producers = 3;
  // Records per second each producer sends (paced), and records it may have unacknowledged per
  // partition (a partition without a leader holds up only its own window).
  int rate_per_producer = 300;
  int window_per_partition = 16;
  int plain_consumers = 1;
  int group_members = 2;
  // How often a group member commits its positions.
  int commit_interval_ms = 500;
  int delivery_timeout_ms = 30000;
  // Consumers reset a position the broker calls out of range to the log start themselves (the
  // client's auto_offset_reset = earliest) instead of reporting it: a rewind then shows as
  // out-of-order reads (known bug 1 in tests/fault/README.md).
  bool reset_earliest = false;
  // Producers are idempotent (the client's default with acks=-1; docs/IDEMPOTENCE.md): no
  // duplicates, and each partition's records in send order, whatever the faults.
  bool idempotence = true;
};

// Commits offset 0 for every partition for the (still empty) group, recorded as commits of
// process "admin"; false with *error when the coordinator refused.
bool CommitInitialOffsets(client::Admin& admin, const WorkloadOptions& options,
                          HistoryWriter* history, std::string* error);

class Workload {
 public:
  Workload(WorkloadOptions options, HistoryWriter* history);
  ~Workload();  // Stop()s

  void Start();
  // Stops sending, waits for every outstanding send (up to the delivery timeout), then stops the
  // consumers (group members leave the group, committing their positions).
  void Stop();

  int64_t acked() const { return acked_.load(); }
  int64_t send_errors() const { return send_errors_.load(); }

 private:
  void RunProducer(int index);
  void RunPlainConsumer(int index);
  void RunGroupMember(int index);

  const WorkloadOptions options_;
  HistoryWriter* const history_;
  std::atomic<bool> stop_producers_{false};
  std::atomic<bool> stop_consumers_{false};
  std::atomic<int64_t> acked_{0};
  std::atomic<int64_t> send_errors_{0};
  std::vector<std::thread> producers_;
  std::vector<std::thread> consumers_;
};

}  // namespace rill::fault
