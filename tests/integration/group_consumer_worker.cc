// A group consumer process for group_consumer_e2e_test: subscribes to one topic and writes, one
// line each, flushed before anything is committed:
//   A <ns> <p,p,...>   OnPartitionsAssigned   (ns: CLOCK_MONOTONIC, system-wide)
//   R <ns> <p,...>     OnPartitionsRevoked
//   L <ns> <p,...>     OnPartitionsLost
//   D <p> <offset>     a record Poll returned
//   P <p> <offset>     a commit about to be sent (sync mode)
//   C <p> <offset>     a commit that succeeded (sync mode)
//   E <message>        an error
//   X <ns>             Close() returned
// Usage: group_consumer_worker <bootstrap> <group> <topic> <out-file> <auto|sync>
//                              <session_timeout_ms>
// SIGTERM: Close() (revoke, commit, leave) and exit 0.

#include <signal.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>

#include "rill/client/consumer.h"

namespace {

std::atomic<bool> g_stop{false};

void OnSigterm(int) { g_stop.store(true); }

int64_t MonoNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

class Recorder : public rill::client::ConsumerRebalanceListener {
 public:
  Recorder(FILE* out, rill::client::Consumer** consumer, bool sync)
      : out_(out), consumer_(consumer), sync_(sync) {}

  void OnPartitionsAssigned(const std::vector<rill::client::TopicPartition>& ps) override {
    Write('A', ps);
  }
  void OnPartitionsRevoked(const std::vector<rill::client::TopicPartition>& ps) override {
    Write('R', ps);
    if (sync_) CommitSync();
  }
  void OnPartitionsLost(const std::vector<rill::client::TopicPartition>& ps) override {
    Write('L', ps);
  }

  // Commits the current positions, logging them before (P) and after (C).
  void CommitSync() {
    rill::client::OffsetMap positions;
    for (const auto& tp : (*consumer_)->Assignment()) {
      auto pos = (*consumer_)->Position(tp);
      if (pos.ok()) positions[tp] = *pos;
    }
    if (positions.empty()) return;
    for (const auto& [tp, off] : positions)
      fprintf(out_, "P %d %lld\n", tp.partition, (long long)off);
    fflush(out_);
    rill::Status s = (*consumer_)->Commit(positions);
    if (s.ok()) {
      for (const auto& [tp, off] : positions)
        fprintf(out_, "C %d %lld\n", tp.partition, (long long)off);
    } else {
      fprintf(out_, "E commit: %s\n", s.ToString().c_str());
    }
    fflush(out_);
  }

 private:
  void Write(char kind, const std::vector<rill::client::TopicPartition>& ps) {
    std::string list;
    for (const auto& tp : ps) {
      if (!list.empty()) list += ",";
      list += std::to_string(tp.partition);
    }
    fprintf(out_, "%c %lld %s\n", kind, (long long)MonoNs(), list.c_str());
    fflush(out_);
  }

  FILE* out_;
  rill::client::Consumer** consumer_;
  bool sync_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 7) {
    fprintf(stderr,
            "usage: %s <bootstrap> <group> <topic> <out-file> <auto|sync> <session_timeout_ms>\n",
            argv[0]);
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = OnSigterm;
  sigaction(SIGTERM, &sa, nullptr);

  FILE* out = fopen(argv[4], "a");
  if (out == nullptr) return 2;
  const bool sync = std::string(argv[5]) == "sync";

  rill::client::ConsumerConfig config;
  config.bootstrap = argv[1];
  config.group_id = argv[2];
  config.client_id = std::string("worker-") + std::to_string(getpid());
  config.auto_offset_reset = rill::client::OffsetReset::kEarliest;
  config.enable_auto_commit = !sync;
  config.auto_commit_interval_ms = 500;
  config.session_timeout_ms = std::stoi(argv[6]);
  config.rebalance_timeout_ms = 10000;
  config.fetch_max_wait_ms = 100;
  auto created = rill::client::Consumer::Create(config);
  if (!created.ok()) {
    fprintf(out, "E create: %s\n", created.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<rill::client::Consumer> consumer = std::move(*created);
  rill::client::Consumer* raw = consumer.get();
  Recorder recorder(out, &raw, sync);
  if (rill::Status s = consumer->Subscribe({argv[3]}, &recorder); !s.ok()) {
    fprintf(out, "E subscribe: %s\n", s.ToString().c_str());
    return 1;
  }
  while (!g_stop.load()) {
    auto records = consumer->Poll(std::chrono::milliseconds(100));
    if (!records.ok()) {
      fprintf(out, "E poll: %s\n", records.status().ToString().c_str());
      fflush(out);
      continue;
    }
    if (records->empty()) continue;
    for (const auto& r : *records) fprintf(out, "D %d %lld\n", r.partition, (long long)r.offset);
    fflush(out);
    if (sync) recorder.CommitSync();
  }
  if (rill::Status s = consumer->Close(); !s.ok()) {
    fprintf(out, "E close: %s\n", s.ToString().c_str());
  }
  fprintf(out, "X %lld\n", (long long)MonoNs());
  fclose(out);
  return 0;
}
