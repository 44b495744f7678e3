#include "rill/replication/raft.h"

#include <algorithm>
#include <string>

namespace rill::raft {

// The leader's view of one member, voter or learner (etcd-raft's Progress): learners are
// replicated to exactly like voters; only the quorum questions (Configuration) tell them apart.
// Replication to a follower is in one of three states:
//  - kProbe: the leader does not know where the logs match; it sends one kAppend at a time and
//    waits for the answer (or the next heartbeat) before sending another.
//  - kReplicate: the logs match up to `match`; kAppends are pipelined, at most
//    max_inflight_appends unacknowledged.
//  - kSnapshot: the follower needs entries the leader has compacted; a snapshot is on its way.
struct RaftNode::Progress {
  enum class State : uint8_t { kProbe, kReplicate, kSnapshot };

  NodeId id;
  LogIndex match;  // highest index known to be replicated on the node
  LogIndex next;   // next index to send; invariant: match < next
  State state = State::kProbe;
  bool probe_sent = false;        // kProbe: an append is outstanding
  std::deque<LogIndex> inflight;  // kReplicate: last index of each unacknowledged append
  LogIndex pending_snapshot;      // kSnapshot: index of the snapshot sent
  int snapshot_ticks = 0;         // kSnapshot: ticks since it was sent
  bool recent_active = false;     // heard from since the last check-quorum

  void BecomeProbe() {
    if (state == State::kSnapshot) {
      next = std::max(match + 1, pending_snapshot + 1);
    } else {
      next = match + 1;
    }
    state = State::kProbe;
    probe_sent = false;
    inflight.clear();
    pending_snapshot = LogIndex(0);
  }
  void BecomeReplicate() {
    state = State::kReplicate;
    next = match + 1;
    probe_sent = false;
    inflight.clear();
  }
  void BecomeSnapshot(LogIndex snapshot_index) {
    state = State::kSnapshot;
    pending_snapshot = snapshot_index;
    snapshot_ticks = 0;
    probe_sent = false;
    inflight.clear();
  }
  // An acknowledgement up to `n`; false if it tells nothing new.
  bool MaybeUpdate(LogIndex n) {
    bool updated = match < n;
    if (updated) {
      match = n;
      probe_sent = false;
    }
    next = std::max(next, n + 1);
    while (!inflight.empty() && inflight.front() <= n) inflight.pop_front();
    return updated;
  }
  // A rejection of the append after `rejected`; `hint` is the leader's guess of the last
  // matching index. False if the rejection is stale.
  bool MaybeDecrTo(LogIndex rejected, LogIndex hint) {
    if (state == State::kReplicate) {
      if (rejected <= match) return false;
      next = match + 1;
      return true;
    }
    if (next - 1 != rejected) return false;
    next = std::max(std::min(rejected, hint + 1), match + 1);
    probe_sent = false;
    return true;
  }
  bool IsPaused(size_t max_inflight) const {
    switch (state) {
      case State::kProbe:
        return probe_sent;
      case State::kReplicate:
        return inflight.size() >= max_inflight;
      case State::kSnapshot:
        return true;
    }
    return true;
  }
};

RaftNode::~RaftNode() = default;

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kFollower:
      return "follower";
    case Role::kPreCandidate:
      return "pre-candidate";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "?";
}

Status RaftConfig::Validate() const {
  RILL_RETURN_IF_ERROR(configuration.Validate());
  if (!configuration.IsMember(id)) {
    return Status::InvalidArgument("node " + std::to_string(id.value()) +
                                   " is neither a voter nor a learner in its own configuration");
  }
  if (heartbeat_tick <= 0 || election_tick <= heartbeat_tick) {
    return Status::InvalidArgument("need 0 < heartbeat_tick < election_tick");
  }
  if (max_entries_per_append == 0 || max_inflight_appends == 0 || max_uncommitted_entries == 0 ||
      max_committed_entries_per_ready == 0) {
    return Status::InvalidArgument("raft limits must be > 0");
  }
  return Status::OK();
}

