#include "wire_errors.h"

namespace rill::broker {

v1::ErrorCode AppendError(const Status& st) {
  switch (st.code()) {
    case StatusCode::kOk:
      return v1::NONE;
    case StatusCode::kCorruption:
    case StatusCode::kInvalidArgument:
      return v1::CORRUPT_BATCH;
    case StatusCode::kUnavailable:
      return v1::NOT_LEADER;
    case StatusCode::kResourceExhausted:
      return v1::RESOURCE_EXHAUSTED;
    case StatusCode::kTimeout:
      return v1::REQUEST_TIMED_OUT;
    default:
      return v1::STORAGE_ERROR;
  }
}

v1::ErrorCode ProducerRefusalError(storage::ProducerCheck refusal) {
  switch (refusal) {
    case storage::ProducerCheck::kAppend:
      return v1::NONE;
    case storage::ProducerCheck::kOutOfOrderSequence:
      return v1::OUT_OF_ORDER_SEQUENCE_NUMBER;
    case storage::ProducerCheck::kInvalidProducerEpoch:
      return v1::INVALID_PRODUCER_EPOCH;
    case storage::ProducerCheck::kInvalidRecord:
      return v1::INVALID_PRODUCER_FIELDS;
    case storage::ProducerCheck::kTooManyProducers:
      return v1::RESOURCE_EXHAUSTED;
    case storage::ProducerCheck::kDuplicate:  // a retry mixed with other batches in one entry
      return v1::INVALID_REQUEST;
  }
  return v1::UNKNOWN;
}

v1::ErrorCode DurabilityError(const Status& st) {
  switch (st.code()) {
    case StatusCode::kOk:
      return v1::NONE;
    case StatusCode::kUnavailable:  // leadership moved (or the ISR shrank) before replication
      return v1::NOT_LEADER;
    case StatusCode::kTimeout:
      return v1::REQUEST_TIMED_OUT;
    default:
      return v1::STORAGE_ERROR;
  }
}

v1::ErrorCode ReadError(const Status& st) {
  switch (st.code()) {
    case StatusCode::kOk:
      return v1::NONE;
    case StatusCode::kOutOfRange:
      return v1::OFFSET_OUT_OF_RANGE;
    case StatusCode::kUnavailable:
      return v1::NOT_LEADER;
    default:
      return v1::STORAGE_ERROR;
  }
}

v1::ErrorCode WireError(TopicOpError e) {
  switch (e) {
    case TopicOpError::kNone:
      return v1::NONE;
    case TopicOpError::kInvalidTopic:
      return v1::INVALID_TOPIC;
    case TopicOpError::kInvalidRequest:
      return v1::INVALID_REQUEST;
    case TopicOpError::kTopicAlreadyExists:
      return v1::TOPIC_ALREADY_EXISTS;
    case TopicOpError::kUnknownTopic:
      return v1::UNKNOWN_TOPIC;
    case TopicOpError::kInvalidPartitions:
      return v1::INVALID_PARTITIONS;
    case TopicOpError::kInvalidReplicationFactor:
      return v1::INVALID_REPLICATION_FACTOR;
    case TopicOpError::kInvalidConfig:
      return v1::INVALID_CONFIG;
    case TopicOpError::kNotController:
      return v1::NOT_COORDINATOR;
    case TopicOpError::kTimeout:
      return v1::REQUEST_TIMED_OUT;
    case TopicOpError::kTooManyOperations:
      return v1::RESOURCE_EXHAUSTED;
    case TopicOpError::kControllerFailed:
      return v1::BROKER_NOT_AVAILABLE;
    case TopicOpError::kUnknown:
      return v1::UNKNOWN;
    case TopicOpError::kStaleEpoch:
      return v1::NOT_LEADER;
  }
  return v1::UNKNOWN;
}

v1::ErrorCode WireError(const groups::GroupStatus& st) {
  using groups::GroupError;
  switch (st.error) {
    case GroupError::kNone:
      return v1::NONE;
    case GroupError::kInvalidRequest:
      return v1::INVALID_REQUEST;
    case GroupError::kUnknownMemberId:
      return v1::UNKNOWN_MEMBER_ID;
    case GroupError::kFencedMemberEpoch:
      return v1::FENCED_MEMBER_EPOCH;
    case GroupError::kUnreleasedInstanceId:
      return v1::UNRELEASED_INSTANCE_ID;
    case GroupError::kTooManyMembers:
    case GroupError::kTooManyGroups:
      return v1::RESOURCE_EXHAUSTED;
    case GroupError::kGroupIdNotFound:
      return v1::GROUP_ID_NOT_FOUND;
    case GroupError::kGroupNotEmpty:
      return v1::GROUP_NOT_EMPTY;
    case GroupError::kUnknownTopic:
      return v1::UNKNOWN_TOPIC;
    case GroupError::kUnknownPartition:
      return v1::UNKNOWN_PARTITION;
    case GroupError::kInvalidOffset:
      return v1::INVALID_OFFSET;
    case GroupError::kNotLeader:
      return v1::NOT_LEADER;
    case GroupError::kNotCoordinator:
      return v1::NOT_COORDINATOR;
    case GroupError::kCoordinatorNotAvailable:
      return v1::COORDINATOR_NOT_AVAILABLE;
    case GroupError::kOffsetsStoreError:
      return v1::UNKNOWN;
    case GroupError::kLogReadFailed:
      return ReadError(st.cause);
  }
  return v1::UNKNOWN;
}

}  // namespace rill::broker
