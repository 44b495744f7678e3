// rillctl: the admin and terminal client of Rill.
//
//   rillctl [--bootstrap host:port[,host:port...]] [--json] [--profile FILE] [--version] ...
//     topic create|list|describe|delete [--allow-internal]|alter-config|describe-config|
//           add-partitions
//     cluster info
//     partition elect-leaders [--topic T[:P,P]]...   (none = every partition)
//     group list|describe GROUP|reset-offsets GROUP --topic T[:P,P] --to-... [--execute]|
//           delete GROUP   (reset-offsets only previews without --execute)
//     produce TOPIC [--file F] [--key-separator S] [-Z]   (lines from stdin or a file)
//     consume TOPIC [-o earliest|latest|N|-N|@TIME] [-p P] [-e] [-g GROUP] [-n N] [-f FORMAT]
//     completion bash|zsh
//
// The bootstrap address defaults to $RILL_BOOTSTRAP, then the profile file
// (~/.config/rill/rillctl.toml), then localhost:9092. Every number, offset
// and time is parsed strictly: a bad one is a usage error naming it. `produce` stops reading on
// SIGINT/SIGTERM, flushes what it has buffered (bounded by the delivery timeout) and reports how
// many records were delivered and how many were not.
//
// Exit codes: 0 ok, 1 error (also: group has active members; records not delivered), 2 bad
// usage, 3 not found (unknown topic or group), 4 broker unreachable.

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rill/client/admin.h"
#include "rill/client/consumer.h"
#include "rill/client/producer.h"
#include "rill_version.h"
#include "tool_util.h"

namespace rill::tools {
namespace {

using client::Admin;
using client::AdminConfig;

constexpr std::string_view kTool = "rillctl";

struct Globals {
  std::string bootstrap = "localhost:9092";
  bool json = false;
  int32_t timeout_ms = 30000;
};

// Bounds of numeric options; CLI11 names the value that is out of range.
const CLI::Validator kNonNegative =
    CLI::Range(int64_t{0}, std::numeric_limits<int64_t>::max()).description(">= 0");
const CLI::Validator kPositive =
    CLI::Range(int64_t{1}, std::numeric_limits<int64_t>::max()).description(">= 1");

// A usage error: "rillctl: error: <message>" on stderr, exit code 2.
int Usage(const std::string& message) {
  std::fprintf(stderr, "rillctl: error: %s\n", message.c_str());
  return 2;
}

Result<std::unique_ptr<Admin>> MakeAdmin(const Globals& g) {
  AdminConfig c;
  c.bootstrap = g.bootstrap;
  c.client_id = "rillctl";
  c.request_timeout_ms = g.timeout_ms;
  return Admin::Create(c);
}

std::string JoinInts(const std::vector<int32_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s;
}
std::string JsonInts(const std::vector<int32_t>& v) { return "[" + JoinInts(v) + "]"; }

std::string JsonMap(const std::map<std::string, std::string>& m) {
  std::string s = "{";
  bool first = true;
  for (const auto& [k, v] : m) {
    s += (first ? "" : ",") + JsonString(k) + ":" + JsonString(v);
    first = false;
  }
  return s + "}";
}

// Prints per-topic outcomes; returns the exit code of the first failure.
int ReportOutcomes(const Globals& g, const std::vector<client::TopicOutcome>& outcomes,
                   std::string_view verb) {
  int rc = 0;
  if (g.json) {
    std::string s = "[";
    for (size_t i = 0; i < outcomes.size(); ++i) {
      const auto& o = outcomes[i];
      s += (i ? "," : "") + std::string("{\"topic\":") + JsonString(o.topic) +
           ",\"ok\":" + (o.status.ok() ? "true" : "false");
      if (!o.status.ok()) s += ",\"error\":" + JsonString(o.status.message());
      s += "}";
    }
    std::printf("%s]\n", s.c_str());
  }
  for (const auto& o : outcomes) {
    if (o.status.ok()) {
      if (!g.json)
        std::printf("%.*s topic '%s'\n", static_cast<int>(verb.size()), verb.data(),
                    o.topic.c_str());
    } else {
      const int code = Fail(kTool, o.status);
      if (rc == 0) rc = code;
    }
  }
  return rc;
}

// ------------------------------------------------------------------ topic commands

int TopicCreate(const Globals& g, const std::string& name, int32_t partitions, int32_t rf,
                const std::vector<std::string>& configs, bool validate_only) {
  client::NewTopic t{
      .name = name, .partitions = partitions, .replication_factor = rf, .configs = {}};
  for (const auto& kv : configs) {
    auto p = ParseKeyValue(kv);
    if (!p.ok()) return Usage("--config: " + p.status().message());
    t.configs[p->first] = p->second;
  }
  auto admin = MakeAdmin(g);
  if (!admin.ok()) return Fail(kTool, admin.status());
  auto r = (*admin)->CreateTopics({t}, validate_only);
  if (!r.ok()) return Fail(kTool, r.status());
  return ReportOutcomes(g, *r, validate_only ? "validated" : "created");
}

int TopicList(const Globals& g, bool internal) {
  auto admin = MakeAdmin(g);
  if (!admin.ok()) return Fail(kTool, admin.status());
  auto r = (*admin)->ListTopics(internal);
  if (!r.ok()) return Fail(kTool, r.status());
  if (g.json) {
    std::string s = "[";
    for (size_t i = 0; i < r->size(); ++i) {
      const auto& t = (*r)[i];
      s += (i ? "," : "") + std::string("{\"name\":") + JsonString(t.name) +
           ",\"partitions\":" + std::to_string(t.partitions) +
           ",\"replication_factor\":" + std::to_string(t.replication_factor) +
           ",\"internal\":" + (t.internal ? "true" : "false") + "}";
    }
    std::printf("%s]\n", s.c_str());
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"TOPIC", "PARTITIONS", "REPLICATION", "INTERNAL"}};
  for (const auto& t : *r) {
    rows.push_back({t.name, std::to_string(t.partitions), std::to_string(t.replication_factor),
                    t.internal ? "yes" : "no"});
  }
  PrintTable(rows);
  return 0;
}

bool UnderReplicated(const client::PartitionInfo& p) { return p.isr.size() < p.replicas.size(); }

// Replaces each partition's high watermark with the one its leader answers ListOffsets(latest)
// with: DescribeTopics reports the answering broker's own view, which on a follower lags the
// leader (and is -1 where that broker holds no replica). Partitions without a leader, and every
// partition when the leaders cannot be asked, keep the DescribeTopics figure (a warning says so).
void HighWatermarksFromLeaders(const Globals& g, std::vector<client::TopicInfo>* topics) {
  std::vector<client::TopicPartition> tps;
  for (const auto& t : *topics) {
    if (!t.status.ok()) continue;
    for (const auto& p : t.partitions) {
      if (p.leader_id >= 0) tps.push_back({t.name, p.partition});
    }
  }
  if (tps.empty()) return;
  client::ConsumerConfig cc;
  cc.bootstrap = g.bootstrap;
  cc.client_id = "rillctl";
  cc.request_timeout_ms = g.timeout_ms;
  cc.enable_auto_commit = false;
  auto consumer = client::Consumer::Create(cc);
  Status st = consumer.ok() ? Status::OK() : consumer.status();
  if (st.ok()) st = (*consumer)->Assign(tps);
  if (st.ok()) st = (*consumer)->SeekToEnd(tps);
  if (!st.ok()) {
    std::fprintf(stderr,
                 "%s: warning: high watermarks are the answering broker's, not the leaders' "
                 "(ListOffsets: %s)\n",
                 std::string(kTool).c_str(), st.ToString().c_str());
    return;
  }
  for (auto& t : *topics) {
    if (!t.status.ok()) continue;
    for (auto& p : t.partitions) {
      if (p.leader_id < 0) continue;
      auto hw = (*consumer)->Position({t.name, p.partition});
      if (hw.ok()) p.high_watermark = *hw;
    }
  }
  (void)(*consumer)->Close();
}

int TopicDescribe(const Globals& g, const std::vector<std::string>& names) {
  auto admin = MakeAdmin(g);
  if (!admin.ok()) return Fail(kTool, admin.status());
  auto r = (*admin)->DescribeTopics(names);
  if (!r.ok()) return Fail(kTool, r.status());
  HighWatermarksFromLeaders(g, &*r);
  int rc = 0;
  if (g.json) {
    std::string s = "[";
    for (size_t i = 0; i < r->size(); ++i) {
      const auto& t = (*r)[i];
      s += (i ? "," : "") + std::string("{\"name\":") + JsonString(t.name);
      if (!t.status.ok()) {
        s += ",\"error\":" + JsonString(t.status.message()) + "}";
        continue;
      }
      s += ",\"internal\":" + std::string(t.internal ? "true" : "false") + ",\"partitions\":[";
      for (size_t j = 0; j < t.partitions.size(); ++j) {
        const auto& p = t.partitions[j];
        s += (j ? "," : "") + std::string("{\"partition\":") + std::to_string(p.partition) +
             ",\"leader\":" + std::to_string(p.leader_id) +
             ",\"leader_epoch\":" + std::to_string(p.leader_epoch) +
             ",\"replicas\":" + JsonInts(p.replicas) + ",\"isr\":" + JsonInts(p.isr) +
             ",\"log_start_offset\":" + std::to_string(p.log_start_offset) +
             ",\"high_watermark\":" + std::to_string(p.high_watermark) +
             ",\"log_end_offset\":" + std::to_string(p.log_end_offset) +
             ",\"size_bytes\":" + std::to_string(p.size_bytes) +
             ",\"under_replicated\":" + (UnderReplicated(p) ? "true" : "false") + "}";
      }
      s += "],\"configs\":" + JsonMap(t.configs) + "}";
    }
    std::printf("%s]\n", s.c_str());
  }
  for (const auto& t : *r) {
    if (!t.status.ok()) {
      const int code = Fail(kTool, t.status);
      if (rc == 0) rc = code;
      continue;
    }
    if (g.json) continue;
    const auto under = std::count_if(t.partitions.begin(), t.partitions.end(), UnderReplicated);
    std::printf("Topic: %s  partitions: %zu%s", t.name.c_str(), t.partitions.size(),
                t.internal ? "  (internal)" : "");
    if (under > 0) std::printf("  under-replicated: %ld", static_cast<long>(under));
    std::printf("\n");
    // START, END and SIZE are the answering broker's replica; HIGH_WATERMARK is the leader's.
    std::vector<std::vector<std::string>> rows = {{"PARTITION", "LEADER", "EPOCH", "REPLICAS",
                                                   "ISR", "START", "HIGH_WATERMARK", "END", "SIZE",
                                                   "UNDER_REPLICATED"}};
    for (const auto& p : t.partitions) {
      rows.push_back({std::to_string(p.partition), std::to_string(p.leader_id),
                      std::to_string(p.leader_epoch), JoinInts(p.replicas), JoinInts(p.isr),
                      std::to_string(p.log_start_offset), std::to_string(p.high_watermark),
                      std::to_string(p.log_end_offset), std::to_string(p.size_bytes),
                      UnderReplicated(p) ? "yes" : "no"});
    }
    PrintTable(rows);
    if (!t.configs.empty()) {
      std::printf("Configs:\n");
      for (const auto& [k, v] : t.configs) std::printf("  %s=%s\n", k.c_str(), v.c_str());
    }
  }
  return rc;
}

int TopicDelete(const Globals& g, const std::vector<std::string>& names, bool allow_internal) {
  auto admin = MakeAdmin(g);
  if (!admin.ok()) return Fail(kTool, admin.status());
  auto r = (*admin)->DeleteTopics(names, allow_internal);
  if (!r.ok()) return Fail(kTool, r.status());
  return ReportOutcomes(g, *r, "deleted");
}

int TopicAlterConfig(const Globals& g, const std::string& name, const std::vector<std::string>& set,
                     const std::vector<std::string>& reset, bool validate_only) {
  std::map<std::string, std::string> m;
  for (const auto& kv : set) {
    auto p = ParseKeyValue(kv);
    if (!p.ok()) return Usage("--set: " + p.status().message());
    m[p->first] = p->second;
  }
  if (m.empty() && reset.empty()) {
    return Fail(kTool, Status::InvalidArgument("nothing to change: give --set k=v or --delete k"));
  }
  auto admin = MakeAdmin(g);
  if (!admin.ok()) return Fail(kTool, admin.status());
  Status st = (*admin)->AlterConfigs(name, m, reset, validate_only);
  if (!st.ok()) return Fail(kTool, st);
  if (g.json) {
    std::printf("{\"topic\":%s,\"ok\":true}\n", JsonString(name).c_str());
  } else {
    std::printf("%s configs of topic '%s'\n", validate_only ? "validated" : "altered",
                name.c_str());
  }
  return 0;
}

int TopicDescribeConfigs(const Globals& g, const std::string& name) {
  auto admin = MakeAdmin(g);
  if (!admin.ok()) return Fail(kTool, admin.status());
  auto r = (*admin)->DescribeConfigs(name);
  if (!r.ok()) return Fail(kTool, r.status());
  if (g.json) {
    std::string s = "[";
    for (size_t i = 0; i < r->size(); ++i) {
      const auto& e = (*r)[i];
      s += (i ? "," : "") + std::string("{\"name\":") + JsonString(e.name) +
           ",\"value\":" + JsonString(e.value) +
           ",\"default\":" + (e.is_default ? "true" : "false") + "}";
    }
    std::printf("%s]\n", s.c_str());
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"CONFIG", "VALUE", "DEFAULT"}};
  for (const auto& e : *r) rows.push_back({e.name, e.value, e.is_default ? "yes" : "no"});
  PrintTable(rows);
  return 0;
}

