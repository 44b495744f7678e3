#pragma once

// rill.v1.Producer over gRPC's callback API. Produce (unary) refuses with RESOURCE_EXHAUSTED when
// the broker-wide in-flight produce bytes are at their bound; ProduceStream pipelines requests
// and, at its per-stream or the broker-wide bound, stops reading from the stream (HTTP/2 flow
// control then slows the client) until acknowledgements free room. Both answer a partition whose
// append is not durable within the produce timeout with REQUEST_TIMED_OUT (produce_handler.h).

#include <memory>

#include "api/produce_handler.h"
#include "api/producer_ids.h"
#include "rill/v1/producer.grpc.pb.h"
#include "api/service_context.h"

namespace rill::broker {

class ProducerService final : public v1::Producer::CallbackService {
 public:
  explicit ProducerService(ServiceContext* ctx)
      : ctx_(ctx),
        deadlines_(std::make_shared<ProduceDeadlines>()),
        producer_ids_(std::make_shared<ProducerIdAllocator>(ctx->controller)) {}
  ~ProducerService() override { deadlines_->Stop(); }

  grpc::ServerUnaryReactor* Produce(grpc::CallbackServerContext* context,
                                    const v1::ProduceRequest* request,
                                    v1::ProduceResponse* response) override;
  grpc::ServerBidiReactor<v1::ProduceRequest, v1::ProduceResponse>* ProduceStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* InitProducerId(grpc::CallbackServerContext* context,
                                           const v1::InitProducerIdRequest* request,
                                           v1::InitProducerIdResponse* response) override;

 private:
  ServiceContext* ctx_;
  const std::shared_ptr<ProduceDeadlines> deadlines_;
  const std::shared_ptr<ProducerIdAllocator> producer_ids_;
};

}  // namespace rill::broker
