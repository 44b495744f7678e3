#include "record_accumulator.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <random>
#include <thread>

namespace rill::client::internal {
namespace {

using namespace std::chrono_literals;

ProducerRecord Rec(std::string topic, std::optional<int32_t> partition, std::string value,
                   std::optional<std::string> key = std::nullopt) {
  ProducerRecord r;
  r.topic = std::move(topic);
  r.partition = partition;
  r.value = std::move(value);
  r.key = std::move(key);
  return r;
}

auto All = [](const TopicPartition&) { return true; };

struct Drained {
  int64_t records = 0;
  int64_t most_buffered = 0;  // the most buffer_memory seen taken
};

// Plays the sender until `writers` reaches 0: drains everything (as during a flush) and
// completes each batch, which frees its space and keeps the batch for reuse.
Drained DrainUntilWritersFinish(RecordAccumulator& acc, const std::atomic<int>& writers) {
  Drained d;
  while (true) {
    const bool last = writers.load() == 0;
    d.most_buffered = std::max(d.most_buffered, acc.buffered_bytes());
    acc.BeginFlush();
    for (auto& b : acc.Drain(0, 1 << 30, All)) {
      d.records += b->record_count();
      acc.Complete(std::move(b));
    }
    acc.EndFlush();
    if (last) break;
  }
  return d;
}

AccumulatorOptions Opts(int64_t batch_size, int64_t linger) {
  AccumulatorOptions o;
  o.batch_size = batch_size;
  o.linger_us = linger;
  return o;
}

// Options with a long linger (only a flush or a full batch makes a batch ready) and a buffer.
AccumulatorOptions Buffered(int64_t batch_size, int64_t buffer_memory, int64_t max_block_ms) {
  AccumulatorOptions o = Opts(batch_size, 60'000'000);
  o.buffer_memory = buffer_memory;
  o.max_block_ms = max_block_ms;
  return o;
}

TEST(RecordAccumulatorTest, UnknownTopicAndBadPartitionAreErrors) {
  RecordAccumulator acc(Opts(1000, 10));
  auto r = acc.Append(Rec("t", 0, "v"), 1, nullptr, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsNotFound());
  acc.SetPartitionCount("t", 2);
  auto bad = acc.Append(Rec("t", 2, "v"), 1, nullptr, 0);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(acc.buffered_bytes(), 0);
}

// Times are microseconds: a linger of half a millisecond (the producer's linger_ms = 0.5).
TEST(RecordAccumulatorTest, LingerDecidesWhenASmallBatchIsReady) {
  RecordAccumulator acc(Opts(1 << 20, 500));
  acc.SetPartitionCount("t", 1);
  ASSERT_TRUE(acc.Append(Rec("t", 0, "a"), 1, nullptr, 1000).ok());
  ASSERT_TRUE(acc.Append(Rec("t", 0, "b"), 1, nullptr, 1200).ok());
  EXPECT_EQ(acc.NextReadyDelay(1200), 300);  // linger counts from the first record
  EXPECT_TRUE(acc.Drain(1499, 1 << 20, All).empty());
  auto ready = acc.Drain(1500, 1 << 20, All);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0]->record_count(), 2);
  EXPECT_EQ(acc.NextReadyDelay(1500), -1);
}

TEST(RecordAccumulatorTest, BatchSizeClosesABatchBeforeLinger) {
  RecordAccumulator acc(Opts(300, 1000000));
  acc.SetPartitionCount("t", 1);
  // Each 100-byte record adds ~107 bytes to the 61-byte header: two fit in 300 bytes; the third
  // closes the batch (it becomes ready long before linger) and opens the next one.
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(acc.Append(Rec("t", 0, std::string(100, 'x')), 1, nullptr, 0).ok());
    EXPECT_NE(acc.NextReadyDelay(0), 0);
  }
  ASSERT_TRUE(acc.Append(Rec("t", 0, std::string(100, 'x')), 1, nullptr, 0).ok());
  EXPECT_EQ(acc.NextReadyDelay(0), 0);
  const int appended = 2;
  auto ready = acc.Drain(0, 1 << 20, All);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_TRUE(ready[0]->full);
  EXPECT_EQ(ready[0]->record_count(), appended);
  EXPECT_LE(static_cast<int64_t>(ready[0]->builder.estimated_size()), 300);
  ASSERT_TRUE(ready[0]->Build().ok());
  auto records = batch::DecodeRecords(ready[0]->bytes);
  ASSERT_TRUE(records.ok());
  EXPECT_EQ(static_cast<int>(records->size()), appended);
}

TEST(RecordAccumulatorTest, RecordThatDoesNotFitStartsANewBatch) {
  RecordAccumulator acc(Opts(250, 1000000));
  acc.SetPartitionCount("t", 1);
  ASSERT_TRUE(acc.Append(Rec("t", 0, std::string(100, 'a')), 1, nullptr, 0).ok());
  EXPECT_NE(acc.NextReadyDelay(0), 0);
  // 61 + ~110 + ~110 > 250: the first batch is closed (ready), the record opens a second one.
  ASSERT_TRUE(acc.Append(Rec("t", 0, std::string(100, 'b')), 1, nullptr, 0).ok());
  EXPECT_EQ(acc.NextReadyDelay(0), 0);
  auto ready = acc.Drain(0, 1 << 20, All);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0]->record_count(), 1);
  // A record larger than batch_size still gets a batch of its own.
  ASSERT_TRUE(acc.Append(Rec("t", 0, std::string(1000, 'c')), 1, nullptr, 0).ok());
  auto more = acc.Drain(0, 1 << 20, All);
  ASSERT_EQ(more.size(), 2u);
  EXPECT_EQ(more[0]->record_count(), 1);
  EXPECT_EQ(more[1]->record_count(), 1);
  EXPECT_LT(more[0]->sequence, more[1]->sequence);
}

