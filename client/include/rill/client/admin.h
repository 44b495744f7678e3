#pragma once

// rill::client::Admin: topics, partitions, configs, the cluster and metadata. Each call is one
// blocking RPC with request_timeout_ms as its deadline. Transport failures come back as the
// Result's Status (Unavailable "cannot reach localhost:9092: ..."); per-topic outcomes are values
// in the result (TopicOutcome.status), so a call on several topics can partly succeed.
// Thread-safety: every method may be called from any thread.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rill/client/config.h"
#include "rill/client/types.h"
#include "rill/proto/status.h"

namespace rill::client {

struct NewTopic {
  std::string name;
  int32_t partitions = 0;          // 0 = broker default
  int32_t replication_factor = 0;  // 0 = broker default
  std::map<std::string, std::string> configs;
};

struct TopicOutcome {
  std::string topic;
  Status status;  // OK, or the broker's error code and message
};

struct TopicListing {
  std::string name;
  int32_t partitions = 0;
  int32_t replication_factor = 0;
  bool internal = false;
};

struct PartitionInfo {
  int32_t partition = 0;
  int32_t leader_id = -1;
  int32_t leader_epoch = 0;
  std::vector<int32_t> replicas;
  std::vector<int32_t> isr;
  int64_t log_start_offset = 0;
  int64_t high_watermark = 0;
  int64_t log_end_offset = 0;
  int64_t size_bytes = 0;
};

struct TopicInfo {
  std::string name;
  Status status;
  bool internal = false;
  std::vector<PartitionInfo> partitions;
  std::map<std::string, std::string> configs;  // effective values
};

struct ConfigEntry {
  std::string name;
  std::string value;
  bool is_default = false;
  std::string documentation;
};

struct BrokerInfo {
  int32_t node_id = -1;
  std::string host;
  int32_t port = 0;
  std::string rack;
};

struct ClusterInfo {
  std::string cluster_id;
  int32_t controller_id = -1;
  std::vector<BrokerInfo> brokers;
};

struct PartitionMetadata {
  int32_t partition = 0;
  Status status;
  int32_t leader_id = -1;
  int32_t leader_epoch = 0;
  std::vector<int32_t> replicas;
  std::vector<int32_t> isr;
};

struct TopicMetadata {
  std::string name;
  Status status;
  bool internal = false;
  std::vector<PartitionMetadata> partitions;
};

struct ClusterMetadata {
  std::string cluster_id;
  int32_t controller_id = -1;
  std::vector<BrokerInfo> brokers;
  std::vector<TopicMetadata> topics;
};

class AdminImpl;

class Admin {
 public:
  static Result<std::unique_ptr<Admin>> Create(const AdminConfig& config);
  ~Admin();

  Result<std::vector<TopicOutcome>> CreateTopics(const std::vector<NewTopic>& topics,
                                                 bool validate_only = false);
  Result<std::vector<TopicOutcome>> DeleteTopics(const std::vector<std::string>& topics);
  Result<std::vector<TopicListing>> ListTopics(bool include_internal = false);
  Result<std::vector<TopicInfo>> DescribeTopics(const std::vector<std::string>& topics);
  // Grows `topic` to new_total_count partitions.
  Status CreatePartitions(const std::string& topic, int32_t new_total_count);
  Result<std::vector<ConfigEntry>> DescribeConfigs(const std::string& topic);
  // Sets `set` and resets `reset` to their defaults, atomically.
  Status AlterConfigs(const std::string& topic, const std::map<std::string, std::string>& set,
                      const std::vector<std::string>& reset = {}, bool validate_only = false);
  Result<ClusterInfo> DescribeCluster();
  // Metadata.Get; an empty list means every topic.
  Result<ClusterMetadata> Metadata(const std::vector<std::string>& topics = {});

  // Convenience: the first error of a CreateTopics/DeleteTopics outcome list, or OK.
  static Status FirstError(const std::vector<TopicOutcome>& outcomes);

 private:
  explicit Admin(std::unique_ptr<AdminImpl> impl);
  std::unique_ptr<AdminImpl> impl_;
};

}  // namespace rill::client
