// CRC32C throughput (hardware, portable, and memcpy of the same bytes as the raw baseline) and
// RecordBatch v2 encode/decode rate for 100-byte records in batches of 1000.

#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "rill/proto/crc32c.h"
#include "rill/proto/record_batch.h"

namespace {

using rill::batch::BatchBuilder;
using rill::batch::BatchReader;
using rill::batch::Compression;
using rill::batch::RecordView;

std::string RandomBytes(size_t n, uint64_t seed = 42) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// ---- CRC32C ----

void BM_Crc32cHardware(benchmark::State& state) {
  if (!rill::crc32c::HardwareAvailable()) {
    state.SkipWithError("no SSE4.2");
    return;
  }
  std::string buf = RandomBytes(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(rill::crc32c::ExtendHardware(0, buf.data(), buf.size()));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Crc32cHardware)->Arg(4096)->Arg(64 << 10)->Arg(1 << 20);

void BM_Crc32cPortable(benchmark::State& state) {
  std::string buf = RandomBytes(static_cast<size_t>(state.range(0)));
  for (auto _ : state) {
    benchmark::DoNotOptimize(rill::crc32c::ExtendPortable(0, buf.data(), buf.size()));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Crc32cPortable)->Arg(4096)->Arg(64 << 10)->Arg(1 << 20);

// Raw baseline: copying the same bytes once.
void BM_MemcpyBaseline(benchmark::State& state) {
  std::string buf = RandomBytes(static_cast<size_t>(state.range(0)));
  std::string dst(buf.size(), '\0');
  for (auto _ : state) {
    std::memcpy(dst.data(), buf.data(), buf.size());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_MemcpyBaseline)->Arg(4096)->Arg(64 << 10)->Arg(1 << 20);

// ---- batch encode / decode ----

constexpr int kRecordsPerBatch = 1000;
constexpr size_t kValueSize = 100;

struct Payload {
  std::vector<std::string> keys;
  std::vector<std::string> values;
  Payload() {
    std::mt19937_64 rng(7);
    for (int i = 0; i < kRecordsPerBatch; ++i) {
      keys.push_back("key-" + std::to_string(rng() % 100000));
      // Half random, half repetitive: roughly what log lines compress like.
      std::string v = RandomBytes(kValueSize / 2, rng()) + std::string(kValueSize / 2, 'x');
      values.push_back(std::move(v));
    }
  }
};
const Payload& GetPayload() {
  static const Payload p;
  return p;
}

std::string BuildOne(BatchBuilder* b, const Payload& p) {
  for (int i = 0; i < kRecordsPerBatch; ++i) {
    (void)b->Add(p.keys[i], p.values[i], 1700000000000 + i);
  }
  return std::move(b->Build()).value();
}

void BM_BatchEncode(benchmark::State& state) {
  auto c = static_cast<Compression>(state.range(0));
  const Payload& p = GetPayload();
  BatchBuilder b(c);
  size_t bytes = 0;
  for (auto _ : state) {
    std::string batch = BuildOne(&b, p);
    bytes += batch.size();
    benchmark::DoNotOptimize(batch.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kRecordsPerBatch);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kRecordsPerBatch *
                          static_cast<int64_t>(kValueSize));
  state.SetLabel(std::string(rill::batch::CompressionName(c)));
}
BENCHMARK(BM_BatchEncode)->Arg(0)->Arg(3)->Arg(4);

void BM_BatchDecode(benchmark::State& state) {
  auto c = static_cast<Compression>(state.range(0));
  BatchBuilder b(c);
  std::string batch = BuildOne(&b, GetPayload());
  RecordView v;
  for (auto _ : state) {
    auto reader = BatchReader::Open(batch);
    if (!reader.ok()) {
      state.SkipWithError(reader.status().ToString().c_str());
      return;
    }
    size_t n = 0;
    while (*reader->Next(&v)) {
      benchmark::DoNotOptimize(v.value);
      ++n;
    }
    if (n != kRecordsPerBatch) state.SkipWithError("wrong record count");
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kRecordsPerBatch);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kRecordsPerBatch *
                          static_cast<int64_t>(kValueSize));
  state.SetLabel(std::string(rill::batch::CompressionName(c)) + ", " +
                 std::to_string(batch.size()) + " B/batch");
}
BENCHMARK(BM_BatchDecode)->Arg(0)->Arg(3)->Arg(4);

// Raw baseline for encode/decode: copying the record payload bytes into one buffer.
void BM_PayloadCopyBaseline(benchmark::State& state) {
  const Payload& p = GetPayload();
  std::string out;
  for (auto _ : state) {
    out.clear();
    for (int i = 0; i < kRecordsPerBatch; ++i) {
      out += p.keys[i];
      out += p.values[i];
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * kRecordsPerBatch);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kRecordsPerBatch *
                          static_cast<int64_t>(kValueSize));
}
BENCHMARK(BM_PayloadCopyBaseline);

}  // namespace
