#pragma once

// BufferPool: the producer's buffer_memory, and its recycled batch buffers.
//
// The budget. Every batch buffer the producer holds is charged to the pool by its capacity, from
// the moment a new batch takes it until its bytes are no longer needed: while records are
// appended, while the batch waits and travels in a request (Wrap moves the charge to the bytes),
// until the broker's answer and gRPC have let go of them. The buffers kept for reuse count too.
// So charged plus pooled stays within `max_bytes` (buffer_memory), as in Kafka's BufferPool,
// and buffer_memory bounds what the producer's batches hold of memory, not only their records'
// bytes (which let the batch buffers over 1,000 partitions reach 2-3 times buffer_memory,
// bench/RESULTS.md, Session 17). When a charge does not fit, the pooled buffers are freed first;
// then the appender waits (WaitFor) for completions to give charge back.
//
// The buffers. A producer spreading records over many partitions starts a new batch every few
// records. Each batch used to take a fresh buffer from malloc, which the allocator had often just
// handed back to the kernel: at 1,000 partitions a fifth of the application thread's time went
// to malloc, page faults and the first touch of the pages (bench/RESULTS.md, Session 15). The
// pool keeps the buffers of sent batches, still mapped and warm, and gives them to new batches.
// A buffer comes back when the last owner of a sent batch's bytes lets go of them, which may be
// the thread that read the broker's answer or a gRPC thread still holding the slice: Wrap gives
// the bytes an owner that returns them here.
//
// Thread-safe: one mutex, taken once per new batch, per grown buffer and per returned buffer;
// a charge is given back without it.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "rill/proto/status.h"

namespace rill::client::internal {

class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  // Buffers smaller than this are not worth keeping (a moved-from or tiny string).
  static constexpr size_t kMinKeptCapacity = 1024;
  // How many of the most recently returned buffers a new batch looks at for one large enough.
  static constexpr size_t kLookBack = 8;

  // `keep_buffers` false: returned buffers are freed, never reused (the budget still holds).
  explicit BufferPool(int64_t max_bytes, bool keep_buffers = true)
      : max_bytes_(max_bytes), keep_(keep_buffers) {}
  // Fails waiting and later WaitFor calls (the producer is closing).
  void Close();
  // Close(), frees the pooled buffers and keeps none returned later (the producer is going away;
  // wrapped bytes may outlive it).
  void Detach();

  // ---- The budget ----
  int64_t max_bytes() const { return max_bytes_; }
  // Takes `bytes` of the budget if they fit beside what is charged and pooled, freeing pooled
  // buffers to make room; false (nothing taken) if they do not fit even then.
  bool TryCharge(int64_t bytes);
  // Takes `bytes` whether they fit or not: memory already allocated must be counted (a later
  // charge then waits until enough was given back).
  void ForceCharge(int64_t bytes);
  // Gives back a charge and wakes the waiters.
  void Uncharge(int64_t bytes);
  // Waits until `bytes` could be charged (what is charged leaves room for them; pooled buffers
  // would be freed), until `deadline`. ResourceExhausted at the deadline, Failed once closed.
  // Does not take them: the caller charges again and may lose the room to another, and waits
  // again then.
  Status WaitFor(int64_t bytes, std::chrono::steady_clock::time_point deadline);
  int64_t charged() const { return charged_.load(std::memory_order_relaxed); }
  // Whether someone waits for room (the producer then sends what it has, as Kafka's does).
  bool exhausted() const { return waiters_.load(std::memory_order_relaxed) > 0; }

  // ---- Buffers ----
  // An empty buffer for a new batch, its capacity charged (*charged): a pooled one if one of the
  // last kLookBack returned has room for `want_bytes` (else for `min_bytes`) and not more than
  // twice that, or a new one of
  // `want_bytes` if that fits the budget, else of what the budget has left if that is at least
  // `min_bytes`. nullopt, nothing charged, when no buffer of `min_bytes` fits.
  std::optional<std::string> TryTake(size_t min_bytes, size_t want_bytes, int64_t* charged);
  // Gives back `charge` and keeps `buffer` for a later batch if it fits in the budget beside
  // what is charged and pooled, else frees it.
  void Return(std::string buffer, int64_t charge) noexcept;
  void Put(std::string buffer) noexcept { Return(std::move(buffer), 0); }
  // `bytes` owned by a shared_ptr whose last copy Returns them with `charge` (the charge of the
  // batch they were built in moves to them). The pool must be owned by a shared_ptr (the bytes
  // keep it alive).
  std::shared_ptr<std::string> Wrap(std::string bytes, int64_t charge = 0);

  int64_t pooled_bytes() const;
  size_t pooled_buffers() const;

 private:
  // Frees pooled buffers, oldest first, into `freed` until `bytes` more fit beside what is
  // charged and pooled; whether they fit. mu_ held.
  bool MakeRoomLocked(int64_t bytes, std::vector<std::string>& freed);
  void WakeWaiters();

  const int64_t max_bytes_;
  const bool keep_;
  std::atomic<int64_t> charged_{0};  // raised under mu_ (except ForceCharge), lowered anywhere
  mutable std::mutex mu_;
  bool detached_ = false;         // guarded by mu_
  std::deque<std::string> free_;  // guarded by mu_; the last returned (back) is the warmest
  int64_t pooled_bytes_ = 0;      // guarded by mu_; sum of free_'s capacities
  // Waiters for room (WaitFor) count themselves in waiters_ and sleep on space_cv_.
  std::mutex space_mu_;
  std::condition_variable space_cv_;
  std::atomic<int> waiters_{0};
  std::atomic<bool> closed_{false};
};

}  // namespace rill::client::internal
