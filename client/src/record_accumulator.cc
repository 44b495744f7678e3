#include "record_accumulator.h"

#include <algorithm>
#include <chrono>
#include <climits>
#include <utility>

#include "clock.h"

namespace rill::client::internal {

Status ProducerBatch::Build() {
  if (built) return Status::OK();
  // The buffer leaves with the batch (and comes back through the pool): none for the builder.
  RILL_ASSIGN_OR_RETURN(bytes, builder.Build(batch::BatchBuilder::Next::kNoBuffer));
  built = true;
  built_size = bytes.size();
  return Status::OK();
}

void ProducerBatch::ResetForReuse() {
  tp.partition = -1;  // the topic string keeps its storage for the next assignment
  sequence = 0;
  // The builder keeps what it has (nothing once built: the buffer left with the bytes); the
  // accumulator gives every new batch a buffer with BatchBuilder::Recycle, which resets it.
  builder.SetProducer(-1, -1, -1);
  bytes.clear();
  built = false;
  built_size = 0;
  records.clear();
  created_us = 0;
  buffer_bytes = 0;
  attempts = 0;
  producer_id = -1;
  producer_epoch = -1;
  sequence64 = -1;
  counted_in_flight = false;
  counted_unacked = false;
  queued_for_retry = false;
  retry_at_us = 0;
  sent_to = -1;
  awaits_leader = false;
  last_error = Status::OK();
  full = false;
}

namespace {
int64_t SpareCost(const ProducerBatch& b) {
  return static_cast<int64_t>(sizeof(ProducerBatch) +
                              b.records.capacity() * sizeof(RecordCompletion));
}
}  // namespace

int64_t RecordBufferSize(const ProducerRecord& r) {
  int64_t size = 24;  // varint lengths, attributes, deltas
  if (r.key) size += static_cast<int64_t>(r.key->size());
  if (r.value) size += static_cast<int64_t>(r.value->size());
  for (const Header& h : r.headers) {
    size += 10 + static_cast<int64_t>(h.key.size()) +
            (h.value ? static_cast<int64_t>(h.value->size()) : 0);
  }
  return size;
}

RecordAccumulator::RecordAccumulator(AccumulatorOptions options, uint64_t seed)
    : options_(options),
      pool_(std::make_shared<BufferPool>(options.buffer_memory, options.recycle_buffers)),
      sticky_(seed) {}

void RecordAccumulator::SetPartitionCount(const std::string& topic, int32_t num_partitions) {
  std::lock_guard lk(mu_);
  TopicState& t = topics_[topic];
  while (static_cast<int32_t>(t.partitions.size()) < num_partitions) {
    auto q = std::make_unique<PartitionQueue>();
    q->tp = TopicPartition{topic, static_cast<int32_t>(t.partitions.size())};
    q->index = all_.size();
    all_.push_back(q.get());
    head_ready_at_.push_back(INT64_MAX);
    t.partitions.push_back(std::move(q));
  }
}

RecordAccumulator::~RecordAccumulator() { pool_->Detach(); }

int32_t RecordAccumulator::PartitionCount(const std::string& topic) const {
  std::lock_guard lk(mu_);
  auto it = topics_.find(topic);
  return it == topics_.end() ? -1 : static_cast<int32_t>(it->second.partitions.size());
}

std::vector<std::string> RecordAccumulator::Topics() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (const auto& [name, t] : topics_) out.push_back(name);
  return out;
}

void RecordAccumulator::CloseOpenBatchLocked(PartitionQueue& q, int32_t num_partitions) {
  ProducerBatch& b = *q.batches.back();
  b.full = true;
  if (q.batches.size() == 1) UpdateHeadLocked(q);
  sticky_.OnBatchClosed(q.tp.topic, q.tp.partition, num_partitions);
}

