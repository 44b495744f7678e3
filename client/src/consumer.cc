#include "rill/client/consumer.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "bootstrap_list.h"
#include "consumer_stubs.h"
#include "group_membership.h"
#include "group_rpc.h"
#include "grpc_util.h"
#include "metadata_cache.h"
#include "rill/client/errors.h"
#include "rill/proto/assert.h"
#include "rill/proto/endian.h"
#include "rill/proto/thread_name.h"
#include "rill/v1/consumer.grpc.pb.h"
#include "rill/v1/groups.grpc.pb.h"

namespace rill::client {

using internal::GroupMembership;
using internal::MonotonicMs;
using internal::PartitionSet;
using internal::RebalanceEvent;
using internal::RebalanceEventKind;

static_assert(internal::kErrFencedMemberEpoch == v1::FENCED_MEMBER_EPOCH);
static_assert(internal::kErrUnknownMemberId == v1::UNKNOWN_MEMBER_ID);
static_assert(internal::kErrNotCoordinator == v1::NOT_COORDINATOR);
static_assert(internal::kErrCoordinatorNotAvailable == v1::COORDINATOR_NOT_AVAILABLE);
static_assert(internal::kErrUnreleasedInstanceId == v1::UNRELEASED_INSTANCE_ID);

// Fetched batches of one partition, waiting for Poll.
struct FetchedChunk {
  TopicPartition tp;
  uint64_t epoch = 0;  // the partition's seek epoch when fetched; stale chunks are dropped
  std::shared_ptr<const std::string> bytes;
  size_t pos = 0;  // next batch to decode
};

class ConsumerImpl {
 public:
  explicit ConsumerImpl(const ConsumerConfig& config);
  ~ConsumerImpl() { (void)Close(); }

  Status Assign(const std::vector<TopicPartition>& partitions);
  std::vector<TopicPartition> Assignment() const;
  Status Seek(const TopicPartition& tp, int64_t offset);
  Status SeekTo(const std::vector<TopicPartition>& partitions, int64_t spec);
  Result<std::vector<ConsumerRecord>> Poll(std::chrono::milliseconds timeout);
  Result<int64_t> Position(const TopicPartition& tp) const;
  Status Close();

  // Consumer groups.
  Status Subscribe(std::vector<std::string> topics, std::string regex,
                   ConsumerRebalanceListener* listener);
  Status Unsubscribe();
  std::vector<std::string> Subscription() const;
  Status Commit(const OffsetMap* offsets);
  void CommitAsync(CommitCallback callback);
  Result<OffsetMap> Committed(const std::vector<TopicPartition>& partitions);
  std::string MemberId() const;
  int32_t MemberEpoch() const;

 private:
  struct PartitionState {
    int64_t position = -1;        // next offset for the user; -1: unknown (reset pending)
    int64_t fetch_position = -1;  // next offset to fetch (ahead of position)
    uint64_t epoch = 0;         // changed by every seek; unique across partition states (NextEpoch)
    uint64_t fetch_call = 0;    // the Fetch in flight that asks for this partition; 0: none
    int64_t retry_at_ms = 0;    // after a leader error: not fetched before this (MonotonicMs)
    int32_t leader_errors = 0;  // leader errors in a row; each doubles the backoff
    Status error;               // an unrecoverable error, reported once by Poll
    bool stopped = false;       // after an error: not fetched until sought again
    bool use_committed = false;  // group: start at the committed offset (FetchOffsets)
    bool revoking = false;       // group: revoked or lost; never fetched or returned again
  };

  // A commit for the commit thread; `waiter` is set for synchronous commits.
  struct CommitWaiter {
    bool done = false;
    Status status;
  };
  struct CommitJob {
    OffsetMap offsets;
    CommitCallback callback;
    std::shared_ptr<CommitWaiter> waiter;
  };
  struct CommitDone {
    CommitCallback callback;
    Status status;
    OffsetMap offsets;
  };

  bool group() const { return rpc_ != nullptr; }
  // A fresh seek epoch. Unique across partition states, so that the results of a fetch made for
  // a partition that was revoked and assigned again never match its new state. mu_ held.
  uint64_t NextEpoch() { return ++epoch_counter_; }
  void HeartbeatLoop();
  void CommitLoop();
  // Sends one commit with retries (commit thread).
  Status SendCommit(const OffsetMap& offsets);
  // Queues a commit; waits for it when `callback` is null and `wait` is set. mu_ not held.
  Status CommitAndWait(OffsetMap offsets);
  // Positions of owned partitions (all, or those in `only`). mu_ held.
  OffsetMap PositionsLocked(const PartitionSet* only) const;
  // Stops fetching `tps` and drops their queued data. mu_ held.
  void StopFetchingLocked(const PartitionSet& tps);
  // Polling thread: async commit callbacks, rebalance events, auto-commit. Releases `lk` around
  // user callbacks.
  Status RunGroupWork(std::unique_lock<std::mutex>& lk);
  void HandleEvent(const RebalanceEvent& ev, std::unique_lock<std::mutex>& lk);
  // Revokes everything (callback, commit) and leaves the group. Returns the first error of the
  // final commit and the leave heartbeat (the member has left its partitions either way).
  Status LeaveGroup(std::unique_lock<std::mutex>& lk, bool stay_usable);
  // Group: resolves positions of partitions waiting for their committed offset; false on a
  // retriable failure.
  bool FetchCommittedPositions();

  // Where requests about a partition go: its leader per metadata, or a live broker while no
  // leader is known (it answers UNKNOWN_TOPIC for a topic that does not exist, NOT_LEADER for
  // one it does not lead).
  struct Route {
    std::string address;
    bool leader_known = false;
  };
  Route RouteOf(const TopicPartition& tp) const;
  // The backoff before the `attempt`th retry (from 1): retry_backoff_ms doubled per attempt, at
  // most retry_backoff_max_ms.
  int64_t BackoffMs(int32_t attempt) const;
  // A fetch or ListOffsets of `st` failed because its leader moved, is unknown or unreachable:
  // it waits out its backoff, and metadata is refreshed first. mu_ held.
  void LeaderErrorLocked(PartitionState& st);
  // Waits `ms` or until Close; false when closing. mu_ not held.
  bool WaitBackoff(int64_t ms);

  void FetcherLoop();
  // Refreshes metadata for the assigned topics when a leader error asked for it or a partition
  // to read has no known leader, at most once per retry_backoff_ms (fetcher thread).
  void MaybeRefreshMetadata();
  // Sends a Fetch to each leader that has partitions ready and no Fetch in flight. mu_ held.
  void StartFetchesLocked(grpc::CompletionQueue* cq);
  // One Fetch in flight to one broker. Owned by the fetcher thread; Close may cancel `ctx`.
  struct FetchCall {
    struct Sent {
      uint64_t epoch = 0;         // the partition's seek epoch when asked for
      bool leader_known = false;  // sent to its leader (not the live-broker fallback)
    };
    uint64_t id = 0;
    std::string address;
    grpc::ClientContext ctx;
    v1::FetchResponse resp;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<v1::FetchResponse>> reader;
    std::map<TopicPartition, Sent> sent;
  };
  // Applies the outcome of a finished Fetch. mu_ held.
  void HandleFetchLocked(FetchCall& call);
  // True when the fetcher has something to do now; else `*wake_at_ms` is lowered to when a
  // backoff ends (INT64_MAX: nothing pending). mu_ held.
  bool HasFetcherWorkLocked(int64_t now_ms, int64_t reset_retry_at_ms, int64_t* wake_at_ms) const;

