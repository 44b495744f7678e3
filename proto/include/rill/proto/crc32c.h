#pragma once

// CRC32C (Castagnoli), as Kafka's RecordBatch v2 uses it. Extend() picks the SSE4.2 crc32
// instruction when the CPU has it and a slice-by-8 table otherwise.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace rill::crc32c {

// Returns the CRC32C of data[0, n) continuing from `crc` (0 to start).
uint32_t Extend(uint32_t crc, const void* data, size_t n);
inline uint32_t Value(const void* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view s) { return Extend(0, s.data(), s.size()); }

// The two implementations, exposed for tests and benchmarks.
uint32_t ExtendPortable(uint32_t crc, const void* data, size_t n);
uint32_t ExtendHardware(uint32_t crc, const void* data, size_t n);  // requires HardwareAvailable()
bool HardwareAvailable();

}  // namespace rill::crc32c
