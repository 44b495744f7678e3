// The broker's resident memory stays bounded under many concurrent large producers and stalled
// subscribers (docs/ARCHITECTURE.md §12, "Worst-case resident memory"), and every acknowledged
// batch is readable afterwards.
//
// The same binary is the load driver of bench/RESULTS.md "Session 7" and "Session 22":
// RILL_MEM_PRODUCERS, RILL_MEM_CONNECTIONS, RILL_MEM_SECONDS, RILL_MEM_MODE (unary or stream)
// and RILL_MEM_BROKER_ARGS (space-separated broker options, replacing the test's bounds) change
// the load, and a summary line is printed.

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/impl/codegen/client_unary_call.h>
#include <grpcpp/impl/codegen/rpc_method.h>
#include <grpcpp/impl/codegen/sync_stream.h>
#include <grpcpp/support/byte_buffer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "broker_process.h"
#include "rill/proto/batch_header.h"
#include "rill/proto/record_batch.h"
#include "support/poll.h"

namespace rill::testing {
namespace {

int EnvInt(const char* name, int fallback) {
  const char* v = getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

// VmRSS of `pid` in bytes (0 if it cannot be read).
int64_t ResidentBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  }
  return 0;
}

// Samples a process's VmRSS every 10 ms on its own thread until destroyed; keeps the maximum.
class RssSampler {
 public:
  explicit RssSampler(pid_t pid) : pid_(pid), thread_([this] { Run(); }) {}
  ~RssSampler() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  int64_t max_bytes() const { return max_.load(); }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    while (!stop_) {
      const int64_t rss = ResidentBytes(pid_);
      if (rss > max_.load()) max_.store(rss);
      cv_.wait_for(lock, std::chrono::milliseconds(10), [&] { return stop_; });
    }
  }

  const pid_t pid_;
  std::atomic<int64_t> max_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

constexpr int kRecordsPerBatch = 64;
constexpr int kRecordBytes = 64 << 10;  // one request: one batch of 4 MiB

// A produce request of one 4 MiB batch for `partition`, serialized once: every call sends the same
// slices (a ByteBuffer copy shares them), so the test process holds 4 MiB per partition, not per
// producer.
grpc::ByteBuffer SerializedRequest(const std::string& topic, int partition) {
  batch::BatchBuilder b;
  std::string value(kRecordBytes, 'x');
  for (int i = 0; i < kRecordsPerBatch; ++i) {
    value[0] = static_cast<char>('a' + i % 26);
    EXPECT_TRUE(b.Add(std::nullopt, value, 1700000000000 + i).ok());
  }
  auto records = b.Build();
  EXPECT_TRUE(records.ok());
  v1::ProduceRequest req;
  req.set_acks(1);
  auto* p = req.add_partitions();
  p->set_topic(topic);
  p->set_partition(partition);
  p->set_records(std::move(records).value());
  std::string bytes = req.SerializeAsString();
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

struct Ack {
  int partition;
  int64_t base_offset;
  int64_t last_offset;
};

class RequestMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / ("rill_mem_it_" + std::to_string(::getpid())))
               .string();
    std::filesystem::remove_all(dir_);
    broker_ = std::make_unique<BrokerProcess>(dir_);
  }
  void TearDown() override {
    if ((::testing::Test::HasFailure() || getenv("RILL_IT_SHOW_LOG")) && broker_) {
      std::cerr << "---- broker log ----\n" << broker_->log() << "--------------------\n";
    }
    broker_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string dir_;
  std::unique_ptr<BrokerProcess> broker_;
};

// One load: `producers` threads over `connections` TCP connections, each sending one 4 MiB
// produce after another (8 partitions), plus 16 Subscribe streams that never grant credit, for
// RILL_MEM_SECONDS. Unary: each produce is a Produce call. Stream: each producer keeps one
// ProduceStream open (as the client library does) and sends its next request once the last one
// is answered. Asserts the broker's peak VmRSS is under its VmRSS at rest + `bound_bytes`
// (unless RILL_MEM_BROKER_ARGS replaced the broker options), that nothing was refused when
// `expect_no_refusals`, and that every acknowledged batch is readable.
struct Scenario {
  int producers;
  int connections;
  std::vector<std::string> broker_args;
  int64_t bound_bytes;
  bool expect_no_refusals;
  bool stream = false;
  int max_refusals_per_100_acks = -1;  // -1: not checked
};

