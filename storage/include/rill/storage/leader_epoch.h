#pragma once

// The leader-epoch history of a partition log (Kafka's leader-epoch-checkpoint): for each leader
// epoch that wrote into the log, the offset of its first batch. Log keeps it (Log::epoch_history)
// and persists it in `<log dir>/leader-epoch-checkpoint`; replication uses it to find where a
// follower's log diverges from the leader's.
//
// Rule (the same on append, on rebuild from the segments and in the tests' models): an entry
// {e, b} is added for a batch with base offset b whose partitionLeaderEpoch e is greater than the
// latest entry's epoch. So entries are strictly increasing in both epoch and start offset, and a
// batch with an epoch at or below the latest adds nothing.
//
// File format (text, sealed with a CRC like the log's recovery-checkpoint and recovery-point),
// replaced atomically (temp file, fdatasync, rename, fsync of the directory):
//   rill-leader-epoch-checkpoint 1
//   count <n>
//   <epoch> <start offset>        n lines, ascending
//   crc <CRC32C of every byte before this line>

#include <string>
#include <string_view>
#include <vector>

#include "rill/proto/status.h"
#include "rill/proto/types.h"

namespace rill::storage {

struct EpochEntry {
  LeaderEpoch epoch;    // the leader epoch
  Offset start_offset;  // base offset of the first batch written in that epoch

  friend bool operator==(const EpochEntry&, const EpochEntry&) = default;
};

// The epoch a log reports when its history is empty (Kafka's "no epoch").
inline constexpr LeaderEpoch kNoEpoch = LeaderEpoch(-1);

// The file's contents for `history`.
std::string EncodeEpochCheckpoint(const std::vector<EpochEntry>& history);
// Parses a file's contents: kCorruption (naming the defect) for a bad crc, magic line, count, or
// entries that are not strictly increasing in epoch and start offset.
Result<std::vector<EpochEntry>> DecodeEpochCheckpoint(std::string_view text);

// Drops the entries that start at or after `end` (a truncation to `end`). True if any went.
bool TruncateEpochHistory(std::vector<EpochEntry>* history, Offset end);
// Drops the entries wholly below `start` (a new log start offset) and moves the start of the one
// covering `start` up to it. True if anything changed.
bool TrimEpochHistoryBelow(std::vector<EpochEntry>* history, Offset start);

}  // namespace rill::storage