Result<std::unique_ptr<RaftNode>> RaftNode::Create(RaftConfig config, RaftInitialState initial) {
  RILL_RETURN_IF_ERROR(config.Validate());
  LogIndex expect = initial.snapshot ? initial.snapshot->metadata.index + 1 : LogIndex(1);
  for (const Entry& e : initial.entries) {
    if (e.index != expect) {
      return Status::Corruption("raft log is not contiguous: expected index " +
                                std::to_string(expect.value()) + ", found " +
                                std::to_string(e.index.value()));
    }
    ++expect;
  }
  LogIndex last = expect - 1;
  if (initial.hard_state.commit > last) {
    return Status::Corruption("raft hard state commit " +
                              std::to_string(initial.hard_state.commit.value()) +
                              " is beyond the last log index " + std::to_string(last.value()));
  }
  return std::unique_ptr<RaftNode>(new RaftNode(std::move(config), std::move(initial)));
}

RaftNode::RaftNode(RaftConfig config, RaftInitialState initial)
    : config_(std::move(config)), rng_(config_.random_seed ^ (uint64_t(config_.id.value()) << 32)) {
  term_ = initial.hard_state.term;
  vote_ = initial.hard_state.vote;
  if (initial.snapshot) {
    snapshot_index_ = initial.snapshot->metadata.index;
    snapshot_term_ = initial.snapshot->metadata.term;
    snapshot_ = std::move(initial.snapshot);
  }
  for (Entry& e : initial.entries) entries_.push_back(std::move(e));
  commit_ = std::max(initial.hard_state.commit, snapshot_index_);
  stabled_ = last_index();
  applied_ = snapshot_index_;  // the application restores its state from the snapshot
  last_ready_hard_state_ = HardState{term_, vote_, commit_};
  for (const auto* ids : {&config_.configuration.voters, &config_.configuration.learners}) {
    for (NodeId id : *ids) {
      progress_.push_back(std::make_unique<Progress>());
      progress_.back()->id = id;
    }
  }
  BecomeFollower(term_, kNoNode);
}

RaftNode::Progress& RaftNode::ProgressOf(NodeId id) {
  const auto& v = config_.configuration.voters;
  auto it = std::lower_bound(v.begin(), v.end(), id);
  if (it != v.end() && *it == id) return *progress_[it - v.begin()];
  const auto& l = config_.configuration.learners;
  auto lt = std::lower_bound(l.begin(), l.end(), id);
  RILL_ASSERT(lt != l.end() && *lt == id, "no progress for node %d", id.value());
  return *progress_[v.size() + (lt - l.begin())];
}

// ---- log helpers ----

std::optional<Term> RaftNode::TermAt(LogIndex index) const {
  if (index == snapshot_index_) return snapshot_term_;
  if (index < snapshot_index_ || index > last_index()) return std::nullopt;
  return entries_[index - snapshot_index_ - 1].term;
}

const Entry* RaftNode::EntryAt(LogIndex index) const {
  if (index <= snapshot_index_ || index > last_index()) return nullptr;
  return &entries_[index - snapshot_index_ - 1];
}

Term RaftNode::last_term() const { return *TermAt(last_index()); }

bool RaftNode::IsUpToDate(LogIndex last_index_c, Term last_term_c) const {
  // Raft §5.4.1: the later term wins; with equal terms, the longer log.
  Term my_term = last_term();
  return last_term_c > my_term || (last_term_c == my_term && last_index_c >= last_index());
}

std::pair<LogIndex, Term> RaftNode::FindConflictByTerm(LogIndex index, Term term) const {
  index = std::min(index, last_index());
  while (true) {
    std::optional<Term> t = TermAt(index);
    if (!t) return {index, Term(0)};  // compacted: the caller falls back to a snapshot
    if (*t <= term || index == LogIndex(0)) return {index, *t};
    index = index - 1;
  }
}

void RaftNode::TruncateFrom(LogIndex index) {
  RILL_ASSERT(index > commit_, "truncating committed entry %lu (commit %lu)",
              (unsigned long)index.value(), (unsigned long)commit_.value());
  RILL_ASSERT(index > snapshot_index_, "truncating into the snapshot");
  entries_.resize(index - snapshot_index_ - 1);
  stabled_ = std::min(stabled_, index - 1);
}

