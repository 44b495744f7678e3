// The flusher of a Log (docs/STORAGE.md, Writing: flush policies): its rounds on the shared
// FlushScheduler's threads (RunFlushRound: group commit with its short poll for the next append,
// interval ticks, and between groups the idle work of log_standby.cc), one sync round
// (SyncPending, SyncAndAdvance), Flush, and dropping the page cache behind the synced end
// (DropCacheBehind).
// Locks: RunFlushRound reads its inputs under durable_mu_ and releases it for all work.
// SyncPending holds write_mu_ only to snapshot what to sync; the fsyncs run without a lock (reads
// and appends go on), then AdvanceDurable takes durable_mu_ (log_durability.cc). SyncAndAdvance
// is also called by ApplyConfig under write_mu_. DropCacheBehind try-locks cache_mu_.

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <thread>
#include <vector>

#include "rill/proto/assert.h"
#include "rill/storage/log.h"
#include "segment.h"

namespace rill::storage {

Log::PendingSync Log::TakePendingSync() {
  PendingSync p;
  p.start = std::chrono::steady_clock::now();
  std::lock_guard lock(write_mu_);
  p.target = log_end_offset().value();
  const uint64_t end_bytes = active()->size();
  const auto group =
      static_cast<int64_t>(end_bytes >= synced_size_ ? end_bytes - synced_size_ : end_bytes);
  last_group_bytes_.store(group, std::memory_order_relaxed);
  p.group_bytes = group;
  // Average group size (weight 1/8 per group), for the standby's regime check: one small
  // group in a saturating stream must not start zero-filling.
  const int64_t avg = group_bytes_avg_.load(std::memory_order_relaxed);
  group_bytes_avg_.store(avg - avg / 8 + group / 8, std::memory_order_relaxed);
  synced_size_ = end_bytes;
  p.synced_active = end_bytes;
  p.segs = std::move(unsynced_closed_);
  unsynced_closed_.clear();
  p.segs.push_back(active());
  p.dir_dirty = dir_dirty_;
  dir_dirty_ = false;
  p.truncations_seen = truncations_;
  return p;
}

Status Log::CompleteSync(const PendingSync& p, bool files_synced) {
  sync_count_.fetch_add(1, std::memory_order_relaxed);
  RILL_RETURN_IF_ERROR(SyncAndAdvance(p.segs, p.dir_dirty, p.target, p.truncations_seen,
                                      p.group_bytes, files_synced, p.start));
  // Closed segments were part of this round: everything below the active one is durable now.
  if (p.segs.size() > 1) AdvanceRecoveryPoint(p.segs.back()->base_offset(), p.truncations_seen);
  if (config_.cache_behind_bytes >= 0) DropCacheBehind(p.segs.back(), p.synced_active);
  return Status::OK();
}

Status Log::SyncPending(bool* did_work) {
  const PendingSync p = TakePendingSync();
  *did_work = true;
  return CompleteSync(p, /*files_synced=*/false);
}

Status Log::SyncAndAdvance(const std::vector<std::shared_ptr<Segment>>& segs, bool dir_dirty,
                           int64_t target, uint64_t truncations_seen, int64_t group_bytes,
                           bool files_synced, std::chrono::steady_clock::time_point start) {
  if (start == std::chrono::steady_clock::time_point{}) start = std::chrono::steady_clock::now();
  for (const auto& s : segs) {
    if (files_synced) break;
    Status st = s->Sync();
    if (!st.ok()) return Fail(st);
  }
  if (dir_dirty) {
    Status st = fs_->SyncDir(dir_);
    if (!st.ok()) return Fail(st);
  }
  if (group_bytes >= 0 && config_.on_sync) {
    config_.on_sync(std::chrono::steady_clock::now() - start, static_cast<uint64_t>(group_bytes));
  }
  AdvanceDurable(Offset(target), truncations_seen);
  return Status::OK();
}

void Log::DropCacheBehind(const std::shared_ptr<Segment>& synced, uint64_t synced_bytes) {
  std::unique_lock drop(cache_mu_, std::try_to_lock);
  if (!drop.owns_lock()) return;  // another sync is doing it
  std::vector<std::shared_ptr<Segment>> segs;
  {
    std::shared_lock lock(segments_mu_);
    segs = segments_;
  }
  // Newest first: `synced` up to the bytes synced, older segments whole, until the newest
  // cache_behind_bytes are accounted for; a segment found fully dropped ends the walk.
  uint64_t keep = static_cast<uint64_t>(config_.cache_behind_bytes);
  bool seen_synced = false;
  for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
    if (!seen_synced) {
      if (*it != synced) continue;  // segments newer than the sync: not synced yet
      seen_synced = true;
    }
    uint64_t end = *it == synced ? synced_bytes : (*it)->size();
    uint64_t drop_to = end > keep ? end - keep : 0;
    if (*it != synced && drop_to == end && (*it)->cache_dropped() >= end) break;
    (*it)->DropCacheBefore(drop_to, 4u << 20);
    keep = keep > end ? keep - end : 0;
  }
}

