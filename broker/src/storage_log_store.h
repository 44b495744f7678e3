#pragma once

// The production LogStore: each partition is a storage::Log in <data_dir>/<topic>-<partition>/,
// configured from the topic's effective config (controller/topic_config.h).
//
// Thread-safety: every method may be called from any thread.

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "partition_log.h"

namespace rill::broker {

class StorageLogStore final : public LogStore {
 public:
  // `preallocate_bytes`, `cache_behind_bytes`: storage::LogConfig's fields for every log.
  StorageLogStore(std::string data_dir, int64_t preallocate_bytes,
                  int64_t cache_behind_bytes = -1);
  ~StorageLogStore() override;

  Result<std::shared_ptr<PartitionLog>> Open(const std::string& topic, int32_t partition,
                                             const TopicConfigMap& config) override;
  Status Remove(const std::string& topic, int32_t partition) override;
  Status CloseAll() override;

 private:
  class StorageLog;
  const std::string data_dir_;
  const int64_t preallocate_bytes_;
  const int64_t cache_behind_bytes_;
  std::mutex mu_;
  std::map<std::string, std::weak_ptr<StorageLog>> open_;  // by directory name
};

}  // namespace rill::broker
