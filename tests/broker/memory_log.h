#pragma once

// Test-only in-memory LogStore/PartitionLog. Durability is manual: appends become durable when
// the test calls MakeDurable() (or at once with auto_durable), which runs the OnDurable
// callbacks like storage's flusher would.

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "partition/partition_log.h"
#include "rill/proto/assert.h"
#include "rill/proto/batch_header.h"
#include "rill/proto/record_batch.h"

namespace rill::broker::testing {

// A batch of `records` records with key "k" and value "v", timestamps from 1000.
inline std::string Batch(int records) {
  batch::BatchBuilder b(batch::Compression::kNone);
  for (int i = 0; i < records; ++i) {
    RILL_ASSERT(b.Add(std::string_view("k"), std::string_view("v"), 1000 + i).ok(), "add");
  }
  auto built = b.Build();
  RILL_ASSERT(built.ok(), "build");
  return std::move(built).value();
}

class MemoryLog final : public PartitionLog {
 public:
  explicit MemoryLog(bool auto_durable) : auto_durable_(auto_durable) {}

  // Producer state is not kept: idempotent batches are appended like any other.
  Result<AppendInfo> Append(std::span<char> batches, LeaderEpoch epoch,
                            storage::ProducerCheck* /*refusal*/) override {
    std::vector<std::pair<int64_t, std::string>> out;
    int64_t next;
    {
      std::lock_guard lock(mu_);
      if (!append_error_.ok()) return append_error_;
      next = end_;
    }
    AppendInfo info;
    std::string_view all(batches.data(), batches.size());
    batch::BatchIterator it(all, true);
    size_t pos = 0;
    while (it.Next()) {
      std::span<char> b(batches.data() + it.position(), it.batch().size());
      batch::SetBaseOffset(b, next);
      batch::SetPartitionLeaderEpoch(b, epoch.value());
      if (info.base_offset.value() < 0) info.base_offset = Offset(next);
      int64_t last = next + it.header().last_offset_delta;
      info.last_offset = Offset(last);
      out.emplace_back(next, std::string(b.data(), b.size()));
      next = last + 1;
      pos = it.position() + it.batch().size();
    }
    if (!it.status().ok()) return it.status();
    if (pos != batches.size() || out.empty()) return Status::Corruption("no batch");
    {
      std::lock_guard lock(mu_);
      for (auto& [o, b] : out) {
        batches_[o] = std::move(b);
        size_ += batches_[o].size();
      }
      end_ = next;
    }
    if (auto_durable_) MakeDurable();
    return info;
  }

  // Keeps the batches' offsets and epochs; the first must start at the log end.
  Result<AppendInfo> AppendReplicated(std::span<const char> batches) override {
    std::string_view all(batches.data(), batches.size());
    batch::BatchIterator it(all, true);
    std::vector<std::pair<int64_t, std::string>> out;
    AppendInfo info;
    int64_t next;
    {
      std::lock_guard lock(mu_);
      if (!append_error_.ok()) return append_error_;
      next = end_;
    }
    while (it.Next()) {
      const auto& h = it.header();
      if (h.base_offset != next) {
        return Status::InvalidArgument("replicated batch at " + std::to_string(h.base_offset) +
                                       ", expected " + std::to_string(next));
      }
      if (info.base_offset.value() < 0) info.base_offset = Offset(next);
      info.last_offset = Offset(next + h.last_offset_delta);
      out.emplace_back(next, std::string(all.substr(it.position(), it.batch().size())));
      next = info.last_offset.value() + 1;
    }
    if (!it.status().ok()) return it.status();
    if (out.empty()) return Status::InvalidArgument("no batch");
    {
      std::lock_guard lock(mu_);
      for (auto& [o, b] : out) {
        size_ += b.size();
        batches_[o] = std::move(b);
      }
      end_ = next;
    }
    if (auto_durable_) MakeDurable();
    return info;
  }

  Status TruncateTo(Offset offset) override {
    std::lock_guard lock(mu_);
    if (offset.value() <= start_) {
      batches_.clear();
      size_ = 0;
      start_ = end_ = durable_ = offset.value();
      return Status::OK();
    }
    while (!batches_.empty() && batches_.rbegin()->first >= offset.value()) {
      size_ -= batches_.rbegin()->second.size();
      batches_.erase(std::prev(batches_.end()));
    }
    // A batch holding `offset` goes whole.
    if (!batches_.empty()) {
      const auto& [base, b] = *batches_.rbegin();
      if (base + batch::DecodeHeader(b.data()).last_offset_delta >= offset.value()) {
        size_ -= b.size();
        batches_.erase(std::prev(batches_.end()));
      }
    }
    end_ = batches_.empty() ? start_
                            : batches_.rbegin()->first +
                                  batch::DecodeHeader(batches_.rbegin()->second.data())
                                      .last_offset_delta +
                                  1;
    durable_ = std::min(durable_, end_);
    return Status::OK();
  }

