#include "rill/proto/compression.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "rill/proto/endian.h"
#include "test_seed.h"

namespace rill::batch {
namespace {

constexpr Compression kCodecs[] = {Compression::kNone, Compression::kGzip, Compression::kSnappy,
                                   Compression::kLz4, Compression::kZstd};
constexpr Compression kRealCodecs[] = {Compression::kGzip, Compression::kSnappy, Compression::kLz4,
                                       Compression::kZstd};

std::string RandomBytes(std::mt19937_64& rng, size_t n, bool compressible) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    s[i] = compressible ? static_cast<char>('a' + (rng() % 4)) : static_cast<char>(rng());
  }
  return s;
}

TEST(Compression, NamesRoundTrip) {
  for (Compression c : kCodecs) EXPECT_EQ(ParseCompression(CompressionName(c)), c);
  EXPECT_EQ(ParseCompression("brotli"), std::nullopt);
}

TEST(Compression, RoundTripEveryCodecAndSize) {
  uint64_t seed = rill::testing::TestSeed();
  SCOPED_TRACE(rill::testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  for (Compression c : kCodecs) {
    for (size_t n :
         {size_t{0}, size_t{1}, size_t{100}, size_t{32768}, size_t{65537}, size_t{1} << 20}) {
      for (bool compressible : {false, true}) {
        std::string in = RandomBytes(rng, n, compressible);
        auto z = Compress(c, in);
        ASSERT_TRUE(z.ok()) << CompressionName(c) << ": " << z.status().ToString();
        auto out = Decompress(c, *z, n);  // the limit is inclusive
        ASSERT_TRUE(out.ok()) << CompressionName(c) << " n=" << n << ": "
                              << out.status().ToString();
        ASSERT_EQ(*out, in) << CompressionName(c) << " n=" << n;
      }
    }
  }
}

TEST(Compression, OneByteOverTheLimitIsRefused) {
  std::string in(100000, 'x');
  for (Compression c : kCodecs) {
    auto z = Compress(c, in);
    ASSERT_TRUE(z.ok());
    auto out = Decompress(c, *z, in.size() - 1);
    ASSERT_FALSE(out.ok()) << CompressionName(c);
    EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted) << out.status().ToString();
    EXPECT_NE(out.status().message().find("exceeds the limit"), std::string::npos);
  }
}

// A small input that expands to 64 MiB must fail against a 1 MiB limit (under ASan this also
// shows the decoder never allocated anything near the expanded size).
TEST(Compression, ZipBombIsRefused) {
  std::string zeros(64u << 20, '\0');
  for (Compression c : kRealCodecs) {
    auto z = Compress(c, zeros);
    ASSERT_TRUE(z.ok());
    ASSERT_LT(z->size(), zeros.size() / 10) << CompressionName(c);
    auto out = Decompress(c, *z, 1u << 20);
    ASSERT_FALSE(out.ok()) << CompressionName(c);
    EXPECT_EQ(out.status().code(), StatusCode::kResourceExhausted) << out.status().ToString();
  }
}

