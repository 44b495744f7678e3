#pragma once

// rill::client::Consumer: reads assigned partitions (manual assignment; no group).
//
//   ConsumerConfig config;  config.auto_offset_reset = OffsetReset::kEarliest;
//   RILL_ASSIGN_OR_RETURN(auto consumer, Consumer::Create(config));
//   consumer->Assign({{"events", 0}});
//   for (;;) {
//     RILL_ASSIGN_OR_RETURN(auto records, consumer->Poll(std::chrono::milliseconds(500)));
//     for (const ConsumerRecord& r : records) ...
//   }
//
// A background fetcher long-polls Consumer.Fetch for every assigned partition and queues the
// returned batches (up to max_prefetch_bytes) while the user processes the previous ones; Poll
// decodes (and decompresses) them and returns records from each partition's position on.
//
// Thread-safety: the methods are not thread-safe; call them from one thread at a time (the
// fetcher thread is internal).

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "rill/client/config.h"
#include "rill/client/types.h"
#include "rill/proto/status.h"

namespace rill::client {

class ConsumerImpl;

class Consumer {
 public:
  static Result<std::unique_ptr<Consumer>> Create(const ConsumerConfig& config);
  ~Consumer();  // Close()s

  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // Replaces the assignment. Partitions kept from the previous assignment keep their position;
  // new ones start per auto_offset_reset unless Seek()ed.
  Status Assign(const std::vector<TopicPartition>& partitions);
  std::vector<TopicPartition> Assignment() const;

  // The next offset Poll returns for `tp`. Assigned partitions only (InvalidArgument otherwise).
  Status Seek(const TopicPartition& tp, int64_t offset);
  // Ask the broker (Consumer.ListOffsets) and seek; an empty list means every assigned partition.
  Status SeekToBeginning(const std::vector<TopicPartition>& partitions = {});
  Status SeekToEnd(const std::vector<TopicPartition>& partitions = {});
  // To the first record with timestamp >= timestamp_ms (the end if there is none).
  Status SeekToTimestamp(const std::vector<TopicPartition>& partitions, int64_t timestamp_ms);

  // Returns the records available now, or waits up to `timeout` for some; an empty vector after
  // the timeout. Fails on an unrecoverable partition error (OFFSET_OUT_OF_RANGE with
  // auto_offset_reset = kError, UNKNOWN_TOPIC, a corrupt batch, ...): the message names the
  // partition; the other partitions keep going.
  Result<std::vector<ConsumerRecord>> Poll(std::chrono::milliseconds timeout);

  // The next offset to be returned for `tp`; NotFound when not assigned, Unavailable while it is
  // not yet known (auto_offset_reset pending).
  Result<int64_t> Position(const TopicPartition& tp) const;

  // Stops the fetcher. Further Polls fail.
  void Close();

 private:
  explicit Consumer(std::unique_ptr<ConsumerImpl> impl);
  std::unique_ptr<ConsumerImpl> impl_;
};

}  // namespace rill::client
