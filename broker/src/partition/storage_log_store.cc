#include "partition/storage_log_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <shared_mutex>

#include "controller/topic_config.h"
#include "rill/storage/file_system.h"
#include "rill/storage/log.h"

namespace rill::broker {

namespace {

Result<storage::LogConfig> ToLogConfig(const TopicConfigMap& effective, int64_t preallocate_bytes,
                                       int64_t cache_behind_bytes, int64_t standby_segment_bytes) {
  // The one topic config parser (as LimitsFromConfig): the effective map is the broker's
  // validated defaults under the controller's validated overrides, so an error here names a value
  // that should never have been accepted, and the log is not opened with a guess.
  RILL_ASSIGN_OR_RETURN(TopicConfig tc, ParseTopicConfig(effective));
  storage::LogConfig c;
  c.segment_bytes = tc.segment_bytes;
  c.segment_ms = tc.segment_ms;
  c.retention_ms = tc.retention_ms;
  c.retention_bytes = tc.retention_bytes;
  c.producer_id_expiration_ms = tc.producer_id_expiration_ms;
  c.flush_policy = tc.flush_policy == TopicFlushPolicy::kGroup ? storage::FlushPolicy::kGroup
                   : tc.flush_policy == TopicFlushPolicy::kInterval
                       ? storage::FlushPolicy::kInterval
                       : storage::FlushPolicy::kNone;
  c.flush_interval_ms = tc.flush_interval_ms;
  c.index_interval_bytes = tc.index_interval_bytes;
  c.max_batch_bytes = tc.max_message_bytes;
  // Zero-fill ahead whenever the flusher has nothing else to do, in 64 KiB pieces, once a
  // quarter of the window is used; standby segments use the same pieces (storage::LogConfig has
  // the rules).
  c.preallocate_bytes = preallocate_bytes;
  c.preallocate_chunk_bytes = std::max<int64_t>(preallocate_bytes / 4, 4096);
  c.preallocate_piece_bytes = 64 << 10;
  c.preallocate_idle_ms = 0;
  c.cache_behind_bytes = cache_behind_bytes;
  c.standby_min_bytes = standby_segment_bytes;
  return c;
}

// "<name>-<int32>" with a non-empty name.
bool IsPartitionDirName(std::string_view name) {
  size_t dash = name.rfind('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == name.size()) return false;
  std::string_view digits = name.substr(dash + 1);
  if (digits.size() > 10) return false;
  int64_t v = 0;
  for (char ch : digits) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + (ch - '0');
  }
  return v <= INT32_MAX;
}

// The directory holds the identity file or a segment file (<20 digits>.log).
bool HoldsPartitionLog(const std::filesystem::path& dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::string n = e.path().filename().string();
    if (n == kPartitionIdentityFile) return true;
    if (n.size() == 24 && n.ends_with(".log") &&
        std::all_of(n.begin(), n.begin() + 20, [](char ch) { return ch >= '0' && ch <= '9'; })) {
      return true;
    }
  }
  return false;
}

// Total size of the regular files under `dir` (for the log line of a removal).
uint64_t DirBytes(const std::filesystem::path& dir) {
  uint64_t total = 0;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      uint64_t n = it->file_size(size_ec);
      if (!size_ec) total += n;
    }
  }
  return total;
}

}  // namespace

std::string EncodePartitionIdentity(const PartitionIdentity& id) {
  return "version: 1\ntopic: " + id.topic + "\ntopic_id: " + id.topic_id +
         "\npartition: " + std::to_string(id.partition) + "\n";
}

