#include "network_partition.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace rill::fault {
namespace {

constexpr char kChainPrefix[] = "RILL-CHAOS-";
// The cgroup v2 hierarchy: unified on hybrid systems, the root on pure v2 ones.
constexpr const char* kCgroup2Mounts[] = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};

// Runs a shell command; its exit status, output in *out.
int Shell(const std::string& command, std::string* out) {
  out->clear();
  std::FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The path of `absolute` relative to the cgroup v2 mount (what `-m cgroup --path` wants).
std::string CgroupPath(const std::string& absolute) {
  for (const char* mount : kCgroup2Mounts) {
    std::string m = std::string(mount) + "/";
    if (absolute.rfind(m, 0) == 0) return absolute.substr(m.size());
  }
  return absolute;
}

std::string Join(const std::vector<int>& ports) {
  std::string out;
  for (int p : ports) out += (out.empty() ? "" : ",") + std::to_string(p);
  return out;
}

// Removes chains of runs whose process is gone (a harness killed before its cleanup; its
// brokers died with it).
void RemoveStaleChains() {
  std::string out;
  if (Shell("iptables -w -S OUTPUT", &out) != 0) return;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    auto at = line.find(std::string("-j ") + kChainPrefix);
    if (at == std::string::npos) continue;
    std::string chain = line.substr(at + 3);
    const int pid = std::atoi(chain.c_str() + sizeof(kChainPrefix) - 1);
    if (pid <= 0 || ::kill(pid, 0) == 0) continue;
    std::string ignored;
    Shell("iptables -w -D OUTPUT -o lo -j " + chain, &ignored);
    Shell("iptables -w -F " + chain, &ignored);
    Shell("iptables -w -X " + chain, &ignored);
  }
}

}  // namespace

bool NetworkPartition::Available(std::string* cgroup_root, std::string* why) {
  std::string out;
  if (Shell("iptables -w -S OUTPUT", &out) != 0) {
    *why = "iptables does not work here: " + out;
    return false;
  }
  for (const char* mount : kCgroup2Mounts) {
    if (!std::filesystem::exists(std::string(mount) + "/cgroup.procs")) continue;
    if (std::string(mount) == "/sys/fs/cgroup" &&
        !std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers")) {
      continue;  // a cgroup v1 tmpfs
    }
    std::string root = std::string(mount) + "/rill-chaos-" + std::to_string(::getpid());
    std::error_code ec;
    std::filesystem::create_directories(root, ec);
    if (ec) {
      *why = "cannot create the cgroup " + root + ": " + ec.message();
      return false;
    }
    // Cgroups of runs that died before removing theirs (empty once their brokers died).
    for (const auto& e : std::filesystem::directory_iterator(mount, ec)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("rill-chaos-", 0) != 0) continue;
      const int pid = std::atoi(name.c_str() + 11);
      if (pid <= 0 || ::kill(pid, 0) == 0) continue;
      for (const auto& node : std::filesystem::directory_iterator(e.path(), ec)) {
        if (node.is_directory()) ::rmdir(node.path().c_str());
      }
      ::rmdir(e.path().c_str());
    }
    *cgroup_root = root;
    return true;
  }
  *why = "no cgroup v2 hierarchy";
  return false;
}

NetworkPartition::NetworkPartition(std::vector<int> internal_ports,
                                   std::vector<std::string> cgroups)
    : chain_(kChainPrefix + std::to_string(::getpid())),
      internal_ports_(std::move(internal_ports)),
      cgroups_(std::move(cgroups)) {}

NetworkPartition::~NetworkPartition() {
  if (!set_up_) return;
  std::string ignored;
  Run("-D OUTPUT -o lo -j " + chain_, &ignored);
  Run("-F " + chain_, &ignored);
  Run("-X " + chain_, &ignored);
}

bool NetworkPartition::Run(const std::string& args, std::string* error) {
  std::string out;
  if (Shell("iptables -w " + args, &out) == 0) return true;
  *error = "iptables " + args + ": " + out;
  return false;
}

bool NetworkPartition::Setup(std::string* error) {
  RemoveStaleChains();
  if (!Run("-N " + chain_, error)) return false;
  set_up_ = true;
  // Probe the cgroup match with a rule that matches nothing, then remove it.
  if (!Run("-A " + chain_ + " -p tcp -m cgroup --path " + CgroupPath(cgroups_[0]) +
               " --dport 1 -j DROP",
           error) ||
      !Run("-F " + chain_, error)) {
    return false;
  }
  return Run("-I OUTPUT -o lo -j " + chain_, error);
}

bool NetworkPartition::Isolate(int node, bool both_ways, std::string* error) {
  const int own = internal_ports_[node - 1];
  std::vector<int> others;
  for (size_t i = 0; i < internal_ports_.size(); ++i) {
    if (static_cast<int>(i) != node - 1) others.push_back(internal_ports_[i]);
  }
  const std::string cg = CgroupPath(cgroups_[node - 1]);
  if (!Run("-A " + chain_ + " -p tcp -m cgroup --path " + cg + " -m multiport --dports " +
               Join(others) + " -j DROP",
           error) ||
      !Run("-A " + chain_ + " -p tcp --sport " + std::to_string(own) + " -j DROP", error)) {
    return false;
  }
  if (both_ways)
    return Run("-A " + chain_ + " -p tcp --dport " + std::to_string(own) + " -j DROP", error);
  return true;
}

bool NetworkPartition::Heal(std::string* error) { return Run("-F " + chain_, error); }

}  // namespace rill::fault
