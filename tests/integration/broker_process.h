#pragma once

// Runs the real rill-broker binary (RILL_BROKER_BINARY) on free loopback ports with a temporary
// data dir, waits for /readyz with a deadline, and hands out gRPC stubs.

#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "process.h"
#include "rill/proto/record_batch.h"
#include "rill/v1/admin.grpc.pb.h"
#include "rill/v1/consumer.grpc.pb.h"
#include "rill/v1/metadata.grpc.pb.h"
#include "rill/v1/producer.grpc.pb.h"
#include "support/free_port.h"
#include "support/poll.h"

namespace rill::testing {

// GET http://127.0.0.1:port/path; returns "<status> <body>" ("" when it cannot connect).
inline std::string HttpGet(int port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return "";
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
  (void)!::write(fd, req.data(), req.size());
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

// A loopback TCP port that was free a moment ago (for listeners that must be known before a
// process starts, such as the controller voters' internal ports); 0 on failure.
// Below the ephemeral port range: tests/support/free_port.h says why.
using rill::test::FreePort;

class BrokerProcess {
 public:
  explicit BrokerProcess(std::string dir) : dir_(std::move(dir)) {
    std::filesystem::create_directories(dir_);
  }
  ~BrokerProcess() { process_.reset(); }

  // Starts the broker and waits until /readyz answers 200 (deadline 60 s).
  void Start(std::vector<std::string> extra = {}) {
    Launch(std::move(extra));
    WaitReady();
  }

  // One node of a multi-node cluster: its id, the internal listener port it binds (the one named
  // for it in `voters`) and the controller quorum ("1@127.0.0.1:P1,2@127.0.0.1:P2,...").
  struct ClusterMember {
    int node_id = 1;
    int internal_port = 0;
    std::string voters;
  };

  // Starts the broker without waiting for it; a cluster member is not ready before a quorum of
  // voters runs, so start them all, then WaitReady() on each.
  void Launch(std::vector<std::string> extra = {},
              const std::optional<ClusterMember>& member = std::nullopt) {
    std::filesystem::remove(ports_file());
    const std::string internal = "127.0.0.1:" + std::to_string(member ? member->internal_port : 0);
    const std::string voters = member ? member->voters : "1@127.0.0.1:0";
    std::vector<std::string> argv = {RILL_BROKER_BINARY,
                                     "--data.dir",
                                     dir_ + "/data",
                                     "--listeners.client",
                                     "127.0.0.1:0",
                                     "--listeners.internal",
                                     internal,
                                     "--listeners.http",
                                     "127.0.0.1:0",
                                     "--controller.voters",
                                     voters,
                                     "--ports-file",
                                     ports_file(),
                                     "--storage.preallocate_bytes",
                                     "1048576"};
    if (member) {
      argv.push_back("--node.id");
      argv.push_back(std::to_string(member->node_id));
    }
    if (const char* level = getenv("RILL_IT_LOG_LEVEL")) {
      argv.push_back("--log.level");
      argv.push_back(level);
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_ = Process::Spawn(argv, log_file(), {.env = env_, .stdin_fd = -1});
    ASSERT_NE(process_, nullptr);
  }

  // Waits until the launched broker's /readyz answers 200 (deadline 60 s) and makes its stubs.
  void WaitReady() {
    ASSERT_NE(process_, nullptr);
    // Ready, or exited (then the assertion below shows its log).
    test::PollUntil(
        [&] {
          return !process_->running() ||
                 (ReadPorts() && HttpGet(http_port_, "/readyz").rfind("200", 0) == 0);
        },
        std::chrono::seconds(60), std::chrono::milliseconds(10));
    ASSERT_TRUE(process_->running()) << "broker exited:\n" << ReadFile(log_file());
    ASSERT_EQ(HttpGet(http_port_, "/readyz").substr(0, 3), "200") << ReadFile(log_file());
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(256 << 20);
    channel_ = grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(client_port_),
                                         grpc::InsecureChannelCredentials(), args);
    producer = v1::Producer::NewStub(channel_);
    consumer = v1::Consumer::NewStub(channel_);
    admin = v1::Admin::NewStub(channel_);
    metadata = v1::Metadata::NewStub(channel_);
  }

  // SIGTERM and wait; returns the exit code (-1 on timeout).
  int Stop() {
    if (!process_) return -1;
    process_->Signal(SIGTERM);
    auto code = process_->Wait(std::chrono::seconds(60));
    process_.reset();
    return code.value_or(-1);
  }

  // Sends `sig` (SIGSTOP, SIGCONT, ...) to the running broker.
  void Signal(int sig) { process_->Signal(sig); }

  void Kill9() {
    process_->Signal(SIGKILL);
    process_->Wait(std::chrono::seconds(30));
    process_.reset();
  }

  // Creates one topic through the Admin API; returns its result (error NONE when created).
  v1::TopicResult CreateTopic(const std::string& name, int partitions,
                              const std::map<std::string, std::string>& configs = {},
                              int replication_factor = 0) {
    grpc::ClientContext ctx;
    v1::CreateTopicsRequest req;
    auto* t = req.add_topics();
    t->set_name(name);
    t->set_partitions(partitions);
    t->set_replication_factor(replication_factor);
    for (const auto& [k, v] : configs) (*t->mutable_configs())[k] = v;
    v1::CreateTopicsResponse resp;
    auto st = admin->CreateTopics(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.results_size() == 1 ? resp.results(0) : v1::TopicResult();
  }

  // One Fetch of one partition from `offset`.
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
    auto st = consumer->Fetch(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.partitions_size() == 1 ? resp.partitions(0) : v1::FetchPartitionResult();
  }

  struct FetchedRecord {
    int64_t offset;
    batch::Record record;
  };

  // Every record of the partition from offset 0 up to the high watermark, decoded, with its
  // offset; `*high_watermark` (when given) is the last fetch's. Errors fail the calling test.
  std::vector<FetchedRecord> ReadAll(const std::string& topic, int partition,
                                     int64_t* high_watermark = nullptr) {
    std::vector<FetchedRecord> out;
    int64_t next = 0;
    if (high_watermark) *high_watermark = -1;
    for (int guard = 0; guard < 100000; ++guard) {
      auto f = Fetch(topic, partition, next);
      EXPECT_EQ(f.error(), v1::NONE) << f.error_message();
      if (high_watermark) *high_watermark = f.high_watermark();
      if (f.error() != v1::NONE || f.records().empty()) break;
      batch::BatchIterator it(f.records());
      while (it.Next()) {
        auto recs = batch::DecodeRecords(it.batch());
        EXPECT_TRUE(recs.ok()) << recs.status().ToString();
        if (!recs.ok()) return out;
        int64_t off = it.header().base_offset;
        for (auto& r : *recs) {
          if (off >= next) out.push_back({off, std::move(r)});
          ++off;
        }
        next = it.header().last_offset() + 1;
      }
      EXPECT_TRUE(it.status().ok()) << it.status().ToString();
      if (next >= f.high_watermark()) break;
    }
    return out;
  }

  // Environment changes for the next Launch/Start (Process::Options::env).
  void SetEnv(std::vector<std::string> env) { env_ = std::move(env); }

  // Waits for a launched broker to exit on its own; its exit code, or nullopt on timeout.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout) {
    if (!process_) return std::nullopt;
    return process_->Wait(timeout);
  }

  bool running() { return process_ && process_->running(); }
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  int client_port() const { return client_port_; }
  int http_port() const { return http_port_; }
  int internal_port() const { return internal_port_; }
  std::string log() const { return ReadFile(log_file()); }

  std::unique_ptr<v1::Producer::Stub> producer;
  std::unique_ptr<v1::Consumer::Stub> consumer;
  std::unique_ptr<v1::Admin::Stub> admin;
  std::unique_ptr<v1::Metadata::Stub> metadata;

 private:
  std::string ports_file() const { return dir_ + "/ports"; }
  std::string log_file() const { return dir_ + "/broker.log"; }

  bool ReadPorts() {
    std::string text = ReadFile(ports_file());
    std::map<std::string, int> ports;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      std::string line = text.substr(pos, nl - pos);
      pos = nl == std::string::npos ? text.size() : nl + 1;
      auto eq = line.find('=');
      if (eq != std::string::npos) ports[line.substr(0, eq)] = std::stoi(line.substr(eq + 1));
    }
    if (!ports.count("client") || !ports.count("http")) return false;
    client_port_ = ports["client"];
    http_port_ = ports["http"];
    internal_port_ = ports.count("internal") ? ports["internal"] : 0;
    return true;
  }

  std::string dir_;
  std::unique_ptr<Process> process_;
  std::shared_ptr<grpc::Channel> channel_;
  int client_port_ = 0;
  int http_port_ = 0;
  int internal_port_ = 0;
  std::vector<std::string> env_;
};

}  // namespace rill::testing
