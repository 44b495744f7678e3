#pragma once

// DiskRaftStorage: RaftLogStorage on disk, through storage/'s FileSystem seam. A directory holds
// three files (the format is in replication/README.md):
//   hardstate  term and vote (and the commit index then), replaced atomically and fsynced by
//              SaveHardState whenever term or vote changes — before the node may act on them.
//   snapshot   the latest snapshot, replaced atomically and fsynced by SaveSnapshot.
//   log        an append-only file of CRC32C-checked records: entries and commit-index updates.
//              A record for index i replaces every earlier record for indexes >= i. Made
//              durable by Sync(); rewritten (atomically) without the covered prefix by
//              SaveSnapshot.
// Open() replays the log and truncates a torn or corrupt tail (the end of the last valid record
// is the end of the log), as a crash during an append leaves one.
//
// Thread-safety: none; one driver owns it. Errors: a failed write or sync fails the storage
// (every later write returns kFailed with the cause); Load keeps working.

#include <memory>
#include <string>

#include "rill/replication/raft_storage.h"
#include "rill/storage/file_system.h"

namespace rill::raft {

class DiskRaftStorage final : public RaftLogStorage {
 public:
  // Opens or creates the storage in `dir`. `fs` must outlive it. Corruption when the snapshot
  // or hard state file fails its CRC (they are replaced atomically, so that is not a torn write).
  static Result<std::unique_ptr<DiskRaftStorage>> Open(storage::FileSystem* fs, std::string dir);

  Result<RaftInitialState> Load() override;
  Status Append(const std::vector<Entry>& entries) override;
  Status SaveHardState(const HardState& hard_state) override;
  Status SaveSnapshot(const Snapshot& snapshot) override;
  Status Sync() override;

  // Bytes dropped from the log's tail by Open (a torn last write), for logs and tests.
  uint64_t truncated_tail_bytes() const { return truncated_tail_bytes_; }

 private:
  DiskRaftStorage(storage::FileSystem* fs, std::string dir) : fs_(fs), dir_(std::move(dir)) {}
  Status Recover();
  Status WriteRecord(const std::string& payload);
  Status RewriteLog();
  Status Check() const;
  Status Failed(Status cause);

  storage::FileSystem* const fs_;
  const std::string dir_;
  std::unique_ptr<storage::File> log_;
  uint64_t write_pos_ = 0;
  uint64_t truncated_tail_bytes_ = 0;
  RaftInitialState state_;  // what the files hold (written, not necessarily synced)
  Status failure_;
};

}  // namespace rill::raft
