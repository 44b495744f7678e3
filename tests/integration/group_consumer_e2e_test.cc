// The group consumer end to end: a real rill-broker, a 12-partition topic, a producer writing
// continuously, and consumer worker PROCESSES (group_consumer_worker) in one group joining and
// leaving. Each worker logs its ownership intervals (CLOCK_MONOTONIC, system-wide), every record
// it consumed and its commits. Checked:
// - no partition is owned by two members at the same moment (an interval runs from the
//   assigned callback to the revoked/lost callback, or to the process's death);
// - after every membership change every partition is owned again within a bound;
// - CleanJoinAndLeave (no crash): every produced record is consumed exactly once by the group;
// - KillNine: with a worker killed (SIGKILL) the group still consumes every record at least once,
//   and the new owner of each of its partitions resumes at its last commit.

#include <gtest/gtest.h>
#include <signal.h>
#include <time.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "broker_process.h"
#include "rill/client/consumer.h"
#include "rill/client/producer.h"
#include "support/poll.h"

namespace rill::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kPartitions = 12;
constexpr const char* kTopic = "events";
constexpr const char* kGroup = "e2e-group";
// A partition must be owned again this long after a membership change (heartbeats every 100 ms;
// a killed member's partitions wait for its session timeout on top).
constexpr int64_t kReownBoundNs = 8'000'000'000;

int64_t MonoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

struct Interval {
  int worker;
  int64_t start;
  int64_t end;  // INT64_MAX while open
};

// What one worker's file says.
struct WorkerLog {
  std::vector<std::pair<int, int64_t>> consumed;  // (partition, offset) in order
  // partition -> start of the ownership interval -> offsets consumed in it, in order
  std::map<int, std::map<int64_t, std::vector<int64_t>>> consumed_in;
  std::map<int, std::vector<Interval>> intervals;  // partition -> ownership intervals
  std::map<int, int64_t> last_commit;              // partition -> last C offset
  std::map<int, int64_t> pending_after_commit;     // partition -> P offset after the last C
  std::vector<std::string> errors;
  bool closed = false;
};

std::vector<int> ParseList(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(std::stoi(item));
  }
  return out;
}

// Parses a worker file; intervals still open end at `death_ns` (INT64_MAX if alive).
WorkerLog ParseWorker(int worker, const std::string& text, int64_t death_ns) {
  WorkerLog log;
  std::map<int, int64_t> open;  // partition -> start
  std::stringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::stringstream ls(line);
    char kind;
    ls >> kind;
    if (kind == 'A' || kind == 'R' || kind == 'L') {
      long long ns;
      std::string list;
      ls >> ns >> list;
      for (int p : ParseList(list)) {
        if (kind == 'A') {
          open[p] = ns;
        } else if (open.count(p)) {
          log.intervals[p].push_back({worker, open[p], ns});
          open.erase(p);
        }
      }
    } else if (kind == 'D') {
      int p;
      long long off;
      ls >> p >> off;
      log.consumed.emplace_back(p, off);
      log.consumed_in[p][open.count(p) ? open[p] : -1].push_back(off);
    } else if (kind == 'C') {
      int p;
      long long off;
      ls >> p >> off;
      log.last_commit[p] = off;
      log.pending_after_commit.erase(p);
    } else if (kind == 'P') {
      int p;
      long long off;
      ls >> p >> off;
      log.pending_after_commit[p] = off;
    } else if (kind == 'E') {
      log.errors.push_back(line);
    } else if (kind == 'X') {
      log.closed = true;
    }
  }
  for (auto& [p, start] : open) log.intervals[p].push_back({worker, start, death_ns});
  return log;
}

