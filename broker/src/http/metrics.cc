#include "http/metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "partition/partition_manager.h"
#include "replica/replica_fetcher.h"

namespace rill::broker {

const char* ApiName(Api api) {
  static const char* kNames[] = {"produce",           "produce_stream",   "fetch",
                                 "subscribe",         "list_offsets",     "create_topics",
                                 "delete_topics",     "list_topics",      "describe_topics",
                                 "create_partitions", "describe_configs", "alter_configs",
                                 "describe_cluster",  "metadata",         "elect_leaders",
                                 "init_producer_id",  "group_heartbeat",  "commit_offsets",
                                 "fetch_offsets",     "list_groups",      "describe_group",
                                 "reset_offsets",     "delete_group"};
  static_assert(std::size(kNames) == static_cast<size_t>(Api::kCount), "a name for every Api");
  return kNames[static_cast<int>(api)];
}

double Histogram::BucketBound(int i) { return std::ldexp(50e-6, i); }

void Histogram::Observe(double seconds) {
  // Bound i is 50 us * 2^i; doubling is exact, so these are BucketBound's values without a
  // libm call per bucket (Observe runs for every request and flush round).
  int i = 0;
  double bound = 50e-6;
  while (i < kBuckets && seconds > bound) {
    ++i;
    bound *= 2;
  }
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

void Histogram::Render(std::string* out, const std::string& name, const std::string& labels) const {
  char buf[256];
  uint64_t cumulative = 0;
  std::string sep = labels.empty() ? "" : ",";
  for (int i = 0; i <= kBuckets; ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    if (i < kBuckets) {
      snprintf(buf, sizeof buf, "%s_bucket{%s%sle=\"%g\"} %lu\n", name.c_str(), labels.c_str(),
               sep.c_str(), BucketBound(i), static_cast<unsigned long>(cumulative));
    } else {
      snprintf(buf, sizeof buf, "%s_bucket{%s%sle=\"+Inf\"} %lu\n", name.c_str(), labels.c_str(),
               sep.c_str(), static_cast<unsigned long>(cumulative));
    }
    *out += buf;
  }
  snprintf(buf, sizeof buf, "%s_sum{%s} %.6f\n%s_count{%s} %lu\n", name.c_str(), labels.c_str(),
           sum_us_.load(std::memory_order_relaxed) / 1e6, name.c_str(), labels.c_str(),
           static_cast<unsigned long>(count_.load(std::memory_order_relaxed)));
  *out += buf;
}

namespace {

// Prometheus's standard process metrics (names as its client libraries export them): CPU time of
// every thread of this process, resident memory and thread count.
void RenderProcess(std::string* out) {
  char buf[512];
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const double cpu_s = static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                       static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  long rss_pages = 0;
  long threads = 0;
  if (FILE* f = std::fopen("/proc/self/statm", "r")) {
    long size_pages = 0;
    if (std::fscanf(f, "%ld %ld", &size_pages, &rss_pages) != 2) rss_pages = 0;
    std::fclose(f);
  }
  if (FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      if (std::sscanf(line, "Threads: %ld", &threads) == 1) break;
    }
    std::fclose(f);
  }
  snprintf(buf, sizeof buf,
           "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
           "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.6f\n"
           "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
           "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %ld\n"
           "# HELP process_threads Number of OS threads in the process.\n"
           "# TYPE process_threads gauge\nprocess_threads %ld\n",
           cpu_s, rss_pages * sysconf(_SC_PAGESIZE), threads);
  *out += buf;
}

}  // namespace

void Metrics::RecordRequest(Api api, std::chrono::steady_clock::time_point start, bool error) {
  auto& a = apis_[static_cast<int>(api)];
  a.requests.fetch_add(1, std::memory_order_relaxed);
  if (error) a.errors.fetch_add(1, std::memory_order_relaxed);
  a.latency.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

void Metrics::RecordFetch(std::chrono::steady_clock::time_point arrived,
                          std::chrono::steady_clock::time_point answering) {
  const auto now = std::chrono::steady_clock::now();
  fetch_wait_.Observe(std::chrono::duration<double>(answering - arrived).count());
  fetch_serve_.Observe(std::chrono::duration<double>(now - answering).count());
}

void Metrics::RecordDurable(std::chrono::steady_clock::time_point appended) {
  durable_latency_.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - appended).count());
}

void Metrics::RecordFlush(std::chrono::nanoseconds elapsed, uint64_t bytes) {
  flush_latency_.Observe(std::chrono::duration<double>(elapsed).count());
  flush_bytes_.fetch_add(bytes, std::memory_order_relaxed);
}

void Metrics::OnIsrChange(bool shrink) {
  (shrink ? isr_shrinks_ : isr_expands_).fetch_add(1, std::memory_order_relaxed);
}