  // The outcome of one round of ListOffsets, each partition asked of its leader.
  struct ListedOffsets {
    std::map<TopicPartition, int64_t> offsets;
    std::map<TopicPartition, Status> errors;  // not retriable (UNKNOWN_TOPIC, ...)
    std::vector<TopicPartition> retry;        // leader moved or unreachable: ask again
    Status retry_reason;                      // why the last of `retry` failed
  };
  ListedOffsets ListOffsetsOnce(const std::vector<TopicPartition>& tps, int64_t spec,
                                int64_t timeout_ms);
  // ListOffsets for `tps` with the given spec (-2 earliest, -1 latest, else a timestamp),
  // following leader changes with metadata refreshes and backoff for up to request_timeout_ms.
  Result<std::map<TopicPartition, int64_t>> ListOffsets(const std::vector<TopicPartition>& tps,
                                                        int64_t spec);
  // Resolves partitions without a position per auto_offset_reset; false when some must be asked
  // again (their leader moved or could not be reached).
  bool ResetPositions();
  // Decodes the next batch of the chunk into `out`; false when the chunk is used up.
  Status DecodeBatch(FetchedChunk& chunk, PartitionState& st, std::vector<ConsumerRecord>* out);

  const ConsumerConfig config_;
  internal::MetadataCache meta_;
  internal::ConsumerStubs stubs_;  // one per broker: fetches and ListOffsets go to the leaders

  mutable std::mutex mu_;
  std::condition_variable data_cv_;                 // chunks arrived or an error
  std::condition_variable fetcher_cv_;              // assignment, positions or queue space changed
  std::map<TopicPartition, PartitionState> parts_;  // guarded by mu_
  std::deque<FetchedChunk> queue_;                  // guarded by mu_
  int64_t queued_bytes_ = 0;                        // guarded by mu_
  uint64_t epoch_counter_ = 0;                      // guarded by mu_
  bool stopping_ = false;                           // guarded by mu_
  bool closed_ = false;
  // The Fetches in flight by call id, at most one per broker; guarded by mu_. The fetcher thread
  // owns them; Close cancels them.
  std::map<uint64_t, std::unique_ptr<FetchCall>> fetch_calls_;
  uint64_t last_fetch_call_ = 0;              // guarded by mu_
  bool need_metadata_ = false;                // guarded by mu_: a leader error asked for a refresh
  int64_t last_metadata_ms_ = INT64_MIN / 2;  // fetcher thread: when metadata was last refreshed
  std::thread fetcher_;

