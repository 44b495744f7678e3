// Partition log benchmarks, each next to a raw baseline in the same binary (bench/RESULTS.md):
//   - append with flush `none` vs plain write() of the same bytes;
//   - append with `group` and 4 concurrent appenders vs write()+fdatasync() of the same group
//     size into a growing file and into already-written space;
//   - sequential reads from a warm log vs pread() of the same segment file.
// Files live under $RILL_BENCH_DIR (default build/bench-storage): a real disk, not tmpfs.
// Disk use is bounded: segments of 128 MiB, retention 256 MiB (baselines rotate files alike).

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "rill/proto/batch_header.h"
#include "rill/proto/endian.h"
#include "rill/storage/log.h"

namespace rill::storage {
namespace {

constexpr int64_t kSegmentBytes = 128 << 20;
constexpr int64_t kRetentionBytes = 256 << 20;

std::string BenchDir() {
  const char* d = std::getenv("RILL_BENCH_DIR");
  std::string dir = d ? d : "build/bench-storage";
  std::filesystem::create_directories(dir);
  return dir;
}

std::string MakeBatch(size_t total) {
  std::string b(total, '\0');
  char* p = b.data();
  be::Store32(p + batch::kLengthPos, static_cast<uint32_t>(total - batch::kLogOverhead));
  p[batch::kMagicPos] = batch::kMagic;
  be::Store32(p + batch::kLastOffsetDeltaPos, 9);
  be::Store32(p + batch::kRecordCountPos, 10);
  std::mt19937_64 rng(total);
  for (size_t i = batch::kHeaderSize; i < total; ++i) p[i] = static_cast<char>(rng());
  batch::UpdateCrc(std::span<char>(b.data(), b.size()));
  return b;
}

LogConfig BenchConfig(FlushPolicy policy, bool preallocate) {
  LogConfig c;
  c.flush_policy = policy;
  c.segment_bytes = kSegmentBytes;
  c.retention_bytes = kRetentionBytes;
  c.retention_ms = -1;
  c.max_batch_bytes = 2 << 20;
  if (!preallocate) c.preallocate_bytes = 0;
  return c;
}

std::unique_ptr<Log> FreshLog(const std::string& name, const LogConfig& c) {
  std::string dir = BenchDir() + "/" + name;
  std::filesystem::remove_all(dir);
  auto log = Log::Open(DefaultFileSystem(), dir, name, c);
  if (!log.ok()) {
    std::fprintf(stderr, "open: %s\n", log.status().ToString().c_str());
    std::abort();
  }
  return std::move(log).value();
}

// Files of kSegmentBytes written with write(), rotated and unlinked like the log's segments.
class RotatingFile {
 public:
  explicit RotatingFile(std::string prefix) : prefix_(std::move(prefix)) { Next(); }
  ~RotatingFile() {
    ::close(fd_);
    for (auto& p : names_) ::unlink(p.c_str());
  }
  void Write(const char* p, size_t n) {
    if (written_ + static_cast<int64_t>(n) > kSegmentBytes) Next();
    if (::write(fd_, p, n) != static_cast<ssize_t>(n)) std::abort();
    written_ += static_cast<int64_t>(n);
  }
  int fd() const { return fd_; }