int TopicAddPartitions(const Globals& g, const std::string& name, int32_t total) {
  auto admin = MakeAdmin(g);
  if (!admin.ok()) return Fail(kTool, admin.status());
  Status st = (*admin)->CreatePartitions(name, total);
  if (!st.ok()) return Fail(kTool, st);
  if (g.json) {
    std::printf("{\"topic\":%s,\"partitions\":%d}\n", JsonString(name).c_str(), total);
  } else {
    std::printf("topic '%s' now has %d partitions\n", name.c_str(), total);
  }
  return 0;
}

int ClusterInfo(const Globals& g) {
  auto admin = MakeAdmin(g);
  if (!admin.ok()) return Fail(kTool, admin.status());
  auto r = (*admin)->DescribeCluster();
  if (!r.ok()) return Fail(kTool, r.status());
  if (g.json) {
    std::string s = "{\"cluster_id\":" + JsonString(r->cluster_id) +
                    ",\"controller_id\":" + std::to_string(r->controller_id) + ",\"brokers\":[";
    for (size_t i = 0; i < r->brokers.size(); ++i) {
      const auto& b = r->brokers[i];
      s += (i ? "," : "") + std::string("{\"node_id\":") + std::to_string(b.node_id) +
           ",\"host\":" + JsonString(b.host) + ",\"port\":" + std::to_string(b.port) +
           ",\"rack\":" + JsonString(b.rack) + ",\"fenced\":" + (b.fenced ? "true" : "false") +
           "}";
    }
    std::printf("%s]}\n", s.c_str());
    return 0;
  }
  std::printf("Cluster: %s  controller: %d\n", r->cluster_id.c_str(), r->controller_id);
  std::vector<std::vector<std::string>> rows = {{"NODE", "HOST", "PORT", "RACK", "STATE"}};
  for (const auto& b : r->brokers) {
    std::string state = b.fenced ? "fenced" : "unfenced";
    if (b.node_id == r->controller_id) state += " (active controller)";
    rows.push_back({std::to_string(b.node_id), b.host, std::to_string(b.port), b.rack, state});
  }
  PrintTable(rows);
  return 0;
}

// ------------------------------------------------------------------ partition commands

int PartitionElectLeaders(const Globals& g, const std::vector<std::string>& topic_args) {
  std::map<std::string, std::vector<int32_t>> targets;
  for (const auto& arg : topic_args) {
    auto tp = ParseTopicPartitions(arg);
    if (!tp.ok()) return Usage("--topic: " + tp.status().message());
    auto& partitions = targets[tp->topic];
    partitions.insert(partitions.end(), tp->partitions.begin(), tp->partitions.end());
  }
  auto admin = MakeAdmin(g);
  if (!admin.ok()) return Fail(kTool, admin.status());
  auto r = (*admin)->ElectLeaders(targets);
  if (!r.ok()) return Fail(kTool, r.status());
  // ELECTION_NOT_NEEDED is success; anything else that did not move is reported and exits 1.
  auto outcome = [](const client::ElectionResult& e) -> std::string {
    if (e.status.ok()) return "ELECTED";
    std::string m = e.status.message();
    return m.substr(0, m.find(':'));
  };
  int rc = 0;
  for (const auto& e : *r) {
    std::string o = outcome(e);
    if (o != "ELECTED" && o != "ELECTION_NOT_NEEDED") rc = o == "UNKNOWN_TOPIC" ? 3 : 1;
  }
  if (g.json) {
    std::string s = "[";
    for (size_t i = 0; i < r->size(); ++i) {
      const auto& e = (*r)[i];
      s += (i ? "," : "") + std::string("{\"topic\":") + JsonString(e.topic) +
           ",\"partition\":" + std::to_string(e.partition) +
           ",\"outcome\":" + JsonString(outcome(e)) +
           ",\"leader\":" + std::to_string(e.leader_id) + "}";
    }
    std::printf("%s]\n", s.c_str());
    return rc;
  }
  std::vector<std::vector<std::string>> rows = {{"TOPIC", "PARTITION", "LEADER", "OUTCOME"}};
  for (const auto& e : *r) {
    rows.push_back({e.topic, std::to_string(e.partition), std::to_string(e.leader_id),
                    e.status.ok() ? "ELECTED" : e.status.message()});
  }
  PrintTable(rows);
  return rc;
}