TEST(RecordAccumulatorTest, FlushMakesEverythingReady) {
  RecordAccumulator acc(Opts(1 << 20, 1000000));
  acc.SetPartitionCount("t", 3);
  for (int p = 0; p < 3; ++p) ASSERT_TRUE(acc.Append(Rec("t", p, "v"), 1, nullptr, 0).ok());
  EXPECT_TRUE(acc.Drain(1, 1 << 20, All).empty());
  acc.BeginFlush();
  EXPECT_EQ(acc.Drain(1, 1 << 20, All).size(), 3u);
  acc.EndFlush();
}

TEST(RecordAccumulatorTest, DrainRespectsMaxBytesAndSendable) {
  RecordAccumulator acc(Opts(1 << 20, 0));
  acc.SetPartitionCount("t", 4);
  for (int p = 0; p < 4; ++p) {
    ASSERT_TRUE(acc.Append(Rec("t", p, std::string(1000, 'x')), 1, nullptr, 0).ok());
  }
  auto none = acc.Drain(0, 1 << 20, [](const TopicPartition&) { return false; });
  EXPECT_TRUE(none.empty());
  auto odd = acc.Drain(0, 1 << 20, [](const TopicPartition& tp) { return tp.partition % 2 == 1; });
  ASSERT_EQ(odd.size(), 2u);
  // max_bytes below two batches: one per drain, but always at least one.
  auto one = acc.Drain(0, 1500, All);
  EXPECT_EQ(one.size(), 1u);
  auto two = acc.Drain(0, 10, All);
  EXPECT_EQ(two.size(), 1u);
  EXPECT_TRUE(acc.Drain(0, 1 << 20, All).empty());
}

TEST(RecordAccumulatorTest, KeyedRecordsGoToTheirMurmur2Partition) {
  RecordAccumulator acc(Opts(1 << 20, 0));
  acc.SetPartitionCount("t", 10);
  auto r = acc.Append(Rec("t", std::nullopt, "v", "21"), 1, nullptr, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->partition, KeyPartition("21", 10));
  auto r2 = acc.Append(Rec("t", std::nullopt, "v", "foobar"), 1, nullptr, 0);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->partition, KeyPartition("foobar", 10));
}

TEST(RecordAccumulatorTest, NullKeysStickToOnePartitionUntilItsBatchCloses) {
  RecordAccumulator acc(Opts(400, 1000000), /*seed=*/3);
  acc.SetPartitionCount("t", 4);
  auto first = acc.Append(Rec("t", std::nullopt, std::string(100, 'x')), 1, nullptr, 0);
  ASSERT_TRUE(first.ok());
  const int32_t sticky = first->partition;
  int32_t p = sticky;
  int same = 1;
  while (p == sticky) {
    auto r = acc.Append(Rec("t", std::nullopt, std::string(100, 'x')), 1, nullptr, 0);
    ASSERT_TRUE(r.ok());
    p = r->partition;
    if (p == sticky) ++same;
    ASSERT_LT(same, 10);
  }
  // It moved exactly when the sticky partition's batch filled up.
  EXPECT_GE(same, 2);
  auto ready = acc.Drain(0, 1 << 20, All);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0]->tp.partition, sticky);
  EXPECT_EQ(ready[0]->record_count(), same);
  // Draining the new sticky partition's open batch (linger) moves it again.
  auto r = acc.Append(Rec("t", std::nullopt, "y"), 1, nullptr, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->partition, p);
  acc.BeginFlush();
  ASSERT_EQ(acc.Drain(0, 1 << 20, All).size(), 1u);
  acc.EndFlush();
  auto after = acc.Append(Rec("t", std::nullopt, "z"), 1, nullptr, 0);
  ASSERT_TRUE(after.ok());
  EXPECT_NE(after->partition, p);
}

TEST(RecordAccumulatorTest, ReenqueuedBatchGoesFirstAndWaitsForBackoff) {
  RecordAccumulator acc(Opts(1 << 20, 0));
  acc.SetPartitionCount("t", 1);
  ASSERT_TRUE(acc.Append(Rec("t", 0, "first"), 1, nullptr, 0).ok());
  auto b1 = acc.Drain(0, 1 << 20, All);
  ASSERT_EQ(b1.size(), 1u);
  ASSERT_TRUE(acc.Append(Rec("t", 0, "second"), 1, nullptr, 0).ok());
  acc.Reenqueue(std::move(b1[0]), /*retry_at_us=*/50);
  // The retried batch blocks the partition until its backoff passes: order is kept.
  EXPECT_TRUE(acc.Drain(10, 1 << 20, All).empty());
  EXPECT_EQ(acc.NextReadyDelay(10), 40);
  auto both = acc.Drain(50, 1 << 20, All);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_LT(both[0]->sequence, both[1]->sequence);
}


