// The idempotent producer's state table (rill/storage/producer_state.h): Check's answers
// (duplicates of the last five batches with their original offsets, gaps, wrap-around at
// INT32_MAX, epoch bumps, bad fields, the producer limit), expiry, truncation, retention keeping
// state, the snapshot format (round trip, truncated and damaged input, snapshot files on
// FaultyFileSystem) and Rebuild from a snapshot plus later batches.

#include "rill/storage/producer_state.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "rill/proto/crc32c.h"
#include "rill/storage/faulty_file_system.h"

namespace rill::storage {
namespace {

constexpr int64_t kNow = 1'000'000;

// A batch of `count` records of producer `pid`, epoch `epoch`, first sequence `seq`.
BatchIdentity B(int64_t pid, int16_t epoch, int32_t seq, int32_t count = 1, int64_t ts = 77) {
  return {pid, epoch, seq, count - 1, ts};
}

// Check, then Update at [base, base + count - 1] when Check allows it; returns Check's answer.
ProducerCheck Append(ProducerStateTable* t, const BatchIdentity& b, int64_t base,
                     int64_t now_ms = kNow) {
  CheckResult r = t->Check(b);
  if (r.outcome == ProducerCheck::kAppend) {
    t->Update(b, Offset(base), Offset(base + b.last_offset_delta), now_ms);
  }
  return r.outcome;
}

TEST(ProducerStateTest, NonIdempotentBatchesAlwaysAppendAndAreNotTracked) {
  ProducerStateTable t;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(Append(&t, B(-1, -1, -1, 4), 4 * i), ProducerCheck::kAppend);
  }
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.Check(B(-1, -1, -1)).message, "");
}

TEST(ProducerStateTest, NewProducerIsAcceptedAtAnySequence) {
  ProducerStateTable t;
  EXPECT_EQ(t.Check(B(7, 0, 0)).outcome, ProducerCheck::kAppend);
  // KIP-360: no state for the producer (new, expired or truncated away) accepts any sequence.
  EXPECT_EQ(t.Check(B(7, 3, 42)).outcome, ProducerCheck::kAppend);
  t.Update(B(7, 3, 42, 2), Offset(10), Offset(11), kNow);
  const ProducerEntry* e = t.Find(7);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->epoch, 3);
  ASSERT_EQ(e->batches.size(), 1u);
  EXPECT_EQ(e->batches[0], (ProducerBatch{42, 43, Offset(10), Offset(11), 77}));
  EXPECT_EQ(e->last_update_ms, kNow);
  EXPECT_EQ(t.Check(B(7, 3, 44)).outcome, ProducerCheck::kAppend);
}

TEST(ProducerStateTest, EachOfTheLastBatchesKeptIsADuplicateWithItsOriginalOffsets) {
  ProducerStateTable t;
  // kProducerBatchesKept + 1 batches of two records: sequences 2i..2i+1 at offsets
  // 100+10i..101+10i (other producers' batches in between).
  const int n = static_cast<int>(kProducerBatchesKept) + 1;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(Append(&t, B(7, 0, 2 * i, 2), 100 + 10 * i), ProducerCheck::kAppend) << i;
  }
  ASSERT_EQ(t.Find(7)->batches.size(), kProducerBatchesKept);
  for (int i = 1; i < n; ++i) {
    CheckResult r = t.Check(B(7, 0, 2 * i, 2));
    EXPECT_EQ(r.outcome, ProducerCheck::kDuplicate) << i;
    EXPECT_EQ(r.first_offset, Offset(100 + 10 * i));
    EXPECT_EQ(r.last_offset, Offset(101 + 10 * i));
  }
  // The oldest is no longer cached: it is behind the sequence, so out of order.
  CheckResult r = t.Check(B(7, 0, 0, 2));
  EXPECT_EQ(r.outcome, ProducerCheck::kOutOfOrderSequence);
  EXPECT_EQ(r.message,
            "producer 7 epoch 0: expected sequence " + std::to_string(2 * n) + ", got 0");
  // A duplicate must match the cached range exactly.
  EXPECT_EQ(t.Check(B(7, 0, 2, 1)).outcome, ProducerCheck::kOutOfOrderSequence);
  EXPECT_EQ(t.Check(B(7, 0, 2, 3)).outcome, ProducerCheck::kOutOfOrderSequence);
  // A duplicate changes nothing; the next in sequence still appends.
  EXPECT_EQ(Append(&t, B(7, 0, 2 * n, 1), 1000), ProducerCheck::kAppend);
  EXPECT_EQ(t.Find(7)->batches.front().first_seq, 4);
}

