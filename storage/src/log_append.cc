// The write path of a Log: Append (validate, assign offsets, stamp the epoch, one write) and
// AppendReplicated (validate, check the offsets continue the log, one write), both through
// AppendImpl, which also extends the leader-epoch history (log_epochs.cc) and checks (leader)
// and updates (both) the idempotent producers' state (log_producers.cc); and
// RollLocked, which closes the active segment and starts the next one, from a recycling pool file
// when one is free, and writes a producer snapshot at its base (docs/STORAGE.md, Writing,
// Recycling and Producer state in the log).
// Locks: Append validates without a lock, then holds write_mu_ for the roll, the write and the
// publication of the log end offset; it takes durable_mu_ inside it to hand the new end to the
// flusher. RollLocked expects write_mu_ held and takes segments_mu_ exclusive to add the segment.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "rill/proto/batch_header.h"
#include "rill/storage/log.h"
#include "segment.h"

namespace rill::storage {

Result<AppendResult> Log::Append(std::span<char> batches, LeaderEpoch epoch,
                                 ProducerCheck* refusal) {
  return AppendImpl(std::string_view(batches.data(), batches.size()), batches, epoch, refusal);
}

Result<AppendResult> Log::AppendReplicated(std::span<const char> batches) {
  return AppendImpl(std::string_view(batches.data(), batches.size()), {}, std::nullopt);
}

Result<AppendResult> Log::AppendImpl(std::string_view data, std::span<char> stamp,
                                     std::optional<LeaderEpoch> stamp_epoch,
                                     ProducerCheck* refusal) {
  const bool replicated = !stamp_epoch.has_value();
  // Validate before taking the lock: nothing is written unless every batch is sound.
  // (Reused vectors per thread: no allocation per append.) For a leader's append a meta holds
  // base 0 and lastOffsetDelta until offsets are assigned; for a replicated one the batch's own
  // offsets, and `epochs` the batches' partitionLeaderEpoch.
  thread_local std::vector<BatchMeta> metas;
  thread_local std::vector<int32_t> epochs;
  // The idempotent batches (producerId >= 0); empty in the common case.
  thread_local std::vector<IdempotentBatch> idempotent;
  metas.clear();
  epochs.clear();
  idempotent.clear();
  int64_t rel_base = 0;
  const int64_t max_batch = max_batch_bytes_.load(std::memory_order_relaxed);
  {
    batch::BatchIterator it(data);
    size_t covered = 0;
    while (it.Next()) {
      const auto& h = it.header();
      if (h.total_size() > static_cast<size_t>(max_batch)) {
        return Status::InvalidArgument(
            "partition " + name_ + ": batch of " + std::to_string(h.total_size()) +
            " bytes exceeds max.message.bytes " + std::to_string(max_batch));
      }
      if (replicated) {
        if (!metas.empty() && h.base_offset != metas.back().last_offset + 1) {
          return Status::InvalidArgument("partition " + name_ + ": replicated batch at offset " +
                                         std::to_string(h.base_offset) +
                                         " does not follow the previous batch, which ends at " +
                                         std::to_string(metas.back().last_offset));
        }
        if (h.base_offset < 0 || h.last_offset() < h.base_offset) {
          return Status::InvalidArgument("partition " + name_ + ": replicated batch at offset " +
                                         std::to_string(h.base_offset) + " has bad offsets");
        }
        metas.push_back({h.base_offset, h.last_offset(), h.max_timestamp,
                         static_cast<uint32_t>(h.total_size())});
        epochs.push_back(h.partition_leader_epoch);
      } else {
        metas.push_back(
            {0, h.last_offset_delta, h.max_timestamp, static_cast<uint32_t>(h.total_size())});
      }
      if (h.producer_id >= 0) {
        idempotent.push_back({metas.size() - 1, rel_base, BatchIdentity::FromHeader(h)});
      }
      rel_base += int64_t{h.last_offset_delta} + 1;
      covered = it.position() + h.total_size();
    }
    if (!it.status().ok()) {
      return Status(it.status().code(), "partition " + name_ + ": " + it.status().message());
    }
    if (metas.empty() || covered != data.size()) {
      return Status::InvalidArgument("partition " + name_ + ": append needs whole batches");
    }
  }
  std::lock_guard lock(write_mu_);
  if (closed_) return Status::Unavailable("partition " + name_ + ": log closed");
  if (failed_.load(std::memory_order_acquire)) return health();
  const int64_t end = log_end_offset().value();
  if (!replicated && !idempotent.empty()) {
    std::optional<CheckResult> duplicate;
    RILL_RETURN_IF_ERROR(
        CheckProducersLocked(end, metas.size(), idempotent, refusal, &duplicate));
    if (duplicate.has_value()) {
      AppendResult dup;
      dup.base_offset = duplicate->first_offset;
      dup.last_offset = duplicate->last_offset;
      dup.log_append_time = -1;
      dup.position = 0;
      dup.segment_base = Offset(-1);
      dup.duplicate = true;
      return dup;
    }
  }
  // Epochs that rise above the latest start new history entries (rare: a leader change). The
  // common case costs one compare and no allocation.
  std::vector<EpochEntry> new_epochs;
  if (replicated) {
    if (metas.front().base_offset != end) {
      return Status::InvalidArgument("partition " + name_ +
                                     ": replicated batches start at offset " +
                                     std::to_string(metas.front().base_offset) +
                                     " but the log ends at " + std::to_string(end));
    }
    int32_t latest = latest_epoch_.load(std::memory_order_relaxed);
    for (size_t i = 0; i < epochs.size(); ++i) {
      if (epochs[i] < latest) {
        return Status::Corruption("partition " + name_ + ": replicated batch at offset " +
                                  std::to_string(metas[i].base_offset) + " has leader epoch " +
                                  std::to_string(epochs[i]) + ", below the latest epoch " +
                                  std::to_string(latest));
      }
      if (epochs[i] > latest) {
        latest = epochs[i];
        new_epochs.push_back({LeaderEpoch(latest), Offset(metas[i].base_offset)});
      }
    }
  } else if (stamp_epoch->value() > latest_epoch_.load(std::memory_order_relaxed)) {
    new_epochs.push_back({*stamp_epoch, Offset(end)});
  }
  AppendResult result;
  int64_t now = clock_();
  auto seg = active();
  int64_t span = 0;
  for (const auto& m : metas) span += m.last_offset - m.base_offset + 1;
  // Beyond its written space the active segment grows, and each group fsync of a growing file
  // commits a journal transaction: roll early into a complete standby (written space) instead.
  const bool grows = seg->size() + data.size() > seg->prepared_end();
  if (!seg->empty() &&
      (seg->size() + data.size() >
           static_cast<uint64_t>(segment_bytes_.load(std::memory_order_relaxed)) ||
       now - active_created_ms_ >= segment_ms_.load(std::memory_order_relaxed) ||
       end + span - seg->base_offset().value() > INT32_MAX || (grows && StandbyInPoolLocked()))) {
    Status st = RollLocked(Offset(end));
    if (!st.ok()) return Fail(st);
    seg = active();
  }
  std::vector<EpochEntry> history;
  if (!new_epochs.empty()) {
    // The checkpoint goes first, durably: a batch of a new epoch is never on disk without its
    // entry (log_epochs.cc has the crash cases).
    {
      std::lock_guard el(epoch_mu_);
      history = epochs_;
    }
    history.insert(history.end(), new_epochs.begin(), new_epochs.end());
    Status st = WriteEpochCheckpoint(history);
    if (!st.ok()) return Fail(st);
  }
  int64_t next = end;
  if (replicated) {
    next = metas.back().last_offset + 1;
  } else {
    size_t pos = 0;
    for (auto& m : metas) {
      std::span<char> b = stamp.subspan(pos, m.size);
      batch::SetBaseOffset(b, next);
      batch::SetPartitionLeaderEpoch(b, stamp_epoch->value());
      m.base_offset = next;
      m.last_offset = next + m.last_offset;  // held lastOffsetDelta until now
      next = m.last_offset + 1;
      pos += m.size;
    }
  }
  result.base_offset = Offset(metas.front().base_offset);
  result.last_offset = Offset(metas.back().last_offset);
  result.log_append_time = now;
  result.position = seg->size();
  result.segment_base = seg->base_offset();
  Status st = seg->Write(data, metas);
  if (!st.ok()) return Fail(st);
  // The batches are in the log: record them (the leader checked them above, a follower's
  // leader did). Before the log end is published, so producer_state() matches it.
  for (const auto& b : idempotent) {
    const BatchMeta& m = metas[b.index];
    producers_.Update(b.id, Offset(m.base_offset), Offset(m.last_offset), now);
  }
  log_end_.store(next, std::memory_order_release);
  // After the log end: a reader never sees an entry at or beyond log_end_offset().
  if (!new_epochs.empty()) PublishEpochHistory(std::move(history));
  appended_since_roll_ += data.size();
  if (flush_policy() == FlushPolicy::kNone) {
    AdvanceDurable(Offset(next));
  } else {
    {
      std::lock_guard dl(durable_mu_);
      flush_requested_ = next;
    }
    if (flush_policy() == FlushPolicy::kGroup) scheduler_->Wake(this);
  }
  return result;
}

Status Log::RollLocked(Offset base_offset) {
  auto old = active();
  RILL_RETURN_IF_ERROR(old->Trim());
  RILL_RETURN_IF_ERROR(old->SyncIndexes());
  std::shared_ptr<Segment> seg;
  // Reuse a pool file no reader still holds (a reader of the retired segment must keep seeing
  // its old bytes): the new segment then overwrites already-written space.
  auto it = std::find_if(pool_.begin(), pool_.end(), [&](const PoolFile& f) {
    return f.end <= base_offset && (f.retired == nullptr || f.retired.use_count() == 1);
  });
  if (config_.recycle_segments && it != pool_.end()) {
    auto recycled = Segment::CreateRecycled(
        fs_, dir_, base_offset, index_interval_bytes_.load(std::memory_order_relaxed), it->path);
    if (it->path == standby_path_) ReleaseStandbyBudget();  // a segment now, or gone
    if (recycled.ok()) {
      seg = std::move(recycled).value();
      recycled_count_.fetch_add(1, std::memory_order_relaxed);
    } else {
      // Written space is an optimisation: a pool file that cannot become the segment (say it
      // cannot be read) goes, and the segment is a new file, which Create truncates should
      // the rename have happened.
      spdlog::warn("partition {}: recycled file {} unusable ({}); rolling into a new file", name_,
                   it->path, recycled.status().ToString());
      (void)fs_->Remove(it->path);
    }
    pool_.erase(it);
  }
  if (seg != nullptr) {
    // The pool name must be gone for good before any new batch lands in the file: a crash that
    // reverted the rename would otherwise leave offsets >= the pool file's end under its name.
    RILL_RETURN_IF_ERROR(fs_->SyncDir(dir_));
  } else {
    RILL_ASSIGN_OR_RETURN(seg,
                          Segment::Create(fs_, dir_, base_offset,
                                          index_interval_bytes_.load(std::memory_order_relaxed)));
  }
  {
    std::unique_lock lock(segments_mu_);
    segments_.push_back(std::move(seg));
  }
  unsynced_closed_.push_back(std::move(old));
  dir_dirty_ = true;
  active_created_ms_ = clock_();
  appended_since_roll_ = 0;
  // Kafka's rule: a producer snapshot at each new segment's base, so Open replays the batch
  // headers of at most the active segment.
  SnapshotProducersLocked(base_offset);
  return Status::OK();
}

}  // namespace rill::storage
