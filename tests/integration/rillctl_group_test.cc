// rillctl group list|describe|reset-offsets|delete and the Admin group calls against a real
// rill-broker process: the committed, log-end and lag figures are the real ones, every reset mode
// moves offsets where it says with --execute (and only previews without it), a reset or delete is
// refused while a member is active, and unknown groups fail with exit code 3.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <future>
#include <map>
#include <sstream>

#include "broker_process.h"
#include "process.h"
#include "rill/client/admin.h"
#include "rill/client/producer.h"
#include "rill/v1/groups.grpc.pb.h"

namespace rill::client {
namespace {

using namespace std::chrono_literals;
using rill::testing::BrokerProcess;
using rill::testing::Process;
using rill::testing::ReadFile;

constexpr int64_t kBaseTimestamp = 1'700'000'000'000;

class RillctlGroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (std::filesystem::temp_directory_path() /
            ("rill_rillctl_group_" + std::to_string(::getpid()) + "_" + info->name()))
               .string();
    std::filesystem::remove_all(dir_);
    broker_ = std::make_unique<BrokerProcess>(dir_);
    broker_->Start({"--groups.offsets_partitions", "2"});
    bootstrap_ = "127.0.0.1:" + std::to_string(broker_->client_port());
    AdminConfig ac;
    ac.bootstrap = bootstrap_;
    auto a = Admin::Create(ac);
    ASSERT_TRUE(a.ok());
    admin_ = std::move(a).value();
    groups_ =
        v1::Groups::NewStub(grpc::CreateChannel(bootstrap_, grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (::testing::Test::HasFailure() && broker_) {
      std::cerr << "---- broker log ----\n" << broker_->log() << "--------------------\n";
    }
    admin_.reset();
    broker_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Topic "t" with 3 partitions holding 50, 30 and 20 records; record i of a partition has
  // timestamp kBaseTimestamp + i * 1000; each partition's records are one batch (sent at Flush).
  void CreateTopicWithRecords() {
    auto r = admin_->CreateTopics({NewTopic{.name = "t", .partitions = 3, .configs = {}}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(Admin::FirstError(*r).ok()) << Admin::FirstError(*r).ToString();
    ProducerConfig pc;
    pc.bootstrap = bootstrap_;
    pc.max_in_flight = 1;
    pc.linger_ms = 60'000;  // Flush sends
    auto producer = Producer::Create(pc);
    ASSERT_TRUE(producer.ok());
    std::vector<std::future<Result<RecordMetadata>>> acks;
    const int counts[] = {50, 30, 20};
    for (int32_t p = 0; p < 3; ++p) {
      for (int i = 0; i < counts[p]; ++i) {
        // No flush before record 30: --to-timestamp must find it inside its batch.
        ProducerRecord rec;
        rec.topic = "t";
        rec.partition = p;
        rec.value = "v" + std::to_string(i);
        rec.timestamp_ms = kBaseTimestamp + i * 1000;
        acks.push_back((*producer)->Send(rec));
      }
    }
    (*producer)->Flush();
    for (auto& f : acks) {
      auto md = f.get();
      ASSERT_TRUE(md.ok()) << md.status().ToString();
    }
  }

  void Commit(const std::string& group, std::vector<std::pair<int32_t, int64_t>> offsets) {
    std::vector<GroupOffset> in;
    for (auto [p, o] : offsets)
      in.push_back({.topic = "t", .partition = p, .offset = o, .metadata = "", .status = {}});
    auto r = admin_->CommitOffsets(group, in);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    for (const auto& o : *r) ASSERT_TRUE(o.status.ok()) << o.status.ToString();
  }

  std::map<int32_t, int64_t> Committed(const std::string& group) {
    std::map<int32_t, int64_t> out;
    auto r = admin_->FetchOffsets(group);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok()) {
      for (const auto& o : *r) out[o.partition] = o.offset;
    }
    return out;
  }

  // Runs rillctl with args; returns {exit code, stdout+stderr}.
  std::pair<int, std::string> Rillctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {RILLCTL_BINARY, "--bootstrap", bootstrap_};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string log = dir_ + "/rillctl-" + std::to_string(runs_++) + ".out";
    auto p = Process::Spawn(argv, log);
    EXPECT_NE(p, nullptr);
    if (!p) return {-1, ""};
    auto code = p->Wait(60s);
    EXPECT_TRUE(code.has_value()) << "rillctl did not finish";
    return {code.value_or(-1), ReadFile(log)};
  }

  // The whitespace-separated cells of the output line whose first cells are `prefix`.
  static std::vector<std::string> Row(const std::string& out,
                                      const std::vector<std::string>& prefix) {
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream cells(line);
      std::vector<std::string> row;
      for (std::string c; cells >> c;) row.push_back(c);
      if (row.size() >= prefix.size() && std::equal(prefix.begin(), prefix.end(), row.begin())) {
        return row;
      }
    }
    return {};
  }

  // Joins `group` as a member subscribed to "t" through the raw Groups stub, heartbeating until
  // it owns every partition; returns {member id, epoch}.
  std::pair<std::string, int32_t> JoinMember(const std::string& group) {
    std::string id;
    int32_t epoch = 0;
    std::vector<int32_t> owned;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      v1::GroupHeartbeatRequest req;
      req.set_group_id(group);
      req.set_member_id(id);
      req.set_member_epoch(epoch);
      req.set_client_id("test-consumer");
      req.set_client_host("10.1.2.3");
      req.set_session_timeout_ms(60000);
      req.add_subscribed_topic_names("t");
      auto* tp = req.add_owned_partitions();
      tp->set_topic("t");
      for (int32_t p : owned) tp->add_partitions(p);
      grpc::ClientContext ctx;
      v1::GroupHeartbeatResponse resp;
      EXPECT_TRUE(groups_->GroupHeartbeat(&ctx, req, &resp).ok());
      if (resp.error() == v1::NONE) {
        id = resp.member_id();
        epoch = resp.member_epoch();
        if (resp.has_assignment()) {
          owned.clear();
          for (const auto& a : resp.assignment()) {
            owned.insert(owned.end(), a.partitions().begin(), a.partitions().end());
          }
        }
        if (owned.size() == 3) break;
      } else {
        EXPECT_TRUE(resp.error() == v1::COORDINATOR_NOT_AVAILABLE ||
                    resp.error() == v1::NOT_COORDINATOR)
            << resp.error_message();
      }
    }
    EXPECT_EQ(owned.size(), 3u);
    return {id, epoch};
  }

