// The real rill-broker process at start: a listener port in use stops the start with a message
// naming the listener and its address while the broker already there keeps serving; the
// configuration comes from the TOML file, RILL_* environment variables and the command line, in
// that order of precedence; --version.

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>

#include "broker_process.h"
#include "support/poll.h"

namespace rill::testing {
namespace {

using namespace std::chrono_literals;

class BrokerStartupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (std::filesystem::temp_directory_path() /
            ("rill_start_" + std::to_string(::getpid()) + "_" + info->name()))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    for (auto& [name, b] : brokers_) {
      if (::testing::Test::HasFailure() || getenv("RILL_IT_SHOW_LOG")) {
        std::cerr << "---- broker " << name << " log ----\n"
                  << b->log() << "--------------------\n";
      }
    }
    brokers_.clear();
    std::filesystem::remove_all(dir_);
  }

  BrokerProcess& Broker(const std::string& name) {
    auto& b = brokers_[name];
    if (!b) b = std::make_unique<BrokerProcess>(dir_ + "/" + name);
    return *b;
  }

  // Runs rill-broker with `args` to completion; {exit code, output}.
  std::pair<int, std::string> RunBroker(const std::vector<std::string>& args,
                                        const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv = {RILL_BROKER_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string log = dir_ + "/run-" + std::to_string(runs_++) + ".out";
    auto p = Process::Spawn(argv, log, {.env = env, .stdin_fd = -1});
    EXPECT_NE(p, nullptr);
    if (!p) return {-1, ""};
    auto code = p->Wait(60s);
    EXPECT_TRUE(code.has_value()) << "rill-broker did not exit";
    return {code.value_or(-1), ReadFile(log)};
  }

  static v1::DescribeClusterResponse DescribeCluster(BrokerProcess& b) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    v1::DescribeClusterResponse resp;
    auto st = b.admin->DescribeCluster(&ctx, v1::DescribeClusterRequest(), &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp;
  }

  std::string dir_;
  std::map<std::string, std::unique_ptr<BrokerProcess>> brokers_;
  int runs_ = 0;
};

// A second broker (its own data dir) on a port the first one listens on must not start: with
// SO_REUSEPORT the kernel would spread new connections over both, and clients would see two
// clusters behind one address. Each of the three listeners in turn.
TEST_F(BrokerStartupTest, ASecondBrokerOnAPortInUseExitsNamingTheListenerAndTheFirstKeepsServing) {
  BrokerProcess& first = Broker("first");
  first.Start();
  ASSERT_TRUE(first.running());
  ASSERT_EQ(first.CreateTopic("kept", 1).error(), v1::NONE);
  const std::string cluster_id = DescribeCluster(first).cluster_id();
  ASSERT_FALSE(cluster_id.empty());
  ASSERT_NE(first.internal_port(), 0);

  const std::vector<std::pair<std::string, int>> listeners = {{"client", first.client_port()},
                                                              {"internal", first.internal_port()},
                                                              {"http", first.http_port()}};
  for (const auto& [listener, port] : listeners) {
    SCOPED_TRACE(listener);
    BrokerProcess& second = Broker("second-" + listener);
    const std::string address = "127.0.0.1:" + std::to_string(port);
    second.Launch({"--listeners." + listener, address});
    const auto code = second.WaitExit(60s);
    ASSERT_TRUE(code.has_value()) << "the second broker is still running:\n" << second.log();
    EXPECT_NE(*code, 0) << second.log();
    const std::string expected = listener + " listener " + address + ": address already in use";
    EXPECT_NE(second.log().find(expected), std::string::npos)
        << "expected '" << expected << "' in:\n"
        << second.log();
    // It stopped before claiming its data dir or starting its controller.
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/second-" + listener + "/data/meta.properties"));
  }

  // The first broker still serves, and every new connection to the client port reaches it (one
  // cluster id, the topic it holds).
  ASSERT_TRUE(first.running()) << first.log();
  EXPECT_EQ(HttpGet(first.http_port(), "/readyz").substr(0, 3), "200");
  for (int i = 0; i < 6; ++i) {
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(first.client_port()),
                                       grpc::InsecureChannelCredentials());
    auto admin = v1::Admin::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 30s);
    v1::ListTopicsResponse topics;
    ASSERT_TRUE(admin->ListTopics(&ctx, v1::ListTopicsRequest(), &topics).ok());
    ASSERT_EQ(topics.topics_size(), 1);
    EXPECT_EQ(topics.topics(0).name(), "kept");
    grpc::ClientContext ctx2;
    ctx2.set_deadline(std::chrono::system_clock::now() + 30s);
    v1::DescribeClusterResponse cluster;
    ASSERT_TRUE(admin->DescribeCluster(&ctx2, v1::DescribeClusterRequest(), &cluster).ok());
    EXPECT_EQ(cluster.cluster_id(), cluster_id);
  }
  EXPECT_EQ(first.Stop(), 0);
}

