#include "file_raft_storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "raft_codec.h"
#include "rill/internal/v1/raft.pb.h"
#include "rill/proto/crc32c.h"
#include "rill/proto/endian.h"

namespace rill::broker {
namespace {

namespace pb = internal::v1;
constexpr size_t kFrameHeader = 8;
constexpr uint32_t kMaxFrame = 256u << 20;  // a frame larger than this is corrupt

Status Errno(const std::string& op, const std::string& path) {
  int e = errno;
  std::string m = op + " " + path + ": " + std::strerror(e);
  return e == ENOSPC ? Status::NoSpace(m) : Status::IOError(m);
}

Status WriteAll(int fd, uint64_t pos, const std::string& data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, pos + done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("pwrite", path);
    }
    done += static_cast<size_t>(n);
  }
  return Status::OK();
}

std::string Frame(const std::string& payload) {
  std::string out(kFrameHeader, '\0');
  be::Store32(out.data(), static_cast<uint32_t>(payload.size()));
  be::Store32(out.data() + 4, crc32c::Value(payload));
  out += payload;
  return out;
}

Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("open", dir);
  int rc = ::fsync(fd);
  Status st = rc == 0 ? Status::OK() : Errno("fsync", dir);
  ::close(fd);
  return st;
}

}  // namespace

Result<std::unique_ptr<FileRaftStorage>> FileRaftStorage::Open(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("create directory " + dir + ": " + ec.message());
  std::string path = dir + "/raft.log";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("open", path);
  return std::unique_ptr<FileRaftStorage>(new FileRaftStorage(dir, fd));
}

FileRaftStorage::FileRaftStorage(std::string dir, int fd)
    : dir_(std::move(dir)), path_(dir_ + "/raft.log"), fd_(fd) {}

FileRaftStorage::~FileRaftStorage() {
  if (fd_ >= 0) ::close(fd_);
}

Status FileRaftStorage::Fail(Status st) {
  failed_ = Status::Failed("raft log " + path_ + " failed earlier: " + st.ToString());
  return st;
}

