// Operating a replicated three-node cluster (docs/ARCHITECTURE.md §7a): controlled shutdown on
// SIGTERM, preferred-leader election (automatic and on request), a rolling restart and a restart
// of every node under acks=all load, the last ISR member standing, and a consumer group whose
// coordinator is killed. Every test runs real rill-broker processes on loopback.

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cluster_fixture.h"
#include "rill/client/consumer.h"

namespace rill::client {
namespace {

// Writes unique values with acks=all from a thread (round-robin over `partitions`) until
// stopped, and remembers where each acknowledged value landed.
class AcksAllWriter {
 public:
  AcksAllWriter(Producer* producer, std::string topic, int partitions)
      : producer_(producer), topic_(std::move(topic)), partitions_(partitions) {
    thread_ = std::thread([this] { Run(); });
  }
  ~AcksAllWriter() { Stop(); }

  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  size_t acked() const {
    std::lock_guard lock(mu_);
    return acked_.size();
  }
  int failed() const { return failed_.load(); }
  std::string last_error() const {
    std::lock_guard lock(mu_);
    return last_error_;
  }
  // value -> (partition, offset)
  std::map<std::string, std::pair<int, int64_t>> acknowledged() const {
    std::lock_guard lock(mu_);
    return acked_;
  }
  // The longest time without an acknowledgement between `from` and the last ack so far.
  std::chrono::milliseconds LongestAckGapSince(std::chrono::steady_clock::time_point from) const {
    std::lock_guard lock(mu_);
    std::chrono::steady_clock::duration longest{0};
    auto previous = from;
    for (auto t : ack_times_) {
      if (t < from) continue;
      longest = std::max(longest, t - previous);
      previous = t;
    }
    return std::chrono::duration_cast<std::chrono::milliseconds>(longest);
  }

 private:
  void Run() {
    for (int i = 0; !stop_.load(); ++i) {
      const int p = i % partitions_;
      std::string value = "w-" + std::to_string(i);
      auto md = producer_->Send(ToPartition(topic_, p, value)).get();
      std::lock_guard lock(mu_);
      if (md.ok()) {
        acked_[value] = {p, md->offset};
        ack_times_.push_back(std::chrono::steady_clock::now());
      } else {
        failed_++;
        last_error_ = md.status().ToString();
      }
    }
  }