class GroupConsumerE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (std::filesystem::temp_directory_path() /
            ("rill_gce2e_" + std::to_string(::getpid()) + "_" + info->name()))
               .string();
    std::filesystem::remove_all(dir_);
    broker_ = std::make_unique<BrokerProcess>(dir_);
    broker_->Start({"--groups.offsets_partitions", "1", "--groups.min_session_timeout_ms", "100",
                    "--groups.heartbeat_interval_ms", "100"});
    bootstrap_ = "127.0.0.1:" + std::to_string(broker_->client_port());
    grpc::ClientContext ctx;
    v1::CreateTopicsRequest req;
    auto* t = req.add_topics();
    t->set_name(kTopic);
    t->set_partitions(kPartitions);
    v1::CreateTopicsResponse resp;
    ASSERT_TRUE(broker_->admin->CreateTopics(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.results(0).error(), v1::NONE) << resp.results(0).error_message();
  }

  void TearDown() override {
    StopProducer();
    workers_.clear();
    if (::testing::Test::HasFailure()) {
      std::cerr << "---- broker log (tail) ----\n";
      std::string log = broker_->log();
      std::cerr << log.substr(log.size() > 20000 ? log.size() - 20000 : 0) << "\n";
      for (size_t i = 0; i < outs_.size(); ++i) {
        std::string w = ReadFile(outs_[i] + ".stderr");
        if (!w.empty()) std::cerr << "---- worker " << i << " stderr ----\n" << w << "\n";
      }
    }
    broker_.reset();
    // Kept after a failure (or with RILL_IT_KEEP set) for a look at the worker logs.
    if (!::testing::Test::HasFailure() && getenv("RILL_IT_KEEP") == nullptr) {
      std::filesystem::remove_all(dir_);
    }
  }

  // Starts worker `i` (its index in workers_).
  int StartWorker(const std::string& mode, int session_timeout_ms) {
    const int i = static_cast<int>(workers_.size());
    outs_.push_back(dir_ + "/worker" + std::to_string(i) + ".log");
    deaths_.push_back(INT64_MAX);
    workers_.push_back(Process::Spawn({RILL_GROUP_WORKER_BINARY, bootstrap_, kGroup, kTopic,
                                       outs_.back(), mode, std::to_string(session_timeout_ms)},
                                      outs_.back() + ".stderr"));
    EXPECT_NE(workers_.back(), nullptr);
    return i;
  }

  void CloseWorker(int i) {
    workers_[i]->Signal(SIGTERM);
    auto code = workers_[i]->Wait(20s);
    ASSERT_TRUE(code.has_value()) << "worker " << i << " did not close";
    EXPECT_EQ(*code, 0);
    deaths_[i] = MonoNs();
  }

  void KillWorker(int i) {
    workers_[i]->Signal(SIGKILL);
    ASSERT_TRUE(workers_[i]->Wait(10s).has_value());
    deaths_[i] = MonoNs();  // an upper bound of its death: its intervals end no later
  }

  std::vector<WorkerLog> Logs() {
    std::vector<WorkerLog> out;
    for (size_t i = 0; i < outs_.size(); ++i) {
      out.push_back(ParseWorker(static_cast<int>(i), ReadFile(outs_[i]), deaths_[i]));
    }
    return out;
  }

  // Partition -> its intervals, merged over workers.
  static std::map<int, std::vector<Interval>> AllIntervals(const std::vector<WorkerLog>& logs) {
    std::map<int, std::vector<Interval>> all;
    for (const auto& l : logs) {
      for (const auto& [p, iv] : l.intervals) all[p].insert(all[p].end(), iv.begin(), iv.end());
    }
    return all;
  }

  // The partitions owned by anyone at `t`.
  static int OwnedAt(const std::map<int, std::vector<Interval>>& all, int64_t t) {
    int n = 0;
    for (const auto& [p, ivs] : all) {
      for (const auto& iv : ivs) {
        if (iv.start <= t && t < iv.end) {
          ++n;
          break;
        }
      }
    }
    return n;
  }

  // Waits until every partition is owned by a live worker (per the logs).
  void WaitAllOwned(const char* what) {
    ASSERT_TRUE(test::PollUntil(
        [&] { return OwnedAt(AllIntervals(Logs()), MonoNs()) == kPartitions; }, 20s, 20ms))
        << "not every partition owned " << what;
  }

  // Waits until the group consumed `n` more records than now.
  size_t Consumed() {
    size_t n = 0;
    for (const auto& l : Logs()) n += l.consumed.size();
    return n;
  }
  void WaitConsumedMore(size_t n) {
    const size_t target = Consumed() + n;
    ASSERT_TRUE(test::PollUntil([&] { return Consumed() >= target; }, 20s, 20ms))
        << "consumption stalled";
  }

  // Producer thread: ~2,000 records/s round-robin over the partitions until StopProducer.
  void StartProducer() {
    client::ProducerConfig pc;
    pc.bootstrap = bootstrap_;
    pc.linger_ms = 2;
    auto p = client::Producer::Create(pc);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    producer_ = std::move(*p);
    producing_ = true;
    producer_thread_ = std::thread([this] {
      int64_t seq = 0;
      std::unique_lock lk(mu_);
      while (producing_) {
        lk.unlock();
        for (int i = 0; i < 20; ++i, ++seq) {
          client::ProducerRecord r;
          r.topic = kTopic;
          r.partition = static_cast<int32_t>(seq % kPartitions);
          r.value = std::to_string(seq);
          producer_->Send(r, [this](const Result<client::RecordMetadata>& md) {
            std::lock_guard g(mu_);
            if (md.ok()) {
              produced_.insert({md->partition, md->offset});
            } else {
              ++send_failures_;
            }
          });
        }
        lk.lock();
        stop_cv_.wait_for(lk, 10ms, [this] { return !producing_; });  // pacing, not waiting
      }
    });
  }

  void StopProducer() {
    {
      std::lock_guard lk(mu_);
      if (!producing_) return;
      producing_ = false;
    }
    stop_cv_.notify_all();
    producer_thread_.join();
    producer_->Flush();
    producer_->Close();
  }

  std::set<std::pair<int, int64_t>> Produced() {
    std::lock_guard lk(mu_);
    return produced_;
  }

  // Waits until the group consumed every produced record at least once.
  void WaitEverythingConsumed() {
    const auto produced = Produced();
    size_t missing = produced.size();
    ASSERT_TRUE(test::PollUntil(
        [&] {
          std::set<std::pair<int, int64_t>> seen;
          for (const auto& l : Logs()) seen.insert(l.consumed.begin(), l.consumed.end());
          missing = 0;
          for (const auto& r : produced) missing += seen.count(r) == 0;
          return missing == 0;
        },
        20s, 50ms))
        << missing << " of " << produced.size() << " records never consumed";
  }

  // No two intervals of one partition overlap.
  static void CheckNoDoubleOwnership(const std::vector<WorkerLog>& logs) {
    for (auto& [p, ivs] : AllIntervals(logs)) {
      auto sorted = ivs;
      std::sort(sorted.begin(), sorted.end(),
                [](const Interval& a, const Interval& b) { return a.start < b.start; });
      for (size_t i = 1; i < sorted.size(); ++i) {
        EXPECT_LE(sorted[i - 1].end, sorted[i].start)
            << "partition " << p << " owned by worker " << sorted[i - 1].worker << " ["
            << sorted[i - 1].start << ", " << sorted[i - 1].end << ") and worker "
            << sorted[i].worker << " from " << sorted[i].start;
      }
    }
  }

  // After each change at time t (but the last `skip_last` ones, e.g. the final shutdown), every
  // partition is owned at some moment within kReownBoundNs.
  static void CheckReowned(const std::vector<WorkerLog>& logs, const std::vector<int64_t>& changes,
                           int64_t extra_ns) {
    const auto all = AllIntervals(logs);
    for (int64_t t : changes) {
      std::vector<int64_t> candidates = {t};
      for (const auto& [p, ivs] : all) {
        for (const auto& iv : ivs) {
          if (iv.start >= t) candidates.push_back(iv.start);
        }
      }
      std::sort(candidates.begin(), candidates.end());
      int64_t when = -1;
      for (int64_t c : candidates) {
        if (OwnedAt(all, c) == kPartitions) {
          when = c;
          break;
        }
      }
      ASSERT_GE(when, 0) << "after the change at " << t << " not every partition was owned again";
      EXPECT_LE(when - t, kReownBoundNs + extra_ns)
          << "every partition owned again only " << (when - t) / 1000000 << " ms after a change";
    }
  }

  std::string dir_;
  std::string bootstrap_;
  std::unique_ptr<BrokerProcess> broker_;
  std::vector<std::unique_ptr<Process>> workers_;
  std::vector<std::string> outs_;
  std::vector<int64_t> deaths_;

  std::unique_ptr<client::Producer> producer_;
  std::thread producer_thread_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool producing_ = false;
  std::set<std::pair<int, int64_t>> produced_;
  int send_failures_ = 0;
};

