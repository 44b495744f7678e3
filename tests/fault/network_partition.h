#pragma once

// Network partitions between brokers on loopback, made with per-port iptables rules in a chain
// of this run's own (RILL-CHAOS-<pid>, reached from OUTPUT for loopback packets only), matched
// by the brokers' internal ports and by the cgroup v2 each broker runs in (chaos_cluster.h).
// Nothing but loopback packets of this run's brokers is ever matched; the chain and its jump are
// removed by the destructor, and chains of runs that died (their pid gone) at construction.
//
// Isolating broker B drops:
//   one way ("B is mute"): every packet B sends to another broker's internal listener and every
//     packet B sends from its own internal listener (its answers): the others hear nothing from
//     B, while B still receives what they send (requests arrive, their answers are lost);
//   both ways: the above, and every packet sent to B's internal listener. Answers the others
//     already owed to B's earlier requests may still arrive: B cannot send new ones.
// Clients (the harness) reach every broker throughout: only internal listeners are matched.

#include <string>
#include <vector>

namespace rill::fault {

class NetworkPartition {
 public:
  // `internal_ports[i]` and `cgroups[i]` belong to node i + 1.
  NetworkPartition(std::vector<int> internal_ports, std::vector<std::string> cgroups);
  ~NetworkPartition();
  NetworkPartition(const NetworkPartition&) = delete;
  NetworkPartition& operator=(const NetworkPartition&) = delete;

  // Creates the chain and its jump; false (with the command's output) when iptables, the cgroup
  // match or the cgroups are not available here.
  bool Setup(std::string* error);
  bool Isolate(int node, bool both_ways, std::string* error);
  // Removes every rule of the chain (keeps the chain).
  bool Heal(std::string* error);

  // Whether iptables and a writable cgroup v2 hierarchy exist, and the cgroup root to use
  // (created; cgroups left by runs that died are removed).
  static bool Available(std::string* cgroup_root, std::string* why);

 private:
  bool Run(const std::string& args, std::string* error);
  std::string chain_;
  std::vector<int> internal_ports_;
  std::vector<std::string> cgroups_;
  bool set_up_ = false;
};

}  // namespace rill::fault
