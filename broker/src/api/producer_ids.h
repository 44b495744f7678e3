#pragma once

// Hands out idempotent producer ids (InitProducerId) from blocks the active controller commits
// to the metadata log (Controller::AllocateProducerIds, a ProducerIdsRecord each), so that no id
// is given twice, on any broker, across restarts and controller failovers: a block is used only
// after it is committed, and a restarted broker asks for a new one (docs/IDEMPOTENCE.md).
//
// Thread-safety: Next may be called from any thread; `done` runs on the caller's thread when an
// id is at hand, else on the controller's thread once the next block arrives.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "controller/controller.h"
#include "rill/proto/status.h"

namespace rill::broker {

class ProducerIdAllocator : public std::enable_shared_from_this<ProducerIdAllocator> {
 public:
  using Done = std::function<void(Result<int64_t>)>;

  explicit ProducerIdAllocator(Controller* controller) : controller_(controller) {}

  // Calls `done` with a fresh producer id, or with the controller's error (the caller answers
  // it as retriable). Requests waiting for a block are bounded by kMaxWaiting.
  void Next(Done done);

  static constexpr size_t kMaxWaiting = 10000;

 private:
  void OnBlock(std::vector<TopicOpResult> results);

  Controller* const controller_;
  std::mutex mu_;
  int64_t next_ = 0;  // guarded by mu_; the block is [next_, end_)
  int64_t end_ = 0;   // guarded by mu_
  bool asking_ = false;       // guarded by mu_: a block request is outstanding
  std::vector<Done> waiting_;  // guarded by mu_
};

}  // namespace rill::broker