Result<PartitionIdentity> DecodePartitionIdentity(std::string_view text) {
  PartitionIdentity id;
  bool version = false, topic = false, topic_id = false, partition = false;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty()) continue;
    size_t colon = line.find(": ");
    if (colon == std::string_view::npos) {
      return Status::Corruption("partition identity line without \": \": " + std::string(line));
    }
    std::string_view key = line.substr(0, colon);
    std::string value(line.substr(colon + 2));
    if (key == "version") {
      if (value != "1") return Status::Corruption("partition identity version " + value);
      version = true;
    } else if (key == "topic") {
      id.topic = value;
      topic = !value.empty();
    } else if (key == "topic_id") {
      id.topic_id = value;
      topic_id = !value.empty();
    } else if (key == "partition") {
      char* end = nullptr;
      long long p = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || p < 0 || p > INT32_MAX) {
        return Status::Corruption("partition identity partition " + value);
      }
      id.partition = static_cast<int32_t>(p);
      partition = true;
    }
  }
  if (!version || !topic || !topic_id || !partition) {
    return Status::Corruption("partition identity lacks version, topic, topic_id or partition");
  }
  return id;
}

// A storage::Log behind the PartitionLog seam. A config change applies to the open log
// (storage::Log::ApplyConfig); only Close takes the lock exclusively.
class StorageLogStore::StorageLog final : public PartitionLog {
 public:
  StorageLog(std::string dir, std::string name, std::unique_ptr<storage::Log> log,
             storage::LogConfig config)
      : dir_(std::move(dir)), name_(std::move(name)), log_(std::move(log)), config_(config) {}

  ~StorageLog() override { (void)Close(); }

  Result<AppendInfo> Append(std::span<char> batches, LeaderEpoch epoch,
                            storage::ProducerCheck* refusal) override {
    std::shared_lock lock(mu_);
    if (!log_) return Status::Failed(name_ + " is closed");
    RILL_ASSIGN_OR_RETURN(storage::AppendResult r, log_->Append(batches, epoch, refusal));
    return AppendInfo{r.base_offset, r.last_offset, r.duplicate};
  }

  Result<AppendInfo> AppendReplicated(std::span<const char> batches) override {
    std::shared_lock lock(mu_);
    if (!log_) return Status::Failed(name_ + " is closed");
    RILL_ASSIGN_OR_RETURN(storage::AppendResult r, log_->AppendReplicated(batches));
    return AppendInfo{r.base_offset, r.last_offset};
  }

  Status TruncateTo(Offset offset) override {
    std::shared_lock lock(mu_);
    if (!log_) return Status::Failed(name_ + " is closed");
    return log_->TruncateTo(offset);
  }

  std::vector<replication::EpochEntry> epoch_history() const override {
    std::shared_lock lock(mu_);
    std::vector<replication::EpochEntry> out;
    if (!log_) return out;
    for (const storage::EpochEntry& e : log_->epoch_history()) {
      out.push_back({e.epoch, e.start_offset});
    }
    return out;
  }

  Result<ReadInfo> Read(Offset from, size_t max_bytes, Offset max_offset) override {
    std::shared_lock lock(mu_);
    if (!log_) return Status::Failed(name_ + " is closed");
    if (from >= max_offset) return ReadInfo{{}, from};
    RILL_ASSIGN_OR_RETURN(storage::ReadResult r, log_->Read(from, max_bytes, max_offset - 1));
    return ReadInfo{std::move(r.data), r.next_offset};
  }

  Result<Offset> OffsetForTimestamp(int64_t ts_ms) override {
    RILL_ASSIGN_OR_RETURN(OffsetAndTimestamp found, FindOffsetForTimestamp(ts_ms));
    return found.offset;
  }

  Result<OffsetAndTimestamp> FindOffsetForTimestamp(int64_t ts_ms) override {
    std::shared_lock lock(mu_);
    if (!log_) return Status::Failed(name_ + " is closed");
    auto r = log_->OffsetForTimestamp(ts_ms);
    if (!r.ok()) {
      if (r.status().IsNotFound()) return OffsetAndTimestamp{};
      return r.status();
    }
    return OffsetAndTimestamp{r->offset, r->timestamp_ms};
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
      done(Status::Failed(name_ + " is closed"));
      return;
    }
    log_->OnDurable(end - 1, std::move(done));
  }

  Status ApplyConfig(const TopicConfigMap& config) override {
    RILL_ASSIGN_OR_RETURN(storage::LogConfig c,
                          ToLogConfig(config, config_.preallocate_bytes, config_.cache_behind_bytes,
                                      config_.standby_min_bytes));
    std::shared_lock lock(mu_);
    if (!log_) return Status::Failed(name_ + " is closed");
    return log_->ApplyConfig(c);
  }

  Result<RetentionInfo> ApplyRetention(int64_t now_ms) override {
    std::shared_lock lock(mu_);
    if (!log_) return Status::Failed(name_ + " is closed");
    RILL_ASSIGN_OR_RETURN(storage::RetentionResult r, log_->ApplyRetention(now_ms));
    return RetentionInfo{r.segments, r.bytes};
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
  const storage::LogConfig config_;    // as opened (the broker-level fields are fixed)
};

