#include "segment.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "rill/proto/batch_header.h"
#include "rill/proto/endian.h"
#include "rill/proto/record_batch.h"

namespace rill::storage {

namespace {
constexpr size_t kOffsetEntry = 8;
constexpr size_t kTimeEntry = 12;
constexpr size_t kScanChunk = 1 << 20;

}  // namespace

const std::string& Zeros() {
  static const std::string* z = new std::string(1 << 20, '\0');
  return *z;
}

// The header fields a lookup needs, read with one pread.
struct HeaderView {
  int64_t base_offset;
  int64_t last_offset;
  int64_t max_timestamp;
  uint64_t total_size;
  int32_t leader_epoch;
};

std::string SegmentFileName(Offset base, std::string_view ext) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%020" PRId64, base.value());
  return std::string(buf) + std::string(ext);
}

Segment::Segment(FileSystem* fs, const std::string& dir, Offset base, int64_t index_interval_bytes)
    : fs_(fs),
      base_(base),
      index_interval_bytes_(index_interval_bytes),
      log_path_(JoinPath(dir, SegmentFileName(base, ".log"))),
      index_path_(JoinPath(dir, SegmentFileName(base, ".index"))),
      timeindex_path_(JoinPath(dir, SegmentFileName(base, ".timeindex"))),
      next_offset_(base.value()) {}

Result<std::shared_ptr<Segment>> Segment::Create(FileSystem* fs, const std::string& dir,
                                                 Offset base, int64_t index_interval_bytes) {
  std::shared_ptr<Segment> s(new Segment(fs, dir, base, index_interval_bytes));
  RILL_ASSIGN_OR_RETURN(s->log_, fs->Open(s->log_path_, /*create=*/true, /*truncate=*/true));
  RILL_RETURN_IF_ERROR(s->WriteIndexFiles());
  return s;
}

Result<std::shared_ptr<Segment>> Segment::CreateRecycled(FileSystem* fs, const std::string& dir,
                                                         Offset base, int64_t index_interval_bytes,
                                                         const std::string& recycled) {
  std::shared_ptr<Segment> s(new Segment(fs, dir, base, index_interval_bytes));
  RILL_RETURN_IF_ERROR(fs->Rename(recycled, s->log_path_));
  RILL_ASSIGN_OR_RETURN(s->log_, fs->Open(s->log_path_, /*create=*/false));
  RILL_ASSIGN_OR_RETURN(uint64_t size, s->log_->Size());
  s->prepared_end_ = size;  // old bytes up to here: Trim drops them when the segment closes
  RILL_RETURN_IF_ERROR(s->WriteIndexFiles());
  return s;
}

Result<std::shared_ptr<Segment>> Segment::OpenExisting(FileSystem* fs, const std::string& dir,
                                                       Offset base, int64_t index_interval_bytes) {
  std::shared_ptr<Segment> s(new Segment(fs, dir, base, index_interval_bytes));
  RILL_ASSIGN_OR_RETURN(s->log_, fs->Open(s->log_path_, /*create=*/false));
  RILL_ASSIGN_OR_RETURN(uint64_t size, s->log_->Size());
  s->prepared_end_ = size;
  return s;
}

void Segment::IndexBatch(const BatchMeta& m, uint64_t position) {
  if (position > 0 && bytes_since_index_ >= static_cast<uint64_t>(index_interval_bytes_)) {
    auto rel = static_cast<uint32_t>(m.base_offset - base_.value());
    offset_index_.emplace_back(rel, static_cast<uint32_t>(position));
    if (time_index_.empty() || m.max_timestamp > time_index_.back().first) {
      int64_t ts = std::max(m.max_timestamp, max_timestamp_.load(std::memory_order_relaxed));
      time_index_.emplace_back(ts, rel);
    }
    bytes_since_index_ = 0;
  }
  bytes_since_index_ += m.size;
  if (m.max_timestamp > max_timestamp_.load(std::memory_order_relaxed)) {
    max_timestamp_.store(m.max_timestamp, std::memory_order_release);
  }
}