TEST(ProducerStateTest, AGapIsOutOfOrderAndChangesNothing) {
  ProducerStateTable t;
  ASSERT_EQ(Append(&t, B(9, 2, 0, 5), 0), ProducerCheck::kAppend);
  const ProducerStateTable before = t;
  CheckResult r = t.Check(B(9, 2, 6));
  EXPECT_EQ(r.outcome, ProducerCheck::kOutOfOrderSequence);
  EXPECT_EQ(r.message, "producer 9 epoch 2: expected sequence 5, got 6");
  EXPECT_EQ(r.first_offset, Offset(-1));
  EXPECT_TRUE(t == before);
  EXPECT_EQ(t.Check(B(9, 2, 5)).outcome, ProducerCheck::kAppend);
}

TEST(ProducerStateTest, SequencesWrapAtInt32Max) {
  EXPECT_EQ(NextSequence(INT32_MAX), 0);
  EXPECT_EQ(NextSequence(5), 6);
  EXPECT_EQ(B(1, 0, INT32_MAX - 1, 3).last_sequence(), 0);
  EXPECT_EQ(B(1, 0, INT32_MAX, 1).last_sequence(), INT32_MAX);
  EXPECT_EQ(B(1, 0, INT32_MAX, 2).last_sequence(), 0);

  ProducerStateTable t;
  ASSERT_EQ(Append(&t, B(1, 0, INT32_MAX - 3, 4), 0), ProducerCheck::kAppend);  // ends at MAX
  EXPECT_EQ(t.Find(1)->batches.back().last_seq, INT32_MAX);
  CheckResult r = t.Check(B(1, 0, INT32_MAX));
  EXPECT_EQ(r.outcome, ProducerCheck::kOutOfOrderSequence);
  EXPECT_EQ(r.message, "producer 1 epoch 0: expected sequence 0, got 2147483647");
  ASSERT_EQ(Append(&t, B(1, 0, 0, 2), 4), ProducerCheck::kAppend);
  // A batch whose sequences wrap inside it.
  ProducerStateTable u;
  ASSERT_EQ(Append(&u, B(2, 0, INT32_MAX - 1, 3), 50), ProducerCheck::kAppend);  // MAX-1, MAX, 0
  EXPECT_EQ(u.Find(2)->batches.back().last_seq, 0);
  EXPECT_EQ(u.Check(B(2, 0, 1)).outcome, ProducerCheck::kAppend);
  EXPECT_EQ(u.Check(B(2, 0, 0)).outcome, ProducerCheck::kOutOfOrderSequence);
  r = u.Check(B(2, 0, INT32_MAX - 1, 3));
  EXPECT_EQ(r.outcome, ProducerCheck::kDuplicate);
  EXPECT_EQ(r.first_offset, Offset(50));
  EXPECT_EQ(r.last_offset, Offset(52));
}

