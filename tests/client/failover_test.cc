// Losing a broker: the bootstrap list (parsing, bad entries refused at Create), metadata asked of
// the next broker when one cannot be reached (the first bootstrap entry included), and the
// producer, consumer, admin client and group consumer carrying on against the other broker of a
// cluster of in-process fake brokers (real gRPC servers on free loopback ports) when one is shut
// down and the metadata moves its partitions.

#include <gtest/gtest.h>

#include <future>
#include <set>

#include "bootstrap_list.h"
#include "fake_broker.h"
#include "fake_group_coordinator.h"
#include "metadata_cache.h"
#include "rill/client/admin.h"
#include "rill/client/consumer.h"
#include "rill/client/producer.h"
#include "support/poll.h"

namespace rill::client {
namespace {

using namespace std::chrono_literals;
using internal::MetadataCache;
using internal::ParseBootstrapList;
using testing::FakeBroker;
using testing::FakeGroupCoordinator;

// An address where nothing listens: a fake broker's, after it shut down.
std::string DeadAddress() {
  FakeBroker gone;
  std::string address = gone.address();
  gone.Shutdown();
  return address;
}

// Two fake brokers as one cluster: node 1 (a) and node 2 (b), with the same view of who leads
// what; node 1 is the controller. Each serves its own group coordinator.
struct Cluster {
  explicit Cluster(bool offsets_topic = true) : a(&ca), b(&cb) {
    b.SetNodeId(2);
    for (FakeBroker* x : {&a, &b}) {
      x->SetBrokers({{1, a.address()}, {2, b.address()}});
      x->AddTopic("t", 1);
      if (offsets_topic) x->AddTopic("__consumer_offsets", 1);
    }
  }
  // Node 1 died: node 2's metadata names node 2 the leader of `tps`.
  void FailOverToB(std::initializer_list<TopicPartition> tps) {
    a.Shutdown();
    for (const auto& tp : tps) b.SetLeader(tp, 2);
  }
  std::string bootstrap() const { return a.address() + "," + b.address(); }

  FakeGroupCoordinator ca;
  FakeGroupCoordinator cb;
  FakeBroker a;
  FakeBroker b;
};

ProducerRecord Rec(std::string value) {
  ProducerRecord r;
  r.topic = "t";
  r.partition = 0;
  r.value = std::move(value);
  return r;
}

// ------------------------------------------------------------------ the bootstrap list

TEST(BootstrapListTest, ParsesEntriesAndToleratesWhitespace) {
  EXPECT_EQ(ParseBootstrapList("localhost:9092").value(),
            (std::vector<std::string>{"localhost:9092"}));
  EXPECT_EQ(ParseBootstrapList(" a:1 ,\tb:2,[::1]:9092 ").value(),
            (std::vector<std::string>{"a:1", "b:2", "[::1]:9092"}));
}

TEST(BootstrapListTest, NamesTheBadEntry) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"a:1,b", "'b'"},
      {"a:1,,b:2", "''"},
      {"a:1, b:0", "'b:0'"},
      {"a:1,b:x", "'b:x'"},
      {"a:1,b:70000", "'b:70000'"},
      {"a:1,::1:9092", "'::1:9092'"},
      {"", "empty"},
      {" ", "empty"},
      {"a:1,", "''"},
  };
  for (const auto& [text, named] : cases) {
    auto r = ParseBootstrapList(text);
    ASSERT_FALSE(r.ok()) << "'" << text << "' accepted";
    EXPECT_TRUE(r.status().code() == StatusCode::kInvalidArgument) << r.status().ToString();
    EXPECT_NE(r.status().message().find(named), std::string::npos)
        << "'" << text << "': " << r.status().ToString();
  }
}

TEST(BootstrapListTest, CreateRefusesABadEntry) {
  ProducerConfig pc;
  pc.bootstrap = "127.0.0.1:9092, broker2";
  auto p = Producer::Create(pc);
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(p.status().code() == StatusCode::kInvalidArgument);
  EXPECT_NE(p.status().message().find("'broker2'"), std::string::npos) << p.status().ToString();

  ConsumerConfig cc;
  cc.bootstrap = "127.0.0.1:9092,127.0.0.1:99999";
  auto c = Consumer::Create(cc);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(c.status().code() == StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("'127.0.0.1:99999'"), std::string::npos);

  AdminConfig ac;
  ac.bootstrap = "";
  auto a = Admin::Create(ac);
  ASSERT_FALSE(a.ok());
  EXPECT_TRUE(a.status().code() == StatusCode::kInvalidArgument);
}

