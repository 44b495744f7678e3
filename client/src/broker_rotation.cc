#include "broker_rotation.h"

#include "rill/proto/assert.h"

namespace rill::client::internal {

BrokerRotation::BrokerRotation(std::vector<std::string> bootstrap)
    : bootstrap_(std::move(bootstrap)) {
  RILL_ASSERT(!bootstrap_.empty(), "empty bootstrap list");
}

std::vector<std::string> BrokerRotation::Candidates() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> healthy;
  std::vector<std::pair<uint64_t, std::string>> failed;
  auto add = [&](const std::string& a) {
    if (std::find(healthy.begin(), healthy.end(), a) != healthy.end()) return;
    for (const auto& [n, f] : failed) {
      if (f == a) return;
    }
    auto it = failed_.find(a);
    if (it == failed_.end()) {
      healthy.push_back(a);
    } else {
      failed.emplace_back(it->second, a);
    }
  };
  if (!preferred_.empty()) add(preferred_);
  // Learned brokers first: they are the cluster as it is now; the bootstrap list may be stale.
  for (const auto& a : known_) add(a);
  for (const auto& a : bootstrap_) add(a);
  std::sort(failed.begin(), failed.end());
  for (auto& [n, a] : failed) healthy.push_back(std::move(a));
  return healthy;
}

std::string BrokerRotation::Live() const { return Candidates().front(); }

void BrokerRotation::ReportSuccess(const std::string& address) {
  std::lock_guard lk(mu_);
  preferred_ = address;
  failed_.erase(address);
}

void BrokerRotation::ReportFailure(const std::string& address) {
  std::lock_guard lk(mu_);
  failed_[address] = ++failures_;
  if (preferred_ == address) preferred_.clear();
}

void BrokerRotation::SetKnownBrokers(std::vector<std::string> addresses) {
  std::lock_guard lk(mu_);
  known_ = std::move(addresses);
  // Forget what no longer names a broker, so the maps stay bounded by the cluster's size.
  auto kept = [&](const std::string& a) {
    return a == preferred_ || std::find(known_.begin(), known_.end(), a) != known_.end() ||
           std::find(bootstrap_.begin(), bootstrap_.end(), a) != bootstrap_.end();
  };
  std::erase_if(failed_, [&](const auto& e) { return !kept(e.first); });
  std::erase_if(channels_, [&](const auto& e) { return !kept(e.first); });
}

std::shared_ptr<grpc::Channel> BrokerRotation::ChannelFor(const std::string& address) {
  std::lock_guard lk(mu_);
  auto& channel = channels_[address];
  if (channel == nullptr) channel = MakeChannel(address);
  return channel;
}

}  // namespace rill::client::internal