TEST_F(GroupConsumerE2ETest, CleanJoinAndLeaveConsumesEveryRecordExactlyOnce) {
  std::vector<int64_t> changes;
  StartProducer();
  changes.push_back(MonoNs());
  StartWorker("auto", 10000);
  StartWorker("auto", 10000);
  WaitAllOwned("by the first two workers");
  WaitConsumedMore(2000);

  changes.push_back(MonoNs());
  const int late = StartWorker("auto", 10000);
  // The late worker gets its share, and the group keeps consuming.
  {
    ASSERT_TRUE(test::PollUntil(
        [&] { return Logs()[late].intervals.size() >= size_t{kPartitions / 3}; }, 20s, 20ms))
        << "late joiner got nothing";
  }
  WaitAllOwned("after the late join");
  WaitConsumedMore(2000);

  changes.push_back(MonoNs());
  CloseWorker(0);  // leaves cleanly mid-run
  WaitAllOwned("after worker 0 left");
  WaitConsumedMore(2000);

  StopProducer();
  WaitEverythingConsumed();
  CloseWorker(1);
  CloseWorker(late);

  const auto logs = Logs();
  for (size_t i = 0; i < logs.size(); ++i) {
    EXPECT_TRUE(logs[i].closed) << "worker " << i;
    EXPECT_TRUE(logs[i].errors.empty()) << "worker " << i << ": " << logs[i].errors.front();
  }
  EXPECT_EQ(send_failures_, 0);
  CheckNoDoubleOwnership(logs);
  CheckReowned(logs, changes, 0);

  // Exactly once: every produced record consumed by one worker, once.
  std::map<std::pair<int, int64_t>, int> count;
  for (const auto& l : logs) {
    for (const auto& r : l.consumed) count[r]++;
  }
  const auto produced = Produced();
  ASSERT_GT(produced.size(), 6000u);
  size_t dup = 0;
  for (const auto& [r, n] : count) {
    if (n > 1 && ++dup <= 5) {
      ADD_FAILURE() << "record " << r.first << "@" << r.second << " consumed " << n << " times";
    }
    EXPECT_TRUE(produced.count(r))
        << "consumed a record never produced: " << r.first << "@" << r.second;
  }
  EXPECT_EQ(dup, 0u) << "duplicated records";
  EXPECT_EQ(count.size(), produced.size());

  // Each worker saw each partition's records in offset order, and only while it owned it.
  for (const auto& l : logs) {
    std::map<int, int64_t> last;
    for (const auto& [p, off] : l.consumed) {
      if (last.count(p)) {
        EXPECT_GT(off, last[p]) << "partition " << p << " out of order";
      }
      last[p] = off;
    }
    for (const auto& [p, by_interval] : l.consumed_in) {
      EXPECT_FALSE(by_interval.count(-1)) << "partition " << p << " consumed while not owned";
    }
  }
}

