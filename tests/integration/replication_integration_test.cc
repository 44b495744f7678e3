// Partition replication on three real rill-broker processes (a three-voter controller quorum on
// free loopback ports): acks=all writes are durable on every ISR member before they are
// acknowledged, a killed leader's partitions move to an in-sync follower and the producer's
// retries land there, a stopped follower leaves the ISR and comes back (docs/ARCHITECTURE.md §7a).

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "cluster_fixture.h"
#include "rill/client/admin.h"
#include "rill/client/producer.h"
#include "support/poll.h"

namespace rill::client {
namespace {

using namespace std::chrono_literals;

class ReplicationTest : public ClusterTest {
 protected:
  // Sends v0 .. v<n-1> to partition 0 of `topic` with acks=all; the largest acknowledged offset.
  int64_t ProduceAcked(const std::string& topic, int n) {
    auto producer = MakeProducer();
    EXPECT_NE(producer, nullptr);
    if (producer == nullptr) return -1;
    std::vector<std::future<Result<RecordMetadata>>> acks;
    for (int i = 0; i < n; ++i) {
      acks.push_back(producer->Send(ToPartition(topic, 0, "v" + std::to_string(i))));
    }
    int64_t last = -1;
    for (auto& f : acks) {
      auto md = f.get();
      EXPECT_TRUE(md.ok()) << md.status().ToString();
      if (md.ok()) last = std::max(last, md->offset);
    }
    return last;
  }
};

// The first thing replication must make true: an acks=all record acknowledged by an RF=3
// partition is in the log of every replica (durably: each follower reports only its durable end,
// and the high watermark is the smallest over the ISR) at the moment the ack arrives.
TEST_F(ReplicationTest, AcksAllRecordIsOnEveryReplicaWhenAcknowledged) {
  CreateTopic("r3", 1);
  constexpr int kRecords = 300;
  ASSERT_EQ(ProduceAcked("r3", kRecords), kRecords - 1);
  // No waiting: the ack itself promises every ISR member has the records.
  for (int n = 1; n <= kNodes; ++n) {
    EXPECT_GE(PartitionGauge(n, "rill_partition_log_end_offset", "r3", 0), kRecords)
        << "node " << n << " does not hold every acknowledged record";
  }
  const int leader = WaitForLeader("r3", 0);
  ASSERT_GT(leader, 0);
  int64_t hw = -1;
  auto read = Node(leader).ReadAll("r3", 0, &hw);
  ASSERT_EQ(read.size(), static_cast<size_t>(kRecords));
  for (int i = 0; i < kRecords; ++i) {
    EXPECT_EQ(read[i].offset, i);
    EXPECT_EQ(read[i].record.value.value_or(""), "v" + std::to_string(i));
  }
}

// `topic describe` through any broker shows each partition's leader's high watermark: a
// follower learns it only from its next fetch, so its own trails right after a produce (the
// compose test once read back fewer records than it had produced, counting on the figures a
// follower had answered).
TEST_F(ReplicationTest, DescribeThroughAFollowerShowsTheLeadersHighWatermark) {
  CreateTopic("hw3", 1);
  constexpr int kRecords = 200;
  ASSERT_EQ(ProduceAcked("hw3", kRecords), kRecords - 1);
  for (int n = 1; n <= kNodes; ++n) {
    AdminConfig ac;
    ac.bootstrap = "127.0.0.1:" + std::to_string(Node(n).client_port());
    auto admin = Admin::Create(ac);
    ASSERT_TRUE(admin.ok()) << admin.status().ToString();
    auto described = (*admin)->DescribeTopics({"hw3"});
    ASSERT_TRUE(described.ok()) << described.status().ToString();
    ASSERT_EQ(described->size(), 1u);
    ASSERT_EQ((*described)[0].partitions.size(), 1u);
    const auto& described_p0 = (*described)[0].partitions[0];
    EXPECT_EQ(described_p0.high_watermark, kRecords) << "described via node " << n;
    EXPECT_EQ(described_p0.log_end_offset, kRecords) << "described via node " << n;
  }
  // A leader that does not answer (paused) leaves the follower's figures: describe still
  // succeeds, within its request timeout, rather than failing or hanging.
  const int leader = WaitForLeader("hw3", 0);
  ASSERT_GT(leader, 0);
  const int follower = leader % kNodes + 1;
  Node(leader).Signal(SIGSTOP);
  AdminConfig ac;
  ac.bootstrap = "127.0.0.1:" + std::to_string(Node(follower).client_port());
  ac.request_timeout_ms = 2000;
  auto admin = Admin::Create(ac);
  auto described = admin.ok() ? (*admin)->DescribeTopics({"hw3"})
                              : Result<std::vector<TopicInfo>>(admin.status());
  Node(leader).Signal(SIGCONT);
  ASSERT_TRUE(described.ok()) << described.status().ToString();
  ASSERT_EQ(described->size(), 1u);
  ASSERT_EQ((*described)[0].partitions.size(), 1u);
  EXPECT_EQ((*described)[0].partitions[0].leader_id, leader);
}

// kill -9 of a partition's leader while a producer writes with acks=all: the controller fences
// it and elects an in-sync follower, the producer's retries land there, and every acknowledged
// record is read back at the offset it was acknowledged with.
TEST_F(ReplicationTest, LeaderKilledProducerCarriesOnAndNothingAcknowledgedIsLost) {
  CreateTopic("failover", 1);
  const int old_leader = WaitForLeader("failover", 0);
  ASSERT_GT(old_leader, 0);
  auto producer = MakeProducer();
  ASSERT_NE(producer, nullptr);

  std::mutex mu;
  std::map<std::string, int64_t> acked;  // value -> offset
  std::atomic<int> failed{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop.load(); ++i) {
      std::string value = "value-" + std::to_string(i);
      auto md = producer->Send(ToPartition("failover", 0, value)).get();
      if (md.ok()) {
        std::lock_guard lock(mu);
        acked[value] = md->offset;
      } else {
        failed++;
      }
    }
  });
  StopAndJoin join_on_exit{stop, writer};
  auto acked_count = [&] {
    std::lock_guard lock(mu);
    return acked.size();
  };
  ASSERT_TRUE(test::PollUntil([&] { return acked_count() >= 200; }, 60s, 5ms));
  const size_t before_kill = acked_count();
  const auto killed_at = std::chrono::steady_clock::now();
  Node(old_leader).Kill9();
  ASSERT_TRUE(test::PollUntil([&] { return acked_count() > before_kill + 1; }, 60s, 1ms))
      << "no acks=all write succeeded after the leader was killed";
  const auto first_ack_after =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                            killed_at);
  std::cout << "failover: first acks=all produce after kill -9 of the leader took "
            << first_ack_after.count() << " ms\n";
  ASSERT_TRUE(test::PollUntil([&] { return acked_count() >= before_kill + 200; }, 60s, 5ms));
  stop = true;
  writer.join();
  EXPECT_EQ(failed.load(), 0) << "acks=all writes failed instead of being retried";

  const int new_leader = WaitForLeader("failover", 0, kNodes - 1);
  ASSERT_GT(new_leader, 0);
  ASSERT_NE(new_leader, old_leader);
  int64_t hw = -1;
  auto read = Node(new_leader).ReadAll("failover", 0, &hw);
  std::map<int64_t, std::string> at;
  for (auto& r : read) at[r.offset] = r.record.value.value_or("");
  std::lock_guard lock(mu);
  for (const auto& [value, offset] : acked) {
    auto it = at.find(offset);
    ASSERT_NE(it, at.end()) << "acknowledged " << value << " at " << offset << " is gone";
    EXPECT_EQ(it->second, value) << "offset " << offset;
  }

  // The killed node comes back, catches up and rejoins the ISR.
  Launch(old_leader);
  Node(old_leader).WaitReady();
  ASSERT_GT(WaitForLeader("failover", 0, kNodes), 0) << "the restarted node did not rejoin the ISR";
  ASSERT_TRUE(test::PollUntil(
      [&] {
        return PartitionGauge(old_leader, "rill_partition_log_end_offset", "failover", 0) >= hw;
      },
      60s, 20ms));
}

