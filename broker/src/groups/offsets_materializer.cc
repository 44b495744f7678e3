#include "groups/offsets_materializer.h"

#include <vector>

namespace rill::groups {
namespace {

constexpr std::string_view kNamespace = "cg/";
constexpr char kApplied = 'A';
constexpr char kGroup = 'G';
constexpr char kMember = 'M';
constexpr char kOffset = 'O';

void PutU32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s.push_back(static_cast<char>((v >> shift) & 0xff));
}

void PutString(std::string& s, std::string_view v) {
  PutU32(s, static_cast<uint32_t>(v.size()));
  s.append(v);
}

std::string EncodeI64(int64_t v) {
  std::string s;
  const auto u = static_cast<uint64_t>(v);
  for (int shift = 56; shift >= 0; shift -= 8) s.push_back(static_cast<char>((u >> shift) & 0xff));
  return s;
}

Result<int64_t> DecodeI64(std::string_view s) {
  if (s.size() != 8) return Status::Corruption("applied offset value is not 8 bytes");
  uint64_t u = 0;
  for (char c : s) u = (u << 8) | static_cast<uint8_t>(c);
  return static_cast<int64_t>(u);
}

// Reads the u32-prefixed strings and u32s of a store key back.
class KeyReader {
 public:
  explicit KeyReader(std::string_view s) : s_(s) {}
  bool U32(uint32_t* v) {
    if (s_.size() < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v = (*v << 8) | static_cast<uint8_t>(s_[i]);
    s_.remove_prefix(4);
    return true;
  }
  bool String(std::string* v) {
    uint32_t n;
    if (!U32(&n) || s_.size() < n) return false;
    v->assign(s_.substr(0, n));
    s_.remove_prefix(n);
    return true;
  }
  bool Byte(char* c) {
    if (s_.empty()) return false;
    *c = s_[0];
    s_.remove_prefix(1);
    return true;
  }
  bool Done() const { return s_.empty(); }

 private:
  std::string_view s_;
};

}  // namespace

OffsetsMaterializer::OffsetsMaterializer(OffsetStore* store, int32_t offsets_partition)
    : store_(store), offsets_partition_(offsets_partition) {}

std::string OffsetsMaterializer::PartitionPrefix() const {
  std::string s(kNamespace);
  PutU32(s, static_cast<uint32_t>(offsets_partition_));
  return s;
}

std::string OffsetsMaterializer::StoreKey(const pb::GroupRecordKey& key) const {
  std::string s = PartitionPrefix();
  switch (key.key_case()) {
    case pb::GroupRecordKey::kOffsetCommit:
      s.push_back(kOffset);
      PutString(s, key.offset_commit().group_id());
      PutString(s, key.offset_commit().topic());
      PutU32(s, static_cast<uint32_t>(key.offset_commit().partition()));
      break;
    case pb::GroupRecordKey::kGroupMetadata:
      s.push_back(kGroup);
      PutString(s, key.group_metadata().group_id());
      break;
    case pb::GroupRecordKey::kMember:
      s.push_back(kMember);
      PutString(s, key.member().group_id());
      PutString(s, key.member().member_id());
      break;
    case pb::GroupRecordKey::KEY_NOT_SET:
      RILL_ASSERT(false, "StoreKey of a key with no type");
  }
  return s;
}

Result<Offset> OffsetsMaterializer::AppliedOffset() const {
  RILL_ASSIGN_OR_RETURN(auto v, store_->Get(PartitionPrefix() + kApplied));
  if (!v.has_value()) return Offset(-1);
  RILL_ASSIGN_OR_RETURN(int64_t o, DecodeI64(*v));
  return Offset(o);
}

Status OffsetsMaterializer::Apply(std::span<const OffsetsLogRecord> records) {
  RILL_ASSIGN_OR_RETURN(Offset applied, AppliedOffset());
  OffsetStoreBatch batch;
  Offset last = applied;
  for (const auto& r : records) {
    if (r.offset <= last) {
      if (r.offset <= applied) continue;  // already applied: idempotent replay
      return Status::InvalidArgument("__consumer_offsets records out of order: offset " +
                                     std::to_string(r.offset.value()) + " after " +
                                     std::to_string(last.value()));
    }
    std::optional<std::string_view> value;
    if (r.value.has_value()) value = *r.value;
    auto decoded = Decode(r.key, value);
    if (!decoded.ok()) {
      return Status::Corruption(
          "__consumer_offsets partition " + std::to_string(offsets_partition_) + " offset " +
          std::to_string(r.offset.value()) + ": " + decoded.status().message());
    }
    std::string key = StoreKey(decoded->key);
    if (r.value.has_value()) {
      batch.Put(std::move(key), *r.value);
    } else {
      batch.Delete(std::move(key));
    }
    last = r.offset;
  }
  if (last == applied) return Status::OK();
  batch.Put(PartitionPrefix() + kApplied, EncodeI64(last.value()));
  return store_->Write(batch);
}

Status OffsetsMaterializer::ApplyGroupRecords(Offset first_offset,
                                              std::span<const GroupRecord> records) {
  std::vector<OffsetsLogRecord> log;
  log.reserve(records.size());
  Offset o = first_offset;
  for (const auto& r : records) {
    EncodedGroupRecord e = Encode(r);
    log.push_back({o++, std::move(e.key), std::move(e.value)});
  }
  return Apply(log);
}

Result<LoadedOffsetsPartition> OffsetsMaterializer::Load(std::span<const OffsetsLogRecord> suffix) {
  RILL_ASSIGN_OR_RETURN(Offset applied, AppliedOffset());
  if (!suffix.empty() && suffix.front().offset > applied + 1) {
    return Status::OutOfRange(
        "log suffix starts at " + std::to_string(suffix.front().offset.value()) +
        " but the store has applied only up to " + std::to_string(applied.value()));
  }
  RILL_RETURN_IF_ERROR(Apply(suffix));

  LoadedOffsetsPartition out;
  RILL_ASSIGN_OR_RETURN(out.applied_offset, AppliedOffset());
  const std::string prefix = PartitionPrefix();
  RILL_ASSIGN_OR_RETURN(auto rows, store_->Scan(prefix));
  for (const auto& [key, value] : rows) {
    KeyReader k(std::string_view(key).substr(prefix.size()));
    char type;
    if (!k.Byte(&type)) return Status::Corruption("empty consumer-group store key");
    if (type == kApplied) continue;
    std::string group;
    if (!k.String(&group)) return Status::Corruption("consumer-group store key without group");
    pb::GroupRecordValue v;
    if (!v.ParseFromString(value)) {
      return Status::Corruption("consumer-group store value of group " + group + " does not parse");
    }
    LoadedGroup& g = out.groups[group];
    if (type == kGroup && k.Done() && v.has_group_metadata()) {
      g.metadata = v.group_metadata();
    } else if (type == kMember && v.has_member()) {
      std::string member;
      if (!k.String(&member) || !k.Done()) {
        return Status::Corruption("bad member key in group " + group);
      }
      g.members[member] = v.member();
    } else if (type == kOffset && v.has_offset_commit()) {
      std::string topic;
      uint32_t partition;
      if (!k.String(&topic) || !k.U32(&partition) || !k.Done()) {
        return Status::Corruption("bad offset key in group " + group);
      }
      g.offsets[TopicPartition{topic, static_cast<int32_t>(partition)}] = v.offset_commit();
    } else {
      return Status::Corruption("consumer-group store key of type '" + std::string(1, type) +
                                "' holds a mismatched value in group " + group);
    }
  }
  return out;
}

Result<std::optional<pb::OffsetCommitValue>> OffsetsMaterializer::ReadOffset(
    const std::string& group_id, const std::string& topic, int32_t partition) const {
  GroupRecord r = MakeOffsetTombstone(group_id, topic, partition);
  RILL_ASSIGN_OR_RETURN(auto v, store_->Get(StoreKey(r.key)));
  if (!v.has_value()) return std::optional<pb::OffsetCommitValue>();
  pb::GroupRecordValue value;
  if (!value.ParseFromString(*v) || !value.has_offset_commit()) {
    return Status::Corruption("committed offset of " + group_id + " " + topic + "-" +
                              std::to_string(partition) + " does not parse");
  }
  return std::optional<pb::OffsetCommitValue>(value.offset_commit());
}

Result<std::map<TopicPartition, pb::OffsetCommitValue>> OffsetsMaterializer::ReadGroupOffsets(
    const std::string& group_id) const {
  std::string prefix = PartitionPrefix();
  prefix.push_back(kOffset);
  PutString(prefix, group_id);
  RILL_ASSIGN_OR_RETURN(auto rows, store_->Scan(prefix));
  std::map<TopicPartition, pb::OffsetCommitValue> out;
  for (const auto& [key, value] : rows) {
    KeyReader k(std::string_view(key).substr(prefix.size()));
    std::string topic;
    uint32_t partition;
    pb::GroupRecordValue v;
    if (!k.String(&topic) || !k.U32(&partition) || !k.Done() || !v.ParseFromString(value) ||
        !v.has_offset_commit()) {
      return Status::Corruption("bad committed offset entry in group " + group_id);
    }
    out[TopicPartition{topic, static_cast<int32_t>(partition)}] = v.offset_commit();
  }
  return out;
}

}  // namespace rill::groups