// ------------------------------------------------------------------ metadata

TEST(MetadataFailoverTest, RefreshMovesOnWhenABrokerGoesAway) {
  Cluster cluster;
  MetadataCache meta(cluster.bootstrap(), 5000);
  ASSERT_TRUE(meta.Refresh({"t"}).ok());
  EXPECT_EQ(cluster.a.metadata_requests(), 1);
  EXPECT_EQ(meta.LeaderOf({"t", 0}), 1);

  // The first bootstrap entry dies: the next refresh is answered by node 2.
  cluster.FailOverToB({{"t", 0}});
  auto r = meta.Refresh({"t"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(cluster.b.metadata_requests(), 1);
  EXPECT_EQ(meta.LeaderOf({"t", 0}), 2);
  EXPECT_EQ(meta.AddressOf(2), cluster.b.address());
  // ... and node 2 stays first: no second attempt at the dead one.
  ASSERT_TRUE(meta.Refresh({"t"}).ok());
  EXPECT_EQ(cluster.b.metadata_requests(), 2);
  EXPECT_EQ(meta.LiveAddress(), cluster.b.address());
}

TEST(MetadataFailoverTest, ADeadFirstBootstrapEntryIsSkipped) {
  FakeBroker live;
  live.AddTopic("t", 3);
  MetadataCache meta(DeadAddress() + ", " + live.address(), 5000);
  auto r = meta.Refresh({"t"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(meta.PartitionCount("t"), 3);
  EXPECT_EQ(meta.LiveAddress(), live.address());
}

TEST(MetadataFailoverTest, BrokersLearnedFromMetadataAreAskedWhenTheBootstrapDies) {
  Cluster cluster;
  MetadataCache meta(cluster.a.address(), 5000);  // node 2 only known from metadata
  ASSERT_TRUE(meta.Refresh({"t"}).ok());
  cluster.FailOverToB({{"t", 0}});
  auto r = meta.Refresh({"t"});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(meta.LeaderOf({"t", 0}), 2);
}

TEST(MetadataFailoverTest, NoBrokerAnsweringIsAnErrorNamingThem) {
  const std::string one = DeadAddress();
  const std::string two = DeadAddress();
  MetadataCache meta(one + "," + two, 2000);
  auto r = meta.Refresh({"t"});
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().code() == StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_NE(r.status().message().find(one), std::string::npos) << r.status().ToString();
  EXPECT_NE(r.status().message().find(two), std::string::npos) << r.status().ToString();
}

TEST(MetadataFailoverTest, AnUnreachableLeaderIsForgottenUntilTheNextRefresh) {
  Cluster cluster;
  MetadataCache meta(cluster.bootstrap(), 5000);
  ASSERT_TRUE(meta.Refresh({"t", "__consumer_offsets"}).ok());
  cluster.b.SetLeader({"t", 0}, 2);
  meta.ReportUnreachable(cluster.a.address());
  EXPECT_EQ(meta.LeaderOf({"t", 0}), -1);
  EXPECT_EQ(meta.LeaderOf({"__consumer_offsets", 0}), -1);
  // The next refresh goes to node 2 first (node 1 was reported).
  ASSERT_TRUE(meta.Refresh({"t"}).ok());
  EXPECT_EQ(cluster.a.metadata_requests(), 1);
  EXPECT_EQ(cluster.b.metadata_requests(), 1);
  EXPECT_EQ(meta.LeaderOf({"t", 0}), 2);
}

// ------------------------------------------------------------------ producer

ProducerConfig FastRetries(const std::string& bootstrap) {
  ProducerConfig c;
  c.bootstrap = bootstrap;
  c.linger_ms = 0;
  c.retry_backoff_ms = 5;
  c.retry_backoff_max_ms = 50;
  c.request_timeout_ms = 5000;
  c.delivery_timeout_ms = 60000;
  return c;
}

TEST(ProducerFailoverTest, ResendsToTheNewLeaderWhenTheOldOneDies) {
  Cluster cluster;
  auto p = Producer::Create(FastRetries(cluster.bootstrap()));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->config().acks, -1);  // the default: all in-sync replicas
  for (int i = 0; i < 5; ++i) {
    auto r = (*p)->Send(Rec("before-" + std::to_string(i))).get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  ASSERT_EQ(cluster.a.Records({"t", 0}).size(), 5u);

  // Node 1 dies while node 2's metadata still names node 1 (the election has not happened yet):
  // the sends wait, retrying, instead of failing.
  const int metadata_before = cluster.b.metadata_requests();
  cluster.a.Shutdown();
  std::vector<std::future<Result<RecordMetadata>>> pending;
  for (int i = 0; i < 20; ++i) pending.push_back((*p)->Send(Rec("after-" + std::to_string(i))));
  ASSERT_TRUE(
      rill::test::PollUntil([&] { return cluster.b.metadata_requests() >= metadata_before + 2; }));
  for (auto& f : pending) {
    ASSERT_EQ(f.wait_for(0ms), std::future_status::timeout)
        << "completed before a leader was known";
  }

  // The new leader is elected: node 2. Every record lands there, once, in order.
  cluster.b.SetLeader({"t", 0}, 2);
  for (auto& f : pending) {
    ASSERT_EQ(f.wait_for(20s), std::future_status::ready);
    auto r = f.get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  auto records = cluster.b.Records({"t", 0});
  ASSERT_EQ(records.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(records[i].value, "after-" + std::to_string(i));
}

// A batch refused for want of a leader waits out no backoff once another leader is named (Kafka's
// KIP-951): the producer asks for metadata every retry_backoff_ms while the batch waits, and
// sends it as soon as the leader moved. Node 1 answers NOT_LEADER while metadata still names it,
// so the batch's backoff doubles from 1 ms; after its 13th attempt it is 4,096 ms, and the record
// must still land at node 2 well before that.
TEST(ProducerFailoverTest, ABatchGoesToTheNewLeaderWithoutWaitingOutItsBackoff) {
  Cluster cluster;
  ProducerConfig c = FastRetries(cluster.bootstrap());
  c.retry_backoff_ms = 1;
  c.retry_backoff_max_ms = 600000;
  c.delivery_timeout_ms = 900000;
  auto p = Producer::Create(c);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE((*p)->Send(Rec("before")).get().ok());

  cluster.a.FailNextProduces(1000, v1::NOT_LEADER);
  const int requests_before = cluster.a.produce_requests();
  auto pending = (*p)->Send(Rec("after"));
  ASSERT_TRUE(rill::test::PollUntil(
      [&] { return cluster.a.produce_requests() >= requests_before + 13; }, 30s));
  cluster.a.SetLeader({"t", 0}, 2);
  cluster.b.SetLeader({"t", 0}, 2);
  ASSERT_EQ(pending.wait_for(3s), std::future_status::ready)
      << "the batch waits out its backoff although node 2 leads";
  auto r = pending.get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto records = cluster.b.Records({"t", 0});
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].value, "after");
  EXPECT_LT(cluster.a.produce_requests(), requests_before + 15);
}

// Both nodes name node 2 the leader of t-0; returns once the producer (metadata_max_age_ms 100)
// has asked for metadata twice since, so it knows.
void MoveLeadershipToB(Cluster& cluster) {
  cluster.a.SetLeader({"t", 0}, 2);
  cluster.b.SetLeader({"t", 0}, 2);
  const int metadata_before = cluster.b.metadata_requests() + cluster.a.metadata_requests();
  ASSERT_TRUE(rill::test::PollUntil([&] {
    return cluster.b.metadata_requests() + cluster.a.metadata_requests() >= metadata_before + 2;
  }));
}

// Without idempotence, max_in_flight = 1 promises strict order per partition: a batch still
// out at the old leader (which stopped answering) must not be overtaken at the new one by later
// batches of the same partition (rill-chaos found that: tests/fault/README.md, known bug 2).
TEST(ProducerFailoverTest, MaxInFlightOneKeepsOrderWhenALeaderStopsAnsweringMidBatch) {
  Cluster cluster;
  ProducerConfig c = FastRetries(cluster.bootstrap());
  c.acks = 1;
  c.enable_idempotence = false;
  c.max_in_flight = 1;
  c.request_timeout_ms = 1500;
  c.metadata_max_age_ms = 100;  // the new leader is learned while the first batch is out
  auto p = Producer::Create(c);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE((*p)->Send(Rec("r0")).get().ok());

  cluster.a.SetSilent(true);
  auto r1 = (*p)->Send(Rec("r1"));
  ASSERT_TRUE(rill::test::PollUntil([&] { return cluster.a.produce_requests() >= 2; }));
  ASSERT_NO_FATAL_FAILURE(MoveLeadershipToB(cluster));
  // Node 2 leads now, as the producer knows; r1 is still unanswered at node 1.
  auto r2 = (*p)->Send(Rec("r2"));
  auto r3 = (*p)->Send(Rec("r3"));
  for (auto* f : {&r1, &r2, &r3}) {
    ASSERT_EQ(f->wait_for(20s), std::future_status::ready);
    auto r = f->get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  auto records = cluster.b.Records({"t", 0});
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].value, "r1");
  EXPECT_EQ(records[1].value, "r2");
  EXPECT_EQ(records[2].value, "r3");
}

// Idempotence: the broker recognises a retry only among a producer's last 128 batches of a
// partition, so while one batch is stuck (its leader stopped answering) at most 127 later
// batches of the partition may be sent, wherever they go: else the stuck batch, retried, would
// be too far behind to be recognised, be refused as out of order and be written twice under a
// new epoch (rill-chaos --faults pause found that).
TEST(ProducerFailoverTest, IdempotentWindowHoldsLaterBatchesBehindAStuckOne) {
  Cluster cluster;
  cluster.a.OfferProducerIds();
  cluster.b.OfferProducerIds();
  ProducerConfig c = FastRetries(cluster.bootstrap());
  c.enable_idempotence = true;
  c.batch_size = 16;  // one record per batch
  c.request_timeout_ms = 3000;
  c.metadata_max_age_ms = 100;
  auto p = Producer::Create(c);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_TRUE((*p)->Send(Rec("first")).get().ok());

  cluster.a.SetSilent(true);
  auto stuck = (*p)->Send(Rec("stuck"));
  ASSERT_TRUE(rill::test::PollUntil([&] { return cluster.a.produce_requests() >= 2; }));
  ASSERT_NO_FATAL_FAILURE(MoveLeadershipToB(cluster));
  std::vector<std::future<Result<RecordMetadata>>> later;
  for (int i = 0; i < 300; ++i) later.push_back((*p)->Send(Rec("later-" + std::to_string(i))));
  // 127 later batches reach node 2 and are acknowledged; the 128th waits for the stuck one,
  // which is acknowledged first (after its request times out and it is retried at node 2).
  ASSERT_EQ(later[127].wait_for(20s), std::future_status::ready);
  EXPECT_EQ(stuck.wait_for(0ms), std::future_status::ready)
      << "a batch 128 places behind an unacknowledged one was acknowledged before it";
  ASSERT_EQ(stuck.wait_for(20s), std::future_status::ready);
  EXPECT_TRUE(stuck.get().ok());
  for (auto& f : later) {
    ASSERT_EQ(f.wait_for(20s), std::future_status::ready);
    EXPECT_TRUE(f.get().ok());
  }
  auto records = cluster.b.Records({"t", 0});
  ASSERT_EQ(records.size(), 301u);
  EXPECT_EQ(records[127].value, "stuck");
}

TEST(ProducerFailoverTest, AFirstSendWorksWithTheFirstBootstrapEntryDead) {
  FakeBroker live;
  live.AddTopic("t", 1);
  auto p = Producer::Create(FastRetries(DeadAddress() + "," + live.address()));
  ASSERT_TRUE(p.ok());
  auto r = (*p)->Send(Rec("x")).get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(live.Records({"t", 0}).size(), 1u);
}

TEST(ProducerFailoverTest, RetriesUnknownTopicFromALaggingLeader) {
  // Node 2 leads t-0 per metadata but has not applied the topic yet: UNKNOWN_TOPIC, retried.
  FakeBroker broker;
  broker.AddTopic("t", 1);
  broker.FailNextProduces(3, v1::UNKNOWN_TOPIC);
  auto p = Producer::Create(FastRetries(broker.address()));
  ASSERT_TRUE(p.ok());
  const int metadata_before = broker.metadata_requests();
  auto r = (*p)->Send(Rec("x")).get();
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(broker.Records({"t", 0}).size(), 1u);
  EXPECT_GT(broker.metadata_requests(), metadata_before);
}

// ------------------------------------------------------------------ consumer

void AppendRecords(FakeBroker& broker, int first, int n) {
  batch::BatchBuilder b(batch::Compression::kNone);
  for (int i = first; i < first + n; ++i) {
    ASSERT_TRUE(
        b.Add("k", "v" + std::to_string(i), 1000 + i, std::vector<batch::RecordHeader>{}).ok());
  }
  auto bytes = b.Build();
  ASSERT_TRUE(bytes.ok());
  broker.AppendBatch({"t", 0}, std::move(bytes).value());
}

// Polls until `n` records arrived or a deadline passes.
std::vector<ConsumerRecord> PollN(Consumer& c, size_t n) {
  std::vector<ConsumerRecord> all;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (all.size() < n && std::chrono::steady_clock::now() < deadline) {
    auto r = c.Poll(50ms);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) break;
    for (auto& rec : *r) all.push_back(std::move(rec));
  }
  return all;
}

TEST(ConsumerFailoverTest, ContinuesAtTheNewLeaderWhenTheFirstBootstrapBrokerDies) {
  Cluster cluster;
  for (FakeBroker* x : {&cluster.a, &cluster.b}) AppendRecords(*x, 0, 5);  // replicated
  ConsumerConfig cc;
  cc.bootstrap = cluster.bootstrap();
  cc.auto_offset_reset = OffsetReset::kEarliest;
  cc.fetch_max_wait_ms = 50;
  cc.retry_backoff_ms = 5;
  cc.retry_backoff_max_ms = 50;
  auto c = Consumer::Create(cc);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Assign({{"t", 0}}).ok());
  ASSERT_EQ(PollN(**c, 5).size(), 5u);

  cluster.FailOverToB({{"t", 0}});
  AppendRecords(cluster.b, 5, 5);
  auto more = PollN(**c, 5);
  ASSERT_EQ(more.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(more[i].offset, 5 + i);
  EXPECT_EQ(*(*c)->Position({"t", 0}), 10);
}

TEST(ConsumerFailoverTest, WaitsForALeaderWithoutAskingABrokerThatDoesNotLead) {
  Cluster cluster;
  for (FakeBroker* x : {&cluster.a, &cluster.b}) AppendRecords(*x, 0, 5);
  ConsumerConfig cc;
  cc.bootstrap = cluster.bootstrap();
  cc.auto_offset_reset = OffsetReset::kEarliest;
  cc.fetch_max_wait_ms = 50;
  cc.retry_backoff_ms = 5;
  cc.retry_backoff_max_ms = 50;
  auto c = Consumer::Create(cc);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Assign({{"t", 0}}).ok());
  ASSERT_EQ(PollN(**c, 5).size(), 5u);

  // Node 1 dies; node 2's metadata shows no leader while the election runs. The consumer keeps
  // asking metadata, reports no error, and fetches from nobody.
  cluster.a.Shutdown();
  cluster.b.SetLeader({"t", 0}, -1);
  const int metadata_before = cluster.b.metadata_requests();
  ASSERT_TRUE(rill::test::PollUntil([&] {
    auto r = (*c)->Poll(10ms);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return cluster.b.metadata_requests() >= metadata_before + 3;
  }));
  EXPECT_EQ(cluster.b.fetches_of({"t", 0}), 0);

  cluster.b.SetLeader({"t", 0}, 2);
  AppendRecords(cluster.b, 5, 5);
  auto more = PollN(**c, 5);
  ASSERT_EQ(more.size(), 5u);
  EXPECT_EQ(more.front().offset, 5);
  EXPECT_EQ(more.back().offset, 9);
}

// ------------------------------------------------------------------ admin

TEST(AdminFailoverTest, MetadataComesFromTheNextBroker) {
  Cluster cluster;
  AdminConfig ac;
  ac.bootstrap = cluster.bootstrap();
  ac.request_timeout_ms = 5000;
  auto admin = Admin::Create(ac);
  ASSERT_TRUE(admin.ok());
  ASSERT_TRUE((*admin)->Metadata({"t"}).ok());
  cluster.FailOverToB({{"t", 0}});
  auto md = (*admin)->Metadata({"t"});
  ASSERT_TRUE(md.ok()) << md.status().ToString();
  ASSERT_EQ(md->topics.size(), 1u);
  EXPECT_EQ(md->topics[0].partitions[0].leader_id, 2);
}

TEST(AdminFailoverTest, GroupCallsFollowTheCoordinatorToALiveBroker) {
  Cluster cluster;
  cluster.ca.SetCommitted({"t", 0}, 7);
  cluster.cb.SetCommitted({"t", 0}, 9);
  AdminConfig ac;
  ac.bootstrap = cluster.bootstrap();
  ac.request_timeout_ms = 5000;
  auto admin = Admin::Create(ac);
  ASSERT_TRUE(admin.ok());
  auto before = (*admin)->FetchOffsets("g", {{"t", 0}});
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  ASSERT_EQ(before->size(), 1u);
  EXPECT_EQ((*before)[0].offset, 7);
  // The coordinator's broker dies; its __consumer_offsets partition moves to node 2.
  cluster.FailOverToB({{"__consumer_offsets", 0}});
  auto after = (*admin)->FetchOffsets("g", {{"t", 0}});
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].offset, 9);
}

