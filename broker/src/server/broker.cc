#include "server/broker.h"

#include <arpa/inet.h>
#include <grpc/grpc.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <netdb.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <random>
#include <fstream>
#include <future>
#include <set>

#include "rill/proto/thread_name.h"
#include "server/data_dir_identity.h"

namespace rill::broker {

namespace {

// A random id for this process start (BrokerRegistration::incarnation_id).
std::string NewIncarnationId() {
  std::random_device rd;
  std::mt19937_64 gen((uint64_t(rd()) << 32) ^ rd());
  char buf[33];
  snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(gen()),
           static_cast<unsigned long long>(gen()));
  return buf;
}

}  // namespace

namespace {
// Directories of the data dir that are not partition logs.
constexpr const char* kMetadataDirName = "__cluster_metadata-0";  // the controller's Raft log
constexpr const char* kGroupsDirName = "__groups";                // GroupCoordinator's store
}  // namespace

Result<int> PickFreePort(const std::string& host) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return Status::IOError("socket: " + std::string(strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) addr.sin_addr.s_addr = INADDR_ANY;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return Status::IOError("bind " + host + ":0: " + std::string(strerror(errno)));
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

Status CheckListenerFree(const std::string& listener, const std::string& host, int port) {
  if (port == 0) return Status::OK();
  const std::string where = listener + " listener " + host + ":" + std::to_string(port);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    return Status::InvalidArgument(where + ": cannot resolve host: " + gai_strerror(rc));
  }
  Status st;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd < 0) continue;
    // As gRPC and the HTTP server bind: SO_REUSEADDR (a port held only by TIME_WAIT connections
    // of an earlier run is free) and no SO_REUSEPORT (a listening socket is not).
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0) {
      const int err = errno;
      st = Status::IOError(where + ": " +
                           (err == EADDRINUSE ? std::string("address already in use (another "
                                                            "process listens there; is another "
                                                            "broker running?)")
                                              : std::string(strerror(err))));
    }
    ::close(fd);
    break;
  }
  ::freeaddrinfo(res);
  return st;
}

Broker::Broker(BrokerConfig config, ControllerFactory make_controller,
               std::unique_ptr<LogStore> store)
    : config_(std::move(config)),
      make_controller_(std::move(make_controller)),
      store_(std::move(store)) {
  store_->SetFlushObserver([this](std::chrono::nanoseconds elapsed, uint64_t bytes) {
    metrics_.RecordFlush(elapsed, bytes);
  });
  metrics_.set_shared_syncs([store = store_.get()] { return store->SharedSyncs(); });
}

Broker::~Broker() { Shutdown(); }

bool Broker::ready() const {
  if (!started_ || shut_down_ || !controller_ || controller_->image() == nullptr) return false;
  auto image = partitions_->image();
  // Ready once this incarnation is registered and its partitions reflect that (it leads).
  return image != nullptr && partitions_->ready() && partitions_->SelfCurrent(*image);
}

