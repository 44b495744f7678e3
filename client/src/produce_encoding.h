#pragma once

// EncodedProduceRequest: a rill.v1.ProduceRequest written straight into gRPC slices, so that the
// producer's batch bytes go to the transport without a copy. Building a v1::ProduceRequest and
// letting protobuf serialise it copies every record byte once more (on 1 KiB records that copy
// was about 5% of all CPU, client and broker together).
//
// The encoding is the one protobuf writes itself (fields in number order, proto3 zero values left
// out), so the broker parses it as an ordinary ProduceRequest and the bytes are identical to
// ProduceRequest::SerializeAsString() of the same content (tested). Each entry's records are a
// slice that shares ownership of the batch's buffer until gRPC lets go of it.
//
// Not thread-safe; immutable once handed to gRPC.

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/status.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rill::client::internal {

class EncodedProduceRequest {
 public:
  EncodedProduceRequest(uint64_t request_id, int32_t acks, int32_t timeout_ms,
                        const std::string& client_id);

  // Appends a PartitionProduceData entry. `records` must not change while gRPC may send it.
  void AddEntry(const std::string& topic, int32_t partition, std::shared_ptr<std::string> records);

  uint64_t request_id() const { return request_id_; }
  size_t entry_count() const { return entries_.size(); }
  // Entry i's records. Whoever takes the bytes back (a retry) must copy them while
  // use_count() > 1: gRPC may still hold the slice.
  const std::shared_ptr<std::string>& records(size_t i) const { return entries_[i].records; }

  // The wire form, records by reference.
  grpc::ByteBuffer ToByteBuffer() const;
  // The wire form as one string (tests, diagnostics).
  std::string SerializeAsString() const;

 private:
  struct Entry {
    std::string prefix;  // field 4's tag and length, then topic, partition and records' tag+length
    std::shared_ptr<std::string> records;
  };
  uint64_t request_id_;
  std::string head_;  // fields 1-3
  std::string tail_;  // field 5
  std::vector<Entry> entries_;
};

}  // namespace rill::client::internal

namespace grpc {

// gRPC writes an EncodedProduceRequest as its slices. It is only ever sent.
template <>
class SerializationTraits<rill::client::internal::EncodedProduceRequest, void> {
 public:
  static Status Serialize(const rill::client::internal::EncodedProduceRequest& msg,
                          ByteBuffer* buffer, bool* own_buffer) {
    ByteBuffer built = msg.ToByteBuffer();
    buffer->Swap(&built);
    *own_buffer = true;
    return Status::OK;
  }
  static Status Deserialize(ByteBuffer* /*buffer*/,
                            rill::client::internal::EncodedProduceRequest* /*msg*/) {
    return Status(StatusCode::UNIMPLEMENTED, "EncodedProduceRequest is send-only");
  }
};

}  // namespace grpc
