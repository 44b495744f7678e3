#pragma once

// gRPC plumbing shared by the producer, consumer and admin client.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "clock.h"
#include "rill/proto/status.h"

namespace rill::client::internal {

// An insecure channel to host:port with no message size limit on receive (fetch responses are
// bounded by fetch_max_bytes instead). Each call makes its own connection.
std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address);

// A transport status as a rill Status naming the address and what was being done:
// "Unavailable: cannot reach localhost:9092 (Metadata.Get): failed to connect ...".
Status FromGrpc(const grpc::Status& status, std::string_view what, const std::string& address);

// True for transport failures worth retrying (UNAVAILABLE, DEADLINE_EXCEEDED, ...).
bool IsRetriableGrpc(const grpc::Status& status);

// True for the codes that mean the broker could not be reached or did not answer in time
// (UNAVAILABLE, DEADLINE_EXCEEDED): another broker may do.
inline bool IsConnectionFailure(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

inline void SetTimeout(grpc::ClientContext* ctx, int64_t timeout_ms) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
}

}  // namespace rill::client::internal