TEST_F(GroupConsumerE2ETest, KillNineRedeliversFromTheLastCommit) {
  constexpr int kSessionMs = 1500;
  std::vector<int64_t> changes;
  StartProducer();
  changes.push_back(MonoNs());
  StartWorker("sync", kSessionMs);
  StartWorker("sync", kSessionMs);
  StartWorker("sync", kSessionMs);
  WaitAllOwned("by three workers");
  WaitConsumedMore(3000);

  // The victim must own something.
  const auto before = Logs();
  std::set<int> victim_parts;
  for (const auto& [p, ivs] : before[1].intervals) {
    if (!ivs.empty() && ivs.back().end == INT64_MAX) victim_parts.insert(p);
  }
  ASSERT_FALSE(victim_parts.empty());
  changes.push_back(MonoNs());
  KillWorker(1);
  const int64_t killed_at = deaths_[1];
  WaitAllOwned("after the kill");
  WaitConsumedMore(2000);

  StopProducer();
  WaitEverythingConsumed();
  CloseWorker(0);
  CloseWorker(2);

  const auto logs = Logs();
  EXPECT_EQ(send_failures_, 0);
  CheckNoDoubleOwnership(logs);
  CheckReowned(logs, changes, int64_t{kSessionMs} * 1000000);

  // At least once: every produced record consumed.
  std::set<std::pair<int, int64_t>> seen;
  for (const auto& l : logs) seen.insert(l.consumed.begin(), l.consumed.end());
  for (const auto& r : Produced()) {
    ASSERT_TRUE(seen.count(r)) << "record " << r.first << "@" << r.second << " never consumed";
  }

  // The new owner of each of the victim's partitions starts at the victim's last commit: the
  // last acknowledged one (C), or one sent but not yet logged as done (P) when the kill came
  // between the commit and its log line. Nothing before it is delivered again.
  const WorkerLog& victim = logs[1];
  for (int p : victim_parts) {
    ASSERT_TRUE(victim.last_commit.count(p) || victim.pending_after_commit.count(p))
        << "victim never committed partition " << p;
    std::set<int64_t> allowed;
    if (victim.last_commit.count(p)) allowed.insert(victim.last_commit.at(p));
    if (victim.pending_after_commit.count(p)) allowed.insert(victim.pending_after_commit.at(p));
    // The first ownership interval of p that started after the kill and consumed something.
    int64_t best_start = INT64_MAX;
    int64_t first = -1;
    for (int w : {0, 2}) {
      if (!logs[w].consumed_in.count(p)) continue;
      for (const auto& [start, offsets] : logs[w].consumed_in.at(p)) {
        if (start >= killed_at && start < best_start && !offsets.empty()) {
          best_start = start;
          first = offsets.front();
        }
      }
    }
    ASSERT_GE(first, 0) << "nothing of partition " << p << " consumed after the kill";
    EXPECT_TRUE(allowed.count(first)) << "partition " << p << ": the new owner resumed at " << first
                                      << ", the victim's last commit was " << *allowed.begin()
                                      << " (pending " << *allowed.rbegin() << ")";
  }
}

