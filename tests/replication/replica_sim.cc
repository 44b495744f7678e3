#include "replica_sim.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_set>
#include <variant>
#include <vector>

#include "rill/replication/partition_replica.h"
#include "rill/replication/raft_types.h"

// What the checkers demand (after every step unless said otherwise):
//  (a) every acknowledged value is, at its offset, in the log of the controller's current leader
//      and in the *durable* prefix of every member of the controller's ISR. Crashes here lose
//      only what was not yet durable (any number of them); losing a whole disk is out of scope
//      (the controller cannot tell a wiped replica from a healthy one: KIP-966's territory).
//  (b) committed prefixes never diverge: every entry any replica holds below its own high
//      watermark matches the first one ever seen committed at that offset, and no replica
//      truncates below its high watermark.
//  (c) a LeaderReplica's high watermark never moves back within its epoch; at most one leader
//      per epoch; every replica's high watermark is within its log.
//  (d) every value a consumer read (below some leader's high watermark) is, at its offset, in
//      the log of the controller's current leader.
// At the end: every fault heals, every replica restarts; a value produced after healing must be
// acknowledged, every replica must join the ISR and hold the leader's log, and every
// acknowledged value must be present exactly once, at its offset, on every replica.

namespace rill::replication::sim {

bool ParsePlantedBug(std::string_view name, PlantedBug* bug) {
  for (PlantedBug b :
       {PlantedBug::kNone, PlantedBug::kHwOverAllReplicas, PlantedBug::kAckBeforeFollowerFsync,
        PlantedBug::kFollowerSkipsTruncation, PlantedBug::kElectOutsideIsr}) {
    if (name == PlantedBugName(b)) {
      *bug = b;
      return true;
    }
  }
  return false;
}

const char* PlantedBugName(PlantedBug bug) {
  switch (bug) {
    case PlantedBug::kNone:
      return "none";
    case PlantedBug::kHwOverAllReplicas:
      return "hw-over-all-replicas";
    case PlantedBug::kAckBeforeFollowerFsync:
      return "ack-before-follower-fsync";
    case PlantedBug::kFollowerSkipsTruncation:
      return "follower-skips-truncation";
    case PlantedBug::kElectOutsideIsr:
      return "elect-outside-isr";
  }
  return "?";
}

std::string ReplayCommand(const SimOptions& o) {
  std::string s = "rill_replica_sim --seed " + std::to_string(o.seed) + " --replicas " +
                  std::to_string(o.replicas);
  if (o.steps != SimOptions().steps) s += " --steps " + std::to_string(o.steps);
  if (o.bug != PlantedBug::kNone) s += std::string(" --plant-bug ") + PlantedBugName(o.bug);
  return s;
}

namespace {

using raft::DeterministicRng;

constexpr int64_t kTickMs = 10;
constexpr int kController = 0;
// Limits and timings, in ticks unless named otherwise.
constexpr int64_t kLagTimeMaxMs = 200;
constexpr uint64_t kSessionTicks = 8;        // controller: a replica silent this long is dead
constexpr uint64_t kMetadataEveryTicks = 5;  // controller re-pushes its state
constexpr uint64_t kFetchTimeoutTicks = 4;   // a follower re-sends an unanswered fetch
constexpr uint64_t kIsrResendTicks = 10;     // a leader re-sends an unanswered ISR change
constexpr uint64_t kProduceTimeoutTicks = 100;
constexpr size_t kMaxFetchRecords = 8;
constexpr size_t kMaxPendingProduces = 16;

struct Record {
  LeaderEpoch epoch;
  uint64_t value = 0;
  friend bool operator==(const Record&, const Record&) = default;
};

// --- Messages -------------------------------------------------------------------------------

struct FetchRequest {
  FollowerFetch fetch;
  uint64_t generation = 0;  // the follower's truncation count, echoed to spot stale answers
};
struct FetchResponse {
  LeaderEpoch leader_epoch;
  FetchDecision decision;
  Offset fetch_offset;
  uint64_t generation = 0;
  std::vector<Record> records;
  Offset hw;
  Offset log_start;
  Offset log_end;
};
struct AlterIsrRequest {
  uint64_t id = 0;  // increasing; the controller ignores one older than any it handled
  LeaderEpoch leader_epoch;
  int64_t partition_epoch = 0;
  std::vector<NodeId> isr;
};
struct AlterIsrResponse {
  enum class Result { kCommitted, kNotApplied, kStale };
  uint64_t id = 0;
  Result result = Result::kStale;
  LeaderEpoch leader_epoch;
  int64_t partition_epoch = 0;  // the controller's, after the request
  std::vector<NodeId> isr;      // the controller's, after the request
};
struct Metadata {
  NodeId leader;
  LeaderEpoch leader_epoch;
  int64_t partition_epoch = 0;
  std::vector<NodeId> isr;
  // The incarnation of the addressee the controller knows (the broker epoch): a replica ignores
  // metadata sent to an earlier incarnation of itself, e.g. naming it leader of an old epoch.
  uint64_t incarnation = 0;
};
struct Heartbeat {
  uint64_t incarnation = 0;
  uint64_t sent_tick = 0;
};
using Payload = std::variant<FetchRequest, FetchResponse, AlterIsrRequest, AlterIsrResponse,
                             Metadata, Heartbeat>;
struct Message {
  int from = 0;
  int to = 0;
  Payload payload;
};

// --- Model state ----------------------------------------------------------------------------

struct Replica {
  NodeId id;
  bool up = true;
  uint64_t incarnation = 0;
  uint64_t restart_at = 0;
  std::vector<Record> log;
  int64_t durable = 0;                                // prefix length that survives a crash
  std::vector<std::pair<uint64_t, int64_t>> flushes;  // (due tick, offset made durable)
  Offset hw{0};                                       // checkpointed; clamped to log on crash
  uint64_t generation = 0;                            // truncations and crashes
  // Metadata as this replica knows it.
  NodeId leader{-1};
  LeaderEpoch leader_epoch{-1};
  int64_t partition_epoch = -1;
  // Roles.
  std::unique_ptr<LeaderReplica> as_leader;
  Offset epoch_start{0};
  Offset leader_core_hw{0};  // for checker (c)
  std::unique_ptr<FollowerReplica> as_follower;
  bool fetch_outstanding = false;
  uint64_t fetch_sent_at = 0;
  uint64_t isr_request_id = 0;
  uint64_t isr_sent_at = 0;
  std::vector<NodeId> isr_request;

