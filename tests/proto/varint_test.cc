#include "rill/proto/varint.h"

#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <string>

#include "test_seed.h"

namespace rill::varint {
namespace {

std::string Hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

std::string EncVarint(int32_t v) {
  std::string s;
  AppendVarint(&s, v);
  return s;
}
std::string EncVarlong(int64_t v) {
  std::string s;
  AppendVarlong(&s, v);
  return s;
}

// Encodings as Kafka's ByteUtils.writeVarint / writeVarlong produce them.
TEST(Varint, KnownEncodings) {
  EXPECT_EQ(Hex(EncVarint(0)), "00");
  EXPECT_EQ(Hex(EncVarint(-1)), "01");
  EXPECT_EQ(Hex(EncVarint(1)), "02");
  EXPECT_EQ(Hex(EncVarint(-2)), "03");
  EXPECT_EQ(Hex(EncVarint(63)), "7e");
  EXPECT_EQ(Hex(EncVarint(-64)), "7f");
  EXPECT_EQ(Hex(EncVarint(64)), "8001");
  EXPECT_EQ(Hex(EncVarint(300)), "d804");
  EXPECT_EQ(Hex(EncVarint(std::numeric_limits<int32_t>::max())), "feffffff0f");
  EXPECT_EQ(Hex(EncVarint(std::numeric_limits<int32_t>::min())), "ffffffff0f");
  EXPECT_EQ(Hex(EncVarlong(0)), "00");
  EXPECT_EQ(Hex(EncVarlong(-1)), "01");
  EXPECT_EQ(Hex(EncVarlong(std::numeric_limits<int64_t>::max())), "feffffffffffffffff01");
  EXPECT_EQ(Hex(EncVarlong(std::numeric_limits<int64_t>::min())), "ffffffffffffffffff01");
}

TEST(Varint, SizesMatchEncodings) {
  for (int32_t v : {0, 1, -1, 63, -64, 64, -65, 8191, 8192, 1 << 20, -(1 << 27),
                    std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::min()}) {
    EXPECT_EQ(VarintSize(v), EncVarint(v).size()) << v;
  }
  for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{1} << 40, -(int64_t{1} << 55),
                    std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()}) {
    EXPECT_EQ(VarlongSize(v), EncVarlong(v).size()) << v;
  }
}

TEST(Varint, RandomRoundTrip) {
  uint64_t seed = rill::testing::TestSeed();
  SCOPED_TRACE(rill::testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 100000; ++i) {
    int shift = static_cast<int>(rng() % 64);
    auto v64 = static_cast<int64_t>(rng() >> shift);
    if (rng() & 1) v64 = -v64;
    auto v32 = static_cast<int32_t>(v64);
    std::string a = EncVarint(v32), b = EncVarlong(v64);
    int32_t d32 = 0;
    int64_t d64 = 0;
    ASSERT_EQ(DecodeVarint(a.data(), a.data() + a.size(), &d32), a.data() + a.size());
    ASSERT_EQ(d32, v32);
    ASSERT_EQ(DecodeVarlong(b.data(), b.data() + b.size(), &d64), b.data() + b.size());
    ASSERT_EQ(d64, v64);
  }
}

TEST(Varint, TruncatedIsRejected) {
  int32_t v32;
  int64_t v64;
  std::string empty;
  EXPECT_EQ(DecodeVarint(empty.data(), empty.data(), &v32), nullptr);
  EXPECT_EQ(DecodeVarlong(empty.data(), empty.data(), &v64), nullptr);
  std::string full = EncVarint(std::numeric_limits<int32_t>::max());
  for (size_t n = 0; n < full.size(); ++n) {
    EXPECT_EQ(DecodeVarint(full.data(), full.data() + n, &v32), nullptr) << n;
  }
  std::string full64 = EncVarlong(std::numeric_limits<int64_t>::min());
  for (size_t n = 0; n < full64.size(); ++n) {
    EXPECT_EQ(DecodeVarlong(full64.data(), full64.data() + n, &v64), nullptr) << n;
  }
}

TEST(Varint, TooLongIsRejected) {
  int32_t v32;
  int64_t v64;
  std::string six("\x80\x80\x80\x80\x80\x00", 6);  // 6 bytes: longer than any varint
  EXPECT_EQ(DecodeVarint(six.data(), six.data() + six.size(), &v32), nullptr);
  std::string eleven(10, '\x80');
  eleven.push_back('\0');
  EXPECT_EQ(DecodeVarlong(eleven.data(), eleven.data() + eleven.size(), &v64), nullptr);
}

TEST(Varint, OverflowingLastByteIsRejected) {
  int32_t v32;
  int64_t v64;
  std::string big("\xff\xff\xff\xff\x1f", 5);  // 35 bits
  EXPECT_EQ(DecodeVarint(big.data(), big.data() + big.size(), &v32), nullptr);
  std::string big64("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x03", 10);  // 65 bits
  EXPECT_EQ(DecodeVarlong(big64.data(), big64.data() + big64.size(), &v64), nullptr);
}

TEST(Varint, DecodingStopsAtTheVarint) {
  std::string s = EncVarint(300) + "tail";
  int32_t v;
  const char* p = DecodeVarint(s.data(), s.data() + s.size(), &v);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(v, 300);
  EXPECT_EQ(std::string_view(p, static_cast<size_t>(s.data() + s.size() - p)), "tail");
}

}  // namespace
}  // namespace rill::varint
