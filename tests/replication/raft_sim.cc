#include "raft_sim.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "rill/replication/disk_raft_storage.h"
#include "rill/replication/raft.h"
#include "rill/replication/raft_storage.h"
#include "rill/storage/faulty_file_system.h"

namespace rill::raft::sim {
namespace {

uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
  h *= 0xBF58476D1CE4E5B9ull;
  return h ^ (h >> 31);
}

uint64_t HashBytes(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

uint64_t EntryHash(const Entry& e) {
  return Mix(Mix(HashBytes(e.data), static_cast<uint64_t>(e.type)), e.term.value());
}

// The replicated state machine: a hash chain over every applied entry. Two nodes that applied
// the same sequence have the same (applied, hash).
struct StateMachine {
  LogIndex applied;
  uint64_t hash = 0x5EEDull;

  std::string Encode() const {
    std::string s(16, '\0');
    uint64_t a = applied.value();
    std::memcpy(s.data(), &a, 8);
    std::memcpy(s.data() + 8, &hash, 8);
    return s;
  }
  static StateMachine Decode(std::string_view s) {
    StateMachine m;
    uint64_t a = 0;
    if (s.size() == 16) {
      std::memcpy(&a, s.data(), 8);
      std::memcpy(&m.hash, s.data() + 8, 8);
    }
    m.applied = LogIndex(a);
    return m;
  }
};

struct CommittedEntry {
  Term term;
  uint64_t hash;       // EntryHash
  Term observed_term;  // smallest term of a node seen holding it committed
  std::string data;
};

struct InFlight {
  uint64_t deliver_at;
  uint64_t seq;  // tie-break, for determinism
  Message m;
};

struct Slot {
  NodeId id;
  std::unique_ptr<RaftNode> node;  // null while crashed
  MemoryRaftStorage memory;
  // --disk: DiskRaftStorage on a FaultyFileSystem of its own (crashes drop unsynced bytes or
  // tear the last write).
  std::unique_ptr<storage::FaultyFileSystem> fs;
  std::unique_ptr<DiskRaftStorage> disk;
  RaftLogStorage& storage() { return disk ? static_cast<RaftLogStorage&>(*disk) : memory; }
  StateMachine sm;
  LogIndex checked_commit;
  uint64_t restart_at = 0;
  // A voter's learners when they are added at run time (RaftNode::AddLearner), as the
  // controller adds registered brokers; a restart re-adds them, as the controller does from its
  // replicated state. Unused when the voters start knowing every learner.
  std::vector<NodeId> added_learners;
};

// Per-seed fault intensities: every seed explores a different mix.
struct Faults {
  double loss = 0;
  double duplicate = 0;
  int max_delay = 1;
  double long_delay = 0;      // chance of a delay up to 4 election timeouts (reordering)
  double crash = 0;           // per tick, of one node
  double crash_in_ready = 0;  // per Ready: crash between writing and syncing / sending
  double partition = 0;       // per tick, of a new partition
  double heal = 0;            // per tick
  double skip_tick = 0;       // clock skew: a node misses a tick
  double propose = 0;
  double transfer = 0;
  double compact = 0;
  bool late_learners = false;  // voters start without learners and add them with AddLearner
  double add_learner = 0;      // per tick, when late_learners
};

class Simulation {
 public:
  explicit Simulation(const SimOptions& o) : opt_(o), rng_(o.seed * 0x2545F4914F6CDD1Dull + 7) {
    Configuration conf;
    for (int i = 1; i <= opt_.nodes; ++i) conf.voters.push_back(NodeId(i));
    for (int i = opt_.nodes + 1; i <= members(); ++i) conf.learners.push_back(NodeId(i));
    conf_ = conf;
    for (int i = 1; i <= members(); ++i) {
      slots_.push_back(std::make_unique<Slot>());
      slots_.back()->id = NodeId(i);
    }
    blocked_.assign(members() + 1, std::vector<bool>(members() + 1, false));
    f_.loss = Pick(0.0, 0.25);
    f_.duplicate = Pick(0.0, 0.1);
    f_.max_delay = 1 + static_cast<int>(rng_.Uniform(4));
    f_.long_delay = Pick(0.0, 0.05);
    f_.crash = Pick(0.0, 0.02);
    f_.crash_in_ready = Pick(0.0, 0.01);
    f_.partition = Pick(0.0, 0.03);
    f_.heal = Pick(0.01, 0.1);
    f_.skip_tick = Pick(0.0, 0.1);
    f_.propose = Pick(0.1, 0.6);
    f_.transfer = Pick(0.0, 0.01);
    f_.compact = Pick(0.0, 0.05);
    if (opt_.learners > 0) {  // drawn only with learners, so seeds without them replay as before
      f_.late_learners = rng_.Chance(0.5);
      f_.add_learner = Pick(0.005, 0.05);
    }
  }

  int members() const { return opt_.nodes + opt_.learners; }

  SimResult Run() {
    for (auto& s : slots_) Start(*s);
    for (now_ = 1; now_ <= static_cast<uint64_t>(opt_.steps) && result_.ok; ++now_) {
      SafetyStep();
    }
    if (result_.ok) Liveness();
    return result_;
  }

 private:
  double Pick(double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(rng_.Uniform(1000)) / 1000.0;
  }

  void Trace(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (!opt_.trace) return;
    std::fprintf(stderr, "[t=%lu] ", (unsigned long)now_);
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fputc('\n', stderr);
  }

  void Fail(const std::string& what) {
    if (!result_.ok) return;
    result_.ok = false;
    std::ostringstream os;
    os << "tick " << now_ << ": " << what;
    result_.failure = os.str();
  }

  Slot& SlotOf(NodeId id) { return *slots_[id.value() - 1]; }

  // ---- node lifecycle ----

  void Start(Slot& s) {
    RaftConfig c;
    c.id = s.id;
    c.configuration = conf_;
    if (f_.late_learners && conf_.IsVoter(s.id)) c.configuration.learners = s.added_learners;
    c.election_tick = kElectionTick;
    c.heartbeat_tick = 1;
    c.random_seed = rng_.Next();
    c.max_entries_per_append = 1 + rng_.Uniform(8);
    c.max_inflight_appends = 1 + rng_.Uniform(8);
    c.max_uncommitted_entries = 64;
    if (opt_.disk && !s.disk) {
      if (!s.fs) s.fs = std::make_unique<storage::FaultyFileSystem>(rng_.Next());
      auto opened = DiskRaftStorage::Open(s.fs.get(), "/raft");
      if (!opened.ok()) return Fail("DiskRaftStorage::Open failed: " + opened.status().ToString());
      s.disk = std::move(opened).value();
    }
    auto loaded = s.storage().Load();
    if (!loaded.ok()) return Fail("storage load failed: " + loaded.status().ToString());
    auto node = RaftNode::Create(c, std::move(loaded).value());
    if (!node.ok()) return Fail("restart of node failed: " + node.status().ToString());
    s.node = std::move(node).value();
    // The state machine restarts from the snapshot; committed entries are applied again.
    s.sm = s.node->snapshot() ? StateMachine::Decode(s.node->snapshot()->data) : StateMachine{};
    s.checked_commit = s.node->snapshot_index();
    Trace("start node %d term=%lu last=%lu commit=%lu snap=%lu", s.id.value(),
          (unsigned long)s.node->term().value(), (unsigned long)s.node->last_index().value(),
          (unsigned long)s.node->commit_index().value(),
          (unsigned long)s.node->snapshot_index().value());
    CheckNode(s);
  }

  void Crash(Slot& s, size_t keep_unsynced) {
    ++result_.crashes;
    Trace("crash node %d (keeps %zu of %zu unsynced writes)", s.id.value(), keep_unsynced,
          s.memory.unsynced_writes());
    s.node.reset();
    if (s.disk) {
      s.disk.reset();
      s.fs->Crash(keep_unsynced > 0 ? storage::FaultyFileSystem::CrashMode::kTornLastWrite
                                    : storage::FaultyFileSystem::CrashMode::kDropUnsynced);
    } else {
      s.memory.Crash(keep_unsynced);
    }
    s.restart_at = now_ + 1 + rng_.Uniform(4 * kElectionTick);
  }

  // The driver: the Ready contract, with crashes at its most dangerous points.
  void HandleReady(Slot& s, bool faults) {
    while (result_.ok && s.node && s.node->HasReady()) {
      Ready rd = s.node->GetReady();
      CheckLogMatching(s, rd);
      RaftLogStorage& store = s.storage();
      Status st;
      if (rd.snapshot) st = store.SaveSnapshot(*rd.snapshot);
      if (st.ok() && !rd.entries.empty()) st = store.Append(rd.entries);
      if (st.ok() && rd.hard_state) st = store.SaveHardState(*rd.hard_state);
      if (!st.ok()) return Fail("storage write failed: " + st.ToString());
      if (faults && rng_.Chance(f_.crash_in_ready)) {
        // Power cut before the fsync: some prefix of the unsynced writes may reach the disk.
        return Crash(s, rng_.Uniform(s.memory.unsynced_writes() + 2));
      }
      if (rd.must_sync && !(st = store.Sync()).ok()) return Fail("sync failed: " + st.ToString());
      if (faults && rng_.Chance(f_.crash_in_ready)) return Crash(s, 0);  // synced, nothing sent
      for (Message& m : rd.messages) SendMessage(std::move(m), faults);
      if (rd.snapshot) InstallSnapshot(s, *rd.snapshot);
      for (const Entry& e : rd.committed_entries) Apply(s, e);
      s.node->Advance();
    }
  }

  void SendMessage(Message m, bool faults) {
    ++result_.messages;
    if (m.type == MessageType::kInstallSnapshot) ++result_.snapshots_sent;
    if (blocked_[m.from.value()][m.to.value()]) return;
    if (faults && rng_.Chance(f_.loss)) return;
    int copies = (faults && rng_.Chance(f_.duplicate)) ? 2 : 1;
    for (int i = 0; i < copies; ++i) {
      uint64_t delay = 1 + rng_.Uniform(faults ? f_.max_delay : 2);
      if (faults && rng_.Chance(f_.long_delay)) delay = 1 + rng_.Uniform(4 * kElectionTick);
      network_.push_back(InFlight{now_ + delay, seq_++, m});
    }
  }

  void DeliverDue(bool faults) {
    std::vector<InFlight> due;
    size_t keep = 0;
    for (size_t i = 0; i < network_.size(); ++i) {
      if (network_[i].deliver_at <= now_) {
        due.push_back(std::move(network_[i]));
      } else {
        if (keep != i) network_[keep] = std::move(network_[i]);
        ++keep;
      }
    }
    network_.resize(keep);
    // Random order among the messages due now (reordering within a tick).
    for (size_t i = due.size(); i > 1; --i) std::swap(due[i - 1], due[rng_.Uniform(i)]);
    for (InFlight& f : due) {
      if (!result_.ok) return;
      Slot& to = SlotOf(f.m.to);
      if (!to.node || blocked_[f.m.from.value()][f.m.to.value()]) continue;
      if (opt_.trace) Trace("deliver %s", f.m.ToString().c_str());
      if (!to.node->configuration().IsMember(f.m.from)) {
        // A learner answering a leader that has since restarted is not possible (a restart
        // re-adds its learners), so this is a stray from a learner not yet added here: the
        // transport drops it.
        if (f_.late_learners && conf_.IsLearner(f.m.from)) continue;
      }
      Status st = to.node->Step(f.m);
      if (!st.ok()) return Fail("Step refused a message: " + st.ToString());
      HandleReady(to, faults);
      CheckNode(to);
    }
  }

  // ---- the application ----

  void Apply(Slot& s, const Entry& e) {
    if (e.index != s.sm.applied + 1) {
      return Fail(Describe(s) + " applied index " + Str(e.index) + " after " + Str(s.sm.applied) +
                  " (gap or repeat)");
    }
    RecordCommitted(s, e);
    s.sm.applied = e.index;
    s.sm.hash = Mix(s.sm.hash, EntryHash(e));
    size_t i = e.index.value();
    if (hash_at_.size() <= i) hash_at_.resize(i + 1, std::nullopt);
    if (!hash_at_[i]) {
      hash_at_[i] = s.sm.hash;
    } else if (*hash_at_[i] != s.sm.hash) {
      return Fail("state machine safety: " + Describe(s) +
                  " reached a different state after applying index " + Str(e.index));
    }
  }

  void InstallSnapshot(Slot& s, const Snapshot& snap) {
    StateMachine m = StateMachine::Decode(snap.data);
    if (m.applied != snap.metadata.index) {
      return Fail(Describe(s) + " got a snapshot whose data is at " + Str(m.applied) +
                  " but whose metadata says " + Str(snap.metadata.index));
    }
    size_t i = m.applied.value();
    if (i < hash_at_.size() && hash_at_[i] && *hash_at_[i] != m.hash) {
      return Fail("state machine safety: snapshot at " + Str(snap.metadata.index) +
                  " installed on " + Describe(s) + " differs from the applied state");
    }
    Trace("node %d installs snapshot at %lu", s.id.value(), (unsigned long)i);
    s.sm = m;
  }

  void MaybeCompact(Slot& s) {
    RaftNode& n = *s.node;
    if (n.applied_index() < n.snapshot_index() + 4) return;
    LogIndex at = n.applied_index();
    if (s.sm.applied != at) return Fail(Describe(s) + " state machine is behind applied index");
    Status st = n.CompactLog(at, s.sm.Encode());
    if (!st.ok()) return Fail("CompactLog failed: " + st.ToString());
    st = s.storage().SaveSnapshot(*n.snapshot());
    if (st.ok()) st = s.storage().Sync();
    if (!st.ok()) return Fail("saving a snapshot failed: " + st.ToString());
    Trace("node %d compacts to %lu", s.id.value(), (unsigned long)at.value());
  }

  // ---- checkers ----

  static std::string Str(LogIndex i) { return std::to_string(i.value()); }
  static std::string Str(Term t) { return std::to_string(t.value()); }
  std::string Describe(const Slot& s) const {
    std::ostringstream os;
    os << "node " << s.id;
    if (s.node) {
      os << " (" << RoleName(s.node->role()) << ", term " << s.node->term() << ", log ["
         << s.node->first_index() << ".." << s.node->last_index() << "], commit "
         << s.node->commit_index() << ")";
    }
    return os.str();
  }

  // A committed entry is never changed: every node that commits or applies index i sees the
  // same entry there.
  void RecordCommitted(Slot& s, const Entry& e) {
    size_t i = e.index.value();
    if (committed_.size() <= i) committed_.resize(i + 1);
    uint64_t h = EntryHash(e);
    Term t = s.node->term();
    if (!committed_[i]) {
      committed_[i] = CommittedEntry{e.term, h, t, e.data};
      ++result_.committed;
      max_committed_ = std::max(max_committed_, e.index);
    } else if (committed_[i]->hash != h) {
      Fail("committed entry changed: index " + Str(e.index) + " was committed with term " +
           Str(committed_[i]->term) + " data '" + committed_[i]->data + "', but " + Describe(s) +
           " has term " + Str(e.term) + " data '" + e.data + "' there");
    } else if (t < committed_[i]->observed_term) {
      committed_[i]->observed_term = t;
    }
  }

  void CheckNode(Slot& s) {
    if (!s.node || !result_.ok) return;
    RaftNode& n = *s.node;
    // Commit progress: each newly committed entry must agree with what is known committed.
    for (LogIndex i = std::max(s.checked_commit, n.snapshot_index()) + 1; i <= n.commit_index();
         ++i) {
      const Entry* e = n.EntryAt(i);
      if (!e) return Fail(Describe(s) + " committed index " + Str(i) + " it does not hold");
      RecordCommitted(s, *e);
    }
    s.checked_commit = std::max(s.checked_commit, n.commit_index());
    // Learners never campaign, never vote and never lead.
    if (conf_.IsLearner(n.id())) {
      if (n.role() != Role::kFollower) {
        return Fail("learner safety: " + Describe(s) + " left the follower role");
      }
      if (n.vote() != kNoNode) {
        return Fail("learner safety: " + Describe(s) + " voted for node " +
                    std::to_string(n.vote().value()));
      }
    }
    // Election safety: at most one leader per term.
    if (n.role() == Role::kLeader) {
      auto [it, inserted] = leaders_.emplace(n.term().value(), n.id());
      if (inserted) {
        ++result_.elections;
        Trace("node %d leads term %lu", n.id().value(), (unsigned long)n.term().value());
        CheckLeaderCompleteness(s);
      } else if (it->second != n.id()) {
        Fail("election safety: nodes " + std::to_string(it->second.value()) + " and " +
             std::to_string(n.id().value()) + " both lead term " + Str(n.term()));
      }
    }
  }

  // Leader completeness: a new leader of term T holds every entry committed in a term < T.
  void CheckLeaderCompleteness(Slot& s) {
    RaftNode& n = *s.node;
    for (size_t i = n.snapshot_index().value() + 1; i < committed_.size(); ++i) {
      if (!committed_[i] || committed_[i]->observed_term >= n.term()) continue;
      const Entry* e = n.EntryAt(LogIndex(i));
      if (!e || EntryHash(*e) != committed_[i]->hash) {
        return Fail("leader completeness: " + Describe(s) + " lacks entry " + std::to_string(i) +
                    " (term " + Str(committed_[i]->term) + ", data '" + committed_[i]->data +
                    "') committed in term " + Str(committed_[i]->observed_term));
      }
    }
  }

  // Log matching: two entries with the same index and term hold the same data and follow
  // entries of the same term. Checked on every entry a node is about to persist.
  void CheckLogMatching(Slot& s, const Ready& rd) {
    for (const Entry& e : rd.entries) {
      std::optional<Term> prev = s.node->TermAt(e.index - 1);
      auto key = std::make_pair(e.index.value(), e.term.value());
      uint64_t h = EntryHash(e);
      auto [it, inserted] = log_.emplace(key, std::make_pair(h, prev));
      if (inserted) continue;
      if (it->second.first != h) {
        return Fail("log matching: " + Describe(s) + " holds a different entry at index " +
                    Str(e.index) + " term " + Str(e.term) + " than another node");
      }
      if (prev && it->second.second && *prev != *it->second.second) {
        return Fail("log matching: " + Describe(s) + " entry " + Str(e.index) + "/" + Str(e.term) +
                    " follows term " + Str(*prev) + " elsewhere " + Str(*it->second.second));
      }
      if (!it->second.second) it->second.second = prev;
    }
  }

  // Durability: every committed entry is on the synced storage of a quorum of voters (or covered
  // by a synced snapshot there), so no combination of crashes can lose it. Learners' copies do
  // not count: the leader does not wait for them.
  void CheckDurability() {
    if (opt_.disk) return;  // the disk's synced state is checked by the crashes themselves
    for (size_t i = durable_checked_from_; i < committed_.size(); ++i) {
      if (!committed_[i]) continue;
      size_t holders = 0;
      for (auto& s : slots_) {
        if (!conf_.IsVoter(s->id)) continue;
        const RaftInitialState& d = s->memory.durable();
        LogIndex snap = d.snapshot ? d.snapshot->metadata.index : LogIndex(0);
        if (LogIndex(i) <= snap) {
          ++holders;
          continue;
        }
        size_t off = i - snap.value() - 1;
        if (off < d.entries.size() && EntryHash(d.entries[off]) == committed_[i]->hash) ++holders;
      }
      if (holders < conf_.QuorumSize()) {
        return Fail("durability: committed entry " + std::to_string(i) + " is on the synced " +
                    "storage of only " + std::to_string(holders) + " nodes");
      }
    }
  }

  // ---- phases ----

  void RandomPartition() {
    int n = members();
    for (auto& row : blocked_) std::fill(row.begin(), row.end(), false);
    switch (rng_.Uniform(3)) {
      case 0: {  // isolate one node, both directions
        int x = 1 + static_cast<int>(rng_.Uniform(n));
        for (int i = 1; i <= n; ++i) blocked_[x][i] = blocked_[i][x] = (i != x);
        Trace("partition: isolate %d", x);
        break;
      }
      case 1: {  // split into two random groups
        std::vector<int> side(n + 1);
        for (int i = 1; i <= n; ++i) side[i] = static_cast<int>(rng_.Uniform(2));
        for (int i = 1; i <= n; ++i)
          for (int j = 1; j <= n; ++j) blocked_[i][j] = side[i] != side[j];
        Trace("partition: split");
        break;
      }
      default: {  // asymmetric: random one-way links cut
        for (int i = 1; i <= n; ++i)
          for (int j = 1; j <= n; ++j) blocked_[i][j] = i != j && rng_.Chance(0.3);
        Trace("partition: asymmetric");
        break;
      }
    }
  }

  // The application on voter `s` learns of learner `l` (a broker registered).
  void AddLearner(Slot& s, NodeId l) {
    if (!s.node || !result_.ok) return;
    Status st = s.node->AddLearner(l);
    if (!st.ok())
      return Fail("AddLearner(" + std::to_string(l.value()) + ") failed on " + Describe(s) + ": " +
                  st.ToString());
    if (!s.node->configuration().IsLearner(l)) return Fail("AddLearner did not add a learner");
    if (std::find(s.added_learners.begin(), s.added_learners.end(), l) == s.added_learners.end()) {
      s.added_learners.push_back(l);
      std::sort(s.added_learners.begin(), s.added_learners.end());
      Trace("node %d adds learner %d", s.id.value(), l.value());
    }
    HandleReady(s, /*faults=*/!in_liveness_);
    CheckNode(s);
  }

  void Heal() {
    for (auto& row : blocked_) std::fill(row.begin(), row.end(), false);
  }

  void TickAll(bool faults) {
    std::vector<size_t> order(slots_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng_.Uniform(i)]);
    for (size_t i : order) {
      Slot& s = *slots_[i];
      if (!s.node || (faults && rng_.Chance(f_.skip_tick))) continue;
      s.node->Tick();
      HandleReady(s, faults);
      CheckNode(s);
    }
  }

  void SafetyStep() {
    if (rng_.Chance(f_.partition)) RandomPartition();
    if (rng_.Chance(f_.heal)) Heal();
    for (auto& s : slots_) {
      if (!s->node && s->restart_at <= now_) Start(*s);
    }
    if (rng_.Chance(f_.crash)) {
      Slot& s = *slots_[rng_.Uniform(slots_.size())];
      if (s.node) Crash(s, rng_.Uniform(s.memory.unsynced_writes() + 2));
    }
    TickAll(/*faults=*/true);
    if (rng_.Chance(f_.propose)) {
      Slot& s = *slots_[rng_.Uniform(slots_.size())];
      if (s.node) {
        auto r = s.node->Propose("p" + std::to_string(proposal_seq_++));
        if (r.ok() && s.node->role() != Role::kLeader) Fail("a non-leader accepted a proposal");
        HandleReady(s, true);
        CheckNode(s);
      }
    }
    if (rng_.Chance(f_.transfer)) {
      Slot& s = *slots_[rng_.Uniform(slots_.size())];
      if (s.node && s.node->role() == Role::kLeader) {
        // Any member: a learner target must be refused (TransferLeadership says so).
        NodeId target(1 + static_cast<int>(rng_.Uniform(members())));
        Trace("transfer leadership %d -> %d", s.id.value(), target.value());
        Status st = s.node->TransferLeadership(target);
        if (st.ok() && conf_.IsLearner(target)) {
          return Fail("leadership transfer to learner " + std::to_string(target.value()) +
                      " was accepted");
        }
        HandleReady(s, true);
      }
    }
    if (rng_.Chance(f_.compact)) {
      Slot& s = *slots_[rng_.Uniform(slots_.size())];
      if (s.node) MaybeCompact(s);
    }
    if (f_.late_learners && rng_.Chance(f_.add_learner)) {
      AddLearner(*slots_[rng_.Uniform(opt_.nodes)],
                 NodeId(opt_.nodes + 1 + static_cast<int>(rng_.Uniform(opt_.learners))));
    }
    DeliverDue(/*faults=*/true);
    if (now_ % 8 == 0) CheckDurability();
  }

  void Liveness() {
    in_liveness_ = true;
    Heal();
    // In-flight messages stay in flight (some are very late); nothing is lost from here on.
    for (auto& s : slots_) {
      if (!s->node) Start(*s);
    }
    if (f_.late_learners) {  // every voter learns of every learner now
      for (int v = 0; v < opt_.nodes; ++v) {
        for (NodeId l : conf_.learners) AddLearner(*slots_[v], l);
      }
    }
    uint64_t deadline = now_ + opt_.liveness_ticks;
    std::optional<LogIndex> marker;  // index of a committed liveness proposal
    Term proposed_in;
    for (; now_ <= deadline && result_.ok; ++now_) {
      TickAll(/*faults=*/false);
      for (auto& s : slots_) {
        RaftNode& n = *s->node;
        if (n.role() == Role::kLeader && n.term() != proposed_in) {
          auto r = n.Propose("live" + std::to_string(now_));
          if (r.ok()) {
            proposed_in = n.term();
            Trace("liveness proposal at %lu by %d", (unsigned long)r->value(), s->id.value());
          }
          HandleReady(*s, false);
          CheckNode(*s);
        }
      }
      DeliverDue(/*faults=*/false);
      if (now_ % 8 == 0) CheckDurability();
      if (!marker) {
        for (size_t i = 1; i < committed_.size(); ++i) {
          if (committed_[i] && committed_[i]->data.rfind("live", 0) == 0) {
            marker = LogIndex(i);
            break;
          }
        }
      }
      if (marker) {
        bool all = true;
        for (auto& s : slots_) all = all && s->sm.applied >= *marker;
        if (all) {
          CheckDurability();
          return;
        }
      }
    }
    if (result_.ok) {
      std::ostringstream os;
      os << "liveness: after healing, no new proposal was committed and applied on every node "
         << "within " << opt_.liveness_ticks << " ticks;";
      for (auto& s : slots_) os << " " << Describe(*s) << " applied " << s->sm.applied << ";";
      Fail(os.str());
    }
  }

  static constexpr int kElectionTick = 10;

  SimOptions opt_;
  DeterministicRng rng_;
  Faults f_;
  Configuration conf_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<std::vector<bool>> blocked_;  // blocked_[from][to]
  std::vector<InFlight> network_;
  uint64_t now_ = 0;
  uint64_t seq_ = 0;
  uint64_t proposal_seq_ = 0;
  bool in_liveness_ = false;
  SimResult result_;

  std::map<uint64_t, NodeId> leaders_;                    // term -> leader
  std::vector<std::optional<CommittedEntry>> committed_;  // by index
  LogIndex max_committed_;
  std::vector<std::optional<uint64_t>> hash_at_;  // state after applying index i
  struct PairHash {
    size_t operator()(const std::pair<uint64_t, uint64_t>& p) const {
      return std::hash<uint64_t>()(p.first * 1000003 ^ p.second);
    }
  };
  // (index, term) -> (entry hash, term of the previous entry)
  std::unordered_map<std::pair<uint64_t, uint64_t>, std::pair<uint64_t, std::optional<Term>>,
                     PairHash>
      log_;
  size_t durable_checked_from_ = 1;
};

}  // namespace

SimResult RunSimulation(const SimOptions& options) { return Simulation(options).Run(); }

std::string ReplayCommand(const SimOptions& o) {
  std::ostringstream os;
  os << "rill_raft_sim --seed " << o.seed << " --nodes " << o.nodes;
  if (o.learners > 0) os << " --learners " << o.learners;
  os << " --steps " << o.steps << (o.disk ? " --disk" : "");
  return os.str();
}

}  // namespace rill::raft::sim
