#pragma once

// Segment: one `<base offset>.log` file of whole batches plus its sparse `.index` (relative
// offset u32 -> file position u32, big-endian, 8 bytes per entry) and `.timeindex` (max timestamp
// so far i64 -> relative offset u32, 12 bytes per entry). The in-memory copies of both indexes
// answer lookups; the files are rewritten from them and rebuilt by a scan when missing or
// inconsistent. docs/STORAGE.md describes the format.
//
// Thread-safety: the mutating methods (Write, Preallocate, TruncateAt, Trim, ...) are called by
// the log's writer with the log's writer mutex held. Read, FindBatch, OffsetForTimestamp and the
// accessors may run concurrently on any thread: they see only batches whose bytes are fully
// written (size() is published with release ordering after the write).

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rill/proto/batch_header.h"
#include "rill/proto/status.h"
#include "rill/proto/types.h"
#include "rill/storage/file_system.h"
#include "rill/storage/log.h"

namespace rill::storage {

// The per-batch facts a Write needs for its indexes.
struct BatchMeta {
  int64_t base_offset;
  int64_t last_offset;
  int64_t max_timestamp;
  uint32_t size;
};

std::string SegmentFileName(Offset base, std::string_view ext);  // "000..123.log"

// A recycling pool file is named `<end offset>.recycle` (docs/STORAGE.md, Recycling).
inline constexpr std::string_view kPoolExt = ".recycle";

// 1 MiB of zero bytes, for zero-fill writes.
const std::string& Zeros();

class Segment {
 public:
  // Creates empty files for a new segment (replacing leftovers of the same name).
  static Result<std::shared_ptr<Segment>> Create(FileSystem* fs, const std::string& dir,
                                                 Offset base, int64_t index_interval_bytes);
  // Creates a new segment by renaming the retired segment file `recycled` to this segment's
  // name, without truncating it: the file keeps its old bytes (batches of offsets below the log
  // start offset, which recovery never accepts at this segment's expected offsets) and writes
  // overwrite them from position 0. The rename is durable only after SyncDir.
  static Result<std::shared_ptr<Segment>> CreateRecycled(FileSystem* fs, const std::string& dir,
                                                         Offset base, int64_t index_interval_bytes,
                                                         const std::string& recycled);
  // Opens an existing segment's .log; indexes are loaded with LoadIndexes or rebuilt by Recover.
  static Result<std::shared_ptr<Segment>> OpenExisting(FileSystem* fs, const std::string& dir,
                                                       Offset base, int64_t index_interval_bytes);

  // Scans the .log from position 0: each batch must parse, pass its CRC and have base offset ==
  // the expected next offset. Stops at the first batch that does not; truncates the file there
  // and rewrites both indexes. `partition` names the log in the warning. Returns the end reason:
  // OK when the data ended cleanly (end of file or zero-filled space), else the corruption found.
  Status Recover(const std::string& partition);
  // Trusts the .log (clean shutdown) with `next_offset` as its end; loads both index files and
  // falls back to Recover when they are missing or inconsistent.
  Status LoadTrusted(const std::string& partition, Offset next_offset);

  // Appends whole batches (already validated, offsets assigned) at size().
  Status Write(std::string_view data, std::span<const BatchMeta> metas);
  // Zero-fills [max(prepared, size), limit) in place so later writes overwrite written space.
  // Returns the bytes added. Does not sync.
  Result<uint64_t> Preallocate(uint64_t limit);
  // Drops every byte from `position` (a batch boundary) on; `next_offset` becomes the end.
  Status TruncateAt(uint64_t position, Offset next_offset);
  // Shrinks the file to the real data (drops preallocated space) and records the final
  // time-index entry. Called when the segment stops being the active one and on close.
  Status Trim();
  Status Sync();              // fdatasync of the .log
  Status SyncIndexes();       // rewrites and syncs both index files
  Status RemoveFiles();       // the .log, then the index files
  Status RemoveIndexFiles();  // the index files only
  // Removes the index files and renames the .log to `to` (a pool file). The segment must no
  // longer be in the log; readers holding it keep reading the same inode.
  Status RetireTo(const std::string& to);

