#pragma once

// ConsumerStubs: one Consumer service stub per broker address, made on first use and reused by
// every later call to that broker (a gRPC channel reconnects by itself after a failure).

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "rill/v1/consumer.grpc.pb.h"

namespace rill::client::internal {

// Thread-safe. A returned stub lives as long as this object. The number of stubs is bounded by
// the number of distinct broker addresses that metadata has named.
class ConsumerStubs {
 public:
  v1::Consumer::Stub* For(const std::string& address);

 private:
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<v1::Consumer::Stub>> stubs_;  // guarded by mu_
};

}  // namespace rill::client::internal