void RaftNode::CommitTo(LogIndex index) {
  if (index <= commit_) return;
  RILL_ASSERT(index <= last_index(), "commit %lu beyond last index %lu",
              (unsigned long)index.value(), (unsigned long)last_index().value());
  commit_ = index;
}

void RaftNode::AppendLocal(EntryType type, std::string data) {
  entries_.push_back(Entry{term_, last_index() + 1, type, std::move(data)});
  ProgressOf(id()).MaybeUpdate(last_index());
}

// ---- roles ----

void RaftNode::ResetRandomizedElectionTimeout() {
  randomized_election_timeout_ =
      config_.election_tick + static_cast<int>(rng_.Uniform(config_.election_tick));
}

void RaftNode::ResetTimers() {
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedElectionTimeout();
  votes_granted_.clear();
  votes_rejected_.clear();
  lead_transferee_ = kNoNode;
}

void RaftNode::BecomeFollower(Term term, NodeId leader) {
  if (term != term_) {
    term_ = term;
    vote_ = kNoNode;
  }
  role_ = Role::kFollower;
  leader_ = leader;
  ResetTimers();
}

void RaftNode::BecomePreCandidate() {
  RILL_ASSERT(role_ != Role::kLeader, "leader cannot become pre-candidate");
  RILL_ASSERT(!is_learner(), "learner %d cannot campaign", id().value());
  // Term and vote are unchanged: a pre-vote that fails leaves no trace.
  role_ = Role::kPreCandidate;
  leader_ = kNoNode;
  ResetTimers();
}

void RaftNode::BecomeCandidate() {
  RILL_ASSERT(role_ != Role::kLeader, "leader cannot become candidate");
  RILL_ASSERT(!is_learner(), "learner %d cannot campaign", id().value());
  term_ = term_ + 1;
  vote_ = id();
  role_ = Role::kCandidate;
  leader_ = kNoNode;
  ResetTimers();
}

void RaftNode::BecomeLeader() {
  RILL_ASSERT(role_ == Role::kCandidate, "only a candidate becomes leader");
  RILL_ASSERT(!is_learner(), "learner %d cannot lead", id().value());
  role_ = Role::kLeader;
  leader_ = id();
  ResetTimers();
  for (auto& p : progress_) {
    NodeId pid = p->id;
    *p = Progress{};
    p->id = pid;
    p->next = last_index() + 1;
    p->recent_active = true;  // grace period of one election timeout for check-quorum
  }
  Progress& self = ProgressOf(id());
  self.match = last_index();
  self.BecomeReplicate();
  // A no-op of the new term: committing it commits every earlier entry (Raft §5.4.2).
  AppendLocal(EntryType::kNoop, "");
  MaybeCommit();  // a single-node cluster commits at once
  BroadcastAppend();
}

void RaftNode::StartElection(bool leader_transfer) {
  if (is_learner()) return;  // a learner has no vote and cannot be elected
  if (config_.pre_vote && !leader_transfer) {
    BecomePreCandidate();
    RequestVotes(MessageType::kPreVote, term_ + 1, /*leader_transfer=*/false);
  } else {
    BecomeCandidate();
    RequestVotes(MessageType::kVote, term_, leader_transfer);
  }
}

void RaftNode::RequestVotes(MessageType type, Term term, bool leader_transfer) {
  RecordVote(id(), true);
  if (role_ == Role::kLeader || role_ == Role::kFollower) return;  // decided by our own vote
  if (type == MessageType::kPreVote && role_ != Role::kPreCandidate) return;  // already moved on
  for (NodeId peer : config_.configuration.voters) {
    if (peer == id()) continue;
    Message m;
    m.type = type;
    m.to = peer;
    m.term = term;
    m.log_index = last_index();
    m.log_term = last_term();
    m.leader_transfer = leader_transfer;
    Send(std::move(m));
  }
}

