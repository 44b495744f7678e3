#pragma once

// The production LogStore: each partition is a storage::Log in <data_dir>/<topic>-<partition>/,
// configured from the topic's effective config (controller/topic_config.h). Each partition
// directory holds an identity file (partition.metadata: the topic's name and id and the
// partition number; docs/STORAGE.md) so that a log is never served as another topic's.
//
// Thread-safety: every method may be called from any thread.

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "partition/partition_log.h"
#include "rill/storage/file_remover.h"
#include "rill/storage/flush_scheduler.h"
#include "rill/storage/log_config.h"

namespace rill::broker {

// The identity file in every partition directory.
inline constexpr std::string_view kPartitionIdentityFile = "partition.metadata";

struct PartitionIdentity {
  std::string topic;
  std::string topic_id;
  int32_t partition = 0;

  bool operator==(const PartitionIdentity&) const = default;
};

// "version: 1\ntopic: <name>\ntopic_id: <id>\npartition: <n>\n".
std::string EncodePartitionIdentity(const PartitionIdentity& id);
// Corruption when a line is malformed, the version is not 1 or a field is missing. Unknown keys
// are ignored.
Result<PartitionIdentity> DecodePartitionIdentity(std::string_view text);

class StorageLogStore final : public LogStore {
 public:
  // `preallocate_bytes`, `cache_behind_bytes`, `standby_segment_bytes` (standby_min_bytes):
  // storage::LogConfig's fields for every log. Logs and partition directories are removed through
  // one storage::FileRemover: shrunk in steps of `remove_step_bytes`, at most
  // `remove_bytes_per_sec` (0: unlinked at once). Every log's flusher runs on one
  // storage::FlushScheduler of `flush_threads` threads, which makes the groups of
  // `shared_sync_min_logs` or more logs waiting at once durable by one syncfs of the data
  // directory's filesystem (0: never; docs/STORAGE.md, Flushing: shared syncs). The logs'
  // standby segments together hold at most `standby_budget_bytes` (0: no bound).
  StorageLogStore(std::string data_dir, int64_t preallocate_bytes, int64_t cache_behind_bytes = -1,
                  int64_t standby_segment_bytes = 0, int64_t remove_step_bytes = 0,
                  int64_t remove_bytes_per_sec = 0, int32_t flush_threads = 4,
                  int32_t shared_sync_min_logs = 0, int64_t standby_budget_bytes = 0);
  ~StorageLogStore() override;

  // Writes the identity file (atomically) before the log's first segment; removes the
  // directory of an earlier topic id (logged at warn with its size) and adopts a directory
  // without an identity file (logged at info). Corruption when the identity file cannot be
  // parsed or names another topic or partition: such a log is neither served nor removed.
  Result<std::shared_ptr<PartitionLog>> Open(const std::string& topic, const std::string& topic_id,
                                             int32_t partition,
                                             const TopicConfigMap& config) override;
  Status Remove(const std::string& topic, int32_t partition) override;
  // A directory of the data dir is a stored partition log when its name is "<name>-<int>" and
  // it holds the identity file or a segment (<20 digits>.log); anything else (the controller's
  // metadata directory, __groups, files, symlinks) is never touched. Each removal is logged.
  Result<std::vector<std::string>> RemoveStrayLogs(const std::set<std::string>& keep) override;
  Status CloseAll() override;
  void SetFlushObserver(FlushObserver observer) override;
  std::pair<uint64_t, uint64_t> SharedSyncs() const override {
    return {flush_scheduler_.shared_syncs(), flush_scheduler_.shared_sync_rounds()};
  }

 private:
  class StorageLog;
  // Makes `dir` hold a log of `want` (see Open). Not called concurrently for one directory.
  Status PrepareDir(const std::string& dir, const PartitionIdentity& want);
  const std::string data_dir_;
  const int64_t preallocate_bytes_;
  const int64_t cache_behind_bytes_;
  const int64_t standby_segment_bytes_;
  std::unique_ptr<storage::StandbyBudget> standby_budget_;  // null: no bound; outlives the logs
  // Every removal of a log's files and directories (step 0: at once). Before open_: outlives
  // every log (CloseAll runs in the destructor, before members go).
  storage::FileRemover remover_;
  // The data directory's filesystem-wide sync for shared syncs (null: none), and the scheduler
  // that runs every log's flusher; both outlive every log for the same reason as remover_.
  std::unique_ptr<storage::WholeSync> whole_sync_;  // set once, under mu_, before any log uses it
  storage::FlushScheduler flush_scheduler_;
  bool whole_sync_wanted_;  // not yet opened; guarded by mu_
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<StorageLog>> open_;  // by directory name; guarded by mu_
  FlushObserver flush_observer_;                           // guarded by mu_
};

}  // namespace rill::broker
