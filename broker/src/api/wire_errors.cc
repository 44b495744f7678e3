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

v1::ErrorCode DurabilityError(const Status& st) {
  switch (st.code()) {
    case StatusCode::kOk:
      return v1::NONE;
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

v1::ErrorCode MetadataOpError(const Status& st, v1::ErrorCode invalid_argument) {
  switch (st.code()) {
    case StatusCode::kOk:
      return v1::NONE;
    case StatusCode::kAlreadyExists:
      return v1::TOPIC_ALREADY_EXISTS;
    case StatusCode::kNotFound:
      return v1::UNKNOWN_TOPIC;
    case StatusCode::kInvalidArgument:
      return invalid_argument;
    case StatusCode::kUnavailable:
      return v1::NOT_COORDINATOR;
    case StatusCode::kTimeout:
      return v1::REQUEST_TIMED_OUT;
    case StatusCode::kResourceExhausted:
      return v1::RESOURCE_EXHAUSTED;
    default:
      return v1::BROKER_NOT_AVAILABLE;
  }
}

}  // namespace rill::broker
