#pragma once

// Log: one partition's append-only log of RecordBatch v2 batches, stored as segments in
// `<data_dir>/<topic>-<partition>/` (docs/STORAGE.md has the on-disk format and the recovery
// algorithm). The log never decodes records: it validates each batch's header and CRC, assigns
// offsets by rewriting baseOffset in place and stamps partitionLeaderEpoch (both outside the CRC);
// a follower's AppendReplicated keeps both as the leader wrote them. The log keeps the history
// of leader epochs in it (leader_epoch.h), persisted in its leader-epoch-checkpoint file, and the
// state of its idempotent producers (producer_state.h), checked by Append, updated by every
// append, persisted in `<offset>.producer-snapshot` files and rebuilt at Open
// (docs/STORAGE.md, Producer state in the log).
//
// Thread-safety:
//   - Append, AppendReplicated, TruncateTo, ApplyRetention, Flush and Close serialise on an
//     internal writer mutex; they may be called from any thread, but the log is meant to have
//     one writer.
//   - Read, OffsetForTimestamp, WaitDurable, OnDurable and all accessors may be called from any
//     thread at any time, concurrently with the writer; reads are positional (pread) and never
//     wait for an append or an fsync. A Read that races with TruncateTo may return batches that
//     the truncation is removing.
//
// Failure: a failed write or fsync puts the log into a failed, read-only state (the contents of
// the page cache versus the disk are then unknown): every pending and later durability waiter
// gets the error, appends fail with kFailed naming the partition and the cause, reads continue.
// Reopening the log (recovery) is the only way out.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "rill/proto/status.h"
#include "rill/proto/types.h"
#include "rill/storage/file_system.h"
#include "rill/storage/flush_scheduler.h"
#include "rill/storage/leader_epoch.h"
#include "rill/storage/log_config.h"
#include "rill/storage/producer_state.h"

namespace rill::storage {

class Segment;
struct Checkpoint;

// What one retention pass removed (Log::ApplyRetention).
struct RetentionResult {
  int segments = 0;    // whole segments deleted
  uint64_t bytes = 0;  // their size (segment files; indexes not counted)
};

struct AppendResult {
  Offset base_offset;       // offset assigned to the first record of the first batch
  Offset last_offset;       // offset of the last record of the last batch
  int64_t log_append_time;  // the clock when the batches were appended (ms)
  uint64_t position;        // byte position of the first batch in its segment file
  Offset segment_base;      // base offset (file name) of that segment
  // Append only: the request was one idempotent batch that is a retry of a batch already in the
  // log (same producer, epoch and sequence range as one of its producer's last 32). Nothing
  // was written; base_offset and last_offset are the offsets the original batch was given,
  // log_append_time is -1, position 0 and segment_base -1 (Kafka answers such a retry with the
  // original offsets and no log append time).
  bool duplicate = false;
};

// A record found by timestamp (Log::OffsetForTimestamp).
struct TimestampOffset {
  Offset offset;         // the record's offset
  int64_t timestamp_ms;  // the record's timestamp
};

struct ReadResult {
  std::string data;       // whole batches, back to back (empty when nothing to return)
  Offset next_offset;     // offset after the last returned batch (the next fetch offset)
  Offset log_end_offset;  // log end offset when the read started
  Offset log_start_offset;
};

class Log : private FlushScheduler::Task {
 public:
  // Opens (recovering if the last stop was unclean) or creates the log in `dir`. `name` is the
  // partition name used in messages ("topic-3"). `fs` and must outlive the Log.
  static Result<std::unique_ptr<Log>> Open(FileSystem* fs, std::string dir, std::string name,
                                           LogConfig config, Clock clock = SystemClock());

  // Destroying a Log without Close stops its threads without flushing or writing the recovery
  // checkpoint, like a crash of the process (the next Open recovers). Pending waiters get
  // kUnavailable.
  ~Log() override;
  Log(const Log&) = delete;
  Log& operator=(const Log&) = delete;

