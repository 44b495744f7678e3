#pragma once

// The producer-state table of a partition (Kafka's ProducerStateManager, without transactions):
// for each idempotent producer id that wrote into the log, its epoch and the sequence ranges and
// offsets of its last kProducerBatchesKept batches. The partition leader asks it, before
// appending a batch, whether the batch is the next one of its producer, a retry of one already
// in the log (answered with the original offsets, not appended again), or out of order; every
// replica updates it from the batch headers it appends, so any replica can lead with the same
// answers. docs/STORAGE.md ("Producer state") states the rules and the snapshot format.
//
// Rules of Check (Kafka 3.x ProducerAppendInfo / ProducerStateEntry):
//   * producer_id < 0: not idempotent, always kAppend, never tracked.
//   * producer_epoch < 0 or base_sequence < 0 with producer_id >= 0: kInvalidRecord.
//   * unknown producer id: kAppend at any sequence (Kafka since KIP-360 accepts writes with any
//     sequence from a producer it has no state for); kTooManyProducers at max_producers.
//   * same epoch, sequence range equal to one of the cached batches: kDuplicate, with its offsets.
//   * epoch below the known one: kInvalidProducerEpoch.
//   * epoch above the known one: kAppend if base_sequence is 0, else kOutOfOrderSequence.
//   * same epoch: kAppend if base_sequence follows the last cached batch's last sequence
//     (INT32_MAX is followed by 0), else kOutOfOrderSequence.
//
// Not thread-safe: the owner (the partition's append path) serialises Check, Update and every
// other call, and must run Check -> append -> Update for one batch before Check of the next.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rill/proto/batch_header.h"
#include "rill/proto/status.h"
#include "rill/proto/types.h"
#include "rill/storage/file_system.h"

namespace rill::storage {

// Batches remembered per producer for duplicate detection (Kafka's NUM_BATCHES_TO_RETAIN, which
// is 5): a producer may have this many batches in flight per partition. 128 lets one partition
// keep 32 MiB of 256 KiB batches in flight, more than the 20 MiB (5 requests of 4 MiB) it may
// have without idempotence, so idempotence does not cap a partition's pipeline
// (docs/IDEMPOTENCE.md, The producer). A producer's list grows as it writes, up to 4 KiB.
inline constexpr size_t kProducerBatchesKept = 128;
// producer.id.expiration.ms default: one day.
inline constexpr int64_t kDefaultProducerIdExpirationMs = 24LL * 60 * 60 * 1000;
// Default bound on the producers one partition tracks (docs/ARCHITECTURE.md §12). A producer
// costs about 100 bytes plus 32 per batch remembered (up to 128: 4 KiB), so the default bounds
// one partition's table near 4 GB in theory; producer.id.expiration.ms keeps it far below in
// practice (a producer that sent one batch costs ~130 bytes).
inline constexpr size_t kDefaultMaxProducers = 1'000'000;

// The producer fields of one batch header (everything Check and Update read).
struct BatchIdentity {
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
  int32_t last_offset_delta = 0;
  int64_t max_timestamp = -1;

  static BatchIdentity FromHeader(const batch::Header& h);
  // The batch's last sequence: base_sequence + last_offset_delta, wrapping past INT32_MAX to 0
  // as Kafka's DefaultRecordBatch.incrementSequence does.
  int32_t last_sequence() const;
};

// The sequence that follows `seq` (INT32_MAX is followed by 0).
int32_t NextSequence(int32_t seq);

// One cached batch of a producer.
struct ProducerBatch {
  int32_t first_seq;
  int32_t last_seq;
  Offset first_offset;
  Offset last_offset;
  int64_t max_timestamp;

  friend bool operator==(const ProducerBatch&, const ProducerBatch&) = default;
};

struct ProducerEntry {
  int16_t epoch = 0;
  // Oldest first; 1..kProducerBatchesKept entries, all written in `epoch`, ascending in offset.
  std::vector<ProducerBatch> batches;
  // Broker clock (ms) of the last Update; ExpireIdle measures idleness from it.
  int64_t last_update_ms = 0;

  friend bool operator==(const ProducerEntry&, const ProducerEntry&) = default;
};

enum class ProducerCheck : uint8_t {
  kAppend,              // append the batch, then Update
  kDuplicate,           // a retry of a cached batch: answer with first/last_offset, append nothing
  kOutOfOrderSequence,  // OUT_OF_ORDER_SEQUENCE_NUMBER
  kInvalidProducerEpoch,  // INVALID_PRODUCER_EPOCH: an epoch older than the known one
  kInvalidRecord,         // INVALID_RECORD: producer fields that cannot be valid
  kTooManyProducers,      // a new producer id while max_producers are tracked
};
std::string_view ProducerCheckName(ProducerCheck c);

struct CheckResult {
  ProducerCheck outcome = ProducerCheck::kAppend;
  // kDuplicate only: the offsets the original batch was given.
  Offset first_offset = Offset(-1);
  Offset last_offset = Offset(-1);
  // Empty for kAppend; otherwise says what was expected and what came, naming the producer.
  std::string message;
};

class ProducerStateTable {
 public:
  explicit ProducerStateTable(size_t max_producers = kDefaultMaxProducers)
      : max_producers_(max_producers) {}