 private:
  void Next() {
    if (fd_ >= 0) ::close(fd_);
    names_.push_back(prefix_ + "." + std::to_string(seq_++));
    fd_ = ::open(names_.back().c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
    if (fd_ < 0) std::abort();
    written_ = 0;
    while (static_cast<int64_t>(names_.size()) * kSegmentBytes > kRetentionBytes + kSegmentBytes) {
      ::unlink(names_.front().c_str());
      names_.pop_front();
    }
  }
  std::string prefix_;
  std::deque<std::string> names_;
  int fd_ = -1;
  int64_t written_ = 0;
  uint64_t seq_ = 0;
};

// ---- flush none ------------------------------------------------------------------------------

void BM_LogAppendNone(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  auto log = FreshLog("append-none", BenchConfig(FlushPolicy::kNone, false));
  std::string b = MakeBatch(size);
  int64_t n = 0;
  for (auto _ : state) {
    auto r = log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1));
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    if ((++n & 255) == 0) (void)log->ApplyRetention(0);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
  (void)log->Close();
}

void BM_BaselineWrite(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  std::string b = MakeBatch(size);
  RotatingFile f(BenchDir() + "/baseline-write");
  for (auto _ : state) f.Write(b.data(), b.size());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

// ---- flush group, 4 appenders ----------------------------------------------------------------

// A file of `span` bytes whose blocks are written with zeros and synced (`zero_fill`), or only
// reserved with fallocate (unwritten extents), before timing. Returns its descriptor.
int PreparedFile(const std::string& path, size_t span, bool zero_fill) {
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
  if (fd < 0) std::abort();
  if (!zero_fill) {
    if (::posix_fallocate(fd, 0, static_cast<off_t>(span)) != 0) std::abort();
  } else {
    std::string zeros(1 << 20, '\0');
    for (size_t p = 0; p < span; p += zeros.size()) {
      if (::pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(p)) < 0) std::abort();
    }
  }
  if (::fdatasync(fd) != 0) std::abort();
  return fd;
}

// write()+fdatasync() of `group` bytes at a time into a file whose blocks were written and synced
// before timing (the space a recycled segment offers), for `seconds`; returns bytes/s.
double OverwriteRate(size_t group, double seconds) {
  group = std::max<size_t>(group, 512);
  std::string buf = MakeBatch(group);
  std::string path = BenchDir() + "/baseline-paired";
  const size_t span = kSegmentBytes;
  int fd = PreparedFile(path, span, /*zero_fill=*/true);
  size_t pos = 0;
  double written = 0;
  auto start = std::chrono::steady_clock::now();
  auto end = start + std::chrono::duration<double>(seconds);
  auto now = start;
  while (now < end) {
    if (pos + group > span) pos = 0;
    if (::pwrite(fd, buf.data(), group, static_cast<off_t>(pos)) !=
        static_cast<ssize_t>(group)) {
      std::abort();
    }
    if (::fdatasync(fd) != 0) std::abort();
    pos += group;
    written += static_cast<double>(group);
    now = std::chrono::steady_clock::now();
  }
  ::close(fd);
  ::unlink(path.c_str());
  return written / std::chrono::duration<double>(now - start).count();
}

// The same into growing files (each write extends the file; rotated like segments).
double GrowingRate(size_t group, double seconds) {
  group = std::max<size_t>(group, 512);
  std::string buf = MakeBatch(group);
  RotatingFile f(BenchDir() + "/baseline-paired-grow");
  double written = 0;
  auto start = std::chrono::steady_clock::now();
  auto end = start + std::chrono::duration<double>(seconds);
  auto now = start;
  while (now < end) {
    f.Write(buf.data(), buf.size());
    if (::fdatasync(f.fd()) != 0) std::abort();
    written += static_cast<double>(group);
    now = std::chrono::steady_clock::now();
  }
  return written / std::chrono::duration<double>(now - start).count();
}

std::unique_ptr<Log> g_log;
std::map<std::pair<int64_t, int64_t>, double> g_group_bytes;  // (batch size, prealloc) -> bytes
uint64_t g_syncs_before = 0;

void BM_LogAppendGroup(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  const bool prealloc = state.range(1) != 0;
  if (state.thread_index() == 0) {
    g_log = FreshLog("append-group", BenchConfig(FlushPolicy::kGroup, prealloc));
    if (prealloc) {
      // Let the idle flusher zero-fill its window ahead before timing (a broker between bursts).
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      while (std::chrono::steady_clock::now() < deadline) {
        std::string probe = MakeBatch(128);
        (void)probe;
        if (std::filesystem::file_size(g_log->dir() + "/00000000000000000000.log") >=
            static_cast<uint64_t>(g_log->config().preallocate_bytes)) {
          break;
        }
        std::this_thread::yield();
      }
    }
    g_syncs_before = g_log->sync_count();
  }
  std::string b = MakeBatch(size);
  int64_t n = 0;
  auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    auto r = g_log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1));
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
    Status st = g_log->WaitDurable(r->last_offset,
                                   std::chrono::steady_clock::now() + std::chrono::seconds(60));
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      break;
    }
    if (state.thread_index() == 0 && (++n & 63) == 0) (void)g_log->ApplyRetention(0);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
  if (state.thread_index() == 0) {
    uint64_t syncs = g_log->sync_count() - g_syncs_before;
    // Every thread ran about as many iterations as thread 0.
    double group = syncs ? static_cast<double>(state.iterations() * size * state.threads()) /
                               static_cast<double>(syncs)
                         : 0.0;
    state.counters["group_bytes"] = group;
    g_group_bytes[{state.range(0), state.range(1)}] = group;
    (void)g_log->Close();
    g_log.reset();
    // Paired baselines of the log's own group size, run right after it for as long.
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double log_rate = static_cast<double>(state.iterations() * size * state.threads()) /
                            seconds;
    const double written = OverwriteRate(static_cast<size_t>(group), seconds);
    const double growing = GrowingRate(static_cast<size_t>(group), seconds);
    state.counters["vs_written"] = written > 0 ? log_rate / written : 0.0;
    state.counters["vs_growing"] = growing > 0 ? log_rate / growing : 0.0;
  }
}