// ------------------------------------------------------------------ group commands

std::string JsonTopicPartitions(const std::vector<client::TopicPartition>& tps) {
  // [{"topic":"a","partitions":[0,1]}], topics in first-seen order.
  std::vector<std::pair<std::string, std::vector<int32_t>>> by_topic;
  for (const auto& tp : tps) {
    auto it = std::find_if(by_topic.begin(), by_topic.end(),
                           [&](const auto& e) { return e.first == tp.topic; });
    if (it == by_topic.end()) it = by_topic.insert(by_topic.end(), {tp.topic, {}});
    it->second.push_back(tp.partition);
  }
  std::string s = "[";
  for (size_t i = 0; i < by_topic.size(); ++i) {
    s += (i ? "," : "") + std::string("{\"topic\":") + JsonString(by_topic[i].first) +
         ",\"partitions\":" + JsonInts(by_topic[i].second) + "}";
  }
  return s + "]";
}

int GroupList(const Globals& g) {
  auto admin = MakeAdmin(g);
  if (!admin.ok()) return Fail(kTool, admin.status());
  auto r = (*admin)->ListGroups();
  if (!r.ok()) return Fail(kTool, r.status());
  if (g.json) {
    std::string s = "[";
    for (size_t i = 0; i < r->size(); ++i) {
      const auto& l = (*r)[i];
      s += (i ? "," : "") + std::string("{\"group_id\":") + JsonString(l.group_id) +
           ",\"state\":" + JsonString(l.state) + ",\"members\":" + std::to_string(l.members) + "}";
    }
    std::printf("%s]\n", s.c_str());
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {{"GROUP", "STATE", "MEMBERS"}};
  for (const auto& l : *r) rows.push_back({l.group_id, l.state, std::to_string(l.members)});
  PrintTable(rows);
  return 0;
}

int GroupDescribe(const Globals& g, const std::string& group) {
  auto admin = MakeAdmin(g);
  if (!admin.ok()) return Fail(kTool, admin.status());
  auto r = (*admin)->DescribeGroup(group);
  if (!r.ok()) return Fail(kTool, r.status());
  const auto& d = *r;
  if (g.json) {
    std::string s = "{\"group_id\":" + JsonString(d.group_id) +
                    ",\"state\":" + JsonString(d.state) +
                    ",\"group_epoch\":" + std::to_string(d.group_epoch) +
                    ",\"assignor\":" + JsonString(d.assignor) +
                    ",\"coordinator_id\":" + std::to_string(d.coordinator_id) + ",\"members\":[";
    for (size_t i = 0; i < d.members.size(); ++i) {
      const auto& m = d.members[i];
      s += (i ? "," : "") + std::string("{\"member_id\":") + JsonString(m.member_id) +
           ",\"instance_id\":" + JsonString(m.instance_id) +
           ",\"client_id\":" + JsonString(m.client_id) + ",\"host\":" + JsonString(m.host) +
           ",\"member_epoch\":" + std::to_string(m.member_epoch) +
           ",\"assignment\":" + JsonTopicPartitions(m.assignment) +
           ",\"target_assignment\":" + JsonTopicPartitions(m.target_assignment) + "}";
    }
    s += "],\"partitions\":[";
    for (size_t i = 0; i < d.partitions.size(); ++i) {
      const auto& p = d.partitions[i];
      s += (i ? "," : "") + std::string("{\"topic\":") + JsonString(p.topic) +
           ",\"partition\":" + std::to_string(p.partition) +
           ",\"committed_offset\":" + std::to_string(p.committed_offset) +
           ",\"log_end_offset\":" + std::to_string(p.log_end_offset) +
           ",\"lag\":" + std::to_string(p.lag) +
           ",\"owner\":" + (p.owner_member_id.empty() ? "null" : JsonString(p.owner_member_id)) +
           "}";
    }
    s += "],\"total_lag\":" + std::to_string(d.total_lag) + "}";
    std::printf("%s\n", s.c_str());
    return 0;
  }
  std::printf("Group: %s  state: %s  epoch: %d  assignor: %s  coordinator: %d  members: %zu\n",
              d.group_id.c_str(), d.state.c_str(), d.group_epoch,
              d.assignor.empty() ? "-" : d.assignor.c_str(), d.coordinator_id, d.members.size());
  if (!d.members.empty()) {
    std::printf("\n");
    std::vector<std::vector<std::string>> rows = {
        {"MEMBER", "INSTANCE", "CLIENT", "HOST", "EPOCH", "ASSIGNED", "TARGET"}};
    for (const auto& m : d.members) {
      rows.push_back({m.member_id, m.instance_id.empty() ? "-" : m.instance_id,
                      m.client_id.empty() ? "-" : m.client_id, m.host.empty() ? "-" : m.host,
                      std::to_string(m.member_epoch), FormatTopicPartitions(m.assignment),
                      FormatTopicPartitions(m.target_assignment)});
    }
    PrintTable(rows);
  }
  std::printf("\n");
  std::vector<std::vector<std::string>> rows = {
      {"TOPIC", "PARTITION", "COMMITTED", "LOG-END", "LAG", "OWNER"}};
  for (const auto& p : d.partitions) {
    rows.push_back({p.topic, std::to_string(p.partition), OffsetCell(p.committed_offset),
                    std::to_string(p.log_end_offset), std::to_string(p.lag),
                    p.owner_member_id.empty() ? "-" : p.owner_member_id});
  }
  PrintTable(rows);
  std::printf("\nTotal lag: %lld\n", static_cast<long long>(d.total_lag));
  return 0;
}

struct ResetOptions {
  std::string group;
  std::vector<std::string> topics;  // T or T:P,P
  bool to_earliest = false;
  bool to_latest = false;
  std::optional<int64_t> to_offset;
  std::optional<std::string> to_timestamp;  // ms since the epoch or ISO-8601 (ParseTimeMs)
  std::optional<int64_t> shift_by;
  bool dry_run = false;
  bool execute = false;  // without it the reset is only previewed (Kafka's --execute)
  bool create = false;   // a group that does not exist yet gets offsets; refused without it
};

int GroupResetOffsets(const Globals& g, const ResetOptions& o) {
  client::GroupOffsetReset reset;
  const int modes = int{o.to_earliest} + int{o.to_latest} + int{o.to_offset.has_value()} +
                    int{o.to_timestamp.has_value()} + int{o.shift_by.has_value()};
  if (modes != 1) {
    std::fprintf(stderr,
                 "rillctl: error: give exactly one of --to-earliest, --to-latest, --to-offset N, "
                 "--to-timestamp TIME, --shift-by N\n");
    return 2;
  }
  if (o.dry_run && o.execute) return Usage("give --dry-run or --execute, not both");
  using To = client::GroupOffsetReset::To;
  if (o.to_earliest) reset.to = To::kEarliest;
  if (o.to_latest) reset.to = To::kLatest;
  if (o.to_offset) {
    reset.to = To::kOffset;
    reset.value = *o.to_offset;
  }
  if (o.to_timestamp) {
    auto ms = ParseTimeMs(*o.to_timestamp);
    if (!ms.ok()) return Usage("--to-timestamp: " + ms.status().message());
    reset.to = To::kTimestamp;
    reset.value = *ms;
  }
  if (o.shift_by) {
    reset.to = To::kShiftBy;
    reset.value = *o.shift_by;
  }
  for (const auto& arg : o.topics) {
    auto tp = ParseTopicPartitions(arg);
    if (!tp.ok()) {
      std::fprintf(stderr, "rillctl: error: --topic: %s\n", tp.status().message().c_str());
      return 2;
    }
    if (tp->partitions.empty()) {
      reset.topics.push_back(tp->topic);
    } else {
      for (int32_t p : tp->partitions) reset.partitions.push_back({tp->topic, p});
    }
  }
  // A preview unless --execute says otherwise (--dry-run is the explicit preview).
  const bool preview = !o.execute;
  reset.dry_run = preview;
  auto admin = MakeAdmin(g);
  if (!admin.ok()) return Fail(kTool, admin.status());
  // A mistyped group name would otherwise create a new group's offsets without a word.
  if (!o.create) {
    auto d = (*admin)->DescribeGroup(o.group);
    if (!d.ok() && d.status().IsNotFound()) {
      return Fail(kTool, Status::NotFound("group '" + o.group +
                                          "' does not exist (no members, no committed offsets): "
                                          "check the name, or give --create to create its "
                                          "offsets"));
    }
    if (!d.ok()) return Fail(kTool, d.status());
  }
  // The offsets before the reset, to show what changes (best effort: a group that does not
  // exist yet has none).
  std::map<client::TopicPartition, int64_t> before;
  if (auto prev = (*admin)->FetchOffsets(o.group); prev.ok()) {
    for (const auto& p : *prev) before[{p.topic, p.partition}] = p.offset;
  } else if (prev.status().code() == StatusCode::kUnavailable) {
    return Fail(kTool, prev.status());
  }
  auto r = (*admin)->ResetOffsets(o.group, reset);
  if (!r.ok()) {
    const int rc = Fail(kTool, r.status());
    if (r.status().message().rfind("GROUP_NOT_EMPTY", 0) == 0) {
      std::fprintf(stderr,
                   "rillctl: offsets can only be reset while the group has no active members; "
                   "stop its consumers (or wait for their sessions to expire) and retry\n");
    }
    return rc;
  }
  auto previous = [&](const client::GroupOffset& x) {
    auto it = before.find({x.topic, x.partition});
    return it == before.end() ? int64_t{-1} : it->second;
  };
  if (g.json) {
    std::string s = "{\"group_id\":" + JsonString(o.group) +
                    ",\"dry_run\":" + (preview ? "true" : "false") + ",\"partitions\":[";
    for (size_t i = 0; i < r->size(); ++i) {
      const auto& x = (*r)[i];
      s += (i ? "," : "") + std::string("{\"topic\":") + JsonString(x.topic) +
           ",\"partition\":" + std::to_string(x.partition) +
           ",\"previous_offset\":" + std::to_string(previous(x));
      if (x.status.ok()) {
        s += ",\"new_offset\":" + std::to_string(x.offset) + "}";
      } else {
        s += ",\"error\":" + JsonString(x.status.message()) + "}";
      }
    }
    std::printf("%s]}\n", s.c_str());
  } else {
    std::vector<std::vector<std::string>> rows = {{"TOPIC", "PARTITION", "PREVIOUS", "NEW"}};
    for (const auto& x : *r) {
      rows.push_back({x.topic, std::to_string(x.partition), OffsetCell(previous(x)),
                      x.status.ok() ? std::to_string(x.offset) : "error"});
    }
    PrintTable(rows);
  }
  int rc = 0;
  size_t done = 0;
  for (const auto& x : *r) {
    if (x.status.ok()) {
      ++done;
      continue;
    }
    const int code = Fail(kTool, x.status);
    if (rc == 0) rc = code;
  }
  if (!g.json) {
    std::printf(preview ? "dry run: %zu offsets of group '%s' would be reset (nothing committed; "
                          "add --execute to commit them)\n"
                        : "reset %zu offsets of group '%s'\n",
                done, o.group.c_str());
  }
  return rc;
}

int GroupDelete(const Globals& g, const std::string& group) {
  auto admin = MakeAdmin(g);
  if (!admin.ok()) return Fail(kTool, admin.status());
  Status st = (*admin)->DeleteGroup(group);
  if (!st.ok()) return Fail(kTool, st);
  if (g.json) {
    std::printf("{\"group_id\":%s,\"ok\":true}\n", JsonString(group).c_str());
  } else {
    std::printf("deleted group '%s'\n", group.c_str());
  }
  return 0;
}

// ------------------------------------------------------------------ produce

struct ProduceOptions {
  std::string topic;
  std::string file;
  std::string key_separator;
  std::optional<int32_t> partition;
  std::string acks = "all";
  std::string compression = "none";
  double linger_ms = 5;
  std::vector<std::string> headers;
  bool tombstone = false;       // an empty value is sent as null
  std::string input = "value";  // value: a line is a value (or key, separator, value); json
};

// SIGINT and SIGTERM during a produce (or a group consume): a thread of its own takes them with
// sigwait (every other thread has them blocked, so a signal never lands on a gRPC or producer
// thread), records the first in `signal` and wakes the reader through a pipe. A second signal
// exits at once.
class StopSignals {
 public:
  // Blocks SIGINT, SIGTERM (and SIGUSR1, which ends the waiter) in the calling thread, so every
  // thread started after this inherits the mask. Call on the main thread before any other thread
  // (gRPC's included) starts: a thread without the mask would take the signal's default action.
  StopSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
    if (::pipe2(wake_, O_CLOEXEC) != 0) wake_[0] = wake_[1] = -1;
    waiter_ = std::thread([this] {
      int sig = 0;
      while (sigwait(&set_, &sig) == 0) {
        if (sig == SIGUSR1) return;
        if (signal_.exchange(sig) != 0) {
          static constexpr char kMsg[] = "rillctl: second signal: exiting without waiting\n";
          (void)!::write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
          ::_exit(128 + sig);
        }
        if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
      }
    });
  }
  ~StopSignals() {
    pthread_kill(waiter_.native_handle(), SIGUSR1);
    waiter_.join();
    if (wake_[0] >= 0) ::close(wake_[0]);
    if (wake_[1] >= 0) ::close(wake_[1]);
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  int signal() const { return signal_.load(); }
  int wake_fd() const { return wake_[0]; }

 private:
  sigset_t set_{}, old_{};
  int wake_[2] = {-1, -1};
  std::atomic<int> signal_{0};
  std::thread waiter_;
};

// Lines of a file descriptor (stdin or a file), without their '\n'. Stops early, with the lines
// already read but not returned dropped, once `stop` has a signal.
class LineReader {
 public:
  LineReader(int fd, const StopSignals* stop) : fd_(fd), stop_(stop) {}

  // The next line; false at the end of input (a last line without '\n' is still returned), on a
  // read error (error() says which) or once a stop signal arrived.
  bool Next(std::string* line) {
    while (true) {
      if (stop_->signal() != 0) return false;
      const size_t nl = buf_.find('\n', pos_);
      if (nl != std::string::npos) {
        line->assign(buf_, pos_, nl - pos_);
        bytes_read_ += static_cast<int64_t>(nl - pos_ + 1);
        pos_ = nl + 1;
        return true;
      }
      if (eof_) {
        if (pos_ >= buf_.size()) return false;
        line->assign(buf_, pos_, std::string::npos);
        bytes_read_ += static_cast<int64_t>(buf_.size() - pos_);
        pos_ = buf_.size();
        return true;
      }
      buf_.erase(0, pos_);
      pos_ = 0;
      pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_->wake_fd(), POLLIN, 0}};
      if (::poll(fds, stop_->wake_fd() >= 0 ? 2 : 1, -1) < 0) {
        if (errno == EINTR) continue;
        error_ = Status::IOError(std::string("poll: ") + std::strerror(errno));
        return false;
      }
      if (fds[1].revents != 0) continue;  // the stop signal; checked at the top
      char chunk[65536];
      const ssize_t n = ::read(fd_, chunk, sizeof chunk);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        error_ = Status::IOError(std::string("reading input: ") + std::strerror(errno));
        return false;
      }
      if (n == 0) {
        eof_ = true;
      } else {
        buf_.append(chunk, static_cast<size_t>(n));
      }
    }
  }
  int64_t bytes_read() const { return bytes_read_; }
  const Status& error() const { return error_; }

 private:
  int fd_;
  const StopSignals* stop_;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
  int64_t bytes_read_ = 0;
  Status error_;
};