  // Appends one batch or several whole batches back to back in `batches`. Each is validated
  // (header, size <= max_batch_bytes, CRC); then baseOffsets are rewritten in `batches` to
  // consecutive offsets from log_end_offset() and partitionLeaderEpoch is set to `epoch`. The
  // bytes are in the page cache on return; durability follows the flush policy (WaitDurable /
  // OnDurable). Errors: kCorruption / kInvalidArgument for a bad batch (nothing written),
  // kNoSpace / kIOError for a write error (the log then fails), kFailed once failed.
  // An `epoch` above latest_epoch() adds {epoch, base offset} to the epoch history, which is
  // written to the checkpoint file (durably) before the batches; an epoch at or below it adds
  // nothing (callers of Append need not keep epochs monotonic; replication does).
  //
  // Idempotent producers (batches with producerId >= 0): before anything is written, each such
  // batch is checked against the producer state (ProducerStateTable::Check), as the earlier
  // batches of the same request will have left it. A batch with producerId < 0 costs nothing
  // beyond reading that header field. Outcomes, all of which write nothing and leave the state
  // as it was (the table's verdict also goes to *refusal when given):
  //   - out of order sequence: kOutOfRange ("expected sequence X, got Y")
  //   - stale producer epoch, or invalid producer fields (epoch or sequence < 0): kInvalidArgument
  //   - a new producer id beyond the table's bound: kResourceExhausted
  //   - a retry of a batch already in the log (duplicate): when it is the only batch of the
  //     request, OK with AppendResult::duplicate and the original offsets; when the request holds
  //     other batches too, kInvalidArgument and *refusal = kDuplicate (Kafka's produce v3+
  //     allows one batch per partition per request, so such a request is not a real client's).
  // After the write, every idempotent batch updates the state with its offsets and the log's
  // clock. *refusal is left untouched on success and on errors that are not the table's.
  Result<AppendResult> Append(std::span<char> batches, LeaderEpoch epoch,
                              ProducerCheck* refusal = nullptr);

  // A follower's append: whole batches copied from the leader, stored byte for byte (baseOffset
  // and partitionLeaderEpoch as given). Each batch is validated as by Append (header, size, CRC);
  // the first batch's base offset must equal log_end_offset() and each next one the previous
  // batch's last offset + 1, else kInvalidArgument naming the offsets; an epoch below the
  // latest (in the history or earlier in `batches`) is kCorruption. Nothing is written on any
  // of these errors. Epochs above the latest extend the epoch history as in Append. Durability,
  // rolling, indexes and failure are exactly as for Append (one code path). AppendResult's
  // log_append_time is the clock at the append (the batches' timestamps are not touched).
  // Idempotent batches update the producer state without any check (the leader checked them).
  Result<AppendResult> AppendReplicated(std::span<const char> batches);

  // Whole batches starting with the batch that contains `from`, from one segment, up to
  // `max_bytes` (but at least one whole batch even if it is larger), stopping before any batch
  // whose base offset is > `max_offset`. kOutOfRange when `from` is below log_start_offset() or
  // beyond log_end_offset(); empty data when `from` == log_end_offset().
  Result<ReadResult> Read(Offset from, size_t max_bytes, Offset max_offset = Offset::max()) const;

  // Kafka's ListOffsets by timestamp: the first record, in offset order and at or after
  // log_start_offset(), whose timestamp is >= `timestamp_ms`, with that record's timestamp
  // (record timestamps need not grow with offsets; in a LogAppendTime batch every record has the
  // batch's maxTimestamp). kNotFound when no record is that late (an empty log included).
  // Finds the first batch whose maxTimestamp >= `timestamp_ms` through the time index and batch
  // headers, then reads and decodes (decompressing) only that batch. kCorruption naming the
  // partition, segment and byte position when that batch does not decode (bad CRC, malformed
  // records, bad compressed data); kResourceExhausted when it decompresses beyond 64 MiB.
  Result<TimestampOffset> OffsetForTimestamp(int64_t timestamp_ms) const;

  // Removes every batch at or after `offset` (a batch containing `offset` is removed whole, so
  // the new log end offset may be below `offset`), across segments, durably. An offset at or
  // below log_start_offset() empties the log and restarts it at `offset`. No-op when `offset` >=
  // log_end_offset(). Waiters for removed offsets get kOutOfRange.
  Status TruncateTo(Offset offset);

  // Deletes whole closed segments (never the active one) older than retention_ms (by their
  // largest batch timestamp) or beyond retention_bytes, advancing log_start_offset().
  // Returns what was deleted. The producer state keeps producers whose batches were deleted
  // (producer_state.h); producer snapshots below the new log start are deleted, except the
  // newest. Also the periodic producer expiry: drops producers idle for
  // producer_id_expiration_ms by the log's clock (not `now_ms`).
  Result<RetentionResult> ApplyRetention(int64_t now_ms);

  // Makes everything appended so far durable now (fsync), whatever the policy.
  Status Flush();

