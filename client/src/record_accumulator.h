#pragma once

// RecordAccumulator: the producer's per-partition batches, between Send() and the sender thread.
//
// Each partition has a queue of batches; only the last one is open for appends. A batch is ready
// to send when it is closed (full: the next record did not fit in batch_size), when the linger
// passed since its first record, while a flush or close is in progress, or while an Append waits
// for buffer memory (as in Kafka: waiting out the linger would only hold the memory longer); a
// batch put back for a
// retry waits until its backoff time. The batches' buffers, buffered and in flight, are bounded
// by buffer_memory, counted by their capacity (BufferPool): an Append that needs a new buffer,
// or a larger one, blocks up to max_block_ms for room, then fails with ResourceExhausted.
//
// Time is passed in (now_us, any monotonic microseconds: a linger may be a fraction of a
// millisecond) so tests drive it; only the blocking wait of Append uses the real clock.
// Thread-safe: one mutex guards the queues (one short critical section per Append); buffer memory
// is the pool's, so completions (Release, Complete) never take that mutex, and an Append waiting
// for room waits without it.
//
// New batches take their buffers from the BufferPool, which the producer refills with the
// buffers of the batches it sent (pool(): Wrap).

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "buffer_pool.h"
#include "rill/client/partitioner.h"
#include "rill/client/types.h"
#include "rill/proto/compression.h"
#include "rill/proto/record_batch.h"
#include "rill/proto/status.h"

namespace rill::client::internal {

struct RecordCompletion {
  SendCallback callback;  // may be empty
  int64_t timestamp_ms;
};

// One batch of one partition, owned by the accumulator until drained, then by the sender until
// it completes (or is put back for a retry), then kept for reuse (RecordAccumulator::Complete):
// a field added here must be reset in ResetForReuse.
//
// The fields every Append reads or writes come first, so that they share the object's first two
// cache lines: a producer spread over a thousand partitions appends to a different batch each
// time, and each line it touches is a cache miss (bench/RESULTS.md, Session 17).
struct alignas(64) ProducerBatch {
  batch::BatchBuilder builder;
  std::vector<RecordCompletion> records;
  // buffer_memory charged to this batch: its builder's buffer capacity, or once sent the
  // bytes recovered from a failed request (the bytes sent carry their charge with them).
  int64_t buffer_bytes = 0;
  bool built = false;
  bool full = false;
  TopicPartition tp;
  uint64_t sequence = 0;  // per partition, in creation order
  std::string bytes;      // the built batch, once drained (kept across retries)
  size_t built_size = 0;  // bytes.size() after Build(), kept while the bytes travel in a request
  int64_t created_us = 0;
  int32_t attempts = 0;  // sends so far
  // Idempotence: the producer fields the batch was built or last rewritten with (id -1: none
  // yet), its sequence as a 64-bit count that never wraps (the batch holds it modulo 2^31), and
  // whether the producer counts it as in flight.
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int64_t sequence64 = -1;
  bool counted_in_flight = false;
  // Idempotence: counted in its partition's unacknowledged batches (of its epoch), and waiting
  // in the queue to be sent again.
  bool counted_unacked = false;
  bool queued_for_retry = false;
  int64_t retry_at_us = 0;
  // The broker the last attempt went to, and whether that attempt failed for want of a leader
  // there (NOT_LEADER and the like, or the stream to it broke): such a batch is retried at once,
  // its backoff cut short, when metadata names another leader (Kafka's KIP-951), so a failover
  // costs the time the cluster takes to elect, not that plus the rest of a doubled backoff.
  int32_t sent_to = -1;
  bool awaits_leader = false;
  Status last_error;  // why the last attempt was retried (named when delivery_timeout_ms expires)

  explicit ProducerBatch(batch::Compression c) : builder(c) {}
  int32_t record_count() const { return static_cast<int32_t>(records.size()); }
  // Back to a new batch's state for reuse, keeping the records' capacity (and the builder's
  // buffer, if it still has one). The callbacks must have run.
  void ResetForReuse();
  // Builds `bytes` from the builder once; later calls return the same bytes.
  Status Build();
};

struct AccumulatorOptions {
  int64_t batch_size = 256 * 1024;
  int64_t linger_us = 5000;
  int64_t buffer_memory = 64ll * 1024 * 1024;
  int64_t max_block_ms = 60000;  // a real wait (Append), in milliseconds
  int64_t delivery_timeout_us = 120000000;
  batch::Compression compression = batch::Compression::kNone;
  // Whether sent batches' buffers are kept for new batches (BufferPool; within buffer_memory),
  // else every batch allocates its buffer.
  bool recycle_buffers = true;
};

class RecordAccumulator {
 public:
  static constexpr int64_t kClockNow = INT64_MIN;

