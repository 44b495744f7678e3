#pragma once

// rill.v1.Producer over gRPC's callback API. Produce (unary) refuses with RESOURCE_EXHAUSTED when
// the broker-wide in-flight produce bytes are at their bound; ProduceStream pipelines requests
// and, at its per-stream bound or when the broker-wide bound has no room for its next request
// (ProduceReadGate), stops reading from the stream (HTTP/2 flow control then slows the client)
// until acknowledgements free room. Both answer a partition whose append is not durable within
// the produce timeout with REQUEST_TIMED_OUT (produce_handler.h).

#include <memory>

#include "api/produce_handler.h"
#include "api/produce_read_gate.h"
#include "api/producer_ids.h"
#include "api/service_context.h"
#include "rill/v1/producer.grpc.pb.h"

namespace rill::broker {

class ProducerService final : public v1::Producer::CallbackService {
 public:
  explicit ProducerService(ServiceContext* ctx)
      : ctx_(ctx),
        deadlines_(std::make_shared<ProduceDeadlines>()),
        gate_(std::make_shared<ProduceReadGate>(ctx->config->max_inflight_produce_bytes,
                                                ctx->config->max_request_memory_bytes / 4,
                                                deadlines_)),
        producer_ids_(std::make_shared<ProducerIdAllocator>(ctx->controller)) {}
  ~ProducerService() override { deadlines_->Stop(); }

  grpc::ServerUnaryReactor* Produce(grpc::CallbackServerContext* context,
                                    const v1::ProduceRequest* request,
                                    v1::ProduceResponse* response) override;
  grpc::ServerBidiReactor<v1::ProduceRequest, v1::ProduceResponse>* ProduceStream(
      grpc::CallbackServerContext* context) override;
  // The broker's produce bytes in flight and the ProduceStreams waiting for room in them.
  const std::shared_ptr<ProduceReadGate>& gate() const { return gate_; }

  grpc::ServerUnaryReactor* InitProducerId(grpc::CallbackServerContext* context,
                                           const v1::InitProducerIdRequest* request,
                                           v1::InitProducerIdResponse* response) override;

 private:
  ServiceContext* ctx_;
  const std::shared_ptr<ProduceDeadlines> deadlines_;
  const std::shared_ptr<ProduceReadGate> gate_;
  const std::shared_ptr<ProducerIdAllocator> producer_ids_;
};

}  // namespace rill::broker
