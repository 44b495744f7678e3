#pragma once

// Options of the producer, consumer and admin client. Every field has a default that works
// against a single local broker; names follow Kafka's (linger.ms -> linger_ms).

#include <cstdint>
#include <optional>
#include <string>

#include "rill/proto/compression.h"

namespace rill::client {

// Shared connection settings.
struct ConnectionConfig {
  // Brokers to start from: "host:port" or several as "host:port,host:port" (whitespace around an
  // entry is ignored; IPv6 hosts in brackets, "[::1]:9092"). Create() refuses a bad entry with
  // InvalidArgument naming it. Requests any broker can answer (metadata, admin, the group
  // coordinator lookup) go to a live one among these and the brokers metadata names, moving on
  // from one that cannot be reached, so any single broker may be down.
  std::string bootstrap = "localhost:9092";
  std::string client_id = "rill-client";
  int32_t request_timeout_ms = 30000;  // deadline of one RPC (long polls add their wait)
};

struct ProducerConfig : ConnectionConfig {
  // 0: do not wait for the broker; 1: the leader has it (per its flush policy); -1 (all, the
  // default, as in Kafka since 3.0): every in-sync replica has it. On a single broker the ISR is
  // that broker, so -1 costs nothing over 1 there.
  int32_t acks = -1;
  batch::Compression compression = batch::Compression::kNone;
  // A partition's batch is sent when it reaches batch_size bytes (uncompressed estimate), or
  // linger_ms after its first record, or at Flush()/Close(). Records bigger than batch_size get a
  // batch of their own. linger_ms may be a fraction (0.5 is 500 us; microsecond resolution, as
  // librdkafka's linger.ms): on a paced load a linger below a millisecond still gathers records
  // into fewer requests, without adding a whole millisecond to every ack (client/README.md).
  int32_t batch_size = 256 * 1024;
  double linger_ms = 5;
  // Bound on one ProduceRequest (several partitions' batches go in one request).
  int32_t max_request_bytes = 4 * 1024 * 1024 - 64 * 1024;
  // Requests sent to one broker and not yet answered.
  int32_t max_in_flight = 5;
  // Memory of the batches buffered and in flight, counted by their buffers' capacity (pooled
  // buffers kept for reuse included), as Kafka's buffer.memory. When it is spent, a Send() that
  // needs a new or larger batch buffer blocks up to max_block_ms and then fails with
  // ResourceExhausted (client/README.md, the producer).
  int64_t buffer_memory = 64ll * 1024 * 1024;
  int32_t max_block_ms = 60000;
  // Retriable failures (NOT_LEADER, UNKNOWN_TOPIC/UNKNOWN_PARTITION from a broker that lags,
  // BROKER_NOT_AVAILABLE, REQUEST_TIMED_OUT, RESOURCE_EXHAUSTED, NOT_ENOUGH_REPLICAS, a leader
  // that cannot be reached, ...) are retried, after refreshing metadata where the leader may have
  // moved, up to `retries` times, waiting retry_backoff_ms doubled per attempt up to
  // retry_backoff_max_ms, while the batch is younger than delivery_timeout_ms. With
  // max_in_flight > 1 and idempotence off, a retried batch can land after a later batch of the
  // same partition (as in Kafka without idempotence); set max_in_flight = 1 for strict order.
  int32_t retries = 2147483647;
  int32_t retry_backoff_ms = 100;
  int32_t retry_backoff_max_ms = 1000;
  int32_t delivery_timeout_ms = 120000;
  // Metadata is refreshed after errors and at least this often.
  int32_t metadata_max_age_ms = 300000;
  // Idempotence (docs/IDEMPOTENCE.md): the producer gets a producer id from the cluster and
  // numbers each partition's batches, so a retry (after a failover, a timeout, a broken stream)
  // is never written twice and a partition's batches land in the order they were sent, with up
  // to 128 batches per partition in flight (whatever max_in_flight allows per broker). Unset (the
  // default) means on when acks is -1, as in Kafka since 3.0; true with acks 0 or 1 is a
  // configuration error. Once a batch has failed (delivery_timeout_ms, retries exhausted), the
  // producer starts a new epoch, and batches it still holds that were sent before may then be
  // written again.
  std::optional<bool> enable_idempotence;
};

enum class OffsetReset { kEarliest, kLatest, kError };

struct ConsumerConfig : ConnectionConfig {
  // Where to start when a partition has no position (with a group: no committed offset), or its
  // position is out of range.
  OffsetReset auto_offset_reset = OffsetReset::kLatest;
  int32_t fetch_max_wait_ms = 500;
  int32_t fetch_min_bytes = 1;
  int32_t fetch_max_bytes = 64 * 1024 * 1024;
  int32_t max_partition_fetch_bytes = 8 * 1024 * 1024;
  // The background fetcher stops fetching while this many fetched bytes wait for Poll().
  int64_t max_prefetch_bytes = 128ll * 1024 * 1024;
  // Poll() returns about this many records at most (whole batches; it may exceed by one batch).
  int32_t max_poll_records = 10000;
  bool check_crcs = true;

  // Consumer group (Subscribe()). Empty group_id: no group; Assign() only.
  std::string group_id;
  // Static membership (group.instance.id): a member that restarts with the same id within the
  // session timeout gets its partitions back without a rebalance.
  std::string group_instance_id;
  // The coordinator removes a member it has not heard from for this long (clamped by the
  // broker's groups.min/max_session_timeout_ms).
  int32_t session_timeout_ms = 45000;
  // Time a member has to release revoked partitions (its Poll must run the revocation).
  int32_t rebalance_timeout_ms = 60000;
  // Commit the positions every auto_commit_interval_ms (from Poll), before partitions are
  // revoked, and at Close().
  bool enable_auto_commit = true;
  int32_t auto_commit_interval_ms = 5000;
  // Server-side assignor: "uniform" (balanced and sticky) or "range"; empty: the group's.
  std::string group_remote_assignor = "uniform";
  // Backoff of retries (doubled per attempt up to the max): of heartbeats and commits, and of a
  // partition's fetches and ListOffsets after its leader moved or could not be reached (each
  // goes to the partition's leader; such an error refreshes metadata first).
  int32_t retry_backoff_ms = 100;
  int32_t retry_backoff_max_ms = 1000;
};

struct AdminConfig : ConnectionConfig {};

}  // namespace rill::client
