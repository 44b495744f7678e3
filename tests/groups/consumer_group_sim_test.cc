// A seeded simulation of one consumer group: 3-6 clients join, heartbeat, leave, leave as static
// members and come back, crash, turn into zombies (alive but cut off), lose heartbeat responses
// and release revoked partitions late, while partitions and topics are added and the coordinator
// fails over (rebuilding from the materialised records plus a log suffix).
//
// Checked throughout:
//  - safety: an ownership-interval recorder of what the clients process shows no partition held
//    by two clients at once, and every client holds only what the coordinator thinks it owns;
//  - fencing: commits of live members are accepted, a zombie's commit after its session expired
//    is refused;
//  - durability: after every failover the rebuilt group equals the one it replaces.
// Checked after every burst of changes (liveness): with responses no longer lost, the group is
// Stable and every subscribed partition is held by exactly one live client within a bounded
// number of heartbeat rounds.
//
// RILL_SEED=<n> replays a run; RILL_SIM_RUNS=<n> runs n seeds (default 25).

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <random>

#include "group_test_util.h"
#include "groups/consumer_group.h"
#include "groups/offsets_materializer.h"
#include "test_seed.h"

namespace rill::groups {
namespace {

using testing::AssignmentOf;
using testing::BeatRequest;
using testing::CountingIds;
using testing::JoinRequest;

constexpr int64_t kRoundMs = 1000;
constexpr int32_t kSessionMs = 5000;
constexpr int kMaxReleaseDelay = 2;
// Rounds after which a group must have converged once changes stop: stale members expire within
// a session, then one revoke / release / grant cycle.
constexpr int kConvergenceRounds = kSessionMs / kRoundMs + 2 * kMaxReleaseDelay + 8;

// Intervals during which each client held each partition. Acquire fails the test when another
// client holds the partition.
class OwnershipRecorder {
 public:
  void Acquire(const TopicPartition& tp, int client, int64_t now) {
    auto [it, inserted] = holder_.emplace(tp, Hold{client, now});
    ASSERT_TRUE(inserted || it->second.client == client)
        << tp.topic << "-" << tp.partition << " acquired by client " << client << " at " << now
        << " while client " << it->second.client << " holds it since " << it->second.since;
  }
  void Release(const TopicPartition& tp, int client, int64_t now) {
    auto it = holder_.find(tp);
    ASSERT_TRUE(it != holder_.end() && it->second.client == client)
        << "client " << client << " released " << tp.topic << "-" << tp.partition
        << " it did not hold";
    ++intervals_;
    holder_.erase(it);
  }
  const int* HolderOf(const TopicPartition& tp) const {
    auto it = holder_.find(tp);
    return it == holder_.end() ? nullptr : &it->second.client;
  }
  size_t intervals() const { return intervals_; }

 private:
  struct Hold {
    int client;
    int64_t since;
  };
  std::map<TopicPartition, Hold> holder_;
  size_t intervals_ = 0;
};

struct SimClient {
  enum class State { kActive, kZombie, kCrashed, kLeftStatic, kGone };
  State state = State::kActive;
  std::string instance_id;  // static members only
  bool regex = false;
  std::string member_id;
  int32_t epoch = 0;  // 0: must (re)join
  Assignment owned;
  Assignment releasing;  // revoked, still being processed (committing) until release_delay ends
  int release_delay = 0;
  int64_t last_ok_ms = 0;
  Assignment zombie_owned;  // what a zombie last held, for its late commit
  int32_t zombie_epoch = 0;
  bool zombie_checked = false;
};

class GroupSim {
 public:
  explicit GroupSim(uint64_t seed) : rng_(seed), materializer_(&store_, 0) {
    config_.default_session_timeout_ms = kSessionMs;
    config_.min_session_timeout_ms = 100;
    config_.default_rebalance_timeout_ms = 30000;
    group_ = std::make_unique<ConsumerGroup>("g", config_, CountingIds());
    topics_ = {{"t0", Pick(1, 8)}, {"t1", Pick(1, 8)}};
  }

  int Pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }

  void Run(int bursts) {
    for (int i = 0; i < 3; ++i) AddClient();
    for (int burst = 0; burst < bursts; ++burst) {
      SCOPED_TRACE("burst " + std::to_string(burst));
      loss_ = Chance(0.5) ? 0.2 : 0.0;
      while (ActiveCount() < 3) AddClient();
      for (int e = Pick(1, 3); e > 0; --e) {
        RandomEvent();
        if (::testing::Test::HasFatalFailure()) return;
        for (int r = Pick(0, 2); r > 0; --r) {
          Round();
          if (::testing::Test::HasFatalFailure()) return;
        }
      }
      loss_ = 0;
      int rounds = 0;
      while (!Converged()) {
        ASSERT_LT(rounds, kConvergenceRounds) << "not converged: " << Describe();
        Round();
        if (::testing::Test::HasFatalFailure()) return;
        ++rounds;
      }
      max_convergence_rounds_ = std::max(max_convergence_rounds_, rounds);
    }
  }