  Offset log_end() const { return Offset(static_cast<int64_t>(log.size())); }
};

struct Controller {
  NodeId leader{1};
  LeaderEpoch epoch{0};
  int64_t partition_epoch = 0;
  std::vector<NodeId> isr;
  std::vector<uint64_t> last_heartbeat;  // by node id
  std::vector<uint64_t> incarnation;     // by node id
  uint64_t max_request_id = 0;
  uint64_t last_push = 0;
  bool dirty = true;  // push metadata now
};

struct PendingProduce {
  int node;
  uint64_t incarnation;
  LeaderEpoch epoch;
  int64_t offset;
  uint64_t value;
  uint64_t started;
};

struct Faults {
  double loss = 0;
  int max_delay = 1;
  double long_delay = 0;
  double crash = 0;
  double partition = 0;
  double heal = 0;
  double move_leader = 0;  // per tick: the controller moves leadership to another ISR member
  double produce = 0;
  double consume = 0;
  int max_flush_delay = 1;
};

bool Contains(const std::vector<NodeId>& v, NodeId id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}

std::string IsrString(const std::vector<NodeId>& v) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i].value());
  return s + "}";
}

class Simulation {
 public:
  explicit Simulation(const SimOptions& o) : opt_(o), rng_(o.seed * 0x9E3779B97F4A7C15ull + 11) {
    min_isr_ = opt_.replicas / 2 + 1;
    config_.replica_lag_time_max_ms = kLagTimeMaxMs;
    config_.min_insync_replicas = min_isr_;
    for (int i = 1; i <= opt_.replicas; ++i) {
      replicas_.push_back(std::make_unique<Replica>());
      replicas_.back()->id = NodeId(i);
      all_ids_.push_back(NodeId(i));
    }
    cut_.assign(opt_.replicas + 1, std::vector<bool>(opt_.replicas + 1, false));
    ctl_.isr = all_ids_;
    ctl_.leader = NodeId(1 + static_cast<int>(rng_.Uniform(opt_.replicas)));
    ctl_.last_heartbeat.assign(opt_.replicas + 1, 0);
    ctl_.incarnation.assign(opt_.replicas + 1, 0);
    f_.loss = Pick(0.0, 0.2);
    f_.max_delay = 1 + static_cast<int>(rng_.Uniform(3));
    f_.long_delay = Pick(0.0, 0.05);
    f_.crash = Pick(0.0, 0.012);
    f_.partition = Pick(0.0, 0.02);
    f_.heal = Pick(0.02, 0.1);
    f_.move_leader = Pick(0.0, 0.01);
    f_.produce = Pick(0.2, 0.7);
    f_.consume = Pick(0.1, 0.5);
    f_.max_flush_delay = 1 + static_cast<int>(rng_.Uniform(6));
    leader_of_epoch_[ctl_.epoch.value()] = ctl_.leader.value();
    // Everyone starts with the controller's first state, as from a LeaderAndIsr.
    for (auto& r : replicas_) ApplyMetadata(*r, CurrentMetadata(r->id));
  }

  SimResult Run() {
    for (tick_ = 1; tick_ <= static_cast<uint64_t>(opt_.steps) && result_.ok; ++tick_) {
      Step(/*faults=*/true);
    }
    if (!result_.ok) return result_;
    // Liveness: heal everything, restart everyone, no more faults.
    Trace("--- liveness phase");
    healing_ = true;
    for (auto& row : cut_) std::fill(row.begin(), row.end(), false);
    f_.loss = 0;
    f_.long_delay = 0;
    for (auto& r : replicas_) {
      if (!r->up) r->restart_at = tick_;
    }
    uint64_t end = tick_ + static_cast<uint64_t>(opt_.liveness_ticks);
    for (; tick_ <= end && result_.ok; ++tick_) {
      Step(/*faults=*/false);
      if (result_.ok && Converged()) {
        FinalCheck();
        return result_;
      }
    }
    if (result_.ok)
      Fail("no convergence within %d ticks after healing: %s", opt_.liveness_ticks,
           Describe().c_str());
    return result_;
  }

