#pragma once

// Value types of the Raft core: log indexes, entries, hard state, membership, snapshots and the
// messages nodes exchange. They are plain C++ structs; the broker maps them to rill.internal.v1
// protobufs at the network edge.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "rill/proto/status.h"
#include "rill/proto/types.h"

namespace rill::raft {

struct LogIndexTag {};
// Position of an entry in the Raft log. Indexes start at 1; 0 means "before the first entry".
using LogIndex = StrongInt<LogIndexTag, uint64_t>;

// Node ids are > 0; kNoNode means "nobody" (no vote cast, no known leader).
inline constexpr NodeId kNoNode{0};

enum class EntryType : uint8_t {
  kNormal = 0,  // application data proposed through RaftNode::Propose
  kNoop = 1,    // appended by every new leader so that it can commit entries of earlier terms
};

struct Entry {
  Term term;
  LogIndex index;
  EntryType type = EntryType::kNormal;
  std::string data;

  bool operator==(const Entry&) const = default;
};

// State that must be on stable storage before the node acts on it (Raft paper figure 2):
// the current term, the vote cast in it, and the commit index (the last may lag; it is only an
// optimisation for restart).
struct HardState {
  Term term;
  NodeId vote = kNoNode;
  LogIndex commit;

  bool operator==(const HardState&) const = default;
};

// The membership: voters, and learners (non-voting members). Membership lives only here so that
// joint consensus (two voter sets, a quorum in each) can later replace the body of QuorumIndex /
// HasQuorum without touching the core.
//
// A learner receives the log like a follower (appends, heartbeats, snapshots, under the same
// flow control) and applies what the leader commits, but it never counts: QuorumIndex and
// HasQuorum look at voters only, so learners take no part in commit, elections or check-quorum.
// A broker that is not a controller follows the metadata log as a learner.
struct Configuration {
  std::vector<NodeId> voters;    // sorted, unique, every id > 0, never empty
  std::vector<NodeId> learners;  // sorted, unique, every id > 0, disjoint from voters

  static Configuration Of(std::vector<NodeId> voters);  // sorts and dedups
  static Configuration Of(std::vector<NodeId> voters, std::vector<NodeId> learners);
  Status Validate() const;
  bool IsVoter(NodeId id) const;
  bool IsLearner(NodeId id) const;
  bool IsMember(NodeId id) const { return IsVoter(id) || IsLearner(id); }
  size_t QuorumSize() const { return voters.size() / 2 + 1; }
  // The largest index that a quorum of voters has reached; `match(id)` gives each voter's.
  // Learners are not asked.
  template <typename MatchFn>
  LogIndex QuorumIndex(MatchFn&& match) const;
  // True when `yes(id)` holds for a quorum of voters (learners are not asked).
  template <typename Pred>
  bool HasQuorum(Pred&& yes) const;

  bool operator==(const Configuration&) const = default;
};

struct SnapshotMetadata {
  LogIndex index;  // last entry covered by the snapshot
  Term term;       // term of that entry
  Configuration configuration;

  bool operator==(const SnapshotMetadata&) const = default;
};

// A state-machine snapshot: the application's state after applying every entry up to
// metadata.index. `data` is opaque to Raft.
struct Snapshot {
  SnapshotMetadata metadata;
  std::string data;

  bool operator==(const Snapshot&) const = default;
};

enum class MessageType : uint8_t {
  kPreVote,  // "would you vote for me at term+1?" (term not yet incremented)
  kPreVoteResponse,
  kVote,  // RequestVote
  kVoteResponse,
  kAppend,          // AppendEntries carrying entries (possibly none)
  kAppendResponse,  // also answers kInstallSnapshot
  kHeartbeat,       // leader liveness + commit index, no log matching
  kHeartbeatResponse,
  kInstallSnapshot,
  kTimeoutNow,  // leadership transfer: "start an election now"
};
std::string_view MessageTypeName(MessageType type);

struct Message {
  MessageType type = MessageType::kAppend;
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  Term term;
  // kAppend: index and term of the entry just before `entries`.
  // kVote / kPreVote: the candidate's last log index and term.
  // kAppendResponse: accepted -> highest index known to match the leader's log;
  //                  rejected -> the `log_index` of the rejected kAppend.
  LogIndex log_index;
  Term log_term;
  std::vector<Entry> entries;
  LogIndex commit;  // kAppend / kHeartbeat: leader's commit index (heartbeat: capped to match)
  bool reject = false;
  // kAppendResponse when rejected: the follower's guess at the last index where the logs may
  // agree, and its term there (etcd-raft's fast back-off: one round trip per term, not per entry).
  LogIndex reject_hint;
  Term reject_hint_term;
  // kVote / kPreVote sent because of kTimeoutNow: voters ignore their leader lease for it.
  bool leader_transfer = false;
  std::optional<Snapshot> snapshot;  // kInstallSnapshot

  std::string ToString() const;  // one line, for logs and simulator traces
};

// Deterministic PRNG (SplitMix64): the only source of randomness in the core and the simulator,
// so that a seed replays a run exactly on any platform.
class DeterministicRng {
 public:
  explicit DeterministicRng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n); n > 0.
  uint64_t Uniform(uint64_t n) { return Next() % n; }
  // True with probability `p` in [0, 1].
  bool Chance(double p) { return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p; }

 private:
  uint64_t state_;
};

template <typename MatchFn>
LogIndex Configuration::QuorumIndex(MatchFn&& match) const {
  std::vector<LogIndex> m;
  m.reserve(voters.size());
  for (NodeId id : voters) m.push_back(match(id));
  // Descending; the quorum-th largest is reached by a quorum.
  std::sort(m.begin(), m.end(), [](LogIndex a, LogIndex b) { return a > b; });
  return m[QuorumSize() - 1];
}

template <typename Pred>
bool Configuration::HasQuorum(Pred&& yes) const {
  size_t n = 0;
  for (NodeId id : voters) n += yes(id) ? 1 : 0;
  return n >= QuorumSize();
}

}  // namespace rill::raft
