#pragma once

// OffsetStore: the keyed store the offsets materializer writes to — the shape of
// storage::KvStore (RocksDB) reduced to what consumer groups need, so the group core can be
// tested against an in-memory store with injected failures. kv_offset_store.h binds it to
// storage::KvStore.
//
// Contract: Write applies every operation of the batch or none (crash-atomic). Errors are
// Status values (kIOError, kCorruption); a failed Write changes nothing.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rill/proto/status.h"

namespace rill::groups {

struct OffsetStoreBatch {
  struct Op {
    std::string key;
    std::optional<std::string> value;  // nullopt: delete
  };
  void Put(std::string key, std::string value) {
    ops.push_back({std::move(key), std::move(value)});
  }
  void Delete(std::string key) { ops.push_back({std::move(key), std::nullopt}); }
  std::vector<Op> ops;
};

class OffsetStore {
 public:
  virtual ~OffsetStore() = default;
  // Applies the batch atomically and durably.
  virtual Status Write(const OffsetStoreBatch& batch) = 0;
  // The value, or nullopt when absent.
  virtual Result<std::optional<std::string>> Get(std::string_view key) const = 0;
  // Every (key, value) whose key starts with `prefix`, in key order.
  virtual Result<std::vector<std::pair<std::string, std::string>>> Scan(
      std::string_view prefix) const = 0;
};

// In-memory OffsetStore for tests. `fail_writes` makes every Write fail with kIOError without
// changing anything, as a full disk would.
class MemoryOffsetStore final : public OffsetStore {
 public:
  Status Write(const OffsetStoreBatch& batch) override;
  Result<std::optional<std::string>> Get(std::string_view key) const override;
  Result<std::vector<std::pair<std::string, std::string>>> Scan(
      std::string_view prefix) const override;

  bool fail_writes = false;
  const std::map<std::string, std::string, std::less<>>& data() const { return data_; }

 private:
  std::map<std::string, std::string, std::less<>> data_;
};

}  // namespace rill::groups