Status Broker::Start() {
  // A listener port in use fails the start before anything else happens. gRPC's port sharing
  // (SO_REUSEPORT) is off on both gRPC servers below, so a second broker on the same port would
  // fail there too; checking first gives a clear message and touches no data dir.
  RILL_RETURN_IF_ERROR(
      CheckListenerFree("client", config_.client_listener.host, config_.client_listener.port));
  RILL_RETURN_IF_ERROR(CheckListenerFree("internal", config_.internal_listener.host,
                                         config_.internal_listener.port));
  RILL_RETURN_IF_ERROR(
      CheckListenerFree("http", config_.http_listener.host, config_.http_listener.port));
  std::error_code ec;
  std::filesystem::create_directories(config_.data_dir, ec);
  if (ec) return Status::IOError("creating data dir " + config_.data_dir + ": " + ec.message());
  RILL_RETURN_IF_ERROR(ClaimDataDir(config_.data_dir, config_.node_id));

  // Ports first: the controller registers this broker with them.
  client_port_ = config_.client_listener.port;
  internal_port_ = config_.internal_listener.port;
  if (client_port_ == 0) {
    RILL_ASSIGN_OR_RETURN(client_port_, PickFreePort(config_.client_listener.host));
  }
  if (internal_port_ == 0) {
    RILL_ASSIGN_OR_RETURN(internal_port_, PickFreePort(config_.internal_listener.host));
  }

  ControllerConfig cc;
  cc.node_id = NodeId(config_.node_id);
  RILL_ASSIGN_OR_RETURN(auto voters, ParseVoters(config_.voters));
  for (const auto& v : voters) {
    int port = v.address.port;
    if (v.node_id == config_.node_id && port == 0) port = internal_port_;
    cc.voters.push_back({NodeId(v.node_id), v.address.host, port});
  }
  if (cc.voters.empty()) {
    cc.voters.push_back({NodeId(config_.node_id), config_.internal_listener.host, internal_port_});
  }
  // A single-voter quorum on this node follows the chosen internal port.
  for (auto& v : cc.voters) {
    if (v.node_id.value() == config_.node_id && cc.voters.size() == 1) v.port = internal_port_;
  }
  cc.metadata_dir = (std::filesystem::path(config_.data_dir) / kMetadataDirName).string();
  cc.cluster_id = config_.cluster_id;
  cc.default_partitions = config_.default_partitions;
  cc.default_replication_factor = config_.default_replication_factor;
  cc.max_partitions_per_topic = config_.max_partitions_per_topic;
  cc.tick_ms = config_.tick_ms;
  cc.election_ticks = config_.election_ticks;
  cc.heartbeat_ticks = config_.heartbeat_ticks;
  cc.snapshot_every_records = config_.snapshot_every_records;
  cc.broker_session_timeout_ms = config_.broker_session_timeout_ms;
  cc.auto_leader_rebalance = config_.auto_leader_rebalance;
  cc.leader_rebalance_interval_ms = config_.leader_rebalance_interval_ms;
  cc.self.node_id = NodeId(config_.node_id);
  // The addresses others dial (docs in broker/README.md, "listeners.advertised_*").
  const auto advertised = [&](const HostPort& a, int bound_port) {
    return HostPort{a.host.empty() ? config_.advertised_host : a.host,
                    a.port != 0 ? a.port : bound_port};
  };
  const HostPort client_advertised = advertised(config_.advertised_client, client_port_);
  const HostPort internal_advertised = advertised(config_.advertised_internal, internal_port_);
  cc.self.host = client_advertised.host;
  cc.self.port = client_advertised.port;
  cc.self.internal_host = internal_advertised.host;
  cc.self.internal_port = internal_advertised.port;
  cc.self.rack = config_.rack;
  cc.self.incarnation_id = NewIncarnationId();
  const bool sole_voter = cc.voters.size() == 1 && cc.voters[0].node_id == cc.node_id;
  // A metadata log that this start creates (a new cluster, or one whose metadata directory was
  // lost or moved) knows nothing of the partition directories beside it: they are not strays,
  // and deleting them would lose acknowledged records.
  bool metadata_existed = false;
  {
    std::error_code ec;
    metadata_existed = std::filesystem::is_directory(cc.metadata_dir, ec) &&
                       !std::filesystem::is_empty(cc.metadata_dir, ec);
  }
  const std::string metadata_dir = cc.metadata_dir;
  const std::string incarnation_id = cc.self.incarnation_id;
  controller_ = make_controller_(std::move(cc));
  partitions_ = std::make_unique<PartitionManager>(NodeId(config_.node_id), store_.get(),
                                                   BrokerTopicDefaults(config_));
  partitions_->set_replication_settings(ReplicationSettings{config_.replica_lag_time_max_ms});
  partitions_->set_incarnation(incarnation_id);
  {
    ReplicaFetchServiceConfig rc;
    rc.max_wait_ms = config_.replica_fetch_max_wait_ms;
    replica_service_ = std::make_unique<ReplicaFetchService>(partitions_.get(), &io_, rc);
    ReplicaFetcherConfig fc;
    fc.self = NodeId(config_.node_id);
    fc.max_wait_ms = config_.replica_fetch_max_wait_ms;
    fetchers_ = std::make_unique<ReplicaFetcherManager>(fc, partitions_.get(), controller_.get());
    partitions_->set_on_applied([f = fetchers_.get()] { f->Refresh(); });
    partitions_->set_on_isr_change([this](bool shrink) { metrics_.OnIsrChange(shrink); });
    metrics_.set_replica_fetchers(fetchers_.get());
  }

  // Internal listener: the controller's Raft service.
  {
    grpc::ServerBuilder b;
    b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);  // a port in use is an error
    b.AddListeningPort(config_.internal_listener.host + ":" + std::to_string(internal_port_),
                       grpc::InsecureServerCredentials(), &internal_port_);
    if (grpc::Service* s = controller_->internal_service()) b.RegisterService(s);
    b.RegisterService(replica_service_.get());
    b.SetMaxReceiveMessageSize(config_.max_request_bytes);
    internal_server_ = b.BuildAndStart();
    if (!internal_server_ || internal_port_ == 0) {
      const int port = internal_port_ ? internal_port_ : config_.internal_listener.port;
      Status why = CheckListenerFree("internal", config_.internal_listener.host, port);
      return why.ok() ? Status::IOError("cannot listen on internal listener " +
                                        config_.internal_listener.host + ":" + std::to_string(port))
                      : why;
    }
  }

  // The controller hands each image to the partition manager's thread: opening and recovering
  // logs never runs on (or blocks) the Raft driver thread.
  partitions_->Start();
  controller_->AddListener(
      [this](std::shared_ptr<const MetadataImage> image, const ImageChanges& changes) {
        partitions_->Enqueue(std::move(image), changes);
      });
  Status st = controller_->Start();
  if (!st.ok()) {
    partitions_->Stop();
    internal_server_->Shutdown();
    return st;
  }
  // Serve only once the local partitions reflect the recovered metadata (logs opened and
  // recovered), as a single-threaded apply did.
  {
    std::promise<bool> applied;
    partitions_->WhenApplied(controller_->image()->applied_index,
                             [&applied](bool ok) { applied.set_value(ok); });
    if (!applied.get_future().get()) {
      Shutdown();
      return Status::Failed("stopped before the partitions were opened");
    }
  }

  // I/O threads for long polls and pushes.
  work_.emplace(io_.get_executor());
  for (int i = 0; i < config_.io_threads; ++i) {
    io_threads_.emplace_back([this] {
      SetCurrentThreadName("rill-io");
      io_.run();
    });
  }
  fetchers_->Start();
  fetchers_->Refresh();

  ctx_.config = &config_;
  ctx_.controller = controller_.get();
  ctx_.partitions = partitions_.get();
  ctx_.metrics = &metrics_;
  disk_ = std::make_unique<DiskSpaceGuard>(config_.data_dir,
                                           static_cast<uint64_t>(config_.min_free_bytes));
  ctx_.disk = disk_.get();
  ctx_.io = &io_;
  producer_ = std::make_unique<ProducerService>(&ctx_);
  metrics_.set_produce_gate([gate = producer_->gate()] {
    const ProduceReadGate::Stats st = gate->stats();
    return Metrics::ProduceGateGauges{st.accepted_bytes, st.reserved_bytes, st.waiting, st.waits};
  });
  consumer_ = std::make_unique<ConsumerService>(&ctx_);
  admin_ = std::make_unique<AdminService>(&ctx_);
  metadata_ = std::make_unique<MetadataService>(&ctx_);
  {
    GroupCoordinatorConfig gc;
    gc.dir = (std::filesystem::path(config_.data_dir) / kGroupsDirName).string();
    gc.offsets_partitions = config_.groups_offsets_partitions;
    gc.offsets_replication_factor = config_.groups_offsets_replication_factor;
    gc.max_groups = static_cast<size_t>(config_.groups_max_groups);
    gc.group.max_members = static_cast<size_t>(config_.groups_max_members);
    gc.group.default_session_timeout_ms = config_.groups_session_timeout_ms;
    gc.group.min_session_timeout_ms = config_.groups_min_session_timeout_ms;
    gc.group.max_session_timeout_ms = config_.groups_max_session_timeout_ms;
    gc.group.heartbeat_interval_ms = config_.groups_heartbeat_interval_ms;
    coordinator_ = std::make_unique<GroupCoordinator>(
        GroupCoordinatorDeps{ctx_.config, ctx_.controller, ctx_.partitions, ctx_.io},
        std::move(gc));
    st = coordinator_->Start();
    if (!st.ok()) {
      Shutdown();
      return st;
    }
    groups_ = std::make_unique<GroupsService>(coordinator_.get(), &metrics_);
  }

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  {
    grpc::ServerBuilder b;
    b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);  // a port in use is an error
    b.AddListeningPort(config_.client_listener.host + ":" + std::to_string(client_port_),
                       grpc::InsecureServerCredentials(), &client_port_);
    b.RegisterService(producer_.get());
    b.RegisterService(consumer_.get());
    b.RegisterService(admin_.get());
    b.RegisterService(metadata_.get());
    b.RegisterService(groups_.get());
    b.SetMaxReceiveMessageSize(config_.max_request_bytes);
    b.SetMaxSendMessageSize(std::max(config_.fetch_max_bytes, 4 << 20) + (1 << 20));
    // Received-but-unprocessed request bytes are gRPC's memory until a handler runs (a unary
    // request is read whole first). Per connection, the stream limit makes clients queue their
    // calls; across connections, the quota is the backstop (docs/ARCHITECTURE.md §12).
    if (config_.max_request_memory_bytes > 0) {
      grpc::ResourceQuota quota("rill-client-listener");
      quota.Resize(static_cast<size_t>(config_.max_request_memory_bytes));
      b.SetResourceQuota(quota);
    }
    if (config_.max_concurrent_streams_per_connection > 0) {
      b.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                           config_.max_concurrent_streams_per_connection);
    }
    client_server_ = b.BuildAndStart();
    if (!client_server_ || client_port_ == 0) {
      Shutdown();
      const int port = client_port_ ? client_port_ : config_.client_listener.port;
      Status why = CheckListenerFree("client", config_.client_listener.host, port);
      return why.ok() ? Status::IOError("cannot listen on client listener " +
                                        config_.client_listener.host + ":" + std::to_string(port))
                      : why;
    }
  }

  http_ =
      std::make_unique<HttpServer>([this](const std::string& path) { return HandleHttp(path); });
  st = http_->Start(config_.http_listener.host, config_.http_listener.port);
  if (!st.ok()) {
    Shutdown();
    return st;
  }
  housekeeper_ = std::make_unique<Housekeeper>(
      partitions_.get(), std::chrono::milliseconds(config_.retention_check_interval_ms));
  housekeeper_->Start();
  started_ = true;
  // Stray logs (deleted topics whose removal a crash interrupted) are found by comparing the
  // data dir with a current image; only the sole voter knows its image is current.
  if (auto img = controller_->image();
      sole_voter && img && img->controller_id == NodeId(config_.node_id) && metadata_existed) {
    StartStrayLogScan(img->applied_index);
  } else if (sole_voter && !metadata_existed) {
    spdlog::warn(
        "stray partition logs are not scanned for: the metadata log {} was created by this start, "
        "so partition directories already in {} belong to metadata this node no longer has; they "
        "are left alone (remove them by hand if they are not wanted)",
        metadata_dir, config_.data_dir);
  } else {
    spdlog::info(
        "stray partition logs are not scanned for: this node is not the sole controller voter, "
        "so it has no signal that its metadata image is current");
  }
  spdlog::info(
      "node {} listening: client {}:{}, internal {}:{}, http {}:{}; advertised: client {}:{}, "
      "internal {}:{}",
      config_.node_id, config_.client_listener.host, client_port_, config_.internal_listener.host,
      internal_port_, config_.http_listener.host, http_->port(), client_advertised.host,
      client_advertised.port, internal_advertised.host, internal_advertised.port);
  if (!config_.ports_file.empty()) {
    st = WritePortsFile();
    if (!st.ok()) {
      Shutdown();
      return st;
    }
  }
  return Status::OK();
}

