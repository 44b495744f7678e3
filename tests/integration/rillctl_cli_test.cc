// rillctl as users type it, through the real binary against a real broker: strict parsing of
// numbers, offsets, times, addresses and commands (exit code 2 and a message naming the bad
// value); RILL_BOOTSTRAP and several bootstrap addresses; internal topics refused for deletion;
// --version; and SIGINT during a produce from a pipe losing nothing it reported delivered.

#include <fcntl.h>
#include <gtest/gtest.h>

#include <mutex>

#include <condition_variable>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "broker_process.h"
#include "process.h"
#include "rill/client/admin.h"
#include "rill/proto/record_batch.h"
#include "support/poll.h"

namespace rill::testing {
namespace {

using namespace std::chrono_literals;

class RillctlCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (std::filesystem::temp_directory_path() /
            ("rill_cli_" + std::to_string(::getpid()) + "_" + info->name()))
               .string();
    std::filesystem::remove_all(dir_);
    broker_ = std::make_unique<BrokerProcess>(dir_);
    broker_->Start();
    bootstrap_ = "127.0.0.1:" + std::to_string(broker_->client_port());
  }
  void TearDown() override {
    if ((::testing::Test::HasFailure() || getenv("RILL_IT_SHOW_LOG")) && broker_) {
      std::cerr << "---- broker log ----\n" << broker_->log() << "--------------------\n";
    }
    broker_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Runs rillctl with exactly `args` (no --bootstrap added) and RILL_BOOTSTRAP unset unless `env`
  // sets it; returns {exit code, stdout+stderr}.
  std::pair<int, std::string> Run(const std::vector<std::string>& args,
                                  std::vector<std::string> env = {}) {
    std::vector<std::string> argv = {RILLCTL_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string log = dir_ + "/rillctl-" + std::to_string(runs_++) + ".out";
    bool sets_bootstrap = false;
    for (const auto& e : env) sets_bootstrap = sets_bootstrap || e.rfind("RILL_BOOTSTRAP", 0) == 0;
    if (!sets_bootstrap) env.push_back("RILL_BOOTSTRAP");
    auto p = Process::Spawn(argv, log, {.env = env, .stdin_fd = -1});
    EXPECT_NE(p, nullptr);
    if (!p) return {-1, ""};
    auto code = p->Wait(60s);
    EXPECT_TRUE(code.has_value()) << "rillctl did not finish";
    return {code.value_or(-1), ReadFile(log)};
  }
  // Runs rillctl against the broker (--bootstrap first).
  std::pair<int, std::string> Rillctl(std::vector<std::string> args) {
    args.insert(args.begin(), {"--bootstrap", bootstrap_});
    return Run(args);
  }

  // A usage error: exit code 2 and every one of `names` in the message.
  void ExpectUsageError(const std::vector<std::string>& args,
                        const std::vector<std::string>& names) {
    std::string cmd;
    for (const auto& a : args) cmd += " " + a;
    SCOPED_TRACE("rillctl" + cmd);
    auto [rc, out] = Rillctl(args);
    EXPECT_EQ(rc, 2) << out;
    for (const auto& n : names) EXPECT_NE(out.find(n), std::string::npos) << n << " in: " << out;
  }

  std::string dir_;
  std::string bootstrap_;
  std::unique_ptr<BrokerProcess> broker_;
  int runs_ = 0;
};

TEST_F(RillctlCliTest, BadNumbersOffsetsTimesAndAddressesAreUsageErrorsNamingTheValue) {
  auto [rc, out] = Rillctl({"topic", "create", "t", "--partitions", "1"});
  ASSERT_EQ(rc, 0) << out;
  ExpectUsageError({"consume", "t", "--from", "offset:5abc"}, {"5abc"});
  ExpectUsageError({"consume", "t", "--from", "offset:-3"}, {"-3"});
  ExpectUsageError({"consume", "t", "--from", "timestamp:yesterday"}, {"yesterday"});
  ExpectUsageError({"consume", "t", "--from", "timestamp:2026-13-05T00:00:00Z"},
                   {"2026-13-05T00:00:00Z"});
  ExpectUsageError({"consume", "t", "--from", "timestamp:2026-12-05T00:00:00"},
                   {"2026-12-05T00:00:00", "zone"});
  ExpectUsageError({"consume", "t", "--from", "latests"}, {"latests"});
  ExpectUsageError({"consume", "t", "--count", "5abc"}, {"5abc"});
  ExpectUsageError({"consume", "t", "--count", "-5"}, {"-5"});
  ExpectUsageError({"consume", "t", "--format", "xml"}, {"xml"});
  ExpectUsageError({"produce", "t", "--acks", "2"}, {"--acks", "'2'"});
  ExpectUsageError({"produce", "t", "--compression", "brotli"}, {"brotli"});
  ExpectUsageError({"topic", "create", "u", "--partitions", "3x"}, {"3x"});
  ExpectUsageError({"topic", "add-partitions", "t", "--total", "0"}, {"0"});
  ExpectUsageError({"--timeout-ms", "10s", "topic", "list"}, {"10s"});
  ExpectUsageError({"group", "reset-offsets", "g", "--topic", "t", "--to-timestamp", "noon"},
                   {"noon"});
  // An address without a port is refused rather than dialled at port 0.
  std::tie(rc, out) = Run({"-b", "127.0.0.1", "topic", "list"});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("'127.0.0.1'"), std::string::npos) << out;
  EXPECT_NE(out.find("host:port"), std::string::npos) << out;
  std::tie(rc, out) = Run({"-b", bootstrap_ + ",", "topic", "list"});
  EXPECT_EQ(rc, 2) << out;
  // Nothing was created or produced by the refused commands.
  std::tie(rc, out) = Rillctl({"topic", "list"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out.find("\nu "), std::string::npos) << out;
  std::tie(rc, out) = Rillctl({"--json", "topic", "describe", "t"});
  EXPECT_NE(out.find("\"high_watermark\":0"), std::string::npos) << out;
  // One broker: the ISR is the whole replica set, so nothing is under-replicated.
  EXPECT_TRUE(std::regex_search(out, std::regex(R"("leader":(\d+),"leader_epoch":\d+,)"
                                                R"("replicas":\[\1\],"isr":\[\1\],)")))
      << out;
  EXPECT_NE(out.find("\"under_replicated\":false"), std::string::npos) << out;
  EXPECT_EQ(out.find("\"under_replicated\":true"), std::string::npos) << out;
  std::tie(rc, out) = Rillctl({"topic", "describe", "t"});
  EXPECT_EQ(rc, 0) << out;
  // PARTITION LEADER EPOCH REPLICAS ISR START HIGH_WATERMARK END SIZE UNDER_REPLICATED
  EXPECT_TRUE(std::regex_search(
      out, std::regex(R"(PARTITION +LEADER +EPOCH +REPLICAS +ISR +START +HIGH_WATERMARK +END +)"
                      R"(SIZE +UNDER_REPLICATED)")))
      << out;
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(\n0 +(\d+) +\d+ +\1 +\1 +0 +0 +0 +\d+ +no)")))
      << out;
  EXPECT_EQ(out.find("under-replicated:"), std::string::npos) << out;
}

TEST_F(RillctlCliTest, MistypedCommandsAreNamedWithTheValidOnes) {
  ExpectUsageError({"topc", "list"},
                   {"unknown command 'topc'", "topic", "cluster", "group", "produce", "consume"});
  ExpectUsageError({"topic", "lst"}, {"unknown command 'lst' for 'rillctl topic'", "create", "list",
                                      "describe", "delete"});
  ExpectUsageError({"group", "describ", "g"}, {"'describ'", "describe", "reset-offsets"});
  ExpectUsageError({}, {"needs a command", "topic", "produce"});
  ExpectUsageError({"topic"}, {"'rillctl topic' needs a command", "create"});
  // Options and arguments of a known command still get CLI11's own message.
  ExpectUsageError({"topic", "describe", "t", "--no-such-option"}, {"--no-such-option"});
}

TEST_F(RillctlCliTest, TimestampsAreIso8601OrMilliseconds) {
  auto [rc, out] = Rillctl({"topic", "create", "times", "--partitions", "1"});
  ASSERT_EQ(rc, 0) << out;
  const std::string input = dir_ + "/lines.txt";
  {
    std::ofstream f(input);
    for (int i = 0; i < 10; ++i) f << "v" << i << "\n";
  }
  std::tie(rc, out) = Rillctl({"produce", "times", "--file", input});
  ASSERT_EQ(rc, 0) << out;
  // Every record is older than 2099: nothing is read from there (before strict parsing,
  // "timestamp:2099-..." was read as 2099 ms and replayed the whole log).
  std::tie(rc, out) = Rillctl(
      {"consume", "times", "--from", "timestamp:2099-01-01T00:00:00Z", "--idle-timeout", "1000"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << out;
  std::tie(rc, out) = Rillctl(
      {"consume", "times", "--from", "timestamp:2000-01-01T01:00:00.000+01:00", "--count", "10"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out.substr(0, 6), "v0\nv1\n") << out;
  std::tie(rc, out) = Rillctl({"consume", "times", "--from", "timestamp:0", "--count", "1"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "v0\n");
  std::tie(rc, out) = Rillctl({"consume", "times", "--from", "offset:9", "--count", "1"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "v9\n");
}

// consume as kcat users expect: -o earliest|latest|N|-N|@TIME, -e (stop at the end of the log),
// -f templates, -g GROUP (a member that commits what it read).
TEST_F(RillctlCliTest, ConsumeOffsetsUntilEndTemplatesAndGroups) {
  auto [rc, out] = Rillctl({"topic", "create", "c", "--partitions", "1"});
  ASSERT_EQ(rc, 0) << out;
  // -e on an empty topic ends at once.
  std::tie(rc, out) = Rillctl({"consume", "c", "-e"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "");
  const std::string input = dir_ + "/keyed.txt";
  {
    std::ofstream f(input);
    for (int i = 0; i < 10; ++i) f << "k" << i << ":v" << i << "\n";
  }
  std::tie(rc, out) = Rillctl({"produce", "c", "-k", ":", "-H", "h=1", "--file", input});
  ASSERT_EQ(rc, 0) << out;
  const auto values = [](int from, int to) {
    std::string s;
    for (int i = from; i < to; ++i) s += "v" + std::to_string(i) + "\n";
    return s;
  };
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{"-e"}, values(0, 10)},
      {{"-o", "-3", "-e"}, values(7, 10)},    // 3 back from the end
      {{"-o", "-100", "-e"}, values(0, 10)},  // not before the log start
      {{"-o", "5", "-e", "-n", "2"}, values(5, 7)},
      {{"--offset", "latest", "-e"}, ""},
      {{"-o", "@-1h", "-e"}, values(0, 10)},  // relative: every record is newer
      {{"-o", "@2099-01-01T00:00:00Z", "-e"}, ""},
      {{"-o", "0", "-n", "1", "-f", R"(%t/%p@%o %k=%v [%h] %K %S%%\n)"},
       "c/0@0 k0=v0 [h=1] 2 2%\n"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"consume", "c"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    std::tie(rc, out) = Rillctl(args);
    EXPECT_EQ(rc, 0) << c.args[0] << " " << c.args[1] << ": " << out;
    EXPECT_EQ(out, c.want) << c.args[0] << " " << c.args[1];
  }
  ExpectUsageError({"consume", "c", "-f", "%t %x\\n"}, {"'%x'"});
  ExpectUsageError({"consume", "c", "-o", "@-1x"}, {"-1x"});
  ExpectUsageError({"consume", "c", "-o", "-0"}, {"'-0'"});
  ExpectUsageError({"consume", "c", "-o", "5", "-g", "grp"}, {"'5'", "--group"});

  // A group member starts at the group's committed offsets and commits what it read.
  std::tie(rc, out) = Rillctl({"consume", "c", "-g", "grp", "-e"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, values(0, 10));
  client::AdminConfig ac;
  ac.bootstrap = bootstrap_;
  auto admin = client::Admin::Create(ac);
  ASSERT_TRUE(admin.ok());
  auto committed = (*admin)->FetchOffsets("grp");
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  ASSERT_EQ(committed->size(), 1u);
  EXPECT_EQ((*committed)[0].offset, 10);
  {
    std::ofstream f(input);
    f << "k10:v10\nk11:v11\n";
  }
  std::tie(rc, out) = Rillctl({"produce", "c", "-k", ":", "--file", input});
  ASSERT_EQ(rc, 0) << out;
  std::tie(rc, out) = Rillctl({"consume", "c", "-g", "grp", "-e"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, values(10, 12));
}

// Ctrl-C ends a group consume cleanly: what it printed is committed and it leaves the group.
TEST_F(RillctlCliTest, SigintEndsAGroupConsumeCommittingWhatItPrinted) {
  ASSERT_EQ(broker_->CreateTopic("g", 1).error(), v1::NONE);
  const std::string input = dir_ + "/lines.txt";
  {
    std::ofstream f(input);
    for (int i = 0; i < 10; ++i) f << "v" << i << "\n";
  }
  auto [rc, out] = Rillctl({"produce", "g", "--file", input});
  ASSERT_EQ(rc, 0) << out;
  const std::string log = dir_ + "/group-consume.out";
  auto p = Process::Spawn({RILLCTL_BINARY, "-b", bootstrap_, "consume", "g", "-g", "watchers"}, log,
                          {.env = {"RILL_BOOTSTRAP"}, .stdin_fd = -1});
  ASSERT_NE(p, nullptr);
  const bool printed =
      test::PollUntil([&] { return ReadFile(log).find("v9\n") != std::string::npos; }, 60s, 10ms);
  p->Signal(SIGINT);
  const auto code = p->Wait(60s);
  ASSERT_TRUE(printed) << ReadFile(log);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << ReadFile(log);
  client::AdminConfig ac;
  ac.bootstrap = bootstrap_;
  auto admin = client::Admin::Create(ac);
  ASSERT_TRUE(admin.ok());
  auto committed = (*admin)->FetchOffsets("watchers");
  ASSERT_TRUE(committed.ok()) << committed.status().ToString();
  ASSERT_EQ(committed->size(), 1u);
  EXPECT_EQ((*committed)[0].offset, 10);
  auto group = (*admin)->DescribeGroup("watchers");
  ASSERT_TRUE(group.ok()) << group.status().ToString();
  EXPECT_TRUE(group->members.empty());
}

// A profile file gives defaults below the command line and RILL_BOOTSTRAP:
// $XDG_CONFIG_HOME/rill/rillctl.toml, else ~/.config/rill/rillctl.toml, or --profile FILE.
TEST_F(RillctlCliTest, ProfileFileBelowEnvironmentAndCommandLine) {
  const std::string dead = "127.0.0.1:" + std::to_string(FreePort());
  const std::string home = dir_ + "/home", xdg = dir_ + "/xdg";
  std::filesystem::create_directories(home + "/.config/rill");
  std::filesystem::create_directories(xdg + "/rill");
  std::ofstream(home + "/.config/rill/rillctl.toml")
      << "# rillctl profile\nbootstrap = \"" << bootstrap_ << "\"\ntimeout-ms = 20000\n";
  std::ofstream(xdg + "/rill/rillctl.toml") << "bootstrap = \"" << dead << "\"\n";
  const std::string in_home = "HOME=" + home;
  // The profile alone.
  auto [rc, out] = Run({"cluster", "info"}, {in_home, "XDG_CONFIG_HOME"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("Cluster:"), std::string::npos) << out;
  // The environment over it, the command line over both.
  std::tie(rc, out) =
      Run({"cluster", "info"}, {in_home, "XDG_CONFIG_HOME", "RILL_BOOTSTRAP=" + dead});
  EXPECT_EQ(rc, 4) << out;
  std::tie(rc, out) = Run({"-b", bootstrap_, "cluster", "info"},
                          {in_home, "XDG_CONFIG_HOME", "RILL_BOOTSTRAP=" + dead});
  EXPECT_EQ(rc, 0) << out;
  // XDG_CONFIG_HOME is looked at first.
  std::tie(rc, out) = Run({"cluster", "info"}, {in_home, "XDG_CONFIG_HOME=" + xdg});
  EXPECT_EQ(rc, 4) << out;
  EXPECT_NE(out.find(dead), std::string::npos) << out;
  // --profile names another file; one that cannot be read, an unknown key and a bad value are
  // usage errors naming them.
  std::tie(rc, out) = Run({"--profile", home + "/.config/rill/rillctl.toml", "cluster", "info"},
                          {"HOME=/nonexistent", "XDG_CONFIG_HOME"});
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = Run({"--profile", dir_ + "/none.toml", "cluster", "info"});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("none.toml"), std::string::npos) << out;
  const std::string bad = dir_ + "/bad.toml";
  std::ofstream(bad) << "bootstrap = \"" << bootstrap_ << "\"\nbootsrap = \"x:1\"\n";
  std::tie(rc, out) = Run({"--profile", bad, "topic", "list"});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("unknown key 'bootsrap'"), std::string::npos) << out;
  std::ofstream(bad) << "bootstrap = \"127.0.0.1\"\n";
  std::tie(rc, out) = Run({"--profile", bad, "topic", "list"});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("profile '" + bad + "': bootstrap"), std::string::npos) << out;
  std::ofstream(bad) << "timeout-ms = \"10s\"\n";
  std::tie(rc, out) = Run({"--profile", bad, "topic", "list"});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("'10s'"), std::string::npos) << out;
}

// `rillctl completion bash|zsh` prints a script generated from the command tree; bash completes
// commands and options with it.
TEST_F(RillctlCliTest, ShellCompletion) {
  auto [rc, script] = Run({"completion", "bash"});
  ASSERT_EQ(rc, 0) << script;
  const std::string file = dir_ + "/rillctl.bash";
  std::ofstream(file) << script;
  // The candidates bash offers for the words of a command line, the last being completed.
  const auto complete = [&](const std::string& words) {
    const std::string log = dir_ + "/complete-" + std::to_string(runs_++) + ".out";
    auto p = Process::Spawn({"/bin/bash", "-c",
                             "source '" + file + "'; COMP_WORDS=(" + words +
                                 "); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _rillctl; "
                                 "echo \"${COMPREPLY[*]}\""},
                            log, {.env = {}, .stdin_fd = -1});
    EXPECT_NE(p, nullptr);
    if (!p) return std::string();
    EXPECT_EQ(p->Wait(30s).value_or(-1), 0) << ReadFile(log);
    return ReadFile(log);
  };
  EXPECT_EQ(complete("rillctl top"), "topic\n");
  EXPECT_EQ(complete("rillctl topic cr"), "create\n");
  EXPECT_EQ(complete("rillctl -b x:1 consume t --unt"), "--until-end\n");
  EXPECT_EQ(complete("rillctl group reset-offsets g --exe"), "--execute\n");
  EXPECT_NE(complete("rillctl ''").find("completion"), std::string::npos);
  std::tie(rc, script) = Run({"completion", "zsh"});
  EXPECT_EQ(rc, 0) << script;
  EXPECT_NE(script.find("bashcompinit"), std::string::npos) << script;
  EXPECT_NE(script.find("complete -F _rillctl rillctl"), std::string::npos) << script;
  ExpectUsageError({"completion", "fish"}, {"fish"});
}

// produce -Z: an empty value is a tombstone (null), not an empty string.
TEST_F(RillctlCliTest, ProduceTombstones) {
  ASSERT_EQ(broker_->CreateTopic("z", 1).error(), v1::NONE);
  const std::string input = dir_ + "/tombstones.txt";
  std::ofstream(input) << "k1:\nk2:v2\n";
  auto [rc, out] = Rillctl({"produce", "z", "-k", ":", "-Z", "--file", input});
  ASSERT_EQ(rc, 0) << out;
  std::tie(rc, out) = Rillctl({"produce", "z", "-k", ":", "--file", input});
  ASSERT_EQ(rc, 0) << out;
  std::tie(rc, out) = Rillctl({"consume", "z", "-e", "-f", R"(%k=%v %S\n)"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "k1= -1\nk2=v2 2\nk1= 0\nk2=v2 2\n");
}

// consume -f json | produce --input json copies records: keys, values, nulls, headers and
// timestamps; a line that is not such an object stops the produce naming the line.
TEST_F(RillctlCliTest, ProduceJsonInputCopiesWhatConsumePrints) {
  ASSERT_EQ(broker_->CreateTopic("src", 1).error(), v1::NONE);
  ASSERT_EQ(broker_->CreateTopic("dst", 1).error(), v1::NONE);
  const std::string input = dir_ + "/src.txt";
  std::ofstream(input) << "k1:v1\nk2:\nk3:tab\there \"quoted\"\n";
  auto [rc, out] = Rillctl({"produce", "src", "-k", ":", "-Z", "-H", "h=1", "--file", input});
  ASSERT_EQ(rc, 0) << out;
  std::string copied;
  std::tie(rc, copied) = Rillctl({"consume", "src", "-e", "-f", "json"});
  ASSERT_EQ(rc, 0) << copied;
  const std::string json = dir_ + "/src.json";
  std::ofstream(json) << copied;
  std::tie(rc, out) = Rillctl({"produce", "dst", "--input", "json", "--file", json});
  ASSERT_EQ(rc, 0) << out;
  std::tie(rc, out) = Rillctl({"consume", "dst", "-e", "-f", "json"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(std::regex_replace(out, std::regex("\"topic\":\"dst\""), "\"topic\":\"src\""), copied);
  EXPECT_NE(copied.find("\"key\":\"k2\",\"value\":null,\"headers\":{\"h\":\"1\"}"),
            std::string::npos)
      << copied;

  const std::string bad = dir_ + "/bad.json";
  std::ofstream(bad) << "{\"key\":\"a\",\"value\":\"b\"}\nnot json\n{\"value\":\"never\"}\n";
  std::tie(rc, out) = Rillctl({"produce", "dst", "--input", "json", "--file", bad});
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("input line 2"), std::string::npos) << out;
  std::tie(rc, out) = Rillctl({"consume", "dst", "-o", "-1", "-e", "-f", R"(%k=%v\n)"});
  EXPECT_EQ(out, "a=b\n");  // the line before it was produced, none after
  ExpectUsageError({"produce", "dst", "--input", "json", "-k", ":"}, {"--key-separator"});
  ExpectUsageError({"produce", "dst", "--input", "csv"}, {"'csv'"});
}

TEST_F(RillctlCliTest, BootstrapFromTheEnvironmentAndFromAList) {
  const std::string dead = "127.0.0.1:" + std::to_string(FreePort());
  // RILL_BOOTSTRAP when no --bootstrap is given.
  auto [rc, out] = Run({"cluster", "info"}, {"RILL_BOOTSTRAP=" + bootstrap_});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("Cluster:"), std::string::npos) << out;
  // --bootstrap wins over it.
  std::tie(rc, out) = Run({"-b", bootstrap_, "cluster", "info"}, {"RILL_BOOTSTRAP=" + dead});
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = Run({"cluster", "info"}, {"RILL_BOOTSTRAP=" + dead});
  EXPECT_EQ(rc, 4) << out;
  // A bad RILL_BOOTSTRAP is a usage error naming the variable.
  std::tie(rc, out) = Run({"cluster", "info"}, {"RILL_BOOTSTRAP=127.0.0.1"});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("RILL_BOOTSTRAP"), std::string::npos) << out;
  // A list: the first address that answers is used, in order.
  std::tie(rc, out) = Run({"-b", dead + "," + bootstrap_, "topic", "create", "listed"});
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = Run({"topic", "list"}, {"RILL_BOOTSTRAP=" + dead + "," + bootstrap_});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("listed"), std::string::npos) << out;
  std::tie(rc, out) = Run({"-b", dead + "," + dead, "topic", "list"});
  EXPECT_EQ(rc, 4) << out;
  EXPECT_NE(out.find(dead + "," + dead), std::string::npos) << out;
}

TEST_F(RillctlCliTest, InternalTopicsAreNotDeletedWithoutAllowInternal) {
  // __consumer_offsets is created on the first group call.
  client::AdminConfig ac;
  ac.bootstrap = bootstrap_;
  auto admin = client::Admin::Create(ac);
  ASSERT_TRUE(admin.ok());
  auto has_offsets_topic = [&] {
    auto topics = (*admin)->ListTopics(true);
    if (!topics.ok()) return false;
    for (const auto& t : *topics) {
      if (t.name == "__consumer_offsets" && t.internal) return true;
    }
    return false;
  };
  ASSERT_TRUE(test::PollUntil(
      [&] {
        (void)(*admin)->FetchOffsets("g");
        return has_offsets_topic();
      },
      60s, 20ms));

  auto [rc, out] = Rillctl({"topic", "delete", "__consumer_offsets"});
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("INVALID_REQUEST"), std::string::npos) << out;
  EXPECT_NE(out.find("'__consumer_offsets' is internal"), std::string::npos) << out;
  EXPECT_NE(out.find("--allow-internal"), std::string::npos) << out;
  EXPECT_TRUE(has_offsets_topic());

  // The RPC itself refuses, per topic: an ordinary topic in the same request is deleted.
  ASSERT_EQ(broker_->CreateTopic("plain", 1).error(), v1::NONE);
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    v1::DeleteTopicsRequest req;
    req.add_topics("__consumer_offsets");
    req.add_topics("plain");
    v1::DeleteTopicsResponse resp;
    ASSERT_TRUE(broker_->admin->DeleteTopics(&ctx, req, &resp).ok());
    std::map<std::string, v1::TopicResult> by_topic;
    for (const auto& r : resp.results()) by_topic[r.topic()] = r;
    ASSERT_EQ(by_topic.size(), 2u);
    EXPECT_EQ(by_topic["__consumer_offsets"].error(), v1::INVALID_REQUEST);
    EXPECT_EQ(by_topic["plain"].error(), v1::NONE) << by_topic["plain"].error_message();
  }
  EXPECT_TRUE(has_offsets_topic());

  // With the flag it goes.
  std::tie(rc, out) = Rillctl({"topic", "delete", "__consumer_offsets", "--allow-internal"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("deleted topic '__consumer_offsets'"), std::string::npos) << out;
  auto topics = (*admin)->ListTopics(true);
  ASSERT_TRUE(topics.ok());
  for (const auto& t : *topics) EXPECT_NE(t.name, "__consumer_offsets");
}

TEST_F(RillctlCliTest, Version) {
  auto [rc, out] = Run({"--version"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(std::regex_search(
      out, std::regex(R"(^rillctl [0-9]+\.[0-9]+\.[0-9]+ \(git ([0-9a-f]+|unknown), \w+\)\n$)")))
      << out;
}

// SIGINT while `rillctl produce` reads 100,000 lines from a pipe: it stops reading, flushes what
// it buffered, reports how many records were delivered and how many were not, and every record
// it reported delivered is in the log, once, in order, with no gap.
TEST_F(RillctlCliTest, SigintDuringProduceFlushesAndReportsWhatWasDelivered) {
  ASSERT_EQ(broker_->CreateTopic("pipe", 1).error(), v1::NONE);
  constexpr int kLines = 100000;
  int fds[2];
  ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
  const std::string log = dir_ + "/produce.out";
  // A long linger keeps the last, partial batch of the first half in the producer's buffer when
  // the signal comes (full batches go at once): only the flush on SIGINT delivers it.
  auto p = Process::Spawn(
      {RILLCTL_BINARY, "--bootstrap", bootstrap_, "produce", "pipe", "--linger-ms", "5000"}, log,
      {.env = {"RILL_BOOTSTRAP"}, .stdin_fd = fds[0]});
  ASSERT_NE(p, nullptr);
  ::close(fds[0]);
  ::signal(SIGPIPE, SIG_IGN);
  // The writer feeds the first half, then waits for the signal before the rest (it ends when
  // rillctl exits and the pipe breaks).
  std::mutex signal_mu;
  std::condition_variable signal_cv;
  bool signalled = false;  // guarded by signal_mu
  std::thread writer([&, wfd = fds[1]] {
    std::string chunk;
    for (int i = 0; i < kLines; ++i) {
      chunk += std::to_string(i) + "\n";
      if (i == kLines / 2) {
        std::unique_lock lock(signal_mu);
        if (!signal_cv.wait_for(lock, 60s, [&] { return signalled; })) break;
      }
      if (chunk.size() >= 4096 || i == kLines - 1 || i == kLines / 2 - 1) {
        size_t off = 0;
        while (off < chunk.size()) {
          const ssize_t n = ::write(wfd, chunk.data() + off, chunk.size() - off);
          if (n <= 0) {
            ::close(wfd);
            return;
          }
          off += static_cast<size_t>(n);
        }
        chunk.clear();
      }
    }
    ::close(wfd);
  });
  // Mid-run: records of the first half are in the log.
  int64_t hw = 0;
  const bool producing = test::PollUntil(
      [&] {
        auto f = broker_->Fetch("pipe", 0, 0);
        hw = f.high_watermark();
        return hw >= 1000;
      },
      60s, 5ms);
  p->Signal(SIGINT);
  {
    std::lock_guard lock(signal_mu);
    signalled = true;
  }
  signal_cv.notify_all();
  const auto code = p->Wait(120s);
  writer.join();
  ASSERT_TRUE(producing) << ReadFile(log);
  ASSERT_TRUE(code.has_value()) << ReadFile(log);
  const std::string out = ReadFile(log);

  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      out, m, std::regex(R"(interrupted: ([0-9]+) records delivered, ([0-9]+) not delivered)")))
      << out;
  const int64_t delivered = std::stoll(m[1]), not_delivered = std::stoll(m[2]);
  EXPECT_NE(out.find("SIGINT: stopped reading input"), std::string::npos) << out;
  EXPECT_EQ(*code, not_delivered == 0 ? 0 : 1) << out;
  EXPECT_GT(delivered, hw);      // the buffered records were flushed, not dropped
  EXPECT_LT(delivered, kLines);  // it stopped reading: the second half never arrived in full

  int64_t high_watermark = -1;
  auto records = broker_->ReadAll("pipe", 0, &high_watermark);
  EXPECT_EQ(high_watermark, delivered);
  ASSERT_EQ(static_cast<int64_t>(records.size()), delivered);
  for (int64_t i = 0; i < delivered; ++i) {
    ASSERT_EQ(records[i].offset, i);
    ASSERT_TRUE(records[i].record.value.has_value());
    ASSERT_EQ(std::string(*records[i].record.value), std::to_string(i)) << "at offset " << i;
  }
}

}  // namespace
}  // namespace rill::testing