// ------------------------------------------------------------------ group consumer

class NoopListener : public ConsumerRebalanceListener {};

int JoinsAt(const FakeGroupCoordinator& coordinator) {
  int n = 0;
  for (const auto& e : coordinator.events()) {
    n += e.kind == FakeGroupCoordinator::Event::kHeartbeat && e.epoch == 0;
  }
  return n;
}

TEST(GroupFailoverTest, TheConsumerFindsTheCoordinatorAgainWhenItsBrokerDies) {
  Cluster cluster;
  cluster.ca.SetTarget({{"t", 0}});
  cluster.cb.SetTarget({{"t", 0}});
  for (FakeBroker* x : {&cluster.a, &cluster.b}) AppendRecords(*x, 0, 3);
  ConsumerConfig cc;
  cc.bootstrap = cluster.bootstrap();
  cc.group_id = "g";
  cc.auto_offset_reset = OffsetReset::kEarliest;
  cc.fetch_max_wait_ms = 20;
  cc.retry_backoff_ms = 5;
  cc.retry_backoff_max_ms = 50;
  cc.auto_commit_interval_ms = 3600000;
  auto c = Consumer::Create(cc);
  ASSERT_TRUE(c.ok());
  NoopListener listener;
  ASSERT_TRUE((*c)->Subscribe({"t"}, &listener).ok());
  ASSERT_EQ(PollN(**c, 3).size(), 3u);
  EXPECT_EQ(JoinsAt(cluster.ca), 1);

  // Node 1 (coordinator and leader) dies; node 2 takes both over. Node 2's coordinator does not
  // know the member: it rejoins there and reads on from its committed position (none: earliest).
  cluster.FailOverToB({{"t", 0}, {"__consumer_offsets", 0}});
  AppendRecords(cluster.b, 3, 2);
  ASSERT_TRUE(rill::test::PollUntil([&] {
    (void)(*c)->Poll(10ms);
    return JoinsAt(cluster.cb) >= 1;
  }));
  EXPECT_TRUE((*c)->Close().ok());
}