void RunScenario(BrokerProcess* broker, const Scenario& sc) {
  const int producers = EnvInt("RILL_MEM_PRODUCERS", sc.producers);
  const int connections = std::max(1, EnvInt("RILL_MEM_CONNECTIONS", sc.connections));
  const int seconds = EnvInt("RILL_MEM_SECONDS", 3);
  const char* mode = getenv("RILL_MEM_MODE");
  const bool stream = mode && *mode ? std::string(mode) == "stream" : sc.stream;
  const int subscribers = 16;
  const int partitions = 8;
  std::vector<std::string> args = sc.broker_args;
  args.insert(args.end(), {"--storage.min_free_bytes", "0"});
  const bool custom_args = getenv("RILL_MEM_BROKER_ARGS") != nullptr;
  if (custom_args) {
    args = {"--storage.min_free_bytes", "0"};
    std::istringstream in(getenv("RILL_MEM_BROKER_ARGS"));
    for (std::string a; in >> a;) args.push_back(a);
  }
  broker->Start(args);
  ASSERT_EQ(broker->CreateTopic("mem", partitions, {{"max.message.bytes", "8388608"}}).error(),
            v1::NONE);

  std::vector<grpc::ByteBuffer> requests;
  for (int p = 0; p < partitions; ++p) requests.push_back(SerializedRequest("mem", p));
  const int64_t request_bytes = static_cast<int64_t>(requests[0].Length());

  // Separate TCP connections: a distinct channel argument keeps gRPC from sharing one.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < connections; ++i) {
    grpc::ChannelArguments ca;
    ca.SetInt("rill.test.connection", i);
    ca.SetMaxReceiveMessageSize(256 << 20);
    channels.push_back(
        grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(broker->client_port()),
                                  grpc::InsecureChannelCredentials(), ca));
  }

  // Subscribers that start at offset 0 and never grant credit.
  struct Subscriber {
    grpc::ClientContext ctx;
    std::unique_ptr<v1::Consumer::Stub> stub;
    std::unique_ptr<grpc::ClientReaderWriter<v1::SubscribeRequest, v1::SubscribeResponse>> stream;
  };
  std::vector<std::unique_ptr<Subscriber>> subs;
  for (int i = 0; i < subscribers; ++i) {
    auto s = std::make_unique<Subscriber>();
    // Each on its own connection, as the client library keeps fetches apart from produce: a
    // stalled stream holds one of its connection's max_concurrent_streams_per_connection.
    grpc::ChannelArguments ca;
    ca.SetInt("rill.test.subscriber", i);
    s->stub = v1::Consumer::NewStub(
        grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(broker->client_port()),
                                  grpc::InsecureChannelCredentials(), ca));
    s->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    s->stream = s->stub->Subscribe(&s->ctx);
    v1::SubscribeRequest start;
    auto* fp = start.mutable_start()->add_partitions();
    fp->set_topic("mem");
    fp->set_partition(i % partitions);
    fp->set_fetch_offset(0);
    ASSERT_TRUE(s->stream->Write(start));
    subs.push_back(std::move(s));
  }

  const pid_t pid = broker->pid();
  const int64_t rss_before = ResidentBytes(pid);
  std::mutex mu;
  std::vector<Ack> acks;
  std::map<std::string, int> failures;                // gRPC status or wire error -> count
  std::map<std::string, std::string> failure_sample;  // the first message of each
  std::atomic<bool> stop{false};
  std::condition_variable stop_cv;
  const grpc::internal::RpcMethod method("/rill.v1.Producer/Produce",
                                         grpc::internal::RpcMethod::NORMAL_RPC);
  const grpc::internal::RpcMethod stream_method("/rill.v1.Producer/ProduceStream",
                                                grpc::internal::RpcMethod::BIDI_STREAMING);
  const auto start_time = std::chrono::steady_clock::now();
  int64_t max_rss = 0;
  {
    RssSampler sampler(pid);
    std::vector<std::thread> threads;
    for (int i = 0; i < producers; ++i) {
      threads.emplace_back([&, i] {
        const int partition = i % partitions;
        grpc::Channel* channel = channels[i % connections].get();
        // Stream mode: the open stream (reopened after a failure) and its context.
        std::unique_ptr<grpc::ClientContext> stream_ctx;
        std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> rw;
        while (!stop.load()) {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
          grpc::ByteBuffer response_bytes;
          grpc::Status st;
          if (!stream) {
            st = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
                channel, method, &ctx, requests[partition], &response_bytes);
          } else {
            if (!rw) {
              stream_ctx = std::make_unique<grpc::ClientContext>();
              stream_ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
              rw.reset(grpc::internal::ClientReaderWriterFactory<
                       grpc::ByteBuffer, grpc::ByteBuffer>::Create(channel, stream_method,
                                                                   stream_ctx.get()));
            }
            if (!rw->Write(requests[partition]) || !rw->Read(&response_bytes)) {
              rw->WritesDone();
              st = rw->Finish();
              if (st.ok()) st = grpc::Status(grpc::StatusCode::UNKNOWN, "stream ended");
              rw.reset();
            }
          }
          v1::ProduceResponse resp;
          std::string failure;
          if (!st.ok()) {
            failure = "grpc " + std::to_string(st.error_code());
            std::lock_guard lock(mu);
            failure_sample.emplace(failure, st.error_message().substr(0, 120));
          } else if (!grpc::GenericDeserialize<grpc::ProtoBufferReader, v1::ProduceResponse>(
                          &response_bytes, &resp)
                          .ok() ||
                     resp.partitions_size() != 1) {
            failure = "bad response";
          } else if (resp.partitions(0).error() != v1::NONE) {
            failure = "wire " + std::to_string(resp.partitions(0).error());
          }
          std::unique_lock lock(mu);
          if (failure.empty()) {
            acks.push_back(
                {partition, resp.partitions(0).base_offset(), resp.partitions(0).last_offset()});
          } else {
            ++failures[failure];
            // A refused request (RESOURCE_EXHAUSTED) is retried after a short back-off, as a
            // client library would; the wait ends early when the load stops.
            stop_cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return stop.load(); });
          }
        }
        if (rw) {
          rw->WritesDone();
          (void)rw->Finish();
        }
      });
    }
    {
      std::unique_lock lock(mu);
      stop_cv.wait_for(lock, std::chrono::seconds(seconds), [&] { return stop.load(); });
      stop = true;
    }
    stop_cv.notify_all();
    for (auto& t : threads) t.join();
    max_rss = sampler.max_bytes();
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  for (auto& s : subs) s->ctx.TryCancel();
  for (auto& s : subs) (void)s->stream->Finish();

  const double acked_mb = static_cast<double>(acks.size()) * request_bytes / 1e6;
  std::ostringstream summary;
  summary << "mode=" << (stream ? "stream" : "unary") << " producers=" << producers
          << " connections=" << connections << " subscribers=" << subscribers
          << " seconds=" << elapsed << " acked=" << acks.size() << " acked_MB=" << acked_mb
          << " MB/s=" << acked_mb / elapsed << " rss_before_MiB=" << (rss_before >> 20)
          << " max_rss_MiB=" << (max_rss >> 20);
  for (const auto& [what, n] : failures) summary << " [" << what << "]=" << n;
  for (const auto& [what, msg] : failure_sample) std::cout << what << ": " << msg << "\n";
  std::cout << "RESULT " << summary.str() << std::endl;
  ::testing::Test::RecordProperty("summary", summary.str());

  if (!custom_args) {
    EXPECT_LT(max_rss, rss_before + sc.bound_bytes) << summary.str();
    if (sc.expect_no_refusals) {
      EXPECT_TRUE(failures.empty()) << summary.str();
    }
    if (sc.max_refusals_per_100_acks >= 0) {
      int refused = 0;
      for (const auto& [what, n] : failures) refused += n;
      EXPECT_LE(refused * 100, static_cast<int64_t>(acks.size()) * sc.max_refusals_per_100_acks)
          << summary.str();
    }
  }
  EXPECT_GT(acks.size(), 0u) << summary.str();

  // Every acknowledged batch is readable: fetch each partition whole (headers only) and find
  // each ack's batch at its offsets. (RILL_MEM_VERIFY=0 skips this for benchmark runs.)
  if (EnvInt("RILL_MEM_VERIFY", 1) == 0) return;
  std::map<int, std::map<int64_t, int64_t>> stored;  // partition -> base -> last offset
  for (int p = 0; p < partitions; ++p) {
    int64_t next = 0;
    for (int guard = 0; guard < 100000; ++guard) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      v1::FetchRequest req;
      req.set_max_bytes(64 << 20);
      auto* fp = req.add_partitions();
      fp->set_topic("mem");
      fp->set_partition(p);
      fp->set_fetch_offset(next);
      fp->set_partition_max_bytes(64 << 20);
      v1::FetchResponse resp;
      grpc::Status st = broker->consumer->Fetch(&ctx, req, &resp);
      ASSERT_TRUE(st.ok()) << st.error_message();
      ASSERT_EQ(resp.partitions_size(), 1);
      const auto& f = resp.partitions(0);
      ASSERT_EQ(f.error(), v1::NONE) << f.error_message();
      if (f.records().empty()) break;
      batch::BatchIterator it(f.records());
      while (it.Next()) {
        ASSERT_EQ(it.header().base_offset, next) << "partition " << p << ": a gap in the log";
        stored[p][it.header().base_offset] = it.header().last_offset();
        next = it.header().last_offset() + 1;
      }
      ASSERT_TRUE(it.status().ok()) << it.status().ToString();
      if (next >= f.high_watermark()) break;
    }
  }
  if (sc.stream && stream && !custom_args) {
    // The broker's /metrics show the read gate at work: streams waited for room during the
    // load, and once every stream has closed none waits and nothing stays reserved.
    auto gauge = [&](const std::string& body, const std::string& name) -> int64_t {
      const std::string key = "\n" + name + " ";
      const auto pos = body.find(key);
      return pos == std::string::npos ? -1 : std::stoll(body.substr(pos + key.size()));
    };
    std::string body;
    EXPECT_TRUE(rill::test::PollUntil([&] {
      body = HttpGet(broker->http_port(), "/metrics");
      return gauge(body, "rill_produce_streams_waiting") == 0 &&
             gauge(body, "rill_produce_reserved_bytes") == 0 &&
             gauge(body, "rill_inflight_produce_bytes") == 0;
    })) << "streams still waiting, holding reservations or bytes in flight after the load: "
        << summary.str();
    std::cout << "reads that waited for room: " << gauge(body, "rill_produce_stream_waits_total")
              << std::endl;
    EXPECT_GT(gauge(body, "rill_produce_stream_waits_total"), 0)
        << "256 producers of 4 MiB never waited for room: " << summary.str();
  }
  for (const Ack& a : acks) {
    auto it = stored[a.partition].find(a.base_offset);
    ASSERT_NE(it, stored[a.partition].end()) << "acknowledged batch at partition " << a.partition
                                             << " offset " << a.base_offset << " is not readable";
    EXPECT_EQ(it->second, a.last_offset);
    EXPECT_EQ(a.last_offset - a.base_offset + 1, kRecordsPerBatch);
  }
}