// `stop` must exist before any thread of the process starts (its signal mask is inherited).
int Produce(const Globals& g, const ProduceOptions& o, const StopSignals& stop) {
  auto codec = batch::ParseCompression(o.compression);
  if (!codec) {
    return Usage("--compression: unknown compression '" + o.compression +
                 "' (none, gzip, snappy, lz4, zstd)");
  }
  int32_t acks = 0;
  if (o.acks == "all" || o.acks == "-1") {
    acks = -1;
  } else if (o.acks == "0" || o.acks == "1") {
    acks = o.acks[0] - '0';
  } else {
    return Usage("--acks: '" + o.acks + "' is not 0, 1, -1 or all");
  }
  if (o.input != "value" && o.input != "json") {
    return Usage("--input: '" + o.input + "' is not value or json");
  }
  const bool json_input = o.input == "json";
  if (json_input && !o.key_separator.empty()) {
    return Usage("--key-separator with --input json: the key is the object's \"key\"");
  }
  std::vector<client::Header> headers;
  for (const auto& kv : o.headers) {
    auto p = ParseKeyValue(kv);
    if (!p.ok()) return Usage("--header: " + p.status().message());
    headers.push_back({p->first, p->second});
  }
  int fd = STDIN_FILENO;
  int64_t file_size = -1;
  if (!o.file.empty()) {
    fd = ::open(o.file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      return Fail(kTool, Status::NotFound("cannot open " + o.file + ": " + std::strerror(errno)));
    }
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) file_size = st.st_size;
  }
  struct CloseFd {
    int fd;
    ~CloseFd() {
      if (fd != STDIN_FILENO) ::close(fd);
    }
  } close_fd{fd};

  client::ProducerConfig pc;
  pc.bootstrap = g.bootstrap;
  pc.client_id = "rillctl";
  pc.acks = acks;
  pc.compression = *codec;
  pc.linger_ms = o.linger_ms;
  pc.request_timeout_ms = g.timeout_ms;
  pc.delivery_timeout_ms = std::max(g.timeout_ms * 2, 1000);
  auto producer = client::Producer::Create(pc);
  if (!producer.ok()) return Fail(kTool, producer.status());

  std::atomic<int64_t> acked{0}, failed{0};
  std::mutex err_mu;
  Status first_error;
  auto on_done = [&](const Result<client::RecordMetadata>& r) {
    if (r.ok()) {
      acked.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    failed.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lk(err_mu);
    if (first_error.ok()) first_error = r.status();
  };

  // On a terminal, a progress line (on stderr) once a run lasts over a second: a bar for a
  // file, a count for stdin or a pipe, whose size is unknown.
  const bool progress = ::isatty(STDERR_FILENO);
  const auto start = std::chrono::steady_clock::now();
  auto last_draw = start;
  int64_t sent = 0, bytes = 0;
  client::ProducerRecord rec;
  rec.topic = o.topic;
  rec.partition = o.partition;
  rec.headers = headers;
  LineReader reader(fd, &stop);
  std::string line;
  int64_t line_number = 0;
  Status input_error;  // a line --input json cannot read: reading stops there
  while (reader.Next(&line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (json_input) {
      auto j = ParseJsonRecordLine(line);
      if (!j.ok()) {
        input_error = Status::InvalidArgument("input line " + std::to_string(line_number) + ": " +
                                              j.status().message());
        break;
      }
      rec.key = std::move(j->key);
      rec.value = std::move(j->value);
      rec.timestamp_ms = j->timestamp_ms;
      rec.headers = headers;
      for (auto& [k, v] : j->headers) rec.headers.push_back({std::move(k), std::move(v)});
    } else if (!o.key_separator.empty()) {
      const auto pos = line.find(o.key_separator);
      if (pos == std::string::npos) {
        rec.key.reset();
        rec.value = line;
      } else {
        rec.key = line.substr(0, pos);
        rec.value = line.substr(pos + o.key_separator.size());
      }
    } else {
      rec.value = line;
    }
    if (o.tombstone && rec.value && rec.value->empty()) rec.value.reset();
    bytes += static_cast<int64_t>(rec.value ? rec.value->size() : 0) +
             static_cast<int64_t>(rec.key ? rec.key->size() : 0);
    (*producer)->Send(rec, on_done);
    ++sent;
    // A failure on the first records (unknown topic, broker down) ends the run early.
    if (failed.load(std::memory_order_relaxed) > 0 && acked.load() == 0 && sent < 2) break;
    if (progress && (sent & 1023) == 0) {
      const auto now = std::chrono::steady_clock::now();
      if (now - last_draw > std::chrono::milliseconds(100) &&
          now - start > std::chrono::seconds(1)) {
        last_draw = now;
        const double secs = std::chrono::duration<double>(now - start).count();
        if (file_size > 0) {
          const double frac =
              static_cast<double>(reader.bytes_read()) / static_cast<double>(file_size);
          const int width = 40;
          const int filled = std::clamp(static_cast<int>(frac * width), 0, width);
          std::fprintf(stderr, "\r[%s%s] %5.1f%%  %lld records  %.0f rec/s",
                       std::string(filled, '#').c_str(), std::string(width - filled, ' ').c_str(),
                       frac * 100, static_cast<long long>(sent), secs > 0 ? sent / secs : 0.0);
        } else {
          std::fprintf(stderr, "\r%lld records sent, %lld acknowledged  %.0f rec/s",
                       static_cast<long long>(sent),
                       static_cast<long long>(acked.load(std::memory_order_relaxed)),
                       secs > 0 ? sent / secs : 0.0);
        }
      }
    }
  }
  const int sig = stop.signal();
  if (progress) std::fprintf(stderr, "\r%s\r", std::string(100, ' ').c_str());
  if (sig != 0) {
    std::fprintf(stderr,
                 "rillctl: %s: stopped reading input after %lld records; flushing those not yet "
                 "acknowledged (up to %d ms; a second signal exits at once)\n",
                 sig == SIGINT ? "SIGINT" : "SIGTERM", static_cast<long long>(sent),
                 pc.delivery_timeout_ms);
  }
  (*producer)->Flush();
  (*producer)->Close();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t delivered = acked.load(), not_delivered = sent - delivered;
  if (g.json) {
    std::printf(
        "{\"topic\":%s,\"sent\":%lld,\"acked\":%lld,\"failed\":%lld,\"bytes\":%lld,"
        "\"seconds\":%.3f%s%s}\n",
        JsonString(o.topic).c_str(), static_cast<long long>(sent),
        static_cast<long long>(delivered), static_cast<long long>(not_delivered),
        static_cast<long long>(bytes), secs,
        sig == 0 ? ""
                 : (sig == SIGINT ? ",\"interrupted\":\"SIGINT\"" : ",\"interrupted\":\"SIGTERM\""),
        first_error.ok() ? "" : (",\"error\":" + JsonString(first_error.message())).c_str());
  } else {
    std::fprintf(stderr,
                 "produced %lld records (%lld bytes) to '%s' in %.2f s (%.0f records/s)%s\n",
                 static_cast<long long>(delivered), static_cast<long long>(bytes), o.topic.c_str(),
                 secs, secs > 0 ? delivered / secs : 0.0,
                 not_delivered ? (", " + std::to_string(not_delivered) + " failed").c_str() : "");
  }
  if (sig != 0) {
    std::fprintf(stderr, "rillctl: interrupted: %lld records delivered, %lld not delivered\n",
                 static_cast<long long>(delivered), static_cast<long long>(not_delivered));
  }
  if (!reader.error().ok()) return Fail(kTool, reader.error());
  if (!input_error.ok()) return Fail(kTool, input_error);
  if (!first_error.ok()) return Fail(kTool, first_error);
  if (not_delivered > 0) {
    return Fail(kTool, Status::Failed(std::to_string(not_delivered) + " records not delivered"));
  }
  return 0;
}

// ------------------------------------------------------------------ consume

struct ConsumeOptions {
  std::string topic;
  std::string from = "earliest";
  std::vector<int32_t> partitions;
  int64_t count = -1;
  int64_t idle_timeout_ms = -1;
  bool until_end = false;
  std::string group;
  std::string format = "value";
};

std::string_view Or(const std::optional<std::string_view>& v, std::string_view dflt) {
  return v ? *v : dflt;
}

// Each partition's end offset (ListOffsets latest: the high watermark) now, through a consumer
// of its own so the caller's positions and group membership are untouched.
Result<std::map<client::TopicPartition, int64_t>> EndOffsets(
    const Globals& g, const std::vector<client::TopicPartition>& tps) {
  client::ConsumerConfig cc;
  cc.bootstrap = g.bootstrap;
  cc.client_id = "rillctl";
  cc.request_timeout_ms = g.timeout_ms;
  RILL_ASSIGN_OR_RETURN(auto consumer, client::Consumer::Create(cc));
  RILL_RETURN_IF_ERROR(consumer->Assign(tps));
  RILL_RETURN_IF_ERROR(consumer->SeekToEnd(tps));
  std::map<client::TopicPartition, int64_t> ends;
  for (const auto& tp : tps) {
    RILL_ASSIGN_OR_RETURN(ends[tp], consumer->Position(tp));
  }
  return ends;
}

// `stop` is set for a group consumer (--group): SIGINT/SIGTERM end it cleanly, committing.
int Consume(const Globals& g, const ConsumeOptions& o, const StopSignals* stop) {
  // The output: value, key=value, json, or a kcat-style template (any text with a '%').
  std::optional<RecordTemplate> tmpl;
  if (o.format.find('%') != std::string::npos) {
    auto t = RecordTemplate::Parse(o.format);
    if (!t.ok()) return Usage("--format: " + t.status().message());
    tmpl = std::move(*t);
  } else if (o.format != "value" && o.format != "key=value" && o.format != "json") {
    return Usage("--format: '" + o.format +
                 "' is not value, key=value, json or a template with %-directives (e.g. "
                 "'%t/%p@%o %k=%v\\n')");
  }
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  auto from = ParseStartPosition(o.from, now_ms);
  if (!from.ok()) return Usage("--offset: " + from.status().message());
  const bool grouped = !o.group.empty();
  if (grouped && from->kind != StartPosition::kEarliest && from->kind != StartPosition::kLatest) {
    return Usage("--offset '" + o.from +
                 "' with --group: a group member starts at the group's committed offsets; only "
                 "earliest or latest (where the group has none) can be given");
  }
  if (grouped && !o.partitions.empty()) {
    return Usage("--partition with --group: the group assigns the partitions");
  }

  auto admin = MakeAdmin(g);
  if (!admin.ok()) return Fail(kTool, admin.status());
  auto md = (*admin)->Metadata({o.topic});
  if (!md.ok()) return Fail(kTool, md.status());
  if (md->topics.empty()) {
    return Fail(kTool, Status::NotFound("UNKNOWN_TOPIC: topic '" + o.topic + "' does not exist"));
  }
  if (!md->topics[0].status.ok()) return Fail(kTool, md->topics[0].status);
  const auto num_partitions = static_cast<int32_t>(md->topics[0].partitions.size());
  std::vector<client::TopicPartition> tps;
  if (o.partitions.empty()) {
    for (int32_t p = 0; p < num_partitions; ++p) tps.push_back({o.topic, p});
  } else {
    for (int32_t p : o.partitions) {
      if (p < 0 || p >= num_partitions) {
        return Fail(kTool, Status::NotFound("topic '" + o.topic + "' has no partition " +
                                            std::to_string(p) + " (it has " +
                                            std::to_string(num_partitions) + ")"));
      }
      tps.push_back({o.topic, p});
    }
  }
  // --until-end: where each partition ends now; a partition is done once its position is there.
  std::map<client::TopicPartition, int64_t> ends;
  if (o.until_end) {
    auto e = EndOffsets(g, tps);
    if (!e.ok()) return Fail(kTool, e.status());
    ends = std::move(*e);
  }

  client::ConsumerConfig cc;
  cc.bootstrap = g.bootstrap;
  cc.client_id = "rillctl";
  cc.request_timeout_ms = g.timeout_ms;
  cc.auto_offset_reset = from->kind == StartPosition::kLatest ? client::OffsetReset::kLatest
                                                              : client::OffsetReset::kEarliest;
  cc.group_id = o.group;
  auto consumer = client::Consumer::Create(cc);
  if (!consumer.ok()) return Fail(kTool, consumer.status());
  auto& c = **consumer;
  Status st;
  if (grouped) {
    st = c.Subscribe({o.topic});
  } else {
    st = c.Assign(tps);
    if (st.ok()) {
      switch (from->kind) {
        case StartPosition::kEarliest:
          st = c.SeekToBeginning(tps);
          break;
        case StartPosition::kLatest:
          st = c.SeekToEnd(tps);
          break;
        case StartPosition::kTimestamp:
          st = c.SeekToTimestamp(tps, from->value);
          break;
        case StartPosition::kOffset:
          for (const auto& tp : tps) {
            st = c.Seek(tp, from->value);
            if (!st.ok()) break;
          }
          break;
        case StartPosition::kFromEnd: {
          // N back from the end, not before the log start.
          st = c.SeekToBeginning(tps);
          std::map<client::TopicPartition, int64_t> starts;
          for (const auto& tp : tps) {
            if (!st.ok()) break;
            auto pos = c.Position(tp);
            if (!pos.ok())
              st = pos.status();
            else
              starts[tp] = *pos;
          }
          if (st.ok()) st = c.SeekToEnd(tps);
          for (const auto& tp : tps) {
            if (!st.ok()) break;
            auto end = c.Position(tp);
            if (!end.ok())
              st = end.status();
            else
              st = c.Seek(tp, std::max(starts[tp], *end - from->value));
          }
          break;
        }
      }
    }
  }
  if (!st.ok()) return Fail(kTool, st);

  // With --until-end: every partition this consumer reads has reached its end. A group member
  // counts only its assigned partitions, and not before it has some.
  const auto at_end = [&] {
    const std::vector<client::TopicPartition> mine = grouped ? c.Assignment() : tps;
    if (mine.empty()) return !grouped;
    for (const auto& tp : mine) {
      auto pos = c.Position(tp);
      if (!pos.ok() || *pos < ends[tp]) return false;
    }
    return true;
  };

  int64_t n = 0;
  std::string out;
  auto last_record = std::chrono::steady_clock::now();
  while (o.count < 0 || n < o.count) {
    if (stop != nullptr && stop->signal() != 0) break;
    if (o.until_end && at_end()) break;
    auto records = c.Poll(std::chrono::milliseconds(200));
    if (!records.ok()) return Fail(kTool, records.status());
    if (records->empty()) {
      if (o.idle_timeout_ms >= 0 && std::chrono::steady_clock::now() - last_record >=
                                        std::chrono::milliseconds(o.idle_timeout_ms)) {
        break;
      }
      continue;
    }
    last_record = std::chrono::steady_clock::now();
    for (const auto& r : *records) {
      if (o.count >= 0 && n >= o.count) break;
      ++n;
      out.clear();
      if (tmpl) {
        tmpl->Format(r, &out);
      } else if (o.format == "value") {
        out.append(Or(r.value, ""));
        out += '\n';
      } else if (o.format == "key=value") {
        out.append(Or(r.key, ""));
        out += '=';
        out.append(Or(r.value, ""));
        out += '\n';
      } else {
        out = "{\"topic\":" + JsonString(r.topic) +
              ",\"partition\":" + std::to_string(r.partition) +
              ",\"offset\":" + std::to_string(r.offset) +
              ",\"timestamp\":" + std::to_string(r.timestamp_ms) +
              ",\"key\":" + (r.key ? JsonString(*r.key) : "null") +
              ",\"value\":" + (r.value ? JsonString(*r.value) : "null") + ",\"headers\":{";
        for (size_t i = 0; i < r.headers.size(); ++i) {
          out += (i ? "," : "") + JsonString(r.headers[i].first) + ":" +
                 (r.headers[i].second ? JsonString(*r.headers[i].second) : "null");
        }
        out += "}}\n";
      }
      std::fwrite(out.data(), 1, out.size(), stdout);
    }
    std::fflush(stdout);
  }
  // A group member commits what it printed and leaves the group.
  if (grouped) {
    if (Status closed = c.Close(); !closed.ok()) return Fail(kTool, closed);
  }
  if (!g.json && ::isatty(STDERR_FILENO)) {
    std::fprintf(stderr, "consumed %lld records\n", static_cast<long long>(n));
  }
  return 0;
}

// ------------------------------------------------------------------ profile

// The profile's default place: $XDG_CONFIG_HOME/rill/rillctl.toml, else
// $HOME/.config/rill/rillctl.toml; empty when neither variable is set.
std::string DefaultProfilePath() {
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && *xdg != '\0') {
    return std::string(xdg) + "/rill/rillctl.toml";
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/.config/rill/rillctl.toml";
  }
  return "";
}

