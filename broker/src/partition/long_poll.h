#pragma once

// LongPoll parks a request until it is satisfied or its wait ends, without holding any thread:
// it registers as a high-watermark waiter on the partitions it reads and arms an Asio timer.
//
// `attempt(final)` builds the answer from the current state of the logs and returns true when
// the request is complete. It is called once inline from Start (final when max_wait is 0), again
// on an I/O thread each time a watched partition's high watermark moves, and a last time with
// final=true at the deadline (it must then complete). Calls are serialised; after it returned
// true it is never called again.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "partition/partition.h"

namespace rill::broker {

class LongPoll final : public HighWatermarkWaiter, public std::enable_shared_from_this<LongPoll> {
 public:
  using Attempt = std::function<bool(bool final)>;
  // What wakes the poll: the high watermark (consumers) or the log end (replica fetches).
  enum class Wake { kHighWatermark, kLogEnd };

  static void Start(boost::asio::io_context& io, std::vector<std::shared_ptr<Partition>> watch,
                    std::chrono::milliseconds max_wait, Attempt attempt,
                    Wake wake = Wake::kHighWatermark);

  LongPoll(boost::asio::io_context& io, std::vector<std::shared_ptr<Partition>> watch,
           Attempt attempt, Wake wake = Wake::kHighWatermark);
  void OnHighWatermark() override;

 private:
  // Registers on every watched partition, then attempts. Caller holds mu_.
  bool AttemptLocked(bool final);
  void Evaluate(bool timed_out);

  boost::asio::io_context& io_;
  const std::vector<std::shared_ptr<Partition>> watch_;
  const Wake wake_;
  std::mutex mu_;
  Attempt attempt_;
  bool done_ = false;
  boost::asio::steady_timer timer_;
};

}  // namespace rill::broker