Status Segment::Recover(const std::string& partition) {
  {
    std::lock_guard lock(index_mu_);
    offset_index_.clear();
    time_index_.clear();
  }
  bytes_since_index_ = 0;
  max_timestamp_.store(-1);
  RILL_ASSIGN_OR_RETURN(uint64_t file_size, log_->Size());
  uint64_t pos = 0;
  int64_t expected = base_.value();
  std::string buf;
  Status end;
  bool stale = false;
  while (pos < file_size) {
    // Load a chunk that starts at `pos` and holds at least the next whole batch.
    size_t want = static_cast<size_t>(std::min<uint64_t>(kScanChunk, file_size - pos));
    buf.resize(want);
    RILL_ASSIGN_OR_RETURN(size_t got, log_->ReadAt(pos, buf.data(), want));
    buf.resize(got);
    if (got >= batch::kLogOverhead) {
      auto len = static_cast<int32_t>(be::Load32(buf.data() + batch::kLengthPos));
      uint64_t total = batch::kLogOverhead + static_cast<uint64_t>(std::max(len, 0));
      if (len > 0 && len <= batch::kMaxBatchSize && total > got && pos + total <= file_size) {
        buf.resize(total);
        RILL_ASSIGN_OR_RETURN(got, log_->ReadAt(pos, buf.data(), total));
        buf.resize(got);
      }
    }
    std::string_view view(buf);
    size_t off = 0;
    bool stop = false;
    while (off < view.size()) {
      std::string_view rest = view.substr(off);
      if (rest.size() >= batch::kLogOverhead &&
          std::all_of(rest.begin(), rest.begin() + batch::kLogOverhead,
                      [](char c) { return c == 0; })) {
        stop = true;  // zero-filled (preallocated) space: the clean end of the data
        break;
      }
      auto h = batch::ParseHeader(rest);
      if (!h.ok()) {
        if (pos + off + rest.size() < file_size && rest.size() < batch::kMaxBatchSize &&
            h.status().message().find("truncated") != std::string::npos) {
          break;  // the batch continues in the next chunk
        }
        end = h.status();
        stop = true;
        break;
      }
      std::string_view b = rest.substr(0, h->total_size());
      if (!batch::CrcMatches(b)) {
        end = Status::Corruption("batch CRC32C mismatch");
        stop = true;
        break;
      }
      if (h->base_offset < base_.value()) {
        // A whole batch from before this segment: the old contents of a recycled file (every
        // offset in it is below the log start offset). The clean end of the data.
        stale = true;
        stop = true;
        break;
      }
      if (h->base_offset != expected) {
        end = Status::Corruption("batch base offset " + std::to_string(h->base_offset) +
                                 ", expected " + std::to_string(expected));
        stop = true;
        break;
      }
      BatchMeta m{h->base_offset, h->last_offset(), h->max_timestamp,
                  static_cast<uint32_t>(b.size())};
      {
        std::lock_guard lock(index_mu_);
        IndexBatch(m, pos + off);
      }
      expected = h->last_offset() + 1;
      off += b.size();
    }
    pos += off;
    if (stop || off == 0) break;
  }
  if (!end.ok()) {
    spdlog::warn(
        "partition {}: corrupt or torn batch in segment {} at byte position {}: {}; "
        "truncating the log there ({} bytes dropped)",
        partition, log_path_, pos, end.message(), file_size - pos);
  } else if (stale) {
    spdlog::info("partition {}: segment {} ends at byte position {} (recycled bytes after it)",
                 partition, log_path_, pos);
  } else if (pos < file_size) {
    bool zeros = true;
    std::string tail(static_cast<size_t>(std::min<uint64_t>(file_size - pos, 64)), '\0');
    RILL_ASSIGN_OR_RETURN(size_t got, log_->ReadAt(pos, tail.data(), tail.size()));
    tail.resize(got);
    zeros = std::all_of(tail.begin(), tail.end(), [](char c) { return c == 0; });
    if (!zeros) {
      end = Status::Corruption("torn batch");
      spdlog::warn(
          "partition {}: torn batch in segment {} at byte position {}; truncating the "
          "log there ({} bytes dropped)",
          partition, log_path_, pos, file_size - pos);
    }
  }
  if (pos < file_size) {
    // Durably: new batches will reuse these offsets at these positions.
    RILL_RETURN_IF_ERROR(log_->Truncate(pos));
    RILL_RETURN_IF_ERROR(log_->Sync());
  }
  prepared_end_ = pos;
  size_.store(pos, std::memory_order_release);
  next_offset_.store(expected, std::memory_order_release);
  RILL_RETURN_IF_ERROR(WriteIndexFiles());
  return end;
}