void Broker::StartStrayLogScan(uint64_t min_applied_index) {
  std::set<std::string> reserved = {kMetadataDirName, kGroupsDirName};
  stray_scan_ = std::thread([this, min_applied_index, reserved = std::move(reserved)] {
    SetCurrentThreadName("rill-stray-scan");
    while (true) {
      auto removed = partitions_->RemoveStrayLogs(min_applied_index, reserved);
      if (removed.ok()) {
        spdlog::info("stray partition log scan done: {} removed", removed->size());
        return;
      }
      if (removed.status().code() != StatusCode::kUnavailable) {
        spdlog::error("stray partition log scan: {}", removed.status().ToString());
        return;
      }
      // The partition manager has not applied the current image yet.
      std::unique_lock lock(stray_scan_mu_);
      if (stray_scan_cv_.wait_for(lock, std::chrono::milliseconds(20),
                                  [this] { return stray_scan_stop_; })) {
        return;
      }
    }
  });
}

void Broker::StopStrayLogScan() {
  {
    std::lock_guard lock(stray_scan_mu_);
    stray_scan_stop_ = true;
  }
  stray_scan_cv_.notify_all();
  if (stray_scan_.joinable()) stray_scan_.join();
}

Status Broker::WritePortsFile() const {
  std::string tmp = config_.ports_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "client=" << client_port_ << "\ninternal=" << internal_port_
        << "\nhttp=" << http_->port() << "\n";
    if (!out) return Status::IOError("writing " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, config_.ports_file, ec);
  if (ec) return Status::IOError("renaming " + tmp + ": " + ec.message());
  return Status::OK();
}

