#pragma once

// The errors of the consumer-group module (docs/ARCHITECTURE.md §3, Errors). The group state
// machine and the coordinator report what went wrong as a GroupError and a message; they never
// pick a rill.v1.ErrorCode. The API layer maps a GroupError to the wire in one place
// (api/wire_errors.h, WireError(const GroupStatus&)).

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "rill/proto/status.h"

namespace rill::groups {

// Each value means one thing.
enum class GroupError : uint8_t {
  kNone,
  kInvalidRequest,           // a field of the request is malformed or out of bounds
  kUnknownMemberId,          // the group has no member with that id (and never fenced it)
  kFencedMemberEpoch,        // the member's view is stale: fenced, expired, left, wrong epoch, or
                             // it does not own the partition it commits
  kUnreleasedInstanceId,     // a static instance id is still held by a live member
  kTooManyMembers,           // the group is at GroupConfig::max_members
  kTooManyGroups,            // the coordinator is at groups.max_groups
  kGroupIdNotFound,          // no such group (never created, or deleted)
  kGroupNotEmpty,            // the operation needs a group without active members
  kUnknownTopic,             // the topic does not exist
  kUnknownPartition,         // the topic exists but has no such partition
  kInvalidOffset,            // a committed offset is negative
  kNotLeader,                // this node does not lead the (data) partition the operation reads
  kNotCoordinator,           // another node coordinates the group
  kCoordinatorNotAvailable,  // this node coordinates the group but cannot serve it now (the
                             // offsets topic or partition is not ready, it is loading, no
                             // metadata yet, or appending the group's records failed): retry
  kOffsetsStoreError,        // reading the materialised offsets store failed
  kLogReadFailed,            // reading a partition's log failed; GroupStatus::cause says how
};

std::string_view GroupErrorName(GroupError e);
inline std::ostream& operator<<(std::ostream& os, GroupError e) { return os << GroupErrorName(e); }

// A group call's outcome: the error, a message saying what was wrong and where, and for
// kLogReadFailed the partition log's own Status (mapped to the wire as a read error is).
struct GroupStatus {
  GroupError error = GroupError::kNone;
  std::string message;
  Status cause;

  GroupStatus() = default;
  GroupStatus(GroupError e, std::string m) : error(e), message(std::move(m)) {}
  // kLogReadFailed with the log's status.
  static GroupStatus LogRead(Status st, std::string m) {
    GroupStatus s(GroupError::kLogReadFailed, std::move(m));
    s.cause = std::move(st);
    return s;
  }
  bool ok() const { return error == GroupError::kNone; }
};

}  // namespace rill::groups