  // Consumer group state (group_id set); all guarded by mu_ unless noted.
  bool manual_ = false;                      // Assign() with partitions was used
  std::unique_ptr<internal::GroupRpc> rpc_;  // thread-safe
  std::unique_ptr<GroupMembership> membership_;
  ConsumerRebalanceListener* listener_ = nullptr;
  Status group_error_;             // reported once by Poll
  uint64_t leave_generation_ = 0;  // bumped by every leave: stale heartbeat answers are dropped
  bool hb_stopping_ = false;
  std::condition_variable hb_cv_;
  internal::RpcCanceller hb_cancel_;
  std::thread heartbeat_;
  std::deque<CommitJob> commit_queue_;
  std::deque<CommitDone> commit_done_;  // async completions for the polling thread
  bool commit_stopping_ = false;
  std::condition_variable commit_cv_;       // commit_queue_ grew or stopping
  std::condition_variable commit_done_cv_;  // a synchronous commit finished
  std::thread committer_;
  int64_t next_auto_commit_ms_ = 0;
  OffsetMap last_auto_commit_;
};

ConsumerImpl::ConsumerImpl(const ConsumerConfig& config)
    : config_(config), meta_(config.bootstrap, config.request_timeout_ms) {
  if (!config_.group_id.empty()) {
    internal::GroupMembershipConfig mc;
    mc.group_id = config_.group_id;
    mc.instance_id = config_.group_instance_id;
    mc.client_id = config_.client_id;
    mc.session_timeout_ms = config_.session_timeout_ms;
    mc.rebalance_timeout_ms = config_.rebalance_timeout_ms;
    mc.assignor = config_.group_remote_assignor;
    mc.retry_backoff_ms = config_.retry_backoff_ms;
    mc.retry_backoff_max_ms = config_.retry_backoff_max_ms;
    membership_ = std::make_unique<GroupMembership>(mc);
    rpc_ =
        std::make_unique<internal::GroupRpc>(&meta_, config_.group_id, config_.request_timeout_ms);
    next_auto_commit_ms_ = MonotonicMs() + config_.auto_commit_interval_ms;
    heartbeat_ = std::thread([this] {
      SetCurrentThreadName("rill-heartbeat");
      HeartbeatLoop();
    });
    committer_ = std::thread([this] {
      SetCurrentThreadName("rill-committer");
      CommitLoop();
    });
  }
  fetcher_ = std::thread([this] {
    SetCurrentThreadName("rill-fetcher");
    FetcherLoop();
  });
}

Status ConsumerImpl::Close() {
  Status result;
  if (group()) {
    {
      std::lock_guard lk(mu_);
      if (closed_) return Status::OK();
      hb_stopping_ = true;
    }
    hb_cv_.notify_all();
    hb_cancel_.Cancel();
    if (heartbeat_.joinable()) heartbeat_.join();
    {
      std::unique_lock lk(mu_);
      result = LeaveGroup(lk, /*stay_usable=*/false);
      commit_stopping_ = true;
    }
    commit_cv_.notify_all();
    if (committer_.joinable()) committer_.join();
  }
  {
    std::lock_guard lk(mu_);
    if (closed_) return Status::OK();
    closed_ = true;
    stopping_ = true;
    for (auto& [id, call] : fetch_calls_) call->ctx.TryCancel();
  }
  fetcher_cv_.notify_all();
  data_cv_.notify_all();
  if (fetcher_.joinable()) fetcher_.join();
  return result;
}

Status ConsumerImpl::Assign(const std::vector<TopicPartition>& partitions) {
  std::lock_guard lk(mu_);
  if (closed_) return Status::Failed("consumer is closed");
  if (group() && membership_->state() != GroupMembership::State::kUnsubscribed) {
    return Status::InvalidArgument("Assign() cannot be used while subscribed to group '" +
                                   config_.group_id + "'; call Unsubscribe() first");
  }
  manual_ = !partitions.empty();
  std::map<TopicPartition, PartitionState> next;
  for (const auto& tp : partitions) {
    if (tp.topic.empty() || tp.partition < 0) {
      return Status::InvalidArgument("invalid topic-partition '" + tp.ToString() + "'");
    }
    auto it = parts_.find(tp);
    if (it != parts_.end()) {
      next[tp] = it->second;
    } else {
      PartitionState st;
      st.epoch = NextEpoch();
      next[tp] = st;
    }
  }
  parts_ = std::move(next);
  // Chunks of partitions no longer assigned are dropped by Poll (no state for them).
  fetcher_cv_.notify_all();
  return Status::OK();
}

std::vector<TopicPartition> ConsumerImpl::Assignment() const {
  std::lock_guard lk(mu_);
  std::vector<TopicPartition> out;
  for (const auto& [tp, st] : parts_) out.push_back(tp);
  return out;
}

Status ConsumerImpl::Seek(const TopicPartition& tp, int64_t offset) {
  if (offset < 0)
    return Status::InvalidArgument("offset must be >= 0, not " + std::to_string(offset));
  std::lock_guard lk(mu_);
  auto it = parts_.find(tp);
  if (it == parts_.end()) return Status::InvalidArgument(tp.ToString() + " is not assigned");
  it->second.position = offset;
  it->second.fetch_position = offset;
  it->second.epoch = NextEpoch();
  it->second.error = Status::OK();
  it->second.stopped = false;
  fetcher_cv_.notify_all();
  return Status::OK();
}

ConsumerImpl::Route ConsumerImpl::RouteOf(const TopicPartition& tp) const {
  const int32_t leader = meta_.LeaderOf(tp);
  if (leader < 0) return Route{meta_.LiveAddress(), false};
  return Route{meta_.AddressOf(leader), true};
}

int64_t ConsumerImpl::BackoffMs(int32_t attempt) const {
  int64_t backoff = config_.retry_backoff_ms;
  for (int32_t i = 1; i < attempt && backoff < config_.retry_backoff_max_ms; ++i) backoff *= 2;
  return std::min<int64_t>(backoff, config_.retry_backoff_max_ms);
}

void ConsumerImpl::LeaderErrorLocked(PartitionState& st) {
  st.leader_errors++;
  st.retry_at_ms = MonotonicMs() + BackoffMs(st.leader_errors);
  need_metadata_ = true;
}

bool ConsumerImpl::WaitBackoff(int64_t ms) {
  std::unique_lock lk(mu_);
  fetcher_cv_.wait_for(lk, std::chrono::milliseconds(ms), [&] { return stopping_; });
  return !stopping_;
}

ConsumerImpl::ListedOffsets ConsumerImpl::ListOffsetsOnce(const std::vector<TopicPartition>& tps,
                                                          int64_t spec, int64_t timeout_ms) {
  ListedOffsets out;
  std::map<std::string, std::vector<TopicPartition>> by_address;
  std::map<TopicPartition, bool> leader_known;
  for (const auto& tp : tps) {
    Route r = RouteOf(tp);
    if (!r.leader_known && meta_.PartitionCount(tp.topic) >= 0) {
      // Leaderless for now (see StartFetchesLocked): asked again after a metadata refresh.
      out.retry.push_back(tp);
      out.retry_reason = Status::Unavailable(tp.ToString() + " has no leader");
      continue;
    }
    by_address[r.address].push_back(tp);
    leader_known[tp] = r.leader_known;
  }
  for (const auto& [address, group] : by_address) {
    v1::ListOffsetsRequest req;
    for (const auto& tp : group) {
      auto* p = req.add_partitions();
      p->set_topic(tp.topic);
      p->set_partition(tp.partition);
      p->set_timestamp(spec);
    }
    v1::ListOffsetsResponse resp;
    grpc::ClientContext ctx;
    internal::SetTimeout(&ctx, std::max<int64_t>(timeout_ms, 1));
    grpc::Status s = stubs_.For(address)->ListOffsets(&ctx, req, &resp);
    if (!s.ok()) {
      if (internal::IsConnectionFailure(s)) meta_.ReportUnreachable(address);
      Status st = internal::FromGrpc(s, "Consumer.ListOffsets", address);
      for (const auto& tp : group) {
        if (internal::IsRetriableGrpc(s)) {
          out.retry.push_back(tp);
          out.retry_reason = st;
        } else {
          out.errors[tp] = st;
        }
      }
      continue;
    }
    std::set<TopicPartition> answered;
    for (const auto& r : resp.partitions()) {
      TopicPartition tp{r.topic(), r.partition()};
      if (!leader_known.count(tp) || !answered.insert(tp).second) continue;
      if (r.error() == v1::NONE) {
        out.offsets[tp] = r.offset();
        continue;
      }
      Status es = StatusFromErrorCode(r.error(), r.error_message());
      es = Status(es.code(), tp.ToString() + ": " + es.message());
      // A leader that does not know the topic yet lags behind the metadata that named it; the
      // live-broker fallback's UNKNOWN_TOPIC means the topic does not exist.
      if (IsRetriableErrorCode(r.error()) || (r.error() == v1::UNKNOWN_TOPIC && leader_known[tp])) {
        out.retry.push_back(tp);
        out.retry_reason = es;
      } else {
        out.errors[tp] = es;
      }
    }
    for (const auto& tp : group) {
      if (!answered.count(tp)) {
        out.errors[tp] = Status::Failed("ListOffsets returned no result for " + tp.ToString());
      }
    }
  }
  if (!out.retry.empty()) {
    std::lock_guard lk(mu_);
    need_metadata_ = true;
  }
  return out;
}

Result<std::map<TopicPartition, int64_t>> ConsumerImpl::ListOffsets(
    const std::vector<TopicPartition>& tps, int64_t spec) {
  const int64_t deadline = MonotonicMs() + config_.request_timeout_ms;
  std::map<TopicPartition, int64_t> out;
  std::vector<TopicPartition> todo = tps;
  for (int32_t attempt = 0;; ++attempt) {
    bool unknown = attempt > 0;
    for (const auto& tp : todo) unknown = unknown || meta_.LeaderOf(tp) < 0;
    if (unknown) {
      std::set<std::string> topics;
      for (const auto& tp : todo) topics.insert(tp.topic);
      (void)meta_.Refresh({topics.begin(), topics.end()});  // on failure: the cached routes
    }
    ListedOffsets r = ListOffsetsOnce(todo, spec, deadline - MonotonicMs());
    if (!r.errors.empty()) return r.errors.begin()->second;
    out.merge(r.offsets);
    if (r.retry.empty()) return out;
    const int64_t backoff = BackoffMs(attempt + 1);
    if (MonotonicMs() + backoff >= deadline) return r.retry_reason;
    if (!WaitBackoff(backoff)) return Status::Failed("consumer is closed");
    todo = std::move(r.retry);
  }
}

Status ConsumerImpl::SeekTo(const std::vector<TopicPartition>& partitions, int64_t spec) {
  std::vector<TopicPartition> tps = partitions.empty() ? Assignment() : partitions;
  {
    std::lock_guard lk(mu_);
    for (const auto& tp : tps) {
      if (!parts_.count(tp)) return Status::InvalidArgument(tp.ToString() + " is not assigned");
    }
  }
  if (tps.empty()) return Status::OK();
  RILL_ASSIGN_OR_RETURN(auto offsets, ListOffsets(tps, spec));
  std::map<TopicPartition, int64_t> latest;
  for (auto& [tp, off] : offsets) {
    if (off < 0) {
      // A timestamp after every record: the end.
      if (latest.empty()) {
        RILL_ASSIGN_OR_RETURN(latest, ListOffsets(tps, -1));
      }
      off = latest[tp];
    }
    RILL_RETURN_IF_ERROR(Seek(tp, off));
  }
  return Status::OK();
}

Result<int64_t> ConsumerImpl::Position(const TopicPartition& tp) const {
  std::lock_guard lk(mu_);
  auto it = parts_.find(tp);
  if (it == parts_.end()) return Status::NotFound(tp.ToString() + " is not assigned");
  if (it->second.position < 0) {
    return Status::Unavailable("the position of " + tp.ToString() + " is not known yet");
  }
  return it->second.position;
}

bool ConsumerImpl::FetchCommittedPositions() {
  v1::FetchOffsetsRequest req;
  std::map<TopicPartition, uint64_t> epochs;
  {
    std::lock_guard lk(mu_);
    std::map<std::string, v1::TopicPartitions*> by_topic;
    for (auto& [tp, st] : parts_) {
      if (!st.use_committed || st.position >= 0 || st.revoking || st.stopped) continue;
      auto& t = by_topic[tp.topic];
      if (t == nullptr) {
        t = req.add_partitions();
        t->set_topic(tp.topic);
      }
      t->add_partitions(tp.partition);
      epochs[tp] = st.epoch;
    }
  }
  if (epochs.empty()) return true;
  req.set_group_id(config_.group_id);
  auto r = rpc_->FetchOffsets(req);
  if (!r.ok() || r->error() == v1::NOT_COORDINATOR || r->error() == v1::COORDINATOR_NOT_AVAILABLE) {
    rpc_->FindCoordinator();
    return false;
  }
  if (r->error() != v1::NONE) {
    Status es = StatusFromErrorCode(r->error(), r->error_message());
    std::lock_guard lk(mu_);
    group_error_ = Status(
        es.code(), "FetchOffsets of group '" + config_.group_id + "' failed: " + es.message());
    data_cv_.notify_all();
    return false;
  }
  std::lock_guard lk(mu_);
  for (const auto& c : r->offsets()) {
    TopicPartition tp{c.topic(), c.partition()};
    auto it = parts_.find(tp);
    auto e = epochs.find(tp);
    if (it == parts_.end() || e == epochs.end() || it->second.epoch != e->second) continue;
    PartitionState& st = it->second;
    if (st.position >= 0 || st.revoking || c.error() != v1::NONE) continue;
    st.use_committed = false;
    if (c.offset() >= 0) {
      st.position = c.offset();
      st.fetch_position = c.offset();
      st.epoch = NextEpoch();
    }
  }
  return true;
}

bool ConsumerImpl::ResetPositions() {
  if (group() && !FetchCommittedPositions()) return false;
  std::vector<TopicPartition> todo;
  {
    std::lock_guard lk(mu_);
    for (auto& [tp, st] : parts_) {
      if (st.position < 0 && st.error.ok() && !st.stopped && !st.revoking && !st.use_committed)
        todo.push_back(tp);
    }
  }
  if (todo.empty()) return true;
  if (config_.auto_offset_reset == OffsetReset::kError) {
    std::lock_guard lk(mu_);
    for (const auto& tp : todo) {
      auto it = parts_.find(tp);
      if (it != parts_.end() && it->second.position < 0) {
        it->second.error =
            Status::OutOfRange(tp.ToString() + ": no position and auto_offset_reset is 'error'");
      }
    }
    data_cv_.notify_all();
    return true;
  }
  const int64_t spec = config_.auto_offset_reset == OffsetReset::kEarliest ? -2 : -1;
  // One round; the fetcher loop retries what failed after a metadata refresh and a backoff.
  ListedOffsets r = ListOffsetsOnce(todo, spec, config_.request_timeout_ms);
  std::lock_guard lk(mu_);
  for (const auto& [tp, error] : r.errors) {
    auto it = parts_.find(tp);
    if (it != parts_.end() && it->second.position < 0) it->second.error = error;
  }
  if (!r.errors.empty()) data_cv_.notify_all();
  for (const auto& [tp, off] : r.offsets) {
    auto it = parts_.find(tp);
    if (it == parts_.end() || it->second.position >= 0) continue;
    it->second.position = off;
    it->second.fetch_position = off;
    it->second.epoch = NextEpoch();
  }
  return r.retry.empty();
}

void ConsumerImpl::MaybeRefreshMetadata() {
  std::vector<std::string> topics;
  const int64_t now = MonotonicMs();
  {
    std::lock_guard lk(mu_);
    if (now - last_metadata_ms_ < config_.retry_backoff_ms) return;
    bool unknown_leader = false;
    std::set<std::string> names;
    for (const auto& [tp, st] : parts_) {
      if (!st.error.ok() || st.stopped || st.revoking) continue;
      names.insert(tp.topic);
      unknown_leader = unknown_leader || meta_.LeaderOf(tp) < 0;
    }
    if (names.empty() || (!need_metadata_ && !unknown_leader)) {
      need_metadata_ = false;  // nothing to route
      return;
    }
    need_metadata_ = false;
    topics.assign(names.begin(), names.end());
  }
  last_metadata_ms_ = now;
  if (!meta_.Refresh(topics).ok()) {
    std::lock_guard lk(mu_);
    need_metadata_ = true;  // again after the backoff; meanwhile the cached leaders are used
  }
}

bool ConsumerImpl::HasFetcherWorkLocked(int64_t now_ms, int64_t reset_retry_at_ms,
                                        int64_t* wake_at_ms) const {
  if (stopping_) return true;
  if (queued_bytes_ >= config_.max_prefetch_bytes) return false;  // Poll makes room and wakes us
  for (const auto& [tp, st] : parts_) {
    if (!st.error.ok() || st.stopped || st.revoking) continue;
    if (st.position < 0) {  // to reset
      if (now_ms >= reset_retry_at_ms) return true;
      *wake_at_ms = std::min(*wake_at_ms, reset_retry_at_ms);
    } else if (st.fetch_position >= 0 && st.fetch_call == 0) {  // to fetch
      if (now_ms >= st.retry_at_ms) return true;
      *wake_at_ms = std::min(*wake_at_ms, st.retry_at_ms);
    }
  }
  return false;
}

void ConsumerImpl::StartFetchesLocked(grpc::CompletionQueue* cq) {
  if (queued_bytes_ >= config_.max_prefetch_bytes) return;
  const int64_t now = MonotonicMs();
  std::set<std::string> busy;
  for (const auto& [id, call] : fetch_calls_) busy.insert(call->address);
  std::map<std::string, std::unique_ptr<FetchCall>> calls;
  std::map<std::string, v1::FetchRequest> requests;
  for (auto& [tp, st] : parts_) {
    if (st.fetch_position < 0 || !st.error.ok() || st.stopped || st.revoking ||
        st.fetch_call != 0 || now < st.retry_at_ms) {
      continue;
    }
    Route route = RouteOf(tp);
    if (!route.leader_known) {
      need_metadata_ = true;
      // A partition of a topic the metadata knows, without a leader now (its broker could not
      // be reached, an election is under way): wait for metadata to name one rather than ask a
      // broker that may lag and call the topic unknown.
      if (meta_.PartitionCount(tp.topic) >= 0) {
        LeaderErrorLocked(st);
        continue;
      }
    }
    if (busy.count(route.address)) continue;  // with the next Fetch to that broker
    auto& call = calls[route.address];
    v1::FetchRequest& req = requests[route.address];
    if (call == nullptr) {
      call = std::make_unique<FetchCall>();
      call->address = route.address;
      req.set_max_wait_ms(config_.fetch_max_wait_ms);
      req.set_min_bytes(config_.fetch_min_bytes);
      req.set_max_bytes(config_.fetch_max_bytes);
      req.set_client_id(config_.client_id);
    }
    auto* p = req.add_partitions();
    p->set_topic(tp.topic);
    p->set_partition(tp.partition);
    p->set_fetch_offset(st.fetch_position);
    p->set_partition_max_bytes(config_.max_partition_fetch_bytes);
    call->sent[tp] = FetchCall::Sent{st.epoch, route.leader_known};
  }
  for (auto& [address, call] : calls) {
    call->id = ++last_fetch_call_;
    for (const auto& [tp, sent] : call->sent) parts_[tp].fetch_call = call->id;
    internal::SetTimeout(&call->ctx, config_.request_timeout_ms + config_.fetch_max_wait_ms);
    call->reader = stubs_.For(address)->AsyncFetch(&call->ctx, requests[address], cq);
    call->reader->Finish(&call->resp, &call->status, reinterpret_cast<void*>(call->id));
    fetch_calls_[call->id] = std::move(call);
  }
}

void ConsumerImpl::HandleFetchLocked(FetchCall& call) {
  for (const auto& [tp, sent] : call.sent) {
    auto it = parts_.find(tp);
    if (it != parts_.end() && it->second.fetch_call == call.id) it->second.fetch_call = 0;
  }
  // The partitions whose state is still the one the call was made for.
  auto current = [&](const TopicPartition& tp) -> PartitionState* {
    auto it = parts_.find(tp);
    auto sent = call.sent.find(tp);
    if (it == parts_.end() || sent == call.sent.end() || it->second.epoch != sent->second.epoch ||
        it->second.revoking) {
      return nullptr;
    }
    return &it->second;
  };
  if (!call.status.ok()) {
    if (internal::IsRetriableGrpc(call.status)) {
      // The broker may be down or no longer lead these: ask metadata (of another broker, if this
      // one cannot be reached) where they are now.
      if (internal::IsConnectionFailure(call.status)) meta_.ReportUnreachable(call.address);
      for (const auto& [tp, sent] : call.sent) {
        if (PartitionState* st = current(tp)) LeaderErrorLocked(*st);
      }
      return;
    }
    Status error = internal::FromGrpc(call.status, "Consumer.Fetch", call.address);
    for (const auto& [tp, sent] : call.sent) {
      if (PartitionState* st = current(tp)) st->error = error;
    }
    data_cv_.notify_all();
    return;
  }
  bool any = false;
  for (auto& r : *call.resp.mutable_partitions()) {
    TopicPartition tp{r.topic(), r.partition()};
    PartitionState* found = current(tp);
    if (found == nullptr) continue;
    PartitionState& st = *found;
    if (r.error() == v1::OFFSET_OUT_OF_RANGE) {
      st.leader_errors = 0;
      if (config_.auto_offset_reset == OffsetReset::kError) {
        st.error = Status::OutOfRange(
            tp.ToString() + ": offset " + std::to_string(st.fetch_position) + " is out of range [" +
            std::to_string(r.log_start_offset()) + ", " + std::to_string(r.high_watermark()) + "]");
        any = true;
      } else {
        st.position = -1;
        st.fetch_position = -1;
        st.epoch = NextEpoch();
      }
      continue;
    }
    if (r.error() != v1::NONE) {
      // NOT_LEADER, UNKNOWN_PARTITION and the like; UNKNOWN_TOPIC from a leader means it lags
      // behind the metadata that named it (the live-broker fallback's means the topic is gone).
      if (IsRetriableErrorCode(r.error()) ||
          (r.error() == v1::UNKNOWN_TOPIC && call.sent[tp].leader_known)) {
        LeaderErrorLocked(st);
      } else {
        Status es = StatusFromErrorCode(r.error(), r.error_message());
        st.error = Status(es.code(), tp.ToString() + ": " + es.message());
        any = true;
      }
      continue;
    }
    st.leader_errors = 0;
    if (r.records().empty()) continue;
    // Advance the fetch position past the last whole batch; a partial trailing batch is
    // fetched again.
    std::string_view bytes = r.records();
    size_t pos = 0;
    int64_t next = st.fetch_position;
    while (bytes.size() - pos >= batch::kHeaderSize) {
      const auto len = static_cast<int32_t>(be::Load32(bytes.data() + pos + batch::kLengthPos));
      if (len < 0) break;
      const size_t total = batch::kLogOverhead + static_cast<size_t>(len);
      if (total > bytes.size() - pos || total < batch::kHeaderSize) break;
      batch::Header h = batch::DecodeHeader(bytes.data() + pos);
      next = std::max(next, h.last_offset() + 1);
      pos += total;
    }
    if (pos == 0) continue;
    auto owned = std::make_shared<std::string>(std::move(*r.mutable_records()));
    owned->resize(pos);
    queued_bytes_ += static_cast<int64_t>(pos);
    queue_.push_back(FetchedChunk{tp, st.epoch, std::move(owned), 0});
    st.fetch_position = next;
    any = true;
  }
  if (any) data_cv_.notify_all();
}

// One thread drives every fetch: it sends a Fetch to each partition leader that has work, then
// handles whichever finishes first, so a long poll on an idle broker never holds up the data of
// another. A partition is in at most one Fetch at a time and its fetch position only moves on
// data accepted for its current seek epoch: moving to a new leader resumes exactly where the
// last accepted batch ended, so no record is lost or delivered twice.
void ConsumerImpl::FetcherLoop() {
  grpc::CompletionQueue cq;
  int64_t reset_retry_at = 0;  // after a failed position reset
  while (true) {
    {
      std::lock_guard lk(mu_);
      if (stopping_) break;
    }
    MaybeRefreshMetadata();
    if (MonotonicMs() >= reset_retry_at && !ResetPositions()) {
      reset_retry_at = MonotonicMs() + config_.retry_backoff_ms;
    }
    std::unique_lock lk(mu_);
    if (stopping_) break;
    StartFetchesLocked(&cq);
    if (fetch_calls_.empty()) {
      const int64_t now = MonotonicMs();
      int64_t wake_at = INT64_MAX;
      if (need_metadata_) wake_at = last_metadata_ms_ + config_.retry_backoff_ms;
      if (wake_at <= now || HasFetcherWorkLocked(now, reset_retry_at, &wake_at)) continue;
      if (wake_at == INT64_MAX) {
        fetcher_cv_.wait(lk);
      } else {
        fetcher_cv_.wait_for(lk, std::chrono::milliseconds(wake_at - now));
      }
      continue;
    }
    lk.unlock();
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok)) break;  // not before Shutdown
    lk.lock();
    auto it = fetch_calls_.find(reinterpret_cast<uint64_t>(tag));
    RILL_ASSERT(it != fetch_calls_.end(), "fetch completion for unknown call");
    std::unique_ptr<FetchCall> call = std::move(it->second);
    fetch_calls_.erase(it);
    if (stopping_) break;
    HandleFetchLocked(*call);
  }
  // Closing: cancel what is still in flight and wait for each call to finish before it dies.
  std::unique_lock lk(mu_);
  for (auto& [id, call] : fetch_calls_) call->ctx.TryCancel();
  while (!fetch_calls_.empty()) {
    lk.unlock();
    void* tag = nullptr;
    bool ok = false;
    const bool got = cq.Next(&tag, &ok);
    lk.lock();
    if (!got) break;
    fetch_calls_.erase(reinterpret_cast<uint64_t>(tag));
  }
  lk.unlock();
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

