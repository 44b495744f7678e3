#pragma once

// What the gRPC services share: configuration, the controller, local partitions, metrics, the
// I/O threads for long polls and pushes. (The broker-wide produce bound is ProducerService's
// ProduceReadGate.)
//
// Thread-safety: the pointed-to objects are thread-safe; the struct itself is immutable after
// construction except for the atomics.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <string>

#include "controller/controller.h"
#include "server/disk_space.h"
#include "http/metrics.h"
#include "partition/partition_manager.h"
#include "rill/broker/config.h"
#include "rill/v1/common.pb.h"

namespace rill::broker {

struct ServiceContext {
  const BrokerConfig* config = nullptr;
  Controller* controller = nullptr;
  PartitionManager* partitions = nullptr;
  Metrics* metrics = nullptr;
  DiskSpaceGuard* disk = nullptr;  // null: produce is never refused for disk space
  boost::asio::io_context* io = nullptr;
  // Produce requests accepted but not yet answered (shutdown waits for them).
  std::atomic<int64_t> inflight_produce_requests{0};
  // Set when shutdown begins: new long polls return at once, pushes stop.
  std::atomic<bool> stopping{false};
};

// The per-partition error for a partition that is not open here: UNKNOWN_TOPIC when the image
// has no such topic, UNKNOWN_PARTITION when the topic has fewer partitions, NOT_LEADER with the
// leader's address otherwise. Fills `hint` (may be null) for NOT_LEADER.
v1::ErrorCode MissingPartitionError(const ServiceContext& ctx, const std::string& topic,
                                    int32_t partition, std::string* message, v1::LeaderHint* hint);

// Fills a NOT_LEADER hint for a partition this node hosts but does not lead.
void FillLeaderHint(const ServiceContext& ctx, const std::string& topic, int32_t partition,
                    v1::LeaderHint* hint);

}  // namespace rill::broker
