#pragma once

// Kafka's zigzag varints (32-bit "varint") and varlongs (64-bit), as RecordBatch v2 records use
// them: the signed value is zigzag-mapped (0,-1,1,-2 -> 0,1,2,3) and written 7 bits at a time,
// least significant group first, high bit set on every byte but the last.
//
// Decoding is bounds-checked: a truncated varint, one longer than 5 (varint) / 10 (varlong)
// bytes, or one whose last byte carries bits beyond 32 / 64 is rejected, never read past `end`.

#include <cstddef>
#include <cstdint>
#include <string>

namespace rill::varint {

inline constexpr size_t kMaxVarintBytes = 5;
inline constexpr size_t kMaxVarlongBytes = 10;

inline constexpr uint32_t ZigZag32(int32_t v) {
  return (static_cast<uint32_t>(v) << 1) ^ static_cast<uint32_t>(v >> 31);
}
inline constexpr uint64_t ZigZag64(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline constexpr int32_t UnZigZag32(uint32_t v) {
  return static_cast<int32_t>((v >> 1) ^ (~(v & 1) + 1));
}
inline constexpr int64_t UnZigZag64(uint64_t v) {
  return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1));
}

// Encoded sizes in bytes (1..5 and 1..10).
inline constexpr size_t UnsignedSize64(uint64_t u) {
  // (bits needed + 6) / 7, with 0 taking one byte.
  int bits = 64 - __builtin_clzll(u | 1);
  return static_cast<size_t>((bits + 6) / 7);
}
inline constexpr size_t VarintSize(int32_t v) { return UnsignedSize64(ZigZag32(v)); }
inline constexpr size_t VarlongSize(int64_t v) { return UnsignedSize64(ZigZag64(v)); }

// Writes the encoding at dst, which must have room for 5 / 10 bytes; returns the end.
inline char* EncodeUnsigned(char* dst, uint64_t u) {
  while (u >= 0x80) {
    *dst++ = static_cast<char>(static_cast<uint8_t>(u) | 0x80);
    u >>= 7;
  }
  *dst++ = static_cast<char>(u);
  return dst;
}
inline char* EncodeVarint(char* dst, int32_t v) { return EncodeUnsigned(dst, ZigZag32(v)); }
inline char* EncodeVarlong(char* dst, int64_t v) { return EncodeUnsigned(dst, ZigZag64(v)); }

inline void AppendVarint(std::string* out, int32_t v) {
  char buf[kMaxVarintBytes];
  out->append(buf, static_cast<size_t>(EncodeVarint(buf, v) - buf));
}
inline void AppendVarlong(std::string* out, int64_t v) {
  char buf[kMaxVarlongBytes];
  out->append(buf, static_cast<size_t>(EncodeVarlong(buf, v) - buf));
}

// Decodes one varint / varlong from [p, end). Returns the position after it, or nullptr when the
// bytes are truncated, too long, or overflow 32 / 64 bits. Never reads at or beyond `end`.
inline const char* DecodeVarint(const char* p, const char* end, int32_t* out) {
  uint32_t result = 0;
  for (int shift = 0; shift < 35 && p < end; shift += 7) {
    auto b = static_cast<uint8_t>(*p++);
    if (shift == 28 && (b & 0xF0) != 0) return nullptr;  // 5th byte: only 4 bits fit
    result |= static_cast<uint32_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) {
      *out = UnZigZag32(result);
      return p;
    }
  }
  return nullptr;
}
inline const char* DecodeVarlong(const char* p, const char* end, int64_t* out) {
  uint64_t result = 0;
  for (int shift = 0; shift < 70 && p < end; shift += 7) {
    auto b = static_cast<uint8_t>(*p++);
    if (shift == 63 && (b & 0xFE) != 0) return nullptr;  // 10th byte: only 1 bit fits
    result |= static_cast<uint64_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) {
      *out = UnZigZag64(result);
      return p;
    }
  }
  return nullptr;
}

}  // namespace rill::varint
