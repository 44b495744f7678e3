#include "rill/proto/compression.h"

#include <lz4frame.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <memory>

#include "rill/proto/endian.h"

namespace rill::batch {
namespace {

// xerial snappy-java stream header: magic, then version and min compatible version (i32 BE).
constexpr char kXerialMagic[8] = {'\x82', 'S', 'N', 'A', 'P', 'P', 'Y', '\0'};
constexpr size_t kXerialHeaderSize = 16;
constexpr size_t kXerialBlockSize = 32 * 1024;  // snappy-java's default block size
constexpr size_t kMaxChunk = 1u << 30;          // per-call output window (fits zlib's uInt)

// Output buffer that grows geometrically but never beyond limit + 1 bytes: holding limit + 1
// bytes proves the output exceeds the limit without decompressing further.
class BoundedOutput {
 public:
  BoundedOutput(size_t limit, size_t input_size)
      : limit_(limit), cap_(limit == SIZE_MAX ? limit : limit + 1) {
    size_t first = std::max<size_t>(input_size * 4, 64 * 1024);
    buf_.resize(std::min(first, cap_));
  }
  // Makes room to write; false when the buffer already holds cap_ bytes.
  bool Reserve() {
    if (used_ < buf_.size()) return true;
    if (buf_.size() >= cap_) return false;
    size_t next = buf_.size() > cap_ / 2 ? cap_ : std::max<size_t>(buf_.size() * 2, 64 * 1024);
    buf_.resize(std::min(next, cap_));
    return true;
  }
  char* free_ptr() { return buf_.data() + used_; }
  size_t free_size() const { return std::min(buf_.size() - used_, kMaxChunk); }
  void Commit(size_t n) { used_ += n; }
  size_t used() const { return used_; }
  bool exceeded() const { return used_ > limit_; }
  Status ExceededStatus(std::string_view codec) const {
    return Status::ResourceExhausted(std::string(codec) +
                                     ": decompressed size exceeds the limit of " +
                                     std::to_string(limit_) + " bytes");
  }
  std::string Take() && {
    buf_.resize(used_);
    return std::move(buf_);
  }

 private:
  size_t limit_;
  size_t cap_;
  size_t used_ = 0;
  std::string buf_;
};

Status Truncated(std::string_view codec) {
  return Status::Corruption(std::string(codec) + ": truncated compressed data");
}

// ---- gzip ----

Result<std::string> GzipCompress(std::string_view in) {
  if (in.size() > UINT_MAX / 2) return Status::InvalidArgument("gzip: input too large");
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    return Status::Failed("gzip: deflateInit2 failed");
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(in.size())) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int r = deflate(&zs, Z_FINISH);
  size_t n = zs.total_out;
  deflateEnd(&zs);
  if (r != Z_STREAM_END) return Status::Failed("gzip: deflate did not finish");
  out.resize(n);
  return out;
}

Result<std::string> GzipDecompress(std::string_view in, size_t limit) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return Status::Failed("gzip: inflateInit2 failed");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
  const char* p = in.data();
  size_t left = in.size();
  BoundedOutput out(limit, in.size());
  for (;;) {
    if (!out.Reserve()) return out.ExceededStatus("gzip");
    uInt in_chunk = static_cast<uInt>(std::min<size_t>(left, kMaxChunk));
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(p));
    zs.avail_in = in_chunk;
    zs.next_out = reinterpret_cast<Bytef*>(out.free_ptr());
    zs.avail_out = static_cast<uInt>(out.free_size());
    uInt out_before = zs.avail_out;
    int r = inflate(&zs, Z_NO_FLUSH);
    size_t consumed = in_chunk - zs.avail_in;
    p += consumed;
    left -= consumed;
    out.Commit(out_before - zs.avail_out);
    if (out.exceeded()) return out.ExceededStatus("gzip");
    if (r == Z_STREAM_END) {
      if (left == 0) break;
      inflateReset(&zs);  // concatenated gzip members, as GZIPInputStream reads them
      continue;
    }
    if (r == Z_OK) continue;
    if (r == Z_BUF_ERROR) {
      if (zs.avail_out == 0) continue;  // needs more output room
      return Truncated("gzip");
    }
    return Status::Corruption(std::string("gzip: ") + (zs.msg ? zs.msg : "invalid data"));
  }
  return std::move(out).Take();
}

