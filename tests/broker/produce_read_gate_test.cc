// ProduceReadGate: a stream's next read reserves room under the broker's bound or waits in line;
// answers resume waiting streams oldest first; a request's real size replaces its reservation;
// reservations of reads that stay open too long lapse, and the timer ends a wait that only a
// lapse can end; the reading bound caps the reservations alone; nothing in flight always admits;
// unary requests are admitted or refused against the same bound; a cancelled waiter leaves.

#include "api/produce_read_gate.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "support/poll.h"

namespace rill::broker {
namespace {

// Records ResumeRead calls in order.
struct Log {
  std::mutex mu;
  std::vector<int> resumed;
  std::vector<int> Take() {
    std::lock_guard lock(mu);
    return std::exchange(resumed, {});
  }
};

struct Reader final : ProduceReadGate::Reader {
  Reader(int id, Log* log) : id(id), log(log) {}
  void ResumeRead() override {
    std::lock_guard lock(log->mu);
    log->resumed.push_back(id);
  }
  int id;
  Log* log;
};

constexpr int64_t kMiB = 1 << 20;

struct GateTest : ::testing::Test {
  std::shared_ptr<ProduceDeadlines> deadlines = std::make_shared<ProduceDeadlines>();
  Log log;
  ~GateTest() override { deadlines->Stop(); }
};

TEST_F(GateTest, ReadsReserveUntilTheBoundThenWaitInLineAndAnswersResumeThemOldestFirst) {
  auto gate = std::make_shared<ProduceReadGate>(10 * kMiB, 0, deadlines);
  Reader a(1, &log), b(2, &log), c(3, &log), d(4, &log);
  EXPECT_TRUE(gate->Reserve(&a, 4 * kMiB));
  EXPECT_TRUE(gate->Reserve(&b, 4 * kMiB));
  EXPECT_EQ(gate->in_flight(), 8 * kMiB);  // what is about to arrive counts
  EXPECT_FALSE(gate->Reserve(&c, 4 * kMiB));
  EXPECT_FALSE(gate->Reserve(&d, 1 * kMiB));  // it would fit, but c came first
  EXPECT_EQ(gate->waiting(), 2u);
  // What /metrics shows (rill_produce_reserved_bytes, _streams_waiting, _stream_waits_total).
  ProduceReadGate::Stats st = gate->stats();
  EXPECT_EQ(st.accepted_bytes, 0);
  EXPECT_EQ(st.reserved_bytes, 8 * kMiB);
  EXPECT_EQ(st.waiting, 2u);
  EXPECT_EQ(st.waits, 2u);
  // a's request arrives: 3 MiB, not 4. Its reservation becomes those 3 MiB: 7 in flight.
  gate->EndRead(&a, 3 * kMiB);
  EXPECT_EQ(gate->in_flight(), 7 * kMiB);
  EXPECT_EQ(gate->stats().accepted_bytes, 3 * kMiB);  // rill_inflight_produce_bytes
  EXPECT_TRUE(log.Take().empty());  // 7 + 4 > 10
  // a's request is answered: 4 MiB in flight (b's reservation); c and then d fit.
  gate->Release(3 * kMiB);
  EXPECT_EQ(log.Take(), (std::vector<int>{3, 4}));
  EXPECT_EQ(gate->in_flight(), 9 * kMiB);
  EXPECT_EQ(gate->waiting(), 0u);
  st = gate->stats();
  EXPECT_EQ(st.accepted_bytes, 0);
  EXPECT_EQ(st.reserved_bytes, 9 * kMiB);  // b's 4, c's 4 and d's 1: a's request is answered
  EXPECT_EQ(st.waiting, 0u);
  EXPECT_EQ(st.waits, 2u);  // a count of waits, not of waiters
  // The streams end without requests: their reservations go back.
  gate->EndRead(&b, 0);
  gate->EndRead(&c, 0);
  gate->EndRead(&d, 0);
  EXPECT_EQ(gate->in_flight(), 0);
  EXPECT_EQ(gate->reserved(), 0u);
  EXPECT_EQ(gate->stats().reserved_bytes, 0);
}

TEST_F(GateTest, NothingInFlightAdmitsARequestLargerThanTheBound) {
  auto gate = std::make_shared<ProduceReadGate>(4 * kMiB, 0, deadlines);
  Reader a(1, &log), b(2, &log);
  EXPECT_TRUE(gate->Reserve(&a, 16 * kMiB));
  EXPECT_FALSE(gate->Reserve(&b, 1));
  gate->EndRead(&a, 16 * kMiB);
  gate->Release(16 * kMiB);
  EXPECT_EQ(log.Take(), (std::vector<int>{2}));
  gate->EndRead(&b, 0);  // a reader leaves the gate's lists before it goes away
  EXPECT_EQ(gate->in_flight(), 0);
}

TEST_F(GateTest, TheReadingBoundCapsTheReservationsAlone) {
  // Room for 64 MiB in flight, but reads about to arrive may hold only 8 MiB of it (half the gRPC
  // quota, as the broker sets it).
  auto gate = std::make_shared<ProduceReadGate>(64 * kMiB, 8 * kMiB, deadlines);
  Reader a(1, &log), b(2, &log), c(3, &log);
  EXPECT_TRUE(gate->Reserve(&a, 4 * kMiB));
  EXPECT_TRUE(gate->Reserve(&b, 4 * kMiB));
  EXPECT_FALSE(gate->Reserve(&c, 4 * kMiB));
  // a's request arrives (in flight now, no longer a reservation): c may start reading.
  gate->EndRead(&a, 4 * kMiB);
  EXPECT_EQ(log.Take(), (std::vector<int>{3}));
  EXPECT_EQ(gate->in_flight(), 12 * kMiB);
  gate->EndRead(&b, 0);  // readers leave the gate's lists before they go away
  gate->EndRead(&c, 0);
  gate->Release(4 * kMiB);
  EXPECT_EQ(gate->in_flight(), 0);
}

TEST_F(GateTest, AnIdleReadsReservationLapsesAndTheTimerResumesTheLine) {
  // b's read stays open (its client sends nothing); c waits behind it. Nothing is answered, so
  // only the lapse of b's reservation (kLapse later, by the timer) lets c read.
  auto gate = std::make_shared<ProduceReadGate>(4 * kMiB, 0, deadlines);
  Reader b(2, &log), c(3, &log);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(gate->Reserve(&b, 4 * kMiB));
  EXPECT_FALSE(gate->Reserve(&c, 4 * kMiB));
  ASSERT_TRUE(test::PollUntil([&] {
    std::lock_guard lock(log.mu);
    return !log.resumed.empty();
  }));
  EXPECT_GE(std::chrono::steady_clock::now() - start, ProduceReadGate::kLapse);
  EXPECT_EQ(log.Take(), (std::vector<int>{3}));
  EXPECT_EQ(gate->in_flight(), 4 * kMiB);  // c's reservation; b's lapsed
  // b's request arrives after all: counted in full (its reservation is gone), nothing negative.
  gate->EndRead(&b, 4 * kMiB);
  EXPECT_EQ(gate->in_flight(), 8 * kMiB);
  gate->EndRead(&c, 0);
  gate->Release(4 * kMiB);
  EXPECT_EQ(gate->in_flight(), 0);
}

TEST_F(GateTest, ConcurrentStreamsNeverReserveMoreThanTheBoundAndAllFinish) {
  // Eight threads, each a stream doing 300 reads of 1 MiB (reserve or wait, arrive, answered),
  // against a bound of 3 MiB: at most 3 MiB reserved or in flight at any time (checked by each
  // thread after its read starts), and every read happens.
  auto gate = std::make_shared<ProduceReadGate>(3 * kMiB, 0, deadlines);
  struct Stream final : ProduceReadGate::Reader {
    std::mutex mu;
    std::condition_variable cv;
    bool go = false;
    void ResumeRead() override {
      {
        std::lock_guard lock(mu);
        go = true;
      }
      cv.notify_one();
    }
  };
  std::atomic<int64_t> most{0};
  std::atomic<int> reads{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      Stream s;
      for (int i = 0; i < 300; ++i) {
        if (!gate->Reserve(&s, kMiB)) {
          std::unique_lock lock(s.mu);
          s.cv.wait(lock, [&] { return s.go; });
          s.go = false;
        }
        int64_t seen = gate->in_flight(), prev = most.load();
        while (seen > prev && !most.compare_exchange_weak(prev, seen)) {
        }
        gate->EndRead(&s, kMiB);
        gate->Release(kMiB);
        ++reads;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(reads.load(), 8 * 300);
  EXPECT_LE(most.load(), 3 * kMiB);
  EXPECT_EQ(gate->in_flight(), 0);
  EXPECT_EQ(gate->waiting(), 0u);
}

TEST_F(GateTest, UnaryRequestsAreAdmittedOrRefusedAgainstTheSameBound) {
  auto gate = std::make_shared<ProduceReadGate>(8 * kMiB, 0, deadlines);
  Reader a(1, &log);
  EXPECT_TRUE(gate->Admit(16 * kMiB));  // nothing in flight: admitted, however large
  EXPECT_FALSE(gate->Admit(1));
  gate->Release(16 * kMiB);
  EXPECT_TRUE(gate->Reserve(&a, 4 * kMiB));
  EXPECT_TRUE(gate->Admit(4 * kMiB));  // beside the stream's reservation: 8 MiB
  EXPECT_FALSE(gate->Admit(1));
  EXPECT_EQ(gate->in_flight(), 8 * kMiB);
  gate->EndRead(&a, 0);
  gate->Release(4 * kMiB);
  EXPECT_EQ(gate->in_flight(), 0);
}

TEST_F(GateTest, ANewStreamExpectsTheLastRequestAnyStreamRead) {
  auto gate = std::make_shared<ProduceReadGate>(16 * kMiB, 0, deadlines);
  Reader a(1, &log), b(2, &log);
  EXPECT_TRUE(gate->Reserve(&a, 0));  // nothing read yet: reserves nothing
  EXPECT_EQ(gate->in_flight(), 0);
  gate->EndRead(&a, 6 * kMiB);
  EXPECT_TRUE(gate->Reserve(&b, 0));  // expects 6 MiB, like a's
  EXPECT_EQ(gate->in_flight(), 12 * kMiB);
  gate->EndRead(&b, 0);
  gate->Release(6 * kMiB);
  EXPECT_EQ(gate->in_flight(), 0);
}

TEST_F(GateTest, ACancelledWaiterLeavesTheLineAndIsNotResumed) {
  auto gate = std::make_shared<ProduceReadGate>(4 * kMiB, 0, deadlines);
  Reader a(1, &log), b(2, &log), c(3, &log);
  EXPECT_TRUE(gate->Reserve(&a, 4 * kMiB));
  EXPECT_FALSE(gate->Reserve(&b, 4 * kMiB));
  EXPECT_FALSE(gate->Reserve(&c, 4 * kMiB));
  EXPECT_FALSE(gate->Withdraw(&a));  // holds a reservation: its open read ends it
  EXPECT_TRUE(gate->Withdraw(&b));
  EXPECT_FALSE(gate->Withdraw(&b));
  EXPECT_EQ(gate->waiting(), 1u);
  gate->EndRead(&a, 0);
  EXPECT_EQ(log.Take(), (std::vector<int>{3}));  // b is gone from the line
  gate->EndRead(&c, 0);
  EXPECT_EQ(gate->in_flight(), 0);
}

}  // namespace
}  // namespace rill::broker
