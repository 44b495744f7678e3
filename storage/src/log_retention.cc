// Removing data from a Log: ApplyRetention (whole closed segments by age and size), TruncateTo
// (everything from an offset on, durably) and RemoveSegmentFiles, which drops a segment's files
// through the FileRemover when one is set (docs/STORAGE.md, Writing, Recycling and FileRemover;
// docs/ARCHITECTURE.md §9, Housekeeping).
// Locks: ApplyRetention and TruncateTo hold write_mu_. TruncateLocked expects write_mu_ held and
// takes recovery_point_mu_ for the whole truncation (the point goes first), segments_mu_ to
// change the list and durable_mu_ to pull the durable offset back. Retired segments go to the
// pool under write_mu_ (log_recycle.cc).

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "rill/storage/file_remover.h"
#include "rill/storage/log.h"
#include "segment.h"

namespace rill::storage {

Status Log::TruncateTo(Offset offset) {
  std::lock_guard lock(write_mu_);
  if (closed_) return Status::Unavailable("partition " + name_ + ": log closed");
  {
    std::lock_guard dl(durable_mu_);
    if (!failure_.ok()) return failure_;
  }
  if (offset >= log_end_offset()) return Status::OK();
  Status st = TruncateLocked(offset);
  if (!st.ok()) return Fail(st);
  return Status::OK();
}

Status Log::TruncateLocked(Offset offset) {
  std::lock_guard rp_lock(recovery_point_mu_);
  // Segments below the point are about to change: the point goes first, durably.
  if (recovery_point_ > offset.value()) RILL_RETURN_IF_ERROR(RemoveRecoveryPoint());
  std::vector<std::shared_ptr<Segment>> segs;
  {
    std::shared_lock lock(segments_mu_);
    segs = segments_;
  }
  std::vector<std::shared_ptr<Segment>> doomed;
  Offset new_end;
  // The offsets from `offset` on will be assigned again; below the log start offset that
  // includes offsets the pool files hold. The pool goes, durably with the rest (SyncDir below).
  if (offset < log_start_offset()) RILL_RETURN_IF_ERROR(ClearPoolLocked());
  const bool restart = offset <= log_start_offset();
  if (restart) {
    // Everything goes; the log restarts empty at `offset` (whose file name an old segment may
    // hold: remove the old files first).
    for (const auto& s : segs) RILL_RETURN_IF_ERROR(RemoveSegmentFiles(s));
    RILL_ASSIGN_OR_RETURN(
        auto fresh,
        Segment::Create(fs_, dir_, offset, index_interval_bytes_.load(std::memory_order_relaxed)));
    {
      std::unique_lock lock(segments_mu_);
      segments_.assign(1, fresh);
    }
    unsynced_closed_.clear();
    dir_dirty_ = true;
    new_end = offset;
    log_start_.store(offset.value(), std::memory_order_release);
  } else {
    size_t i = segs.size() - 1;
    while (segs[i]->base_offset() > offset) --i;
    uint64_t pos;
    Offset batch_base;
    RILL_RETURN_IF_ERROR(segs[i]->FindBatch(offset, &pos, &batch_base));
    size_t keep = i + 1;
    if (pos == 0 && i > 0) {
      keep = i;  // the whole segment goes; the previous one becomes active again
      new_end = segs[i]->base_offset();
    } else {
      RILL_RETURN_IF_ERROR(segs[i]->TruncateAt(pos, batch_base));
      new_end = batch_base;
    }
    doomed.assign(segs.begin() + static_cast<ptrdiff_t>(keep), segs.end());
    {
      std::unique_lock lock(segments_mu_);
      segments_.resize(keep);
    }
  }
  std::erase_if(unsynced_closed_, [&](const auto& s) {
    return std::find(doomed.begin(), doomed.end(), s) != doomed.end();
  });
  for (const auto& s : doomed) RILL_RETURN_IF_ERROR(RemoveSegmentFiles(s));
  // Producer snapshots above the new end go with the offsets (durably, by the SyncDir below)
  // and the state is reloaded as of the new end (log_producers.cc).
  RILL_RETURN_IF_ERROR(TruncateProducersLocked(new_end, restart));
  RILL_RETURN_IF_ERROR(fs_->SyncDir(dir_));
  // The epoch history loses the entries of the removed offsets (all of them when the log
  // restarted), durably before any later append can reuse those offsets (log_epochs.cc).
  // Published before the log end moves down, so readers see no entry beyond the data for long.
  {
    std::vector<EpochEntry> history = epoch_history();
    const bool changed =
        restart ? (history.clear(), true) : TruncateEpochHistory(&history, new_end);
    if (changed) {
      RILL_RETURN_IF_ERROR(WriteEpochCheckpoint(history));
      PublishEpochHistory(std::move(history));
    }
  }
  log_end_.store(new_end.value(), std::memory_order_release);
  {
    std::lock_guard dl(durable_mu_);
    ++truncations_;
    if (durable_.load() > new_end.value()) durable_.store(new_end.value());
    flush_requested_ = std::min(flush_requested_, new_end.value());
  }
  // What is left is durable up to what was durable before; what was removed can never be.
  FailWaiters(Status::OutOfRange("partition " + name_ + ": offsets from " +
                                 std::to_string(new_end.value()) + " were truncated"),
              new_end);
  if (flush_policy() == FlushPolicy::kNone) AdvanceDurable(new_end);
  return Status::OK();
}

Result<RetentionResult> Log::ApplyRetention(int64_t now_ms) {
  std::lock_guard lock(write_mu_);
  if (closed_) return Status::Unavailable("partition " + name_ + ": log closed");
  std::vector<std::shared_ptr<Segment>> segs;
  {
    std::shared_lock lock2(segments_mu_);
    segs = segments_;
  }
  const int64_t retention_ms = retention_ms_.load(std::memory_order_relaxed);
  const int64_t retention_bytes = retention_bytes_.load(std::memory_order_relaxed);
  size_t drop = 0;
  uint64_t total = 0;
  for (const auto& s : segs) total += s->size();
  while (drop + 1 < segs.size()) {
    const auto& s = segs[drop];
    bool by_time = retention_ms >= 0 && s->max_timestamp() < now_ms - retention_ms;
    bool by_size =
        retention_bytes >= 0 && total - s->size() >= static_cast<uint64_t>(retention_bytes);
    if (!by_time && !by_size) break;
    total -= s->size();
    ++drop;
  }
  // The periodic producer expiry (by the log's clock, which stamped the producers).
  if (size_t n = producers_.ExpireIdle(clock_(), config_.producer_id_expiration_ms); n > 0) {
    spdlog::info("partition {}: {} idle producer(s) expired", name_, n);
  }
  if (drop == 0) return RetentionResult{};
  RetentionResult result{static_cast<int>(drop), 0};
  for (size_t i = 0; i < drop; ++i) result.bytes += segs[i]->size();
  {
    std::unique_lock lock2(segments_mu_);
    segments_.erase(segments_.begin(), segments_.begin() + static_cast<ptrdiff_t>(drop));
    log_start_.store(std::max(log_start_.load(), segments_.front()->base_offset().value()),
                     std::memory_order_release);
  }
  for (size_t i = 0; i < drop; ++i) {
    std::erase(unsynced_closed_, segs[i]);
    Status st = RetireLocked(segs[i], segs[i + 1]->base_offset());
    if (!st.ok()) return Fail(st);
  }
  Status st = fs_->SyncDir(dir_);
  if (!st.ok()) return Fail(st);
  // The epoch entries wholly below the new log start go. Not a failure of the log when the file
  // cannot be written: the stale entries lie below the log start, and Open trims them.
  {
    std::vector<EpochEntry> history = epoch_history();
    if (TrimEpochHistoryBelow(&history, log_start_offset())) {
      st = WriteEpochCheckpoint(history);
      if (!st.ok()) {
        spdlog::warn("partition {}: cannot write the leader-epoch checkpoint after retention: {}",
                     name_, st.ToString());
      }
      PublishEpochHistory(std::move(history));
    }
  }
  // The producer state stays; snapshots below the new start go (the newest is kept).
  RetainProducerSnapshotsLocked(log_start_offset());
  spdlog::info("partition {}: retention deleted {} segment(s), {} bytes; log start offset now {}",
               name_, drop, result.bytes, log_start_offset().value());
  return result;
}

Status Log::RemoveSegmentFiles(const std::shared_ptr<Segment>& seg) {
  if (config_.remover == nullptr) return seg->RemoveFiles();
  RILL_RETURN_IF_ERROR(config_.remover->Remove(seg->log_path(), seg));
  return seg->RemoveIndexFiles();
}

}  // namespace rill::storage