Status Segment::LoadTrusted(const std::string& partition, Offset next_offset) {
  RILL_ASSIGN_OR_RETURN(uint64_t size, log_->Size());
  size_.store(size, std::memory_order_release);
  prepared_end_ = size;
  next_offset_.store(next_offset.value(), std::memory_order_release);
  auto idx = ReadWholeFile(fs_, index_path_);
  auto tidx = ReadWholeFile(fs_, timeindex_path_);
  bool ok =
      idx.ok() && tidx.ok() && idx->size() % kOffsetEntry == 0 && tidx->size() % kTimeEntry == 0;
  std::vector<std::pair<uint32_t, uint32_t>> oi;
  std::vector<std::pair<int64_t, uint32_t>> ti;
  if (ok) {
    uint32_t prev_rel = 0, prev_pos = 0;
    for (size_t i = 0; ok && i < idx->size(); i += kOffsetEntry) {
      uint32_t rel = be::Load32(idx->data() + i), p = be::Load32(idx->data() + i + 4);
      ok = (i == 0 || (rel > prev_rel && p > prev_pos)) && p < size &&
           base_.value() + rel < next_offset.value();
      oi.emplace_back(rel, p);
      prev_rel = rel;
      prev_pos = p;
    }
    int64_t prev_ts = INT64_MIN;
    for (size_t i = 0; ok && i < tidx->size(); i += kTimeEntry) {
      auto ts = static_cast<int64_t>(be::Load64(tidx->data() + i));
      uint32_t rel = be::Load32(tidx->data() + i + 8);
      ok = ts >= prev_ts && base_.value() + rel < next_offset.value();
      ti.emplace_back(ts, rel);
      prev_ts = ts;
    }
  }
  if (ok && !oi.empty()) {
    // Spot check: the last entry must point at the batch it names.
    HeaderView h;
    ok =
        ReadHeaderAt(oi.back().second, &h).ok() && h.base_offset == base_.value() + oi.back().first;
  }
  if (ok && size > 0 && ti.empty()) ok = false;  // a closed non-empty segment has a final entry
  if (!ok) {
    spdlog::warn("partition {}: index of segment {} missing or inconsistent; rebuilding it",
                 partition, log_path_);
    Status st = Recover(partition);
    if (!st.ok() || next_offset_.load() != next_offset.value()) {
      return Status::Corruption("segment " + log_path_ + " disagrees with the checkpoint");
    }
    return Status::OK();
  }
  std::lock_guard lock(index_mu_);
  offset_index_ = std::move(oi);
  time_index_ = std::move(ti);
  max_timestamp_.store(time_index_.empty() ? -1 : time_index_.back().first);
  return Status::OK();
}

Status Segment::Write(std::string_view data, std::span<const BatchMeta> metas) {
  uint64_t pos = size_.load(std::memory_order_relaxed);
  RILL_RETURN_IF_ERROR(log_->WriteAt(pos, data));
  {
    std::lock_guard lock(index_mu_);
    uint64_t p = pos;
    for (const auto& m : metas) {
      IndexBatch(m, p);
      p += m.size;
    }
  }
  prepared_end_ = std::max(prepared_end_, pos + data.size());
  next_offset_.store(metas.back().last_offset + 1, std::memory_order_release);
  size_.store(pos + data.size(), std::memory_order_release);
  return Status::OK();
}