TEST(ProducerStateTest, ANewEpochStartsAtZeroAndAnOlderOneIsRefused) {
  ProducerStateTable t;
  ASSERT_EQ(Append(&t, B(4, 0, 0, 3), 0), ProducerCheck::kAppend);
  ASSERT_EQ(Append(&t, B(4, 0, 3, 3), 3), ProducerCheck::kAppend);
  CheckResult r = t.Check(B(4, 1, 6));
  EXPECT_EQ(r.outcome, ProducerCheck::kOutOfOrderSequence);
  EXPECT_EQ(r.message, "producer 4: new epoch 1 (current 0) must start at sequence 0, got 6");
  ASSERT_EQ(Append(&t, B(4, 1, 0, 2), 6), ProducerCheck::kAppend);
  const ProducerEntry* e = t.Find(4);
  EXPECT_EQ(e->epoch, 1);
  ASSERT_EQ(e->batches.size(), 1u);  // the old epoch's batches are gone
  EXPECT_EQ(e->batches[0], (ProducerBatch{0, 1, Offset(6), Offset(7), 77}));
  // The old epoch is fenced, even for a retry of one of its batches.
  r = t.Check(B(4, 0, 3, 3));
  EXPECT_EQ(r.outcome, ProducerCheck::kInvalidProducerEpoch);
  EXPECT_EQ(r.message, "producer 4: epoch 0 is older than the current epoch 1");
  EXPECT_EQ(t.Check(B(4, 0, 6)).outcome, ProducerCheck::kInvalidProducerEpoch);
  EXPECT_EQ(t.Check(B(4, 0, 0, 2)).outcome, ProducerCheck::kInvalidProducerEpoch);
  // The new epoch's first batch is a duplicate of itself; sequence 2 follows.
  EXPECT_EQ(t.Check(B(4, 1, 0, 2)).outcome, ProducerCheck::kDuplicate);
  EXPECT_EQ(t.Check(B(4, 1, 2)).outcome, ProducerCheck::kAppend);
  // The same sequence range in a newer epoch is a new batch, not a retry of the cached one.
  EXPECT_EQ(t.Check(B(4, 2, 0, 2)).outcome, ProducerCheck::kAppend);
  // A follower applies what the leader wrote, even an older epoch (Kafka's replication rule).
  t.Update(B(4, 0, 9), Offset(8), Offset(8), kNow);
  EXPECT_EQ(t.Find(4)->epoch, 0);
  EXPECT_EQ(t.Find(4)->batches.size(), 1u);
}

TEST(ProducerStateTest, InvalidProducerFieldsAreRefused) {
  ProducerStateTable t;
  CheckResult r = t.Check(B(3, 0, -1));
  EXPECT_EQ(r.outcome, ProducerCheck::kInvalidRecord);
  EXPECT_EQ(r.message, "producer 3: invalid producer fields (epoch 0, base sequence -1)");
  EXPECT_EQ(t.Check(B(3, -1, 0)).outcome, ProducerCheck::kInvalidRecord);
  EXPECT_EQ(t.size(), 0u);
}

TEST(ProducerStateTest, NewProducersStopAtTheLimit) {
  ProducerStateTable t(/*max_producers=*/2);
  ASSERT_EQ(Append(&t, B(1, 0, 0), 0), ProducerCheck::kAppend);
  ASSERT_EQ(Append(&t, B(2, 0, 0), 1), ProducerCheck::kAppend);
  CheckResult r = t.Check(B(3, 0, 0));
  EXPECT_EQ(r.outcome, ProducerCheck::kTooManyProducers);
  EXPECT_EQ(r.message, "producer 3: the partition already tracks 2 producers (the limit)");
  EXPECT_EQ(t.Check(B(1, 0, 1)).outcome, ProducerCheck::kAppend);  // known ones go on
  EXPECT_EQ(t.Check(B(-1, -1, -1)).outcome, ProducerCheck::kAppend);
}

TEST(ProducerStateTest, IdleProducersExpire) {
  ProducerStateTable t;
  const int64_t exp = kDefaultProducerIdExpirationMs;
  ASSERT_EQ(Append(&t, B(1, 0, 0), 0, /*now_ms=*/1000), ProducerCheck::kAppend);
  ASSERT_EQ(Append(&t, B(2, 0, 0), 1, /*now_ms=*/5000), ProducerCheck::kAppend);
  ASSERT_EQ(Append(&t, B(1, 0, 1), 2, /*now_ms=*/3000), ProducerCheck::kAppend);  // refreshed
  EXPECT_EQ(t.ExpireIdle(3000 + exp - 1, exp), 0u);
  EXPECT_EQ(t.ExpireIdle(3000 + exp, exp), 1u);  // idle exactly expiration_ms: gone
  EXPECT_EQ(t.Find(1), nullptr);
  ASSERT_NE(t.Find(2), nullptr);
  // An expired producer is unknown again: any sequence is accepted (KIP-360).
  EXPECT_EQ(t.Check(B(1, 0, 57)).outcome, ProducerCheck::kAppend);
  EXPECT_EQ(t.ExpireIdle(5000 + exp, exp), 1u);
  EXPECT_EQ(t.size(), 0u);
}