void RaftNode::RecordVote(NodeId from, bool granted) {
  auto& granted_v = votes_granted_;
  auto& rejected_v = votes_rejected_;
  if (std::find(granted_v.begin(), granted_v.end(), from) != granted_v.end() ||
      std::find(rejected_v.begin(), rejected_v.end(), from) != rejected_v.end()) {
    return;  // duplicate
  }
  (granted ? granted_v : rejected_v).push_back(from);
  const Configuration& c = config_.configuration;
  auto in = [](const std::vector<NodeId>& v) {
    return [&v](NodeId id) { return std::find(v.begin(), v.end(), id) != v.end(); };
  };
  if (c.HasQuorum(in(granted_v))) {
    if (role_ == Role::kPreCandidate) {
      BecomeCandidate();  // the pre-vote was won: campaign for real
      RequestVotes(MessageType::kVote, term_, /*leader_transfer=*/false);
    } else {
      BecomeLeader();
    }
  } else if (c.HasQuorum(in(rejected_v))) {
    BecomeFollower(term_, kNoNode);
  }
}

void RaftNode::Campaign() {
  RILL_ASSERT(!ready_in_flight_, "Campaign between GetReady and Advance");
  if (role_ == Role::kLeader) return;
  StartElection(/*leader_transfer=*/false);
}

// ---- inputs ----

bool RaftNode::InLease() const {
  return config_.check_quorum && leader_ != kNoNode && election_elapsed_ < config_.election_tick;
}

void RaftNode::Tick() {
  RILL_ASSERT(!ready_in_flight_, "Tick between GetReady and Advance");
  ++election_elapsed_;
  if (is_learner()) {
    // No election timeout; the count only serves the leader lease (InLease), so it is capped.
    election_elapsed_ = std::min(election_elapsed_, config_.election_tick);
    return;
  }
  if (role_ != Role::kLeader) {
    if (election_elapsed_ >= randomized_election_timeout_) {
      election_elapsed_ = 0;
      StartElection(/*leader_transfer=*/false);
    }
    return;
  }
  for (auto& p : progress_) {
    if (p->state == Progress::State::kSnapshot && ++p->snapshot_ticks >= config_.election_tick) {
      p->BecomeProbe();  // the snapshot or its answer was lost: find out where the follower is
    }
  }
  if (election_elapsed_ >= config_.election_tick) {
    election_elapsed_ = 0;
    if (config_.check_quorum) {
      bool active = config_.configuration.HasQuorum(
          [&](NodeId id) { return id == this->id() || ProgressOf(id).recent_active; });
      for (auto& p : progress_) p->recent_active = false;
      if (!active) {
        BecomeFollower(term_, kNoNode);
        return;
      }
    }
    lead_transferee_ = kNoNode;  // a transfer that did not finish in an election timeout
  }
  if (++heartbeat_elapsed_ >= config_.heartbeat_tick) {
    heartbeat_elapsed_ = 0;
    BroadcastHeartbeat();
  }
}

Result<LogIndex> RaftNode::Propose(std::string data) {
  RILL_ASSERT(!ready_in_flight_, "Propose between GetReady and Advance");
  if (role_ != Role::kLeader) {
    return Status::Unavailable(
        "not the raft leader; leader is " +
        (leader_ == kNoNode ? std::string("unknown") : std::to_string(leader_.value())));
  }
  if (lead_transferee_ != kNoNode) {
    return Status::Unavailable("leadership transfer to " +
                               std::to_string(lead_transferee_.value()) + " in progress");
  }
  if (last_index() - commit_ >= config_.max_uncommitted_entries) {
    return Status::ResourceExhausted("more than max_uncommitted_entries (" +
                                     std::to_string(config_.max_uncommitted_entries) +
                                     ") raft entries are not committed yet");
  }
  AppendLocal(EntryType::kNormal, std::move(data));
  LogIndex index = last_index();
  MaybeCommit();
  BroadcastAppend();
  return index;
}

Status RaftNode::TransferLeadership(NodeId target) {
  RILL_ASSERT(!ready_in_flight_, "TransferLeadership between GetReady and Advance");
  if (role_ != Role::kLeader) return Status::Unavailable("not the raft leader");
  if (!config_.configuration.IsVoter(target)) {
    return Status::InvalidArgument("node " + std::to_string(target.value()) + " is not a voter");
  }
  if (target == id()) return Status::OK();
  if (lead_transferee_ == target) return Status::OK();
  lead_transferee_ = target;
  election_elapsed_ = 0;  // the transfer times out after one election timeout
  if (ProgressOf(target).match == last_index()) {
    SendTimeoutNow(target);
  } else {
    SendAppend(target, /*send_if_empty=*/true);
  }
  return Status::OK();
}

