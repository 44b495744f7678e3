// The recycling pool of a Log (docs/STORAGE.md, Recycling): retired segment files kept as
// `<end offset>.recycle` for the next roll to overwrite. RetireLocked pools (or deletes) a
// segment retention removed, ClearPoolLocked deletes the pool, RemoveFile removes one pool file
// (through the FileRemover when one is set). RollLocked (log_append.cc) takes files from the pool,
// StandbyStep (log_standby.cc) adds the standby to it, Recover (log_recovery.cc) refills it.
// Locks: the pool is guarded by write_mu_; every function here expects it held.

#include <memory>
#include <string>
#include <utility>

#include "rill/storage/file_remover.h"
#include "rill/storage/log.h"
#include "segment.h"

namespace rill::storage {

Status Log::RemoveFile(const std::string& path, std::shared_ptr<const void> holder) {
  if (config_.remover != nullptr) return config_.remover->Remove(path, std::move(holder));
  Status st = fs_->Remove(path);
  return st.IsNotFound() ? Status::OK() : st;
}

std::string Log::PoolPath(Offset end) const {
  return JoinPath(dir_, SegmentFileName(end, kPoolExt));
}

Status Log::RetireLocked(const std::shared_ptr<Segment>& seg, Offset end) {
  if (!config_.recycle_segments || config_.recycle_pool_files <= 0) {
    return RemoveSegmentFiles(seg);
  }
  if (pool_.size() >= static_cast<size_t>(config_.recycle_pool_files)) {
    if (pool_.front().path == standby_path_) ReleaseStandbyBudget();
    RILL_RETURN_IF_ERROR(RemoveFile(pool_.front().path, pool_.front().retired));
    pool_.erase(pool_.begin());
  }
  std::string path = PoolPath(end);
  RILL_RETURN_IF_ERROR(seg->RetireTo(path));
  pool_.push_back({std::move(path), end, seg});
  return Status::OK();
}

Status Log::ClearPoolLocked() {
  ReleaseStandbyBudget();
  for (const auto& f : pool_) RILL_RETURN_IF_ERROR(RemoveFile(f.path, f.retired));
  pool_.clear();
  return Status::OK();
}

}  // namespace rill::storage
