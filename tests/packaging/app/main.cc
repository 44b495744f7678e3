// An application of the installed Rill client library, built outside the source tree by
// tests/packaging/packaging_test.sh (with CMake: CMakeLists.txt; with pkg-config: Makefile).
//
//   rill-packaging-app BOOTSTRAP TOPIC COUNT
//
// Creates TOPIC (3 partitions), produces COUNT keyed records, consumes the topic from the start
// and checks that exactly those records come back. Exit 0 when they do; 1 with a message when not.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <string>
#include <vector>

#include <rill/client/admin.h>
#include <rill/client/consumer.h>
#include <rill/client/producer.h>
#include <rill/client/version.h>

using namespace rill::client;

static int Fail(const std::string& what, const rill::Status& status) {
  std::fprintf(stderr, "FAIL %s: %s\n", what.c_str(), status.ToString().c_str());
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 4) return std::fprintf(stderr, "usage: %s BOOTSTRAP TOPIC COUNT\n", argv[0]), 2;
  const std::string bootstrap = argv[1], topic = argv[2];
  const int count = std::atoi(argv[3]);
  if (Version() != RILL_VERSION_STRING) {
    return std::fprintf(stderr, "FAIL headers %s, library %.*s\n", RILL_VERSION_STRING,
                        static_cast<int>(Version().size()), Version().data()), 1;
  }

  AdminConfig admin_config;
  admin_config.bootstrap = bootstrap;
  auto admin = Admin::Create(admin_config);
  if (!admin.ok()) return Fail("admin", admin.status());
  auto created = (*admin)->CreateTopics({NewTopic{.name = topic, .partitions = 3}});
  if (!created.ok()) return Fail("create topic", created.status());
  if (auto st = Admin::FirstError(*created); !st.ok()) return Fail("create topic", st);

  ProducerConfig producer_config;
  producer_config.bootstrap = bootstrap;
  producer_config.acks = -1;
  auto producer = Producer::Create(producer_config);
  if (!producer.ok()) return Fail("producer", producer.status());
  std::map<std::string, std::string> sent;  // key -> value
  std::vector<std::future<rill::Result<RecordMetadata>>> acks;
  for (int i = 0; i < count; ++i) {
    ProducerRecord record{.topic = topic, .key = "key-" + std::to_string(i),
                          .value = "value-" + std::to_string(i) + "-" + topic};
    sent[*record.key] = *record.value;
    acks.push_back((*producer)->Send(record));
  }
  for (auto& ack : acks) {
    auto md = ack.get();
    if (!md.ok()) return Fail("send", md.status());
  }
  (*producer)->Close();

  ConsumerConfig consumer_config;
  consumer_config.bootstrap = bootstrap;
  consumer_config.auto_offset_reset = OffsetReset::kEarliest;
  auto consumer = Consumer::Create(consumer_config);
  if (!consumer.ok()) return Fail("consumer", consumer.status());
  if (auto st = (*consumer)->Assign({{topic, 0}, {topic, 1}, {topic, 2}}); !st.ok()) {
    return Fail("assign", st);
  }
  std::map<std::string, std::string> received;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (received.size() < sent.size() && std::chrono::steady_clock::now() < deadline) {
    auto records = (*consumer)->Poll(std::chrono::milliseconds(500));
    if (!records.ok()) return Fail("poll", records.status());
    for (const ConsumerRecord& r : *records) {
      std::string key(r.key.value_or("<null>")), value(r.value.value_or("<null>"));
      if (!received.emplace(key, value).second) {
        return std::fprintf(stderr, "FAIL record %s consumed twice\n", key.c_str()), 1;
      }
    }
  }
  if (auto st = (*consumer)->Close(); !st.ok()) return Fail("close", st);
  if (received != sent) {
    std::fprintf(stderr, "FAIL sent %zu records, received %zu\n", sent.size(), received.size());
    for (const auto& [k, v] : received) {
      auto it = sent.find(k);
      if (it == sent.end() || it->second != v) {
        std::fprintf(stderr, "  unexpected %s=%s\n", k.c_str(), v.c_str());
      }
    }
    return 1;
  }
  std::printf("ok: librill-client %.*s, %d records produced and consumed on %s\n",
              static_cast<int>(Version().size()), Version().data(), count, topic.c_str());
  return 0;
}
