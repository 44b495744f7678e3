#pragma once

// The compression codecs of RecordBatch v2 (attributes bits 0-2), with Kafka's framings:
//   gzip   RFC 1952 gzip stream (zlib); decode also accepts zlib-wrapped deflate.
//   snappy written with xerial snappy-java framing as the Java client does (magic
//          82 'SNAPPY' 00, version 1, compatible 1, then [i32 BE length][raw snappy block]...);
//          decode accepts both xerial framing and a bare raw snappy block.
//   lz4    LZ4 frame format (the KIP-57 corrected header checksum), 64 KiB independent blocks.
//   zstd   zstd frames; decode accepts concatenated frames.
// Decompress() streams and never holds more than max_decompressed_bytes + 1 output bytes, so a
// small input that expands enormously ("zip bomb") fails with ResourceExhausted instead of
// allocating. Malformed compressed input fails with Corruption naming the codec.
// All functions are thread-safe (no shared state).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rill/proto/status.h"

namespace rill::batch {

enum class Compression : uint8_t { kNone = 0, kGzip = 1, kSnappy = 2, kLz4 = 3, kZstd = 4 };

// "none", "gzip", "snappy", "lz4", "zstd" (Kafka's compression.type names).
std::string_view CompressionName(Compression c);
std::optional<Compression> ParseCompression(std::string_view name);

Result<std::string> Compress(Compression c, std::string_view input);
Result<std::string> Decompress(Compression c, std::string_view input,
                               size_t max_decompressed_bytes);

}  // namespace rill::batch
