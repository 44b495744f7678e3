#pragma once

// Materialises the records of one `__consumer_offsets` partition into an OffsetStore, and
// rebuilds a coordinator's state from the store plus the log suffix the store has not seen.
//
// Every Apply writes the records' effects and the new applied log offset in one atomic batch,
// so after a crash the store is exactly the result of applying a prefix of the log, and the
// applied offset says which. Apply is idempotent: records at or below the applied offset are
// skipped, so replaying an overlapping suffix is safe.
//
// Store keys (all under "cg/" + big-endian u32 partition of __consumer_offsets, so that each
// partition's state can be scanned or dropped on its own; strings are u32-BE-length-prefixed):
//   ... 'A'                                  -> applied log offset, i64 big-endian
//   ... 'G' group                            -> GroupRecordValue (group_metadata)
//   ... 'M' group member_id                  -> GroupRecordValue (member)
//   ... 'O' group topic u32-BE(partition)    -> GroupRecordValue (offset_commit)
// Values are the record value bytes exactly as they were in the log.
//
// Thread-safety: none; one coordinator strand per partition.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>

#include "groups/group_records.h"
#include "groups/group_types.h"
#include "groups/offset_store.h"
#include "rill/proto/status.h"
#include "rill/proto/types.h"

namespace rill::groups {

// One record of the __consumer_offsets log, as the log reader hands it out.
struct OffsetsLogRecord {
  Offset offset{-1};
  std::string key;
  std::optional<std::string> value;  // nullopt: tombstone
};

// A group as found in the store.
struct LoadedGroup {
  std::optional<pb::GroupMetadataValue> metadata;  // absent for offsets-only groups
  std::map<std::string, pb::MemberValue> members;  // member id -> member
  std::map<TopicPartition, pb::OffsetCommitValue> offsets;
};

struct LoadedOffsetsPartition {
  Offset applied_offset{-1};  // -1: nothing applied yet
  std::map<std::string, LoadedGroup> groups;
};

class OffsetsMaterializer {
 public:
  // `store` must outlive the materializer. `offsets_partition` is the __consumer_offsets
  // partition whose records this materializer applies.
  OffsetsMaterializer(OffsetStore* store, int32_t offsets_partition);

  // The offset of the last record applied, -1 when none.
  Result<Offset> AppliedOffset() const;

  // Applies `records` (ascending offsets) in one atomic write together with the new applied
  // offset; records at or below the applied offset are skipped. InvalidArgument when offsets are
  // not ascending; Corruption when a record does not decode (with its offset); the store's error
  // when the write fails. On any error nothing is written.
  Status Apply(std::span<const OffsetsLogRecord> records);
  // Same, for records the coordinator produced itself and appended at offsets first_offset, ...
  Status ApplyGroupRecords(Offset first_offset, std::span<const GroupRecord> records);

  // Applies `suffix` (the log from some offset <= applied + 1 to its end), then reads every
  // group of the partition back from the store.
  Result<LoadedOffsetsPartition> Load(std::span<const OffsetsLogRecord> suffix);

  // The committed offset of one partition for a group, nullopt when none.
  Result<std::optional<pb::OffsetCommitValue>> ReadOffset(const std::string& group_id,
                                                          const std::string& topic,
                                                          int32_t partition) const;
  // Every committed offset of a group.
  Result<std::map<TopicPartition, pb::OffsetCommitValue>> ReadGroupOffsets(
      const std::string& group_id) const;

  // The store key of a record key (exposed for tests).
  std::string StoreKey(const pb::GroupRecordKey& key) const;

 private:
  std::string PartitionPrefix() const;

  OffsetStore* store_;
  int32_t offsets_partition_;
};

}  // namespace rill::groups