// A follower stopped (SIGSTOP) past replica.lag.time.max.ms leaves the ISR: acks=all keeps
// working while the ISR still meets min.insync.replicas (2), and fails with NOT_ENOUGH_REPLICAS
// where it does not (3); SIGCONT brings it back into the ISR.
TEST_F(ReplicationTest, StoppedFollowerLeavesIsrAndRejoins) {
  CreateTopic("min2", 1);
  CreateTopic("min3", 1, {{"min.insync.replicas", "3"}});
  const int leader = WaitForLeader("min2", 0);
  ASSERT_GT(leader, 0);
  // A follower of min2 that does not lead min3 either (so min3 keeps its leader).
  const int leader3 = WaitForLeader("min3", 0);
  int follower = -1;
  for (int n = 1; n <= kNodes; ++n) {
    if (n != leader && n != leader3) follower = n;
  }
  if (follower < 0) follower = leader == 1 ? 2 : 1;
  ASSERT_NE(follower, leader);

  Node(follower).Signal(SIGSTOP);
  ASSERT_GT(WaitForLeader("min2", 0, kNodes - 1, 30s), 0) << "the ISR of min2 did not shrink";
  auto producer = MakeProducer(/*delivery_timeout_ms=*/20000);
  ASSERT_NE(producer, nullptr);
  auto ok = producer->Send(ToPartition("min2", 0, "with two")).get();
  EXPECT_TRUE(ok.ok()) << ok.status().ToString();

  if (leader3 != follower) {
    ASSERT_GT(WaitForLeader("min3", 0, kNodes - 1, 30s), 0) << "the ISR of min3 did not shrink";
    ProducerConfig pc;
    pc.bootstrap = Bootstrap();
    pc.acks = -1;
    pc.retries = 0;
    auto strict = Producer::Create(pc);
    ASSERT_TRUE(strict.ok());
    auto refused = (*strict)->Send(ToPartition("min3", 0, "x")).get();
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.status().message().find("NOT_ENOUGH_REPLICAS"), std::string::npos)
        << refused.status().ToString();
  }

  Node(follower).Signal(SIGCONT);
  EXPECT_GT(WaitForLeader("min2", 0, kNodes, 60s), 0) << "the follower did not rejoin the ISR";
  auto again = producer->Send(ToPartition("min2", 0, "with three")).get();
  EXPECT_TRUE(again.ok()) << again.status().ToString();
}

