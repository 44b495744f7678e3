#include "consumer_stubs.h"

#include "grpc_util.h"

namespace rill::client::internal {

v1::Consumer::Stub* ConsumerStubs::For(const std::string& address) {
  std::lock_guard lk(mu_);
  auto& stub = stubs_[address];
  if (stub == nullptr) stub = v1::Consumer::NewStub(MakeChannel(address));
  return stub.get();
}

}  // namespace rill::client::internal