// Reads the profile at `path` (TOML: `bootstrap = "host:port,..."`, `timeout-ms = N`) into the
// global options that neither the command line nor the environment set (`*_given`). A missing
// file is no error unless `required` (--profile named it); an unknown key or a bad value is
// InvalidArgument naming it and the file.
Status ApplyProfile(const std::string& path, bool required, bool bootstrap_given,
                    bool timeout_given, Globals* g, bool* bootstrap_from_profile) {
  std::ifstream in(path);
  if (!in) {
    return required ? Status::InvalidArgument("--profile: cannot read '" + path + "'")
                    : Status::OK();
  }
  std::vector<CLI::ConfigItem> items;
  try {
    items = CLI::ConfigTOML().from_config(in);
  } catch (const std::exception& e) {
    return Status::InvalidArgument("profile '" + path + "': " + e.what());
  }
  for (const auto& item : items) {
    if (item.name == "++" || item.name == "--") continue;  // section markers
    const std::string key = item.fullname();
    const std::string value = item.inputs.empty() ? "" : item.inputs.front();
    if (key == "bootstrap") {
      if (!bootstrap_given) {
        g->bootstrap = value;
        *bootstrap_from_profile = true;
      }
    } else if (key == "timeout-ms" || key == "timeout_ms") {
      auto n = ParseInt(value);
      if (!n.ok() || *n < 1 || *n > std::numeric_limits<int32_t>::max()) {
        return Status::InvalidArgument("profile '" + path + "': timeout-ms '" + value +
                                       "' is not a positive number of milliseconds");
      }
      if (!timeout_given) g->timeout_ms = static_cast<int32_t>(*n);
    } else {
      return Status::InvalidArgument("profile '" + path + "': unknown key '" + key +
                                     "' (known: bootstrap, timeout-ms)");
    }
  }
  return Status::OK();
}