Status ConsumerImpl::DecodeBatch(FetchedChunk& chunk, PartitionState& st,
                                 std::vector<ConsumerRecord>* out) {
  const std::string& all = *chunk.bytes;
  std::string_view rest = std::string_view(all).substr(chunk.pos);
  RILL_ASSIGN_OR_RETURN(batch::Header h, batch::ParseHeader(rest));
  std::string_view one = rest.substr(0, h.total_size());
  chunk.pos += h.total_size();
  if (h.last_offset() < st.position) return Status::OK();  // entirely before the position

  batch::DecodeOptions opts;
  opts.verify_crc = config_.check_crcs;
  std::shared_ptr<const std::string> storage = chunk.bytes;
  std::string_view to_read = one;
  if (h.compression() != batch::Compression::kNone) {
    // Decompress into an uncompressed copy of the batch that the records can share.
    if (config_.check_crcs && !batch::CrcMatches(one)) {
      return Status::Corruption(chunk.tp.ToString() + ": batch at offset " +
                                std::to_string(h.base_offset) + " fails its CRC32C check");
    }
    RILL_ASSIGN_OR_RETURN(std::string plain,
                          batch::Decompress(h.compression(), one.substr(batch::kHeaderSize),
                                            opts.max_decompressed_bytes));
    auto copy = std::make_shared<std::string>();
    copy->reserve(batch::kHeaderSize + plain.size());
    copy->append(one.substr(0, batch::kHeaderSize));
    copy->append(plain);
    be::Store32(copy->data() + batch::kLengthPos,
                static_cast<uint32_t>(copy->size() - batch::kLogOverhead));
    be::Store16(copy->data() + batch::kAttributesPos,
                static_cast<uint16_t>(h.attributes & ~batch::kCompressionMask));
    opts.verify_crc = false;
    storage = copy;
    to_read = *copy;
  }
  auto reader = batch::BatchReader::Open(to_read, opts);
  if (!reader.ok()) {
    return Status(reader.status().code(), chunk.tp.ToString() + ": batch at offset " +
                                              std::to_string(h.base_offset) + ": " +
                                              reader.status().message());
  }
  batch::RecordView rv;
  while (true) {
    auto more = reader->Next(&rv);
    if (!more.ok()) {
      return Status(more.status().code(), chunk.tp.ToString() + ": batch at offset " +
                                              std::to_string(h.base_offset) + ": " +
                                              more.status().message());
    }
    if (!*more) break;
    if (rv.offset < st.position) continue;
    ConsumerRecord& cr = out->emplace_back();
    cr.topic = chunk.tp.topic;
    cr.partition = chunk.tp.partition;
    cr.offset = rv.offset;
    cr.timestamp_ms = rv.timestamp_ms;
    cr.key = rv.key;
    cr.value = rv.value;
    if (!rv.headers.empty()) cr.headers = rv.headers;
    cr.storage = storage;
  }
  st.position = std::max(st.position, h.last_offset() + 1);
  return Status::OK();
}