TEST(ProducerStateTest, TruncationDropsBatchesAtOrAfterTheEnd) {
  ProducerStateTable t;
  ASSERT_EQ(Append(&t, B(1, 0, 0, 5), 0), ProducerCheck::kAppend);    // 0..4
  ASSERT_EQ(Append(&t, B(1, 0, 5, 5), 10), ProducerCheck::kAppend);   // 10..14
  ASSERT_EQ(Append(&t, B(2, 0, 0, 5), 15), ProducerCheck::kAppend);   // 15..19
  ASSERT_EQ(Append(&t, B(1, 0, 10, 5), 20), ProducerCheck::kAppend);  // 20..24
  EXPECT_FALSE(t.TruncateTo(Offset(25)));
  EXPECT_TRUE(t.TruncateTo(Offset(15)));
  EXPECT_EQ(t.Find(2), nullptr);  // left with no batches
  ASSERT_NE(t.Find(1), nullptr);
  EXPECT_EQ(t.Find(1)->batches.size(), 2u);
  CheckResult r = t.Check(B(1, 0, 15));
  EXPECT_EQ(r.message, "producer 1 epoch 0: expected sequence 10, got 15");
  EXPECT_EQ(t.Check(B(1, 0, 10, 5)).outcome, ProducerCheck::kAppend);  // re-sent, not duplicate
  EXPECT_TRUE(t.TruncateTo(Offset(0)));
  EXPECT_EQ(t.size(), 0u);
}

TEST(ProducerStateTest, RetentionKeepsProducerState) {
  ProducerStateTable t;
  ASSERT_EQ(Append(&t, B(1, 0, 0, 2), 0), ProducerCheck::kAppend);
  ASSERT_EQ(Append(&t, B(1, 0, 2, 2), 2), ProducerCheck::kAppend);
  const ProducerStateTable before = t;
  t.RetainFrom(Offset(1000));  // the log start passed every batch of the producer
  EXPECT_TRUE(t == before);
  // Its next batch is not an error, a retry is still answered, a gap still refused.
  EXPECT_EQ(t.Check(B(1, 0, 4)).outcome, ProducerCheck::kAppend);
  CheckResult r = t.Check(B(1, 0, 2, 2));
  EXPECT_EQ(r.outcome, ProducerCheck::kDuplicate);
  EXPECT_EQ(r.first_offset, Offset(2));
  EXPECT_EQ(t.Check(B(1, 0, 9)).outcome, ProducerCheck::kOutOfOrderSequence);
}

// A table with wrapped sequences, an epoch bump, a full cache and several producers.
ProducerStateTable SampleTable() {
  ProducerStateTable t;
  int64_t off = 0;
  // kProducerBatchesKept + 2 batches: the first two fall out of the cache.
  for (int i = 0; i < static_cast<int>(kProducerBatchesKept) + 2; ++i) {
    EXPECT_EQ(Append(&t, B(5, 1, 3 * i, 3, 1000 + i), off, kNow + i), ProducerCheck::kAppend);
    off += 3;
  }
  EXPECT_EQ(Append(&t, B(INT64_MAX, INT16_MAX, INT32_MAX - 1, 4, -1), off), ProducerCheck::kAppend);
  off += 4;
  EXPECT_EQ(Append(&t, B(0, 0, 0), off++), ProducerCheck::kAppend);
  EXPECT_EQ(Append(&t, B(0, 1, 0, 2), off), ProducerCheck::kAppend);
  return t;
}

