#pragma once

// rill::client::Producer: asynchronous, batching producer.
//
//   ProducerConfig config;  config.bootstrap = "localhost:9092";
//   RILL_ASSIGN_OR_RETURN(auto producer, Producer::Create(config));
//   auto f = producer->Send({.topic = "events", .key = "user-1", .value = "hello"});
//   Result<RecordMetadata> md = f.get();      // or Send(record, callback)
//   producer->Flush();
//
// Records are appended to one batch per partition (RecordBatch v2, compressed per config); a
// sender thread ships ready batches over Producer.ProduceStream, several partitions per request
// and up to max_in_flight requests per broker, and retries retriable failures. Completions run on
// the producer's I/O thread, in order per partition.
//
// Thread-safety: Send, Flush and Close may be called from any number of threads, but not from
// inside a completion callback (Flush and Close wait for the thread that runs the callbacks).
// Send from a callback is allowed while the buffer has room.

#include <future>
#include <memory>

#include "rill/client/config.h"
#include "rill/client/types.h"
#include "rill/proto/status.h"

namespace rill::client {

class ProducerImpl;

class Producer {
 public:
  // Connects lazily: fails only on an invalid config (no broker is contacted).
  static Result<std::unique_ptr<Producer>> Create(const ProducerConfig& config);
  ~Producer();  // Close()s

  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Queues a record. The callback runs exactly once: with its metadata when acknowledged, or with
  // the error (unknown topic, buffer full after max_block_ms, delivery timeout, retries exhausted,
  // a non-retriable broker error, closed producer). Blocks only while fetching metadata for a
  // topic seen for the first time or while the buffer is full. An empty callback is allowed.
  void Send(const ProducerRecord& record, SendCallback callback);
  // The same, with a future (one allocation per record for the shared state).
  std::future<Result<RecordMetadata>> Send(const ProducerRecord& record);

  // Sends everything buffered now and waits until every record sent before the call completed.
  // Records sent concurrently by other threads may extend the wait.
  void Flush();
  // Flushes, then stops the I/O threads. Later Sends fail with Failed("producer is closed").
  void Close();

  const ProducerConfig& config() const;

 private:
  explicit Producer(std::unique_ptr<ProducerImpl> impl);
  std::unique_ptr<ProducerImpl> impl_;
};

}  // namespace rill::client
