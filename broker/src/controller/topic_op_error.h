#pragma once

// The errors of the controller module: TopicOpError, carried in every TopicOpResult.

#include <cstdint>
#include <ostream>
#include <string_view>

#include "rill/proto/status.h"

namespace rill::broker {

// The controller's errors (docs/ARCHITECTURE.md §3, Errors): what went wrong with one topic of
// an operation (or with a broker registration). Each value means one thing; the API layer maps
// them to rill.v1.ErrorCode (api/wire_errors.h, WireError(TopicOpError)). Between brokers
// (Raft/Forward) they travel as rill.internal.v1.TopicOpError, which has the same values.
enum class TopicOpError : uint8_t {
  kNone = 0,
  kInvalidTopic = 1,    // the name breaks the naming rules or collides with a topic
  kInvalidRequest = 2,  // the operation is malformed (a topic listed twice, a broker id
                        // <= 0, records the metadata image refused)
  kTopicAlreadyExists = 3,
  kUnknownTopic = 4,
  kInvalidPartitions = 5,         // a partition count out of bounds, or not larger than today's
  kInvalidReplicationFactor = 6,  // more replicas than live brokers, or below one
  kInvalidConfig = 7,             // an unknown topic config key or a bad value
  kNotController = 8,             // this node is not the active controller and could not hand
                                  // the operation to it
  kTimeout = 9,                   // no controller was elected, the forward ran out of time, or
                                  // the operation did not commit in time (outcome unknown)
  kTooManyOperations = 10,        // a controller queue is full (a bound was hit)
  kControllerFailed = 11,         // the controller has failed or is stopping
  kUnknown = 12,                  // an unexpected internal error; the message says what
  kStaleEpoch = 13,               // a partition leader's request (AlterPartition) names a leader
                                  // epoch or partition epoch the controller no longer has: it
                                  // was deposed, or its ISR view is out of date (Kafka's
                                  // FENCED_LEADER_EPOCH / INVALID_UPDATE_VERSION); metadata
                                  // will tell it the current state
};
// The highest value: a value above it, from a newer broker, is read as kUnknown.
inline constexpr TopicOpError kLastTopicOpError = TopicOpError::kStaleEpoch;
std::string_view TopicOpErrorName(TopicOpError e);
inline std::ostream& operator<<(std::ostream& os, TopicOpError e) {
  return os << TopicOpErrorName(e);
}

// The controller's own reading of a Status from its driver, its log or a replay:
//   kAlreadyExists -> kTopicAlreadyExists, kNotFound -> kUnknownTopic,
//   kInvalidArgument -> `invalid_argument` (what a refused record means for this operation),
//   kUnavailable -> kNotController, kTimeout -> kTimeout,
//   kResourceExhausted -> kTooManyOperations, anything else -> kControllerFailed.
TopicOpError TopicOpErrorOf(const Status& st, TopicOpError invalid_argument);

}  // namespace rill::broker