  // The leader's check before appending `b` (rules above). Changes nothing.
  CheckResult Check(const BatchIdentity& b) const;

  // Records `b`, appended at [base, last], at broker time now_ms. Used after a leader's append
  // that Check allowed, by followers for replicated batches and by Rebuild; so it checks no
  // sequence (the log is the truth): a batch with another epoch than the entry's replaces the
  // entry's batches (Kafka does the same on replication). No-op for producer_id < 0.
  // Asserts last - base == b.last_offset_delta.
  void Update(const BatchIdentity& b, Offset base, Offset last, int64_t now_ms);

  // The log was truncated to `end`: drops cached batches ending at or after it and producers
  // left with none. True if anything changed. The result is what the table knew about
  // [0, end) except a producer whose batches below `end` were replaced in the table by later
  // ones of a newer epoch (it is dropped, so its next batch is accepted at any sequence);
  // Rebuild from a snapshot at or below `end` restores such a producer exactly.
  bool TruncateTo(Offset end);

  // The log start moved to `log_start` (retention, DeleteRecords). Deliberately keeps every
  // producer, even one whose batches are all below it (Kafka since KIP-360): dropping it would
  // make its next batch look like one from an unknown producer, and a retry of a batch removed by
  // retention is still answered as a duplicate. State is bounded by ExpireIdle instead.
  void RetainFrom(Offset log_start) { (void)log_start; }

  // Drops producers with now_ms - last_update_ms >= expiration_ms (producer.id.expiration.ms).
  // Returns the count dropped. Together with max_producers this bounds the table.
  size_t ExpireIdle(int64_t now_ms, int64_t expiration_ms);

  // nullptr when `producer_id` is not tracked.
  const ProducerEntry* Find(int64_t producer_id) const;
  size_t size() const { return producers_.size(); }
  const std::map<int64_t, ProducerEntry>& producers() const { return producers_; }
  size_t max_producers() const { return max_producers_; }
  void set_max_producers(size_t n) { max_producers_ = n; }

  // The snapshot file's contents (docs/STORAGE.md): the table as of `snapshot_offset`, the
  // offset of the first batch it does not reflect (the log end when taken). Deterministic.
  std::string Serialize(Offset snapshot_offset) const;

  struct Snapshot;
  // Parses Serialize's output: kCorruption naming the defect for a short, long or bit-flipped
  // input, another magic or version, or contents that break the entry invariants.
  static Result<Snapshot> Parse(std::string_view bytes);

  // `table` (from a snapshot taken at `snapshot_offset`, or empty with Offset(0)) followed by the
  // log's batches: `next` stores the next batch header in offset order into *h and returns true,
  // or returns false at the end. Batches below snapshot_offset are skipped (the snapshot has
  // them). Replayed producers are stamped with now_ms (the log holds no broker clock: a restart
  // can only lengthen their life, by at most one expiration period).
  static ProducerStateTable Rebuild(ProducerStateTable table, Offset snapshot_offset,
                                    const std::function<bool(batch::Header* h)>& next,
                                    int64_t now_ms);

  // Tables are equal when they track the same producers with the same entries.
  friend bool operator==(const ProducerStateTable& a, const ProducerStateTable& b) {
    return a.producers_ == b.producers_;
  }

 private:
  std::map<int64_t, ProducerEntry> producers_;  // ordered: Serialize is deterministic
  size_t max_producers_;
};

struct ProducerStateTable::Snapshot {
  Offset offset;  // the first offset the table does not reflect
  ProducerStateTable table;
};

// Snapshot files: `<20-digit offset>.producer-snapshot` in the partition directory.
std::string ProducerSnapshotFileName(Offset offset);
// The offset a snapshot file name carries; nullopt for any other name (including ".tmp").
std::optional<Offset> ParseProducerSnapshotFileName(std::string_view name);

// Writes `table` as `<dir>/<offset>.producer-snapshot` atomically (temp file, fdatasync,
// rename, fsync of the directory).
Status WriteProducerSnapshot(FileSystem* fs, const std::string& dir,
                             const ProducerStateTable& table, Offset offset);

struct LoadedProducerSnapshot {
  std::optional<ProducerStateTable::Snapshot> snapshot;  // nullopt: no usable snapshot
  // Names of newer snapshot files that failed to parse and were passed over (for the caller
  // to log and remove).
  std::vector<std::string> corrupt_files;
};
// The newest snapshot in `dir` whose offset is at most `max_offset` and that parses (a corrupt
// one is passed over for the next older, as Kafka does). An error only when the directory or a
// file cannot be read.
Result<LoadedProducerSnapshot> LoadLatestProducerSnapshot(FileSystem* fs, const std::string& dir,
                                                          Offset max_offset = Offset::max());

}  // namespace rill::storage
