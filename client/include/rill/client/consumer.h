#pragma once

// rill::client::Consumer: reads partitions, either assigned by hand (Assign) or by a consumer
// group (Subscribe; ConsumerConfig::group_id set).
//
//   ConsumerConfig config;  config.auto_offset_reset = OffsetReset::kEarliest;
//   RILL_ASSIGN_OR_RETURN(auto consumer, Consumer::Create(config));
//   consumer->Assign({{"events", 0}});
//   for (;;) {
//     RILL_ASSIGN_OR_RETURN(auto records, consumer->Poll(std::chrono::milliseconds(500)));
//     for (const ConsumerRecord& r : records) ...
//   }
//
// A background fetcher long-polls Consumer.Fetch for every assigned partition and queues the
// returned batches (up to max_prefetch_bytes) while the user processes the previous ones; Poll
// decodes (and decompresses) them and returns records from each partition's position on. Fetch
// and ListOffsets go to each partition's leader as metadata names it (one connection per broker);
// after NOT_LEADER, UNKNOWN_PARTITION or a broker that cannot be reached the consumer refreshes
// metadata and, after retry_backoff_ms (doubling), continues from the new leader at the same
// position.
//
// Consumer groups (server-side assignment, KIP-848 style): Subscribe() joins the group; a
// background heartbeat thread reports the partitions this member owns and receives its
// assignment. Changes are applied incrementally: a revoked partition stops being fetched at once
// (Poll never returns its records again), then the next Poll runs OnPartitionsRevoked, commits
// its position (enable_auto_commit) and only then tells the coordinator it is released, so no
// two members ever consume a partition at the same time. A newly assigned partition starts at the
// group's committed offset (auto_offset_reset when there is none or it is out of range), after
// OnPartitionsAssigned ran. When the coordinator fences this member (its session expired),
// OnPartitionsLost runs (nothing is committed) and the member rejoins. Listener callbacks,
// CommitAsync callbacks and auto-commits run only on the thread calling Poll (or Commit,
// Unsubscribe, Close), never on a background thread.
//
// Thread-safety: the methods are not thread-safe; call them from one thread at a time (the
// fetcher, heartbeat and commit threads are internal).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "rill/client/config.h"
#include "rill/client/types.h"
#include "rill/proto/status.h"

namespace rill::client {

class ConsumerImpl;

// Rebalance callbacks of a group consumer; they run on the thread calling Poll (or Unsubscribe /
// Close). They may call Commit, Position, Seek and Assignment, but not Poll or Close.
class ConsumerRebalanceListener {
 public:
  virtual ~ConsumerRebalanceListener() = default;
  // Partitions this member now owns; their positions are not resolved yet (Seek here overrides
  // the committed offset).
  virtual void OnPartitionsAssigned(const std::vector<TopicPartition>& partitions) {}
  // Partitions taken away in a rebalance. Their records are no longer returned; their positions
  // are committed right after this returns (enable_auto_commit), before the coordinator is told.
  virtual void OnPartitionsRevoked(const std::vector<TopicPartition>& partitions) {}
  // Partitions lost because the coordinator fenced this member (e.g. session expired): another
  // member may already own them, so nothing is committed.
  virtual void OnPartitionsLost(const std::vector<TopicPartition>& partitions) {}
};

// Offsets are "next offset to consume" per partition.
using OffsetMap = std::map<TopicPartition, int64_t>;
// The outcome of CommitAsync, called on the polling thread.
using CommitCallback = std::function<void(const Status& status, const OffsetMap& offsets)>;

class Consumer {
 public:
  static Result<std::unique_ptr<Consumer>> Create(const ConsumerConfig& config);
  ~Consumer();  // Close()s, ignoring its result

  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Joins the group (config.group_id) with a subscription to these topics, or to every topic
  // whose whole name matches `regex` (ECMAScript, evaluated by the coordinator; never matches
  // internal "__" topics). Calling it again changes the subscription. `listener` (may be null)
  // must outlive the consumer. InvalidArgument without a group_id or after Assign().
  Status Subscribe(const std::vector<std::string>& topics,
                   ConsumerRebalanceListener* listener = nullptr);
  Status SubscribePattern(const std::string& regex, ConsumerRebalanceListener* listener = nullptr);
  // Revokes every partition (callbacks, commit), leaves the group; Subscribe may be called again.
  // Returns the first error of the final commit (with auto-commit) or of the leave request; the
  // consumer is unsubscribed either way (a member whose leave the coordinator did not hear is
  // removed after its session timeout).
  Status Unsubscribe();
  // The subscribed topic names, or the pattern alone; empty when not subscribed.
  std::vector<std::string> Subscription() const;

