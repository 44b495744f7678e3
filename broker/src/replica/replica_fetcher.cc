#include "replica/replica_fetcher.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "rill/internal/v1/replica.grpc.pb.h"
#include "rill/proto/thread_name.h"

namespace rill::broker {
namespace {

namespace pb = internal::v1;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

ReplicaFetchAnswer FromWire(pb::ReplicaFetchPartitionData* d) {
  using E = ReplicaFetchAnswer::Error;
  ReplicaFetchAnswer a;
  switch (d->error()) {
    case pb::REPLICA_FETCH_NONE:
      a.error = E::kNone;
      break;
    case pb::REPLICA_FETCH_NOT_LEADER:
    case pb::REPLICA_FETCH_UNKNOWN_TOPIC:
      a.error = E::kNotLeader;
      break;
    case pb::REPLICA_FETCH_FENCED_EPOCH:
      a.error = E::kFencedEpoch;
      break;
    case pb::REPLICA_FETCH_UNKNOWN_EPOCH:
      a.error = E::kUnknownEpoch;
      break;
    case pb::REPLICA_FETCH_NOT_REPLICA:
      a.error = E::kNotReplica;
      break;
    case pb::REPLICA_FETCH_OUT_OF_RANGE:
      a.error = E::kOutOfRange;
      break;
    case pb::REPLICA_FETCH_DIVERGING:
      a.error = E::kDiverging;
      break;
    default:
      a.error = E::kStorage;
      break;
  }
  a.message = d->error_message();
  a.high_watermark = Offset(d->high_watermark());
  a.log_start = Offset(d->log_start_offset());
  a.log_end = Offset(d->log_end_offset());
  a.diverging = {LeaderEpoch(d->diverging_epoch()), Offset(d->diverging_end_offset())};
  a.records = std::move(*d->mutable_records());
  return a;
}

// Counts down durability callbacks; they may outlive a waiter that gave up.
struct DurableLatch {
  std::mutex mu;
  std::condition_variable cv;
  int remaining = 0;
  Status first_error;
};

}  // namespace

class ReplicaFetcherManager::Fetcher {
 public:
  Fetcher(ReplicaFetcherManager* manager, NodeId leader) : manager_(manager), leader_(leader) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Fetcher() { Stop(); }

  void SetPartitions(std::vector<std::shared_ptr<Partition>> parts) {
    std::lock_guard lock(mu_);
    bool added = false;
    for (const auto& p : parts) {
      if (std::find(parts_.begin(), parts_.end(), p) == parts_.end()) added = true;
    }
    parts_ = std::move(parts);
    // A partition that joins waits for no long poll: the stream restarts at once.
    if (added && ctx_) {
      restart_ = true;
      ctx_->TryCancel();
    }
    cv_.notify_all();
  }

  bool idle() const {
    std::lock_guard lock(mu_);
    return parts_.empty();
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      if (ctx_) ctx_->TryCancel();
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  // The leader's internal address from the applied image; empty when unknown.
  std::string Address() const {
    auto image = manager_->partitions_->image();
    if (!image) return "";
    auto it = image->brokers.find(leader_);
    if (it == image->brokers.end() || it->second.internal_port <= 0) return "";
    return it->second.InternalHost() + ":" + std::to_string(it->second.internal_port);
  }

  // Waits `ms` or until stopped or the partitions change; false when stopping.
  bool Backoff(int ms) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
    return !stopping_;
  }

