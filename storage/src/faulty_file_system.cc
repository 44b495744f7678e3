#include "rill/storage/faulty_file_system.h"

#include <algorithm>

namespace rill::storage {

// One file's bytes: `data` is what a reader sees now, `synced` what survives a crash.
// `dirty` holds the [begin, end) ranges written since the last Sync (merged lazily);
// `last_write` is the most recent unsynced write.
struct FaultyFileSystem::Inode {
  std::string data;
  std::string synced;
  std::vector<std::pair<uint64_t, uint64_t>> dirty;
  bool has_last_write = false;
  uint64_t last_begin = 0, last_end = 0;

  // What an fdatasync does: everything written is durable, nothing is left to lose.
  void MarkSynced() {
    synced = data;
    dirty.clear();
    has_last_write = false;
  }
};

class FaultyFile : public File {
 public:
  FaultyFile(FaultyFileSystem* fs, std::shared_ptr<FaultyFileSystem::Inode> inode, std::string path)
      : fs_(fs), inode_(std::move(inode)), path_(std::move(path)) {}

  Status WriteAt(uint64_t pos, std::string_view data) override {
    std::lock_guard lock(fs_->mu_);
    if (fs_->no_space_ > 0) {
      --fs_->no_space_;
      // A failed write may still have written a prefix, as a real disk may.
      size_t part = data.size() / 2;
      Put(pos, data.substr(0, part));
      return Status::NoSpace("pwrite " + path_ + ": No space left on device");
    }
    Put(pos, data);
    return Status::OK();
  }

  Result<size_t> ReadAt(uint64_t pos, char* buf, size_t n) const override {
    std::lock_guard lock(fs_->mu_);
    if (pos >= inode_->data.size()) return size_t{0};
    size_t k = std::min<size_t>(n, inode_->data.size() - pos);
    std::copy_n(inode_->data.data() + pos, k, buf);
    return k;
  }

  Status Sync() override {
    std::lock_guard lock(fs_->mu_);
    if (fs_->failed_syncs_ > 0) {
      --fs_->failed_syncs_;
      return Status::IOError("fdatasync " + path_ + ": Input/output error");
    }
    inode_->MarkSynced();
    return Status::OK();
  }

  Status Truncate(uint64_t size) override {
    std::lock_guard lock(fs_->mu_);
    if (size > inode_->data.size()) {
      MarkDirty(inode_->data.size(), size);
    } else {
      MarkDirty(size, inode_->data.size());
    }
    inode_->data.resize(size, '\0');
    return Status::OK();
  }

  Status Allocate(uint64_t size) override {
    std::lock_guard lock(fs_->mu_);
    if (fs_->no_space_ > 0) {
      --fs_->no_space_;
      return Status::NoSpace("fallocate " + path_ + ": No space left on device");
    }
    if (size > inode_->data.size()) {
      MarkDirty(inode_->data.size(), size);
      inode_->data.resize(size, '\0');
    }
    return Status::OK();
  }

  Result<uint64_t> Size() const override {
    std::lock_guard lock(fs_->mu_);
    return static_cast<uint64_t>(inode_->data.size());
  }

  const std::string& path() const override { return path_; }

 private:
  void Put(uint64_t pos, std::string_view data) {
    if (data.empty()) return;
    if (inode_->data.size() < pos + data.size()) inode_->data.resize(pos + data.size(), '\0');
    std::copy(data.begin(), data.end(), inode_->data.begin() + static_cast<ptrdiff_t>(pos));
    MarkDirty(pos, pos + data.size());
    inode_->has_last_write = true;
    inode_->last_begin = pos;
    inode_->last_end = pos + data.size();
  }
  void MarkDirty(uint64_t b, uint64_t e) {
    if (b < e) inode_->dirty.emplace_back(b, e);
  }

