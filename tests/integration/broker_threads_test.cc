// The broker's thread count is bounded by its configuration, not by its partitions: every
// partition log's flusher runs on the shared FlushScheduler (storage.flush_threads), so a real
// rill-broker that hosts a few thousand partitions, each written with acks=all, runs no more
// threads than with ten (issue 13; before it, one rill-flush thread per log: 2,000+). And the
// partitions one request writes are made durable together by shared syncs (one syncfs for many
// logs; storage.shared_sync_min_logs), or each by its own fdatasync when that is set to 0.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "broker_process.h"
#include "rill/proto/record_batch.h"
#include "support/poll.h"

namespace rill::testing {
namespace {

namespace fs = std::filesystem;

// Threads of process `pid` (from /proc/<pid>/status), -1 when unreadable.
int ThreadsOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

// Threads named `name` (the comm of /proc/<pid>/task/*), e.g. "rill-flush".
int ThreadsNamed(pid_t pid, const std::string& name) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(e.path() / "comm");
    std::string comm;
    std::getline(in, comm);
    if (comm == name) ++n;
  }
  return n;
}

class BrokerThreadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("rill_threads_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    broker_ = std::make_unique<BrokerProcess>(dir_);
    std::vector<std::string> args = {"--storage.flush_threads", "3"};
    for (auto& a : ExtraArgs()) args.push_back(a);
    ASSERT_NO_FATAL_FAILURE(broker_->Start(args));
  }
  virtual std::vector<std::string> ExtraArgs() const { return {}; }

  // The value of an unlabelled counter in /metrics, -1 when absent.
  int64_t Counter(const std::string& name) {
    const std::string text = HttpGet(broker_->http_port(), "/metrics");
    const std::string key = "\n" + name + " ";
    auto at = text.find(key);
    if (at == std::string::npos) return -1;
    return std::stoll(text.substr(at + key.size()));
  }
  void TearDown() override {
    if (::testing::Test::HasFailure() && broker_) {
      std::cerr << "---- broker log ----\n" << broker_->log() << "--------------------\n";
    }
    broker_.reset();
    fs::remove_all(dir_);
  }

  // One acks=all batch (one record of `value_bytes`) to each of `partitions` partitions of
  // `topic`, in one request; every partition must be acknowledged.
  void ProduceToEach(const std::string& topic, int partitions, size_t value_bytes = 1) {
    batch::BatchBuilder b(batch::Compression::kNone);
    const std::string value(value_bytes, 'v');
    ASSERT_TRUE(b.Add(std::string_view("k"), std::string_view(value), 1).ok());
    auto built = b.Build();
    ASSERT_TRUE(built.ok());
    v1::ProduceRequest req;
    req.set_acks(-1);
    for (int p = 0; p < partitions; ++p) {
      auto* part = req.add_partitions();
      part->set_topic(topic);
      part->set_partition(p);
      part->set_records(*built);
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::ProduceResponse resp;
    auto st = broker_->producer->Produce(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(resp.partitions_size(), partitions);
    for (const auto& r : resp.partitions()) {
      ASSERT_EQ(r.error(), v1::NONE) << r.partition() << ": " << r.error_message();
    }
  }

  std::string dir_;
  std::unique_ptr<BrokerProcess> broker_;
};

TEST_F(BrokerThreadsTest, ThousandsOfPartitionsAddNoThreads) {
  ASSERT_EQ(broker_->CreateTopic("few", 10).error(), v1::NONE);
  ASSERT_NO_FATAL_FAILURE(ProduceToEach("few", 10));
  const int few = ThreadsOf(broker_->pid());
  ASSERT_GT(few, 0);

  constexpr int kMany = 2000;
  ASSERT_EQ(broker_->CreateTopic("many", kMany).error(), v1::NONE);
  ASSERT_NO_FATAL_FAILURE(ProduceToEach("many", kMany));
  // Each partition holds its record (a sample across the range).
  for (int p : {0, 1, kMany / 2, kMany - 1}) {
    auto f = broker_->Fetch("many", p, 0);
    ASSERT_EQ(f.error(), v1::NONE) << f.error_message();
    EXPECT_EQ(f.high_watermark(), 1) << p;
  }
  const int many = ThreadsOf(broker_->pid());
  EXPECT_EQ(ThreadsNamed(broker_->pid(), "rill-flush"), 3) << "storage.flush_threads";
  // gRPC may add a few threads of its own under load; partitions add none.
  EXPECT_LE(many, few + 8) << "threads with 10 partitions: " << few << ", with " << kMany + 10
                           << ": " << many;
  EXPECT_LE(many, 64);
}

// One acks=all request to 500 partitions: the flush threads find hundreds of logs waiting at once
// and make them durable with shared syncs, and every partition is acknowledged and readable.
TEST_F(BrokerThreadsTest, PartitionsWrittenByOneRequestShareSyncs) {
  constexpr int kParts = 500;
  ASSERT_EQ(broker_->CreateTopic("spread", kParts).error(), v1::NONE);
  ASSERT_EQ(Counter("rill_log_shared_syncs_total"), 0);
  for (int round = 0; round < 3; ++round) ASSERT_NO_FATAL_FAILURE(ProduceToEach("spread", kParts));
  for (int p : {0, 1, kParts / 2, kParts - 1}) {
    auto f = broker_->Fetch("spread", p, 0);
    ASSERT_EQ(f.error(), v1::NONE) << f.error_message();
    EXPECT_EQ(f.high_watermark(), 3) << p;
  }
  const int64_t syncs = Counter("rill_log_shared_syncs_total");
  const int64_t rounds = Counter("rill_log_shared_sync_rounds_total");
  EXPECT_GE(syncs, 1);
  // Each shared sync serves at least two logs, and many of the 1,500 groups went that way.
  EXPECT_GE(rounds, 2 * syncs);
  EXPECT_GE(rounds, kParts / 2) << syncs << " shared syncs";
}

// Standby segment files (zeros written ahead for partitions with small fsync groups) in the data
// dir.
int StandbyFiles(const std::string& data_dir) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(data_dir, ec)) {
    if (e.path().filename() == "00000000000000000000.recycle") ++n;
  }
  return n;
}