  void Run() {
    SetCurrentThreadName("rill-fetch-" + std::to_string(leader_.value()));
    const ReplicaFetcherConfig& cfg = manager_->config_;
    std::string address;
    std::unique_ptr<pb::ReplicaFetch::Stub> stub;
    while (true) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !parts_.empty(); });
        if (stopping_) return;
      }
      const std::string now_address = Address();
      if (now_address.empty()) {
        if (!Backoff(cfg.backoff_ms)) return;
        continue;
      }
      if (now_address != address || !stub) {
        grpc::ChannelArguments args;
        args.SetMaxReceiveMessageSize(-1);
        args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
        args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
        stub = pb::ReplicaFetch::NewStub(
            grpc::CreateCustomChannel(now_address, grpc::InsecureChannelCredentials(), args));
        address = now_address;
      }
      auto ctx = std::make_shared<grpc::ClientContext>();
      {
        std::lock_guard lock(mu_);
        if (stopping_) return;
        ctx_ = ctx;
      }
      auto stream = stub->Fetch(ctx.get());
      const bool healthy = RunStream(*stream);
      ctx->TryCancel();
      (void)stream->Finish();
      bool restart;
      {
        std::lock_guard lock(mu_);
        ctx_ = nullptr;
        if (stopping_) return;
        restart = restart_;
        restart_ = false;
      }
      if (!healthy && !restart && !Backoff(cfg.backoff_ms)) return;
    }
  }

  // Fetch rounds on one stream until it fails (false) or has nothing to fetch (true).
  //
  // Rounds are pipelined with the log's fsyncs (docs/ARCHITECTURE.md §7a, The follower): after
  // appending, the next fetch goes out at once, carrying the durable ends reached so far, while
  // the appended data is made durable. While some appended data is not durable yet the fetch
  // asks the leader not to wait (max_wait 0), so a quiet partition does not park the request the
  // durable end must travel in; once a round brings nothing new, the fetcher waits for the
  // pending fsyncs (bounded) and reports them in a fetch that may wait again.
  bool RunStream(grpc::ClientReaderWriter<pb::ReplicaFetchRequest, pb::ReplicaFetchResponse>& s) {
    const ReplicaFetcherConfig& cfg = manager_->config_;
    // Appended data not yet durable, over every partition of this stream.
    auto pending = std::make_shared<DurableLatch>();
    auto log_durability_error = [&] {
      std::lock_guard lock(pending->mu);
      if (!pending->first_error.ok()) {
        spdlog::error("replica log from node {} not durable: {}", leader_.value(),
                      pending->first_error.ToString());
        pending->first_error = Status::OK();
      }
    };
    while (true) {
      std::vector<std::shared_ptr<Partition>> parts;
      {
        std::lock_guard lock(mu_);
        if (stopping_) return true;
        parts = parts_;
      }
      pb::ReplicaFetchRequest req;
      req.set_follower_id(cfg.self.value());
      bool durability_pending;
      {
        std::lock_guard lock(pending->mu);
        durability_pending = pending->remaining > 0;
      }
      req.set_max_wait_ms(durability_pending ? 0 : cfg.max_wait_ms);
      req.set_max_bytes(cfg.max_bytes);
      req.set_partition_max_bytes(cfg.partition_max_bytes);
      std::vector<std::pair<std::shared_ptr<Partition>, LeaderEpoch>> sent;
      auto image = manager_->partitions_->image();
      for (auto& part : parts) {
        if (part->replica_state().leader != leader_) continue;
        std::optional<replication::FollowerFetch> f = part->NextReplicaFetch();
        const TopicMetadata* t = image ? image->FindTopic(part->topic()) : nullptr;
        if (!f || t == nullptr) continue;
        pb::ReplicaFetchPartition* p = req.add_partitions();
        p->set_topic(part->topic());
        p->set_topic_id(t->topic_id);
        p->set_partition(part->partition());
        p->set_current_leader_epoch(f->current_leader_epoch.value());
        p->set_fetch_offset(f->fetch_offset.value());
        p->set_last_fetched_epoch(f->last_fetched_epoch.value());
        p->set_durable_end(f->durable_end.value());
        sent.emplace_back(part, f->current_leader_epoch);
      }
      if (sent.empty()) return true;
      pb::ReplicaFetchResponse resp;
      if (!s.Write(req) || !s.Read(&resp)) {
        std::lock_guard lock(mu_);
        if (!stopping_ && !restart_) {
          spdlog::debug("replica fetch from node {} failed; reconnecting", leader_.value());
        }
        return false;
      }
      if (resp.partitions_size() != static_cast<int>(sent.size())) {
        spdlog::warn("replica fetch from node {}: {} answers for {} partitions", leader_.value(),
                     resp.partitions_size(), sent.size());
        return false;
      }
      bool any_progress = false;
      bool any_records = false;
      for (size_t i = 0; i < sent.size(); ++i) {
        auto& [part, epoch] = sent[i];
        ReplicaFetchAnswer a = FromWire(resp.mutable_partitions(static_cast<int>(i)));
        const bool had_records = !a.records.empty();
        const bool refused = a.error != ReplicaFetchAnswer::Error::kNone &&
                             a.error != ReplicaFetchAnswer::Error::kDiverging &&
                             a.error != ReplicaFetchAnswer::Error::kOutOfRange;
        Status st = part->ApplyReplicaFetch(epoch, a);
        if (!st.ok()) {
          if (st.code() == StatusCode::kUnavailable) {
            spdlog::debug("{}-{}: {}", part->topic(), part->partition(), st.ToString());
          } else {
            spdlog::error("replicating {}-{} from node {}: {}", part->topic(), part->partition(),
                          leader_.value(), st.ToString());
          }
          continue;
        }
        if (!refused) any_progress = true;
        if (had_records) {
          any_records = true;
          const Offset end = part->log().log_end_offset();
          {
            std::lock_guard lock(pending->mu);
            pending->remaining++;
          }
          part->log().OnDurable(end, [pending](Status st) {
            std::lock_guard lock(pending->mu);
            // kOutOfRange: a divergence truncated the offsets waited for (nothing to report).
            if (!st.ok() && st.code() != StatusCode::kOutOfRange && pending->first_error.ok()) {
              pending->first_error = st;
            }
            if (--pending->remaining == 0) pending->cv.notify_all();
          });
        }
      }
      if (!any_records) {
        // Nothing new: let the pending fsyncs finish, so the next request reports them (only
        // durable data is ever reported) and may wait for new data again.
        std::unique_lock lock(pending->mu);
        pending->cv.wait_for(lock, std::chrono::milliseconds(cfg.durable_wait_ms),
                             [&] { return pending->remaining == 0; });
      }
      log_durability_error();
      // Every partition refused (stale metadata on one side): wait for a new image.
      if (!any_progress && !Backoff(cfg.backoff_ms)) return true;
    }
  }

  ReplicaFetcherManager* const manager_;
  const NodeId leader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<Partition>> parts_;
  std::shared_ptr<grpc::ClientContext> ctx_;
  bool stopping_ = false;
  bool restart_ = false;
  std::thread thread_;
};

