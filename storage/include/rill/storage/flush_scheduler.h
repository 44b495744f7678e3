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
// Thread-safety: every method may be called from any thread, except that a task must not call
// Remove on itself from its own round. Rounds run without the scheduler's lock held, so they may
// call Wake.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

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
  };

  // Starts `threads` (>= 1) threads.
  explicit FlushScheduler(int threads);
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

 private:
  struct Entry {
    bool queued = false;            // in ready_
    bool running = false;           // a thread runs its round
    bool woken = false;             // Wake during the round: run again after it
    Clock::time_point due = kIdle;  // its entry in timers_ (kIdle: none)
  };

  void WorkerLoop();
  // Queues `task` (entry `e`) unless it is queued or running. mu_ held.
  void QueueLocked(Task* task, Entry& e);

  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // workers wait for ready tasks and timers
  std::condition_variable idle_cv_;  // Remove waits for a running round to end
  std::unordered_map<Task*, Entry> tasks_;
  std::deque<Task*> ready_;
  // Timers by due time; an entry whose task is gone or whose due time changed is stale and
  // skipped.
  std::multimap<Clock::time_point, Task*> timers_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace rill::storage