Status RaftNode::AddLearner(NodeId learner) {
  RILL_ASSERT(!ready_in_flight_, "AddLearner between GetReady and Advance");
  Configuration& c = config_.configuration;
  if (learner <= kNoNode || learner == id() || c.IsVoter(learner)) {
    return Status::InvalidArgument("cannot add node " + std::to_string(learner.value()) +
                                   " as a learner: it is this node, a voter, or not > 0");
  }
  if (c.IsLearner(learner)) return Status::OK();
  auto at = std::lower_bound(c.learners.begin(), c.learners.end(), learner);
  size_t slot = c.voters.size() + (at - c.learners.begin());
  c.learners.insert(at, learner);
  auto p = std::make_unique<Progress>();
  p->id = learner;
  p->next = last_index() + 1;  // a probe from the end backs off to where its log matches
  p->recent_active = true;
  progress_.insert(progress_.begin() + slot, std::move(p));
  if (role_ == Role::kLeader) SendAppend(learner, /*send_if_empty=*/true);
  return Status::OK();
}

Status RaftNode::CompactLog(LogIndex index, std::string data) {
  RILL_ASSERT(!ready_in_flight_, "CompactLog between GetReady and Advance");
  if (index <= snapshot_index_) return Status::OK();  // already compacted that far
  if (index > applied_) {
    return Status::InvalidArgument("cannot compact to " + std::to_string(index.value()) +
                                   ", beyond the applied index " +
                                   std::to_string(applied_.value()));
  }
  Term t = *TermAt(index);
  entries_.erase(entries_.begin(), entries_.begin() + (index - snapshot_index_));
  snapshot_index_ = index;
  snapshot_term_ = t;
  snapshot_ = Snapshot{SnapshotMetadata{index, t, config_.configuration}, std::move(data)};
  return Status::OK();
}

Status RaftNode::Step(const Message& m) {
  RILL_ASSERT(!ready_in_flight_, "Step between GetReady and Advance");
  if (m.to != id()) {
    return Status::InvalidArgument("message for node " + std::to_string(m.to.value()) +
                                   " stepped into node " + std::to_string(id().value()));
  }
  if (!config_.configuration.IsMember(m.from) || m.from == id()) {
    return Status::InvalidArgument("message from node " + std::to_string(m.from.value()) +
                                   ", not a peer in the configuration");
  }
  if ((m.type == MessageType::kVote || m.type == MessageType::kPreVote) &&
      (is_learner() || !config_.configuration.IsVoter(m.from))) {
    // Only voters elect and only voters are elected. A candidate asks voters only, so this
    // arrives only when configurations disagree; it is answered before the term is looked at,
    // so it can neither raise our term nor disturb a leader.
    RejectVoteRequest(m);
    return Status::OK();
  }

  if (m.term > term_) {
    if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
      // Leader lease: a node that hears from a live leader does not help depose it (the
      // requester is partitioned or has a stale view). Transfers are the deliberate exception.
      if (!m.leader_transfer && InLease()) return Status::OK();
    }
    if (m.type == MessageType::kPreVote || (m.type == MessageType::kPreVoteResponse && !m.reject)) {
      // A pre-vote neither changes our term nor is a reason to step down; a granted pre-vote
      // carries the future term the pre-candidate would campaign at.
    } else if (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
               m.type == MessageType::kInstallSnapshot) {
      BecomeFollower(m.term, m.from);
    } else {
      BecomeFollower(m.term, kNoNode);
    }
  } else if (m.term < term_) {
    if ((config_.check_quorum || config_.pre_vote) &&
        (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat)) {
      // A stale leader (e.g. back from a partition whose peers moved on without disrupting it,
      // thanks to pre-vote) learns the new term from this answer and steps down.
      Message r;
      r.type = MessageType::kAppendResponse;
      r.to = m.from;
      Send(std::move(r));
    } else if (m.type == MessageType::kPreVote) {
      Message r;
      r.type = MessageType::kPreVoteResponse;
      r.to = m.from;
      r.reject = true;
      Send(std::move(r));
    }
    return Status::OK();  // every other stale message is ignored
  }

  if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
    HandleVoteRequest(m);
    return Status::OK();
  }
  switch (role_) {
    case Role::kLeader:
      StepLeader(m);
      break;
    case Role::kCandidate:
    case Role::kPreCandidate:
      StepCandidate(m);
      break;
    case Role::kFollower:
      StepFollower(m);
      break;
  }
  return Status::OK();
}

