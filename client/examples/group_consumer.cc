// Consumes a topic as a member of a consumer group until Ctrl-C, printing rebalances and
// records, then closes cleanly (commit + leave). Start several to watch the partitions spread.
//
//   rill-example-group-consumer [bootstrap=localhost:9092] [group=example-group] [topic=example]

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "rill/client/consumer.h"

using namespace rill::client;

namespace {

std::atomic<bool> g_stop{false};

std::string List(const std::vector<TopicPartition>& partitions) {
  std::string out;
  for (const auto& tp : partitions) out += (out.empty() ? "" : " ") + tp.ToString();
  return out;
}

// Runs on the thread calling Poll.
class PrintingListener : public ConsumerRebalanceListener {
 public:
  void OnPartitionsAssigned(const std::vector<TopicPartition>& ps) override {
    std::printf("assigned: %s\n", List(ps).c_str());
  }
  void OnPartitionsRevoked(const std::vector<TopicPartition>& ps) override {
    std::printf("revoked:  %s (positions are committed next)\n", List(ps).c_str());
  }
  void OnPartitionsLost(const std::vector<TopicPartition>& ps) override {
    std::printf("lost:     %s (fenced; rejoining)\n", List(ps).c_str());
  }
};

}  // namespace

int main(int argc, char** argv) {
  ConsumerConfig config;
  config.bootstrap = argc > 1 ? argv[1] : "localhost:9092";
  config.group_id = argc > 2 ? argv[2] : "example-group";
  const std::string topic = argc > 3 ? argv[3] : "example";
  config.auto_offset_reset = OffsetReset::kEarliest;  // where to start without a commit
  config.session_timeout_ms = 10000;

  signal(SIGINT, [](int) { g_stop = true; });
  signal(SIGTERM, [](int) { g_stop = true; });

  auto consumer = Consumer::Create(config);
  if (!consumer.ok()) {
    std::fprintf(stderr, "%s\n", consumer.status().ToString().c_str());
    return 1;
  }
  PrintingListener listener;
  if (rill::Status s = (*consumer)->Subscribe({topic}, &listener); !s.ok()) {
    std::fprintf(stderr, "subscribe: %s\n", s.ToString().c_str());
    return 1;
  }
  while (!g_stop) {
    auto records = (*consumer)->Poll(std::chrono::milliseconds(500));
    if (!records.ok()) {
      std::fprintf(stderr, "poll: %s\n", records.status().ToString().c_str());
      continue;
    }
    for (const ConsumerRecord& r : *records) {
      std::printf("%s-%d@%lld %.*s\n", r.topic.c_str(), r.partition,
                  static_cast<long long>(r.offset), r.value ? static_cast<int>(r.value->size()) : 0,
                  r.value ? r.value->data() : "");
    }
    // Auto-commit (the default) commits from Poll every auto_commit_interval_ms; an explicit
    // (*consumer)->Commit() here would commit synchronously after each batch instead.
  }
  // Revoke, commit, leave. An error means the final commit or the leave failed: the group then
  // resumes from the last successful commit and drops the member at its session timeout.
  if (rill::Status s = (*consumer)->Close(); !s.ok()) {
    std::fprintf(stderr, "close: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("closed (left group %s)\n", config.group_id.c_str());
  return 0;
}
