#include "groups/group_records.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

namespace rill::groups {
namespace {

std::string SerializeDeterministic(const google::protobuf::MessageLite& m) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream raw(&out);
    google::protobuf::io::CodedOutputStream coded(&raw);
    coded.SetSerializationDeterministic(true);
    m.SerializeToCodedStream(&coded);
  }
  return out;
}

}  // namespace

GroupRecord MakeOffsetCommitRecord(const std::string& group_id, const std::string& topic,
                                   int32_t partition, pb::OffsetCommitValue value) {
  GroupRecord r = MakeOffsetTombstone(group_id, topic, partition);
  r.value.emplace();
  *r.value->mutable_offset_commit() = std::move(value);
  return r;
}

GroupRecord MakeOffsetTombstone(const std::string& group_id, const std::string& topic,
                                int32_t partition) {
  GroupRecord r;
  auto* k = r.key.mutable_offset_commit();
  k->set_group_id(group_id);
  k->set_topic(topic);
  k->set_partition(partition);
  return r;
}

GroupRecord MakeGroupMetadataRecord(const std::string& group_id, pb::GroupMetadataValue value) {
  GroupRecord r = MakeGroupTombstone(group_id);
  r.value.emplace();
  *r.value->mutable_group_metadata() = std::move(value);
  return r;
}

GroupRecord MakeGroupTombstone(const std::string& group_id) {
  GroupRecord r;
  r.key.mutable_group_metadata()->set_group_id(group_id);
  return r;
}

GroupRecord MakeMemberRecord(const std::string& group_id, const std::string& member_id,
                             pb::MemberValue value) {
  GroupRecord r = MakeMemberTombstone(group_id, member_id);
  r.value.emplace();
  *r.value->mutable_member() = std::move(value);
  return r;
}

GroupRecord MakeMemberTombstone(const std::string& group_id, const std::string& member_id) {
  GroupRecord r;
  auto* k = r.key.mutable_member();
  k->set_group_id(group_id);
  k->set_member_id(member_id);
  return r;
}

const std::string& RecordGroupId(const pb::GroupRecordKey& key) {
  switch (key.key_case()) {
    case pb::GroupRecordKey::kOffsetCommit:
      return key.offset_commit().group_id();
    case pb::GroupRecordKey::kGroupMetadata:
      return key.group_metadata().group_id();
    case pb::GroupRecordKey::kMember:
      return key.member().group_id();
    case pb::GroupRecordKey::KEY_NOT_SET:
      break;
  }
  static const std::string kEmpty;
  return kEmpty;
}

EncodedGroupRecord Encode(const GroupRecord& record) {
  EncodedGroupRecord e;
  e.key = SerializeDeterministic(record.key);
  if (record.value.has_value()) e.value = SerializeDeterministic(*record.value);
  return e;
}

Result<GroupRecord> Decode(std::string_view key, const std::optional<std::string_view>& value) {
  GroupRecord r;
  if (!r.key.ParseFromArray(key.data(), static_cast<int>(key.size()))) {
    return Status::Corruption("__consumer_offsets record key does not parse");
  }
  if (r.key.key_case() == pb::GroupRecordKey::KEY_NOT_SET) {
    return Status::Corruption("__consumer_offsets record key names no record type");
  }
  if (!value.has_value()) return r;
  r.value.emplace();
  if (!r.value->ParseFromArray(value->data(), static_cast<int>(value->size()))) {
    return Status::Corruption("__consumer_offsets record value does not parse");
  }
  const bool match = (r.key.key_case() == pb::GroupRecordKey::kOffsetCommit &&
                      r.value->value_case() == pb::GroupRecordValue::kOffsetCommit) ||
                     (r.key.key_case() == pb::GroupRecordKey::kGroupMetadata &&
                      r.value->value_case() == pb::GroupRecordValue::kGroupMetadata) ||
                     (r.key.key_case() == pb::GroupRecordKey::kMember &&
                      r.value->value_case() == pb::GroupRecordValue::kMember);
  if (!match) {
    return Status::Corruption("__consumer_offsets record value type " +
                              std::to_string(r.value->value_case()) + " does not match key type " +
                              std::to_string(r.key.key_case()));
  }
  return r;
}

void ToPartitionSets(const Assignment& a,
                     google::protobuf::RepeatedPtrField<pb::PartitionSet>* out) {
  out->Clear();
  for (const auto& [topic, parts] : a) {
    auto* s = out->Add();
    s->set_topic(topic);
    for (int32_t p : parts) s->add_partitions(p);
  }
}

Assignment FromPartitionSets(const google::protobuf::RepeatedPtrField<pb::PartitionSet>& sets) {
  Assignment a;
  for (const auto& s : sets) {
    for (int32_t p : s.partitions()) a[s.topic()].insert(p);
  }
  return a;
}

}  // namespace rill::groups
