// The idempotent producers' state of a Log (rill/storage/producer_state.h has the table's rules
// and the snapshot format; docs/STORAGE.md, Producer state in the log, has what the log does):
// the leader's check of an append (CheckProducersLocked, called by AppendImpl, which also does
// the updates), snapshots at each roll and at Close, their removal after truncation and
// retention, and the rebuild at Open and after a truncation.
//
// Locks: everything here runs under write_mu_, or in Open before other threads exist.
//
// Why a snapshot never describes batches the log does not hold. A snapshot at offset X reflects
// the batches below X. It is written at a roll (X = the new segment's base) or at Close
// (X = the log end), possibly before the batches below X are durable. So:
//   - A crash that loses batches below X leaves a log ending below X. Open removes every
//     snapshot above the recovered end, durably, before any append can reuse those offsets, and
//     loads only snapshots at or below it.
//   - A truncation to E removes every snapshot above E (all of them when the log restarts),
//     durably (TruncateLocked fsyncs the directory afterwards) before TruncateTo returns, so no
//     snapshot survives that saw batches at offsets that will be written again.
// A snapshot at or below the end therefore saw exactly the batches the log holds below it
// (or retention removed): the state is that snapshot plus the headers after it.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "rill/storage/log.h"
#include "segment.h"

namespace rill::storage {

namespace {
// Snapshot files kept: the newest at the active segment's base (or the log end after Close) and
// two older ones, which a truncation into an earlier segment can start from.
constexpr size_t kProducerSnapshotsKept = 3;
}  // namespace

ProducerStateTable Log::producer_state() const {
  std::lock_guard lock(write_mu_);
  return producers_;
}

std::vector<Offset> Log::producer_snapshot_offsets() const {
  std::lock_guard lock(write_mu_);
  return producer_snapshots_;
}

Status Log::CheckProducersLocked(int64_t end, size_t batch_count,
                                 std::span<const IdempotentBatch> batches, ProducerCheck* refusal,
                                 std::optional<CheckResult>* duplicate) const {
  auto refuse = [&](const CheckResult& r, size_t index) {
    if (refusal != nullptr) *refusal = r.outcome;
    std::string m = "partition " + name_ + ": ";
    if (batch_count > 1) {
      m += "batch " + std::to_string(index + 1) + " of " + std::to_string(batch_count) + ": ";
    }
    m += r.message.empty() ? std::string(ProducerCheckName(r.outcome)) : r.message;
    switch (r.outcome) {
      case ProducerCheck::kOutOfOrderSequence:
        return Status::OutOfRange(std::move(m));
      case ProducerCheck::kTooManyProducers:
        return Status::ResourceExhausted(std::move(m));
      default:
        return Status::InvalidArgument(std::move(m));
    }
  };
  // The common case: one batch per request (Kafka's produce v3+).
  if (batch_count == 1) {
    CheckResult r = producers_.Check(batches[0].id);
    if (r.outcome == ProducerCheck::kAppend) return Status::OK();
    if (r.outcome == ProducerCheck::kDuplicate) {
      *duplicate = std::move(r);
      return Status::OK();
    }
    return refuse(r, batches[0].index);
  }
  // Several batches: each is checked against the state the earlier ones will have left. The
  // producers the request touches are copied into `scratch` (their cached batches replayed into
  // it) and updated there with provisional offsets; the log's table is not changed.
  ProducerStateTable scratch(SIZE_MAX);
  size_t new_producers = 0;
  for (const auto& b : batches) {
    CheckResult r;
    if (scratch.Find(b.id.producer_id) != nullptr) {
      r = scratch.Check(b.id);
    } else {
      r = producers_.Check(b.id);
      const ProducerEntry* e = producers_.Find(b.id.producer_id);
      if (r.outcome == ProducerCheck::kAppend && e == nullptr &&
          producers_.size() + new_producers >= producers_.max_producers()) {
        r.outcome = ProducerCheck::kTooManyProducers;
        r.message = "producer " + std::to_string(b.id.producer_id) + " is new but " +
                    std::to_string(producers_.max_producers()) + " producers are tracked";
      }
      if (r.outcome == ProducerCheck::kAppend) {
        if (e == nullptr) {
          ++new_producers;
        } else {
          for (const auto& c : e->batches) {
            BatchIdentity id{b.id.producer_id, e->epoch, c.first_seq,
                             static_cast<int32_t>(c.last_offset.value() - c.first_offset.value()),
                             c.max_timestamp};
            scratch.Update(id, c.first_offset, c.last_offset, e->last_update_ms);
          }
        }
      }
    }
    if (r.outcome == ProducerCheck::kDuplicate) {
      r.message = "batch of producer " + std::to_string(b.id.producer_id) + " with sequences " +
                  std::to_string(b.id.base_sequence) + ".." +
                  std::to_string(b.id.last_sequence()) +
                  " is a retry of the batch at offsets " + std::to_string(r.first_offset.value()) +
                  ".." + std::to_string(r.last_offset.value()) +
                  "; a request holding a retried batch must hold only that batch";
      return refuse(r, b.index);
    }
    if (r.outcome != ProducerCheck::kAppend) return refuse(r, b.index);
    const int64_t base = end + b.rel_base;
    scratch.Update(b.id, Offset(base), Offset(base + b.id.last_offset_delta), 0);
  }
  return Status::OK();
}

void Log::SnapshotProducersLocked(Offset at) {
  const size_t expired = producers_.ExpireIdle(clock_(), config_.producer_id_expiration_ms);
  if (expired > 0) {
    spdlog::info("partition {}: {} idle producer(s) expired", name_, expired);
  }
  Status st = WriteProducerSnapshot(fs_, dir_, producers_, at);
  if (!st.ok()) {
    // Not a failure of the log: Open rebuilds the state from an older snapshot and the log.
    spdlog::warn("partition {}: cannot write the producer snapshot at offset {}: {}", name_,
                 at.value(), st.ToString());
    return;
  }
  auto pos = std::lower_bound(producer_snapshots_.begin(), producer_snapshots_.end(), at);
  if (pos == producer_snapshots_.end() || *pos != at) producer_snapshots_.insert(pos, at);
  while (producer_snapshots_.size() > kProducerSnapshotsKept) {
    // An old snapshot that comes back after a crash is harmless: Open takes the newest.
    Status rm = fs_->Remove(JoinPath(dir_, ProducerSnapshotFileName(producer_snapshots_.front())));
    if (!rm.ok() && !rm.IsNotFound()) {
      spdlog::warn("partition {}: cannot remove an old producer snapshot: {}", name_,
                   rm.ToString());
      break;
    }
    producer_snapshots_.erase(producer_snapshots_.begin());
  }
}

Status Log::ReplayProducers(Offset from, ProducerStateTable* table, int64_t now_ms) const {
  std::vector<std::shared_ptr<Segment>> segs;
  {
    std::shared_lock lock(segments_mu_);
    segs = segments_;
  }
  for (const auto& s : segs) {
    if (s->next_offset() <= from || s->empty()) continue;
    RILL_RETURN_IF_ERROR(s->ScanHeaders(from, [&](const batch::Header& h) {
      if (h.producer_id < 0 || Offset(h.base_offset) < from) return;
      table->Update(BatchIdentity::FromHeader(h), Offset(h.base_offset), Offset(h.last_offset()),
                    now_ms);
    }));
  }
  return Status::OK();
}

Status Log::LoadProducerState() {
  const Offset start = log_start_offset();
  const Offset end = log_end_offset();
  RILL_ASSIGN_OR_RETURN(auto names, fs_->ListDir(dir_));
  bool removed = false;
  std::vector<Offset> kept;
  for (const auto& n : names) {
    auto o = ParseProducerSnapshotFileName(n);
    if (!o) continue;
    if (*o > end) {
      spdlog::info("partition {}: removing producer snapshot {}, above the log end {}", name_, n,
                   end.value());
      RILL_RETURN_IF_ERROR(fs_->Remove(JoinPath(dir_, n)));
      removed = true;
    } else {
      kept.push_back(*o);
    }
  }
  RILL_ASSIGN_OR_RETURN(LoadedProducerSnapshot loaded,
                        LoadLatestProducerSnapshot(fs_, dir_, end));
  for (const auto& n : loaded.corrupt_files) {
    spdlog::warn("partition {}: producer snapshot {} is corrupt; removing it", name_, n);
    RILL_RETURN_IF_ERROR(fs_->Remove(JoinPath(dir_, n)));
    removed = true;
    if (auto o = ParseProducerSnapshotFileName(n)) std::erase(kept, *o);
  }
  // Durably gone before any append can reuse the offsets above the end.
  if (removed) RILL_RETURN_IF_ERROR(fs_->SyncDir(dir_));
  std::sort(kept.begin(), kept.end());
  ProducerStateTable table;
  Offset from = start;
  if (loaded.snapshot.has_value()) {
    table = std::move(loaded.snapshot->table);
    from = std::max(loaded.snapshot->offset, start);
  }
  const int64_t now = clock_();
  RILL_RETURN_IF_ERROR(ReplayProducers(from, &table, now));
  table.ExpireIdle(now, config_.producer_id_expiration_ms);
  if (from < end) {
    spdlog::info("partition {}: producer state rebuilt from {} and the batch headers of offsets "
                 "[{}, {}): {} producer(s)",
                 name_,
                 loaded.snapshot ? "snapshot " + std::to_string(loaded.snapshot->offset.value())
                                 : std::string("no snapshot"),
                 from.value(), end.value(), table.size());
  }
  producers_ = std::move(table);
  producer_snapshots_ = std::move(kept);
  return Status::OK();
}

Status Log::TruncateProducersLocked(Offset new_end, bool restart) {
  for (auto it = producer_snapshots_.begin(); it != producer_snapshots_.end();) {
    if (restart || *it > new_end) {
      Status st = fs_->Remove(JoinPath(dir_, ProducerSnapshotFileName(*it)));
      if (!st.ok() && !st.IsNotFound()) return st;
      it = producer_snapshots_.erase(it);
    } else {
      ++it;
    }
  }
  if (restart) {
    // The log restarts empty (Kafka's truncateFullyAndStartAt): no producer state is left.
    producers_ = ProducerStateTable(producers_.max_producers());
    return Status::OK();
  }
  // Exact, as producer_state.h recommends over the table's own TruncateTo: the newest snapshot
  // at or below the new end, then the headers from it to the end (at most a segment or so).
  RILL_ASSIGN_OR_RETURN(LoadedProducerSnapshot loaded,
                        LoadLatestProducerSnapshot(fs_, dir_, new_end));
  for (const auto& n : loaded.corrupt_files) {
    spdlog::warn("partition {}: producer snapshot {} is corrupt; removing it", name_, n);
    RILL_RETURN_IF_ERROR(fs_->Remove(JoinPath(dir_, n)));
    if (auto o = ParseProducerSnapshotFileName(n)) std::erase(producer_snapshots_, *o);
  }
  ProducerStateTable table(producers_.max_producers());
  Offset from = log_start_offset();
  if (loaded.snapshot.has_value()) {
    table = std::move(loaded.snapshot->table);
    table.set_max_producers(producers_.max_producers());
    from = std::max(loaded.snapshot->offset, from);
  }
  RILL_RETURN_IF_ERROR(ReplayProducers(from, &table, clock_()));
  producers_ = std::move(table);
  return Status::OK();
}

void Log::RetainProducerSnapshotsLocked(Offset log_start) {
  producers_.RetainFrom(log_start);  // keeps every producer (producer_state.h)
  while (producer_snapshots_.size() > 1 && producer_snapshots_.front() < log_start) {
    Status st = fs_->Remove(JoinPath(dir_, ProducerSnapshotFileName(producer_snapshots_.front())));
    if (!st.ok() && !st.IsNotFound()) {
      spdlog::warn("partition {}: cannot remove a producer snapshot below the log start: {}",
                   name_, st.ToString());
      return;
    }
    producer_snapshots_.erase(producer_snapshots_.begin());
  }
}

}  // namespace rill::storage
