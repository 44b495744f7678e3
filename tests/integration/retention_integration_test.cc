// Retention through the real rill-broker process: the housekeeping thread applies a topic's
// retention.ms and retention.bytes every log.retention.check.interval.ms, so records older than
// retention.ms disappear from the start of the log (and only they), a size-bounded topic stays
// bounded on disk while it is written, and /metrics counts what was removed.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "broker_process.h"
#include "rill/proto/record_batch.h"
#include "support/poll.h"

namespace rill::testing {
namespace {

namespace fs = std::filesystem;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The value of an unlabelled counter in a /metrics body; -1 when absent.
int64_t MetricValue(const std::string& body, const std::string& name) {
  size_t pos = 0;
  while ((pos = body.find(name + " ", pos)) != std::string::npos) {
    if (pos == 0 || body[pos - 1] == '\n') return std::stoll(body.substr(pos + name.size() + 1));
    pos += name.size();
  }
  return -1;
}

class RetentionIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ =
        (fs::temp_directory_path() / ("rill_it_" + std::to_string(::getpid()) + "_" + info->name()))
            .string();
    fs::remove_all(dir_);
    broker_ = std::make_unique<BrokerProcess>(dir_);
    // Retention every 100 ms instead of Kafka's 5 minutes, so the test waits for little.
    ASSERT_NO_FATAL_FAILURE(broker_->Start({"--log.retention.check.interval.ms", "100"}));
  }
  void TearDown() override {
    if ((::testing::Test::HasFailure() || getenv("RILL_IT_SHOW_LOG")) && broker_) {
      std::cerr << "---- broker log ----\n" << broker_->log() << "--------------------\n";
    }
    broker_.reset();
    fs::remove_all(dir_);
  }

  // Produces one batch of `n` records of `value_bytes` bytes each, every record stamped
  // `timestamp_ms` (CreateTime), with values "<tag>-<i>" padded; acks=all.
  void Produce(const std::string& topic, const std::string& tag, int n, int64_t timestamp_ms,
               size_t value_bytes = 1000) {
    batch::BatchBuilder b(batch::Compression::kNone);
    for (int i = 0; i < n; ++i) {
      std::string v = tag + "-" + std::to_string(i);
      v.resize(std::max(v.size(), value_bytes), '.');
      ASSERT_TRUE(b.Add(std::string_view("k"), std::string_view(v), timestamp_ms).ok());
    }
    auto built = b.Build();
    ASSERT_TRUE(built.ok());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::ProduceRequest req;
    req.set_acks(-1);
    auto* p = req.add_partitions();
    p->set_topic(topic);
    p->set_partition(0);
    p->set_records(std::move(built).value());
    v1::ProduceResponse resp;
    auto st = broker_->producer->Produce(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(resp.partitions_size(), 1);
    ASSERT_EQ(resp.partitions(0).error(), v1::NONE) << resp.partitions(0).error_message();
  }

  // ListOffsets earliest (-2) of partition 0; -1 on error.
  int64_t LogStartOffset(const std::string& topic) {
    grpc::ClientContext ctx;
    v1::ListOffsetsRequest req;
    auto* p = req.add_partitions();
    p->set_topic(topic);
    p->set_partition(0);
    p->set_timestamp(-2);
    v1::ListOffsetsResponse resp;
    auto st = broker_->consumer->ListOffsets(&ctx, req, &resp);
    if (!st.ok() || resp.partitions_size() != 1 || resp.partitions(0).error() != v1::NONE) {
      return -1;
    }
    return resp.partitions(0).offset();
  }

  // Every record value from `from` up to the high watermark.
  std::vector<std::string> ReadFrom(const std::string& topic, int64_t from) {
    std::vector<std::string> values;
    int64_t next = from;
    for (int guard = 0; guard < 10000; ++guard) {
      auto f = broker_->Fetch(topic, 0, next);
      EXPECT_EQ(f.error(), v1::NONE) << f.error_message();
      if (f.error() != v1::NONE || f.records().empty()) break;
      batch::BatchIterator it(f.records());
      while (it.Next()) {
        auto recs = batch::DecodeRecords(it.batch());
        EXPECT_TRUE(recs.ok()) << recs.status().ToString();
        if (!recs.ok()) return values;
        int64_t off = it.header().base_offset;
        for (auto& r : *recs) {
          if (off++ >= next) values.push_back(r.value.value_or(""));
        }
        next = it.header().last_offset() + 1;
      }
      EXPECT_TRUE(it.status().ok()) << it.status().ToString();
      if (next >= f.high_watermark()) break;
    }
    return values;
  }

  // Bytes of the segment files (*.log) in the partition's directory.
  uint64_t SegmentBytesOnDisk(const std::string& topic) {
    uint64_t total = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(fs::path(dir_) / "data" / (topic + "-0"), ec)) {
      if (e.path().extension() == ".log") total += e.file_size(ec);
    }
    return total;
  }

  std::string Metrics() { return HttpGet(broker_->http_port(), "/metrics"); }

  std::string dir_;
  std::unique_ptr<BrokerProcess> broker_;
};