// ---- snappy ----

Result<std::string> SnappyCompress(std::string_view in) {
  std::string out(kXerialMagic, sizeof(kXerialMagic));
  out.resize(kXerialHeaderSize);
  be::Store32(out.data() + 8, 1);
  be::Store32(out.data() + 12, 1);
  std::string block;
  for (size_t pos = 0; pos < in.size(); pos += kXerialBlockSize) {
    size_t n = std::min(kXerialBlockSize, in.size() - pos);
    size_t at = out.size();
    out.resize(at + 4 + snappy::MaxCompressedLength(n));
    size_t written = 0;
    snappy::RawCompress(in.data() + pos, n, out.data() + at + 4, &written);
    be::Store32(out.data() + at, static_cast<uint32_t>(written));
    out.resize(at + 4 + written);
  }
  return out;
}

// Appends one raw snappy block to out, refusing to grow it beyond limit.
Status SnappyBlock(std::string_view block, size_t limit, std::string* out) {
  size_t n = 0;
  if (!snappy::GetUncompressedLength(block.data(), block.size(), &n)) {
    return Status::Corruption("snappy: bad block length preamble");
  }
  if (n > limit || out->size() > limit - n) {
    return Status::ResourceExhausted("snappy: decompressed size exceeds the limit of " +
                                     std::to_string(limit) + " bytes");
  }
  size_t at = out->size();
  if (at + n > out->capacity()) {
    // Grow geometrically, but never reserve beyond the limit.
    out->reserve(std::min(std::max(at + n, 2 * out->capacity()), limit));
  }
  out->resize(at + n);
  if (!snappy::RawUncompress(block.data(), block.size(), out->data() + at)) {
    return Status::Corruption("snappy: invalid compressed block");
  }
  return Status::OK();
}

Result<std::string> SnappyDecompress(std::string_view in, size_t limit) {
  std::string out;
  if (in.size() >= sizeof(kXerialMagic) &&
      std::memcmp(in.data(), kXerialMagic, sizeof(kXerialMagic)) == 0) {
    if (in.size() < kXerialHeaderSize) return Truncated("snappy (xerial header)");
    size_t pos = kXerialHeaderSize;
    while (pos < in.size()) {
      if (in.size() - pos < 4) return Truncated("snappy (xerial block length)");
      uint32_t len = be::Load32(in.data() + pos);
      pos += 4;
      if (len > in.size() - pos) {
        return Status::Corruption("snappy: xerial block length " + std::to_string(len) +
                                  " overruns the input");
      }
      RILL_RETURN_IF_ERROR(SnappyBlock(in.substr(pos, len), limit, &out));
      pos += len;
    }
    return out;
  }
  RILL_RETURN_IF_ERROR(SnappyBlock(in, limit, &out));
  return out;
}

// ---- lz4 ----

Result<std::string> Lz4Compress(std::string_view in) {
  LZ4F_preferences_t prefs{};
  prefs.frameInfo.blockSizeID = LZ4F_max64KB;
  prefs.frameInfo.blockMode = LZ4F_blockIndependent;
  prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
  std::string out(LZ4F_compressFrameBound(in.size(), &prefs), '\0');
  size_t n = LZ4F_compressFrame(out.data(), out.size(), in.data(), in.size(), &prefs);
  if (LZ4F_isError(n)) return Status::Failed(std::string("lz4: ") + LZ4F_getErrorName(n));
  out.resize(n);
  return out;
}

Result<std::string> Lz4Decompress(std::string_view in, size_t limit) {
  LZ4F_dctx* ctx = nullptr;
  if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION))) {
    return Status::Failed("lz4: cannot create a decompression context");
  }
  std::unique_ptr<LZ4F_dctx, LZ4F_errorCode_t (*)(LZ4F_dctx*)> guard(ctx,
                                                                     LZ4F_freeDecompressionContext);
  BoundedOutput out(limit, in.size());
  size_t pos = 0;
  if (in.empty()) return Truncated("lz4");
  for (;;) {
    if (!out.Reserve()) return out.ExceededStatus("lz4");
    size_t room = out.free_size();
    size_t dst_size = room;
    size_t src_size = in.size() - pos;
    size_t r = LZ4F_decompress(ctx, out.free_ptr(), &dst_size, in.data() + pos, &src_size, nullptr);
    if (LZ4F_isError(r)) return Status::Corruption(std::string("lz4: ") + LZ4F_getErrorName(r));
    pos += src_size;
    out.Commit(dst_size);
    if (out.exceeded()) return out.ExceededStatus("lz4");
    if (r == 0) {  // frame complete
      if (pos == in.size()) break;
      continue;  // another frame follows
    }
    if (pos == in.size() && dst_size < room) return Truncated("lz4");
  }
  return std::move(out).Take();
}