// Eight partitions written in small acks=all groups would each prepare an 8 MiB standby; a
// budget of 8 MiB lets one of them have one at a time.
class StandbyBudgetTest : public BrokerThreadsTest {
 protected:
  std::vector<std::string> ExtraArgs() const override {
    return {"--storage.standby_budget_bytes", std::to_string(8 << 20)};
  }
};

TEST_F(StandbyBudgetTest, TheBrokerBoundsTheStandbysOfAllPartitions) {
  constexpr int kParts = 8;
  ASSERT_EQ(broker_->CreateTopic("small-groups", kParts).error(), v1::NONE);
  // 8 KB per partition per request, 100 requests: 800 KB per partition, past the 512 KB a
  // partition appends before it starts a standby.
  for (int i = 0; i < 100; ++i)
    ASSERT_NO_FATAL_FAILURE(ProduceToEach("small-groups", kParts, 8000));
  ASSERT_TRUE(test::PollUntil([&] { return StandbyFiles(dir_ + "/data") >= 1; },
                              std::chrono::seconds(20), std::chrono::milliseconds(20)))
      << "no partition prepared a standby: the test would prove nothing";
  for (int i = 0; i < 20; ++i) ASSERT_NO_FATAL_FAILURE(ProduceToEach("small-groups", kParts, 8000));
  EXPECT_EQ(StandbyFiles(dir_ + "/data"), 1) << "the budget has room for one 8 MiB standby";
}

// A restart keeps the bound: the standby the last run left on disk is counted when its
// partition opens, so no other partition starts one beside it.
TEST_F(StandbyBudgetTest, AStandbyLeftByTheLastRunStaysWithinTheBudgetAfterARestart) {
  constexpr int kParts = 8;
  ASSERT_EQ(broker_->CreateTopic("small-groups", kParts).error(), v1::NONE);
  for (int i = 0; i < 100; ++i)
    ASSERT_NO_FATAL_FAILURE(ProduceToEach("small-groups", kParts, 8000));
  ASSERT_TRUE(test::PollUntil([&] { return StandbyFiles(dir_ + "/data") == 1; },
                              std::chrono::seconds(20), std::chrono::milliseconds(20)))
      << "no partition prepared a standby: the test would prove nothing";
  ASSERT_EQ(broker_->Stop(), 0);
  ASSERT_EQ(StandbyFiles(dir_ + "/data"), 1) << "the standby stays on disk across the restart";
  std::vector<std::string> args = {"--storage.flush_threads", "3"};
  for (auto& a : ExtraArgs()) args.push_back(a);
  ASSERT_NO_FATAL_FAILURE(broker_->Start(args));
  // Every partition appends well past the point where it would start a standby of its own.
  for (int i = 0; i < 120; ++i)
    ASSERT_NO_FATAL_FAILURE(ProduceToEach("small-groups", kParts, 8000));
  EXPECT_EQ(StandbyFiles(dir_ + "/data"), 1)
      << "a standby found at start was not counted against the budget";
}

class UnboundedStandbysTest : public BrokerThreadsTest {
 protected:
  std::vector<std::string> ExtraArgs() const override {
    return {"--storage.standby_budget_bytes", "0"};
  }
};

TEST_F(UnboundedStandbysTest, WithoutABudgetEveryPartitionPreparesAStandby) {
  constexpr int kParts = 8;
  ASSERT_EQ(broker_->CreateTopic("small-groups", kParts).error(), v1::NONE);
  for (int i = 0; i < 100; ++i)
    ASSERT_NO_FATAL_FAILURE(ProduceToEach("small-groups", kParts, 8000));
  EXPECT_TRUE(test::PollUntil([&] { return StandbyFiles(dir_ + "/data") == kParts; },
                              std::chrono::seconds(20), std::chrono::milliseconds(20)))
      << StandbyFiles(dir_ + "/data") << " standby files";
}

class NoSharedSyncsTest : public BrokerThreadsTest {
 protected:
  std::vector<std::string> ExtraArgs() const override {
    return {"--storage.shared_sync_min_logs", "0"};
  }
};

TEST_F(NoSharedSyncsTest, EachPartitionSyncsItsOwnFilesWhenSharedSyncsAreOff) {
  constexpr int kParts = 500;
  ASSERT_EQ(broker_->CreateTopic("spread", kParts).error(), v1::NONE);
  ASSERT_NO_FATAL_FAILURE(ProduceToEach("spread", kParts));
  auto f = broker_->Fetch("spread", kParts - 1, 0);
  ASSERT_EQ(f.error(), v1::NONE) << f.error_message();
  EXPECT_EQ(f.high_watermark(), 1);
  EXPECT_EQ(Counter("rill_log_shared_syncs_total"), 0);
  EXPECT_EQ(Counter("rill_log_shared_sync_rounds_total"), 0);
}

}  // namespace
}  // namespace rill::testing
