#include "workload.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

#include "rill/client/consumer.h"
#include "rill/client/producer.h"

namespace rill::fault {

using namespace std::chrono_literals;
using client::ConsumerRecord;
using client::TopicPartition;

bool CommitInitialOffsets(client::Admin& admin, const WorkloadOptions& options,
                          HistoryWriter* history, std::string* error) {
  std::vector<client::GroupOffset> offsets;
  for (int p = 0; p < options.partitions; ++p) {
    client::GroupOffset o;
    o.topic = options.topic;
    o.partition = p;
    o.offset = 0;
    offsets.push_back(o);
    history->Append({0, "admin", OpType::kInvoke, "commit", "", p, 0});
  }
  auto result = admin.CommitOffsets(options.group, offsets);
  for (int p = 0; p < options.partitions; ++p) {
    Status st = !result.ok() ? result.status() : (*result)[p].status;
    history->Append({0, "admin", st.ok() ? OpType::kOk : OpType::kFail, "commit", "", p, 0, -1,
                     st.ok() ? "" : st.ToString()});
    if (!st.ok()) {
      *error = "committing offset 0 of partition " + std::to_string(p) + ": " + st.ToString();
      return false;
    }
  }
  return true;
}

Workload::Workload(WorkloadOptions options, HistoryWriter* history)
    : options_(std::move(options)), history_(history) {}

Workload::~Workload() { Stop(); }

void Workload::Start() {
  for (int i = 0; i < options_.producers; ++i) {
    producers_.emplace_back([this, i] { RunProducer(i); });
  }
  for (int i = 0; i < options_.plain_consumers; ++i) {
    consumers_.emplace_back([this, i] { RunPlainConsumer(i); });
  }
  for (int i = 0; i < options_.group_members; ++i) {
    consumers_.emplace_back([this, i] { RunGroupMember(i); });
  }
}

void Workload::Stop() {
  stop_producers_ = true;
  for (auto& t : producers_) t.join();
  producers_.clear();
  stop_consumers_ = true;
  for (auto& t : consumers_) t.join();
  consumers_.clear();
}

void Workload::RunProducer(int index) {
  const std::string name = "producer-" + std::to_string(index);
  client::ProducerConfig pc;
  pc.bootstrap = options_.bootstrap;
  pc.client_id = name;
  pc.acks = -1;
  pc.enable_idempotence = options_.idempotence;
  pc.linger_ms = 2;
  pc.max_in_flight = 1;  // one request per broker at a time: acks of a partition stay in order
  pc.retry_backoff_ms = 50;
  pc.retry_backoff_max_ms = 500;
  pc.request_timeout_ms = 5000;
  pc.delivery_timeout_ms = options_.delivery_timeout_ms;
  pc.metadata_max_age_ms = 1000;
  auto created = client::Producer::Create(pc);
  if (!created.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), created.status().ToString().c_str());
    return;
  }
  auto producer = std::move(created).value();

  // Unacknowledged records per partition; the callbacks (on the producer's I/O thread) decrement
  // and wake this thread.
  struct Window {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<int> in_flight;
  };
  auto window = std::make_shared<Window>();
  window->in_flight.assign(options_.partitions, 0);
  const auto interval =
      std::chrono::microseconds(1000000 / std::max(1, options_.rate_per_producer));
  auto next_send = std::chrono::steady_clock::now();
  int64_t seq = 0;
  int partition = 0;
  while (!stop_producers_.load()) {
    int p = -1;
    {
      std::unique_lock lock(window->mu);
      for (int i = 0; i < options_.partitions && p < 0; ++i) {
        const int candidate = (partition + i) % options_.partitions;
        if (window->in_flight[candidate] < options_.window_per_partition) p = candidate;
      }
      if (p < 0) {  // every partition's window is full
        window->cv.wait_for(lock, 50ms);
        continue;
      }
      ++window->in_flight[p];
    }
    partition = (p + 1) % options_.partitions;
    std::this_thread::sleep_until(next_send);  // pacing, not waiting for a condition
    next_send = std::max(next_send + interval, std::chrono::steady_clock::now() - 100ms);
    std::string value = "w" + std::to_string(index) + "-" + std::to_string(seq++);
    history_->Append({0, name, OpType::kInvoke, "send", value, p});
    client::ProducerRecord record;
    record.topic = options_.topic;
    record.partition = p;
    record.value = value;
    producer->Send(
        record, [this, window, name, value, p](const Result<client::RecordMetadata>& md) {
          if (md.ok()) {
            ++acked_;
            history_->Append({0, name, OpType::kOk, "send", value, md->partition, md->offset});
          } else {
            // Without idempotence a failed send may have been written all the same.
            ++send_errors_;
            history_->Append(
                {0, name, OpType::kInfo, "send", value, p, -1, -1, md.status().ToString()});
          }
          std::lock_guard lock(window->mu);
          --window->in_flight[p];
          window->cv.notify_one();
        });
  }
  producer->Flush();
  producer->Close();
}

