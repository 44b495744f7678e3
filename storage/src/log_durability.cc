// The durable offset of a Log and who waits for it (docs/STORAGE.md, Writing): WaitDurable,
// OnDurable, AdvanceDurable (completes waiters below the new durable offset), FailWaiters, and
// Fail, which puts the log into its failed, read-only state and fails every waiter.
// Locks: all of it under durable_mu_; callbacks run after it is released, on the caller's thread:
// the flusher, or under write_mu_ an Append with the `none` policy, TruncateTo, Close or
// ApplyConfig (hence OnDurable's rule that a callback never calls the writer methods). Any thread
// may call these, holding write_mu_ or not.

#include <spdlog/spdlog.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "rill/storage/log.h"

namespace rill::storage {

Status Log::Fail(Status cause) {
  std::vector<std::function<void(Status)>> cbs;
  Status failure;
  {
    std::lock_guard lock(durable_mu_);
    if (failure_.ok()) {
      failure_ = Status::Failed("partition " + name_ + " is failed and read-only after " +
                                cause.ToString());
      spdlog::error("{}", failure_.message());
      failed_.store(true, std::memory_order_release);
    }
    failure = failure_;
    for (auto& [o, cb] : callbacks_) cbs.push_back(std::move(cb));
    callbacks_.clear();
  }
  durable_cv_.notify_all();
  for (auto& cb : cbs) cb(failure);
  // The first caller sees the cause itself (kNoSpace, kIOError); later ones kFailed.
  return Status(cause.code(), "partition " + name_ + ": " + cause.message());
}

void Log::AdvanceDurable(Offset durable, uint64_t truncations_seen) {
  std::vector<std::function<void(Status)>> cbs;
  {
    std::lock_guard lock(durable_mu_);
    if (!failure_.ok()) return;
    // A truncation since the caller's snapshot set durable_ itself; `durable` may be stale.
    if (truncations_seen != UINT64_MAX && truncations_seen != truncations_) return;
    if (durable.value() <= durable_.load()) return;
    durable_.store(durable.value(), std::memory_order_release);
    if (!callbacks_.empty()) {
      auto end = callbacks_.lower_bound(durable.value());
      for (auto it = callbacks_.begin(); it != end; ++it) cbs.push_back(std::move(it->second));
      callbacks_.erase(callbacks_.begin(), end);
    }
    if (durable_waiters_ == 0 && cbs.empty()) return;
  }
  durable_cv_.notify_all();
  for (auto& cb : cbs) cb(Status::OK());
}

void Log::FailWaiters(const Status& st, Offset from) {
  std::vector<std::function<void(Status)>> cbs;
  {
    std::lock_guard lock(durable_mu_);
    auto begin = callbacks_.lower_bound(from.value());
    for (auto it = begin; it != callbacks_.end(); ++it) cbs.push_back(std::move(it->second));
    callbacks_.erase(begin, callbacks_.end());
  }
  durable_cv_.notify_all();
  for (auto& cb : cbs) cb(st);
}

Status Log::WaitDurable(Offset offset, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(durable_mu_);
  while (true) {
    if (durable_.load() > offset.value()) return Status::OK();
    if (!failure_.ok()) return failure_;
    if (stopping_) return Status::Unavailable("partition " + name_ + ": log closed");
    ++durable_waiters_;
    std::cv_status waited = durable_cv_.wait_until(lock, deadline);
    --durable_waiters_;
    if (waited == std::cv_status::timeout) {
      if (durable_.load() > offset.value()) return Status::OK();
      return Status::Timeout("partition " + name_ + ": offset " + std::to_string(offset.value()) +
                             " not durable by the deadline");
    }
  }
}

void Log::OnDurable(Offset offset, std::function<void(Status)> done) {
  Status outcome;
  {
    std::lock_guard lock(durable_mu_);
    if (durable_.load() <= offset.value()) {
      if (!failure_.ok()) {
        outcome = failure_;
      } else if (stopping_) {
        outcome = Status::Unavailable("partition " + name_ + ": log closed");
      } else {
        callbacks_.emplace(offset.value(), std::move(done));
        return;
      }
    }
  }
  done(outcome);
}

}  // namespace rill::storage