StorageLogStore::StorageLogStore(std::string data_dir, int64_t preallocate_bytes,
                                 int64_t cache_behind_bytes, int64_t standby_segment_bytes,
                                 int64_t remove_step_bytes, int64_t remove_bytes_per_sec,
                                 int32_t flush_threads, int32_t shared_sync_min_logs,
                                 int64_t standby_budget_bytes)
    : data_dir_(std::move(data_dir)),
      preallocate_bytes_(preallocate_bytes),
      cache_behind_bytes_(cache_behind_bytes),
      standby_segment_bytes_(standby_segment_bytes),
      standby_budget_(standby_budget_bytes > 0
                          ? std::make_unique<storage::StandbyBudget>(standby_budget_bytes)
                          : nullptr),
      remover_(storage::DefaultFileSystem(),
               storage::FileRemover::Options{
                   static_cast<uint64_t>(std::max<int64_t>(remove_step_bytes, 0)),
                   static_cast<uint64_t>(std::max<int64_t>(remove_bytes_per_sec, 0))}),
      flush_scheduler_(std::max(flush_threads, 1), std::max(shared_sync_min_logs, 0)),
      whole_sync_wanted_(shared_sync_min_logs > 0) {
  // Directories a remover had not finished when the process stopped.
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(data_dir_, ec)) {
    std::error_code type_ec;
    const std::string name = e.path().filename().string();
    if (!name.ends_with(storage::FileRemover::kDeletedSuffix) || e.is_symlink(type_ec) ||
        !e.is_directory(type_ec)) {
      continue;
    }
    remover_.Enqueue(e.path().string(), /*is_dir=*/true);
  }
}

StorageLogStore::~StorageLogStore() { (void)CloseAll(); }

void StorageLogStore::SetFlushObserver(FlushObserver observer) {
  std::lock_guard lock(mu_);
  flush_observer_ = std::move(observer);
}

Status StorageLogStore::PrepareDir(const std::string& dir, const PartitionIdentity& want) {
  storage::FileSystem* fs = storage::DefaultFileSystem();
  const std::string id_path = storage::JoinPath(dir, kPartitionIdentityFile);
  if (fs->Exists(dir)) {
    if (want.topic_id.empty()) return Status::OK();
    Result<std::string> text = storage::ReadWholeFile(fs, id_path);
    if (!text.ok() && text.status().IsNotFound()) {
      // A log written before identity files existed: it is this topic's (the broker removed
      // the logs of every topic deletion it applied).
      spdlog::info("{}: no {}; adopting the log as topic {} id {}", dir, kPartitionIdentityFile,
                   want.topic, want.topic_id);
      return storage::WriteFileAtomically(fs, id_path, EncodePartitionIdentity(want));
    }
    if (!text.ok()) return text.status();
    Result<PartitionIdentity> have = DecodePartitionIdentity(*text);
    if (!have.ok()) return Status::Corruption(id_path + ": " + have.status().ToString());
    if (*have == want) return Status::OK();
    if (have->topic != want.topic || have->partition != want.partition) {
      return Status::Corruption(id_path + " names " + have->topic + "-" +
                                std::to_string(have->partition) + ", not " + want.topic + "-" +
                                std::to_string(want.partition));
    }
    spdlog::warn(
        "{}: removing the log of topic {} id {} ({} bytes): the topic now has id {} (it was "
        "deleted and re-created while this broker did not apply the deletion)",
        dir, have->topic, have->topic_id, DirBytes(dir), want.topic_id);
    RILL_RETURN_IF_ERROR(remover_.RemoveDir(dir));
  }
  if (want.topic_id.empty()) return Status::OK();  // storage::Log::Open creates the directory
  // The identity file before the first segment: a directory with segments but no identity file
  // is then always one written before identity files existed.
  RILL_RETURN_IF_ERROR(fs->CreateDir(dir));
  RILL_RETURN_IF_ERROR(storage::WriteFileAtomically(fs, id_path, EncodePartitionIdentity(want)));
  return fs->SyncDir(data_dir_);
}