TEST(ProducerStateTest, SnapshotRoundTrip) {
  const ProducerStateTable t = SampleTable();
  ASSERT_EQ(t.size(), 3u);
  const std::string bytes = t.Serialize(Offset(500));
  // header 18 + 3 producers of 19 + (kProducerBatchesKept + 1 + 1) batches of 32 + crc 4
  EXPECT_EQ(bytes.size(), 18u + 3 * 19 + (kProducerBatchesKept + 2) * 32 + 4);
  EXPECT_EQ(bytes.substr(0, 6), std::string("RPSN\0\1", 6));
  auto parsed = ProducerStateTable::Parse(bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->offset, Offset(500));
  EXPECT_TRUE(parsed->table == t);
  EXPECT_EQ(parsed->table.Find(5)->batches.front(),
            (ProducerBatch{6, 8, Offset(6), Offset(8), 1002}));
  EXPECT_EQ(parsed->table.Find(5)->last_update_ms,
            kNow + static_cast<int64_t>(kProducerBatchesKept) + 1);
  EXPECT_EQ(parsed->table.Serialize(Offset(500)), bytes);

  const std::string empty = ProducerStateTable().Serialize(Offset(0));
  EXPECT_EQ(empty.size(), 22u);
  auto e = ProducerStateTable::Parse(empty);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->table.size(), 0u);
}

TEST(ProducerStateTest, TruncatedOrDamagedSnapshotsAreRefused) {
  const std::string bytes = SampleTable().Serialize(Offset(500));
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = ProducerStateTable::Parse(bytes.substr(0, n));
    EXPECT_TRUE(r.status().IsCorruption()) << "length " << n;
  }
  EXPECT_TRUE(ProducerStateTable::Parse(bytes + '\0').status().IsCorruption());
  for (size_t i = 0; i < bytes.size() * 8; ++i) {
    std::string b = bytes;
    b[i / 8] = static_cast<char>(b[i / 8] ^ (1 << (i % 8)));
    EXPECT_TRUE(ProducerStateTable::Parse(b).status().IsCorruption()) << "bit " << i;
  }
  EXPECT_EQ(ProducerStateTable::Parse(bytes.substr(0, 10)).status().message(),
            "producer snapshot: truncated: 10 bytes, the header needs 22");

  // Well-sealed but wrong contents: re-seal after the edit so only the content check can fail.
  auto reseal = [](std::string b) {
    b.resize(b.size() - 4);
    const uint32_t crc = crc32c::Value(b);
    for (int i = 3; i >= 0; --i) b.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
    return b;
  };
  std::string v2 = bytes;
  v2[5] = 2;
  EXPECT_EQ(ProducerStateTable::Parse(reseal(v2)).status().message(),
            "producer snapshot: unsupported version 2");
  // A snapshot offset at or below a cached batch's offsets.
  std::string low = bytes;
  for (int i = 6; i < 14; ++i) low[i] = 0;
  low[13] = 10;
  EXPECT_EQ(ProducerStateTable::Parse(reseal(low)).status().message(),
            "producer snapshot: producer entry 0: batch 0 inconsistent");
  // A producer entry without batches (Check needs the last one).
  std::string no_batches("RPSN\0\1", 6);
  for (int i = 0; i < 7; ++i) no_batches.push_back('\0');
  no_batches += std::string("\x64\0\0\0\1", 5);  // snapshot offset 100, one producer
  no_batches += std::string(8, '\0') + '\1';     // producer id 1
  no_batches += std::string(2 + 8 + 1, '\0');    // epoch 0, last update 0, 0 batches
  no_batches += std::string(4, '\0');            // crc, set by reseal
  EXPECT_EQ(ProducerStateTable::Parse(reseal(no_batches)).status().message(),
            "producer snapshot: producer entry 0: 0 batches");
  // A producer count larger than the entries present.
  std::string more = bytes;
  more[17] = static_cast<char>(more[17] + 1);
  EXPECT_EQ(ProducerStateTable::Parse(reseal(more)).status().message(),
            "producer snapshot: producer entry 3: truncated");
}

