#pragma once

// The broker's configuration: one TOML file plus command-line overrides (docs/ARCHITECTURE.md §10).
// Every option has a default that works for a single node; config/rill.toml and
// broker/README.md document each one. Option names are the TOML section and key joined by a dot
// (`[node] id = 1` is `--node.id 1` on the command line); the command line wins over the file.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "rill/proto/status.h"

namespace rill::broker {

struct HostPort {
  std::string host;
  int32_t port = 0;  // 0 = pick a free port at start
  std::string ToString() const { return host + ":" + std::to_string(port); }
};

// "host:port"; the host may be empty ("":9092 means all interfaces). InvalidArgument otherwise.
Result<HostPort> ParseHostPort(const std::string& s);

struct Voter {
  int32_t node_id = 0;
  HostPort address;  // internal listener of the voter
};

// "1@127.0.0.1:9093,2@127.0.0.2:9093". InvalidArgument naming the bad entry otherwise.
Result<std::vector<Voter>> ParseVoters(const std::string& s);

struct BrokerConfig {
  // [node]
  int32_t node_id = 1;
  std::vector<std::string> roles = {"broker", "controller"};
  std::string rack;
  // [data]
  std::string data_dir = "./data";
  // [listeners]
  HostPort client_listener{"0.0.0.0", 9092};
  HostPort internal_listener{"127.0.0.1", 9093};
  HostPort http_listener{"0.0.0.0", 9644};
  std::string advertised_host = "127.0.0.1";  // host given to clients in metadata
  // What other processes are told to dial for the client and the internal listener, when that
  // differs from what the broker binds (a mapped port: Docker bridge, NAT). An empty host means
  // advertised_host; port 0 means the bound port.
  HostPort advertised_client{"", 0};
  HostPort advertised_internal{"", 0};
  std::string ports_file;  // when set, the bound ports are written there once listening
  // [controller]
  std::string voters = "1@127.0.0.1:9093";  // empty = {self at the internal listener}
  std::string cluster_id;                   // used when bootstrapping a new cluster
  int32_t tick_ms = 50;
  int32_t election_ticks = 20;
  int32_t heartbeat_ticks = 2;
  // A broker not heard from for this long is fenced and its partitions get new leaders from
  // their ISR (Kafka's broker.session.timeout.ms, 9 s there: shorter here so a dead leader's
  // partitions move within about two seconds). Heartbeats go every third of it.
  int32_t broker_session_timeout_ms = 1500;
  // On SIGTERM a broker of a multi-node cluster first asks the controller to move the leadership
  // of its partitions to other ISR members and waits at most this long for it (Kafka's
  // controlled.shutdown.enable); 0 = stop at once.
  int32_t controlled_shutdown_timeout_ms = 5000;
  // Leadership goes back to each partition's first replica once it is live and in the ISR,
  // checked every leader_rebalance_interval_ms (Kafka's auto.leader.rebalance.enable).
  bool auto_leader_rebalance = true;
  int32_t leader_rebalance_interval_ms = 30000;
  // [replication] (docs/ARCHITECTURE.md §7a)
  // A follower not caught up (durably) for this long leaves the ISR (Kafka's
  // replica.lag.time.max.ms).
  int64_t replica_lag_time_max_ms = 10000;
  // How long a leader holds a follower's fetch that has nothing new (replica.fetch.wait.max.ms).
  int32_t replica_fetch_max_wait_ms = 500;
  uint64_t snapshot_every_records = 10000;
  // [flush]
  std::string flush_policy = "group";  // group | interval | none
  int32_t flush_interval_ms = 100;     // for policy interval
  // [storage]
  // Zero-filled ahead of the active segment's end; off by default: the idle zero-fill's 16 MiB
  // fsync delays the next group fsync (p99 ack 50-114 ms, bench/RESULTS.md broker perf pass).
  int64_t preallocate_bytes = 0;
  // Page cache kept per partition behind the synced end; older synced bytes are dropped from the
  // cache after each fsync (storage::LogConfig::cache_behind_bytes). -1 = the kernel decides.
  int64_t cache_behind_bytes = 256LL << 20;
  // First standby segment of a partition with small fsync groups (storage::LogConfig::
  // standby_min_bytes): zeros written between groups, rolled into early, so group fsyncs
  // overwrite written space (durable latency of a paced 5 KB appender: p50 337 -> 234 us, p99
  // 847 -> 592 us, bench/RESULTS.md storage, session 3). 0 = off.
  int64_t standby_segment_bytes = 8LL << 20;
  // The zero-filled standby bytes all partitions together may hold (storage::StandbyBudget): a
  // thousand partitions with small groups would otherwise zero-fill 8 GB. 0 = no bound.
  int64_t standby_budget_bytes = 512LL << 20;
  // Segment and pool files that retention or truncation drop are shrunk in steps of this many
  // bytes, each made durable, at most remove_bytes_per_sec, before the unlink
  // (storage/file_remover.h): on ext4 with `discard` a plain unlink stalls every fsync on the disk
  // for ~90 ms per GiB (bench/scripts/unlink_probe.py). 0 = unlink at once.
  int64_t remove_step_bytes = 8LL << 20;
  int64_t remove_bytes_per_sec = 256LL << 20;
  // Threads of the flush scheduler that every partition log shares (storage/flush_scheduler.h):
  // up to this many fsyncs of different partitions run at once, and the broker's thread count
  // does not grow with the number of partitions.
  int32_t flush_threads = 4;
  // When at least this many partition logs wait to be synced at once, one syncfs of the data
  // directory's filesystem makes them all durable instead of an fdatasync each
  // (storage/flush_scheduler.h; docs/STORAGE.md, Flushing: shared syncs). 0 = off.
  int32_t shared_sync_min_logs = 8;
  // Produce is refused (RESOURCE_EXHAUSTED, retriable) while the filesystem holding data_dir has
  // less than this many bytes available, and accepted again once space is freed
  // (broker/src/server/disk_space.h): a log that meets a full disk fails until a restart, and a
  // broker cannot start on a full disk. 0 = off.
  int64_t min_free_bytes = 1LL << 30;
  // [topic] defaults for new topics
  int32_t default_partitions = 1;
  // 0: min(3, live brokers) at creation (1 on a single node, 3 in a cluster of three or more).
  int32_t default_replication_factor = 0;
  int32_t max_partitions_per_topic = 10000;
  // Broker-wide defaults of topic configs ("key=value"), applied below each topic's overrides.
  std::map<std::string, std::string> topic_defaults;
  // [limits]
  int64_t max_inflight_produce_bytes = 256ll << 20;            // whole broker
  int64_t max_inflight_produce_bytes_per_stream = 64ll << 20;  // one ProduceStream
  int32_t fetch_max_bytes = 64 << 20;           // one Fetch response / Subscribe message
  int32_t fetch_partition_max_bytes = 8 << 20;  // default per partition when 0 is asked
  int32_t fetch_max_wait_ms = 30000;            // cap on a long poll's max_wait_ms
  int32_t max_request_bytes = 128 << 20;        // gRPC max receive message size
  // Memory gRPC's transport may hold for the client listener's connections (received request
  // bytes not yet handed to a service, read buffers): a grpc::ResourceQuota on the listener.
  // gRPC 1.51 enforces it by resetting streams (RST_STREAM ENHANCE_YOUR_CALM, RESOURCE_EXHAUSTED
  // at the client) and closing connections (GOAWAY) once it is exceeded: a backstop against many
  // connections, not flow control (docs/ARCHITECTURE.md §12). 0 = no quota.
  int64_t max_request_memory_bytes = 256ll << 20;
  // HTTP/2 streams one client connection may have open at once (GRPC_ARG_MAX_CONCURRENT_STREAMS,
  // announced in SETTINGS): a client's further calls wait in the client. gRPC reads a unary
  // request whole before any handler runs, so this is what slows many concurrent unary producers
  // on one connection. 0 = gRPC's default (unbounded).
  int32_t max_concurrent_streams_per_connection = 16;
  int32_t produce_timeout_ms = 30000;  // acks wait cap (and default) before REQUEST_TIMED_OUT
  int32_t io_threads = 2;              // long-poll and push threads
  // [groups] consumer groups (docs/ARCHITECTURE.md §8)
  int32_t groups_offsets_partitions = 8;          // partitions of __consumer_offsets at creation
  int32_t groups_offsets_replication_factor = 0;  // 0: topic.replication_factor
  int32_t groups_max_groups = 10000;              // groups coordinated by one node
  int32_t groups_max_members = 1000;              // members of one group
  int32_t groups_session_timeout_ms = 45000;      // default when a member says 0
  int32_t groups_min_session_timeout_ms = 1000;
  int32_t groups_max_session_timeout_ms = 300000;
  int32_t groups_heartbeat_interval_ms = 3000;
  // [log]
  std::string log_level = "info";  // trace | debug | info | warn | error | off
  // How often retention.ms and retention.bytes are applied to every local partition (Kafka's
  // log.retention.check.interval.ms, same default).
  int64_t retention_check_interval_ms = 300000;

  bool has_role(const std::string& r) const;
};

// Parses the configuration: the TOML file (--config, or the environment variable RILL_CONFIG),
// then the environment, then argv; a later source wins per option (file < environment <
// command line). Every option `section.key` is read from the variable `RILL_SECTION_KEY` (dots
// and dashes become underscores, upper case: RILL_LISTENERS_CLIENT, RILL_NODE_ID); a RILL_*
// variable that names no option is reported on stderr as a warning. Returns the config, or
// InvalidArgument with a message naming the bad option (and the variable, when the value came
// from one). `--help` yields NotFound carrying the help text as its message (the caller prints
// it and exits 0).
Result<BrokerConfig> ParseBrokerConfig(int argc, const char* const* argv);

// The effective topic defaults the broker applies below topic overrides: topic_defaults plus
// flush.policy / flush.interval.ms from [flush].
std::map<std::string, std::string> BrokerTopicDefaults(const BrokerConfig& config);

}  // namespace rill::broker
