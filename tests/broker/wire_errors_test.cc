// api/wire_errors.h: the one map from a module's errors to the rill.v1.ErrorCode clients see.
// Every value of each module's error enum is checked, so a value added without a wire code (or
// with a different one) fails here.

#include "api/wire_errors.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace rill::broker {
namespace {

using groups::GroupError;
using groups::GroupStatus;

TEST(WireErrorsTest, EveryGroupErrorHasItsWireCode) {
  const std::vector<std::pair<GroupError, v1::ErrorCode>> cases = {
      {GroupError::kNone, v1::NONE},
      {GroupError::kInvalidRequest, v1::INVALID_REQUEST},
      {GroupError::kUnknownMemberId, v1::UNKNOWN_MEMBER_ID},
      {GroupError::kFencedMemberEpoch, v1::FENCED_MEMBER_EPOCH},
      {GroupError::kUnreleasedInstanceId, v1::UNRELEASED_INSTANCE_ID},
      {GroupError::kTooManyMembers, v1::RESOURCE_EXHAUSTED},
      {GroupError::kTooManyGroups, v1::RESOURCE_EXHAUSTED},
      {GroupError::kGroupIdNotFound, v1::GROUP_ID_NOT_FOUND},
      {GroupError::kGroupNotEmpty, v1::GROUP_NOT_EMPTY},
      {GroupError::kUnknownTopic, v1::UNKNOWN_TOPIC},
      {GroupError::kUnknownPartition, v1::UNKNOWN_PARTITION},
      {GroupError::kInvalidOffset, v1::INVALID_OFFSET},
      {GroupError::kNotLeader, v1::NOT_LEADER},
      {GroupError::kNotCoordinator, v1::NOT_COORDINATOR},
      {GroupError::kCoordinatorNotAvailable, v1::COORDINATOR_NOT_AVAILABLE},
      {GroupError::kOffsetsStoreError, v1::UNKNOWN},
  };
  for (const auto& [error, code] : cases) {
    EXPECT_EQ(WireError(GroupStatus(error, "m")), code) << groups::GroupErrorName(error);
  }
  // Every value but kLogReadFailed is above; kLogReadFailed is the enum's last value.
  EXPECT_EQ(cases.size(), static_cast<size_t>(GroupError::kLogReadFailed));
}

TEST(WireErrorsTest, GroupLogReadFailureIsMappedAsAReadError) {
  // ResetOffsets to a timestamp: the partition log's own error decides the code.
  EXPECT_EQ(WireError(GroupStatus::LogRead(Status::OutOfRange("below the log start"), "m")),
            v1::OFFSET_OUT_OF_RANGE);
  EXPECT_EQ(WireError(GroupStatus::LogRead(Status::Unavailable("not the leader"), "m")),
            v1::NOT_LEADER);
  EXPECT_EQ(WireError(GroupStatus::LogRead(Status::Corruption("bad CRC"), "m")), v1::STORAGE_ERROR);
  EXPECT_EQ(WireError(GroupStatus::LogRead(Status::IOError("EIO"), "m")), v1::STORAGE_ERROR);
  EXPECT_EQ(WireError(GroupStatus::LogRead(Status::Failed("log failed"), "m")), v1::STORAGE_ERROR);
}

TEST(WireErrorsTest, EveryTopicOpErrorHasItsWireCode) {
  const std::vector<std::pair<TopicOpError, v1::ErrorCode>> cases = {
      {TopicOpError::kNone, v1::NONE},
      {TopicOpError::kInvalidTopic, v1::INVALID_TOPIC},
      {TopicOpError::kInvalidRequest, v1::INVALID_REQUEST},
      {TopicOpError::kTopicAlreadyExists, v1::TOPIC_ALREADY_EXISTS},
      {TopicOpError::kUnknownTopic, v1::UNKNOWN_TOPIC},
      {TopicOpError::kInvalidPartitions, v1::INVALID_PARTITIONS},
      {TopicOpError::kInvalidReplicationFactor, v1::INVALID_REPLICATION_FACTOR},
      {TopicOpError::kInvalidConfig, v1::INVALID_CONFIG},
      {TopicOpError::kNotController, v1::NOT_COORDINATOR},
      {TopicOpError::kTimeout, v1::REQUEST_TIMED_OUT},
      {TopicOpError::kTooManyOperations, v1::RESOURCE_EXHAUSTED},
      {TopicOpError::kControllerFailed, v1::BROKER_NOT_AVAILABLE},
      {TopicOpError::kUnknown, v1::UNKNOWN},
  };
  for (const auto& [error, code] : cases) {
    EXPECT_EQ(WireError(error), code) << TopicOpErrorName(error);
  }
  EXPECT_EQ(cases.size(), static_cast<size_t>(TopicOpError::kUnknown) + 1);
}

// The controller reads its driver's Status as its own error; with WireError that gives the codes
// clients have always seen for each Status.
TEST(WireErrorsTest, ControllerStatusesKeepTheirWireCodes) {
  const TopicOpError invalid = TopicOpError::kInvalidConfig;
  EXPECT_EQ(WireError(TopicOpErrorOf(Status::OK(), invalid)), v1::NONE);
  EXPECT_EQ(WireError(TopicOpErrorOf(Status::AlreadyExists("t"), invalid)),
            v1::TOPIC_ALREADY_EXISTS);
  EXPECT_EQ(WireError(TopicOpErrorOf(Status::NotFound("t"), invalid)), v1::UNKNOWN_TOPIC);
  EXPECT_EQ(WireError(TopicOpErrorOf(Status::InvalidArgument("t"), invalid)), v1::INVALID_CONFIG);
  EXPECT_EQ(WireError(TopicOpErrorOf(Status::InvalidArgument("t"), TopicOpError::kUnknown)),
            v1::UNKNOWN);
  EXPECT_EQ(WireError(TopicOpErrorOf(Status::Unavailable("t"), invalid)), v1::NOT_COORDINATOR);
  EXPECT_EQ(WireError(TopicOpErrorOf(Status::Timeout("t"), invalid)), v1::REQUEST_TIMED_OUT);
  EXPECT_EQ(WireError(TopicOpErrorOf(Status::ResourceExhausted("t"), invalid)),
            v1::RESOURCE_EXHAUSTED);
  EXPECT_EQ(WireError(TopicOpErrorOf(Status::Failed("t"), invalid)), v1::BROKER_NOT_AVAILABLE);
  EXPECT_EQ(WireError(TopicOpErrorOf(Status::IOError("t"), invalid)), v1::BROKER_NOT_AVAILABLE);
}

TEST(WireErrorsTest, PartitionStatuses) {
  EXPECT_EQ(AppendError(Status::OK()), v1::NONE);
  EXPECT_EQ(AppendError(Status::Corruption("crc")), v1::CORRUPT_BATCH);
  EXPECT_EQ(AppendError(Status::InvalidArgument("magic")), v1::CORRUPT_BATCH);
  EXPECT_EQ(AppendError(Status::Unavailable("follower")), v1::NOT_LEADER);
  EXPECT_EQ(AppendError(Status::ResourceExhausted("disk guard")), v1::RESOURCE_EXHAUSTED);
  EXPECT_EQ(AppendError(Status::Timeout("durable")), v1::REQUEST_TIMED_OUT);
  EXPECT_EQ(AppendError(Status::Failed("closed")), v1::STORAGE_ERROR);
  EXPECT_EQ(DurabilityError(Status::OK()), v1::NONE);
  EXPECT_EQ(DurabilityError(Status::Timeout("t")), v1::REQUEST_TIMED_OUT);
  EXPECT_EQ(DurabilityError(Status::IOError("fsync")), v1::STORAGE_ERROR);
  EXPECT_EQ(ReadError(Status::OK()), v1::NONE);
  EXPECT_EQ(ReadError(Status::OutOfRange("o")), v1::OFFSET_OUT_OF_RANGE);
  EXPECT_EQ(ReadError(Status::Unavailable("u")), v1::NOT_LEADER);
  EXPECT_EQ(ReadError(Status::Corruption("c")), v1::STORAGE_ERROR);
}

}  // namespace
}  // namespace rill::broker
