#include "buffer_pool.h"

#include <algorithm>
#include <new>
#include <utility>

#include "rill/proto/assert.h"

namespace rill::client::internal {

bool BufferPool::MakeRoomLocked(int64_t bytes, std::vector<std::string>& freed) {
  const int64_t charged = charged_.load();
  while (!free_.empty() && charged + pooled_bytes_ + bytes > max_bytes_) {
    pooled_bytes_ -= static_cast<int64_t>(free_.front().capacity());
    freed.push_back(std::move(free_.front()));
    free_.pop_front();
  }
  return charged + pooled_bytes_ + bytes <= max_bytes_;
}

bool BufferPool::TryCharge(int64_t bytes) {
  std::vector<std::string> freed;  // after the lock
  std::lock_guard lk(mu_);
  if (!MakeRoomLocked(bytes, freed)) return false;
  charged_.fetch_add(bytes);
  return true;
}

void BufferPool::ForceCharge(int64_t bytes) { charged_.fetch_add(bytes); }

void BufferPool::Uncharge(int64_t bytes) {
  if (bytes == 0) return;
  const int64_t left = charged_.fetch_sub(bytes) - bytes;
  RILL_ASSERT(left >= 0, "buffer_memory accounting went negative: %lld",
              static_cast<long long>(left));
  WakeWaiters();
}

void BufferPool::WakeWaiters() {
  // A waiter counts itself before it looks at charged_, and this looks at the count after
  // changing charged_ (both sequentially consistent): a waiter either sees the room or is
  // counted and woken. The lock orders the wake after the waiter's look.
  if (waiters_.load() == 0) return;
  { std::lock_guard lk(space_mu_); }
  space_cv_.notify_all();
}

Status BufferPool::WaitFor(int64_t bytes, std::chrono::steady_clock::time_point deadline) {
  auto room = [&] { return closed_.load() || charged_.load() + bytes <= max_bytes_; };
  bool fits = room();
  if (!fits) {
    std::unique_lock lk(space_mu_);
    ++waiters_;
    fits = space_cv_.wait_until(lk, deadline, room);
    --waiters_;
  }
  if (closed_.load()) return Status::Failed("producer is closed");
  if (fits) return Status::OK();
  return Status::ResourceExhausted("producer buffer full: " + std::to_string(charged()) +
                                   " of buffer_memory " + std::to_string(max_bytes_) +
                                   " bytes held by batches");
}

std::optional<std::string> BufferPool::TryTake(size_t min_bytes, size_t want_bytes,
                                               int64_t* charged) {
  std::vector<std::string> freed;  // after the lock
  std::string out;
  int64_t allocate = 0;
  {
    std::lock_guard lk(mu_);
    // The warmest of the last few buffers with room for what the batch wants, else for what it
    // needs, but not more than twice what it wants: a buffer is charged by its capacity, and
    // capacities only grow, so large buffers taken for small batches would drift the whole pool
    // upwards until the small batches of many partitions spent the budget. A larger one stays
    // pooled until a charge needs its room (MakeRoomLocked frees the oldest first).
    const size_t n = free_.size(), look = std::min<size_t>(n, kLookBack);
    const size_t most = 2 * std::max(want_bytes, min_bytes);
    size_t pick = n, fallback = n;
    for (size_t i = n; i-- > n - look;) {
      const size_t capacity = free_[i].capacity();
      if (capacity > most) continue;
      if (capacity >= want_bytes) {
        pick = i;
        break;
      }
      if (fallback == n && capacity >= min_bytes) fallback = i;
    }
    if (pick == n) pick = fallback;
    if (pick != n) {
      if (pick != n - 1) std::swap(free_[pick], free_.back());
      out = std::move(free_.back());
      free_.pop_back();
      const auto capacity = static_cast<int64_t>(out.capacity());
      pooled_bytes_ -= capacity;
      charged_.fetch_add(capacity);  // from pooled to charged: the total stays
      *charged = capacity;
      out.clear();
      return out;
    }
    const int64_t room = max_bytes_ - charged_.load();
    if (room < static_cast<int64_t>(min_bytes)) return std::nullopt;
    allocate = std::min(static_cast<int64_t>(want_bytes), room);
    MakeRoomLocked(allocate, freed);  // fits: the pooled buffers make the rest of `room`
    charged_.fetch_add(allocate);
  }
  out.reserve(static_cast<size_t>(allocate));  // from an empty string: exactly that, or the SSO
  const auto capacity = static_cast<int64_t>(out.capacity());
  if (capacity > allocate) ForceCharge(capacity - allocate);
  if (capacity < allocate) Uncharge(allocate - capacity);
  *charged = capacity;
  return out;
}

void BufferPool::Return(std::string buffer, int64_t charge) noexcept {
  const auto capacity = static_cast<int64_t>(buffer.capacity());
  // Nothing to give back or keep (a sent batch's empty buffers): no lock.
  if (charge == 0 && (!keep_ || buffer.capacity() < kMinKeptCapacity)) return;
  {
    std::lock_guard lk(mu_);
    if (charge != 0) {
      const int64_t left = charged_.fetch_sub(charge) - charge;
      RILL_ASSERT(left >= 0, "buffer_memory accounting went negative: %lld",
                  static_cast<long long>(left));
    }
    if (keep_ && !detached_ && buffer.capacity() >= kMinKeptCapacity &&
        charged_.load() + pooled_bytes_ + capacity <= max_bytes_) {
      try {
        free_.push_back(std::move(buffer));
        pooled_bytes_ += capacity;
      } catch (const std::bad_alloc&) {
        // Wrap's deleter calls this: never throw, keep nothing.
      }
    }
  }
  // Otherwise `buffer` is freed here, after the lock.
  if (charge != 0) WakeWaiters();
}

std::shared_ptr<std::string> BufferPool::Wrap(std::string bytes, int64_t charge) {
  return std::shared_ptr<std::string>(new std::string(std::move(bytes)),
                                      [pool = shared_from_this(), charge](std::string* s) {
                                        pool->Return(std::move(*s), charge);
                                        delete s;
                                      });
}

void BufferPool::Close() {
  closed_ = true;
  { std::lock_guard lk(space_mu_); }
  space_cv_.notify_all();
}

void BufferPool::Detach() {
  Close();
  std::deque<std::string> freed;
  std::lock_guard lk(mu_);
  detached_ = true;
  freed.swap(free_);
  pooled_bytes_ = 0;
}

int64_t BufferPool::pooled_bytes() const {
  std::lock_guard lk(mu_);
  return pooled_bytes_;
}

size_t BufferPool::pooled_buffers() const {
  std::lock_guard lk(mu_);
  return free_.size();
}

}  // namespace rill::client::internal
