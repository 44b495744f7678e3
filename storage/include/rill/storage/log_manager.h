#pragma once

// LogManager: every partition log under one data directory, each in `<data_dir>/<topic>-<partition>/`.
// Topic names may contain '-': a directory name splits at its last '-'.
//
// Thread-safety: all methods may be called from any thread. GetLog returns a shared_ptr that
// stays usable after DeleteLog (its files are gone; appends fail once it is closed).

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "rill/storage/file_system.h"
#include "rill/storage/log.h"
#include "rill/storage/log_config.h"

namespace rill::storage {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
  std::string DirName() const { return topic + "-" + std::to_string(partition); }
};

// Parses "<topic>-<partition>" (split at the last '-'); false when it is not such a name.
bool ParseLogDirName(const std::string& name, TopicPartition* tp);

class LogManager {
 public:
  // Opens every existing partition directory in `data_dir` (recovering each) with
  // `default_config`; creates `data_dir` if needed. A partition that fails to open fails the
  // whole Open with a message naming it.
  static Result<std::unique_ptr<LogManager>> Open(FileSystem* fs, std::string data_dir,
                                                  LogConfig default_config,
                                                  Clock clock = SystemClock());
  ~LogManager();  // Close()s what is still open

  // kAlreadyExists when the partition exists.
  Result<std::shared_ptr<Log>> CreateLog(const std::string& topic, int32_t partition,
                                         const LogConfig& config);
  // nullptr when absent.
  std::shared_ptr<Log> GetLog(const std::string& topic, int32_t partition) const;
  // Closes the log and removes its directory. kNotFound when absent.
  Status DeleteLog(const std::string& topic, int32_t partition);
  std::vector<TopicPartition> Partitions() const;
  // Applies retention to every log; returns the number of segments deleted.
  int ApplyRetention(int64_t now_ms);
  // Closes every log (flush + recovery checkpoint); the first error is returned.
  Status Close();

  const std::string& data_dir() const { return data_dir_; }

 private:
  LogManager(FileSystem* fs, std::string data_dir, LogConfig default_config, Clock clock)
      : fs_(fs), data_dir_(std::move(data_dir)), default_config_(default_config),
        clock_(std::move(clock)) {}

  FileSystem* fs_;
  std::string data_dir_;
  LogConfig default_config_;
  Clock clock_;
  mutable std::mutex mu_;
  std::map<TopicPartition, std::shared_ptr<Log>> logs_;
};

}  // namespace rill::storage
