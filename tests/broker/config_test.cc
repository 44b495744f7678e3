#include "rill/broker/config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace rill::broker {
namespace {

Result<BrokerConfig> Parse(std::vector<std::string> args) {
  std::vector<const char*> argv = {"rill-broker"};
  for (auto& a : args) argv.push_back(a.c_str());
  return ParseBrokerConfig(static_cast<int>(argv.size()), argv.data());
}

std::string WriteFile(const std::string& text) {
  auto path = std::filesystem::temp_directory_path() /
              ("rill_config_test_" + std::to_string(::getpid()) + ".toml");
  std::ofstream(path) << text;
  return path.string();
}

TEST(BrokerConfig, DefaultsWorkForOneNode) {
  auto c = Parse({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node_id, 1);
  EXPECT_TRUE(c->has_role("broker"));
  EXPECT_TRUE(c->has_role("controller"));
  EXPECT_EQ(c->client_listener.port, 9092);
  EXPECT_EQ(c->internal_listener.port, 9093);
  EXPECT_EQ(c->http_listener.port, 9644);
  EXPECT_EQ(c->flush_policy, "group");
  auto voters = ParseVoters(c->voters);
  ASSERT_TRUE(voters.ok());
  ASSERT_EQ(voters->size(), 1u);
  EXPECT_EQ((*voters)[0].node_id, 1);
}

TEST(BrokerConfig, FileThenCommandLineWins) {
  std::string path = WriteFile(R"(
[node]
id = 7
roles = ["broker"]

[data]
dir = "/tmp/rill-x"

[listeners]
client = "127.0.0.1:0"
http = "127.0.0.1:19644"

[flush]
policy = "interval"
interval_ms = 250

[topic]
partitions = 3
configs = ["retention.ms=1000", "segment.bytes=1048576"]

[limits]
fetch_max_bytes = 2097152

[log]
level = "debug"
)");
  auto c = Parse({"--config", path, "--node.id", "9", "--flush.policy=none"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node_id, 9);  // command line wins
  EXPECT_EQ(c->roles, std::vector<std::string>{"broker"});
  EXPECT_EQ(c->data_dir, "/tmp/rill-x");
  EXPECT_EQ(c->client_listener.host, "127.0.0.1");
  EXPECT_EQ(c->client_listener.port, 0);
  EXPECT_EQ(c->http_listener.port, 19644);
  EXPECT_EQ(c->flush_policy, "none");
  EXPECT_EQ(c->flush_interval_ms, 250);
  EXPECT_EQ(c->default_partitions, 3);
  EXPECT_EQ(c->topic_defaults.at("retention.ms"), "1000");
  EXPECT_EQ(c->topic_defaults.at("segment.bytes"), "1048576");
  EXPECT_EQ(c->fetch_max_bytes, 2097152);
  EXPECT_EQ(c->log_level, "debug");
  auto d = BrokerTopicDefaults(*c);
  EXPECT_EQ(d.at("flush.policy"), "none");
  EXPECT_EQ(d.at("retention.ms"), "1000");
  std::filesystem::remove(path);
}

TEST(BrokerConfig, ShippedConfigParses) {
  auto c = Parse({"--config", std::string(RILL_SOURCE_DIR) + "/config/rill.toml"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node_id, 1);
  EXPECT_EQ(c->client_listener.port, 9092);
  EXPECT_EQ(c->groups_offsets_partitions, 8);
  EXPECT_EQ(c->groups_max_members, 1000);
  EXPECT_EQ(c->remove_step_bytes, 8 << 20);
  EXPECT_EQ(c->remove_bytes_per_sec, 256 << 20);
}

TEST(BrokerConfig, RequestMemoryOptions) {
  auto c = Parse({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->max_request_memory_bytes, 256ll << 20);
  EXPECT_EQ(c->max_concurrent_streams_per_connection, 16);
  c = Parse({"--limits.max_request_memory_bytes", "0",
             "--limits.max_concurrent_streams_per_connection", "4"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->max_request_memory_bytes, 0);
  EXPECT_EQ(c->max_concurrent_streams_per_connection, 4);
  EXPECT_FALSE(Parse({"--limits.max_request_memory_bytes", "-1"}).ok());
  EXPECT_FALSE(Parse({"--limits.max_concurrent_streams_per_connection", "-1"}).ok());
  auto shipped = Parse({"--config", std::string(RILL_SOURCE_DIR) + "/config/rill.toml"});
  ASSERT_TRUE(shipped.ok()) << shipped.status().ToString();
  EXPECT_EQ(shipped->max_request_memory_bytes, 256ll << 20);
  EXPECT_EQ(shipped->max_concurrent_streams_per_connection, 16);
}

TEST(BrokerConfig, RemoveOptions) {
  auto c = Parse({"--storage.remove_step_bytes", "0", "--storage.remove_bytes_per_sec", "1000"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->remove_step_bytes, 0);
  EXPECT_EQ(c->remove_bytes_per_sec, 1000);
  EXPECT_FALSE(Parse({"--storage.remove_step_bytes", "-1"}).ok());
}

TEST(BrokerConfig, MinFreeBytes) {
  auto c = Parse({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->min_free_bytes, int64_t{1} << 30);
  c = Parse({"--storage.min_free_bytes", "0"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->min_free_bytes, 0);
  EXPECT_FALSE(Parse({"--storage.min_free_bytes", "-1"}).ok());
}

// Broker-wide topic defaults are checked at start, like a topic's own overrides.
TEST(BrokerConfig, TopicDefaultsAreValidated) {
  auto ok = Parse({"--topic.configs", "retention.ms=1000,segment.bytes=1048576"});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(ok->topic_defaults.at("retention.ms"), "1000");
  for (const char* bad : {"retention.ms=abc", "foo.bar=1", "flush.policy=sometimes"}) {
    auto c = Parse({"--topic.configs", bad});
    ASSERT_FALSE(c.ok()) << bad;
    const std::string key = std::string(bad).substr(0, std::string(bad).find('='));
    EXPECT_NE(c.status().message().find(key), std::string::npos) << c.status().message();
    EXPECT_NE(c.status().message().find("--topic.configs"), std::string::npos)
        << c.status().message();
  }
}

TEST(BrokerConfig, RetentionCheckInterval) {
  auto c = Parse({});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->retention_check_interval_ms, 300000);        // Kafka's default
  c = Parse({"--log.retention.check.interval.ms", "250"});  // Kafka's name
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->retention_check_interval_ms, 250);
  c = Parse({"--log.retention_check_interval_ms", "1000"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->retention_check_interval_ms, 1000);
  auto bad = Parse({"--log.retention.check.interval.ms", "0"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("retention"), std::string::npos) << bad.status().message();
}

// Roles and the voter list must agree: a controller is a voter, a broker-only node a learner.
TEST(BrokerConfig, RolesAgreeWithTheVoters) {
  auto c = Parse(
      {"--node.id", "4", "--node.roles", "broker", "--controller.voters", "1@127.0.0.1:9093"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_FALSE(c->has_role("controller"));

  auto not_listed = Parse({"--node.id", "4", "--controller.voters", "1@127.0.0.1:9093"});
  ASSERT_FALSE(not_listed.ok());
  EXPECT_NE(not_listed.status().message().find("node 4 is not in --controller.voters"),
            std::string::npos)
      << not_listed.status().message();

  auto listed_broker = Parse({"--node.id", "1", "--node.roles", "broker"});
  ASSERT_FALSE(listed_broker.ok());
  EXPECT_NE(listed_broker.status().message().find("lacks controller"), std::string::npos)
      << listed_broker.status().message();

  auto controller_only = Parse({"--node.roles", "controller"});
  ASSERT_FALSE(controller_only.ok());
  EXPECT_NE(controller_only.status().message().find("controller-only"), std::string::npos)
      << controller_only.status().message();
}

TEST(BrokerConfig, GroupOptions) {
  auto c = Parse({"--groups.offsets_partitions", "3", "--groups.max_groups", "7",
                  "--groups.max_members", "5", "--groups.min_session_timeout_ms", "100"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->groups_offsets_partitions, 3);
  EXPECT_EQ(c->groups_max_groups, 7);
  EXPECT_EQ(c->groups_max_members, 5);
  EXPECT_EQ(c->groups_min_session_timeout_ms, 100);
  EXPECT_FALSE(Parse({"--groups.offsets_partitions", "0"}).ok());
}

TEST(BrokerConfig, BadValuesNameTheOption) {
  auto c = Parse({"--flush.policy", "sometimes"});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("flush.policy"), std::string::npos) << c.status().message();

  c = Parse({"--listeners.client", "localhost"});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("host:port"), std::string::npos);

  c = Parse({"--controller.voters", "1@127.0.0.1:9093,x@h:1"});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("voters"), std::string::npos);

  c = Parse({"--no.such.option", "1"});
  ASSERT_FALSE(c.ok());

  std::string path = WriteFile("[node]\nunknown_key = 3\n");
  c = Parse({"--config", path});
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("unknown_key"), std::string::npos) << c.status().message();
  std::filesystem::remove(path);

  c = Parse({"--config", "/nonexistent/rill.toml"});
  ASSERT_FALSE(c.ok());
}

TEST(BrokerConfig, HelpIsReported) {
  auto c = Parse({"--help"});
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(c.status().IsNotFound());
  EXPECT_NE(c.status().message().find("--flush.policy"), std::string::npos);
}

TEST(BrokerConfig, Voters) {
  auto v = ParseVoters("1@127.0.0.1:9093,2@10.0.0.2:9093,3@[::1]:9093");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_EQ(v->size(), 3u);
  EXPECT_EQ((*v)[1].node_id, 2);
  EXPECT_EQ((*v)[1].address.host, "10.0.0.2");
  EXPECT_EQ((*v)[2].address.host, "::1");
  EXPECT_FALSE(ParseVoters("1@127.0.0.1").ok());
  EXPECT_FALSE(ParseVoters("1@127.0.0.1:70000").ok());
}

// Sets environment variables for one scope and unsets them after.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<std::string, std::string>> vars) : vars_(vars) {
    for (const auto& [k, v] : vars_) ::setenv(k.c_str(), v.c_str(), 1);
  }
  ~ScopedEnv() {
    for (const auto& [k, v] : vars_) ::unsetenv(k.c_str());
  }

 private:
  std::vector<std::pair<std::string, std::string>> vars_;
};

TEST(BrokerConfig, EnvironmentBetweenFileAndCommandLine) {
  std::string path = WriteFile(R"(
[node]
id = 7
roles = ["broker", "controller"]
[controller]
voters = "7@127.0.0.1:0"
[topic]
configs = ["retention.ms=1000", "segment.bytes=1048576"]
[flush]
policy = "interval"
)");
  ScopedEnv env{{"RILL_NODE_ID", "8"},
                {"RILL_CONTROLLER_VOTERS", "8@127.0.0.1:0"},
                {"RILL_TOPIC_CONFIGS", "retention.ms=2000"},
                {"RILL_DATA_DIR", "/tmp/rill-env"},
                {"RILL_LISTENERS_CLIENT", "127.0.0.1:19092"},
                {"RILL_LOG_RETENTION_CHECK_INTERVAL_MS", "1234"}};
  auto c = Parse({"--config", path, "--listeners.client", "127.0.0.1:29092"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->node_id, 8);                   // env over file
  EXPECT_EQ(c->flush_policy, "interval");     // file where env says nothing
  EXPECT_EQ(c->data_dir, "/tmp/rill-env");    // an option with an alias (--data-dir)
  EXPECT_EQ(c->client_listener.port, 29092);  // command line over env
  EXPECT_EQ(c->retention_check_interval_ms, 1234);
  // A list from the environment replaces the file's list; it is not appended to it.
  EXPECT_EQ(c->topic_defaults.size(), 1u);
  EXPECT_EQ(c->topic_defaults.at("retention.ms"), "2000");
  // ... and the command line's replaces the environment's.
  auto cli = Parse({"--config", path, "--topic.configs", "segment.bytes=2097152"});
  ASSERT_TRUE(cli.ok()) << cli.status().ToString();
  EXPECT_EQ(cli->topic_defaults.size(), 1u);
  EXPECT_EQ(cli->topic_defaults.at("segment.bytes"), "2097152");
  std::filesystem::remove(path);
}

TEST(BrokerConfig, ConfigFileFromTheEnvironment) {
  std::string path = WriteFile("[node]\nrack = \"r1\"\n");
  {
    ScopedEnv env{{"RILL_CONFIG", path}};
    auto c = Parse({});
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->rack, "r1");
  }
  {
    ScopedEnv env{{"RILL_CONFIG", "/nonexistent/rill.toml"}};
    auto c = Parse({"--config", path});  // --config wins over RILL_CONFIG
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->rack, "r1");
  }
  std::filesystem::remove(path);
}

TEST(BrokerConfig, BadEnvironmentValuesNameTheVariable) {
  {
    ScopedEnv env{{"RILL_CONTROLLER_TICK_MS", "fast"}};
    auto c = Parse({});
    ASSERT_FALSE(c.ok());
    EXPECT_NE(c.status().message().find("RILL_CONTROLLER_TICK_MS='fast'"), std::string::npos)
        << c.status().message();
    // The command line's value is the one parsed.
    EXPECT_TRUE(Parse({"--controller.tick_ms", "20"}).ok());
  }
  {
    // An unknown variable is a warning (on stderr), not an error.
    ScopedEnv env{{"RILL_NO_SUCH_OPTION", "1"}};
    EXPECT_TRUE(Parse({}).ok());
  }
}

}  // namespace
}  // namespace rill::broker