  explicit RecordAccumulator(AccumulatorOptions options, uint64_t seed = std::random_device{}());
  ~RecordAccumulator();
  RecordAccumulator(const RecordAccumulator&) = delete;
  RecordAccumulator& operator=(const RecordAccumulator&) = delete;

  // Called (without locks held) when an Append is about to wait for buffer memory: every batch
  // is ready while one waits, and the sender should look at once. Set before the first Append.
  void OnBlocked(std::function<void()> wake) { on_blocked_ = std::move(wake); }

  // Sets (or grows) a topic's partition count, from metadata.
  void SetPartitionCount(const std::string& topic, int32_t num_partitions);
  // -1 when unknown.
  int32_t PartitionCount(const std::string& topic) const;
  std::vector<std::string> Topics() const;

  struct Appended {
    int32_t partition;
    bool wake_sender;  // a batch was created or became full: the sender should look again
    // When that batch becomes ready (kReadyNow: it is); the sender need not be woken if it
    // will look again by then anyway.
    int64_t ready_at_us;
  };
  static constexpr int64_t kReadyNow = INT64_MIN;
  // Appends a record to its partition's open batch. The partition is record.partition, or the
  // murmur2 partition of record.key, or the topic's sticky partition. Errors: NotFound for a
  // topic without a partition count, InvalidArgument for a partition out of range,
  // ResourceExhausted when no buffer space freed up within max_block_ms, Failed after Close().
  // now_us = kClockNow reads the monotonic clock, and only when a new batch starts (the clock is
  // not read per record). The callback is moved from only on success; on error the caller still
  // owns it.
  Result<Appended> Append(const ProducerRecord& record, int64_t timestamp_ms,
                          SendCallback&& callback, int64_t now_us);

  // Removes and returns ready batches in partition order (rotating the starting partition between
  // calls), several per partition if they are ready, until max_bytes is reached (at least one
  // batch). `sendable(tp)` is asked for partitions with a ready batch: false skips them.
  // `max_batches(tp)`, when given, bounds how many of tp's batches this call takes (0 skips it).
  std::vector<std::unique_ptr<ProducerBatch>> Drain(
      int64_t now_us, int64_t max_bytes, const std::function<bool(const TopicPartition&)>& sendable,
      const std::function<int(const TopicPartition&)>& max_batches = nullptr);

  // Removes and returns batches older than delivery_timeout_us that are still buffered.
  std::vector<std::unique_ptr<ProducerBatch>> Expire(int64_t now_us);

  // Microseconds until some batch is ready (0: one is ready now), or -1 when nothing is buffered.
  int64_t NextReadyDelay(int64_t now_us) const;

  // Puts a drained batch back for a retry at retry_at_us, ahead of its partition's later batches
  // (ordered by sequence). `queued`, if given, runs on the batch once it is back in its queue and
  // before any Drain can see the queue (under the accumulator's mutex: it may take the locks
  // that Drain's max_batches takes, and nothing that waits for a Drain): the producer stops
  // counting the batch in flight there, so a partition's later batch cannot be drained in between
  // and overtake it (max_in_flight = 1 keeps a partition's order that way).
  void Reenqueue(std::unique_ptr<ProducerBatch> batch, int64_t retry_at_us,
                 const std::function<void(ProducerBatch&)>& queued = nullptr);

  // Batches waiting out a backoff for want of a leader (ProducerBatch::awaits_leader) whose
  // partition `leader_moved` says has another leader now become ready at once. Returns how many.
  size_t ExpediteRetries(const std::function<bool(const ProducerBatch&)>& leader_moved);
  // Whether some batch waits out a backoff for want of a leader: the producer asks for metadata
  // every retry_backoff_ms meanwhile, to learn of the new leader as soon as there is one.
  bool AwaitingLeader() const;

  // Gives back buffer memory charged to a batch (tests and benchmarks; the producer Completes).
  void Release(int64_t bytes);
  // Gives the batch's buffers back to the pool with its charge (b->buffer_bytes), counts it
  // done for WaitUntilEmpty, then keeps the batch object for a later one (its callbacks must
  // have run): a producer spread over many partitions starts a batch every few records, and the
  // allocation of each (and its free on the thread that completed it, which contends for the
  // allocator's lock with the application thread) cost as much as the records themselves.
  void Complete(std::unique_ptr<ProducerBatch> b);