ReplicaFetcherManager::ReplicaFetcherManager(ReplicaFetcherConfig config,
                                             PartitionManager* partitions, Controller* controller)
    : config_(config), partitions_(partitions), controller_(controller) {}

ReplicaFetcherManager::~ReplicaFetcherManager() { Stop(); }

void ReplicaFetcherManager::Start() {
  std::lock_guard lock(mu_);
  if (isr_keeper_.joinable() || stopping_) return;
  isr_keeper_ = std::thread([this] { RunIsrKeeper(); });
}

void ReplicaFetcherManager::Stop() {
  std::map<NodeId, std::unique_ptr<Fetcher>> fetchers;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    fetchers.swap(fetchers_);
    cv_.notify_all();
  }
  for (auto& [id, f] : fetchers) f->Stop();
  if (isr_keeper_.joinable()) isr_keeper_.join();
}

void ReplicaFetcherManager::Refresh() {
  std::map<NodeId, std::vector<std::shared_ptr<Partition>>> by_leader;
  for (auto& part : partitions_->All()) {
    ReplicaState s = part->replica_state();
    if (s.role != PartitionRole::kFollower || s.leader.value() < 0 || s.leader == config_.self ||
        (s.isr.empty() && s.replicas.empty())) {
      continue;
    }
    by_leader[s.leader].push_back(std::move(part));
  }
  std::lock_guard lock(mu_);
  if (stopping_) return;
  for (auto& [leader, parts] : by_leader) {
    auto& f = fetchers_[leader];
    if (!f) f = std::make_unique<Fetcher>(this, leader);
    f->SetPartitions(std::move(parts));
  }
  for (auto& [leader, f] : fetchers_) {
    if (by_leader.count(leader) == 0) f->SetPartitions({});
  }
}

size_t ReplicaFetcherManager::fetcher_count() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [id, f] : fetchers_) n += f->idle() ? 0 : 1;
  return n;
}

void ReplicaFetcherManager::RunIsrKeeper() {
  SetCurrentThreadName("rill-isr");
  while (true) {
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(config_.isr_check_interval_ms),
                   [this] { return stopping_; });
      if (stopping_) return;
    }
    const int64_t now = NowMs();
    auto image = partitions_->image();
    // Brokers fenced or shut down: no ISR expansion asks for them (LeaderReplica::WantedIsr).
    std::set<NodeId> fenced;
    if (image) {
      for (const auto& [id, b] : image->brokers) {
        if (b.fenced) fenced.insert(id);
      }
    }
    for (auto& part : partitions_->All()) {
      std::optional<IsrChangeRequest> change = part->TakeIsrChange(now, fenced);
      if (!change) continue;
      const TopicMetadata* t = image ? image->FindTopic(part->topic()) : nullptr;
      if (t == nullptr) {
        part->IsrChangeDone(Partition::IsrChangeOutcome::kStale, change->new_isr, now);
        continue;
      }
      AlterPartitionSpec spec;
      spec.topic = part->topic();
      spec.topic_id = t->topic_id;
      spec.partition = part->partition();
      spec.leader = config_.self;
      spec.leader_epoch = change->leader_epoch;
      spec.partition_epoch = change->partition_epoch;
      spec.new_isr = change->new_isr;
      std::string isr;
      for (NodeId n : spec.new_isr) isr += (isr.empty() ? "" : ",") + std::to_string(n.value());
      spdlog::info("{}-{}: asking the controller for ISR [{}]", spec.topic, spec.partition, isr);
      controller_->AlterPartition(
          std::move(spec), [part, want = change->new_isr](std::vector<TopicOpResult> results) {
            using Outcome = Partition::IsrChangeOutcome;
            Outcome outcome = Outcome::kUnknown;
            if (!results.empty()) {
              const TopicOpResult& r = results[0];
              if (r.error == TopicOpError::kNone) {
                outcome = Outcome::kApplied;
              } else if (r.error == TopicOpError::kStaleEpoch) {
                // Refused at an epoch the controller no longer has: metadata will tell.
                outcome = Outcome::kStale;
              } else if (r.error == TopicOpError::kInvalidRequest) {
                outcome = Outcome::kRefused;
              }
              if (r.error != TopicOpError::kNone) {
                spdlog::info("{}-{}: ISR change not made: {}", part->topic(), part->partition(),
                             r.message);
              }
            }
            part->IsrChangeDone(outcome, want, NowMs());
          });
    }
  }
}

}  // namespace rill::broker
