#include "metadata_cache.h"

#include "grpc_util.h"

namespace rill::client::internal {

MetadataCache::MetadataCache(std::string bootstrap, int32_t timeout_ms)
    : bootstrap_(std::move(bootstrap)),
      timeout_ms_(timeout_ms),
      stub_(v1::Metadata::NewStub(MakeChannel(bootstrap_))) {}

Result<v1::MetadataResponse> MetadataCache::Refresh(const std::vector<std::string>& topics) {
  v1::MetadataRequest req;
  for (const auto& t : topics) req.add_topics(t);
  v1::MetadataResponse resp;
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout_ms_);
  grpc::Status s = stub_->Get(&ctx, req, &resp);
  if (!s.ok()) return FromGrpc(s, "Metadata.Get", bootstrap_);
  std::lock_guard lk(mu_);
  for (const auto& b : resp.brokers()) {
    addresses_[b.node_id()] = b.host() + ":" + std::to_string(b.port());
  }
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

std::string MetadataCache::AddressOf(int32_t node_id) const {
  std::lock_guard lk(mu_);
  if (addresses_.size() <= 1) return bootstrap_;
  auto it = addresses_.find(node_id);
  return it == addresses_.end() ? bootstrap_ : it->second;
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

}  // namespace rill::client::internal
