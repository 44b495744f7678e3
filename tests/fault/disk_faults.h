#pragma once

// Damage done to a stopped broker's data dir by the corrupt-tail and lost-disk faults
// (docs/STORAGE.md has the layout: <data_dir>/<topic>-<partition>/<base offset>.log, RecordBatch
// v2 batches back to back, possibly followed by zero-filled preallocated space).

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace rill::fault {

// Damages the last batch of the partition's active (highest-based) segment: either flips one
// byte of it (a bad sector: its CRC no longer matches) or zeroes its second half (a torn write).
// Returns false when the segment holds no batch. `*what` says what was done, for the history.
bool CorruptActiveSegmentTail(const std::string& partition_dir, std::mt19937_64& rng,
                              std::string* what);

// Removes the directories of these topics' partitions (`<topic>-<n>`) from the data dir, and
// nothing else (the metadata log, the data dir's identity and group state stay). Returns the
// directories removed.
std::vector<std::string> RemovePartitionDirs(const std::string& data_dir,
                                             const std::vector<std::string>& topics);

}  // namespace rill::fault
