#include "rill/storage/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace rill::storage {
namespace {

Status ErrnoStatus(const char* op, const std::string& path, int err) {
  std::string msg = std::string(op) + " " + path + ": " + std::strerror(err);
  if (err == ENOSPC) return Status::NoSpace(std::move(msg));
  if (err == ENOENT) return Status::NotFound(std::move(msg));
  return Status::IOError(std::move(msg));
}

class PosixFile : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override { ::close(fd_); }

  Status WriteAt(uint64_t pos, std::string_view data) override {
    while (!data.empty()) {
      ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(pos));
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("pwrite", path_, errno);
      }
      data.remove_prefix(static_cast<size_t>(n));
      pos += static_cast<uint64_t>(n);
    }
    return Status::OK();
  }

  Result<size_t> ReadAt(uint64_t pos, char* buf, size_t n) const override {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_, buf + done, n - done, static_cast<off_t>(pos + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("pread", path_, errno);
      }
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) return ErrnoStatus("fdatasync", path_, errno);
    return Status::OK();
  }

  void DropCache(uint64_t offset, uint64_t len) override {
    (void)::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(len),
                          POSIX_FADV_DONTNEED);
  }

  Status WriteBack(uint64_t offset, uint64_t len, bool wait) override {
    const unsigned flags =
        wait ? SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER
             : SYNC_FILE_RANGE_WRITE;
    if (::sync_file_range(fd_, static_cast<off64_t>(offset), static_cast<off64_t>(len), flags) !=
        0) {
      return ErrnoStatus("sync_file_range", path_, errno);
    }
    return Status::OK();
  }

  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) {
      return ErrnoStatus("ftruncate", path_, errno);
    }
    return Status::OK();
  }

  Status Allocate(uint64_t size) override {
    int rc = ::posix_fallocate(fd_, 0, static_cast<off_t>(size));
    if (rc != 0) return ErrnoStatus("fallocate", path_, rc);
    return Status::OK();
  }

  Result<uint64_t> Size() const override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return ErrnoStatus("fstat", path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  const std::string& path() const override { return path_; }

 private:
  int fd_;
  std::string path_;
};

class PosixFileSystem : public FileSystem {
 public:
  Result<std::unique_ptr<File>> Open(const std::string& path, bool create, bool truncate) override {
    int flags = O_RDWR | O_CLOEXEC;
    if (create) flags |= O_CREAT;
    if (truncate) flags |= O_TRUNC;
    int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return ErrnoStatus("open", path, errno);
    return std::unique_ptr<File>(new PosixFile(fd, path));
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoStatus("rename", from, errno);
    return Status::OK();
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus("unlink", path, errno);
    return Status::OK();
  }

  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus("opendir", dir, errno);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(d);
    return names;
  }

  Status CreateDir(const std::string& dir) override {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::IOError("mkdir " + dir + ": " + ec.message());
    return Status::OK();
  }

  Status RemoveDirAll(const std::string& dir) override {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (ec) return Status::IOError("remove " + dir + ": " + ec.message());
    return Status::OK();
  }

  Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open dir", dir, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return ErrnoStatus("fsync dir", dir, err);
    return Status::OK();
  }

  bool Exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }

  Result<std::unique_ptr<WholeSync>> OpenWholeSync(const std::string& dir) override {
    if (!KernelReportsSyncfsErrors()) {
      return Status::Unavailable("syncfs does not report writeback errors before Linux 5.8");
    }
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("open dir", dir, errno);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      const int err = errno;
      ::close(fd);
      return ErrnoStatus("stat", dir, err);
    }
    return std::unique_ptr<WholeSync>(new PosixWholeSync(fd, st.st_dev, dir));
  }

 private:
  class PosixWholeSync : public WholeSync {
   public:
    PosixWholeSync(int fd, dev_t dev, std::string dir) : fd_(fd), dev_(dev), dir_(std::move(dir)) {}
    ~PosixWholeSync() override { ::close(fd_); }
    Status Sync() override {
      if (::syncfs(fd_) != 0) return ErrnoStatus("syncfs", dir_, errno);
      return Status::OK();
    }
    bool Covers(const std::string& path) const override {
      struct stat st;
      return ::stat(path.c_str(), &st) == 0 && st.st_dev == dev_;
    }

   private:
    const int fd_;
    const dev_t dev_;
    const std::string dir_;
  };

  // syncfs(2) returns writeback errors since Linux 5.8; before, it always succeeded.
  static bool KernelReportsSyncfsErrors() {
    struct utsname u;
    if (::uname(&u) != 0) return false;
    int major = 0, minor = 0;
    if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
    return major > 5 || (major == 5 && minor >= 8);
  }
};

std::string ParentDir(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

}  // namespace

FileSystem* DefaultFileSystem() {
  static auto* fs = new PosixFileSystem();
  return fs;
}

std::string JoinPath(std::string_view dir, std::string_view name) {
  std::string p(dir);
  if (!p.empty() && p.back() != '/') p.push_back('/');
  p.append(name);
  return p;
}

Status WriteFileAtomically(FileSystem* fs, const std::string& path, std::string_view contents) {
  std::string tmp = path + ".tmp";
  {
    RILL_ASSIGN_OR_RETURN(auto f, fs->Open(tmp, /*create=*/true, /*truncate=*/true));
    RILL_RETURN_IF_ERROR(f->WriteAt(0, contents));
    RILL_RETURN_IF_ERROR(f->Sync());
  }
  RILL_RETURN_IF_ERROR(fs->Rename(tmp, path));
  return fs->SyncDir(ParentDir(path));
}

Result<std::string> ReadWholeFile(FileSystem* fs, const std::string& path) {
  RILL_ASSIGN_OR_RETURN(auto f, fs->Open(path, /*create=*/false));
  RILL_ASSIGN_OR_RETURN(uint64_t size, f->Size());
  std::string out(size, '\0');
  RILL_ASSIGN_OR_RETURN(size_t n, f->ReadAt(0, out.data(), out.size()));
  out.resize(n);
  return out;
}

}  // namespace rill::storage
