#include "producer_ids.h"

#include <utility>

#include "controller/topic_op_error.h"

namespace rill::broker {

void ProducerIdAllocator::Next(Done done) {
  int64_t id = -1;
  {
    std::lock_guard lock(mu_);
    if (next_ < end_) {
      id = next_++;
    } else if (waiting_.size() >= kMaxWaiting) {
      id = -2;
    } else {
      waiting_.push_back(std::move(done));
      if (asking_) return;
      asking_ = true;
    }
  }
  if (id >= 0) return done(id);
  if (id == -2) {
    return done(
        Status::ResourceExhausted("too many InitProducerId requests wait for a block of ids"));
  }
  std::weak_ptr<ProducerIdAllocator> weak = weak_from_this();
  controller_->AllocateProducerIds([weak](std::vector<TopicOpResult> results) {
    if (auto self = weak.lock()) self->OnBlock(std::move(results));
  });
}

void ProducerIdAllocator::OnBlock(std::vector<TopicOpResult> results) {
  std::vector<Done> waiting;
  std::vector<int64_t> ids;
  Status failed;
  {
    std::lock_guard lock(mu_);
    asking_ = false;
    waiting.swap(waiting_);
    if (results.size() == 1 && results[0].error == TopicOpError::kNone &&
        results[0].producer_ids_count > 0) {
      next_ = results[0].producer_ids_first;
      end_ = next_ + results[0].producer_ids_count;
    } else {
      failed = Status::Unavailable(
          "no block of producer ids from the controller: " +
          (results.empty() ? std::string("no answer")
                           : std::string(TopicOpErrorName(results[0].error)) + " " +
                                 results[0].message));
    }
    // More waiters than ids in the block: the rest ask again (rare: blocks hold 1000 ids).
    size_t served = 0;
    if (failed.ok()) {
      for (; served < waiting.size() && next_ < end_; ++served) ids.push_back(next_++);
    }
    for (size_t i = served; failed.ok() && i < waiting.size(); ++i) {
      waiting_.push_back(std::move(waiting[i]));
    }
    if (failed.ok()) waiting.resize(served);
  }
  for (size_t i = 0; i < waiting.size(); ++i) {
    if (failed.ok()) {
      waiting[i](ids[i]);
    } else {
      waiting[i](failed);
    }
  }
  bool ask_again;
  {
    std::lock_guard lock(mu_);
    ask_again = !waiting_.empty() && !asking_;
    if (ask_again) asking_ = true;
  }
  if (ask_again) {
    std::weak_ptr<ProducerIdAllocator> weak = weak_from_this();
    controller_->AllocateProducerIds([weak](std::vector<TopicOpResult> results) {
      if (auto self = weak.lock()) self->OnBlock(std::move(results));
    });
  }
}

}  // namespace rill::broker
