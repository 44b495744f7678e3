// The leader-epoch history of a Log (rill/storage/leader_epoch.h has the rule and the file
// format): loading and repairing it in Open, writing its checkpoint file, and
// publishing it to readers. Append, TruncateTo and ApplyRetention change it (log_append.cc,
// log_retention.cc) through WriteEpochCheckpoint and PublishEpochHistory.
//
// Locks: epoch_mu_ is a leaf: taken (briefly) under write_mu_ by the writer to change epochs_,
// and alone by readers (epoch_history). LoadEpochHistory runs inside Open, before other threads.
//
// Why the file is always right after a crash. The file is rewritten, durably (temp, fsync,
// rename, fsync of the directory), in three cases, each under write_mu_ so no append slips by:
//   - An append that brings a new epoch writes the file *before* the batches. So a batch that
//     starts an epoch is never on disk without its entry; a crash between the file and the
//     batches (or a lost unsynced batch) leaves an entry at or beyond the recovered log end,
//     which Open drops. Batches that start no entry never touch the file.
//   - A truncation writes the file before it returns, so an entry for removed offsets can never
//     be mistaken for offsets written again later. A crash before that write leaves entries at or
//     beyond the recovered end (dropped at Open). A failed write fails the log.
//   - Retention writes it after the log start moved; a crash or failure there leaves entries
//     below the log start, which Open trims the same way. (Not a failure of the log.)
// Open therefore: (1) trims the loaded history to [log start, log end); (2) checks, with one
// header read, that the last batch's epoch is not above the latest entry (true by the argument
// above; a bit flip in that field, which the batch CRC does not cover, or a file from elsewhere
// breaks it) and otherwise scans headers from the latest entry's start; (3) rebuilds the history
// from the batch headers of every segment when the file is missing or damaged. Any change is
// written back before Open returns, i.e. before any append.

#include <spdlog/spdlog.h>

#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "rill/storage/leader_epoch.h"
#include "rill/storage/log.h"
#include "segment.h"

namespace rill::storage {

namespace {
constexpr std::string_view kEpochCheckpointFile = "leader-epoch-checkpoint";
}  // namespace

std::vector<EpochEntry> Log::epoch_history() const {
  std::lock_guard lock(epoch_mu_);
  return epochs_;
}

void Log::PublishEpochHistory(std::vector<EpochEntry> history) {
  std::lock_guard lock(epoch_mu_);
  epochs_ = std::move(history);
  latest_epoch_.store(epochs_.empty() ? kNoEpoch.value() : epochs_.back().epoch.value(),
                      std::memory_order_release);
}

Status Log::WriteEpochCheckpoint(const std::vector<EpochEntry>& history) {
  return WriteFileAtomically(fs_, JoinPath(dir_, kEpochCheckpointFile),
                             EncodeEpochCheckpoint(history));
}

Status Log::LoadEpochHistory() {
  const Offset start = log_start_offset();
  const Offset end = log_end_offset();
  std::vector<std::shared_ptr<Segment>> segs;
  {
    std::shared_lock lock(segments_mu_);
    segs = segments_;
  }
  // Appends, to `history`, an entry for each batch from `from` on whose epoch rises above it.
  auto scan = [&](Offset from, std::vector<EpochEntry>* history) -> Status {
    for (const auto& s : segs) {
      if (s->next_offset() <= from) continue;
      RILL_RETURN_IF_ERROR(s->ScanEpochs(from, [&](Offset base, LeaderEpoch epoch) {
        if (history->empty() || epoch > history->back().epoch) {
          if (epoch > kNoEpoch) history->push_back({epoch, base});
        }
      }));
    }
    return Status::OK();
  };

  const std::string path = JoinPath(dir_, kEpochCheckpointFile);
  bool have_file = false;
  Result<std::vector<EpochEntry>> loaded = Status::NotFound("no leader-epoch-checkpoint");
  auto text = ReadWholeFile(fs_, path);
  if (text.ok()) {
    have_file = true;
    loaded = DecodeEpochCheckpoint(*text);
  } else {
    loaded = text.status();
  }
  std::vector<EpochEntry> history;
  if (loaded.ok()) {
    history = *loaded;
    TrimEpochHistoryBelow(&history, start);
    TruncateEpochHistory(&history, end);
    if (end > start) {
      // One header read: the last batch must not carry an epoch above the latest entry.
      LeaderEpoch last = kNoEpoch;
      RILL_RETURN_IF_ERROR(
          segs.back()->empty()
              ? segs[segs.size() - 2]->ScanEpochs(end - 1, [&](Offset, LeaderEpoch e) { last = e; })
              : segs.back()->ScanEpochs(end - 1, [&](Offset, LeaderEpoch e) { last = e; }));
      const LeaderEpoch latest = history.empty() ? kNoEpoch : history.back().epoch;
      if (last > latest) {
        Offset from = history.empty() ? start : history.back().start_offset;
        spdlog::warn(
            "partition {}: last batch has leader epoch {} but the epoch checkpoint ends at {}; "
            "scanning batch headers from offset {}",
            name_, last.value(), latest.value(), from.value());
        // Rescan the latest entry's range from its start, re-deriving that entry too.
        if (!history.empty()) history.pop_back();
        RILL_RETURN_IF_ERROR(scan(from, &history));
      }
    }
  } else {
    if (!loaded.status().IsNotFound()) {
      spdlog::warn("partition {}: {}; rebuilding it from the batch headers", name_,
                   loaded.status().ToString());
    }
    if (end > start) RILL_RETURN_IF_ERROR(scan(start, &history));
  }
  const bool changed = loaded.ok() ? history != *loaded : (have_file || !history.empty());
  if (changed) RILL_RETURN_IF_ERROR(WriteEpochCheckpoint(history));
  PublishEpochHistory(std::move(history));
  return Status::OK();
}

}  // namespace rill::storage
