#include "groups/kv_offset_store.h"

namespace rill::groups {

Status KvOffsetStore::Write(const OffsetStoreBatch& batch) {
  storage::WriteBatch wb;
  for (const auto& op : batch.ops) {
    if (op.value.has_value()) {
      wb.Put(op.key, *op.value);
    } else {
      wb.Delete(op.key);
    }
  }
  return kv_->Write(wb, sync_);
}

Result<std::optional<std::string>> KvOffsetStore::Get(std::string_view key) const {
  auto r = kv_->Get(key);
  if (r.ok()) return std::optional<std::string>(std::move(r).value());
  if (r.status().IsNotFound()) return std::optional<std::string>();
  return r.status();
}

Result<std::vector<std::pair<std::string, std::string>>> KvOffsetStore::Scan(
    std::string_view prefix) const {
  return kv_->PrefixScan(prefix);
}

}  // namespace rill::groups