// Durable latency of a paced appender on a fresh log (`group`): one 5 KB batch every
// `period_us`, each waited for, as a partition at a modest rate sees it (5 MB/s at 1 ms). With
// `standby:1` the log prepares standby segments (LogConfig::standby_min_bytes 8 MiB, 64 KiB
// pieces) and rolls into them, so most group fsyncs overwrite written space; with `standby:0`
// every group fsync extends the file. Counters: p50/p99/p999 of append-to-durable, in us, and
// the segments the log rolled into from standbys.
void BM_LogGroupLatency(benchmark::State& state) {
  const auto period = std::chrono::microseconds(state.range(0));
  const bool standby = state.range(1) != 0;
  LogConfig c = BenchConfig(FlushPolicy::kGroup, false);
  c.preallocate_piece_bytes = 64 << 10;
  c.standby_min_bytes = standby ? 8 << 20 : 0;
  auto log = FreshLog("group-latency", c);
  std::string b = MakeBatch(5000);
  std::vector<double> lat;
  auto next = std::chrono::steady_clock::now();
  for (auto _ : state) {
    next += period;
    std::this_thread::sleep_until(next);
    auto t0 = std::chrono::steady_clock::now();
    auto r = log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1));
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
    Status st = log->WaitDurable(r->last_offset, t0 + std::chrono::seconds(60));
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      break;
    }
    lat.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                      .count());
    if (next < std::chrono::steady_clock::now()) next = std::chrono::steady_clock::now();
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double q) { return lat.empty() ? 0.0 : lat[static_cast<size_t>(q * (lat.size() - 1))]; };
  state.counters["p50_us"] = pct(0.50);
  state.counters["p99_us"] = pct(0.99);
  state.counters["p999_us"] = pct(0.999);
  state.counters["standby_rolls"] = static_cast<double>(log->recycled_count());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * b.size()));
  (void)log->Close();
}

