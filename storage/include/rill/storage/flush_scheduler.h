#pragma once

// FlushScheduler: a fixed pool of threads ("rill-flush") that runs the flush work of many logs
// — group-commit and interval fsyncs, idle zero-fill, standby segments, and the durability
// callbacks those complete (docs/STORAGE.md, Flushing). A broker's thread count therefore does
// not grow with its partitions: every log of a LogStore shares one scheduler, and up to
// `threads` fsyncs of different logs run at once, each log's appends gathering into its next
// group while it waits for a thread.
//
// A task (a Log) is run one round at a time and never by two threads at once. A round returns
// when it wants to run again: kAgain (as soon as a thread is free, behind the tasks already
// waiting: fairness between logs), a time, or kIdle (only when woken). Wake runs a round soon;
// a Wake during a round runs another round after it, so no wake-up is lost.
//
// Shared syncs (docs/STORAGE.md, Flushing): with `shared_sync_min` > 0, a thread that finds at
// least that many tasks ready takes them all (up to kMaxSharedBatch) as one batch. Each task of the
// batch is asked to BeginSharedSync: a log with appends to make durable snapshots them and names
// the WholeSync of its filesystem. One Sync of each WholeSync named by two or more tasks then
// serves them all, and EndSharedSync completes each (a task alone on its handle, or whose handle
// failed, syncs its own files there). A task that declines runs an ordinary round. So a thousand
// partitions written by one request cost one syncfs, not a thousand fdatasyncs. One batch runs at
// a time: when enough tasks for a batch become ready while one runs, they wait for it to end and
// form the next (overlapping syncfs calls only wait for each other in the kernel).
//
// Thread-safety: every method may be called from any thread, except that a task must not call
// Remove on itself from its own round. Rounds run without the scheduler's lock held, so they may
// call Wake.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "rill/storage/file_system.h"

namespace rill::storage {

class FlushScheduler {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr Clock::time_point kAgain = Clock::time_point::min();
  static constexpr Clock::time_point kIdle = Clock::time_point::max();

  class Task {
   public:
    virtual ~Task() = default;
    // One round of the task's work; returns when to run the next (kAgain, a time, or kIdle).
    virtual Clock::time_point RunFlushRound() = 0;
    // A round in a shared sync, instead of RunFlushRound: returns the WholeSync whose Sync would
    // make this round's work durable, having taken what it covers (the log end now), or nullptr
    // to have RunFlushRound called as usual.
    virtual WholeSync* BeginSharedSync() { return nullptr; }
    // Ends a round that BeginSharedSync began. `synced`: the WholeSync it returned was synced
    // successfully since; when false, the task syncs its own files. Returns like RunFlushRound.
    virtual Clock::time_point EndSharedSync(bool synced) {
      (void)synced;
      return kIdle;
    }
  };

  // At most this many tasks share one batch.
  static constexpr size_t kMaxSharedBatch = 4096;

  // Starts `threads` (>= 1) threads. `shared_sync_min`: the number of ready tasks from which a
  // thread batches them into shared syncs (0: never).
  explicit FlushScheduler(int threads, int shared_sync_min = 0);
  // Stops the threads. Every task must have been removed.
  ~FlushScheduler();
  FlushScheduler(const FlushScheduler&) = delete;
  FlushScheduler& operator=(const FlushScheduler&) = delete;

  // Registers `task` and runs its first round soon.
  void Add(Task* task);
  // Runs a round of `task` soon (coalesced with a pending one). Ignored once removed.
  void Wake(Task* task);
  // Unregisters `task`, waiting for a round in progress to finish; no round starts afterwards.
  void Remove(Task* task);

  int threads() const { return static_cast<int>(workers_.size()); }
  // True when no task is waiting for a thread (a round may then poll briefly for more work
  // without holding up another log).
  bool NoneWaiting() const;
  // Shared syncs run (one WholeSync::Sync each, failed ones included) and the task rounds they
  // served.
  uint64_t shared_syncs() const { return shared_syncs_.load(std::memory_order_relaxed); }
  uint64_t shared_sync_rounds() const {
    return shared_sync_rounds_.load(std::memory_order_relaxed);
  }

 private:
  struct Entry {
    bool queued = false;            // in ready_
    bool running = false;           // a thread runs its round
    bool woken = false;             // Wake during the round: run again after it
    Clock::time_point due = kIdle;  // its entry in timers_ (kIdle: none)
  };

  void WorkerLoop();
  // Runs the rounds of `batch` (two or more tasks) with shared syncs; next[i] is batch[i]'s
  // answer. No lock held.
  void RunBatch(const std::vector<Task*>& batch, std::vector<Clock::time_point>& next);
  // Queues `task` (entry `e`) unless it is queued, or marks it woken while it runs; `notify`
  // wakes a worker for it. mu_ held.
  void QueueLocked(Task* task, Entry& e, bool notify = true);
  // A worker that will take the front of the ready queue itself wakes workers for the rest.
  // mu_ held.
  void NotifyForOthersLocked();

  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // workers wait for ready tasks and timers
  std::condition_variable idle_cv_;  // Remove waits for a running round to end
  std::unordered_map<Task*, Entry> tasks_;
  std::deque<Task*> ready_;
  // Timers by due time; an entry whose task is gone or whose due time changed is stale and
  // skipped.
  std::multimap<Clock::time_point, Task*> timers_;
  bool stopping_ = false;
  bool batch_running_ = false;  // a worker runs a batch (shared syncs): no second one starts
  const size_t shared_sync_min_;
  std::atomic<uint64_t> shared_syncs_{0};
  std::atomic<uint64_t> shared_sync_rounds_{0};
  std::vector<std::thread> workers_;
};

}  // namespace rill::storage