// etcd-raft lets a learner grant a vote, for the case of a learner promoted to voter that has
// not yet learned of its promotion; a candidate's tally counts voters only either way. We have
// no promotions (the voter set is static), so a learner simply never votes: it rejects, at its
// own term (a candidate that is behind learns the term, as from any rejection).
void RaftNode::RejectVoteRequest(const Message& m) {
  Message r;
  r.type =
      m.type == MessageType::kPreVote ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
  r.to = m.from;
  r.reject = true;
  Send(std::move(r));
}

void RaftNode::HandleVoteRequest(const Message& m) {
  bool is_pre = m.type == MessageType::kPreVote;
  // We may vote if we already voted for this candidate in this term, or have not voted and
  // know no leader; a pre-vote for a later term does not bind us.
  bool can_vote =
      vote_ == m.from || (vote_ == kNoNode && leader_ == kNoNode) || (is_pre && m.term > term_);
  Message r;
  r.type = is_pre ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
  r.to = m.from;
  if (can_vote && IsUpToDate(m.log_index, m.log_term)) {
    r.term = m.term;  // a granted pre-vote answers at the future term
    if (!is_pre) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    r.term = term_;
    r.reject = true;
  }
  Send(std::move(r));
}

void RaftNode::StepCandidate(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      BecomeFollower(m.term, m.from);  // a leader was elected in our term
      HandleAppend(m);
      return;
    case MessageType::kHeartbeat:
      BecomeFollower(m.term, m.from);
      HandleHeartbeat(m);
      return;
    case MessageType::kInstallSnapshot:
      BecomeFollower(m.term, m.from);
      HandleSnapshot(m);
      return;
    case MessageType::kPreVoteResponse:
      // A grant counts only if it answers this pre-campaign (made at term_ + 1).
      if (role_ == Role::kPreCandidate && (m.reject || m.term == term_ + 1)) {
        RecordVote(m.from, !m.reject);
      }
      return;
    case MessageType::kVoteResponse:
      if (role_ == Role::kCandidate) RecordVote(m.from, !m.reject);
      return;
    default:
      return;
  }
}

void RaftNode::StepFollower(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      election_elapsed_ = 0;
      leader_ = m.from;
      HandleAppend(m);
      return;
    case MessageType::kHeartbeat:
      election_elapsed_ = 0;
      leader_ = m.from;
      HandleHeartbeat(m);
      return;
    case MessageType::kInstallSnapshot:
      election_elapsed_ = 0;
      leader_ = m.from;
      HandleSnapshot(m);
      return;
    case MessageType::kTimeoutNow:
      // Campaign at once, skipping pre-vote; voters ignore their lease for this request. A
      // learner is never a transfer target (TransferLeadership refuses it) and ignores it.
      if (!is_learner()) StartElection(/*leader_transfer=*/true);
      return;
    default:
      return;
  }
}

void RaftNode::HandleAppend(const Message& m) {
  Message r;
  r.type = MessageType::kAppendResponse;
  r.to = m.from;
  if (m.log_index < commit_) {
    r.log_index = commit_;  // everything up to our commit already matches the leader
    Send(std::move(r));
    return;
  }
  std::optional<Term> prev_term = TermAt(m.log_index);
  if (prev_term && *prev_term == m.log_term) {
    LogIndex last_new = m.log_index + m.entries.size();
    size_t i = 0;
    for (; i < m.entries.size(); ++i) {
      std::optional<Term> t = TermAt(m.entries[i].index);
      if (!t || *t != m.entries[i].term) break;
    }
    if (i < m.entries.size()) {
      if (m.entries[i].index <= last_index()) TruncateFrom(m.entries[i].index);
      for (; i < m.entries.size(); ++i) entries_.push_back(m.entries[i]);
    }
    CommitTo(std::min(m.commit, last_new));
    r.log_index = last_new;
    Send(std::move(r));
    return;
  }
  // Mismatch: tell the leader where our log might agree with its, one step per term.
  auto [hint_index, hint_term] =
      FindConflictByTerm(std::min(m.log_index, last_index()), m.log_term);
  r.reject = true;
  r.log_index = m.log_index;
  r.reject_hint = hint_index;
  r.reject_hint_term = hint_term;
  Send(std::move(r));
}