HttpResponse Broker::HandleHttp(const std::string& path) {
  HttpResponse r;
  if (path == "/metrics") {
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_.Render(partitions_.get());
    if (coordinator_) r.body += coordinator_->RenderMetrics();
    if (disk_) disk_->RenderMetrics(&r.body);
    if (housekeeper_) housekeeper_->RenderMetrics(&r.body);
  } else if (path == "/healthz") {
    r.body = "ok\n";
  } else if (path == "/readyz") {
    if (ready()) {
      r.body = "ready\n";
    } else {
      r.status = 503;
      r.body = "not ready\n";
    }
  } else {
    r.status = 404;
    r.body = "not found: try /metrics, /healthz or /readyz\n";
  }
  return r;
}

// Controlled shutdown (docs/ARCHITECTURE.md §7a): while it still serves, a broker of a
// multi-node cluster asks the controller to fence it and move the leadership of its partitions
// to other ISR members, and waits (bounded) until its own image shows that. Its partitions turn
// follower here, so in-flight acks=all produces fail with NOT_LEADER and a hint, and clients
// retry on the new leaders instead of waiting out a session timeout after the process is gone.
void Broker::ControlledShutdown() {
  if (config_.controlled_shutdown_timeout_ms <= 0 || !partitions_) return;
  const NodeId self(config_.node_id);
  auto other_live = [&](const MetadataImage& image) {
    for (const auto& [id, b] : image.brokers) {
      if (id != self && !b.fenced) return true;
    }
    return false;
  };
  // Done once this broker is fenced and leads only partitions no other live replica could take.
  auto moved = [&](const MetadataImage& image) {
    auto me = image.brokers.find(self);
    if (me == image.brokers.end() || !me->second.fenced) return false;
    for (const auto& [name, t] : image.topics) {
      for (const PartitionAssignment& p : t.partitions) {
        if (p.leader != self) continue;
        for (NodeId n : p.isr) {
          auto b = image.brokers.find(n);
          if (n != self && b != image.brokers.end() && !b->second.fenced) return false;
        }
      }
    }
    return true;
  };
  auto image = partitions_->image();
  if (!image || !other_live(*image)) return;  // one node, or the last one up: nowhere to move
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::milliseconds(config_.controlled_shutdown_timeout_ms);
  spdlog::info("controlled shutdown: asking the controller to move this broker's leaderships");
  auto outcome = std::make_shared<std::promise<TopicOpResult>>();
  std::future<TopicOpResult> result = outcome->get_future();
  controller_->ControlledShutdown([outcome](std::vector<TopicOpResult> results) {
    outcome->set_value(results.empty() ? TopicOpResult{} : results.front());
  });
  if (result.wait_until(deadline) != std::future_status::ready) {
    spdlog::warn(
        "controlled shutdown: no answer from the controller within {} ms; stopping anyway: "
        "partitions this broker leads are unavailable until its session times out",
        config_.controlled_shutdown_timeout_ms);
    return;
  }
  TopicOpResult r = result.get();
  if (r.error != TopicOpError::kNone) {
    spdlog::warn(
        "controlled shutdown refused ({}: {}); stopping anyway: partitions this broker leads "
        "are unavailable until its session times out",
        TopicOpErrorName(r.error), r.message);
    return;
  }
  // The active controller applied it at r.applied_index; this broker's own image follows within
  // a heartbeat.
  auto applied = std::make_shared<std::promise<bool>>();
  std::future<bool> caught_up = applied->get_future();
  partitions_->WhenApplied(r.applied_index, [applied](bool ok) { applied->set_value(ok); });
  if (caught_up.wait_until(deadline) == std::future_status::ready && caught_up.get()) {
    image = partitions_->image();
    if (image && moved(*image)) {
      spdlog::info("controlled shutdown: leaderships moved in {} ms",
                   std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count());
      return;
    }
  }
  spdlog::warn(
      "controlled shutdown: leaderships not all moved within {} ms; stopping anyway: the "
      "rest move when this broker's session times out",
      config_.controlled_shutdown_timeout_ms);
}

