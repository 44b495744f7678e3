#include "raft_driver.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <random>

#include "raft_codec.h"
#include "rill/proto/thread_name.h"
#include "rill/replication/disk_raft_storage.h"
#include "rill/storage/file_system.h"

namespace rill::broker {
namespace {

using Clock = std::chrono::steady_clock;

// Bounds (docs/CONVENTIONS.md §9: a limit on everything).
constexpr size_t kMaxInboxMessages = 8192;  // Raft messages received, not yet stepped
constexpr size_t kMaxQueuedTasks = 4096;    // tasks waiting for the driver thread

// Work cut short by Stop() (mapped to BROKER_NOT_AVAILABLE).
Status Stopped() { return Status::Failed("the controller is shutting down"); }

}  // namespace

RaftDriver::RaftDriver(const ControllerConfig& config, Callbacks* callbacks)
    : config_(config), callbacks_(callbacks) {}

RaftDriver::~RaftDriver() { Stop(); }

bool RaftDriver::IsVoter() const {
  for (const VoterAddress& v : config_.voters) {
    if (v.node_id == config_.node_id) return true;
  }
  return false;
}

Status RaftDriver::Open() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return Status::Failed("controller already started");
    if (stopping_) return Status::Failed("controller stopped");
  }
  if (config_.node_id.value() <= 0) {
    return Status::InvalidArgument("controller node id must be > 0");
  }
  if (config_.tick_ms <= 0) return Status::InvalidArgument("controller tick_ms must be > 0");
  std::vector<NodeId> voter_ids;
  for (const VoterAddress& v : config_.voters) voter_ids.push_back(v.node_id);

  RILL_ASSIGN_OR_RETURN(auto storage, raft::DiskRaftStorage::Open(storage::DefaultFileSystem(),
                                                                  config_.metadata_dir));
  RILL_ASSIGN_OR_RETURN(raft::RaftInitialState initial, storage->Load());
  storage_ = std::move(storage);
  if (initial.snapshot) {
    const uint64_t index = initial.snapshot->metadata.index.value();
    RILL_RETURN_IF_ERROR(callbacks_->RestoreSnapshot(
        *initial.snapshot,
        "at raft index " + std::to_string(index) + " in " + config_.metadata_dir));
    applied_index_ = index;
    applied_term_ = initial.snapshot->metadata.term;
    snapshot_index_ = index;
  }
  recovered_entries_ = initial.entries.size();

  raft::RaftConfig rc;
  rc.id = config_.node_id;
  rc.configuration = IsVoter() ? raft::Configuration::Of(voter_ids)
                               : raft::Configuration::Of(voter_ids, {config_.node_id});
  rc.election_tick = config_.election_ticks;
  rc.heartbeat_tick = config_.heartbeat_ticks;
  rc.random_seed = (uint64_t(std::random_device()()) << 32) ^ std::random_device()();
  RILL_ASSIGN_OR_RETURN(raft_, raft::RaftNode::Create(rc, std::move(initial)));

  transport_ = std::make_unique<RaftTransport>(config_.node_id, config_.voters);
  transport_->Start();
  return Status::OK();
}

Result<RaftDriver::Recovery> RaftDriver::Recover() {
  // Replay the committed log before anyone reads the state.
  RILL_RETURN_IF_ERROR(ProcessReady());
  const bool voter = IsVoter();
  // A quorum of one need not wait for an election timeout.
  // It also commits its cluster id and registration before Start returns.
  if (voter && raft_->configuration().voters.size() == 1) {
    raft_->Campaign();
    RILL_RETURN_IF_ERROR(ProcessReady());
    callbacks_->Housekeeping();
    RILL_RETURN_IF_ERROR(ProcessReady());
  }
  PublishAndComplete();
  Recovery out;
  out.voter = voter;
  out.voters = raft_->configuration().voters.size();
  out.snapshot_index = snapshot_index_;
  out.log_entries = recovered_entries_;
  return out;
}

Status RaftDriver::StartThread() {
  std::lock_guard<std::mutex> lock(mu_);
  if (started_) return Status::Failed("controller already started");
  started_ = true;
  thread_ = std::thread([this] {
    SetCurrentThreadName("rill-controller");
    Run();
  });
  return Status::OK();
}

void RaftDriver::Stop() {
  std::deque<Task> leftover;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  if (transport_) transport_->Stop();  // forwarded calls complete (and find us stopping)
  {
    std::lock_guard<std::mutex> lock(mu_);
    leftover.swap(tasks_);
  }
  Status stopped = Stopped();
  for (Task& t : leftover) t(stopped);
  std::vector<std::function<void()>> completed;
  completed.swap(completed_);
  for (auto& c : completed) c();
  FailPending(stopped);
  active_.store(false, std::memory_order_release);
}

