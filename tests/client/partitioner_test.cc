#include "rill/client/partitioner.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

namespace rill::client {
namespace {

// Values from Kafka's own test of Utils.murmur2 (UtilsTest.testMurmur2) and from Akka's
// Kafka-compatible sharding, which checks itself against Kafka's implementation.
TEST(Murmur2Test, MatchesKafkaVectors) {
  const std::map<std::string, int32_t> cases = {
      {"21", -973932308},
      {"foobar", -790332482},
      {"a-little-bit-long-string", -985981536},
      {"a-little-bit-longer-string", -1486304829},
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
      {"abc", 479470107},
      {"1", -1993445489},
      {"12", 126087238},
      {"123", -267702483},
      {"1234", -1614185708},
      {"12345", -1188365604},
  };
  for (const auto& [key, expected] : cases) {
    EXPECT_EQ(Murmur2(key), expected) << "key '" << key << "'";
  }
}

TEST(Murmur2Test, EmptyAndBinaryKeys) {
  // Deterministic and total: any bytes, including NULs and high bytes, hash without UB.
  const std::string binary("\x00\xff\x80\x7f\x01", 5);
  EXPECT_EQ(Murmur2(binary), Murmur2(std::string(binary)));
  EXPECT_NE(Murmur2(binary), Murmur2(binary.substr(0, 4)));
  EXPECT_EQ(Murmur2(""), Murmur2(std::string_view()));
}

TEST(KeyPartitionTest, IsToPositiveModuloPartitions) {
  EXPECT_EQ(ToPositive(-1), 0x7fffffff);
  EXPECT_EQ(ToPositive(INT32_MIN), 0);
  EXPECT_EQ(ToPositive(5), 5);
  // murmur2("21") = -973932308 -> toPositive = 1173551340.
  EXPECT_EQ(ToPositive(-973932308), 1173551340);
  EXPECT_EQ(KeyPartition("21", 10), 1173551340 % 10);
  EXPECT_EQ(KeyPartition("foobar", 7), ToPositive(-790332482) % 7);
  for (int n : {1, 2, 3, 16, 100}) {
    for (int i = 0; i < 200; ++i) {
      const std::string key = "key-" + std::to_string(i);
      const int32_t p = KeyPartition(key, n);
      EXPECT_GE(p, 0);
      EXPECT_LT(p, n);
      EXPECT_EQ(p, ToPositive(Murmur2(key)) % n);
    }
  }
}

TEST(StickyPartitionerTest, SticksUntilBatchClosedThenMoves) {
  StickyPartitioner sp(42);
  const int32_t first = sp.Partition("t", 8);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sp.Partition("t", 8), first);
  // Closing a batch of another partition does not move it.
  sp.OnBatchClosed("t", (first + 1) % 8, 8);
  EXPECT_EQ(sp.Partition("t", 8), first);
  // Closing the sticky partition's batch moves it to a different partition.
  sp.OnBatchClosed("t", first, 8);
  const int32_t second = sp.Partition("t", 8);
  EXPECT_NE(second, first);
  EXPECT_GE(second, 0);
  EXPECT_LT(second, 8);
}

TEST(StickyPartitionerTest, SpreadsOverAllPartitionsAndTopicsAreIndependent) {
  StickyPartitioner sp(7);
  std::set<int32_t> seen;
  for (int i = 0; i < 400; ++i) {
    const int32_t p = sp.Partition("a", 4);
    seen.insert(p);
    sp.OnBatchClosed("a", p, 4);
  }
  EXPECT_EQ(seen.size(), 4u);
  const int32_t b = sp.Partition("b", 4);
  sp.OnBatchClosed("a", sp.Partition("a", 4), 4);
  EXPECT_EQ(sp.Partition("b", 4), b);
}

TEST(StickyPartitionerTest, SinglePartitionNeverMoves) {
  StickyPartitioner sp(1);
  EXPECT_EQ(sp.Partition("t", 1), 0);
  sp.OnBatchClosed("t", 0, 1);
  EXPECT_EQ(sp.Partition("t", 1), 0);
}

}  // namespace
}  // namespace rill::client
