#pragma once

// OffsetStore on storage::KvStore (RocksDB): what the broker uses in production.
//
// Writes are not fsynced by default: the __consumer_offsets log is the source of truth, and a
// store that lost its last writes in a crash has an older applied offset, so the coordinator
// replays a longer suffix (offsets_materializer.h). Pass sync = true to fsync every batch.
//
// Thread-safety: as storage::KvStore (any thread).

#include "groups/offset_store.h"
#include "rill/storage/kv_store.h"

namespace rill::groups {

class KvOffsetStore final : public OffsetStore {
 public:
  // `kv` must outlive this object.
  explicit KvOffsetStore(storage::KvStore* kv, bool sync = false) : kv_(kv), sync_(sync) {}

  Status Write(const OffsetStoreBatch& batch) override;
  Result<std::optional<std::string>> Get(std::string_view key) const override;
  Result<std::vector<std::pair<std::string, std::string>>> Scan(
      std::string_view prefix) const override;

 private:
  storage::KvStore* kv_;
  bool sync_;
};

}  // namespace rill::groups
