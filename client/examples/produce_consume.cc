// Produces ten records to a topic and reads them back.
//
//   rill-example-produce-consume [bootstrap=localhost:9092] [topic=example]
//
// Creates the topic (one partition) if it does not exist.

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "rill/client/admin.h"
#include "rill/client/consumer.h"
#include "rill/client/producer.h"

using namespace rill::client;

int main(int argc, char** argv) {
  const std::string bootstrap = argc > 1 ? argv[1] : "localhost:9092";
  const std::string topic = argc > 2 ? argv[2] : "example";

  AdminConfig admin_config;
  admin_config.bootstrap = bootstrap;
  auto admin = Admin::Create(admin_config);
  if (!admin.ok()) return std::fprintf(stderr, "%s\n", admin.status().ToString().c_str()), 1;
  auto created = (*admin)->CreateTopics({NewTopic{.name = topic, .partitions = 1, .configs = {}}});
  if (!created.ok()) {
    std::fprintf(stderr, "create topic: %s\n", created.status().ToString().c_str());
    return 1;
  }

  ProducerConfig producer_config;
  producer_config.bootstrap = bootstrap;
  auto producer = Producer::Create(producer_config);
  if (!producer.ok()) return std::fprintf(stderr, "%s\n", producer.status().ToString().c_str()), 1;
  int64_t first_offset = -1;
  for (int i = 0; i < 10; ++i) {
    ProducerRecord record;
    record.topic = topic;
    record.key = "key-" + std::to_string(i);
    record.value = "hello " + std::to_string(i);
    record.headers = {{"source", "example"}};
    auto metadata = (*producer)->Send(record).get();  // waits for the ack
    if (!metadata.ok()) {
      std::fprintf(stderr, "send: %s\n", metadata.status().ToString().c_str());
      return 1;
    }
    if (first_offset < 0) first_offset = metadata->offset;
    std::printf("produced %s-%d@%lld\n", metadata->topic.c_str(), metadata->partition,
                static_cast<long long>(metadata->offset));
  }
  (*producer)->Close();

  ConsumerConfig consumer_config;
  consumer_config.bootstrap = bootstrap;
  auto consumer = Consumer::Create(consumer_config);
  if (!consumer.ok()) return std::fprintf(stderr, "%s\n", consumer.status().ToString().c_str()), 1;
  TopicPartition tp{topic, 0};
  if (auto st = (*consumer)->Assign({tp}); !st.ok()) return 1;
  if (auto st = (*consumer)->Seek(tp, first_offset); !st.ok()) return 1;
  int received = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (received < 10 && std::chrono::steady_clock::now() < deadline) {
    auto records = (*consumer)->Poll(std::chrono::milliseconds(500));
    if (!records.ok()) {
      std::fprintf(stderr, "poll: %s\n", records.status().ToString().c_str());
      return 1;
    }
    for (const ConsumerRecord& r : *records) {
      std::printf("consumed %lld: %.*s = %.*s\n", static_cast<long long>(r.offset),
                  static_cast<int>(r.key.value_or("").size()), r.key.value_or("").data(),
                  static_cast<int>(r.value.value_or("").size()), r.value.value_or("").data());
      ++received;
    }
  }
  return received == 10 ? 0 : 1;
}