TEST(Compression, TruncatedInputIsCorruption) {
  uint64_t seed = rill::testing::TestSeed();
  SCOPED_TRACE(rill::testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  std::string in = RandomBytes(rng, 200000, true);
  for (Compression c : kRealCodecs) {
    auto z = Compress(c, in);
    ASSERT_TRUE(z.ok());
    for (size_t cut : {size_t{0}, size_t{1}, z->size() / 2, z->size() - 1}) {
      auto out = Decompress(c, z->substr(0, cut), 1u << 30);
      ASSERT_FALSE(out.ok()) << CompressionName(c) << " cut " << cut;
      EXPECT_EQ(out.status().code(), StatusCode::kCorruption) << out.status().ToString();
      EXPECT_NE(out.status().message().find(CompressionName(c)), std::string::npos)
          << out.status().ToString();
    }
  }
}

TEST(Compression, GarbageIsCorruptionNotACrash) {
  uint64_t seed = rill::testing::TestSeed();
  SCOPED_TRACE(rill::testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 300; ++i) {
    std::string junk = RandomBytes(rng, rng() % 2000, false);
    for (Compression c : kRealCodecs) {
      auto out = Decompress(c, junk, 1u << 20);
      if (!out.ok()) {
        EXPECT_TRUE(out.status().code() == StatusCode::kCorruption ||
                    out.status().code() == StatusCode::kResourceExhausted)
            << out.status().ToString();
      }
    }
  }
}

TEST(Compression, FlippedBitsInCompressedDataNeverCrash) {
  uint64_t seed = rill::testing::TestSeed();
  SCOPED_TRACE(rill::testing::SeedTrace(seed));
  std::mt19937_64 rng(seed);
  std::string in = RandomBytes(rng, 50000, true);
  for (Compression c : kRealCodecs) {
    std::string z = *Compress(c, in);
    for (int i = 0; i < 200; ++i) {
      std::string bad = z;
      bad[rng() % bad.size()] ^= static_cast<char>(1 << (rng() % 8));
      auto out = Decompress(c, bad, 1u << 20);
      if (out.ok()) {
        EXPECT_LE(out->size(), size_t{1} << 20);
      }
    }
  }
}

// Snappy as the Java client writes it: xerial framing.
TEST(Compression, SnappyWritesXerialFraming) {
  std::string in(100000, 'q');
  std::string z = *Compress(Compression::kSnappy, in);
  ASSERT_GE(z.size(), 20u);
  EXPECT_EQ(z.substr(0, 8), std::string("\x82SNAPPY\0", 8));
  EXPECT_EQ(be::Load32(z.data() + 8), 1u);   // version
  EXPECT_EQ(be::Load32(z.data() + 12), 1u);  // compatible version
  // 100000 bytes in 32 KiB blocks: 4 blocks, each [i32 length][raw snappy].
  size_t pos = 16, blocks = 0;
  while (pos < z.size()) {
    pos += 4 + be::Load32(z.data() + pos);
    ++blocks;
  }
  EXPECT_EQ(pos, z.size());
  EXPECT_EQ(blocks, 4u);
}

// librdkafka and others may send a bare raw snappy block; decoding accepts it.
TEST(Compression, SnappyDecodesRawBlock) {
  // Raw snappy of "hello hello hello": preamble 17, literal "hello ", copy 11 bytes at offset 6.
  // Built by hand so the test does not depend on the encoder.
  std::string raw;
  raw.push_back(17);                               // uncompressed length varint
  raw.push_back(static_cast<char>((6 - 1) << 2));  // literal, 6 bytes
  raw += "hello ";
  raw.push_back(static_cast<char>(0x02 | ((11 - 1) << 2)));  // copy, 2-byte offset, len 11
  raw.push_back(6);
  raw.push_back(0);
  auto out = Decompress(Compression::kSnappy, raw, 1000);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, "hello hello hello");
  auto small = Decompress(Compression::kSnappy, raw, 16);
  EXPECT_EQ(small.status().code(), StatusCode::kResourceExhausted);
}

TEST(Compression, SnappyXerialBlockOverrunIsCorruption) {
  std::string z = *Compress(Compression::kSnappy, std::string(1000, 'a'));
  be::Store32(z.data() + 16, 1u << 30);
  auto out = Decompress(Compression::kSnappy, z, 1u << 20);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kCorruption);
  EXPECT_NE(out.status().message().find("overruns"), std::string::npos);
}

// LZ4 as Kafka's KafkaLZ4BlockOutputStream writes it: frame magic, FLG version 01 with
// independent blocks, BD 64 KiB.
TEST(Compression, Lz4WritesKafkaFrame) {
  std::string z = *Compress(Compression::kLz4, std::string(1000, 'z'));
  ASSERT_GE(z.size(), 7u);
  EXPECT_EQ(static_cast<uint8_t>(z[0]), 0x04);
  EXPECT_EQ(static_cast<uint8_t>(z[1]), 0x22);
  EXPECT_EQ(static_cast<uint8_t>(z[2]), 0x4D);
  EXPECT_EQ(static_cast<uint8_t>(z[3]), 0x18);
  EXPECT_EQ(static_cast<uint8_t>(z[4]) & 0xE0, 0x60);  // version 01, block independence
  EXPECT_EQ(static_cast<uint8_t>(z[5]), 0x40);         // 64 KiB max block size
}

TEST(Compression, GzipWritesGzipMagic) {
  std::string z = *Compress(Compression::kGzip, "abc");
  ASSERT_GE(z.size(), 2u);
  EXPECT_EQ(static_cast<uint8_t>(z[0]), 0x1f);
  EXPECT_EQ(static_cast<uint8_t>(z[1]), 0x8b);
}

TEST(Compression, ConcatenatedFramesDecode) {
  for (Compression c : {Compression::kGzip, Compression::kLz4, Compression::kZstd}) {
    std::string z = *Compress(c, "first,") + *Compress(c, "second");
    auto out = Decompress(c, z, 100);
    ASSERT_TRUE(out.ok()) << CompressionName(c) << ": " << out.status().ToString();
    EXPECT_EQ(*out, "first,second");
  }
}

}  // namespace
}  // namespace rill::batch
