#pragma once

// rill::client::Admin: topics, partitions, configs, the cluster, metadata and consumer groups.
// Each call is one blocking RPC with request_timeout_ms as its deadline (group calls may take a
// few RPCs: see the consumer-group section below). Transport failures come back as the
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
  // DescribeCluster only: no heartbeat within the session timeout, or shut down. Metadata lists
  // unfenced brokers only.
  bool fenced = false;
};

// The outcome of a preferred-leader election for one partition (Admin::ElectLeaders).
struct ElectionResult {
  std::string topic;
  int32_t partition = 0;
  // OK when the preferred replica took the leadership; otherwise the broker's code and message:
  // ELECTION_NOT_NEEDED (it leads already), PREFERRED_LEADER_NOT_AVAILABLE (fenced or not in
  // the ISR), UNKNOWN_TOPIC, UNKNOWN_PARTITION.
  Status status;
  int32_t leader_id = -1;  // after the election
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

// ---------------------------------------------------------------- consumer groups

struct GroupListing {
  std::string group_id;
  std::string state;  // Empty, Assigning, Reconciling, Stable, Dead
  int32_t members = 0;
};

struct GroupMemberDescription {
  std::string member_id;
  std::string instance_id;  // empty unless static membership (group.instance.id)
  std::string client_id;
  std::string host;
  int32_t member_epoch = 0;
  std::vector<TopicPartition> assignment;         // what the member owns now
  std::vector<TopicPartition> target_assignment;  // where reconciliation is heading
};

struct GroupPartitionLag {
  std::string topic;
  int32_t partition = 0;
  int64_t committed_offset = -1;  // -1: nothing committed
  int64_t log_end_offset = 0;     // the high watermark
  int64_t lag = 0;                // log end - committed (from the log start when uncommitted)
  std::string owner_member_id;    // empty when no member owns the partition
};

struct GroupDescription {
  std::string group_id;
  std::string state;
  int32_t group_epoch = 0;
  std::string assignor;
  int32_t coordinator_id = -1;
  std::vector<GroupMemberDescription> members;
  std::vector<GroupPartitionLag> partitions;  // sorted by topic, partition
  int64_t total_lag = 0;
};

// One partition's committed offset, as read (FetchOffsets), written (CommitOffsets) or
// computed (ResetOffsets). `status` is that partition's outcome (OK, or e.g. UNKNOWN_TOPIC).
struct GroupOffset {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = -1;  // the next offset to consume; -1: nothing committed
  std::string metadata;
  Status status;
};

// What ResetOffsets moves the committed offsets to. The broker clamps the result to
// [log start, high watermark]; kTimestamp with no record at or after `value` goes to the end;
// kShiftBy shifts the committed offset (the log start when nothing is committed) by `value`.
struct GroupOffsetReset {
  enum class To { kEarliest, kLatest, kOffset, kTimestamp, kShiftBy };
  To to = To::kEarliest;
  int64_t value = 0;  // the offset, timestamp (ms) or shift; unused for kEarliest/kLatest
  // Which partitions: every partition of `topics`, plus `partitions`. Both empty: every
  // partition the group has committed offsets for.
  std::vector<std::string> topics;
  std::vector<TopicPartition> partitions;
  // Compute and return the new offsets without committing them.
  bool dry_run = false;
};

class AdminImpl;

class Admin {
 public:
  static Result<std::unique_ptr<Admin>> Create(const AdminConfig& config);
  ~Admin();

  Result<std::vector<TopicOutcome>> CreateTopics(const std::vector<NewTopic>& topics,
                                                 bool validate_only = false);
  // Internal topics (__consumer_offsets) are refused per topic (INVALID_REQUEST) unless
  // allow_internal.
  Result<std::vector<TopicOutcome>> DeleteTopics(const std::vector<std::string>& topics,
                                                 bool allow_internal = false);
  Result<std::vector<TopicListing>> ListTopics(bool include_internal = false);
  Result<std::vector<TopicInfo>> DescribeTopics(const std::vector<std::string>& topics);
  // Grows `topic` to new_total_count partitions.
  Status CreatePartitions(const std::string& topic, int32_t new_total_count);
  Result<std::vector<ConfigEntry>> DescribeConfigs(const std::string& topic);
  // Sets `set` and resets `reset` to their defaults, atomically.
  Status AlterConfigs(const std::string& topic, const std::map<std::string, std::string>& set,
                      const std::vector<std::string>& reset = {}, bool validate_only = false);
  Result<ClusterInfo> DescribeCluster();
  // Preferred-leader election: every named partition (every partition of a topic mapped to an
  // empty list; every partition of every topic when `targets` is empty) is led by its first
  // replica again when that replica is unfenced and in the ISR. One result per partition.
  Result<std::vector<ElectionResult>> ElectLeaders(
      const std::map<std::string, std::vector<int32_t>>& targets = {});
  // Metadata.Get; an empty list means every topic.
  Result<ClusterMetadata> Metadata(const std::vector<std::string>& topics = {});

  // Consumer groups. Each call goes to the group's coordinator (the leader of its
  // __consumer_offsets partition): the Admin follows NOT_COORDINATOR to it and retries
  // COORDINATOR_NOT_AVAILABLE (the coordinator is loading, or __consumer_offsets is being created
  // on first use) until request_timeout_ms has passed. Broker errors come back as a Status
  // carrying the broker's code and message ("GROUP_ID_NOT_FOUND: no group g" is kNotFound,
  // "GROUP_NOT_EMPTY: ..." is kFailed).
  //
  // Every group of every broker (each broker lists the groups it coordinates).
  Result<std::vector<GroupListing>> ListGroups();
  // State, members and per-partition lag. NotFound for a group with neither members nor offsets.
  Result<GroupDescription> DescribeGroup(const std::string& group_id);
  // Committed offsets of `partitions`, or of every committed partition when empty.
  Result<std::vector<GroupOffset>> FetchOffsets(const std::string& group_id,
                                                const std::vector<TopicPartition>& partitions = {});
  // Commits offsets from outside the group (Kafka's alterConsumerGroupOffsets); the broker
  // accepts it for a group that has no active members. Per-partition outcomes are in the result.
  Result<std::vector<GroupOffset>> CommitOffsets(const std::string& group_id,
                                                 const std::vector<GroupOffset>& offsets);
  // Moves committed offsets (see GroupOffsetReset). Refused with GROUP_NOT_EMPTY (kFailed) while
  // the group has active members. Returns the new offsets (also with dry_run).
  Result<std::vector<GroupOffset>> ResetOffsets(const std::string& group_id,
                                                const GroupOffsetReset& reset);
  // Deletes the group and its offsets. GROUP_NOT_EMPTY while members remain; NotFound if unknown.
  Status DeleteGroup(const std::string& group_id);

  // Convenience: the first error of a CreateTopics/DeleteTopics outcome list, or OK.
  static Status FirstError(const std::vector<TopicOutcome>& outcomes);

 private:
  explicit Admin(std::unique_ptr<AdminImpl> impl);
  std::unique_ptr<AdminImpl> impl_;
};

}  // namespace rill::client