Result<uint64_t> Segment::Preallocate(uint64_t limit) {
  uint64_t from = std::max(prepared_end_, size());
  if (from >= limit) return uint64_t{0};
  uint64_t pos = from;
  while (pos < limit) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(Zeros().size(), limit - pos));
    RILL_RETURN_IF_ERROR(log_->WriteAt(pos, std::string_view(Zeros()).substr(0, n)));
    pos += n;
  }
  prepared_end_ = limit;
  return limit - from;
}

Status Segment::TruncateAt(uint64_t position, Offset next_offset) {
  RILL_RETURN_IF_ERROR(log_->Truncate(position));
  {
    std::lock_guard lock(index_mu_);
    uint32_t rel_end = static_cast<uint32_t>(next_offset.value() - base_.value());
    std::erase_if(offset_index_, [&](const auto& e) { return e.second >= position; });
    std::erase_if(time_index_, [&](const auto& e) { return e.second >= rel_end; });
    // The largest timestamp of the batches that remain is unknown without a scan (the time
    // index is sparse). Keep the old value, an upper bound: lookups by timestamp stay correct
    // (they scan and find nothing beyond the real max) and retention keeps the segment a little
    // longer. Lowering it to the last entry could hide remaining batches from lookups.
    if (position == 0) max_timestamp_.store(-1);
  }
  bytes_since_index_ = 0;
  prepared_end_ = position;
  next_offset_.store(next_offset.value(), std::memory_order_release);
  size_.store(position, std::memory_order_release);
  RILL_RETURN_IF_ERROR(log_->Sync());
  return WriteIndexFiles();
}

Status Segment::Trim() {
  uint64_t size = this->size();
  if (prepared_end_ != size) {
    RILL_RETURN_IF_ERROR(log_->Truncate(size));
    prepared_end_ = size;
  }
  std::lock_guard lock(index_mu_);
  int64_t ts = max_timestamp_.load();
  if (size > 0 && (time_index_.empty() || ts > time_index_.back().first)) {
    // Final entry: the segment's largest timestamp, at its last offset.
    time_index_.emplace_back(std::max<int64_t>(ts, -1),
                             static_cast<uint32_t>(next_offset().value() - 1 - base_.value()));
  }
  return Status::OK();
}

Status Segment::Sync() { return log_->Sync(); }

void Segment::DropCacheBefore(uint64_t pos, uint64_t step) {
  if (pos <= cache_dropped_) return;
  if (pos - cache_dropped_ < step && pos < size()) return;
  log_->DropCache(cache_dropped_, pos - cache_dropped_);
  cache_dropped_ = pos;
}

Status Segment::WriteIndexFiles() {
  std::string oi, ti;
  {
    std::lock_guard lock(index_mu_);
    oi.resize(offset_index_.size() * kOffsetEntry);
    for (size_t i = 0; i < offset_index_.size(); ++i) {
      be::Store32(oi.data() + i * kOffsetEntry, offset_index_[i].first);
      be::Store32(oi.data() + i * kOffsetEntry + 4, offset_index_[i].second);
    }
    ti.resize(time_index_.size() * kTimeEntry);
    for (size_t i = 0; i < time_index_.size(); ++i) {
      be::Store64(ti.data() + i * kTimeEntry, static_cast<uint64_t>(time_index_[i].first));
      be::Store32(ti.data() + i * kTimeEntry + 8, time_index_[i].second);
    }
  }
  for (auto [path, bytes] : {std::pair{&index_path_, &oi}, std::pair{&timeindex_path_, &ti}}) {
    RILL_ASSIGN_OR_RETURN(auto f, fs_->Open(*path, /*create=*/true, /*truncate=*/true));
    RILL_RETURN_IF_ERROR(f->WriteAt(0, *bytes));
  }
  return Status::OK();
}

Status Segment::SyncIndexes() {
  RILL_RETURN_IF_ERROR(WriteIndexFiles());
  for (auto* path : {&index_path_, &timeindex_path_}) {
    RILL_ASSIGN_OR_RETURN(auto f, fs_->Open(*path, /*create=*/false));
    RILL_RETURN_IF_ERROR(f->Sync());
  }
  return Status::OK();
}