// The steady state of a broker with retention: segments of kSegmentBytes, retention.bytes
// kRetentionBytes, and before timing enough data appended (and retention applied) that the
// recycling pool is full and every roll during the run reuses a retired segment file
// (`recycle:1`), or creates a growing file as before recycling existed (`recycle:0`). Idle
// zero-fill is off in both: under sustained load it never runs.
void BM_LogAppendGroupSteady(benchmark::State& state) {
  const auto size = static_cast<size_t>(state.range(0));
  const bool recycle = state.range(1) != 0;
  if (state.thread_index() == 0) {
    LogConfig c = BenchConfig(FlushPolicy::kGroup, false);
    c.recycle_segments = recycle;
    g_log = FreshLog("append-group-steady", c);
    std::string warm = MakeBatch(1 << 20);
    const int64_t warm_bytes = kRetentionBytes + 3 * kSegmentBytes;
    for (int64_t w = 0; w < warm_bytes; w += static_cast<int64_t>(warm.size())) {
      auto r = g_log->Append(std::span<char>(warm.data(), warm.size()), LeaderEpoch(1));
      if (!r.ok()) std::abort();
      if ((w >> 20) % 16 == 0) (void)g_log->ApplyRetention(0);
    }
    // 5 whole segments of 1 MiB batches: the first timed append rolls the active segment.
    (void)g_log->ApplyRetention(0);
    if (!g_log->Flush().ok()) std::abort();
    g_syncs_before = g_log->sync_count();
  }
  std::string b = MakeBatch(size);
  int64_t n = 0;
  uint64_t recycled_before = 0;
  if (state.thread_index() == 0) recycled_before = g_log->recycled_count();
  auto start = std::chrono::steady_clock::now();
  for (auto _ : state) {
    auto r = g_log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1));
    if (!r.ok()) {
      state.SkipWithError(r.status().ToString().c_str());
      break;
    }
    Status st = g_log->WaitDurable(r->last_offset,
                                   std::chrono::steady_clock::now() + std::chrono::seconds(60));
    if (!st.ok()) {
      state.SkipWithError(st.ToString().c_str());
      break;
    }
    if (state.thread_index() == 0 && (++n & 15) == 0) (void)g_log->ApplyRetention(0);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
  if (state.thread_index() == 0) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double bytes = static_cast<double>(state.iterations() * size * state.threads());
    uint64_t syncs = g_log->sync_count() - g_syncs_before;
    const double group = syncs ? bytes / static_cast<double>(syncs) : 0.0;
    state.counters["group_bytes"] = group;
    state.counters["recycled_rolls"] =
        static_cast<double>(g_log->recycled_count() - recycled_before);
    (void)g_log->Close();
    g_log.reset();
    // The paired baseline, right after the log in the same repetition: write()+fdatasync() of
    // exactly the log's measured group size into already-written space, for as long as the log
    // ran. `vs_baseline` is the log's rate over it (the target: >= 0.70).
    const double log_rate = bytes / seconds;
    const double base_rate = OverwriteRate(static_cast<size_t>(group), seconds);
    state.counters["baseline_MBps"] = base_rate / 1e6;
    state.counters["vs_baseline"] = base_rate > 0 ? log_rate / base_rate : 0.0;
  }
}

size_t GroupSize(benchmark::State& state) {
  auto it = g_group_bytes.find({state.range(0), 1});
  size_t g = it != g_group_bytes.end() && it->second > 0 ? static_cast<size_t>(it->second)
                                                         : static_cast<size_t>(state.range(0)) * 3;
  return std::max<size_t>(g, 512) & ~size_t{511};
}

// write()+fdatasync() of the log's group size (measured by BM_LogAppendGroup with prealloc:1 when
// it ran earlier in the process, else 3 x batch, the typical measured group), into growing files.
void BM_BaselineGroupGrowing(benchmark::State& state) {
  const size_t g = GroupSize(state);
  std::string buf = MakeBatch(g);
  RotatingFile f(BenchDir() + "/baseline-grow");
  for (auto _ : state) {
    f.Write(buf.data(), buf.size());
    if (::fdatasync(f.fd()) != 0) std::abort();
  }
  state.counters["group_bytes"] = static_cast<double>(g);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * g));
}

// The same into a file whose blocks were written (and synced) before timing (`zero_fill`
// true), or only reserved with fallocate (unwritten extents; `zero_fill` false).
void GroupIntoPrepared(benchmark::State& state, bool zero_fill) {
  const size_t g = GroupSize(state);
  std::string buf = MakeBatch(g);
  std::string path = BenchDir() + "/baseline-overwrite";
  const size_t span = kSegmentBytes;
  int fd = PreparedFile(path, span, zero_fill);
  size_t pos = 0;
  for (auto _ : state) {
    if (pos + g > span) pos = 0;
    if (::pwrite(fd, buf.data(), g, static_cast<off_t>(pos)) != static_cast<ssize_t>(g)) {
      std::abort();
    }
    if (::fdatasync(fd) != 0) std::abort();
    pos += g;
  }
  ::close(fd);
  ::unlink(path.c_str());
  state.counters["group_bytes"] = static_cast<double>(g);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * g));
}
void BM_BaselineGroupOverwrite(benchmark::State& state) { GroupIntoPrepared(state, true); }
void BM_BaselineGroupFallocated(benchmark::State& state) { GroupIntoPrepared(state, false); }

