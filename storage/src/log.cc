// Log (rill/storage/log.h), the frame: construction, Open, Close, the destructor and the
// accessors. The rest of Log is in files named for their concern (docs/STORAGE.md has the format
// and the algorithms, docs/ARCHITECTURE.md §9 what the rest of the system relies on):
//   log_config.cc      the settings: validation, config(), ApplyConfig; FlushPolicy names, Clock
//   log_append.cc      Append, AppendReplicated and rolling the active segment
//   log_epochs.cc      the leader-epoch history: its checkpoint file, loading and repair in Open
//   log_producers.cc   idempotent producers' state: the leader's check, snapshots, rebuild
//   log_read.cc        Read, OffsetForTimestamp and the segment lookup they share
//   log_recovery.cc    recovery in Open, the recovery checkpoint and the recovery point
//   log_retention.cc   ApplyRetention, TruncateTo and removing dropped segments
//   log_flush.cc       the flusher thread: group and interval sync rounds, Flush, cache dropping
//   log_durability.cc  the durable offset, its waiters (WaitDurable, OnDurable), failing the log
//   log_standby.cc     written space ahead of appends: idle zero-fill and standby segments
//   log_recycle.cc     the recycling pool of retired segment files
//
// Locks (declared in log.h), in the order they nest:
//   write_mu_           the writer: appends, rolls, truncation, retention, the pool, config,
//                       changes, closed_, the producer state; readers never take it.
//   recovery_point_mu_  the recovery-point file; a truncation takes it under write_mu_, the
//                       flusher without write_mu_.
//   segments_mu_        the segment list: shared to copy a pointer, exclusive to change it.
//   durable_mu_         the durable offset's waiters, the failure, stopping_ and what the
//                       flusher's rounds read. Never held across FlushScheduler::Remove. Never held
//                       together with segments_mu_. Durability callbacks run with it released, some
//                       under write_mu_ (log_durability.cc).
//   cache_mu_           only serialises DropCacheBehind (try-lock, then segments_mu_ shared).
//   epoch_mu_           the leader-epoch history; a leaf: the writer takes it under write_mu_
//                       to change the history, readers (epoch_history) alone.
// Here: Open runs before any other thread exists. Close sets stopping_ under durable_mu_, removes
// the log from its flush scheduler (waiting for a round in progress), then holds write_mu_. The
// destructor does the same and fails the waiters left, without write_mu_. The accessors take
// segments_mu_ shared or durable_mu_.

#include "rill/storage/log.h"

#include <chrono>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "rill/proto/thread_name.h"
#include "segment.h"

namespace rill::storage {

Log::Log(FileSystem* fs, std::string dir, std::string name, LogConfig config, Clock clock)
    : fs_(fs),
      dir_(std::move(dir)),
      name_(std::move(name)),
      config_(config),
      clock_(std::move(clock)),
      standby_path_(JoinPath(dir_, SegmentFileName(Offset(0), kPoolExt))),
      segment_bytes_(config.segment_bytes),
      segment_ms_(config.segment_ms),
      retention_ms_(config.retention_ms),
      retention_bytes_(config.retention_bytes),
      flush_policy_(config.flush_policy),
      flush_interval_ms_(config.flush_interval_ms),
      index_interval_bytes_(config.index_interval_bytes),
      max_batch_bytes_(config.max_batch_bytes),
      // Presumed large until a few small groups have shown the regime.
      group_bytes_avg_(2 * config.standby_max_group_bytes) {}

Result<std::unique_ptr<Log>> Log::Open(FileSystem* fs, std::string dir, std::string name,
                                       LogConfig config, Clock clock) {
  RILL_RETURN_IF_ERROR(ValidateConfig(config));
  std::unique_ptr<Log> log(new Log(fs, std::move(dir), std::move(name), config, std::move(clock)));
  RILL_RETURN_IF_ERROR(fs->CreateDir(log->dir_));
  RILL_RETURN_IF_ERROR(log->Recover());
  RILL_RETURN_IF_ERROR(log->LoadEpochHistory());
  RILL_RETURN_IF_ERROR(log->LoadProducerState());
  log->active_created_ms_ = log->clock_();
  // Every policy gets the flusher: ApplyConfig may switch a `none` log to `group` later.
  if (log->config_.flush_scheduler != nullptr) {
    log->scheduler_ = log->config_.flush_scheduler;
  } else {
    log->own_scheduler_ = std::make_unique<FlushScheduler>(1);
    log->scheduler_ = log->own_scheduler_.get();
  }
  if (log->config_.whole_sync != nullptr && log->config_.whole_sync->Covers(log->dir_)) {
    log->whole_sync_ = log->config_.whole_sync;
  }
  log->idle_due_ =
      FlushScheduler::Clock::now() + std::chrono::milliseconds(log->config_.preallocate_idle_ms);
  log->scheduler_->Add(log.get());
  return log;
}

Log::~Log() {
  {
    std::lock_guard lock(durable_mu_);
    stopping_ = true;
  }
  durable_cv_.notify_all();
  if (scheduler_ != nullptr) scheduler_->Remove(this);
  FailWaiters(Status::Unavailable("partition " + name_ + ": log closed"), Offset(INT64_MIN));
  ReleaseStandbyBudget();
}

std::shared_ptr<Segment> Log::active() const {
  std::shared_lock lock(segments_mu_);
  return segments_.back();
}

uint64_t Log::size_bytes() const {
  std::shared_lock lock(segments_mu_);
  uint64_t n = 0;
  for (const auto& s : segments_) n += s->size();
  return n;
}

size_t Log::segment_count() const {
  std::shared_lock lock(segments_mu_);
  return segments_.size();
}

Status Log::health() const {
  std::lock_guard lock(durable_mu_);
  return failure_;
}

Status Log::Close() {
  {
    std::lock_guard lock(durable_mu_);
    stopping_ = true;
  }
  if (scheduler_ != nullptr) scheduler_->Remove(this);
  std::lock_guard lock(write_mu_);
  if (closed_) return Status::OK();
  closed_ = true;
  ReleaseStandbyBudget();
  Status failure = health();
  if (!failure.ok()) {
    FailWaiters(failure, Offset(INT64_MIN));
    return failure;
  }
  auto fail = [&](Status st) {
    Status out = Fail(st);
    return out;
  };
  std::vector<std::shared_ptr<Segment>> segs;
  {
    std::shared_lock lock2(segments_mu_);
    segs = segments_;
  }
  auto act = segs.back();
  Status st = act->Trim();
  for (const auto& s : unsynced_closed_) {
    if (st.ok()) st = s->Sync();
  }
  unsynced_closed_.clear();
  if (st.ok()) st = act->Sync();
  for (const auto& s : segs) {
    if (st.ok()) st = s->SyncIndexes();
  }
  if (st.ok()) st = fs_->SyncDir(dir_);
  if (!st.ok()) return fail(st);
  AdvanceDurable(log_end_offset());
  // The next Open then loads the state without replaying any batch header.
  SnapshotProducersLocked(log_end_offset());
  st = WriteCheckpoint(/*clean=*/true);
  if (!st.ok()) return fail(st);
  FailWaiters(Status::Unavailable("partition " + name_ + ": log closed"), Offset(INT64_MIN));
  return Status::OK();
}

}  // namespace rill::storage
