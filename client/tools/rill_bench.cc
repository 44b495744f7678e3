// rill-bench: load generator. Produces and/or consumes N records of S bytes to a topic with P
// partitions (or to T topics of P partitions each) and reports throughput, latency percentiles
// and the CPU time used per record by rill-bench and, when told where it is, by the broker.
//
//   rill-bench --records 3000000 --record-size 100 --partitions 1 --acks 1        # throughput
//   rill-bench --rate 50000 --records 1000000                                     # latency
//   rill-bench --mode consume --records 3000000                                   # read back
//   rill-bench --topics 10 --partitions 100 --key-size 16 --broker-pid PID        # spread load
//
// Modes: produce (produce only), consume (read N records from the beginning), both (default:
// a consumer tails the topic while the producer runs, for end-to-end latency).
// Latency: produce-to-ack is measured from the record's *intended* send time when --rate paces the
// producer (open loop, so a stall is not hidden by coordinated omission); end-to-end from the
// send time stamped in the first 8 bytes of the value to the moment the consumer sees it.

#include <malloc.h>
#include <netdb.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "rill/client/admin.h"
#include "rill/client/consumer.h"
#include "rill/client/producer.h"
#include "tool_util.h"

namespace rill::tools {
namespace {

constexpr std::string_view kTool = "rill-bench";
// Latency is sampled (every stride-th record) so the clock is not read for every record.
constexpr size_t kMaxSamples = 200'000;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Options {
  std::string bootstrap = "localhost:9092";
  std::string topic = "rill-bench";
  std::string mode = "both";
  int32_t partitions = 1;
  int32_t replication_factor = 0;
  int64_t records = 1'000'000;
  int32_t record_size = 100;
  int32_t key_size = 0;
  int32_t acks = -1;  // all, the client's default
  std::string compression = "none";
  double linger_ms = -1;  // -1: 5 ms flat out, 0 ms when --rate paces the load
  int32_t batch_size = 256 * 1024;
  int32_t max_in_flight = 5;
  std::string idempotence = "default";  // on, off, or default (the client's rule)
  int64_t buffer_memory = 128ll << 20;
  int32_t max_request_bytes = 0;  // 0: the client's default
  double rate = 0;
  // How --rate waits for a record's send time: sleep (default; at most one wake-up per 100 us,
  // sending every record that is due), or spin (busy-wait the last 100-200 us before each
  // record, which keeps one core busy: on 2 cores it delays every other thread's wake-up).
  std::string pacing = "sleep";
  // --pacing sleep: the pacer wakes at most once per this many microseconds and sends every
  // record that is due (each record's latency still counts from its own intended time).
  int32_t pace_tick_us = 100;
  int32_t idle_timeout_ms = 10000;
  bool json = false;
  std::vector<std::string> topic_configs;
  // 0: the one topic `topic`; N > 0: topics `<topic>-0` .. `<topic>-<N-1>`, each with
  // `partitions` partitions.
  int32_t topics = 0;
  // Which partition a record goes to: `default` leaves it to the producer (keys hashed, keyless
  // records sticky), `random` and `round-robin` choose among every partition of every topic
  // (keyless records only). With `default` and several topics, record i goes to topic i % T.
  std::string partitioner = "default";
  // The broker whose CPU time is reported: its pid (read from /proc/<pid>/stat) and/or its
  // /metrics URL (process_cpu_seconds_total); the URL wins when both are given.
  int32_t broker_pid = 0;
  std::string broker_metrics;
};

// The topics this run produces to and consumes from.
std::vector<std::string> TopicNames(const Options& o) {
  if (o.topics <= 0) return {o.topic};
  std::vector<std::string> names;
  for (int32_t t = 0; t < o.topics; ++t) names.push_back(o.topic + "-" + std::to_string(t));
  return names;
}

// CPU time (user + system, seconds) of a process, or nullopt when it cannot be read.
std::optional<double> SelfCpuSeconds() {
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) != 0) return std::nullopt;
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// Fields 14 and 15 (utime, stime, clock ticks) of /proc/<pid>/stat; 10 ms resolution.
std::optional<double> PidCpuSeconds(int32_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return std::nullopt;
  // After ") " come field 3 (state) onwards: utime and stime are the 12th and 13th of those.
  const char* p = stat.c_str() + paren + 2;
  unsigned long long utime = 0, stime = 0;
  if (std::sscanf(p, "%*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu %llu", &utime, &stime) !=
      2) {
    return std::nullopt;
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// process_cpu_seconds_total from a Prometheus text endpoint, fetched with a plain HTTP/1.0 GET
// ("http://host:port/path", "host:port/path" or "host:port", path defaulting to /metrics).
std::optional<double> MetricsCpuSeconds(const std::string& url) {
  std::string rest = url.starts_with("http://") ? url.substr(7) : url;
  const size_t slash = rest.find('/');
  const std::string path = slash == std::string::npos ? "/metrics" : rest.substr(slash);
  const std::string hostport = rest.substr(0, slash);
  const size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  const std::string host = hostport.substr(0, colon), port = hostport.substr(colon + 1);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* ai = nullptr;
  if (getaddrinfo(host.c_str(), port.c_str(), &hints, &ai) != 0 || ai == nullptr) {
    return std::nullopt;
  }
  const int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
  const bool connected = fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
  freeaddrinfo(ai);
  std::string body;
  if (connected) {
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: " + hostport + "\r\n\r\n";
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[16384];
      for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) body.append(buf, n);
    }
  }
  if (fd >= 0) close(fd);
  constexpr std::string_view kName = "\nprocess_cpu_seconds_total ";
  const size_t at = body.find(kName);
  if (at == std::string::npos) return std::nullopt;
  return std::strtod(body.c_str() + at + kName.size(), nullptr);
}