TEST(RecordAccumulatorTest, ABatchAwaitingALeaderGoesAtOnceWhenAnotherLeaderIsNamed) {
  RecordAccumulator acc(Opts(1 << 20, 0));
  acc.SetPartitionCount("t", 2);
  ASSERT_TRUE(acc.Append(Rec("t", 0, "to-the-dead-leader"), 1, nullptr, 0).ok());
  ASSERT_TRUE(acc.Append(Rec("t", 1, "refused-for-lack-of-replicas"), 1, nullptr, 0).ok());
  auto sent = acc.Drain(0, 1 << 20, All);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_FALSE(acc.AwaitingLeader());
  for (auto& b : sent) b->sent_to = 1;
  sent[0]->awaits_leader = true;   // its leader's stream broke: waits for a leader
  sent[1]->awaits_leader = false;  // NOT_ENOUGH_REPLICAS: the leader stays, the backoff too
  acc.Reenqueue(std::move(sent[0]), /*retry_at_us=*/800);
  acc.Reenqueue(std::move(sent[1]), /*retry_at_us=*/800);
  EXPECT_TRUE(acc.AwaitingLeader());

  // Metadata still names node 1: nothing changes.
  auto leader_is = [](int32_t node) {
    return [node](const ProducerBatch& b) { return node != b.sent_to; };
  };
  EXPECT_EQ(acc.ExpediteRetries(leader_is(1)), 0u);
  EXPECT_TRUE(acc.Drain(100, 1 << 20, All).empty());
  // Node 2 leads now: the batch that waited for a leader is ready at once, the other is not.
  EXPECT_EQ(acc.ExpediteRetries(leader_is(2)), 1u);
  EXPECT_FALSE(acc.AwaitingLeader());
  auto ready = acc.Drain(100, 1 << 20, All);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0]->tp.partition, 0);
  EXPECT_EQ(acc.NextReadyDelay(100), 700);
}

// Drain and NextReadyDelay read an index of when each partition's head batch becomes ready
// instead of every queue's head. Against a model of the queues, over many partitions and a
// seeded mix of appends, drains (some partitions not sendable, small byte budgets, some during a
// flush), retries put back with a backoff, expedited retries and expiry: every Drain takes
// exactly the ready head batches of the sendable partitions, and NextReadyDelay names exactly
// when the next is due. A stale index entry shows as a batch left behind or a wrong delay.
TEST(RecordAccumulatorTest, DrainAndNextReadyDelayMatchAModelOverManyPartitions) {
  constexpr int kPartitions = 64;
  constexpr int64_t kLinger = 1000;
  constexpr int64_t kTimeout = 40'000;  // delivery timeout: some batches expire
  AccumulatorOptions o = Opts(1 << 20, kLinger);
  o.delivery_timeout_us = kTimeout;
  RecordAccumulator acc(o);
  acc.SetPartitionCount("t", kPartitions);
  struct Entry {
    uint64_t sequence;
    int64_t created;
    bool built;  // a retry: ready at its retry time, whatever the linger
    int64_t retry_at;
    bool awaits_leader;
  };
  std::vector<std::deque<Entry>> model(kPartitions);
  std::vector<uint64_t> next_sequence(kPartitions, 0);
  const auto ready_at = [&](const Entry& e) {
    return e.built ? e.retry_at : std::max(e.retry_at, e.created + kLinger);
  };
  // While a flush is in progress a batch is ready at its retry time, whatever its linger.
  const auto expected_delay = [&](int64_t now, bool flushing) {
    int64_t at = INT64_MAX;
    for (const auto& q : model) {
      if (!q.empty()) at = std::min(at, flushing ? q.front().retry_at : ready_at(q.front()));
    }
    return at == INT64_MAX ? -1 : std::max<int64_t>(0, at - now);
  };
  std::mt19937_64 rng(20261207);
  std::vector<std::unique_ptr<ProducerBatch>> out;  // drained, not yet put back
  int64_t now = 0;
  for (int step = 0; step < 20'000; ++step) {
    now += static_cast<int64_t>(rng() % 200);
    const int op = static_cast<int>(rng() % 100);
    if (op < 50) {
      const int p = static_cast<int>(rng() % kPartitions);
      ASSERT_TRUE(acc.Append(Rec("t", p, "v"), 1, nullptr, now).ok());
      auto& q = model[p];
      if (q.empty() || q.back().built) q.push_back({next_sequence[p]++, now, false, 0, false});
    } else if (op < 75) {
      // Drain with a random set of sendable partitions, sometimes a budget of one batch, and
      // sometimes during a flush (every head past its retry time is ready).
      const uint64_t mask = rng();
      const auto sendable = [&](const TopicPartition& tp) { return (mask >> tp.partition) & 1; };
      const bool one = rng() % 4 == 0;
      const bool flushing = rng() % 5 == 0;
      if (flushing) acc.BeginFlush();
      auto got = acc.Drain(now, one ? 1 : 1 << 30, sendable);
      std::vector<int> want(kPartitions, 0);
      int total = 0;
      for (int p = 0; p < kPartitions; ++p) {
        if (!((mask >> p) & 1)) continue;
        for (const Entry& e : model[p]) {
          if ((flushing ? e.retry_at : ready_at(e)) > now) break;
          ++want[p];
          ++total;
        }
      }
      if (one) {
        ASSERT_LE(got.size(), 1u);
        ASSERT_EQ(got.empty(), total == 0) << "step " << step;
      } else {
        ASSERT_EQ(static_cast<int>(got.size()), total) << "step " << step;
      }
      for (auto& b : got) {
        const int p = b->tp.partition;
        ASSERT_FALSE(model[p].empty());
        ASSERT_EQ(b->sequence, model[p].front().sequence) << "step " << step;
        model[p].pop_front();
        ASSERT_TRUE(b->Build().ok());
        out.push_back(std::move(b));
      }
      if (flushing) {
        ASSERT_EQ(acc.NextReadyDelay(now), expected_delay(now, true)) << "step " << step;
        acc.EndFlush();
      }
    } else if (op < 90 && !out.empty()) {
      // Put back a drained batch for a retry, ahead of its partition's later batches.
      const size_t i = rng() % out.size();
      std::unique_ptr<ProducerBatch> b = std::move(out[i]);
      out.erase(out.begin() + static_cast<std::ptrdiff_t>(i));
      const int64_t retry_at = now + static_cast<int64_t>(rng() % 3000);
      b->awaits_leader = rng() % 3 == 0;
      auto& q = model[b->tp.partition];
      const Entry e{b->sequence, b->created_us, true, retry_at, b->awaits_leader};
      q.insert(std::find_if(q.begin(), q.end(),
                            [&](const Entry& x) { return x.sequence > e.sequence; }),
               e);
      acc.Reenqueue(std::move(b), retry_at);
    } else if (op < 95) {
      // A new leader for the retries waiting for one: they are ready at once.
      size_t n = 0;
      for (auto& q : model) {
        for (Entry& e : q) {
          if (!e.awaits_leader) continue;
          e.awaits_leader = false;
          e.retry_at = 0;
          ++n;
        }
      }
      ASSERT_EQ(acc.ExpediteRetries([](const ProducerBatch&) { return true; }), n);
    } else {
      size_t n = 0;
      for (auto& q : model) {
        n += static_cast<size_t>(std::erase_if(
            q, [&](const Entry& e) { return now - e.created >= kTimeout; }));
      }
      ASSERT_EQ(acc.Expire(now).size(), n) << "step " << step;
    }
    ASSERT_EQ(acc.NextReadyDelay(now), expected_delay(now, false)) << "step " << step;
  }
}