 private:
  double Pick(double lo, double hi) {
    return lo + (hi - lo) * static_cast<double>(rng_.Uniform(1000)) / 1000.0;
  }

  void Trace(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (!opt_.trace) return;
    std::fprintf(stderr, "[%5lu] ", static_cast<unsigned long>(tick_));
    va_list ap;
    va_start(ap, fmt);
    std::vfprintf(stderr, fmt, ap);
    va_end(ap);
    std::fputc('\n', stderr);
  }

  void Fail(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    if (!result_.ok) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    std::vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    result_.ok = false;
    result_.failure = "tick " + std::to_string(tick_) + ": " + buf;
    Trace("FAIL %s", buf);
  }

  Replica& R(NodeId id) { return *replicas_[id.value() - 1]; }
  int64_t NowMs() const { return static_cast<int64_t>(tick_) * kTickMs; }

  // --- History ------------------------------------------------------------------------------

  // The epoch history derived from the log, plus the leader's stamp for its epoch.
  std::vector<EpochEntry> History(const Replica& r) const {
    std::vector<EpochEntry> h;
    for (size_t i = 0; i < r.log.size(); ++i) {
      if (h.empty() || h.back().epoch != r.log[i].epoch) {
        h.push_back({r.log[i].epoch, Offset(static_cast<int64_t>(i))});
      }
    }
    if (r.as_leader && (h.empty() || h.back().epoch < r.as_leader->epoch())) {
      h.push_back({r.as_leader->epoch(), r.epoch_start});
    }
    return h;
  }
  LeaderEpoch LastEpoch(const Replica& r) const {
    return r.log.empty() ? LeaderEpoch(-1) : r.log.back().epoch;
  }

  // --- Network ------------------------------------------------------------------------------

  void Send(int from, int to, Payload p) {
    ++result_.messages;
    if (cut_[from][to] || rng_.Chance(f_.loss)) return;
    uint64_t delay = 1 + rng_.Uniform(static_cast<uint64_t>(f_.max_delay));
    if (rng_.Chance(f_.long_delay)) delay += rng_.Uniform(30);
    inflight_.emplace(std::make_pair(tick_ + delay, seq_++), Message{from, to, std::move(p)});
  }

  void DeliverDue() {
    while (!inflight_.empty() && inflight_.begin()->first.first <= tick_ && result_.ok) {
      Message m = std::move(inflight_.begin()->second);
      inflight_.erase(inflight_.begin());
      if (cut_[m.from][m.to]) continue;
      if (m.to == kController) {
        HandleAtController(m);
        continue;
      }
      Replica& r = *replicas_[m.to - 1];
      if (!r.up) continue;
      std::visit([&](auto& p) { Handle(r, m.from, p); }, m.payload);
    }
  }

  // --- Controller ---------------------------------------------------------------------------

  Metadata CurrentMetadata(NodeId to) const {
    return Metadata{ctl_.leader, ctl_.epoch, ctl_.partition_epoch, ctl_.isr,
                    ctl_.incarnation[to.value()]};
  }

  bool Live(NodeId id) const {
    return tick_ <= kSessionTicks || tick_ - ctl_.last_heartbeat[id.value()] <= kSessionTicks;
  }

  void HandleAtController(Message& m) {
    if (auto* hb = std::get_if<Heartbeat>(&m.payload)) {
      if (hb->incarnation < ctl_.incarnation[m.from]) return;
      if (hb->incarnation > ctl_.incarnation[m.from]) {
        ctl_.incarnation[m.from] = hb->incarnation;
        ctl_.last_heartbeat[m.from] = std::max(ctl_.last_heartbeat[m.from], hb->sent_tick);
        // A restarted leader lost its in-memory state: a new epoch before anyone hears of it.
        if (ctl_.leader == NodeId(m.from)) Elect();
        Send(kController, m.from, CurrentMetadata(NodeId(m.from)));
      }
      ctl_.last_heartbeat[m.from] = std::max(ctl_.last_heartbeat[m.from], hb->sent_tick);
      return;
    }
    auto* req = std::get_if<AlterIsrRequest>(&m.payload);
    if (req == nullptr) return;
    if (req->id < ctl_.max_request_id) return;  // an ordered channel would have delivered it first
    ctl_.max_request_id = req->id;
    AlterIsrResponse resp;
    resp.id = req->id;
    resp.leader_epoch = req->leader_epoch;
    NodeId from(m.from);
    if (req->leader_epoch != ctl_.epoch || ctl_.leader != from ||
        req->partition_epoch != ctl_.partition_epoch) {
      resp.result = AlterIsrResponse::Result::kStale;  // fenced leader or stale partition epoch
    } else if (req->isr.empty() || !Contains(req->isr, from)) {
      resp.result = AlterIsrResponse::Result::kNotApplied;
    } else {
      bool eligible = true;
      for (NodeId id : req->isr) {
        if (!Contains(ctl_.isr, id) && !Live(id)) eligible = false;  // KIP-841
      }
      if (!eligible) {
        resp.result = AlterIsrResponse::Result::kNotApplied;
      } else {
        resp.result = AlterIsrResponse::Result::kCommitted;
        Trace("controller: ISR %s -> %s (partition epoch %ld)", IsrString(ctl_.isr).c_str(),
              IsrString(req->isr).c_str(), static_cast<long>(ctl_.partition_epoch + 1));
        ctl_.isr = req->isr;
        ++ctl_.partition_epoch;
        ctl_.dirty = true;
        ++result_.isr_changes;
      }
    }
    resp.partition_epoch = ctl_.partition_epoch;
    resp.isr = ctl_.isr;
    Send(kController, m.from, resp);
  }