// file < environment < command line, per option; RILL_CONFIG names the file; a RILL_* variable
// that names no option is reported; a bad value from the environment names its variable.
TEST_F(BrokerStartupTest, EnvironmentOverridesTheFileAndTheCommandLineOverridesBoth) {
  const std::string toml = dir_ + "/rill.toml";
  {
    std::ofstream f(toml);
    f << "[listeners]\nadvertised_host = \"file-host\"\n"
      << "[controller]\ncluster_id = \"file-cluster\"\n"
      << "[log]\nlevel = \"info\"\n";
  }
  // The file alone.
  {
    BrokerProcess& b = Broker("file");
    b.Start({"--config", toml});
    auto cluster = DescribeCluster(b);
    EXPECT_EQ(cluster.cluster_id(), "file-cluster");
    ASSERT_EQ(cluster.brokers_size(), 1);
    EXPECT_EQ(cluster.brokers(0).host(), "file-host");
    EXPECT_EQ(b.Stop(), 0);
  }
  // The file (through RILL_CONFIG), the environment over it, the command line over both.
  {
    BrokerProcess& b = Broker("env");
    b.SetEnv({"RILL_CONFIG=" + toml, "RILL_CONTROLLER_CLUSTER_ID=env-cluster",
              "RILL_LISTENERS_ADVERTISED_HOST=env-host", "RILL_NO_SUCH_OPTION=1"});
    b.Start({"--listeners.advertised_host", "cli-host"});
    auto cluster = DescribeCluster(b);
    EXPECT_EQ(cluster.cluster_id(), "env-cluster");  // env over file
    ASSERT_EQ(cluster.brokers_size(), 1);
    EXPECT_EQ(cluster.brokers(0).host(), "cli-host");  // command line over env
    EXPECT_NE(b.log().find("RILL_NO_SUCH_OPTION names no option"), std::string::npos) << b.log();
    EXPECT_EQ(b.Stop(), 0);
  }
  // Numbers from the environment (node.id over the file's), and a bad value in the environment
  // that the command line overrides: the command line's value is the one parsed.
  {
    const std::string id_toml = dir_ + "/id.toml";
    {
      std::ofstream f(id_toml);
      f << "[node]\nid = 5\n";
    }
    BrokerProcess& b = Broker("env-only");
    b.SetEnv({"RILL_CONFIG=" + id_toml, "RILL_NODE_ID=7", "RILL_CONTROLLER_TICK_MS=abc",
              "RILL_LISTENERS_ADVERTISED_HOST=env-host"});
    b.Start({"--controller.voters", "7@127.0.0.1:0", "--controller.tick_ms", "50"});
    auto cluster = DescribeCluster(b);
    ASSERT_EQ(cluster.brokers_size(), 1);
    EXPECT_EQ(cluster.brokers(0).node_id(), 7);
    EXPECT_EQ(cluster.brokers(0).host(), "env-host");
    EXPECT_EQ(b.Stop(), 0);
  }
  // A bad value from the environment: exit 2, naming the variable and the value.
  auto [rc, out] = RunBroker({"--data.dir", dir_ + "/bad"}, {"RILL_CONTROLLER_TICK_MS=abc"});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("RILL_CONTROLLER_TICK_MS"), std::string::npos) << out;
  EXPECT_NE(out.find("abc"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/bad"));
}

TEST_F(BrokerStartupTest, VersionAndHelp) {
  auto [rc, out] = RunBroker({"--version"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(std::regex_search(
      out,
      std::regex(R"(^rill-broker [0-9]+\.[0-9]+\.[0-9]+ \(git ([0-9a-f]+|unknown), \w+\)\n$)")))
      << out;
  std::tie(rc, out) = RunBroker({"--help"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("--version"), std::string::npos) << out;
}

}  // namespace
}  // namespace rill::testing