  void LeaveMember(const std::string& group, const std::string& id) {
    v1::GroupHeartbeatRequest req;
    req.set_group_id(group);
    req.set_member_id(id);
    req.set_member_epoch(-1);
    grpc::ClientContext ctx;
    v1::GroupHeartbeatResponse resp;
    ASSERT_TRUE(groups_->GroupHeartbeat(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.error(), v1::NONE) << resp.error_message();
  }

  std::string dir_;
  std::string bootstrap_;
  std::unique_ptr<BrokerProcess> broker_;
  std::unique_ptr<Admin> admin_;
  std::unique_ptr<v1::Groups::Stub> groups_;
  int runs_ = 0;
};

TEST_F(RillctlGroupTest, ListAndDescribeShowCommittedLogEndAndLag) {
  CreateTopicWithRecords();
  Commit("app", {{0, 10}, {1, 30}});

  // Admin API.
  auto d = admin_->DescribeGroup("app");
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->group_id, "app");
  EXPECT_EQ(d->state, "Empty");
  EXPECT_TRUE(d->members.empty());
  ASSERT_EQ(d->partitions.size(), 2u);
  EXPECT_EQ(d->partitions[0].partition, 0);
  EXPECT_EQ(d->partitions[0].committed_offset, 10);
  EXPECT_EQ(d->partitions[0].log_end_offset, 50);
  EXPECT_EQ(d->partitions[0].lag, 40);
  EXPECT_EQ(d->partitions[1].partition, 1);
  EXPECT_EQ(d->partitions[1].lag, 0);
  EXPECT_EQ(d->total_lag, 40);

