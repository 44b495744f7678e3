#pragma once

// The leader side of partition replication (docs/ARCHITECTURE.md §7a): the internal
// ReplicaFetch service. Each follower keeps one stream open to this broker and sends one request
// at a time naming every partition it follows here; each partition's part is served by
// Partition::ServeReplicaFetch (fencing, divergence, the stored batches), which also records the
// follower's durable end and so moves the high watermark. A request with nothing to send back
// is parked (LongPoll on the partitions' log ends) until an append or its max wait.

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <memory>

#include "partition/partition_manager.h"
#include "rill/internal/v1/replica.grpc.pb.h"

namespace rill::broker {

struct ReplicaFetchServiceConfig {
  int32_t max_wait_ms = 500;                  // upper bound on a request's max_wait_ms
  int32_t max_bytes = 16 << 20;               // upper bound on a response
  int32_t partition_max_bytes = 1 << 20;      // upper bound per partition
};

class ReplicaFetchService final : public internal::v1::ReplicaFetch::CallbackService {
 public:
  ReplicaFetchService(PartitionManager* partitions, boost::asio::io_context* io,
                      ReplicaFetchServiceConfig config);

  grpc::ServerBidiReactor<internal::v1::ReplicaFetchRequest, internal::v1::ReplicaFetchResponse>*
  Fetch(grpc::CallbackServerContext* context) override;

  // The broker is shutting down: from now on no request is parked (a parked request's timer
  // would keep the I/O threads, stopped before the internal listener, from running out of
  // work). A request with data is answered at once; one with nothing to send ends its stream
  // UNAVAILABLE, so followers back off instead of fetching again at once, round after round.
  void Stop() { stopping_->store(true, std::memory_order_release); }

 private:
  std::shared_ptr<std::atomic<bool>> stopping_ = std::make_shared<std::atomic<bool>>(false);
  PartitionManager* const partitions_;
  boost::asio::io_context* const io_;
  const ReplicaFetchServiceConfig config_;
};

}  // namespace rill::broker
