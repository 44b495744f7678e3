#pragma once

// Persistence of a Raft node: the seam between the pure core and a disk. The core never calls
// it; the driver writes each Ready through it (PersistReady) and reads it back on restart (Load).

#include <functional>
#include <vector>

#include "rill/proto/status.h"
#include "rill/replication/raft.h"
#include "rill/replication/raft_types.h"

namespace rill::raft {

// Thread-safety: none; one driver owns a storage. Every write is buffered until Sync() returns
// OK; after a crash only synced writes may be assumed to survive (and writes survive in order: a
// later write never survives without the earlier ones). After a failed write or sync the state on
// disk is unknown and the implementation refuses further writes (kFailed).
class RaftLogStorage {
 public:
  virtual ~RaftLogStorage() = default;
  // The stored state: what a restarted node is created from.
  virtual Result<RaftInitialState> Load() = 0;
  // Stores `entries` (contiguous), replacing every stored entry at or after
  // entries.front().index. The first index must be in (snapshot index, last stored index + 1].
  virtual Status Append(const std::vector<Entry>& entries) = 0;
  virtual Status SaveHardState(const HardState& hard_state) = 0;
  // Stores `snapshot` and drops the entries it covers. If the stored log does not hold the
  // snapshot's last entry with the same term, every stored entry is dropped.
  virtual Status SaveSnapshot(const Snapshot& snapshot) = 0;
  // Makes every earlier write durable.
  virtual Status Sync() = 0;
};

// Steps 1-4 of the Ready contract: snapshot, entries, hard state, then Sync if must_sync.
Status PersistReady(RaftLogStorage& storage, const Ready& ready);

// In-memory storage for tests and the simulator. It keeps two copies of the state: `current`
// (every write) and `durable` (writes up to the last Sync). Crash() models a power cut: the
// unsynced writes are lost, except possibly a prefix of them (a disk that wrote some in order).
class MemoryRaftStorage final : public RaftLogStorage {
 public:
  Result<RaftInitialState> Load() override;
  Status Append(const std::vector<Entry>& entries) override;
  Status SaveHardState(const HardState& hard_state) override;
  Status SaveSnapshot(const Snapshot& snapshot) override;
  Status Sync() override;

  // Drops the unsynced writes, keeping the first `keep_unsynced` of them (clamped).
  void Crash(size_t keep_unsynced = 0);
  size_t unsynced_writes() const { return unsynced_.size(); }
  const RaftInitialState& current() const { return current_; }
  const RaftInitialState& durable() const { return durable_; }

 private:
  using Write = std::function<void(RaftInitialState&)>;
  Status Do(Write write);

  RaftInitialState current_;
  RaftInitialState durable_;
  std::vector<Write> unsynced_;  // writes applied to current_ but not yet to durable_
};

// Applies the storage semantics above to an in-memory state; shared by implementations.
void ApplyAppend(RaftInitialState& state, const std::vector<Entry>& entries);
void ApplySnapshot(RaftInitialState& state, const Snapshot& snapshot);

}  // namespace rill::raft