// Every way a partition's open batch (the one Appends go to) leaves the queue must make the next
// Append start a new batch, never write into one that was drained, expired or taken (ASan
// reports a write into a freed batch); a retry put back goes ahead of the open batch, which
// Appends keep filling.
TEST(RecordAccumulatorTest, AnAppendAfterTheOpenBatchLeftGoesToANewBatch) {
  AccumulatorOptions o = Opts(1 << 20, 1000000);
  o.delivery_timeout_us = 100;
  RecordAccumulator acc(o);
  acc.SetPartitionCount("t", 1);
  auto append = [&](const std::string& v, int64_t now) {
    ASSERT_TRUE(acc.Append(Rec("t", 0, v), 1, nullptr, now).ok());
  };
  auto expect_one_batch_of_one = [&](std::vector<std::unique_ptr<ProducerBatch>> batches) {
    ASSERT_EQ(batches.size(), 1u);
    EXPECT_EQ(batches[0]->record_count(), 1);
    acc.Complete(std::move(batches[0]));  // kept for reuse: the next batch may be this object
  };

  // Drained while still open (a flush makes it ready before its linger).
  append("a", 0);
  acc.BeginFlush();
  auto drained = acc.Drain(0, 1 << 20, All);
  acc.EndFlush();
  append("b", 0);
  expect_one_batch_of_one(std::move(drained));

  // Expired while open ("b" was appended at 0, "c" starts a new batch after the expiry).
  expect_one_batch_of_one(acc.Expire(100));
  append("c", 100);

  // Taken while open (shutdown).
  expect_one_batch_of_one(acc.TakeAll());
  append("d", 200);

  // Put back for a retry behind the open batch: Appends keep going to the open one.
  acc.BeginFlush();
  auto sent = acc.Drain(200, 1 << 20, All);
  acc.EndFlush();
  ASSERT_EQ(sent.size(), 1u);
  ASSERT_TRUE(sent[0]->Build().ok());
  append("e", 200);
  acc.Reenqueue(std::move(sent[0]), 0);
  append("f", 200);
  acc.BeginFlush();
  auto both = acc.Drain(200, 1 << 20, All);
  acc.EndFlush();
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[0]->record_count(), 1);  // "d", retried
  EXPECT_EQ(both[1]->record_count(), 2);  // "e" and "f"
  for (auto& b : both) acc.Complete(std::move(b));
  EXPECT_EQ(acc.buffered_bytes(), 0);
}

TEST(RecordAccumulatorTest, ExpireRemovesOldBatches) {
  AccumulatorOptions o = Opts(1 << 20, 1000000);
  o.delivery_timeout_us = 100;
  RecordAccumulator acc(o);
  acc.SetPartitionCount("t", 1);
  ASSERT_TRUE(acc.Append(Rec("t", 0, "v"), 1, nullptr, 0).ok());
  EXPECT_TRUE(acc.Expire(99).empty());
  auto expired = acc.Expire(100);
  ASSERT_EQ(expired.size(), 1u);
  acc.Release(expired[0]->buffer_bytes);
  EXPECT_EQ(acc.buffered_bytes(), 0);
}