Result<std::vector<ConsumerRecord>> ConsumerImpl::Poll(std::chrono::milliseconds timeout) {
  std::vector<ConsumerRecord> out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock lk(mu_);
  if (closed_) return Status::Failed("consumer is closed");
  while (true) {
    if (group()) RILL_RETURN_IF_ERROR(RunGroupWork(lk));
    for (auto& [tp, st] : parts_) {
      if (!st.error.ok()) {
        // Reported once; the partition stays stopped until it is sought again.
        Status e = std::move(st.error);
        st.error = Status::OK();
        st.stopped = true;
        return e;
      }
    }
    bool freed = false;
    while (!queue_.empty() && static_cast<int32_t>(out.size()) < config_.max_poll_records) {
      FetchedChunk& chunk = queue_.front();
      auto it = parts_.find(chunk.tp);
      if (it == parts_.end() || it->second.epoch != chunk.epoch || it->second.revoking ||
          chunk.pos >= chunk.bytes->size()) {
        queued_bytes_ -= static_cast<int64_t>(chunk.bytes->size());
        queue_.pop_front();
        freed = true;
        continue;
      }
      Status s = DecodeBatch(chunk, it->second, &out);
      if (!s.ok()) {
        queued_bytes_ -= static_cast<int64_t>(chunk.bytes->size());
        queue_.pop_front();
        it->second.fetch_position = -1;  // stop fetching it until sought
        it->second.epoch = NextEpoch();
        fetcher_cv_.notify_all();
        it->second.stopped = true;
        if (!out.empty()) {
          it->second.error = s;  // reported by the next Poll
          it->second.stopped = false;
          return out;
        }
        return s;
      }
    }
    if (freed) fetcher_cv_.notify_all();
    if (!out.empty()) return out;
    if (data_cv_.wait_until(lk, deadline) == std::cv_status::timeout) {
      // One last look before giving up.
      if (queue_.empty() && (!group() || !membership_->HasEvents())) return out;
    }
    if (stopping_) return Status::Failed("consumer is closed");
  }
}

