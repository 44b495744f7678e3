#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rill/storage/faulty_file_system.h"

namespace rill::storage::testing {

// Delegates to a FaultyFileSystem and records, in order, every write, truncate and sync of every
// file, every rename and every directory sync, and whether a Truncate came while
// `allow_truncate` was false: for tests of what must be durable before what.
class RecordingFileSystem final : public FileSystem {
 public:
  struct Event {
    std::string op;  // "write", "truncate", "sync" (a file), "rename" (path = to) or "syncdir"
    std::string path;
    uint64_t size = 0;
  };

  Result<std::unique_ptr<File>> Open(const std::string& path, bool create,
                                     bool truncate = false) override {
    RILL_ASSIGN_OR_RETURN(auto f, inner_.Open(path, create, truncate));
    return std::unique_ptr<File>(new RecordingFile(this, std::move(f)));
  }
  Status Rename(const std::string& from, const std::string& to) override {
    Record({"rename", to, 0});
    return inner_.Rename(from, to);
  }
  Status Remove(const std::string& path) override { return inner_.Remove(path); }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    return inner_.ListDir(dir);
  }
  Status CreateDir(const std::string& dir) override { return inner_.CreateDir(dir); }
  Status RemoveDirAll(const std::string& dir) override { return inner_.RemoveDirAll(dir); }
  Status SyncDir(const std::string& dir) override {
    Record({"syncdir", dir, 0});
    return inner_.SyncDir(dir);
  }
  bool Exists(const std::string& path) override { return inner_.Exists(path); }

  std::vector<Event> events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  std::atomic<bool> allow_truncate{true};
  std::atomic<int> early_truncates{0};

 private:
  class RecordingFile final : public File {
   public:
    RecordingFile(RecordingFileSystem* fs, std::unique_ptr<File> inner)
        : fs_(fs), inner_(std::move(inner)) {}
    Status WriteAt(uint64_t pos, std::string_view data) override {
      fs_->Record({"write", inner_->path(), pos + data.size()});
      return inner_->WriteAt(pos, data);
    }
    Result<size_t> ReadAt(uint64_t pos, char* buf, size_t n) const override {
      return inner_->ReadAt(pos, buf, n);
    }
    Status Sync() override {
      fs_->Record({"sync", inner_->path(), 0});
      return inner_->Sync();
    }
    Status Truncate(uint64_t size) override {
      if (!fs_->allow_truncate.load()) fs_->early_truncates.fetch_add(1);
      fs_->Record({"truncate", inner_->path(), size});
      return inner_->Truncate(size);
    }
    Status Allocate(uint64_t size) override { return inner_->Allocate(size); }
    Result<uint64_t> Size() const override { return inner_->Size(); }
    const std::string& path() const override { return inner_->path(); }

   private:
    RecordingFileSystem* fs_;
    std::unique_ptr<File> inner_;
  };

  void Record(Event e) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(e));
  }

  FaultyFileSystem inner_;
  std::mutex mu_;
  std::vector<Event> events_;
};

}  // namespace rill::storage::testing