  FaultyFileSystem* fs_;
  std::shared_ptr<FaultyFileSystem::Inode> inode_;
  std::string path_;
};

FaultyFileSystem::FaultyFileSystem(uint64_t seed) : rng_(seed) { dirs_.insert(""); }
FaultyFileSystem::~FaultyFileSystem() = default;

std::string FaultyFileSystem::Parent(const std::string& path) const {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

Result<std::unique_ptr<File>> FaultyFileSystem::Open(const std::string& path, bool create,
                                                     bool truncate) {
  std::lock_guard lock(mu_);
  if (unreadable_.count(path)) return Status::IOError("open " + path + ": Input/output error");
  auto it = files_.find(path);
  if (it == files_.end()) {
    if (!create) return Status::NotFound("open " + path + ": No such file or directory");
    if (!dirs_.count(Parent(path))) {
      return Status::NotFound("open " + path + ": parent directory missing");
    }
    it = files_.emplace(path, std::make_shared<Inode>()).first;
  } else if (truncate && !it->second->data.empty()) {
    it->second->dirty.emplace_back(0, it->second->data.size());
    it->second->data.clear();
  }
  return std::unique_ptr<File>(new FaultyFile(this, it->second, path));
}

Status FaultyFileSystem::Rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  if (unreadable_.count(from)) return Status::IOError("rename " + from + ": Input/output error");
  auto it = files_.find(from);
  if (it == files_.end()) return Status::NotFound("rename " + from + ": No such file");
  files_[to] = it->second;
  files_.erase(from);
  return Status::OK();
}

Status FaultyFileSystem::Remove(const std::string& path) {
  std::lock_guard lock(mu_);
  if (files_.erase(path) == 0) return Status::NotFound("unlink " + path + ": No such file");
  return Status::OK();
}

Result<std::vector<std::string>> FaultyFileSystem::ListDir(const std::string& dir) {
  std::lock_guard lock(mu_);
  if (!dirs_.count(dir)) return Status::NotFound("opendir " + dir + ": No such directory");
  std::vector<std::string> names;
  for (const auto& [path, inode] : files_) {
    if (Parent(path) == dir) names.push_back(path.substr(dir.size() + 1));
  }
  for (const auto& d : dirs_) {
    if (!d.empty() && d != dir && Parent(d) == dir) names.push_back(d.substr(dir.size() + 1));
  }
  return names;
}

Status FaultyFileSystem::CreateDir(const std::string& dir) {
  std::lock_guard lock(mu_);
  // Directories are modelled as always durable: the log syncs files and names within them.
  std::string d = dir;
  while (!d.empty() && !dirs_.count(d)) {
    dirs_.insert(d);
    d = Parent(d);
  }
  return Status::OK();
}

Status FaultyFileSystem::RemoveDirAll(const std::string& dir) {
  std::lock_guard lock(mu_);
  auto under = [&](const std::string& p) { return p == dir || p.rfind(dir + "/", 0) == 0; };
  std::erase_if(files_, [&](const auto& kv) { return under(kv.first); });
  std::erase_if(durable_files_, [&](const auto& kv) { return under(kv.first); });
  std::erase_if(dirs_, [&](const std::string& d) { return under(d); });
  return Status::OK();
}

Status FaultyFileSystem::SyncDir(const std::string& dir) {
  std::lock_guard lock(mu_);
  std::erase_if(durable_files_, [&](const auto& kv) { return Parent(kv.first) == dir; });
  for (const auto& [path, inode] : files_) {
    if (Parent(path) == dir) durable_files_[path] = inode;
  }
  return Status::OK();
}

// The whole filesystem at once: every file's data and every directory's names become durable.
// FailNextSyncs counts these too; a failed one syncs nothing.
class FaultyWholeSync : public WholeSync {
 public:
  explicit FaultyWholeSync(FaultyFileSystem* fs) : fs_(fs) {}
  Status Sync() override { return fs_->SyncAll(); }
  bool Covers(const std::string& path) const override {
    (void)path;
    return true;
  }