TEST_F(RetentionIntegrationTest, RecordsOlderThanRetentionMsDisappearFromTheStart) {
  // Each batch (~20 KB) is larger than segment.bytes, so every batch closes its own segment.
  auto r = broker_->CreateTopic("aged", 1, {{"retention.ms", "60000"}, {"segment.bytes", "16384"}});
  ASSERT_EQ(r.error(), v1::NONE) << r.error_message();
  const int64_t now = NowMs();
  constexpr int kOldBatches = 8, kNewBatches = 3, kPerBatch = 20;
  for (int i = 0; i < kOldBatches; ++i) {
    ASSERT_NO_FATAL_FAILURE(Produce("aged", "old" + std::to_string(i), kPerBatch, now - 3'600'000));
  }
  for (int i = 0; i < kNewBatches; ++i) {
    ASSERT_NO_FATAL_FAILURE(Produce("aged", "new" + std::to_string(i), kPerBatch, now));
  }

  // Every old batch's segment goes; the log starts at the first new record.
  const int64_t first_new = kOldBatches * kPerBatch;
  ASSERT_TRUE(test::PollUntil([&] { return LogStartOffset("aged") == first_new; },
                              std::chrono::seconds(30), std::chrono::milliseconds(20)))
      << "log start offset " << LogStartOffset("aged") << ", want " << first_new;

  auto values = ReadFrom("aged", first_new);
  ASSERT_EQ(values.size(), static_cast<size_t>(kNewBatches * kPerBatch));
  for (int i = 0; i < kNewBatches * kPerBatch; ++i) {
    EXPECT_EQ(values[i].substr(0, values[i].find('.')),
              "new" + std::to_string(i / kPerBatch) + "-" + std::to_string(i % kPerBatch));
  }
  // Below the log start there is nothing to read.
  EXPECT_EQ(broker_->Fetch("aged", 0, 0).error(), v1::OFFSET_OUT_OF_RANGE);

  // The log start moves inside a pass; the pass counts what it removed right after.
  std::string m;
  ASSERT_TRUE(test::PollUntil(
      [&] {
        m = Metrics();
        return MetricValue(m, "rill_retention_segments_deleted_total") >= kOldBatches &&
               MetricValue(m, "rill_retention_passes_total") >= 1;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(20)))
      << m;
  EXPECT_GE(MetricValue(m, "rill_retention_bytes_deleted_total"),
            int64_t{kOldBatches} * kPerBatch * 1000)
      << m;
  EXPECT_GE(MetricValue(m, "rill_retention_passes_total"), 1) << m;
  EXPECT_EQ(MetricValue(m, "rill_retention_errors_total"), 0) << m;
  EXPECT_NE(broker_->log().find("retention deleted"), std::string::npos);

  // The new records stay: a minute of retention is far from over.
  const uint64_t passes = MetricValue(m, "rill_retention_passes_total");
  ASSERT_TRUE(test::PollUntil(
      [&] { return MetricValue(Metrics(), "rill_retention_passes_total") >= int64_t(passes) + 3; },
      std::chrono::seconds(30), std::chrono::milliseconds(20)));
  EXPECT_EQ(LogStartOffset("aged"), first_new);
  EXPECT_EQ(ReadFrom("aged", first_new).size(), static_cast<size_t>(kNewBatches * kPerBatch));
}

TEST_F(RetentionIntegrationTest, SizeBoundedTopicStaysBounded) {
  constexpr int64_t kRetentionBytes = 256 << 10, kSegmentBytes = 64 << 10;
  auto r = broker_->CreateTopic("bounded", 1,
                                {{"retention.bytes", std::to_string(kRetentionBytes)},
                                 {"retention.ms", "-1"},
                                 {"segment.bytes", std::to_string(kSegmentBytes)}});
  ASSERT_EQ(r.error(), v1::NONE) << r.error_message();
  // 4 MiB in rounds of 512 KiB; after each round the log shrinks back under its bound: the kept
  // segments, at most retention.bytes, plus the active one.
  constexpr int kRounds = 8, kBatchesPerRound = 16, kPerBatch = 32;  // 32 KB batches
  const int64_t bound = kRetentionBytes + 2 * kSegmentBytes;
  int64_t produced = 0;
  for (int round = 0; round < kRounds; ++round) {
    for (int b = 0; b < kBatchesPerRound; ++b) {
      ASSERT_NO_FATAL_FAILURE(Produce(
          "bounded", "r" + std::to_string(round) + "b" + std::to_string(b), kPerBatch, NowMs()));
      produced += kPerBatch;
    }
    ASSERT_TRUE(test::PollUntil([&] { return SegmentBytesOnDisk("bounded") <= uint64_t(bound); },
                                std::chrono::seconds(30), std::chrono::milliseconds(20)))
        << "round " << round << ": " << SegmentBytesOnDisk("bounded") << " bytes of segments, "
        << "bound " << bound;
  }
  const int64_t start = LogStartOffset("bounded");
  ASSERT_GT(start, 0);
  // What is kept is the newest records, at least retention.bytes of them, contiguous to the end.
  auto values = ReadFrom("bounded", start);
  EXPECT_EQ(static_cast<int64_t>(values.size()), produced - start);
  EXPECT_GE(static_cast<int64_t>(values.size()) * 1000, kRetentionBytes - kSegmentBytes);
  ASSERT_FALSE(values.empty());
  EXPECT_EQ(values.back().substr(0, values.back().find('.')),
            "r" + std::to_string(kRounds - 1) + "b" + std::to_string(kBatchesPerRound - 1) + "-" +
                std::to_string(kPerBatch - 1));
  EXPECT_GT(MetricValue(Metrics(), "rill_retention_segments_deleted_total"), 0);
}

}  // namespace
}  // namespace rill::testing