TEST(RecordAccumulatorTest, FullBufferBlocksThenFailsAfterMaxBlock) {
  AccumulatorOptions o = Opts(1 << 20, 0);
  o.buffer_memory = 300;
  o.max_block_ms = 30;
  RecordAccumulator acc(o);
  acc.SetPartitionCount("t", 1);
  ASSERT_TRUE(acc.Append(Rec("t", 0, std::string(100, 'x')), 1, nullptr, 0).ok());
  ASSERT_TRUE(acc.Append(Rec("t", 0, std::string(100, 'x')), 1, nullptr, 0).ok());
  auto r = acc.Append(Rec("t", 0, std::string(100, 'x')), 1, nullptr, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("buffer full"), std::string::npos) << r.status().ToString();
  // A record larger than the whole buffer fails at once with its own message.
  auto huge = acc.Append(Rec("t", 0, std::string(1000, 'x')), 1, nullptr, 0);
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("larger than buffer_memory"), std::string::npos);
}

TEST(RecordAccumulatorTest, ReleasingSpaceUnblocksAWaitingAppend) {
  AccumulatorOptions o = Opts(1 << 20, 0);
  o.buffer_memory = 300;
  o.max_block_ms = 60000;
  RecordAccumulator acc(o);
  acc.SetPartitionCount("t", 1);
  ASSERT_TRUE(acc.Append(Rec("t", 0, std::string(100, 'x')), 1, nullptr, 0).ok());
  ASSERT_TRUE(acc.Append(Rec("t", 0, std::string(100, 'x')), 1, nullptr, 0).ok());
  auto drained = acc.Drain(0, 1 << 20, All);
  ASSERT_EQ(drained.size(), 1u);
  std::atomic<bool> done{false};
  Status result;
  std::thread t([&] {
    auto r = acc.Append(Rec("t", 0, std::string(100, 'x')), 1, nullptr, 0);
    result = r.status();
    done = true;
  });
  // The third append blocks (max_block_ms is a minute) until the drained batch completes;
  // if Release did not wake it, it would fail with ResourceExhausted.
  acc.Release(drained[0]->buffer_bytes);
  t.join();
  EXPECT_TRUE(result.ok()) << result.ToString();
  EXPECT_TRUE(done.load());
}

TEST(RecordAccumulatorTest, ConcurrentAppendsAndDrainsLoseNothing) {
  RecordAccumulator acc(Opts(2000, 0));
  acc.SetPartitionCount("t", 3);
  constexpr int kThreads = 3, kPerThread = 2000;
  std::atomic<int> writers{kThreads};
  std::vector<std::thread> ts;
  for (int i = 0; i < kThreads; ++i) {
    ts.emplace_back([&, i] {
      for (int j = 0; j < kPerThread; ++j) {
        ASSERT_TRUE(acc.Append(Rec("t", std::nullopt, "v" + std::to_string(j),
                                   "k" + std::to_string(i * kPerThread + j)),
                               1, nullptr, j)
                        .ok());
      }
      writers--;
    });
  }
  const Drained d = DrainUntilWritersFinish(acc, writers);
  for (auto& t : ts) t.join();
  EXPECT_EQ(d.records, kThreads * kPerThread);
  EXPECT_EQ(acc.buffered_bytes(), 0);
}

TEST(RecordAccumulatorTest, AppendsWaitingForSpaceNeverTakeMoreThanTheBuffer) {
  // Three writers against a buffer of a few records, a drainer completing batches: the space
  // count is taken without the queue lock, so check it never overshoots and nothing is lost.
  AccumulatorOptions o = Opts(1000, 0);
  o.buffer_memory = 1200;
  o.max_block_ms = 60000;
  RecordAccumulator acc(o);
  acc.SetPartitionCount("t", 2);
  constexpr int kThreads = 3, kPerThread = 1500;
  std::atomic<int> writers{kThreads};
  std::vector<std::thread> ts;
  for (int i = 0; i < kThreads; ++i) {
    ts.emplace_back([&, i] {
      for (int j = 0; j < kPerThread; ++j) {
        auto r = acc.Append(Rec("t", (i + j) % 2, std::string(100, 'x')), 1, nullptr, 0);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
      }
      writers--;
    });
  }
  const Drained d = DrainUntilWritersFinish(acc, writers);
  for (auto& t : ts) t.join();
  EXPECT_EQ(d.records, kThreads * kPerThread);
  EXPECT_LE(d.most_buffered, o.buffer_memory);
  EXPECT_EQ(acc.buffered_bytes(), 0);
}

// What the batches hold of memory: their buffers' capacity. Drains every batch (a flush).
int64_t DrainAllCapacity(RecordAccumulator& acc, std::vector<std::unique_ptr<ProducerBatch>>* out) {
  acc.BeginFlush();
  *out = acc.Drain(0, int64_t{1} << 40, All);
  acc.EndFlush();
  int64_t capacity = 0;
  for (const auto& b : *out) {
    EXPECT_GE(b->buffer_bytes, static_cast<int64_t>(b->builder.capacity()));
    capacity += static_cast<int64_t>(b->builder.capacity());
  }
  return capacity;
}

