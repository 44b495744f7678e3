#include "rill/client/errors.h"

#include <array>

namespace rill::client {
namespace {

constexpr std::array<std::string_view, 32> kNames = {
    "NONE",
    "UNKNOWN",
    "NOT_LEADER",
    "UNKNOWN_TOPIC",
    "UNKNOWN_PARTITION",
    "OFFSET_OUT_OF_RANGE",
    "NOT_ENOUGH_REPLICAS",
    "CORRUPT_BATCH",
    "MESSAGE_TOO_LARGE",
    "INVALID_REQUEST",
    "TOPIC_ALREADY_EXISTS",
    "INVALID_TOPIC",
    "INVALID_PARTITIONS",
    "INVALID_CONFIG",
    "REQUEST_TIMED_OUT",
    "STORAGE_ERROR",
    "RESOURCE_EXHAUSTED",
    "FENCED_MEMBER_EPOCH",
    "UNKNOWN_MEMBER_ID",
    "GROUP_NOT_EMPTY",
    "NOT_COORDINATOR",
    "COORDINATOR_NOT_AVAILABLE",
    "GROUP_ID_NOT_FOUND",
    "INVALID_REPLICATION_FACTOR",
    "BROKER_NOT_AVAILABLE",
    "INVALID_OFFSET",
    "UNRELEASED_INSTANCE_ID",
    "ELECTION_NOT_NEEDED",
    "PREFERRED_LEADER_NOT_AVAILABLE",
    "OUT_OF_ORDER_SEQUENCE_NUMBER",
    "INVALID_PRODUCER_EPOCH",
    "INVALID_PRODUCER_FIELDS",
};

StatusCode CodeFor(int32_t code) {
  switch (code) {
    case 2:   // NOT_LEADER
    case 6:   // NOT_ENOUGH_REPLICAS
    case 20:  // NOT_COORDINATOR
    case 21:  // COORDINATOR_NOT_AVAILABLE
    case 24:  // BROKER_NOT_AVAILABLE
      return StatusCode::kUnavailable;
    case 3:   // UNKNOWN_TOPIC
    case 4:   // UNKNOWN_PARTITION
    case 18:  // UNKNOWN_MEMBER_ID
    case 22:  // GROUP_ID_NOT_FOUND
      return StatusCode::kNotFound;
    case 5:
      return StatusCode::kOutOfRange;
    case 7:
      return StatusCode::kCorruption;
    case 8:
    case 16:
      return StatusCode::kResourceExhausted;
    case 10:
      return StatusCode::kAlreadyExists;
    case 14:
      return StatusCode::kTimeout;
    case 15:
      return StatusCode::kIOError;
    case 9:
    case 11:
    case 12:
    case 13:
    case 23:
    case 25:
    case 31:  // INVALID_PRODUCER_FIELDS
      return StatusCode::kInvalidArgument;
    case 29:  // OUT_OF_ORDER_SEQUENCE_NUMBER
      return StatusCode::kOutOfRange;
    default:
      return StatusCode::kFailed;
  }
}

}  // namespace

std::string_view ErrorCodeName(int32_t code) {
  if (code >= 0 && static_cast<size_t>(code) < kNames.size()) return kNames[code];
  return "ERROR_UNKNOWN_CODE";
}

Status StatusFromErrorCode(int32_t code, std::string_view message) {
  if (code == 0) return Status::OK();
  std::string m(ErrorCodeName(code));
  if (code < 0 || static_cast<size_t>(code) >= kNames.size()) m += "(" + std::to_string(code) + ")";
  if (!message.empty()) {
    m += ": ";
    m += message;
  }
  return Status(CodeFor(code), std::move(m));
}

bool IsRetriableErrorCode(int32_t code) {
  switch (code) {
    case 2:
    case 4:
    case 6:
    case 14:
    case 16:
    case 24:
      return true;
    default:
      return false;
  }
}

}  // namespace rill::client
