#pragma once

// The produce data path shared by Producer.Produce and Producer.ProduceStream (DESIGN.md §8):
// validate each batch header and size, append the request's bytes in place to each partition
// under its single-writer lock, and complete per acks once the log reports durability.

#include <functional>

#include <grpcpp/support/status.h>

#include "rill/v1/producer.pb.h"
#include "service_context.h"

namespace rill::broker {

// Sum of the record bytes of a request (what the in-flight bound counts).
int64_t ProduceBytes(const v1::ProduceRequest& request);

// Handles `request` (its records are mutated in place: offsets and epochs are stamped) and fills
// `response`. Returns INVALID_ARGUMENT naming the field for a malformed request, in which case
// `done` is never called. Otherwise `done` is called exactly once, when every partition's result
// is final: at once for acks=0, after durability for acks=1/-1. `done` may run inline or on a
// storage flusher thread. `request` must stay valid until HandleProduce returns (the bytes are
// in the page cache by then); `response` until `done` runs.
grpc::Status HandleProduce(ServiceContext& ctx, v1::ProduceRequest* request,
                           v1::ProduceResponse* response, std::function<void()> done);

}  // namespace rill::broker