TEST(GroupFailoverTest, WithoutOffsetsTopicTheControllerIsAsked) {
  // __consumer_offsets does not exist yet and only the controller (node 1) creates it; node 2,
  // the first bootstrap entry, answers COORDINATOR_NOT_AVAILABLE. The group starts anyway.
  Cluster cluster(/*offsets_topic=*/false);
  cluster.cb.SetUnavailable(true);
  cluster.ca.SetTarget({{"t", 0}});
  cluster.ca.SetCommitted({"t", 0}, 2);
  AppendRecords(cluster.a, 0, 5);
  ConsumerConfig cc;
  cc.bootstrap = cluster.b.address() + "," + cluster.a.address();
  cc.group_id = "g";
  cc.auto_offset_reset = OffsetReset::kEarliest;
  cc.fetch_max_wait_ms = 20;
  cc.retry_backoff_ms = 5;
  cc.retry_backoff_max_ms = 50;
  cc.auto_commit_interval_ms = 3600000;
  auto c = Consumer::Create(cc);
  ASSERT_TRUE(c.ok());
  NoopListener listener;
  ASSERT_TRUE((*c)->Subscribe({"t"}, &listener).ok());
  auto records = PollN(**c, 3);  // from the committed offset 2
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records.front().offset, 2);
  EXPECT_EQ(JoinsAt(cluster.ca), 1);
  EXPECT_GT(cluster.cb.unavailable_answers(), 0);
  EXPECT_TRUE((*c)->Close().ok());

  AdminConfig ac;
  ac.bootstrap = cluster.b.address() + "," + cluster.a.address();
  ac.request_timeout_ms = 5000;
  auto admin = Admin::Create(ac);
  ASSERT_TRUE(admin.ok());
  auto offsets = (*admin)->FetchOffsets("g", {{"t", 0}});
  ASSERT_TRUE(offsets.ok()) << offsets.status().ToString();
  ASSERT_EQ(offsets->size(), 1u);
  EXPECT_TRUE((*offsets)[0].status.ok()) << (*offsets)[0].status.ToString();
}

}  // namespace
}  // namespace rill::client
