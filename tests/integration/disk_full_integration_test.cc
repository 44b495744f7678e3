// A real rill-broker on a real, small filesystem that fills up (a 48 MiB tmpfs mounted for the
// test in a private mount namespace: needs CAP_SYS_ADMIN, the test is skipped without it).
//
// With storage.min_free_bytes the broker refuses produce (RESOURCE_EXHAUSTED, which the client
// retries) before the disk is full, so no log ever meets ENOSPC: the producer's failures name
// the disk and the setting, every acknowledged record is read back at its offset, and once
// space is freed produce is accepted again without a restart.

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>

#include "broker_process.h"
#include "rill/client/admin.h"
#include "rill/client/producer.h"
#include "support/poll.h"

namespace rill::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr uint64_t kMiB = 1 << 20;

class DiskFullIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("rill_it_diskfull_" + std::to_string(::getpid())))
               .string();
    fs::remove_all(dir_);
    fs::create_directories(data());
    // A private mount namespace: the tmpfs is this process's (and its children's) only, and
    // goes away with it whatever happens to the test.
    if (::unshare(CLONE_NEWNS) != 0) {
      GTEST_SKIP() << "cannot create a mount namespace (" << std::strerror(errno)
                   << "): the full-disk test needs CAP_SYS_ADMIN";
    }
    ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0)
        << std::strerror(errno);
    if (::mount("tmpfs", data().c_str(), "tmpfs", 0, "size=48m") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs (" << std::strerror(errno) << ")";
    }
    mounted_ = true;
    broker_ = std::make_unique<BrokerProcess>(dir_);
  }

  void TearDown() override {
    if (broker_ && (::testing::Test::HasFailure() || getenv("RILL_IT_SHOW_LOG"))) {
      std::cerr << "---- broker log ----\n" << broker_->log() << "--------------------\n";
    }
    broker_.reset();
    if (mounted_) ::umount2(data().c_str(), MNT_DETACH);
    fs::remove_all(dir_);
  }

  std::string data() const { return dir_ + "/data"; }

  uint64_t Available() const {
    struct statvfs s;
    EXPECT_EQ(::statvfs(data().c_str(), &s), 0);
    return static_cast<uint64_t>(s.f_bavail) * s.f_frsize;
  }

  int64_t Metric(const std::string& name) {
    const std::string m = HttpGet(broker_->http_port(), "/metrics");
    const size_t at = m.find("\n" + name + " ");
    if (at == std::string::npos) return -1;
    return std::stoll(m.substr(at + name.size() + 2));
  }

  std::unique_ptr<client::Producer> MakeProducer() {
    client::ProducerConfig pc;
    pc.bootstrap = "127.0.0.1:" + std::to_string(broker_->client_port());
    pc.linger_ms = 1;
    pc.batch_size = 64 * 1024;
    pc.retry_backoff_ms = 20;
    pc.retry_backoff_max_ms = 100;
    pc.delivery_timeout_ms = 3000;
    auto p = client::Producer::Create(pc);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? std::move(p).value() : nullptr;
  }

  std::string dir_;
  bool mounted_ = false;
  std::unique_ptr<BrokerProcess> broker_;
};

TEST_F(DiskFullIntegrationTest, ProduceIsRefusedBeforeTheDiskFillsAndResumesWhenSpaceIsFreed) {
  broker_->Start({"--storage.min_free_bytes", std::to_string(16 * kMiB)});
  ASSERT_EQ(broker_->CreateTopic("full", 1, {{"segment.bytes", std::to_string(4 * kMiB)}}).error(),
            v1::NONE);
  EXPECT_EQ(Metric("rill_storage_min_free_bytes"), static_cast<int64_t>(16 * kMiB));
  EXPECT_EQ(Metric("rill_storage_produce_refused"), 0);

  // Produce 4 KiB records until the broker refuses them (a 48 MiB disk holds fewer than 12,000).
  auto producer = MakeProducer();
  ASSERT_NE(producer, nullptr);
  std::mutex mu;
  std::map<int64_t, std::string> acked;  // offset -> value
  std::string first_error;
  std::atomic<int> failed{0};
  const std::string filler(4096 - 16, 'x');
  for (int i = 0; i < 20000 && failed.load() == 0; ++i) {
    client::ProducerRecord rec;
    rec.topic = "full";
    rec.partition = 0;
    std::string value = std::to_string(i) + ":" + filler;
    rec.value = value;
    producer->Send(rec, [&, value](const Result<client::RecordMetadata>& r) {
      std::lock_guard lock(mu);
      if (r.ok()) {
        acked.emplace(r->offset, value);
      } else {
        if (first_error.empty()) first_error = r.status().ToString();
        failed.fetch_add(1);
      }
    });
  }
  producer->Flush();
  ASSERT_GT(failed.load(), 0) << "every record was accepted; acked " << acked.size();
  ASSERT_GT(acked.size(), 1000u);
  // The failure says why: the last retried error is the broker's refusal.
  EXPECT_NE(first_error.find("storage.min_free_bytes"), std::string::npos) << first_error;
  EXPECT_NE(first_error.find(data()), std::string::npos) << first_error;
  EXPECT_EQ(Metric("rill_storage_produce_refused"), 1);
  // Refused before the disk was full: the log never met ENOSPC and is not failed.
  EXPECT_GT(Available(), 4 * kMiB);
  EXPECT_EQ(broker_->log().find("read-only"), std::string::npos);

  // Every acknowledged record is there, at its offset, and nothing else.
  int64_t hw = -1;
  auto records = broker_->ReadAll("full", 0, &hw);
  ASSERT_EQ(records.size(), acked.size());
  for (const auto& r : records) {
    auto it = acked.find(r.offset);
    ASSERT_NE(it, acked.end()) << "offset " << r.offset << " was never acknowledged";
    ASSERT_EQ(r.record.value.value_or(""), it->second) << "offset " << r.offset;
  }

  // Space comes back (the filesystem grows): produce is accepted again without a restart.
  ASSERT_EQ(::mount("tmpfs", data().c_str(), "tmpfs", MS_REMOUNT, "size=128m"), 0)
      << std::strerror(errno);
  auto again = MakeProducer();
  ASSERT_NE(again, nullptr);
  client::ProducerRecord rec;
  rec.topic = "full";
  rec.partition = 0;
  rec.value = std::string("after");
  auto md = again->Send(rec).get();
  ASSERT_TRUE(md.ok()) << md.status().ToString();
  EXPECT_EQ(md->offset, hw);
  EXPECT_EQ(Metric("rill_storage_produce_refused"), 0);
}

}  // namespace
}  // namespace rill::testing