  std::vector<replication::EpochEntry> epoch_history() const override {
    std::lock_guard lock(mu_);
    std::vector<replication::EpochEntry> out;
    for (const auto& [base, b] : batches_) {
      const LeaderEpoch e(batch::DecodeHeader(b.data()).partition_leader_epoch);
      if (out.empty() || e > out.back().epoch) out.push_back({e, Offset(base)});
    }
    return out;
  }

  Result<ReadInfo> Read(Offset from, size_t max_bytes, Offset max_offset) override {
    std::lock_guard lock(mu_);
    if (from.value() < start_ || from.value() > end_) return Status::OutOfRange("out of range");
    ReadInfo r{{}, from};
    auto it = batches_.upper_bound(from.value());
    if (it != batches_.begin()) --it;
    for (; it != batches_.end(); ++it) {
      auto h = batch::DecodeHeader(it->second.data());
      if (h.last_offset() < from.value()) continue;
      if (it->first >= max_offset.value()) break;
      if (!r.data.empty() && r.data.size() + it->second.size() > max_bytes) break;
      r.data += it->second;
      r.next_offset = Offset(h.last_offset() + 1);
    }
    return r;
  }

  // As storage::Log: the first record (in offset order, at or after the log start) whose
  // timestamp is >= ts, found by decoding the batches whose maxTimestamp reaches ts; offset and
  // timestamp -1 when there is none. A batch that does not decode fails the lookup.
  Result<OffsetAndTimestamp> FindOffsetForTimestamp(int64_t ts) override {
    std::lock_guard lock(mu_);
    if (!timestamp_lookup_error_.ok()) return timestamp_lookup_error_;
    for (auto& [o, b] : batches_) {
      auto h = batch::DecodeHeader(b.data());
      if (h.max_timestamp < ts || h.last_offset() < start_) continue;
      RILL_ASSIGN_OR_RETURN(batch::BatchReader reader, batch::BatchReader::Open(b));
      batch::RecordView rec;
      while (true) {
        RILL_ASSIGN_OR_RETURN(bool more, reader.Next(&rec));
        if (!more) break;
        if (rec.timestamp_ms >= ts && rec.offset >= start_) {
          return OffsetAndTimestamp{Offset(rec.offset), rec.timestamp_ms};
        }
      }
    }
    return OffsetAndTimestamp{};
  }
  Result<Offset> OffsetForTimestamp(int64_t ts) override {
    RILL_ASSIGN_OR_RETURN(OffsetAndTimestamp found, FindOffsetForTimestamp(ts));
    return found.offset;
  }

  Offset log_start_offset() const override {
    std::lock_guard lock(mu_);
    return Offset(start_);
  }
  Offset log_end_offset() const override {
    std::lock_guard lock(mu_);
    return Offset(end_);
  }
  Offset durable_end_offset() const override {
    std::lock_guard lock(mu_);
    return Offset(durable_);
  }
  uint64_t size_bytes() const override {
    std::lock_guard lock(mu_);
    return size_;
  }

  void OnDurable(Offset end, std::function<void(Status)> done) override {
    Status status;
    {
      std::lock_guard lock(mu_);
      if (end.value() > durable_) {
        if (durability_error_.ok()) {
          waiters_.emplace(end.value(), std::move(done));
          return;
        }
        status = durability_error_;
      }
    }
    done(status);
  }

  // Fault seams. While `status` is not OK, Append fails with it and appends nothing.
  void SetAppendError(Status status) {
    std::lock_guard lock(mu_);
    append_error_ = std::move(status);
  }
  // While `status` is not OK, ApplyRetention fails with it and removes nothing.
  void SetRetentionError(Status status) {
    std::lock_guard lock(mu_);
    retention_error_ = std::move(status);
  }
  // While `status` is not OK, lookups by timestamp fail with it (a corrupt batch, a read error).
  void SetTimestampLookupError(Status status) {
    std::lock_guard lock(mu_);
    timestamp_lookup_error_ = std::move(status);
  }
  // While `status` is not OK, MakeDurable completes every waiter with it and leaves the appended
  // batches non-durable (a failed fsync); DropNonDurable() then removes them (as recovery would).
  void SetDurabilityError(Status status) {
    std::lock_guard lock(mu_);
    durability_error_ = std::move(status);
  }
  void DropNonDurable() {
    std::lock_guard lock(mu_);
    while (!batches_.empty() && batches_.rbegin()->first >= durable_) {
      size_ -= batches_.rbegin()->second.size();
      batches_.erase(std::prev(batches_.end()));
    }
    end_ = durable_;
  }

  Status ApplyConfig(const TopicConfigMap& config) override {
    std::lock_guard lock(mu_);
    config_ = config;
    return Status::OK();
  }

