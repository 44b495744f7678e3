#include "rill/broker/config.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include "controller/topic_config.h"

extern char** environ;

namespace rill::broker {

bool BrokerConfig::has_role(const std::string& r) const {
  return std::find(roles.begin(), roles.end(), r) != roles.end();
}

Result<HostPort> ParseHostPort(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) {
    return Status::InvalidArgument("'" + s + "' is not host:port");
  }
  HostPort hp;
  hp.host = s.substr(0, colon);
  if (hp.host.size() >= 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  std::string port = s.substr(colon + 1);
  int32_t p = -1;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || ptr != port.data() + port.size() || p < 0 || p > 65535) {
    return Status::InvalidArgument("'" + s + "' has a bad port (0..65535)");
  }
  hp.port = p;
  if (hp.host.empty()) hp.host = "0.0.0.0";
  return hp;
}

Result<std::vector<Voter>> ParseVoters(const std::string& s) {
  std::vector<Voter> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    std::string entry =
        s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? s.size() + 1 : comma + 1;
    if (entry.empty()) continue;
    auto at = entry.find('@');
    if (at == std::string::npos) {
      return Status::InvalidArgument("voter '" + entry + "' is not id@host:port");
    }
    Voter v;
    std::string id = entry.substr(0, at);
    auto [ptr, ec] = std::from_chars(id.data(), id.data() + id.size(), v.node_id);
    if (ec != std::errc() || ptr != id.data() + id.size() || v.node_id < 0) {
      return Status::InvalidArgument("voter '" + entry + "' has a bad node id");
    }
    RILL_ASSIGN_OR_RETURN(v.address, ParseHostPort(entry.substr(at + 1)));
    out.push_back(std::move(v));
  }
  return out;
}

std::map<std::string, std::string> BrokerTopicDefaults(const BrokerConfig& config) {
  std::map<std::string, std::string> d = config.topic_defaults;
  d.emplace("flush.policy", config.flush_policy);
  d.emplace("flush.interval.ms", std::to_string(config.flush_interval_ms));
  return d;
}

namespace {

// One option's arguments from one source: "--section.key" and its values. `option` is null for a
// file key that names no option (CLI11 then reports it); `env` names the variable it came from.
struct OptionArgs {
  const CLI::Option* option = nullptr;
  std::vector<std::string> tokens;
  std::string env;
};

// The environment variable of an option's long name: RILL_, then the name upper-cased with dots
// and dashes turned into underscores (listeners.client -> RILL_LISTENERS_CLIENT).
std::string EnvVarName(const std::string& long_name) {
  std::string out = "RILL_";
  for (char ch : long_name) {
    out += (ch == '.' || ch == '-')
               ? '_'
               : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  return out;
}

// Variables of the RILL_ prefix that are not broker options and are not warned about: rillctl's
// bootstrap address (a container may set it for both tools).
bool IsOtherToolsVariable(const std::string& name) { return name == "RILL_BOOTSTRAP"; }

// Turns the TOML file into "--section.key value..." arguments placed before the environment's
// and the real command line's, so that every file key is exactly a command-line option.
Status ConfigFileArgs(const std::string& path,
                      std::vector<std::pair<std::string, std::vector<std::string>>>* out) {
  std::ifstream in(path);
  if (!in) return Status::InvalidArgument("--config: cannot read '" + path + "'");
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_config(in);
  } catch (const std::exception& e) {
    return Status::InvalidArgument("--config '" + path + "': " + e.what());
  }
  for (const auto& item : items) {
    if (item.name == "++" || item.name == "--") continue;  // section markers
    if (item.inputs.empty()) continue;                     // an empty list keeps the default
    out->push_back({"--" + item.fullname(), item.inputs});
  }
  return Status::OK();
}

}  // namespace

