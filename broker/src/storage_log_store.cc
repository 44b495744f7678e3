#include "storage_log_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <shared_mutex>

#include "controller/topic_config.h"
#include "rill/storage/log.h"

namespace rill::broker {

namespace {

Result<storage::LogConfig> ToLogConfig(const TopicConfigMap& effective,
                                       int64_t preallocate_bytes, int64_t cache_behind_bytes) {
  // ParseTopicConfig takes overrides; the effective map is a valid set of overrides.
  std::map<std::string, std::string> known;
  for (const auto& [k, v] : effective) {
    if (ValidateTopicConfigEntry(k, v).ok()) known[k] = v;
  }
  RILL_ASSIGN_OR_RETURN(TopicConfig tc, ParseTopicConfig(known));
  storage::LogConfig c;
  c.segment_bytes = tc.segment_bytes;
  c.segment_ms = tc.segment_ms;
  c.retention_ms = tc.retention_ms;
  c.retention_bytes = tc.retention_bytes;
  c.flush_policy = tc.flush_policy == TopicFlushPolicy::kGroup      ? storage::FlushPolicy::kGroup
                   : tc.flush_policy == TopicFlushPolicy::kInterval ? storage::FlushPolicy::kInterval
                                                                    : storage::FlushPolicy::kNone;
  c.flush_interval_ms = tc.flush_interval_ms;
  c.index_interval_bytes = tc.index_interval_bytes;
  c.max_batch_bytes = tc.max_message_bytes;
  // Zero-fill ahead whenever the flusher has nothing else to do, in 256 KiB pieces, once a
  // quarter of the window is used (storage::LogConfig has the rules).
  c.preallocate_bytes = preallocate_bytes;
  c.preallocate_chunk_bytes = std::max<int64_t>(preallocate_bytes / 4, 4096);
  c.preallocate_piece_bytes = 256 << 10;
  c.preallocate_idle_ms = 0;
  c.cache_behind_bytes = cache_behind_bytes;
  return c;
}

}  // namespace

// A storage::Log behind the PartitionLog seam. A config change reopens the log with the new
// config under the exclusive lock; every other call takes it shared.
class StorageLogStore::StorageLog final : public PartitionLog {
 public:
  StorageLog(std::string dir, std::string name, std::unique_ptr<storage::Log> log,
             storage::LogConfig config)
      : dir_(std::move(dir)), name_(std::move(name)), log_(std::move(log)), config_(config) {}

  ~StorageLog() override { (void)Close(); }

  Result<AppendInfo> Append(std::span<char> batches, LeaderEpoch epoch) override {
    std::shared_lock lock(mu_);
    if (!log_) return Status::Unavailable(name_ + " is closed");
    RILL_ASSIGN_OR_RETURN(storage::AppendResult r, log_->Append(batches, epoch));
    return AppendInfo{r.base_offset, r.last_offset};
  }

  Result<ReadInfo> Read(Offset from, size_t max_bytes, Offset max_offset) override {
    std::shared_lock lock(mu_);
    if (!log_) return Status::Unavailable(name_ + " is closed");
    if (from >= max_offset) return ReadInfo{{}, from};
    RILL_ASSIGN_OR_RETURN(storage::ReadResult r, log_->Read(from, max_bytes, max_offset - 1));
    return ReadInfo{std::move(r.data), r.next_offset};
  }

  Result<Offset> OffsetForTimestamp(int64_t ts_ms) override {
    std::shared_lock lock(mu_);
    if (!log_) return Status::Unavailable(name_ + " is closed");
    auto r = log_->OffsetForTimestamp(ts_ms);
    if (!r.ok() && r.status().IsNotFound()) return Offset(-1);
    return r;
  }

  Offset log_start_offset() const override {
    std::shared_lock lock(mu_);
    return log_ ? log_->log_start_offset() : Offset(0);
  }
  Offset log_end_offset() const override {
    std::shared_lock lock(mu_);
    return log_ ? log_->log_end_offset() : Offset(0);
  }
  Offset durable_end_offset() const override {
    std::shared_lock lock(mu_);
    return log_ ? log_->durable_offset() : Offset(0);
  }
  uint64_t size_bytes() const override {
    std::shared_lock lock(mu_);
    return log_ ? log_->size_bytes() : 0;
  }

  void OnDurable(Offset end, std::function<void(Status)> done) override {
    std::shared_lock lock(mu_);
    if (!log_) {
      done(Status::Unavailable(name_ + " is closed"));
      return;
    }
    log_->OnDurable(end - 1, std::move(done));
  }

  Status ApplyConfig(const TopicConfigMap& config) override {
    RILL_ASSIGN_OR_RETURN(storage::LogConfig c, ToLogConfig(config, config_.preallocate_bytes,
                                                            config_.cache_behind_bytes));
    std::shared_lock lock(mu_);
    if (!log_) return Status::Unavailable(name_ + " is closed");
    return log_->ApplyConfig(c);
  }

  Status Close() {
    std::unique_lock lock(mu_);
    if (!log_) return Status::OK();
    Status s = log_->Close();
    log_.reset();
    return s;
  }

 private:
  const std::string dir_;
  const std::string name_;
  mutable std::shared_mutex mu_;
  std::unique_ptr<storage::Log> log_;  // null once closed
  const storage::LogConfig config_;  // as opened (the broker-level fields are fixed)
};

StorageLogStore::StorageLogStore(std::string data_dir, int64_t preallocate_bytes,
                                 int64_t cache_behind_bytes)
    : data_dir_(std::move(data_dir)),
      preallocate_bytes_(preallocate_bytes),
      cache_behind_bytes_(cache_behind_bytes) {}

StorageLogStore::~StorageLogStore() { (void)CloseAll(); }

Result<std::shared_ptr<PartitionLog>> StorageLogStore::Open(const std::string& topic,
                                                            int32_t partition,
                                                            const TopicConfigMap& config) {
  RILL_ASSIGN_OR_RETURN(storage::LogConfig c, ToLogConfig(config, preallocate_bytes_,
                                                            cache_behind_bytes_));
  std::string name = topic + "-" + std::to_string(partition);
  std::string dir = storage::JoinPath(data_dir_, name);
  RILL_ASSIGN_OR_RETURN(auto log, storage::Log::Open(storage::DefaultFileSystem(), dir, name, c));
  auto sl = std::make_shared<StorageLog>(dir, name, std::move(log), c);
  std::lock_guard lock(mu_);
  open_[name] = sl;
  return std::shared_ptr<PartitionLog>(sl);
}

Status StorageLogStore::Remove(const std::string& topic, int32_t partition) {
  std::string name = topic + "-" + std::to_string(partition);
  std::shared_ptr<StorageLog> sl;
  {
    std::lock_guard lock(mu_);
    auto it = open_.find(name);
    if (it != open_.end()) {
      sl = it->second.lock();
      open_.erase(it);
    }
  }
  if (sl) (void)sl->Close();
  std::error_code ec;
  std::filesystem::remove_all(storage::JoinPath(data_dir_, name), ec);
  if (ec) return Status::IOError("removing " + name + ": " + ec.message());
  return Status::OK();
}

Status StorageLogStore::CloseAll() {
  std::map<std::string, std::weak_ptr<StorageLog>> open;
  {
    std::lock_guard lock(mu_);
    open.swap(open_);
  }
  Status first;
  for (auto& [name, weak] : open) {
    if (auto sl = weak.lock()) {
      Status s = sl->Close();
      if (!s.ok()) {
        spdlog::error("closing {}: {}", name, s.ToString());
        if (first.ok()) first = s;
      }
    }
  }
  return first;
}

}  // namespace rill::broker
