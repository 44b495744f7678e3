// __consumer_offsets records, the materializer (apply, idempotent re-apply, atomicity, reload
// from store + log suffix) and lag.

#include <gtest/gtest.h>

#include <random>

#include "groups/group_records.h"
#include "groups/lag.h"
#include "groups/offsets_materializer.h"
#include "test_seed.h"

namespace rill::groups {
namespace {

pb::OffsetCommitValue OffsetValue(int64_t offset, std::string metadata = "") {
  pb::OffsetCommitValue v;
  v.set_offset(offset);
  v.set_metadata(std::move(metadata));
  v.set_commit_timestamp_ms(1000 + offset);
  return v;
}

pb::MemberValue MemberValueWithEpoch(int32_t epoch) {
  pb::MemberValue v;
  v.set_member_epoch(epoch);
  v.set_client_id("c");
  v.add_subscribed_topic_names("t");
  auto* a = v.add_assigned();
  a->set_topic("t");
  a->add_partitions(0);
  return v;
}

// Encodes `records` as log records at offsets first, first+1, ...
std::vector<OffsetsLogRecord> ToLog(int64_t first, const std::vector<GroupRecord>& records) {
  std::vector<OffsetsLogRecord> log;
  for (const auto& r : records) {
    EncodedGroupRecord e = Encode(r);
    log.push_back({Offset(first++), e.key, e.value});
  }
  return log;
}

TEST(GroupRecordsTest, RoundTrip) {
  const std::vector<GroupRecord> records = {
      MakeOffsetCommitRecord("g", "t", 3, OffsetValue(42, "meta")),
      MakeOffsetTombstone("g", "t", 3),
      MakeGroupMetadataRecord("g", pb::GroupMetadataValue()),
      MakeGroupTombstone("g"),
      MakeMemberRecord("g", "m1", MemberValueWithEpoch(3)),
      MakeMemberTombstone("g", "m1"),
  };
  for (const auto& r : records) {
    EncodedGroupRecord e = Encode(r);
    EXPECT_FALSE(e.key.empty());
    if (r.value.has_value()) {
      EXPECT_FALSE(e.value->empty()) << "a value never encodes to nothing";
    }
    std::optional<std::string_view> v;
    if (e.value) v = *e.value;
    auto d = Decode(e.key, v);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(d->key.SerializeAsString(), r.key.SerializeAsString());
    EXPECT_EQ(d->value.has_value(), r.value.has_value());
    if (r.value) {
      EXPECT_EQ(d->value->SerializeAsString(), r.value->SerializeAsString());
    }
    EXPECT_EQ(RecordGroupId(d->key), "g");
  }
  // Same record, same bytes.
  EXPECT_EQ(Encode(records[4]).value, Encode(records[4]).value);
}

TEST(GroupRecordsTest, CorruptRecordsAreRejected) {
  EXPECT_TRUE(Decode("\xff\xff\xff", std::nullopt).status().IsCorruption());
  EXPECT_TRUE(Decode("", std::nullopt).status().IsCorruption()) << "key names no type";
  const EncodedGroupRecord offset = Encode(MakeOffsetCommitRecord("g", "t", 0, OffsetValue(1)));
  const EncodedGroupRecord member = Encode(MakeMemberRecord("g", "m", MemberValueWithEpoch(1)));
  EXPECT_TRUE(Decode(offset.key, std::string_view(*member.value)).status().IsCorruption())
      << "value type must match key type";
  EXPECT_TRUE(Decode(offset.key, std::string_view("\x0a\xff")).status().IsCorruption());
}

class MaterializerTest : public ::testing::Test {
 protected:
  MemoryOffsetStore store_;
  OffsetsMaterializer m_{&store_, 7};
};

TEST_F(MaterializerTest, ApplyThenRead) {
  EXPECT_EQ(m_.AppliedOffset().value(), Offset(-1));
  auto log = ToLog(0, {MakeOffsetCommitRecord("g", "t", 0, OffsetValue(5, "x")),
                       MakeOffsetCommitRecord("g", "t", 1, OffsetValue(9)),
                       MakeOffsetCommitRecord("g", "t", 0, OffsetValue(6))});
  ASSERT_TRUE(m_.Apply(log).ok());
  EXPECT_EQ(m_.AppliedOffset().value(), Offset(2));
  auto r = m_.ReadOffset("g", "t", 0);
  ASSERT_TRUE(r.ok() && r->has_value());
  EXPECT_EQ(r.value()->offset(), 6) << "the later commit wins";
  EXPECT_FALSE(m_.ReadOffset("g", "t", 2).value().has_value());
  EXPECT_FALSE(m_.ReadOffset("other", "t", 0).value().has_value());
  auto all = m_.ReadGroupOffsets("g");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
}

TEST_F(MaterializerTest, ReapplyIsIdempotent) {
  auto log = ToLog(
      0, {MakeOffsetCommitRecord("g", "t", 0, OffsetValue(5)),
          MakeMemberRecord("g", "m1", MemberValueWithEpoch(1)), MakeOffsetTombstone("g", "t", 0)});
  ASSERT_TRUE(m_.Apply(std::span(log).first(2)).ok());
  const auto after_two = store_.data();
  // The whole log again: the first two are skipped, only the tombstone applies.
  ASSERT_TRUE(m_.Apply(log).ok());
  EXPECT_FALSE(m_.ReadOffset("g", "t", 0).value().has_value());
  const auto after_all = store_.data();
  ASSERT_TRUE(m_.Apply(log).ok());
  EXPECT_EQ(store_.data(), after_all);
  ASSERT_TRUE(m_.Apply(std::span(log).first(1)).ok());
  EXPECT_EQ(store_.data(), after_all) << "an old record re-applied changes nothing";
  EXPECT_NE(after_two, after_all);
}

TEST_F(MaterializerTest, FailedWriteChangesNothing) {
  auto log = ToLog(0, {MakeOffsetCommitRecord("g", "t", 0, OffsetValue(5))});
  store_.fail_writes = true;
  EXPECT_TRUE(m_.Apply(log).IsIOError());
  store_.fail_writes = false;
  EXPECT_TRUE(store_.data().empty());
  EXPECT_EQ(m_.AppliedOffset().value(), Offset(-1));
  ASSERT_TRUE(m_.Apply(log).ok());
  EXPECT_EQ(m_.AppliedOffset().value(), Offset(0));
}

TEST_F(MaterializerTest, CorruptOrUnorderedBatchWritesNothing) {
  auto log = ToLog(0, {MakeOffsetCommitRecord("g", "t", 0, OffsetValue(5)),
                       MakeOffsetCommitRecord("g", "t", 1, OffsetValue(6))});
  log.push_back({Offset(2), "garbage\xff", std::string("x")});
  auto st = m_.Apply(log);
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
  EXPECT_NE(st.message().find("offset 2"), std::string::npos) << st.message();
  EXPECT_TRUE(store_.data().empty());

  auto unordered = ToLog(5, {MakeOffsetCommitRecord("g", "t", 0, OffsetValue(5)),
                             MakeOffsetCommitRecord("g", "t", 1, OffsetValue(6))});
  unordered[1].offset = Offset(4);
  EXPECT_EQ(m_.Apply(unordered).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(store_.data().empty());
}

TEST_F(MaterializerTest, LoadRebuildsGroupsFromStoreAndSuffix) {
  pb::GroupMetadataValue meta;
  meta.set_group_epoch(4);
  meta.set_assignment_epoch(4);
  meta.set_assignor("uniform");
  auto log = ToLog(
      0, {MakeGroupMetadataRecord("g", meta), MakeMemberRecord("g", "m1", MemberValueWithEpoch(2)),
          MakeMemberRecord("g", "m2", MemberValueWithEpoch(3)),
          MakeOffsetCommitRecord("g", "t", 0, OffsetValue(10)),
          MakeOffsetCommitRecord("solo", "t", 1, OffsetValue(11)), MakeMemberTombstone("g", "m2"),
          MakeOffsetCommitRecord("g", "t", 0, OffsetValue(12))});
  // The store saw the first four; the log has all seven. The suffix given starts before the
  // applied offset (overlap is fine).
  ASSERT_TRUE(m_.Apply(std::span(log).first(4)).ok());
  auto loaded = m_.Load(std::span(log).subspan(2));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->applied_offset, Offset(6));
  ASSERT_EQ(loaded->groups.size(), 2u);
  const LoadedGroup& g = loaded->groups.at("g");
  ASSERT_TRUE(g.metadata.has_value());
  EXPECT_EQ(g.metadata->group_epoch(), 4);
  ASSERT_EQ(g.members.size(), 1u);
  EXPECT_EQ(g.members.at("m1").member_epoch(), 2);
  EXPECT_EQ(g.offsets.at(TopicPartition{"t", 0}).offset(), 12);
  const LoadedGroup& solo = loaded->groups.at("solo");
  EXPECT_FALSE(solo.metadata.has_value()) << "offsets-only group";
  EXPECT_EQ(solo.offsets.at(TopicPartition{"t", 1}).offset(), 11);

  // A suffix that leaves a gap after the applied offset cannot be replayed.
  auto gap = ToLog(9, {MakeOffsetCommitRecord("g", "t", 0, OffsetValue(1))});
  EXPECT_EQ(m_.Load(gap).status().code(), StatusCode::kOutOfRange);
}

TEST_F(MaterializerTest, PartitionsAndGroupNamesDoNotBleed) {
  OffsetsMaterializer other(&store_, 8);
  ASSERT_TRUE(m_.Apply(ToLog(0, {MakeOffsetCommitRecord("a", "t", 0, OffsetValue(1)),
                                 MakeOffsetCommitRecord("ab", "t", 0, OffsetValue(2))}))
                  .ok());
  ASSERT_TRUE(other.Apply(ToLog(0, {MakeOffsetCommitRecord("a", "t", 0, OffsetValue(3))})).ok());
  EXPECT_EQ(m_.ReadGroupOffsets("a")->size(), 1u);
  EXPECT_EQ(m_.ReadOffset("a", "t", 0).value()->offset(), 1);
  EXPECT_EQ(other.ReadOffset("a", "t", 0).value()->offset(), 3);
  EXPECT_EQ(other.AppliedOffset().value(), Offset(0));
  EXPECT_EQ(m_.AppliedOffset().value(), Offset(1));
  auto loaded = other.Load({});
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->groups.size(), 1u);
}

// Random commits and tombstones applied in random chunks, with failed writes ("crashes") between;
// after each crash a new materializer reloads from the store plus the whole log (the suffix
// overlaps), and the result always equals a model of the last value per key.
TEST(MaterializerRandomTest, CrashAndReplayMatchesModel) {
  const uint64_t seed = rill::testing::TestSeed();
  SCOPED_TRACE(rill::testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  for (int run = 0; run < 50; ++run) {
    MemoryOffsetStore store;
    std::vector<OffsetsLogRecord> log;
    std::map<std::pair<std::string, int32_t>, int64_t> model;  // (group, partition) -> offset
    size_t applied = 0;                                        // records of `log` known applied
    for (int step = 0; step < 60; ++step) {
      const std::string group = "g" + std::to_string(pick(0, 3));
      const int32_t partition = pick(0, 4);
      GroupRecord r = pick(0, 5) == 0
                          ? MakeOffsetTombstone(group, "t", partition)
                          : MakeOffsetCommitRecord(group, "t", partition, OffsetValue(step));
      auto enc = ToLog(static_cast<int64_t>(log.size()), {r});
      log.push_back(enc[0]);
      if (r.value) {
        model[{group, partition}] = step;
      } else {
        model.erase({group, partition});
      }
      if (pick(0, 2) > 0) continue;  // batch up more records
      OffsetsMaterializer m(&store, 0);
      store.fail_writes = pick(0, 4) == 0;
      Status st = m.Apply(std::span(log).subspan(applied));
      store.fail_writes = false;
      if (st.ok()) applied = log.size();
      if (!st.ok() || pick(0, 3) == 0) {
        // Crash and restart: reload from store + the full log.
        OffsetsMaterializer fresh(&store, 0);
        auto loaded = fresh.Load(log);
        ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
        applied = log.size();
        ASSERT_EQ(loaded->applied_offset, Offset(static_cast<int64_t>(log.size()) - 1));
        std::map<std::pair<std::string, int32_t>, int64_t> seen;
        for (const auto& [g, lg] : loaded->groups) {
          for (const auto& [tp, v] : lg.offsets) seen[{g, tp.partition}] = v.offset();
        }
        ASSERT_EQ(seen, model) << "run " << run << " step " << step;
      }
    }
  }
}

TEST(LagTest, PerPartitionAndGroup) {
  EXPECT_EQ(PartitionLag({{"t", 0}, 40, 0, 100}), 60);
  EXPECT_EQ(PartitionLag({{"t", 0}, -1, 30, 100}), 70) << "nothing committed: from log start";
  EXPECT_EQ(PartitionLag({{"t", 0}, 120, 0, 100}), 0) << "committed past a truncated end";
  EXPECT_EQ(PartitionLag({{"t", 0}, 10, 30, 100}), 90) << "below log start still counts";
  EXPECT_EQ(PartitionLag({{"t", 0}, 100, 0, 100}), 0);
  const std::vector<PartitionOffsets> parts = {
      {{"t", 0}, 40, 0, 100}, {{"t", 1}, -1, 5, 10}, {{"u", 0}, 7, 0, 7}};
  const GroupLag g = ComputeGroupLag(parts);
  ASSERT_EQ(g.partitions.size(), 3u);
  EXPECT_EQ(g.partitions[1].lag, 5);
  EXPECT_EQ(g.total, 65);
  EXPECT_EQ(g.max, 60);
  EXPECT_EQ(ComputeGroupLag({}).total, 0);
}

}  // namespace
}  // namespace rill::groups
