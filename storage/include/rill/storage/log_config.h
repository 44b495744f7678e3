#pragma once

// Per-partition log settings (Kafka topic-config names in comments) and the injectable clock.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string_view>

#include "rill/proto/status.h"

namespace rill::storage {

class FlushScheduler;

class FileRemover;

enum class FlushPolicy : uint8_t {
  kGroup,     // a flusher thread fsyncs once per group of appends (group commit); the default
  kInterval,  // the flusher fsyncs every flush_interval_ms
  kNone,      // never fsync on the append path; acknowledged when in the page cache
};

std::string_view FlushPolicyName(FlushPolicy p);
Result<FlushPolicy> ParseFlushPolicy(std::string_view name);  // "group" | "interval" | "none"

// The zero-filled standby bytes that the logs sharing it may hold at once (docs/STORAGE.md,
// Standby segments): without a bound every partition with small groups prepares its own, and a
// thousand partitions zero-fill gigabytes. A log takes its standby's size when it starts one (or
// as much as is left, when that is at least its minimum) and gives it back when a roll takes the
// file, the file leaves the pool, the standby is abandoned or the log closes. Thread-safe.
class StandbyBudget {
 public:
  explicit StandbyBudget(int64_t limit) : limit_(limit) {}
  // Takes up to `want` bytes if at least `min` are left; returns what it took (0: none).
  int64_t TakeUpTo(int64_t want, int64_t min) {
    int64_t used = used_.load();
    while (true) {
      const int64_t grant = std::min(want, limit_ - used);
      if (grant < min || grant <= 0) return 0;
      if (used_.compare_exchange_weak(used, used + grant)) return grant;
    }
  }
  void Give(int64_t n) { used_.fetch_sub(n); }
  int64_t used() const { return used_.load(); }
  int64_t limit() const { return limit_; }

