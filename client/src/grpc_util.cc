#include "grpc_util.h"

namespace rill::client::internal {

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  // A private subchannel: a producer's stream does not share a TCP connection with fetches.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  // Fail fast when the broker is down instead of backing off for a long time between attempts.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

Status FromGrpc(const grpc::Status& s, std::string_view what, const std::string& address) {
  std::string m = std::string(what) + " to " + address + ": " + s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::OK:
      return Status::OK();
    case grpc::StatusCode::UNAVAILABLE:
      return Status::Unavailable("cannot reach broker at " + address + " (" + std::string(what) +
                                 "): " + s.error_message());
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Status::Timeout(m);
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::OUT_OF_RANGE:
      return Status::InvalidArgument(m);
    case grpc::StatusCode::NOT_FOUND:
      return Status::NotFound(m);
    case grpc::StatusCode::ALREADY_EXISTS:
      return Status::AlreadyExists(m);
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return Status::ResourceExhausted(m);
    case grpc::StatusCode::UNIMPLEMENTED:
      return Status::Failed("the broker does not implement " + m);
    case grpc::StatusCode::CANCELLED:
      return Status::Unavailable(m);
    default:
      return Status::Failed(m);
  }
}

bool IsRetriableGrpc(const grpc::Status& s) {
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
    case grpc::StatusCode::ABORTED:
      return true;
    default:
      return false;
  }
}

}  // namespace rill::client::internal