  void ControllerTick(bool faults) {
    if (ctl_.leader == NodeId(-1) || !Live(ctl_.leader)) {
      Elect();
    } else if (faults && rng_.Chance(f_.move_leader)) {
      Elect(/*move=*/true);  // a preferred-leader election or a controlled shutdown
    }
    if (ctl_.dirty || tick_ - ctl_.last_push >= kMetadataEveryTicks) {
      for (NodeId id : all_ids_) Send(kController, id.value(), CurrentMetadata(id));
      ctl_.last_push = tick_;
      ctl_.dirty = false;
    }
  }

  // Elects a leader among the live ISR members (clean election). `move`: the old leader is
  // alive and stays in the ISR, but another member takes over; nothing happens if there is none.
  void Elect(bool move = false) {
    NodeId old = ctl_.leader;
    bool old_live = old != NodeId(-1) && Live(old);
    std::vector<NodeId> candidates;
    for (NodeId id : opt_.bug == PlantedBug::kElectOutsideIsr ? all_ids_ : ctl_.isr) {
      if (Live(id) && !(move && id == old)) candidates.push_back(id);
    }
    if (candidates.empty() && (old == NodeId(-1) || move)) return;  // offline, or nobody to move to
    std::vector<NodeId> isr = ctl_.isr;
    // A dead leader leaves the ISR unless it is the last member (KRaft fences it).
    if (old != NodeId(-1) && !old_live && isr.size() > 1) {
      isr.erase(std::remove(isr.begin(), isr.end(), old), isr.end());
    }
    NodeId chosen(-1);
    if (!candidates.empty()) {
      chosen = candidates[rng_.Uniform(candidates.size())];
      if (!Contains(isr, chosen)) isr.push_back(chosen);  // only with elect-outside-isr
    }
    ctl_.leader = chosen;
    ctl_.epoch = ctl_.epoch + 1;
    ++ctl_.partition_epoch;
    ctl_.isr = isr;
    ctl_.dirty = true;
    if (chosen != NodeId(-1)) ++result_.elections;
    Trace("controller: leader %d -> %d epoch %d ISR %s", old.value(), chosen.value(),
          ctl_.epoch.value(), IsrString(isr).c_str());
    if (chosen != NodeId(-1)) {
      auto [it, fresh] = leader_of_epoch_.emplace(ctl_.epoch.value(), chosen.value());
      if (!fresh && it->second != chosen.value()) {
        Fail("two leaders in epoch %d: %d and %d", ctl_.epoch.value(), it->second, chosen.value());
      }
    }
  }

  // --- Replica: roles and metadata ----------------------------------------------------------

  Offset ReportedDurable(const Replica& r) const {
    return opt_.bug == PlantedBug::kAckBeforeFollowerFsync ? r.log_end() : Offset(r.durable);
  }

  void ApplyMetadata(Replica& r, const Metadata& m) {
    if (m.incarnation != r.incarnation || m.partition_epoch <= r.partition_epoch) return;
    r.partition_epoch = m.partition_epoch;
    bool new_epoch = m.leader_epoch != r.leader_epoch;
    r.leader = m.leader;
    r.leader_epoch = m.leader_epoch;
    if (!new_epoch) {
      if (r.as_leader) r.as_leader->OnIsrCommitted(m.isr);
      UpdateHw(r);
      return;
    }
    r.as_leader.reset();
    r.as_follower.reset();
    r.fetch_outstanding = false;
    if (m.leader == r.id) {
      r.epoch_start = r.log_end();
      r.as_leader =
          std::make_unique<LeaderReplica>(r.id, m.leader_epoch, all_ids_, m.isr, r.log_end(),
                                          Offset(r.durable), r.hw, NowMs(), config_);
      r.leader_core_hw = r.as_leader->high_watermark();
      r.isr_request_id = 0;
      Trace("r%d: leader of epoch %d, log end %zu, durable %ld, hw %ld", r.id.value(),
            m.leader_epoch.value(), r.log.size(), static_cast<long>(r.durable),
            static_cast<long>(r.hw.value()));
    } else if (m.leader != NodeId(-1)) {
      r.as_follower = std::make_unique<FollowerReplica>(r.id, m.leader, m.leader_epoch, r.log_end(),
                                                        LastEpoch(r), ReportedDurable(r), r.hw);
      Trace("r%d: follower of %d in epoch %d", r.id.value(), m.leader.value(),
            m.leader_epoch.value());
    }
  }