TEST(RecordAccumulatorTest, BatchBuffersOverManyPartitionsStayWithinBufferMemory) {
  // A thousand partitions each starting a batch: each batch's buffer counts by its capacity, so
  // buffer_memory bounds them all (it bounded only the records' bytes, and the buffers of a
  // thousand batches reached 2-3 times buffer_memory).
  const AccumulatorOptions o = Buffered(256 << 10, 256 << 10, 0);
  RecordAccumulator acc(o);
  acc.SetPartitionCount("t", 1000);
  int appended = 0, refused = 0;
  for (int i = 0; i < 3000; ++i) {
    auto r = acc.Append(Rec("t", i % 1000, std::string(100, 'x')), 1, nullptr, 0);
    if (r.ok()) {
      ++appended;
    } else {
      ASSERT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
      ++refused;
    }
    ASSERT_LE(acc.buffered_bytes() + acc.pool()->pooled_bytes(), o.buffer_memory);
  }
  EXPECT_GT(appended, 16);  // at least the first batches got their 16 KiB
  EXPECT_GT(refused, 0);    // 3,000 records of 100 B would fit; a thousand batches do not
  std::vector<std::unique_ptr<ProducerBatch>> batches;
  const int64_t capacity = DrainAllCapacity(acc, &batches);
  EXPECT_LE(capacity, o.buffer_memory);
  EXPECT_EQ(acc.buffered_bytes(), capacity);
  int64_t records = 0;
  for (auto& b : batches) {
    records += b->record_count();
    acc.Complete(std::move(b));
  }
  EXPECT_EQ(records, appended);
  EXPECT_EQ(acc.buffered_bytes(), 0);
  EXPECT_LE(acc.pool()->pooled_bytes(), o.buffer_memory);
}

TEST(RecordAccumulatorTest, AGrowingBatchTakesBufferMemoryForItsGrowth) {
  const AccumulatorOptions o = Buffered(1 << 20, 100 << 10, 30);
  RecordAccumulator acc(o);
  acc.SetPartitionCount("t", 1);
  // 16 KiB to start, then the buffer doubles: 32, 64, and then only what is left of 100 KiB.
  int appended = 0;
  Status last;
  for (int i = 0; i < 2000; ++i) {
    auto r = acc.Append(Rec("t", 0, std::string(100, 'x')), 1, nullptr, 0);
    if (!r.ok()) {
      last = r.status();
      break;
    }
    ++appended;
    ASSERT_LE(acc.buffered_bytes(), o.buffer_memory);
  }
  EXPECT_EQ(last.code(), StatusCode::kResourceExhausted) << last.ToString();
  EXPECT_NE(last.message().find("buffer full"), std::string::npos) << last.ToString();
  EXPECT_GT(appended * 100, 90 << 10);  // the batch grew to use nearly all of it
  std::vector<std::unique_ptr<ProducerBatch>> batches;
  const int64_t capacity = DrainAllCapacity(acc, &batches);
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0]->record_count(), appended);
  EXPECT_EQ(acc.buffered_bytes(), capacity);
  EXPECT_LE(capacity, o.buffer_memory);
  // Built and sent, its bytes carry the charge until the request lets go of them.
  ASSERT_TRUE(batches[0]->Build().ok());
  auto sent =
      acc.pool()->Wrap(std::move(batches[0]->bytes), std::exchange(batches[0]->buffer_bytes, 0));
  acc.Complete(std::move(batches[0]));
  EXPECT_EQ(acc.buffered_bytes(), capacity);
  sent.reset();
  EXPECT_EQ(acc.buffered_bytes(), 0);
  EXPECT_EQ(acc.pool()->pooled_buffers(), 1u);  // kept for the next batch
}

TEST(RecordAccumulatorTest, AnAppendWaitingForRoomTakesItWhenASentBatchIsAnswered) {
  const AccumulatorOptions o = Buffered(1 << 20, 64 << 10, 60000);
  RecordAccumulator acc(o);
  acc.SetPartitionCount("t", 8);
  for (int p = 0; p < 4; ++p) {  // four batches of 16 KiB take all of it
    ASSERT_TRUE(acc.Append(Rec("t", p, std::string(100, 'x')), 1, nullptr, 0).ok());
  }
  std::vector<std::unique_ptr<ProducerBatch>> batches;
  DrainAllCapacity(acc, &batches);
  ASSERT_EQ(batches.size(), 4u);
  ASSERT_TRUE(batches[0]->Build().ok());
  auto sent =
      acc.pool()->Wrap(std::move(batches[0]->bytes), std::exchange(batches[0]->buffer_bytes, 0));
  acc.Complete(std::move(batches[0]));  // answered, but gRPC still holds the bytes
  Status result;
  std::thread t(
      [&] { result = acc.Append(Rec("t", 5, std::string(100, 'x')), 1, nullptr, 0).status(); });
  sent.reset();  // the bytes come back: their charge with them
  t.join();
  EXPECT_TRUE(result.ok()) << result.ToString();
  for (size_t i = 1; i < batches.size(); ++i) acc.Complete(std::move(batches[i]));
  acc.BeginFlush();
  for (auto& b : acc.Drain(0, 1 << 30, All)) acc.Complete(std::move(b));
  acc.EndFlush();
  acc.WaitUntilEmpty();
  EXPECT_EQ(acc.buffered_bytes(), 0);
}

