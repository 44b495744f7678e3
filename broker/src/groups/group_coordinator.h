#pragma once

// The group coordinator (docs/ARCHITECTURE.md §8): routes each group to a partition of the internal
// topic `__consumer_offsets` (crc32c(group) % partitions), drives the rill_groups state machine for
// the groups whose partition this node leads, appends every state change and offset commit as a
// RecordBatch to that partition through the normal partition/log path, answers once the batch
// is durable, and then applies it to the materialised store (RocksDB under
// <data_dir>/__groups) together with the applied log offset. On start (and whenever it takes
// over a partition) it loads the store and replays the log suffix the store has not seen.
//
// Thread-safety: every public method may be called from any thread. All group state is guarded
// by one mutex; calls never wait for I/O while holding it except the log appends (page cache)
// and RocksDB reads/writes of the coordinator's own key range. Loading a partition (reading the
// log suffix) happens only on the ticker thread; until then calls get kCoordinatorNotAvailable.
// Completions (`done`) run on an I/O thread (GroupCoordinatorDeps::io) or inline when nothing had
// to be appended; they must not block.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "controller/controller.h"
#include "groups/consumer_group.h"
#include "groups/group_error.h"
#include "groups/offsets_materializer.h"
#include "partition/partition_manager.h"
#include "rill/broker/config.h"
#include "rill/v1/groups.pb.h"

namespace rill::storage {
class KvStore;
}

namespace rill::broker {

inline constexpr const char* kConsumerOffsetsTopic = "__consumer_offsets";

struct GroupCoordinatorConfig {
  std::string dir;                         // RocksDB directory of the materialised state
  int32_t offsets_partitions = 8;          // partitions of __consumer_offsets when created
  int32_t offsets_replication_factor = 0;  // 0: the cluster default
  size_t max_groups = 10000;               // groups per coordinator node
  int32_t tick_ms = 100;                   // session expiry / topic change check period
  groups::GroupConfig group;               // per-group bounds and timeouts
};

// What the coordinator uses of the broker. Every pointer is non-null and outlives the coordinator.
struct GroupCoordinatorDeps {
  const BrokerConfig* config = nullptr;    // this node's id
  Controller* controller = nullptr;        // creates __consumer_offsets on first use
  PartitionManager* partitions = nullptr;  // the image and the local partitions
  boost::asio::io_context* io = nullptr;   // runs completions
};

// The __consumer_offsets partition of `group_id` for a topic of `partitions` partitions.
int32_t OffsetsPartitionFor(const std::string& group_id, int32_t partitions);

// What a group call hands back to the API layer, which writes it into the response's error
// fields (api/wire_errors.h); the coordinator fills only the response's data.
struct GroupCallResult {
  groups::GroupStatus status;  // the call as a whole
  // CommitOffsets: one per entry of response->partitions(); ResetOffsets: one per entry of
  // response->offsets(); in the same order. Empty for the other calls.
  std::vector<groups::GroupStatus> partitions;
};

class GroupCoordinator {
 public:
  using Done = std::function<void(GroupCallResult)>;

  GroupCoordinator(GroupCoordinatorDeps deps, GroupCoordinatorConfig config);
  ~GroupCoordinator();

  // Starts the ticker thread (session expiry, topic changes, loading the partitions of
  // __consumer_offsets this node leads). The topic itself is created through the controller on
  // the first group call that finds it missing; the offsets store (RocksDB in config.dir) is
  // opened by the ticker when it first loads a partition of it, so a broker whose clients use
  // no groups never opens it. Until the store opens, group calls get kCoordinatorNotAvailable
  // (the ticker retries and logs why).
  Status Start();
  // Stops the ticker. Idempotent.
  void Stop();

  // Each fills the data of `response` (never its error fields) and calls `done` exactly once
  // (maybe inline) with the outcome, or returns it.
  void Heartbeat(const v1::GroupHeartbeatRequest& request, v1::GroupHeartbeatResponse* response,
                 Done done);
  void CommitOffsets(const v1::CommitOffsetsRequest& request, v1::CommitOffsetsResponse* response,
                     Done done);
  groups::GroupStatus FetchOffsets(const v1::FetchOffsetsRequest& request,
                                   v1::FetchOffsetsResponse* response);
  void ListGroups(v1::ListGroupsResponse* response);
  groups::GroupStatus DescribeGroup(const v1::DescribeGroupRequest& request,
                                    v1::DescribeGroupResponse* response);
  // ResetOffsets reports a partition it cannot move (kUnknownTopic, kUnknownPartition,
  // kNotLeader, or kLogReadFailed when its log's lookup by timestamp failed) in that partition's
  // status, with offset -1, and commits nothing for it.
  void ResetOffsets(const v1::ResetOffsetsRequest& request, v1::ResetOffsetsResponse* response,
                    Done done);
  // DeleteGroupResponse carries only the error: the outcome is all there is.
  void DeleteGroup(const v1::DeleteGroupRequest& request, Done done);

