// The group consumer (Consumer::Subscribe) against an in-process fake broker and fake group
// coordinator: start at the committed offset, revocation runs on the polling thread and commits
// before the release is reported, no records of a revoked partition afterwards, fencing loses
// partitions without a commit and rejoins, fenced commits fail clearly, Close revokes, commits
// and leaves (and returns the error of a failed final commit or leave), Subscribe and Assign
// exclude each other.

#include <gtest/gtest.h>

#include <thread>

#include "fake_broker.h"
#include "fake_group_coordinator.h"
#include "rill/client/consumer.h"

namespace rill::client {
namespace {

using namespace std::chrono_literals;
using testing::FakeBroker;
using testing::FakeGroupCoordinator;
using Event = FakeGroupCoordinator::Event;

const TopicPartition kP0{"t", 0};
const TopicPartition kP1{"t", 1};

void AppendRecords(FakeBroker& broker, const TopicPartition& tp, int n) {
  batch::BatchBuilder b(batch::Compression::kNone);
  const std::vector<batch::RecordHeader> no_headers;
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(b.Add("k", "v" + std::to_string(i), 1000 + i, no_headers).ok());
  }
  auto bytes = b.Build();
  ASSERT_TRUE(bytes.ok());
  broker.AppendBatch(tp, std::move(bytes).value());
}

// Records every callback with the thread it ran on and the coordinator's event count then.
class Listener : public ConsumerRebalanceListener {
 public:
  struct Call {
    char kind;
    std::vector<TopicPartition> partitions;
    std::thread::id thread;
    size_t events_before;
  };
  explicit Listener(FakeGroupCoordinator* coordinator) : coordinator_(coordinator) {}
  void OnPartitionsAssigned(const std::vector<TopicPartition>& ps) override { Add('A', ps); }
  void OnPartitionsRevoked(const std::vector<TopicPartition>& ps) override { Add('R', ps); }
  void OnPartitionsLost(const std::vector<TopicPartition>& ps) override { Add('L', ps); }
  std::vector<Call> calls;

 private:
  void Add(char kind, const std::vector<TopicPartition>& ps) {
    calls.push_back({kind, ps, std::this_thread::get_id(), coordinator_->events().size()});
  }
  FakeGroupCoordinator* coordinator_;
};

class GroupConsumerTest : public ::testing::Test {
 protected:
  GroupConsumerTest() : broker_(&coordinator_), listener_(&coordinator_) {
    broker_.AddTopic("t", 2);
  }

  ConsumerConfig Config() {
    ConsumerConfig c;
    c.bootstrap = broker_.address();
    c.group_id = "g";
    c.auto_offset_reset = OffsetReset::kEarliest;
    c.fetch_max_wait_ms = 20;
    c.auto_commit_interval_ms = 3600000;  // only the commits the tests cause
    return c;
  }

  std::unique_ptr<Consumer> Subscribed(ConsumerConfig c) {
    auto r = Consumer::Create(c);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::unique_ptr<Consumer> consumer = std::move(*r);
    EXPECT_TRUE(consumer->Subscribe({"t"}, &listener_).ok());
    return consumer;
  }

  // A consumer subscribed to "t" that owns kP0 and has polled its `n` records (appended here).
  std::unique_ptr<Consumer> OwningP0AfterReading(int n) {
    AppendRecords(broker_, kP0, n);
    coordinator_.SetTarget({kP0});
    auto c = Subscribed(Config());
    std::vector<ConsumerRecord> got;
    EXPECT_TRUE(PollUntil(
        *c, [&] { return got.size() >= static_cast<size_t>(n); }, &got));
    return c;
  }

  // Polls (collecting records) until `done` holds or a deadline passes.
  template <typename F>
  bool PollUntil(Consumer& c, F done, std::vector<ConsumerRecord>* out = nullptr) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      auto r = c.Poll(20ms);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok() && out != nullptr) out->insert(out->end(), r->begin(), r->end());
    }
    return done();
  }

  size_t Count(const std::vector<ConsumerRecord>& rs, const TopicPartition& tp) {
    size_t n = 0;
    for (const auto& r : rs) n += r.topic == tp.topic && r.partition == tp.partition;
    return n;
  }

  bool HasCall(char kind) {
    for (const auto& c : listener_.calls) {
      if (c.kind == kind) return true;
    }
    return false;
  }

  FakeGroupCoordinator coordinator_;
  FakeBroker broker_;
  Listener listener_;
};