  // The leader's high watermark as the driver uses it (acks, consumers, fetch answers).
  Offset EffectiveLeaderHw(const Replica& r) const {
    Offset hw = r.as_leader->high_watermark();
    if (opt_.bug == PlantedBug::kHwOverAllReplicas) {
      Offset m(r.durable);
      for (const auto& f : r.as_leader->followers()) m = std::max(m, f.durable_end);
      hw = std::max(hw, std::min(m, r.log_end()));
    }
    return hw;
  }

  void UpdateHw(Replica& r) {
    if (r.as_leader) {
      Offset core = r.as_leader->high_watermark();
      if (core < r.leader_core_hw) {
        Fail("(c) leader r%d's high watermark moved back in epoch %d: %ld -> %ld", r.id.value(),
             r.as_leader->epoch().value(), static_cast<long>(r.leader_core_hw.value()),
             static_cast<long>(core.value()));
      }
      r.leader_core_hw = core;
      r.hw = std::max(r.hw, EffectiveLeaderHw(r));
    } else if (r.as_follower) {
      r.hw = r.as_follower->high_watermark();
    }
  }

  // --- Replica: log -------------------------------------------------------------------------

  void Append(Replica& r, const Record& rec) {
    if (!r.log.empty() && rec.epoch < r.log.back().epoch) {
      Fail("r%d appends epoch %d after epoch %d", r.id.value(), rec.epoch.value(),
           r.log.back().epoch.value());
    }
    r.log.push_back(rec);
    r.flushes.emplace_back(tick_ + 1 + rng_.Uniform(static_cast<uint64_t>(f_.max_flush_delay)),
                           static_cast<int64_t>(r.log.size()));
  }

  void Truncate(Replica& r, Offset to, const char* why) {
    if (to < r.hw) {
      Fail("(b) r%d truncates to %ld (%s), below its high watermark %ld: committed entries lost",
           r.id.value(), static_cast<long>(to.value()), why, static_cast<long>(r.hw.value()));
    }
    ++result_.truncations;
    Trace("r%d: truncate %zu -> %ld (%s)", r.id.value(), r.log.size(),
          static_cast<long>(to.value()), why);
    r.log.resize(static_cast<size_t>(std::max<int64_t>(0, to.value())));
    r.durable = std::min<int64_t>(r.durable, to.value());
    for (auto& fl : r.flushes) fl.second = std::min<int64_t>(fl.second, to.value());
    ++r.generation;
  }

  void Flush(Replica& r) {
    int64_t before = r.durable;
    std::erase_if(r.flushes, [&](const std::pair<uint64_t, int64_t>& fl) {
      if (fl.first > tick_) return false;
      r.durable = std::max(r.durable, std::min<int64_t>(fl.second, r.log.size()));
      return true;
    });
    if (r.durable == before) return;
    if (r.as_leader) {
      r.as_leader->OnLocalDurable(Offset(r.durable));
      UpdateHw(r);
    } else if (r.as_follower) {
      r.as_follower->OnLocalDurable(ReportedDurable(r));
    }
  }

  void Crash(Replica& r) {
    ++result_.crashes;
    Trace("r%d: crash (log %zu, durable %ld)", r.id.value(), r.log.size(),
          static_cast<long>(r.durable));
    r.up = false;
    r.log.resize(static_cast<size_t>(r.durable));
    r.flushes.clear();
    r.hw = std::min(r.hw, r.log_end());
    ++r.generation;
    r.as_leader.reset();
    r.as_follower.reset();
    r.leader = NodeId(-1);
    r.leader_epoch = LeaderEpoch(-1);
    r.partition_epoch = -1;
    r.fetch_outstanding = false;
    r.restart_at = tick_ + 5 + rng_.Uniform(40);
    for (auto& p : produces_) {
      if (p.node == r.id.value()) p.offset = -1;  // the producer sees the connection drop
    }
  }

  void Restart(Replica& r) {
    Trace("r%d: restart with log %zu", r.id.value(), r.log.size());
    r.up = true;
    ++r.incarnation;
    Send(r.id.value(), kController, Heartbeat{r.incarnation, tick_});
  }

  // --- Replica: message handlers ------------------------------------------------------------

  void Handle(Replica& r, int, Metadata& m) { ApplyMetadata(r, m); }
  void Handle(Replica&, int, Heartbeat&) {}
  void Handle(Replica&, int, AlterIsrRequest&) {}

  void Handle(Replica& r, int, AlterIsrResponse& resp) {
    if (!r.as_leader || resp.leader_epoch != r.as_leader->epoch()) return;
    if (resp.id != r.isr_request_id || !r.as_leader->isr_change_in_flight()) return;
    switch (resp.result) {
      case AlterIsrResponse::Result::kCommitted:
        if (resp.partition_epoch > r.partition_epoch) {
          r.partition_epoch = resp.partition_epoch;
          r.as_leader->OnIsrCommitted(resp.isr);
          UpdateHw(r);
        }
        break;
      case AlterIsrResponse::Result::kNotApplied:
        // The controller says, at the partition epoch we know, that it did not apply it.
        if (resp.partition_epoch == r.partition_epoch) r.as_leader->OnIsrChangeFailed();
        break;
      case AlterIsrResponse::Result::kStale:
        break;  // keep the change pending until metadata tells what happened
    }
  }