namespace {

void RecordReads(HistoryWriter* history, const std::string& name,
                 const std::vector<ConsumerRecord>& records) {
  for (const ConsumerRecord& r : records) {
    history->Append(
        {0, name, OpType::kOk, "read", std::string(r.value.value_or("")), r.partition, r.offset});
  }
}

// Consumers run with auto_offset_reset = kError, so an OFFSET_OUT_OF_RANGE answer reaches the
// harness instead of silently moving the position ("<topic>-<p>: offset <n> is out of range
// [<start>, <high watermark>]"): it is recorded as a failed read of that offset (the checker
// counts those the log did hold) and the partition is sought back to the same offset.
void HandlePollError(HistoryWriter* history, const std::string& name, client::Consumer* consumer,
                     const std::string& topic, const Status& error) {
  const std::string& m = error.message();
  const std::string prefix = topic + "-";
  const auto colon = m.find(": offset ");
  const auto range = m.find(" is out of range [");
  if (m.rfind(prefix, 0) == 0 && colon != std::string::npos && range != std::string::npos) {
    const int32_t partition = std::atoi(m.c_str() + prefix.size());
    const int64_t offset = std::atoll(m.c_str() + colon + 9);
    history->Append({0, name, OpType::kFail, "read", "", partition, offset, -1, error.ToString()});
    (void)consumer->Seek({topic, partition}, offset);
    return;
  }
  history->Append({0, name, OpType::kFail, "read", "", -1, -1, -1, error.ToString()});
}

}  // namespace

void Workload::RunPlainConsumer(int index) {
  const std::string name = "consumer-" + std::to_string(index);
  client::ConsumerConfig cc;
  cc.bootstrap = options_.bootstrap;
  cc.client_id = name;
  cc.auto_offset_reset =  // see HandlePollError
      options_.reset_earliest ? client::OffsetReset::kEarliest : client::OffsetReset::kError;
  cc.fetch_max_wait_ms = 200;
  cc.request_timeout_ms = 5000;
  auto created = client::Consumer::Create(cc);
  if (!created.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), created.status().ToString().c_str());
    return;
  }
  auto consumer = std::move(created).value();
  std::vector<TopicPartition> all;
  for (int p = 0; p < options_.partitions; ++p) all.push_back({options_.topic, p});
  (void)consumer->Assign(all);
  for (const auto& tp : all) (void)consumer->Seek(tp, 0);
  while (!stop_consumers_.load()) {
    auto records = consumer->Poll(200ms);
    if (!records.ok()) {
      HandlePollError(history_, name, consumer.get(), options_.topic, records.status());
      continue;
    }
    RecordReads(history_, name, *records);
  }
  (void)consumer->Close();
}

namespace {

// Records a member's rebalance callbacks; commits the positions of revoked partitions before
// they are released (the next owner starts from there).
class RecordingListener : public client::ConsumerRebalanceListener {
 public:
  RecordingListener(HistoryWriter* history, std::string name)
      : history_(history), name_(std::move(name)) {}
  void set_consumer(client::Consumer* consumer) { consumer_ = consumer; }

  void OnPartitionsAssigned(const std::vector<TopicPartition>& partitions) override {
    for (const auto& tp : partitions) {
      history_->Append({0, name_, OpType::kInfo, "assign", "", tp.partition});
    }
  }
  void OnPartitionsRevoked(const std::vector<TopicPartition>& partitions) override {
    CommitPositions(partitions);
    for (const auto& tp : partitions) {
      history_->Append({0, name_, OpType::kInfo, "revoke", "", tp.partition});
    }
  }
  void OnPartitionsLost(const std::vector<TopicPartition>& partitions) override {
    for (const auto& tp : partitions) {
      history_->Append({0, name_, OpType::kInfo, "lost", "", tp.partition});
    }
  }

  // Commits the positions of `partitions` (those with a known position), one invoke and one
  // outcome per partition in the history.
  void CommitPositions(const std::vector<TopicPartition>& partitions) {
    client::OffsetMap offsets;
    for (const auto& tp : partitions) {
      auto position = consumer_->Position(tp);
      if (position.ok()) offsets[tp] = *position;
    }
    if (offsets.empty()) return;
    for (const auto& [tp, offset] : offsets) {
      history_->Append({0, name_, OpType::kInvoke, "commit", "", tp.partition, offset});
    }
    Status st = consumer_->Commit(offsets);
    for (const auto& [tp, offset] : offsets) {
      history_->Append({0, name_, st.ok() ? OpType::kOk : OpType::kFail, "commit", "", tp.partition,
                        offset, -1, st.ok() ? "" : st.ToString()});
    }
  }

 private:
  HistoryWriter* history_;
  std::string name_;
  client::Consumer* consumer_ = nullptr;
};

}  // namespace

void Workload::RunGroupMember(int index) {
  const std::string name = "group-" + std::to_string(index);
  client::ConsumerConfig cc;
  cc.bootstrap = options_.bootstrap;
  cc.client_id = name;
  cc.group_id = options_.group;
  cc.enable_auto_commit = false;
  // Every partition has a committed offset before the members join (the run commits 0 for the
  // empty group), so kError only ever reports an out-of-range offset (HandlePollError).
  cc.auto_offset_reset =
      options_.reset_earliest ? client::OffsetReset::kEarliest : client::OffsetReset::kError;
  cc.fetch_max_wait_ms = 200;
  cc.request_timeout_ms = 5000;
  cc.session_timeout_ms = 10000;
  cc.rebalance_timeout_ms = 10000;
  auto created = client::Consumer::Create(cc);
  if (!created.ok()) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), created.status().ToString().c_str());
    return;
  }
  auto consumer = std::move(created).value();
  RecordingListener listener(history_, name);
  listener.set_consumer(consumer.get());
  (void)consumer->Subscribe({options_.topic}, &listener);
  auto next_commit = std::chrono::steady_clock::now();
  while (!stop_consumers_.load()) {
    auto records = consumer->Poll(200ms);
    if (!records.ok()) {
      HandlePollError(history_, name, consumer.get(), options_.topic, records.status());
      continue;
    }
    RecordReads(history_, name, *records);
    if (std::chrono::steady_clock::now() >= next_commit) {
      listener.CommitPositions(consumer->Assignment());
      next_commit =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.commit_interval_ms);
    }
  }
  (void)consumer->Close();  // revokes (committing in the listener) and leaves
}

}  // namespace rill::fault
