#pragma once

// The one place where a module's Status becomes the rill.v1.ErrorCode a client sees
// (docs/ARCHITECTURE.md §5). Modules report their own errors as Status values; which wire code a
// StatusCode stands for depends only on what the operation was, so there is one function per kind
// of operation and no other switch over StatusCode in the services.
//
//   kUnavailable from a partition means "not the leader" (Partition::Append) and nothing else:
//   a closed or failed log reports kFailed and is STORAGE_ERROR.

#include "rill/proto/status.h"
#include "rill/v1/common.pb.h"

namespace rill::broker {

// An append to a partition's log (produce, the group coordinator's records).
//   kCorruption, kInvalidArgument -> CORRUPT_BATCH (the batch failed a check)
//   kUnavailable                  -> NOT_LEADER
//   kResourceExhausted            -> RESOURCE_EXHAUSTED
//   kTimeout                      -> REQUEST_TIMED_OUT
//   anything else                 -> STORAGE_ERROR (closed or failed log, I/O error, full disk)
v1::ErrorCode AppendError(const Status& st);

// Waiting for appended offsets to become durable: a flush that failed is STORAGE_ERROR; a wait
// that ran out is REQUEST_TIMED_OUT.
v1::ErrorCode DurabilityError(const Status& st);

// A read from a partition's log (fetch, subscribe, list offsets).
//   kOutOfRange  -> OFFSET_OUT_OF_RANGE (retention removed it while the read ran)
//   kUnavailable -> NOT_LEADER
//   anything else -> STORAGE_ERROR (bytes on disk failed a check, I/O error, closed log)
v1::ErrorCode ReadError(const Status& st);

// A metadata operation (create/delete topics, partitions, configs) decided by the controller.
// `invalid_argument` is the code of the operation's validation failure (INVALID_CONFIG, ...).
//   kAlreadyExists -> TOPIC_ALREADY_EXISTS, kNotFound -> UNKNOWN_TOPIC,
//   kUnavailable -> NOT_COORDINATOR (this node is not the active controller and cannot reach it),
//   kTimeout -> REQUEST_TIMED_OUT, kResourceExhausted -> RESOURCE_EXHAUSTED,
//   anything else -> BROKER_NOT_AVAILABLE
v1::ErrorCode MetadataOpError(const Status& st, v1::ErrorCode invalid_argument);

}  // namespace rill::broker