// ---- reads -----------------------------------------------------------------------------------

std::unique_ptr<Log> g_read_log;

Log& ReadLog() {
  if (!g_read_log) {
    LogConfig c = BenchConfig(FlushPolicy::kNone, false);
    c.retention_bytes = -1;
    g_read_log = FreshLog("read", c);
    std::string b = MakeBatch(16 << 10);
    for (int i = 0; i < (96 << 20) / (16 << 10); ++i) {
      (void)g_read_log->Append(std::span<char>(b.data(), b.size()), LeaderEpoch(1));
    }
    (void)g_read_log->Flush();
  }
  return *g_read_log;
}

void BM_LogRead(benchmark::State& state) {
  const auto max_bytes = static_cast<size_t>(state.range(0));
  Log& log = ReadLog();
  Offset from = log.log_start_offset();
  int64_t bytes = 0;
  for (auto _ : state) {
    auto r = log.Read(from, max_bytes);
    if (!r.ok()) state.SkipWithError(r.status().ToString().c_str());
    bytes += static_cast<int64_t>(r->data.size());
    from = r->next_offset >= log.log_end_offset() ? log.log_start_offset() : r->next_offset;
    benchmark::DoNotOptimize(r->data.data());
  }
  state.SetBytesProcessed(bytes);
}

void BM_BaselinePread(benchmark::State& state) {
  const auto max_bytes = static_cast<size_t>(state.range(0));
  Log& log = ReadLog();
  std::string path = log.dir() + "/00000000000000000000.log";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  off_t size = ::lseek(fd, 0, SEEK_END);
  std::string buf(max_bytes, '\0');
  off_t pos = 0;
  int64_t bytes = 0;
  for (auto _ : state) {
    if (pos + static_cast<off_t>(max_bytes) > size) pos = 0;
    ssize_t n = ::pread(fd, buf.data(), max_bytes, pos);
    if (n <= 0) std::abort();
    pos += n;
    bytes += n;
    benchmark::DoNotOptimize(buf.data());
  }
  ::close(fd);
  state.SetBytesProcessed(bytes);
}

BENCHMARK(BM_LogAppendNone)->Arg(1 << 10)->Arg(16 << 10)->Arg(1 << 20)->UseRealTime();
BENCHMARK(BM_BaselineWrite)->Arg(1 << 10)->Arg(16 << 10)->Arg(1 << 20)->UseRealTime();
BENCHMARK(BM_LogAppendGroup)
    ->ArgNames({"batch", "prealloc"})
    ->Args({1 << 10, 1})->Args({16 << 10, 1})->Args({1 << 20, 1})
    ->Args({1 << 10, 0})->Args({16 << 10, 0})->Args({1 << 20, 0})
    ->Threads(4)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_LogAppendGroupSteady)
    ->ArgNames({"batch", "recycle"})
    ->Args({1 << 10, 1})->Args({16 << 10, 1})->Args({1 << 20, 1})
    ->Args({1 << 10, 0})->Args({16 << 10, 0})->Args({1 << 20, 0})
    ->Threads(4)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_LogGroupLatency)
    ->ArgsProduct({{1000}, {0, 1}})
    ->ArgNames({"period_us", "standby"})
    ->Iterations(4000)
    ->UseRealTime();
BENCHMARK(BM_BaselineGroupGrowing)->Arg(1 << 10)->Arg(16 << 10)->Arg(1 << 20)->UseRealTime();
BENCHMARK(BM_BaselineGroupOverwrite)->Arg(1 << 10)->Arg(16 << 10)->Arg(1 << 20)->UseRealTime();
BENCHMARK(BM_BaselineGroupFallocated)->Arg(1 << 10)->Arg(16 << 10)->Arg(1 << 20)->UseRealTime();
BENCHMARK(BM_LogRead)->Arg(64 << 10)->Arg(1 << 20)->UseRealTime();
BENCHMARK(BM_BaselinePread)->Arg(64 << 10)->Arg(1 << 20)->UseRealTime();

}  // namespace
}  // namespace rill::storage

BENCHMARK_MAIN();