Status Segment::RemoveFiles() {
  Status st = fs_->Remove(log_path_);
  if (!st.ok() && !st.IsNotFound()) return st;
  return RemoveIndexFiles();
}

Status Segment::RemoveIndexFiles() {
  for (auto* path : {&index_path_, &timeindex_path_}) {
    Status st = fs_->Remove(*path);
    if (!st.ok() && !st.IsNotFound()) return st;
  }
  return Status::OK();
}

Status Segment::RetireTo(const std::string& to) {
  RILL_RETURN_IF_ERROR(RemoveIndexFiles());
  return fs_->Rename(log_path_, to);
}

Status Segment::ReadHeaderAt(uint64_t pos, HeaderView* h) const {
  char buf[batch::kHeaderSize];
  RILL_ASSIGN_OR_RETURN(size_t n, log_->ReadAt(pos, buf, sizeof buf));
  if (n < sizeof buf) {
    return Status::Corruption("short batch header in " + log_path_ + " at " + std::to_string(pos));
  }
  batch::Header hd = batch::DecodeHeader(buf);
  if (hd.batch_length < static_cast<int32_t>(batch::kHeaderSize - batch::kLogOverhead)) {
    return Status::Corruption("bad batch length in " + log_path_ + " at " + std::to_string(pos));
  }
  h->base_offset = hd.base_offset;
  h->last_offset = hd.last_offset();
  h->max_timestamp = hd.max_timestamp;
  h->total_size = hd.total_size();
  h->leader_epoch = hd.partition_leader_epoch;
  return Status::OK();
}

Status Segment::ScanEpochs(Offset from,
                           const std::function<void(Offset base, LeaderEpoch epoch)>& fn) const {
  uint64_t pos;
  Offset base;
  RILL_RETURN_IF_ERROR(FindBatch(from, &pos, &base));
  const uint64_t size = this->size();
  while (pos < size) {
    HeaderView h;
    RILL_RETURN_IF_ERROR(ReadHeaderAt(pos, &h));
    fn(Offset(h.base_offset), LeaderEpoch(h.leader_epoch));
    pos += h.total_size;
  }
  return Status::OK();
}

Status Segment::ScanHeaders(Offset from,
                            const std::function<void(const batch::Header& h)>& fn) const {
  uint64_t pos;
  Offset base;
  RILL_RETURN_IF_ERROR(FindBatch(from, &pos, &base));
  const uint64_t size = this->size();
  char buf[batch::kHeaderSize];
  while (pos < size) {
    RILL_ASSIGN_OR_RETURN(size_t n, log_->ReadAt(pos, buf, sizeof buf));
    if (n < sizeof buf) {
      return Status::Corruption("short batch header in " + log_path_ + " at " +
                                std::to_string(pos));
    }
    const batch::Header h = batch::DecodeHeader(buf);
    if (h.batch_length < static_cast<int32_t>(batch::kHeaderSize - batch::kLogOverhead)) {
      return Status::Corruption("bad batch length in " + log_path_ + " at " + std::to_string(pos));
    }
    fn(h);
    pos += h.total_size();
  }
  return Status::OK();
}

uint64_t Segment::LookupIndex(Offset offset) const {
  std::lock_guard lock(index_mu_);
  auto rel = static_cast<uint64_t>(offset.value() - base_.value());
  auto it = std::upper_bound(offset_index_.begin(), offset_index_.end(), rel,
                             [](uint64_t r, const auto& e) { return r < e.first; });
  return it == offset_index_.begin() ? 0 : std::prev(it)->second;
}

Status Segment::FindBatch(Offset offset, uint64_t* position, Offset* batch_base) const {
  uint64_t size = this->size();
  if (offset >= next_offset()) {
    *position = size;
    *batch_base = next_offset();
    return Status::OK();
  }
  uint64_t pos = offset <= base_ ? 0 : LookupIndex(offset);
  while (pos < size) {
    HeaderView h;
    RILL_RETURN_IF_ERROR(ReadHeaderAt(pos, &h));
    if (h.last_offset >= offset.value()) {
      *position = pos;
      *batch_base = Offset(h.base_offset);
      return Status::OK();
    }
    pos += h.total_size;
  }
  *position = size;
  *batch_base = next_offset();
  return Status::OK();
}

