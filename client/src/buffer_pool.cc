#include "buffer_pool.h"

#include <algorithm>
#include <new>
#include <utility>

namespace rill::client::internal {

std::string BufferPool::Take(size_t bytes) {
  std::string out;
  {
    std::lock_guard lk(mu_);
    if (!free_.empty()) {
      // The warmest of the last few buffers that is large enough, else the largest of them.
      const size_t n = free_.size(), look = std::min<size_t>(n, kLookBack);
      size_t pick = n - 1;
      for (size_t i = n; i-- > n - look;) {
        if (free_[i].capacity() >= bytes) {
          pick = i;
          break;
        }
        if (free_[i].capacity() > free_[pick].capacity()) pick = i;
      }
      if (pick != n - 1) std::swap(free_[pick], free_.back());
      out = std::move(free_.back());
      free_.pop_back();
      pooled_bytes_ -= static_cast<int64_t>(out.capacity());
    }
  }
  out.clear();
  out.reserve(bytes);
  return out;
}

void BufferPool::Put(std::string buffer) noexcept {
  const auto capacity = static_cast<int64_t>(buffer.capacity());
  if (buffer.capacity() < kMinKeptCapacity) return;
  std::lock_guard lk(mu_);
  const int64_t in_use = in_use_ != nullptr ? in_use_->load(std::memory_order_relaxed) : 0;
  // Otherwise the caller's copy frees it, after the lock.
  if (detached_ || pooled_bytes_ + capacity + in_use > max_bytes_) return;
  try {
    free_.push_back(std::move(buffer));
  } catch (const std::bad_alloc&) {
    return;  // Wrap's deleter calls this: never throw, keep nothing
  }
  pooled_bytes_ += capacity;
}

std::shared_ptr<std::string> BufferPool::Wrap(std::string bytes) {
  return std::shared_ptr<std::string>(new std::string(std::move(bytes)),
                                      [pool = shared_from_this()](std::string* s) {
                                        pool->Put(std::move(*s));
                                        delete s;
                                      });
}

void BufferPool::Detach() {
  std::vector<std::string> freed;
  {
    std::lock_guard lk(mu_);
    in_use_ = nullptr;
    detached_ = true;
    freed.swap(free_);
    pooled_bytes_ = 0;
  }
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