// /metrics on a replicated cluster: every partition is led by exactly one node
// (rill_leader_partitions sums to the partition count); a stopped follower makes its leader
// report the partition under-replicated and the follower's lag in offsets; once it resumes and
// catches up both go back to 0.
TEST_F(ReplicationTest, MetricsShowLeadershipUnderReplicationAndFollowerLag) {
  constexpr int kPartitions = 3;
  CreateTopic("metered", kPartitions);
  // The value of one series (name plus labels, exactly as rendered) on node `node`; -1 if absent.
  auto series = [&](int node, const std::string& key) -> int64_t {
    const std::string body = rill::testing::HttpGet(Node(node).http_port(), "/metrics");
    size_t pos = 0;
    while ((pos = body.find(key + " ", pos)) != std::string::npos) {
      if (pos == 0 || body[pos - 1] == '\n') return std::stoll(body.substr(pos + key.size() + 1));
      pos += key.size();
    }
    return -1;
  };
  auto partition_key = [](const std::string& name, int p) {
    return name + "{topic=\"metered\",partition=\"" + std::to_string(p) + "\"}";
  };

  // Leadership: summed over the nodes, one leader per partition of every topic the cluster has.
  // (Every topic as node 1 knows them, once it knows "metered": another node may have been
  // first to apply the creation.)
  int total_partitions = 0;
  ASSERT_TRUE(test::PollUntil(
      [&] {
        v1::MetadataResponse md;
        if (!Metadata(1, {}, &md)) return false;
        bool metered = false;
        total_partitions = 0;
        for (const auto& t : md.topics()) {
          total_partitions += t.partitions_size();
          metered = metered || (t.name() == "metered" && t.partitions_size() == kPartitions);
        }
        return metered;
      },
      30s, 20ms));
  int64_t led = 0;
  ASSERT_TRUE(test::PollUntil(
      [&] {
        led = 0;
        for (int n = 1; n <= kNodes; ++n) {
          const int64_t v = series(n, "rill_leader_partitions");
          if (v < 0) return false;
          led += v;
        }
        return led == total_partitions;
      },
      30s, 50ms))
      << "rill_leader_partitions sums to " << led << ", not " << total_partitions;
  for (int p = 0; p < kPartitions; ++p) {
    const int leader = WaitForLeader("metered", p);
    ASSERT_GT(leader, 0);
    ASSERT_TRUE(test::PollUntil(
        [&] { return series(leader, partition_key("rill_partition_under_replicated", p)) == 0; },
        30s, 50ms))
        << "partition " << p << " with a full ISR is reported under-replicated";
  }
  for (int n = 1; n <= kNodes; ++n) {
    EXPECT_GE(series(n, "rill_isr_shrinks_total"), 0) << "node " << n;
    EXPECT_GE(series(n, "rill_isr_expands_total"), 0) << "node " << n;
  }

  const int leader = WaitForLeader("metered", 0);
  ASSERT_GT(leader, 0);
  const int follower = leader == 1 ? 2 : 1;
  const std::string lag_key =
      "rill_follower_lag_offsets{topic=\"metered\",partition=\"0\",follower=\"" +
      std::to_string(follower) + "\"}";
  // The producer knows the partition's leader before the follower stops (its metadata requests
  // then never wait on the stopped node). acks=1: the lag is the point here, not
  // min.insync.replicas (on a loaded host the other follower may drop out of the ISR too).
  ProducerConfig pc;
  pc.bootstrap = Bootstrap();
  pc.acks = 1;
  pc.linger_ms = 1;
  pc.retry_backoff_ms = 50;
  pc.retry_backoff_max_ms = 200;
  pc.request_timeout_ms = 5000;
  pc.delivery_timeout_ms = 20000;
  pc.metadata_max_age_ms = 1000;
  auto created = Producer::Create(pc);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto producer = std::move(created).value();
  auto warm = producer->Send(ToPartition("metered", 0, "before")).get();
  ASSERT_TRUE(warm.ok()) << warm.status().ToString();
  Node(follower).Signal(SIGSTOP);
  ASSERT_TRUE(test::PollUntil(
      [&] {
        return series(leader, partition_key("rill_partition_under_replicated", 0)) == 1 &&
               series(leader, "rill_under_replicated_partitions") >= 1;
      },
      30s, 50ms))
      << "the leader never reported metered-0 under-replicated";
  // Records written while the follower sleeps are its lag.
  constexpr int kRecords = 50;
  std::vector<std::future<Result<RecordMetadata>>> acks;
  for (int i = 0; i < kRecords; ++i) {
    acks.push_back(producer->Send(ToPartition("metered", 0, "lag")));
  }
  for (auto& f : acks) {
    auto md = f.get();
    ASSERT_TRUE(md.ok()) << md.status().ToString();
  }
  int64_t lag = -1;
  ASSERT_TRUE(
      test::PollUntil([&] { return (lag = series(leader, lag_key)) >= kRecords; }, 30s, 50ms))
      << "follower " << follower << " lag is " << lag << ", want at least " << kRecords << "; node "
      << leader << " /metrics:\n"
      << rill::testing::HttpGet(Node(leader).http_port(), "/metrics");

  Node(follower).Signal(SIGCONT);
  ASSERT_TRUE(test::PollUntil(
      [&] {
        return series(leader, partition_key("rill_partition_under_replicated", 0)) == 0 &&
               (lag = series(leader, lag_key)) == 0;
      },
      60s, 50ms))
      << "after SIGCONT: under-replicated "
      << series(leader, partition_key("rill_partition_under_replicated", 0)) << ", lag " << lag;
}

}  // namespace
}  // namespace rill::client