namespace {

// Client traffic per topic, summed over this node's partitions of it (Partition::traffic()).
void RenderTopicTraffic(std::string* out,
                        const std::vector<std::shared_ptr<Partition>>& partitions) {
  std::map<std::string, Partition::Traffic> by_topic;
  for (const auto& p : partitions) {
    const Partition::Traffic t = p->traffic();
    Partition::Traffic& sum = by_topic[p->topic()];
    sum.bytes_in += t.bytes_in;
    sum.records_in += t.records_in;
    sum.bytes_out += t.bytes_out;
    sum.records_out += t.records_out;
  }
  struct Family {
    const char* name;
    const char* help;
    uint64_t Partition::Traffic::*field;
  };
  static constexpr Family kFamilies[] = {
      {"rill_topic_bytes_in_total", "Record batch bytes producers appended to the topic here.",
       &Partition::Traffic::bytes_in},
      {"rill_topic_records_in_total", "Records producers appended to the topic here.",
       &Partition::Traffic::records_in},
      {"rill_topic_bytes_out_total",
       "Record batch bytes fetches and pushes served from the topic here.",
       &Partition::Traffic::bytes_out},
      {"rill_topic_records_out_total",
       "Records (offsets) fetches and pushes served from the topic here.",
       &Partition::Traffic::records_out},
  };
  char buf[512];
  for (const Family& f : kFamilies) {
    snprintf(buf, sizeof buf, "# HELP %s %s\n# TYPE %s counter\n", f.name, f.help, f.name);
    *out += buf;
    for (const auto& [topic, t] : by_topic) {
      snprintf(buf, sizeof buf, "%s{topic=\"%s\"} %lu\n", f.name, topic.c_str(),
               static_cast<unsigned long>(t.*f.field));
      *out += buf;
    }
  }
}

// The replication view of the partitions this node hosts, as a scrape renders it.
void RenderReplication(std::string* out,
                       const std::vector<std::shared_ptr<Partition>>& partitions) {
  char buf[512];
  struct Led {
    Partition* p;
    bool under_replicated;
  };
  std::vector<Led> led;
  for (const auto& p : partitions) {
    const ReplicaState s = p->replica_state();
    if (s.role != PartitionRole::kLeader) continue;
    led.push_back({p.get(), s.isr.size() < s.replicas.size()});
  }
  size_t under = 0;
  for (const Led& l : led) under += l.under_replicated ? 1 : 0;
  snprintf(buf, sizeof buf,
           "# HELP rill_leader_partitions Partitions this node leads.\n"
           "# TYPE rill_leader_partitions gauge\nrill_leader_partitions %zu\n"
           "# HELP rill_under_replicated_partitions Partitions this node leads whose ISR is "
           "smaller than their replica set.\n"
           "# TYPE rill_under_replicated_partitions gauge\nrill_under_replicated_partitions %zu\n",
           led.size(), under);
  *out += buf;
  *out +=
      "# HELP rill_partition_under_replicated 1 when this node leads the partition and its ISR "
      "is smaller than its replica set, else 0 (leaders only).\n"
      "# TYPE rill_partition_under_replicated gauge\n";
  for (const Led& l : led) {
    snprintf(buf, sizeof buf, "rill_partition_under_replicated{topic=\"%s\",partition=\"%d\"} %d\n",
             l.p->topic().c_str(), l.p->partition(), l.under_replicated ? 1 : 0);
    *out += buf;
  }
  *out +=
      "# HELP rill_follower_lag_offsets Leader's log end minus the follower's durable end as its "
      "last fetch reported it (from the log start when it has not fetched from this leader "
      "yet; leaders only).\n"
      "# TYPE rill_follower_lag_offsets gauge\n";
  for (const Led& l : led) {
    const auto views = l.p->FollowerViews();
    // Read after the views: a durable end a follower reported is never past this log end.
    const int64_t log_end = l.p->log().log_end_offset().value();
    const int64_t log_start = l.p->log().log_start_offset().value();
    for (const auto& v : views) {
      const int64_t from = v.durable_end.value() >= 0 ? v.durable_end.value() : log_start;
      snprintf(buf, sizeof buf,
               "rill_follower_lag_offsets{topic=\"%s\",partition=\"%d\",follower=\"%d\"} %ld\n",
               l.p->topic().c_str(), l.p->partition(), static_cast<int>(v.id.value()),
               static_cast<long>(std::max<int64_t>(0, log_end - from)));
      *out += buf;
    }
  }
}

}  // namespace

