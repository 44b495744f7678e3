#include "nemesis.h"

#include <algorithm>
#include <fstream>
#include <thread>

#include "disk_faults.h"
#include "support/poll.h"

namespace rill::fault {

using namespace std::chrono_literals;

namespace {

struct KindName {
  FaultKind kind;
  const char* name;
};
constexpr KindName kKinds[] = {
    {FaultKind::kKillLeader, "kill-leader"},
    {FaultKind::kKillController, "kill-controller"},
    {FaultKind::kPause, "pause"},
    {FaultKind::kRestartAll, "restart-all"},
    {FaultKind::kCorruptTail, "corrupt-tail"},
    {FaultKind::kLostDisk, "lost-disk"},
    {FaultKind::kLostDiskFast, "lost-disk-fast"},
    {FaultKind::kPartition, "partition"},
    {FaultKind::kPartitionOneWay, "partition-one-way"},
    {FaultKind::kSlowDisk, "slow-disk"},
};

}  // namespace

const std::vector<FaultKind>& AllFaultKinds() {
  static const std::vector<FaultKind> all = [] {
    std::vector<FaultKind> v;
    for (const auto& k : kKinds) v.push_back(k.kind);
    return v;
  }();
  return all;
}

const std::vector<FaultKind>& DefaultFaultKinds() {
  static const std::vector<FaultKind> defaults = [] {
    std::vector<FaultKind> v;
    for (FaultKind k : AllFaultKinds()) {
      v.push_back(k);
    }
    return v;
  }();
  return defaults;
}

const char* FaultName(FaultKind kind) {
  for (const auto& k : kKinds) {
    if (k.kind == kind) return k.name;
  }
  return "?";
}

std::optional<FaultKind> ParseFault(const std::string& name) {
  for (const auto& k : kKinds) {
    if (name == k.name) return k.kind;
  }
  return std::nullopt;
}

bool NeedsNetwork(FaultKind kind) {
  return kind == FaultKind::kPartition || kind == FaultKind::kPartitionOneWay;
}

Nemesis::Nemesis(ChaosCluster* cluster, NetworkPartition* network, HistoryWriter* history,
                 std::mt19937_64* rng, NemesisOptions options)
    : cluster_(cluster),
      network_(network),
      history_(history),
      rng_(rng),
      options_(std::move(options)) {}

void Nemesis::Note(const std::string& what, int node, int partition) {
  history_->Append({0, "nemesis", OpType::kInfo, what, "", partition, -1, node});
}

std::vector<int> Nemesis::PartitionsLedBy(int node) {
  std::vector<int> led;
  if (auto parts = cluster_->Partitions(options_.topic)) {
    for (const auto& pm : *parts) {
      if (pm.leader_id == node) led.push_back(pm.partition);
    }
  }
  return led;
}

std::optional<Nemesis::Target> Nemesis::RandomLeader() {
  const int p = static_cast<int>((*rng_)() % options_.partitions);
  auto parts = cluster_->Partitions(options_.topic);
  if (!parts || p >= static_cast<int>(parts->size()) || (*parts)[p].leader_id <= 0) {
    return std::nullopt;
  }
  Target t;
  t.node = (*parts)[p].leader_id;
  t.led = PartitionsLedBy(t.node);
  return t;
}

std::optional<Nemesis::Target> Nemesis::RandomFollower(int* partition) {
  const int p = static_cast<int>((*rng_)() % options_.partitions);
  auto parts = cluster_->Partitions(options_.topic);
  if (!parts || p >= static_cast<int>(parts->size())) return std::nullopt;
  std::vector<int> followers;
  for (int r : (*parts)[p].replicas) {
    if (r != (*parts)[p].leader_id) followers.push_back(r);
  }
  if (followers.empty()) return std::nullopt;
  *partition = p;
  Target t;
  t.node = followers[(*rng_)() % followers.size()];
  t.led = PartitionsLedBy(t.node);
  return t;
}

void Nemesis::RecordFault(FaultKind kind, const Target& target) {
  history_->Append({0, "nemesis", OpType::kInfo, "fault", FaultName(kind), -1, -1, target.node});
  for (int p : target.led) Note("led", target.node, p);
}

void Nemesis::RecordHeal(FaultKind kind, int node) {
  history_->Append({0, "nemesis", OpType::kInfo, "heal", FaultName(kind), -1, -1, node});
}

bool Nemesis::WaitFailover(const Target& target, std::chrono::milliseconds timeout) {
  std::vector<int> waiting = target.led;
  return test::PollUntil(
      [&] {
        auto parts = cluster_->Partitions(options_.topic);
        if (!parts) return false;
        for (auto it = waiting.begin(); it != waiting.end();) {
          if (*it >= static_cast<int>(parts->size())) return false;
          const auto& pm = (*parts)[*it];
          if (pm.leader_id > 0 && pm.leader_id != target.node) {
            Note("leader", pm.leader_id, *it);
            it = waiting.erase(it);
          } else {
            ++it;
          }
        }
        return waiting.empty();
      },
      timeout, 20ms);
}

bool Nemesis::WaitFenced(int node, std::chrono::milliseconds timeout) {
  return test::PollUntil([&] { return cluster_->Fenced(node).value_or(false); }, timeout, 20ms);
}

bool Nemesis::Restart(int node, std::string* error) {
  cluster_->Launch(node);
  return cluster_->WaitReady(node, error);
}

void Nemesis::Hold(std::chrono::milliseconds at_least) {
  const int extra = options_.max_extra_hold_ms > 0
                        ? static_cast<int>((*rng_)() % (options_.max_extra_hold_ms + 1))
                        : 0;
  // The fault's duration is the fault itself; the only condition that ends it early is a stop
  // request (the deadline is the duration).
  test::PollUntil(
      [&] { return options_.interrupted != nullptr && options_.interrupted->load(); },
      at_least + std::chrono::milliseconds(extra), 10ms);
}

bool Nemesis::WaitHealthy(std::chrono::milliseconds timeout, std::string* error) {
  std::string last = "no metadata";
  const bool ok = test::PollUntil(
      [&] {
        for (int n = 1; n <= cluster_->nodes(); ++n) {
          if (!cluster_->running(n) || cluster_->paused(n)) {
            last = "node " + std::to_string(n) + " is not running";
            return false;
          }
        }
        auto parts = cluster_->Partitions(options_.topic);
        if (!parts) {
          last = "no metadata";
          return false;
        }
        for (const auto& pm : *parts) {
          if (pm.leader_id <= 0 || pm.isr.size() != pm.replicas.size()) {
            last = "partition " + std::to_string(pm.partition) + " has leader " +
                   std::to_string(pm.leader_id) + " and " + std::to_string(pm.isr.size()) + " of " +
                   std::to_string(pm.replicas.size()) + " replicas in its ISR";
            return false;
          }
        }
        return true;
      },
      timeout, 50ms);
  if (!ok) *error = "the cluster did not recover: " + last;
  return ok;
}

bool Nemesis::RunCycle(FaultKind kind, std::string* error) {
  const auto session = std::chrono::milliseconds(options_.session_timeout_ms);
  const auto failover_timeout = session * 10;
  switch (kind) {
    case FaultKind::kKillLeader:
    case FaultKind::kKillController: {
      std::optional<Target> t;
      if (kind == FaultKind::kKillLeader) {
        t = RandomLeader();
      } else if (int c = cluster_->ControllerId(); c > 0) {
        t = Target{c, PartitionsLedBy(c)};
      }
      if (!t) {
        *error = "no leader or controller to kill";
        return false;
      }
      cluster_->Kill9(t->node);
      RecordFault(kind, *t);
      WaitFailover(*t, failover_timeout);  // the checker reports partitions that did not
      if (kind == FaultKind::kKillController) {
        test::PollUntil(
            [&] {
              const int c = cluster_->ControllerId();
              if (c <= 0 || c == t->node) return false;
              Note("controller", c);
              return true;
            },
            failover_timeout, 20ms);
      }
      Hold(0ms);
      if (!Restart(t->node, error)) return false;
      RecordHeal(kind, t->node);
      break;
    }
    case FaultKind::kPause: {
      auto t = RandomLeader();
      if (!t) {
        *error = "no leader to pause";
        return false;
      }
      const auto start = std::chrono::steady_clock::now();
      cluster_->Pause(t->node);
      RecordFault(kind, *t);
      WaitFailover(*t, failover_timeout);
      // Stopped for longer than the session timeout, whatever the failover took.
      const auto elapsed = std::chrono::steady_clock::now() - start;
      Hold(std::max<std::chrono::milliseconds>(
          0ms, session + 500ms - std::chrono::duration_cast<std::chrono::milliseconds>(elapsed)));
      cluster_->Resume(t->node);
      RecordHeal(kind, t->node);
      break;
    }
    case FaultKind::kRestartAll: {
      for (int n = 1; n <= cluster_->nodes(); ++n) cluster_->Kill9(n);
      RecordFault(kind, Target{});
      for (int n = 1; n <= cluster_->nodes(); ++n) cluster_->Launch(n);
      for (int n = 1; n <= cluster_->nodes(); ++n) {
        if (!cluster_->WaitReady(n, error)) return false;
      }
      RecordHeal(kind, -1);
      break;
    }
    case FaultKind::kCorruptTail: {
      int p = -1;
      auto t = RandomFollower(&p);
      if (!t) {
        *error = "no follower to damage";
        return false;
      }
      // Restarted at once, like a crashed process under a supervisor: it may still be in the ISR
      // and lead its other partitions, so no failover is required.
      t->led.clear();
      cluster_->Kill9(t->node);
      RecordFault(kind, *t);
      std::string what;
      const std::string dir =
          cluster_->data_dir(t->node) + "/" + options_.topic + "-" + std::to_string(p);
      if (CorruptActiveSegmentTail(dir, *rng_, &what)) {
        history_->Append({0, "nemesis", OpType::kInfo, "corrupt", what, p, -1, t->node});
      }
      if (!Restart(t->node, error)) return false;
      RecordHeal(kind, t->node);
      break;
    }
    case FaultKind::kLostDisk: {
      Target t;
      t.node = 1 + static_cast<int>((*rng_)() % cluster_->nodes());
      t.led = PartitionsLedBy(t.node);
      cluster_->Kill9(t.node);
      RecordFault(kind, t);
      // Out of every ISR before it comes back empty: a replica that lost its log must not count
      // as in sync (that would be a second fault, beyond what RF 3 with min ISR 2 survives).
      WaitFailover(t, failover_timeout);
      if (!WaitFenced(t.node, failover_timeout)) {
        *error = "node " + std::to_string(t.node) + " was not fenced after kill -9";
        return false;
      }
      auto removed = RemovePartitionDirs(cluster_->data_dir(t.node), options_.lost_disk_topics);
      std::string names;
      for (const auto& r : removed) names += (names.empty() ? "" : " ") + r;
      history_->Append({0, "nemesis", OpType::kInfo, "removed", names, -1, -1, t.node});
      if (!Restart(t.node, error)) return false;
      RecordHeal(kind, t.node);
      break;
    }
    case FaultKind::kLostDiskFast: {
      // Restarted at once, like a supervisor restarting a broker whose data disk came back
      // empty: it may still be in ISRs and lead partitions when it registers again, so no
      // failover is required; what counts is whether acknowledged records survive.
      Target t;
      t.node = 1 + static_cast<int>((*rng_)() % cluster_->nodes());
      cluster_->Kill9(t.node);
      RecordFault(kind, t);
      auto removed = RemovePartitionDirs(cluster_->data_dir(t.node), options_.lost_disk_topics);
      std::string names;
      for (const auto& r : removed) names += (names.empty() ? "" : " ") + r;
      history_->Append({0, "nemesis", OpType::kInfo, "removed", names, -1, -1, t.node});
      if (!Restart(t.node, error)) return false;
      RecordHeal(kind, t.node);
      break;
    }
    case FaultKind::kPartition:
    case FaultKind::kPartitionOneWay: {
      auto t = RandomLeader();
      if (!t || network_ == nullptr) {
        *error = network_ == nullptr ? "network faults are not set up" : "no leader to isolate";
        return false;
      }
      const auto start = std::chrono::steady_clock::now();
      if (!network_->Isolate(t->node, kind == FaultKind::kPartition, error)) return false;
      RecordFault(kind, *t);
      WaitFailover(*t, failover_timeout);
      const auto elapsed = std::chrono::steady_clock::now() - start;
      Hold(std::max<std::chrono::milliseconds>(
          0ms, session + 500ms - std::chrono::duration_cast<std::chrono::milliseconds>(elapsed)));
      if (!network_->Heal(error)) return false;
      RecordHeal(kind, t->node);
      break;
    }
    case FaultKind::kSlowDisk: {
      int p = -1;
      auto t = RandomFollower(&p);
      if (!t) {
        *error = "no follower to slow down";
        return false;
      }
      t->led.clear();  // still alive: no failover required
      const int delay_ms = 100 + static_cast<int>((*rng_)() % 700);
      std::ofstream(cluster_->fsync_delay_file(t->node)) << delay_ms << "\n";
      RecordFault(kind, *t);
      history_->Append(
          {0, "nemesis", OpType::kInfo, "fsync-delay", std::to_string(delay_ms), -1, -1, t->node});
      slow_nodes_.push_back(t->node);
      Hold(session);
      std::ofstream(cluster_->fsync_delay_file(t->node)) << "0\n";
      slow_nodes_.clear();
      RecordHeal(kind, t->node);
      break;
    }
  }
  return WaitHealthy(std::chrono::milliseconds(options_.recovery_timeout_ms), error);
}

void Nemesis::HealAll() {
  std::string ignored;
  if (network_ != nullptr) network_->Heal(&ignored);
  for (int n : slow_nodes_) std::ofstream(cluster_->fsync_delay_file(n)) << "0\n";
  slow_nodes_.clear();
  for (int n = 1; n <= cluster_->nodes(); ++n) {
    if (cluster_->paused(n)) cluster_->Resume(n);
  }
  for (int n = 1; n <= cluster_->nodes(); ++n) {
    if (!cluster_->running(n)) cluster_->Launch(n);
  }
  for (int n = 1; n <= cluster_->nodes(); ++n) cluster_->WaitReady(n, &ignored);
}

}  // namespace rill::fault