  // As storage::Log, with each batch a segment and the newest batch the active one.
  Result<RetentionInfo> ApplyRetention(int64_t now_ms) override {
    std::lock_guard lock(mu_);
    if (!retention_error_.ok()) return retention_error_;
    auto num = [&](const char* key, int64_t fallback) {
      auto it = config_.find(key);
      return it == config_.end() ? fallback : std::stoll(it->second);
    };
    const int64_t retention_ms = num("retention.ms", 604800000);
    const int64_t retention_bytes = num("retention.bytes", -1);
    RetentionInfo info;
    while (batches_.size() > 1) {
      const std::string& b = batches_.begin()->second;
      const bool by_time =
          retention_ms >= 0 && batch::DecodeHeader(b.data()).max_timestamp < now_ms - retention_ms;
      const bool by_size =
          retention_bytes >= 0 && size_ - b.size() >= static_cast<uint64_t>(retention_bytes);
      if (!by_time && !by_size) break;
      ++info.segments;
      info.bytes += b.size();
      size_ -= b.size();
      batches_.erase(batches_.begin());
      start_ = batches_.begin()->first;
    }
    return info;
  }

  // Makes everything appended durable and runs the callbacks.
  void MakeDurable() {
    std::vector<std::function<void(Status)>> ready;
    Status status;
    {
      std::lock_guard lock(mu_);
      status = durability_error_;
      if (!status.ok()) {
        for (auto& [end, f] : waiters_) ready.push_back(std::move(f));
        waiters_.clear();
      }
    }
    if (!status.ok()) {
      for (auto& f : ready) f(status);
      return;
    }
    {
      std::lock_guard lock(mu_);
      durable_ = end_;
      while (!waiters_.empty() && waiters_.begin()->first <= durable_) {
        ready.push_back(std::move(waiters_.begin()->second));
        waiters_.erase(waiters_.begin());
      }
    }
    for (auto& f : ready) f(Status::OK());
  }

  TopicConfigMap config() const {
    std::lock_guard lock(mu_);
    return config_;
  }

 private:
  const bool auto_durable_;
  mutable std::mutex mu_;
  std::map<int64_t, std::string> batches_;
  std::multimap<int64_t, std::function<void(Status)>> waiters_;
  int64_t start_ = 0;
  int64_t end_ = 0;
  int64_t durable_ = 0;
  uint64_t size_ = 0;
  TopicConfigMap config_;
  Status append_error_;
  Status durability_error_;
  Status timestamp_lookup_error_;
  Status retention_error_;
};

class MemoryLogStore final : public LogStore {
 public:
  explicit MemoryLogStore(bool auto_durable = true) : auto_durable_(auto_durable) {}

  // A log stored under another topic id is replaced by an empty one (as StorageLogStore does).
  Result<std::shared_ptr<PartitionLog>> Open(const std::string& topic, const std::string& topic_id,
                                             int32_t partition,
                                             const TopicConfigMap& config) override {
    std::lock_guard lock(mu_);
    if (!open_error_.ok()) return open_error_;
    auto& log = logs_[{topic, partition}];
    auto& id = ids_[{topic, partition}];
    if (log && !topic_id.empty() && !id.empty() && id != topic_id) log.reset();
    if (!topic_id.empty()) id = topic_id;
    if (!log) log = std::make_shared<MemoryLog>(auto_durable_);
    (void)log->ApplyConfig(config);
    ++opens_;
    return std::shared_ptr<PartitionLog>(log);
  }
  Status Remove(const std::string& topic, int32_t partition) override {
    std::lock_guard lock(mu_);
    logs_.erase({topic, partition});
    ids_.erase({topic, partition});
    ++removes_;
    return Status::OK();
  }
  Result<std::vector<std::string>> RemoveStrayLogs(const std::set<std::string>& keep) override {
    std::lock_guard lock(mu_);
    std::vector<std::string> removed;
    for (auto it = logs_.begin(); it != logs_.end();) {
      std::string name = it->first.first + "-" + std::to_string(it->first.second);
      if (keep.count(name) == 0 && it->second.use_count() == 1) {
        removed.push_back(name);
        ids_.erase(it->first);
        it = logs_.erase(it);
      } else {
        ++it;
      }
    }
    return removed;
  }
  Status CloseAll() override { return Status::OK(); }

  std::shared_ptr<MemoryLog> Get(const std::string& topic, int32_t partition) {
    std::lock_guard lock(mu_);
    auto it = logs_.find({topic, partition});
    return it == logs_.end() ? nullptr : it->second;
  }
  int opens() const { return opens_; }
  int removes() const { return removes_; }
  // While `status` is not OK, Open fails with it (a log that does not recover).
  void SetOpenError(Status status) {
    std::lock_guard lock(mu_);
    open_error_ = std::move(status);
  }

 private:
  const bool auto_durable_;
  std::mutex mu_;
  std::map<std::pair<std::string, int32_t>, std::shared_ptr<MemoryLog>> logs_;
  std::map<std::pair<std::string, int32_t>, std::string> ids_;
  int opens_ = 0;
  int removes_ = 0;
  Status open_error_;
};

}  // namespace rill::broker::testing