TEST(RecordAccumulatorTest, ReadyAtTellsWhenANewBatchIsDue) {
  RecordAccumulator acc(Opts(300, 10));
  acc.SetPartitionCount("t", 2);
  auto first = acc.Append(Rec("t", 0, std::string(100, 'x')), 1, nullptr, 100);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->wake_sender);  // a new batch
  EXPECT_EQ(first->ready_at_us, 110);
  auto second = acc.Append(Rec("t", 0, std::string(100, 'x')), 1, nullptr, 103);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->wake_sender);  // joined the batch the sender knows of
  // The third record does not fit: the full batch is ready now (and a new one starts).
  auto third = acc.Append(Rec("t", 0, std::string(100, 'x')), 1, nullptr, 104);
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->wake_sender);
  EXPECT_EQ(third->ready_at_us, RecordAccumulator::kReadyNow);
  // While a flush is in progress a new batch is ready at once.
  acc.BeginFlush();
  auto flushed = acc.Append(Rec("t", 1, "v"), 1, nullptr, 105);
  ASSERT_TRUE(flushed.ok());
  EXPECT_TRUE(flushed->wake_sender);
  EXPECT_EQ(flushed->ready_at_us, RecordAccumulator::kReadyNow);
  acc.EndFlush();
}

TEST(RecordAccumulatorTest, ANewBatchIsBuiltInARecycledBuffer) {
  RecordAccumulator acc(Opts(1 << 20, 0));
  acc.SetPartitionCount("t", 1);
  std::string recycled;
  recycled.reserve(24 << 10);  // a new batch wants 16 KiB: at most twice that is taken
  const char* storage = recycled.data();
  acc.pool()->Put(std::move(recycled));
  EXPECT_EQ(acc.pool()->pooled_buffers(), 1u);
  ASSERT_TRUE(acc.Append(Rec("t", 0, "hello"), 1, nullptr, 0).ok());
  EXPECT_EQ(acc.pool()->pooled_buffers(), 0u);
  auto drained = acc.Drain(0, 1 << 20, All);
  ASSERT_EQ(drained.size(), 1u);
  ASSERT_TRUE(drained[0]->Build().ok());
  EXPECT_EQ(drained[0]->bytes.data(), storage);  // no new allocation for the batch
  auto reader = batch::BatchReader::Open(drained[0]->bytes);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  batch::RecordView v;
  auto next = reader->Next(&v);
  ASSERT_TRUE(next.ok() && *next);
  EXPECT_EQ(v.value, std::optional<std::string_view>("hello"));
  acc.Release(drained[0]->buffer_bytes);
}

TEST(BufferPoolTest, KeepsAtMostItsBoundAndReusesTheLastBufferFirst) {
  auto pool = std::make_shared<BufferPool>(10000);
  std::string a, b, c, tiny;
  a.reserve(4000);
  b.reserve(4000);
  c.reserve(4000);
  const char* b_storage = b.data();
  pool->Put(std::move(a));
  pool->Put(std::move(b));
  pool->Put(std::move(c));     // 12,000 bytes would pass the bound of 10,000: freed
  pool->Put(std::move(tiny));  // too small to keep
  EXPECT_EQ(pool->pooled_buffers(), 2u);
  EXPECT_GE(pool->pooled_bytes(), 8000);
  EXPECT_LE(pool->pooled_bytes(), 10000);
  int64_t charged = 0;
  std::optional<std::string> taken = pool->TryTake(100, 3000, &charged);
  ASSERT_TRUE(taken.has_value());
  EXPECT_EQ(taken->data(), b_storage);  // the last returned
  EXPECT_TRUE(taken->empty());
  EXPECT_EQ(charged, static_cast<int64_t>(taken->capacity()));  // charged by its capacity
  EXPECT_EQ(pool->charged(), charged);
  EXPECT_EQ(pool->pooled_buffers(), 1u);
  // Larger than any kept buffer, and than the budget has beside the charged and pooled ones:
  // the pooled buffer is freed to make room for a new one of what is left.
  int64_t charged2 = 0;
  std::optional<std::string> fresh = pool->TryTake(5000, 100000, &charged2);
  ASSERT_TRUE(fresh.has_value());
  EXPECT_EQ(pool->pooled_buffers(), 0u);
  EXPECT_EQ(pool->pooled_bytes(), 0);
  EXPECT_EQ(charged2, 10000 - charged);
  EXPECT_GE(static_cast<int64_t>(fresh->capacity()), charged2);
  EXPECT_EQ(pool->charged(), 10000);
  // Nothing is left for even a small buffer, or a charge, until something is given back.
  int64_t none = 0;
  EXPECT_FALSE(pool->TryTake(1, 1, &none).has_value());
  EXPECT_FALSE(pool->TryCharge(1));
  pool->Return(std::move(*taken), charged);
  EXPECT_EQ(pool->charged(), 10000 - charged);
  EXPECT_EQ(pool->pooled_buffers(), 1u);  // room for it again beside the other
  EXPECT_TRUE(pool->TryCharge(charged));  // frees it to make room
  EXPECT_EQ(pool->pooled_buffers(), 0u);
}

TEST(BufferPoolTest, ALargePooledBufferIsNotTakenForASmallBatch) {
  // Capacities only grow; a pooled buffer taken for a batch much smaller than it would charge
  // the batch for all of it, and over many partitions the pool would drift up until small
  // batches spent the budget (a 15 M-record run over 1,000 partitions fell to 88k records/s).
  auto pool = std::make_shared<BufferPool>(100000);
  std::string large;
  large.reserve(40000);
  pool->Put(std::move(large));
  int64_t charged = 0;
  std::optional<std::string> small = pool->TryTake(100, 4000, &charged);
  ASSERT_TRUE(small.has_value());
  EXPECT_EQ(charged, 4000);  // a new buffer of what the batch wants
  EXPECT_EQ(pool->pooled_buffers(), 1u);
  // Within twice what is wanted it is taken; and when a charge needs its room, it is freed.
  int64_t charged2 = 0;
  std::optional<std::string> big = pool->TryTake(100, 30000, &charged2);
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(charged2, static_cast<int64_t>(big->capacity()));
  EXPECT_GE(charged2, 40000);
  pool->Return(std::move(*big), charged2);
  EXPECT_EQ(pool->pooled_buffers(), 1u);
  EXPECT_TRUE(pool->TryCharge(90000));
  EXPECT_EQ(pool->pooled_buffers(), 0u);
  EXPECT_EQ(pool->charged(), 94000);
}

