#pragma once

// The one place where a module's error becomes the rill.v1.ErrorCode a client sees
// (docs/ARCHITECTURE.md §3, Errors). Modules report their own errors: the partition and storage
// paths as Status values, whose wire code depends only on what the operation was (one function
// per kind of operation); the consumer-group module as a groups::GroupError
// (groups/group_error.h); the controller as a TopicOpError (controller/topic_op_error.h). Neither
// groups/ nor controller/ names a v1::ErrorCode; the services in api/ call these functions.
//
//   kUnavailable from a partition means "not the leader" (Partition::Append) and nothing else:
//   a closed or failed log reports kFailed and is STORAGE_ERROR.

#include "controller/topic_op_error.h"
#include "groups/group_error.h"
#include "rill/proto/status.h"
#include "rill/storage/producer_state.h"
#include "rill/v1/common.pb.h"

namespace rill::broker {

// An append to a partition's log (produce, the group coordinator's records).
//   kCorruption, kInvalidArgument -> CORRUPT_BATCH (the batch failed a check)
//   kUnavailable                  -> NOT_LEADER
//   kResourceExhausted            -> RESOURCE_EXHAUSTED
//   kTimeout                      -> REQUEST_TIMED_OUT
//   anything else                 -> STORAGE_ERROR (closed or failed log, I/O error, full disk)
v1::ErrorCode AppendError(const Status& st);

// An idempotent batch the partition's producer state refused (nothing was appended):
//   kOutOfOrderSequence   -> OUT_OF_ORDER_SEQUENCE_NUMBER
//   kInvalidProducerEpoch -> INVALID_PRODUCER_EPOCH
//   kInvalidRecord        -> INVALID_PRODUCER_FIELDS
//   kTooManyProducers     -> RESOURCE_EXHAUSTED
//   kDuplicate            -> INVALID_REQUEST (a retry sent with other batches in one entry)
v1::ErrorCode ProducerRefusalError(storage::ProducerCheck refusal);

// Waiting for appended offsets to become durable: a flush that failed is STORAGE_ERROR; a wait
// that ran out is REQUEST_TIMED_OUT.
v1::ErrorCode DurabilityError(const Status& st);

// A read from a partition's log (fetch, subscribe, list offsets).
//   kOutOfRange  -> OFFSET_OUT_OF_RANGE (retention removed it while the read ran)
//   kUnavailable -> NOT_LEADER
//   anything else -> STORAGE_ERROR (bytes on disk failed a check, I/O error, closed log)
v1::ErrorCode ReadError(const Status& st);

// A metadata operation (create/delete topics, partitions, configs) decided by the controller,
// here or on the active controller through Raft/Forward. One wire code per TopicOpError:
//   kInvalidTopic -> INVALID_TOPIC, kInvalidRequest -> INVALID_REQUEST,
//   kTopicAlreadyExists -> TOPIC_ALREADY_EXISTS, kUnknownTopic -> UNKNOWN_TOPIC,
//   kInvalidPartitions -> INVALID_PARTITIONS, kInvalidReplicationFactor ->
//   INVALID_REPLICATION_FACTOR, kInvalidConfig -> INVALID_CONFIG, kNotController ->
//   NOT_COORDINATOR, kTimeout -> REQUEST_TIMED_OUT, kTooManyOperations -> RESOURCE_EXHAUSTED,
//   kControllerFailed -> BROKER_NOT_AVAILABLE, kUnknown -> UNKNOWN
v1::ErrorCode WireError(TopicOpError e);

// A consumer-group call (api/groups_service.cc writes every group response's error fields with
// it). One wire code per GroupError; the two bounds (kTooManyMembers, kTooManyGroups) are both
// RESOURCE_EXHAUSTED, a failed read of the offsets store is UNKNOWN, and kLogReadFailed is the
// partition log's `cause` mapped as ReadError does.
v1::ErrorCode WireError(const groups::GroupStatus& st);

}  // namespace rill::broker
