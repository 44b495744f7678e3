#pragma once

// FileRaftStorage: the controller's Raft log on disk, one file `<dir>/raft.log` of framed
// records (the RaftLogStorage contract of replication/raft_storage.h).
//
// Format: a sequence of frames [u32 length BE][u32 CRC32C of payload BE][payload], each payload a
// serialized rill.internal.v1.RaftStoredRecord holding appended entries, a hard state, or a
// snapshot. Load replays the frames in order (entries replace stored entries from their first
// index on; a snapshot replaces everything it covers) and stops at the first frame that is torn
// or fails its CRC, truncating the file there: only a crash while appending can leave one, and
// nothing after it was ever synced. SaveSnapshot rewrites the file (snapshot, kept entries,
// hard state) into `raft.log.tmp`, fsyncs it, renames it over `raft.log` and fsyncs the directory,
// so the file's size is bounded by the snapshot plus the entries since.
//
// Thread-safety: none; one driver owns it. After a failed write or sync every later call fails
// with kFailed (the file's state is unknown).

#include <memory>
#include <string>

#include "rill/replication/raft_storage.h"

namespace rill::broker {

class FileRaftStorage final : public raft::RaftLogStorage {
 public:
  // Creates `dir` if needed and opens (or creates) its raft.log.
  static Result<std::unique_ptr<FileRaftStorage>> Open(const std::string& dir);
  ~FileRaftStorage() override;

  Result<raft::RaftInitialState> Load() override;
  Status Append(const std::vector<raft::Entry>& entries) override;
  Status SaveHardState(const raft::HardState& hard_state) override;
  Status SaveSnapshot(const raft::Snapshot& snapshot) override;
  Status Sync() override;

 private:
  FileRaftStorage(std::string dir, int fd);
  Status WriteFrame(const std::string& payload);
  Status Fail(Status st);

  std::string dir_;
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;             // bytes of valid frames in the file
  raft::RaftInitialState state_;  // what the file holds, kept to rewrite it on SaveSnapshot
  bool loaded_ = false;
  Status failed_;
};

}  // namespace rill::broker
