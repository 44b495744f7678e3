#pragma once

// The Raft core for the controller quorum: a pure, single-threaded state machine in the style of
// etcd-raft. It has no clocks, threads, sockets or disks. Its inputs are Tick() (one unit of
// logical time), Step(message) (a message from a peer) and Propose(data); its outputs are
// collected in a Ready that the caller persists, sends and applies before calling Advance().
//
// Thread-safety: none. One owner calls every method (the broker runs a node on one strand).

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rill/proto/status.h"
#include "rill/replication/raft_types.h"

namespace rill::raft {

struct RaftConfig {
  NodeId id = kNoNode;
  // Membership at start (voters are static; learners may be added with AddLearner); `id` must
  // be a voter or a learner in it. A learner node follows the leader's log and applies what is
  // committed, but never campaigns, never grants a vote and never leads (RaftNode::is_learner).
  Configuration configuration;
  // A follower that hears nothing from a leader for a random number of ticks in
  // [election_tick, 2 * election_tick) starts an election. A leader sends heartbeats every
  // heartbeat_tick ticks. heartbeat_tick < election_tick.
  int election_tick = 10;
  int heartbeat_tick = 1;
  // Pre-vote: a would-be candidate first asks whether it could win, without incrementing its
  // term, so a node returning from a partition cannot force the cluster into a new term.
  bool pre_vote = true;
  // Check-quorum: a leader that has not heard from a quorum within election_tick ticks steps
  // down; a follower that heard from its leader within election_tick ticks ignores vote
  // requests (the leader lease).
  bool check_quorum = true;
  uint64_t random_seed = 1;  // drives the randomised election timeout; no global randomness
  // Limits (docs/CONVENTIONS.md §9: put a limit on everything).
  size_t max_entries_per_append = 64;     // entries in one kAppend
  size_t max_inflight_appends = 32;       // unacknowledged kAppends per follower
  size_t max_uncommitted_entries = 4096;  // Propose refuses beyond this
  size_t max_committed_entries_per_ready = 1024;

  Status Validate() const;
};

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
std::string_view RoleName(Role role);

// What the node restarts from: everything the storage had durably (RaftLogStorage::Load).
struct RaftInitialState {
  HardState hard_state;
  std::optional<Snapshot> snapshot;  // latest snapshot; entries start right after it
  std::vector<Entry> entries;        // contiguous, first index = snapshot index + 1 (or 1)
};

// The work a node hands to its caller. CONTRACT, in this order:
//  1. If `snapshot` is set: persist it (RaftLogStorage::SaveSnapshot) — it replaces the log.
//  2. Persist `entries`: they replace any stored entries at or after entries.front().index
//     (an entry not yet committed may be overwritten by a later Ready).
//  3. Persist `hard_state` if set.
//  4. If `must_sync`, fsync all of the above. Nothing in `messages` may be sent before this:
//     a vote or an acknowledgement promises that the state behind it is durable.
//  5. Send `messages` (any order, any may be lost; Raft tolerates loss, duplication, reorder).
//  6. Install `snapshot` into the state machine, then apply `committed_entries` in order. Only
//     these entries are committed; an entry in `entries` is not committed until it appears here.
//  7. Call Advance(). No other method of the node may be called between GetReady and Advance.
struct Ready {
  std::optional<HardState> hard_state;  // set when term, vote or commit changed
  std::vector<Entry> entries;
  std::optional<Snapshot> snapshot;  // received from the leader
  std::vector<Message> messages;
  std::vector<Entry> committed_entries;
  bool must_sync = false;  // term, vote, entries or snapshot changed

  bool empty() const {
    return !hard_state && entries.empty() && !snapshot && messages.empty() &&
           committed_entries.empty();
  }
};

class RaftNode {
 public:
  // Restarts (or starts, from an empty RaftInitialState) a node as a follower.
  static Result<std::unique_ptr<RaftNode>> Create(RaftConfig config, RaftInitialState initial);

  // Advances logical time by one tick: elections, heartbeats, check-quorum.
  void Tick();
  // Handles a message from a peer. InvalidArgument for a message not addressed to this node or
  // from a node outside the configuration; stale and duplicate messages are ignored (OK).
  Status Step(const Message& m);
  // Appends `data` to the log if this node is leader and returns its index; it is committed when
  // it comes back in Ready::committed_entries. Unavailable when not leader (the message names the
  // leader if known; see leader()) or while a leadership transfer runs; ResourceExhausted when
  // max_uncommitted_entries would be exceeded.
  Result<LogIndex> Propose(std::string data);
  // Starts an election now (as if the election timeout fired). For tests and tools. Does
  // nothing on a learner.
  void Campaign();
  // Leader only: hands leadership to `target` (a voter; InvalidArgument for a learner) once it
  // has the whole log (kTimeoutNow). Proposals
  // are refused until the transfer ends or times out after election_tick ticks.
  Status TransferLeadership(NodeId target);
  // The application has a snapshot of its state at `index` (<= applied_index()); the log up to
  // `index` is dropped from memory and followers behind it get the snapshot instead. The caller
  // also persists it with RaftLogStorage::SaveSnapshot.
  Status CompactLog(LogIndex index, std::string data);

