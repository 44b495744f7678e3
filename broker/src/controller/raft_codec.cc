#include "raft_codec.h"

#include <string>

namespace rill::broker {
namespace {

namespace pb = internal::v1;

pb::RaftMessageType ToProto(raft::MessageType t) {
  switch (t) {
    case raft::MessageType::kPreVote:
      return pb::RAFT_PRE_VOTE;
    case raft::MessageType::kPreVoteResponse:
      return pb::RAFT_PRE_VOTE_RESPONSE;
    case raft::MessageType::kVote:
      return pb::RAFT_VOTE;
    case raft::MessageType::kVoteResponse:
      return pb::RAFT_VOTE_RESPONSE;
    case raft::MessageType::kAppend:
      return pb::RAFT_APPEND;
    case raft::MessageType::kAppendResponse:
      return pb::RAFT_APPEND_RESPONSE;
    case raft::MessageType::kHeartbeat:
      return pb::RAFT_HEARTBEAT;
    case raft::MessageType::kHeartbeatResponse:
      return pb::RAFT_HEARTBEAT_RESPONSE;
    case raft::MessageType::kInstallSnapshot:
      return pb::RAFT_INSTALL_SNAPSHOT;
    case raft::MessageType::kTimeoutNow:
      return pb::RAFT_TIMEOUT_NOW;
  }
  RILL_ASSERT(false, "unknown raft message type %d", static_cast<int>(t));
  return pb::RAFT_APPEND;
}

Result<raft::MessageType> FromProto(pb::RaftMessageType t) {
  switch (t) {
    case pb::RAFT_PRE_VOTE:
      return raft::MessageType::kPreVote;
    case pb::RAFT_PRE_VOTE_RESPONSE:
      return raft::MessageType::kPreVoteResponse;
    case pb::RAFT_VOTE:
      return raft::MessageType::kVote;
    case pb::RAFT_VOTE_RESPONSE:
      return raft::MessageType::kVoteResponse;
    case pb::RAFT_APPEND:
      return raft::MessageType::kAppend;
    case pb::RAFT_APPEND_RESPONSE:
      return raft::MessageType::kAppendResponse;
    case pb::RAFT_HEARTBEAT:
      return raft::MessageType::kHeartbeat;
    case pb::RAFT_HEARTBEAT_RESPONSE:
      return raft::MessageType::kHeartbeatResponse;
    case pb::RAFT_INSTALL_SNAPSHOT:
      return raft::MessageType::kInstallSnapshot;
    case pb::RAFT_TIMEOUT_NOW:
      return raft::MessageType::kTimeoutNow;
    default:
      break;
  }
  return Status::InvalidArgument("unknown raft message type " + std::to_string(t));
}

}  // namespace

void EncodeRaftEntry(const raft::Entry& e, pb::RaftEntry* out) {
  out->set_term(e.term.value());
  out->set_index(e.index.value());
  out->set_type(e.type == raft::EntryType::kNoop ? pb::RAFT_ENTRY_NOOP : pb::RAFT_ENTRY_NORMAL);
  out->set_data(e.data);
}

Result<raft::Entry> DecodeRaftEntry(const pb::RaftEntry& e) {
  raft::Entry out;
  out.term = Term(e.term());
  out.index = raft::LogIndex(e.index());
  switch (e.type()) {
    case pb::RAFT_ENTRY_NORMAL:
      out.type = raft::EntryType::kNormal;
      break;
    case pb::RAFT_ENTRY_NOOP:
      out.type = raft::EntryType::kNoop;
      break;
    default:
      return Status::InvalidArgument("unknown raft entry type " + std::to_string(e.type()));
  }
  out.data = e.data();
  return out;
}

void EncodeRaftSnapshot(const raft::Snapshot& s, pb::RaftSnapshot* out) {
  out->mutable_metadata()->set_index(s.metadata.index.value());
  out->mutable_metadata()->set_term(s.metadata.term.value());
  for (NodeId v : s.metadata.configuration.voters) out->mutable_metadata()->add_voters(v.value());
  out->set_data(s.data);
}

raft::Snapshot DecodeRaftSnapshot(const pb::RaftSnapshot& s) {
  raft::Snapshot out;
  out.metadata.index = raft::LogIndex(s.metadata().index());
  out.metadata.term = Term(s.metadata().term());
  std::vector<NodeId> voters;
  for (int32_t v : s.metadata().voters()) voters.emplace_back(v);
  out.metadata.configuration = raft::Configuration::Of(std::move(voters));
  out.data = s.data();
  return out;
}

void EncodeRaftMessage(const raft::Message& m, pb::RaftMessage* out) {
  out->set_type(ToProto(m.type));
  out->set_from(m.from.value());
  out->set_to(m.to.value());
  out->set_term(m.term.value());
  out->set_log_index(m.log_index.value());
  out->set_log_term(m.log_term.value());
  for (const raft::Entry& e : m.entries) EncodeRaftEntry(e, out->add_entries());
  out->set_commit(m.commit.value());
  out->set_reject(m.reject);
  out->set_reject_hint(m.reject_hint.value());
  out->set_reject_hint_term(m.reject_hint_term.value());
  out->set_leader_transfer(m.leader_transfer);
  if (m.snapshot) EncodeRaftSnapshot(*m.snapshot, out->mutable_snapshot());
}

Result<raft::Message> DecodeRaftMessage(const pb::RaftMessage& m) {
  raft::Message out;
  RILL_ASSIGN_OR_RETURN(out.type, FromProto(m.type()));
  out.from = NodeId(m.from());
  out.to = NodeId(m.to());
  out.term = Term(m.term());
  out.log_index = raft::LogIndex(m.log_index());
  out.log_term = Term(m.log_term());
  out.entries.reserve(m.entries_size());
  for (const pb::RaftEntry& e : m.entries()) {
    RILL_ASSIGN_OR_RETURN(raft::Entry entry, DecodeRaftEntry(e));
    out.entries.push_back(std::move(entry));
  }
  out.commit = raft::LogIndex(m.commit());
  out.reject = m.reject();
  out.reject_hint = raft::LogIndex(m.reject_hint());
  out.reject_hint_term = Term(m.reject_hint_term());
  out.leader_transfer = m.leader_transfer();
  if (m.has_snapshot()) out.snapshot = DecodeRaftSnapshot(m.snapshot());
  return out;
}

// TopicOpError and rill.internal.v1.TopicOpError have the same values.
static_assert(static_cast<int>(TopicOpError::kNone) == internal::v1::TOPIC_OP_NONE);
static_assert(static_cast<int>(TopicOpError::kInvalidTopic) ==
              internal::v1::TOPIC_OP_INVALID_TOPIC);
static_assert(static_cast<int>(TopicOpError::kInvalidRequest) ==
              internal::v1::TOPIC_OP_INVALID_REQUEST);
static_assert(static_cast<int>(TopicOpError::kTopicAlreadyExists) ==
              internal::v1::TOPIC_OP_TOPIC_ALREADY_EXISTS);
static_assert(static_cast<int>(TopicOpError::kUnknownTopic) ==
              internal::v1::TOPIC_OP_UNKNOWN_TOPIC);
static_assert(static_cast<int>(TopicOpError::kInvalidPartitions) ==
              internal::v1::TOPIC_OP_INVALID_PARTITIONS);
static_assert(static_cast<int>(TopicOpError::kInvalidReplicationFactor) ==
              internal::v1::TOPIC_OP_INVALID_REPLICATION_FACTOR);
static_assert(static_cast<int>(TopicOpError::kInvalidConfig) ==
              internal::v1::TOPIC_OP_INVALID_CONFIG);
static_assert(static_cast<int>(TopicOpError::kNotController) ==
              internal::v1::TOPIC_OP_NOT_CONTROLLER);
static_assert(static_cast<int>(TopicOpError::kTimeout) == internal::v1::TOPIC_OP_TIMEOUT);
static_assert(static_cast<int>(TopicOpError::kTooManyOperations) ==
              internal::v1::TOPIC_OP_TOO_MANY_OPERATIONS);
static_assert(static_cast<int>(TopicOpError::kControllerFailed) ==
              internal::v1::TOPIC_OP_CONTROLLER_FAILED);
static_assert(static_cast<int>(TopicOpError::kUnknown) == internal::v1::TOPIC_OP_UNKNOWN);
static_assert(static_cast<int>(TopicOpError::kStaleEpoch) == internal::v1::TOPIC_OP_STALE_EPOCH);
static_assert(internal::v1::TopicOpError_MAX == static_cast<int>(kLastTopicOpError));

void EncodeForwardResults(const std::vector<TopicOpResult>& results,
                          internal::v1::ForwardResponse* out) {
  for (const TopicOpResult& r : results) {
    internal::v1::ForwardResult* f = out->add_results();
    f->set_topic(r.topic);
    f->set_error(static_cast<internal::v1::TopicOpError>(r.error));
    f->set_error_message(r.message);
    f->set_applied_index(r.applied_index);
    if (r.producer_ids_count > 0) {
      f->set_producer_ids_first(r.producer_ids_first);
      f->set_producer_ids_count(r.producer_ids_count);
    }
  }
}

std::vector<TopicOpResult> DecodeForwardResults(const internal::v1::ForwardResponse& in) {
  std::vector<TopicOpResult> out;
  out.reserve(in.results_size());
  for (const internal::v1::ForwardResult& f : in.results()) {
    const int e = f.error();
    const TopicOpError error = e >= 0 && e <= internal::v1::TopicOpError_MAX
                                   ? static_cast<TopicOpError>(e)
                                   : TopicOpError::kUnknown;
    TopicOpResult& r = out.emplace_back(
        TopicOpResult{f.topic(), error, f.error_message(), f.applied_index()});
    if (f.producer_ids_count() > 0) {
      r.producer_ids_first = f.producer_ids_first();
      r.producer_ids_count = f.producer_ids_count();
    }
  }
  return out;
}

}  // namespace rill::broker