// The broker's CPU seconds by whichever means the options name (nullopt: none or unreadable).
std::optional<double> BrokerCpuSeconds(const Options& o) {
  if (!o.broker_metrics.empty()) return MetricsCpuSeconds(o.broker_metrics);
  if (o.broker_pid > 0) return PidCpuSeconds(o.broker_pid);
  return std::nullopt;
}

// Latency samples (ns): every `stride`-th record, each slot written once.
struct Samples {
  explicit Samples(int64_t n)
      : stride(std::max<int64_t>(1, n / static_cast<int64_t>(kMaxSamples))) {
    values.assign(static_cast<size_t>(n / stride + 1), -1);
  }
  void Record(int64_t i, int64_t ns) {
    if (i % stride == 0 && static_cast<size_t>(i / stride) < values.size()) values[i / stride] = ns;
  }
  // Appends a sample to the next free slot (dropped when full).
  void Add(int64_t ns) {
    if (next < values.size()) values[next++] = ns;
  }
  struct Summary {
    int64_t count = 0;
    double p50 = 0, p99 = 0, p999 = 0, max = 0;  // ms
  };
  Summary Summarise() const {
    std::vector<int64_t> v;
    for (int64_t x : values) {
      if (x >= 0) v.push_back(x);
    }
    Summary s;
    s.count = static_cast<int64_t>(v.size());
    if (v.empty()) return s;
    std::sort(v.begin(), v.end());
    auto at = [&](double q) {
      return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]) /
             1e6;
    };
    s.p50 = at(0.5);
    s.p99 = at(0.99);
    s.p999 = at(0.999);
    s.max = static_cast<double>(v.back()) / 1e6;
    return s;
  }
  int64_t stride;
  std::vector<int64_t> values;
  size_t next = 0;
};

struct ProduceState {
  explicit ProduceState(int64_t n) : ack_latency(n) {}
  Samples ack_latency;
  std::atomic<int64_t> acked{0};
  std::atomic<int64_t> failed{0};
  std::atomic<int64_t> last_ack_ns{0};
  std::mutex mu;
  Status first_error;
};
ProduceState* g_produce = nullptr;  // the callbacks' state (keeps their captures small)

