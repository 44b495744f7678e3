#include "rill/storage/kv_store.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/write_batch.h>

namespace rill::storage {
namespace {
Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::OK();
  if (s.IsNotFound()) return Status::NotFound(s.ToString());
  if (s.IsCorruption()) return Status::Corruption("rocksdb: " + s.ToString());
  if (s.IsInvalidArgument()) return Status::InvalidArgument("rocksdb: " + s.ToString());
  return Status::IOError("rocksdb: " + s.ToString());
}
rocksdb::Slice S(std::string_view v) { return rocksdb::Slice(v.data(), v.size()); }
}  // namespace

Result<std::unique_ptr<KvStore>> KvStore::Open(const std::string& path) {
  rocksdb::Options options;
  options.create_if_missing = true;
  options.paranoid_checks = true;
  rocksdb::DB* db = nullptr;
  RILL_RETURN_IF_ERROR(FromRocks(rocksdb::DB::Open(options, path, &db)));
  return std::unique_ptr<KvStore>(new KvStore(db));
}

KvStore::KvStore(rocksdb::DB* db) : db_(db) {}
KvStore::~KvStore() = default;

Status KvStore::Write(const WriteBatch& batch, bool sync) {
  rocksdb::WriteBatch wb;
  for (const auto& op : batch.ops_) {
    rocksdb::Status s = op.put ? wb.Put(S(op.key), S(op.value)) : wb.Delete(S(op.key));
    RILL_RETURN_IF_ERROR(FromRocks(s));
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(db_->Write(wo, &wb));
}

Status KvStore::Put(std::string_view key, std::string_view value, bool sync) {
  WriteBatch b;
  b.Put(key, value);
  return Write(b, sync);
}

Status KvStore::Delete(std::string_view key, bool sync) {
  WriteBatch b;
  b.Delete(key);
  return Write(b, sync);
}

Result<std::string> KvStore::Get(std::string_view key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), S(key), &value);
  if (s.IsNotFound()) return Status::NotFound("key not found");
  RILL_RETURN_IF_ERROR(FromRocks(s));
  return value;
}

Result<std::vector<std::pair<std::string, std::string>>> KvStore::PrefixScan(
    std::string_view prefix) const {
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(S(prefix)); it->Valid() && it->key().starts_with(S(prefix)); it->Next()) {
    out.emplace_back(it->key().ToString(), it->value().ToString());
  }
  RILL_RETURN_IF_ERROR(FromRocks(it->status()));
  return out;
}

}  // namespace rill::storage