namespace rill::client {
namespace {

// A leader killed and restarted before it is fenced comes back as a new incarnation: it must not
// lead the epoch it led before (its log may have lost an unsynced tail that followers hold), so
// the controller bumps the leader epoch when it registers, and everything acknowledged survives.
TEST_F(ReplicationTest, RestartedLeaderNeverReusesItsLeaderEpoch) {
  CreateTopic("again", 1);
  const int leader = WaitForLeader("again", 0);
  ASSERT_GT(leader, 0);
  auto producer = MakeProducer();
  ASSERT_NE(producer, nullptr);
  for (int i = 0; i < 50; ++i) {
    auto md = producer->Send(ToPartition("again", 0, "a" + std::to_string(i))).get();
    ASSERT_TRUE(md.ok()) << md.status().ToString();
  }
  const int other = leader == 1 ? 2 : 1;
  auto before = PartitionOf(other, "again", 0);
  ASSERT_TRUE(before.has_value());
  Node(leader).Kill9();
  Launch(leader);  // at once: well within the session timeout
  Node(leader).WaitReady();
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_TRUE(test::PollUntil(
      [&] {
        auto now = PartitionOf(other, "again", 0);
        return now && now->leader_id() > 0 && now->leader_epoch() > before->leader_epoch();
      },
      30s, 20ms))
      << "the restarted leader's partition kept leader epoch " << before->leader_epoch();
  for (int i = 50; i < 100; ++i) {
    auto md = producer->Send(ToPartition("again", 0, "a" + std::to_string(i))).get();
    ASSERT_TRUE(md.ok()) << md.status().ToString();
  }
  const int now_leader = WaitForLeader("again", 0, kNodes);
  ASSERT_GT(now_leader, 0);
  auto read = Node(now_leader).ReadAll("again", 0);
  std::set<std::string> values;
  for (auto& r : read) values.insert(r.record.value.value_or(""));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(values.count("a" + std::to_string(i)), 1u) << i;
}

}  // namespace
}  // namespace rill::client
