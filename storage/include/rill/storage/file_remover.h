#pragma once

// FileRemover: removes large files without stalling every fsync on the disk.
//
// On ext4 mounted with `discard` (usual on cloud VMs, and the test machine's root) the journal
// commit that carries an unlink also trims every block the file freed, and each fsync on the
// disk waits for that commit: 80-100 ms per GiB removed here (bench/scripts/unlink_probe.py),
// a stall of every partition's group commit whenever retention or a truncation drops a segment.
// The remover instead shrinks the file with ftruncate in steps of `step_bytes`, each made durable
// (which commits that step's trim: 3.5 ms per 8 MiB step in the probe), at most
// `rate_bytes_per_sec`, and unlinks what is left.
//
// Remove() first renames the file to "<path>.<n>.deleted" (so its name is free at once and
// recovery never takes it for a segment) and queues it; a crash leaves the .deleted file, which the
// next Log::Open hands back with Enqueue(). Files below `step_bytes` are unlinked at once.
//
// Thread-safety: every method may be called from any thread. One background thread does the
// work; the destructor stops it, leaving what is still queued on disk under its .deleted name.
// The FileSystem must outlive the remover.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "rill/proto/status.h"
#include "rill/storage/file_system.h"

namespace rill::storage {

class FileRemover {
 public:
  static constexpr std::string_view kDeletedSuffix = ".deleted";

  struct Options {
    // 0: every file and directory is removed at once, on the calling thread (no background
    // thread), as a plain unlink would.
    uint64_t step_bytes = 8u << 20;
    uint64_t rate_bytes_per_sec = 256u << 20;  // 0: no pause between steps
  };

  FileRemover(FileSystem* fs, Options options);
  ~FileRemover();
  FileRemover(const FileRemover&) = delete;
  FileRemover& operator=(const FileRemover&) = delete;

  // Removes `path`: at once when it is small, else renamed to "<path>.<n>.deleted" and queued. OK
  // when it does not exist. The rename is durable only after a SyncDir of the parent. The file
  // is not shrunk while `holder` has other owners than the remover (a reader holding the
  // segment must keep reading its bytes, as it would from an unlinked file).
  Status Remove(const std::string& path, std::shared_ptr<const void> holder = nullptr);
  // Removes directory `dir` and everything in it the same way: renamed at once to
  // "<dir>.<n>.deleted" (a name no partition directory has), then each file shrunk and unlinked,
  // then the directory. OK when it does not exist.
  Status RemoveDir(const std::string& dir);
  // Queues an existing "<...>.deleted" file or directory (one left by a crash).
  void Enqueue(std::string deleted_path, bool is_dir = false);
  // Waits until nothing is queued or being removed (tests).
  void WaitIdle();

  const Options& options() const { return options_; }
  // Times a queued file was put back because its holder was still shared.
  uint64_t deferrals() const { return deferrals_.load(std::memory_order_relaxed); }

 private:
  void Run();
  // Shrinks `path` step by step and unlinks it; a failure falls back to a plain unlink.
  void ShrinkAndRemove(const std::string& path);
  void RemoveDirNow(const std::string& dir);
  // fsyncs the directory holding `path` (its .deleted name); false when that failed.
  bool RenameIsDurable(const std::string& path);

  FileSystem* const fs_;
  const Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  struct Item {
    std::string path;
    std::shared_ptr<const void> holder;
    bool dir = false;
  };
  std::deque<Item> queue_;  // guarded by mu_
  bool busy_ = false;       // guarded by mu_: a file is being removed
  bool stop_ = false;       // guarded by mu_
  std::atomic<uint64_t> deferrals_{0};
  std::thread thread_;
};

}  // namespace rill::storage
