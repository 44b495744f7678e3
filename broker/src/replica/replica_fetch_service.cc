#include "replica/replica_fetch_service.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>

#include "partition/long_poll.h"

namespace rill::broker {
namespace {

namespace pb = internal::v1;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

pb::ReplicaFetchError ToWire(ReplicaFetchAnswer::Error e) {
  using E = ReplicaFetchAnswer::Error;
  switch (e) {
    case E::kNone:
      return pb::REPLICA_FETCH_NONE;
    case E::kNotLeader:
      return pb::REPLICA_FETCH_NOT_LEADER;
    case E::kFencedEpoch:
      return pb::REPLICA_FETCH_FENCED_EPOCH;
    case E::kUnknownEpoch:
      return pb::REPLICA_FETCH_UNKNOWN_EPOCH;
    case E::kNotReplica:
      return pb::REPLICA_FETCH_NOT_REPLICA;
    case E::kOutOfRange:
      return pb::REPLICA_FETCH_OUT_OF_RANGE;
    case E::kDiverging:
      return pb::REPLICA_FETCH_DIVERGING;
    case E::kStorage:
      return pb::REPLICA_FETCH_STORAGE;
  }
  return pb::REPLICA_FETCH_STORAGE;
}

class FetchReactor final
    : public grpc::ServerBidiReactor<pb::ReplicaFetchRequest, pb::ReplicaFetchResponse> {
 public:
  FetchReactor(PartitionManager* partitions, boost::asio::io_context* io,
               const ReplicaFetchServiceConfig& config,
               std::shared_ptr<const std::atomic<bool>> stopping)
      : state_(std::make_shared<State>()),
        partitions_(partitions),
        io_(io),
        config_(config),
        stopping_(std::move(stopping)) {
    state_->reactor = this;
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    std::unique_lock lock(state_->mu);
    if (!ok) {
      state_->read_done = true;
      if (!state_->writing) state_->FinishLocked(grpc::Status::OK);
      return;
    }
    if (state_->finish_called) return;
    if (request_.follower_id() <= 0) {
      state_->FinishLocked({grpc::StatusCode::INVALID_ARGUMENT, "follower_id must be > 0"});
      return;
    }
    // Resolve the partitions once per request; a missing or re-created one answers at once.
    auto call = std::make_shared<Call>();
    call->request = request_;
    call->max_bytes = std::clamp(request_.max_bytes(), 1, config_.max_bytes);
    call->partition_max_bytes =
        std::clamp(request_.partition_max_bytes(), 1, config_.partition_max_bytes);
    std::shared_ptr<const MetadataImage> image = partitions_->image();
    std::vector<std::shared_ptr<Partition>> watch;
    for (const auto& p : request_.partitions()) {
      std::shared_ptr<Partition> part = partitions_->Get(p.topic(), p.partition());
      const TopicMetadata* t = image ? image->FindTopic(p.topic()) : nullptr;
      if (t == nullptr || t->topic_id != p.topic_id()) part = nullptr;
      call->parts.push_back(part);
      if (part) watch.push_back(std::move(part));
    }
    std::shared_ptr<State> state = state_;
    if (stopping_->load(std::memory_order_acquire)) {
      // Shutting down: nothing is parked (the I/O threads stop first). What there is to send is
      // sent; a request with nothing to send ends the stream, since an empty answer would only
      // bring the follower's next request at once, round after round until the listener stops.
      // The follower backs off and reconnects, or follows the new leader.
      lock.unlock();
      if (!state->Attempt(*call, /*final=*/false)) {
        std::lock_guard relock(state->mu);
        state->FinishLocked({grpc::StatusCode::UNAVAILABLE, "broker is shutting down"});
      }
      return;
    }
    const int wait_ms = std::clamp(request_.max_wait_ms(), 0, config_.max_wait_ms);
    lock.unlock();
    LongPoll::Start(
        *io_, std::move(watch), std::chrono::milliseconds(wait_ms),
        [state, call](bool final) { return state->Attempt(*call, final); },
        LongPoll::Wake::kLogEnd);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lock(state_->mu);
    state_->writing = false;
    if (!ok) {
      state_->FinishLocked({grpc::StatusCode::CANCELLED, "write failed"});
      return;
    }
    if (state_->read_done) {
      state_->FinishLocked(grpc::Status::OK);
      return;
    }
    if (!state_->finish_called) StartRead(&request_);
  }

  // The follower went away or the server is shutting down: a parked request may never be
  // woken (the I/O threads stop before the internal listener), so finish now.
  void OnCancel() override {
    std::lock_guard lock(state_->mu);
    if (!state_->writing) state_->FinishLocked({grpc::StatusCode::CANCELLED, "cancelled"});
  }

  void OnDone() override {
    {
      std::lock_guard lock(state_->mu);
      state_->finished = true;
      state_->reactor = nullptr;
    }
    delete this;
  }

 private:
  struct Call {
    pb::ReplicaFetchRequest request;
    std::vector<std::shared_ptr<Partition>> parts;  // per request partition; null if not here
    int32_t max_bytes = 0;
    int32_t partition_max_bytes = 0;
  };

  struct State {
    std::mutex mu;
    FetchReactor* reactor = nullptr;  // null once the stream is done
    bool finished = false;            // OnDone ran
    bool finish_called = false;       // Finish was called (once only)
    bool writing = false;
    bool read_done = false;
    pb::ReplicaFetchResponse response;

    void FinishLocked(const grpc::Status& status) {
      if (finish_called || reactor == nullptr) return;
      finish_called = true;
      reactor->Finish(status);
    }

    // Builds the answer; sends it and returns true when it has data or an error, or is final.
    bool Attempt(const Call& call, bool final) {
      pb::ReplicaFetchResponse out;
      bool send = final;
      size_t budget = static_cast<size_t>(call.max_bytes);
      const int64_t now = NowMs();
      for (int i = 0; i < call.request.partitions_size(); ++i) {
        const pb::ReplicaFetchPartition& p = call.request.partitions(i);
        pb::ReplicaFetchPartitionData* d = out.add_partitions();
        d->set_topic(p.topic());
        d->set_partition(p.partition());
        const std::shared_ptr<Partition>& part = call.parts[i];
        if (!part) {
          d->set_error(pb::REPLICA_FETCH_UNKNOWN_TOPIC);
          d->set_error_message("this broker has no replica of " + p.topic() + "-" +
                               std::to_string(p.partition()) + " with that topic id");
          send = true;
          continue;
        }
        replication::FollowerFetch f;
        f.follower = NodeId(call.request.follower_id());
        f.current_leader_epoch = LeaderEpoch(p.current_leader_epoch());
        f.fetch_offset = Offset(p.fetch_offset());
        f.last_fetched_epoch = LeaderEpoch(p.last_fetched_epoch());
        f.durable_end = Offset(p.durable_end());
        const size_t max = std::min<size_t>(budget, call.partition_max_bytes);
        ReplicaFetchAnswer a = part->ServeReplicaFetch(f, max, now);
        budget -= std::min(budget, a.records.size());
        d->set_error(ToWire(a.error));
        d->set_error_message(std::move(a.message));
        d->set_high_watermark(a.high_watermark.value());
        d->set_log_start_offset(a.log_start.value());
        d->set_log_end_offset(a.log_end.value());
        d->set_diverging_epoch(a.diverging.epoch.value());
        d->set_diverging_end_offset(a.diverging.end_offset.value());
        if (a.error != ReplicaFetchAnswer::Error::kNone || !a.records.empty()) send = true;
        d->set_records(std::move(a.records));
      }
      if (!send) return false;
      std::lock_guard lock(mu);
      if (finished || finish_called || reactor == nullptr) return true;
      response = std::move(out);
      writing = true;
      reactor->StartWrite(&response);
      return true;
    }
  };

  std::shared_ptr<State> state_;
  PartitionManager* const partitions_;
  boost::asio::io_context* const io_;
  const ReplicaFetchServiceConfig config_;
  const std::shared_ptr<const std::atomic<bool>> stopping_;
  pb::ReplicaFetchRequest request_;
};

}  // namespace

ReplicaFetchService::ReplicaFetchService(PartitionManager* partitions, boost::asio::io_context* io,
                                         ReplicaFetchServiceConfig config)
    : partitions_(partitions), io_(io), config_(config) {}

grpc::ServerBidiReactor<internal::v1::ReplicaFetchRequest, internal::v1::ReplicaFetchResponse>*
ReplicaFetchService::Fetch(grpc::CallbackServerContext* context) {
  (void)context;
  return new FetchReactor(partitions_, io_, config_, stopping_);
}

}  // namespace rill::broker
