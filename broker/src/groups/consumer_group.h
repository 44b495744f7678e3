#pragma once

// One consumer group's membership and assignment state machine, in the style of Kafka's KIP-848
// (docs/ARCHITECTURE.md §8). broker/src/groups/README.md describes the protocol as implemented.
//
// Pure and deterministic: no clocks, threads, sockets or disks. Every call takes the current
// time (`now_ms`) and, where subscriptions must be resolved, the current topic partition counts.
// Member ids come from a caller-provided generator. Each mutating call returns the records that
// describe the new state (group metadata, members, tombstones); the coordinator appends them to
// the group's `__consumer_offsets` partition before it answers the client. A group rebuilt with
// Restore() from those records behaves like the original.
//
// Invariant (asserted after every change): no partition is owned — assigned or pending revocation
// — by two members at once. A partition is given to a member only once no other member owns it.
//
// Thread-safety: none. The coordinator serialises all calls for a group (one strand).

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "groups/assignor.h"
#include "groups/group_error.h"
#include "groups/group_records.h"
#include "groups/group_types.h"
#include "rill/v1/groups.pb.h"

namespace rill::groups {

enum class GroupState {
  kEmpty,        // no members
  kAssigning,    // group epoch ahead of the target assignment (never visible between calls:
                 // the target is recomputed within the call that bumps the group epoch)
  kReconciling,  // some member's assignment differs from its target
  kStable,       // every member owns exactly its target
  kDead,         // deleted; every call fails
};
std::string_view GroupStateName(GroupState s);

struct GroupConfig {
  int32_t default_session_timeout_ms = 45000;
  int32_t min_session_timeout_ms = 1000;
  int32_t max_session_timeout_ms = 300000;
  int32_t default_rebalance_timeout_ms = 60000;  // time a member has to release partitions
  int32_t heartbeat_interval_ms = 3000;
  size_t max_members = 1000;         // joins beyond this get kTooManyMembers
  size_t max_fenced_members = 1024;  // expired member ids remembered to answer FENCED
  size_t max_commit_metadata_bytes = 4096;
  size_t max_regex_bytes = 1024;
  size_t max_subscribed_topic_names = 10000;
  std::string default_assignor = "uniform";
};

struct GroupMember {
  std::string member_id;
  std::string instance_id;
  std::string client_id;
  std::string client_host;
  std::set<std::string> subscribed_topic_names;
  std::string subscribed_topic_regex;
  std::string server_assignor;  // empty: the group default
  int32_t session_timeout_ms = 0;
  int32_t rebalance_timeout_ms = 0;
  int32_t member_epoch = 0;
  int32_t previous_member_epoch = 0;
  Assignment assigned;            // what the member was told it owns
  Assignment pending_revocation;  // told to release; owned until the member reports it released
  Assignment target;              // its part of the group's target assignment
  bool left_static = false;       // left with epoch -2: assigned partitions are kept for it
  int64_t session_deadline_ms = 0;
  int64_t revocation_deadline_ms = 0;  // meaningful while pending_revocation is non-empty

  // What the member owns in the coordinator's view.
  Assignment Owned() const { return Union(assigned, pending_revocation); }
};

// Outcome of a Heartbeat, Tick or metadata change: the error (for Heartbeat), the response's data
// (member id, epochs, heartbeat interval, assignment; its `error` fields are left unset: the API
// layer writes them from `status`, api/wire_errors.h) and the records to append (empty when
// nothing durable changed).
struct HeartbeatResult {
  GroupStatus status;
  v1::GroupHeartbeatResponse response;
  std::vector<GroupRecord> records;
};

// One committed partition's outcome.
struct PartitionCommit {
  TopicPartition tp;
  GroupStatus status;
};

struct CommitValidation {
  GroupStatus status;                       // the commit as a whole (member, epoch, group)
  std::vector<PartitionCommit> partitions;  // one per request offset, in request order
  std::vector<GroupRecord> records;         // one offset-commit record per accepted partition
};

class ConsumerGroup {
 public:
  using MemberIdGenerator = std::function<std::string()>;

  ConsumerGroup(std::string group_id, GroupConfig config, MemberIdGenerator member_ids);

  // Rebuilds a group from its materialised records (see offsets_loader.h). Every member gets a
  // fresh session of its own timeout from `now_ms`. Corruption when the records contradict each
  // other (a partition owned twice, an epoch below zero).
  static Result<ConsumerGroup> Restore(std::string group_id, GroupConfig config,
                                       MemberIdGenerator member_ids,
                                       const pb::GroupMetadataValue& metadata,
                                       const std::map<std::string, pb::MemberValue>& members,
                                       int64_t now_ms);

  // A member's heartbeat: join (epoch 0), leave (-1), static leave (-2) or heartbeat (> 0).
  // Errors are in status: kInvalidRequest, kUnknownMemberId, kFencedMemberEpoch,
  // kUnreleasedInstanceId, kTooManyMembers, kGroupIdNotFound (dead group).
  HeartbeatResult Heartbeat(const v1::GroupHeartbeatRequest& request, int64_t now_ms,
                            const TopicPartitionCounts& topics);