  int max_convergence_rounds() const { return max_convergence_rounds_; }
  int failovers() const { return failovers_; }
  int fenced_zombies() const { return fenced_zombies_; }
  int static_rejoins() const { return static_rejoins_; }
  size_t intervals() const { return recorder_.intervals(); }

 private:
  size_t ActiveCount() const {
    return std::count_if(clients_.begin(), clients_.end(),
                         [](const SimClient& c) { return c.state == SimClient::State::kActive; });
  }

  std::vector<int> ClientsIn(SimClient::State s) const {
    std::vector<int> out;
    for (size_t i = 0; i < clients_.size(); ++i) {
      if (clients_[i].state == s) out.push_back(static_cast<int>(i));
    }
    return out;
  }

  void AddClient() {
    SimClient c;
    if (Chance(0.4)) c.instance_id = "instance-" + std::to_string(clients_.size());
    c.regex = Chance(0.3);
    c.last_ok_ms = now_;
    clients_.push_back(c);
  }

  void RandomEvent() {
    switch (Pick(0, 9)) {
      case 0:
        if (ActiveCount() < 6) AddClient();
        break;
      case 1: {  // clean leave
        auto active = ClientsIn(SimClient::State::kActive);
        if (active.size() <= 1) break;
        const int i = active[Pick(0, static_cast<int>(active.size()) - 1)];
        SimClient& c = clients_[i];
        DropAll(i);
        if (c.epoch > 0) {
          Persist(group_->Heartbeat(BeatRequest(c.member_id, -1, {}), now_, topics_).records);
        }
        c.state = SimClient::State::kGone;
        break;
      }
      case 2: {  // static leave; may come back later
        for (int i : ClientsIn(SimClient::State::kActive)) {
          SimClient& c = clients_[i];
          if (c.instance_id.empty() || c.epoch <= 0) continue;
          DropAll(i);
          auto res = group_->Heartbeat(BeatRequest(c.member_id, -2, {}), now_, topics_);
          Persist(res.records);
          c.state = SimClient::State::kLeftStatic;
          break;
        }
        break;
      }
      case 3: {  // a static member that left comes back (joins with its instance id)
        auto left = ClientsIn(SimClient::State::kLeftStatic);
        if (left.empty()) break;
        SimClient& c = clients_[left[0]];
        c.state = SimClient::State::kActive;
        c.member_id.clear();
        c.epoch = 0;
        c.last_ok_ms = now_;
        ++static_rejoins_;
        break;
      }
      case 4: {  // crash: the process dies with everything it held
        auto active = ClientsIn(SimClient::State::kActive);
        if (active.size() <= 1) break;
        const int i = active[Pick(0, static_cast<int>(active.size()) - 1)];
        DropAll(i);
        clients_[i].state = SimClient::State::kCrashed;
        break;
      }
      case 5: {  // zombie: alive, cut off from the coordinator, still processing
        auto active = ClientsIn(SimClient::State::kActive);
        if (active.size() <= 1) break;
        const int i = active[Pick(0, static_cast<int>(active.size()) - 1)];
        SimClient& c = clients_[i];
        if (c.epoch <= 0) break;
        c.state = SimClient::State::kZombie;
        c.zombie_owned = Union(c.owned, c.releasing);
        c.zombie_epoch = c.epoch;
        break;
      }
      case 6: {  // partitions added
        auto it = topics_.begin();
        std::advance(it, Pick(0, static_cast<int>(topics_.size()) - 1));
        it->second += Pick(1, 4);
        Persist(group_->OnTopicsChanged(topics_, now_).records);
        break;
      }
      case 7: {  // a new topic: regex subscribers pick it up
        if (topics_.size() < 5) {
          topics_["t" + std::to_string(topics_.size())] = Pick(1, 6);
          Persist(group_->OnTopicsChanged(topics_, now_).records);
        }
        break;
      }
      case 8:
        Failover();
        break;
      default:
        break;  // just time passing
    }
  }

  std::vector<std::string> Subscription(const SimClient& c) const {
    // Name subscribers ask for t0 and t1 and a topic that may appear later.
    return {"t0", "t1", "t3"};
  }