// In-process consumers: a regex subscription gets every partition; Close() commits, so the next
// member of the group resumes exactly after what the first one consumed.
TEST_F(GroupConsumerE2ETest, PatternSubscriptionResumesAfterCloseAtTheCommit) {
  client::ProducerConfig pc;
  pc.bootstrap = bootstrap_;
  auto producer = client::Producer::Create(pc);
  ASSERT_TRUE(producer.ok());
  auto produce = [&](int n) {
    std::set<std::pair<int, int64_t>> out;
    std::vector<std::future<Result<client::RecordMetadata>>> acks;
    for (int i = 0; i < n; ++i) {
      client::ProducerRecord r;
      r.topic = kTopic;
      r.partition = i % kPartitions;
      r.value = "v" + std::to_string(i);
      acks.push_back((*producer)->Send(r));
    }
    for (auto& f : acks) {
      auto md = f.get();
      EXPECT_TRUE(md.ok()) << md.status().ToString();
      if (md.ok()) out.insert({md->partition, md->offset});
    }
    return out;
  };
  auto consume_all = [&](client::Consumer& c, const std::set<std::pair<int, int64_t>>& want) {
    std::set<std::pair<int, int64_t>> got;
    size_t records = 0;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline && got.size() < want.size()) {
      auto r = c.Poll(100ms);
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      for (const auto& rec : *r) {
        got.insert({rec.partition, rec.offset});
        ++records;
      }
    }
    EXPECT_EQ(got, want);
    EXPECT_EQ(records, want.size()) << "duplicates";
  };

  client::ConsumerConfig cc;
  cc.bootstrap = bootstrap_;
  cc.group_id = "pattern-group";
  cc.auto_offset_reset = client::OffsetReset::kEarliest;
  cc.fetch_max_wait_ms = 50;
  const auto first = produce(240);
  {
    auto c = client::Consumer::Create(cc);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->SubscribePattern("ev.*").ok());
    consume_all(**c, first);
    EXPECT_EQ((*c)->Assignment().size(), size_t{kPartitions});
    EXPECT_TRUE((*c)->Close().ok());  // commits the positions, leaves
  }
  const auto second = produce(120);
  auto c = client::Consumer::Create(cc);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->SubscribePattern("ev.*").ok());
  consume_all(**c, second);  // only the new records: the first member's Close committed
  std::vector<client::TopicPartition> all;
  for (int p = 0; p < kPartitions; ++p) all.push_back({kTopic, p});
  ASSERT_TRUE((*c)->Commit().ok());
  auto committed = (*c)->Committed(all);
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  for (int p = 0; p < kPartitions; ++p) EXPECT_EQ(committed->at({kTopic, p}), 30) << p;
}

