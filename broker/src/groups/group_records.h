#pragma once

// The records of the internal topic `__consumer_offsets`: typed form, encoding to the (key,
// value) bytes of a log record, and decoding back. The schema is
// proto/rill/internal/v1/groups.proto; a null value (std::nullopt) is a tombstone.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "groups/group_types.h"
#include "rill/internal/v1/groups.pb.h"
#include "rill/proto/status.h"

namespace rill::groups {

namespace pb = ::rill::internal::v1;

// One record: its key, and its value or nullopt for a tombstone.
struct GroupRecord {
  pb::GroupRecordKey key;
  std::optional<pb::GroupRecordValue> value;
};

// The bytes of one record as it sits in the log.
struct EncodedGroupRecord {
  std::string key;
  std::optional<std::string> value;  // nullopt: tombstone (a null record value)
};

GroupRecord MakeOffsetCommitRecord(const std::string& group_id, const std::string& topic,
                                   int32_t partition, pb::OffsetCommitValue value);
GroupRecord MakeOffsetTombstone(const std::string& group_id, const std::string& topic,
                                int32_t partition);
GroupRecord MakeGroupMetadataRecord(const std::string& group_id, pb::GroupMetadataValue value);
GroupRecord MakeGroupTombstone(const std::string& group_id);
GroupRecord MakeMemberRecord(const std::string& group_id, const std::string& member_id,
                             pb::MemberValue value);
GroupRecord MakeMemberTombstone(const std::string& group_id, const std::string& member_id);

// The group a record belongs to.
const std::string& RecordGroupId(const pb::GroupRecordKey& key);

// Deterministic serialization (same record -> same bytes), so keys can be compared as bytes.
EncodedGroupRecord Encode(const GroupRecord& record);
// Corruption when the bytes do not parse, the key names no record type, or the value's type
// does not match the key's.
Result<GroupRecord> Decode(std::string_view key, const std::optional<std::string_view>& value);

// Assignment <-> repeated PartitionSet.
void ToPartitionSets(const Assignment& a,
                     google::protobuf::RepeatedPtrField<pb::PartitionSet>* out);
Assignment FromPartitionSets(const google::protobuf::RepeatedPtrField<pb::PartitionSet>& sets);

}  // namespace rill::groups