  // Position of the batch that contains `offset` (or the first batch after it), with that
  // batch's base offset; {size(), next_offset()} when `offset` >= next_offset().
  Status FindBatch(Offset offset, uint64_t* position, Offset* batch_base) const;
  // Whole batches from the one containing `from`, at least one, up to max_bytes, none with base
  // offset > max_offset. Appends them to *out; *next is the offset after the last one returned.
  Status Read(Offset from, size_t max_bytes, Offset max_offset, std::string* out,
              Offset* next) const;
  // The first record, in offset order, with offset >= min_offset and timestamp >= ts (see
  // Log::OffsetForTimestamp), with its timestamp; offset -1 when this segment has none. Starts
  // at the time index's entry below ts, skips batches by their header (maxTimestamp < ts, or
  // wholly below min_offset) and reads and decodes (decompressing) only the batches it must look
  // inside: one, unless a batch's maxTimestamp claims a record no record has. kCorruption naming
  // the segment and byte position when such a batch does not decode (CRC, records, codec).
  Result<TimestampOffset> OffsetForTimestamp(int64_t ts, Offset min_offset) const;
  // Calls `fn` with the base offset and partitionLeaderEpoch of every batch from the one
  // containing `from` to the end, reading only the 61-byte headers (one pread each).
  Status ScanEpochs(Offset from,
                    const std::function<void(Offset base, LeaderEpoch epoch)>& fn) const;

  // Calls `fn` with the whole 61-byte header of every batch from the one containing `from` to
  // the end (one pread each; no record data is read). For the producer-state replay.
  Status ScanHeaders(Offset from, const std::function<void(const batch::Header& h)>& fn) const;

  Offset base_offset() const { return base_; }
  Offset next_offset() const { return Offset(next_offset_.load(std::memory_order_acquire)); }
  uint64_t size() const { return size_.load(std::memory_order_acquire); }
  uint64_t prepared_end() const { return prepared_end_; }
  // Drops the page cache of [cache_dropped_, pos) once that is at least `step` bytes (or reaches
  // `pos` == the segment's end). Callers serialise (Log's cache_mu_); the bytes must be synced.
  void DropCacheBefore(uint64_t pos, uint64_t step);
  uint64_t cache_dropped() const { return cache_dropped_; }
  int64_t max_timestamp() const { return max_timestamp_.load(std::memory_order_acquire); }
  bool empty() const { return size() == 0; }
  const std::string& log_path() const { return log_path_; }

 private:
  Segment(FileSystem* fs, const std::string& dir, Offset base, int64_t index_interval_bytes);
  Status OpenFiles(bool create);
  void IndexBatch(const BatchMeta& m, uint64_t position);  // index_mu_ held
  Status ReadHeaderAt(uint64_t pos, struct HeaderView* h) const;
  // Decodes the batch at `pos` (`total_size` bytes) looking for the record OffsetForTimestamp
  // wants; offset -1 when the batch has none.
  Result<TimestampOffset> FindRecordInBatch(uint64_t pos, uint64_t total_size, int64_t ts,
                                            Offset min_offset) const;
  Status ReadSlow(Offset from, size_t max_bytes, Offset max_offset, std::string* out,
                  Offset* next) const;
  uint64_t LookupIndex(Offset offset) const;
  Status WriteIndexFiles();

  FileSystem* fs_;
  Offset base_;
  int64_t index_interval_bytes_;
  std::string log_path_, index_path_, timeindex_path_;
  std::unique_ptr<File> log_;

  std::atomic<uint64_t> size_{0};
  std::atomic<int64_t> next_offset_;
  std::atomic<int64_t> max_timestamp_{-1};
  uint64_t cache_dropped_ = 0;      // page cache dropped below here (under Log's cache_mu_)
  uint64_t prepared_end_ = 0;       // file size including zero-filled space; writer only
  uint64_t bytes_since_index_ = 0;  // writer only

  mutable std::mutex index_mu_;
  std::vector<std::pair<uint32_t, uint32_t>> offset_index_;  // (relative offset, position)
  std::vector<std::pair<int64_t, uint32_t>> time_index_;     // (max timestamp, relative offset)
};

}  // namespace rill::storage
