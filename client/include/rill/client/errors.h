#pragma once

// How the client reports errors: every call returns rill::Status / rill::Result<T>. A broker's
// per-partition or per-topic error code (rill.v1.ErrorCode) becomes a Status whose message starts
// with the code's name, e.g. "UNKNOWN_TOPIC: topic 'x' does not exist", and whose StatusCode is
// the closest rill::StatusCode (UNKNOWN_TOPIC -> kNotFound, NOT_LEADER -> kUnavailable, ...).

#include <cstdint>
#include <string>
#include <string_view>

#include "rill/proto/status.h"

namespace rill::client {

// The name of a rill.v1.ErrorCode value ("NOT_LEADER"), or "ERROR_<n>" for an unknown one.
std::string_view ErrorCodeName(int32_t code);

// Status for a wire error code (OK for NONE); `message` is the broker's error_message.
Status StatusFromErrorCode(int32_t code, std::string_view message);

// True for the wire codes a producer retries: NOT_LEADER, REQUEST_TIMED_OUT, RESOURCE_EXHAUSTED,
// NOT_ENOUGH_REPLICAS, BROKER_NOT_AVAILABLE, UNKNOWN_PARTITION (metadata may be stale).
bool IsRetriableErrorCode(int32_t code);

}  // namespace rill::client
