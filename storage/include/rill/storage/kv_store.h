#pragma once

// KvStore: a small RocksDB wrapper for keyed state (materialised consumer offsets with the last
// applied log offset, metadata snapshots). Several puts and deletes commit atomically in one
// WriteBatch. Errors come back as Status: kNotFound, kCorruption, kIOError.
//
// Thread-safety: every method may be called from any thread (RocksDB is thread-safe).

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rill/proto/status.h"

namespace rocksdb {
class DB;
}

namespace rill::storage {

// Puts and deletes applied atomically by KvStore::Write, in order.
class WriteBatch {
 public:
  void Put(std::string_view key, std::string_view value) {
    ops_.push_back({true, std::string(key), std::string(value)});
  }
  void Delete(std::string_view key) { ops_.push_back({false, std::string(key), {}}); }
  size_t size() const { return ops_.size(); }

 private:
  friend class KvStore;
  struct Op {
    bool put;
    std::string key, value;
  };
  std::vector<Op> ops_;
};

class KvStore {
 public:
  // Opens (creating if missing) the database in directory `path`.
  static Result<std::unique_ptr<KvStore>> Open(const std::string& path);
  ~KvStore();

  // Applies the batch atomically; `sync` = fsync the RocksDB WAL before returning.
  Status Write(const WriteBatch& batch, bool sync);
  Status Put(std::string_view key, std::string_view value, bool sync = false);
  Status Delete(std::string_view key, bool sync = false);
  // kNotFound when absent.
  Result<std::string> Get(std::string_view key) const;
  // Every (key, value) whose key starts with `prefix`, in key order.
  Result<std::vector<std::pair<std::string, std::string>>> PrefixScan(
      std::string_view prefix) const;

 private:
  explicit KvStore(rocksdb::DB* db);
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace rill::storage