TEST_F(GroupConsumerTest, JoinsAndStartsAtTheCommittedOffsetOrTheReset) {
  AppendRecords(broker_, kP0, 10);
  AppendRecords(broker_, kP1, 10);
  coordinator_.SetCommitted(kP0, 6);  // kP1: nothing committed -> earliest
  coordinator_.SetTarget({kP0, kP1});
  auto c = Subscribed(Config());
  std::vector<ConsumerRecord> got;
  ASSERT_TRUE(PollUntil(
      *c, [&] { return got.size() >= 14; }, &got))
      << got.size();
  EXPECT_EQ(got.size(), 14u);
  int64_t first_p0 = -1;
  for (const auto& r : got) {
    if (r.partition == 0 && first_p0 < 0) first_p0 = r.offset;
  }
  EXPECT_EQ(first_p0, 6);
  EXPECT_EQ(Count(got, kP1), 10u);
  ASSERT_FALSE(listener_.calls.empty());
  EXPECT_EQ(listener_.calls[0].kind, 'A');
  EXPECT_EQ(listener_.calls[0].partitions, (std::vector<TopicPartition>{kP0, kP1}));
  EXPECT_EQ(listener_.calls[0].thread, std::this_thread::get_id());
  EXPECT_FALSE(c->MemberId().empty());
  EXPECT_EQ(c->Subscription(), std::vector<std::string>{"t"});
}

TEST_F(GroupConsumerTest, CommittedOffsetOutOfRangeFallsBackToTheReset) {
  AppendRecords(broker_, kP0, 10);
  coordinator_.SetCommitted(kP0, 50);  // beyond the log end
  coordinator_.SetTarget({kP0});
  auto c = Subscribed(Config());
  std::vector<ConsumerRecord> got;
  ASSERT_TRUE(PollUntil(
      *c, [&] { return got.size() >= 10; }, &got));
  EXPECT_EQ(got.front().offset, 0);  // auto_offset_reset = earliest
}

TEST_F(GroupConsumerTest, NoCommitAndResetErrorIsReported) {
  AppendRecords(broker_, kP0, 3);
  coordinator_.SetTarget({kP0});
  ConsumerConfig cfg = Config();
  cfg.auto_offset_reset = OffsetReset::kError;
  auto c = Subscribed(cfg);
  Status error;
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (error.ok() && std::chrono::steady_clock::now() < deadline) {
    auto r = c->Poll(20ms);
    if (!r.ok()) error = r.status();
  }
  EXPECT_EQ(error.code(), StatusCode::kOutOfRange) << error.ToString();
}