  void Handle(Replica& r, int from, FetchRequest& req) {
    if (!r.as_leader) return;  // not the leader (any more): the follower times out and retries
    auto history = History(r);
    EpochEndOffset end = EndOffsetForEpoch(history, req.fetch.last_fetched_epoch, r.log_end());
    FetchDecision d = r.as_leader->OnFetch(req.fetch, end, Offset(0), NowMs());
    UpdateHw(r);
    FetchResponse resp;
    resp.leader_epoch = r.as_leader->epoch();
    resp.decision = d;
    resp.fetch_offset = req.fetch.fetch_offset;
    resp.generation = req.generation;
    if (d.kind == FetchDecision::Kind::kRead) {
      for (int64_t o = d.read_from.value();
           o < static_cast<int64_t>(r.log.size()) && resp.records.size() < kMaxFetchRecords; ++o) {
        resp.records.push_back(r.log[o]);
      }
    }
    resp.hw = r.hw;
    resp.log_start = Offset(0);
    resp.log_end = r.log_end();
    Send(r.id.value(), from, std::move(resp));
  }

  void Handle(Replica& r, int from, FetchResponse& resp) {
    if (!r.as_follower || r.as_follower->leader() != NodeId(from) ||
        r.as_follower->epoch() != resp.leader_epoch) {
      return;
    }
    if (resp.generation != r.generation || resp.fetch_offset != r.log_end()) return;  // stale
    r.fetch_outstanding = false;
    FollowerReplica& fr = *r.as_follower;
    switch (resp.decision.kind) {
      case FetchDecision::Kind::kRead: {
        for (const Record& rec : resp.records) Append(r, rec);
        fr.OnLocalAppend(r.log_end(), LastEpoch(r));
        if (opt_.bug == PlantedBug::kAckBeforeFollowerFsync) fr.OnLocalDurable(r.log_end());
        fr.OnLeaderHighWatermark(resp.hw);
        break;
      }
      case FetchDecision::Kind::kDiverging: {
        if (opt_.bug == PlantedBug::kFollowerSkipsTruncation) {
          // Keeps its log and claims the leader's epoch for it.
          fr.OnLocalAppend(r.log_end(), resp.leader_epoch);
          break;
        }
        auto history = History(r);
        EpochEndOffset local =
            EndOffsetForEpoch(history, resp.decision.diverging.epoch, r.log_end());
        Offset to = fr.TruncationOffset(resp.decision.diverging, local);
        Truncate(r, to, "diverging");
        fr.OnTruncated(r.log_end(), LastEpoch(r), ReportedDurable(r));
        break;
      }
      case FetchDecision::Kind::kOutOfRange: {
        Offset to = fr.OutOfRangeOffset(resp.log_start, resp.log_end);
        Truncate(r, std::min(to, r.log_end()), "out of range");
        fr.OnTruncated(r.log_end(), LastEpoch(r), ReportedDurable(r));
        break;
      }
      default:
        break;  // fenced / unknown epoch / not a replica: wait for metadata
    }
    UpdateHw(r);
  }

  // --- One tick -----------------------------------------------------------------------------

  void Step(bool faults) {
    DeliverDue();
    if (!result_.ok) return;
    if (faults) InjectFaults();
    for (auto& r : replicas_) {
      if (!r->up && r->restart_at <= tick_) Restart(*r);
    }
    for (auto& r : replicas_) {
      if (!r->up) continue;
      Flush(*r);
      ReplicaTick(*r);
    }
    ControllerTick(faults);
    Produce();
    Consume();
    if (result_.ok) Check();
  }

  void InjectFaults() {
    if (rng_.Chance(f_.crash)) {
      Replica& r = *replicas_[rng_.Uniform(replicas_.size())];
      if (r.up) Crash(r);
    }
    if (partitioned_ < 0 && rng_.Chance(f_.partition)) {
      int node = 1 + static_cast<int>(rng_.Uniform(replicas_.size()));
      int kind = static_cast<int>(rng_.Uniform(3));  // 0: everyone, 1: controller, 2: peers
      for (int other = 0; other <= opt_.replicas; ++other) {
        if (other == node) continue;
        bool cut = (other == kController) ? kind != 2 : kind != 1;
        cut_[node][other] = cut_[other][node] = cut;
      }
      partitioned_ = node;
      Trace("partition r%d from %s", node,
            kind == 0   ? "everyone"
            : kind == 1 ? "the controller"
                        : "its peers");
    } else if (partitioned_ >= 0 && rng_.Chance(f_.heal)) {
      for (auto& row : cut_) std::fill(row.begin(), row.end(), false);
      Trace("heal r%d", partitioned_);
      partitioned_ = -1;
    }
  }