TEST(ProducerStateTest, SnapshotFiles) {
  EXPECT_EQ(ProducerSnapshotFileName(Offset(500)), "00000000000000000500.producer-snapshot");
  EXPECT_EQ(ParseProducerSnapshotFileName("00000000000000000500.producer-snapshot"), Offset(500));
  EXPECT_EQ(ParseProducerSnapshotFileName("00000000000000000500.producer-snapshot.tmp"),
            std::nullopt);
  EXPECT_EQ(ParseProducerSnapshotFileName("0000000000000000050x.producer-snapshot"), std::nullopt);
  EXPECT_EQ(ParseProducerSnapshotFileName("00000000000000000500.log"), std::nullopt);

  FaultyFileSystem fs(3);
  const std::string dir = "data/t-0";
  ASSERT_TRUE(fs.CreateDir(dir).ok());
  ASSERT_TRUE(fs.SyncDir(".").ok());
  ASSERT_TRUE(fs.SyncDir("data").ok());
  auto none = LoadLatestProducerSnapshot(&fs, dir);
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->snapshot.has_value());

  ProducerStateTable a;
  ASSERT_EQ(Append(&a, B(1, 0, 0, 2), 0), ProducerCheck::kAppend);
  ProducerStateTable b = a;
  ASSERT_EQ(Append(&b, B(1, 0, 2, 2), 100), ProducerCheck::kAppend);
  ASSERT_TRUE(WriteProducerSnapshot(&fs, dir, a, Offset(100)).ok());
  ASSERT_TRUE(WriteProducerSnapshot(&fs, dir, b, Offset(200)).ok());
  // Durable when written: a power loss keeps both.
  fs.Crash(FaultyFileSystem::CrashMode::kDropUnsynced);
  auto latest = LoadLatestProducerSnapshot(&fs, dir);
  ASSERT_TRUE(latest.ok()) << latest.status().ToString();
  ASSERT_TRUE(latest->snapshot.has_value());
  EXPECT_EQ(latest->snapshot->offset, Offset(200));
  EXPECT_TRUE(latest->snapshot->table == b);
  EXPECT_TRUE(latest->corrupt_files.empty());
  // At most 150 (a truncation to 150): the older one.
  auto upto = LoadLatestProducerSnapshot(&fs, dir, Offset(150));
  ASSERT_TRUE(upto.ok());
  EXPECT_EQ(upto->snapshot->offset, Offset(100));
  // A damaged newest file is passed over and named.
  fs.FlipBit(JoinPath(dir, ProducerSnapshotFileName(Offset(200))), 40, 3);
  auto fallback = LoadLatestProducerSnapshot(&fs, dir);
  ASSERT_TRUE(fallback.ok());
  ASSERT_TRUE(fallback->snapshot.has_value());
  EXPECT_EQ(fallback->snapshot->offset, Offset(100));
  EXPECT_TRUE(fallback->snapshot->table == a);
  EXPECT_EQ(fallback->corrupt_files,
            std::vector<std::string>{"00000000000000000200.producer-snapshot"});
  // A file whose name disagrees with its contents is corrupt too.
  ASSERT_TRUE(fs.Rename(JoinPath(dir, ProducerSnapshotFileName(Offset(100))),
                        JoinPath(dir, ProducerSnapshotFileName(Offset(90))))
                  .ok());
  auto renamed = LoadLatestProducerSnapshot(&fs, dir);
  ASSERT_TRUE(renamed.ok());
  EXPECT_FALSE(renamed->snapshot.has_value());
  EXPECT_EQ(renamed->corrupt_files.size(), 2u);
}

TEST(ProducerStateTest, RebuildReplaysExactlyTheBatchesFromTheSnapshotOffset) {
  ProducerStateTable t;
  ASSERT_EQ(Append(&t, B(1, 0, 0, 10), 0), ProducerCheck::kAppend);  // 0..9
  auto snap = ProducerStateTable::Parse(t.Serialize(Offset(10)));
  ASSERT_TRUE(snap.ok()) << snap.status().ToString();
  ASSERT_EQ(Append(&t, B(1, 0, 10, 2), 10), ProducerCheck::kAppend);  // 10..11
  std::vector<batch::Header> log(2, batch::Header{});
  log[0].base_offset = 0;
  log[0].last_offset_delta = 9;
  log[1].base_offset = 10;
  log[1].last_offset_delta = 1;
  log[1].base_sequence = 10;
  for (auto& h : log) h.producer_id = 1, h.producer_epoch = 0, h.max_timestamp = 77;
  size_t i = 0;
  ProducerStateTable rebuilt = ProducerStateTable::Rebuild(
      snap->table, snap->offset,
      [&](batch::Header* h) {
        if (i == log.size()) return false;
        *h = log[i++];
        return true;
      },
      kNow);
  ASSERT_NE(rebuilt.Find(1), nullptr);
  EXPECT_EQ(rebuilt.Find(1)->batches,
            (std::vector<ProducerBatch>{{0, 9, Offset(0), Offset(9), 77},
                                        {10, 11, Offset(10), Offset(11), 77}}));
  EXPECT_TRUE(rebuilt == t);
}