// ------------------------------------------------------------------ completion

// Every command path of `app` ("" for the top level, "topic", "topic create", ...) with the words
// that may follow it: its subcommands and its options' names.
void CollectWords(const CLI::App* app, const std::string& path,
                  std::vector<std::pair<std::string, std::vector<std::string>>>* out) {
  std::vector<std::string> words;
  for (const CLI::App* sub : app->get_subcommands({})) words.push_back(sub->get_name());
  for (const CLI::Option* opt : app->get_options()) {
    if (!opt->nonpositional()) continue;
    for (const auto& l : opt->get_lnames()) words.push_back("--" + l);
    for (const auto& s : opt->get_snames()) words.push_back("-" + s);
  }
  out->push_back({path, words});
  for (const CLI::App* sub : app->get_subcommands({})) {
    CollectWords(sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), out);
  }
}

// A bash completion function for rillctl, generated from the command tree (so it cannot drift
// from it); zsh gets the same through bashcompinit. The words before the cursor that name a
// subcommand of the path so far extend the path; the path picks the candidate words.
std::string CompletionScript(const CLI::App& app, const std::string& shell) {
  std::vector<std::pair<std::string, std::vector<std::string>>> paths;
  CollectWords(&app, "", &paths);
  std::string s;
  if (shell == "zsh") {
    s += "# rillctl completion for zsh: source <(rillctl completion zsh) in ~/.zshrc\n"
         "autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n";
  } else {
    s += "# rillctl completion for bash: source <(rillctl completion bash) in ~/.bashrc\n";
  }
  s += "_rillctl() {\n"
       "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" path=\"\" w i words\n"
       "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
       "    w=\"${COMP_WORDS[i]}\"\n"
       "    case \"$path|$w\" in\n";
  for (const auto& [path, words] : paths) {
    const auto last = path.rfind(' ');
    if (path.empty()) continue;
    const std::string parent = last == std::string::npos ? "" : path.substr(0, last);
    const std::string name = last == std::string::npos ? path : path.substr(last + 1);
    s += "      \"" + parent + "|" + name + "\") path=\"" + path + "\" ;;\n";
  }
  s += "    esac\n"
       "  done\n"
       "  case \"$path\" in\n";
  for (const auto& [path, words] : paths) {
    std::string joined;
    for (const auto& w : words) joined += (joined.empty() ? "" : " ") + w;
    s += "    \"" + path + "\") words=\"" + joined + "\" ;;\n";
  }
  s += "  esac\n"
       "  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
       "}\n"
       "complete -F _rillctl rillctl\n";
  return s;
}

