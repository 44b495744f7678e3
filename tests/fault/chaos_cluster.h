#pragma once

// ChaosCluster: N real rill-broker processes (combined broker + controller nodes, an N-voter
// quorum) on loopback, each with a fixed client, internal and HTTP port for the whole run (so
// clients made at the start reach every node after any restart), its own data dir, its own
// cgroup (for the network-partition rules, network_partition.h) and its own fsync-delay file
// (for the slow-disk fault, fsync_delay_shim.cc). Processes are run by the integration tests'
// BrokerProcess (tests/integration/broker_process.h).
//
// Each broker is started through this executable itself (LaunchedBrokerMain): it joins its
// cgroup, asks the kernel to kill it when the harness dies, and execs rill-broker, so its pid is
// the broker's. Start, stop and restart brokers from the main thread only: the kernel's
// parent-death signal follows the thread that spawned the process.
//
// Thread-safety: main thread only.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rill/client/admin.h"

namespace rill::testing {
class BrokerProcess;
}

namespace rill::fault {

struct ClusterOptions {
  int nodes = 3;
  std::string broker_binary;  // the real rill-broker
  std::string fsync_shim;     // the LD_PRELOAD library, "" for none
  std::string dir;            // the run's directory; node i lives in dir/node<i>
  std::string cgroup_root;    // "" for none: e.g. /sys/fs/cgroup/unified/rill-chaos-<pid>
  int session_timeout_ms = 3000;
  int replica_lag_time_max_ms = 1500;
};

class ChaosCluster {
 public:
  explicit ChaosCluster(ClusterOptions options);
  ~ChaosCluster();  // kills every broker still running (SIGCONT first, for paused ones)

  // Launches every node, then waits for each to be ready and for the cluster to list them all.
  bool Start(std::string* error);

  int nodes() const { return options_.nodes; }
  // Node ids are 1..nodes().
  void Launch(int node);
  // Waits until the node serves (/readyz); false (with the end of its log) when it did not.
  bool WaitReady(int node, std::string* error);
  void Kill9(int node);
  void Pause(int node);   // SIGSTOP
  void Resume(int node);  // SIGCONT
  bool running(int node);
  bool paused(int node) const { return paused_[node - 1]; }

  int client_port(int node) const { return client_ports_[node - 1]; }
  int internal_port(int node) const { return internal_ports_[node - 1]; }
  std::string data_dir(int node) const;
  std::string cgroup(int node) const;  // "" without cgroups
  // The file whose content (a number of milliseconds) the node's fsync-delay shim reads.
  std::string fsync_delay_file(int node) const;
  // Every node's client address, comma-separated (fixed for the run).
  std::string Bootstrap() const;

  // Per partition of `topic` (by index): its metadata as the running, unpaused nodes answer it
  // (each asked directly, 2 s deadline), per partition the answer with the highest leader epoch
  // (at equal epochs the smaller ISR: a node that has not seen a change yet counts as not
  // recovered). nullopt when no node answered. Main thread only.
  std::optional<std::vector<client::PartitionMetadata>> Partitions(const std::string& topic);
  // The active controller's node id (-1 unknown).
  int ControllerId();
  // Whether the cluster has fenced `node` (true: fenced; nullopt: no node answered).
  std::optional<bool> Fenced(int node);
  client::Admin& admin() { return *admin_; }

  std::string LogTail(int node, size_t bytes = 4000) const;

 private:
  ClusterOptions options_;
  std::vector<int> client_ports_, internal_ports_, http_ports_;
  std::string voters_;
  std::vector<std::unique_ptr<testing::BrokerProcess>> brokers_;
  std::vector<bool> paused_;
  std::unique_ptr<client::Admin> admin_;
};

// When this process was started as a broker launcher (see above), joins the cgroup and execs the
// broker; returns only on failure (the exit code to use). nullopt when it is no launcher.
std::optional<int> LaunchedBrokerMain(int argc, char** argv);

}  // namespace rill::fault