  // Flushes, trims the active segment, writes a producer snapshot at the log end (a failure
  // there only warns: Open rebuilds from the log), writes the recovery checkpoint and stops the
  // flusher.
  // Afterwards only accessors and reads work. Idempotent.
  Status Close();

  // Blocks until offset `offset` is durable under the flush policy (durable_offset() > offset),
  // the log fails (its error), is closed or destroyed (kUnavailable), the offset is truncated
  // away (kOutOfRange) or `deadline` passes (kTimeout).
  Status WaitDurable(Offset offset, std::chrono::steady_clock::time_point deadline);
  // Calls `done` once `offset` is durable (OK) or can never be (the error, as WaitDurable).
  // `done` runs on a flusher thread (the FlushScheduler's), or inline when the outcome is already known; it must not
  // call back into this Log's writer methods.
  void OnDurable(Offset offset, std::function<void(Status)> done);

  // The leader-epoch history, ascending (leader_epoch.h): for every epoch that rose above all
  // earlier ones, the base offset of its first batch in the log. The first entry starts at or
  // below log_start_offset() (at it after retention); every entry starts below log_end_offset().
  // Callable from any thread, concurrently with the writer (a copy, under a small mutex).
  std::vector<EpochEntry> epoch_history() const;
  // The last entry's epoch, kNoEpoch (-1) when the history is empty. Lock-free.
  LeaderEpoch latest_epoch() const {
    return LeaderEpoch(latest_epoch_.load(std::memory_order_acquire));
  }

  // A copy of the idempotent producers' state (producer_state.h), as of log_end_offset(). Takes
  // the writer lock (waits for an append in progress): for tests, tools and diagnostics.
  ProducerStateTable producer_state() const;
  // Offsets of the producer snapshot files the log keeps, ascending. Takes the writer lock.
  std::vector<Offset> producer_snapshot_offsets() const;

  Offset log_start_offset() const { return Offset(log_start_.load(std::memory_order_acquire)); }
  Offset log_end_offset() const { return Offset(log_end_.load(std::memory_order_acquire)); }
  // Offsets below this hold the flush policy's promise (for `none`: equals log_end_offset()).
  Offset durable_offset() const { return Offset(durable_.load(std::memory_order_acquire)); }
  uint64_t size_bytes() const;
  // Number of fsync rounds of the log's data so far (group commit: one per group).
  uint64_t sync_count() const { return sync_count_.load(std::memory_order_relaxed); }
  // Segments created by reusing a retired segment file (recycling) since Open.
  uint64_t recycled_count() const { return recycled_count_.load(std::memory_order_relaxed); }
  size_t segment_count() const;
  // OK, or the error that failed the log.
  Status health() const;
  const std::string& name() const { return name_; }
  const std::string& dir() const { return dir_; }
  // The current settings (ApplyConfig may have changed the topic-level ones since Open).
  LogConfig config() const;

  // Applies a topic config change to the open log without reopening it: segment_bytes,
  // segment_ms (from the next append on), retention_ms, retention_bytes (the next
  // ApplyRetention), flush_policy, flush_interval_ms, max_batch_bytes (the next append) and
  // index_interval_bytes (segments created from now on). The other fields (preallocation,
  // recycling, page-cache window, group-commit poll) keep their values from Open. Appends and
  // reads go on throughout. A switch to `none` first makes everything appended so far durable
  // (one fsync, appends wait for it), so no append is acknowledged with less than the policy it
  // was appended under. kInvalidArgument for a setting Open would refuse (nothing changes);
  // kUnavailable once closed; the log's error if the fsync fails.
  Status ApplyConfig(const LogConfig& config);

 private:
  // Defined in storage/src/log*.cc, one file per concern; storage/src/log.cc lists them and the
  // locks each part expects.
  Log(FileSystem* fs, std::string dir, std::string name, LogConfig config, Clock clock);

  struct Waiter {
    Offset offset;
    std::function<void(Status)> done;
  };