// Q = I = 64 MiB; streams per connection at the default (16), above the 8 producers per
// connection here, so the quota (which resets streams) is what holds the received bytes. The
// documented worst case (docs/ARCHITECTURE.md §12, "Worst-case resident memory") is the process
// at rest + Q + I; the stated margin of 256 MiB covers requests being deserialized or refused on
// gRPC's threads, the quota's overshoot (gRPC acts only once it is exceeded) and allocator slack.
// No fetch runs during the load and the subscribers grant no credit, so no response memory is
// held.
TEST_F(RequestMemoryTest, ManyLargeProducersAndStalledSubscribersStayUnderTheBound) {
  const int64_t q = 64ll << 20, i = 64ll << 20;
  RunScenario(broker_.get(), {128,
                              16,
                              {"--limits.max_request_memory_bytes", std::to_string(q),
                               "--limits.max_inflight_produce_bytes", std::to_string(i)},
                              q + i + (256ll << 20),
                              false});
}

// No quota; 4 streams per connection on 2 connections: at most 8 requests (32 MiB) are received
// at once, the other 56 producers wait in their client (HTTP/2 flow control), and none is
// refused. Bound: 8 x 4 MiB received + I (64 MiB) + the same 256 MiB margin.
TEST_F(RequestMemoryTest, StreamLimitSlowsProducersWithoutRefusingThem) {
  const int64_t i = 64ll << 20;
  RunScenario(broker_.get(), {64,
                              2,
                              {"--limits.max_request_memory_bytes", "0",
                               "--limits.max_concurrent_streams_per_connection", "4",
                               "--limits.max_inflight_produce_bytes", std::to_string(i)},
                              (32ll << 20) + i + (256ll << 20),
                              true});
}

// 256 producers on ProduceStreams (as the client library sends) over 16 connections, the
// broker's defaults (Q = I = 256 MiB). Every stream asks for its next 4 MiB request only once
// the broker has reserved room for it, and the reservations of requests about to arrive stay
// within Q / 4 (api/produce_read_gate.h), so gRPC's quota rarely has to cancel a stream: at
// most one refusal per four acknowledged requests (0-17 per ~700 measured). Before the gate
// every stream asked at once, 1 GiB against Q, and the quota cancelled about as many streams as
// were acknowledged (309 against 418 here; 765-1,144 against 678-816 in 6 s, bench/RESULTS.md,
// Session 22). Bound: Q + I + 256 MiB.
TEST_F(RequestMemoryTest, StreamingProducersWaitForRoomInsteadOfBeingCancelled) {
  const int64_t q = 256ll << 20, i = 256ll << 20;
  Scenario sc{256,
              16,
              {"--limits.max_request_memory_bytes", std::to_string(q),
               "--limits.max_inflight_produce_bytes", std::to_string(i)},
              q + i + (256ll << 20),
              false};
  sc.stream = true;
  sc.max_refusals_per_100_acks = 25;
  RunScenario(broker_.get(), sc);
}

}  // namespace
}  // namespace rill::testing
