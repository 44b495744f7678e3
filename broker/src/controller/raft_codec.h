#pragma once

// Conversion between the Raft core's C++ structs (replication/raft_types.h) and their
// rill.internal.v1 protobufs, and of a forwarded operation's results: the network edge of the
// controller quorum.
//
// Thread-safety: pure functions.

#include <vector>

#include "controller.h"
#include "rill/internal/v1/raft.pb.h"
#include "rill/proto/status.h"
#include "rill/replication/raft_types.h"

namespace rill::broker {

void EncodeRaftEntry(const raft::Entry& e, internal::v1::RaftEntry* out);
// InvalidArgument for an unknown entry type.
Result<raft::Entry> DecodeRaftEntry(const internal::v1::RaftEntry& e);
void EncodeRaftSnapshot(const raft::Snapshot& s, internal::v1::RaftSnapshot* out);
raft::Snapshot DecodeRaftSnapshot(const internal::v1::RaftSnapshot& s);

void EncodeRaftMessage(const raft::Message& m, internal::v1::RaftMessage* out);
// InvalidArgument for an unknown message or entry type.
Result<raft::Message> DecodeRaftMessage(const internal::v1::RaftMessage& m);

// The results of an operation run for another node (Raft/Forward). The controller's TopicOpError
// travels as rill.internal.v1.TopicOpError (same values), never as a rill.v1 wire code; a value
// this node does not know decodes as kUnknown.
void EncodeForwardResults(const std::vector<TopicOpResult>& results,
                          internal::v1::ForwardResponse* out);
std::vector<TopicOpResult> DecodeForwardResults(const internal::v1::ForwardResponse& in);

}  // namespace rill::broker