void RaftNode::HandleHeartbeat(const Message& m) {
  CommitTo(m.commit);  // the leader caps it at our match index
  Message r;
  r.type = MessageType::kHeartbeatResponse;
  r.to = m.from;
  Send(std::move(r));
}

void RaftNode::HandleSnapshot(const Message& m) {
  RILL_ASSERT(m.snapshot.has_value(), "InstallSnapshot without a snapshot");
  const Snapshot& s = *m.snapshot;
  Message r;
  r.type = MessageType::kAppendResponse;
  r.to = m.from;
  if (s.metadata.index <= commit_) {
    r.log_index = commit_;
  } else if (TermAt(s.metadata.index) == s.metadata.term) {
    // We hold the snapshot's last entry: our log matches up to it, keep the suffix.
    CommitTo(s.metadata.index);
    r.log_index = commit_;
  } else {
    entries_.clear();
    snapshot_index_ = s.metadata.index;
    snapshot_term_ = s.metadata.term;
    snapshot_ = s;
    pending_snapshot_ = s;
    commit_ = s.metadata.index;
    stabled_ = s.metadata.index;
    r.log_index = s.metadata.index;
  }
  Send(std::move(r));
}

void RaftNode::StepLeader(const Message& m) {
  switch (m.type) {
    case MessageType::kAppendResponse:
      HandleAppendResponse(m);
      return;
    case MessageType::kHeartbeatResponse:
      HandleHeartbeatResponse(m);
      return;
    default:
      return;
  }
}

void RaftNode::HandleAppendResponse(const Message& m) {
  Progress& pr = ProgressOf(m.from);
  pr.recent_active = true;
  if (m.reject) {
    LogIndex hint = m.reject_hint;
    if (m.reject_hint_term > Term(0)) {
      hint = FindConflictByTerm(m.reject_hint, m.reject_hint_term).first;
    }
    if (pr.MaybeDecrTo(m.log_index, hint)) {
      if (pr.state == Progress::State::kReplicate) pr.BecomeProbe();
      SendAppend(m.from, /*send_if_empty=*/true);
    }
    return;
  }
  if (!pr.MaybeUpdate(m.log_index)) return;  // stale or duplicate
  if (pr.state == Progress::State::kProbe) {
    pr.BecomeReplicate();
  } else if (pr.state == Progress::State::kSnapshot && pr.match >= pr.pending_snapshot) {
    pr.BecomeProbe();
    pr.BecomeReplicate();
  }
  if (MaybeCommit()) BroadcastAppend();  // tells every follower the new commit index
  while (pr.next <= last_index() && SendAppend(m.from, /*send_if_empty=*/false)) {
  }
  if (m.from == lead_transferee_ && pr.match == last_index()) SendTimeoutNow(m.from);
}

void RaftNode::HandleHeartbeatResponse(const Message& m) {
  Progress& pr = ProgressOf(m.from);
  pr.recent_active = true;
  pr.probe_sent = false;
  if (pr.state == Progress::State::kReplicate &&
      pr.inflight.size() >= config_.max_inflight_appends) {
    pr.inflight.pop_front();  // an append was probably lost: let one more through
  }
  if (pr.match < last_index()) SendAppend(m.from, /*send_if_empty=*/true);
}

bool RaftNode::MaybeCommit() {
  LogIndex n = config_.configuration.QuorumIndex(
      [&](NodeId id) { return id == this->id() ? last_index() : ProgressOf(id).match; });
  // Raft §5.4.2: only an entry of the current term is committed by counting replicas.
  if (n > commit_ && TermAt(n) == term_) {
    commit_ = n;
    return true;
  }
  return false;
}

// ---- outputs ----

void RaftNode::Send(Message m) {
  m.from = id();
  if (m.term == Term(0)) m.term = term_;
  outbox_.push_back(std::move(m));
}

