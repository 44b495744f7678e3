#pragma once

// The broker process: wires the controller, the local partitions, the gRPC listeners (client API
// with reflection, internal API with the controller's Raft service), the I/O threads and the
// HTTP endpoint (docs/ARCHITECTURE.md §3, §4).
//
// Thread-safety: Start and Shutdown are called from one thread (main); the accessors from any.

#include <grpcpp/server.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "api/admin_service.h"
#include "api/consumer_service.h"
#include "controller/controller.h"
#include "groups/group_coordinator.h"
#include "api/groups_service.h"
#include "partition/housekeeper.h"
#include "http/http_server.h"
#include "http/metrics.h"
#include "partition/partition_log.h"
#include "partition/partition_manager.h"
#include "api/producer_service.h"
#include "replica/replica_fetch_service.h"
#include "replica/replica_fetcher.h"
#include "rill/broker/config.h"
#include "api/service_context.h"

namespace rill::broker {

class Broker {
 public:
  using ControllerFactory = std::function<std::unique_ptr<Controller>(ControllerConfig)>;

  Broker(BrokerConfig config, ControllerFactory make_controller, std::unique_ptr<LogStore> store);
  ~Broker();

  // Binds every listener (port 0 picks a free one), starts the controller, and serves. Writes
  // the ports file if configured. On error nothing is left running.
  Status Start();
  // Graceful: stops accepting, ends long polls and pushes, answers in-flight requests, stops the
  // controller, flushes and closes every log (recovery checkpoints). Idempotent.
  void Shutdown();

  int client_port() const { return client_port_; }
  int internal_port() const { return internal_port_; }
  int http_port() const { return http_ ? http_->port() : 0; }
  // The controller has an image and every local partition it names is open.
  bool ready() const;

  PartitionManager& partitions() { return *partitions_; }
  Controller& controller() { return *controller_; }
  GroupCoordinator& coordinator() { return *coordinator_; }

 private:
  HttpResponse HandleHttp(const std::string& path);
  Status WritePortsFile() const;
  // Starts the one-shot stray log scan (PartitionManager::RemoveStrayLogs) on its own thread
  // once the applied image reaches `min_applied_index`, the controller's image right after its
  // start as the sole voter (then every committed record is applied: Raft commits the new
  // leader's first entry, and with it the whole log, inside Controller::Start).
  // SIGTERM in a multi-node cluster: moves this broker's leaderships away first (bounded).
  void ControlledShutdown();
  void StartStrayLogScan(uint64_t min_applied_index);
  void StopStrayLogScan();

  BrokerConfig config_;
  ControllerFactory make_controller_;
  Metrics metrics_;  // before store_: the store's logs report their fsyncs to it until closed
  std::unique_ptr<LogStore> store_;
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<PartitionManager> partitions_;
  std::unique_ptr<ReplicaFetchService> replica_service_;  // leader side of replication
  std::unique_ptr<ReplicaFetcherManager> fetchers_;       // follower side and the ISR keeper
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::vector<std::thread> io_threads_;
  std::unique_ptr<DiskSpaceGuard> disk_;
  std::unique_ptr<Housekeeper> housekeeper_;
  ServiceContext ctx_;
  std::unique_ptr<ProducerService> producer_;
  std::unique_ptr<ConsumerService> consumer_;
  std::unique_ptr<AdminService> admin_;
  std::unique_ptr<MetadataService> metadata_;
  std::unique_ptr<GroupCoordinator> coordinator_;
  std::unique_ptr<GroupsService> groups_;
  std::unique_ptr<grpc::Server> internal_server_;
  std::unique_ptr<grpc::Server> client_server_;
  std::unique_ptr<HttpServer> http_;
  std::thread stray_scan_;
  std::mutex stray_scan_mu_;
  std::condition_variable stray_scan_cv_;
  bool stray_scan_stop_ = false;  // guarded by stray_scan_mu_
  int client_port_ = 0;
  int internal_port_ = 0;
  bool started_ = false;
  bool shut_down_ = false;
};

// Picks a free TCP port on `host` by binding port 0 (for listeners configured with port 0).
Result<int> PickFreePort(const std::string& host);

// OK when `host:port` can be bound now (port 0 always can); otherwise an error naming the
// listener ("client", "internal", "http") and the address, e.g. "client listener
// 127.0.0.1:9092: address already in use (...)".
Status CheckListenerFree(const std::string& listener, const std::string& host, int port);

}  // namespace rill::broker
