#include "rill/storage/file_remover.h"

#include <spdlog/spdlog.h>

#include "rill/proto/thread_name.h"

namespace rill::storage {

namespace {

// "<path>.<n>.deleted", with n unique in this process (and, from the clock, across restarts): a
// name removed again while its first removal is in progress must not replace that file.
std::string DeletedName(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  const uint64_t n =
      static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) +
      counter.fetch_add(1);
  return path + "." + std::to_string(n) + std::string(FileRemover::kDeletedSuffix);
}

}  // namespace

FileRemover::FileRemover(FileSystem* fs, Options options) : fs_(fs), options_(options) {
  if (options_.step_bytes == 0) return;  // everything at once: no thread
  thread_ = std::thread([this] {
    SetCurrentThreadName("rill-remover");
    Run();
  });
}

FileRemover::~FileRemover() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status FileRemover::Remove(const std::string& path, std::shared_ptr<const void> holder) {
  uint64_t size = 0;
  if (options_.step_bytes > 0) {
    auto f = fs_->Open(path, /*create=*/false);
    if (!f.ok()) return f.status().IsNotFound() ? Status::OK() : f.status();
    RILL_ASSIGN_OR_RETURN(size, (*f)->Size());
  }
  if (options_.step_bytes == 0 || size < options_.step_bytes) {
    Status st = fs_->Remove(path);
    return st.IsNotFound() ? Status::OK() : st;
  }
  std::string deleted = DeletedName(path);
  RILL_RETURN_IF_ERROR(fs_->Rename(path, deleted));
  {
    std::lock_guard lock(mu_);
    queue_.push_back({std::move(deleted), std::move(holder)});
  }
  cv_.notify_all();
  return Status::OK();
}

Status FileRemover::RemoveDir(const std::string& dir) {
  if (!fs_->Exists(dir)) return Status::OK();
  if (options_.step_bytes == 0) return fs_->RemoveDirAll(dir);
  std::string deleted = DeletedName(dir);
  RILL_RETURN_IF_ERROR(fs_->Rename(dir, deleted));
  Enqueue(std::move(deleted), /*is_dir=*/true);
  return Status::OK();
}

void FileRemover::Enqueue(std::string deleted_path, bool is_dir) {
  if (options_.step_bytes == 0) {
    Status st = is_dir ? fs_->RemoveDirAll(deleted_path) : fs_->Remove(deleted_path);
    if (!st.ok() && !st.IsNotFound()) {
      spdlog::warn("removing {} failed: {}", deleted_path, st.ToString());
    }
    return;
  }
  {
    std::lock_guard lock(mu_);
    queue_.push_back({std::move(deleted_path), nullptr, is_dir});
  }
  cv_.notify_all();
}

void FileRemover::WaitIdle() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return stop_ || (queue_.empty() && !busy_); });
}

void FileRemover::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    Item item = std::move(queue_.front());
    queue_.pop_front();
    if (item.holder != nullptr && item.holder.use_count() > 1) {
      // A reader still holds the file's segment: look again shortly.
      queue_.push_back(std::move(item));
      deferrals_.fetch_add(1, std::memory_order_relaxed);
      if (cv_.wait_for(lock, std::chrono::milliseconds(10), [&] { return stop_; })) return;
      continue;
    }
    busy_ = true;
    lock.unlock();
    item.holder.reset();
    if (item.dir) {
      RemoveDirNow(item.path);
    } else {
      ShrinkAndRemove(item.path);
    }
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

bool FileRemover::RenameIsDurable(const std::string& path) {
  // Nothing may be shrunk before its .deleted name is durable: a crash could otherwise bring the
  // file back under its old name, shortened, and a shortened old segment ahead of the live ones
  // would make recovery end the log at its end (the gap check) and drop every later segment.
  const size_t slash = path.rfind('/');
  const std::string parent = slash == std::string::npos ? "." : path.substr(0, slash);
  Status st = fs_->SyncDir(parent.empty() ? "/" : parent);
  if (!st.ok()) {
    spdlog::warn("cannot make the removal of {} durable ({}); leaving it for now", path,
                 st.ToString());
    return false;
  }
  return true;
}

void FileRemover::RemoveDirNow(const std::string& dir) {
  if (!RenameIsDurable(dir)) return;
  auto names = fs_->ListDir(dir);
  if (names.ok()) {
    for (const auto& n : *names) {
      {
        std::lock_guard lock(mu_);
        if (stop_) return;  // the rest stays under the .deleted name
      }
      ShrinkAndRemove(JoinPath(dir, n));
    }
  }
  Status st = fs_->RemoveDirAll(dir);
  if (!st.ok() && !st.IsNotFound()) spdlog::warn("removing {} failed: {}", dir, st.ToString());
}

void FileRemover::ShrinkAndRemove(const std::string& path) {
  if (!RenameIsDurable(path)) return;
  auto opened = fs_->Open(path, /*create=*/false);
  if (opened.ok()) {
    std::unique_ptr<File> f = std::move(*opened);
    auto size = f->Size();
    // A small file's trim is small: it goes with the unlink.
    uint64_t left = size.ok() && *size >= options_.step_bytes ? *size : 0;
    const auto pause = options_.rate_bytes_per_sec == 0
                           ? std::chrono::nanoseconds(0)
                           : std::chrono::nanoseconds(options_.step_bytes * 1'000'000'000ull /
                                                      options_.rate_bytes_per_sec);
    while (left > 0) {
      left = left > options_.step_bytes ? left - options_.step_bytes : 0;
      Status st = f->Truncate(left);
      if (st.ok()) st = f->Sync();
      if (!st.ok()) {
        spdlog::warn("shrinking {} before removing it failed ({}); removing it at once", path,
                     st.ToString());
        break;
      }
      if (left > 0 && pause.count() > 0) {
        std::unique_lock lock(mu_);
        if (cv_.wait_for(lock, pause, [&] { return stop_; })) return;  // left as .deleted
      }
    }
  }
  Status st = fs_->Remove(path);
  if (!st.ok() && !st.IsNotFound()) {
    spdlog::warn("removing {} failed: {}", path, st.ToString());
  }
}

}  // namespace rill::storage