Result<RecordAccumulator::Appended> RecordAccumulator::Append(const ProducerRecord& record,
                                                              int64_t timestamp_ms,
                                                              SendCallback&& callback,
                                                              int64_t now_us) {
  const int64_t size = RecordBufferSize(record);
  const bool keyed = !record.partition && record.key.has_value();
  const int32_t hash = keyed ? ToPositive(Murmur2(*record.key)) : 0;

  if (closed_.load(std::memory_order_relaxed)) return Status::Failed("producer is closed");
  // A batch of this record alone: its header and the record.
  const int64_t alone = size + batch::kHeaderSize;
  if (alone > options_.buffer_memory) {
    return Status::ResourceExhausted("record of " + std::to_string(size) +
                                     " bytes is larger than buffer_memory (" +
                                     std::to_string(options_.buffer_memory) + " bytes)");
  }
  std::optional<std::chrono::steady_clock::time_point> deadline;  // once Append has to wait
  bool wake = false;  // a batch became full: the sender should look again
  // Each pass either appends or finds the buffer memory it needs taken, waits for it outside
  // the lock, and looks again (the partition's batches may have changed meanwhile).
  for (;;) {
    int64_t wait_for = 0;
    {
      std::unique_lock lk(mu_);
      if (closed_.load(std::memory_order_relaxed)) return Status::Failed("producer is closed");
      auto it = topics_.find(record.topic);
      if (it == topics_.end()) return Status::NotFound("unknown topic '" + record.topic + "'");
      TopicState& topic = it->second;
      const auto n = static_cast<int32_t>(topic.partitions.size());
      int32_t p;
      if (record.partition) {
        p = *record.partition;
        if (p < 0 || p >= n) {
          return Status::InvalidArgument("partition " + std::to_string(p) + " of topic '" +
                                         record.topic + "' does not exist (it has " +
                                         std::to_string(n) + ")");
        }
      } else if (keyed) {
        p = hash % n;
      } else {
        p = sticky_.Partition(record.topic, n);
      }

      int64_t ready_at = kReadyNow;
      PartitionQueue* q = topic.partitions[p].get();
      ProducerBatch* open = nullptr;
      if (!q->batches.empty()) {
        ProducerBatch* last = q->batches.back().get();
        if (!last->full && !last->built) open = last;
      }
      if (open != nullptr && open->record_count() > 0 &&
          static_cast<int64_t>(open->builder.estimated_size()) + size > options_.batch_size) {
        CloseOpenBatchLocked(*q, n);
        wake = true;
        open = nullptr;
        if (!record.partition && !keyed) {
          // The sticky partition moved on with the closed batch: follow it.
          p = sticky_.Partition(record.topic, n);
          q = topic.partitions[p].get();
          if (!q->batches.empty()) {
            ProducerBatch* last = q->batches.back().get();
            if (!last->full && !last->built) open = last;
          }
        }
      }
      // A full batch of records like this one at most.
      const int64_t full = std::max(std::min<int64_t>(options_.batch_size, 16 << 20), alone);
      bool created = false;
      if (open == nullptr) {
        // Size the buffers for about twice the partition's last batch (no regrowth while
        // filling one like the last), or for 16 KiB before its first: a producer to a thousand
        // partitions must not take a thousand full batches of buffer memory.
        const int64_t per_record = std::max<int64_t>(1, size - 24);
        int64_t expect = std::min<int64_t>(full, 16 << 10);
        int64_t expect_records = expect / per_record + 16;
        if (q->last_batch_bytes > 0) {
          expect = std::min(full, std::max<int64_t>(4096, 2 * q->last_batch_bytes));
          expect_records =
              std::min<int64_t>(full / per_record + 16, 2 * int64_t{q->last_batch_records} + 16);
        }
        int64_t charged = 0;
        std::optional<std::string> buffer = pool_->TryTake(
            static_cast<size_t>(alone), static_cast<size_t>(std::max(expect, alone)), &charged);
        if (!buffer) {
          wait_for = alone;
        } else {
          std::unique_ptr<ProducerBatch> b = NewBatch();
          b->tp = q->tp;
          b->sequence = q->next_sequence++;
          b->created_us = now_us == kClockNow ? MonotonicUs() : now_us;
          b->builder.Recycle(std::move(*buffer));
          b->buffer_bytes = charged;
          b->records.reserve(static_cast<size_t>(expect_records));
          if (!wake && flushes_ == 0) ready_at = b->created_us + options_.linger_us;
          open = b.get();
          q->batches.push_back(std::move(b));
          if (q->batches.size() == 1) UpdateHeadLocked(*q);
          live_batches_.fetch_add(1);
          wake = true;
          created = true;
        }
      } else {
        // The record must fit in the buffer as it is: growing it takes buffer memory first.
        const auto capacity = static_cast<int64_t>(open->builder.capacity());
        const int64_t need = static_cast<int64_t>(open->builder.estimated_size()) + size;
        if (need > capacity) {
          int64_t grow_to = std::min(std::max(2 * capacity, need), std::max(need, full));
          if (!pool_->TryCharge(grow_to - capacity)) {
            // Twice does not fit: what is left, if that has room for the record.
            grow_to = std::clamp(capacity + pool_->max_bytes() - pool_->charged(), need, grow_to);
            if (!pool_->TryCharge(grow_to - capacity)) wait_for = need - capacity;
          }
          if (wait_for == 0) {
            open->builder.Reserve(static_cast<size_t>(grow_to));
            open->buffer_bytes += grow_to - capacity;
          }
        }
      }
      if (wait_for == 0) {
        std::optional<std::string_view> key, value;
        if (record.key) key = *record.key;
        if (record.value) value = *record.value;
        Status st = open->builder.Add(key, value, timestamp_ms, record.headers);
        if (!st.ok()) {
          if (created) {
            std::unique_ptr<ProducerBatch> b = std::move(q->batches.back());
            q->batches.pop_back();
            UpdateHeadLocked(*q);
            lk.unlock();
            Complete(std::move(b));
          }
          return st;
        }
        // The record's size is an estimate: what the buffer grew to beyond its charge, if
        // anything, is charged now (memory in use is always counted).
        const auto capacity = static_cast<int64_t>(open->builder.capacity());
        if (capacity > open->buffer_bytes) {
          pool_->ForceCharge(capacity - open->buffer_bytes);
          open->buffer_bytes = capacity;
        }
        open->records.push_back(RecordCompletion{std::move(callback), timestamp_ms});
        if (static_cast<int64_t>(open->builder.estimated_size()) >= options_.batch_size) {
          CloseOpenBatchLocked(*q, n);
          wake = true;
          ready_at = kReadyNow;
        }
        return Appended{p, wake, ready_at};
      }
    }
    // No room for the buffer the record needs: wait for batches to complete, up to max_block_ms.
    if (!deadline) {
      deadline =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.max_block_ms);
    }
    if (on_blocked_) on_blocked_();
    Status st = pool_->WaitFor(wait_for, *deadline);
    if (!st.ok()) {
      if (st.code() != StatusCode::kResourceExhausted) return st;
      return Status::ResourceExhausted(st.message() + " after waiting max_block_ms " +
                                       std::to_string(options_.max_block_ms) +
                                       " (is the broker reachable and keeping up?)");
    }
  }
}

