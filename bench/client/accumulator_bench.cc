// The producer's append path alone: keyed 100 B records appended to a RecordAccumulator spread
// over P partitions, while a second thread plays the sender and the broker (sleeps until a
// batch is ready as the sender does, drains ready batches, builds them, hands their bytes to the
// buffer pool as a sent request does, and releases their buffer space as an acknowledgement does).
// What it measures is the application thread's cost per record (wall time of the appending loop):
// the part of the client that sets the spread figure of bench/RESULTS.md when rill-bench runs at a
// full core. `buffers` 1 recycles the batch buffers through the BufferPool (0: recycle_buffers
// false), `batches` 1 recycles the batch objects (RecordAccumulator::Complete; 0: Release and free
// them, as the producer did before both).
//
//   build/rel/bench/rill_bench_client --benchmark_repetitions=5

#include <benchmark/benchmark.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <string>
#include <thread>
#include <utility>

#include "clock.h"
#include "record_accumulator.h"

namespace rill::client::internal {
namespace {

void BM_KeyedAppend(benchmark::State& state) {
  const auto partitions = static_cast<int32_t>(state.range(0));
  const bool pool = state.range(1) != 0;
  const bool recycle = state.range(2) != 0;
  AccumulatorOptions o;  // the producer's defaults: 5 ms linger, 256 KiB batches
  if (!pool) o.recycle_buffers = false;
  RecordAccumulator acc(o, 1);
  acc.SetPartitionCount("t", partitions);
  std::atomic<bool> stop{false};
  std::thread sender([&] {
    const auto all = [](const TopicPartition&) { return true; };
    while (!stop.load(std::memory_order_relaxed)) {
      // As the producer's sender: take what is ready, else sleep until something will be.
      const int64_t now = MonotonicUs();
      auto batches = acc.Drain(now, 4 << 20, all);
      if (batches.empty()) {
        const int64_t delay = acc.NextReadyDelay(now);
        std::this_thread::sleep_for(std::chrono::microseconds(delay < 0 ? 1000 : delay));
      }
      for (auto& b : batches) {
        if (!b->Build().ok()) std::abort();
        acc.pool()->Wrap(std::move(b->bytes), std::exchange(b->buffer_bytes, 0)).reset();
        if (recycle) {
          acc.Complete(std::move(b));
        } else {
          acc.Release(b->buffer_bytes);  // (none left: it went with the bytes) and the batch
                                         // object is freed on this thread
        }
      }
    }
  });
  ProducerRecord r;
  r.topic = "t";
  r.value = std::string(100, 'v');
  std::string key(8, 'k');
  int64_t i = 0;
  for (auto _ : state) {
    std::to_chars(key.data(), key.data() + key.size(), i++);
    r.key = key;
    auto a = acc.Append(r, 1, nullptr, RecordAccumulator::kClockNow);
    if (!a.ok()) std::abort();
  }
  stop = true;
  sender.join();
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_KeyedAppend)
    ->ArgNames({"partitions", "buffers", "batches"})
    ->Args({1, 0, 0})
    ->Args({1, 1, 1})
    ->Args({1000, 0, 0})
    ->Args({1000, 1, 0})
    ->Args({1000, 0, 1})
    ->Args({1000, 1, 1})
    ->UseRealTime()
    ->MinTime(2.0);

}  // namespace
}  // namespace rill::client::internal
