#include "rill/storage/log_manager.h"

#include <charconv>

namespace rill::storage {

bool ParseLogDirName(const std::string& name, TopicPartition* tp) {
  auto dash = name.rfind('-');
  if (dash == std::string::npos || dash == 0 || dash + 1 == name.size()) return false;
  int32_t p;
  const char* b = name.data() + dash + 1;
  const char* e = name.data() + name.size();
  auto [ptr, ec] = std::from_chars(b, e, p);
  if (ec != std::errc() || ptr != e || p < 0) return false;
  tp->topic = name.substr(0, dash);
  tp->partition = p;
  return true;
}

Result<std::unique_ptr<LogManager>> LogManager::Open(FileSystem* fs, std::string data_dir,
                                                     LogConfig default_config, Clock clock) {
  RILL_RETURN_IF_ERROR(fs->CreateDir(data_dir));
  std::unique_ptr<LogManager> m(
      new LogManager(fs, std::move(data_dir), default_config, std::move(clock)));
  RILL_ASSIGN_OR_RETURN(auto names, fs->ListDir(m->data_dir_));
  for (const auto& n : names) {
    TopicPartition tp;
    if (!ParseLogDirName(n, &tp)) continue;
    auto log = Log::Open(fs, JoinPath(m->data_dir_, n), n, default_config, m->clock_);
    if (!log.ok()) {
      return Status(log.status().code(), "opening partition " + n + ": " + log.status().message());
    }
    m->logs_.emplace(tp, std::shared_ptr<Log>(std::move(log).value()));
  }
  return m;
}

LogManager::~LogManager() { (void)Close(); }

Result<std::shared_ptr<Log>> LogManager::CreateLog(const std::string& topic, int32_t partition,
                                                   const LogConfig& config) {
  if (topic.empty() || topic.find('/') != std::string::npos || topic == "." || topic == ".." ||
      partition < 0) {
    return Status::InvalidArgument("invalid topic partition '" + topic + "-" +
                                   std::to_string(partition) + "'");
  }
  std::lock_guard lock(mu_);
  TopicPartition tp{topic, partition};
  if (logs_.count(tp)) return Status::AlreadyExists("partition " + tp.DirName() + " exists");
  RILL_ASSIGN_OR_RETURN(auto log, Log::Open(fs_, JoinPath(data_dir_, tp.DirName()), tp.DirName(),
                                            config, clock_));
  RILL_RETURN_IF_ERROR(fs_->SyncDir(data_dir_));
  std::shared_ptr<Log> shared(std::move(log));
  logs_.emplace(tp, shared);
  return shared;
}

std::shared_ptr<Log> LogManager::GetLog(const std::string& topic, int32_t partition) const {
  std::lock_guard lock(mu_);
  auto it = logs_.find(TopicPartition{topic, partition});
  return it == logs_.end() ? nullptr : it->second;
}

Status LogManager::DeleteLog(const std::string& topic, int32_t partition) {
  std::shared_ptr<Log> log;
  {
    std::lock_guard lock(mu_);
    auto it = logs_.find(TopicPartition{topic, partition});
    if (it == logs_.end()) {
      return Status::NotFound("partition " + topic + "-" + std::to_string(partition));
    }
    log = std::move(it->second);
    logs_.erase(it);
  }
  (void)log->Close();
  RILL_RETURN_IF_ERROR(fs_->RemoveDirAll(log->dir()));
  return fs_->SyncDir(data_dir_);
}

std::vector<TopicPartition> LogManager::Partitions() const {
  std::lock_guard lock(mu_);
  std::vector<TopicPartition> out;
  for (const auto& [tp, log] : logs_) out.push_back(tp);
  return out;
}

int LogManager::ApplyRetention(int64_t now_ms) {
  std::vector<std::shared_ptr<Log>> logs;
  {
    std::lock_guard lock(mu_);
    for (const auto& [tp, log] : logs_) logs.push_back(log);
  }
  int n = 0;
  for (const auto& log : logs) {
    auto r = log->ApplyRetention(now_ms);
    if (r.ok()) n += r->segments;
  }
  return n;
}

Status LogManager::Close() {
  std::vector<std::shared_ptr<Log>> logs;
  {
    std::lock_guard lock(mu_);
    for (const auto& [tp, log] : logs_) logs.push_back(log);
  }
  Status first;
  for (const auto& log : logs) {
    Status st = log->Close();
    if (!st.ok() && first.ok()) first = st;
  }
  return first;
}

}  // namespace rill::storage