  bool HasReady() const;
  Ready GetReady();
  void Advance();

  NodeId id() const { return config_.id; }
  Role role() const { return role_; }
  Term term() const { return term_; }
  NodeId vote() const { return vote_; }
  NodeId leader() const { return leader_; }
  // Ticks since this follower last heard from leader() (its election timer).
  int ticks_since_leader_heard() const { return election_elapsed_; }
  LogIndex commit_index() const { return commit_; }
  LogIndex applied_index() const { return applied_; }
  LogIndex first_index() const { return snapshot_index_ + 1; }
  LogIndex last_index() const { return snapshot_index_ + entries_.size(); }
  Term last_term() const;
  LogIndex snapshot_index() const { return snapshot_index_; }
  const std::optional<Snapshot>& snapshot() const { return snapshot_; }
  // Term of the entry at `index`; nullopt when compacted (below snapshot_index) or beyond the end.
  std::optional<Term> TermAt(LogIndex index) const;
  // The entry at `index` held in memory, or nullptr (compacted or beyond the end).
  const Entry* EntryAt(LogIndex index) const;
  const Configuration& configuration() const { return config_.configuration; }
  // A learner (non-voting member): its role is always kFollower. It takes no election timeout
  // (Tick never starts a campaign, Campaign and kTimeoutNow do nothing), rejects every vote and
  // pre-vote request (it has no vote to give; a candidate never asks it), and is not counted
  // for commit or check-quorum. It replicates and commits from the leader like a follower.
  bool is_learner() const { return config_.configuration.IsLearner(config_.id); }
  NodeId lead_transferee() const { return lead_transferee_; }

  // Adds `id` as a learner. A local change, not a log entry: a learner takes part in no quorum,
  // so nodes may disagree on the learner set without risk to safety, and the application adds
  // the same learners on every voter from its own replicated state (the controller: the
  // registered brokers that are not voters). A leader starts replicating to it at once; a
  // follower will when it leads. OK when `id` is already a learner; InvalidArgument when it is
  // a voter, this node, or not > 0.
  Status AddLearner(NodeId id);

  struct Progress;  // leader's view of one follower or learner (defined in raft.cc)
  ~RaftNode();

 private:
  RaftNode(RaftConfig config, RaftInitialState initial);

  void BecomeFollower(Term term, NodeId leader);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void StartElection(bool leader_transfer);
  void RequestVotes(MessageType type, Term term, bool leader_transfer);
  void ResetTimers();
  void ResetRandomizedElectionTimeout();

  void StepLeader(const Message& m);
  void StepCandidate(const Message& m);
  void StepFollower(const Message& m);
  void HandleVoteRequest(const Message& m);
  void HandleAppend(const Message& m);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshot(const Message& m);
  void HandleAppendResponse(const Message& m);
  void HandleHeartbeatResponse(const Message& m);
  void RecordVote(NodeId from, bool granted);

  void Send(Message m);
  bool SendAppend(NodeId to, bool send_if_empty);
  void BroadcastAppend();
  void BroadcastHeartbeat();
  void SendTimeoutNow(NodeId to);
  void RejectVoteRequest(const Message& m);
  bool MaybeCommit();
  void AppendLocal(EntryType type, std::string data);
  void CommitTo(LogIndex index);
  bool IsUpToDate(LogIndex last_index, Term last_term) const;
  // Largest index <= `index` whose term is <= `term` (the fast back-off search), and its term.
  std::pair<LogIndex, Term> FindConflictByTerm(LogIndex index, Term term) const;
  void TruncateFrom(LogIndex index);
  bool InLease() const;

  RaftConfig config_;
  DeterministicRng rng_;

  // Durable state (Ready::hard_state).
  Term term_;
  NodeId vote_ = kNoNode;
  LogIndex commit_;

  // The log: a snapshot covering [1, snapshot_index_], then entries_ (all in memory; the
  // application bounds their number with CompactLog).
  LogIndex snapshot_index_;
  Term snapshot_term_;
  std::optional<Snapshot> snapshot_;  // latest snapshot, sent to followers behind it
  std::deque<Entry> entries_;
  // Entries up to stabled_ were handed out in a Ready (and so are durable once it is handled).
  // Invariant: snapshot_index_ <= stabled_ <= last_index().
  LogIndex stabled_;
  LogIndex applied_;                          // invariant: applied_ <= commit_ <= last_index()
  std::optional<Snapshot> pending_snapshot_;  // received, not yet handed out in a Ready

  Role role_ = Role::kFollower;
  NodeId leader_ = kNoNode;
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  std::vector<NodeId> votes_granted_;
  std::vector<NodeId> votes_rejected_;
  NodeId lead_transferee_ = kNoNode;
  // One per member: configuration().voters in order, then configuration().learners in order.
  std::vector<std::unique_ptr<Progress>> progress_;

  std::vector<Message> outbox_;
  HardState last_ready_hard_state_;

  // What the Ready in flight handed out, applied by Advance().
  bool ready_in_flight_ = false;
  LogIndex ready_stabled_;
  LogIndex ready_applied_;

  Progress& ProgressOf(NodeId id);
};

}  // namespace rill::raft