// For a parse error: the first word that names no command at its level ("unknown command 'topc'
// (valid: ...)"), or a level left without its command ("'rillctl topic' needs a command: ...").
// Nullopt when the commands are fine (the error is about an option or an argument).
std::optional<std::string> CommandError(CLI::App& app, int argc, char** argv) {
  CLI::App* level = &app;
  std::string path = "rillctl";
  auto names = [](CLI::App* a) {
    std::string out;
    for (CLI::App* sub : a->get_subcommands([](CLI::App*) { return true; })) {
      out += (out.empty() ? "" : ", ") + sub->get_name();
    }
    return out;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--") return std::nullopt;
    if (a.size() > 1 && a[0] == '-') {
      // The global options that take a value (the only options above a leaf command).
      if (a == "-b" || a == "--bootstrap" || a == "--timeout-ms") ++i;
      continue;
    }
    auto subs = level->get_subcommands([](CLI::App*) { return true; });
    if (subs.empty()) return std::nullopt;  // a leaf command: the rest are its arguments
    auto it =
        std::find_if(subs.begin(), subs.end(), [&](CLI::App* s) { return s->get_name() == a; });
    if (it == subs.end()) {
      return "unknown command '" + a + "'" + (level == &app ? "" : " for '" + path + "'") +
             " (valid: " + names(level) + ")";
    }
    level = *it;
    path += " " + a;
  }
  if (!level->get_subcommands([](CLI::App*) { return true; }).empty()) {
    return "'" + path + "' needs a command: " + names(level);
  }
  return std::nullopt;
}

// Of several bootstrap addresses, the first whose broker answers DescribeCluster (each tried
// with the request timeout capped at 5 s); Unavailable naming them all when none does.
Result<std::string> FirstReachable(const Globals& g, const std::vector<std::string>& addresses) {
  std::string errors;
  for (const auto& address : addresses) {
    AdminConfig c;
    c.bootstrap = address;
    c.client_id = "rillctl";
    c.request_timeout_ms = std::min(g.timeout_ms, 5000);
    auto admin = Admin::Create(c);
    if (!admin.ok()) return admin.status();
    auto r = (*admin)->DescribeCluster();
    if (r.ok()) return address;
    errors += "; " + r.status().message();
  }
  std::string all;
  for (const auto& a : addresses) all += (all.empty() ? "" : ",") + a;
  return Status::Unavailable("cannot reach broker at any bootstrap address of '" + all + "'" +
                             errors);
}