Status Segment::Read(Offset from, size_t max_bytes, Offset max_offset, std::string* out,
                     Offset* next) const {
  // Fast path: one pread from the index entry at or before `from`, covering the batches to
  // skip (at most about index_interval_bytes) plus max_bytes; the slow path handles the rest.
  uint64_t size = this->size();
  if (from >= next_offset()) {
    *next = next_offset();
    return Status::OK();
  }
  uint64_t pos = from <= base_ ? 0 : LookupIndex(from);
  if (pos >= size) return ReadSlow(from, max_bytes, max_offset, out, next);
  size_t want = static_cast<size_t>(std::min<uint64_t>(
      std::max<size_t>(max_bytes, 1) + static_cast<size_t>(index_interval_bytes_), size - pos));
  size_t start = out->size();
  out->resize(start + want);
  RILL_ASSIGN_OR_RETURN(size_t got, log_->ReadAt(pos, out->data() + start, want));
  const char* buf = out->data() + start;
  size_t skip = 0;
  bool found = false;
  while (got - skip >= batch::kHeaderSize) {
    batch::Header h = batch::DecodeHeader(buf + skip);
    if (h.batch_length < static_cast<int32_t>(batch::kHeaderSize - batch::kLogOverhead)) break;
    if (h.last_offset() >= from.value()) {
      found = true;
      break;
    }
    skip += h.total_size();
    if (skip > got) break;
  }
  if (!found) {
    out->resize(start);
    return ReadSlow(from, max_bytes, max_offset, out, next);
  }
  if (Offset(batch::DecodeHeader(buf + skip).base_offset) > max_offset) {
    out->resize(start);
    *next = Offset(batch::DecodeHeader(buf + skip).base_offset);
    return Status::OK();
  }
  size_t used = 0;
  while (got - skip - used >= batch::kHeaderSize) {
    batch::Header h = batch::DecodeHeader(buf + skip + used);
    if (h.batch_length < static_cast<int32_t>(batch::kHeaderSize - batch::kLogOverhead)) {
      return Status::Corruption("bad batch length in " + log_path_ + " at " +
                                std::to_string(pos + skip + used));
    }
    if (used > 0 && (Offset(h.base_offset) > max_offset || used + h.total_size() > max_bytes)) {
      break;
    }
    if (h.total_size() > got - skip - used) break;
    used += h.total_size();
    *next = Offset(h.last_offset() + 1);
  }
  if (used == 0) {
    // The first batch does not fit in what was read: the slow path reads it whole.
    out->resize(start);
    return ReadSlow(from, max_bytes, max_offset, out, next);
  }
  if (skip > 0) std::memmove(out->data() + start, out->data() + start + skip, used);
  out->resize(start + used);
  return Status::OK();
}

