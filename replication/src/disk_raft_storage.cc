#include "rill/replication/disk_raft_storage.h"

#include "rill/proto/crc32c.h"
#include "rill/proto/endian.h"

namespace rill::raft {
namespace {

constexpr char kHardStateFile[] = "hardstate";
constexpr char kSnapshotFile[] = "snapshot";
constexpr char kLogFile[] = "log";
constexpr char kLogTmpFile[] = "log.tmp";
constexpr uint32_t kMaxRecordBytes = 64u << 20;  // an entry larger than this is corruption
constexpr uint8_t kEntryRecord = 1;
constexpr uint8_t kCommitRecord = 2;
// Snapshot header: the high bit of the voter count says a learner list follows the voters.
// Snapshots written before learners existed never set it (their count is <= kMaxMembers), so
// they decode with no learners; a snapshot without learners is still written in that format.
constexpr uint32_t kHasLearnersFlag = 0x80000000u;
constexpr uint32_t kMaxMembers = 1024;

void Put8(std::string& s, uint8_t v) { s.push_back(static_cast<char>(v)); }
void Put32(std::string& s, uint32_t v) {
  char b[4];
  be::Store32(b, v);
  s.append(b, 4);
}
void Put64(std::string& s, uint64_t v) {
  char b[8];
  be::Store64(b, v);
  s.append(b, 8);
}

// Reads fixed-size fields from a byte view; `ok` turns false on underflow.
struct Reader {
  std::string_view in;
  bool ok = true;
  uint8_t U8() {
    if (in.size() < 1) return ok = false, 0;
    uint8_t v = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    return v;
  }
  uint32_t U32() {
    if (in.size() < 4) return ok = false, 0;
    uint32_t v = be::Load32(in.data());
    in.remove_prefix(4);
    return v;
  }
  uint64_t U64() {
    if (in.size() < 8) return ok = false, 0;
    uint64_t v = be::Load64(in.data());
    in.remove_prefix(8);
    return v;
  }
};

// A file body framed as crc32c(payload) + payload.
std::string Framed(const std::string& payload) {
  std::string s;
  Put32(s, crc32c::Value(payload));
  s += payload;
  return s;
}
Result<std::string_view> Unframe(std::string_view file, const std::string& what) {
  if (file.size() < 4 || be::Load32(file.data()) != crc32c::Value(file.substr(4))) {
    return Status::Corruption(what + ": bad CRC or truncated");
  }
  return file.substr(4);
}

std::string EncodeEntry(const Entry& e) {
  std::string p;
  Put8(p, kEntryRecord);
  Put64(p, e.term.value());
  Put64(p, e.index.value());
  Put8(p, static_cast<uint8_t>(e.type));
  p += e.data;
  return p;
}

std::string EncodeSnapshot(const Snapshot& s) {
  std::string p;
  Put64(p, s.metadata.index.value());
  Put64(p, s.metadata.term.value());
  const Configuration& c = s.metadata.configuration;
  uint32_t voters = static_cast<uint32_t>(c.voters.size());
  Put32(p, c.learners.empty() ? voters : voters | kHasLearnersFlag);
  for (NodeId id : c.voters) Put32(p, static_cast<uint32_t>(id.value()));
  if (!c.learners.empty()) {
    Put32(p, static_cast<uint32_t>(c.learners.size()));
    for (NodeId id : c.learners) Put32(p, static_cast<uint32_t>(id.value()));
  }
  p += s.data;
  return p;
}

Result<Snapshot> DecodeSnapshot(std::string_view p) {
  Reader r{p};
  Snapshot s;
  s.metadata.index = LogIndex(r.U64());
  s.metadata.term = Term(r.U64());
  uint32_t n = r.U32();
  bool has_learners = (n & kHasLearnersFlag) != 0;
  n &= ~kHasLearnersFlag;
  if (!r.ok || n > kMaxMembers) return Status::Corruption("raft snapshot header is malformed");
  for (uint32_t i = 0; i < n; ++i) s.metadata.configuration.voters.push_back(NodeId(r.U32()));
  if (!r.ok) return Status::Corruption("raft snapshot voter list is truncated");
  if (has_learners) {
    uint32_t l = r.U32();
    if (!r.ok || l > kMaxMembers) return Status::Corruption("raft snapshot learner count is bad");
    for (uint32_t i = 0; i < l; ++i) s.metadata.configuration.learners.push_back(NodeId(r.U32()));
    if (!r.ok) return Status::Corruption("raft snapshot learner list is truncated");
  }
  s.data = std::string(r.in);
  return s;
}

}  // namespace

Result<std::unique_ptr<DiskRaftStorage>> DiskRaftStorage::Open(storage::FileSystem* fs,
                                                               std::string dir) {
  RILL_RETURN_IF_ERROR(fs->CreateDir(dir));
  std::unique_ptr<DiskRaftStorage> s(new DiskRaftStorage(fs, std::move(dir)));
  RILL_RETURN_IF_ERROR(s->Recover());
  return s;
}

Status DiskRaftStorage::Recover() {
  std::string hs_path = storage::JoinPath(dir_, kHardStateFile);
  std::string snap_path = storage::JoinPath(dir_, kSnapshotFile);
  std::string log_path = storage::JoinPath(dir_, kLogFile);
  // A leftover of an interrupted rewrite; the real log is intact.
  if (fs_->Exists(storage::JoinPath(dir_, kLogTmpFile))) {
    RILL_RETURN_IF_ERROR(fs_->Remove(storage::JoinPath(dir_, kLogTmpFile)));
  }
  if (fs_->Exists(hs_path)) {
    RILL_ASSIGN_OR_RETURN(std::string file, storage::ReadWholeFile(fs_, hs_path));
    RILL_ASSIGN_OR_RETURN(std::string_view p, Unframe(file, "raft hard state " + hs_path));
    Reader r{p};
    state_.hard_state.term = Term(r.U64());
    state_.hard_state.vote = NodeId(static_cast<int32_t>(r.U32()));
    state_.hard_state.commit = LogIndex(r.U64());
    if (!r.ok) return Status::Corruption("raft hard state " + hs_path + " is truncated");
  }
  std::optional<Snapshot> snapshot;
  if (fs_->Exists(snap_path)) {
    RILL_ASSIGN_OR_RETURN(std::string file, storage::ReadWholeFile(fs_, snap_path));
    RILL_ASSIGN_OR_RETURN(std::string_view p, Unframe(file, "raft snapshot " + snap_path));
    RILL_ASSIGN_OR_RETURN(Snapshot snap, DecodeSnapshot(p));
    snapshot = std::move(snap);
  }

  // Replay the log: records in order, each entry replacing the suffix from its index.
  bool log_existed = fs_->Exists(log_path);
  RILL_ASSIGN_OR_RETURN(log_, fs_->Open(log_path, /*create=*/true));
  if (!log_existed) RILL_RETURN_IF_ERROR(fs_->SyncDir(dir_));  // the new file's name is durable
  RILL_ASSIGN_OR_RETURN(uint64_t size, log_->Size());
  std::string bytes(size, '\0');
  if (size > 0) {
    RILL_ASSIGN_OR_RETURN(size_t n, log_->ReadAt(0, bytes.data(), size));
    bytes.resize(n);
  }
  std::vector<Entry> entries;
  LogIndex commit = state_.hard_state.commit;
  uint64_t pos = 0;
  while (pos + 8 <= bytes.size()) {
    uint32_t len = be::Load32(bytes.data() + pos);
    uint32_t crc = be::Load32(bytes.data() + pos + 4);
    if (len == 0 || len > kMaxRecordBytes || pos + 8 + len > bytes.size()) break;
    std::string_view payload(bytes.data() + pos + 8, len);
    if (crc32c::Value(payload) != crc) break;
    Reader r{payload};
    uint8_t kind = r.U8();
    if (kind == kEntryRecord) {
      Entry e;
      e.term = Term(r.U64());
      e.index = LogIndex(r.U64());
      e.type = static_cast<EntryType>(r.U8());
      if (!r.ok) break;
      e.data = std::string(r.in);
      if (!entries.empty() && e.index >= entries.front().index &&
          e.index <= entries.back().index + 1) {
        entries.resize(e.index - entries.front().index);
      } else if (!entries.empty()) {
        return Status::Corruption("raft log " + log_path + " jumps from index " +
                                  std::to_string(entries.back().index.value()) + " to " +
                                  std::to_string(e.index.value()) + " at byte " +
                                  std::to_string(pos));
      }
      entries.push_back(std::move(e));
    } else if (kind == kCommitRecord) {
      LogIndex c(r.U64());
      if (!r.ok) break;
      commit = std::max(commit, c);
    } else {
      break;
    }
    pos += 8 + len;
  }
  if (pos < bytes.size()) {
    // A torn or corrupt tail: the log ends at the last whole record.
    truncated_tail_bytes_ = bytes.size() - pos;
    RILL_RETURN_IF_ERROR(log_->Truncate(pos));
    RILL_RETURN_IF_ERROR(log_->Sync());
  }
  write_pos_ = pos;

  // The log as it was when the snapshot was saved, then the snapshot on top (the rewrite of the
  // log that follows SaveSnapshot may not have happened before a crash).
  LogIndex first = entries.empty() ? LogIndex(1) : entries.front().index;
  if (snapshot) {
    LogIndex si = snapshot->metadata.index;
    if (!entries.empty() && first == si + 1) {
      // Rewritten after this snapshot: the log continues it.
      state_.entries = std::move(entries);
      state_.snapshot = std::move(snapshot);
    } else {
      if (!entries.empty() && first != LogIndex(1)) {
        state_.snapshot = Snapshot{SnapshotMetadata{first - 1, Term(0), {}}, ""};
      }
      state_.entries = std::move(entries);
      ApplySnapshot(state_, *snapshot);
      state_.snapshot = std::move(snapshot);
    }
  } else {
    if (!entries.empty() && first != LogIndex(1)) {
      return Status::Corruption("raft log " + log_path + " starts at index " +
                                std::to_string(first.value()) + " but there is no snapshot");
    }
    state_.entries = std::move(entries);
  }
  LogIndex snap_index = state_.snapshot ? state_.snapshot->metadata.index : LogIndex(0);
  LogIndex last = snap_index + state_.entries.size();
  state_.hard_state.commit = std::min(std::max(commit, snap_index), last);
  return Status::OK();
}

Result<RaftInitialState> DiskRaftStorage::Load() { return state_; }

Status DiskRaftStorage::Check() const {
  if (!failure_.ok())
    return Status::Failed("raft storage in " + dir_ + " failed earlier: " + failure_.ToString());
  return Status::OK();
}

Status DiskRaftStorage::Failed(Status cause) {
  if (failure_.ok()) failure_ = cause;
  return cause;
}

Status DiskRaftStorage::WriteRecord(const std::string& payload) {
  std::string rec;
  rec.reserve(payload.size() + 8);
  Put32(rec, static_cast<uint32_t>(payload.size()));
  Put32(rec, crc32c::Value(payload));
  rec += payload;
  Status st = log_->WriteAt(write_pos_, rec);
  if (!st.ok()) return Failed(st);
  write_pos_ += rec.size();
  return Status::OK();
}

Status DiskRaftStorage::Append(const std::vector<Entry>& entries) {
  RILL_RETURN_IF_ERROR(Check());
  if (entries.empty()) return Status::OK();
  for (const Entry& e : entries) {
    if (e.data.size() + 32 > kMaxRecordBytes) {
      return Status::InvalidArgument("raft entry of " + std::to_string(e.data.size()) +
                                     " bytes exceeds the record limit");
    }
  }
  for (const Entry& e : entries) RILL_RETURN_IF_ERROR(WriteRecord(EncodeEntry(e)));
  ApplyAppend(state_, entries);
  return Status::OK();
}

Status DiskRaftStorage::SaveHardState(const HardState& hs) {
  RILL_RETURN_IF_ERROR(Check());
  if (hs.term == state_.hard_state.term && hs.vote == state_.hard_state.vote) {
    // Only the commit index moved: a log record, made durable by the next Sync.
    if (hs.commit != state_.hard_state.commit) {
      std::string p;
      Put8(p, kCommitRecord);
      Put64(p, hs.commit.value());
      RILL_RETURN_IF_ERROR(WriteRecord(p));
      state_.hard_state.commit = hs.commit;
    }
    return Status::OK();
  }
  // The log records written so far must not be overtaken by the hard state on disk.
  Status st = log_->Sync();
  if (!st.ok()) return Failed(st);
  std::string p;
  Put64(p, hs.term.value());
  Put32(p, static_cast<uint32_t>(hs.vote.value()));
  Put64(p, hs.commit.value());
  st = storage::WriteFileAtomically(fs_, storage::JoinPath(dir_, kHardStateFile), Framed(p));
  if (!st.ok()) return Failed(st);
  state_.hard_state = hs;
  return Status::OK();
}

Status DiskRaftStorage::SaveSnapshot(const Snapshot& snapshot) {
  RILL_RETURN_IF_ERROR(Check());
  Status st = log_->Sync();
  if (!st.ok()) return Failed(st);
  st = storage::WriteFileAtomically(fs_, storage::JoinPath(dir_, kSnapshotFile),
                                    Framed(EncodeSnapshot(snapshot)));
  if (!st.ok()) return Failed(st);
  ApplySnapshot(state_, snapshot);
  return RewriteLog();
}

// Replaces the log file with the entries after the snapshot (temp file, sync, rename).
Status DiskRaftStorage::RewriteLog() {
  std::string tmp = storage::JoinPath(dir_, kLogTmpFile);
  std::string path = storage::JoinPath(dir_, kLogFile);
  auto file = fs_->Open(tmp, /*create=*/true, /*truncate=*/true);
  if (!file.ok()) return Failed(file.status());
  std::string body;
  for (const Entry& e : state_.entries) {
    std::string p = EncodeEntry(e);
    Put32(body, static_cast<uint32_t>(p.size()));
    Put32(body, crc32c::Value(p));
    body += p;
  }
  Status st = (*file)->WriteAt(0, body);
  if (st.ok()) st = (*file)->Sync();
  if (st.ok()) st = fs_->Rename(tmp, path);
  if (st.ok()) st = fs_->SyncDir(dir_);
  if (!st.ok()) return Failed(st);
  log_ = std::move(file).value();
  write_pos_ = body.size();
  return Status::OK();
}

Status DiskRaftStorage::Sync() {
  RILL_RETURN_IF_ERROR(Check());
  Status st = log_->Sync();
  if (!st.ok()) return Failed(st);
  return Status::OK();
}

}  // namespace rill::raft
