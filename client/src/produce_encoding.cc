#include "produce_encoding.h"

#include <grpcpp/support/slice.h>

namespace rill::client::internal {
namespace {

// Protobuf wire types and the field numbers of rill.v1.ProduceRequest / PartitionProduceData.
constexpr uint32_t kVarint = 0;
constexpr uint32_t kLen = 2;
constexpr uint32_t kRequestId = 1, kAcks = 2, kTimeoutMs = 3, kPartitions = 4, kClientId = 5;
constexpr uint32_t kTopic = 1, kPartition = 2, kRecords = 3;

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutTag(std::string* out, uint32_t field, uint32_t wire_type) {
  PutVarint(out, (field << 3) | wire_type);
}

// int32 fields are sign-extended to 64 bits on the wire (a negative one takes 10 bytes).
uint64_t Int32Wire(int32_t v) { return static_cast<uint64_t>(static_cast<int64_t>(v)); }

void PutInt32Field(std::string* out, uint32_t field, int32_t v) {
  if (v == 0) return;
  PutTag(out, field, kVarint);
  PutVarint(out, Int32Wire(v));
}

void PutStringField(std::string* out, uint32_t field, const std::string& s) {
  if (s.empty()) return;
  PutTag(out, field, kLen);
  PutVarint(out, s.size());
  out->append(s);
}

void ReleaseShared(void* p) { delete static_cast<std::shared_ptr<std::string>*>(p); }

}  // namespace

EncodedProduceRequest::EncodedProduceRequest(uint64_t request_id, int32_t acks, int32_t timeout_ms,
                                             const std::string& client_id)
    : request_id_(request_id) {
  if (request_id != 0) {
    PutTag(&head_, kRequestId, kVarint);
    PutVarint(&head_, request_id);
  }
  PutInt32Field(&head_, kAcks, acks);
  PutInt32Field(&head_, kTimeoutMs, timeout_ms);
  PutStringField(&tail_, kClientId, client_id);
}

void EncodedProduceRequest::AddEntry(const std::string& topic, int32_t partition,
                                     std::shared_ptr<std::string> records) {
  std::string fields;
  PutStringField(&fields, kTopic, topic);
  PutInt32Field(&fields, kPartition, partition);
  const size_t n = records ? records->size() : 0;
  if (n > 0) {
    PutTag(&fields, kRecords, kLen);
    PutVarint(&fields, n);
  }
  Entry e;
  PutTag(&e.prefix, kPartitions, kLen);
  PutVarint(&e.prefix, fields.size() + n);
  e.prefix += fields;
  e.records = n > 0 ? std::move(records) : nullptr;
  entries_.push_back(std::move(e));
}

grpc::ByteBuffer EncodedProduceRequest::ToByteBuffer() const {
  std::vector<grpc::Slice> slices;
  slices.reserve(2 * entries_.size() + 2);
  // Small pieces are copied, coalesced up to the next records slice.
  std::string small = head_;
  for (const Entry& e : entries_) {
    small += e.prefix;
    if (!e.records) continue;
    slices.emplace_back(small);
    small.clear();
    // The slice holds its own reference to the buffer; gRPC drops it when done.
    slices.emplace_back(e.records->data(), e.records->size(), &ReleaseShared,
                        new std::shared_ptr<std::string>(e.records));
  }
  small += tail_;
  if (!small.empty()) slices.emplace_back(small);
  return grpc::ByteBuffer(slices.data(), slices.size());
}

std::string EncodedProduceRequest::SerializeAsString() const {
  std::string out = head_;
  for (const Entry& e : entries_) {
    out += e.prefix;
    if (e.records) out += *e.records;
  }
  out += tail_;
  return out;
}

}  // namespace rill::client::internal