// A static member (group_instance_id) leaves with epoch -2 at Close; its restart with the same
// instance id gets the same partitions back and resumes at its commit.
TEST_F(GroupConsumerE2ETest, StaticMemberRestartGetsItsPartitionsBack) {
  client::ProducerConfig pc;
  pc.bootstrap = bootstrap_;
  auto producer = client::Producer::Create(pc);
  ASSERT_TRUE(producer.ok());
  for (int i = 0; i < 24; ++i) {
    client::ProducerRecord r;
    r.topic = kTopic;
    r.partition = i % kPartitions;
    r.value = "v";
    ASSERT_TRUE((*producer)->Send(r).get().ok());
  }
  client::ConsumerConfig cc;
  cc.bootstrap = bootstrap_;
  cc.group_id = "static-group";
  cc.group_instance_id = "instance-1";
  cc.session_timeout_ms = 30000;
  cc.auto_offset_reset = client::OffsetReset::kEarliest;
  cc.fetch_max_wait_ms = 50;
  auto poll_n = [&](client::Consumer& c, size_t n) {
    size_t got = 0;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (got < n && std::chrono::steady_clock::now() < deadline) {
      auto r = c.Poll(50ms);
      EXPECT_TRUE(r.ok()) << r.status().ToString();
      if (r.ok()) got += r->size();
    }
    return got;
  };
  {
    auto c = client::Consumer::Create(cc);
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*c)->Subscribe({kTopic}).ok());
    EXPECT_EQ(poll_n(**c, 24), 24u);
    EXPECT_TRUE((*c)->Close().ok());
  }
  for (int i = 0; i < 12; ++i) {
    client::ProducerRecord r;
    r.topic = kTopic;
    r.partition = i % kPartitions;
    r.value = "w";
    ASSERT_TRUE((*producer)->Send(r).get().ok());
  }
  auto c = client::Consumer::Create(cc);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE((*c)->Subscribe({kTopic}).ok());
  EXPECT_EQ(poll_n(**c, 12), 12u) << "resumes at the commit, nothing re-delivered";
  EXPECT_EQ((*c)->Assignment().size(), size_t{kPartitions});
  auto more = (*c)->Poll(200ms);  // nothing beyond the 12 new records
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(more->empty());
}

}  // namespace
}  // namespace rill::testing