int64_t RecordAccumulator::ReadyAt(const ProducerBatch& b) const {
  return b.full || b.built ? b.retry_at_us
                           : std::max(b.retry_at_us, b.created_us + options_.linger_us);
}

bool RecordAccumulator::ReadyLocked(const ProducerBatch& b, int64_t now_us, bool all_ready) const {
  return (all_ready ? b.retry_at_us : ReadyAt(b)) <= now_us;
}

bool RecordAccumulator::AllReadyLocked() const {
  return flushes_ > 0 || closed_ || pool_->exhausted();
}

void RecordAccumulator::UpdateHeadLocked(const PartitionQueue& q) {
  head_ready_at_[q.index] = q.batches.empty() ? INT64_MAX : ReadyAt(*q.batches.front());
}

std::vector<std::unique_ptr<ProducerBatch>> RecordAccumulator::Drain(
    int64_t now_us, int64_t max_bytes, const std::function<bool(const TopicPartition&)>& sendable,
    const std::function<int(const TopicPartition&)>& max_batches) {
  std::vector<std::unique_ptr<ProducerBatch>> out;
  std::lock_guard lk(mu_);
  if (all_.empty()) return out;
  int64_t total = 0;
  const size_t n = all_.size();
  const bool all_ready = AllReadyLocked();
  bool budget_left = true;
  for (size_t i = 0; i < n && budget_left; ++i) {
    const size_t k = (drain_start_ + i) % n;
    if (!all_ready && head_ready_at_[k] > now_us) continue;
    PartitionQueue& q = *all_[k];
    if (q.batches.empty() || !ReadyLocked(*q.batches.front(), now_us, all_ready)) continue;
    if (!sendable(q.tp)) continue;
    int quota = max_batches ? max_batches(q.tp) : INT32_MAX;
    const size_t queued = q.batches.size();
    while (quota > 0 && !q.batches.empty() && ReadyLocked(*q.batches.front(), now_us, all_ready)) {
      --quota;
      ProducerBatch& b = *q.batches.front();
      const auto size = static_cast<int64_t>(b.built ? b.built_size : b.builder.estimated_size());
      if (total > 0 && total + size > max_bytes) {
        budget_left = false;
        break;
      }
      if (!b.full && !b.built) {
        auto it = topics_.find(q.tp.topic);
        sticky_.OnBatchClosed(q.tp.topic, q.tp.partition,
                              static_cast<int32_t>(it->second.partitions.size()));
      }
      total += size;
      q.last_batch_bytes = size;
      q.last_batch_records = b.record_count();
      ForgetAwaitingLocked(b);
      out.push_back(std::move(q.batches.front()));
      q.batches.pop_front();
    }
    if (q.batches.size() != queued) UpdateHeadLocked(q);
  }
  drain_start_ = (drain_start_ + 1) % n;
  return out;
}