// ------------------------------------------------------------------ consumer groups

namespace {

v1::GroupHeartbeatRequest ToProto(const internal::HeartbeatRequest& hr,
                                  const ConsumerConfig& config) {
  v1::GroupHeartbeatRequest req;
  req.set_group_id(config.group_id);
  req.set_member_id(hr.member_id);
  req.set_member_epoch(hr.member_epoch);
  req.set_instance_id(config.group_instance_id);
  if (hr.member_epoch >= 0) {
    req.set_client_id(config.client_id);
    req.set_rebalance_timeout_ms(config.rebalance_timeout_ms);
    req.set_session_timeout_ms(config.session_timeout_ms);
    req.set_server_assignor(config.group_remote_assignor);
    for (const auto& t : hr.topics) req.add_subscribed_topic_names(t);
    req.set_subscribed_topic_regex(hr.topic_regex);
  }
  v1::TopicPartitions* cur = nullptr;
  for (const auto& tp : hr.owned) {  // sorted by topic
    if (cur == nullptr || cur->topic() != tp.topic) {
      cur = req.add_owned_partitions();
      cur->set_topic(tp.topic);
    }
    cur->add_partitions(tp.partition);
  }
  return req;
}

internal::HeartbeatResponse FromProto(const v1::GroupHeartbeatResponse& r) {
  internal::HeartbeatResponse out;
  out.error = r.error();
  out.error_message = r.error_message();
  out.member_id = r.member_id();
  out.member_epoch = r.member_epoch();
  out.heartbeat_interval_ms = r.heartbeat_interval_ms();
  out.has_assignment = r.has_assignment();
  for (const auto& t : r.assignment()) {
    for (int32_t p : t.partitions()) out.assignment.insert(TopicPartition{t.topic(), p});
  }
  return out;
}

bool RetriableCoordinatorError(int32_t code) {
  return code == v1::NOT_COORDINATOR || code == v1::COORDINATOR_NOT_AVAILABLE ||
         code == v1::REQUEST_TIMED_OUT;
}

}  // namespace

void ConsumerImpl::HeartbeatLoop() {
  std::unique_lock lk(mu_);
  while (!hb_stopping_) {
    const int64_t now = MonotonicMs();
    const int64_t due = membership_->NextHeartbeatMs();
    if (due > now) {
      if (due == INT64_MAX) {
        hb_cv_.wait(lk);
      } else {
        hb_cv_.wait_for(lk, std::chrono::milliseconds(due - now));
      }
      continue;
    }
    const uint64_t generation = leave_generation_;
    v1::GroupHeartbeatRequest req = ToProto(membership_->MakeHeartbeat(now), config_);
    lk.unlock();
    const int32_t timeout =
        std::max(1000, std::min(config_.request_timeout_ms, config_.session_timeout_ms));
    auto r = rpc_->Heartbeat(req, timeout, &hb_cancel_);
    lk.lock();
    if (hb_stopping_) break;
    if (generation != leave_generation_) continue;  // left meanwhile: the answer is stale
    internal::Reconcile rec = r.ok()
                                  ? membership_->OnHeartbeatResponse(FromProto(*r), MonotonicMs())
                                  : membership_->OnHeartbeatFailure(MonotonicMs());
    StopFetchingLocked(rec.stop_fetching);
    if (!rec.error.ok()) group_error_ = rec.error;
    if (!rec.error.ok() || membership_->HasEvents()) data_cv_.notify_all();
    if (rec.find_coordinator) {
      lk.unlock();
      rpc_->FindCoordinator();
      lk.lock();
    }
  }
}

void ConsumerImpl::StopFetchingLocked(const PartitionSet& tps) {
  if (tps.empty()) return;
  for (const auto& tp : tps) {
    auto it = parts_.find(tp);
    if (it == parts_.end()) continue;
    it->second.revoking = true;
    it->second.epoch = NextEpoch();  // in-flight fetch results are dropped
  }
  // Queued records of these partitions are never returned.
  for (auto it = queue_.begin(); it != queue_.end();) {
    if (tps.contains(it->tp)) {
      queued_bytes_ -= static_cast<int64_t>(it->bytes->size());
      it = queue_.erase(it);
    } else {
      ++it;
    }
  }
  fetcher_cv_.notify_all();
}

OffsetMap ConsumerImpl::PositionsLocked(const PartitionSet* only) const {
  OffsetMap out;
  for (const auto& [tp, st] : parts_) {
    if (st.position < 0 || !membership_->owned().contains(tp)) continue;
    if (only != nullptr && !only->contains(tp)) continue;
    out[tp] = st.position;
  }
  return out;
}

void ConsumerImpl::CommitLoop() {
  std::unique_lock lk(mu_);
  while (true) {
    commit_cv_.wait(lk, [&] { return commit_stopping_ || !commit_queue_.empty(); });
    if (commit_queue_.empty()) return;  // stopping and drained
    CommitJob job = std::move(commit_queue_.front());
    commit_queue_.pop_front();
    lk.unlock();
    Status st = SendCommit(job.offsets);
    lk.lock();
    if (job.waiter != nullptr) {
      job.waiter->done = true;
      job.waiter->status = st;
      commit_done_cv_.notify_all();
    } else if (job.callback) {
      commit_done_.push_back(CommitDone{std::move(job.callback), st, std::move(job.offsets)});
    }
  }
}

