#include "rill/storage/flush_scheduler.h"

#include <algorithm>

#include "rill/proto/assert.h"
#include "rill/proto/thread_name.h"

namespace rill::storage {

FlushScheduler::FlushScheduler(int threads, int shared_sync_min)
    : shared_sync_min_(static_cast<size_t>(std::max(shared_sync_min, 0))) {
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

void FlushScheduler::QueueLocked(Task* task, Entry& e, bool notify) {
  e.due = kIdle;  // a pending timer is superseded
  if (e.running) {
    e.woken = true;
    return;
  }
  if (e.queued) return;
  e.queued = true;
  ready_.push_back(task);
  // While a batch runs, the tasks queued behind it wait for the next one: no worker to wake.
  const bool for_next_batch =
      batch_running_ && shared_sync_min_ > 0 && ready_.size() >= shared_sync_min_;
  if (notify && !for_next_batch) work_cv_.notify_one();
}

void FlushScheduler::NotifyForOthersLocked() {
  // This worker takes the queue's front itself; wake one more worker per further ready task,
  // and none for the task it takes: a wake-up it would find nothing to do for costs two context
  // switches per round.
  const size_t others = std::min(ready_.size(), workers_.size()) - (ready_.empty() ? 0 : 1);
  for (size_t i = 0; i < others; ++i) work_cv_.notify_one();
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

void FlushScheduler::RunBatch(const std::vector<Task*>& batch,
                              std::vector<Clock::time_point>& next) {
  std::vector<WholeSync*> handle(batch.size(), nullptr);
  std::unordered_map<WholeSync*, int> users;
  for (size_t i = 0; i < batch.size(); ++i) {
    handle[i] = batch[i]->BeginSharedSync();
    if (handle[i] == nullptr) {
      next[i] = batch[i]->RunFlushRound();
    } else {
      ++users[handle[i]];
    }
  }
  // One Sync per filesystem that two or more rounds wait on; a round alone on its filesystem
  // syncs its own files, which costs less than syncing the whole filesystem for it.
  std::unordered_map<WholeSync*, bool> synced;
  for (const auto& [h, n] : users) {
    if (n < 2) continue;
    synced[h] = h->Sync().ok();
    shared_syncs_.fetch_add(1, std::memory_order_relaxed);
    if (synced[h])
      shared_sync_rounds_.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (handle[i] == nullptr) continue;
    auto it = synced.find(handle[i]);
    next[i] = batch[i]->EndSharedSync(it != synced.end() && it->second);
  }
}

void FlushScheduler::WorkerLoop() {
  std::vector<Task*> batch;
  std::vector<Clock::time_point> next;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    // Due timers join the ready queue.
    const Clock::time_point now = Clock::now();
    bool queued = false;
    while (!timers_.empty() && timers_.begin()->first <= now) {
      auto [due, task] = *timers_.begin();
      timers_.erase(timers_.begin());
      auto it = tasks_.find(task);
      if (it != tasks_.end() && it->second.due == due) {
        QueueLocked(task, it->second, /*notify=*/false);
        queued = true;
      }
    }
    if (queued) NotifyForOthersLocked();
    // With shared syncs, a batch waits while another runs: concurrent syncfs calls on one
    // filesystem wait for each other's writeback in the kernel, so a second one would not end
    // before the first, and the next batch serves the logs that became ready meanwhile as soon,
    // with a fraction of the syncfs calls (docs/STORAGE.md, Flushing).
    const bool batch_ready = shared_sync_min_ > 0 && ready_.size() >= shared_sync_min_;
    if (ready_.empty() || (batch_ready && batch_running_)) {
      if (timers_.empty()) {
        work_cv_.wait(lock);
      } else {
        // A copy: the timer's node may be erased by another thread while this one waits.
        const Clock::time_point due = timers_.begin()->first;
        work_cv_.wait_until(lock, due);
      }
      continue;
    }
    // One task, or with shared syncs on and enough of them ready, a batch.
    const size_t take = batch_ready ? std::min(ready_.size(), kMaxSharedBatch) : 1;
    batch.clear();
    for (size_t i = 0; i < take; ++i) {
      Task* task = ready_.front();
      ready_.pop_front();
      Entry& e = tasks_.at(task);  // entries stay put while running: Remove waits for the round
      e.queued = false;
      e.running = true;
      e.woken = false;
      batch.push_back(task);
    }
    next.assign(batch.size(), kIdle);
    if (batch.size() > 1) batch_running_ = true;
    lock.unlock();
    if (batch.size() == 1) {
      next[0] = batch[0]->RunFlushRound();
    } else {
      RunBatch(batch, next);
    }
    lock.lock();
    if (batch.size() > 1) batch_running_ = false;
    bool armed = false;
    for (size_t i = 0; i < batch.size(); ++i) {
      Task* task = batch[i];
      Entry& e = tasks_.at(task);
      e.running = false;
      if (e.woken || next[i] == kAgain) {
        e.woken = false;
        QueueLocked(task, e, /*notify=*/false);
      } else if (next[i] != kIdle) {
        e.due = next[i];
        timers_.emplace(next[i], task);
        armed = true;
      }
    }
    // This worker sees the new timers when it next waits, unless it takes a ready task first
    // (one this batch re-queued, wherever it stood in the batch): then another worker, which may
    // be asleep with no timer or until a later one, must see them.
    if (armed && !ready_.empty()) work_cv_.notify_one();
    NotifyForOthersLocked();
    idle_cv_.notify_all();
  }
}

}  // namespace rill::storage
