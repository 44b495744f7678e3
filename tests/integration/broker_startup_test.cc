// The real rill-broker process at start: a listener port in use stops the start with a message
// naming the listener and its address while the broker already there keeps serving; the
// configuration comes from the TOML file, RILL_* environment variables and the command line, in
// that order of precedence; --version.

#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "broker_process.h"
#include "support/poll.h"

namespace rill::testing {
namespace {

using namespace std::chrono_literals;

// A TCP port on 127.0.0.1 that forwards every connection to another port on 127.0.0.1, as a
// Docker port mapping or a NAT does; counts the bytes it carried.
class PortForwarder {
 public:
  explicit PortForwarder(int target_port) : target_port_(target_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::listen(listen_fd_, 16) == 0 &&
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
      port_ = ntohs(a.sin_port);
    }
    acceptor_ = std::thread([this] { AcceptLoop(); });
  }
  ~PortForwarder() {
    stop_ = true;
    acceptor_.join();
    for (auto& t : pumps_) t.join();
    ::close(listen_fd_);
  }
  int port() const { return port_; }
  int64_t bytes() const { return bytes_; }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int in = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (in < 0) continue;
      const int out = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(target_port_);
      if (::connect(out, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(in);
        ::close(out);
        continue;
      }
      pumps_.emplace_back([this, in, out] { Pump(in, out); });
    }
  }
  // Copies both ways until either side closes or the forwarder stops.
  void Pump(int a, int b) {
    char buf[16384];
    while (!stop_) {
      pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (::poll(p, 2, 50) <= 0) continue;
      bool closed = false;
      for (int i = 0; i < 2 && !closed; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const ssize_t n = ::read(p[i].fd, buf, sizeof buf);
        closed = n <= 0;
        for (ssize_t off = 0; !closed && off < n;) {
          const ssize_t w = ::write(p[1 - i].fd, buf + off, static_cast<size_t>(n - off));
          closed = w <= 0;
          off += std::max<ssize_t>(w, 0);
        }
        if (n > 0) bytes_ += n;
      }
      if (closed) break;
    }
    ::close(a);
    ::close(b);
  }

  const int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> bytes_{0};
  std::thread acceptor_;
  std::vector<std::thread> pumps_;  // only the acceptor thread adds, before the destructor joins
};

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

// A bad broker-wide topic default or a key that names no option stops the broker before it
// touches its data dir: exit 2 and a message naming the key (and the value), from each source.
TEST_F(BrokerStartupTest, BadTopicDefaultsAndUnknownKeysStopTheBrokerNamingThem) {
  struct Case {
    std::string name;
    std::string toml;  // written to a file given with --config when not empty
    std::vector<std::string> args;
    std::vector<std::string> env;
    std::vector<std::string> named;  // each must appear in the output
  };
  const std::vector<Case> cases = {
      {"file bad value",
       "[topic]\nconfigs = [\"retention.ms=abc\"]\n",
       {},
       {},
       {"retention.ms", "abc"}},
      {"file unknown topic key", "[topic]\nconfigs = [\"foo.bar=1\"]\n", {}, {}, {"foo.bar"}},
      {"file unknown key", "[node]\nno_such_key = 3\n", {}, {}, {"no_such_key"}},
      {"file unknown section", "[nosuch]\nkey = 1\n", {}, {}, {"nosuch.key"}},
      {"command line",
       "",
       {"--topic.configs", "retention.ms=1000,segment.bytes=12x"},
       {},
       {"segment.bytes", "12x"}},
      {"environment",
       "",
       {},
       {"RILL_TOPIC_CONFIGS=cleanup.policy=sometimes"},
       {"cleanup.policy", "sometimes", "RILL_TOPIC_CONFIGS"}},
      {"environment listener",
       "",
       {},
       {"RILL_LISTENERS_CLIENT=localhost"},
       {"--listeners.client", "'localhost'", "RILL_LISTENERS_CLIENT"}},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE(c.name);
    const std::string data = dir_ + "/data-" + std::to_string(i);
    std::vector<std::string> args = {"--data.dir", data};
    if (!c.toml.empty()) {
      const std::string toml = dir_ + "/bad-" + std::to_string(i) + ".toml";
      std::ofstream(toml) << c.toml;
      args.insert(args.end(), {"--config", toml});
    }
    args.insert(args.end(), c.args.begin(), c.args.end());
    auto [rc, out] = RunBroker(args, c.env);
    EXPECT_EQ(rc, 2) << out;
    for (const auto& n : c.named) EXPECT_NE(out.find(n), std::string::npos) << n << " in: " << out;
    EXPECT_FALSE(std::filesystem::exists(data)) << out;
  }
}