  static Status ValidateConfig(const LogConfig& config);
  FlushPolicy flush_policy() const { return flush_policy_.load(std::memory_order_acquire); }
  Status Recover();
  Status LoadCheckpoint(Checkpoint* cp);
  Status WriteCheckpoint(bool clean);
  // The recovery point (docs/STORAGE.md): every segment that ends at or below it is complete and
  // durable. Load returns -1 when there is none (or it is unreadable).
  int64_t LoadRecoveryPoint();
  Status RemoveRecoveryPoint();  // durably; recovery_point_mu_ held (or Open)
  // Removes the log's file `name` and fsyncs the directory (OK when it is absent).
  Status RemoveDurably(std::string_view name);
  // After a sync round that made closed segments durable: records `point` (the active segment's
  // base then) unless a truncation came after `truncations_seen` or it is not higher.
  void AdvanceRecoveryPoint(Offset point, uint64_t truncations_seen);
  Status RollLocked(Offset base_offset);
  // The one append path (log_append.cc). `data` holds the batches; with `stamp_epoch` (Append)
  // `stamp` is the same bytes, writable, and gets offsets and that epoch; without
  // (AppendReplicated) the bytes are stored as they are and must continue the log.
  Result<AppendResult> AppendImpl(std::string_view data, std::span<char> stamp,
                                  std::optional<LeaderEpoch> stamp_epoch,
                                  ProducerCheck* refusal = nullptr);
  // Epoch history (log_epochs.cc). LoadEpochHistory runs in Open after Recover. The others
  // expect write_mu_ held (or Open): WriteEpochCheckpoint replaces the checkpoint file with
  // `history`, durably; PublishEpochHistory makes `history` the one readers see.
  Status LoadEpochHistory();
  Status WriteEpochCheckpoint(const std::vector<EpochEntry>& history);
  void PublishEpochHistory(std::vector<EpochEntry> history);
  Status TruncateLocked(Offset offset);
  // Producer state (log_producers.cc); all but the first expect write_mu_ held (or Open).
  // LoadProducerState runs in Open after Recover: the newest usable snapshot at or below the log
  // end, then the batch headers after it; removes snapshots above the end and corrupt ones.
  Status LoadProducerState();
  // Updates `table` with every idempotent batch from `from` to the log end (headers only).
  Status ReplayProducers(Offset from, ProducerStateTable* table, int64_t now_ms) const;
  // Checks the idempotent batches of a leader's append of `batch_count` batches that will start
  // at `end` (Append's rules). OK with *duplicate set when the only batch is a retry.
  struct IdempotentBatch;
  Status CheckProducersLocked(int64_t end, size_t batch_count,
                              std::span<const IdempotentBatch> batches, ProducerCheck* refusal,
                              std::optional<CheckResult>* duplicate) const;
  // Expires idle producers, then writes the snapshot at `at` and keeps the newest
  // kProducerSnapshotsKept. A failure only warns (the state is rebuilt from the log).
  void SnapshotProducersLocked(Offset at);
  // After a truncation to `new_end` (`restart`: the log restarted empty there): removes the
  // snapshots above it (all when restarting; the caller fsyncs the directory) and reloads the
  // state from the newest snapshot at or below it plus the log after that snapshot.
  Status TruncateProducersLocked(Offset new_end, bool restart);
  // After retention: removes snapshots below `log_start` except the newest one.
  void RetainProducerSnapshotsLocked(Offset log_start);
  Status DeleteSegmentFiles(const std::shared_ptr<Segment>& seg);
  Status Fail(Status cause);
  // Raises durable_offset() and completes waiters below it, unless a truncation happened since
  // the caller read `truncations_seen` (UINT64_MAX: do not check).
  void AdvanceDurable(Offset durable, uint64_t truncations_seen = UINT64_MAX);
  void FailWaiters(const Status& st, Offset from);
  // Group policy: waits up to group_commit_poll_us for an append, yielding the CPU.
  void PollForAppend();
  // After a sync: drops the page cache of synced bytes older than cache_behind_bytes.
  void DropCacheBehind(const std::shared_ptr<Segment>& synced, uint64_t synced_bytes);
  // One flusher round (FlushScheduler::Task; log_flush.cc).
  FlushScheduler::Clock::time_point RunFlushRound() override;
  WholeSync* BeginSharedSync() override;
  FlushScheduler::Clock::time_point EndSharedSync(bool synced) override;
  Status SyncPending(bool* did_work);
  // What one sync round makes durable, taken under write_mu_ (TakePendingSync) before the syncs.
  struct PendingSync {
    std::vector<std::shared_ptr<Segment>> segs;  // closed segments not yet synced, then the active
    int64_t target = 0;                          // the log end offset when taken
    bool dir_dirty = false;
    uint64_t truncations_seen = 0;
    uint64_t synced_active = 0;  // the active segment's size when taken
    int64_t group_bytes = 0;
    std::chrono::steady_clock::time_point start{};
  };
  PendingSync TakePendingSync();
  // Syncs what `p` holds (its files, unless `files_synced` says a WholeSync did after it was
  // taken; the directory when dirty), then advances the durable offset and recovery point.
  Status CompleteSync(const PendingSync& p, bool files_synced);
  // The group policy's round after a sync: one standby piece, then run again (log_flush.cc).
  FlushScheduler::Clock::time_point AfterGroupSync();
  // fdatasyncs `segs` (and the directory when `dir_dirty`), then raises the durable offset to
  // `target` unless a truncation came after `truncations_seen`. A failure fails the log. With
  // `group_bytes` >= 0 the syncs' duration and group_bytes go to config_.on_sync.
  // `files_synced`: the segments' data is durable already (a WholeSync after the snapshot); only
  // the directory is synced. `start`: when the round began, for on_sync (default: now).
  Status SyncAndAdvance(const std::vector<std::shared_ptr<Segment>>& segs, bool dir_dirty,
                        int64_t target, uint64_t truncations_seen, int64_t group_bytes,
                        bool files_synced = false,
                        std::chrono::steady_clock::time_point start = {});
  // Zero-fills one chunk ahead of the active segment's end; true if it added space.
  bool PreallocateIdle();
  // Writes one piece of the standby segment (or completes it); true if it did any work.
  bool StandbyStep();
  // Closes and deletes an unfinished standby after an error; no more standbys for this Log.
  void AbandonStandby(const Status& cause);
  bool StandbyInPoolLocked() const;  // write_mu_ held
  std::shared_ptr<Segment> SegmentFor(Offset offset) const;
  std::shared_ptr<Segment> active() const;
  // Recycling pool (write_mu_ held). RetireLocked pools or deletes a segment retention removed
  // (`end` = the base offset of the segment after it); ClearPoolLocked deletes every pool file.
  Status RetireLocked(const std::shared_ptr<Segment>& seg, Offset end);
  Status ClearPoolLocked();
  std::string PoolPath(Offset end) const;
  // Removes a dropped segment's files (its .log through config_.remover when set, not shrunk
  // while a reader holds the segment).
  Status RemoveSegmentFiles(const std::shared_ptr<Segment>& seg);
  // Removes a pool file (through config_.remover when set); OK when absent.
  Status RemoveFile(const std::string& path, std::shared_ptr<const void> holder);