std::vector<std::unique_ptr<ProducerBatch>> RecordAccumulator::Expire(int64_t now_us) {
  std::vector<std::unique_ptr<ProducerBatch>> out;
  std::lock_guard lk(mu_);
  for (PartitionQueue* q : all_) {
    const size_t queued = q->batches.size();
    for (auto it = q->batches.begin(); it != q->batches.end();) {
      if (now_us - (*it)->created_us >= options_.delivery_timeout_us) {
        ForgetAwaitingLocked(**it);
        out.push_back(std::move(*it));
        it = q->batches.erase(it);
      } else {
        ++it;
      }
    }
    if (q->batches.size() != queued) UpdateHeadLocked(*q);
  }
  return out;
}

int64_t RecordAccumulator::NextReadyDelay(int64_t now_us) const {
  std::lock_guard lk(mu_);
  int64_t at = INT64_MAX;
  if (!AllReadyLocked()) {
    for (const int64_t t : head_ready_at_) at = std::min(at, t);
  } else {
    // Every head is ready at its retry time (rare: a flush, Close, a blocked Append).
    for (const PartitionQueue* q : all_) {
      if (!q->batches.empty()) at = std::min(at, q->batches.front()->retry_at_us);
    }
  }
  if (at == INT64_MAX) return -1;
  return at <= now_us ? 0 : at - now_us;
}

void RecordAccumulator::Reenqueue(std::unique_ptr<ProducerBatch> batch, int64_t retry_at_us,
                                  const std::function<void(ProducerBatch&)>& queued) {
  std::lock_guard lk(mu_);
  batch->retry_at_us = retry_at_us;
  if (batch->awaits_leader) ++awaiting_leader_;
  auto it = topics_.find(batch->tp.topic);
  RILL_ASSERT(it != topics_.end() &&
                  batch->tp.partition < static_cast<int32_t>(it->second.partitions.size()),
              "re-enqueued batch for an unknown partition %s", batch->tp.ToString().c_str());
  auto& q = it->second.partitions[batch->tp.partition]->batches;
  auto pos = std::find_if(q.begin(), q.end(), [&](const std::unique_ptr<ProducerBatch>& b) {
    return b->sequence > batch->sequence;
  });
  ProducerBatch& back = **q.insert(pos, std::move(batch));
  if (queued) queued(back);
  UpdateHeadLocked(*it->second.partitions[back.tp.partition]);
}