// Each listener's advertised host and port, when they differ from the bound ones (a mapped port):
// node 2, a broker-only learner, binds its client and internal listeners on ports that nobody
// else is told about and advertises forwarded ones. Node 1 (the controller) can only reach node 2
// through the advertised internal address, so node 2 becoming ready (it must receive the metadata
// log from node 1) proves that address is the one used; clients are given the advertised client
// address, which reaches node 2.
TEST_F(BrokerStartupTest, EachListenerAdvertisesItsOwnHostAndPort) {
  const int controller_internal = FreePort(), internal = FreePort(), client = FreePort();
  ASSERT_TRUE(controller_internal != 0 && internal != 0 && client != 0);
  PortForwarder internal_mapped(internal), client_mapped(client);
  ASSERT_NE(internal_mapped.port(), 0);
  ASSERT_NE(client_mapped.port(), 0);
  const std::string voters = "1@127.0.0.1:" + std::to_string(controller_internal);
  BrokerProcess& node1 = Broker("node1");
  node1.Launch({}, BrokerProcess::ClusterMember{1, controller_internal, voters});
  ASSERT_NO_FATAL_FAILURE(node1.WaitReady());
  BrokerProcess& node2 = Broker("node2");
  const std::string advertised_client = "localhost:" + std::to_string(client_mapped.port());
  node2.Launch(
      {"--node.roles", "broker", "--listeners.client", "127.0.0.1:" + std::to_string(client),
       "--listeners.advertised_client", advertised_client, "--listeners.advertised_internal",
       "127.0.0.1:" + std::to_string(internal_mapped.port())},
      BrokerProcess::ClusterMember{2, internal, voters});
  ASSERT_NO_FATAL_FAILURE(node2.WaitReady());
  EXPECT_GT(internal_mapped.bytes(), 0);

  // Node 1 tells clients where node 2 is: the advertised host and port; node 1 itself has no
  // advertised address of its own, so it gets advertised_host and its bound port.
  auto cluster = DescribeCluster(node1);
  std::map<int, std::pair<std::string, int>> brokers;
  for (const auto& b : cluster.brokers()) brokers[b.node_id()] = {b.host(), b.port()};
  ASSERT_EQ(brokers.size(), 2u);
  EXPECT_EQ(brokers[2], std::make_pair(std::string("localhost"), client_mapped.port()));
  EXPECT_EQ(brokers[1], std::make_pair(std::string("127.0.0.1"), node1.client_port()));
  // That address reaches node 2.
  auto channel = grpc::CreateChannel(advertised_client, grpc::InsecureChannelCredentials());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 30s);
  v1::DescribeClusterResponse via_mapped;
  ASSERT_TRUE(v1::Admin::NewStub(channel)
                  ->DescribeCluster(&ctx, v1::DescribeClusterRequest(), &via_mapped)
                  .ok());
  EXPECT_EQ(via_mapped.cluster_id(), cluster.cluster_id());
  EXPECT_GT(client_mapped.bytes(), 0);

  // An advertised address needs a host that can be dialled.
  auto [rc, out] =
      RunBroker({"--data.dir", dir_ + "/bad", "--listeners.advertised_client", "0.0.0.0:9092"});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("--listeners.advertised_client"), std::string::npos) << out;
  std::tie(rc, out) =
      RunBroker({"--data.dir", dir_ + "/bad", "--listeners.advertised_internal", "somehost"});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("'somehost'"), std::string::npos) << out;

  EXPECT_EQ(node2.Stop(), 0);
  EXPECT_EQ(node1.Stop(), 0);
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