bool RaftNode::SendAppend(NodeId to, bool send_if_empty) {
  Progress& pr = ProgressOf(to);
  if (pr.IsPaused(config_.max_inflight_appends)) return false;
  LogIndex prev = pr.next - 1;
  std::optional<Term> prev_term = TermAt(prev);
  if (!prev_term) {
    // The follower needs entries we compacted: send the snapshot instead.
    RILL_ASSERT(snapshot_.has_value(), "log compacted without a snapshot");
    Message m;
    m.type = MessageType::kInstallSnapshot;
    m.to = to;
    m.snapshot = snapshot_;
    pr.BecomeSnapshot(snapshot_->metadata.index);
    Send(std::move(m));
    return true;
  }
  Message m;
  m.type = MessageType::kAppend;
  m.to = to;
  m.log_index = prev;
  m.log_term = *prev_term;
  m.commit = commit_;
  for (LogIndex i = pr.next; i <= last_index() && m.entries.size() < config_.max_entries_per_append;
       ++i) {
    m.entries.push_back(*EntryAt(i));
  }
  if (m.entries.empty() && !send_if_empty) return false;
  if (!m.entries.empty() && pr.state == Progress::State::kReplicate) {
    LogIndex last_sent = m.entries.back().index;
    pr.next = last_sent + 1;
    pr.inflight.push_back(last_sent);
  }
  if (pr.state == Progress::State::kProbe) pr.probe_sent = true;
  Send(std::move(m));
  return true;
}

void RaftNode::BroadcastAppend() {
  // Voters and learners alike (progress_ holds both).
  for (const auto& p : progress_) {
    if (p->id != id()) SendAppend(p->id, /*send_if_empty=*/true);
  }
}

void RaftNode::BroadcastHeartbeat() {
  for (const auto& p : progress_) {  // voters and learners alike
    NodeId peer = p->id;
    if (peer == id()) continue;
    Message m;
    m.type = MessageType::kHeartbeat;
    m.to = peer;
    // Never tell a follower to commit beyond what it is known to hold; its log past `match`
    // may still diverge from ours.
    m.commit = std::min(p->match, commit_);
    Send(std::move(m));
  }
}

void RaftNode::SendTimeoutNow(NodeId to) {
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.to = to;
  Send(std::move(m));
}

bool RaftNode::HasReady() const {
  if (!outbox_.empty() || pending_snapshot_ || stabled_ < last_index()) return true;
  if (HardState{term_, vote_, commit_} != last_ready_hard_state_) return true;
  return commit_ > applied_;
}

Ready RaftNode::GetReady() {
  RILL_ASSERT(!ready_in_flight_, "GetReady twice without Advance");
  Ready rd;
  HardState hs{term_, vote_, commit_};
  if (hs != last_ready_hard_state_) {
    rd.hard_state = hs;
    rd.must_sync = hs.term != last_ready_hard_state_.term || hs.vote != last_ready_hard_state_.vote;
  }
  if (pending_snapshot_) {
    rd.snapshot = std::move(pending_snapshot_);
    pending_snapshot_.reset();
    rd.must_sync = true;
  }
  for (LogIndex i = stabled_ + 1; i <= last_index(); ++i) rd.entries.push_back(*EntryAt(i));
  if (!rd.entries.empty()) rd.must_sync = true;
  LogIndex apply_from = std::max(applied_, snapshot_index_) + 1;
  for (LogIndex i = apply_from;
       i <= commit_ && rd.committed_entries.size() < config_.max_committed_entries_per_ready; ++i) {
    rd.committed_entries.push_back(*EntryAt(i));
  }
  rd.messages = std::move(outbox_);
  outbox_.clear();

  ready_in_flight_ = true;
  ready_stabled_ = last_index();
  ready_applied_ = rd.committed_entries.empty() ? std::max(applied_, snapshot_index_)
                                                : rd.committed_entries.back().index;
  last_ready_hard_state_ = hs;
  return rd;
}

void RaftNode::Advance() {
  RILL_ASSERT(ready_in_flight_, "Advance without GetReady");
  ready_in_flight_ = false;
  stabled_ = ready_stabled_;
  applied_ = ready_applied_;
}

}  // namespace rill::raft
