#include "controller/topic_op_error.h"

namespace rill::broker {

std::string_view TopicOpErrorName(TopicOpError e) {
  switch (e) {
    case TopicOpError::kNone:
      return "None";
    case TopicOpError::kInvalidTopic:
      return "InvalidTopic";
    case TopicOpError::kInvalidRequest:
      return "InvalidRequest";
    case TopicOpError::kTopicAlreadyExists:
      return "TopicAlreadyExists";
    case TopicOpError::kUnknownTopic:
      return "UnknownTopic";
    case TopicOpError::kInvalidPartitions:
      return "InvalidPartitions";
    case TopicOpError::kInvalidReplicationFactor:
      return "InvalidReplicationFactor";
    case TopicOpError::kInvalidConfig:
      return "InvalidConfig";
    case TopicOpError::kNotController:
      return "NotController";
    case TopicOpError::kTimeout:
      return "Timeout";
    case TopicOpError::kTooManyOperations:
      return "TooManyOperations";
    case TopicOpError::kControllerFailed:
      return "ControllerFailed";
    case TopicOpError::kUnknown:
      return "Unknown";
    case TopicOpError::kStaleEpoch:
      return "StaleEpoch";
  }
  return "Unknown";
}

TopicOpError TopicOpErrorOf(const Status& st, TopicOpError invalid_argument) {
  switch (st.code()) {
    case StatusCode::kOk:
      return TopicOpError::kNone;
    case StatusCode::kAlreadyExists:
      return TopicOpError::kTopicAlreadyExists;
    case StatusCode::kNotFound:
      return TopicOpError::kUnknownTopic;
    case StatusCode::kInvalidArgument:
      return invalid_argument;
    case StatusCode::kUnavailable:
      return TopicOpError::kNotController;
    case StatusCode::kTimeout:
      return TopicOpError::kTimeout;
    case StatusCode::kResourceExhausted:
      return TopicOpError::kTooManyOperations;
    default:
      return TopicOpError::kControllerFailed;
  }
}

}  // namespace rill::broker