Status Log::Flush() {
  {
    std::lock_guard dl(durable_mu_);
    if (!failure_.ok()) return failure_;
  }
  bool did;
  return SyncPending(&did);
}

void Log::PollForAppend() {
  const auto until =
      std::chrono::steady_clock::now() + std::chrono::microseconds(config_.group_commit_poll_us);
  while (log_end_.load(std::memory_order_acquire) <= durable_.load(std::memory_order_acquire) &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::yield();
  }
}

// One round of the flusher, run by the FlushScheduler (never two rounds of a log at once). The
// group policy syncs whatever is pending and asks to run again at once (behind the other logs
// waiting for a thread) until nothing is; with nothing pending it does idle work (zero-fill,
// standby pieces) once no append has come for preallocate_idle_ms, and otherwise waits to be
// woken by an append or a config change. Interval syncs on its ticks; none only waits for a
// config change. The policy is read afresh each round: ApplyConfig may change it (and wakes us).
FlushScheduler::Clock::time_point Log::RunFlushRound() {
  using SClock = FlushScheduler::Clock;
  const auto idle = std::chrono::milliseconds(config_.preallocate_idle_ms);
  const auto interval =
      std::chrono::milliseconds(flush_interval_ms_.load(std::memory_order_relaxed));
  FlushPolicy policy;
  bool pending;
  {
    std::lock_guard lock(durable_mu_);
    if (stopping_) return FlushScheduler::kIdle;
    config_changed_ = false;
    policy = flush_policy();
    pending = failure_.ok() && flush_requested_ > durable_.load();
  }
  if (policy == FlushPolicy::kGroup && !pending && synced_last_round_ &&
      config_.group_commit_poll_us > 0 && scheduler_->NoneWaiting()) {
    // Right after a group: poll briefly for the next append, so that a steady stream of appenders
    // is picked up without a sleep and a wake-up between groups.
    PollForAppend();
    std::lock_guard lock(durable_mu_);
    if (stopping_) return FlushScheduler::kIdle;
    pending = failure_.ok() && flush_requested_ > durable_.load();
  }
  synced_last_round_ = false;
  const SClock::time_point now = SClock::now();

  if (policy == FlushPolicy::kGroup) {
    if (pending) {
      bool did;
      (void)SyncPending(&did);
      return AfterGroupSync();
    }
    // Zero-fill ahead, one piece per round, only after `preallocate_idle_ms` without appends
    // (docs/STORAGE.md, Preallocation); once a window is full, wait for appends.
    if (window_full_) return FlushScheduler::kIdle;
    if (now < idle_due_) return idle_due_;
    window_full_ = !PreallocateIdle() && !StandbyStep();
    idle_due_ = SClock::now() + idle;
    return window_full_ ? FlushScheduler::kIdle : idle_due_;
  }

  // `interval` syncs once per tick; `none` never syncs, it only waits for a change. A tick is
  // never further away than the current interval (it may have just been shortened, or the log
  // may have just left `group`, whose ticks were not kept).
  window_full_ = false;
  next_tick_ = std::min(next_tick_, now + interval);
  if (policy == FlushPolicy::kNone) return FlushScheduler::kIdle;
  if (now < next_tick_) return next_tick_;
  next_tick_ = now + interval;
  if (pending) {
    bool did;
    (void)SyncPending(&did);
  } else {
    while (PreallocateIdle()) {
    }
  }
  return next_tick_;
}

FlushScheduler::Clock::time_point Log::AfterGroupSync() {
  // One standby piece per group as well: a steady stream may leave the flusher no idle moment,
  // and the piece (a page-cache copy; the last piece's writeback is long done) costs the next
  // group far less than a growing file's journal commit.
  (void)StandbyStep();
  synced_last_round_ = true;
  window_full_ = false;
  idle_due_ = FlushScheduler::Clock::now() + std::chrono::milliseconds(config_.preallocate_idle_ms);
  return FlushScheduler::kAgain;
}

// A round in one of the scheduler's shared syncs: only a group-policy log with appends to make
// durable joins (anything else runs an ordinary round), without the post-group poll (the other
// logs of the batch wait for the sync). Its snapshot is taken here, before the WholeSync, so the
// sync covers every byte up to the target.
WholeSync* Log::BeginSharedSync() {
  if (whole_sync_ == nullptr) return nullptr;
  {
    std::lock_guard lock(durable_mu_);
    if (stopping_ || flush_policy() != FlushPolicy::kGroup || !failure_.ok() ||
        flush_requested_ <= durable_.load()) {
      return nullptr;
    }
    config_changed_ = false;
  }
  shared_ = TakePendingSync();
  return whole_sync_;
}

FlushScheduler::Clock::time_point Log::EndSharedSync(bool synced) {
  RILL_ASSERT(shared_.has_value(), "EndSharedSync without BeginSharedSync");
  (void)CompleteSync(*shared_, synced);
  shared_.reset();
  return AfterGroupSync();
}

}  // namespace rill::storage
