// Written space ahead of a Log's appends, so that group fsyncs overwrite instead of growing a
// file (docs/STORAGE.md, Preallocation and Standby segments): PreallocateIdle zero-fills the
// active segment ahead of the write position when the log is idle; StandbyStep writes the next
// standby segment piece by piece between groups and hands it to the recycling pool when
// complete; AbandonStandby gives up after a write error. All run on the flusher thread, which
// alone owns the standby_* and filling_ state.
// Locks: PreallocateIdle holds write_mu_ for the check and one piece's write, and syncs it
// without a lock. StandbyStep reads its inputs and adds the finished standby to the pool under
// write_mu_, and writes the zeros without a lock. StandbyInPoolLocked expects write_mu_ held.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>

#include "rill/storage/log.h"
#include "segment.h"

namespace rill::storage {

bool Log::PreallocateIdle() {
  if (config_.preallocate_bytes <= 0) return false;
  if (last_group_bytes_.load(std::memory_order_relaxed) > config_.preallocate_max_group_bytes) {
    return false;
  }
  std::shared_ptr<Segment> seg;
  uint64_t added = 0;
  {
    // One piece ahead of the write position, and only while no append waits for a sync.
    std::lock_guard lock(write_mu_);
    if (closed_ || log_end_offset() > durable_offset()) return false;
    seg = active();
    uint64_t limit =
        std::min<uint64_t>(static_cast<uint64_t>(segment_bytes_.load(std::memory_order_relaxed)),
                           seg->size() + static_cast<uint64_t>(config_.preallocate_bytes));
    uint64_t from = std::max(seg->prepared_end(), seg->size());
    // Start only when a whole chunk of the window is missing; then fill it piece by piece.
    if (!filling_ && from + static_cast<uint64_t>(config_.preallocate_chunk_bytes) > limit) {
      return false;
    }
    if (from >= limit) {
      filling_ = false;
      return false;
    }
    filling_ = true;
    const uint64_t piece =
        static_cast<uint64_t>(std::max<int64_t>(config_.preallocate_piece_bytes, 4096));
    auto n = seg->Preallocate(std::min(limit, from + piece));
    if (!n.ok()) {
      // A failed zero-fill leaves the file's tail unknown: fail like any write error.
      (void)Fail(n.status());
      return false;
    }
    added = *n;
  }
  if (added == 0) return false;
  Status st = seg->Sync();
  if (!st.ok()) (void)Fail(st);
  return st.ok();
}

bool Log::StandbyInPoolLocked() const {
  return std::any_of(pool_.begin(), pool_.end(),
                     [&](const PoolFile& f) { return f.path == standby_path_; });
}

void Log::ReleaseStandbyBudget() {
  const int64_t n = standby_reserved_.exchange(0);
  if (n > 0 && config_.standby_budget != nullptr) config_.standby_budget->Give(n);
}

void Log::AbandonStandby(const Status& cause) {
  spdlog::warn(
      "partition {}: standby segment abandoned ({}); group fsyncs of a new segment will "
      "commit the journal until retention recycles segments",
      name_, cause.ToString());
  standby_.reset();
  (void)fs_->Remove(standby_path_);
  standby_off_ = true;
  ReleaseStandbyBudget();
}

bool Log::StandbyStep() {
  if (config_.standby_min_bytes <= 0 || !config_.recycle_segments ||
      config_.recycle_pool_files <= 0 || standby_off_) {
    return false;
  }
  // Large groups amortise their journal commits; zero-filling would only add writes and CPU
  // to a stream that is busy already (a first version, limited by the last group <= 256 KiB:
  // 1 KiB produce 733 -> 463-549 MB/s; bench/RESULTS.md, broker, session 3).
  // (Read without the writer lock: this runs after every group, and an appender holds the lock
  // for its whole page-cache copy.)
  if (group_bytes_avg_.load(std::memory_order_relaxed) > config_.standby_max_group_bytes) {
    return false;
  }
  const uint64_t piece = std::min<uint64_t>(
      Zeros().size(),
      static_cast<uint64_t>(std::max<int64_t>(config_.preallocate_piece_bytes, 4096)));
  uint64_t allowance;
  uint64_t segment_bytes;
  uint64_t appended;
  {
    std::lock_guard lock(write_mu_);
    // Written space already waiting (a standby or a recycled file) needs no more.
    if (closed_ || failed_.load(std::memory_order_acquire) || !pool_.empty()) return false;
    // Twice the appended bytes, so a standby twice the active one's size is complete by the
    // time the active one is full, plus a head start so that it is complete a little earlier.
    appended = appended_since_roll_;
    allowance = 2 * appended + static_cast<uint64_t>(config_.standby_min_bytes) / 4;
    segment_bytes = static_cast<uint64_t>(segment_bytes_.load(std::memory_order_relaxed));
  }
  if (standby_ == nullptr) {
    // A partition with little traffic gets none: its groups are rare, and zeros are disk space.
    if (appended < static_cast<uint64_t>(config_.standby_min_bytes) / 16) {
      return false;
    }
    uint64_t target = std::max<uint64_t>(static_cast<uint64_t>(config_.standby_min_bytes),
                                         2 * standby_last_size_);
    target = std::min(target, segment_bytes);
    if (config_.standby_budget != nullptr) {
      // The store's bound: as much of the target as is left, if that is at least the minimum.
      const int64_t granted = config_.standby_budget->TakeUpTo(
          static_cast<int64_t>(target),
          std::max<int64_t>(config_.standby_min_bytes, static_cast<int64_t>(piece)));
      if (granted == 0) return false;
      target = static_cast<uint64_t>(granted);
      standby_reserved_.store(granted);
    }
    standby_target_ = std::max<uint64_t>(piece, target / piece * piece);
    auto f = fs_->Open(standby_path_, /*create=*/true, /*truncate=*/true);
    if (!f.ok()) {
      AbandonStandby(f.status());
      return false;
    }
    standby_ = std::move(f).value();
    standby_written_ = 0;
    standby_pending_ = 0;
  }
  // The last piece's writeback first: it is usually done by now, and waiting here keeps the
  // zeros out of the next group fsync's way.
  if (standby_pending_ > 0) {
    Status st = standby_->WriteBack(standby_written_ - standby_pending_, standby_pending_, true);
    standby_pending_ = 0;
    if (!st.ok()) {
      AbandonStandby(st);
      return false;
    }
  }
  if (standby_written_ >= standby_target_) {
    // Complete. Not fsynced: its blocks are written and their allocation reaches the journal
    // with the next commit; the roll that takes it syncs the directory.
    standby_.reset();
    std::lock_guard lock(write_mu_);
    if (closed_) return false;
    pool_.push_back({standby_path_, Offset(0), nullptr});
    standby_last_size_ = standby_target_;
    return true;
  }
  if (standby_written_ + piece > allowance) return false;
  Status st = standby_->WriteAt(standby_written_, std::string_view(Zeros()).substr(0, piece));
  if (st.ok()) st = standby_->WriteBack(standby_written_, piece, /*wait=*/false);
  if (!st.ok()) {
    AbandonStandby(st);
    return false;
  }
  standby_written_ += piece;
  standby_pending_ = piece;
  return true;
}

}  // namespace rill::storage
