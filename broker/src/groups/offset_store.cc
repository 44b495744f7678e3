#include "groups/offset_store.h"

namespace rill::groups {

Status MemoryOffsetStore::Write(const OffsetStoreBatch& batch) {
  if (fail_writes) return Status::IOError("MemoryOffsetStore: injected write failure");
  for (const auto& op : batch.ops) {
    if (op.value.has_value()) {
      data_[op.key] = *op.value;
    } else {
      data_.erase(op.key);
    }
  }
  return Status::OK();
}

Result<std::optional<std::string>> MemoryOffsetStore::Get(std::string_view key) const {
  auto it = data_.find(key);
  if (it == data_.end()) return std::optional<std::string>();
  return std::optional<std::string>(it->second);
}

Result<std::vector<std::pair<std::string, std::string>>> MemoryOffsetStore::Scan(
    std::string_view prefix) const {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto it = data_.lower_bound(prefix);
       it != data_.end() && std::string_view(it->first).substr(0, prefix.size()) == prefix; ++it) {
    out.emplace_back(it->first, it->second);
  }
  return out;
}

}  // namespace rill::groups
