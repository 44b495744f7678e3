// The produce timeout: a Produce with acks=1/-1 whose append does not become durable within the
// request's timeout_ms (capped by limits.produce_timeout_ms) is answered REQUEST_TIMED_OUT for
// that partition, the records stay in the log, and durability arriving later is harmless. The
// fault seam is the in-memory log with manual durability (a flush that never completes until
// the test says so).

#include <future>

#include "broker_fixture.h"

namespace rill::broker::testing {
namespace {

class ProduceTimeoutTest : public BrokerFixture {
 protected:
  v1::ProduceResponse ProduceTo(const std::vector<std::pair<std::string, int>>& parts, int acks,
                                int timeout_ms, int n = 2) {
    grpc::ClientContext ctx;
    v1::ProduceRequest req;
    req.set_acks(acks);
    req.set_timeout_ms(timeout_ms);
    for (const auto& [topic, partition] : parts) {
      auto* p = req.add_partitions();
      p->set_topic(topic);
      p->set_partition(partition);
      p->set_records(MakeBatch(n));
    }
    v1::ProduceResponse resp;
    grpc::Status st = producer_->Produce(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }
};

TEST_F(ProduceTimeoutTest, BrokerLimitTimesOutAFlushThatNeverCompletes) {
  config_.produce_timeout_ms = 200;
  StartBroker(/*auto_durable=*/false);
  CreateTopic("t", 1);
  for (int acks : {1, -1}) {
    // timeout_ms 0 means the broker's limit; a larger request timeout is capped by it.
    for (int timeout_ms : {0, 3600000}) {
      auto resp = ProduceTo({{"t", 0}}, acks, timeout_ms);
      ASSERT_EQ(resp.partitions_size(), 1);
      const auto& r = resp.partitions(0);
      EXPECT_EQ(r.error(), v1::REQUEST_TIMED_OUT) << "acks " << acks << " timeout " << timeout_ms;
      EXPECT_NE(r.error_message().find("outcome is unknown"), std::string::npos)
          << r.error_message();
      EXPECT_EQ(r.base_offset(), -1);
    }
  }
  // Every timed-out append is in the log; once durable, consumers read all 8 records.
  auto log = store_->Get("t", 0);
  EXPECT_EQ(log->log_end_offset().value(), 8);
  EXPECT_EQ(Fetch("t", 0, 0).high_watermark(), 0);
  log->MakeDurable();
  auto f = Fetch("t", 0, 0);
  EXPECT_EQ(f.error(), v1::NONE);
  EXPECT_EQ(f.high_watermark(), 8);
  int records = 0;
  batch::BatchIterator it(f.records());
  while (it.Next()) records += it.header().record_count;
  EXPECT_TRUE(it.status().ok());
  EXPECT_EQ(records, 8);
  // The broker keeps serving: acks=0 does not wait, and a later durable append succeeds.
  EXPECT_EQ(ProduceTo({{"t", 0}}, 0, 0).partitions(0).error(), v1::NONE);
  auto fut = std::async(std::launch::async, [&] { return ProduceTo({{"t", 0}}, 1, 0); });
  ASSERT_TRUE(PollUntil([&] { return log->log_end_offset().value() == 12; }));
  log->MakeDurable();
  auto ok = fut.get();
  ASSERT_EQ(ok.partitions_size(), 1);
  EXPECT_EQ(ok.partitions(0).error(), v1::NONE);
  EXPECT_EQ(ok.partitions(0).base_offset(), 10);
}

TEST_F(ProduceTimeoutTest, RequestTimeoutBelowTheLimitApplies) {
  config_.produce_timeout_ms = 3600000;
  StartBroker(/*auto_durable=*/false);
  CreateTopic("t", 1);
  auto resp = ProduceTo({{"t", 0}}, 1, /*timeout_ms=*/100);
  ASSERT_EQ(resp.partitions_size(), 1);
  EXPECT_EQ(resp.partitions(0).error(), v1::REQUEST_TIMED_OUT);
  EXPECT_NE(resp.partitions(0).error_message().find("within 100 ms"), std::string::npos)
      << resp.partitions(0).error_message();
  // Late durability runs the leftover callback (the in-memory log would otherwise keep it).
  store_->Get("t", 0)->MakeDurable();
  EXPECT_EQ(Fetch("t", 0, 0).high_watermark(), 2);
}

// Only the partition still waiting times out; the one that became durable keeps its offsets.
TEST_F(ProduceTimeoutTest, OnlyTheLatePartitionTimesOut) {
  config_.produce_timeout_ms = 3600000;
  StartBroker(/*auto_durable=*/false);
  CreateTopic("t", 2);
  auto log0 = store_->Get("t", 0);
  auto log1 = store_->Get("t", 1);
  // Generous: partition 0 must be made durable before it passes.
  auto fut = std::async(std::launch::async, [&] {
    return ProduceTo({{"t", 0}, {"t", 1}}, 1, /*timeout_ms=*/2000);
  });
  ASSERT_TRUE(PollUntil(
      [&] { return log0->log_end_offset().value() == 2 && log1->log_end_offset().value() == 2; }));
  log0->MakeDurable();
  auto resp = fut.get();
  ASSERT_EQ(resp.partitions_size(), 2);
  EXPECT_EQ(resp.partitions(0).error(), v1::NONE) << resp.partitions(0).error_message();
  EXPECT_EQ(resp.partitions(0).base_offset(), 0);
  EXPECT_EQ(resp.partitions(0).last_offset(), 1);
  EXPECT_EQ(resp.partitions(1).error(), v1::REQUEST_TIMED_OUT);
  // Durability after the answer touches nothing that was sent.
  log1->MakeDurable();
  EXPECT_EQ(Fetch("t", 1, 0).high_watermark(), 2);
}

TEST_F(ProduceTimeoutTest, StreamAnswersTimedOutRequestsAndKeepsGoing) {
  config_.produce_timeout_ms = 3600000;
  StartBroker(/*auto_durable=*/false);
  CreateTopic("t", 1);
  auto log = store_->Get("t", 0);
  grpc::ClientContext ctx;
  auto stream = producer_->ProduceStream(&ctx);
  v1::ProduceRequest req;
  req.set_request_id(7);
  req.set_acks(1);
  req.set_timeout_ms(100);
  auto* p = req.add_partitions();
  p->set_topic("t");
  p->set_partition(0);
  p->set_records(MakeBatch(3));
  ASSERT_TRUE(stream->Write(req));
  v1::ProduceResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.request_id(), 7u);
  ASSERT_EQ(resp.partitions_size(), 1);
  EXPECT_EQ(resp.partitions(0).error(), v1::REQUEST_TIMED_OUT);

  // The same stream carries on: the next request is acknowledged once durable.
  req.set_request_id(8);
  req.set_timeout_ms(0);
  req.mutable_partitions(0)->set_records(MakeBatch(1));
  ASSERT_TRUE(stream->Write(req));
  ASSERT_TRUE(PollUntil([&] { return log->log_end_offset().value() == 4; }));
  log->MakeDurable();
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.request_id(), 8u);
  EXPECT_EQ(resp.partitions(0).error(), v1::NONE);
  EXPECT_EQ(resp.partitions(0).base_offset(), 3);
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&resp));
  EXPECT_TRUE(stream->Finish().ok());
}

}  // namespace
}  // namespace rill::broker::testing
