#include "rill/proto/crc32c.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "test_seed.h"

namespace rill::crc32c {
namespace {

// Known vectors: the check value of the CRC-32C catalogue and RFC 3720 (iSCSI) appendix B.4.
struct Vector {
  std::string data;
  uint32_t crc;
};

std::vector<Vector> KnownVectors() {
  std::string inc(32, '\0'), dec(32, '\0');
  for (int i = 0; i < 32; ++i) {
    inc[i] = static_cast<char>(i);
    dec[i] = static_cast<char>(31 - i);
  }
  return {
      {"", 0},
      {"123456789", 0xE3069283u},
      {std::string(32, '\0'), 0x8A9136AAu},
      {std::string(32, '\xff'), 0x62A8AB43u},
      {inc, 0x46DD794Eu},
      {dec, 0x113FDB5Cu},
      {"a", 0xC1D04330u},
  };
}

TEST(Crc32c, KnownVectorsDefault) {
  for (const auto& v : KnownVectors()) EXPECT_EQ(Value(v.data), v.crc) << v.data.size();
}

TEST(Crc32c, KnownVectorsPortable) {
  for (const auto& v : KnownVectors()) {
    EXPECT_EQ(ExtendPortable(0, v.data.data(), v.data.size()), v.crc) << v.data.size();
  }
}

TEST(Crc32c, KnownVectorsHardware) {
  if (!HardwareAvailable()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  for (const auto& v : KnownVectors()) {
    EXPECT_EQ(ExtendHardware(0, v.data.data(), v.data.size()), v.crc) << v.data.size();
  }
}

TEST(Crc32c, ExtendIsIncremental) {
  std::string s = "The quick brown fox jumps over the lazy dog, twice over the lazy dog.";
  uint32_t whole = Value(s);
  for (size_t split = 0; split <= s.size(); ++split) {
    EXPECT_EQ(Extend(Value(s.data(), split), s.data() + split, s.size() - split), whole) << split;
  }
}

// Hardware and portable agree on random buffers of random lengths at every alignment.
TEST(Crc32c, HardwareMatchesPortableOnRandomBuffers) {
  if (!HardwareAvailable()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  uint64_t seed = rill::testing::TestSeed();
  SCOPED_TRACE(rill::testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  std::vector<char> buf(70000);
  for (char& c : buf) c = static_cast<char>(rng());
  for (int i = 0; i < 2000; ++i) {
    size_t offset = rng() % 16;
    size_t len = i < 200 ? static_cast<size_t>(i) : rng() % (buf.size() - 16);
    uint32_t start = (i % 3 == 0) ? 0 : static_cast<uint32_t>(rng());
    ASSERT_EQ(ExtendHardware(start, buf.data() + offset, len),
              ExtendPortable(start, buf.data() + offset, len))
        << "offset " << offset << " len " << len;
  }
}

// Lengths around the hardware path's 3-way block boundaries (3 x 256 and 3 x 8192 bytes).
TEST(Crc32c, HardwareMatchesPortableAtBlockBoundaries) {
  if (!HardwareAvailable()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  std::string buf(3 * 8192 * 2 + 64, '\0');
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<char>(i * 131 + (i >> 7));
  for (size_t base : {size_t{3 * 256}, size_t{3 * 8192}, size_t{2 * 3 * 8192}}) {
    for (size_t len = base - 9; len <= base + 9; ++len) {
      ASSERT_EQ(ExtendHardware(0x12345678u, buf.data() + 1, len),
                ExtendPortable(0x12345678u, buf.data() + 1, len))
          << "len " << len;
    }
  }
}

}  // namespace
}  // namespace rill::crc32c
