#include "chaos_cluster.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "support/poll.h"

// BrokerProcess starts RILL_BROKER_BINARY; here that is this executable, which execs the real
// broker (LaunchedBrokerMain).
namespace rill::fault {
std::string SelfPath() {
  std::error_code ec;
  std::string path = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  // The executable was replaced (rebuilt) while running: its path names the new one.
  const std::string deleted = " (deleted)";
  if (path.size() > deleted.size() && path.ends_with(deleted)) {
    path.resize(path.size() - deleted.size());
  }
  return path;
}
}  // namespace rill::fault
#define RILL_BROKER_BINARY ::rill::fault::SelfPath()
#include "broker_process.h"

namespace rill::fault {

using namespace std::chrono_literals;
using testing::BrokerProcess;

namespace {
constexpr char kLauncherVar[] = "RILL_CHAOS_EXEC_BROKER";
constexpr char kCgroupVar[] = "RILL_CHAOS_CGROUP";
}  // namespace

std::optional<int> LaunchedBrokerMain(int argc, char** argv) {
  const char* broker = std::getenv(kLauncherVar);
  if (broker == nullptr) return std::nullopt;
  // The broker dies with the harness, even when the harness is killed.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() == 1) return 1;  // the harness is already gone
  if (const char* cg = std::getenv(kCgroupVar); cg != nullptr && *cg != '\0') {
    std::ofstream procs(std::string(cg) + "/cgroup.procs");
    procs << ::getpid() << std::flush;
    if (!procs) {
      std::fprintf(stderr, "rill-chaos launcher: cannot join cgroup %s\n", cg);
      return 1;
    }
  }
  std::string path = broker;
  ::unsetenv(kLauncherVar);
  ::unsetenv(kCgroupVar);
  std::vector<char*> args;
  args.push_back(path.data());
  for (int i = 1; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  ::execv(path.c_str(), args.data());
  std::perror("rill-chaos launcher: execv");
  return 127;
}

ChaosCluster::ChaosCluster(ClusterOptions options) : options_(std::move(options)) {
  for (int id = 1; id <= options_.nodes; ++id) {
    client_ports_.push_back(testing::FreePort());
    internal_ports_.push_back(testing::FreePort());
    http_ports_.push_back(testing::FreePort());
    if (!voters_.empty()) voters_ += ",";
    voters_ += std::to_string(id) + "@127.0.0.1:" + std::to_string(internal_ports_.back());
    brokers_.push_back(
        std::make_unique<BrokerProcess>(options_.dir + "/node" + std::to_string(id)));
    paused_.push_back(false);
    std::ofstream(fsync_delay_file(id)) << "0\n";
    if (!options_.cgroup_root.empty()) std::filesystem::create_directories(cgroup(id));
  }
}

ChaosCluster::~ChaosCluster() {
  admin_.reset();
  for (int id = 1; id <= options_.nodes; ++id) {
    if (brokers_[id - 1]->running()) {
      brokers_[id - 1]->Signal(SIGCONT);
      brokers_[id - 1]->Kill9();
    }
  }
  brokers_.clear();
  if (!options_.cgroup_root.empty()) {
    std::error_code ec;
    for (int id = 1; id <= options_.nodes; ++id) std::filesystem::remove(cgroup(id), ec);
    std::filesystem::remove(options_.cgroup_root, ec);
  }
}

std::string ChaosCluster::data_dir(int node) const {
  return options_.dir + "/node" + std::to_string(node) + "/data";
}

std::string ChaosCluster::cgroup(int node) const {
  return options_.cgroup_root.empty() ? "" : options_.cgroup_root + "/node" + std::to_string(node);
}

std::string ChaosCluster::fsync_delay_file(int node) const {
  return options_.dir + "/node" + std::to_string(node) + ".fsync_delay_ms";
}

std::string ChaosCluster::Bootstrap() const {
  std::string out;
  for (int port : client_ports_) {
    if (!out.empty()) out += ",";
    out += "127.0.0.1:" + std::to_string(port);
  }
  return out;
}

void ChaosCluster::Launch(int node) {
  auto& b = *brokers_[node - 1];
  std::vector<std::string> env = {std::string(kLauncherVar) + "=" + options_.broker_binary,
                                  std::string(kCgroupVar) + "=" + cgroup(node),
                                  "RILL_FAULT_FSYNC_DELAY_FILE=" + fsync_delay_file(node)};
  if (!options_.fsync_shim.empty()) env.push_back("LD_PRELOAD=" + options_.fsync_shim);
  b.SetEnv(env);
  paused_[node - 1] = false;
  b.Launch({"--listeners.client", "127.0.0.1:" + std::to_string(client_ports_[node - 1]),
            "--listeners.http", "127.0.0.1:" + std::to_string(http_ports_[node - 1]),
            "--replica.lag.time.max.ms", std::to_string(options_.replica_lag_time_max_ms),
            "--broker.session.timeout.ms", std::to_string(options_.session_timeout_ms),
            "--topic.replication_factor", std::to_string(std::min(options_.nodes, 3))},
           BrokerProcess::ClusterMember{node, internal_ports_[node - 1], voters_});
}

bool ChaosCluster::WaitReady(int node, std::string* error) {
  auto& b = *brokers_[node - 1];
  if (!b.running()) {
    *error = "node " + std::to_string(node) + " is not running:\n" + LogTail(node);
    return false;
  }
  b.WaitReady();
  if (!b.running() || rill::testing::HttpGet(http_ports_[node - 1], "/readyz").rfind("200", 0)) {
    *error = "node " + std::to_string(node) + " did not become ready:\n" + LogTail(node);
    return false;
  }
  return true;
}

bool ChaosCluster::Start(std::string* error) {
  for (int id = 1; id <= options_.nodes; ++id) Launch(id);
  for (int id = 1; id <= options_.nodes; ++id) {
    if (!WaitReady(id, error)) return false;
  }
  client::AdminConfig ac;
  ac.bootstrap = Bootstrap();
  ac.request_timeout_ms = 2000;
  auto a = client::Admin::Create(ac);
  if (!a.ok()) {
    *error = a.status().ToString();
    return false;
  }
  admin_ = std::move(a).value();
  if (!test::PollUntil(
          [&] {
            auto md = admin_->Metadata({});
            return md.ok() && static_cast<int>(md->brokers.size()) == options_.nodes;
          },
          60s, 20ms)) {
    *error = "the cluster did not list " + std::to_string(options_.nodes) + " brokers";
    return false;
  }
  return true;
}

void ChaosCluster::Kill9(int node) {
  auto& b = *brokers_[node - 1];
  if (!b.running()) return;
  b.Kill9();  // SIGKILL ends a stopped process too
  paused_[node - 1] = false;
}

void ChaosCluster::Pause(int node) {
  brokers_[node - 1]->Signal(SIGSTOP);
  paused_[node - 1] = true;
}

void ChaosCluster::Resume(int node) {
  brokers_[node - 1]->Signal(SIGCONT);
  paused_[node - 1] = false;
}

bool ChaosCluster::running(int node) { return brokers_[node - 1]->running(); }

std::optional<std::vector<client::PartitionMetadata>> ChaosCluster::Partitions(
    const std::string& topic) {
  std::optional<std::vector<client::PartitionMetadata>> merged;
  for (int node = 1; node <= options_.nodes; ++node) {
    auto& b = *brokers_[node - 1];
    if (paused_[node - 1] || !b.running() || !b.metadata) continue;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    v1::MetadataRequest req;
    req.add_topics(topic);
    v1::MetadataResponse resp;
    if (!b.metadata->Get(&ctx, req, &resp).ok() || resp.topics_size() != 1 ||
        resp.topics(0).error() != v1::NONE) {
      continue;
    }
    std::vector<client::PartitionMetadata> parts(resp.topics(0).partitions_size());
    bool complete = true;
    for (const auto& pm : resp.topics(0).partitions()) {
      if (pm.partition() < 0 || pm.partition() >= static_cast<int>(parts.size())) {
        complete = false;
        break;
      }
      auto& out = parts[pm.partition()];
      out.partition = pm.partition();
      out.leader_id = pm.error() == v1::NONE ? pm.leader_id() : -1;
      out.leader_epoch = pm.leader_epoch();
      out.replicas.assign(pm.replicas().begin(), pm.replicas().end());
      out.isr.assign(pm.isr().begin(), pm.isr().end());
    }
    if (!complete) continue;
    if (!merged || merged->size() != parts.size()) {
      if (!merged || merged->size() < parts.size()) merged = std::move(parts);
      continue;
    }
    for (size_t i = 0; i < parts.size(); ++i) {
      auto& m = (*merged)[i];
      const auto& p = parts[i];
      if (p.leader_epoch > m.leader_epoch ||
          (p.leader_epoch == m.leader_epoch && p.isr.size() < m.isr.size())) {
        m = p;
      }
    }
  }
  return merged;
}

int ChaosCluster::ControllerId() {
  auto info = admin_->DescribeCluster();
  return info.ok() ? info->controller_id : -1;
}

std::optional<bool> ChaosCluster::Fenced(int node) {
  auto info = admin_->DescribeCluster();
  if (!info.ok()) return std::nullopt;
  for (const auto& b : info->brokers) {
    if (b.node_id == node) return b.fenced;
  }
  return std::nullopt;
}

std::string ChaosCluster::LogTail(int node, size_t bytes) const {
  std::string log = brokers_[node - 1]->log();
  return log.size() <= bytes ? log : "..." + log.substr(log.size() - bytes);
}

}  // namespace rill::fault
