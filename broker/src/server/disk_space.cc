#include "server/disk_space.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

namespace rill::broker {

namespace {

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Mib(uint64_t bytes) { return std::to_string(bytes >> 20) + " MiB"; }

}  // namespace

Result<uint64_t> DiskSpaceGuard::StatvfsProbe(const std::string& dir) {
  struct statvfs s;
  if (statvfs(dir.c_str(), &s) != 0) {
    return Status::IOError("statvfs " + dir + ": " + std::strerror(errno));
  }
  return static_cast<uint64_t>(s.f_bavail) * static_cast<uint64_t>(s.f_frsize);
}

DiskSpaceGuard::DiskSpaceGuard(std::string dir, uint64_t min_free_bytes, Probe probe)
    : dir_(std::move(dir)), min_free_(min_free_bytes), probe_(std::move(probe)) {
  Refresh(NowNs());
}

void DiskSpaceGuard::MaybeRefresh() {
  const int64_t now = NowNs();
  if (now - checked_ns_.load(std::memory_order_relaxed) >=
          std::chrono::nanoseconds(kRefreshInterval).count() ||
      (min_free_ > 0 && admitted_since_.load(std::memory_order_relaxed) >= min_free_ / 8)) {
    Refresh(now);
  }
}

Status DiskSpaceGuard::Admit(uint64_t bytes) {
  if (min_free_ == 0) return Status::OK();
  admitted_since_.fetch_add(bytes, std::memory_order_relaxed);
  MaybeRefresh();
  if (!refusing_.load(std::memory_order_relaxed)) return Status::OK();
  return Status::ResourceExhausted(
      "the disk holding " + dir_ + " has " + Mib(free_bytes()) + " free, below storage.min_free_bytes (" +
      Mib(min_free_) +
      "): produce is refused until retention, a topic deletion or an operator frees space");
}

void DiskSpaceGuard::Refresh(int64_t now_ns) {
  std::unique_lock lock(refresh_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;  // another thread is reading it right now
  admitted_since_.store(0, std::memory_order_relaxed);
  checked_ns_.store(now_ns, std::memory_order_relaxed);
  auto avail = probe_(dir_);
  if (!avail.ok()) {
    // Keep the last verdict: an unreadable free space is no reason to stop (or start) refusing.
    if (!probe_failed_) {
      spdlog::warn("cannot read the free space of {}: {}", dir_, avail.status().ToString());
      probe_failed_ = true;
    }
    return;
  }
  probe_failed_ = false;
  free_.store(*avail, std::memory_order_relaxed);
  const bool refuse = min_free_ > 0 && *avail < min_free_;
  if (refusing_.exchange(refuse, std::memory_order_relaxed) != refuse) {
    if (refuse) {
      spdlog::error("the disk holding {} has {} free, below storage.min_free_bytes ({}): refusing "
                    "produce until space is freed",
                    dir_, Mib(*avail), Mib(min_free_));
    } else {
      spdlog::warn("the disk holding {} has {} free again: accepting produce", dir_, Mib(*avail));
    }
  }
}

void DiskSpaceGuard::RenderMetrics(std::string* out) {
  MaybeRefresh();
  *out +=
      "# HELP rill_storage_free_bytes Bytes available on the disk holding the data dir (last "
      "reading).\n# TYPE rill_storage_free_bytes gauge\nrill_storage_free_bytes " +
      std::to_string(free_bytes()) +
      "\n# HELP rill_storage_min_free_bytes storage.min_free_bytes: produce is refused below it.\n"
      "# TYPE rill_storage_min_free_bytes gauge\nrill_storage_min_free_bytes " +
      std::to_string(min_free_) +
      "\n# HELP rill_storage_produce_refused 1 while produce is refused for lack of disk space.\n"
      "# TYPE rill_storage_produce_refused gauge\nrill_storage_produce_refused " +
      (refusing() ? "1" : "0") + "\n";
}

}  // namespace rill::broker
