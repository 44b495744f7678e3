#pragma once

// MetadataCache: who leads which partition and where each broker listens, from Metadata.Get on
// any live broker (BrokerRotation: the bootstrap list and the brokers the last response named,
// rotating away from one that cannot be reached). Thread-safe.

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "broker_rotation.h"
#include "rill/client/types.h"
#include "rill/proto/status.h"
#include "rill/v1/metadata.grpc.pb.h"

namespace rill::client::internal {

// host:port of a broker as a metadata response names it.
inline std::string BrokerAddress(const v1::Broker& b) {
  return b.host() + ":" + std::to_string(b.port());
}

class MetadataCache {
 public:
  // `bootstrap`: ConnectionConfig::bootstrap, already checked by ParseBootstrapList (an entry
  // that does not parse is used as it is).
  MetadataCache(const std::string& bootstrap, int32_t timeout_ms);

  // Fetches metadata for `topics` (every topic when empty) from the first broker that answers
  // and merges it into the cache. Per topic errors are kept out of the cache and returned in the
  // response. Unavailable/Timeout naming the brokers tried when none answers.
  Result<v1::MetadataResponse> Refresh(const std::vector<std::string>& topics);

  // -1 when unknown or leaderless.
  int32_t LeaderOf(const TopicPartition& tp) const;
  // -1 when the topic is unknown.
  int32_t PartitionCount(const std::string& topic) const;
  // host:port of a broker. With a single known broker (or an unknown node) it is LiveAddress(),
  // so a single node works whatever host name it advertises.
  std::string AddressOf(int32_t node_id) const;
  std::set<int32_t> LeaderNodes() const;
  // host:port of the active controller per the last response; empty when unknown.
  std::string ControllerAddress() const;
  // A broker that answered last (else the next to try): where requests that any broker can
  // answer go.
  std::string LiveAddress() const { return rotation_.Live(); }

  // A connection to `address` failed (gRPC UNAVAILABLE or DEADLINE_EXCEEDED): metadata is asked
  // of other brokers first, and every partition it led is leaderless in the cache until the next
  // refresh says otherwise (so nothing is sent there on stale information).
  void ReportUnreachable(const std::string& address);

  BrokerRotation& rotation() { return rotation_; }

 private:
  std::string AddressOfLocked(int32_t node_id) const;

  const int32_t timeout_ms_;
  BrokerRotation rotation_;
  mutable std::mutex mu_;
  std::map<std::string, std::vector<int32_t>> leaders_;  // topic -> leader per partition
  std::map<int32_t, std::string> addresses_;             // of the last response
  int32_t controller_id_ = -1;                           // of the last response
};

}  // namespace rill::client::internal