TEST_F(GroupConsumerTest, RevocationRunsOnThePollingThreadAndCommitsBeforeTheRelease) {
  AppendRecords(broker_, kP0, 5);
  AppendRecords(broker_, kP1, 5);
  coordinator_.SetTarget({kP0, kP1});
  auto c = Subscribed(Config());
  std::vector<ConsumerRecord> got;
  ASSERT_TRUE(PollUntil(
      *c, [&] { return got.size() >= 10; }, &got));

  coordinator_.SetTarget({kP0});
  ASSERT_TRUE(PollUntil(
      *c, [&] { return HasCall('R'); }, &got));
  const Listener::Call revoke = listener_.calls.back();
  EXPECT_EQ(revoke.partitions, std::vector<TopicPartition>{kP1});
  EXPECT_EQ(revoke.thread, std::this_thread::get_id());
  // After the callback, records of kP1 are never returned again.
  got.clear();
  AppendRecords(broker_, kP1, 5);
  AppendRecords(broker_, kP0, 5);
  ASSERT_TRUE(PollUntil(
      *c, [&] { return Count(got, kP0) >= 5; }, &got));
  EXPECT_EQ(Count(got, kP1), 0u);
  EXPECT_EQ(c->Assignment(), std::vector<TopicPartition>{kP0});

  // Order at the coordinator: heartbeats still owning kP1 until the commit of its position (5),
  // and only after that a heartbeat without it.
  auto events = coordinator_.events();
  ASSERT_TRUE(PollUntil(*c, [&] {
    events = coordinator_.events();
    for (const auto& e : events) {
      if (e.kind == Event::kHeartbeat && e.epoch > 0 && !e.owned.empty() && !e.owned.count(kP1))
        return true;
    }
    return false;
  }));
  size_t commit_at = SIZE_MAX, release_at = SIZE_MAX;
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    if (e.kind == Event::kCommit && e.offsets.count(kP1) && commit_at == SIZE_MAX) {
      EXPECT_EQ(e.offsets.at(kP1), 5);
      commit_at = i;
    }
    if (e.kind == Event::kHeartbeat && e.epoch > 0 && !e.owned.empty() && !e.owned.count(kP1) &&
        release_at == SIZE_MAX) {
      release_at = i;
    }
  }
  ASSERT_NE(commit_at, SIZE_MAX) << "the revoked partition's position was never committed";
  EXPECT_GE(commit_at, revoke.events_before) << "committed before the revocation callback ran";
  EXPECT_LT(commit_at, release_at) << "released before its offset was committed";
  EXPECT_EQ(coordinator_.committed().at(kP1), 5);
}

TEST_F(GroupConsumerTest, FencingLosesPartitionsWithoutCommitAndRejoins) {
  AppendRecords(broker_, kP0, 5);
  coordinator_.SetTarget({kP0, kP1});
  auto c = Subscribed(Config());
  std::vector<ConsumerRecord> got;
  ASSERT_TRUE(PollUntil(
      *c, [&] { return got.size() >= 5; }, &got));
  const std::string first_id = c->MemberId();

  coordinator_.FenceNextHeartbeat();
  // Records returned from here on come after the rejoin (the Poll that runs OnPartitionsLost may
  // go on to run OnPartitionsAssigned and return records).
  got.clear();
  ASSERT_TRUE(PollUntil(
      *c, [&] { return HasCall('L'); }, &got));
  const Listener::Call lost = listener_.calls.back();
  EXPECT_EQ(lost.partitions, (std::vector<TopicPartition>{kP0, kP1}));
  EXPECT_EQ(lost.thread, std::this_thread::get_id());
  // Rejoined: a join (epoch 0, no member id) after the fence, then assigned again.
  ASSERT_TRUE(PollUntil(
      *c, [&] { return listener_.calls.back().kind == 'A'; }, &got));
  EXPECT_NE(c->MemberId(), first_id);
  const auto events = coordinator_.events();
  bool fenced_seen = false, rejoined = false;
  for (const auto& e : events) {
    if (e.kind == Event::kCommit) {
      EXPECT_FALSE(fenced_seen && !rejoined) << "committed between the fence and the rejoin";
    }
    if (e.kind == Event::kHeartbeat && e.epoch == 0 && !events.empty()) {
      if (fenced_seen) {
        rejoined = true;
        EXPECT_TRUE(e.member_id.empty());
        EXPECT_TRUE(e.owned.empty());
      }
      fenced_seen = true;  // the first join; the fence follows it
    }
  }
  EXPECT_TRUE(rejoined);
  // Resumes from the committed offset (none: earliest) after the rejoin.
  ASSERT_TRUE(PollUntil(
      *c, [&] { return got.size() >= 5; }, &got));
  EXPECT_EQ(got.front().offset, 0);
}