Status ConsumerImpl::SendCommit(const OffsetMap& offsets) {
  if (offsets.empty()) return Status::OK();
  const int64_t deadline = MonotonicMs() + config_.request_timeout_ms;
  int32_t backoff = config_.retry_backoff_ms;
  while (true) {
    v1::CommitOffsetsRequest req;
    req.set_group_id(config_.group_id);
    {
      std::lock_guard lk(mu_);
      if (membership_->member_id().empty()) {
        return Status::Failed("commit to group '" + config_.group_id +
                              "': this consumer is not a member of the group (not joined, "
                              "fenced or left)");
      }
      req.set_member_id(membership_->member_id());
      req.set_member_epoch(membership_->member_epoch());
    }
    for (const auto& [tp, off] : offsets) {
      auto* o = req.add_offsets();
      o->set_topic(tp.topic);
      o->set_partition(tp.partition);
      o->set_offset(off);
    }
    auto r = rpc_->Commit(req);
    Status st;
    bool retry = false;
    if (!r.ok()) {
      st = r.status();
      retry = st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kTimeout;
      if (retry) rpc_->FindCoordinator();
    } else if (r->error() != v1::NONE) {
      Status es = StatusFromErrorCode(r->error(), r->error_message());
      st = Status(es.code(), es.message() + " (commit to group '" + config_.group_id + "')");
      retry = RetriableCoordinatorError(r->error());
      // COORDINATOR_NOT_AVAILABLE too: the coordinator may be moving to another broker.
      if (r->error() == v1::NOT_COORDINATOR || r->error() == v1::COORDINATOR_NOT_AVAILABLE) {
        rpc_->FindCoordinator();
      }
    } else {
      for (const auto& pe : r->partitions()) {
        if (pe.error() == v1::NONE) continue;
        Status es = StatusFromErrorCode(pe.error(), pe.error_message());
        st = Status(es.code(), es.message() + " (commit of " + pe.topic() + "-" +
                                   std::to_string(pe.partition()) + " to group '" +
                                   config_.group_id + "')");
        retry = RetriableCoordinatorError(pe.error());
        break;
      }
      if (st.ok()) return st;
    }
    if (!retry || MonotonicMs() + backoff > deadline) return st;
    {
      std::unique_lock lk(mu_);
      // Woken early only by Close (then the commit is still finished or failed normally).
      commit_done_cv_.wait_for(lk, std::chrono::milliseconds(backoff));
    }
    backoff = std::min(backoff * 2, config_.retry_backoff_max_ms);
  }
}

Status ConsumerImpl::CommitAndWait(OffsetMap offsets) {
  if (offsets.empty()) return Status::OK();
  auto waiter = std::make_shared<CommitWaiter>();
  std::unique_lock lk(mu_);
  if (commit_stopping_) return Status::Failed("consumer is closed");
  commit_queue_.push_back(CommitJob{std::move(offsets), nullptr, waiter});
  commit_cv_.notify_all();
  commit_done_cv_.wait(lk, [&] { return waiter->done; });
  return waiter->status;
}

Status ConsumerImpl::Commit(const OffsetMap* offsets) {
  if (!group()) return Status::InvalidArgument("Commit() needs ConsumerConfig::group_id");
  OffsetMap todo;
  {
    std::lock_guard lk(mu_);
    if (closed_) return Status::Failed("consumer is closed");
    if (offsets != nullptr) {
      for (const auto& [tp, off] : *offsets) {
        if (off < 0) {
          return Status::InvalidArgument("commit offset of " + tp.ToString() +
                                         " must be >= 0, not " + std::to_string(off));
        }
      }
      todo = *offsets;
    } else {
      todo = PositionsLocked(nullptr);
    }
  }
  return CommitAndWait(std::move(todo));
}

void ConsumerImpl::CommitAsync(CommitCallback callback) {
  std::lock_guard lk(mu_);
  if (!group() || closed_ || commit_stopping_) {
    if (callback) {
      commit_done_.push_back(CommitDone{
          std::move(callback),
          group() ? Status::Failed("consumer is closed")
                  : Status::InvalidArgument("CommitAsync() needs ConsumerConfig::group_id"),
          {}});
    }
    return;
  }
  commit_queue_.push_back(CommitJob{PositionsLocked(nullptr), std::move(callback), nullptr});
  commit_cv_.notify_all();
}

Result<OffsetMap> ConsumerImpl::Committed(const std::vector<TopicPartition>& partitions) {
  if (!group()) return Status::InvalidArgument("Committed() needs ConsumerConfig::group_id");
  v1::FetchOffsetsRequest req;
  req.set_group_id(config_.group_id);
  for (const auto& tp : partitions) {
    auto* t = req.add_partitions();
    t->set_topic(tp.topic);
    t->add_partitions(tp.partition);
  }
  const int64_t deadline = MonotonicMs() + config_.request_timeout_ms;
  while (true) {
    auto r = rpc_->FetchOffsets(req);
    int32_t code = r.ok() ? r->error() : -1;
    if (r.ok() && code == v1::NONE) {
      OffsetMap out;
      for (const auto& c : r->offsets()) out[{c.topic(), c.partition()}] = c.offset();
      return out;
    }
    const bool retry = !r.ok() ? (r.status().code() == StatusCode::kUnavailable ||
                                  r.status().code() == StatusCode::kTimeout)
                               : RetriableCoordinatorError(code);
    if (!retry || MonotonicMs() + config_.retry_backoff_ms > deadline) {
      if (!r.ok()) return r.status();
      return StatusFromErrorCode(code, r->error_message());
    }
    rpc_->FindCoordinator();
    std::this_thread::sleep_for(std::chrono::milliseconds(config_.retry_backoff_ms));
  }
}

Status ConsumerImpl::RunGroupWork(std::unique_lock<std::mutex>& lk) {
  while (!commit_done_.empty()) {
    CommitDone d = std::move(commit_done_.front());
    commit_done_.pop_front();
    lk.unlock();
    d.callback(d.status, d.offsets);
    lk.lock();
  }
  while (auto ev = membership_->TakeEvent()) HandleEvent(*ev, lk);
  const int64_t now = MonotonicMs();
  if (config_.enable_auto_commit && now >= next_auto_commit_ms_) {
    next_auto_commit_ms_ = now + config_.auto_commit_interval_ms;
    OffsetMap positions = PositionsLocked(nullptr);
    if (!positions.empty() && positions != last_auto_commit_ &&
        membership_->state() == GroupMembership::State::kMember) {
      last_auto_commit_ = positions;
      commit_queue_.push_back(CommitJob{std::move(positions), nullptr, nullptr});
      commit_cv_.notify_all();
    }
  }
  if (!group_error_.ok()) return std::exchange(group_error_, Status::OK());
  return Status::OK();
}

void ConsumerImpl::HandleEvent(const RebalanceEvent& ev, std::unique_lock<std::mutex>& lk) {
  ConsumerRebalanceListener* listener = listener_;
  switch (ev.kind) {
    case RebalanceEventKind::kAssigned: {
      for (const auto& tp : ev.partitions) {
        PartitionState st;
        st.use_committed = true;
        st.epoch = NextEpoch();
        parts_[tp] = st;
      }
      fetcher_cv_.notify_all();
      lk.unlock();
      if (listener != nullptr) listener->OnPartitionsAssigned(ev.partitions);
      lk.lock();
      return;
    }
    case RebalanceEventKind::kRevoked: {
      lk.unlock();
      if (listener != nullptr) listener->OnPartitionsRevoked(ev.partitions);
      lk.lock();
      if (config_.enable_auto_commit) {
        PartitionSet only(ev.partitions.begin(), ev.partitions.end());
        OffsetMap offsets = PositionsLocked(&only);
        lk.unlock();
        // A failed commit (e.g. fenced) still releases the partitions: the next owner resumes
        // from the last successful commit.
        (void)CommitAndWait(std::move(offsets));
        lk.lock();
      }
      for (const auto& tp : ev.partitions) {
        auto it = parts_.find(tp);
        if (it != parts_.end() && it->second.revoking) parts_.erase(it);
      }
      membership_->RevocationDone(ev.partitions);
      hb_cv_.notify_all();
      return;
    }
    case RebalanceEventKind::kLost: {
      lk.unlock();
      if (listener != nullptr) listener->OnPartitionsLost(ev.partitions);
      lk.lock();
      for (const auto& tp : ev.partitions) {
        auto it = parts_.find(tp);
        if (it != parts_.end() && it->second.revoking) parts_.erase(it);
      }
      membership_->LostDone();
      hb_cv_.notify_all();
      return;
    }
  }
}