int Main(int argc, char** argv) {
  CLI::App app{
      "rillctl: manage topics and consumer groups, produce/consume records on a Rill cluster"};
  app.footer(
      "Every number, offset and time is parsed strictly; a bad one is a usage error naming it.\n"
      "Settings: the command line, then RILL_BOOTSTRAP, then the profile file "
      "($XDG_CONFIG_HOME/rill/rillctl.toml or ~/.config/rill/rillctl.toml: bootstrap = "
      "\"host:port\", timeout-ms = N), then the defaults.\n"
      "produce: SIGINT/SIGTERM stop reading input, flush what is buffered (up to the delivery "
      "timeout, twice --timeout-ms) and report how many records were delivered and how many "
      "were not.\n"
      "Exit codes: 0 ok, 1 error (also: group has active members; records not delivered), 2 bad "
      "usage, 3 not found (topic or group), 4 broker unreachable.");
  app.set_version_flag("--version", std::string("rillctl ") + RILL_VERSION_LINE,
                       "Print the version, git revision and build type, and exit");
  Globals g;
  app.add_option("--bootstrap,-b", g.bootstrap,
                 "Broker address host:port, or several as host:port,host:port (the first that "
                 "answers is used); default $RILL_BOOTSTRAP, then localhost:9092")
      ->envname("RILL_BOOTSTRAP")
      ->capture_default_str()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_flag("--json", g.json, "Machine-readable JSON output");
  std::string profile;
  app.add_option("--profile", profile,
                 "Profile file with defaults for --bootstrap and --timeout-ms (TOML: bootstrap = "
                 "\"host:port\", timeout-ms = 5000), below the command line and RILL_BOOTSTRAP; "
                 "default $XDG_CONFIG_HOME/rill/rillctl.toml or ~/.config/rill/rillctl.toml, "
                 "used when it exists");
  app.add_option("--timeout-ms", g.timeout_ms, "Deadline of each request")
      ->capture_default_str()
      ->check(kPositive);
  app.require_subcommand(1);
  // --bootstrap, --json and --timeout-ms also work after the subcommand
  // (`rillctl topic describe t --json`); subcommands inherit this.
  app.fallthrough();
  // The chosen command, run after parsing once the bootstrap list is checked and resolved.
  std::function<int()> action;

  auto* topic = app.add_subcommand("topic", "Create, list, describe, delete and configure topics");
  topic->require_subcommand(1);

  std::string name;
  int32_t partitions = 0, rf = 0, total = 0;
  std::vector<std::string> configs, reset, names;
  bool validate_only = false, internal = false, allow_internal = false;

  auto* create = topic->add_subcommand("create", "Create a topic");
  create->add_option("name", name, "Topic name")->required();
  create->add_option("--partitions,-p", partitions, "Partition count (0 = broker default)")
      ->check(kNonNegative);
  create->add_option("--replication-factor,-r", rf, "Replication factor (0 = broker default)")
      ->check(kNonNegative);
  create->add_option("--config,-c", configs, "Topic config key=value (repeatable)");
  create->add_flag("--validate-only", validate_only, "Check the request without creating");
  create->callback([&] {
    action = [&] { return TopicCreate(g, name, partitions, rf, configs, validate_only); };
  });

  auto* list = topic->add_subcommand("list", "List topics");
  list->add_flag("--internal", internal, "Include internal topics");
  list->callback([&] { action = [&] { return TopicList(g, internal); }; });

  auto* describe =
      topic->add_subcommand("describe", "Describe topics: partitions, offsets, configs");
  describe->add_option("names", names, "Topic names")->required();
  describe->callback([&] { action = [&] { return TopicDescribe(g, names); }; });

  auto* del = topic->add_subcommand("delete", "Delete topics");
  del->add_option("names", names, "Topic names")->required();
  del->add_flag("--allow-internal", allow_internal,
                "Also delete internal topics (__consumer_offsets: every group's committed "
                "offsets); refused without it");
  del->callback([&] { action = [&] { return TopicDelete(g, names, allow_internal); }; });

  auto* alter = topic->add_subcommand("alter-config", "Set or reset topic configs");
  alter->add_option("name", name, "Topic name")->required();
  alter->add_option("--set,-s", configs, "key=value to set (repeatable)");
  alter->add_option("--delete,-d", reset, "Config to reset to its default (repeatable)");
  alter->add_flag("--validate-only", validate_only, "Check the request without applying");
  alter->callback(
      [&] { action = [&] { return TopicAlterConfig(g, name, configs, reset, validate_only); }; });

  auto* dconf = topic->add_subcommand("describe-config", "Show a topic's configs");
  dconf->add_option("name", name, "Topic name")->required();
  dconf->callback([&] { action = [&] { return TopicDescribeConfigs(g, name); }; });

  auto* addp = topic->add_subcommand("add-partitions", "Grow a topic to a new partition count");
  addp->add_option("name", name, "Topic name")->required();
  addp->add_option("--total,-t", total, "New total partition count")->required()->check(kPositive);
  addp->callback([&] { action = [&] { return TopicAddPartitions(g, name, total); }; });

  auto* cluster = app.add_subcommand("cluster", "Cluster information");
  cluster->require_subcommand(1);
  auto* info = cluster->add_subcommand("info", "Cluster id, controller and brokers");
  info->callback([&] { action = [&] { return ClusterInfo(g); }; });

  auto* partition = app.add_subcommand("partition", "Partition leadership");
  partition->require_subcommand(1);
  std::vector<std::string> elect_topics;
  auto* elect = partition->add_subcommand(
      "elect-leaders",
      "Move leadership back to each partition's preferred (first) replica when it is in the ISR");
  elect->add_option("--topic,-t", elect_topics,
                    "TOPIC (every partition) or TOPIC:P,P,... (repeatable; none = every partition "
                    "of every topic)");
  elect->callback([&] { action = [&] { return PartitionElectLeaders(g, elect_topics); }; });

  auto* group = app.add_subcommand("group", "List, describe, reset and delete consumer groups");
  group->require_subcommand(1);
  std::string group_id;
  auto* glist = group->add_subcommand("list", "List consumer groups");
  glist->callback([&] { action = [&] { return GroupList(g); }; });
  auto* gdesc = group->add_subcommand(
      "describe", "Members, and per partition the committed offset, log end and lag");
  gdesc->add_option("group", group_id, "Group id")->required();
  gdesc->callback([&] { action = [&] { return GroupDescribe(g, group_id); }; });
  ResetOptions ro;
  auto* greset = group->add_subcommand(
      "reset-offsets",
      "Move a group's committed offsets (only while it has no active members); shows the new "
      "offsets and commits them only with --execute");
  greset->add_option("group", ro.group, "Group id")->required();
  greset->add_option("--topic,-t", ro.topics,
                     "TOPIC (every partition) or TOPIC:P,P,... (repeatable; none = every "
                     "partition the group has committed)");
  greset->add_flag("--to-earliest", ro.to_earliest, "To the log start offset");
  greset->add_flag("--to-latest", ro.to_latest, "To the log end (high watermark)");
  greset->add_option("--to-offset", ro.to_offset, "To this offset (clamped to the log)");
  greset->add_option("--to-timestamp", ro.to_timestamp,
                     "To the first record at or after this time: ms since the epoch or ISO-8601 "
                     "with a zone (2026-12-05T10:00:00Z)");
  greset->add_option("--shift-by", ro.shift_by, "Shift the committed offset by N (may be < 0)");
  greset->add_flag("--create", ro.create,
                   "Also for a group that does not exist yet (creates its committed offsets); "
                   "an unknown group is refused without it");
  greset->add_flag("--execute", ro.execute,
                   "Commit the new offsets; without it they are only shown (a preview)");
  greset->add_flag("--dry-run", ro.dry_run,
                   "Show the new offsets without committing them (the "
                   "default; kept for scripts)");
  greset->callback([&] { action = [&] { return GroupResetOffsets(g, ro); }; });
  auto* gdel = group->add_subcommand("delete", "Delete a group and its committed offsets");
  gdel->add_option("group", group_id, "Group id")->required();
  gdel->callback([&] { action = [&] { return GroupDelete(g, group_id); }; });

  ProduceOptions po;
  int32_t produce_partition = -1;
  // For produce and a group consume, made before any other thread starts.
  std::optional<StopSignals> stop_signals;
  auto* produce = app.add_subcommand(
      "produce",
      "Produce lines from stdin or a file as records (on a terminal, a progress line on stderr "
      "once a run lasts over a second; SIGINT/SIGTERM flush what was read and report)");
  produce->add_option("topic", po.topic, "Topic")->required();
  produce->add_option("--file,-f", po.file, "Read lines from this file instead of stdin");
  produce->add_option("--key-separator,-k", po.key_separator,
                      "Split each line into key and value at the first occurrence");
  produce->add_option("--partition,-p", produce_partition, "Partition (default: by key / sticky)")
      ->check(kNonNegative);
  produce->add_option("--acks", po.acks, "0, 1, or -1 / all")->capture_default_str();
  produce->add_option("--compression", po.compression, "none, gzip, snappy, lz4, zstd")
      ->capture_default_str();
  produce->add_option("--linger-ms", po.linger_ms, "Batching delay, ms (0.5 is 500 us)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 900'000.0).description("0 to 900000"));
  produce->add_option("--header,-H", po.headers, "Header key=value added to every record");
  produce
      ->add_option("--input", po.input,
                   "value: each line is a value (or key, separator, value with -k); json: each "
                   "line is an object as consume --format json prints it (key, value, headers, "
                   "timestamp; null for a null key or value), so consume -f json | produce "
                   "--input json copies records")
      ->capture_default_str();
  produce->add_flag("--tombstone,-Z", po.tombstone,
                    "Send an empty value (an empty line, or nothing after the key separator) as "
                    "null: a tombstone (kcat -Z)");
  produce->callback([&] {
    action = [&] {
      if (produce_partition >= 0) po.partition = produce_partition;
      return Produce(g, po, *stop_signals);
    };
  });

  std::string shell;
  auto* completion = app.add_subcommand(
      "completion",
      "Print a shell completion script: source <(rillctl completion bash), or zsh in ~/.zshrc");
  completion->add_option("shell", shell, "bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));
  completion->callback([&] {
    action = [&] {
      std::fputs(CompletionScript(app, shell).c_str(), stdout);
      return 0;
    };
  });

  ConsumeOptions co;
  auto* consume = app.add_subcommand("consume", "Print records of a topic");
  consume->add_option("topic", co.topic, "Topic")->required();
  consume
      ->add_option("--offset,-o,--from", co.from,
                   "Where to start in each partition: earliest (beginning), latest (end), N (an "
                   "offset), -N (N records back from the end), @TIME (the first record at or after "
                   "TIME: ms since the epoch, ISO-8601 with a zone 2026-12-05T10:00:00Z, or "
                   "relative -1h, -30m, -90s, -2d); offset:N and timestamp:TIME also work")
      ->capture_default_str();
  consume->add_option("--partition,-p", co.partitions, "Partition(s) to read (default: all)")
      ->check(kNonNegative);
  consume->add_option("--count,-n", co.count, "Stop after N records")->check(kNonNegative);
  consume->add_flag("--until-end,-e", co.until_end,
                    "Stop at the end of the log: once every partition read has reached the end "
                    "it had when the command started (kcat -e)");
  consume->add_option("--group,-g", co.group,
                      "Consume as a member of this consumer group: the group assigns the "
                      "partitions, reading starts at its committed offsets, and the positions "
                      "are committed as it goes and on exit (also on Ctrl-C)");
  consume
      ->add_option("--idle-timeout", co.idle_timeout_ms,
                   "Stop after this many ms without a record (default: wait forever)")
      ->check(kNonNegative);
  consume
      ->add_option("--format,-f", co.format,
                   "value, key=value, json (with headers), or a template: %t topic, %p partition, "
                   "%o offset, %k key, %v (%s) value, %T timestamp ms, %h headers k=v,k=v, %K/%S "
                   "key/value size (-1 = null), %%; escapes \\n \\t \\r \\\\ (kcat -f; nothing is "
                   "added, end it with \\n)")
      ->capture_default_str();
  consume->callback(
      [&] { action = [&] { return Consume(g, co, stop_signals ? &*stop_signals : nullptr); }; });

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version print and succeed; anything else is bad usage, exit code 2 as the
    // footer says. A mistyped or missing command is named with the valid ones.
    if (e.get_exit_code() != 0) {
      if (auto m = CommandError(app, argc, argv)) return Usage(*m);
    }
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (!action) return Usage("no command given");
  if (completion->parsed()) return action();  // needs no connection settings
  if (produce->parsed() || (consume->parsed() && !co.group.empty())) stop_signals.emplace();
  bool on_command_line = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    on_command_line = on_command_line || a == "-b" || a.rfind("--bootstrap", 0) == 0;
  }
  const bool from_env = !on_command_line && std::getenv("RILL_BOOTSTRAP") != nullptr &&
                        *std::getenv("RILL_BOOTSTRAP") != '\0';
  // Precedence per setting: command line > environment (RILL_BOOTSTRAP) > profile > default.
  bool from_profile = false;
  const std::string profile_path = profile.empty() ? DefaultProfilePath() : profile;
  if (!profile_path.empty()) {
    Status st = ApplyProfile(profile_path, !profile.empty(), on_command_line || from_env,
                             app.get_option("--timeout-ms")->count() > 0, &g, &from_profile);
    if (!st.ok()) return Usage(st.message());
  }
  auto bootstrap = ParseBootstrapList(g.bootstrap);
  if (!bootstrap.ok()) {
    const std::string source = from_profile ? "profile '" + profile_path + "': bootstrap"
                               : from_env   ? std::string("RILL_BOOTSTRAP")
                                            : std::string("--bootstrap");
    return Usage(source + ": " + bootstrap.status().message());
  }
  if (bootstrap->size() > 1) {
    // The first that answers goes first; the others stay in the list, so the client library can
    // move on to them if that broker goes away during the command.
    auto chosen = FirstReachable(g, *bootstrap);
    if (!chosen.ok()) return Fail(kTool, chosen.status());
    std::string ordered = *chosen;
    for (const auto& a : *bootstrap) {
      if (a != *chosen) ordered += "," + a;
    }
    g.bootstrap = ordered;
  }
  return action();
}

}  // namespace
}  // namespace rill::tools

int main(int argc, char** argv) { return rill::tools::Main(argc, argv); }
