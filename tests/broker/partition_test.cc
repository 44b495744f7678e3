// Partition: one replication state, its own high watermark, and the one ack rule that every
// writer (produce, the group coordinator) goes through.

#include "partition/partition.h"

#include <gtest/gtest.h>

#include <atomic>

#include "memory_log.h"
#include "rill/proto/record_batch.h"

namespace rill::broker::testing {
namespace {

class Counter : public HighWatermarkWaiter {
 public:
  void OnHighWatermark() override { ++woken; }
  std::atomic<int> woken{0};
};

ReplicaState Leader(int32_t epoch, std::vector<int32_t> isr = {1}) {
  ReplicaState s;
  s.role = PartitionRole::kLeader;
  s.leader = NodeId(1);
  s.leader_epoch = LeaderEpoch(epoch);
  for (int32_t id : isr) s.isr.push_back(NodeId(id));
  s.replicas = s.isr;
  return s;
}

TEST(Partition, AcksOneAndAllWaitForTheHighWatermarkAcksZeroDoesNot) {
  auto log = std::make_shared<MemoryLog>(/*auto_durable=*/false);
  auto part = std::make_shared<Partition>("t", 0, log);
  part->SetReplicaState(Leader(3));
  auto waiter = std::make_shared<Counter>();
  part->AddWaiter(waiter);

  std::vector<Status> acked;
  std::string b1 = Batch(2), b2 = Batch(3), b3 = Batch(1);
  auto r1 =
      part->Append(std::span<char>(b1.data(), b1.size()), 1, [&](Status s) { acked.push_back(s); });
  ASSERT_TRUE(r1.ok());
  auto r2 = part->Append(std::span<char>(b2.data(), b2.size()), -1,
                         [&](Status s) { acked.push_back(s); });
  ASSERT_TRUE(r2.ok());
  bool zero_called = false;
  ASSERT_TRUE(
      part->Append(std::span<char>(b3.data(), b3.size()), 0, [&](Status) { zero_called = true; })
          .ok());
  EXPECT_EQ(r2->base_offset, Offset(2));
  EXPECT_TRUE(acked.empty()) << "acknowledged before durable";
  EXPECT_EQ(part->high_watermark(), Offset(0));
  EXPECT_EQ(waiter->woken.load(), 0);

  log->MakeDurable();
  ASSERT_EQ(acked.size(), 2u);
  EXPECT_TRUE(acked[0].ok());
  EXPECT_TRUE(acked[1].ok());
  EXPECT_FALSE(zero_called) << "acks=0 is answered after the append, not here";
  EXPECT_EQ(part->high_watermark(), Offset(6));
  EXPECT_EQ(waiter->woken.load(), 1);
  // The epoch was stamped into the batch.
  EXPECT_EQ(batch::DecodeHeader(b1.data()).partition_leader_epoch, 3);
}

TEST(Partition, AFailedFlushIsTheAckErrorAndTheHighWatermarkStays) {
  auto log = std::make_shared<MemoryLog>(false);
  auto part = std::make_shared<Partition>("t", 0, log);
  part->SetReplicaState(Leader(1));
  std::string b = Batch(1);
  Status got;
  ASSERT_TRUE(
      part->Append(std::span<char>(b.data(), b.size()), 1, [&](Status s) { got = s; }).ok());
  log->SetDurabilityError(Status::IOError("injected: fsync EIO"));
  log->MakeDurable();
  EXPECT_EQ(got.code(), StatusCode::kIOError);
  EXPECT_EQ(part->high_watermark(), Offset(0));
}

TEST(Partition, AlreadyDurableAcksInline) {
  auto log = std::make_shared<MemoryLog>(/*auto_durable=*/true);
  auto part = std::make_shared<Partition>("t", 0, log);
  part->SetReplicaState(Leader(1));
  std::string b = Batch(4);
  bool acked = false;
  ASSERT_TRUE(
      part->Append(std::span<char>(b.data(), b.size()), -1, [&](Status s) { acked = s.ok(); })
          .ok());
  EXPECT_TRUE(acked);
  EXPECT_EQ(part->high_watermark(), Offset(4));
}

TEST(Partition, OnlyTheLeaderAppendsAndTheStateIsOneWhole) {
  auto log = std::make_shared<MemoryLog>(true);
  auto part = std::make_shared<Partition>("t", 0, log);
  ReplicaState follower = Leader(7, {2, 1, 3});
  follower.role = PartitionRole::kFollower;
  follower.leader = NodeId(2);
  part->SetReplicaState(follower);
  std::string b = Batch(1);
  auto r = part->Append(std::span<char>(b.data(), b.size()), 1, nullptr);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(log->log_end_offset(), Offset(0));
  ReplicaState s = part->replica_state();
  EXPECT_EQ(s.leader, NodeId(2));
  EXPECT_EQ(s.leader_epoch, LeaderEpoch(7));
  EXPECT_EQ(s.isr, (std::vector<NodeId>{NodeId(2), NodeId(1), NodeId(3)}));
  EXPECT_EQ(part->isr_size(), 3);
  EXPECT_EQ(part->role(), PartitionRole::kFollower);
}

// A recovered log's durable end is where the high watermark starts.
TEST(Partition, HighWatermarkStartsAtTheRecoveredDurableEnd) {
  auto log = std::make_shared<MemoryLog>(true);
  std::string b = Batch(5);
  ASSERT_TRUE(log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(0), nullptr).ok());
  auto part = std::make_shared<Partition>("t", 0, log);
  EXPECT_EQ(part->high_watermark(), Offset(5));
}

}  // namespace
}  // namespace rill::broker::testing