Result<BrokerConfig> ParseBrokerConfig(int argc, const char* const* argv) {
  BrokerConfig c;
  CLI::App app{"rill-broker: a Rill broker node", "rill-broker"};
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);

  std::string config_path;
  app.add_option("--config", config_path, "TOML config file (command-line options win)");
  app.add_option("--node.id", c.node_id, "This node's id (unique in the cluster)");
  app.add_option("--node.roles", c.roles, "broker, controller or both")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->check(CLI::IsMember({"broker", "controller"}));
  app.add_option("--node.rack", c.rack, "Rack id (informational)");
  app.add_option("--data.dir,--data-dir", c.data_dir, "Directory for logs and metadata");
  std::string client = c.client_listener.ToString(), internal = c.internal_listener.ToString(),
              http = c.http_listener.ToString();
  app.add_option("--listeners.client", client, "Client gRPC API host:port (port 0 = any free)");
  app.add_option("--listeners.internal", internal,
                 "Internal gRPC (controller, replication) host:port (port 0 = any free)");
  app.add_option("--listeners.http", http, "HTTP /metrics /healthz /readyz host:port");
  app.add_option("--listeners.advertised_host", c.advertised_host,
                 "Host name given to clients in metadata");
  std::string advertised_client, advertised_internal;
  app.add_option("--listeners.advertised_client", advertised_client,
                 "host:port clients are told to connect to, when not the bound one (a mapped "
                 "port); port 0 = the bound port (default: advertised_host and the bound port)");
  app.add_option("--listeners.advertised_internal", advertised_internal,
                 "host:port other nodes are told to dial for the internal listener (replication, "
                 "the metadata log of learners), when not the bound one; port 0 = the bound port "
                 "(default: advertised_host and the bound port)");
  app.add_option("--listeners.ports_file,--ports-file", c.ports_file,
                 "Write the bound ports (client=, internal=, http=) to this file");
  app.add_option("--controller.voters", c.voters,
                 "Controller quorum: id@host:port,... (internal listeners)");
  app.add_option("--controller.cluster_id", c.cluster_id, "Cluster id when bootstrapping");
  app.add_option("--controller.tick_ms", c.tick_ms, "Raft tick")->check(CLI::Range(1, 10000));
  app.add_option("--controller.election_ticks", c.election_ticks, "Raft election timeout in ticks")
      ->check(CLI::Range(2, 100000));
  app.add_option("--controller.heartbeat_ticks", c.heartbeat_ticks, "Raft heartbeat in ticks")
      ->check(CLI::Range(1, 100000));
  app.add_option("--controller.snapshot_every_records", c.snapshot_every_records,
                 "Metadata snapshot interval in records");
  app.add_option("--broker.session_timeout_ms,--broker.session.timeout.ms",
                 c.broker_session_timeout_ms,
                 "Fence a broker (and move its leaderships) after this long without a heartbeat")
      ->check(CLI::Range(100, 3600000));
  app.add_option("--broker.controlled_shutdown_timeout_ms", c.controlled_shutdown_timeout_ms,
                 "On SIGTERM, wait at most this long for the controller to move this broker's "
                 "leaderships before stopping (0 = stop at once)")
      ->check(CLI::Range(0, 600000));
  app.add_option("--controller.auto_leader_rebalance_enable,--auto.leader.rebalance.enable",
                 c.auto_leader_rebalance,
                 "Move leadership back to each partition's first replica once it is in the ISR");
  app.add_option("--controller.leader_rebalance_interval_ms", c.leader_rebalance_interval_ms,
                 "How often the active controller checks for partitions led by another than "
                 "their first replica")
      ->check(CLI::Range(100, 86400000));
  app.add_option("--replication.replica_lag_time_max_ms,--replica.lag.time.max.ms",
                 c.replica_lag_time_max_ms,
                 "A follower not durably caught up for this long leaves the ISR")
      ->check(CLI::Range(int64_t{10}, int64_t{1} << 40));
  app.add_option("--replication.fetch_max_wait_ms,--replica.fetch.wait.max.ms",
                 c.replica_fetch_max_wait_ms,
                 "How long a leader holds a follower fetch that has nothing new")
      ->check(CLI::Range(1, 60000));
  app.add_option("--flush.policy", c.flush_policy, "Default flush policy: group | interval | none")
      ->check(CLI::IsMember({"group", "interval", "none"}));
  app.add_option("--flush.interval_ms", c.flush_interval_ms, "fsync period for policy interval")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--storage.preallocate_bytes", c.preallocate_bytes,
                 "Bytes each partition's active segment is zero-filled ahead of its end, so group "
                 "fsyncs overwrite written space (0 = off)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 34));
  app.add_option("--storage.cache_behind_bytes", c.cache_behind_bytes,
                 "Page cache kept per partition behind the synced end; older synced data is "
                 "dropped from the cache after each fsync (-1 = keep, the kernel decides)")
      ->check(CLI::Range(int64_t{-1}, int64_t{1} << 40));
  app.add_option("--storage.standby_segment_bytes", c.standby_segment_bytes,
                 "First standby segment of a partition whose fsync groups are small: zeros written "
                 "between groups (at most twice the appended bytes) and rolled into early, so "
                 "group fsyncs overwrite written space; each next one doubles up to segment.bytes "
                 "(0 = off)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 32));
  app.add_option("--storage.standby_budget_bytes", c.standby_budget_bytes,
                 "Zero-filled standby segment bytes all partitions together may hold; a "
                 "partition starts a standby only while the budget has room (0 = no bound)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 50));
  app.add_option("--storage.remove_step_bytes", c.remove_step_bytes,
                 "Files that retention or truncation drop are shrunk in steps of this many bytes, "
                 "each synced, before the unlink, so the disk's trim of the freed blocks never "
                 "stalls other fsyncs for long (0 = unlink at once)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 32));
  app.add_option("--storage.remove_bytes_per_sec", c.remove_bytes_per_sec,
                 "Rate at which dropped files are shrunk (0 = no pause between steps)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  app.add_option("--storage.flush_threads", c.flush_threads,
                 "Threads that run every partition log's fsyncs (group commit and interval), "
                 "shared by all partitions: the broker's thread count does not grow with its "
                 "partitions")
      ->check(CLI::Range(1, 256));
  app.add_option("--storage.shared_sync_min_logs", c.shared_sync_min_logs,
                 "When at least this many partition logs wait to be synced at once, one syncfs "
                 "of the data directory's filesystem makes them all durable instead of an "
                 "fdatasync each (0 = always one fdatasync per log)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--storage.min_free_bytes", c.min_free_bytes,
                 "Produce is refused (RESOURCE_EXHAUSTED, retried by clients) while the disk "
                 "holding data.dir has less free space than this, and accepted again once space "
                 "is freed (0 = off)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 50));
  app.add_option("--topic.partitions", c.default_partitions, "Default partitions of a new topic")
      ->check(CLI::Range(1, 100000));
  app.add_option("--topic.replication_factor", c.default_replication_factor,
                 "Default replication factor of a new topic (0 = min(3, live brokers))")
      ->check(CLI::Range(0, 100));
  app.add_option("--topic.max_partitions", c.max_partitions_per_topic,
                 "Upper bound on a topic's partition count")
      ->check(CLI::Range(1, 1000000));
  std::vector<std::string> topic_configs;
  app.add_option("--topic.configs", topic_configs,
                 "Broker-wide topic config defaults: key=value,... (e.g. retention.ms=604800000)")
      ->delimiter(',')
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  app.add_option("--limits.max_inflight_produce_bytes", c.max_inflight_produce_bytes,
                 "Produce bytes in flight on the whole broker")
      ->check(CLI::Range(int64_t{1} << 20, int64_t{1} << 40));
  app.add_option("--limits.max_inflight_produce_bytes_per_stream",
                 c.max_inflight_produce_bytes_per_stream,
                 "Produce bytes in flight on one ProduceStream before reading pauses")
      ->check(CLI::Range(int64_t{1} << 16, int64_t{1} << 40));
  app.add_option("--limits.fetch_max_bytes", c.fetch_max_bytes,
                 "Bound on one Fetch response or Subscribe message")
      ->check(CLI::Range(1024, 1 << 30));
  app.add_option("--limits.fetch_partition_max_bytes", c.fetch_partition_max_bytes,
                 "Per-partition fetch bytes when the request says 0")
      ->check(CLI::Range(1024, 1 << 30));
  app.add_option("--limits.fetch_max_wait_ms", c.fetch_max_wait_ms, "Cap on a long poll's wait")
      ->check(CLI::Range(0, 3600000));
  app.add_option("--limits.max_request_bytes", c.max_request_bytes,
                 "Largest gRPC request message accepted")
      ->check(CLI::Range(1 << 16, 1 << 30));
  app.add_option("--limits.max_request_memory_bytes", c.max_request_memory_bytes,
                 "Memory gRPC may hold for client connections (received, unprocessed request "
                 "bytes); beyond it gRPC resets streams and closes connections (0 = no quota)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 40));
  app.add_option("--limits.max_concurrent_streams_per_connection",
                 c.max_concurrent_streams_per_connection,
                 "Concurrent HTTP/2 streams (calls) on one client connection; further calls "
                 "wait in the client (0 = unbounded)")
      ->check(CLI::Range(0, 1 << 30));
  app.add_option("--limits.produce_timeout_ms", c.produce_timeout_ms,
                 "Longest acks=1/-1 wait for durability before REQUEST_TIMED_OUT (caps a "
                 "request's timeout_ms; used when it says 0)")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--limits.io_threads", c.io_threads, "Threads for long polls and pushes")
      ->check(CLI::Range(1, 1024));
  app.add_option("--groups.offsets_partitions", c.groups_offsets_partitions,
                 "Partitions of __consumer_offsets when it is created")
      ->check(CLI::Range(1, 1000));
  app.add_option("--groups.offsets_replication_factor", c.groups_offsets_replication_factor,
                 "Replication factor of __consumer_offsets (0 = topic.replication_factor)")
      ->check(CLI::Range(0, 100));
  app.add_option("--groups.max_groups", c.groups_max_groups,
                 "Groups one coordinator node holds; more get RESOURCE_EXHAUSTED")
      ->check(CLI::Range(1, 10000000));
  app.add_option("--groups.max_members", c.groups_max_members,
                 "Members of one group; more joins get RESOURCE_EXHAUSTED")
      ->check(CLI::Range(1, 100000));
  app.add_option("--groups.session_timeout_ms", c.groups_session_timeout_ms,
                 "Session timeout of a member that asks for 0")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--groups.min_session_timeout_ms", c.groups_min_session_timeout_ms,
                 "Lower bound on a member's session timeout")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--groups.max_session_timeout_ms", c.groups_max_session_timeout_ms,
                 "Upper bound on a member's session timeout")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--groups.heartbeat_interval_ms", c.groups_heartbeat_interval_ms,
                 "Heartbeat interval told to members")
      ->check(CLI::Range(1, 3600000));
  app.add_option("--log.retention_check_interval_ms,--log.retention.check.interval.ms",
                 c.retention_check_interval_ms,
                 "How often retention.ms and retention.bytes are applied to every partition")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--log.level", c.log_level, "trace | debug | info | warn | error | off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));

  bool version = false;  // handled by main() before parsing; listed here for --help
  app.add_flag("--version", version, "Print the version, git revision and build type, and exit");

  // Three sources, each a list of "--section.key value..." arguments: the TOML file (--config,
  // else RILL_CONFIG), the environment (RILL_SECTION_KEY) and the command line. An option given
  // by a later source drops its arguments from the earlier ones, so the order file < environment
  // < command line holds for list options (TakeAll) too, not only for TakeLast ones.
  std::vector<std::string> cli_args(argv + 1, argv + argc);
  for (size_t i = 0; i < cli_args.size(); ++i) {
    const std::string& a = cli_args[i];
    if (a == "--config" && i + 1 < cli_args.size()) {
      config_path = cli_args[i + 1];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    }
  }
  if (config_path.empty()) {
    if (const char* env = std::getenv("RILL_CONFIG"); env != nullptr) config_path = env;
  }
  std::vector<OptionArgs> file_args, env_args;
  if (!config_path.empty()) {
    std::vector<std::pair<std::string, std::vector<std::string>>> items;
    RILL_RETURN_IF_ERROR(ConfigFileArgs(config_path, &items));
    for (auto& [name, values] : items) {
      OptionArgs o;
      o.option = app.get_option_no_throw(name);
      o.tokens.push_back(name);
      o.tokens.insert(o.tokens.end(), values.begin(), values.end());
      file_args.push_back(std::move(o));
    }
  }
  {
    std::map<std::string, const CLI::Option*> by_env;  // RILL_NODE_ID -> --node.id
    for (const CLI::Option* opt : app.get_options()) {
      if (opt == app.get_help_ptr()) continue;
      for (const auto& lname : opt->get_lnames()) {
        if (lname == "version" || lname == "config") continue;
        by_env.emplace(EnvVarName(lname), opt);
      }
    }
    std::vector<std::string> unknown;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
      const std::string entry = *e;
      const auto eq = entry.find('=');
      if (entry.rfind("RILL_", 0) != 0 || eq == std::string::npos) continue;
      const std::string name = entry.substr(0, eq);
      if (name == "RILL_CONFIG" || IsOtherToolsVariable(name)) continue;
      auto it = by_env.find(name);
      if (it == by_env.end()) {
        unknown.push_back(name);
        continue;
      }
      env_args.push_back(
          {it->second, {"--" + it->second->get_lnames().front(), entry.substr(eq + 1)}, name});
    }
    std::sort(unknown.begin(), unknown.end());
    for (const auto& name : unknown) {
      std::fprintf(stderr,
                   "rill-broker: warning: environment variable %s names no option and is ignored "
                   "(options are RILL_ plus the option name upper-cased, dots and dashes as "
                   "underscores: RILL_LISTENERS_CLIENT for listeners.client)\n",
                   name.c_str());
    }
  }
  std::set<const CLI::Option*> on_cli, in_env;
  for (const auto& a : cli_args) {
    if (a.size() < 2 || a[0] != '-') continue;
    if (const CLI::Option* opt = app.get_option_no_throw(a.substr(0, a.find('='))))
      on_cli.insert(opt);
  }
  for (const auto& o : env_args) in_env.insert(o.option);
  std::vector<std::string> args;
  for (const auto& o : file_args) {
    if (o.option != nullptr && (on_cli.count(o.option) || in_env.count(o.option))) continue;
    args.insert(args.end(), o.tokens.begin(), o.tokens.end());
  }
  for (const auto& o : env_args) {
    if (on_cli.count(o.option)) continue;
    args.insert(args.end(), o.tokens.begin(), o.tokens.end());
  }
  args.insert(args.end(), cli_args.begin(), cli_args.end());
  std::reverse(args.begin(), args.end());  // CLI11 parses a reversed vector
  try {
    app.parse(args);
  } catch (const CLI::CallForHelp&) {
    return Status::NotFound(app.help());
  } catch (const CLI::ParseError& e) {
    std::string message = e.what();
    // A bad value from the environment names its variable too.
    for (const auto& o : env_args) {
      if (!on_cli.count(o.option) && message.find(o.tokens.front()) != std::string::npos) {
        message += " (from environment variable " + o.env + "='" + o.tokens.back() + "')";
        break;
      }
    }
    return Status::InvalidArgument(message);
  }

  // Values checked after parsing name their environment variable too when that is where they
  // came from: " (from environment variable RILL_X='v')", else "".
  const auto from_env = [&](const std::string& option) -> std::string {
    for (const auto& o : env_args) {
      if (o.tokens.front() == option && !on_cli.count(o.option)) {
        return " (from environment variable " + o.env + "='" + o.tokens.back() + "')";
      }
    }
    return "";
  };
  for (auto [name, text, out] :
       {std::tuple{"--listeners.client", &client, &c.client_listener},
        std::tuple{"--listeners.internal", &internal, &c.internal_listener},
        std::tuple{"--listeners.http", &http, &c.http_listener}}) {
    auto hp = ParseHostPort(*text);
    if (!hp.ok()) {
      return Status::InvalidArgument(std::string(name) + ": " + hp.status().message() +
                                     from_env(name));
    }
    *out = *hp;
  }
  // An advertised address is dialled, so it needs a host (no "all interfaces" default).
  for (auto [name, text, out] :
       {std::tuple{"--listeners.advertised_client", &advertised_client, &c.advertised_client},
        std::tuple{"--listeners.advertised_internal", &advertised_internal,
                   &c.advertised_internal}}) {
    if (text->empty()) continue;
    auto hp = ParseHostPort(*text);
    if (!hp.ok()) {
      return Status::InvalidArgument(std::string(name) + ": " + hp.status().message() +
                                     from_env(name));
    }
    if (text->front() == ':' || hp->host == "0.0.0.0" || hp->host == "::") {
      return Status::InvalidArgument(std::string(name) + ": '" + *text +
                                     "' needs a host that other processes can dial" +
                                     from_env(name));
    }
    *out = *hp;
  }
  for (const auto& kv : topic_configs) {
    if (kv.empty()) continue;
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument("--topic.configs: '" + kv + "' is not key=value" +
                                     from_env("--topic.configs"));
    }
    const std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    // Checked here, not when the first topic uses it: a bad default would otherwise be shown on
    // every new topic and applied by nothing.
    Status valid = ValidateTopicConfigEntry(key, value);
    if (!valid.ok()) {
      return Status::InvalidArgument("--topic.configs: " + valid.message() +
                                     from_env("--topic.configs"));
    }
    c.topic_defaults[key] = value;
  }
  if (c.roles.empty()) return Status::InvalidArgument("--node.roles: at least one role");
  if (c.data_dir.empty()) return Status::InvalidArgument("--data.dir is empty");
  auto voters = ParseVoters(c.voters);
  if (!voters.ok())
    return Status::InvalidArgument("--controller.voters: " + voters.status().message() +
                                   from_env("--controller.voters"));
  if (c.node_id < 0) return Status::InvalidArgument("--node.id must be >= 0");
  // A controller is a voter of the metadata quorum; a broker-only node follows it as a learner.
  const bool listed =
      voters->empty() || std::any_of(voters->begin(), voters->end(),
                                     [&](const Voter& v) { return v.node_id == c.node_id; });
  const std::string node = "node " + std::to_string(c.node_id);
  if (!c.has_role("broker")) {
    return Status::InvalidArgument(
        "--node.roles: a controller-only node is not supported yet (it would still host "
        "partitions); give " +
        node + " roles broker,controller");
  }
  if (c.has_role("controller") && !listed) {
    return Status::InvalidArgument(
        "--node.roles includes controller, but " + node + " is not in --controller.voters '" +
        c.voters +
        "': list it there, or give it roles = [\"broker\"] to follow the quorum as a "
        "learner");
  }
  if (!c.has_role("controller") && listed) {
    return Status::InvalidArgument(node + " is in --controller.voters '" + c.voters +
                                   "' but --node.roles lacks controller: a voter is a controller");
  }
  return c;
}

}  // namespace rill::broker
