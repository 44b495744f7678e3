#include "rill/replication/raft_storage.h"

namespace rill::raft {

Status PersistReady(RaftLogStorage& storage, const Ready& ready) {
  if (ready.snapshot) RILL_RETURN_IF_ERROR(storage.SaveSnapshot(*ready.snapshot));
  if (!ready.entries.empty()) RILL_RETURN_IF_ERROR(storage.Append(ready.entries));
  if (ready.hard_state) RILL_RETURN_IF_ERROR(storage.SaveHardState(*ready.hard_state));
  if (ready.must_sync) RILL_RETURN_IF_ERROR(storage.Sync());
  return Status::OK();
}

static LogIndex FirstIndex(const RaftInitialState& s) {
  return s.snapshot ? s.snapshot->metadata.index + 1 : LogIndex(1);
}

void ApplyAppend(RaftInitialState& s, const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  LogIndex first = FirstIndex(s);
  LogIndex from = entries.front().index;
  RILL_ASSERT(from >= first && from <= first + s.entries.size(),
              "append at %lu leaves a gap or rewrites the snapshot (log is [%lu, %lu])",
              (unsigned long)from.value(), (unsigned long)first.value(),
              (unsigned long)(first.value() + s.entries.size() - 1));
  s.entries.resize(from - first);
  s.entries.insert(s.entries.end(), entries.begin(), entries.end());
}

void ApplySnapshot(RaftInitialState& s, const Snapshot& snapshot) {
  LogIndex first = FirstIndex(s);
  LogIndex index = snapshot.metadata.index;
  std::vector<Entry> keep;
  if (index >= first && index < first + s.entries.size() &&
      s.entries[index - first].term == snapshot.metadata.term) {
    keep.assign(s.entries.begin() + (index - first) + 1, s.entries.end());
  } else if (index < first - 1) {
    return;  // older than what we have
  }
  s.entries = std::move(keep);
  s.snapshot = snapshot;
  if (s.hard_state.commit < index) s.hard_state.commit = index;
}

Result<RaftInitialState> MemoryRaftStorage::Load() { return current_; }

Status MemoryRaftStorage::Do(Write write) {
  write(current_);
  unsynced_.push_back(std::move(write));
  return Status::OK();
}

Status MemoryRaftStorage::Append(const std::vector<Entry>& entries) {
  return Do([entries](RaftInitialState& s) { ApplyAppend(s, entries); });
}

Status MemoryRaftStorage::SaveHardState(const HardState& hs) {
  return Do([hs](RaftInitialState& s) { s.hard_state = hs; });
}

Status MemoryRaftStorage::SaveSnapshot(const Snapshot& snapshot) {
  return Do([snapshot](RaftInitialState& s) { ApplySnapshot(s, snapshot); });
}

Status MemoryRaftStorage::Sync() {
  for (Write& w : unsynced_) w(durable_);
  unsynced_.clear();
  return Status::OK();
}

void MemoryRaftStorage::Crash(size_t keep_unsynced) {
  keep_unsynced = std::min(keep_unsynced, unsynced_.size());
  for (size_t i = 0; i < keep_unsynced; ++i) unsynced_[i](durable_);
  unsynced_.clear();
  current_ = durable_;
}

}  // namespace rill::raft
