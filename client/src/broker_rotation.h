#pragma once

// BrokerRotation: which broker to ask a cluster-wide question (Metadata.Get, an Admin RPC, the
// group coordinator lookup). Any broker can answer those, so the rotation holds every address it
// knows — the bootstrap list and the brokers the last metadata response named — and tries them in
// turn: the one that answered last, then the others in order, then those that failed (least
// recently failed first). A broker that fails with a connection failure (gRPC UNAVAILABLE, or
// DEADLINE_EXCEEDED for a call that is safe to repeat) goes to the back, so losing any one broker,
// the first bootstrap entry included, never stops these requests while another answers.
//
// Thread-safe. A channel is made once per address and kept while the address is in the bootstrap
// list or the last metadata response (a caller may hold on to one it was given).

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "grpc_util.h"

namespace rill::client::internal {

class BrokerRotation {
 public:
  // `bootstrap`: the parsed bootstrap list, not empty.
  explicit BrokerRotation(std::vector<std::string> bootstrap);

  // Every known address in the order to try them: the one that answered last, the brokers of
  // the last metadata response (the cluster as it is now), the bootstrap entries, then those that
  // failed since they last answered, least recently failed first. Never empty.
  std::vector<std::string> Candidates() const;
  // The address most likely to answer: Candidates().front().
  std::string Live() const;

  // `address` answered: it is asked first from now on.
  void ReportSuccess(const std::string& address);
  // `address` could not be reached (by this rotation's calls or by a producer, consumer or
  // coordinator connection): it is asked last until it answers again.
  void ReportFailure(const std::string& address);
  // The brokers the last metadata response named (host:port); they join the bootstrap list.
  void SetKnownBrokers(std::vector<std::string> addresses);

  std::shared_ptr<grpc::Channel> ChannelFor(const std::string& address);

  // Runs `call(channel, ctx)` (a unary RPC returning grpc::Status) on each candidate in turn
  // until one answers without a connection failure, all within `timeout_ms`. Each candidate is
  // tried at most once. UNAVAILABLE moves on to the next; DEADLINE_EXCEEDED only when
  // `idempotent` (a call that may have been applied, e.g. CreateTopics, is not sent twice for a
  // mere timeout). An idempotent attempt gets at most kAttemptCapMs while more candidates are
  // left (and its share of the time left, at least a second), so a host that swallows packets
  // does not use up the whole deadline; any other attempt
  // gets all the time left. `*address` is the broker that answered (or was tried last); the
  // result is its status.
  template <typename Fn>
  grpc::Status Call(int64_t timeout_ms, bool idempotent, Fn&& call, std::string* address);

  static constexpr int64_t kAttemptCapMs = 5000;

 private:
  mutable std::mutex mu_;
  const std::vector<std::string> bootstrap_;
  std::vector<std::string> known_;          // guarded by mu_: from the last metadata
  std::string preferred_;                   // guarded by mu_: answered last
  std::map<std::string, uint64_t> failed_;  // guarded by mu_: address -> failure number
  uint64_t failures_ = 0;                   // guarded by mu_
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;  // guarded by mu_
};

template <typename Fn>
grpc::Status BrokerRotation::Call(int64_t timeout_ms, bool idempotent, Fn&& call,
                                  std::string* address) {
  const int64_t deadline = MonotonicMs() + timeout_ms;
  const std::vector<std::string> candidates = Candidates();
  grpc::Status status(grpc::StatusCode::UNAVAILABLE, "no broker address to try");
  for (size_t i = 0; i < candidates.size(); ++i) {
    const int64_t remaining = deadline - MonotonicMs();
    if (i > 0 && remaining <= 0) break;
    const bool last = i + 1 == candidates.size();
    // An idempotent attempt gets its share of what is left (at least a second, at most
    // kAttemptCapMs), so one stopped broker early in the list cannot use up the whole deadline.
    const int64_t left = static_cast<int64_t>(candidates.size() - i);
    const int64_t share = std::min(kAttemptCapMs, std::max<int64_t>(1000, remaining / left));
    const int64_t attempt_ms =
        std::max<int64_t>(1, last || !idempotent ? remaining : std::min(remaining, share));
    *address = candidates[i];
    grpc::ClientContext ctx;
    SetTimeout(&ctx, attempt_ms);
    status = call(ChannelFor(candidates[i]), &ctx);
    const bool moved_on =
        status.error_code() == grpc::StatusCode::UNAVAILABLE ||
        (idempotent && status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
    if (!moved_on) {
      if (status.ok() || !IsConnectionFailure(status)) ReportSuccess(candidates[i]);
      return status;
    }
    ReportFailure(candidates[i]);
  }
  return status;
}

}  // namespace rill::client::internal