TEST_F(GroupConsumerTest, FencedCommitReturnsAClearError) {
  auto c = OwningP0AfterReading(3);
  ASSERT_FALSE(HasFailure());
  ASSERT_TRUE(c->Commit().ok());
  EXPECT_EQ(coordinator_.committed().at(kP0), 3);
  ASSERT_TRUE(c->Commit({{kP0, 1}}).ok());
  EXPECT_EQ(coordinator_.committed().at(kP0), 1);
  auto committed = c->Committed({kP0, kP1});
  ASSERT_TRUE(committed.ok());
  EXPECT_EQ(committed->at(kP0), 1);
  EXPECT_EQ(committed->at(kP1), -1);
  coordinator_.FenceCommits(true);
  Status s = c->Commit();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("FENCED_MEMBER_EPOCH"), std::string::npos) << s.ToString();
  EXPECT_FALSE(c->Commit({{kP0, -3}}).ok());
}

TEST_F(GroupConsumerTest, CommitAsyncCallbackRunsOnThePollingThread) {
  AppendRecords(broker_, kP0, 4);
  coordinator_.SetTarget({kP0});
  auto c = Subscribed(Config());
  std::vector<ConsumerRecord> got;
  ASSERT_TRUE(PollUntil(
      *c, [&] { return got.size() >= 4; }, &got));
  bool called = false;
  std::thread::id thread;
  OffsetMap seen;
  c->CommitAsync([&](const Status& s, const OffsetMap& offsets) {
    EXPECT_TRUE(s.ok()) << s.ToString();
    called = true;
    thread = std::this_thread::get_id();
    seen = offsets;
  });
  ASSERT_TRUE(PollUntil(*c, [&] { return called; }));
  EXPECT_EQ(thread, std::this_thread::get_id());
  EXPECT_EQ(seen.at(kP0), 4);
  EXPECT_EQ(coordinator_.committed().at(kP0), 4);
}

TEST_F(GroupConsumerTest, AutoCommitOnTheInterval) {
  AppendRecords(broker_, kP0, 4);
  coordinator_.SetTarget({kP0});
  ConsumerConfig cfg = Config();
  cfg.auto_commit_interval_ms = 50;
  auto c = Subscribed(cfg);
  std::vector<ConsumerRecord> got;
  ASSERT_TRUE(PollUntil(*c, [&] {
    auto m = coordinator_.committed();
    return m.count(kP0) && m.at(kP0) == 4;
  }));
}

TEST_F(GroupConsumerTest, CloseRevokesCommitsAndLeaves) {
  AppendRecords(broker_, kP0, 7);
  coordinator_.SetTarget({kP0});
  auto c = Subscribed(Config());
  std::vector<ConsumerRecord> got;
  ASSERT_TRUE(PollUntil(
      *c, [&] { return got.size() >= 7; }, &got));
  const std::string id = c->MemberId();
  Status closed = c->Close();
  EXPECT_TRUE(closed.ok()) << closed.ToString();
  ASSERT_FALSE(listener_.calls.empty());
  EXPECT_EQ(listener_.calls.back().kind, 'R');
  EXPECT_EQ(listener_.calls.back().partitions, std::vector<TopicPartition>{kP0});
  const auto events = coordinator_.events();
  ASSERT_GE(events.size(), 2u);
  const Event& leave = events.back();
  EXPECT_EQ(leave.kind, Event::kHeartbeat);
  EXPECT_EQ(leave.epoch, -1);
  EXPECT_EQ(leave.member_id, id);
  const Event& commit = events[events.size() - 2];
  EXPECT_EQ(commit.kind, Event::kCommit);
  EXPECT_EQ(commit.offsets.at(kP0), 7);
  EXPECT_FALSE(c->Poll(1ms).ok());
  EXPECT_TRUE(c->Close().ok());  // closing again does nothing
  EXPECT_EQ(coordinator_.events().size(), events.size());
}

TEST_F(GroupConsumerTest, CloseReportsAFailedLeave) {
  auto c = OwningP0AfterReading(3);
  ASSERT_FALSE(HasFailure());
  coordinator_.FailNextLeave();
  Status closed = c->Close();
  EXPECT_EQ(closed.code(), StatusCode::kUnavailable) << closed.ToString();
  EXPECT_NE(closed.message().find("COORDINATOR_NOT_AVAILABLE"), std::string::npos)
      << closed.ToString();
  EXPECT_NE(closed.message().find("leaving group 'g'"), std::string::npos) << closed.ToString();
  // The final commit still went through before the leave was tried, and the consumer is closed.
  EXPECT_EQ(coordinator_.committed().at(kP0), 3);
  EXPECT_EQ(coordinator_.events().back().epoch, -1);
  EXPECT_FALSE(c->Poll(1ms).ok());
  EXPECT_TRUE(c->Close().ok());
}