Status EnsureTopic(client::Admin& admin, const Options& o, const std::string& topic) {
  RILL_ASSIGN_OR_RETURN(auto md, admin.Metadata({topic}));
  if (md.topics.empty() || !md.topics[0].status.ok()) {
    client::NewTopic t{.name = topic,
                       .partitions = o.partitions,
                       .replication_factor = o.replication_factor,
                       .configs = {}};
    for (const auto& kv : o.topic_configs) {
      RILL_ASSIGN_OR_RETURN(auto p, ParseKeyValue(kv));
      t.configs[p.first] = p.second;
    }
    RILL_ASSIGN_OR_RETURN(auto out, admin.CreateTopics({t}));
    Status st = client::Admin::FirstError(out);
    if (!st.ok() && st.code() != StatusCode::kAlreadyExists) return st;
  } else if (static_cast<int32_t>(md.topics[0].partitions.size()) != o.partitions) {
    std::fprintf(stderr, "note: topic '%s' exists with %zu partitions (asked for %d)\n",
                 topic.c_str(), md.topics[0].partitions.size(), o.partitions);
  }
  // Wait until every partition has a leader.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    RILL_ASSIGN_OR_RETURN(auto m, admin.Metadata({topic}));
    bool ready = !m.topics.empty() && m.topics[0].status.ok() && !m.topics[0].partitions.empty();
    if (ready) {
      for (const auto& p : m.topics[0].partitions) ready = ready && p.leader_id >= 0;
    }
    if (ready) return Status::OK();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::Timeout("topic '" + topic + "' has no leader for every partition after 30 s");
}

Status EnsureTopics(const Options& o) {
  client::AdminConfig ac;
  ac.bootstrap = o.bootstrap;
  ac.client_id = "rill-bench";
  RILL_ASSIGN_OR_RETURN(auto admin, client::Admin::Create(ac));
  for (const auto& topic : TopicNames(o)) RILL_RETURN_IF_ERROR(EnsureTopic(*admin, o, topic));
  return Status::OK();
}

// Every partition of every topic of the run, topic by topic.
Result<std::vector<client::TopicPartition>> Partitions(const Options& o) {
  client::AdminConfig ac;
  ac.bootstrap = o.bootstrap;
  RILL_ASSIGN_OR_RETURN(auto admin, client::Admin::Create(ac));
  std::vector<client::TopicPartition> tps;
  for (const auto& topic : TopicNames(o)) {
    RILL_ASSIGN_OR_RETURN(auto md, admin->Metadata({topic}));
    if (md.topics.empty()) return Status::NotFound("topic '" + topic + "' does not exist");
    RILL_RETURN_IF_ERROR(md.topics[0].status);
    for (const auto& p : md.topics[0].partitions) tps.push_back({topic, p.partition});
  }
  return tps;
}

struct ConsumeResult {
  int64_t records = 0;
  int64_t bytes = 0;
  double seconds = 0;
  Samples::Summary e2e;
  Status status;
};

// Consumes `n` records from the current end (tail) or the beginning.
void RunConsumer(const Options& o, bool tail, std::atomic<bool>* ready,
                 std::atomic<bool>* producer_done, ConsumeResult* out) {
  client::ConsumerConfig cc;
  cc.bootstrap = o.bootstrap;
  cc.client_id = "rill-bench";
  cc.auto_offset_reset = client::OffsetReset::kEarliest;
  cc.fetch_max_wait_ms = 100;
  auto consumer = client::Consumer::Create(cc);
  auto tps = Partitions(o);
  if (!consumer.ok() || !tps.ok()) {
    out->status = consumer.ok() ? tps.status() : consumer.status();
    ready->store(true);
    return;
  }
  auto& c = **consumer;
  Status st = c.Assign(*tps);
  if (st.ok()) st = tail ? c.SeekToEnd() : c.SeekToBeginning();
  ready->store(true);
  if (!st.ok()) {
    out->status = st;
    return;
  }
  Samples e2e(o.records);
  int64_t start_ns = 0;
  auto last_record = std::chrono::steady_clock::now();
  while (out->records < o.records) {
    auto rs = c.Poll(std::chrono::milliseconds(100));
    if (!rs.ok()) {
      out->status = rs.status();
      break;
    }
    const int64_t now = NowNs();
    if (rs->empty()) {
      const bool give_up =
          (!tail || producer_done->load()) && std::chrono::steady_clock::now() - last_record >
                                                  std::chrono::milliseconds(o.idle_timeout_ms);
      if (give_up) {
        out->status = Status::Timeout("consumer idle for " + std::to_string(o.idle_timeout_ms) +
                                      " ms after " + std::to_string(out->records) + " records");
        break;
      }
      continue;
    }
    last_record = std::chrono::steady_clock::now();
    if (start_ns == 0) start_ns = now;
    for (const auto& r : *rs) {
      if (r.value && r.value->size() >= 8 && tail) {
        int64_t sent;
        std::memcpy(&sent, r.value->data(), 8);
        if (sent != 0) e2e.Add(now - sent);
      }
      out->bytes += static_cast<int64_t>(r.value ? r.value->size() : 0);
      ++out->records;
    }
  }
  out->seconds = static_cast<double>(NowNs() - start_ns) / 1e9;
  out->e2e = e2e.Summarise();
}

