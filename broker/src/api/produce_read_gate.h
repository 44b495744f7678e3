#pragma once

// ProduceReadGate: the broker's bound on produce bytes in flight
// (limits.max_inflight_produce_bytes), and the line of ProduceStreams waiting for room in it
// before they ask gRPC for their next request (docs/ARCHITECTURE.md §12).
//
// Why: gRPC receives a stream's next message whole once the handler asks for it, into memory its
// resource quota counts; a stream that does not ask holds at most its HTTP/2 window, and its
// client's writes wait (flow control). Before the gate every stream asked as soon as its last
// request was appended, so 256 streams of 4 MiB requests had 1 GiB arriving at once, and the
// quota cancelled streams to get under 256 MiB (bench/RESULTS.md, Session 22).
//
// How: what is in flight is the bytes of requests received and not yet answered (a unary
// request is admitted or refused after gRPC has received it) plus the reservations of streams
// about to receive one. Before a read, a stream reserves what its next request is expected to be
// (the size of its last) if that fits under the bound (or nothing is in flight); otherwise it
// waits in line and is resumed, oldest first, as bytes come back. When the request arrives its
// real size replaces the reservation. A reservation lapses after kLapse: an idle client's open
// read must not hold the budget for long (what it sends later is counted when it arrives).
// kLapse is long enough for a large request to arrive at a busy broker: at 50 ms, 4 MiB requests
// arriving 32 at a time took longer, their reservations lapsed while they arrived, and the gate
// let every stream read again. A timer runs only while streams wait, so a wait ends even when
// every reservation belongs to an idle stream.
//
// Thread-safe. A Reader must stay alive while it holds a reservation or waits (a stream with a
// read open or waiting is not finished; a cancelled one withdraws first).

#include <boost/intrusive/list.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "api/produce_handler.h"

namespace rill::broker {

class ProduceReadGate final : public ProduceDeadlines::Entry,
                              public std::enable_shared_from_this<ProduceReadGate> {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kLapse{1000};

  // A stream. It is in at most one of the gate's two lists (holding a reservation, or waiting),
  // linked through its own hook: no allocation per read.
  class Reader : public boost::intrusive::list_base_hook<> {
   public:
    // Room was reserved for the reader's next read: start it. Called without the gate's lock.
    virtual void ResumeRead() = 0;

   protected:
    ~Reader() = default;

   private:
    friend class ProduceReadGate;
    int64_t gate_bytes_ = 0;        // reserved, or expected while waiting
    Clock::time_point gate_since_;  // when reserved
    bool gate_reserved_ = false;
  };

  // `bound`: limits.max_inflight_produce_bytes. `reading_bound`: what the reservations alone may
  // reach (0: no bound of their own); the broker gives a quarter of
  // limits.max_request_memory_bytes, the gRPC quota that holds requests being received (and the
  // connections' buffers), so that the reads it lets start stay clear of the quota (at half, 256
  // streams of 4 MiB on 16 connections still met it now and then). `deadlines` runs the timer.
  ProduceReadGate(int64_t bound, int64_t reading_bound, std::shared_ptr<ProduceDeadlines> deadlines)
      : bound_(bound), reading_bound_(reading_bound), deadlines_(std::move(deadlines)) {}
  ~ProduceReadGate() override;

  // A received unary request of `bytes`: true (now in flight) if they fit under the bound or
  // nothing is in flight; false (refuse it) otherwise.
  bool Admit(int64_t bytes);
  // Before `reader` reads a request expected to be `expected` bytes (0: as large as the last any
  // stream read): true if room was reserved (read now); false if the reader waits in line
  // (ResumeRead comes once room is reserved).
  bool Reserve(Reader* reader, int64_t expected);
  // The reader's read ended with `accepted` bytes now in flight (0: none, the stream closed):
  // they replace its reservation, if it has not lapsed.
  void EndRead(Reader* reader, int64_t accepted);
  // The reader's call was cancelled: true if it was waiting in line and has left it (it will not
  // be resumed); false if it was not waiting (its read, open or about to be, ends the call).
  bool Withdraw(Reader* reader);
  // `bytes` in flight were answered: gives them back and resumes waiting readers.
  void Release(int64_t bytes);

  int64_t in_flight() const;
  size_t waiting() const;
  size_t reserved() const;
  // For /metrics: in_flight split into requests received and the reservations, the readers in
  // line, and how many reads have had to wait in line since the start.
  struct Stats {
    int64_t accepted_bytes = 0;
    int64_t reserved_bytes = 0;
    uint64_t waiting = 0;
    uint64_t waits = 0;
  };
  Stats stats() const;

  void Expire() override;  // the timer (ProduceDeadlines::Entry)

 private:
  using List = boost::intrusive::list<Reader, boost::intrusive::constant_time_size<true>>;

  // Drops reservations older than kLapse. mu_ held.
  void LapseLocked(Clock::time_point now);
  // Reserves for waiting readers, oldest first, while they fit; adds them to `resume`.
  void WakeLocked(Clock::time_point now, std::vector<Reader*>* resume);
  void ReserveLocked(Reader* reader, Clock::time_point now);
  bool FitsLocked(int64_t bytes) const;
  // Arms the timer if readers wait and it is not armed.
  void ArmLocked(Clock::time_point now);

  const int64_t bound_;
  const int64_t reading_bound_;
  const std::shared_ptr<ProduceDeadlines> deadlines_;

  mutable std::mutex mu_;
  int64_t in_flight_ = 0;        // received and unanswered, plus reserved
  int64_t reserved_bytes_ = 0;   // the reserved part
  int64_t last_read_bytes_ = 0;  // the last request a stream read
  uint64_t waits_ = 0;           // reads that waited in line
  List reserved_;                // oldest first
  List waiting_;                 // oldest first
  bool armed_ = false;
};

}  // namespace rill::broker