Status Segment::ReadSlow(Offset from, size_t max_bytes, Offset max_offset, std::string* out,
                         Offset* next) const {
  // Snapshot the end before looking: bytes below it are whole, published batches.
  uint64_t size = this->size();
  uint64_t pos;
  Offset base;
  RILL_RETURN_IF_ERROR(FindBatch(from, &pos, &base));
  *next = base;
  if (pos >= size || base > max_offset) return Status::OK();
  size_t want = static_cast<size_t>(std::min<uint64_t>(std::max<size_t>(max_bytes, 1), size - pos));
  size_t start = out->size();
  out->resize(start + want);
  RILL_ASSIGN_OR_RETURN(size_t got, log_->ReadAt(pos, out->data() + start, want));
  // Keep whole batches only; at least the first one, even if it exceeds max_bytes.
  size_t used = 0;
  while (true) {
    const char* p = out->data() + start + used;
    size_t avail = got - used;
    if (avail < batch::kHeaderSize) {
      if (used > 0) break;
      HeaderView h;
      RILL_RETURN_IF_ERROR(ReadHeaderAt(pos, &h));
      out->resize(start + h.total_size);
      RILL_ASSIGN_OR_RETURN(got, log_->ReadAt(pos, out->data() + start, h.total_size));
      if (got < h.total_size) return Status::Corruption("short batch in " + log_path_);
      used = h.total_size;
      *next = Offset(h.last_offset + 1);
      break;
    }
    batch::Header h = batch::DecodeHeader(p);
    if (h.batch_length < static_cast<int32_t>(batch::kHeaderSize - batch::kLogOverhead)) {
      return Status::Corruption("bad batch length in " + log_path_ + " at " +
                                std::to_string(pos + used));
    }
    if (used > 0 && Offset(h.base_offset) > max_offset) break;
    if (h.total_size() > avail) {
      if (used > 0) break;
      out->resize(start + h.total_size());
      RILL_ASSIGN_OR_RETURN(got, log_->ReadAt(pos, out->data() + start, h.total_size()));
      if (got < h.total_size()) return Status::Corruption("short batch in " + log_path_);
      used = h.total_size();
      *next = Offset(h.last_offset() + 1);
      break;
    }
    used += h.total_size();
    *next = Offset(h.last_offset() + 1);
  }
  out->resize(start + used);
  return Status::OK();
}

Result<TimestampOffset> Segment::OffsetForTimestamp(int64_t ts, Offset min_offset) const {
  const TimestampOffset none{Offset(-1), -1};
  if (max_timestamp() < ts || min_offset >= next_offset()) return none;
  Offset start = base_;
  {
    std::lock_guard lock(index_mu_);
    // Entries hold the running max: the last entry below ts bounds where the answer can start.
    auto it = std::lower_bound(time_index_.begin(), time_index_.end(), ts,
                               [](const auto& e, int64_t t) { return e.first < t; });
    if (it != time_index_.begin()) start = base_ + std::prev(it)->second;
  }
  start = std::max(start, min_offset);
  uint64_t size = this->size();
  uint64_t pos;
  Offset b;
  RILL_RETURN_IF_ERROR(FindBatch(start, &pos, &b));
  while (pos < size) {
    HeaderView h;
    RILL_RETURN_IF_ERROR(ReadHeaderAt(pos, &h));
    if (h.total_size > size - pos) {
      return Status::Corruption("batch at byte position " + std::to_string(pos) + " of " +
                                log_path_ + " runs past the segment's end");
    }
    if (h.max_timestamp >= ts && h.last_offset >= min_offset.value()) {
      RILL_ASSIGN_OR_RETURN(TimestampOffset found,
                            FindRecordInBatch(pos, h.total_size, ts, min_offset));
      if (found.offset.value() >= 0) return found;
      // The header's maxTimestamp promised a record no record has (a producer's lie): go on.
    }
    pos += h.total_size;
  }
  return none;
}

Result<TimestampOffset> Segment::FindRecordInBatch(uint64_t pos, uint64_t total_size, int64_t ts,
                                                   Offset min_offset) const {
  auto corrupt = [&](const Status& st) {
    return Status(st.code(), "batch at byte position " + std::to_string(pos) + " of " + log_path_ +
                                 " does not decode: " + st.message());
  };
  std::string bytes(static_cast<size_t>(total_size), '\0');
  RILL_ASSIGN_OR_RETURN(size_t got, log_->ReadAt(pos, bytes.data(), bytes.size()));
  if (got < bytes.size()) return corrupt(Status::Corruption("short read"));
  auto reader = batch::BatchReader::Open(bytes);
  if (!reader.ok()) return corrupt(reader.status());
  batch::RecordView rec;
  while (true) {
    auto more = reader->Next(&rec);
    if (!more.ok()) return corrupt(more.status());
    if (!*more) break;
    if (rec.timestamp_ms >= ts && rec.offset >= min_offset.value()) {
      return TimestampOffset{Offset(rec.offset), rec.timestamp_ms};
    }
  }
  return TimestampOffset{Offset(-1), -1};
}

}  // namespace rill::storage