  // Prometheus lines rill_group_lag_sum / rill_group_lag_max per group with committed offsets.
  std::string RenderMetrics();

 private:
  struct PendingAppend {
    Offset base_offset{-1};
    std::vector<groups::GroupRecord> records;
    std::function<void(Status)> callback;
    bool durable = false;
    Status status;
  };
  struct OffsetsPartition {
    std::shared_ptr<Partition> partition;  // the local log (leader)
    std::unique_ptr<groups::OffsetsMaterializer> materializer;
    std::deque<std::shared_ptr<PendingAppend>> pending;  // in log order
    bool loaded = false;
  };
  struct GroupEntry {
    int32_t partition = 0;
    std::unique_ptr<groups::ConsumerGroup> group;
  };

  // Finds the loaded offsets partition coordinating `group_id` (asking the ticker to load it if
  // needed). On failure returns kInvalidRequest, kNotCoordinator or kCoordinatorNotAvailable
  // and leaves `out` unset. Caller holds mu_.
  groups::GroupStatus Resolve(const std::string& group_id, OffsetsPartition** out, int32_t* index);
  // An offsets partition read back from its log and the store, ready to install.
  struct LoadedPartition {
    std::shared_ptr<Partition> partition;
    std::unique_ptr<groups::OffsetsMaterializer> materializer;
    groups::LoadedOffsetsPartition loaded;
    size_t replayed = 0;  // log records replayed into the store
  };
  // Ticker thread: loads the offsets partitions this node now leads and forgets the others.
  // The log reads and store writes of a load run without mu_ (ReadPartition); only the install
  // takes it.
  void LoadPartitions();
  // Reads the log suffix the store has not applied and replays it (no lock; the partition is
  // out of partitions_, so nothing else writes its store keys).
  Result<LoadedPartition> ReadPartition(int32_t index, std::shared_ptr<Partition> partition);
  // Replaces the partition's groups with the loaded ones and marks it loaded. Caller holds mu_.
  void InstallPartition(int32_t index, LoadedPartition loaded);
  // Opens kv_ and store_ unless open. Ticker thread, caller holds mu_; set once, never reset
  // while the coordinator lives (materializers keep store_.get(); ReadPartition uses it
  // without mu_).
  Status OpenStore();
  // Appends `records` to the partition; `callback` runs on an I/O thread after the batch is
  // durable and applied to the store (or with the error). Caller holds mu_ and has already
  // applied the change to the in-memory group: if the append, its durability or its application
  // to the store fails, Invalidate() drops that state. Caller holds mu_.
  void Append(int32_t index, std::vector<groups::GroupRecord> records,
              std::function<void(Status)> callback);
  // A failed append leaves no in-memory change: drops the groups of offsets partition `index`
  // (their state may include changes the log does not have), fails its pending appends with
  // `cause` (their callbacks are moved to `failed`, to be run without mu_) and marks it
  // unloaded, so calls get kCoordinatorNotAvailable until the ticker reloads it from the store
  // and the log, once no append to it is in flight. Caller holds mu_.
  void Invalidate(int32_t index, const Status& cause,
                  std::vector<std::pair<std::function<void(Status)>, Status>>* failed);
  void OnDurable(int32_t index, std::shared_ptr<PendingAppend> entry, Status status);
  groups::ConsumerGroup* FindGroup(const std::string& group_id);
  groups::ConsumerGroup* CreateGroup(const std::string& group_id, int32_t index);
  groups::TopicPartitionCounts TopicCounts() const;
  void TickerLoop();
  void TickOnce();
  std::string NewMemberId();
  static int64_t NowMs();

  const GroupCoordinatorDeps deps_;
  const GroupCoordinatorConfig config_;
  std::unique_ptr<storage::KvStore> kv_;
  std::unique_ptr<groups::OffsetStore> store_;

  std::mutex mu_;
  std::map<int32_t, OffsetsPartition> partitions_;
  std::map<std::string, GroupEntry> groups_;
  std::shared_ptr<const MetadataImage> last_image_;
  std::atomic<bool> creating_topic_{false};  // may be reset inline by CreateTopics' callback
  std::mt19937_64 rng_;
  uint64_t member_counter_ = 0;

  std::mutex ticker_mu_;
  std::condition_variable ticker_cv_;
  bool stop_ = false;
  std::thread ticker_;
};

}  // namespace rill::broker