  void ReplicaTick(Replica& r) {
    Send(r.id.value(), kController, Heartbeat{r.incarnation, tick_});
    if (r.as_follower) {
      if (!r.fetch_outstanding || tick_ - r.fetch_sent_at >= kFetchTimeoutTicks) {
        FetchRequest req{r.as_follower->NextFetch(), r.generation};
        r.fetch_outstanding = true;
        r.fetch_sent_at = tick_;
        Send(r.id.value(), r.as_follower->leader().value(), req);
      }
      return;
    }
    if (!r.as_leader) return;
    LeaderReplica& l = *r.as_leader;
    if (!l.isr_change_in_flight()) {
      if (auto want = l.WantedIsr(NowMs())) {
        Trace("r%d: wants ISR %s (has %s)", r.id.value(), IsrString(*want).c_str(),
              IsrString(l.isr()).c_str());
        l.OnIsrChangeSent(*want);
        r.isr_request = *want;
        SendIsrRequest(r);
      }
    } else if (tick_ - r.isr_sent_at >= kIsrResendTicks) {
      SendIsrRequest(r);
    }
    UpdateHw(r);
  }

  void SendIsrRequest(Replica& r) {
    r.isr_request_id = ++request_ids_;
    r.isr_sent_at = tick_;
    Send(r.id.value(), kController,
         AlterIsrRequest{r.isr_request_id, r.as_leader->epoch(), r.partition_epoch, r.isr_request});
  }

  // --- Clients ------------------------------------------------------------------------------

  std::vector<Replica*> Leaders() {
    std::vector<Replica*> v;
    for (auto& r : replicas_) {
      if (r->up && r->as_leader) v.push_back(r.get());
    }
    return v;
  }

  void Produce() {
    // Acknowledge or fail the pending produces.
    std::erase_if(produces_, [&](const PendingProduce& p) {
      if (p.offset < 0) return true;
      Replica& r = *replicas_[p.node - 1];
      if (!r.up || r.incarnation != p.incarnation || !r.as_leader ||
          r.as_leader->epoch() != p.epoch || tick_ - p.started > kProduceTimeoutTicks) {
        return true;  // not acknowledged: the producer does not know (NOT_LEADER / timeout)
      }
      if (r.hw.value() <= p.offset) return false;
      // NOT_ENOUGH_REPLICAS_AFTER_APPEND unless the ISR is still large enough.
      if (!r.as_leader->CanAcceptAcksAll()) return true;
      if (r.log[p.offset].value != p.value) {
        Fail("leader r%d's log changed at offset %ld under a pending produce", p.node,
             static_cast<long>(p.offset));
        return true;
      }
      auto [it, fresh] = acked_.emplace(p.offset, p.value);
      if (!fresh && it->second != p.value) {
        Fail("(a) offset %ld acknowledged twice: value %lu, then value %lu (leader r%d epoch %d)",
             static_cast<long>(p.offset), static_cast<unsigned long>(it->second),
             static_cast<unsigned long>(p.value), p.node, p.epoch.value());
      }
      ++result_.acked;
      if (healing_) liveness_acked_ = true;
      Trace("ack value %lu at offset %ld (leader r%d epoch %d)",
            static_cast<unsigned long>(p.value), static_cast<long>(p.offset), p.node,
            p.epoch.value());
      return true;
    });
    if (healing_ && liveness_acked_) return;  // let the replicas converge
    if (!rng_.Chance(f_.produce) || produces_.size() >= kMaxPendingProduces) return;
    auto leaders = Leaders();
    if (leaders.empty()) return;
    Replica& r = *leaders[rng_.Uniform(leaders.size())];
    if (!r.as_leader->CanAcceptAcksAll()) return;  // NOT_ENOUGH_REPLICAS
    uint64_t value = next_value_++;
    int64_t offset = static_cast<int64_t>(r.log.size());
    Append(r, Record{r.as_leader->epoch(), value});
    r.as_leader->OnLocalAppend(r.log_end());
    produces_.push_back({r.id.value(), r.incarnation, r.as_leader->epoch(), offset, value, tick_});
  }

  void Consume() {
    if (!rng_.Chance(f_.consume)) return;
    auto leaders = Leaders();
    if (leaders.empty()) return;
    Replica& r = *leaders[rng_.Uniform(leaders.size())];
    int64_t from = static_cast<int64_t>(rng_.Uniform(r.log.size() + 1));
    for (int64_t o = from; o < r.hw.value() && o < from + 8; ++o) {
      consumed_[o] = r.log[o].value;  // (b) makes sure no two reads of one offset differ
      ++result_.consumed;
    }
  }

  // --- Checkers -----------------------------------------------------------------------------

