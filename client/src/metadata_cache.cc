#include "metadata_cache.h"

#include "bootstrap_list.h"
#include "grpc_util.h"

namespace rill::client::internal {

namespace {

std::vector<std::string> BootstrapEntries(const std::string& bootstrap) {
  auto parsed = ParseBootstrapList(bootstrap);
  if (parsed.ok()) return std::move(*parsed);
  return {bootstrap};  // Create() refuses a bad list; used as given otherwise
}

}  // namespace

MetadataCache::MetadataCache(const std::string& bootstrap, int32_t timeout_ms)
    : timeout_ms_(timeout_ms), rotation_(BootstrapEntries(bootstrap)) {}

Result<v1::MetadataResponse> MetadataCache::Refresh(const std::vector<std::string>& topics) {
  v1::MetadataRequest req;
  for (const auto& t : topics) req.add_topics(t);
  v1::MetadataResponse resp;
  std::string address;
  grpc::Status s = rotation_.Call(
      timeout_ms_, /*idempotent=*/true,
      [&](const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* ctx) {
        resp.Clear();
        return v1::Metadata::NewStub(channel)->Get(ctx, req, &resp);
      },
      &address);
  if (!s.ok()) {
    std::string tried;
    if (IsConnectionFailure(s)) {
      for (const auto& a : rotation_.Candidates()) tried += (tried.empty() ? "" : ",") + a;
      tried = "; no broker of " + tried + " answered";
    }
    Status st = FromGrpc(s, "Metadata.Get", address);
    return Status(st.code(), st.message() + tried);
  }
  std::vector<std::string> known;
  std::lock_guard lk(mu_);
  addresses_.clear();
  controller_id_ = resp.controller_id();
  for (const auto& b : resp.brokers()) {
    addresses_[b.node_id()] = BrokerAddress(b);
    known.push_back(addresses_[b.node_id()]);
  }
  rotation_.SetKnownBrokers(std::move(known));
  for (const auto& t : resp.topics()) {
    if (t.error() != v1::NONE) {
      leaders_.erase(t.name());
      continue;
    }
    std::vector<int32_t> leaders(t.partitions_size(), -1);
    for (const auto& p : t.partitions()) {
      if (p.partition() < 0 || p.partition() >= t.partitions_size()) continue;
      leaders[p.partition()] = p.error() == v1::NONE ? p.leader_id() : -1;
    }
    leaders_[t.name()] = std::move(leaders);
  }
  return resp;
}

int32_t MetadataCache::LeaderOf(const TopicPartition& tp) const {
  std::lock_guard lk(mu_);
  auto it = leaders_.find(tp.topic);
  if (it == leaders_.end() || tp.partition < 0 ||
      tp.partition >= static_cast<int32_t>(it->second.size())) {
    return -1;
  }
  return it->second[tp.partition];
}

int32_t MetadataCache::PartitionCount(const std::string& topic) const {
  std::lock_guard lk(mu_);
  auto it = leaders_.find(topic);
  return it == leaders_.end() ? -1 : static_cast<int32_t>(it->second.size());
}

std::string MetadataCache::AddressOfLocked(int32_t node_id) const {
  if (addresses_.size() <= 1) return rotation_.Live();
  auto it = addresses_.find(node_id);
  return it == addresses_.end() ? rotation_.Live() : it->second;
}

std::string MetadataCache::AddressOf(int32_t node_id) const {
  std::lock_guard lk(mu_);
  return AddressOfLocked(node_id);
}

std::set<int32_t> MetadataCache::LeaderNodes() const {
  std::lock_guard lk(mu_);
  std::set<int32_t> out;
  for (const auto& [t, leaders] : leaders_) {
    for (int32_t l : leaders) {
      if (l >= 0) out.insert(l);
    }
  }
  return out;
}

std::string MetadataCache::ControllerAddress() const {
  std::lock_guard lk(mu_);
  if (controller_id_ < 0 || !addresses_.count(controller_id_)) return "";
  return AddressOfLocked(controller_id_);
}

void MetadataCache::ReportUnreachable(const std::string& address) {
  std::lock_guard lk(mu_);
  // Which nodes listen there: decided before the rotation changes Live() (the single-broker
  // case maps every node to it).
  std::set<int32_t> nodes;
  for (const auto& [t, leaders] : leaders_) {
    for (int32_t l : leaders) {
      if (l >= 0 && AddressOfLocked(l) == address) nodes.insert(l);
    }
  }
  rotation_.ReportFailure(address);
  for (auto& [t, leaders] : leaders_) {
    for (int32_t& l : leaders) {
      if (nodes.count(l)) l = -1;
    }
  }
}

}  // namespace rill::client::internal