bool RaftDriver::Post(Task task) {
  Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_ && tasks_.size() < kMaxQueuedTasks) {
      tasks_.push_back(std::move(task));
      cv_.notify_all();
      return true;
    }
    refused = stopping_ ? Stopped()
                        : Status::ResourceExhausted("more than " + std::to_string(kMaxQueuedTasks) +
                                                    " controller operations are queued");
  }
  task(refused);
  return false;
}

void RaftDriver::Deliver(const internal::v1::RaftMessageBatch& batch) {
  std::vector<raft::Message> decoded;
  decoded.reserve(batch.messages_size());
  for (const internal::v1::RaftMessage& m : batch.messages()) {
    Result<raft::Message> msg = DecodeRaftMessage(m);
    if (!msg.ok()) {
      spdlog::warn("controller {}: dropping a raft message from node {}: {}",
                   config_.node_id.value(), m.from(), msg.status().ToString());
      continue;
    }
    decoded.push_back(std::move(msg).value());
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_) return;
  for (raft::Message& m : decoded) {
    if (inbox_.size() >= kMaxInboxMessages) break;  // Raft resends what is lost
    inbox_.push_back(std::move(m));
  }
  cv_.notify_all();
}

void RaftDriver::Run() {
  auto next_tick = Clock::now() + std::chrono::milliseconds(config_.tick_ms);
  while (true) {
    std::vector<raft::Message> inbox;
    std::deque<Task> tasks;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_until(lock, next_tick,
                     [this] { return stopping_ || !inbox_.empty() || !tasks_.empty(); });
      if (stopping_) return;
      inbox.swap(inbox_);
      tasks.swap(tasks_);
    }
    if (!failed_.ok()) {
      for (Task& t : tasks) t(failed_);
      continue;
    }
    for (const raft::Message& m : inbox) {
      Status st = raft_->Step(m);
      if (!st.ok()) {
        spdlog::warn("controller {}: raft rejected {}: {}", config_.node_id.value(), m.ToString(),
                     st.ToString());
      }
    }
    for (Task& t : tasks) t(Status::OK());
    auto now = Clock::now();
    if (now >= next_tick) {
      next_tick += std::chrono::milliseconds(config_.tick_ms);
      // After a stall, do not tick a burst to catch up.
      if (next_tick < now) next_tick = now + std::chrono::milliseconds(config_.tick_ms);
      raft_->Tick();
      ++ticks_;
      ExpireDeadlines();
      callbacks_->OnTick();
    }
    Status st = ProcessReady();
    if (st.ok()) {
      callbacks_->Housekeeping();
      st = ProcessReady();
    }
    if (st.ok()) st = MaybeSnapshot();
    if (!st.ok()) {
      // The metadata log's state on disk is unknown: stop acting on it (LevelDB's rule).
      spdlog::error("controller {}: the metadata log failed; this controller stops: {}",
                    config_.node_id.value(), st.ToString());
      failed_ = Status::Failed("the metadata log failed: " + st.ToString());
      FailPending(failed_);
      active_.store(false, std::memory_order_release);
    }
    PublishAndComplete();
  }
}

Status RaftDriver::ProcessReady() {
  while (raft_->HasReady()) {
    raft::Ready rd = raft_->GetReady();
    // Persist (and fsync) before anything is sent: a vote or an ack promises durable state.
    RILL_RETURN_IF_ERROR(raft::PersistReady(*storage_, rd));
    if (!rd.messages.empty()) transport_->Send(std::move(rd.messages));
    if (rd.snapshot) {
      const uint64_t index = rd.snapshot->metadata.index.value();
      RILL_RETURN_IF_ERROR(callbacks_->RestoreSnapshot(
          *rd.snapshot, "from the leader at raft index " + std::to_string(index)));
      applied_index_ = index;
      applied_term_ = rd.snapshot->metadata.term;
      snapshot_index_ = index;
      // Proposals the snapshot covers: their outcome is not known here.
      while (!pending_.empty() && pending_.begin()->first <= rd.snapshot->metadata.index) {
        auto done = std::move(pending_.begin()->second.done);
        pending_.erase(pending_.begin());
        done(
            Status::Timeout("the outcome is unknown (a snapshot replaced the log); check and "
                            "retry"));
      }
    }
    for (const raft::Entry& entry : rd.committed_entries) {
      Status outcome = callbacks_->ApplyEntry(entry);
      applied_index_ = entry.index.value();
      applied_term_ = entry.term;
      auto it = pending_.find(entry.index);
      if (it == pending_.end()) continue;
      Pending p = std::move(it->second);
      pending_.erase(it);
      if (p.term != entry.term) {
        outcome = Status::Unavailable(
            "the controller lost its leadership before the operation committed; retry");
      }
      // Completed after the state that holds the outcome is published (PublishAndComplete).
      completed_.push_back([done = std::move(p.done), outcome] { done(outcome); });
    }
    raft_->Advance();
  }
  active_.store(IsLeader(), std::memory_order_release);
  if (!IsRaftLeader()) FailOverwrittenProposals();
  return Status::OK();
}