  // While a flush is in progress every batch is ready.
  void BeginFlush();
  void EndFlush();
  // Waits until no record is buffered or in flight (every batch created was Completed).
  void WaitUntilEmpty();

  // Later Appends fail; every batch becomes ready.
  void Close();
  // Removes every buffered batch (used when giving up at shutdown).
  std::vector<std::unique_ptr<ProducerBatch>> TakeAll();

  int64_t buffered_bytes() const;

  // Where new batches take their buffers; the producer gives sent batches' bytes back to it.
  const std::shared_ptr<BufferPool>& pool() const { return pool_; }

 private:
  // Clears b.awaits_leader and its count.
  void ForgetAwaitingLocked(ProducerBatch& b);

  struct PartitionQueue {
    TopicPartition tp;
    size_t index = 0;  // in all_ and head_ready_at_
    std::deque<std::unique_ptr<ProducerBatch>> batches;
    uint64_t next_sequence = 0;
    // The size and record count of the last batch drained: a new batch reserves room for about
    // twice that (16 KiB before the first), not for a full batch.size, so a thousand partitions
    // each getting a few records per linger do not each take (and fault in) a batch.size buffer.
    int64_t last_batch_bytes = 0;
    int32_t last_batch_records = 0;
  };
  struct TopicState {
    std::vector<std::unique_ptr<PartitionQueue>> partitions;
  };

  // When b becomes ready unless AllReadyLocked(): a full or built batch at its retry time, any
  // other once its linger has passed as well. The one rule Drain, NextReadyDelay and
  // head_ready_at_ follow.
  int64_t ReadyAt(const ProducerBatch& b) const;
  // Whether b is ready at now_us; all_ready: AllReadyLocked() (then only its retry time counts).
  bool ReadyLocked(const ProducerBatch& b, int64_t now_us, bool all_ready) const;
  // Whether every batch past its retry time is ready (a flush, Close, or an Append waiting for
  // buffer memory), whatever its linger.
  bool AllReadyLocked() const;
  // Recomputes q's entry in head_ready_at_ after its head batch changed (or its head's full,
  // built or retry_at_us did).
  void UpdateHeadLocked(const PartitionQueue& q);
  void CloseOpenBatchLocked(PartitionQueue& q, int32_t num_partitions);

  // A completed batch for a new one, or a new batch.
  std::unique_ptr<ProducerBatch> NewBatch();

  const AccumulatorOptions options_;
  const std::shared_ptr<BufferPool> pool_;
  std::function<void()> on_blocked_;
  // Completed batch objects kept for new batches (their records vectors keep their capacity),
  // at most kSpareBatchBytes of them counting that capacity.
  static constexpr int64_t kSpareBatchBytes = 4 << 20;
  std::mutex spare_mu_;
  std::vector<std::unique_ptr<ProducerBatch>> spare_;  // guarded by spare_mu_
  int64_t spare_bytes_ = 0;                            // guarded by spare_mu_
  mutable std::mutex mu_;
  // Batches created and not yet completed; WaitUntilEmpty waits on empty_cv_ for none.
  std::atomic<int64_t> live_batches_{0};
  std::mutex empty_mu_;
  std::condition_variable empty_cv_;
  std::atomic<int> empty_waiters_{0};
  std::unordered_map<std::string, TopicState> topics_;
  std::vector<PartitionQueue*> all_;  // every partition queue, for Drain's rotation
  // Per queue of all_ (same index): when its head batch becomes ready unless AllReadyLocked(),
  // INT64_MAX when the queue is empty. Drain and NextReadyDelay scan this array instead of
  // every queue's head batch: over a thousand partitions that walk was a cache miss or three
  // per partition, all under mu_, which the application thread's Appends wait for.
  std::vector<int64_t> head_ready_at_;
  size_t drain_start_ = 0;
  StickyPartitioner sticky_;
  // Queued batches with awaits_leader set; changed under mu_, read without it (the sender asks on
  // every round).
  std::atomic<size_t> awaiting_leader_{0};
  int flushes_ = 0;
  std::atomic<bool> closed_{false};  // set under mu_, read without it
};

// A record's encoded size in a batch, slightly pessimistic: what the batch's buffer must have
// room for (an underestimate is charged after the fact, RecordAccumulator::Append).
int64_t RecordBufferSize(const ProducerRecord& record);

}  // namespace rill::client::internal
