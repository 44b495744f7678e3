// ProduceDeadlines: entries expire once, in deadline order; removed or destroyed entries do not
// expire; Stop() expires nothing that is left.

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "api/produce_handler.h"
#include "support/poll.h"

namespace rill::broker {
namespace {

using Clock = ProduceDeadlines::Clock;

struct Recorder final : ProduceDeadlines::Entry {
  Recorder(int id, std::mutex* mu, std::vector<int>* order) : id(id), mu(mu), order(order) {}
  void Expire() override {
    std::lock_guard lock(*mu);
    order->push_back(id);
  }
  int id;
  std::mutex* mu;
  std::vector<int>* order;
};

using ::rill::test::PollUntil;

// Waits until some entry has expired; returns the ids expired by then.
std::vector<int> FirstExpired(std::mutex& mu, const std::vector<int>& order) {
  EXPECT_TRUE(PollUntil([&] {
    std::lock_guard lock(mu);
    return !order.empty();
  }));
  std::lock_guard lock(mu);
  return order;
}

TEST(ProduceDeadlinesTest, ExpiresInDeadlineOrderSkippingRemovedAndDestroyed) {
  auto d = std::make_shared<ProduceDeadlines>();
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::shared_ptr<Recorder>> entries;
  for (int i = 0; i < 6; ++i) entries.push_back(std::make_shared<Recorder>(i, &mu, &order));
  const auto now = Clock::now();
  // Added out of order; 2 is removed, 4 is destroyed before its deadline.
  d->Add(now + std::chrono::milliseconds(30), entries[3]);
  d->Add(now + std::chrono::milliseconds(10), entries[1]);
  auto k2 = d->Add(now + std::chrono::milliseconds(20), entries[2]);
  d->Add(now + std::chrono::milliseconds(40), entries[4]);
  d->Add(now + std::chrono::milliseconds(50), entries[5]);
  d->Add(now, entries[0]);
  d->Remove(k2);
  entries[4].reset();
  ASSERT_TRUE(PollUntil([&] { return d->size() == 0; }));
  ASSERT_TRUE(PollUntil([&] {
    std::lock_guard lock(mu);
    return order.size() == 4;
  }));
  std::lock_guard lock(mu);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 3, 5}));
  d->Remove(k2);  // removing twice is harmless
}

TEST(ProduceDeadlinesTest, AnEarlierDeadlineWakesTheThread) {
  auto d = std::make_shared<ProduceDeadlines>();
  std::mutex mu;
  std::vector<int> order;
  auto late = std::make_shared<Recorder>(1, &mu, &order);
  auto soon = std::make_shared<Recorder>(2, &mu, &order);
  d->Add(Clock::now() + std::chrono::hours(1), late);
  d->Add(Clock::now(), soon);
  EXPECT_EQ(FirstExpired(mu, order), std::vector<int>{2});
  EXPECT_EQ(d->size(), 1u);
}

// The thread keeps sleeping until a removed entry's deadline (so that requests with one timeout
// do not wake it each); an earlier deadline added to the emptied map must still wake it.
TEST(ProduceDeadlinesTest, AnEarlierDeadlineAfterARemovalWakesTheThread) {
  auto d = std::make_shared<ProduceDeadlines>();
  std::mutex mu;
  std::vector<int> order;
  auto late = std::make_shared<Recorder>(1, &mu, &order);
  auto soon = std::make_shared<Recorder>(2, &mu, &order);
  auto later = std::make_shared<Recorder>(3, &mu, &order);
  auto k = d->Add(Clock::now() + std::chrono::hours(1), late);
  d->Remove(k);
  d->Add(Clock::now() + std::chrono::hours(2), later);  // later than the thread's target
  d->Add(Clock::now() + std::chrono::milliseconds(5), soon);
  EXPECT_EQ(FirstExpired(mu, order), std::vector<int>{2});
  EXPECT_EQ(d->size(), 1u);
}

TEST(ProduceDeadlinesTest, StopLeavesPendingEntriesAlone) {
  auto d = std::make_shared<ProduceDeadlines>();
  std::mutex mu;
  std::vector<int> order;
  auto e = std::make_shared<Recorder>(1, &mu, &order);
  auto k = d->Add(Clock::now() + std::chrono::hours(1), e);
  d->Stop();
  d->Stop();
  d->Remove(k);  // safe after Stop
  EXPECT_EQ(d->size(), 0u);
  std::lock_guard lock(mu);
  EXPECT_TRUE(order.empty());
}

// Many threads adding and removing while entries expire (for TSan).
TEST(ProduceDeadlinesTest, ConcurrentAddRemoveAndExpire) {
  auto d = std::make_shared<ProduceDeadlines>();
  std::atomic<int> expired{0};
  struct Counter final : ProduceDeadlines::Entry {
    explicit Counter(std::atomic<int>* n) : n(n) {}
    void Expire() override { n->fetch_add(1); }
    std::atomic<int>* n;
  };
  std::vector<std::thread> threads;
  std::atomic<int> kept{0};
  std::vector<std::shared_ptr<Counter>> alive[4];
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        auto c = std::make_shared<Counter>(&expired);
        auto k = d->Add(Clock::now() + std::chrono::microseconds(i % 7 * 100), c);
        if (i % 2 == 0) {
          d->Remove(k);
        } else {
          alive[t].push_back(c);
          kept.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  // Removed entries may still have expired first (Remove raced the deadline); kept ones all do.
  ASSERT_TRUE(PollUntil([&] { return d->size() == 0 && expired.load() >= kept.load(); }));
  EXPECT_LE(expired.load(), 2000);
}

}  // namespace
}  // namespace rill::broker