void RaftDriver::FailOverwrittenProposals() {
  // A proposal whose entry is no longer in the log with its term was replaced by a new leader:
  // it will never commit. (One still there may yet commit; it waits to be applied.)
  for (auto it = pending_.begin(); it != pending_.end();) {
    std::optional<Term> term = raft_->TermAt(it->first);
    if (it->first > raft_->snapshot_index() && (!term || *term != it->second.term)) {
      auto done = std::move(it->second.done);
      it = pending_.erase(it);
      done(Status::Unavailable(
          "the controller lost its leadership before the operation committed; retry"));
    } else {
      ++it;
    }
  }
}

void RaftDriver::PublishAndComplete() {
  callbacks_->Publish(raft_->leader());
  // Operations complete once the published state shows their outcome.
  std::vector<std::function<void()>> completed;
  completed.swap(completed_);
  for (auto& c : completed) c();
}

Status RaftDriver::MaybeSnapshot() {
  if (config_.snapshot_every_records == 0) return Status::OK();
  if (applied_index_ < snapshot_index_ + config_.snapshot_every_records) return Status::OK();
  raft::LogIndex index(applied_index_);
  RILL_RETURN_IF_ERROR(raft_->CompactLog(index, callbacks_->SnapshotData()));
  RILL_RETURN_IF_ERROR(storage_->SaveSnapshot(*raft_->snapshot()));
  spdlog::info("controller {}: snapshot of the metadata image at raft index {}",
               config_.node_id.value(), applied_index_);
  snapshot_index_ = applied_index_;
  return Status::OK();
}

void RaftDriver::ExpireDeadlines() {
  // Proposals that outlived their deadline.
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (ticks_ >= it->second.deadline_tick) {
      auto done = std::move(it->second.done);
      it = pending_.erase(it);
      done(Status::Timeout("the operation did not commit in time; it may still be applied"));
    } else {
      ++it;
    }
  }
}

void RaftDriver::FailPending(const Status& st) {
  std::map<raft::LogIndex, Pending> pending;
  pending.swap(pending_);
  for (auto& [index, p] : pending) p.done(st);
  callbacks_->FailWaiting(st);
}

void RaftDriver::Propose(std::string data, std::function<void(const Status&)> done) {
  {
    // Once Stop has failed the pending proposals, nothing would ever complete a new one (a
    // callback of a failed proposal may propose again: the controller's deferred operations).
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      Status stopped = Stopped();
      done(stopped);
      return;
    }
  }
  Result<raft::LogIndex> index = raft_->Propose(std::move(data));
  if (!index.ok()) {
    done(index.status());
    return;
  }
  uint64_t timeout_ticks =
      std::max<uint64_t>(4 * uint64_t(config_.election_ticks), 30000 / uint64_t(config_.tick_ms));
  pending_.emplace(*index, Pending{raft_->term(), ticks_ + timeout_ticks, std::move(done)});
}

void RaftDriver::Forward(NodeId peer, internal::v1::ForwardRequest request, int timeout_ms,
                         RaftTransport::ForwardCallback done) {
  transport_->Forward(peer, std::move(request), timeout_ms, std::move(done));
}

void RaftDriver::SyncLearners(const std::map<NodeId, BrokerRegistration>& brokers) {
  for (const auto& [id, b] : brokers) {
    if (id == config_.node_id || raft_->configuration().IsVoter(id)) continue;
    transport_->SetPeer(id, b.InternalHost(), b.internal_port);
    if (!raft_->configuration().IsLearner(id)) {
      Status st = raft_->AddLearner(id);
      if (!st.ok()) {
        spdlog::warn("controller {}: broker {} cannot follow the metadata log: {}",
                     config_.node_id.value(), id.value(), st.ToString());
        continue;
      }
      spdlog::info("controller {}: broker {} ({}:{}) follows the metadata log as a learner",
                   config_.node_id.value(), id.value(), b.InternalHost(), b.internal_port);
    }
  }
}

}  // namespace rill::broker