  Producer* producer_;
  const std::string topic_;
  const int partitions_;
  mutable std::mutex mu_;
  std::map<std::string, std::pair<int, int64_t>> acked_;
  std::vector<std::chrono::steady_clock::time_point> ack_times_;
  std::string last_error_;
  std::atomic<int> failed_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class ClusterOperationsTest : public ClusterTest {
 protected:
  // Preferred-leader balancing every second, so a returning broker gets its leaderships back
  // within the test's deadlines.
  std::vector<std::string> ExtraArgs() const override {
    return {"--controller.leader_rebalance_interval_ms", "1000"};
  }

  // Every acknowledged value is in its partition at the offset it was acknowledged with, read
  // from the partition's current leader. A leader that has just restarted serves below a high
  // watermark its followers' next fetches re-establish, so the reads are repeated (bounded)
  // until they show every acknowledged offset.
  void ExpectAcknowledgedPresent(const std::string& topic, int partitions,
                                 const std::map<std::string, std::pair<int, int64_t>>& acked) {
    std::vector<int64_t> needed(partitions, -1);  // highest acknowledged offset per partition
    for (const auto& [value, where] : acked) {
      needed[where.first] = std::max(needed[where.first], where.second);
    }
    std::vector<std::map<int64_t, std::string>> at(partitions);
    for (int p = 0; p < partitions; ++p) {
      test::PollUntil(
          [&] {
            const int leader = WaitForLeader(topic, p, kNodes);
            if (leader <= 0) return false;
            at[p].clear();
            for (auto& r : Node(leader).ReadAll(topic, p)) {
              at[p][r.offset] = std::string(r.record.value.value_or(""));
            }
            return at[p].count(needed[p]) != 0 || needed[p] < 0;
          },
          60s, 20ms);
    }
    for (const auto& [value, where] : acked) {
      auto it = at[where.first].find(where.second);
      ASSERT_NE(it, at[where.first].end())
          << "acknowledged " << value << " at " << topic << "-" << where.first << "@"
          << where.second << " is gone";
      EXPECT_EQ(it->second, value) << topic << "-" << where.first << "@" << where.second;
    }
  }

  // The broker registration as DescribeCluster (on any running node) reports it.
  std::optional<BrokerInfo> BrokerState(int id) {
    AdminConfig ac;
    ac.bootstrap = Bootstrap();
    auto a = Admin::Create(ac);
    if (!a.ok()) return std::nullopt;
    auto info = (*a)->DescribeCluster();
    if (!info.ok()) return std::nullopt;
    for (const auto& b : info->brokers) {
      if (b.node_id == id) return b;
    }
    return std::nullopt;
  }
};

// SIGTERM of a partition's leader while a producer writes with acks=all: the broker first has
// the controller fence it and move its leadership to an in-sync follower, so not one produce
// fails and the wait is far below a session timeout; it then exits 0. Once it is back in the ISR
// the preferred-leader election gives it its leadership back.
TEST_F(ClusterOperationsTest, ControlledShutdownMovesLeadershipAndPreferredLeaderReturns) {
  CreateTopic("moving", 1);
  const int leader = WaitForLeader("moving", 0);
  ASSERT_GT(leader, 0);
  auto producer = MakeProducer();
  ASSERT_NE(producer, nullptr);
  AcksAllWriter writer(producer.get(), "moving", 1);
  ASSERT_TRUE(test::PollUntil([&] { return writer.acked() >= 200; }, 60s, 5ms));

  const size_t before = writer.acked();
  const auto sigterm_at = std::chrono::steady_clock::now();
  std::atomic<int> exit_code{-2};
  std::thread stopper([&] { exit_code = Node(leader).Stop(); });
  ASSERT_TRUE(test::PollUntil([&] { return writer.acked() > before + 1; }, 60s, 1ms))
      << "no acks=all write succeeded after SIGTERM of the leader";
  const auto first_ack_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::steady_clock::now() - sigterm_at)
                                .count();
  stopper.join();
  const auto exited_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - sigterm_at)
                             .count();
  ASSERT_TRUE(test::PollUntil([&] { return writer.acked() >= before + 100; }, 60s, 5ms));
  std::cout << "controlled shutdown: first acks=all produce " << first_ack_ms
            << " ms after SIGTERM of the leader; longest time without an ack "
            << writer.LongestAckGapSince(sigterm_at).count()
            << " ms; the broker exited after " << exited_ms << " ms\n";
  EXPECT_EQ(exit_code.load(), 0);
  EXPECT_NE(Node(leader).log().find("controlled shutdown: leaderships moved"), std::string::npos)
      << "the leadership was not moved by a controlled shutdown";
  ASSERT_TRUE(test::PollUntil([&] { return writer.acked() >= before + 200; }, 60s, 5ms));
  EXPECT_EQ(writer.failed(), 0) << writer.last_error();

  // The stopped broker is listed, fenced; the partition is led by another ISR member.
  auto state = BrokerState(leader);
  ASSERT_TRUE(state.has_value());
  EXPECT_TRUE(state->fenced);
  const int interim = WaitForLeader("moving", 0, kNodes - 1);
  ASSERT_GT(interim, 0);
  EXPECT_NE(interim, leader);