// A log of batches from several producers (epoch bumps, wrap-around, non-idempotent batches,
// retries that Check turns away) built through Check/Update; the headers of what was appended.
struct Built {
  ProducerStateTable table;
  std::vector<batch::Header> log;
};

Built BuildLog(uint64_t seed, size_t batches, Offset snapshot_at, std::string* snapshot) {
  std::mt19937_64 rng(seed);
  Built out;
  struct P {
    int16_t epoch = 0;
    int32_t next = 0;
  };
  std::vector<P> ps(8);
  ps[3].next = INT32_MAX - 20;  // wraps during the run
  int64_t off = 0;
  while (out.log.size() < batches) {
    if (Offset(off) >= snapshot_at && snapshot->empty())
      *snapshot = out.table.Serialize(Offset(off));
    const int who = static_cast<int>(rng() % 9);
    const int32_t count = 1 + static_cast<int32_t>(rng() % 4);
    batch::Header h{};
    h.base_offset = off;
    h.last_offset_delta = count - 1;
    h.max_timestamp = static_cast<int64_t>(rng() % 100000);
    if (who == 8) {
      h.producer_id = -1;
      h.producer_epoch = -1;
      h.base_sequence = -1;
    } else {
      P& p = ps[who];
      if (rng() % 20 == 0) p = {static_cast<int16_t>(p.epoch + 1), 0};  // epoch bump
      h.producer_id = 1000 + who;
      h.producer_epoch = p.epoch;
      h.base_sequence = p.next;
      if (rng() % 10 == 0) {
        // A retry of a batch already in the log: Check must turn it away.
        h.base_sequence = static_cast<int32_t>(p.next - count);
      }
    }
    const BatchIdentity b = BatchIdentity::FromHeader(h);
    const CheckResult r = out.table.Check(b);
    if (r.outcome != ProducerCheck::kAppend) continue;
    out.table.Update(b, Offset(off), Offset(h.last_offset()), kNow);
    if (who != 8) ps[who].next = NextSequence(b.last_sequence());
    out.log.push_back(h);
    off += count;
  }
  return out;
}

TEST(ProducerStateTest, RebuildFromSnapshotAndLaterBatchesEqualsTheDirectTable) {
  std::string snapshot;
  Built built = BuildLog(42, 400, Offset(300), &snapshot);
  ASSERT_FALSE(snapshot.empty());
  ASSERT_GE(built.table.size(), 8u);
  auto parsed = ProducerStateTable::Parse(snapshot);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_FALSE(parsed->table == built.table);  // the batches after it matter

  auto source = [&](size_t* i) {
    return [&built, i](batch::Header* h) {
      if (*i == built.log.size()) return false;
      *h = built.log[(*i)++];
      return true;
    };
  };
  size_t i = 0;
  ProducerStateTable from_snapshot =
      ProducerStateTable::Rebuild(parsed->table, parsed->offset, source(&i), kNow);
  EXPECT_EQ(i, built.log.size());
  EXPECT_TRUE(from_snapshot == built.table);
  EXPECT_EQ(from_snapshot.Serialize(Offset(9999)), built.table.Serialize(Offset(9999)));

  i = 0;
  ProducerStateTable from_log =
      ProducerStateTable::Rebuild(ProducerStateTable(), Offset(0), source(&i), kNow);
  EXPECT_TRUE(from_log == built.table);

  // Rebuild then answers as the leader did: the last batch of each producer is a duplicate.
  for (const auto& [id, e] : built.table.producers()) {
    const ProducerBatch& last = e.batches.back();
    CheckResult r =
        from_snapshot.Check({id, e.epoch, last.first_seq,
                             static_cast<int32_t>(last.last_offset - last.first_offset), 0});
    EXPECT_EQ(r.outcome, ProducerCheck::kDuplicate) << id;
    EXPECT_EQ(r.first_offset, last.first_offset) << id;
  }
}

}  // namespace
}  // namespace rill::storage
