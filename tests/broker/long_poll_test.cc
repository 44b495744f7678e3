// LongPoll: completes inline when satisfied, wakes on high-watermark notifications, times out
// with a final attempt, and never attempts again after completing.

#include "partition/long_poll.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <optional>
#include <thread>

#include "memory_log.h"
#include "support/poll.h"

namespace rill::broker::testing {
namespace {

using ::rill::test::PollUntil;

class LongPollTest : public ::testing::Test {
 protected:
  void SetUp() override {
    work_.emplace(io_.get_executor());
    thread_ = std::thread([this] { io_.run(); });
    part_ = std::make_shared<Partition>("t", 0, std::make_shared<MemoryLog>(true));
  }
  void TearDown() override {
    work_.reset();
    thread_.join();
  }

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::shared_ptr<Partition> part_;
};

TEST_F(LongPollTest, SatisfiedAtOnce) {
  int attempts = 0;
  LongPoll::Start(io_, {part_}, std::chrono::seconds(30), [&](bool final) {
    ++attempts;
    EXPECT_FALSE(final);
    return true;
  });
  EXPECT_EQ(attempts, 1);
  part_->NotifyWaiters();  // nothing is registered any more that attempts again
  std::atomic<bool> flushed{false};
  boost::asio::post(io_, [&] { flushed = true; });
  ASSERT_TRUE(PollUntil([&] { return flushed.load(); }));
  EXPECT_EQ(attempts, 1);
}

TEST_F(LongPollTest, ZeroWaitIsOneFinalAttempt) {
  int attempts = 0;
  bool was_final = false;
  LongPoll::Start(io_, {part_}, std::chrono::milliseconds(0), [&](bool final) {
    ++attempts;
    was_final = final;
    return false;
  });
  EXPECT_EQ(attempts, 1);
  EXPECT_TRUE(was_final);
}

TEST_F(LongPollTest, WakesOnNotifyUntilSatisfied) {
  std::atomic<int> attempts{0};
  std::atomic<bool> done{false};
  LongPoll::Start(io_, {part_}, std::chrono::seconds(60), [&](bool final) {
    int n = ++attempts;
    if (n >= 3) done = true;
    return n >= 3;
  });
  EXPECT_EQ(attempts.load(), 1);
  part_->NotifyWaiters();
  ASSERT_TRUE(PollUntil([&] { return attempts.load() == 2; }));
  part_->NotifyWaiters();
  ASSERT_TRUE(PollUntil([&] { return done.load(); }));
  part_->NotifyWaiters();
  std::atomic<bool> flushed{false};
  boost::asio::post(io_, [&] { flushed = true; });
  ASSERT_TRUE(PollUntil([&] { return flushed.load(); }));
  EXPECT_EQ(attempts.load(), 3);
}

TEST_F(LongPollTest, TimesOutWithAFinalAttempt) {
  std::atomic<bool> final_seen{false};
  std::atomic<int> attempts{0};
  LongPoll::Start(io_, {part_}, std::chrono::milliseconds(20), [&](bool final) {
    ++attempts;
    if (final) final_seen = true;
    return false;
  });
  ASSERT_TRUE(PollUntil([&] { return final_seen.load(); }));
  part_->NotifyWaiters();
  std::atomic<bool> flushed{false};
  boost::asio::post(io_, [&] { flushed = true; });
  ASSERT_TRUE(PollUntil([&] { return flushed.load(); }));
  EXPECT_EQ(attempts.load(), 2);
}

TEST_F(LongPollTest, ManyPollsOnePartitionAllWake) {
  constexpr int kPolls = 200;
  std::atomic<int> completed{0};
  for (int i = 0; i < kPolls; ++i) {
    auto woken = std::make_shared<std::atomic<bool>>(false);
    LongPoll::Start(io_, {part_}, std::chrono::seconds(60), [&completed, woken, first = true](
                                                                 bool final) mutable {
      if (first) {
        first = false;
        return false;
      }
      ++completed;
      return true;
    });
  }
  part_->NotifyWaiters();
  ASSERT_TRUE(PollUntil([&] { return completed.load() == kPolls; }));
}

}  // namespace
}  // namespace rill::broker::testing
