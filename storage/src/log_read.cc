// The read side of a Log: Read, OffsetForTimestamp (Kafka's ListOffsets by time; docs/STORAGE.md,
// time index) and SegmentFor. Any thread, concurrently with the writer and the flusher.
// Locks: only segments_mu_, shared, to copy segment pointers; the preads run without a lock and
// never wait for an append or an fsync (docs/ARCHITECTURE.md §9).

#include <algorithm>
#include <iterator>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "rill/storage/log.h"
#include "segment.h"

namespace rill::storage {

std::shared_ptr<Segment> Log::SegmentFor(Offset offset) const {
  std::shared_lock lock(segments_mu_);
  auto it = std::upper_bound(segments_.begin(), segments_.end(), offset,
                             [](Offset o, const auto& s) { return o < s->base_offset(); });
  if (it == segments_.begin()) return nullptr;
  return *std::prev(it);
}

Result<ReadResult> Log::Read(Offset from, size_t max_bytes, Offset max_offset) const {
  ReadResult r;
  r.log_start_offset = log_start_offset();
  r.log_end_offset = log_end_offset();
  auto out_of_range = [&] {
    return Status::OutOfRange("partition " + name_ + ": offset " + std::to_string(from.value()) +
                              " outside [" + std::to_string(r.log_start_offset.value()) + ", " +
                              std::to_string(r.log_end_offset.value()) + "]");
  };
  if (from < r.log_start_offset || from > r.log_end_offset) return out_of_range();
  r.next_offset = from;
  while (from < r.log_end_offset) {
    auto seg = SegmentFor(from);
    if (seg == nullptr) {
      // Retention removed the segment holding `from` after the check above (nothing was read
      // yet: a later segment is only visited after an empty one): `from` is below the start now.
      r.log_start_offset = log_start_offset();
      return out_of_range();
    }
    Offset next;
    RILL_RETURN_IF_ERROR(seg->Read(from, max_bytes, max_offset, &r.data, &next));
    if (!r.data.empty()) {
      r.next_offset = next;
      break;
    }
    // Nothing at `from` in this segment: continue in the next one, if any.
    Offset seg_end = seg->next_offset();
    if (seg_end <= from || next > max_offset) break;
    from = seg_end;
  }
  return r;
}

Result<TimestampOffset> Log::OffsetForTimestamp(int64_t timestamp_ms) const {
  std::vector<std::shared_ptr<Segment>> segs;
  {
    std::shared_lock lock(segments_mu_);
    segs = segments_;
  }
  // Records below the log start (segments retention is removing, a truncation below the start)
  // are never answers.
  const Offset start = log_start_offset();
  for (const auto& s : segs) {
    if (s->next_offset() <= start) continue;
    auto found = s->OffsetForTimestamp(timestamp_ms, start);
    if (!found.ok()) {
      return Status(found.status().code(), "partition " + name_ + ": lookup of timestamp " +
                                               std::to_string(timestamp_ms) + ": " +
                                               found.status().message());
    }
    if (found->offset.value() >= 0) return *found;
  }
  return Status::NotFound("partition " + name_ +
                          ": no record with timestamp >= " + std::to_string(timestamp_ms));
}

}  // namespace rill::storage
