#include "rill/replication/raft_types.h"

#include <sstream>

namespace rill::raft {

namespace {

void SortUnique(std::vector<NodeId>& ids) {
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
}

Status ValidateIds(const std::vector<NodeId>& ids, const char* what) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] <= kNoNode) {
      return Status::InvalidArgument(std::string(what) + " id " + std::to_string(ids[i].value()) +
                                     " is not > 0");
    }
    if (i > 0 && ids[i - 1] >= ids[i]) {
      return Status::InvalidArgument(std::string(what) + "s are not sorted and unique");
    }
  }
  return Status::OK();
}

}  // namespace

Configuration Configuration::Of(std::vector<NodeId> voters) { return Of(std::move(voters), {}); }

Configuration Configuration::Of(std::vector<NodeId> voters, std::vector<NodeId> learners) {
  SortUnique(voters);
  SortUnique(learners);
  Configuration c;
  c.voters = std::move(voters);
  c.learners = std::move(learners);
  return c;
}

Status Configuration::Validate() const {
  if (voters.empty()) return Status::InvalidArgument("configuration has no voters");
  RILL_RETURN_IF_ERROR(ValidateIds(voters, "voter"));
  RILL_RETURN_IF_ERROR(ValidateIds(learners, "learner"));
  for (NodeId id : learners) {
    if (IsVoter(id)) {
      return Status::InvalidArgument("node " + std::to_string(id.value()) +
                                     " is both a voter and a learner");
    }
  }
  return Status::OK();
}

bool Configuration::IsVoter(NodeId id) const {
  return std::binary_search(voters.begin(), voters.end(), id);
}

bool Configuration::IsLearner(NodeId id) const {
  return std::binary_search(learners.begin(), learners.end(), id);
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