Status ConsumerImpl::LeaveGroup(std::unique_lock<std::mutex>& lk, bool stay_usable) {
  Status result;
  // Deliver what is pending so that the callbacks the user sees stay paired.
  while (auto ev = membership_->TakeEvent()) HandleEvent(*ev, lk);
  std::vector<TopicPartition> owned;
  for (const auto& [tp, st] : parts_) {
    if (!st.revoking && membership_->owned().contains(tp)) owned.push_back(tp);
  }
  if (!owned.empty()) {
    StopFetchingLocked(PartitionSet(owned.begin(), owned.end()));
    ConsumerRebalanceListener* listener = listener_;
    lk.unlock();
    if (listener != nullptr) listener->OnPartitionsRevoked(owned);
    lk.lock();
    if (config_.enable_auto_commit) {
      OffsetMap offsets = PositionsLocked(nullptr);
      lk.unlock();
      result = CommitAndWait(std::move(offsets));
      lk.lock();
    }
  }
  std::optional<internal::HeartbeatRequest> leave = membership_->MakeLeave(stay_usable);
  leave_generation_++;
  parts_.clear();
  for (const auto& c : queue_) queued_bytes_ -= static_cast<int64_t>(c.bytes->size());
  queue_.clear();
  fetcher_cv_.notify_all();
  if (leave.has_value()) {
    v1::GroupHeartbeatRequest req = ToProto(*leave, config_);
    lk.unlock();
    // One attempt: a member that cannot tell the coordinator is removed by its session timeout.
    // A coordinator that no longer knows the member (fenced, unknown) counts as left.
    auto r = rpc_->Heartbeat(req, std::min(config_.request_timeout_ms, 5000));
    Status left;
    if (!r.ok()) {
      left = r.status();
    } else if (r->error() != v1::NONE && r->error() != v1::FENCED_MEMBER_EPOCH &&
               r->error() != v1::UNKNOWN_MEMBER_ID) {
      left = StatusFromErrorCode(r->error(), r->error_message());
    }
    if (result.ok() && !left.ok()) {
      result = Status(left.code(), left.message() + " (leaving group '" + config_.group_id + "')");
    }
    lk.lock();
  }
  // Async commit callbacks still owed.
  while (!commit_done_.empty()) {
    CommitDone d = std::move(commit_done_.front());
    commit_done_.pop_front();
    lk.unlock();
    d.callback(d.status, d.offsets);
    lk.lock();
  }
  return result;
}

Status ConsumerImpl::Subscribe(std::vector<std::string> topics, std::string regex,
                               ConsumerRebalanceListener* listener) {
  if (!group()) {
    return Status::InvalidArgument("Subscribe() needs ConsumerConfig::group_id (or use Assign())");
  }
  std::lock_guard lk(mu_);
  if (closed_) return Status::Failed("consumer is closed");
  if (manual_) {
    return Status::InvalidArgument(
        "Subscribe() cannot be used after Assign(); call Assign({}) first");
  }
  RILL_RETURN_IF_ERROR(regex.empty() ? membership_->Subscribe(std::move(topics))
                                     : membership_->SubscribePattern(std::move(regex)));
  listener_ = listener;
  hb_cv_.notify_all();
  return Status::OK();
}

Status ConsumerImpl::Unsubscribe() {
  if (!group()) return Status::OK();
  std::unique_lock lk(mu_);
  if (closed_) return Status::Failed("consumer is closed");
  Status left = LeaveGroup(lk, /*stay_usable=*/true);
  listener_ = nullptr;
  return left;
}

std::vector<std::string> ConsumerImpl::Subscription() const {
  std::lock_guard lk(mu_);
  if (!group()) return {};
  if (!membership_->topic_regex().empty()) return {membership_->topic_regex()};
  return membership_->topics();
}

std::string ConsumerImpl::MemberId() const {
  std::lock_guard lk(mu_);
  return group() ? membership_->member_id() : std::string();
}

int32_t ConsumerImpl::MemberEpoch() const {
  std::lock_guard lk(mu_);
  return group() ? membership_->member_epoch() : 0;
}

// ------------------------------------------------------------------ Consumer

Consumer::Consumer(std::unique_ptr<ConsumerImpl> impl) : impl_(std::move(impl)) {}
Consumer::~Consumer() { (void)impl_->Close(); }

Result<std::unique_ptr<Consumer>> Consumer::Create(const ConsumerConfig& c) {
  if (auto b = internal::ParseBootstrapList(c.bootstrap); !b.ok()) return b.status();
  if (c.fetch_max_bytes <= 0 || c.max_partition_fetch_bytes <= 0 || c.max_poll_records <= 0 ||
      c.max_prefetch_bytes <= 0 || c.fetch_max_wait_ms < 0 || c.retry_backoff_ms <= 0 ||
      c.retry_backoff_max_ms < c.retry_backoff_ms) {
    return Status::InvalidArgument(
        "fetch_max_bytes, max_partition_fetch_bytes, max_poll_records, max_prefetch_bytes and "
        "retry_backoff_ms must be positive, fetch_max_wait_ms non-negative, retry_backoff_max_ms "
        ">= retry_backoff_ms");
  }
  if (!c.group_id.empty()) {
    if (c.session_timeout_ms <= 0 || c.rebalance_timeout_ms <= 0 ||
        c.auto_commit_interval_ms <= 0) {
      return Status::InvalidArgument(
          "session_timeout_ms, rebalance_timeout_ms and auto_commit_interval_ms must be positive");
    }
    if (!c.group_remote_assignor.empty() && c.group_remote_assignor != "uniform" &&
        c.group_remote_assignor != "range") {
      return Status::InvalidArgument("group_remote_assignor must be 'uniform' or 'range', not '" +
                                     c.group_remote_assignor + "'");
    }
  } else if (!c.group_instance_id.empty()) {
    return Status::InvalidArgument("group_instance_id needs group_id");
  }
  return std::unique_ptr<Consumer>(new Consumer(std::make_unique<ConsumerImpl>(c)));
}

Status Consumer::Subscribe(const std::vector<std::string>& topics,
                           ConsumerRebalanceListener* listener) {
  return impl_->Subscribe(topics, "", listener);
}
Status Consumer::SubscribePattern(const std::string& regex, ConsumerRebalanceListener* listener) {
  if (regex.empty()) return Status::InvalidArgument("subscribe: empty topic pattern");
  return impl_->Subscribe({}, regex, listener);
}
Status Consumer::Unsubscribe() { return impl_->Unsubscribe(); }
std::vector<std::string> Consumer::Subscription() const { return impl_->Subscription(); }
Status Consumer::Commit() { return impl_->Commit(nullptr); }
Status Consumer::Commit(const OffsetMap& offsets) { return impl_->Commit(&offsets); }
void Consumer::CommitAsync(CommitCallback callback) { impl_->CommitAsync(std::move(callback)); }
Result<OffsetMap> Consumer::Committed(const std::vector<TopicPartition>& partitions) {
  return impl_->Committed(partitions);
}
std::string Consumer::MemberId() const { return impl_->MemberId(); }
int32_t Consumer::MemberEpoch() const { return impl_->MemberEpoch(); }

Status Consumer::Assign(const std::vector<TopicPartition>& p) { return impl_->Assign(p); }
std::vector<TopicPartition> Consumer::Assignment() const { return impl_->Assignment(); }
Status Consumer::Seek(const TopicPartition& tp, int64_t offset) { return impl_->Seek(tp, offset); }
Status Consumer::SeekToBeginning(const std::vector<TopicPartition>& p) {
  return impl_->SeekTo(p, -2);
}
Status Consumer::SeekToEnd(const std::vector<TopicPartition>& p) { return impl_->SeekTo(p, -1); }
Status Consumer::SeekToTimestamp(const std::vector<TopicPartition>& p, int64_t ts) {
  if (ts < 0) return Status::InvalidArgument("timestamp must be >= 0");
  return impl_->SeekTo(p, ts);
}
Result<std::vector<ConsumerRecord>> Consumer::Poll(std::chrono::milliseconds timeout) {
  return impl_->Poll(timeout);
}
Result<int64_t> Consumer::Position(const TopicPartition& tp) const { return impl_->Position(tp); }
Status Consumer::Close() { return impl_->Close(); }

}  // namespace rill::client
