#pragma once

// Helpers for the Raft unit tests: build a node, read what it wants to send, and a small
// in-process network (etcd-raft's `network`) with cut / isolate and synchronous delivery.

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "rill/replication/raft.h"
#include "rill/replication/raft_storage.h"

namespace rill::raft::testing {

inline Configuration Voters(int n) {
  Configuration c;
  for (int i = 1; i <= n; ++i) c.voters.push_back(NodeId(i));
  return c;
}

// Voters 1..voters and learners voters+1..voters+learners.
inline Configuration VotersAndLearners(int voters, int learners) {
  Configuration c = Voters(voters);
  for (int i = voters + 1; i <= voters + learners; ++i) c.learners.push_back(NodeId(i));
  return c;
}

// Classic Raft (no pre-vote, no check-quorum) unless a test turns them on.
inline RaftConfig TestConfig(int id, int n, int learners = 0) {
  RaftConfig c;
  c.id = NodeId(id);
  c.configuration = VotersAndLearners(n, learners);
  c.election_tick = 10;
  c.heartbeat_tick = 1;
  c.pre_vote = false;
  c.check_quorum = false;
  c.random_seed = 42;
  return c;
}

inline std::unique_ptr<RaftNode> NewNode(const RaftConfig& c, RaftInitialState init = {}) {
  auto r = RaftNode::Create(c, std::move(init));
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

// A log of entries with the given terms at indexes 1, 2, ...
inline std::vector<Entry> EntriesWithTerms(const std::vector<uint64_t>& terms) {
  std::vector<Entry> v;
  uint64_t i = 1;
  for (uint64_t t : terms) v.push_back(Entry{Term(t), LogIndex(i++), EntryType::kNormal, ""});
  return v;
}

// Hands out the node's Ready (as a driver would after persisting it) and returns it.
inline Ready Drain(RaftNode& n) {
  Ready rd;
  if (!n.HasReady()) return rd;
  rd = n.GetReady();
  n.Advance();
  return rd;
}

inline std::vector<Message> ReadMessages(RaftNode& n) { return Drain(n).messages; }

inline Message Msg(MessageType type, int from, int to, uint64_t term) {
  Message m;
  m.type = type;
  m.from = NodeId(from);
  m.to = NodeId(to);
  m.term = Term(term);
  return m;
}

// Makes `n` leader by feeding it the vote grants of every peer; drains its output.
inline void MakeLeader(RaftNode& n) {
  n.Campaign();
  if (n.role() == Role::kPreCandidate) {
    Term t = n.term() + 1;
    for (NodeId peer : n.configuration().voters) {
      if (peer == n.id() || n.role() != Role::kPreCandidate) continue;
      EXPECT_TRUE(
          n.Step(Msg(MessageType::kPreVoteResponse, peer.value(), n.id().value(), t.value())).ok());
    }
  }
  for (NodeId peer : n.configuration().voters) {
    if (peer == n.id() || n.role() != Role::kCandidate) continue;
    EXPECT_TRUE(
        n.Step(Msg(MessageType::kVoteResponse, peer.value(), n.id().value(), n.term().value()))
            .ok());
  }
  EXPECT_EQ(n.role(), Role::kLeader);
  Drain(n);
}

// Nodes 1..n connected by a network that delivers synchronously, in FIFO order, except across
// cut links. Each node has a MemoryRaftStorage and records the entries it applied. With
// `learners`, nodes n+1..n+learners are learners (non-voting members).
class Network {
 public:
  explicit Network(int n, std::function<void(RaftConfig&)> tweak = {}) : Network(n, 0, tweak) {}
  Network(int n, int learners, std::function<void(RaftConfig&)> tweak = {})
      : n_(n), learners_(learners), tweak_(tweak) {
    for (int i = 1; i <= n + learners; ++i) {
      nodes_[i] = std::make_unique<Member>();
      Start(i);
    }
  }

  RaftNode& operator[](int id) { return *nodes_.at(id)->node; }
  MemoryRaftStorage& storage(int id) { return nodes_.at(id)->storage; }
  const std::vector<Entry>& applied(int id) { return nodes_.at(id)->applied; }
  std::vector<std::string> AppliedData(int id) {
    std::vector<std::string> v;
    for (const Entry& e : applied(id)) {
      if (e.type == EntryType::kNormal) v.push_back(e.data);
    }
    return v;
  }
  const std::vector<Message>& delivered() const { return delivered_; }

  // Persists every Ready, queues its messages, records applied entries.
  void Process() {
    for (auto& [id, m] : nodes_) {
      while (m->node && m->node->HasReady()) {
        Ready rd = m->node->GetReady();
        EXPECT_TRUE(PersistReady(m->storage, rd).ok());
        for (Message& msg : rd.messages) queue_.push_back(std::move(msg));
        if (rd.snapshot) {
          m->applied.clear();
          m->snapshot_index = rd.snapshot->metadata.index;
        }
        for (const Entry& e : rd.committed_entries) m->applied.push_back(e);
        m->node->Advance();
      }
    }
  }

  // Delivers messages until the network is quiet.
  void Settle() {
    Process();
    for (int guard = 0; !queue_.empty() && guard < 100000; ++guard) {
      Message m = std::move(queue_.front());
      queue_.pop_front();
      if (Blocked(m)) continue;
      auto& to = nodes_.at(m.to.value());
      if (!to->node) continue;
      delivered_.push_back(m);
      EXPECT_TRUE(to->node->Step(m).ok());
      Process();
    }
  }

  void Tick(int id, int times = 1) {
    for (int i = 0; i < times; ++i) {
      if (nodes_.at(id)->node) nodes_.at(id)->node->Tick();
      Settle();
    }
  }
  void TickAll(int times = 1) {
    for (int i = 0; i < times; ++i) {
      for (auto& [id, m] : nodes_) {
        if (m->node) m->node->Tick();
      }
      Settle();
    }
  }
  // Ticks until `id` is leader (or `max` ticks pass).
  void ElectByTimeout(int id, int max = 100) {
    for (int i = 0; i < max && (*this)[id].role() != Role::kLeader; ++i) Tick(id);
  }
  void Campaign(int id) {
    (*this)[id].Campaign();
    Settle();
  }
  Result<LogIndex> Propose(int id, std::string data) {
    auto r = (*this)[id].Propose(std::move(data));
    Settle();
    return r;
  }

  void Cut(int a, int b) {
    cut_.insert({a, b});
    cut_.insert({b, a});
  }
  void CutOneWay(int from, int to) { cut_.insert({from, to}); }
  void Isolate(int id) {
    for (int i = 1; i <= n_ + learners_; ++i) {
      if (i != id) Cut(id, i);
    }
  }
  void Heal() { cut_.clear(); }
  void DropType(MessageType t) { dropped_types_.insert(t); }
  void ClearDrops() { dropped_types_.clear(); }

  // Power cut and restart from what was synced.
  void Restart(int id) {
    nodes_.at(id)->storage.Crash();
    Start(id);
  }
  void Stop(int id) {
    nodes_.at(id)->node.reset();
    nodes_.at(id)->storage.Crash();
  }
  void Start(int id) {
    RaftConfig c = TestConfig(id, n_, learners_);
    c.random_seed = 1000 + id;
    if (tweak_) tweak_(c);
    auto loaded = nodes_.at(id)->storage.Load();
    ASSERT_TRUE(loaded.ok());
    nodes_.at(id)->node = NewNode(c, std::move(loaded).value());
    nodes_.at(id)->applied.clear();
  }

  // The id of the node that is leader in the highest term, or 0.
  int Leader() {
    int best = 0;
    for (auto& [id, m] : nodes_) {
      if (m->node && m->node->role() == Role::kLeader &&
          (best == 0 || m->node->term() > (*this)[best].term())) {
        best = id;
      }
    }
    return best;
  }

 private:
  struct Member {
    std::unique_ptr<RaftNode> node;
    MemoryRaftStorage storage;
    std::vector<Entry> applied;
    LogIndex snapshot_index;
  };
  bool Blocked(const Message& m) const {
    return cut_.count({m.from.value(), m.to.value()}) > 0 || dropped_types_.count(m.type) > 0;
  }

  int n_;
  int learners_;
  std::function<void(RaftConfig&)> tweak_;
  std::map<int, std::unique_ptr<Member>> nodes_;
  std::deque<Message> queue_;
  std::set<std::pair<int, int>> cut_;
  std::set<MessageType> dropped_types_;
  std::vector<Message> delivered_;
};

}  // namespace rill::raft::testing
