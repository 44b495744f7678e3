#include "groups/group_error.h"

namespace rill::groups {

std::string_view GroupErrorName(GroupError e) {
  switch (e) {
    case GroupError::kNone:
      return "None";
    case GroupError::kInvalidRequest:
      return "InvalidRequest";
    case GroupError::kUnknownMemberId:
      return "UnknownMemberId";
    case GroupError::kFencedMemberEpoch:
      return "FencedMemberEpoch";
    case GroupError::kUnreleasedInstanceId:
      return "UnreleasedInstanceId";
    case GroupError::kTooManyMembers:
      return "TooManyMembers";
    case GroupError::kTooManyGroups:
      return "TooManyGroups";
    case GroupError::kGroupIdNotFound:
      return "GroupIdNotFound";
    case GroupError::kGroupNotEmpty:
      return "GroupNotEmpty";
    case GroupError::kUnknownTopic:
      return "UnknownTopic";
    case GroupError::kUnknownPartition:
      return "UnknownPartition";
    case GroupError::kInvalidOffset:
      return "InvalidOffset";
    case GroupError::kNotLeader:
      return "NotLeader";
    case GroupError::kNotCoordinator:
      return "NotCoordinator";
    case GroupError::kCoordinatorNotAvailable:
      return "CoordinatorNotAvailable";
    case GroupError::kOffsetsStoreError:
      return "OffsetsStoreError";
    case GroupError::kLogReadFailed:
      return "LogReadFailed";
  }
  return "Unknown";
}

}  // namespace rill::groups