Result<std::shared_ptr<PartitionLog>> StorageLogStore::Open(const std::string& topic,
                                                            const std::string& topic_id,
                                                            int32_t partition,
                                                            const TopicConfigMap& config) {
  RILL_ASSIGN_OR_RETURN(
      storage::LogConfig c,
      ToLogConfig(config, preallocate_bytes_, cache_behind_bytes_, standby_segment_bytes_));
  {
    std::lock_guard lock(mu_);
    c.on_sync = flush_observer_;
    if (whole_sync_wanted_) {
      // Opened with the first log (the data directory exists by then), before its writes.
      whole_sync_wanted_ = false;
      auto ws = storage::DefaultFileSystem()->OpenWholeSync(data_dir_);
      if (ws.ok()) {
        whole_sync_ = std::move(*ws);
      } else {
        spdlog::info("shared syncs are off: {}; every partition log is synced on its own",
                     ws.status().ToString());
      }
    }
    c.whole_sync = whole_sync_.get();
  }
  c.remover = &remover_;
  c.flush_scheduler = &flush_scheduler_;
  c.standby_budget = standby_budget_.get();
  std::string name = topic + "-" + std::to_string(partition);
  std::string dir = storage::JoinPath(data_dir_, name);
  RILL_RETURN_IF_ERROR(PrepareDir(dir, PartitionIdentity{topic, topic_id, partition}));
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
  // Renamed away at once, its files shrunk in the background (a topic's GiBs unlinked at once
  // would stall every fsync on a `discard` disk).
  return remover_.RemoveDir(storage::JoinPath(data_dir_, name));
}

Result<std::vector<std::string>> StorageLogStore::RemoveStrayLogs(
    const std::set<std::string>& keep) {
  std::vector<std::string> candidates;
  {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(data_dir_, ec)) {
      std::error_code type_ec;
      if (e.is_symlink(type_ec) || !e.is_directory(type_ec)) continue;
      std::string name = e.path().filename().string();
      if (IsPartitionDirName(name) && keep.count(name) == 0) candidates.push_back(name);
    }
    if (ec) return Status::IOError("listing " + data_dir_ + ": " + ec.message());
  }
  std::sort(candidates.begin(), candidates.end());
  std::vector<std::string> removed;
  Status first;
  for (const std::string& name : candidates) {
    {
      std::lock_guard lock(mu_);
      auto it = open_.find(name);
      if (it != open_.end() && !it->second.expired()) continue;
    }
    std::filesystem::path dir = std::filesystem::path(data_dir_) / name;
    if (!HoldsPartitionLog(dir)) continue;
    uint64_t bytes = DirBytes(dir);
    Status st = remover_.RemoveDir(dir.string());
    if (!st.ok()) {
      spdlog::error("removing stray partition log {}: {}", dir.string(), st.ToString());
      if (first.ok()) first = st;
      continue;
    }
    spdlog::warn(
        "removed stray partition log {} ({} bytes): the metadata assigns no such partition to "
        "this broker (its topic was deleted before this broker removed the log)",
        dir.string(), bytes);
    removed.push_back(name);
  }
  if (!removed.empty()) {
    Status s = storage::DefaultFileSystem()->SyncDir(data_dir_);
    if (!s.ok() && first.ok()) first = s;
  }
  if (!first.ok()) return first;
  return removed;
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
