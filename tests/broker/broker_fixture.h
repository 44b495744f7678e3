#pragma once

// An in-process Broker on free loopback ports with the test-only in-memory controller and log
// store, plus gRPC stubs and batch helpers.

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "server/broker.h"
#include "memory_controller.h"
#include "memory_log.h"
#include "rill/proto/record_batch.h"
#include "rill/v1/admin.grpc.pb.h"
#include "rill/v1/consumer.grpc.pb.h"
#include "rill/v1/metadata.grpc.pb.h"
#include "rill/v1/producer.grpc.pb.h"
#include "support/poll.h"

namespace rill::broker::testing {

inline std::string MakeBatch(int n, const std::string& prefix = "v",
                             batch::Compression c = batch::Compression::kNone, int64_t ts = 1000) {
  batch::BatchBuilder b(c);
  for (int i = 0; i < n; ++i) {
    std::string v = prefix + std::to_string(i);
    EXPECT_TRUE(b.Add(std::string_view("k" + std::to_string(i)), std::string_view(v), ts + i).ok());
  }
  auto r = b.Build();
  EXPECT_TRUE(r.ok());
  return std::move(r).value();
}

// GET http://127.0.0.1:port/path; returns "<status> <body>".
inline std::string HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "connect failed";
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  (void)::write(fd, req.data(), req.size());
  std::string resp;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) resp.append(buf, n);
  ::close(fd);
  auto sp = resp.find(' ');
  auto body = resp.find("\r\n\r\n");
  if (sp == std::string::npos || body == std::string::npos) return resp;
  return resp.substr(sp + 1, 3) + " " + resp.substr(body + 4);
}

class BrokerFixture : public ::testing::Test {
 protected:
  void StartBroker(bool auto_durable = true) {
    config_.node_id = 1;
    config_.client_listener = {"127.0.0.1", 0};
    config_.internal_listener = {"127.0.0.1", 0};
    config_.http_listener = {"127.0.0.1", 0};
    config_.voters = "";
    config_.data_dir = (std::filesystem::temp_directory_path() /
                        ("rill_broker_test_" + std::to_string(::getpid())))
                           .string();
    auto store = std::make_unique<MemoryLogStore>(auto_durable);
    store_ = store.get();
    broker_ = std::make_unique<Broker>(
        config_,
        [this](ControllerConfig c) {
          auto mc = std::make_unique<MemoryController>(std::move(c));
          controller_ = mc.get();
          return mc;
        },
        std::move(store));
    Status st = broker_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(256 << 20);
    channel_ = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(broker_->client_port()),
                                         grpc::InsecureChannelCredentials(), args);
    producer_ = v1::Producer::NewStub(channel_);
    consumer_ = v1::Consumer::NewStub(channel_);
    admin_ = v1::Admin::NewStub(channel_);
    metadata_ = v1::Metadata::NewStub(channel_);
  }

  // Publishes `img` as the next image and waits until the broker's partitions applied it (the
  // partition manager applies images on its own thread).
  void PublishAndWait(std::shared_ptr<MetadataImage> img) {
    img->applied_index = controller_->image()->applied_index + 1;
    const uint64_t index = img->applied_index;
    controller_->Publish(img);
    std::promise<bool> applied;
    broker_->partitions().WhenApplied(index, [&](bool ok) { applied.set_value(ok); });
    ASSERT_TRUE(applied.get_future().get());
  }

  void TearDown() override {
    if (broker_) broker_->Shutdown();
    std::filesystem::remove_all(config_.data_dir);
  }

  void CreateTopic(const std::string& name, int partitions,
                   std::map<std::string, std::string> configs = {}) {
    grpc::ClientContext ctx;
    v1::CreateTopicsRequest req;
    auto* t = req.add_topics();
    t->set_name(name);
    t->set_partitions(partitions);
    for (auto& [k, v] : configs) (*t->mutable_configs())[k] = v;
    v1::CreateTopicsResponse resp;
    ASSERT_TRUE(admin_->CreateTopics(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.results_size(), 1);
    ASSERT_EQ(resp.results(0).error(), v1::NONE) << resp.results(0).error_message();
  }

  v1::PartitionProduceResult Produce(const std::string& topic, int partition, std::string records,
                                     int acks = 1) {
    grpc::ClientContext ctx;
    v1::ProduceRequest req;
    req.set_acks(acks);
    auto* p = req.add_partitions();
    p->set_topic(topic);
    p->set_partition(partition);
    p->set_records(std::move(records));
    v1::ProduceResponse resp;
    grpc::Status st = producer_->Produce(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    if (resp.partitions_size() != 1) return {};
    return resp.partitions(0);
  }

  v1::FetchPartitionResult Fetch(const std::string& topic, int partition, int64_t offset,
                                 int max_wait_ms = 0, int min_bytes = 0) {
    grpc::ClientContext ctx;
    v1::FetchRequest req;
    req.set_max_wait_ms(max_wait_ms);
    req.set_min_bytes(min_bytes);
    auto* p = req.add_partitions();
    p->set_topic(topic);
    p->set_partition(partition);
    p->set_fetch_offset(offset);
    v1::FetchResponse resp;
    grpc::Status st = consumer_->Fetch(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    if (resp.partitions_size() != 1) return {};
    return resp.partitions(0);
  }

  BrokerConfig config_;
  MemoryLogStore* store_ = nullptr;
  MemoryController* controller_ = nullptr;
  std::unique_ptr<Broker> broker_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Producer::Stub> producer_;
  std::unique_ptr<v1::Consumer::Stub> consumer_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::unique_ptr<v1::Metadata::Stub> metadata_;
};

using ::rill::test::PollUntil;

}  // namespace rill::broker::testing