 private:
  const int64_t limit_;
  std::atomic<int64_t> used_{0};
};

struct LogConfig {
  int64_t segment_bytes = 1LL << 30;               // segment.bytes: roll when the next append
                                                   // would take the active segment past this
  int64_t segment_ms = 7LL * 24 * 3600 * 1000;     // segment.ms: roll a non-empty segment this old
  int64_t retention_ms = 7LL * 24 * 3600 * 1000;   // retention.ms; -1 = unlimited
  int64_t retention_bytes = -1;                    // retention.bytes; -1 = unlimited
  FlushPolicy flush_policy = FlushPolicy::kGroup;  // flush.policy
  // producer.id.expiration.ms: an idempotent producer with no batch for this long (by the log's
  // clock) is dropped from the partition's producer state (docs/STORAGE.md, Producer state in
  // the log). Applied when a producer snapshot is written (segment roll, Close), at Open and at
  // each ApplyRetention. Must be > 0. Fixed at Open.
  int64_t producer_id_expiration_ms = 24LL * 60 * 60 * 1000;
  int64_t flush_interval_ms = 1000;                // flush.interval.ms (policy interval)
  int64_t index_interval_bytes = 4096;             // index.interval.bytes
  int64_t max_batch_bytes = 1 << 20;               // max.message.bytes: largest batch accepted
  // Active-segment preallocation (group/interval policies): once no append has arrived for
  // preallocate_idle_ms, the flusher zero-fills and syncs up to preallocate_bytes ahead of the
  // write position, in chunks of preallocate_chunk_bytes, so the group fsyncs of the next burst
  // overwrite already-written space. 0 bytes disables it. docs/STORAGE.md has the measurements.
  // The zero-fill goes in pieces of preallocate_piece_bytes, each written and synced on its own,
  // and the flusher checks for waiting appends between pieces: a group fsync waits behind at most
  // one piece. It is skipped while the last group fsync was larger than
  // preallocate_max_group_bytes (sustained high throughput: the groups are large, their journal
  // cost is amortised, and zero-filling would double the bytes written).
  int64_t preallocate_bytes = 64LL << 20;
  int64_t preallocate_chunk_bytes = 16LL << 20;
  int64_t preallocate_idle_ms = 20;
  int64_t preallocate_piece_bytes = 1LL << 20;
  int64_t preallocate_max_group_bytes = 256LL << 10;
  // Standby segments (group policy; docs/STORAGE.md, Standby segments). While the groups are
  // small (standby_max_group_bytes below) the flusher, after each group
  // and whenever it has no group to sync, writes zeros into a standby file, one
  // preallocate_piece_bytes piece at a time, each
  // handed to writeback (sync_file_range) and never fsynced, and never more zero bytes than twice
  // the bytes appended since the last roll plus standby_min_bytes / 4 (none before
  // standby_min_bytes / 16 have been appended since the last roll). Once complete the file joins
  // the recycling pool, and the next append that would grow the active segment beyond its written
  // space rolls into it: group fsyncs then overwrite written space, which on ext4 commits no
  // journal transaction. The first standby is standby_min_bytes, each next one twice the last, up
  // to segment_bytes. Needs recycle_segments and recycle_pool_files >= 1. 0 disables.
  int64_t standby_min_bytes = 0;
  // Standbys are written only while the moving average of the group fsyncs (weight 1/8 per
  // group) is at most this: the low-rate, latency-bound regime where journal commits dominate.
  int64_t standby_max_group_bytes = 64LL << 10;
  // Segment recycling: a segment that retention deletes is renamed into a pool
  // (`<end offset>.recycle` in the partition directory, at most recycle_pool_files files) and the
  // next roll renames a pool file to the new segment's name instead of creating a growing file,
  // so appends (and their group fsyncs) overwrite already-written space. Safe because recovery
  // accepts a batch only at the expected next offset and every pooled byte belongs to offsets
  // below the log start offset (docs/STORAGE.md, Recycling). false: unlink as before.
  bool recycle_segments = true;
  int recycle_pool_files = 2;
  // Group policy: after an fsync, the flusher polls (yielding the CPU) up to this long for the
  // next append before it sleeps on its condition variable, so a steady stream of appenders is
  // picked up without a futex wake-up between groups. 0 disables it.
  int64_t group_commit_poll_us = 50;
  // Page cache kept behind the synced end (group/interval policies): after each fsync the log
  // advises the kernel to drop the synced bytes older than the newest cache_behind_bytes of the
  // log (posix_fadvise DONTNEED, in steps of at least 4 MiB). Readers of older data read from
  // disk; the writer reuses freed page-cache pages instead of taking fresh ones (on this VM the
  // kernel's copy into fresh pages was 41% of the broker's CPU at 1 KiB records). -1 keeps
  // everything (the kernel decides).
  int64_t cache_behind_bytes = -1;
  // Called on the flusher thread after each durability round (group or interval fsync) with its
  // duration and the bytes it made durable in the active segment; for metrics. Must be cheap and
  // thread-safe (several logs call it). Fixed at Open (ApplyConfig ignores it).
  std::function<void(std::chrono::nanoseconds elapsed, uint64_t bytes)> on_sync;
  // Removes the segment and pool files that retention, truncation and recovery drop, shrinking
  // them step by step in the background (rill/storage/file_remover.h: an unlink of a large file
  // stalls every fsync on a disk mounted with `discard`). Must outlive the log and use the log's
  // FileSystem. nullptr: unlink at once. Fixed at Open.
  FileRemover* remover = nullptr;
  // Runs the log's flusher rounds (rill/storage/flush_scheduler.h): the logs of a store share
  // one pool of threads. Must outlive the log. nullptr: the log starts a one-thread scheduler of
  // its own. Fixed at Open.
  FlushScheduler* flush_scheduler = nullptr;
  // The filesystem-wide sync the scheduler's shared syncs use for this log (rill/storage/
  // file_system.h, WholeSync), when its directory is on that filesystem. Must outlive the log.
  // nullptr: the log's groups are always synced file by file. Fixed at Open.
  WholeSync* whole_sync = nullptr;
  // Bounds the standby bytes of every log that shares it (StandbyBudget above). Must outlive the
  // log. nullptr: no bound beyond each log's own. Fixed at Open.
  StandbyBudget* standby_budget = nullptr;
};

// Milliseconds since the Unix epoch. Tests inject a manual clock; the default reads the system
// clock. Must be callable from any thread.
using Clock = std::function<int64_t()>;
Clock SystemClock();

}  // namespace rill::storage
