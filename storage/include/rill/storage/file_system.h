#pragma once

// The filesystem seam (docs/CONVENTIONS.md §6): every byte the log and its indexes put on disk
// goes through these interfaces, so tests can swap the POSIX implementation for FaultyFileSystem
// (dropped unsynced data, torn writes, bit flips, ENOSPC, fsync errors).
//
// Errors: every method returns a Status; ENOSPC maps to kNoSpace, ENOENT to kNotFound, any other
// errno to kIOError, with a message naming the operation, the path and strerror.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rill/proto/status.h"

namespace rill::storage {

// An open file used for positional writes and reads.
// Thread-safety: ReadAt may be called from any number of threads concurrently with each other and
// with one thread calling WriteAt/Sync/Truncate/Allocate (pread and pwrite on one descriptor).
class File {
 public:
  virtual ~File() = default;
  // Writes all of `data` at `pos` (pwrite, retried on short writes). The file grows if needed.
  virtual Status WriteAt(uint64_t pos, std::string_view data) = 0;
  // Reads up to `n` bytes at `pos` into `buf`; returns the count read (short at end of file).
  virtual Result<size_t> ReadAt(uint64_t pos, char* buf, size_t n) const = 0;
  // fdatasync: data written so far (and the size needed to read it) survives a crash.
  virtual Status Sync() = 0;
  // Sets the file size (ftruncate); shrinking drops the bytes beyond `size`.
  virtual Status Truncate(uint64_t size) = 0;
  // Reserves blocks for [0, size) without changing contents (fallocate with KEEP_SIZE off).
  virtual Status Allocate(uint64_t size) = 0;
  virtual Result<uint64_t> Size() const = 0;
  virtual const std::string& path() const = 0;
  // Advice that [offset, offset + len) is not needed in the page cache any more
  // (posix_fadvise DONTNEED on synced data). Changes no content; a no-op where unsupported.
  virtual void DropCache(uint64_t offset, uint64_t len) {
    (void)offset;
    (void)len;
  }
  // Starts writeback of [offset, offset + len) to the device (sync_file_range WRITE) and, when
  // `wait`, first waits for any writeback of the range already under way and then for this one
  // (WAIT_BEFORE | WRITE | WAIT_AFTER). Neither the metadata nor the device cache is flushed: it
  // makes no promise about a crash (only Sync does). A no-op where unsupported.
  virtual Status WriteBack(uint64_t offset, uint64_t len, bool wait) {
    (void)offset;
    (void)len;
    (void)wait;
    return Status::OK();
  }
};

// A filesystem-wide sync (syncfs(2)) of the filesystem holding one directory: one call makes
// every file's written data and every directory's names on it durable, however many files were
// written — what lets one flush round serve many logs at once (docs/STORAGE.md, Writing: shared
// syncs). Linux reports through syncfs any writeback error on the filesystem since the handle was
// opened (kernels from 5.8; OpenWholeSync refuses older ones), but not which file it hit: a caller
// whose Sync fails falls back to syncing its own files, whose errors are per file.
// Thread-safety: Sync and Covers may be called from any thread.
class WholeSync {
 public:
  virtual ~WholeSync() = default;
  virtual Status Sync() = 0;
  // True when `path` is on the filesystem this handle syncs.
  virtual bool Covers(const std::string& path) const = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // Opens `path` for reading and writing; creates it when `create` is true (and empties it
  // when `truncate` is true). kNotFound when it does not exist and `create` is false.
  virtual Result<std::unique_ptr<File>> Open(const std::string& path, bool create,
                                             bool truncate = false) = 0;
  // Atomically replaces `to` with `from` (rename(2)). Durable only after SyncDir of the parent.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // Removes a file. kNotFound when absent.
  virtual Status Remove(const std::string& path) = 0;
  // Names (not paths) of the entries of a directory, without "." and "..".
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // Creates a directory (and missing parents). OK when it exists already.
  virtual Status CreateDir(const std::string& dir) = 0;
  // Removes a directory and everything under it.
  virtual Status RemoveDirAll(const std::string& dir) = 0;
  // fsync of a directory: makes creations, renames and removals in it durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual bool Exists(const std::string& path) = 0;
  // A WholeSync of the filesystem holding `dir`, kept open for as long as it is used (its error
  // cursor starts at the open). kUnavailable where the kernel cannot report writeback errors
  // through syncfs or the filesystem cannot be synced as a whole.
  virtual Result<std::unique_ptr<WholeSync>> OpenWholeSync(const std::string& dir) {
    return Status::Unavailable("no filesystem-wide sync for " + dir);
  }
};

// The process-wide POSIX filesystem (never null, never destroyed).
FileSystem* DefaultFileSystem();

// Helpers.
std::string JoinPath(std::string_view dir, std::string_view name);
// Writes `contents` to `path` atomically: temp file, fdatasync, rename, fsync of the directory.
Status WriteFileAtomically(FileSystem* fs, const std::string& path, std::string_view contents);
// Reads a whole file.
Result<std::string> ReadWholeFile(FileSystem* fs, const std::string& path);

}  // namespace rill::storage
