#pragma once

// The produce data path shared by Producer.Produce and Producer.ProduceStream
// (docs/ARCHITECTURE.md §5): validate each batch header and size, append the request's bytes in
// place to each partition under its single-writer lock, and complete per acks once the log
// reports durability.

#include <grpcpp/support/status.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "rill/v1/producer.pb.h"
#include "api/service_context.h"

namespace rill::broker {

// Produce requests waiting for durability, by deadline. One thread sleeps until the earliest
// deadline and expires what is due. Adding a deadline wakes it only when the deadline is earlier
// than the time it sleeps until, and an emptied map keeps that time: with one timeout for every
// request the thread wakes about once per timeout, not once per request, and the common case
// costs a map insert and erase.
//
// Thread-safety: Add/Remove from any thread. Expire() runs on the deadline thread, never with
// the internal lock held. Stop() (idempotent; also run by the destructor) ends the thread
// without expiring what is left; Add/Remove stay safe afterwards. Held by shared_ptr: pending
// requests keep it alive to remove their keys.
class ProduceDeadlines {
 public:
  using Clock = std::chrono::steady_clock;
  class Entry {
   public:
    virtual ~Entry() = default;
    // The deadline passed before Remove(). Must not block.
    virtual void Expire() = 0;
  };
  struct Key {
    Clock::time_point deadline;
    uint64_t id = 0;
    auto operator<=>(const Key&) const = default;
  };

  ProduceDeadlines();
  ~ProduceDeadlines();
  ProduceDeadlines(const ProduceDeadlines&) = delete;
  ProduceDeadlines& operator=(const ProduceDeadlines&) = delete;

  // Registers `entry` (held weakly) to expire at `deadline`; returns the key that removes it.
  Key Add(Clock::time_point deadline, std::weak_ptr<Entry> entry);
  // Forgets `key`; a no-op when it has expired already.
  void Remove(const Key& key);
  size_t size() const;
  void Stop();

 private:
  void Run();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<Key, std::weak_ptr<Entry>> entries_;
  Clock::time_point wake_at_ = Clock::time_point::max();  // when the thread wakes next
  uint64_t next_id_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

// Sum of the record bytes of a request (what the in-flight bound counts).
int64_t ProduceBytes(const v1::ProduceRequest& request);

// The time acks=1/-1 may wait for durability: the request's timeout_ms capped by the broker's
// limits.produce_timeout_ms, which is also the default when the request says 0.
std::chrono::milliseconds ProduceTimeout(const BrokerConfig& config,
                                         const v1::ProduceRequest& request);

// Handles `request` (its records are mutated in place: offsets and epochs are stamped) and fills
// `response`. Returns INVALID_ARGUMENT naming the field for a malformed request, in which case
// `done` is never called. Otherwise `done` is called exactly once, when every partition's result
// is final: at once for acks=0, after durability for acks=1/-1, or when ProduceTimeout() passes
// first, in which case every partition still waiting gets REQUEST_TIMED_OUT: its batches were
// appended and may yet become durable (the outcome is unknown; the producer retries). `done` may
// run inline, on a storage flusher thread or on the deadlines thread. `deadlines` may be null
// (no timeout). `request` must stay valid until HandleProduce returns (the bytes are in the page
// cache by then); `response` until `done` runs.
grpc::Status HandleProduce(ServiceContext& ctx, const std::shared_ptr<ProduceDeadlines>& deadlines,
                           v1::ProduceRequest* request, v1::ProduceResponse* response,
                           std::function<void()> done);

}  // namespace rill::broker