 private:
  FaultyFileSystem* fs_;
};

Result<std::unique_ptr<WholeSync>> FaultyFileSystem::OpenWholeSync(const std::string& dir) {
  (void)dir;
  return std::unique_ptr<WholeSync>(new FaultyWholeSync(this));
}

Status FaultyFileSystem::SyncAll() {
  std::lock_guard lock(mu_);
  ++whole_syncs_;
  if (failed_syncs_ > 0) {
    --failed_syncs_;
    return Status::IOError("syncfs: Input/output error");
  }
  for (auto& [path, inode] : files_) inode->MarkSynced();
  durable_files_ = files_;
  return Status::OK();
}

int FaultyFileSystem::whole_syncs() {
  std::lock_guard lock(mu_);
  return whole_syncs_;
}

bool FaultyFileSystem::Exists(const std::string& path) {
  std::lock_guard lock(mu_);
  return files_.count(path) > 0 || dirs_.count(path) > 0;
}

void FaultyFileSystem::Crash(CrashMode mode) {
  std::lock_guard lock(mu_);
  // Names revert to the last SyncDir; every inode reverts to (or is damaged from) its synced data.
  std::set<Inode*> seen;
  auto crash_inode = [&](Inode& f) {
    std::string next = f.synced;
    if (mode == CrashMode::kTornLastWrite && f.has_last_write) {
      uint64_t len = f.last_end - f.last_begin;
      uint64_t sectors = (len + kSectorSize - 1) / kSectorSize;
      uint64_t keep = std::min<uint64_t>(len, (rng_() % (sectors + 1)) * kSectorSize);
      uint64_t end = f.last_begin + keep;
      if (next.size() < end) next.resize(end, '\0');
      std::copy_n(f.data.data() + f.last_begin, keep, next.begin() + f.last_begin);
    } else if (mode == CrashMode::kFlipBits && !f.dirty.empty()) {
      next = f.data;
      for (int i = 0; i < 3; ++i) {
        auto [b, e] = f.dirty[rng_() % f.dirty.size()];
        e = std::min<uint64_t>(e, next.size());
        if (b >= e) continue;
        uint64_t pos = b + rng_() % (e - b);
        next[pos] = static_cast<char>(next[pos] ^ (1 << (rng_() % 8)));
      }
    }
    f.data = std::move(next);
    f.MarkSynced();  // what survived the crash is all there is
  };
  files_ = durable_files_;
  for (auto& [path, inode] : files_) {
    if (seen.insert(inode.get()).second) crash_inode(*inode);
  }
  // Inodes that are durable under a name are the only ones that survive; fresh copies so that
  // files opened before the crash cannot touch the post-crash state.
  std::map<Inode*, std::shared_ptr<Inode>> copies;
  for (auto& [path, inode] : files_) {
    auto& c = copies[inode.get()];
    if (!c) c = std::make_shared<Inode>(*inode);
    inode = c;
  }
  durable_files_ = files_;
}

void FaultyFileSystem::FlipBit(const std::string& path, uint64_t pos, int bit) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end() || pos >= it->second->data.size()) return;
  auto& f = *it->second;
  f.data[pos] = static_cast<char>(f.data[pos] ^ (1 << bit));
  if (pos < f.synced.size()) f.synced[pos] = static_cast<char>(f.synced[pos] ^ (1 << bit));
}

void FaultyFileSystem::FailWritesWithNoSpace(int n) {
  std::lock_guard lock(mu_);
  no_space_ = n;
}

void FaultyFileSystem::FailNextSyncs(int n) {
  std::lock_guard lock(mu_);
  failed_syncs_ = n;
}

void FaultyFileSystem::FailOpensAndRenamesOf(const std::string& path, bool fail) {
  std::lock_guard lock(mu_);
  if (fail) {
    unreadable_.insert(path);
  } else {
    unreadable_.erase(path);
  }
}

uint64_t FaultyFileSystem::UnsyncedBytes(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return 0;
  uint64_t n = 0;
  for (auto [b, e] : it->second->dirty) n += e - b;
  return n;
}

std::string FaultyFileSystem::Contents(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  return it == files_.end() ? std::string() : it->second->data;
}

}  // namespace rill::storage