Result<raft::RaftInitialState> FileRaftStorage::Load() {
  if (!failed_.ok()) return failed_;
  struct stat sb;
  if (::fstat(fd_, &sb) != 0) return Fail(Errno("fstat", path_));
  std::string data(static_cast<size_t>(sb.st_size), '\0');
  size_t got = 0;
  while (got < data.size()) {
    ssize_t n = ::pread(fd_, data.data() + got, data.size() - got, got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail(Errno("pread", path_));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  data.resize(got);

  raft::RaftInitialState state;
  uint64_t pos = 0;
  while (pos + kFrameHeader <= data.size()) {
    uint32_t len = be::Load32(data.data() + pos);
    uint32_t crc = be::Load32(data.data() + pos + 4);
    if (len > kMaxFrame || pos + kFrameHeader + len > data.size()) break;
    std::string_view payload(data.data() + pos + kFrameHeader, len);
    if (crc32c::Value(payload) != crc) break;
    pb::RaftStoredRecord rec;
    if (!rec.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) break;
    if (rec.has_snapshot()) raft::ApplySnapshot(state, DecodeRaftSnapshot(rec.snapshot()));
    if (rec.entries_size() > 0) {
      std::vector<raft::Entry> entries;
      for (const pb::RaftEntry& e : rec.entries()) {
        Result<raft::Entry> entry = DecodeRaftEntry(e);
        if (!entry.ok()) {
          return Status::Corruption("raft log " + path_ + " at position " + std::to_string(pos) +
                                    ": " + entry.status().ToString());
        }
        entries.push_back(std::move(entry).value());
      }
      raft::LogIndex first =
          state.snapshot ? state.snapshot->metadata.index + 1 : raft::LogIndex(1);
      if (entries.front().index < first || entries.front().index > first + state.entries.size()) {
        return Status::Corruption(
            "raft log " + path_ + " at position " + std::to_string(pos) + ": entries from index " +
            std::to_string(entries.front().index.value()) + " do not follow the stored log");
      }
      raft::ApplyAppend(state, entries);
    }
    if (rec.has_hard_state()) state.hard_state = DecodeRaftHardState(rec.hard_state());
    pos += kFrameHeader + len;
  }
  if (pos < data.size()) {
    // A torn or corrupt tail: only an append interrupted by a crash leaves one. Drop it so
    // that new frames follow the last good one.
    if (::ftruncate(fd_, static_cast<off_t>(pos)) != 0) return Fail(Errno("ftruncate", path_));
    if (::fdatasync(fd_) != 0) return Fail(Errno("fdatasync", path_));
  }
  size_ = pos;
  state_ = state;
  loaded_ = true;
  return state;
}

Status FileRaftStorage::WriteFrame(const std::string& payload) {
  if (!failed_.ok()) return failed_;
  RILL_ASSERT(loaded_, "FileRaftStorage written before Load");
  std::string frame = Frame(payload);
  Status st = WriteAll(fd_, size_, frame, path_);
  if (!st.ok()) return Fail(st);
  size_ += frame.size();
  return Status::OK();
}

Status FileRaftStorage::Append(const std::vector<raft::Entry>& entries) {
  if (entries.empty()) return Status::OK();
  pb::RaftStoredRecord rec;
  for (const raft::Entry& e : entries) EncodeRaftEntry(e, rec.add_entries());
  RILL_RETURN_IF_ERROR(WriteFrame(rec.SerializeAsString()));
  raft::ApplyAppend(state_, entries);
  return Status::OK();
}

Status FileRaftStorage::SaveHardState(const raft::HardState& hard_state) {
  pb::RaftStoredRecord rec;
  EncodeRaftHardState(hard_state, rec.mutable_hard_state());
  RILL_RETURN_IF_ERROR(WriteFrame(rec.SerializeAsString()));
  state_.hard_state = hard_state;
  return Status::OK();
}

Status FileRaftStorage::SaveSnapshot(const raft::Snapshot& snapshot) {
  if (!failed_.ok()) return failed_;
  RILL_ASSERT(loaded_, "FileRaftStorage written before Load");
  raft::RaftInitialState next = state_;
  raft::ApplySnapshot(next, snapshot);

  // Rewrite the whole file: snapshot, kept entries, hard state.
  std::string contents;
  {
    pb::RaftStoredRecord rec;
    if (next.snapshot) EncodeRaftSnapshot(*next.snapshot, rec.mutable_snapshot());
    contents += Frame(rec.SerializeAsString());
  }
  if (!next.entries.empty()) {
    pb::RaftStoredRecord rec;
    for (const raft::Entry& e : next.entries) EncodeRaftEntry(e, rec.add_entries());
    contents += Frame(rec.SerializeAsString());
  }
  {
    pb::RaftStoredRecord rec;
    EncodeRaftHardState(next.hard_state, rec.mutable_hard_state());
    contents += Frame(rec.SerializeAsString());
  }
  std::string tmp = path_ + ".tmp";
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Fail(Errno("open", tmp));
  Status st = WriteAll(fd, 0, contents, tmp);
  if (st.ok() && ::fdatasync(fd) != 0) st = Errno("fdatasync", tmp);
  if (!st.ok()) {
    ::close(fd);
    return Fail(st);
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    ::close(fd);
    return Fail(Errno("rename", tmp));
  }
  st = SyncDir(dir_);
  if (!st.ok()) {
    ::close(fd);
    return Fail(st);
  }
  ::close(fd_);
  fd_ = fd;
  size_ = contents.size();
  state_ = std::move(next);
  return Status::OK();
}

Status FileRaftStorage::Sync() {
  if (!failed_.ok()) return failed_;
  if (::fdatasync(fd_) != 0) return Fail(Errno("fdatasync", path_));
  return Status::OK();
}

}  // namespace rill::broker