  FileSystem* const fs_;
  const std::string dir_;
  const std::string name_;
  // Settings fixed at Open; the topic-level ones below are the live values.
  const LogConfig config_;
  const Clock clock_;
  const std::string standby_path_;  // the standby segment's pool file
  // Topic-level settings ApplyConfig changes while the log is open (read without a lock).
  std::atomic<int64_t> segment_bytes_;
  std::atomic<int64_t> segment_ms_;
  std::atomic<int64_t> retention_ms_;
  std::atomic<int64_t> retention_bytes_;
  std::atomic<FlushPolicy> flush_policy_;
  std::atomic<int64_t> flush_interval_ms_;
  std::atomic<int64_t> index_interval_bytes_;
  std::atomic<int64_t> max_batch_bytes_;

  // Writer state.
  mutable std::mutex write_mu_;
  bool closed_ = false;
  int64_t active_created_ms_ = 0;
  // Segments rolled since the last sync whose data the flusher must still fsync.
  std::vector<std::shared_ptr<Segment>> unsynced_closed_;
  bool dir_dirty_ = false;
  // The recovery point on disk (-1: none; guarded by recovery_point_mu_, which a truncation
  // takes under write_mu_ and the flusher without it, so appends never wait for its write). A
  // truncation below it removes the file first.
  std::mutex recovery_point_mu_;
  int64_t recovery_point_ = -1;
  // Retired segment files waiting for reuse, oldest first. Invariant: every batch in a pool file
  // has an offset below its `end`, and `end` <= the log start offset (TruncateTo below the
  // log start clears the pool; Open deletes files that break it). `retired` is the segment that
  // owned the file (null after Open): the file is reused only when no reader still holds it.
  struct PoolFile {
    std::string path;
    Offset end;
    std::shared_ptr<Segment> retired;
  };
  std::vector<PoolFile> pool_;