void Broker::Shutdown() {
  if (shut_down_) return;
  shut_down_ = true;
  if (!controller_) return;
  ControlledShutdown();
  spdlog::info("shutting down");
  StopStrayLogScan();
  if (housekeeper_) housekeeper_->Stop();
  // End long polls and pushes, then stop accepting and answer what is in flight.
  ctx_.stopping.store(true, std::memory_order_release);
  if (partitions_) {
    for (auto& p : partitions_->All()) p->NotifyWaiters();
  }
  if (client_server_) {
    // gRPC's Shutdown waits for idle client connections to go away as well as for calls, so
    // the broker waits for its own in-flight produce requests (bounded), then gives gRPC a
    // short deadline after which it cancels what is left (long polls have just been ended).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (ctx_.inflight_produce_requests.load(std::memory_order_acquire) > 0 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    client_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    spdlog::debug("client listener stopped");
  }
  if (coordinator_) coordinator_->Stop();
  if (fetchers_) fetchers_->Stop();
  if (replica_service_) replica_service_->Stop();
  metrics_.set_replica_fetchers(nullptr);
  work_.reset();
  for (auto& t : io_threads_) t.join();
  io_threads_.clear();
  if (controller_) controller_->Stop();
  spdlog::debug("controller stopped");
  if (partitions_) partitions_->Stop();
  if (internal_server_) {
    internal_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  if (http_) http_->Stop();
  if (store_) {
    spdlog::debug("closing logs");
    Status st = store_->CloseAll();
    if (!st.ok()) spdlog::error("closing logs: {}", st.ToString());
  }
  spdlog::info("shut down cleanly");
}

}  // namespace rill::broker