std::string Metrics::Render(const PartitionManager* partitions) const {
  std::string out;
  out.reserve(16384);
  char buf[512];
  out +=
      "# HELP rill_requests_total Requests handled, per API.\n# TYPE rill_requests_total counter\n";
  for (int i = 0; i < static_cast<int>(Api::kCount); ++i) {
    snprintf(buf, sizeof buf, "rill_requests_total{api=\"%s\"} %lu\n", ApiName(Api(i)),
             static_cast<unsigned long>(apis_[i].requests.load(std::memory_order_relaxed)));
    out += buf;
  }
  out +=
      "# HELP rill_request_errors_total Requests that failed as a whole, per API.\n"
      "# TYPE rill_request_errors_total counter\n";
  for (int i = 0; i < static_cast<int>(Api::kCount); ++i) {
    snprintf(buf, sizeof buf, "rill_request_errors_total{api=\"%s\"} %lu\n", ApiName(Api(i)),
             static_cast<unsigned long>(apis_[i].errors.load(std::memory_order_relaxed)));
    out += buf;
  }
  out +=
      "# HELP rill_request_latency_seconds Request latency, per API.\n"
      "# TYPE rill_request_latency_seconds histogram\n";
  for (int i = 0; i < static_cast<int>(Api::kCount); ++i) {
    apis_[i].latency.Render(&out, "rill_request_latency_seconds",
                            std::string("api=\"") + ApiName(Api(i)) + "\"");
  }
  out +=
      "# HELP rill_produce_durable_latency_seconds From append to durable (flush policy).\n"
      "# TYPE rill_produce_durable_latency_seconds histogram\n";
  durable_latency_.Render(&out, "rill_produce_durable_latency_seconds", "");
  out +=
      "# HELP rill_fetch_wait_seconds Fetch: from arrival to the attempt that answered it (waiting "
      "for data in a long poll, up to max_wait_ms).\n"
      "# TYPE rill_fetch_wait_seconds histogram\n";
  fetch_wait_.Render(&out, "rill_fetch_wait_seconds", "");
  out +=
      "# HELP rill_fetch_serve_seconds Fetch: the answering attempt (reading the logs, building "
      "the response).\n"
      "# TYPE rill_fetch_serve_seconds histogram\n";
  fetch_serve_.Render(&out, "rill_fetch_serve_seconds", "");
  out +=
      "# HELP rill_log_flush_latency_seconds One fsync round of a partition log.\n"
      "# TYPE rill_log_flush_latency_seconds histogram\n";
  flush_latency_.Render(&out, "rill_log_flush_latency_seconds", "");
  snprintf(buf, sizeof buf,
           "# HELP rill_log_flush_bytes_total Bytes made durable by log fsync rounds.\n"
           "# TYPE rill_log_flush_bytes_total counter\nrill_log_flush_bytes_total %lu\n",
           static_cast<unsigned long>(flush_bytes_.load(std::memory_order_relaxed)));
  out += buf;
  if (shared_syncs_) {
    const auto [syncs, rounds] = shared_syncs_();
    snprintf(buf, sizeof buf,
             "# HELP rill_log_shared_syncs_total Filesystem-wide syncs (syncfs) that made many "
             "partition logs' appends durable at once.\n"
             "# TYPE rill_log_shared_syncs_total counter\nrill_log_shared_syncs_total %lu\n"
             "# HELP rill_log_shared_sync_rounds_total Log flush rounds made durable by a shared "
             "sync.\n"
             "# TYPE rill_log_shared_sync_rounds_total counter\n"
             "rill_log_shared_sync_rounds_total %lu\n",
             static_cast<unsigned long>(syncs), static_cast<unsigned long>(rounds));
    out += buf;
  }
  snprintf(buf, sizeof buf,
           "# HELP rill_produce_duplicate_batches_total Idempotent producer retries of batches "
           "already in the log, answered with their original offsets and not appended again.\n"
           "# TYPE rill_produce_duplicate_batches_total counter\n"
           "rill_produce_duplicate_batches_total %lu\n",
           static_cast<unsigned long>(duplicate_batches_.load(std::memory_order_relaxed)));
  out += buf;
  snprintf(buf, sizeof buf,
           "# HELP rill_bytes_in_total Record batch bytes accepted by produce requests.\n"
           "# TYPE rill_bytes_in_total counter\nrill_bytes_in_total %lu\n"
           "# HELP rill_bytes_out_total Record batch bytes returned to fetches and pushes.\n"
           "# TYPE rill_bytes_out_total counter\nrill_bytes_out_total %lu\n",
           static_cast<unsigned long>(bytes_in_.load(std::memory_order_relaxed)),
           static_cast<unsigned long>(bytes_out_.load(std::memory_order_relaxed)));
  out += buf;
  if (produce_gate_) {
    const ProduceGateGauges g = produce_gate_();
    char gate_buf[1024];
    snprintf(gate_buf, sizeof gate_buf,
             "# HELP rill_inflight_produce_bytes Produce request bytes received and not yet "
             "answered (bounded by limits.max_inflight_produce_bytes).\n"
             "# TYPE rill_inflight_produce_bytes gauge\nrill_inflight_produce_bytes %ld\n"
             "# HELP rill_produce_reserved_bytes Bytes of limits.max_inflight_produce_bytes "
             "reserved by ProduceStreams about to receive their next request (not in "
             "rill_inflight_produce_bytes).\n"
             "# TYPE rill_produce_reserved_bytes gauge\nrill_produce_reserved_bytes %ld\n"
             "# HELP rill_produce_streams_waiting ProduceStreams waiting for room under "
             "limits.max_inflight_produce_bytes before they read their next request (their "
             "clients are held by HTTP/2 flow control meanwhile).\n"
             "# TYPE rill_produce_streams_waiting gauge\nrill_produce_streams_waiting %lu\n"
             "# HELP rill_produce_stream_waits_total Reads of ProduceStream requests that waited "
             "for room under limits.max_inflight_produce_bytes.\n"
             "# TYPE rill_produce_stream_waits_total counter\n"
             "rill_produce_stream_waits_total %lu\n",
             static_cast<long>(g.accepted_bytes), static_cast<long>(g.reserved_bytes),
             static_cast<unsigned long>(g.waiting), static_cast<unsigned long>(g.waits));
    out += gate_buf;
  }
  snprintf(buf, sizeof buf,
           "# HELP rill_isr_shrinks_total Committed ISR changes that removed a member, on "
           "partitions this node leads.\n"
           "# TYPE rill_isr_shrinks_total counter\nrill_isr_shrinks_total %lu\n"
           "# HELP rill_isr_expands_total Committed ISR changes that added a member, on "
           "partitions this node leads.\n"
           "# TYPE rill_isr_expands_total counter\nrill_isr_expands_total %lu\n",
           static_cast<unsigned long>(isr_shrinks_.load(std::memory_order_relaxed)),
           static_cast<unsigned long>(isr_expands_.load(std::memory_order_relaxed)));
  out += buf;
  if (const auto* f = fetchers_.load(std::memory_order_acquire)) {
    snprintf(buf, sizeof buf,
             "# HELP rill_replica_fetchers Fetcher threads replicating from another broker "
             "(at most one per leader this node follows).\n"
             "# TYPE rill_replica_fetchers gauge\nrill_replica_fetchers %zu\n",
             f->fetcher_count());
    out += buf;
  }
  RenderProcess(&out);
  if (partitions != nullptr) {
    auto all = partitions->All();
    RenderReplication(&out, all);
    RenderTopicTraffic(&out, all);
    out +=
        "# HELP rill_partition_size_bytes Bytes of the partition's log on this node.\n"
        "# TYPE rill_partition_size_bytes gauge\n";
    for (const auto& p : all) {
      snprintf(buf, sizeof buf, "rill_partition_size_bytes{topic=\"%s\",partition=\"%d\"} %lu\n",
               p->topic().c_str(), p->partition(),
               static_cast<unsigned long>(p->log().size_bytes()));
      out += buf;
    }
    out +=
        "# HELP rill_partition_log_start_offset First offset of the partition's log on this "
        "node.\n# TYPE rill_partition_log_start_offset gauge\n";
    for (const auto& p : all) {
      snprintf(buf, sizeof buf,
               "rill_partition_log_start_offset{topic=\"%s\",partition=\"%d\"} %ld\n",
               p->topic().c_str(), p->partition(),
               static_cast<long>(p->log().log_start_offset().value()));
      out += buf;
    }
    out +=
        "# HELP rill_partition_log_end_offset Offset the next record appended here gets.\n"
        "# TYPE rill_partition_log_end_offset gauge\n";
    for (const auto& p : all) {
      snprintf(
          buf, sizeof buf, "rill_partition_log_end_offset{topic=\"%s\",partition=\"%d\"} %ld\n",
          p->topic().c_str(), p->partition(), static_cast<long>(p->log().log_end_offset().value()));
      out += buf;
    }
    out +=
        "# HELP rill_partition_high_watermark Offsets below it are committed and readable by "
        "consumers.\n# TYPE rill_partition_high_watermark gauge\n";
    for (const auto& p : all) {
      snprintf(buf, sizeof buf,
               "rill_partition_high_watermark{topic=\"%s\",partition=\"%d\"} %ld\n",
               p->topic().c_str(), p->partition(), static_cast<long>(p->high_watermark().value()));
      out += buf;
    }
  }
  return out;
}

}  // namespace rill::broker