  auto [rc, out] = Rillctl({"group", "list"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(Row(out, {"app"}), (std::vector<std::string>{"app", "Empty", "0"})) << out;
  std::tie(rc, out) = Rillctl({"--json", "group", "list"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(R"({"group_id":"app","state":"Empty","members":0})"), std::string::npos)
      << out;

  std::tie(rc, out) = Rillctl({"group", "describe", "app"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("Group: app  state: Empty"), std::string::npos) << out;
  EXPECT_EQ(Row(out, {"TOPIC"}), (std::vector<std::string>{"TOPIC", "PARTITION", "COMMITTED",
                                                           "LOG-END", "LAG", "OWNER"}))
      << out;
  EXPECT_EQ(Row(out, {"t", "0"}), (std::vector<std::string>{"t", "0", "10", "50", "40", "-"}))
      << out;
  EXPECT_EQ(Row(out, {"t", "1"}), (std::vector<std::string>{"t", "1", "30", "30", "0", "-"}))
      << out;
  EXPECT_TRUE(Row(out, {"t", "2"}).empty()) << "uncommitted, unowned partition listed:\n" << out;
  EXPECT_EQ(Row(out, {"Total", "lag:"}), (std::vector<std::string>{"Total", "lag:", "40"})) << out;

  std::tie(rc, out) = Rillctl({"--json", "group", "describe", "app"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(R"("group_id":"app","state":"Empty")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"({"topic":"t","partition":0,"committed_offset":10,"log_end_offset":50,)"
                     R"("lag":40,"owner":null})"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(R"({"topic":"t","partition":1,"committed_offset":30,"log_end_offset":30,)"
                     R"("lag":0,"owner":null})"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(R"("total_lag":40})"), std::string::npos) << out;
}

TEST_F(RillctlGroupTest, ResetOffsetsEveryModeAndDryRun) {
  CreateTopicWithRecords();
  Commit("app", {{0, 10}});

  // Dry run shows the new offset and commits nothing.
  auto [rc, out] =
      Rillctl({"group", "reset-offsets", "app", "--topic", "t:0", "--to-latest", "--dry-run"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(Row(out, {"t", "0"}), (std::vector<std::string>{"t", "0", "10", "50"})) << out;
  EXPECT_NE(out.find("dry run"), std::string::npos) << out;
  EXPECT_EQ(Committed("app")[0], 10);
  std::tie(rc, out) = Rillctl(
      {"--json", "group", "reset-offsets", "app", "--topic", "t:0", "--to-earliest", "--dry-run"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(R"("dry_run":true,"partitions":[{"topic":"t","partition":0,)"
                     R"("previous_offset":10,"new_offset":0}])"),
            std::string::npos)
      << out;
  EXPECT_EQ(Committed("app")[0], 10);
  // Without --execute it is a preview too (Kafka's convention), and says how to commit.
  std::tie(rc, out) = Rillctl({"group", "reset-offsets", "app", "--topic", "t:0", "--to-latest"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(Row(out, {"t", "0"}), (std::vector<std::string>{"t", "0", "10", "50"})) << out;
  EXPECT_NE(out.find("nothing committed; add --execute"), std::string::npos) << out;
  EXPECT_EQ(Committed("app")[0], 10);
  std::tie(rc, out) = Rillctl(
      {"group", "reset-offsets", "app", "--topic", "t:0", "--to-latest", "--dry-run", "--execute"});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_EQ(Committed("app")[0], 10);

  struct Case {
    std::vector<std::string> mode;
    int64_t want;
  };
  const Case cases[] = {
      {{"--to-earliest"}, 0},
      {{"--to-latest"}, 50},
      {{"--to-offset", "25"}, 25},
      {{"--shift-by", "-5"}, 20},
      {{"--shift-by", "7"}, 27},
      {{"--to-offset", "1000"}, 50},  // clamped to the log end
      {{"--shift-by", "-100"}, 0},    // clamped to the log start
      {{"--to-timestamp", std::to_string(kBaseTimestamp + 30 * 1000)}, 30},
      {{"--to-timestamp", std::to_string(kBaseTimestamp + 30 * 1000 - 1)}, 30},
      {{"--to-timestamp", std::to_string(kBaseTimestamp + 999 * 1000)}, 50},  // none later: end
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"group",   "reset-offsets", "app",
                                     "--topic", "t:0",           "--execute"};
    args.insert(args.end(), c.mode.begin(), c.mode.end());
    std::tie(rc, out) = Rillctl(args);
    EXPECT_EQ(rc, 0) << c.mode[0] << ": " << out;
    EXPECT_EQ(Row(out, {"t", "0"}).back(), std::to_string(c.want)) << c.mode[0] << ": " << out;
    EXPECT_EQ(Committed("app")[0], c.want) << c.mode[0];
  }

  // A whole topic: every partition, each clamped to its own log.
  std::tie(rc, out) =
      Rillctl({"group", "reset-offsets", "app", "--topic", "t", "--to-offset", "25", "--execute"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(Committed("app"), (std::map<int32_t, int64_t>{{0, 25}, {1, 25}, {2, 20}}));
  // Several partitions in one argument, through the Admin API too.
  std::tie(rc, out) = Rillctl(
      {"group", "reset-offsets", "app", "--topic", "t:1,2", "--shift-by", "-3", "--execute"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(Committed("app"), (std::map<int32_t, int64_t>{{0, 25}, {1, 22}, {2, 17}}));
  GroupOffsetReset reset{.to = GroupOffsetReset::To::kLatest,
                         .value = 0,
                         .topics = {},
                         .partitions = {{"t", 1}},
                         .dry_run = false};
  auto r = admin_->ResetOffsets("app", reset);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].offset, 30);
  EXPECT_EQ(Committed("app")[1], 30);

  // No --topic: every committed partition.
  std::tie(rc, out) = Rillctl({"group", "reset-offsets", "app", "--to-earliest", "--execute"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(Committed("app"), (std::map<int32_t, int64_t>{{0, 0}, {1, 0}, {2, 0}}));

  // Usage errors: no mode, two modes, a bad partition list.
  std::tie(rc, out) = Rillctl({"group", "reset-offsets", "app", "--topic", "t"});
  EXPECT_EQ(rc, 2) << out;
  std::tie(rc, out) =
      Rillctl({"group", "reset-offsets", "app", "--topic", "t", "--to-earliest", "--to-latest"});
  EXPECT_EQ(rc, 2) << out;
  std::tie(rc, out) = Rillctl({"group", "reset-offsets", "app", "--topic", "t:x", "--to-latest"});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("bad partition 'x'"), std::string::npos) << out;
  // An unknown topic is "not found"; an unknown partition fails that partition.
  std::tie(rc, out) =
      Rillctl({"group", "reset-offsets", "app", "--topic", "nope", "--to-latest", "--execute"});
  EXPECT_EQ(rc, 3) << out;
  EXPECT_NE(out.find("UNKNOWN_TOPIC"), std::string::npos) << out;
  std::tie(rc, out) =
      Rillctl({"group", "reset-offsets", "app", "--topic", "t:7", "--to-latest", "--execute"});
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("UNKNOWN_PARTITION"), std::string::npos) << out;
}

TEST_F(RillctlGroupTest, ResetAndDeleteAreRefusedWhileAMemberIsActive) {
  CreateTopicWithRecords();
  Commit("app", {{0, 10}, {1, 5}, {2, 20}});
  auto [member, epoch] = JoinMember("app");
  ASSERT_FALSE(member.empty());

  auto [rc, out] = Rillctl({"group", "describe", "app"});
  EXPECT_EQ(rc, 0) << out;
  const auto mrow = Row(out, {member});
  ASSERT_EQ(mrow.size(), 7u) << out;
  EXPECT_EQ(mrow[1], "-");  // no instance id
  EXPECT_EQ(mrow[2], "test-consumer");
  EXPECT_EQ(mrow[3], "10.1.2.3");
  EXPECT_EQ(mrow[4], std::to_string(epoch));
  EXPECT_EQ(mrow[5], "t:0,1,2");
  EXPECT_EQ(Row(out, {"t", "1"}), (std::vector<std::string>{"t", "1", "5", "30", "25", member}))
      << out;
  EXPECT_EQ(Row(out, {"Total", "lag:"}).back(), "65") << out;
  std::tie(rc, out) = Rillctl({"--json", "group", "describe", "app"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(R"("client_id":"test-consumer","host":"10.1.2.3")"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("assignment":[{"topic":"t","partitions":[0,1,2]}])"), std::string::npos)
      << out;
  EXPECT_NE(out.find(R"("lag":25,"owner":")" + member + "\"}"), std::string::npos) << out;

  for (bool dry_run : {false, true}) {
    std::vector<std::string> args = {"group", "reset-offsets", "app", "--topic",
                                     "t",     "--to-earliest"};
    args.push_back(dry_run ? "--dry-run" : "--execute");
    std::tie(rc, out) = Rillctl(args);
    EXPECT_EQ(rc, 1) << out;
    EXPECT_NE(out.find("GROUP_NOT_EMPTY"), std::string::npos) << out;
    EXPECT_NE(out.find("no active members"), std::string::npos) << out;
  }
  EXPECT_EQ(Committed("app"), (std::map<int32_t, int64_t>{{0, 10}, {1, 5}, {2, 20}}));
  std::tie(rc, out) = Rillctl({"group", "delete", "app"});
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("GROUP_NOT_EMPTY"), std::string::npos) << out;
  auto st = admin_->DeleteGroup("app");
  EXPECT_EQ(st.code(), StatusCode::kFailed) << st.ToString();

  // Once the member has left, the same reset goes through.
  LeaveMember("app", member);
  std::tie(rc, out) =
      Rillctl({"group", "reset-offsets", "app", "--topic", "t", "--to-earliest", "--execute"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(Committed("app"), (std::map<int32_t, int64_t>{{0, 0}, {1, 0}, {2, 0}}));
}

TEST_F(RillctlGroupTest, DeleteAndUnknownGroups) {
  CreateTopicWithRecords();
  Commit("app", {{0, 10}});
  Commit("other", {{1, 3}});

  auto [rc, out] = Rillctl({"group", "delete", "app"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("deleted group 'app'"), std::string::npos) << out;
  std::tie(rc, out) = Rillctl({"group", "list"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(Row(out, {"app"}).empty()) << out;
  EXPECT_FALSE(Row(out, {"other"}).empty()) << out;
  std::tie(rc, out) = Rillctl({"--json", "group", "delete", "other"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(R"({"group_id":"other","ok":true})"), std::string::npos) << out;

  // Unknown (and deleted) groups: exit code 3 with the broker's error.
  for (const std::string group : {"app", "never-existed"}) {
    std::tie(rc, out) = Rillctl({"group", "describe", group});
    EXPECT_EQ(rc, 3) << out;
    EXPECT_NE(out.find("rillctl: error: GROUP_ID_NOT_FOUND"), std::string::npos) << out;
    EXPECT_NE(out.find(group), std::string::npos) << out;
    std::tie(rc, out) = Rillctl({"--json", "group", "describe", group});
    EXPECT_EQ(rc, 3) << out;
    std::tie(rc, out) = Rillctl({"group", "delete", group});
    EXPECT_EQ(rc, 3) << out;
    EXPECT_NE(out.find("GROUP_ID_NOT_FOUND"), std::string::npos) << out;
  }
  auto d = admin_->DescribeGroup("never-existed");
  EXPECT_TRUE(d.status().IsNotFound()) << d.status().ToString();
  std::tie(rc, out) = Rillctl({"group", "list"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(Row(out, {"GROUP"}).size(), 3u) << out;
  EXPECT_EQ(out.find("app"), std::string::npos) << out;

  // reset-offsets refuses an unknown group (a mistyped name) unless --create is given.
  std::tie(rc, out) = Rillctl(
      {"group", "reset-offsets", "never-existed", "--topic", "t", "--to-earliest", "--execute"});
  EXPECT_EQ(rc, 3) << out;
  EXPECT_NE(out.find("group 'never-existed' does not exist"), std::string::npos) << out;
  EXPECT_NE(out.find("--create"), std::string::npos) << out;
  EXPECT_TRUE(admin_->DescribeGroup("never-existed").status().IsNotFound());
  std::tie(rc, out) = Rillctl({"group", "reset-offsets", "never-existed", "--topic", "t:1",
                               "--to-latest", "--create", "--execute"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(Committed("never-existed"), (std::map<int32_t, int64_t>{{1, 30}}));

  // A broker that is not there: exit code 4.
  broker_->Stop();
  std::tie(rc, out) = Rillctl({"--timeout-ms", "2000", "group", "list"});
  EXPECT_EQ(rc, 4) << out;
}

}  // namespace
}  // namespace rill::client
