#include "rill/replication/raft_types.h"

#include <sstream>

namespace rill::raft {

Configuration Configuration::Of(std::vector<NodeId> voters) {
  std::sort(voters.begin(), voters.end());
  voters.erase(std::unique(voters.begin(), voters.end()), voters.end());
  return Configuration{std::move(voters)};
}

Status Configuration::Validate() const {
  if (voters.empty()) return Status::InvalidArgument("configuration has no voters");
  for (size_t i = 0; i < voters.size(); ++i) {
    if (voters[i] <= kNoNode) {
      return Status::InvalidArgument("voter id " + std::to_string(voters[i].value()) +
                                     " is not > 0");
    }
    if (i > 0 && voters[i - 1] >= voters[i]) {
      return Status::InvalidArgument("voters are not sorted and unique");
    }
  }
  return Status::OK();
}

bool Configuration::IsVoter(NodeId id) const {
  return std::binary_search(voters.begin(), voters.end(), id);
}

std::string_view MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kPreVote:
      return "PreVote";
    case MessageType::kPreVoteResponse:
      return "PreVoteResponse";
    case MessageType::kVote:
      return "Vote";
    case MessageType::kVoteResponse:
      return "VoteResponse";
    case MessageType::kAppend:
      return "Append";
    case MessageType::kAppendResponse:
      return "AppendResponse";
    case MessageType::kHeartbeat:
      return "Heartbeat";
    case MessageType::kHeartbeatResponse:
      return "HeartbeatResponse";
    case MessageType::kInstallSnapshot:
      return "InstallSnapshot";
    case MessageType::kTimeoutNow:
      return "TimeoutNow";
  }
  return "?";
}

std::string Message::ToString() const {
  std::ostringstream os;
  os << MessageTypeName(type) << " " << from << "->" << to << " term=" << term
     << " log=" << log_index << "/" << log_term << " commit=" << commit;
  if (!entries.empty()) {
    os << " entries=[" << entries.front().index << ".." << entries.back().index << "]";
  }
  if (reject) os << " REJECT hint=" << reject_hint << "/" << reject_hint_term;
  if (leader_transfer) os << " transfer";
  if (snapshot) os << " snapshot=" << snapshot->metadata.index << "/" << snapshot->metadata.term;
  return os.str();
}

}  // namespace rill::raft