TEST_F(GroupConsumerTest, UnsubscribeReportsAFailedLeaveAndStillUnsubscribes) {
  auto c = OwningP0AfterReading(3);
  ASSERT_FALSE(HasFailure());
  coordinator_.FailNextLeave();
  Status left = c->Unsubscribe();
  EXPECT_EQ(left.code(), StatusCode::kUnavailable) << left.ToString();
  EXPECT_NE(left.message().find("leaving group 'g'"), std::string::npos) << left.ToString();
  EXPECT_EQ(coordinator_.committed().at(kP0), 3);  // the final commit went through first
  EXPECT_TRUE(c->Subscription().empty());
  // Unsubscribed either way: subscribing again works, and a second leave succeeds.
  ASSERT_TRUE(c->Subscribe({"t"}).ok());
  EXPECT_TRUE(c->Unsubscribe().ok());
  EXPECT_TRUE(c->Close().ok());
}

TEST_F(GroupConsumerTest, CloseReportsAFailedFinalCommit) {
  auto c = OwningP0AfterReading(3);
  ASSERT_FALSE(HasFailure());
  coordinator_.FenceCommits(true);
  Status closed = c->Close();
  EXPECT_FALSE(closed.ok());
  EXPECT_EQ(closed.message().rfind("FENCED_MEMBER_EPOCH", 0), 0u) << closed.ToString();
  EXPECT_EQ(coordinator_.committed().count(kP0), 0u);
  EXPECT_EQ(coordinator_.events().back().epoch, -1);  // it still left
}

TEST_F(GroupConsumerTest, StaticMemberLeavesWithEpochMinusTwo) {
  coordinator_.SetTarget({kP0});
  ConsumerConfig cfg = Config();
  cfg.group_instance_id = "instance-1";
  auto c = Subscribed(cfg);
  ASSERT_TRUE(PollUntil(*c, [&] { return HasCall('A'); }));
  EXPECT_TRUE(c->Close().ok());
  EXPECT_EQ(coordinator_.events().back().epoch, -2);
}

TEST_F(GroupConsumerTest, UnsubscribeLeavesAndAllowsAssign) {
  coordinator_.SetTarget({kP0});
  auto c = Subscribed(Config());
  ASSERT_TRUE(PollUntil(*c, [&] { return HasCall('A'); }));
  Status s = c->Assign({kP1});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("Unsubscribe"), std::string::npos) << s.ToString();
  ASSERT_TRUE(c->Unsubscribe().ok());
  EXPECT_EQ(listener_.calls.back().kind, 'R');
  EXPECT_EQ(coordinator_.events().back().epoch, -1);
  EXPECT_TRUE(c->Assignment().empty());
  ASSERT_TRUE(c->Assign({kP1}).ok());
  Status again = c->Subscribe({"t"});
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.message().find("Assign"), std::string::npos) << again.ToString();
}

TEST(GroupConsumerConfigTest, SubscribeNeedsAGroupAndValidConfig) {
  ConsumerConfig c;
  c.bootstrap = "127.0.0.1:1";
  auto consumer = Consumer::Create(c);
  ASSERT_TRUE(consumer.ok());
  EXPECT_EQ((*consumer)->Subscribe({"t"}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*consumer)->Commit().code(), StatusCode::kInvalidArgument);
  c.group_id = "g";
  c.group_remote_assignor = "nope";
  EXPECT_FALSE(Consumer::Create(c).ok());
  c.group_remote_assignor = "range";
  c.session_timeout_ms = 0;
  EXPECT_FALSE(Consumer::Create(c).ok());
  ConsumerConfig d;
  d.group_instance_id = "x";
  EXPECT_FALSE(Consumer::Create(d).ok());
}

}  // namespace
}  // namespace rill::client