TEST(BufferPoolTest, WrappedBytesComeBackWhenTheirLastOwnerLetsGo) {
  auto pool = std::make_shared<BufferPool>(1 << 20);
  pool->Wrap(std::string(3000, 'z')).reset();
  EXPECT_EQ(pool->pooled_buffers(), 1u);
  int64_t charged = 0;
  ASSERT_TRUE(pool->TryTake(0, 2000, &charged).has_value());
  EXPECT_EQ(pool->pooled_buffers(), 0u);
  pool->Uncharge(charged);
  std::string bytes(5000, 'x');
  const char* storage = bytes.data();
  ASSERT_TRUE(pool->TryCharge(6000));
  std::shared_ptr<std::string> wrapped = pool->Wrap(std::move(bytes), 6000);
  EXPECT_EQ(wrapped->data(), storage);
  // A second owner on another thread (as a gRPC slice would be) outlives the first.
  std::shared_ptr<std::string> other = wrapped;
  wrapped.reset();
  EXPECT_EQ(pool->pooled_buffers(), 0u);
  EXPECT_EQ(pool->charged(), 6000);  // the charge stays with the bytes
  std::weak_ptr<BufferPool> weak = pool;
  BufferPool* raw = pool.get();
  std::thread t([o = std::move(other)]() mutable { o.reset(); });
  t.join();
  EXPECT_EQ(raw->charged(), 0);  // and goes back with them
  EXPECT_EQ(raw->pooled_buffers(), 1u);
  auto last = raw->Wrap(std::string(2000, 'l'));
  pool.reset();  // the owner of the pool is gone; the wrapped bytes keep it alive
  EXPECT_FALSE(weak.expired());
  last.reset();
  EXPECT_TRUE(weak.expired());  // and let go of it with the last bytes
}

TEST(BufferPoolTest, ConcurrentTakesAndReturnsStayWithinTheBound) {
  auto pool = std::make_shared<BufferPool>(64 << 10);
  std::atomic<int64_t> most{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 3; ++i) {
    ts.emplace_back([&] {
      for (int j = 0; j < 3000; ++j) {
        int64_t charged = 0;
        std::optional<std::string> s;
        while (!(s = pool->TryTake(4096, 8192, &charged))) std::this_thread::yield();
        s->append(100, 'y');
        int64_t seen = pool->charged() + pool->pooled_bytes();
        int64_t prev = most.load();
        while (seen > prev && !most.compare_exchange_weak(prev, seen)) {
        }
        auto w = pool->Wrap(std::move(*s), charged);
        w.reset();
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(pool->charged(), 0);
  EXPECT_LE(pool->pooled_bytes(), 64 << 10);
  EXPECT_GE(pool->pooled_buffers(), 1u);
  // Read separately, charged and pooled may straddle a move from one to the other: allow one
  // buffer of slack on the sum of two reads.
  EXPECT_LE(most.load(), (64 << 10) + 8192);
}

TEST(BufferPoolTest, KeepsOnlyWhatTheChargedBuffersLeaveOfTheBound) {
  auto pool = std::make_shared<BufferPool>(10000);
  ASSERT_TRUE(pool->TryCharge(7000));
  std::string a, b;
  a.reserve(2000);
  b.reserve(2000);
  pool->Put(std::move(a));  // 7,000 + 2,000 fit in 10,000
  pool->Put(std::move(b));  // 7,000 + 4,000 do not: freed
  EXPECT_EQ(pool->pooled_buffers(), 1u);
  pool->Uncharge(7000);
  std::string c;
  c.reserve(2000);
  pool->Put(std::move(c));
  EXPECT_EQ(pool->pooled_buffers(), 2u);
  // Once detached (the accumulator is gone) the pool keeps nothing.
  auto wrapped = pool->Wrap(std::string(3000, 'w'));
  pool->Detach();
  EXPECT_EQ(pool->pooled_buffers(), 0u);
  wrapped.reset();
  EXPECT_EQ(pool->pooled_buffers(), 0u);
}

TEST(BufferPoolTest, AWaiterWakesWhenAChargeComesBackAndFailsOnClose) {
  auto pool = std::make_shared<BufferPool>(10000);
  ASSERT_TRUE(pool->TryCharge(9000));
  const auto soon = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
  Status st = pool->WaitFor(2000, soon);
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.ToString();
  Status woken;
  std::thread t([&] { woken = pool->WaitFor(2000, std::chrono::steady_clock::now() + 60s); });
  pool->Uncharge(5000);
  t.join();
  EXPECT_TRUE(woken.ok()) << woken.ToString();
  ASSERT_TRUE(pool->TryCharge(5500));  // 9,500 now
  std::thread closed([&] { woken = pool->WaitFor(2000, std::chrono::steady_clock::now() + 60s); });
  pool->Close();
  closed.join();
  EXPECT_EQ(woken.code(), StatusCode::kFailed) << woken.ToString();
}

}  // namespace
}  // namespace rill::client::internal