int Run(const Options& o) {
  auto codec = batch::ParseCompression(o.compression);
  if (!codec) return Fail(kTool, Status::InvalidArgument("unknown compression " + o.compression));
  if (o.mode != "produce" && o.mode != "consume" && o.mode != "both") {
    return Fail(kTool, Status::InvalidArgument("--mode must be produce, consume or both"));
  }
  if (o.record_size < 8) return Fail(kTool, Status::InvalidArgument("--record-size must be >= 8"));
  if (o.partitioner != "default" && o.key_size > 0) {
    return Fail(kTool, Status::InvalidArgument(
                           "--partitioner random/round-robin choose the partition of keyless "
                           "records: use it without --key-size (keys are hashed by the producer)"));
  }
  const bool produce = o.mode != "consume";
  if (produce) {
    if (Status st = EnsureTopics(o); !st.ok()) return Fail(kTool, st);
  }
  // CPU time is counted from here (topics exist) to the end of the run, for both processes.
  const int64_t cpu_start_ns = NowNs();
  const std::optional<double> bench_cpu0 = SelfCpuSeconds();
  const std::optional<double> broker_cpu0 = BrokerCpuSeconds(o);

  ConsumeResult consumed;
  std::atomic<bool> consumer_ready{false}, producer_done{false};
  std::thread consumer_thread;
  if (o.mode != "produce") {
    consumer_thread = std::thread(
        [&] { RunConsumer(o, o.mode == "both", &consumer_ready, &producer_done, &consumed); });
    while (!consumer_ready.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  ProduceState state(o.records);
  double produce_secs = 0;
  if (produce) {
    g_produce = &state;
    client::ProducerConfig pc;
    pc.bootstrap = o.bootstrap;
    pc.client_id = "rill-bench";
    pc.acks = o.acks;
    pc.compression = *codec;
    pc.linger_ms = o.linger_ms;
    pc.batch_size = o.batch_size;
    pc.max_in_flight = o.max_in_flight;
    if (o.idempotence != "default") pc.enable_idempotence = o.idempotence == "on";
    pc.buffer_memory = o.buffer_memory;
    if (o.max_request_bytes > 0) pc.max_request_bytes = o.max_request_bytes;
    auto producer = client::Producer::Create(pc);
    if (!producer.ok()) return Fail(kTool, producer.status());
    // One record per topic, reused for every record sent to it.
    const std::vector<std::string> topic_names = TopicNames(o);
    std::vector<client::ProducerRecord> recs(topic_names.size());
    // Random-ish printable payload so compression has realistic (not degenerate) input.
    std::mt19937_64 rng(42);
    std::string value(static_cast<size_t>(o.record_size), 'x');
    for (char& ch : value) ch = static_cast<char>('a' + rng() % 26);
    for (size_t t = 0; t < recs.size(); ++t) {
      recs[t].topic = topic_names[t];
      recs[t].value = value;
    }
    // --partitioner random/round-robin: every (topic index, partition) of the run.
    std::vector<std::pair<size_t, int32_t>> targets;
    if (o.partitioner != "default") {
      auto tps = Partitions(o);
      if (!tps.ok()) return Fail(kTool, tps.status());
      for (const auto& tp : *tps) {
        const size_t t = static_cast<size_t>(
            std::find(topic_names.begin(), topic_names.end(), tp.topic) - topic_names.begin());
        targets.emplace_back(t, tp.partition);
      }
    }
    std::mt19937_64 pick(7);
    const bool pick_random = o.partitioner == "random";
    std::string key(static_cast<size_t>(o.key_size), 'k');
    const int64_t start = NowNs();
    const double ns_per_record = o.rate > 0 ? 1e9 / o.rate : 0;
    const int64_t sample_stride = ns_per_record > 0 ? 1 : state.ack_latency.stride;
    const int64_t kPaceTickNs = int64_t{o.pace_tick_us} * 1000;
    int64_t last_wake_ns = 0;
    for (int64_t i = 0; i < o.records; ++i) {
      int64_t send_ns;
      if (ns_per_record > 0) {
        send_ns = start + static_cast<int64_t>(static_cast<double>(i) * ns_per_record);
        if (o.pacing == "spin") {
          int64_t now = NowNs();
          if (send_ns - now > 200'000) {
            std::this_thread::sleep_for(std::chrono::nanoseconds(send_ns - now - 100'000));
          }
          while (NowNs() < send_ns) {
          }
        } else if (NowNs() < send_ns) {
          // Sleep to the intended time, but wake at most every kPaceTickNs (a timer wake-up costs
          // ~10-20 us of CPU on this VM); records whose time has passed go out at once. The
          // wait past the intended time counts into their latency.
          const int64_t wake_ns = std::max(send_ns, last_wake_ns + kPaceTickNs);
          timespec ts{static_cast<time_t>(wake_ns / 1'000'000'000),
                      static_cast<long>(wake_ns % 1'000'000'000)};
          while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
          }
          last_wake_ns = NowNs();
        }
      } else {
        send_ns = i % sample_stride == 0 ? NowNs() : 0;
      }
      size_t t = recs.size() == 1 ? 0 : static_cast<size_t>(i) % recs.size();
      if (!targets.empty()) {
        const auto& target = pick_random ? targets[pick() % targets.size()]
                                         : targets[static_cast<size_t>(i) % targets.size()];
        t = target.first;
        recs[t].partition = target.second;
      }
      client::ProducerRecord& rec = recs[t];
      // Unsampled records carry 0: the consumer skips them for end-to-end latency.
      const int64_t stamp = i % sample_stride == 0 ? send_ns : 0;
      std::memcpy(rec.value->data(), &stamp, 8);
      if (o.key_size > 0) {
        // The record index in decimal, padded to key_size: distinct keys, no allocation.
        std::fill(key.begin(), key.end(), 'k');
        std::to_chars(key.data(), key.data() + key.size(), i);
        rec.key = key;
      }
      (*producer)->Send(rec, [i, send_ns](const Result<client::RecordMetadata>& r) {
        ProduceState* s = g_produce;
        if (!r.ok()) {
          s->failed.fetch_add(1, std::memory_order_relaxed);
          std::lock_guard lk(s->mu);
          if (s->first_error.ok()) s->first_error = r.status();
        } else {
          if (send_ns != 0) s->ack_latency.Record(i, NowNs() - send_ns);
          s->acked.fetch_add(1, std::memory_order_relaxed);
        }
      });
    }
    (*producer)->Flush();
    produce_secs = static_cast<double>(NowNs() - start) / 1e9;
    (*producer)->Close();
    producer_done = true;
  }
  if (consumer_thread.joinable()) consumer_thread.join();

  // CPU per record over the records this run moved (produced, or consumed in --mode consume).
  struct Cpu {
    bool known = false;
    double seconds = 0, cores = 0, us_per_record = 0;
  };
  const double cpu_wall_s = static_cast<double>(NowNs() - cpu_start_ns) / 1e9;
  const int64_t cpu_records = produce ? state.acked.load() : consumed.records;
  auto cpu_of = [&](std::optional<double> before, std::optional<double> after) {
    Cpu c;
    if (!before || !after) return c;
    c.known = true;
    c.seconds = *after - *before;
    c.cores = c.seconds / std::max(cpu_wall_s, 1e-9);
    c.us_per_record = c.seconds * 1e6 / static_cast<double>(std::max<int64_t>(cpu_records, 1));
    return c;
  };
  const Cpu bench_cpu = cpu_of(bench_cpu0, SelfCpuSeconds());
  const Cpu broker_cpu = cpu_of(broker_cpu0, BrokerCpuSeconds(o));

  const auto ack = state.ack_latency.Summarise();
  const double mb = 1024.0 * 1024.0;
  const double produced_bytes = static_cast<double>(state.acked.load()) * o.record_size;
  if (o.json) {
    std::printf(
        "{\"records\":%lld,\"record_size\":%d,\"partitions\":%d,\"acks\":%d,"
        "\"compression\":%s,\"rate\":%.0f",
        static_cast<long long>(o.records), o.record_size, o.partitions, o.acks,
        JsonString(o.compression).c_str(), o.rate);
    if (produce) {
      std::printf(
          ",\"produce\":{\"acked\":%lld,\"failed\":%lld,\"seconds\":%.3f,"
          "\"records_per_sec\":%.0f,\"mb_per_sec\":%.1f,\"ack_latency_ms\":{\"p50\":%.3f,"
          "\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}}",
          static_cast<long long>(state.acked.load()), static_cast<long long>(state.failed.load()),
          produce_secs, state.acked.load() / produce_secs, produced_bytes / mb / produce_secs,
          ack.p50, ack.p99, ack.p999, ack.max);
    }
    auto json_cpu = [](const Cpu& c) {
      if (!c.known) return std::string("null");
      char buf[128];
      std::snprintf(buf, sizeof buf, "{\"cpu_s\":%.3f,\"cores\":%.3f,\"us_per_record\":%.3f}",
                    c.seconds, c.cores, c.us_per_record);
      return std::string(buf);
    };
    std::printf(",\"cpu\":{\"seconds\":%.3f,\"records\":%lld,\"bench\":%s,\"broker\":%s}",
                cpu_wall_s, static_cast<long long>(cpu_records), json_cpu(bench_cpu).c_str(),
                json_cpu(broker_cpu).c_str());
    if (o.topics > 0) {
      std::printf(",\"topics\":%d,\"partitioner\":%s", o.topics, JsonString(o.partitioner).c_str());
    }
    if (o.mode != "produce") {
      std::printf(
          ",\"consume\":{\"records\":%lld,\"seconds\":%.3f,\"records_per_sec\":%.0f,"
          "\"mb_per_sec\":%.1f",
          static_cast<long long>(consumed.records), consumed.seconds,
          consumed.records / std::max(consumed.seconds, 1e-9),
          consumed.bytes / mb / std::max(consumed.seconds, 1e-9));
      if (o.mode == "both") {
        std::printf(",\"e2e_latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}",
                    consumed.e2e.p50, consumed.e2e.p99, consumed.e2e.p999, consumed.e2e.max);
      }
      std::printf("}");
    }
    std::printf("}\n");
  } else {
    if (produce) {
      std::printf(
          "produce: %lld records of %d B in %.2f s: %.0f records/s, %.1f MB/s (%lld failed)\n",
          static_cast<long long>(state.acked.load()), o.record_size, produce_secs,
          state.acked.load() / produce_secs, produced_bytes / mb / produce_secs,
          static_cast<long long>(state.failed.load()));
      std::printf("  produce-to-ack latency ms: p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
                  ack.p50, ack.p99, ack.p999, ack.max);
    }
    if (o.mode != "produce") {
      std::printf("consume: %lld records in %.2f s: %.0f records/s, %.1f MB/s\n",
                  static_cast<long long>(consumed.records), consumed.seconds,
                  consumed.records / std::max(consumed.seconds, 1e-9),
                  consumed.bytes / mb / std::max(consumed.seconds, 1e-9));
      if (o.mode == "both") {
        std::printf("  end-to-end latency ms:     p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
                    consumed.e2e.p50, consumed.e2e.p99, consumed.e2e.p999, consumed.e2e.max);
      }
    }
    std::printf(
        "cpu over %.2f s, %lld records: rill-bench %.2f s = %.2f cores, %.2f core-us/record",
        cpu_wall_s, static_cast<long long>(cpu_records), bench_cpu.seconds, bench_cpu.cores,
        bench_cpu.us_per_record);
    if (broker_cpu.known) {
      std::printf("; broker %.2f s = %.2f cores, %.2f core-us/record\n", broker_cpu.seconds,
                  broker_cpu.cores, broker_cpu.us_per_record);
    } else {
      std::printf("; broker not measured (--broker-pid or --broker-metrics)\n");
    }
  }
  if (!state.first_error.ok()) return Fail(kTool, state.first_error);
  if (!consumed.status.ok()) return Fail(kTool, consumed.status);
  return 0;
}

int Main(int argc, char** argv) {
  CLI::App app{"rill-bench: produce/consume load generator with throughput and latency"};
  Options o;
  app.add_option("--bootstrap,-b", o.bootstrap, "Broker host:port")->capture_default_str();
  app.add_option("--topic,-t", o.topic, "Topic (created if missing)")->capture_default_str();
  app.add_option("--mode", o.mode, "produce, consume or both")->capture_default_str();
  app.add_option("--partitions,-p", o.partitions, "Partitions when creating")
      ->capture_default_str();
  app.add_option("--replication-factor", o.replication_factor, "0 = broker default");
  app.add_option("--records,-n", o.records, "Records to produce/consume")->capture_default_str();
  app.add_option("--record-size,-s", o.record_size, "Value bytes (>= 8)")->capture_default_str();
  app.add_option("--key-size", o.key_size, "Key bytes (0 = null keys, sticky partitioner)");
  app.add_option("--acks", o.acks, "0, 1 or -1 (all)")->capture_default_str();
  app.add_option("--compression", o.compression, "none, gzip, snappy, lz4, zstd")
      ->capture_default_str();
  app.add_option("--linger-ms", o.linger_ms,
                 "Producer linger, ms; fractions are microseconds, 0.5 is 500 us (default 5 ms; 0 "
                 "with --rate, where a paced load is latency-bound and linger adds to every ack)");
  app.add_option("--batch-size", o.batch_size, "Producer batch size, bytes")->capture_default_str();
  app.add_option("--max-in-flight", o.max_in_flight, "Requests in flight per broker")
      ->capture_default_str();
  app.add_option("--idempotence", o.idempotence,
                 "on, off, or default (on when acks is -1 and max-in-flight <= 5)")
      ->check(CLI::IsMember({"on", "off", "default"}))
      ->capture_default_str();
  app.add_option("--buffer-memory", o.buffer_memory, "Producer buffer bytes")
      ->capture_default_str();
  app.add_option("--max-request-bytes", o.max_request_bytes,
                 "Largest produce request the producer builds, bytes (0 = the client's default, "
                 "4 MiB - 64 KiB; the broker accepts up to its limits.max_request_bytes)")
      ->check(CLI::Range(0, 1 << 30));
  app.add_option("--rate", o.rate, "Target records/s, open loop (0 = as fast as possible)");
  app.add_option("--pacing", o.pacing, "How --rate waits: sleep (default) or spin")
      ->check(CLI::IsMember({"sleep", "spin"}));
  app.add_option("--pace-tick-us", o.pace_tick_us,
                 "With --pacing sleep: wake at most once per this many us and send what is due "
                 "(latency counts from each record's intended time)")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  app.add_option("--idle-timeout-ms", o.idle_timeout_ms, "Consumer gives up after this idle time")
      ->capture_default_str();
  app.add_option("--topic-config", o.topic_configs,
                 "key=value config of the topic when creating it (repeatable)");
  app.add_option("--topics", o.topics,
                 "Spread over this many topics <topic>-0 .. <topic>-<N-1>, each with --partitions "
                 "partitions (0 = the one topic --topic)")
      ->check(CLI::Range(0, 100'000));
  app.add_option("--partitioner", o.partitioner,
                 "default (keys hashed, keyless records sticky), random or round-robin over every "
                 "partition of every topic (keyless records only)")
      ->check(CLI::IsMember({"default", "random", "round-robin"}))
      ->capture_default_str();
  app.add_option("--broker-pid", o.broker_pid,
                 "Report this process's CPU time over the run (/proc/<pid>/stat)");
  app.add_option("--broker-metrics", o.broker_metrics,
                 "Report the broker's CPU time from its /metrics URL (process_cpu_seconds_total), "
                 "e.g. http://127.0.0.1:9644/metrics");
  app.add_flag("--json", o.json, "JSON output");
  CLI11_PARSE(app, argc, argv);
  if (o.linger_ms < 0) o.linger_ms = o.rate > 0 ? 0 : 5;
  // Batch buffers are hundreds of KiB: keep them on the heap and keep freed memory mapped, so
  // each new batch does not pay mmap + page faults + zeroing (measured: ~15% of the producer).
  // Precise paced sleeps (the default 50 us timer slack would add to every paced record).
  prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  return Run(o);
}

}  // namespace
}  // namespace rill::tools

int main(int argc, char** argv) { return rill::tools::Main(argc, argv); }