  // Back: it registers (unfenced), catches up, rejoins the ISR, and leads again.
  Launch(leader);
  Node(leader).WaitReady();
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(test::PollUntil(
      [&] {
        auto pm = PartitionOf(interim, "moving", 0);
        return pm && pm->isr_size() == kNodes;
      },
      60s, 20ms))
      << "the restarted broker " << leader << " did not rejoin the ISR";
  // Balancing runs every second here (ExtraArgs); the default is 30 s, so a deadline well
  // under that shows the interval setting is applied.
  ASSERT_TRUE(test::PollUntil(
      [&] {
        auto pm = PartitionOf(interim, "moving", 0);
        return pm && pm->isr_size() == kNodes && pm->leader_id() == leader;
      },
      10s, 20ms))
      << "the preferred replica " << leader << " did not get its leadership back";
  state = BrokerState(leader);
  ASSERT_TRUE(state.has_value());
  EXPECT_FALSE(state->fenced);
  writer.Stop();
  EXPECT_EQ(writer.failed(), 0) << writer.last_error();
  ExpectAcknowledgedPresent("moving", 1, writer.acknowledged());
}

class ManualElectionTest : public ClusterTest {
 protected:
  // Balancing off, with an interval short enough that balancing, were it on, would show.
  std::vector<std::string> ExtraArgs() const override {
    return {"--controller.auto_leader_rebalance_enable", "false",
            "--controller.leader_rebalance_interval_ms", "300"};
  }
};

// With automatic balancing off, a returning broker stays a follower until an operator asks for a
// preferred-leader election (rillctl partition elect-leaders); each partition reports what
// happened to it.
TEST_F(ManualElectionTest, ElectLeadersMovesLeadershipBackOnRequest) {
  CreateTopic("elect", 2);
  const int leader = WaitForLeader("elect", 0);
  ASSERT_GT(leader, 0);
  auto pm = PartitionOf(leader, "elect", 0);
  ASSERT_TRUE(pm.has_value());
  ASSERT_EQ(pm->replicas(0), leader) << "a new partition is led by its first replica";

  Node(leader).Kill9();
  const int interim = WaitForLeader("elect", 0, kNodes - 1);
  ASSERT_GT(interim, 0);
  ASSERT_NE(interim, leader);
  Launch(leader);
  Node(leader).WaitReady();
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_EQ(WaitForLeader("elect", 0, kNodes), interim) << "the ISR did not grow back to 3";
  // Ten balancing intervals pass and leadership stays where it is: the setting is applied.
  EXPECT_FALSE(test::PollUntil(
      [&] {
        auto now = PartitionOf(interim, "elect", 0);
        return now && now->leader_id() == leader;
      },
      3s, 20ms))
      << "leadership moved back with auto_leader_rebalance_enable=false";

  auto results = admin_->ElectLeaders({{"elect", {0}}});
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  ASSERT_EQ(results->size(), 1u);
  EXPECT_TRUE((*results)[0].status.ok()) << (*results)[0].status.ToString();
  EXPECT_EQ((*results)[0].leader_id, leader);
  ASSERT_TRUE(test::PollUntil(
      [&] {
        auto now = PartitionOf(interim, "elect", 0);
        return now && now->leader_id() == leader;
      },
      30s, 20ms));

  // Asked again: nothing to do. Unknown names are answered, not ignored.
  results = admin_->ElectLeaders({{"elect", {0}}, {"no-such-topic", {}}});
  ASSERT_TRUE(results.ok()) << results.status().ToString();
  ASSERT_EQ(results->size(), 2u);
  std::map<std::string, std::string> outcome;
  for (const auto& r : *results) outcome[r.topic] = r.status.message();
  EXPECT_EQ(outcome["elect"].rfind("ELECTION_NOT_NEEDED", 0), 0u) << outcome["elect"];
  EXPECT_EQ(outcome["no-such-topic"].rfind("UNKNOWN_TOPIC", 0), 0u) << outcome["no-such-topic"];
  for (int32_t bad : {9, -1}) {
    results = admin_->ElectLeaders({{"elect", {bad}}});
    ASSERT_TRUE(results.ok());
    ASSERT_EQ(results->size(), 1u);
    EXPECT_EQ((*results)[0].status.message().rfind("UNKNOWN_PARTITION", 0), 0u)
        << "partition " << bad << ": " << (*results)[0].status.ToString();
  }
  // A malformed request is refused whole, naming the field.
  results = admin_->ElectLeaders({{"", {0}}});
  ASSERT_FALSE(results.ok()) << "an empty topic name was accepted";
  EXPECT_EQ(results.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(results.status().message().find("topic is empty"), std::string::npos)
      << results.status().ToString();
  // Nothing of the bad requests moved anything.
  auto after = PartitionOf(leader, "elect", 0);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->leader_id(), leader);
}

// A rolling restart (SIGTERM, start again, wait for a full ISR; node after node) under acks=all
// load fails no produce, and every acknowledged record is there afterwards.
TEST_F(ClusterOperationsTest, RollingRestartUnderLoadFailsNoProduce) {
  constexpr int kPartitions = 3;
  CreateTopic("rolling", kPartitions);
  auto producer = MakeProducer();
  ASSERT_NE(producer, nullptr);
  AcksAllWriter writer(producer.get(), "rolling", kPartitions);
  ASSERT_TRUE(test::PollUntil([&] { return writer.acked() >= 100; }, 60s, 5ms));
  for (int node = 1; node <= kNodes; ++node) {
    const size_t before = writer.acked();
    EXPECT_EQ(Node(node).Stop(), 0) << "node " << node;
    Launch(node);
    Node(node).WaitReady();
    ASSERT_FALSE(HasFatalFailure());
    for (int p = 0; p < kPartitions; ++p) {
      ASSERT_GT(WaitForLeader("rolling", p, kNodes), 0)
          << "rolling-" << p << " did not get its full ISR back after node " << node;
    }
    ASSERT_TRUE(test::PollUntil([&] { return writer.acked() >= before + 50; }, 60s, 5ms))
        << "writes stalled after restarting node " << node;
  }
  writer.Stop();
  EXPECT_EQ(writer.failed(), 0) << writer.last_error();
  std::cout << "rolling restart: " << writer.acked() << " acks=all records, "
            << writer.failed() << " failed\n";
  ExpectAcknowledgedPresent("rolling", kPartitions, writer.acknowledged());
}

// Every node stops at once, first by kill -9, then by SIGTERM: the cluster comes back by itself,
// every partition gets a leader and a full ISR again, and nothing acknowledged is lost.
TEST_F(ClusterOperationsTest, AllNodesRestartedAtOnceKeepEverything) {
  constexpr int kPartitions = 2;
  CreateTopic("everyone", kPartitions);
  auto producer = MakeProducer();
  ASSERT_NE(producer, nullptr);
  std::map<std::string, std::pair<int, int64_t>> acked;
  int next = 0;
  auto write = [&](int n) {
    for (int i = 0; i < n; ++i, ++next) {
      const std::string value = "e-" + std::to_string(next);
      auto md = producer->Send(ToPartition("everyone", next % kPartitions, value)).get();
      ASSERT_TRUE(md.ok()) << md.status().ToString();
      acked[value] = {next % kPartitions, md->offset};
    }
  };
  write(200);
  ASSERT_FALSE(HasFatalFailure());
  for (const bool graceful : {false, true}) {
    std::vector<std::thread> stoppers;
    for (int node = 1; node <= kNodes; ++node) {
      stoppers.emplace_back([&, node] {
        if (graceful) {
          EXPECT_EQ(Node(node).Stop(), 0) << "node " << node;
        } else {
          Node(node).Kill9();
        }
      });
    }
    for (auto& t : stoppers) t.join();
    for (int node = 1; node <= kNodes; ++node) Launch(node);
    for (int node = 1; node <= kNodes; ++node) {
      Node(node).WaitReady();
      ASSERT_FALSE(HasFatalFailure());
    }
    // Each restarted node leaves the ISRs it is not the last member of when it registers
    // (RejoinRecords), one registration after another: a leader is always in its ISR, and the
    // followers are back in it once they fetched (before, registrations computed from the same
    // image undid each other: a leader outside its ISR, and ISRs full again only after the next
    // leader rebalance).
    for (int p = 0; p < kPartitions; ++p) {
      ASSERT_GT(WaitForLeader("everyone", p, kNodes, 20s), 0)
          << "everyone-" << p << " has no leader with a full ISR after "
          << (graceful ? "SIGTERM" : "kill -9") << " of every node";
      for (int n = 1; n <= kNodes; ++n) {
        auto pm = PartitionOf(n, "everyone", p);
        if (!pm || pm->leader_id() <= 0) continue;
        EXPECT_NE(std::find(pm->isr().begin(), pm->isr().end(), pm->leader_id()), pm->isr().end())
            << "node " << n << " sees everyone-" << p << " led by " << pm->leader_id()
            << ", outside its ISR";
      }
    }
    ExpectAcknowledgedPresent("everyone", kPartitions, acked);
    ASSERT_FALSE(HasFatalFailure());
    producer = MakeProducer();  // its connections all went away
    ASSERT_NE(producer, nullptr);
    write(100);
    ASSERT_FALSE(HasFatalFailure());
  }
}

// The loss Kafka needed KIP-966 for cannot happen here: with the two followers stopped cleanly
// the leader is the last ISR member and keeps acknowledging (min.insync.replicas=1); when it is
// killed and the followers return, the partition stays without a leader rather than electing a
// replica that lacks acknowledged records, and serves everything again once the last leader
// returns.
TEST_F(ClusterOperationsTest, LastReplicaStandingStaysUnavailableUntilItReturns) {
  CreateTopic("last", 1, {{"min.insync.replicas", "1"}});
  const int leader = WaitForLeader("last", 0);
  ASSERT_GT(leader, 0);
  std::vector<int> followers;
  for (int n = 1; n <= kNodes; ++n) {
    if (n != leader) followers.push_back(n);
  }
  auto producer = MakeProducer(/*delivery_timeout_ms=*/20000);
  ASSERT_NE(producer, nullptr);
  std::set<std::string> acked;
  auto write = [&](const std::string& prefix, int n) {
    for (int i = 0; i < n; ++i) {
      const std::string value = prefix + std::to_string(i);
      auto md = producer->Send(ToPartition("last", 0, value)).get();
      ASSERT_TRUE(md.ok()) << md.status().ToString();
      acked.insert(value);
    }
  };
  write("all-", 50);
  ASSERT_FALSE(HasFatalFailure());
  for (int f : followers) EXPECT_EQ(Node(f).Stop(), 0) << "node " << f;
  // The leader alone: still acknowledging, with itself the whole ISR.
  write("alone-", 50);
  ASSERT_FALSE(HasFatalFailure());
  Node(leader).Kill9();

  for (int f : followers) Launch(f);
  for (int f : followers) {
    Node(f).WaitReady();
    ASSERT_FALSE(HasFatalFailure());
  }
  // The returning quorum fences the silent leader; no other replica is eligible.
  ASSERT_TRUE(test::PollUntil(
      [&] {
        auto pm = PartitionOf(followers[0], "last", 0);
        return pm && pm->leader_id() == -1;
      },
      60s, 20ms))
      << "the partition did not go leaderless";
  ProducerConfig pc;
  pc.bootstrap = Bootstrap();
  pc.acks = -1;
  pc.delivery_timeout_ms = 3000;
  pc.request_timeout_ms = 1000;
  pc.metadata_max_age_ms = 200;
  auto probe = Producer::Create(pc);
  ASSERT_TRUE(probe.ok()) << probe.status().ToString();
  auto refused = (*probe)->Send(ToPartition("last", 0, "nowhere")).get();
  EXPECT_FALSE(refused.ok()) << "a replica without the acknowledged records took the leadership";
  for (int f : followers) {
    auto pm = PartitionOf(f, "last", 0);
    ASSERT_TRUE(pm.has_value());
    EXPECT_EQ(pm->leader_id(), -1) << "node " << f << " sees a leader";
  }

  Launch(leader);
  Node(leader).WaitReady();
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_EQ(WaitForLeader("last", 0, kNodes), leader);
  std::set<std::string> read;
  for (auto& r : Node(leader).ReadAll("last", 0)) {
    read.insert(std::string(r.record.value.value_or("")));
  }
  for (const auto& v : acked) EXPECT_EQ(read.count(v), 1u) << v << " was lost";
}

class CoordinatorFailoverTest : public ClusterTest {
 protected:
  // One __consumer_offsets partition: its leader is every group's coordinator.
  std::vector<std::string> ExtraArgs() const override {
    return {"--groups.offsets_partitions", "1"};
  }
};

// A consumer group keeps consuming and committing when its coordinator is killed: the group
// moves with the leadership of its __consumer_offsets partition, no committed offset goes back,
// and a new member of the group resumes exactly where the last commit left off.
TEST_F(CoordinatorFailoverTest, ConsumerGroupFollowsCoordinatorFailover) {
  constexpr int kPartitions = 3;
  constexpr int kRecords = 300;
  CreateTopic("events", kPartitions);
  {
    auto producer = MakeProducer();
    ASSERT_NE(producer, nullptr);
    for (int i = 0; i < kRecords; ++i) {
      auto md =
          producer->Send(ToPartition("events", i % kPartitions, "ev-" + std::to_string(i))).get();
      ASSERT_TRUE(md.ok()) << md.status().ToString();
    }
  }
  ConsumerConfig cc;
  cc.bootstrap = Bootstrap();
  cc.group_id = "g";
  cc.enable_auto_commit = false;
  cc.auto_offset_reset = OffsetReset::kEarliest;
  cc.session_timeout_ms = 10000;
  cc.max_poll_records = 20;
  cc.request_timeout_ms = 5000;
  cc.retry_backoff_ms = 50;
  cc.retry_backoff_max_ms = 200;
  auto created = Consumer::Create(cc);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto consumer = std::move(created).value();
  ASSERT_TRUE(consumer->Subscribe({"events"}).ok());

  std::set<std::string> seen;
  OffsetMap committed_before;
  int coordinator = -1;
  bool killed = false;
  ASSERT_TRUE(test::PollUntil(
      [&] {
        auto records = consumer->Poll(200ms);
        if (!records.ok()) return false;  // retried: the coordinator or a leader moves
        for (const auto& r : *records) seen.insert(std::string(r.value.value_or("")));
        if (!records->empty()) (void)consumer->Commit();  // may fail while the group moves
        if (!killed && seen.size() >= kRecords / 2) {
          auto committed = consumer->Committed(
              {{"events", 0}, {"events", 1}, {"events", 2}});
          if (!committed.ok()) return false;
          committed_before = *committed;
          coordinator = WaitForLeader("__consumer_offsets", 0, kNodes);
          if (coordinator <= 0) return false;
          Node(coordinator).Kill9();
          killed = true;
        }
        return killed && seen.size() == static_cast<size_t>(kRecords);
      },
      120s, 1ms))
      << "consumed " << seen.size() << " of " << kRecords << " distinct records";
  ASSERT_GT(coordinator, 0);
  // Every record consumed; the last commit must land on the new coordinator.
  Status last_commit;
  ASSERT_TRUE(test::PollUntil([&] { return (last_commit = consumer->Commit()).ok(); }, 60s,
                              50ms))
      << last_commit.ToString();
  auto committed_after = consumer->Committed({{"events", 0}, {"events", 1}, {"events", 2}});
  ASSERT_TRUE(committed_after.ok()) << committed_after.status().ToString();
  for (const auto& [tp, offset] : committed_before) {
    EXPECT_GE((*committed_after)[tp], offset) << tp.topic << "-" << tp.partition;
  }
  int64_t total = 0;
  for (const auto& [tp, offset] : *committed_after) total += offset;
  EXPECT_EQ(total, kRecords);
  ASSERT_TRUE(consumer->Close().ok());

  // A new member of the group starts from the commits: nothing left to read.
  auto again = Consumer::Create(cc);
  ASSERT_TRUE(again.ok());
  ASSERT_TRUE((*again)->Subscribe({"events"}).ok());
  OffsetMap positions;
  ASSERT_TRUE(test::PollUntil(
      [&] {
        auto records = (*again)->Poll(200ms);
        if (records.ok()) {
          EXPECT_TRUE(records->empty()) << "a committed record was delivered again";
        }
        if ((*again)->Assignment().size() != kPartitions) return false;
        for (int p = 0; p < kPartitions; ++p) {
          auto pos = (*again)->Position({"events", p});
          if (!pos.ok()) return false;
          positions[{"events", p}] = *pos;
        }
        return true;
      },
      60s, 1ms));
  for (const auto& [tp, pos] : positions) {
    EXPECT_EQ(pos, (*committed_after)[tp]) << tp.topic << "-" << tp.partition;
  }
}


// node.rack reaches placement through real brokers: nodes 1 and 2 in rack "a", node 3 in rack
// "b", so every RF=2 partition has one replica in each rack, i.e. on node 3, and the leaders
// still spread over all three nodes.
class RackAwareClusterTest : public ClusterTest {
 protected:
  std::vector<std::string> NodeArgs(int id) const override {
    return {"--node.rack", id == 3 ? "b" : "a"};
  }
};

TEST_F(RackAwareClusterTest, EveryPartitionHasAReplicaInEachRack) {
  auto created = admin_->CreateTopics(
      {NewTopic{.name = "racked", .partitions = 6, .replication_factor = 2, .configs = {}}});
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  ASSERT_TRUE(Admin::FirstError(*created).ok()) << Admin::FirstError(*created).ToString();
  std::set<int> leaders;
  for (int p = 0; p < 6; ++p) {
    ASSERT_GT(WaitForLeader("racked", p, 2), 0) << "racked-" << p;
    ASSERT_TRUE(WaitUntilEveryBrokerKnows("racked", p)) << "racked-" << p;
    auto pm = PartitionOf(1, "racked", p);
    ASSERT_TRUE(pm.has_value());
    ASSERT_EQ(pm->replicas_size(), 2) << "racked-" << p;
    EXPECT_NE(std::find(pm->replicas().begin(), pm->replicas().end(), 3), pm->replicas().end())
        << "racked-" << p << " has no replica in rack b (node 3)";
    leaders.insert(pm->leader_id());
  }
  EXPECT_EQ(leaders.size(), 3u) << "leaders not spread over the three nodes";
}

// broker.controlled_shutdown_timeout_ms = 0 turns controlled shutdown off: SIGTERM stops the
// broker at once, without asking the controller to move its leaderships, so it still leads (and
// is unfenced) in metadata when it has exited, until its session times out (3 s here); then the
// partition moves to another ISR member as after a crash.
class NoControlledShutdownTest : public ClusterTest {
 protected:
  std::vector<std::string> ExtraArgs() const override {
    return {"--broker.controlled_shutdown_timeout_ms", "0",
            "--controller.auto_leader_rebalance_enable", "false"};
  }
};

TEST_F(NoControlledShutdownTest, SigtermStopsWithoutMovingLeaderships) {
  CreateTopic("abrupt", 1);
  const int leader = WaitForLeader("abrupt", 0);
  ASSERT_GT(leader, 0);
  const int other = leader % kNodes + 1;
  EXPECT_EQ(Node(leader).Stop(), 0);
  auto pm = PartitionOf(other, "abrupt", 0);
  ASSERT_TRUE(pm.has_value());
  EXPECT_EQ(pm->leader_id(), leader) << "leadership moved before the session timeout: a "
                                        "controlled shutdown ran although it is off";
  EXPECT_EQ(Node(leader).log().find("controlled shutdown: asking"), std::string::npos);
  // Fenced after the session timeout, the partition gets another leader from the ISR.
  int moved = -1;
  ASSERT_TRUE(test::PollUntil(
      [&] {
        auto now = PartitionOf(other, "abrupt", 0);
        if (!now || now->leader_id() <= 0 || now->leader_id() == leader) return false;
        moved = now->leader_id();
        return true;
      },
      30s, 20ms));
  EXPECT_NE(moved, leader);
}

}  // namespace
}  // namespace rill::client
