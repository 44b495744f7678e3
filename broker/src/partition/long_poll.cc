#include "partition/long_poll.h"

#include <boost/asio/post.hpp>

namespace rill::broker {

LongPoll::LongPoll(boost::asio::io_context& io, std::vector<std::shared_ptr<Partition>> watch,
                   Attempt attempt, Wake wake)
    : io_(io), watch_(std::move(watch)), wake_(wake), attempt_(std::move(attempt)), timer_(io) {}

void LongPoll::Start(boost::asio::io_context& io, std::vector<std::shared_ptr<Partition>> watch,
                     std::chrono::milliseconds max_wait, Attempt attempt, Wake wake) {
  if (max_wait.count() <= 0 || watch.empty()) {
    attempt(/*final=*/true);
    return;
  }
  auto poll = std::make_shared<LongPoll>(io, std::move(watch), std::move(attempt), wake);
  std::lock_guard lock(poll->mu_);
  if (poll->AttemptLocked(false)) {
    poll->done_ = true;
    return;
  }
  poll->timer_.expires_after(max_wait);
  poll->timer_.async_wait([poll](const boost::system::error_code& ec) {
    if (!ec) poll->Evaluate(/*timed_out=*/true);
  });
}

bool LongPoll::AttemptLocked(bool final) {
  if (!final) {
    // Register before reading, so an append racing with the read still wakes us.
    for (const auto& p : watch_) {
      if (wake_ == Wake::kLogEnd) {
        p->AddAppendWaiter(weak_from_this());
      } else {
        p->AddWaiter(weak_from_this());
      }
    }
  }
  return attempt_(final);
}

void LongPoll::OnHighWatermark() {
  boost::asio::post(io_, [self = shared_from_this()] { self->Evaluate(false); });
}

void LongPoll::Evaluate(bool timed_out) {
  std::lock_guard lock(mu_);
  if (done_) return;
  if (AttemptLocked(timed_out) || timed_out) {
    done_ = true;
    attempt_ = nullptr;  // drop what the attempt captured (request state)
    timer_.cancel();
  }
}

}  // namespace rill::broker
