#pragma once

// rill.v1.Consumer over gRPC's callback API: Fetch (long poll), Subscribe (server push with
// client-granted byte credit) and ListOffsets. Records are returned as the stored batch bytes;
// nothing below is decoded. Consumers see only offsets below the high watermark.

#include "rill/v1/consumer.grpc.pb.h"
#include "api/service_context.h"

namespace rill::broker {

class ConsumerService final : public v1::Consumer::CallbackService {
 public:
  explicit ConsumerService(ServiceContext* ctx) : ctx_(ctx) {}

  grpc::ServerUnaryReactor* Fetch(grpc::CallbackServerContext* context,
                                  const v1::FetchRequest* request,
                                  v1::FetchResponse* response) override;
  grpc::ServerBidiReactor<v1::SubscribeRequest, v1::SubscribeResponse>* Subscribe(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* ListOffsets(grpc::CallbackServerContext* context,
                                        const v1::ListOffsetsRequest* request,
                                        v1::ListOffsetsResponse* response) override;

 private:
  ServiceContext* ctx_;
};

// Reads one partition for a fetch: fills `result` (error, high watermark, log start, records)
// and returns the record bytes added. OFFSET_OUT_OF_RANGE when `offset` is negative, below the
// log start or beyond the high watermark. `*next_offset` (may be null) is where the next read
// continues.
size_t ReadPartition(const ServiceContext& ctx, Partition* part, int64_t offset, size_t max_bytes,
                     v1::FetchPartitionResult* result, int64_t* next_offset);

}  // namespace rill::broker
