// The leader's ReplicaFetch service over a real gRPC server on loopback, with partitions in
// memory: what a follower gets from a broker that is shutting down.

#include "replica/replica_fetch_service.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "memory_log.h"
#include "rill/proto/record_batch.h"

namespace rill::broker::testing {
namespace {

namespace pb = internal::v1;

pb::ReplicaFetchRequest Request(int64_t fetch_offset, int32_t last_fetched_epoch) {
  pb::ReplicaFetchRequest req;
  req.set_follower_id(2);
  req.set_max_wait_ms(500);
  req.set_max_bytes(1 << 20);
  req.set_partition_max_bytes(1 << 20);
  pb::ReplicaFetchPartition* p = req.add_partitions();
  p->set_topic("t");
  p->set_topic_id("id1");
  p->set_partition(0);
  p->set_current_leader_epoch(1);
  p->set_fetch_offset(fetch_offset);
  p->set_last_fetched_epoch(last_fetched_epoch);
  p->set_durable_end(fetch_offset);
  return req;
}

TEST(ReplicaFetchService, AStoppingLeaderSendsWhatItHasThenEndsTheStreamInsteadOfAnsweringEmpty) {
  MemoryLogStore store;
  PartitionManager pm(NodeId(1), &store, {{"flush.policy", "none"}});
  PartitionAssignment a;
  a.partition = 0;
  a.leader = NodeId(1);
  a.leader_epoch = LeaderEpoch(1);
  a.replicas = {NodeId(1), NodeId(2)};
  a.isr = a.replicas;
  auto image = std::make_shared<MetadataImage>();
  image->topics["t"] = TopicMetadata{"t", "id1", false, {a}, {}};
  pm.ApplyImage(image);
  std::shared_ptr<Partition> part = pm.Get("t", 0);
  ASSERT_NE(part, nullptr);
  std::string b = Batch(3);
  ASSERT_TRUE(part->Append(std::span<char>(b.data(), b.size()), /*acks=*/0, nullptr).ok());

  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  std::thread io_thread([&] { io.run(); });
  ReplicaFetchService service(&pm, &io, {});
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto stub = pb::ReplicaFetch::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));

  // Before the stop, a follower at the end is parked (here: until the append below).
  // Deadlines: a stream the server never ends fails the test instead of hanging it.
  auto deadline = [] { return std::chrono::system_clock::now() + std::chrono::seconds(10); };
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline());
    auto stream = stub->Fetch(&ctx);
    ASSERT_TRUE(stream->Write(Request(3, 1)));
    std::string more = Batch(1);
    ASSERT_TRUE(part->Append(std::span<char>(more.data(), more.size()), 0, nullptr).ok());
    pb::ReplicaFetchResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    ASSERT_EQ(resp.partitions_size(), 1);
    EXPECT_EQ(resp.partitions(0).error(), pb::REPLICA_FETCH_NONE);
    EXPECT_FALSE(resp.partitions(0).records().empty());
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
  }

  service.Stop();
  grpc::ClientContext ctx;
  ctx.set_deadline(deadline());
  auto stream = stub->Fetch(&ctx);
  // What the follower lacks is still sent...
  ASSERT_TRUE(stream->Write(Request(0, -1)));
  pb::ReplicaFetchResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_EQ(resp.partitions_size(), 1);
  EXPECT_EQ(resp.partitions(0).error(), pb::REPLICA_FETCH_NONE);
  EXPECT_FALSE(resp.partitions(0).records().empty());
  EXPECT_EQ(resp.partitions(0).log_end_offset(), 4);
  // ...but a follower with everything gets no empty answer to fetch again at once: the stream
  // ends, and the follower backs off.
  ASSERT_TRUE(stream->Write(Request(4, 1)));
  EXPECT_FALSE(stream->Read(&resp));
  grpc::Status st = stream->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << st.error_message();
  EXPECT_NE(st.error_message().find("shutting down"), std::string::npos) << st.error_message();

  server->Shutdown();
  work.reset();
  io.stop();
  io_thread.join();
}

}  // namespace
}  // namespace rill::broker::testing
