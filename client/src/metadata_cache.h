#pragma once

// MetadataCache: who leads which partition and where each broker listens, from Metadata.Get on
// the bootstrap address. Thread-safe.

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "rill/client/types.h"
#include "rill/proto/status.h"
#include "rill/v1/metadata.grpc.pb.h"

namespace rill::client::internal {

class MetadataCache {
 public:
  MetadataCache(std::string bootstrap, int32_t timeout_ms);

  // Fetches metadata for `topics` (every topic when empty) and merges it into the cache. Per
  // topic errors are kept out of the cache and returned in the response.
  Result<v1::MetadataResponse> Refresh(const std::vector<std::string>& topics);

  // -1 when unknown or leaderless.
  int32_t LeaderOf(const TopicPartition& tp) const;
  // -1 when the topic is unknown.
  int32_t PartitionCount(const std::string& topic) const;
  // host:port of a broker. With a single known broker (or an unknown node) it is the bootstrap
  // address, so a single node works whatever host name it advertises.
  std::string AddressOf(int32_t node_id) const;
  std::set<int32_t> LeaderNodes() const;
  const std::string& bootstrap() const { return bootstrap_; }

 private:
  const std::string bootstrap_;
  const int32_t timeout_ms_;
  std::unique_ptr<v1::Metadata::Stub> stub_;
  mutable std::mutex mu_;
  std::map<std::string, std::vector<int32_t>> leaders_;  // topic -> leader per partition
  std::map<int32_t, std::string> addresses_;
};

}  // namespace rill::client::internal