  // Expires members whose session (or revocation deadline) has passed; their partitions become
  // free. Returns the records of the change (response unused).
  HeartbeatResult Tick(int64_t now_ms);

  // Topics were created, deleted or grew partitions. Bumps the group epoch and recomputes the
  // target assignment when the metadata of the group's subscribed topics changed.
  HeartbeatResult OnTopicsChanged(const TopicPartitionCounts& topics, int64_t now_ms);

  // Checks a commit (member, epoch, ownership, topic and partition existence, offset, metadata
  // size) without changing the group. The coordinator appends `records` and, once they are
  // durable, applies them to the offsets store.
  CommitValidation ValidateCommit(const v1::CommitOffsetsRequest& request, int64_t now_ms,
                                  const TopicPartitionCounts& topics) const;

  // Marks the group dead (admin delete) and appends tombstones for the group to `records`; the
  // caller adds tombstones for its committed offsets. Returns kGroupNotEmpty (and changes
  // nothing) while members remain, kNone otherwise.
  GroupError Delete(std::vector<GroupRecord>* records);

  // Every record needed to rebuild this group (for tests and for snapshotting).
  std::vector<GroupRecord> SnapshotRecords() const;

  const std::string& group_id() const { return group_id_; }
  GroupState state() const;
  int32_t group_epoch() const { return group_epoch_; }
  int32_t assignment_epoch() const { return assignment_epoch_; }
  const std::string& assignor() const { return assignor_; }
  const std::map<std::string, GroupMember>& members() const { return members_; }
  const GroupMember* FindMember(const std::string& member_id) const;
  // The member that owns `tp` (assigned or pending revocation), or nullptr.
  const std::string* OwnerOf(const TopicPartition& tp) const;

 private:
  // A response carrying only the heartbeat interval; the callers add the rest.
  v1::GroupHeartbeatResponse Response() const;
  // A failed heartbeat: `error` and `message`, and a response with the heartbeat interval.
  HeartbeatResult Error(GroupError error, std::string message) const;
  HeartbeatResult Join(const v1::GroupHeartbeatRequest& request, int64_t now_ms,
                       const TopicPartitionCounts& topics);
  HeartbeatResult Leave(const v1::GroupHeartbeatRequest& request, int64_t now_ms,
                        const TopicPartitionCounts& topics);
  HeartbeatResult StaticLeave(const v1::GroupHeartbeatRequest& request, int64_t now_ms);
  HeartbeatResult Beat(const v1::GroupHeartbeatRequest& request, int64_t now_ms,
                       const TopicPartitionCounts& topics);

  // Why the request's subscription fields are invalid, or "" when they are fine.
  std::string CheckSubscription(const v1::GroupHeartbeatRequest& request) const;
  // Copies the subscription fields of the request into `m`; true if they changed.
  bool UpdateSubscription(GroupMember& m, const v1::GroupHeartbeatRequest& request);
  // Topics `m` subscribes to that exist (names and regex matches; regex never matches "__*").
  std::set<std::string> ResolveSubscription(const GroupMember& m,
                                            const TopicPartitionCounts& topics) const;
  // Recomputes the subscribed topic metadata; bumps the epoch and recomputes the target when it,
  // or `force`, says so.
  void MaybeRebalance(const TopicPartitionCounts& topics, bool force);
  void ComputeTargetAssignment(const TopicPartitionCounts& topics);
  // Moves `m` one step toward its target. True if its assignment (and epoch) changed.
  bool Reconcile(GroupMember& m, int64_t now_ms);
  void SetOwnership(GroupMember& m, Assignment assigned, Assignment pending);
  void BumpMemberEpoch(GroupMember& m);
  void RemoveMember(const std::string& member_id, bool fenced);
  void RememberFenced(const std::string& member_id);
  void CheckInvariants() const;
  void CheckMemberOwnership(const GroupMember& m) const;

  pb::MemberValue MemberToValue(const GroupMember& m) const;
  pb::GroupMetadataValue MetadataValue() const;
  std::vector<GroupRecord> TakeRecords();
  void MarkMember(const std::string& member_id) { dirty_members_.insert(member_id); }

  std::string group_id_;
  GroupConfig config_;
  MemberIdGenerator member_ids_;
  bool dead_ = false;
  int32_t group_epoch_ = 0;
  int32_t assignment_epoch_ = 0;
  std::string assignor_;
  TopicPartitionCounts subscribed_topics_;  // metadata the current target was computed from
  TopicPartitionCounts last_topics_;        // topic metadata of the last MaybeRebalance
  std::map<std::string, GroupMember> members_;
  std::map<std::string, std::string> static_members_;      // instance id -> member id
  std::map<TopicPartition, std::string> owner_;            // partition -> member owning it
  mutable std::map<std::string, std::regex> regex_cache_;  // pattern -> compiled (bounded)
  // Member ids whose session expired or who were replaced, in order of fencing (bounded).
  std::set<std::string> fenced_;
  std::deque<std::string> fenced_order_;
  // Records owed by the current call.
  bool dirty_group_ = false;
  std::set<std::string> dirty_members_;
};

}  // namespace rill::groups