  // Commits (synchronously) the position of every owned partition / the given offsets. Fails
  // with a message starting "FENCED_MEMBER_EPOCH" when the coordinator no longer counts this
  // member as the owner (the partitions will be reported lost), or Unavailable after retries.
  Status Commit();
  Status Commit(const OffsetMap& offsets);
  // Commits the current positions in the background; `callback` (may be null) runs on the
  // polling thread after the commit finished. Commits are sent in the order they were made.
  void CommitAsync(CommitCallback callback = nullptr);
  // The group's committed offsets (-1: none) for these partitions.
  Result<OffsetMap> Committed(const std::vector<TopicPartition>& partitions);
  // This member's id in the group ("" before it joined) and its epoch.
  std::string MemberId() const;
  int32_t MemberEpoch() const;

  // Replaces the assignment (manual assignment; InvalidArgument while subscribed). Partitions kept
  // from the previous assignment keep their position; new ones start per auto_offset_reset unless
  // Seek()ed.
  Status Assign(const std::vector<TopicPartition>& partitions);
  std::vector<TopicPartition> Assignment() const;

  // The next offset Poll returns for `tp`. Assigned partitions only (InvalidArgument otherwise).
  Status Seek(const TopicPartition& tp, int64_t offset);
  // Ask the broker (Consumer.ListOffsets) and seek; an empty list means every assigned partition.
  Status SeekToBeginning(const std::vector<TopicPartition>& partitions = {});
  Status SeekToEnd(const std::vector<TopicPartition>& partitions = {});
  // To the first record with timestamp >= timestamp_ms (the end if there is none).
  Status SeekToTimestamp(const std::vector<TopicPartition>& partitions, int64_t timestamp_ms);

  // Returns the records available now, or waits up to `timeout` for some; an empty vector after
  // the timeout. Fails on an unrecoverable partition error (OFFSET_OUT_OF_RANGE with
  // auto_offset_reset = kError, UNKNOWN_TOPIC, a corrupt batch, ...): the message names the
  // partition; the other partitions keep going.
  Result<std::vector<ConsumerRecord>> Poll(std::chrono::milliseconds timeout);

  // The next offset to be returned for `tp`; NotFound when not assigned, Unavailable while it is
  // not yet known (auto_offset_reset pending).
  Result<int64_t> Position(const TopicPartition& tp) const;

  // Group consumer: runs OnPartitionsRevoked for the owned partitions, commits their positions
  // (enable_auto_commit), leaves the group (member epoch -1, or -2 for a static member so it
  // keeps its partitions for a restart within the session timeout). Then stops the background
  // threads. Further Polls fail. Returns OK, or the first error of the final commit and the
  // leave (e.g. Unavailable: the coordinator could not be reached; the group then drops the
  // member at its session timeout); the consumer is closed either way. A coordinator that no
  // longer knows the member counts as left. Calling it again does nothing and returns OK; a
  // manually assigned consumer's Close always returns OK.
  Status Close();

 private:
  explicit Consumer(std::unique_ptr<ConsumerImpl> impl);
  std::unique_ptr<ConsumerImpl> impl_;
};

}  // namespace rill::client