  void Check() {
    // (b) and (c): every replica's committed prefix against the first committed record seen.
    for (auto& rp : replicas_) {
      Replica& r = *rp;
      if (r.hw > r.log_end() || r.durable > static_cast<int64_t>(r.log.size())) {
        Fail("r%d: high watermark %ld or durable end %ld beyond log end %zu", r.id.value(),
             static_cast<long>(r.hw.value()), static_cast<long>(r.durable), r.log.size());
        return;
      }
      for (int64_t o = 0; o < r.hw.value(); ++o) {
        if (o >= static_cast<int64_t>(committed_.size())) committed_.push_back(r.log[o]);
        if (!(committed_[o] == r.log[o])) {
          Fail(
              "(b) committed prefixes diverge at offset %ld: r%d holds value %lu (epoch %d) "
              "below its high watermark %ld, but value %lu (epoch %d) was committed there",
              static_cast<long>(o), r.id.value(), static_cast<unsigned long>(r.log[o].value),
              r.log[o].epoch.value(), static_cast<long>(r.hw.value()),
              static_cast<unsigned long>(committed_[o].value), committed_[o].epoch.value());
          return;
        }
      }
    }
    // (a) acknowledged values in the current leader and in the durable log of the ISR.
    if (ctl_.leader != NodeId(-1)) {
      const Replica& l = R(ctl_.leader);
      for (auto [o, v] : acked_) {
        if (o >= static_cast<int64_t>(l.log.size()) || l.log[o].value != v) {
          Fail(
              "(a) acknowledged value %lu at offset %ld is missing from the leader r%d "
              "(epoch %d, log end %zu)",
              static_cast<unsigned long>(v), static_cast<long>(o), l.id.value(), ctl_.epoch.value(),
              l.log.size());
          return;
        }
      }
      for (auto [o, v] : consumed_) {
        if (o >= static_cast<int64_t>(l.log.size()) || l.log[o].value != v) {
          Fail(
              "(d) consumed value %lu at offset %ld is no longer in the leader r%d's log "
              "(epoch %d, log end %zu)",
              static_cast<unsigned long>(v), static_cast<long>(o), l.id.value(), ctl_.epoch.value(),
              l.log.size());
          return;
        }
      }
    }
    for (NodeId id : ctl_.isr) {
      const Replica& m = R(id);
      for (auto [o, v] : acked_) {
        if (o >= m.durable || m.log[o].value != v) {
          Fail(
              "(a) acknowledged value %lu at offset %ld is not in the durable log of ISR member "
              "r%d (ISR %s, epoch %d, durable end %ld)",
              static_cast<unsigned long>(v), static_cast<long>(o), id.value(),
              IsrString(ctl_.isr).c_str(), ctl_.epoch.value(), static_cast<long>(m.durable));
          return;
        }
      }
    }
  }

  bool Converged() {
    if (!liveness_acked_ || ctl_.leader == NodeId(-1)) return false;
    Replica& l = R(ctl_.leader);
    if (!l.up || !l.as_leader || l.as_leader->epoch() != ctl_.epoch) return false;
    if (ctl_.isr.size() != replicas_.size()) return false;
    if (l.hw != l.log_end()) return false;
    for (auto& r : replicas_) {
      if (!r->up || r->log != l.log || r->durable != static_cast<int64_t>(r->log.size())) {
        return false;
      }
    }
    return true;
  }

  void FinalCheck() {
    for (auto& r : replicas_) {
      std::unordered_set<uint64_t> seen;
      for (const Record& rec : r->log) {
        if (!seen.insert(rec.value).second) {
          Fail("value %lu appears twice in r%d's log", static_cast<unsigned long>(rec.value),
               r->id.value());
          return;
        }
      }
      for (auto [o, v] : acked_) {
        if (o >= static_cast<int64_t>(r->log.size()) || r->log[o].value != v) {
          Fail("after healing, acknowledged value %lu is not at offset %ld on r%d",
               static_cast<unsigned long>(v), static_cast<long>(o), r->id.value());
          return;
        }
      }
    }
  }

  std::string Describe() {
    char buf[256];
    std::snprintf(buf, sizeof(buf), "controller leader %d epoch %d ISR %s;", ctl_.leader.value(),
                  ctl_.epoch.value(), IsrString(ctl_.isr).c_str());
    std::string s = buf;
    for (auto& r : replicas_) {
      std::snprintf(buf, sizeof(buf), " r%d%s%s log %zu durable %ld hw %ld;", r->id.value(),
                    r->up ? "" : " (down)", r->as_leader ? " leader" : "", r->log.size(),
                    static_cast<long>(r->durable), static_cast<long>(r->hw.value()));
      s += buf;
    }
    return s;
  }

  SimOptions opt_;
  DeterministicRng rng_;
  int min_isr_ = 2;
  ReplicaConfig config_;
  Faults f_;
  uint64_t tick_ = 0;
  uint64_t seq_ = 0;
  uint64_t request_ids_ = 0;
  bool healing_ = false;
  bool liveness_acked_ = false;
  int partitioned_ = -1;
  std::vector<std::unique_ptr<Replica>> replicas_;
  std::vector<NodeId> all_ids_;
  std::vector<std::vector<bool>> cut_;  // [from][to], 0 is the controller
  std::map<std::pair<uint64_t, uint64_t>, Message> inflight_;
  Controller ctl_;
  std::map<int32_t, int32_t> leader_of_epoch_;
  std::vector<PendingProduce> produces_;
  uint64_t next_value_ = 1;
  std::map<int64_t, uint64_t> acked_;
  std::map<int64_t, uint64_t> consumed_;
  std::vector<Record> committed_;
  SimResult result_;
};

}  // namespace

SimResult RunSimulation(const SimOptions& options) {
  Simulation s(options);
  return s.Run();
}

}  // namespace rill::replication::sim
