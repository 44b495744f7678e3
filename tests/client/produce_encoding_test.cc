// EncodedProduceRequest writes exactly the bytes protobuf writes for the same ProduceRequest
// (so the broker parses it as one), references the records instead of copying them, and gives
// the bytes back for a retry.

#include "produce_encoding.h"

#include <grpcpp/support/byte_buffer.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "rill/v1/producer.pb.h"

namespace rill::client::internal {
namespace {

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

uint64_t Seed() {
  const char* env = std::getenv("RILL_TEST_SEED");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : std::random_device{}();
}

TEST(ProduceEncodingTest, SameBytesAsProtobufForRandomRequests) {
  const uint64_t seed = Seed();
  SCOPED_TRACE("RILL_TEST_SEED=" + std::to_string(seed));
  std::mt19937_64 rng(seed);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  // Zero and negative values, empty strings and empty records included: proto3 leaves zero
  // values out and writes a negative int32 as ten bytes.
  const std::vector<int32_t> ints = {0, 1, -1, 127, 128, 300, INT32_MAX, INT32_MIN};
  for (int round = 0; round < 500; ++round) {
    const uint64_t id = pick(0, 3) == 0 ? 0 : static_cast<uint64_t>(rng());
    const int32_t acks = ints[pick(0, ints.size() - 1)];
    const int32_t timeout = ints[pick(0, ints.size() - 1)];
    const std::string client = pick(0, 2) == 0 ? "" : std::string(pick(1, 200), 'c');
    EncodedProduceRequest ours(id, acks, timeout, client);
    v1::ProduceRequest theirs;
    theirs.set_request_id(id);
    theirs.set_acks(acks);
    theirs.set_timeout_ms(timeout);
    theirs.set_client_id(client);
    const int entries = static_cast<int>(pick(0, 5));
    for (int e = 0; e < entries; ++e) {
      const std::string topic = pick(0, 5) == 0 ? "" : "topic-" + std::to_string(pick(0, 1000));
      const int32_t partition = ints[pick(0, ints.size() - 1)];
      auto records = std::make_shared<std::string>();
      const int64_t size = pick(0, 3) == 0 ? 0 : pick(1, 70000);
      for (int64_t i = 0; i < size; ++i) records->push_back(static_cast<char>(rng()));
      auto* p = theirs.add_partitions();
      p->set_topic(topic);
      p->set_partition(partition);
      p->set_records(*records);
      ours.AddEntry(topic, partition, records);
    }
    const std::string expected = theirs.SerializeAsString();
    ASSERT_EQ(ours.SerializeAsString(), expected) << "round " << round;
    ASSERT_EQ(Flatten(ours.ToByteBuffer()), expected) << "round " << round;
    v1::ProduceRequest parsed;
    ASSERT_TRUE(parsed.ParseFromString(Flatten(ours.ToByteBuffer())));
    ASSERT_EQ(parsed.partitions_size(), entries);
  }
}

TEST(ProduceEncodingTest, TheBufferSharesTheRecordsUntilItIsGone) {
  auto records = std::make_shared<std::string>(100000, 'r');
  EncodedProduceRequest req(7, 1, 1000, "me");
  req.AddEntry("t", 3, records);
  const char* data = records->data();
  {
    grpc::ByteBuffer buffer = req.ToByteBuffer();
    EXPECT_GT(records.use_count(), 2);  // ours, the request's, the slice's
    std::vector<grpc::Slice> slices;
    ASSERT_TRUE(buffer.Dump(&slices).ok());
    bool referenced = false;  // some slice points into the records: no copy was made
    for (const auto& s : slices) {
      const char* b = reinterpret_cast<const char*>(s.begin());
      if (b >= data && b < data + records->size()) referenced = true;
    }
    EXPECT_TRUE(referenced);
  }
  EXPECT_EQ(records.use_count(), 2);
  EXPECT_EQ(req.records(0), records);
  EXPECT_EQ(req.request_id(), 7u);
  EXPECT_EQ(req.entry_count(), 1u);
}

}  // namespace
}  // namespace rill::client::internal
