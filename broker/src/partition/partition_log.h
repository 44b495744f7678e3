#pragma once

// The seam between the broker and storage/: one partition's log as the data path uses it, and
// the store that opens and removes logs. The production implementation wraps storage::Log and
// storage::LogManager (storage_log_store.cc); tests use an in-memory one.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "rill/proto/status.h"
#include "rill/proto/types.h"
#include "rill/replication/partition_replica.h"
#include "rill/storage/producer_state.h"

namespace rill::broker {

struct ReadInfo {
  std::string data;        // whole batches back to back
  Offset next_offset{-1};  // offset after the last returned batch
};

struct AppendInfo {
  Offset base_offset{-1};  // first offset of the first batch appended
  Offset last_offset{-1};  // last offset of the last batch appended
  // The request was one idempotent batch already in the log (a producer's retry): nothing was
  // appended, and the offsets are the ones the original was given (docs/IDEMPOTENCE.md).
  bool duplicate = false;
};

// A record found by timestamp.
struct OffsetAndTimestamp {
  Offset offset{-1};          // -1 when no record is that late
  int64_t timestamp_ms = -1;  // the record's timestamp
};

// What one retention pass removed from a log.
struct RetentionInfo {
  int segments = 0;    // whole segments deleted
  uint64_t bytes = 0;  // their size
};

// Effective topic configs (defaults, broker defaults, topic overrides merged).
using TopicConfigMap = std::map<std::string, std::string>;

// Thread-safety: Append() has a single caller at a time (Partition serialises it); every other
// method may be called from any thread concurrently with Append().
//
// Errors: a closed log (its topic deleted, the broker stopping) answers kFailed, as a log that
// failed does; kUnavailable is left to mean "not the leader" (Partition::Append), so the API
// layer (api/wire_errors.h) can tell a client STORAGE_ERROR from NOT_LEADER.
class PartitionLog {
 public:
  virtual ~PartitionLog() = default;

  // Appends whole, validated batches (concatenated) in place: stamps base offsets and
  // `epoch` into `batches`, writes them to the page cache. Durability comes later (OnDurable).
  // Idempotent batches are checked against the log's producer state first (storage::Log::Append
  // says how): a retry of a batch already in the log appends nothing and answers its original
  // offsets with `duplicate` set; a refused batch fails with the table's verdict in *refusal
  // (when not null) and nothing is written.
  virtual Result<AppendInfo> Append(std::span<char> batches, LeaderEpoch epoch,
                                    storage::ProducerCheck* refusal) = 0;

  // A follower's append: whole batches copied from the leader, their base offsets and leader
  // epochs kept as they are. The first must start at log_end_offset() and the batches must be
  // contiguous; otherwise kInvalidArgument and nothing is written. Same single-writer rule.
  virtual Result<AppendInfo> AppendReplicated(std::span<const char> batches) = 0;

  // Removes every batch at or after `offset` (a follower dropping a divergent suffix); an offset
  // at or below the log start empties the log and restarts it there. Single-writer rule.
  virtual Status TruncateTo(Offset offset) = 0;

  // The log's leader-epoch history (which epoch wrote which offsets), oldest first.
  virtual std::vector<replication::EpochEntry> epoch_history() const = 0;

  // Whole batches from the one holding `from` onwards, none starting at or after `max_offset`,
  // at most `max_bytes` except that the first batch is always returned whole so a consumer can
  // progress. Empty when from >= max_offset. OutOfRange when `from` is below the log start.
  virtual Result<ReadInfo> Read(Offset from, size_t max_bytes, Offset max_offset) = 0;

  // Offset of the first record (in offset order, at or after the log start) whose timestamp is
  // >= ts_ms, as Kafka's ListOffsets by timestamp; Offset(-1) when no record is that late.
  virtual Result<Offset> OffsetForTimestamp(int64_t ts_ms) = 0;
  // OffsetForTimestamp with that record's timestamp. The default, for logs that only answer
  // offsets, reports timestamp -1.
  virtual Result<OffsetAndTimestamp> FindOffsetForTimestamp(int64_t ts_ms) {
    RILL_ASSIGN_OR_RETURN(Offset offset, OffsetForTimestamp(ts_ms));
    return OffsetAndTimestamp{offset, -1};
  }

  virtual Offset log_start_offset() const = 0;
  // The next offset to assign.
  virtual Offset log_end_offset() const = 0;
  // Every offset below this is durable per the flush policy (exclusive end).
  virtual Offset durable_end_offset() const = 0;
  virtual uint64_t size_bytes() const = 0;

  // Calls `done` once every offset below `end` is durable, or with the error that prevents it.
  // `done` may run inline or on a storage thread; it must not block.
  virtual void OnDurable(Offset end, std::function<void(Status)> done) = 0;

  virtual Status ApplyConfig(const TopicConfigMap& config) = 0;

  // Deletes the oldest whole closed segments (never the active one) whose records are all older
  // than retention.ms before `now_ms`, or beyond retention.bytes, advancing log_start_offset().
  // The housekeeper (housekeeper.h) calls it; reads racing it get OutOfRange below the new start.
  virtual Result<RetentionInfo> ApplyRetention(int64_t now_ms) = 0;
};

class LogStore {
 public:
  virtual ~LogStore() = default;
  // Opens (recovering) or creates the log of topic-partition for the topic whose id is
  // `topic_id`. A log left by another topic of the same name (an earlier topic id: the topic was
  // deleted and re-created while this broker was not looking) is removed and a fresh log
  // created; a log that names no topic id is adopted. An empty `topic_id` checks nothing.
  virtual Result<std::shared_ptr<PartitionLog>> Open(const std::string& topic,
                                                     const std::string& topic_id, int32_t partition,
                                                     const TopicConfigMap& config) = 0;
  // Closes the log and deletes its files. The caller has dropped its references.
  virtual Status Remove(const std::string& topic, int32_t partition) = 0;
  // Deletes every stored partition log whose name ("<topic>-<partition>") is not in `keep` and
  // that is not open; returns the names removed. Only what the store recognises as one of its
  // partition logs is touched.
  virtual Result<std::vector<std::string>> RemoveStrayLogs(const std::set<std::string>& keep) = 0;
  // Flushes and closes every log (writes recovery checkpoints).
  virtual Status CloseAll() = 0;
  // Called after each fsync round of a log opened from now on (for metrics); must be cheap and
  // thread-safe. Stores without fsyncs ignore it.
  using FlushObserver = std::function<void(std::chrono::nanoseconds elapsed, uint64_t bytes)>;
  virtual void SetFlushObserver(FlushObserver observer) { (void)observer; }
  // Shared syncs run so far and the log rounds they served (storage::FlushScheduler); 0 and 0
  // for stores without them. Thread-safe.
  virtual std::pair<uint64_t, uint64_t> SharedSyncs() const { return {0, 0}; }
};

}  // namespace rill::broker
