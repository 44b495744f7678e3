#include "rill/storage/flush_scheduler.h"

#include <algorithm>

#include "rill/proto/assert.h"
#include "rill/proto/thread_name.h"

namespace rill::storage {

FlushScheduler::FlushScheduler(int threads) {
  RILL_ASSERT(threads >= 1, "a flush scheduler needs at least one thread");
  workers_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) {
    workers_.emplace_back([this] {
      SetCurrentThreadName("rill-flush");
      WorkerLoop();
    });
  }
}

FlushScheduler::~FlushScheduler() {
  {
    std::lock_guard lock(mu_);
    RILL_ASSERT(tasks_.empty(), "a flush scheduler destroyed with tasks still registered");
    stopping_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void FlushScheduler::QueueLocked(Task* task, Entry& e) {
  e.due = kIdle;  // a pending timer is superseded
  if (e.running) {
    e.woken = true;
    return;
  }
  if (e.queued) return;
  e.queued = true;
  ready_.push_back(task);
  work_cv_.notify_one();
}

void FlushScheduler::Add(Task* task) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = tasks_.emplace(task, Entry{});
  RILL_ASSERT(inserted, "a task added twice to a flush scheduler");
  QueueLocked(task, it->second);
}

void FlushScheduler::Wake(Task* task) {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(task);
  if (it != tasks_.end()) QueueLocked(task, it->second);
}

void FlushScheduler::Remove(Task* task) {
  std::unique_lock lock(mu_);
  auto it = tasks_.find(task);
  if (it == tasks_.end()) return;
  idle_cv_.wait(lock, [&] { return !it->second.running; });
  if (it->second.queued) ready_.erase(std::find(ready_.begin(), ready_.end(), task));
  tasks_.erase(it);  // its timers are stale now
}

bool FlushScheduler::NoneWaiting() const {
  std::lock_guard lock(mu_);
  return ready_.empty();
}

void FlushScheduler::WorkerLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    // Due timers join the ready queue.
    const Clock::time_point now = Clock::now();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      auto [due, task] = *timers_.begin();
      timers_.erase(timers_.begin());
      auto it = tasks_.find(task);
      if (it != tasks_.end() && it->second.due == due) QueueLocked(task, it->second);
    }
    if (ready_.empty()) {
      if (timers_.empty()) {
        work_cv_.wait(lock);
      } else {
        // A copy: the timer's node may be erased by another thread while this one waits.
        const Clock::time_point due = timers_.begin()->first;
        work_cv_.wait_until(lock, due);
      }
      continue;
    }
    Task* task = ready_.front();
    ready_.pop_front();
    Entry& e = tasks_.at(task);  // entries stay put while running: Remove waits for the round
    e.queued = false;
    e.running = true;
    e.woken = false;
    lock.unlock();
    const Clock::time_point next = task->RunFlushRound();
    lock.lock();
    e.running = false;
    if (e.woken || next == kAgain) {
      e.woken = false;
      QueueLocked(task, e);
    } else if (next != kIdle) {
      e.due = next;
      timers_.emplace(next, task);
      // Another worker may be sleeping until a later timer.
      work_cv_.notify_one();
    }
    idle_cv_.notify_all();
  }
}

}  // namespace rill::storage