  // The leader-epoch history: changed under write_mu_ and epoch_mu_, read under either (readers
  // take only epoch_mu_). latest_epoch_ mirrors epochs_.back().epoch (kNoEpoch when empty), so
  // the append path's test for a new epoch is one compare with no lock. Invariant: the
  // checkpoint file holds every entry of epochs_ that starts below the durable part of the log
  // (it is written before the batches that add an entry; see log_epochs.cc for the crash cases).
  mutable std::mutex epoch_mu_;
  std::vector<EpochEntry> epochs_;
  std::atomic<int32_t> latest_epoch_{kNoEpoch.value()};

  // Idempotent producers' state as of log_end_offset() (under write_mu_), and the offsets of the
  // snapshot files on disk, ascending (under write_mu_).
  ProducerStateTable producers_;
  std::vector<Offset> producer_snapshots_;
  // An idempotent batch of a request being appended: its index in the request, its first
  // offset relative to the request's first (leader) and its header fields.
  struct IdempotentBatch {
    size_t index;
    int64_t rel_base;
    BatchIdentity id;
  };

  // Segments by base offset; the last is the active one. Guarded by segments_mu_ (readers
  // take it shared to copy a shared_ptr; the writer takes it exclusive to add or remove).
  mutable std::shared_mutex segments_mu_;
  std::vector<std::shared_ptr<Segment>> segments_;

  std::atomic<int64_t> log_start_{0};
  std::atomic<int64_t> log_end_{0};
  std::atomic<int64_t> durable_{0};
  std::atomic<uint64_t> sync_count_{0};
  std::atomic<uint64_t> recycled_count_{0};

  // Durability waiters, failure state and the flusher's wake-up.
  mutable std::mutex durable_mu_;
  std::condition_variable durable_cv_;  // waiters in WaitDurable
  std::multimap<int64_t, std::function<void(Status)>> callbacks_;
  Status failure_;
  std::atomic<bool> failed_{false};  // !failure_.ok(), readable without durable_mu_
  // Zero-fill state (flusher thread; synced_size_ under write_mu_): bytes of the last group
  // fsync, the active segment's size at that fsync, and whether a window fill is under way.
  std::atomic<int64_t> last_group_bytes_{0};
  uint64_t synced_size_ = 0;
  // Moving average of the group fsyncs' bytes (written under write_mu_, read without it).
  std::atomic<int64_t> group_bytes_avg_;
  bool filling_ = false;
  // Standby segment: the file being written and its progress (flusher thread only), and the
  // bytes appended since the last roll, which bound its zero bytes (under write_mu_).
  std::unique_ptr<File> standby_;
  uint64_t standby_written_ = 0;
  uint64_t standby_target_ = 0;
  uint64_t standby_pending_ = 0;  // bytes of the last piece, whose writeback may be under way
  uint64_t standby_last_size_ = 0;
  bool standby_off_ = false;  // a standby write failed: no more (zero-fill is only a help)
  // Bytes of config_.standby_budget this log's standby holds (0: none). Any thread (rounds,
  // rolls under write_mu_, Close): ReleaseStandbyBudget gives them back once.
  std::atomic<int64_t> standby_reserved_{0};
  void ReleaseStandbyBudget();
  uint64_t appended_since_roll_ = 0;
  std::mutex cache_mu_;      // serialises DropCacheBehind
  int durable_waiters_ = 0;  // threads inside WaitDurable (skip notify when none)
  bool stopping_ = false;
  bool config_changed_ = false;  // ApplyConfig ran: the flusher re-reads the policy
  int64_t flush_requested_ = 0;  // log end offset the flusher has been asked to make durable
  // Counts truncations (written under write_mu_ and durable_mu_, read under either): a sync
  // that raced with a truncation must not advance durable_.
  uint64_t truncations_ = 0;
  // The flusher: rounds on `scheduler_` (config_.flush_scheduler, or own_scheduler_ with one
  // thread when none was given). Round state, touched only by rounds (never two at once):
  std::unique_ptr<FlushScheduler> own_scheduler_;
  FlushScheduler* scheduler_ = nullptr;
  bool window_full_ = false;        // group: the last zero-fill found nothing to do
  bool synced_last_round_ = false;  // group: the last round synced a group
  WholeSync* whole_sync_ = nullptr;                // config_.whole_sync when it covers dir_
  std::optional<PendingSync> shared_;              // between BeginSharedSync and EndSharedSync
  FlushScheduler::Clock::time_point idle_due_{};   // group: idle work not before this
  FlushScheduler::Clock::time_point next_tick_ = FlushScheduler::kIdle;  // interval: next sync
};

}  // namespace rill::storage
