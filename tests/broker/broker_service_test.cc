// The gRPC services of an in-process broker (in-memory controller and logs): produce, fetch,
// long poll, subscribe, list offsets, admin, metadata, errors, HTTP endpoints.

#include <future>
#include <random>

#include "broker_fixture.h"

namespace rill::broker::testing {
namespace {

class BrokerServiceTest : public BrokerFixture {};

std::vector<batch::Record> Decode(const std::string& records) {
  std::vector<batch::Record> out;
  batch::BatchIterator it(records);
  while (it.Next()) {
    auto rs = batch::DecodeRecords(it.batch());
    EXPECT_TRUE(rs.ok()) << rs.status().ToString();
    if (rs.ok()) out.insert(out.end(), rs->begin(), rs->end());
  }
  EXPECT_TRUE(it.status().ok());
  return out;
}

TEST_F(BrokerServiceTest, ProduceThenFetchRoundTrip) {
  StartBroker();
  CreateTopic("orders", 2);
  auto r = Produce("orders", 1, MakeBatch(10));
  EXPECT_EQ(r.error(), v1::NONE) << r.error_message();
  EXPECT_EQ(r.base_offset(), 0);
  EXPECT_EQ(r.last_offset(), 9);
  r = Produce("orders", 1, MakeBatch(5, "w"));
  EXPECT_EQ(r.base_offset(), 10);
  EXPECT_EQ(r.last_offset(), 14);

  auto f = Fetch("orders", 1, 0);
  ASSERT_EQ(f.error(), v1::NONE) << f.error_message();
  EXPECT_EQ(f.high_watermark(), 15);
  auto recs = Decode(f.records());
  ASSERT_EQ(recs.size(), 15u);
  EXPECT_EQ(*recs[3].value, "v3");
  EXPECT_EQ(*recs[3].key, "k3");
  EXPECT_EQ(*recs[12].value, "w2");
  // Stored batches carry the assigned offsets and the leader epoch.
  batch::BatchIterator it(f.records());
  ASSERT_TRUE(it.Next());
  EXPECT_EQ(it.header().base_offset, 0);
  EXPECT_EQ(it.header().partition_leader_epoch, 1);
  ASSERT_TRUE(it.Next());
  EXPECT_EQ(it.header().base_offset, 10);

  // Partition 0 is untouched.
  f = Fetch("orders", 0, 0);
  EXPECT_EQ(f.error(), v1::NONE);
  EXPECT_EQ(f.high_watermark(), 0);
  EXPECT_TRUE(f.records().empty());
}

TEST_F(BrokerServiceTest, ProduceErrorsPerPartition) {
  StartBroker();
  CreateTopic("t", 1, {{"max.message.bytes", "2000"}});
  // Unknown topic and partition.
  EXPECT_EQ(Produce("nope", 0, MakeBatch(1)).error(), v1::UNKNOWN_TOPIC);
  EXPECT_EQ(Produce("t", 5, MakeBatch(1)).error(), v1::UNKNOWN_PARTITION);
  // Random bytes.
  std::mt19937 rng(42);
  std::string junk(200, '\0');
  for (auto& c : junk) c = static_cast<char>(rng());
  EXPECT_EQ(Produce("t", 0, junk).error(), v1::CORRUPT_BATCH);
  // Wrong CRC.
  std::string b = MakeBatch(3);
  b[b.size() - 1] ^= 0x5a;
  auto r = Produce("t", 0, b);
  EXPECT_EQ(r.error(), v1::CORRUPT_BATCH) << r.error_message();
  // Trailing garbage after a valid batch.
  EXPECT_EQ(Produce("t", 0, MakeBatch(1) + "xx").error(), v1::CORRUPT_BATCH);
  EXPECT_EQ(Produce("t", 0, "").error(), v1::CORRUPT_BATCH);
  // Over max.message.bytes.
  r = Produce("t", 0, MakeBatch(200, std::string(50, 'x')));
  EXPECT_EQ(r.error(), v1::MESSAGE_TOO_LARGE) << r.error_message();
  // Nothing was appended; the partition still serves.
  r = Produce("t", 0, MakeBatch(2));
  EXPECT_EQ(r.error(), v1::NONE);
  EXPECT_EQ(r.base_offset(), 0);
}

// A log that is closed or failed is STORAGE_ERROR with its message, never NOT_LEADER (which
// sends clients looking for another leader): the error map (api/wire_errors.h) keeps the two apart.
TEST_F(BrokerServiceTest, AClosedOrFailedLogIsStorageErrorNotNotLeader) {
  StartBroker();
  CreateTopic("t", 1);
  for (Status st : {Status::Failed("t-0 is closed"), Status::IOError("injected: EIO"),
                    Status::NoSpace("injected: ENOSPC")}) {
    store_->Get("t", 0)->SetAppendError(st);
    auto r = Produce("t", 0, MakeBatch(1));
    EXPECT_EQ(r.error(), v1::STORAGE_ERROR) << st.ToString();
    EXPECT_EQ(r.error_message(), st.message());
    EXPECT_FALSE(r.has_leader()) << st.ToString();
  }
  store_->Get("t", 0)->SetAppendError(Status::OK());
  EXPECT_EQ(Produce("t", 0, MakeBatch(1)).error(), v1::NONE);
}

TEST_F(BrokerServiceTest, MalformedRequestsAreInvalidArgument) {
  StartBroker();
  CreateTopic("t", 1);
  {
    grpc::ClientContext ctx;
    v1::ProduceRequest req;
    req.set_acks(1);
    req.add_partitions()->set_partition(0);
    v1::ProduceResponse resp;
    auto st = producer_->Produce(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("partitions[0].topic"), std::string::npos);
  }
  {
    grpc::ClientContext ctx;
    v1::ProduceRequest req;
    req.set_acks(7);
    v1::ProduceResponse resp;
    auto st = producer_->Produce(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("acks"), std::string::npos);
  }
  {
    grpc::ClientContext ctx;
    v1::FetchRequest req;
    auto* p = req.add_partitions();
    p->set_topic("t");
    p->set_partition(-1);
    v1::FetchResponse resp;
    auto st = consumer_->Fetch(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("partitions[0].partition"), std::string::npos);
  }
}

TEST_F(BrokerServiceTest, FetchOutOfRange) {
  StartBroker();
  CreateTopic("t", 1);
  Produce("t", 0, MakeBatch(3));
  EXPECT_EQ(Fetch("t", 0, -1).error(), v1::OFFSET_OUT_OF_RANGE);
  EXPECT_EQ(Fetch("t", 0, 4).error(), v1::OFFSET_OUT_OF_RANGE);
  EXPECT_EQ(Fetch("t", 0, INT64_MAX).error(), v1::OFFSET_OUT_OF_RANGE);
  auto f = Fetch("t", 0, 3);
  EXPECT_EQ(f.error(), v1::NONE);
  EXPECT_TRUE(f.records().empty());
  EXPECT_EQ(Fetch("nope", 0, 0).error(), v1::UNKNOWN_TOPIC);
  // Offset in the middle of a batch: the whole batch comes back.
  f = Fetch("t", 0, 1);
  EXPECT_EQ(Decode(f.records()).size(), 3u);
}

TEST_F(BrokerServiceTest, LongPollIsWokenByProduce) {
  StartBroker();
  CreateTopic("t", 1);
  auto fut = std::async(std::launch::async, [&] { return Fetch("t", 0, 0, 30000, 1); });
  // The fetch is parked (no data); produce wakes it long before its 30 s wait.
  Produce("t", 0, MakeBatch(4));
  auto f = fut.get();
  EXPECT_EQ(f.error(), v1::NONE);
  EXPECT_EQ(Decode(f.records()).size(), 4u);
}

TEST_F(BrokerServiceTest, LongPollTimesOutEmpty) {
  StartBroker();
  CreateTopic("t", 1);
  auto f = Fetch("t", 0, 0, 50, 1);
  EXPECT_EQ(f.error(), v1::NONE);
  EXPECT_TRUE(f.records().empty());
  EXPECT_EQ(f.high_watermark(), 0);
}

TEST_F(BrokerServiceTest, AcksWaitForDurability) {
  StartBroker(/*auto_durable=*/false);
  CreateTopic("t", 1);
  // acks=0 returns before durability.
  auto r0 = Produce("t", 0, MakeBatch(1), /*acks=*/0);
  EXPECT_EQ(r0.error(), v1::NONE);
  EXPECT_EQ(r0.base_offset(), 0);
  // Not durable: consumers do not see it.
  EXPECT_EQ(Fetch("t", 0, 0).high_watermark(), 0);

  auto fut = std::async(std::launch::async, [&] { return Produce("t", 0, MakeBatch(2), 1); });
  auto log = store_->Get("t", 0);
  ASSERT_TRUE(PollUntil([&] { return log->log_end_offset().value() == 3; }));
  EXPECT_EQ(fut.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  // A position between the high watermark and the log end (a consumer that read from a leader
  // whose successor's high watermark still trails) is not out of range: nothing yet. Past the
  // log end it is.
  auto between = Fetch("t", 0, 2);
  EXPECT_EQ(between.error(), v1::NONE) << between.error_message();
  EXPECT_TRUE(between.records().empty());
  EXPECT_EQ(between.high_watermark(), 0);
  EXPECT_EQ(Fetch("t", 0, 3).error(), v1::NONE);
  EXPECT_EQ(Fetch("t", 0, 4).error(), v1::OFFSET_OUT_OF_RANGE);
  log->MakeDurable();
  auto r1 = fut.get();
  EXPECT_EQ(r1.error(), v1::NONE);
  EXPECT_EQ(r1.base_offset(), 1);
  EXPECT_EQ(Fetch("t", 0, 0).high_watermark(), 3);
  EXPECT_EQ(Decode(Fetch("t", 0, 2).records()).size(), 2u);  // now served
}

TEST_F(BrokerServiceTest, NotEnoughReplicasForAcksAll) {
  StartBroker();
  CreateTopic("t", 1, {{"min.insync.replicas", "2"}});
  EXPECT_EQ(Produce("t", 0, MakeBatch(1), -1).error(), v1::NOT_ENOUGH_REPLICAS);
  EXPECT_EQ(Produce("t", 0, MakeBatch(1), 1).error(), v1::NONE);
}

TEST_F(BrokerServiceTest, NotLeaderCarriesHint) {
  StartBroker();
  CreateTopic("t", 1);
  auto img = std::make_shared<MetadataImage>(*controller_->image());
  auto& pa = img->topics["t"].partitions[0];
  pa.leader = NodeId(2);
  pa.leader_epoch = LeaderEpoch(5);
  pa.replicas = {NodeId(1), NodeId(2)};
  img->brokers[NodeId(2)] =
      BrokerRegistration{NodeId(2), "10.0.0.2", 9092, 9093, "", false, "incarnation-2", ""};
  PublishAndWait(img);
  auto r = Produce("t", 0, MakeBatch(1));
  EXPECT_EQ(r.error(), v1::NOT_LEADER);
  EXPECT_EQ(r.leader().leader_id(), 2);
  EXPECT_EQ(r.leader().leader_epoch(), 5);
  EXPECT_EQ(r.leader().host(), "10.0.0.2");
  EXPECT_EQ(Fetch("t", 0, 0).error(), v1::NOT_LEADER);
}

TEST_F(BrokerServiceTest, ProduceStreamPipelines) {
  StartBroker();
  CreateTopic("t", 3);
  grpc::ClientContext ctx;
  auto stream = producer_->ProduceStream(&ctx);
  const int kRequests = 200;
  for (int i = 0; i < kRequests; ++i) {
    v1::ProduceRequest req;
    req.set_request_id(1000 + i);
    req.set_acks(1);
    auto* p = req.add_partitions();
    p->set_topic("t");
    p->set_partition(i % 3);
    p->set_records(MakeBatch(2));
    ASSERT_TRUE(stream->Write(req));
  }
  stream->WritesDone();
  std::set<uint64_t> ids;
  std::map<int, std::vector<int64_t>> offsets;
  v1::ProduceResponse resp;
  while (stream->Read(&resp)) {
    ids.insert(resp.request_id());
    ASSERT_EQ(resp.partitions(0).error(), v1::NONE);
    offsets[resp.partitions(0).partition()].push_back(resp.partitions(0).base_offset());
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(ids.size(), static_cast<size_t>(kRequests));
  EXPECT_EQ(*ids.begin(), 1000u);
  for (auto& [p, offs] : offsets) {
    std::sort(offs.begin(), offs.end());
    for (size_t i = 0; i < offs.size(); ++i) EXPECT_EQ(offs[i], static_cast<int64_t>(2 * i));
  }
}

TEST_F(BrokerServiceTest, ProduceStreamEndsOnMalformedRequest) {
  StartBroker();
  grpc::ClientContext ctx;
  auto stream = producer_->ProduceStream(&ctx);
  v1::ProduceRequest req;
  req.set_acks(3);
  stream->Write(req);
  stream->WritesDone();
  v1::ProduceResponse resp;
  while (stream->Read(&resp)) {
  }
  auto st = stream->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(BrokerServiceTest, SubscribePushesWithinCredit) {
  StartBroker();
  CreateTopic("t", 2);
  std::string b = MakeBatch(10);
  const size_t batch_size = b.size();
  for (int i = 0; i < 4; ++i) Produce("t", 0, MakeBatch(10));
  grpc::ClientContext ctx;
  auto stream = consumer_->Subscribe(&ctx);
  v1::SubscribeRequest start;
  auto* fp = start.mutable_start()->add_partitions();
  fp->set_topic("t");
  fp->set_partition(0);
  fp->set_fetch_offset(10);  // resume from the second batch
  fp = start.mutable_start()->add_partitions();
  fp->set_topic("t");
  fp->set_partition(1);
  fp->set_fetch_offset(0);
  ASSERT_TRUE(stream->Write(start));
  v1::SubscribeRequest credit;
  credit.mutable_credit()->set_bytes(static_cast<int64_t>(batch_size));  // one batch
  ASSERT_TRUE(stream->Write(credit));
  v1::SubscribeResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_EQ(resp.partitions_size(), 1);
  EXPECT_EQ(resp.partitions(0).partition(), 0);
  auto recs = Decode(resp.partitions(0).records());
  ASSERT_EQ(recs.size(), 10u);  // exactly one batch: credit allows no more
  batch::BatchIterator it(resp.partitions(0).records());
  ASSERT_TRUE(it.Next());
  EXPECT_EQ(it.header().base_offset, 10);

  // More credit: the rest of partition 0, then data produced later to partition 1.
  credit.mutable_credit()->set_bytes(1 << 20);
  ASSERT_TRUE(stream->Write(credit));
  ASSERT_TRUE(stream->Read(&resp));
  size_t got = 0;
  for (auto& p : resp.partitions()) got += Decode(p.records()).size();
  EXPECT_EQ(got, 20u);
  Produce("t", 1, MakeBatch(3));
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_EQ(resp.partitions_size(), 1);
  EXPECT_EQ(resp.partitions(0).partition(), 1);
  EXPECT_EQ(Decode(resp.partitions(0).records()).size(), 3u);
  ctx.TryCancel();
}

TEST_F(BrokerServiceTest, ListOffsets) {
  StartBroker();
  CreateTopic("t", 1);
  Produce("t", 0, MakeBatch(5, "a", batch::Compression::kNone, 1000));
  Produce("t", 0, MakeBatch(5, "b", batch::Compression::kNone, 5000));
  grpc::ClientContext ctx;
  v1::ListOffsetsRequest req;
  for (int64_t ts : {-1l, -2l, 4000l, 1002l, 99999l}) {
    auto* p = req.add_partitions();
    p->set_topic("t");
    p->set_partition(0);
    p->set_timestamp(ts);
  }
  v1::ListOffsetsResponse resp;
  ASSERT_TRUE(consumer_->ListOffsets(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.partitions_size(), 5);
  EXPECT_EQ(resp.partitions(0).offset(), 10);
  EXPECT_EQ(resp.partitions(1).offset(), 0);
  // By timestamp: the first record (not batch) with timestamp >= ts, and that record's timestamp.
  EXPECT_EQ(resp.partitions(2).offset(), 5);
  EXPECT_EQ(resp.partitions(2).timestamp(), 5000);
  EXPECT_EQ(resp.partitions(3).offset(), 2);  // inside the first batch (1000..1004)
  EXPECT_EQ(resp.partitions(3).timestamp(), 1002);
  EXPECT_EQ(resp.partitions(4).offset(), -1);
  EXPECT_EQ(resp.partitions(4).timestamp(), -1);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(resp.partitions(i).error(), v1::NONE) << i;

  // A failed lookup is that partition's STORAGE_ERROR, with its message.
  store_->Get("t", 0)->SetTimestampLookupError(Status::Corruption("bad batch at 5"));
  grpc::ClientContext ctx2;
  v1::ListOffsetsRequest req2;
  auto* p = req2.add_partitions();
  p->set_topic("t");
  p->set_partition(0);
  p->set_timestamp(1002);
  v1::ListOffsetsResponse resp2;
  ASSERT_TRUE(consumer_->ListOffsets(&ctx2, req2, &resp2).ok());
  ASSERT_EQ(resp2.partitions_size(), 1);
  EXPECT_EQ(resp2.partitions(0).error(), v1::STORAGE_ERROR);
  EXPECT_NE(resp2.partitions(0).error_message().find("bad batch at 5"), std::string::npos)
      << resp2.partitions(0).error_message();
  EXPECT_EQ(resp2.partitions(0).offset(), -1);
}

TEST_F(BrokerServiceTest, AdminAndMetadata) {
  StartBroker();
  CreateTopic("a", 3, {{"retention.ms", "1000"}});
  {
    grpc::ClientContext ctx;
    v1::CreateTopicsRequest req;
    req.add_topics()->set_name("bad name!");
    req.add_topics()->set_name("a");
    v1::CreateTopicsResponse resp;
    ASSERT_TRUE(admin_->CreateTopics(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.results(0).error(), v1::INVALID_TOPIC);
    EXPECT_EQ(resp.results(1).error(), v1::TOPIC_ALREADY_EXISTS);
  }
  Produce("a", 2, MakeBatch(7));
  {
    grpc::ClientContext ctx;
    v1::DescribeTopicsRequest req;
    req.add_topics("a");
    req.add_topics("zz");
    v1::DescribeTopicsResponse resp;
    ASSERT_TRUE(admin_->DescribeTopics(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.topics_size(), 2);
    ASSERT_EQ(resp.topics(0).partitions_size(), 3);
    EXPECT_EQ(resp.topics(0).partitions(2).log_end_offset(), 7);
    EXPECT_EQ(resp.topics(0).partitions(2).high_watermark(), 7);
    EXPECT_GT(resp.topics(0).partitions(2).size_bytes(), 0);
    EXPECT_EQ(resp.topics(0).configs().at("retention.ms"), "1000");
    EXPECT_EQ(resp.topics(0).configs().at("flush.policy"), "group");
    EXPECT_EQ(resp.topics(1).error(), v1::UNKNOWN_TOPIC);
  }
  {
    grpc::ClientContext ctx;
    v1::AlterConfigsRequest req;
    req.set_topic("a");
    (*req.mutable_set())["retention.ms"] = "2000";
    v1::AlterConfigsResponse resp;
    ASSERT_TRUE(admin_->AlterConfigs(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.result().error(), v1::NONE);
    EXPECT_EQ(store_->Get("a", 0)->config().at("retention.ms"), "2000");
  }
  {
    grpc::ClientContext ctx;
    v1::DescribeConfigsRequest req;
    req.set_topic("a");
    v1::DescribeConfigsResponse resp;
    ASSERT_TRUE(admin_->DescribeConfigs(&ctx, req, &resp).ok());
    bool found = false;
    for (auto& e : resp.entries()) {
      if (e.name() == "retention.ms") {
        found = true;
        EXPECT_EQ(e.value(), "2000");
        EXPECT_FALSE(e.is_default());
      }
      if (e.name() == "segment.bytes") {
        EXPECT_TRUE(e.is_default());
      }
    }
    EXPECT_TRUE(found);
  }
  {
    grpc::ClientContext ctx;
    v1::MetadataRequest req;
    v1::MetadataResponse resp;
    ASSERT_TRUE(metadata_->Get(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.brokers_size(), 1);
    EXPECT_EQ(resp.brokers(0).port(), broker_->client_port());
    ASSERT_EQ(resp.topics_size(), 1);
    EXPECT_EQ(resp.topics(0).partitions_size(), 3);
    EXPECT_EQ(resp.topics(0).partitions(1).leader_id(), 1);
  }
  {
    grpc::ClientContext ctx;
    v1::DeleteTopicsRequest req;
    req.add_topics("a");
    v1::DeleteTopicsResponse resp;
    ASSERT_TRUE(admin_->DeleteTopics(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.results(0).error(), v1::NONE);
    EXPECT_EQ(store_->removes(), 3);
    EXPECT_EQ(Produce("a", 0, MakeBatch(1)).error(), v1::UNKNOWN_TOPIC);
  }
}

TEST_F(BrokerServiceTest, HttpEndpoints) {
  StartBroker();
  CreateTopic("t", 1);
  Produce("t", 0, MakeBatch(1));
  int port = broker_->http_port();
  EXPECT_EQ(HttpGet(port, "/healthz"), "200 ok\n");
  EXPECT_EQ(HttpGet(port, "/readyz"), "200 ready\n");
  std::string m = HttpGet(port, "/metrics");
  EXPECT_EQ(m.substr(0, 3), "200");
  EXPECT_NE(m.find("rill_requests_total{api=\"produce\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("rill_partition_log_end_offset{topic=\"t\",partition=\"0\"} 1"),
            std::string::npos);
  EXPECT_NE(m.find("rill_request_latency_seconds_bucket{api=\"produce\",le=\"+Inf\"} 1"),
            std::string::npos);
  EXPECT_EQ(HttpGet(port, "/nope").substr(0, 3), "404");
}

}  // namespace
}  // namespace rill::broker::testing