size_t RecordAccumulator::ExpediteRetries(
    const std::function<bool(const ProducerBatch&)>& leader_moved) {
  std::lock_guard lk(mu_);
  if (awaiting_leader_.load(std::memory_order_relaxed) == 0) return 0;
  size_t n = 0;
  for (PartitionQueue* q : all_) {
    for (auto& b : q->batches) {
      if (!b->awaits_leader || !leader_moved(*b)) continue;
      b->retry_at_us = 0;
      ForgetAwaitingLocked(*b);
      ++n;
    }
    UpdateHeadLocked(*q);
  }
  return n;
}

bool RecordAccumulator::AwaitingLeader() const {
  return awaiting_leader_.load(std::memory_order_relaxed) > 0;
}

void RecordAccumulator::ForgetAwaitingLocked(ProducerBatch& b) {
  if (!b.awaits_leader) return;
  b.awaits_leader = false;
  --awaiting_leader_;
}

void RecordAccumulator::Release(int64_t bytes) { pool_->Uncharge(bytes); }

void RecordAccumulator::Complete(std::unique_ptr<ProducerBatch> b) {
  // What the batch still holds goes back to the pool with its charge: the builder's buffer if it
  // was never built, the bytes if they came back from a request (the bytes of a sent batch left
  // with their own share of the charge, Wrap).
  pool_->Return(b->builder.TakeBuffer(), std::exchange(b->buffer_bytes, 0));
  pool_->Put(std::move(b->bytes));
  b->bytes = std::string();
  if (live_batches_.fetch_sub(1) == 1 && empty_waiters_.load() > 0) {
    { std::lock_guard lk(empty_mu_); }
    empty_cv_.notify_all();
  }
  if (b->builder.compression() != options_.compression) return;
  b->ResetForReuse();
  const int64_t cost = SpareCost(*b);
  std::lock_guard lk(spare_mu_);
  if (spare_bytes_ + cost > kSpareBatchBytes) return;  // freed by the caller's unique_ptr
  spare_bytes_ += cost;
  spare_.push_back(std::move(b));
}

std::unique_ptr<ProducerBatch> RecordAccumulator::NewBatch() {
  {
    std::lock_guard lk(spare_mu_);
    if (!spare_.empty()) {
      std::unique_ptr<ProducerBatch> b = std::move(spare_.back());
      spare_.pop_back();
      spare_bytes_ -= SpareCost(*b);
      return b;
    }
  }
  return std::make_unique<ProducerBatch>(options_.compression);
}

void RecordAccumulator::BeginFlush() {
  std::lock_guard lk(mu_);
  ++flushes_;
}

void RecordAccumulator::EndFlush() {
  std::lock_guard lk(mu_);
  --flushes_;
}

void RecordAccumulator::WaitUntilEmpty() {
  std::unique_lock lk(empty_mu_);
  ++empty_waiters_;
  empty_cv_.wait(lk, [&] { return live_batches_.load() == 0; });
  --empty_waiters_;
}

void RecordAccumulator::Close() {
  {
    std::lock_guard lk(mu_);
    closed_ = true;
  }
  pool_->Close();  // Appends waiting for buffer memory fail
}

std::vector<std::unique_ptr<ProducerBatch>> RecordAccumulator::TakeAll() {
  std::vector<std::unique_ptr<ProducerBatch>> out;
  std::lock_guard lk(mu_);
  for (PartitionQueue* q : all_) {
    for (auto& b : q->batches) {
      ForgetAwaitingLocked(*b);
      out.push_back(std::move(b));
    }
    q->batches.clear();
    UpdateHeadLocked(*q);
  }
  return out;
}

int64_t RecordAccumulator::buffered_bytes() const { return pool_->charged(); }

}  // namespace rill::client::internal