  void Round() {
    now_ += kRoundMs;
    std::vector<int> order(clients_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
    std::shuffle(order.begin(), order.end(), rng_);
    for (int i : order) {
      SimClient& c = clients_[i];
      if (c.state != SimClient::State::kActive && c.state != SimClient::State::kZombie) continue;
      // The client's own session timer: without an answer for a session timeout it must assume
      // its partitions are gone (before the coordinator can give them away).
      if (c.epoch > 0 && now_ - c.last_ok_ms >= kSessionMs) {
        DropAll(i);
        c.epoch = 0;
      }
      if (c.state == SimClient::State::kZombie) continue;
      if (c.release_delay > 0) {
        --c.release_delay;
      } else {
        for (const auto& [topic, parts] : c.releasing) {
          for (int32_t p : parts) recorder_.Release({topic, p}, i, now_);
        }
        c.releasing.clear();
      }
      Heartbeat(i);
      if (::testing::Test::HasFatalFailure()) return;
    }
    Persist(group_->Tick(now_).records);
    CommitAndCheck();
    CheckAgreement();
  }

  void Heartbeat(int i) {
    SimClient& c = clients_[i];
    v1::GroupHeartbeatRequest req;
    if (c.epoch == 0) {
      req = c.regex ? JoinRequest({}, c.instance_id) : JoinRequest(Subscription(c), c.instance_id);
      if (c.regex) req.set_subscribed_topic_regex("t[0-9]+");
      req.set_member_id(c.member_id);
    } else {
      req = BeatRequest(c.member_id, c.epoch, Union(c.owned, c.releasing));
    }
    const int32_t group_epoch_before = group_->group_epoch();
    const std::string old_static_owner = c.instance_id.empty() ? "" : StaticOwner(c.instance_id);
    auto res = group_->Heartbeat(req, now_, topics_);
    Persist(res.records);
    const auto& r = res.response;
    if (c.epoch == 0 && res.status.ok() && !old_static_owner.empty() &&
        old_static_owner != r.member_id()) {
      // A static member took over its previous incarnation: no rebalance.
      ASSERT_EQ(group_->group_epoch(), group_epoch_before) << "static rejoin rebalanced";
    }
    if (Chance(loss_)) return;  // the response is lost
    switch (res.status.error) {
      case GroupError::kNone: {
        c.last_ok_ms = now_;
        c.member_id = r.member_id();
        c.epoch = r.member_epoch();
        if (!r.has_assignment()) break;
        const Assignment target = AssignmentOf(r);
        // Partitions being released that are assigned again are kept.
        const Assignment back = Intersect(c.releasing, target);
        c.releasing = Minus(c.releasing, target);
        const Assignment revoked = Minus(c.owned, target);
        const Assignment gained = Minus(Minus(target, c.owned), back);
        c.owned = Union(Union(Intersect(c.owned, target), back), gained);
        c.releasing = Union(c.releasing, revoked);
        if (!revoked.empty()) c.release_delay = Pick(0, kMaxReleaseDelay);
        for (const auto& [topic, parts] : gained) {
          for (int32_t p : parts) {
            recorder_.Acquire({topic, p}, i, now_);
            if (::testing::Test::HasFatalFailure()) return;
          }
        }
        break;
      }
      case GroupError::kFencedMemberEpoch:
        DropAll(i);
        c.epoch = 0;  // rejoin with the same member id
        break;
      case GroupError::kUnknownMemberId:
        DropAll(i);
        c.epoch = 0;
        c.member_id.clear();
        break;
      case GroupError::kUnreleasedInstanceId:
        c.epoch = 0;  // the previous incarnation's session has yet to end; retry
        c.member_id.clear();
        break;
      default:
        FAIL() << "unexpected heartbeat error " << res.status.error << ": " << res.status.message;
    }
  }

  std::string StaticOwner(const std::string& instance_id) const {
    for (const auto& [id, m] : group_->members()) {
      if (m.instance_id == instance_id) return id;
    }
    return "";
  }

  void DropAll(int i) {
    SimClient& c = clients_[i];
    for (const auto& [topic, parts] : Union(c.owned, c.releasing)) {
      for (int32_t p : parts) recorder_.Release({topic, p}, i, now_);
    }
    c.owned.clear();
    c.releasing.clear();
    c.release_delay = 0;
  }

  void Persist(const std::vector<GroupRecord>& records) {
    for (const auto& r : records) {
      EncodedGroupRecord e = Encode(r);
      log_.push_back({next_offset_, e.key, e.value});
      ++next_offset_;
    }
    if (records.empty()) return;
    ASSERT_TRUE(materializer_.Apply(std::span(log_).last(records.size())).ok());
  }

  // Live members' commits are accepted; a zombie whose session the coordinator ended is refused.
  void CommitAndCheck() {
    for (size_t i = 0; i < clients_.size(); ++i) {
      SimClient& c = clients_[i];
      const bool zombie = c.state == SimClient::State::kZombie && !c.zombie_checked;
      if (!zombie && !(c.state == SimClient::State::kActive && c.epoch > 0 && !c.owned.empty())) {
        continue;
      }
      const Assignment& parts = zombie ? c.zombie_owned : c.owned;
      if (parts.empty()) continue;
      v1::CommitOffsetsRequest req;
      req.set_group_id("g");
      req.set_member_id(c.member_id);
      req.set_member_epoch(zombie ? c.zombie_epoch : c.epoch);
      for (const auto& [topic, ps] : parts) {
        for (int32_t p : ps) {
          auto* o = req.add_offsets();
          o->set_topic(topic);
          o->set_partition(p);
          o->set_offset(now_);
        }
      }
      auto v = group_->ValidateCommit(req, now_, topics_);
      const GroupMember* m = group_->FindMember(c.member_id);
      if (zombie && (m == nullptr || m->session_deadline_ms <= now_)) {
        ASSERT_TRUE(v.status.error == GroupError::kFencedMemberEpoch ||
                    v.status.error == GroupError::kUnknownMemberId)
            << "zombie commit got " << v.status.error;
        ASSERT_TRUE(v.records.empty());
        c.zombie_checked = true;
        ++fenced_zombies_;
        continue;
      }
      ASSERT_EQ(v.status.error, GroupError::kNone) << v.status.message;
      for (const auto& pe : v.partitions) {
        ASSERT_EQ(pe.status.error, GroupError::kNone)
            << pe.tp.topic << "-" << pe.tp.partition << ": " << pe.status.message;
      }
      Persist(v.records);
      const auto& first = v.records.front().key.offset_commit();
      auto read = materializer_.ReadOffset("g", first.topic(), first.partition());
      ASSERT_TRUE(read.ok() && read->has_value());
      ASSERT_EQ(read.value()->offset(), now_);
    }
  }

  // Every live client holds only what the coordinator thinks its member owns.
  void CheckAgreement() {
    for (size_t i = 0; i < clients_.size(); ++i) {
      const SimClient& c = clients_[i];
      const Assignment held = Union(c.owned, c.releasing);
      if (held.empty()) continue;
      const GroupMember* m = group_->FindMember(c.member_id);
      ASSERT_NE(m, nullptr) << "client " << i << " holds " << ToString(held) << " but its member "
                            << c.member_id << " is gone";
      ASSERT_TRUE(IsSubset(held, m->Owned())) << "client " << i << " holds " << ToString(held)
                                              << ", coordinator says " << ToString(m->Owned());
    }
  }

  bool Converged() const {
    if (group_->state() == GroupState::kEmpty && ActiveCount() == 0) return true;
    if (group_->state() != GroupState::kStable) return false;
    std::set<std::string> live_members;
    for (const auto& c : clients_) {
      if (c.state != SimClient::State::kActive) continue;
      if (c.epoch <= 0 || !c.releasing.empty()) return false;
      const GroupMember* m = group_->FindMember(c.member_id);
      if (m == nullptr || m->assigned != c.owned || m->member_epoch != c.epoch) return false;
      live_members.insert(c.member_id);
    }
    for (const auto& [id, m] : group_->members()) {
      if (!live_members.contains(id)) return false;  // a dead member not yet expired
    }
    // Every partition of a subscribed topic is held by a live client.
    for (const auto& [topic, n] : topics_) {
      bool subscribed = false;
      for (const auto& c : clients_) {
        if (c.state != SimClient::State::kActive) continue;
        const auto names = Subscription(c);
        subscribed |= c.regex || std::find(names.begin(), names.end(), topic) != names.end();
      }
      if (!subscribed) continue;
      for (int32_t p = 0; p < n; ++p) {
        const int* holder = recorder_.HolderOf({topic, p});
        if (holder == nullptr || clients_[*holder].state != SimClient::State::kActive) return false;
      }
    }
    return true;
  }

  // The coordinator moves: a new one loads the materialised state — from a store that may lag
  // behind, plus the log suffix — and must rebuild exactly the same group.
  void Failover() {
    ++failovers_;
    MemoryOffsetStore fresh;
    OffsetsMaterializer m(&fresh, 0);
    const size_t prefix = static_cast<size_t>(Pick(0, static_cast<int>(log_.size())));
    ASSERT_TRUE(m.Apply(std::span(log_).first(prefix)).ok());
    // The suffix may overlap what the store has (idempotent replay).
    const size_t from = prefix - std::min<size_t>(prefix, Pick(0, 3));
    auto loaded = m.Load(std::span(log_).subspan(from));
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    ASSERT_EQ(fresh.data(), store_.data()) << "rebuilt store differs";
    ASSERT_EQ(loaded->applied_offset, next_offset_ - 1);
    const auto it = loaded->groups.find("g");
    if (it == loaded->groups.end() || !it->second.metadata.has_value()) {
      // Nothing was ever recorded: the new coordinator starts the group afresh.
      ASSERT_EQ(group_->group_epoch(), 0);
      group_ = std::make_unique<ConsumerGroup>("g", config_, CountingIds("f"));
      return;
    }
    auto restored =
        ConsumerGroup::Restore("g", config_, CountingIds("f" + std::to_string(failovers_) + "-"),
                               *it->second.metadata, it->second.members, now_);
    ASSERT_TRUE(restored.ok()) << restored.status().ToString();
    auto a = group_->SnapshotRecords();
    auto b = restored->SnapshotRecords();
    ASSERT_EQ(a.size(), b.size());
    for (size_t k = 0; k < a.size(); ++k) {
      ASSERT_EQ(Encode(a[k]).key, Encode(b[k]).key);
      ASSERT_EQ(Encode(a[k]).value, Encode(b[k]).value) << "record " << k << " differs";
    }
    group_ = std::make_unique<ConsumerGroup>(std::move(restored.value()));
  }

  std::string Describe() const {
    std::string s = std::string("state ") + std::string(GroupStateName(group_->state())) +
                    " epoch " + std::to_string(group_->group_epoch()) + "\n";
    for (const auto& [id, m] : group_->members()) {
      s += "  member " + id + " epoch " + std::to_string(m.member_epoch) + " assigned " +
           ToString(m.assigned) + " pending " + ToString(m.pending_revocation) + " target " +
           ToString(m.target) + (m.left_static ? " (left static)" : "") + "\n";
    }
    for (size_t i = 0; i < clients_.size(); ++i) {
      const auto& c = clients_[i];
      s += "  client " + std::to_string(i) + " state " + std::to_string(static_cast<int>(c.state)) +
           " member " + c.member_id + " epoch " + std::to_string(c.epoch) + " owned " +
           ToString(c.owned) + " releasing " + ToString(c.releasing) + "\n";
    }
    return s;
  }

  std::mt19937_64 rng_;
  GroupConfig config_;
  std::unique_ptr<ConsumerGroup> group_;
  MemoryOffsetStore store_;
  OffsetsMaterializer materializer_;
  std::vector<OffsetsLogRecord> log_;
  Offset next_offset_{0};
  TopicPartitionCounts topics_;
  std::vector<SimClient> clients_;
  OwnershipRecorder recorder_;
  int64_t now_ = 0;
  double loss_ = 0;
  int max_convergence_rounds_ = 0;
  int failovers_ = 0;
  int fenced_zombies_ = 0;
  int static_rejoins_ = 0;
};

TEST(ConsumerGroupSimTest, RandomisedMembershipChurn) {
  const uint64_t base = rill::testing::TestSeed();
  const bool replay = std::getenv("RILL_SEED") != nullptr;
  int max_rounds = 0, failovers = 0, zombies = 0, rejoins = 0;
  size_t intervals = 0;
  // RILL_SIM_RUNS=<n> for a longer soak.
  const char* runs_env = std::getenv("RILL_SIM_RUNS");
  const int runs = replay ? 1 : (runs_env != nullptr ? std::atoi(runs_env) : 25);
  for (int run = 0; run < runs; ++run) {
    const uint64_t seed = base + static_cast<uint64_t>(run);
    SCOPED_TRACE(rill::testing::SeedTrace(seed));
    GroupSim sim(seed);
    sim.Run(60);
    if (HasFatalFailure()) return;
    max_rounds = std::max(max_rounds, sim.max_convergence_rounds());
    failovers += sim.failovers();
    zombies += sim.fenced_zombies();
    rejoins += sim.static_rejoins();
    intervals += sim.intervals();
  }
  std::printf(
      "convergence within %d rounds (bound %d); %zu ownership intervals, %d failovers, "
      "%d zombies fenced, %d static rejoins\n",
      max_rounds, kConvergenceRounds, intervals, failovers, zombies, rejoins);
  // The run exercised what it claims to.
  EXPECT_GT(intervals, 0u);
  if (!replay) {
    EXPECT_GT(failovers, 0);
    EXPECT_GT(zombies, 0);
  }
}

}  // namespace
}  // namespace rill::groups
