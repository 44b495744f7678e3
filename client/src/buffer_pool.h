#pragma once

// BufferPool: the producer's recycled batch buffers.
//
// A producer spreading records over many partitions starts a new batch every few records. Each
// batch used to take a fresh buffer from malloc, which the allocator had often just handed back
// to the kernel: at 1,000 partitions a fifth of the application thread's time went to malloc,
// page faults and the first touch of the pages (bench/RESULTS.md, Session 15). The pool keeps
// the buffers of sent batches, still mapped and warm, and gives them to new batches.
//
// A buffer comes back when the last owner of a sent batch's bytes lets go of them, which may be
// the thread that read the broker's answer or a gRPC thread still holding the slice: Wrap gives
// the bytes an owner that returns them here. As Kafka's BufferPool does, the pool keeps a
// buffer only while its capacity plus the pooled ones plus the bytes in use (`in_use`, the
// accumulator's buffer_memory count) stay within `max_bytes` (buffer_memory); the rest is
// freed. So the pool fills what the records leave free of buffer_memory, and no more.
//
// Thread-safe: one mutex, taken once per new batch and once per returned buffer.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace rill::client::internal {

class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  // Buffers smaller than this are not worth keeping (a moved-from or tiny string).
  static constexpr size_t kMinKeptCapacity = 1024;
  // How many of the most recently returned buffers Take looks at for one large enough.
  static constexpr size_t kLookBack = 8;

  // `in_use` (may be null: none) is read until Detach; wrapped bytes may outlive its owner.
  explicit BufferPool(int64_t max_bytes, const std::atomic<int64_t>* in_use = nullptr)
      : max_bytes_(max_bytes), in_use_(in_use) {}
  // Stops reading `in_use` (its owner is going away) and frees the pooled buffers; buffers
  // returned later are freed too.
  void Detach();

  // A buffer with capacity for at least `bytes` (empty), the most recently returned one when
  // there is one (grown if it is smaller), else a new one.
  std::string Take(size_t bytes);
  // Keeps `buffer` for a later Take if the pool has room for it, else frees it.
  void Put(std::string buffer) noexcept;
  // `bytes` owned by a shared_ptr that puts them back into this pool when its last copy goes.
  // The pool must be owned by a shared_ptr (the owner keeps the pool alive).
  std::shared_ptr<std::string> Wrap(std::string bytes);

  int64_t pooled_bytes() const;
  size_t pooled_buffers() const;

 private:
  const int64_t max_bytes_;
  mutable std::mutex mu_;
  const std::atomic<int64_t>* in_use_;  // guarded by mu_
  bool detached_ = false;               // guarded by mu_
  std::vector<std::string> free_;       // LIFO: the last returned is the warmest
  int64_t pooled_bytes_ = 0;            // sum of free_'s capacities
};

}  // namespace rill::client::internal
