#pragma once

// FaultyFileSystem: an in-memory FileSystem for tests that remembers, per file, what has been
// made durable (by Sync) and, per directory, which names are durable (by SyncDir), so it can
// simulate a power loss at any point, plus injected I/O errors:
//   - Crash(kDropUnsynced): every file reverts to its last synced contents and every directory
//     to its last synced set of names.
//   - Crash(kTornLastWrite): as above, but a sector-aligned prefix (random length) of each
//     file's last unsynced write survives.
//   - Crash(kFlipBits): as kDropUnsynced's names, but unsynced data survives with random bits
//     flipped inside the unsynced ranges.
//   - FlipBit(path, pos): flips one bit anywhere (media corruption).
//   - FailWritesWithNoSpace(n): the next n WriteAt/Allocate calls fail with ENOSPC (kNoSpace).
//   - FailNextSyncs(n): the next n File::Sync or WholeSync::Sync calls fail with EIO (kIOError)
//     and sync nothing.
//   - FailOpensAndRenamesOf(path): until cleared, Open of `path` and Rename from it fail with
//     EIO (an unreadable file); Remove still works.
// OpenWholeSync gives a handle whose Sync makes every file and name durable (syncfs).
// Files opened before a Crash must not be used after it (they refer to the pre-crash state).
// Thread-safety: every method may be called from any thread (one internal mutex).

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "rill/storage/file_system.h"

namespace rill::storage {

class FaultyFileSystem : public FileSystem {
 public:
  enum class CrashMode { kDropUnsynced, kTornLastWrite, kFlipBits };
  // Sector size used for torn writes: a crash keeps whole sectors of the last write only.
  static constexpr uint64_t kSectorSize = 512;

  explicit FaultyFileSystem(uint64_t seed = 1);
  ~FaultyFileSystem() override;

  Result<std::unique_ptr<File>> Open(const std::string& path, bool create,
                                     bool truncate = false) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status CreateDir(const std::string& dir) override;
  Status RemoveDirAll(const std::string& dir) override;
  Status SyncDir(const std::string& dir) override;
  bool Exists(const std::string& path) override;
  Result<std::unique_ptr<WholeSync>> OpenWholeSync(const std::string& dir) override;

  void Crash(CrashMode mode);
  void FlipBit(const std::string& path, uint64_t pos, int bit);
  void FailWritesWithNoSpace(int n);
  void FailNextSyncs(int n);
  void FailOpensAndRenamesOf(const std::string& path, bool fail = true);
  // Unsynced bytes of a file (0 when absent); for tests' own checks.
  uint64_t UnsyncedBytes(const std::string& path);
  // Current contents of a file (empty when absent).
  std::string Contents(const std::string& path);
  // WholeSync::Sync calls so far, failed ones included.
  int whole_syncs();

  struct Inode;

 private:
  friend class FaultyFile;
  friend class FaultyWholeSync;
  Status SyncAll();
  std::string Parent(const std::string& path) const;

  std::mutex mu_;
  std::mt19937_64 rng_;
  // Current namespace and the namespace as of the last SyncDir of each directory.
  std::map<std::string, std::shared_ptr<Inode>> files_;
  std::map<std::string, std::shared_ptr<Inode>> durable_files_;
  std::set<std::string> dirs_;
  int no_space_ = 0;
  int failed_syncs_ = 0;
  std::set<std::string> unreadable_;
  int whole_syncs_ = 0;
};

}  // namespace rill::storage