// ---- zstd ----

Result<std::string> ZstdCompress(std::string_view in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3);
  if (ZSTD_isError(n)) return Status::Failed(std::string("zstd: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

Result<std::string> ZstdDecompress(std::string_view in, size_t limit) {
  ZSTD_DCtx* ctx = ZSTD_createDCtx();
  if (ctx == nullptr) return Status::Failed("zstd: cannot create a decompression context");
  std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> guard(ctx, ZSTD_freeDCtx);
  // Bound the window the decoder allocates: no larger than the output may be, but at least
  // 8 MiB so frames from streaming producers (window 2^21..2^23) always decode.
  int window_log = 23;
  while (window_log < 27 && (size_t{1} << window_log) < limit) ++window_log;
  ZSTD_DCtx_setParameter(ctx, ZSTD_d_windowLogMax, window_log);
  BoundedOutput out(limit, in.size());
  ZSTD_inBuffer src{in.data(), in.size(), 0};
  if (in.empty()) return Truncated("zstd");
  for (;;) {
    if (!out.Reserve()) return out.ExceededStatus("zstd");
    size_t room = out.free_size();
    ZSTD_outBuffer dst{out.free_ptr(), room, 0};
    size_t r = ZSTD_decompressStream(ctx, &dst, &src);
    if (ZSTD_isError(r)) return Status::Corruption(std::string("zstd: ") + ZSTD_getErrorName(r));
    out.Commit(dst.pos);
    if (out.exceeded()) return out.ExceededStatus("zstd");
    if (r == 0 && src.pos == src.size) break;  // last frame complete
    if (src.pos == src.size && dst.pos < room) return Truncated("zstd");
  }
  return std::move(out).Take();
}

}  // namespace

std::string_view CompressionName(Compression c) {
  switch (c) {
    case Compression::kNone:
      return "none";
    case Compression::kGzip:
      return "gzip";
    case Compression::kSnappy:
      return "snappy";
    case Compression::kLz4:
      return "lz4";
    case Compression::kZstd:
      return "zstd";
  }
  return "unknown";
}

std::optional<Compression> ParseCompression(std::string_view name) {
  for (auto c : {Compression::kNone, Compression::kGzip, Compression::kSnappy, Compression::kLz4,
                 Compression::kZstd}) {
    if (CompressionName(c) == name) return c;
  }
  return std::nullopt;
}

Result<std::string> Compress(Compression c, std::string_view input) {
  switch (c) {
    case Compression::kNone:
      return std::string(input);
    case Compression::kGzip:
      return GzipCompress(input);
    case Compression::kSnappy:
      return SnappyCompress(input);
    case Compression::kLz4:
      return Lz4Compress(input);
    case Compression::kZstd:
      return ZstdCompress(input);
  }
  return Status::InvalidArgument("unknown compression codec " +
                                 std::to_string(static_cast<int>(c)));
}

Result<std::string> Decompress(Compression c, std::string_view input,
                               size_t max_decompressed_bytes) {
  switch (c) {
    case Compression::kNone:
      if (input.size() > max_decompressed_bytes) {
        return Status::ResourceExhausted("none: size exceeds the limit of " +
                                         std::to_string(max_decompressed_bytes) + " bytes");
      }
      return std::string(input);
    case Compression::kGzip:
      return GzipDecompress(input, max_decompressed_bytes);
    case Compression::kSnappy:
      return SnappyDecompress(input, max_decompressed_bytes);
    case Compression::kLz4:
      return Lz4Decompress(input, max_decompressed_bytes);
    case Compression::kZstd:
      return ZstdDecompress(input, max_decompressed_bytes);
  }
  return Status::Corruption("unknown compression codec " + std::to_string(static_cast<int>(c)));
}

}  // namespace rill::batch
