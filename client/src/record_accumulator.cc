#include "record_accumulator.h"

#include <algorithm>
#include <chrono>
#include <climits>

namespace rill::client::internal {
namespace {
int64_t MonotonicClockMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

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
  created_ms = 0;
  buffer_bytes = 0;
  attempts = 0;
  producer_id = -1;
  producer_epoch = -1;
  sequence64 = -1;
  counted_in_flight = false;
  counted_unacked = false;
  queued_for_retry = false;
  retry_at_ms = 0;
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
      pool_(std::make_shared<BufferPool>(
          options.pool_bytes < 0 ? options.buffer_memory : options.pool_bytes, &used_bytes_)),
      sticky_(seed) {}

void RecordAccumulator::SetPartitionCount(const std::string& topic, int32_t num_partitions) {
  std::lock_guard lk(mu_);
  TopicState& t = topics_[topic];
  while (static_cast<int32_t>(t.partitions.size()) < num_partitions) {
    auto q = std::make_unique<PartitionQueue>();
    q->tp = TopicPartition{topic, static_cast<int32_t>(t.partitions.size())};
    all_.push_back(q.get());
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
  sticky_.OnBatchClosed(q.tp.topic, q.tp.partition, num_partitions);
}

bool RecordAccumulator::TryReserve(int64_t size) {
  int64_t used = used_bytes_.load(std::memory_order_relaxed);
  while (used + size <= options_.buffer_memory) {
    if (used_bytes_.compare_exchange_weak(used, used + size)) return true;
  }
  return false;
}

Status RecordAccumulator::Reserve(int64_t size) {
  if (size > options_.buffer_memory) {
    return Status::ResourceExhausted("record of " + std::to_string(size) +
                                     " bytes is larger than buffer_memory (" +
                                     std::to_string(options_.buffer_memory) + " bytes)");
  }
  if (TryReserve(size)) return Status::OK();
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.max_block_ms);
  bool reserved = false;
  {
    std::unique_lock lk(space_mu_);
    ++space_waiters_;
    space_cv_.wait_until(lk, deadline, [&] {
      if (closed_.load()) return true;
      reserved = TryReserve(size);
      return reserved;
    });
    --space_waiters_;
  }
  if (reserved) return Status::OK();
  if (closed_.load()) return Status::Failed("producer is closed");
  return Status::ResourceExhausted(
      "producer buffer full: " + std::to_string(used_bytes_.load()) + " of buffer_memory " +
      std::to_string(options_.buffer_memory) + " bytes in use after waiting max_block_ms " +
      std::to_string(options_.max_block_ms) + " (is the broker reachable and keeping up?)");
}

Result<RecordAccumulator::Appended> RecordAccumulator::Append(const ProducerRecord& record,
                                                              int64_t timestamp_ms,
                                                              SendCallback&& callback,
                                                              int64_t now_ms) {
  const int64_t size = RecordBufferSize(record);
  const bool keyed = !record.partition && record.key.has_value();
  const int32_t hash = keyed ? ToPositive(Murmur2(*record.key)) : 0;

  if (closed_.load(std::memory_order_relaxed)) return Status::Failed("producer is closed");
  // The record's buffer space is taken before the lock (a full buffer waits without it) and
  // given back on every error below.
  RILL_RETURN_IF_ERROR(Reserve(size));
  std::unique_lock lk(mu_);
  auto fail = [&](Status st) -> Status {
    lk.unlock();
    Release(size);
    return st;
  };
  if (closed_.load(std::memory_order_relaxed)) return fail(Status::Failed("producer is closed"));
  auto it = topics_.find(record.topic);
  if (it == topics_.end()) {
    return fail(Status::NotFound("unknown topic '" + record.topic + "'"));
  }
  TopicState& topic = it->second;
  const auto n = static_cast<int32_t>(topic.partitions.size());
  int32_t p;
  if (record.partition) {
    p = *record.partition;
    if (p < 0 || p >= n) {
      return fail(Status::InvalidArgument("partition " + std::to_string(p) + " of topic '" +
                                          record.topic + "' does not exist (it has " +
                                          std::to_string(n) + ")"));
    }
  } else if (keyed) {
    p = hash % n;
  } else {
    p = sticky_.Partition(record.topic, n);
  }

  bool wake = false;
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
  if (open == nullptr) {
    std::unique_ptr<ProducerBatch> b = NewBatch();
    b->tp = q->tp;
    b->sequence = q->next_sequence++;
    b->created_ms = now_ms == kClockNow ? MonotonicClockMs() : now_ms;
    // Size the buffers for about twice the partition's last batch (a full batch of records like
    // this one at most: no regrowth while filling one like the last), or for 16 KiB before its
    // first: a producer to a thousand partitions must not reserve a thousand full batches.
    const int64_t full = std::min<int64_t>(options_.batch_size, 16 << 20);
    const int64_t per_record = std::max<int64_t>(1, size - 24);
    int64_t expect = std::min<int64_t>(full, 16 << 10);
    int64_t expect_records = expect / per_record + 16;
    if (q->last_batch_bytes > 0) {
      expect = std::min(full, std::max<int64_t>(4096, 2 * q->last_batch_bytes));
      expect_records =
          std::min<int64_t>(full / per_record + 16, 2 * int64_t{q->last_batch_records} + 16);
    }
    b->builder.Recycle(pool_->Take(static_cast<size_t>(std::max<int64_t>(expect, size + 128))));
    b->records.reserve(static_cast<size_t>(expect_records));
    if (!wake && flushes_ == 0) ready_at = b->created_ms + options_.linger_ms;
    open = b.get();
    q->batches.push_back(std::move(b));
    wake = true;
  }
  std::optional<std::string_view> key, value;
  if (record.key) key = *record.key;
  if (record.value) value = *record.value;
  Status st = open->builder.Add(key, value, timestamp_ms, record.headers);
  if (!st.ok()) {
    if (open->record_count() == 0) q->batches.pop_back();
    return fail(st);
  }
  open->records.push_back(RecordCompletion{std::move(callback), timestamp_ms});
  open->buffer_bytes += size;
  if (static_cast<int64_t>(open->builder.estimated_size()) >= options_.batch_size) {
    CloseOpenBatchLocked(*q, n);
    wake = true;
    ready_at = kReadyNow;
  }
  return Appended{p, wake, ready_at};
}

bool RecordAccumulator::ReadyLocked(const ProducerBatch& b, int64_t now_ms) const {
  if (b.retry_at_ms > now_ms) return false;
  return b.full || b.built || flushes_ > 0 || closed_ ||
         now_ms - b.created_ms >= options_.linger_ms;
}

std::vector<std::unique_ptr<ProducerBatch>> RecordAccumulator::Drain(
    int64_t now_ms, int64_t max_bytes, const std::function<bool(const TopicPartition&)>& sendable,
    const std::function<int(const TopicPartition&)>& max_batches) {
  std::vector<std::unique_ptr<ProducerBatch>> out;
  std::lock_guard lk(mu_);
  if (all_.empty()) return out;
  int64_t total = 0;
  const size_t n = all_.size();
  bool budget_left = true;
  for (size_t i = 0; i < n && budget_left; ++i) {
    PartitionQueue& q = *all_[(drain_start_ + i) % n];
    if (q.batches.empty() || !ReadyLocked(*q.batches.front(), now_ms)) continue;
    if (!sendable(q.tp)) continue;
    int quota = max_batches ? max_batches(q.tp) : INT32_MAX;
    while (quota > 0 && !q.batches.empty() && ReadyLocked(*q.batches.front(), now_ms)) {
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
  }
  drain_start_ = (drain_start_ + 1) % n;
  return out;
}

std::vector<std::unique_ptr<ProducerBatch>> RecordAccumulator::Expire(int64_t now_ms) {
  std::vector<std::unique_ptr<ProducerBatch>> out;
  std::lock_guard lk(mu_);
  for (PartitionQueue* q : all_) {
    for (auto it = q->batches.begin(); it != q->batches.end();) {
      if (now_ms - (*it)->created_ms >= options_.delivery_timeout_ms) {
        ForgetAwaitingLocked(**it);
        out.push_back(std::move(*it));
        it = q->batches.erase(it);
      } else {
        ++it;
      }
    }
  }
  return out;
}

int64_t RecordAccumulator::NextReadyDelay(int64_t now_ms) const {
  std::lock_guard lk(mu_);
  int64_t best = -1;
  for (const PartitionQueue* q : all_) {
    if (q->batches.empty()) continue;
    const ProducerBatch& b = *q->batches.front();
    int64_t d;
    if (b.retry_at_ms > now_ms) {
      d = b.retry_at_ms - now_ms;
    } else if (ReadyLocked(b, now_ms)) {
      return 0;
    } else {
      d = b.created_ms + options_.linger_ms - now_ms;
    }
    if (best < 0 || d < best) best = d;
  }
  return best;
}

void RecordAccumulator::Reenqueue(std::unique_ptr<ProducerBatch> batch, int64_t retry_at_ms) {
  std::lock_guard lk(mu_);
  batch->retry_at_ms = retry_at_ms;
  if (batch->awaits_leader) ++awaiting_leader_;
  auto it = topics_.find(batch->tp.topic);
  RILL_ASSERT(it != topics_.end() &&
                  batch->tp.partition < static_cast<int32_t>(it->second.partitions.size()),
              "re-enqueued batch for an unknown partition %s", batch->tp.ToString().c_str());
  auto& q = it->second.partitions[batch->tp.partition]->batches;
  auto pos = std::find_if(q.begin(), q.end(), [&](const std::unique_ptr<ProducerBatch>& b) {
    return b->sequence > batch->sequence;
  });
  q.insert(pos, std::move(batch));
}

size_t RecordAccumulator::ExpediteRetries(
    const std::function<bool(const ProducerBatch&)>& leader_moved) {
  std::lock_guard lk(mu_);
  if (awaiting_leader_.load(std::memory_order_relaxed) == 0) return 0;
  size_t n = 0;
  for (PartitionQueue* q : all_) {
    for (auto& b : q->batches) {
      if (!b->awaits_leader || !leader_moved(*b)) continue;
      b->retry_at_ms = 0;
      ForgetAwaitingLocked(*b);
      ++n;
    }
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

void RecordAccumulator::Release(int64_t bytes) {
  const int64_t used = used_bytes_.fetch_sub(bytes) - bytes;
  RILL_ASSERT(used >= 0, "buffer accounting went negative: %lld", static_cast<long long>(used));
  // A waiter counts itself before it looks at used_bytes_, and this looks at the count after
  // changing used_bytes_ (both sequentially consistent): a waiter either sees the space or is
  // counted and woken. The lock orders the wake after the waiter's look.
  if (space_waiters_.load() > 0) {
    { std::lock_guard lk(space_mu_); }
    space_cv_.notify_all();
  }
}

void RecordAccumulator::Complete(std::unique_ptr<ProducerBatch> b) {
  Release(b->buffer_bytes);
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
  std::unique_lock lk(space_mu_);
  ++space_waiters_;
  space_cv_.wait(lk, [&] { return used_bytes_.load() == 0; });
  --space_waiters_;
}

void RecordAccumulator::Close() {
  {
    std::lock_guard lk(mu_);
    closed_ = true;
  }
  { std::lock_guard lk(space_mu_); }
  space_cv_.notify_all();
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
  }
  return out;
}

int64_t RecordAccumulator::buffered_bytes() const { return used_bytes_.load(); }

}  // namespace rill::client::internal
