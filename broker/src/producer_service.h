#pragma once

// rill.v1.Producer over gRPC's callback API. Produce (unary) refuses with RESOURCE_EXHAUSTED when
// the broker-wide in-flight produce bytes are at their bound; ProduceStream pipelines requests
// and, at its per-stream or the broker-wide bound, stops reading from the stream (HTTP/2 flow
// control then slows the client) until acknowledgements free room.

#include "rill/v1/producer.grpc.pb.h"
#include "service_context.h"

namespace rill::broker {

class ProducerService final : public v1::Producer::CallbackService {
 public:
  explicit ProducerService(ServiceContext* ctx) : ctx_(ctx) {}

  grpc::ServerUnaryReactor* Produce(grpc::CallbackServerContext* context,
                                    const v1::ProduceRequest* request,
                                    v1::ProduceResponse* response) override;
  grpc::ServerBidiReactor<v1::ProduceRequest, v1::ProduceResponse>* ProduceStream(
      grpc::CallbackServerContext* context) override;

 private:
  ServiceContext* ctx_;
};

}  // namespace rill::broker
